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
    Command {
        phone: &'a str,
        command: &'a str,
    },
    /// A command for every phone of a group (`all`: every configured phone).
    GroupCommand {
        group: &'a str,
        command: &'a str,
    },
    GroupResult(&'a str),
    BridgeState(&'a str),
    BridgeEvent(&'a str),
    /// What an agent's MQTT outbox holds and has dropped, retained.
    BridgeOutbox(&'a str),
    /// The PBX subscriber directory, retained.
    Directory,
    /// A new directory to import (CSV or JSON).
    DirectorySet,
    DirectoryResult,
    /// An agent's scheduled messages, retained.
    Reminders(&'a str),
    RemindersCancel(&'a str),
    RemindersResult(&'a str),
    /// What a phone was provisioned with and whether its configuration matches, retained.
    Provisioning(&'a str),
    /// The keys and settings pushed for the site and groups, retained.
    BridgeProvisioning(&'a str),
    /// A programmable key press: `<phone>/key/<n>`.
    Key {
        phone: &'a str,
        key: &'a str,
    },
}

/// Reserved first levels for gateway-wide topics; never a phone.
const BRIDGE: &str = "bridge";
const GROUP: &str = "group";
const DIRECTORY: &str = "directory";

/// Words that cannot name a phone, since they start gateway-wide topics.
pub const RESERVED: [&str; 3] = [BRIDGE, GROUP, DIRECTORY];

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

    /// What an agent's MQTT outbox holds and has dropped, retained.
    pub fn bridge_outbox(&self, agent: &str) -> String {
        format!("{}/{BRIDGE}/{agent}/outbox", self.base)
    }

    /// Gateway-wide events of an agent (`phone_discovered`), not retained.
    pub fn bridge_event(&self, agent: &str) -> String {
        format!("{}/{BRIDGE}/{agent}/event", self.base)
    }

    /// What an agent subscribes to for its phones' commands.
    pub fn command_filter(&self) -> String {
        format!("{}/+/cmd/+", self.base)
    }

    pub fn group_command(&self, group: &str, command: &str) -> String {
        format!("{}/{GROUP}/{group}/cmd/{command}", self.base)
    }

    pub fn group_command_filter(&self) -> String {
        format!("{}/{GROUP}/+/cmd/+", self.base)
    }

    pub fn group_result(&self, group: &str) -> String {
        format!("{}/{GROUP}/{group}/result", self.base)
    }

    pub fn directory(&self) -> String {
        format!("{}/{DIRECTORY}", self.base)
    }

    pub fn directory_set(&self) -> String {
        format!("{}/{DIRECTORY}/set", self.base)
    }

    pub fn directory_result(&self) -> String {
        format!("{}/{DIRECTORY}/result", self.base)
    }

    pub fn reminders(&self, agent: &str) -> String {
        format!("{}/{BRIDGE}/{agent}/reminders", self.base)
    }

    pub fn reminders_cancel(&self, agent: &str) -> String {
        format!("{}/{BRIDGE}/{agent}/reminders/cancel", self.base)
    }

    pub fn reminders_result(&self, agent: &str) -> String {
        format!("{}/{BRIDGE}/{agent}/reminders/result", self.base)
    }

    /// `<base>/<id>/provisioning`, retained.
    pub fn provisioning(&self, id: &PhoneId) -> String {
        format!("{}/{id}/provisioning", self.base)
    }

    /// `<base>/<id>/key/<n>`: one topic per programmable key, for automations.
    pub fn key(&self, id: &PhoneId, key: u32) -> String {
        format!("{}/{id}/key/{key}", self.base)
    }

    /// `<base>/bridge/<agent>/provisioning`, retained.
    pub fn bridge_provisioning(&self, agent: &str) -> String {
        format!("{}/{BRIDGE}/{agent}/provisioning", self.base)
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
            [BRIDGE, agent, "event"] => Some(Topic::BridgeEvent(agent)),
            [BRIDGE, agent, "outbox"] => Some(Topic::BridgeOutbox(agent)),
            [BRIDGE, agent, "reminders"] => Some(Topic::Reminders(agent)),
            [BRIDGE, agent, "reminders", "cancel"] => Some(Topic::RemindersCancel(agent)),
            [BRIDGE, agent, "reminders", "result"] => Some(Topic::RemindersResult(agent)),
            [BRIDGE, agent, "provisioning"] => Some(Topic::BridgeProvisioning(agent)),
            [BRIDGE, ..] => None,
            [GROUP, group, "cmd", command] => Some(Topic::GroupCommand { group, command }),
            [GROUP, group, "result"] => Some(Topic::GroupResult(group)),
            [GROUP, ..] => None,
            [DIRECTORY] => Some(Topic::Directory),
            [DIRECTORY, "set"] => Some(Topic::DirectorySet),
            [DIRECTORY, "result"] => Some(Topic::DirectoryResult),
            [DIRECTORY, ..] => None,
            [phone] => Some(Topic::State(phone)),
            [phone, "info"] => Some(Topic::Info(phone)),
            [phone, "availability"] => Some(Topic::Availability(phone)),
            [phone, "event"] => Some(Topic::Event(phone)),
            [phone, "result"] => Some(Topic::Result(phone)),
            [phone, "cmd", command] => Some(Topic::Command { phone, command }),
            [phone, "provisioning"] => Some(Topic::Provisioning(phone)),
            [phone, "key", key] => Some(Topic::Key { phone, key }),
            _ => None,
        }
    }

    /// Whether the gateway publishes this topic retained; the websocket adapter keeps these
    /// for its snapshot.
    pub fn is_retained(&self, topic: &str) -> bool {
        matches!(
            self.parse(topic),
            Some(
                Topic::State(_)
                    | Topic::Info(_)
                    | Topic::Availability(_)
                    | Topic::BridgeState(_)
                    | Topic::BridgeOutbox(_)
                    | Topic::Directory
                    | Topic::Reminders(_)
                    | Topic::Provisioning(_)
                    | Topic::BridgeProvisioning(_)
            )
        )
    }
}

/// Home Assistant's MQTT discovery topics, under Home Assistant's own prefix (`[homeassistant]
/// prefix`, default `homeassistant`), not under the base topic. Device-based discovery: one
/// retained `<prefix>/device/<object id>/config` per phone, plus one for the agent itself.
#[derive(Debug, Clone)]
pub struct HaTopics {
    prefix: String,
}

/// Object ids (the `<object id>` level of a discovery topic, also the device identifiers) start
/// with this, so that the agent recognises its own retained discovery messages.
const HA_OBJECT_PREFIX: &str = "phone2mqtt_";
const HA_BRIDGE_PREFIX: &str = "phone2mqtt_bridge_";

impl HaTopics {
    pub fn new(prefix: &str) -> HaTopics {
        HaTopics {
            prefix: prefix.trim_end_matches('/').to_string(),
        }
    }

    /// `phone2mqtt_0015654aa937`: a phone's object id and Home Assistant device identifier.
    pub fn phone_object_id(id: &PhoneId) -> String {
        format!("{HA_OBJECT_PREFIX}{id}")
    }

    /// `phone2mqtt_bridge_gw1`: the agent's; Home Assistant allows only `[a-zA-Z0-9_-]` there.
    pub fn bridge_object_id(agent: &str) -> String {
        let safe: String = agent
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        format!("{HA_BRIDGE_PREFIX}{safe}")
    }

    /// `<prefix>/device/phone2mqtt_<id>/config`.
    pub fn phone_config(&self, id: &PhoneId) -> String {
        self.device_config(&Self::phone_object_id(id))
    }

    /// `<prefix>/device/phone2mqtt_bridge_<agent>/config`.
    pub fn bridge_config(&self, agent: &str) -> String {
        self.device_config(&Self::bridge_object_id(agent))
    }

    fn device_config(&self, object_id: &str) -> String {
        format!("{}/device/{object_id}/config", self.prefix)
    }

    /// Every device-based discovery message (and anything else under `device/`, which `parse`
    /// sets aside), to find this agent's stale ones. A `#` filter, so it is read at QoS 0 and
    /// gets every retained message (`mqtt::subscription_qos`).
    pub fn device_filter(&self) -> String {
        format!("{}/device/#", self.prefix)
    }

    /// Home Assistant's birth (`online`) and last will (`offline`).
    pub fn status(&self) -> String {
        format!("{}/status", self.prefix)
    }

    pub fn parse<'a>(&self, topic: &'a str) -> Option<HaTopic<'a>> {
        let rest = topic
            .strip_prefix(self.prefix.as_str())?
            .strip_prefix('/')?;
        match rest.split('/').collect::<Vec<_>>().as_slice() {
            ["status"] => Some(HaTopic::Status),
            ["device", object_id, "config"] => {
                if let Some(agent) = object_id.strip_prefix(HA_BRIDGE_PREFIX) {
                    return Some(HaTopic::BridgeConfig(agent));
                }
                // Only the exact form this agent writes: 12 lowercase hex digits.
                let phone = object_id
                    .strip_prefix(HA_OBJECT_PREFIX)
                    .and_then(|rest| PhoneId::parse(rest).filter(|id| id.as_str() == rest));
                Some(phone.map_or(HaTopic::OtherConfig, HaTopic::PhoneConfig))
            }
            _ => None,
        }
    }
}

/// A Home Assistant topic, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HaTopic<'a> {
    Status,
    /// A phone2mqtt phone's discovery.
    PhoneConfig(PhoneId),
    /// A phone2mqtt agent's own device (its sanitised name).
    BridgeConfig(&'a str),
    /// Some other integration's device.
    OtherConfig,
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
        assert_eq!(
            topics.parse(&topics.group_command("sales", "dnd")),
            Some(Topic::GroupCommand {
                group: "sales",
                command: "dnd"
            })
        );
        assert_eq!(
            topics.parse(&topics.directory_set()),
            Some(Topic::DirectorySet)
        );
        assert_eq!(
            topics.parse(&topics.reminders_cancel("gw1")),
            Some(Topic::RemindersCancel("gw1"))
        );
        assert!(topics.is_retained(&topics.directory()));
        assert!(topics.is_retained(&topics.reminders("gw1")));
        assert_eq!(topics.parse("phone2mqtt/group/sales"), None);
    }

    #[test]
    fn home_assistant_topics_round_trip() {
        let ha = HaTopics::new("homeassistant");
        let id = PhoneId::parse("0015654aa937").unwrap();
        assert_eq!(
            ha.phone_config(&id),
            "homeassistant/device/phone2mqtt_0015654aa937/config"
        );
        assert_eq!(
            ha.parse(&ha.phone_config(&id)),
            Some(HaTopic::PhoneConfig(id))
        );
        assert_eq!(
            ha.bridge_config("gw 1.local"),
            "homeassistant/device/phone2mqtt_bridge_gw_1_local/config"
        );
        assert_eq!(
            ha.parse(&ha.bridge_config("gw1")),
            Some(HaTopic::BridgeConfig("gw1"))
        );
        assert_eq!(ha.parse("homeassistant/status"), Some(HaTopic::Status));
        assert_eq!(
            ha.parse("homeassistant/device/0x00158d0001/config"),
            Some(HaTopic::OtherConfig)
        );
        assert_eq!(
            ha.parse("homeassistant/device/phone2mqtt_0015654AA937/config"),
            Some(HaTopic::OtherConfig)
        );
        assert_eq!(ha.parse("homeassistant/sensor/x/config"), None);
        assert_eq!(ha.parse("phone2mqtt/status"), None);
    }
}
