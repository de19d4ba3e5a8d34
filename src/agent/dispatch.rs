//! What the agent does with the messages it subscribes to: phone and group commands (each one
//! ends in a result), directory imports, reminder cancellations; and the reminder scheduler.

use std::sync::Arc;

use time::OffsetDateTime;
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use crate::agent::commands::Job;
use crate::agent::directory;
use crate::agent::profiles::Scope;
use crate::agent::reminders::Reminder;
use crate::agent::Shared;
use crate::command::{self, CommandError};
use crate::model::{Command, CommandArg, CommandKind, CommandResult, PhoneId, Status};
use crate::mqtt::Message;
use crate::topics::Topic;

/// Handles incoming messages until the agent stops; what was received by then is still
/// handled, so that a command that arrived while stopping is answered ("shutting down").
pub async fn run(shared: Arc<Shared>, mut incoming: mpsc::UnboundedReceiver<Message>) {
    loop {
        let message = tokio::select! {
            message = incoming.recv() => match message { Some(message) => message, None => return },
            () = shared.shutdown.cancelled() => break,
        };
        handle(&shared, &message).await;
    }
    while let Ok(message) = incoming.try_recv() {
        handle(&shared, &message).await;
    }
}

async fn handle(shared: &Arc<Shared>, message: &Message) {
    match shared.topics.parse(&message.topic) {
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
        None => crate::ha::handle_message(shared, message).await,
        _ => {}
    }
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
        let result = adopt(shared, phone, &message.payload).await;
        shared.publish_result(phone, &result).await;
        return;
    }
    let (transaction, parsed) = command::parse(name, &message.payload);
    let error = |err: CommandError| CommandResult::error(phone, name, transaction.clone(), err);
    let Some(id) = shared.registry.resolve(phone) else {
        if shared.answer_unknown_phones {
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
    if let Some(due) = command.at {
        let result = schedule(shared, phone, &command, due, transaction).await;
        shared.publish_result(phone, &result).await;
        return;
    }
    submit(shared, &id, phone, command, transaction).await;
}

/// Queues a command for one phone; a refusal (queue full, stopping) is published at once.
async fn submit(
    shared: &Arc<Shared>,
    id: &PhoneId,
    reply_to: &str,
    command: Command,
    transaction: Option<String>,
) {
    let job = Job {
        command,
        reply_to: reply_to.to_string(),
        transaction,
        internal: false,
    };
    if let Err(refused) = shared.queues.submit(shared, id, job) {
        let (job, err) = *refused;
        let result =
            CommandResult::error(&job.reply_to, job.command.kind.name(), job.transaction, err);
        shared.publish_result(reply_to, &result).await;
    }
}

/// A command for every phone of a group: each phone answers on its own result topic; what is
/// wrong with the command itself is answered once, on the group's.
async fn group_command(shared: &Arc<Shared>, group: &str, name: &str, message: &Message) {
    let (transaction, parsed) = command::parse(name, &message.payload);
    let members = shared.registry.members(group);
    let group_error = |err: CommandError| {
        CommandResult::error(&format!("group/{group}"), name, transaction.clone(), err)
    };
    if members.is_empty() {
        if shared.answer_unknown_phones {
            let err =
                CommandError::BadArgument(format!("no configured phone is in group `{group}`"));
            shared
                .mqtt
                .publish_json(shared.topics.group_result(group), &group_error(err), false)
                .await;
        }
        return;
    }
    let refused = refuse_retained(message).map(Err);
    let command = match refused.unwrap_or(parsed) {
        Ok(command) => command,
        Err(err) => {
            shared
                .mqtt
                .publish_json(shared.topics.group_result(group), &group_error(err), false)
                .await;
            return;
        }
    };
    if let Some(due) = command.at {
        let target = format!("group:{group}");
        let result = schedule(shared, &target, &command, due, transaction).await;
        let mut result = result;
        result.phone = format!("group/{group}");
        shared
            .mqtt
            .publish_json(shared.topics.group_result(group), &result, false)
            .await;
        return;
    }
    if let CommandArg::Changes(changes) = &command.arg {
        let result = configure_group(shared, group, &members, changes, transaction).await;
        shared
            .mqtt
            .publish_json(shared.topics.group_result(group), &result, false)
            .await;
        return;
    }
    info!(
        group,
        command = name,
        phones = members.len(),
        "Group command."
    );
    for id in members {
        submit(
            shared,
            &id,
            id.as_str(),
            command.clone(),
            transaction.clone(),
        )
        .await;
    }
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
    if let Err(err) = shared.profiles.change(&scope, changes, None) {
        return CommandResult::error(
            &reply_to,
            "configure",
            transaction,
            CommandError::BadArgument(err),
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

/// Keeps a `message` with `at`/`in` for later; the result says when it will be shown.
async fn schedule(
    shared: &Arc<Shared>,
    target: &str,
    command: &Command,
    due: OffsetDateTime,
    transaction: Option<String>,
) -> CommandResult {
    let CommandArg::Text(text) = &command.arg else {
        unreachable!("only messages carry a time");
    };
    match shared.reminders.add(target, text, due, transaction.clone()) {
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
        let wait = match shared.reminders.next_due() {
            Some(due) => {
                let left = due - OffsetDateTime::now_utc();
                std::time::Duration::try_from(left).unwrap_or_default()
            }
            None => std::time::Duration::from_secs(3600),
        };
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = shared.reminders.changed.notified() => continue,
            () = shared.shutdown.cancelled() => return,
        }
        let due = shared.reminders.take_due(OffsetDateTime::now_utc());
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
            for id in shared.registry.members(group) {
                submit(
                    shared,
                    &id,
                    id.as_str(),
                    command.clone(),
                    transaction.clone(),
                )
                .await;
            }
        }
        None => match shared.registry.resolve(&reminder.target) {
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
async fn cancel_reminder(shared: &Arc<Shared>, message: &Message) {
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
    let (status, error) = match shared.reminders.cancel(&id) {
        Ok(Some(_)) => {
            info!(%id, "Reminder cancelled.");
            shared.publish_reminders().await;
            (Status::Ok, None)
        }
        Ok(None) => (Status::Error, Some(format!("no reminder `{id}`"))),
        Err(err) => (Status::Error, Some(err)),
    };
    let result = serde_json::json!({"command": "cancel", "id": id, "transaction": transaction, "status": status, "error": error});
    shared
        .mqtt
        .publish_json(shared.topics.reminders_result(&shared.name), &result, false)
        .await;
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
    let result = match directory::parse(&body) {
        Ok(subscribers) => {
            let count = subscribers.len();
            let kept = shared.data_dir.join(super::DIRECTORY_FILE);
            if let Err(err) = crate::datafile::write(&kept, &directory::to_csv(&subscribers)) {
                warn!(cause = %err, "The directory could not be kept.");
            }
            for update in shared.registry.set_directory(subscribers) {
                shared.publish_update(update).await;
            }
            shared.publish_directory().await;
            let report = shared.registry.directory_report();
            let matched = report["subscribers"].as_array().map_or(0, |list| {
                list.iter()
                    .filter(|s| s["phones"].as_array().is_some_and(|p| !p.is_empty()))
                    .count()
            });
            info!(
                subscribers = count,
                matched, "Subscriber directory imported."
            );
            serde_json::json!({"command": "import", "transaction": transaction, "status": "ok", "subscribers": count, "matched": matched})
        }
        Err(err) => {
            serde_json::json!({"command": "import", "transaction": transaction, "status": "error", "error": err})
        }
    };
    shared
        .mqtt
        .publish_json(shared.topics.directory_result(), &result, false)
        .await;
}

/// `cmd/adopt`: not a phone command but the agent's, so it is not in the vendor tables.
pub const ADOPT: &str = crate::model::CommandKind::Adopt.name();

/// Why an adoption with a password is refused over a broker connection that is neither on
/// this machine nor encrypted.
pub const CLEAR_PASSWORD: &str = "a phone's password is not sent over MQTT in clear beyond this machine: use a broker on loopback, or mqtts:// or wss://, or leave the password out (the agent's `[provisioning] password` is used then)";

/// What `cmd/adopt` takes; anything else is refused, so that a misspelt `password` is an error
/// rather than an adoption with the site's credentials.
const ADOPT_KEYS: &[&str] = &[
    "address",
    "username",
    "password",
    "name",
    "line",
    "groups",
    "vendor",
    "transaction",
];

/// Gives a discovered phone (or one not seen yet, by MAC) its `[[phone]]` entry, from the
/// payload `{"address", "username", "password", "name", "line", "groups", "vendor"}`; what is
/// left out comes from what the phone told (its vendor, the IP it called from) and the
/// `[[phone]]` defaults. The entry is kept in the data directory, so the phone stays adopted
/// across restarts.
///
/// The site's credentials (`[provisioning] username/password`) only ever go to the IP the phone
/// itself called from, on the phones' web port: an adoption naming any other address gives its
/// own `password`. An adoption cannot take another phone's name or a configured phone's entry.
/// A refused adoption sends nothing anywhere.
pub async fn adopt(shared: &Shared, phone: &str, payload: &[u8]) -> CommandResult {
    let text = String::from_utf8_lossy(payload);
    let fields = match serde_json::from_str::<serde_json::Value>(text.trim()) {
        Ok(serde_json::Value::Object(fields)) => fields,
        _ if text.trim().is_empty() => serde_json::Map::new(),
        _ => {
            let err = CommandError::BadPayload(
                "`adopt` takes a JSON object: {\"address\", \"username\", \"password\", ...}"
                    .into(),
            );
            return CommandResult::error(phone, ADOPT, None, err);
        }
    };
    let transaction = fields
        .get("transaction")
        .and_then(|v| v.as_str())
        .map(str::to_string);
    let fail = |err: CommandError| CommandResult::error(phone, ADOPT, transaction.clone(), err);
    // It came in clear: refusing tells the sender, so that it stops (and changes the password).
    if fields.contains_key("password") && !shared.broker_session.broker.is_private() {
        warn!(
            phone,
            "Adoption with a password over a clear broker connection refused."
        );
        return fail(CommandError::Forbidden(CLEAR_PASSWORD.into()));
    }
    match adoption(shared, phone, &fields) {
        Ok(config) => {
            let update = shared.registry.adopt(config);
            shared.publish_update(update).await;
            CommandResult::ok(phone, ADOPT, transaction)
        }
        Err(err) => {
            warn!(phone, cause = %err, "Adoption refused.");
            fail(err)
        }
    }
}

/// Checks an adoption and keeps it; the phone's entry to give the registry.
fn adoption(
    shared: &Shared,
    phone: &str,
    fields: &serde_json::Map<String, serde_json::Value>,
) -> Result<crate::config::PhoneConfig, CommandError> {
    use crate::phone_address::{PhoneAddress, DEFAULT_PHONE_PORT};
    let bad = |reason: String| CommandError::BadArgument(reason);
    if let Some(unknown) = fields.keys().find(|k| !ADOPT_KEYS.contains(&k.as_str())) {
        return Err(CommandError::BadPayload(format!(
            "`adopt` does not take `{unknown}`; it takes {}",
            ADOPT_KEYS.join(", ")
        )));
    }
    let get = |key: &str| match fields.get(key) {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::String(value)) => Ok(Some(value.clone())),
        Some(_) => Err(bad(format!("{key}: must be a string"))),
    };
    let known = shared
        .registry
        .resolve(phone)
        .and_then(|id| shared.registry.get(&id));
    let id = known
        .as_ref()
        .map(|p| p.info.id.clone())
        .or_else(|| PhoneId::parse(phone))
        .ok_or_else(|| CommandError::UnknownPhone(phone.to_string()))?;
    let mac = id.to_string();
    let adopted_before = shared
        .store
        .content()
        .phone
        .iter()
        .any(|p| PhoneId::parse(&p.mac).as_ref() == Some(&id));
    if known.as_ref().is_some_and(|p| p.config.is_some()) && !adopted_before {
        return Err(bad(format!(
            "phone {mac} is configured in phone2mqtt.toml already; change its [[phone]] entry there"
        )));
    }
    let vendor = match (get("vendor")?, known.as_ref()) {
        (Some(given), Some(told)) if !given.eq_ignore_ascii_case(told.vendor.id) => {
            return Err(bad(format!(
                "vendor: the phone is a {} (it said so when it called in); `vendor` cannot make it `{given}`",
                told.vendor.name
            )))
        }
        (_, Some(told)) => told.vendor.id.to_string(),
        (Some(given), None) => given,
        (None, None) => {
            return Err(bad(
                "the phone has not called in yet: give its `vendor`".into(),
            ))
        }
    };
    // Where the phone's own requests came from, on the port phones serve their web UI on.
    let port = shared.provisioning.phone_port.unwrap_or(DEFAULT_PHONE_PORT);
    let own = known
        .as_ref()
        .and_then(|p| p.came_from())
        .map(|ip| PhoneAddress::at(ip, port));
    let address = match get("address")? {
        Some(text) => PhoneAddress::parse(&text).map_err(|err| bad(format!("address: {err}")))?,
        None => own.clone().ok_or_else(|| {
            bad("no address known for the phone: it has not called the agent since it started; give its `address` and its `password`".into())
        })?,
    };
    let at_own_address = own.as_ref().is_some_and(|own| {
        address.ip().is_some() && own.ip() == address.ip() && own.port() == address.port()
    });
    let given_password = get("password")?;
    let site_credentials = given_password.is_none();
    let password = match given_password {
        Some(password) => password,
        None if at_own_address => shared
            .provisioning
            .password
            .as_ref()
            .map_or_else(|| "admin".to_string(), |p| p.expose().to_string()),
        None => {
            let from = own.map_or_else(|| "none is known yet".to_string(), |own| own.to_string());
            return Err(bad(format!(
                "`password` required for {address}: the site's credentials only go to the address the phone called from ({from}); give this phone's own `password`"
            )));
        }
    };
    let name = get("name")?;
    if let Some(name) = &name {
        if name.trim().is_empty() {
            return Err(bad("name: must not be empty".into()));
        }
        if PhoneId::parse(name).is_some_and(|named| named != id) {
            return Err(bad(format!(
                "name: `{name}` is another phone's MAC address; a name must not be one"
            )));
        }
        if let Some(holder) = shared.registry.name_holder(name, &id) {
            let held = shared
                .registry
                .get(&holder)
                .and_then(|p| p.info.name)
                .unwrap_or_else(|| name.clone());
            return Err(bad(format!(
                "name: `{held}` is the name of phone {holder} already (names are case-insensitive)"
            )));
        }
    }
    let groups = match fields.get("groups") {
        None | Some(serde_json::Value::Null) => Vec::new(),
        Some(serde_json::Value::Array(list)) if list.iter().all(|g| g.is_string()) => list
            .iter()
            .filter_map(|g| g.as_str().map(str::to_string))
            .collect(),
        Some(_) => return Err(bad("groups: must be a list of strings".into())),
    };
    let stored = crate::agent::store::StoredPhone {
        mac,
        vendor,
        address: address.to_string(),
        // The site's default user (`[provisioning] username`), else the phones' factory one.
        username: get("username")?
            .or_else(|| shared.provisioning.username.clone())
            .unwrap_or_else(|| "admin".into()),
        password,
        name: name.or_else(|| known.as_ref().and_then(|p| p.info.name.clone())),
        line: get("line")?,
        groups,
    };
    let config = stored.to_config();
    // The same checks as a [[phone]] entry of the config file.
    let candidate = crate::config::Config {
        phones: vec![config.clone()],
        ..crate::config::Config::default()
    };
    if let Err(err) = candidate.validate("adopt") {
        return Err(bad(format!(
            "{}: {}",
            err.key.trim_start_matches("phone[0]."),
            err.reason
        )));
    }
    shared
        .store
        .update(|kept| {
            kept.discovered.retain(|d| d.mac != stored.mac);
            kept.phone.retain(|p| p.mac != stored.mac);
            kept.phone.push(stored.clone());
        })
        .map_err(|err| CommandError::Rejected(format!("cannot keep the adopted phone: {err}")))?;
    info!(phone = %id, %address, site_credentials, "Phone adopted.");
    Ok(config)
}
