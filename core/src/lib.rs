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
#![forbid(unsafe_code)]

mod builder;
mod capacity;
pub mod channel;
mod error;
mod in_flight;
mod loom;
mod monitor;
pub mod notified;
mod policy;
mod receiver;
pub mod runtime;
mod sender;
mod shared;
pub mod timer;
mod waiting_senders;

pub use builder::{ChannelBuilder, ChannelPair, bounded};
pub use capacity::{Capacity, DEFAULT_MAX_CAPACITY};
pub use channel::{BoundedChannel, Forced, RawReceiver, RawSender, settle_recv, settle_send};
pub use error::{
    BuildError, CapacityError, RecvError, RecvTimeoutError, SendError, SendTimeoutError,
    TryRecvError, TrySendError,
};
pub use monitor::{ChannelStats, saturation};
pub use policy::{OverflowPolicy, RetryPolicy, RetryPolicyError, WaitStrategy, WaitStrategyError};
pub use receiver::Receiver;
pub use sender::Sender;
