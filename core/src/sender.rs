//! The monitored sending endpoint: the one place that counts sends and applies the policy.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::Ordering::{AcqRel, Relaxed, SeqCst};
use std::sync::atomic::fence;
use std::time::{Duration, Instant};

use crate::channel::{BoundedChannel, RawSender};
use crate::error::{SendError, SendTimeoutError, TrySendError};
use crate::monitor::{ChannelStats, bump};
use crate::policy::{OverflowPolicy, RetryPolicy};
use crate::runtime::blocking_permit;
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
    pub fn try_send(&self, msg: T) -> Result<(), TrySendError<T>> {
        match self.raw.try_send(msg) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(msg)) => {
                self.count_full();
                Err(TrySendError::Full(msg))
            }
            Err(TrySendError::Closed(msg)) => {
                bump(&self.shared.monitor.send.closed_errors);
                Err(TrySendError::Closed(msg))
            }
        }
    }

    /// Sends `msg`, applying the channel's overflow policy when it is full.
    ///
    /// # Errors
    /// `Closed(msg)` always possible; `Timeout(msg)` under `timeout`; `Full(msg)` under
    /// `drop_newest` or when `retry` gives up. Never `WouldDeadlock`.
    ///
    /// # Cancel safety
    /// The future owns `msg`: dropping it before completion drops the message (as with tokio).
    /// The counters stay exact either way.
    pub async fn send(&self, msg: T) -> Result<(), SendError<T>> {
        let msg = match self.first_try(msg) {
            FirstTry::Done(result) => return result,
            FirstTry::Full(msg) => msg,
        };
        match self.shared.policy {
            OverflowPolicy::Block => self.finish(self.raw.send_until(msg, None).await),
            OverflowPolicy::Timeout(wait) => {
                self.finish(self.raw.send_until(msg, deadline_after(wait)).await)
            }
            OverflowPolicy::Retry(retry) => {
                let mut schedule = RetrySchedule::new(retry);
                let mut msg = msg;
                while let Some(wake) = schedule.next_wake() {
                    timer::sleep_until(wake).await;
                    msg = match self.retry_once(msg) {
                        FirstTry::Done(result) => return result,
                        FirstTry::Full(msg) => msg,
                    };
                }
                Err(SendError::Full(msg))
            }
            _ => self.no_wait_policy(msg),
        }
    }

    /// Sends `msg` from any thread, blocking it while the policy waits.
    ///
    /// # Errors
    /// As [`send`](Self::send), plus `WouldDeadlock(msg)` where blocking would stall a
    /// current-thread tokio runtime.
    pub fn send_blocking(&self, msg: T) -> Result<(), SendError<T>> {
        let msg = match self.first_try(msg) {
            FirstTry::Done(result) => return result,
            FirstTry::Full(msg) => msg,
        };
        match self.shared.policy {
            OverflowPolicy::Block => self.finish(self.raw.send_blocking_until(msg, None)),
            OverflowPolicy::Timeout(wait) => {
                self.finish(self.raw.send_blocking_until(msg, deadline_after(wait)))
            }
            OverflowPolicy::Retry(retry) => {
                let Some(permit) = blocking_permit() else {
                    return Err(SendError::WouldDeadlock(msg));
                };
                permit.run(|| {
                    let mut schedule = RetrySchedule::new(retry);
                    let mut msg = msg;
                    while let Some(wake) = schedule.next_wake() {
                        std::thread::sleep(wake.saturating_duration_since(Instant::now()));
                        msg = match self.retry_once(msg) {
                            FirstTry::Done(result) => return result,
                            FirstTry::Full(msg) => msg,
                        };
                    }
                    Err(SendError::Full(msg))
                })
            }
            _ => self.no_wait_policy(msg),
        }
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
            FirstTry::Full(msg) => self
                .finish(self.raw.send_until(msg, deadline_after(wait)).await)
                .map_err(timeout_error),
        }
    }

    /// Sends `msg` from any thread, blocking at most `wait` for room.
    ///
    /// # Errors
    /// As [`send_timeout`](Self::send_timeout), plus `WouldDeadlock(msg)` where blocking would
    /// stall a current-thread tokio runtime.
    pub fn send_timeout_blocking(&self, msg: T, wait: Duration) -> Result<(), SendTimeoutError<T>> {
        match self.first_try(msg) {
            FirstTry::Done(result) => result.map_err(timeout_error),
            FirstTry::Full(msg) => self
                .finish(self.raw.send_blocking_until(msg, deadline_after(wait)))
                .map_err(timeout_error),
        }
    }

    /// Queues `msg`, evicting the oldest queued message if the channel is full, and returns the
    /// first message evicted (under contention one call may evict more than one; each is
    /// counted, the rest are dropped). Never waits.
    ///
    /// # Errors
    /// `Closed(msg)` if the receiver closed or went away; `Full(msg)` if the backend cannot evict
    /// from the sending side (tokio).
    pub fn force_send(&self, msg: T) -> Result<Option<T>, TrySendError<T>> {
        let mut msg = match self.first_try(msg) {
            FirstTry::Done(result) => return result.map(|()| None).map_err(try_error),
            FirstTry::Full(msg) => msg,
        };
        if !self.shared.can_evict {
            return Err(TrySendError::Full(msg));
        }
        let mut first_evicted = None;
        loop {
            if let Some(old) = self.raw.evict_oldest() {
                bump(&self.shared.monitor.send.evicted);
                first_evicted.get_or_insert(old);
            }
            msg = match self.retry_once_uncounted(msg) {
                FirstTry::Done(result) => return result.map(|()| first_evicted).map_err(try_error),
                FirstTry::Full(msg) => msg,
            };
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
        &self.shared.name
    }

    /// The backend's config name.
    pub fn backend(&self) -> &'static str {
        self.shared.backend
    }

    /// The channel's overflow policy.
    pub fn policy(&self) -> OverflowPolicy {
        self.shared.policy
    }

    /// A snapshot of the channel's counters and depth.
    pub fn stats(&self) -> ChannelStats {
        self.shared
            .monitor
            .snapshot(|| self.raw.len(), self.shared.capacity.get())
    }

    /// The slow path's bookkeeping: a full event, and the high-water mark is now the capacity.
    #[cold]
    fn count_full(&self) {
        bump(&self.shared.monitor.send.full_events);
        self.shared
            .monitor
            .observe_depth(self.shared.capacity.get());
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
        bump(&self.shared.monitor.send.retries);
        self.retry_once_uncounted(msg)
    }

    fn retry_once_uncounted(&self, msg: T) -> FirstTry<T> {
        match self.raw.try_send(msg) {
            Ok(()) => FirstTry::Done(Ok(())),
            Err(TrySendError::Closed(msg)) => {
                bump(&self.shared.monitor.send.closed_errors);
                FirstTry::Done(Err(SendError::Closed(msg)))
            }
            Err(TrySendError::Full(msg)) => FirstTry::Full(msg),
        }
    }

    /// The policies that never wait: `drop_newest` and `drop_oldest`.
    fn no_wait_policy(&self, msg: T) -> Result<(), SendError<T>> {
        if self.shared.policy == OverflowPolicy::DropOldest {
            return self.force_send(msg).map(drop).map_err(SendError::from);
        }
        bump(&self.shared.monitor.send.dropped_newest);
        Err(SendError::Full(msg))
    }

    /// Counts the outcome of a backend wait.
    fn finish(&self, result: Result<(), SendTimeoutError<T>>) -> Result<(), SendError<T>> {
        let counters = &self.shared.monitor.send;
        match &result {
            Ok(()) => {}
            Err(SendTimeoutError::Timeout(_)) => bump(&counters.timeouts),
            Err(SendTimeoutError::Closed(_)) => bump(&counters.closed_errors),
            Err(SendTimeoutError::WouldDeadlock(_)) => {}
        }
        result.map_err(SendError::from)
    }
}

/// The wake-up times of a `retry` send after its first try failed.
struct RetrySchedule {
    policy: RetryPolicy,
    attempt: u32,
    deadline: Option<Instant>,
}

impl RetrySchedule {
    fn new(policy: RetryPolicy) -> Self {
        RetrySchedule {
            policy,
            attempt: 1,
            deadline: policy.deadline.and_then(deadline_after),
        }
    }

    /// When to make the next try, or `None` when the policy gives up.
    fn next_wake(&mut self) -> Option<Instant> {
        if self.attempt >= self.policy.max_attempts {
            return None;
        }
        let now = Instant::now();
        if self.deadline.is_some_and(|deadline| now >= deadline) {
            return None;
        }
        let pause = self.policy.jittered_backoff(self.attempt);
        self.attempt += 1;
        let wake = now.checked_add(pause).unwrap_or(now);
        Some(self.deadline.map_or(wake, |deadline| wake.min(deadline)))
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

impl<T: Send + 'static, B: BoundedChannel> Clone for Sender<T, B> {
    fn clone(&self) -> Self {
        self.shared.senders.fetch_add(1, Relaxed);
        Sender {
            raw: self.raw.clone(),
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<T: Send + 'static, B: BoundedChannel> Drop for Sender<T, B> {
    fn drop(&mut self) {
        let last = self.shared.senders.fetch_sub(1, AcqRel) == 1;
        fence(SeqCst);
        // A send that raced the receiver's final drain may have left a message behind; the last
        // sender counts it (the receiver set `receiver_gone` before draining).
        if last && self.shared.receiver_gone.load(SeqCst) {
            let stranded = self.raw.discard_queued();
            self.shared.monitor.count_discarded(stranded);
        }
    }
}

impl<T: Send + 'static, B: BoundedChannel> fmt::Debug for Sender<T, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sender")
            .field("name", &self.shared.name)
            .field("backend", &self.shared.backend)
            .field("capacity", &self.shared.capacity.get())
            .field("policy", &self.shared.policy)
            .finish_non_exhaustive()
    }
}
