//! `send(i).await` + `recv().await` on one thread, each completing at its first poll, for
//! counting instructions under callgrind (run by `benches/callgrind.py`, which subtracts a short
//! run from a long one so that setup cancels out). Usage: `async_loop <backend>/<raw|boundflow>
//! <iterations>`. crossbeam has no async API of its own: `crossbeam/raw` is not a kind.
#![allow(missing_docs, clippy::print_stdout)]

use boundflow::{AsyncChannel as AsyncChannelBackend, Crossbeam, Flume, Tokio};
use boundflow_workloads::{Boundflow, RawAsyncChannel, RawFlume, RawTokio, async_pairs};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let kind = args.get(1).map(String::as_str).unwrap_or("flume/raw");
    let iterations = args.get(2).and_then(|n| n.parse().ok()).unwrap_or(1_000);
    let sum = match kind {
        "tokio/raw" => async_pairs::<RawTokio>(iterations),
        "flume/raw" => async_pairs::<RawFlume>(iterations),
        "async_channel/raw" => async_pairs::<RawAsyncChannel>(iterations),
        "tokio/boundflow" => async_pairs::<Boundflow<Tokio>>(iterations),
        "flume/boundflow" => async_pairs::<Boundflow<Flume>>(iterations),
        "crossbeam/boundflow" => async_pairs::<Boundflow<Crossbeam>>(iterations),
        "async_channel/boundflow" => async_pairs::<Boundflow<AsyncChannelBackend>>(iterations),
        _ => {
            eprintln!(
                "unknown kind {kind}: <tokio|flume|async_channel>/<raw|boundflow>, crossbeam/boundflow"
            );
            std::process::exit(2);
        }
    };
    println!("{kind} {iterations} {sum}");
}
