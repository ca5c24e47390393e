//! Monitoring as a user meets it, on every backend: observers, the watcher (the tick) with a
//! fake clock, saturation entered → reminder → left with every sender blocked, high-water
//! marks, the send-wait histogram, weak watching, name rules, and the tracing observer.
//! Every check is against counts the test keeps itself.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

#[path = "support/log_capture.rs"]
mod log_capture;

use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use boundflow::{
    AnyBackend, AsyncChannel, BoundedChannel, ChannelBuilder, ChannelInfo, ChannelReport,
    Crossbeam, FakeClock, Flume, Observer, OverflowPolicy, Publish, RetryPolicy, SEND_WAIT_BOUNDS,
    SaturationEvent, SaturationKind, SaturationThresholds, Tokio, WatchError, Watcher,
    WatcherError,
};

/// Runs a test body once per backend.
macro_rules! every_backend {
    ($($test:ident),* $(,)?) => {
        $(
            mod $test {
                #[test]
                fn tokio() {
                    super::$test(super::Tokio);
                }
                #[test]
                fn flume() {
                    super::$test(super::Flume);
                }
                #[test]
                fn crossbeam() {
                    super::$test(super::Crossbeam);
                }
                #[test]
                fn async_channel() {
                    super::$test(super::AsyncChannel);
                }
                #[test]
                fn any_crossbeam() {
                    super::$test(super::AnyBackend::Crossbeam);
                }
                #[test]
                fn any_async_channel() {
                    super::$test(super::AnyBackend::AsyncChannel);
                }
            }
        )*
    };
}

every_backend!(
    saturation_recovery_with_every_sender_blocked,
    observers_hear_every_slow_path_event,
    watched_channel_closes_and_reports_its_final_values_once,
    high_water_since_tick_is_reset_only_by_the_tick,
    send_waits_are_recorded_on_the_slow_path_only,
    depth_is_sampled_while_the_receiver_drains_after_the_senders_left,
    weak_senders_never_keep_a_channel_open,
    a_weak_close_wakes_a_waiting_receiver,
    a_weak_close_ends_a_stream_and_loses_nothing,
    a_weak_close_wakes_a_blocked_sender,
    a_weak_close_wakes_a_waiting_async_send,
);

/// Every event, in the order heard.
#[derive(Default)]
struct Recorder {
    events: Mutex<Vec<String>>,
    saturation: Mutex<Vec<SaturationEvent>>,
}

impl Recorder {
    fn push(&self, event: impl Into<String>) {
        self.events.lock().unwrap().push(event.into());
    }

    fn count(&self, event: &str) -> usize {
        self.events
            .lock()
            .unwrap()
            .iter()
            .filter(|e| *e == event)
            .count()
    }

    fn saturation(&self) -> Vec<SaturationEvent> {
        self.saturation.lock().unwrap().clone()
    }
}

impl Observer for Recorder {
    fn on_full(&self, _: &ChannelInfo) {
        self.push("full");
    }
    fn on_dropped_newest(&self, _: &ChannelInfo) {
        self.push("dropped_newest");
    }
    fn on_evicted(&self, _: &ChannelInfo, count: usize) {
        for _ in 0..count {
            self.push("evicted");
        }
    }
    fn on_timeout(&self, _: &ChannelInfo) {
        self.push("timeout");
    }
    fn on_retry_exhausted(&self, _: &ChannelInfo) {
        self.push("retry_exhausted");
    }
    fn on_closed_error(&self, _: &ChannelInfo) {
        self.push("closed_error");
    }
    fn on_would_deadlock(&self, _: &ChannelInfo) {
        self.push("would_deadlock");
    }
    fn on_saturation(&self, channel: &ChannelInfo, event: &SaturationEvent) {
        assert_eq!(channel.subsystem(), "worker");
        self.saturation.lock().unwrap().push(*event);
    }
}

fn watcher_with(clock: &FakeClock) -> Watcher {
    Watcher::builder()
        .interval(Duration::from_secs(10))
        .clock(Arc::new(clock.clone()))
        .build()
        .unwrap()
}

/// Waits (polling, with a generous deadline) until `done` holds.
fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        thread::sleep(Duration::from_millis(1));
    }
}

/// The guide's "saturation recovery" test: a channel full with every sender blocked still
/// warns (entered), is reminded of with the number of quiet ticks, and leaves once drained.
fn saturation_recovery_with_every_sender_blocked<B: BoundedChannel>(backend: B) {
    let backend_name = backend.name();
    let clock = FakeClock::new();
    let watcher = watcher_with(&clock);
    let recorder = Arc::new(Recorder::default());
    let (tx, mut rx) = ChannelBuilder::new(backend, "worker.results", 4)
        .observer(recorder.clone())
        .build::<u64>()
        .unwrap();
    watcher.watch(&tx.handle()).unwrap();
    for msg in 0..4 {
        tx.try_send(msg).unwrap();
    }
    // Two producers block on the full channel: nobody's send ever succeeds from here on.
    let producers: Vec<_> = (0..2)
        .map(|p| {
            let tx = tx.clone();
            thread::spawn(move || tx.send_blocking(100 + p).unwrap())
        })
        .collect();
    eventually("both producers to find the channel full", || {
        rx.stats().full_events >= 2
    });
    let entered = recorder.saturation();
    assert_eq!(
        entered.len(),
        1,
        "one entry, however many full sends: {entered:?}"
    );
    assert_eq!(entered[0].kind, SaturationKind::Entered);
    assert_eq!(entered[0].sequence, 1);

    // The first tick learns of the entry (made by a send, at a time the watcher's clock did
    // not see) and times reminders from itself: never early. It and the next five, inside the
    // 60 s reminder interval, say nothing; the seventh reminds.
    for _ in 0..6 {
        clock.advance(Duration::from_secs(10));
        watcher.tick_now();
    }
    assert_eq!(recorder.saturation().len(), 1, "reminded too early");
    clock.advance(Duration::from_secs(10));
    let reports = watcher.tick_now();
    assert_eq!(reports[0].stats.saturation, 1.0, "every slot in use");
    let depth = reports[0].stats.depth;
    if backend_name == "tokio" {
        // tokio's sending-side depth leaves out slots that waiting sends may hold: it may
        // undercount by the two waiting producers, never overcount.
        assert!((2..=4).contains(&depth), "depth {depth}");
    } else {
        assert_eq!(depth, 4);
    }
    let events = recorder.saturation();
    assert_eq!(events.len(), 2);
    assert_eq!(
        events[1].kind,
        SaturationKind::Reminder { suppressed: 6 },
        "the six quiet ticks"
    );
    assert_eq!(
        events[1].sequence, 1,
        "a reminder carries its entry's number"
    );

    // Drain everything (the blocked producers finish), and the next tick leaves.
    let mut received = 0;
    while received < 6 {
        rx.recv_blocking().unwrap();
        received += 1;
    }
    for producer in producers {
        producer.join().unwrap();
    }
    clock.advance(Duration::from_secs(10));
    watcher.tick_now();
    let events = recorder.saturation();
    assert_eq!(events.len(), 3, "{events:?}");
    assert_eq!(events[2].kind, SaturationKind::Left);
    assert_eq!(events[2].sequence, 2);
    assert_eq!(events[2].depth, 0);
    // Stays left: no more events.
    clock.advance(Duration::from_secs(120));
    watcher.tick_now();
    assert_eq!(recorder.saturation().len(), 3);
}

/// Each slow-path event reaches every observer, as often as the test caused it.
fn observers_hear_every_slow_path_event<B: BoundedChannel>(backend: B) {
    let first = Arc::new(Recorder::default());
    let second = Arc::new(Recorder::default());
    let build = |name: &str, policy| {
        ChannelBuilder::new(backend.clone(), name.to_owned(), 1)
            .policy(policy)
            .observer(first.clone())
            .observer(second.clone())
            .build::<u64>()
            .unwrap()
    };

    let (tx, rx) = build("worker.newest", OverflowPolicy::DropNewest);
    tx.try_send(1).unwrap();
    assert!(tx.send_blocking(2).unwrap_err().is_full());
    assert!(tx.send_blocking(3).unwrap_err().is_full());
    let (timeout_tx, _timeout_rx) = build(
        "worker.timeout",
        OverflowPolicy::Timeout(Duration::from_millis(1)),
    );
    timeout_tx.try_send(1).unwrap();
    assert!(timeout_tx.send_blocking(2).unwrap_err().is_timeout());
    let retry = RetryPolicy {
        max_attempts: 2,
        initial_backoff: Duration::ZERO,
        max_backoff: Duration::ZERO,
        ..RetryPolicy::default()
    };
    let (retry_tx, _retry_rx) = build("worker.retry", OverflowPolicy::Retry(retry));
    retry_tx.try_send(1).unwrap();
    assert!(retry_tx.send_blocking(2).unwrap_err().is_full());
    drop(rx);
    assert!(tx.try_send(4).unwrap_err().is_closed());

    // full: drop_newest twice, timeout once, retry once (its retries are not new full events).
    let mut expected = vec![
        ("full", 4),
        ("dropped_newest", 2),
        ("timeout", 1),
        ("retry_exhausted", 1),
        ("closed_error", 1),
    ];
    if backend.supports_drop_oldest() {
        let (oldest_tx, mut oldest_rx) = build("worker.oldest", OverflowPolicy::DropOldest);
        for msg in 0..3 {
            oldest_tx.send_blocking(msg).unwrap();
        }
        assert_eq!(oldest_rx.try_recv(), Ok(2));
        expected[0].1 += 2;
        expected.push(("evicted", 2));
    }
    for recorder in [&first, &second] {
        for (event, count) in &expected {
            assert_eq!(recorder.count(event), *count, "{event}");
        }
    }

    // A blocking receive refused inside a current-thread runtime.
    let (_tx, mut rx) = build("worker.deadlock", OverflowPolicy::Block);
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(async { assert!(rx.recv_blocking().is_err()) });
    assert_eq!(first.count("would_deadlock"), 1);
}

/// Counts what it was handed, per tick.
#[derive(Default)]
struct Published(Mutex<Vec<Vec<ChannelReport>>>);

impl Publish for Published {
    fn publish(&self, reports: &[ChannelReport]) {
        self.0.lock().unwrap().push(reports.to_vec());
    }
}

/// The watcher keeps no endpoint alive: the channel still closes when its senders go; once
/// every endpoint is gone it is reported once more, with its final values, then forgotten.
fn watched_channel_closes_and_reports_its_final_values_once<B: BoundedChannel>(backend: B) {
    let published = Arc::new(Published::default());
    let watcher = Watcher::builder()
        .publisher(published.clone())
        .build()
        .unwrap();
    let (tx, mut rx) = boundflow::bounded::<u64, _>(backend.clone(), "worker.closing", 8).unwrap();
    watcher.watch(&rx.handle()).unwrap();
    for msg in 0..5 {
        tx.try_send(msg).unwrap();
    }
    assert_eq!(watcher.tick_now()[0].stats.depth, 5);
    drop(tx);
    for _ in 0..2 {
        rx.try_recv().unwrap();
    }
    let report = &watcher.tick_now()[0];
    assert!(!report.gone, "the receiver is still there");
    assert_eq!(report.stats.depth, 3);
    assert_eq!(report.stats.sent, 5);
    while rx.try_recv().is_ok() {}
    assert_eq!(
        rx.try_recv(),
        Err(boundflow::TryRecvError::Closed),
        "closed though watched"
    );
    drop(rx);

    let reports = watcher.tick_now();
    assert_eq!(reports.len(), 1);
    assert!(reports[0].gone);
    assert_eq!((reports[0].stats.sent, reports[0].stats.received), (5, 5));
    assert!(
        watcher.tick_now().is_empty(),
        "forgotten after its final report"
    );
    assert_eq!(
        published.0.lock().unwrap().len(),
        4,
        "every tick was published"
    );

    // Names: unique among live channels, free as soon as the channel has gone, and the
    // departed channel's final values ride along with its successor's first report.
    let (first_tx, first_rx) =
        boundflow::bounded::<u64, _>(backend.clone(), "worker.a", 2).unwrap();
    watcher.watch(&first_tx.handle()).unwrap();
    let (twin_tx, _twin_rx) = boundflow::bounded::<u64, _>(backend.clone(), "worker.a", 2).unwrap();
    assert_eq!(
        watcher.watch(&twin_tx.handle()),
        Err(WatchError::NameTaken {
            channel: "worker.a".into()
        })
    );
    assert!(matches!(
        watcher.watch(&first_rx.handle()),
        Err(WatchError::AlreadyWatched { .. })
    ));
    let other = Watcher::new(Duration::from_secs(1)).unwrap();
    assert!(matches!(
        other.watch(&first_tx.handle()),
        Err(WatchError::AlreadyWatched { .. })
    ));
    first_tx.try_send(1).unwrap();
    let first_id = first_tx.handle().info().id();
    drop((first_tx, first_rx));
    watcher.watch(&twin_tx.handle()).unwrap();
    twin_tx.try_send(2).unwrap();
    twin_tx.try_send(3).unwrap();
    let reports = watcher.tick_now();
    assert_eq!(reports.len(), 1, "one report per name: {reports:?}");
    assert!(!reports[0].gone);
    assert_eq!(reports[0].stats.sent, 2);
    assert_eq!(reports[0].departed.len(), 1);
    assert_eq!(reports[0].departed[0].sent, 1);
    assert_eq!(reports[0].departed[0].discarded_at_close, 1);
    assert_eq!(reports[0].departed_ids, [first_id]);
    assert_ne!(reports[0].info.id(), first_id);
    let next = watcher.tick_now();
    assert!(
        next[0].departed.is_empty() && next[0].departed_ids.is_empty(),
        "merged once"
    );
}

fn high_water_since_tick_is_reset_only_by_the_tick<B: BoundedChannel>(backend: B) {
    let watcher = Watcher::builder().build().unwrap();
    let (tx, mut rx) = boundflow::bounded::<u64, _>(backend, "worker.hw", 4).unwrap();
    watcher.watch(&tx.handle()).unwrap();
    for msg in 0..3 {
        tx.try_send(msg).unwrap();
    }
    assert_eq!(
        tx.stats().high_water_since_tick,
        3,
        "a stats read is a sample"
    );
    while rx.try_recv().is_ok() {}
    assert_eq!(rx.stats().high_water_since_tick, 3, "reads do not reset it");
    let report = &watcher.tick_now()[0];
    assert_eq!(report.stats.high_water_since_tick, 3);
    assert_eq!(report.stats.depth, 0);
    let report = &watcher.tick_now()[0];
    assert_eq!(report.stats.high_water_since_tick, 0, "a new window");
    assert_eq!(report.stats.high_water_mark, 3, "the all-time mark stays");
    // A full send counts as depth = capacity, even if no read ever saw it.
    for msg in 0..4 {
        tx.try_send(msg).unwrap();
    }
    assert!(tx.try_send(9).is_err());
    while rx.try_recv().is_ok() {}
    assert_eq!(watcher.tick_now()[0].stats.high_water_since_tick, 4);
}

fn send_waits_are_recorded_on_the_slow_path_only<B: BoundedChannel>(backend: B) {
    let (tx, mut rx) = boundflow::bounded::<u64, _>(backend, "worker.waits", 1).unwrap();
    tx.send_blocking(1).unwrap();
    assert_eq!(
        tx.stats().send_wait.count,
        0,
        "a send that found room is not a wait"
    );
    let wait = Duration::from_millis(2);
    for msg in 0..3 {
        assert!(
            tx.send_timeout_blocking(msg, wait)
                .unwrap_err()
                .is_timeout()
        );
    }
    let histogram = tx.stats().send_wait;
    assert_eq!(histogram.count, 3);
    assert_eq!(histogram.counts.iter().sum::<u64>(), 3);
    assert!(
        histogram.sum >= wait * 3,
        "timeouts never fire early: {histogram:?}"
    );
    // Every wait lasted at least 2 ms: nothing in a bucket whose bound is below that.
    for (bound, count) in SEND_WAIT_BOUNDS.iter().zip(histogram.counts) {
        if *bound < wait {
            assert_eq!(count, 0, "a {bound:?} bucket holds a 2 ms wait");
        }
    }
    let cumulative: Vec<u64> = histogram.cumulative().map(|(_, c)| c).collect();
    assert_eq!(cumulative.last(), Some(&3));
    assert!(cumulative.windows(2).all(|w| w[0] <= w[1]));
    // A blocked send that later succeeds is a wait too.
    let sender = {
        let tx = tx.clone();
        thread::spawn(move || tx.send_blocking(5).unwrap())
    };
    eventually("the sender to block", || tx.stats().full_events >= 4);
    assert_eq!(rx.recv_blocking(), Ok(1));
    sender.join().unwrap();
    assert_eq!(tx.stats().send_wait.count, 4);
}

/// tokio's probe reads the sending side; once every sender has gone the wrapper derives the
/// depth while the receiver drains. Either way the watcher sees the real backlog.
fn depth_is_sampled_while_the_receiver_drains_after_the_senders_left<B: BoundedChannel>(
    backend: B,
) {
    let (tx, mut rx) = boundflow::bounded::<u64, _>(backend, "worker.drain", 8).unwrap();
    let handle = rx.handle();
    for msg in 0..6 {
        tx.try_send(msg).unwrap();
    }
    drop(tx);
    let mut own_depth = 6;
    assert_eq!(handle.stats().depth, own_depth);
    while rx.try_recv().is_ok() {
        own_depth -= 1;
        assert_eq!(handle.stats().depth, own_depth);
    }
    assert_eq!(own_depth, 0);
    drop(rx);
    assert!(handle.is_gone());
    assert_eq!(handle.stats().depth, 0);
}

#[test]
fn thresholds_and_intervals_are_checked() {
    let bad = SaturationThresholds {
        warn: 0.6,
        recover: 0.6,
        ..SaturationThresholds::default()
    };
    let err = Watcher::builder().thresholds(bad).build().unwrap_err();
    assert!(matches!(err, WatcherError::Thresholds(_)));
    assert!(err.to_string().contains("recover"), "{err}");
    assert_eq!(
        Watcher::new(Duration::ZERO).unwrap_err(),
        WatcherError::ZeroInterval
    );
}

/// A channel entered by a tick sample (80% full, never full), reminded at every tick once the
/// interval is zero, and a watcher dropped lets its channels join another.
#[test]
fn the_tick_enters_on_samples_and_watchers_release_channels() {
    let clock = FakeClock::new();
    let recorder = Arc::new(Recorder::default());
    let watcher = Watcher::builder()
        .clock(Arc::new(clock.clone()))
        .thresholds(SaturationThresholds {
            reminder_interval: Duration::ZERO,
            ..SaturationThresholds::default()
        })
        .build()
        .unwrap();
    let (tx, _rx) = ChannelBuilder::new(Flume, "worker.sampled", 5)
        .observer(recorder.clone())
        .build::<u64>()
        .unwrap();
    watcher.watch(&tx.handle()).unwrap();
    for msg in 0..4 {
        tx.try_send(msg).unwrap();
    }
    watcher.tick_now();
    watcher.tick_now();
    let kinds: Vec<_> = recorder.saturation().iter().map(|e| e.kind).collect();
    assert_eq!(
        kinds,
        [
            SaturationKind::Entered,
            SaturationKind::Reminder { suppressed: 0 }
        ]
    );
    drop(watcher);
    let next = Watcher::new(Duration::from_secs(1)).unwrap();
    next.watch(&tx.handle()).unwrap();
}

/// The thread ticks on its own (named `boundflow-tick`) and stops when told; `run` ticks on an
/// executor.
#[test]
fn the_tick_runs_on_its_thread_and_as_a_future() {
    #[derive(Default)]
    struct ThreadNames(Mutex<Vec<String>>, AtomicU64);
    impl Publish for ThreadNames {
        fn publish(&self, _: &[ChannelReport]) {
            let name = thread::current().name().unwrap_or("").to_owned();
            self.0.lock().unwrap().push(name);
            self.1.fetch_add(1, SeqCst);
        }
    }
    let names = Arc::new(ThreadNames::default());
    let watcher = Watcher::builder()
        .interval(Duration::from_millis(5))
        .publisher(names.clone())
        .build()
        .unwrap();
    let ticking = watcher.spawn_thread().unwrap();
    eventually("three ticks", || names.1.load(SeqCst) >= 3);
    ticking.stop();
    let after_stop = names.1.load(SeqCst);
    assert!(
        names
            .0
            .lock()
            .unwrap()
            .iter()
            .all(|n| n == "boundflow-tick"),
        "{:?}",
        names.0.lock().unwrap()
    );
    thread::sleep(Duration::from_millis(30));
    assert_eq!(names.1.load(SeqCst), after_stop, "ticked after stop");

    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    runtime.block_on(async {
        let run = watcher.run();
        let enough = async {
            while names.1.load(SeqCst) < after_stop + 2 {
                futures_timer::Delay::new(Duration::from_millis(1)).await;
            }
        };
        futures::pin_mut!(run);
        futures::pin_mut!(enough);
        futures::future::select(run, enough).await;
    });
    assert!(names.1.load(SeqCst) >= after_stop + 2);
}

/// The tracing observer warns on entry and reminders and informs on leaving, with the fields
/// operators filter on.
#[test]
fn tracing_observer_logs_state_changes_not_sends() {
    let clock = FakeClock::new();
    let watcher = watcher_with(&clock);
    let logged = log_capture::logged_while(|| {
        let (tx, mut rx) = ChannelBuilder::new(Crossbeam, "worker.logged", 2)
            .policy(OverflowPolicy::DropNewest)
            .observer(Arc::new(boundflow::TracingObserver))
            .build::<u64>()
            .unwrap();
        watcher.watch(&tx.handle()).unwrap();
        for msg in 0..100 {
            let _ = tx.send_blocking(msg);
        }
        watcher.tick_now();
        clock.advance(Duration::from_secs(61));
        watcher.tick_now();
        while rx.try_recv().is_ok() {}
        watcher.tick_now();
    });
    let lines: Vec<&str> = logged.lines().collect();
    assert_eq!(lines.len(), 3, "98 full sends, one entry: {logged}");
    assert!(lines[0].contains("WARN") && lines[0].contains("channel saturated"));
    assert!(lines[1].contains("WARN") && lines[1].contains("channel still saturated"));
    assert!(lines[1].contains("suppressed=1"), "{}", lines[1]);
    assert!(lines[2].contains("INFO") && lines[2].contains("channel no longer saturated"));
    for field in [
        "channel=\"worker.logged\"",
        "subsystem=\"worker\"",
        "backend=\"crossbeam\"",
        "capacity=2",
        "depth=",
        "saturation=",
    ] {
        assert!(lines.iter().all(|l| l.contains(field)), "{field}: {logged}");
    }
}

/// With feature `serde`, stats and saturation events serialize as operators' tools expect.
#[test]
fn stats_and_events_serialize() {
    let recorder = Arc::new(Recorder::default());
    let watcher = Watcher::builder().build().unwrap();
    let (tx, _rx) = ChannelBuilder::new(Tokio, "worker.json", 1)
        .observer(recorder.clone())
        .build::<u64>()
        .unwrap();
    watcher.watch(&tx.handle()).unwrap();
    tx.try_send(1).unwrap();
    assert!(tx.try_send(2).is_err());
    let json = serde_json::to_value(tx.stats()).unwrap();
    assert_eq!(json["sent"], 1);
    assert_eq!(json["full_events"], 1);
    assert_eq!(json["capacity"], 1);
    assert_eq!(json["saturation"], 1.0);
    assert_eq!(json["send_wait"]["count"], 0);
    let entered = recorder.saturation()[0];
    let json = serde_json::to_value(entered).unwrap();
    assert_eq!(json["kind"], "entered");
    assert_eq!(json["sequence"], 1);
    assert_eq!(json["depth"], 1);
}

/// A weak sender's `close` ends a receive already waiting on an empty channel, while a live
/// sender sends nothing more: `Closed` after the drain, not a wait to the deadline. The
/// receiver has waited once before, for a message, with the same waker (tokio keeps that
/// waker's close registration instead of registering it again).
fn a_weak_close_wakes_a_waiting_receiver<B: BoundedChannel>(backend: B) {
    let (tx, mut rx) = boundflow::bounded::<u64, _>(backend, "worker.weak_close", 4).unwrap();
    let receiver = thread::spawn(move || {
        let first = rx.recv_timeout_blocking(Duration::from_secs(30));
        // Waits here (the channel is empty and a sender is alive) until the close. A receive
        // that missed the close wakes only at its deadline (and then sees `Closed`): the test
        // tells the two apart by which half of the wait it ended in.
        let started = Instant::now();
        let second = rx.recv_timeout_blocking(Duration::from_secs(30));
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "the waiting receive slept through the close to its deadline"
        );
        (first, second, rx)
    });
    // Give the receiver time to start waiting, each time; the outcome must not depend on it.
    thread::sleep(Duration::from_millis(50));
    tx.try_send(7).unwrap();
    thread::sleep(Duration::from_millis(50));
    assert!(
        tx.downgrade().close(),
        "every backend closes from a weak sender"
    );
    let (first, second, rx) = receiver.join().unwrap();
    assert_eq!(first, Ok(7));
    assert_eq!(
        second,
        Err(boundflow::RecvTimeoutError::Closed),
        "the waiting receive did not see the weak sender's close"
    );
    assert!(rx.is_closed());
    assert!(matches!(
        tx.try_send(8),
        Err(boundflow::TrySendError::Closed(8))
    ));
}

/// A weak sender's `close` in the middle of a stream: the producer's sends start failing with
/// `Closed` (its message given back), and the receiver gets every message a send admitted —
/// counted by the producer — then `Closed`.
fn a_weak_close_ends_a_stream_and_loses_nothing<B: BoundedChannel>(backend: B) {
    let (tx, mut rx) =
        boundflow::bounded::<u64, _>(backend, "worker.weak_close_stream", 8).unwrap();
    let weak = tx.downgrade();
    let producer = thread::spawn(move || {
        let mut admitted = 0u64;
        for i in 0.. {
            match tx.send_timeout_blocking(i, Duration::from_secs(30)) {
                Ok(()) => admitted += 1,
                Err(boundflow::SendTimeoutError::Closed(back)) => {
                    assert_eq!(back, i, "the failed send gave another message back");
                    break;
                }
                Err(other) => panic!("send failed otherwise: {other:?}"),
            }
        }
        admitted
    });
    let mut received = Vec::new();
    while received.len() < 100 {
        received.push(rx.recv_blocking().unwrap());
    }
    assert!(weak.close());
    loop {
        match rx.recv_timeout_blocking(Duration::from_secs(30)) {
            Ok(msg) => received.push(msg),
            Err(err) => {
                assert_eq!(err, boundflow::RecvTimeoutError::Closed);
                break;
            }
        }
    }
    let admitted = producer.join().unwrap();
    assert_eq!(
        received.len() as u64,
        admitted,
        "admitted and received differ"
    );
    assert!(
        received.iter().copied().eq(0..admitted),
        "the messages arrived out of order, duplicated or with gaps"
    );
}

/// A send blocked on a full channel wakes with `Closed` (its message given back) after a weak
/// sender's close — at once, or on tokio when the receiver next takes a message — never at its
/// deadline; the receiver gets what was queued, then `Closed`.
fn a_weak_close_wakes_a_blocked_sender<B: BoundedChannel>(backend: B) {
    let (tx, mut rx) =
        boundflow::bounded::<u64, _>(backend, "worker.weak_close_blocked", 1).unwrap();
    tx.try_send(1).unwrap();
    let weak = tx.downgrade();
    let sender = thread::spawn(move || {
        let started = Instant::now();
        (
            tx.send_timeout_blocking(2, Duration::from_secs(30)),
            started.elapsed(),
        )
    });
    // Give the send time to block; the outcome must not depend on it.
    thread::sleep(Duration::from_millis(50));
    assert!(weak.close());
    // On tokio this receive frees the slot the send waits for; elsewhere the send ended already.
    assert_eq!(rx.recv_timeout_blocking(Duration::from_secs(30)), Ok(1));
    let (sent, waited) = sender.join().unwrap();
    assert!(
        matches!(sent, Err(boundflow::SendTimeoutError::Closed(2))),
        "{sent:?}"
    );
    assert!(
        waited < Duration::from_secs(15),
        "the blocked send slept through the close to its deadline"
    );
    assert_eq!(
        rx.recv_timeout_blocking(Duration::from_secs(30)),
        Err(boundflow::RecvTimeoutError::Closed)
    );
}

/// The same for a send waiting in a task, with no deadline at all.
fn a_weak_close_wakes_a_waiting_async_send<B: BoundedChannel>(backend: B) {
    let (tx, mut rx) = boundflow::bounded::<u64, _>(backend, "worker.weak_close_async", 1).unwrap();
    tx.try_send(1).unwrap();
    let weak = tx.downgrade();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let sending = runtime.spawn(async move {
        let started = Instant::now();
        let sent = tx.send(2).await.map_err(|err| match err {
            boundflow::SendError::Closed(msg) => boundflow::SendTimeoutError::Closed(msg),
            other => panic!("the waiting send failed otherwise: {other:?}"),
        });
        (sent, started.elapsed())
    });
    thread::sleep(Duration::from_millis(50));
    assert!(weak.close());
    let outcome = std::sync::Mutex::new(None);
    thread::scope(|scope| {
        scope.spawn(|| {
            *outcome.lock().unwrap() = Some(runtime.block_on(sending).unwrap());
        });
        // The receive below is what frees the slot on tokio; elsewhere the send ended already.
        let first = rx.recv_timeout_blocking(Duration::from_secs(30));
        assert_eq!(first, Ok(1));
    });
    let (sent, waited) = outcome.into_inner().unwrap().unwrap();
    assert!(
        matches!(sent, Err(boundflow::SendTimeoutError::Closed(2))),
        "{sent:?}"
    );
    assert!(waited < Duration::from_secs(15));
    assert_eq!(
        rx.recv_timeout_blocking(Duration::from_secs(30)),
        Err(boundflow::RecvTimeoutError::Closed)
    );
}

/// A weak sender upgrades while a sender exists, and never keeps the channel open.
fn weak_senders_never_keep_a_channel_open<B: BoundedChannel>(backend: B) {
    let (tx, mut rx) = boundflow::bounded::<u64, _>(backend, "worker.weak", 4).unwrap();
    let weak = tx.downgrade();
    let again = weak.upgrade().expect("a sender exists");
    again.try_send(1).unwrap();
    drop(again);
    tx.try_send(2).unwrap();
    drop(tx);
    assert_eq!(rx.try_recv(), Ok(1));
    assert_eq!(rx.try_recv(), Ok(2));
    assert_eq!(
        rx.try_recv(),
        Err(boundflow::TryRecvError::Closed),
        "closed with a weak sender alive"
    );
    assert!(weak.upgrade().is_none(), "upgraded after every sender went");
    assert_eq!(rx.stats().sent, 2);
}
