//! boundflow backend over [async-channel](https://docs.rs/async-channel).
//!
//! async-channel is used through its non-waiting operations; waiting (async and blocking),
//! timeouts and `close` come from [`boundflow_core::notified`], shared with the flume and
//! crossbeam backends. Racing async-channel's own send future against a timer would drop the
//! message on timeout (the future owns it); the adaptor never lets go of the message until a
//! push succeeds. Its words map directly: async-channel's `Closed` is boundflow's `Closed`.
//!
//! | contract point | how | cost |
//! |---|---|---|
//! | blocking send/recv with deadline | a blocked sender parks (with a timeout) in boundflow's queue of waiting senders, the receiver parks with a timeout (async-channel has no blocking timeout) | none beyond a parked thread |
//! | `close` | async-channel's own `close`, which is exact (close and push claim the tail atomically); queued messages stay poppable, so the adaptor's receiver clone still drains and evicts | none per send |
//! | bounded | capacities above 1 allocate every slot up front (concurrent-queue): boundflow's maximum refuses absurd sizes | — |
//! | `drop_oldest` | supported | — |
// This crate wraps (or measures) the raw constructor that clippy.toml forbids elsewhere.
#![allow(clippy::disallowed_methods)]
#![forbid(unsafe_code)]

use boundflow_core::TrySendError;
use boundflow_core::notified::{Notified, TryQueue};

/// The async-channel backend (config name `async_channel`).
pub type AsyncChannel = Notified<AsyncChannelQueue>;

/// The AsyncChannel backend as a value, like a unit struct: `ChannelBuilder::new(AsyncChannel, ..)`.
#[allow(non_upper_case_globals)]
pub const AsyncChannel: AsyncChannel = Notified(AsyncChannelQueue);

/// async-channel as a non-waiting queue (see [`AsyncChannel`](tyalias@AsyncChannel)).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AsyncChannelQueue;

impl TryQueue for AsyncChannelQueue {
    type Tx<T: Send + 'static> = async_channel::Sender<T>;
    type Rx<T: Send + 'static> = async_channel::Receiver<T>;

    const NAME: &'static str = "async_channel";

    /// Every slot is allocated when the channel is made: refuse sizes no machine should attempt.
    const MAX_CAPACITY: usize = 1 << 30;

    fn bounded<T: Send + 'static>(
        capacity: usize,
    ) -> (async_channel::Sender<T>, async_channel::Receiver<T>) {
        async_channel::bounded(capacity)
    }

    fn push<T: Send + 'static>(
        tx: &async_channel::Sender<T>,
        msg: T,
    ) -> Result<(), TrySendError<T>> {
        tx.try_send(msg).map_err(|err| match err {
            async_channel::TrySendError::Full(msg) => TrySendError::Full(msg),
            async_channel::TrySendError::Closed(msg) => TrySendError::Closed(msg),
        })
    }

    fn pop<T: Send + 'static>(rx: &async_channel::Receiver<T>) -> Option<T> {
        rx.try_recv().ok()
    }

    fn len<T: Send + 'static>(rx: &async_channel::Receiver<T>) -> usize {
        rx.len()
    }

    /// async-channel's own close is exact: closing and pushing claim the queue's tail
    /// atomically, so a push racing it lands before it or fails with `Closed`.
    const EXACT_CLOSE: bool = true;

    fn close<T: Send + 'static>(rx: &async_channel::Receiver<T>) {
        rx.close();
    }
}
