//! Phones the agent learnt about at run time, kept in `<data_dir>/phones.toml` so that they
//! survive a restart without anyone editing phone2mqtt.toml: adopted phones (with the
//! credentials they were adopted with) and discovered ones. The file is TOML like the
//! `[[phone]]` entries of the config, readable and editable by people, and only by its owner.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::config::{PhoneConfig, Secret};
use crate::datafile::{self, DataFile, Format};

/// The file's content.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Stored {
    /// Adopted phones, as `[[phone]]` entries.
    pub phone: Vec<StoredPhone>,
    /// Phones that called in and were not adopted (yet).
    pub discovered: Vec<DiscoveredPhone>,
}

/// A `[[phone]]` entry as kept on disk (the config's own type never serialises its password).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct StoredPhone {
    pub mac: String,
    pub vendor: String,
    pub address: String,
    pub username: String,
    pub password: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DiscoveredPhone {
    pub mac: String,
    pub vendor: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub firmware: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    /// The source IP the phone's requests came from when it was discovered (`ip` is what it
    /// reported): an adoption with the site's credentials goes there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub came_from: Option<String>,
}

impl StoredPhone {
    pub fn to_config(&self) -> PhoneConfig {
        PhoneConfig {
            mac: self.mac.clone(),
            vendor: self.vendor.clone(),
            address: self.address.clone(),
            username: self.username.clone(),
            password: Secret::new(self.password.clone()),
            name: self.name.clone(),
            line: self.line.clone(),
            legacy_api: false,
            dnd_key: None,
            groups: self.groups.clone(),
            homeassistant: true,
            keys: Default::default(),
            settings: Default::default(),
        }
    }
}

/// What the file says of itself.
const HEADER: &str = "# Phones phone2mqtt adopted or discovered at run time. Adopted phones work like\n# [[phone]] entries of phone2mqtt.toml (which win when both name a MAC).\n\n";

/// Where the phones are kept.
#[derive(Debug)]
pub struct PhoneStore {
    file: DataFile<Stored>,
}

impl PhoneStore {
    /// Reads the kept phones; a missing file is an empty store. A broken file is an error
    /// naming it, rather than silently forgetting phones.
    pub fn load(path: PathBuf) -> Result<PhoneStore, datafile::Error> {
        let format = Format::Toml { header: HEADER };
        Ok(PhoneStore {
            file: DataFile::load(path, format)?,
        })
    }

    pub fn content(&self) -> Stored {
        self.file.lock().clone()
    }

    /// Changes the content now and writes it soon (`flush`): discoveries come in bursts (a
    /// site powering up), and the file is rewritten whole, so one write covers many.
    pub fn change_soon(&self, change: impl FnOnce(&mut Stored)) {
        self.file.change_soon(change);
    }

    /// Writes pending changes, if any.
    pub fn flush(&self) -> Result<(), datafile::Error> {
        self.file.flush()
    }

    /// Changes the content and writes it at once (atomically, readable by its owner only).
    pub fn update(&self, change: impl FnOnce(&mut Stored)) -> Result<(), datafile::Error> {
        self.file.update(change)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phones_round_trip_through_the_file() {
        let (dir, path) = crate::datafile::scratch("store", "phones.toml");
        let store = PhoneStore::load(path.clone()).unwrap();
        store
            .update(|s| {
                s.discovered.push(DiscoveredPhone {
                    mac: "0015654aa937".into(),
                    vendor: "yealink".into(),
                    model: Some("SIP-T46G".into()),
                    firmware: None,
                    ip: Some("10.0.0.5".into()),
                    came_from: Some("10.0.0.5".into()),
                });
                s.phone.push(StoredPhone {
                    mac: "000b82000001".into(),
                    vendor: "grandstream".into(),
                    address: "10.0.0.6".into(),
                    username: "admin".into(),
                    password: "pw".into(),
                    name: Some("Lobby".into()),
                    line: None,
                    groups: vec!["front".into()],
                });
            })
            .unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.contains("[[phone]]") && text.contains("[[discovered]]"),
            "{text}"
        );
        assert_eq!(
            PhoneStore::load(path.clone()).unwrap().content(),
            store.content()
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
                0o600
            );
        }
        let _ = std::fs::remove_dir_all(dir);
    }
}
