//! boundflow's C ABI, for worker threads in Ruby, Python or C that exchange byte messages with
//! a Rust core through named, bounded, monitored channels.
//!
//! - **Bounded waits only.** Every call that can wait takes a maximum wait in milliseconds; no
//!   call blocks forever. A waiting call holds no boundflow-wide lock.
//! - **Explicit status.** Every call returns an `int32_t` status (`BOUNDFLOW_OK`, ...); a
//!   failed call leaves a message for [`boundflow_last_error`]. A message that was not sent is
//!   still the caller's: nothing is dropped silently.
//! - **Nothing unwinds into C.** Panics are caught and reported as `BOUNDFLOW_INTERNAL`.
//! - **Handles, not pointers.** A `uint64_t` handle is checked on every call (slot and
//!   generation): NULL, stale and double-freed handles return `BOUNDFLOW_INVALID_HANDLE`.
//! - **Messages are bytes**, copied on send (the Rust side sees `Box<[u8]>`), at most the
//!   `max_message_size` given when the handle was opened.
//!
//! Two ways to set it up: a C host builds the registry through the ABI
//! ([`boundflow_registry_open`], then [`boundflow_sender_open`] / [`boundflow_receiver_open`]:
//! the FFI layer opens the channel and keeps both ends until every handle on it is freed); or a
//! Rust host opens channels of `Box<[u8]>` itself and hands ends over with [`adopt_sender`] /
//! [`adopt_receiver`].
//!
//! # Interpreter locks
//! A Python (ctypes releases the GIL around every foreign call) or Ruby (`rb_thread_call_without_gvl`)
//! binding should release its interpreter lock around the waiting calls
//! (`boundflow_send_timeout`, `boundflow_recv_timeout`, `boundflow_recv_many`, and
//! `boundflow_handle_free`, which waits for calls in progress on the handle) and wait in
//! short slices (say 100 ms), checking for signals between them, so Ctrl-C still works.
#![allow(unsafe_code)] // The C ABI: raw pointers in, checked before use (see each `# Safety`).

mod fork;
mod handles;
mod hazard;
mod status;

use std::collections::VecDeque;
use std::ffi::{CStr, c_char};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use boundflow::config::Loader;
use boundflow::{
    ChannelHandle, Receiver, RecvTimeoutError, Registry, RegistryError, SendTimeoutError, Sender,
    TryRecvError, TrySendError,
};
use parking_lot::Mutex;

use handles::Table;
pub use status::*;
use status::{Failure, Outcome, guard};

/// Every live handle.
static HANDLES: Table<Entry> = Table::new();

enum Entry {
    Registry(Box<RegistryEntry>),
    Sender(SenderEntry),
    Receiver(ReceiverEntry),
}

struct RegistryEntry {
    registry: Registry,
    /// Channels the FFI layer opened, held while some handle uses them, each with a handle on
    /// its counters that outlives it.
    opened: Mutex<std::collections::HashMap<String, (Weak<Opened>, ChannelHandle)>>,
}

/// Both ends of a channel the FFI layer opened.
struct Opened {
    tx: Sender<Box<[u8]>>,
    rx: Arc<SharedReceiver>,
}

struct SenderEntry {
    tx: Sender<Box<[u8]>>,
    max: usize,
    _opened: Option<Arc<Opened>>,
}

/// A channel's one receiver, shared by every receiver handle on it (and by its [`Opened`]).
struct SharedReceiver {
    /// Held by a receiving call for its whole wait, so nothing that must not wait takes it.
    rx: Mutex<Receiver<Box<[u8]>>>,
    /// Messages taken from the channel that did not fit the buffer of the call that took them.
    /// They belong to the receiver, not to a handle: the next receive on any handle returns
    /// them before anything queued, freeing one handle does not drop them, and `CLOSED` is
    /// only reported once they are gone. Only a call holding `rx` adds here, and only after
    /// finding this empty, so it holds at most one message; a queue all the same, so that no
    /// change of those rules can overwrite one. Never held while waiting.
    pending: Mutex<VecDeque<Box<[u8]>>>,
    /// The channel's counters, read without `rx`: `boundflow_stats` takes no timeout, so it
    /// must not wait behind a receive.
    channel: ChannelHandle,
}

impl SharedReceiver {
    fn new(rx: Receiver<Box<[u8]>>) -> Arc<Self> {
        Arc::new(SharedReceiver {
            channel: rx.handle(),
            rx: Mutex::new(rx),
            pending: Mutex::new(VecDeque::new()),
        })
    }
}

struct ReceiverEntry {
    shared: Arc<SharedReceiver>,
    _opened: Option<Arc<Opened>>,
}

/// One caller buffer of [`boundflow_recv_many`].
#[repr(C)]
#[derive(Debug)]
pub struct BoundflowBuffer {
    /// Where the message goes.
    pub data: *mut u8,
    /// How many bytes `data` can hold.
    pub capacity: usize,
    /// Set by the call: the message's length (or, with `BOUNDFLOW_BUFFER_TOO_SMALL`, the
    /// capacity needed).
    pub len: usize,
}

/// A channel's counters. Set `size` to `sizeof(BoundflowStats)` before the call: the library
/// fills only that many bytes, so a caller built against an older, shorter struct still works.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct BoundflowStats {
    /// The struct's size as the caller knows it (set by the caller).
    pub size: u32,
    /// Messages the channel accepted.
    pub sent: u64,
    /// Messages the receiver took.
    pub received: u64,
    /// Sends that found the channel full.
    pub full_events: u64,
    /// Messages refused by `drop_newest`.
    pub dropped_newest: u64,
    /// Messages evicted by `drop_oldest`.
    pub evicted: u64,
    /// Messages dropped unread when the receiver went.
    pub discarded_at_close: u64,
    /// Sends that gave up at their deadline.
    pub timeouts: u64,
    /// Extra `retry` attempts.
    pub retries: u64,
    /// `retry` sends that gave up.
    pub retries_exhausted: u64,
    /// Sends that failed because the channel was closed.
    pub closed_errors: u64,
    /// Blocking calls refused with `WOULD_DEADLOCK`.
    pub would_deadlock: u64,
    /// Messages queued now.
    pub depth: u64,
    /// The channel's capacity.
    pub capacity: u64,
    /// The fraction of slots in use, 0 to 1.
    pub saturation: f64,
    /// The largest depth seen.
    pub high_water_mark: u64,
}

fn new_handle(entry: Entry) -> Result<u64, Failure> {
    fork::install();
    HANDLES.insert(entry)
}

fn invalid(what: impl Into<std::borrow::Cow<'static, str>>) -> Failure {
    Failure::new(BOUNDFLOW_INVALID_ARGUMENT, what)
}

/// A sender handle's `max_message_size`, checked. At most `isize::MAX`: a longer message cannot
/// exist, and a `len` past it would reach `slice::from_raw_parts`, whose check aborts the
/// process (no unwinding, so `guard` cannot catch it).
fn message_size(max: usize) -> Result<usize, Failure> {
    if max == 0 {
        return Err(invalid("max_message_size must be at least 1"));
    }
    if max > isize::MAX as usize {
        return Err(invalid(format!(
            "max_message_size {max} is over PTRDIFF_MAX ({}): no message can be that long",
            isize::MAX
        )));
    }
    Ok(max)
}

/// Hands a Rust-side sender to foreign code: the returned handle sends through it. Messages
/// longer than `max_message_size` are refused with `BOUNDFLOW_INVALID_ARGUMENT`.
///
/// # Errors
/// The status code (`BOUNDFLOW_INVALID_ARGUMENT` for a size of zero or over `isize::MAX`).
pub fn adopt_sender(tx: Sender<Box<[u8]>>, max_message_size: usize) -> Result<u64, i32> {
    adopt(|| {
        Ok(Entry::Sender(SenderEntry {
            tx,
            max: message_size(max_message_size)?,
            _opened: None,
        }))
    })
}

/// Hands a Rust-side receiver to foreign code (see [`adopt_sender`]).
///
/// # Errors
/// The status code.
pub fn adopt_receiver(rx: Receiver<Box<[u8]>>) -> Result<u64, i32> {
    adopt(|| {
        Ok(Entry::Receiver(ReceiverEntry {
            shared: SharedReceiver::new(rx),
            _opened: None,
        }))
    })
}

/// A handle for the entry `make` builds, as the status-returning calls report it.
fn adopt(make: impl FnOnce() -> Result<Entry, Failure>) -> Result<u64, i32> {
    let mut handle = 0;
    let status = guard(|| {
        handle = new_handle(make()?)?;
        Ok(BOUNDFLOW_OK)
    });
    if status == BOUNDFLOW_OK {
        Ok(handle)
    } else {
        Err(status)
    }
}

/// Reads a C string argument.
///
/// # Safety
/// `text` is NULL or points to a NUL-terminated string.
unsafe fn text<'a>(text: *const c_char, what: &str) -> Result<&'a str, Failure> {
    if text.is_null() {
        return Err(invalid(format!("{what} is NULL")));
    }
    // SAFETY: non-NULL, and the caller promises NUL termination.
    unsafe { CStr::from_ptr(text) }
        .to_str()
        .map_err(|_| invalid(format!("{what} is not UTF-8")))
}

/// An out-pointer, checked before the call does anything: a call that made a handle and then
/// found it could not write it would lose it. Misaligned is refused too: writing through it
/// would reach `ptr::write`'s check, which aborts (no unwinding) in a debug build.
#[inline]
fn out_pointer<T>(out: *mut T, what: &'static str) -> Result<*mut T, Failure> {
    if out.is_null() || !out.is_aligned() {
        return Err(bad_pointer(out.is_null(), what));
    }
    Ok(out)
}

#[cold]
#[inline(never)]
fn bad_pointer(null: bool, what: &str) -> Failure {
    if null {
        invalid(format!("{what} is NULL"))
    } else {
        invalid(format!("{what} is not aligned for its type"))
    }
}

/// Loads the configuration in `config_dir` for `environment` (NULL: `BOUNDFLOW_ENV`, else the
/// base alone), builds a registry with its tick thread, and writes its handle to `out`.
/// `BOUNDFLOW_CONFIG_ERROR` lists every problem (file, line, key, fix) in the last error.
///
/// # Safety
/// `config_dir` is a NUL-terminated string; `environment` is NULL or one; `out` is valid for
/// a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn boundflow_registry_open(
    config_dir: *const c_char,
    environment: *const c_char,
    out: *mut u64,
) -> i32 {
    guard(|| {
        let out = out_pointer(out, "out")?;
        // SAFETY: the caller's promises above.
        let dir = unsafe { text(config_dir, "config_dir") }?;
        let mut loader = Loader::from_dir(dir).backends(boundflow::compiled_backends());
        if !environment.is_null() {
            // SAFETY: non-NULL, NUL-terminated by the caller's promise.
            loader = loader.environment(unsafe { text(environment, "environment") }?);
        }
        let config = loader
            .load()
            .map_err(|errors| Failure::new(BOUNDFLOW_CONFIG_ERROR, errors.to_string()))?;
        let registry = Registry::builder(config)
            .build()
            .map_err(|err| Failure::new(BOUNDFLOW_CONFIG_ERROR, err.to_string()))?;
        let handle = new_handle(Entry::Registry(Box::new(RegistryEntry {
            registry,
            opened: Mutex::new(std::collections::HashMap::new()),
        })))?;
        // SAFETY: checked above, and valid for a write by the caller's promise.
        unsafe { out.write(handle) };
        Ok(BOUNDFLOW_OK)
    })
}

fn registry_status(err: &RegistryError) -> i32 {
    match err {
        RegistryError::UnknownChannel { .. } | RegistryError::NotOpen { .. } => BOUNDFLOW_NOT_FOUND,
        RegistryError::AlreadyOpen { .. } => BOUNDFLOW_ALREADY_OPEN,
        RegistryError::TypeMismatch { .. } => BOUNDFLOW_TYPE_MISMATCH,
        RegistryError::Closed { .. } => BOUNDFLOW_CLOSED,
        _ => BOUNDFLOW_CONFIG_ERROR,
    }
}

/// Runs `f` on the registry `handle` names, or `BOUNDFLOW_INVALID_HANDLE`. Like every call on
/// a handle, inside `HANDLES.with`: a free of the registry waits until `f` is done, so no
/// handle is made on a registry after its free returned.
fn with_registry(handle: u64, f: impl FnOnce(&RegistryEntry) -> Outcome) -> Outcome {
    HANDLES.with(handle, |entry| match entry {
        Entry::Registry(registry) => f(registry),
        _ => Err(Failure::new(
            BOUNDFLOW_INVALID_HANDLE,
            "not a registry handle",
        )),
    })
}

impl RegistryEntry {
    /// The channel `name`, opened by the FFI layer if no handle holds it yet.
    fn opened(&self, name: &str) -> Result<Arc<Opened>, Failure> {
        let mut opened = self.opened.lock();
        if let Some((weak, channel)) = opened.get(name) {
            if let Some(live) = weak.upgrade() {
                return Ok(live);
            }
            // The last handle on it went, and its ends are being dropped on that thread right
            // now (a call on another thread may have held the handle past its free): the name
            // is free once they are gone, a few instructions away, so wait for that instead of
            // failing with ALREADY_OPEN.
            while !channel.is_gone() {
                std::thread::yield_now();
            }
        }
        let (tx, rx) = self
            .registry
            .open::<Box<[u8]>>(name)
            .map_err(|err| Failure::new(registry_status(&err), err.to_string()))?;
        let channel = tx.handle();
        let live = Arc::new(Opened {
            tx,
            rx: SharedReceiver::new(rx),
        });
        opened.insert(name.to_owned(), (Arc::downgrade(&live), channel));
        Ok(live)
    }
}

/// Opens a sender handle on the registry's channel `channel`, for messages of at most
/// `max_message_size` bytes (1 to `PTRDIFF_MAX`, else `BOUNDFLOW_INVALID_ARGUMENT`).
///
/// # Safety
/// `channel` is a NUL-terminated string; `out` is valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn boundflow_sender_open(
    registry: u64,
    channel: *const c_char,
    max_message_size: usize,
    out: *mut u64,
) -> i32 {
    guard(|| {
        let out = out_pointer(out, "out")?;
        // SAFETY: the caller's promise.
        let name = unsafe { text(channel, "channel") }?;
        let max = message_size(max_message_size)?;
        with_registry(registry, |registry| {
            let opened = registry.opened(name)?;
            let handle = new_handle(Entry::Sender(SenderEntry {
                tx: opened.tx.clone(),
                max,
                _opened: Some(opened),
            }))?;
            // SAFETY: checked above, and valid for a write by the caller's promise.
            unsafe { out.write(handle) };
            Ok(BOUNDFLOW_OK)
        })
    })
}

/// Opens a receiver handle on the registry's channel `channel` (several handles, on several
/// threads, share its one receiver; a message too big for a caller's buffer stays pending on
/// that receiver, for the next receive on any of its handles).
///
/// # Safety
/// `channel` is a NUL-terminated string; `out` is valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn boundflow_receiver_open(
    registry: u64,
    channel: *const c_char,
    out: *mut u64,
) -> i32 {
    guard(|| {
        let out = out_pointer(out, "out")?;
        // SAFETY: the caller's promise.
        let name = unsafe { text(channel, "channel") }?;
        with_registry(registry, |registry| {
            let opened = registry.opened(name)?;
            let handle = new_handle(Entry::Receiver(ReceiverEntry {
                shared: Arc::clone(&opened.rx),
                _opened: Some(opened),
            }))?;
            // SAFETY: checked above, and valid for a write by the caller's promise.
            unsafe { out.write(handle) };
            Ok(BOUNDFLOW_OK)
        })
    })
}

/// Frees a handle of any kind. A stale or already freed handle returns
/// `BOUNDFLOW_INVALID_HANDLE`. A call in progress on it on another thread finishes first: this
/// waits for it (up to that call's own timeout), so release your interpreter lock around it,
/// and close a receiver another thread may be waiting on before freeing its handle.
///
/// A channel's receiver, with a message kept after `BOUNDFLOW_BUFFER_TOO_SMALL`, lives while
/// any handle on it does (on a registry's channel: any sender or receiver handle; an adopted
/// receiver: its one handle), so freeing one receiver handle loses nothing. When the receiver
/// goes, what is queued is counted in `discarded_at_close`; a kept message is dropped with it
/// and stays counted in `received` only (the channel counts it taken when the FFI took it).
#[unsafe(no_mangle)]
pub extern "C" fn boundflow_handle_free(handle: u64) -> i32 {
    guard(|| HANDLES.remove(handle).map(|_| BOUNDFLOW_OK))
}

/// Runs `f` on the sender `handle` names, or `BOUNDFLOW_INVALID_HANDLE`.
fn with_sender(handle: u64, f: impl FnOnce(&SenderEntry) -> Outcome) -> Outcome {
    HANDLES.with(handle, |entry| match entry {
        Entry::Sender(sender) => f(sender),
        _ => Err(Failure::new(
            BOUNDFLOW_INVALID_HANDLE,
            "not a sender handle",
        )),
    })
}

/// Copies the caller's message after checking it.
///
/// # Safety
/// `data` is NULL or valid for `len` bytes of reads.
// Inline: on every send's path; the refusals are out of line in `refuse_message`.
#[inline]
unsafe fn message(data: *const u8, len: usize, max: usize) -> Result<Box<[u8]>, Failure> {
    if data.is_null() || len == 0 || len > max {
        return Err(refuse_message(data, len, max));
    }
    // SAFETY: non-NULL and valid for `len` bytes by the caller's promise.
    Ok(unsafe { std::slice::from_raw_parts(data, len) }.into())
}

/// Why [`message`] refused `data`/`len`.
#[cold]
#[inline(never)]
fn refuse_message(data: *const u8, len: usize, max: usize) -> Failure {
    if data.is_null() {
        invalid("data is NULL")
    } else if len == 0 {
        invalid("the message is empty (send at least one byte)")
    } else {
        invalid(format!(
            "the message is {len} bytes, over this handle's max_message_size of {max}"
        ))
    }
}

/// Sends `len` bytes at `data` if the channel has room now; never waits. `BOUNDFLOW_FULL`:
/// the channel is full and the message is still the caller's (nothing was queued). Thread-safe:
/// any thread may send on any sender handle.
///
/// # Safety
/// `data` is valid for `len` bytes of reads (it is copied before the call returns).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn boundflow_try_send(handle: u64, data: *const u8, len: usize) -> i32 {
    guard(|| {
        with_sender(handle, |sender| {
            // SAFETY: the caller's promise.
            let msg = unsafe { message(data, len, sender.max) }?;
            match sender.tx.try_send(msg) {
                Ok(()) => Ok(BOUNDFLOW_OK),
                Err(TrySendError::Full(_)) => {
                    Err(Failure::new(BOUNDFLOW_FULL, "the channel is full"))
                }
                Err(TrySendError::Closed(_)) => {
                    Err(Failure::new(BOUNDFLOW_CLOSED, "the channel is closed"))
                }
            }
        })
    })
}

/// Sends `len` bytes at `data`, waiting at most `timeout_ms` milliseconds for room.
/// `BOUNDFLOW_TIMEOUT`: still full at the deadline (never earlier), and the message is still the
/// caller's. Release your interpreter lock around this call.
///
/// # Safety
/// `data` is valid for `len` bytes of reads (it is copied before the call waits).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn boundflow_send_timeout(
    handle: u64,
    data: *const u8,
    len: usize,
    timeout_ms: u32,
) -> i32 {
    guard(|| {
        with_sender(handle, |sender| {
            // SAFETY: the caller's promise.
            let msg = unsafe { message(data, len, sender.max) }?;
            let wait = Duration::from_millis(u64::from(timeout_ms));
            match sender.tx.send_timeout_blocking(msg, wait) {
                Ok(()) => Ok(BOUNDFLOW_OK),
                Err(SendTimeoutError::Timeout(_)) => Err(Failure::new(
                    BOUNDFLOW_TIMEOUT,
                    format!("the channel stayed full for {timeout_ms} ms"),
                )),
                Err(SendTimeoutError::Closed(_)) => {
                    Err(Failure::new(BOUNDFLOW_CLOSED, "the channel is closed"))
                }
                Err(SendTimeoutError::WouldDeadlock(_)) => Err(would_deadlock()),
            }
        })
    })
}

fn would_deadlock() -> Failure {
    Failure::new(
        BOUNDFLOW_WOULD_DEADLOCK,
        "this thread runs an async runtime: blocking here would stall it",
    )
}

/// Runs `f` on the receiver `handle` names, or `BOUNDFLOW_INVALID_HANDLE`.
fn with_receiver(handle: u64, f: impl FnOnce(&ReceiverEntry) -> Outcome) -> Outcome {
    HANDLES.with(handle, |entry| match entry {
        Entry::Receiver(receiver) => f(receiver),
        _ => Err(Failure::new(
            BOUNDFLOW_INVALID_HANDLE,
            "not a receiver handle",
        )),
    })
}

/// What a receive got for a buffer of a given capacity.
enum Got {
    /// A message that fits: the caller's now.
    Message(Box<[u8]>),
    /// A message of this many bytes that does not fit: pending on the receiver (nothing was
    /// taken).
    TooBig(usize),
}

impl SharedReceiver {
    /// The first pending message if it fits `capacity` (taken), or its size (left pending). A
    /// pending message leaves the queue only to be delivered, so a receive that then finds the
    /// channel closed and this empty can report `CLOSED` knowing nothing is left anywhere.
    fn take_pending(&self, capacity: usize) -> Option<Got> {
        let mut pending = self.pending.lock();
        let needed = pending.front()?.len();
        if needed > capacity {
            return Some(Got::TooBig(needed));
        }
        pending.pop_front().map(Got::Message)
    }

    /// Starts one call's receiving, with the call's deadline.
    fn receiving(&self, deadline: Instant) -> Receiving<'_> {
        Receiving {
            shared: self,
            rx: None,
            deadline,
        }
    }

    /// The shared receiver, locked within the deadline.
    fn lock_until(
        &self,
        deadline: Instant,
    ) -> Result<parking_lot::MutexGuard<'_, Receiver<Box<[u8]>>>, Failure> {
        self.rx.try_lock_until(deadline).ok_or_else(lock_timeout)
    }
}

fn lock_timeout() -> Failure {
    Failure::new(
        BOUNDFLOW_TIMEOUT,
        "other threads held this receiver until the deadline",
    )
}

/// One call's receives. The shared receiver is locked at the call's first receive from the
/// channel and held until the call ends, so a `recv_many` batch takes that lock once, not per
/// message (measured: two locks a message made `recv_many` 2.4x a Rust `try_recv` loop).
struct Receiving<'a> {
    shared: &'a SharedReceiver,
    rx: Option<parking_lot::MutexGuard<'a, Receiver<Box<[u8]>>>>,
    deadline: Instant,
}

impl Receiving<'_> {
    /// The next message for a buffer of `capacity` bytes: a pending one first, else one from
    /// the channel. `may_wait`: wait until the deadline for the receiver's lock and for a
    /// message; otherwise wait for neither (`Ok(None)` if the lock is busy or nothing is
    /// queued), as a batch does once it has a message.
    fn next(&mut self, capacity: usize, may_wait: bool) -> Result<Option<Got>, Failure> {
        let rx = match &mut self.rx {
            // Holding the lock: pending was found empty when it was taken, and only this
            // call can have added to it since (after which it stops).
            Some(rx) => rx,
            None => {
                // Checked before the lock, so a kept message does not wait behind another
                // thread's receive, and again after it: a call may have kept one meanwhile.
                if let Some(got) = self.shared.take_pending(capacity) {
                    return Ok(Some(got));
                }
                let rx = if may_wait {
                    match self.shared.lock_until(self.deadline) {
                        Ok(rx) => rx,
                        // One kept while we waited, by a call that has let go since.
                        Err(failure) => {
                            return self
                                .shared
                                .take_pending(capacity)
                                .map_or(Err(failure), |got| Ok(Some(got)));
                        }
                    }
                } else {
                    match self.shared.rx.try_lock() {
                        Some(rx) => rx,
                        None => return Ok(None),
                    }
                };
                let rx = self.rx.insert(rx);
                if let Some(got) = self.shared.take_pending(capacity) {
                    return Ok(Some(got));
                }
                rx
            }
        };
        let msg = if may_wait {
            match rx.recv_timeout_blocking(self.deadline.saturating_duration_since(Instant::now()))
            {
                Ok(msg) => msg,
                Err(RecvTimeoutError::Timeout) => {
                    return Err(Failure::new(
                        BOUNDFLOW_TIMEOUT,
                        "nothing arrived before the deadline",
                    ));
                }
                // Final: the channel is drained, and pending is empty (see above).
                Err(RecvTimeoutError::Closed) => {
                    return Err(Failure::new(
                        BOUNDFLOW_CLOSED,
                        "the channel is closed and drained",
                    ));
                }
                Err(RecvTimeoutError::WouldDeadlock) => return Err(would_deadlock()),
            }
        } else {
            match rx.try_recv() {
                Ok(msg) => msg,
                Err(TryRecvError::Empty | TryRecvError::Closed) => return Ok(None),
            }
        };
        if msg.len() > capacity {
            let needed = msg.len();
            // Kept while this call still holds the lock, so the next holder finds it.
            self.shared.pending.lock().push_back(msg);
            return Ok(Some(Got::TooBig(needed)));
        }
        Ok(Some(Got::Message(msg)))
    }
}

fn too_small(needed: usize, capacity: usize) -> Failure {
    Failure::new(
        BOUNDFLOW_BUFFER_TOO_SMALL,
        format!(
            "the message is {needed} bytes and the buffer holds {capacity}: it is kept for the next receive"
        ),
    )
}

/// Receives one message into `buf` (`capacity` bytes), waiting at most `timeout_ms`; writes its
/// length to `out_len`. `BOUNDFLOW_BUFFER_TOO_SMALL`: `out_len` is the size needed and the
/// message stays pending on the channel's receiver: the next receive on any of its handles
/// gets it before anything else. Several threads may share a receiver handle.
///
/// # Safety
/// `buf` is valid for `capacity` bytes of writes; `out_len` for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn boundflow_recv_timeout(
    handle: u64,
    buf: *mut u8,
    capacity: usize,
    out_len: *mut usize,
    timeout_ms: u32,
) -> i32 {
    guard(|| {
        if buf.is_null() {
            return Err(invalid("buf is NULL"));
        }
        let out_len = out_pointer(out_len, "out_len")?;
        with_receiver(handle, |receiver| {
            let deadline = Instant::now() + Duration::from_millis(u64::from(timeout_ms));
            let mut receiving = receiver.shared.receiving(deadline);
            match receiving.next(capacity, true)? {
                Some(Got::Message(msg)) => {
                    // SAFETY: `buf` holds `capacity >= msg.len()` bytes, and cannot overlap our
                    // box; `out_len` is valid for a write.
                    unsafe {
                        std::ptr::copy_nonoverlapping(msg.as_ptr(), buf, msg.len());
                        out_len.write(msg.len());
                    }
                    Ok(BOUNDFLOW_OK)
                }
                Some(Got::TooBig(needed)) => {
                    // SAFETY: `out_len` is valid for a write.
                    unsafe { out_len.write(needed) };
                    Err(too_small(needed, capacity))
                }
                // A waiting `next` has a message or an error.
                None => Err(Failure::new(BOUNDFLOW_TIMEOUT, "nothing arrived")),
            }
        })
    })
}

/// Receives up to `count` messages into `bufs`, waiting at most `timeout_ms` for the first and
/// not at all for the rest (neither for a message nor for another thread's receive to end);
/// writes how many arrived to `out_received` and each one's length to its buffer's `len`. It
/// stops at the first message that does not fit its buffer and leaves it pending:
/// `BOUNDFLOW_OK` with the messages before it, and the next call returns
/// `BOUNDFLOW_BUFFER_TOO_SMALL` with the size needed in `bufs[0].len`. A `count` of 0, or of
/// more buffers than memory can hold, is `BOUNDFLOW_INVALID_ARGUMENT`.
///
/// # Safety
/// `bufs` points to `count` buffers, each `data` valid for `capacity` bytes of writes;
/// `out_received` is valid for a write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn boundflow_recv_many(
    handle: u64,
    bufs: *mut BoundflowBuffer,
    count: usize,
    out_received: *mut usize,
    timeout_ms: u32,
) -> i32 {
    guard(|| {
        let bufs = out_pointer(bufs, "bufs")?;
        let out_received = out_pointer(out_received, "out_received")?;
        // More cannot exist (and `from_raw_parts_mut` aborts on them): a C error value such as
        // `(size_t)-1` passed as the count.
        if count == 0 || count > isize::MAX as usize / std::mem::size_of::<BoundflowBuffer>() {
            return Err(invalid(format!(
                "count is {count}: give 1 to the number of buffers in bufs"
            )));
        }
        // SAFETY: `bufs` points to `count` buffers by the caller's promise (non-NULL, aligned,
        // and `count` of them fit in memory).
        let bufs = unsafe { std::slice::from_raw_parts_mut(bufs, count) };
        if bufs.iter().any(|b| b.data.is_null()) {
            return Err(invalid("a buffer's data is NULL"));
        }
        with_receiver(handle, |receiver| {
            let deadline = Instant::now() + Duration::from_millis(u64::from(timeout_ms));
            let mut receiving = receiver.shared.receiving(deadline);
            let mut received = 0;
            let outcome: Outcome = loop {
                let Some(buf) = bufs.get_mut(received) else {
                    break Ok(BOUNDFLOW_OK);
                };
                // Only the first may wait; the others never fail, they find nothing.
                match receiving.next(buf.capacity, received == 0) {
                    Ok(Some(Got::Message(msg))) => {
                        // SAFETY: `data` holds `capacity >= msg.len()` bytes by the caller's
                        // promise.
                        unsafe { std::ptr::copy_nonoverlapping(msg.as_ptr(), buf.data, msg.len()) };
                        buf.len = msg.len();
                        received += 1;
                    }
                    Ok(Some(Got::TooBig(needed))) => {
                        buf.len = needed;
                        break if received == 0 {
                            Err(too_small(needed, buf.capacity))
                        } else {
                            Ok(BOUNDFLOW_OK)
                        };
                    }
                    Ok(None) => break Ok(BOUNDFLOW_OK),
                    Err(failure) => break Err(failure),
                }
            };
            // SAFETY: the caller's promise.
            unsafe { out_received.write(received) };
            outcome
        })
    })
}

/// Closes the channel from its receiving side, as Rust's `Receiver::close`: later sends return
/// `BOUNDFLOW_CLOSED` (blocked ones wake), and receives drain what is queued, then return
/// `BOUNDFLOW_CLOSED`. The shared receiver's lock is taken within `timeout_ms`.
#[unsafe(no_mangle)]
pub extern "C" fn boundflow_receiver_close(handle: u64, timeout_ms: u32) -> i32 {
    guard(|| {
        with_receiver(handle, |receiver| {
            let deadline = Instant::now() + Duration::from_millis(u64::from(timeout_ms));
            let mut rx = receiver.shared.lock_until(deadline)?;
            rx.close();
            Ok(BOUNDFLOW_OK)
        })
    })
}

/// The counters of the channel a sender or receiver handle is on. Set `out->size` first. Never
/// waits: not even for another thread's receive on the channel.
///
/// # Safety
/// `out` is valid for reading its `size` field and writing `size` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn boundflow_stats(handle: u64, out: *mut BoundflowStats) -> i32 {
    guard(|| {
        // Only the `size` field is read in place (the rest is copied as bytes): it is what must
        // be aligned.
        out_pointer(out.cast::<u32>(), "out")?;
        // SAFETY: the caller's promise: at least the `size` field is readable.
        let size = unsafe { std::ptr::addr_of!((*out).size).read() } as usize;
        if size < std::mem::size_of::<u32>() {
            return Err(invalid("out->size is smaller than the size field itself"));
        }
        // Inside `HANDLES.with`, as every call: a free of the handle waits for it.
        let stats = HANDLES.with(handle, |entry| match entry {
            Entry::Sender(sender) => Ok(sender.tx.stats()),
            Entry::Receiver(receiver) => Ok(receiver.shared.channel.stats()),
            Entry::Registry(_) => Err(Failure::new(
                BOUNDFLOW_INVALID_HANDLE,
                "a registry has no counters: pass a sender or receiver handle",
            )),
        })?;
        let bytes = size.min(std::mem::size_of::<BoundflowStats>());
        let full = BoundflowStats {
            // What was filled in: the caller's size, or ours if the caller's struct is newer.
            size: bytes as u32,
            sent: stats.sent,
            received: stats.received,
            full_events: stats.full_events,
            dropped_newest: stats.dropped_newest,
            evicted: stats.evicted,
            discarded_at_close: stats.discarded_at_close,
            timeouts: stats.timeouts,
            retries: stats.retries,
            retries_exhausted: stats.retries_exhausted,
            closed_errors: stats.closed_errors,
            would_deadlock: stats.would_deadlock,
            depth: stats.depth as u64,
            capacity: stats.capacity as u64,
            saturation: stats.saturation,
            high_water_mark: stats.high_water_mark as u64,
        };
        // SAFETY: `out` is valid for `size >= bytes` bytes of writes; `full` is a local.
        unsafe {
            std::ptr::copy_nonoverlapping(
                std::ptr::from_ref(&full).cast::<u8>(),
                out.cast::<u8>(),
                bytes,
            );
        }
        Ok(BOUNDFLOW_OK)
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use std::ffi::CString;
    use std::time::{Duration, Instant};

    use super::*;

    /// A registry on the `test` presets, with a sender and a receiver handle on `channel`.
    fn open(channel: &str) -> [u64; 3] {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/presets");
        let dir = CString::new(dir.to_str().unwrap()).unwrap();
        let (env, name) = (c"test", CString::new(channel).unwrap());
        let [mut registry, mut tx, mut rx] = [0; 3];
        // SAFETY: valid strings and out-pointers.
        unsafe {
            assert_eq!(
                boundflow_registry_open(dir.as_ptr(), env.as_ptr(), &mut registry),
                BOUNDFLOW_OK
            );
            assert_eq!(
                boundflow_sender_open(registry, name.as_ptr(), 64, &mut tx),
                BOUNDFLOW_OK
            );
            assert_eq!(
                boundflow_receiver_open(registry, name.as_ptr(), &mut rx),
                BOUNDFLOW_OK
            );
        }
        [registry, tx, rx]
    }

    /// `recv_many` whose first message is a kept one must not then wait for the receiver's
    /// lock (held here as another thread's long receive would hold it): before, it waited
    /// until its deadline with the message in hand.
    #[test]
    fn a_batch_with_a_message_in_hand_does_not_wait_for_the_receivers_lock() {
        let [registry, tx, rx] = open("worker.step_processor.result");
        let mut small = [0u8; 4];
        let mut len = 0;
        // SAFETY: valid buffers.
        unsafe {
            assert_eq!(
                boundflow_try_send(tx, b"BIG-MESSAGE".as_ptr(), 11),
                BOUNDFLOW_OK
            );
            assert_eq!(boundflow_try_send(tx, b"queued".as_ptr(), 6), BOUNDFLOW_OK);
            assert_eq!(
                boundflow_recv_timeout(rx, small.as_mut_ptr(), 4, &mut len, 100),
                BOUNDFLOW_BUFFER_TOO_SMALL
            );
        }
        let mut storage = [[0u8; 64]; 2];
        let mut bufs = storage.each_mut().map(|s| BoundflowBuffer {
            data: s.as_mut_ptr(),
            capacity: 64,
            len: 0,
        });
        let mut received = 0;
        HANDLES
            .with(rx, |entry| {
                let Entry::Receiver(receiver) = entry else {
                    panic!("a receiver handle");
                };
                let _held = receiver.shared.rx.lock();
                let started = Instant::now();
                // SAFETY: two buffers of 64 bytes.
                let status =
                    unsafe { boundflow_recv_many(rx, bufs.as_mut_ptr(), 2, &mut received, 2000) };
                let took = started.elapsed();
                assert_eq!((status, received), (BOUNDFLOW_OK, 1), "the kept message");
                assert!(took < Duration::from_millis(500), "waited {took:?}");
                Ok(())
            })
            .unwrap();
        assert_eq!(&storage[0][..bufs[0].len], b"BIG-MESSAGE");
        // SAFETY: two buffers of 64 bytes (`storage` was only read since).
        let status = unsafe { boundflow_recv_many(rx, bufs.as_mut_ptr(), 2, &mut received, 100) };
        assert_eq!((status, received), (BOUNDFLOW_OK, 1));
        assert_eq!(&storage[0][..bufs[0].len], b"queued");
        for handle in [tx, rx, registry] {
            assert_eq!(boundflow_handle_free(handle), BOUNDFLOW_OK);
        }
    }

    /// A free of a registry waits for a `sender_open` in progress on it (here held inside, on
    /// the registry's channel map), as documented; before, the open went on unprotected and
    /// made its handle after the free had returned.
    #[test]
    fn freeing_a_registry_waits_for_an_open_in_progress_on_it() {
        let [registry, tx, rx] = open("orchestration.command");
        // The registry's map, as a raw address: protected by its own call only while that
        // lasts, but the free below cannot drop it before the blocked open is done, and that
        // waits for this lock.
        let map = HANDLES
            .with(registry, |entry| match entry {
                Entry::Registry(registry) => Ok(std::ptr::from_ref(&registry.opened) as usize),
                _ => panic!("a registry handle"),
            })
            .unwrap();
        let (locked, on_lock) = std::sync::mpsc::channel();
        let holder = std::thread::spawn(move || {
            type Map = Mutex<std::collections::HashMap<String, (Weak<Opened>, ChannelHandle)>>;
            // SAFETY: see above: alive until the open that waits for this guard has ended.
            let held = unsafe { &*(map as *const Map) }.lock();
            locked.send(()).unwrap();
            std::thread::sleep(Duration::from_millis(500));
            drop(held);
        });
        on_lock.recv().unwrap();
        let opener = std::thread::spawn(move || {
            let name = c"orchestration.command";
            let mut out = 0;
            // SAFETY: valid string and out-pointer.
            let status = unsafe { boundflow_sender_open(registry, name.as_ptr(), 8, &mut out) };
            (status, out)
        });
        // Long enough for the open to be inside, waiting for the map.
        std::thread::sleep(Duration::from_millis(200));
        let started = Instant::now();
        assert_eq!(boundflow_handle_free(registry), BOUNDFLOW_OK);
        // The open can end only when the map is let go, 300 ms from now.
        let took = started.elapsed();
        assert!(
            took >= Duration::from_millis(200),
            "the free waited only {took:?}"
        );
        holder.join().unwrap();
        let (status, sender) = opener.join().unwrap();
        assert_eq!(status, BOUNDFLOW_OK, "the open began before the free");
        for handle in [sender, tx, rx] {
            assert_eq!(boundflow_handle_free(handle), BOUNDFLOW_OK);
        }
    }
}
