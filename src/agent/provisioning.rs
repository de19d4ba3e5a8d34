//! The provisioning server: the files phones fetch when their provisioning server (or DHCP
//! option 66) is the agent, with each phone's keys, logo and settings, merged into the site's
//! own files when `[provisioning] upstream` is set; the logos those files point at; and what
//! each phone was served, for `verify` and the Manager (`<base>/<id>/provisioning`, retained).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use tracing::{info, warn};

use crate::agent::profiles::Profiles;
use crate::agent::Shared;
use crate::config::{Config, PhoneConfig};
use crate::datafile::{self, DataFile, Format};
use crate::hash::md5_hex;
use crate::metrics::Limit;
use crate::model::{now_rfc3339, PhoneId};
use crate::phone_auth::PhoneKeys;
use crate::phone_vendors::{self, ProvisionCtx, VendorSpec};

/// How long the site's provisioning server has to answer.
const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(5);

/// What one phone's provisioning looks like now, published retained, and kept in the data
/// directory (`provisioning_status.json`) so that a restarted agent publishes it again.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Status {
    pub phone: PhoneId,
    /// When the phone last fetched a file from the agent, and which.
    pub served_at: Option<String>,
    pub file: Option<String>,
    /// Whether the phone holds what the agent would serve it now; `None`: not known yet.
    pub in_sync: Option<bool>,
    /// `read_back` (the phone's own configuration was read) or `served` (what the agent served
    /// it is compared with what it would serve now).
    pub method: Option<std::borrow::Cow<'static, str>>,
    pub verified_at: Option<String>,
    /// Settings that differ: what the agent expects and what the phone has.
    pub drift: Vec<Drift>,
    /// What was asked for and this vendor cannot program (a key on a vendor without URL keys).
    pub refused: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Drift {
    pub setting: String,
    pub expected: Option<String>,
    pub actual: Option<String>,
}

/// Per-phone provisioning status, and digests of what was served, kept in the data directory
/// (written with the next flush: a phone fetches its files in bursts).
#[derive(Debug)]
pub struct Served {
    file: DataFile<BTreeMap<PhoneId, KeptStatus>>,
}

/// One phone's status and the digest of what it was served.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct KeptStatus {
    status: Status,
    digest: Option<String>,
}

impl Status {
    fn new(phone: &PhoneId) -> Status {
        Status {
            phone: phone.clone(),
            served_at: None,
            file: None,
            in_sync: None,
            method: None,
            verified_at: None,
            drift: Vec::new(),
            refused: Vec::new(),
        }
    }
}

impl Served {
    /// Reads the kept statuses; a damaged file is an error naming it.
    pub fn load(path: PathBuf) -> Result<Served, datafile::Error> {
        Ok(Served {
            file: DataFile::load(path, Format::Json)?,
        })
    }

    pub fn status(&self, id: &PhoneId) -> Status {
        self.file
            .lock()
            .get(id)
            .map(|kept| kept.status.clone())
            .unwrap_or_else(|| Status::new(id))
    }

    fn served_digest(&self, id: &PhoneId) -> Option<String> {
        self.file
            .lock()
            .get(id)
            .and_then(|kept| kept.digest.clone())
    }

    fn update(
        &self,
        id: &PhoneId,
        change: impl FnOnce(&mut Status, &mut Option<String>),
    ) -> Status {
        self.file.change_soon(|phones| {
            let kept = phones.entry(id.clone()).or_insert_with(|| KeptStatus {
                status: Status::new(id),
                digest: None,
            });
            change(&mut kept.status, &mut kept.digest);
            kept.status.clone()
        })
    }

    /// Writes the changes of the last moments.
    pub fn flush(&self) -> Result<(), datafile::Error> {
        self.file.flush()
    }
}

/// The context of generic files (no token, no Action URL) for an agent that phones reach at
/// `public_url`. The one constructor: the agent serves with it and `phone2mqtt provision`
/// prints with it, so both write the same URLs and the same Action URI allow-list host.
pub fn generic_ctx(public_url: &str) -> ProvisionCtx {
    ProvisionCtx {
        public_url: public_url.trim_end_matches('/').to_string(),
        token: None,
        agent_host: host_of(public_url),
        format: None,
    }
}

/// The host part of a URL, for Action URI allow lists: an IPv6 address without its brackets.
fn host_of(url: &str) -> String {
    url::Url::parse(url)
        .ok()
        .and_then(|u| u.host_str().map(|h| h.trim_matches(['[', ']']).to_string()))
        .unwrap_or_else(|| "127.0.0.1".into())
}

/// What a phone's own file is written from: everything the agent holds for it and nothing it
/// fetches. The agent passes its own (`Shared::sources`); `phone2mqtt provision` reads the same
/// from the config and the data directory (`offline_file`).
pub struct Sources<'a> {
    /// The generic context (`generic_ctx`); a phone's own file adds its token.
    pub generic: &'a ProvisionCtx,
    /// The key every phone's token is derived from (`<data_dir>/phone_key`).
    pub keys: &'a PhoneKeys,
    /// The profile layers: phone2mqtt.toml's and the pushed ones (`<data_dir>/provisioning.toml`).
    pub profiles: &'a Profiles,
}

impl Sources<'_> {
    /// The context of phone `mac`'s own file: its token in every Action URL.
    pub fn phone_ctx(&self, mac: &PhoneId) -> ProvisionCtx {
        self.generic.for_phone(self.keys.token(mac))
    }
}

/// A phone's file as phone2mqtt writes it (without the site's upstream part), and what its
/// vendor could not program: the one function behind both the file the agent serves and the one
/// `phone2mqtt provision` prints. `config` is the phone's `[[phone]]` entry (configured or
/// adopted); `None` for a phone the agent does not know. A generic file (no MAC) carries no
/// token and no Action URL: it is served to every phone that asks, and each phone gets its
/// Action URLs from its own file.
pub fn phone_file(
    sources: &Sources,
    spec: &'static VendorSpec,
    mac: Option<&PhoneId>,
    config: Option<&PhoneConfig>,
) -> (String, Vec<String>) {
    let Some(mac) = mac else {
        return ((spec.provision)(sources.generic), Vec::new());
    };
    let ctx = &sources.phone_ctx(mac);
    let base = (spec.provision)(ctx);
    let (settings, refused) = additions(sources.profiles, spec, ctx, mac, config);
    if settings.is_empty() {
        return (base, refused);
    }
    let extras = (spec.programming.write)(&settings);
    match spec.programming.format.merge(&base, &extras) {
        Ok(file) => (file, refused),
        Err(err) => {
            // Both files are phone2mqtt's own: this is a bug, not a site problem.
            warn!(vendor = spec.id, cause = %err, "Could not add the phone's settings to its file.");
            (
                base,
                vec![format!("the phone's settings could not be written: {err}")],
            )
        }
    }
}

/// Every setting phone2mqtt adds to a phone's file (keys, logo, settings of every layer), and
/// what its vendor cannot program.
fn additions(
    profiles: &Profiles,
    spec: &'static VendorSpec,
    ctx: &ProvisionCtx,
    mac: &PhoneId,
    config: Option<&PhoneConfig>,
) -> (Vec<phone_vendors::Setting>, Vec<String>) {
    let profile = profiles.profile(spec.id, mac, config);
    let logo = profile
        .logo
        .as_ref()
        .map(|file| logo_at(&ctx.public_url, file));
    phone_vendors::phone_settings(spec, ctx, mac, &profile, logo.as_deref())
}

/// The file the running agent serves a phone (without the site's upstream part).
pub fn own_file(
    shared: &Shared,
    spec: &'static VendorSpec,
    mac: Option<&PhoneId>,
) -> (String, Vec<String>) {
    let phone = mac.and_then(|mac| shared.phones.registry.get(mac));
    let config = phone.as_ref().and_then(|p| p.config.as_ref());
    phone_file(&shared.sources(), spec, mac, config)
}

/// What `phone2mqtt provision` prints, and what it tells the installer about it.
pub struct OfflineFile {
    pub text: String,
    /// What the vendor cannot program, as the agent reports it.
    pub refused: Vec<String>,
    /// The phone's vendor where phone2mqtt.toml or an adoption names the phone; `None` for a
    /// phone the agent does not know (it gets what an unknown phone gets).
    pub known_as: Option<String>,
}

/// The file the agent would serve phone `mac` (`None`: the generic file), read from the config
/// and the data directory as the agent reads them when it starts (its phones, configured and
/// adopted; the pushed layers; the token key), without a running agent, and written by the same
/// `phone_file`. The site's `[provisioning] upstream` part is not fetched: it needs the network.
pub fn offline_file(
    config: &Config,
    spec: &'static VendorSpec,
    mac: Option<&PhoneId>,
    format: Option<String>,
) -> anyhow::Result<OfflineFile> {
    let mut generic = generic_ctx(&config.http.public_url_for(config.http.listen));
    generic.format = format;
    let Some(mac) = mac else {
        // The generic file: nothing of the data directory in it (no token, no profile).
        return Ok(OfflineFile {
            text: (spec.provision)(&generic),
            refused: Vec::new(),
            known_as: None,
        });
    };
    let data_dir = &config.agent.data_dir;
    let kept = super::store::PhoneStore::load(data_dir.join(super::PHONES_FILE))
        .map_err(|err| anyhow::anyhow!("agent.data_dir: adopted phones: {err}"))?;
    let phones = super::known_phones(config, &kept.content());
    let phone = phones.iter().find(|p| &p.id() == mac);
    // The key the running agent derives tokens from, in the same data directory.
    let keys = PhoneKeys::load(data_dir)?;
    let profiles = Profiles::load(data_dir.join(super::PROFILES_FILE), &config.provisioning)
        .map_err(|err| anyhow::anyhow!("agent.data_dir: pushed provisioning: {err}"))?;
    let sources = Sources {
        generic: &generic,
        keys: &keys,
        profiles: &profiles,
    };
    let (text, refused) = phone_file(&sources, spec, Some(mac), phone);
    Ok(OfflineFile {
        text,
        refused,
        known_as: phone.map(|p| p.vendor.clone()),
    })
}

/// The URL a logo is served at.
pub fn logo_url(serving: &super::Serving, file: &str) -> String {
    logo_at(&serving.public_url, file)
}

fn logo_at(public_url: &str, file: &str) -> String {
    format!("{}/logos/{file}", public_url.trim_end_matches('/'))
}

fn plain(status: StatusCode, text: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        format!("{text}\n"),
    )
        .into_response()
}

/// The upstream URL of a file: the site's server with the same file name.
fn upstream_url(upstream: &str, file: &str) -> String {
    format!("{}/{file}", upstream.trim_end_matches('/'))
}

/// The client for the site's provisioning server: normal certificate verification, since the
/// file it answers holds the phones' SIP passwords (the phones' own client accepts self-signed
/// certificates, as phones have them).
pub fn upstream_client() -> anyhow::Result<reqwest::Client> {
    reqwest::Client::builder()
        .timeout(UPSTREAM_TIMEOUT)
        .build()
        .map_err(|err| anyhow::anyhow!("cannot build the upstream HTTP client: {err}"))
}

/// A URL as logs and answers show it: without the user and password it may carry.
fn shown_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) => {
            let _ = parsed.set_username("");
            let _ = parsed.set_password(None);
            parsed.to_string()
        }
        Err(_) => url.to_string(),
    }
}

/// The site's own file; `Ok(None)` when it has none for this phone (404).
async fn fetch_upstream(
    shared: &Shared,
    url: &str,
    user_agent: Option<&str>,
) -> Result<Option<String>, String> {
    let mut request = shared.serving.upstream_http.get(url);
    if let Some(user_agent) = user_agent {
        // Site servers pick files by the phone's User-Agent too.
        request = request.header(header::USER_AGENT, user_agent);
    }
    let url = shown_url(url);
    // Phones wait for this: the upstream's own timeout, if shorter than a download's.
    let mut cap = super::download::Cap::of(&shared.limits);
    cap.deadline = cap.deadline.min(UPSTREAM_TIMEOUT);
    match super::download::fetch(request, cap, true, &shared.metrics).await {
        Ok(body) => Ok(body.map(|body| String::from_utf8_lossy(&body).into_owned())),
        Err(err) => Err(format!("{url}: {err}")),
    }
}

/// Serves a provisioning file; `None` when the path is no vendor's.
pub async fn serve(
    shared: &Arc<Shared>,
    file: &str,
    user_agent: Option<&str>,
    peer_ip: Option<std::net::IpAddr>,
) -> Option<Response> {
    let configured = |id: &PhoneId| {
        shared
            .phones
            .registry
            .get(id)
            .filter(|p| p.config.is_some())
            .map(|p| p.vendor)
    };
    let (spec, mac) = phone_vendors::provision_lookup(file, user_agent, configured)?;
    info!(peer = ?peer_ip, vendor = spec.id, file, mac = ?mac.as_ref().map(|m| m.to_string()), "Provisioning file requested.");
    if let Some(id) = &mac {
        if let Err(refused) = discover(shared, spec, id, user_agent, peer_ip).await {
            return Some(refused);
        }
    }
    let config = &shared.serving.provisioning;
    // `yealink_boot` names the one vendor with a boot file today; the spec says which have one.
    let boot_file = spec.boot_file.filter(|_| config.yealink_boot);
    let boot_mode = boot_file.is_some();
    if file.ends_with(".boot") {
        return Some(match (&mac, boot_file, &config.upstream) {
            (Some(mac), Some(boot_file), Some(upstream)) => text(boot_file(
                &upstream_url(upstream, &format!("{mac}.cfg")),
                &format!(
                    "{}/{mac}.cfg",
                    shared.serving.public_url.trim_end_matches('/')
                ),
            )),
            // Without a boot file the phone goes on to its .cfg files.
            _ => plain(StatusCode::NOT_FOUND, "no boot file".into()),
        });
    }
    let (own, refused) = own_file(shared, spec, mac.as_ref());
    let body = match (&config.upstream, boot_mode) {
        (Some(upstream), false) => {
            let url = upstream_url(upstream, file);
            let fetched = fetch_upstream(shared, &url, user_agent).await;
            let url = shown_url(&url);
            match fetched {
                Ok(Some(site)) => match spec.programming.format.merge(&site, &own) {
                    Ok(merged) => merged,
                    Err(err) => {
                        // Serving ours alone would drop the site's accounts: the phone keeps
                        // what it has and asks again later.
                        warn!(%url, cause = %err, "The site's provisioning file cannot be merged; nothing served.");
                        return Some(plain(
                            StatusCode::BAD_GATEWAY,
                            format!("the site's file {url} cannot be merged: {err}"),
                        ));
                    }
                },
                Ok(None) => own.clone(),
                Err(err) => {
                    warn!(cause = %err, "The site's provisioning server failed; nothing served.");
                    return Some(plain(
                        StatusCode::BAD_GATEWAY,
                        format!("the site's provisioning server failed: {err}"),
                    ));
                }
            }
        }
        _ => own.clone(),
    };
    if let Some(id) = &mac {
        let served_digest = md5_hex(&own);
        let file = file.to_string();
        let status = shared.serving.served.update(id, |status, kept| {
            status.served_at = Some(now_rfc3339());
            status.file = Some(file);
            status.in_sync = Some(true);
            status.method = Some("served".into());
            status.drift.clear();
            status.refused = refused;
            *kept = Some(served_digest);
        });
        publish_status(shared, &status).await;
    }
    Some(text(body))
}

fn text(body: String) -> Response {
    ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], body).into_response()
}

/// A phone asking for its file is discovered, with what its User-Agent tells. Past `[limits]
/// discovered_per_minute` or `discovered_phones` the request is refused (429 or 503: the phone
/// asks again later), nothing is kept and nothing published.
async fn discover(
    shared: &Arc<Shared>,
    spec: &'static VendorSpec,
    id: &PhoneId,
    user_agent: Option<&str>,
    ip: Option<std::net::IpAddr>,
) -> Result<(), Response> {
    if let Err(limit) = admit_discovery(shared, id) {
        warn!(phone = %id, peer = ?ip, ?limit, "Provisioning request of an unknown phone refused: discovery limit.");
        return Err(discovery_refused(shared, limit));
    }
    let identity = user_agent.and_then(spec.recognise).unwrap_or_default();
    let came_from = ip.map(|ip| ip.to_canonical());
    let inserted = shared.phones.registry.insert_discovered(
        id.clone(),
        spec,
        identity.model,
        identity.firmware,
        came_from.map(|ip| ip.to_string()),
    );
    if let Some(came_from) = came_from {
        shared.phones.registry.note_provisioning(id, came_from);
    }
    if let Some(info) = inserted {
        info!(phone = %id, vendor = spec.id, "Discovered a phone by its provisioning request.");
        let update = crate::agent::registry::Update {
            id: id.clone(),
            discovered: true,
            info: Some(info.clone()),
            state: None,
            online: None,
        };
        shared.publish_update(update).await;
        shared.record_discovery(&info, ip).await;
    }
    Ok(())
}

/// `Registry::admit_discovery` with the agent's limits; a refusal is counted.
pub(crate) fn admit_discovery(shared: &Shared, id: &PhoneId) -> Result<(), Limit> {
    let limits = &shared.limits;
    shared
        .phones
        .registry
        .admit_discovery(id, limits.discovered_per_minute, limits.discovered_phones)
        .inspect_err(|limit| shared.metrics.refused(*limit))
}

/// What a phone the gateway will not discover now is answered: 429 with `Retry-After` past the
/// rate, 503 past the total (until phones are adopted or the limit raised).
pub(crate) fn discovery_refused(shared: &Shared, limit: Limit) -> Response {
    let limits = &shared.limits;
    match limit {
        Limit::discovery_rate => (
            StatusCode::TOO_MANY_REQUESTS,
            [(header::RETRY_AFTER, "60")],
            format!(
                "more than {} new phones this minute ([limits] discovered_per_minute); try again later",
                limits.discovered_per_minute
            ),
        )
            .into_response(),
        _ => plain(
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "the gateway knows {} unconfigured phones already ([limits] discovered_phones); adopt some or raise the limit",
                limits.discovered_phones
            ),
        ),
    }
}

/// Publishes a phone's provisioning status, retained.
pub async fn publish_status(shared: &Shared, status: &Status) {
    let status = shown(shared, status);
    shared
        .bus
        .mqtt
        .publish_json(shared.bus.topics.provisioning(&status.phone), &status, true)
        .await;
}

/// A status as shown outside the agent: values never show an Action URL token or a password.
pub fn shown(shared: &Shared, status: &Status) -> Status {
    let mut status = status.clone();
    for drift in &mut status.drift {
        for value in [&mut drift.expected, &mut drift.actual]
            .into_iter()
            .flatten()
        {
            *value = shared.phones.keys.hide_tokens(&status.phone, value);
        }
        if crate::profile::is_secret_setting(&drift.setting) {
            drift.expected = drift.expected.as_ref().map(|_| "***".into());
            drift.actual = drift.actual.as_ref().map(|_| "***".into());
        }
    }
    status
}

/// After a change to a phone's profile: whether what it holds is still what it would be served.
pub async fn profile_changed(shared: &Shared, id: &PhoneId) {
    let Some(phone) = shared.phones.registry.get(id) else {
        return;
    };
    let (own, refused) = own_file(shared, phone.vendor, Some(id));
    let in_sync = shared
        .serving
        .served
        .served_digest(id)
        .map(|d| d == md5_hex(&own));
    let status = shared.serving.served.update(id, |status, _| {
        status.in_sync = in_sync;
        status.method = Some("served".into());
        status.drift = if in_sync == Some(false) {
            vec![Drift {
                setting: "(file)".into(),
                expected: Some("the current keys, settings and logo".into()),
                actual: Some("the file served before they changed".into()),
            }]
        } else {
            Vec::new()
        };
        status.refused = refused;
    });
    publish_status(shared, &status).await;
    // Programmed keys are Home Assistant device triggers.
    crate::ha::publish_phone(&shared.homeassistant, id, true).await;
}

/// The settings a read-back compares: every Action URL, then the phone's own additions.
pub fn expected_settings(
    shared: &Shared,
    spec: &'static VendorSpec,
    id: &PhoneId,
) -> Vec<phone_vendors::Setting> {
    let ctx = &shared.phone_ctx(id);
    let mut expected: Vec<phone_vendors::Setting> = spec
        .events
        .iter()
        .filter_map(|event| {
            let url = ctx.action_url(spec, event)?;
            Some(phone_vendors::Setting::new(event.setting, url))
        })
        .collect();
    let phone = shared.phones.registry.get(id);
    let config = phone.as_ref().and_then(|p| p.config.as_ref());
    expected.extend(additions(&shared.serving.profiles, spec, ctx, id, config).0);
    expected
}

/// Records a verification and publishes it.
pub async fn record_verification(
    shared: &Shared,
    id: &PhoneId,
    method: &'static str,
    drift: Vec<Drift>,
) -> Status {
    let status = shared.serving.served.update(id, |status, _| {
        status.verified_at = Some(now_rfc3339());
        status.method = Some(method.into());
        status.in_sync = Some(drift.is_empty());
        status.drift = drift;
    });
    publish_status(shared, &status).await;
    status
}

/// Compares what the phone has with what the agent expects; the digest comparison when the
/// vendor allows no read-back.
pub fn served_drift(shared: &Shared, spec: &'static VendorSpec, id: &PhoneId) -> Vec<Drift> {
    let (own, _) = own_file(shared, spec, Some(id));
    match shared.serving.served.served_digest(id) {
        Some(served) if served == md5_hex(&own) => Vec::new(),
        Some(_) => vec![Drift {
            setting: "(file)".into(),
            expected: Some("the current keys, settings and logo".into()),
            actual: Some("the file served before they changed: re-provision the phone".into()),
        }],
        None => vec![Drift {
            setting: "(file)".into(),
            expected: Some("a provisioning request to this agent".into()),
            actual: Some("none since the agent started: point the phone's provisioning server at the agent, or re-provision it".into()),
        }],
    }
}
