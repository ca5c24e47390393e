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
    BoundedChannel, BuildError, Capacity, CapacityError, ChannelBuilder, ChannelPair, ChannelStats,
    DEFAULT_MAX_CAPACITY, Forced, OverflowPolicy, RawReceiver, RawSender, Receiver, RecvError,
    RecvTimeoutError, RetryPolicy, RetryPolicyError, SendError, SendTimeoutError, Sender,
    TryRecvError, TrySendError, WaitStrategy, WaitStrategyError, bounded, channel, notified,
    runtime, saturation, timer,
};

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
