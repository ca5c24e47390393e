//! Asymmetric store–load barriers: a cheap half for the side that runs on every message and
//! an expensive half for the side that runs rarely.
//!
//! Every wake-up protocol here has Dekker's shape: one side stores (a push, an announcement)
//! then loads the other side's flag, the other side stores its flag then loads the first
//! side's data, and each needs a full barrier between its store and its load. With
//! `fence(SeqCst)` on both sides, the fast side pays a full fence on every message (on x86 a
//! locked instruction that waits for the store buffer to drain). Where Linux's `membarrier`
//! (`MEMBARRIER_CMD_PRIVATE_EXPEDITED`, via rustix) is available, the fast side's half is only
//! a compiler fence and the slow side's half forces a full barrier on every running thread of
//! the process (an interrupt to each CPU running one). That is the asymmetric fence of folly
//! and liburcu; it sits outside Rust's formal memory model, which has no such barrier.
//!
//! Where `membarrier` is missing (another OS, an old kernel, a sandbox that filters it), both
//! halves are `fence(SeqCst)`. Under loom, which cannot model `membarrier`, both halves are
//! `fence(SeqCst)` too, and every model runs twice: with each `WaitFence` symmetric, and with
//! it asymmetric, so that the asymmetric path's reading of the waiting side's state (one load,
//! bit 0 clear) is checked as well (`loom_modes`). Without the light half's fence, the
//! asymmetric runs of the exact-close, waiting-receiver and waiting-sender models fail.

use std::sync::OnceLock;
use std::sync::atomic::Ordering::{self, AcqRel, Acquire, Relaxed, Release, SeqCst};
#[cfg(not(all(test, boundflow_loom)))]
use std::sync::atomic::compiler_fence;
use std::sync::atomic::{AtomicU8, AtomicU32, AtomicU64};
use std::time::Instant;

use crate::loom::{AtomicUsize, fence};

/// Whether this process uses the asymmetric barrier: decided on the first call (registering
/// with the kernel), then fixed for the process's life, so both halves always agree.
pub fn asymmetric() -> bool {
    #[cfg(all(test, boundflow_loom))]
    return loom_modes::asymmetric();
    #[cfg(not(all(test, boundflow_loom)))]
    {
        static REGISTERED: OnceLock<bool> = OnceLock::new();
        *REGISTERED.get_or_init(sys::register)
    }
}

/// The fast side's half: a compiler fence when `asymmetric`, else a full fence.
#[inline(always)]
pub fn light(asymmetric: bool) {
    if asymmetric {
        light_half();
    } else {
        fence(SeqCst);
    }
}

/// The fast side's half where the barrier is asymmetric: a compiler fence. Under loom, which
/// cannot model `membarrier`, a full fence, its strongest reading (the heavy half forces one
/// on the fast side's thread, between its store and its load).
#[inline(always)]
fn light_half() {
    #[cfg(all(test, boundflow_loom))]
    fence(SeqCst);
    #[cfg(not(all(test, boundflow_loom)))]
    compiler_fence(SeqCst);
}

/// The slow side's half: a full fence, and when `asymmetric` a full barrier on every running
/// thread of the process. `false` if the kernel refused that, after `membarrier` was
/// registered and tried once: a seccomp filter installed since (filters are per thread), or
/// `ENOMEM` from the private barrier together with `EINVAL` from the global one (`nohz_full`
/// kernels). The pairing with [`light`] then does not hold for this call.
#[must_use]
pub fn heavy(asymmetric: bool) -> bool {
    fence(SeqCst);
    // Under loom the light half is a full fence already (see `light_half`).
    !asymmetric || cfg!(all(test, boundflow_loom)) || sys::all_threads()
}

/// The modes of a [`WaitFence`].
const ASYMMETRIC: u8 = 0;
/// Turning symmetric: the fast side already fences, waits still use the heavy half.
const SWITCHING: u8 = 1;
const SYMMETRIC: u8 = 2;
/// Ordered by the queue's lock: no barrier on either side (see [`WaitFence::ordered_by_lock`]).
const LOCK_ORDERED: u8 = 3;

/// Heavy waits counted per window when deciding whether waits come too often.
const WINDOW: u32 = 64;
/// A window of [`WINDOW`] heavy waits shorter than this (one wait per 200 µs on average, 5,000
/// a second) turns the fence symmetric. A `membarrier` costs the waiting thread about 0.1–2 µs
/// (and an interrupt on each CPU running the process), so this caps what heavy waits burn at
/// about 1% of a core. Measured: at one wait per 5 µs, producers blocked on a consumer taking a
/// message every 50 µs burned +0.07 cores more than raw flume and async-channel; at this
/// threshold +0.01 to +0.02, and crossbeam's blocking cells kept their gain (medians of
/// 0.56–1.30x raw over five runs, from 0.29–0.39x with fences on every push and pop;
/// `benches/README.md`).
const WINDOW_NANOS: u64 = WINDOW as u64 * 200_000;

/// The waiting side's state, as the other side reads it after every operation (a push, a
/// pop), with the barrier between those reads and the waiting side's registrations, adapting
/// to how often the waits come.
///
/// The state is a small number (a flag, a count of waiters) kept in the upper bits of one
/// word; bit 0 says whether operations must fence. So an operation's whole check — barrier
/// mode and state — is one load and one branch while nobody waits and the fence is
/// asymmetric, the common case (callgrind counted 3 instructions per check less than a mode
/// byte next to the flag).
///
/// It starts asymmetric where the kernel allows: operations pay a compiler fence, each wait
/// the heavy half. Once waits come faster than one per 200 µs on average over 64 (a hand-off
/// between async tasks on a tiny channel, where every message is a wait; a slow consumer
/// waking a blocked producer per message), it turns symmetric for good: a full fence on each
/// side. The switch is one-way and goes through `SWITCHING` (waits still go heavy): it sets
/// bit 0 (operations fence), then runs one heavy barrier, and only then turns `SYMMETRIC`, so
/// an operation that read the word without the bit is always covered: its store came before
/// that barrier.
#[derive(Debug)]
pub(crate) struct WaitFence {
    /// `state << 1 | must_fence`.
    word: AtomicUsize,
    mode: AtomicU8,
    /// Heavy waits so far.
    heavy_waits: AtomicU32,
    /// When the current window of heavy waits began, in ns since [`since_epoch`]'s epoch.
    window_start: AtomicU64,
}

/// Bit 0 of a [`WaitFence`]'s word: operations must run a full fence.
const MUST_FENCE: usize = 1;

impl WaitFence {
    pub(crate) fn new() -> Self {
        let asymmetric = asymmetric();
        WaitFence {
            word: AtomicUsize::new(if asymmetric { 0 } else { MUST_FENCE }),
            mode: AtomicU8::new(if asymmetric { ASYMMETRIC } else { SYMMETRIC }),
            heavy_waits: AtomicU32::new(0),
            window_start: AtomicU64::new(since_epoch()),
        }
    }

    /// No fence: for a queue whose every push and pop, whatever it finds, locks one mutex
    /// shared by all its ends (flume). That mutex orders the two sides. The waiting side
    /// stores its state, then re-checks (locking the mutex); the operation locks the mutex,
    /// then reads the state. If the re-check locked first, its unlock happens before the
    /// operation's lock, so the operation reads the state stored before it; if the operation
    /// locked first, the re-check finds what it did. So neither side runs a barrier:
    /// operations read the state with [`after_operation_on`](Self::after_operation_on),
    /// a wait's [`after_registration`](Self::after_registration) does nothing, and the fence
    /// never turns symmetric.
    pub(crate) fn ordered_by_lock() -> Self {
        WaitFence {
            word: AtomicUsize::new(0),
            mode: AtomicU8::new(LOCK_ORDERED),
            heavy_waits: AtomicU32::new(0),
            window_start: AtomicU64::new(0),
        }
    }

    /// After an operation's store: the waiting side's state, read behind this fence's
    /// operation half. Relaxed: a caller that acts on what the waiting side wrote before
    /// setting its state runs `fence(Acquire)` first (on aarch64 an Acquire load here would
    /// wait on every operation for the store before it to drain).
    #[inline(always)]
    pub(crate) fn after_operation(&self) -> usize {
        // A lock-ordered fence never sets `MUST_FENCE`: this would run no barrier at all.
        debug_assert_ne!(
            self.mode.load(Relaxed),
            LOCK_ORDERED,
            "a lock-ordered fence: use after_operation_on(true)"
        );
        // Keeps the word's load behind the operation's store.
        light_half();
        let word = self.word.load(Relaxed);
        if word == 0 {
            return 0;
        }
        if word & MUST_FENCE == 0 {
            return word >> 1;
        }
        fence(SeqCst);
        self.word.load(Relaxed) >> 1
    }

    /// After an operation: [`after_operation`](Self::after_operation), or for a fence made by
    /// [`ordered_by_lock`](Self::ordered_by_lock) the state with no barrier at all (under loom
    /// too, so the models check that the lock alone orders it). `ordered_by_lock` is a
    /// constant at every call site: the branch folds away.
    #[inline(always)]
    pub(crate) fn after_operation_on(&self, ordered_by_lock: bool) -> usize {
        if ordered_by_lock {
            self.after_locked_operation()
        } else {
            self.after_operation()
        }
    }

    /// After an operation on a queue whose lock orders it: the waiting side's state, no barrier.
    #[inline(always)]
    fn after_locked_operation(&self) -> usize {
        debug_assert_eq!(self.mode.load(Relaxed), LOCK_ORDERED, "use after_operation");
        self.word.load(Relaxed) >> 1
    }

    /// The waiting side's state, outside the protocol (no barrier).
    #[inline]
    pub(crate) fn state(&self, order: Ordering) -> usize {
        self.word.load(order) >> 1
    }

    /// Sets `bits` in the state.
    pub(crate) fn set(&self, bits: usize, order: Ordering) {
        self.word.fetch_or(bits << 1, order);
    }

    /// Clears `bits` in the state.
    pub(crate) fn clear(&self, bits: usize, order: Ordering) {
        self.word.fetch_and(!(bits << 1), order);
    }

    /// Clears `bits` in the state; `true` if they were set (then this caller is the one that
    /// cleared them). Acquire: pairs with the Release that set them.
    pub(crate) fn take(&self, bits: usize) -> bool {
        self.word.fetch_and(!(bits << 1), Acquire) & (bits << 1) != 0
    }

    /// Adds one to the state (a count).
    pub(crate) fn increment(&self, order: Ordering) {
        self.word.fetch_add(1 << 1, order);
    }

    /// Takes one from the state (a count that is not 0).
    pub(crate) fn decrement(&self, order: Ordering) {
        self.word.fetch_sub(1 << 1, order);
    }

    /// After a wait's registration store, before it re-checks for the operation it waits on.
    /// `false` if the heavy half failed (see [`heavy`]): the re-check may miss an operation
    /// made just now, so the caller must not sleep on it without checking once more (it wakes
    /// itself). The fence is symmetric from then on.
    #[must_use]
    pub(crate) fn after_registration(&self) -> bool {
        // Acquire: `SYMMETRIC` is stored after the switch's heavy barrier returned.
        match self.mode.load(Acquire) {
            SYMMETRIC => {
                fence(SeqCst);
                return true;
            }
            LOCK_ORDERED => return true,
            _ => {}
        }
        if !heavy(true) {
            // From now on every operation fences. Ones that read the word without the bit a
            // moment ago may still be unseen by this wait, and by waits that read `SYMMETRIC`
            // in that moment: a window of a few instructions, which the caller's second check
            // covers in practice but which no barrier closes.
            self.word.fetch_or(MUST_FENCE, SeqCst);
            self.mode.store(SYMMETRIC, SeqCst);
            return false;
        }
        let waits = self.heavy_waits.fetch_add(1, Relaxed).wrapping_add(1);
        if waits % WINDOW == 0 {
            // A wait preempted between its count and this clock read can measure a window
            // short and turn the fence symmetric early: a cost (the old fences), never a fault.
            let now = since_epoch();
            let began = self.window_start.swap(now, Relaxed);
            if now.saturating_sub(began) < WINDOW_NANOS {
                self.turn_symmetric();
            }
        }
        true
    }

    pub(crate) fn turn_symmetric(&self) {
        if self
            .mode
            .compare_exchange(ASYMMETRIC, SWITCHING, AcqRel, Relaxed)
            .is_err()
        {
            return;
        }
        // Every operation after this barrier sees the bit and fences; every one before it has
        // its store visible to the waits that follow (if the barrier failed, see the same
        // window in `after_registration`).
        self.word.fetch_or(MUST_FENCE, SeqCst);
        let _ = heavy(true);
        self.mode.store(SYMMETRIC, Release);
    }

    /// Whether this fence has turned symmetric (for tests).
    #[cfg(all(test, not(boundflow_loom)))]
    pub(crate) fn is_symmetric(&self) -> bool {
        self.mode.load(Relaxed) == SYMMETRIC
    }
}

/// Under loom, which mode the `WaitFence`s of a model start in: the models run once in each
/// ([`loom_modes::model`]), so the asymmetric encoding (the state read in one load with bit 0
/// clear) is checked as well as the symmetric one.
#[cfg(all(test, boundflow_loom))]
pub(crate) mod loom_modes {
    use std::sync::atomic::AtomicBool;
    use std::sync::atomic::Ordering::Relaxed;
    use std::sync::{Mutex, PoisonError};

    static ASYMMETRIC: AtomicBool = AtomicBool::new(false);
    /// Held for both runs of a model: the mode is process-wide, the tests run in parallel.
    static ONE_MODEL_AT_A_TIME: Mutex<()> = Mutex::new(());

    pub(crate) fn asymmetric() -> bool {
        ASYMMETRIC.load(Relaxed)
    }

    /// Runs `model` under `loom::model` with every `WaitFence` symmetric, then asymmetric.
    pub(crate) fn model(model: impl Fn() + Sync + Send + 'static) {
        let _one = ONE_MODEL_AT_A_TIME
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let model = std::sync::Arc::new(model);
        for asymmetric in [false, true] {
            ASYMMETRIC.store(asymmetric, Relaxed);
            let model = std::sync::Arc::clone(&model);
            loom::model(move || model());
        }
        ASYMMETRIC.store(false, Relaxed);
    }
}

/// Nanoseconds since the process's first call.
fn since_epoch() -> u64 {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    let epoch = *EPOCH.get_or_init(Instant::now);
    u64::try_from(epoch.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

#[cfg(target_os = "linux")]
mod sys {
    use rustix::thread::{MembarrierCommand, membarrier, membarrier_query};

    /// Supported, registered, and a first barrier works (a filter would refuse it here).
    #[cfg_attr(all(test, boundflow_loom), allow(dead_code))]
    pub(super) fn register() -> bool {
        membarrier_query().contains_command(MembarrierCommand::PrivateExpedited)
            && membarrier(MembarrierCommand::RegisterPrivateExpedited).is_ok()
            && membarrier(MembarrierCommand::PrivateExpedited).is_ok()
    }

    /// A full barrier on every running thread of this process; `false` if the kernel refused.
    pub(super) fn all_threads() -> bool {
        membarrier(MembarrierCommand::PrivateExpedited).is_ok()
            // The slower way (an RCU grace period), absent on `nohz_full` kernels.
            || membarrier(MembarrierCommand::Global).is_ok()
    }
}

#[cfg(not(target_os = "linux"))]
mod sys {
    #[cfg_attr(all(test, boundflow_loom), allow(dead_code))]
    pub(super) fn register() -> bool {
        false
    }

    pub(super) fn all_threads() -> bool {
        false
    }
}

#[cfg(all(test, not(boundflow_loom)))]
mod tests {
    use super::*;

    /// Waits that come every few microseconds turn the fence symmetric within a window or
    /// two; with no `membarrier` it is symmetric from the start.
    #[test]
    fn frequent_waits_turn_the_fence_symmetric() {
        let fence = WaitFence::new();
        if !asymmetric() {
            assert!(fence.is_symmetric());
            return;
        }
        assert!(!fence.is_symmetric());
        for _ in 0..2 * WINDOW {
            assert!(fence.after_registration());
        }
        assert!(
            fence.is_symmetric(),
            "128 back-to-back waits left it asymmetric"
        );
    }

    /// Waits far apart keep it asymmetric.
    #[test]
    fn rare_waits_keep_the_fence_asymmetric() {
        if !asymmetric() {
            return;
        }
        let fence = WaitFence::new();
        for _ in 0..2 * WINDOW {
            // At least the threshold's average apart, counted from the window's start (sleeps
            // only ever run long).
            std::thread::sleep(std::time::Duration::from_nanos(
                WINDOW_NANOS / u64::from(WINDOW),
            ));
            assert!(fence.after_registration());
        }
        assert!(!fence.is_symmetric());
    }
}
