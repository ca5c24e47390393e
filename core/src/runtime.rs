//! Where a thread may block: the one place that asks whether we are inside a tokio runtime.
//!
//! tokio's own `blocking_send`/`blocking_recv` panic inside a runtime, and blocking the only
//! thread of a current-thread runtime deadlocks it. Every blocking path in boundflow first tries
//! without waiting, then asks [`blocking_permit`] before it waits:
//!
//! - outside any tokio runtime (plain threads, FFI threads, other executors): block;
//! - on a multi-thread runtime: block inside `tokio::task::block_in_place`;
//! - on a current-thread runtime: refuse, and the call returns `WouldDeadlock` with the message.
//!
//! Known gaps: a `LocalSet` on a multi-thread runtime cannot be detected through tokio's public
//! API and `block_in_place` panics there — do not call `*_blocking` from a `LocalSet` task. A
//! `spawn_blocking` thread of a current-thread runtime is refused although blocking there is
//! safe: wrap such calls in [`with_blocking_allowed`].
//!
//! Without the `tokio` feature there is nothing to detect and every blocking call may block.

use std::cell::Cell;
use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::thread::{self, Thread};
use std::time::{Duration, Instant};

use crossbeam_utils::Backoff;

thread_local! {
    static BLOCKING_ALLOWED: Cell<bool> = const { Cell::new(false) };
}

/// Permission to block the current thread, from [`blocking_permit`].
#[derive(Debug)]
#[must_use = "a permit does nothing until `run` is called"]
pub struct BlockingPermit {
    in_place: bool,
}

impl BlockingPermit {
    /// Runs `f`, which may block, in the way the current context allows.
    pub fn run<R>(self, f: impl FnOnce() -> R) -> R {
        #[cfg(feature = "tokio")]
        if self.in_place {
            return tokio::task::block_in_place(f);
        }
        let _ = self.in_place;
        f()
    }
}

/// Whether the current thread may block, and how; `None` where blocking would deadlock.
pub fn blocking_permit() -> Option<BlockingPermit> {
    if BLOCKING_ALLOWED.with(Cell::get) {
        return Some(BlockingPermit { in_place: false });
    }
    tokio_permit()
}

#[cfg(feature = "tokio")]
fn tokio_permit() -> Option<BlockingPermit> {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current() {
        Err(_) => Some(BlockingPermit { in_place: false }),
        Ok(handle) => match handle.runtime_flavor() {
            RuntimeFlavor::MultiThread => Some(BlockingPermit { in_place: true }),
            _ => None,
        },
    }
}

#[cfg(not(feature = "tokio"))]
fn tokio_permit() -> Option<BlockingPermit> {
    Some(BlockingPermit { in_place: false })
}

/// Runs `f` with blocking calls allowed on this thread even where a current-thread tokio runtime
/// is detected. Use it only where you know the thread is not a runtime's only worker, e.g. a
/// `spawn_blocking` thread of a current-thread runtime.
///
/// ```
/// use boundflow_core::runtime::{blocking_permit, with_blocking_allowed};
/// assert!(with_blocking_allowed(|| blocking_permit().is_some()));
/// ```
pub fn with_blocking_allowed<R>(f: impl FnOnce() -> R) -> R {
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            BLOCKING_ALLOWED.with(|allowed| allowed.set(self.0));
        }
    }
    let _restore = Restore(BLOCKING_ALLOWED.with(|allowed| allowed.replace(true)));
    f()
}

struct ThreadWaker(Thread);

impl Wake for ThreadWaker {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.0.unpark();
    }
}

thread_local! {
    // One waker per thread, made once: blocking on a future allocates nothing per call.
    static THREAD_WAKER: Waker = Waker::from(Arc::new(ThreadWaker(thread::current())));
}

impl BlockingPermit {
    /// Drives `fut` to completion on this thread, parking between polls, in the way the current
    /// context allows (see [`run`](Self::run)).
    pub fn block_on<F: Future>(self, fut: F) -> F::Output {
        self.run(|| park_on(fut))
    }
}

impl BlockingPermit {
    /// Retries `attempt` — `Ok` ends the call, `Err(state)` hands the state (say, the message)
    /// back — spinning, then yielding, for up to [`SPIN_BEFORE_PARKING`]; if that does not
    /// settle it, drives `wait(state)` to completion, parking the thread between polls.
    pub fn spin_then_block_on<S, R, F: Future<Output = R>>(
        self,
        state: S,
        deadline: Option<Instant>,
        attempt: impl FnMut(S) -> Result<R, S>,
        wait: impl FnOnce(S) -> F,
    ) -> R {
        self.run(|| match spin_before_parking(state, deadline, attempt) {
            Ok(done) => done,
            Err(state) => park_on(wait(state)),
        })
    }
}

/// How long a blocking call keeps retrying (spinning, then yielding the CPU) before it parks the
/// thread: about what parking and being woken again cost here, so that a wait on a busy
/// channel, where room or a message turns up within microseconds, costs no context switch,
/// while a long wait costs at most about twice what it must (the spin-then-park rule).
///
/// Measured on the 2-core CI machine (`benches/README.md`): crossbeam blocking SPSC at capacity
/// 1, 10 × 200,000 messages, made 161,672–256,518 context switches raw and 196–532 under
/// boundflow with this spin.
pub const SPIN_BEFORE_PARKING: Duration = Duration::from_micros(20);

/// Retries `attempt` — `Ok` ends the wait, `Err(state)` hands the state back — spinning, then
/// yielding, until it succeeds, [`SPIN_BEFORE_PARKING`] has passed or `deadline` has; `Err(state)`
/// means: park now.
pub(crate) fn spin_before_parking<S, R>(
    mut state: S,
    deadline: Option<Instant>,
    mut attempt: impl FnMut(S) -> Result<R, S>,
) -> Result<R, S> {
    let passed = |now: Instant| deadline.is_some_and(|deadline| now >= deadline);
    let backoff = Backoff::new();
    let mut spin_until = None;
    loop {
        if backoff.is_completed() {
            // The clock is read only once spinning is over: the spins take well under a
            // microsecond, the yields longer.
            let now = Instant::now();
            if now >= *spin_until.get_or_insert(now + SPIN_BEFORE_PARKING) || passed(now) {
                return Err(state);
            }
            thread::yield_now();
        } else {
            if deadline.is_some() && passed(Instant::now()) {
                return Err(state);
            }
            backoff.snooze();
        }
        state = match attempt(state) {
            Ok(done) => return Ok(done),
            Err(state) => state,
        };
    }
}

fn park_on<F: Future>(fut: F) -> F::Output {
    let mut fut = pin!(fut);
    let mut poll_with = |waker: &Waker| {
        let mut cx = Context::from_waker(waker);
        loop {
            if let Poll::Ready(out) = fut.as_mut().poll(&mut cx) {
                return out;
            }
            thread::park();
        }
    };
    with_thread_waker(|waker| poll_with(waker))
}

/// Runs `f` with a waker that unparks the current thread (cached per thread: no allocation).
pub(crate) fn with_thread_waker<R>(f: impl FnOnce(&Waker) -> R) -> R {
    // The cached waker is gone only while this thread's locals are being torn down.
    match THREAD_WAKER.try_with(|waker| waker.clone()) {
        Ok(waker) => f(&waker),
        Err(_) => f(&Waker::from(Arc::new(ThreadWaker(thread::current())))),
    }
}
