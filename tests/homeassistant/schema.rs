//! The schema written from Home Assistant's docs: always run, and the only check where Home
//! Assistant cannot be installed. Every key is traced to the page that documents it.

use serde_json::Value;

/// <https://www.home-assistant.io/integrations/mqtt/#device-discovery-payload>: the root of
/// a device discovery message: `device` and `origin` (required), `components`, and the
/// shared options (availability, `state_topic`, `command_topic`, `qos`, `encoding`).
const ROOT: &[&str] = &[
    "device",
    "origin",
    "components",
    "availability",
    "availability_mode",
    "availability_topic",
    "availability_template",
    "payload_available",
    "payload_not_available",
    "state_topic",
    "command_topic",
    "qos",
    "encoding",
];

/// The `device` mapping, documented on every entity page (e.g.
/// <https://www.home-assistant.io/integrations/sensor.mqtt/#device>).
const DEVICE: &[&str] = &[
    "identifiers",
    "connections",
    "manufacturer",
    "model",
    "model_id",
    "name",
    "hw_version",
    "serial_number",
    "sw_version",
    "via_device",
    "suggested_area",
    "configuration_url",
];

/// <https://www.home-assistant.io/integrations/mqtt/#adding-information-about-the-origin-of-a-discovery-message>
const ORIGIN: &[&str] = &["name", "sw_version", "support_url"];

/// Options every MQTT entity takes (the common part of each entity page: availability,
/// `device`, `entity_category`, `icon`, `json_attributes_*`, `name`, `unique_id`, `qos`...),
/// plus `platform` in a device discovery component
/// (<https://www.home-assistant.io/integrations/mqtt/#device-discovery-payload>).
const ENTITY: &[&str] = &[
    "platform",
    "availability",
    "availability_mode",
    "availability_template",
    "availability_topic",
    "payload_available",
    "payload_not_available",
    "device",
    "origin",
    "enabled_by_default",
    "encoding",
    "entity_category",
    "entity_picture",
    "icon",
    "json_attributes_template",
    "json_attributes_topic",
    "name",
    "object_id",
    "qos",
    "unique_id",
];

/// Per platform: (options beyond [`ENTITY`], required options, doc page).
fn platform_options(
    name: &str,
) -> Option<(
    &'static [&'static str],
    &'static [&'static str],
    &'static str,
)> {
    Some(match name {
        "event" => (
            &[
                "state_topic",
                "event_types",
                "value_template",
                "device_class",
            ],
            &["state_topic", "event_types"],
            "https://www.home-assistant.io/integrations/event.mqtt/",
        ),
        "sensor" => (
            &[
                "state_topic",
                "value_template",
                "device_class",
                "options",
                "unit_of_measurement",
                "state_class",
                "expire_after",
                "force_update",
                "last_reset_value_template",
                "suggested_display_precision",
            ],
            &["state_topic"],
            "https://www.home-assistant.io/integrations/sensor.mqtt/",
        ),
        "binary_sensor" => (
            &[
                "state_topic",
                "value_template",
                "device_class",
                "payload_on",
                "payload_off",
                "expire_after",
                "force_update",
                "off_delay",
            ],
            &["state_topic"],
            "https://www.home-assistant.io/integrations/binary_sensor.mqtt/",
        ),
        "switch" => (
            &[
                "command_topic",
                "command_template",
                "state_topic",
                "value_template",
                "payload_on",
                "payload_off",
                "state_on",
                "state_off",
                "optimistic",
                "retain",
                "device_class",
            ],
            &["command_topic"],
            "https://www.home-assistant.io/integrations/switch.mqtt/",
        ),
        "button" => (
            &[
                "command_topic",
                "command_template",
                "payload_press",
                "retain",
                "device_class",
            ],
            &["command_topic"],
            "https://www.home-assistant.io/integrations/button.mqtt/",
        ),
        "notify" => (
            &["command_topic", "command_template", "retain"],
            &["command_topic"],
            "https://www.home-assistant.io/integrations/notify.mqtt/",
        ),
        "text" => (
            &[
                "command_topic",
                "command_template",
                "state_topic",
                "value_template",
                "min",
                "max",
                "mode",
                "pattern",
                "retain",
            ],
            &["command_topic"],
            "https://www.home-assistant.io/integrations/text.mqtt/",
        ),
        _ => return None,
    })
}

/// <https://www.home-assistant.io/integrations/device_trigger.mqtt/>: a device trigger has
/// no entity options; `automation_type` is `trigger`.
const TRIGGER: &[&str] = &[
    "platform",
    "automation_type",
    "topic",
    "type",
    "subtype",
    "payload",
    "value_template",
    "qos",
    "encoding",
];
const TRIGGER_REQUIRED: &[&str] = &["automation_type", "topic", "type", "subtype"];

/// Device classes from each page (and the entity integrations they link to).
fn device_classes(platform: &str) -> &'static [&'static str] {
    match platform {
        // https://www.home-assistant.io/integrations/event/#device-class
        "event" => &["button", "doorbell", "motion"],
        // https://www.home-assistant.io/integrations/button/#device-class
        "button" => &["identify", "restart", "update"],
        // https://www.home-assistant.io/integrations/switch/#device-class
        "switch" => &["outlet", "switch"],
        // https://www.home-assistant.io/integrations/binary_sensor/#device-class (the ones used
        // here; the page lists more)
        "binary_sensor" => &["connectivity", "problem", "running", "sound", "occupancy"],
        // https://www.home-assistant.io/integrations/sensor/#device-class (likewise)
        "sensor" => &["enum", "timestamp"],
        _ => &[],
    }
}

/// Every problem with one discovery message; empty when it is valid.
pub fn check(topic: &str, message: &Value) -> Vec<String> {
    let mut errors = Vec::new();
    let Some(root) = message.as_object() else {
        return vec![format!("{topic}: not a JSON object")];
    };
    unknown(&mut errors, topic, root, ROOT);
    for key in ["device", "origin", "components"] {
        if !root.contains_key(key) {
            errors.push(format!("{topic}: `{key}` is required"));
        }
    }
    let device = &message["device"];
    if let Some(device_map) = device.as_object() {
        unknown(&mut errors, &format!("{topic} device"), device_map, DEVICE);
        let has_ids = device["identifiers"]
            .as_array()
            .is_some_and(|a| !a.is_empty())
            || device["connections"]
                .as_array()
                .is_some_and(|a| !a.is_empty());
        if !has_ids {
            errors.push(format!(
                "{topic}: the device needs identifiers or connections"
            ));
        }
        for connection in device["connections"].as_array().into_iter().flatten() {
            if connection.as_array().map(Vec::len) != Some(2) {
                errors.push(format!("{topic}: a connection is a [type, value] pair"));
            }
        }
        if let Some(url) = device["configuration_url"].as_str() {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                errors.push(format!("{topic}: configuration_url must be http(s)"));
            }
        }
    }
    if let Some(origin) = message["origin"].as_object() {
        unknown(&mut errors, &format!("{topic} origin"), origin, ORIGIN);
        if !origin.get("name").is_some_and(Value::is_string) {
            errors.push(format!("{topic}: origin.name is required"));
        }
    }
    availability(&mut errors, topic, message);
    let Some(components) = message["components"].as_object() else {
        errors.push(format!("{topic}: components must be a mapping"));
        return errors;
    };
    let mut unique_ids = std::collections::BTreeSet::new();
    for (id, component) in components {
        let at = format!("{topic} [{id}]");
        let Some(map) = component.as_object() else {
            errors.push(format!("{at}: not a mapping"));
            continue;
        };
        let platform = component["platform"].as_str().unwrap_or("");
        if platform == "device_automation" {
            unknown(&mut errors, &at, map, TRIGGER);
            required(&mut errors, &at, map, TRIGGER_REQUIRED);
            if component["automation_type"] != "trigger" {
                errors.push(format!("{at}: automation_type must be trigger"));
            }
            if let Some(t) = component["topic"].as_str() {
                topic_valid(&mut errors, &at, t, true);
            }
            continue;
        }
        let Some((own, needed, page)) = platform_options(platform) else {
            errors.push(format!("{at}: unknown platform `{platform}`"));
            continue;
        };
        let allowed: Vec<&str> = ENTITY.iter().chain(own).copied().collect();
        unknown(&mut errors, &format!("{at} ({page})"), map, &allowed);
        required(&mut errors, &format!("{at} ({page})"), map, needed);
        // Required for entities in device discovery (the device discovery section).
        match component["unique_id"].as_str() {
            Some(unique) if unique_ids.insert(unique.to_string()) => {}
            Some(unique) => errors.push(format!("{at}: unique_id {unique} twice")),
            None => errors.push(format!("{at}: unique_id is required")),
        }
        if let Some(category) = component["entity_category"].as_str() {
            if !["config", "diagnostic"].contains(&category) {
                errors.push(format!("{at}: entity_category {category}"));
            }
        }
        if let Some(class) = component["device_class"].as_str() {
            if !device_classes(platform).contains(&class) {
                errors.push(format!("{at}: device_class {class} ({page})"));
            }
        }
        if component["device_class"] == "enum" {
            // sensor.mqtt: an enum sensor lists its options and has no unit.
            let options_ok = component["options"]
                .as_array()
                .is_some_and(|o| !o.is_empty() && o.iter().all(Value::is_string));
            if !options_ok || map.contains_key("unit_of_measurement") {
                errors.push(format!("{at}: an enum sensor needs options, no unit"));
            }
        }
        if platform == "event" {
            let types_ok = component["event_types"]
                .as_array()
                .is_some_and(|t| !t.is_empty() && t.iter().all(Value::is_string));
            if !types_ok {
                errors.push(format!("{at}: event_types must list strings"));
            }
        }
        for (key, value) in map {
            if key.ends_with("_topic") {
                let subscribe = key != "command_topic";
                match value.as_str() {
                    Some(t) => topic_valid(&mut errors, &at, t, subscribe),
                    None => errors.push(format!("{at}: {key} must be a string")),
                }
            }
            if key.ends_with("_template") && !value.as_str().is_some_and(balanced) {
                errors.push(format!("{at}: {key} is not a template"));
            }
        }
        if let Some(icon) = component["icon"].as_str() {
            if !icon.starts_with("mdi:") {
                errors.push(format!("{at}: icon {icon}"));
            }
        }
    }
    errors
}

/// <https://www.home-assistant.io/integrations/mqtt/#using-availability-topics>
fn availability(errors: &mut Vec<String>, topic: &str, message: &Value) {
    if let Some(mode) = message.get("availability_mode") {
        if !["all", "any", "latest"].contains(&mode.as_str().unwrap_or("")) {
            errors.push(format!("{topic}: availability_mode {mode}"));
        }
    }
    if message.get("availability").is_some() && message.get("availability_topic").is_some() {
        errors.push(format!(
            "{topic}: availability and availability_topic exclude each other"
        ));
    }
    for entry in message["availability"].as_array().into_iter().flatten() {
        match entry["topic"].as_str() {
            Some(t) => topic_valid(errors, topic, t, true),
            None => errors.push(format!("{topic}: an availability entry needs a topic")),
        }
    }
}

fn unknown(
    errors: &mut Vec<String>,
    at: &str,
    map: &serde_json::Map<String, Value>,
    allowed: &[&str],
) {
    for key in map.keys() {
        if !allowed.contains(&key.as_str()) {
            errors.push(format!("{at}: unknown option `{key}`"));
        }
    }
}

fn required(
    errors: &mut Vec<String>,
    at: &str,
    map: &serde_json::Map<String, Value>,
    needed: &[&str],
) {
    for key in needed {
        if !map.contains_key(*key) {
            errors.push(format!("{at}: `{key}` is required"));
        }
    }
}

/// MQTT topics: non-empty; a publish topic has no wildcards.
fn topic_valid(errors: &mut Vec<String>, at: &str, topic: &str, subscribe: bool) {
    if topic.is_empty() || (!subscribe && topic.contains(['+', '#'])) {
        errors.push(format!("{at}: bad topic `{topic}`"));
    }
}

/// Jinja delimiters open and close in order.
fn balanced(template: &str) -> bool {
    let mut depth = 0i32;
    let bytes = template.as_bytes();
    for pair in bytes.windows(2) {
        match pair {
            b"{{" | b"{%" => depth += 1,
            b"}}" | b"%}" => depth -= 1,
            _ => {}
        }
        if depth < 0 {
            return false;
        }
    }
    depth == 0 && (template.contains("{{") || template.contains("{%"))
}

#[test]
fn the_schema_catches_mistakes() {
    let good = serde_json::json!({
        "device": {"identifiers": ["x"], "name": "X"},
        "origin": {"name": "phone2mqtt"},
        "components": {"s": {"platform": "sensor", "unique_id": "x_s", "state_topic": "a/b",
                             "value_template": "{{ value_json.x }}"}},
    });
    assert!(check("t", &good).is_empty(), "{:?}", check("t", &good));
    let mut bad = good.clone();
    bad["components"]["s"]["stat_topik"] = "a".into();
    bad["components"]["s"]
        .as_object_mut()
        .unwrap()
        .remove("unique_id");
    bad["device"] = serde_json::json!({"name": "X"});
    bad["availability_mode"] = "most".into();
    let errors = check("t", &bad);
    assert_eq!(errors.len(), 4, "{errors:#?}");
}
