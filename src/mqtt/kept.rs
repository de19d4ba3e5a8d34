//! The outbox kept on disk across a restart (`[mqtt] outbox_on_disk`): what the session could
//! not deliver before its shutdown deadline is written to `<data_dir>/outbox.json`, and the
//! next start reads it, sends it first and removes the file. A file that cannot be read is an
//! error naming it: the gateway does not start over it, nor empty it.

use std::path::Path;

use base64::Engine;
use serde::{Deserialize, Serialize};

use super::outbox::{Class, Entry};
use crate::datafile;

/// One kept message. Payloads are JSON or plain text almost always: kept as text when they are
/// UTF-8, in base64 otherwise.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Kept {
    topic: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    payload: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    payload_base64: Option<String>,
    retain: bool,
    #[serde(default)]
    event: bool,
}

/// Writes `entries` to `path` (atomically, fsynced, owner only); none: the file is removed.
pub fn save(path: &Path, entries: &[Entry]) -> Result<(), datafile::Error> {
    if entries.is_empty() {
        return match std::fs::remove_file(path) {
            Err(err) if err.kind() != std::io::ErrorKind::NotFound => Err(datafile::Error {
                path: path.display().to_string(),
                reason: err.to_string(),
            }),
            _ => Ok(()),
        };
    }
    let kept: Vec<Kept> = entries
        .iter()
        .map(|entry| {
            let (payload, payload_base64) = match std::str::from_utf8(&entry.payload) {
                Ok(text) => (Some(text.to_string()), None),
                Err(_) => (
                    None,
                    Some(base64::engine::general_purpose::STANDARD.encode(&entry.payload)),
                ),
            };
            Kept {
                topic: entry.topic.clone(),
                payload,
                payload_base64,
                retain: entry.retain,
                event: entry.class == Class::Event,
            }
        })
        .collect();
    let text = serde_json::to_string(&kept).map_err(|err| datafile::Error {
        path: path.display().to_string(),
        reason: err.to_string(),
    })?;
    datafile::write(path, &text)
}

/// The messages kept at `path`, oldest first; none if there is no file. A file over
/// `max_bytes` is refused unread (a kept outbox is at most the outbox's bytes, plus JSON).
pub fn load(path: &Path, max_bytes: u64) -> Result<Vec<Entry>, datafile::Error> {
    let fail = |reason: String| datafile::Error {
        path: path.display().to_string(),
        reason,
    };
    match std::fs::metadata(path) {
        Ok(meta) if meta.len() > max_bytes => {
            return Err(fail(format!(
            "{} bytes, more than a kept outbox can be ({max_bytes}); remove it to start without it",
            meta.len()
        )))
        }
        _ => {}
    }
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(err) => return Err(fail(err.to_string())),
    };
    let kept: Vec<Kept> =
        serde_json::from_str(&text).map_err(|err| fail(format!("not an outbox file: {err}")))?;
    kept.into_iter()
        .map(|kept| {
            let payload = match (kept.payload, kept.payload_base64) {
                (Some(text), None) => bytes::Bytes::from(text),
                (None, Some(encoded)) => base64::engine::general_purpose::STANDARD
                    .decode(encoded)
                    .map(bytes::Bytes::from)
                    .map_err(|err| fail(format!("{}: bad base64: {err}", kept.topic)))?,
                _ => return Err(fail(format!("{}: one payload expected", kept.topic))),
            };
            let class = if kept.event {
                Class::Event
            } else {
                Class::Message
            };
            Ok(Entry::new(kept.topic, payload, kept.retain, class))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kept_messages_come_back_as_they_were_and_a_damaged_file_is_named() {
        let (dir, path) = datafile::scratch("outbox", "outbox.json");
        let entries = vec![
            Entry::new(
                "p/1/event".into(),
                bytes::Bytes::from_static(br#"{"event":"ringing"}"#),
                false,
                Class::Event,
            ),
            Entry::new(
                "p/1/state".into(),
                bytes::Bytes::from_static(&[0xff, 0x00]),
                true,
                Class::State,
            ),
        ];
        save(&path, &entries).unwrap();
        assert_eq!(load(&path, 1 << 20).unwrap(), entries);
        assert!(load(&path, 10)
            .unwrap_err()
            .to_string()
            .contains("more than"));
        save(&path, &[]).unwrap();
        assert!(!path.exists());
        assert!(load(&path, 1 << 20).unwrap().is_empty());
        std::fs::write(&path, "[{\"topic\":").unwrap();
        let err = load(&path, 1 << 20).unwrap_err();
        assert!(err.to_string().contains("outbox.json"), "{err}");
        let _ = std::fs::remove_dir_all(dir);
    }
}
