//! What the agent does with the messages it subscribes to: phone and group commands (each one
//! ends in a result), directory imports and reminder cancellations. Reminders are scheduled and
//! shown by `agent::scheduler`; `cmd/adopt` is `agent::adoption`.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use futures_util::FutureExt;
use tracing::{debug, info, warn};

use crate::agent::directory;
use crate::agent::profiles::Scope;
use crate::agent::scheduler::{cancel_reminder, schedule};
use crate::agent::Shared;
use crate::agent::{submit, submit_each};
use crate::command::{self, CommandError};
use crate::metrics::Limit;
use crate::model::{Command, CommandArg, CommandKind, CommandResult, PhoneId};
use crate::mqtt::Message;
use crate::supervise::Relay;
use crate::topics::Topic;

pub use crate::agent::adoption::{adopt, ADOPT, CLEAR_PASSWORD};

/// Handles incoming messages until the agent stops; what was received by then is still
/// handled, so that a command that arrived while stopping is answered ("shutting down").
/// The channel is kept by `incoming`, so a restarted dispatcher goes on where this one ended.
pub async fn run(shared: Arc<Shared>, incoming: Relay<Message>) {
    let mut incoming = incoming.lock().await;
    loop {
        let message = tokio::select! {
            message = incoming.recv() => match message { Some(message) => message, None => return },
            () = shared.shutdown.cancelled() => break,
        };
        handle_caught(&shared, &message).await;
    }
    while let Ok(message) = incoming.try_recv() {
        handle_caught(&shared, &message).await;
    }
}

/// Handles one message; a panic while doing so is logged and counted, the command that caused
/// it gets an error result, and the dispatcher goes on with the next message.
async fn handle_caught(shared: &Arc<Shared>, message: &Message) {
    let Err(panic) = AssertUnwindSafe(handle(shared, message))
        .catch_unwind()
        .await
    else {
        return;
    };
    shared.supervisor.caught("dispatcher", &*panic);
    let error =
        "internal error: the gateway failed on this command (logged); it goes on with the next";
    match shared.bus.topics.parse(&message.topic) {
        Some(Topic::Command { phone, command }) => {
            let result = CommandResult::error(phone, command, transaction_of(message), error);
            shared.publish_result(phone, &result).await;
        }
        Some(Topic::GroupCommand { group, command }) => {
            let result = CommandResult::error(
                &format!("group/{group}"),
                command,
                transaction_of(message),
                error,
            );
            shared.publish_group_result(group, &result).await;
        }
        _ => {}
    }
}

/// The `transaction` of a JSON command payload, read without the command parser.
fn transaction_of(message: &Message) -> Option<String> {
    let json: serde_json::Value = serde_json::from_slice(&message.payload).ok()?;
    match json.get("transaction")? {
        serde_json::Value::String(t) => Some(t.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

async fn handle(shared: &Arc<Shared>, message: &Message) {
    let topic = shared.bus.topics.parse(&message.topic);
    if let Some(refusal) = oversized(shared, topic.as_ref(), message.payload.len()) {
        shared.metrics.refused(Limit::mqtt_payload);
        warn!(topic = %message.topic, bytes = message.payload.len(), "{refusal}");
        refuse_oversized(shared, topic.as_ref(), message, refusal).await;
        return;
    }
    match topic {
        Some(Topic::Command { phone, command }) => {
            phone_command(shared, phone, command, message).await
        }
        Some(Topic::GroupCommand { group, command }) => {
            group_command(shared, group, command, message).await
        }
        Some(Topic::DirectorySet) if !message.retained => directory_set(shared, message).await,
        Some(Topic::RemindersCancel(agent)) if agent == shared.name && !message.retained => {
            cancel_reminder(shared, message).await
        }
        None => crate::ha::handle_message(&shared.homeassistant, &**shared, message).await,
        _ => {}
    }
}

/// `[limits] command_payload_bytes` and `directory_payload_bytes`: checked before parsing.
fn oversized(shared: &Shared, topic: Option<&Topic<'_>>, bytes: usize) -> Option<String> {
    let (limit, key) = match topic? {
        Topic::Command { .. } | Topic::GroupCommand { .. } | Topic::RemindersCancel(_) => {
            (shared.limits.command_payload_bytes, "command_payload_bytes")
        }
        Topic::DirectorySet => (
            shared.limits.directory_payload_bytes,
            "directory_payload_bytes",
        ),
        _ => return None,
    };
    (bytes > limit).then(|| format!("the payload has {bytes} bytes, over {limit} ([limits] {key})"))
}

/// The error result an oversized message is due, on the topic its kind answers on. Its
/// transaction is not read: the payload is not parsed.
async fn refuse_oversized(
    shared: &Shared,
    topic: Option<&Topic<'_>>,
    message: &Message,
    refusal: String,
) {
    let (topic, result) = match topic {
        Some(Topic::Command { phone, command }) if !message.retained => {
            if shared.phones.registry.resolve(phone).is_none()
                && !shared.phones.answer_unknown_phones
            {
                return;
            }
            let result =
                CommandResult::error(phone, command, None, CommandError::BadPayload(refusal));
            (
                shared.bus.topics.result(phone),
                serde_json::to_value(result).unwrap_or_default(),
            )
        }
        Some(Topic::GroupCommand { group, command }) if !message.retained => {
            let reply_to = format!("group/{group}");
            let result =
                CommandResult::error(&reply_to, command, None, CommandError::BadPayload(refusal));
            (
                shared.bus.topics.group_result(group),
                serde_json::to_value(result).unwrap_or_default(),
            )
        }
        Some(Topic::DirectorySet) if !message.retained => (
            shared.bus.topics.directory_result(),
            serde_json::json!({"command": "import", "transaction": null, "status": "error", "error": refusal}),
        ),
        Some(Topic::RemindersCancel(agent)) if *agent == shared.name && !message.retained => (
            shared.bus.topics.reminders_result(&shared.name),
            serde_json::json!({"command": "cancel", "id": null, "transaction": null, "status": "error", "error": refusal}),
        ),
        _ => return,
    };
    shared.bus.mqtt.publish_json(topic, &result, false).await;
}

/// A retained command would replay on every reconnect: it is refused, with a result.
fn refuse_retained(message: &Message) -> Option<CommandError> {
    message.retained.then(|| {
        warn!(topic = %message.topic, "Retained command ignored; publish commands without the retain flag.");
        CommandError::BadPayload(
            "commands must not be retained (clear it with an empty retained message)".into(),
        )
    })
}

async fn phone_command(shared: &Arc<Shared>, phone: &str, name: &str, message: &Message) {
    if name == ADOPT && !message.retained {
        shared.metrics.command();
        let result = adopt(shared, phone, &message.payload).await;
        shared.publish_result(phone, &result).await;
        return;
    }
    let (transaction, parsed) = command::parse(name, &message.payload);
    let error = |err: CommandError| CommandResult::error(phone, name, transaction.clone(), err);
    let Some(id) = shared.phones.registry.resolve(phone) else {
        if shared.phones.answer_unknown_phones {
            let result = error(CommandError::UnknownPhone(phone.to_string()));
            shared.publish_result(phone, &result).await;
        }
        return;
    };
    if let Some(err) = refuse_retained(message) {
        shared.publish_result(phone, &error(err)).await;
        return;
    }
    let command = match parsed {
        Ok(command) => command,
        Err(err) => {
            debug!(phone = %id, command = name, cause = %err, "Command refused.");
            shared.publish_result(phone, &error(err)).await;
            return;
        }
    };
    shared.metrics.command();
    if let Some(due) = command.at {
        let result = schedule(shared, phone, &command, due, transaction).await;
        shared.publish_result(phone, &result).await;
        return;
    }
    submit(shared, &id, phone, command, transaction).await;
}

/// A command for every phone of a group: each phone answers on its own result topic; what is
/// wrong with the command itself is answered once, on the group's.
async fn group_command(shared: &Arc<Shared>, group: &str, name: &str, message: &Message) {
    let (transaction, parsed) = command::parse(name, &message.payload);
    let members = shared.phones.registry.members(group);
    let group_error = |err: CommandError| {
        CommandResult::error(&format!("group/{group}"), name, transaction.clone(), err)
    };
    if members.is_empty() {
        if shared.phones.answer_unknown_phones {
            let err =
                CommandError::BadArgument(format!("no configured phone is in group `{group}`"));
            shared.publish_group_result(group, &group_error(err)).await;
        }
        return;
    }
    let refused = refuse_retained(message).map(Err);
    let command = match refused.unwrap_or(parsed) {
        Ok(command) => command,
        Err(err) => {
            shared.publish_group_result(group, &group_error(err)).await;
            return;
        }
    };
    shared.metrics.command();
    if let Some(due) = command.at {
        let target = format!("group:{group}");
        let result = schedule(shared, &target, &command, due, transaction).await;
        let mut result = result;
        result.phone = format!("group/{group}");
        shared.publish_group_result(group, &result).await;
        return;
    }
    if let CommandArg::Changes(changes) = &command.arg {
        let result = configure_group(shared, group, &members, changes, transaction).await;
        shared.publish_group_result(group, &result).await;
        return;
    }
    info!(
        group,
        command = name,
        phones = members.len(),
        "Group command."
    );
    submit_each(shared, members, command, transaction).await;
}

/// `configure` for a group (or the whole site, as group `all`): kept at that scope, so phones
/// that join later get it too, then every member is re-provisioned (each answers `provision`
/// on its own result topic).
async fn configure_group(
    shared: &Arc<Shared>,
    group: &str,
    members: &[PhoneId],
    changes: &crate::model::Changes,
    transaction: Option<String>,
) -> CommandResult {
    let reply_to = format!("group/{group}");
    let scope = if group.eq_ignore_ascii_case("all") {
        Scope::Site
    } else {
        Scope::Group(group.to_string())
    };
    if let Err(err) = shared.serving.profiles.change(&scope, changes, None) {
        return CommandResult::error(
            &reply_to,
            "configure",
            transaction,
            CommandError::BadArgument(err.to_string()),
        );
    }
    info!(group, phones = members.len(), "Group profile changed.");
    shared.publish_pushed_provisioning().await;
    for id in members {
        crate::agent::provisioning::profile_changed(shared, id).await;
        if changes.apply {
            let provision = Command::new(CommandKind::Provision, CommandArg::None);
            submit(shared, id, id.as_str(), provision, transaction.clone()).await;
        }
    }
    let mut result = CommandResult::ok(&reply_to, "configure", transaction);
    result.data = Some(serde_json::json!({"phones": members.len(), "applied": changes.apply}));
    result
}

/// Replaces the subscriber directory; the result counts what was imported and matched.
async fn directory_set(shared: &Arc<Shared>, message: &Message) {
    let text = String::from_utf8_lossy(&message.payload).into_owned();
    // A JSON object may wrap the list: {"csv": "...", "transaction": "..."}.
    let (body, transaction) = match serde_json::from_str::<serde_json::Value>(&text) {
        Ok(serde_json::Value::Object(fields)) => (
            fields
                .get("csv")
                .and_then(|v| v.as_str())
                .map(str::to_string)
                .unwrap_or_default(),
            fields
                .get("transaction")
                .and_then(|v| v.as_str())
                .map(str::to_string),
        ),
        _ => (text, None),
    };
    let result = match directory::parse_at_most(&body, shared.limits.directory_rows) {
        Ok(subscribers) => {
            let count = subscribers.len();
            let kept = shared.kept.data_dir.join(super::DIRECTORY_FILE);
            if let Err(err) = crate::datafile::write(&kept, &directory::to_csv(&subscribers)) {
                warn!(cause = %err, "The directory could not be kept.");
            }
            for update in shared.phones.registry.set_directory(subscribers) {
                shared.publish_update(update).await;
            }
            shared.publish_directory().await;
            let report = shared.phones.registry.directory_report();
            let matched = directory::matched(&report);
            info!(
                subscribers = count,
                matched, "Subscriber directory imported."
            );
            serde_json::json!({"command": "import", "transaction": transaction, "status": "ok", "subscribers": count, "matched": matched})
        }
        Err(err) => {
            if matches!(err, directory::DirectoryError::TooManyRows { .. }) {
                shared.metrics.refused(Limit::directory_rows);
                warn!(cause = %err, "Subscriber directory refused.");
            }
            let error = match err {
                directory::DirectoryError::TooManyRows { .. } => {
                    format!("{err}; the current directory is kept")
                }
                _ => err.to_string(),
            };
            serde_json::json!({"command": "import", "transaction": transaction, "status": "error", "error": error})
        }
    };
    shared
        .bus
        .mqtt
        .publish_json(shared.bus.topics.directory_result(), &result, false)
        .await;
}
