//! `phone2mqtt.toml`: types, defaults and validation.
//!
//! Every key is checked before anything starts: an unknown or misspelled key, a bad MAC or an
//! unknown vendor stops the process with one message naming the file and the key.
//!
//! One file per section: `mqtt` (`[mqtt]`, `[broker]` and broker URLs), `http` (`[http]`),
//! `agent` (`[agent]`, `[directory]`), `homeassistant`, `provisioning`, `limits`, `phone` (`[[phone]]`),
//! and `secret` (passwords and tokens). This file holds the whole and its validation. The
//! config is part of the core: it knows nothing of the tasks that read it.

mod agent;
mod homeassistant;
mod http;
mod limits;
mod mqtt;
mod phone;
mod provisioning;
mod secret;

use std::path::Path;

use serde::Deserialize;

use crate::model::PhoneId;
use crate::phone_vendors;

pub use agent::{AgentConfig, DirectoryConfig};
pub use homeassistant::{HomeAssistantConfig, ENTITY_KEYS};
pub use http::{
    connect_addr, is_host_name, parse_authority, HttpConfig, DEFAULT_GRACE_DAYS, DEFAULT_HTTPS_PORT,
};
pub use limits::LimitsConfig;
pub use mqtt::{BrokerConfig, BrokerUrl, MqttConfig, SessionTuning};
pub use phone::PhoneConfig;
pub use provisioning::{GroupProvisioning, ProvisioningConfig, DEFAULT_ALLOW};
pub use secret::{new_token, Secret};

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub mqtt: MqttConfig,
    pub broker: BrokerConfig,
    pub http: HttpConfig,
    pub agent: AgentConfig,
    pub directory: DirectoryConfig,
    pub homeassistant: HomeAssistantConfig,
    pub provisioning: ProvisioningConfig,
    pub limits: LimitsConfig,
    #[serde(rename = "phone")]
    pub phones: Vec<PhoneConfig>,
}

/// A config problem, naming the file and the key.
#[derive(Debug, thiserror::Error)]
#[error("{file}: {key}: {reason}")]
pub struct ConfigError {
    pub file: String,
    pub key: String,
    pub reason: String,
}

impl Config {
    /// Reads and validates a config file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|err| ConfigError {
            file: file.clone(),
            key: "(file)".into(),
            reason: format!("cannot read it: {err}"),
        })?;
        Config::parse(&text, &file)
    }

    pub fn parse(text: &str, file: &str) -> Result<Config, ConfigError> {
        let config: Config = toml::from_str(text).map_err(|err| ConfigError {
            file: file.to_string(),
            key: toml_error_key(text, &err),
            reason: err.message().to_string(),
        })?;
        config.validate(file)?;
        Ok(config)
    }

    pub fn validate(&self, file: &str) -> Result<(), ConfigError> {
        let fail = |key: String, reason: String| ConfigError {
            file: file.to_string(),
            key,
            reason,
        };
        if self.mqtt.base_topic.is_empty()
            || self.mqtt.base_topic.contains(['+', '#'])
            || self.mqtt.base_topic.starts_with('/')
        {
            return Err(fail(
                "mqtt.base_topic".into(),
                "must be a non-empty topic without wildcards".into(),
            ));
        }
        if let Some(url) = &self.mqtt.url {
            BrokerUrl::parse(url).map_err(|reason| fail("mqtt.url".into(), reason.to_string()))?;
        }
        if self.mqtt.ca_file.is_some()
            && !self
                .mqtt
                .url
                .as_deref()
                .and_then(|url| BrokerUrl::parse(url).ok())
                .is_some_and(|url| url.is_tls())
        {
            return Err(fail(
                "mqtt.ca_file".into(),
                "only for a TLS broker: set mqtt.url to mqtts:// or wss://".into(),
            ));
        }
        if let Some(url) = &self.http.public_url {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(fail(
                    "http.public_url".into(),
                    format!("`{url}` must start with http:// or https://"),
                ));
            }
        } else if self.http.listen.ip().is_unspecified() {
            return Err(fail(
                "http.public_url".into(),
                format!(
                    "required when http.listen is {}: set the address phones use to reach this agent, e.g. http://192.168.1.10:{}",
                    self.http.listen,
                    self.http.listen.port()
                ),
            ));
        }
        self.http.validate_tls(&fail)?;
        self.limits
            .check()
            .map_err(|(key, reason)| fail(format!("limits.{key}"), reason))?;
        for name in &self.http.allowed_hosts {
            if !is_host_name(name) {
                return Err(fail(
                    "http.allowed_hosts".into(),
                    format!("`{name}` is not a host name or `host:port`"),
                ));
            }
        }
        if let Some(token) = &self.http.action_token {
            if token.expose().len() < 16
                || !token
                    .expose()
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            {
                return Err(fail(
                    "http.action_token".into(),
                    "must be at least 16 characters of letters, digits, `-` or `_`".into(),
                ));
            }
        }
        if self.http.action_token_grace_days > 3650 {
            return Err(fail(
                "http.action_token_grace_days".into(),
                "must be at most 3650 days".into(),
            ));
        }
        if let Err((key, reason)) = self.mqtt.check() {
            return Err(fail(key.into(), reason.into()));
        }
        if !(self.agent.command_timeout > 0.0 && self.agent.command_timeout <= 300.0) {
            return Err(fail(
                "agent.command_timeout".into(),
                "must be between 0 and 300 seconds".into(),
            ));
        }
        // Up to a year: past that a reminder's expiry would outlive any sensible schedule.
        if !(1..=31_536_000).contains(&self.agent.reminder_expiry) {
            return Err(fail(
                "agent.reminder_expiry".into(),
                "must be between 1 second and a year (31536000)".into(),
            ));
        }
        if let Some(name) = &self.agent.name {
            if name.is_empty() || name.contains(['/', '+', '#']) {
                return Err(fail(
                    "agent.name".into(),
                    "must be non-empty, without `/`, `+` or `#`".into(),
                ));
            }
        }
        let ha = &self.homeassistant;
        if ha.prefix.is_empty() || ha.prefix.contains(['+', '#']) || ha.prefix.starts_with('/') {
            return Err(fail(
                "homeassistant.prefix".into(),
                "must be a non-empty topic without wildcards".into(),
            ));
        }
        if ha.prefix == self.mqtt.base_topic {
            return Err(fail(
                "homeassistant.prefix".into(),
                "must differ from mqtt.base_topic".into(),
            ));
        }
        for (key, name) in &ha.entity_names {
            if !ENTITY_KEYS.contains(&key.as_str()) {
                return Err(fail(
                    format!("homeassistant.entity_names.{key}"),
                    format!("not an entity; known: {}", ENTITY_KEYS.join(", ")),
                ));
            }
            if name.trim().is_empty() {
                return Err(fail(
                    format!("homeassistant.entity_names.{key}"),
                    "must not be empty".into(),
                ));
            }
        }
        self.provisioning.validate(&fail)?;
        let mut seen = std::collections::HashMap::new();
        let mut names = std::collections::HashMap::new();
        for (index, phone) in self.phones.iter().enumerate() {
            let key = |field: &str| format!("phone[{index}].{field}");
            let Some(id) = PhoneId::parse(&phone.mac) else {
                return Err(fail(
                    key("mac"),
                    format!("`{}` is not a MAC address", phone.mac),
                ));
            };
            if let Some(previous) = seen.insert(id.clone(), index) {
                return Err(fail(
                    key("mac"),
                    format!("the same phone as phone[{previous}]"),
                ));
            }
            let Some(vendor) = phone_vendors::find(&phone.vendor) else {
                return Err(fail(
                    key("vendor"),
                    format!(
                        "unknown vendor `{}`; known: {}",
                        phone.vendor,
                        phone_vendors::names().join(", ")
                    ),
                ));
            };
            if let Some((option, reason)) = phone.unread_option(vendor) {
                return Err(fail(key(option), reason));
            }
            crate::phone_address::check_configured(&phone.address)
                .map_err(|reason| fail(key("address"), reason.to_string()))?;
            if let Some(name) = &phone.name {
                if name.contains(['/', '+', '#']) {
                    return Err(fail(key("name"), "must not contain `/`, `+` or `#`".into()));
                }
                // Commands address a phone by MAC or by name: each must reach one phone.
                if PhoneId::parse(name).is_some_and(|named| named != id) {
                    return Err(fail(
                        key("name"),
                        format!("`{name}` is a MAC address; a name must not be one"),
                    ));
                }
                if let Some(previous) = names.insert(name.to_lowercase(), index) {
                    return Err(fail(
                        key("name"),
                        format!("`{name}` is the name of phone[{previous}] already"),
                    ));
                }
            }
            for (number, label) in &phone.keys {
                crate::profile::check_key(number, label)
                    .map_err(|reason| fail(key(&format!("keys.{number}")), reason.to_string()))?;
            }
            for (name, value) in &phone.settings {
                crate::profile::check_setting(name, &value.to_setting())
                    .map_err(|reason| fail(key(&format!("settings.{name}")), reason.to_string()))?;
            }
        }
        Ok(())
    }
}

/// Finds the dotted key a TOML error is about, from its position in the text.
fn toml_error_key(text: &str, err: &toml::de::Error) -> String {
    let Some(span) = err.span() else {
        return "(syntax)".into();
    };
    let before = &text[..span.start.min(text.len())];
    let line_no = before.matches('\n').count() + 1;
    let table = before
        .lines()
        .rev()
        .map(str::trim)
        .find(|line| line.starts_with('['))
        .map(|line| line.trim_matches(['[', ']']).to_string());
    let key = text[span.clone()]
        .split('=')
        .next()
        .unwrap_or("")
        .trim()
        .to_string();
    match table {
        Some(table) if !key.is_empty() && !key.contains('\n') => {
            format!("{table}.{key} (line {line_no})")
        }
        Some(table) => format!("{table} (line {line_no})"),
        None if !key.is_empty() && !key.contains('\n') => format!("{key} (line {line_no})"),
        None => format!("line {line_no}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_documented_ones() {
        let config = Config::parse("", "t.toml").unwrap();
        assert_eq!(config.mqtt.base_topic, "phone2mqtt");
        assert_eq!(config.http.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(config.agent.command_timeout, 5.0);
        assert!(config.mqtt.url.is_none());
    }

    #[test]
    fn an_outbox_too_small_for_the_largest_message_is_refused() {
        let err = Config::parse("[mqtt]\noutbox_bytes = 65536\n", "site.toml")
            .unwrap_err()
            .to_string();
        assert!(err.contains("mqtt.outbox_bytes"), "{err}");
        let config = Config::parse("[mqtt]\noutbox_bytes = 4194304\n", "site.toml").unwrap();
        assert_eq!(config.mqtt.outbox_bytes, 4 << 20);
    }

    #[test]
    fn errors_name_the_file_and_key() {
        let err = Config::parse(
            "[http]\nlisten = \"127.0.0.1:8080\"\nlistn = 1\n",
            "site.toml",
        )
        .unwrap_err()
        .to_string();
        assert!(err.starts_with("site.toml: http.listn"), "{err}");
        let err = Config::parse(
            "[[phone]]\nmac = \"zz\"\nvendor = \"yealink\"\naddress = \"10.0.0.5\"\n",
            "site.toml",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("phone[0].mac"), "{err}");
        let err = Config::parse(
            "[[phone]]\nmac = \"001565000001\"\nvendor = \"nokia\"\naddress = \"10.0.0.5\"\n",
            "site.toml",
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("phone[0].vendor") && err.contains("yealink"),
            "{err}"
        );
        let err = Config::parse("[http]\nlisten = \"0.0.0.0:8080\"\n", "site.toml")
            .unwrap_err()
            .to_string();
        assert!(err.contains("http.public_url"), "{err}");
    }

    /// `dnd_key` and `legacy_api` are options only some vendors read (`VendorSpec::options`):
    /// kept for those, refused with the file and key for the others; left at their defaults
    /// they are nobody's concern.
    #[test]
    fn vendor_options_only_for_the_vendors_that_read_them() {
        let phone = |vendor: &str, extra: &str| {
            format!("[[phone]]\nmac = \"001565000001\"\nvendor = \"{vendor}\"\naddress = \"10.0.0.5\"\n{extra}\n")
        };
        let config = Config::parse(
            &phone("grandstream", "dnd_key = \"MPK1\"\nlegacy_api = true"),
            "site.toml",
        )
        .unwrap();
        assert_eq!(config.phones[0].dnd_key.as_deref(), Some("MPK1"));
        assert!(config.phones[0].legacy_api);
        for (extra, key) in [
            ("dnd_key = \"MPK1\"", "phone[0].dnd_key"),
            ("legacy_api = true", "phone[0].legacy_api"),
        ] {
            let err = Config::parse(&phone("yealink", extra), "site.toml")
                .unwrap_err()
                .to_string();
            assert!(
                err.starts_with(&format!("site.toml: {key}: Yealink phones do not read it"))
                    && err.contains("Grandstream"),
                "{err}"
            );
        }
        assert!(Config::parse(&phone("snom", "legacy_api = false"), "site.toml").is_ok());
    }

    #[test]
    fn home_assistant_section() {
        let config = Config::parse("", "t.toml").unwrap();
        assert!(config.homeassistant.enabled);
        assert_eq!(config.homeassistant.prefix, "homeassistant");
        let config = Config::parse(
            "[homeassistant]\nprefix = \"ha\"\nentity_names = { dnd = \"Nicht stören\" }\n[[phone]]\nmac = \"001565000001\"\nvendor = \"yealink\"\naddress = \"10.0.0.5\"\nhomeassistant = false\n",
            "t.toml",
        )
        .unwrap();
        assert_eq!(config.homeassistant.entity_names["dnd"], "Nicht stören");
        assert!(!config.phones[0].homeassistant);
        let err = Config::parse(
            "[homeassistant]\nentity_names = { dnd_toggle = \"x\" }\n",
            "t.toml",
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("homeassistant.entity_names.dnd_toggle"),
            "{err}"
        );
        let err = Config::parse("[homeassistant]\nprefix = \"ha/#\"\n", "t.toml")
            .unwrap_err()
            .to_string();
        assert!(err.contains("homeassistant.prefix"), "{err}");
    }

    #[test]
    fn https_keys() {
        let config = Config::parse("", "t.toml").unwrap();
        assert_eq!(config.http.https_listen(), None);
        let config = Config::parse("[http]\ntls_self_signed = true\n", "t.toml").unwrap();
        assert_eq!(
            config.http.https_listen(),
            Some("127.0.0.1:8443".parse().unwrap())
        );
        let config = Config::parse(
            "[http]\ntls_cert = \"c.pem\"\ntls_key = \"k.pem\"\ntls_listen = \"0.0.0.0:443\"\npublic_url = \"http://10.0.0.1:8080\"\nmanager_url = \"https://phones.example.com\"\n",
            "t.toml",
        )
        .unwrap();
        assert_eq!(
            config.http.https_listen(),
            Some("0.0.0.0:443".parse().unwrap())
        );
        for (text, key) in [
            ("tls_cert = \"c.pem\"\n", "http.tls_key"),
            ("tls_key = \"k.pem\"\n", "http.tls_cert"),
            (
                "tls_cert = \"c.pem\"\ntls_key = \"k.pem\"\ntls_self_signed = true\n",
                "http.tls_self_signed",
            ),
            ("tls_listen = \"127.0.0.1:8443\"\n", "http.tls_listen"),
            (
                "tls_self_signed = true\ntls_listen = \"127.0.0.1:8080\"\n",
                "http.tls_listen",
            ),
            ("manager_url = \"phones.example.com\"\n", "http.manager_url"),
        ] {
            let err = Config::parse(&format!("[http]\n{text}"), "t.toml")
                .unwrap_err()
                .to_string();
            assert!(err.contains(key), "{text}: {err}");
        }
    }

    #[test]
    fn a_ca_file_is_for_tls_brokers_only() {
        let config = Config::parse(
            "[mqtt]\nurl = \"mqtts://broker.example\"\nca_file = \"ca.pem\"\n",
            "t.toml",
        )
        .unwrap();
        assert_eq!(config.mqtt.ca_file.unwrap().to_str(), Some("ca.pem"));
        for text in [
            "[mqtt]\nurl = \"mqtt://broker.example\"\nca_file = \"ca.pem\"\n",
            "[mqtt]\nca_file = \"ca.pem\"\n",
        ] {
            let err = Config::parse(text, "t.toml").unwrap_err().to_string();
            assert!(err.contains("mqtt.ca_file"), "{err}");
        }
        let config = Config::parse("[broker]\nallow_anonymous = false\n", "t.toml").unwrap();
        assert_eq!(config.broker.allow_anonymous, Some(false));
    }

    #[test]
    fn provisioning_allow_list() {
        let config = Config::parse("", "t.toml").unwrap();
        let allows = |config: &Config, ip: &str| config.provisioning.allows(ip.parse().unwrap());
        for ip in [
            "10.1.2.3",
            "172.31.0.1",
            "192.168.1.10",
            "127.0.0.1",
            "::1",
            "fd00::5",
            "fe80::1",
            "169.254.3.4",
            "::ffff:192.168.1.10",
        ] {
            assert!(allows(&config, ip), "{ip}");
        }
        for ip in ["8.8.8.8", "172.32.0.1", "2001:db8::1", "::ffff:8.8.8.8"] {
            assert!(!allows(&config, ip), "{ip}");
        }
        let config =
            Config::parse("[provisioning]\nallow = [\"10.20.0.0/16\"]\n", "t.toml").unwrap();
        assert!(allows(&config, "10.20.3.4"));
        assert!(!allows(&config, "127.0.0.1"));
        let err = Config::parse("[provisioning]\nallow = [\"10.20.0.0\"]\n", "t.toml")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("provisioning") && err.contains("line 2") && err.contains("IP"),
            "{err}"
        );
        let err = Config::parse("[provisioning]\nauth_username = \"prov\"\n", "t.toml")
            .unwrap_err()
            .to_string();
        assert!(err.contains("provisioning.auth_username"), "{err}");
    }

    #[test]
    fn phone_addresses_and_names_reach_one_phone_each() {
        let phone = |mac: &str, address: &str, name: &str| {
            format!("[[phone]]\nmac = \"{mac}\"\nvendor = \"yealink\"\naddress = \"{address}\"\nname = \"{name}\"\n")
        };
        for address in [
            "10.0.0.5",
            "10.0.0.5:8080",
            "https://10.0.0.5/",
            "[2001:db8::5]:80",
        ] {
            let text = phone("001565000001", address, "Desk");
            assert!(Config::parse(&text, "t.toml").is_ok(), "{address}");
        }
        for address in [
            "http://10.0.0.5/cgi-bin/x",
            "http://admin:pw@10.0.0.5",
            "10.0.0.5#",
            "10.0.0.5?x",
        ] {
            let text = phone("001565000001", address, "Desk");
            let err = Config::parse(&text, "t.toml").unwrap_err().to_string();
            assert!(
                err.contains("phone[0].address") && err.contains("host[:port]"),
                "{address}: {err}"
            );
        }
        let twice =
            phone("001565000001", "10.0.0.5", "Desk") + &phone("001565000002", "10.0.0.6", "DESK");
        let err = Config::parse(&twice, "t.toml").unwrap_err().to_string();
        assert!(
            err.contains("phone[1].name") && err.contains("phone[0]"),
            "{err}"
        );
        let mac_named = phone("001565000001", "10.0.0.5", "00:15:65:00:00:02");
        let err = Config::parse(&mac_named, "t.toml").unwrap_err().to_string();
        assert!(err.contains("phone[0].name"), "{err}");
        let err = Config::parse("[provisioning]\nphone_port = 0\n", "t.toml")
            .unwrap_err()
            .to_string();
        assert!(err.contains("provisioning.phone_port"), "{err}");
    }

    #[test]
    fn secrets_do_not_print() {
        let config = Config::parse(
            "[[phone]]\nmac = \"001565000001\"\nvendor = \"yealink\"\naddress = \"10.0.0.5\"\npassword = \"hunter2\"\n",
            "t.toml",
        )
        .unwrap();
        assert!(!format!("{config:?}").contains("hunter2"));
    }
}
