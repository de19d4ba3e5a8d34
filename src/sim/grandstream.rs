//! A Grandstream phone on the wire (docs/vendors.md §3): the CTI API `GET /cgi-bin/api-<function>`
//! with the admin password as `passcode` in the query (or `password` in the older `make_call`
//! form), answered 200 with `{"response": ..., "body": ...}` JSON, refusals included; the
//! provisioning file `cfg<mac>.xml` in the P-value or the v2 alias form; `$mac` as 12 lowercase
//! hex digits and `$remote` as a plain number.
//!
//! Simulation choices that docs/vendors.md does not settle, each marked (derived) below:
//! - a wrong or missing passcode gets HTTP 200 `{"response":"error","body":"unauthorized"}`;
//! - query values are form-decoded, so a raw `+` becomes a space (and a dial string with a
//!   space fails): a driver that forgets to encode `+` fails here as it would on a CGI;
//! - MPK1 is programmed as DND on this phone, so `keys=MPK1` toggles DND;
//! - Remote Control (Action URI Support, Allowed IP List, pop-up) counts as set up by hand, since
//!   provisioning cannot set it (its P-values are unknown).

use crate::model::{CallState, PhoneId};
use crate::phone_vendors::grandstream::SPEC;
use crate::phone_vendors::PhoneOptions;
use crate::sim::xml::xml_leaves;
use crate::sim::{
    form_decode, query_pairs, settings, split_target, AccessCtx, Action, Identity, Personality,
    Provisioned, Reply, Request, Snapshot,
};

pub static PERSONALITY: Personality = Personality {
    vendor: &SPEC,
    default_model: "GXP1628",
    default_firmware: "1.0.4.138",
    user_agent,
    provisioning_files,
    read_provisioning,
    check_access,
    parse_request,
    reply,
    mac_value: |mac| mac.to_string(),
    remote_value: |user, _host| user.to_string(),
    read_settings,
    key_url: |_, _| None,
    // P2916 = 1: the wallpaper is downloaded from P2917.
    logo_url: |settings| {
        (settings.get("P2916").map(String::as_str) == Some("1"))
            .then(|| settings.get("P2917").cloned())
            .flatten()
    },
    boot_file: None,
    // The key it has programmed as DND.
    phone_options: || PhoneOptions {
        dnd_key: Some(DND_KEY.into()),
        ..PhoneOptions::default()
    },
};

/// P-values by name; v2 `<item name="...">` by its alias.
fn read_settings(text: &str, settings: &mut settings::Settings) {
    for leaf in xml_leaves(text) {
        let key = match (leaf.name(), leaf.attrs.get("name")) {
            ("item", Some(alias)) => alias.clone(),
            (name, _) => name.to_string(),
        };
        settings.insert(key, leaf.text);
    }
}

/// The key this simulated phone has programmed as DND (derived: a real phone's MPKs are
/// whatever its owner programmed).
pub const DND_KEY: &str = "MPK1";

fn user_agent(identity: &Identity) -> String {
    format!(
        "Grandstream Model HW {} SW {} DevId {}",
        identity.model, identity.firmware, identity.mac
    )
}

fn provisioning_files(mac: &PhoneId) -> Vec<String> {
    vec![format!("cfg{mac}.xml")]
}

/// The Action URL settings by P-value and by v2 alias, transcribed from docs/vendors.md §3.1 again
/// here rather than taken from the driver, so that the two cannot share a mistake.
const SETTINGS: &[(&str, &str)] = &[
    ("P8304", "setupCompleted"),
    ("P8305", "registered"),
    ("P8306", "unregistered"),
    ("P8308", "offHook"),
    ("P8309", "onHook"),
    ("P8310", "incomingCall"),
    ("P8311", "outgoingCall"),
    ("P8312", "missedCall"),
    ("P8313", "establishedCall"),
    ("P8314", "terminatedCall"),
    ("P8316", "openDnd"),
    ("P8317", "closedDnd"),
    ("P8318", "openForward"),
    ("P8319", "closedForward"),
    ("P8320", "blindTransfer"),
    ("P8321", "attendedTransfer"),
    ("P8324", "holdCall"),
    ("P8325", "unholdCall"),
    ("P8330", "openSyslog"),
    ("P8331", "closedSyslog"),
];

/// The wire event a P-value reports, through the driver's event table (its `setting`).
fn wire_for(p_value: &str) -> Option<&'static str> {
    SPEC.events
        .iter()
        .find(|e| e.setting == p_value)
        .map(|e| e.wire)
}

/// Reads `<config version="1">` P-values (`<P8310>url</P8310>`) and `<config version="2">`
/// items (`<item name="ons.actionUrl.incomingCall">url</item>`); comments are skipped and each
/// form is read only inside its own config version, as the phone does.
fn read_provisioning(text: &str, provisioned: &mut Provisioned) {
    for leaf in xml_leaves(text) {
        let Some(config) = leaf.path.len().checked_sub(2) else {
            continue;
        };
        if leaf.path[config] != "config" {
            continue;
        }
        let name = leaf.name();
        let p_value = match leaf.outer[config].get("version").map(String::as_str) {
            Some("1") => {
                let numbered = name.len() > 1
                    && name.starts_with('P')
                    && name[1..].chars().all(|c| c.is_ascii_digit());
                numbered.then_some(name)
            }
            Some("2") if name == "item" => leaf
                .attrs
                .get("name")
                .and_then(|item| item.strip_prefix("ons.actionUrl."))
                .and_then(|alias| SETTINGS.iter().find(|(_, a)| *a == alias))
                .map(|(p, _)| *p),
            _ => None,
        };
        if let Some(wire) = p_value.and_then(wire_for) {
            provisioned.action_urls.insert(wire.to_string(), leaf.text);
        }
    }
}

fn param(query: &str, name: &str) -> Option<String> {
    query_pairs(query)
        .into_iter()
        .find(|(key, _)| *key == name)
        .map(|(_, value)| form_decode(value))
}

fn json_reply(response: &str, body: serde_json::Value) -> Reply {
    Reply::new(
        200,
        serde_json::json!({ "response": response, "body": body }).to_string(),
    )
}

fn unknown() -> Reply {
    json_reply("error", "unknown".into())
}

/// The CTI checks the admin password given as `passcode`; the older `make_call` form gives it
/// as `password`. A refusal is HTTP 200 with an error body (derived, see the module comment).
fn check_access(ctx: &AccessCtx<'_>) -> Result<(), Reply> {
    let (path, query) = split_target(ctx.request);
    if !path.starts_with("/cgi-bin/api-") && path != "/cgi-bin/api.values.get" {
        return Ok(());
    }
    let matches = |name: &str| param(query, name).as_deref() == Some(ctx.password);
    if matches("passcode") || (path == "/cgi-bin/api-make_call" && matches("password")) {
        Ok(())
    } else {
        Err(json_reply("error", "unauthorized".into()))
    }
}

fn parse_request(request: &Request) -> Result<Vec<Action>, Reply> {
    let (path, query) = split_target(request);
    if path == "/cgi-bin/api.values.get" {
        return Ok(vec![Action::Status]);
    }
    let Some(function) = path.strip_prefix("/cgi-bin/api-") else {
        return Err(Reply::new(404, "Not Found"));
    };
    if request.method != axum::http::Method::GET {
        return Err(unknown());
    }
    match function {
        "make_call" => {
            let number = param(query, "phonenumber").ok_or_else(unknown)?;
            let valid = !number.is_empty()
                && number.chars().all(|c| {
                    c.is_ascii_alphanumeric()
                        || matches!(c, '+' | '*' | '#' | '@' | '.' | '-' | '_')
                });
            if !valid {
                return Err(json_reply("error", "failed".into()));
            }
            if let Some(account) = param(query, "account") {
                if account.parse::<u8>().map_or(true, |a| a > 15) {
                    return Err(json_reply("error", "failed".into()));
                }
            }
            Ok(vec![Action::Dial(number)])
        }
        "phone_operation" => {
            let action = match param(query, "cmd").as_deref() {
                Some("acceptcall") => Action::Answer,
                Some("endcall") => Action::Hangup,
                Some("rejectcall") => Action::Reject,
                Some("holdcall") => Action::Hold,
                // (unverified) community spellings, docs/vendors.md §3.3.
                Some("unhold" | "unholdcall") => Action::Resume,
                // Cancels the call being dialled.
                Some("cancel") => Action::Reject,
                _ => return Err(unknown()),
            };
            Ok(vec![action])
        }
        "send_key" => {
            let keys = param(query, "keys").ok_or_else(unknown)?;
            keys.split(':').map(key_action).collect()
        }
        "sys_operation" => match param(query, "request").as_deref() {
            // A factory reset is simulated as a reboot.
            Some("REBOOT" | "RESET") => Ok(vec![Action::Reboot]),
            _ => Err(unknown()),
        },
        "get_line_status" | "get_phone_status" | "get_accounts" => Ok(vec![Action::Status]),
        _ => Err(unknown()),
    }
}

/// One `api-send_key` key name of docs/vendors.md §3.3; anything else is unknown, so a driver that
/// drifts from the reference fails in tests. `#` arrives as `%23`; there is no `+` key.
fn key_action(key: &str) -> Result<Action, Reply> {
    const NAMED: &[&str] = &[
        "STAR", "#", "SEND", "OK", "UP", "DOWN", "LEFT", "RIGHT", "LOCK", "UNLOCK",
        // A forum says these exist too (secondary).
        "CONF", "TRANSFER",
    ];
    let action = match key {
        "OFFHOOK" => Action::Answer,
        "ONHOOK" => Action::Hangup,
        "HOLD" => Action::ToggleHold,
        DND_KEY => Action::ToggleDnd,
        k if k.len() == 1 && k.chars().all(|c| c.is_ascii_digit()) => Action::Key(k.into()),
        k if NAMED.contains(&k) => Action::Key(k.into()),
        k if k
            .strip_prefix("MPK")
            .is_some_and(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit())) =>
        {
            Action::Key(k.into())
        }
        _ => return Err(unknown()),
    };
    Ok(action)
}

fn line_state(call_state: CallState) -> &'static str {
    // `idle` is documented; the others as community code reads them (`dialing` derived).
    match call_state {
        CallState::Idle => "idle",
        CallState::Ringing => "ringing",
        CallState::Dialing => "dialing",
        CallState::Talking => "connected",
        CallState::Held => "onhold",
    }
}

fn reply(request: &Request, actions: &[Action], snapshot: &Snapshot) -> Reply {
    let (path, query) = split_target(request);
    if path == "/cgi-bin/api.values.get" {
        // The values asked for, colon-separated; unknown ones come back empty.
        let names = param(query, "request").unwrap_or_default();
        let body: serde_json::Map<String, serde_json::Value> = names
            .split(':')
            .filter(|n| !n.is_empty())
            .map(|n| {
                let value = snapshot.settings.get(n).cloned().unwrap_or_default();
                (n.to_string(), serde_json::Value::String(value))
            })
            .collect();
        return json_reply("success", serde_json::Value::Object(body));
    }
    let function = path.strip_prefix("/cgi-bin/api-").unwrap_or_default();
    let state = snapshot.call_state;
    match function {
        "make_call" => {
            let dialled = matches!(state, CallState::Dialing | CallState::Talking)
                && param(query, "phonenumber") == snapshot.remote;
            if dialled {
                json_reply("success", "complete".into())
            } else {
                json_reply("error", "failed".into())
            }
        }
        "phone_operation" => {
            // Success when the phone ended up where the operation leads.
            let reached = match actions.first() {
                Some(Action::Answer | Action::Resume) => state == CallState::Talking,
                Some(Action::Hold) => state == CallState::Held,
                Some(Action::Hangup | Action::Reject) => state == CallState::Idle,
                _ => false,
            };
            if reached {
                json_reply("success", true.into())
            } else {
                json_reply("error", false.into())
            }
        }
        "send_key" => json_reply("success", "complete".into()),
        "sys_operation" => {
            let body = if param(query, "request").as_deref() == Some("RESET") {
                "reset"
            } else {
                "savereboot"
            };
            json_reply("success", body.into())
        }
        "get_line_status" => {
            let mut lines = vec![serde_json::json!({
                "line": 1,
                "state": line_state(state),
                "acct": if state == CallState::Idle { serde_json::json!("") } else { serde_json::json!(0) },
                "remotename": snapshot.remote_name.clone().unwrap_or_default(),
                "remotenumber": snapshot.remote.clone().unwrap_or_default(),
                "active": u8::from(state != CallState::Idle),
            })];
            for line in 2..=3 {
                lines.push(serde_json::json!({
                    "line": line, "state": "idle", "acct": "", "remotename": "",
                    "remotenumber": "", "active": 0,
                }));
            }
            json_reply("success", lines.into())
        }
        // Shapes as community code reads them (secondary); the driver does not use these.
        "get_phone_status" => json_reply(
            "success",
            if state == CallState::Idle {
                "available"
            } else {
                "busy"
            }
            .into(),
        ),
        "get_accounts" => json_reply(
            "success",
            serde_json::json!([{
                "id": 1,
                "sip_server": "pbx.example.com",
                "sip_id": snapshot.line_user,
                "name": snapshot.line_user,
                "reg": u8::from(snapshot.registered),
            }]),
        ),
        _ => unknown(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::phone_vendors::ProvisionCtx;

    fn ctx(format: Option<&str>) -> ProvisionCtx {
        crate::sim::testing::provision_ctx("192.168.1.10", format)
    }

    /// What `phone2mqtt provision grandstream` prints, in both forms, is what this phone reads:
    /// every event's URL, unescaped, under the driver's wire name.
    #[test]
    fn reads_both_provisioning_forms_the_driver_writes() {
        for format in [None, Some("v2")] {
            let text = (SPEC.provision)(&ctx(format));
            let mut provisioned = Provisioned::default();
            read_provisioning(&text, &mut provisioned);
            for event in SPEC.events {
                let has_alias = SETTINGS.iter().any(|(p, _)| *p == event.setting);
                if format.is_some() && !has_alias {
                    assert!(!provisioned.action_urls.contains_key(event.wire));
                    continue;
                }
                assert_eq!(
                    provisioned.action_urls.get(event.wire),
                    ctx(format).action_url(&SPEC, event).as_ref(),
                    "{format:?} {}",
                    event.wire
                );
            }
        }
        let mut provisioned = Provisioned::default();
        read_provisioning(&(SPEC.provision)(&ctx(Some("v2"))), &mut provisioned);
        assert_eq!(
            provisioned.action_urls["incoming_call"],
            "http://192.168.1.10:8080/action/tok/grandstream/incoming_call?mac=$mac&phone_ip=$phone_ip&product=$product&program_version=$program_version&active_user=$active_user&active_host=$active_host&local=$local&remote=$remote&display_local=$display_local&display_remote=$display_remote&call-id=$call-id"
        );
    }

    #[test]
    fn reads_hand_written_files_strictly() {
        let text = r#"<?xml version="1.0"?>
<gs_provision version="1">
  <mac>c074ad2bd859</mac>
  <!-- <P8311>http://commented/out</P8311> -->
  <config version="1">
    <P8310>http://a/in?mac=$mac&amp;remote=$remote</P8310>
    <P2>admin</P2>
    <item name="ons.actionUrl.missedCall">http://wrong/form</item>
  </config>
  <config version="2">
    <item name="ons.actionUrl.closedDnd">http://b/off</item>
    <item name="ons.actionUrl.closeDnd">http://b/misspelt</item>
    <P8312>http://wrong/form</P8312>
  </config>
</gs_provision>"#;
        let mut provisioned = Provisioned::default();
        read_provisioning(text, &mut provisioned);
        assert_eq!(
            provisioned.action_urls["incoming_call"],
            "http://a/in?mac=$mac&remote=$remote"
        );
        assert_eq!(provisioned.action_urls["dnd_off"], "http://b/off");
        assert_eq!(provisioned.action_urls.len(), 2, "{provisioned:?}");
    }

    #[test]
    fn requests_are_parsed_strictly() {
        assert_eq!(
            parse_request(&Request::get(
                "/cgi-bin/api-make_call?passcode=x&phonenumber=%2B4930123456"
            )),
            Ok(vec![Action::Dial("+4930123456".into())])
        );
        // A raw `+` is a space to a form-decoding CGI: the dial fails.
        assert!(parse_request(&Request::get(
            "/cgi-bin/api-make_call?passcode=x&phonenumber=+4930"
        ))
        .is_err());
        assert_eq!(
            parse_request(&Request::get(
                "/cgi-bin/api-make_call?phonenumber=1002&account=1&password=x"
            )),
            Ok(vec![Action::Dial("1002".into())])
        );
        assert_eq!(
            parse_request(&Request::get(
                "/cgi-bin/api-phone_operation?passcode=x&cmd=holdcall"
            )),
            Ok(vec![Action::Hold])
        );
        assert_eq!(
            parse_request(&Request::get(
                "/cgi-bin/api-send_key?passcode=x&keys=1:STAR:%23:OK:MPK1:MPK3"
            )),
            Ok(vec![
                Action::Key("1".into()),
                Action::Key("STAR".into()),
                Action::Key("#".into()),
                Action::Key("OK".into()),
                Action::ToggleDnd,
                Action::Key("MPK3".into()),
            ])
        );
        assert_eq!(
            parse_request(&Request::get(
                "/cgi-bin/api-sys_operation?passcode=x&request=REBOOT"
            )),
            Ok(vec![Action::Reboot])
        );
        for bad in [
            "/cgi-bin/api-phone_operation?passcode=x&cmd=ANSWER",
            "/cgi-bin/api-send_key?passcode=x&keys=*",
            "/cgi-bin/api-send_key?passcode=x&keys=VOLUME_UP",
            "/cgi-bin/api-send_key?passcode=x&keys=POUND",
            "/cgi-bin/api-sys_operation?passcode=x&request=reboot",
            "/cgi-bin/api-set_dnd?passcode=x&dnd=1",
        ] {
            assert_eq!(parse_request(&Request::get(bad)), Err(unknown()), "{bad}");
        }
        assert_eq!(
            parse_request(&Request::get("/servlet?key=OK"))
                .unwrap_err()
                .status,
            404
        );
    }

    #[test]
    fn the_passcode_is_checked() {
        let provisioned = Provisioned::default();
        let check = |target: &str| {
            let request = Request::get(target);
            check_access(&AccessCtx {
                request: &request,
                peer: "127.0.0.1:1".parse().unwrap(),
                username: "admin",
                password: "pa ss&w+rd",
                provisioned: &provisioned,
                confirmed: false,
                digest: false,
            })
        };
        let good = "pa%20ss%26w%2Brd";
        assert!(check(&format!("/cgi-bin/api-get_line_status?passcode={good}")).is_ok());
        assert!(check(&format!(
            "/cgi-bin/api-make_call?phonenumber=1&account=0&password={good}"
        ))
        .is_ok());
        let refused = json_reply("error", "unauthorized".into());
        assert_eq!(refused.status, 200);
        assert_eq!(
            check("/cgi-bin/api-get_line_status?passcode=admin"),
            Err(refused.clone())
        );
        assert_eq!(check("/cgi-bin/api-get_line_status"), Err(refused.clone()));
        assert_eq!(
            check(&format!("/cgi-bin/api-send_key?password={good}&keys=OK")),
            Err(refused)
        );
    }

    #[test]
    fn user_agent_is_recognised_by_the_driver() {
        let identity = Identity {
            mac: PhoneId::parse("c0:74:ad:2b:d8:59").unwrap(),
            model: "GXP1628".into(),
            firmware: "1.0.4.138".into(),
        };
        let ua = user_agent(&identity);
        assert_eq!(
            ua,
            "Grandstream Model HW GXP1628 SW 1.0.4.138 DevId c074ad2bd859"
        );
        let parsed = (SPEC.recognise)(&ua).unwrap();
        assert_eq!(parsed.mac, Some(identity.mac));
    }
}
