//! A configured channel as a user builds one: the preset, the loader told this build's
//! backends, and `ChannelBuilder` from the resolved settings.
#![cfg(all(feature = "config", feature = "tokio"))]
#![allow(clippy::unwrap_used, missing_docs)]

use boundflow::config::{Loader, presets};
use boundflow::{ChannelBuilder, Tokio};

#[test]
fn a_configured_channel_gets_its_capacity_policy_and_wait_strategy() {
    let config = Loader::from_dir(presets::dir())
        .environment("test")
        .variables([(
            "BOUNDFLOW__MPSC_CHANNELS__ORCHESTRATION__COMMAND_BUFFER_SIZE",
            "7",
        )])
        .backends(boundflow::compiled_backends())
        .load()
        .unwrap();
    let command = config.channel("orchestration.command").unwrap();
    let (tx, _rx) = ChannelBuilder::new(Tokio, command.name.as_str(), command.capacity.value)
        .policy(command.policy())
        .wait_strategy(command.wait_strategy())
        .build::<u64>()
        .unwrap();
    assert_eq!((tx.capacity(), tx.name()), (7, "orchestration.command"));
    assert_eq!(
        tx.policy(),
        boundflow::OverflowPolicy::Timeout(std::time::Duration::from_millis(500))
    );
    assert_eq!(boundflow::compiled_backends().len(), 4);
}
