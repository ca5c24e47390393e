//! The counters every channel keeps, and the [`ChannelStats`] snapshot.
//!
//! The sending side's and the receiving side's counters live on separate padded cache lines:
//! sharing one line cut crossbeam's throughput to 0.28–0.41x on these machines. Counters are
//! plain atomics, and depth is always read from the backend, never computed as
//! sent − received.
//!
//! `sent` is the one count not kept per message: a locked increment on every send (even on a
//! cache line no one else writes) measured at up to half of crossbeam's SPSC throughput. Every
//! accepted message is at any moment queued, received, evicted or discarded, so a snapshot
//! derives `sent` from those: it reads the receiving-side counters first and the backend's depth
//! last, so a message moving out of the queue meanwhile is counted at most once (possibly not
//! yet), and it never reports less than an earlier snapshot did. At quiescence it is exact.

use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};
use std::time::Duration;

use crate::channel::Occupancy;
use crate::loom::{AtomicU64, AtomicUsize};

use crossbeam_utils::CachePadded;

/// Counters written by senders.
#[derive(Debug, Default)]
pub(crate) struct SendCounters {
    pub(crate) full_events: AtomicU64,
    pub(crate) dropped_newest: AtomicU64,
    pub(crate) evicted: AtomicU64,
    pub(crate) timeouts: AtomicU64,
    pub(crate) retries: AtomicU64,
    pub(crate) retries_exhausted: AtomicU64,
    pub(crate) closed_errors: AtomicU64,
    pub(crate) would_deadlock: AtomicU64,
    pub(crate) send_waits: SendWaitRecorder,
}

/// Counters written by the receiver.
#[derive(Debug, Default)]
pub(crate) struct RecvCounters {
    pub(crate) received: AtomicU64,
    pub(crate) discarded_at_close: AtomicU64,
    pub(crate) recv_timeouts: AtomicU64,
    pub(crate) would_deadlock: AtomicU64,
}

/// A channel's counters.
#[derive(Debug, Default)]
pub(crate) struct Monitor {
    pub(crate) send: CachePadded<SendCounters>,
    pub(crate) recv: CachePadded<RecvCounters>,
    /// Written only on slow paths (channel found full) and when stats are read.
    high_water: CachePadded<HighWater>,
    /// The largest `sent` reported so far (written only when stats are read).
    sent_reported: CachePadded<AtomicU64>,
}

/// Adds one to a counter. Release (read with Acquire in `snapshot`): whoever sees the count
/// also sees the queue operation before it, so `sent` never counts a message twice.
#[inline]
pub(crate) fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Release);
}

/// Adds one to a counter that only one thread can write at a time — the receiver's, which every
/// receive reaches through `&mut Receiver`. A plain load and store instead of a locked
/// read-modify-write: on x86 the lock prefix drains the store buffer, which measured as a
/// large share of a crossbeam receive.
#[inline]
pub(crate) fn bump_exclusive(counter: &AtomicU64) {
    counter.store(counter.load(Relaxed).wrapping_add(1), Release);
}

/// The largest depths read: ever, and since the watcher's previous tick (which alone resets it).
#[derive(Debug, Default)]
struct HighWater {
    all_time: AtomicUsize,
    since_tick: AtomicUsize,
}

impl Monitor {
    /// Records a depth read (a sample, a stats read, or a full send: depth = capacity) for the
    /// high-water marks.
    pub(crate) fn observe_depth(&self, depth: usize) {
        for mark in [&self.high_water.all_time, &self.high_water.since_tick] {
            if depth > mark.load(Relaxed) {
                mark.fetch_max(depth, Relaxed);
            }
        }
    }

    /// Records how long a send waited for room.
    pub(crate) fn record_send_wait(&self, waited: Duration) {
        self.send.send_waits.record(waited);
    }

    /// A snapshot for the watcher's tick: as [`snapshot`](Self::snapshot), and it starts the
    /// next window of `high_water_since_tick`.
    pub(crate) fn tick_snapshot(
        &self,
        depth: impl FnOnce() -> Occupancy,
        capacity: usize,
    ) -> ChannelStats {
        let mut stats = self.snapshot(depth, capacity);
        // The snapshot observed the depth it sampled, so the swapped-out mark includes it.
        stats.high_water_since_tick = self.high_water.since_tick.swap(0, Relaxed);
        stats
    }

    /// Takes a snapshot; `depth` reads the backend's depth, and is called after the counters
    /// that messages leave the queue into have been read (see the module docs).
    pub(crate) fn snapshot(
        &self,
        depth: impl FnOnce() -> Occupancy,
        capacity: usize,
    ) -> ChannelStats {
        let send = &*self.send;
        let recv = &*self.recv;
        let received = recv.received.load(Acquire);
        let evicted = send.evicted.load(Acquire);
        let discarded_at_close = recv.discarded_at_close.load(Acquire);
        let occupancy = depth();
        let depth = occupancy.queued.min(capacity);
        self.observe_depth(depth);
        let accounted = received + evicted + discarded_at_close + depth as u64;
        let sent = self
            .sent_reported
            .fetch_max(accounted, Relaxed)
            .max(accounted);
        ChannelStats {
            sent,
            received,
            full_events: send.full_events.load(Relaxed),
            dropped_newest: send.dropped_newest.load(Relaxed),
            evicted,
            discarded_at_close,
            timeouts: send.timeouts.load(Relaxed),
            recv_timeouts: recv.recv_timeouts.load(Relaxed),
            retries: send.retries.load(Relaxed),
            retries_exhausted: send.retries_exhausted.load(Relaxed),
            closed_errors: send.closed_errors.load(Relaxed),
            would_deadlock: send.would_deadlock.load(Relaxed) + recv.would_deadlock.load(Relaxed),
            depth,
            capacity,
            saturation: saturation(occupancy.in_use.max(depth), capacity),
            high_water_mark: self.high_water.all_time.load(Relaxed),
            high_water_since_tick: self.high_water.since_tick.load(Relaxed),
            send_wait: send.send_waits.snapshot(),
        }
    }
}

/// The upper bounds of the send-wait histogram's buckets: 1 µs to about 16.8 s by powers of 4
/// (13 bounds; a 14th bucket holds longer waits).
pub const SEND_WAIT_BOUNDS: [Duration; 13] = {
    let mut bounds = [Duration::ZERO; 13];
    let mut index = 0;
    let mut micros = 1;
    while index < bounds.len() {
        bounds[index] = Duration::from_micros(micros);
        micros *= 4;
        index += 1;
    }
    bounds
};

const BUCKETS: usize = SEND_WAIT_BOUNDS.len() + 1;

/// The send-wait histogram's atomics: written only by sends that waited (the slow path).
#[derive(Debug)]
pub(crate) struct SendWaitRecorder {
    buckets: [AtomicU64; BUCKETS],
    sum_nanos: AtomicU64,
}

impl Default for SendWaitRecorder {
    fn default() -> Self {
        SendWaitRecorder {
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            sum_nanos: AtomicU64::new(0),
        }
    }
}

impl SendWaitRecorder {
    fn record(&self, waited: Duration) {
        let bucket = SEND_WAIT_BOUNDS
            .iter()
            .position(|bound| waited <= *bound)
            .unwrap_or(BUCKETS - 1);
        let nanos = u64::try_from(waited.as_nanos()).unwrap_or(u64::MAX);
        self.sum_nanos.fetch_add(nanos, Relaxed);
        self.buckets[bucket].fetch_add(1, Relaxed);
    }

    fn snapshot(&self) -> SendWaitHistogram {
        let counts: [u64; BUCKETS] = std::array::from_fn(|i| self.buckets[i].load(Relaxed));
        SendWaitHistogram {
            counts,
            count: counts.iter().sum(),
            sum: Duration::from_nanos(self.sum_nanos.load(Relaxed)),
        }
    }
}

/// How long sends waited for room: only sends that found the channel full and then waited
/// (the `block`, `timeout` and `retry` policies, `send_timeout*`) are recorded, whatever the
/// outcome; a send that found room at once is not. Fixed buckets ([`SEND_WAIT_BOUNDS`]), no
/// allocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct SendWaitHistogram {
    /// Waits per bucket (not cumulative): `counts[i]` are the waits longer than bound `i - 1`
    /// and at most bound `i`; the last holds those longer than every bound.
    pub counts: [u64; SEND_WAIT_BOUNDS.len() + 1],
    /// Waits recorded (the sum of `counts`).
    pub count: u64,
    /// Their total duration.
    pub sum: Duration,
}

impl SendWaitHistogram {
    /// Cumulative counts as Prometheus buckets: `(Some(upper bound), waits at most that long)`
    /// per bound, then `(None, count)` for `+Inf`.
    pub fn cumulative(&self) -> impl Iterator<Item = (Option<Duration>, u64)> + '_ {
        let bounds = SEND_WAIT_BOUNDS.iter().copied().map(Some).chain([None]);
        bounds.zip(self.counts.iter().scan(0, |total, count| {
            *total += count;
            Some(*total)
        }))
    }
}

/// Depth as a fraction of capacity, in `[0, 1]`: the one place this arithmetic lives.
pub fn saturation(depth: usize, capacity: usize) -> f64 {
    if capacity == 0 {
        return 0.0;
    }
    (depth.min(capacity) as f64 / capacity as f64).clamp(0.0, 1.0)
}

/// A snapshot of one channel's counters and depth.
///
/// Counters never decrease. When activity has stopped,
/// `sent == received + depth + evicted + discarded_at_close`; while messages are moving, `sent`
/// may lag by the messages between the queue and a counter at that instant.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct ChannelStats {
    /// Messages the channel accepted. Not counted per send (a locked increment on every send
    /// cost up to half of crossbeam's throughput): derived when the snapshot is taken as
    /// `received + evicted + discarded_at_close + depth`, never lower than an earlier snapshot.
    pub sent: u64,
    /// Messages the receiver took.
    pub received: u64,
    /// Sends (of any kind) that found the channel full.
    pub full_events: u64,
    /// Messages refused by the `drop_newest` policy (given back as `Full`).
    pub dropped_newest: u64,
    /// Queued messages evicted by the `drop_oldest` policy.
    pub evicted: u64,
    /// Messages still queued when the receiver closed or went away, dropped unread.
    pub discarded_at_close: u64,
    /// Sends that gave up at their deadline.
    pub timeouts: u64,
    /// Receives that gave up at their deadline.
    pub recv_timeouts: u64,
    /// Extra attempts made by the `retry` policy.
    pub retries: u64,
    /// `retry` sends that gave up (after `max_attempts`, or at the deadline) and handed the
    /// message back as `Full`.
    pub retries_exhausted: u64,
    /// Sends that failed because the channel was closed.
    pub closed_errors: u64,
    /// Blocking calls (sends and receives) refused with `WouldDeadlock` because blocking there
    /// would stall an async runtime.
    pub would_deadlock: u64,
    /// Messages queued now (from the backend). On tokio, read from the sending side while
    /// sends wait inside tokio, it may undercount by up to the number of those sends (tokio
    /// hands them slots before their messages are written, and the count never includes a slot
    /// that a cancelled send may give back); `saturation` counts those slots.
    pub depth: usize,
    /// The channel's capacity.
    pub capacity: usize,
    /// The fraction of slots in use, in `[0, 1]`: `depth / capacity`, except that on tokio a
    /// slot already handed to a waiting send (whose message is not written yet) counts as in
    /// use — a new send cannot have it.
    pub saturation: f64,
    /// The largest depth read so far: on full sends (depth = capacity), stats reads and the
    /// watcher's samples. Peaks between two reads are not seen.
    pub high_water_mark: usize,
    /// The same since the watcher's previous tick (only a tick starts a new window; without a
    /// watcher it equals `high_water_mark`).
    pub high_water_since_tick: usize,
    /// How long sends waited for room.
    pub send_wait: SendWaitHistogram,
}

/// Loom model of the counters' one concurrency claim: `sent`, derived at snapshot time, never
/// counts a message twice, never goes backwards, and is exact once activity stops. Run with
/// `RUSTFLAGS="--cfg boundflow_loom" CARGO_TARGET_DIR=target/loom LOOM_MAX_PREEMPTIONS=2
/// cargo test -p boundflow-core --release --lib loom`.
#[cfg(all(test, boundflow_loom))]
mod loom_model {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::{Monitor, bump, bump_exclusive};
    use crate::channel::Occupancy;
    use loom::sync::Arc;
    use loom::sync::atomic::AtomicUsize;
    use loom::sync::atomic::Ordering::{AcqRel, Acquire, Release};
    use loom::thread;

    const CAPACITY: usize = 4;

    /// A queue reduced to its depth: a push adds one, a pop or an eviction takes one away.
    struct Channel {
        queued: AtomicUsize,
        monitor: Monitor,
    }

    impl Channel {
        fn push(&self) {
            self.queued.fetch_add(1, Release);
        }

        /// Takes one message if there is one (as the receiver, or as an evicting sender).
        fn take(&self) -> bool {
            let mut depth = self.queued.load(Acquire);
            while depth > 0 {
                match self
                    .queued
                    .compare_exchange(depth, depth - 1, AcqRel, Acquire)
                {
                    Ok(_) => return true,
                    Err(now) => depth = now,
                }
            }
            false
        }

        fn sent(&self) -> u64 {
            self.monitor
                .snapshot(|| Occupancy::exact(self.queued.load(Acquire)), CAPACITY)
                .sent
        }
    }

    #[test]
    fn derived_sent_is_monotonic_bounded_and_exact_at_rest() {
        loom::model(|| {
            let channel = Arc::new(Channel {
                queued: AtomicUsize::new(0),
                monitor: Monitor::default(),
            });
            // A sender pushes two messages and then evicts the oldest (drop_oldest).
            let sender = {
                let channel = Arc::clone(&channel);
                thread::spawn(move || {
                    channel.push();
                    channel.push();
                    if channel.take() {
                        bump(&channel.monitor.send.evicted);
                    }
                })
            };
            // The receiver takes one message if there is one.
            let receiver = {
                let channel = Arc::clone(&channel);
                thread::spawn(move || {
                    if channel.take() {
                        bump_exclusive(&channel.monitor.recv.received);
                    }
                })
            };
            // An observer reads stats twice while that happens.
            let first = channel.sent();
            let second = channel.sent();
            assert!(
                first <= second,
                "sent went backwards: {first} then {second}"
            );
            assert!(second <= 2, "a message was counted twice: sent = {second}");
            sender.join().unwrap();
            receiver.join().unwrap();
            assert_eq!(channel.sent(), 2, "sent is exact at rest");
        });
    }
}
