//! The backend trait, [`BoundedChannel`], and the raw endpoint traits a backend provides.
//!
//! Users do not call these directly: the monitored [`Sender`](crate::Sender) and
//! [`Receiver`](crate::Receiver) wrap them, count, and apply the overflow policy. A backend only
//! moves messages and waits.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use crate::capacity::Capacity;
use crate::error::{RecvTimeoutError, SendTimeoutError, TryRecvError, TrySendError};
use crate::policy::WaitStrategy;

/// A channel implementation that boundflow can wrap.
///
/// # Contract
///
/// Every backend, on every executor and on plain threads:
///
/// 1. **Bounded**: never holds more than `capacity` messages.
/// 2. **Nothing lost silently**: a message given to a send is queued, or handed back in the
///    error; a message still queued when the receiver goes away is dropped by the receiver (which
///    the wrapper counts), or, where a send raced with that, by
///    [`RawSender::discard_queued`] once the last sender goes.
/// 3. **FIFO per sender.**
/// 4. **Close**: when every sender is gone, the receiver drains what is queued, then sees
///    closed. [`RawReceiver::close`] makes later sends fail with `Closed(msg)`, wakes every
///    blocked sender (which then completes or fails with `Closed(msg)`), and lets the receiver
///    drain what is queued. **Exact**: a send that returned `Ok` is received before the
///    receiver reports `Closed`, and nothing is received after it.
/// 5. **Timeouts** never return early and hand the message back; async waits work on any
///    executor (use [`crate::timer`], not a runtime's timer).
/// 6. **No panics**: the `*_blocking*` calls wait only through
///    [`crate::runtime::block_with`], which asks where the thread may block, and return
///    `WouldDeadlock` where it refuses.
/// 7. **Cancel safety**: a dropped [`RawReceiver::recv_until`] future loses no message; a dropped
///    [`RawSender::send_until`] future drops its message.
pub trait BoundedChannel: Clone + Send + Sync + 'static {
    /// The sending endpoint for messages of type `T`.
    type Sender<T: Send + 'static>: RawSender<T>;
    /// The receiving endpoint for messages of type `T`.
    type Receiver<T: Send + 'static>: RawReceiver<T>;

    /// The backend's config name: `tokio`, `flume`, `crossbeam` or `async_channel`.
    fn name(&self) -> &'static str;

    /// The largest capacity the backend itself can take (boundflow's own maximum is separate).
    fn max_capacity(&self) -> usize {
        usize::MAX
    }

    /// Whether this backend can evict the oldest queued message from the sending side.
    fn supports_drop_oldest(&self) -> bool {
        false
    }

    /// Makes a bounded channel. `capacity` is already validated against
    /// [`max_capacity`](Self::max_capacity).
    fn bounded<T: Send + 'static>(
        &self,
        capacity: Capacity,
    ) -> (Self::Sender<T>, Self::Receiver<T>);
}

/// The sending endpoint of a backend. Cloning makes another sender of the same channel.
pub trait RawSender<T: Send + 'static>: Clone + Send + Sync + 'static {
    /// A sending end that does not keep the channel open: the channel closes when the last
    /// strong sender goes, however many of these exist.
    type Weak: Clone + Send + Sync + 'static;

    /// A weak sending end of this channel.
    fn downgrade(&self) -> Self::Weak;

    /// A sender again, if some strong sender still exists (the channel is not closed by
    /// senders leaving).
    fn upgrade(weak: &Self::Weak) -> Option<Self>;

    /// Closes the channel through a weak sender, as the receiver's `close` would (later sends
    /// fail with `Closed(msg)`, the receiver drains what is queued), if the backend can close
    /// from the sending side; `false` if it cannot. The default cannot. A backend may finish the
    /// close when its receiver finds the queue empty, waking a receive that waits (tokio, whose
    /// channel closes only from its receiver).
    fn close_weak(weak: &Self::Weak) -> bool {
        let _ = weak;
        false
    }

    /// Queues `msg` if there is room now, never waiting.
    fn try_send(&self, msg: T) -> Result<(), TrySendError<T>>;

    /// `then(self.try_send(msg))`: what the wrapper calls. A backend that dispatches to
    /// several inner ones (`AnyBackend`) overrides it to run `then` inside each arm, so the
    /// compiler never has to merge the arms' results before `then` looks at them.
    #[inline(always)]
    fn try_send_then<R>(&self, msg: T, then: impl FnOnce(Result<(), TrySendError<T>>) -> R) -> R {
        then(self.try_send(msg))
    }

    /// Waits for room (until `deadline`, if any) and queues `msg`. The caller's non-waiting
    /// [`try_send`](Self::try_send) has just found the channel full, so a backend need not try
    /// again before it starts to wait. Never returns `WouldDeadlock`.
    fn send_until(
        &self,
        msg: T,
        deadline: Option<Instant>,
    ) -> impl Future<Output = Result<(), SendTimeoutError<T>>> + Send;

    /// Blocks the thread until there is room (until `deadline`, if any) and queues `msg`,
    /// waiting as `strategy` says (through [`crate::runtime::block_with`], the one blocking
    /// sequence). The caller's non-waiting [`try_send`](Self::try_send) has just found the
    /// channel full, so a backend need not try again before it starts to wait. Returns
    /// `WouldDeadlock(msg)` instead of blocking where that would stall a runtime.
    fn send_blocking_until(
        &self,
        msg: T,
        deadline: Option<Instant>,
        strategy: WaitStrategy,
    ) -> Result<(), SendTimeoutError<T>>;

    /// Queues `msg`, evicting the oldest queued messages as needed to make room (`drop_oldest`),
    /// never waiting. The caller's non-waiting try has just found the channel full. A backend
    /// without exact close of its own keeps `msg`'s push announced across the evictions and the
    /// push (see [`crate::notified`]), so a racing `close` never strands an eviction.
    ///
    /// The default, for backends that cannot take from the queue on the sending side, refuses
    /// with `Full(msg)` and evicts nothing.
    fn force_send(&self, msg: T) -> Forced<T> {
        Forced {
            outcome: Err(TrySendError::Full(msg)),
            evicted: 0,
        }
    }

    /// Drops whatever is still queued and says how many; called only after the receiver has
    /// gone and the last sender is going, to count messages that raced with the receiver's
    /// final drain. Backends whose close already rules that race out return 0.
    fn discard_queued(&self) -> usize {
        0
    }

    /// How many messages are queued (read from the backend, may be a moment old).
    ///
    /// It may count a message a moment late (a push still landing) but never one the channel
    /// has not accepted: not a slot reserved by a send that is still waiting and may yet be
    /// cancelled or time out. The monitor derives `sent` from this and never lets `sent` go
    /// down, so a count that includes such a slot would stay in `sent` for good.
    fn len(&self) -> usize;

    /// Whether nothing is queued.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the receiver has closed or gone away.
    fn is_closed(&self) -> bool;

    /// How many slots a new send cannot use now: the queued messages, and slots the backend has
    /// already handed to sends still waiting (tokio gives a freed slot to a waiting send before
    /// it writes). What saturation is computed from; the default is [`len`](Self::len).
    fn in_use(&self) -> usize {
        self.len()
    }

    /// A reader of this channel's depth and slots in use (as [`len`](Self::len) and
    /// [`in_use`](Self::in_use) count them) that keeps no
    /// endpoint alive: the watcher samples channels through it, and a watched channel must
    /// still close when its senders go. It reads `None` once it cannot read — at the latest
    /// when every endpoint is gone; a probe that reads through the sending side may stop when
    /// the last sender goes (the wrapper then derives the depth while the receiver drains).
    fn depth_probe(&self) -> DepthProbe;
}

/// A channel's depth as a probe reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Occupancy {
    /// Messages queued ([`RawSender::len`]): never a slot whose message is not written yet.
    pub queued: usize,
    /// Slots a new send cannot use ([`RawSender::in_use`]): at least `queued`.
    pub in_use: usize,
}

impl Occupancy {
    /// A backend with no slots held by waiting sends: both counts are `queued`.
    pub fn exact(queued: usize) -> Self {
        Occupancy {
            queued,
            in_use: queued,
        }
    }
}

/// Reads a channel's depth without holding any of its endpoints (see
/// [`RawSender::depth_probe`]).
#[derive(Clone)]
pub struct DepthProbe(Arc<dyn Fn() -> Option<Occupancy> + Send + Sync>);

impl DepthProbe {
    /// A probe that calls `read`; it should hold only weak references to the channel.
    pub fn new(read: impl Fn() -> Option<Occupancy> + Send + Sync + 'static) -> Self {
        DepthProbe(Arc::new(read))
    }

    /// The depth now, or `None` if the probe can no longer read it.
    pub fn read(&self) -> Option<Occupancy> {
        (self.0)()
    }
}

impl fmt::Debug for DepthProbe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DepthProbe(..)")
    }
}

/// What [`RawSender::force_send`] did.
#[derive(Debug)]
pub struct Forced<T> {
    /// `Ok` with the first message evicted (if any), or the error with `msg` given back.
    pub outcome: Result<Option<T>, TrySendError<T>>,
    /// How many queued messages were evicted, the one returned included (the others dropped).
    pub evicted: usize,
}

/// The receiving endpoint of a backend.
pub trait RawReceiver<T: Send + 'static>: Send + Sync + Unpin + 'static {
    /// Takes the next message if one is queued, never waiting.
    fn try_recv(&mut self) -> Result<T, TryRecvError>;

    /// `then(self.try_recv())`: what the wrapper calls (see [`RawSender::try_send_then`]).
    #[inline(always)]
    fn try_recv_then<R>(&mut self, then: impl FnOnce(Result<T, TryRecvError>) -> R) -> R {
        then(self.try_recv())
    }

    /// Waits for the next message (until `deadline`, if any). Cancel-safe: dropping the future
    /// loses no message. Never returns `WouldDeadlock`.
    fn recv_until(
        &mut self,
        deadline: Option<Instant>,
    ) -> impl Future<Output = Result<T, RecvTimeoutError>> + Send;

    /// Blocks the thread for the next message (until `deadline`, if any), waiting as
    /// `strategy` says once a non-waiting try finds nothing (the caller has not tried first);
    /// returns `WouldDeadlock` instead of blocking where that would stall a runtime.
    fn recv_blocking_until(
        &mut self,
        deadline: Option<Instant>,
        strategy: WaitStrategy,
    ) -> Result<T, RecvTimeoutError>;

    /// Polls for the next message; `None` once drained and closed (for `Stream`).
    fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<T>>;

    /// The last [`poll_recv`](Self::poll_recv) returned `Pending` and is abandoned: the
    /// wrapper is about to receive another way. A backend whose pending poll costs its senders
    /// something until then (a waiting flag every push reads) ends it here, so that the plain
    /// receive paths need not check for one. The wrapper calls it exactly when it still holds
    /// that poll's waker.
    fn end_poll_wait(&mut self) {}

    /// Closes the channel from the receiving side: later sends fail with `Closed(msg)`, blocked
    /// sends wake; what is queued can still be received.
    fn close(&mut self);

    /// Whether the channel is closed (receiver closed, or every sender gone).
    fn is_closed(&self) -> bool;

    /// How many messages are queued.
    fn len(&self) -> usize;

    /// Whether nothing is queued.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// What one non-waiting send means to a send that may wait: `Ok(result)` settles it (sent, or
/// `Closed` with the message given back); `Err(msg)` hands the message back to wait and try again
/// (the channel was full). For backends that build their waits from `try_send`.
pub fn settle_send<T>(
    tried: Result<(), TrySendError<T>>,
) -> Result<Result<(), SendTimeoutError<T>>, T> {
    match tried {
        Ok(()) => Ok(Ok(())),
        Err(TrySendError::Closed(msg)) => Ok(Err(SendTimeoutError::Closed(msg))),
        Err(TrySendError::Full(msg)) => Err(msg),
    }
}

/// What one non-waiting receive means to a receive that may wait: `Some(result)` settles it (a
/// message, or `Closed`); `None`: the channel was empty, wait and try again.
pub fn settle_recv<T>(tried: Result<T, TryRecvError>) -> Option<Result<T, RecvTimeoutError>> {
    match tried {
        Ok(msg) => Some(Ok(msg)),
        Err(TryRecvError::Closed) => Some(Err(RecvTimeoutError::Closed)),
        Err(TryRecvError::Empty) => None,
    }
}
