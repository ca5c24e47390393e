//! The senders of a [`Notified`](crate::notified::Notified) channel that wait for room: woken one
//! per freed slot, longest-waiting first, with no lock on a pop that has nobody to wake.
//!
//! Why not event-listener's `Event` (which this replaced): after a pop, the receiver must wake a
//! waiting sender. With an `Event`, every pop made while a sender was waiting took the event's
//! lock — also the many pops made while an already-woken sender was still getting back on a
//! CPU, when there was nobody left to wake. In `async_channel/blocking/spsc/boundflow/1024`
//! that lock was 24% of the samples (a profile taken before this queue existed). Here the count of waiters *not yet
//! woken* is an atomic read after every pop, and the lock is taken only when it is non-zero.
//!
//! Tickets: each wait gets the next number, waiters queue in ticket order and are woken from the
//! front, so a waiter that is still registered has been woken exactly when its ticket is at most
//! `notified_upto` — a check without the lock.
//!
//! The order is first come, first woken, but a wake-up can be spent elsewhere: a sender woken
//! just as its own re-check succeeded (it took some other free slot) passes the wake-up on, and
//! the next sender may then find the channel full again and queue anew at the back. Passing it on
//! is what guarantees no freed slot is left with a sender asleep; the cost is an occasional
//! extra wake-up. Removing a waiter that gives up is a scan of the queue (short: one entry per
//! sender waiting at once).

use std::collections::VecDeque;
use std::sync::PoisonError;
use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};
use std::task::Waker;

use crossbeam_utils::CachePadded;

use crate::barrier::WaitFence;
use crate::loom::{AtomicU64, Mutex, MutexGuard};

/// Senders waiting for a free slot.
pub(crate) struct WaitingSenders {
    /// The count of registered waiters not yet woken, with the barrier between every pop,
    /// which reads it without the lock, and every registration. Written only under the lock.
    unnotified: CachePadded<WaitFence>,
    /// The highest ticket woken so far.
    notified_upto: AtomicU64,
    queue: Mutex<Queue>,
}

struct Queue {
    last_ticket: u64,
    /// Registered, not yet woken, in ticket order. Its allocation is kept between waits, so
    /// waiting allocates only when more senders wait at once than ever before.
    waiters: VecDeque<(u64, Waker)>,
}

impl WaitingSenders {
    /// `ordered_by_lock`: every push and pop of the queue locks one mutex (see
    /// [`WaitFence::ordered_by_lock`]); then no barrier is needed on either side.
    pub(crate) fn new(ordered_by_lock: bool) -> Self {
        WaitingSenders {
            unnotified: CachePadded::new(if ordered_by_lock {
                WaitFence::ordered_by_lock()
            } else {
                WaitFence::new()
            }),
            notified_upto: AtomicU64::new(0),
            queue: Mutex::new(Queue {
                last_ticket: 0,
                waiters: VecDeque::new(),
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Queue> {
        // Only queue operations and atomics run under the lock (wakers are cloned, woken and
        // dropped outside it), so a poisoned lock still holds a sound queue.
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Registers a sender to be woken by the next pop. The sender must try its push once more
    /// after this and before it sleeps: the barrier here pairs with the one in
    /// [`Self::notify_one`], so a pop made before registering is seen by that try, or the pop
    /// sees this waiter.
    pub(crate) fn register(&self, waker: &Waker) -> SendWait<'_> {
        // Cloned before locking: a waker's own code never runs under the lock.
        let queued = waker.clone();
        let mut queue = self.lock();
        queue.last_ticket += 1;
        let ticket = queue.last_ticket;
        queue.waiters.push_back((ticket, queued));
        self.unnotified.increment(Relaxed);
        drop(queue);
        let protected = self.unnotified.after_registration();
        SendWait {
            waiters: self,
            ticket,
            waker: waker.clone(),
            observed: false,
            unprotected: !protected,
        }
    }

    /// After a pop freed a slot: wakes the longest-waiting sender not yet woken, if any, and
    /// then runs `woke`. `ordered_by_lock`: as given to [`new`](Self::new) (a constant at every
    /// call site, so the branch folds away).
    #[inline]
    pub(crate) fn notify_one(&self, ordered_by_lock: bool, woke: impl FnOnce()) {
        if self.unnotified.after_operation_on(ordered_by_lock) > 0 {
            self.wake_front_then(woke);
        }
    }

    /// [`wake_front`](Self::wake_front), then `woke` if it woke a sender. Out of line: with the
    /// result tested in the pop path, callgrind counted one instruction more per pop.
    #[cold]
    #[inline(never)]
    fn wake_front_then(&self, woke: impl FnOnce()) {
        if self.wake_front() {
            woke();
        }
    }

    /// Turns the fence symmetric now (tests of the switch under traffic).
    #[cfg(all(test, not(boundflow_loom)))]
    pub(crate) fn turn_fence_symmetric(&self) {
        self.unnotified.turn_symmetric();
    }

    /// Whether the fence is symmetric (tests).
    #[cfg(all(test, not(boundflow_loom)))]
    pub(crate) fn fence_is_symmetric(&self) -> bool {
        self.unnotified.is_symmetric()
    }

    /// Wakes every registered sender (the channel closed).
    pub(crate) fn notify_all(&self) {
        // Whoever registers after this lock sees the channel closed on its re-check (the caller
        // set the flag first), so waking the ones registered now is enough.
        let registered = self.lock().waiters.len();
        for _ in 0..registered {
            self.wake_front();
        }
    }

    /// Wakes the front sender; `false` if none was registered.
    fn wake_front(&self) -> bool {
        let mut queue = self.lock();
        let front = queue.waiters.pop_front();
        if let Some((ticket, _)) = &front {
            self.notified_upto.store(*ticket, Release);
            self.unnotified.decrement(Relaxed);
        }
        drop(queue);
        // Woken outside the lock: a waker may run code that registers again.
        match front {
            Some((_, waker)) => {
                waker.wake();
                true
            }
            None => false,
        }
    }
}

/// One registered wait, from [`WaitingSenders::register`]. Dropping it unregisters it; a wait
/// dropped after it was woken but before its sender saw that passes the wake-up on.
pub(crate) struct SendWait<'a> {
    waiters: &'a WaitingSenders,
    ticket: u64,
    /// The waker registered, to tell whether a later poll brings a different one.
    waker: Waker,
    /// Whether the sender saw that it was woken (so the wake-up is used).
    observed: bool,
    /// The registration's barrier failed (a refused `membarrier`): the sender's re-check may
    /// have missed a pop, so the wait counts as woken and the sender checks again.
    unprotected: bool,
}

impl SendWait<'_> {
    /// Whether a pop (or closing) woke this wait; once `true`, the wake-up counts as used.
    pub(crate) fn is_notified(&mut self) -> bool {
        if !self.observed && self.waiters.notified_upto.load(Acquire) >= self.ticket {
            self.observed = true;
        }
        self.observed || self.unprotected
    }

    /// Makes `waker` the one to wake, if it is not the one registered (a task polled again from
    /// elsewhere).
    pub(crate) fn update_waker(&mut self, waker: &Waker) {
        if self.waker.will_wake(waker) {
            return;
        }
        let mut replacement = waker.clone();
        let mut queue = self.waiters.lock();
        if let Some(entry) = queue.waiters.iter_mut().find(|(t, _)| *t == self.ticket) {
            std::mem::swap(&mut entry.1, &mut replacement);
        }
        drop(queue);
        // `replacement` now holds the old waker (or the unused clone): dropped unlocked.
        drop(replacement);
        self.waker = waker.clone();
    }
}

impl Drop for SendWait<'_> {
    fn drop(&mut self) {
        if self.observed {
            return;
        }
        if self.waiters.notified_upto.load(Acquire) >= self.ticket {
            // Woken, but the sender never saw it (a timeout or a dropped future): the freed
            // slot it was woken for goes to the next waiter.
            self.waiters.wake_front();
            return;
        }
        let mut queue = self.waiters.lock();
        if let Some(at) = queue.waiters.iter().position(|(t, _)| *t == self.ticket) {
            let removed = queue.waiters.remove(at);
            self.waiters.unnotified.decrement(Relaxed);
            drop(queue);
            drop(removed); // its waker is dropped unlocked
            return;
        }
        // Woken since the check above: pass it on, as above.
        drop(queue);
        self.waiters.wake_front();
    }
}

/// Models of the handshake, run with `RUSTFLAGS="--cfg boundflow_loom"
/// CARGO_TARGET_DIR=target/loom LOOM_MAX_PREEMPTIONS=2 cargo test -p boundflow-core --release
/// --lib loom`.
#[cfg(all(test, boundflow_loom))]
mod loom_model {
    use super::WaitingSenders;
    use loom::sync::atomic::Ordering::{AcqRel, Acquire, SeqCst};
    use loom::sync::atomic::{AtomicBool, AtomicUsize};
    use loom::thread;
    use std::sync::Arc;
    use std::task::{Wake, Waker};

    /// A waker that records that it ran.
    struct Flag(AtomicBool);

    impl Wake for Flag {
        fn wake(self: Arc<Self>) {
            self.0.store(true, SeqCst);
        }
    }

    fn flag() -> (Arc<Flag>, Waker) {
        let flag = Arc::new(Flag(AtomicBool::new(false)));
        (Arc::clone(&flag), Waker::from(flag))
    }

    /// Leaked, so waits can move between model threads (a few bytes per explored execution).
    fn waiting_senders() -> &'static WaitingSenders {
        Box::leak(Box::new(WaitingSenders::new(false)))
    }

    /// A sender that finds a one-slot queue full, registers and finds it still full, sleeps; a
    /// receiver pops and notifies at the same time. The sleeping sender must have been woken.
    #[test]
    fn loom_pop_wakes_a_sender_that_goes_to_sleep() {
        crate::barrier::loom_modes::model(|| {
            let len: &'static AtomicUsize = Box::leak(Box::new(AtomicUsize::new(1)));
            let waiters = waiting_senders();
            let try_push = || len.compare_exchange(0, 1, SeqCst, Acquire).is_ok();
            let receiver = thread::spawn(move || {
                if len.compare_exchange(1, 0, AcqRel, Acquire).is_ok() {
                    waiters.notify_one(false, || {});
                }
            });
            let (woken, waker) = flag();
            let slept = !try_push() && {
                let wait = waiters.register(&waker);
                let slept = !try_push();
                if slept {
                    std::mem::forget(wait); // still asleep when the receiver is done
                }
                slept
            };
            receiver.join().unwrap();
            if slept {
                assert!(woken.0.load(SeqCst), "a sleeping sender was never woken");
            }
        });
    }

    /// Two senders wait; one pop wakes one of them while the first gives up unwoken-as-far-as-it-
    /// knows (a timeout or a dropped future). The second must be woken: directly, or by the
    /// first passing its wake-up on.
    #[test]
    fn loom_wake_up_is_passed_on_by_a_wait_that_gives_up() {
        crate::barrier::loom_modes::model(|| {
            let waiters = waiting_senders();
            let (_, first_waker) = flag();
            let (second_woken, second_waker) = flag();
            let first = waiters.register(&first_waker);
            let mut second = waiters.register(&second_waker);
            let gives_up = thread::spawn(move || drop(first));
            let receiver = thread::spawn(move || waiters.notify_one(false, || {}));
            gives_up.join().unwrap();
            receiver.join().unwrap();
            assert!(second_woken.0.load(SeqCst), "the wake-up was lost");
            assert!(second.is_notified());
            drop(second);
            assert_eq!(waiters.unnotified.state(SeqCst), 0);
            assert!(waiters.lock().waiters.is_empty());
        });
    }

    /// A sender registers while the channel closes: either its re-check sees `closed`, or
    /// `notify_all` wakes it. It never sleeps through the close.
    #[test]
    fn loom_close_wakes_or_is_seen_by_a_registering_sender() {
        crate::barrier::loom_modes::model(|| {
            let closed: &'static AtomicBool = Box::leak(Box::new(AtomicBool::new(false)));
            let waiters = waiting_senders();
            let closer = thread::spawn(move || {
                closed.store(true, SeqCst);
                waiters.notify_all();
            });
            let (woken, waker) = flag();
            let wait = waiters.register(&waker);
            let slept = !closed.load(SeqCst);
            if slept {
                std::mem::forget(wait); // still asleep when the closer is done
            }
            closer.join().unwrap();
            if slept {
                assert!(woken.0.load(SeqCst), "a sender slept through the close");
            }
        });
    }
}
