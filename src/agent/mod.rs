//! The phone agent: receives Action URL callbacks, keeps each phone's state, publishes to MQTT,
//! and drives phones through Action URI from their command topics.
//!
//! Phones' side:
//! - `receiver`: the HTTP routes phones call (Action URLs) and fetch (provisioning, logos).
//! - `registry` and `state`: phones by id and how events change their state.
//! - `commands`: one queue per phone, one command at a time, every one ending in a result.
//! - `exchange`: the HTTP exchange with a phone (credentials, Digest, the reply), shared by the
//!   queues and `reprovision`.
//! - `provisioning`: the files phones fetch, merged with the site's; `reprovision`: the
//!   commands the agent carries out itself (`configure`, `provision`, `logo`...).
//! - `logo`: logos converted for a phone's screen and hosted; `download`: what the agent fetches
//!   (logos, the site's upstream files), capped in bytes and time.
//!
//! MQTT side:
//! - `dispatch`: the messages the agent subscribes to, each command ending in a result.
//! - `adoption`: `cmd/adopt`, a discovered phone's `[[phone]]` entry.
//! - `scheduler`: reminders shown when due; `reminders`: the kept list.
//! - `directory`: the PBX subscriber list.
//!
//! Kept in the data directory (`datafile` writes each file whole): `store` (adopted and
//! discovered phones), `identities` (what phones told), `profiles` (pushed keys and settings).
//!
//! Home Assistant discovery (`crate::ha`) is called from here and reads the phones through
//! `ha::Phones`, which `Shared` implements; it never imports the agent.

pub mod adoption;
pub mod commands;
pub mod directory;
pub mod dispatch;
pub mod download;
pub mod exchange;
pub mod identities;
pub mod logo;
pub mod profiles;
pub mod provisioning;
pub mod receiver;
pub mod registry;
pub mod reminders;
pub mod reprovision;
pub mod scheduler;
pub mod state;
pub mod store;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::info;

use crate::config::Config;
use crate::model::{Command, CommandArg, CommandKind, CommandResult, Event};
use crate::mqtt::{self, Mqtt};
use crate::phone_vendors::ProvisionCtx;
use crate::shutdown::Lifecycle;
use crate::topics::Topics;

use self::commands::{Job, Queues};
use self::registry::{Registry, Update};
use self::reminders::Reminders;

/// What the agent's tasks share, grouped by job: each group is what one side of the agent
/// works with, so that a reader (or a function) can tell which side a piece belongs to.
#[derive(Debug)]
pub struct Shared {
    /// This agent's name: its bridge topics, its reminders, each of its phones' `info.agent`.
    pub name: String,
    /// The MQTT side: what the agent publishes with.
    pub bus: Bus,
    /// The phones' side: who they are, how to reach them, their command queues.
    pub phones: PhoneSide,
    /// Provisioning: what phones fetch and how it was served.
    pub serving: Serving,
    /// What the agent keeps in its data directory across restarts.
    pub kept: Kept,
    /// Home Assistant discovery (`src/ha/`): what it publishes with. It reads the phones
    /// through `ha::Phones`, implemented below.
    pub homeassistant: Arc<crate::ha::Link>,
    /// The agent's stop, and its tasks (each phone's queue runner among them).
    pub shutdown: CancellationToken,
    pub tracker: TaskTracker,
    /// Restarts the agent's tasks after a panic.
    pub supervisor: crate::supervise::Supervisor,
    /// Images decoded at once at most (`[limits] image_decodes`), uploads and downloads alike.
    pub image_decodes: tokio::sync::Semaphore,
    /// A reminders list is due on MQTT: set by the first change, cleared by the one publish
    /// that follows the changes of the next moments.
    reminders_due: std::sync::atomic::AtomicBool,
    /// `[limits]`, and the counters their refusals go to.
    pub limits: crate::config::LimitsConfig,
    pub metrics: Arc<crate::metrics::Metrics>,
}

/// The MQTT side of the agent.
#[derive(Debug)]
pub struct Bus {
    pub topics: Topics,
    /// The agent's session (subscribed to commands; its will marks the bridge offline).
    pub mqtt: Mqtt,
    /// How to open another session to the broker (without subscriptions or will).
    pub broker_session: mqtt::SessionOptions,
    /// The broker is another process (`[mqtt] url`), which may hold retained messages from
    /// before this agent started; the embedded one starts empty with it.
    pub external_broker: bool,
}

/// The phones' side: what it takes to know a phone and to send it a command.
#[derive(Debug)]
pub struct PhoneSide {
    pub registry: Registry,
    /// One command queue per phone.
    pub queues: Queues,
    /// How each Digest-vendor phone asked to authenticate.
    pub phone_auth: exchange::PhoneAuth,
    /// Talks to phones (and their self-signed certificates).
    pub http: reqwest::Client,
    /// Each phone's Action URL token, and the legacy token's grace period.
    pub keys: Arc<crate::phone_auth::PhoneKeys>,
    /// Seconds a phone has to answer one command (`[agent] command_timeout`).
    pub command_timeout: Duration,
    /// Answer commands for unknown phones with an error (`[agent] answer_unknown_phones`).
    pub answer_unknown_phones: bool,
}

/// Provisioning: the files phones fetch, and what each phone was served.
#[derive(Debug)]
pub struct Serving {
    /// How phones reach the agent: in every URL a file carries.
    pub public_url: String,
    /// The context of generic files (no token, no Action URL); `Shared::phone_ctx` gives a
    /// phone's.
    pub provision: ProvisionCtx,
    /// `[provisioning]`: upstream server, allow list, adoption defaults.
    pub provisioning: crate::config::ProvisioningConfig,
    /// `[provisioning] auth_username`/`auth_password`, when set.
    pub provisioning_auth: Option<crate::phone_auth::ProvisioningAuth>,
    /// For `[provisioning] upstream`: certificates verified, unlike `PhoneSide::http`, which
    /// talks to phones and their self-signed certificates.
    pub upstream_http: reqwest::Client,
    /// Keys, settings and logos per site, group and phone.
    pub profiles: profiles::Profiles,
    /// What each phone was served.
    pub served: provisioning::Served,
    /// Provisioning requests refused because they came from outside `[provisioning] allow`.
    pub refused_outside_allow: std::sync::atomic::AtomicU64,
}

/// What the agent keeps in its data directory.
#[derive(Debug)]
pub struct Kept {
    /// `[agent] data_dir`: these files, the logos, the phones' token key.
    pub data_dir: PathBuf,
    /// Scheduled messages.
    pub reminders: Reminders,
    /// What configured phones last told about themselves.
    pub identities: identities::Identities,
    /// Adopted and discovered phones.
    pub store: store::PhoneStore,
}

/// A running agent.
#[derive(Debug, Clone)]
pub struct Agent {
    shared: Arc<Shared>,
}

/// How the agent is started.
#[derive(Debug, Clone)]
pub struct AgentOptions {
    pub name: String,
    pub broker: mqtt::BrokerUrl,
    pub public_url: String,
    /// The Manager's address, for links to it (Home Assistant's device page).
    pub manager_url: String,
    pub keys: Arc<crate::phone_auth::PhoneKeys>,
    /// Seconds between state polls of configured phones; zero turns polling off.
    pub poll_interval: Duration,
    /// The gateway's counters (`/metrics`).
    pub metrics: Arc<crate::metrics::Metrics>,
}

/// How long changes to the reminders are gathered before their list is published.
const REMINDERS_COALESCE: Duration = Duration::from_millis(200);

/// The subscriber directory and reminders kept in the data directory.
const DIRECTORY_FILE: &str = "directory.csv";
const REMINDERS_FILE: &str = "reminders.json";
const PHONES_FILE: &str = "phones.toml";
const PROFILES_FILE: &str = "provisioning.toml";
const IDENTITIES_FILE: &str = "identities.json";
const OUTBOX_FILE: &str = "outbox.json";
const PROVISIONING_STATUS_FILE: &str = "provisioning_status.json";

/// The phones the agent knows when it starts: phone2mqtt.toml's, then those adopted at run time
/// (`phones.toml`); the config wins where both name a MAC.
pub fn known_phones(config: &Config, kept: &store::Stored) -> Vec<crate::config::PhoneConfig> {
    let mut phones = config.phones.clone();
    for adopted in &kept.phone {
        let config = adopted.to_config();
        let known = crate::model::PhoneId::parse(&config.mac)
            .filter(|id| !phones.iter().any(|p| &p.id() == id));
        if known.is_some() && crate::phone_vendors::find(&config.vendor).is_some() {
            phones.push(config);
        }
    }
    phones
}

impl Agent {
    pub fn start(
        config: &Config,
        options: AgentOptions,
        lifecycle: &Lifecycle,
    ) -> anyhow::Result<Agent> {
        let data_dir = config.agent.data_dir.clone();
        let phone_store = store::PhoneStore::load(data_dir.join(PHONES_FILE))
            .map_err(|err| anyhow::anyhow!("agent.data_dir: adopted phones: {err}"))?;
        let kept = phone_store.content();
        let phones = known_phones(config, &kept);
        let profiles = profiles::Profiles::load(data_dir.join(PROFILES_FILE), &config.provisioning)
            .map_err(|err| anyhow::anyhow!("agent.data_dir: pushed provisioning: {err}"))?;
        let reminders = Reminders::load(
            data_dir.join(REMINDERS_FILE),
            Duration::from_secs(config.agent.reminder_expiry),
        )
        .map_err(|err| anyhow::anyhow!("agent.data_dir: reminders: {err}"))?;
        let identities = identities::Identities::load(data_dir.join(IDENTITIES_FILE))
            .map_err(|err| anyhow::anyhow!("agent.data_dir: identities: {err}"))?;
        let served = provisioning::Served::load(data_dir.join(PROVISIONING_STATUS_FILE))
            .map_err(|err| anyhow::anyhow!("agent.data_dir: provisioning status: {err}"))?;
        // The directory: the configured file wins at start; otherwise the last import.
        let (file, setting) = match &config.directory.file {
            Some(file) => (Some(file.clone()), "directory.file"),
            None => {
                let kept = data_dir.join(DIRECTORY_FILE);
                (kept.exists().then_some(kept), "agent.data_dir")
            }
        };
        let directory = match file.map(|file| directory::load(&file, config.limits.directory_rows))
        {
            None => None,
            Some(Ok(directory)) => Some(directory),
            // Over the limit: refused, and the agent serves without a directory rather than not at all.
            Some(Err((directory::DirectoryError::TooManyRows { .. }, err))) => {
                options
                    .metrics
                    .refused(crate::metrics::Limit::directory_rows);
                tracing::error!(cause = %err, "The subscriber directory is not loaded; the agent starts without one.");
                None
            }
            Some(Err((_, err))) => anyhow::bail!("{setting}: {err}"),
        };
        let topics = Topics::new(&config.mqtt.base_topic);
        let bridge = topics.bridge_state(&options.name);
        let discovery = crate::ha::Discovery::new(&config.homeassistant);
        // How to reach the broker, for the agent's short-lived sessions (reading Home
        // Assistant's retained discovery).
        let broker_session = mqtt::SessionOptions::new(
            options.broker.clone(),
            format!("phone2mqtt-agent-{}", options.name),
            &config.mqtt,
        );
        // What the last run could not deliver before it stopped (`[mqtt] outbox_on_disk`).
        let keep_outbox = config
            .mqtt
            .outbox_on_disk
            .then(|| data_dir.join(OUTBOX_FILE));
        let preload = match &keep_outbox {
            // Base64 and JSON escapes make a kept message up to about twice its bytes.
            Some(path) => mqtt::kept::load(path, 3 * config.mqtt.outbox_bytes as u64)
                .map_err(|err| anyhow::anyhow!("agent.data_dir: kept outbox: {err}"))?,
            None => Vec::new(),
        };
        if !preload.is_empty() {
            info!(
                messages = preload.len(),
                "Sending the messages the last run could not deliver."
            );
        }
        let (mqtt, incoming) = mqtt::start(
            mqtt::SessionOptions {
                persistent: config.mqtt.url.is_some(),
                keep_outbox,
                preload,
                last_will: Some((bridge.clone(), "offline".into())),
                goodbye: Some((bridge, "offline".into())),
                subscriptions: vec![
                    topics.command_filter(),
                    topics.group_command_filter(),
                    topics.directory_set(),
                    topics.reminders_cancel(&options.name),
                ]
                .into_iter()
                .chain(discovery.subscriptions())
                .collect(),
                metrics: Some(options.metrics.clone()),
                supervisor: Some(lifecycle.supervisor.clone()),
                ..broker_session.clone()
            },
            lifecycle.sessions.clone(),
            &lifecycle.session_tracker,
        );
        let homeassistant = Arc::new(crate::ha::Link {
            agent: options.name.clone(),
            topics: topics.clone(),
            public_url: options.public_url.clone(),
            manager_url: options.manager_url.clone(),
            mqtt: mqtt.clone(),
            broker_session: broker_session.clone(),
            shutdown: lifecycle.work.clone(),
            discovery,
        });
        let shared = Arc::new(Shared {
            bus: Bus {
                topics,
                mqtt,
                broker_session,
                external_broker: config.mqtt.url.is_some(),
            },
            phones: PhoneSide {
                registry: Registry::new(&options.name, &phones),
                queues: Queues::default(),
                phone_auth: exchange::PhoneAuth::default(),
                http: exchange::http_client(),
                keys: options.keys.clone(),
                command_timeout: Duration::from_secs_f64(config.agent.command_timeout),
                answer_unknown_phones: config.agent.answer_unknown_phones,
            },
            serving: Serving {
                provision: provisioning::generic_ctx(&options.public_url),
                public_url: options.public_url,
                provisioning: config.provisioning.clone(),
                provisioning_auth: config.provisioning.auth().map(|(username, password)| {
                    crate::phone_auth::ProvisioningAuth::new(username, password, &options.keys)
                }),
                upstream_http: provisioning::upstream_client()?,
                profiles,
                served,
                refused_outside_allow: std::sync::atomic::AtomicU64::new(0),
            },
            kept: Kept {
                reminders,
                store: phone_store,
                identities,
                data_dir,
            },
            name: options.name,
            homeassistant,
            shutdown: lifecycle.work.clone(),
            tracker: lifecycle.work_tracker.clone(),
            supervisor: lifecycle.supervisor.clone(),
            image_decodes: tokio::sync::Semaphore::new(config.limits.image_decodes),
            reminders_due: std::sync::atomic::AtomicBool::new(false),
            limits: config.limits.clone(),
            metrics: options.metrics,
        });
        if let Some(subscribers) = directory {
            info!(
                subscribers = subscribers.len(),
                "Subscriber directory loaded."
            );
            shared.phones.registry.set_directory(subscribers);
        }
        // Within [limits] discovered_phones, even if the file holds more (kept as it is).
        for found in kept.discovered.iter().take(shared.limits.discovered_phones) {
            let id = crate::model::PhoneId::parse(&found.mac);
            let vendor = crate::phone_vendors::find(&found.vendor);
            if let (Some(id), Some(vendor)) = (id, vendor) {
                let (model, firmware, ip) = (
                    found.model.clone(),
                    found.firmware.clone(),
                    found.ip.clone(),
                );
                let _ = shared.phones.registry.insert_discovered(
                    id.clone(),
                    vendor,
                    model,
                    firmware,
                    ip,
                );
                if let Some(came_from) = found.came_from.as_deref().and_then(|ip| ip.parse().ok()) {
                    shared.phones.registry.note_provisioning(&id, came_from);
                }
            }
        }
        for (id, told) in shared.kept.identities.all() {
            shared
                .phones
                .registry
                .restore_identity(&id, told.model, told.firmware, told.ip);
        }
        let tracker = &lifecycle.work_tracker;
        // Each task is restarted after a panic (`supervise`); the dispatcher's channel outlives it.
        let supervisor = &lifecycle.supervisor;
        let incoming = crate::supervise::Relay::new(incoming);
        let task = shared.clone();
        supervisor.spawn(tracker, "dispatcher", move || {
            dispatch::run(task.clone(), incoming.clone())
        });
        let task = shared.clone();
        supervisor.spawn(tracker, "reminders", move || {
            scheduler::run_reminders(task.clone())
        });
        let task = shared.clone();
        supervisor.spawn(tracker, "keep_phones", move || keep_phones(task.clone()));
        let task = shared.clone();
        supervisor.spawn(tracker, "republish_on_connect", move || {
            republish_on_connect(task.clone())
        });
        let task = shared.clone();
        supervisor.spawn(tracker, "report_outbox", move || {
            report_outbox(task.clone())
        });
        tracker.spawn(commands::answer_queued_at_stop(shared.clone()));
        let task = shared.clone();
        supervisor.spawn(tracker, "homeassistant", move || {
            crate::ha::run_publisher(task.homeassistant.clone(), task.clone())
        });
        if !options.poll_interval.is_zero() {
            let (task, every) = (shared.clone(), options.poll_interval);
            supervisor.spawn(tracker, "poller", move || poll_phones(task.clone(), every));
        }
        Ok(Agent { shared })
    }

    /// The routes phones use: Action URL callbacks and provisioning files.
    pub fn router(&self) -> Router {
        receiver::router(self.shared.clone())
    }

    /// Converts and hosts a logo uploaded for phone `id` (the web side's upload route): the
    /// logo and its URL.
    pub async fn upload_logo(
        &self,
        id: &str,
        body: axum::body::Bytes,
    ) -> Result<(logo::Logo, String), logo::Refused> {
        logo::upload(&self.shared, id, body).await
    }

    /// The gateway's counters.
    pub fn metrics(&self) -> &crate::metrics::Metrics {
        &self.shared.metrics
    }

    /// `[limits] image_bytes`: the upload route's body limit.
    pub fn image_bytes(&self) -> usize {
        self.shared.limits.image_bytes
    }

    pub fn mqtt(&self) -> &Mqtt {
        &self.shared.bus.mqtt
    }

    /// The context of generic files, without a token.
    pub fn provision_ctx(&self) -> &ProvisionCtx {
        &self.shared.serving.provision
    }

    /// The context of one phone's own file, with its token.
    pub fn phone_ctx(&self, id: &crate::model::PhoneId) -> ProvisionCtx {
        self.shared.phone_ctx(id)
    }

    /// Provisioning requests refused so far because they came from outside `[provisioning] allow`.
    pub fn refused_outside_allow(&self) -> u64 {
        self.shared
            .serving
            .refused_outside_allow
            .load(std::sync::atomic::Ordering::Relaxed)
    }
}

impl Shared {
    /// The context of phone `id`'s own file: its token in every Action URL.
    pub fn phone_ctx(&self, id: &crate::model::PhoneId) -> ProvisionCtx {
        self.sources().phone_ctx(id)
    }

    /// What phones' own files are written from (`provisioning::phone_file`).
    pub fn sources(&self) -> provisioning::Sources<'_> {
        provisioning::Sources {
            generic: &self.serving.provision,
            keys: &self.phones.keys,
            profiles: &self.serving.profiles,
        }
    }

    pub async fn publish_update(&self, update: Update) {
        if let Some(info) = &update.info {
            self.kept.identities.remember(info);
            self.bus
                .mqtt
                .publish_json(self.bus.topics.info(&update.id), info, true)
                .await;
        }
        if let Some(state) = &update.state {
            self.bus
                .mqtt
                .publish_json(self.bus.topics.state(&update.id), state, true)
                .await;
        }
        if let Some(online) = update.online {
            let payload = if online { "online" } else { "offline" };
            self.bus
                .mqtt
                .publish(self.bus.topics.availability(&update.id), payload, true)
                .await;
        }
        crate::ha::publish_phone(&self.homeassistant, &update.id, update.info.is_some()).await;
    }

    pub async fn publish_event(&self, event: &Event) {
        self.metrics.event();
        self.bus
            .mqtt
            .publish_event(self.bus.topics.event(&event.phone), event)
            .await;
    }

    /// Every command's result, counted by status.
    pub async fn publish_result(&self, reply_to: &str, result: &CommandResult) {
        self.metrics.result(result.status.name());
        self.bus
            .mqtt
            .publish_json(self.bus.topics.result(reply_to), result, false)
            .await;
    }

    /// A group command's own result (what is wrong with it, a reminder, `configure`).
    pub async fn publish_group_result(&self, group: &str, result: &CommandResult) {
        self.metrics.result(result.status.name());
        self.bus
            .mqtt
            .publish_json(self.bus.topics.group_result(group), result, false)
            .await;
    }

    /// The keys, settings and logos pushed for the site and groups (secrets as `***`), retained.
    pub async fn publish_pushed_provisioning(&self) {
        let pushed = self.serving.profiles.pushed();
        let shown = serde_json::json!({
            "site": crate::profile::redacted(&pushed.site),
            "group": pushed
                .group
                .iter()
                .map(|(name, layer)| (name.clone(), crate::profile::redacted(layer)))
                .collect::<std::collections::BTreeMap<_, _>>(),
        });
        self.bus
            .mqtt
            .publish_json(
                self.bus.topics.bridge_provisioning(&self.name),
                &shown,
                true,
            )
            .await;
    }

    /// Keeps a newly discovered phone and tells the world: a `phone_discovered` event on the
    /// bridge (its `info` is published with the update).
    /// `peer`: the address the phone's request came from; `auto_adopt` takes only phones inside
    /// `[provisioning] allow`.
    pub async fn record_discovery(
        self: &Arc<Self>,
        info: &crate::model::PhoneInfo,
        peer: Option<std::net::IpAddr>,
    ) {
        let kept = store::DiscoveredPhone {
            mac: info.id.to_string(),
            vendor: info.vendor.clone(),
            model: info.model.clone(),
            firmware: info.firmware.clone(),
            ip: info.ip.clone(),
            came_from: self
                .phones
                .registry
                .get(&info.id)
                .and_then(|p| p.came_from())
                .map(|ip| ip.to_string()),
        };
        // On disk before the phone's request is answered: one write per new phone (bounded by
        // [limits] discovered_per_minute), never one per callback.
        let shared = self.clone();
        let written = tokio::task::spawn_blocking(move || {
            shared.kept.store.update(|stored| {
                stored.discovered.retain(|d| d.mac != kept.mac);
                stored.discovered.push(kept);
            })
        })
        .await;
        match written {
            Ok(Ok(())) => {}
            Ok(Err(err)) => {
                tracing::error!(phone = %info.id, cause = %err, "The discovered phone could not be kept in the data directory; tried again in a second.");
                // Still in memory: `keep_phones` writes it with its next flush.
                self.kept.store.change_soon(|_| ());
            }
            Err(panic) => std::panic::resume_unwind(panic.into_panic()),
        }
        let event = serde_json::json!({
            "event": "phone_discovered",
            "phone": info.id,
            "ts": crate::model::now_rfc3339(),
            "vendor": info.vendor,
            "model": info.model,
            "firmware": info.firmware,
            "ip": info.ip,
        });
        self.bus
            .mqtt
            .publish_event(self.bus.topics.bridge_event(&self.name), &event)
            .await;
        if self.serving.provisioning.auto_adopt {
            if !peer.is_some_and(|ip| self.serving.provisioning.allows(ip)) {
                tracing::warn!(phone = %info.id, peer = ?peer, "Not adopted automatically: the phone's address is outside [provisioning] allow.");
                return;
            }
            // `[provisioning] auto_adopt`: the site's credentials, at the address the phone
            // called from.
            let result = adoption::adopt(self, info.id.as_str(), b"").await;
            self.publish_result(info.id.as_str(), &result).await;
        }
    }

    /// The directory with its matches, retained.
    pub async fn publish_directory(&self) {
        let report = self.phones.registry.directory_report();
        self.bus
            .mqtt
            .publish_json(self.bus.topics.directory(), &report, true)
            .await;
    }

    /// This agent's scheduled messages, retained.
    /// Publishes the retained reminders list soon, once for all the changes made meanwhile:
    /// a burst of 1,000 reminders is a few lists of up to 512 KiB on MQTT, not 1,000.
    pub async fn publish_reminders(self: &Arc<Self>) {
        use std::sync::atomic::Ordering;
        if self.reminders_due.swap(true, Ordering::AcqRel) {
            return;
        }
        let shared = self.clone();
        self.tracker.spawn(async move {
            tokio::time::sleep(REMINDERS_COALESCE).await;
            shared.reminders_due.store(false, Ordering::Release);
            let list = shared.kept.reminders.listed(directory::REPORT_BYTES);
            shared
                .bus
                .mqtt
                .publish_json(shared.bus.topics.reminders(&shared.name), &list, true)
                .await;
        });
    }
}

/// Home Assistant discovery reads the phones from the registry, and their programmed keys
/// from the profiles.
impl crate::ha::Phones for Shared {
    fn ids(&self) -> Vec<crate::model::PhoneId> {
        self.phones.registry.ids()
    }

    fn phone(&self, id: &crate::model::PhoneId) -> Option<crate::ha::KnownPhone> {
        self.phones
            .registry
            .get(id)
            .map(|phone| crate::ha::KnownPhone {
                info: phone.info,
                vendor: phone.vendor,
                config: phone.config,
            })
    }

    fn programmed_keys(&self, phone: &crate::ha::KnownPhone) -> Vec<crate::ha::ProgrammedKey> {
        self.serving
            .profiles
            .profile(phone.vendor.id, &phone.info.id, phone.config.as_ref())
            .keys
            .into_iter()
            .map(|key| crate::ha::ProgrammedKey {
                key: key.index.to_string(),
                label: key.label,
            })
            .collect()
    }
}

/// Queues a command for one phone (from `dispatch` and `scheduler`); a refusal (queue full, stopping) is published at once.
pub(crate) async fn submit(
    shared: &Arc<Shared>,
    id: &crate::model::PhoneId,
    reply_to: &str,
    command: Command,
    transaction: Option<String>,
) {
    let job = Job {
        command,
        reply_to: reply_to.to_string(),
        transaction,
        internal: false,
        reply: None,
    };
    if let Err(refused) = shared.phones.queues.submit(shared, id, job) {
        let (job, err) = *refused;
        let result =
            CommandResult::error(&job.reply_to, job.command.kind.name(), job.transaction, err);
        shared.publish_result(reply_to, &result).await;
    }
}

/// Queues a command for each phone of a group; each answers on its own result topic.
pub(crate) async fn submit_each(
    shared: &Arc<Shared>,
    phones: Vec<crate::model::PhoneId>,
    command: Command,
    transaction: Option<String>,
) {
    for id in phones {
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

/// The broker keeps nothing across its restarts: on every (re)connect, publish the bridge
/// state and every phone's retained topics again.
async fn republish_on_connect(shared: Arc<Shared>) {
    let mut connections = shared.bus.mqtt.connections();
    loop {
        tokio::select! {
            changed = connections.changed() => if changed.is_err() { return },
            () = shared.shutdown.cancelled() => return,
        }
        shared
            .bus
            .mqtt
            .publish(shared.bus.topics.bridge_state(&shared.name), "online", true)
            .await;
        report_outbox_now(&shared).await;
        shared.publish_directory().await;
        shared.publish_reminders().await;
        shared.publish_pushed_provisioning().await;
        let phones = shared.phones.registry.all();
        info!(
            phones = phones.len(),
            "Publishing the retained state of every phone."
        );
        for phone in phones {
            // 10,000 phones are 30,000 messages: leave room for the phones' callbacks. Lost
            // again meanwhile: the next connection starts over.
            if !shared.bus.mqtt.wait_for_room().await {
                break;
            }
            shared
                .bus
                .mqtt
                .publish_json(shared.bus.topics.info(&phone.info.id), &phone.info, true)
                .await;
            shared
                .bus
                .mqtt
                .publish_json(shared.bus.topics.state(&phone.info.id), &phone.state, true)
                .await;
            if let Some(online) = phone.online {
                let payload = if online { "online" } else { "offline" };
                shared
                    .bus
                    .mqtt
                    .publish(
                        shared.bus.topics.availability(&phone.info.id),
                        payload,
                        true,
                    )
                    .await;
            }
            let provisioning = shared.serving.served.status(&phone.info.id);
            if provisioning.served_at.is_some() || provisioning.verified_at.is_some() {
                provisioning::publish_status(&shared, &provisioning).await;
            }
        }
        // What an earlier run left on an external broker is read before this run publishes,
        // so that only that is read (the embedded broker starts empty).
        if shared.bus.external_broker {
            crate::ha::remove_stale(&shared.homeassistant, &*shared).await;
        }
        crate::ha::publish_all(&shared.homeassistant, &*shared).await;
    }
}

/// How often the outbox's report is looked at; it is published when it changed.
const OUTBOX_REPORT_EVERY: Duration = Duration::from_secs(5);

/// `bridge/<agent>/outbox` (retained): what the outbox holds and has dropped, published when
/// it changed, at most every [`OUTBOX_REPORT_EVERY`], and after every (re)connect.
async fn report_outbox(shared: Arc<Shared>) {
    let mut ticker = tokio::time::interval(OUTBOX_REPORT_EVERY);
    let mut last = None;
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            () = shared.shutdown.cancelled() => return,
        }
        let status = shared.bus.mqtt.outbox_status();
        // The queue's level moves all the time under load: report it when it crosses zero,
        // and every drop.
        let key = (
            status.queued == 0,
            status.dropped_events,
            status.dropped_messages,
            status.dropped_state,
        );
        if status.connected && last != Some(key) {
            last = Some(key);
            report_outbox_now(&shared).await;
        }
    }
}

async fn report_outbox_now(shared: &Shared) {
    let status = shared.bus.mqtt.outbox_status();
    shared
        .bus
        .mqtt
        .publish_json(shared.bus.topics.bridge_outbox(&shared.name), &status, true)
        .await;
}

/// Writes identities and reminders' delivery state (and a discovered phone whose own write
/// failed) to the data directory at most once a second, and at the end.
async fn keep_phones(shared: Arc<Shared>) {
    let mut ticker = tokio::time::interval(Duration::from_secs(1));
    loop {
        let stopping = tokio::select! {
            _ = ticker.tick() => false,
            () = shared.shutdown.cancelled() => true,
        };
        let store = shared.clone();
        let written = tokio::task::spawn_blocking(move || {
            [
                store.kept.store.flush(),
                store.kept.identities.flush(),
                store.kept.reminders.flush(),
                store.serving.served.flush(),
            ]
        })
        .await;
        for err in written.into_iter().flatten().filter_map(Result::err) {
            tracing::error!(cause = %err, "A data file could not be written; tried again in a second.");
        }
        if stopping {
            return;
        }
    }
}

/// Phones the start-up round checks at once: enough that a site comes back within seconds,
/// few enough that the command queues' runners stay free for people's commands meanwhile.
const STARTUP_CHECKS: usize = 64;

/// Reads every configured phone's state now and then, which also tells whether it is online;
/// the first round at once, so that after a restart every phone's availability is back within
/// seconds rather than left missing.
async fn poll_phones(shared: Arc<Shared>, every: Duration) {
    startup_round(&shared).await;
    let mut ticker = tokio::time::interval(every);
    // The first tick is now: the start-up round was it.
    ticker.tick().await;
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            () = shared.shutdown.cancelled() => return,
        }
        for id in shared.phones.registry.configured_ids() {
            let Some(phone) = shared.phones.registry.get(&id) else {
                continue;
            };
            if !phone.vendor.supports(CommandKind::Refresh) {
                continue;
            }
            let job = Job {
                command: Command::new(CommandKind::Refresh, CommandArg::None),
                reply_to: id.to_string(),
                transaction: None,
                internal: true,
                reply: None,
            };
            // A full queue means the phone is busy with real commands; skip this round.
            let _ = shared.phones.queues.submit(&shared, &id, job);
        }
    }
}

/// Every configured phone, [`STARTUP_CHECKS`] at a time: a `refresh` through its queue where
/// the vendor has one, otherwise a request to its web server (any answer is online).
async fn startup_round(shared: &Arc<Shared>) {
    use futures_util::StreamExt;
    let ids = shared.phones.registry.configured_ids();
    info!(
        phones = ids.len(),
        "Checking every configured phone's availability."
    );
    futures_util::stream::iter(ids)
        .for_each_concurrent(STARTUP_CHECKS, |id| check_phone(shared, id))
        .await;
}

async fn check_phone(shared: &Arc<Shared>, id: crate::model::PhoneId) {
    let Some(phone) = shared.phones.registry.get(&id) else {
        return;
    };
    if phone.vendor.supports(CommandKind::Refresh) {
        let (reply, done) = tokio::sync::oneshot::channel();
        let job = Job {
            command: Command::new(CommandKind::Refresh, CommandArg::None),
            reply_to: id.to_string(),
            transaction: None,
            internal: true,
            reply: Some(reply),
        };
        // The queue marks the phone online or offline by the outcome.
        if shared.phones.queues.submit(shared, &id, job).is_ok() {
            tokio::select! {
                _ = done => {}
                () = shared.shutdown.cancelled() => {}
            }
        }
        return;
    }
    let Some(config) = phone.config else {
        return;
    };
    let answered = tokio::select! {
        answer = shared
            .phones
            .http
            .get(config.base_url())
            .timeout(shared.phones.command_timeout)
            .send() => answer.is_ok(),
        () = shared.shutdown.cancelled() => return,
    };
    if let Some(update) = shared
        .phones
        .registry
        .apply_command_outcome(&id, answered, None, false)
    {
        shared.publish_update(update).await;
    }
}
