//! The ratio grid behind `benches/README.md`: every backend x blocking/async x SPSC/MPSC4 x
//! capacities 1/64/1024, raw backend and boundflow over it measured back to back in each round
//! (the order alternating between rounds), recording wall time *and* CPU time of the whole
//! process (`getrusage`, all threads) per message. Then the slow-consumer scenario: four
//! blocking producers on a channel of 64 whose consumer takes one message every 50 µs, and the
//! CPU the blocked producers burn meanwhile.
//!
//! ```sh
//! cargo bench --all-features --bench grid                      # 5 rounds, 100,000 messages a run
//! cargo bench --all-features --bench grid -- --rounds 7 --messages 200000 --only crossbeam
//! cargo bench --all-features --bench grid -- --only crossbeam/blocking --variant boundflow  # one side, to profile
//! cargo bench --all-features --bench grid -- --metrics         # with a recorder and the tick every second
//! cargo bench --all-features --bench grid -- --wait-strategy park  # boundflow's channels park at once
//! ```
//!
//! Prints markdown: one row per cell with the median ratio over the rounds and its range.
//! Nothing is read from earlier runs: every figure comes from this process.
#![allow(missing_docs, clippy::expect_used, clippy::print_stdout)]

use std::process::Command;
use std::time::Duration;

use boundflow::{AsyncChannel as AsyncChannelBackend, Crossbeam, Flume, Tokio};
use boundflow_workloads::{
    AsyncChannel, BlockingChannel, Boundflow, Cost, RawAsyncChannel, RawCrossbeam, RawFlume,
    RawTokio, SlowConsumer, Spread, Workload, async_runtime, expected_sum, measure, median,
    run_async, run_blocking, run_slow_consumer, use_wait_strategy,
};

const CAPACITIES: [usize; 3] = [1, 64, 1024];
const TOPOLOGIES: [(&str, usize); 2] = [("spsc", 1), ("mpsc4", 4)];

struct Options {
    rounds: usize,
    messages: u64,
    only: Option<String>,
    slow_consumer: bool,
    /// Run only one side (`raw` or `boundflow`), for profiling it alone; prints no ratios.
    variant: Option<String>,
    /// Install a metrics recorder (metrics-util's `DebuggingRecorder`) and watch every
    /// boundflow channel with a `MetricsPublisher` ticking every second.
    metrics: bool,
    /// The wait strategy of boundflow's channels, where not the default (`--wait-strategy`).
    wait_strategy: Option<boundflow::WaitStrategy>,
}

fn options() -> Options {
    let mut options = Options {
        rounds: 5,
        messages: 100_000,
        only: None,
        slow_consumer: true,
        variant: None,
        metrics: false,
        wait_strategy: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--rounds" => options.rounds = args.next().and_then(|v| v.parse().ok()).unwrap_or(5),
            "--messages" => {
                options.messages = args.next().and_then(|v| v.parse().ok()).unwrap_or(100_000);
            }
            "--only" => options.only = args.next(),
            "--no-slow-consumer" => options.slow_consumer = false,
            "--variant" => options.variant = args.next(),
            "--metrics" => options.metrics = true,
            "--wait-strategy" => {
                if let Some(strategy) = args.next().and_then(|v| v.parse().ok()) {
                    use_wait_strategy(strategy);
                    options.wait_strategy = Some(strategy);
                }
            }
            // `cargo bench` passes `--bench`; anything else unknown is ignored too.
            _ => {}
        }
    }
    options
}

type Run<'a> = Box<dyn Fn(&Workload) -> u64 + 'a>;

/// One cell of the grid: a name, what raw means there, and the two runs.
struct Cell<'a> {
    backend: &'static str,
    mode: &'static str,
    raw: &'static str,
    topology: &'static str,
    capacity: usize,
    producers: usize,
    run_raw: Run<'a>,
    run_boundflow: Run<'a>,
    /// Measured (raw, boundflow) per round.
    costs: Vec<(Cost, Cost)>,
}

fn blocking<'a, Raw: BlockingChannel + 'a, Bf: BlockingChannel + 'a>(
    cells: &mut Vec<Cell<'a>>,
    backend: &'static str,
) {
    for (topology, producers) in TOPOLOGIES {
        for capacity in CAPACITIES {
            cells.push(Cell {
                backend,
                mode: "blocking",
                raw: "raw",
                topology,
                capacity,
                producers,
                run_raw: Box::new(run_blocking::<Raw>),
                run_boundflow: Box::new(run_blocking::<Bf>),
                costs: Vec::new(),
            });
        }
    }
}

fn asynchronous<'a, Raw: AsyncChannel + 'a, Bf: AsyncChannel + 'a>(
    cells: &mut Vec<Cell<'a>>,
    runtime: &'a tokio::runtime::Runtime,
    backend: &'static str,
    raw: &'static str,
) {
    for (topology, producers) in TOPOLOGIES {
        for capacity in CAPACITIES {
            cells.push(Cell {
                backend,
                mode: "async",
                raw,
                topology,
                capacity,
                producers,
                run_raw: Box::new(move |w| run_async::<Raw>(runtime, w)),
                run_boundflow: Box::new(move |w| run_async::<Bf>(runtime, w)),
                costs: Vec::new(),
            });
        }
    }
}

/// A recorder installed, and every boundflow channel watched by a watcher that publishes to it
/// every second.
fn with_metrics() -> boundflow::TickThread {
    metrics_util::debugging::DebuggingRecorder::new()
        .install()
        .expect("no other recorder");
    let watcher = boundflow::Watcher::builder()
        .interval(Duration::from_secs(1))
        .publisher(std::sync::Arc::new(boundflow::MetricsPublisher::new()))
        .build()
        .expect("valid interval");
    let tick = watcher.spawn_thread().expect("the tick thread");
    boundflow_workloads::watch_every_channel(watcher);
    tick
}

/// `(median, "median [min–max]")` of `values`, to two decimals.
fn summary(values: Vec<f64>) -> (f64, String) {
    let spread = Spread::of(&values);
    (spread.median, spread.to_string())
}

fn per_message_ns(duration: Duration, messages: u64) -> f64 {
    duration.as_secs_f64() * 1e9 / messages as f64
}

fn git(args: &[&str]) -> String {
    Command::new("git")
        .args(args)
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|| "unknown".to_owned())
}

fn main() {
    let options = options();
    // Kept alive for the whole run: the tick stops when it is dropped.
    let _tick = options.metrics.then(with_metrics);
    let runtime = async_runtime().expect("tokio runtime");
    let mut cells = Vec::new();
    blocking::<RawTokio, Boundflow<Tokio>>(&mut cells, "tokio");
    blocking::<RawFlume, Boundflow<Flume>>(&mut cells, "flume");
    blocking::<RawCrossbeam, Boundflow<Crossbeam>>(&mut cells, "crossbeam");
    blocking::<RawAsyncChannel, Boundflow<AsyncChannelBackend>>(&mut cells, "async_channel");
    asynchronous::<RawTokio, Boundflow<Tokio>>(&mut cells, &runtime, "tokio", "raw");
    asynchronous::<RawFlume, Boundflow<Flume>>(&mut cells, &runtime, "flume", "raw");
    asynchronous::<RawAsyncChannel, Boundflow<AsyncChannelBackend>>(
        &mut cells,
        &runtime,
        "async_channel",
        "raw",
    );
    // crossbeam has no async API: its async path is compared with raw tokio, apart.
    asynchronous::<RawTokio, Boundflow<Crossbeam>>(&mut cells, &runtime, "crossbeam", "raw tokio");
    if let Some(only) = &options.only {
        cells.retain(|cell| {
            // A trailing `/` after the capacity lets `--only tokio/async/spsc/1/` name one cell.
            format!(
                "{}/{}/{}/{}/",
                cell.backend, cell.mode, cell.topology, cell.capacity
            )
            .contains(only.as_str())
        });
    }

    for round in 0..options.rounds {
        eprintln!("round {}/{}", round + 1, options.rounds);
        for cell in &mut cells {
            let workload = Workload {
                producers: cell.producers,
                capacity: cell.capacity,
                messages: options.messages,
            };
            let expected = expected_sum(&workload);
            let run =
                |f: &Run<'_>| measure(|| assert_eq!(f(&workload), expected, "a message was lost"));
            if let Some(variant) = &options.variant {
                let cost = match variant.as_str() {
                    "raw" => run(&cell.run_raw),
                    _ => run(&cell.run_boundflow),
                };
                eprintln!(
                    "{}/{}/{}/{} {variant}: {:.0} ns/msg wall, {:.0} ns/msg CPU",
                    cell.backend,
                    cell.mode,
                    cell.topology,
                    cell.capacity,
                    per_message_ns(cost.wall, options.messages),
                    per_message_ns(cost.cpu, options.messages)
                );
                continue;
            }
            // Alternate which goes first, so drift within a round favours neither.
            let (raw, bf) = if round % 2 == 0 {
                let raw = run(&cell.run_raw);
                (raw, run(&cell.run_boundflow))
            } else {
                let bf = run(&cell.run_boundflow);
                (run(&cell.run_raw), bf)
            };
            cell.costs.push((raw, bf));
        }
    }

    if options.variant.is_some() {
        return;
    }
    let date = Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M UTC"])
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .map(|s| s.trim().to_owned())
        .unwrap_or_default();
    let commit = git(&["rev-parse", "--short", "HEAD"]);
    let dirty = if git(&["status", "--porcelain", "--untracked-files=no"]).is_empty() {
        ""
    } else {
        " (with uncommitted changes)"
    };
    let machine = machine();
    let metrics = if options.metrics { " --metrics" } else { "" };
    let strategy = options
        .wait_strategy
        .map(|strategy| format!(" --wait-strategy {strategy}"))
        .unwrap_or_default();
    println!(
        "Measured {date} at commit {commit}{dirty} on {machine}: {} rounds, {} messages a run; \
         `cargo bench --all-features --bench grid -- --rounds {} --messages {}{metrics}{strategy}`.\n",
        options.rounds, options.messages, options.rounds, options.messages
    );

    // The run's noise: how much raw's own time per message moved between rounds.
    let mut spreads: Vec<f64> = cells
        .iter()
        .map(|cell| {
            let walls: Vec<f64> = cell.costs.iter().map(|c| c.0.wall.as_secs_f64()).collect();
            let max = walls.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let min = walls.iter().copied().fold(f64::INFINITY, f64::min);
            let mid = median(&mut walls.clone());
            (max - min) / mid
        })
        .collect();
    println!(
        "Noise: raw's own wall time per cell varied between rounds by a median of {:.0}% \
         (largest {:.0}%) of its median.\n",
        100.0 * median(&mut spreads),
        100.0 * spreads.iter().copied().fold(0.0, f64::max)
    );

    println!(
        "| backend | mode | vs | topology | capacity | throughput boundflow/raw | CPU per message boundflow/raw | raw ns/msg (wall, CPU) | boundflow ns/msg (wall, CPU) |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    let (mut slow, mut costly, mut total) = (0, 0, 0);
    for cell in &cells {
        let throughput: Vec<f64> = cell
            .costs
            .iter()
            .map(|(raw, bf)| raw.wall.as_secs_f64() / bf.wall.as_secs_f64())
            .collect();
        let cpu: Vec<f64> = cell
            .costs
            .iter()
            .map(|(raw, bf)| bf.cpu.as_secs_f64() / raw.cpu.as_secs_f64().max(1e-9))
            .collect();
        let ns = |pick: fn(&(Cost, Cost)) -> Duration| {
            let mut values: Vec<f64> = cell
                .costs
                .iter()
                .map(|c| per_message_ns(pick(c), options.messages))
                .collect();
            median(&mut values)
        };
        let (thr_mid, thr) = summary(throughput);
        let (cpu_mid, cpu) = summary(cpu);
        let in_bar = cell.raw == "raw";
        if in_bar {
            total += 1;
            slow += usize::from(thr_mid < 0.90);
            costly += usize::from(cpu_mid > 1.2);
        }
        let mark = |s: String, bad: bool| if bad && in_bar { format!("**{s}**") } else { s };
        println!(
            "| {} | {} | {} | {} | {} | {} | {} | {:.0}, {:.0} | {:.0}, {:.0} |",
            cell.backend,
            cell.mode,
            cell.raw,
            cell.topology,
            cell.capacity,
            mark(thr, thr_mid < 0.90),
            mark(cpu, cpu_mid > 1.2),
            ns(|c| c.0.wall),
            ns(|c| c.0.cpu),
            ns(|c| c.1.wall),
            ns(|c| c.1.cpu),
        );
    }
    println!(
        "\nAgainst the same backend raw ({total} cells): {slow} under 0.90x throughput, {costly} \
         over 1.2x CPU per message (bold). The crossbeam async rows compare with raw tokio and are \
         outside the bar."
    );

    if options.slow_consumer {
        slow_consumer(&options);
    }
}

/// Four blocking producers, capacity 64, a consumer taking one message every 50 µs.
fn slow_consumer(options: &Options) {
    const PACE: Duration = Duration::from_micros(50);
    const MESSAGES: u64 = 10_000;
    type Scenario = (&'static str, fn() -> SlowConsumer, fn() -> SlowConsumer);
    fn run<C: BlockingChannel>() -> SlowConsumer {
        run_slow_consumer::<C>(4, 64, MESSAGES, PACE)
    }
    let scenarios: [Scenario; 4] = [
        ("tokio", run::<RawTokio>, run::<Boundflow<Tokio>>),
        ("flume", run::<RawFlume>, run::<Boundflow<Flume>>),
        (
            "crossbeam",
            run::<RawCrossbeam>,
            run::<Boundflow<Crossbeam>>,
        ),
        (
            "async_channel",
            run::<RawAsyncChannel>,
            run::<Boundflow<AsyncChannelBackend>>,
        ),
    ];
    let rounds = options.rounds.max(1);
    println!(
        "\nSlow consumer: 4 blocking producers, capacity 64, one message taken every 50 µs \
         ({MESSAGES} messages, {rounds} rounds); the producers' CPU (the process's less the \
         consumer thread's) as cores busy, median [range].\n"
    );
    println!(
        "| backend | consumer msg/s | raw producers (cores) | boundflow producers (cores) | boundflow − raw (cores) |"
    );
    println!("|---|---|---|---|---|");
    for (backend, raw, bf) in scenarios {
        // `--only` keeps the backends it names (`--only flume/blocking` keeps flume's).
        if options
            .only
            .as_ref()
            .is_some_and(|only| !only.split('/').any(|part| part == backend))
        {
            continue;
        }
        let mut runs = Vec::new();
        for round in 0..rounds {
            let pair = if round % 2 == 0 {
                let r = raw();
                (r, bf())
            } else {
                let b = bf();
                (raw(), b)
            };
            runs.push(pair);
        }
        let rate: Vec<f64> = runs
            .iter()
            .map(|(r, _)| r.received as f64 / r.wall.as_secs_f64())
            .collect();
        let raw_cores: Vec<f64> = runs.iter().map(|(r, _)| r.producer_cores()).collect();
        let bf_cores: Vec<f64> = runs.iter().map(|(_, b)| b.producer_cores()).collect();
        let extra: Vec<f64> = runs
            .iter()
            .map(|(r, b)| b.producer_cores() - r.producer_cores())
            .collect();
        println!(
            "| {backend} | {:.0} | {} | {} | {} |",
            summary(rate).0,
            summary(raw_cores).1,
            summary(bf_cores).1,
            summary(extra).1
        );
    }
}

/// The CPU and how many cores the run had, for the table's header: the ratios move with the
/// hardware (with the library code unchanged, tokio blocking SPSC 64 measured 1.05x raw on one
/// machine of this kind and 3.46x on another: `benches/HISTORY.md`), so a rerun is comparable
/// only on the same CPU.
fn machine() -> String {
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find_map(|line| line.strip_prefix("model name"))
                .and_then(|rest| rest.split_once(':'))
                .map(|(_, name)| name.trim().to_owned())
        })
        .unwrap_or_else(|| "an unknown CPU".to_owned());
    let cores = std::thread::available_parallelism().map_or(0, std::num::NonZero::get);
    format!("{model}, {cores} cores")
}
