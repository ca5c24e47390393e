//! The conformance grid: one suite (`conformance/suite.rs`), instantiated per backend x runtime
//! as `<backend>::<runtime>::<test>`, so `cargo test -- --list` reads as the grid.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

#[path = "conformance/harness.rs"]
mod harness;
#[path = "conformance/suite.rs"]
mod suite;

/// Every test of the suite, for one runtime; `super::Backend` is the backend under test.
macro_rules! suite_for_runtime {
    ($runtime:ident: $($test:ident),+ $(,)?) => {
        $(
            #[test]
            fn $test() {
                <crate::harness::$runtime as crate::harness::Runtime>::block_on(
                    crate::suite::$test::<crate::harness::$runtime, super::Backend>(),
                );
            }
        )+
    };
}

/// The grid's four cells for one runtime.
macro_rules! runtime_module {
    ($module:ident, $runtime:ident) => {
        mod $module {
            suite_for_runtime!($runtime:
                capacity_is_validated,
                never_more_than_capacity_queued,
                fifo_per_sender,
                senders_gone_drains_then_closed,
                receiver_close_drains_then_closed,
                receiver_close_wakes_blocked_senders,
                receiver_drop_counts_discarded,
                errors_give_the_message_back,
                timeouts_never_early,
                timeouts_work_under_futures_block_on,
                recv_is_cancel_safe,
                counters_exact_at_quiescence,
                blocking_threads_into_receiver,
                senders_into_blocking_thread,
                blocking_calls_in_context_do_not_panic,
                stream_yields_all_then_ends,
                overflow_policies_apply,
                abandoned_receive_keeps_the_next_wakeup,
                receiver_drop_racing_senders_counts_exactly,
            );
        }
    };
}

/// One row of the grid: a backend on every runtime.
macro_rules! backend_row {
    ($backend:ident, $ty:ty) => {
        mod $backend {
            type Backend = $ty;
            runtime_module!(tokio_current_thread, TokioCurrentThread);
            runtime_module!(tokio_multi_thread, TokioMultiThread);
            runtime_module!(smol, Smol);
            runtime_module!(std_threads, StdThreads);
        }
    };
}

#[cfg(feature = "tokio")]
backend_row!(tokio, boundflow::Tokio);
#[cfg(feature = "flume")]
backend_row!(flume, boundflow::Flume);
#[cfg(feature = "crossbeam")]
backend_row!(crossbeam, boundflow::Crossbeam);
#[cfg(feature = "async-channel")]
backend_row!(async_channel, boundflow::AsyncChannel);
