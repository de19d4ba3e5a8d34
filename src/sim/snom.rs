//! A Snom phone on the wire (docs/vendors.md §4): `GET /command.htm?key=...` and `?number=...`
//! (answered 302 to index.htm), settings written through `/dummy.htm?settings=save&...`, reboot
//! through `/advanced_update.htm?reboot=Reboot`; HTTP Basic, or Digest when the phone's
//! "Authentication Scheme" is on; no allow list, no prompt. Provisioning is XML settings, one
//! `action_*` element per Action URL.
//!
//! The setting names below are copied from docs/vendors.md §4.1, not taken from the driver, so that a
//! driver writing a setting the reference does not name is caught: the phone ignores it.

use axum::http::Method;

use crate::model::PhoneId;
use crate::phone_vendors::snom::SPEC;
use crate::phone_vendors::PhoneOptions;
use crate::sim::xml::xml_leaves;
use crate::sim::{
    check_credentials, form_decode, query_pairs, settings, split_target, AccessCtx, Action,
    Identity, Personality, Provisioned, Reply, Request, Snapshot,
};

const MODEL: &str = "D785";

pub static PERSONALITY: Personality = Personality {
    vendor: &SPEC,
    default_model: MODEL,
    default_firmware: "10.1.33.33",
    user_agent,
    provisioning_files,
    read_provisioning,
    check_access,
    parse_request,
    reply,
    // `$mac` is the MAC upper-case without separators, as in the User-Agent.
    mac_value: |mac| mac.as_str().to_ascii_uppercase(),
    remote_value: |user, host| format!("sip:{user}@{host}"),
    read_settings,
    key_url,
    logo_url: |settings| settings.get("custom_bg_image_url").cloned(),
    boot_file: None,
    phone_options: PhoneOptions::default,
};

/// `<phone-settings>` leaves by name (an `idx` attribute appended: `user_name1`), and
/// `<functionKeys><fkey idx="N" label="...">` as `fkeyN` and `fkey_labelN`.
fn read_settings(text: &str, settings: &mut settings::Settings) {
    for leaf in xml_leaves(text) {
        let idx = leaf.attrs.get("idx").cloned().unwrap_or_default();
        if leaf.name() == "fkey" {
            if let Some(label) = leaf.attrs.get("label") {
                settings.insert(format!("fkey_label{idx}"), label.clone());
            }
        }
        settings.insert(format!("{}{idx}", leaf.name()), leaf.text);
    }
}

/// Function keys are numbered from 0 on the phone; a key of type `url` requests its URL.
fn key_url(settings: &settings::Settings, n: u32) -> Option<String> {
    let value = settings.get(&format!("fkey{}", n.checked_sub(1)?))?;
    value.strip_prefix("url ").map(|url| url.trim().to_string())
}

/// The Action URL settings of docs/vendors.md §4.1, irregular names (no `_url`) as they are.
const SETTINGS: &[&str] = &[
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
];

/// docs/vendors.md §4.5, the form with build and MAC.
fn user_agent(identity: &Identity) -> String {
    format!(
        "Mozilla/4.0 (compatible; snom{}-SIP {} 2010.12-00004-g9ba52f5 {} SXM:0 UXM:0)",
        identity.model,
        identity.firmware,
        identity.mac.as_str().to_ascii_uppercase()
    )
}

/// The model's file, then the phone's own `<MAC>.xml` (upper-case), docs/vendors.md §4.4.
fn provisioning_files(mac: &PhoneId) -> Vec<String> {
    vec![
        format!("snom{MODEL}.htm"),
        format!("{}.xml", mac.as_str().to_ascii_uppercase()),
    ]
}

/// Reads `<action_... perm="...">URL</action_...>` elements of an XML settings file. The Action
/// URL is keyed by the setting without `action_` and without a trailing `_url`; settings that
/// docs/vendors.md does not name are ignored, as a phone ignores settings it does not have. An
/// empty setting switches that Action URL off.
fn read_provisioning(text: &str, provisioned: &mut Provisioned) {
    for leaf in xml_leaves(text) {
        let name = leaf.name();
        if !SETTINGS.contains(&name) {
            continue;
        }
        let wire = name.strip_prefix("action_").unwrap_or(name);
        let wire = wire.strip_suffix("_url").unwrap_or(wire).to_string();
        if leaf.text.is_empty() {
            provisioned.action_urls.remove(&wire);
        } else {
            provisioned.action_urls.insert(wire, leaf.text);
        }
    }
}

/// Basic, or Digest when the phone is set up for it; nothing else guards `command.htm`.
fn check_access(ctx: &AccessCtx<'_>) -> Result<(), Reply> {
    check_credentials(ctx, "snom")
}

fn parse_request(request: &Request) -> Result<Vec<Action>, Reply> {
    if request.method != Method::GET {
        return Err(Reply::new(405, "Method Not Allowed"));
    }
    let (path, query) = split_target(request);
    let pairs = query_pairs(query);
    match path {
        "/command.htm" => command(&pairs),
        "/dummy.htm" => write_settings(&pairs),
        "/advanced_update.htm" => match pairs.as_slice() {
            // `reset=Reset` is a factory reset; the simulated phone just boots again.
            [("reboot", "Reboot")] | [("reset", "Reset")] => Ok(vec![Action::Reboot]),
            _ => Err(Reply::new(400, "Bad Request")),
        },
        _ => Err(Reply::new(404, "Not Found")),
    }
}

fn command(pairs: &[(&str, &str)]) -> Result<Vec<Action>, Reply> {
    if pairs.iter().any(|(name, _)| *name == "number") {
        let mut number = None;
        for (name, value) in pairs {
            match *name {
                "number" if number.is_none() => number = Some(form_decode(value)),
                "outgoing_uri" if !form_decode(value).trim().is_empty() => {}
                _ => return Err(Reply::bad_request(format!("`{name}`"))),
            }
        }
        let number = number.unwrap_or_default();
        let valid = !number.is_empty()
            && number.char_indices().all(|(i, c)| {
                c.is_ascii_alphanumeric()
                    || matches!(c, '*' | '#' | '@' | '.' | '-' | '_')
                    || (c == '+' && i == 0)
            });
        if !valid {
            return Err(Reply::new(400, "Bad Request: invalid number"));
        }
        return Ok(vec![Action::Dial(number)]);
    }
    match pairs {
        [("key", value)] => form_decode(value).split(';').map(key_action).collect(),
        [("key_dtmf", digits)] => {
            let digits = form_decode(digits);
            if digits.is_empty()
                || !digits
                    .chars()
                    .all(|c| c.is_ascii_digit() || c == '*' || c == '#')
            {
                return Err(Reply::new(400, "Bad Request: invalid DTMF digits"));
            }
            Ok(digits.chars().map(|c| Action::Key(c.to_string())).collect())
        }
        [("RELEASE_ALL_CALLS", "")] => Ok(vec![Action::Hangup]),
        _ => Err(Reply::new(400, "Bad Request")),
    }
}

/// `K[,<ms>[,<pause>]]`, K one of the key names of docs/vendors.md §4.3; anything else is refused,
/// so a driver that drifts from the reference fails in tests.
fn key_action(spec: &str) -> Result<Action, Reply> {
    let mut parts = spec.split(',');
    let name = parts.next().unwrap_or_default();
    let timing: Vec<&str> = parts.collect();
    let bad = || Reply::bad_request(format!("unknown key `{spec}`"));
    if timing.len() > 2
        || timing
            .iter()
            .any(|t| t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(bad());
    }
    let numbered = |prefix: &str, max: Option<u32>| {
        name.strip_prefix(prefix)
            .and_then(|n| {
                n.parse::<u32>()
                    .ok()
                    .filter(|_| n.bytes().all(|b| b.is_ascii_digit()))
            })
            .is_some_and(|n| n >= 1 && max.is_none_or(|max| n <= max))
    };
    Ok(match name {
        // On a ringing phone ENTER and OFFHOOK pick up.
        "ENTER" | "OFFHOOK" => Action::Answer,
        // CANCEL (and ONHOOK) ends the call; on a ringing call it rejects it, and the generic
        // phone fires `call_rejected` then, for which Snom has no Action URL: nothing is sent.
        "CANCEL" | "ONHOOK" => Action::Hangup,
        "F_R" => Action::ToggleHold,
        "DND" => Action::ToggleDnd,
        "VOLUME_UP" => Action::VolumeUp,
        "VOLUME_DOWN" => Action::VolumeDown,
        "MUTE" => Action::Mute,
        "UP" | "DOWN" | "LEFT" | "RIGHT" | "SPEAKER" | "HEADSET" | "MENU" | "REDIAL" | "REC"
        | "CONFERENCE" | "TRANSFER" | "DISCONNECT" | "*" | "#" => Action::Key(name.to_string()),
        n if n.len() == 1 && n.bytes().all(|b| b.is_ascii_digit()) => Action::Key(n.to_string()),
        n if numbered("F", Some(4))
            || numbered("P", None)
            || numbered("p", None)
            || numbered("EK", None) =>
        {
            Action::Key(n.to_string())
        }
        _ => return Err(bad()),
    })
}

/// `settings=save&<name>=<value>[&store_settings=save]`; of the settings only `dnd_mode` is
/// simulated.
fn write_settings(pairs: &[(&str, &str)]) -> Result<Vec<Action>, Reply> {
    let Some((("settings", "save"), rest)) = pairs.split_first() else {
        return Err(Reply::new(400, "Bad Request: expected settings=save"));
    };
    let mut actions = Vec::new();
    for (name, value) in rest {
        match (*name, form_decode(value).as_str()) {
            ("store_settings", "save") => {}
            ("dnd_mode", "on") => actions.push(Action::Dnd(true)),
            ("dnd_mode", "off") => actions.push(Action::Dnd(false)),
            _ => {
                return Err(Reply::new(
                    400,
                    format!(
                        "Bad Request: setting `{name}` is not simulated or its value is invalid"
                    ),
                ))
            }
        }
    }
    if actions.is_empty() {
        return Err(Reply::new(400, "Bad Request: no setting to write"));
    }
    Ok(actions)
}

/// 302 to index.htm for a dial, 200 for everything else.
fn reply(_request: &Request, actions: &[Action], _snapshot: &Snapshot) -> Reply {
    if actions.iter().any(|a| matches!(a, Action::Dial(_))) {
        return Reply::new(302, "").with_header("location", "/index.htm");
    }
    Reply::new(200, "<html><body>OK</body></html>")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_of_section_4_3() {
        let ok = |target: &str| parse_request(&Request::get(target)).unwrap();
        assert_eq!(
            ok("/command.htm?number=%2B49301234&outgoing_uri=1001@pbx.example.com"),
            vec![Action::Dial("+49301234".into())]
        );
        assert_eq!(
            ok("/command.htm?number=*21%23"),
            vec![Action::Dial("*21#".into())]
        );
        assert_eq!(ok("/command.htm?key=ENTER"), vec![Action::Answer]);
        assert_eq!(ok("/command.htm?key=CANCEL"), vec![Action::Hangup]);
        assert_eq!(ok("/command.htm?key=F_R"), vec![Action::ToggleHold]);
        assert_eq!(
            ok("/command.htm?key=P1;*;%23;1,100,100"),
            vec![
                Action::Key("P1".into()),
                Action::Key("*".into()),
                Action::Key("#".into()),
                Action::Key("1".into())
            ]
        );
        assert_eq!(
            ok("/dummy.htm?settings=save&dnd_mode=on&store_settings=save"),
            vec![Action::Dnd(true)]
        );
        assert_eq!(
            ok("/advanced_update.htm?reboot=Reboot"),
            vec![Action::Reboot]
        );
    }

    #[test]
    fn anything_else_is_refused() {
        let status = |target: &str| parse_request(&Request::get(target)).unwrap_err().status;
        // A raw `+` is form-decoded into a space: the number is refused.
        assert_eq!(status("/command.htm?number=+49301234"), 400);
        assert_eq!(status("/command.htm?key=ANSWER"), 400);
        assert_eq!(status("/command.htm?key=enter"), 400);
        assert_eq!(status("/command.htm?key=F5"), 400);
        assert_eq!(status("/command.htm?key=DNDOn"), 400);
        assert_eq!(status("/command.htm?key=ENTER&x=1"), 400);
        assert_eq!(status("/command.htm?number=1001&key=ENTER"), 400);
        assert_eq!(status("/dummy.htm?dnd_mode=on"), 400);
        assert_eq!(status("/dummy.htm?settings=save&dnd_mode=maybe"), 400);
        assert_eq!(status("/dummy.htm?settings=save&http_pass=x"), 400);
        assert_eq!(status("/advanced_update.htm?reboot=REBOOT"), 400);
        assert_eq!(status("/servlet?key=ANSWER"), 404);
        assert_eq!(status("/minibrowser.htm?url=http://x"), 404);
    }

    #[test]
    fn the_drivers_provisioning_is_read_by_setting_name() {
        let ctx = crate::sim::testing::provision_ctx("192.168.1.10", None);
        let mut provisioned = Provisioned::default();
        read_provisioning(&(SPEC.provision)(&ctx), &mut provisioned);
        assert_eq!(provisioned.action_urls.len(), SETTINGS.len());
        assert_eq!(
            provisioned.action_urls["reg_failed"],
            "http://192.168.1.10:8080/action/tok/snom/reg_failed?mac=$mac&phone_ip=$phone_ip&active_user=$active_user&active_host=$active_host"
        );
        assert!(provisioned.action_urls["incoming"].ends_with("&call-id=$call-id"));
        // Every event the driver declares is one of the reference's settings, under the key the
        // simulated phone files it by.
        for event in SPEC.events {
            assert!(SETTINGS.contains(&event.setting), "{}", event.setting);
            assert!(
                provisioned.action_urls.contains_key(event.wire),
                "{}",
                event.wire
            );
        }
        // A setting the reference does not name is ignored; an empty one switches the URL off.
        read_provisioning(
            "<settings><phone-settings><action_registered_url perm=\"\">http://x</action_registered_url><action_hold perm=\"\"></action_hold></phone-settings></settings>",
            &mut provisioned,
        );
        assert!(!provisioned.action_urls.contains_key("registered"));
        assert!(!provisioned.action_urls.contains_key("hold"));
    }

    #[test]
    fn identity_on_the_wire() {
        let mac = PhoneId::parse("00:04:13:92:2d:24").unwrap();
        assert_eq!((PERSONALITY.mac_value)(&mac), "000413922D24");
        assert_eq!(
            provisioning_files(&mac),
            vec!["snomD785.htm".to_string(), "000413922D24.xml".to_string()]
        );
        let ua = user_agent(&Identity {
            mac,
            model: MODEL.into(),
            firmware: "10.1.33.33".into(),
        });
        assert_eq!(
            ua,
            "Mozilla/4.0 (compatible; snomD785-SIP 10.1.33.33 2010.12-00004-g9ba52f5 000413922D24 SXM:0 UXM:0)"
        );
        let identity = (SPEC.recognise)(&ua).unwrap();
        assert_eq!(identity.model.as_deref(), Some("D785"));
        assert_eq!(
            (PERSONALITY.remote_value)("+4930123456", "pbx.example.com"),
            "sip:+4930123456@pbx.example.com"
        );
    }
}
