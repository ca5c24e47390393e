//! The `metrics` publisher against metrics-util's `DebuggingRecorder`: every name, label set
//! and value after a workload whose counts the test keeps itself; a recorder installed after
//! the channels were made; counters that never decrease; names reused; channels gone; the
//! switch; and the truth tests — every `boundflow_channel_*` name in the docs, the README and
//! the alert rules is emitted, and every name emitted is documented.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use boundflow::{
    ChannelBuilder, Flume, METRIC_NAMES, MetricsPublisher, OverflowPolicy, RetryPolicy, Tokio,
    Watcher,
};
use metrics_util::debugging::{DebugValue, DebuggingRecorder};

/// One series: name and labels (sorted), as written.
type Series = (String, BTreeMap<String, String>);

/// Everything the recorder holds, by series.
fn snapshot(recorder: &DebuggingRecorder) -> BTreeMap<Series, f64> {
    recorder
        .snapshotter()
        .snapshot()
        .into_vec()
        .into_iter()
        .map(|(key, _, _, value)| {
            let labels = key
                .key()
                .labels()
                .map(|l| (l.key().to_owned(), l.value().to_owned()))
                .collect();
            let value = match value {
                DebugValue::Counter(n) => n as f64,
                DebugValue::Gauge(g) => g.into_inner(),
                DebugValue::Histogram(_) => panic!("no histogram is written"),
            };
            ((key.key().name().to_owned(), labels), value)
        })
        .collect()
}

/// The value of `name` for `channel` (plus `extra` labels).
fn value(
    metrics: &BTreeMap<Series, f64>,
    name: &str,
    channel: &str,
    extra: &[(&str, &str)],
) -> f64 {
    let found: Vec<f64> = metrics
        .iter()
        .filter(|((n, labels), _)| {
            n == name
                && labels.get("channel").map(String::as_str) == Some(channel)
                && extra
                    .iter()
                    .all(|(k, v)| labels.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|(_, v)| *v)
        .collect();
    assert_eq!(found.len(), 1, "{name} {channel} {extra:?}: {found:?}");
    found[0]
}

fn watcher_with_publisher() -> (Watcher, Arc<MetricsPublisher>) {
    let publisher = Arc::new(MetricsPublisher::new());
    let watcher = Watcher::builder()
        .publisher(publisher.clone())
        .build()
        .unwrap();
    (watcher, publisher)
}

/// A tick under a fresh local recorder (installed after the channels were made).
fn tick_into(watcher: &Watcher, recorder: &DebuggingRecorder) -> BTreeMap<Series, f64> {
    metrics::with_local_recorder(recorder, || watcher.tick_now());
    snapshot(recorder)
}

#[test]
fn every_name_label_and_value_after_a_known_workload() {
    let (watcher, _) = watcher_with_publisher();
    let build = |name: &str, policy| {
        let pair = ChannelBuilder::new(Flume, name.to_owned(), 2)
            .policy(policy)
            .build::<u64>()
            .unwrap();
        watcher.watch(&pair.0.handle()).unwrap();
        pair
    };
    // drop_newest: 2 queued, 3 refused.
    let (newest, newest_rx) = build("worker.newest", OverflowPolicy::DropNewest);
    let refused = (0..5).filter(|n| newest.send_blocking(*n).is_err()).count();
    // drop_oldest: 5 sent, 3 evicted, 1 received.
    let (oldest, mut oldest_rx) = build("worker.oldest", OverflowPolicy::DropOldest);
    for n in 0..5 {
        oldest.send_blocking(n).unwrap();
    }
    oldest_rx.try_recv().unwrap();
    // timeout: 2 queued, 2 timeouts of 1 ms (two waits recorded).
    let (timeout, _timeout_rx) = build(
        "worker.timeout",
        OverflowPolicy::Timeout(Duration::from_millis(1)),
    );
    let timeouts = (0..4)
        .filter(|n| timeout.send_blocking(*n).is_err())
        .count();
    // retry: 2 queued, one send retried twice and exhausted.
    let retry = RetryPolicy {
        max_attempts: 3,
        initial_backoff: Duration::ZERO,
        max_backoff: Duration::ZERO,
        ..RetryPolicy::default()
    };
    let (retrying, _retry_rx) = build("jobs.retry", OverflowPolicy::Retry(retry));
    let exhausted = (0..3)
        .filter(|n| retrying.send_blocking(*n).is_err())
        .count();
    // closed: the receiver goes with 2 queued, then a send fails.
    drop(newest_rx);
    assert!(newest.try_send(9).is_err());
    // would_deadlock: a blocking receive inside a current-thread runtime.
    let (_deadlock_tx, mut deadlock_rx) = build("jobs.deadlock", OverflowPolicy::Block);
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(async { assert!(deadlock_rx.recv_blocking().is_err()) });

    let recorder = DebuggingRecorder::new();
    let m = tick_into(&watcher, &recorder);
    let v = |name: &str, channel: &str| value(&m, name, channel, &[]);
    let dropped = |channel: &str, reason: &str| {
        value(
            &m,
            "boundflow_channel_dropped_total",
            channel,
            &[("reason", reason)],
        )
    };

    assert_eq!(refused, 3);
    assert_eq!(
        v("boundflow_channel_messages_sent_total", "worker.newest"),
        2.0
    );
    assert_eq!(dropped("worker.newest", "newest"), 3.0);
    assert_eq!(dropped("worker.newest", "discarded_at_close"), 2.0);
    assert_eq!(v("boundflow_channel_full_total", "worker.newest"), 3.0);
    assert_eq!(
        v("boundflow_channel_closed_errors_total", "worker.newest"),
        1.0
    );

    assert_eq!(
        v("boundflow_channel_messages_sent_total", "worker.oldest"),
        5.0
    );
    assert_eq!(
        v("boundflow_channel_messages_received_total", "worker.oldest"),
        1.0
    );
    assert_eq!(dropped("worker.oldest", "oldest"), 3.0);
    assert_eq!(v("boundflow_channel_depth", "worker.oldest"), 1.0);
    assert_eq!(v("boundflow_channel_capacity", "worker.oldest"), 2.0);
    assert_eq!(
        v("boundflow_channel_saturation_ratio", "worker.oldest"),
        0.5
    );
    assert_eq!(v("boundflow_channel_high_water", "worker.oldest"), 2.0);

    assert_eq!(timeouts, 2);
    assert_eq!(v("boundflow_channel_timeouts_total", "worker.timeout"), 2.0);
    assert_eq!(
        v(
            "boundflow_channel_send_wait_seconds_count",
            "worker.timeout"
        ),
        2.0
    );
    assert!(v("boundflow_channel_send_wait_seconds_sum", "worker.timeout") >= 0.002);
    let inf = value(
        &m,
        "boundflow_channel_send_wait_seconds_bucket",
        "worker.timeout",
        &[("le", "+Inf")],
    );
    assert_eq!(inf, 2.0);
    let under_a_millisecond = value(
        &m,
        "boundflow_channel_send_wait_seconds_bucket",
        "worker.timeout",
        &[("le", "0.000256")],
    );
    assert_eq!(under_a_millisecond, 0.0, "a 1 ms timeout never fires early");

    assert_eq!(exhausted, 1);
    assert_eq!(v("boundflow_channel_retries_total", "jobs.retry"), 2.0);
    assert_eq!(
        v("boundflow_channel_retries_exhausted_total", "jobs.retry"),
        1.0
    );
    assert_eq!(
        v("boundflow_channel_would_deadlock_total", "jobs.deadlock"),
        1.0
    );

    // Labels on every series: channel, subsystem (first segment), backend.
    for (name, labels) in m.keys() {
        assert!(name.starts_with("boundflow_channel_"), "{name}");
        let channel = &labels["channel"];
        assert_eq!(labels["subsystem"], channel.split('.').next().unwrap());
        assert_eq!(labels["backend"], "flume");
        let extra: BTreeSet<&str> = labels
            .keys()
            .map(String::as_str)
            .filter(|k| !["channel", "subsystem", "backend"].contains(k))
            .collect();
        let expected: BTreeSet<&str> = match name.as_str() {
            "boundflow_channel_dropped_total" => ["reason"].into(),
            "boundflow_channel_send_wait_seconds_bucket" => ["le"].into(),
            _ => BTreeSet::new(),
        };
        assert_eq!(extra, expected, "{name}");
    }
    // Every name, for every channel.
    for name in METRIC_NAMES {
        for channel in [
            "worker.newest",
            "worker.oldest",
            "worker.timeout",
            "jobs.retry",
        ] {
            assert!(
                m.keys().any(|(n, l)| n == name && l["channel"] == channel),
                "{name} missing for {channel}"
            );
        }
    }
}

#[test]
fn counters_never_decrease_and_gone_channels_zero_their_gauges() {
    let (watcher, _) = watcher_with_publisher();
    let recorder = DebuggingRecorder::new();
    let (tx, mut rx) = boundflow::bounded::<u64, _>(Tokio, "worker.steady", 4).unwrap();
    watcher.watch(&tx.handle()).unwrap();
    let mut previous = BTreeMap::new();
    for round in 0..6u64 {
        for n in 0..round {
            let _ = tx.try_send(n);
        }
        for _ in 0..round / 2 {
            let _ = rx.try_recv();
        }
        let m = tick_into(&watcher, &recorder);
        for ((name, labels), now) in &m {
            let counter =
                name.ends_with("_total") || name.ends_with("_bucket") || name.ends_with("_count");
            if let (true, Some(before)) = (counter, previous.get(&(name.clone(), labels.clone()))) {
                assert!(now >= before, "{name} went from {before} to {now}");
            }
        }
        previous = m;
    }
    let sent = tx.stats().sent as f64;
    drop((tx, rx));
    // A fresh recorder: a series is there only if this tick wrote it.
    let m = tick_into(&watcher, &DebuggingRecorder::new());
    let v = |name: &str| value(&m, name, "worker.steady", &[]);
    assert_eq!(
        v("boundflow_channel_messages_sent_total"),
        sent,
        "final totals"
    );
    for gauge in [
        "boundflow_channel_depth",
        "boundflow_channel_capacity",
        "boundflow_channel_saturation_ratio",
        "boundflow_channel_high_water",
    ] {
        assert_eq!(v(gauge), 0.0, "{gauge} left up after the channel went");
    }
}

#[test]
fn a_reused_name_continues_the_totals() {
    let (watcher, _) = watcher_with_publisher();
    let recorder = DebuggingRecorder::new();
    // A debugging snapshot takes the values out (it swaps them to 0): one per tick.
    let sent = |watcher: &Watcher| {
        value(
            &tick_into(watcher, &recorder),
            "boundflow_channel_messages_sent_total",
            "worker.rebuilt",
            &[],
        )
    };
    // First: 3 sent, gone, reported gone.
    let (tx, rx) = boundflow::bounded::<u64, _>(Flume, "worker.rebuilt", 8).unwrap();
    watcher.watch(&tx.handle()).unwrap();
    for n in 0..3 {
        tx.try_send(n).unwrap();
    }
    drop((tx, rx));
    assert_eq!(sent(&watcher), 3.0);
    // Second under the same name: 2 more → 5.
    let (tx, rx) = boundflow::bounded::<u64, _>(Flume, "worker.rebuilt", 8).unwrap();
    watcher.watch(&tx.handle()).unwrap();
    tx.try_send(1).unwrap();
    tx.try_send(2).unwrap();
    assert_eq!(sent(&watcher), 5.0);
    // Third replaces the second between two ticks (merged into one report): 5 + 4 → 9.
    drop((tx, rx));
    let (tx, _rx) = boundflow::bounded::<u64, _>(Flume, "worker.rebuilt", 8).unwrap();
    watcher.watch(&tx.handle()).unwrap();
    for n in 0..4 {
        tx.try_send(n).unwrap();
    }
    assert_eq!(sent(&watcher), 9.0);
    assert_eq!(
        sent(&watcher),
        9.0,
        "the merged totals are kept, not added twice"
    );
}

#[test]
fn switched_off_it_writes_nothing_and_keeps_departed_totals() {
    let (watcher, publisher) = watcher_with_publisher();
    publisher.set_enabled(false);
    let recorder = DebuggingRecorder::new();
    let (tx, rx) = boundflow::bounded::<u64, _>(Flume, "worker.quiet", 8).unwrap();
    watcher.watch(&tx.handle()).unwrap();
    tx.try_send(1).unwrap();
    drop((tx, rx));
    assert!(tick_into(&watcher, &recorder).is_empty());
    publisher.set_enabled(true);
    let (tx, _rx) = boundflow::bounded::<u64, _>(Flume, "worker.quiet", 8).unwrap();
    watcher.watch(&tx.handle()).unwrap();
    tx.try_send(2).unwrap();
    let m = tick_into(&watcher, &recorder);
    assert_eq!(
        value(
            &m,
            "boundflow_channel_messages_sent_total",
            "worker.quiet",
            &[]
        ),
        2.0
    );
}

/// `_bucket`, `_sum` and `_count` belong to their histogram's base name.
fn base(name: &str) -> &str {
    ["_bucket", "_sum", "_count"]
        .iter()
        .find_map(|suffix| name.strip_suffix(suffix))
        .unwrap_or(name)
}

fn documented_names(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut rest = text;
    while let Some(at) = rest.find("boundflow_channel_") {
        let tail = &rest[at..];
        let end = tail
            .find(|c: char| !(c.is_ascii_lowercase() || c == '_'))
            .unwrap_or(tail.len());
        let name = tail[..end].trim_end_matches('_');
        if name.len() > "boundflow_channel".len() {
            names.insert(base(name).to_owned());
        }
        rest = &tail[end..];
    }
    names
}

#[test]
fn docs_name_only_what_is_emitted_and_document_everything_emitted() {
    let root = env!("CARGO_MANIFEST_DIR");
    let read = |path: &str| std::fs::read_to_string(format!("{root}/{path}")).unwrap();
    let (watcher, _) = watcher_with_publisher();
    let (tx, _rx) = boundflow::bounded::<u64, _>(Flume, "worker.truth", 2).unwrap();
    watcher.watch(&tx.handle()).unwrap();
    let recorder = DebuggingRecorder::new();
    let emitted: BTreeSet<String> = tick_into(&watcher, &recorder)
        .into_keys()
        .map(|(name, _)| base(&name).to_owned())
        .collect();
    let metrics_doc = documented_names(&read("docs/metrics.md"));
    for file in [
        "docs/metrics.md",
        "docs/operations.md",
        "README.md",
        "docs/prometheus-rules.yml",
    ] {
        for name in documented_names(&read(file)) {
            assert!(
                emitted.contains(&name),
                "{file} names {name}, which is never emitted"
            );
        }
    }
    for name in &emitted {
        assert!(
            metrics_doc.contains(name),
            "{name} is emitted but not in docs/metrics.md"
        );
    }
}

#[test]
fn alert_rules_parse_and_use_emitted_names() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/docs/prometheus-rules.yml"
    ))
    .unwrap();
    let docs = yaml_rust2::YamlLoader::load_from_str(&text).unwrap();
    let rules = &docs[0]["groups"][0]["rules"];
    let rules = rules.as_vec().expect("a list of rules");
    let alert = |name: &str| {
        rules
            .iter()
            .find(|r| r["alert"].as_str() == Some(name))
            .unwrap_or_else(|| panic!("no alert {name}"))
    };
    let saturated = alert("BoundflowChannelSaturated");
    assert_eq!(
        saturated["expr"].as_str(),
        Some("boundflow_channel_saturation_ratio > 0.8")
    );
    assert_eq!(saturated["for"].as_str(), Some("15m"));
    assert_eq!(saturated["labels"]["severity"].as_str(), Some("warning"));
    let critical = alert("BoundflowChannelNearlyFull");
    assert_eq!(
        critical["expr"].as_str(),
        Some("boundflow_channel_saturation_ratio > 0.9")
    );
    assert_eq!(critical["for"].as_str(), Some("5m"));
    assert_eq!(critical["labels"]["severity"].as_str(), Some("critical"));
    let full = alert("BoundflowChannelFull");
    assert!(
        full["expr"]
            .as_str()
            .unwrap()
            .contains("boundflow_channel_full_total")
    );
    assert_eq!(full["for"].as_str(), Some("10m"));
    let dropping = alert("BoundflowChannelDropping");
    assert!(
        dropping["expr"]
            .as_str()
            .unwrap()
            .contains("boundflow_channel_dropped_total")
    );
    for rule in rules {
        assert!(rule["annotations"]["summary"].as_str().is_some());
    }
}

/// Two live channels of one name, each watched with a publisher of its own (two registries of
/// one configuration in one process): the first published owns the name's series, the second
/// is refused and listed (on every tick, not just the first), so the series carry one
/// channel's values, never a mix of two. Once the first goes, its final report frees the name
/// and the second is published. And one publisher on two watchers refuses its second channel
/// of the name as steadily.
#[test]
fn a_second_live_channel_of_a_name_is_refused_not_mixed_in() {
    // Names no other test uses: the owners of names are process-wide.
    let name = "dup.refused";
    let (first_watcher, first) = watcher_with_publisher();
    let (second_watcher, second) = watcher_with_publisher();
    let channel = |name: &str, watcher: &Watcher, queued: u64| {
        let (tx, rx) = ChannelBuilder::new(Flume, name, 8).build::<u64>().unwrap();
        watcher.watch(&tx.handle()).unwrap();
        for n in 0..queued {
            tx.try_send(n).unwrap();
        }
        (tx, rx)
    };
    let older = channel(name, &first_watcher, 5);
    let _newer = channel(name, &second_watcher, 3);
    let recorder = DebuggingRecorder::new();
    let tick_both = |first_watcher: &Watcher, second_watcher: &Watcher| {
        metrics::with_local_recorder(&recorder, || {
            first_watcher.tick_now();
            second_watcher.tick_now();
        });
        snapshot(&recorder)
    };
    for _ in 0..2 {
        let m = tick_both(&first_watcher, &second_watcher);
        assert_eq!(value(&m, "boundflow_channel_depth", name, &[]), 5.0);
        assert_eq!(
            value(&m, "boundflow_channel_messages_sent_total", name, &[]),
            5.0
        );
        assert!(first.refused().is_empty());
        assert_eq!(second.refused(), [name]);
    }
    drop(older);
    let m = tick_both(&first_watcher, &second_watcher);
    assert_eq!(value(&m, "boundflow_channel_depth", name, &[]), 3.0);
    assert!(second.refused().is_empty());

    let shared_name = "dup.shared";
    let shared = Arc::new(MetricsPublisher::new());
    let watchers: Vec<Watcher> = (0..2)
        .map(|_| {
            Watcher::builder()
                .publisher(shared.clone())
                .build()
                .unwrap()
        })
        .collect();
    let _one = channel(shared_name, &watchers[0], 2);
    let other = channel(shared_name, &watchers[1], 7);
    for _ in 0..2 {
        let m = tick_both(&watchers[0], &watchers[1]);
        assert_eq!(value(&m, "boundflow_channel_depth", shared_name, &[]), 2.0);
        assert_eq!(shared.refused(), [shared_name]);
    }
    // The refused one goes and a successor takes its name in its watcher before the next
    // tick: succeeding a channel that never owned the name gives it no claim.
    drop(other);
    let _successor = channel(shared_name, &watchers[1], 4);
    let m = tick_both(&watchers[0], &watchers[1]);
    assert_eq!(value(&m, "boundflow_channel_depth", shared_name, &[]), 2.0);
    assert_eq!(shared.refused(), [shared_name]);
}
