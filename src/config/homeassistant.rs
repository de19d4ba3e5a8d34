//! `[homeassistant]`: MQTT discovery (`src/ha/`).

use serde::Deserialize;

/// Home Assistant MQTT discovery (`src/ha/`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HomeAssistantConfig {
    /// Publish a discovery message for every phone (`[[phone]] homeassistant = false` skips one).
    pub enabled: bool,
    /// Home Assistant's discovery prefix; it listens on `<prefix>/device/+/config` and
    /// announces itself on `<prefix>/status`.
    pub prefix: String,
    /// Entity names instead of the built-in English ones, by entity key:
    /// `entity_names = { dnd = "Nicht stören", dial = "Wählen" }`.
    pub entity_names: std::collections::BTreeMap<String, String>,
    /// Keep the discovery messages on the broker (retained). `false`: the broker keeps none,
    /// and Home Assistant gets them live, when the agent connects and whenever Home Assistant
    /// announces itself on `<prefix>/status` (its birth message, on by default). For large
    /// fleets: a phone's message is about 13 KB, so 10,000 phones hold 130 MB in the broker.
    pub retain: bool,
}

impl Default for HomeAssistantConfig {
    fn default() -> Self {
        HomeAssistantConfig {
            enabled: true,
            prefix: "homeassistant".into(),
            entity_names: Default::default(),
            retain: true,
        }
    }
}

/// The keys of the entities the Home Assistant payloads know (`ha::ENTITIES`), for config validation.
pub const ENTITY_KEYS: [&str; 13] = [
    "event",
    "call_state",
    "last_caller",
    "ringing",
    "registered",
    "dnd",
    "answer",
    "hangup",
    "reboot",
    "volume_up",
    "volume_down",
    "message",
    "dial",
];
