//! Which channel's series a name's metrics carry, across every [`MetricsPublisher`] of the
//! process.
//!
//! The `metrics` recorder is global: two live channels of one name (in two registries, say,
//! one rebuilt on a config reload while the old one still runs) would otherwise overwrite each
//! other's gauges on alternate ticks, and `absolute` would keep whichever counter is larger —
//! series that are wrong without looking wrong. So each name belongs to one live channel at a
//! time: the first published, until it goes (its final report) or its publisher is dropped or
//! switched off. Another channel of that name is refused: not written, and listed by
//! [`MetricsPublisher::refused`].
//!
//! Limits: a name is freed only by its owner's final report:
//! if that report never reaches this publisher (the watcher dropped while the publisher lives
//! on, or a publisher before it in the watcher's list panicked), the name stays taken until
//! this publisher is dropped or switched off. When a name passes to a channel of another
//! publisher, its counters start from that channel's own totals, and `absolute` (which keeps
//! the larger value) holds them at the old owner's last values until they pass them.
//!
//! [`MetricsPublisher`]: super::MetricsPublisher
//! [`MetricsPublisher::refused`]: super::MetricsPublisher::refused

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{LazyLock, Mutex, MutexGuard, PoisonError};

use crate::ChannelReport;

/// A name's owner: the channel (its `ChannelInfo::id`) and the publisher writing it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Owner {
    channel: u64,
    publisher: u64,
}

static OWNERS: LazyLock<Mutex<HashMap<String, Owner>>> = LazyLock::new(Mutex::default);

static NEXT_PUBLISHER: AtomicU64 = AtomicU64::new(1);

/// A number for a new publisher, unique in the process.
pub(super) fn new_publisher_id() -> u64 {
    NEXT_PUBLISHER.fetch_add(1, Relaxed)
}

/// The table, locked for one tick's reports.
pub(super) struct Owners(MutexGuard<'static, HashMap<String, Owner>>);

impl Owners {
    pub(super) fn lock() -> Self {
        // Only map operations run under the lock, so a poisoned one still holds a sound map.
        Owners(OWNERS.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// Whether `publisher` may write `report`'s series: the name is free, or already this
    /// channel's, or its owner is one of the departed channels whose final values the report
    /// carries (it went, and this channel took its name in the same watcher). A channel's
    /// final report frees the name.
    pub(super) fn claim(&mut self, publisher: u64, report: &ChannelReport) -> bool {
        let mine = Owner {
            channel: report.info.id(),
            publisher,
        };
        let owns = match self.0.entry(report.info.name().to_owned()) {
            Entry::Vacant(free) => {
                free.insert(mine);
                true
            }
            Entry::Occupied(mut taken) => {
                let owner = *taken.get();
                let succeeds = report.departed_ids.contains(&owner.channel);
                if owner == mine || succeeds {
                    taken.insert(mine);
                    true
                } else {
                    false
                }
            }
        };
        if owns && report.gone {
            self.0.remove(report.info.name());
        }
        owns
    }

    /// Frees every name `publisher` owns (it was dropped or switched off).
    pub(super) fn release(&mut self, publisher: u64) {
        self.0.retain(|_, owner| owner.publisher != publisher);
    }
}
