//! Where a thread may block: the one place that asks whether we are inside a tokio runtime.
//!
//! tokio's own `blocking_send`/`blocking_recv` panic inside a runtime, and blocking the only
//! thread of a current-thread runtime deadlocks it. Every blocking path in boundflow first tries
//! without waiting, then waits only through [`block`]:
//!
//! - outside any tokio runtime (plain threads, FFI threads, other executors): block;
//! - on a multi-thread runtime: block inside `tokio::task::block_in_place`;
//! - on a current-thread runtime: refuse, and the call returns `WouldDeadlock` with the message.
//!
//! # A `LocalSet` on a multi-thread runtime
//! tokio offers no public way to tell that a task runs inside a `LocalSet`, and
//! `block_in_place` panics there ("can call blocking only when running on the multi-threaded
//! runtime"). boundflow catches that panic before anything of the call has run — the message
//! is held outside the closure tokio may refuse — and returns `WouldDeadlock(msg)`; no panic
//! escapes. The process's panic hook still runs, so the default hook prints that line to
//! stderr once per refused call. Where that is unwanted, or in a build with `panic = "abort"`
//! (where a panic cannot be caught and would abort the process), wrap `LocalSet` code in
//! [`with_blocking_refused`]: blocking calls inside it return `WouldDeadlock` without asking
//! tokio.
//!
//! # `spawn_blocking` threads of a current-thread runtime
//! They are refused although blocking there is safe (tokio's public API cannot tell them from
//! the runtime's own thread): wrap such calls in [`with_blocking_allowed`].
//!
//! Without the `tokio` feature there is nothing to detect and every blocking call may block.

use std::cell::Cell;
use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering::Relaxed};
use std::task::{Context, Poll, Wake, Waker};
use std::thread::{self, Thread};
use std::time::Instant;

use crate::policy::WaitStrategy;

/// What the current thread was told about blocking, overriding detection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Told {
    Nothing,
    Allowed,
    Refused,
}

thread_local! {
    static TOLD: Cell<Told> = const { Cell::new(Told::Nothing) };
}

/// Permission to block the current thread, from [`blocking_permit`].
#[derive(Debug)]
#[must_use = "a permit does nothing until `run` is called"]
pub struct BlockingPermit {
    in_place: bool,
}

impl BlockingPermit {
    /// Runs `f(state)`, which may block, in the way the current context allows. `Err(state)`,
    /// with `f` never called, where tokio refused to block here after all (a `LocalSet` on a
    /// multi-thread runtime: see the module docs).
    pub fn run<S, R>(self, state: S, f: impl FnOnce(S) -> R) -> Result<R, S> {
        #[cfg(feature = "tokio")]
        if self.in_place {
            return run_in_place(state, f);
        }
        let _ = self.in_place;
        Ok(f(state))
    }
}

/// `block_in_place(|| f(state))`, with tokio's refusal (a panic before `f` runs) turned into
/// `Err(state)`. `state` stays outside the closure tokio may refuse, so it survives the panic.
#[cfg(feature = "tokio")]
fn run_in_place<S, R>(state: S, f: impl FnOnce(S) -> R) -> Result<R, S> {
    use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
    let mut state = Some(state);
    let mut out = None;
    let caught = catch_unwind(AssertUnwindSafe(|| {
        tokio::task::block_in_place(|| {
            if let Some(state) = state.take() {
                out = Some(f(state));
            }
        });
    }));
    match (out, state, caught) {
        (Some(out), _, _) => Ok(out),
        // Refused before `f` ran: nothing of the call has happened.
        (None, Some(state), _) => Err(state),
        // `f` itself panicked (boundflow's own code does not; a message's `Drop` might): not
        // ours to swallow.
        (None, None, Err(panic)) => resume_unwind(panic),
        (None, None, Ok(())) => resume_unwind(Box::new("block_in_place returned without running")),
    }
}

/// Whether the current thread may block, and how; `None` where blocking would deadlock (a
/// current-thread tokio runtime, or inside [`with_blocking_refused`]).
pub fn blocking_permit() -> Option<BlockingPermit> {
    match TOLD.with(Cell::get) {
        Told::Allowed => Some(BlockingPermit { in_place: false }),
        Told::Refused => None,
        Told::Nothing => tokio_permit(),
    }
}

/// The one way boundflow's blocking calls block: asks [`blocking_permit`], then runs
/// `wait(state)` — which may block the thread — as the context allows. `Err(state)` where
/// blocking is refused; the caller returns `WouldDeadlock` with it.
pub fn block<S, R>(state: S, wait: impl FnOnce(S) -> R) -> Result<R, S> {
    match blocking_permit() {
        Some(permit) => permit.run(state, wait),
        None => Err(state),
    }
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

/// Runs `f` with `told` in force on this thread, restoring what was there before (also on
/// unwind).
fn with_told<R>(told: Told, f: impl FnOnce() -> R) -> R {
    struct Restore(Told);
    impl Drop for Restore {
        fn drop(&mut self) {
            TOLD.with(|cell| cell.set(self.0));
        }
    }
    let _restore = Restore(TOLD.with(|cell| cell.replace(told)));
    f()
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
    with_told(Told::Allowed, f)
}

/// Runs `f` with every blocking call on this thread refused: a call that would wait returns
/// `WouldDeadlock` instead. For code that runs where blocking is never right — a `LocalSet`, a
/// GUI or event-loop thread — and for `panic = "abort"` builds, where boundflow cannot catch
/// tokio's refusal inside a `LocalSet` (see the module docs).
///
/// ```
/// use boundflow_core::runtime::{blocking_permit, with_blocking_refused};
/// assert!(with_blocking_refused(|| blocking_permit().is_none()));
/// ```
pub fn with_blocking_refused<R>(f: impl FnOnce() -> R) -> R {
    with_told(Told::Refused, f)
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

/// The one blocking sequence every `*_blocking` wait goes through, once the caller's
/// non-waiting try has failed: asks where the thread may block ([`block`]); retries `attempt`
/// (`Ok` ends the wait, `Err(state)` hands the state, say the message, back) as `strategy` says;
/// then runs `park(state)`, which registers, re-checks and parks the thread until it is done or
/// `deadline` passes. `Err(state)` where blocking is refused: the caller returns
/// `WouldDeadlock` with it.
///
/// `history` is this side of this channel's [`WaitHistory`]: whether `Backoff`'s retries have
/// been ending waits.
pub fn block_with<S, R>(
    strategy: WaitStrategy,
    history: &WaitHistory,
    state: S,
    deadline: Option<Instant>,
    attempt: impl FnMut(S) -> Result<R, S>,
    park: impl FnOnce(S) -> R,
) -> Result<R, S> {
    block(state, |state| {
        match retry_before_parking(strategy, history, state, deadline, attempt) {
            Ok(done) => done,
            Err(state) => park(state),
        }
    })
}

/// Whether the retries of a `Backoff` wait (its spins, then its yields) have been ending waits,
/// for one side (the senders, or the receiver) of one channel. A retry that ends its wait earns
/// full trust; a wait that parks anyway costs one point; without trust a wait parks at once
/// (as `Park` does), except for a wait of a side that has just woken the other (see
/// [`woke_other_side`](Self::woke_other_side)) and one wait in
/// [`PROBE_EVERY`](Self::PROBE_EVERY), which retry to find out whether waits have turned short
/// again.
///
/// Why: on two cores, a producer and a consumer that meet at a full or empty queue hand over
/// within microseconds, and retrying through that beats a park and a wake by several times
/// (`boundflow bench`, blocking SPSC); but a producer blocked on a slow consumer would spin
/// (about 2 µs here: 127 spin hints at 16.5 ns) and yield once per freed slot for nothing —
/// the slow-consumer scenario in `benches/grid.rs`, where that was most of boundflow's CPU
/// over the raw backends'.
///
/// Why the wake counts: where waking a parked thread is slow (a VM whose idle virtual CPU
/// takes tens of microseconds to resume), two sides that both park at once keep each other
/// waiting for a full wake-up per message, and a probe's retries cannot end a wait whose other
/// side is asleep, so trust never came back (crossbeam blocking SPSC 1 on a KVM Intel Xeon:
/// parks of 60–230 µs, and 0.21x raw crossbeam's throughput at 4.5x its CPU per message in
/// `benches/README.md`'s grid at b4a7e69). A side that has just woken the other is about to be
/// answered: it retries. A slow consumer is never waiting, so its producers never wake it, and
/// they still park at once.
///
/// A heuristic: every value is safe, so every access is relaxed, and only waits and wake-ups
/// touch it.
#[derive(Debug)]
pub struct WaitHistory {
    trust: AtomicU8,
    probes: AtomicU8,
    /// Set by [`woke_other_side`](Self::woke_other_side), taken by the next untrusted wait.
    woke: AtomicBool,
}

impl Default for WaitHistory {
    fn default() -> Self {
        Self::new()
    }
}

impl WaitHistory {
    /// Trust after a retry that ended its wait (and at the start).
    pub const FULL_TRUST: u8 = 8;
    /// How often a wait without trust retries anyway.
    pub const PROBE_EVERY: u8 = 16;

    /// Starts trusting the retries, as crossbeam's `Backoff` always does.
    pub const fn new() -> Self {
        Self {
            trust: AtomicU8::new(Self::FULL_TRUST),
            probes: AtomicU8::new(0),
            woke: AtomicBool::new(false),
        }
    }

    /// Whether this wait should retry before parking.
    pub fn should_retry(&self) -> bool {
        self.trust.load(Relaxed) > 0
            || self.take_woke()
            || self.probes.fetch_add(1, Relaxed) % Self::PROBE_EVERY == 0
    }

    /// This side woke a waiter of the other side (a push woke the receiver, or a pop a
    /// sender): the next wait on this side retries, trusted or not. Called on wake-ups only.
    pub fn woke_other_side(&self) {
        if !self.woke.load(Relaxed) {
            self.woke.store(true, Relaxed);
        }
    }

    /// Takes the mark [`woke_other_side`](Self::woke_other_side) left, if any.
    pub(crate) fn take_woke(&self) -> bool {
        self.woke.load(Relaxed) && self.woke.swap(false, Relaxed)
    }

    /// A retry ended its wait.
    pub fn paid_off(&self) {
        if self.trust.load(Relaxed) != Self::FULL_TRUST {
            self.trust.store(Self::FULL_TRUST, Relaxed);
        }
    }

    /// The retries ran out: the wait parks.
    pub fn parked_anyway(&self) {
        let trust = self.trust.load(Relaxed);
        if trust > 0 {
            self.trust.store(trust - 1, Relaxed);
        }
    }
}

/// Retries `attempt` as `strategy` says — not at all (`Park`); seven times with exponentially
/// growing spins between, then four times with a yield between, while `history` says that pays
/// (`Backoff`); or the spins, then yielding up to a time limit (`Spin`, whatever the history) —
/// and never past `deadline`. `Err(state)`: park now.
fn retry_before_parking<S, R>(
    strategy: WaitStrategy,
    history: &WaitHistory,
    mut state: S,
    deadline: Option<Instant>,
    mut attempt: impl FnMut(S) -> Result<R, S>,
) -> Result<R, S> {
    let spin_limit = match strategy {
        WaitStrategy::Park => return Err(state),
        WaitStrategy::Backoff if !history.should_retry() => return Err(state),
        WaitStrategy::Backoff => None,
        WaitStrategy::Spin(limit) => Some(limit),
    };
    let passed = |now: Instant| deadline.is_some_and(|deadline| now >= deadline);
    // A `Backoff` retry that ends the wait restores trust.
    let ended = |done| {
        if spin_limit.is_none() {
            history.paid_off();
        }
        Ok(done)
    };
    // The spin phase of crossbeam's `Backoff`: 1, 2, 4, ... 64 spin hints between tries.
    for step in 0..=SPIN_STEPS {
        if deadline.is_some() && passed(Instant::now()) {
            return Err(state);
        }
        for _ in 0..1u32 << step {
            std::hint::spin_loop();
        }
        state = match attempt(state) {
            Ok(done) => return ended(done),
            Err(state) => state,
        };
    }
    let Some(limit) = spin_limit else {
        // `Backoff`: then the yield phase of crossbeam's.
        for _ in 0..YIELD_STEPS {
            if deadline.is_some() && passed(Instant::now()) {
                return Err(state);
            }
            thread::yield_now();
            state = match attempt(state) {
                Ok(done) => return ended(done),
                Err(state) => state,
            };
        }
        history.parked_anyway();
        return Err(state);
    };
    // `Spin`: then yield, trying again, until the limit. The clock is read only from here.
    let now = Instant::now();
    let until = now.checked_add(limit).unwrap_or(now);
    loop {
        let now = Instant::now();
        if now >= until || passed(now) {
            return Err(state);
        }
        thread::yield_now();
        state = match attempt(state) {
            Ok(done) => return Ok(done),
            Err(state) => state,
        };
    }
}

/// Doublings of the spin between tries before a wait yields or parks (crossbeam's
/// `SPIN_LIMIT`).
const SPIN_STEPS: u32 = 6;
/// Yields of a `Backoff` wait before it parks (crossbeam's `YIELD_LIMIT` less `SPIN_LIMIT`).
const YIELD_STEPS: u32 = 4;

/// Drives `fut` to completion on this thread, parking it between polls (no allocation: the
/// thread's waker is cached). Call it inside [`block`].
pub fn park_on<F: Future>(fut: F) -> F::Output {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs a `Backoff` wait whose attempt succeeds on try `succeed_on` (1-based; `None`:
    /// never); returns (tries made, whether it had to park).
    fn wait(history: &WaitHistory, succeed_on: Option<u32>) -> (u32, bool) {
        let mut tries = 0;
        let outcome = retry_before_parking(WaitStrategy::Backoff, history, (), None, |()| {
            tries += 1;
            if Some(tries) == succeed_on {
                Ok(())
            } else {
                Err(())
            }
        });
        (tries, outcome.is_err())
    }

    const SPIN_TRIES: u32 = SPIN_STEPS + 1;
    const ALL_TRIES: u32 = SPIN_TRIES + YIELD_STEPS;

    #[test]
    fn retries_stop_when_they_never_pay_and_come_back_when_they_do() {
        let history = WaitHistory::new();
        // Trusted at first: each fruitless wait spins, yields, parks, and costs one point.
        for _ in 0..WaitHistory::FULL_TRUST {
            assert_eq!(wait(&history, None), (ALL_TRIES, true));
        }
        // Out of trust: waits park at once, but one in PROBE_EVERY retries.
        let probed = (0..u32::from(WaitHistory::PROBE_EVERY) * 2)
            .filter(|_| wait(&history, None).0 > 0)
            .count();
        assert_eq!(probed, 2);
        // A probe whose retry ends the wait (here its first yield) restores full trust.
        let mut ended = false;
        for _ in 0..WaitHistory::PROBE_EVERY {
            if wait(&history, Some(SPIN_TRIES + 1)) == (SPIN_TRIES + 1, false) {
                ended = true;
                break;
            }
        }
        assert!(ended, "no wait probed");
        for _ in 0..WaitHistory::FULL_TRUST {
            assert_eq!(wait(&history, None), (ALL_TRIES, true));
        }
        assert_eq!(wait(&history, None).0, 0, "out of trust again");
    }

    #[test]
    fn a_wait_that_ends_while_spinning_restores_trust() {
        let history = WaitHistory::new();
        for _ in 0..WaitHistory::FULL_TRUST - 1 {
            wait(&history, None);
        }
        assert_eq!(wait(&history, Some(3)), (3, false));
        // Full trust again: eight fruitless waits retry before one parks at once.
        for _ in 0..WaitHistory::FULL_TRUST {
            assert_eq!(wait(&history, None), (ALL_TRIES, true));
        }
        // None left: the first distrusted wait is a probe, the next one is not.
        assert_eq!(wait(&history, None).0, ALL_TRIES);
        assert_eq!(wait(&history, None).0, 0);
    }

    #[test]
    fn a_side_that_woke_the_other_retries_its_next_wait_even_without_trust() {
        let history = WaitHistory::new();
        for _ in 0..WaitHistory::FULL_TRUST {
            wait(&history, None);
        }
        assert_eq!(wait(&history, None).0, ALL_TRIES, "the probe");
        assert_eq!(wait(&history, None).0, 0, "out of trust");
        // Two wake-ups before a wait count as one: the next wait retries, the one after not.
        history.woke_other_side();
        history.woke_other_side();
        assert_eq!(
            wait(&history, None),
            (ALL_TRIES, true),
            "retries after a wake-up"
        );
        assert_eq!(wait(&history, None).0, 0, "one retried wait per wake-up");
        // A retry after a wake-up that ends its wait restores full trust.
        history.woke_other_side();
        assert_eq!(wait(&history, Some(2)), (2, false));
        for _ in 0..WaitHistory::FULL_TRUST {
            assert_eq!(wait(&history, None), (ALL_TRIES, true));
        }
        assert!(!history.take_woke(), "the mark was taken");
    }

    #[test]
    fn park_and_spin_strategies_ignore_the_history() {
        let history = WaitHistory::new();
        let outcome = retry_before_parking(WaitStrategy::Park, &history, (), None, |()| Ok(()));
        assert!(outcome.is_err(), "park tries nothing before parking");
        for _ in 0..WaitHistory::FULL_TRUST {
            wait(&history, None);
        }
        let mut tries = 0;
        let limit = std::time::Duration::from_millis(2);
        let outcome = retry_before_parking(WaitStrategy::Spin(limit), &history, (), None, |()| {
            tries += 1;
            Err::<(), ()>(())
        });
        assert!(
            outcome.is_err() && tries > SPIN_TRIES,
            "spin retries whatever the history"
        );
    }
}
