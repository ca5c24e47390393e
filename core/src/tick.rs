//! The tick: one [`Watcher`] samples every channel it watches each interval, drives their
//! saturation state and hands their snapshots to its publishers.
//!
//! Nothing here runs per message. A send only enters saturation when it finds the channel
//! full; everything after that — reminders, leaving, the high-water mark since the previous
//! tick, publishing — happens on the tick, so a channel stuck full with every sender blocked is
//! still reported, and a channel that nobody sends to still has its depth sampled.

use std::fmt;
use std::io;
use std::mem;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::Ordering::{AcqRel, Acquire, Relaxed};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::handle::ChannelHandle;
use crate::monitor::ChannelStats;
use crate::observer::{ChannelInfo, SaturationKind};
use crate::saturation::{SaturationThresholds, ThresholdError};
use crate::timer;

/// Where the watcher reads the time for its reminders: [`SystemClock`], or a [`FakeClock`] in
/// tests.
pub trait Clock: Send + Sync + 'static {
    /// The time now.
    fn now(&self) -> Instant;
}

/// The real clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }
}

/// A clock that moves only when told to: with [`Watcher::tick_now`], tests drive reminders and
/// recovery without sleeping. Clones share the same time.
///
/// ```
/// use std::time::Duration;
/// use boundflow_core::{Clock, FakeClock};
///
/// let clock = FakeClock::new();
/// let start = clock.now();
/// clock.advance(Duration::from_secs(60));
/// assert_eq!(clock.now() - start, Duration::from_secs(60));
/// ```
#[derive(Debug, Clone)]
pub struct FakeClock(Arc<Mutex<Instant>>);

impl FakeClock {
    /// A clock standing at the real time now.
    pub fn new() -> Self {
        FakeClock(Arc::new(Mutex::new(Instant::now())))
    }

    /// Moves the clock forward.
    pub fn advance(&self, by: Duration) {
        let mut now = lock(&self.0);
        *now = now.checked_add(by).unwrap_or(*now);
    }
}

impl Default for FakeClock {
    fn default() -> Self {
        FakeClock::new()
    }
}

impl Clock for FakeClock {
    fn now(&self) -> Instant {
        *lock(&self.0)
    }
}

/// Receives every tick's reports (the `metrics` publisher is one). Called on the ticking
/// thread, after the tick has sampled every channel; it must not call back into the watcher's
/// [`tick_now`](Watcher::tick_now) or [`add_publisher`](Watcher::add_publisher).
pub trait Publish: Send + Sync + 'static {
    /// One tick's reports: one per channel name, in the order the channels joined.
    fn publish(&self, reports: &[ChannelReport]);
}

/// One channel's part of a tick.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ChannelReport {
    /// The channel's name, backend and capacity.
    pub info: ChannelInfo,
    /// The snapshot taken by this tick; the final values if `gone`.
    pub stats: ChannelStats,
    /// The channel has gone: this is its last report, and the watcher forgets it.
    pub gone: bool,
    /// Final values of earlier channels of the same name that went since the previous tick,
    /// oldest first (their names were free as soon as they went, so a successor may already
    /// report under it).
    pub departed: Vec<ChannelStats>,
    /// The [`ChannelInfo::id`]s of the channels in `departed`, in the same order.
    pub departed_ids: Vec<u64>,
}

/// Why a channel cannot join a watcher.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum WatchError {
    /// The channel is already watched (by this watcher or another): a channel joins at most
    /// one.
    AlreadyWatched {
        /// The channel's name.
        channel: String,
    },
    /// A live channel of this watcher already has the name (a name is free again once its
    /// channel has gone).
    NameTaken {
        /// The name.
        channel: String,
    },
}

impl fmt::Display for WatchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WatchError::AlreadyWatched { channel } => write!(
                f,
                "channel `{channel}` is already watched: a channel joins at most one watcher"
            ),
            WatchError::NameTaken { channel } => write!(
                f,
                "a live channel named `{channel}` is already watched: give each channel its own name"
            ),
        }
    }
}

impl std::error::Error for WatchError {}

/// A [`Watcher`] that cannot be built.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub enum WatcherError {
    /// The interval is zero: the tick would spin.
    ZeroInterval,
    /// The saturation thresholds cannot work.
    Thresholds(ThresholdError),
}

impl fmt::Display for WatcherError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WatcherError::ZeroInterval => f.write_str(
                "the watcher's interval is zero: set saturation_check_interval_seconds to 1 or more",
            ),
            WatcherError::Thresholds(err) => err.fmt(f),
        }
    }
}

impl std::error::Error for WatcherError {}

impl From<ThresholdError> for WatcherError {
    fn from(err: ThresholdError) -> Self {
        WatcherError::Thresholds(err)
    }
}

/// Builds a [`Watcher`].
#[must_use = "a builder does nothing until `build` is called"]
pub struct WatcherBuilder {
    interval: Duration,
    thresholds: SaturationThresholds,
    clock: Arc<dyn Clock>,
    publishers: Vec<Arc<dyn Publish>>,
}

impl WatcherBuilder {
    /// How often the watcher ticks (default 10 s, DESIGN's
    /// `saturation_check_interval_seconds`).
    pub fn interval(mut self, interval: Duration) -> Self {
        self.interval = interval;
        self
    }

    /// The saturation thresholds (default warn 0.8, recover 0.6, reminders every 60 s).
    pub fn thresholds(mut self, thresholds: SaturationThresholds) -> Self {
        self.thresholds = thresholds;
        self
    }

    /// The clock reminders are timed by (default [`SystemClock`]).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Adds a publisher.
    pub fn publisher(mut self, publisher: Arc<dyn Publish>) -> Self {
        self.publishers.push(publisher);
        self
    }

    /// Checks the settings and makes the watcher.
    ///
    /// # Errors
    /// [`WatcherError::ZeroInterval`], or [`WatcherError::Thresholds`].
    pub fn build(self) -> Result<Watcher, WatcherError> {
        if self.interval.is_zero() {
            return Err(WatcherError::ZeroInterval);
        }
        self.thresholds.validate()?;
        Ok(Watcher {
            inner: Arc::new(Inner {
                interval: self.interval,
                thresholds: self.thresholds,
                clock: self.clock,
                entries: Mutex::new(Vec::new()),
                publishers: Mutex::new(self.publishers),
            }),
        })
    }
}

/// The tick (see the module docs): watches channels through their [`ChannelHandle`]s, which
/// keep no endpoint alive, so a watched channel still closes when its senders go. A channel
/// that has gone is reported once more with its final values, then forgotten.
///
/// It ticks on its own thread ([`spawn_thread`](Self::spawn_thread)), as a future on any
/// executor ([`run`](Self::run)), or when told to ([`tick_now`](Self::tick_now): tests, and a
/// last tick at shutdown). Clones share the same watcher.
///
/// ```
/// # fn doc<B: boundflow_core::BoundedChannel>(backend: B) -> Result<(), Box<dyn std::error::Error>> {
/// use std::time::Duration;
/// use boundflow_core::{Watcher, bounded};
///
/// let watcher = Watcher::new(Duration::from_secs(10))?;
/// let (tx, mut rx) = bounded::<u64, _>(backend, "jobs.incoming", 4)?;
/// watcher.watch(&tx.handle())?;
/// tx.try_send(7).ok();
/// let reports = watcher.tick_now();
/// assert_eq!(reports[0].stats.depth, 1);
/// # drop(rx); Ok(()) }
/// ```
#[derive(Clone)]
pub struct Watcher {
    inner: Arc<Inner>,
}

struct Inner {
    interval: Duration,
    thresholds: SaturationThresholds,
    clock: Arc<dyn Clock>,
    /// In the order the channels joined.
    entries: Mutex<Vec<Entry>>,
    /// Taken before `entries` is let go, so reports are published in tick order.
    publishers: Mutex<Vec<Arc<dyn Publish>>>,
}

struct Entry {
    handle: ChannelHandle,
    reminder: Reminder,
    /// This tick found it gone and made its final report.
    reported_gone: bool,
}

/// The tick's own part of a saturated channel's state: when it last said something about the
/// entry numbered `sequence`, and how many ticks it has kept quiet since.
#[derive(Debug, Default, Clone, Copy)]
struct Reminder {
    sequence: u64,
    since: Option<Instant>,
    suppressed: u64,
}

impl Watcher {
    /// A watcher ticking every `interval`, with the default thresholds and the system clock.
    ///
    /// # Errors
    /// [`WatcherError::ZeroInterval`].
    pub fn new(interval: Duration) -> Result<Watcher, WatcherError> {
        Watcher::builder().interval(interval).build()
    }

    /// A builder with the defaults (10 s, warn 0.8, recover 0.6, reminders every 60 s).
    pub fn builder() -> WatcherBuilder {
        WatcherBuilder {
            interval: Duration::from_secs(10),
            thresholds: SaturationThresholds::default(),
            clock: Arc::new(SystemClock),
            publishers: Vec::new(),
        }
    }

    /// How often it ticks.
    pub fn interval(&self) -> Duration {
        self.inner.interval
    }

    /// Its saturation thresholds.
    pub fn thresholds(&self) -> SaturationThresholds {
        self.inner.thresholds
    }

    /// Starts watching a channel.
    ///
    /// # Errors
    /// [`WatchError::AlreadyWatched`] if it is watched already; [`WatchError::NameTaken`] if a
    /// live channel of this watcher has its name.
    pub fn watch(&self, channel: &ChannelHandle) -> Result<(), WatchError> {
        let mut entries = lock(&self.inner.entries);
        let watched = &channel.shared.watched;
        let already = || WatchError::AlreadyWatched {
            channel: channel.name().to_owned(),
        };
        if watched.load(Acquire) {
            return Err(already());
        }
        let taken = entries
            .iter()
            .any(|entry| entry.handle.name() == channel.name() && !entry.handle.is_gone());
        if taken {
            return Err(WatchError::NameTaken {
                channel: channel.name().to_owned(),
            });
        }
        if watched
            .compare_exchange(false, true, AcqRel, Acquire)
            .is_err()
        {
            return Err(already());
        }
        entries.push(Entry {
            handle: channel.clone(),
            reminder: Reminder::default(),
            reported_gone: false,
        });
        Ok(())
    }

    /// The channels it holds (live ones, and gone ones not yet reported), in joining order.
    pub fn channels(&self) -> Vec<ChannelHandle> {
        lock(&self.inner.entries)
            .iter()
            .map(|entry| entry.handle.clone())
            .collect()
    }

    /// Adds a publisher; it hears from the next tick on.
    pub fn add_publisher(&self, publisher: Arc<dyn Publish>) {
        lock(&self.inner.publishers).push(publisher);
    }

    /// Ticks now: samples every channel, drives saturation, publishes, forgets channels that
    /// have gone, and returns what it published.
    pub fn tick_now(&self) -> Vec<ChannelReport> {
        self.inner.tick()
    }

    /// Ticks every interval on a thread named `boundflow-tick` until the returned guard is
    /// dropped or [stopped](TickThread::stop). A panicking publisher or observer is caught:
    /// the thread goes on with the next tick.
    ///
    /// # Errors
    /// The thread could not be spawned.
    pub fn spawn_thread(&self) -> io::Result<TickThread> {
        let stop = Arc::new(Stop::default());
        let inner = Arc::clone(&self.inner);
        let signal = Arc::clone(&stop);
        let handle = thread::Builder::new()
            .name("boundflow-tick".to_owned())
            .spawn(move || {
                // `None`: an interval too long for the clock to reach, so no tick comes.
                let mut next = Instant::now().checked_add(inner.interval);
                while signal.wait_until(next) {
                    let _ = catch_unwind(AssertUnwindSafe(|| inner.tick()));
                    let now = Instant::now();
                    next = next
                        .and_then(|next| next.checked_add(inner.interval))
                        // Ticks were missed (a slow publisher, a suspended machine): no burst.
                        .filter(|next| *next > now)
                        .or_else(|| now.checked_add(inner.interval));
                }
            })?;
        Ok(TickThread {
            stop,
            handle: Some(handle),
        })
    }

    /// Ticks every interval on whatever executor polls it, using [`crate::timer`]; it never
    /// finishes: drop it to stop (between ticks, so nothing is left half done).
    pub async fn run(&self) {
        loop {
            match Instant::now().checked_add(self.inner.interval) {
                Some(next) => timer::sleep_until(next).await,
                // An interval too long for the clock to reach: no tick comes.
                None => std::future::pending().await,
            }
            self.inner.tick();
        }
    }
}

impl fmt::Debug for Watcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Watcher")
            .field("interval", &self.inner.interval)
            .field("thresholds", &self.inner.thresholds)
            .field("channels", &lock(&self.inner.entries).len())
            .finish_non_exhaustive()
    }
}

impl Inner {
    fn tick(&self) -> Vec<ChannelReport> {
        let now = self.clock.now();
        let mut entries = lock(&self.entries);
        let mut reports: Vec<ChannelReport> = Vec::with_capacity(entries.len());
        for entry in entries.iter_mut() {
            // Read before the snapshot: a channel seen gone here has final counters.
            let gone = entry.handle.is_gone();
            let stats = entry.handle.shared.tick_stats();
            self.drive_saturation(entry, &stats, gone, now);
            entry.reported_gone = gone;
            let report = ChannelReport {
                info: entry.handle.info().clone(),
                stats,
                gone,
                departed: Vec::new(),
                departed_ids: Vec::new(),
            };
            merge_by_name(&mut reports, report);
        }
        entries.retain(|entry| {
            if entry.reported_gone {
                entry.handle.shared.watched.store(false, Relaxed);
            }
            !entry.reported_gone
        });
        let publishers = lock(&self.publishers);
        drop(entries);
        for publisher in publishers.iter() {
            publisher.publish(&reports);
        }
        reports
    }

    /// One tick of a channel's saturation machine: enter at the warn threshold, remind at
    /// most every reminder interval while at or above recover, leave below it (or when gone).
    fn drive_saturation(&self, entry: &mut Entry, stats: &ChannelStats, gone: bool, now: Instant) {
        let shared = &entry.handle.shared;
        let thresholds = &self.thresholds;
        let (saturated, sequence) = shared.saturation.current();
        if !saturated {
            if !gone && stats.saturation >= thresholds.warn {
                if let Some(sequence) = shared.saturation.enter() {
                    entry.reminder = Reminder {
                        sequence,
                        since: Some(now),
                        suppressed: 0,
                    };
                    shared.saturation_event(SaturationKind::Entered, sequence, stats.depth);
                }
            }
            return;
        }
        if gone || stats.saturation < thresholds.recover {
            // Only the tick leaves, and ticks take turns: this cannot lose a race.
            if let Some(sequence) = shared.saturation.leave() {
                shared.saturation_event(SaturationKind::Left, sequence, stats.depth);
            }
            return;
        }
        let reminder = &mut entry.reminder;
        if reminder.sequence != sequence {
            // Entered by a full send since the previous tick: remind counting from now.
            *reminder = Reminder {
                sequence,
                since: Some(now),
                suppressed: 0,
            };
        }
        let since = reminder.since.unwrap_or(now);
        if now.saturating_duration_since(since) >= thresholds.reminder_interval {
            let suppressed = mem::take(&mut reminder.suppressed);
            reminder.since = Some(now);
            shared.saturation_event(
                SaturationKind::Reminder { suppressed },
                sequence,
                stats.depth,
            );
        } else {
            reminder.suppressed += 1;
        }
    }
}

/// Adds a report, one per name: channels of one name joined one after another, each only once
/// the one before had gone, so the later report stands and the earlier's final values (and
/// those merged into it) become its `departed`.
fn merge_by_name(reports: &mut Vec<ChannelReport>, report: ChannelReport) {
    match reports
        .iter()
        .position(|earlier| earlier.info.name == report.info.name)
    {
        None => reports.push(report),
        Some(index) => {
            let earlier = mem::replace(&mut reports[index], report);
            let later = &mut reports[index];
            let mut departed = earlier.departed;
            departed.push(earlier.stats);
            departed.append(&mut later.departed);
            later.departed = departed;
            let mut departed_ids = earlier.departed_ids;
            departed_ids.push(earlier.info.id);
            departed_ids.append(&mut later.departed_ids);
            later.departed_ids = departed_ids;
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        // The channels may join another watcher now.
        for entry in lock(&self.entries).iter() {
            entry.handle.shared.watched.store(false, Relaxed);
        }
    }
}

/// The watcher's thread, from [`Watcher::spawn_thread`]: stops (and is joined) when dropped.
#[derive(Debug)]
pub struct TickThread {
    stop: Arc<Stop>,
    handle: Option<JoinHandle<()>>,
}

impl TickThread {
    /// Stops the thread and waits for it (a tick in progress finishes first).
    pub fn stop(mut self) {
        self.stop_and_join();
    }

    fn stop_and_join(&mut self) {
        *lock(&self.stop.stopped) = true;
        self.stop.changed.notify_all();
        if let Some(handle) = self.handle.take() {
            let _ = handle.join();
        }
    }
}

impl Drop for TickThread {
    fn drop(&mut self) {
        self.stop_and_join();
    }
}

#[derive(Debug, Default)]
struct Stop {
    stopped: Mutex<bool>,
    changed: Condvar,
}

impl Stop {
    /// Waits until `deadline` (`None`: until told to stop); `false` if told to stop first.
    fn wait_until(&self, deadline: Option<Instant>) -> bool {
        let mut stopped = lock(&self.stopped);
        loop {
            if *stopped {
                return false;
            }
            stopped = match deadline {
                None => self
                    .changed
                    .wait(stopped)
                    .unwrap_or_else(PoisonError::into_inner),
                Some(deadline) => {
                    let now = Instant::now();
                    if now >= deadline {
                        return true;
                    }
                    self.changed
                        .wait_timeout(stopped, deadline - now)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0
                }
            };
        }
    }
}

/// Locks, going on through poisoning: a panicking publisher leaves nothing half-written here.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(all(test, not(boundflow_loom)))]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    /// An interval longer than the clock can count (config accepts up to `i64::MAX` seconds)
    /// means no tick, not a tick thread that dies on its first line.
    #[test]
    fn an_interval_past_the_clock_ticks_never_and_stops_cleanly() {
        let watcher = Watcher::new(Duration::MAX).unwrap();
        let mut thread = watcher.spawn_thread().unwrap();
        *lock(&thread.stop.stopped) = true;
        thread.stop.changed.notify_all();
        let handle = thread.handle.take().unwrap();
        assert!(handle.join().is_ok(), "the tick thread panicked");
    }
}
