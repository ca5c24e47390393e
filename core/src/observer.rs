//! Monitoring hooks: the [`Observer`]s a channel calls on its slow paths, and the
//! [`SaturationEvent`]s they hear of.
//!
//! Observers see events, not messages: there is no per-message method, so a channel with no
//! observer pays nothing per message, and one with observers pays only when a send finds the
//! channel full, gives up, is refused, or the saturation state changes. Counts belong to
//! [`ChannelStats`](crate::ChannelStats), which the [`Watcher`](crate::Watcher) publishes:
//! an observer need not count.

use std::fmt;
use std::sync::Arc;

/// What an [`Observer`] is told about the channel an event happened on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelInfo {
    pub(crate) name: Arc<str>,
    pub(crate) backend: &'static str,
    pub(crate) capacity: usize,
    pub(crate) id: u64,
}

impl ChannelInfo {
    /// The channel's full name, e.g. `worker.step_processor.execution_request`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The name's first segment (`worker`): the `subsystem` label.
    pub fn subsystem(&self) -> &str {
        subsystem(&self.name)
    }

    /// The backend's config name.
    pub fn backend(&self) -> &'static str {
        self.backend
    }

    /// The channel's capacity.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// A number no other channel of this process has: a channel opened again under the same
    /// name (once the first has gone) has another, so per-channel state kept by name can tell
    /// the two apart.
    pub fn id(&self) -> u64 {
        self.id
    }
}

/// The next [`ChannelInfo::id`].
pub(crate) fn next_channel_id() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

/// The subsystem of a channel name: its first `.`-separated segment (the whole name if it has
/// no dot).
///
/// ```
/// assert_eq!(boundflow_core::subsystem("worker.step_processor.execution_request"), "worker");
/// assert_eq!(boundflow_core::subsystem("events"), "events");
/// ```
pub fn subsystem(name: &str) -> &str {
    name.split('.').next().unwrap_or(name)
}

/// Hooks a channel calls on its slow paths (see the module docs). Every method defaults to
/// doing nothing; implement the ones you need. Set them with
/// [`ChannelBuilder::observer`](crate::ChannelBuilder::observer).
///
/// Methods run on the thread that hit the event — a sender's, or the watcher's for
/// saturation — and should be quick: a blocked sender waits for them. The watcher calls
/// `on_saturation` while it holds its list of channels, so an observer must not call back into
/// that watcher (`watch`, `tick_now`; nor a registry's `open`, which watches). Reading a
/// registry from an observer (its snapshot, a sender) is fine.
///
/// ```
/// use std::sync::atomic::{AtomicU64, Ordering};
/// use boundflow_core::{ChannelInfo, Observer};
///
/// #[derive(Default)]
/// struct CountFull(AtomicU64);
///
/// impl Observer for CountFull {
///     fn on_full(&self, _channel: &ChannelInfo) {
///         self.0.fetch_add(1, Ordering::Relaxed);
///     }
/// }
/// ```
pub trait Observer: Send + Sync + 'static {
    /// A send found the channel full (whatever its policy then did).
    fn on_full(&self, _channel: &ChannelInfo) {}

    /// `drop_newest` refused a message (it was handed back as `Full`).
    fn on_dropped_newest(&self, _channel: &ChannelInfo) {}

    /// `drop_oldest` (or `force_send`) evicted `count` queued messages.
    fn on_evicted(&self, _channel: &ChannelInfo, _count: usize) {}

    /// A send gave up at its deadline.
    fn on_timeout(&self, _channel: &ChannelInfo) {}

    /// A `retry` send gave up and handed its message back.
    fn on_retry_exhausted(&self, _channel: &ChannelInfo) {}

    /// A send failed because the channel was closed.
    fn on_closed_error(&self, _channel: &ChannelInfo) {}

    /// A blocking call (send or receive) was refused with `WouldDeadlock`.
    fn on_would_deadlock(&self, _channel: &ChannelInfo) {}

    /// The channel's saturation state changed, or the watcher reminds that it has not.
    fn on_saturation(&self, _channel: &ChannelInfo, _event: &SaturationEvent) {}
}

/// A change of a channel's saturation state, or a reminder that it persists.
///
/// Entered and left alternate, numbered by `sequence` (1 for the first entry, 2 for the
/// following exit, ...); a reminder carries the number of the entry it recalls. Events are
/// raised by different threads (a full send enters, the watcher's tick reminds and leaves), so
/// an observer may hear two of them out of order: `sequence` says which came first.
#[derive(Debug, Clone, Copy, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct SaturationEvent {
    /// What happened.
    pub kind: SaturationKind,
    /// The transition's number (see above).
    pub sequence: u64,
    /// The depth when it happened (the capacity, for a send that found the channel full).
    pub depth: usize,
    /// The channel's capacity.
    pub capacity: usize,
    /// `depth / capacity`.
    pub saturation: f64,
}

/// The kinds of [`SaturationEvent`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
#[non_exhaustive]
pub enum SaturationKind {
    /// Saturation reached the warn threshold (or a send found the channel full).
    Entered,
    /// Still at or above the recover threshold: the watcher's reminder, at most once per
    /// reminder interval.
    Reminder {
        /// Ticks since the entry or the previous reminder that found the channel still
        /// saturated and said nothing.
        suppressed: u64,
    },
    /// Saturation fell below the recover threshold (or the channel went away).
    Left,
}

impl fmt::Display for SaturationKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SaturationKind::Entered => f.write_str("entered"),
            SaturationKind::Reminder { .. } => f.write_str("reminder"),
            SaturationKind::Left => f.write_str("left"),
        }
    }
}

/// A channel's observers, called in the order they were added.
#[derive(Clone, Default)]
pub(crate) struct Observers(Vec<Arc<dyn Observer>>);

impl Observers {
    pub(crate) fn push(&mut self, observer: Arc<dyn Observer>) {
        self.0.push(observer);
    }

    #[inline]
    pub(crate) fn each(&self, call: impl Fn(&dyn Observer)) {
        for observer in &self.0 {
            call(observer.as_ref());
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }
}

impl fmt::Debug for Observers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} observer(s)", self.0.len())
    }
}
