//! Fork detection: a `pthread_atfork` child handler sets a flag that every call reads (one
//! relaxed load; no `getpid` per call). A child of `fork` shares no threads with its parent —
//! no tick thread, no lock owners — so touching the inherited state could deadlock.

use std::sync::Once;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};

static FORKED: AtomicBool = AtomicBool::new(false);
static INSTALL: Once = Once::new();

unsafe extern "C" {
    fn pthread_atfork(
        prepare: Option<unsafe extern "C" fn()>,
        parent: Option<unsafe extern "C" fn()>,
        child: Option<unsafe extern "C" fn()>,
    ) -> i32;
}

unsafe extern "C" fn in_child() {
    FORKED.store(true, Relaxed);
}

/// Installs the handler (once, when the first handle is made).
pub(crate) fn install() {
    INSTALL.call_once(|| {
        // SAFETY: registers a handler that only stores to a static atomic, which is
        // async-signal-safe as a fork child handler must be.
        let _ = unsafe { pthread_atfork(None, None, Some(in_child)) };
    });
}

pub(crate) fn in_forked_child() -> bool {
    FORKED.load(Relaxed)
}
