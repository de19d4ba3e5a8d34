//! Every MQTT topic is built and parsed here and nowhere else.

use crate::model::PhoneId;

/// The topic tree under one base topic (`phone2mqtt` by default).
#[derive(Debug, Clone)]
pub struct Topics {
    base: String,
}

/// A topic under the base, parsed. Phone references are kept as sent: a command may name a
/// phone by id, by MAC in any form, or by its configured name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Topic<'a> {
    State(&'a str),
    Info(&'a str),
    Availability(&'a str),
    Event(&'a str),
    Result(&'a str),
    Command { phone: &'a str, command: &'a str },
    BridgeState(&'a str),
}

/// The reserved first level for gateway-wide topics; never a phone.
const BRIDGE: &str = "bridge";

impl Topics {
    pub fn new(base: &str) -> Topics {
        Topics {
            base: base.trim_end_matches('/').to_string(),
        }
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    pub fn state(&self, id: &PhoneId) -> String {
        format!("{}/{id}", self.base)
    }

    pub fn info(&self, id: &PhoneId) -> String {
        format!("{}/{id}/info", self.base)
    }

    pub fn availability(&self, id: &PhoneId) -> String {
        format!("{}/{id}/availability", self.base)
    }

    pub fn event(&self, id: &PhoneId) -> String {
        format!("{}/{id}/event", self.base)
    }

    /// Results go back under the phone reference the command used, so a caller that addressed
    /// `reception/cmd/dial` finds its answer on `reception/result`.
    pub fn result(&self, phone: &str) -> String {
        format!("{}/{phone}/result", self.base)
    }

    pub fn command(&self, phone: &str, command: &str) -> String {
        format!("{}/{phone}/cmd/{command}", self.base)
    }

    pub fn bridge_state(&self, agent: &str) -> String {
        format!("{}/{BRIDGE}/{agent}/state", self.base)
    }

    /// What an agent subscribes to for its phones' commands.
    pub fn command_filter(&self) -> String {
        format!("{}/+/cmd/+", self.base)
    }

    /// Everything under the base, for the web adapter and watchers.
    pub fn all_filter(&self) -> String {
        format!("{}/#", self.base)
    }

    pub fn parse<'a>(&self, topic: &'a str) -> Option<Topic<'a>> {
        let rest = topic.strip_prefix(self.base.as_str())?.strip_prefix('/')?;
        let parts: Vec<&'a str> = rest.split('/').collect();
        if parts.iter().any(|part| part.is_empty()) {
            return None;
        }
        match parts.as_slice() {
            [BRIDGE, agent, "state"] => Some(Topic::BridgeState(agent)),
            [BRIDGE, ..] => None,
            [phone] => Some(Topic::State(phone)),
            [phone, "info"] => Some(Topic::Info(phone)),
            [phone, "availability"] => Some(Topic::Availability(phone)),
            [phone, "event"] => Some(Topic::Event(phone)),
            [phone, "result"] => Some(Topic::Result(phone)),
            [phone, "cmd", command] => Some(Topic::Command { phone, command }),
            _ => None,
        }
    }

    /// Whether the gateway publishes this topic retained; the websocket adapter keeps these
    /// for its snapshot.
    pub fn is_retained(&self, topic: &str) -> bool {
        matches!(
            self.parse(topic),
            Some(Topic::State(_) | Topic::Info(_) | Topic::Availability(_) | Topic::BridgeState(_))
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_round_trip() {
        let topics = Topics::new("phone2mqtt");
        let id = PhoneId::parse("0015654aa937").unwrap();
        assert_eq!(
            topics.parse(&topics.state(&id)),
            Some(Topic::State("0015654aa937"))
        );
        assert_eq!(
            topics.parse(&topics.info(&id)),
            Some(Topic::Info("0015654aa937"))
        );
        assert_eq!(
            topics.parse(&topics.event(&id)),
            Some(Topic::Event("0015654aa937"))
        );
        assert_eq!(
            topics.parse(&topics.command("reception", "dial")),
            Some(Topic::Command {
                phone: "reception",
                command: "dial"
            })
        );
        assert_eq!(
            topics.parse(&topics.bridge_state("gw1")),
            Some(Topic::BridgeState("gw1"))
        );
        assert_eq!(topics.parse("phone2mqtt/bridge/gw1"), None);
        assert_eq!(topics.parse("phone2mqtt//cmd/dial"), None);
        assert_eq!(topics.parse("other/0015654aa937"), None);
        assert_eq!(topics.parse("phone2mqttx/0015654aa937"), None);
        assert!(topics.is_retained("phone2mqtt/0015654aa937/availability"));
        assert!(!topics.is_retained("phone2mqtt/0015654aa937/event"));
        assert!(!topics.is_retained("phone2mqtt/0015654aa937/cmd/dial"));
    }
}
