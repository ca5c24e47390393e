//! The state a channel's endpoints share: identity, policy, counters and who is still there.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize};
use std::time::{Duration, Instant};

use crate::capacity::Capacity;
use crate::monitor::Monitor;
use crate::policy::{OverflowPolicy, WaitStrategy};

/// One per channel, behind an `Arc` held by every endpoint.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) name: Arc<str>,
    pub(crate) backend: &'static str,
    pub(crate) capacity: Capacity,
    pub(crate) policy: OverflowPolicy,
    /// How blocking calls wait.
    pub(crate) wait_strategy: WaitStrategy,
    pub(crate) monitor: Monitor,
    /// Live `Sender`s; the last one to go counts messages that raced the receiver's drain.
    pub(crate) senders: AtomicUsize,
    /// Set (SeqCst) by the receiver's drop before its final drain.
    pub(crate) receiver_gone: AtomicBool,
}

/// `now + wait`, or `None` (wait forever) if that is beyond what `Instant` can hold.
pub(crate) fn deadline_after(wait: Duration) -> Option<Instant> {
    Instant::now().checked_add(wait)
}
