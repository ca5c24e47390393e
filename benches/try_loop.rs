//! `try_send` + `try_recv` on one thread, for counting instructions under callgrind (run by
//! `benches/callgrind.py`, which subtracts a short run from a long one so that setup cancels
//! out). Usage: `try_loop <backend>/<raw|boundflow> <iterations>`.
#![allow(missing_docs, clippy::print_stdout)]

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let kind = args.get(1).map(String::as_str).unwrap_or("crossbeam/raw");
    let iterations = args.get(2).and_then(|n| n.parse().ok()).unwrap_or(1_000);
    match boundflow_workloads::try_pairs(kind, iterations) {
        Some(sum) => println!("{kind} {iterations} {sum}"),
        None => {
            eprintln!("unknown kind {kind}: <tokio|flume|crossbeam|async_channel>/<raw|boundflow>");
            std::process::exit(2);
        }
    }
}
