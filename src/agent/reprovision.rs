//! The commands the agent carries out itself rather than passing to the phone: `configure`
//! (keys and settings into the phone's provisioning), `logo` (an image converted, hosted and
//! written into it) and `verify` (does the phone hold what the agent serves?). The first two end
//! by making the phone fetch its provisioning again.

use std::sync::Arc;

use serde_json::{json, Value};
use tracing::info;

use crate::agent::exchange::{send_command, send_request, target};
use crate::agent::profiles::Scope;
use crate::agent::provisioning::{self, Drift};
use crate::agent::registry::Phone;
use crate::agent::{download, logo, Shared};
use crate::command::CommandError;
use crate::config::PhoneConfig;
use crate::model::{Changes, Command, CommandArg, CommandKind, PhoneId};
use crate::phone_vendors::ReplyOutcome;

pub async fn run(
    shared: &Arc<Shared>,
    id: &PhoneId,
    phone: &Phone,
    config: &PhoneConfig,
    command: &Command,
) -> Result<ReplyOutcome, CommandError> {
    let data = match (command.kind, &command.arg) {
        (CommandKind::Configure, CommandArg::Changes(changes)) => {
            configure(shared, id, phone, config, changes).await?
        }
        (CommandKind::Logo, CommandArg::Url(url)) => {
            set_logo(shared, id, phone, config, url).await?
        }
        (CommandKind::Verify, _) => verify(shared, id, phone, config).await?,
        (kind, _) => unreachable!("{} is not the agent's own command", kind.name()),
    };
    Ok(ReplyOutcome {
        data: Some(data),
        ..ReplyOutcome::default()
    })
}

/// Makes the phone fetch its provisioning again.
pub async fn reprovision(
    shared: &Shared,
    phone: &Phone,
    config: &PhoneConfig,
) -> Result<(), CommandError> {
    let command = Command::new(CommandKind::Provision, CommandArg::None);
    send_command(shared, phone, config, &command)
        .await
        .map(|_| ())
}

async fn configure(
    shared: &Arc<Shared>,
    id: &PhoneId,
    phone: &Phone,
    config: &PhoneConfig,
    changes: &Changes,
) -> Result<Value, CommandError> {
    let vendor = phone.vendor;
    if let Some(other) = changes.vendor.as_deref().filter(|v| *v != vendor.id) {
        return Err(CommandError::BadArgument(format!(
            "this phone is a {}, not a {other} phone",
            vendor.name
        )));
    }
    let adds_keys = changes.keys.values().any(Option::is_some);
    if adds_keys && vendor.programming.key.is_none() {
        return Err(CommandError::Rejected(format!(
            "{} phones have no programmable key type that calls a URL ({})",
            vendor.name, vendor.programming.key_doc
        )));
    }
    shared
        .serving
        .profiles
        .change(&Scope::Phone(id.clone()), changes, Some(vendor.id))
        .map_err(|err| CommandError::Rejected(format!("cannot keep the change: {err}")))?;
    info!(phone = %id, keys = changes.keys.len(), settings = changes.settings.len(), "Phone profile changed.");
    provisioning::profile_changed(shared, id).await;
    if changes.apply {
        reprovision(shared, phone, config).await?;
    }
    let profile = shared.serving.profiles.profile(vendor.id, id, Some(config));
    Ok(json!({
        "applied": changes.apply,
        "keys": profile.keys,
        "settings": profile
            .settings
            .iter()
            .map(|(key, value)| {
                let shown = if crate::profile::is_secret_setting(key) { "***" } else { value.as_str() };
                (key.clone(), Value::String(shown.to_string()))
            })
            .collect::<serde_json::Map<String, Value>>(),
    }))
}

async fn set_logo(
    shared: &Arc<Shared>,
    id: &PhoneId,
    phone: &Phone,
    config: &PhoneConfig,
    url: &str,
) -> Result<Value, CommandError> {
    let own_prefix = format!("{}/logos/", shared.serving.public_url.trim_end_matches('/'));
    let own_file = url
        .strip_prefix(&own_prefix)
        .filter(|file| logo::is_logo_file(file))
        .filter(|file| logo::dir(&shared.kept.data_dir).join(file).exists());
    let stored = match own_file {
        // Uploaded through the Manager: already converted.
        Some(file) => logo::Logo {
            file: file.to_string(),
            width: 0,
            height: 0,
        },
        None => {
            let bytes = download(shared, url).await?;
            let size = (phone.vendor.programming.logo_size)(phone.info.model.as_deref());
            logo::convert(shared, bytes, size)
                .await
                .map_err(|err| CommandError::BadArgument(format!("{url}: {err}")))?
        }
    };
    shared
        .serving
        .profiles
        .set_logo(&Scope::Phone(id.clone()), &stored.file)
        .map_err(|err| CommandError::Rejected(format!("cannot keep the logo: {err}")))?;
    info!(phone = %id, file = %stored.file, "Phone logo set.");
    provisioning::profile_changed(shared, id).await;
    reprovision(shared, phone, config).await?;
    let mut data = json!({
        "logo": provisioning::logo_url(&shared.serving, &stored.file),
        "setting": phone.vendor.programming.logo_doc,
    });
    if stored.width > 0 {
        data["width"] = stored.width.into();
        data["height"] = stored.height.into();
    }
    Ok(data)
}

async fn download(shared: &Shared, url: &str) -> Result<Vec<u8>, CommandError> {
    let request = shared.phones.http.get(url);
    let cap = download::Cap::of(&shared.limits);
    match download::fetch(request, cap, false, &shared.metrics).await {
        Ok(body) => Ok(body.unwrap_or_default()),
        Err(err) => Err(CommandError::BadArgument(format!(
            "cannot fetch the image {url}: {err}"
        ))),
    }
}

async fn verify(
    shared: &Arc<Shared>,
    id: &PhoneId,
    phone: &Phone,
    config: &PhoneConfig,
) -> Result<Value, CommandError> {
    let vendor = phone.vendor;
    let (method, drift) = match &vendor.read_config {
        Some(read) => {
            let expected = provisioning::expected_settings(shared, vendor, id);
            let keys: Vec<String> = expected.iter().map(|s| s.key.clone()).collect();
            let request = (read.build)(&keys, &target(shared, phone, config));
            let reply = send_request(shared, vendor, config, &request).await?;
            let actual = (read.parse)(&reply)?;
            let drift = expected
                .into_iter()
                .filter(|setting| actual.get(&setting.key) != Some(&setting.value))
                .map(|setting| Drift {
                    actual: actual.get(&setting.key).cloned(),
                    setting: setting.key,
                    expected: Some(setting.value),
                })
                .collect();
            ("read_back", drift)
        }
        None => ("served", provisioning::served_drift(shared, vendor, id)),
    };
    let status = provisioning::record_verification(shared, id, method, drift).await;
    Ok(serde_json::to_value(provisioning::shown(shared, &status)).unwrap_or(Value::Null))
}
