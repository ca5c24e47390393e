//! A producer faster than its consumer, on a small channel, under each overflow policy: the
//! stats side by side, and the saturation warnings the tracing observer logs while it runs.
//!
//! ```text
//! cargo run --example overflow_policies --features flume,tracing
//! ```
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use boundflow::{
    ChannelBuilder, ChannelStats, Flume, OverflowPolicy, RetryPolicy, SaturationThresholds,
    TracingObserver, Watcher,
};

const MESSAGES: u64 = 2_000;
const CAPACITY: usize = 16;
/// The consumer's work per message: the producer has none, so the channel fills.
const CONSUMER_WORK: Duration = Duration::from_micros(200);

fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_target(false)
        .with_max_level(tracing::Level::INFO)
        .init();
    // A short interval and reminder period, so a two-second demo shows reminders.
    let watcher = Watcher::builder()
        .interval(Duration::from_millis(100))
        .thresholds(SaturationThresholds {
            reminder_interval: Duration::from_millis(200),
            ..SaturationThresholds::default()
        })
        .build()?;
    let _ticking = watcher.spawn_thread()?;

    let policies = [
        OverflowPolicy::Block,
        OverflowPolicy::Timeout(Duration::from_micros(100)),
        OverflowPolicy::DropNewest,
        OverflowPolicy::DropOldest,
        OverflowPolicy::Retry(RetryPolicy {
            max_attempts: 3,
            initial_backoff: Duration::from_micros(50),
            max_backoff: Duration::from_micros(200),
            ..RetryPolicy::default()
        }),
    ];
    let mut rows = Vec::new();
    for policy in policies {
        let (stats, elapsed) = run(&watcher, policy)?;
        rows.push((policy.name(), stats, elapsed));
    }
    watcher.tick_now();

    println!(
        "\n{MESSAGES} messages into a {CAPACITY}-slot channel, consumer {CONSUMER_WORK:?}/message\n"
    );
    println!(
        "{:<12} {:>6} {:>8} {:>6} {:>8} {:>7} {:>8} {:>7} {:>9} {:>6} {:>10} {:>8}",
        "policy",
        "sent",
        "received",
        "full",
        "dropped",
        "evicted",
        "timeouts",
        "retries",
        "exhausted",
        "waits",
        "mean wait",
        "elapsed"
    );
    for (name, s, elapsed) in rows {
        let mean_wait = s
            .send_wait
            .sum
            .checked_div(u32::try_from(s.send_wait.count).unwrap_or(u32::MAX))
            .unwrap_or_default();
        println!(
            "{:<12} {:>6} {:>8} {:>6} {:>8} {:>7} {:>8} {:>7} {:>9} {:>6} {:>10.1?} {:>8.0?}",
            name,
            s.sent,
            s.received,
            s.full_events,
            s.dropped_newest,
            s.evicted,
            s.timeouts,
            s.retries,
            s.retries_exhausted,
            s.send_wait.count,
            mean_wait,
            elapsed
        );
    }
    println!(
        "\nChecked for every policy against the producer's own count of refusals: \
         sent = {MESSAGES} - refused, refused = dropped + timeouts + exhausted, \
         sent = received + evicted."
    );
    Ok(())
}

/// One producer offering `MESSAGES` as fast as it can; one slow consumer; the final stats.
fn run(
    watcher: &Watcher,
    policy: OverflowPolicy,
) -> Result<(ChannelStats, Duration), Box<dyn std::error::Error>> {
    let name = format!("demo.{}", policy.name());
    let (tx, mut rx) = ChannelBuilder::new(Flume, name, CAPACITY)
        .policy(policy)
        .observer(Arc::new(TracingObserver))
        .build::<u64>()?;
    watcher.watch(&tx.handle())?;
    let started = Instant::now();
    let producer = thread::spawn(move || {
        let mut refused = 0;
        for msg in 0..MESSAGES {
            // A refused message comes back in the error; this demo counts it and lets it go.
            if tx.send_blocking(msg).is_err() {
                refused += 1;
            }
        }
        refused
    });
    while rx.recv_blocking().is_ok() {
        let busy = Instant::now();
        while busy.elapsed() < CONSUMER_WORK {
            std::hint::spin_loop();
        }
    }
    let refused = producer.join().map_err(|_| "the producer panicked")?;
    let stats = rx.stats();
    // The producer's own count against the channel's.
    let accounted = stats.sent == MESSAGES - refused
        && refused == stats.dropped_newest + stats.timeouts + stats.retries_exhausted
        && stats.sent == stats.received + stats.evicted;
    if !accounted {
        return Err(format!("{}: refused {refused}, stats {stats:?}", policy.name()).into());
    }
    Ok((stats, started.elapsed()))
}
