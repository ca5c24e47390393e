//! Send/Sync guards for every public type and every returned future, on every backend
//! (the idea of tokio's `tests/async_send_sync.rs`).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs, dead_code)]

use std::time::Duration;

use boundflow::{BoundedChannel, Receiver, Sender};

fn send_sync<T: Send + Sync>() {}
fn send_value<T: Send>(_: &T) {}
fn send_only<T: Send>() {}

/// A message type that is Send but not Sync: endpoints must still be Send + Sync.
struct NotSync(std::cell::Cell<u8>);

fn endpoints<B: BoundedChannel>() {
    send_sync::<Sender<u64, B>>();
    send_sync::<Receiver<u64, B>>();
    send_sync::<Sender<NotSync, B>>();
    send_sync::<Receiver<NotSync, B>>();
}

fn futures<B: BoundedChannel>(tx: Sender<NotSync, B>, mut rx: Receiver<NotSync, B>) {
    send_value(&tx.send(NotSync(0.into())));
    send_value(&tx.send_timeout(NotSync(0.into()), Duration::ZERO));
    send_value(&rx.recv());
    send_value(&rx.recv_timeout(Duration::ZERO));
}

#[test]
fn public_types_are_send_and_sync() {
    send_sync::<boundflow::ChannelStats>();
    send_sync::<boundflow::BuildError>();
    send_sync::<boundflow::CapacityError>();
    send_sync::<boundflow::SendError<u64>>();
    send_sync::<boundflow::TrySendError<u64>>();
    send_sync::<boundflow::SendTimeoutError<u64>>();
    send_only::<boundflow::SendError<NotSync>>();
    send_sync::<boundflow::RecvError>();
    send_sync::<boundflow::RecvTimeoutError>();
    send_sync::<boundflow::TryRecvError>();
    send_sync::<boundflow::OverflowPolicy>();
    send_sync::<boundflow::Capacity>();
    #[cfg(feature = "tokio")]
    endpoints::<boundflow::Tokio>();
    #[cfg(feature = "flume")]
    endpoints::<boundflow::Flume>();
    #[cfg(feature = "crossbeam")]
    endpoints::<boundflow::Crossbeam>();
    #[cfg(feature = "async-channel")]
    endpoints::<boundflow::AsyncChannel>();
}

#[test]
fn returned_futures_are_send() {
    fn check<B: BoundedChannel + Default>() {
        let (tx, rx) = boundflow::bounded::<NotSync, B>(B::default(), "t", 1).unwrap();
        futures(tx, rx);
    }
    #[cfg(feature = "tokio")]
    check::<boundflow::Tokio>();
    #[cfg(feature = "flume")]
    check::<boundflow::Flume>();
    #[cfg(feature = "crossbeam")]
    check::<boundflow::Crossbeam>();
    #[cfg(feature = "async-channel")]
    check::<boundflow::AsyncChannel>();
}
