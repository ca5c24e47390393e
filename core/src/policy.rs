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
/// and optionally an overall `deadline` after which no further try is made. A zero pause still
/// yields (to the executor, or the thread's time slice) so the consumer can make room.
///
/// Checked when the channel is built ([`validate`](Self::validate)).
///
/// ```
/// use std::time::Duration;
/// use boundflow_core::RetryPolicy;
///
/// let retry = RetryPolicy { max_attempts: 4, jitter_seed: Some(7), ..RetryPolicy::default() };
/// let pauses: Vec<Duration> = retry.pauses().collect();
/// assert_eq!(pauses.len(), 3, "a pause between each two of the four tries");
/// assert_eq!(pauses, retry.pauses().collect::<Vec<_>>(), "seeded: the same every time");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Tries in all, the first included (at least 1).
    pub max_attempts: u32,
    /// The first pause.
    pub initial_backoff: Duration,
    /// The longest pause (at least `initial_backoff`).
    pub max_backoff: Duration,
    /// The longest the whole send may take, if any.
    pub deadline: Option<Duration>,
    /// Seeds the jitter, making every send's pauses the same known sequence (for tests and
    /// reproducible runs); `None` (the default) draws fresh jitter per send.
    pub jitter_seed: Option<u64>,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 5,
            initial_backoff: Duration::from_millis(1),
            max_backoff: Duration::from_millis(100),
            deadline: None,
            jitter_seed: None,
        }
    }
}

/// A [`RetryPolicy`] that cannot work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RetryPolicyError {
    /// `max_attempts` is 0: not even the first try would be made.
    ZeroAttempts,
    /// `max_backoff` is below `initial_backoff`.
    BackoffInverted {
        /// The first pause asked for.
        initial: Duration,
        /// The cap asked for.
        max: Duration,
    },
}

impl std::fmt::Display for RetryPolicyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RetryPolicyError::ZeroAttempts => f.write_str(
                "retry max_attempts must be at least 1 (the first try counts as an attempt)",
            ),
            RetryPolicyError::BackoffInverted { initial, max } => write!(
                f,
                "retry max_backoff ({max:?}) is below initial_backoff ({initial:?}): raise \
                 max_backoff or lower initial_backoff"
            ),
        }
    }
}

impl std::error::Error for RetryPolicyError {}

impl RetryPolicy {
    /// Checks that the policy can work.
    ///
    /// # Errors
    /// [`RetryPolicyError::ZeroAttempts`], [`RetryPolicyError::BackoffInverted`].
    pub fn validate(&self) -> Result<(), RetryPolicyError> {
        if self.max_attempts == 0 {
            return Err(RetryPolicyError::ZeroAttempts);
        }
        if self.max_backoff < self.initial_backoff {
            return Err(RetryPolicyError::BackoffInverted {
                initial: self.initial_backoff,
                max: self.max_backoff,
            });
        }
        Ok(())
    }

    /// The pause after failed try number `attempt` (1-based), before jitter.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let factor = 1u32
            .checked_shl(attempt.saturating_sub(1))
            .unwrap_or(u32::MAX);
        self.initial_backoff
            .saturating_mul(factor)
            .min(self.max_backoff)
    }

    /// The jittered pauses one send makes between its tries (`max_attempts - 1` of them), each
    /// between half and all of [`backoff`](Self::backoff); the same sequence every time when
    /// [`jitter_seed`](Self::jitter_seed) is set. The overall deadline is not applied here.
    pub fn pauses(&self) -> impl Iterator<Item = Duration> + use<> {
        let policy = *self;
        let mut rng = match self.jitter_seed {
            Some(seed) => fastrand::Rng::with_seed(seed),
            None => fastrand::Rng::new(),
        };
        (1..policy.max_attempts).map(move |attempt| {
            let full = policy.backoff(attempt);
            full / 2 + full.mul_f64(rng.f64() / 2.0)
        })
    }
}

/// How a blocking call (`send_blocking`, `recv_blocking`, their timeout twins) waits once its
/// non-waiting try has failed: how long it keeps retrying on the CPU before it parks the thread.
///
/// Parking costs two context switches per wait, which a channel that is full or empty for only
/// microseconds pays on every message; spinning costs a core for as long as it lasts, which a
/// producer blocked on a slow consumer pays on every freed slot. The default is a short spin (the
/// spin phase of crossbeam-channel's own backoff): it catches sub-microsecond hand-offs, and
/// producers blocked on a slow consumer cost within 0.05 cores of the raw backends' own
/// blocking sends (`benches/README.md`).
///
/// Config name (`wait_strategy`): `"backoff"`, `"park"` or `"spin:<µs>"`.
///
/// ```
/// use std::time::Duration;
/// use boundflow_core::WaitStrategy;
///
/// assert_eq!("spin:20".parse(), Ok(WaitStrategy::Spin(Duration::from_micros(20))));
/// assert_eq!(WaitStrategy::default().to_string(), "backoff");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
#[non_exhaustive]
pub enum WaitStrategy {
    /// crossbeam's `Backoff`, then park: retry seven times with exponentially growing spins in
    /// between (1, 2, 4, ... 64 spin hints), then four times with a yield in between — while
    /// such retries have been ending waits on this side of this channel, or this side has just
    /// woken the other (see [`WaitHistory`](crate::runtime::WaitHistory)). Producers blocked on
    /// a slow consumer soon park at once (retrying cost them about 2 µs of CPU per freed slot
    /// for nothing); a producer and a consumer handing over at a full or empty queue keep
    /// retrying.
    ///
    /// One exception: on a queue whose every operation locks one mutex (flume), a channel with
    /// one sender and room for more than one message parks at once on both sides, as flume's
    /// own blocking calls do. There each retry takes the lock the other side needs for its next
    /// message, and the two sides end up working the queue in lockstep; parked, each side works
    /// through the queue alone (flume blocking SPSC at capacity 64: 0.48x of raw flume's
    /// throughput at 4.0x its CPU per message with the retries, 0.81–0.90x at 1.4–1.7x
    /// parked; `benches/README.md`).
    #[default]
    Backoff,
    /// Park as soon as the non-waiting try has failed (after the one re-check every wait makes).
    Park,
    /// Retry — the backoff above, then yielding — for up to this long before parking: the
    /// lowest latency when a core can be spared, at up to that long of CPU per wait.
    Spin(Duration),
}

impl std::fmt::Display for WaitStrategy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WaitStrategy::Backoff => f.write_str("backoff"),
            WaitStrategy::Park => f.write_str("park"),
            WaitStrategy::Spin(limit) => write!(f, "spin:{}", limit.as_micros()),
        }
    }
}

/// A wait strategy name that is not `backoff`, `park` or `spin:<µs>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WaitStrategyError {
    given: String,
}

impl std::fmt::Display for WaitStrategyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "unknown wait strategy `{}`: use \"backoff\", \"park\" or \"spin:<microseconds>\" \
             (e.g. \"spin:20\")",
            self.given
        )
    }
}

impl std::error::Error for WaitStrategyError {}

impl std::str::FromStr for WaitStrategy {
    type Err = WaitStrategyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let refused = || WaitStrategyError {
            given: s.to_owned(),
        };
        match s {
            "backoff" => Ok(WaitStrategy::Backoff),
            "park" => Ok(WaitStrategy::Park),
            _ => {
                let micros = s.strip_prefix("spin:").ok_or_else(refused)?;
                let micros: u64 = micros.trim().parse().map_err(|_| refused())?;
                Ok(WaitStrategy::Spin(Duration::from_micros(micros)))
            }
        }
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
            jitter_seed: None,
        };
        let pauses: Vec<u128> = (1..=6).map(|n| retry.backoff(n).as_millis()).collect();
        assert_eq!(pauses, vec![2, 4, 8, 16, 20, 20]);
        assert_eq!(retry.backoff(200), Duration::from_millis(20));
        for (pause, n) in retry.pauses().zip(1..) {
            assert!(pause >= retry.backoff(n) / 2 && pause <= retry.backoff(n));
        }
        assert_eq!(retry.pauses().count(), 9);
    }
}

#[cfg(test)]
mod validation_tests {
    use super::*;

    #[test]
    fn zero_attempts_and_inverted_backoff_are_refused() {
        let zero = RetryPolicy {
            max_attempts: 0,
            ..RetryPolicy::default()
        };
        assert_eq!(zero.validate(), Err(RetryPolicyError::ZeroAttempts));
        let inverted = RetryPolicy {
            initial_backoff: Duration::from_millis(10),
            max_backoff: Duration::from_millis(1),
            ..RetryPolicy::default()
        };
        assert!(matches!(
            inverted.validate(),
            Err(RetryPolicyError::BackoffInverted { .. })
        ));
        assert_eq!(RetryPolicy::default().validate(), Ok(()));
    }

    #[test]
    fn seeded_jitter_repeats_and_unseeded_varies() {
        let seeded = RetryPolicy {
            max_attempts: 20,
            jitter_seed: Some(42),
            ..RetryPolicy::default()
        };
        let first: Vec<_> = seeded.pauses().collect();
        assert_eq!(first, seeded.pauses().collect::<Vec<_>>());
        let other_seed = RetryPolicy {
            jitter_seed: Some(43),
            ..seeded
        };
        assert_ne!(first, other_seed.pauses().collect::<Vec<_>>());
    }
}

#[cfg(test)]
mod wait_strategy_tests {
    use super::*;

    #[test]
    fn names_round_trip_and_bad_names_are_refused() {
        for strategy in [
            WaitStrategy::Backoff,
            WaitStrategy::Park,
            WaitStrategy::Spin(Duration::from_micros(20)),
        ] {
            assert_eq!(strategy.to_string().parse(), Ok(strategy));
        }
        for bad in ["", "spin", "spin:", "spin:-1", "Park", "spin:1.5"] {
            assert!(bad.parse::<WaitStrategy>().is_err(), "{bad:?} accepted");
        }
    }
}
