//! The handle table: what a `uint64_t` handle names, checked on every call.
//!
//! A handle is `generation << 32 | (slot + 1)`; 0 is never a handle. A slot holds a pointer to
//! its live entry (or null), and a call keeps that entry alive with a hazard announcement
//! ([`crate::hazard`]): no lock and no atomic read-modify-write on the send path, and calls on
//! one handle from many threads write only their own thread's record. Freeing empties the
//! slot, bumps its generation, and waits for the calls in progress on that entry (each bounded
//! by its timeout) before dropping it, so a stale or double-freed handle is refused, never
//! dereferenced. A slot whose generation would wrap is retired, never reused, so no stale
//! handle can match a later entry.

use std::sync::atomic::{AtomicPtr, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use boundflow::barrier;

use crate::hazard;
use crate::status::{BOUNDFLOW_INTERNAL, BOUNDFLOW_INVALID_HANDLE, Failure};

/// Handles alive at once, at most.
const SLOTS: usize = 1 << 14;

/// A slot's live entry.
struct Live<T> {
    generation: u32,
    value: Arc<T>,
}

struct Slots<T> {
    /// Each slot's live entry (from `Box::into_raw`), or null.
    entries: Box<[AtomicPtr<Live<T>>]>,
    /// Whether calls and frees pair [`barrier::light`] with `membarrier` (else full fences on
    /// both sides); chosen before any slot is read, so every call and free agree on it.
    asymmetric: bool,
}

/// A table of `T`s addressed by generation-checked handles.
pub(crate) struct Table<T> {
    slots: OnceLock<Slots<T>>,
    /// Use the symmetric fences even where `membarrier` works (tests of that mode).
    symmetric_only: bool,
    /// Free slots and each slot's next generation; taken only to add or free a handle.
    free: Mutex<Free>,
}

#[derive(Default)]
struct Free {
    /// Slots never used yet start here.
    next_unused: usize,
    /// Freed slots, reused last-in first-out.
    freed: Vec<usize>,
    /// The generation each slot hands out next (grown as slots are first used).
    generations: Vec<u32>,
}

impl<T> Table<T> {
    pub(crate) const fn new() -> Self {
        Table {
            slots: OnceLock::new(),
            symmetric_only: false,
            free: Mutex::new(Free {
                next_unused: 0,
                freed: Vec::new(),
                generations: Vec::new(),
            }),
        }
    }

    /// A table that uses the symmetric fences whatever the kernel has.
    #[cfg(test)]
    fn symmetric() -> Self {
        let mut table = Table::new();
        table.symmetric_only = true;
        table
    }

    fn slots(&self) -> &Slots<T> {
        self.slots.get_or_init(|| Slots {
            entries: (0..SLOTS)
                .map(|_| AtomicPtr::new(std::ptr::null_mut()))
                .collect(),
            asymmetric: !self.symmetric_only && barrier::asymmetric(),
        })
    }

    /// Stores `value` under a new handle.
    pub(crate) fn insert(&self, value: T) -> Result<u64, Failure> {
        let slots = self.slots();
        let mut free = self.free.lock().unwrap_or_else(PoisonError::into_inner);
        let index = match free.freed.pop() {
            Some(index) => index,
            None if free.next_unused < slots.entries.len() => {
                free.next_unused += 1;
                free.generations.push(1);
                free.next_unused - 1
            }
            None => {
                return Err(Failure::new(
                    BOUNDFLOW_INTERNAL,
                    format!("too many handles open at once (at most {SLOTS}): free some"),
                ));
            }
        };
        let generation = free.generations[index];
        let live = Box::new(Live {
            generation,
            value: Arc::new(value),
        });
        // Release: a call that loads the pointer sees the entry's contents.
        slots.entries[index].store(Box::into_raw(live), Ordering::Release);
        Ok(u64::from(generation) << 32 | (index as u64 + 1))
    }

    /// Runs `f` on the entry `handle` names, kept alive by a hazard announcement: no atomic
    /// read-modify-write, where the slot's read-write lock this replaced took two (measured:
    /// FFI `try_send` at 1.60–1.66x the Rust call with the lock). A free waits for calls in
    /// progress on that handle, each bounded by its own timeout.
    #[inline]
    pub(crate) fn with<R>(
        &self,
        handle: u64,
        f: impl FnOnce(&T) -> Result<R, Failure>,
    ) -> Result<R, Failure> {
        self.live(handle, |value| f(value))
    }

    /// Runs `f` on the live entry of `handle`: the one place a handle's slot and generation
    /// are checked.
    #[inline(always)]
    fn live<R>(
        &self,
        handle: u64,
        f: impl FnOnce(&Arc<T>) -> Result<R, Failure>,
    ) -> Result<R, Failure> {
        let (index, generation) = decode(handle)?;
        let slots = self.slots();
        let slot = slots.entries.get(index).ok_or_else(invalid)?;
        hazard::protect(slots.asymmetric, slot, |live| match live {
            Some(live) if live.generation == generation => f(&live.value),
            _ => Err(invalid()),
        })
    }

    /// Frees the handle; its slot's next handle has a new generation. Returns once no call
    /// uses the entry any more (so never call it from inside a call on the same handle: it
    /// would wait for itself; the C ABI has no callbacks, so no exported call does).
    pub(crate) fn remove(&self, handle: u64) -> Result<Arc<T>, Failure> {
        let (index, generation) = decode(handle)?;
        let slots = self.slots();
        let slot = slots.entries.get(index).ok_or_else(invalid)?;
        let taken = {
            // Held while the slot is emptied: two frees of one handle cannot both take it.
            let mut free = self.free.lock().unwrap_or_else(PoisonError::into_inner);
            let live = slot.load(Ordering::Acquire);
            // SAFETY: only frees (serialised by `free`) empty a slot, so the entry is alive.
            if live.is_null() || unsafe { (*live).generation } != generation {
                return Err(invalid());
            }
            slot.store(std::ptr::null_mut(), Ordering::Release);
            // A generation that would wrap retires the slot (2^32 frees of it): a stale
            // handle from its first generation could otherwise name a later entry.
            if let Some(next) = free.generations[index].checked_add(1) {
                free.generations[index] = next;
                free.freed.push(index);
            }
            live
        };
        // SAFETY: from `Box::into_raw` in `insert`, and no slot holds it any more.
        match unsafe { hazard::retire(slots.asymmetric, taken) } {
            Some(live) => Ok(live.value),
            None => Err(Failure::new(
                BOUNDFLOW_INTERNAL,
                "the handle is freed, but the kernel refused membarrier, so no call could be \
                 known to be done with it: its entry (and channel end) is kept, not dropped",
            )),
        }
    }
}

impl<T> Drop for Table<T> {
    fn drop(&mut self) {
        if let Some(slots) = self.slots.get_mut() {
            for slot in slots.entries.iter_mut() {
                let live = std::mem::replace(slot.get_mut(), std::ptr::null_mut());
                if !live.is_null() {
                    // SAFETY: from `Box::into_raw` in `insert`; `&mut self`, so no call uses it.
                    drop(unsafe { Box::from_raw(live) });
                }
            }
        }
    }
}

fn decode(handle: u64) -> Result<(usize, u32), Failure> {
    let index = (handle & 0xffff_ffff) as usize;
    let generation = (handle >> 32) as u32;
    if index == 0 || generation == 0 {
        return Err(invalid());
    }
    Ok((index - 1, generation))
}

fn invalid() -> Failure {
    Failure::new(
        BOUNDFLOW_INVALID_HANDLE,
        "invalid handle: never issued, already freed, or of another kind",
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use std::panic::{AssertUnwindSafe, catch_unwind};
    use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
    use std::sync::{Arc, Barrier, mpsc};
    use std::thread;
    use std::time::Duration;

    use super::Table;
    use crate::status::BOUNDFLOW_INVALID_HANDLE;

    /// Knows its own handle, and sets `dropped` when dropped: a call that sees another handle
    /// or `dropped` set used a stale or freed entry.
    #[derive(Debug)]
    struct Tracked {
        handle: AtomicU64,
        dropped: Arc<AtomicBool>,
    }

    impl Drop for Tracked {
        fn drop(&mut self) {
            self.dropped.store(true, Ordering::SeqCst);
        }
    }

    /// Calls on a handle race its free while new entries take the freed slot: every call sees
    /// the entry of the handle it names, alive, or is refused as invalid; each free returns its
    /// entry once and only then is it dropped. The test counts the calls that got through and
    /// the refusals itself.
    fn calls_race_frees_and_reuse(table: Table<Tracked>) {
        const ROUNDS: usize = 300;
        const CALLERS: usize = 3;
        let table = Arc::new(table);
        let current = Arc::new(AtomicU64::new(0));
        let (used, refused) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let done = Arc::new(AtomicBool::new(false));
        let start = Arc::new(Barrier::new(CALLERS + 1));
        let callers: Vec<_> = (0..CALLERS)
            .map(|_| {
                let (table, current, done) =
                    (Arc::clone(&table), Arc::clone(&current), Arc::clone(&done));
                let (used, refused, start) =
                    (Arc::clone(&used), Arc::clone(&refused), Arc::clone(&start));
                thread::spawn(move || {
                    start.wait();
                    while !done.load(Ordering::SeqCst) {
                        // Possibly already freed, its slot possibly reused: a stale handle.
                        let handle = current.load(Ordering::SeqCst);
                        let call = table.with(handle, |entry| {
                            // Lingers in the call, so a free that did not wait for it would
                            // drop the entry under it.
                            for _ in 0..4 {
                                assert_eq!(entry.handle.load(Ordering::SeqCst), handle, "stale");
                                assert!(!entry.dropped.load(Ordering::SeqCst), "used after free");
                                thread::yield_now();
                            }
                            Ok(())
                        });
                        match call {
                            Ok(()) => used.fetch_add(1, Ordering::Relaxed),
                            Err(failure) => {
                                assert_eq!(failure.status, BOUNDFLOW_INVALID_HANDLE);
                                refused.fetch_add(1, Ordering::Relaxed)
                            }
                        };
                    }
                })
            })
            .collect();
        start.wait();
        for _ in 0..ROUNDS {
            let dropped = Arc::new(AtomicBool::new(false));
            let handle = table
                .insert(Tracked {
                    handle: AtomicU64::new(0),
                    dropped: Arc::clone(&dropped),
                })
                .unwrap();
            table
                .with(handle, |entry| {
                    entry.handle.store(handle, Ordering::SeqCst);
                    Ok(())
                })
                .unwrap();
            current.store(handle, Ordering::SeqCst);
            thread::yield_now();
            let removed = table.remove(handle).unwrap();
            assert_eq!(removed.handle.load(Ordering::SeqCst), handle);
            drop(removed);
            assert!(
                dropped.load(Ordering::SeqCst),
                "the free returned the only reference"
            );
            assert_eq!(
                table.remove(handle).unwrap_err().status,
                BOUNDFLOW_INVALID_HANDLE,
                "a double free is refused"
            );
        }
        done.store(true, Ordering::SeqCst);
        for caller in callers {
            caller.join().unwrap();
        }
        // The race ran both ways.
        assert!(used.load(Ordering::Relaxed) > 0);
        assert!(refused.load(Ordering::Relaxed) > 0);
    }

    #[test]
    fn calls_racing_frees_and_slot_reuse_never_see_a_stale_or_dropped_entry() {
        calls_race_frees_and_reuse(Table::new());
    }

    #[test]
    fn calls_racing_frees_and_slot_reuse_with_symmetric_fences() {
        calls_race_frees_and_reuse(Table::symmetric());
    }

    /// Spawns `remove(handle)` and says whether it finished within `wait`.
    fn remove_finishes_within(
        table: &Arc<Table<u32>>,
        handle: u64,
        wait: Duration,
    ) -> (bool, mpsc::Receiver<u32>) {
        let (done, finished) = mpsc::channel();
        let table = Arc::clone(table);
        thread::spawn(move || {
            let value = *table.remove(handle).unwrap();
            let _ = done.send(value);
        });
        match finished.recv_timeout(wait) {
            Ok(value) => {
                let (again, rest) = mpsc::channel();
                let _ = again.send(value);
                (true, rest)
            }
            Err(_) => (false, finished),
        }
    }

    /// A call made inside another call (on another handle) leaves the outer entry protected:
    /// a free of the outer handle, started after the inner call returned, waits for the
    /// outer call to end.
    #[test]
    fn a_nested_call_leaves_the_outer_entry_protected() {
        let table = Arc::new(Table::new());
        let (outer, inner) = (table.insert(1).unwrap(), table.insert(2).unwrap());
        let pending = table
            .with(outer, |a| {
                assert_eq!(table.with(inner, |b| Ok(a + b)).unwrap(), 3);
                let (finished, pending) =
                    remove_finishes_within(&table, outer, Duration::from_millis(50));
                assert!(!finished, "freed while the outer call still used it");
                Ok(pending)
            })
            .unwrap();
        assert_eq!(pending.recv_timeout(Duration::from_secs(10)).unwrap(), 1);
        assert_eq!(*table.remove(inner).unwrap(), 2);
    }

    /// A call that panics (caught, as `guard` does) ends its announcement: a free after it
    /// does not wait forever.
    #[test]
    fn a_panicking_call_does_not_block_the_free() {
        let table = Arc::new(Table::new());
        let handle = table.insert(7).unwrap();
        let caught = catch_unwind(AssertUnwindSafe(|| {
            table.with(handle, |_| -> Result<(), _> { panic!("inside a call") })
        }));
        assert!(caught.is_err());
        let (finished, value) = remove_finishes_within(&table, handle, Duration::from_secs(10));
        assert!(finished, "the free waited for a call that had ended");
        assert_eq!(value.recv().unwrap(), 7);
    }
}
