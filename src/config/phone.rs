//! `[[phone]]`: one configured phone.

use serde::Deserialize;

use super::provisioning::settings_text;
use super::Secret;
use crate::model::PhoneId;

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
    Secret::new("admin")
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
