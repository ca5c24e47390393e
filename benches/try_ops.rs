//! One thread, `try_send` then `try_recv` on a channel of capacity 64, per backend: the cost of
//! the non-waiting path itself (no waits, no contention). Used for the A/B of the exact close
//! (CHANGELOG.md): `cargo bench --all-features --bench try_ops -- --save-baseline before` on the
//! earlier commit, then `-- --baseline before` on the later one, with one `CARGO_TARGET_DIR`.
#![allow(missing_docs, clippy::expect_used)]

use std::hint::black_box;
use std::time::Duration;

use boundflow::{AsyncChannel, BoundedChannel, ChannelBuilder, Crossbeam, Flume, Tokio};
use criterion::{Criterion, criterion_group, criterion_main};

fn try_send_try_recv<B: BoundedChannel + Default>(c: &mut Criterion, name: &str) {
    let (tx, mut rx) = ChannelBuilder::new(B::default(), "bench.try_ops", 64)
        .build::<u64>()
        .expect("channel");
    c.bench_function(&format!("try_ops/{name}"), |b| {
        b.iter(|| {
            tx.try_send(black_box(1)).expect("room");
            black_box(rx.try_recv().expect("queued"));
        });
    });
}

fn try_ops(c: &mut Criterion) {
    try_send_try_recv::<Tokio>(c, "tokio");
    try_send_try_recv::<Flume>(c, "flume");
    try_send_try_recv::<Crossbeam>(c, "crossbeam");
    try_send_try_recv::<AsyncChannel>(c, "async_channel");
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = try_ops
}
criterion_main!(benches);
