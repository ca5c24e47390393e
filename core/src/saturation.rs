//! The saturation state machine: one atomic word per channel, and the thresholds that drive it.
//!
//! A channel is *normal* or *saturated*. A send that finds the channel full may move it to
//! saturated (entered); the watcher's tick also enters it when a sample reaches the warn
//! threshold, reminds while it stays at or above the recover threshold, and moves it back to
//! normal (left) when a sample falls below that. Warnings are state changes with hysteresis, not
//! one per full send, and a channel stuck full with every sender blocked is still reminded of,
//! because the tick — not a send — drives everything after the entry.
//!
//! The word holds the number of transitions so far and the state (`transitions << 1 |
//! saturated`); every transition is one compare-and-swap that also counts, so of any number of
//! threads racing to enter (or to leave), exactly one wins and numbers the event, and entries
//! and exits alternate in that numbering.

use std::fmt;
use std::sync::atomic::Ordering::{AcqRel, Acquire};
use std::time::Duration;

use crate::loom::AtomicU64;

/// A channel's saturation state.
#[derive(Debug, Default)]
pub(crate) struct SaturationState(AtomicU64);

impl SaturationState {
    /// Normal → saturated; the transition's number if this call made it.
    pub(crate) fn enter(&self) -> Option<u64> {
        self.transition(true)
    }

    /// Saturated → normal; the transition's number if this call made it.
    pub(crate) fn leave(&self) -> Option<u64> {
        self.transition(false)
    }

    /// Whether saturated, and the number of the last transition (0 before the first).
    pub(crate) fn current(&self) -> (bool, u64) {
        let word = self.0.load(Acquire);
        (word & 1 == 1, word >> 1)
    }

    fn transition(&self, to_saturated: bool) -> Option<u64> {
        let mut word = self.0.load(Acquire);
        loop {
            if (word & 1 == 1) == to_saturated {
                return None;
            }
            let sequence = (word >> 1) + 1;
            let next = sequence << 1 | u64::from(to_saturated);
            match self.0.compare_exchange_weak(word, next, AcqRel, Acquire) {
                Ok(_) => return Some(sequence),
                Err(now) => word = now,
            }
        }
    }
}

/// When a channel counts as saturated, when it recovers, and how often the watcher reminds.
///
/// ```
/// use boundflow_core::SaturationThresholds;
///
/// let thresholds = SaturationThresholds { warn: 0.9, ..SaturationThresholds::default() };
/// assert!(thresholds.validate().is_ok());
/// let inverted = SaturationThresholds { warn: 0.5, recover: 0.6, ..thresholds };
/// assert!(inverted.validate().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SaturationThresholds {
    /// Saturation at or above this enters the saturated state (default 0.8; in `(0, 1]`).
    pub warn: f64,
    /// Saturation below this leaves it (default 0.6; in `[0, warn)`).
    pub recover: f64,
    /// The least time between two reminders while saturated (default 60 s).
    pub reminder_interval: Duration,
}

impl Default for SaturationThresholds {
    fn default() -> Self {
        SaturationThresholds {
            warn: 0.8,
            recover: 0.6,
            reminder_interval: Duration::from_secs(60),
        }
    }
}

impl SaturationThresholds {
    /// Checks that the thresholds can work.
    ///
    /// # Errors
    /// [`ThresholdError`] naming what is wrong and how to fix it.
    pub fn validate(&self) -> Result<(), ThresholdError> {
        if !(self.warn > 0.0 && self.warn <= 1.0) {
            return Err(ThresholdError::WarnOutOfRange(self.warn));
        }
        if !(self.recover >= 0.0 && self.recover <= 1.0) {
            return Err(ThresholdError::RecoverOutOfRange(self.recover));
        }
        if self.recover >= self.warn {
            return Err(ThresholdError::RecoverNotBelowWarn {
                warn: self.warn,
                recover: self.recover,
            });
        }
        Ok(())
    }
}

/// [`SaturationThresholds`] that cannot work.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub enum ThresholdError {
    /// `warn` is not in `(0, 1]`.
    WarnOutOfRange(f64),
    /// `recover` is not in `[0, 1]`.
    RecoverOutOfRange(f64),
    /// `recover` is not below `warn`: a channel would leave the moment it entered.
    RecoverNotBelowWarn {
        /// The warn threshold asked for.
        warn: f64,
        /// The recover threshold asked for.
        recover: f64,
    },
}

impl fmt::Display for ThresholdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ThresholdError::WarnOutOfRange(warn) => write!(
                f,
                "saturation warn threshold {warn} is not in (0, 1]: use a fraction of capacity such as 0.8"
            ),
            ThresholdError::RecoverOutOfRange(recover) => write!(
                f,
                "saturation recover threshold {recover} is not in [0, 1]: use a fraction of capacity such as 0.6"
            ),
            ThresholdError::RecoverNotBelowWarn { warn, recover } => write!(
                f,
                "saturation recover threshold {recover} is not below the warn threshold {warn}: \
                 lower recover_threshold or raise log_warning_threshold"
            ),
        }
    }
}

impl std::error::Error for ThresholdError {}

/// Loom model of the machine under what really races it: full sends entering while ticks leave
/// (and enter) concurrently.
#[cfg(all(test, boundflow_loom))]
mod loom_model {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::SaturationState;
    use loom::sync::{Arc, Mutex};
    use loom::thread;

    #[test]
    fn loom_saturation_transitions_alternate_in_sequence_order() {
        loom::model(|| {
            let state = Arc::new(SaturationState::default());
            // Every transition made, with its number: (sequence, entered?).
            let log = Arc::new(Mutex::new(Vec::new()));
            let actor = |moves: &'static [bool]| {
                let state = Arc::clone(&state);
                let log = Arc::clone(&log);
                thread::spawn(move || {
                    for &enter in moves {
                        let made = if enter { state.enter() } else { state.leave() };
                        if let Some(sequence) = made {
                            log.lock().unwrap().push((sequence, enter));
                        }
                    }
                })
            };
            // Two full sends, and ticks that leave, sample full again and leave.
            let threads = [actor(&[true]), actor(&[true]), actor(&[false, true, false])];
            for thread in threads {
                thread.join().unwrap();
            }
            let mut log = log.lock().unwrap().clone();
            log.sort_unstable();
            for (index, &(sequence, entered)) in log.iter().enumerate() {
                assert_eq!(sequence, index as u64 + 1, "numbers are dense: {log:?}");
                assert_eq!(
                    entered,
                    sequence % 2 == 1,
                    "entries and exits alternate: {log:?}"
                );
            }
            let (saturated, last) = state.current();
            assert_eq!(last, log.len() as u64);
            assert_eq!(saturated, last % 2 == 1);
            assert!(!log.is_empty(), "the first full send always enters");
        });
    }
}
