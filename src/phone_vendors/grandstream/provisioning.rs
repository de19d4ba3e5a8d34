//! Grandstream's provisioning file: the Action URLs as P-values (`<P8310>`) or, in the
//! `<config version="2">` form, as their `ons.actionUrl.*` aliases.

use super::SPEC;
use crate::model::PhoneId;
use crate::phone_vendors::{xml_escape, ProvisionCtx};

/// The `<config version="2">` alias of each P-value (docs/vendors.md §3.1). The syslog aliases are
/// marked "alias not verified" there; the WP826 busy/idle P-values have no known alias.
const V2_ALIASES: &[(&str, &str)] = &[
    ("P8304", "ons.actionUrl.setupCompleted"),
    ("P8305", "ons.actionUrl.registered"),
    ("P8306", "ons.actionUrl.unregistered"),
    ("P8308", "ons.actionUrl.offHook"),
    ("P8309", "ons.actionUrl.onHook"),
    ("P8310", "ons.actionUrl.incomingCall"),
    ("P8311", "ons.actionUrl.outgoingCall"),
    ("P8312", "ons.actionUrl.missedCall"),
    ("P8313", "ons.actionUrl.establishedCall"),
    ("P8314", "ons.actionUrl.terminatedCall"),
    ("P8316", "ons.actionUrl.openDnd"),
    ("P8317", "ons.actionUrl.closedDnd"),
    ("P8318", "ons.actionUrl.openForward"),
    ("P8319", "ons.actionUrl.closedForward"),
    ("P8320", "ons.actionUrl.blindTransfer"),
    ("P8321", "ons.actionUrl.attendedTransfer"),
    ("P8324", "ons.actionUrl.holdCall"),
    ("P8325", "ons.actionUrl.unholdCall"),
    // (unverified) docs/vendors.md gives only "openSyslog / closedSyslog (alias not verified)".
    ("P8330", "ons.actionUrl.openSyslog"),
    ("P8331", "ons.actionUrl.closedSyslog"),
];

pub(super) fn v2_alias(p_value: &str) -> Option<&'static str> {
    V2_ALIASES
        .iter()
        .find(|(p, _)| *p == p_value)
        .map(|(_, alias)| *alias)
}

/// Text safe inside an XML comment (`--` may not appear there).
fn comment_safe(text: &str) -> String {
    xml_escape(text).replace("--", "- -")
}

/// `cfg<mac>.xml` in the legacy P-value form, or with `ctx.format = v2` the `ons.actionUrl.*`
/// alias form. The remote-control settings have no known P-values (docs/vendors.md §3.3), so the
/// file says what the installer must set by hand.
pub(super) fn provision(ctx: &ProvisionCtx) -> String {
    let format = ctx.format.as_deref().map(str::to_ascii_lowercase);
    let (v2, unknown_format) = match format.as_deref() {
        None | Some("v1" | "1") => (false, None),
        Some("v2" | "2") => (true, None),
        Some(_) => (false, ctx.format.as_deref()),
    };
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    out.push_str("<!-- phone2mqtt: Action URLs that report every event to the agent.\n");
    out.push_str("     Set by hand on the phone's web UI, Network > Remote Control (their P-values are not known):\n");
    out.push_str("       Action URI Support = Enabled\n");
    out.push_str(&format!(
        "       Action URI Allowed IP List = {}\n",
        comment_safe(&ctx.agent_host)
    ));
    out.push_str("       Remote Control Pop up Window Support = Disabled\n");
    out.push_str("     The agent sends the admin web password as `passcode`: give it as this phone's `password`.\n");
    out.push_str(
        "     No <mac> element: the same file is served to every Grandstream phone. -->\n",
    );
    if let Some(name) = unknown_format {
        out.push_str(&format!(
            "<!-- unknown format \"{}\" (known: v1, v2): the legacy P-value form follows. -->\n",
            comment_safe(name)
        ));
    }
    out.push_str("<gs_provision version=\"1\">\n");
    if v2 {
        out.push_str("  <config version=\"2\">\n");
        for event in SPEC.events {
            let Some(url) = ctx.action_url(&SPEC, event) else {
                continue;
            };
            let url = xml_escape(&url);
            match v2_alias(event.setting) {
                Some(alias) => out.push_str(&format!("    <item name=\"{alias}\">{url}</item>\n")),
                None => out.push_str(&format!(
                    "    <!-- {} ({}, WP826): no v2 alias known; use the legacy form for it -->\n",
                    event.setting, event.event
                )),
            }
        }
    } else {
        out.push_str("  <config version=\"1\">\n");
        for event in SPEC.events {
            let Some(url) = ctx.action_url(&SPEC, event) else {
                continue;
            };
            let url = xml_escape(&url);
            out.push_str(&format!("    <{0}>{url}</{0}>\n", event.setting));
        }
    }
    out.push_str("  </config>\n</gs_provision>\n");
    out
}

/// `cfg<mac>` and `cfg<mac>.xml` (12 lowercase hex digits), and the common `cfg.xml`.
pub(super) fn provision_file(path: &str) -> Option<Option<PhoneId>> {
    if path == "cfg.xml" {
        return Some(None);
    }
    let name = path.strip_prefix("cfg")?;
    let mac = name.strip_suffix(".xml").unwrap_or(name);
    (mac.len() == 12
        && mac
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
    .then(|| PhoneId::parse(mac))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(format: Option<&str>) -> ProvisionCtx {
        ProvisionCtx {
            public_url: "http://192.168.1.10:8080".into(),
            token: Some("tok".into()),
            agent_host: "192.168.1.10".into(),
            format: format.map(str::to_string),
        }
    }

    #[test]
    fn provisioning_legacy_form() {
        let text = provision(&ctx(None));
        assert!(text.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"));
        assert!(text.contains("<gs_provision version=\"1\">\n  <config version=\"1\">\n"));
        assert!(text.contains("    <P8310>http://192.168.1.10:8080/action/tok/grandstream/incoming_call?mac=$mac&amp;phone_ip=$phone_ip&amp;product=$product&amp;program_version=$program_version&amp;active_user=$active_user&amp;active_host=$active_host&amp;local=$local&amp;remote=$remote&amp;display_local=$display_local&amp;display_remote=$display_remote&amp;call-id=$call-id</P8310>\n"));
        assert!(text.contains("Action URI Allowed IP List = 192.168.1.10"));
        assert!(text.contains("Remote Control Pop up Window Support = Disabled"));
        assert!(text.contains("Action URI Support = Enabled"));
        for event in SPEC.events {
            assert!(
                text.contains(&format!("<{0}>", event.setting)),
                "{}",
                event.setting
            );
        }
        assert!(!text.contains("&mac") && !text.contains("item name"));
        assert!(text.ends_with("  </config>\n</gs_provision>\n"));
        assert_eq!(provision(&ctx(Some("v1"))), text);
        let odd = provision(&ctx(Some("v3--x")));
        assert!(odd.contains("unknown format \"v3- -x\""));
        assert!(odd.contains("<P8310>"));
    }

    #[test]
    fn provisioning_v2_form() {
        let text = provision(&ctx(Some("v2")));
        assert!(text.contains("<config version=\"2\">"));
        assert!(text.contains("    <item name=\"ons.actionUrl.incomingCall\">http://192.168.1.10:8080/action/tok/grandstream/incoming_call?mac=$mac&amp;phone_ip=$phone_ip"));
        assert!(text.contains("<item name=\"ons.actionUrl.closedDnd\">http://192.168.1.10:8080/action/tok/grandstream/dnd_off?"));
        assert_eq!(text.matches("<item name=").count(), V2_ALIASES.len());
        assert!(!text.contains("<P83"));
        assert_eq!(provision(&ctx(Some("V2"))), text);
    }

    #[test]
    fn provisioning_paths() {
        let mac = PhoneId::parse("c074ad2bd859");
        assert_eq!(provision_file("cfgc074ad2bd859.xml"), Some(mac.clone()));
        assert_eq!(provision_file("cfgc074ad2bd859"), Some(mac));
        assert_eq!(provision_file("cfg.xml"), Some(None));
        assert_eq!(provision_file("cfgC074AD2BD859.xml"), None);
        assert_eq!(provision_file("cfgc074ad2bd85.xml"), None);
        assert_eq!(provision_file("c074ad2bd859.cfg"), None);
        assert_eq!(provision_file("cfgc074ad2bd859.cfg"), None);
    }
}
