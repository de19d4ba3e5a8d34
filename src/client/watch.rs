//! `phone2mqtt watch`: live events and command results, one line each, until Ctrl-C.

use serde_json::Value;
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::OffsetDateTime;

use crate::client::fleet::{collect, label, Fleet};
use crate::client::{local_offset, Session, WatchArgs};
use crate::model::PhoneId;
use crate::mqtt::Message;
use crate::topics::{Topic, Topics};

/// Which events and results to show.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub phone: Option<String>,
    pub events: Vec<String>,
}

impl Filter {
    /// Whether a message about `phone` (an id, or the name a command used) passes the filter.
    fn phone_matches(&self, fleet: &Fleet, phone: &str) -> bool {
        let Some(wanted) = &self.phone else {
            return true;
        };
        let wanted_id = PhoneId::parse(wanted);
        let id = PhoneId::parse(phone);
        if let (Some(wanted_id), Some(id)) = (&wanted_id, &id) {
            return wanted_id == id;
        }
        if phone.eq_ignore_ascii_case(wanted) {
            return true;
        }
        id.and_then(|id| fleet.name_of(id.as_str()))
            .is_some_and(|name| name.eq_ignore_ascii_case(wanted))
    }

    fn event_matches(&self, event: &str) -> bool {
        self.events.is_empty() || self.events.iter().any(|e| e.eq_ignore_ascii_case(event))
    }
}

/// What one message becomes: the line to print, or `None` (not an event or result, or filtered
/// out). `json` gives the payload as published, on one line.
pub fn render(
    topics: &Topics,
    fleet: &Fleet,
    filter: &Filter,
    message: &Message,
    json: bool,
) -> Option<String> {
    let (is_event, topic_phone) = match topics.parse(&message.topic)? {
        Topic::Event(phone) => (true, phone),
        Topic::Result(phone) => (false, phone),
        _ => return None,
    };
    let payload: Value = serde_json::from_slice(&message.payload).ok()?;
    let field = |key: &str| payload.get(key).and_then(Value::as_str);
    // The payload's `phone` is the id; a result's topic carries whatever the command used.
    let phone = field("phone").unwrap_or(topic_phone);
    let name = if is_event {
        field("event").unwrap_or("?")
    } else {
        "result"
    };
    if !filter.event_matches(name)
        || !(filter.phone_matches(fleet, phone) || filter.phone_matches(fleet, topic_phone))
    {
        return None;
    }
    if json {
        return Some(payload.to_string());
    }
    let when = field("ts")
        .and_then(|ts| OffsetDateTime::parse(ts, &Rfc3339).ok())
        .unwrap_or_else(OffsetDateTime::now_utc)
        .to_offset(local_offset())
        .format(format_description!("[hour]:[minute]:[second]"))
        .unwrap_or_default();
    let who = match PhoneId::parse(phone) {
        Some(id) => fleet.label_of(id.as_str()),
        None => label(None, phone),
    };
    let mut parts: Vec<String> = vec![when, who, name.to_string()];
    if is_event {
        if let Some(remote) = field("remote") {
            parts.push(remote.to_string());
        }
        if let Some(remote_name) = field("remote_name") {
            parts.push(format!("\"{remote_name}\""));
        }
        if let Some(forward) = field("forward") {
            parts.push(forward.to_string());
        }
        if let Some(key) = field("key") {
            parts.push(format!("key {key}"));
        }
        if field("remote").is_none() {
            if let Some(line) = field("line") {
                parts.push(format!("line {line}"));
            }
        }
    } else {
        let command = field("command").unwrap_or("?");
        match field("status") {
            Some("ok") => parts.push(format!("{command} ok")),
            _ => parts.push(format!(
                "{command} error: {}",
                field("error").unwrap_or("(no reason given)")
            )),
        }
        if let Some(data) = payload.get("data") {
            parts.push(data.to_string());
        }
        if let Some(transaction) = field("transaction") {
            parts.push(format!("[{transaction}]"));
        }
    }
    Some(parts.join("  "))
}

/// `phone2mqtt watch [phone] [--event NAME]... [--json]`: runs until Ctrl-C or SIGTERM.
pub async fn watch(args: WatchArgs) -> anyhow::Result<()> {
    let mut session = Session::connect(&args.broker).await?;
    let (mut fleet, early) = collect(&mut session).await;
    let filter = Filter {
        phone: args.phone.clone(),
        events: args.events.clone(),
    };
    if let Some(wanted) = &filter.phone {
        let known = fleet
            .phones
            .keys()
            .any(|id| filter.phone_matches(&fleet, id));
        if !known {
            eprintln!("No phone `{wanted}` is known yet; waiting for it anyway.");
        }
    }
    eprintln!(
        "Watching {} on {} ({} phones known). Ctrl-C to stop.",
        session.topics.base(),
        session.broker,
        fleet.phones.len()
    );
    let mut out = Output;
    let mut open = true;
    for message in &early {
        open = open && out.line(render(&session.topics, &fleet, &filter, message, args.json));
    }
    let mut connections = session.mqtt.connections();
    connections.mark_unchanged();
    let stop = crate::shutdown::signal();
    tokio::pin!(stop);
    while open {
        tokio::select! {
            () = &mut stop => break,
            changed = connections.changed() => {
                if changed.is_ok() {
                    eprintln!("Reconnected to {}.", session.broker);
                }
            }
            message = session.incoming.recv() => {
                let Some(message) = message else { break };
                if fleet.ingest(&session.topics, &message) {
                    continue;
                }
                open = out.line(render(&session.topics, &fleet, &filter, &message, args.json));
            }
        }
    }
    session.close().await;
    Ok(())
}

/// Stdout, one flushed line at a time (so that pipes see each event at once).
struct Output;

impl Output {
    /// False once stdout is gone (`watch | head -1`): time to stop.
    fn line(&mut self, line: Option<String>) -> bool {
        use std::io::Write;
        let Some(line) = line else {
            return true;
        };
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "{line}")
            .and_then(|()| stdout.flush())
            .is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(topic: &str, payload: &str) -> Message {
        Message {
            topic: topic.into(),
            payload: bytes::Bytes::from(payload.to_string()),
            retained: false,
        }
    }

    #[test]
    fn events_and_results_become_readable_lines() {
        let topics = Topics::new("phone2mqtt");
        let mut fleet = Fleet::default();
        fleet.ingest(
            &topics,
            &message(
                "phone2mqtt/0015654aa937/info",
                r#"{"id": "0015654aa937", "name": "Reception", "configured": true}"#,
            ),
        );
        let event = message(
            "phone2mqtt/0015654aa937/event",
            r#"{"event": "incoming_call", "phone": "0015654aa937", "ts": "2026-11-26T10:00:00Z",
                "remote": "+4930123456", "remote_name": "Anna Schmidt", "line": "1001", "vars": {}}"#,
        );
        let all = Filter::default();
        let line = render(&topics, &fleet, &all, &event, false).unwrap();
        assert!(
            line.ends_with(
                "  Reception (0015654aa937)  incoming_call  +4930123456  \"Anna Schmidt\""
            ),
            "{line}"
        );
        let time = &line[..8];
        assert!(
            time.chars().enumerate().all(|(i, c)| if i == 2 || i == 5 {
                c == ':'
            } else {
                c.is_ascii_digit()
            }),
            "{line}"
        );
        let json = render(&topics, &fleet, &all, &event, true).unwrap();
        assert_eq!(
            serde_json::from_str::<Value>(&json).unwrap()["remote"],
            "+4930123456"
        );
        let result = message(
            "phone2mqtt/Reception/result",
            r#"{"phone": "0015654aa937", "command": "dnd", "transaction": "t-1", "status": "error", "error": "phone unreachable: x"}"#,
        );
        let line = render(&topics, &fleet, &all, &result, false).unwrap();
        assert!(
            line.ends_with(
                "Reception (0015654aa937)  result  dnd error: phone unreachable: x  [t-1]"
            ),
            "{line}"
        );
        for (phone, events, shown) in [
            (Some("reception"), vec![], true),
            (Some("00-15-65-4A-A9-37"), vec![], true),
            (Some("Lobby"), vec![], false),
            (None, vec!["incoming_call".to_string()], true),
            (None, vec!["dnd_on".to_string()], false),
        ] {
            let filter = Filter {
                phone: phone.map(str::to_string),
                events,
            };
            assert_eq!(
                render(&topics, &fleet, &filter, &event, false).is_some(),
                shown,
                "{filter:?}"
            );
        }
        let only_results = Filter {
            phone: None,
            events: vec!["result".into()],
        };
        assert!(render(&topics, &fleet, &only_results, &result, false).is_some());
        assert!(render(&topics, &fleet, &only_results, &event, false).is_none());
        assert!(render(
            &topics,
            &fleet,
            &all,
            &message("phone2mqtt/0015654aa937/cmd/dnd", "on"),
            false
        )
        .is_none());
    }
}
