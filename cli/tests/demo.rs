//! `boundflow demo` run as a user runs it: for a few seconds without a terminal it prints a
//! line per channel and a summary whose counts add up; Ctrl-C ends it with the same summary;
//! bad flags exit 2.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

use common::{CHANNELS, start_demo, summary_adds_up};

/// A per-second line and a summary row for every channel, and the summary adds up.
fn check_summary(out: &str) {
    for channel in CHANNELS {
        let lines: Vec<&str> = out.lines().filter(|l| l.contains(channel)).collect();
        assert!(
            lines.len() >= 2,
            "{channel}: no per-second line and summary row:\n{out}"
        );
    }
    summary_adds_up(out);
}

#[test]
fn demo_runs_prints_per_channel_lines_and_a_summary_that_adds_up() {
    let out = Command::new(env!("CARGO_BIN_EXE_boundflow"))
        .args(["demo", "--duration", "3s"])
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    check_summary(&stdout);
    assert!(
        stdout.contains("WARN  saturated"),
        "the saturation warnings show:\n{stdout}"
    );
    let drops = stdout
        .lines()
        .rfind(|l| l.starts_with("event_publisher.event_queue"))
        .unwrap();
    let full: u64 = drops.split_whitespace().nth(5).unwrap().parse().unwrap();
    assert!(full > 0, "drop_newest refused nothing: {drops}");
}

#[test]
fn ctrl_c_ends_it_cleanly_with_the_same_summary() {
    let (mut child, mut stdout, first) = start_demo(&["--duration", "60s"]);
    assert!(first.starts_with("boundflow demo"), "{first}");
    std::thread::sleep(Duration::from_millis(1500));
    let sent = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0), "{rest}");
    assert!(rest.contains("interrupted"), "{rest}");
    check_summary(&rest);
}

#[test]
fn bad_demo_flags_exit_2() {
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_boundflow"))
            .args(args)
            .output()
            .unwrap()
            .status
            .code()
    };
    assert_eq!(run(&["demo", "--speed", "fast"]), Some(2));
    assert_eq!(run(&["demo", "--duration"]), Some(2));
    assert_eq!(run(&["demo", "--duration", "soon"]), Some(2));
    assert_eq!(run(&["demo", "--metrics-addr", "localhost"]), Some(2));
}

fn scrape(address: &str) -> std::io::Result<String> {
    let mut stream = TcpStream::connect(address)?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(
        stream,
        "GET /metrics HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n"
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    Ok(response)
}

/// The value of `name{...channel="<channel>"...}`.
fn sample(body: &str, name: &str, channel: &str) -> Option<f64> {
    let label = format!("channel=\"{channel}\"");
    body.lines()
        .filter(|line| line.split(['{', ' ']).next() == Some(name) && line.contains(&label))
        .find_map(|line| line.rsplit(' ').next()?.parse().ok())
}

#[test]
fn metrics_addr_serves_prometheus_while_the_demo_runs() {
    let (mut child, mut stdout, first) =
        start_demo(&["--duration", "6s", "--metrics-addr", "127.0.0.1:0"]);
    let address = first
        .trim()
        .strip_prefix("metrics: serving http://")
        .and_then(|rest| rest.strip_suffix("/metrics"))
        .unwrap_or_else(|| panic!("the address comes first: {first}"))
        .to_owned();
    // Keep reading stdout so the demo never blocks on a full pipe.
    let rest = std::thread::spawn(move || {
        let mut rest = String::new();
        stdout.read_to_string(&mut rest).unwrap();
        rest
    });
    // The demo preset ticks every second: wait for a tick that has seen traffic.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let body = loop {
        let response = scrape(&address).unwrap();
        assert!(response.starts_with("HTTP/1.1 200 OK"), "{response}");
        if CHANNELS.iter().all(|c| {
            sample(&response, "boundflow_channel_messages_sent_total", c).is_some_and(|v| v > 0.0)
        }) {
            break response;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not every channel's sends showed:\n{response}"
        );
        std::thread::sleep(Duration::from_millis(250));
    };
    assert_eq!(
        sample(&body, "boundflow_channel_capacity", "orchestration.command"),
        Some(32.0),
        "{body}"
    );
    assert_eq!(
        sample(
            &body,
            "boundflow_channel_capacity",
            "task_readiness.event_channel"
        ),
        Some(8.0),
        "{body}"
    );
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0));
    check_summary(&rest.join().unwrap());
}

/// `--config-dir` with a configuration that lacks the demo's channels: exit 1 naming the
/// missing ones and the fix, before anything runs; the shipped presets' own directory (its
/// base, with no `--env`) runs.
#[test]
fn a_config_dir_without_the_demos_channels_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("base")).unwrap();
    std::fs::write(
        dir.path().join("base/mpsc_channels.toml"),
        "[mpsc_channels.orchestration]\ncommand_buffer_size = 10\n",
    )
    .unwrap();
    let run = |config_dir: &std::path::Path| {
        Command::new(env!("CARGO_BIN_EXE_boundflow"))
            .args(["demo", "--plain", "--duration", "200ms", "--config-dir"])
            .arg(config_dir)
            .env_remove("BOUNDFLOW_ENV")
            .output()
            .unwrap()
    };
    let out = run(dir.path());
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("lacks worker.step_processor.execution_request, worker.step_processor.result"),
        "{err}"
    );
    assert!(!err.contains("lacks orchestration.command"), "{err}");
    assert!(err.contains("copy of config/presets"), "{err}");

    let presets = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/presets");
    let out = run(&presets);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
