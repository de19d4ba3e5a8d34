//! `[provisioning]`: what the agent serves phones that fetch their configuration from it.

use serde::Deserialize;

use super::{ConfigError, Secret};
use crate::phone_vendors;

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
pub(super) fn settings_text(
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

    pub(super) fn validate(
        &self,
        fail: &dyn Fn(String, String) -> ConfigError,
    ) -> Result<(), ConfigError> {
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
