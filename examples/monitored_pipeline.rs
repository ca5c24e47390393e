//! The main job until the CLI exists: async producers and blocking (FFI-style) producers feed one
//! bounded, monitored channel; an async consumer drains it; the channel's counters are printed.

use std::thread;
use std::time::Duration;

use boundflow::{ChannelBuilder, OverflowPolicy, SendError, Tokio};

const ASYNC_PRODUCERS: u64 = 2;
const THREAD_PRODUCERS: u64 = 2;
const PER_PRODUCER: u64 = 50_000;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()?;
    runtime.block_on(run())
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let (tx, mut rx) = ChannelBuilder::new(Tokio, "worker.step_processor.execution_request", 64)
        .policy(OverflowPolicy::Timeout(Duration::from_secs(5)))
        .build::<u64>()?;

    let mut tasks = Vec::new();
    for producer in 0..ASYNC_PRODUCERS {
        let tx = tx.clone();
        tasks.push(tokio::spawn(async move {
            for seq in 0..PER_PRODUCER {
                if let Err(err) = tx.send(producer * PER_PRODUCER + seq).await {
                    return Err(err.to_string());
                }
            }
            Ok(())
        }));
    }
    let mut threads = Vec::new();
    for producer in ASYNC_PRODUCERS..ASYNC_PRODUCERS + THREAD_PRODUCERS {
        let tx = tx.clone();
        threads.push(thread::spawn(move || {
            for seq in 0..PER_PRODUCER {
                match tx.send_blocking(producer * PER_PRODUCER + seq) {
                    Ok(()) => {}
                    Err(SendError::Closed(_)) => return Err("channel closed".to_string()),
                    Err(err) => return Err(err.to_string()),
                }
            }
            Ok(())
        }));
    }
    drop(tx);

    let mut received = 0u64;
    let mut checksum = 0u64;
    while let Ok(msg) = rx.recv().await {
        received += 1;
        checksum = checksum.wrapping_add(msg);
    }
    for task in tasks {
        task.await??;
    }
    for handle in threads {
        handle.join().map_err(|_| "producer thread panicked")??;
    }

    let total = (ASYNC_PRODUCERS + THREAD_PRODUCERS) * PER_PRODUCER;
    let expected_checksum = total * (total - 1) / 2;
    let stats = rx.stats();
    println!("channel    {} (backend {})", rx.name(), rx.backend());
    println!(
        "received   {received} of {total} (checksum ok: {})",
        checksum == expected_checksum
    );
    println!("sent       {}", stats.sent);
    println!("received   {}", stats.received);
    println!(
        "full       {} sends found the channel full",
        stats.full_events
    );
    println!("timeouts   {}", stats.timeouts);
    println!(
        "depth      {} / {} (high-water mark {})",
        stats.depth, stats.capacity, stats.high_water_mark
    );
    if received != total || checksum != expected_checksum || stats.sent != stats.received {
        return Err("messages lost or duplicated".into());
    }
    Ok(())
}
