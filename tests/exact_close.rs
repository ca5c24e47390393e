//! Exact close, deterministically: a test queue whose next push stalls on a barrier *after* the
//! adaptor's closed check, while the receiver closes and drains. Without the announcement
//! protocol (`boundflow_core::notified`, "Close"), the receiver reports `Closed` while the
//! acknowledged push is still landing.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::collections::VecDeque;
use std::sync::{Arc, Barrier, Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::Duration;

use boundflow::notified::{Notified, TryQueue};
use boundflow::{ChannelBuilder, RecvTimeoutError, TryRecvError, TrySendError};

/// What the next push does once it has reached the queue.
#[derive(Clone)]
struct Stall {
    /// The push waits here (the test knows it is past the closed check)...
    reached: Arc<Barrier>,
    /// ...and here, until the test lets it go on.
    release: Arc<Barrier>,
    /// Whether the stalled push then reports the queue full instead of pushing.
    then_full: bool,
    /// Pushes to let through before the one that stalls.
    skip: usize,
}

/// The stall armed for the next push. One test at a time arms it (`serial`).
static NEXT_PUSH: Mutex<Option<Stall>> = Mutex::new(None);
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(PoisonError::into_inner)
}

fn arm(then_full: bool, skip: usize) -> Stall {
    let stall = Stall {
        reached: Arc::new(Barrier::new(2)),
        release: Arc::new(Barrier::new(2)),
        then_full,
        skip,
    };
    *NEXT_PUSH.lock().unwrap() = Some(stall.clone());
    stall
}

/// A bounded queue behind a mutex, with the stall hook in `push`.
#[derive(Debug, Clone, Copy, Default)]
struct StallQueue;

struct Queue<T> {
    items: Mutex<VecDeque<T>>,
    capacity: usize,
}

impl<T> Queue<T> {
    fn items(&self) -> MutexGuard<'_, VecDeque<T>> {
        self.items.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl TryQueue for StallQueue {
    type Tx<T: Send + 'static> = Arc<Queue<T>>;
    type Rx<T: Send + 'static> = Arc<Queue<T>>;

    const NAME: &'static str = "stall_queue";

    fn bounded<T: Send + 'static>(capacity: usize) -> (Arc<Queue<T>>, Arc<Queue<T>>) {
        let queue = Arc::new(Queue {
            items: Mutex::new(VecDeque::new()),
            capacity,
        });
        (Arc::clone(&queue), queue)
    }

    fn push<T: Send + 'static>(tx: &Arc<Queue<T>>, msg: T) -> Result<(), TrySendError<T>> {
        let stall = {
            let mut next = NEXT_PUSH.lock().unwrap();
            match next.as_mut() {
                Some(armed) if armed.skip > 0 => {
                    armed.skip -= 1;
                    None
                }
                _ => next.take(),
            }
        };
        if let Some(stall) = stall {
            stall.reached.wait();
            stall.release.wait();
            if stall.then_full {
                return Err(TrySendError::Full(msg));
            }
        }
        let mut items = tx.items();
        if items.len() >= tx.capacity {
            return Err(TrySendError::Full(msg));
        }
        items.push_back(msg);
        Ok(())
    }

    fn pop<T: Send + 'static>(rx: &Arc<Queue<T>>) -> Option<T> {
        rx.items().pop_front()
    }

    fn len<T: Send + 'static>(rx: &Arc<Queue<T>>) -> usize {
        rx.items().len()
    }
}

fn channel(capacity: usize) -> boundflow::ChannelPair<u64, Notified<StallQueue>> {
    ChannelBuilder::new(Notified(StallQueue), "exact_close.test", capacity)
        .policy(boundflow::OverflowPolicy::DropOldest)
        .build()
        .unwrap()
}

/// A push past the closed check when `close` runs is drained before `Closed`.
#[test]
fn a_push_past_the_closed_check_is_drained_before_closed() {
    let _serial = serial();
    let (tx, mut rx) = channel(4);
    let stall = arm(false, 0);
    let sender = thread::spawn(move || tx.try_send(1));
    stall.reached.wait();
    rx.close();
    assert_eq!(
        rx.try_recv(),
        Err(TryRecvError::Empty),
        "Closed reported while an acknowledged push was still landing"
    );
    stall.release.wait();
    assert_eq!(sender.join().unwrap(), Ok(()));
    assert_eq!(rx.try_recv(), Ok(1));
    assert_eq!(rx.try_recv(), Err(TryRecvError::Closed));
    let stats = rx.stats();
    assert_eq!((stats.sent, stats.received), (1, 1));
}

/// A receiver that waits for a push still landing after `close` is woken by it.
#[test]
fn a_waiting_receiver_is_woken_by_the_push_that_lands() {
    let _serial = serial();
    let (tx, mut rx) = channel(4);
    let stall = arm(false, 0);
    let sender = thread::spawn(move || tx.try_send(2));
    stall.reached.wait();
    rx.close();
    let receiver = thread::spawn(move || {
        let first = rx.recv_timeout_blocking(Duration::from_secs(10));
        (first, rx.try_recv())
    });
    thread::sleep(Duration::from_millis(20));
    stall.release.wait();
    assert_eq!(sender.join().unwrap(), Ok(()));
    assert_eq!(receiver.join().unwrap(), (Ok(2), Err(TryRecvError::Closed)));
}

/// An announced push that queues nothing (the queue was full) still wakes a receiver waiting
/// for it after `close`, which then sees `Closed` — it does not hang.
#[test]
fn an_announced_push_that_fails_wakes_the_receiver() {
    let _serial = serial();
    let (tx, mut rx) = channel(4);
    let stall = arm(true, 0);
    let sender = thread::spawn(move || tx.try_send(3));
    stall.reached.wait();
    rx.close();
    let receiver = thread::spawn(move || rx.recv_timeout_blocking(Duration::from_secs(10)));
    thread::sleep(Duration::from_millis(20));
    stall.release.wait();
    assert_eq!(sender.join().unwrap(), Err(TrySendError::Full(3)));
    assert_eq!(receiver.join().unwrap(), Err(RecvTimeoutError::Closed));
}

/// `drop_oldest` keeps its announcement across the eviction and the push: the message that
/// took the evicted one's slot is drained, not stranded after `Closed`.
#[test]
fn force_send_racing_close_strands_no_eviction() {
    let _serial = serial();
    let (tx, mut rx) = channel(1);
    tx.try_send(10).unwrap();
    // The first push (the full first try) goes through; the second, after the eviction, stalls.
    let stall = arm(false, 1);
    let sender = thread::spawn(move || {
        let evicted = tx.force_send(11);
        (evicted, tx)
    });
    stall.reached.wait();
    rx.close();
    assert_eq!(
        rx.try_recv(),
        Err(TryRecvError::Empty),
        "Closed reported between an eviction and the push it made room for"
    );
    stall.release.wait();
    let (evicted, tx) = sender.join().unwrap();
    assert_eq!(evicted, Ok(Some(10)));
    assert_eq!(rx.try_recv(), Ok(11));
    assert_eq!(rx.try_recv(), Err(TryRecvError::Closed));
    let stats = tx.stats();
    assert_eq!((stats.sent, stats.received, stats.evicted), (2, 1, 1));
}
