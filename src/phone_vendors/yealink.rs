//! Yealink T2x/T4x/T5x/CP/W (and OEMs: Matrix SPARSH, Sangoma, ClearlyIP), per docs/vendors.md §1.
//!
//! Action URL: `action_url.<event>` keys with `$mac`, `$ip`, `$remote`... Action URI:
//! `GET /servlet?key=<VALUE>` with HTTP Basic auth, answered 200; 403 when the agent is not in
//! `features.action_uri_limit_ip` or the on-screen "Allow remote control?" prompt is pending.

use crate::model::{
    Command, CommandArg, CommandError, CommandKind, EventKind, ForwardKind, Line, PhoneId,
};
use crate::phone_vendors::{
    encode_query_value, event, forward, parse_plain_user_agent, xml_escape, AuthHints, Carries,
    EventSpec, FileFormat, HttpAuth, Identity, Method, PhoneReply, PhoneRequest, Programming,
    ProvisionCtx, Refreshed, ReplyOutcome, Setting, Target, VarNames, VendorSpec,
};

pub static SPEC: VendorSpec = VendorSpec {
    id: "yealink",
    name: "Yealink",
    ouis: &["001565", "805e0c", "249ad8"],
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
        CommandKind::Reject,
        CommandKind::Hold,
        CommandKind::Resume,
        CommandKind::Transfer,
        CommandKind::Dnd,
        CommandKind::VolumeUp,
        CommandKind::VolumeDown,
        CommandKind::Mute,
        CommandKind::Key,
        CommandKind::Message,
        CommandKind::Reboot,
        CommandKind::Refresh,
        CommandKind::Provision,
    ],
    options: &[],
    http_auth: HttpAuth::Basic,
    auth_hints: AuthHints {
        unauthorized: "the phone refused the credentials (401): check username and password of this phone; repeated failures lock the phone's web login for some minutes",
        forbidden: "the phone refused remote control (403): add the agent's IP to features.action_uri_limit_ip (blank means nobody), and set features.show_action_uri_option = 0 or press OK on the phone's \"Allow remote control?\" prompt",
    },
    recognise,
    build,
    read_reply,
    provision,
    provision_file,
    provision_files_doc: "`<mac>.cfg`, `y0000000000XX.cfg` (`<mac>.boot` with `yealink_boot`)",
    boot_file: Some(boot_file),
    programming: Programming {
        format: FileFormat::KeyValue {
            header: "#!version:1.0.0.1",
        },
        key: Some(program_key),
        key_doc: "`linekey.N.type = 17` (URL; the type code is unverified), `linekey.N.value`, `linekey.N.label`",
        logo: Some(program_logo),
        logo_size: |_| (480, 272),
        logo_doc: "`wallpaper_upload.url` and `phone_setting.backgrounds = Config:<file>`; PNG scaled to fit 480×272 (T46G's documented limit)",
        write: write_settings,
    },
    provisioning_credentials: "`static.auto_provision.server.username` and `static.auto_provision.server.password` (web UI: Settings > Auto Provision, User Name and Password)",
    read_config: None,
};

/// A line key of type URL: pressed, the phone requests the URL.
/// (unverified) 17 is URL in Yealink's DSS key type list as we know it; a site whose phones
/// differ sets `linekey.N.type` itself, which wins.
fn program_key(index: u32, label: &str, url: &str) -> Vec<Setting> {
    vec![
        Setting::new(format!("linekey.{index}.type"), "17"),
        Setting::new(format!("linekey.{index}.value"), url),
        Setting::new(format!("linekey.{index}.label"), label),
    ]
}

/// The wallpaper: downloaded from the URL, then selected by its file name.
fn program_logo(url: &str) -> Vec<Setting> {
    let file = url.rsplit('/').next().unwrap_or(url);
    vec![
        Setting::new("wallpaper_upload.url", url),
        Setting::new("phone_setting.backgrounds", format!("Config:{file}")),
    ]
}

/// `key = value` lines; values are written as they are (one line each, checked before).
fn write_settings(settings: &[Setting]) -> String {
    let mut out = String::from("#!version:1.0.0.1\n");
    for setting in settings {
        out.push_str(&format!("{} = {}\n", setting.key, setting.value));
    }
    out
}

use Carries::{Account, Call, Device};

/// Every `action_url.<key>` of docs/vendors.md §1.1, with its normalised name.
static EVENTS: &[EventSpec] = &[
    event(
        "setup_completed",
        EventKind::SetupCompleted,
        Device,
        "action_url.setup_completed",
    ),
    event(
        "registered",
        EventKind::Registered,
        Account,
        "action_url.registered",
    ),
    event(
        "unregistered",
        EventKind::Unregistered,
        Account,
        "action_url.unregistered",
    ),
    event(
        "register_failed",
        EventKind::RegisterFailed,
        Account,
        "action_url.register_failed",
    ),
    event("off_hook", EventKind::OffHook, Call, "action_url.off_hook"),
    event("on_hook", EventKind::OnHook, Call, "action_url.on_hook"),
    event(
        "incoming_call",
        EventKind::IncomingCall,
        Call,
        "action_url.incoming_call",
    ),
    event(
        "outgoing_call",
        EventKind::OutgoingCall,
        Call,
        "action_url.outgoing_call",
    ),
    event(
        "call_established",
        EventKind::CallEstablished,
        Call,
        "action_url.call_established",
    ),
    event(
        "call_terminated",
        EventKind::CallTerminated,
        Call,
        "action_url.call_terminated",
    ),
    event("dnd_on", EventKind::DndOn, Account, "action_url.dnd_on"),
    event("dnd_off", EventKind::DndOff, Account, "action_url.dnd_off"),
    forward(
        "always_fwd_on",
        EventKind::ForwardOn,
        ForwardKind::Always,
        "action_url.always_fwd_on",
    ),
    forward(
        "always_fwd_off",
        EventKind::ForwardOff,
        ForwardKind::Always,
        "action_url.always_fwd_off",
    ),
    forward(
        "busy_fwd_on",
        EventKind::ForwardOn,
        ForwardKind::Busy,
        "action_url.busy_fwd_on",
    ),
    forward(
        "busy_fwd_off",
        EventKind::ForwardOff,
        ForwardKind::Busy,
        "action_url.busy_fwd_off",
    ),
    forward(
        "no_answer_fwd_on",
        EventKind::ForwardOn,
        ForwardKind::NoAnswer,
        "action_url.no_answer_fwd_on",
    ),
    forward(
        "no_answer_fwd_off",
        EventKind::ForwardOff,
        ForwardKind::NoAnswer,
        "action_url.no_answer_fwd_off",
    ),
    event(
        "transfer_call",
        EventKind::Transfer,
        Call,
        "action_url.transfer_call",
    ),
    event(
        "blind_transfer_call",
        EventKind::BlindTransfer,
        Call,
        "action_url.blind_transfer_call",
    ),
    event(
        "attended_transfer_call",
        EventKind::AttendedTransfer,
        Call,
        "action_url.attended_transfer_call",
    ),
    event("hold", EventKind::Hold, Call, "action_url.hold"),
    event("unhold", EventKind::Unhold, Call, "action_url.unhold"),
    event("held", EventKind::Held, Call, "action_url.held"),
    event("unheld", EventKind::Unheld, Call, "action_url.unheld"),
    event("mute", EventKind::Mute, Call, "action_url.mute"),
    event("unmute", EventKind::Unmute, Call, "action_url.unmute"),
    event(
        "missed_call",
        EventKind::MissedCall,
        Call,
        "action_url.missed_call",
    ),
    event(
        "ip_change",
        EventKind::IpChanged,
        Device,
        "action_url.ip_change",
    ),
    event(
        "idle_to_busy",
        EventKind::Busy,
        Call,
        "action_url.idle_to_busy",
    ),
    event(
        "busy_to_idle",
        EventKind::Idle,
        Call,
        "action_url.busy_to_idle",
    ),
    event(
        "forward_incoming_call",
        EventKind::CallForwarded,
        Call,
        "action_url.forward_incoming_call",
    ),
    event(
        "reject_incoming_call",
        EventKind::CallRejected,
        Call,
        "action_url.reject_incoming_call",
    ),
    event(
        "answer_new_incoming_call",
        EventKind::CallWaitingAnswered,
        Call,
        "action_url.answer_new_incoming_call",
    ),
    event(
        "transfer_finished",
        EventKind::TransferFinished,
        Call,
        "action_url.transfer_finished",
    ),
    event(
        "transfer_failed",
        EventKind::TransferFailed,
        Call,
        "action_url.transfer_failed",
    ),
    event(
        "call_waiting_on",
        EventKind::CallWaitingOn,
        Account,
        "action_url.call_waiting_on",
    ),
    event(
        "call_waiting_off",
        EventKind::CallWaitingOff,
        Account,
        "action_url.call_waiting_off",
    ),
    event("headset", EventKind::HeadsetKey, Call, "action_url.headset"),
    event(
        "handfree",
        EventKind::HandsfreeKey,
        Call,
        "action_url.handfree",
    ),
    event(
        "cancel_callout",
        EventKind::CallCancelled,
        Call,
        "action_url.cancel_callout",
    ),
    event(
        "remote_busy",
        EventKind::RemoteBusy,
        Call,
        "action_url.remote_busy",
    ),
    event(
        "call_remote_canceled",
        EventKind::RemoteCancelled,
        Call,
        "action_url.call_remote_canceled",
    ),
    event(
        "setup_autop_finish",
        EventKind::Provisioned,
        Device,
        "action_url.setup_autop_finish",
    ),
    event(
        "peripheral_information",
        EventKind::Peripheral,
        Device,
        "action_url.peripheral_information",
    ),
    event(
        "vpn_ip",
        EventKind::VpnIpChanged,
        Device,
        "action_url.vpn_ip",
    ),
];

fn recognise(user_agent: &str) -> Option<Identity> {
    let identity = parse_plain_user_agent(user_agent, "Yealink");
    let oui_match = identity
        .mac
        .as_ref()
        .is_some_and(|mac| SPEC.ouis.contains(&mac.oui()));
    (user_agent.to_ascii_lowercase().contains("yealink") || oui_match).then_some(identity)
}

fn key(value: &str) -> PhoneRequest {
    PhoneRequest::get(format!("/servlet?key={value}"))
}

fn build(command: &Command, target: &Target) -> Result<PhoneRequest, CommandError> {
    let call_key = |name: &str| match &target.call_id {
        Some(id) => key(&format!("{name}:{}", encode_query_value(id))),
        None => key("F_HOLD"),
    };
    Ok(match (command.kind, &command.arg) {
        (CommandKind::Dial, CommandArg::Number(number)) => {
            if command.line.is_some() {
                return Err(CommandError::BadArgument(
                    "Yealink dials from the identity in the phone's `line` setting; a per-command `line` is not supported".into(),
                ));
            }
            // `key=number=` must come first and nothing may trail `outgoing_uri` (docs/vendors.md §1.3).
            let mut path = format!("/servlet?key=number={}", encode_query_value(number));
            if let Some(line) = &target.line {
                path.push_str("&outgoing_uri=");
                path.push_str(&encode_query_value(line));
            }
            PhoneRequest::get(path)
        }
        (CommandKind::Answer, _) => key("ANSWER"),
        (CommandKind::Hangup, _) => key("CALLEND"),
        (CommandKind::Reject, _) => key("X"),
        (CommandKind::Hold, _) => call_key("HOLD"),
        (CommandKind::Resume, _) => call_key("UNHOLD"),
        (CommandKind::Transfer, CommandArg::Number(number)) => {
            key(&format!("BTrans={}", encode_query_value(number)))
        }
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
        (CommandKind::Reboot, _) => key("Reboot"),
        (CommandKind::Provision, _) => key("AutoP"),
        (CommandKind::Refresh, _) => {
            PhoneRequest::get("/servlet?phonecfg=get&accounts=1&dnd=1&fw=1".into())
        }
        (CommandKind::Message, CommandArg::Text(text)) => PhoneRequest {
            method: Method::Post,
            path_and_query: "/servlet?push=xml".into(),
            body: Some(("text/xml", text_screen(text))),
        },
        (kind, _) => {
            return Err(CommandError::Unsupported {
                vendor: SPEC.name,
                command: kind.name(),
            })
        }
    })
}

/// A Yealink XML text screen; the body framing is the documented `YealinkIPPhoneTextScreen`.
fn text_screen(text: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<YealinkIPPhoneTextScreen Beep=\"yes\" Timeout=\"60\">\n<Title>phone2mqtt</Title>\n<Text>{}</Text>\n</YealinkIPPhoneTextScreen>\n",
        xml_escape(text)
    )
}

fn read_reply(command: &Command, reply: &PhoneReply) -> Result<ReplyOutcome, CommandError> {
    if command.kind != CommandKind::Refresh {
        return Ok(ReplyOutcome::default());
    }
    let refreshed = parse_status(&reply.body);
    let data = serde_json::json!({
        "dnd": refreshed.dnd,
        "firmware": refreshed.firmware,
        "lines": refreshed.lines,
    });
    Ok(ReplyOutcome {
        data: Some(data),
        refreshed: Some(refreshed),
        call_ended: false,
    })
}

/// Reads the `phonecfg=get` reply. Yealink does not document its format (docs/vendors.md §1.3);
/// the clients that read it treat it as INI (`FirmwareVersion=`, `DND=`) and take account lines
/// split on `|` (1 label, 2 register name, 3 display name, 4 status, 5 outgoing URI). Anything
/// else is ignored rather than guessed.
pub fn parse_status(body: &str) -> Refreshed {
    let mut refreshed = Refreshed::default();
    for raw in body.lines() {
        let line = raw.trim();
        if line.to_ascii_lowercase().starts_with("account") && line.contains('|') {
            let fields: Vec<&str> = line.split('|').map(str::trim).collect();
            let number = fields
                .get(1)
                .and_then(|f| f.parse::<u32>().ok())
                .unwrap_or(refreshed.lines.len() as u32 + 1);
            let user = fields.get(2).copied().unwrap_or_default().to_string();
            let registered = fields.get(4).is_some_and(|status| {
                let status = status.to_ascii_lowercase();
                status == "registered" || status == "1"
            });
            refreshed.lines.push(Line {
                line: number,
                user,
                registered,
            });
            continue;
        }
        let Some((name, value)) = line.split_once('=') else {
            continue;
        };
        let value = value.trim();
        match name.trim().to_ascii_lowercase().as_str() {
            "firmwareversion" | "firmware" | "fw" => refreshed.firmware = Some(value.to_string()),
            "dnd" => {
                refreshed.dnd = match value.to_ascii_lowercase().as_str() {
                    "1" | "on" | "true" | "enabled" => Some(true),
                    "0" | "off" | "false" | "disabled" => Some(false),
                    _ => None,
                }
            }
            _ => {}
        }
    }
    refreshed
}

fn provision(ctx: &ProvisionCtx) -> String {
    let mut out = String::from("#!version:1.0.0.1\n");
    out.push_str("## phone2mqtt: Action URL and Action URI settings.\n");
    out.push_str("## Every event is sent to the agent; remote control is allowed from it alone.\n");
    out.push_str("features.action_uri.enable = 1\n");
    out.push_str(&format!(
        "features.action_uri_limit_ip = {}\n",
        ctx.agent_host
    ));
    out.push_str("features.show_action_uri_option = 0\n");
    out.push_str(&format!("push_xml.server = {}\n", ctx.agent_host));
    for event in SPEC.events {
        if let Some(url) = ctx.action_url(&SPEC, event) {
            out.push_str(&format!("{} = {url}\n", event.setting));
        }
    }
    out
}

/// `<mac>.boot` for `[provisioning] yealink_boot`: the site's file first, then phone2mqtt's
/// settings for this phone, each by `include:config` (docs/vendors.md §1.7).
fn boot_file(site_url: &str, own_url: &str) -> String {
    format!(
        "#!version:1.0.0.1\n## phone2mqtt: the site's own file first, then phone2mqtt's settings for this phone.\ninclude:config \"{site_url}\"\ninclude:config \"{own_url}\"\n"
    )
}

/// `<mac>.cfg` (12 lowercase hex digits) and the common `y0000000000XX.cfg`; the boot files
/// `<mac>.boot` and `y000000000000.boot` that V8x firmware asks for first.
fn provision_file(path: &str) -> Option<Option<PhoneId>> {
    if let Some(name) = path.strip_suffix(".boot") {
        if name == "y000000000000" {
            return Some(None);
        }
        let is_mac = name.len() == 12
            && name
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        return is_mac.then(|| PhoneId::parse(name));
    }
    let name = path.strip_suffix(".cfg")?;
    if name.len() == 12
        && name
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return Some(PhoneId::parse(name));
    }
    let common = name.strip_prefix("y0000000000")?;
    (common.len() == 2 && common.bytes().all(|b| b.is_ascii_alphanumeric())).then_some(None)
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
                "/servlet?key=number=%2B49301234&outgoing_uri=1001@pbx.example.com",
            ),
            ("answer", "", "/servlet?key=ANSWER"),
            ("hangup", "", "/servlet?key=CALLEND"),
            ("reject", "", "/servlet?key=X"),
            ("hold", "", "/servlet?key=F_HOLD"),
            ("transfer", "1002", "/servlet?key=BTrans=1002"),
            ("dnd", "on", "/servlet?key=DNDOn"),
            ("dnd", "off", "/servlet?key=DNDOff"),
            ("volume_up", "", "/servlet?key=VOLUME_UP"),
            ("volume_down", "", "/servlet?key=VOLUME_DOWN"),
            ("mute", "", "/servlet?key=MUTE"),
            ("key", "F1 OK #", "/servlet?key=F1;OK;POUND"),
            ("reboot", "", "/servlet?key=Reboot"),
            ("provision", "", "/servlet?key=AutoP"),
            ("refresh", "", "/servlet?phonecfg=get&accounts=1&dnd=1&fw=1"),
        ];
        for (name, payload, expected) in cases {
            assert_eq!(
                request(name, payload, &target).path_and_query,
                expected,
                "{name}"
            );
        }
        let with_call = Target {
            call_id: Some("7".into()),
            ..Target::default()
        };
        assert_eq!(
            request("resume", "", &with_call).path_and_query,
            "/servlet?key=UNHOLD:7"
        );
        assert_eq!(
            request("dial", "*21#", &Target::default()).path_and_query,
            "/servlet?key=number=*21%23"
        );
        let message = request("message", "Lunch <now> & then", &target);
        assert_eq!(message.method, Method::Post);
        assert!(message
            .body
            .unwrap()
            .1
            .contains("Lunch &lt;now&gt; &amp; then"));
    }

    #[test]
    fn logo_is_unsupported_and_named() {
        let cmd = command::parse("logo", b"http://x/logo.png").1.unwrap();
        assert_eq!(
            build(&cmd, &Target::default()).unwrap_err().to_string(),
            "Yealink phones cannot do `logo`"
        );
    }

    #[test]
    fn status_reply_is_read() {
        let body = "FirmwareVersion=28.72.0.1\nDND=1\nAccount|1|1001|Anna|Registered|1001@pbx\nAccount|2|1002|Bob|Unregistered|1002@pbx\n";
        let status = parse_status(body);
        assert_eq!(status.dnd, Some(true));
        assert_eq!(status.firmware.as_deref(), Some("28.72.0.1"));
        assert_eq!(status.lines.len(), 2);
        assert!(status.lines[0].registered && !status.lines[1].registered);
        assert_eq!(status.lines[1].user, "1002");
    }

    #[test]
    fn provisioning_covers_every_event() {
        let ctx = ProvisionCtx {
            public_url: "http://192.168.1.10:8080".into(),
            token: Some("tok".into()),
            agent_host: "192.168.1.10".into(),
            format: None,
        };
        let text = provision(&ctx);
        assert!(text.starts_with("#!version:1.0.0.1\n"));
        assert!(text.contains("features.show_action_uri_option = 0"));
        assert!(text.contains("features.action_uri_limit_ip = 192.168.1.10"));
        assert!(text.contains("action_url.incoming_call = http://192.168.1.10:8080/action/tok/yealink/incoming_call?mac=$mac&ip=$ip&model=$model&firmware=$firmware&active_user=$active_user&active_host=$active_host&local=$local&remote=$remote&display_local=$display_local&display_remote=$display_remote&call_id=$call_id\n"));
        assert_eq!(text.matches("action_url.").count(), SPEC.events.len());
        for line in text.lines().filter(|l| l.starts_with("action_url.")) {
            assert!(line.len() < 511 + 40, "{line} is too long for a Yealink");
        }
    }

    #[test]
    fn provisioning_paths() {
        assert_eq!(
            provision_file("0015654aa937.cfg"),
            Some(PhoneId::parse("0015654aa937"))
        );
        assert_eq!(provision_file("y000000000028.cfg"), Some(None));
        assert_eq!(provision_file("0015654AA937.cfg"), None);
        assert_eq!(provision_file("index.html"), None);
    }
}
