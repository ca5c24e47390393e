//! Loading a 1,000-channel configuration with an overlay (`cargo bench -p boundflow-config`).
#![allow(missing_docs, clippy::expect_used)]

use std::fmt::Write;

use boundflow_config::Loader;
use criterion::{Criterion, criterion_group, criterion_main};

fn thousand_channels(c: &mut Criterion) {
    let mut base = String::new();
    let mut overlay = String::new();
    for component in 0..100 {
        writeln!(base, "[mpsc_channels.subsystem_{component}.component]").expect("write");
        writeln!(overlay, "[mpsc_channels.subsystem_{component}.component]").expect("write");
        for purpose in 0..10 {
            writeln!(base, "purpose_{purpose}_buffer_size = {}", 100 + purpose).expect("write");
            writeln!(base, "purpose_{purpose}_timeout_ms = 50").expect("write");
            writeln!(
                overlay,
                "purpose_{purpose}_buffer_size = {}",
                1000 + purpose
            )
            .expect("write");
        }
    }
    let loader = Loader::from_strs(&base, Some(&overlay)).variables(Vec::<(String, String)>::new());
    assert_eq!(loader.load().expect("valid").channels.len(), 1000);
    c.bench_function("load/1000_channels", |b| {
        b.iter(|| loader.load().expect("valid"))
    });
}

criterion_group!(benches, thousand_channels);
criterion_main!(benches);
