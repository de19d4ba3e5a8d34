//! Publishing discovery: the agent's calls and the publisher task. The agent is reached only
//! through [`Link`] and [`Phones`].

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use serde_json::Value;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info};

use super::abbreviations;
use super::payload::{bridge_config, phone_config, written_by, Context, PhoneView, ProgrammedKey};
use crate::config::{HomeAssistantConfig, PhoneConfig};
use crate::model::{PhoneId, PhoneInfo};
use crate::mqtt::{Message, Mqtt, SessionOptions};
use crate::phone_vendors::VendorSpec;
use crate::topics::{HaTopic, HaTopics, Topics};

/// What Home Assistant discovery needs of the agent to publish: its identity, addresses and
/// MQTT session, and nothing of its phones (those come through [`Phones`]).
#[derive(Debug)]
pub struct Link {
    /// The agent's name: its own device, and what tells its discovery messages from others'.
    pub agent: String,
    /// The agent's topics, which the entities read and command.
    pub topics: Topics,
    /// How phones reach the agent (the Action URL host of the commands checked).
    pub public_url: String,
    /// The Manager's address, for each device's configuration link.
    pub manager_url: String,
    /// The agent's session, which publishes discovery.
    pub mqtt: Mqtt,
    /// How to open a short-lived session of its own ([`remove_stale`]).
    pub broker_session: SessionOptions,
    /// The agent's stop: the publisher task ends with it.
    pub shutdown: CancellationToken,
    /// The settings and what was published.
    pub discovery: Discovery,
}

/// One phone as discovery reads it.
#[derive(Debug, Clone)]
pub struct KnownPhone {
    pub info: PhoneInfo,
    pub vendor: &'static VendorSpec,
    /// `None`: a phone that called in without a `[[phone]]` entry.
    pub config: Option<PhoneConfig>,
}

/// The agent's phones, as discovery reads them: implemented by the agent, so that this module
/// needs nothing of its registry or profiles.
pub trait Phones: Send + Sync {
    /// Every known phone.
    fn ids(&self) -> Vec<PhoneId>;
    /// One phone, `None` if unknown.
    fn phone(&self, id: &PhoneId) -> Option<KnownPhone>;
    /// The keys provisioning programs on this phone to call the agent (its device triggers).
    fn programmed_keys(&self, phone: &KnownPhone) -> Vec<ProgrammedKey>;
}

/// The agent's discovery state: its settings and what it last published for each phone, so
/// that only a material change (name, model, firmware, configured) publishes again.
#[derive(Debug)]
pub struct Discovery {
    pub topics: HaTopics,
    enabled: bool,
    /// `[homeassistant] retain`.
    retain: bool,
    names: BTreeMap<String, String>,
    /// A hash of each phone's last payload (a payload is ~15 KB; 10,000 of them add up).
    published: Mutex<HashMap<PhoneId, u64>>,
    /// Phones whose discovery the publisher task ([`run_publisher`]) is to build and publish,
    /// with whether to publish it even unchanged. Building a 13 KB message is not the phone's
    /// callback's work (10,000 phones registering at once waited for it), and one task
    /// publishing means a message built from older info never lands after a newer one.
    queue: Mutex<HashMap<PhoneId, bool>>,
    wake: tokio::sync::Notify,
}

impl Discovery {
    pub fn new(config: &HomeAssistantConfig) -> Discovery {
        Discovery {
            topics: HaTopics::new(&config.prefix),
            enabled: config.enabled,
            retain: config.retain,
            names: config.entity_names.clone(),
            published: Mutex::default(),
            queue: Mutex::default(),
            wake: tokio::sync::Notify::new(),
        }
    }

    /// Hands phones to the publisher task.
    fn enqueue(&self, ids: impl IntoIterator<Item = PhoneId>, force: bool) {
        {
            let mut queue = self.queue.lock().unwrap_or_else(|p| p.into_inner());
            for id in ids {
                let entry = queue.entry(id).or_insert(force);
                *entry |= force;
            }
        }
        self.wake.notify_one();
    }

    /// Home Assistant's status, when enabled. The device discovery topics are read by a
    /// short-lived session of their own ([`remove_stale`]): subscribed for good, the agent would
    /// get every discovery message it publishes back from the broker.
    pub fn subscriptions(&self) -> Vec<String> {
        if self.enabled {
            vec![self.topics.status()]
        } else {
            Vec::new()
        }
    }

    fn published(&self) -> std::sync::MutexGuard<'_, HashMap<PhoneId, u64>> {
        self.published.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The payload a phone should have on the broker: its discovery, or empty (removed) when
    /// discovery is off for it; `None` when discovery is off altogether.
    fn payload_for(&self, link: &Link, phones: &dyn Phones, phone: &KnownPhone) -> Option<String> {
        if !self.enabled {
            return None;
        }
        if phone.config.as_ref().is_some_and(|c| !c.homeassistant) {
            return Some(String::new());
        }
        let ctx = context(link, &self.names);
        // Keys programmed to call the agent become device triggers.
        let keys = if phone.vendor.programming.key.is_some() {
            phones.programmed_keys(phone)
        } else {
            Vec::new()
        };
        let view = PhoneView {
            info: &phone.info,
            vendor: phone.vendor,
            config: phone.config.as_ref(),
            keys: &keys,
        };
        Some(abbreviations::abbreviate(phone_config(&ctx, &view)).to_string())
    }

    /// Whether this agent wants no discovery on the broker for this phone.
    fn unwanted(&self, phones: &dyn Phones, id: &PhoneId) -> bool {
        !self.enabled
            || match phones.phone(id) {
                None => true,
                Some(phone) => phone.config.is_some_and(|c| !c.homeassistant),
            }
    }
}

fn context<'a>(link: &'a Link, names: &'a BTreeMap<String, String>) -> Context<'a> {
    Context {
        topics: &link.topics,
        agent: &link.agent,
        public_url: &link.public_url,
        manager_url: &link.manager_url,
        names,
    }
}

/// Tells payloads apart without keeping them.
fn fingerprint(payload: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    payload.hash(&mut hasher);
    hasher.finish()
}

/// Publishes a phone's discovery when it first appears or its info changed and that changes the
/// payload (`info_changed: false` only checks that the phone was published at all). Queued for
/// the publisher task; returns at once.
pub async fn publish_phone(link: &Link, id: &PhoneId, info_changed: bool) {
    let discovery = &link.discovery;
    if !discovery.enabled || (!info_changed && discovery.published().contains_key(id)) {
        return;
    }
    discovery.enqueue([id.clone()], false);
}

/// Publishes the agent's device and every phone's discovery (or its removal): on every
/// (re)connect and when Home Assistant comes online.
pub async fn publish_all(link: &Link, phones: &dyn Phones) {
    let discovery = &link.discovery;
    if !discovery.enabled {
        return;
    }
    let ctx = context(link, &discovery.names);
    link.mqtt
        .publish(
            discovery.topics.bridge_config(&link.agent),
            abbreviations::abbreviate(bridge_config(&ctx)).to_string(),
            discovery.retain,
        )
        .await;
    let ids = phones.ids();
    info!(
        phones = ids.len(),
        prefix = %discovery.topics.status().trim_end_matches("/status"),
        "Publishing Home Assistant discovery."
    );
    discovery.enqueue(ids, true);
}

/// The publisher task: builds each queued phone's message from what the registry knows at that
/// moment and publishes it when it changed (or always, after a reconnect). Runs until the agent
/// stops.
pub async fn run_publisher(link: Arc<Link>, phones: Arc<dyn Phones>) {
    let discovery = &link.discovery;
    loop {
        tokio::select! {
            () = discovery.wake.notified() => {}
            () = link.shutdown.cancelled() => return,
        }
        loop {
            let batch: Vec<(PhoneId, bool)> =
                std::mem::take(&mut *discovery.queue.lock().unwrap_or_else(|p| p.into_inner()))
                    .into_iter()
                    .collect();
            if batch.is_empty() {
                break;
            }
            for (id, force) in batch {
                let Some(phone) = phones.phone(&id) else {
                    continue;
                };
                let Some(payload) = discovery.payload_for(&link, &*phones, &phone) else {
                    continue;
                };
                let hash = fingerprint(&payload);
                if discovery.published().insert(id.clone(), hash) == Some(hash) && !force {
                    continue;
                }
                // 13 KB each, 10,000 at once in a storm: leave the queue to the callbacks.
                link.mqtt.wait_for_room().await;
                link.mqtt
                    .publish(
                        discovery.topics.phone_config(&id),
                        payload,
                        discovery.retain,
                    )
                    .await;
            }
        }
    }
}

/// Reads the retained discovery messages on the broker, through a session of its own that
/// ends when they have all come, and removes this agent's stale ones (`handle_message`). Run on
/// every (re)connect of the agent to an external broker, before the agent publishes its own.
pub async fn remove_stale(link: &Link, phones: &dyn Phones) {
    /// Waiting for the session and the first retained message, then for the next one: the
    /// broker sends them all at once, right after the subscription.
    const FIRST: std::time::Duration = std::time::Duration::from_secs(2);
    const NEXT: std::time::Duration = std::time::Duration::from_secs(1);
    let stop = link.shutdown.child_token();
    let tracker = tokio_util::task::TaskTracker::new();
    let mut options = link.broker_session.clone();
    options.client_id = format!("{}-ha-read", options.client_id);
    options.subscriptions = vec![link.discovery.topics.device_filter()];
    let (_session, mut incoming) = crate::mqtt::start(options, stop.clone(), &tracker);
    let mut wait = FIRST;
    let mut read = 0usize;
    while let Ok(Some(message)) = tokio::time::timeout(wait, incoming.recv()).await {
        if message.retained {
            read += 1;
            handle_message(link, phones, &message).await;
        }
        wait = NEXT;
    }
    debug!(read, "Read the retained Home Assistant discovery messages.");
    stop.cancel();
    tracker.close();
    let _ = tokio::time::timeout(std::time::Duration::from_secs(3), tracker.wait()).await;
}

/// Home Assistant's status and retained discovery messages; anything else is ignored.
pub async fn handle_message(link: &Link, phones: &dyn Phones, message: &Message) {
    let discovery = &link.discovery;
    let Some(topic) = discovery.topics.parse(&message.topic) else {
        return;
    };
    let text = String::from_utf8_lossy(&message.payload);
    match topic {
        HaTopic::Status if discovery.enabled && text.trim() == "online" => {
            info!("Home Assistant is online; sending discovery again.");
            publish_all(link, phones).await;
        }
        // Retained messages arrive when the agent (re)subscribes: the broker's memory of what
        // this agent published before. Remove those it no longer wants.
        HaTopic::PhoneConfig(id) if message.retained && !text.is_empty() => {
            // Kept: a phone the agent has, retained as it should be. Nothing to read then
            // (10,000 of them are 130 MB of JSON). With `retain = false` each of its own goes.
            let kept = || discovery.retain && !discovery.unwanted(phones, &id);
            if kept() {
                return;
            }
            let Ok(payload) = serde_json::from_str::<Value>(&text) else {
                return;
            };
            // Asked again: the phone may have called in meanwhile.
            if !written_by(&abbreviations::expand(payload), &link.agent) || kept() {
                return;
            }
            info!(phone = %id, "Removing this agent's stale Home Assistant discovery.");
            link.mqtt.publish(message.topic.clone(), "", true).await;
            // The phone may have called in meanwhile (or is wanted, live only): publish it.
            if !discovery.unwanted(phones, &id) {
                discovery.published().remove(&id);
                publish_phone(link, &id, true).await;
            }
        }
        HaTopic::BridgeConfig(_)
            if message.retained
                && !(discovery.enabled && discovery.retain)
                && message.topic == discovery.topics.bridge_config(&link.agent)
                && !text.is_empty() =>
        {
            link.mqtt.publish(message.topic.clone(), "", true).await;
        }
        _ => {}
    }
}
