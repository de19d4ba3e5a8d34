//! The profile layers of every phone: from `phone2mqtt.toml`, and pushed at run time (MQTT
//! `configure` and `logo`, the web API, the CLI), the pushed ones kept in
//! `<data_dir>/provisioning.toml` so that they survive a restart.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::config::{PhoneConfig, ProvisioningConfig};
use crate::datafile::{self, DataFile, Format};
use crate::model::{Changes, PhoneId};
use crate::profile::{Layer, Profile};

/// Where a change applies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    Site,
    Group(String),
    Phone(PhoneId),
}

/// Why a pushed change was not kept.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChangeError {
    /// Settings for a site or a group, with no vendor to read their keys by.
    #[error("settings for a site or a group need `vendor`: vendor keys differ from one vendor to the next")]
    NeedsVendor,
    /// `provisioning.toml` could not be written.
    #[error(transparent)]
    File(#[from] datafile::Error),
}

/// What was pushed at run time: the file's content.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Pushed {
    #[serde(skip_serializing_if = "Layer::is_empty")]
    pub site: Layer,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub group: BTreeMap<String, Layer>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub phone: BTreeMap<String, Layer>,
}

/// What the file says of itself.
const HEADER: &str = "# Programmable keys, vendor settings and logos pushed to phones at run time\n# (MQTT `configure` and `logo`, the Manager, the CLI). phone2mqtt.toml's\n# [provisioning] holds the same for the whole site, and these come on top of it.\n\n";

#[derive(Debug)]
pub struct Profiles {
    pushed: DataFile<Pushed>,
    /// The file's site layer and group layers.
    site: Layer,
    config: ProvisioningConfig,
}

impl Profiles {
    /// Reads what was pushed before; a broken file is an error naming it.
    pub fn load(path: PathBuf, config: &ProvisioningConfig) -> Result<Profiles, datafile::Error> {
        Ok(Profiles {
            pushed: DataFile::load(path, Format::Toml { header: HEADER })?,
            site: config.site_layer(),
            config: config.clone(),
        })
    }

    pub fn pushed(&self) -> Pushed {
        self.pushed.lock().clone()
    }

    /// A phone's profile: site, its groups, itself; the file's layer, then the pushed one.
    pub fn profile(&self, vendor: &str, id: &PhoneId, config: Option<&PhoneConfig>) -> Profile {
        let pushed = self.pushed.lock();
        let groups = config.map(|c| c.groups.as_slice()).unwrap_or_default();
        let mut layers: Vec<Layer> = vec![self.site.clone(), pushed.site.clone()];
        for group in groups {
            layers.extend(self.config.group_layer(group));
            if let Some((_, layer)) = pushed
                .group
                .iter()
                .find(|(name, _)| name.eq_ignore_ascii_case(group))
            {
                layers.push(layer.clone());
            }
        }
        layers.extend(config.map(PhoneConfig::layer));
        layers.extend(pushed.phone.get(id.as_str()).cloned());
        Profile::stack(vendor, layers.iter())
    }

    /// Applies `configure` to a scope and writes the file. Settings need a vendor: the phone's
    /// own, or the one the change names for a site or group.
    pub fn change(
        &self,
        scope: &Scope,
        changes: &Changes,
        vendor: Option<&str>,
    ) -> Result<(), ChangeError> {
        let vendor = changes.vendor.as_deref().or(vendor);
        if !changes.settings.is_empty() && vendor.is_none() {
            return Err(ChangeError::NeedsVendor);
        }
        Ok(self.update(scope, |layer| {
            for (index, label) in &changes.keys {
                // Removing a key the site or group set needs an empty label in the narrower
                // layer; removing one this layer set just drops it.
                match label {
                    Some(label) => layer.keys.insert(index.clone(), label.clone()),
                    None => layer.keys.remove(index),
                };
            }
            if let Some(vendor) = vendor {
                let settings = layer.settings.entry(vendor.to_string()).or_default();
                for (key, value) in &changes.settings {
                    match value {
                        Some(value) => settings.insert(key.clone(), value.clone()),
                        None => settings.remove(key),
                    };
                }
                if settings.is_empty() {
                    layer.settings.remove(vendor);
                }
            }
        })?)
    }

    /// Sets the logo of a scope (a file in the logos directory).
    pub fn set_logo(&self, scope: &Scope, file: &str) -> Result<(), datafile::Error> {
        self.update(scope, |layer| layer.logo = Some(file.to_string()))
    }

    fn update(
        &self,
        scope: &Scope,
        change: impl FnOnce(&mut Layer),
    ) -> Result<(), datafile::Error> {
        self.pushed.update(|pushed| {
            let layer = match scope {
                Scope::Site => &mut pushed.site,
                Scope::Group(group) => pushed.group.entry(group.clone()).or_default(),
                Scope::Phone(id) => pushed.phone.entry(id.to_string()).or_default(),
            };
            change(layer);
            pushed.group.retain(|_, layer| !layer.is_empty());
            pushed.phone.retain(|_, layer| !layer.is_empty());
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pushed_layers_stack_on_the_files_and_survive_a_reload() {
        let (dir, path) = crate::datafile::scratch("profiles", "provisioning.toml");
        let config = crate::config::Config::parse(
            "[provisioning]\nkeys = { 3 = \"Garage door\" }\n[provisioning.settings.yealink]\n\"a\" = 1\n[provisioning.group.front]\nkeys = { 4 = \"Lights\" }\n",
            "t.toml",
        )
        .unwrap();
        let profiles = Profiles::load(path.clone(), &config.provisioning).unwrap();
        let id = PhoneId::parse("001565000001").unwrap();
        let mut phone: PhoneConfig = toml::from_str(
            "mac = \"001565000001\"\nvendor = \"yealink\"\naddress = \"x\"\ngroups = [\"front\"]\n",
        )
        .unwrap();
        phone.groups = vec!["Front".into()];
        let profile = profiles.profile("yealink", &id, Some(&phone));
        assert_eq!(profile.keys.len(), 2);
        assert_eq!(profile.settings, vec![("a".into(), "1".into())]);
        let changes = Changes {
            keys: BTreeMap::from([("3".to_string(), Some("Gate".to_string()))]),
            settings: BTreeMap::from([("b".to_string(), Some("2".to_string()))]),
            vendor: None,
            apply: true,
        };
        assert_eq!(
            profiles.change(&Scope::Site, &changes, None),
            Err(ChangeError::NeedsVendor)
        );
        profiles
            .change(&Scope::Phone(id.clone()), &changes, Some("yealink"))
            .unwrap();
        profiles
            .set_logo(&Scope::Phone(id.clone()), "logo-1.png")
            .unwrap();
        let reloaded = Profiles::load(path, &config.provisioning).unwrap();
        let profile = reloaded.profile("yealink", &id, Some(&phone));
        assert_eq!(profile.key(3).unwrap().label, "Gate");
        assert_eq!(profile.settings.len(), 2);
        assert_eq!(profile.logo.as_deref(), Some("logo-1.png"));
        let _ = std::fs::remove_dir_all(dir);
    }
}
