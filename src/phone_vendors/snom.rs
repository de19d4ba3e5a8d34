//! Snom D3xx/D7xx and legacy 3xx/7xx (UC firmware 8.x-10.x), per docs/vendors.md §4.
//!
//! Action URL: one `action_*` setting per event (some without `_url`: `action_reg_failed`,
//! `action_hold`...), variables `$mac` (any setting name works; the MAC comes upper-case, as in
//! the User-Agent), `$phone_ip`, `$remote`, `$call-id` (hyphen). There is no model or firmware
//! variable: both come from the User-Agent. Snom has no "registered" Action URL, only
//! `action_reg_failed`.
//!
//! Remote control: `GET /command.htm?key=...` (and `number=` to dial, answered 302), settings
//! written through `GET /dummy.htm?settings=save&...`, reboot through `advanced_update.htm`. HTTP
//! Basic by default; Digest when the phone's "Authentication Scheme" (`http_scheme`) is on. No
//! source-IP allow list, no on-screen prompt.

use crate::model::{
    Command, CommandArg, CommandError, CommandKind, EventKind, ForwardKind, PhoneId,
};
use crate::phone_vendors::{
    encode_query_value, event, forward, xml_escape, AuthHints, Carries, EventSpec, FileFormat,
    HttpAuth, Identity, PhoneReply, PhoneRequest, Programming, ProvisionCtx, ReplyOutcome, Setting,
    Target, VarNames, VendorSpec,
};

pub static SPEC: VendorSpec = VendorSpec {
    id: "snom",
    name: "Snom",
    ouis: &["000413", "1c7126"],
    events: EVENTS,
    vars: VarNames {
        mac: "mac",
        ip: Some("phone_ip"),
        model: None,
        firmware: None,
        active_user: Some("active_user"),
        active_host: Some("active_host"),
        local: Some("local"),
        remote: Some("remote"),
        display_local: Some("display_local"),
        display_remote: Some("display_remote"),
        call_id: Some("call-id"),
    },
    // Not here, since docs/vendors.md §4.3 documents no form for them: `transfer` (only a bare
    // `key=TRANSFER`, no way to give the number), `message` (`minibrowser.htm` is unverified),
    // `refresh` (no status endpoint). `provision` restarts the phone, which reads its settings
    // while starting (no re-fetch request is documented); `logo` comes from `programming`.
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
    http_auth: HttpAuth::Digest,
    auth_hints: AuthHints {
        unauthorized: "the phone refused the credentials (401): check username and password of this phone (the phone's web login, settings http_user / http_pass); the agent answers the phone's Digest challenge, or its Basic one while its \"Authentication Scheme\" (http_scheme) is still Basic",
        forbidden: "the phone refused the request (403): Snom has no Action URI allow list and no remote-control prompt, so check that this account may use the web interface (the admin account, http_user) and, for dnd, that the dnd_mode setting is writable for it",
    },
    recognise,
    build,
    read_reply,
    provision,
    provision_file,
    provision_files_doc: "`snom<model>.htm`, `snom<model>-<MAC>.htm`, `<MAC>.xml`",
    boot_file: None,
    programming: Programming {
        format: FileFormat::Xml,
        key: Some(program_key),
        key_doc: "function key `fkey` idx N-1 (0-based) of type `url`, with its `label`",
        logo: Some(program_logo),
        logo_size,
        logo_doc: "`custom_bg_image_url` (PNG; firmware 8.9.3 or later), scaled to the model's screen",
        write: write_settings,
    },
    provisioning_credentials: "the Setting URL (`setting_server`, web UI Advanced > Update) as http://USER:PASSWORD@host:port/",
    read_config: None,
};

/// A function key of type `url` ("Action URL"): pressed, the phone requests the URL. Snom
/// numbers its keys from 0, phone2mqtt (like the keys' printed numbers) from 1.
fn program_key(index: u32, label: &str, url: &str) -> Vec<Setting> {
    let idx = index - 1;
    vec![
        Setting::new(format!("fkey{idx}"), format!("url {url}")),
        Setting::new(format!("fkey_label{idx}"), label),
    ]
}

fn program_logo(url: &str) -> Vec<Setting> {
    vec![Setting::new("custom_bg_image_url", url)]
}

/// The background sizes the Snom wiki gives per model; the smallest for others.
fn logo_size(model: Option<&str>) -> (u32, u32) {
    let model = model.unwrap_or("").to_ascii_uppercase();
    let has = |names: &[&str]| names.iter().any(|n| model.contains(n));
    if has(&["D862", "D865"]) {
        (1280, 720)
    } else if has(&["D375", "D385", "D785"]) {
        (480, 272)
    } else if has(&["D717"]) {
        (426, 240)
    } else {
        (320, 240)
    }
}

/// Settings as Snom XML: a name ending in a number is an indexed setting (`user_name1` is
/// `<user_name idx="1">`); function keys go in `<functionKeys>`, their label as an attribute.
fn write_settings(settings: &[Setting]) -> String {
    let split = |key: &str| {
        let digits = key.len() - key.trim_end_matches(|c: char| c.is_ascii_digit()).len();
        if digits > 0 && digits < key.len() {
            let (name, idx) = key.split_at(key.len() - digits);
            (name.to_string(), Some(idx.to_string()))
        } else {
            (key.to_string(), None)
        }
    };
    let label_of = |idx: &str| {
        settings
            .iter()
            .find(|s| s.key == format!("fkey_label{idx}"))
            .map(|s| s.value.clone())
    };
    let mut phone = String::new();
    let mut keys = String::new();
    for setting in settings {
        let value = xml_escape(&setting.value);
        match split(&setting.key) {
            (name, Some(idx)) if name == "fkey" => {
                let label = label_of(&idx)
                    .map(|l| format!(" label=\"{}\"", xml_escape(&l)))
                    .unwrap_or_default();
                keys.push_str(&format!(
                    "<fkey idx=\"{idx}\" context=\"active\"{label} perm=\"\">{value}</fkey>\n"
                ));
            }
            (name, Some(_)) if name == "fkey_label" => {}
            (name, Some(idx)) => phone.push_str(&format!(
                "<{name} idx=\"{idx}\" perm=\"\">{value}</{name}>\n"
            )),
            (name, None) => phone.push_str(&format!("<{name} perm=\"\">{value}</{name}>\n")),
        }
    }
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<settings>\n");
    if !phone.is_empty() {
        out.push_str(&format!("<phone-settings>\n{phone}</phone-settings>\n"));
    }
    if !keys.is_empty() {
        out.push_str(&format!("<functionKeys>\n{keys}</functionKeys>\n"));
    }
    out.push_str("</settings>\n");
    out
}

// Forward events: Snom has one redirection (call forwarding) setting pair, not per condition: `always`.
use Carries::{Account, Call, Device};

/// Every setting of docs/vendors.md §4.1. The wire name (the Action URL path) is the setting without
/// `action_` and without `_url` where it has one; the setting itself is kept exactly, irregular
/// names included. The normalised names are Yealink's wherever the meaning is the same.
static EVENTS: &[EventSpec] = &[
    event(
        "setup",
        EventKind::SetupCompleted,
        Device,
        "action_setup_url",
    ),
    // No `_url` suffix on this one. There is no Action URL for a successful registration.
    event(
        "reg_failed",
        EventKind::RegisterFailed,
        Account,
        "action_reg_failed",
    ),
    event(
        "incoming",
        EventKind::IncomingCall,
        Call,
        "action_incoming_url",
    ),
    event(
        "outgoing",
        EventKind::OutgoingCall,
        Call,
        "action_outgoing_url",
    ),
    event("offhook", EventKind::OffHook, Call, "action_offhook_url"),
    event("onhook", EventKind::OnHook, Call, "action_onhook_url"),
    event(
        "connected",
        EventKind::CallEstablished,
        Call,
        "action_connected_url",
    ),
    event(
        "disconnected",
        EventKind::CallTerminated,
        Call,
        "action_disconnected_url",
    ),
    event("missed", EventKind::MissedCall, Call, "action_missed_url"),
    event("dnd_on", EventKind::DndOn, Account, "action_dnd_on_url"),
    event("dnd_off", EventKind::DndOff, Account, "action_dnd_off_url"),
    forward(
        "redirection_on",
        EventKind::ForwardOn,
        ForwardKind::Always,
        "action_redirection_on_url",
    ),
    forward(
        "redirection_off",
        EventKind::ForwardOff,
        ForwardKind::Always,
        "action_redirection_off_url",
    ),
    event("log_on", EventKind::LogOn, Account, "action_log_on_url"),
    event("log_off", EventKind::LogOff, Account, "action_log_off_url"),
    // Hold and the transfers have no `_url` suffix.
    event("hold", EventKind::Hold, Call, "action_hold"),
    event("unhold", EventKind::Unhold, Call, "action_unhold"),
    event("transfer", EventKind::Transfer, Call, "action_transfer"),
    event(
        "blind_transfer",
        EventKind::BlindTransfer,
        Call,
        "action_blind_transfer",
    ),
    event(
        "attended_transfer",
        EventKind::AttendedTransfer,
        Call,
        "action_attended_transfer",
    ),
    event(
        "received_attended_transfer",
        EventKind::AttendedTransferReceived,
        Call,
        "action_received_attended_transfer",
    ),
    event(
        "longpress",
        EventKind::LongPress,
        Device,
        "action_longpress_url",
    ),
    event(
        "blacklist",
        EventKind::BlacklistedCall,
        Call,
        "action_blacklist_url",
    ),
    event(
        "received_subscr_notify",
        EventKind::SubscriptionNotify,
        Account,
        "action_received_subscr_notify_url",
    ),
];

/// `Mozilla/4.0 (compatible; snom<MODEL>-SIP <fw> <build> [(<date>)] [<MAC>] ...)`, docs/vendors.md
/// §4.5: the model sits between `snom` and `-SIP`, the firmware follows it, and the MAC (upper
/// case, 12 hex digits) is the first such token after it; old firmware sends none.
fn recognise(user_agent: &str) -> Option<Identity> {
    let tokens: Vec<&str> = user_agent
        .split(|c: char| c.is_whitespace() || matches!(c, ';' | '(' | ')'))
        .filter(|t| !t.is_empty())
        .collect();
    let (index, model) = tokens
        .iter()
        .enumerate()
        .find_map(|(i, t)| ua_model(t).map(|m| (i, m)))?;
    let firmware = tokens
        .get(index + 1)
        .filter(|t| is_firmware(t))
        .map(|t| t.to_string());
    let mac = tokens[index + 1..]
        .iter()
        .filter(|t| t.len() == 12 && t.bytes().all(|b| b.is_ascii_hexdigit()))
        .find_map(|t| PhoneId::parse(t));
    Some(Identity {
        model: Some(model),
        firmware,
        mac,
    })
}

/// `snomD785-SIP` is `D785`.
fn ua_model(token: &str) -> Option<String> {
    let lower = token.to_ascii_lowercase();
    let model = lower.strip_prefix("snom")?.strip_suffix("-sip")?;
    (!model.is_empty() && model.bytes().all(|b| b.is_ascii_alphanumeric()))
        .then(|| token[4..4 + model.len()].to_string())
}

fn is_firmware(token: &str) -> bool {
    token.split('.').count() >= 3
        && token
            .split('.')
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

fn key(value: &str) -> PhoneRequest {
    PhoneRequest::get(format!("/command.htm?key={value}"))
}

fn build(command: &Command, target: &Target) -> Result<PhoneRequest, CommandError> {
    Ok(match (command.kind, &command.arg) {
        (CommandKind::Dial, CommandArg::Number(number)) => {
            if command.line.is_some() {
                return Err(CommandError::BadArgument(
                    "Snom dials from the identity in the phone's `line` setting (outgoing_uri); a per-command `line` is not supported".into(),
                ));
            }
            // The phone answers 302 (to index.htm); `outgoing_uri` picks the identity and is
            // left out when none is configured (optional: derived in docs/vendors.md §4.3).
            let mut path = format!("/command.htm?number={}", encode_query_value(number));
            if let Some(line) = &target.line {
                path.push_str("&outgoing_uri=");
                path.push_str(&encode_query_value(line));
            }
            PhoneRequest::get(path)
        }
        // docs/vendors.md §4.3 names ENTER (p4irin, code that drives real phones and checks their
        // answers) and OFFHOOK (several clients). ENTER is the one from the source that also
        // documents how CANCEL behaves, and it does not take an idle phone off hook the way
        // OFFHOOK would if the call is already gone.
        (CommandKind::Answer, _) => key("ENTER"),
        // CANCEL ends a call (firing action_disconnected_url) and, on a ringing call, rejects it
        // without firing any Action URL (p4irin).
        (CommandKind::Hangup | CommandKind::Reject, _) => key("CANCEL"),
        // F_R is a toggle: hold and resume send the same key; resume only makes sense while held.
        (CommandKind::Hold | CommandKind::Resume, _) => key("F_R"),
        // `key=DND` only toggles. Explicit on/off writes the `dnd_mode` setting: derived in
        // docs/vendors.md §4.3 from the setting-write pattern, unverified on hardware.
        (CommandKind::Dnd, CommandArg::OnOff(on)) => PhoneRequest::get(format!(
            "/dummy.htm?settings=save&dnd_mode={}&store_settings=save",
            if *on { "on" } else { "off" }
        )),
        (CommandKind::VolumeUp, _) => key("VOLUME_UP"),
        (CommandKind::VolumeDown, _) => key("VOLUME_DOWN"),
        (CommandKind::Mute, _) => key("MUTE"),
        (CommandKind::Key, CommandArg::Keys(keys)) => {
            // `#` is sent as `%23`, `*` stays literal; several keys are joined with `;`.
            let values: Vec<String> = keys.iter().map(|k| encode_query_value(k)).collect();
            key(&values.join(";"))
        }
        (CommandKind::Reboot, _) => PhoneRequest::get("/advanced_update.htm?reboot=Reboot".into()),
        // No request re-fetches the settings without a restart (wazo sends a SIP NOTIFY
        // check-sync); the phone reads its provisioning while it starts.
        (CommandKind::Provision, _) => {
            PhoneRequest::get("/advanced_update.htm?reboot=Reboot".into())
        }
        (kind, _) => {
            return Err(CommandError::Unsupported {
                vendor: SPEC.name,
                command: kind.name(),
            })
        }
    })
}

/// Snom answers 200, and 302 (a redirect to index.htm) for dial; the agent follows no redirect.
fn read_reply(command: &Command, reply: &PhoneReply) -> Result<ReplyOutcome, CommandError> {
    match reply.status {
        // CANCEL on a ringing call rejects it without firing any Action URL (docs/vendors.md §4.3).
        200 if command.kind == CommandKind::Reject => Ok(ReplyOutcome {
            call_ended: true,
            ..ReplyOutcome::default()
        }),
        200 | 302 => Ok(ReplyOutcome::default()),
        status => Err(CommandError::Rejected(format!(
            "unexpected HTTP {status} (a Snom answers 200, or 302 to a dial)"
        ))),
    }
}

/// The XML settings file: one `<action_...>` setting per event. Nothing else is needed: Snom
/// has no Action URI allow list and no "Allow remote control?" prompt. The web login
/// (`http_user` / `http_pass`) stays as it is on the phone: passwords never go into provisioning.
fn provision(ctx: &ProvisionCtx) -> String {
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n");
    out.push_str("<settings>\n<phone-settings>\n");
    out.push_str("<!-- phone2mqtt: Action URL settings; every event is sent to the agent. Snom has no Action URI allow list and no remote-control prompt; http_user and http_pass are left as they are on the phone. -->\n");
    for event in SPEC.events {
        if let Some(url) = ctx.action_url(&SPEC, event) {
            out.push_str(&format!(
                "<{name} perm=\"\">{url}</{name}>\n",
                name = event.setting,
                url = xml_escape(&url)
            ));
        }
    }
    out.push_str("</phone-settings>\n</settings>\n");
    out
}

/// `snom<MODEL>.htm`, `snom<MODEL>-<MAC>.htm` and `<MAC>.xml`, the MAC upper-case (§4.4).
fn provision_file(path: &str) -> Option<Option<PhoneId>> {
    let upper_mac = |text: &str| {
        (text.len() == 12
            && text
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'A'..=b'F').contains(&b)))
        .then(|| PhoneId::parse(text))
        .flatten()
    };
    if let Some(name) = path.strip_suffix(".xml") {
        return upper_mac(name).map(Some);
    }
    let name = path.strip_prefix("snom")?.strip_suffix(".htm")?;
    let (model, mac) = match name.split_once('-') {
        Some((model, mac)) => (model, Some(upper_mac(mac)?)),
        None => (name, None),
    };
    (!model.is_empty() && model.bytes().all(|b| b.is_ascii_alphanumeric())).then_some(mac)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command;

    fn request(name: &str, payload: &str, target: &Target) -> PhoneRequest {
        let cmd = command::parse(name, payload.as_bytes()).1.unwrap();
        build(&cmd, target).unwrap()
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
                "/command.htm?number=%2B49301234&outgoing_uri=1001@pbx.example.com",
            ),
            ("answer", "", "/command.htm?key=ENTER"),
            ("hangup", "", "/command.htm?key=CANCEL"),
            ("reject", "", "/command.htm?key=CANCEL"),
            ("hold", "", "/command.htm?key=F_R"),
            ("resume", "", "/command.htm?key=F_R"),
            (
                "dnd",
                "on",
                "/dummy.htm?settings=save&dnd_mode=on&store_settings=save",
            ),
            (
                "dnd",
                "off",
                "/dummy.htm?settings=save&dnd_mode=off&store_settings=save",
            ),
            ("volume_up", "", "/command.htm?key=VOLUME_UP"),
            ("volume_down", "", "/command.htm?key=VOLUME_DOWN"),
            ("mute", "", "/command.htm?key=MUTE"),
            ("key", "P1 * # ENTER", "/command.htm?key=P1;*;%23;ENTER"),
            ("reboot", "", "/advanced_update.htm?reboot=Reboot"),
            ("provision", "", "/advanced_update.htm?reboot=Reboot"),
        ];
        for (name, payload, expected) in cases {
            assert_eq!(
                request(name, payload, &target).path_and_query,
                expected,
                "{name}"
            );
        }
        assert_eq!(
            request("dial", "*21#", &Target::default()).path_and_query,
            "/command.htm?number=*21%23"
        );
        let with_line = command::parse("dial", br#"{"number": "1001", "line": 2}"#)
            .1
            .unwrap();
        assert!(matches!(
            build(&with_line, &target),
            Err(CommandError::BadArgument(_))
        ));
    }

    #[test]
    fn undocumented_commands_are_unsupported_and_named() {
        for (name, payload) in [("transfer", "1002"), ("message", "hello"), ("refresh", "")] {
            let cmd = command::parse(name, payload.as_bytes()).1.unwrap();
            assert!(!SPEC.supports(cmd.kind), "{name}");
            assert_eq!(
                build(&cmd, &Target::default()).unwrap_err().to_string(),
                format!("Snom phones cannot do `{name}`")
            );
        }
    }

    #[test]
    fn replies_200_and_302_are_success() {
        let cmd = command::parse("dial", b"1001").1.unwrap();
        for status in [200, 302] {
            let reply = PhoneReply {
                status,
                body: String::new(),
            };
            assert!(read_reply(&cmd, &reply).is_ok(), "{status}");
        }
        let reply = PhoneReply {
            status: 204,
            body: String::new(),
        };
        assert!(read_reply(&cmd, &reply).is_err());
    }

    #[test]
    fn user_agents() {
        let id = recognise("Mozilla/4.0 (compatible; snomD785-SIP 10.1.33.33 2010.12-00004-g9ba52f5 000413922D24 SXM:0 UXM:0)").unwrap();
        assert_eq!(id.model.as_deref(), Some("D785"));
        assert_eq!(id.firmware.as_deref(), Some("10.1.33.33"));
        assert_eq!(id.mac.unwrap().as_str(), "000413922d24");
        let id = recognise("Mozilla/4.0 (compatible; snomD785-SIP 10.1.33.33 2010.12-00004-g9ba52f5 (Feb 25 2019 - 14:19:43) 000413922D24 SXM:0 UXM:0)").unwrap();
        assert_eq!(id.model.as_deref(), Some("D785"));
        assert_eq!(id.firmware.as_deref(), Some("10.1.33.33"));
        assert_eq!(id.mac.unwrap().as_str(), "000413922d24");
        let id = recognise("Mozilla/4.0 (compatible; snom320-SIP 8.4.18 1.1.3-s)").unwrap();
        assert_eq!(id.model.as_deref(), Some("320"));
        assert_eq!(id.firmware.as_deref(), Some("8.4.18"));
        assert!(id.mac.is_none());
        let id = recognise(
            "Mozilla/4.0 (compatible; snom320-SIP 6.5.20; snom320 jffs2 v3.36; snom320 linux 3.38)",
        )
        .unwrap();
        assert_eq!(id.model.as_deref(), Some("320"));
        assert_eq!(id.firmware.as_deref(), Some("6.5.20"));
        assert!(id.mac.is_none());
        let id = recognise(
            "Mozilla/4.0 (compatible; snom710-SIP 8.7.5.35 1.1.5-IFX-05.01.12 000413741767)",
        )
        .unwrap();
        assert_eq!(id.model.as_deref(), Some("710"));
        assert_eq!(id.mac.unwrap().as_str(), "000413741767");
        assert!(recognise("Yealink SIP-T46G 28.72.0.1 00:15:65:4a:a9:37").is_none());
        assert!(recognise("Mozilla/5.0 (X11; Linux x86_64) Firefox/120.0").is_none());
        assert!(recognise("Fanvil X4 2.10.2.6887 0c383e07e16c").is_none());
    }

    #[test]
    fn every_setting_of_section_4_1_is_an_event() {
        let settings: Vec<&str> = SPEC.events.iter().map(|e| e.setting).collect();
        for setting in [
            "action_setup_url",
            "action_reg_failed",
            "action_incoming_url",
            "action_outgoing_url",
            "action_offhook_url",
            "action_onhook_url",
            "action_connected_url",
            "action_disconnected_url",
            "action_missed_url",
            "action_dnd_on_url",
            "action_dnd_off_url",
            "action_redirection_on_url",
            "action_redirection_off_url",
            "action_log_on_url",
            "action_log_off_url",
            "action_hold",
            "action_unhold",
            "action_transfer",
            "action_blind_transfer",
            "action_attended_transfer",
            "action_received_attended_transfer",
            "action_longpress_url",
            "action_blacklist_url",
            "action_received_subscr_notify_url",
        ] {
            assert!(settings.contains(&setting), "{setting} is missing");
        }
        assert_eq!(settings.len(), 24);
        assert!(SPEC.events.iter().all(|e| e.event != EventKind::Registered));
        for event in SPEC.events {
            let wire = event.setting.strip_prefix("action_").unwrap();
            assert_eq!(event.wire, wire.strip_suffix("_url").unwrap_or(wire));
        }
    }

    #[test]
    fn provisioning_is_xml_settings_for_every_event() {
        let ctx = ProvisionCtx {
            public_url: "http://192.168.1.10:8080".into(),
            token: Some("tok".into()),
            agent_host: "192.168.1.10".into(),
            format: None,
        };
        let text = provision(&ctx);
        assert!(text.starts_with(
            "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<settings>\n<phone-settings>\n"
        ));
        assert!(text.ends_with("</phone-settings>\n</settings>\n"));
        assert!(text.contains("<action_incoming_url perm=\"\">http://192.168.1.10:8080/action/tok/snom/incoming?mac=$mac&amp;phone_ip=$phone_ip&amp;active_user=$active_user&amp;active_host=$active_host&amp;local=$local&amp;remote=$remote&amp;display_local=$display_local&amp;display_remote=$display_remote&amp;call-id=$call-id</action_incoming_url>\n"));
        assert!(text.contains("<action_reg_failed perm=\"\">http://192.168.1.10:8080/action/tok/snom/reg_failed?mac=$mac&amp;phone_ip=$phone_ip&amp;active_user=$active_user&amp;active_host=$active_host</action_reg_failed>\n"));
        assert!(text.contains("<action_setup_url perm=\"\">http://192.168.1.10:8080/action/tok/snom/setup?mac=$mac&amp;phone_ip=$phone_ip</action_setup_url>\n"));
        assert_eq!(text.matches(" perm=\"\">").count(), SPEC.events.len());
        assert!(!text.contains("<http_pass") && !text.contains("<http_user"));
        // An XML comment may not hold `--`.
        let comment = &text[text.find("<!--").unwrap() + 4..text.find("-->").unwrap()];
        assert!(!comment.contains("--"));
    }

    #[test]
    fn provisioning_paths() {
        assert_eq!(provision_file("snomD785.htm"), Some(None));
        assert_eq!(provision_file("snom320.htm"), Some(None));
        assert_eq!(
            provision_file("snomD785-000413922D24.htm"),
            Some(PhoneId::parse("000413922d24"))
        );
        assert_eq!(
            provision_file("000413922D24.xml"),
            Some(PhoneId::parse("000413922d24"))
        );
        assert_eq!(provision_file("000413922d24.xml"), None);
        assert_eq!(provision_file("cfg000413922D24.xml"), None);
        assert_eq!(provision_file("snomD785-0004.htm"), None);
        assert_eq!(provision_file("snom.htm"), None);
        assert_eq!(provision_file("snomD785.html"), None);
        assert_eq!(provision_file("0015654aa937.cfg"), None);
    }
}
