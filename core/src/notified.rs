//! Waiting, closing and timeouts for backends that only offer non-waiting operations.
//!
//! flume, crossbeam-channel and async-channel are all used here as non-waiting queues
//! ([`TryQueue`]); this one adaptor, [`Notified`], adds everything the contract needs on top, the
//! same way for all three:
//!
//! - **Waiting** (async and blocking): try; on full, register in the channel's queue of
//!   waiting senders (`WaitingSenders`); try again; then sleep until a pop wakes this sender (or
//!   until the deadline). The re-check after registering is what makes it lose no wake-up (without it, 8
//!   of 20 crossbeam runs hung; a loom model checks the handshake). Senders are woken one per
//!   freed slot, longest-waiting first, and a pop takes the queue's lock only when some sender
//!   not yet woken is waiting. There is only ever one receiver, so an empty channel needs no
//!   wait list: the receiver registers its waker (a task's, or one cached per thread that
//!   unparks it) in an atomic-waker `AtomicWaker`, re-checks, and sleeps; a sender wakes it without taking
//!   any lock (flume async MPSC at capacity 1 went from 0.89x to 1.33x of raw flume's
//!   throughput with this, against an event-listener `Event` that locks on listen, notify and
//!   drop).
//! - **Fairness: no hand-off.** A pop wakes the longest-waiting sender, but does not reserve
//!   the freed slot for it: the woken sender retries its push and may find that a newcomer's
//!   `try_send` took the slot first (then it waits again, at the back). This is what
//!   crossbeam-channel does in its own blocking sends, and what keeps a pop free of locks when
//!   nobody waits; the cost is that a sender under constant contention can wait longer than
//!   FIFO order would make it. (tokio's own semaphore does hand freed permits to waiters in
//!   order: the tokio backend keeps that; a dropped send gives its permit back.) flume hands
//!   off the message itself: a waiting send leaves it in a hook, and the pop that frees a slot
//!   moves it into the queue (`pull_pending`), so the send is done before its future runs
//!   again. The adaptor cannot do that under the cancel contract (a `send` future owns its
//!   message, and dropping it drops the message, never counted in `sent`: the conformance
//!   suite's `cancelled_send_is_never_counted`): a future dropped after the pop would already
//!   have delivered. That hand-off is why raw flume is faster at capacity 1 in async, where the
//!   adaptor costs one more task switch per message (`benches/README.md`).
//! - **Notifying only when someone waits**: senders publish a count of waiters not yet woken,
//!   the receiver a waiting flag; after a push (pop) the other side's is read behind a
//!   barrier, and only a waiting side is woken (notifying on every operation took 1.43x the time
//!   of doing it only when someone waits, in an early crossbeam measurement). The barrier is a
//!   [`barrier::WaitFence`](crate::barrier): where `membarrier` works, a push or pop pays a
//!   compiler fence and each wait the heavy half, until waits come so often (an async hand-off
//!   on a tiny channel) that it turns to a `SeqCst` fence on both sides.
//!   On a queue whose every push and pop locks one mutex ([`TryQueue::LOCKED`]: flume),
//!   that lock already orders each check against the wait it looks for, so neither side runs
//!   a barrier, and frequent waits never turn every push and pop into a `SeqCst` fence: flume
//!   async SPSC at capacity 1024 went from 0.62–0.71x to 0.79–0.84x of raw flume's throughput
//!   (medians of three interleaved runs each, `benches/README.md`).
//! - **Timeouts that give the message back**: the message never leaves the caller's hands until a
//!   non-waiting push succeeds, so a timed-out send returns it — unlike racing flume's or
//!   async-channel's own send future against a timer, which lost messages (and with flume,
//!   sometimes delivered one reported as timed out).
//! - **Close, exactly.** flume and crossbeam have no close: the adaptor keeps a closed flag and
//!   makes it exact by announcing every push (the protocol is in `in_flight.rs`): the sending
//!   thread writes the channel's id into its own padded slot, runs a barrier's light half,
//!   reads the flag, pushes, and clears the slot; the receiver, finding the queue empty after
//!   `close` while senders remain, runs the heavy half and reports `Closed` only if no slot
//!   names the channel and a re-pop finds nothing. So a send that returned `Ok` is always
//!   drained before `Closed`, and nothing arrives after it. Cost per send: the light half (a
//!   compiler fence where `membarrier` works, else a `SeqCst` fence) and two stores to a line
//!   only that thread writes (no read-modify-write); the scan runs only on an empty queue
//!   after `close`. `drop_oldest` keeps one announcement across its evictions and its push. A
//!   queue whose own close is exact (async-channel: close and push claim the tail atomically)
//!   sets [`TryQueue::EXACT_CLOSE`] and announces nothing. The adaptor keeps a clone of the
//!   queue's receiving end, so depth, eviction (`drop_oldest`) and counting stranded messages
//!   all work from the sending side.
//! - **Retrying before parking** (blocking paths only): as the channel's
//!   [`WaitStrategy`] says, through [`crate::runtime::block_with`] — by default crossbeam's
//!   short backoff, which catches hand-offs of a microsecond or so without the two context
//!   switches a park costs, and costs a blocked producer almost nothing while it waits. A
//!   push that wakes the receiver, or a pop that wakes a sender, tells its side's
//!   [`WaitHistory`] that an answer is coming: the next wait there retries. On a
//!   [`TryQueue::LOCKED`] queue with room for more than one message and one sender, both
//!   sides park at once instead (each retry there takes the lock the other side needs).
//! - **Wake-ups at the end**: the last sender going away, or the receiver closing, wakes everyone
//!   waiting on the other side.

use std::future::poll_fn;
use std::sync::Arc;
use std::sync::atomic::Ordering::{AcqRel, Acquire, Relaxed, Release, SeqCst};
use std::task::{Context, Poll, Waker};
use std::thread;
use std::time::Instant;

use crossbeam_utils::CachePadded;

use crate::barrier::WaitFence;
use crate::capacity::Capacity;
use crate::channel::{
    BoundedChannel, DepthProbe, Forced, Occupancy, RawReceiver, RawSender, settle_recv, settle_send,
};
use crate::error::{RecvTimeoutError, SendTimeoutError, TryRecvError, TrySendError};
use crate::in_flight;
use crate::loom::{AtomicUsize, AtomicWaker, fence};
use crate::policy::WaitStrategy;
use crate::runtime::{WaitHistory, block_with, with_thread_waker};
use crate::timer::with_deadline;
use crate::waiting_senders::WaitingSenders;

/// A bounded multi-producer multi-consumer queue used only through non-waiting operations.
/// Implemented by the flume, crossbeam and async-channel backend crates.
pub trait TryQueue: Clone + Send + Sync + 'static {
    /// The queue's sending end.
    type Tx<T: Send + 'static>: Clone + Send + Sync + 'static;
    /// The queue's receiving end; it must be cloneable (the adaptor keeps a clone).
    type Rx<T: Send + 'static>: Clone + Send + Sync + 'static;

    /// The backend's config name.
    const NAME: &'static str;

    /// The largest capacity the queue can take.
    const MAX_CAPACITY: usize = usize::MAX;

    /// Whether [`close`](Self::close) is the queue's own exact close: once it returns, every
    /// push fails with `Closed(msg)`, and a push racing it either lands before it (and is still
    /// popped) or fails. Then the adaptor announces no push (the module docs' "Close") and
    /// costs nothing per send for an exact close.
    const EXACT_CLOSE: bool = false;

    /// Whether every [`push`](Self::push) and [`pop`](Self::pop), whatever it finds (full,
    /// empty, closed), locks one mutex, the same one for every sending and receiving end,
    /// before it decides. Then that lock orders each wake-up check against the wait it looks
    /// for, and the adaptor runs no barrier for them (see the module docs). Set it only where
    /// that holds, and where nothing but these calls adds or takes messages (no push that
    /// completes another way, such as a hand-off to a waiting receiver): otherwise wake-ups
    /// are lost.
    const LOCKED: bool = false;

    /// Makes a queue of `capacity` slots (at least 1).
    fn bounded<T: Send + 'static>(capacity: usize) -> (Self::Tx<T>, Self::Rx<T>);

    /// Pushes without waiting: `Full(msg)`, or `Closed(msg)` once closed or every receiving end
    /// is gone.
    fn push<T: Send + 'static>(tx: &Self::Tx<T>, msg: T) -> Result<(), TrySendError<T>>;

    /// Pops without waiting: `None` when nothing is queued, whether or not the queue is closed
    /// or every sending end is gone (the adaptor knows both from its own flags). Still pops what
    /// is queued after [`close`](Self::close).
    fn pop<T: Send + 'static>(rx: &Self::Rx<T>) -> Option<T>;

    /// How many messages are queued.
    fn len<T: Send + 'static>(rx: &Self::Rx<T>) -> usize;

    /// Closes the queue itself; called only where [`EXACT_CLOSE`](Self::EXACT_CLOSE) is set.
    fn close<T: Send + 'static>(rx: &Self::Rx<T>) {
        let _ = rx;
    }
}

/// A [`BoundedChannel`] made from a [`TryQueue`] (see the module docs for how it waits and
/// closes). The flume, crossbeam and async-channel backends are `Notified<TheirQueue>`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Notified<Q>(pub Q);

impl<Q: TryQueue> BoundedChannel for Notified<Q> {
    type Sender<T: Send + 'static> = NotifiedSender<Q, T>;
    type Receiver<T: Send + 'static> = NotifiedReceiver<Q, T>;

    fn name(&self) -> &'static str {
        Q::NAME
    }

    fn max_capacity(&self) -> usize {
        Q::MAX_CAPACITY
    }

    fn supports_drop_oldest(&self) -> bool {
        true
    }

    fn bounded<T: Send + 'static>(
        &self,
        capacity: Capacity,
    ) -> (NotifiedSender<Q, T>, NotifiedReceiver<Q, T>) {
        let (tx, rx) = Q::bounded::<T>(capacity.get());
        let signals = Arc::new(Signals {
            lockstep_prone: Q::LOCKED && capacity.get() > 1,
            rx,
            closed: WaitFence::new(),
            senders: AtomicUsize::new(1),
            waiting_senders: WaitingSenders::new(Q::LOCKED),
            send_waits: WaitHistory::new(),
            receiver_wait: CachePadded::new(ReceiverWait {
                waiting: if Q::LOCKED {
                    WaitFence::ordered_by_lock()
                } else {
                    WaitFence::new()
                },
                waker: AtomicWaker::default(),
                history: WaitHistory::new(),
            }),
        });
        (
            NotifiedSender {
                tx,
                signals: Arc::clone(&signals),
            },
            NotifiedReceiver { signals },
        )
    }
}

/// What both ends share.
struct Signals<Q: TryQueue, T: Send + 'static> {
    /// A clone of the queue's receiving end, for receiving, depth, eviction and final counting.
    rx: Q::Rx<T>,
    /// [`CLOSED`] once the receiver's `close` (or drop, or a weak sender's `close`) ran; read
    /// after every push's announcement, behind the barrier it shares with the close scan
    /// (rare: the heavy half is the scan's).
    closed: WaitFence,
    /// Live senders; the last one to go wakes the receiver so it can see `Closed`.
    senders: AtomicUsize,
    waiting_senders: WaitingSenders,
    /// Whether blocked senders' retries end their waits (written only by waits).
    send_waits: WaitHistory,
    /// A [`TryQueue::LOCKED`] queue with room for more than one message: where a lone sender
    /// and the receiver park at once under `Backoff` (see [`Signals::strategy_for`]).
    lockstep_prone: bool,
    receiver_wait: CachePadded<ReceiverWait>,
}

/// The state of [`Signals::closed`] once closed.
const CLOSED: usize = 1;
/// The state of [`ReceiverWait::waiting`] while the receiver waits.
const WAITING: usize = 1;

/// How the one receiver waits for a message.
struct ReceiverWait {
    /// [`WAITING`] (set after registering `waker`) while the receiver waits; every push reads
    /// it, behind the barrier it shares with the receiver's registrations (or, on a
    /// [`TryQueue::LOCKED`] queue, after the queue's lock), and wakes the receiver only then.
    /// The push that finds it set clears it, and wakes: a clear flag means the receiver is not
    /// waiting, or has been woken for its current registration.
    waiting: WaitFence,
    waker: AtomicWaker,
    /// Whether the receiver's retries end its waits.
    history: WaitHistory,
}

impl<Q: TryQueue, T: Send + 'static> Signals<Q, T> {
    /// This channel's id in push announcements: the address of its shared state.
    fn id(&self) -> usize {
        std::ptr::from_ref(self).addr()
    }

    /// Runs `push(msg)` so that a racing `close` stays exact: announced, after a closed check,
    /// where the queue has no exact close of its own (see [`crate::in_flight`]). Then wakes the
    /// receiver where it waits: for the message just queued, or, once closed, for this
    /// announcement to end.
    // `inline(always)`: LLVM kept this out of line, and the call with its result repacking cost
    // more instructions than the protocol itself (callgrind, `benches/callgrind.py`).
    #[inline(always)]
    fn push_exactly<R>(
        &self,
        msg: T,
        push: impl FnOnce(T) -> Result<R, TrySendError<T>>,
    ) -> Result<R, TrySendError<T>> {
        let pushed = if Q::EXACT_CLOSE {
            push(msg)
        } else {
            in_flight::with_thread_slot(|slot| {
                in_flight::announced_push(slot, self.id(), &self.closed, msg, push)
            })
        };
        match &pushed {
            Ok(_) => self.pushed(),
            Err(_) if !Q::EXACT_CLOSE => self.refused(),
            Err(_) => {}
        }
        pushed
    }

    /// After a successful push: wake a waiting receiver, if any.
    #[inline]
    fn pushed(&self) {
        // The push that clears the flag wakes the receiver; pushes made before it runs again
        // then read the flag clear and leave the waker's line alone (each of them woke it
        // again before: two read-modify-writes on a line the receiver writes, 10% of flume
        // async SPSC 64's samples).
        if self.receiver_wait.waiting.after_operation_on(Q::LOCKED) != 0 {
            self.wake_receiver();
        }
    }

    /// A push found the receiver waiting: the one that clears the flag wakes it, and tells the
    /// senders' history. Out of line, so that the push path's code stays as short as when it
    /// only read the flag (callgrind counted 3 instructions more per push with this inlined).
    #[cold]
    #[inline(never)]
    fn wake_receiver(&self) {
        let wait = &self.receiver_wait;
        // `take`'s Acquire pairs with the receiver's Release setting the flag: its waker is
        // registered.
        if wait.waiting.take(WAITING) {
            wait.waker.wake();
            self.send_waits.woke_other_side();
        }
    }

    /// After an announced push that queued nothing: if the channel is closed, the receiver may
    /// be waiting for this announcement to end (it saw it in its scan); wake it.
    #[cold]
    fn refused(&self) {
        // Pairs with the barrier of the receiver's close scan (`pop_after_close`), which runs
        // after it sets `waiting` and before it reads the slots: either it sees this cleared
        // slot, or this sees the channel closed and the receiver waiting. The closed flag's
        // barrier, not `waiting`'s: no queue lock orders a push that was never tried.
        if self.closed.after_operation() != 0 && self.receiver_wait.waiting.state(Relaxed) != 0 {
            // Pairs with the receiver's Release setting the flag, which came after its close:
            // its waker is visible from here.
            fence(Acquire);
            self.receiver_wait.waker.wake();
        }
    }

    /// The strategy a blocking wait on this channel follows when the channel's is `asked`:
    /// `Park` for `Backoff` on a lockstep-prone queue while one sender is left (see
    /// [`WaitStrategy::Backoff`]: the retries of a lone sender and the receiver take the lock
    /// the other side needs, where parking lets each side work through the queue alone; with
    /// more senders, or room for one message only, the retries pay). The count is a hint: a
    /// sender cloned or dropped meanwhile changes only how this one wait waits.
    fn strategy_for(&self, asked: WaitStrategy) -> WaitStrategy {
        if asked == WaitStrategy::Backoff && self.lockstep_prone && self.senders.load(Relaxed) == 1
        {
            WaitStrategy::Park
        } else {
            asked
        }
    }

    /// After a successful pop: wake a waiting sender, if any.
    #[inline]
    fn popped(&self) {
        self.waiting_senders
            .notify_one(Q::LOCKED, || self.receiver_wait.history.woke_other_side());
    }

    #[inline(always)]
    fn push(&self, tx: &Q::Tx<T>, msg: T) -> Result<(), TrySendError<T>> {
        self.push_exactly(msg, |msg| Q::push(tx, msg))
    }

    /// `drop_oldest`: evicts from the front until `msg` fits, all inside one announcement, so a
    /// racing close never leaves an eviction without the push it made room for.
    fn force_push(&self, tx: &Q::Tx<T>, msg: T) -> Forced<T> {
        let mut evicted = 0;
        let outcome = self.push_exactly(msg, |mut msg| {
            let mut first = None;
            loop {
                if let Some(old) = Q::pop(&self.rx) {
                    evicted += 1;
                    first.get_or_insert(old);
                }
                msg = match Q::push(tx, msg) {
                    Ok(()) => return Ok(first),
                    Err(TrySendError::Full(msg)) => msg,
                    Err(closed) => return Err(closed),
                };
            }
        });
        Forced { outcome, evicted }
    }

    #[inline(always)]
    fn pop(&self) -> Result<T, TryRecvError> {
        self.pop_then(|popped| popped)
    }

    /// `then(self.pop())`, with `then` in each path (see `try_recv_then`).
    #[inline(always)]
    fn pop_then<R>(&self, then: impl FnOnce(Result<T, TryRecvError>) -> R) -> R {
        match Q::pop(&self.rx) {
            Some(msg) => {
                self.popped();
                then(Ok(msg))
            }
            None => then(self.pop_empty()),
        }
    }

    /// The queue was empty: `Closed` only if closed, no push into this channel is still
    /// announced, and a re-pop finds nothing.
    #[inline(never)]
    fn pop_empty(&self) -> Result<T, TryRecvError> {
        let result = self.pop_if_closed();
        if result.is_ok() {
            self.popped();
        }
        result
    }

    /// [`pop_empty`](Self::pop_empty) less the wake-up.
    fn pop_if_closed(&self) -> Result<T, TryRecvError> {
        if self.closed.state(Relaxed) != 0 {
            // Closed (by the receiver, or a weak sender's `close`): wait for pushes that passed
            // the closed check before it to land. With no sender left none can be in flight
            // (each cleared its announcement before its count went), so no scan, and no heavy
            // barrier on every drop of a drained channel.
            if !Q::EXACT_CLOSE && self.senders.load(Acquire) != 0 {
                return in_flight::with_all_slots(|slots| {
                    in_flight::pop_after_close(
                        slots.iter().copied(),
                        self.id(),
                        &self.closed,
                        || Q::pop(&self.rx),
                        || self.receiver_wait.waker.wake(),
                    )
                });
            }
        } else if self.senders.load(SeqCst) != 0 {
            return Err(TryRecvError::Empty);
        }
        // Closed, or no sender left: a push that finished before that is visible now.
        Q::pop(&self.rx).ok_or(TryRecvError::Closed)
    }

    fn is_closed(&self) -> bool {
        self.closed.state(SeqCst) != 0 || self.senders.load(SeqCst) == 0
    }

    fn close(&self) {
        if Q::EXACT_CLOSE {
            Q::close(&self.rx);
        }
        self.closed.set(CLOSED, SeqCst);
        // Not needed by the C++ rules for `SeqCst` fences (the close scan's own barrier pairs
        // with a refused push's), but loom's `SeqCst` support is incomplete (tokio-rs/loom#180):
        // without it the loom model of a push in flight at close on a lock-ordered queue fails.
        // Close is rare: nothing per message.
        fence(SeqCst);
        self.waiting_senders.notify_all();
        // A receiver waiting on an empty queue sees `Closed` now (the close may come from a
        // weak sender, with live senders that send nothing more).
        self.receiver_wait.waker.wake();
    }
}

/// The sending end of a [`Notified`] channel.
pub struct NotifiedSender<Q: TryQueue, T: Send + 'static> {
    tx: Q::Tx<T>,
    signals: Arc<Signals<Q, T>>,
}

impl<Q: TryQueue, T: Send + 'static> NotifiedSender<Q, T> {
    /// One non-waiting push, as [`settle_send`] reads it: `Err(msg)` means full, wait.
    fn try_push(&self, msg: T) -> Result<Result<(), SendTimeoutError<T>>, T> {
        settle_send(self.signals.push(&self.tx, msg))
    }
}

impl<Q: TryQueue, T: Send + 'static> NotifiedSender<Q, T> {
    /// The parking part of a blocking send: register, re-check, park until a pop wakes this
    /// sender (or `deadline`), try again.
    fn park_for_room(
        &self,
        mut msg: T,
        deadline: Option<Instant>,
    ) -> Result<(), SendTimeoutError<T>> {
        with_thread_waker(|waker| {
            loop {
                let mut wait = self.signals.waiting_senders.register(waker);
                msg = match self.try_push(msg) {
                    Ok(settled) => return settled,
                    Err(msg) => msg,
                };
                // Parking may end early (a stray unpark): the loop re-checks.
                while !wait.is_notified() {
                    if !park_until(deadline) {
                        return Err(SendTimeoutError::Timeout(msg));
                    }
                }
                drop(wait);
                msg = match self.try_push(msg) {
                    Ok(settled) => return settled,
                    Err(msg) => msg,
                };
            }
        })
    }
}

/// Parks the thread until it is unparked or `deadline` passes; `false` once it has passed.
fn park_until(deadline: Option<Instant>) -> bool {
    match deadline {
        None => thread::park(),
        Some(deadline) => {
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            thread::park_timeout(deadline - now);
        }
    }
    true
}

impl<Q: TryQueue, T: Send + 'static> Clone for NotifiedSender<Q, T> {
    fn clone(&self) -> Self {
        self.signals.senders.fetch_add(1, Relaxed);
        NotifiedSender {
            tx: self.tx.clone(),
            signals: Arc::clone(&self.signals),
        }
    }
}

impl<Q: TryQueue, T: Send + 'static> Drop for NotifiedSender<Q, T> {
    fn drop(&mut self) {
        if self.signals.senders.fetch_sub(1, AcqRel) == 1 {
            self.signals.receiver_wait.waker.wake();
        }
    }
}

/// A weak sending end of a [`Notified`] channel: it keeps the queue's memory but is not
/// counted among the senders, which is all that closes this adaptor's channel.
pub struct NotifiedWeakSender<Q: TryQueue, T: Send + 'static> {
    tx: Q::Tx<T>,
    signals: Arc<Signals<Q, T>>,
}

impl<Q: TryQueue, T: Send + 'static> Clone for NotifiedWeakSender<Q, T> {
    fn clone(&self) -> Self {
        NotifiedWeakSender {
            tx: self.tx.clone(),
            signals: Arc::clone(&self.signals),
        }
    }
}

impl<Q: TryQueue, T: Send + 'static> RawSender<T> for NotifiedSender<Q, T> {
    type Weak = NotifiedWeakSender<Q, T>;

    fn downgrade(&self) -> NotifiedWeakSender<Q, T> {
        NotifiedWeakSender {
            tx: self.tx.clone(),
            signals: Arc::clone(&self.signals),
        }
    }

    fn upgrade(weak: &NotifiedWeakSender<Q, T>) -> Option<Self> {
        // Count in only while some sender is still counted: once the count has reached 0 the
        // receiver may already have seen `Closed`.
        let senders = &weak.signals.senders;
        let mut count = senders.load(Acquire);
        loop {
            if count == 0 {
                return None;
            }
            match senders.compare_exchange_weak(count, count + 1, AcqRel, Acquire) {
                Ok(_) => break,
                Err(now) => count = now,
            }
        }
        Some(NotifiedSender {
            tx: weak.tx.clone(),
            signals: Arc::clone(&weak.signals),
        })
    }

    fn close_weak(weak: &NotifiedWeakSender<Q, T>) -> bool {
        weak.signals.close();
        true
    }

    #[inline]
    fn try_send(&self, msg: T) -> Result<(), TrySendError<T>> {
        self.signals.push(&self.tx, msg)
    }

    async fn send_until(
        &self,
        msg: T,
        deadline: Option<Instant>,
    ) -> Result<(), SendTimeoutError<T>> {
        // The caller's non-waiting try has just failed: register at once (a try first took
        // flume's lock once more on every async wait).
        let waiting = &self.signals.waiting_senders;
        let mut msg = msg;
        loop {
            let mut wait = poll_fn(|cx| Poll::Ready(waiting.register(cx.waker()))).await;
            msg = match self.try_push(msg) {
                Ok(settled) => return settled,
                Err(msg) => msg,
            };
            let woken = poll_fn(|cx| {
                if !wait.is_notified() {
                    wait.update_waker(cx.waker());
                    if !wait.is_notified() {
                        return Poll::Pending;
                    }
                }
                Poll::Ready(())
            });
            let woken = match deadline {
                None => {
                    woken.await;
                    true
                }
                Some(deadline) => with_deadline(woken, deadline).await.is_some(),
            };
            if !woken {
                return Err(SendTimeoutError::Timeout(msg));
            }
            drop(wait);
            msg = match self.try_push(msg) {
                Ok(settled) => return settled,
                Err(msg) => msg,
            };
        }
    }

    fn send_blocking_until(
        &self,
        msg: T,
        deadline: Option<Instant>,
        strategy: WaitStrategy,
    ) -> Result<(), SendTimeoutError<T>> {
        block_with(
            self.signals.strategy_for(strategy),
            &self.signals.send_waits,
            msg,
            deadline,
            |msg| self.try_push(msg),
            |msg| self.park_for_room(msg, deadline),
        )
        .unwrap_or_else(|msg| Err(SendTimeoutError::WouldDeadlock(msg)))
    }

    fn force_send(&self, msg: T) -> Forced<T> {
        self.signals.force_push(&self.tx, msg)
    }

    fn discard_queued(&self) -> usize {
        std::iter::from_fn(|| Q::pop(&self.signals.rx)).count()
    }

    fn len(&self) -> usize {
        Q::len(&self.signals.rx)
    }

    fn is_closed(&self) -> bool {
        self.signals.closed.state(Acquire) != 0
    }

    fn depth_probe(&self) -> DepthProbe {
        // The shared state holds a clone of the queue's receiving end, not a sending one, and
        // this adaptor closes by its own flag: a probe holding it a moment keeps nothing open.
        let signals = Arc::downgrade(&self.signals);
        DepthProbe::new(move || {
            let signals = signals.upgrade()?;
            Some(Occupancy::exact(Q::len(&signals.rx)))
        })
    }
}

/// The receiving end of a [`Notified`] channel.
pub struct NotifiedReceiver<Q: TryQueue, T: Send + 'static> {
    signals: Arc<Signals<Q, T>>,
}

impl<Q: TryQueue, T: Send + 'static> NotifiedReceiver<Q, T> {
    /// Pops; if the channel is empty, registers `waker` to be woken by the next push and pops
    /// once more, so that a push between the two pops is never missed.
    fn poll_pop(&self, waker: &Waker) -> Poll<Result<T, RecvTimeoutError>> {
        match settle_recv(self.signals.pop()) {
            Some(result) => self.received(result),
            None => self.register_then_pop(waker),
        }
    }

    /// The second half of [`poll_pop`](Self::poll_pop), for a caller whose pop has just found
    /// the channel empty: registers `waker`, then pops once more.
    fn register_then_pop(&self, waker: &Waker) -> Poll<Result<T, RecvTimeoutError>> {
        let wait = &self.signals.receiver_wait;
        wait.waker.register(waker);
        wait.waiting.set(WAITING, Release);
        // Pairs with `pushed`'s read of `waiting` (behind its barrier, or ordered by the queue's
        // lock: `TryQueue::LOCKED`): either this pop sees the push, or the sender sees
        // `waiting` and wakes the waker registered above. Unprotected (a refused `membarrier`):
        // wake ourselves, so the wait checks once more.
        if !wait.waiting.after_registration() {
            waker.wake_by_ref();
        }
        match settle_recv(self.signals.pop()) {
            Some(result) => self.received(result),
            None => Poll::Pending,
        }
    }

    /// A wait's pop settled: senders stop waking the receiver.
    fn received(&self, result: Result<T, RecvTimeoutError>) -> Poll<Result<T, RecvTimeoutError>> {
        stop_waiting(&self.signals.receiver_wait.waiting);
        Poll::Ready(result)
    }

    /// The waiting part of an async receive whose pop has just found the channel empty:
    /// register, re-check, sleep until a push wakes the receiver (or `deadline`); each later
    /// poll pops first. `with_deadline` arms no timer if the re-check succeeds.
    async fn wait_for_message(&self, deadline: Option<Instant>) -> Result<T, RecvTimeoutError> {
        let _stop = StopWaitingOnDrop(&self.signals.receiver_wait.waiting);
        let mut first_poll = true;
        let wait = poll_fn(|cx| {
            if std::mem::take(&mut first_poll) {
                self.register_then_pop(cx.waker())
            } else {
                self.poll_pop(cx.waker())
            }
        });
        match deadline {
            None => wait.await,
            Some(deadline) => with_deadline(wait, deadline)
                .await
                .unwrap_or(Err(RecvTimeoutError::Timeout)),
        }
    }

    /// The parking part of a blocking receive: register, re-check, park until a push wakes the
    /// receiver (or `deadline`).
    fn park_for_message(&self, deadline: Option<Instant>) -> Result<T, RecvTimeoutError> {
        let _stop = StopWaitingOnDrop(&self.signals.receiver_wait.waiting);
        with_thread_waker(|waker| {
            loop {
                if let Poll::Ready(result) = self.poll_pop(waker) {
                    return result;
                }
                // Parking may end early (a stray unpark): the loop re-checks.
                if !park_until(deadline) {
                    return Err(RecvTimeoutError::Timeout);
                }
            }
        })
    }
}

/// Ends a receiver's wait: senders stop waking it.
#[inline]
fn stop_waiting(waiting: &WaitFence) {
    // Only write when set: every push reads the word.
    if waiting.state(Relaxed) != 0 {
        waiting.clear(WAITING, Relaxed);
    }
}

/// Ends the wait when a waiting receive ends in any way (also when its future is dropped).
struct StopWaitingOnDrop<'a>(&'a WaitFence);

impl Drop for StopWaitingOnDrop<'_> {
    fn drop(&mut self) {
        stop_waiting(self.0);
    }
}

impl<Q: TryQueue, T: Send + 'static> Drop for NotifiedReceiver<Q, T> {
    fn drop(&mut self) {
        self.signals.close();
    }
}

impl<Q: TryQueue, T: Send + 'static> RawReceiver<T> for NotifiedReceiver<Q, T> {
    #[inline]
    fn try_recv(&mut self) -> Result<T, TryRecvError> {
        self.signals.pop()
    }

    /// `then` runs in each of the pop's two paths: merged first, the two results met in
    /// memory (the empty path's is returned through it), written on every receive.
    #[inline(always)]
    fn try_recv_then<R>(&mut self, then: impl FnOnce(Result<T, TryRecvError>) -> R) -> R {
        self.signals.pop_then(then)
    }

    async fn recv_until(&mut self, deadline: Option<Instant>) -> Result<T, RecvTimeoutError> {
        // A receive that finds a message completes here, in a future with one waiting state
        // (callgrind: with the wait inline, its poll closure, guard and drop glue cost 54
        // instructions of every async receive).
        match settle_recv(self.signals.pop()) {
            Some(result) => result,
            None => self.wait_for_message(deadline).await,
        }
    }

    fn recv_blocking_until(
        &mut self,
        deadline: Option<Instant>,
        strategy: WaitStrategy,
    ) -> Result<T, RecvTimeoutError> {
        if let Some(result) = settle_recv(self.signals.pop()) {
            return result;
        }
        block_with(
            self.signals.strategy_for(strategy),
            &self.signals.receiver_wait.history,
            (),
            deadline,
            |()| settle_recv(self.signals.pop()).ok_or(()),
            |()| self.park_for_message(deadline),
        )
        .unwrap_or(Err(RecvTimeoutError::WouldDeadlock))
    }

    fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<T>> {
        // Left pending, this keeps `waiting` set (and its waker registered) until the wrapper,
        // about to receive another way, calls `end_poll_wait`.
        self.poll_pop(cx.waker()).map(Result::ok)
    }

    /// Ends the wait of a `Stream` poll that was left pending: otherwise every push would go on
    /// waking.
    fn end_poll_wait(&mut self) {
        stop_waiting(&self.signals.receiver_wait.waiting);
    }

    fn close(&mut self) {
        self.signals.close();
    }

    fn is_closed(&self) -> bool {
        self.signals.is_closed()
    }

    fn len(&self) -> usize {
        Q::len(&self.signals.rx)
    }
}

#[cfg(all(test, not(boundflow_loom)))]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use std::collections::VecDeque;
    use std::pin::pin;
    use std::sync::atomic::AtomicUsize;
    use std::sync::atomic::Ordering::Relaxed;
    use std::sync::{Arc, Mutex, PoisonError};
    use std::task::{Context, Poll, Waker};
    use std::thread;

    use super::{Notified, TryQueue};
    use crate::channel::{BoundedChannel, RawReceiver, RawSender};
    use crate::error::TrySendError;
    use crate::policy::WaitStrategy;
    use crate::{Capacity, barrier};

    /// A locked `VecDeque` of one capacity: the smallest honest `TryQueue`.
    #[derive(Clone, Copy, Debug, Default)]
    struct Locked;

    #[derive(Debug)]
    struct Queue<T> {
        items: Mutex<VecDeque<T>>,
        capacity: usize,
        /// Every push tried, for the tests that count them.
        pushes: AtomicUsize,
    }

    impl TryQueue for Locked {
        type Tx<T: Send + 'static> = Arc<Queue<T>>;
        type Rx<T: Send + 'static> = Arc<Queue<T>>;
        const NAME: &'static str = "locked";

        fn bounded<T: Send + 'static>(capacity: usize) -> (Arc<Queue<T>>, Arc<Queue<T>>) {
            let queue = Arc::new(Queue {
                items: Mutex::new(VecDeque::with_capacity(capacity)),
                capacity,
                pushes: AtomicUsize::new(0),
            });
            (Arc::clone(&queue), queue)
        }

        fn push<T: Send + 'static>(tx: &Arc<Queue<T>>, msg: T) -> Result<(), TrySendError<T>> {
            tx.pushes.fetch_add(1, Relaxed);
            let mut items = tx.items.lock().unwrap_or_else(PoisonError::into_inner);
            if items.len() == tx.capacity {
                return Err(TrySendError::Full(msg));
            }
            items.push_back(msg);
            Ok(())
        }

        fn pop<T: Send + 'static>(rx: &Arc<Queue<T>>) -> Option<T> {
            rx.items
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .pop_front()
        }

        fn len<T: Send + 'static>(rx: &Arc<Queue<T>>) -> usize {
            rx.items
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .len()
        }
    }

    /// [`Locked`] declared as what it is, a queue whose every push and pop locks its mutex.
    #[derive(Clone, Copy, Debug, Default)]
    struct LockOrdered;

    impl TryQueue for LockOrdered {
        type Tx<T: Send + 'static> = Arc<Queue<T>>;
        type Rx<T: Send + 'static> = Arc<Queue<T>>;
        const NAME: &'static str = "lock_ordered";
        const LOCKED: bool = true;

        fn bounded<T: Send + 'static>(capacity: usize) -> (Arc<Queue<T>>, Arc<Queue<T>>) {
            Locked::bounded(capacity)
        }

        fn push<T: Send + 'static>(tx: &Arc<Queue<T>>, msg: T) -> Result<(), TrySendError<T>> {
            Locked::push(tx, msg)
        }

        fn pop<T: Send + 'static>(rx: &Arc<Queue<T>>) -> Option<T> {
            Locked::pop(rx)
        }

        fn len<T: Send + 'static>(rx: &Arc<Queue<T>>) -> usize {
            Locked::len(rx)
        }
    }

    /// On a queue whose lock orders the wake-up checks, a hand-off where both sides wait on
    /// every message (capacity 1, parking at once, and async on two threads) loses no wake-up,
    /// and the fences never turn symmetric: waits run no barrier there to count.
    #[test]
    fn a_lock_ordered_queue_hands_off_without_barriers() {
        const MESSAGES: u64 = 20_000;
        let deadline = || Some(std::time::Instant::now() + std::time::Duration::from_secs(20));
        let (tx, mut rx) =
            Notified(LockOrdered).bounded::<u64>(Capacity::new(1).expect("capacity 1"));
        let signals = Arc::clone(&rx.signals);
        let producer = thread::spawn(move || {
            for i in 0..MESSAGES {
                tx.send_blocking_until(i, deadline(), WaitStrategy::Park)
                    .expect("a send lost its wake-up");
            }
            tx
        });
        for expected in 0..MESSAGES {
            let got = rx
                .recv_blocking_until(deadline(), WaitStrategy::Park)
                .expect("a receive lost its wake-up");
            assert_eq!(got, expected);
        }
        let tx = producer.join().unwrap();
        let producer = thread::spawn(move || {
            crate::runtime::park_on(async {
                for i in 0..MESSAGES {
                    tx.send_until(i, deadline())
                        .await
                        .expect("an async send lost its wake-up");
                }
            });
        });
        crate::runtime::park_on(async {
            for expected in 0..MESSAGES {
                let got = rx
                    .recv_until(deadline())
                    .await
                    .expect("an async receive lost its wake-up");
                assert_eq!(got, expected);
            }
        });
        producer.join().unwrap();
        assert!(!signals.receiver_wait.waiting.is_symmetric());
        assert!(!signals.waiting_senders.fence_is_symmetric());
    }

    /// `Backoff` parks at once only where the retries would meet in the queue's lock: a
    /// lock-ordered queue with room for more than one message and one sender left. Other
    /// strategies are kept as asked.
    #[test]
    fn backoff_parks_at_once_only_for_a_lone_sender_on_a_roomy_locked_queue() {
        use WaitStrategy::{Backoff, Park};
        let spin = WaitStrategy::Spin(std::time::Duration::from_micros(5));
        let capacity = |n| Capacity::new(n).expect("a capacity");
        let (tx, _rx) = Notified(LockOrdered).bounded::<u64>(capacity(64));
        let strategy = |asked| tx.signals.strategy_for(asked);
        assert_eq!(strategy(Backoff), Park);
        assert_eq!(strategy(spin), spin);
        assert_eq!(strategy(Park), Park);
        let second = tx.clone();
        assert_eq!(strategy(Backoff), Backoff, "two senders");
        drop(second);
        assert_eq!(strategy(Backoff), Park, "one sender again");
        let (tx, _rx) = Notified(LockOrdered).bounded::<u64>(capacity(1));
        assert_eq!(tx.signals.strategy_for(Backoff), Backoff, "room for one");
        let (tx, _rx) = Notified(Locked).bounded::<u64>(capacity(64));
        assert_eq!(
            tx.signals.strategy_for(Backoff),
            Backoff,
            "no lock orders it"
        );
    }

    /// A push that wakes the waiting receiver marks the senders' wait history, and a pop that
    /// wakes a waiting sender marks the receiver's; a push or pop that wakes nobody marks
    /// nothing (see `WaitHistory::woke_other_side`).
    #[test]
    fn wake_ups_mark_the_waking_sides_history() {
        let (tx, mut rx) = Notified(Locked).bounded::<u64>(Capacity::new(1).expect("capacity 1"));
        let signals = Arc::clone(&tx.signals);
        let mut cx = Context::from_waker(Waker::noop());
        // The receiver waits on the empty queue; a push wakes it.
        assert!(rx.poll_recv(&mut cx).is_pending());
        tx.try_send(0).unwrap();
        assert!(signals.send_waits.take_woke(), "the push woke the receiver");
        assert_eq!(rx.try_recv(), Ok(0));
        assert!(
            !signals.receiver_wait.history.take_woke(),
            "no sender waited"
        );
        tx.try_send(1).unwrap();
        assert!(
            !signals.send_waits.take_woke(),
            "the receiver was not waiting"
        );
        // A sender waits on the full queue; a pop wakes it.
        let mut send = pin!(tx.send_until(2, None));
        assert!(send.as_mut().poll(&mut cx).is_pending());
        assert_eq!(rx.try_recv(), Ok(1));
        assert!(
            signals.receiver_wait.history.take_woke(),
            "the pop woke the sender"
        );
        assert!(matches!(send.as_mut().poll(&mut cx), Poll::Ready(Ok(()))));
        assert_eq!(rx.try_recv(), Ok(2));
        assert!(!signals.send_waits.take_woke() && !signals.receiver_wait.history.take_woke());
    }

    /// An async send that the caller's `try_send` found full tries the queue once after it
    /// registers, and once after each wake-up: not again before registering (the caller has
    /// just tried; on flume every try takes the queue's lock).
    #[test]
    fn an_async_send_tries_once_per_registration_and_wake_up() {
        let (tx, mut rx) = Notified(Locked).bounded::<u64>(Capacity::new(1).expect("capacity 1"));
        let pushes = || tx.tx.pushes.load(Relaxed);
        tx.try_send(0).unwrap();
        assert!(matches!(tx.try_send(1), Err(TrySendError::Full(1))));
        let before = pushes();
        let mut cx = Context::from_waker(Waker::noop());
        let mut send = pin!(tx.send_until(1, None));
        assert!(send.as_mut().poll(&mut cx).is_pending());
        assert_eq!(pushes() - before, 1, "tries before it waits");
        assert_eq!(rx.try_recv(), Ok(0));
        assert!(matches!(send.as_mut().poll(&mut cx), Poll::Ready(Ok(()))));
        assert_eq!(pushes() - before, 2, "tries in all");
        assert_eq!(rx.try_recv(), Ok(1));
    }

    /// Both fences turn symmetric in the middle of traffic that waits on both sides (capacity
    /// 1, parking at once): every message arrives once and in order, nothing hangs, and both
    /// fences end symmetric. Without `membarrier` they are symmetric throughout and this is a
    /// plain hand-off test.
    #[test]
    fn fences_turning_symmetric_mid_traffic_lose_no_wake_up() {
        const MESSAGES: u64 = 20_000;
        let (tx, mut rx) = Notified(Locked).bounded::<u64>(Capacity::new(1).expect("capacity 1"));
        let signals = Arc::clone(&rx.signals);
        let asymmetric_at_start = !signals.receiver_wait.waiting.is_symmetric();
        assert_eq!(asymmetric_at_start, barrier::asymmetric());
        let producer = thread::spawn(move || {
            for i in 0..MESSAGES {
                tx.send_blocking_until(i, None, WaitStrategy::Park).unwrap();
            }
        });
        for expected in 0..MESSAGES {
            if expected == MESSAGES / 2 {
                signals.receiver_wait.waiting.turn_symmetric();
                signals.waiting_senders.turn_fence_symmetric();
            }
            let got = rx.recv_blocking_until(None, WaitStrategy::Park).unwrap();
            assert_eq!(got, expected);
        }
        producer.join().unwrap();
        assert!(signals.receiver_wait.waiting.is_symmetric());
        assert!(signals.waiting_senders.fence_is_symmetric());
    }
}
