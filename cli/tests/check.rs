//! `boundflow check` run as a user runs it: on the shipped presets (text and JSON, one
//! environment and all of them), on a broken copy (every error with file and line, exit 1),
//! and with bad flags (exit 2).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn presets() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("config")
        .join("presets")
}

fn boundflow(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_boundflow"))
        .args(args)
        .env_remove("BOUNDFLOW_ENV")
        .output()
        .unwrap()
}

fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8(output.stderr.clone()).unwrap()
}

#[test]
fn text_table_of_every_channel_with_its_sources() {
    let dir = presets();
    let out = boundflow(&[
        "check",
        "--config-dir",
        dir.to_str().unwrap(),
        "--env",
        "production",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    for channel in [
        "orchestration.command",
        "worker.step_processor.execution_request",
        "worker.step_processor.result",
        "task_readiness.event_channel",
        "event_publisher.event_queue",
    ] {
        assert!(text.contains(channel), "{channel} missing:\n{text}");
    }
    assert!(
        text.contains("environments/production/mpsc_channels.toml:"),
        "{text}"
    );
    assert!(text.contains("base/mpsc_channels.toml:"), "{text}");
}

#[test]
fn json_for_one_environment_has_the_documented_shape() {
    let dir = presets();
    let out = boundflow(&[
        "check",
        "--config-dir",
        dir.to_str().unwrap(),
        "--env",
        "demo",
        "--format",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let doc: Value = serde_json::from_str(&stdout(&out)).expect("exactly one JSON document");
    assert_eq!(doc["environment"], "demo");
    assert!(doc["warnings"].is_array());
    let channels = doc["channels"].as_array().unwrap();
    assert_eq!(channels.len(), 5);
    let command = channels
        .iter()
        .find(|c| c["name"] == "orchestration.command")
        .unwrap();
    assert_eq!(command["capacity"], 32);
    assert_eq!(command["backend"], "crossbeam");
    assert_eq!(command["overflow"], "timeout");
    assert_eq!(command["send_timeout_ms"], 500);
    let capacity_source = command["sources"]["capacity"].as_str().unwrap();
    assert!(
        capacity_source.ends_with("environments/demo/mpsc_channels.toml:3"),
        "{capacity_source}"
    );
    let queue = channels
        .iter()
        .find(|c| c["name"] == "event_publisher.event_queue")
        .unwrap();
    assert_eq!(queue["send_timeout_ms"], Value::Null);
    assert_eq!(queue["sources"]["backend"], "default");
}

#[test]
fn without_an_environment_every_one_is_checked() {
    let dir = presets();
    let out = boundflow(&[
        "check",
        "--config-dir",
        dir.to_str().unwrap(),
        "--format",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let doc: Value = serde_json::from_str(&stdout(&out)).unwrap();
    let names: Vec<&str> = doc["environments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["environment"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["demo", "development", "production", "test"]);
}

/// A copy of the presets with a typo, a wrong type and an unknown backend.
fn broken_presets() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for sub in ["base", "environments/test"] {
        std::fs::create_dir_all(dir.path().join(sub)).unwrap();
    }
    let base = std::fs::read_to_string(presets().join("base/mpsc_channels.toml")).unwrap();
    let base = base
        .replace("result_backend = \"flume\"", "result_backend = \"flmue\"")
        .replace("send_timeout_ms = 1000", "send_timout_ms = 1000");
    std::fs::write(dir.path().join("base/mpsc_channels.toml"), base).unwrap();
    std::fs::write(
        dir.path().join("environments/test/mpsc_channels.toml"),
        "[mpsc_channels.orchestration]\ncommand_buffer_size = \"lots\"\n",
    )
    .unwrap();
    dir
}

#[test]
fn a_broken_copy_prints_every_error_with_file_and_line() {
    let dir = broken_presets();
    let path = dir.path().to_str().unwrap();
    let out = boundflow(&["check", "--config-dir", path, "--env", "test"]);
    assert_eq!(out.status.code(), Some(1));
    let errors = stderr(&out);
    for expected in [
        "base/mpsc_channels.toml:11",
        "flmue",
        "send_timout_ms",
        "environments/test/mpsc_channels.toml:2",
        "found a string",
    ] {
        assert!(errors.contains(expected), "{expected} missing:\n{errors}");
    }

    let out = boundflow(&[
        "check",
        "--config-dir",
        path,
        "--env",
        "test",
        "--format",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let doc: Value =
        serde_json::from_str(&stdout(&out)).expect("one JSON document, also on errors");
    assert_eq!(doc["environment"], "test");
    let errors = doc["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 3, "{errors:#?}");
    for error in errors {
        assert!(error["file"].as_str().is_some());
        assert!(error["line"].as_u64().is_some());
        assert!(!error["fix"].as_str().unwrap().is_empty());
    }
    assert!(
        !stderr(&out).is_empty(),
        "people still get the errors on stderr"
    );
}

#[test]
fn bad_usage_exits_2() {
    assert_eq!(
        boundflow(&["check"]).status.code(),
        Some(2),
        "--config-dir is required"
    );
    assert_eq!(boundflow(&["check", "--bogus"]).status.code(), Some(2));
    assert_eq!(boundflow(&["frobnicate"]).status.code(), Some(2));
    let dir = presets();
    let out = boundflow(&[
        "check",
        "--config-dir",
        dir.to_str().unwrap(),
        "--backends",
        "tokio,nats",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("nats"));
    let out = boundflow(&[
        "check",
        "--config-dir",
        dir.to_str().unwrap(),
        "--format",
        "yaml",
    ]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn backends_the_binary_lacks_are_errors() {
    let dir = presets();
    let out = boundflow(&[
        "check",
        "--config-dir",
        dir.to_str().unwrap(),
        "--env",
        "demo",
        "--backends",
        "tokio",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let errors = stderr(&out);
    assert!(errors.contains("crossbeam"), "{errors}");
}
