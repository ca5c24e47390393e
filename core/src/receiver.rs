//! The monitored receiving endpoint: counts receives and, at the end, what was never read.

use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering::SeqCst;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use futures_core::Stream;
use futures_core::stream::FusedStream;

use crate::channel::{BoundedChannel, Occupancy, RawReceiver};
use crate::error::{RecvError, RecvTimeoutError, TryRecvError};
use crate::handle::ChannelHandle;
use crate::loom::fence;
use crate::monitor::{ChannelStats, bump_exclusive};
use crate::shared::{Shared, deadline_after};

/// The receiving half of a boundflow channel (one consumer).
///
/// | | async | blocking (any thread) | never waits |
/// |---|---|---|---|
/// | receive | [`recv`](Self::recv) | [`recv_blocking`](Self::recv_blocking) | [`try_recv`](Self::try_recv) |
/// | receive with a deadline | [`recv_timeout`](Self::recv_timeout) | [`recv_timeout_blocking`](Self::recv_timeout_blocking) | — |
///
/// It is also a [`Stream`] that ends when the channel is drained and closed.
///
/// # Closing
/// When every sender is gone, the receiver drains what is queued, then sees `Closed`.
/// [`close`](Self::close) stops new sends (they fail with `Closed(msg)`), wakes blocked senders,
/// and still lets the receiver drain. Dropping the receiver closes the channel and drops what is
/// still queued, counting it as `discarded_at_close`.
///
/// Close is exact on every backend: a send that returned `Ok` is always received before the
/// receiver reports `Closed`, and nothing is received after it — so `close`, then receiving
/// until `Closed`, is a graceful shutdown that loses nothing. The `Stream` is fused.
pub struct Receiver<T: Send + 'static, B: BoundedChannel> {
    raw: B::Receiver<T>,
    shared: Arc<Shared>,
    /// The waker of a `Stream` poll left pending. Any other receive takes over the backend's
    /// one wait slot, so it wakes this first (the stream's task polls again and re-registers):
    /// otherwise that task would never hear of the next message.
    stream_waker: Option<Waker>,
    /// The `Stream` has ended (`FusedStream`).
    stream_ended: bool,
}

impl<T: Send + 'static, B: BoundedChannel> Receiver<T, B> {
    pub(crate) fn new(raw: B::Receiver<T>, shared: Arc<Shared>) -> Self {
        Receiver {
            raw,
            shared,
            stream_waker: None,
            stream_ended: false,
        }
    }

    /// Takes the next message if one is queued; never waits for one to be sent.
    ///
    /// Like the queue underneath, it may wait for a send that is writing the next message at
    /// that moment, so as never to report `Empty` while a message is queued: crossbeam-channel
    /// and async-channel spin, flume waits for its lock, and tokio parks the thread until the
    /// write is done. That is nanoseconds to microseconds, unless the sending thread is
    /// descheduled in the middle of its send.
    ///
    /// # Errors
    /// `Empty` if nothing is queued now, `Closed` once drained and closed.
    #[inline]
    pub fn try_recv(&mut self) -> Result<T, TryRecvError> {
        // Counted inside the backend's `then`: under `AnyBackend` each arm counts for itself.
        let received = &self.shared.monitor.recv.received;
        let result = self.raw.try_recv_then(|result| {
            let msg = result?;
            bump_exclusive(received);
            Ok(msg)
        });
        // A pending `Stream` poll's wait is handed on only when this finds nothing: a
        // `try_recv` takes no wait slot, so the poll stays registered and the next push wakes
        // it. Ending the wait on an empty channel stops pushes waking a task that polls no
        // more. (Checked on every call, it cost 3 instructions of every receive, callgrind.)
        if result.is_err() {
            self.wake_stream_after_miss();
        }
        result
    }

    /// Waits for the next message.
    ///
    /// # Errors
    /// `Closed` once the channel is drained and closed. Never `WouldDeadlock`.
    ///
    /// # Cancel safety
    /// Cancel-safe on every backend: if the future is dropped before it completes, no message
    /// is lost (it stays queued for the next receive).
    pub async fn recv(&mut self) -> Result<T, RecvError> {
        self.wake_stream();
        let msg = self.raw.recv_until(None).await?;
        self.count_received();
        Ok(msg)
    }

    /// Blocks the thread until the next message.
    ///
    /// # Errors
    /// `Closed` once drained and closed; `WouldDeadlock` where blocking would stall an async
    /// runtime (see [`crate::runtime`]).
    pub fn recv_blocking(&mut self) -> Result<T, RecvError> {
        self.wake_stream();
        let result = self
            .raw
            .recv_blocking_until(None, self.shared.wait_strategy);
        self.count(result).map_err(RecvError::from)
    }

    /// Waits at most `wait` for the next message.
    ///
    /// # Errors
    /// `Timeout` if nothing arrived (never before `wait` has passed), `Closed` once drained and
    /// closed.
    ///
    /// # Cancel safety
    /// Cancel-safe, like [`recv`](Self::recv).
    pub async fn recv_timeout(&mut self, wait: Duration) -> Result<T, RecvTimeoutError> {
        self.wake_stream();
        let result = self.raw.recv_until(deadline_after(wait)).await;
        self.count(result)
    }

    /// Blocks at most `wait` for the next message.
    ///
    /// # Errors
    /// As [`recv_timeout`](Self::recv_timeout), plus `WouldDeadlock` where blocking would stall
    /// an async runtime.
    pub fn recv_timeout_blocking(&mut self, wait: Duration) -> Result<T, RecvTimeoutError> {
        self.wake_stream();
        let result = self
            .raw
            .recv_blocking_until(deadline_after(wait), self.shared.wait_strategy);
        self.count(result)
    }

    /// Closes the channel: new sends fail with `Closed(msg)`, blocked senders wake (and either
    /// complete or fail with `Closed(msg)`), and what is queued can still be received.
    pub fn close(&mut self) {
        self.raw.close();
    }

    /// Whether the channel is closed (by [`close`](Self::close) or because every sender is
    /// gone). Messages may still be queued.
    pub fn is_closed(&self) -> bool {
        self.raw.is_closed()
    }

    /// How many messages are queued now.
    pub fn len(&self) -> usize {
        self.raw.len().min(self.capacity())
    }

    /// Whether nothing is queued now.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The channel's capacity.
    pub fn capacity(&self) -> usize {
        self.shared.capacity.get()
    }

    /// The channel's name (its `channel` metrics label).
    pub fn name(&self) -> &str {
        self.shared.info.name()
    }

    /// The backend's config name.
    pub fn backend(&self) -> &'static str {
        self.shared.info.backend()
    }

    /// A handle on the channel's identity and counters that keeps no endpoint alive: what a
    /// [`Watcher`](crate::Watcher) watches.
    pub fn handle(&self) -> ChannelHandle {
        ChannelHandle::new(Arc::clone(&self.shared))
    }

    /// A snapshot of the channel's counters and depth.
    pub fn stats(&self) -> ChannelStats {
        self.shared.monitor.snapshot(
            || Occupancy::exact(self.raw.len()),
            self.shared.capacity.get(),
        )
    }

    /// Counts a receive; `&mut self` is what makes the receiver the counter's only writer.
    fn count_received(&mut self) {
        bump_exclusive(&self.shared.monitor.recv.received);
    }

    fn count(&mut self, result: Result<T, RecvTimeoutError>) -> Result<T, RecvTimeoutError> {
        match &result {
            Ok(_) => self.count_received(),
            Err(RecvTimeoutError::Timeout) => self.shared.recv_timed_out(),
            Err(RecvTimeoutError::WouldDeadlock) => self.shared.recv_would_deadlock(),
            Err(RecvTimeoutError::Closed) => {}
        }
        result
    }

    /// [`wake_stream`](Self::wake_stream) out of line, off `try_recv`'s path for a message.
    #[cold]
    #[inline(never)]
    fn wake_stream_after_miss(&mut self) {
        self.wake_stream();
    }

    /// Hands a pending `Stream` poll's wake-up on before another receive takes the wait slot.
    #[inline]
    fn wake_stream(&mut self) {
        // Test before taking: `take` writes the field even when it is empty.
        if self.stream_waker.is_some()
            && let Some(waker) = self.stream_waker.take()
        {
            self.raw.end_poll_wait();
            waker.wake();
        }
    }
}

impl<T: Send + 'static, B: BoundedChannel> Stream for Receiver<T, B> {
    type Item = T;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        let this = self.get_mut();
        if this.stream_ended {
            return Poll::Ready(None);
        }
        let polled = this.raw.poll_recv(cx);
        match &polled {
            Poll::Ready(Some(_)) => {
                this.stream_waker = None;
                this.count_received();
            }
            Poll::Ready(None) => {
                this.stream_waker = None;
                this.stream_ended = true;
            }
            Poll::Pending => match &mut this.stream_waker {
                Some(waker) if waker.will_wake(cx.waker()) => {}
                slot => *slot = Some(cx.waker().clone()),
            },
        }
        polled
    }
}

impl<T: Send + 'static, B: BoundedChannel> FusedStream for Receiver<T, B> {
    /// Whether the stream has yielded `None`: the channel was drained and closed, and (close
    /// being exact on every backend) nothing can arrive any more.
    fn is_terminated(&self) -> bool {
        self.stream_ended
    }
}

impl<T: Send + 'static, B: BoundedChannel> Drop for Receiver<T, B> {
    fn drop(&mut self) {
        self.raw.close();
        // Announce before draining: a send that lands after the drain is counted by the last
        // sender (see `Sender`'s drop).
        self.shared.receiver_gone.store(true, SeqCst);
        // Pairs with the last sender's SeqCst load: either it sees `receiver_gone` and counts
        // what lands after this drain, or this drain sees everything it sent.
        fence(SeqCst);
        let mut discarded = 0;
        // Stops at `Empty` too: a send tokio admitted before the close may still be landing;
        // the backend keeps it for the last sender to count (`RawSender::discard_queued`).
        while self.raw.try_recv().is_ok() {
            discarded += 1;
        }
        self.shared.discarded(discarded);
        self.shared.endpoint_gone();
    }
}

impl<T: Send + 'static, B: BoundedChannel> fmt::Debug for Receiver<T, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Receiver")
            .field("name", &self.shared.info.name)
            .field("backend", &self.shared.info.backend)
            .field("capacity", &self.shared.capacity.get())
            .finish_non_exhaustive()
    }
}
