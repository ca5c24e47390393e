//! The monitored sending endpoint: the one place that counts sends and applies the policy.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::Ordering::{AcqRel, Relaxed, SeqCst};
use std::time::{Duration, Instant};

use crate::channel::{BoundedChannel, Occupancy, RawSender};
use crate::error::{SendError, SendTimeoutError, TrySendError};
use crate::handle::ChannelHandle;
use crate::loom::fence;
use crate::monitor::ChannelStats;
use crate::policy::{OverflowPolicy, RetryPolicy, WaitStrategy};
use crate::runtime::block;
use crate::shared::{Shared, deadline_after};
use crate::timer;

/// The sending half of a boundflow channel. Clone it for more producers.
///
/// | | async | blocking (any thread) | never waits |
/// |---|---|---|---|
/// | send, applying the channel's overflow policy | [`send`](Self::send) | [`send_blocking`](Self::send_blocking) | [`try_send`](Self::try_send) |
/// | send with a deadline | [`send_timeout`](Self::send_timeout) | [`send_timeout_blocking`](Self::send_timeout_blocking) | — |
///
/// Every failed send gives the message back in its error (`into_inner()`).
///
/// # Blocking calls inside a tokio runtime
/// The `*_blocking` calls never panic: outside a runtime they block; on a multi-thread runtime
/// they block inside `block_in_place`; on a current-thread runtime, where blocking would
/// deadlock, they return `WouldDeadlock(msg)` (see [`crate::runtime`]).
pub struct Sender<T: Send + 'static, B: BoundedChannel> {
    raw: B::Sender<T>,
    shared: Arc<Shared>,
}

/// What the non-waiting first attempt of a policy send found.
enum FirstTry<T> {
    Done(Result<(), SendError<T>>),
    Full(T),
}

impl<T: Send + 'static, B: BoundedChannel> Sender<T, B> {
    pub(crate) fn new(raw: B::Sender<T>, shared: Arc<Shared>) -> Self {
        Sender { raw, shared }
    }

    /// Queues `msg` if there is room now; never waits and ignores the overflow policy.
    ///
    /// # Errors
    /// `Full(msg)` if the channel is full, `Closed(msg)` if the receiver closed or went away.
    #[inline]
    pub fn try_send(&self, msg: T) -> Result<(), TrySendError<T>> {
        self.raw.try_send_then(msg, |result| match result {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(msg)) => {
                self.shared.full();
                Err(TrySendError::Full(msg))
            }
            Err(TrySendError::Closed(msg)) => {
                self.shared.closed_error();
                Err(TrySendError::Closed(msg))
            }
        })
    }

    /// Sends `msg`, applying the channel's overflow policy when it is full.
    ///
    /// # Errors
    /// `Closed(msg)` always possible; `Timeout(msg)` under `timeout`; `Full(msg)` under
    /// `drop_newest` or when `retry` gives up. Never `WouldDeadlock`.
    ///
    /// # Cancel safety
    /// The future owns `msg`: dropping it before completion drops the message (as with tokio).
    /// The counters stay exact either way: a message is counted in `sent` only once accepted.
    pub async fn send(&self, msg: T) -> Result<(), SendError<T>> {
        match self.first_try(msg) {
            FirstTry::Done(result) => result,
            FirstTry::Full(msg) => self.send_when_full(msg).await,
        }
    }

    /// [`send`](Self::send) after its first try found the channel full. A future of its own, so
    /// that a send that finds room completes in a small future whose drop has one state to
    /// test (callgrind: inline, the waiting states' drop glue cost 15 instructions a send).
    async fn send_when_full(&self, msg: T) -> Result<(), SendError<T>> {
        let deadline = match self.shared.policy {
            OverflowPolicy::Block => None,
            OverflowPolicy::Timeout(wait) => deadline_after(wait),
            OverflowPolicy::Retry(retry) => {
                let started = Instant::now();
                let mut schedule = RetrySchedule::new(retry);
                let mut msg = msg;
                while let Some(pause) = schedule.next_pause() {
                    match pause {
                        Pause::Yield => timer::yield_now().await,
                        Pause::Until(wake) => timer::sleep_until(wake).await,
                    }
                    msg = match self.retry_once(msg) {
                        FirstTry::Done(result) => return self.waited(started, result),
                        FirstTry::Full(msg) => msg,
                    };
                }
                return self.waited(started, Err(self.retries_exhausted(msg)));
            }
            OverflowPolicy::DropNewest => return Err(self.dropped_newest(msg)),
            OverflowPolicy::DropOldest => {
                return self.evict_for(msg).map(drop).map_err(SendError::from);
            }
        };
        let started = Instant::now();
        self.finish(started, self.raw.send_until(msg, deadline).await)
    }

    /// Sends `msg` from any thread, blocking it while the policy waits.
    ///
    /// # Errors
    /// As [`send`](Self::send), plus `WouldDeadlock(msg)` where blocking would stall an async
    /// runtime (see [`crate::runtime`]).
    pub fn send_blocking(&self, msg: T) -> Result<(), SendError<T>> {
        let msg = match self.first_try(msg) {
            FirstTry::Done(result) => return result,
            FirstTry::Full(msg) => msg,
        };
        let deadline = match self.shared.policy {
            OverflowPolicy::Block => None,
            OverflowPolicy::Timeout(wait) => deadline_after(wait),
            OverflowPolicy::Retry(retry) => {
                let started = Instant::now();
                let retried = block(msg, |mut msg| {
                    let mut schedule = RetrySchedule::new(retry);
                    while let Some(pause) = schedule.next_pause() {
                        match pause {
                            Pause::Yield => std::thread::yield_now(),
                            Pause::Until(wake) => {
                                std::thread::sleep(wake.saturating_duration_since(Instant::now()));
                            }
                        }
                        msg = match self.retry_once(msg) {
                            FirstTry::Done(result) => return self.waited(started, result),
                            FirstTry::Full(msg) => msg,
                        };
                    }
                    self.waited(started, Err(self.retries_exhausted(msg)))
                });
                return retried.unwrap_or_else(|msg| {
                    self.shared.send_would_deadlock();
                    Err(SendError::WouldDeadlock(msg))
                });
            }
            OverflowPolicy::DropNewest => return Err(self.dropped_newest(msg)),
            OverflowPolicy::DropOldest => {
                return self.evict_for(msg).map(drop).map_err(SendError::from);
            }
        };
        let started = Instant::now();
        self.finish(
            started,
            self.raw
                .send_blocking_until(msg, deadline, self.shared.wait_strategy),
        )
    }

    /// Sends `msg`, waiting at most `wait` for room, whatever the channel's policy.
    ///
    /// # Errors
    /// `Timeout(msg)` if the channel stayed full (never before `wait` has passed),
    /// `Closed(msg)` if the receiver closed or went away.
    ///
    /// # Cancel safety
    /// The future owns `msg`: dropping it drops the message.
    pub async fn send_timeout(&self, msg: T, wait: Duration) -> Result<(), SendTimeoutError<T>> {
        match self.first_try(msg) {
            FirstTry::Done(result) => result.map_err(timeout_error),
            FirstTry::Full(msg) => {
                let started = Instant::now();
                let sent = self.raw.send_until(msg, deadline_after(wait)).await;
                self.finish(started, sent).map_err(timeout_error)
            }
        }
    }

    /// Sends `msg` from any thread, blocking at most `wait` for room.
    ///
    /// # Errors
    /// As [`send_timeout`](Self::send_timeout), plus `WouldDeadlock(msg)` where blocking would
    /// stall an async runtime.
    pub fn send_timeout_blocking(&self, msg: T, wait: Duration) -> Result<(), SendTimeoutError<T>> {
        match self.first_try(msg) {
            FirstTry::Done(result) => result.map_err(timeout_error),
            FirstTry::Full(msg) => {
                let started = Instant::now();
                let sent = self.raw.send_blocking_until(
                    msg,
                    deadline_after(wait),
                    self.shared.wait_strategy,
                );
                self.finish(started, sent).map_err(timeout_error)
            }
        }
    }

    /// Queues `msg`, evicting the oldest queued message if the channel is full, and returns the
    /// first message evicted (under contention one call may evict more than one; each is
    /// counted, the rest are dropped). Never waits. A `close` racing it never strands an
    /// eviction: the evicted message's slot is taken by `msg`, which is then drained.
    ///
    /// # Errors
    /// `Closed(msg)` if the receiver closed or went away; `Full(msg)` if the backend cannot evict
    /// from the sending side (tokio).
    pub fn force_send(&self, msg: T) -> Result<Option<T>, TrySendError<T>> {
        match self.first_try(msg) {
            FirstTry::Done(result) => result.map(|()| None).map_err(try_error),
            FirstTry::Full(msg) => self.evict_for(msg),
        }
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

    /// Whether the receiver has closed or gone away (sends will fail with `Closed`).
    pub fn is_closed(&self) -> bool {
        self.raw.is_closed()
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

    /// The channel's overflow policy.
    pub fn policy(&self) -> OverflowPolicy {
        self.shared.policy
    }

    /// How the channel's blocking calls wait.
    pub fn wait_strategy(&self) -> WaitStrategy {
        self.shared.wait_strategy
    }

    /// A snapshot of the channel's counters and depth.
    pub fn stats(&self) -> ChannelStats {
        self.shared
            .monitor
            .snapshot(|| self.occupancy(), self.shared.capacity.get())
    }

    fn occupancy(&self) -> Occupancy {
        Occupancy {
            queued: self.raw.len(),
            in_use: self.raw.in_use(),
        }
    }

    fn first_try(&self, msg: T) -> FirstTry<T> {
        match self.try_send(msg) {
            Ok(()) => FirstTry::Done(Ok(())),
            Err(TrySendError::Closed(msg)) => FirstTry::Done(Err(SendError::Closed(msg))),
            Err(TrySendError::Full(msg)) => FirstTry::Full(msg),
        }
    }

    /// A later attempt of the same send: counted as a retry, not as another full event.
    fn retry_once(&self, msg: T) -> FirstTry<T> {
        self.shared.retried();
        match self.raw.try_send(msg) {
            Ok(()) => FirstTry::Done(Ok(())),
            Err(TrySendError::Closed(msg)) => {
                self.shared.closed_error();
                FirstTry::Done(Err(SendError::Closed(msg)))
            }
            Err(TrySendError::Full(msg)) => FirstTry::Full(msg),
        }
    }

    /// `retry` gave up: counted, and the message handed back.
    #[cold]
    fn retries_exhausted(&self, msg: T) -> SendError<T> {
        self.shared.retries_exhausted();
        SendError::Full(msg)
    }

    /// `drop_newest` refused the message: counted, and the message handed back.
    #[cold]
    fn dropped_newest(&self, msg: T) -> SendError<T> {
        self.shared.dropped_newest();
        SendError::Full(msg)
    }

    /// `drop_oldest` after the first try found the channel full (that full event is already
    /// counted; the evictions are counted here).
    fn evict_for(&self, msg: T) -> Result<Option<T>, TrySendError<T>> {
        let forced = self.raw.force_send(msg);
        self.shared.evicted(forced.evicted);
        if let Err(TrySendError::Closed(_)) = &forced.outcome {
            self.shared.closed_error();
        }
        forced.outcome
    }

    /// Counts the outcome of a backend wait that began at `started`, and records the wait
    /// (one refused with `WouldDeadlock` never waited).
    fn finish(
        &self,
        started: Instant,
        result: Result<(), SendTimeoutError<T>>,
    ) -> Result<(), SendError<T>> {
        match &result {
            Ok(()) => self.shared.send_waited(started),
            Err(SendTimeoutError::Timeout(_)) => {
                self.shared.send_waited(started);
                self.shared.send_timed_out();
            }
            Err(SendTimeoutError::Closed(_)) => {
                self.shared.send_waited(started);
                self.shared.closed_error();
            }
            Err(SendTimeoutError::WouldDeadlock(_)) => self.shared.send_would_deadlock(),
        }
        result.map_err(SendError::from)
    }

    /// Records the wait of a `retry` send that began at `started`, and passes its outcome on.
    fn waited(
        &self,
        started: Instant,
        result: Result<(), SendError<T>>,
    ) -> Result<(), SendError<T>> {
        self.shared.send_waited(started);
        result
    }
}

/// What a `retry` send does before its next try.
enum Pause {
    /// The pause is zero: only let others run (the consumer may be on this thread).
    Yield,
    /// Sleep until then.
    Until(Instant),
}

/// The pauses of a `retry` send after its first try failed.
struct RetrySchedule<P> {
    pauses: P,
    deadline: Option<Instant>,
}

impl RetrySchedule<()> {
    fn new(policy: RetryPolicy) -> RetrySchedule<impl Iterator<Item = Duration>> {
        RetrySchedule {
            pauses: policy.pauses(),
            deadline: policy.deadline.and_then(deadline_after),
        }
    }
}

impl<P: Iterator<Item = Duration>> RetrySchedule<P> {
    /// What to do before the next try, or `None` when the policy gives up.
    fn next_pause(&mut self) -> Option<Pause> {
        let pause = self.pauses.next()?;
        let now = Instant::now();
        if self.deadline.is_some_and(|deadline| now >= deadline) {
            return None;
        }
        if pause.is_zero() {
            return Some(Pause::Yield);
        }
        let wake = now.checked_add(pause).unwrap_or(now);
        Some(Pause::Until(
            self.deadline.map_or(wake, |deadline| wake.min(deadline)),
        ))
    }
}

fn timeout_error<T>(err: SendError<T>) -> SendTimeoutError<T> {
    match err {
        SendError::Closed(msg) => SendTimeoutError::Closed(msg),
        SendError::WouldDeadlock(msg) => SendTimeoutError::WouldDeadlock(msg),
        SendError::Timeout(msg) | SendError::Full(msg) => SendTimeoutError::Timeout(msg),
    }
}

fn try_error<T>(err: SendError<T>) -> TrySendError<T> {
    match err {
        SendError::Closed(msg) => TrySendError::Closed(msg),
        SendError::Full(msg) | SendError::Timeout(msg) | SendError::WouldDeadlock(msg) => {
            TrySendError::Full(msg)
        }
    }
}

/// A sender that does not keep the channel open, from [`Sender::downgrade`]: the channel
/// closes when the last [`Sender`] goes, however many of these exist. [`upgrade`](Self::upgrade)
/// gives a `Sender` again while one still exists (a registry keeps these).
pub struct WeakSender<T: Send + 'static, B: BoundedChannel> {
    raw: <B::Sender<T> as RawSender<T>>::Weak,
    shared: Arc<Shared>,
}

impl<T: Send + 'static, B: BoundedChannel> Sender<T, B> {
    /// A weak sender of this channel.
    pub fn downgrade(&self) -> WeakSender<T, B> {
        WeakSender {
            raw: self.raw.downgrade(),
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<T: Send + 'static, B: BoundedChannel> WeakSender<T, B> {
    /// A `Sender` of the channel, if a `Sender` still exists.
    pub fn upgrade(&self) -> Option<Sender<T, B>> {
        let raw = B::Sender::<T>::upgrade(&self.raw)?;
        // The backend's sender may outlive the wrapper's last one by the end of its drop; the
        // wrapper's counts decide (and `raw` is dropped again if they say gone).
        if !self.shared.sender_revived() {
            return None;
        }
        Some(Sender {
            raw,
            shared: Arc::clone(&self.shared),
        })
    }

    /// A handle on the channel's identity and counters.
    pub fn handle(&self) -> ChannelHandle {
        ChannelHandle::new(Arc::clone(&self.shared))
    }

    /// Closes the channel as the receiver's `close` would — later sends fail with
    /// `Closed(msg)`, blocked senders wake, the receiver drains what is queued and then sees
    /// `Closed` — if the backend can close from the sending side: `false` if it cannot. Every
    /// backend boundflow has can. tokio's channel closes only from its receiver: there a blocked
    /// sender wakes when the receiver next takes a message, and the receiver finishes the close
    /// when it next finds the queue empty.
    pub fn close(&self) -> bool {
        B::Sender::<T>::close_weak(&self.raw)
    }
}

impl<T: Send + 'static, B: BoundedChannel> Clone for WeakSender<T, B> {
    fn clone(&self) -> Self {
        WeakSender {
            raw: self.raw.clone(),
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<T: Send + 'static, B: BoundedChannel> fmt::Debug for WeakSender<T, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WeakSender")
            .field("name", &self.shared.info.name)
            .finish_non_exhaustive()
    }
}

impl<T: Send + 'static, B: BoundedChannel> Clone for Sender<T, B> {
    fn clone(&self) -> Self {
        self.shared.senders.fetch_add(1, Relaxed);
        self.shared.endpoint_added();
        Sender {
            raw: self.raw.clone(),
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<T: Send + 'static, B: BoundedChannel> Drop for Sender<T, B> {
    fn drop(&mut self) {
        let last = self.shared.senders.fetch_sub(1, AcqRel) == 1;
        if last {
            self.shared.last_sender_going(self.raw.len());
        }
        fence(SeqCst);
        // A send that raced the receiver's final drain may have left a message behind; the last
        // sender counts it (the receiver set `receiver_gone` before draining).
        if last && self.shared.receiver_gone.load(SeqCst) {
            let stranded = self.raw.discard_queued();
            self.shared.discarded(stranded);
        }
        self.shared.endpoint_gone();
    }
}

impl<T: Send + 'static, B: BoundedChannel> fmt::Debug for Sender<T, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sender")
            .field("name", &self.shared.info.name)
            .field("backend", &self.shared.info.backend)
            .field("capacity", &self.shared.capacity.get())
            .field("policy", &self.shared.policy)
            .finish_non_exhaustive()
    }
}
