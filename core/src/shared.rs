//! The state a channel's endpoints share — identity, policy, counters, observers, saturation
//! state and who is still there — and the one place a slow-path event is counted and told to
//! the observers.

use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};
use std::time::{Duration, Instant};

use crate::capacity::Capacity;
use crate::channel::{DepthProbe, Occupancy};
use crate::loom::{AtomicBool, AtomicU64, AtomicUsize};
use crate::monitor::{ChannelStats, Monitor, bump};
use crate::observer::{ChannelInfo, Observers, SaturationEvent, SaturationKind};
use crate::policy::{OverflowPolicy, WaitStrategy};
use crate::saturation::SaturationState;

/// One per channel, behind an `Arc` held by every endpoint (and by a watcher, which keeps the
/// counters but no endpoint).
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) info: ChannelInfo,
    pub(crate) capacity: Capacity,
    pub(crate) policy: OverflowPolicy,
    /// How blocking calls wait.
    pub(crate) wait_strategy: WaitStrategy,
    pub(crate) monitor: Monitor,
    pub(crate) observers: Observers,
    pub(crate) saturation: SaturationState,
    /// Set while a watcher holds the channel; a full send enters saturation only then (nothing
    /// else could ever leave it).
    pub(crate) watched: AtomicBool,
    /// Reads the backend's depth without an endpoint.
    depth_probe: DepthProbe,
    /// The depth when the last sender went, for backends whose probe reads the sending side.
    after_senders: AfterSenders,
    /// Live `Sender`s; the last one to go counts messages that raced the receiver's drain.
    pub(crate) senders: AtomicUsize,
    /// Set (SeqCst) by the receiver's drop before its final drain.
    pub(crate) receiver_gone: AtomicBool,
    /// Live endpoints, decremented at the very end of each drop (after its last count), so
    /// that once it reads 0 the counters are final.
    live_endpoints: AtomicUsize,
}

/// The depth and the receive count read when the last sender went (`usize::MAX`: not yet).
#[derive(Debug)]
struct AfterSenders {
    depth: AtomicUsize,
    received: AtomicU64,
}

impl Shared {
    pub(crate) fn new(
        info: ChannelInfo,
        capacity: Capacity,
        policy: OverflowPolicy,
        wait_strategy: WaitStrategy,
        observers: Observers,
        depth_probe: DepthProbe,
    ) -> Self {
        Shared {
            info,
            capacity,
            policy,
            wait_strategy,
            monitor: Monitor::default(),
            observers,
            saturation: SaturationState::default(),
            watched: AtomicBool::new(false),
            depth_probe,
            after_senders: AfterSenders {
                depth: AtomicUsize::new(usize::MAX),
                received: AtomicU64::new(0),
            },
            senders: AtomicUsize::new(1),
            receiver_gone: AtomicBool::new(false),
            live_endpoints: AtomicUsize::new(2),
        }
    }

    /// A new endpoint (a sender clone).
    pub(crate) fn endpoint_added(&self) {
        self.live_endpoints.fetch_add(1, Relaxed);
    }

    /// A weak sender's upgrade: one more sender — if a sender still exists, and so the
    /// channel is not gone. Never from zero: once the last sender went (its drop counted what
    /// was left) or every endpoint went (the counters are final, the watcher may have said so),
    /// an upgrade racing that drop must fail, not revive the channel.
    pub(crate) fn sender_revived(&self) -> bool {
        if !increment_unless_zero(&self.live_endpoints) {
            return false;
        }
        if !increment_unless_zero(&self.senders) {
            self.endpoint_gone();
            return false;
        }
        true
    }

    /// The last thing an endpoint's drop does.
    pub(crate) fn endpoint_gone(&self) {
        self.live_endpoints.fetch_sub(1, Release);
    }

    /// Whether every endpoint is gone: the counters are final.
    pub(crate) fn is_gone(&self) -> bool {
        self.live_endpoints.load(Acquire) == 0
    }

    /// The last sender is going: what the probe may no longer read (see [`Self::depth`]).
    pub(crate) fn last_sender_going(&self, depth_now: usize) {
        // `received` first: a receive between the two reads is then counted in neither, and
        // the depth derived later undercounts by it (never overcounts).
        let received = self.monitor.recv.received.load(Acquire);
        self.after_senders.received.store(received, Relaxed);
        self.after_senders.depth.store(depth_now, Release);
    }

    /// The backend's depth, read without an endpoint: from the probe; once every sender has
    /// gone and a sending-side probe reads nothing, the depth then less what has been received
    /// since (exact but for a receive racing the last sender's drop: nothing can be queued any
    /// more); 0 once the receiver has gone.
    pub(crate) fn depth(&self) -> Occupancy {
        if let Some(depth) = self.depth_probe.read() {
            return depth;
        }
        let at_last_sender = self.after_senders.depth.load(Acquire);
        if self.receiver_gone.load(Acquire) || at_last_sender == usize::MAX {
            return Occupancy::default();
        }
        let received_since =
            self.monitor.recv.received.load(Acquire) - self.after_senders.received.load(Relaxed);
        let left = usize::try_from(received_since).unwrap_or(usize::MAX);
        Occupancy::exact(at_last_sender.saturating_sub(left))
    }

    /// A snapshot read without an endpoint.
    pub(crate) fn stats(&self) -> ChannelStats {
        self.monitor.snapshot(|| self.depth(), self.capacity.get())
    }

    /// The watcher's snapshot, which starts a new `high_water_since_tick` window.
    pub(crate) fn tick_stats(&self) -> ChannelStats {
        self.monitor
            .tick_snapshot(|| self.depth(), self.capacity.get())
    }

    /// A send found the channel full: counted, the high-water mark is now the capacity, the
    /// observers hear of it, and a watched channel enters saturation.
    #[cold]
    pub(crate) fn full(&self) {
        bump(&self.monitor.send.full_events);
        let capacity = self.capacity.get();
        self.monitor.observe_depth(capacity);
        self.observers.each(|o| o.on_full(&self.info));
        if self.watched.load(Relaxed) {
            if let Some(sequence) = self.saturation.enter() {
                self.saturation_event(SaturationKind::Entered, sequence, capacity);
            }
        }
    }

    /// Tells the observers of a saturation event.
    pub(crate) fn saturation_event(&self, kind: SaturationKind, sequence: u64, depth: usize) {
        if self.observers.len() == 0 {
            return;
        }
        let capacity = self.capacity.get();
        let event = SaturationEvent {
            kind,
            sequence,
            depth,
            capacity,
            saturation: crate::monitor::saturation(depth, capacity),
        };
        self.observers.each(|o| o.on_saturation(&self.info, &event));
    }

    /// `drop_newest` refused a message.
    #[cold]
    pub(crate) fn dropped_newest(&self) {
        bump(&self.monitor.send.dropped_newest);
        self.observers.each(|o| o.on_dropped_newest(&self.info));
    }

    /// `drop_oldest` evicted `count` messages.
    pub(crate) fn evicted(&self, count: usize) {
        if count > 0 {
            self.monitor.send.evicted.fetch_add(count as u64, Release);
            self.observers.each(|o| o.on_evicted(&self.info, count));
        }
    }

    /// A retry after a full try.
    pub(crate) fn retried(&self) {
        bump(&self.monitor.send.retries);
    }

    /// A `retry` send gave up.
    #[cold]
    pub(crate) fn retries_exhausted(&self) {
        bump(&self.monitor.send.retries_exhausted);
        self.observers.each(|o| o.on_retry_exhausted(&self.info));
    }

    /// A send gave up at its deadline.
    #[cold]
    pub(crate) fn send_timed_out(&self) {
        bump(&self.monitor.send.timeouts);
        self.observers.each(|o| o.on_timeout(&self.info));
    }

    /// A send failed because the channel was closed.
    #[cold]
    pub(crate) fn closed_error(&self) {
        bump(&self.monitor.send.closed_errors);
        self.observers.each(|o| o.on_closed_error(&self.info));
    }

    /// A blocking send was refused with `WouldDeadlock`.
    #[cold]
    pub(crate) fn send_would_deadlock(&self) {
        bump(&self.monitor.send.would_deadlock);
        self.observers.each(|o| o.on_would_deadlock(&self.info));
    }

    /// A blocking receive was refused with `WouldDeadlock`.
    #[cold]
    pub(crate) fn recv_would_deadlock(&self) {
        bump(&self.monitor.recv.would_deadlock);
        self.observers.each(|o| o.on_would_deadlock(&self.info));
    }

    /// A receive gave up at its deadline.
    #[cold]
    pub(crate) fn recv_timed_out(&self) {
        bump(&self.monitor.recv.recv_timeouts);
    }

    /// A send waited `since` then for room (whatever came of it).
    pub(crate) fn send_waited(&self, since: Instant) {
        self.monitor.record_send_wait(since.elapsed());
    }

    /// Counts messages dropped unread because the receiver closed or went away.
    pub(crate) fn discarded(&self, count: usize) {
        if count > 0 {
            self.monitor
                .recv
                .discarded_at_close
                .fetch_add(count as u64, Release);
        }
    }
}

/// `now + wait`, or `None` (wait forever) if that is beyond what `Instant` can hold.
pub(crate) fn deadline_after(wait: Duration) -> Option<Instant> {
    Instant::now().checked_add(wait)
}

/// Adds one to `count` unless it is zero; whether it did.
fn increment_unless_zero(count: &AtomicUsize) -> bool {
    count
        .fetch_update(Acquire, Relaxed, |n| (n != 0).then(|| n + 1))
        .is_ok()
}
