//! Loom models of the monitored wrapper itself — `Sender`/`Receiver` over the [`Notified`]
//! adaptor — on a tiny loom-instrumented queue that exists only here. Run with
//! `RUSTFLAGS="--cfg boundflow_loom" CARGO_TARGET_DIR=target/loom LOOM_MAX_PREEMPTIONS=2 cargo
//! test -p boundflow-core --release --lib loom`.
//!
//! Only the `try_*` paths (and policy sends that never wait: `drop_newest`, `drop_oldest`)
//! run here: no timer, no thread parking. Every check is against counts the model keeps
//! itself — what its senders were told, what its receiver took, the queue's own length — not
//! against the formulas the monitor uses.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering::{Acquire, Relaxed, Release, SeqCst};
use std::task::{Context, Poll, Wake, Waker};

use futures_core::Stream;
use loom::sync::Mutex;
use loom::sync::atomic::{AtomicBool, AtomicUsize};
use loom::thread;

use crate::notified::{Notified, TryQueue};
use crate::{ChannelBuilder, OverflowPolicy, Receiver, Sender, TryRecvError, TrySendError};

loom::lazy_static! {
    /// The longest the model's queue has ever been (per explored execution).
    static ref LONGEST: AtomicUsize = AtomicUsize::new(0);
}

/// A bounded queue like the real ones where it matters here: the data sits behind a lock, but
/// a pop decides that it is empty from a published count and a closed flag (Acquire loads,
/// no lock), as lock-free queues do — so a missing fence in the wake-up protocols shows. A push
/// publishes before it unlocks, so a contended push never spins on a stale count.
#[derive(Debug, Clone, Copy, Default)]
struct LoomQueue;

struct Inner<T> {
    items: Mutex<VecDeque<T>>,
    published: AtomicUsize,
    /// Written under the lock (so close is exact), read without it by a pop.
    closed: AtomicBool,
    capacity: usize,
}

struct End<T>(Arc<Inner<T>>);

impl<T> Clone for End<T> {
    fn clone(&self) -> Self {
        End(Arc::clone(&self.0))
    }
}

impl TryQueue for LoomQueue {
    type Tx<T: Send + 'static> = End<T>;
    type Rx<T: Send + 'static> = End<T>;

    const NAME: &'static str = "loom";
    const EXACT_CLOSE: bool = true;

    fn bounded<T: Send + 'static>(capacity: usize) -> (End<T>, End<T>) {
        let inner = Arc::new(Inner {
            items: Mutex::new(VecDeque::new()),
            published: AtomicUsize::new(0),
            closed: AtomicBool::new(false),
            capacity,
        });
        (End(Arc::clone(&inner)), End(inner))
    }

    fn push<T: Send + 'static>(tx: &End<T>, msg: T) -> Result<(), TrySendError<T>> {
        let mut items = tx.0.items.lock().unwrap();
        if tx.0.closed.load(Relaxed) {
            return Err(TrySendError::Closed(msg));
        }
        if items.len() >= tx.0.capacity {
            return Err(TrySendError::Full(msg));
        }
        items.push_back(msg);
        LONGEST.fetch_max(items.len(), Relaxed);
        tx.0.published.fetch_add(1, Release);
        Ok(())
    }

    fn pop<T: Send + 'static>(rx: &End<T>) -> Option<T> {
        if rx.0.published.load(Acquire) == 0 && !rx.0.closed.load(Acquire) {
            return None;
        }
        let msg = rx.0.items.lock().unwrap().pop_front()?;
        rx.0.published.fetch_sub(1, Release);
        Some(msg)
    }

    fn len<T: Send + 'static>(rx: &End<T>) -> usize {
        rx.0.published.load(Acquire)
    }

    fn close<T: Send + 'static>(rx: &End<T>) {
        let _items = rx.0.items.lock().unwrap();
        rx.0.closed.store(true, Release);
    }
}

type Tx = Sender<u32, Notified<LoomQueue>>;
type Rx = Receiver<u32, Notified<LoomQueue>>;

fn channel(capacity: usize, policy: OverflowPolicy) -> (Tx, Rx) {
    ChannelBuilder::new(Notified(LoomQueue), "loom.model", capacity)
        .policy(policy)
        .build::<u32>()
        .unwrap()
}

/// What one model sender was told.
#[derive(Debug, Default, Clone, Copy)]
struct Told {
    accepted: u64,
    full: u64,
}

/// Two senders each `try_send` two messages while the receiver takes what it finds, then
/// drains. Checked: nothing lost or duplicated, FIFO per sender, nothing received after
/// `Closed` (close is exact), the queue never held more than `capacity`, accepted − taken never
/// above it, and the final counters exact.
fn two_senders_one_receiver(capacity: usize) {
    crate::barrier::loom_modes::model(move || {
        LONGEST.store(0, Relaxed);
        let (tx, mut rx) = channel(capacity, OverflowPolicy::Block);
        let accepted_so_far: &'static AtomicUsize = Box::leak(Box::new(AtomicUsize::new(0)));
        let senders: Vec<_> = [0u32, 10]
            .into_iter()
            .map(|base| {
                let tx = tx.clone();
                thread::spawn(move || {
                    let mut told = Told::default();
                    for msg in [base, base + 1] {
                        match tx.try_send(msg) {
                            Ok(()) => {
                                told.accepted += 1;
                                accepted_so_far.fetch_add(1, SeqCst);
                            }
                            Err(TrySendError::Full(_)) => told.full += 1,
                            Err(TrySendError::Closed(_)) => panic!("closed while open"),
                        }
                    }
                    told
                })
            })
            .collect();
        drop(tx);
        let mut taken = Vec::new();
        let mut closed_seen = false;
        for _ in 0..2 {
            match rx.try_recv() {
                Ok(msg) => {
                    assert!(!closed_seen, "{msg} received after Closed");
                    taken.push(msg);
                }
                Err(TryRecvError::Closed) => closed_seen = true,
                Err(TryRecvError::Empty) => {}
            }
            // Counted after the send returned, so `accepted_so_far` may lag: never lead.
            let accepted = accepted_so_far.load(SeqCst);
            assert!(
                accepted <= taken.len() + capacity,
                "{accepted} accepted, {} taken, capacity {capacity}",
                taken.len()
            );
        }
        let told: Vec<Told> = senders.into_iter().map(|s| s.join().unwrap()).collect();
        loop {
            match rx.try_recv() {
                Ok(msg) => {
                    assert!(!closed_seen, "{msg} received after Closed");
                    taken.push(msg);
                }
                Err(TryRecvError::Empty) => panic!("empty with every sender gone"),
                Err(TryRecvError::Closed) => break,
            }
        }
        let accepted: u64 = told.iter().map(|t| t.accepted).sum();
        let full: u64 = told.iter().map(|t| t.full).sum();
        assert_eq!(
            taken.len() as u64,
            accepted,
            "lost or duplicated: {taken:?}"
        );
        for base in [0, 10] {
            let mine: Vec<u32> = taken
                .iter()
                .copied()
                .filter(|m| m / 10 == base / 10)
                .collect();
            assert!(
                mine.windows(2).all(|w| w[0] < w[1]),
                "FIFO broken: {taken:?}"
            );
        }
        assert!(LONGEST.load(Relaxed) <= capacity, "the queue overfilled");
        let stats = rx.stats();
        assert_eq!(stats.sent, accepted);
        assert_eq!(stats.received, accepted);
        assert_eq!(stats.full_events, full);
        assert_eq!(stats.depth, 0);
    });
}

#[test]
fn loom_two_senders_one_receiver_capacity_1() {
    two_senders_one_receiver(1);
}

#[test]
fn loom_two_senders_one_receiver_capacity_2() {
    two_senders_one_receiver(2);
}

/// Two `drop_newest` sends into a one-slot channel while the receiver takes one: every message
/// is received or handed back, and the counters say exactly that.
#[test]
fn loom_drop_newest_accounting() {
    crate::barrier::loom_modes::model(|| {
        let (tx, mut rx) = channel(1, OverflowPolicy::DropNewest);
        let senders: Vec<_> = [1u32, 2]
            .into_iter()
            .map(|msg| {
                let tx = tx.clone();
                thread::spawn(move || match tx.send_blocking(msg) {
                    Ok(()) => 0u64,
                    Err(err) => {
                        assert!(err.is_full(), "drop_newest refuses as Full");
                        assert_eq!(err.into_inner(), msg, "the refused message comes back");
                        1
                    }
                })
            })
            .collect();
        drop(tx);
        let mut received = u64::from(rx.try_recv().is_ok());
        let refused: u64 = senders.into_iter().map(|s| s.join().unwrap()).sum();
        while rx.try_recv().is_ok() {
            received += 1;
        }
        assert_eq!(received + refused, 2, "a message was lost");
        let stats = rx.stats();
        assert_eq!(stats.dropped_newest, refused);
        assert_eq!(stats.full_events, refused);
        assert_eq!(stats.sent, received);
        assert_eq!(stats.received, received);
    });
}

/// Two `drop_oldest` sends into a one-slot channel already holding one message, while the
/// receiver takes one: every message is received or counted as evicted, never both, and the
/// queue never holds more than its slot.
#[test]
fn loom_drop_oldest_accounting() {
    crate::barrier::loom_modes::model(|| {
        LONGEST.store(0, Relaxed);
        let (tx, mut rx) = channel(1, OverflowPolicy::DropOldest);
        tx.try_send(0).unwrap();
        let senders: Vec<_> = [1u32, 2]
            .into_iter()
            .map(|msg| {
                let tx = tx.clone();
                thread::spawn(move || tx.send_blocking(msg).unwrap())
            })
            .collect();
        drop(tx);
        let mut received = Vec::new();
        received.extend(rx.try_recv().ok());
        for sender in senders {
            sender.join().unwrap();
        }
        while let Ok(msg) = rx.try_recv() {
            received.push(msg);
        }
        let evicted = 3 - received.len() as u64;
        let stats = rx.stats();
        assert_eq!(stats.evicted, evicted, "received {received:?}");
        assert_eq!(stats.sent, 3);
        assert_eq!(stats.received, received.len() as u64);
        assert!(!received.is_empty(), "the last message sent always stays");
        assert!(LONGEST.load(Relaxed) <= 1, "the queue overfilled");
    });
}

/// A waker that records that it ran.
struct Flag(AtomicBool);

impl Flag {
    /// A fresh flag and a waker that sets it.
    fn waker() -> (Arc<Flag>, Waker) {
        let flag = Arc::new(Flag(AtomicBool::new(false)));
        let waker = Waker::from(Arc::clone(&flag));
        (flag, waker)
    }
}

impl Wake for Flag {
    fn wake(self: Arc<Self>) {
        self.0.store(true, SeqCst);
    }
}

/// The receiver's waiting-flag handshake: it polls an empty channel (register, set `waiting`,
/// fence, re-check) while a sender pushes (push, fence, read `waiting`, wake). If the poll is
/// left pending, the push must have woken it: no lost wake-up.
#[test]
fn loom_receiver_wait_is_never_lost() {
    receiver_wait_is_never_lost(LoomQueue);
}

/// The same handshake on a queue whose lock orders it, with no barrier on either side.
#[test]
fn loom_receiver_wait_is_never_lost_on_a_locked_queue() {
    receiver_wait_is_never_lost(LockedQueue);
}

fn receiver_wait_is_never_lost<Q: TryQueue>(queue: Q) {
    crate::barrier::loom_modes::model(move || {
        let (tx, mut rx) = ChannelBuilder::new(Notified(queue.clone()), "loom.wait", 1)
            .build::<u32>()
            .unwrap();
        let sender = thread::spawn(move || {
            tx.try_send(7).unwrap();
            // Keep the channel open: a closing sender also wakes, which would hide a lost
            // wake-up of the push.
            tx
        });
        let (flag, waker) = Flag::waker();
        let mut cx = Context::from_waker(&waker);
        let polled = Pin::new(&mut rx).poll_next(&mut cx);
        let tx = sender.join().unwrap();
        match polled {
            Poll::Ready(msg) => assert_eq!(msg, Some(7)),
            Poll::Pending => {
                assert!(
                    flag.0.load(SeqCst),
                    "the push never woke the waiting receiver"
                );
                assert_eq!(rx.try_recv(), Ok(7));
            }
        }
        drop(tx);
    });
}

/// Only the push that clears the receiver's waiting flag wakes it (later pushes read it clear
/// and wake nothing): two senders push one message each while the receiver takes two, waiting
/// whenever it finds the channel empty, until its waker runs. A wait that no push woke spins
/// forever, and loom fails the model.
#[test]
fn loom_every_receiver_wait_is_woken_by_one_of_two_pushes() {
    every_receiver_wait_is_woken(LoomQueue);
}

/// The same on a queue whose lock orders the handshake.
#[test]
fn loom_every_receiver_wait_is_woken_by_one_of_two_pushes_on_a_locked_queue() {
    every_receiver_wait_is_woken(LockedQueue);
}

fn every_receiver_wait_is_woken<Q: TryQueue>(queue: Q) {
    crate::barrier::loom_modes::model(move || {
        let (tx, mut rx) = ChannelBuilder::new(Notified(queue.clone()), "loom.two_pushes", 2)
            .build::<u32>()
            .unwrap();
        let senders: Vec<_> = [1, 2]
            .into_iter()
            .map(|msg| {
                let tx = tx.clone();
                // Each keeps its sender: a closing sender also wakes the receiver, which would
                // hide a lost wake-up of a push.
                thread::spawn(move || {
                    tx.try_send(msg).unwrap();
                    tx
                })
            })
            .collect();
        let mut taken = Vec::new();
        while taken.len() < 2 {
            let (flag, waker) = Flag::waker();
            let mut cx = Context::from_waker(&waker);
            loop {
                match Pin::new(&mut rx).poll_next(&mut cx) {
                    Poll::Ready(msg) => {
                        taken.push(msg.unwrap());
                        break;
                    }
                    Poll::Pending => {
                        while !flag.0.load(SeqCst) {
                            thread::yield_now();
                        }
                    }
                }
            }
        }
        taken.sort_unstable();
        assert_eq!(taken, [1, 2]);
        let kept: Vec<_> = senders.into_iter().map(|s| s.join().unwrap()).collect();
        drop((tx, kept));
    });
}

/// The waiting senders' handshake on a queue whose lock orders it: a send finds a channel of
/// one full and waits (register, re-check) while the receiver pops (pop, read the count of
/// waiters, wake). If the send is left pending, the pop must have woken it.
#[test]
fn loom_sender_wait_is_never_lost_on_a_locked_queue() {
    crate::barrier::loom_modes::model(|| {
        let (tx, mut rx) = ChannelBuilder::new(Notified(LockedQueue), "loom.send_wait", 1)
            .build::<u32>()
            .unwrap();
        tx.try_send(1).unwrap();
        let receiver = thread::spawn(move || {
            let first = rx.try_recv();
            (first, rx)
        });
        let (flag, waker) = Flag::waker();
        let mut cx = Context::from_waker(&waker);
        let mut send = std::pin::pin!(tx.send(2));
        let polled = send.as_mut().poll(&mut cx);
        let (first, mut rx) = receiver.join().unwrap();
        assert_eq!(first, Ok(1), "the queue held 1");
        if polled.is_pending() {
            assert!(flag.0.load(SeqCst), "the pop never woke the waiting send");
            assert!(matches!(send.as_mut().poll(&mut cx), Poll::Ready(Ok(()))));
        }
        assert_eq!(rx.try_recv(), Ok(2));
    });
}

/// A queue whose every push and pop decides under its lock, as flume's do: the adaptor then
/// runs no barrier for its wake-up checks ([`TryQueue::LOCKED`]), and closes it exactly itself.
#[derive(Debug, Clone, Copy, Default)]
struct LockedQueue;

impl TryQueue for LockedQueue {
    type Tx<T: Send + 'static> = End<T>;
    type Rx<T: Send + 'static> = End<T>;

    const NAME: &'static str = "loom_locked";
    const LOCKED: bool = true;

    fn bounded<T: Send + 'static>(capacity: usize) -> (End<T>, End<T>) {
        LoomQueue::bounded(capacity)
    }

    fn push<T: Send + 'static>(tx: &End<T>, msg: T) -> Result<(), TrySendError<T>> {
        let mut items = tx.0.items.lock().unwrap();
        if items.len() >= tx.0.capacity {
            return Err(TrySendError::Full(msg));
        }
        items.push_back(msg);
        Ok(())
    }

    fn pop<T: Send + 'static>(rx: &End<T>) -> Option<T> {
        rx.0.items.lock().unwrap().pop_front()
    }

    fn len<T: Send + 'static>(rx: &End<T>) -> usize {
        rx.0.items.lock().unwrap().len()
    }
}

/// [`LoomQueue`] without a close of its own: the adaptor announces every push and makes close
/// exact itself, as it does for flume and crossbeam (`in_flight.rs`).
#[derive(Debug, Clone, Copy, Default)]
struct AnnouncedQueue;

impl TryQueue for AnnouncedQueue {
    type Tx<T: Send + 'static> = End<T>;
    type Rx<T: Send + 'static> = End<T>;

    const NAME: &'static str = "loom_announced";

    fn bounded<T: Send + 'static>(capacity: usize) -> (End<T>, End<T>) {
        LoomQueue::bounded(capacity)
    }

    fn push<T: Send + 'static>(tx: &End<T>, msg: T) -> Result<(), TrySendError<T>> {
        LoomQueue::push(tx, msg)
    }

    fn pop<T: Send + 'static>(rx: &End<T>) -> Option<T> {
        LoomQueue::pop(rx)
    }

    fn len<T: Send + 'static>(rx: &End<T>) -> usize {
        LoomQueue::len(rx)
    }
}

/// The receiver closes a full channel of one and drains it while a sender's push is in
/// flight (announced). When the receiver finds the queue empty with the push still announced,
/// it waits for it (a `Stream` poll left pending): then the push must wake it, whether it
/// lands (before the close took effect) or is refused (full, or closed) — the refused push's
/// wake-up is `Signals::refused`. Afterwards the receiver gets the message exactly when the
/// sender was told `Ok`, then `Closed`.
#[test]
fn loom_a_push_in_flight_at_close_wakes_the_receiver_waiting_for_it() {
    push_in_flight_at_close_wakes_the_receiver(AnnouncedQueue);
}

/// The same on a queue whose lock orders the wake-up checks: the refused push's wake-up still
/// runs the closed flag's barrier (no lock orders a push that was never tried).
#[test]
fn loom_a_push_in_flight_at_close_wakes_the_receiver_on_a_locked_queue() {
    push_in_flight_at_close_wakes_the_receiver(LockedQueue);
}

fn push_in_flight_at_close_wakes_the_receiver<Q: TryQueue>(queue: Q) {
    crate::barrier::loom_modes::model(move || {
        let (tx, mut rx) = ChannelBuilder::new(Notified(queue.clone()), "loom.announced", 1)
            .build::<u32>()
            .unwrap();
        tx.try_send(1).unwrap();
        let sender = thread::spawn(move || {
            let accepted = tx.try_send(2).is_ok();
            // Keep the channel open: the last sender's drop also wakes the receiver, which
            // would hide a lost wake-up of the push.
            (accepted, tx)
        });
        rx.close();
        let (flag, waker) = Flag::waker();
        let mut cx = Context::from_waker(&waker);
        let mut received = Vec::new();
        let mut pending = false;
        loop {
            match Pin::new(&mut rx).poll_next(&mut cx) {
                Poll::Ready(Some(msg)) => received.push(msg),
                Poll::Ready(None) => break,
                Poll::Pending => {
                    pending = true;
                    break;
                }
            }
        }
        let (accepted, tx) = sender.join().unwrap();
        if pending {
            assert!(
                flag.0.load(SeqCst),
                "the push in flight never woke the receiver waiting for it"
            );
            loop {
                match rx.try_recv() {
                    Ok(msg) => received.push(msg),
                    Err(TryRecvError::Closed) => break,
                    Err(TryRecvError::Empty) => panic!("empty after close with no push in flight"),
                }
            }
        }
        let expected: Vec<u32> = if accepted { vec![1, 2] } else { vec![1] };
        assert_eq!(received, expected, "sender told accepted = {accepted}");
        drop(tx);
    });
}

/// A weak sender's upgrade racing the last sender's drop, the receiver already gone: once the
/// channel reads gone its counters are final (the watcher reports and forgets it), so an
/// upgrade after that must fail, and a sender it returns keeps the channel from reading gone.
#[test]
fn loom_an_upgrade_never_revives_a_gone_channel() {
    crate::barrier::loom_modes::model(|| {
        let (tx, rx) = channel(1, OverflowPolicy::Block);
        let weak = tx.downgrade();
        let handle = tx.handle();
        drop(rx);
        let dropper = loom::thread::spawn(move || drop(tx));
        let was_gone = handle.is_gone();
        let upgraded = weak.upgrade();
        if upgraded.is_some() {
            assert!(!was_gone, "an upgrade revived a channel that had read gone");
            assert!(
                !handle.is_gone(),
                "the channel read gone while a sender existed"
            );
        }
        drop(upgraded);
        dropper.join().unwrap();
        assert!(handle.is_gone());
        assert!(weak.upgrade().is_none());
    });
}
