#![doc = include_str!("../README.md")]
//!
//! # Cargo features
//!
//! | feature | default | enables |
//! |---|---|---|
//! | `tokio` | yes | the [`Tokio`] backend (`tokio::sync::mpsc`), and tokio-runtime detection so that `*_blocking` calls never panic or deadlock inside a runtime |
//! | `flume` | no | the [`Flume`](tyalias@Flume) backend |
//! | `crossbeam` | no | the [`Crossbeam`](tyalias@Crossbeam) backend (crossbeam-channel, with boundflow's own waits for its async path) |
//! | `async-channel` | no | the [`AsyncChannel`](tyalias@AsyncChannel) backend |
//! | `tracing` | no | [`TracingObserver`]: saturation warnings (`warn!` on entering and on reminders, `info!` on leaving) through `tracing` |
//! | `serde` | no | `Serialize` on [`ChannelStats`], [`SendWaitHistogram`] and [`SaturationEvent`] |
//! | `metrics` | no | [`MetricsPublisher`]: every watched channel's counters, gauges and send-wait histogram written to the `metrics` facade on each tick (no exporter: the application installs one; names in `docs/metrics.md`) |
//! | `config` | no | [`config`]: channel sizes, backends and policies from TOML, layered per environment, every value with its source; [`compiled_backends`] tells it which backends this build has |
//!
//! Features are additive; each builds alone. Without `tokio`, blocking calls cannot detect a
//! tokio runtime and simply block — enable it whenever tokio is in your build.
//!
//! # The contract
//!
//! Every backend, on tokio (both flavours), other executors and plain threads, holds the
//! contract documented on [`BoundedChannel`]: bounded, nothing lost silently, FIFO per sender,
//! close that drains and wakes, timeouts never early and giving the message back, no panics
//! from blocking calls inside a runtime, cancel-safe receives, and counters that add up
//! (`sent == received + depth + evicted + discarded_at_close` once activity stops).
#![forbid(unsafe_code)]

pub use boundflow_core::{
    BoundedChannel, BuildError, Capacity, CapacityError, ChannelBuilder, ChannelHandle,
    ChannelInfo, ChannelReport, ChannelStats, Clock, DEFAULT_MAX_CAPACITY, DepthProbe, FakeClock,
    Forced, Observer, Occupancy, OverflowPolicy, Publish, RawReceiver, RawSender, RecvError,
    RecvTimeoutError, RetryPolicy, RetryPolicyError, SEND_WAIT_BOUNDS, SaturationEvent,
    SaturationKind, SaturationThresholds, SendError, SendTimeoutError, SendWaitHistogram,
    SystemClock, ThresholdError, TickThread, TryRecvError, TrySendError, WaitStrategy,
    WaitStrategyError, WatchError, Watcher, WatcherBuilder, WatcherError, barrier, bounded,
    channel, notified, runtime, saturation, subsystem, timer,
};

#[cfg(feature = "tracing")]
pub use boundflow_core::TracingObserver;

#[cfg(any(
    feature = "tokio",
    feature = "flume",
    feature = "crossbeam",
    feature = "async-channel"
))]
mod any_backend;
#[cfg(any(
    feature = "tokio",
    feature = "flume",
    feature = "crossbeam",
    feature = "async-channel"
))]
pub use any_backend::{
    AnyBackend, AnyReceiver, AnySender, AnyWeakSender, ChannelPair, Receiver, Sender,
    UnknownBackend, WeakSender,
};

#[cfg(not(any(
    feature = "tokio",
    feature = "flume",
    feature = "crossbeam",
    feature = "async-channel"
)))]
pub use boundflow_core::{ChannelPair, Receiver, Sender, WeakSender};

#[cfg(feature = "metrics")]
mod metrics;
#[cfg(feature = "metrics")]
pub use metrics::{METRIC_NAMES, MetricsPublisher};

#[cfg(feature = "async-channel")]
pub use boundflow_async_channel::AsyncChannel;
#[cfg(feature = "crossbeam")]
pub use boundflow_crossbeam::Crossbeam;
#[cfg(feature = "flume")]
pub use boundflow_flume::Flume;
#[cfg(feature = "tokio")]
pub use boundflow_tokio::Tokio;

/// The backend crates, for their raw endpoint types and docs.
pub mod backends {
    #[cfg(feature = "async-channel")]
    pub use boundflow_async_channel as async_channel;
    #[cfg(feature = "crossbeam")]
    pub use boundflow_crossbeam as crossbeam;
    #[cfg(feature = "flume")]
    pub use boundflow_flume as flume;
    #[cfg(feature = "tokio")]
    pub use boundflow_tokio as tokio;
}

/// Channel configuration from TOML: the `boundflow-config` crate.
#[cfg(feature = "config")]
pub use boundflow_config as config;

#[cfg(all(
    feature = "config",
    any(
        feature = "tokio",
        feature = "flume",
        feature = "crossbeam",
        feature = "async-channel"
    )
))]
mod registry;
#[cfg(all(
    feature = "config",
    any(
        feature = "tokio",
        feature = "flume",
        feature = "crossbeam",
        feature = "async-channel"
    )
))]
pub use registry::{
    ChannelSnapshot, HealthState, Registry, RegistryBuilder, RegistryError, ShutdownReport,
    Snapshot,
};

/// The backends compiled into this build, as the config loader checks channels against them
/// (`Loader::backends(boundflow::compiled_backends())`).
#[cfg(feature = "config")]
pub fn compiled_backends() -> Vec<config::BackendInfo> {
    #[allow(dead_code)] // unused in a build with no backend
    fn info<B: BoundedChannel>(backend: B, cargo_feature: &'static str) -> config::BackendInfo {
        config::BackendInfo {
            ident: backend.name(),
            cargo_feature,
            supports_drop_oldest: backend.supports_drop_oldest(),
            max_capacity: backend.max_capacity(),
        }
    }
    vec![
        #[cfg(feature = "tokio")]
        info(Tokio, "tokio"),
        #[cfg(feature = "flume")]
        info(Flume, "flume"),
        #[cfg(feature = "crossbeam")]
        info(Crossbeam, "crossbeam"),
        #[cfg(feature = "async-channel")]
        info(AsyncChannel, "async-channel"),
    ]
}
