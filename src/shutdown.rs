//! Stopping: Ctrl-C or SIGTERM cancels one token; every task watches it and the process waits
//! (bounded) for them to finish.

/// Resolves on Ctrl-C or SIGTERM.
pub async fn signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut sigterm) => {
                sigterm.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}

use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// The order things stop in: first the work (listeners stop accepting, command queues stop
/// between commands, the command in flight finishes or times out), then, once the work is done
/// or 5 s have passed, the MQTT sessions, so that the last results and the bridge's `offline`
/// still reach the broker.
#[derive(Debug, Clone)]
pub struct Lifecycle {
    /// Cancelled when stopping starts.
    pub work: CancellationToken,
    /// Every task that does work.
    pub work_tracker: TaskTracker,
    /// Cancelled once the work has finished: the MQTT sessions say goodbye.
    pub sessions: CancellationToken,
    /// The MQTT session tasks.
    pub session_tracker: TaskTracker,
    /// Restarts long-lived tasks that panic; its fatal token stops the process.
    pub supervisor: crate::supervise::Supervisor,
}

impl Lifecycle {
    /// Ties the order to `shutdown`; every task ends up on `tracker`.
    pub fn new(
        shutdown: &CancellationToken,
        tracker: &TaskTracker,
        supervisor: crate::supervise::Supervisor,
    ) -> Lifecycle {
        let lifecycle = Lifecycle {
            supervisor,
            work: shutdown.clone(),
            work_tracker: TaskTracker::new(),
            sessions: CancellationToken::new(),
            session_tracker: tracker.clone(),
        };
        let order = lifecycle.clone();
        tracker.spawn(async move {
            order.work.cancelled().await;
            order.work_tracker.close();
            if tokio::time::timeout(Duration::from_secs(5), order.work_tracker.wait())
                .await
                .is_err()
            {
                tracing::warn!("Some work did not stop within 5 s.");
            }
            order.sessions.cancel();
        });
        lifecycle
    }
}
