//! The threads that serve callers' connections: one single-threaded runtime per thread, each
//! connection handed to one of them when accepted and served there to its end.
//!
//! Tokio's work-stealing runtime wakes an idle worker whenever another finds work, so at a
//! few thousand requests a second every request woke two threads (the one that read it and
//! one that looked for work to steal), and the wake-ups cost more CPU than the request
//! itself. A connection that stays on one thread, with that thread's own pool of upstream
//! connections, wakes only that thread: the bench's bare proxy halves its CPU a request at
//! low rates this way (docs/performance.md). Work is spread by connection, which callers
//! keep alive, not by request; a new connection goes to the thread serving the fewest.

use std::cell::Cell;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::mpsc;

/// A connection to start serving, run on the worker's runtime.
type Job = Box<dyn FnOnce() + Send>;

thread_local! {
    /// Which worker this thread is, `None` off the workers (the gateway's own runtime).
    static CURRENT: Cell<Option<usize>> = const { Cell::new(None) };
}

/// The worker the calling thread is, if it is one: what picks a per-worker resource (the
/// upstream connection pool) without a lock.
pub fn current() -> Option<usize> {
    CURRENT.with(Cell::get)
}

/// The serving threads. Dropping it lets each thread end once its queue is empty; what its
/// runtime still runs then is cut, so it is dropped after every connection has closed and
/// every background task has been drained.
pub struct Workers {
    queues: Vec<mpsc::UnboundedSender<Job>>,
    /// Connections each worker is serving.
    serving: Arc<[AtomicUsize]>,
}

#[derive(Debug, thiserror::Error)]
#[error("cannot start the gateway's serving threads: {0}")]
pub struct WorkersError(#[from] std::io::Error);

impl Workers {
    /// `count` threads, each with a single-threaded runtime.
    pub fn start(count: usize) -> Result<Workers, WorkersError> {
        let count = count.max(1);
        let serving: Arc<[AtomicUsize]> = (0..count).map(|_| AtomicUsize::new(0)).collect();
        let mut queues = Vec::with_capacity(count);
        for index in 0..count {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let (queue, mut jobs) = mpsc::unbounded_channel::<Job>();
            std::thread::Builder::new()
                .name(format!("tramontane-worker-{index}"))
                .spawn(move || {
                    CURRENT.with(|current| current.set(Some(index)));
                    runtime.block_on(async move {
                        while let Some(job) = jobs.recv().await {
                            job();
                        }
                    });
                })?;
            queues.push(queue);
        }
        Ok(Workers { queues, serving })
    }

    /// How many threads serve.
    pub fn count(&self) -> usize {
        self.queues.len()
    }

    /// The number of threads `requested`, or one per core.
    pub fn default_count(requested: Option<usize>) -> usize {
        requested
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
            .max(1)
    }

    /// Runs `serve` on the worker serving the fewest connections, inside its runtime (so
    /// what it spawns runs there too); the worker counts it as serving until the returned
    /// future completes. Returns whether a worker took it: not once the workers stopped.
    pub fn dispatch<F, Fut>(&self, serve: F) -> bool
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let index = (0..self.serving.len())
            .min_by_key(|&index| self.serving[index].load(Ordering::Relaxed))
            .unwrap_or(0);
        let serving = self.serving.clone();
        serving[index].fetch_add(1, Ordering::Relaxed);
        let job: Job = Box::new(move || {
            let future = serve();
            tokio::spawn(async move {
                future.await;
                serving[index].fetch_sub(1, Ordering::Relaxed);
            });
        });
        if self.queues[index].send(job).is_err() {
            self.serving[index].fetch_sub(1, Ordering::Relaxed);
            return false;
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_are_served_on_the_least_busy_worker_and_know_which_it_is() {
        let workers = Workers::start(2).unwrap();
        assert_eq!(workers.count(), 2);
        assert_eq!(current(), None, "the caller's thread is no worker");
        let (seen, ran) = std::sync::mpsc::channel();
        let (release, held) = tokio::sync::watch::channel(false);
        for _ in 0..4 {
            let seen = seen.clone();
            let mut held = held.clone();
            assert!(workers.dispatch(move || async move {
                let _ = seen.send(current());
                // Still serving until released: the next connection goes to the other one.
                let _ = held.wait_for(|released| *released).await;
            }));
        }
        let mut on: Vec<Option<usize>> = (0..4)
            .map(|_| ran.recv_timeout(std::time::Duration::from_secs(5)).unwrap())
            .collect();
        on.sort();
        assert_eq!(on, [Some(0), Some(0), Some(1), Some(1)]);
        let _ = release.send(true);
        for _ in 0..500 {
            if workers
                .serving
                .iter()
                .all(|n| n.load(Ordering::Relaxed) == 0)
            {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        assert!(
            workers
                .serving
                .iter()
                .all(|n| n.load(Ordering::Relaxed) == 0)
        );
    }

    #[test]
    fn stopped_workers_take_nothing() {
        let workers = Workers::start(1).unwrap();
        let queue = workers.queues[0].clone();
        drop(workers);
        // The thread ends once every sender is gone.
        drop(queue);
        let workers = Workers {
            queues: vec![mpsc::unbounded_channel().0],
            serving: Arc::from([AtomicUsize::new(0)]),
        };
        assert!(!workers.dispatch(|| async {}));
    }
}
