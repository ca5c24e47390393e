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

/// A raw tokio receiving end dropped without `close` closes the channel: raw senders fail with
/// `Closed` instead of filling up and then blocking for ever.
#[test]
fn raw_receiver_drop_closes_the_channel() {
    use boundflow::{BoundedChannel, Capacity, RawSender, TrySendError};
    let (tx, rx) = Tokio.bounded::<u64>(Capacity::new(2).unwrap());
    tx.try_send(1).unwrap();
    drop(rx);
    assert!(tx.is_closed());
    assert_eq!(tx.try_send(2), Err(TrySendError::Closed(2)));
    assert_eq!(tx.discard_queued(), 1, "the queued message is counted once");
}

/// Inside a `LocalSet` on a multi-thread runtime, `with_blocking_refused` refuses blocking calls
/// without asking tokio (so without a panic being raised and caught: the way for
/// `panic = "abort"` builds), and counts the refusals.
#[test]
fn blocking_refused_in_a_local_set_without_a_panic() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static PANICS: AtomicUsize = AtomicUsize::new(0);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .build()
        .unwrap();
    let local = tokio::task::LocalSet::new();
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {
        PANICS.fetch_add(1, Ordering::SeqCst);
    }));
    let outcome = local.block_on(&runtime, async {
        let (tx, mut rx) = boundflow::bounded::<u64, _>(Tokio, "t", 1).unwrap();
        tx.try_send(1).unwrap();
        boundflow::runtime::with_blocking_refused(|| {
            let send = tx.send_blocking(2);
            assert_eq!(rx.recv_blocking(), Ok(1));
            let recv = rx.recv_timeout_blocking(Duration::from_millis(1));
            (send, recv, rx.stats().would_deadlock)
        })
    });
    let panics = PANICS.load(Ordering::SeqCst);
    std::panic::set_hook(previous);
    assert_eq!(outcome.0, Err(SendError::WouldDeadlock(2)));
    assert_eq!(outcome.1, Err(boundflow::RecvTimeoutError::WouldDeadlock));
    assert_eq!(outcome.2, 2);
    assert_eq!(panics, 0, "no panic raised");
}
