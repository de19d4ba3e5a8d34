//! A Yealink phone on the wire (docs/vendors.md §1): `GET /servlet?key=...` with Basic auth, the
//! `features.action_uri_limit_ip` allow list (blank means nobody), the "Allow remote control?"
//! prompt while `features.show_action_uri_option` is not 0, case-sensitive key values.

use std::net::IpAddr;

use crate::model::PhoneId;
use crate::phone_vendors::yealink::SPEC;
use crate::phone_vendors::PhoneOptions;
use crate::sim::xml::xml_leaves;
use crate::sim::{
    check_credentials, decode, query_pairs, settings, split_target, AccessCtx, Action, Identity,
    Personality, Provisioned, Reply, Request, Snapshot,
};

pub static PERSONALITY: Personality = Personality {
    vendor: &SPEC,
    default_model: "SIP-T46G",
    default_firmware: "28.72.0.1",
    user_agent,
    provisioning_files,
    read_provisioning,
    check_access,
    parse_request,
    reply,
    mac_value: |mac| mac.colon_mac(),
    remote_value: |user, host| format!("sip:{user}@{host}"),
    read_settings: settings::read_key_value,
    key_url,
    logo_url: |settings| settings.get("wallpaper_upload.url").cloned(),
    boot_file: Some(|mac| format!("{mac}.boot")),
    phone_options: PhoneOptions::default,
};

/// A line key of type 17 (URL) requests its value.
fn key_url(settings: &settings::Settings, n: u32) -> Option<String> {
    (settings.get(&format!("linekey.{n}.type"))? == "17")
        .then(|| settings.get(&format!("linekey.{n}.value")).cloned())
        .flatten()
}

fn user_agent(identity: &Identity) -> String {
    format!(
        "Yealink {} {} {}",
        identity.model,
        identity.firmware,
        identity.mac.colon_mac()
    )
}

/// The common file for the model (28 is the T46G's hardware id), then the phone's own.
fn provisioning_files(mac: &PhoneId) -> Vec<String> {
    vec!["y000000000028.cfg".into(), format!("{mac}.cfg")]
}

/// `key = value` lines, read as every other setting is; the Action URLs, the allow list and
/// the prompt are picked out of them.
fn read_provisioning(text: &str, provisioned: &mut Provisioned) {
    let mut lines = settings::Settings::new();
    settings::read_key_value(text, &mut lines);
    for (key, value) in lines {
        if let Some(event) = key.strip_prefix("action_url.") {
            provisioned.action_urls.insert(event.to_string(), value);
        } else if key == "features.action_uri_limit_ip" {
            provisioned.allow_list = Some(value);
        } else if key == "features.show_action_uri_option" {
            provisioned.prompt = Some(value != "0");
        }
    }
}

/// Whether an address is in a Yealink allow list: blank is nobody, `any` is everybody,
/// otherwise a comma list of addresses with `*` per octet.
pub fn allowed(list: &str, ip: IpAddr) -> bool {
    let ip = ip.to_string();
    list.split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .any(|entry| {
            if entry.eq_ignore_ascii_case("any") {
                return true;
            }
            let pattern: Vec<&str> = entry.split('.').collect();
            let octets: Vec<&str> = ip.split('.').collect();
            pattern.len() == octets.len()
                && pattern
                    .iter()
                    .zip(&octets)
                    .all(|(p, o)| *p == "*" || p == o)
        })
}

fn check_access(ctx: &AccessCtx<'_>) -> Result<(), Reply> {
    let list = ctx.provisioned.allow_list.as_deref().unwrap_or("");
    if !allowed(list, ctx.peer.ip()) {
        return Err(Reply::new(
            403,
            "Forbidden: this address is not in the Action URI allow list",
        ));
    }
    check_credentials(ctx, "Yealink")?;
    if ctx.provisioned.prompt.unwrap_or(true) && !ctx.confirmed {
        return Err(Reply::new(
            403,
            "Remote control forbidden: confirm the prompt on the phone",
        ));
    }
    Ok(())
}

fn parse_request(request: &Request) -> Result<Vec<Action>, Reply> {
    let (path, query) = split_target(request);
    if !matches!(
        path,
        "/servlet" | "/cgi-bin/ConfigManApp.com" | "/cgi-bin/cgiServer.exx"
    ) {
        return Err(Reply::new(404, "Not Found"));
    }
    let pairs = query_pairs(query);
    let first = pairs.first().copied();
    match first {
        Some(("key", value)) if value.starts_with("number=") => {
            let number = decode(&value["number=".len()..]);
            if number.is_empty() || number.contains(' ') {
                return Err(Reply::new(400, "Bad Request: invalid number"));
            }
            Ok(vec![Action::Dial(number)])
        }
        Some(("key", value)) => value.split(';').map(key_action).collect(),
        Some(("phonecfg", "get")) => Ok(vec![Action::Status]),
        Some(("push", "xml")) if request.method == axum::http::Method::POST => {
            let text = xml_leaves(&request.body)
                .into_iter()
                .find(|leaf| leaf.name() == "Text")
                .ok_or_else(|| Reply::new(400, "Bad Request: no <Text> in the XML"))?;
            Ok(vec![Action::Message(text.text)])
        }
        _ => Err(Reply::new(400, "Bad Request")),
    }
}

/// One documented key value; anything else is refused, so a driver that drifts from docs/vendors.md
/// fails in tests (key values are case-sensitive: `REBOOT` is not `Reboot`).
fn key_action(value: &str) -> Result<Action, Reply> {
    let action = match value {
        "ANSWER" | "OK" | "ASW" | "OFFHOOK" | "ENTER" => Action::Answer,
        v if v.starts_with("ASW:") => Action::Answer,
        "CALLEND" | "CallEnd" | "ONHOOK" => Action::Hangup,
        v if v.starts_with("CANCEL:") => Action::Hangup,
        "X" => Action::Reject,
        "F_HOLD" | "HOLD" => Action::ToggleHold,
        v if v.starts_with("HOLD:") => Action::Hold,
        v if v.starts_with("UNHOLD:") => Action::Resume,
        v if v.starts_with("BTrans=") || v.starts_with("ATrans=") => {
            Action::Transfer(decode(&v[7..]))
        }
        "DNDOn" => Action::Dnd(true),
        "DNDOff" => Action::Dnd(false),
        "VOLUME_UP" => Action::VolumeUp,
        "VOLUME_DOWN" => Action::VolumeDown,
        "MUTE" => Action::Mute,
        "Reboot" | "Reset" => Action::Reboot,
        "AutoP" => Action::Reprovision,
        v if is_plain_key(v) => Action::Key(v.to_string()),
        other => return Err(Reply::bad_request(format!("unknown key value `{other}`"))),
    };
    Ok(action)
}

fn is_plain_key(value: &str) -> bool {
    const NAMED: &[&str] = &[
        "SPEAKER",
        "HEADSET",
        "MSG",
        "RD",
        "POUND",
        "STAR",
        "UP",
        "DOWN",
        "LEFT",
        "RIGHT",
        "F_TRANSFER",
        "F_CONFERENCE",
        "CONFERENCE",
    ];
    let numbered = |prefix: &str| {
        value
            .strip_prefix(prefix)
            .is_some_and(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()))
    };
    NAMED.contains(&value)
        || (value.len() == 1 && (value.chars().all(|c| c.is_ascii_digit()) || value == "*"))
        || numbered("F")
        || numbered("L")
        || numbered("D")
}

fn reply(_request: &Request, actions: &[Action], snapshot: &Snapshot) -> Reply {
    if actions.contains(&Action::Status) {
        // The undocumented `phonecfg=get` reply, in the shape its readers expect (docs/vendors.md §1.3).
        let status = if snapshot.registered {
            "Registered"
        } else {
            "Unregistered"
        };
        return Reply::new(
            200,
            format!(
                "FirmwareVersion={}\nDND={}\nAccount|1|{}|{}|{}|{}@pbx.example.com\n",
                snapshot.firmware,
                u8::from(snapshot.dnd),
                snapshot.line_user,
                snapshot.line_user,
                status,
                snapshot.line_user
            ),
        );
    }
    Reply::new(200, "OK")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allow_lists() {
        let ip: IpAddr = "10.10.3.4".parse().unwrap();
        assert!(!allowed("", ip));
        assert!(allowed("any", ip));
        assert!(allowed("192.168.1.1, 10.10.*.*", ip));
        assert!(!allowed("10.10.3.5", ip));
    }

    #[test]
    fn key_values_are_case_sensitive() {
        assert_eq!(key_action("Reboot"), Ok(Action::Reboot));
        assert!(key_action("REBOOT").is_err());
        assert!(key_action("dndon").is_err());
        assert_eq!(key_action("L2"), Ok(Action::Key("L2".into())));
    }
}
