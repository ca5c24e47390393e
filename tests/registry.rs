//! The registry end to end: the shipped preset directory → a registry → a channel per backend
//! → messages flow → the snapshot carries each channel's configured name, capacity, backend
//! and health → the tick warns on a saturated one → shutdown drains and closes. And every typed
//! error a user can meet.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

#[cfg(feature = "tracing")]
#[path = "support/log_capture.rs"]
mod log_capture;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use boundflow::config::{Loader, presets};
use boundflow::{
    ChannelInfo, FakeClock, HealthState, Observer, Registry, RegistryError, SaturationEvent,
    SaturationKind,
};

#[derive(Default)]
struct Warnings(Mutex<Vec<(String, SaturationKind)>>);

impl Observer for Warnings {
    fn on_saturation(&self, channel: &ChannelInfo, event: &SaturationEvent) {
        self.0
            .lock()
            .unwrap()
            .push((channel.name().to_owned(), event.kind));
    }
}

fn registry(environment: &str) -> (Registry, Arc<Warnings>, FakeClock) {
    let config = Loader::from_dir(presets::dir())
        .environment(environment)
        .backends(boundflow::compiled_backends())
        .load()
        .unwrap();
    let warnings = Arc::new(Warnings::default());
    let clock = FakeClock::new();
    let registry = Registry::builder(config)
        .observer(warnings.clone())
        .clock(Arc::new(clock.clone()))
        .tick_thread(false)
        .build()
        .unwrap();
    (registry, warnings, clock)
}

#[test]
fn preset_to_registry_to_channels_on_every_backend() {
    let (registry, warnings, _clock) = registry("demo");
    // The demo preset puts one channel on each backend.
    let expected = [
        ("orchestration.command", "crossbeam", 32, "timeout"),
        (
            "worker.step_processor.execution_request",
            "tokio",
            64,
            "block",
        ),
        ("worker.step_processor.result", "flume", 16, "drop_oldest"),
        ("task_readiness.event_channel", "async_channel", 8, "retry"),
    ];
    let mut pairs = Vec::new();
    for (name, backend, capacity, policy) in expected {
        let (tx, rx) = registry.open::<u64>(name).unwrap();
        assert_eq!(
            (tx.backend(), tx.capacity(), tx.policy().name()),
            (backend, capacity, policy)
        );
        pairs.push((tx, rx));
    }
    assert_eq!(registry.unopened(), ["event_publisher.event_queue"]);
    assert_eq!(
        registry.capacity("event_publisher.event_queue").unwrap(),
        16
    );

    // Messages flow, through the opened sender and through one the registry hands out.
    for (index, (tx, rx)) in pairs.iter_mut().enumerate() {
        tx.try_send(index as u64).unwrap();
        let other = registry.sender::<u64>(tx.name()).unwrap();
        other.try_send(100 + index as u64).unwrap();
        assert_eq!(rx.try_recv(), Ok(index as u64));
        assert_eq!(rx.try_recv(), Ok(100 + index as u64));
    }

    // Saturate the crossbeam channel: the tick's warning fires; the snapshot says critical.
    let (command, _) = &pairs[0];
    while command.try_send(7).is_ok() {}
    registry.tick_now();
    let fired = warnings.0.lock().unwrap().clone();
    assert_eq!(
        fired,
        [("orchestration.command".to_owned(), SaturationKind::Entered)]
    );
    let snapshot = registry.snapshot();
    assert_eq!(snapshot.channels.len(), 4);
    for (name, backend, capacity, policy) in expected {
        let channel = snapshot.channels.iter().find(|c| c.name == name).unwrap();
        assert_eq!(
            (channel.backend, channel.capacity, channel.overflow),
            (backend, capacity, policy)
        );
        let health = if name == "orchestration.command" {
            HealthState::Critical
        } else {
            HealthState::Healthy
        };
        assert_eq!(channel.health, health, "{name}");
    }
    let json: serde_json::Value = serde_json::from_str(&snapshot.to_json()).unwrap();
    let command_json = json["channels"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "orchestration.command")
        .unwrap();
    assert_eq!(command_json["health"], "critical");
    assert_eq!(command_json["stats"]["depth"], 32);
    assert_eq!(command_json["backend"], "crossbeam");

    // Shutdown closes what it can, lets the receivers drain, and ticks once more.
    let report = std::thread::scope(|scope| {
        let draining = scope.spawn(|| {
            let (_, rx) = &mut pairs[0];
            let mut drained = 0;
            while rx.recv_blocking().is_ok() {
                drained += 1;
            }
            drained
        });
        let report = registry.shutdown(Duration::from_secs(10));
        assert_eq!(
            draining.join().unwrap(),
            32,
            "every queued message was drained"
        );
        report
    });
    assert!(report.undrained.is_empty(), "{report:?}");
    let mut every: Vec<&str> = expected.iter().map(|(name, ..)| *name).collect();
    every.sort();
    assert_eq!(report.closed, every, "shutdown closes every open channel");
    // Every channel refuses sends now (tokio's included) and gives the message back; each
    // receiver, having nothing queued, sees `Closed`.
    for (tx, rx) in &mut pairs {
        match tx.try_send(41) {
            Err(boundflow::TrySendError::Closed(back)) => assert_eq!(back, 41, "{}", tx.name()),
            other => panic!("{}: {other:?}", tx.name()),
        }
        assert_eq!(
            rx.try_recv(),
            Err(boundflow::TryRecvError::Closed),
            "{}",
            tx.name()
        );
    }
    assert!(matches!(
        registry.sender::<u64>("orchestration.command"),
        Err(RegistryError::Closed { .. })
    ));
}

#[test]
fn every_registry_error_is_typed() {
    let (registry, _, _) = registry("test");
    match registry.open::<u64>("worker.step_processor.execution_requests") {
        Err(RegistryError::UnknownChannel { near, .. }) => {
            assert_eq!(near[0], "worker.step_processor.execution_request");
        }
        other => panic!("{other:?}"),
    }
    let err = registry.open::<u64>("nothing.like.it").unwrap_err();
    assert!(err.to_string().contains("add `nothing.like.it`"), "{err}");
    assert!(matches!(
        registry.sender::<u64>("orchestration.command"),
        Err(RegistryError::NotOpen { .. })
    ));
    let (tx, rx) = registry.open::<u64>("orchestration.command").unwrap();
    assert!(matches!(
        registry.open::<u64>("orchestration.command"),
        Err(RegistryError::AlreadyOpen { .. })
    ));
    match registry.sender::<String>("orchestration.command") {
        Err(RegistryError::TypeMismatch {
            opened_with,
            requested,
            ..
        }) => {
            assert_eq!(opened_with, "u64");
            assert!(requested.contains("String"));
        }
        other => panic!("{other:?}"),
    }
    // The registry keeps only weak senders: dropping ours closes the channel.
    drop(tx);
    let mut rx = rx;
    assert_eq!(rx.try_recv(), Err(boundflow::TryRecvError::Closed));
    assert!(matches!(
        registry.sender::<u64>("orchestration.command"),
        Err(RegistryError::Closed { .. })
    ));
    // Once both ends are gone the name may be opened again, with another type even.
    drop(rx);
    let (tx, _rx) = registry.open::<String>("orchestration.command").unwrap();
    assert_eq!(tx.capacity(), 100, "the test environment's size");
}

#[test]
fn degraded_while_saturated_and_healthy_after() {
    let (registry, warnings, clock) = registry("test");
    let (tx, mut rx) = registry.open::<u64>("event_publisher.event_queue").unwrap();
    // 90% full: saturated by a tick sample, never full.
    for n in 0..450 {
        tx.try_send(n).unwrap();
    }
    registry.tick_now();
    registry.tick_now();
    let health = |registry: &Registry| registry.snapshot().channels[0].health;
    assert_eq!(health(&registry), HealthState::Degraded);
    while rx.try_recv().is_ok() {}
    clock.advance(Duration::from_secs(1));
    registry.tick_now();
    assert_eq!(health(&registry), HealthState::Healthy);
    let kinds: Vec<SaturationKind> = warnings.0.lock().unwrap().iter().map(|w| w.1).collect();
    assert_eq!(kinds, [SaturationKind::Entered, SaturationKind::Left]);
}

/// The health of `name` in the registry's snapshot.
fn health_of(registry: &Registry, name: &str) -> Option<HealthState> {
    registry
        .snapshot()
        .channels
        .iter()
        .find(|channel| channel.name == name)
        .map(|channel| channel.health)
}

/// A channel opened again under a name inherits nothing from the one before it: not its
/// `critical` (the new one is empty), and the new one's full events count from zero.
#[test]
fn a_reopened_channel_starts_healthy_and_its_own_full_events_count() {
    let (registry, _, _) = registry("test");
    let name = "worker.step_processor.execution_request";
    let (tx, rx) = registry.open::<u64>(name).unwrap();
    let mut refused = 0;
    while tx.try_send(0).is_ok() {}
    refused += 1;
    for _ in 0..10 {
        assert!(tx.try_send(0).unwrap_err().is_full());
        refused += 1;
    }
    assert_eq!(tx.stats().full_events, refused);
    registry.tick_now();
    assert_eq!(health_of(&registry, name), Some(HealthState::Critical));

    drop((tx, rx));
    let (tx, mut rx) = registry.open::<u64>(name).unwrap();
    assert_eq!(
        health_of(&registry, name),
        Some(HealthState::Healthy),
        "the new, empty channel inherited the old one's critical"
    );
    // One full event of its own (fewer than the old channel's), then room again: the next
    // tick sees its full events grow from zero.
    while tx.try_send(1).is_ok() {}
    while rx.try_recv().is_ok() {}
    assert_eq!(tx.stats().full_events, 1);
    registry.tick_now();
    assert_eq!(
        health_of(&registry, name),
        Some(HealthState::Critical),
        "the new channel's full event was measured against the old channel's count"
    );
}

/// `shutdown(Duration::MAX)` waits as long as the drain takes (no overflow), closes the tokio
/// channel too, and the receiver gets every queued message, then `Closed`; `Duration::ZERO`
/// reports what is left.
#[test]
fn shutdown_waits_for_the_drain_or_reports_what_is_left() {
    let (registry, _, _) = registry("test");
    let name = "worker.step_processor.execution_request";
    let (tx, mut rx) = registry.open::<u64>(name).unwrap();
    assert_eq!(tx.backend(), "tokio");
    for n in 0..50 {
        tx.try_send(n).unwrap();
    }
    let drainer = std::thread::spawn(move || {
        // Late, so a shutdown that did not wait would return with all 50 still queued.
        std::thread::sleep(Duration::from_millis(100));
        let mut received = Vec::new();
        let end = loop {
            match rx.recv_timeout_blocking(Duration::from_secs(30)) {
                Ok(msg) => received.push(msg),
                Err(err) => break err,
            }
        };
        (received, end)
    });
    let report = registry.shutdown(Duration::MAX);
    assert_eq!(report.closed, [name]);
    assert!(report.undrained.is_empty(), "{report:?}");
    let (received, end) = drainer.join().unwrap();
    assert_eq!(received, (0..50).collect::<Vec<u64>>());
    assert_eq!(end, boundflow::RecvTimeoutError::Closed);
    assert!(tx.try_send(50).unwrap_err().is_closed());

    let (nobody_drains, _, _) = self::registry("test");
    let (tx, _rx) = nobody_drains.open::<u64>(name).unwrap();
    for n in 0..7 {
        tx.try_send(n).unwrap();
    }
    let report = nobody_drains.shutdown(Duration::ZERO);
    assert_eq!(report.undrained, [(name.to_owned(), 7)]);
}

/// An observer that reads the registry from the tick (a snapshot for its log line) while
/// another thread opens a channel: the open no longer holds the registry while it joins the
/// watcher, so neither waits for the other forever.
#[test]
fn an_observer_reading_the_registry_in_a_tick_does_not_deadlock_an_open() {
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicBool, Ordering::SeqCst};

    #[derive(Default)]
    struct ReadsTheRegistry {
        registry: OnceLock<Arc<Registry>>,
        fired: AtomicBool,
        opener: Mutex<Option<std::thread::JoinHandle<bool>>>,
        channels_seen: Mutex<Option<usize>>,
    }
    impl Observer for ReadsTheRegistry {
        fn on_saturation(&self, _: &ChannelInfo, event: &SaturationEvent) {
            // `Left` comes from the tick (a send may enter saturation itself).
            let Some(registry) = self.registry.get() else {
                return;
            };
            if event.kind != SaturationKind::Left || self.fired.swap(true, SeqCst) {
                return;
            }
            // Another thread opens a channel now; it joins the watcher, which this tick holds.
            let opening = Arc::clone(registry);
            *self.opener.lock().unwrap() = Some(std::thread::spawn(move || {
                opening.open::<u64>("orchestration.command").is_ok()
            }));
            std::thread::sleep(Duration::from_millis(100));
            *self.channels_seen.lock().unwrap() = Some(registry.snapshot().channels.len());
        }
    }

    let config = Loader::from_dir(presets::dir())
        .environment("test")
        .backends(boundflow::compiled_backends())
        .load()
        .unwrap();
    let observer = Arc::new(ReadsTheRegistry::default());
    let registry = Arc::new(
        Registry::builder(config)
            .observer(observer.clone())
            .tick_thread(false)
            .build()
            .unwrap(),
    );
    assert!(observer.registry.set(Arc::clone(&registry)).is_ok());
    let (tx, mut rx) = registry.open::<u64>("event_publisher.event_queue").unwrap();
    while tx.try_send(0).is_ok() {}
    registry.tick_now();
    while rx.try_recv().is_ok() {}
    let (done, ticked) = std::sync::mpsc::channel();
    let ticking = Arc::clone(&registry);
    std::thread::spawn(move || {
        ticking.tick_now();
        let _ = done.send(());
    });
    assert!(
        ticked.recv_timeout(Duration::from_secs(30)).is_ok(),
        "the tick and the open deadlocked"
    );
    let opener = observer.opener.lock().unwrap().take().unwrap();
    assert!(opener.join().unwrap(), "the concurrent open failed");
    assert!(
        observer.channels_seen.lock().unwrap().is_some(),
        "the tick never heard `Left`"
    );
}

/// What the registry's channels log through `tracing` while the test ticks them
/// (`tick_now`): the default (`TracingObserver` on every channel) or with
/// `tracing_warnings(false)`.
#[cfg(feature = "tracing")]
fn logged_by_registry(tracing_warnings: bool) -> String {
    let config = Loader::from_dir(presets::dir())
        .environment("test")
        .backends(boundflow::compiled_backends())
        .load()
        .unwrap();
    let clock = FakeClock::new();
    let registry = Registry::builder(config)
        .clock(Arc::new(clock.clone()))
        .tick_thread(false)
        .tracing_warnings(tracing_warnings)
        .build()
        .unwrap();
    log_capture::logged_while(|| {
        let (tx, mut rx) = registry.open::<u64>("event_publisher.event_queue").unwrap();
        // 90% of 500: above the preset's warning threshold.
        for n in 0..450 {
            tx.try_send(n).unwrap();
        }
        registry.tick_now();
        while rx.try_recv().is_ok() {}
        clock.advance(Duration::from_secs(1));
        registry.tick_now();
    })
}

/// A registry's channels warn through `tracing` without being asked to (the configuration's
/// thresholds would otherwise show nowhere), and stop when told.
#[cfg(feature = "tracing")]
#[test]
fn registry_channels_log_saturation_through_tracing() {
    let logged = logged_by_registry(true);
    // Only the saturation lines: a registry of another test running at the same time may own
    // the channel's metrics, and this one's publisher then logs that it was refused.
    let lines: Vec<&str> = logged.lines().filter(|l| l.contains("saturated")).collect();
    assert_eq!(lines.len(), 2, "{logged}");
    assert!(lines[0].contains("WARN") && lines[0].contains("channel saturated"));
    assert!(lines[1].contains("INFO") && lines[1].contains("channel no longer saturated"));
    assert!(
        lines
            .iter()
            .all(|l| l.contains("channel=\"event_publisher.event_queue\"")
                && l.contains("capacity=500")),
        "{logged}"
    );
    assert!(
        !logged_by_registry(false).contains("saturated"),
        "tracing_warnings(false) still logged"
    );
}

/// On a current-thread runtime, the blocking `shutdown` cannot wait for a receiver task on
/// that same thread: it closes, returns at once (even with `Duration::MAX`) and says so;
/// `shutdown_async` waits while the task drains everything.
#[test]
fn shutdown_inside_a_current_thread_runtime_never_hangs_and_the_async_one_waits() {
    let name = "worker.step_processor.execution_request";
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (registry, _, _) = registry("test");
    let (tx, _rx) = registry.open::<u64>(name).unwrap();
    for n in 0..7 {
        tx.try_send(n).unwrap();
    }
    let report = runtime.block_on(async { registry.shutdown(Duration::MAX) });
    assert!(report.would_deadlock, "{report:?}");
    assert_eq!(report.closed, [name]);
    assert_eq!(report.undrained, [(name.to_owned(), 7)]);

    let (registry, _, _) = self::registry("test");
    let (tx, mut rx) = registry.open::<u64>(name).unwrap();
    for n in 0..50 {
        tx.try_send(n).unwrap();
    }
    let (report, received) = runtime.block_on(async {
        let drainer = tokio::task::spawn(async move {
            // Late, so a shutdown that did not wait would report all 50 still queued.
            tokio::time::sleep(Duration::from_millis(50)).await;
            let mut received = Vec::new();
            while let Ok(msg) = rx.recv().await {
                received.push(msg);
            }
            received
        });
        let report = registry.shutdown_async(Duration::MAX).await;
        (report, drainer.await.unwrap())
    });
    assert!(!report.would_deadlock);
    assert!(report.undrained.is_empty(), "{report:?}");
    assert_eq!(received, (0..50).collect::<Vec<u64>>());
    assert!(tx.try_send(50).unwrap_err().is_closed());
}

/// A configuration naming a backend the build lacks is refused when the registry is built,
/// naming the channel, where the backend was set and the fix — not at the channel's first
/// `open`. (Here the configuration is edited after loading: every backend is compiled in.)
#[test]
fn a_backend_the_build_lacks_is_refused_when_the_registry_is_built() {
    let mut config = Loader::from_dir(presets::dir())
        .environment("test")
        .backends(boundflow::compiled_backends())
        .load()
        .unwrap();
    let channel = config
        .channels
        .iter_mut()
        .find(|c| c.name == "worker.step_processor.result")
        .unwrap();
    channel.backend.value = "carrier_pigeon".to_owned();
    let source = channel.backend.source.to_string();
    let err = Registry::builder(config)
        .tick_thread(false)
        .build()
        .unwrap_err();
    match &err {
        RegistryError::UnavailableBackend {
            name, source: at, ..
        } => {
            assert_eq!(name, "worker.step_processor.result");
            assert_eq!(*at, source);
        }
        other => panic!("{other:?}"),
    }
    let message = err.to_string();
    assert!(
        message.contains("carrier_pigeon") && message.contains("compiled_backends"),
        "{message}"
    );
}
