//! [`ChannelHandle`]: a channel's identity and counters, without its endpoints.

use std::fmt;
use std::sync::Arc;

use crate::monitor::ChannelStats;
use crate::observer::ChannelInfo;
use crate::policy::OverflowPolicy;
use crate::shared::Shared;

/// A channel's identity and counters, from [`Sender::handle`](crate::Sender::handle) or
/// [`Receiver::handle`](crate::Receiver::handle). It keeps no endpoint alive: the channel
/// closes when its senders go, however many handles exist, and a handle outliving the channel
/// still reads its final counters. This is what a [`Watcher`](crate::Watcher) holds.
///
/// ```
/// # fn doc<B: boundflow_core::BoundedChannel>(backend: B) -> Result<(), boundflow_core::BuildError> {
/// let (tx, rx) = boundflow_core::bounded::<u64, _>(backend, "jobs.incoming", 8)?;
/// let handle = tx.handle();
/// tx.try_send(1).ok();
/// drop((tx, rx));
/// assert!(handle.is_gone());
/// assert_eq!(handle.stats().sent, 1, "the final counts outlive the channel");
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct ChannelHandle {
    pub(crate) shared: Arc<Shared>,
}

impl ChannelHandle {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        ChannelHandle { shared }
    }

    /// The channel's name, backend and capacity.
    pub fn info(&self) -> &ChannelInfo {
        &self.shared.info
    }

    /// The channel's full name.
    pub fn name(&self) -> &str {
        self.shared.info.name()
    }

    /// The channel's overflow policy.
    pub fn policy(&self) -> OverflowPolicy {
        self.shared.policy
    }

    /// A snapshot of the counters and the depth (read through the backend without an
    /// endpoint; 0 once the channel is gone).
    pub fn stats(&self) -> ChannelStats {
        self.shared.stats()
    }

    /// Whether the channel is in the saturated state (entered, not yet left).
    pub fn is_saturated(&self) -> bool {
        self.shared.saturation.current().0
    }

    /// Whether every endpoint has gone: the counters are final.
    pub fn is_gone(&self) -> bool {
        self.shared.is_gone()
    }

    /// Whether both handles are of the same channel.
    pub fn same_channel(&self, other: &ChannelHandle) -> bool {
        Arc::ptr_eq(&self.shared, &other.shared)
    }
}

impl fmt::Debug for ChannelHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChannelHandle")
            .field("name", &self.shared.info.name)
            .field("backend", &self.shared.info.backend)
            .field("gone", &self.is_gone())
            .finish_non_exhaustive()
    }
}
