//! Error types. The word is **closed** everywhere: backends that say "disconnected" are mapped.
//!
//! Every error that carries a message gives it back with `into_inner()`, and every `Debug` is
//! written by hand so that `.unwrap()` works without `T: Debug` (it prints `Full(..)`).

use std::error::Error;
use std::fmt;

use crate::policy::RetryPolicyError;

/// Writes the hand-written `Debug`, `Display`, `Error`, `into_inner` and predicates for an error
/// enum whose every variant carries the message.
macro_rules! message_error {
    (
        $(#[$meta:meta])*
        pub enum $name:ident<T> {
            $( $(#[$vmeta:meta])* $variant:ident => ($pred:ident, $text:literal), )+
        }
    ) => {
        $(#[$meta])*
        #[derive(PartialEq, Eq, Clone, Copy)]
        pub enum $name<T> {
            $( $(#[$vmeta])* $variant(T), )+
        }

        impl<T> $name<T> {
            /// Gives back the message that could not be sent.
            pub fn into_inner(self) -> T {
                match self { $( Self::$variant(msg) => msg, )+ }
            }

            $(
                #[doc = concat!("Whether this is the `", stringify!($variant), "` case.")]
                pub fn $pred(&self) -> bool {
                    matches!(self, Self::$variant(_))
                }
            )+
        }

        impl<T> fmt::Debug for $name<T> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self { $( Self::$variant(_) => f.write_str(concat!(stringify!($variant), "(..)")), )+ }
            }
        }

        impl<T> fmt::Display for $name<T> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self { $( Self::$variant(_) => f.write_str($text), )+ }
            }
        }

        impl<T> Error for $name<T> {}
    };
}

message_error! {
    /// The error of `try_send`: the channel could not take the message without waiting.
    pub enum TrySendError<T> {
        /// The channel is full; the message is given back.
        Full => (is_full, "sending on a full channel"),
        /// The receiver is closed or gone; the message is given back.
        Closed => (is_closed, "sending on a closed channel"),
    }
}

message_error! {
    /// The error of the policy-applying `send` / `send_blocking`.
    ///
    /// Which variants can occur depends on the channel's overflow policy: `Full` only under
    /// `drop_newest` (refused) or `retry` (gave up), `Timeout` only under `timeout`, and
    /// `WouldDeadlock` only from `send_blocking`.
    pub enum SendError<T> {
        /// The receiver is closed or gone; the message is given back.
        Closed => (is_closed, "sending on a closed channel"),
        /// The channel was full and the policy refused to wait; the message is given back.
        Full => (is_full, "channel full: the overflow policy refused the message"),
        /// The channel stayed full until the policy's send timeout; the message is given back.
        Timeout => (is_timeout, "timed out waiting on a full channel"),
        /// Blocking here would stall the only thread of a current-thread tokio runtime.
        WouldDeadlock => (is_would_deadlock, "blocking send inside a current-thread tokio runtime would deadlock"),
    }
}

message_error! {
    /// The error of `send_timeout` / `send_timeout_blocking`.
    pub enum SendTimeoutError<T> {
        /// The channel stayed full until the deadline; the message is given back.
        Timeout => (is_timeout, "timed out waiting on a full channel"),
        /// The receiver is closed or gone; the message is given back.
        Closed => (is_closed, "sending on a closed channel"),
        /// Blocking here would stall the only thread of a current-thread tokio runtime.
        WouldDeadlock => (is_would_deadlock, "blocking send inside a current-thread tokio runtime would deadlock"),
    }
}

impl<T> From<TrySendError<T>> for SendError<T> {
    fn from(err: TrySendError<T>) -> Self {
        match err {
            TrySendError::Full(msg) => SendError::Full(msg),
            TrySendError::Closed(msg) => SendError::Closed(msg),
        }
    }
}

impl<T> From<SendTimeoutError<T>> for SendError<T> {
    fn from(err: SendTimeoutError<T>) -> Self {
        match err {
            SendTimeoutError::Timeout(msg) => SendError::Timeout(msg),
            SendTimeoutError::Closed(msg) => SendError::Closed(msg),
            SendTimeoutError::WouldDeadlock(msg) => SendError::WouldDeadlock(msg),
        }
    }
}

/// Writes `Display` and `Error` for a message-less error enum.
macro_rules! plain_error {
    ($name:ident { $( $variant:ident => $text:literal, )+ }) => {
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self { $( Self::$variant => f.write_str($text), )+ }
            }
        }
        impl Error for $name {}
    };
}

/// The error of `try_recv`.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub enum TryRecvError {
    /// Nothing is queued right now.
    Empty,
    /// Nothing is queued and nothing ever will be: every sender is gone or the receiver closed.
    Closed,
}
plain_error!(TryRecvError {
    Empty => "receiving on an empty channel",
    Closed => "receiving on a closed channel",
});

/// The error of `recv` / `recv_blocking`.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub enum RecvError {
    /// The channel is drained and closed.
    Closed,
    /// Blocking here would stall the only thread of a current-thread tokio runtime.
    WouldDeadlock,
}
plain_error!(RecvError {
    Closed => "receiving on a closed channel",
    WouldDeadlock => "blocking receive inside a current-thread tokio runtime would deadlock",
});

/// The error of `recv_timeout` / `recv_timeout_blocking`.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub enum RecvTimeoutError {
    /// Nothing arrived before the deadline.
    Timeout,
    /// The channel is drained and closed.
    Closed,
    /// Blocking here would stall the only thread of a current-thread tokio runtime.
    WouldDeadlock,
}
plain_error!(RecvTimeoutError {
    Timeout => "timed out waiting on an empty channel",
    Closed => "receiving on a closed channel",
    WouldDeadlock => "blocking receive inside a current-thread tokio runtime would deadlock",
});

impl From<RecvTimeoutError> for RecvError {
    /// Maps the result of a wait that had no deadline, where `Timeout` cannot occur.
    fn from(err: RecvTimeoutError) -> Self {
        match err {
            RecvTimeoutError::WouldDeadlock => RecvError::WouldDeadlock,
            RecvTimeoutError::Closed | RecvTimeoutError::Timeout => RecvError::Closed,
        }
    }
}

/// A capacity that boundflow refuses.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub enum CapacityError {
    /// Zero: boundflow has no rendezvous (or unbounded) channel.
    Zero,
    /// Above the maximum (boundflow's, the builder's or the backend's).
    TooLarge {
        /// What was asked for.
        requested: usize,
        /// The largest capacity allowed here.
        max: usize,
    },
}

impl fmt::Display for CapacityError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CapacityError::Zero => f.write_str(
                "capacity must be at least 1: boundflow channels are bounded and never rendezvous",
            ),
            CapacityError::TooLarge { requested, max } => write!(
                f,
                "capacity {requested} exceeds the maximum {max}: lower it, or raise max_capacity \
                 if that much memory per channel is really intended"
            ),
        }
    }
}
impl Error for CapacityError {}

/// Why a channel could not be built.
#[derive(Debug, PartialEq, Eq, Clone)]
#[non_exhaustive]
pub enum BuildError {
    /// The capacity was refused.
    Capacity(CapacityError),
    /// The `retry` policy's settings cannot work.
    Retry(RetryPolicyError),
    /// The overflow policy is not possible on this backend.
    UnsupportedPolicy {
        /// The policy's config name.
        policy: &'static str,
        /// The backend's config name.
        backend: &'static str,
    },
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BuildError::Capacity(err) => err.fmt(f),
            BuildError::Retry(err) => err.fmt(f),
            BuildError::UnsupportedPolicy { policy, backend } => write!(
                f,
                "overflow policy `{policy}` is not supported by the `{backend}` backend: pick \
                 another policy or another backend"
            ),
        }
    }
}

impl Error for BuildError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            BuildError::Capacity(err) => Some(err),
            BuildError::Retry(err) => Some(err),
            BuildError::UnsupportedPolicy { .. } => None,
        }
    }
}

impl From<CapacityError> for BuildError {
    fn from(err: CapacityError) -> Self {
        BuildError::Capacity(err)
    }
}

impl From<RetryPolicyError> for BuildError {
    fn from(err: RetryPolicyError) -> Self {
        BuildError::Retry(err)
    }
}
