//! boundflow backend over `tokio::sync::mpsc`.
//!
//! # How the contract maps onto tokio
//!
//! | contract point | tokio | cost |
//! |---|---|---|
//! | bounded | `mpsc::channel(capacity)`; capacity validated first (tokio panics on 0 or above `Semaphore::MAX_PERMITS`) | none |
//! | async send / recv | tokio's own `send` / `recv` | none |
//! | `send_until` with a deadline | `reserve()` raced against a `futures-timer` deadline ([`boundflow_core::timer`]), then `permit.send(msg)`: the message never leaves the caller until there is room, so a timeout gives it back without `Clone` | one timer, armed only when the channel is full |
//! | blocking calls | try first; then [`boundflow_core::runtime::blocking_permit`] and the async path driven by a thread-parking `block_on` (what tokio's `blocking_send` does, minus its panic inside a runtime) | a `block_in_place` hand-off on a multi-thread runtime |
//! | `close` | tokio's `Receiver::close` (wakes blocked senders; sends already holding a permit complete and are drained) | none |
//! | recv cancel safety | tokio's `recv` is cancel-safe | none |
//! | `drop_oldest` | impossible: tokio's receiver cannot be shared with senders, so the policy is refused when the channel is built | — |
//!
//! Depth on the sending side is `max_capacity - capacity` (permits in use, so a send that holds a
//! permit but has not yet written counts as queued); on the receiving side it is tokio's `len()`.

use std::task::{Context, Poll};
use std::time::Instant;

use boundflow_core::runtime::{block_on, blocking_permit};
use boundflow_core::timer::with_deadline;
use boundflow_core::{
    BoundedChannel, Capacity, RawReceiver, RawSender, RecvTimeoutError, SendTimeoutError,
    TryRecvError, TrySendError,
};
use tokio::sync::{Semaphore, mpsc};

/// The tokio backend (config name `tokio`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tokio;

impl BoundedChannel for Tokio {
    type Sender<T: Send + 'static> = TokioSender<T>;
    type Receiver<T: Send + 'static> = TokioReceiver<T>;

    fn name(&self) -> &'static str {
        "tokio"
    }

    fn max_capacity(&self) -> usize {
        Semaphore::MAX_PERMITS
    }

    fn bounded<T: Send + 'static>(&self, capacity: Capacity) -> (TokioSender<T>, TokioReceiver<T>) {
        // Cannot panic: `Capacity` is at least 1 and the builder capped it at MAX_PERMITS.
        let (tx, rx) = mpsc::channel(capacity.get());
        (TokioSender(tx), TokioReceiver(rx))
    }
}

/// The tokio backend's raw sending end.
#[derive(Debug)]
pub struct TokioSender<T>(mpsc::Sender<T>);

impl<T> Clone for TokioSender<T> {
    fn clone(&self) -> Self {
        TokioSender(self.0.clone())
    }
}

impl<T: Send + 'static> RawSender<T> for TokioSender<T> {
    fn try_send(&self, msg: T) -> Result<(), TrySendError<T>> {
        self.0.try_send(msg).map_err(|err| match err {
            mpsc::error::TrySendError::Full(msg) => TrySendError::Full(msg),
            mpsc::error::TrySendError::Closed(msg) => TrySendError::Closed(msg),
        })
    }

    async fn send_until(
        &self,
        msg: T,
        deadline: Option<Instant>,
    ) -> Result<(), SendTimeoutError<T>> {
        let Some(deadline) = deadline else {
            return self
                .0
                .send(msg)
                .await
                .map_err(|err| SendTimeoutError::Closed(err.0));
        };
        match with_deadline(self.0.reserve(), deadline).await {
            Some(Ok(permit)) => {
                permit.send(msg);
                Ok(())
            }
            Some(Err(_)) => Err(SendTimeoutError::Closed(msg)),
            None => Err(SendTimeoutError::Timeout(msg)),
        }
    }

    fn send_blocking_until(
        &self,
        msg: T,
        deadline: Option<Instant>,
    ) -> Result<(), SendTimeoutError<T>> {
        let msg = match self.try_send(msg) {
            Ok(()) => return Ok(()),
            Err(TrySendError::Closed(msg)) => return Err(SendTimeoutError::Closed(msg)),
            Err(TrySendError::Full(msg)) => msg,
        };
        match blocking_permit() {
            Some(permit) => permit.run(|| block_on(self.send_until(msg, deadline))),
            None => Err(SendTimeoutError::WouldDeadlock(msg)),
        }
    }

    fn len(&self) -> usize {
        self.0.max_capacity().saturating_sub(self.0.capacity())
    }

    fn is_closed(&self) -> bool {
        self.0.is_closed()
    }
}

/// The tokio backend's raw receiving end.
#[derive(Debug)]
pub struct TokioReceiver<T>(mpsc::Receiver<T>);

impl<T: Send + 'static> RawReceiver<T> for TokioReceiver<T> {
    fn try_recv(&mut self) -> Result<T, TryRecvError> {
        self.0.try_recv().map_err(|err| match err {
            mpsc::error::TryRecvError::Empty => TryRecvError::Empty,
            mpsc::error::TryRecvError::Disconnected => TryRecvError::Closed,
        })
    }

    async fn recv_until(&mut self, deadline: Option<Instant>) -> Result<T, RecvTimeoutError> {
        let received = match deadline {
            None => self.0.recv().await,
            Some(deadline) => with_deadline(self.0.recv(), deadline)
                .await
                .ok_or(RecvTimeoutError::Timeout)?,
        };
        received.ok_or(RecvTimeoutError::Closed)
    }

    fn recv_blocking_until(&mut self, deadline: Option<Instant>) -> Result<T, RecvTimeoutError> {
        match self.try_recv() {
            Ok(msg) => return Ok(msg),
            Err(TryRecvError::Closed) => return Err(RecvTimeoutError::Closed),
            Err(TryRecvError::Empty) => {}
        }
        match blocking_permit() {
            Some(permit) => permit.run(|| block_on(self.recv_until(deadline))),
            None => Err(RecvTimeoutError::WouldDeadlock),
        }
    }

    fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<T>> {
        self.0.poll_recv(cx)
    }

    fn close(&mut self) {
        self.0.close();
    }

    fn is_closed(&self) -> bool {
        self.0.is_closed()
    }

    fn len(&self) -> usize {
        self.0.len()
    }
}
