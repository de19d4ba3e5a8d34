//! Invariants over every vendor's declaration, so that a new vendor file cannot half-fit:
//! it has a simulator personality, its events use the shared vocabulary, every command it
//! declares builds a request, every command it does not declare is refused by name, and its
//! provisioning carries every Action URL with the token.

mod common;

use std::collections::BTreeSet;

use phone2mqtt::command;
use phone2mqtt::model::CommandKind;
use phone2mqtt::phone_vendors::{
    self, PhoneOption, PhoneOptions, ProvisionCtx, Target, VendorSpec, VENDORS,
};

/// A sample value for each command that takes one.
fn sample_payload(kind: CommandKind) -> &'static str {
    match kind {
        CommandKind::Dial | CommandKind::Transfer => "+49 30 1234",
        CommandKind::Dnd => "on",
        CommandKind::Message => "Hello",
        CommandKind::Key => "OK",
        CommandKind::Logo => "http://127.0.0.1/logo.png",
        _ => "",
    }
}

/// A phone with every sample value, and the options its vendor reads, as the agent builds it.
fn target(spec: &VendorSpec) -> Target {
    Target {
        options: sample_target().options.read_by(spec),
        ..sample_target()
    }
}

fn sample_target() -> Target {
    Target {
        line: Some("1001@pbx.example.com".into()),
        call_id: Some("7".into()),
        agent_url: Some("http://192.168.1.10:8080".into()),
        password: "pw".into(),
        dnd: false,
        options: PhoneOptions {
            legacy_api: false,
            dnd_key: Some("MPK1".into()),
        },
    }
}

#[test]
fn every_vendor_has_a_simulator_and_a_unique_id() {
    let mut ids = BTreeSet::new();
    for spec in VENDORS {
        assert!(ids.insert(spec.id), "{} is listed twice", spec.id);
        assert!(
            phone2mqtt::sim::personality(spec.id).is_some(),
            "{} has no simulator personality",
            spec.id
        );
        assert!(!spec.ouis.is_empty(), "{} has no MAC prefix", spec.id);
        for oui in spec.ouis {
            assert!(
                oui.len() == 6
                    && oui
                        .chars()
                        .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
            );
        }
    }
}

#[test]
fn events_use_one_vocabulary() {
    // The names every vendor shares must mean the same everywhere: the core call and DND events
    // are spelled as Yealink spells them.
    let yealink: BTreeSet<&str> = phone_vendors::find("yealink")
        .unwrap()
        .events
        .iter()
        .map(|e| e.event.name())
        .collect();
    for spec in VENDORS {
        let mut wires = BTreeSet::new();
        for event in spec.events {
            assert!(
                wires.insert(event.wire),
                "{}: wire name {} twice",
                spec.id,
                event.wire
            );
            assert!(
                event
                    .event
                    .name()
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c == '_'),
                "{}: `{}` is not snake_case",
                spec.id,
                event.event
            );
            assert!(
                event
                    .wire
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-'),
                "{}: wire name `{}` must be URL-safe",
                spec.id,
                event.wire
            );
        }
        for core in [
            "incoming_call",
            "call_established",
            "call_terminated",
            "dnd_on",
            "dnd_off",
        ] {
            assert!(yealink.contains(core));
            assert!(
                spec.events.iter().any(|e| e.event.name() == core),
                "{} has no `{core}` event",
                spec.id
            );
        }
    }
}

#[test]
fn declared_commands_build_and_the_others_are_refused_by_name() {
    for spec in VENDORS {
        // `configure`, `logo` and `verify` change what the agent serves; no request of their own.
        for kind in CommandKind::phone_commands().filter(|k| !k.handled_by_agent()) {
            let command = command::parse(kind.name(), sample_payload(kind).as_bytes())
                .1
                .unwrap_or_else(|err| panic!("{}: {err}", kind.name()));
            let built = (spec.build)(&command, &target(spec));
            if spec.supports(kind) {
                let request =
                    built.unwrap_or_else(|err| panic!("{} {}: {err}", spec.id, kind.name()));
                assert!(
                    request.path_and_query.starts_with('/'),
                    "{} {}",
                    spec.id,
                    kind.name()
                );
                assert!(
                    !request.path_and_query.contains(' ') && !request.path_and_query.contains('+'),
                    "{} {}: `{}` must be encoded",
                    spec.id,
                    kind.name(),
                    request.path_and_query
                );
            } else {
                let err = built
                    .expect_err("an undeclared command must be refused")
                    .to_string();
                assert!(
                    err.contains(spec.name) && err.contains(kind.name()),
                    "{} {}: `{err}` must name the vendor and command",
                    spec.id,
                    kind.name()
                );
            }
        }
    }
}

/// A vendor's quirks are `[[phone]]` options it declares, each once and with what it does; every
/// option is read by some vendor (else it would be a key that does nothing).
#[test]
fn phone_options_are_declared_by_the_vendors_that_read_them() {
    for option in PhoneOption::ALL {
        assert!(
            VENDORS.iter().any(|spec| spec.reads(*option)),
            "no vendor reads `{}`",
            option.key()
        );
    }
    for spec in VENDORS {
        let mut seen = BTreeSet::new();
        for read in spec.options {
            let key = read.option.key();
            assert!(seen.insert(key), "{}: `{key}` declared twice", spec.id);
            assert!(
                !read.doc.trim().is_empty(),
                "{}: `{key}` has no doc",
                spec.id
            );
        }
    }
}

/// A builder reads only the options its vendor declares: setting another changes no request.
#[test]
fn a_vendor_reads_only_the_options_it_declares() {
    let only = |option: PhoneOption| match option {
        PhoneOption::LegacyApi => PhoneOptions {
            legacy_api: true,
            ..PhoneOptions::default()
        },
        PhoneOption::DndKey => PhoneOptions {
            dnd_key: Some("MPK1".into()),
            ..PhoneOptions::default()
        },
    };
    for spec in VENDORS {
        for option in PhoneOption::ALL.iter().filter(|o| !spec.reads(**o)) {
            let without = Target {
                options: PhoneOptions::default(),
                ..sample_target()
            };
            let with = Target {
                options: only(*option),
                ..sample_target()
            };
            for kind in CommandKind::phone_commands().filter(|k| spec.supports(*k)) {
                let Ok(command) = command::parse(kind.name(), sample_payload(kind).as_bytes()).1
                else {
                    continue;
                };
                let build =
                    |target: &Target| (spec.build)(&command, target).map_err(|err| err.to_string());
                assert_eq!(
                    build(&with),
                    build(&without),
                    "{} {} reads `{}`, which it does not declare",
                    spec.id,
                    kind.name(),
                    option.key()
                );
            }
        }
    }
}

#[test]
fn provisioning_carries_every_action_url_with_the_token() {
    let ctx = ProvisionCtx {
        public_url: "http://192.168.1.10:8080".into(),
        token: Some("tok3n-0123456789abcdef".into()),
        agent_host: "192.168.1.10".into(),
        format: None,
    };
    for spec in VENDORS {
        let text = (spec.provision)(&ctx);
        for event in spec.events {
            let url = ctx.action_url(spec, event).unwrap();
            let escaped = phone_vendors::xml_escape(&url);
            assert!(
                text.contains(&url) || text.contains(&escaped),
                "{}: the provisioning lacks the Action URL for {}",
                spec.id,
                event.wire
            );
        }
    }
}

/// A generic file (no phone's token) carries no Action URL at all, for every vendor.
#[test]
fn generic_files_carry_no_action_url() {
    let ctx = ProvisionCtx {
        public_url: "http://192.168.1.10:8080".into(),
        token: None,
        agent_host: "192.168.1.10".into(),
        format: None,
    };
    for spec in VENDORS {
        let text = (spec.provision)(&ctx);
        assert!(!text.contains("/action/"), "{}: {text}", spec.id);
    }
}

#[test]
fn every_user_agent_sample_is_recognised_by_its_vendor_only() {
    let samples = [
        ("yealink", "Yealink SIP-T46G 28.72.0.1 00:15:65:4a:a9:37"),
        ("grandstream", "Grandstream Model HW GXP1628 SW 1.0.4.138 DevId c074ad2bd859"),
        ("snom", "Mozilla/4.0 (compatible; snomD785-SIP 10.1.33.33 2010.12-00004-g9ba52f5 000413922D24 SXM:0 UXM:0)"),
        ("fanvil", "Fanvil X4 2.10.2.6887 0c383e07e16c"),
        ("htek", "Htek UC903 2.0.4.2 00:1f:c1:1c:22:a9"),
    ];
    for (vendor, user_agent) in samples {
        let Some(owner) = phone_vendors::find(vendor) else {
            continue;
        };
        let identity = (owner.recognise)(user_agent)
            .unwrap_or_else(|| panic!("{vendor} does not recognise {user_agent}"));
        assert!(identity.mac.is_some(), "{vendor}: no MAC from {user_agent}");
        for other in VENDORS.iter().filter(|s| s.id != vendor) {
            assert!(
                (other.recognise)(user_agent).is_none(),
                "{} claims {user_agent}",
                other.id
            );
        }
    }
}

/// Through MQTT, for every vendor: each command its table does not declare gets an error result
/// naming the vendor and the command, and nothing reaches the phone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undeclared_commands_are_refused_by_name_end_to_end() {
    let macs = [
        ("yealink", "00:15:65:00:00:31"),
        ("grandstream", "c0:74:ad:00:00:31"),
        ("snom", "00:04:13:00:00:31"),
        ("fanvil", "0c:38:3e:00:00:31"),
        ("htek", "00:1f:c1:00:00:31"),
    ];
    for spec in VENDORS {
        let mac = macs
            .iter()
            .find(|(vendor, _)| *vendor == spec.id)
            .map(|(_, mac)| *mac)
            .unwrap_or_else(|| panic!("add a test MAC for {}", spec.id));
        let id = phone2mqtt::model::PhoneId::parse(mac).unwrap().to_string();
        let (gw, phone) = common::gateway_with_phone(spec.id, mac).await;
        let mut probe = common::MqttProbe::connect(gw.mqtt_port()).await;
        let before = phone.snapshot().requests.len();
        for kind in CommandKind::phone_commands().filter(|kind| !spec.supports(*kind)) {
            let payload =
                serde_json::json!({"value": sample_payload(kind), "transaction": kind.name()});
            let result = common::command(&mut probe, &id, kind.name(), payload).await;
            assert_eq!(
                result["status"],
                "error",
                "{} {}: {result}",
                spec.id,
                kind.name()
            );
            assert_eq!(
                result["error"],
                format!("{} phones cannot do `{}`", spec.name, kind.name())
            );
        }
        assert_eq!(
            phone.snapshot().requests.len(),
            before,
            "{}: nothing reached the phone",
            spec.id
        );
        gw.stop().await;
    }
}
