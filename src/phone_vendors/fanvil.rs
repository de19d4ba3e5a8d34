//! Fanvil X/V/i-series (and OEMs: WELL, Planet, OpenVox, FlyingVoice-like), per docs/vendors.md §2.
//!
//! Action URL: the Yealink variable set plus `$duration` and `$callDirection`, configured as
//! tags under `<cti>` in the `<mac>.cfg` XML (`<sysConf>`). Active URI:
//! `GET /cgi-bin/ConfigManApp.com?key=<VALUE>[;<VALUE>]` with HTTP Basic auth, answered 200.
//!
//! Fanvil's coverage in docs/vendors.md is thin. What this file relies on beyond the documented
//! facts is marked where it is used:
//! - only `<cti><DNDOnUrl>` and `<cti><DNDOffUrl>` are confirmed tag names; the other event tags
//!   are (derived) by naming them the same way;
//! - `key=DNDOff` is (derived) by symmetry with the documented `key=DNDOn`;
//! - `key=Reboot` and `key=AutoP` are (single source);
//! - dial is (unverified): the reference's first candidate, Yealink's
//!   `key=number=<N>&outgoing_uri=<uri>`, on the same path Yealink keeps for its legacy API and
//!   with the same key vocabulary (`F_HOLD`, `POUND`, `DNDOn`...), so it is the likeliest form;
//! - the "Active URI Limit IP" has no known provisioning key; blank reportedly means anyone
//!   (secondary source, unverified).

use crate::model::{
    Command, CommandArg, CommandError, CommandKind, EventKind, ForwardKind, PhoneId,
};
use crate::phone_vendors::{
    encode_query_value, event, forward, parse_plain_user_agent, xml_escape, AuthHints, Carries,
    EventSpec, FileFormat, HttpAuth, Identity, PhoneReply, PhoneRequest, Programming, ProvisionCtx,
    ReplyOutcome, Setting, Target, VarNames, VendorSpec,
};

pub static SPEC: VendorSpec = VendorSpec {
    id: "fanvil",
    name: "Fanvil",
    ouis: &["0c383e"],
    events: EVENTS,
    // `$duration` and `$callDirection` (camelCase) are sent too (see `EXTRA_CALL_VARS`); they
    // stay in the event's `vars` only.
    vars: VarNames {
        mac: "mac",
        ip: Some("ip"),
        model: Some("model"),
        firmware: Some("firmware"),
        active_user: Some("active_user"),
        active_host: Some("active_host"),
        local: Some("local"),
        remote: Some("remote"),
        display_local: Some("display_local"),
        display_remote: Some("display_remote"),
        call_id: Some("call_id"),
    },
    commands: &[
        CommandKind::Dial,
        CommandKind::Answer,
        CommandKind::Hangup,
        CommandKind::Reject,
        CommandKind::Hold,
        CommandKind::Resume,
        CommandKind::Dnd,
        CommandKind::VolumeUp,
        CommandKind::VolumeDown,
        CommandKind::Mute,
        CommandKind::Key,
        CommandKind::Reboot,
        CommandKind::Provision,
    ],
    options: &[],
    http_auth: HttpAuth::Basic,
    auth_hints: AuthHints {
        unauthorized: "the phone refused the credentials (401): check username and password of this phone (its web admin account, admin/admin by default)",
        forbidden: "the phone refused remote control (403): enable it (<web><RemoteControl>1</RemoteControl> in provisioning) and put the agent's IP in the web UI's \"Active URI Limit IP\" (a blank list reportedly allows anyone; unverified)",
    },
    recognise,
    build,
    read_reply,
    provision,
    provision_file,
    provision_files_doc: "`<mac>.cfg`",
    boot_file: None,
    programming: Programming {
        format: FileFormat::Xml,
        key: None,
        key_doc: "none: no DSS key type that calls a URL is documented",
        logo: None,
        logo_size: |_| (480, 272),
        logo_doc: "none documented",
        write: write_settings,
    },
    provisioning_credentials: "the web UI's System > Auto Provision, Authentication Name and Authentication Password (labels unverified)",
    read_config: None,
};

/// `section.Tag = value` as `<sysConf><section><Tag>value</Tag></section></sysConf>`, as the
/// dotted names Fanvil's own tools use; a name without a dot goes under `<sysConf>`.
fn write_settings(settings: &[Setting]) -> String {
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<sysConf>\n");
    for setting in settings {
        let value = xml_escape(&setting.value);
        let parts: Vec<&str> = setting.key.split('.').filter(|p| !p.is_empty()).collect();
        // Names are checked when they come in (`profile::check_setting`); never panic on one.
        let Some((leaf, sections)) = parts.split_last() else {
            continue;
        };
        for section in sections {
            out.push_str(&format!("<{section}>"));
        }
        out.push_str(&format!("<{leaf}>{value}</{leaf}>"));
        for section in sections.iter().rev() {
            out.push_str(&format!("</{section}>"));
        }
        out.push('\n');
    }
    out.push_str("</sysConf>\n");
    out
}

/// Variables Fanvil documents beyond Yealink's set, appended to the URLs of call events.
const EXTRA_CALL_VARS: &[&str] = &["duration", "callDirection"];

use Carries::{Account, Call, Device};

/// The events of docs/vendors.md §2.1, which mirror Yealink's; normalised names as Yealink's.
///
/// `setting` is the provisioning tag under `<cti>`. Only `DNDOnUrl` and `DNDOffUrl` are
/// confirmed (wazo's Fanvil templates); every other tag is (derived): named like those two
/// (`<Event>Url`, CamelCase) and marked so in the docs and in the provisioning file.
static EVENTS: &[EventSpec] = &[
    event(
        "setup_completed",
        EventKind::SetupCompleted,
        Device,
        "cti.SetupCompletedUrl (derived)",
    ),
    event(
        "registered",
        EventKind::Registered,
        Account,
        "cti.RegisteredUrl (derived)",
    ),
    event(
        "unregistered",
        EventKind::Unregistered,
        Account,
        "cti.UnregisteredUrl (derived)",
    ),
    event(
        "register_failed",
        EventKind::RegisterFailed,
        Account,
        "cti.RegisterFailedUrl (derived)",
    ),
    event(
        "off_hook",
        EventKind::OffHook,
        Call,
        "cti.OffHookUrl (derived)",
    ),
    event(
        "on_hook",
        EventKind::OnHook,
        Call,
        "cti.OnHookUrl (derived)",
    ),
    event(
        "incoming_call",
        EventKind::IncomingCall,
        Call,
        "cti.IncomingCallUrl (derived)",
    ),
    event(
        "outgoing_call",
        EventKind::OutgoingCall,
        Call,
        "cti.OutgoingCallUrl (derived)",
    ),
    event(
        "call_established",
        EventKind::CallEstablished,
        Call,
        "cti.CallEstablishedUrl (derived)",
    ),
    event(
        "call_terminated",
        EventKind::CallTerminated,
        Call,
        "cti.CallTerminatedUrl (derived)",
    ),
    event("dnd_on", EventKind::DndOn, Account, "cti.DNDOnUrl"),
    event("dnd_off", EventKind::DndOff, Account, "cti.DNDOffUrl"),
    forward(
        "always_fwd_on",
        EventKind::ForwardOn,
        ForwardKind::Always,
        "cti.AlwaysFwdOnUrl (derived)",
    ),
    forward(
        "always_fwd_off",
        EventKind::ForwardOff,
        ForwardKind::Always,
        "cti.AlwaysFwdOffUrl (derived)",
    ),
    forward(
        "busy_fwd_on",
        EventKind::ForwardOn,
        ForwardKind::Busy,
        "cti.BusyFwdOnUrl (derived)",
    ),
    forward(
        "busy_fwd_off",
        EventKind::ForwardOff,
        ForwardKind::Busy,
        "cti.BusyFwdOffUrl (derived)",
    ),
    forward(
        "no_answer_fwd_on",
        EventKind::ForwardOn,
        ForwardKind::NoAnswer,
        "cti.NoAnswerFwdOnUrl (derived)",
    ),
    forward(
        "no_answer_fwd_off",
        EventKind::ForwardOff,
        ForwardKind::NoAnswer,
        "cti.NoAnswerFwdOffUrl (derived)",
    ),
    event(
        "transfer_call",
        EventKind::Transfer,
        Call,
        "cti.TransferCallUrl (derived)",
    ),
    event(
        "blind_transfer_call",
        EventKind::BlindTransfer,
        Call,
        "cti.BlindTransferUrl (derived)",
    ),
    event(
        "attended_transfer_call",
        EventKind::AttendedTransfer,
        Call,
        "cti.AttendedTransferUrl (derived)",
    ),
    event("hold", EventKind::Hold, Call, "cti.HoldUrl (derived)"),
    event("unhold", EventKind::Unhold, Call, "cti.UnHoldUrl (derived)"),
    event("mute", EventKind::Mute, Call, "cti.MuteUrl (derived)"),
    event("unmute", EventKind::Unmute, Call, "cti.UnMuteUrl (derived)"),
    event(
        "missed_call",
        EventKind::MissedCall,
        Call,
        "cti.MissedCallUrl (derived)",
    ),
];

/// The `<cti>` tag an event is provisioned under (`IncomingCallUrl`).
pub fn cti_tag(event: &EventSpec) -> &'static str {
    let setting = event.setting;
    let tag = setting.strip_prefix("cti.").unwrap_or(setting);
    tag.split(' ').next().unwrap_or(tag)
}

/// Whether a `<cti>` tag name is confirmed by docs/vendors.md (the rest are derived).
pub fn tag_is_confirmed(tag: &str) -> bool {
    matches!(tag, "DNDOnUrl" | "DNDOffUrl")
}

/// `Fanvil X4 2.10.2.6887 0c383e07e16c`; the model may contain a space (`X6U Pro`).
fn recognise(user_agent: &str) -> Option<Identity> {
    let identity = parse_plain_user_agent(user_agent, "Fanvil");
    let oui_match = identity
        .mac
        .as_ref()
        .is_some_and(|mac| SPEC.ouis.contains(&mac.oui()));
    (user_agent.to_ascii_lowercase().contains("fanvil") || oui_match).then_some(identity)
}

const CONTROL_PATH: &str = "/cgi-bin/ConfigManApp.com";

fn key(value: &str) -> PhoneRequest {
    PhoneRequest::get(format!("{CONTROL_PATH}?key={value}"))
}

fn build(command: &Command, target: &Target) -> Result<PhoneRequest, CommandError> {
    Ok(match (command.kind, &command.arg) {
        (CommandKind::Dial, CommandArg::Number(number)) => {
            if command.line.is_some() {
                return Err(CommandError::BadArgument(
                    "Fanvil dials from the identity in the phone's `line` setting; a per-command `line` is not supported".into(),
                ));
            }
            // (unverified) Fanvil's dial syntax is not confirmed (docs/vendors.md §2.2); this is the
            // reference's first candidate, Yealink's documented form: `key=number=` first,
            // nothing trailing `outgoing_uri`.
            let mut path = format!("{CONTROL_PATH}?key=number={}", encode_query_value(number));
            if let Some(line) = &target.line {
                path.push_str("&outgoing_uri=");
                path.push_str(&encode_query_value(line));
            }
            PhoneRequest::get(path)
        }
        // OK answers a ringing call (FlyingVoice FAQ's example is `key=OK`).
        (CommandKind::Answer, _) => key("OK"),
        // Of the documented keys, RELEASE is the one that releases (ends) the call in any state;
        // X / F_CANCEL are documented as one "cancel" key, which on a ringing call rejects it.
        (CommandKind::Hangup, _) => key("RELEASE"),
        (CommandKind::Reject, _) => key("X"),
        // F_HOLD is a key press: a toggle. Fanvil documents no explicit hold/unhold value, so
        // both commands press it; `resume` on a call that is not held would hold it.
        (CommandKind::Hold | CommandKind::Resume, _) => key("F_HOLD"),
        // DNDOn is documented; DNDOff is (derived) by symmetry with it.
        (CommandKind::Dnd, CommandArg::OnOff(on)) => key(if *on { "DNDOn" } else { "DNDOff" }),
        (CommandKind::VolumeUp, _) => key("VOLUME_UP"),
        (CommandKind::VolumeDown, _) => key("VOLUME_DOWN"),
        (CommandKind::Mute, _) => key("MUTE"),
        (CommandKind::Key, CommandArg::Keys(keys)) => {
            let values: Vec<String> = keys
                .iter()
                .map(|k| match k.as_str() {
                    "#" => "POUND".to_string(),
                    other => encode_query_value(other),
                })
                .collect();
            key(&values.join(";"))
        }
        // Reboot and AutoP: (single source), a secondary adapter (docs/vendors.md §2.2).
        (CommandKind::Reboot, _) => key("Reboot"),
        (CommandKind::Provision, _) => key("AutoP"),
        (kind, _) => {
            return Err(CommandError::Unsupported {
                vendor: SPEC.name,
                command: kind.name(),
            })
        }
    })
}

/// Fanvil answers 200 OK with nothing to read.
fn read_reply(_command: &Command, _reply: &PhoneReply) -> Result<ReplyOutcome, CommandError> {
    Ok(ReplyOutcome::default())
}

/// The Action URL for one event, with Fanvil's extra call variables.
fn action_url(ctx: &ProvisionCtx, event: &EventSpec) -> Option<String> {
    let mut url = ctx.action_url(&SPEC, event)?;
    if event.carries == Call {
        for var in EXTRA_CALL_VARS {
            url.push_str(&format!("&{var}=${var}"));
        }
    }
    Some(url)
}

/// The per-device `<mac>.cfg` in the current XML format (docs/vendors.md §2.3).
fn provision(ctx: &ProvisionCtx) -> String {
    let host = xml_escape(&ctx.agent_host);
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    out.push_str("<!-- phone2mqtt: Action URL and Active URI settings for Fanvil (docs/vendors.md section 2). -->\n");
    out.push_str("<sysConf>\n");
    out.push_str("  <Version>2.0000000000</Version>\n");
    out.push_str("  <web>\n");
    out.push_str(
        "    <!-- Remote control (Active URI) on, as in every wazo Fanvil template. -->\n",
    );
    out.push_str("    <RemoteControl>1</RemoteControl>\n");
    out.push_str("  </web>\n");
    out.push_str(&format!(
        "  <!-- Active URI Limit IP: no provisioning key for it is known. Set it in the web UI to {host} (this agent).\n       A blank list reportedly accepts remote control from anyone (secondary source, unverified), the opposite of Yealink. -->\n"
    ));
    out.push_str("  <!-- What the agent sends to /cgi-bin/ConfigManApp.com (HTTP Basic, web admin account):\n");
    out.push_str("       documented: key=OK, RELEASE, X, F_HOLD, DNDOn, VOLUME_UP, VOLUME_DOWN, MUTE, keypad keys;\n");
    out.push_str("       key=DNDOff is derived by symmetry with DNDOn (unverified);\n");
    out.push_str(
        "       key=Reboot and key=AutoP come from a single secondary source (unverified);\n",
    );
    out.push_str("       dial uses key=number=N&outgoing_uri=URI, the Yealink form (unverified for Fanvil). -->\n");
    out.push_str("  <cti>\n");
    out.push_str("    <!-- Only DNDOnUrl and DNDOffUrl are confirmed tag names. The other tags are derived (unverified):\n");
    out.push_str("         named like those two, as siblings under cti. Check them against a phone's exported\n");
    out.push_str("         configuration (web UI: export the configuration as XML) and rename them here if they differ.\n");
    out.push_str("         Call events also carry $duration and $callDirection. -->\n");
    for event in SPEC.events {
        if let Some(url) = action_url(ctx, event) {
            let tag = cti_tag(event);
            out.push_str(&format!("    <{tag}>{}</{tag}>\n", xml_escape(&url)));
        }
    }
    out.push_str("  </cti>\n");
    out.push_str("</sysConf>\n");
    out
}

/// `<mac>.cfg`, 12 lowercase hex digits: the same name Yealink uses; `provision_lookup` decides.
fn provision_file(path: &str) -> Option<Option<PhoneId>> {
    let name = path.strip_suffix(".cfg")?;
    (name.len() == 12
        && name
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
    .then(|| PhoneId::parse(name))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command;

    fn request(name: &str, payload: &str, target: &Target) -> Result<PhoneRequest, CommandError> {
        let cmd = command::parse(name, payload.as_bytes()).1.unwrap();
        build(&cmd, target)
    }

    fn ctx() -> ProvisionCtx {
        ProvisionCtx {
            public_url: "http://192.168.1.10:8080".into(),
            token: Some("tok".into()),
            agent_host: "192.168.1.10".into(),
            format: None,
        }
    }

    #[test]
    fn request_lines_match_vendors_md() {
        let target = Target {
            line: Some("1001@pbx.example.com".into()),
            ..Target::default()
        };
        let cases = [
            (
                "dial",
                "+49 30 1234",
                "/cgi-bin/ConfigManApp.com?key=number=%2B49301234&outgoing_uri=1001@pbx.example.com",
            ),
            ("answer", "", "/cgi-bin/ConfigManApp.com?key=OK"),
            ("hangup", "", "/cgi-bin/ConfigManApp.com?key=RELEASE"),
            ("reject", "", "/cgi-bin/ConfigManApp.com?key=X"),
            ("hold", "", "/cgi-bin/ConfigManApp.com?key=F_HOLD"),
            ("resume", "", "/cgi-bin/ConfigManApp.com?key=F_HOLD"),
            ("dnd", "on", "/cgi-bin/ConfigManApp.com?key=DNDOn"),
            ("dnd", "off", "/cgi-bin/ConfigManApp.com?key=DNDOff"),
            ("volume_up", "", "/cgi-bin/ConfigManApp.com?key=VOLUME_UP"),
            ("volume_down", "", "/cgi-bin/ConfigManApp.com?key=VOLUME_DOWN"),
            ("mute", "", "/cgi-bin/ConfigManApp.com?key=MUTE"),
            ("key", "D1 5 * #", "/cgi-bin/ConfigManApp.com?key=D1;5;*;POUND"),
            ("reboot", "", "/cgi-bin/ConfigManApp.com?key=Reboot"),
            ("provision", "", "/cgi-bin/ConfigManApp.com?key=AutoP"),
        ];
        for (name, payload, expected) in cases {
            assert_eq!(
                request(name, payload, &target).unwrap().path_and_query,
                expected,
                "{name}"
            );
        }
        assert_eq!(
            request("dial", "*21#", &Target::default())
                .unwrap()
                .path_and_query,
            "/cgi-bin/ConfigManApp.com?key=number=*21%23"
        );
        let err = request("dial", r#"{"number": "1002", "line": 2}"#, &target).unwrap_err();
        assert!(matches!(err, CommandError::BadArgument(_)), "{err}");
    }

    #[test]
    fn undocumented_commands_are_refused_by_name() {
        for (name, payload) in [
            ("transfer", "1002"),
            ("message", "hi"),
            ("refresh", ""),
            ("logo", "http://x/logo.png"),
        ] {
            assert_eq!(
                request(name, payload, &Target::default())
                    .unwrap_err()
                    .to_string(),
                format!("Fanvil phones cannot do `{name}`")
            );
            assert!(!SPEC.supports(CommandKind::from_name(name).unwrap()));
        }
    }

    #[test]
    fn user_agents() {
        let id = recognise("Fanvil X4 2.10.2.6887 0c383e07e16c").unwrap();
        assert_eq!(id.model.as_deref(), Some("X4"));
        assert_eq!(id.firmware.as_deref(), Some("2.10.2.6887"));
        assert_eq!(id.mac.unwrap().as_str(), "0c383e07e16c");
        let id = recognise("Fanvil X6U Pro 0.0.10 0c383e2cd782").unwrap();
        assert_eq!(id.model.as_deref(), Some("X6U Pro"));
        assert_eq!(id.mac.unwrap().as_str(), "0c383e2cd782");
        for other in [
            "Yealink SIP-T46G 28.72.0.1 00:15:65:4a:a9:37",
            "Htek UC903 2.0.4.2 00:1f:c1:1c:22:a9",
            "Grandstream Model HW GXP1628 SW 1.0.4.138 DevId c074ad2bd859",
            "curl/8.0",
        ] {
            assert!(recognise(other).is_none(), "{other}");
        }
    }

    #[test]
    fn provisioning_is_sysconf_xml_with_every_event() {
        let text = provision(&ctx());
        assert!(text.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"));
        assert!(text.contains("<Version>2.0000000000</Version>"));
        assert!(text.contains("<web>\n"));
        assert!(text.contains("<RemoteControl>1</RemoteControl>"));
        assert!(text.contains("Active URI Limit IP"));
        assert!(text.contains("192.168.1.10 (this agent)"));
        assert!(text.contains("<DNDOnUrl>http://192.168.1.10:8080/action/tok/fanvil/dnd_on?mac=$mac&amp;ip=$ip&amp;model=$model&amp;firmware=$firmware&amp;active_user=$active_user&amp;active_host=$active_host</DNDOnUrl>"));
        assert!(text.contains("<IncomingCallUrl>http://192.168.1.10:8080/action/tok/fanvil/incoming_call?mac=$mac&amp;ip=$ip&amp;model=$model&amp;firmware=$firmware&amp;active_user=$active_user&amp;active_host=$active_host&amp;local=$local&amp;remote=$remote&amp;display_local=$display_local&amp;display_remote=$display_remote&amp;call_id=$call_id&amp;duration=$duration&amp;callDirection=$callDirection</IncomingCallUrl>"));
        for event in SPEC.events {
            let tag = cti_tag(event);
            assert!(text.contains(&format!("<{tag}>http://")), "{tag}");
            assert_eq!(
                tag_is_confirmed(tag),
                !event.setting.contains("(derived)"),
                "{tag}"
            );
        }
        assert!(text.contains("Only DNDOnUrl and DNDOffUrl are confirmed"));
        // XML comments cannot hold `--`, and every element is closed where it was opened.
        for comment in text.split("<!--").skip(1) {
            let body = comment.split("-->").next().unwrap();
            assert!(!body.contains("--"), "{body}");
        }
        assert_eq!(text.matches("<cti>").count(), 1);
        assert!(text.trim_end().ends_with("</cti>\n</sysConf>"));
    }

    #[test]
    fn provisioning_paths() {
        assert_eq!(
            provision_file("0c383e07e16c.cfg"),
            Some(PhoneId::parse("0c383e07e16c"))
        );
        assert_eq!(provision_file("0C383E07E16C.cfg"), None);
        assert_eq!(provision_file("y000000000028.cfg"), None);
        assert_eq!(provision_file("cfg0c383e07e16c.xml"), None);
    }
}
