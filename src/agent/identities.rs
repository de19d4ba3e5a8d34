//! What each configured phone last told about itself (model, firmware, IP), kept in
//! `<data_dir>/identities.json` so that after a restart the Manager and Home Assistant show it
//! before the phone calls in again, and the phone's discovery is published once, complete.
//!
//! A cache the agent writes for itself, so compact JSON, written by the background flush at
//! most once a second: 10,000 phones registering at once change it 10,000 times.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::datafile::{self, DataFile, Format};
use crate::model::{PhoneId, PhoneInfo};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub firmware: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
}

#[derive(Debug)]
pub struct Identities {
    /// By MAC.
    file: DataFile<BTreeMap<String, Identity>>,
}

impl Identities {
    /// Reads the file; a missing one is an empty cache. A damaged one is an error naming it:
    /// a cache, but emptying it silently would hide what damaged it.
    pub fn load(path: PathBuf) -> Result<Identities, datafile::Error> {
        Ok(Identities {
            file: DataFile::load(path, Format::Json)?,
        })
    }

    pub fn all(&self) -> Vec<(PhoneId, Identity)> {
        self.file
            .lock()
            .iter()
            .filter_map(|(mac, identity)| Some((PhoneId::parse(mac)?, identity.clone())))
            .collect()
    }

    /// Remembers a configured phone's identity, when it changed.
    pub fn remember(&self, info: &PhoneInfo) {
        if !info.configured {
            return;
        }
        let told = Identity {
            model: info.model.clone(),
            firmware: info.firmware.clone(),
            ip: info.ip.clone(),
        };
        if self.file.lock().get(info.id.as_str()) != Some(&told) {
            self.file
                .change_soon(|by_phone| by_phone.insert(info.id.to_string(), told));
        }
    }

    /// Writes the file when something changed.
    pub fn flush(&self) -> Result<(), datafile::Error> {
        self.file.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identities_survive_a_reload_and_only_configured_phones_are_kept() {
        let (dir, path) = crate::datafile::scratch("identities", "identities.json");
        let identities = Identities::load(path.clone()).unwrap();
        let id = PhoneId::parse("001565000001").unwrap();
        let mut info = PhoneInfo {
            id: id.clone(),
            mac: id.colon_mac(),
            name: None,
            vendor: "yealink".into(),
            model: Some("SIP-T46G".into()),
            firmware: Some("28.72.0.1".into()),
            ip: Some("10.0.0.5".into()),
            agent: "a".into(),
            configured: true,
            groups: Vec::new(),
            subscriber: None,
        };
        identities.remember(&info);
        identities.flush().unwrap();
        info.id = PhoneId::parse("001565000002").unwrap();
        info.configured = false;
        identities.remember(&info);
        identities.flush().unwrap();
        let reloaded = Identities::load(path.clone()).unwrap();
        let all = reloaded.all();
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].0, id);
        assert_eq!(all[0].1.model.as_deref(), Some("SIP-T46G"));
        // Damaged, it is an error naming it, and left as it is.
        std::fs::write(&path, "{\"0015").unwrap();
        let err = Identities::load(path.clone()).unwrap_err();
        assert_eq!(err.path, path.display().to_string());
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "{\"0015");
        let _ = std::fs::remove_dir_all(dir);
    }
}
