//! Stopping: Ctrl-C or SIGTERM cancels one token; every task watches it and the process waits
//! (bounded) for them to finish.

/// Resolves on Ctrl-C or SIGTERM.
pub async fn signal() {
    listen().await
}

/// Starts listening for Ctrl-C and SIGTERM at once (from then on they no longer kill the
/// process); the future resolves on either.
pub fn listen() -> impl std::future::Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    let handlers = {
        use tokio::signal::unix::{signal, SignalKind};
        (
            signal(SignalKind::terminate()).ok(),
            signal(SignalKind::interrupt()).ok(),
        )
    };
    async move {
        #[cfg(unix)]
        {
            let (terminate, interrupt) = handlers;
            let on = |handler: Option<tokio::signal::unix::Signal>| async move {
                match handler {
                    Some(mut handler) => {
                        handler.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                () = on(terminate) => {}
                () = on(interrupt) => {}
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// How long the work has to stop: queued commands are answered at once, the ones in flight
/// finish, time out or are cut short within it.
pub const WORK_DEADLINE: Duration = Duration::from_secs(5);

/// How long stopping takes at most: the work, then the MQTT sessions sending what their
/// outboxes hold (`mqtt::DRAIN`), then their goodbye (2 s).
pub const STOP_DEADLINE: Duration =
    Duration::from_secs(WORK_DEADLINE.as_secs() + crate::mqtt::DRAIN.as_secs() + 3);

/// The order things stop in: first the work (listeners stop accepting, queued commands are
/// answered, the commands in flight finish or are cut short), then, once the work is done or
/// [`WORK_DEADLINE`] has passed, the MQTT sessions, which send what their outboxes still hold
/// (the last results) before the bridge's `offline`.
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
            if tokio::time::timeout(WORK_DEADLINE, order.work_tracker.wait())
                .await
                .is_err()
            {
                tracing::warn!(deadline = ?WORK_DEADLINE, "Some work did not stop in time.");
            }
            order.sessions.cancel();
        });
        lifecycle
    }
}
