//! The one place core's synchronisation types come from: std's, or loom's under
//! `--cfg boundflow_loom` (unit tests only), so the loom models check the real protocols.
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
