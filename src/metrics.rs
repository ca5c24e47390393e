//! [`MetricsPublisher`]: every watched channel's snapshot, written to the `metrics` facade on
//! each tick (feature `metrics`). No exporter here: the application installs one (Prometheus,
//! StatsD, ...), before or after its channels are made. Names, labels and meanings:
//! `docs/metrics.md`.
//!
//! - Counters are written with `absolute` from the monitor's own atomics, so nothing is ever
//!   counted twice, and a recorder installed late still sees the whole totals.
//! - Handles are resolved on every tick, never kept: a handle taken before the application
//!   installed its recorder would be a no-op for good. At one tick per interval the lookups
//!   cost nothing that matters, and nothing is paid per message.
//! - `absolute` keeps the largest value it has seen, so totals must not start again when a
//!   channel goes and another takes its name: the publisher keeps each departed channel's final
//!   totals by name and writes departed + own. A channel that goes away is published once more
//!   with its final totals, and its gauges are set to 0.
//! - A name's series belong to one live channel at a time, across every publisher of the
//!   process (`owners`): a second live channel of that name is refused, not mixed in
//!   ([`MetricsPublisher::refused`]).

mod owners;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Mutex, PoisonError};

use ::metrics::{Label, Unit, counter, describe_counter, describe_gauge, gauge};

use crate::{ChannelReport, ChannelStats, Publish, SEND_WAIT_BOUNDS};

/// Every metric name the publisher writes, in full (the `_bucket`, `_count` and `_sum` series
/// of the send-wait histogram included).
pub const METRIC_NAMES: [&str; 16] = [
    MESSAGES_SENT,
    MESSAGES_RECEIVED,
    FULL,
    DROPPED,
    TIMEOUTS,
    RETRIES,
    RETRIES_EXHAUSTED,
    CLOSED_ERRORS,
    WOULD_DEADLOCK,
    DEPTH,
    CAPACITY,
    SATURATION,
    HIGH_WATER,
    SEND_WAIT_BUCKET,
    SEND_WAIT_COUNT,
    SEND_WAIT_SUM,
];

const MESSAGES_SENT: &str = "boundflow_channel_messages_sent_total";
const MESSAGES_RECEIVED: &str = "boundflow_channel_messages_received_total";
const FULL: &str = "boundflow_channel_full_total";
const DROPPED: &str = "boundflow_channel_dropped_total";
const TIMEOUTS: &str = "boundflow_channel_timeouts_total";
const RETRIES: &str = "boundflow_channel_retries_total";
const RETRIES_EXHAUSTED: &str = "boundflow_channel_retries_exhausted_total";
const CLOSED_ERRORS: &str = "boundflow_channel_closed_errors_total";
const WOULD_DEADLOCK: &str = "boundflow_channel_would_deadlock_total";
const DEPTH: &str = "boundflow_channel_depth";
const CAPACITY: &str = "boundflow_channel_capacity";
const SATURATION: &str = "boundflow_channel_saturation_ratio";
const HIGH_WATER: &str = "boundflow_channel_high_water";
const SEND_WAIT_BUCKET: &str = "boundflow_channel_send_wait_seconds_bucket";
const SEND_WAIT_COUNT: &str = "boundflow_channel_send_wait_seconds_count";
const SEND_WAIT_SUM: &str = "boundflow_channel_send_wait_seconds_sum";

/// A channel's counters, summed over the channels of one name that have gone.
#[derive(Debug, Default, Clone, Copy)]
struct Totals {
    sent: u64,
    received: u64,
    full: u64,
    dropped_newest: u64,
    evicted: u64,
    discarded_at_close: u64,
    timeouts: u64,
    retries: u64,
    retries_exhausted: u64,
    closed_errors: u64,
    would_deadlock: u64,
    /// Per bucket (not cumulative), then the sum in seconds.
    waits: [u64; SEND_WAIT_BOUNDS.len() + 1],
    wait_seconds: f64,
}

impl Totals {
    fn of(stats: &ChannelStats) -> Self {
        Totals {
            sent: stats.sent,
            received: stats.received,
            full: stats.full_events,
            dropped_newest: stats.dropped_newest,
            evicted: stats.evicted,
            discarded_at_close: stats.discarded_at_close,
            timeouts: stats.timeouts,
            retries: stats.retries,
            retries_exhausted: stats.retries_exhausted,
            closed_errors: stats.closed_errors,
            would_deadlock: stats.would_deadlock,
            waits: stats.send_wait.counts,
            wait_seconds: stats.send_wait.sum.as_secs_f64(),
        }
    }

    fn plus(mut self, other: &Totals) -> Self {
        let pairs = [
            (&mut self.sent, other.sent),
            (&mut self.received, other.received),
            (&mut self.full, other.full),
            (&mut self.dropped_newest, other.dropped_newest),
            (&mut self.evicted, other.evicted),
            (&mut self.discarded_at_close, other.discarded_at_close),
            (&mut self.timeouts, other.timeouts),
            (&mut self.retries, other.retries),
            (&mut self.retries_exhausted, other.retries_exhausted),
            (&mut self.closed_errors, other.closed_errors),
            (&mut self.would_deadlock, other.would_deadlock),
        ];
        for (mine, theirs) in pairs {
            *mine = mine.saturating_add(theirs);
        }
        for (mine, theirs) in self.waits.iter_mut().zip(other.waits) {
            *mine = mine.saturating_add(theirs);
        }
        self.wait_seconds += other.wait_seconds;
        self
    }
}

/// Writes every watched channel's snapshot to the `metrics` facade on each tick (see the
/// module docs). Add it to the watcher: `watcher.add_publisher(Arc::new(MetricsPublisher::new()))`.
#[derive(Debug)]
pub struct MetricsPublisher {
    /// This publisher's number in the process-wide table of series owners.
    id: u64,
    enabled: AtomicBool,
    /// Final totals of the channels that have gone, by name.
    departed: Mutex<HashMap<String, Totals>>,
    /// Live channels not written, by id: another live channel of the name owns its series.
    refused: Mutex<BTreeMap<u64, String>>,
}

impl Default for MetricsPublisher {
    fn default() -> Self {
        MetricsPublisher::new()
    }
}

impl MetricsPublisher {
    /// A publisher that is on.
    pub fn new() -> Self {
        MetricsPublisher {
            id: owners::new_publisher_id(),
            enabled: AtomicBool::new(true),
            departed: Mutex::new(HashMap::new()),
            refused: Mutex::new(BTreeMap::new()),
        }
    }

    /// Switches publishing on or off (the registry sets it from `metrics.enabled`). While off,
    /// nothing is written, but departed channels' totals are still kept, so totals are right
    /// when it is switched back on.
    pub fn set_enabled(&self, enabled: bool) {
        self.enabled.store(enabled, Relaxed);
    }

    /// Whether publishing is on.
    pub fn is_enabled(&self) -> bool {
        self.enabled.load(Relaxed)
    }

    /// The names of live channels this publisher does not write, sorted: another live channel
    /// of the same name, published by this or another publisher of the process, owns their
    /// series (two registries of the same configuration, say). Each such channel is also
    /// logged once through `tracing` (feature `tracing`) when it is first refused.
    pub fn refused(&self) -> Vec<String> {
        let refused = self.refused.lock().unwrap_or_else(PoisonError::into_inner);
        let names: BTreeSet<&String> = refused.values().collect();
        names.into_iter().cloned().collect()
    }
}

impl Drop for MetricsPublisher {
    fn drop(&mut self) {
        owners::Owners::lock().release(self.id);
    }
}

impl Publish for MetricsPublisher {
    fn publish(&self, reports: &[ChannelReport]) {
        let enabled = self.is_enabled();
        if enabled {
            describe();
        }
        let mut owners = owners::Owners::lock();
        if !enabled {
            owners.release(self.id);
        }
        let mut refused = self.refused.lock().unwrap_or_else(PoisonError::into_inner);
        let mut departed = self.departed.lock().unwrap_or_else(PoisonError::into_inner);
        for report in reports {
            let name = report.info.name();
            let id = report.info.id();
            let earlier = departed.get(name).copied().unwrap_or_default();
            let earlier = report
                .departed
                .iter()
                .fold(earlier, |sum, stats| sum.plus(&Totals::of(stats)));
            let totals = earlier.plus(&Totals::of(&report.stats));
            // Merged predecessors have gone: none of them is refused any longer.
            for gone in &report.departed_ids {
                refused.remove(gone);
            }
            // Switched off, nothing is claimed, and totals are still kept (see `set_enabled`).
            let owned = !enabled || owners.claim(self.id, report);
            if owned {
                refused.remove(&id);
                if enabled {
                    write(report, &totals);
                }
                // A gone channel's totals now belong to the name; so do its merged
                // predecessors'. A refused channel's never do: its series were not written.
                let keep = if report.gone { totals } else { earlier };
                if report.gone || !report.departed.is_empty() {
                    departed.insert(name.to_owned(), keep);
                }
            } else if report.gone {
                refused.remove(&id);
            } else if refused.insert(id, name.to_owned()).is_none() {
                #[cfg(feature = "tracing")]
                tracing::warn!(
                    target: "boundflow",
                    channel = name,
                    "another live channel of this name already writes its metrics: this one is not published"
                );
            }
        }
    }
}

/// One channel's series.
fn write(report: &ChannelReport, totals: &Totals) {
    let info = &report.info;
    let labels = vec![
        Label::new("channel", info.name().to_owned()),
        Label::new("subsystem", info.subsystem().to_owned()),
        Label::new("backend", info.backend()),
    ];
    let with = |key: &'static str, value: String| {
        let mut labels = labels.clone();
        labels.push(Label::new(key, value));
        labels
    };
    counter!(MESSAGES_SENT, labels.clone()).absolute(totals.sent);
    counter!(MESSAGES_RECEIVED, labels.clone()).absolute(totals.received);
    counter!(FULL, labels.clone()).absolute(totals.full);
    for (reason, value) in [
        ("newest", totals.dropped_newest),
        ("oldest", totals.evicted),
        ("discarded_at_close", totals.discarded_at_close),
    ] {
        counter!(DROPPED, with("reason", reason.to_owned())).absolute(value);
    }
    counter!(TIMEOUTS, labels.clone()).absolute(totals.timeouts);
    counter!(RETRIES, labels.clone()).absolute(totals.retries);
    counter!(RETRIES_EXHAUSTED, labels.clone()).absolute(totals.retries_exhausted);
    counter!(CLOSED_ERRORS, labels.clone()).absolute(totals.closed_errors);
    counter!(WOULD_DEADLOCK, labels.clone()).absolute(totals.would_deadlock);

    let stats = &report.stats;
    let (depth, capacity, saturation, high_water) = if report.gone {
        (0.0, 0.0, 0.0, 0.0)
    } else {
        (
            stats.depth as f64,
            stats.capacity as f64,
            stats.saturation,
            stats.high_water_since_tick as f64,
        )
    };
    gauge!(DEPTH, labels.clone()).set(depth);
    gauge!(CAPACITY, labels.clone()).set(capacity);
    gauge!(SATURATION, labels.clone()).set(saturation);
    gauge!(HIGH_WATER, labels.clone()).set(high_water);

    let mut cumulative = 0u64;
    let bounds = SEND_WAIT_BOUNDS.iter().map(|b| b.as_secs_f64().to_string());
    for (le, count) in bounds.chain(["+Inf".to_owned()]).zip(totals.waits) {
        cumulative = cumulative.saturating_add(count);
        counter!(SEND_WAIT_BUCKET, with("le", le)).absolute(cumulative);
    }
    counter!(SEND_WAIT_COUNT, labels.clone()).absolute(cumulative);
    gauge!(SEND_WAIT_SUM, labels).set(totals.wait_seconds);
}

/// Units and help texts (idempotent: written on every tick, so a recorder installed late has
/// them too).
fn describe() {
    let counters = [
        (MESSAGES_SENT, "Messages the channel accepted."),
        (MESSAGES_RECEIVED, "Messages the receiver took."),
        (
            FULL,
            "Sends that found the channel full (whatever the policy then did).",
        ),
        (
            DROPPED,
            "Messages dropped: reason=newest (refused by drop_newest), oldest (evicted by \
             drop_oldest), discarded_at_close (queued when the receiver went).",
        ),
        (TIMEOUTS, "Sends that gave up at their deadline."),
        (RETRIES, "Extra attempts made by the retry policy."),
        (
            RETRIES_EXHAUSTED,
            "Retry sends that gave up and handed the message back.",
        ),
        (
            CLOSED_ERRORS,
            "Sends that failed because the channel was closed.",
        ),
        (
            WOULD_DEADLOCK,
            "Blocking calls refused because blocking would stall an async runtime.",
        ),
        (
            SEND_WAIT_BUCKET,
            "Sends that waited for room at most `le` seconds (cumulative).",
        ),
        (SEND_WAIT_COUNT, "Sends that waited for room."),
    ];
    for (name, help) in counters {
        describe_counter!(name, Unit::Count, help);
    }
    describe_gauge!(DEPTH, Unit::Count, "Messages queued at the last tick.");
    describe_gauge!(
        CAPACITY,
        Unit::Count,
        "The channel's capacity (0 once it has gone)."
    );
    describe_gauge!(
        SATURATION,
        "The fraction of the channel's slots in use at the last tick, 0 to 1."
    );
    describe_gauge!(
        HIGH_WATER,
        Unit::Count,
        "The largest depth read since the previous tick."
    );
    describe_gauge!(
        SEND_WAIT_SUM,
        Unit::Seconds,
        "Total seconds sends spent waiting for room."
    );
}
