//! Turns at writing: a served create takes one before each of its holds of the store's
//! write lock, and a behaviour's answer before its one (see `Engine::answer` for why these).
//!
//! Waiting for the store's write lock blocks the worker thread, and with it every connection
//! that thread serves; a request waiting for its turn instead lets its worker answer other
//! connections. A turn that comes free goes to whichever request asks first, a running one
//! included, rather than being handed to the longest waiter: handing it over would leave
//! it unused until that waiter's thread gets to run it. A request that gives a turn back
//! while another waits yields once ([`Turns::hand_over`]), so the waiter it woke runs
//! before the rest of this request does.

use std::pin::pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use tokio::sync::Notify;

#[derive(Default)]
pub struct Turns {
    taken: AtomicBool,
    freed: Notify,
    /// Requests waiting for a turn.
    waiting: AtomicUsize,
}

/// Counts a request as waiting for as long as it lives (a request dropped while it waits
/// is counted out too).
struct Waiting<'a>(&'a AtomicUsize);

impl<'a> Waiting<'a> {
    fn new(count: &'a AtomicUsize) -> Self {
        count.fetch_add(1, Ordering::Relaxed);
        Self(count)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A turn, given back when dropped.
pub struct Turn<'a>(&'a Turns);

impl Turns {
    /// Waits for a turn.
    pub async fn take(&self) -> Turn<'_> {
        loop {
            if self.try_take() {
                return Turn(self);
            }
            let mut freed = pin!(self.freed.notified());
            // Listening before looking again: a turn given back in between wakes us.
            freed.as_mut().enable();
            if self.try_take() {
                return Turn(self);
            }
            let _waiting = Waiting::new(&self.waiting);
            freed.await;
        }
    }

    /// Lets a request that waited for the turn just given back take it now, when one
    /// waits. Its wake-up went to this thread's next-task slot, which no other thread may
    /// take; without yielding, the turn would stay unused while this request finishes
    /// answering (its response written, its exchange journaled), however idle the other
    /// thread. Yielding runs the waiter first and leaves the rest of this request to
    /// whichever thread is free.
    pub async fn hand_over(&self) {
        if self.waiting.load(Ordering::Relaxed) > 0 {
            tokio::task::yield_now().await;
        }
    }

    fn try_take(&self) -> bool {
        self.taken
            .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
    }
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        self.0.taken.store(false, Ordering::Release);
        // One waiter looks again; if another request took the turn first, its own release
        // wakes the next.
        self.0.freed.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::AtomicUsize;

    use super::*;

    /// Many tasks on several threads, each holding a turn across a yield: never two at once,
    /// and every task gets its turns (none is left waiting while the turn is free).
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn one_at_a_time_and_nobody_stranded() {
        let turns = Arc::new(Turns::default());
        let inside = Arc::new(AtomicUsize::new(0));
        let done = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..32 {
            let (turns, inside, done) = (turns.clone(), inside.clone(), done.clone());
            tasks.push(tokio::spawn(async move {
                for _ in 0..200 {
                    let turn = turns.take().await;
                    assert_eq!(
                        inside.fetch_add(1, Ordering::SeqCst),
                        0,
                        "two turns at once"
                    );
                    tokio::task::yield_now().await;
                    inside.fetch_sub(1, Ordering::SeqCst);
                    drop(turn);
                    turns.hand_over().await;
                    done.fetch_add(1, Ordering::SeqCst);
                }
            }));
        }
        for t in tasks {
            t.await.expect("a task panicked");
        }
        assert_eq!(done.load(Ordering::SeqCst), 32 * 200);
    }

    /// A request dropped while it waits for a turn (its client went away) is no longer
    /// counted as waiting, so those that give turns back stop yielding for it.
    #[tokio::test]
    async fn a_waiter_that_goes_away_is_not_counted() {
        let turns = Arc::new(Turns::default());
        let held = turns.take().await;
        let waiter = {
            let turns = turns.clone();
            tokio::spawn(async move {
                let _turn = turns.take().await;
            })
        };
        for _ in 0..10_000 {
            if turns.waiting.load(Ordering::SeqCst) > 0 {
                break;
            }
            tokio::task::yield_now().await;
        }
        assert_eq!(
            turns.waiting.load(Ordering::SeqCst),
            1,
            "the waiter is counted"
        );
        waiter.abort();
        assert!(waiter.await.is_err_and(|e| e.is_cancelled()));
        assert_eq!(turns.waiting.load(Ordering::SeqCst), 0);
        drop(held);
    }
}
