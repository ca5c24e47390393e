//! The handle table: what a `uint64_t` handle names, checked on every call.
//!
//! A handle is `generation << 32 | (slot + 1)`; 0 is never a handle. A slot holds a pointer to
//! its live entry (or null), and a call keeps that entry alive with a hazard announcement
//! ([`crate::hazard`]): no lock and no atomic read-modify-write on the send path, and calls on
//! one handle from many threads write only their own thread's record. Freeing empties the
//! slot, bumps its generation, and waits for the calls in progress on that entry (each bounded
//! by its timeout) before dropping it, so a stale or double-freed handle is refused, never
//! dereferenced.

use std::sync::atomic::{AtomicPtr, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use crate::hazard::{self, Barrier};
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
    /// Chosen before any slot is read, so every call and free agree on it.
    barrier: Barrier,
}

/// A table of `T`s addressed by generation-checked handles.
pub(crate) struct Table<T> {
    slots: OnceLock<Slots<T>>,
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
            free: Mutex::new(Free {
                next_unused: 0,
                freed: Vec::new(),
                generations: Vec::new(),
            }),
        }
    }

    fn slots(&self) -> &Slots<T> {
        self.slots.get_or_init(|| Slots {
            entries: (0..SLOTS)
                .map(|_| AtomicPtr::new(std::ptr::null_mut()))
                .collect(),
            barrier: Barrier::init(),
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

    /// The entry `handle` names, for calls that make other handles from it (protected only
    /// while it is cloned).
    pub(crate) fn get(&self, handle: u64) -> Result<Arc<T>, Failure> {
        self.live(handle, |value| Ok(Arc::clone(value)))
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
        hazard::protect(slots.barrier, slot, |live| match live {
            Some(live) if live.generation == generation => f(&live.value),
            _ => Err(invalid()),
        })
    }

    /// Frees the handle; its slot's next handle has a new generation. Returns once no call
    /// uses the entry any more.
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
            free.generations[index] = free.generations[index].wrapping_add(1).max(1);
            free.freed.push(index);
            live
        };
        // SAFETY: from `Box::into_raw` in `insert`, and no slot holds it any more.
        let live = unsafe { hazard::retire(slots.barrier, taken) };
        Ok(live.value)
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
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::{Arc, Barrier};
    use std::thread;

    use super::Table;
    use crate::status::BOUNDFLOW_INVALID_HANDLE;

    /// Sets `dropped` when dropped, so a call that sees it set used a freed entry.
    #[derive(Debug)]
    struct Tracked {
        dropped: Arc<AtomicBool>,
    }

    impl Drop for Tracked {
        fn drop(&mut self) {
            self.dropped.store(true, Ordering::SeqCst);
        }
    }

    /// Calls on a handle race its free: every call either sees the live entry or is refused
    /// as invalid, never a dropped one; the free returns the entry exactly once, and every
    /// call and refusal is counted by the test itself.
    #[test]
    fn calls_racing_a_free_never_see_a_dropped_entry() {
        const ROUNDS: usize = 200;
        const CALLERS: usize = 3;
        let table: Arc<Table<Tracked>> = Arc::new(Table::new());
        for _ in 0..ROUNDS {
            let dropped = Arc::new(AtomicBool::new(false));
            let handle = table
                .insert(Tracked {
                    dropped: Arc::clone(&dropped),
                })
                .unwrap();
            let start = Arc::new(Barrier::new(CALLERS + 1));
            let (used, refused) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
            let callers: Vec<_> = (0..CALLERS)
                .map(|_| {
                    let (table, start) = (Arc::clone(&table), Arc::clone(&start));
                    let (used, refused) = (Arc::clone(&used), Arc::clone(&refused));
                    thread::spawn(move || {
                        start.wait();
                        loop {
                            // Lingers in the call, so a free that did not wait for it
                            // would drop the entry under it.
                            let call = table.with(handle, |entry| {
                                for _ in 0..8 {
                                    assert!(
                                        !entry.dropped.load(Ordering::SeqCst),
                                        "used after free"
                                    );
                                    thread::yield_now();
                                }
                                Ok(())
                            });
                            match call {
                                Ok(()) => used.fetch_add(1, Ordering::Relaxed),
                                Err(failure) => {
                                    assert_eq!(failure.status, BOUNDFLOW_INVALID_HANDLE);
                                    refused.fetch_add(1, Ordering::Relaxed);
                                    return;
                                }
                            };
                        }
                    })
                })
                .collect();
            start.wait();
            let removed = table.remove(handle).unwrap();
            assert!(!dropped.load(Ordering::SeqCst));
            drop(removed);
            assert!(dropped.load(Ordering::SeqCst));
            assert_eq!(
                table.remove(handle).unwrap_err().status,
                BOUNDFLOW_INVALID_HANDLE
            );
            for caller in callers {
                caller.join().unwrap();
            }
            assert_eq!(refused.load(Ordering::Relaxed), CALLERS);
        }
    }

    /// A call made from inside another call (another handle) keeps both entries protected.
    #[test]
    fn a_nested_call_protects_both_entries() {
        let table: Table<u32> = Table::new();
        let (outer, inner) = (table.insert(1).unwrap(), table.insert(2).unwrap());
        let sum = table
            .with(outer, |a| table.with(inner, |b| Ok(a + b)).map(|ab| ab + a))
            .unwrap();
        assert_eq!(sum, 4);
        assert_eq!(*table.remove(inner).unwrap(), 2);
        assert_eq!(*table.remove(outer).unwrap(), 1);
    }
}
