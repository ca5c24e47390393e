//! Fixed channel workloads — SPSC or MPSC, blocking or async, any capacity — run on a raw backend
//! or on boundflow over the same backend, so both can be measured side by side in one run.
//!
//! Every run moves `messages` messages from `producers` producers to one consumer and returns the
//! sum of the sequence numbers received, which the caller can check against [`expected_sum`].
//! Messages are `u64` unless a run names another [`Message`] ([`Payload`] for larger ones;
//! [`for_message_size`] picks one by its size in bytes).
// This crate wraps (or measures) the raw constructor that clippy.toml forbids elsewhere.
#![allow(clippy::disallowed_methods)]
#![forbid(unsafe_code)]
#![allow(clippy::expect_used)] // a broken benchmark channel should stop the run loudly

use std::future::Future;
use std::hint::black_box;
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::resource::{UsageWho, getrusage};

use boundflow::{BoundedChannel, ChannelBuilder, Receiver, Sender};

/// A workload's shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Workload {
    /// Producer threads (blocking) or tasks (async).
    pub producers: usize,
    /// Channel capacity.
    pub capacity: usize,
    /// Messages in all, split evenly between producers.
    pub messages: u64,
}

impl Workload {
    fn per_producer(&self) -> u64 {
        self.messages / self.producers as u64
    }

    /// The messages actually moved (`messages` rounded down to a multiple of `producers`).
    pub fn total(&self) -> u64 {
        self.per_producer() * self.producers as u64
    }
}

/// The sum a correct run returns: every producer sends `0..per_producer`.
pub fn expected_sum(workload: &Workload) -> u64 {
    let per = workload.per_producer();
    workload.producers as u64 * (per * per.saturating_sub(1) / 2)
}

/// What a workload moves: made from a sequence number, which the consumer reads back for the
/// checksum.
pub trait Message: std::fmt::Debug + Send + 'static {
    /// The message carrying `seq`.
    fn new(seq: u64) -> Self;
    /// The sequence number it carries.
    fn seq(&self) -> u64;
}

impl Message for u64 {
    fn new(seq: u64) -> Self {
        seq
    }
    fn seq(&self) -> u64 {
        *self
    }
}

/// A message of `8 * WORDS` bytes, moved by value like a user's struct; every word holds the
/// sequence number, so building one writes all of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Payload<const WORDS: usize>(pub [u64; WORDS]);

impl<const WORDS: usize> Message for Payload<WORDS> {
    fn new(seq: u64) -> Self {
        Self([seq; WORDS])
    }
    fn seq(&self) -> u64 {
        self.0.first().copied().unwrap_or_default()
    }
}

/// The message sizes [`for_message_size`] knows, in bytes.
pub const MESSAGE_SIZES: [usize; 5] = [8, 64, 256, 1024, 4096];

/// Something to run with a message type chosen at run time (see [`for_message_size`]).
pub trait WithMessage {
    /// What the run returns.
    type Output;
    /// Runs with messages of type `M`.
    fn run<M: Message>(self) -> Self::Output;
}

/// Runs `with` on the message type of `bytes` bytes (`u64` for 8, else a [`Payload`]); `None`
/// for a size not in [`MESSAGE_SIZES`].
pub fn for_message_size<W: WithMessage>(bytes: usize, with: W) -> Option<W::Output> {
    Some(match bytes {
        8 => with.run::<u64>(),
        64 => with.run::<Payload<8>>(),
        256 => with.run::<Payload<32>>(),
        1024 => with.run::<Payload<128>>(),
        4096 => with.run::<Payload<512>>(),
        _ => return None,
    })
}

/// The median of `values` (sorted in place); NaN when empty.
pub fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    match n {
        0 => f64::NAN,
        _ if n % 2 == 1 => values[n / 2],
        _ => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

/// The median and range of a set of rounds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Spread {
    /// The median.
    pub median: f64,
    /// The smallest value.
    pub min: f64,
    /// The largest value.
    pub max: f64,
}

impl Spread {
    /// The median and range of `values`.
    pub fn of(values: &[f64]) -> Self {
        Self {
            median: median(&mut values.to_vec()),
            min: values.iter().copied().fold(f64::INFINITY, f64::min),
            max: values.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        }
    }

    /// `max - min`.
    pub fn width(&self) -> f64 {
        self.max - self.min
    }
}

impl std::fmt::Display for Spread {
    /// `median [min–max]` to two decimals.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:.2} [{:.2}–{:.2}]", self.median, self.min, self.max)
    }
}

/// CPU time used so far (user + system) by `who`: the whole process (`RUSAGE_SELF`, all
/// threads) or the calling thread (`RUSAGE_THREAD`). Zero if the kernel refuses (never here).
fn cpu_time(who: UsageWho) -> Duration {
    let Ok(usage) = getrusage(who) else {
        return Duration::ZERO;
    };
    let micros = |t: nix::sys::time::TimeVal| {
        Duration::from_secs(t.tv_sec().max(0) as u64)
            + Duration::from_micros(t.tv_usec().max(0) as u64)
    };
    micros(usage.user_time()) + micros(usage.system_time())
}

/// CPU time used so far by the whole process, every thread included (`getrusage`).
pub fn process_cpu_time() -> Duration {
    cpu_time(UsageWho::RUSAGE_SELF)
}

/// CPU time used so far by the calling thread.
pub fn thread_cpu_time() -> Duration {
    cpu_time(UsageWho::RUSAGE_THREAD)
}

/// What one measured run cost.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Cost {
    /// Wall-clock time.
    pub wall: Duration,
    /// CPU time of the whole process (all threads) during the run.
    pub cpu: Duration,
}

/// Runs `run` once and measures its wall time and the process's CPU time.
pub fn measure(run: impl FnOnce()) -> Cost {
    let (cpu, wall) = (process_cpu_time(), Instant::now());
    run();
    Cost {
        wall: wall.elapsed(),
        cpu: process_cpu_time().saturating_sub(cpu),
    }
}

/// The slow-consumer scenario: `producers` blocking producers keep a channel of `capacity` full
/// while one consumer takes a message every `pace` (it spins until the next one is due), so the
/// producers spend the run blocked. Returns the wall time, the producers' CPU (the process's
/// less the consumer thread's) and the messages moved.
pub fn run_slow_consumer<C: BlockingChannel>(
    producers: usize,
    capacity: usize,
    messages: u64,
    pace: Duration,
) -> SlowConsumer {
    let workload = Workload {
        producers,
        capacity,
        messages,
    };
    let (tx, mut rx) = C::make(capacity);
    let per = workload.per_producer();
    let start_cpu = process_cpu_time();
    let start = Instant::now();
    let senders = spawn_producers::<u64, C>(&tx, producers, per);
    drop(tx);
    let consumer_cpu_start = thread_cpu_time();
    let mut due = Instant::now();
    let mut received = 0u64;
    while let Some(msg) = C::recv(&mut rx) {
        black_box(msg);
        received += 1;
        due += pace;
        while Instant::now() < due {
            std::hint::spin_loop();
        }
    }
    let consumer_cpu = thread_cpu_time().saturating_sub(consumer_cpu_start);
    for sender in senders {
        sender.join().expect("producer panicked");
    }
    let wall = start.elapsed();
    let process_cpu = process_cpu_time().saturating_sub(start_cpu);
    SlowConsumer {
        wall,
        producers_cpu: process_cpu.saturating_sub(consumer_cpu),
        received,
    }
}

/// What [`run_slow_consumer`] measured.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SlowConsumer {
    /// Wall-clock time of the run.
    pub wall: Duration,
    /// CPU time of everything but the consumer thread: the blocked producers.
    pub producers_cpu: Duration,
    /// Messages received.
    pub received: u64,
}

impl SlowConsumer {
    /// The producers' CPU as cores busy on average.
    pub fn producer_cores(&self) -> f64 {
        self.producers_cpu.as_secs_f64() / self.wall.as_secs_f64().max(f64::MIN_POSITIVE)
    }
}

/// `iterations` of one `try_send` then one `try_recv` on one thread, at capacity 64, on the
/// channel named by `kind` (`<backend>/raw`, `<backend>/boundflow`, or `<backend>/any` for
/// boundflow over `AnyBackend` set to that backend; backend one of `tokio`,
/// `flume`, `crossbeam`, `async_channel`): the loop the callgrind bench counts instructions
/// of. Returns the sum received, or `None` for an unknown `kind`.
pub fn try_pairs(kind: &str, iterations: u64) -> Option<u64> {
    use boundflow::{AsyncChannel as AsyncChannelBackend, Crossbeam, Flume, Tokio};
    const CAPACITY: usize = 64;
    // The raw ends differ in type (tokio's receiver needs `&mut`), so one macro, not a fn.
    macro_rules! raw {
        ($channel:expr) => {{
            #[allow(unused_mut)]
            let (tx, mut rx) = $channel;
            pairs(
                iterations,
                |i| tx.try_send(i).expect("room"),
                || rx.try_recv().expect("queued"),
            )
        }};
    }
    Some(match kind {
        "tokio/raw" => raw!(tokio::sync::mpsc::channel(CAPACITY)),
        "flume/raw" => raw!(flume::bounded(CAPACITY)),
        "crossbeam/raw" => raw!(crossbeam_channel::bounded(CAPACITY)),
        "async_channel/raw" => raw!(async_channel::bounded(CAPACITY)),
        "tokio/boundflow" => boundflow_pairs::<Tokio>(CAPACITY, iterations),
        "flume/boundflow" => boundflow_pairs::<Flume>(CAPACITY, iterations),
        "crossbeam/boundflow" => boundflow_pairs::<Crossbeam>(CAPACITY, iterations),
        "async_channel/boundflow" => boundflow_pairs::<AsyncChannelBackend>(CAPACITY, iterations),
        any if any.ends_with("/any") => {
            let backend = boundflow::AnyBackend::from_name(any.trim_end_matches("/any")).ok()?;
            let (tx, mut rx) = ChannelBuilder::new(backend, "bench.any", CAPACITY)
                .build::<u64>()
                .ok()?;
            pairs(
                iterations,
                |i| tx.try_send(i).expect("room"),
                || rx.try_recv().expect("queued"),
            )
        }
        _ => return None,
    })
}

fn boundflow_pairs<B: BoundedChannel + Default>(capacity: usize, iterations: u64) -> u64 {
    let (tx, mut rx) = boundflow_pair::<u64, B>(capacity);
    pairs(
        iterations,
        |i| tx.try_send(i).expect("room"),
        || rx.try_recv().expect("queued"),
    )
}

/// `send(i).await` then `recv().await` on one thread, `iterations` times, on a channel of 64
/// that never fills: each future completes at its first poll (polled with a no-op waker). For
/// counting the instructions of the async calls under callgrind (`benches/async_loop.rs`).
/// Generic only, so that it is compiled into the binary that names a channel, and the
/// non-generic [`try_pairs`] is built as before.
///
/// # Panics
/// If a send or a receive does not complete at its first poll.
#[inline(never)]
pub fn async_pairs<C: AsyncChannel>(iterations: u64) -> u64 {
    use std::task::{Context, Poll, Waker};
    let (tx, mut rx) = C::make(64);
    let mut cx = Context::from_waker(Waker::noop());
    let mut sum = 0u64;
    for i in 0..iterations {
        let sent = std::pin::pin!(C::send(&tx, black_box(i))).poll(&mut cx);
        assert!(sent.is_ready(), "a send with room waited");
        let received = std::pin::pin!(C::recv(&mut rx)).poll(&mut cx);
        let Poll::Ready(msg) = received else {
            unreachable!("a receive with a message queued waited")
        };
        sum = sum.wrapping_add(msg.expect("a queued message was received"));
    }
    sum
}

#[inline(never)]
fn pairs(iterations: u64, mut send: impl FnMut(u64), mut recv: impl FnMut() -> u64) -> u64 {
    let mut sum = 0u64;
    for i in 0..iterations {
        send(black_box(i));
        sum = sum.wrapping_add(recv());
    }
    sum
}

/// A channel driven from plain threads, moving messages of type `M`.
pub trait BlockingChannel<M: Message = u64> {
    /// Sending end.
    type Tx: Clone + Send + 'static;
    /// Receiving end.
    type Rx: Send + 'static;
    /// Makes a channel of `capacity`.
    fn make(capacity: usize) -> (Self::Tx, Self::Rx);
    /// Sends, blocking while full.
    fn send(tx: &Self::Tx, msg: M);
    /// Receives, blocking while empty; `None` once closed.
    fn recv(rx: &mut Self::Rx) -> Option<M>;
}

/// A channel driven from async tasks, moving messages of type `M`.
pub trait AsyncChannel<M: Message = u64> {
    /// Sending end.
    type Tx: Clone + Send + Sync + 'static;
    /// Receiving end.
    type Rx: Send + 'static;
    /// Makes a channel of `capacity`.
    fn make(capacity: usize) -> (Self::Tx, Self::Rx);
    /// Sends, waiting while full.
    fn send(tx: &Self::Tx, msg: M) -> impl Future<Output = ()> + Send;
    /// Receives, waiting while empty; `None` once closed.
    fn recv(rx: &mut Self::Rx) -> impl Future<Output = Option<M>> + Send;
}

/// Spawns `producers` threads, each sending `0..per` on its own clone of `tx`.
fn spawn_producers<M: Message, C: BlockingChannel<M>>(
    tx: &C::Tx,
    producers: usize,
    per: u64,
) -> Vec<thread::JoinHandle<()>> {
    (0..producers)
        .map(|_| {
            let tx = tx.clone();
            thread::spawn(move || {
                for i in 0..per {
                    C::send(&tx, M::new(i));
                }
            })
        })
        .collect()
}

/// Runs `workload` of `u64`s on OS threads: producers on spawned threads, the consumer on this
/// one.
pub fn run_blocking<C: BlockingChannel>(workload: &Workload) -> u64 {
    run_blocking_of::<u64, C>(workload)
}

/// [`run_blocking`] with messages of type `M`.
pub fn run_blocking_of<M: Message, C: BlockingChannel<M>>(workload: &Workload) -> u64 {
    let (tx, mut rx) = C::make(workload.capacity);
    let per = workload.per_producer();
    let producers = spawn_producers::<M, C>(&tx, workload.producers, per);
    drop(tx);
    let mut sum = 0u64;
    while let Some(msg) = C::recv(&mut rx) {
        sum = sum.wrapping_add(msg.seq());
    }
    for producer in producers {
        producer.join().expect("producer panicked");
    }
    sum
}

/// Runs `workload` of `u64`s as tasks on `runtime`: producers and the consumer are all spawned.
pub fn run_async<C: AsyncChannel>(runtime: &tokio::runtime::Runtime, workload: &Workload) -> u64 {
    run_async_of::<u64, C>(runtime, workload)
}

/// [`run_async`] with messages of type `M`.
pub fn run_async_of<M: Message, C: AsyncChannel<M>>(
    runtime: &tokio::runtime::Runtime,
    workload: &Workload,
) -> u64 {
    let (tx, mut rx) = C::make(workload.capacity);
    let per = workload.per_producer();
    runtime.block_on(async move {
        let producers: Vec<_> = (0..workload.producers)
            .map(|_| {
                let tx = tx.clone();
                tokio::spawn(async move {
                    for i in 0..per {
                        C::send(&tx, M::new(i)).await;
                    }
                })
            })
            .collect();
        drop(tx);
        let consumer = tokio::spawn(async move {
            let mut sum = 0u64;
            while let Some(msg) = C::recv(&mut rx).await {
                sum = sum.wrapping_add(msg.seq());
            }
            sum
        });
        for producer in producers {
            producer.await.expect("producer panicked");
        }
        consumer.await.expect("consumer panicked")
    })
}

/// The runtime async workloads run on: tokio multi-thread, one worker per core (2 here).
pub fn async_runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
}

/// boundflow over backend `B` (policy `block`).
pub struct Boundflow<B>(std::marker::PhantomData<B>);

fn boundflow_pair<M: Message, B: BoundedChannel + Default>(
    capacity: usize,
) -> (Sender<M, B>, Receiver<M, B>) {
    static MADE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = MADE.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let pair = ChannelBuilder::new(B::default(), format!("bench.channel_{n}"), capacity)
        .wait_strategy(WAIT_STRATEGY.get().copied().unwrap_or_default())
        .build()
        .expect("valid capacity");
    if let Some(watcher) = WATCHER.get() {
        watcher.watch(&pair.0.handle()).expect("a fresh name");
    }
    pair
}

static WATCHER: std::sync::OnceLock<boundflow::Watcher> = std::sync::OnceLock::new();

static WAIT_STRATEGY: std::sync::OnceLock<boundflow::WaitStrategy> = std::sync::OnceLock::new();

/// Makes every boundflow channel the workloads build from now on wait with `strategy` instead
/// of the default (for comparing strategies); only the first call counts.
pub fn use_wait_strategy(strategy: boundflow::WaitStrategy) {
    let _ = WAIT_STRATEGY.set(strategy);
}

/// Makes every boundflow channel the workloads build from now on join `watcher` (for benches
/// that measure with the tick running); only the first call counts.
pub fn watch_every_channel(watcher: boundflow::Watcher) {
    let _ = WATCHER.set(watcher);
}

impl<M: Message, B: BoundedChannel + Default> BlockingChannel<M> for Boundflow<B> {
    type Tx = Sender<M, B>;
    type Rx = Receiver<M, B>;
    fn make(capacity: usize) -> (Self::Tx, Self::Rx) {
        boundflow_pair(capacity)
    }
    fn send(tx: &Self::Tx, msg: M) {
        tx.send_blocking(msg).expect("receiver alive");
    }
    fn recv(rx: &mut Self::Rx) -> Option<M> {
        rx.recv_blocking().ok()
    }
}

impl<M: Message, B: BoundedChannel + Default> AsyncChannel<M> for Boundflow<B> {
    type Tx = Sender<M, B>;
    type Rx = Receiver<M, B>;
    fn make(capacity: usize) -> (Self::Tx, Self::Rx) {
        boundflow_pair(capacity)
    }
    async fn send(tx: &Self::Tx, msg: M) {
        tx.send(msg).await.expect("receiver alive");
    }
    async fn recv(rx: &mut Self::Rx) -> Option<M> {
        rx.recv().await.ok()
    }
}

/// Raw `tokio::sync::mpsc`.
pub struct RawTokio;

impl<M: Message> BlockingChannel<M> for RawTokio {
    type Tx = tokio::sync::mpsc::Sender<M>;
    type Rx = tokio::sync::mpsc::Receiver<M>;
    fn make(capacity: usize) -> (Self::Tx, Self::Rx) {
        tokio::sync::mpsc::channel(capacity)
    }
    fn send(tx: &Self::Tx, msg: M) {
        tx.blocking_send(msg).expect("receiver alive");
    }
    fn recv(rx: &mut Self::Rx) -> Option<M> {
        rx.blocking_recv()
    }
}

impl<M: Message> AsyncChannel<M> for RawTokio {
    type Tx = tokio::sync::mpsc::Sender<M>;
    type Rx = tokio::sync::mpsc::Receiver<M>;
    fn make(capacity: usize) -> (Self::Tx, Self::Rx) {
        tokio::sync::mpsc::channel(capacity)
    }
    async fn send(tx: &Self::Tx, msg: M) {
        tx.send(msg).await.expect("receiver alive");
    }
    async fn recv(rx: &mut Self::Rx) -> Option<M> {
        rx.recv().await
    }
}

/// Raw flume.
pub struct RawFlume;

impl<M: Message> BlockingChannel<M> for RawFlume {
    type Tx = flume::Sender<M>;
    type Rx = flume::Receiver<M>;
    fn make(capacity: usize) -> (Self::Tx, Self::Rx) {
        flume::bounded(capacity)
    }
    fn send(tx: &Self::Tx, msg: M) {
        tx.send(msg).expect("receiver alive");
    }
    fn recv(rx: &mut Self::Rx) -> Option<M> {
        rx.recv().ok()
    }
}

impl<M: Message> AsyncChannel<M> for RawFlume {
    type Tx = flume::Sender<M>;
    type Rx = flume::Receiver<M>;
    fn make(capacity: usize) -> (Self::Tx, Self::Rx) {
        flume::bounded(capacity)
    }
    async fn send(tx: &Self::Tx, msg: M) {
        tx.send_async(msg).await.expect("receiver alive");
    }
    async fn recv(rx: &mut Self::Rx) -> Option<M> {
        rx.recv_async().await.ok()
    }
}

/// Raw crossbeam-channel (blocking only: it has no async API).
pub struct RawCrossbeam;

impl<M: Message> BlockingChannel<M> for RawCrossbeam {
    type Tx = crossbeam_channel::Sender<M>;
    type Rx = crossbeam_channel::Receiver<M>;
    fn make(capacity: usize) -> (Self::Tx, Self::Rx) {
        crossbeam_channel::bounded(capacity)
    }
    fn send(tx: &Self::Tx, msg: M) {
        tx.send(msg).expect("receiver alive");
    }
    fn recv(rx: &mut Self::Rx) -> Option<M> {
        rx.recv().ok()
    }
}

/// Raw async-channel.
pub struct RawAsyncChannel;

impl<M: Message> BlockingChannel<M> for RawAsyncChannel {
    type Tx = async_channel::Sender<M>;
    type Rx = async_channel::Receiver<M>;
    fn make(capacity: usize) -> (Self::Tx, Self::Rx) {
        async_channel::bounded(capacity)
    }
    fn send(tx: &Self::Tx, msg: M) {
        tx.send_blocking(msg).expect("receiver alive");
    }
    fn recv(rx: &mut Self::Rx) -> Option<M> {
        rx.recv_blocking().ok()
    }
}

impl<M: Message> AsyncChannel<M> for RawAsyncChannel {
    type Tx = async_channel::Sender<M>;
    type Rx = async_channel::Receiver<M>;
    fn make(capacity: usize) -> (Self::Tx, Self::Rx) {
        async_channel::bounded(capacity)
    }
    async fn send(tx: &Self::Tx, msg: M) {
        tx.send(msg).await.expect("receiver alive");
    }
    async fn recv(rx: &mut Self::Rx) -> Option<M> {
        rx.recv().await.ok()
    }
}
