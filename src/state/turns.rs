//! Turns at writing: a served create takes one before each of its holds of the store's
//! write lock, and a behaviour's answer before its one (see `Engine::answer` for why these).
//!
//! Waiting for the store's write lock blocks the worker thread, and with it every connection
//! that thread serves; a request waiting for its turn instead lets its worker answer other
//! connections. A turn that comes free goes to whichever request asks first, a running one
//! included, rather than being handed to the longest waiter: handing it over would leave
//! it unused until that waiter's thread gets to run it.

use std::pin::pin;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::Notify;

#[derive(Default)]
pub struct Turns {
    taken: AtomicBool,
    freed: Notify,
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
            freed.await;
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
                    done.fetch_add(1, Ordering::SeqCst);
                }
            }));
        }
        for t in tasks {
            t.await.expect("a task panicked");
        }
        assert_eq!(done.load(Ordering::SeqCst), 32 * 200);
    }
}
