//! What a phone's provisioning adds to the Action URLs: programmable keys, vendor settings and a
//! logo, declared for the whole site, for a group or for one phone.
//!
//! Layers come from `phone2mqtt.toml` (`[provisioning]`, `[provisioning.group.<name>]`,
//! `[[phone]]`) and from what was pushed at run time over MQTT, the web API or the CLI (kept in
//! `<data_dir>/provisioning.toml`). A phone's profile stacks them, the narrower one winning:
//! site, then each of its groups, then the phone; within one scope the pushed layer wins over
//! the file.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The highest programmable key number accepted (expansion modules included).
pub const MAX_KEY: u32 = 200;
/// The longest key label accepted; phones show ten to twenty characters.
pub const MAX_LABEL: usize = 32;

/// A setting value as written in TOML: text, a number or a boolean.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum SettingValue {
    Text(String),
    Integer(i64),
    Float(f64),
    Bool(bool),
}

impl SettingValue {
    /// As the phone's file writes it; booleans as `1`/`0`, as every vendor's files do.
    pub fn to_setting(&self) -> String {
        match self {
            SettingValue::Text(text) => text.clone(),
            SettingValue::Integer(n) => n.to_string(),
            SettingValue::Float(x) => x.to_string(),
            SettingValue::Bool(b) => if *b { "1" } else { "0" }.to_string(),
        }
    }
}

/// One scope's additions.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Layer {
    /// Programmable keys: key number → label (`3 = "Garage door"`).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub keys: BTreeMap<String, String>,
    /// Vendor settings, by vendor: `settings.yealink = { "phone_setting.backlight_time" = "60" }`.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub settings: BTreeMap<String, BTreeMap<String, String>>,
    /// The logo's file name in `<data_dir>/logos/`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub logo: Option<String>,
}

impl Layer {
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
            && self.settings.values().all(BTreeMap::is_empty)
            && self.logo.is_none()
    }
}

/// A programmable key as provisioned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProgKey {
    pub index: u32,
    pub label: String,
}

/// What one phone is provisioned with, the layers stacked.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Profile {
    pub keys: Vec<ProgKey>,
    /// This phone's vendor's settings, in key order.
    pub settings: Vec<(String, String)>,
    pub logo: Option<String>,
}

impl Profile {
    /// Stacks layers, broadest first. An empty label or value removes what a broader layer set.
    pub fn stack<'a>(vendor: &str, layers: impl IntoIterator<Item = &'a Layer>) -> Profile {
        let mut keys: BTreeMap<u32, String> = BTreeMap::new();
        let mut settings: BTreeMap<String, String> = BTreeMap::new();
        let mut logo = None;
        for layer in layers {
            for (index, label) in &layer.keys {
                let Ok(index) = index.parse::<u32>() else {
                    continue;
                };
                if label.is_empty() {
                    keys.remove(&index);
                } else {
                    keys.insert(index, label.clone());
                }
            }
            for (key, value) in layer.settings.get(vendor).into_iter().flatten() {
                if value.is_empty() {
                    settings.remove(key);
                } else {
                    settings.insert(key.clone(), value.clone());
                }
            }
            if layer.logo.is_some() {
                logo = layer.logo.clone();
            }
        }
        Profile {
            keys: keys
                .into_iter()
                .map(|(index, label)| ProgKey { index, label })
                .collect(),
            settings: settings.into_iter().collect(),
            logo,
        }
    }

    pub fn key(&self, index: u32) -> Option<&ProgKey> {
        self.keys.iter().find(|key| key.index == index)
    }
}

/// Why a programmable key or a vendor setting is refused; the text says what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProfileError {
    #[error("key `{0}` must be a number from 1 to {MAX_KEY}")]
    KeyNumber(String),
    #[error(
        "key {0}: the label must be at most {MAX_LABEL} characters, without control characters"
    )]
    KeyLabel(String),
    #[error("setting `{0}`: a name starts with a letter, then letters, digits, `_`, `-`, `:` and dots between parts")]
    SettingName(String),
    #[error("setting `{0}`: the value must be one line")]
    SettingValue(String),
}

/// Checks a key number and label.
pub fn check_key(index: &str, label: &str) -> Result<u32, ProfileError> {
    let number = index
        .parse::<u32>()
        .ok()
        .filter(|n| (1..=MAX_KEY).contains(n))
        .ok_or_else(|| ProfileError::KeyNumber(index.to_string()))?;
    if label.chars().count() > MAX_LABEL || label.chars().any(char::is_control) {
        return Err(ProfileError::KeyLabel(index.to_string()));
    }
    Ok(number)
}

/// Checks a vendor setting: the name must be a plain config key and neither may break a line,
/// which would let a value inject further settings into a `key = value` file.
pub fn check_setting(key: &str, value: &str) -> Result<(), ProfileError> {
    let plain = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | ':');
    // Names become XML element names and dotted sections: they start with a letter, and dots
    // separate non-empty parts.
    let well_formed = key.starts_with(|c: char| c.is_ascii_alphabetic())
        && key.chars().all(plain)
        && key.split('.').all(|part| !part.is_empty());
    if !well_formed {
        return Err(ProfileError::SettingName(key.to_string()));
    }
    if value.contains(['\n', '\r']) {
        return Err(ProfileError::SettingValue(key.to_string()));
    }
    Ok(())
}

/// Whether a setting holds a secret (a SIP or admin password): such values are kept and served
/// to the phone but shown nowhere else.
pub fn is_secret_setting(key: &str) -> bool {
    // Grandstream-style numbered settings that hold passwords: admin (P2), user (P196) and
    // the SIP accounts' authentication passwords (P34, P404, P504, P604, P1704, P1804).
    const SECRET_P_VALUES: &[&str] = &[
        "P2", "P196", "P34", "P404", "P504", "P604", "P1704", "P1804",
    ];
    let lower = key.to_ascii_lowercase();
    SECRET_P_VALUES.iter().any(|p| p.eq_ignore_ascii_case(key))
        || ["pass", "pwd", "secret", "token", "auth"]
            .iter()
            .any(|word| lower.contains(word))
}

/// A layer with secret setting values shown as `***`, for MQTT and the web.
pub fn redacted(layer: &Layer) -> Layer {
    let mut layer = layer.clone();
    for settings in layer.settings.values_mut() {
        for (key, value) in settings.iter_mut() {
            if is_secret_setting(key) {
                *value = "***".into();
            }
        }
    }
    layer
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer(keys: &[(&str, &str)], settings: &[(&str, &str)]) -> Layer {
        Layer {
            keys: keys
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            settings: BTreeMap::from([(
                "yealink".to_string(),
                settings
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            )]),
            logo: None,
        }
    }

    #[test]
    fn narrower_layers_win_and_empty_removes() {
        let site = layer(
            &[("3", "Garage door"), ("4", "Lights")],
            &[("a", "1"), ("b", "2")],
        );
        let group = layer(&[("4", "")], &[("b", "")]);
        let phone = Layer {
            logo: Some("logo-1.png".into()),
            ..layer(&[("3", "Gate")], &[("a", "9")])
        };
        let profile = Profile::stack("yealink", [&site, &group, &phone]);
        assert_eq!(
            profile.keys,
            vec![ProgKey {
                index: 3,
                label: "Gate".into()
            }]
        );
        assert_eq!(profile.settings, vec![("a".to_string(), "9".to_string())]);
        assert_eq!(profile.logo.as_deref(), Some("logo-1.png"));
        assert!(Profile::stack("snom", [&site]).settings.is_empty());
    }

    #[test]
    fn checks_explain_themselves() {
        assert_eq!(check_key("3", "Garage door"), Ok(3));
        assert!(check_key("0", "x")
            .unwrap_err()
            .to_string()
            .contains("from 1"));
        assert!(check_key("x", "x").is_err());
        assert!(check_key("3", "a\nb").is_err());
        assert!(check_setting("phone_setting.backlight_time", "60").is_ok());
        assert!(check_setting("a b", "1").is_err());
        for bad in [".", "a..b", "a.", "1abc", "-x", ""] {
            assert!(check_setting(bad, "1").is_err(), "{bad}");
        }
        assert!(check_setting("sip.line.1.EnableReg", "1").is_ok());
        assert!(check_setting("a", "1\naction_url.x = evil").is_err());
        assert!(is_secret_setting("account.1.password"));
        assert!(is_secret_setting("P34"));
        assert!(!is_secret_setting("P35"));
    }
}
