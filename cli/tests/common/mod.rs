//! What the demo tests share: the demo preset's channels, the summary check, and starting the
//! demo with its stdout piped.
#![allow(clippy::unwrap_used, clippy::panic, dead_code)]

use std::io::{BufRead, BufReader};
use std::process::{Child, ChildStdout, Command, Stdio};

/// The channels of the built-in `demo` preset, as the summary names them.
pub const CHANNELS: [&str; 5] = [
    "orchestration.command",
    "worker.step_processor.execution_request",
    "worker.step_processor.result",
    "task_readiness.event_channel",
    "event_publisher.event_queue",
];

/// The summary says the counts add up, and every channel's row (its last line starting with
/// the name) is checked `ok`.
pub fn summary_adds_up(text: &str) {
    assert!(text.contains("counts add up"), "{text}");
    assert!(!text.contains("MISMATCH"), "{text}");
    for name in CHANNELS {
        let row = text
            .lines()
            .rfind(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("no summary row for {name}:\n{text}"));
        assert!(row.trim_end().ends_with("ok"), "{row}");
    }
}

/// `boundflow demo <args>` with stdout piped; its first line read.
pub fn start_demo(args: &[&str]) -> (Child, BufReader<ChildStdout>, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_boundflow"))
        .arg("demo")
        .args(args)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    (child, stdout, first)
}
