//! Home Assistant discovery, end to end: a real gateway with simulated
//! phones of every vendor publishes one retained discovery message per phone; each is checked
//! against a schema written from Home Assistant's docs and, where Home Assistant can be
//! installed (Python 3.13+), by Home Assistant's own code (`tests/ha_check.py`). The entities'
//! command topics really drive the phones.

mod common;
#[path = "homeassistant/schema.rs"]
mod ha_schema;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::ha_venv::ha_python;
use common::*;
use phone2mqtt::config::Config;
use phone2mqtt::sim::SimPhone;
use phone2mqtt::topics::Topics;
use serde_json::{json, Value};

/// One phone of each vendor; each vendor's desk name.
const FLEET: &[(&str, &str, &str)] = &[
    ("yealink", "00:15:65:00:01:01", "Reception"),
    ("grandstream", "00:0b:82:00:01:02", "Sales"),
    ("snom", "00:04:13:00:01:03", "Support"),
    ("fanvil", "0c:38:3e:00:01:04", "Lab"),
    ("htek", "00:1f:c1:00:01:05", "Warehouse"),
];
/// A configured phone with `homeassistant = false`.
const HIDDEN: &str = "001565000106";

fn id_of(mac: &str) -> String {
    phone2mqtt::model::PhoneId::parse(mac).unwrap().to_string()
}

fn config_topic(id: &str) -> String {
    format!("homeassistant/device/phone2mqtt_{id}/config")
}

/// What each vendor's phone must have, written from the vendor tables in topics.md (not from
/// the code): every phone has the event entity, call state, last caller, ringing and a trigger
/// per event; the rest depends on the vendor.
fn expected_components(vendor: &str) -> BTreeMap<&'static str, &'static str> {
    let mut expected = BTreeMap::from([
        ("event", "event"),
        ("call_state", "sensor"),
        ("last_caller", "sensor"),
        ("ringing", "binary_sensor"),
        ("answer", "button"),
        ("hangup", "button"),
        ("reboot", "button"),
        ("dial", "text"),
        ("event_incoming_call", "device_automation"),
        ("event_dnd_on", "device_automation"),
        ("event_missed_call", "device_automation"),
    ]);
    match vendor {
        "yealink" => expected.extend([
            ("key_3", "device_automation"),
            ("registered", "binary_sensor"),
            ("dnd", "switch"),
            ("volume_up", "button"),
            ("volume_down", "button"),
            ("message", "notify"),
        ]),
        // No dnd_key configured: DND can be shown, not set. No volume keys, no messages.
        "grandstream" => expected.extend([
            ("registered", "binary_sensor"),
            ("dnd_state", "binary_sensor"),
        ]),
        // Snom reports no registration and cannot refresh: no registration sensor.
        "snom" => expected.extend([
            ("key_3", "device_automation"),
            ("dnd", "switch"),
            ("volume_up", "button"),
            ("volume_down", "button"),
        ]),
        "fanvil" | "htek" => expected.extend([
            ("registered", "binary_sensor"),
            ("dnd", "switch"),
            ("volume_up", "button"),
            ("volume_down", "button"),
        ]),
        other => panic!("no expectation for {other}"),
    }
    expected
}

/// Components no phone of this vendor may have.
fn absent_components(vendor: &str) -> &'static [&'static str] {
    match vendor {
        "yealink" => &["dnd_state"],
        // No key type that calls a URL: no key trigger.
        "grandstream" => &["dnd", "volume_up", "volume_down", "message", "key_3"],
        "snom" => &["registered", "message", "dnd_state"],
        _ => &["message", "dnd_state", "key_3"],
    }
}

struct Fleet {
    gw: TestGateway,
    phones: Vec<SimPhone>,
}

async fn fleet() -> Fleet {
    let addrs: Vec<_> = FLEET.iter().map(|_| free_port()).collect();
    let mut config = test_config();
    for ((vendor, mac, name), addr) in FLEET.iter().zip(&addrs) {
        config.phones.push(phone_entry(vendor, mac, *addr, name));
    }
    let mut hidden = phone_entry("yealink", HIDDEN, free_port(), "Hidden");
    hidden.homeassistant = false;
    config.phones.push(hidden);
    config
        .homeassistant
        .entity_names
        .insert("dnd".into(), "Nicht stören".into());
    // Key 3 of every phone that can have one opens the garage.
    config
        .provisioning
        .keys
        .insert("3".into(), "Garage door".into());
    let gw = start_gateway(config).await;
    let mut phones = Vec::new();
    for ((vendor, mac, _), addr) in FLEET.iter().zip(&addrs) {
        phones.push(start_phone(&gw, vendor, mac, *addr).await);
    }
    Fleet { gw, phones }
}

/// A payload as JSON; discovery messages expanded to Home Assistant's full key names.
fn read(topic: &str, payload: &str) -> Option<Value> {
    let value: Value = serde_json::from_str(payload).ok()?;
    Some(if topic.starts_with("homeassistant/") {
        phone2mqtt::ha::abbreviations::expand(value)
    } else {
        value
    })
}

/// The next JSON message on `topic` satisfying `check`; discovery messages with Home
/// Assistant's abbreviations expanded, as Home Assistant reads them.
async fn json(probe: &mut MqttProbe, topic: &str, check: impl Fn(&Value) -> bool) -> Value {
    let (payload, _) = probe
        .expect_raw(topic, |p, _| read(topic, p).is_some_and(|v| check(&v)))
        .await;
    read(topic, &payload).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_phone_is_a_valid_home_assistant_device_with_its_vendors_entities() {
    let fleet = fleet().await;
    // Each phone's discovery is published at once, and again when its model and firmware
    // become known from its first callbacks.
    let mut probe = MqttProbe::connect_filters(fleet.gw.mqtt_port(), &["homeassistant/#"]).await;
    for (_, mac, _) in FLEET {
        probe
            .expect_raw(&config_topic(&id_of(mac)), |p, _| {
                read(&config_topic(&id_of(mac)), p).is_some_and(|c| {
                    c["device"]["model"].is_string() && c["device"]["sw_version"].is_string()
                })
            })
            .await;
    }
    // A late subscriber, as Home Assistant starting after the gateway: it gets everything
    // from the broker's retained messages.
    let mut probe = MqttProbe::connect_filters(fleet.gw.mqtt_port(), &["homeassistant/#"]).await;
    let mut discovery = Vec::new();
    for (vendor, mac, name) in FLEET {
        let id = id_of(mac);
        let (payload, retained) = probe.expect_raw(&config_topic(&id), |_, _| true).await;
        assert!(retained, "{vendor}: discovery is retained");
        let config: Value = read(&config_topic(&id), &payload).unwrap();
        assert_valid(&config_topic(&id), &config);

        let device = &config["device"];
        assert_eq!(device["name"], *name);
        assert_eq!(device["identifiers"], json!([format!("phone2mqtt_{id}")]));
        assert_eq!(device["connections"], json!([["mac", mac.to_lowercase()]]));
        assert_eq!(
            device["configuration_url"],
            format!("{}/#{id}", fleet.gw.gateway.public_url)
        );
        assert_eq!(device["via_device"], "phone2mqtt_bridge_test");
        assert!(device["model"].is_string(), "{vendor}: the model is known");
        assert!(
            device["sw_version"].is_string(),
            "{vendor}: the firmware is known"
        );
        assert_eq!(config["origin"]["name"], "phone2mqtt");
        assert_eq!(config["availability_mode"], "all");
        assert_eq!(
            config["availability"],
            json!([{"topic": "phone2mqtt/bridge/test/state"}, {"topic": format!("phone2mqtt/{id}/availability")}])
        );

        let components = config["components"].as_object().unwrap();
        for (component, platform) in expected_components(vendor) {
            assert_eq!(
                components.get(component).map(|c| &c["platform"]),
                Some(&json!(platform)),
                "{vendor}: {component}"
            );
        }
        for component in absent_components(vendor) {
            assert!(
                !components.contains_key(*component),
                "{vendor} has no {component}"
            );
        }
        // A trigger for every event the vendor reports, and the event entity knows them all.
        let spec = phone2mqtt::phone_vendors::find(vendor).unwrap();
        let mut vendor_events: BTreeSet<&str> =
            spec.events.iter().map(|e| e.event.name()).collect();
        // Phones with a programmed key also report `key`.
        if spec.programming.key.is_some() {
            vendor_events.insert("key");
            let trigger = &components["key_3"];
            assert_eq!(trigger["subtype"], "Garage door", "{vendor}");
            assert_eq!(trigger["payload"], "3", "{vendor}");
        }
        let event_types: BTreeSet<&str> = components["event"]["event_types"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert_eq!(event_types, vendor_events, "{vendor}");
        for event in vendor_events.iter().filter(|e| **e != "key") {
            let trigger = &components[&format!("event_{event}")];
            assert_eq!(trigger["subtype"], *event);
            assert_eq!(trigger["topic"], format!("phone2mqtt/{id}/event"));
        }
        if let Some(dnd) = components.get("dnd") {
            assert_eq!(dnd["name"], "Nicht stören", "entity_names renames");
        }
        discovery.push((config_topic(&id), payload));
    }
    // The agent's own device, which the phones hang off.
    let (bridge, retained) = probe
        .expect_raw(
            "homeassistant/device/phone2mqtt_bridge_test/config",
            |_, _| true,
        )
        .await;
    assert!(retained);
    let bridge_config: Value = read("homeassistant/", &bridge).unwrap();
    assert_valid("bridge", &bridge_config);
    discovery.push((
        "homeassistant/device/phone2mqtt_bridge_test/config".into(),
        bridge,
    ));
    // Nothing retained for the phone with `homeassistant = false`.
    let hidden: Vec<String> = probe.payloads_on(&config_topic(HIDDEN));
    assert!(
        hidden.iter().all(String::is_empty),
        "no discovery for the hidden phone: {hidden:?}"
    );

    // Real traffic for the templates: a call coming in, answered, DND on.
    let mut traffic = MqttProbe::connect_filters(fleet.gw.mqtt_port(), &["phone2mqtt/#"]).await;
    let reception = &fleet.phones[0];
    let yealink = id_of(FLEET[0].1);
    reception.ring("+4930123456", Some("Anna Schmidt")).unwrap();
    json(&mut traffic, &format!("phone2mqtt/{yealink}"), |s| {
        s["call_state"] == "ringing"
    })
    .await;
    reception.local_answer().unwrap();
    json(&mut traffic, &format!("phone2mqtt/{yealink}"), |s| {
        s["call_state"] == "talking"
    })
    .await;
    traffic
        .publish(&format!("phone2mqtt/{yealink}/cmd/dnd"), "on")
        .await;
    json(&mut traffic, &format!("phone2mqtt/{yealink}"), |s| {
        s["dnd"] == true
    })
    .await;
    // Someone presses the garage key.
    reception.press_key(3).unwrap();
    json(&mut traffic, &format!("phone2mqtt/{yealink}/key/3"), |e| {
        e["label"] == "Garage door"
    })
    .await;
    let mut samples = BTreeMap::new();
    for topic in [
        format!("phone2mqtt/{yealink}"),
        format!("phone2mqtt/{yealink}/event"),
    ] {
        samples.insert(topic.clone(), traffic.payloads_on(&topic));
    }
    assert!(samples.values().all(|s| !s.is_empty()));
    home_assistant_check(&discovery, &samples);
    fleet.gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn home_assistant_coming_online_gets_discovery_again_and_hidden_phones_are_removed() {
    let fleet = fleet().await;
    let mut probe = MqttProbe::connect_filters(fleet.gw.mqtt_port(), &["homeassistant/#"]).await;
    let first = id_of(FLEET[0].1);
    probe
        .expect_raw(&config_topic(&first), |_, retained| retained)
        .await;
    // Home Assistant's birth message: every phone's discovery again, live.
    probe.publish("homeassistant/status", "online").await;
    for (_, mac, _) in FLEET {
        let (payload, _) = probe
            .expect_raw(&config_topic(&id_of(mac)), |_, retained| !retained)
            .await;
        let config: Value = read(&config_topic(&id_of(mac)), &payload).unwrap();
        assert_valid("again", &config);
    }
    // The hidden phone's discovery is removed with an empty retained payload.
    let (payload, _) = probe
        .expect_raw(&config_topic(HIDDEN), |_, retained| !retained)
        .await;
    assert_eq!(payload, "");
    // Its last will is not a birth: nothing is sent for `offline`.
    probe.publish("homeassistant/status", "offline").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let again = probe.payloads_on(&config_topic(&first));
    probe.publish("homeassistant/status", "online").await;
    probe
        .expect_raw(&config_topic(&first), |_, retained| !retained)
        .await;
    assert_eq!(
        probe.payloads_on(&config_topic(&first)).len(),
        again.len() + 1
    );
    fleet.gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_entities_command_topics_drive_the_phone() {
    let fleet = fleet().await;
    let mut probe =
        MqttProbe::connect_filters(fleet.gw.mqtt_port(), &["homeassistant/#", "phone2mqtt/#"])
            .await;
    let id = id_of(FLEET[0].1);
    let config = json(&mut probe, &config_topic(&id), |c| {
        c["components"].is_object()
    })
    .await;
    let components = &config["components"];
    let phone = &fleet.phones[0];

    // The DND switch: its command payload turns DND on at the phone, and its state template's
    // input (the state topic) follows the phone's own dnd_on event.
    let dnd = &components["dnd"];
    let on = dnd["payload_on"].as_str().unwrap();
    probe
        .publish(dnd["command_topic"].as_str().unwrap(), on)
        .await;
    phone_got(phone, "GET /servlet?key=DNDOn").await;
    let state = json(&mut probe, dnd["state_topic"].as_str().unwrap(), |s| {
        s["dnd"] == true
    })
    .await;
    assert_eq!(state["dnd"], true);
    assert!(phone.snapshot().dnd);
    let off = dnd["payload_off"].as_str().unwrap();
    probe
        .publish(dnd["command_topic"].as_str().unwrap(), off)
        .await;
    phone_got(phone, "GET /servlet?key=DNDOff").await;
    json(&mut probe, dnd["state_topic"].as_str().unwrap(), |s| {
        s["dnd"] == false
    })
    .await;

    // The dial text, a button, the notify entity: what Home Assistant publishes for each.
    let dial = &components["dial"];
    probe
        .publish(dial["command_topic"].as_str().unwrap(), "+49 30 1234")
        .await;
    phone_got(
        phone,
        "GET /servlet?key=number=%2B49301234&outgoing_uri=1001@pbx.example.com",
    )
    .await;
    let hangup = &components["hangup"];
    probe
        .publish(
            hangup["command_topic"].as_str().unwrap(),
            hangup["payload_press"].as_str().unwrap(),
        )
        .await;
    phone_got(phone, "GET /servlet?key=CALLEND").await;
    let message = &components["message"];
    probe
        .publish(
            message["command_topic"].as_str().unwrap(),
            "Lunch is served",
        )
        .await;
    let result = json(&mut probe, &format!("phone2mqtt/{id}/result"), |r| {
        r["command"] == "message"
    })
    .await;
    assert_eq!(result["status"], "ok", "{result}");
    assert_eq!(
        phone.snapshot().last_message.as_deref(),
        Some("Lunch is served")
    );
    fleet.gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_phone_that_calls_in_unconfigured_appears_marked_without_commands() {
    let gw = start_gateway(test_config()).await;
    let mut probe = MqttProbe::connect_filters(gw.mqtt_port(), &["homeassistant/#"]).await;
    let mac = "00:15:65:00:02:01";
    let _phone = start_phone(&gw, "yealink", mac, free_port()).await;
    let config = json(&mut probe, &config_topic(&id_of(mac)), |c| {
        c["device"].is_object()
    })
    .await;
    assert_valid("discovered", &config);
    assert_eq!(
        config["device"]["name"],
        format!("Yealink {} (not configured)", id_of(mac))
    );
    let platforms: BTreeSet<&str> = config["components"]
        .as_object()
        .unwrap()
        .values()
        .map(|c| c["platform"].as_str().unwrap())
        .collect();
    for command_platform in ["button", "switch", "text", "notify"] {
        assert!(!platforms.contains(command_platform), "{platforms:?}");
    }
    assert!(platforms.contains("event") && platforms.contains("device_automation"));
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_discovery_of_this_agent_is_removed_and_other_agents_are_left_alone() {
    // A broker (with agent `other`) holding what agents left there before: a phone agent `test`
    // no longer has, and a phone of agent `third`.
    let mut first = test_config();
    first.agent.name = Some("other".into());
    let broker = start_gateway(first).await;
    let mut probe = MqttProbe::connect_filters(broker.mqtt_port(), &["homeassistant/#"]).await;
    let topics = Topics::new("phone2mqtt");
    let stale = |agent: &str, id: &str| {
        json!({
            "device": {"identifiers": [format!("phone2mqtt_{id}")], "name": "Old",
                       "via_device": format!("phone2mqtt_bridge_{agent}")},
            "origin": {"name": "phone2mqtt"},
            "components": {"event": {"platform": "event", "unique_id": format!("phone2mqtt_{id}_event"),
                                     "state_topic": format!("{}/{id}/event", topics.base()),
                                     "event_types": ["incoming_call"]}},
        })
        .to_string()
    };
    // More than rumqttd hands a QoS 1 subscription (100), so the agent must read them at QoS 0.
    let gone: Vec<String> = (0..150)
        .map(|i| format!("001565000{:03}", 400 + i))
        .collect();
    let elsewhere = "001565000302";
    let mut stale_ones: Vec<(&str, &str)> = gone.iter().map(|id| (id.as_str(), "test")).collect();
    stale_ones.push((elsewhere, "third"));
    for (id, agent) in stale_ones {
        probe
            .publish_retained(&config_topic(id), &stale(agent, id))
            .await;
        // Seen by a subscriber: the broker has it.
        probe
            .expect_raw(&config_topic(id), |p, _| !p.is_empty())
            .await;
    }

    // Agent `test` starts on that broker.
    let mut config: Config = test_config();
    config.mqtt.url = Some(format!("mqtt://127.0.0.1:{}", broker.mqtt_port()));
    let agent = start_gateway(config).await;
    // The broker keeps what is retained: every stale one is gone (an empty retained message
    // deletes it), the other agent's is still there.
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    loop {
        let mut check =
            MqttProbe::connect_filters(broker.mqtt_port(), &["homeassistant/device/#"]).await;
        let (payload, retained) = check
            .expect_raw(&config_topic(elsewhere), |_, _| true)
            .await;
        assert!(retained && !payload.is_empty());
        tokio::time::sleep(Duration::from_millis(300)).await;
        let left = gone
            .iter()
            .filter(|id| {
                check
                    .payloads_on(&config_topic(id))
                    .iter()
                    .any(|p| !p.is_empty())
            })
            .count();
        if left == 0 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{left} of {} stale discovery messages were not removed",
            gone.len()
        );
    }
    agent.stop().await;
    broker.stop().await;
}

fn assert_valid(topic: &str, config: &Value) {
    let errors = ha_schema::check(topic, config);
    assert!(errors.is_empty(), "{topic}: {errors:#?}\n{config:#}");
}

/// A broker in agent `other`'s gateway, where agent `test` (whose config is returned) published
/// the discovery of one phone and stopped; the probe watches `homeassistant/device/#`.
async fn published_once_on_another_broker(mac: &str) -> (TestGateway, Config, MqttProbe) {
    let mut first = test_config();
    first.agent.name = Some("other".into());
    let broker = start_gateway(first).await;
    let mut config = test_config();
    config.mqtt.url = Some(format!("mqtt://127.0.0.1:{}", broker.mqtt_port()));
    config
        .phones
        .push(phone_entry("yealink", mac, free_port(), "Desk"));
    let agent = start_gateway(config.clone()).await;
    let mut probe =
        MqttProbe::connect_filters(broker.mqtt_port(), &["homeassistant/device/#"]).await;
    probe
        .expect_raw(&config_topic(&id_of(mac)), |p, _| !p.is_empty())
        .await;
    agent.stop().await;
    (broker, config, probe)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn turning_discovery_off_removes_what_the_agent_published() {
    let mac = "00:15:65:00:05:01";
    let id = id_of(mac);
    let (broker, mut config, mut probe) = published_once_on_another_broker(mac).await;

    // Back with `[homeassistant] enabled = false`: its phone and its own device are removed.
    config.homeassistant.enabled = false;
    let agent = start_gateway(config).await;
    let bridge = "homeassistant/device/phone2mqtt_bridge_test/config";
    for topic in [config_topic(&id), bridge.to_string()] {
        let (payload, _) = probe
            .expect_raw(&topic, |p, retained| p.is_empty() && !retained)
            .await;
        assert_eq!(payload, "");
    }
    let mut late =
        MqttProbe::connect_filters(broker.mqtt_port(), &["homeassistant/device/#"]).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(late.payloads_on(&config_topic(&id)).is_empty());
    assert!(late.payloads_on(bridge).is_empty());
    agent.stop().await;
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_retain_the_broker_keeps_no_discovery_and_home_assistant_gets_it_live() {
    let mac = "00:15:65:00:05:02";
    let id = id_of(mac);
    let (broker, mut config, mut probe) = published_once_on_another_broker(mac).await;

    // Back with `retain = false`: what it had retained is cleared, then sent live.
    config.homeassistant.retain = false;
    let agent = start_gateway(config).await;
    probe
        .expect_raw(&config_topic(&id), |p, retained| p.is_empty() && !retained)
        .await;
    let (payload, retained) = probe
        .expect_raw(&config_topic(&id), |p, _| !p.is_empty())
        .await;
    assert!(!retained);
    assert_valid("live", &read(&config_topic(&id), &payload).unwrap());

    // Nothing stays on the broker for a newcomer...
    let mut late = MqttProbe::connect_filters(broker.mqtt_port(), &["homeassistant/#"]).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(late.payloads_on(&config_topic(&id)).is_empty());
    // ...until Home Assistant announces itself: then it gets every message.
    late.publish("homeassistant/status", "online").await;
    let (payload, retained) = late
        .expect_raw(&config_topic(&id), |p, _| !p.is_empty())
        .await;
    assert!(!retained);
    assert_valid(
        "after the birth message",
        &read(&config_topic(&id), &payload).unwrap(),
    );
    late.expect_raw(
        "homeassistant/device/phone2mqtt_bridge_test/config",
        |p, r| !p.is_empty() && !r,
    )
    .await;
    agent.stop().await;
    broker.stop().await;
}

/// Home Assistant's own MQTT code reads every discovery message and renders the templates
/// with `samples` (skipped where Home Assistant cannot be installed).
fn home_assistant_check(messages: &[(String, String)], samples: &BTreeMap<String, Vec<String>>) {
    let Some(python) = ha_python() else {
        return;
    };
    let request = json!({
        "messages": messages.iter().map(|(t, p)| json!({"topic": t, "payload": p})).collect::<Vec<_>>(),
        "samples": samples,
    });
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ha_check.py");
    let mut child = Command::new(&python)
        .arg(&script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python starts");
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(request.to_string().as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "Home Assistant refused the discovery:\n{stdout}\n{stderr}"
    );
    assert!(stdout.trim_end().ends_with("ok"), "{stdout}\n{stderr}");
    eprintln!("Home Assistant's own MQTT code accepted every discovery message:\n{stdout}");
}
