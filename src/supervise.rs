//! Supervision: no long-lived task dies alone. A panic in a supervised task is caught, logged
//! with its cause and the task's name, counted (`phone2mqtt_task_panics_total{task}`), and the
//! task is started again after a backoff. A task that panics more than [`Policy::restarts`]
//! times within [`Policy::window`], or one that cannot be started again, cancels the fatal
//! token: the process then stops and exits with [`FATAL_EXIT_CODE`], so that a service manager
//! starts it afresh.

use std::any::Any;
use std::collections::VecDeque;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt;
use tokio::sync::{mpsc, Mutex};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::error;

use crate::metrics::Metrics;

/// The exit code of a process whose task kept panicking (or could not restart). 70 is
/// `EX_SOFTWARE` of sysexits.h: an internal error.
pub const FATAL_EXIT_CODE: u8 = 70;

/// The error `main` ends with when the fatal token was cancelled.
#[derive(Debug, thiserror::Error)]
#[error("a task kept panicking; exiting so that the service manager starts phone2mqtt again")]
pub struct Fatal;

/// How often a task may panic before the process gives up on it.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    /// Restarts allowed within `window`; one more panic is fatal.
    pub restarts: usize,
    pub window: Duration,
    /// The wait before the first restart, doubled after each one up to `max_backoff`.
    pub backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            restarts: 5,
            window: Duration::from_secs(60),
            backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(5),
        }
    }
}

/// Spawns supervised tasks; one per gateway, cloned into whoever spawns.
#[derive(Debug, Clone)]
pub struct Supervisor {
    metrics: Arc<Metrics>,
    fatal: CancellationToken,
    policy: Policy,
}

impl Supervisor {
    pub fn new(metrics: Arc<Metrics>) -> Supervisor {
        Supervisor::with_policy(metrics, Policy::default())
    }

    pub fn with_policy(metrics: Arc<Metrics>, policy: Policy) -> Supervisor {
        Supervisor {
            metrics,
            fatal: CancellationToken::new(),
            policy,
        }
    }

    /// Cancelled when a task kept panicking: the process should exit with [`FATAL_EXIT_CODE`].
    pub fn fatal(&self) -> &CancellationToken {
        &self.fatal
    }

    /// Runs the future `start` makes on `tracker`, and a new one after each panic.
    pub fn spawn<F, Fut>(&self, tracker: &TaskTracker, task: &'static str, start: F)
    where
        F: FnMut() -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        // Shown on `/metrics` at 0 from the start, for a scraper to read.
        let _ = self.metrics.panics(task);
        tracker.spawn(self.clone().run(task, start));
    }

    /// A task that cannot be started again (it owns what it works on): a panic is logged,
    /// counted and fatal.
    pub fn spawn_once<Fut>(&self, tracker: &TaskTracker, task: &'static str, future: Fut)
    where
        Fut: Future<Output = ()> + Send + 'static,
    {
        let _ = self.metrics.panics(task);
        let supervisor = self.clone();
        tracker.spawn(async move {
            if let Err(panic) = AssertUnwindSafe(future).catch_unwind().await {
                supervisor.caught(task, &panic);
                error!(
                    task,
                    "The task cannot be restarted; the process stops so that it is started again."
                );
                supervisor.fatal.cancel();
            }
        });
    }

    /// Runs `start`'s futures until one ends without panicking, or panics are too frequent.
    pub async fn run<F, Fut>(self, task: &'static str, mut start: F)
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = ()>,
    {
        let mut panics: VecDeque<Instant> = VecDeque::new();
        let mut backoff = self.policy.backoff;
        loop {
            let Err(panic) = AssertUnwindSafe(start()).catch_unwind().await else {
                return;
            };
            self.caught(task, &panic);
            let now = Instant::now();
            panics.push_back(now);
            while panics
                .front()
                .is_some_and(|at| now.duration_since(*at) > self.policy.window)
            {
                panics.pop_front();
            }
            if panics.len() > self.policy.restarts {
                error!(
                    task,
                    panics = panics.len(),
                    window_secs = self.policy.window.as_secs(),
                    "The task keeps panicking; the process stops so that it is started again."
                );
                self.fatal.cancel();
                return;
            }
            tracing::warn!(task, after_ms = backoff.as_millis(), "Restarting the task.");
            tokio::select! {
                () = tokio::time::sleep(backoff) => {}
                () = self.fatal.cancelled() => return,
            }
            backoff = (backoff * 2).min(self.policy.max_backoff);
        }
    }

    /// Logs and counts a panic caught in `task` (by the supervisor, or by a task that goes on
    /// itself, as the dispatcher does after a message).
    pub fn caught(&self, task: &str, panic: &(dyn Any + Send)) {
        let cause = panic_message(panic);
        error!(task, cause = %cause, "A task panicked.");
        self.metrics.panicked(task);
    }
}

/// What a panic said: its message when it is text.
pub fn panic_message(panic: &(dyn Any + Send)) -> String {
    if let Some(text) = panic.downcast_ref::<&'static str>() {
        (*text).to_string()
    } else if let Some(text) = panic.downcast_ref::<String>() {
        text.clone()
    } else {
        "a panic without a message".to_string()
    }
}

/// A channel's receiver that outlives the task reading it: each (re)start of the task takes a
/// fresh receiver fed from the one kept here. What the dead task had taken but not handled is
/// lost; what was still in the kept channel is not.
#[derive(Debug)]
pub struct Relay<T> {
    source: Arc<Mutex<mpsc::UnboundedReceiver<T>>>,
}

impl<T> Clone for Relay<T> {
    fn clone(&self) -> Self {
        Relay {
            source: self.source.clone(),
        }
    }
}

impl<T: Send + 'static> Relay<T> {
    pub fn new(source: mpsc::UnboundedReceiver<T>) -> Relay<T> {
        Relay {
            source: Arc::new(Mutex::new(source)),
        }
    }

    /// The kept receiver itself, for a task that reads it directly (nothing is lost then).
    pub async fn lock(&self) -> tokio::sync::MutexGuard<'_, mpsc::UnboundedReceiver<T>> {
        self.source.lock().await
    }

    /// Runs `task` with a receiver fed from the kept one until `task` ends; the receiver ends
    /// when the kept one does. For tasks that take a receiver of their own.
    pub async fn run<Fut>(&self, task: impl FnOnce(mpsc::UnboundedReceiver<T>) -> Fut)
    where
        Fut: Future<Output = ()>,
    {
        let (tx, rx) = mpsc::unbounded_channel();
        let source = self.source.clone();
        let forward = async move {
            let mut source = source.lock().await;
            while let Some(item) = source.recv().await {
                if tx.send(item).is_err() {
                    break;
                }
            }
            drop(tx);
            std::future::pending::<()>().await;
        };
        tokio::select! {
            () = task(rx) => {}
            () = forward => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn quick(restarts: usize) -> Policy {
        Policy {
            restarts,
            window: Duration::from_secs(60),
            backoff: Duration::from_millis(1),
            max_backoff: Duration::from_millis(2),
        }
    }

    #[tokio::test]
    async fn a_panicking_task_is_restarted_and_counted() {
        let metrics = Arc::new(Metrics::new());
        let supervisor = Supervisor::with_policy(metrics.clone(), quick(5));
        let runs = Arc::new(AtomicUsize::new(0));
        let counted = runs.clone();
        supervisor
            .clone()
            .run("flaky", move || {
                let runs = counted.clone();
                async move {
                    // Panics twice, then ends normally.
                    if runs.fetch_add(1, Ordering::SeqCst) < 2 {
                        panic!("flaky failed");
                    }
                }
            })
            .await;
        assert_eq!(runs.load(Ordering::SeqCst), 3);
        assert_eq!(metrics.panics("flaky"), 2);
        assert!(!supervisor.fatal().is_cancelled());
    }

    #[tokio::test]
    async fn a_task_that_keeps_panicking_is_fatal() {
        let metrics = Arc::new(Metrics::new());
        let supervisor = Supervisor::with_policy(metrics.clone(), quick(3));
        supervisor
            .clone()
            .run("doomed", || async {
                let values: Vec<u8> = Vec::new();
                let _ = values[usize::from(values.is_empty())];
            })
            .await;
        assert!(supervisor.fatal().is_cancelled());
        // Three restarts, then the fourth panic gives up.
        assert_eq!(metrics.panics("doomed"), 4);
    }

    #[tokio::test]
    async fn a_task_that_cannot_restart_is_fatal() {
        let metrics = Arc::new(Metrics::new());
        let supervisor = Supervisor::with_policy(metrics.clone(), quick(3));
        let tracker = TaskTracker::new();
        supervisor.spawn_once(&tracker, "session", async { panic!("lost") });
        tracker.close();
        tracker.wait().await;
        assert!(supervisor.fatal().is_cancelled());
        assert_eq!(metrics.panics("session"), 1);
    }

    #[tokio::test]
    async fn a_relayed_receiver_survives_the_task_that_read_it() {
        let metrics = Arc::new(Metrics::new());
        let supervisor = Supervisor::with_policy(metrics.clone(), quick(5));
        let (tx, rx) = mpsc::unbounded_channel::<u32>();
        let relay = Relay::new(rx);
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let tracker = TaskTracker::new();
        let (relay2, seen2) = (relay.clone(), seen.clone());
        supervisor.spawn(&tracker, "reader", move || {
            let (relay, seen) = (relay2.clone(), seen2.clone());
            async move {
                relay
                    .run(|mut rx| async move {
                        while let Some(n) = rx.recv().await {
                            if n == 2 {
                                panic!("two");
                            }
                            seen.lock().unwrap().push(n);
                        }
                    })
                    .await
            }
        });
        tx.send(1).unwrap();
        tx.send(2).unwrap();
        while metrics.panics("reader") == 0 {
            tokio::task::yield_now().await;
        }
        tx.send(3).unwrap();
        drop(tx);
        tracker.close();
        tracker.wait().await;
        assert_eq!(*seen.lock().unwrap(), vec![1, 3]);
        assert_eq!(metrics.panics("reader"), 1);
    }
}
