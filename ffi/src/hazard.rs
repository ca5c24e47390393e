//! Hazard announcements: how a call keeps the entry it uses alive without a read-modify-write.
//!
//! Each thread owns a [`Record`]. A call announces the entry it is about to use in its record
//! with a plain (release) store, then re-reads the slot: if the slot still holds that address,
//! no free has emptied it before the re-read, so any free that empties it later sees the
//! announcement in its scan (the store–load pattern needs a full barrier on each side). The
//! re-read may find a *new* entry at the same address (freed and reallocated in between): the
//! call then protects and checks that one, and its generation check refuses the stale
//! handle. A free empties the slot, runs the barrier, and waits until no record announces the
//! entry before dropping it.
//!
//! The barrier is [`boundflow::barrier`]'s asymmetric one where the kernel offers it (Linux
//! `membarrier`): the call side needs only a compiler fence, and the free side's system call
//! forces a full barrier on every thread of the process. Frees are rare; calls are every
//! message. Without it, both sides use `fence(SeqCst)`. Measured on FFI
//! `try_send`: the slot's read-write lock (two atomic read-modify-writes a call) cost more
//! than the whole rest of the ABI layer.

use std::sync::atomic::{AtomicBool, AtomicPtr, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use boundflow::barrier;

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
        // A plain load first: the compare-exchange would pull in the line of every busy
        // record (`owned` shares it with `announced`).
        let free = records.iter().find(|record| {
            !record.owned.load(Ordering::Relaxed)
                && record
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
        // Release, like the announcement itself: a free that reads this store, or any later
        // one of this record, sees the call's uses of the entry happen before it.
        self.0
            .announced
            .store(std::ptr::null_mut(), Ordering::Release);
    }
}

/// Runs `f` on the entry `source` holds (`None` if it is empty), kept alive for the call.
#[inline]
pub(crate) fn protect<E, R>(
    asymmetric: bool,
    source: &AtomicPtr<E>,
    f: impl FnOnce(Option<&E>) -> R,
) -> R {
    match MINE.try_with(|claim| claim.0) {
        Ok(record) if record.announced.load(Ordering::Relaxed).is_null() => {
            protect_with(record, asymmetric, source, f)
        }
        // A nested call, or a call from a thread whose records are already gone (a
        // thread-local destructor): a record of its own for this call.
        _ => {
            let claim = Claim::new();
            protect_with(claim.0, asymmetric, source, f)
        }
    }
}

#[inline(always)]
fn protect_with<E, R>(
    record: &'static Record,
    asymmetric: bool,
    source: &AtomicPtr<E>,
    f: impl FnOnce(Option<&E>) -> R,
) -> R {
    let mut entry = source.load(Ordering::Acquire);
    loop {
        if entry.is_null() {
            return f(None);
        }
        // Release, not Relaxed: a free that reads this announcement (of another entry) instead
        // of the clear before it must still see this thread's earlier calls end before it.
        record.announced.store(entry.cast(), Ordering::Release);
        let _announced = Announced(record);
        barrier::light(asymmetric);
        let again = source.load(Ordering::Acquire);
        if again == entry {
            // SAFETY: `again` came from `Box::into_raw` and the slot held it after the
            // announcement was visible to every free (the barrier): a free that empties the
            // slot from now on waits for this record to move on before dropping it. It may be
            // a newer entry at the address `entry` had; `again` is the pointer to that one.
            return f(Some(unsafe { &*again }));
        }
        entry = again;
    }
}

/// After `entry` was taken out of every slot: waits until no call uses it, then returns it.
/// `None` if that cannot be known (`membarrier` failed): the entry is leaked, never freed
/// under a call.
///
/// # Safety
/// `entry` came from `Box::into_raw` and no slot holds it any more.
pub(crate) unsafe fn retire<E>(asymmetric: bool, entry: *mut E) -> Option<Box<E>> {
    if !barrier::heavy(asymmetric) {
        return None;
    }
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
    // the slot empty or holding another entry, possibly at this same address once freed).
    Some(unsafe { Box::from_raw(entry) })
}
