//! The fleet as the broker's retained messages describe it: every phone's `info`, state and
//! `availability`; target resolution for `send`; and `phone2mqtt phones`.

use std::collections::BTreeMap;
use std::time::Duration;

use comfy_table::{presets, ContentArrangement, Table};
use serde_json::{json, Value};
use tokio::time::Instant;

use crate::client::{PhonesArgs, Session};
use crate::model::PhoneId;
use crate::mqtt::Message;
use crate::topics::{Topic, Topics};

/// The retained burst is over when no retained message came for this long...
const QUIET: Duration = Duration::from_millis(300);
/// ...or, before the first one, for this long (the subscription's round trip)...
const FIRST_WAIT: Duration = Duration::from_millis(1500);
/// ...and it never takes longer than this.
const MAX_COLLECT: Duration = Duration::from_secs(5);

/// One phone, as retained on the broker.
#[derive(Debug, Clone, Default)]
pub struct PhoneRecord {
    pub id: String,
    pub info: Option<Value>,
    pub state: Option<Value>,
    pub availability: Option<String>,
}

impl PhoneRecord {
    pub fn name(&self) -> Option<&str> {
        self.info
            .as_ref()
            .and_then(|info| info.get("name"))
            .and_then(Value::as_str)
            .filter(|name| !name.is_empty())
    }

    /// `Reception (0015654aa937)`, or the id alone.
    pub fn label(&self) -> String {
        label(self.name(), &self.id)
    }

    pub fn configured(&self) -> bool {
        self.info
            .as_ref()
            .and_then(|info| info.get("configured"))
            .and_then(Value::as_bool)
            .unwrap_or(false)
    }

    pub fn groups(&self) -> Vec<&str> {
        self.info
            .as_ref()
            .and_then(|info| info.get("groups"))
            .and_then(Value::as_array)
            .map(|groups| groups.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default()
    }

    fn sort_key(&self) -> (bool, String, String) {
        (
            self.name().is_none(),
            self.name().unwrap_or_default().to_lowercase(),
            self.id.clone(),
        )
    }

    fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "info": self.info,
            "state": self.state,
            "availability": self.availability,
        })
    }
}

/// `Reception (0015654aa937)`, or the id alone.
pub fn label(name: Option<&str>, id: &str) -> String {
    match name {
        Some(name) => format!("{name} ({id})"),
        None => id.to_string(),
    }
}

/// Every phone seen, keyed by id.
#[derive(Debug, Clone, Default)]
pub struct Fleet {
    pub phones: BTreeMap<String, PhoneRecord>,
}

impl Fleet {
    /// Takes in a phone's `info`, state or `availability`; returns false for any other message.
    /// An empty payload (a cleared retained message) removes that part.
    pub fn ingest(&mut self, topics: &Topics, message: &Message) -> bool {
        let (id, part) = match topics.parse(&message.topic) {
            Some(Topic::Info(id)) => (id, Part::Info),
            Some(Topic::State(id)) => (id, Part::State),
            Some(Topic::Availability(id)) => (id, Part::Availability),
            _ => return false,
        };
        // Only real phone ids: a stray retained `<base>/something` is not a phone.
        let Some(id) = PhoneId::parse(id).filter(|parsed| parsed.as_str() == id) else {
            return false;
        };
        let text = String::from_utf8_lossy(&message.payload).trim().to_string();
        let record = self
            .phones
            .entry(id.to_string())
            .or_insert_with(|| PhoneRecord {
                id: id.to_string(),
                ..PhoneRecord::default()
            });
        let json = || serde_json::from_str::<Value>(&text).ok();
        match part {
            Part::Info => record.info = json(),
            Part::State => record.state = json(),
            Part::Availability => record.availability = (!text.is_empty()).then_some(text),
        }
        if record.info.is_none() && record.state.is_none() && record.availability.is_none() {
            self.phones.remove(id.as_str());
        }
        true
    }

    pub fn get(&self, id: &str) -> Option<&PhoneRecord> {
        self.phones.get(id)
    }

    /// The phone's name from its retained info, if it has one.
    pub fn name_of(&self, id: &str) -> Option<&str> {
        self.phones.get(id).and_then(PhoneRecord::name)
    }

    /// `Reception (0015654aa937)` when the name is known.
    pub fn label_of(&self, id: &str) -> String {
        label(self.name_of(id), id)
    }

    /// The phones sorted by name (unnamed ones last, by id).
    pub fn sorted(&self) -> Vec<&PhoneRecord> {
        let mut phones: Vec<&PhoneRecord> = self.phones.values().collect();
        phones.sort_by_key(|phone| phone.sort_key());
        phones
    }

    /// The ids of the phones a `send` target means: `all` (every configured phone), a phone id
    /// or MAC in any form, a phone name or a group name (both case-insensitive), in that order;
    /// `group:<name>` is always a group, for a group named like a phone.
    pub fn resolve(&self, target: &str) -> Result<Vec<String>, String> {
        let sorted = self.sorted();
        let ids = |phones: Vec<&&PhoneRecord>| -> Vec<String> {
            phones.into_iter().map(|phone| phone.id.clone()).collect()
        };
        if target.eq_ignore_ascii_case("all") {
            let configured = ids(sorted.iter().filter(|p| p.configured()).collect());
            if configured.is_empty() {
                return Err(format!(
                    "no configured phone is known, so `all` means nobody. {}",
                    self.what_exists()
                ));
            }
            return Ok(configured);
        }
        let in_group = |group: &str| -> Vec<String> {
            ids(sorted
                .iter()
                .filter(|p| p.groups().iter().any(|g| g.eq_ignore_ascii_case(group)))
                .collect())
        };
        if let Some(group) = target.strip_prefix("group:") {
            let members = in_group(group);
            if members.is_empty() {
                return Err(format!(
                    "no phone is in group `{group}`. {}",
                    self.what_exists()
                ));
            }
            return Ok(members);
        }
        if let Some(id) = PhoneId::parse(target) {
            if self.phones.contains_key(id.as_str()) {
                return Ok(vec![id.to_string()]);
            }
        }
        let named = ids(sorted
            .iter()
            .filter(|p| p.name().is_some_and(|n| n.eq_ignore_ascii_case(target)))
            .collect());
        match named.len() {
            0 => {}
            1 => return Ok(named),
            _ => {
                return Err(format!(
                    "`{target}` names {} phones ({}): use an id",
                    named.len(),
                    named.join(", ")
                ))
            }
        }
        let grouped = in_group(target);
        if !grouped.is_empty() {
            return Ok(grouped);
        }
        Err(format!(
            "unknown target `{target}`: no phone id, phone name or group is called that. {}",
            self.what_exists()
        ))
    }

    /// `Phones: ...; groups: ...; or `all``, for error messages.
    pub fn what_exists(&self) -> String {
        if self.phones.is_empty() {
            return "No phone is known at all: is a gateway connected to this broker, and is \
                    --base-topic right?"
                .into();
        }
        let phones: Vec<String> = self.sorted().iter().map(|p| p.label()).collect();
        let mut groups: Vec<&str> = self.phones.values().flat_map(|p| p.groups()).collect();
        groups.sort_by_key(|g| g.to_lowercase());
        groups.dedup_by(|a, b| a.eq_ignore_ascii_case(b));
        let groups = if groups.is_empty() {
            "none".to_string()
        } else {
            groups.join(", ")
        };
        format!(
            "Phones: {}; groups: {groups}; or `all` for every configured phone.",
            phones.join(", ")
        )
    }

    /// The JSON array `phones --json` prints.
    pub fn to_json(&self) -> Value {
        Value::Array(self.sorted().iter().map(|p| p.to_json()).collect())
    }

    /// The table `phones` prints.
    pub fn table(&self) -> Table {
        let mut table = Table::new();
        table
            .load_style(presets::UTF8_FULL_CONDENSED)
            .set_content_arrangement(ContentArrangement::Dynamic)
            .set_header([
                "Name",
                "ID",
                "Phone",
                "IP",
                "Availability",
                "Registered",
                "Call",
                "DND",
                "Groups",
                "Subscriber",
                "Configured",
            ]);
        for phone in self.sorted() {
            let info = phone.info.as_ref();
            let state = phone.state.as_ref();
            let text = |value: Option<&Value>, key: &str| -> String {
                value
                    .and_then(|v| v.get(key))
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string()
            };
            let vendor = text(info, "vendor");
            let vendor = crate::phone_vendors::find(&vendor)
                .map(|spec| spec.name.to_string())
                .unwrap_or(vendor);
            let model = text(info, "model");
            let registered = match state.map(|s| s.get("registered")) {
                None => "",
                Some(Some(Value::Bool(true))) => "yes",
                Some(Some(Value::Bool(false))) => "no",
                Some(_) => "?",
            };
            let call = match state {
                None => String::new(),
                Some(_) => {
                    let mut call = text(state, "call_state");
                    let remote = text(state, "remote");
                    let remote_name = text(state, "remote_name");
                    if !remote.is_empty() {
                        call = format!("{call} {remote}");
                    }
                    if !remote_name.is_empty() {
                        call = format!("{call} \"{remote_name}\"");
                    }
                    call
                }
            };
            let dnd = match state.and_then(|s| s.get("dnd")).and_then(Value::as_bool) {
                Some(true) => "on",
                Some(false) => "off",
                None => "",
            };
            let subscriber = info
                .and_then(|i| i.get("subscriber"))
                .filter(|s| s.is_object())
                .map(|s| {
                    let name = text(Some(s), "name");
                    let department = text(Some(s), "department");
                    if department.is_empty() {
                        name
                    } else {
                        format!("{name} ({department})")
                    }
                })
                .unwrap_or_default();
            let configured = match info {
                None => "",
                Some(_) if phone.configured() => "yes",
                Some(_) => "no",
            };
            table.add_row([
                phone.name().unwrap_or_default().to_string(),
                phone.id.clone(),
                format!("{vendor} {model}").trim().to_string(),
                text(info, "ip"),
                phone.availability.clone().unwrap_or_default(),
                registered.to_string(),
                call,
                dnd.to_string(),
                phone.groups().join(", "),
                subscriber,
                configured.to_string(),
            ]);
        }
        table
    }
}

#[derive(Debug, Clone, Copy)]
enum Part {
    Info,
    State,
    Availability,
}

/// Reads the retained burst: until no retained message came for [`QUIET`] (or [`FIRST_WAIT`]
/// before the first), at most [`MAX_COLLECT`]. Every other message (events, results) is returned
/// in order, so that nothing live is lost while the fleet is read.
pub async fn collect(session: &mut Session) -> (Fleet, Vec<Message>) {
    let mut fleet = Fleet::default();
    let mut others = Vec::new();
    let start = Instant::now();
    let hard_end = start + MAX_COLLECT;
    let mut quiet_end = start + FIRST_WAIT;
    loop {
        let deadline = quiet_end.min(hard_end);
        let message = match tokio::time::timeout_at(deadline, session.incoming.recv()).await {
            Ok(Some(message)) => message,
            Ok(None) | Err(_) => break,
        };
        if session.topics.is_retained(&message.topic) {
            quiet_end = Instant::now() + QUIET;
        }
        if !fleet.ingest(&session.topics, &message) {
            others.push(message);
        }
    }
    (fleet, others)
}

/// `phone2mqtt phones [--json]`.
pub async fn phones(args: PhonesArgs) -> anyhow::Result<()> {
    let mut session = Session::connect(&args.broker).await?;
    let (fleet, _) = collect(&mut session).await;
    let broker = session.broker.clone();
    let base = session.topics.base().to_string();
    session.close().await;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&fleet.to_json())?);
    } else if fleet.phones.is_empty() {
        eprintln!(
            "No phones under `{base}/` on {broker}: is a gateway connected to this broker, and is \
             --base-topic right?"
        );
    } else {
        println!("{}", fleet.table());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(topic: &str, payload: &str) -> Message {
        Message {
            topic: topic.into(),
            payload: bytes::Bytes::from(payload.to_string()),
            retained: true,
        }
    }

    fn fleet() -> Fleet {
        let topics = Topics::new("phone2mqtt");
        let mut fleet = Fleet::default();
        for (id, name, groups, configured) in [
            ("0015654aa937", "Reception", r#"["front"]"#, true),
            ("0015654aa938", "Lobby", r#"["front", "Sales"]"#, true),
            ("0015654aa939", "Spare", "[]", false),
        ] {
            let info = format!(
                r#"{{"id": "{id}", "name": "{name}", "groups": {groups}, "configured": {configured}}}"#
            );
            assert!(fleet.ingest(&topics, &message(&format!("phone2mqtt/{id}/info"), &info)));
        }
        assert!(fleet.ingest(
            &topics,
            &message("phone2mqtt/0015654aa937/availability", "online")
        ));
        assert!(!fleet.ingest(&topics, &message("phone2mqtt/bridge/gw/state", "online")));
        assert!(!fleet.ingest(&topics, &message("phone2mqtt/notaphone", "{}")));
        fleet
    }

    #[test]
    fn targets_resolve_by_id_name_group_and_all() {
        let fleet = fleet();
        assert_eq!(
            fleet.resolve("00:15:65:4A:A9:37").unwrap(),
            ["0015654aa937"]
        );
        assert_eq!(fleet.resolve("reception").unwrap(), ["0015654aa937"]);
        assert_eq!(
            fleet.resolve("FRONT").unwrap(),
            ["0015654aa938", "0015654aa937"]
        );
        assert_eq!(fleet.resolve("sales").unwrap(), ["0015654aa938"]);
        assert_eq!(
            fleet.resolve("group:Front").unwrap(),
            ["0015654aa938", "0015654aa937"]
        );
        assert!(fleet.resolve("group:lobby").is_err());
        assert_eq!(
            fleet.resolve("all").unwrap(),
            ["0015654aa938", "0015654aa937"]
        );
        let err = fleet.resolve("kitchen").unwrap_err();
        assert!(err.contains("unknown target `kitchen`"), "{err}");
        assert!(err.contains("Reception (0015654aa937)"), "{err}");
        assert!(err.contains("front, Sales"), "{err}");
        assert!(Fleet::default()
            .resolve("all")
            .unwrap_err()
            .contains("No phone is known"));
    }

    #[test]
    fn a_cleared_retained_message_forgets_the_phone() {
        let topics = Topics::new("phone2mqtt");
        let mut fleet = fleet();
        fleet.ingest(&topics, &message("phone2mqtt/0015654aa939/info", ""));
        assert!(fleet.get("0015654aa939").is_none());
        let table = fleet.table().to_string();
        assert!(
            table.contains("Reception") && table.contains("Lobby"),
            "{table}"
        );
    }
}
