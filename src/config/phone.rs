//! `[[phone]]`: one configured phone.

use serde::Deserialize;

use super::provisioning::settings_text;
use super::Secret;
use crate::model::PhoneId;
use crate::phone_vendors::{PhoneOption, PhoneOptions, VendorSpec, VENDORS};

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
    /// [`PhoneOption::LegacyApi`], for the vendors that read it (`VendorSpec::options`).
    #[serde(default)]
    pub legacy_api: bool,
    /// [`PhoneOption::DndKey`], for the vendors that read it (`VendorSpec::options`).
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

    /// The options only some vendors read, as this entry sets them; `Target` gets those its
    /// vendor reads (`PhoneOptions::read_by`).
    pub fn options(&self) -> PhoneOptions {
        PhoneOptions {
            legacy_api: self.legacy_api,
            dnd_key: self.dnd_key.clone(),
        }
    }

    /// An option this entry sets that `vendor` does not read, as the key and why it is refused.
    pub(super) fn unread_option(&self, vendor: &VendorSpec) -> Option<(&'static str, String)> {
        let options = self.options();
        let option = PhoneOption::ALL
            .iter()
            .copied()
            .find(|option| options.is_set(*option) && !vendor.reads(*option))?;
        let readers: Vec<&str> = VENDORS
            .iter()
            .filter(|spec| spec.reads(option))
            .map(|spec| spec.name)
            .collect();
        let reason = match readers.as_slice() {
            [] => format!("{} phones do not read it: remove it", vendor.name),
            readers => format!(
                "{} phones do not read it, only {} phones: remove it",
                vendor.name,
                readers.join(" and ")
            ),
        };
        Some((option.key(), reason))
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
