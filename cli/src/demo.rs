//! `boundflow demo`: a small pipeline on the built-in `demo` preset — channels on four backends
//! and five policies, producers faster than their consumers, one stage on plain threads — so
//! backpressure, drops, timeouts and saturation warnings happen while you watch. On a terminal
//! it shows a live view (`live_view.rs`); otherwise, or with `--plain`, it prints a line per
//! channel every second. It ends with a summary whose counts are checked against what the
//! producers and consumers counted themselves.

use std::collections::VecDeque;
use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use boundflow::config::{Loader, presets};
use boundflow::{
    ChannelHandle, ChannelInfo, HealthState, Observer, Receiver, Registry, SaturationEvent,
    SaturationKind, SendError, Sender, Snapshot,
};

use crate::DemoArgs;

/// What one producer was told, by its own count.
#[derive(Default)]
struct ProducerCounts {
    attempted: AtomicU64,
    accepted: AtomicU64,
    full: AtomicU64,
    timeout: AtomicU64,
    closed: AtomicU64,
}

/// One stage: a channel, how its producer runs and how slow its consumer is.
struct Stage {
    name: &'static str,
    /// The consumer's work per message.
    work: Duration,
    /// The producer runs on a plain thread with blocking sends (the FFI-style stage).
    blocking: bool,
    produced: Arc<ProducerCounts>,
    consumed: Arc<AtomicU64>,
    /// The channel's counters, which outlive it for the summary.
    handle: ChannelHandle,
}

const STAGES: [(&str, u64, bool); 5] = [
    ("orchestration.command", 400, true),
    ("worker.step_processor.execution_request", 100, false),
    ("worker.step_processor.result", 300, false),
    ("task_readiness.event_channel", 500, false),
    ("event_publisher.event_queue", 200, false),
];

/// Saturation changes as they happen: printed at once in plain mode, and the latest kept for
/// the live view.
pub(crate) struct Warnings {
    started: Instant,
    print: bool,
    recent: Mutex<VecDeque<String>>,
}

impl Warnings {
    /// How many the live view keeps.
    const KEPT: usize = 8;

    fn new(started: Instant, print: bool) -> Self {
        Self {
            started,
            print,
            recent: Mutex::default(),
        }
    }

    /// The latest, oldest first.
    pub(crate) fn recent(&self) -> Vec<String> {
        let recent = self.recent.lock().unwrap_or_else(PoisonError::into_inner);
        recent.iter().cloned().collect()
    }
}

impl Observer for Warnings {
    fn on_saturation(&self, channel: &ChannelInfo, event: &SaturationEvent) {
        let at = self.started.elapsed().as_secs_f64();
        let what = match event.kind {
            SaturationKind::Entered => "WARN  saturated".to_owned(),
            SaturationKind::Reminder { suppressed } => {
                format!("WARN  still saturated ({suppressed} quiet ticks)")
            }
            SaturationKind::Left => "INFO  no longer saturated".to_owned(),
            _ => "saturation".to_owned(),
        };
        let line = format!(
            "{at:6.1}s {what}: {} ({}, {}/{} = {:.0}%)",
            channel.name(),
            channel.backend(),
            event.depth,
            event.capacity,
            event.saturation * 100.0
        );
        if self.print {
            println!("{line}");
        }
        let mut recent = self.recent.lock().unwrap_or_else(PoisonError::into_inner);
        if recent.len() == Self::KEPT {
            recent.pop_front();
        }
        recent.push_back(line);
    }
}

/// One channel as the views show it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ChannelRow {
    pub(crate) name: String,
    pub(crate) backend: &'static str,
    pub(crate) overflow: &'static str,
    pub(crate) depth: usize,
    pub(crate) capacity: usize,
    pub(crate) sent_per_sec: f64,
    pub(crate) received_per_sec: f64,
    /// Dropped by the policy: refused newest plus evicted oldest.
    pub(crate) dropped: u64,
    /// Sends that timed out or ran out of retries.
    pub(crate) timeouts: u64,
    pub(crate) health: HealthState,
}

/// Turns successive snapshots into rows with rates.
pub(crate) struct Rates {
    last: Vec<(String, u64, u64)>,
    at: Instant,
}

impl Rates {
    pub(crate) fn new() -> Self {
        Self {
            last: Vec::new(),
            at: Instant::now(),
        }
    }

    /// The rows for `names` (in that order), rates since the previous call.
    pub(crate) fn rows(&mut self, snapshot: &Snapshot, names: &[&str]) -> Vec<ChannelRow> {
        let now = Instant::now();
        let seconds = now.duration_since(self.at).as_secs_f64().max(1e-3);
        self.at = now;
        let mut rows = Vec::new();
        let mut last = Vec::new();
        for name in names {
            let Some(channel) = snapshot.channels.iter().find(|c| c.name == *name) else {
                continue;
            };
            let s = &channel.stats;
            let (sent_before, received_before) = self
                .last
                .iter()
                .find(|(n, ..)| n == name)
                .map_or((0, 0), |(_, sent, received)| (*sent, *received));
            rows.push(ChannelRow {
                name: channel.name.clone(),
                backend: channel.backend,
                overflow: channel.overflow,
                depth: s.depth,
                capacity: s.capacity,
                sent_per_sec: s.sent.saturating_sub(sent_before) as f64 / seconds,
                received_per_sec: s.received.saturating_sub(received_before) as f64 / seconds,
                dropped: s.dropped_newest + s.evicted,
                timeouts: s.timeouts + s.retries_exhausted,
                health: channel.health,
            });
            last.push(((*name).to_owned(), s.sent, s.received));
        }
        self.last = last;
        rows
    }
}

pub(crate) fn run(args: &DemoArgs) -> Result<bool, String> {
    let duration = args.duration;
    // The built-in presets run their `demo` environment; a directory of your own, the one
    // `--env` (or `BOUNDFLOW_ENV`) names, else its base.
    let (loader, default_environment) = match &args.config_dir {
        Some(dir) => (Loader::from_dir(dir), None),
        None => (
            Loader::from_strs(presets::BASE, Some(presets::DEMO)),
            Some("demo"),
        ),
    };
    let loader = match args.environment.as_deref().or(default_environment) {
        Some(environment) => loader.environment(environment),
        None => loader,
    };
    let config = loader
        .backends(boundflow::compiled_backends())
        .load()
        .map_err(|errors| errors.to_string())?;
    let missing: Vec<&str> = STAGES
        .iter()
        .map(|(name, _, _)| *name)
        .filter(|name| config.channel(name).is_none())
        .collect();
    if !missing.is_empty() {
        return Err(format!(
            "the demo runs five channels ({}); this configuration lacks {}: start from a copy of \
             config/presets and change sizes, backends or policies",
            STAGES.map(|(name, _, _)| name).join(", "),
            missing.join(", ")
        ));
    }
    // Before the registry: its publisher talks to whatever recorder is installed.
    if let Some(addr) = args.metrics_addr {
        let bound = crate::serve_metrics::start(addr)?;
        println!("metrics: serving http://{bound}/metrics");
    }
    let live = !args.plain && std::io::stdout().is_terminal();
    let started = Instant::now();
    let warnings = Arc::new(Warnings::new(started, !live));
    let registry = Registry::builder(config)
        .observer(Arc::clone(&warnings) as Arc<dyn Observer>)
        .build()
        .map_err(|err| err.to_string())?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|err| err.to_string())?;
    let stop = Arc::new(AtomicBool::new(false));
    let mut stages = Vec::new();
    let mut consumers = Vec::new();
    let mut producers = Vec::new();
    for (name, work_micros, blocking) in STAGES {
        let (tx, rx) = registry
            .open::<u64>(name)
            .map_err(|err| format!("{name}: {err}"))?;
        let stage = Stage {
            name,
            work: Duration::from_micros(work_micros),
            blocking,
            produced: Arc::default(),
            consumed: Arc::default(),
            handle: tx.handle(),
        };
        consumers.push(runtime.spawn(consume(rx, stage.work, Arc::clone(&stage.consumed))));
        let counts = Arc::clone(&stage.produced);
        let stop = Arc::clone(&stop);
        if stage.blocking {
            producers.push(Producer::Thread(std::thread::spawn(move || {
                produce_blocking(&tx, &counts, &stop);
            })));
        } else {
            producers.push(Producer::Task(
                runtime.spawn(async move { produce(&tx, &counts, &stop).await }),
            ));
        }
        stages.push(stage);
    }
    let environment = registry.config().environment.as_deref().unwrap_or("base");
    let names: Vec<&str> = stages.iter().map(|stage| stage.name).collect();
    let interrupted = if live {
        let title = format!("boundflow demo: environment {environment}, {duration:?}");
        let view = crate::live_view::LiveView {
            registry: &registry,
            names: &names,
            warnings: &warnings,
            title: &title,
        };
        view.run(&runtime, started, duration)?
    } else {
        println!(
            "boundflow demo: {} channels for {duration:?} (environment {environment}); a line per channel every second\n",
            stages.len(),
        );
        runtime.block_on(watch(&registry, &names, started, duration))
    };
    stop.store(true, Relaxed);
    for producer in producers {
        match producer {
            Producer::Thread(thread) => thread.join().map_err(|_| "a producer panicked")?,
            Producer::Task(task) => runtime
                .block_on(task)
                .map_err(|err| format!("a producer failed: {err}"))?,
        }
    }
    // Every sender is gone now: the consumers drain and see Closed.
    for consumer in consumers {
        runtime
            .block_on(consumer)
            .map_err(|err| format!("a consumer failed: {err}"))?;
    }
    registry.tick_now();
    if interrupted {
        println!("\ninterrupted: stopped the producers and drained the channels");
    }
    Ok(summary(&stages))
}

enum Producer {
    Thread(std::thread::JoinHandle<()>),
    Task(tokio::task::JoinHandle<()>),
}

fn count<T>(counts: &ProducerCounts, result: Result<(), SendError<T>>) {
    counts.attempted.fetch_add(1, Relaxed);
    let bucket = match result {
        Ok(()) => &counts.accepted,
        Err(SendError::Full(_)) => &counts.full,
        Err(SendError::Timeout(_)) => &counts.timeout,
        Err(_) => &counts.closed,
    };
    bucket.fetch_add(1, Relaxed);
}

/// Messages a producer offers per millisecond: about five times what a consumer takes.
const BURST: u64 = 5;

/// Offers `BURST` messages a millisecond (or as many as the policy lets through), until told
/// to stop.
async fn produce(tx: &Sender<u64>, counts: &ProducerCounts, stop: &AtomicBool) {
    let mut n = 0;
    while !stop.load(Relaxed) {
        for _ in 0..BURST {
            count(counts, tx.send(n).await);
            n += 1;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// The same from a plain thread, with blocking sends (as a foreign worker would).
fn produce_blocking(tx: &Sender<u64>, counts: &ProducerCounts, stop: &AtomicBool) {
    let mut n = 0;
    while !stop.load(Relaxed) {
        for _ in 0..BURST {
            count(counts, tx.send_blocking(n));
            n += 1;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Takes messages, spending `work` on each, until the channel is drained and closed.
async fn consume(mut rx: Receiver<u64>, work: Duration, consumed: Arc<AtomicU64>) {
    while rx.recv().await.is_ok() {
        consumed.fetch_add(1, Relaxed);
        tokio::time::sleep(work).await;
    }
}

/// Prints a line per channel every second until `duration` has passed or Ctrl-C; whether it
/// was interrupted.
async fn watch(registry: &Registry, names: &[&str], started: Instant, duration: Duration) -> bool {
    let mut rates = Rates::new();
    let mut ticker = tokio::time::interval(Duration::from_secs(1));
    ticker.tick().await;
    let deadline = tokio::time::sleep(duration);
    tokio::pin!(deadline);
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    loop {
        tokio::select! {
            () = &mut deadline => return false,
            _ = &mut ctrl_c => return true,
            _ = ticker.tick() => {}
        }
        let at = started.elapsed().as_secs_f64();
        for row in rates.rows(&registry.snapshot(), names) {
            println!(
                "{at:6.1}s {:<42} {:<13} {} {:>4}/{:<4} sent {:>6.0}/s recv {:>5.0}/s dropped {:>7} timeouts {:>5} {:?}",
                row.name,
                row.backend,
                depth_bar(row.depth, row.capacity),
                row.depth,
                row.capacity,
                row.sent_per_sec,
                row.received_per_sec,
                row.dropped,
                row.timeouts,
                row.health,
            );
        }
        println!();
    }
}

fn depth_bar(depth: usize, capacity: usize) -> String {
    const WIDTH: usize = 10;
    let filled = (depth * WIDTH).div_ceil(capacity.max(1)).min(WIDTH);
    format!("[{}{}]", "#".repeat(filled), ".".repeat(WIDTH - filled))
}

/// The summary, checked against the producers' and consumers' own counts; whether they add up.
fn summary(stages: &[Stage]) -> bool {
    println!(
        "\n{:<42} {:>9} {:>9} {:>9} {:>8} {:>8} {:>8} {:>8} {:>8}  check",
        "channel",
        "attempted",
        "accepted",
        "sent",
        "received",
        "full",
        "timeout",
        "evicted",
        "closed"
    );
    let mut all_add_up = true;
    for stage in stages {
        let p = &stage.produced;
        let attempted = p.attempted.load(Relaxed);
        let accepted = p.accepted.load(Relaxed);
        let given_back = p.full.load(Relaxed) + p.timeout.load(Relaxed) + p.closed.load(Relaxed);
        let consumed = stage.consumed.load(Relaxed);
        let s = stage.handle.stats();
        let adds_up = s.sent == accepted
            && s.received == consumed
            && attempted == accepted + given_back
            && s.sent == s.received + s.evicted + s.discarded_at_close;
        all_add_up &= adds_up;
        println!(
            "{:<42} {:>9} {:>9} {:>9} {:>8} {:>8} {:>8} {:>8} {:>8}  {}",
            stage.name,
            attempted,
            accepted,
            s.sent,
            s.received,
            p.full.load(Relaxed),
            p.timeout.load(Relaxed),
            s.evicted,
            p.closed.load(Relaxed),
            if adds_up { "ok" } else { "MISMATCH" }
        );
    }
    println!(
        "\n{}: per channel, sent = the producers' accepted, received = the consumer's count, \
         attempted = accepted + given back (full, timeout, closed), sent = received + evicted + discarded",
        if all_add_up {
            "counts add up"
        } else {
            "COUNTS DO NOT ADD UP"
        }
    );
    all_add_up
}

/// `10s`, `500ms`, `2m` or a number of seconds.
pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit) = text
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .map_or((text, "s"), |at| text.split_at(at));
    let value: f64 = number
        .parse()
        .map_err(|_| format!("--duration {text}: use a number with s, ms or m, such as 10s"))?;
    let seconds = match unit {
        "s" | "" => value,
        "ms" => value / 1000.0,
        "m" => value * 60.0,
        _ => return Err(format!("--duration {text}: the unit is s, ms or m")),
    };
    Duration::try_from_secs_f64(seconds).map_err(|_| format!("--duration {text} is out of range"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("10s").unwrap(), Duration::from_secs(10));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("3").unwrap(), Duration::from_secs(3));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("5h").is_err());
    }

    #[test]
    fn bars_fill_with_depth() {
        assert_eq!(depth_bar(0, 16), "[..........]");
        assert_eq!(depth_bar(16, 16), "[##########]");
        assert_eq!(depth_bar(1, 16), "[#.........]");
    }
}
