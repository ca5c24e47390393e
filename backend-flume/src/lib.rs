//! boundflow backend over [flume](https://docs.rs/flume).
//!
//! flume is used through its non-waiting operations only (`try_send`, `try_recv`); waiting,
//! timeouts and `close` come from [`boundflow_core::notified`], the same adaptor the crossbeam
//! and async-channel backends use.
//!
//! # How the contract maps onto flume
//!
//! | contract point | how | cost |
//! |---|---|---|
//! | async send with timeout | try, register in boundflow's queue of waiting senders, re-check, wait for a wake-up or the timer — never flume's `send_async` raced against a timer, which lost messages and sometimes delivered one reported as timed out | one load per operation, no fence: flume's own lock orders the wake-up checks (`TryQueue::LOCKED`); a timer only when full (ratios in `benches/README.md`) |
//! | `close` | flume has none: boundflow's exact close — each push is announced in the sending thread's own slot, then the closed flag is read; the receiver reports `Closed` only when no announced push into the channel remains; closing wakes blocked senders | one `SeqCst` fence, one read-mostly load and two stores to the thread's own cache line per send (A/B in `CHANGELOG.md`) |
//! | depth | flume's `len()` takes a lock, so it is read only for `stats()` (and the tick), never per send | — |
//! | `drop_oldest` | supported: the adaptor holds a clone of flume's receiver | — |
//! | cancel safety | a dropped `recv` leaves the message queued; a dropped `send` drops its message | — |
// This crate wraps (or measures) the raw constructor that clippy.toml forbids elsewhere.
#![allow(clippy::disallowed_methods)]
#![forbid(unsafe_code)]

use boundflow_core::TrySendError;
use boundflow_core::notified::{Notified, TryQueue};

/// The flume backend (config name `flume`).
pub type Flume = Notified<FlumeQueue>;

/// The Flume backend as a value, like a unit struct: `ChannelBuilder::new(Flume, ..)`.
#[allow(non_upper_case_globals)]
pub const Flume: Flume = Notified(FlumeQueue);

/// flume as a non-waiting queue (see [`Flume`](tyalias@Flume)).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FlumeQueue;

impl TryQueue for FlumeQueue {
    type Tx<T: Send + 'static> = flume::Sender<T>;
    type Rx<T: Send + 'static> = flume::Receiver<T>;

    const NAME: &'static str = "flume";

    /// flume computes `capacity + 1` internally and a `VecDeque` holds at most `isize::MAX`.
    const MAX_CAPACITY: usize = isize::MAX as usize;

    /// flume 0.11's `try_send` and `try_recv` both begin by locking the channel's one mutex
    /// (`Shared::send` and `Shared::recv`, `wait_lock(&self.chan)`), whatever they then find.
    const LOCKED: bool = true;

    fn bounded<T: Send + 'static>(capacity: usize) -> (flume::Sender<T>, flume::Receiver<T>) {
        flume::bounded(capacity)
    }

    #[inline]
    fn push<T: Send + 'static>(tx: &flume::Sender<T>, msg: T) -> Result<(), TrySendError<T>> {
        tx.try_send(msg).map_err(refused)
    }

    #[inline]
    fn pop<T: Send + 'static>(rx: &flume::Receiver<T>) -> Option<T> {
        rx.try_recv().ok()
    }

    fn len<T: Send + 'static>(rx: &flume::Receiver<T>) -> usize {
        rx.len()
    }
}

/// flume's refusal as boundflow's. Out of line: inlined, LLVM turned the two matches into
/// arithmetic on the result's tag that ran on every push (callgrind, `benches/callgrind.py`).
#[cold]
#[inline(never)]
fn refused<T>(err: flume::TrySendError<T>) -> TrySendError<T> {
    match err {
        flume::TrySendError::Full(msg) => TrySendError::Full(msg),
        flume::TrySendError::Disconnected(msg) => TrySendError::Closed(msg),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::expect_used)]

    use std::pin::pin;
    use std::task::{Context, Waker};

    use boundflow_core::{BoundedChannel, Capacity, RawReceiver, RawSender, TryRecvError};

    use super::Flume;

    /// Why raw flume is faster at capacity 1 in async (the adaptor's module docs, "Fairness"):
    /// its receive moves a waiting send's message into the queue, so the send is done before
    /// its future runs again — and a future dropped then has delivered.
    #[test]
    fn raw_flume_delivers_a_waiting_send_whose_future_is_dropped() {
        let (tx, rx) = flume::bounded::<u64>(1);
        assert!(tx.try_send(0).is_ok());
        let mut cx = Context::from_waker(Waker::noop());
        {
            let mut send = pin!(tx.send_async(1));
            assert!(send.as_mut().poll(&mut cx).is_pending());
            assert_eq!(rx.try_recv(), Ok(0));
        }
        assert_eq!(
            rx.try_recv(),
            Ok(1),
            "flume handed the waiting message off at the pop"
        );
    }

    /// The same steps through the adaptor: the cancel contract holds (the dropped send's
    /// message was never queued), which is why the adaptor does not hand off.
    #[test]
    fn a_dropped_waiting_send_delivers_nothing_through_the_adaptor() {
        let capacity = Capacity::new(1).expect("capacity 1");
        let (tx, mut rx) = Flume.bounded::<u64>(capacity);
        assert!(tx.try_send(0).is_ok());
        let mut cx = Context::from_waker(Waker::noop());
        {
            let mut send = pin!(tx.send_until(1, None));
            assert!(send.as_mut().poll(&mut cx).is_pending());
            assert_eq!(rx.try_recv(), Ok(0));
        }
        assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
    }
}
