//! A Rust host (a registry, consumers as async tasks on tokio) and C worker threads talking
//! through boundflow's C ABI: 4 pthreads send 100,000 messages each — every one arrives once,
//! in order per thread, and the stats agree — and pthreads take work with `recv_many` and
//! send results back.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]
#![allow(unsafe_code)] // Calls the C worker library and the C ABI.

use std::collections::HashSet;

use boundflow::Registry;
use boundflow::config::Loader;
use boundflow_ffi::{
    BOUNDFLOW_INVALID_HANDLE, BOUNDFLOW_OK, BoundflowStats, adopt_receiver, adopt_sender,
};
use boundflow_ffi_host_test::{worker_produce, worker_serve};

const CONFIG: &str = r#"
[mpsc_channels.ffi]
results_buffer_size = 1024
results_backend = "crossbeam"
work_buffer_size = 256
done_buffer_size = 256
done_backend = "flume"
"#;

fn registry() -> Registry {
    let config = Loader::from_strs(CONFIG, None)
        .backends(boundflow::compiled_backends())
        .load()
        .unwrap();
    Registry::builder(config)
        .tick_thread(false)
        .build()
        .unwrap()
}

fn decode(msg: &[u8]) -> (u32, u32) {
    let value = u64::from_ne_bytes(msg.try_into().expect("8 bytes"));
    ((value >> 32) as u32, value as u32)
}

#[test]
fn four_c_threads_send_100_000_each_and_every_message_arrives_once() {
    const THREADS: u32 = 4;
    const PER_THREAD: u32 = 100_000;
    let registry = registry();
    let (tx, mut rx) = registry.open::<Box<[u8]>>("ffi.results").unwrap();
    let stats_of = tx.handle();
    let sender = adopt_sender(tx, 64).unwrap();

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    let consumer = runtime.spawn(async move {
        let mut next = vec![0u32; THREADS as usize];
        let mut total = 0u64;
        while let Ok(msg) = rx.recv().await {
            let (thread, sequence) = decode(&msg);
            assert_eq!(
                sequence, next[thread as usize],
                "lost, duplicated or reordered"
            );
            next[thread as usize] += 1;
            total += 1;
        }
        (next, total)
    });

    let mut timeouts = 0;
    // SAFETY: `timeouts` is a valid out-pointer; `sender` is a live handle.
    let status = unsafe { worker_produce(sender, THREADS, PER_THREAD, &mut timeouts) };
    assert_eq!(status, BOUNDFLOW_OK);

    let mut stats = BoundflowStats {
        size: std::mem::size_of::<BoundflowStats>() as u32,
        ..BoundflowStats::default()
    };
    // SAFETY: `stats` is valid and sized.
    assert_eq!(
        unsafe { boundflow_ffi::boundflow_stats(sender, &mut stats) },
        BOUNDFLOW_OK
    );
    // The last sender goes with the handle: the consumer sees the channel close.
    assert_eq!(boundflow_ffi::boundflow_handle_free(sender), BOUNDFLOW_OK);
    assert_eq!(
        boundflow_ffi::boundflow_handle_free(sender),
        BOUNDFLOW_INVALID_HANDLE,
        "a double free is refused"
    );
    let (next, total) = runtime.block_on(consumer).unwrap();
    assert_eq!(next, vec![PER_THREAD; THREADS as usize]);
    assert_eq!(total, u64::from(THREADS * PER_THREAD));
    let final_stats = stats_of.stats();
    assert_eq!(final_stats.sent, total);
    assert_eq!(final_stats.received, total);
    assert!(stats.sent <= total && stats.sent >= stats.received);
    eprintln!("{total} messages; {timeouts} sends timed out after 1 s and were retried");
}

#[test]
fn c_threads_take_work_with_recv_many_and_send_results_back() {
    const ITEMS: u64 = 50_000;
    let registry = registry();
    let (work_tx, work_rx) = registry.open::<Box<[u8]>>("ffi.work").unwrap();
    let (done_tx, mut done_rx) = registry.open::<Box<[u8]>>("ffi.done").unwrap();
    let work = adopt_receiver(work_rx).unwrap();
    let done = adopt_sender(done_tx, 8).unwrap();

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    let producer = runtime.spawn(async move {
        for item in 0..ITEMS {
            work_tx.send(Box::from(item.to_ne_bytes())).await.unwrap();
        }
        // Dropping `work_tx` closes the work channel: the C threads drain it and stop.
    });
    let consumer = runtime.spawn(async move {
        let mut seen = HashSet::new();
        while let Ok(msg) = done_rx.recv().await {
            let item = u64::from_ne_bytes((*msg).try_into().unwrap());
            assert!(seen.insert(item), "{item} came back twice");
        }
        seen
    });

    let mut handled = 0;
    // SAFETY: live handles and a valid out-pointer.
    let status = unsafe { worker_serve(work, done, 3, &mut handled) };
    assert_eq!(status, BOUNDFLOW_OK);
    assert_eq!(handled, ITEMS);
    runtime.block_on(producer).unwrap();
    assert_eq!(boundflow_ffi::boundflow_handle_free(work), BOUNDFLOW_OK);
    assert_eq!(boundflow_ffi::boundflow_handle_free(done), BOUNDFLOW_OK);
    let seen = runtime.block_on(consumer).unwrap();
    assert_eq!(seen.len() as u64, ITEMS);
    assert!((0..ITEMS).all(|item| seen.contains(&item)));
}

/// The README's C example runs, and the README shows it as it is in `c/readme_example.c`.
#[test]
fn the_readme_c_example_runs_and_is_what_the_readme_shows() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let example = std::fs::read_to_string(root.join("c/readme_example.c")).unwrap();
    let readme = std::fs::read_to_string(root.join("../../README.md")).unwrap();
    assert!(
        readme.contains(&example),
        "README.md's C example differs from c/readme_example.c"
    );
    let dir = std::ffi::CString::new(root.join("../../config/presets").to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(
        unsafe { boundflow_ffi_host_test::readme_example(dir.as_ptr()) },
        0
    );
}
