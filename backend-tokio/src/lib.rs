//! boundflow backend over `tokio::sync::mpsc`.
//!
//! # How the contract maps onto tokio
//!
//! | contract point | tokio | cost |
//! |---|---|---|
//! | bounded | `mpsc::channel(capacity)`; capacity validated first (tokio panics on 0 or above `Semaphore::MAX_PERMITS`) | none |
//! | async send / recv | tokio's own `send` / `recv` | none |
//! | `send_until` with a deadline | `reserve()` raced against a `futures-timer` deadline ([`boundflow_core::timer`]), then `permit.send(msg)`: the message never leaves the caller until there is room, so a timeout gives it back without `Clone` | one timer, armed only when the channel is full |
//! | blocking calls | the one blocking sequence, [`boundflow_core::runtime::block_with`]: ask where the thread may block, retry as the channel's [`WaitStrategy`] says, then drive the async path on a parked thread (what tokio's `blocking_send` does, minus its panic inside a runtime) | a `block_in_place` hand-off on a multi-thread runtime |
//! | `close` | tokio's `Receiver::close` (wakes blocked senders; sends already holding a permit complete and are drained) | none |
//! | `close` from a weak sender | tokio closes only from its receiver, so the weak sender leaves a close request: sends fail with `Closed(msg)` (one waiting inside tokio for room when the receiver next frees a slot), and the receiver carries it out with tokio's `close` when it finds the queue empty (woken for that if it waits); a send racing the request may be admitted, and is received | one relaxed load per send; a waker registration per receive that waits |
//! | `try_recv` | tokio's `try_recv`, which never reports `Empty` while a message is queued: if the next slot has been claimed by a send that is still writing it, it parks the calling thread until that write is done (tokio `chan::Rx::try_recv`). boundflow's async receives use `poll_recv` and never park | a park and a wake-up, only when a receive meets a send mid-write |
//! | recv cancel safety | tokio's `recv` is cancel-safe | none |
//! | `drop_oldest` | impossible: tokio's receiver cannot be shared with senders, so the policy is refused when the channel is built | — |
//!
//! Depth on the receiving side is tokio's `len()`. On the sending side it is the permits in use
//! (`max_capacity - capacity`) less those that sends still waiting inside tokio may hold: tokio
//! hands a freed slot to a waiting send before it writes, and that send may still be cancelled
//! (counting such a slot made `sent` overcount for good). A slow-path count of waiting sends
//! bounds them.
// This crate wraps (or measures) the raw constructor that clippy.toml forbids elsewhere.
#![allow(clippy::disallowed_methods)]
#![forbid(unsafe_code)]

use std::sync::atomic::Ordering::{Relaxed, SeqCst};
use std::sync::atomic::{AtomicBool, AtomicU64, fence};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use atomic_waker::AtomicWaker;

use boundflow_core::runtime::{WaitHistory, block_with, park_on};
use boundflow_core::timer::with_deadline;
use boundflow_core::{
    BoundedChannel, Capacity, DepthProbe, Occupancy, RawReceiver, RawSender, RecvTimeoutError,
    SendTimeoutError, TryRecvError, TrySendError, WaitStrategy, settle_recv, settle_send,
};
use crossbeam_utils::CachePadded;
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
        let shared = Arc::new(TokioShared {
            orphan: Mutex::new(None),
            waits: WaitingSends::default(),
            send_waits: CachePadded::default(),
            recv_waits: CachePadded::default(),
            close: CachePadded::default(),
        });
        (
            TokioSender {
                tx,
                shared: Arc::clone(&shared),
            },
            TokioReceiver {
                inbox: Inbox {
                    rx,
                    close_waker: None,
                },
                shared,
            },
        )
    }
}

/// What a tokio channel's raw ends share besides tokio's own channel.
#[derive(Debug)]
struct TokioShared<T> {
    /// Where a dropped receiver leaves tokio's receiving end, so that messages whose send was
    /// already admitted (a permit held) when the receiver went are counted by the last sender
    /// instead of being dropped unseen by tokio — and the receiver's drop never waits for them.
    orphan: Mutex<Option<mpsc::Receiver<T>>>,
    waits: WaitingSends,
    /// Whether blocked senders' retries end their waits, and the receiver's (see `WaitHistory`).
    send_waits: CachePadded<WaitHistory>,
    recv_waits: CachePadded<WaitHistory>,
    /// A weak sender's close, for the receiver to carry out (read on every receive, written
    /// once: a line of its own, apart from the senders' slow-path counts).
    close: CachePadded<CloseRequest>,
}

/// A close asked for through a weak sender. Only tokio's receiver can close its channel, so the
/// request has two halves: sends see it and fail with `Closed(msg)` — a send already waiting
/// inside tokio for room when it sees it, as soon as the receiver frees a slot — and the
/// receiver, once it finds the queue empty (woken for that if it waits), calls tokio's `close`,
/// after which it sees `Closed` when nothing is left in flight. A send racing the request may
/// still be admitted, and is then received: the close that ends the channel is tokio's own,
/// which is exact. The receiver checks on its empty path only, so a receive that finds a
/// message pays nothing.
///
/// Not woken by the request itself: a send waiting for room on a receiver that has stopped
/// receiving (it waits until its deadline, or until the receiver takes a message). Waking it
/// would need every waiting send registered where the request can reach it; with `Notify`
/// that cost tokio's ping-pong at capacity 1 about 0.1x of raw's throughput (0.65x → 0.55x,
/// `cargo bench --bench tokio_schedule`, two A/B runs each way).
#[derive(Debug, Default)]
struct CloseRequest {
    requested: AtomicBool,
    /// The waiting receive's waker.
    receiver: AtomicWaker,
}

impl CloseRequest {
    fn request(&self) {
        // Pairs with the load after the receiver's registration: it sees the request, or this
        // wake finds its waker.
        self.requested.store(true, SeqCst);
        self.receiver.wake();
    }

    /// Registers the waiting receive's waker; `true` if a request came meanwhile (the caller
    /// honors it and polls again instead of waiting). `registered` is the receiver's copy of
    /// the waker it registered last: when the receive polls with that waker again, the
    /// registration is left as it is (two read-modify-writes fewer on every receive that
    /// waits). Only [`request`](Self::request) takes a registration out, and it sets the flag
    /// first: if it took this one, it also woke this task, and that wake-up happens before
    /// the poll that reads the flag here, so the flag is seen.
    fn register(&self, registered: &mut Option<Waker>, waker: &Waker) -> bool {
        if !registered
            .as_ref()
            .is_some_and(|last| last.will_wake(waker))
        {
            self.receiver.register(waker);
            *registered = Some(waker.clone());
        }
        self.requested.load(SeqCst)
    }
}

/// Sends that wait inside tokio (`send_until`), counted as they start and as they end. tokio
/// hands a freed slot (a permit) to a waiting send before that send has written anything, and
/// the send may still be cancelled or time out and give it back; the sending side's depth
/// (`max_capacity - capacity`: permits in use) would count that slot as a queued message. The
/// two counts bound how many slots such sends can hold, so `len` leaves them out. Written only
/// on the slow path (the channel was full).
#[derive(Debug, Default)]
struct WaitingSends {
    started: CachePadded<AtomicU64>,
    ended: CachePadded<AtomicU64>,
}

impl WaitingSends {
    fn start(&self) -> WaitingSend<'_> {
        self.started.fetch_add(1, SeqCst);
        WaitingSend(self)
    }

    /// At most how many permits waiting sends hold now: read around the caller's read of the
    /// permits in use (`ended` before, `started` after), so every send holding a permit at that
    /// moment is counted (and perhaps a few that hold none: `len` may lag, never overcount).
    fn bound_around(&self, permits_in_use: impl FnOnce() -> usize) -> usize {
        let ended = self.ended.load(SeqCst);
        fence(SeqCst);
        let in_use = permits_in_use();
        fence(SeqCst);
        let started = self.started.load(SeqCst);
        let waiting = usize::try_from(started.saturating_sub(ended)).unwrap_or(usize::MAX);
        in_use.saturating_sub(waiting)
    }
}

/// One send waiting inside tokio; counted as ended when dropped — after the permit it may hold
/// has been used or given back (it is declared before the wait, so dropped after it).
struct WaitingSend<'a>(&'a WaitingSends);

impl Drop for WaitingSend<'_> {
    fn drop(&mut self) {
        self.0.ended.fetch_add(1, SeqCst);
    }
}

/// The tokio backend's raw sending end.
#[derive(Debug)]
pub struct TokioSender<T> {
    tx: mpsc::Sender<T>,
    shared: Arc<TokioShared<T>>,
}

impl<T> Clone for TokioSender<T> {
    fn clone(&self) -> Self {
        TokioSender {
            tx: self.tx.clone(),
            shared: Arc::clone(&self.shared),
        }
    }
}

/// A weak sending end: tokio's own `WeakSender`.
#[derive(Debug)]
pub struct TokioWeakSender<T> {
    tx: mpsc::WeakSender<T>,
    shared: Arc<TokioShared<T>>,
}

impl<T> Clone for TokioWeakSender<T> {
    fn clone(&self) -> Self {
        TokioWeakSender {
            tx: self.tx.clone(),
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<T: Send + 'static> RawSender<T> for TokioSender<T> {
    type Weak = TokioWeakSender<T>;

    fn downgrade(&self) -> TokioWeakSender<T> {
        TokioWeakSender {
            tx: self.tx.downgrade(),
            shared: Arc::clone(&self.shared),
        }
    }

    fn upgrade(weak: &TokioWeakSender<T>) -> Option<Self> {
        Some(TokioSender {
            tx: weak.tx.upgrade()?,
            shared: Arc::clone(&weak.shared),
        })
    }

    /// Asks the receiver to close (see `CloseRequest`): always possible, so `true`.
    fn close_weak(weak: &TokioWeakSender<T>) -> bool {
        weak.shared.close.request();
        true
    }

    #[inline]
    fn try_send(&self, msg: T) -> Result<(), TrySendError<T>> {
        if self.shared.close.requested.load(Relaxed) {
            return refused_as_closed(msg);
        }
        self.tx.try_send(msg).map_err(|err| match err {
            mpsc::error::TrySendError::Full(msg) => TrySendError::Full(msg),
            mpsc::error::TrySendError::Closed(msg) => TrySendError::Closed(msg),
        })
    }

    async fn send_until(
        &self,
        msg: T,
        deadline: Option<Instant>,
    ) -> Result<(), SendTimeoutError<T>> {
        let close = &self.shared.close;
        if close.requested.load(Relaxed) {
            return Err(SendTimeoutError::Closed(msg));
        }
        let _waiting = self.shared.waits.start();
        // A slot first, then the message: a wait that ends without one gives the message back.
        let room = match deadline {
            None => Some(self.tx.reserve().await),
            Some(deadline) => with_deadline(self.tx.reserve(), deadline).await,
        };
        match room {
            // A slot that came after a close request goes back (dropping the permit frees it):
            // the send is refused as one started after the request would be.
            Some(Ok(permit)) if !close.requested.load(SeqCst) => {
                permit.send(msg);
                Ok(())
            }
            Some(_) => Err(SendTimeoutError::Closed(msg)),
            None => Err(SendTimeoutError::Timeout(msg)),
        }
    }

    fn send_blocking_until(
        &self,
        msg: T,
        deadline: Option<Instant>,
        strategy: WaitStrategy,
    ) -> Result<(), SendTimeoutError<T>> {
        block_with(
            strategy,
            &self.shared.send_waits,
            msg,
            deadline,
            |msg| settle_send(self.try_send(msg)),
            |msg| park_on(self.send_until(msg, deadline)),
        )
        .unwrap_or_else(|msg| Err(SendTimeoutError::WouldDeadlock(msg)))
    }

    fn discard_queued(&self) -> usize {
        let orphan = self
            .shared
            .orphan
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        orphan.map_or(0, |mut rx| {
            std::iter::from_fn(|| rx.try_recv().ok()).count()
        })
    }

    fn len(&self) -> usize {
        // Permits in use, less those a waiting send may hold without having sent (see
        // `WaitingSends`).
        self.shared.waits.bound_around(|| self.in_use())
    }

    fn is_closed(&self) -> bool {
        self.tx.is_closed() || self.shared.close.requested.load(SeqCst)
    }

    /// Permits in use, including those handed to sends still waiting: a new send cannot have
    /// them, so saturation counts them.
    fn in_use(&self) -> usize {
        self.tx.max_capacity().saturating_sub(self.tx.capacity())
    }

    fn depth_probe(&self) -> DepthProbe {
        // Weak on both: tokio closes when its last strong sender goes, so the probe stops
        // reading then (the wrapper takes over while the receiver drains).
        let tx = self.tx.downgrade();
        let shared = Arc::downgrade(&self.shared);
        DepthProbe::new(move || {
            let sender = TokioSender {
                tx: tx.upgrade()?,
                shared: shared.upgrade()?,
            };
            Some(Occupancy {
                queued: sender.len(),
                in_use: sender.in_use(),
            })
        })
    }
}

/// A send after a close request: refused, the message given back.
#[cold]
fn refused_as_closed<T>(msg: T) -> Result<(), TrySendError<T>> {
    Err(TrySendError::Closed(msg))
}

/// The tokio backend's raw receiving end.
#[derive(Debug)]
pub struct TokioReceiver<T> {
    inbox: Inbox<T>,
    shared: Arc<TokioShared<T>>,
}

/// tokio's receiving end, and the waker this receiver last registered for a close request.
#[derive(Debug)]
struct Inbox<T> {
    rx: mpsc::Receiver<T>,
    close_waker: Option<Waker>,
}

impl<T> Drop for TokioReceiver<T> {
    fn drop(&mut self) {
        // Closed first, as dropping tokio's receiver would: later sends fail with `Closed`, and
        // blocked ones wake.
        self.inbox.rx.close();
        // Swap in a dummy so the real receiving end (and anything still landing in it) outlives
        // us until the last sender drains it.
        let (_, dummy) = mpsc::channel(1);
        let rx = std::mem::replace(&mut self.inbox.rx, dummy);
        *self
            .shared
            .orphan
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(rx);
    }
}

/// tokio's `try_recv`, in boundflow's error; on an empty queue, a requested close is carried
/// out first (so `Closed` once nothing is left in flight).
#[inline(always)]
fn try_recv_from<T>(rx: &mut mpsc::Receiver<T>, close: &CloseRequest) -> Result<T, TryRecvError> {
    match rx.try_recv() {
        Ok(msg) => Ok(msg),
        Err(mpsc::error::TryRecvError::Disconnected) => Err(TryRecvError::Closed),
        Err(mpsc::error::TryRecvError::Empty) => try_recv_when_empty(rx, close),
    }
}

/// [`try_recv_from`] after an empty queue: `Empty`, unless a close was requested and not yet
/// carried out (then closed, and tried again).
#[cold]
fn try_recv_when_empty<T>(
    rx: &mut mpsc::Receiver<T>,
    close: &CloseRequest,
) -> Result<T, TryRecvError> {
    if !close.requested.load(SeqCst) || rx.is_closed() {
        return Err(TryRecvError::Empty);
    }
    rx.close();
    rx.try_recv().map_err(|err| match err {
        mpsc::error::TryRecvError::Empty => TryRecvError::Empty,
        mpsc::error::TryRecvError::Disconnected => TryRecvError::Closed,
    })
}

/// tokio's `poll_recv`, woken also by a close request (carried out before polling again).
fn poll_recv_from<T>(
    inbox: &mut Inbox<T>,
    close: &CloseRequest,
    cx: &mut Context<'_>,
) -> Poll<Option<T>> {
    match inbox.rx.poll_recv(cx) {
        Poll::Pending if close.register(&mut inbox.close_waker, cx.waker()) => {
            inbox.rx.close();
            inbox.rx.poll_recv(cx)
        }
        polled => polled,
    }
}

/// tokio's `recv`, until `deadline` if any.
async fn recv_from_until<T>(
    inbox: &mut Inbox<T>,
    close: &CloseRequest,
    deadline: Option<Instant>,
) -> Result<T, RecvTimeoutError> {
    let recv = std::future::poll_fn(|cx| poll_recv_from(inbox, close, cx));
    let received = match deadline {
        None => recv.await,
        Some(deadline) => with_deadline(recv, deadline)
            .await
            .ok_or(RecvTimeoutError::Timeout)?,
    };
    received.ok_or(RecvTimeoutError::Closed)
}

impl<T: Send + 'static> RawReceiver<T> for TokioReceiver<T> {
    #[inline]
    fn try_recv(&mut self) -> Result<T, TryRecvError> {
        try_recv_from(&mut self.inbox.rx, &self.shared.close)
    }

    async fn recv_until(&mut self, deadline: Option<Instant>) -> Result<T, RecvTimeoutError> {
        recv_from_until(&mut self.inbox, &self.shared.close, deadline).await
    }

    fn recv_blocking_until(
        &mut self,
        deadline: Option<Instant>,
        strategy: WaitStrategy,
    ) -> Result<T, RecvTimeoutError> {
        if let Some(settled) = settle_recv(self.try_recv()) {
            return settled;
        }
        // Disjoint borrows: the receiving end is the wait's state, the rest stays shared.
        let close = &self.shared.close;
        block_with(
            strategy,
            &self.shared.recv_waits,
            &mut self.inbox,
            deadline,
            |inbox| settle_recv(try_recv_from(&mut inbox.rx, close)).ok_or(inbox),
            |inbox| park_on(recv_from_until(inbox, close, deadline)),
        )
        .unwrap_or(Err(RecvTimeoutError::WouldDeadlock))
    }

    fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<T>> {
        poll_recv_from(&mut self.inbox, &self.shared.close, cx)
    }

    fn close(&mut self) {
        self.inbox.rx.close();
    }

    fn is_closed(&self) -> bool {
        self.inbox.rx.is_closed() || self.shared.close.requested.load(SeqCst)
    }

    fn len(&self) -> usize {
        self.inbox.rx.len()
    }
}
