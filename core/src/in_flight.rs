//! Sends in flight: what makes `close` exact on queues that have no close of their own (flume,
//! crossbeam-channel).
//!
//! Without it, a send that read "open" just before `close` could push just after the receiver,
//! finding the queue empty, reported `Closed`: an acknowledged send that is never drained. With
//! it, every push is *announced*: the sending thread writes the channel's id into its own slot,
//! fences, and only then reads the closed flag; it clears the slot after the push. The receiver,
//! finding the queue empty after `close`, fences and looks at every thread's slot. By the fences
//! (a store-fence-load on each side, Dekker's shape), either the sender saw the flag and fails
//! with `Closed(msg)`, or the receiver sees the announcement and waits for it (the push wakes
//! it), or the receiver sees the cleared slot, which happens after the push, so a re-pop finds
//! the message. `Closed` is reported only when the flag is set, no slot names the channel and a
//! re-pop finds nothing.
//!
//! Cost on the send path: one relaxed store and one release store to a slot that only this
//! thread writes (its own cache line), and the light half of an asymmetric barrier (see
//! [`crate::barrier`]: a compiler fence where `membarrier` works, else a `SeqCst` fence) — no
//! read-modify-write and no write to a line other threads write. The scan of all slots, with
//! the heavy half, runs only when the receiver finds the queue empty after `close`.
//!
//! A thread's slot is claimed the first time it sends and given back when the thread exits; the
//! slots themselves live for the process (one cache line per thread ever alive at once).

use std::sync::PoisonError;
use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};

use crossbeam_utils::CachePadded;

use crate::barrier::WaitFence;
use crate::error::{TryRecvError, TrySendError};
use crate::loom::{AtomicUsize, Mutex, MutexGuard};

/// One thread's announcement: the id of the channel it is pushing into, or 0.
#[derive(Debug)]
pub(crate) struct Slot {
    channel: CachePadded<AtomicUsize>,
    /// Whether a live thread owns this slot (bookkeeping of the slot list, not the protocol).
    owned: std::sync::atomic::AtomicBool,
}

impl Slot {
    pub(crate) fn new() -> Self {
        Slot {
            channel: CachePadded::new(AtomicUsize::new(0)),
            owned: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// Announces a push into `channel` (a non-zero id); the caller reads the closed flag after
    /// this, behind the flag's operation half.
    #[inline]
    fn announce(&self, channel: usize) {
        self.channel.store(channel, Relaxed);
    }

    /// Ends the announcement once the push is done (or refused). Release: whoever reads the
    /// cleared slot sees the push.
    #[inline]
    fn clear(&self) {
        self.channel.store(0, Release);
    }
}

/// The sending side: announces a push into `channel` in this thread's `slot`, then pushes
/// `msg` unless `closed` is set (the flag the receiver's `close` sets first; any non-zero
/// state means closed).
#[inline]
pub(crate) fn announced_push<T, R>(
    slot: &Slot,
    channel: usize,
    closed: &WaitFence,
    msg: T,
    push: impl FnOnce(T) -> Result<R, TrySendError<T>>,
) -> Result<R, TrySendError<T>> {
    slot.announce(channel);
    // Pairs with `pop_after_close`'s half: the flag's read comes after the announcement.
    // Close scans are rare, so the push's half is the light one.
    let pushed = if closed.after_operation() != 0 {
        Err(TrySendError::Closed(msg))
    } else {
        push(msg)
    };
    slot.clear();
    pushed
}

/// The receiving side, once the closed flag is set in `closed` and the queue found empty:
/// `Empty` while any of `slots` still announces a push into `channel` (it lands soon and wakes
/// the receiver), else what a re-pop finds, `Closed` if nothing. `unprotected` runs when a
/// push is still announced but the scan's barrier failed (a `membarrier` refused after start-up):
/// that push's wake-up may then miss the receiver, so the caller wakes it to check again.
pub(crate) fn pop_after_close<'a, T>(
    slots: impl IntoIterator<Item = &'a Slot>,
    channel: usize,
    closed: &WaitFence,
    repop: impl FnOnce() -> Option<T>,
    unprotected: impl FnOnce(),
) -> Result<T, TryRecvError> {
    // Pairs with the half in `announced_push`: a push that read the flag as unset is seen
    // here, still announced or already cleared (and then landed, so the re-pop finds it). Were
    // `membarrier` refused, the scan goes on regardless and the receiver checks again (see
    // `WaitFence`); the fence is symmetric from then on.
    let protected = closed.after_registration();
    let in_flight = slots
        .into_iter()
        .any(|slot| slot.channel.load(Acquire) == channel);
    if in_flight {
        if !protected {
            unprotected();
        }
        return Err(TryRecvError::Empty);
    }
    repop().ok_or(TryRecvError::Closed)
}

/// Every slot ever handed out (leaked: a slot outlives its thread and is reused by a later one).
#[cfg(not(all(test, boundflow_loom)))]
static SLOTS: Mutex<Vec<&'static Slot>> = Mutex::new(Vec::new());
// Under loom, per explored execution (a slot's atomics belong to one execution).
#[cfg(all(test, boundflow_loom))]
loom::lazy_static! {
    static ref SLOTS: Mutex<Vec<&'static Slot>> = Mutex::new(Vec::new());
}

fn all_slots() -> MutexGuard<'static, Vec<&'static Slot>> {
    // Only pushes and loads run under the lock: a poisoned list is still a sound list.
    SLOTS.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A slot owned by one thread; given back (for a later thread to reuse) when dropped.
struct ThreadSlot(&'static Slot);

impl ThreadSlot {
    fn claim() -> Self {
        let mut slots = all_slots();
        let free = slots.iter().find(|slot| {
            slot.owned
                .compare_exchange(false, true, Relaxed, Relaxed)
                .is_ok()
        });
        if let Some(slot) = free {
            return ThreadSlot(slot);
        }
        let slot: &'static Slot = Box::leak(Box::new(Slot::new()));
        slot.owned.store(true, Relaxed);
        slots.push(slot);
        ThreadSlot(slot)
    }
}

impl Drop for ThreadSlot {
    fn drop(&mut self) {
        // Every announcement ends within the call that made it, so the slot is clear here.
        self.0.owned.store(false, Release);
    }
}

#[cfg(not(all(test, boundflow_loom)))]
thread_local! {
    static THREAD_SLOT: ThreadSlot = ThreadSlot::claim();
}
// Under loom, per model thread (and execution), so models can send through the real path.
#[cfg(all(test, boundflow_loom))]
loom::thread_local! {
    static THREAD_SLOT: ThreadSlot = ThreadSlot::claim();
}

/// Runs `f` with this thread's slot.
// `inline(always)`: it is on every send's path, and out of line its call cost more than the
// announcement (callgrind).
#[inline(always)]
pub(crate) fn with_thread_slot<R>(f: impl FnOnce(&Slot) -> R) -> R {
    match THREAD_SLOT.try_with(|own| own.0) {
        Ok(slot) => f(slot),
        Err(_) => {
            // Owned until `f` returns: given back when `borrowed` drops.
            let borrowed = borrowed_slot();
            f(borrowed.0)
        }
    }
}

/// This thread's locals are being torn down (a send from a destructor): a slot borrowed for
/// this one push.
#[cold]
#[inline(never)]
fn borrowed_slot() -> ThreadSlot {
    ThreadSlot::claim()
}

/// Runs `f` with every slot handed out so far (under the list's lock).
pub(crate) fn with_all_slots<R>(f: impl FnOnce(&[&'static Slot]) -> R) -> R {
    f(&all_slots())
}

/// Model of exact close, run with `RUSTFLAGS="--cfg boundflow_loom"
/// CARGO_TARGET_DIR=target/loom LOOM_MAX_PREEMPTIONS=2 cargo test -p boundflow-core --release
/// --lib loom`: two senders push (announced) while the receiver closes and drains until
/// `Closed`. Every push that returned `Ok` is drained before `Closed`, nothing is left after
/// it. It runs with the fences symmetric and asymmetric (`barrier::loom_modes`): removing either
/// path's fence from `WaitFence::after_operation`, or the one in `pop_after_close`, makes it
/// fail.
#[cfg(all(test, boundflow_loom))]
mod loom_model {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::{Slot, announced_push, pop_after_close};
    use crate::barrier::WaitFence;
    use crate::error::{TryRecvError, TrySendError};
    use crate::loom::AtomicUsize;
    use loom::sync::Arc;
    use loom::sync::atomic::Ordering::{AcqRel, Acquire, Relaxed, Release, SeqCst};
    use loom::thread;

    const CHANNEL: usize = 1;

    /// A queue reduced to its length (the messages are alike).
    struct Model {
        queued: AtomicUsize,
        closed: WaitFence,
        slots: [Slot; 2],
        accepted: AtomicUsize,
    }

    impl Model {
        fn pop(&self) -> bool {
            let mut len = self.queued.load(Acquire);
            while len > 0 {
                match self.queued.compare_exchange(len, len - 1, AcqRel, Acquire) {
                    Ok(_) => return true,
                    Err(now) => len = now,
                }
            }
            false
        }
    }

    #[test]
    fn loom_close_is_exact_for_announced_pushes() {
        crate::barrier::loom_modes::model(|| {
            let model = Arc::new(Model {
                queued: AtomicUsize::new(0),
                closed: WaitFence::new(),
                slots: [Slot::new(), Slot::new()],
                accepted: AtomicUsize::new(0),
            });
            let senders: Vec<_> = (0..2)
                .map(|i| {
                    let model = Arc::clone(&model);
                    thread::spawn(move || {
                        let pushed = announced_push(
                            &model.slots[i],
                            CHANNEL,
                            &model.closed,
                            (),
                            |()| -> Result<(), TrySendError<()>> {
                                model.queued.fetch_add(1, Release);
                                Ok(())
                            },
                        );
                        if pushed.is_ok() {
                            model.accepted.fetch_add(1, Relaxed);
                        }
                    })
                })
                .collect();
            // The receiver: close, then drain until `Closed`.
            model.closed.set(1, SeqCst);
            let mut received = 0;
            loop {
                if model.pop() {
                    received += 1;
                    continue;
                }
                let repop = || model.pop().then_some(());
                match pop_after_close(model.slots.iter(), CHANNEL, &model.closed, repop, || {}) {
                    Ok(()) => received += 1,
                    Err(TryRecvError::Empty) => thread::yield_now(),
                    Err(TryRecvError::Closed) => break,
                }
            }
            let drained_before_closed = received;
            for sender in senders {
                sender.join().unwrap();
            }
            assert_eq!(
                drained_before_closed,
                model.accepted.load(Relaxed),
                "an acknowledged push was not drained before Closed"
            );
            assert_eq!(model.queued.load(Relaxed), 0, "a push landed after Closed");
        });
    }
}
