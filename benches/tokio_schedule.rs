//! Why tokio SPSC at capacity 64 is the one tokio cell near the 0.90x line: a diagnostic, not a
//! criterion bench. It runs three senders over the same async workload, interleaved, on one
//! 2-worker runtime, and prints the median time per message and tokio's worker park count per
//! 1,000 messages (`RuntimeMetrics::worker_park_count`):
//!
//! - `raw`: tokio's `send().await`;
//! - `raw_try_first`: raw tokio, but `try_send` first and `send().await` only when full — the
//!   shape of boundflow's send, which tries first so that it can count full events;
//! - `boundflow`: boundflow over tokio.
//!
//! `cargo bench --bench tokio_schedule -- [ROUNDS]` (default 11). See `benches/README.md`.
// This crate wraps (or measures) the raw constructor that clippy.toml forbids elsewhere.
#![allow(clippy::disallowed_methods)]
#![allow(missing_docs, clippy::expect_used)]

use std::time::Instant;

use boundflow::Tokio;
use boundflow_workloads::{
    AsyncChannel, Boundflow, RawTokio, Workload, async_runtime, expected_sum, run_async,
};
use tokio::runtime::Runtime;
use tokio::sync::mpsc::{self, error::TrySendError};

/// Raw tokio, sending the way boundflow does: `try_send` first.
struct RawTryFirst;

impl AsyncChannel for RawTryFirst {
    type Tx = mpsc::Sender<u64>;
    type Rx = mpsc::Receiver<u64>;
    fn make(capacity: usize) -> (Self::Tx, Self::Rx) {
        mpsc::channel(capacity)
    }
    async fn send(tx: &Self::Tx, msg: u64) {
        if let Err(TrySendError::Full(msg) | TrySendError::Closed(msg)) = tx.try_send(msg) {
            tx.send(msg).await.expect("receiver alive");
        }
    }
    async fn recv(rx: &mut Self::Rx) -> Option<u64> {
        rx.recv().await
    }
}

/// One run: (ns per message, worker parks per 1,000 messages).
fn measure<C: AsyncChannel>(runtime: &Runtime, workload: &Workload) -> (f64, f64) {
    let metrics = runtime.metrics();
    let parks = || {
        (0..metrics.num_workers())
            .map(|worker| metrics.worker_park_count(worker))
            .sum::<u64>()
    };
    let parks_before = parks();
    let start = Instant::now();
    let sum = run_async::<C>(runtime, workload);
    let elapsed = start.elapsed();
    assert_eq!(sum, expected_sum(workload), "lost or duplicated messages");
    let messages = workload.messages as f64;
    (
        elapsed.as_nanos() as f64 / messages,
        (parks() - parks_before) as f64 * 1000.0 / messages,
    )
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() {
    // `cargo bench` passes `--bench`; the first number is the round count.
    let rounds = std::env::args()
        .skip(1)
        .find_map(|arg| arg.parse::<usize>().ok())
        .unwrap_or(11)
        .max(1);
    let runtime = async_runtime().expect("a tokio runtime");
    println!("| workload | sender | ns/msg | worker parks / 1000 msgs | throughput vs raw |");
    println!("|---|---|---|---|---|");
    for (topology, producers) in [("spsc", 1), ("mpsc4", 4)] {
        for capacity in [1, 64, 1024] {
            let workload = Workload {
                producers,
                capacity,
                messages: 200_000,
            };
            let mut runs: [Vec<(f64, f64)>; 3] = Default::default();
            for _ in 0..rounds {
                runs[0].push(measure::<RawTokio>(&runtime, &workload));
                runs[1].push(measure::<RawTryFirst>(&runtime, &workload));
                runs[2].push(measure::<Boundflow<Tokio>>(&runtime, &workload));
            }
            let raw_ns = median(runs[0].iter().map(|run| run.0).collect());
            for (name, runs) in ["raw", "raw_try_first", "boundflow"].iter().zip(&runs) {
                let ns = median(runs.iter().map(|run| run.0).collect());
                let parks = median(runs.iter().map(|run| run.1).collect());
                println!(
                    "| async {topology} {capacity} | {name} | {ns:.1} | {parks:.1} | {:.2}x |",
                    raw_ns / ns
                );
            }
        }
    }
}
