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
    high_water_mark: CachePadded<AtomicUsize>,
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

impl Monitor {
    /// Records an observed depth for the high-water mark.
    pub(crate) fn observe_depth(&self, depth: usize) {
        if depth > self.high_water_mark.load(Relaxed) {
            self.high_water_mark.fetch_max(depth, Relaxed);
        }
    }

    /// Counts messages evicted by `drop_oldest`.
    pub(crate) fn count_evicted(&self, evicted: usize) {
        if evicted > 0 {
            self.send.evicted.fetch_add(evicted as u64, Release);
        }
    }

    /// Counts messages dropped unread because the receiver closed or went away.
    pub(crate) fn count_discarded(&self, discarded: usize) {
        if discarded > 0 {
            self.recv
                .discarded_at_close
                .fetch_add(discarded as u64, Release);
        }
    }

    /// Takes a snapshot; `depth` reads the backend's depth, and is called after the counters
    /// that messages leave the queue into have been read (see the module docs).
    pub(crate) fn snapshot(&self, depth: impl FnOnce() -> usize, capacity: usize) -> ChannelStats {
        let send = &*self.send;
        let recv = &*self.recv;
        let received = recv.received.load(Acquire);
        let evicted = send.evicted.load(Acquire);
        let discarded_at_close = recv.discarded_at_close.load(Acquire);
        let depth = depth().min(capacity);
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
            saturation: saturation(depth, capacity),
            high_water_mark: self.high_water_mark.load(Relaxed),
        }
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
    /// Messages queued now (from the backend).
    pub depth: usize,
    /// The channel's capacity.
    pub capacity: usize,
    /// `depth / capacity`, in `[0, 1]`.
    pub saturation: f64,
    /// The largest depth observed (on full sends and when stats were read).
    pub high_water_mark: usize,
}

/// Loom model of the counters' one concurrency claim: `sent`, derived at snapshot time, never
/// counts a message twice, never goes backwards, and is exact once activity stops. Run with
/// `RUSTFLAGS="--cfg boundflow_loom" CARGO_TARGET_DIR=target/loom LOOM_MAX_PREEMPTIONS=2
/// cargo test -p boundflow-core --release --lib loom`.
#[cfg(all(test, boundflow_loom))]
mod loom_model {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::{Monitor, bump, bump_exclusive};
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
                .snapshot(|| self.queued.load(Acquire), CAPACITY)
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
