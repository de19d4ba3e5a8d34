//! One command queue per phone: commands run one at a time, in order, each with a timeout, and
//! every one ends in a result. The HTTP exchange with the phone is `exchange`'s; what to send and
//! how to read the answer is the vendor's.
//!
//! A bounded set of runner tasks ([`PHONES_AT_ONCE`]) takes the phones with waiting commands in
//! turn, one command at a time, so a phone costs nothing while it has no command, and a command
//! to a group of 10,000 phones does not open 10,000 connections at once.

use std::collections::{HashMap, HashSet, VecDeque};
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex, MutexGuard};

use futures_util::FutureExt;

use tracing::{debug, info, warn};

use crate::agent::Shared;
use crate::command::CommandError;
use crate::metrics::Limit;
use crate::model::{Command, CommandResult, PhoneId};
use crate::phone_vendors::ReplyOutcome;

use super::exchange::send_command;

/// Commands waiting for one phone, at most.
const QUEUE_DEPTH: usize = 64;

/// Phones the agent talks to at once. Unbounded, a command to a group of 10,000 phones opens
/// 10,000 connections at once (100 MB of buffers, and more file descriptors than a process gets
/// by default); with 256, phones answering in 50 ms take 2 s for 10,000.
pub const PHONES_AT_ONCE: usize = 256;

/// How long a command in flight may go on once the agent is stopping: within the work's
/// deadline (`shutdown::WORK_DEADLINE`), so that its result is out before the sessions close.
const IN_FLIGHT_AT_STOP: std::time::Duration = std::time::Duration::from_secs(4);

/// A command on its way to a phone.
#[derive(Debug)]
pub struct Job {
    pub command: Command,
    /// The phone reference the caller used; the result goes back under it.
    pub reply_to: String,
    pub transaction: Option<String>,
    /// Internal polls publish no result.
    pub internal: bool,
    /// Also told the outcome (a reminder learns whether its phone showed it); dropped unsent
    /// when the job never ran (the gateway stopped first).
    pub reply: Option<tokio::sync::oneshot::Sender<Result<CommandResult, CommandError>>>,
}

/// The per-phone queues and the runners that work them off.
#[derive(Debug, Default)]
pub struct Queues {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    /// Commands waiting, by phone; a phone is here only while it has some.
    waiting: HashMap<PhoneId, VecDeque<Job>>,
    /// Phones with commands waiting and none running, in turn.
    ready: VecDeque<PhoneId>,
    /// Phones with a command running.
    running: HashSet<PhoneId>,
    /// Runner tasks alive; each runs one command at a time.
    runners: usize,
    /// Stopping: nothing is queued any more.
    closed: bool,
    /// Jobs waiting over all phones (`queue_depth{queue="commands"}`).
    queued: usize,
}

impl Queues {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues a job, or hands it back with the reason it could not be queued.
    pub fn submit(
        &self,
        shared: &Arc<Shared>,
        id: &PhoneId,
        job: Job,
    ) -> Result<(), Box<(Job, CommandError)>> {
        let mut inner = self.lock();
        if inner.closed || shared.shutdown.is_cancelled() {
            return Err(Box::new((job, CommandError::ShuttingDown)));
        }
        let queue = inner.waiting.entry(id.clone()).or_default();
        if queue.len() >= QUEUE_DEPTH {
            shared.metrics.refused(Limit::command_queue);
            return Err(Box::new((job, CommandError::QueueFull)));
        }
        queue.push_back(job);
        let first = queue.len() == 1;
        inner.queued += 1;
        shared.metrics.queue_depth("commands", inner.queued);
        // A phone is ready once, however many commands wait for it; a running one comes back
        // in turn when its command is done.
        if first && !inner.running.contains(id) {
            inner.ready.push_back(id.clone());
        }
        if !inner.ready.is_empty() && inner.runners < PHONES_AT_ONCE {
            inner.runners += 1;
            let task = shared.clone();
            shared
                .supervisor
                .spawn(&shared.tracker, "command_queue", move || {
                    runner(task.clone())
                });
        }
        Ok(())
    }

    /// Stops taking commands and hands back every one still waiting (a stopping agent answers
    /// them at once, not after the commands in flight).
    fn close(&self, shared: &Shared) -> Vec<Job> {
        let mut inner = self.lock();
        inner.closed = true;
        inner.ready.clear();
        inner.queued = 0;
        shared.metrics.queue_depth("commands", 0);
        inner.waiting.drain().flat_map(|(_, jobs)| jobs).collect()
    }

    /// The next command of the next ready phone; `None` when there is none (the runner ends)
    /// or the agent is stopping (the runner answers what is still queued, then ends).
    fn next(&self, shared: &Shared) -> Next {
        let mut inner = self.lock();
        if shared.shutdown.is_cancelled() {
            inner.closed = true;
            inner.runners -= 1;
            inner.ready.clear();
            inner.queued = 0;
            shared.metrics.queue_depth("commands", 0);
            let left = inner.waiting.drain().flat_map(|(_, jobs)| jobs).collect();
            return Next::Stop(left);
        }
        let Some(id) = inner.ready.pop_front() else {
            inner.runners -= 1;
            return Next::Done;
        };
        let queue = inner
            .waiting
            .get_mut(&id)
            .expect("a ready phone has commands");
        let job = queue.pop_front().expect("a ready phone has commands");
        if queue.is_empty() {
            inner.waiting.remove(&id);
        }
        inner.queued = inner.queued.saturating_sub(1);
        shared.metrics.queue_depth("commands", inner.queued);
        inner.running.insert(id.clone());
        Next::Run(id, job)
    }

    /// A phone's command is done: it is ready again if more wait for it.
    fn done(&self, id: PhoneId) {
        let mut inner = self.lock();
        inner.running.remove(&id);
        if inner.waiting.contains_key(&id) {
            inner.ready.push_back(id);
        }
    }
}

enum Next {
    Run(PhoneId, Job),
    Done,
    Stop(Vec<Job>),
}

/// Runs ready phones' commands, one at a time, until none is ready. Stops only between
/// commands: the one in flight finishes or times out.
async fn runner(shared: Arc<Shared>) {
    loop {
        match shared.phones.queues.next(&shared) {
            Next::Run(id, job) => {
                let (reply_to, name, transaction, internal) = (
                    job.reply_to.clone(),
                    job.command.kind.name(),
                    job.transaction.clone(),
                    job.internal,
                );
                // A panic in one command is that command's error; the phone's queue goes on.
                let run = AssertUnwindSafe(run_job(&shared, &id, job)).catch_unwind();
                let stopped = async {
                    shared.shutdown.cancelled().await;
                    tokio::time::sleep(IN_FLIGHT_AT_STOP).await;
                };
                let ran = tokio::select! {
                    ran = run => ran,
                    () = stopped => {
                        if !internal {
                            let result = CommandResult::error(
                                &reply_to,
                                name,
                                transaction,
                                CommandError::StoppedInFlight,
                            );
                            shared.publish_result(&reply_to, &result).await;
                        }
                        shared.phones.queues.done(id);
                        continue;
                    }
                };
                if let Err(panic) = ran {
                    shared.supervisor.caught("command_queue", &*panic);
                    if !internal {
                        let result = CommandResult::error(
                            &reply_to,
                            name,
                            transaction,
                            "internal error: the gateway failed on this command (logged)",
                        );
                        shared.publish_result(&reply_to, &result).await;
                    }
                }
                shared.phones.queues.done(id);
            }
            Next::Done => return,
            Next::Stop(left) => {
                // Whatever is still queued gets an answer too.
                answer_stopping(&shared, left).await;
                return;
            }
        }
    }
}

/// When the agent starts stopping, every command still waiting is answered `shutting down`
/// at once; those in flight finish, time out or are cut short (`IN_FLIGHT_AT_STOP`).
pub async fn answer_queued_at_stop(shared: Arc<Shared>) {
    shared.shutdown.cancelled().await;
    let left = shared.phones.queues.close(&shared);
    if !left.is_empty() {
        info!(
            commands = left.len(),
            "Stopping: answering the queued commands."
        );
    }
    answer_stopping(&shared, left).await;
}

async fn answer_stopping(shared: &Shared, jobs: Vec<Job>) {
    for job in jobs.into_iter().filter(|job| !job.internal) {
        let result = CommandResult::error(
            &job.reply_to,
            job.command.kind.name(),
            job.transaction,
            CommandError::ShuttingDown,
        );
        shared.publish_result(&job.reply_to, &result).await;
    }
}

async fn run_job(shared: &Arc<Shared>, id: &PhoneId, job: Job) {
    let name = job.command.kind.name();
    let outcome = execute(shared, id, &job.command).await;
    let reachable = !matches!(
        outcome,
        Err(CommandError::Unreachable(_) | CommandError::Timeout(_))
    );
    let attempted = !matches!(
        outcome,
        Err(CommandError::NotConfigured(_)
            | CommandError::Unsupported { .. }
            | CommandError::BadArgument(_))
    );
    let refreshed = outcome.as_ref().ok().and_then(|o| o.refreshed.as_ref());
    let call_ended = outcome.as_ref().is_ok_and(|o| o.call_ended);
    if attempted {
        if let Some(update) = shared
            .phones
            .registry
            .apply_command_outcome(id, reachable, refreshed, call_ended)
        {
            shared.publish_update(update).await;
        }
    }
    let (result, failure) = match outcome {
        Ok(outcome) => {
            info!(phone = %id, command = name, "Command done.");
            let mut result = CommandResult::ok(&job.reply_to, name, job.transaction);
            result.data = outcome.data;
            (result, None)
        }
        Err(err) => {
            if job.internal {
                debug!(phone = %id, command = name, cause = %err, "Poll failed.");
            } else {
                warn!(phone = %id, command = name, cause = %err, "Command failed.");
            }
            let result = CommandResult::error(&job.reply_to, name, job.transaction, &err);
            (result, Some(err))
        }
    };
    if !job.internal {
        shared.publish_result(&job.reply_to, &result).await;
    }
    if let Some(reply) = job.reply {
        let _ = reply.send(failure.map_or(Ok(result), Err));
    }
}

async fn execute(
    shared: &Arc<Shared>,
    id: &PhoneId,
    command: &Command,
) -> Result<ReplyOutcome, CommandError> {
    let phone = shared
        .phones
        .registry
        .get(id)
        .ok_or_else(|| CommandError::UnknownPhone(id.to_string()))?;
    let config = phone
        .config
        .clone()
        .ok_or_else(|| CommandError::NotConfigured(id.to_string()))?;
    let vendor = phone.vendor;
    if !vendor.supports(command.kind) {
        return Err(CommandError::Unsupported {
            vendor: vendor.name,
            command: command.kind.name(),
        });
    }
    if command.kind.handled_by_agent() {
        crate::agent::reprovision::run(shared, id, &phone, &config, command).await
    } else {
        send_command(shared, &phone, &config, command).await
    }
}
