//! Htek UC9xx (also UC8xx), per docs/vendors.md §5.
//!
//! Action URL: Yealink's variable set (`$mac` lowercase without separators), configured under
//! Setting > Action URL. Control: `GET /Phone_ActionURL&Command=<n>&...` with HTTP Basic auth;
//! note the `&` right after the path and no `?`: the path is sent byte for byte.
//!
//! What this file relies on beyond the documented facts is marked where it is used:
//! - the event set is (derived): docs/vendors.md names only "Setting > Action URL" with Yealink's
//!   variables, so this is Yealink's core set;
//! - the Action URL P-numbers are unknown, so provisioning writes `para`-named entries whose
//!   names are (derived) from the web UI labels; the simulator reads the same entries, the one
//!   place where it follows our own derivation instead of the reference;
//! - key names for DND, volume and reboot were not found; the reference's guess, Yealink's
//!   (`DNDOn`, `DNDOff`, `VOLUME_UP`, `VOLUME_DOWN`, `Reboot`) sent as `Command=3&key=`, is
//!   used and is (unverified).

use crate::model::{Command, CommandArg, CommandError, CommandKind, EventKind, PhoneId};
use crate::phone_vendors::{
    encode_query_value, event, parse_plain_user_agent, xml_escape, AuthHints, Carries, EventSpec,
    FileFormat, HttpAuth, Identity, PhoneReply, PhoneRequest, Programming, ProvisionCtx,
    ReplyOutcome, Setting, Target, VarNames, VendorSpec,
};

pub static SPEC: VendorSpec = VendorSpec {
    id: "htek",
    name: "Htek",
    ouis: &["001fc1"],
    events: EVENTS,
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
        CommandKind::Dnd,
        CommandKind::VolumeUp,
        CommandKind::VolumeDown,
        CommandKind::Key,
        CommandKind::Reboot,
        CommandKind::Provision,
    ],
    options: &[],
    http_auth: HttpAuth::Basic,
    auth_hints: AuthHints {
        unauthorized: "the phone refused the credentials (401): check username and password of this phone (its web admin account, admin/admin by default)",
        forbidden: "the phone refused the request (403): check that this phone's web admin account may use Phone_ActionURL (no Htek allow list setting is known)",
    },
    recognise,
    build,
    read_reply,
    provision,
    provision_file,
    provision_files_doc: "`cfg<mac>.xml`",
    boot_file: None,
    programming: Programming {
        format: FileFormat::Xml,
        key: None,
        key_doc: "none: no memory key type that calls a URL is documented",
        logo: None,
        logo_size: |_| (480, 272),
        logo_doc: "none documented",
        write: write_settings,
    },
    provisioning_credentials: "the web UI's Management > Auto Provision, User Name and Password (labels unverified)",
    read_config: None,
};

/// P-values in the `<hl_provision>` form the agent serves.
fn write_settings(settings: &[Setting]) -> String {
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<hl_provision version=\"1\">\n  <config version=\"1\">\n");
    for setting in settings {
        out.push_str(&format!(
            "    <{0}>{1}</{0}>\n",
            setting.key,
            xml_escape(&setting.value)
        ));
    }
    out.push_str("  </config>\n</hl_provision>\n");
    out
}

const LABEL_PREFIX: &str = "Setting > Action URL > ";
const DERIVED: &str = " (derived)";

use Carries::{Account, Call, Device};

/// (derived) Yealink's core events with Yealink's normalised names; docs/vendors.md lists no Htek
/// event set. `setting` is the web UI field, its label (derived) from Yealink's, which Htek's
/// UI mirrors; the provisioning `para` name is made from that label (`para_name`).
static EVENTS: &[EventSpec] = &[
    event(
        "setup_completed",
        EventKind::SetupCompleted,
        Device,
        "Setting > Action URL > Setup Completed (derived)",
    ),
    event(
        "registered",
        EventKind::Registered,
        Account,
        "Setting > Action URL > Registered (derived)",
    ),
    event(
        "unregistered",
        EventKind::Unregistered,
        Account,
        "Setting > Action URL > Unregistered (derived)",
    ),
    event(
        "incoming_call",
        EventKind::IncomingCall,
        Call,
        "Setting > Action URL > Incoming Call (derived)",
    ),
    event(
        "outgoing_call",
        EventKind::OutgoingCall,
        Call,
        "Setting > Action URL > Outgoing Call (derived)",
    ),
    event(
        "call_established",
        EventKind::CallEstablished,
        Call,
        "Setting > Action URL > Call Established (derived)",
    ),
    event(
        "call_terminated",
        EventKind::CallTerminated,
        Call,
        "Setting > Action URL > Call Terminated (derived)",
    ),
    event(
        "dnd_on",
        EventKind::DndOn,
        Account,
        "Setting > Action URL > Open DND (derived)",
    ),
    event(
        "dnd_off",
        EventKind::DndOff,
        Account,
        "Setting > Action URL > Close DND (derived)",
    ),
    event(
        "hold",
        EventKind::Hold,
        Call,
        "Setting > Action URL > Hold (derived)",
    ),
    event(
        "unhold",
        EventKind::Unhold,
        Call,
        "Setting > Action URL > UnHold (derived)",
    ),
    event(
        "missed_call",
        EventKind::MissedCall,
        Call,
        "Setting > Action URL > Missed Call (derived)",
    ),
];

/// The web UI label of an event's field (`Incoming Call`).
pub fn label(event: &EventSpec) -> &'static str {
    let setting = event.setting;
    let label = setting.strip_prefix(LABEL_PREFIX).unwrap_or(setting);
    label.strip_suffix(DERIVED).unwrap_or(label)
}

/// (derived) The `para` name of an event's provisioning entry: `ActionURL_` and the label
/// without spaces (`ActionURL_IncomingCall`), in the style of Htek's `Profile1_Sipserver`.
pub fn para_name(event: &EventSpec) -> String {
    format!("ActionURL_{}", label(event).replace(' ', ""))
}

/// The element name of the entries: a placeholder, since the P-numbers are unknown.
pub const UNKNOWN_P: &str = "Pxxxx";

/// `Htek UC903 2.0.4.2 00:1f:c1:1c:22:a9`.
fn recognise(user_agent: &str) -> Option<Identity> {
    let identity = parse_plain_user_agent(user_agent, "Htek");
    let oui_match = identity
        .mac
        .as_ref()
        .is_some_and(|mac| SPEC.ouis.contains(&mac.oui()));
    (user_agent.to_ascii_lowercase().contains("htek") || oui_match).then_some(identity)
}

/// `/Phone_ActionURL&Command=...`: `&` right after the path, no `?` (docs/vendors.md §5).
fn action(rest: &str) -> PhoneRequest {
    PhoneRequest::get(format!("/Phone_ActionURL&Command={rest}"))
}

fn press(key: &str) -> PhoneRequest {
    action(&format!("3&key={key}"))
}

fn build(command: &Command, _target: &Target) -> Result<PhoneRequest, CommandError> {
    Ok(match (command.kind, &command.arg) {
        (CommandKind::Dial, CommandArg::Number(number)) => {
            // Account is the account's number, 1-based: the guide's example dials "via the
            // account 1" with `Account=1`; 1 is also what the phone's first line is.
            let account = command.line.unwrap_or(1);
            action(&format!(
                "1&Number={}&Account={account}",
                encode_query_value(number)
            ))
        }
        (CommandKind::Hangup, _) => action("2"),
        // `Command=3&key=OK` answers (test-automation code cited by docs/vendors.md §5).
        (CommandKind::Answer, _) => press("OK"),
        // (unverified) Htek's key names for these were not found; Yealink's, as docs/vendors.md guesses.
        (CommandKind::Dnd, CommandArg::OnOff(on)) => press(if *on { "DNDOn" } else { "DNDOff" }),
        (CommandKind::VolumeUp, _) => press("VOLUME_UP"),
        (CommandKind::VolumeDown, _) => press("VOLUME_DOWN"),
        (CommandKind::Reboot, _) => press("Reboot"),
        // No provisioning request is known; the phone fetches its files while it starts.
        (CommandKind::Provision, _) => press("Reboot"),
        (CommandKind::Key, CommandArg::Keys(keys)) => match keys.as_slice() {
            [key] => press(&encode_query_value(key)),
            _ => {
                return Err(CommandError::BadArgument(
                    "Htek presses one key per request; send the keys one at a time".into(),
                ))
            }
        },
        (kind, _) => {
            return Err(CommandError::Unsupported {
                vendor: SPEC.name,
                command: kind.name(),
            })
        }
    })
}

/// Htek answers 200 with nothing to read.
fn read_reply(_command: &Command, _reply: &PhoneReply) -> Result<ReplyOutcome, CommandError> {
    Ok(ReplyOutcome::default())
}

/// `cfg<mac>.xml` in Htek's `hl_provision` format (docs/vendors.md §5).
fn provision(ctx: &ProvisionCtx) -> String {
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    out.push_str("<hl_provision version=\"1\">\n");
    out.push_str("  <config version=\"1\">\n");
    out.push_str(
        "    <!-- phone2mqtt: Action URL settings for Htek (docs/vendors.md section 5). -->\n",
    );
    out.push_str("    <!-- (derived, unverified) The P-numbers of the Action URL settings are not known, so the entries\n");
    out.push_str("         below use the placeholder element Pxxxx and para names derived from the web UI labels\n");
    out.push_str("         (ActionURL_ and the label without spaces). A phone will probably ignore them. Either paste\n");
    out.push_str("         each URL into the web UI under Setting > Action URL, in the field its para names\n");
    out.push_str("         (ActionURL_IncomingCall goes to Incoming Call), then save; or fill in one field by hand,\n");
    out.push_str("         export the configuration (/download_xml_cfg) to learn its P-number and replace Pxxxx.\n");
    out.push_str("         The event set itself is derived too (Yealink's core set, whose variables Htek shares). -->\n");
    out.push_str(&format!(
        "    <!-- Remote control: the agent sends GET /Phone_ActionURL&Command=... with HTTP Basic (web admin account).\n         Documented: Command=1 (dial), Command=2 (hang up), Command=3&key=OK (answer).\n         The key names DNDOn, DNDOff, VOLUME_UP, VOLUME_DOWN and Reboot are Yealink's (unverified for Htek).\n         No allow list setting is known; make sure {} (this agent) can reach the phone's web server. -->\n",
        xml_escape(&ctx.agent_host)
    ));
    for event in SPEC.events {
        if let Some(url) = ctx.action_url(&SPEC, event) {
            out.push_str(&format!(
                "    <{UNKNOWN_P} para=\"{}\">{}</{UNKNOWN_P}>\n",
                para_name(event),
                xml_escape(&url)
            ));
        }
    }
    out.push_str("  </config>\n");
    out.push_str("</hl_provision>\n");
    out
}

/// `cfg<mac>.xml`, 12 lowercase hex digits: the same form Grandstream uses; `provision_lookup`
/// decides by configured vendor, User-Agent, then MAC prefix.
fn provision_file(path: &str) -> Option<Option<PhoneId>> {
    let name = path.strip_prefix("cfg")?.strip_suffix(".xml")?;
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

    fn request(name: &str, payload: &str) -> Result<PhoneRequest, CommandError> {
        let cmd = command::parse(name, payload.as_bytes()).1.unwrap();
        build(&cmd, &Target::default())
    }

    #[test]
    fn request_lines_match_vendors_md() {
        let cases = [
            (
                "dial",
                "+49 30 1234",
                "/Phone_ActionURL&Command=1&Number=%2B49301234&Account=1",
            ),
            (
                "dial",
                r#"{"number": "206", "line": 2}"#,
                "/Phone_ActionURL&Command=1&Number=206&Account=2",
            ),
            (
                "dial",
                "*21#",
                "/Phone_ActionURL&Command=1&Number=*21%23&Account=1",
            ),
            ("hangup", "", "/Phone_ActionURL&Command=2"),
            ("answer", "", "/Phone_ActionURL&Command=3&key=OK"),
            ("dnd", "on", "/Phone_ActionURL&Command=3&key=DNDOn"),
            ("dnd", "off", "/Phone_ActionURL&Command=3&key=DNDOff"),
            ("volume_up", "", "/Phone_ActionURL&Command=3&key=VOLUME_UP"),
            (
                "volume_down",
                "",
                "/Phone_ActionURL&Command=3&key=VOLUME_DOWN",
            ),
            ("reboot", "", "/Phone_ActionURL&Command=3&key=Reboot"),
            ("provision", "", "/Phone_ActionURL&Command=3&key=Reboot"),
            ("key", "OK", "/Phone_ActionURL&Command=3&key=OK"),
        ];
        for (name, payload, expected) in cases {
            let built = request(name, payload).unwrap();
            assert_eq!(built.path_and_query, expected, "{name}");
            assert!(!built.path_and_query.contains('?'), "{name}: no `?`");
        }
        assert!(matches!(
            request("key", "1 2"),
            Err(CommandError::BadArgument(_))
        ));
    }

    #[test]
    fn undocumented_commands_are_refused_by_name() {
        for (name, payload) in [
            ("reject", ""),
            ("hold", ""),
            ("resume", ""),
            ("transfer", "1002"),
            ("mute", ""),
            ("message", "hi"),
            ("refresh", ""),
            ("logo", "http://x/logo.png"),
        ] {
            assert_eq!(
                request(name, payload).unwrap_err().to_string(),
                format!("Htek phones cannot do `{name}`")
            );
            assert!(!SPEC.supports(CommandKind::from_name(name).unwrap()));
        }
    }

    #[test]
    fn user_agents() {
        let id = recognise("Htek UC903 2.0.4.2 00:1f:c1:1c:22:a9").unwrap();
        assert_eq!(id.model.as_deref(), Some("UC903"));
        assert_eq!(id.firmware.as_deref(), Some("2.0.4.2"));
        assert_eq!(id.mac.unwrap().as_str(), "001fc11c22a9");
        for other in [
            "Yealink SIP-T46G 28.72.0.1 00:15:65:4a:a9:37",
            "Fanvil X4 2.10.2.6887 0c383e07e16c",
            "Grandstream Model HW GXP1628 SW 1.0.4.138 DevId c074ad2bd859",
            "curl/8.0",
        ] {
            assert!(recognise(other).is_none(), "{other}");
        }
    }

    #[test]
    fn provisioning_is_hl_provision_with_derived_entries() {
        let ctx = ProvisionCtx {
            public_url: "http://192.168.1.10:8080".into(),
            token: Some("tok".into()),
            agent_host: "192.168.1.10".into(),
            format: None,
        };
        let text = provision(&ctx);
        assert!(text.starts_with(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<hl_provision version=\"1\">\n  <config version=\"1\">\n"
        ));
        assert!(text.ends_with("  </config>\n</hl_provision>\n"));
        assert!(text.contains("<Pxxxx para=\"ActionURL_IncomingCall\">http://192.168.1.10:8080/action/tok/htek/incoming_call?mac=$mac&amp;ip=$ip&amp;model=$model&amp;firmware=$firmware&amp;active_user=$active_user&amp;active_host=$active_host&amp;local=$local&amp;remote=$remote&amp;display_local=$display_local&amp;display_remote=$display_remote&amp;call_id=$call_id</Pxxxx>"));
        assert!(text.contains("para=\"ActionURL_OpenDND\""));
        assert!(text.contains("Setting > Action URL"));
        assert!(text.contains("(derived, unverified)"));
        assert!(text.contains("(unverified for Htek)"));
        assert_eq!(text.matches("<Pxxxx ").count(), SPEC.events.len());
        for comment in text.split("<!--").skip(1) {
            let body = comment.split("-->").next().unwrap();
            assert!(!body.contains("--"), "{body}");
        }
        for event in SPEC.events {
            assert!(event.setting.ends_with("(derived)"), "{}", event.wire);
            assert!(!label(event).contains('>'));
        }
    }

    #[test]
    fn provisioning_paths() {
        assert_eq!(
            provision_file("cfg001fc11c22a9.xml"),
            Some(PhoneId::parse("001fc11c22a9"))
        );
        assert_eq!(provision_file("cfg001FC11C22A9.xml"), None);
        assert_eq!(provision_file("001fc11c22a9.cfg"), None);
        assert_eq!(provision_file("cfg.xml"), None);
    }
}
