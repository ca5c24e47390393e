//! Stress: nothing lost, nothing duplicated, FIFO per producer, counters equal to the truth —
//! per backend, 8 producers (4 blocking threads, 4 async tasks) x 1 consumer mixing blocking,
//! async and non-waiting receives, at capacities 1 and 64; a watcher thread checks that the
//! counters never go backwards while messages move. And per backend one blocking producer
//! alone at capacity 64 (a quarter of the messages), in order. And `drop_oldest` under load on
//! the three backends that support it (an eighth of the messages).
//!
//! Run in release: `cargo test --release --all-features --test stress`. The message count per
//! backend (split over the two capacities) is `BOUNDFLOW_STRESS_MESSAGES`, default 1,000,000;
//! the long setting is `BOUNDFLOW_STRESS_MESSAGES=10000000`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed, Ordering::SeqCst};
use std::time::Duration;

use boundflow::{BoundedChannel, ChannelBuilder, Receiver, Sender, TryRecvError};

const PRODUCERS: u64 = 8;
const BLOCKING_PRODUCERS: u64 = 4;
const SEQ_BITS: u32 = 40;
/// Long enough never to expire unless something is stuck.
const PATIENCE: Duration = Duration::from_secs(30);

fn messages_per_backend() -> u64 {
    std::env::var("BOUNDFLOW_STRESS_MESSAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000)
}

fn stress<B: BoundedChannel + Default>() {
    let total = messages_per_backend();
    for capacity in [1, 64] {
        run(B::default(), capacity, total / 2 / PRODUCERS);
    }
}

fn run<B: BoundedChannel>(backend: B, capacity: usize, per_producer: u64) {
    let (tx, rx) = ChannelBuilder::new(backend, "stress.channel", capacity)
        .build::<u64>()
        .unwrap();
    let runtime = ::tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    // What the producers saw accepted, counted after each send returns: the consumer checks the
    // capacity against it (the test's own count, not the clamped `len`).
    let accepted = Arc::new(AtomicU64::new(0));
    let consumer = {
        let accepted = Arc::clone(&accepted);
        std::thread::spawn(move || consume(rx, per_producer, &accepted, capacity))
    };
    let total = PRODUCERS * per_producer;
    let producing = Arc::new(AtomicBool::new(true));
    let watcher = {
        let (tx, producing) = (tx.clone(), Arc::clone(&producing));
        std::thread::spawn(move || watch(&tx, &producing, total))
    };

    let threads: Vec<_> = (0..BLOCKING_PRODUCERS)
        .map(|p| {
            let (tx, accepted) = (tx.clone(), Arc::clone(&accepted));
            std::thread::spawn(move || {
                for seq in 0..per_producer {
                    let msg = p << SEQ_BITS | seq;
                    if seq % 2 == 0 {
                        tx.send_blocking(msg).unwrap();
                    } else {
                        tx.send_timeout_blocking(msg, PATIENCE).unwrap();
                    }
                    accepted.fetch_add(1, SeqCst);
                }
            })
        })
        .collect();
    let tasks: Vec<_> = (BLOCKING_PRODUCERS..PRODUCERS)
        .map(|p| {
            let (tx, accepted) = (tx.clone(), Arc::clone(&accepted));
            runtime.spawn(async move {
                for seq in 0..per_producer {
                    let msg = p << SEQ_BITS | seq;
                    if seq % 2 == 0 {
                        tx.send(msg).await.unwrap();
                    } else {
                        tx.send_timeout(msg, PATIENCE).await.unwrap();
                    }
                    accepted.fetch_add(1, SeqCst);
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    runtime.block_on(async {
        for task in tasks {
            task.await.unwrap();
        }
    });
    producing.store(false, Relaxed);
    let snapshots = watcher.join().unwrap();
    assert!(snapshots > 0);
    let live = tx.stats();
    drop(tx);
    let (received, stats) = consumer.join().unwrap();

    assert_eq!(received, total);
    assert_eq!(accepted.load(SeqCst), total);
    assert_eq!(stats.sent, total, "{stats:?}");
    assert_eq!(stats.received, total, "{stats:?}");
    assert_eq!(stats.depth, 0);
    assert_eq!(
        (
            stats.timeouts,
            stats.closed_errors,
            stats.discarded_at_close,
            stats.evicted
        ),
        (0, 0, 0, 0)
    );
    assert!(stats.high_water_mark <= capacity);
    assert!(live.sent <= total);
}

/// Takes snapshots while messages move: `sent` (derived when read) and `received` never go
/// down, `sent` never exceeds what was sent nor falls below what was received. Returns how many
/// snapshots it took.
fn watch<B: BoundedChannel>(tx: &Sender<u64, B>, producing: &AtomicBool, total: u64) -> u64 {
    let mut previous = tx.stats();
    let mut snapshots = 0;
    while producing.load(Relaxed) {
        let now = tx.stats();
        assert!(now.sent >= previous.sent, "{previous:?} then {now:?}");
        assert!(
            now.received >= previous.received,
            "{previous:?} then {now:?}"
        );
        assert!(now.sent <= total, "{now:?}");
        assert!(now.sent >= now.received, "{now:?}");
        previous = now;
        snapshots += 1;
        std::thread::yield_now();
    }
    snapshots
}

/// Receives until closed, checking FIFO per producer; returns the count and the final stats.
fn consume<B: BoundedChannel>(
    mut rx: Receiver<u64, B>,
    per_producer: u64,
    accepted: &AtomicU64,
    capacity: usize,
) -> (u64, boundflow::ChannelStats) {
    let mut next = [0u64; PRODUCERS as usize];
    let mut received = 0u64;
    loop {
        let msg = match received % 3 {
            0 => rx.recv_blocking().ok(),
            1 => futures::executor::block_on(rx.recv()).ok(),
            _ => match rx.try_recv() {
                Ok(msg) => Some(msg),
                Err(TryRecvError::Empty) => rx.recv_timeout_blocking(PATIENCE).ok(),
                Err(TryRecvError::Closed) => None,
            },
        };
        let Some(msg) = msg else { break };
        let (producer, seq) = ((msg >> SEQ_BITS) as usize, msg & ((1 << SEQ_BITS) - 1));
        assert_eq!(
            seq, next[producer],
            "producer {producer}: lost, duplicated or reordered"
        );
        next[producer] += 1;
        received += 1;
        // Right after a receive, accepted − received is what is queued (`accepted` may lag,
        // never lead): never above the capacity.
        let queued = accepted.load(SeqCst).saturating_sub(received);
        assert!(
            queued <= capacity as u64,
            "{queued} queued, capacity {capacity}"
        );
    }
    assert!(
        next.iter().all(|&n| n == per_producer),
        "lost messages: {next:?}"
    );
    (received, rx.stats())
}

/// One producer alone, blocking, at capacity 64 (where `Backoff` parks at once on flume: the
/// watcher of [`run`] holds a second sender, so it never gets there): every message arrives
/// once and in order, through blocking, deadline-bound and non-waiting calls on both sides, and
/// the counters equal the test's own counts. A lost wake-up fails at a deadline, not a hang.
fn lone_sender<B: BoundedChannel + Default>() {
    let messages = messages_per_backend() / 4;
    let (tx, mut rx) = ChannelBuilder::new(B::default(), "stress.lone_sender", 64)
        .build::<u64>()
        .unwrap();
    let producer = std::thread::spawn(move || {
        let mut full = 0u64;
        for i in 0..messages {
            match i % 3 {
                0 => tx.send_blocking(i).unwrap(),
                1 => tx.send_timeout_blocking(i, PATIENCE).unwrap(),
                _ => match tx.try_send(i) {
                    Ok(()) => {}
                    Err(boundflow::TrySendError::Full(back)) => {
                        full += 1;
                        tx.send_timeout_blocking(back, PATIENCE).unwrap();
                    }
                    Err(other) => panic!("try_send failed: {other:?}"),
                },
            }
        }
        full
    });
    for expected in 0..messages {
        let got = if expected % 2 == 0 {
            rx.recv_timeout_blocking(PATIENCE).unwrap()
        } else {
            loop {
                match rx.try_recv() {
                    Ok(msg) => break msg,
                    Err(TryRecvError::Empty) => std::thread::yield_now(),
                    Err(TryRecvError::Closed) => panic!("closed before {expected}"),
                }
            }
        };
        assert_eq!(got, expected, "lost, duplicated or out of order");
    }
    let full = producer.join().unwrap();
    assert_eq!(rx.try_recv(), Err(TryRecvError::Closed));
    let stats = rx.stats();
    assert_eq!(stats.sent, messages);
    assert_eq!(stats.received, messages);
    assert!(
        stats.full_events >= full,
        "{} full events, {full} seen",
        stats.full_events
    );
    assert_eq!(stats.depth, 0);
}

/// `drop_oldest` under load: four producers force messages into a channel of 8 while a consumer
/// drains it. Every message is received at most once, in its producer's order (gaps are
/// evictions); none that `force_send` handed back as evicted is ever received; and the
/// evictions counted equal the messages the test saw go unreceived.
fn drop_oldest_under_load<B: BoundedChannel + Default>() {
    const FORCING: u64 = 4;
    let per_producer = messages_per_backend() / 8 / FORCING;
    let (tx, mut rx) = ChannelBuilder::new(B::default(), "stress.drop_oldest", 8)
        .policy(boundflow::OverflowPolicy::DropOldest)
        .build::<u64>()
        .unwrap();
    let producers: Vec<_> = (0..FORCING)
        .map(|p| {
            let tx = tx.clone();
            std::thread::spawn(move || {
                let mut handed_back = Vec::new();
                for seq in 0..per_producer {
                    let msg = p << SEQ_BITS | seq;
                    if seq % 2 == 0 {
                        tx.send_blocking(msg).unwrap();
                    } else if let Some(evicted) = tx.force_send(msg).unwrap() {
                        handed_back.push(evicted);
                    }
                    // Now and then let the consumer in, so its pops race the evictions (left
                    // alone, four producers evict nearly everything before it runs).
                    if seq % 16 == 0 {
                        std::thread::yield_now();
                    }
                }
                handed_back
            })
        })
        .collect();
    drop(tx);
    let mut received = std::collections::HashSet::new();
    let mut next = [0u64; FORCING as usize];
    loop {
        let msg = match rx.recv_timeout_blocking(PATIENCE) {
            Ok(msg) => msg,
            Err(boundflow::RecvTimeoutError::Closed) => break,
            Err(other) => panic!("receive failed: {other:?}"),
        };
        let (producer, seq) = ((msg >> SEQ_BITS) as usize, msg & ((1 << SEQ_BITS) - 1));
        assert!(
            seq >= next[producer],
            "producer {producer}: {seq} after {}: duplicated or reordered",
            next[producer]
        );
        next[producer] = seq + 1;
        received.insert(msg);
    }
    let handed_back: Vec<u64> = producers
        .into_iter()
        .flat_map(|p| p.join().unwrap())
        .collect();
    assert!(
        handed_back.iter().all(|msg| !received.contains(msg)),
        "a message handed back as evicted was also received"
    );
    let total = FORCING * per_producer;
    let unreceived = total - received.len() as u64;
    assert!(handed_back.len() as u64 <= unreceived);
    let stats = rx.stats();
    assert_eq!(stats.received, received.len() as u64, "{stats:?}");
    assert_eq!(stats.evicted, unreceived, "{stats:?}");
    assert_eq!(
        (stats.sent, stats.depth, stats.discarded_at_close),
        (total, 0, 0),
        "{stats:?}"
    );
}

macro_rules! drop_oldest_stress_tests {
    ($($name:ident: $backend:ty, $feature:literal;)+) => {$(
        #[cfg(feature = $feature)]
        mod $name {
            #[test]
            #[cfg_attr(debug_assertions, ignore = "run in release: cargo test --release --test stress")]
            fn drop_oldest_four_producers() {
                super::super::drop_oldest_under_load::<$backend>();
            }
        }
    )+};
}

/// tokio refuses `drop_oldest`: the other three.
mod drop_oldest {
    drop_oldest_stress_tests! {
        flume: boundflow::Flume, "flume";
        crossbeam: boundflow::Crossbeam, "crossbeam";
        async_channel: boundflow::AsyncChannel, "async-channel";
    }
}

macro_rules! stress_tests {
    ($($name:ident: $backend:ty, $feature:literal;)+) => {$(
        #[cfg(feature = $feature)]
        mod $name {
            #[test]
            #[cfg_attr(debug_assertions, ignore = "run in release: cargo test --release --test stress")]
            fn eight_producers() {
                super::stress::<$backend>();
            }

            #[test]
            #[cfg_attr(debug_assertions, ignore = "run in release: cargo test --release --test stress")]
            fn one_blocking_producer() {
                super::lone_sender::<$backend>();
            }
        }
    )+};
}

stress_tests! {
    tokio: boundflow::Tokio, "tokio";
    flume: boundflow::Flume, "flume";
    crossbeam: boundflow::Crossbeam, "crossbeam";
    async_channel: boundflow::AsyncChannel, "async-channel";
}
