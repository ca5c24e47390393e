//! `boundflow bench`: a quick grid, raw backend against boundflow over it, for one workload the
//! user names (capacity, producers, blocking or async, message size). Each round runs both
//! sides back to back, alternating which goes first, and records wall time and the process's
//! CPU time (`getrusage`, all threads); the table gives medians with their range. The workloads
//! are the ones `benches/grid.rs` runs (`boundflow-workloads`).

use std::time::Duration;

use boundflow::{AsyncChannel as AsyncChannelBackend, Crossbeam, Flume, Tokio};
use boundflow_workloads::{
    AsyncChannel, BlockingChannel, Boundflow, Cost, Message, RawAsyncChannel, RawCrossbeam,
    RawFlume, RawTokio, Spread, WithMessage, Workload, async_runtime, expected_sum,
    for_message_size, measure, run_async_of, run_blocking_of,
};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;

use crate::{BenchArgs, Format, Mode};

/// The backends `--backends` may name, in table order.
pub(crate) const BACKENDS: [&str; 4] = ["tokio", "flume", "crossbeam", "async_channel"];

type Run<'a> = Box<dyn Fn(&Workload) -> u64 + 'a>;

/// One backend's two sides.
struct Pair<'a> {
    backend: &'static str,
    /// What "raw" is for this row: the backend itself, or raw tokio for crossbeam's async path
    /// (crossbeam has no async API).
    raw: &'static str,
    run_raw: Run<'a>,
    run_boundflow: Run<'a>,
}

/// One round of one backend, per message.
#[derive(Debug, Clone, Copy, Serialize)]
pub(crate) struct Round {
    raw: Side,
    boundflow: Side,
}

/// One side of a round.
#[derive(Debug, Clone, Copy, Serialize)]
pub(crate) struct Side {
    wall_ns_per_msg: f64,
    cpu_ns_per_msg: f64,
}

impl Side {
    fn of(cost: Cost, messages: u64) -> Self {
        let per = |d: Duration| d.as_secs_f64() * 1e9 / messages as f64;
        Self {
            wall_ns_per_msg: per(cost.wall),
            cpu_ns_per_msg: per(cost.cpu),
        }
    }

    fn msgs_per_sec(&self) -> f64 {
        1e9 / self.wall_ns_per_msg.max(f64::MIN_POSITIVE)
    }
}

/// Median and range, as JSON.
#[derive(Debug, Clone, Copy, Serialize)]
struct Figure {
    median: f64,
    min: f64,
    max: f64,
}

impl From<Spread> for Figure {
    fn from(s: Spread) -> Self {
        Self {
            median: s.median,
            min: s.min,
            max: s.max,
        }
    }
}

/// One row of the grid.
#[derive(Debug, Serialize)]
struct Row {
    backend: &'static str,
    raw: &'static str,
    raw_msgs_per_sec: Figure,
    boundflow_msgs_per_sec: Figure,
    /// boundflow's throughput / raw's, per round.
    throughput_ratio: Figure,
    raw_cpu_ns_per_msg: Figure,
    boundflow_cpu_ns_per_msg: Figure,
    /// boundflow's CPU per message / raw's, per round.
    cpu_ratio: Figure,
    rounds: Vec<Round>,
}

impl Row {
    fn new(backend: &'static str, raw: &'static str, rounds: Vec<Round>) -> Self {
        let figure = |f: &dyn Fn(&Round) -> f64| -> Figure {
            Spread::of(&rounds.iter().map(f).collect::<Vec<_>>()).into()
        };
        Self {
            backend,
            raw,
            raw_msgs_per_sec: figure(&|r| r.raw.msgs_per_sec()),
            boundflow_msgs_per_sec: figure(&|r| r.boundflow.msgs_per_sec()),
            throughput_ratio: figure(&|r| r.raw.wall_ns_per_msg / r.boundflow.wall_ns_per_msg),
            raw_cpu_ns_per_msg: figure(&|r| r.raw.cpu_ns_per_msg),
            boundflow_cpu_ns_per_msg: figure(&|r| r.boundflow.cpu_ns_per_msg),
            cpu_ratio: figure(&|r| {
                r.boundflow.cpu_ns_per_msg / r.raw.cpu_ns_per_msg.max(f64::MIN_POSITIVE)
            }),
            rounds,
        }
    }
}

/// The workload, as JSON.
#[derive(Debug, Serialize)]
struct WorkloadJson {
    mode: &'static str,
    producers: usize,
    capacity: usize,
    message_size: usize,
    messages: u64,
    rounds: usize,
}

/// Which backend to use for this workload, if the rounds say so clearly.
#[derive(Debug, Serialize, PartialEq)]
pub(crate) struct Recommendation {
    /// `None`: no clear winner.
    backend: Option<&'static str>,
    reason: String,
}

#[derive(Debug, Serialize)]
struct Report {
    workload: WorkloadJson,
    backends: Vec<Row>,
    recommendation: Recommendation,
}

/// Recommends the backend whose boundflow throughput median beats the runner-up's by more than
/// the wider of their two ranges; otherwise says there is no clear winner.
pub(crate) fn recommend(candidates: &[(&'static str, Spread)]) -> Recommendation {
    let mut sorted: Vec<&(&'static str, Spread)> = candidates.iter().collect();
    sorted.sort_by(|a, b| b.1.median.total_cmp(&a.1.median));
    let rate = |v: f64| format!("{:.2} M msg/s", v / 1e6);
    match sorted.as_slice() {
        [] => Recommendation {
            backend: None,
            reason: "no backend was measured".to_owned(),
        },
        [(only, s)] => Recommendation {
            backend: None,
            reason: format!(
                "only {only} was measured ({}): nothing to compare it with",
                rate(s.median)
            ),
        },
        [(winner, w), (runner_up, r), ..] => {
            let margin = w.median - r.median;
            let spread = w.width().max(r.width());
            if margin > spread {
                Recommendation {
                    backend: Some(winner),
                    reason: format!(
                        "{winner} ({}) beats {runner_up} ({}) by {}, more than the rounds' spread of {}",
                        rate(w.median),
                        rate(r.median),
                        rate(margin),
                        rate(spread)
                    ),
                }
            } else {
                Recommendation {
                    backend: None,
                    reason: format!(
                        "no clear winner: {winner} ({}) leads {runner_up} ({}) by {}, within the rounds' spread of {}",
                        rate(w.median),
                        rate(r.median),
                        rate(margin),
                        rate(spread)
                    ),
                }
            }
        }
    }
}

/// The backends' runs for messages of type `M`.
struct Grid<'a> {
    args: &'a BenchArgs,
    runtime: &'a tokio::runtime::Runtime,
}

fn blocking<'a, M: Message, Raw: BlockingChannel<M> + 'a, Bf: BlockingChannel<M> + 'a>(
    backend: &'static str,
) -> Pair<'a> {
    Pair {
        backend,
        raw: backend,
        run_raw: Box::new(run_blocking_of::<M, Raw>),
        run_boundflow: Box::new(run_blocking_of::<M, Bf>),
    }
}

fn asynchronous<'a, M: Message, Raw: AsyncChannel<M> + 'a, Bf: AsyncChannel<M> + 'a>(
    runtime: &'a tokio::runtime::Runtime,
    backend: &'static str,
    raw: &'static str,
) -> Pair<'a> {
    Pair {
        backend,
        raw,
        run_raw: Box::new(move |w| run_async_of::<M, Raw>(runtime, w)),
        run_boundflow: Box::new(move |w| run_async_of::<M, Bf>(runtime, w)),
    }
}

impl<'a> WithMessage for Grid<'a> {
    type Output = Vec<Pair<'a>>;

    fn run<M: Message>(self) -> Vec<Pair<'a>> {
        let runtime = self.runtime;
        let pairs = match self.args.mode {
            Mode::Blocking => vec![
                blocking::<M, RawTokio, Boundflow<Tokio>>("tokio"),
                blocking::<M, RawFlume, Boundflow<Flume>>("flume"),
                blocking::<M, RawCrossbeam, Boundflow<Crossbeam>>("crossbeam"),
                blocking::<M, RawAsyncChannel, Boundflow<AsyncChannelBackend>>("async_channel"),
            ],
            Mode::Async => vec![
                asynchronous::<M, RawTokio, Boundflow<Tokio>>(runtime, "tokio", "tokio"),
                asynchronous::<M, RawFlume, Boundflow<Flume>>(runtime, "flume", "flume"),
                asynchronous::<M, RawTokio, Boundflow<Crossbeam>>(runtime, "crossbeam", "tokio"),
                asynchronous::<M, RawAsyncChannel, Boundflow<AsyncChannelBackend>>(
                    runtime,
                    "async_channel",
                    "async_channel",
                ),
            ],
        };
        pairs
            .into_iter()
            .filter(|pair| self.args.backends.iter().any(|b| b == pair.backend))
            .collect()
    }
}

/// Runs the grid and prints it; an error for a lost message.
pub(crate) fn run(args: &BenchArgs) -> Result<(), String> {
    let workload = Workload {
        producers: args.producers,
        capacity: args.capacity,
        messages: args.messages,
    };
    let messages = workload.total();
    if messages == 0 {
        return Err("--messages must be at least --producers".to_owned());
    }
    let runtime = async_runtime().map_err(|err| format!("the tokio runtime: {err}"))?;
    let pairs = for_message_size(
        args.message_size,
        Grid {
            args,
            runtime: &runtime,
        },
    )
    .ok_or_else(|| {
        format!(
            "--message-size {}: the sizes are {:?} bytes",
            args.message_size,
            boundflow_workloads::MESSAGE_SIZES
        )
    })?;
    let progress = ProgressBar::new((pairs.len() * args.rounds * 2) as u64);
    progress.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} runs {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let expected = expected_sum(&workload);
    let mut rounds: Vec<Vec<Round>> = vec![Vec::new(); pairs.len()];
    for round in 0..args.rounds {
        for (pair, results) in pairs.iter().zip(rounds.iter_mut()) {
            progress.set_message(format!(
                "round {}/{}: {}",
                round + 1,
                args.rounds,
                pair.backend
            ));
            let once = |f: &Run<'_>| -> Result<Side, String> {
                let mut sum = 0;
                let cost = measure(|| sum = f(&workload));
                progress.inc(1);
                if sum == expected {
                    Ok(Side::of(cost, messages))
                } else {
                    Err(format!("{}: a message was lost", pair.backend))
                }
            };
            // Alternate which side goes first, so drift within a round favours neither.
            let (raw, boundflow) = if round % 2 == 0 {
                let raw = once(&pair.run_raw)?;
                (raw, once(&pair.run_boundflow)?)
            } else {
                let boundflow = once(&pair.run_boundflow)?;
                (once(&pair.run_raw)?, boundflow)
            };
            results.push(Round { raw, boundflow });
        }
    }
    progress.finish_and_clear();
    let rows: Vec<Row> = pairs
        .iter()
        .zip(rounds)
        .map(|(pair, rounds)| Row::new(pair.backend, pair.raw, rounds))
        .collect();
    let candidates: Vec<(&'static str, Spread)> = rows
        .iter()
        .map(|row| {
            let rates: Vec<f64> = row
                .rounds
                .iter()
                .map(|r| r.boundflow.msgs_per_sec())
                .collect();
            (row.backend, Spread::of(&rates))
        })
        .collect();
    let report = Report {
        workload: WorkloadJson {
            mode: args.mode.name(),
            producers: args.producers,
            capacity: args.capacity,
            message_size: args.message_size,
            messages,
            rounds: args.rounds,
        },
        backends: rows,
        recommendation: recommend(&candidates),
    };
    match args.format {
        Format::Json => {
            let json = serde_json::to_string_pretty(&report).map_err(|err| err.to_string())?;
            println!("{json}");
        }
        Format::Text => print_text(&report),
    }
    Ok(())
}

fn print_text(report: &Report) {
    let w = &report.workload;
    println!(
        "boundflow bench: {}, {} producer(s), capacity {}, {}-byte messages, {} messages a run, \
         {} rounds (raw and boundflow back to back, alternating); medians [range]\n",
        w.mode, w.producers, w.capacity, w.message_size, w.messages, w.rounds
    );
    let mega = |f: Figure| {
        format!(
            "{:.2} [{:.2}–{:.2}]",
            f.median / 1e6,
            f.min / 1e6,
            f.max / 1e6
        )
    };
    let plain = |f: Figure| format!("{:.2} [{:.2}–{:.2}]", f.median, f.min, f.max);
    let ns = |f: Figure| format!("{:.0} [{:.0}–{:.0}]", f.median, f.min, f.max);
    println!(
        "{:<14} {:<14} {:>20} {:>20} {:>18} {:>16} {:>16} {:>18}",
        "backend",
        "vs raw",
        "raw M msg/s",
        "boundflow M msg/s",
        "throughput bf/raw",
        "raw CPU ns/msg",
        "bf CPU ns/msg",
        "CPU/msg bf/raw"
    );
    for row in &report.backends {
        println!(
            "{:<14} {:<14} {:>20} {:>20} {:>18} {:>16} {:>16} {:>18}",
            row.backend,
            row.raw,
            mega(row.raw_msgs_per_sec),
            mega(row.boundflow_msgs_per_sec),
            plain(row.throughput_ratio),
            ns(row.raw_cpu_ns_per_msg),
            ns(row.boundflow_cpu_ns_per_msg),
            plain(row.cpu_ratio),
        );
    }
    if report.backends.iter().any(|row| row.raw != row.backend) {
        println!(
            "\ncrossbeam has no async API: its async row compares boundflow over crossbeam with raw tokio."
        );
    }
    match report.recommendation.backend {
        Some(backend) => println!(
            "\nrecommended for this workload: {backend}: {}",
            report.recommendation.reason
        ),
        None => println!("\n{}", report.recommendation.reason),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spread(values: &[f64]) -> Spread {
        Spread::of(values)
    }

    #[test]
    fn a_winner_must_beat_the_runner_up_by_more_than_the_spread() {
        let clear = recommend(&[
            ("tokio", spread(&[10e6, 11e6, 10.5e6])),
            ("flume", spread(&[20e6, 21e6, 20.5e6])),
            ("crossbeam", spread(&[15e6, 15.5e6, 16e6])),
        ]);
        assert_eq!(clear.backend, Some("flume"));
        assert!(clear.reason.contains("beats crossbeam"), "{}", clear.reason);

        // flume leads by 1 M msg/s, but crossbeam's rounds range over 3 M msg/s.
        let close = recommend(&[
            ("flume", spread(&[20e6, 20.5e6, 21e6])),
            ("crossbeam", spread(&[17e6, 19.5e6, 20e6])),
        ]);
        assert_eq!(close.backend, None);
        assert!(
            close.reason.starts_with("no clear winner"),
            "{}",
            close.reason
        );

        assert_eq!(recommend(&[("tokio", spread(&[1e6]))]).backend, None);
        assert_eq!(recommend(&[]).backend, None);
    }
}
