//! Scheduled messages ("reminders"): kept in the data directory as JSON so that they survive a
//! restart, listed retained on `bridge/<agent>/reminders`, shown on the phones when due.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use tokio::sync::Notify;

use crate::datafile::{self, DataFile, Format};

/// One scheduled message.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Reminder {
    pub id: String,
    /// A phone reference, `group:<name>`, or `group:all`.
    pub target: String,
    pub text: String,
    #[serde(with = "time::serde::rfc3339")]
    pub due: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub created: OffsetDateTime,
    /// The transaction of the command that scheduled it, echoed when it is shown.
    pub transaction: Option<String>,
}

#[derive(Debug)]
pub struct Reminders {
    /// Soonest first.
    items: DataFile<Vec<Reminder>>,
    /// Woken when the list changes, so the scheduler looks at the next due time again.
    pub changed: Notify,
}

impl Reminders {
    /// Loads the kept reminders; a missing file is an empty list.
    pub fn load(path: PathBuf) -> Result<Reminders, datafile::Error> {
        Ok(Reminders {
            items: DataFile::load(path, Format::PrettyJson)?,
            changed: Notify::new(),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Reminder>> {
        self.items.lock()
    }

    /// The list, soonest first.
    pub fn list(&self) -> Vec<Reminder> {
        let mut items = self.lock().clone();
        items.sort_by_key(|r| r.due);
        items
    }

    /// The soonest reminders whose list fits in `bytes` of JSON: what is retained, bounded
    /// whatever the texts (the others are kept and shown all the same).
    pub fn listed(&self, bytes: usize) -> Vec<Reminder> {
        let mut room = bytes.saturating_sub(2);
        let mut listed = Vec::new();
        for reminder in self.list() {
            let len = crate::agent::directory::json_len(&reminder) + 1;
            if len > room {
                break;
            }
            room -= len;
            listed.push(reminder);
        }
        listed
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    pub fn add(
        &self,
        target: &str,
        text: &str,
        due: OffsetDateTime,
        transaction: Option<String>,
    ) -> Result<Reminder, datafile::Error> {
        let reminder = Reminder {
            id: crate::config::new_token()[..8].to_lowercase(),
            target: target.to_string(),
            text: text.to_string(),
            due,
            created: OffsetDateTime::now_utc(),
            transaction,
        };
        self.items.update(|items| {
            items.push(reminder.clone());
            // Kept in order, so that the file lists them soonest first too.
            items.sort_by_key(|r| r.due);
        })?;
        self.changed.notify_one();
        Ok(reminder)
    }

    pub fn cancel(&self, id: &str) -> Result<Option<Reminder>, datafile::Error> {
        let removed = {
            let mut items = self.lock();
            let index = items.iter().position(|r| r.id == id);
            index.map(|i| items.remove(i))
        };
        if removed.is_some() {
            self.save()?;
            self.changed.notify_one();
        }
        Ok(removed)
    }

    /// Removes and returns the reminders due by `now`.
    pub fn take_due(&self, now: OffsetDateTime) -> Vec<Reminder> {
        let due: Vec<Reminder> = {
            let mut items = self.lock();
            let (due, later): (Vec<Reminder>, Vec<Reminder>) =
                items.drain(..).partition(|r| r.due <= now);
            *items = later;
            due
        };
        if !due.is_empty() {
            if let Err(err) = self.save() {
                tracing::error!(cause = %err, "Reminders could not be saved.");
            }
        }
        due
    }

    pub fn next_due(&self) -> Option<OffsetDateTime> {
        self.lock().iter().map(|r| r.due).min()
    }

    fn save(&self) -> Result<(), datafile::Error> {
        self.items.update(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_retained_list_is_bounded() {
        let dir = std::env::temp_dir().join(format!("p2m-reminders-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let reminders = Reminders::load(dir.join("bounded.json")).unwrap();
        let now = OffsetDateTime::now_utc();
        for i in 0..50 {
            let due = now + time::Duration::minutes(50 - i);
            reminders
                .add("Reception", &"x".repeat(1000), due, None)
                .unwrap();
        }
        let listed = reminders.listed(10_000);
        assert!(serde_json::to_vec(&listed).unwrap().len() <= 10_000);
        // As many as fit: one more would not.
        let one_more = &reminders.list()[..listed.len() + 1];
        assert!(serde_json::to_vec(one_more).unwrap().len() > 10_000);
        assert_eq!(listed[0], reminders.list()[0], "soonest first");
        assert_eq!(reminders.len(), 50);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn reminders_survive_a_reload_and_come_due_in_order() {
        let (dir, path) = crate::datafile::scratch("rem", "reminders.json");
        let now = OffsetDateTime::now_utc();
        let reminders = Reminders::load(path.clone()).unwrap();
        let later = reminders
            .add(
                "0015654aa937",
                "later",
                now + time::Duration::hours(1),
                None,
            )
            .unwrap();
        let soon = reminders
            .add(
                "group:sales",
                "soon",
                now + time::Duration::seconds(1),
                Some("t".into()),
            )
            .unwrap();
        let reloaded = Reminders::load(path.clone()).unwrap();
        assert_eq!(reloaded.list(), vec![soon.clone(), later.clone()]);
        assert_eq!(reloaded.next_due(), Some(soon.due));
        assert_eq!(
            reloaded.take_due(now + time::Duration::seconds(2)),
            vec![soon]
        );
        assert_eq!(
            Reminders::load(path.clone()).unwrap().list(),
            vec![later.clone()]
        );
        assert_eq!(reloaded.cancel(&later.id).unwrap(), Some(later));
        assert!(Reminders::load(path).unwrap().list().is_empty());
        let _ = std::fs::remove_dir_all(dir);
    }
}
