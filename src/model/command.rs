//! The normalised commands: one table holds each command's name on MQTT, what it takes, who may
//! send it, who carries it out and its description, so that parsing, roles, the docs and the
//! Manager's buttons read the same row. `adopt` is in it, though no vendor does it. With them,
//! the errors a command can end in, for parsing and vendor code alike.

use serde::Serialize;

/// What a command takes as its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ArgKind {
    None,
    Number,
    OnOff,
    Text,
    Key,
    Url,
    /// A JSON object of keys and settings (`configure`).
    Changes,
    /// A JSON object of the phone's `[[phone]]` entry (`adopt`).
    Adoption,
}

/// The least a caller must be to send a command (the web's roles; MQTT has its own ACL).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Access {
    /// Uses a phone as it is: calls, keys, messages, DND, reboot.
    Operator,
    /// Changes what a phone is given: its files, its entry.
    Admin,
}

/// Who carries a command out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handler {
    /// The vendor's Action URI, with a request the vendor's code builds.
    Vendor,
    /// The agent itself, changing what it serves a phone (then re-provisioning it).
    Agent,
    /// The agent's registry, for a phone that may not be configured yet; not a phone command.
    Registry,
}

/// Declares [`CommandKind`] and its table from one list.
macro_rules! commands {
    ($($variant:ident = $name:literal {
        arg: $arg:ident, access: $access:ident, handler: $handler:ident,
        confirm: $confirm:literal, example: $example:literal, doc: $doc:literal $(,)?
    })+) => {
        /// A normalised command. Which ones a phone can do is declared by its vendor.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
        #[serde(rename_all = "snake_case")]
        pub enum CommandKind {
            $(#[doc = $doc] $variant,)+
        }

        /// Every command, in the order the docs list them.
        pub static COMMANDS: &[CommandDef] = &[
            $(CommandDef {
                kind: CommandKind::$variant,
                name: $name,
                arg: ArgKind::$arg,
                access: Access::$access,
                handler: Handler::$handler,
                confirm: $confirm,
                example: $example,
                description: $doc,
            },)+
        ];

        impl CommandKind {
            /// The name in `cmd/<name>` (`volume_up`).
            pub const fn name(self) -> &'static str {
                match self {
                    $(CommandKind::$variant => $name,)+
                }
            }
        }
    };
}

/// One row of the command table.
#[derive(Debug)]
pub struct CommandDef {
    pub kind: CommandKind,
    pub name: &'static str,
    pub arg: ArgKind,
    pub access: Access,
    pub handler: Handler,
    /// Disturbs people at the phone: the Manager asks for a confirmation.
    pub confirm: bool,
    /// The value the docs show it with.
    pub example: &'static str,
    pub description: &'static str,
}

commands! {
    Dial = "dial" { arg: Number, access: Operator, handler: Vendor, confirm: false,
        example: "+49 30 1234", doc: "Dial a number (optionally from a given line)" }
    Answer = "answer" { arg: None, access: Operator, handler: Vendor, confirm: false,
        example: "", doc: "Answer the ringing call" }
    Hangup = "hangup" { arg: None, access: Operator, handler: Vendor, confirm: false,
        example: "", doc: "End the current call" }
    Reject = "reject" { arg: None, access: Operator, handler: Vendor, confirm: false,
        example: "", doc: "Reject the ringing call" }
    Hold = "hold" { arg: None, access: Operator, handler: Vendor, confirm: false,
        example: "", doc: "Put the current call on hold" }
    Resume = "resume" { arg: None, access: Operator, handler: Vendor, confirm: false,
        example: "", doc: "Resume the held call" }
    Transfer = "transfer" { arg: Number, access: Operator, handler: Vendor, confirm: false,
        example: "1002", doc: "Blind-transfer the current call to a number" }
    Dnd = "dnd" { arg: OnOff, access: Operator, handler: Vendor, confirm: false,
        example: "on", doc: "Turn do-not-disturb on or off" }
    VolumeUp = "volume_up" { arg: None, access: Operator, handler: Vendor, confirm: false,
        example: "", doc: "Raise the volume one step" }
    VolumeDown = "volume_down" { arg: None, access: Operator, handler: Vendor, confirm: false,
        example: "", doc: "Lower the volume one step" }
    Mute = "mute" { arg: None, access: Operator, handler: Vendor, confirm: false,
        example: "", doc: "Toggle the microphone mute during a call" }
    Key = "key" { arg: Key, access: Operator, handler: Vendor, confirm: false,
        example: "F1 OK", doc: "Press one or more keys (vendor key names)" }
    Message = "message" { arg: Text, access: Operator, handler: Vendor, confirm: false,
        example: "Lunch is served", doc: "Show a text message on the screen" }
    Reboot = "reboot" { arg: None, access: Operator, handler: Vendor, confirm: true,
        example: "", doc: "Reboot the phone" }
    Refresh = "refresh" { arg: None, access: Operator, handler: Vendor, confirm: false,
        example: "", doc: "Read the phone's state (registration, DND, firmware)" }
    Provision = "provision" { arg: None, access: Admin, handler: Vendor, confirm: true,
        example: "", doc: "Make the phone fetch its configuration again" }
    Logo = "logo" { arg: Url, access: Admin, handler: Agent, confirm: false,
        example: "http://192.168.1.10/logo.png",
        doc: "Set the screen logo or background (through provisioning)" }
    Configure = "configure" { arg: Changes, access: Admin, handler: Agent, confirm: false,
        example: "",
        doc: "Add programmable keys or vendor settings to its provisioning, and apply them" }
    Verify = "verify" { arg: None, access: Operator, handler: Agent, confirm: false,
        example: "", doc: "Check that the phone's configuration points at this agent" }
    Adopt = "adopt" { arg: Adoption, access: Admin, handler: Registry, confirm: false,
        example: "",
        doc: "Give a discovered phone its `[[phone]]` entry (address, credentials, name)" }
}

impl CommandKind {
    /// Every command a phone can be sent (all but `adopt`), in table order.
    pub fn phone_commands() -> impl Iterator<Item = CommandKind> {
        COMMANDS
            .iter()
            .filter(|def| def.handler != Handler::Registry)
            .map(|def| def.kind)
    }

    /// The command named `name`, `adopt` included.
    pub fn from_name(name: &str) -> Option<CommandKind> {
        COMMANDS
            .iter()
            .find(|def| def.name == name)
            .map(|def| def.kind)
    }

    /// This command's row of the table.
    pub fn def(self) -> &'static CommandDef {
        // The table is in declaration order, so a variant's index is its row.
        &COMMANDS[self as usize]
    }

    pub fn arg(self) -> ArgKind {
        self.def().arg
    }

    pub fn description(self) -> &'static str {
        self.def().description
    }

    pub fn access(self) -> Access {
        self.def().access
    }

    /// Commands the agent carries out itself (changing what it serves, then re-provisioning)
    /// rather than through a vendor request of their own.
    pub fn handled_by_agent(self) -> bool {
        self.def().handler == Handler::Agent
    }

    /// Commands that disturb people at the phone ask for a confirmation in the Manager.
    pub fn needs_confirmation(self) -> bool {
        self.def().confirm
    }
}

/// Why a command did not succeed. Each variant's text is what the caller reads in `error`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CommandError {
    #[error("unknown command `{0}`; known commands: {known}", known = known_commands())]
    UnknownCommand(String),
    #[error("malformed payload: {0}")]
    BadPayload(String),
    #[error("invalid argument: {0}")]
    BadArgument(String),
    #[error("{vendor} phones cannot do `{command}`")]
    Unsupported {
        vendor: &'static str,
        command: &'static str,
    },
    #[error("unknown phone `{0}`")]
    UnknownPhone(String),
    #[error("phone {0} is not configured: add a [[phone]] entry with its address and credentials")]
    NotConfigured(String),
    #[error("the phone did not answer within {0} s")]
    Timeout(f64),
    #[error("phone unreachable: {0}")]
    Unreachable(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("the phone refused the command: {0}")]
    Rejected(String),
    #[error("too many commands queued for this phone; try again later")]
    QueueFull,
    #[error("the gateway is shutting down")]
    ShuttingDown,
    #[error("the gateway stopped while the phone had the command; it may have been carried out")]
    StoppedInFlight,
}

fn known_commands() -> String {
    CommandKind::phone_commands()
        .map(CommandKind::name)
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_row_is_its_variant_and_names_round_trip() {
        for (index, def) in COMMANDS.iter().enumerate() {
            assert_eq!(def.kind as usize, index, "{}", def.name);
            assert_eq!(def.kind.name(), def.name);
            assert_eq!(CommandKind::from_name(def.name), Some(def.kind));
            assert_eq!(
                serde_json::to_value(def.kind).unwrap(),
                serde_json::json!(def.name)
            );
        }
        assert_eq!(CommandKind::from_name("explode"), None);
        assert_eq!(CommandKind::phone_commands().count(), COMMANDS.len() - 1);
        assert!(CommandKind::phone_commands().all(|kind| kind != CommandKind::Adopt));
    }
}
