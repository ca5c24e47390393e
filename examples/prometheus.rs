//! Channels scraped by Prometheus: `metrics-exporter-prometheus` installed as the recorder,
//! served at `/metrics` by this example's own listener on a free port (the exporter's built-in
//! listener cannot say which port it got), while a small workload runs.
//!
//! ```text
//! cargo run --example prometheus --features metrics,flume
//! curl http://127.0.0.1:<port>/metrics      # the port is printed first
//! ```
//!
//! Runs until killed; `--seconds N` stops it after N seconds.
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use boundflow::{ChannelBuilder, Flume, MetricsPublisher, OverflowPolicy, Tokio, Watcher};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let seconds = std::env::args()
        .skip_while(|arg| arg != "--seconds")
        .nth(1)
        .map(|n| n.parse::<u64>())
        .transpose()?;
    let handle = PrometheusBuilder::new().install_recorder()?;
    let listener = TcpListener::bind("127.0.0.1:0")?;
    println!("listening on http://{}/metrics", listener.local_addr()?);
    std::io::stdout().flush()?;
    thread::spawn(move || serve(&listener, &handle));

    let watcher = Watcher::new(Duration::from_millis(200))?;
    watcher.add_publisher(Arc::new(MetricsPublisher::new()));
    let _tick = watcher.spawn_thread()?;
    workload(&watcher)?;

    let until = seconds.map(|s| Instant::now() + Duration::from_secs(s));
    while until.is_none_or(|until| Instant::now() < until) {
        thread::sleep(Duration::from_millis(100));
    }
    Ok(())
}

/// Answers every request with the exporter's rendering.
fn serve(listener: &TcpListener, handle: &PrometheusHandle) {
    for stream in listener.incoming().flatten() {
        let _ = respond(stream, handle);
    }
}

fn respond(mut stream: TcpStream, handle: &PrometheusHandle) -> std::io::Result<()> {
    let mut request_line = String::new();
    let mut reader = BufReader::new(stream.try_clone()?);
    reader.read_line(&mut request_line)?;
    // Read the rest of the request head.
    let mut line = String::new();
    while reader.read_line(&mut line)? > 2 {
        line.clear();
    }
    let (status, body) = if request_line.starts_with("GET /metrics") {
        ("200 OK", handle.render())
    } else {
        ("404 Not Found", "try /metrics\n".to_owned())
    };
    write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

/// A pipeline whose consumer is slower than its producer, and a lossy side channel.
fn workload(watcher: &Watcher) -> Result<(), Box<dyn std::error::Error>> {
    let (jobs, mut jobs_rx) = ChannelBuilder::new(Tokio, "worker.jobs", 64).build::<u64>()?;
    let (events, mut events_rx) = ChannelBuilder::new(Flume, "telemetry.events", 8)
        .policy(OverflowPolicy::DropOldest)
        .build::<u64>()?;
    watcher.watch(&jobs.handle())?;
    watcher.watch(&events.handle())?;
    thread::spawn(move || {
        for n in 0.. {
            if jobs.send_blocking(n).is_err() {
                break;
            }
            let _ = events.send_blocking(n);
        }
    });
    thread::spawn(move || {
        while jobs_rx.recv_blocking().is_ok() {
            thread::sleep(Duration::from_micros(200));
            while events_rx.try_recv().is_ok() {}
        }
    });
    Ok(())
}
