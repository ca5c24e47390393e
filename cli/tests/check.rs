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

/// A copy of the presets with `(file, from, to)` replacements (each must apply).
fn edited_presets(edits: &[(&str, &str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let envs = ["demo", "development", "production", "test"];
    for file in std::iter::once("base".to_owned()).chain(envs.map(|e| format!("environments/{e}")))
    {
        let file = format!("{file}/mpsc_channels.toml");
        let mut text = std::fs::read_to_string(presets().join(&file)).unwrap();
        for (_, from, to) in edits.iter().filter(|(f, _, _)| *f == file) {
            assert!(text.contains(from), "{from} not in {file}");
            text = text.replacen(from, to, 1);
        }
        let path = dir.path().join(&file);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    dir
}

/// The errors of a `--format json` run for one environment that exits 1, as (kind, line, key).
fn json_errors(out: &Output) -> Vec<(String, Option<u64>, String)> {
    assert_eq!(out.status.code(), Some(1), "{}", stderr(out));
    let doc: Value = serde_json::from_str(&stdout(out)).unwrap();
    doc["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["kind"].as_str().unwrap().to_owned(),
                e["line"].as_u64(),
                e["key"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn check_json(dir: &Path, env: &str) -> Output {
    let path = dir.to_str().unwrap();
    boundflow(&[
        "check",
        "--config-dir",
        path,
        "--env",
        env,
        "--format",
        "json",
    ])
}

/// The reviewer's case: in the base, a misspelt purpose, `<purpose>_send_timeout_ms` and a
/// table without buffer_size used to pass with exit 0.
#[test]
fn keys_the_base_gives_no_channel_are_errors() {
    let base = "base/mpsc_channels.toml";
    let dir = edited_presets(&[
        (
            base,
            "result_backend = \"flume\"",
            "reslt_backend = \"flume\"\nresult_send_timeout_ms = 250",
        ),
        (
            base,
            "[mpsc_channels.overflow_policy]",
            "[mpsc_channels.audit.sink]\nsend_timeout_ms = 250\n\n[mpsc_channels.overflow_policy]",
        ),
    ]);
    let unknown = |line: u64, key: &str| {
        let key = format!("mpsc_channels.{key}");
        ("unknown_channel".to_owned(), Some(line), key)
    };
    assert_eq!(
        json_errors(&check_json(dir.path(), "production")),
        [
            unknown(11, "worker.step_processor.reslt_backend"),
            unknown(12, "worker.step_processor.result_send_timeout_ms"),
            unknown(23, "audit.sink.send_timeout_ms"),
        ]
    );
}

/// `check` refuses the retry policy that `demo` (the channel builder) refuses.
#[test]
fn an_inverted_retry_backoff_fails_check_as_it_fails_the_application() {
    let dir = edited_presets(&[(
        "environments/demo/mpsc_channels.toml",
        "retry_max_attempts = 4",
        "retry_max_attempts = 4\nretry_initial_backoff_ms = 500\nretry_max_backoff_ms = 10",
    )]);
    let errors = json_errors(&check_json(dir.path(), "demo"));
    let key = "mpsc_channels.task_readiness.event_channel.retry_max_backoff_ms";
    assert_eq!(
        errors,
        [("invalid_value".to_owned(), Some(19), key.to_owned())]
    );
}

/// CI often exports BOUNDFLOW_ENV empty: that is unset, so every environment is checked.
#[test]
fn an_empty_boundflow_env_checks_every_environment() {
    let dir = presets();
    let mut command = Command::new(env!("CARGO_BIN_EXE_boundflow"));
    let args = [
        "check",
        "--config-dir",
        dir.to_str().unwrap(),
        "--format",
        "json",
    ];
    let out = command
        .args(args)
        .env("BOUNDFLOW_ENV", "")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let doc: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(doc["environments"].as_array().unwrap().len(), 4);
}

/// `--env` names one directory under environments/; a hidden one is no environment; one whose
/// name is not UTF-8 is reported, not skipped.
#[cfg(unix)]
#[test]
fn environments_are_plain_directory_names() {
    use std::os::unix::ffi::OsStrExt;
    let dir = presets();
    let out = boundflow(&[
        "check",
        "--config-dir",
        dir.to_str().unwrap(),
        "--env",
        "../base",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("is a path, not a directory name"),
        "{}",
        stderr(&out)
    );

    let dir = edited_presets(&[]);
    std::fs::create_dir(dir.path().join("environments/.old")).unwrap();
    let out = boundflow(&[
        "check",
        "--config-dir",
        dir.path().to_str().unwrap(),
        "--format",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let strange = dir
        .path()
        .join("environments")
        .join(std::ffi::OsStr::from_bytes(b"stag\xffing"));
    std::fs::create_dir(&strange).unwrap();
    std::fs::write(
        strange.join("mpsc_channels.toml"),
        "[mpsc_channels.orchestration]\ncommand_buffer_size = \"oops\"\n",
    )
    .unwrap();
    let out = boundflow(&[
        "check",
        "--config-dir",
        dir.path().to_str().unwrap(),
        "--format",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let doc: Value = serde_json::from_str(&stdout(&out)).unwrap();
    let runs = doc["environments"].as_array().unwrap();
    let names: Vec<&str> = runs
        .iter()
        .map(|e| e["environment"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "demo",
            "development",
            "production",
            "test",
            "stag\u{fffd}ing"
        ]
    );
    assert_eq!(runs[4]["errors"][0]["kind"], "invalid_environment");
    // No key names an environment: the README's "empty where there is none".
    assert_eq!(runs[4]["errors"][0]["key"], "");
}

/// A closed or failing stdout is no panic (exit 101): a reader that stops reading leaves the
/// status as it is, a write error is reported and exits 1.
#[cfg(unix)]
#[test]
fn a_closed_or_full_stdout_is_no_panic() {
    let dir = presets();
    let args = [
        "check",
        "--config-dir",
        dir.to_str().unwrap(),
        "--format",
        "json",
    ];
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let out = boundflow_with(&args, |c| {
        c.stdout(full);
    });
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).starts_with("error: cannot write the result to stdout"),
        "{}",
        stderr(&out)
    );
    // Closed before it writes: the reader went away (`boundflow check … | head`).
    let mut child = Command::new(env!("CARGO_BIN_EXE_boundflow"))
        .args(args)
        .env_remove("BOUNDFLOW_ENV")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(!stderr(&out).contains("panicked"), "{}", stderr(&out));
}

fn boundflow_with(args: &[&str], prepare: impl FnOnce(&mut Command)) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_boundflow"));
    command.args(args).env_remove("BOUNDFLOW_ENV");
    prepare(&mut command);
    command.output().unwrap()
}

/// `--backends` without the default backend: one error that says where to set another, and
/// drop_oldest's fix offers only backends the binary has.
#[test]
fn a_missing_default_backend_is_one_error_saying_where_to_set_it() {
    let dir = presets();
    let args = [
        "check",
        "--config-dir",
        dir.to_str().unwrap(),
        "--env",
        "production",
    ];
    let out = boundflow(&[&args[..], &["--backends", "flume", "--format", "json"]].concat());
    let key = "mpsc_channels.overflow_policy.backend";
    assert_eq!(
        json_errors(&out),
        [("unknown_backend".to_owned(), None, key.to_owned())]
    );
    let doc: Value = serde_json::from_str(&stdout(&out)).unwrap();
    let error = &doc["errors"][0];
    assert!(
        error["file"]
            .as_str()
            .unwrap()
            .ends_with("base/mpsc_channels.toml")
    );
    assert!(
        error["fix"]
            .as_str()
            .unwrap()
            .starts_with("set `backend = \"flume\"` under [mpsc_channels.overflow_policy]"),
        "{error}"
    );
    let dir = edited_presets(&[(
        "environments/production/mpsc_channels.toml",
        "event_queue_buffer_size = 50000",
        "event_queue_buffer_size = 50000\nevent_queue_overflow = \"drop_oldest\"",
    )]);
    let path = dir.path().to_str().unwrap();
    let args = [
        "check",
        "--config-dir",
        path,
        "--env",
        "production",
        "--backends",
        "tokio,crossbeam",
    ];
    let out = boundflow(&args);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("— use crossbeam for this channel, or another policy"),
        "{}",
        stderr(&out)
    );
}

/// A shared base used as environments use it: one environment switches the base's retry
/// channel to another policy, and a base default only demo's retry channel reads. Every
/// environment is valid (exit 0); production warns, at its own line, that it ignores the
/// base's retry setting.
#[test]
fn environments_may_differ_in_policy_over_one_shared_base() {
    let dir = edited_presets(&[
        (
            "base/mpsc_channels.toml",
            "send_timeout_ms = 1000\n",
            "overflow = \"retry\"\nretry_max_attempts = 4\n",
        ),
        (
            "base/mpsc_channels.toml",
            "drop_policy = \"block\"",
            "drop_policy = \"block\"\nretry_max_backoff_ms = 50",
        ),
        (
            "environments/production/mpsc_channels.toml",
            "[mpsc_channels.task_readiness.event_channel]\nbuffer_size = 5000\n",
            "[mpsc_channels.task_readiness.event_channel]\nbuffer_size = 5000\noverflow = \"drop_newest\"\n",
        ),
    ]);
    let path = dir.path().to_str().unwrap();
    let out = boundflow(&["check", "--config-dir", path, "--format", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let doc: Value = serde_json::from_str(&stdout(&out)).unwrap();
    let warnings: Vec<(String, String, Value, String)> = doc["environments"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|env| {
            let name = env["environment"].as_str().unwrap().to_owned();
            let list = env["warnings"].as_array().unwrap().clone();
            list.into_iter().map(move |w| {
                let file = w["file"].as_str().unwrap();
                let file = file.strip_prefix(path).unwrap_or(file).to_owned();
                (
                    format!("{name}: {}", w["kind"].as_str().unwrap()),
                    file,
                    w["line"].clone(),
                    w["key"].as_str().unwrap().to_owned(),
                )
            })
        })
        .collect();
    assert_eq!(
        warnings,
        [(
            "production: ignored_setting".to_owned(),
            "/environments/production/mpsc_channels.toml".to_owned(),
            Value::from(11),
            "mpsc_channels.task_readiness.event_channel.overflow".to_owned()
        )]
    );
}
