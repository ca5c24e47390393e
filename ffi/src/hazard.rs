//! Hazard announcements: how a call keeps the entry it uses alive without a read-modify-write.
//!
//! Each thread owns a [`Record`]. A call announces the entry it is about to use in its record
//! with a plain store, then re-reads the slot: if the slot still holds that entry, a free has
//! not begun and will see the announcement (the store–load pattern needs a full barrier on
//! each side). A free empties the slot, runs the barrier, and waits until no record announces
//! the entry before dropping it.
//!
//! The barrier is asymmetric where the kernel offers it (Linux `membarrier`,
//! `MEMBARRIER_CMD_PRIVATE_EXPEDITED`): the call side needs only a compiler fence, and the free
//! side's system call forces a full barrier on every thread of the process. Frees are rare;
//! calls are every message. Without it, both sides use `fence(SeqCst)`. Measured on FFI
//! `try_send`: the slot's read-write lock (two atomic read-modify-writes a call) cost more
//! than the whole rest of the ABI layer.

use std::sync::atomic::{AtomicBool, AtomicPtr, Ordering, compiler_fence, fence};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

/// Whether the asymmetric barrier is in use; decided once, before the first slot is read.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Barrier {
    accelerated: bool,
}

impl Barrier {
    /// Registers for `membarrier` where the kernel has it, else the symmetric fences.
    pub(crate) fn init() -> Self {
        Barrier {
            accelerated: membarrier::register(),
        }
    }

    /// The call side: a compiler fence with `membarrier`, else a full fence.
    #[inline(always)]
    fn light(self) {
        if self.accelerated {
            compiler_fence(Ordering::SeqCst);
        } else {
            fence(Ordering::SeqCst);
        }
    }

    /// The free side: a full fence here, and with `membarrier` one on every running thread.
    fn heavy(self) {
        fence(Ordering::SeqCst);
        if self.accelerated {
            membarrier::all_threads();
        }
    }
}

/// One thread's announcement: the entry its call in progress uses, or null.
// Aligned to its own cache lines: every call writes its record, frees read them all.
#[repr(align(128))]
struct Record {
    announced: AtomicPtr<()>,
    /// Whether a thread (or a nested call) owns this record now.
    owned: AtomicBool,
}

/// Every record ever made. Records are never freed (a thread's goes back for reuse when it
/// exits), so a free can read them without holding a reference count.
static RECORDS: Mutex<Vec<&'static Record>> = Mutex::new(Vec::new());

/// A record owned until dropped.
struct Claim(&'static Record);

impl Claim {
    fn new() -> Self {
        let mut records = RECORDS.lock().unwrap_or_else(PoisonError::into_inner);
        let free = records.iter().find(|record| {
            record
                .owned
                .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
        });
        if let Some(record) = free {
            return Claim(record);
        }
        let record: &'static Record = Box::leak(Box::new(Record {
            announced: AtomicPtr::new(std::ptr::null_mut()),
            owned: AtomicBool::new(true),
        }));
        records.push(record);
        Claim(record)
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        self.0.owned.store(false, Ordering::Release);
    }
}

thread_local! {
    static MINE: Claim = Claim::new();
}

/// Clears the announcement when the call ends, however it ends.
struct Announced(&'static Record);

impl Drop for Announced {
    fn drop(&mut self) {
        // Release: the call's uses of the entry happen before a free that reads this.
        self.0
            .announced
            .store(std::ptr::null_mut(), Ordering::Release);
    }
}

/// Runs `f` on the entry `source` holds (`None` if it is empty), kept alive for the call.
#[inline]
pub(crate) fn protect<E, R>(
    barrier: Barrier,
    source: &AtomicPtr<E>,
    f: impl FnOnce(Option<&E>) -> R,
) -> R {
    match MINE.try_with(|claim| claim.0) {
        Ok(record) if record.announced.load(Ordering::Relaxed).is_null() => {
            protect_with(record, barrier, source, f)
        }
        // A nested call, or a call from a thread whose records are already gone (a
        // thread-local destructor): a record of its own for this call.
        _ => {
            let claim = Claim::new();
            protect_with(claim.0, barrier, source, f)
        }
    }
}

#[inline(always)]
fn protect_with<E, R>(
    record: &'static Record,
    barrier: Barrier,
    source: &AtomicPtr<E>,
    f: impl FnOnce(Option<&E>) -> R,
) -> R {
    let mut entry = source.load(Ordering::Acquire);
    loop {
        if entry.is_null() {
            return f(None);
        }
        record.announced.store(entry.cast(), Ordering::Relaxed);
        let _announced = Announced(record);
        barrier.light();
        let again = source.load(Ordering::Acquire);
        if again == entry {
            // SAFETY: `entry` came from `Box::into_raw` and the slot still held it after the
            // announcement was visible to every free (the barrier): a free that empties the
            // slot from now on waits for this record to move on before dropping it.
            return f(Some(unsafe { &*entry }));
        }
        entry = again;
    }
}

/// After `entry` was taken out of every slot: waits until no call uses it, then returns it.
///
/// # Safety
/// `entry` came from `Box::into_raw` and no slot holds it any more.
pub(crate) unsafe fn retire<E>(barrier: Barrier, entry: *mut E) -> Box<E> {
    barrier.heavy();
    let records: Vec<&'static Record> = RECORDS
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    for record in records {
        let mut waited = 0u32;
        // Acquire: pairs with the call's release of its announcement.
        while record.announced.load(Ordering::Acquire) == entry.cast() {
            // A call in progress on this handle, bounded by its own timeout: yield first, then
            // sleep, since it may be a receive waiting for seconds.
            if waited < 64 {
                std::thread::yield_now();
            } else {
                std::thread::sleep(Duration::from_millis(1));
            }
            waited = waited.saturating_add(1);
        }
    }
    // SAFETY: the caller's promise, and no call announces it (a call that starts now finds
    // the slot empty or holding another entry).
    unsafe { Box::from_raw(entry) }
}

#[cfg(target_os = "linux")]
mod membarrier {
    //! `membarrier(2)`: constants from `linux/membarrier.h`.
    const CMD_QUERY: libc::c_int = 0;
    const CMD_SHARED: libc::c_int = 1;
    const CMD_PRIVATE_EXPEDITED: libc::c_int = 1 << 3;
    const CMD_REGISTER_PRIVATE_EXPEDITED: libc::c_int = 1 << 4;

    fn call(command: libc::c_int) -> libc::c_long {
        // SAFETY: membarrier takes no pointers; an unknown command returns an error.
        unsafe { libc::syscall(libc::SYS_membarrier, command, 0, 0) }
    }

    /// Whether this process may use `CMD_PRIVATE_EXPEDITED` from now on.
    pub(super) fn register() -> bool {
        let supported = call(CMD_QUERY);
        supported >= 0
            && supported & libc::c_long::from(CMD_PRIVATE_EXPEDITED) != 0
            && call(CMD_REGISTER_PRIVATE_EXPEDITED) == 0
    }

    /// A full barrier on every running thread of this process.
    pub(super) fn all_threads() {
        // Registered, so this cannot fail; were it to, `CMD_SHARED` (an RCU grace period,
        // slower) gives the same guarantee.
        if call(CMD_PRIVATE_EXPEDITED) != 0 {
            let _ = call(CMD_SHARED);
        }
    }
}

#[cfg(not(target_os = "linux"))]
mod membarrier {
    pub(super) fn register() -> bool {
        false
    }

    pub(super) fn all_threads() {}
}
