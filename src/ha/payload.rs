//! The discovery payloads: pure functions of a phone's `info`, its vendor's table and its
//! `[[phone]]` entry.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use crate::config::PhoneConfig;
pub use crate::config::ENTITY_KEYS;
use crate::model::{CallState, Command, CommandArg, CommandKind, PhoneId, PhoneInfo};
use crate::phone_vendors::{Target, VendorSpec};
use crate::topics::{HaTopics, Topics};

/// The origin every discovery message names; the agent recognises its own messages by it.
pub const ORIGIN: &str = "phone2mqtt";

/// The entities a phone can have, by the key used in `[homeassistant] entity_names`, in its
/// unique id (`phone2mqtt_<id>_<key>`) and as its component id, with their default names.
pub const ENTITIES: &[(&str, &str)] = &[
    ("event", "Event"),
    ("call_state", "Call state"),
    ("last_caller", "Last caller"),
    ("ringing", "Ringing"),
    ("registered", "SIP registered"),
    ("dnd", "Do not disturb"),
    ("answer", "Answer"),
    ("hangup", "Hang up"),
    ("reboot", "Reboot"),
    ("volume_up", "Volume up"),
    ("volume_down", "Volume down"),
    ("message", "Message"),
    ("dial", "Dial"),
];

/// The buttons, each a command without a value.
const BUTTONS: &[(CommandKind, &str)] = &[
    (CommandKind::Answer, "mdi:phone"),
    (CommandKind::Hangup, "mdi:phone-hangup"),
    (CommandKind::Reboot, "mdi:restart"),
    (CommandKind::VolumeUp, "mdi:volume-plus"),
    (CommandKind::VolumeDown, "mdi:volume-minus"),
];

/// Every call state, in the order the `call_state` sensor lists them.
pub const CALL_STATES: [CallState; 5] = [
    CallState::Idle,
    CallState::Ringing,
    CallState::Dialing,
    CallState::Talking,
    CallState::Held,
];

/// The event a programmed key press publishes, with the key in its `key` field.
pub const KEY_EVENT: &str = "key";

/// A key programmed on the phone to call the agent; its press is a device trigger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProgrammedKey {
    /// What the `key` event carries in its `key` field (`3`, `dss3`...).
    pub key: String,
    /// What people call it (`Garage door`); the trigger's subtype.
    pub label: String,
}

/// What the payloads need to know beyond the phone.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    pub topics: &'a Topics,
    /// The agent's name: its bridge state topic and its own device.
    pub agent: &'a str,
    /// How phones reach the agent (the Action URL host of the commands checked here).
    pub public_url: &'a str,
    /// The Manager's address; a phone's `configuration_url` is `<manager_url>/#<id>`.
    pub manager_url: &'a str,
    /// `[homeassistant] entity_names`.
    pub names: &'a BTreeMap<String, String>,
}

/// One phone, as the payload sees it.
#[derive(Debug, Clone, Copy)]
pub struct PhoneView<'a> {
    pub info: &'a PhoneInfo,
    pub vendor: &'static VendorSpec,
    /// `None` for a phone that called in without a `[[phone]]` entry: it gets no command
    /// entities, since commands to it fail until it is configured.
    pub config: Option<&'a PhoneConfig>,
    /// Keys programmed to call the agent (none until provisioning programs them).
    pub keys: &'a [ProgrammedKey],
}

impl<'a> PhoneView<'a> {
    fn id(&self) -> &PhoneId {
        &self.info.id
    }

    /// The vendor's normalised events, each once, in table order.
    fn events(&self) -> Vec<&'static str> {
        let mut events: Vec<&'static str> = Vec::new();
        for spec in self.vendor.events {
            if !events.contains(&spec.event.name()) {
                events.push(spec.event.name());
            }
        }
        events
    }

    fn has_event(&self, event: &str) -> bool {
        self.vendor
            .events
            .iter()
            .any(|spec| spec.event.name() == event)
    }

    /// Whether a command would reach this phone: it is configured, its vendor declares the
    /// command, and the vendor can build it with this phone's settings and the options its
    /// vendor reads (a vendor whose DND is a key sets DND only with a `dnd_key`).
    fn can(&self, kind: CommandKind, ctx: &Context) -> bool {
        let Some(config) = self.config else {
            return false;
        };
        if !self.vendor.supports(kind) {
            return false;
        }
        let arg = match kind {
            CommandKind::Dial => CommandArg::Number("1001".into()),
            CommandKind::Dnd => CommandArg::OnOff(true),
            CommandKind::Message => CommandArg::Text("phone2mqtt".into()),
            _ => CommandArg::None,
        };
        let command = Command::new(kind, arg);
        let target = Target {
            line: config.line.clone(),
            agent_url: Some(ctx.public_url.to_string()),
            options: config.options().read_by(self.vendor),
            ..Target::default()
        };
        (self.vendor.build)(&command, &target).is_ok()
    }
}

/// The whole discovery payload of one phone.
pub fn phone_config(ctx: &Context, phone: &PhoneView) -> Value {
    json!({
        "device": device(ctx, phone),
        "origin": origin(),
        "availability": [
            {"topic": ctx.topics.bridge_state(ctx.agent)},
            {"topic": ctx.topics.availability(phone.id())},
        ],
        "availability_mode": "all",
        "components": components(ctx, phone),
    })
}

/// The components: entities and device triggers.
pub fn components(ctx: &Context, phone: &PhoneView) -> Map<String, Value> {
    let mut all = Map::new();
    let mut add = |(id, config): (String, Value)| {
        all.insert(id, config);
    };
    add(event_entity(ctx, phone));
    add(call_state_sensor(ctx, phone));
    if phone.has_event("incoming_call") {
        add(last_caller_sensor(ctx, phone));
        add(ringing_sensor(ctx, phone));
    }
    if phone.has_event("registered") || phone.vendor.supports(CommandKind::Refresh) {
        add(registered_sensor(ctx, phone));
    }
    if phone.can(CommandKind::Dnd, ctx) {
        add(dnd_switch(ctx, phone));
    } else if phone.has_event("dnd_on") {
        add(dnd_sensor(ctx, phone));
    }
    for (kind, icon) in BUTTONS {
        if phone.can(*kind, ctx) {
            add(command_button(ctx, phone, *kind, icon));
        }
    }
    if phone.can(CommandKind::Message, ctx) {
        add(message_notify(ctx, phone));
    }
    if phone.can(CommandKind::Dial, ctx) {
        add(dial_text(ctx, phone));
    }
    for event in phone.events() {
        add(event_trigger(ctx, phone, event));
    }
    for key in phone.keys {
        add(key_trigger(ctx, phone, key));
    }
    all
}

/// `device`: what Home Assistant's device page shows. Identified by `phone2mqtt_<id>` and the
/// MAC (so that other integrations that know the phone by its MAC join the same device), and
/// linked to the agent's own device.
pub fn device(ctx: &Context, phone: &PhoneView) -> Value {
    let info = phone.info;
    let mut device = json!({
        "identifiers": [HaTopics::phone_object_id(phone.id())],
        "connections": [["mac", info.mac]],
        "name": device_name(phone),
        "manufacturer": phone.vendor.name,
        "configuration_url": format!("{}/#{}", ctx.manager_url.trim_end_matches('/'), info.id),
        "via_device": HaTopics::bridge_object_id(ctx.agent),
    });
    if let Some(model) = &info.model {
        device["model"] = json!(model);
    }
    if let Some(firmware) = &info.firmware {
        device["sw_version"] = json!(firmware);
    }
    device
}

/// The configured name; a discovered phone is named by vendor and id, and says it is not
/// configured.
fn device_name(phone: &PhoneView) -> String {
    let name = phone
        .config
        .and_then(|c| c.name.clone())
        .or_else(|| phone.info.name.clone())
        .unwrap_or_else(|| format!("{} {}", phone.vendor.name, phone.info.id));
    if phone.config.is_some() {
        name
    } else {
        format!("{name} (not configured)")
    }
}

pub fn origin() -> Value {
    json!({"name": ORIGIN, "sw_version": env!("CARGO_PKG_VERSION")})
}

/// The fields every entity has: platform, unique id, name.
fn entity(ctx: &Context, phone: &PhoneView, key: &str, platform: &str) -> Map<String, Value> {
    let default = ENTITIES
        .iter()
        .find(|(k, _)| *k == key)
        .map_or(key, |(_, name)| name);
    let name = ctx.names.get(key).map_or(default, String::as_str);
    let mut config = Map::new();
    config.insert("platform".into(), json!(platform));
    config.insert(
        "unique_id".into(),
        json!(format!("{}_{key}", HaTopics::phone_object_id(phone.id()))),
    );
    config.insert("name".into(), json!(name));
    config
}

fn with(mut base: Map<String, Value>, extra: Value) -> Value {
    if let Value::Object(extra) = extra {
        base.extend(extra);
    }
    Value::Object(base)
}

/// The `event` entity: every normalised event, with the caller and line as attributes.
/// Home Assistant wants `{"event_type": ..., <attributes>}`; the template builds it from the
/// event payload (`.get` gives `null` for what an event does not carry).
pub fn event_entity(ctx: &Context, phone: &PhoneView) -> (String, Value) {
    let mut types = phone.events();
    if !phone.keys.is_empty() && !types.contains(&KEY_EVENT) {
        types.push(KEY_EVENT);
    }
    let config = with(
        entity(ctx, phone, "event", "event"),
        json!({
            "state_topic": ctx.topics.event(phone.id()),
            "event_types": types,
            "value_template": "{{ {'event_type': value_json.event, \
                'remote': value_json.get('remote'), 'remote_name': value_json.get('remote_name'), \
                'line': value_json.get('line'), 'call_id': value_json.get('call_id'), \
                'key': value_json.get('key'), 'forward': value_json.get('forward')} | tojson }}",
            "icon": "mdi:phone-log",
        }),
    );
    ("event".into(), config)
}

/// A device trigger for one event, published up front so that automations can pick it in the
/// editor before it ever happened. The trigger's payload is the whole event (`trigger.payload_json`).
pub fn event_trigger(ctx: &Context, phone: &PhoneView, event: &str) -> (String, Value) {
    let config = device_trigger(
        ctx,
        phone,
        "event",
        event,
        event,
        "{{ value_json.event }}".into(),
    );
    (format!("event_{event}"), config)
}

/// A device trigger for one programmed key: "\"Garage door\" pressed" in Home Assistant's editor.
pub fn key_trigger(ctx: &Context, phone: &PhoneView, key: &ProgrammedKey) -> (String, Value) {
    let template =
        format!("{{{{ value_json.get('key', '') if value_json.event == '{KEY_EVENT}' else '' }}}}");
    let config = device_trigger(
        ctx,
        phone,
        "button_short_press",
        &key.label,
        &key.key,
        template,
    );
    (format!("key_{}", component_safe(&key.key)), config)
}

fn device_trigger(
    ctx: &Context,
    phone: &PhoneView,
    kind: &str,
    subtype: &str,
    payload: &str,
    value_template: String,
) -> Value {
    json!({
        "platform": "device_automation",
        "automation_type": "trigger",
        "topic": ctx.topics.event(phone.id()),
        "type": kind,
        "subtype": subtype,
        "payload": payload,
        "value_template": value_template,
    })
}

/// `[a-z0-9_]` for component ids.
fn component_safe(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect()
}

/// The call state as an enum sensor; the other party is in its attributes.
pub fn call_state_sensor(ctx: &Context, phone: &PhoneView) -> (String, Value) {
    let options: Vec<Value> = CALL_STATES
        .iter()
        .map(|state| serde_json::to_value(state).unwrap_or_default())
        .collect();
    let state = ctx.topics.state(phone.id());
    let config = with(
        entity(ctx, phone, "call_state", "sensor"),
        json!({
            "device_class": "enum",
            "options": options,
            "state_topic": state,
            "value_template": "{{ value_json.call_state }}",
            "json_attributes_topic": state,
            "json_attributes_template": "{{ {'remote': value_json.remote, \
                'remote_name': value_json.remote_name, 'call_id': value_json.call_id} | tojson }}",
            "icon": "mdi:phone-classic",
        }),
    );
    ("call_state".into(), config)
}

/// The number of the last incoming call, kept until the next one; the name and time are
/// attributes. Other events keep what the entity has (`this`).
pub fn last_caller_sensor(ctx: &Context, phone: &PhoneView) -> (String, Value) {
    let events = ctx.topics.event(phone.id());
    let config = with(
        entity(ctx, phone, "last_caller", "sensor"),
        json!({
            "state_topic": events,
            "value_template": "{% if value_json.event == 'incoming_call' and value_json.remote is defined %}\
                {{ value_json.remote }}\
                {% elif this.state not in ['unknown', 'unavailable'] %}{{ this.state }}\
                {% else %}None{% endif %}",
            "json_attributes_topic": events,
            "json_attributes_template": "{% if value_json.event == 'incoming_call' %}\
                {{ {'name': value_json.get('remote_name'), 'line': value_json.get('line'), \
                'at': value_json.ts} | tojson }}\
                {% else %}{{ {'name': this.attributes.get('name'), 'line': this.attributes.get('line'), \
                'at': this.attributes.get('at')} | tojson }}{% endif %}",
            "icon": "mdi:phone-incoming",
        }),
    );
    ("last_caller".into(), config)
}

/// On while a call is coming in.
pub fn ringing_sensor(ctx: &Context, phone: &PhoneView) -> (String, Value) {
    let config = with(
        entity(ctx, phone, "ringing", "binary_sensor"),
        json!({
            "state_topic": ctx.topics.state(phone.id()),
            "value_template": "{{ 'ON' if value_json.call_state == 'ringing' else 'OFF' }}",
            "icon": "mdi:phone-ring",
        }),
    );
    ("ringing".into(), config)
}

/// Whether the SIP account is registered; unknown until the phone has told.
pub fn registered_sensor(ctx: &Context, phone: &PhoneView) -> (String, Value) {
    let config = with(
        entity(ctx, phone, "registered", "binary_sensor"),
        json!({
            "device_class": "connectivity",
            "entity_category": "diagnostic",
            "state_topic": ctx.topics.state(phone.id()),
            "value_template": "{% if value_json.registered is none %}None\
                {% elif value_json.registered %}ON{% else %}OFF{% endif %}",
        }),
    );
    ("registered".into(), config)
}

/// DND: the state comes from the phone's own `dnd_on`/`dnd_off` events (the state topic), the
/// switch sends `cmd/dnd` with `on`/`off`.
pub fn dnd_switch(ctx: &Context, phone: &PhoneView) -> (String, Value) {
    let config = with(
        entity(ctx, phone, "dnd", "switch"),
        json!({
            "state_topic": ctx.topics.state(phone.id()),
            "value_template": "{{ 'on' if value_json.dnd else 'off' }}",
            "command_topic": ctx.topics.command(phone.id().as_str(), CommandKind::Dnd.name()),
            "payload_on": "on",
            "payload_off": "off",
            "qos": 1,
            "icon": "mdi:phone-off",
        }),
    );
    ("dnd".into(), config)
}

/// DND as a read-only sensor, for a phone whose DND the agent cannot set (one whose vendor's DND
/// is a key it has no `dnd_key` for, a discovered phone).
pub fn dnd_sensor(ctx: &Context, phone: &PhoneView) -> (String, Value) {
    let config = with(
        entity(ctx, phone, "dnd", "binary_sensor"),
        json!({
            "state_topic": ctx.topics.state(phone.id()),
            "value_template": "{{ 'ON' if value_json.dnd else 'OFF' }}",
            "icon": "mdi:phone-off",
        }),
    );
    // Another component id than the switch's, so that Home Assistant drops the one it replaces.
    ("dnd_state".into(), config)
}

/// A button for a command without a value; the empty payload is the command without a value.
pub fn command_button(
    ctx: &Context,
    phone: &PhoneView,
    kind: CommandKind,
    icon: &str,
) -> (String, Value) {
    let key = kind.name();
    let mut config = with(
        entity(ctx, phone, key, "button"),
        json!({
            "command_topic": ctx.topics.command(phone.id().as_str(), key),
            "payload_press": "",
            "qos": 1,
            "icon": icon,
        }),
    );
    if kind == CommandKind::Reboot {
        config["device_class"] = json!("restart");
        config["entity_category"] = json!("config");
    }
    (key.into(), config)
}

/// `notify.send_message` shows the text on the phone's screen.
pub fn message_notify(ctx: &Context, phone: &PhoneView) -> (String, Value) {
    let config = with(
        entity(ctx, phone, "message", "notify"),
        json!({
            "command_topic": ctx.topics.command(phone.id().as_str(), CommandKind::Message.name()),
            "qos": 1,
            "icon": "mdi:message-text",
        }),
    );
    ("message".into(), config)
}

/// Setting the text dials it.
pub fn dial_text(ctx: &Context, phone: &PhoneView) -> (String, Value) {
    let config = with(
        entity(ctx, phone, "dial", "text"),
        json!({
            "command_topic": ctx.topics.command(phone.id().as_str(), CommandKind::Dial.name()),
            "max": 64,
            "qos": 1,
            "icon": "mdi:phone-dial",
        }),
    );
    ("dial".into(), config)
}

/// The agent's own device, which the phones name as `via_device`: one connectivity sensor from
/// the bridge state (also the agent's MQTT last will), so it shows `off` when the agent dies.
pub fn bridge_config(ctx: &Context) -> Value {
    let id = HaTopics::bridge_object_id(ctx.agent);
    json!({
        "device": {
            "identifiers": [id],
            "name": format!("phone2mqtt {}", ctx.agent),
            "manufacturer": "phone2mqtt",
            "model": "Agent",
            "sw_version": env!("CARGO_PKG_VERSION"),
            "configuration_url": ctx.manager_url,
        },
        "origin": origin(),
        "components": {
            "state": {
                "platform": "binary_sensor",
                "unique_id": format!("{id}_state"),
                "name": "Connection",
                "device_class": "connectivity",
                "entity_category": "diagnostic",
                "state_topic": ctx.topics.bridge_state(ctx.agent),
                "payload_on": "online",
                "payload_off": "offline",
            },
        },
    })
}

/// Whether a retained discovery message on a phone's topic is one this agent wrote: its origin
/// is phone2mqtt and its device hangs off this agent's device.
pub fn written_by(payload: &Value, agent: &str) -> bool {
    payload["origin"]["name"] == ORIGIN
        && payload["device"]["via_device"] == HaTopics::bridge_object_id(agent).as_str()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::phone_vendors;

    fn info(id: &str, vendor: &str) -> PhoneInfo {
        let id = PhoneId::parse(id).unwrap();
        PhoneInfo {
            mac: id.colon_mac(),
            id,
            name: Some("Reception".into()),
            vendor: vendor.into(),
            model: Some("SIP-T46G".into()),
            firmware: Some("28.72.0.1".into()),
            ip: None,
            agent: "gw1".into(),
            configured: true,
            groups: vec![],
            subscriber: None,
        }
    }

    fn config(vendor: &str) -> PhoneConfig {
        PhoneConfig {
            mac: "001565000001".into(),
            vendor: vendor.into(),
            address: "10.0.0.5".into(),
            username: "admin".into(),
            password: crate::config::Secret::new("admin"),
            name: Some("Reception".into()),
            line: Some("1001@pbx".into()),
            legacy_api: false,
            dnd_key: None,
            groups: vec![],
            homeassistant: true,
            keys: Default::default(),
            settings: Default::default(),
        }
    }

    fn payload(vendor_id: &str, config: Option<&PhoneConfig>, keys: &[ProgrammedKey]) -> Value {
        let topics = Topics::new("phone2mqtt");
        let names = BTreeMap::new();
        let ctx = Context {
            topics: &topics,
            agent: "gw1",
            public_url: "http://192.168.1.10:8080",
            manager_url: "https://192.168.1.10:8443",
            names: &names,
        };
        let info = info("001565000001", vendor_id);
        let phone = PhoneView {
            info: &info,
            vendor: phone_vendors::find(vendor_id).unwrap(),
            config,
            keys,
        };
        phone_config(&ctx, &phone)
    }

    fn platforms(payload: &Value) -> BTreeMap<String, String> {
        payload["components"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(id, c)| (id.clone(), c["platform"].as_str().unwrap().to_string()))
            .collect()
    }

    #[test]
    fn a_yealink_gets_every_entity() {
        let config = config("yealink");
        let payload = payload("yealink", Some(&config), &[]);
        let platforms = platforms(&payload);
        for (id, platform) in [
            ("event", "event"),
            ("call_state", "sensor"),
            ("last_caller", "sensor"),
            ("ringing", "binary_sensor"),
            ("registered", "binary_sensor"),
            ("dnd", "switch"),
            ("answer", "button"),
            ("hangup", "button"),
            ("reboot", "button"),
            ("volume_up", "button"),
            ("volume_down", "button"),
            ("message", "notify"),
            ("dial", "text"),
            ("event_incoming_call", "device_automation"),
            ("event_vpn_ip_changed", "device_automation"),
        ] {
            assert_eq!(
                platforms.get(id).map(String::as_str),
                Some(platform),
                "{id}"
            );
        }
        let device = &payload["device"];
        assert_eq!(device["identifiers"], json!(["phone2mqtt_001565000001"]));
        assert_eq!(device["connections"], json!([["mac", "00:15:65:00:00:01"]]));
        assert_eq!(device["manufacturer"], "Yealink");
        assert_eq!(device["model"], "SIP-T46G");
        assert_eq!(device["sw_version"], "28.72.0.1");
        assert_eq!(
            device["configuration_url"],
            "https://192.168.1.10:8443/#001565000001"
        );
        assert_eq!(payload["availability_mode"], "all");
        assert!(written_by(&payload, "gw1"));
        assert!(!written_by(&payload, "gw2"));
        // Under the broker's 64 KiB payload limit with room to spare.
        assert!(payload.to_string().len() < 32 * 1024);
    }

    #[test]
    fn components_follow_the_vendor_and_the_config() {
        let mut config = config("grandstream");
        let platforms_of =
            |config: Option<&PhoneConfig>| platforms(&payload("grandstream", config, &[]));
        let without_key = platforms_of(Some(&config));
        assert_eq!(
            without_key.get("dnd_state").map(String::as_str),
            Some("binary_sensor")
        );
        assert!(!without_key.contains_key("dnd"));
        assert!(!without_key.contains_key("volume_up"));
        assert!(!without_key.contains_key("message"));
        config.dnd_key = Some("MPK1".into());
        assert_eq!(
            platforms_of(Some(&config)).get("dnd").map(String::as_str),
            Some("switch")
        );
        // Snom has no registered event and no refresh: no registration sensor.
        let snom = platforms(&payload("snom", Some(&self::config("snom")), &[]));
        assert!(!snom.contains_key("registered"));
        assert!(snom.contains_key("volume_up"));
        // A discovered phone: sensors and triggers, no commands.
        let discovered = payload("yealink", None, &[]);
        let names = platforms(&discovered);
        assert!(names.contains_key("dnd_state") && names.contains_key("event"));
        assert!(!names
            .values()
            .any(|p| p == "button" || p == "switch" || p == "text"));
        assert_eq!(discovered["device"]["name"], "Reception (not configured)");
    }

    #[test]
    fn programmed_keys_become_triggers() {
        let config = config("yealink");
        let keys = [ProgrammedKey {
            key: "3".into(),
            label: "Garage door".into(),
        }];
        let payload = payload("yealink", Some(&config), &keys);
        let trigger = &payload["components"]["key_3"];
        assert_eq!(trigger["type"], "button_short_press");
        assert_eq!(trigger["subtype"], "Garage door");
        assert_eq!(trigger["payload"], "3");
        assert!(payload["components"]["event"]["event_types"]
            .as_array()
            .unwrap()
            .contains(&json!("key")));
    }

    #[test]
    fn call_state_options_are_every_call_state() {
        // Fails to compile when a call state is added without adding it to CALL_STATES.
        fn listed(state: CallState) -> bool {
            match state {
                CallState::Idle
                | CallState::Ringing
                | CallState::Dialing
                | CallState::Talking
                | CallState::Held => CALL_STATES.contains(&state),
            }
        }
        assert!(CALL_STATES.iter().all(|s| listed(*s)));
        assert_eq!(
            ENTITIES.iter().map(|(k, _)| *k).collect::<Vec<_>>(),
            ENTITY_KEYS
        );
    }
}
