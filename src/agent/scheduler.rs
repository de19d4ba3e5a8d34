//! Reminders: a `message` command with `at`/`in` is kept (`agent::reminders`) and shown when
//! due; `reminders/<agent>/cancel` takes one back.

use std::sync::Arc;

use time::OffsetDateTime;
use tracing::info;

use crate::agent::reminders::Reminder;
use crate::agent::{submit, submit_each, Shared};
use crate::command::CommandError;
use crate::model::{Command, CommandArg, CommandKind, CommandResult, Status};
use crate::mqtt::Message;

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
    match shared
        .kept
        .reminders
        .add(target, text, due, transaction.clone())
    {
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

fn rfc3339(at: OffsetDateTime) -> String {
    at.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// Shows each reminder when it is due, and keeps the retained list current.
pub async fn run_reminders(shared: Arc<Shared>) {
    loop {
        let wait = match shared.kept.reminders.next_due() {
            Some(due) => {
                let left = due - OffsetDateTime::now_utc();
                std::time::Duration::try_from(left).unwrap_or_default()
            }
            None => std::time::Duration::from_secs(3600),
        };
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = shared.kept.reminders.changed.notified() => continue,
            () = shared.shutdown.cancelled() => return,
        }
        let due = shared.kept.reminders.take_due(OffsetDateTime::now_utc());
        if due.is_empty() {
            continue;
        }
        for reminder in due {
            show_reminder(&shared, reminder).await;
        }
        shared.publish_reminders().await;
    }
}

async fn show_reminder(shared: &Arc<Shared>, reminder: Reminder) {
    let command = Command::new(
        CommandKind::Message,
        CommandArg::Text(reminder.text.clone()),
    );
    let transaction = reminder
        .transaction
        .clone()
        .or_else(|| Some(format!("reminder-{}", reminder.id)));
    info!(id = %reminder.id, target = %reminder.target, "Reminder due.");
    match reminder.target.strip_prefix("group:") {
        Some(group) => {
            let members = shared.phones.registry.members(group);
            submit_each(shared, members, command, transaction).await;
        }
        None => match shared.phones.registry.resolve(&reminder.target) {
            Some(id) => submit(shared, &id, &reminder.target, command, transaction).await,
            None => {
                let err = CommandError::UnknownPhone(reminder.target.clone());
                let result = CommandResult::error(&reminder.target, "message", transaction, err);
                shared.publish_result(&reminder.target, &result).await;
            }
        },
    }
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
    let (status, error) = match shared.kept.reminders.cancel(&id) {
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
