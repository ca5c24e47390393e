//! A validated capacity: at least 1, at most a maximum. Never a panic, always a typed error.

use std::num::NonZeroUsize;

use crate::error::CapacityError;

/// boundflow's default largest capacity (1,048,576 messages). crossbeam-channel and
/// async-channel allocate every slot up front, so an absurd capacity is refused, not attempted.
pub const DEFAULT_MAX_CAPACITY: usize = 1 << 20;

/// How many messages a channel can hold: at least 1 and at most a maximum.
///
/// ```
/// use boundflow_core::{Capacity, CapacityError};
///
/// assert_eq!(Capacity::new(64).map(Capacity::get), Ok(64));
/// assert_eq!(Capacity::new(0), Err(CapacityError::Zero));
/// assert!(Capacity::new(usize::MAX).is_err());
/// assert!(Capacity::with_max(5_000_000, 8_000_000).is_ok());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Capacity(NonZeroUsize);

impl Capacity {
    /// Validates `n` against [`DEFAULT_MAX_CAPACITY`].
    pub fn new(n: usize) -> Result<Self, CapacityError> {
        Self::with_max(n, DEFAULT_MAX_CAPACITY)
    }

    /// Validates `n` against `max`.
    pub fn with_max(n: usize, max: usize) -> Result<Self, CapacityError> {
        let n = NonZeroUsize::new(n).ok_or(CapacityError::Zero)?;
        if n.get() > max {
            return Err(CapacityError::TooLarge {
                requested: n.get(),
                max,
            });
        }
        Ok(Capacity(n))
    }

    /// The number of messages.
    pub fn get(self) -> usize {
        self.0.get()
    }
}

impl From<Capacity> for usize {
    fn from(capacity: Capacity) -> usize {
        capacity.get()
    }
}
