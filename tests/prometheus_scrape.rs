//! Starts `examples/prometheus.rs` (built by `cargo test` with the test's features), reads the
//! address it prints, and scrapes `/metrics` over HTTP until every boundflow metric shows up
//! with the channel's labels and plausible values, or a deadline passes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use boundflow::METRIC_NAMES;

/// Kills the example however the test ends.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `target/<profile>/examples/prometheus`, next to this test's own `deps` directory.
fn example() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().and_then(|deps| deps.parent()).unwrap();
    let path = profile_dir
        .join("examples")
        .join(format!("prometheus{}", std::env::consts::EXE_SUFFIX));
    assert!(
        path.exists(),
        "{} is missing: cargo test builds it with --features tokio,flume,metrics",
        path.display()
    );
    path
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

/// The value of the series `name{labels...}` whose label text contains every `needle`.
fn sample(body: &str, name: &str, needles: &[&str]) -> Option<f64> {
    body.lines()
        .filter(|line| !line.starts_with('#'))
        .filter(|line| {
            line.split(['{', ' ']).next() == Some(name) && needles.iter().all(|n| line.contains(n))
        })
        .find_map(|line| line.rsplit(' ').next()?.parse().ok())
}

#[test]
fn scrape_finds_every_metric_with_labels_and_plausible_values() {
    let mut child = Command::new(example())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let running = Running(child);
    let mut first = String::new();
    BufReader::new(stdout).read_line(&mut first).unwrap();
    let address = first
        .trim()
        .strip_prefix("listening on http://")
        .and_then(|rest| rest.strip_suffix("/metrics"))
        .unwrap_or_else(|| panic!("unexpected first line: {first:?}"))
        .to_owned();

    let jobs = [
        "channel=\"worker.jobs\"",
        "subsystem=\"worker\"",
        "backend=\"tokio\"",
    ];
    let deadline = Instant::now() + Duration::from_secs(60);
    let body = loop {
        let body = scrape(&address).unwrap_or_default();
        let complete = METRIC_NAMES
            .iter()
            .all(|name| sample(&body, name, &jobs).is_some())
            && sample(&body, "boundflow_channel_messages_sent_total", &jobs).unwrap_or(0.0) > 0.0
            && sample(
                &body,
                "boundflow_channel_dropped_total",
                &["channel=\"telemetry.events\"", "reason=\"oldest\""],
            )
            .unwrap_or(0.0)
                > 0.0;
        if complete {
            break body;
        }
        assert!(
            Instant::now() < deadline,
            "not every metric appeared before the deadline; last scrape:\n{body}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(body.starts_with("HTTP/1.1 200 OK"), "{body}");
    let value = |name: &str| sample(&body, name, &jobs).unwrap();
    assert_eq!(value("boundflow_channel_capacity"), 64.0);
    let saturation = value("boundflow_channel_saturation_ratio");
    assert!((0.0..=1.0).contains(&saturation), "{saturation}");
    assert!(value("boundflow_channel_depth") <= 64.0);
    assert!(value("boundflow_channel_high_water") <= 64.0);
    let sent = value("boundflow_channel_messages_sent_total");
    let received = value("boundflow_channel_messages_received_total");
    assert!(received <= sent, "received {received} > sent {sent}");
    assert!(sent - received <= 64.0, "backlog beyond capacity");
    // The slow consumer fills the channel: sends wait, and the histogram says so.
    let inf = sample(
        &body,
        "boundflow_channel_send_wait_seconds_bucket",
        &["channel=\"worker.jobs\"", "le=\"+Inf\""],
    )
    .unwrap();
    assert_eq!(inf, value("boundflow_channel_send_wait_seconds_count"));
    assert!(body.contains("# TYPE boundflow_channel_messages_sent_total counter"));
    assert!(body.contains("# TYPE boundflow_channel_depth gauge"));
    drop(running);
}
