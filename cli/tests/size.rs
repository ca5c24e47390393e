//! `boundflow size` as a user runs it: the guide's formula, and suggestions from a real
//! registry snapshot printed as the exact TOML lines to change.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::path::{Path, PathBuf};
use std::process::Command;

use boundflow::Registry;
use boundflow::config::Loader;

fn presets() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/presets")
}

fn boundflow(args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_boundflow"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[test]
fn the_guides_formula() {
    let (code, out, _) = boundflow(&[
        "size",
        "--rate",
        "100",
        "--processing-time",
        "50ms",
        "--safety",
        "3",
    ]);
    assert_eq!(code, Some(0));
    assert!(
        out.trim_end().ends_with("= 15"),
        "the guide's worked example: {out}"
    );
    let (code, out, _) = boundflow(&["size", "--rate", "2000", "--processing-time", "2ms"]);
    assert_eq!(code, Some(0));
    assert!(out.trim_end().ends_with("= 12"), "2000 x 0.002 x 3: {out}");
}

#[test]
fn suggestions_from_a_snapshot_name_the_file_and_key() {
    let config = Loader::from_dir(presets())
        .environment("test")
        .backends(boundflow::compiled_backends())
        .load()
        .unwrap();
    let registry = Registry::builder(config)
        .tick_thread(false)
        .build()
        .unwrap();
    // Full: sends found it full, so it is doubled.
    let (command, _command_rx) = registry.open::<u64>("orchestration.command").unwrap();
    while command.try_send(0).is_ok() {}
    // 90 of 100 at most, never full: over 70%, so 100 x 2.
    let (result, mut result_rx) = registry
        .open::<u64>("worker.step_processor.result")
        .unwrap();
    for n in 0..90 {
        result.try_send(n).unwrap();
    }
    assert_eq!(result.stats().high_water_mark, 90);
    while result_rx.try_recv().is_ok() {}
    // Barely used: no change.
    let (_quiet, _quiet_rx) = registry.open::<u64>("event_publisher.event_queue").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let snapshot = dir.path().join("snapshot.json");
    std::fs::write(&snapshot, registry.snapshot().to_json()).unwrap();

    let presets = presets();
    let (code, out, err) = boundflow(&[
        "size",
        "--snapshot",
        snapshot.to_str().unwrap(),
        "--config-dir",
        presets.to_str().unwrap(),
        "--env",
        "test",
    ]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("# orchestration.command: 100 -> 200"), "{out}");
    assert!(
        out.contains("environments/test/mpsc_channels.toml"),
        "{out}"
    );
    assert!(
        out.contains("[mpsc_channels.orchestration]\ncommand_buffer_size = 200"),
        "{out}"
    );
    assert!(
        out.contains("# worker.step_processor.result: 100 -> 200"),
        "{out}"
    );
    assert!(out.contains("result_buffer_size = 200"), "{out}");
    assert!(
        out.contains("event_publisher.event_queue: capacity 500 is enough"),
        "{out}"
    );

    let (code, _, err) = boundflow(&["size"]);
    assert_eq!(code, Some(2), "nothing to size: {err}");
    let (code, _, _) = boundflow(&["size", "--rate", "fast"]);
    assert_eq!(code, Some(2));
}
