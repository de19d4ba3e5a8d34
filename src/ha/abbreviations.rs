//! Home Assistant's abbreviated discovery keys. A phone's discovery message is mostly device
//! triggers (one per event, 42 for a Yealink), and every key of every component is spelled out
//! again in each: abbreviated, a Yealink's message is 12.9 KB instead of 14.8 KB, which the
//! broker keeps retained once per phone and delivers on every (re)connect.
//!
//! Each pair is in Home Assistant's `homeassistant/components/mqtt/abbreviations.py`
//! (`ABBREVIATIONS`, `DEVICE_ABBREVIATIONS`, `ORIGIN_ABBREVIATIONS`), and Home Assistant expands
//! them (`discovery._replace_all_abbreviations`) before anything else: the message, the device,
//! the origin, each availability entry and each component. The builders in this module's parent
//! keep the full names, which read better; `abbreviate` is applied to the finished message.

use serde_json::{Map, Value};

/// `ABBREVIATIONS`: keys of the message and of each component.
const KEYS: &[(&str, &str)] = &[
    ("automation_type", "atype"),
    ("availability", "avty"),
    ("availability_mode", "avty_mode"),
    ("command_topic", "cmd_t"),
    ("components", "cmps"),
    ("device", "dev"),
    ("device_class", "dev_cla"),
    ("entity_category", "ent_cat"),
    ("event_types", "evt_typ"),
    ("icon", "ic"),
    ("json_attributes_template", "json_attr_tpl"),
    ("json_attributes_topic", "json_attr_t"),
    ("options", "ops"),
    ("origin", "o"),
    ("payload", "pl"),
    ("payload_off", "pl_off"),
    ("payload_on", "pl_on"),
    ("payload_press", "pl_prs"),
    ("platform", "p"),
    ("state_topic", "stat_t"),
    ("subtype", "stype"),
    ("topic", "t"),
    ("unique_id", "uniq_id"),
    ("value_template", "val_tpl"),
];

/// `DEVICE_ABBREVIATIONS`: keys of `device`.
const DEVICE_KEYS: &[(&str, &str)] = &[
    ("configuration_url", "cu"),
    ("connections", "cns"),
    ("identifiers", "ids"),
    ("manufacturer", "mf"),
    ("model", "mdl"),
    ("sw_version", "sw"),
];

/// `ORIGIN_ABBREVIATIONS`: keys of `origin`.
const ORIGIN_KEYS: &[(&str, &str)] = &[("sw_version", "sw")];

#[derive(Clone, Copy)]
enum Direction {
    Abbreviate,
    Expand,
}

fn rename(
    map: Map<String, Value>,
    table: &[(&str, &str)],
    direction: Direction,
) -> Map<String, Value> {
    map.into_iter()
        .map(|(key, value)| {
            let renamed = table.iter().find_map(|(full, short)| match direction {
                Direction::Abbreviate => (key == *full).then_some(*short),
                Direction::Expand => (key == *short).then_some(*full),
            });
            (renamed.map_or(key, str::to_string), value)
        })
        .collect()
}

/// The message, device, origin, availability entries and components, as Home Assistant walks
/// them.
fn walk(value: Value, direction: Direction, component: bool) -> Value {
    let Value::Object(map) = value else {
        return value;
    };
    let key = |full: &'static str, short: &'static str| match direction {
        Direction::Abbreviate => short,
        Direction::Expand => full,
    };
    let mut map = rename(map, KEYS, direction);
    if let Some(Value::Array(entries)) = map.get_mut(key("availability", "avty")) {
        for entry in entries.iter_mut() {
            if let Value::Object(inner) = entry.take() {
                *entry = Value::Object(rename(inner, KEYS, direction));
            }
        }
    }
    if component {
        return Value::Object(map);
    }
    for (name, table) in [
        (key("device", "dev"), DEVICE_KEYS),
        (key("origin", "o"), ORIGIN_KEYS),
    ] {
        if let Some(Value::Object(inner)) = map.get_mut(name) {
            *inner = rename(std::mem::take(inner), table, direction);
        }
    }
    if let Some(Value::Object(components)) = map.get_mut(key("components", "cmps")) {
        for config in components.values_mut() {
            *config = walk(config.take(), direction, true);
        }
    }
    Value::Object(map)
}

/// A discovery message with every key Home Assistant abbreviates abbreviated.
pub fn abbreviate(message: Value) -> Value {
    walk(message, Direction::Abbreviate, false)
}

/// The message with full key names again (a message with full names comes back unchanged).
pub fn expand(message: Value) -> Value {
    walk(message, Direction::Expand, false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keys_are_abbreviated_where_home_assistant_expands_them() {
        let full = json!({
            "device": {"identifiers": ["x"], "name": "Desk", "via_device": "b", "sw_version": "1"},
            "origin": {"name": "phone2mqtt", "sw_version": "0.1"},
            "availability": [{"topic": "a"}],
            "availability_mode": "all",
            "components": {
                "event": {"platform": "event", "state_topic": "s", "value_template": "{{ x }}", "name": "Event"},
                "key_3": {"platform": "device_automation", "automation_type": "trigger", "topic": "t", "subtype": "Garage", "payload": "3", "type": "button_short_press"},
            },
        });
        let short = abbreviate(full.clone());
        assert_eq!(short["dev"]["ids"], json!(["x"]));
        assert_eq!(short["dev"]["via_device"], "b");
        assert_eq!(short["dev"]["sw"], "1");
        assert_eq!(short["o"]["sw"], "0.1");
        assert_eq!(short["avty"][0]["t"], "a");
        assert_eq!(short["cmps"]["event"]["stat_t"], "s");
        assert_eq!(short["cmps"]["key_3"]["stype"], "Garage");
        assert_eq!(short["cmps"]["key_3"]["type"], "button_short_press");
        assert!(short.to_string().len() < full.to_string().len());
        assert_eq!(expand(short), full);
        assert_eq!(expand(full.clone()), full);
    }
}
