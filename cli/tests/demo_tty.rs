//! `boundflow demo` on a pseudo-terminal, as a user at a terminal sees it: the live view shows
//! every channel within 10 s, the process exits 0 with the checked summary, and `q` stops it
//! early just as cleanly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::fs::File;
use std::io::{Read, Write};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::pty::{Winsize, openpty};

mod common;

use common::{CHANNELS, summary_adds_up};

/// The demo on a pseudo-terminal; everything it writes collects in `output`.
struct OnTerminal {
    child: Child,
    master: File,
    output: Arc<Mutex<Vec<u8>>>,
}

impl OnTerminal {
    fn start(duration: &str) -> Self {
        let size = Winsize {
            ws_row: 30,
            ws_col: 150,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        let pty = openpty(Some(&size), None).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_boundflow"))
            .args(["demo", "--duration", duration])
            .stdin(Stdio::from(pty.slave.try_clone().unwrap()))
            .stdout(Stdio::from(pty.slave.try_clone().unwrap()))
            .stderr(Stdio::from(pty.slave))
            .spawn()
            .unwrap();
        // The Command (and with it our copies of the slave) is gone: the read ends with EIO
        // once the child has exited.
        let master = File::from(pty.master);
        let output = Arc::new(Mutex::new(Vec::new()));
        let mut reader = master.try_clone().unwrap();
        let sink = Arc::clone(&output);
        std::thread::spawn(move || {
            let mut chunk = [0u8; 4096];
            while let Ok(n) = reader.read(&mut chunk) {
                if n == 0 {
                    break;
                }
                sink.lock().unwrap().extend_from_slice(&chunk[..n]);
            }
        });
        Self {
            child,
            master,
            output,
        }
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.output.lock().unwrap()).into_owned()
    }

    /// Waits until every channel name has been drawn; how long that took.
    fn wait_for_every_channel(&self, within: Duration) -> Duration {
        let start = Instant::now();
        loop {
            let text = self.text();
            if CHANNELS.iter().all(|name| text.contains(name)) {
                return start.elapsed();
            }
            assert!(
                start.elapsed() < within,
                "not every channel showed within {within:?}:\n{text}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The exit code, waiting at most `within`.
    fn exit_code(&mut self, within: Duration) -> Option<i32> {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            if start.elapsed() > within {
                let _ = self.child.kill();
                panic!("still running after {within:?}:\n{}", self.text());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The output once the reader has seen the end.
    fn final_text(&self) -> String {
        std::thread::sleep(Duration::from_millis(300));
        self.text()
    }
}

impl Drop for OnTerminal {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn the_live_view_shows_every_channel_and_exits_0() {
    let mut demo = OnTerminal::start("4s");
    demo.wait_for_every_channel(Duration::from_secs(10));
    let text = demo.text();
    assert!(
        text.contains("\u{1b}[?1049h"),
        "the alternate screen is used"
    );
    // ratatui moves the cursor over unchanged cells, so words arrive apart.
    assert!(
        text.contains("saturation") && text.contains("warnings"),
        "{text}"
    );
    assert_eq!(demo.exit_code(Duration::from_secs(30)), Some(0));
    let text = demo.final_text();
    assert!(text.contains("\u{1b}[?1049l"), "the screen is restored");
    summary_adds_up(&text);
}

#[test]
fn q_stops_the_live_view_with_the_same_summary() {
    let mut demo = OnTerminal::start("60s");
    demo.wait_for_every_channel(Duration::from_secs(10));
    demo.master.write_all(b"q").unwrap();
    assert_eq!(demo.exit_code(Duration::from_secs(30)), Some(0));
    let text = demo.final_text();
    assert!(text.contains("interrupted"), "{text}");
    summary_adds_up(&text);
}
