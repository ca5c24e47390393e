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

/// One backend's cells on one runtime: every test of the suite.
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
                abandoned_receive_keeps_the_next_wakeup,
                receiver_drop_racing_senders_counts_exactly,
                cancelled_send_is_never_counted,
                close_then_drain_loses_nothing,
                stream_is_fused,
                stream_wait_survives_other_receives,
                policy_block_waits_for_room,
                policy_block_fails_with_closed,
                policy_timeout_gives_the_message_back,
                policy_drop_newest_refuses_and_counts,
                policy_drop_oldest_evicts_fifo,
                policy_drop_oldest_counts_one_full_event,
                policy_retry_gives_up_after_max_attempts,
                policy_retry_gives_up_at_its_deadline,
                policy_retry_yields_until_room_appears,
                policy_retry_refuses_zero_attempts,
                wait_strategies_deliver_everything,
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
            runtime_module!(tokio_local_set, TokioLocalSet);
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
// The run-time choice, dispatching to tokio (its default); the monitoring tests run it over
// the other backends.
#[cfg(feature = "tokio")]
backend_row!(any_backend, boundflow::AnyBackend);
