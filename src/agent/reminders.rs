//! Scheduled messages ("reminders"): kept in the data directory as JSON until every phone they
//! are for has shown them (or they expired), so that they survive a restart; listed retained
//! on `bridge/<agent>/reminders`; shown on the phones when due, and tried again with a backoff
//! while a phone does not take them (`agent::scheduler`).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use tokio::sync::Notify;

use crate::datafile::{self, DataFile, Format};

/// The first retry of a failed delivery comes this long after it; each next one twice as long
/// after, up to [`RETRY_MAX`].
pub const RETRY_FIRST: time::Duration = time::Duration::seconds(5);
pub const RETRY_MAX: time::Duration = time::Duration::minutes(5);

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
    /// A phone that has not shown it by then is given up, with an error result. Files of
    /// earlier versions have none: `due` plus `[agent] reminder_expiry` when loaded.
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub expires: Option<OffsetDateTime>,
    /// Once due: the phones that have still to show it (the group's members when it came due),
    /// each with its failed attempts. Not due yet: none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deliveries: Option<Vec<Delivery>>,
}

/// A due reminder on its way to one phone.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Delivery {
    /// The phone's id.
    pub phone: String,
    /// Failed attempts so far.
    pub attempts: u32,
    #[serde(with = "time::serde::rfc3339")]
    pub next_try: OffsetDateTime,
    /// Why the last attempt failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// An attempt is under way (not kept: after a restart, none is).
    #[serde(skip)]
    pub under_way: bool,
}

/// A delivery to try now, with what it takes to send it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Due {
    pub reminder: Reminder,
    pub delivery: Delivery,
}

impl Reminder {
    /// When it is given up (`expires`, always set once loaded or added).
    pub fn expiry(&self) -> OffsetDateTime {
        self.expires.unwrap_or(self.due)
    }

    /// The phone reference its results go to for phone `phone`: the one it was scheduled
    /// for, or, for a group, each phone's id.
    pub fn reply_to(&self, phone: &str) -> String {
        if self.target.starts_with("group:") {
            phone.to_string()
        } else {
            self.target.clone()
        }
    }

    /// As listed on MQTT: the reminder, and once due how its deliveries stand in a few
    /// bounded fields (a group's 1,000 phones are not listed one by one): `pending` phones,
    /// the most `attempts` any of them took, the soonest `next_try`, the last error.
    fn listed(&self) -> serde_json::Value {
        let mut value = serde_json::to_value(self).unwrap_or_default();
        if let Some(fields) = value.as_object_mut() {
            fields.remove("deliveries");
            if let Some(deliveries) = &self.deliveries {
                let attempts = deliveries.iter().map(|d| d.attempts).max().unwrap_or(0);
                let next_try = deliveries.iter().map(|d| d.next_try).min();
                let last_error = deliveries.iter().rev().find_map(|d| d.last_error.clone());
                fields.insert("pending".into(), deliveries.len().into());
                fields.insert("attempts".into(), attempts.into());
                fields.insert(
                    "next_try".into(),
                    next_try
                        .map(rfc3339)
                        .map_or(serde_json::Value::Null, Into::into),
                );
                fields.insert("last_error".into(), last_error.into());
            }
        }
        value
    }
}

pub fn rfc3339(at: OffsetDateTime) -> String {
    at.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// How long after a failed attempt the next one comes: 5 s, doubling, at most 5 min.
pub fn backoff(attempts: u32) -> time::Duration {
    let doublings = attempts.saturating_sub(1).min(16);
    (RETRY_FIRST * (1u32 << doublings)).min(RETRY_MAX)
}

/// Reminder `id`'s delivery to `phone`, if it is still to be made.
fn delivery_of<'a>(items: &'a mut [Reminder], id: &str, phone: &str) -> Option<&'a mut Delivery> {
    items
        .iter_mut()
        .filter(|r| r.id == id)
        .flat_map(|r| r.deliveries.iter_mut().flatten())
        .find(|d| d.phone == phone)
}

#[derive(Debug)]
pub struct Reminders {
    /// Soonest first.
    items: DataFile<Vec<Reminder>>,
    /// How long a due reminder is tried (`[agent] reminder_expiry`).
    expiry: time::Duration,
    /// Woken when the list changes, so the scheduler looks at the next due time again.
    pub changed: Notify,
}

impl Reminders {
    /// Loads the kept reminders; a missing file is an empty list. `expiry`: how long a due
    /// reminder is tried.
    pub fn load(path: PathBuf, expiry: std::time::Duration) -> Result<Reminders, datafile::Error> {
        let expiry = time::Duration::try_from(expiry).unwrap_or(time::Duration::DAY);
        let items: DataFile<Vec<Reminder>> = DataFile::load(path, Format::PrettyJson)?;
        for reminder in items.lock().iter_mut() {
            reminder.expires.get_or_insert(reminder.due + expiry);
        }
        Ok(Reminders {
            items,
            expiry,
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
    pub fn listed(&self, bytes: usize) -> Vec<serde_json::Value> {
        let mut room = bytes.saturating_sub(2);
        let mut listed = Vec::new();
        for reminder in self.list() {
            let value = reminder.listed();
            let len = crate::agent::directory::json_len(&value) + 1;
            if len > room {
                break;
            }
            room -= len;
            listed.push(value);
        }
        listed
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    /// Keeps a new reminder, written at once (its result says it is kept).
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
            expires: Some(due + self.expiry),
            deliveries: None,
        };
        self.items.update(|items| {
            items.push(reminder.clone());
            // Kept in order, so that the file lists them soonest first too.
            items.sort_by_key(|r| r.due);
        })?;
        self.changed.notify_one();
        Ok(reminder)
    }

    /// Takes a reminder back, written at once.
    pub fn cancel(&self, id: &str) -> Result<Option<Reminder>, datafile::Error> {
        let removed = self.items.update(|items| {
            let index = items.iter().position(|r| r.id == id);
            index.map(|i| items.remove(i))
        })?;
        if removed.is_some() {
            self.changed.notify_one();
        }
        Ok(removed)
    }

    /// The reminders that came due by `now` and whose phones are not known yet.
    pub fn newly_due(&self, now: OffsetDateTime) -> Vec<Reminder> {
        self.lock()
            .iter()
            .filter(|r| r.deliveries.is_none() && r.due <= now)
            .cloned()
            .collect()
    }

    /// Reminder `id` is for `phones` (ids), each to be tried at `now`; for none, it is done
    /// and removed. Written with the next flush.
    pub fn start(&self, id: &str, phones: Vec<String>, now: OffsetDateTime) {
        self.items.change_soon(|items| {
            if let Some(reminder) = items.iter_mut().find(|r| r.id == id) {
                let deliveries = phones
                    .into_iter()
                    .map(|phone| Delivery {
                        phone,
                        attempts: 0,
                        next_try: now,
                        last_error: None,
                        under_way: false,
                    })
                    .collect();
                reminder.deliveries = Some(deliveries);
            }
            items.retain(|r| r.deliveries.as_ref().is_none_or(|d| !d.is_empty()));
        });
    }

    /// The deliveries to try now (none twice at once); each is under way until
    /// [`delivered`](Self::delivered), [`failed`](Self::failed) or [`release`](Self::release).
    pub fn claim(&self, now: OffsetDateTime) -> Vec<Due> {
        let mut items = self.lock();
        let mut claimed = Vec::new();
        for reminder in items.iter_mut() {
            let expiry = reminder.expiry();
            let Some(deliveries) = reminder.deliveries.as_mut() else {
                continue;
            };
            let mut bare = None;
            for delivery in deliveries.iter_mut() {
                if delivery.under_way || delivery.next_try > now || now >= expiry {
                    continue;
                }
                delivery.under_way = true;
                let bare = bare.get_or_insert_with(|| Reminder {
                    id: reminder.id.clone(),
                    target: reminder.target.clone(),
                    text: reminder.text.clone(),
                    due: reminder.due,
                    created: reminder.created,
                    transaction: reminder.transaction.clone(),
                    expires: reminder.expires,
                    deliveries: None,
                });
                claimed.push(Due {
                    reminder: bare.clone(),
                    delivery: delivery.clone(),
                });
            }
        }
        claimed
    }

    /// The deliveries not shown by their reminder's expiry and not under way: removed (written
    /// with the next flush) and returned, for their error results.
    pub fn expire(&self, now: OffsetDateTime) -> Vec<Due> {
        let any = self
            .lock()
            .iter()
            .any(|r| r.deliveries.is_some() && now >= r.expiry());
        if !any {
            return Vec::new();
        }
        let mut expired = Vec::new();
        self.items.change_soon(|items| {
            for reminder in items.iter_mut() {
                if now < reminder.expiry() {
                    continue;
                }
                let Some(deliveries) = reminder.deliveries.as_mut() else {
                    // Due and expired before it was ever looked at (the gateway was off):
                    // its phones are known first, then expired.
                    continue;
                };
                let (gone, kept): (Vec<Delivery>, Vec<Delivery>) =
                    deliveries.drain(..).partition(|d| !d.under_way);
                *deliveries = kept;
                let bare = Reminder {
                    deliveries: None,
                    ..reminder.clone()
                };
                expired.extend(gone.into_iter().map(|delivery| Due {
                    reminder: bare.clone(),
                    delivery,
                }));
            }
            items.retain(|r| r.deliveries.as_ref().is_none_or(|d| !d.is_empty()));
        });
        expired
    }

    /// The phone showed it (or refused it for good): its delivery is done, and the reminder
    /// with its last one. Written with the next flush.
    pub fn delivered(&self, id: &str, phone: &str) {
        self.items.change_soon(|items| {
            if let Some(reminder) = items.iter_mut().find(|r| r.id == id) {
                if let Some(deliveries) = reminder.deliveries.as_mut() {
                    deliveries.retain(|d| d.phone != phone);
                }
            }
            items.retain(|r| r.deliveries.as_ref().is_none_or(|d| !d.is_empty()));
        });
        self.changed.notify_one();
    }

    /// The attempt failed: the next one after the backoff. Written with the next flush.
    pub fn failed(&self, id: &str, phone: &str, error: String, now: OffsetDateTime) {
        self.items.change_soon(|items| {
            if let Some(delivery) = delivery_of(items, id, phone) {
                delivery.attempts += 1;
                delivery.next_try = now + backoff(delivery.attempts);
                delivery.last_error = Some(error);
                delivery.under_way = false;
            }
        });
        self.changed.notify_one();
    }

    /// The attempt did not happen (the gateway is stopping): as it was, for the next start.
    pub fn release(&self, id: &str, phone: &str) {
        if let Some(delivery) = delivery_of(&mut self.lock(), id, phone) {
            delivery.under_way = false;
        }
        self.changed.notify_one();
    }

    /// When the scheduler has something to do next: a reminder coming due, a delivery to try
    /// again, or one to give up.
    pub fn next_wake(&self) -> Option<OffsetDateTime> {
        let items = self.lock();
        let mut next: Option<OffsetDateTime> = None;
        for reminder in items.iter() {
            let at = match &reminder.deliveries {
                None => Some(reminder.due),
                Some(deliveries) => deliveries
                    .iter()
                    .filter(|d| !d.under_way)
                    .map(|d| d.next_try.min(reminder.expiry()))
                    .min(),
            };
            next = match (next, at) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
        }
        next
    }

    /// Writes pending changes (attempts, deliveries done), if any.
    pub fn flush(&self) -> Result<(), datafile::Error> {
        self.items.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: std::time::Duration = std::time::Duration::from_secs(86_400);

    #[test]
    fn the_retained_list_is_bounded() {
        let (dir, path) = crate::datafile::scratch("reminders-bounded", "bounded.json");
        let reminders = Reminders::load(path, DAY).unwrap();
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
        let one_more: Vec<_> = reminders.list()[..listed.len() + 1]
            .iter()
            .map(Reminder::listed)
            .collect();
        assert!(serde_json::to_vec(&one_more).unwrap().len() > 10_000);
        assert_eq!(listed[0]["id"], reminders.list()[0].id, "soonest first");
        assert_eq!(reminders.len(), 50);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn retries_back_off_from_5_s_to_5_min() {
        let waits: Vec<i64> = (1..=9).map(|n| backoff(n).whole_seconds()).collect();
        assert_eq!(waits, [5, 10, 20, 40, 80, 160, 300, 300, 300]);
        assert_eq!(backoff(u32::MAX), RETRY_MAX);
    }

    #[test]
    fn a_due_reminder_stays_kept_until_each_phone_showed_it() {
        let (dir, path) = crate::datafile::scratch("rem", "reminders.json");
        let now = OffsetDateTime::now_utc();
        let reminders = Reminders::load(path.clone(), DAY).unwrap();
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
        assert_eq!(soon.expires, Some(soon.due + time::Duration::DAY));
        let reloaded = Reminders::load(path.clone(), DAY).unwrap();
        assert_eq!(reloaded.list(), vec![soon.clone(), later.clone()]);
        assert_eq!(reloaded.next_wake(), Some(soon.due));

        // Due: for the group's two phones, both tried at once, neither twice.
        let at = now + time::Duration::seconds(2);
        assert_eq!(reloaded.newly_due(at), vec![soon.clone()]);
        reloaded.start(&soon.id, vec!["a".into(), "b".into()], at);
        let claimed = reloaded.claim(at);
        assert_eq!(claimed.len(), 2);
        assert!(reloaded.claim(at).is_empty(), "under way already");
        assert_eq!(reloaded.next_wake(), Some(later.due));
        // One shows it, the other is off: kept for it, with its attempt and next try.
        reloaded.delivered(&soon.id, "a");
        reloaded.failed(&soon.id, "b", "phone unreachable".into(), at);
        reloaded.flush().unwrap();
        let kept = Reminders::load(path.clone(), DAY).unwrap().list();
        let deliveries = kept[0].deliveries.clone().unwrap();
        assert_eq!(deliveries.len(), 1);
        assert_eq!(
            (deliveries[0].phone.as_str(), deliveries[0].attempts),
            ("b", 1)
        );
        assert_eq!(deliveries[0].next_try, at + RETRY_FIRST);
        let listed = &reloaded.listed(100_000)[0];
        assert_eq!(listed["pending"], 1);
        assert_eq!(listed["attempts"], 1);
        assert_eq!(listed["last_error"], "phone unreachable");
        assert!(listed.get("deliveries").is_none());
        assert!(reloaded.claim(at + time::Duration::seconds(4)).is_empty());
        let again = reloaded.claim(at + RETRY_FIRST);
        assert_eq!(again.len(), 1);
        reloaded.delivered(&soon.id, "b");
        reloaded.flush().unwrap();
        assert_eq!(
            Reminders::load(path.clone(), DAY).unwrap().list(),
            vec![later.clone()]
        );
        assert_eq!(reloaded.cancel(&later.id).unwrap(), Some(later));
        assert!(Reminders::load(path, DAY).unwrap().list().is_empty());
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn past_its_expiry_a_delivery_is_given_up_but_not_while_under_way() {
        let (dir, path) = crate::datafile::scratch("rem-expiry", "reminders.json");
        let now = OffsetDateTime::now_utc();
        let reminders = Reminders::load(path, std::time::Duration::from_secs(60)).unwrap();
        let r = reminders.add("Desk", "x", now, None).unwrap();
        reminders.start(&r.id, vec!["a".into(), "b".into()], now);
        let claimed = reminders.claim(now);
        assert_eq!(claimed.len(), 2);
        reminders.failed(&r.id, "a", "off".into(), now);
        let past = now + time::Duration::seconds(61);
        assert!(
            reminders.claim(past).is_empty(),
            "nothing tried past expiry"
        );
        let expired = reminders.expire(past);
        assert_eq!(expired.len(), 1);
        assert_eq!(expired[0].delivery.phone, "a");
        assert_eq!(expired[0].delivery.attempts, 1);
        assert_eq!(reminders.len(), 1, "b is still under way");
        reminders.failed(&r.id, "b", "off".into(), past);
        assert_eq!(reminders.expire(past).len(), 1);
        assert!(reminders.is_empty());
        let _ = std::fs::remove_dir_all(dir);
    }
}
