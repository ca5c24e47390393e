//! What a refused send costs a foreign producer under backpressure: `BOUNDFLOW_FULL` allocates
//! nothing beyond the copy of the message it was given (which it drops); the status text and the
//! thread's last-error buffer are reused.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]
#![allow(unsafe_code)] // Calls the C ABI, and counts allocations with a global allocator.

use std::alloc::{GlobalAlloc, Layout, System};
use std::ffi::CString;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use boundflow_ffi::*;

mod common;
use common::{last_error, registry};

/// Counts every allocation in the process (this file holds one test, so nothing else runs).
struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

// SAFETY: forwards to the system allocator unchanged.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Relaxed);
        // SAFETY: the caller's promises, passed on.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's promises, passed on.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn a_full_try_send_allocates_only_the_message_copy() {
    let registry = registry();
    let name = CString::new("worker.step_processor.result").unwrap();
    let mut tx = 0;
    let msg = [7u8; 48];
    // SAFETY: valid strings, out-pointers and buffers throughout.
    unsafe {
        assert_eq!(
            boundflow_sender_open(registry, name.as_ptr(), 64, &mut tx),
            BOUNDFLOW_OK
        );
        // Fill the channel (capacity 100 in `test`), then one refusal to size the buffer.
        let mut accepted = 0;
        while boundflow_try_send(tx, msg.as_ptr(), msg.len()) == BOUNDFLOW_OK {
            accepted += 1;
        }
        assert_eq!(accepted, 100);
        let message = last_error();
        assert!(message.contains("full"), "{message}");

        const REFUSALS: u64 = 1000;
        let before = ALLOCATIONS.load(Relaxed);
        for _ in 0..REFUSALS {
            assert_eq!(
                boundflow_try_send(tx, msg.as_ptr(), msg.len()),
                BOUNDFLOW_FULL
            );
        }
        let allocated = ALLOCATIONS.load(Relaxed) - before;
        assert_eq!(
            allocated, REFUSALS,
            "one allocation per refused send (the message copy), not {allocated} for {REFUSALS}"
        );
        assert_eq!(boundflow_handle_free(tx), BOUNDFLOW_OK);
        assert_eq!(boundflow_handle_free(registry), BOUNDFLOW_OK);
    }
}
