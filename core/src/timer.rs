//! A runtime-agnostic deadline for async waits.
//!
//! `tokio::time::sleep` panics without a tokio runtime, and also inside one built without
//! `enable_time()` (which `Handle::try_current()` cannot tell apart), so boundflow waits on
//! [`futures_timer::Delay`]: it works on tokio (both flavours, with or without time), smol,
//! async-executor and `futures::executor::block_on`, for one helper thread. The timer is armed
//! only once the wrapped future is pending, so a wait that succeeds at once costs no timer.

use std::future::{Future, poll_fn};
use std::pin::{Pin, pin};
use std::task::Poll;
use std::time::Instant;

use futures_timer::Delay;

/// The longest single timer: a far deadline is waited for in slices, so that the timer never
/// computes an `Instant` beyond what the platform can hold.
const MAX_SLICE: std::time::Duration = std::time::Duration::from_secs(24 * 60 * 60);

/// Runs `fut` until it completes (`Some`) or `deadline` passes (`None`), never returning `None`
/// before `deadline`.
///
/// Dropping `fut` on expiry is the caller's concern: pass only futures that are safe to drop.
pub async fn with_deadline<F: Future>(fut: F, deadline: Instant) -> Option<F::Output> {
    let mut fut = pin!(fut);
    let mut delay: Option<Delay> = None;
    poll_fn(move |cx| {
        if let Poll::Ready(out) = fut.as_mut().poll(cx) {
            return Poll::Ready(Some(out));
        }
        loop {
            let now = Instant::now();
            if now >= deadline {
                return Poll::Ready(None);
            }
            let timer = delay.get_or_insert_with(|| Delay::new((deadline - now).min(MAX_SLICE)));
            match Pin::new(timer).poll(cx) {
                Poll::Pending => return Poll::Pending,
                // A timer may fire a hair early, or a slice may end: re-check the clock, re-arm.
                Poll::Ready(()) => delay = None,
            }
        }
    })
    .await
}

/// Waits until `deadline` (never earlier).
pub async fn sleep_until(deadline: Instant) {
    with_deadline(std::future::pending::<()>(), deadline).await;
}

/// Yields once to the executor: returns `Pending` after waking itself, so other tasks (say, the
/// consumer on a current-thread runtime) run before this one continues.
pub async fn yield_now() {
    let mut yielded = false;
    poll_fn(move |cx| {
        if yielded {
            return Poll::Ready(());
        }
        yielded = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    })
    .await;
}
