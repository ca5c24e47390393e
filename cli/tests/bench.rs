//! `boundflow bench` run as a user runs it: the grid in text and JSON, figures that follow from
//! the rounds it reports, and usage errors with exit 2.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::process::{Command, Output};

fn bench(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_boundflow"))
        .arg("bench")
        .args(args)
        .output()
        .unwrap()
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

#[test]
fn text_grid_has_a_row_per_backend_and_a_verdict() {
    let out = bench(&["--messages", "20000", "--rounds", "3"]);
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("throughput bf/raw"), "{stdout}");
    assert!(stdout.contains("CPU/msg bf/raw"), "{stdout}");
    for backend in ["tokio", "flume", "crossbeam", "async_channel"] {
        assert!(
            stdout
                .lines()
                .any(|l| l.starts_with(&format!("{backend} "))),
            "no row for {backend}:\n{stdout}"
        );
    }
    assert!(
        stdout.contains("recommended for this workload") || stdout.contains("no clear winner"),
        "{stdout}"
    );
}

#[test]
fn json_figures_follow_from_the_rounds() {
    let out = bench(&[
        "--messages",
        "20000",
        "--rounds",
        "3",
        "--producers",
        "2",
        "--capacity",
        "16",
        "--mode",
        "async",
        "--message-size",
        "64",
        "--backends",
        "flume,crossbeam",
        "--format",
        "json",
    ]);
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let workload = &report["workload"];
    assert_eq!(workload["mode"], "async");
    assert_eq!(workload["producers"], 2);
    assert_eq!(workload["capacity"], 16);
    assert_eq!(workload["message_size"], 64);
    assert_eq!(workload["messages"], 20000);
    let rows = report["backends"].as_array().unwrap();
    let names: Vec<&str> = rows
        .iter()
        .map(|r| r["backend"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["flume", "crossbeam"]);
    // crossbeam has no async API: its raw side is tokio.
    assert_eq!(rows[1]["raw"], "tokio");
    for row in rows {
        let rounds = row["rounds"].as_array().unwrap();
        assert_eq!(rounds.len(), 3);
        let side = |r: &serde_json::Value, side: &str, key: &str| r[side][key].as_f64().unwrap();
        let throughput: Vec<f64> = rounds
            .iter()
            .map(|r| side(r, "raw", "wall_ns_per_msg") / side(r, "boundflow", "wall_ns_per_msg"))
            .collect();
        let cpu: Vec<f64> = rounds
            .iter()
            .map(|r| side(r, "boundflow", "cpu_ns_per_msg") / side(r, "raw", "cpu_ns_per_msg"))
            .collect();
        let close = |a: f64, b: f64| (a - b).abs() <= 1e-9 * a.abs().max(1.0);
        let reported = row["throughput_ratio"]["median"].as_f64().unwrap();
        assert!(close(reported, median(throughput.clone())), "{row}");
        assert!(row["throughput_ratio"]["min"].as_f64().unwrap() <= reported);
        let reported = row["cpu_ratio"]["median"].as_f64().unwrap();
        assert!(close(reported, median(cpu)), "{row}");
        for r in rounds {
            for s in ["raw", "boundflow"] {
                assert!(side(r, s, "wall_ns_per_msg") > 0.0, "{row}");
            }
        }
    }
    let recommendation = &report["recommendation"];
    let backend = &recommendation["backend"];
    assert!(
        backend.is_null() || names.contains(&backend.as_str().unwrap()),
        "{recommendation}"
    );
    assert!(recommendation["reason"].as_str().unwrap().len() > 10);
}

#[test]
fn bad_bench_flags_exit_2_naming_the_flag() {
    for args in [
        &["--message-size", "100"][..],
        &["--mode", "sideways"],
        &["--producers", "0"],
        &["--capacity", "0"],
        &["--backends", "tokio,kafka"],
        &["--rounds", "many"],
    ] {
        let out = bench(args);
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.contains(args[0]),
            "{args:?}: names the flag: {stderr}"
        );
    }
}
