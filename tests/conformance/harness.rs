//! The runtimes of the grid, and the operations a test calls the same way on each of them:
//! async runtimes use the async API; `std_threads` uses the blocking API on OS threads.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use boundflow::{
    BoundedChannel, ChannelBuilder, Receiver, RecvError, RecvTimeoutError, SendError,
    SendTimeoutError, Sender,
};

/// A spawned unit of work (task or thread) whose result can be awaited.
pub type Task<R> = Pin<Box<dyn Future<Output = R> + Send>>;

/// What a blocking call inside this runtime's context should do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockingInContext {
    /// Work (plain threads, tokio multi-thread via `block_in_place`, smol).
    Works,
    /// Refuse with `WouldDeadlock` (tokio current-thread).
    WouldDeadlock,
}

/// One column of the grid.
pub trait Runtime: 'static {
    /// Use the `_blocking` API on OS threads instead of the async API on tasks.
    const BLOCKING: bool;
    /// What a blocking call made inside `block_on` does here.
    const BLOCKING_IN_CONTEXT: BlockingInContext;

    /// Runs a test body to completion.
    fn block_on<F>(body: F) -> F::Output
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static;

    /// Spawns concurrent work: a task, or (for `std_threads`) a thread.
    fn spawn<F>(work: F) -> Task<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static;
}

fn tokio_task<R: Send + 'static>(handle: ::tokio::task::JoinHandle<R>) -> Task<R> {
    Box::pin(async move { handle.await.expect("task panicked") })
}

/// tokio's current-thread runtime, built without time (boundflow must not need tokio's timer).
pub struct TokioCurrentThread;

impl Runtime for TokioCurrentThread {
    const BLOCKING: bool = false;
    const BLOCKING_IN_CONTEXT: BlockingInContext = BlockingInContext::WouldDeadlock;

    fn block_on<F>(body: F) -> F::Output
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        ::tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime")
            .block_on(body)
    }

    fn spawn<F>(work: F) -> Task<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        tokio_task(::tokio::spawn(work))
    }
}

/// tokio's multi-thread runtime (2 workers), built without time.
pub struct TokioMultiThread;

impl Runtime for TokioMultiThread {
    const BLOCKING: bool = false;
    const BLOCKING_IN_CONTEXT: BlockingInContext = BlockingInContext::Works;

    fn block_on<F>(body: F) -> F::Output
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        ::tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .build()
            .expect("runtime")
            .block_on(body)
    }

    fn spawn<F>(work: F) -> Task<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        tokio_task(::tokio::spawn(work))
    }
}

/// A `LocalSet` on tokio's multi-thread runtime: tasks run on the `block_on` thread, where
/// `block_in_place` refuses (tokio panics there; boundflow returns `WouldDeadlock`).
pub struct TokioLocalSet;

impl Runtime for TokioLocalSet {
    const BLOCKING: bool = false;
    const BLOCKING_IN_CONTEXT: BlockingInContext = BlockingInContext::WouldDeadlock;

    fn block_on<F>(body: F) -> F::Output
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let runtime = ::tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .build()
            .expect("runtime");
        ::tokio::task::LocalSet::new().block_on(&runtime, body)
    }

    fn spawn<F>(work: F) -> Task<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        tokio_task(::tokio::task::spawn_local(work))
    }
}

/// smol: a non-tokio executor.
pub struct Smol;

impl Runtime for Smol {
    const BLOCKING: bool = false;
    const BLOCKING_IN_CONTEXT: BlockingInContext = BlockingInContext::Works;

    fn block_on<F>(body: F) -> F::Output
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        ::smol::block_on(body)
    }

    fn spawn<F>(work: F) -> Task<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        Box::pin(::smol::spawn(work))
    }
}

/// Plain OS threads and the blocking API.
pub struct StdThreads;

impl Runtime for StdThreads {
    const BLOCKING: bool = true;
    const BLOCKING_IN_CONTEXT: BlockingInContext = BlockingInContext::Works;

    fn block_on<F>(body: F) -> F::Output
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        ::futures::executor::block_on(body)
    }

    fn spawn<F>(work: F) -> Task<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let handle = std::thread::spawn(move || ::futures::executor::block_on(work));
        Box::pin(async move { handle.join().expect("thread panicked") })
    }
}

/// A backend the grid can make channels on.
pub trait Backend: BoundedChannel + Default {}
impl<B: BoundedChannel + Default> Backend for B {}

/// A channel named after the test, with the default `block` policy.
pub fn channel<T: Send + 'static, B: Backend>(capacity: usize) -> (Sender<T, B>, Receiver<T, B>) {
    ChannelBuilder::new(B::default(), "conformance.test", capacity)
        .build()
        .expect("valid channel")
}

/// `send` or `send_blocking`.
pub async fn send<R: Runtime, T: Send + 'static, B: Backend>(
    tx: &Sender<T, B>,
    msg: T,
) -> Result<(), SendError<T>> {
    if R::BLOCKING {
        tx.send_blocking(msg)
    } else {
        tx.send(msg).await
    }
}

/// `send_timeout` or `send_timeout_blocking`.
pub async fn send_timeout<R: Runtime, T: Send + 'static, B: Backend>(
    tx: &Sender<T, B>,
    msg: T,
    wait: Duration,
) -> Result<(), SendTimeoutError<T>> {
    if R::BLOCKING {
        tx.send_timeout_blocking(msg, wait)
    } else {
        tx.send_timeout(msg, wait).await
    }
}

/// `recv` or `recv_blocking`.
pub async fn recv<R: Runtime, T: Send + 'static, B: Backend>(
    rx: &mut Receiver<T, B>,
) -> Result<T, RecvError> {
    if R::BLOCKING {
        rx.recv_blocking()
    } else {
        rx.recv().await
    }
}

/// `recv_timeout` or `recv_timeout_blocking`.
pub async fn recv_timeout<R: Runtime, T: Send + 'static, B: Backend>(
    rx: &mut Receiver<T, B>,
    wait: Duration,
) -> Result<T, RecvTimeoutError> {
    if R::BLOCKING {
        rx.recv_timeout_blocking(wait)
    } else {
        rx.recv_timeout(wait).await
    }
}

/// Sleeps without needing any runtime's timer.
pub async fn sleep<R: Runtime>(wait: Duration) {
    if R::BLOCKING {
        std::thread::sleep(wait);
    } else {
        ::futures_timer::Delay::new(wait).await;
    }
}

/// Asserts the monitor identity that must hold once activity has stopped.
pub fn assert_counters_add_up(stats: &boundflow::ChannelStats) {
    assert_eq!(
        stats.sent,
        stats.received + stats.depth as u64 + stats.evicted + stats.discarded_at_close,
        "sent == received + depth + evicted + discarded_at_close: {stats:?}"
    );
    assert!(stats.depth <= stats.capacity, "{stats:?}");
    assert!((0.0..=1.0).contains(&stats.saturation), "{stats:?}");
}
