//! The normalised events: one table holds each event's name on MQTT, what it means and what it
//! does to the phone's state, so that a misspelt event cannot compile and the state machine, the
//! vendor tables and the docs read the same row.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::CallState;

/// What an event does to a phone's retained state (`agent::state::apply` carries it out).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// Nothing beyond `last_event` and `last_seen`.
    None,
    /// A new call: the last call's parties are forgotten, then the call state is set.
    NewCall(CallState),
    /// The call state becomes this; `Idle` also forgets the call and the mute.
    Call(CallState),
    /// As [`Effect::Call`] with `to`, but only while the call state is `from`.
    CallIf {
        from: CallState,
        to: CallState,
    },
    Dnd(bool),
    /// Sets the forward the event names (`forward`), `always` when it names none.
    Forward(bool),
    Mute(bool),
    /// Sets `registered` and the line the event names.
    Registration(bool),
    /// The phone booted: no call, no mute.
    Booted,
}

/// Declares [`EventKind`] and its table from one list: variant, MQTT name, state effect, doc.
macro_rules! events {
    ($($variant:ident = $name:literal, $effect:expr, $doc:literal;)+) => {
        /// A normalised event, the same for every vendor. Serialised as its name.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum EventKind {
            $(#[doc = $doc] $variant,)+
        }

        /// Every event, in the order the docs list them.
        pub static EVENTS: &[EventDef] = &[
            $(EventDef { kind: EventKind::$variant, name: $name, effect: $effect, doc: $doc },)+
        ];

        impl EventKind {
            /// The name published on MQTT (`incoming_call`).
            pub const fn name(self) -> &'static str {
                match self {
                    $(EventKind::$variant => $name,)+
                }
            }
        }
    };
}

/// One row of the event table.
#[derive(Debug)]
pub struct EventDef {
    pub kind: EventKind,
    pub name: &'static str,
    pub effect: Effect,
    pub doc: &'static str,
}

use CallState::{Dialing, Held, Idle, Ringing, Talking};

events! {
    SetupCompleted = "setup_completed", Effect::Booted, "The phone finished booting.";
    Registered = "registered", Effect::Registration(true), "An account registered with the PBX.";
    Unregistered = "unregistered", Effect::Registration(false), "An account unregistered.";
    RegisterFailed = "register_failed", Effect::Registration(false), "An account failed to register.";
    OffHook = "off_hook", Effect::CallIf { from: Idle, to: Dialing }, "The handset was lifted (or the speaker turned on).";
    OnHook = "on_hook", Effect::CallIf { from: Dialing, to: Idle }, "The handset was put down.";
    IncomingCall = "incoming_call", Effect::NewCall(Ringing), "A call is ringing.";
    OutgoingCall = "outgoing_call", Effect::NewCall(Dialing), "The phone is calling out.";
    CallEstablished = "call_established", Effect::Call(Talking), "A call was answered, by either side.";
    CallTerminated = "call_terminated", Effect::Call(Idle), "A call ended.";
    DndOn = "dnd_on", Effect::Dnd(true), "Do-not-disturb was turned on.";
    DndOff = "dnd_off", Effect::Dnd(false), "Do-not-disturb was turned off.";
    ForwardOn = "forward_on", Effect::Forward(true), "A call forward was turned on (`forward` says which).";
    ForwardOff = "forward_off", Effect::Forward(false), "A call forward was turned off (`forward` says which).";
    Transfer = "transfer", Effect::None, "A call was transferred.";
    BlindTransfer = "blind_transfer", Effect::None, "A call was blind-transferred.";
    AttendedTransfer = "attended_transfer", Effect::None, "A call was transferred after a consultation.";
    Hold = "hold", Effect::Call(Held), "This phone put the call on hold.";
    Unhold = "unhold", Effect::Call(Talking), "This phone resumed the held call.";
    Held = "held", Effect::None, "The other party put the call on hold.";
    Unheld = "unheld", Effect::None, "The other party resumed the call.";
    Mute = "mute", Effect::Mute(true), "The microphone was muted.";
    Unmute = "unmute", Effect::Mute(false), "The microphone was unmuted.";
    MissedCall = "missed_call", Effect::CallIf { from: Ringing, to: Idle }, "A call rang and was not answered.";
    IpChanged = "ip_changed", Effect::None, "The phone's address changed.";
    Busy = "busy", Effect::None, "The phone became busy.";
    Idle = "idle", Effect::Call(Idle), "The phone became idle.";
    CallForwarded = "call_forwarded", Effect::Call(Idle), "A ringing call was forwarded away.";
    CallRejected = "call_rejected", Effect::Call(Idle), "A ringing call was rejected.";
    CallWaitingAnswered = "call_waiting_answered", Effect::Call(Talking), "A waiting call was answered.";
    TransferFinished = "transfer_finished", Effect::Call(Idle), "A transfer finished.";
    TransferFailed = "transfer_failed", Effect::None, "A transfer failed.";
    CallWaitingOn = "call_waiting_on", Effect::None, "Call waiting was turned on.";
    CallWaitingOff = "call_waiting_off", Effect::None, "Call waiting was turned off.";
    HeadsetKey = "headset_key", Effect::None, "The headset key was pressed.";
    HandsfreeKey = "handsfree_key", Effect::None, "The hands-free key was pressed.";
    CallCancelled = "call_cancelled", Effect::Call(Idle), "The phone gave up its call during ringback.";
    RemoteBusy = "remote_busy", Effect::Call(Idle), "The called party rejected the call.";
    RemoteCancelled = "remote_cancelled", Effect::Call(Idle), "The caller hung up while the phone rang.";
    Provisioned = "provisioned", Effect::None, "Auto-provisioning after boot is done.";
    Peripheral = "peripheral", Effect::None, "An accessory was plugged in or out.";
    VpnIpChanged = "vpn_ip_changed", Effect::None, "The phone's VPN address changed.";
    SyslogOn = "syslog_on", Effect::None, "Syslog was turned on.";
    SyslogOff = "syslog_off", Effect::None, "Syslog was turned off.";
    LogOn = "log_on", Effect::None, "An identity logged on to the phone.";
    LogOff = "log_off", Effect::None, "An identity logged off the phone.";
    AttendedTransferReceived = "attended_transfer_received", Effect::None, "The phone received an attended transfer.";
    LongPress = "long_press", Effect::None, "A key was held down.";
    BlacklistedCall = "blacklisted_call", Effect::None, "A blocked caller called.";
    SubscriptionNotify = "subscription_notify", Effect::None, "A SUBSCRIBE/NOTIFY arrived (a monitored line).";
    Key = "key", Effect::None, "A programmable key set up by `configure` was pressed (`key`, `label`).";
}

impl EventKind {
    /// The event published under `name`, if there is one.
    pub fn from_name(name: &str) -> Option<EventKind> {
        EVENTS
            .iter()
            .find(|def| def.name == name)
            .map(|def| def.kind)
    }

    /// This event's row of the table.
    pub fn def(self) -> &'static EventDef {
        // The table is in declaration order, so a variant's index is its row.
        &EVENTS[self as usize]
    }

    pub fn effect(self) -> Effect {
        self.def().effect
    }

    pub fn doc(self) -> &'static str {
        self.def().doc
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl Serialize for EventKind {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for EventKind {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        EventKind::from_name(&name)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown event `{name}`")))
    }
}

/// Which forward a `forward_on`/`forward_off` event concerns. Serialised as its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ForwardKind {
    Always,
    Busy,
    NoAnswer,
}

impl ForwardKind {
    pub const fn name(self) -> &'static str {
        match self {
            ForwardKind::Always => "always",
            ForwardKind::Busy => "busy",
            ForwardKind::NoAnswer => "no_answer",
        }
    }
}

impl fmt::Display for ForwardKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_row_is_its_variants_and_names_are_unique() {
        for (index, def) in EVENTS.iter().enumerate() {
            assert_eq!(def.kind as usize, index, "{}", def.name);
            assert_eq!(def.kind.name(), def.name);
            assert_eq!(EventKind::from_name(def.name), Some(def.kind));
            assert_eq!(
                serde_json::to_value(def.kind).unwrap(),
                serde_json::json!(def.name)
            );
        }
        let mut names: Vec<&str> = EVENTS.iter().map(|def| def.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), EVENTS.len());
        assert_eq!(EventKind::from_name("incoming_cal"), None);
    }
}
