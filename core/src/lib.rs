//! boundflow-core: the [`BoundedChannel`] trait, errors, [`Capacity`], overflow policies, the
//! monitor, and the one monitored [`Sender`]/[`Receiver`] wrapper every backend shares.
//!
//! Most users want the `boundflow` facade crate, which re-exports all of this together with the
//! backends. Backend authors implement [`BoundedChannel`] (or, for a queue with only
//! non-waiting operations, [`notified::TryQueue`]).
//!
//! Core runs on no particular runtime: async waits use [`timer`] (futures-timer), blocking waits
//! park the thread, and the optional `tokio` feature only lets [`runtime`] ask whether a
//! blocking call is being made inside a tokio runtime.
//!
//! Monitoring: every channel keeps [`ChannelStats`]; [`Observer`]s hear of slow-path events;
//! a [`Watcher`] (the tick) samples channels, drives saturation warnings and hands snapshots to
//! [`Publish`]ers. Features: `tracing` (`TracingObserver`), `serde` (`Serialize` on the
//! stats and events).
#![forbid(unsafe_code)]

pub mod barrier;
mod builder;
mod capacity;
pub mod channel;
mod error;
mod handle;
mod in_flight;
mod loom;
#[cfg(all(test, boundflow_loom))]
mod loom_models;
mod monitor;
pub mod notified;
mod observer;
mod policy;
mod receiver;
pub mod runtime;
mod saturation;
mod sender;
mod shared;
mod tick;
pub mod timer;
#[cfg(feature = "tracing")]
mod tracing_observer;
mod waiting_senders;

pub use builder::{ChannelBuilder, ChannelPair, bounded};
pub use capacity::{Capacity, DEFAULT_MAX_CAPACITY};
pub use channel::{
    BoundedChannel, DepthProbe, Forced, Occupancy, RawReceiver, RawSender, settle_recv, settle_send,
};
pub use error::{
    BuildError, CapacityError, RecvError, RecvTimeoutError, SendError, SendTimeoutError,
    TryRecvError, TrySendError,
};
pub use handle::ChannelHandle;
pub use monitor::{ChannelStats, SEND_WAIT_BOUNDS, SendWaitHistogram, saturation};
pub use observer::{ChannelInfo, Observer, SaturationEvent, SaturationKind, subsystem};
pub use policy::{OverflowPolicy, RetryPolicy, RetryPolicyError, WaitStrategy, WaitStrategyError};
pub use receiver::Receiver;
pub use saturation::{SaturationThresholds, ThresholdError};
pub use sender::{Sender, WeakSender};
pub use tick::{
    ChannelReport, Clock, FakeClock, Publish, SystemClock, TickThread, WatchError, Watcher,
    WatcherBuilder, WatcherError,
};
#[cfg(feature = "tracing")]
pub use tracing_observer::TracingObserver;
