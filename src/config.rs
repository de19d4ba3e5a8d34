//! `phone2mqtt.toml`: types, defaults and validation.
//!
//! Every key is checked before anything starts: an unknown or misspelled key, a bad MAC or an
//! unknown vendor stops the process with one message naming the file and the key.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::model::PhoneId;
use crate::phone_vendors;

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
    #[serde(rename = "phone")]
    pub phones: Vec<PhoneConfig>,
}

/// The PBX subscriber list.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DirectoryConfig {
    /// A CSV file (extension, name, department) imported at every start.
    pub file: Option<PathBuf>,
}

/// Provisioning: what the agent serves phones that fetch their configuration from it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProvisioningConfig {
    /// The site's own provisioning server (`http://pbx.example.com/prov/`). A phone's request is
    /// fetched from it first and phone2mqtt's settings are merged into the answer, so nothing
    /// the site provisions is lost.
    pub upstream: Option<String>,
    /// Yealink only: answer the phone's boot file (`<mac>.boot`) with one that includes the
    /// upstream file and phone2mqtt's own, instead of merging them.
    pub yealink_boot: bool,
    /// The credentials a discovered phone is adopted with when the adoption gives none. They
    /// only ever go to the IP the phone itself called from, on `phone_port`.
    pub username: Option<String>,
    pub password: Option<Secret>,
    /// The port the site's phones serve their web interface on (80 unless set): where an
    /// adoption with the site's credentials reaches a phone at the IP it called from.
    pub phone_port: Option<u16>,
    /// Adopt every discovered phone at once with those credentials; only phones whose address
    /// is inside `allow`.
    pub auto_adopt: bool,
    /// The subnets phones may fetch provisioning files from (CIDR). Absent: the private ranges
    /// (10/8, 172.16/12, 192.168/16, fc00::/7), link-local and loopback.
    pub allow: Option<Vec<ipnet::IpNet>>,
    /// Credentials the phones must give (HTTP Basic or Digest) to fetch a provisioning file.
    pub auth_username: Option<String>,
    pub auth_password: Option<Secret>,
    /// Programmable keys on every phone: `keys = { 3 = "Garage door" }`.
    pub keys: std::collections::BTreeMap<String, String>,
    /// Vendor settings on every phone of a vendor: `[provisioning.settings.yealink]`.
    pub settings: std::collections::BTreeMap<
        String,
        std::collections::BTreeMap<String, crate::profile::SettingValue>,
    >,
    /// The same per group: `[provisioning.group.front]`, `[provisioning.group.front.settings.snom]`.
    pub group: std::collections::BTreeMap<String, GroupProvisioning>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GroupProvisioning {
    pub keys: std::collections::BTreeMap<String, String>,
    pub settings: std::collections::BTreeMap<
        String,
        std::collections::BTreeMap<String, crate::profile::SettingValue>,
    >,
}

/// Settings as the profile layers hold them (all text).
fn settings_text(
    settings: &std::collections::BTreeMap<String, crate::profile::SettingValue>,
) -> std::collections::BTreeMap<String, String> {
    settings
        .iter()
        .map(|(key, value)| (key.clone(), value.to_setting()))
        .collect()
}

/// Where phones may fetch provisioning from when `[provisioning] allow` is not set.
pub const DEFAULT_ALLOW: &[&str] = &[
    "10.0.0.0/8",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "fc00::/7",
    "169.254.0.0/16",
    "fe80::/10",
    "127.0.0.0/8",
    "::1/128",
];

impl ProvisioningConfig {
    /// Whether a phone at `ip` may fetch provisioning files (and be adopted automatically).
    pub fn allows(&self, ip: std::net::IpAddr) -> bool {
        // An IPv4 phone on a dual-stack listener shows as `::ffff:a.b.c.d`.
        let ip = ip.to_canonical();
        match &self.allow {
            Some(allow) => allow.iter().any(|net| net.contains(&ip)),
            None => DEFAULT_ALLOW.iter().any(|net| {
                net.parse::<ipnet::IpNet>()
                    .is_ok_and(|net| net.contains(&ip))
            }),
        }
    }

    /// The credentials phones must give for provisioning files, when both are set.
    pub fn auth(&self) -> Option<(&str, &Secret)> {
        match (&self.auth_username, &self.auth_password) {
            (Some(username), Some(password)) => Some((username, password)),
            _ => None,
        }
    }

    /// The site layer of every phone's profile.
    pub fn site_layer(&self) -> crate::profile::Layer {
        crate::profile::Layer {
            keys: self.keys.clone(),
            settings: self
                .settings
                .iter()
                .map(|(vendor, s)| (vendor.to_ascii_lowercase(), settings_text(s)))
                .collect(),
            logo: None,
        }
    }

    /// A group's layer, if the file declares one.
    pub fn group_layer(&self, group: &str) -> Option<crate::profile::Layer> {
        let (_, declared) = self
            .group
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(group))?;
        Some(crate::profile::Layer {
            keys: declared.keys.clone(),
            settings: declared
                .settings
                .iter()
                .map(|(vendor, s)| (vendor.to_ascii_lowercase(), settings_text(s)))
                .collect(),
            logo: None,
        })
    }

    fn validate(&self, fail: &dyn Fn(String, String) -> ConfigError) -> Result<(), ConfigError> {
        if let Some(url) = &self.upstream {
            if url::Url::parse(url)
                .ok()
                .filter(|u| matches!(u.scheme(), "http" | "https"))
                .is_none()
            {
                return Err(fail(
                    "provisioning.upstream".into(),
                    format!("`{url}` must be an http:// or https:// URL"),
                ));
            }
        }
        match (&self.auth_username, &self.auth_password) {
            (Some(_), None) | (None, Some(_)) => {
                return Err(fail(
                    "provisioning.auth_username".into(),
                    "auth_username and auth_password go together".into(),
                ))
            }
            (Some(username), Some(password)) => {
                if username.is_empty() || username.contains([':', '"']) {
                    return Err(fail(
                        "provisioning.auth_username".into(),
                        "must be non-empty, without `:` or `\"`".into(),
                    ));
                }
                if password.expose().is_empty() || password.expose().contains('"') {
                    return Err(fail(
                        "provisioning.auth_password".into(),
                        "must be non-empty, without `\"`".into(),
                    ));
                }
            }
            (None, None) => {}
        }
        if self.phone_port == Some(0) {
            return Err(fail(
                "provisioning.phone_port".into(),
                "must be a port from 1 to 65535".into(),
            ));
        }
        if self.yealink_boot && self.upstream.is_none() {
            return Err(fail(
                "provisioning.yealink_boot".into(),
                "needs provisioning.upstream: the boot file includes the upstream file".into(),
            ));
        }
        check_layer("provisioning", &self.keys, &self.settings, fail)?;
        for (name, group) in &self.group {
            check_layer(
                &format!("provisioning.group.{name}"),
                &group.keys,
                &group.settings,
                fail,
            )?;
        }
        Ok(())
    }
}

fn check_layer(
    scope: &str,
    keys: &std::collections::BTreeMap<String, String>,
    settings: &std::collections::BTreeMap<
        String,
        std::collections::BTreeMap<String, crate::profile::SettingValue>,
    >,
    fail: &dyn Fn(String, String) -> ConfigError,
) -> Result<(), ConfigError> {
    for (index, label) in keys {
        crate::profile::check_key(index, label)
            .map_err(|reason| fail(format!("{scope}.keys.{index}"), reason.to_string()))?;
    }
    for (vendor_id, values) in settings {
        if phone_vendors::find(vendor_id).is_none() {
            return Err(fail(
                format!("{scope}.settings.{vendor_id}"),
                format!(
                    "unknown vendor; known: {}",
                    phone_vendors::names().join(", ")
                ),
            ));
        }
        for (key, value) in values {
            crate::profile::check_setting(key, &value.to_setting()).map_err(|reason| {
                fail(
                    format!("{scope}.settings.{vendor_id}.{key}"),
                    reason.to_string(),
                )
            })?;
        }
    }
    Ok(())
}

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

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MqttConfig {
    /// `mqtt://host:1883`, `mqtts://host:8883`, `ws://host:8083/mqtt`. Absent: the embedded broker.
    pub url: Option<String>,
    pub base_topic: String,
    pub username: Option<String>,
    pub password: Option<Secret>,
    /// The CA (PEM) that signed an `mqtts://` or `wss://` broker's certificate, for a private
    /// CA; absent: the system's roots.
    pub ca_file: Option<PathBuf>,
}

impl Default for MqttConfig {
    fn default() -> Self {
        MqttConfig {
            url: None,
            base_topic: "phone2mqtt".into(),
            username: None,
            password: None,
            ca_file: None,
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BrokerConfig {
    /// rumqttd settings; absent: the built-in copy of the shipped `broker.toml`.
    pub config: Option<PathBuf>,
    /// Overrides the MQTT listener of that file; default 127.0.0.1:1883.
    pub listen: Option<SocketAddr>,
    /// Let clients in without a user name. Only for a broker listening on loopback only;
    /// absent: allowed there unless broker.toml lists static users.
    pub allow_anonymous: Option<bool>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    pub listen: SocketAddr,
    /// How phones reach this agent, e.g. `http://192.168.1.10:8080`. Absent: derived from `listen`.
    pub public_url: Option<String>,
    /// The installation-wide Action URL token of earlier versions, now a legacy token: phones
    /// provisioned with it keep working for `action_token_grace_days`, then must be provisioned
    /// again (each phone has its own token now).
    pub action_token: Option<Secret>,
    /// The HTTPS listener for people (Manager, `/ws`, REST API). Absent while a certificate is
    /// configured: port 8443 on the `listen` address.
    pub tls_listen: Option<SocketAddr>,
    /// The HTTPS certificate chain and its private key (PEM files).
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// A self-signed certificate, generated on first start and kept in the data directory.
    pub tls_self_signed: bool,
    /// How people reach the Manager, e.g. `https://phones.example.com:8443`. Absent: the HTTPS
    /// address when HTTPS is on, `public_url` otherwise.
    pub manager_url: Option<String>,
    /// More names people reach the Manager by (`phones.example.com`, `gw.example.com:8443`),
    /// besides the listen address, loopback and `public_url`: a browser request whose `Host` or
    /// `Origin` is none of them is refused (DNS rebinding, cross-site requests).
    pub allowed_hosts: Vec<String>,
    /// Days the legacy token (`action_token`, or the one kept in the data directory) is still
    /// accepted, counted from the first start of this version; 0 refuses it now.
    pub action_token_grace_days: u32,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            public_url: None,
            action_token: None,
            tls_listen: None,
            tls_cert: None,
            tls_key: None,
            tls_self_signed: false,
            manager_url: None,
            allowed_hosts: Vec::new(),
            action_token_grace_days: crate::phone_auth::DEFAULT_GRACE_DAYS,
        }
    }
}

impl HttpConfig {
    /// Where HTTPS listens, when a certificate is configured.
    pub fn https_listen(&self) -> Option<SocketAddr> {
        let certificate = self.tls_self_signed || self.tls_cert.is_some();
        certificate.then(|| {
            self.tls_listen
                .unwrap_or_else(|| SocketAddr::new(self.listen.ip(), DEFAULT_HTTPS_PORT))
        })
    }

    fn validate_tls(
        &self,
        fail: &dyn Fn(String, String) -> ConfigError,
    ) -> Result<(), ConfigError> {
        match (&self.tls_cert, &self.tls_key) {
            (Some(_), None) => {
                return Err(fail(
                    "http.tls_key".into(),
                    "required with http.tls_cert: the certificate's private key (PEM)".into(),
                ))
            }
            (None, Some(_)) => {
                return Err(fail(
                    "http.tls_cert".into(),
                    "required with http.tls_key: the certificate chain (PEM)".into(),
                ))
            }
            (Some(_), Some(_)) if self.tls_self_signed => {
                return Err(fail(
                    "http.tls_self_signed".into(),
                    "either tls_cert and tls_key or tls_self_signed, not both".into(),
                ))
            }
            _ => {}
        }
        if let Some(tls_listen) = self.tls_listen {
            if self.https_listen().is_none() {
                return Err(fail(
                    "http.tls_listen".into(),
                    "needs a certificate: http.tls_cert and http.tls_key, or http.tls_self_signed = true".into(),
                ));
            }
            if tls_listen == self.listen && tls_listen.port() != 0 {
                return Err(fail(
                    "http.tls_listen".into(),
                    "must differ from http.listen, which stays plain HTTP for the phones".into(),
                ));
            }
        }
        if let Some(url) = &self.manager_url {
            if url::Url::parse(url)
                .ok()
                .filter(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some())
                .is_none()
            {
                return Err(fail(
                    "http.manager_url".into(),
                    format!("`{url}` must be an http:// or https:// URL"),
                ));
            }
        }
        Ok(())
    }
}

/// HTTPS's port when `[http] tls_listen` is not given.
pub const DEFAULT_HTTPS_PORT: u16 = 8443;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AgentConfig {
    /// This agent's name in `bridge/<name>/state` and in each phone's `info`. Default: the host name.
    pub name: Option<String>,
    /// Where the agent keeps what it learns, and the key the phones' tokens are derived from.
    pub data_dir: PathBuf,
    /// Seconds a phone has to answer one command.
    pub command_timeout: f64,
    /// Answer commands for phones this agent does not know with an error result. Turn it off
    /// when several agents share one broker, so that only the owner answers.
    pub answer_unknown_phones: bool,
}

impl Default for AgentConfig {
    fn default() -> Self {
        AgentConfig {
            name: None,
            data_dir: PathBuf::from("data"),
            command_timeout: 5.0,
            answer_unknown_phones: true,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PhoneConfig {
    pub mac: String,
    pub vendor: String,
    /// `host`, `host:port`, or `http(s)://host:port`.
    pub address: String,
    #[serde(default = "default_username")]
    pub username: String,
    #[serde(default = "default_password")]
    pub password: Secret,
    pub name: Option<String>,
    /// SIP identity used to dial, e.g. `1001@pbx.example.com`.
    pub line: Option<String>,
    /// The phone runs older firmware: use the vendor's older API form where it has one
    /// (Grandstream `api-make_call` with `account` and `password`).
    #[serde(default)]
    pub legacy_api: bool,
    /// For vendors whose only DND control is a programmable key (Grandstream): the key
    /// programmed as DND on the phone, e.g. `MPK1`.
    pub dnd_key: Option<String>,
    /// Groups this phone belongs to: `<base>/group/<group>/cmd/<command>` reaches them all.
    #[serde(default)]
    pub groups: Vec<String>,
    /// Publish Home Assistant discovery for this phone (when `[homeassistant] enabled`).
    #[serde(default = "yes")]
    pub homeassistant: bool,
    /// Programmable keys of this phone: `keys = { 3 = "Garage door" }`.
    #[serde(default)]
    pub keys: std::collections::BTreeMap<String, String>,
    /// Vendor settings of this phone: `settings = { "phone_setting.backlight_time" = 60 }`.
    #[serde(default)]
    pub settings: std::collections::BTreeMap<String, crate::profile::SettingValue>,
}

fn yes() -> bool {
    true
}

fn default_username() -> String {
    "admin".into()
}

fn default_password() -> Secret {
    Secret("admin".into())
}

impl PhoneConfig {
    /// The phone layer of its profile, from the file.
    pub fn layer(&self) -> crate::profile::Layer {
        crate::profile::Layer {
            keys: self.keys.clone(),
            settings: std::collections::BTreeMap::from([(
                self.vendor.to_ascii_lowercase(),
                settings_text(&self.settings),
            )]),
            logo: None,
        }
    }

    pub fn id(&self) -> PhoneId {
        PhoneId::parse(&self.mac).expect("validated when the config was loaded")
    }

    /// The phone's base URL, `http://host:port`, without a trailing slash.
    pub fn base_url(&self) -> String {
        let address = self.address.trim_end_matches('/');
        if address.starts_with("http://") || address.starts_with("https://") {
            address.to_string()
        } else {
            format!("http://{address}")
        }
    }
}

/// A password or token: printed as `***` by `Debug`, never serialised.
#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
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
            crate::mqtt::BrokerUrl::parse(url).map_err(|reason| fail("mqtt.url".into(), reason))?;
        }
        if self.mqtt.ca_file.is_some()
            && !self
                .mqtt
                .url
                .as_deref()
                .and_then(|url| crate::mqtt::BrokerUrl::parse(url).ok())
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
        for name in &self.http.allowed_hosts {
            if !crate::auth::http::is_host_name(name) {
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
        if !(self.agent.command_timeout > 0.0 && self.agent.command_timeout <= 300.0) {
            return Err(fail(
                "agent.command_timeout".into(),
                "must be between 0 and 300 seconds".into(),
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
            if !crate::ha::ENTITY_KEYS.contains(&key.as_str()) {
                return Err(fail(
                    format!("homeassistant.entity_names.{key}"),
                    format!(
                        "not an entity; known: {}",
                        crate::ha::ENTITY_KEYS.join(", ")
                    ),
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
            if phone_vendors::find(&phone.vendor).is_none() {
                return Err(fail(
                    key("vendor"),
                    format!(
                        "unknown vendor `{}`; known: {}",
                        phone.vendor,
                        phone_vendors::names().join(", ")
                    ),
                ));
            }
            crate::phone_address::check_configured(&phone.address)
                .map_err(|reason| fail(key("address"), reason))?;
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
