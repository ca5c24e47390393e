//! boundflow backend over [crossbeam-channel](https://docs.rs/crossbeam-channel).
//!
//! crossbeam-channel has no async API and no `close`. Both come from
//! [`boundflow_core::notified`]: the channel is used through `try_send`/`try_recv`, and every
//! wait — async or blocking — is try, register as a waiter, re-check, wait. A waiting side is
//! woken only when it waits (a waiter count or flag read behind a `SeqCst` fence).
//!
//! # How the contract maps onto crossbeam
//!
//! | contract point | how | cost |
//! |---|---|---|
//! | async send/recv | boundflow's waits (crossbeam has none): senders in boundflow's queue of waiting senders, the one receiver on an `AtomicWaker` | see `benches/README.md` (compared with raw tokio) |
//! | blocking send/recv | the same waits, spinning briefly and then parking the thread; crossbeam's own blocking `send` cannot be woken by a `close` it does not know, so it is not used | a `SeqCst` fence per operation and waits outside crossbeam's own; see `benches/README.md` for the measured ratios |
//! | `close` | crossbeam-channel has none: boundflow's exact close — each push is announced in the sending thread's own slot, then the closed flag is read; the receiver reports `Closed` only when no announced push into the channel remains; closing wakes blocked senders | one `SeqCst` fence, one read-mostly load and two stores to the thread's own cache line per send (A/B in `CHANGELOG.md`) |
//! | bounded | the array flavour allocates every slot up front: boundflow's maximum capacity refuses absurd sizes; 0 (crossbeam's rendezvous channel) is refused | — |
//! | `drop_oldest` | supported: the adaptor holds a clone of the receiver | — |
// This crate wraps (or measures) the raw constructor that clippy.toml forbids elsewhere.
#![allow(clippy::disallowed_methods)]
#![forbid(unsafe_code)]

use boundflow_core::TrySendError;
use boundflow_core::notified::{Notified, TryQueue};

/// The crossbeam-channel backend (config name `crossbeam`).
pub type Crossbeam = Notified<CrossbeamQueue>;

/// The Crossbeam backend as a value, like a unit struct: `ChannelBuilder::new(Crossbeam, ..)`.
#[allow(non_upper_case_globals)]
pub const Crossbeam: Crossbeam = Notified(CrossbeamQueue);

/// crossbeam-channel as a non-waiting queue (see [`Crossbeam`](tyalias@Crossbeam)).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CrossbeamQueue;

impl TryQueue for CrossbeamQueue {
    type Tx<T: Send + 'static> = crossbeam_channel::Sender<T>;
    type Rx<T: Send + 'static> = crossbeam_channel::Receiver<T>;

    const NAME: &'static str = "crossbeam";

    /// Every slot is allocated when the channel is made: refuse sizes no machine should attempt.
    const MAX_CAPACITY: usize = 1 << 30;

    fn bounded<T: Send + 'static>(
        capacity: usize,
    ) -> (crossbeam_channel::Sender<T>, crossbeam_channel::Receiver<T>) {
        crossbeam_channel::bounded(capacity)
    }

    #[inline]
    fn push<T: Send + 'static>(
        tx: &crossbeam_channel::Sender<T>,
        msg: T,
    ) -> Result<(), TrySendError<T>> {
        tx.try_send(msg).map_err(refused)
    }

    #[inline]
    fn pop<T: Send + 'static>(rx: &crossbeam_channel::Receiver<T>) -> Option<T> {
        rx.try_recv().ok()
    }

    fn len<T: Send + 'static>(rx: &crossbeam_channel::Receiver<T>) -> usize {
        rx.len()
    }
}

/// crossbeam's refusal as boundflow's. Out of line: inlined, LLVM turned the two matches into
/// arithmetic on the result's tag that ran on every push, 5 instructions of a `try_send` +
/// `try_recv` pair's 36 over raw (callgrind, `benches/callgrind.py`).
#[cold]
#[inline(never)]
fn refused<T>(err: crossbeam_channel::TrySendError<T>) -> TrySendError<T> {
    match err {
        crossbeam_channel::TrySendError::Full(msg) => TrySendError::Full(msg),
        crossbeam_channel::TrySendError::Disconnected(msg) => TrySendError::Closed(msg),
    }
}
