//! [`Registry`]: channels opened by name, with the backend, capacity, policy and wait strategy
//! the configuration gives them, all watched by one [`Watcher`].
//!
//! The registry keeps only weak senders and handles, so it never keeps a channel open: a
//! channel closes when the code that opened it drops its senders, and its name may be opened
//! again once both ends are gone.

use std::any::{Any, TypeId, type_name};
use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::config::Config;
use crate::{
    AnyBackend, BuildError, ChannelBuilder, ChannelHandle, ChannelPair, ChannelReport,
    ChannelStats, Clock, Observer, Publish, SaturationThresholds, Sender, SystemClock, TickThread,
    UnknownBackend, WatchError, Watcher, WatcherError, WeakSender,
};

/// Why the registry refused.
#[derive(Debug)]
#[non_exhaustive]
pub enum RegistryError {
    /// No channel of this name is configured (never a default size).
    UnknownChannel {
        /// The name asked for.
        name: String,
        /// Configured names close to it.
        near: Vec<String>,
    },
    /// The channel is open (an end of it still exists): open it again once both are gone.
    AlreadyOpen {
        /// The channel.
        name: String,
    },
    /// The channel is configured but has not been opened.
    NotOpen {
        /// The channel.
        name: String,
    },
    /// The channel was opened with another message type.
    TypeMismatch {
        /// The channel.
        name: String,
        /// The type it was opened with.
        opened_with: &'static str,
        /// The type asked for.
        requested: &'static str,
    },
    /// Every sender of the channel has gone (or the registry has shut down).
    Closed {
        /// The channel.
        name: String,
    },
    /// The configured backend is not in this build.
    Backend(UnknownBackend),
    /// A configured channel names a backend this build lacks: refused when the registry is
    /// built, not at the channel's first `open` (a configuration loaded without
    /// `Loader::backends(boundflow::compiled_backends())` was checked against all four).
    UnavailableBackend {
        /// The channel.
        name: String,
        /// Where its backend was set (`file:line`, `env:VARIABLE`, `default`).
        source: String,
        /// Which backend, and the cargo feature that brings it.
        error: UnknownBackend,
    },
    /// The configured values could not make a channel.
    Build {
        /// The channel.
        name: String,
        /// Why.
        error: BuildError,
    },
    /// The configured thresholds or interval cannot work.
    Watcher(WatcherError),
    /// The watcher refused the channel.
    Watch(WatchError),
    /// The tick thread could not be started.
    Tick(String),
}

impl fmt::Display for RegistryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RegistryError::UnknownChannel { name, near } if near.is_empty() => write!(
                f,
                "no channel `{name}` is configured: add `{name}` to mpsc_channels in the base file"
            ),
            RegistryError::UnknownChannel { name, near } => write!(
                f,
                "no channel `{name}` is configured; did you mean {}?",
                near.iter()
                    .map(|n| format!("`{n}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            RegistryError::AlreadyOpen { name } => write!(
                f,
                "channel `{name}` is already open: clone its sender (`Registry::sender`) instead"
            ),
            RegistryError::NotOpen { name } => {
                write!(
                    f,
                    "channel `{name}` is not open: open it first (`Registry::open`)"
                )
            }
            RegistryError::TypeMismatch {
                name,
                opened_with,
                requested,
            } => write!(
                f,
                "channel `{name}` carries `{opened_with}`, not `{requested}`"
            ),
            RegistryError::Closed { name } => write!(f, "channel `{name}` is closed"),
            RegistryError::Backend(err) => err.fmt(f),
            RegistryError::UnavailableBackend {
                name,
                source,
                error,
            } => write!(
                f,
                "{source}: channel `{name}`: {error} (load the configuration with \
                 `.backends(boundflow::compiled_backends())` to have this reported with the \
                 other configuration errors)"
            ),
            RegistryError::Build { name, error } => write!(f, "channel `{name}`: {error}"),
            RegistryError::Watcher(err) => err.fmt(f),
            RegistryError::Watch(err) => err.fmt(f),
            RegistryError::Tick(err) => write!(f, "the tick thread could not start: {err}"),
        }
    }
}

impl std::error::Error for RegistryError {}

/// Builds a [`Registry`].
#[must_use = "a builder does nothing until `build` is called"]
pub struct RegistryBuilder {
    config: Config,
    observers: Vec<Arc<dyn Observer>>,
    clock: Arc<dyn Clock>,
    tick_thread: bool,
    #[cfg(feature = "tracing")]
    tracing_warnings: bool,
}

impl RegistryBuilder {
    /// An observer for every channel the registry opens.
    pub fn observer(mut self, observer: Arc<dyn Observer>) -> Self {
        self.observers.push(observer);
        self
    }

    /// Whether every channel the registry opens logs its saturation warnings through
    /// `tracing` ([`TracingObserver`](crate::TracingObserver): `warn!` on entering and on each
    /// reminder, as the defaults table's thresholds and reminder interval say; `info!` on
    /// leaving). On by default: the configuration's warning keys would otherwise do nothing
    /// visible. Turn it off where an observer of your own logs instead.
    #[cfg(feature = "tracing")]
    pub fn tracing_warnings(mut self, on: bool) -> Self {
        self.tracing_warnings = on;
        self
    }

    /// The watcher's clock (a [`FakeClock`](crate::FakeClock) in tests).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Whether to tick on a thread of its own (default `true`); tests turn it off and call
    /// [`Registry::tick_now`].
    pub fn tick_thread(mut self, on: bool) -> Self {
        self.tick_thread = on;
        self
    }

    /// Makes the registry and its one watcher, from the defaults table: the interval
    /// (`saturation_check_interval_seconds`), the thresholds and the metrics switch.
    ///
    /// # Errors
    /// [`RegistryError::UnavailableBackend`] for a channel on a backend this build lacks;
    /// [`RegistryError::Watcher`] for thresholds or an interval that cannot work;
    /// [`RegistryError::Tick`] if the thread cannot start.
    pub fn build(self) -> Result<Registry, RegistryError> {
        if let Some(unavailable) = self.config.channels.iter().find_map(|channel| {
            let error = AnyBackend::from_name(&channel.backend.value).err()?;
            Some(RegistryError::UnavailableBackend {
                name: channel.name.clone(),
                source: channel.backend.source.to_string(),
                error,
            })
        }) {
            return Err(unavailable);
        }
        #[cfg_attr(not(feature = "tracing"), allow(unused_mut))]
        let mut observers = self.observers;
        #[cfg(feature = "tracing")]
        if self.tracing_warnings {
            observers.push(Arc::new(crate::TracingObserver));
        }
        let defaults = &self.config.defaults;
        let thresholds = SaturationThresholds {
            warn: defaults.log_warning_threshold.value,
            recover: defaults.recover_threshold.value,
            reminder_interval: Duration::from_secs(defaults.log_reminder_interval_seconds.value),
        };
        let health = Arc::new(Health::default());
        let watcher = Watcher::builder()
            .interval(Duration::from_secs(
                defaults.saturation_check_interval_seconds.value,
            ))
            .thresholds(thresholds)
            .clock(self.clock)
            .publisher(health.clone())
            .build()
            .map_err(RegistryError::Watcher)?;
        #[cfg(feature = "metrics")]
        {
            let metrics = crate::MetricsPublisher::new();
            metrics.set_enabled(defaults.metrics_enabled.value);
            watcher.add_publisher(Arc::new(metrics));
        }
        let tick = if self.tick_thread {
            Some(
                watcher
                    .spawn_thread()
                    .map_err(|err| RegistryError::Tick(err.to_string()))?,
            )
        } else {
            None
        };
        Ok(Registry {
            config: self.config,
            observers,
            watcher,
            health,
            open: Mutex::new(HashMap::new()),
            shut_down: AtomicBool::new(false),
            _tick: tick,
        })
    }
}

/// Channels by name, from a resolved [`Config`] (see the module docs).
///
/// ```
/// # #[cfg(feature = "tokio")] {
/// use boundflow::config::Loader;
/// use boundflow::Registry;
///
/// let config = Loader::from_strs(
///     "[mpsc_channels.worker.step_processor]\nexecution_request_buffer_size = 100\n",
///     None,
/// )
/// .backends(boundflow::compiled_backends())
/// .load()
/// .unwrap();
/// let registry = Registry::builder(config).tick_thread(false).build().unwrap();
/// let (tx, mut rx) = registry.open::<u64>("worker.step_processor.execution_request").unwrap();
/// assert_eq!(tx.capacity(), 100);
/// registry.sender::<u64>("worker.step_processor.execution_request").unwrap().try_send(7).unwrap();
/// assert_eq!(rx.try_recv(), Ok(7));
/// assert!(registry.open::<u64>("worker.step_processor.execution_requests").is_err());
/// # drop(tx); }
/// ```
pub struct Registry {
    config: Config,
    observers: Vec<Arc<dyn Observer>>,
    watcher: Watcher,
    health: Arc<Health>,
    open: Mutex<HashMap<String, Opened>>,
    shut_down: AtomicBool,
    _tick: Option<TickThread>,
}

/// An opened channel: what `sender` needs, and no strong endpoint.
struct Opened {
    type_id: TypeId,
    type_name: &'static str,
    /// A `WeakSender<T>` of the type it was opened with.
    weak: Box<dyn Any + Send + Sync>,
    /// Closes it through the weak sender.
    close: Box<dyn Fn() -> bool + Send + Sync>,
    handle: ChannelHandle,
}

impl Registry {
    /// A builder for a registry over `config`.
    pub fn builder(config: Config) -> RegistryBuilder {
        RegistryBuilder {
            config,
            observers: Vec::new(),
            clock: Arc::new(SystemClock),
            tick_thread: true,
            #[cfg(feature = "tracing")]
            tracing_warnings: true,
        }
    }

    /// The configuration it opens channels from.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Its one watcher.
    pub fn watcher(&self) -> &Watcher {
        &self.watcher
    }

    /// Ticks now (tests, and the last tick at shutdown).
    pub fn tick_now(&self) -> Vec<ChannelReport> {
        self.watcher.tick_now()
    }

    /// Opens a configured channel: the monitored pair with its configured backend, capacity,
    /// policy and wait strategy, watched by the registry's watcher.
    ///
    /// # Errors
    /// [`UnknownChannel`](RegistryError::UnknownChannel) (with near names),
    /// [`AlreadyOpen`](RegistryError::AlreadyOpen), [`Closed`](RegistryError::Closed) after
    /// shutdown, [`Backend`](RegistryError::Backend), [`Build`](RegistryError::Build).
    pub fn open<T: Send + 'static>(&self, name: &str) -> Result<ChannelPair<T>, RegistryError> {
        let settings = self.settings(name)?;
        let mut open = lock(&self.open);
        if self.shut_down.load(Relaxed) {
            return Err(RegistryError::Closed { name: name.into() });
        }
        if open
            .get(name)
            .is_some_and(|opened| !opened.handle.is_gone())
        {
            return Err(RegistryError::AlreadyOpen { name: name.into() });
        }
        let backend =
            AnyBackend::from_name(&settings.backend.value).map_err(RegistryError::Backend)?;
        let mut builder = ChannelBuilder::new(backend, name, settings.capacity.value)
            .max_capacity(self.config.defaults.max_capacity.value)
            .policy(settings.policy())
            .wait_strategy(settings.wait_strategy());
        for observer in &self.observers {
            builder = builder.observer(Arc::clone(observer));
        }
        let (tx, rx) = builder.build::<T>().map_err(|error| RegistryError::Build {
            name: name.into(),
            error,
        })?;
        let handle = tx.handle();
        let weak = tx.downgrade();
        let closer = weak.clone();
        open.insert(
            name.to_owned(),
            Opened {
                type_id: TypeId::of::<T>(),
                type_name: type_name::<T>(),
                weak: Box::new(weak),
                close: Box::new(move || closer.close()),
                handle: handle.clone(),
            },
        );
        // Watched after the registry's lock is released: the watcher calls observers while it
        // holds its list, and an observer may read the registry (a snapshot, a sender), so
        // taking the list under this lock could deadlock with a tick. The entry is in place,
        // so a concurrent `open` of the name sees it open meanwhile.
        drop(open);
        if let Err(err) = self.watcher.watch(&handle) {
            let mut open = lock(&self.open);
            if open
                .get(name)
                .is_some_and(|opened| opened.handle.same_channel(&handle))
            {
                open.remove(name);
            }
            return Err(RegistryError::Watch(err));
        }
        Ok((tx, rx))
    }

    /// Another sender of an open channel.
    ///
    /// # Errors
    /// [`UnknownChannel`](RegistryError::UnknownChannel), [`NotOpen`](RegistryError::NotOpen),
    /// [`TypeMismatch`](RegistryError::TypeMismatch), [`Closed`](RegistryError::Closed) once
    /// every sender has gone.
    pub fn sender<T: Send + 'static>(&self, name: &str) -> Result<Sender<T>, RegistryError> {
        self.settings(name)?;
        let open = lock(&self.open);
        let opened = open
            .get(name)
            .ok_or_else(|| RegistryError::NotOpen { name: name.into() })?;
        let weak = opened
            .weak
            .downcast_ref::<WeakSender<T>>()
            .filter(|_| opened.type_id == TypeId::of::<T>())
            .ok_or_else(|| RegistryError::TypeMismatch {
                name: name.into(),
                opened_with: opened.type_name,
                requested: type_name::<T>(),
            })?;
        if self.shut_down.load(Relaxed) {
            return Err(RegistryError::Closed { name: name.into() });
        }
        weak.upgrade()
            .ok_or_else(|| RegistryError::Closed { name: name.into() })
    }

    /// The configured capacity of `name`, for channel kinds boundflow does not make (a tokio
    /// `broadcast` or `oneshot` sized from the same TOML).
    ///
    /// # Errors
    /// [`UnknownChannel`](RegistryError::UnknownChannel).
    pub fn capacity(&self, name: &str) -> Result<usize, RegistryError> {
        Ok(self.settings(name)?.capacity.value)
    }

    /// Configured channels never opened, in configuration order.
    pub fn unopened(&self) -> Vec<String> {
        let open = lock(&self.open);
        self.config
            .channels
            .iter()
            .filter(|channel| !open.contains_key(&channel.name))
            .map(|channel| channel.name.clone())
            .collect()
    }

    /// Every open channel, for health endpoints (serialize it, or [`to_json`](Snapshot::to_json)).
    pub fn snapshot(&self) -> Snapshot {
        let open = lock(&self.open);
        let mut channels: Vec<ChannelSnapshot> = open
            .iter()
            .filter(|(_, opened)| !opened.handle.is_gone())
            .map(|(name, opened)| {
                let stats = opened.handle.stats();
                let info = opened.handle.info();
                ChannelSnapshot {
                    name: name.clone(),
                    backend: info.backend(),
                    capacity: info.capacity(),
                    overflow: opened.handle.policy().name(),
                    health: self
                        .health
                        .of(name, info.id(), opened.handle.is_saturated()),
                    stats,
                }
            })
            .collect();
        channels.sort_by(|a, b| a.name.cmp(&b.name));
        Snapshot { channels }
    }

    /// Shuts down: no more opens or senders; every channel is closed (later sends fail with
    /// `Closed`, blocked ones wake; on tokio, at the receiver's next receive);
    /// receivers get until `deadline` to drain (`Duration::MAX`: as long as it takes); then a
    /// final tick.
    ///
    /// Blocks the calling thread while it waits for the drain. Inside a tokio runtime it waits
    /// in `block_in_place` on a multi-thread runtime; where blocking would deadlock (a
    /// current-thread runtime: the receivers could never run), it closes, does not wait, and
    /// says so in [`ShutdownReport::would_deadlock`] — use
    /// [`shutdown_async`](Self::shutdown_async) there.
    pub fn shutdown(&self, deadline: Duration) -> ShutdownReport {
        let until = Instant::now().checked_add(deadline);
        let (mut report, handles) = self.close_all();
        let waiting = || still_draining(until, &handles);
        if waiting() {
            let waited = crate::runtime::block((), |()| {
                while waiting() {
                    std::thread::sleep(DRAIN_POLL);
                }
            });
            report.would_deadlock = waited.is_err();
        }
        self.finish_shutdown(report, &handles)
    }

    /// [`shutdown`](Self::shutdown) for async code, on any executor: the same steps, awaiting
    /// the drain instead of blocking the thread, so receivers on the same (current-thread)
    /// runtime go on draining meanwhile.
    pub async fn shutdown_async(&self, deadline: Duration) -> ShutdownReport {
        let until = Instant::now().checked_add(deadline);
        let (report, handles) = self.close_all();
        while still_draining(until, &handles) {
            let now = Instant::now();
            let next = now.checked_add(DRAIN_POLL).unwrap_or(now);
            crate::timer::sleep_until(until.map_or(next, |until| until.min(next))).await;
        }
        self.finish_shutdown(report, &handles)
    }

    /// Stops handing out channels and closes every open one: the report's `closed`, and the
    /// handles to watch drain.
    fn close_all(&self) -> (ShutdownReport, Vec<(String, ChannelHandle)>) {
        self.shut_down.store(true, Relaxed);
        let mut report = ShutdownReport::default();
        let open = lock(&self.open);
        for (name, opened) in open.iter() {
            if !opened.handle.is_gone() && (opened.close)() {
                report.closed.push(name.clone());
            }
        }
        let handles = open
            .iter()
            .map(|(name, opened)| (name.clone(), opened.handle.clone()))
            .collect();
        (report, handles)
    }

    /// After the drain wait: what is left, and the final tick.
    fn finish_shutdown(
        &self,
        mut report: ShutdownReport,
        handles: &[(String, ChannelHandle)],
    ) -> ShutdownReport {
        report.undrained = handles
            .iter()
            .filter(|(_, h)| !drained(h))
            .map(|(name, h)| (name.clone(), h.stats().depth))
            .collect();
        report.closed.sort();
        report.undrained.sort();
        self.watcher.tick_now();
        report
    }

    fn settings(&self, name: &str) -> Result<&crate::config::ChannelSettings, RegistryError> {
        self.config
            .channel(name)
            .ok_or_else(|| RegistryError::UnknownChannel {
                name: name.into(),
                near: self.config.near_names(name),
            })
    }
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registry")
            .field("environment", &self.config.environment)
            .field("open", &lock(&self.open).len())
            .finish_non_exhaustive()
    }
}

/// How often a shutdown looks whether the receivers have drained.
const DRAIN_POLL: Duration = Duration::from_millis(1);

/// Whether a closed channel has nothing left for its receiver (or is gone).
fn drained(handle: &ChannelHandle) -> bool {
    handle.is_gone() || handle.stats().depth == 0
}

/// Whether a shutdown still waits: its deadline (`None`: none) has not passed and some
/// channel has messages left.
fn still_draining(until: Option<Instant>, handles: &[(String, ChannelHandle)]) -> bool {
    until.is_none_or(|until| Instant::now() < until)
        && !handles.iter().all(|(_, handle)| drained(handle))
}

/// What [`Registry::shutdown`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct ShutdownReport {
    /// Channels it closed (every one still open).
    pub closed: Vec<String>,
    /// Channels still holding messages at the deadline, with their depth.
    pub undrained: Vec<(String, usize)>,
    /// [`Registry::shutdown`] did not wait for a drain that was still to come: blocking the
    /// calling thread would have deadlocked it (a current-thread tokio runtime; it is not set
    /// when everything had drained already or the deadline was zero). `undrained` is what was
    /// left at once; [`Registry::shutdown_async`] waits there.
    pub would_deadlock: bool,
}

/// Every open channel, as [`Registry::snapshot`] reads it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct Snapshot {
    /// By name.
    pub channels: Vec<ChannelSnapshot>,
}

impl Snapshot {
    /// As JSON: `{"channels": [{"name", "backend", "capacity", "overflow", "health", "stats"}]}`.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }
}

/// One channel in a [`Snapshot`].
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct ChannelSnapshot {
    /// Its full name.
    pub name: String,
    /// Its backend's config name.
    pub backend: &'static str,
    /// Its capacity.
    pub capacity: usize,
    /// Its overflow policy's name.
    pub overflow: &'static str,
    /// See [`HealthState`].
    pub health: HealthState,
    /// Its counters now.
    pub stats: ChannelStats,
}

/// A channel's health for a health endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HealthState {
    /// The last tick saw it full, or its full events grew since the tick before.
    Critical,
    /// In the saturated state (entered, not yet left).
    Degraded,
    /// Neither.
    Healthy,
}

/// The last two ticks' view of every channel, for health (a publisher on the registry's
/// watcher).
#[derive(Default)]
struct Health(Mutex<HashMap<String, LastTicks>>);

#[derive(Default, Clone, Copy)]
struct LastTicks {
    /// The channel these ticks saw ([`ChannelInfo::id`](crate::ChannelInfo::id)): a name
    /// opened again is another channel, and inherits nothing.
    channel: u64,
    full: bool,
    full_events: u64,
    full_events_grew: bool,
}

impl Health {
    fn of(&self, name: &str, channel: u64, saturated: bool) -> HealthState {
        let last = lock(&self.0)
            .get(name)
            .filter(|last| last.channel == channel)
            .copied()
            .unwrap_or_default();
        if last.full || last.full_events_grew {
            HealthState::Critical
        } else if saturated {
            HealthState::Degraded
        } else {
            HealthState::Healthy
        }
    }
}

impl Publish for Health {
    fn publish(&self, reports: &[ChannelReport]) {
        let mut ticks = lock(&self.0);
        for report in reports {
            let name = report.info.name();
            let channel = report.info.id();
            if report.gone {
                if ticks.get(name).is_some_and(|last| last.channel == channel) {
                    ticks.remove(name);
                }
                continue;
            }
            let stats = &report.stats;
            // A successor under the same name starts from zero full events.
            let before = ticks
                .get(name)
                .filter(|last| last.channel == channel)
                .map_or(0, |last| last.full_events);
            ticks.insert(
                name.to_owned(),
                LastTicks {
                    channel,
                    // Saturation counts slots tokio handed to waiting sends; depth may not.
                    full: stats.depth >= stats.capacity || stats.saturation >= 1.0,
                    full_events: stats.full_events,
                    full_events_grew: stats.full_events > before,
                },
            );
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
