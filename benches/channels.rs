//! Raw backend vs boundflow, side by side in one criterion group per backend x mode x topology:
//! SPSC and MPSC (4 producers), capacities 1, 64 and 1024, blocking and async.
//! crossbeam has no raw async API: its async group compares boundflow's crossbeam async path
//! with raw tokio async. See `benches/README.md` for the ratio table and how to reproduce it.
#![allow(missing_docs, clippy::expect_used)]

use std::hint::black_box;
use std::time::Duration;

use boundflow::{AsyncChannel as AsyncChannelBackend, Crossbeam, Flume, Tokio};
use boundflow_workloads::{
    AsyncChannel, BlockingChannel, Boundflow, RawAsyncChannel, RawCrossbeam, RawFlume, RawTokio,
    Workload, async_runtime, expected_sum, run_async, run_blocking,
};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

const MESSAGES: u64 = 50_000;
const CAPACITIES: [usize; 3] = [1, 64, 1024];
const TOPOLOGIES: [(&str, usize); 2] = [("spsc", 1), ("mpsc4", 4)];

/// One criterion group per topology: `raw_id` and `boundflow` side by side at each capacity, so
/// each pair is measured back to back (interleaved) on the same noisy machine.
fn side_by_side(
    c: &mut Criterion,
    group_prefix: &str,
    raw_id: &str,
    run_raw: impl Fn(&Workload) -> u64,
    run_boundflow: impl Fn(&Workload) -> u64,
) {
    for (topology, producers) in TOPOLOGIES {
        let mut group = c.benchmark_group(format!("{group_prefix}/{topology}"));
        group.throughput(Throughput::Elements(MESSAGES));
        for capacity in CAPACITIES {
            let workload = Workload {
                producers,
                capacity,
                messages: MESSAGES,
            };
            let expected = expected_sum(&workload);
            for (id, run) in [
                (raw_id, &run_raw as &dyn Fn(&Workload) -> u64),
                ("boundflow", &run_boundflow),
            ] {
                group.bench_with_input(BenchmarkId::new(id, capacity), &workload, |b, w| {
                    b.iter(|| assert_eq!(black_box(run(w)), expected))
                });
            }
        }
        group.finish();
    }
}

fn blocking_group<Raw: BlockingChannel, Bf: BlockingChannel>(c: &mut Criterion, backend: &str) {
    side_by_side(
        c,
        &format!("{backend}/blocking"),
        "raw",
        run_blocking::<Raw>,
        run_blocking::<Bf>,
    );
}

fn async_group<Raw: AsyncChannel, Bf: AsyncChannel>(c: &mut Criterion, backend: &str, raw: &str) {
    let runtime = async_runtime().expect("tokio runtime");
    side_by_side(
        c,
        &format!("{backend}/async"),
        raw,
        |w| run_async::<Raw>(&runtime, w),
        |w| run_async::<Bf>(&runtime, w),
    );
}

fn tokio(c: &mut Criterion) {
    blocking_group::<RawTokio, Boundflow<Tokio>>(c, "tokio");
    async_group::<RawTokio, Boundflow<Tokio>>(c, "tokio", "raw");
}

fn flume(c: &mut Criterion) {
    blocking_group::<RawFlume, Boundflow<Flume>>(c, "flume");
    async_group::<RawFlume, Boundflow<Flume>>(c, "flume", "raw");
}

fn crossbeam(c: &mut Criterion) {
    blocking_group::<RawCrossbeam, Boundflow<Crossbeam>>(c, "crossbeam");
    async_group::<RawTokio, Boundflow<Crossbeam>>(c, "crossbeam", "raw_tokio");
}

fn async_channel(c: &mut Criterion) {
    blocking_group::<RawAsyncChannel, Boundflow<AsyncChannelBackend>>(c, "async_channel");
    async_group::<RawAsyncChannel, Boundflow<AsyncChannelBackend>>(c, "async_channel", "raw");
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
}

criterion_group! { name = benches; config = config(); targets = tokio, flume, crossbeam, async_channel }
criterion_main!(benches);
