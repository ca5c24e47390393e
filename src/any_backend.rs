//! [`AnyBackend`]: whichever compiled-in backend the configuration names, as one type.
//!
//! It is itself a [`BoundedChannel`], so a config-selected channel is the same monitored
//! wrapper as any other — `Sender<T>` is `Sender<T, AnyBackend>` — and user code carries no
//! backend type. Each call is one `match` on the backend before the backend's own code.

use std::fmt;
use std::task::{Context, Poll};
use std::time::Instant;

use crate::{
    BoundedChannel, Capacity, DepthProbe, Forced, RawReceiver, RawSender, RecvTimeoutError,
    SendTimeoutError, TryRecvError, TrySendError, WaitStrategy,
};

/// The sending half of a boundflow channel; without a backend type, one chosen at run time
/// ([`AnyBackend`], as the registry opens them). See [`boundflow_core::Sender`].
pub type Sender<T, B = AnyBackend> = boundflow_core::Sender<T, B>;
/// The receiving half of a boundflow channel (see [`Sender`]).
pub type Receiver<T, B = AnyBackend> = boundflow_core::Receiver<T, B>;
/// A sender that does not keep the channel open (see [`Sender`]).
pub type WeakSender<T, B = AnyBackend> = boundflow_core::WeakSender<T, B>;
/// A channel's two ends (see [`Sender`]).
pub type ChannelPair<T, B = AnyBackend> = boundflow_core::ChannelPair<T, B>;

/// A `Notified` backend's raw sender (for calls that name the type).
#[cfg(any(feature = "flume", feature = "crossbeam", feature = "async-channel"))]
type Notified<Q, T> = boundflow_core::notified::NotifiedSender<Q, T>;

/// Calls `$call` on whichever backend `$value` holds (`$variant` names the enum).
macro_rules! dispatch {
    ($value:expr, $enum:ident, $inner:ident => $call:expr) => {
        match $value {
            #[cfg(feature = "tokio")]
            $enum::Tokio($inner) => $call,
            #[cfg(feature = "flume")]
            $enum::Flume($inner) => $call,
            #[cfg(feature = "crossbeam")]
            $enum::Crossbeam($inner) => $call,
            #[cfg(feature = "async-channel")]
            $enum::AsyncChannel($inner) => $call,
        }
    };
}

/// Makes the enum of one kind of endpoint, a variant per compiled-in backend.
macro_rules! endpoint_enum {
    ($(#[$doc:meta])* $name:ident, $tokio:ty, $notified:ident) => {
        $(#[$doc])*
        #[non_exhaustive]
        pub enum $name<T: Send + 'static> {
            /// On tokio.
            #[cfg(feature = "tokio")]
            Tokio($tokio),
            /// On flume.
            #[cfg(feature = "flume")]
            Flume(boundflow_core::notified::$notified<boundflow_flume::FlumeQueue, T>),
            /// On crossbeam-channel.
            #[cfg(feature = "crossbeam")]
            Crossbeam(boundflow_core::notified::$notified<boundflow_crossbeam::CrossbeamQueue, T>),
            /// On async-channel.
            #[cfg(feature = "async-channel")]
            AsyncChannel(
                boundflow_core::notified::$notified<boundflow_async_channel::AsyncChannelQueue, T>,
            ),
        }
    };
}

/// One of the backends compiled into this build, chosen at run time (from configuration).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AnyBackend {
    /// [`Tokio`](crate::Tokio).
    #[cfg(feature = "tokio")]
    Tokio,
    /// [`Flume`](tyalias@crate::Flume).
    #[cfg(feature = "flume")]
    Flume,
    /// [`Crossbeam`](tyalias@crate::Crossbeam).
    #[cfg(feature = "crossbeam")]
    Crossbeam,
    /// [`AsyncChannel`](tyalias@crate::AsyncChannel).
    #[cfg(feature = "async-channel")]
    AsyncChannel,
}

/// Every backend boundflow has: its config name and the cargo feature that compiles it in.
pub(crate) const ALL_BACKENDS: [(&str, &str); 4] = [
    ("tokio", "tokio"),
    ("flume", "flume"),
    ("crossbeam", "crossbeam"),
    ("async_channel", "async-channel"),
];

/// A backend name that this build cannot make.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum UnknownBackend {
    /// boundflow has this backend, but the build left its cargo feature out.
    NotCompiled {
        /// The backend's config name.
        backend: String,
        /// The cargo feature to enable.
        feature: &'static str,
    },
    /// No backend has this name.
    NoSuchBackend {
        /// The name asked for.
        backend: String,
    },
}

impl fmt::Display for UnknownBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UnknownBackend::NotCompiled { backend, feature } => write!(
                f,
                "backend `{backend}` is not compiled into this build: enable boundflow's cargo \
                 feature `{feature}`"
            ),
            UnknownBackend::NoSuchBackend { backend } => write!(
                f,
                "no backend is called `{backend}`: use one of tokio, flume, crossbeam, async_channel"
            ),
        }
    }
}

impl std::error::Error for UnknownBackend {}

impl Default for AnyBackend {
    /// The configuration's default backend, `tokio`, where it is compiled in; otherwise the
    /// first compiled-in one of flume, crossbeam, async_channel.
    fn default() -> Self {
        [
            #[cfg(feature = "tokio")]
            AnyBackend::Tokio,
            #[cfg(feature = "flume")]
            AnyBackend::Flume,
            #[cfg(feature = "crossbeam")]
            AnyBackend::Crossbeam,
            #[cfg(feature = "async-channel")]
            AnyBackend::AsyncChannel,
        ][0]
    }
}

impl AnyBackend {
    /// The backend with this config name.
    ///
    /// # Errors
    /// [`UnknownBackend::NotCompiled`] (naming the cargo feature) or
    /// [`UnknownBackend::NoSuchBackend`].
    pub fn from_name(name: &str) -> Result<AnyBackend, UnknownBackend> {
        match name {
            #[cfg(feature = "tokio")]
            "tokio" => Ok(AnyBackend::Tokio),
            #[cfg(feature = "flume")]
            "flume" => Ok(AnyBackend::Flume),
            #[cfg(feature = "crossbeam")]
            "crossbeam" => Ok(AnyBackend::Crossbeam),
            #[cfg(feature = "async-channel")]
            "async_channel" => Ok(AnyBackend::AsyncChannel),
            _ => Err(
                match ALL_BACKENDS.iter().find(|(ident, _)| *ident == name) {
                    Some((_, feature)) => UnknownBackend::NotCompiled {
                        backend: name.to_owned(),
                        feature,
                    },
                    None => UnknownBackend::NoSuchBackend {
                        backend: name.to_owned(),
                    },
                },
            ),
        }
    }
}

endpoint_enum!(
    /// The sending end of an [`AnyBackend`] channel.
    AnySender,
    boundflow_tokio::TokioSender<T>,
    NotifiedSender
);
// Tokio's receiving end is boxed: two words against the notified ones' one, it made every
// `AnyReceiver` a word larger, and that cost 1-2 instructions per try_send + try_recv on every
// backend (callgrind); the box costs tokio's receive one load. Boxing tokio's sender too cost
// 3-5 on every backend.
endpoint_enum!(
    /// The receiving end of an [`AnyBackend`] channel.
    AnyReceiver,
    Box<boundflow_tokio::TokioReceiver<T>>,
    NotifiedReceiver
);
endpoint_enum!(
    /// A weak sending end of an [`AnyBackend`] channel.
    AnyWeakSender,
    boundflow_tokio::TokioWeakSender<T>,
    NotifiedWeakSender
);

impl BoundedChannel for AnyBackend {
    type Sender<T: Send + 'static> = AnySender<T>;
    type Receiver<T: Send + 'static> = AnyReceiver<T>;

    fn name(&self) -> &'static str {
        match *self {
            #[cfg(feature = "tokio")]
            AnyBackend::Tokio => crate::Tokio.name(),
            #[cfg(feature = "flume")]
            AnyBackend::Flume => crate::Flume.name(),
            #[cfg(feature = "crossbeam")]
            AnyBackend::Crossbeam => crate::Crossbeam.name(),
            #[cfg(feature = "async-channel")]
            AnyBackend::AsyncChannel => crate::AsyncChannel.name(),
        }
    }

    fn max_capacity(&self) -> usize {
        match *self {
            #[cfg(feature = "tokio")]
            AnyBackend::Tokio => crate::Tokio.max_capacity(),
            #[cfg(feature = "flume")]
            AnyBackend::Flume => crate::Flume.max_capacity(),
            #[cfg(feature = "crossbeam")]
            AnyBackend::Crossbeam => crate::Crossbeam.max_capacity(),
            #[cfg(feature = "async-channel")]
            AnyBackend::AsyncChannel => crate::AsyncChannel.max_capacity(),
        }
    }

    fn supports_drop_oldest(&self) -> bool {
        match *self {
            #[cfg(feature = "tokio")]
            AnyBackend::Tokio => crate::Tokio.supports_drop_oldest(),
            #[cfg(feature = "flume")]
            AnyBackend::Flume => crate::Flume.supports_drop_oldest(),
            #[cfg(feature = "crossbeam")]
            AnyBackend::Crossbeam => crate::Crossbeam.supports_drop_oldest(),
            #[cfg(feature = "async-channel")]
            AnyBackend::AsyncChannel => crate::AsyncChannel.supports_drop_oldest(),
        }
    }

    fn bounded<T: Send + 'static>(&self, capacity: Capacity) -> (AnySender<T>, AnyReceiver<T>) {
        match *self {
            #[cfg(feature = "tokio")]
            AnyBackend::Tokio => {
                let (tx, rx) = crate::Tokio.bounded(capacity);
                (AnySender::Tokio(tx), AnyReceiver::Tokio(Box::new(rx)))
            }
            #[cfg(feature = "flume")]
            AnyBackend::Flume => {
                let (tx, rx) = crate::Flume.bounded(capacity);
                (AnySender::Flume(tx), AnyReceiver::Flume(rx))
            }
            #[cfg(feature = "crossbeam")]
            AnyBackend::Crossbeam => {
                let (tx, rx) = crate::Crossbeam.bounded(capacity);
                (AnySender::Crossbeam(tx), AnyReceiver::Crossbeam(rx))
            }
            #[cfg(feature = "async-channel")]
            AnyBackend::AsyncChannel => {
                let (tx, rx) = crate::AsyncChannel.bounded(capacity);
                (AnySender::AsyncChannel(tx), AnyReceiver::AsyncChannel(rx))
            }
        }
    }
}

impl<T: Send + 'static> Clone for AnySender<T> {
    fn clone(&self) -> Self {
        match self {
            #[cfg(feature = "tokio")]
            AnySender::Tokio(tx) => AnySender::Tokio(tx.clone()),
            #[cfg(feature = "flume")]
            AnySender::Flume(tx) => AnySender::Flume(tx.clone()),
            #[cfg(feature = "crossbeam")]
            AnySender::Crossbeam(tx) => AnySender::Crossbeam(tx.clone()),
            #[cfg(feature = "async-channel")]
            AnySender::AsyncChannel(tx) => AnySender::AsyncChannel(tx.clone()),
        }
    }
}

impl<T: Send + 'static> Clone for AnyWeakSender<T> {
    fn clone(&self) -> Self {
        match self {
            #[cfg(feature = "tokio")]
            AnyWeakSender::Tokio(tx) => AnyWeakSender::Tokio(tx.clone()),
            #[cfg(feature = "flume")]
            AnyWeakSender::Flume(tx) => AnyWeakSender::Flume(tx.clone()),
            #[cfg(feature = "crossbeam")]
            AnyWeakSender::Crossbeam(tx) => AnyWeakSender::Crossbeam(tx.clone()),
            #[cfg(feature = "async-channel")]
            AnyWeakSender::AsyncChannel(tx) => AnyWeakSender::AsyncChannel(tx.clone()),
        }
    }
}

impl<T: Send + 'static> RawSender<T> for AnySender<T> {
    type Weak = AnyWeakSender<T>;

    fn downgrade(&self) -> AnyWeakSender<T> {
        match self {
            #[cfg(feature = "tokio")]
            AnySender::Tokio(tx) => AnyWeakSender::Tokio(tx.downgrade()),
            #[cfg(feature = "flume")]
            AnySender::Flume(tx) => AnyWeakSender::Flume(tx.downgrade()),
            #[cfg(feature = "crossbeam")]
            AnySender::Crossbeam(tx) => AnyWeakSender::Crossbeam(tx.downgrade()),
            #[cfg(feature = "async-channel")]
            AnySender::AsyncChannel(tx) => AnyWeakSender::AsyncChannel(tx.downgrade()),
        }
    }

    fn upgrade(weak: &AnyWeakSender<T>) -> Option<Self> {
        match weak {
            #[cfg(feature = "tokio")]
            AnyWeakSender::Tokio(weak) => RawSender::upgrade(weak).map(AnySender::Tokio),
            #[cfg(feature = "flume")]
            AnyWeakSender::Flume(weak) => RawSender::upgrade(weak).map(AnySender::Flume),
            #[cfg(feature = "crossbeam")]
            AnyWeakSender::Crossbeam(weak) => RawSender::upgrade(weak).map(AnySender::Crossbeam),
            #[cfg(feature = "async-channel")]
            AnyWeakSender::AsyncChannel(weak) => {
                RawSender::upgrade(weak).map(AnySender::AsyncChannel)
            }
        }
    }

    fn close_weak(weak: &AnyWeakSender<T>) -> bool {
        match weak {
            #[cfg(feature = "tokio")]
            AnyWeakSender::Tokio(weak) => boundflow_tokio::TokioSender::close_weak(weak),
            #[cfg(feature = "flume")]
            AnyWeakSender::Flume(weak) => {
                Notified::<boundflow_flume::FlumeQueue, T>::close_weak(weak)
            }
            #[cfg(feature = "crossbeam")]
            AnyWeakSender::Crossbeam(weak) => {
                Notified::<boundflow_crossbeam::CrossbeamQueue, T>::close_weak(weak)
            }
            #[cfg(feature = "async-channel")]
            AnyWeakSender::AsyncChannel(weak) => {
                Notified::<boundflow_async_channel::AsyncChannelQueue, T>::close_weak(weak)
            }
        }
    }

    // Always: a match over four inlined backends is large enough that LLVM otherwise keeps it
    // out of line, which measured 20-40 extra instructions per try_send + try_recv.
    #[inline(always)]
    fn try_send(&self, msg: T) -> Result<(), TrySendError<T>> {
        dispatch!(self, AnySender, tx => tx.try_send(msg))
    }

    #[inline(always)]
    fn try_send_then<R>(&self, msg: T, then: impl FnOnce(Result<(), TrySendError<T>>) -> R) -> R {
        dispatch!(self, AnySender, tx => then(tx.try_send(msg)))
    }

    async fn send_until(
        &self,
        msg: T,
        deadline: Option<Instant>,
    ) -> Result<(), SendTimeoutError<T>> {
        dispatch!(self, AnySender, tx => tx.send_until(msg, deadline).await)
    }

    fn send_blocking_until(
        &self,
        msg: T,
        deadline: Option<Instant>,
        strategy: WaitStrategy,
    ) -> Result<(), SendTimeoutError<T>> {
        dispatch!(self, AnySender, tx => tx.send_blocking_until(msg, deadline, strategy))
    }

    fn force_send(&self, msg: T) -> Forced<T> {
        dispatch!(self, AnySender, tx => tx.force_send(msg))
    }

    fn discard_queued(&self) -> usize {
        dispatch!(self, AnySender, tx => tx.discard_queued())
    }

    fn len(&self) -> usize {
        dispatch!(self, AnySender, tx => tx.len())
    }

    fn in_use(&self) -> usize {
        dispatch!(self, AnySender, tx => tx.in_use())
    }

    fn is_closed(&self) -> bool {
        dispatch!(self, AnySender, tx => tx.is_closed())
    }

    fn depth_probe(&self) -> DepthProbe {
        dispatch!(self, AnySender, tx => tx.depth_probe())
    }
}

impl<T: Send + 'static> RawReceiver<T> for AnyReceiver<T> {
    #[inline(always)]
    fn try_recv(&mut self) -> Result<T, TryRecvError> {
        dispatch!(self, AnyReceiver, rx => rx.try_recv())
    }

    #[inline(always)]
    fn try_recv_then<R>(&mut self, then: impl FnOnce(Result<T, TryRecvError>) -> R) -> R {
        dispatch!(self, AnyReceiver, rx => then(rx.try_recv()))
    }

    async fn recv_until(&mut self, deadline: Option<Instant>) -> Result<T, RecvTimeoutError> {
        dispatch!(self, AnyReceiver, rx => rx.recv_until(deadline).await)
    }

    fn recv_blocking_until(
        &mut self,
        deadline: Option<Instant>,
        strategy: WaitStrategy,
    ) -> Result<T, RecvTimeoutError> {
        dispatch!(self, AnyReceiver, rx => rx.recv_blocking_until(deadline, strategy))
    }

    fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<T>> {
        dispatch!(self, AnyReceiver, rx => rx.poll_recv(cx))
    }

    fn end_poll_wait(&mut self) {
        dispatch!(self, AnyReceiver, rx => rx.end_poll_wait())
    }

    fn close(&mut self) {
        dispatch!(self, AnyReceiver, rx => rx.close())
    }

    fn is_closed(&self) -> bool {
        dispatch!(self, AnyReceiver, rx => rx.is_closed())
    }

    fn len(&self) -> usize {
        dispatch!(self, AnyReceiver, rx => rx.len())
    }
}
