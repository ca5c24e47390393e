//! tokio-specific behaviour of blocking calls (contract 6) that the grid cannot express.
#![cfg(feature = "tokio")]
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::time::Duration;

use boundflow::runtime::with_blocking_allowed;
use boundflow::{RecvError, SendError, Tokio};

/// On a current-thread runtime, a `spawn_blocking` thread is refused by default (the runtime
/// cannot tell it from the runtime's own thread) and allowed through the escape hatch.
#[test]
fn spawn_blocking_on_current_thread_uses_the_escape_hatch() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(async {
        let (tx, mut rx) = boundflow::bounded::<u64, _>(Tokio, "t", 1).unwrap();
        tx.try_send(1).unwrap();
        let refused = {
            let tx = tx.clone();
            tokio::task::spawn_blocking(move || tx.send_blocking(2))
                .await
                .unwrap()
        };
        assert_eq!(refused, Err(SendError::WouldDeadlock(2)));
        let sender =
            tokio::task::spawn_blocking(move || with_blocking_allowed(|| tx.send_blocking(3)));
        assert_eq!(rx.recv().await, Ok(1));
        assert_eq!(sender.await.unwrap(), Ok(()));
        assert_eq!(rx.recv().await, Ok(3));
        assert_eq!(rx.recv().await, Err(RecvError::Closed));
    });
}

/// On a multi-thread runtime, a blocking call from a worker task works (via
/// `block_in_place`) while another task drains the channel.
#[test]
fn blocking_send_from_a_multi_thread_worker_works() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    rt.block_on(async {
        let (tx, mut rx) = boundflow::bounded::<u64, _>(Tokio, "t", 1).unwrap();
        let producer = tokio::spawn(async move {
            for i in 0..100 {
                tx.send_blocking(i).unwrap();
            }
        });
        for i in 0..100 {
            assert_eq!(rx.recv().await, Ok(i));
        }
        producer.await.unwrap();
    });
}

/// Timeouts need no tokio timer: a runtime built with `enable_time()` is not required, and a
/// runtime with it works too.
#[test]
fn timeouts_work_with_and_without_tokio_time() {
    for enable_time in [false, true] {
        let mut builder = tokio::runtime::Builder::new_current_thread();
        if enable_time {
            builder.enable_time();
        }
        builder.build().unwrap().block_on(async {
            let (tx, mut rx) = boundflow::bounded::<u64, _>(Tokio, "t", 1).unwrap();
            assert!(rx.recv_timeout(Duration::from_millis(2)).await.is_err());
            tx.try_send(1).unwrap();
            assert!(tx.send_timeout(2, Duration::from_millis(2)).await.is_err());
        });
    }
}
