//! Status codes, the thread-local last error, and the guard every exported call runs in.

use std::borrow::Cow;
use std::cell::RefCell;
use std::ffi::c_char;
use std::panic::{AssertUnwindSafe, catch_unwind};

/// Success.
pub const BOUNDFLOW_OK: i32 = 0;
/// The channel is full (`try_send`): the message is still the caller's.
pub const BOUNDFLOW_FULL: i32 = 1;
/// The wait ended at its deadline: for a send, the message is still the caller's; for a
/// receive, nothing arrived.
pub const BOUNDFLOW_TIMEOUT: i32 = 2;
/// The channel is closed (and, for a receive, drained).
pub const BOUNDFLOW_CLOSED: i32 = 3;
/// Blocking here would stall an async runtime this thread is running.
pub const BOUNDFLOW_WOULD_DEADLOCK: i32 = 4;
/// No such channel is configured, or it is not open.
pub const BOUNDFLOW_NOT_FOUND: i32 = 5;
/// The channel is already open elsewhere (by Rust code, with its own ends).
pub const BOUNDFLOW_ALREADY_OPEN: i32 = 6;
/// The channel carries another message type than bytes.
pub const BOUNDFLOW_TYPE_MISMATCH: i32 = 7;
/// A NULL pointer, a zero-length or oversized message, a bad string, a zero size.
pub const BOUNDFLOW_INVALID_ARGUMENT: i32 = 8;
/// The handle is unknown, freed (stale or double free), or of the wrong kind.
pub const BOUNDFLOW_INVALID_HANDLE: i32 = 9;
/// The message does not fit the caller's buffer: the size needed is reported and the message
/// is kept for the next receive on any handle of the channel's receiver (it comes first).
pub const BOUNDFLOW_BUFFER_TOO_SMALL: i32 = 10;
/// The configuration could not be loaded (the last error lists every problem).
pub const BOUNDFLOW_CONFIG_ERROR: i32 = 11;
/// Called in a child process after `fork`: the inherited state is not touched.
pub const BOUNDFLOW_FORKED: i32 = 12;
/// An internal error (a caught panic); the last error says more.
pub const BOUNDFLOW_INTERNAL: i32 = 13;

thread_local! {
    /// The thread's last error, NUL-terminated; its buffer is reused, so the frequent failures
    /// (`FULL`, `TIMEOUT` under backpressure) allocate nothing once it has grown.
    static LAST_ERROR: RefCell<Vec<u8>> = RefCell::new(vec![0]);
}

/// A failed call: its status and what to tell the caller (fixed text for the frequent ones:
/// building it allocates nothing).
#[derive(Debug)]
pub(crate) struct Failure {
    pub(crate) status: i32,
    pub(crate) message: Cow<'static, str>,
}

impl Failure {
    pub(crate) fn new(status: i32, message: impl Into<Cow<'static, str>>) -> Self {
        Failure {
            status,
            message: message.into(),
        }
    }
}

pub(crate) type Outcome = Result<i32, Failure>;

fn set_last_error(message: &str) {
    // `try_with`: a call from a thread-local destructor that runs after this one's has no
    // last error to keep, and must not panic (outside `catch_unwind`, that would abort).
    let _ = LAST_ERROR.try_with(|last| {
        let Ok(mut last) = last.try_borrow_mut() else {
            return;
        };
        last.clear();
        // An interior NUL would cut the C string short.
        last.extend(message.bytes().map(|b| if b == 0 { b' ' } else { b }));
        last.push(0);
    });
}

/// Runs an exported call: its status, with a failure's message kept as the thread's last
/// error, and a panic caught (`BOUNDFLOW_INTERNAL`) — nothing unwinds into C.
pub(crate) fn guard(call: impl FnOnce() -> Outcome) -> i32 {
    if crate::fork::in_forked_child() {
        set_last_error(
            "called in a child process after fork: boundflow's state belongs to the parent",
        );
        return BOUNDFLOW_FORKED;
    }
    match catch_unwind(AssertUnwindSafe(call)) {
        Ok(Ok(status)) => status,
        Ok(Err(failure)) => {
            set_last_error(&failure.message);
            failure.status
        }
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic".to_owned());
            set_last_error(&format!(
                "internal error (caught, not unwound into C): {what}"
            ));
            BOUNDFLOW_INTERNAL
        }
    }
}

/// The last error message of this thread's most recent failed call (an empty string if none
/// failed). Like `sqlite3_errmsg`: valid until the next boundflow call on this thread; never
/// free it.
#[unsafe(no_mangle)]
pub extern "C" fn boundflow_last_error() -> *const c_char {
    LAST_ERROR
        .try_with(|last| last.try_borrow().ok().map(|last| last.as_ptr().cast()))
        .ok()
        .flatten()
        // This thread's storage is gone (a call from a thread-local destructor).
        .unwrap_or(c"".as_ptr())
}
