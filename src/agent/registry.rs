//! The agent's phones, configured and discovered, with their info and state.
//!
//! The lock is a std `Mutex` held only for short, non-async updates; what must be published
//! is copied out and published after the lock is released.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::agent::state;
use crate::config::PhoneConfig;
use crate::metrics::Limit;
use crate::model::{Event, PhoneId, PhoneInfo, PhoneState, Subscriber};
use crate::phone_vendors::{ParsedEvent, Refreshed, VendorSpec};

#[derive(Debug, Clone)]
pub struct Phone {
    pub config: Option<PhoneConfig>,
    pub vendor: &'static VendorSpec,
    pub info: PhoneInfo,
    pub state: PhoneState,
    pub online: Option<bool>,
    /// The source IP of the phone's last Action URL callback and of its last provisioning
    /// request: the addresses the phone itself came from, where an adoption may send the site's
    /// credentials (the IP a callback reports in its variables is only what it claims).
    pub called_from: Option<IpAddr>,
    pub provisioned_from: Option<IpAddr>,
}

impl Phone {
    /// A phone known from its calls or its provisioning requests only, boxed for the table.
    fn unconfigured(vendor: &'static VendorSpec, info: PhoneInfo) -> Box<Phone> {
        Box::new(Phone {
            config: None,
            vendor,
            info,
            state: PhoneState::default(),
            online: None,
            called_from: None,
            provisioned_from: None,
        })
    }

    /// Where the phone came from: its callbacks, which carry its Action URL token, before its
    /// provisioning requests, which anybody allowed to provision can make for any MAC.
    pub fn came_from(&self) -> Option<IpAddr> {
        self.called_from.or(self.provisioned_from)
    }
}

/// What changed and must be published.
#[derive(Debug, Clone)]
pub struct Update {
    pub id: PhoneId,
    /// The phone was not known before: it has just been discovered.
    pub discovered: bool,
    pub info: Option<PhoneInfo>,
    pub state: Option<PhoneState>,
    pub online: Option<bool>,
}

#[derive(Debug)]
pub struct Registry {
    agent: String,
    /// Boxed: a `Phone` is most of a kilobyte, and the table keeps an eighth of its slots empty.
    phones: Mutex<HashMap<PhoneId, Box<Phone>>>,
    /// Configured names, lower-case, for commands addressed by name.
    names: Mutex<HashMap<String, PhoneId>>,
    /// The PBX subscribers, matched to phones by the extension they register.
    directory: Mutex<Vec<Subscriber>>,
    /// When each phone discovered in the last minute was ([limits] discovered_per_minute).
    discoveries: Mutex<VecDeque<Instant>>,
}

impl Registry {
    pub fn new(agent: &str, configured: &[PhoneConfig]) -> Registry {
        let mut phones = HashMap::new();
        let mut names = HashMap::new();
        for config in configured {
            let id = config.id();
            let vendor = crate::phone_vendors::find(&config.vendor).expect("validated vendor");
            if let Some(name) = &config.name {
                // The config file's phones come first and keep their names: a phone adopted
                // under a name the file gave another phone later does not take it over.
                names
                    .entry(name.to_lowercase())
                    .or_insert_with(|| id.clone());
            }
            phones.insert(
                id.clone(),
                Box::new(Phone {
                    info: PhoneInfo {
                        id: id.clone(),
                        mac: id.colon_mac(),
                        name: config.name.clone(),
                        vendor: vendor.id.to_string(),
                        model: None,
                        firmware: None,
                        ip: None,
                        agent: agent.to_string(),
                        configured: true,
                        groups: config.groups.clone(),
                        subscriber: None,
                    },
                    config: Some(config.clone()),
                    vendor,
                    state: PhoneState::default(),
                    online: None,
                    called_from: None,
                    provisioned_from: None,
                }),
            );
        }
        Registry {
            agent: agent.to_string(),
            phones: Mutex::new(phones),
            names: Mutex::new(names),
            directory: Mutex::default(),
            discoveries: Mutex::default(),
        }
    }

    /// Whether a phone not known yet may be discovered now: at most `total` unconfigured
    /// phones in all, and `per_minute` discovered in the last minute. A known phone always may.
    pub fn admit_discovery(
        &self,
        id: &PhoneId,
        per_minute: usize,
        total: usize,
    ) -> Result<(), Limit> {
        let phones = self.lock();
        if phones.contains_key(id) {
            return Ok(());
        }
        if phones.values().filter(|p| p.config.is_none()).count() >= total {
            return Err(Limit::discovery_total);
        }
        drop(phones);
        let mut window = self.discoveries.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        while window
            .front()
            .is_some_and(|at| now.duration_since(*at) >= Duration::from_secs(60))
        {
            window.pop_front();
        }
        if window.len() >= per_minute {
            return Err(Limit::discovery_rate);
        }
        window.push_back(now);
        Ok(())
    }

    /// Whether `groups` may be given to a phone: the distinct groups of all phones, with these,
    /// stay within `limit`. The error names the groups that would be new.
    pub fn admit_groups(&self, groups: &[String], limit: usize) -> Result<(), String> {
        let phones = self.lock();
        let mut known: HashSet<String> = phones
            .values()
            .filter_map(|p| p.config.as_ref())
            .flat_map(|c| c.groups.iter().map(|g| g.to_lowercase()))
            .collect();
        let before = known.len();
        let new: Vec<&str> = groups
            .iter()
            .filter(|g| known.insert(g.to_lowercase()))
            .map(String::as_str)
            .collect();
        if known.len() > limit && known.len() > before {
            return Err(format!(
                "{} new group(s) ({}) would make {} groups, over {limit} ([limits] groups)",
                new.len(),
                new.iter().take(5).copied().collect::<Vec<_>>().join(", "),
                known.len()
            ));
        }
        Ok(())
    }

    /// The configured phones of a group; `all` is every configured phone.
    pub fn members(&self, group: &str) -> Vec<PhoneId> {
        let mut ids: Vec<PhoneId> = self
            .lock()
            .values()
            .filter(|phone| {
                phone.config.as_ref().is_some_and(|config| {
                    group.eq_ignore_ascii_case("all")
                        || config.groups.iter().any(|g| g.eq_ignore_ascii_case(group))
                })
            })
            .map(|phone| phone.info.id.clone())
            .collect();
        ids.sort();
        ids
    }

    /// Replaces the directory; returns the phones whose subscriber changed.
    pub fn set_directory(&self, subscribers: Vec<Subscriber>) -> Vec<Update> {
        *self.directory.lock().unwrap_or_else(|p| p.into_inner()) = subscribers;
        let ids: Vec<PhoneId> = self.lock().keys().cloned().collect();
        ids.iter()
            .filter_map(|id| self.match_subscriber(id))
            .collect()
    }

    pub fn directory(&self) -> Vec<Subscriber> {
        self.directory
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Finds the phone's subscriber by the extensions it registers (its lines, or the user part
    /// of its configured `line`); returns an update when that changed.
    fn match_subscriber(&self, id: &PhoneId) -> Option<Update> {
        // Lock order: the directory, then the phones (nowhere the other way round).
        let directory = self.directory.lock().unwrap_or_else(|p| p.into_inner());
        let mut phones = self.lock();
        let phone = phones.get_mut(id)?;
        if directory.is_empty() && phone.info.subscriber.is_none() {
            return None;
        }
        // The configured line says who sits there; registered lines come next.
        let configured = phone
            .config
            .as_ref()
            .and_then(|c| c.line.as_deref())
            .map(crate::phone_vendors::sip_number);
        let subscriber = configured
            .as_deref()
            .into_iter()
            .chain(phone.state.lines.iter().map(|l| l.user.as_str()))
            .find_map(|ext| directory.iter().find(|s| s.extension == ext))
            .cloned();
        if subscriber == phone.info.subscriber {
            return None;
        }
        phone.info.subscriber = subscriber;
        Some(Update {
            id: id.clone(),
            discovered: false,
            info: Some(phone.info.clone()),
            state: None,
            online: None,
        })
    }

    /// Each subscriber with the phones that register its extension, and the phones without one;
    /// summarised when it would not fit in a retained message (`directory::bounded_report`).
    pub fn directory_report(&self) -> serde_json::Value {
        let directory = self.directory();
        let phones = self.all();
        // By extension, so that a long directory is matched in linear time.
        let mut matched: HashMap<&str, Vec<(&Subscriber, &str)>> = HashMap::new();
        let mut without = Vec::new();
        for phone in &phones {
            match &phone.info.subscriber {
                Some(s) => matched
                    .entry(s.extension.as_str())
                    .or_default()
                    .push((s, phone.info.id.as_str())),
                None => without.push(phone.info.id.to_string()),
            }
        }
        let mut without_phone = Vec::new();
        let subscribers: Vec<serde_json::Value> = directory
            .iter()
            .map(|s| {
                let on: Vec<&str> = matched
                    .get(s.extension.as_str())
                    .into_iter()
                    .flatten()
                    .filter(|(sub, _)| *sub == s)
                    .map(|(_, id)| *id)
                    .collect();
                if on.is_empty() {
                    without_phone.push(s.extension.clone());
                }
                serde_json::json!({"extension": s.extension, "name": s.name, "department": s.department, "phones": on})
            })
            .collect();
        crate::agent::directory::bounded_report(subscribers, without, without_phone)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<PhoneId, Box<Phone>>> {
        // A panic while holding the lock leaves plain data behind; keep serving it.
        self.phones
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Finds a phone by id, MAC in any form, or configured name.
    pub fn resolve(&self, reference: &str) -> Option<PhoneId> {
        if let Some(id) = PhoneId::parse(reference) {
            if self.lock().contains_key(&id) {
                return Some(id);
            }
        }
        self.names
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&reference.to_lowercase())
            .cloned()
    }

    pub fn get(&self, id: &PhoneId) -> Option<Phone> {
        self.lock().get(id).map(|phone| Phone::clone(phone))
    }

    pub fn all(&self) -> Vec<Phone> {
        let mut phones: Vec<Phone> = self
            .lock()
            .values()
            .map(|phone| Phone::clone(phone))
            .collect();
        phones.sort_by(|a, b| a.info.id.cmp(&b.info.id));
        phones
    }

    /// Every phone's id, sorted.
    pub fn ids(&self) -> Vec<PhoneId> {
        let mut ids: Vec<PhoneId> = self.lock().keys().cloned().collect();
        ids.sort();
        ids
    }

    pub fn configured_ids(&self) -> Vec<PhoneId> {
        let mut ids: Vec<PhoneId> = self
            .lock()
            .iter()
            .filter(|(_, phone)| phone.config.is_some())
            .map(|(id, _)| id.clone())
            .collect();
        ids.sort();
        ids
    }

    /// Records where a phone's callback came from.
    pub fn note_callback(&self, id: &PhoneId, ip: IpAddr) {
        if let Some(phone) = self.lock().get_mut(id) {
            phone.called_from = Some(ip.to_canonical());
        }
    }

    /// Records where a request for the phone's provisioning file came from.
    pub fn note_provisioning(&self, id: &PhoneId, ip: IpAddr) {
        if let Some(phone) = self.lock().get_mut(id) {
            phone.provisioned_from = Some(ip.to_canonical());
        }
    }

    /// The phone other than `except` that goes by `name` (in any case): configured, adopted,
    /// or discovered with a name.
    pub fn name_holder(&self, name: &str, except: &PhoneId) -> Option<PhoneId> {
        let lower = name.to_lowercase();
        let named = self
            .names
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&lower)
            .filter(|id| *id != except)
            .cloned();
        named.or_else(|| {
            self.lock()
                .values()
                .find(|p| {
                    &p.info.id != except
                        && p.info
                            .name
                            .as_ref()
                            .is_some_and(|n| n.to_lowercase() == lower)
                })
                .map(|p| p.info.id.clone())
        })
    }

    /// Gives a phone its `[[phone]]` entry: a discovered phone becomes configured (or a phone
    /// not seen yet is added). Returns what must be published.
    pub fn adopt(&self, config: PhoneConfig) -> Update {
        let id = config.id();
        let vendor = crate::phone_vendors::find(&config.vendor).expect("validated vendor");
        {
            // A phone adopted again under another name no longer answers to the old one.
            let mut names = self.names.lock().unwrap_or_else(|p| p.into_inner());
            names.retain(|_, held| *held != id);
            if let Some(name) = &config.name {
                names.insert(name.to_lowercase(), id.clone());
            }
        }
        let mut phones = self.lock();
        let phone = phones
            .entry(id.clone())
            .or_insert_with(|| Phone::unconfigured(vendor, self.blank_info(&id, vendor)));
        phone.vendor = vendor;
        phone.info.vendor = vendor.id.to_string();
        phone.info.name = config.name.clone();
        phone.info.groups = config.groups.clone();
        phone.info.configured = true;
        phone.config = Some(config);
        let info = phone.info.clone();
        drop(phones);
        let mut update = Update {
            id: id.clone(),
            discovered: false,
            info: Some(info),
            state: None,
            online: None,
        };
        if let Some(matched) = self.match_subscriber(&id) {
            update.info = matched.info;
        }
        update
    }

    /// What a configured phone told about itself before a restart, until it tells again.
    pub fn restore_identity(
        &self,
        id: &PhoneId,
        model: Option<String>,
        firmware: Option<String>,
        ip: Option<String>,
    ) {
        let mut phones = self.lock();
        if let Some(phone) = phones.get_mut(id).filter(|p| p.config.is_some()) {
            phone.info.model = phone.info.model.take().or(model);
            phone.info.firmware = phone.info.firmware.take().or(firmware);
            phone.info.ip = phone.info.ip.take().or(ip);
        }
    }

    /// A phone discovered before a restart, or by its provisioning request: known as
    /// unconfigured. Returns its info when it was not known before.
    pub fn insert_discovered(
        &self,
        id: PhoneId,
        vendor: &'static VendorSpec,
        model: Option<String>,
        firmware: Option<String>,
        ip: Option<String>,
    ) -> Option<PhoneInfo> {
        let mut phones = self.lock();
        if phones.contains_key(&id) {
            return None;
        }
        let info = PhoneInfo {
            model,
            firmware,
            ip,
            ..self.blank_info(&id, vendor)
        };
        phones.insert(id, Phone::unconfigured(vendor, info.clone()));
        Some(info)
    }

    fn blank_info(&self, id: &PhoneId, vendor: &'static VendorSpec) -> PhoneInfo {
        PhoneInfo {
            id: id.clone(),
            mac: id.colon_mac(),
            name: None,
            vendor: vendor.id.to_string(),
            model: None,
            firmware: None,
            ip: None,
            agent: self.agent.clone(),
            configured: false,
            groups: Vec::new(),
            subscriber: None,
        }
    }

    /// Records a callback: a phone not seen before is discovered as unconfigured.
    pub fn apply_event(
        &self,
        vendor: &'static VendorSpec,
        parsed: &ParsedEvent,
        event: &Event,
    ) -> Update {
        let id = event.phone.clone();
        let mut phones = self.lock();
        let discovered = !phones.contains_key(&id);
        let phone = phones
            .entry(id.clone())
            .or_insert_with(|| Phone::unconfigured(vendor, self.blank_info(&id, vendor)));
        // What the phone told about itself, where it changed (most events change nothing).
        let mut info_changed = false;
        for (field, told) in [
            (&mut phone.info.model, &parsed.identity.model),
            (&mut phone.info.firmware, &parsed.identity.firmware),
            (&mut phone.info.ip, &parsed.ip),
        ] {
            if told.is_some() && field != told {
                field.clone_from(told);
                info_changed = true;
            }
        }
        state::apply(&mut phone.state, event);
        let online = (phone.online != Some(true)).then_some(true);
        phone.online = Some(true);
        let mut update = Update {
            id: id.clone(),
            discovered,
            info: (info_changed || discovered).then(|| phone.info.clone()),
            state: Some(phone.state.clone()),
            online,
        };
        drop(phones);
        if let Some(matched) = self.match_subscriber(&id) {
            update.info = matched.info;
        }
        update
    }

    /// Records what a command taught us: the phone answered (or could not be reached), and
    /// maybe its state.
    pub fn apply_command_outcome(
        &self,
        id: &PhoneId,
        reachable: bool,
        refreshed: Option<&Refreshed>,
        call_ended: bool,
    ) -> Option<Update> {
        let mut phones = self.lock();
        let phone = phones.get_mut(id)?;
        let online = (phone.online != Some(reachable)).then_some(reachable);
        phone.online = Some(reachable);
        let mut info = None;
        let mut new_state = None;
        if call_ended && phone.state.call_state != crate::model::CallState::Idle {
            let before = phone.state.clone();
            state::end_call(&mut phone.state);
            if phone.state != before {
                new_state = Some(phone.state.clone());
            }
        }
        if let Some(refreshed) = refreshed {
            let before = phone.state.clone();
            state::apply_refresh(&mut phone.state, refreshed);
            if phone.state != before {
                new_state = Some(phone.state.clone());
            }
            if refreshed.firmware.is_some() && refreshed.firmware != phone.info.firmware {
                phone.info.firmware = refreshed.firmware.clone();
                info = Some(phone.info.clone());
            }
        }
        let mut update = Update {
            id: id.clone(),
            discovered: false,
            info,
            state: new_state,
            online,
        };
        drop(phones);
        if let Some(matched) = self.match_subscriber(id) {
            update.info = matched.info;
        }
        Some(update)
    }
}
