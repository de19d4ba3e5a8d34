//! `cmd/adopt`: a discovered phone gets its `[[phone]]` entry, kept in the data directory.

use std::sync::Arc;

use tracing::{info, warn};

use crate::agent::store::StoredPhone;
use crate::agent::Shared;
use crate::command::CommandError;
use crate::model::{CommandResult, PhoneId};

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
/// A refused adoption sends nothing anywhere. The entry is on disk before the result says ok.
pub async fn adopt(shared: &Arc<Shared>, phone: &str, payload: &[u8]) -> CommandResult {
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
    if fields.contains_key("password") && !shared.bus.broker_session.broker.is_private() {
        warn!(
            phone,
            "Adoption with a password over a clear broker connection refused."
        );
        return fail(CommandError::Forbidden(CLEAR_PASSWORD.into()));
    }
    let adopted = match adoption(shared, phone, &fields) {
        Ok(stored) => keep(shared, stored).await,
        Err(err) => Err(err),
    };
    match adopted {
        Ok(config) => {
            let update = shared.phones.registry.adopt(config);
            shared.publish_update(update).await;
            CommandResult::ok(phone, ADOPT, transaction)
        }
        Err(err) => {
            warn!(phone, cause = %err, "Adoption refused.");
            fail(err)
        }
    }
}

/// Writes an adopted phone's entry (away from the async threads) and hands back its entry for
/// the registry.
async fn keep(
    shared: &Arc<Shared>,
    stored: StoredPhone,
) -> Result<crate::config::PhoneConfig, CommandError> {
    let config = stored.to_config();
    let task = shared.clone();
    let written = tokio::task::spawn_blocking(move || {
        task.kept.store.update(|kept| {
            kept.discovered.retain(|d| d.mac != stored.mac);
            kept.phone.retain(|p| p.mac != stored.mac);
            kept.phone.push(stored);
        })
    })
    .await;
    match written {
        Ok(Ok(())) => Ok(config),
        Ok(Err(err)) => Err(CommandError::Rejected(format!(
            "cannot keep the adopted phone: {err}"
        ))),
        Err(panic) => std::panic::resume_unwind(panic.into_panic()),
    }
}

/// Checks an adoption; the phone's entry to keep.
fn adoption(
    shared: &Shared,
    phone: &str,
    fields: &serde_json::Map<String, serde_json::Value>,
) -> Result<StoredPhone, CommandError> {
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
        .phones
        .registry
        .resolve(phone)
        .and_then(|id| shared.phones.registry.get(&id));
    let id = known
        .as_ref()
        .map(|p| p.info.id.clone())
        .or_else(|| PhoneId::parse(phone))
        .ok_or_else(|| CommandError::UnknownPhone(phone.to_string()))?;
    let mac = id.to_string();
    let adopted_before = shared
        .kept
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
    let port = shared
        .serving
        .provisioning
        .phone_port
        .unwrap_or(DEFAULT_PHONE_PORT);
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
            .serving
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
        if let Some(holder) = shared.phones.registry.name_holder(name, &id) {
            let held = shared
                .phones
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
    if let Err(err) = shared
        .phones
        .registry
        .admit_groups(&groups, shared.limits.groups)
    {
        shared.metrics.refused(crate::metrics::Limit::groups);
        return Err(bad(format!("groups: {err}")));
    }
    let stored = StoredPhone {
        mac,
        vendor,
        address: address.to_string(),
        // The site's default user (`[provisioning] username`), else the phones' factory one.
        username: get("username")?
            .or_else(|| shared.serving.provisioning.username.clone())
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
    info!(phone = %id, %address, site_credentials, "Phone adopted.");
    Ok(stored)
}
