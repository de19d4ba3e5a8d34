//! Reminders: a `message` command with `at`/`in` is kept (`agent::reminders`) and shown when
//! due; `reminders/<agent>/cancel` takes one back. A due reminder stays kept until each of its
//! phones has shown it: a failed delivery (phone off, unreachable, busy) is tried again with a
//! backoff until it succeeds or the reminder expires, and each phone's outcome is one result.

use std::sync::Arc;

use time::OffsetDateTime;
use tracing::{info, warn};

use crate::agent::commands::Job;
use crate::agent::reminders::{rfc3339, Due, Reminder, Reminders};
use crate::agent::Shared;
use crate::command::CommandError;
use crate::model::{Command, CommandArg, CommandKind, CommandResult, PhoneId, Status};
use crate::mqtt::Message;

/// Runs `change` on the reminders away from the async threads: it writes a file.
async fn on_disk<R: Send + 'static>(
    shared: &Arc<Shared>,
    change: impl FnOnce(&Reminders) -> R + Send + 'static,
) -> R {
    let task = shared.clone();
    match tokio::task::spawn_blocking(move || change(&task.kept.reminders)).await {
        Ok(done) => done,
        Err(panic) => std::panic::resume_unwind(panic.into_panic()),
    }
}

/// Keeps a `message` with `at`/`in` for later; the result says when it will be shown.
pub(crate) async fn schedule(
    shared: &Arc<Shared>,
    target: &str,
    command: &Command,
    due: OffsetDateTime,
    transaction: Option<String>,
) -> CommandResult {
    let CommandArg::Text(text) = &command.arg else {
        unreachable!("only messages carry a time");
    };
    let limit = shared.limits.reminders;
    if shared.kept.reminders.len() >= limit {
        shared.metrics.refused(crate::metrics::Limit::reminders);
        tracing::warn!(
            target,
            limit,
            "Reminder refused: [limits] reminders reached."
        );
        return CommandResult::error(
            target,
            "message",
            transaction,
            CommandError::BadArgument(format!(
                "{limit} reminders are pending already ([limits] reminders); cancel one first"
            )),
        );
    }
    let (target_owned, text, kept_transaction) =
        (target.to_string(), text.clone(), transaction.clone());
    let added = on_disk(shared, move |reminders| {
        reminders.add(&target_owned, &text, due, kept_transaction)
    })
    .await;
    match added {
        Ok(reminder) => {
            info!(target, id = %reminder.id, due = %rfc3339(reminder.due), "Reminder scheduled.");
            shared.publish_reminders().await;
            let mut result = CommandResult::ok(target, "message", transaction);
            result.data =
                Some(serde_json::json!({"reminder": reminder.id, "due": rfc3339(reminder.due)}));
            result
        }
        Err(err) => CommandResult::error(
            target,
            "message",
            transaction,
            CommandError::Rejected(format!("cannot keep the reminder: {err}")),
        ),
    }
}

/// Shows each reminder when it is due, tries again those a phone did not take, gives up those
/// past their expiry, and keeps the retained list current.
pub async fn run_reminders(shared: Arc<Shared>) {
    loop {
        let now = OffsetDateTime::now_utc();
        let reminders = &shared.kept.reminders;
        let mut changed = false;
        for reminder in reminders.newly_due(now) {
            changed = true;
            start(&shared, reminder, now).await;
        }
        for due in reminders.expire(now) {
            changed = true;
            expired(&shared, due).await;
        }
        for due in reminders.claim(now) {
            changed = true;
            let task = shared.clone();
            shared
                .tracker
                .spawn(async move { attempt(task, due).await });
        }
        if changed {
            shared.publish_reminders().await;
        }
        let wait = match reminders.next_wake() {
            Some(at) => {
                std::time::Duration::try_from(at - OffsetDateTime::now_utc()).unwrap_or_default()
            }
            None => std::time::Duration::from_secs(3600),
        };
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = reminders.changed.notified() => {}
            () = shared.shutdown.cancelled() => return,
        }
    }
}

/// A reminder came due: the phones it is for (a group's members now), each tried on its own.
async fn start(shared: &Arc<Shared>, reminder: Reminder, now: OffsetDateTime) {
    info!(id = %reminder.id, target = %reminder.target, "Reminder due.");
    let phones = match reminder.target.strip_prefix("group:") {
        Some(group) => shared.phones.registry.members(group),
        None => match shared.phones.registry.resolve(&reminder.target) {
            Some(id) => vec![id],
            None => {
                let err = CommandError::UnknownPhone(reminder.target.clone());
                let result =
                    CommandResult::error(&reminder.target, "message", transaction(&reminder), err);
                shared.publish_result(&reminder.target, &result).await;
                Vec::new()
            }
        },
    };
    let phones = phones.iter().map(PhoneId::to_string).collect();
    shared.kept.reminders.start(&reminder.id, phones, now);
}

/// The transaction a reminder's results carry: the scheduling command's, or its own id.
fn transaction(reminder: &Reminder) -> Option<String> {
    reminder
        .transaction
        .clone()
        .or_else(|| Some(format!("reminder-{}", reminder.id)))
}

/// Whether a phone may take it later: not when the phone cannot show messages at all, or is
/// not (or no longer) a phone the agent may command.
fn worth_retrying(err: &CommandError) -> bool {
    !matches!(
        err,
        CommandError::Unsupported { .. }
            | CommandError::BadArgument(_)
            | CommandError::BadPayload(_)
            | CommandError::UnknownCommand(_)
            | CommandError::UnknownPhone(_)
            | CommandError::NotConfigured(_)
    )
}

/// One delivery to one phone, through its command queue like any command; the outcome is kept
/// (delivered, or the attempt counted and the next one scheduled).
async fn attempt(shared: Arc<Shared>, due: Due) {
    let Due { reminder, delivery } = due;
    let reminders = &shared.kept.reminders;
    let reply_to = reminder.reply_to(&delivery.phone);
    let Some(id) = PhoneId::parse(&delivery.phone) else {
        reminders.delivered(&reminder.id, &delivery.phone);
        return;
    };
    let (reply, outcome) = tokio::sync::oneshot::channel();
    let job = Job {
        command: Command::new(
            CommandKind::Message,
            CommandArg::Text(reminder.text.clone()),
        ),
        reply_to: reply_to.clone(),
        transaction: transaction(&reminder),
        // Each attempt's failure is not a result: the reminder's outcome is, once.
        internal: true,
        reply: Some(reply),
    };
    let outcome = match shared.phones.queues.submit(&shared, &id, job) {
        Ok(()) => match outcome.await {
            Ok(outcome) => outcome,
            // Never run: the gateway stopped first (or the command failed in the gateway).
            Err(_) if shared.shutdown.is_cancelled() => Err(CommandError::ShuttingDown),
            Err(_) => Err(CommandError::Rejected(
                "the gateway failed on this command (logged)".into(),
            )),
        },
        Err(refused) => Err(refused.1),
    };
    match outcome {
        Ok(result) => {
            info!(id = %reminder.id, phone = %id, attempts = delivery.attempts + 1, "Reminder shown.");
            reminders.delivered(&reminder.id, &delivery.phone);
            shared.publish_result(&reply_to, &result).await;
        }
        // Kept as it is, for the next start.
        Err(CommandError::ShuttingDown) => reminders.release(&reminder.id, &delivery.phone),
        Err(err) if !worth_retrying(&err) => {
            warn!(id = %reminder.id, phone = %id, cause = %err, "Reminder not shown, and never will be.");
            reminders.delivered(&reminder.id, &delivery.phone);
            let result = CommandResult::error(&reply_to, "message", transaction(&reminder), err);
            shared.publish_result(&reply_to, &result).await;
        }
        Err(err) => {
            let attempts = delivery.attempts + 1;
            let next =
                rfc3339(OffsetDateTime::now_utc() + crate::agent::reminders::backoff(attempts));
            info!(id = %reminder.id, phone = %id, attempts, cause = %err, next_try = %next, "Reminder not shown; tried again later.");
            reminders.failed(
                &reminder.id,
                &delivery.phone,
                err.to_string(),
                OffsetDateTime::now_utc(),
            );
        }
    }
    // Stopping: `keep_phones` may have written its last flush already.
    if shared.shutdown.is_cancelled() {
        if let Err(err) = on_disk(&shared, Reminders::flush).await {
            tracing::error!(cause = %err, "Reminders could not be written at shutdown.");
        }
    }
    shared.publish_reminders().await;
}

/// A phone did not show the reminder before it expired: its error result says so.
async fn expired(shared: &Arc<Shared>, due: Due) {
    let Due { reminder, delivery } = due;
    let reply_to = reminder.reply_to(&delivery.phone);
    warn!(id = %reminder.id, phone = %delivery.phone, attempts = delivery.attempts, "Reminder expired before the phone showed it.");
    let last = delivery
        .last_error
        .map(|err| format!("; last: {err}"))
        .unwrap_or_default();
    let mut result = CommandResult::error(
        &reply_to,
        "message",
        transaction(&reminder),
        format!(
            "reminder {} expired at {}, not shown after {} attempts{last}",
            reminder.id,
            rfc3339(reminder.expiry()),
            delivery.attempts
        ),
    );
    result.data = Some(serde_json::json!({"reminder": reminder.id, "attempts": delivery.attempts}));
    shared.publish_result(&reply_to, &result).await;
}

/// `{"id": "...", "transaction": "..."}` or a plain id.
pub(crate) async fn cancel_reminder(shared: &Arc<Shared>, message: &Message) {
    let text = String::from_utf8_lossy(&message.payload).trim().to_string();
    let (id, transaction) = match serde_json::from_str::<serde_json::Value>(&text) {
        Ok(serde_json::Value::Object(fields)) => (
            fields
                .get("id")
                .and_then(|v| v.as_str())
                .unwrap_or_default()
                .to_string(),
            fields
                .get("transaction")
                .and_then(|v| v.as_str())
                .map(str::to_string),
        ),
        _ => (text.trim_matches('"').to_string(), None),
    };
    let cancelled = id.clone();
    let (status, error) = match on_disk(shared, move |r| r.cancel(&cancelled)).await {
        Ok(Some(_)) => {
            info!(%id, "Reminder cancelled.");
            shared.publish_reminders().await;
            (Status::Ok, None)
        }
        Ok(None) => (Status::Error, Some(format!("no reminder `{id}`"))),
        Err(err) => (Status::Error, Some(err.to_string())),
    };
    let result = serde_json::json!({"command": "cancel", "id": id, "transaction": transaction, "status": status, "error": error});
    shared
        .bus
        .mqtt
        .publish_json(
            shared.bus.topics.reminders_result(&shared.name),
            &result,
            false,
        )
        .await;
}
