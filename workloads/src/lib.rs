//! Fixed channel workloads — SPSC or MPSC, blocking or async, any capacity — run on a raw backend
//! or on boundflow over the same backend, so both can be measured side by side in one run.
//!
//! Every run moves `messages` `u64`s from `producers` producers to one consumer and returns the
//! sum of what was received, which the caller can check against [`expected_sum`].
#![forbid(unsafe_code)]
#![allow(clippy::expect_used)] // a broken benchmark channel should stop the run loudly

use std::future::Future;
use std::thread;

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

/// A channel driven from plain threads.
pub trait BlockingChannel {
    /// Sending end.
    type Tx: Clone + Send + 'static;
    /// Receiving end.
    type Rx: Send + 'static;
    /// Makes a channel of `capacity`.
    fn make(capacity: usize) -> (Self::Tx, Self::Rx);
    /// Sends, blocking while full.
    fn send(tx: &Self::Tx, msg: u64);
    /// Receives, blocking while empty; `None` once closed.
    fn recv(rx: &mut Self::Rx) -> Option<u64>;
}

/// A channel driven from async tasks.
pub trait AsyncChannel {
    /// Sending end.
    type Tx: Clone + Send + Sync + 'static;
    /// Receiving end.
    type Rx: Send + 'static;
    /// Makes a channel of `capacity`.
    fn make(capacity: usize) -> (Self::Tx, Self::Rx);
    /// Sends, waiting while full.
    fn send(tx: &Self::Tx, msg: u64) -> impl Future<Output = ()> + Send;
    /// Receives, waiting while empty; `None` once closed.
    fn recv(rx: &mut Self::Rx) -> impl Future<Output = Option<u64>> + Send;
}

/// Runs `workload` on OS threads: producers on spawned threads, the consumer on this one.
pub fn run_blocking<C: BlockingChannel>(workload: &Workload) -> u64 {
    let (tx, mut rx) = C::make(workload.capacity);
    let per = workload.per_producer();
    let producers: Vec<_> = (0..workload.producers)
        .map(|_| {
            let tx = tx.clone();
            thread::spawn(move || {
                for i in 0..per {
                    C::send(&tx, i);
                }
            })
        })
        .collect();
    drop(tx);
    let mut sum = 0u64;
    while let Some(msg) = C::recv(&mut rx) {
        sum = sum.wrapping_add(msg);
    }
    for producer in producers {
        producer.join().expect("producer panicked");
    }
    sum
}

/// Runs `workload` as tasks on `runtime`: producers and the consumer are all spawned.
pub fn run_async<C: AsyncChannel>(runtime: &tokio::runtime::Runtime, workload: &Workload) -> u64 {
    let (tx, mut rx) = C::make(workload.capacity);
    let per = workload.per_producer();
    runtime.block_on(async move {
        let producers: Vec<_> = (0..workload.producers)
            .map(|_| {
                let tx = tx.clone();
                tokio::spawn(async move {
                    for i in 0..per {
                        C::send(&tx, i).await;
                    }
                })
            })
            .collect();
        drop(tx);
        let consumer = tokio::spawn(async move {
            let mut sum = 0u64;
            while let Some(msg) = C::recv(&mut rx).await {
                sum = sum.wrapping_add(msg);
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

fn boundflow_pair<B: BoundedChannel + Default>(
    capacity: usize,
) -> (Sender<u64, B>, Receiver<u64, B>) {
    ChannelBuilder::new(B::default(), "bench.channel", capacity)
        .build()
        .expect("valid capacity")
}

impl<B: BoundedChannel + Default> BlockingChannel for Boundflow<B> {
    type Tx = Sender<u64, B>;
    type Rx = Receiver<u64, B>;
    fn make(capacity: usize) -> (Self::Tx, Self::Rx) {
        boundflow_pair(capacity)
    }
    fn send(tx: &Self::Tx, msg: u64) {
        tx.send_blocking(msg).expect("receiver alive");
    }
    fn recv(rx: &mut Self::Rx) -> Option<u64> {
        rx.recv_blocking().ok()
    }
}

impl<B: BoundedChannel + Default> AsyncChannel for Boundflow<B> {
    type Tx = Sender<u64, B>;
    type Rx = Receiver<u64, B>;
    fn make(capacity: usize) -> (Self::Tx, Self::Rx) {
        boundflow_pair(capacity)
    }
    async fn send(tx: &Self::Tx, msg: u64) {
        tx.send(msg).await.expect("receiver alive");
    }
    async fn recv(rx: &mut Self::Rx) -> Option<u64> {
        rx.recv().await.ok()
    }
}

/// Raw `tokio::sync::mpsc`.
pub struct RawTokio;

impl BlockingChannel for RawTokio {
    type Tx = tokio::sync::mpsc::Sender<u64>;
    type Rx = tokio::sync::mpsc::Receiver<u64>;
    fn make(capacity: usize) -> (Self::Tx, Self::Rx) {
        tokio::sync::mpsc::channel(capacity)
    }
    fn send(tx: &Self::Tx, msg: u64) {
        tx.blocking_send(msg).expect("receiver alive");
    }
    fn recv(rx: &mut Self::Rx) -> Option<u64> {
        rx.blocking_recv()
    }
}

impl AsyncChannel for RawTokio {
    type Tx = tokio::sync::mpsc::Sender<u64>;
    type Rx = tokio::sync::mpsc::Receiver<u64>;
    fn make(capacity: usize) -> (Self::Tx, Self::Rx) {
        tokio::sync::mpsc::channel(capacity)
    }
    async fn send(tx: &Self::Tx, msg: u64) {
        tx.send(msg).await.expect("receiver alive");
    }
    async fn recv(rx: &mut Self::Rx) -> Option<u64> {
        rx.recv().await
    }
}

/// Raw flume.
pub struct RawFlume;

impl BlockingChannel for RawFlume {
    type Tx = flume::Sender<u64>;
    type Rx = flume::Receiver<u64>;
    fn make(capacity: usize) -> (Self::Tx, Self::Rx) {
        flume::bounded(capacity)
    }
    fn send(tx: &Self::Tx, msg: u64) {
        tx.send(msg).expect("receiver alive");
    }
    fn recv(rx: &mut Self::Rx) -> Option<u64> {
        rx.recv().ok()
    }
}

impl AsyncChannel for RawFlume {
    type Tx = flume::Sender<u64>;
    type Rx = flume::Receiver<u64>;
    fn make(capacity: usize) -> (Self::Tx, Self::Rx) {
        flume::bounded(capacity)
    }
    async fn send(tx: &Self::Tx, msg: u64) {
        tx.send_async(msg).await.expect("receiver alive");
    }
    async fn recv(rx: &mut Self::Rx) -> Option<u64> {
        rx.recv_async().await.ok()
    }
}

/// Raw crossbeam-channel (blocking only: it has no async API).
pub struct RawCrossbeam;

impl BlockingChannel for RawCrossbeam {
    type Tx = crossbeam_channel::Sender<u64>;
    type Rx = crossbeam_channel::Receiver<u64>;
    fn make(capacity: usize) -> (Self::Tx, Self::Rx) {
        crossbeam_channel::bounded(capacity)
    }
    fn send(tx: &Self::Tx, msg: u64) {
        tx.send(msg).expect("receiver alive");
    }
    fn recv(rx: &mut Self::Rx) -> Option<u64> {
        rx.recv().ok()
    }
}

/// Raw async-channel.
pub struct RawAsyncChannel;

impl BlockingChannel for RawAsyncChannel {
    type Tx = async_channel::Sender<u64>;
    type Rx = async_channel::Receiver<u64>;
    fn make(capacity: usize) -> (Self::Tx, Self::Rx) {
        async_channel::bounded(capacity)
    }
    fn send(tx: &Self::Tx, msg: u64) {
        tx.send_blocking(msg).expect("receiver alive");
    }
    fn recv(rx: &mut Self::Rx) -> Option<u64> {
        rx.recv_blocking().ok()
    }
}

impl AsyncChannel for RawAsyncChannel {
    type Tx = async_channel::Sender<u64>;
    type Rx = async_channel::Receiver<u64>;
    fn make(capacity: usize) -> (Self::Tx, Self::Rx) {
        async_channel::bounded(capacity)
    }
    async fn send(tx: &Self::Tx, msg: u64) {
        tx.send(msg).await.expect("receiver alive");
    }
    async fn recv(rx: &mut Self::Rx) -> Option<u64> {
        rx.recv().await.ok()
    }
}
