//! The one place core's synchronisation types come from: std's (and atomic-waker's), or loom's
//! under `--cfg boundflow_loom` (unit tests only), so the loom models check the real protocols.
//!
//! Protocols that need sequential consistency use `fence(SeqCst)`, not `SeqCst` accesses: loom
//! treats a `SeqCst` access as `AcqRel`, so only fences are checked as written.

#[cfg(all(test, boundflow_loom))]
pub(crate) use loom::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, fence};
#[cfg(all(test, boundflow_loom))]
pub(crate) use loom::sync::{Mutex, MutexGuard};

#[cfg(not(all(test, boundflow_loom)))]
pub(crate) use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, fence};
#[cfg(not(all(test, boundflow_loom)))]
pub(crate) use std::sync::{Mutex, MutexGuard};

/// A waker slot one task waits on and any thread wakes: atomic-waker's, or loom's.
#[derive(Debug, Default)]
pub(crate) struct AtomicWaker {
    #[cfg(not(all(test, boundflow_loom)))]
    inner: atomic_waker::AtomicWaker,
    #[cfg(all(test, boundflow_loom))]
    inner: loom::future::AtomicWaker,
}

impl AtomicWaker {
    /// Registers `waker` to be woken by the next [`wake`](Self::wake).
    pub(crate) fn register(&self, waker: &std::task::Waker) {
        #[cfg(not(all(test, boundflow_loom)))]
        self.inner.register(waker);
        #[cfg(all(test, boundflow_loom))]
        self.inner.register_by_ref(waker);
    }

    /// Wakes the registered waker, if any.
    pub(crate) fn wake(&self) {
        self.inner.wake();
    }
}
