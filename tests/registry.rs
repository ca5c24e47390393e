//! The registry end to end: the shipped preset directory → a registry → a channel per backend
//! → messages flow → the snapshot carries each channel's configured name, capacity, backend
//! and health → the tick warns on a saturated one → shutdown drains and closes. And every typed
//! error a user can meet.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

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
    assert_eq!(
        report.not_closable,
        ["worker.step_processor.execution_request"]
    );
    assert_eq!(report.closed.len(), 3);
    assert!(pairs[0].0.try_send(1).unwrap_err().is_closed());
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
