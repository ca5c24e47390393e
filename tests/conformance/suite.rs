//! The conformance suite: one body per contract point, run on every backend x runtime.
//! Ported scenarios name their source idea in their docs.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use boundflow::{
    BuildError, CapacityError, ChannelBuilder, DEFAULT_MAX_CAPACITY, OverflowPolicy, RecvError,
    RecvTimeoutError, RetryPolicy, SendError, SendTimeoutError, TryRecvError, TrySendError,
};
use futures::{Stream, StreamExt};

use crate::harness::*;

/// A message type that is neither `Clone` nor `Debug`: errors must give it back anyway.
struct Job(u64);

/// Contract 1: Bounded: capacity is validated (typed errors, never a panic).
pub async fn capacity_is_validated<R: Runtime, B: Backend>() {
    let zero = ChannelBuilder::new(B::default(), "t", 0).build::<u8>();
    assert!(matches!(
        zero,
        Err(BuildError::Capacity(CapacityError::Zero))
    ));
    let over = ChannelBuilder::new(B::default(), "t", DEFAULT_MAX_CAPACITY + 1).build::<u8>();
    assert!(matches!(
        over,
        Err(BuildError::Capacity(CapacityError::TooLarge {
            max: DEFAULT_MAX_CAPACITY,
            ..
        }))
    ));
    // Raising boundflow's maximum still leaves the backend's own limit in force, without panic.
    let absurd = ChannelBuilder::new(B::default(), "t", usize::MAX)
        .max_capacity(usize::MAX)
        .build::<u8>();
    if let Err(err) = absurd {
        assert!(matches!(
            err,
            BuildError::Capacity(CapacityError::TooLarge { .. })
        ));
    }
    let (tx, rx) = channel::<u8, B>(7);
    assert_eq!((tx.capacity(), rx.capacity()), (7, 7));
    assert_eq!(tx.stats().capacity, 7);
}

/// Contract 1: Bounded: never more than `capacity` queued, even with a producer racing a consumer.
pub async fn never_more_than_capacity_queued<R: Runtime, B: Backend>() {
    let (tx, mut rx) = channel::<u64, B>(4);
    for i in 0..4 {
        tx.try_send(i).expect("room");
    }
    assert_eq!(tx.try_send(99), Err(TrySendError::Full(99)));
    assert_eq!((tx.len(), rx.len()), (4, 4));
    assert_eq!(rx.stats().saturation, 1.0);

    // The producers count what was accepted; right after each receive, accepted − received
    // (from the test's own counts, not the clamped `len`/`depth`) is what is queued: never more
    // than the capacity.
    let accepted = Arc::new(AtomicU64::new(4));
    let producers: Vec<_> = (0..2u64)
        .map(|p| {
            let (tx, accepted) = (tx.clone(), Arc::clone(&accepted));
            R::spawn(async move {
                for i in 0..200 {
                    send::<R, _, _>(&tx, 1000 * (p + 1) + i)
                        .await
                        .expect("send");
                    accepted.fetch_add(1, Ordering::SeqCst);
                }
            })
        })
        .collect();
    for received in 1..=404u64 {
        recv::<R, _, _>(&mut rx).await.expect("recv");
        // `accepted` may lag (a producer counts after its send returns), never lead.
        let queued = accepted.load(Ordering::SeqCst).saturating_sub(received);
        assert!(queued <= 4, "{queued} queued in a channel of capacity 4");
    }
    for producer in producers {
        producer.await;
    }
    let stats = tx.stats();
    assert!(
        stats.high_water_mark <= 4 && stats.full_events >= 1,
        "{stats:?}"
    );
}

/// Contract 3: FIFO per sender: three producers interleave, each one's messages arrive in order.
/// (Idea ported from Go's channel tests as crossbeam-channel carries them, `tests/golang.rs`.)
pub async fn fifo_per_sender<R: Runtime, B: Backend>() {
    const PER: u64 = 300;
    let (tx, mut rx) = channel::<(u64, u64), B>(2);
    let producers: Vec<_> = (0..3)
        .map(|id| {
            let tx = tx.clone();
            R::spawn(async move {
                for seq in 0..PER {
                    send::<R, _, _>(&tx, (id, seq)).await.expect("send");
                }
            })
        })
        .collect();
    drop(tx);
    let mut next = [0u64; 3];
    while let Ok((id, seq)) = recv::<R, _, _>(&mut rx).await {
        assert_eq!(seq, next[id as usize], "producer {id} out of order");
        next[id as usize] += 1;
    }
    assert_eq!(next, [PER; 3]);
    for producer in producers {
        producer.await;
    }
}

/// Contract 4: Close: when every sender is gone, the receiver drains what is queued, then sees closed.
pub async fn senders_gone_drains_then_closed<R: Runtime, B: Backend>() {
    let (tx, mut rx) = channel::<u64, B>(8);
    let tx2 = tx.clone();
    for i in 0..3 {
        tx.try_send(i).expect("room");
    }
    tx2.try_send(3).expect("room");
    drop(tx);
    assert!(!rx.is_closed(), "one sender is left");
    drop(tx2);
    for i in 0..4 {
        assert_eq!(recv::<R, _, _>(&mut rx).await, Ok(i));
    }
    assert_eq!(recv::<R, _, _>(&mut rx).await, Err(RecvError::Closed));
    assert_eq!(rx.try_recv(), Err(TryRecvError::Closed));
    assert!(rx.is_closed());

    // A receiver already waiting is woken by the last sender going away.
    let (tx, mut rx) = channel::<u64, B>(1);
    let waiter = R::spawn(async move { recv::<R, _, _>(&mut rx).await });
    sleep::<R>(Duration::from_millis(20)).await;
    drop(tx);
    assert_eq!(waiter.await, Err(RecvError::Closed));
}

/// Contract 4: `Receiver::close`: later sends fail with the message, the queue still drains.
pub async fn receiver_close_drains_then_closed<R: Runtime, B: Backend>() {
    let (tx, mut rx) = channel::<u64, B>(8);
    for i in 0..3 {
        send::<R, _, _>(&tx, i).await.expect("send");
    }
    rx.close();
    assert!(tx.is_closed() && rx.is_closed());
    assert_eq!(tx.try_send(10), Err(TrySendError::Closed(10)));
    assert_eq!(send::<R, _, _>(&tx, 11).await, Err(SendError::Closed(11)));
    assert_eq!(
        send_timeout::<R, _, _>(&tx, 12, Duration::from_millis(5)).await,
        Err(SendTimeoutError::Closed(12))
    );
    for i in 0..3 {
        assert_eq!(recv::<R, _, _>(&mut rx).await, Ok(i));
    }
    assert_eq!(recv::<R, _, _>(&mut rx).await, Err(RecvError::Closed));
    let stats = rx.stats();
    assert_eq!((stats.sent, stats.received, stats.closed_errors), (3, 3, 3));
}

/// Contract 4: `Receiver::close` wakes senders blocked on a full channel: each completes (and is
/// drained) or fails with its message — none hangs.
pub async fn receiver_close_wakes_blocked_senders<R: Runtime, B: Backend>() {
    let (tx, mut rx) = channel::<u64, B>(1);
    tx.try_send(0).expect("room");
    let blocked: Vec<_> = (1..=3)
        .map(|i| {
            let tx = tx.clone();
            R::spawn(async move { send::<R, _, _>(&tx, i).await })
        })
        .collect();
    sleep::<R>(Duration::from_millis(30)).await;
    rx.close();
    let mut handed_back = HashSet::new();
    for sender in blocked {
        match sender.await {
            Ok(()) => {}
            Err(SendError::Closed(msg)) => assert!(handed_back.insert(msg)),
            Err(other) => panic!("unexpected {other}"),
        }
    }
    let mut drained = HashSet::new();
    while let Ok(msg) = recv::<R, _, _>(&mut rx).await {
        assert!(drained.insert(msg));
    }
    assert!(drained.contains(&0));
    assert!(drained.is_disjoint(&handed_back));
    assert_eq!(
        drained.len() + handed_back.len(),
        4,
        "every message accounted for once"
    );
}

/// Contract 2: Dropping the receiver fails later sends with their message and counts what it discarded.
pub async fn receiver_drop_counts_discarded<R: Runtime, B: Backend>() {
    let (tx, rx) = channel::<Job, B>(4);
    for i in 0..3 {
        tx.try_send(Job(i)).map_err(|_| "room").expect("room");
    }
    drop(rx);
    assert!(tx.is_closed());
    assert_eq!(tx.try_send(Job(7)).map_err(|e| e.into_inner().0), Err(7));
    match send::<R, _, _>(&tx, Job(8)).await {
        Err(SendError::Closed(Job(8))) => {}
        other => panic!(
            "expected Closed(Job(8)), got {:?}",
            other.map_err(|e| e.to_string())
        ),
    }
    let stats = tx.stats();
    assert_eq!(stats.discarded_at_close, 3, "{stats:?}");
    assert_eq!(stats.closed_errors, 2);
    assert_counters_add_up(&stats);
}

/// Contracts 2 and 5: Every error hands the message back, without `Clone` or `Debug`.
pub async fn errors_give_the_message_back<R: Runtime, B: Backend>() {
    let (tx, _rx) = channel::<Job, B>(1);
    tx.try_send(Job(1)).map_err(|_| "room").expect("room");
    let full = tx.try_send(Job(2)).expect_err("full");
    assert_eq!(format!("{full:?}"), "Full(..)");
    assert_eq!(full.to_string(), "sending on a full channel");
    assert_eq!(full.into_inner().0, 2);
    match send_timeout::<R, _, _>(&tx, Job(3), Duration::from_millis(5)).await {
        Err(SendTimeoutError::Timeout(job)) => assert_eq!(job.0, 3),
        _ => panic!("expected Timeout(Job(3))"),
    }

    let (tx, _rx) = ChannelBuilder::new(B::default(), "t", 1)
        .policy(OverflowPolicy::DropNewest)
        .build::<Job>()
        .expect("channel");
    tx.try_send(Job(1)).map_err(|_| "room").expect("room");
    match send::<R, _, _>(&tx, Job(4)).await {
        Err(SendError::Full(job)) => assert_eq!(job.0, 4),
        _ => panic!("drop_newest must refuse with Full"),
    }
    assert_eq!(tx.stats().dropped_newest, 1);

    let (tx, _rx) = ChannelBuilder::new(B::default(), "t", 1)
        .policy(OverflowPolicy::Timeout(Duration::from_millis(5)))
        .build::<Job>()
        .expect("channel");
    tx.try_send(Job(1)).map_err(|_| "room").expect("room");
    match send::<R, _, _>(&tx, Job(5)).await {
        Err(SendError::Timeout(job)) => assert_eq!(job.0, 5),
        _ => panic!("timeout policy must give Timeout"),
    }
    assert_eq!(tx.stats().timeouts, 1);
}

/// Contract 5: Timeouts never return early, both directions.
pub async fn timeouts_never_early<R: Runtime, B: Backend>() {
    let wait = Duration::from_millis(15);
    let (tx, mut rx) = channel::<u64, B>(1);
    let start = Instant::now();
    assert_eq!(
        recv_timeout::<R, _, _>(&mut rx, wait).await,
        Err(RecvTimeoutError::Timeout)
    );
    assert!(start.elapsed() >= wait, "recv_timeout returned early");
    tx.try_send(1).expect("room");
    let start = Instant::now();
    assert_eq!(
        send_timeout::<R, _, _>(&tx, 2, wait).await,
        Err(SendTimeoutError::Timeout(2))
    );
    assert!(start.elapsed() >= wait, "send_timeout returned early");
    let stats = rx.stats();
    assert_eq!((stats.timeouts, stats.recv_timeouts), (1, 1));
    // A message that arrives within the deadline is taken, not timed out.
    let late = R::spawn(async move {
        sleep::<R>(Duration::from_millis(10)).await;
        tx.try_send(3).is_ok()
    });
    assert_eq!(
        recv_timeout::<R, _, _>(&mut rx, Duration::from_secs(5)).await,
        Ok(1)
    );
    assert_eq!(
        recv_timeout::<R, _, _>(&mut rx, Duration::from_secs(5)).await,
        Ok(3)
    );
    assert!(late.await);
}

/// Contract 5: The async timeouts also work under `futures::executor::block_on`, with no runtime at all.
pub async fn timeouts_work_under_futures_block_on<R: Runtime, B: Backend>() {
    let (tx, mut rx) = channel::<u64, B>(1);
    let outcome = std::thread::spawn(move || {
        futures::executor::block_on(async {
            let wait = Duration::from_millis(10);
            let empty = rx.recv_timeout(wait).await;
            tx.try_send(1).expect("room");
            let start = Instant::now();
            let full = tx.send_timeout(2, wait).await;
            let waited = start.elapsed();
            (empty, full, waited >= wait, rx.recv_timeout(wait).await)
        })
    })
    .join()
    .expect("thread");
    assert_eq!(outcome.0, Err(RecvTimeoutError::Timeout));
    assert_eq!(outcome.1, Err(SendTimeoutError::Timeout(2)));
    assert!(outcome.2, "send_timeout returned early");
    assert_eq!(outcome.3, Ok(1));
}

/// Contract 7: Cancel safety of receives: receives abandoned at their deadline, again and again while a
/// producer sends, lose nothing and duplicate nothing.
pub async fn recv_is_cancel_safe<R: Runtime, B: Backend>() {
    const N: u64 = 300;
    let (tx, mut rx) = channel::<u64, B>(2);
    let producer = R::spawn(async move {
        for i in 0..N {
            if i % 16 == 0 {
                sleep::<R>(Duration::from_millis(1)).await;
            }
            send::<R, _, _>(&tx, i).await.expect("send");
        }
    });
    let mut expected = 0;
    let mut abandoned = 0u32;
    while expected < N {
        match recv_timeout::<R, _, _>(&mut rx, Duration::from_micros(200)).await {
            Ok(msg) => {
                assert_eq!(msg, expected);
                expected += 1;
            }
            Err(RecvTimeoutError::Timeout) => abandoned += 1,
            Err(other) => panic!("unexpected {other}"),
        }
    }
    producer.await;
    assert_eq!(recv::<R, _, _>(&mut rx).await, Err(RecvError::Closed));
    assert!(abandoned > 0, "the test never abandoned a receive");
    if !R::BLOCKING {
        // A recv future dropped after being polled (not at a deadline) loses nothing either.
        let (tx, mut rx) = channel::<u64, B>(1);
        {
            let pending = rx.recv();
            futures::pin_mut!(pending);
            let polled = futures::poll!(pending.as_mut());
            assert!(polled.is_pending());
        }
        tx.try_send(5).expect("room");
        assert_eq!(rx.recv().await, Ok(5));
    }
}

/// Contract 8: Counters are exact once activity stops, after a mix of every outcome.
pub async fn counters_exact_at_quiescence<R: Runtime, B: Backend>() {
    let (tx, mut rx) = channel::<u64, B>(3);
    let producers: Vec<_> = (0..2u64)
        .map(|p| {
            let tx = tx.clone();
            R::spawn(async move {
                for i in 0..200 {
                    send::<R, _, _>(&tx, p * 1000 + i).await.expect("send");
                }
            })
        })
        .collect();
    // Take all but a full channel's worth, so every producer can finish.
    for _ in 0..397 {
        recv::<R, _, _>(&mut rx).await.expect("recv");
    }
    for producer in producers {
        producer.await;
    }
    assert_eq!(
        recv_timeout::<R, _, _>(&mut rx, Duration::from_millis(1))
            .await
            .map(|_| ()),
        Ok(())
    );
    let stats = rx.stats();
    assert_eq!(
        (stats.sent, stats.received, stats.depth),
        (400, 398, 2),
        "{stats:?}"
    );
    assert_counters_add_up(&stats);
    let depth = stats.depth as u64;
    drop(rx);
    let stats = tx.stats();
    assert_eq!(stats.discarded_at_close, depth);
    assert_counters_add_up(&stats);
    assert_eq!(tx.try_send(1), Err(TrySendError::Closed(1)));
    assert_eq!(tx.stats().closed_errors, 1);
}

/// The FFI pattern: blocking senders on OS threads into a receiver in the runtime.
pub async fn blocking_threads_into_receiver<R: Runtime, B: Backend>() {
    const PER: u64 = 500;
    let (tx, mut rx) = channel::<u64, B>(8);
    let threads: Vec<_> = (0..4u64)
        .map(|t| {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for i in 0..PER {
                    tx.send_blocking(t * PER + i).expect("send_blocking");
                }
            })
        })
        .collect();
    drop(tx);
    let mut seen = vec![false; 4 * PER as usize];
    while let Ok(msg) = recv::<R, _, _>(&mut rx).await {
        assert!(
            !std::mem::replace(&mut seen[msg as usize], true),
            "duplicate {msg}"
        );
    }
    assert!(seen.iter().all(|s| *s), "lost messages");
    for thread in threads {
        thread.join().expect("thread");
    }
    assert_counters_add_up(&rx.stats());
}

/// The other direction: senders in the runtime into a blocking receiver on an OS thread.
pub async fn senders_into_blocking_thread<R: Runtime, B: Backend>() {
    const PER: u64 = 500;
    let (tx, mut rx) = channel::<u64, B>(8);
    let consumer = std::thread::spawn(move || {
        let mut sum = 0u64;
        let mut count = 0u64;
        while let Ok(msg) = rx.recv_blocking() {
            sum += msg;
            count += 1;
        }
        (count, sum, rx.stats())
    });
    let producers: Vec<_> = (0..3u64)
        .map(|p| {
            let tx = tx.clone();
            R::spawn(async move {
                for i in 0..PER {
                    send::<R, _, _>(&tx, p * PER + i).await.expect("send");
                }
            })
        })
        .collect();
    drop(tx);
    for producer in producers {
        producer.await;
    }
    let (count, sum, stats) = consumer.join().expect("consumer");
    let n = 3 * PER;
    assert_eq!((count, sum), (n, n * (n - 1) / 2));
    assert_counters_add_up(&stats);
}

/// Contract 6: Blocking calls made inside this runtime's context never panic: they work, or (on a
/// current-thread tokio runtime) return `WouldDeadlock` with the message.
pub async fn blocking_calls_in_context_do_not_panic<R: Runtime, B: Backend>() {
    let (tx, mut rx) = channel::<u64, B>(1);
    // Calls that need no wait succeed everywhere.
    tx.send_blocking(1).expect("room, no wait");
    assert_eq!(rx.recv_blocking(), Ok(1));
    tx.try_send(2).expect("room");
    let drainer_go = Arc::new(AtomicBool::new(false));
    let go = Arc::clone(&drainer_go);
    let drainer = std::thread::spawn(move || {
        while !go.load(Ordering::Acquire) {
            std::thread::sleep(Duration::from_millis(1));
        }
        std::thread::sleep(Duration::from_millis(10));
        let got: Vec<u64> = std::iter::from_fn(|| rx.recv_blocking().ok()).collect();
        (got, rx)
    });
    match R::BLOCKING_IN_CONTEXT {
        BlockingInContext::Works => {
            drainer_go.store(true, Ordering::Release);
            assert_eq!(tx.send_blocking(3), Ok(()));
            assert_eq!(tx.send_timeout_blocking(4, Duration::from_secs(5)), Ok(()));
        }
        BlockingInContext::WouldDeadlock => {
            // The channel stays full (the drainer starts after): each call must refuse, however
            // long the refusal takes (in a `LocalSet`, tokio's panic hook prints first).
            assert_eq!(tx.send_blocking(3), Err(SendError::WouldDeadlock(3)));
            assert_eq!(
                tx.send_timeout_blocking(4, Duration::from_secs(5)),
                Err(SendTimeoutError::WouldDeadlock(4))
            );
            drainer_go.store(true, Ordering::Release);
        }
    }
    drop(tx);
    let (got, mut rx) = drainer.join().expect("drainer");
    match R::BLOCKING_IN_CONTEXT {
        BlockingInContext::Works => assert_eq!(got, vec![2, 3, 4]),
        BlockingInContext::WouldDeadlock => assert_eq!(got, vec![2]),
    }
    // A blocking receive on an empty, open channel.
    let (tx, mut rx2) = channel::<u64, B>(1);
    match R::BLOCKING_IN_CONTEXT {
        BlockingInContext::Works => assert_eq!(
            rx2.recv_timeout_blocking(Duration::from_millis(5)),
            Err(RecvTimeoutError::Timeout)
        ),
        BlockingInContext::WouldDeadlock => {
            assert_eq!(rx2.recv_blocking(), Err(RecvError::WouldDeadlock));
            assert_eq!(
                rx2.recv_timeout_blocking(Duration::from_millis(5)),
                Err(RecvTimeoutError::WouldDeadlock)
            );
        }
    }
    let refused = match R::BLOCKING_IN_CONTEXT {
        BlockingInContext::Works => 0,
        BlockingInContext::WouldDeadlock => 2,
    };
    assert_eq!(rx2.stats().would_deadlock, refused);
    drop(tx);
    assert_eq!(rx.recv_blocking(), Err(RecvError::Closed));
    assert_eq!(rx.stats().would_deadlock, refused);
}

/// The receiver is a `Stream` that yields everything, then ends.
pub async fn stream_yields_all_then_ends<R: Runtime, B: Backend>() {
    let (tx, rx) = channel::<u64, B>(2);
    let producer = R::spawn(async move {
        for i in 0..100 {
            send::<R, _, _>(&tx, i).await.expect("send");
        }
    });
    let got: Vec<u64> = rx.collect().await;
    assert_eq!(got, (0..100).collect::<Vec<_>>());
    producer.await;
}

/// A receive abandoned mid-wait (a `Stream` poll or a timed-out receive) must not swallow the
/// wake-up of the receive that follows it.
pub async fn abandoned_receive_keeps_the_next_wakeup<R: Runtime, B: Backend>() {
    let (tx, mut rx) = channel::<u64, B>(1);
    // A stream poll whose waker goes nowhere, then abandoned.
    {
        let waker = futures::task::noop_waker();
        let mut cx = std::task::Context::from_waker(&waker);
        assert!(std::pin::Pin::new(&mut rx).poll_next(&mut cx).is_pending());
    }
    assert_eq!(
        recv_timeout::<R, _, _>(&mut rx, Duration::from_millis(1)).await,
        Err(RecvTimeoutError::Timeout)
    );
    // The sender stays alive: its going away would wake every waiter and hide a lost wake-up.
    let late = R::spawn(async move {
        sleep::<R>(Duration::from_millis(10)).await;
        (tx.try_send(7).is_ok(), tx)
    });
    assert_eq!(
        recv_timeout::<R, _, _>(&mut rx, Duration::from_secs(3)).await,
        Ok(7)
    );
    assert!(late.await.0);
}

/// Contract 2 and 8 under a race: the receiver goes away while producers are mid-send; every
/// message is received, handed back, or counted as discarded — exactly once.
pub async fn receiver_drop_racing_senders_counts_exactly<R: Runtime, B: Backend>() {
    let (tx, mut rx) = channel::<u64, B>(4);
    let producers: Vec<_> = (0..3u64)
        .map(|p| {
            let tx = tx.clone();
            R::spawn(async move {
                let (mut accepted, mut handed_back) = (0u64, 0u64);
                for i in 0.. {
                    match send::<R, _, _>(&tx, p * 1_000_000 + i).await {
                        Ok(()) => accepted += 1,
                        Err(SendError::Closed(_)) => {
                            handed_back += 1;
                            break;
                        }
                        Err(other) => panic!("unexpected {other}"),
                    }
                }
                (accepted, handed_back)
            })
        })
        .collect();
    let mut received = 0u64;
    for _ in 0..200 {
        recv::<R, _, _>(&mut rx).await.expect("recv");
        received += 1;
    }
    drop(rx);
    let mut accepted = 0;
    for producer in producers {
        let (ok, back) = producer.await;
        accepted += ok;
        assert_eq!(back, 1);
    }
    let stats = tx.stats();
    assert_eq!(stats.sent, accepted, "{stats:?}");
    assert_eq!(stats.received, received);
    assert_eq!(stats.closed_errors, 3);
    assert_counters_add_up(&stats);
}

/// Contract 8: a send that waited and was cancelled was never accepted, and `sent` never counts
/// it — also when the backend had already handed it the freed slot (tokio gives a waiting send
/// its permit as soon as a receive frees one).
pub async fn cancelled_send_is_never_counted<R: Runtime, B: Backend>() {
    let (tx, mut rx) = channel::<u64, B>(1);
    tx.try_send(0).expect("room");
    {
        let pending = tx.send(1);
        futures::pin_mut!(pending);
        assert!(futures::poll!(pending.as_mut()).is_pending());
        assert_eq!(rx.try_recv(), Ok(0));
        // A snapshot while the cancelled-to-be send may hold the freed slot.
        let during = rx.stats();
        assert!(during.sent <= 1, "{during:?}");
        let during = tx.stats();
        assert!(during.sent <= 1, "{during:?}");
    }
    let stats = tx.stats();
    assert_eq!((stats.sent, stats.received), (1, 1), "{stats:?}");
    assert_counters_add_up(&stats);
    // The slot is free again: the next send takes it.
    tx.try_send(2).expect("room after the cancelled send");
    assert_eq!(rx.try_recv(), Ok(2));
    let stats = rx.stats();
    assert_eq!((stats.sent, stats.received), (2, 2), "{stats:?}");
}

/// Contract 4, exact close: two senders race `close` and the drain; every send that returned
/// `Ok` is drained before `Closed`, and nothing is received after `Closed`.
pub async fn close_then_drain_loses_nothing<R: Runtime, B: Backend>() {
    for round in 0..100u64 {
        let (tx, mut rx) = channel::<u64, B>(64);
        let start = Arc::new(std::sync::Barrier::new(3));
        let senders: Vec<_> = (0..2u64)
            .map(|s| {
                let (tx, start) = (tx.clone(), Arc::clone(&start));
                std::thread::spawn(move || {
                    start.wait();
                    let mut accepted = Vec::new();
                    for i in 0..40 {
                        let msg = (s << 32) | i;
                        match tx.try_send(msg) {
                            Ok(()) => accepted.push(msg),
                            Err(TrySendError::Closed(_)) => break,
                            Err(TrySendError::Full(_)) => std::thread::yield_now(),
                        }
                    }
                    accepted
                })
            })
            .collect();
        start.wait();
        for _ in 0..round % 8 {
            std::hint::spin_loop();
        }
        rx.close();
        let mut drained = HashSet::new();
        loop {
            match rx.try_recv() {
                Ok(msg) => assert!(drained.insert(msg), "duplicate {msg}"),
                Err(TryRecvError::Empty) => std::thread::yield_now(),
                Err(TryRecvError::Closed) => break,
            }
        }
        let mut accepted = HashSet::new();
        for sender in senders {
            accepted.extend(sender.join().expect("sender"));
        }
        assert_eq!(
            rx.try_recv(),
            Err(TryRecvError::Closed),
            "received after Closed"
        );
        let missing: Vec<_> = accepted.difference(&drained).collect();
        assert!(
            missing.is_empty(),
            "round {round}: acknowledged but not drained before Closed: {missing:?}"
        );
        assert_eq!(drained.len(), accepted.len());
        drop(tx);
    }
}

/// The `Stream` is fused: after `None` it stays ended and says so.
pub async fn stream_is_fused<R: Runtime, B: Backend>() {
    use futures::stream::FusedStream;
    let (tx, mut rx) = channel::<u64, B>(2);
    tx.try_send(1).expect("room");
    drop(tx);
    assert!(!rx.is_terminated());
    assert_eq!(rx.next().await, Some(1));
    assert_eq!(rx.next().await, None);
    assert!(rx.is_terminated());
    assert_eq!(rx.next().await, None);
    assert_eq!(rx.try_recv(), Err(TryRecvError::Closed));
}

/// A waker that counts its wake-ups.
struct CountingWaker(std::sync::atomic::AtomicUsize);

impl std::task::Wake for CountingWaker {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// A `Stream` poll left pending keeps its wake-up when another receive (`try_recv`,
/// `recv_timeout`) follows it: the stream's task hears of the next message (or is woken to poll
/// again).
pub async fn stream_wait_survives_other_receives<R: Runtime, B: Backend>() {
    let (tx, mut rx) = channel::<u64, B>(2);
    for other_receive in ["try_recv", "recv_timeout"] {
        let counter = Arc::new(CountingWaker(std::sync::atomic::AtomicUsize::new(0)));
        let waker = std::task::Waker::from(Arc::clone(&counter));
        assert!(poll_stream(&mut rx, &waker).is_pending());
        match other_receive {
            "try_recv" => assert_eq!(rx.try_recv(), Err(TryRecvError::Empty)),
            _ => assert_eq!(
                recv_timeout::<R, _, _>(&mut rx, Duration::from_millis(1)).await,
                Err(RecvTimeoutError::Timeout)
            ),
        }
        tx.try_send(7).expect("room");
        assert!(
            counter.0.load(Ordering::SeqCst) >= 1,
            "after {other_receive}, the pending stream poll was never woken"
        );
        assert_eq!(
            poll_stream(&mut rx, &waker),
            std::task::Poll::Ready(Some(7))
        );
    }
    // A `try_recv` that takes the message a pending poll waited for: the push woke the poll,
    // and the stream waits and is woken as before afterwards.
    let counter = Arc::new(CountingWaker(std::sync::atomic::AtomicUsize::new(0)));
    let waker = std::task::Waker::from(Arc::clone(&counter));
    assert!(poll_stream(&mut rx, &waker).is_pending());
    tx.try_send(1).expect("room");
    assert_eq!(counter.0.load(Ordering::SeqCst), 1, "the push woke no one");
    assert_eq!(rx.try_recv(), Ok(1));
    assert!(poll_stream(&mut rx, &waker).is_pending());
    tx.try_send(2).expect("room");
    assert_eq!(
        counter.0.load(Ordering::SeqCst),
        2,
        "after a try_recv took a message, the stream's next wait was never woken"
    );
    assert_eq!(
        poll_stream(&mut rx, &waker),
        std::task::Poll::Ready(Some(2))
    );
}

/// One `Stream` poll with `waker` (a plain function, so no `Context` lives across an await).
fn poll_stream<T: Send + 'static, B: Backend>(
    rx: &mut boundflow::Receiver<T, B>,
    waker: &std::task::Waker,
) -> std::task::Poll<Option<T>> {
    std::pin::Pin::new(rx).poll_next(&mut std::task::Context::from_waker(waker))
}

/// A channel of `capacity` with `policy`.
fn with_policy<T: Send + 'static, B: Backend>(
    capacity: usize,
    policy: OverflowPolicy,
) -> Result<boundflow::ChannelPair<T, B>, BuildError> {
    ChannelBuilder::new(B::default(), "conformance.policy", capacity)
        .policy(policy)
        .build()
}

/// `block`: a send on a full channel waits until the consumer makes room, then succeeds.
pub async fn policy_block_waits_for_room<R: Runtime, B: Backend>() {
    let (tx, mut rx) = with_policy::<u64, B>(1, OverflowPolicy::Block).expect("channel");
    tx.try_send(1).expect("room");
    let consumer = R::spawn(async move {
        sleep::<R>(Duration::from_millis(20)).await;
        let first = recv::<R, _, _>(&mut rx).await;
        (first, rx)
    });
    let start = Instant::now();
    assert_eq!(send::<R, _, _>(&tx, 2).await, Ok(()));
    assert!(start.elapsed() >= Duration::from_millis(15), "did not wait");
    let (first, mut rx) = consumer.await;
    assert_eq!(first, Ok(1));
    assert_eq!(rx.try_recv(), Ok(2));
    let stats = tx.stats();
    assert_eq!(
        (stats.full_events, stats.sent, stats.timeouts),
        (1, 2, 0),
        "{stats:?}"
    );
}

/// `block`: a send blocked on a full channel fails with its message when the receiver closes.
pub async fn policy_block_fails_with_closed<R: Runtime, B: Backend>() {
    let (tx, mut rx) = with_policy::<Job, B>(1, OverflowPolicy::Block).expect("channel");
    tx.try_send(Job(1)).map_err(|_| "room").expect("room");
    let closer = R::spawn(async move {
        sleep::<R>(Duration::from_millis(20)).await;
        rx.close();
        rx
    });
    match send::<R, _, _>(&tx, Job(2)).await {
        Err(SendError::Closed(Job(2))) => {}
        other => panic!(
            "expected Closed(Job(2)), got {:?}",
            other.map_err(|e| e.to_string())
        ),
    }
    let mut rx = closer.await;
    assert!(matches!(rx.try_recv(), Ok(Job(1))));
    assert_eq!(rx.try_recv().map(|_| ()), Err(TryRecvError::Closed));
    assert_eq!(tx.stats().closed_errors, 1);
}

/// `timeout`: a send on a full channel waits the channel's timeout, then gives the message back.
pub async fn policy_timeout_gives_the_message_back<R: Runtime, B: Backend>() {
    let wait = Duration::from_millis(15);
    let (tx, _rx) = with_policy::<Job, B>(1, OverflowPolicy::Timeout(wait)).expect("channel");
    tx.try_send(Job(1)).map_err(|_| "room").expect("room");
    let start = Instant::now();
    match send::<R, _, _>(&tx, Job(2)).await {
        Err(SendError::Timeout(Job(2))) => {}
        other => panic!(
            "expected Timeout(Job(2)), got {:?}",
            other.map_err(|e| e.to_string())
        ),
    }
    assert!(start.elapsed() >= wait, "timed out early");
    let stats = tx.stats();
    assert_eq!(
        (stats.timeouts, stats.full_events, stats.sent),
        (1, 1, 1),
        "{stats:?}"
    );
}

/// `drop_newest`: a send on a full channel is refused at once with `Full(msg)` and counted.
pub async fn policy_drop_newest_refuses_and_counts<R: Runtime, B: Backend>() {
    let (tx, mut rx) = with_policy::<u64, B>(2, OverflowPolicy::DropNewest).expect("channel");
    let mut refused = Vec::new();
    for i in 0..5 {
        if let Err(err) = send::<R, _, _>(&tx, i).await {
            assert!(err.is_full());
            refused.push(err.into_inner());
        }
    }
    assert_eq!(refused, vec![2, 3, 4]);
    assert_eq!((rx.try_recv(), rx.try_recv()), (Ok(0), Ok(1)));
    let stats = rx.stats();
    assert_eq!(
        (stats.dropped_newest, stats.full_events, stats.sent),
        (3, 3, 2),
        "{stats:?}"
    );
}

/// `drop_oldest`: a send on a full channel evicts the oldest and queues the new one, so the
/// queue keeps the newest messages in order (refused at build time where the backend cannot).
pub async fn policy_drop_oldest_evicts_fifo<R: Runtime, B: Backend>() {
    let built = with_policy::<u64, B>(3, OverflowPolicy::DropOldest);
    if !B::default().supports_drop_oldest() {
        assert!(matches!(
            built,
            Err(BuildError::UnsupportedPolicy {
                policy: "drop_oldest",
                ..
            })
        ));
        return;
    }
    let (tx, mut rx) = built.expect("channel");
    for i in 0..10 {
        send::<R, _, _>(&tx, i)
            .await
            .expect("drop_oldest never refuses");
    }
    assert_eq!(tx.force_send(10), Ok(Some(7)));
    let kept: Vec<u64> = std::iter::from_fn(|| rx.try_recv().ok()).collect();
    assert_eq!(kept, vec![8, 9, 10]);
    let stats = rx.stats();
    assert_eq!(
        (stats.evicted, stats.sent, stats.received),
        (8, 11, 3),
        "{stats:?}"
    );
    assert_counters_add_up(&stats);
}

/// `drop_oldest`: one overflow is one full event (and one eviction), not two.
pub async fn policy_drop_oldest_counts_one_full_event<R: Runtime, B: Backend>() {
    let Ok((tx, _rx)) = with_policy::<u64, B>(1, OverflowPolicy::DropOldest) else {
        assert!(!B::default().supports_drop_oldest());
        return;
    };
    tx.try_send(0).expect("room");
    for i in 1..=4 {
        send::<R, _, _>(&tx, i).await.expect("evicts");
    }
    let stats = tx.stats();
    assert_eq!((stats.full_events, stats.evicted), (4, 4), "{stats:?}");
    assert_eq!(tx.force_send(5), Ok(Some(4)));
    let stats = tx.stats();
    assert_eq!((stats.full_events, stats.evicted), (5, 5), "{stats:?}");
}

/// `retry`: on a channel that stays full, `max_attempts` tries in all, then `Full(msg)`;
/// counted as one full event, the extra attempts, and one exhausted retry.
pub async fn policy_retry_gives_up_after_max_attempts<R: Runtime, B: Backend>() {
    let retry = RetryPolicy {
        max_attempts: 3,
        initial_backoff: Duration::from_millis(1),
        max_backoff: Duration::from_millis(2),
        ..RetryPolicy::default()
    };
    let (tx, mut rx) = with_policy::<Job, B>(1, OverflowPolicy::Retry(retry)).expect("channel");
    tx.try_send(Job(1)).map_err(|_| "room").expect("room");
    match send::<R, _, _>(&tx, Job(2)).await {
        Err(SendError::Full(Job(2))) => {}
        other => panic!(
            "expected Full(Job(2)), got {:?}",
            other.map_err(|e| e.to_string())
        ),
    }
    let stats = tx.stats();
    assert_eq!(
        (stats.retries, stats.full_events, stats.retries_exhausted),
        (2, 1, 1),
        "{stats:?}"
    );
    assert!(matches!(rx.try_recv(), Ok(Job(1))));
    assert!(send::<R, _, _>(&tx, Job(3)).await.is_ok());
}

/// `retry` with an overall deadline: on a channel that stays full, the deadline ends the send
/// long before its attempts run out — `Full(msg)`, never before the deadline, counted as one
/// exhausted retry and one wait at least that long.
pub async fn policy_retry_gives_up_at_its_deadline<R: Runtime, B: Backend>() {
    let deadline = Duration::from_millis(40);
    let retry = RetryPolicy {
        max_attempts: 1_000,
        initial_backoff: Duration::from_millis(5),
        max_backoff: Duration::from_millis(5),
        deadline: Some(deadline),
        ..RetryPolicy::default()
    };
    let (tx, mut rx) = with_policy::<Job, B>(1, OverflowPolicy::Retry(retry)).expect("channel");
    tx.try_send(Job(1)).map_err(|_| "room").expect("room");
    let started = std::time::Instant::now();
    match send::<R, _, _>(&tx, Job(2)).await {
        Err(SendError::Full(Job(2))) => {}
        other => panic!(
            "expected Full(Job(2)), got {:?}",
            other.map_err(|e| e.to_string())
        ),
    }
    assert!(started.elapsed() >= deadline, "gave up before the deadline");
    let stats = tx.stats();
    assert_eq!(stats.retries_exhausted, 1, "{stats:?}");
    // Each pause is at least 2.5 ms (half of 5 ms, jittered), so at most 16 retries fit before
    // the deadline, and one at it: the deadline, not `max_attempts` (999 retries), ended it.
    assert!((1..=17).contains(&stats.retries), "{stats:?}");
    assert_eq!(stats.send_wait.count, 1, "{stats:?}");
    assert!(stats.send_wait.sum >= deadline, "{stats:?}");
    assert!(matches!(rx.try_recv(), Ok(Job(1))));
}

/// `retry` with zero backoff still lets the consumer run between attempts (on a
/// current-thread runtime it shares the thread), so the send succeeds once room appears.
pub async fn policy_retry_yields_until_room_appears<R: Runtime, B: Backend>() {
    let retry = RetryPolicy {
        max_attempts: 1_000_000,
        initial_backoff: Duration::ZERO,
        max_backoff: Duration::ZERO,
        ..RetryPolicy::default()
    };
    let (tx, mut rx) = with_policy::<u64, B>(1, OverflowPolicy::Retry(retry)).expect("channel");
    tx.try_send(1).expect("room");
    let consumer = R::spawn(async move {
        let first = recv::<R, _, _>(&mut rx).await;
        let second = recv::<R, _, _>(&mut rx).await;
        (first, second)
    });
    assert_eq!(send::<R, _, _>(&tx, 2).await, Ok(()));
    assert_eq!(consumer.await, (Ok(1), Ok(2)));
    assert_eq!(tx.stats().retries_exhausted, 0);
}

/// `retry` with zero attempts is refused when the channel is built, with a typed error.
pub async fn policy_retry_refuses_zero_attempts<R: Runtime, B: Backend>() {
    let retry = RetryPolicy {
        max_attempts: 0,
        ..RetryPolicy::default()
    };
    let built = with_policy::<u64, B>(1, OverflowPolicy::Retry(retry));
    assert!(matches!(
        built,
        Err(BuildError::Retry(boundflow::RetryPolicyError::ZeroAttempts))
    ));
}

/// Every wait strategy moves everything, in order, between blocking threads on a channel that
/// is full or empty most of the time (capacity 1), and the channel reports its strategy.
pub async fn wait_strategies_deliver_everything<R: Runtime, B: Backend>() {
    use boundflow::WaitStrategy;
    for strategy in [
        WaitStrategy::Backoff,
        WaitStrategy::Park,
        WaitStrategy::Spin(Duration::from_micros(20)),
    ] {
        let (tx, mut rx) = ChannelBuilder::new(B::default(), "conformance.wait", 1)
            .wait_strategy(strategy)
            .build::<u64>()
            .expect("channel");
        assert_eq!(tx.wait_strategy(), strategy);
        let producer = std::thread::spawn(move || {
            for i in 0..300 {
                tx.send_blocking(i).expect("send_blocking");
            }
            tx.send_timeout_blocking(300, Duration::from_secs(10))
                .expect("send_timeout_blocking");
        });
        // Both ends on OS threads: blocking on this runtime's own thread may be refused.
        let consumer = std::thread::spawn(move || {
            for expected in 0..300 {
                assert_eq!(rx.recv_blocking(), Ok(expected), "{strategy}");
            }
            assert_eq!(rx.recv_timeout_blocking(Duration::from_secs(10)), Ok(300));
            rx
        });
        producer.join().expect("producer");
        let mut rx = consumer.join().expect("consumer");
        assert_eq!(rx.recv_blocking(), Err(RecvError::Closed));
    }
}
