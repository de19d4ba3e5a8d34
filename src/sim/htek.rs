//! An Htek phone on the wire (docs/vendors.md §5): `GET /Phone_ActionURL&Command=<n>&...` with Basic
//! auth. The agent's axum stack receives that as a path with no query at all, so the path itself
//! is parsed, strictly: the documented commands and parameters only, anything else is 400.
//!
//! Where the reference is unsure, the simulator follows its stated best guess and says so:
//! - provisioning: the Action URL P-numbers are unknown, so the simulator reads the
//!   `para="ActionURL_<Label>"` entries of `cfg<mac>.xml`, whatever their element name. This is
//!   the one place where it follows our own derivation (the vendor table's para names) instead
//!   of the reference;
//! - `Command=3&key=` with `DNDOn`, `DNDOff`, `VOLUME_UP`, `VOLUME_DOWN` and `Reboot` are
//!   (unverified): Htek's names were not found, docs/vendors.md guesses Yealink's.

use crate::model::PhoneId;
use crate::phone_vendors::htek::{para_name, SPEC};
use crate::phone_vendors::PhoneOptions;
use crate::sim::xml::xml_leaves;
use crate::sim::{
    check_credentials, decode, query_pairs, AccessCtx, Action, Identity, Personality, Provisioned,
    Reply, Request, Snapshot,
};

pub static PERSONALITY: Personality = Personality {
    vendor: &SPEC,
    default_model: "UC903",
    default_firmware: "2.0.4.2",
    user_agent,
    provisioning_files,
    read_provisioning,
    check_access,
    parse_request,
    reply,
    // The guide's example fills `$mac` as `001fc11a8b6c`: lowercase, no separators.
    mac_value: |mac| mac.as_str().to_string(),
    // (unverified) The `$remote` format is undocumented; a SIP URI, as the guide describes it
    // ("the SIP URI of the remote identity").
    remote_value: |user, host| format!("sip:{user}@{host}"),
    read_settings: |text, settings| {
        for leaf in xml_leaves(text) {
            settings.insert(leaf.name().to_string(), leaf.text);
        }
    },
    key_url: |_, _| None,
    logo_url: |_| None,
    boot_file: None,
    phone_options: PhoneOptions::default,
};

/// `Htek UC903 2.0.4.2 00:1f:c1:1c:22:a9` (docs/vendors.md §5).
fn user_agent(identity: &Identity) -> String {
    format!(
        "Htek {} {} {}",
        identity.model,
        identity.firmware,
        identity.mac.colon_mac()
    )
}

/// `cfg<mac>.xml`, lowercase, as wazo's Htek plugin names it.
fn provisioning_files(mac: &PhoneId) -> Vec<String> {
    vec![format!("cfg{mac}.xml")]
}

/// Reads `<P… para="ActionURL_<Label>">url</P…>` entries. The para names are our own
/// derivation (see `phone_vendors::htek::para_name`): no source names Htek's Action URL settings.
fn read_provisioning(text: &str, provisioned: &mut Provisioned) {
    for leaf in xml_leaves(text) {
        let Some(para) = leaf.attrs.get("para") else {
            continue;
        };
        let Some(event) = SPEC.events.iter().find(|e| &para_name(e) == para) else {
            continue;
        };
        provisioned
            .action_urls
            .insert(event.wire.to_string(), leaf.text);
    }
}

/// Basic auth with the web admin account; no allow list is known for Htek.
fn check_access(ctx: &AccessCtx<'_>) -> Result<(), Reply> {
    check_credentials(ctx, "Htek")
}

fn parse_request(request: &Request) -> Result<Vec<Action>, Reply> {
    // `&` right after the path, never `?`.
    let Some(rest) = request.target.strip_prefix("/Phone_ActionURL&") else {
        return Err(Reply::new(404, "Not Found"));
    };
    if request.method != axum::http::Method::GET {
        return Err(Reply::new(405, "Method Not Allowed"));
    }
    if rest.contains('?') {
        return Err(Reply::new(400, "Bad Request"));
    }
    match query_pairs(rest).as_slice() {
        [("Command", "1"), ("Number", number), account @ ..] => {
            let number = decode(number);
            if number.is_empty() || number.contains(' ') {
                return Err(Reply::new(400, "Bad Request: invalid Number"));
            }
            // Account is optional ("it will choose an available account automatically"); when
            // given it is the account's number, 1-based.
            match account {
                [] => {}
                [("Account", n)] if n.parse::<u32>().is_ok_and(|n| n >= 1) => {}
                _ => return Err(Reply::new(400, "Bad Request: invalid Account")),
            }
            Ok(vec![Action::Dial(number)])
        }
        [("Command", "2")] => Ok(vec![Action::Hangup]),
        [("Command", "3"), ("key", key)] => key_action(key).map(|action| vec![action]),
        _ => Err(Reply::new(400, "Bad Request")),
    }
}

/// `Command=3&key=<KEY>`: `OK` is documented (it answers); the rest are docs/vendors.md's
/// (unverified) guess of Yealink's names. Anything else is refused.
fn key_action(key: &str) -> Result<Action, Reply> {
    Ok(match key {
        "OK" => Action::Answer,
        "DNDOn" => Action::Dnd(true),
        "DNDOff" => Action::Dnd(false),
        "VOLUME_UP" => Action::VolumeUp,
        "VOLUME_DOWN" => Action::VolumeDown,
        "Reboot" => Action::Reboot,
        other => return Err(Reply::bad_request(format!("unknown key `{other}`"))),
    })
}

fn reply(_request: &Request, _actions: &[Action], _snapshot: &Snapshot) -> Reply {
    Reply::new(200, "OK")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_path_is_parsed_strictly() {
        assert_eq!(
            parse_request(&Request::get(
                "/Phone_ActionURL&Command=1&Number=206&Account=1"
            )),
            Ok(vec![Action::Dial("206".into())])
        );
        assert_eq!(
            parse_request(&Request::get("/Phone_ActionURL&Command=1&Number=%2B4930")),
            Ok(vec![Action::Dial("+4930".into())])
        );
        assert_eq!(
            parse_request(&Request::get("/Phone_ActionURL&Command=2")),
            Ok(vec![Action::Hangup])
        );
        assert_eq!(
            parse_request(&Request::get("/Phone_ActionURL&Command=3&key=OK")),
            Ok(vec![Action::Answer])
        );
        assert_eq!(
            parse_request(&Request::get("/Phone_ActionURL?Command=2"))
                .unwrap_err()
                .status,
            404
        );
        for bad in [
            "/Phone_ActionURL&Command=4",
            "/Phone_ActionURL&Command=2&key=OK",
            "/Phone_ActionURL&Command=3&key=OK;MUTE",
            "/Phone_ActionURL&Command=3&key=REBOOT",
            "/Phone_ActionURL&Command=3",
            "/Phone_ActionURL&Command=1&Number=206&Account=0",
            "/Phone_ActionURL&Command=1&Account=1&Number=206",
            "/Phone_ActionURL&Command=1&Number=",
            "/Phone_ActionURL&Number=206&Command=1",
        ] {
            assert_eq!(
                parse_request(&Request::get(bad)).unwrap_err().status,
                400,
                "{bad}"
            );
        }
    }

    #[test]
    fn provisioning_is_read_from_para_entries() {
        let ctx = crate::sim::testing::provision_ctx("10.0.0.1", None);
        let mut provisioned = Provisioned::default();
        read_provisioning(&(SPEC.provision)(&ctx), &mut provisioned);
        assert_eq!(provisioned.action_urls.len(), SPEC.events.len());
        assert!(provisioned.action_urls["incoming_call"]
            .starts_with("http://10.0.0.1:8080/action/tok/htek/incoming_call?mac=$mac&ip=$ip&"));
        // A real P-number works as well as the placeholder; other settings are ignored.
        let mut provisioned = Provisioned::default();
        read_provisioning(
            "<hl_provision version=\"1\"><config version=\"1\"><!-- <P1 para=\"ActionURL_Hold\">no</P1> --><P47 para=\"Profile1_Sipserver\">pbx</P47><P8851 para=\"Profile1_SecondFailoverSipserver\" /><P9999 para=\"ActionURL_MissedCall\">http://a/m?x=$mac&amp;y=$ip</P9999></config></hl_provision>",
            &mut provisioned,
        );
        assert_eq!(provisioned.action_urls.len(), 1);
        assert_eq!(
            provisioned.action_urls["missed_call"],
            "http://a/m?x=$mac&y=$ip"
        );
    }
}
