//! Grandstream GXP16xx/17xx/21xx, GRP26xx (also WP8xx, GXV), per docs/vendors.md §3.
//!
//! Action URL ("Outbound Notification"): one P-value per event (`P8310` incoming call...), or
//! its `ons.actionUrl.*` alias in the v2 config form, with `$phone_ip`, `$product`, `$call-id`
//! and plain numbers in `$remote`. Action URI (CTI): `GET /cgi-bin/api-<function>?passcode=...`
//! with the admin web password in the query and no HTTP auth; the phone answers 200 with JSON
//! whose `response` is `success` or `error`, so a refused command is read from the body.

use serde_json::Value;

use crate::model::{
    Command, CommandArg, CommandError, CommandKind, EventKind, ForwardKind, PhoneId,
};
use crate::phone_vendors::{
    encode_query_value, event, forward, xml_escape, AuthHints, Carries, EventSpec, FileFormat,
    HttpAuth, Identity, OptionSpec, PhoneOption, PhoneReply, PhoneRequest, Programming, ReadConfig,
    Refreshed, ReplyOutcome, Setting, Target, VarNames, VendorSpec,
};

mod provisioning;

#[cfg(test)]
use provisioning::v2_alias;
use provisioning::{provision, provision_file};

pub static SPEC: VendorSpec = VendorSpec {
    id: "grandstream",
    name: "Grandstream",
    ouis: &["000b82", "c074ad"],
    events: EVENTS,
    // docs/vendors.md §3.2. `$calldirection`, `$duration`, `$hardware_version`... are not asked for;
    // a URL written by hand that carries them still lands in the event's `vars`.
    vars: VarNames {
        mac: "mac",
        ip: Some("phone_ip"),
        model: Some("product"),
        firmware: Some("program_version"),
        active_user: Some("active_user"),
        active_host: Some("active_host"),
        local: Some("local"),
        remote: Some("remote"),
        display_local: Some("display_local"),
        display_remote: Some("display_remote"),
        call_id: Some("call-id"),
    },
    // Only what the CTI guides document (docs/vendors.md §3.3): no volume, mute, message or
    // transfer, so those are refused naming Grandstream. `provision` restarts the phone (no
    // re-fetch request is documented); `logo` comes from `programming` below.
    commands: &[
        CommandKind::Dial,
        CommandKind::Answer,
        CommandKind::Hangup,
        CommandKind::Reject,
        CommandKind::Hold,
        CommandKind::Resume,
        CommandKind::Dnd,
        CommandKind::Key,
        CommandKind::Reboot,
        CommandKind::Provision,
        CommandKind::Refresh,
    ],
    // docs/vendors.md §3.3: the older `make_call` form, and DND by a programmed key.
    options: &[
        OptionSpec {
            option: PhoneOption::LegacyApi,
            doc: "older firmware: `dial` sends the community form `api-make_call?phonenumber=<N>&account=<0-based>&password=<P>`, which can also name a line",
        },
        OptionSpec {
            option: PhoneOption::DndKey,
            doc: "the multi-purpose key programmed as DND on the phone (`MPK1`), since Grandstream has no DND command: `dnd` presses it only when the state must change; without it DND is shown, not set",
        },
    ],
    http_auth: HttpAuth::InQuery,
    auth_hints: AuthHints {
        unauthorized: "the phone refused the request (401): Grandstream takes the admin web password as `passcode` in the query, so check this phone's `password`; on the phone's web UI under Network > Remote Control set Action URI Support = Enabled, put the agent's IP in the Action URI Allowed IP List and set Remote Control Pop up Window Support = Disabled",
        forbidden: "the phone refused remote control (403): on the phone's web UI under Network > Remote Control set Action URI Support = Enabled, put the agent's IP in the Action URI Allowed IP List and set Remote Control Pop up Window Support = Disabled; the `passcode` sent is this phone's admin password",
    },
    recognise,
    build,
    read_reply,
    provision,
    provision_file,
    provision_files_doc: "`cfg<mac>`, `cfg<mac>.xml`, `cfg.xml`",
    boot_file: None,
    programming: Programming {
        format: FileFormat::Xml,
        key: None,
        key_doc: "none: no MPK/VPK mode that calls a URL is documented",
        logo: Some(program_logo),
        logo_size: |_| (480, 272),
        logo_doc: "`P2916 = 1` (download) and `P2917` (the image's URL) (unverified: agreeing code, no vendor page); PNG scaled to fit 480×272",
        write: write_settings,
    },
    provisioning_credentials: "the web UI's Maintenance > Upgrade and Provisioning, HTTP/HTTPS User Name and HTTP/HTTPS Password",
    read_config: Some(ReadConfig {
        build: read_config_request,
        parse: read_config_reply,
    }),
};

/// The wallpaper from a download server (unverified, see `logo_doc`).
fn program_logo(url: &str) -> Vec<Setting> {
    vec![Setting::new("P2916", "1"), Setting::new("P2917", url)]
}

/// P-values as `<Pnnn>`, other names as v2 `<item name="...">`, in one `<config>`.
fn write_settings(settings: &[Setting]) -> String {
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<gs_provision version=\"1\">\n  <config version=\"1\">\n");
    for setting in settings {
        let value = xml_escape(&setting.value);
        let is_p_value = setting.key.len() > 1
            && setting.key.starts_with('P')
            && setting.key[1..].bytes().all(|b| b.is_ascii_digit());
        if is_p_value {
            out.push_str(&format!("    <{0}>{value}</{0}>\n", setting.key));
        } else {
            out.push_str(&format!(
                "    <item name=\"{}\">{value}</item>\n",
                xml_escape(&setting.key)
            ));
        }
    }
    out.push_str("  </config>\n</gs_provision>\n");
    out
}

/// `GET /cgi-bin/api.values.get?request=P8310:P8311&passcode=...` (vendors' CTI guide).
fn read_config_request(keys: &[String], target: &Target) -> PhoneRequest {
    let request: Vec<String> = keys.iter().map(|k| encode_query_value(k)).collect();
    PhoneRequest::get(format!(
        "/cgi-bin/api.values.get?request={}&passcode={}",
        request.join(":"),
        encode_query_value(&target.password)
    ))
}

/// `{"response":"success","body":{"P8310":"http://..."}}`; values that are not strings are
/// read as their JSON text.
fn read_config_reply(
    reply: &PhoneReply,
) -> Result<std::collections::BTreeMap<String, String>, CommandError> {
    // What is not a Grandstream answer is not quoted back: the address may be any service.
    let json: Value = serde_json::from_str(reply.body.trim())
        .map_err(|_| CommandError::Rejected("not a Grandstream values answer (not JSON)".into()))?;
    if json.get("response").and_then(Value::as_str).is_none() {
        return Err(CommandError::Rejected(
            "not a Grandstream values answer (no `response`)".into(),
        ));
    }
    if json.get("response").and_then(Value::as_str) != Some("success") {
        return Err(CommandError::Rejected(refusal(
            &json.get("body").map(Value::to_string).unwrap_or_default(),
        )));
    }
    let Some(Value::Object(body)) = json.get("body") else {
        return Err(CommandError::Rejected(
            "the values answer has no body".into(),
        ));
    };
    Ok(body
        .iter()
        .map(|(key, value)| {
            let text = value
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| value.to_string());
            (key.clone(), text)
        })
        .collect())
}

// Forward events: The Open/Close Forward events do not say which forward changed; Grandstream's "Open Forward" is reported as `always`, the forward a user turns on from the phone's own menu.
use Carries::{Account, Call, Device};

/// Every Action URL event of docs/vendors.md §3.1. The wire name (the last path segment of the
/// provisioned URL) is the normalised name itself, since Grandstream's own labels are P-values.
///
/// WP826-only events: P8328 busy and P8329 idle are included under the names Yealink's
/// `idle_to_busy`/`busy_to_idle` use. P22171 "answered" is left out (it would duplicate
/// `call_established`, P8313, under another meaning), and so are the P22568/P22570 battery
/// events, whose meaning docs/vendors.md does not give.
static EVENTS: &[EventSpec] = &[
    event(
        "setup_completed",
        EventKind::SetupCompleted,
        Device,
        "P8304",
    ),
    event("registered", EventKind::Registered, Account, "P8305"),
    event("unregistered", EventKind::Unregistered, Account, "P8306"),
    event("off_hook", EventKind::OffHook, Call, "P8308"),
    event("on_hook", EventKind::OnHook, Call, "P8309"),
    event("incoming_call", EventKind::IncomingCall, Call, "P8310"),
    event("outgoing_call", EventKind::OutgoingCall, Call, "P8311"),
    event("missed_call", EventKind::MissedCall, Call, "P8312"),
    event(
        "call_established",
        EventKind::CallEstablished,
        Call,
        "P8313",
    ),
    event("call_terminated", EventKind::CallTerminated, Call, "P8314"),
    event("dnd_on", EventKind::DndOn, Account, "P8316"),
    event("dnd_off", EventKind::DndOff, Account, "P8317"),
    forward(
        "forward_on",
        EventKind::ForwardOn,
        ForwardKind::Always,
        "P8318",
    ),
    forward(
        "forward_off",
        EventKind::ForwardOff,
        ForwardKind::Always,
        "P8319",
    ),
    event("blind_transfer", EventKind::BlindTransfer, Call, "P8320"),
    event(
        "attended_transfer",
        EventKind::AttendedTransfer,
        Call,
        "P8321",
    ),
    event("hold", EventKind::Hold, Call, "P8324"),
    event("unhold", EventKind::Unhold, Call, "P8325"),
    event("syslog_on", EventKind::SyslogOn, Device, "P8330"),
    event("syslog_off", EventKind::SyslogOff, Device, "P8331"),
    event("busy", EventKind::Busy, Call, "P8328"),
    event("idle", EventKind::Idle, Call, "P8329"),
];

/// Reads the three User-Agent forms of docs/vendors.md §3.5:
/// `Grandstream Model HW GXP1628 SW 1.0.4.138 DevId c074ad2bd859`,
/// `Grandstream Model HW GXP2200 V2.2A SW 1.0.1.33 DevId 000b82462d97` (a hardware version
/// after the model) and the older
/// `Grandstream GXP2000 (gxp2000e.bin:1.2.5.3/boot55e.bin:1.1.6.9) DevId 000b822726c8`, where
/// the first `file:version` in the parentheses is the program.
fn recognise(user_agent: &str) -> Option<Identity> {
    let tokens: Vec<&str> = user_agent.split_whitespace().collect();
    let after = |word: &str| {
        tokens
            .iter()
            .position(|t| t.eq_ignore_ascii_case(word))
            .and_then(|i| tokens.get(i + 1))
            .copied()
    };
    let mac = after("DevId").and_then(PhoneId::parse);
    let named = tokens
        .first()
        .is_some_and(|t| t.eq_ignore_ascii_case("grandstream"));
    let oui_match = mac.as_ref().is_some_and(|m| SPEC.ouis.contains(&m.oui()));
    if !named && !oui_match {
        return None;
    }
    let model = after("HW")
        .or_else(|| {
            tokens
                .get(1)
                .copied()
                .filter(|t| named && !t.eq_ignore_ascii_case("Model") && !t.starts_with('('))
        })
        .map(str::to_string);
    let firmware = after("SW")
        .map(str::to_string)
        .or_else(|| {
            let open = user_agent.find('(')?;
            let close = user_agent[open..].find(')')? + open;
            let first = user_agent[open + 1..close].split('/').next()?;
            let (_, version) = first.split_once(':')?;
            Some(version.to_string())
        })
        .or_else(|| {
            // `Grandstream GXP2170 1.0.9.135`, the SIP User-Agent form.
            tokens
                .iter()
                .skip(1)
                .find(|t| {
                    t.split('.').count() >= 3
                        && t.split('.')
                            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
                })
                .map(|t| t.to_string())
        });
    Some(Identity {
        model,
        firmware,
        mac,
    })
}

/// `/cgi-bin/api-<function>?passcode=<P>[&<params>]`, the GRP/GXP CTI form.
fn api(function: &str, target: &Target, params: &str) -> PhoneRequest {
    let mut path = format!(
        "/cgi-bin/api-{function}?passcode={}",
        encode_query_value(&target.password)
    );
    if !params.is_empty() {
        path.push('&');
        path.push_str(params);
    }
    PhoneRequest::get(path)
}

fn operation(target: &Target, cmd: &str) -> PhoneRequest {
    api("phone_operation", target, &format!("cmd={cmd}"))
}

/// A key name as `api-send_key` wants it: `#` percent-encoded, `*` spelled `STAR`.
fn send_key_name(key: &str) -> String {
    match key {
        "#" => "%23".to_string(),
        "*" => "STAR".to_string(),
        other => encode_query_value(other),
    }
}

fn build(command: &Command, target: &Target) -> Result<PhoneRequest, CommandError> {
    Ok(match (command.kind, &command.arg) {
        (CommandKind::Dial, CommandArg::Number(number)) => {
            let number = encode_query_value(number);
            if target.options.legacy_api {
                // The community form for GXP and older firmware: `password=`, 0-based account.
                let account = command.line.map_or(0, |line| line.saturating_sub(1));
                PhoneRequest::get(format!(
                    "/cgi-bin/api-make_call?phonenumber={number}&account={account}&password={}",
                    encode_query_value(&target.password)
                ))
            } else {
                if command.line.is_some() {
                    return Err(CommandError::BadArgument(
                        "the Grandstream CTI `api-make_call` form takes no account; set `legacy_api = true` for this phone to dial with `account=` (older firmware form)".into(),
                    ));
                }
                api("make_call", target, &format!("phonenumber={number}"))
            }
        }
        (CommandKind::Answer, _) => operation(target, "acceptcall"),
        (CommandKind::Hangup, _) => operation(target, "endcall"),
        (CommandKind::Reject, _) => operation(target, "rejectcall"),
        (CommandKind::Hold, _) => operation(target, "holdcall"),
        // (unverified) `unhold` appears only in community code, not in the CTI guides
        // (docs/vendors.md §3.3, §10.3); `unholdcall` is the other spelling seen.
        (CommandKind::Resume, _) => operation(target, "unhold"),
        (CommandKind::Key, CommandArg::Keys(keys)) => {
            let keys: Vec<String> = keys.iter().map(|k| send_key_name(k)).collect();
            api("send_key", target, &format!("keys={}", keys.join(":")))
        }
        (CommandKind::Dnd, CommandArg::OnOff(on)) => {
            // No DND command exists; the documented workaround is a key programmed as DND,
            // which toggles. It is pressed only when the state must change.
            let Some(key) = target.options.dnd_key.as_deref() else {
                return Err(CommandError::BadArgument(
                    "Grandstream phones have no DND command: program a multi-purpose key (MPK) as DND on the phone and set `dnd_key = \"MPK1\"` (that key) for this phone".into(),
                ));
            };
            let valid = !key.is_empty()
                && key.len() <= 24
                && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !valid {
                return Err(CommandError::BadArgument(format!(
                    "`dnd_key = \"{key}\"` is not a Grandstream key name such as MPK1"
                )));
            }
            if target.dnd == *on {
                // Already as asked: still check that the phone answers, without toggling it.
                api("get_line_status", target, "")
            } else {
                api("send_key", target, &format!("keys={}", send_key_name(key)))
            }
        }
        (CommandKind::Reboot, _) => api("sys_operation", target, "request=REBOOT"),
        // No provisioning request is documented; the phone fetches its files while it starts.
        (CommandKind::Provision, _) => api("sys_operation", target, "request=REBOOT"),
        (CommandKind::Refresh, _) => api("get_line_status", target, ""),
        (kind, _) => {
            return Err(CommandError::Unsupported {
                vendor: SPEC.name,
                command: kind.name(),
            })
        }
    })
}

/// Success only when the JSON says `"response":"success"`; the phone answers 200 to refused
/// commands too, with `"response":"error"` and a reason in `body`.
fn read_reply(command: &Command, reply: &PhoneReply) -> Result<ReplyOutcome, CommandError> {
    // What is not a Grandstream answer is not quoted back: the address may be any service.
    let json: Value = serde_json::from_str(reply.body.trim())
        .map_err(|_| CommandError::Rejected("not a Grandstream CTI answer (not JSON)".into()))?;
    let response = json.get("response").and_then(Value::as_str);
    let Some(response) = response else {
        return Err(CommandError::Rejected(
            "not a Grandstream CTI answer (no `response`)".into(),
        ));
    };
    if response != "success" {
        let body = match json.get("body") {
            Some(Value::String(text)) => text.clone(),
            Some(other) => other.to_string(),
            None => "no reason given".into(),
        };
        return Err(CommandError::Rejected(refusal(&body)));
    }
    if command.kind == CommandKind::Reject {
        // Grandstream has no Action URL for a rejected call: the agent ends it itself.
        return Ok(ReplyOutcome {
            call_ended: true,
            ..ReplyOutcome::default()
        });
    }
    if command.kind != CommandKind::Refresh {
        return Ok(ReplyOutcome::default());
    }
    let lines = line_status(&json);
    Ok(ReplyOutcome {
        data: Some(serde_json::json!({ "lines": lines })),
        // Line status says nothing about registration, DND or firmware, so it refreshes none.
        refreshed: Some(Refreshed::default()),
        call_ended: false,
    })
}

/// The phone's reason, with what to do about the ones a user can fix.
fn refusal(body: &str) -> String {
    match body {
        "unauthorized" => "`unauthorized`: check this phone's `password` (Grandstream's `passcode` is the admin web password), and under Network > Remote Control enable Action URI Support, allow the agent's IP and disable Remote Control Pop up Window Support".into(),
        "unknown" => "`unknown`: the phone does not know this request or key name".into(),
        // The phone's own short reason (`false`, `error`...), never a whole document.
        other => format!("`{}`", other.chars().take(40).collect::<String>()),
    }
}

/// `api-get_line_status` lines, renamed to phone2mqtt's spelling: `line`, `state`, `account`
/// (`acct`, a number or an empty string), `remote`, `remote_name`, `active`.
fn line_status(json: &Value) -> Vec<Value> {
    let Some(lines) = json.get("body").and_then(Value::as_array) else {
        return Vec::new();
    };
    lines
        .iter()
        .filter_map(|line| {
            let text = |key: &str| {
                line.get(key)
                    .and_then(Value::as_str)
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
            };
            let number = line.get("line")?.as_u64()?;
            let active = match line.get("active") {
                Some(Value::Bool(b)) => *b,
                Some(Value::Number(n)) => n.as_u64() == Some(1),
                Some(Value::String(s)) => s == "1",
                _ => false,
            };
            let account = match line.get("acct") {
                Some(Value::String(s)) if s.is_empty() => Value::Null,
                Some(value) => value.clone(),
                None => Value::Null,
            };
            Some(serde_json::json!({
                "line": number,
                "state": text("state"),
                "account": account,
                "remote": text("remotenumber"),
                "remote_name": text("remotename"),
                "active": active,
            }))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command;
    use crate::phone_vendors::PhoneOptions;

    fn target() -> Target {
        Target {
            password: "pa ss&w+rd".into(),
            ..Target::default()
        }
    }

    fn request(name: &str, payload: &str, target: &Target) -> Result<PhoneRequest, CommandError> {
        let cmd = command::parse(name, payload.as_bytes()).1.unwrap();
        build(&cmd, target)
    }

    fn path(name: &str, payload: &str, target: &Target) -> String {
        request(name, payload, target).unwrap().path_and_query
    }

    /// The P-values of docs/vendors.md §3.1, written out again here so that a typo in the table
    /// above cannot agree with itself.
    #[test]
    fn p_values_and_aliases_match_vendors_md() {
        let expected = [
            (
                "setup_completed",
                "P8304",
                Some("ons.actionUrl.setupCompleted"),
            ),
            ("registered", "P8305", Some("ons.actionUrl.registered")),
            ("unregistered", "P8306", Some("ons.actionUrl.unregistered")),
            ("off_hook", "P8308", Some("ons.actionUrl.offHook")),
            ("on_hook", "P8309", Some("ons.actionUrl.onHook")),
            ("incoming_call", "P8310", Some("ons.actionUrl.incomingCall")),
            ("outgoing_call", "P8311", Some("ons.actionUrl.outgoingCall")),
            ("missed_call", "P8312", Some("ons.actionUrl.missedCall")),
            (
                "call_established",
                "P8313",
                Some("ons.actionUrl.establishedCall"),
            ),
            (
                "call_terminated",
                "P8314",
                Some("ons.actionUrl.terminatedCall"),
            ),
            ("dnd_on", "P8316", Some("ons.actionUrl.openDnd")),
            ("dnd_off", "P8317", Some("ons.actionUrl.closedDnd")),
            ("forward_on", "P8318", Some("ons.actionUrl.openForward")),
            ("forward_off", "P8319", Some("ons.actionUrl.closedForward")),
            (
                "blind_transfer",
                "P8320",
                Some("ons.actionUrl.blindTransfer"),
            ),
            (
                "attended_transfer",
                "P8321",
                Some("ons.actionUrl.attendedTransfer"),
            ),
            ("hold", "P8324", Some("ons.actionUrl.holdCall")),
            ("unhold", "P8325", Some("ons.actionUrl.unholdCall")),
            ("syslog_on", "P8330", Some("ons.actionUrl.openSyslog")),
            ("syslog_off", "P8331", Some("ons.actionUrl.closedSyslog")),
            ("busy", "P8328", None),
            ("idle", "P8329", None),
        ];
        assert_eq!(SPEC.events.len(), expected.len());
        for (name, p_value, alias) in expected {
            let spec = SPEC
                .events
                .iter()
                .find(|e| e.event.name() == name)
                .unwrap_or_else(|| panic!("no {name}"));
            assert_eq!(spec.setting, p_value, "{name}");
            assert_eq!(v2_alias(p_value), alias, "{name}");
        }
        let forward = SPEC.event("forward_on").unwrap();
        assert_eq!(forward.forward, Some(ForwardKind::Always));
    }

    #[test]
    fn request_lines_match_vendors_md() {
        let target = target();
        let p = "pa%20ss%26w%2Brd";
        let cases = [
            (
                "dial",
                "+49 30 1234",
                format!("/cgi-bin/api-make_call?passcode={p}&phonenumber=%2B49301234"),
            ),
            (
                "dial",
                "*21#",
                format!("/cgi-bin/api-make_call?passcode={p}&phonenumber=*21%23"),
            ),
            (
                "answer",
                "",
                format!("/cgi-bin/api-phone_operation?passcode={p}&cmd=acceptcall"),
            ),
            (
                "hangup",
                "",
                format!("/cgi-bin/api-phone_operation?passcode={p}&cmd=endcall"),
            ),
            (
                "reject",
                "",
                format!("/cgi-bin/api-phone_operation?passcode={p}&cmd=rejectcall"),
            ),
            (
                "hold",
                "",
                format!("/cgi-bin/api-phone_operation?passcode={p}&cmd=holdcall"),
            ),
            (
                "resume",
                "",
                format!("/cgi-bin/api-phone_operation?passcode={p}&cmd=unhold"),
            ),
            (
                "key",
                "1 * # OK MPK2",
                format!("/cgi-bin/api-send_key?passcode={p}&keys=1:STAR:%23:OK:MPK2"),
            ),
            (
                "reboot",
                "",
                format!("/cgi-bin/api-sys_operation?passcode={p}&request=REBOOT"),
            ),
            (
                "refresh",
                "",
                format!("/cgi-bin/api-get_line_status?passcode={p}"),
            ),
        ];
        for (name, payload, expected) in cases {
            assert_eq!(path(name, payload, &target), expected, "{name} {payload}");
        }
    }

    #[test]
    fn legacy_make_call_uses_password_and_a_zero_based_account() {
        let target = Target {
            options: PhoneOptions {
                legacy_api: true,
                ..PhoneOptions::default()
            },
            ..target()
        };
        assert_eq!(
            path("dial", "+49 30 1234", &target),
            "/cgi-bin/api-make_call?phonenumber=%2B49301234&account=0&password=pa%20ss%26w%2Brd"
        );
        assert_eq!(
            path("dial", r#"{"number": "1002", "line": 2}"#, &target),
            "/cgi-bin/api-make_call?phonenumber=1002&account=1&password=pa%20ss%26w%2Brd"
        );
        let err = request(
            "dial",
            r#"{"number": "1002", "line": 2}"#,
            &Target::default(),
        );
        assert!(matches!(err, Err(CommandError::BadArgument(_))));
    }

    #[test]
    fn dnd_presses_the_dnd_key_only_to_change_the_state() {
        let err = request("dnd", "on", &target()).unwrap_err();
        assert!(matches!(err, CommandError::BadArgument(_)));
        assert!(err.to_string().contains("dnd_key"), "{err}");
        let with_key = Target {
            password: "pw".into(),
            options: PhoneOptions {
                dnd_key: Some("MPK1".into()),
                ..PhoneOptions::default()
            },
            ..Target::default()
        };
        assert_eq!(
            path("dnd", "on", &with_key),
            "/cgi-bin/api-send_key?passcode=pw&keys=MPK1"
        );
        assert_eq!(
            path("dnd", "off", &with_key),
            "/cgi-bin/api-get_line_status?passcode=pw"
        );
        let on = Target {
            dnd: true,
            ..with_key.clone()
        };
        assert_eq!(
            path("dnd", "off", &on),
            "/cgi-bin/api-send_key?passcode=pw&keys=MPK1"
        );
        assert_eq!(
            path("dnd", "on", &on),
            "/cgi-bin/api-get_line_status?passcode=pw"
        );
        let bad = Target {
            options: PhoneOptions {
                dnd_key: Some("MPK1&cmd=x".into()),
                ..PhoneOptions::default()
            },
            ..with_key
        };
        assert!(matches!(
            request("dnd", "on", &bad),
            Err(CommandError::BadArgument(_))
        ));
    }

    #[test]
    fn undocumented_commands_are_refused_by_name() {
        for (name, payload) in [
            ("volume_up", ""),
            ("volume_down", ""),
            ("mute", ""),
            ("message", "hi"),
            ("transfer", "1002"),
        ] {
            let err = request(name, payload, &target()).unwrap_err();
            assert_eq!(
                err,
                CommandError::Unsupported {
                    vendor: "Grandstream",
                    command: CommandKind::from_name(name).unwrap().name()
                }
            );
            assert!(!SPEC.supports(CommandKind::from_name(name).unwrap()));
        }
    }

    fn reply(body: &str) -> PhoneReply {
        PhoneReply {
            status: 200,
            body: body.into(),
        }
    }

    #[test]
    fn replies_succeed_only_on_response_success() {
        let answer = command::parse("answer", b"").1.unwrap();
        assert!(read_reply(&answer, &reply(r#"{"response":"success","body":true}"#)).is_ok());
        assert!(read_reply(
            &answer,
            &reply(r#"{"response":"success", "body": "complete"}"#)
        )
        .is_ok());
        let err = read_reply(
            &answer,
            &reply(r#"{"response":"error","body":"unauthorized"}"#),
        )
        .unwrap_err();
        assert!(matches!(err, CommandError::Rejected(_)));
        assert!(err.to_string().contains("unauthorized") && err.to_string().contains("passcode"));
        let err = read_reply(&answer, &reply(r#"{"response":"error","body":false}"#)).unwrap_err();
        assert!(err.to_string().contains("false"), "{err}");
        let err = read_reply(&answer, &reply("<html>Login</html>")).unwrap_err();
        assert!(matches!(err, CommandError::Rejected(_)));
        // Not quoted back: the address may be any service, and the result goes to whoever asked.
        assert!(!err.to_string().contains("Login"), "{err}");
        assert!(err.to_string().contains("not JSON"), "{err}");
        let err = read_reply(&answer, &reply(r#"{"res":"success","secret":"s"}"#)).unwrap_err();
        assert!(!err.to_string().contains("secret"), "{err}");
    }

    #[test]
    fn line_status_is_read() {
        let refresh = command::parse("refresh", b"").1.unwrap();
        let body = r#"{"response":"success", "body": [{"line": 1, "state": "connected", "acct": 0, "remotename": "Anna Schmidt", "remotenumber": "+4930123456", "active": 1}, {"line": 2, "state": "idle", "acct": "", "remotename": "", "remotenumber": "", "active": 0}]}"#;
        let outcome = read_reply(&refresh, &reply(body)).unwrap();
        let data = outcome.data.unwrap();
        assert_eq!(
            data["lines"][0],
            serde_json::json!({"line": 1, "state": "connected", "account": 0, "remote": "+4930123456", "remote_name": "Anna Schmidt", "active": true})
        );
        assert_eq!(data["lines"][1]["remote"], Value::Null);
        assert_eq!(data["lines"][1]["account"], Value::Null);
        assert_eq!(outcome.refreshed, Some(Refreshed::default()));
    }

    #[test]
    fn user_agents_of_vendors_md() {
        let id = recognise("Grandstream Model HW GXP1628 SW 1.0.4.138 DevId c074ad2bd859").unwrap();
        assert_eq!(id.model.as_deref(), Some("GXP1628"));
        assert_eq!(id.firmware.as_deref(), Some("1.0.4.138"));
        assert_eq!(id.mac.unwrap().as_str(), "c074ad2bd859");
        let id =
            recognise("Grandstream Model HW GXP2200 V2.2A SW 1.0.1.33 DevId 000b82462d97").unwrap();
        assert_eq!(id.model.as_deref(), Some("GXP2200"));
        assert_eq!(id.firmware.as_deref(), Some("1.0.1.33"));
        assert_eq!(id.mac.unwrap().as_str(), "000b82462d97");
        let id = recognise(
            "Grandstream GXP2000 (gxp2000e.bin:1.2.5.3/boot55e.bin:1.1.6.9) DevId 000b822726c8",
        )
        .unwrap();
        assert_eq!(id.model.as_deref(), Some("GXP2000"));
        assert_eq!(id.firmware.as_deref(), Some("1.2.5.3"));
        assert_eq!(id.mac.unwrap().as_str(), "000b822726c8");
        let id = recognise("Grandstream GXP2170 1.0.9.135").unwrap();
        assert_eq!(id.model.as_deref(), Some("GXP2170"));
        assert_eq!(id.firmware.as_deref(), Some("1.0.9.135"));
        assert!(id.mac.is_none());
        for other in [
            "Yealink SIP-T46G 28.72.0.1 00:15:65:4a:a9:37",
            "Htek UC903 2.0.4.2 00:1f:c1:1c:22:a9",
            "Fanvil X4 2.10.2.6887 0c383e07e16c",
            "curl/8.0",
            "",
        ] {
            assert!(recognise(other).is_none(), "{other}");
        }
    }
}
