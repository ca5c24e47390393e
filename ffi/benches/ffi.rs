//! The cost per message of the C ABI against the Rust calls on the same channel: FFI
//! `boundflow_try_send` vs `Sender::try_send(Box::<[u8]>::from(slice))` (the Rust baseline
//! copies too), and FFI `boundflow_recv_many` vs `Receiver::try_recv` in a loop. Rounds are
//! interleaved; the table gives medians and ranges of ns per message.
//!
//! ```text
//! cargo bench -p boundflow-ffi --bench ffi                 # the timed table
//! cargo bench -p boundflow-ffi --bench ffi -- --rounds 9
//! python3 benches/callgrind.py --ffi                        # instructions per message, both
//! ```
//! `pairs <rust|ffi> <iterations>` runs one send + one receive per iteration, for callgrind.
#![allow(unsafe_code, clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use boundflow::config::Loader;
use boundflow::{Receiver, Registry, Sender};
use boundflow_ffi::{BOUNDFLOW_OK, BoundflowBuffer};

const BATCH: usize = 1024;
const MESSAGE: [u8; 64] = [7; 64];

const CONFIG: &str = "[mpsc_channels.bench]
ffi_buffer_size = 1024
ffi_backend = \"crossbeam\"
inbox_buffer_size = 1024
inbox_backend = \"crossbeam\"
";

/// `bench.ffi`, sent to from Rust and through the ABI and drained in Rust; `bench.inbox`,
/// filled from Rust and received through the ABI. Both crossbeam, 1024 slots.
struct Channel {
    _registry: Registry,
    tx: Sender<Box<[u8]>>,
    rx: Receiver<Box<[u8]>>,
    ffi_tx: u64,
    inbox_tx: Sender<Box<[u8]>>,
    ffi_rx: u64,
}

fn channel() -> Channel {
    let config = Loader::from_strs(CONFIG, None)
        .backends(boundflow::compiled_backends())
        .load()
        .unwrap();
    let registry = Registry::builder(config)
        .tick_thread(false)
        .build()
        .unwrap();
    let (tx, rx) = registry.open::<Box<[u8]>>("bench.ffi").unwrap();
    let (inbox_tx, inbox_rx) = registry.open::<Box<[u8]>>("bench.inbox").unwrap();
    Channel {
        ffi_tx: boundflow_ffi::adopt_sender(tx.clone(), MESSAGE.len()).unwrap(),
        ffi_rx: boundflow_ffi::adopt_receiver(inbox_rx).unwrap(),
        _registry: registry,
        tx,
        rx,
        inbox_tx,
    }
}

fn fill_ffi_receiver(c: &Channel) {
    for _ in 0..BATCH {
        c.inbox_tx.try_send(Box::from(&MESSAGE[..])).unwrap();
    }
}

fn rust_send(c: &Channel) -> Duration {
    let start = Instant::now();
    for _ in 0..BATCH {
        c.tx.try_send(Box::from(black_box(&MESSAGE[..]))).unwrap();
    }
    start.elapsed()
}

fn ffi_send(c: &Channel) -> Duration {
    let start = Instant::now();
    for _ in 0..BATCH {
        // SAFETY: a valid buffer of its length.
        let status = unsafe {
            boundflow_ffi::boundflow_try_send(c.ffi_tx, black_box(MESSAGE.as_ptr()), MESSAGE.len())
        };
        assert_eq!(status, BOUNDFLOW_OK);
    }
    start.elapsed()
}

fn drain(c: &mut Channel) {
    while c.rx.try_recv().is_ok() {}
}

fn rust_recv(c: &mut Channel) -> Duration {
    for _ in 0..BATCH {
        c.tx.try_send(Box::from(&MESSAGE[..])).unwrap();
    }
    let start = Instant::now();
    let mut bytes = 0;
    while let Ok(msg) = c.rx.try_recv() {
        bytes += black_box(msg).len();
    }
    assert_eq!(bytes, BATCH * MESSAGE.len());
    start.elapsed()
}

fn ffi_recv(c: &Channel) -> Duration {
    fill_ffi_receiver(c);
    let mut storage = vec![[0u8; 64]; 64];
    let mut bufs: Vec<BoundflowBuffer> = storage
        .iter_mut()
        .map(|s| BoundflowBuffer {
            data: s.as_mut_ptr(),
            capacity: 64,
            len: 0,
        })
        .collect();
    let start = Instant::now();
    let mut total = 0;
    while total < BATCH {
        let mut received = 0;
        // SAFETY: 64 valid buffers of 64 bytes.
        let status = unsafe {
            boundflow_ffi::boundflow_recv_many(
                c.ffi_rx,
                bufs.as_mut_ptr(),
                bufs.len(),
                &mut received,
                0,
            )
        };
        assert_eq!(status, BOUNDFLOW_OK);
        total += received;
    }
    start.elapsed()
}

fn median_and_range(mut values: Vec<f64>) -> (f64, f64, f64) {
    values.sort_by(f64::total_cmp);
    (
        values[values.len() / 2],
        values[0],
        values[values.len() - 1],
    )
}

fn pairs(kind: &str, iterations: u64) {
    let mut c = channel();
    for _ in 0..iterations {
        match kind {
            "rust" => c.tx.try_send(Box::from(black_box(&MESSAGE[..]))).unwrap(),
            _ => {
                // SAFETY: a valid buffer of its length.
                let status = unsafe {
                    boundflow_ffi::boundflow_try_send(
                        c.ffi_tx,
                        black_box(MESSAGE.as_ptr()),
                        MESSAGE.len(),
                    )
                };
                assert_eq!(status, BOUNDFLOW_OK);
            }
        }
        black_box(c.rx.try_recv().unwrap());
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("pairs") {
        let kind = args.get(1).map_or("rust", String::as_str);
        let iterations = args.get(2).and_then(|n| n.parse().ok()).unwrap_or(100_000);
        pairs(kind, iterations);
        return;
    }
    let rounds: usize = args
        .iter()
        .position(|a| a == "--rounds")
        .and_then(|i| args.get(i + 1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(7);
    let mut c = channel();
    let repeats = 200;
    let mut per = [Vec::new(), Vec::new(), Vec::new(), Vec::new()];
    for round in 0..rounds {
        let mut totals = [Duration::ZERO; 4];
        for _ in 0..repeats {
            // Alternate which goes first, so drift favours neither.
            if round % 2 == 0 {
                totals[0] += rust_send(&c);
                drain(&mut c);
                totals[1] += ffi_send(&c);
                drain(&mut c);
            } else {
                totals[1] += ffi_send(&c);
                drain(&mut c);
                totals[0] += rust_send(&c);
                drain(&mut c);
            }
            totals[2] += rust_recv(&mut c);
            totals[3] += ffi_recv(&c);
        }
        for (samples, total) in per.iter_mut().zip(totals) {
            samples.push(total.as_nanos() as f64 / (repeats * BATCH) as f64);
        }
    }
    println!(
        "ns per 64-byte message, median [min–max] of {rounds} interleaved rounds ({repeats} x {BATCH} messages each):\n"
    );
    println!("| call | Rust | FFI | FFI / Rust |");
    println!("|---|---|---|---|");
    for (name, rust, ffi) in [
        (
            "try_send (Rust: `try_send(Box::from(slice))`)",
            &per[0],
            &per[1],
        ),
        (
            "receive (Rust: `try_recv` loop; FFI: `recv_many`, 64 a call)",
            &per[2],
            &per[3],
        ),
    ] {
        let ratios: Vec<f64> = rust.iter().zip(ffi).map(|(r, f)| f / r).collect();
        let (r, rmin, rmax) = median_and_range(rust.clone());
        let (f, fmin, fmax) = median_and_range(ffi.clone());
        let (q, qmin, qmax) = median_and_range(ratios);
        println!(
            "| {name} | {r:.0} [{rmin:.0}–{rmax:.0}] | {f:.0} [{fmin:.0}–{fmax:.0}] | {q:.2} [{qmin:.2}–{qmax:.2}] |"
        );
    }
}
