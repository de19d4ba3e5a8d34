//! The intermediate form between every vendor's wire format and MQTT.
//!
//! Vendor code turns Action URL callbacks into [`Event`]s and [`Command`]s into HTTP requests;
//! MQTT code turns topics and payloads into [`Command`]s and publishes [`Event`]s, [`PhoneState`]
//! and [`CommandResult`]s. Neither side sees the other's format.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

mod command;
mod event;

pub use command::{Access, ArgKind, CommandDef, CommandError, CommandKind, Handler, COMMANDS};
pub use event::{Effect, EventDef, EventKind, ForwardKind, EVENTS};

/// A phone's identity: its MAC as 12 lowercase hex digits, whatever form the phone sent.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PhoneId(String);

impl PhoneId {
    /// Accepts `00:15:65:4A:A9:37`, `00-15-65-4a-a9-37`, `0015.654a.a937`, `000413922D24`...
    pub fn parse(text: &str) -> Option<PhoneId> {
        let hex: String = text
            .chars()
            .filter(|c| !matches!(c, ':' | '-' | '.' | ' '))
            .collect();
        if hex.len() == 12 && hex.chars().all(|c| c.is_ascii_hexdigit()) {
            Some(PhoneId(hex.to_ascii_lowercase()))
        } else {
            None
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `00:15:65:4a:a9:37`, the form people read.
    pub fn colon_mac(&self) -> String {
        self.0
            .as_bytes()
            .chunks(2)
            .map(|pair| std::str::from_utf8(pair).unwrap_or("??"))
            .collect::<Vec<_>>()
            .join(":")
    }

    /// The first three octets, for vendor recognition.
    pub fn oui(&self) -> &str {
        &self.0[..6]
    }
}

impl fmt::Display for PhoneId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for PhoneId {
    type Error = String;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        PhoneId::parse(&value).ok_or_else(|| format!("`{value}` is not a MAC address"))
    }
}

impl From<PhoneId> for String {
    fn from(id: PhoneId) -> String {
        id.0
    }
}

/// One normalised phone event, as published on `<base>/<id>/event`.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Event {
    /// Normalised name, the same for every vendor (`incoming_call`, `dnd_on`...).
    pub event: EventKind,
    pub phone: PhoneId,
    pub ts: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remote: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remote_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub local: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub call_id: Option<String>,
    /// The SIP account the event concerns (`$active_user`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// A programmable key's label (`key` events).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// `always`, `busy` or `no_answer` on forward events.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub forward: Option<ForwardKind>,
    /// Every variable the phone sent, raw (a `sip:` URI stays whole here).
    pub vars: BTreeMap<String, String>,
}

/// What a phone's state looks like, retained on `<base>/<id>`.
#[derive(Debug, Clone, Serialize, Default, PartialEq)]
pub struct PhoneState {
    pub call_state: CallState,
    pub remote: Option<String>,
    pub remote_name: Option<String>,
    pub call_id: Option<String>,
    pub dnd: bool,
    pub forward: Forward,
    pub muted: bool,
    /// `None` until the phone has told us.
    pub registered: Option<bool>,
    pub lines: Vec<Line>,
    pub last_event: Option<EventKind>,
    pub last_seen: Option<String>,
}

#[derive(Debug, Clone, Copy, Serialize, Default, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum CallState {
    #[default]
    Idle,
    Ringing,
    Dialing,
    Talking,
    Held,
}

#[derive(Debug, Clone, Serialize, Default, PartialEq, Eq)]
pub struct Forward {
    pub always: bool,
    pub busy: bool,
    pub no_answer: bool,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Line {
    pub line: u32,
    pub user: String,
    pub registered: bool,
}

/// Retained on `<base>/<id>/info`. Never carries a password.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct PhoneInfo {
    pub id: PhoneId,
    pub mac: String,
    pub name: Option<String>,
    pub vendor: String,
    pub model: Option<String>,
    pub firmware: Option<String>,
    pub ip: Option<String>,
    pub agent: String,
    /// False for a phone that called in without a `[[phone]]` entry.
    pub configured: bool,
    /// The groups it belongs to (`[[phone]] groups`).
    pub groups: Vec<String>,
    /// The PBX subscriber whose extension this phone registers, from the directory.
    pub subscriber: Option<Subscriber>,
}

/// One entry of the PBX subscriber directory.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct Subscriber {
    pub extension: String,
    pub name: String,
    #[serde(default)]
    pub department: String,
}

/// A validated command, ready for a vendor to turn into a request.
#[derive(Debug, Clone, PartialEq)]
pub struct Command {
    pub kind: CommandKind,
    pub arg: CommandArg,
    /// Account to use for `dial` (1-based), when the caller chose one.
    pub line: Option<u32>,
    /// For `message`: show it at this time instead of now (a reminder).
    pub at: Option<time::OffsetDateTime>,
}

impl Command {
    /// A command to run now, on the phone's default line.
    pub fn new(kind: CommandKind, arg: CommandArg) -> Command {
        Command {
            kind,
            arg,
            line: None,
            at: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum CommandArg {
    None,
    /// A dial string normalised per docs/vendors.md §0.1: digits with `+`, `*`, `#`, or `user@host`.
    Number(String),
    OnOff(bool),
    Text(String),
    Keys(Vec<String>),
    Url(String),
    Changes(Changes),
}

/// What `configure` changes in a profile layer: a value sets, `None` removes.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Changes {
    pub keys: std::collections::BTreeMap<String, Option<String>>,
    pub settings: std::collections::BTreeMap<String, Option<String>>,
    /// For a site or group: which vendor's phones the settings are for.
    pub vendor: Option<String>,
    /// Re-provision the phones at once (default), or only store the change.
    pub apply: bool,
}

/// `ok` or `error`, on `<base>/<id>/result`.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Ok,
    Error,
}

impl Status {
    /// As serialized: `ok`, `error`.
    pub fn name(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Error => "error",
        }
    }
}

/// Published for every command received, including rejected ones.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct CommandResult {
    pub phone: String,
    pub command: String,
    pub transaction: Option<String>,
    pub status: Status,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Extra data some commands return (`refresh`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
}

impl CommandResult {
    pub fn ok(phone: &str, command: &str, transaction: Option<String>) -> Self {
        CommandResult {
            phone: phone.to_string(),
            command: command.to_string(),
            transaction,
            status: Status::Ok,
            error: None,
            data: None,
        }
    }

    pub fn error(
        phone: &str,
        command: &str,
        transaction: Option<String>,
        error: impl fmt::Display,
    ) -> Self {
        CommandResult {
            phone: phone.to_string(),
            command: command.to_string(),
            transaction,
            status: Status::Error,
            error: Some(error.to_string()),
            data: None,
        }
    }
}

/// The current time, RFC 3339 in UTC, for `ts` and `last_seen`.
pub fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phone_id_accepts_every_mac_form() {
        for form in [
            "00:15:65:4A:A9:37",
            "00-15-65-4a-a9-37",
            "0015654AA937",
            "0015.654a.a937",
        ] {
            assert_eq!(PhoneId::parse(form).unwrap().as_str(), "0015654aa937");
        }
        assert!(PhoneId::parse("0015654aa93").is_none());
        assert!(PhoneId::parse("0015654aa93g").is_none());
        assert!(PhoneId::parse("$mac").is_none());
        assert_eq!(
            PhoneId::parse("0015654aa937").unwrap().colon_mac(),
            "00:15:65:4a:a9:37"
        );
    }
}
