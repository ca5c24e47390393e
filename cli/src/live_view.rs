//! `boundflow demo` on a terminal: a live table of every channel (depth bar, send and receive
//! rates, drops, timeouts, health) and the latest saturation warnings, redrawn by ratatui until
//! the duration is up, `q`/Esc/Ctrl-C is pressed, or SIGINT arrives from outside.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::{Duration, Instant};

use boundflow::{HealthState, Registry};
use ratatui::crossterm::event::{self, Event, KeyCode, KeyEventKind, KeyModifiers};
use ratatui::layout::{Constraint, Layout};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::Line;
use ratatui::widgets::{Block, Cell, List, Paragraph, Row, Table};
use ratatui::{DefaultTerminal, Frame};

use crate::demo::{ChannelRow, Rates, Warnings};

/// How often the rates are recomputed; the screen redraws at least every [`POLL`].
const REFRESH: Duration = Duration::from_millis(500);
/// How long to wait for a key before redrawing.
const POLL: Duration = Duration::from_millis(100);

/// What the live view watches.
pub(crate) struct LiveView<'a> {
    pub(crate) registry: &'a Registry,
    pub(crate) names: &'a [&'a str],
    pub(crate) warnings: &'a Warnings,
    pub(crate) title: &'a str,
}

/// One frame's content.
pub(crate) struct ViewState<'a> {
    pub(crate) title: &'a str,
    pub(crate) elapsed: Duration,
    pub(crate) duration: Duration,
    pub(crate) rows: &'a [ChannelRow],
    pub(crate) warnings: &'a [String],
}

/// The alternate screen in raw mode, restored however the view ends.
struct Screen(DefaultTerminal);

impl Screen {
    fn enter() -> Result<Self, String> {
        ratatui::try_init()
            .map(Self)
            .map_err(|err| format!("the terminal: {err}"))
    }
}

impl Drop for Screen {
    fn drop(&mut self) {
        // Nothing better to do if the terminal cannot be restored: the process is ending.
        let _ = ratatui::try_restore();
    }
}

impl LiveView<'_> {
    /// Shows the view until `duration` has passed since `started`, or the user stops it;
    /// whether the user stopped it.
    pub(crate) fn run(
        &self,
        runtime: &tokio::runtime::Runtime,
        started: Instant,
        duration: Duration,
    ) -> Result<bool, String> {
        // Raw mode turns the Ctrl-C key into a key event, but a SIGINT sent from outside must
        // stop the view cleanly too.
        let signalled = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&signalled);
        let listener = runtime.spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                flag.store(true, Relaxed);
            }
        });
        let mut screen = Screen::enter()?;
        let mut rates = Rates::new();
        let mut rows = rates.rows(&self.registry.snapshot(), self.names);
        let mut next_refresh = Instant::now() + REFRESH;
        let interrupted = loop {
            let elapsed = started.elapsed();
            if elapsed >= duration {
                break false;
            }
            if signalled.load(Relaxed) {
                break true;
            }
            let warnings = self.warnings.recent();
            let state = ViewState {
                title: self.title,
                elapsed,
                duration,
                rows: &rows,
                warnings: &warnings,
            };
            screen
                .0
                .draw(|frame| draw(frame, &state))
                .map_err(|err| format!("drawing: {err}"))?;
            if event::poll(POLL).map_err(|err| format!("the terminal: {err}"))?
                && let Event::Key(key) =
                    event::read().map_err(|err| format!("the terminal: {err}"))?
                && key.kind == KeyEventKind::Press
                && (matches!(key.code, KeyCode::Char('q') | KeyCode::Esc)
                    || (key.code == KeyCode::Char('c')
                        && key.modifiers.contains(KeyModifiers::CONTROL)))
            {
                break true;
            }
            if Instant::now() >= next_refresh {
                rows = rates.rows(&self.registry.snapshot(), self.names);
                next_refresh += REFRESH;
            }
        };
        listener.abort();
        drop(screen);
        Ok(interrupted)
    }
}

/// `████░░░░░░` for `depth` of `capacity`, `width` cells wide; a non-empty channel shows at
/// least one filled cell.
fn bar(depth: usize, capacity: usize, width: usize) -> String {
    let filled = (depth * width).div_ceil(capacity.max(1)).min(width);
    format!("{}{}", "█".repeat(filled), "░".repeat(width - filled))
}

fn health(state: HealthState) -> Cell<'static> {
    let (text, color) = match state {
        HealthState::Critical => ("critical", Color::Red),
        HealthState::Degraded => ("degraded", Color::Yellow),
        HealthState::Healthy => ("healthy", Color::Green),
    };
    Cell::from(text).style(Style::new().fg(color))
}

/// Draws one frame: title, the channel table, the warnings, the keys.
pub(crate) fn draw(frame: &mut Frame<'_>, state: &ViewState<'_>) {
    let [title, table, warnings, keys] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(state.rows.len() as u16 + 3),
        Constraint::Min(3),
        Constraint::Length(1),
    ])
    .areas(frame.area());
    frame.render_widget(
        Paragraph::new(format!(
            "{}: {:.1}s of {:.0}s",
            state.title,
            state.elapsed.as_secs_f64(),
            state.duration.as_secs_f64()
        ))
        .style(Style::new().add_modifier(Modifier::BOLD)),
        title,
    );
    let header = Row::new([
        "channel", "backend", "policy", "depth", "sent/s", "recv/s", "dropped", "timeouts",
        "health",
    ])
    .style(Style::new().add_modifier(Modifier::BOLD));
    let rows = state.rows.iter().map(|row| {
        Row::new([
            Cell::from(row.name.clone()),
            Cell::from(row.backend),
            Cell::from(row.overflow),
            Cell::from(format!(
                "{} {}/{}",
                bar(row.depth, row.capacity, 10),
                row.depth,
                row.capacity
            )),
            Cell::from(format!("{:.0}", row.sent_per_sec)),
            Cell::from(format!("{:.0}", row.received_per_sec)),
            Cell::from(row.dropped.to_string()),
            Cell::from(row.timeouts.to_string()),
            health(row.health),
        ])
    });
    let widths = [
        Constraint::Min(24),
        Constraint::Length(13),
        Constraint::Length(11),
        Constraint::Length(20),
        Constraint::Length(8),
        Constraint::Length(8),
        Constraint::Length(9),
        Constraint::Length(9),
        Constraint::Length(8),
    ];
    frame.render_widget(
        Table::new(rows, widths)
            .header(header)
            .block(Block::bordered().title(" channels ")),
        table,
    );
    frame.render_widget(
        List::new(state.warnings.iter().map(|w| Line::from(w.as_str())))
            .block(Block::bordered().title(" saturation warnings ")),
        warnings,
    );
    frame.render_widget(
        Paragraph::new("q, Esc or Ctrl-C: stop, drain and print the summary")
            .style(Style::new().fg(Color::DarkGray)),
        keys,
    );
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use ratatui::Terminal;
    use ratatui::backend::TestBackend;

    fn row(name: &str, depth: usize, capacity: usize, health: HealthState) -> ChannelRow {
        ChannelRow {
            name: name.to_owned(),
            backend: "flume",
            overflow: "drop_oldest",
            depth,
            capacity,
            sent_per_sec: 5000.0,
            received_per_sec: 1234.0,
            dropped: 77,
            timeouts: 3,
            health,
        }
    }

    fn render(state: &ViewState<'_>) -> Vec<String> {
        let mut terminal = Terminal::new(TestBackend::new(130, 16)).unwrap();
        terminal.draw(|frame| draw(frame, state)).unwrap();
        let buffer = terminal.backend().buffer();
        (0..buffer.area.height)
            .map(|y| {
                (0..buffer.area.width)
                    .map(|x| buffer[(x, y)].symbol())
                    .collect()
            })
            .collect()
    }

    #[test]
    fn every_channel_shows_with_its_bar_rates_and_health() {
        let rows = [
            row(
                "worker.step_processor.result",
                16,
                16,
                HealthState::Critical,
            ),
            row("event_publisher.event_queue", 0, 16, HealthState::Healthy),
            row("orchestration.command", 8, 32, HealthState::Degraded),
        ];
        let warnings = ["   2.0s WARN  saturated: worker.step_processor.result".to_owned()];
        let lines = render(&ViewState {
            title: "boundflow demo",
            elapsed: Duration::from_millis(2500),
            duration: Duration::from_secs(10),
            rows: &rows,
            warnings: &warnings,
        });
        let screen = lines.join("\n");
        assert!(
            lines[0].starts_with("boundflow demo: 2.5s of 10s"),
            "{screen}"
        );
        let line_of = |name: &str| lines.iter().find(|l| l.contains(name)).unwrap().clone();
        let full = line_of("worker.step_processor.result");
        assert!(full.contains("██████████ 16/16"), "{full}");
        assert!(full.contains("critical"), "{full}");
        assert!(full.contains("5000") && full.contains("1234"), "{full}");
        assert!(
            full.contains("77") && full.contains("drop_oldest"),
            "{full}"
        );
        let empty = line_of("event_publisher.event_queue");
        assert!(empty.contains("░░░░░░░░░░ 0/16"), "{empty}");
        assert!(empty.contains("healthy"), "{empty}");
        let quarter = line_of("orchestration.command");
        assert!(quarter.contains("███░░░░░░░ 8/32"), "{quarter}");
        assert!(quarter.contains("degraded"), "{quarter}");
        assert!(
            screen.contains("WARN  saturated: worker.step_processor.result"),
            "{screen}"
        );
        assert!(screen.contains("q, Esc or Ctrl-C"), "{screen}");
    }

    #[test]
    fn bars_never_overflow() {
        assert_eq!(bar(0, 8, 4), "░░░░");
        assert_eq!(bar(1, 8, 4), "█░░░");
        assert_eq!(bar(9, 8, 4), "████");
        assert_eq!(bar(3, 0, 4), "████");
    }
}
