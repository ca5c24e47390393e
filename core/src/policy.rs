//! What a policy-applying `send` does when the channel is full.

use std::time::Duration;

/// What `send` / `send_blocking` do when the channel is full. `try_send` and the explicit
/// `send_timeout*` calls ignore the policy: they say what they do in their names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum OverflowPolicy {
    /// Wait for room (natural backpressure). Fails only with `Closed`.
    #[default]
    Block,
    /// Wait up to this long, then fail with `Timeout(msg)`.
    Timeout(Duration),
    /// Refuse the new message: fail with `Full(msg)` and count it as dropped (newest).
    DropNewest,
    /// Evict the oldest queued message (counted as evicted) and queue the new one. Needs a
    /// backend that can take from the queue on the sending side (not tokio).
    DropOldest,
    /// Retry `try_send` with exponential backoff and jitter; fail with `Full(msg)` after the last.
    Retry(RetryPolicy),
}

impl OverflowPolicy {
    /// The config name: `block`, `timeout`, `drop_newest`, `drop_oldest` or `retry`.
    pub fn name(&self) -> &'static str {
        match self {
            OverflowPolicy::Block => "block",
            OverflowPolicy::Timeout(_) => "timeout",
            OverflowPolicy::DropNewest => "drop_newest",
            OverflowPolicy::DropOldest => "drop_oldest",
            OverflowPolicy::Retry(_) => "retry",
        }
    }
}

/// The `retry` policy's schedule: `max_attempts` tries in all, the pause doubling from
/// `initial_backoff` up to `max_backoff`, each pause jittered to between half and all of itself,
/// and optionally an overall `deadline` after which no further try is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Tries in all, the first included (at least 1).
    pub max_attempts: u32,
    /// The first pause.
    pub initial_backoff: Duration,
    /// The longest pause.
    pub max_backoff: Duration,
    /// The longest the whole send may take, if any.
    pub deadline: Option<Duration>,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 5,
            initial_backoff: Duration::from_millis(1),
            max_backoff: Duration::from_millis(100),
            deadline: None,
        }
    }
}

impl RetryPolicy {
    /// The pause after failed try number `attempt` (1-based), before jitter.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let factor = 1u32
            .checked_shl(attempt.saturating_sub(1))
            .unwrap_or(u32::MAX);
        self.initial_backoff
            .saturating_mul(factor)
            .min(self.max_backoff)
    }

    /// The pause after failed try number `attempt`, jittered to between half and all of it.
    pub fn jittered_backoff(&self, attempt: u32) -> Duration {
        let full = self.backoff(attempt);
        full / 2 + full.mul_f64(fastrand::f64() / 2.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let retry = RetryPolicy {
            max_attempts: 10,
            initial_backoff: Duration::from_millis(2),
            max_backoff: Duration::from_millis(20),
            deadline: None,
        };
        let pauses: Vec<u128> = (1..=6).map(|n| retry.backoff(n).as_millis()).collect();
        assert_eq!(pauses, vec![2, 4, 8, 16, 20, 20]);
        assert_eq!(retry.backoff(200), Duration::from_millis(20));
        for n in 1..=6 {
            let pause = retry.jittered_backoff(n);
            assert!(pause >= retry.backoff(n) / 2 && pause <= retry.backoff(n));
        }
    }
}
