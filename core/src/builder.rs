//! Making a monitored channel: name, capacity, policy, backend.

use std::sync::Arc;

use crate::capacity::{Capacity, DEFAULT_MAX_CAPACITY};
use crate::channel::BoundedChannel;
use crate::channel::RawSender;
use crate::error::BuildError;
use crate::observer::{ChannelInfo, Observer, Observers, next_channel_id};
use crate::policy::{OverflowPolicy, WaitStrategy};
use crate::receiver::Receiver;
use crate::sender::Sender;
use crate::shared::Shared;

/// A channel's two ends, as [`ChannelBuilder::build`] returns them.
pub type ChannelPair<T, B> = (Sender<T, B>, Receiver<T, B>);

/// Builds a named, bounded, monitored channel on a backend.
///
/// ```
/// # #[derive(Clone)] struct Demo;
/// # fn doc<B: boundflow_core::BoundedChannel>(backend: B) -> Result<(), boundflow_core::BuildError> {
/// use std::time::Duration;
/// use boundflow_core::{ChannelBuilder, OverflowPolicy};
///
/// let (tx, rx) = ChannelBuilder::new(backend, "worker.step_processor.execution_request", 1000)
///     .policy(OverflowPolicy::Timeout(Duration::from_millis(500)))
///     .build::<u64>()?;
/// # drop((tx, rx)); Ok(()) }
/// ```
#[derive(Debug, Clone)]
#[must_use = "a builder does nothing until `build` is called"]
pub struct ChannelBuilder<B> {
    backend: B,
    name: Arc<str>,
    capacity: usize,
    max_capacity: usize,
    policy: OverflowPolicy,
    wait_strategy: WaitStrategy,
    observers: Observers,
}

impl<B: BoundedChannel> ChannelBuilder<B> {
    /// A channel called `name` (its metrics label) holding at most `capacity` messages, with the
    /// default `block` policy and boundflow's default maximum capacity.
    pub fn new(backend: B, name: impl Into<Arc<str>>, capacity: usize) -> Self {
        ChannelBuilder {
            backend,
            name: name.into(),
            capacity,
            max_capacity: DEFAULT_MAX_CAPACITY,
            policy: OverflowPolicy::Block,
            wait_strategy: WaitStrategy::default(),
            observers: Observers::default(),
        }
    }

    /// Raises or lowers the largest capacity this builder accepts (default
    /// [`DEFAULT_MAX_CAPACITY`]); the backend's own limit still applies.
    pub fn max_capacity(mut self, max: usize) -> Self {
        self.max_capacity = max;
        self
    }

    /// What `send` does when the channel is full (default `block`).
    pub fn policy(mut self, policy: OverflowPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// How blocking calls wait once the channel is full or empty (default
    /// [`WaitStrategy::Backoff`]).
    pub fn wait_strategy(mut self, strategy: WaitStrategy) -> Self {
        self.wait_strategy = strategy;
        self
    }

    /// Adds an [`Observer`], called on the channel's slow paths (full sends, drops, timeouts,
    /// saturation changes); several may be added, and are called in that order. With none, the
    /// channel pays nothing for observers.
    pub fn observer(mut self, observer: Arc<dyn Observer>) -> Self {
        self.observers.push(observer);
        self
    }

    /// Validates and makes the channel.
    ///
    /// # Errors
    /// [`BuildError::Capacity`] for a zero or too large capacity; [`BuildError::Retry`] for a
    /// `retry` policy that cannot work; [`BuildError::UnsupportedPolicy`] for `drop_oldest` on a backend that cannot evict.
    pub fn build<T: Send + 'static>(self) -> Result<ChannelPair<T, B>, BuildError> {
        let max = self.max_capacity.min(self.backend.max_capacity());
        let capacity = Capacity::with_max(self.capacity, max)?;
        if let OverflowPolicy::Retry(retry) = self.policy {
            retry.validate()?;
        }
        if self.policy == OverflowPolicy::DropOldest && !self.backend.supports_drop_oldest() {
            return Err(BuildError::UnsupportedPolicy {
                policy: self.policy.name(),
                backend: self.backend.name(),
            });
        }
        let (raw_tx, raw_rx) = self.backend.bounded::<T>(capacity);
        let info = ChannelInfo {
            name: self.name,
            backend: self.backend.name(),
            capacity: capacity.get(),
            id: next_channel_id(),
        };
        let shared = Arc::new(Shared::new(
            info,
            capacity,
            self.policy,
            self.wait_strategy,
            self.observers,
            raw_tx.depth_probe(),
        ));
        Ok((
            Sender::new(raw_tx, Arc::clone(&shared)),
            Receiver::new(raw_rx, shared),
        ))
    }
}

/// Makes a channel with the default `block` policy: shorthand for
/// `ChannelBuilder::new(backend, name, capacity).build()`.
pub fn bounded<T: Send + 'static, B: BoundedChannel>(
    backend: B,
    name: impl Into<Arc<str>>,
    capacity: usize,
) -> Result<ChannelPair<T, B>, BuildError> {
    ChannelBuilder::new(backend, name, capacity).build()
}
