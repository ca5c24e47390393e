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
        .env_remove("BOUNDFLOW_ENV")
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

/// Two ways `size` could print a line that does nothing: naming a base value an environment
/// overrides (no `--env` on a directory with environments: refused, listing them), and a size
/// the loader would refuse (capped at `max_capacity`, or left alone at it with advice).
#[test]
fn suggestions_never_point_at_a_shadowed_line_or_an_impossible_size() {
    let dir = tempfile::tempdir().unwrap();
    let snapshot = dir.path().join("snapshot.json");
    let channel = |name: &str, capacity: u64| {
        format!(
            r#"{{"name": "{name}", "capacity": {capacity}, "stats": {{"high_water_mark": {capacity}, "full_events": 3}}}}"#
        )
    };
    std::fs::write(
        &snapshot,
        format!(
            r#"{{"channels": [{}, {}]}}"#,
            channel("worker.step_processor.result", 600_000),
            channel("orchestration.command", 1 << 20)
        ),
    )
    .unwrap();
    let snapshot = snapshot.to_str().unwrap();
    let presets = presets();
    let presets = presets.to_str().unwrap();

    let (code, out, err) = boundflow(&["size", "--snapshot", snapshot, "--config-dir", presets]);
    assert_eq!(code, Some(2), "{out}");
    assert!(err.contains("give --env ENV"), "{err}");
    assert!(err.contains("demo, development, production, test"), "{err}");

    let (code, out, err) = boundflow(&[
        "size",
        "--snapshot",
        snapshot,
        "--config-dir",
        presets,
        "--env",
        "production",
    ]);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        out.contains("# worker.step_processor.result: 600000 -> 1048576 (3 sends found it full"),
        "{out}"
    );
    assert!(out.contains("capped at max_capacity 1048576"), "{out}");
    assert!(out.contains("result_buffer_size = 1048576"), "{out}");
    assert!(
        out.contains("# orchestration.command: capacity 1048576 is at max_capacity 1048576"),
        "{out}"
    );
    assert!(!out.contains("command_buffer_size = 2097152"), "{out}");
}
