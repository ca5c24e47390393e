//! The C ABI called as C calls it (through the exported functions): a registry built from the
//! shipped presets, channels opened by the FFI layer, and every misuse returning its code with
//! a last-error message — never a crash.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]
#![allow(unsafe_code)] // Calls the C ABI.

use std::ffi::CString;
use std::ptr;
use std::time::{Duration, Instant};

use boundflow_ffi::*;

mod common;
use common::{last_error, registry};

/// A registry on the `test` presets, and a sender and a receiver on `channel`.
fn open(channel: &str, max: usize) -> (u64, u64, u64) {
    let registry = registry();
    let name = CString::new(channel).unwrap();
    let (mut tx, mut rx) = (0, 0);
    // SAFETY: valid strings and out-pointers throughout.
    unsafe {
        assert_eq!(
            boundflow_sender_open(registry, name.as_ptr(), max, &mut tx),
            BOUNDFLOW_OK
        );
        assert_eq!(
            boundflow_receiver_open(registry, name.as_ptr(), &mut rx),
            BOUNDFLOW_OK
        );
    }
    (registry, tx, rx)
}

#[test]
fn a_c_host_sends_and_receives_through_a_registry() {
    let (registry, tx, rx) = open("worker.step_processor.result", 64);
    let mut buf = [0u8; 64];
    let mut len = 0;
    // SAFETY: valid buffers and lengths.
    unsafe {
        assert_eq!(boundflow_try_send(tx, b"hello".as_ptr(), 5), BOUNDFLOW_OK);
        assert_eq!(
            boundflow_send_timeout(tx, b"world!".as_ptr(), 6, 10),
            BOUNDFLOW_OK
        );
        assert_eq!(
            boundflow_recv_timeout(rx, buf.as_mut_ptr(), 64, &mut len, 100),
            BOUNDFLOW_OK
        );
        assert_eq!(&buf[..len], b"hello");
        let mut storage = [[0u8; 8]; 4];
        let mut bufs: Vec<BoundflowBuffer> = storage
            .iter_mut()
            .map(|s| BoundflowBuffer {
                data: s.as_mut_ptr(),
                capacity: 8,
                len: 0,
            })
            .collect();
        let mut received = 0;
        assert_eq!(
            boundflow_recv_many(rx, bufs.as_mut_ptr(), 4, &mut received, 100),
            BOUNDFLOW_OK
        );
        assert_eq!(received, 1);
        assert_eq!(&storage[0][..bufs[0].len], b"world!");
        let mut stats = BoundflowStats {
            size: std::mem::size_of::<BoundflowStats>() as u32,
            ..Default::default()
        };
        assert_eq!(boundflow_stats(tx, &mut stats), BOUNDFLOW_OK);
        assert_eq!((stats.sent, stats.received, stats.capacity), (2, 2, 100));
        // An empty channel: TIMEOUT after the wait, never before.
        let started = Instant::now();
        assert_eq!(
            boundflow_recv_timeout(rx, buf.as_mut_ptr(), 64, &mut len, 30),
            BOUNDFLOW_TIMEOUT
        );
        assert!(started.elapsed() >= Duration::from_millis(30));
    }
    // The FFI layer keeps both ends until every handle on the channel is freed.
    assert_eq!(boundflow_handle_free(registry), BOUNDFLOW_OK);
    // SAFETY: valid buffer.
    unsafe {
        assert_eq!(boundflow_try_send(tx, b"still".as_ptr(), 5), BOUNDFLOW_OK);
        assert_eq!(
            boundflow_recv_timeout(rx, buf.as_mut_ptr(), 64, &mut len, 100),
            BOUNDFLOW_OK
        );
    }
    assert_eq!(boundflow_handle_free(tx), BOUNDFLOW_OK);
    // The channel lives while a handle on it does: the receiver just finds nothing.
    // SAFETY: valid buffer.
    let status = unsafe { boundflow_recv_timeout(rx, buf.as_mut_ptr(), 64, &mut len, 10) };
    assert_eq!(status, BOUNDFLOW_TIMEOUT, "{}", last_error());
    assert_eq!(boundflow_handle_free(rx), BOUNDFLOW_OK);
}

#[test]
fn full_channels_time_out_and_leave_the_message_with_the_caller() {
    let (registry, tx, rx) = open("orchestration.command", 8);
    let msg = *b"12345678";
    // SAFETY: valid buffer.
    unsafe {
        let mut accepted = 0;
        while boundflow_try_send(tx, msg.as_ptr(), 8) == BOUNDFLOW_OK {
            accepted += 1;
        }
        assert_eq!(accepted, 100, "the test environment's capacity");
        assert_eq!(boundflow_try_send(tx, msg.as_ptr(), 8), BOUNDFLOW_FULL);
        let started = Instant::now();
        assert_eq!(
            boundflow_send_timeout(tx, msg.as_ptr(), 8, 50),
            BOUNDFLOW_TIMEOUT
        );
        assert!(started.elapsed() >= Duration::from_millis(50));
        assert!(last_error().contains("50 ms"), "{}", last_error());
    }
    for handle in [tx, rx, registry] {
        assert_eq!(boundflow_handle_free(handle), BOUNDFLOW_OK);
    }
}

#[test]
fn too_small_buffers_keep_the_message() {
    let (registry, tx, rx) = open("task_readiness.event_channel", 64);
    let mut small = [0u8; 4];
    let mut big = [0u8; 64];
    let mut len = 0;
    // SAFETY: valid buffers.
    unsafe {
        assert_eq!(
            boundflow_try_send(tx, b"a long message".as_ptr(), 14),
            BOUNDFLOW_OK
        );
        assert_eq!(boundflow_try_send(tx, b"ok".as_ptr(), 2), BOUNDFLOW_OK);
        assert_eq!(
            boundflow_recv_timeout(rx, small.as_mut_ptr(), 4, &mut len, 100),
            BOUNDFLOW_BUFFER_TOO_SMALL
        );
        assert_eq!(len, 14, "the size needed");
        // recv_many: the kept message does not fit the first buffer either.
        let mut bufs = [BoundflowBuffer {
            data: small.as_mut_ptr(),
            capacity: 4,
            len: 0,
        }];
        let mut received = 0;
        assert_eq!(
            boundflow_recv_many(rx, bufs.as_mut_ptr(), 1, &mut received, 100),
            BOUNDFLOW_BUFFER_TOO_SMALL
        );
        assert_eq!((received, bufs[0].len), (0, 14));
        assert_eq!(
            boundflow_recv_timeout(rx, big.as_mut_ptr(), 64, &mut len, 100),
            BOUNDFLOW_OK
        );
        assert_eq!(&big[..len], b"a long message");
        // A batch stops at the first message that does not fit: OK with those before it.
        assert_eq!(
            boundflow_try_send(tx, b"toolong!!".as_ptr(), 9),
            BOUNDFLOW_OK
        );
        let mut storage = [[0u8; 4]; 3];
        let mut bufs: Vec<BoundflowBuffer> = storage
            .iter_mut()
            .map(|s| BoundflowBuffer {
                data: s.as_mut_ptr(),
                capacity: 4,
                len: 0,
            })
            .collect();
        assert_eq!(
            boundflow_recv_many(rx, bufs.as_mut_ptr(), 3, &mut received, 100),
            BOUNDFLOW_OK
        );
        assert_eq!(received, 1);
        assert_eq!(&storage[0][..2], b"ok");
        assert_eq!(
            boundflow_recv_many(rx, bufs.as_mut_ptr(), 3, &mut received, 100),
            BOUNDFLOW_BUFFER_TOO_SMALL
        );
        assert_eq!(bufs[0].len, 9);
    }
    for handle in [tx, rx, registry] {
        assert_eq!(boundflow_handle_free(handle), BOUNDFLOW_OK);
    }
}

#[test]
fn every_misuse_returns_its_code_and_a_message() {
    let (registry, tx, rx) = open("event_publisher.event_queue", 16);
    let mut buf = [0u8; 16];
    let mut len = 0;
    let name = CString::new("event_publisher.event_queue").unwrap();
    let unknown = CString::new("event_publisher.event_queues").unwrap();
    let mut out = 0;
    // SAFETY: every pointer is valid or NULL on purpose; the library checks NULLs.
    unsafe {
        assert_eq!(
            boundflow_try_send(tx, ptr::null(), 4),
            BOUNDFLOW_INVALID_ARGUMENT
        );
        assert!(last_error().contains("NULL"));
        assert_eq!(
            boundflow_try_send(tx, buf.as_ptr(), 0),
            BOUNDFLOW_INVALID_ARGUMENT
        );
        assert!(last_error().contains("empty"));
        assert_eq!(
            boundflow_try_send(tx, [0u8; 17].as_ptr(), 17),
            BOUNDFLOW_INVALID_ARGUMENT
        );
        assert!(
            last_error().contains("max_message_size"),
            "{}",
            last_error()
        );
        assert_eq!(
            boundflow_recv_timeout(rx, ptr::null_mut(), 16, &mut len, 0),
            BOUNDFLOW_INVALID_ARGUMENT
        );
        assert_eq!(
            boundflow_recv_many(rx, ptr::null_mut(), 1, &mut len, 0),
            BOUNDFLOW_INVALID_ARGUMENT
        );
        assert_eq!(
            boundflow_try_send(rx, buf.as_ptr(), 1),
            BOUNDFLOW_INVALID_HANDLE,
            "a receiver is not a sender"
        );
        assert_eq!(
            boundflow_recv_timeout(tx, buf.as_mut_ptr(), 16, &mut len, 0),
            BOUNDFLOW_INVALID_HANDLE
        );
        assert_eq!(
            boundflow_try_send(0, buf.as_ptr(), 1),
            BOUNDFLOW_INVALID_HANDLE
        );
        assert_eq!(
            boundflow_try_send(u64::MAX, buf.as_ptr(), 1),
            BOUNDFLOW_INVALID_HANDLE
        );
        assert_eq!(
            boundflow_sender_open(registry, unknown.as_ptr(), 16, &mut out),
            BOUNDFLOW_NOT_FOUND
        );
        assert!(
            last_error().contains("event_publisher.event_queue"),
            "near names: {}",
            last_error()
        );
        assert_eq!(
            boundflow_sender_open(registry, ptr::null(), 16, &mut out),
            BOUNDFLOW_INVALID_ARGUMENT
        );
        assert_eq!(
            boundflow_sender_open(registry, name.as_ptr(), 0, &mut out),
            BOUNDFLOW_INVALID_ARGUMENT
        );
        assert_eq!(
            boundflow_sender_open(registry, name.as_ptr(), 16, ptr::null_mut()),
            BOUNDFLOW_INVALID_ARGUMENT
        );
        assert_eq!(
            boundflow_sender_open(tx, name.as_ptr(), 16, &mut out),
            BOUNDFLOW_INVALID_HANDLE
        );
        assert_eq!(
            boundflow_stats(
                registry,
                &mut BoundflowStats {
                    size: 200,
                    ..Default::default()
                }
            ),
            BOUNDFLOW_INVALID_HANDLE
        );
        assert_eq!(
            boundflow_stats(tx, ptr::null_mut()),
            BOUNDFLOW_INVALID_ARGUMENT
        );
        // An older, shorter stats struct gets only its fields.
        let mut short = BoundflowStats {
            size: 16,
            sent: 77,
            received: 77,
            ..Default::default()
        };
        assert_eq!(boundflow_stats(tx, &mut short), BOUNDFLOW_OK);
        assert_eq!((short.size, short.sent), (16, 0), "size and sent filled in");
        assert_eq!(short.received, 77, "written past the caller's size");
    }
    // Stale and double-freed handles.
    assert_eq!(boundflow_handle_free(tx), BOUNDFLOW_OK);
    assert_eq!(boundflow_handle_free(tx), BOUNDFLOW_INVALID_HANDLE);
    // SAFETY: a valid buffer; the handle is stale on purpose.
    assert_eq!(
        unsafe { boundflow_try_send(tx, buf.as_ptr(), 1) },
        BOUNDFLOW_INVALID_HANDLE
    );
    assert!(last_error().contains("freed"));
    for handle in [rx, registry] {
        assert_eq!(boundflow_handle_free(handle), BOUNDFLOW_OK);
    }
    // A bad configuration: CONFIG_ERROR with every problem in the message.
    let missing = CString::new("/nonexistent/boundflow").unwrap();
    // SAFETY: valid strings and out-pointer.
    let status = unsafe { boundflow_registry_open(missing.as_ptr(), ptr::null(), &mut out) };
    assert_eq!(status, BOUNDFLOW_CONFIG_ERROR);
    assert!(
        last_error().contains("/nonexistent/boundflow"),
        "{}",
        last_error()
    );
}

unsafe extern "C" {
    fn fork() -> i32;
    fn waitpid(pid: i32, status: *mut i32, options: i32) -> i32;
    fn _exit(code: i32) -> !;
}

/// A call from a forked child returns FORKED instead of touching the parent's state.
#[test]
fn calls_in_a_forked_child_return_forked() {
    let (registry, tx, rx) = open("worker.step_processor.execution_request", 8);
    // SAFETY: the child only makes one boundflow call (an atomic load and a thread-local
    // write, as the guard does first) and exits at once, touching no lock.
    let pid = unsafe { fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        // SAFETY: in the child; a valid buffer.
        let status = unsafe { boundflow_try_send(tx, b"x".as_ptr(), 1) };
        // SAFETY: ends the child without running the parent's exit handlers or test harness.
        unsafe { _exit(if status == BOUNDFLOW_FORKED { 0 } else { 1 }) };
    }
    let mut status = 0;
    // SAFETY: waits for our own child.
    assert_eq!(unsafe { waitpid(pid, &mut status, 0) }, pid);
    assert_eq!(
        (status >> 8) & 0xff,
        0,
        "the child's call did not return FORKED"
    );
    // The parent is unaffected.
    // SAFETY: a valid buffer.
    assert_eq!(
        unsafe { boundflow_try_send(tx, b"x".as_ptr(), 1) },
        BOUNDFLOW_OK
    );
    for handle in [tx, rx, registry] {
        assert_eq!(boundflow_handle_free(handle), BOUNDFLOW_OK);
    }
}

/// Sizes and counts no memory can hold, and misaligned out-pointers, are refused with
/// `INVALID_ARGUMENT`. Before, they reached the standard library's non-unwinding precondition
/// checks and aborted the host process (in a debug build; undefined behaviour in release).
#[test]
fn impossible_sizes_and_misaligned_pointers_are_refused_not_aborted() {
    let (registry, tx, rx) = open("worker.step_processor.result", 8);
    let name = CString::new("worker.step_processor.result").unwrap();
    let mut out = 0u64;
    let mut words = [0u64; 4];
    // One byte into an aligned array: misaligned for every type wider than a byte.
    let misaligned = words.as_mut_ptr().cast::<u8>().wrapping_add(1);
    let mut storage = [0u8; 8];
    let mut bufs = [BoundflowBuffer {
        data: storage.as_mut_ptr(),
        capacity: 8,
        len: 0,
    }];
    let mut received = 0;
    let mut len = 0;
    // SAFETY: every pointer is valid or misaligned on purpose; the sizes are what is checked.
    unsafe {
        for max in [usize::MAX, isize::MAX as usize + 1] {
            assert_eq!(
                boundflow_sender_open(registry, name.as_ptr(), max, &mut out),
                BOUNDFLOW_INVALID_ARGUMENT,
                "max_message_size {max}"
            );
            assert!(last_error().contains("PTRDIFF_MAX"), "{}", last_error());
        }
        // The largest possible one is accepted (and a longer message refused by it).
        let mut big = 0;
        assert_eq!(
            boundflow_sender_open(registry, name.as_ptr(), isize::MAX as usize, &mut big),
            BOUNDFLOW_OK
        );
        assert_eq!(
            boundflow_try_send(big, storage.as_ptr(), usize::MAX),
            BOUNDFLOW_INVALID_ARGUMENT
        );
        assert_eq!(boundflow_handle_free(big), BOUNDFLOW_OK);
        for count in [usize::MAX, isize::MAX as usize] {
            assert_eq!(
                boundflow_recv_many(rx, bufs.as_mut_ptr(), count, &mut received, 0),
                BOUNDFLOW_INVALID_ARGUMENT,
                "count {count}"
            );
        }
        assert_eq!(
            boundflow_recv_many(rx, bufs.as_mut_ptr(), 0, &mut received, 0),
            BOUNDFLOW_INVALID_ARGUMENT
        );
        assert_eq!(
            boundflow_sender_open(registry, name.as_ptr(), 8, misaligned.cast()),
            BOUNDFLOW_INVALID_ARGUMENT
        );
        assert!(last_error().contains("aligned"), "{}", last_error());
        assert_eq!(
            boundflow_recv_timeout(rx, storage.as_mut_ptr(), 8, misaligned.cast(), 0),
            BOUNDFLOW_INVALID_ARGUMENT
        );
        assert_eq!(
            boundflow_recv_many(rx, misaligned.cast(), 1, &mut received, 0),
            BOUNDFLOW_INVALID_ARGUMENT
        );
        assert_eq!(
            boundflow_recv_many(rx, bufs.as_mut_ptr(), 1, misaligned.cast(), 0),
            BOUNDFLOW_INVALID_ARGUMENT
        );
        assert_eq!(
            boundflow_stats(tx, misaligned.cast()),
            BOUNDFLOW_INVALID_ARGUMENT
        );
        // Nothing was taken by the refused receives.
        assert_eq!(boundflow_try_send(tx, b"kept".as_ptr(), 4), BOUNDFLOW_OK);
        assert_eq!(
            boundflow_recv_timeout(rx, storage.as_mut_ptr(), 8, &mut len, 100),
            BOUNDFLOW_OK
        );
        assert_eq!(&storage[..len], b"kept");
    }
    assert_eq!(
        words, [0; 4],
        "nothing written through the misaligned pointers"
    );
    for handle in [tx, rx, registry] {
        assert_eq!(boundflow_handle_free(handle), BOUNDFLOW_OK);
    }
}
