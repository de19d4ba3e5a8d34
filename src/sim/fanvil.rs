//! A Fanvil phone on the wire (docs/vendors.md §2): `GET /cgi-bin/ConfigManApp.com?key=<VALUE>[;<VALUE>]`
//! with Basic auth, Action URLs read from the `<cti>` tags of the `<mac>.cfg` XML, strict key
//! values (anything undocumented is answered 400).
//!
//! Where the reference is unsure, the simulator follows its stated best guess and says so:
//! - `<cti>` tags: `DNDOnUrl`/`DNDOffUrl` are confirmed and read as such; the other tags are
//!   derived, and for those the simulator follows our own derivation (the vendor table's tag
//!   names), since no source names them;
//! - "Active URI Limit IP": no provisioning key is known, and a blank list reportedly lets
//!   anyone in (secondary source, unverified), so the simulator accepts every address;
//! - `key=DNDOff` (derived by symmetry), `key=Reboot` and `key=AutoP` (single source) and the
//!   dial form `key=number=<N>&outgoing_uri=<uri>` (unverified) are accepted as docs/vendors.md
//!   guesses them.

use crate::model::PhoneId;
use crate::phone_vendors::fanvil::{cti_tag, SPEC};
use crate::phone_vendors::PhoneOptions;
use crate::sim::xml::xml_leaves;
use crate::sim::{
    check_credentials, decode, query_pairs, split_target, AccessCtx, Action, Identity, Personality,
    Provisioned, Reply, Request, Snapshot,
};

pub static PERSONALITY: Personality = Personality {
    vendor: &SPEC,
    default_model: "X4",
    default_firmware: "2.10.2.6887",
    user_agent,
    provisioning_files,
    read_provisioning,
    check_access,
    parse_request,
    reply,
    // The UA shows the MAC lowercase without separators; the `$mac` value format itself is
    // undocumented (docs/vendors.md §2.1), so the simulator uses the UA's.
    mac_value: |mac| mac.as_str().to_string(),
    // (unverified) How Fanvil fills `$remote` is undocumented; a SIP URI, as Yealink does.
    remote_value: |user, host| format!("sip:{user}@{host}"),
    // `<sysConf><cti><DNDOnUrl>` as `cti.DNDOnUrl`, the dotted names Fanvil's tools use.
    read_settings: |text, settings| {
        for leaf in xml_leaves(text) {
            settings.insert(leaf.path.join("."), leaf.text);
        }
    },
    key_url: |_, _| None,
    logo_url: |_| None,
    boot_file: None,
    phone_options: PhoneOptions::default,
};

/// `Fanvil X4 2.10.2.6887 0c383e07e16c` (docs/vendors.md §2.4).
fn user_agent(identity: &Identity) -> String {
    format!(
        "Fanvil {} {} {}",
        identity.model, identity.firmware, identity.mac
    )
}

/// The per-device `<mac>.cfg`, lowercase.
fn provisioning_files(mac: &PhoneId) -> Vec<String> {
    vec![format!("{mac}.cfg")]
}

/// Reads the Action URLs from the `<cti>` section of a `<sysConf>` file.
fn read_provisioning(text: &str, provisioned: &mut Provisioned) {
    for leaf in xml_leaves(text) {
        if leaf.path.len() != 2 || leaf.parent() != Some("cti") {
            continue;
        }
        let wire = match leaf.name() {
            // Confirmed tag names (wazo's Fanvil templates), matched by their meaning.
            "DNDOnUrl" => wire_of("dnd_on"),
            "DNDOffUrl" => wire_of("dnd_off"),
            // Derived tag names: no source names them, so here the simulator follows our own
            // derivation in the vendor table (docs/vendors.md §2.1).
            other => SPEC
                .events
                .iter()
                .find(|event| cti_tag(event) == other)
                .map(|event| event.wire),
        };
        if let Some(wire) = wire {
            provisioned.action_urls.insert(wire.to_string(), leaf.text);
        }
    }
}

fn wire_of(event: &str) -> Option<&'static str> {
    SPEC.events
        .iter()
        .find(|spec| spec.event.name() == event)
        .map(|spec| spec.wire)
}

/// Basic auth with the web admin account. "Active URI Limit IP" blank means anyone (secondary
/// source, unverified); no provisioning key sets it, so every address is let in.
fn check_access(ctx: &AccessCtx<'_>) -> Result<(), Reply> {
    check_credentials(ctx, "Fanvil")
}

fn parse_request(request: &Request) -> Result<Vec<Action>, Reply> {
    let (path, query) = split_target(request);
    if path != "/cgi-bin/ConfigManApp.com" {
        return Err(Reply::new(404, "Not Found"));
    }
    if request.method != axum::http::Method::GET {
        return Err(Reply::new(405, "Method Not Allowed"));
    }
    match query_pairs(query).as_slice() {
        // (unverified) The Yealink dial form, docs/vendors.md §2.2's first candidate.
        [("key", value), rest @ ..] if value.starts_with("number=") => {
            let number = decode(&value["number=".len()..]);
            if number.is_empty() || number.contains(' ') {
                return Err(Reply::new(400, "Bad Request: invalid number"));
            }
            match rest {
                [] => {}
                [("outgoing_uri", uri)] if !uri.is_empty() => {}
                _ => return Err(Reply::new(400, "Bad Request: unexpected parameters")),
            }
            Ok(vec![Action::Dial(number)])
        }
        [("key", value)] => value.split(';').map(key_action).collect(),
        _ => Err(Reply::new(400, "Bad Request")),
    }
}

/// One key value from docs/vendors.md §2.2; anything else is refused, so a driver that drifts from
/// the reference fails in tests.
fn key_action(value: &str) -> Result<Action, Reply> {
    let action = match value {
        "OK" => Action::Answer,
        "RELEASE" => Action::Hangup,
        "X" | "F_CANCEL" => Action::Reject,
        "F_HOLD" => Action::ToggleHold,
        "DNDOn" => Action::Dnd(true),
        // (derived) by symmetry with the documented DNDOn.
        "DNDOff" => Action::Dnd(false),
        "VOLUME_UP" => Action::VolumeUp,
        "VOLUME_DOWN" => Action::VolumeDown,
        "MUTE" => Action::Mute,
        // (single source)
        "Reboot" => Action::Reboot,
        "AutoP" => Action::Reprovision,
        v if is_plain_key(v) => Action::Key(v.to_string()),
        other => return Err(Reply::bad_request(format!("unknown key value `{other}`"))),
    };
    Ok(action)
}

/// The documented keys that only press a key: `ENTER SPEAKER F_TRANSFER F_CFWD`, `0`-`9`, `*`,
/// `POUND`, `D1`-`D40`.
fn is_plain_key(value: &str) -> bool {
    let dss = value
        .strip_prefix('D')
        .and_then(|n| n.parse::<u8>().ok())
        .is_some_and(|n| (1..=40).contains(&n) && !value[1..].starts_with('0'));
    matches!(
        value,
        "ENTER" | "SPEAKER" | "F_TRANSFER" | "F_CFWD" | "POUND" | "*"
    ) || (value.len() == 1 && value.as_bytes()[0].is_ascii_digit())
        || dss
}

fn reply(_request: &Request, _actions: &[Action], _snapshot: &Snapshot) -> Reply {
    Reply::new(200, "OK")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_values_are_strict() {
        assert_eq!(key_action("OK"), Ok(Action::Answer));
        assert_eq!(key_action("RELEASE"), Ok(Action::Hangup));
        assert_eq!(key_action("DNDOff"), Ok(Action::Dnd(false)));
        assert_eq!(key_action("D40"), Ok(Action::Key("D40".into())));
        for bad in [
            "D41", "D0", "D07", "REBOOT", "dndon", "CALLEND", "F1", "ANSWER", "",
        ] {
            assert!(key_action(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn requests_parse_as_vendors_md_says() {
        assert_eq!(
            parse_request(&Request::get("/cgi-bin/ConfigManApp.com?key=F_HOLD;MUTE")),
            Ok(vec![Action::ToggleHold, Action::Mute])
        );
        assert_eq!(
            parse_request(&Request::get(
                "/cgi-bin/ConfigManApp.com?key=number=%2B4930&outgoing_uri=1001@pbx"
            )),
            Ok(vec![Action::Dial("+4930".into())])
        );
        assert_eq!(
            parse_request(&Request::get("/servlet?key=OK"))
                .unwrap_err()
                .status,
            404
        );
        for bad in [
            "/cgi-bin/ConfigManApp.com?key=OK&x=1",
            "/cgi-bin/ConfigManApp.com?keys=OK",
            "/cgi-bin/ConfigManApp.com",
            "/cgi-bin/ConfigManApp.com?key=number=&outgoing_uri=x",
        ] {
            assert_eq!(
                parse_request(&Request::get(bad)).unwrap_err().status,
                400,
                "{bad}"
            );
        }
    }

    #[test]
    fn provisioning_is_read_from_cti_tags() {
        let ctx = crate::sim::testing::provision_ctx("10.0.0.1", None);
        let mut provisioned = Provisioned::default();
        read_provisioning(&(SPEC.provision)(&ctx), &mut provisioned);
        assert_eq!(provisioned.action_urls.len(), SPEC.events.len());
        assert_eq!(
            provisioned.action_urls["dnd_on"],
            "http://10.0.0.1:8080/action/tok/fanvil/dnd_on?mac=$mac&ip=$ip&model=$model&firmware=$firmware&active_user=$active_user&active_host=$active_host"
        );
        // A file written by hand with only the confirmed tags, comments and other sections.
        let mut provisioned = Provisioned::default();
        read_provisioning(
            "<sysConf><!-- <cti><DNDOnUrl>no</DNDOnUrl></cti> --><web><RemoteControl>1</RemoteControl></web>\n<cti>\n <DNDOffUrl>http://a/x?m=$mac&amp;i=$ip</DNDOffUrl>\n <Unknown>x</Unknown>\n</cti></sysConf>",
            &mut provisioned,
        );
        assert_eq!(provisioned.action_urls.len(), 1);
        assert_eq!(
            provisioned.action_urls["dnd_off"],
            "http://a/x?m=$mac&i=$ip"
        );
    }
}
