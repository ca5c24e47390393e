//! [`TracingObserver`]: saturation warnings through `tracing` (feature `tracing`).

use crate::observer::{ChannelInfo, Observer, SaturationEvent, SaturationKind};

/// An [`Observer`] that logs saturation through `tracing`: `warn!` when a channel enters
/// saturation and on each reminder (with the number of ticks suppressed since the last one),
/// `info!` when it leaves. Target `boundflow`; fields `channel`, `subsystem`, `backend`,
/// `depth`, `capacity`, `saturation`, `sequence` (and `suppressed` on reminders). Nothing is
/// logged per message or per full send: a saturated channel logs once, then at most once per
/// reminder interval.
///
/// ```
/// # fn doc<B: boundflow_core::BoundedChannel>(backend: B) -> Result<(), boundflow_core::BuildError> {
/// use std::sync::Arc;
/// use boundflow_core::{ChannelBuilder, TracingObserver};
///
/// let (tx, rx) = ChannelBuilder::new(backend, "worker.results", 100)
///     .observer(Arc::new(TracingObserver))
///     .build::<u64>()?;
/// # drop((tx, rx)); Ok(()) }
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct TracingObserver;

impl Observer for TracingObserver {
    fn on_saturation(&self, channel: &ChannelInfo, event: &SaturationEvent) {
        let (name, subsystem, backend) = (channel.name(), channel.subsystem(), channel.backend());
        let (depth, capacity, saturation, sequence) = (
            event.depth,
            event.capacity,
            event.saturation,
            event.sequence,
        );
        match event.kind {
            SaturationKind::Entered => tracing::warn!(
                target: "boundflow",
                channel = name, subsystem, backend, depth, capacity, saturation, sequence,
                "channel saturated"
            ),
            SaturationKind::Reminder { suppressed } => tracing::warn!(
                target: "boundflow",
                channel = name, subsystem, backend, depth, capacity, saturation, sequence,
                suppressed,
                "channel still saturated"
            ),
            SaturationKind::Left => tracing::info!(
                target: "boundflow",
                channel = name, subsystem, backend, depth, capacity, saturation, sequence,
                "channel no longer saturated"
            ),
        }
    }
}
