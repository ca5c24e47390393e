//! boundflow adds no allocation per message over its raw backend, blocking or async, and its own
//! waits allocate nothing. A counting global allocator makes this a deterministic test.
//!
//! Each measurement warms the channel up first (one-time set-up such as an event's first
//! listener or a thread's cached waker is not per message), then counts the allocations of
//! moving `MESSAGES` messages through a channel of capacity 1 — so nearly every operation waits.
#![allow(unsafe_code, clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::Barrier;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use boundflow::{AsyncChannel as AsyncChannelBackend, Crossbeam, Flume, Tokio};
use boundflow_workloads::{
    AsyncChannel, BlockingChannel, Boundflow, RawAsyncChannel, RawCrossbeam, RawFlume, RawTokio,
};

struct CountingAllocator;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

// SAFETY: every call is forwarded unchanged to the system allocator; only a counter is added.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

const MESSAGES: u64 = 20_000;
const WARM_UP: u64 = 200;
/// One-time allocations tolerated inside the measured window (none are expected).
const SLACK: u64 = 8;

/// Allocations while a producer thread and a consumer thread move `MESSAGES` messages.
fn blocking_allocations<C: BlockingChannel>() -> u64 {
    let (tx, mut rx) = C::make(1);
    let start = Barrier::new(2);
    let end = Barrier::new(2);
    std::thread::scope(|scope| {
        scope.spawn(|| {
            for _ in 0..WARM_UP {
                C::recv(&mut rx).expect("message");
            }
            start.wait();
            for _ in 0..MESSAGES {
                C::recv(&mut rx).expect("message");
            }
            end.wait();
        });
        for i in 0..WARM_UP {
            C::send(&tx, i);
        }
        start.wait();
        let before = ALLOCATIONS.load(Relaxed);
        for i in 0..MESSAGES {
            C::send(&tx, i);
        }
        end.wait();
        ALLOCATIONS.load(Relaxed) - before
    })
}

/// Allocations while a producer and a consumer future, interleaved on one thread, move
/// `MESSAGES` messages (deterministic: every wait happens at the same point each run).
fn async_allocations<C: AsyncChannel>() -> u64 {
    let (tx, mut rx) = C::make(1);
    let run = |tx: C::Tx, rx: &mut C::Rx, n: u64| {
        futures::executor::block_on(futures::future::join(
            async move {
                for i in 0..n {
                    C::send(&tx, i).await;
                }
            },
            async {
                for _ in 0..n {
                    C::recv(rx).await.expect("message");
                }
            },
        ));
    };
    run(tx.clone(), &mut rx, WARM_UP);
    let before = ALLOCATIONS.load(Relaxed);
    run(tx, &mut rx, MESSAGES);
    ALLOCATIONS.load(Relaxed) - before
}

fn per_message(allocations: u64) -> f64 {
    allocations as f64 / MESSAGES as f64
}

fn check(name: &str, raw: u64, boundflow: u64) {
    println!(
        "{name:<28} raw {raw:>6} ({:.3}/msg)   boundflow {boundflow:>6} ({:.3}/msg)",
        per_message(raw),
        per_message(boundflow)
    );
    assert!(
        boundflow <= raw + SLACK,
        "{name}: boundflow allocated {boundflow} times for {MESSAGES} messages, raw {raw}"
    );
    assert!(
        boundflow <= SLACK,
        "{name}: boundflow's own waits must not allocate ({boundflow} allocations)"
    );
}

/// One test for all backends: the counter is process-wide, so measurements must not overlap.
#[test]
fn boundflow_adds_no_allocation_per_message() {
    check(
        "tokio blocking",
        blocking_allocations::<RawTokio>(),
        blocking_allocations::<Boundflow<Tokio>>(),
    );
    check(
        "flume blocking",
        blocking_allocations::<RawFlume>(),
        blocking_allocations::<Boundflow<Flume>>(),
    );
    check(
        "crossbeam blocking",
        blocking_allocations::<RawCrossbeam>(),
        blocking_allocations::<Boundflow<Crossbeam>>(),
    );
    check(
        "async_channel blocking",
        blocking_allocations::<RawAsyncChannel>(),
        blocking_allocations::<Boundflow<AsyncChannelBackend>>(),
    );
    check(
        "tokio async",
        async_allocations::<RawTokio>(),
        async_allocations::<Boundflow<Tokio>>(),
    );
    check(
        "flume async",
        async_allocations::<RawFlume>(),
        async_allocations::<Boundflow<Flume>>(),
    );
    check(
        "crossbeam async (vs tokio raw)",
        async_allocations::<RawTokio>(),
        async_allocations::<Boundflow<Crossbeam>>(),
    );
    check(
        "async_channel async",
        async_allocations::<RawAsyncChannel>(),
        async_allocations::<Boundflow<AsyncChannelBackend>>(),
    );
}
