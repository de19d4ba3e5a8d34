//! Home Assistant discovery and the Node-RED example, end to end: a real gateway with simulated
//! phones of every vendor publishes one retained discovery message per phone; each is checked
//! against a schema written from Home Assistant's docs and, where Home Assistant can be
//! installed (Python 3.13+), by Home Assistant's own code (`tests/ha_check.py`). The entities'
//! command topics really drive the phones.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use phone2mqtt::config::Config;
use phone2mqtt::sim::SimPhone;
use phone2mqtt::topics::Topics;
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use serde_json::{json, Value};
use tokio::sync::mpsc;

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

/// Records everything on its filters, with the retain flag.
struct Probe {
    client: AsyncClient,
    messages: mpsc::UnboundedReceiver<(String, String, bool)>,
    seen: Vec<(String, String, bool)>,
    /// Received, not yet matched by `expect`.
    pending: std::collections::VecDeque<(String, String, bool)>,
}

impl Probe {
    async fn connect(port: u16, filters: &[&str]) -> Probe {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let id = format!(
            "ha-probe-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        );
        let mut options = MqttOptions::new(id, "127.0.0.1", port);
        options.set_max_packet_size(1 << 20, 1 << 20);
        let (client, mut eventloop) = AsyncClient::new(options, 100);
        let (tx, messages) = mpsc::unbounded_channel();
        let (subscribed_tx, mut subscribed) = mpsc::unbounded_channel();
        let filters: Vec<String> = filters.iter().map(|f| f.to_string()).collect();
        let wanted = filters.len();
        let sub_client = client.clone();
        tokio::spawn(async move {
            let mut acks = 0;
            loop {
                match eventloop.poll().await {
                    Ok(Event::Incoming(Packet::ConnAck(_))) => {
                        for filter in &filters {
                            // QoS 0 for `#` filters: rumqttd gives a QoS 1 subscription at
                            // most 100 retained messages.
                            let qos = phone2mqtt::mqtt::subscription_qos(filter);
                            let _ = sub_client.try_subscribe(filter.clone(), qos);
                        }
                    }
                    Ok(Event::Incoming(Packet::SubAck(_))) => {
                        acks += 1;
                        if acks == wanted {
                            let _ = subscribed_tx.send(());
                        }
                    }
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        let text = String::from_utf8_lossy(&p.payload).into_owned();
                        if tx.send((p.topic, text, p.retain)).is_err() {
                            return;
                        }
                    }
                    Ok(_) => {}
                    Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                }
            }
        });
        tokio::time::timeout(TIMEOUT, subscribed.recv())
            .await
            .expect("the probe subscribed");
        Probe {
            client,
            messages,
            seen: Vec::new(),
            pending: Default::default(),
        }
    }

    /// The next message on `topic` that passes `check(payload, retained)`: (payload, retained).
    async fn expect(&mut self, topic: &str, check: impl Fn(&str, bool) -> bool) -> (String, bool) {
        let matches = |(t, p, r): &(String, String, bool)| t == topic && check(p, *r);
        if let Some(index) = self.pending.iter().position(matches) {
            let (_, payload, retained) = self.pending.remove(index).unwrap();
            return (payload, retained);
        }
        let deadline = tokio::time::Instant::now() + TIMEOUT;
        loop {
            let Ok(Some((got, payload, retained))) =
                tokio::time::timeout_at(deadline, self.messages.recv()).await
            else {
                let seen: Vec<_> = self.seen.iter().map(|(t, _, r)| (t, r)).collect();
                panic!("nothing on {topic} matching the check within {TIMEOUT:?}; seen: {seen:#?}");
            };
            self.seen.push((got.clone(), payload.clone(), retained));
            if got == topic && check(&payload, retained) {
                return (payload, retained);
            }
            self.pending.push_back((got, payload, retained));
        }
    }

    /// The next JSON message on `topic` satisfying `check`; discovery messages with Home
    /// Assistant's abbreviations expanded, as Home Assistant reads them.
    async fn json(&mut self, topic: &str, check: impl Fn(&Value) -> bool) -> Value {
        let (payload, _) = self
            .expect(topic, |p, _| read(topic, p).is_some_and(|v| check(&v)))
            .await;
        read(topic, &payload).unwrap()
    }

    async fn publish(&self, topic: &str, payload: &str, retain: bool) {
        self.client
            .publish(topic, QoS::AtLeastOnce, retain, payload.as_bytes().to_vec())
            .await
            .unwrap();
    }

    /// Everything seen so far on `topic`, oldest first.
    fn payloads_on(&mut self, topic: &str) -> Vec<String> {
        while let Ok(message) = self.messages.try_recv() {
            self.seen.push(message.clone());
            self.pending.push_back(message);
        }
        self.seen
            .iter()
            .filter(|(t, _, _)| t == topic)
            .map(|(_, p, _)| p.clone())
            .collect()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_phone_is_a_valid_home_assistant_device_with_its_vendors_entities() {
    let fleet = fleet().await;
    // Each phone's discovery is published at once, and again when its model and firmware
    // become known from its first callbacks.
    let mut probe = Probe::connect(fleet.gw.mqtt_port(), &["homeassistant/#"]).await;
    for (_, mac, _) in FLEET {
        probe
            .expect(&config_topic(&id_of(mac)), |p, _| {
                read(&config_topic(&id_of(mac)), p).is_some_and(|c| {
                    c["device"]["model"].is_string() && c["device"]["sw_version"].is_string()
                })
            })
            .await;
    }
    // A late subscriber, as Home Assistant starting after the gateway: it gets everything
    // from the broker's retained messages.
    let mut probe = Probe::connect(fleet.gw.mqtt_port(), &["homeassistant/#"]).await;
    let mut discovery = Vec::new();
    for (vendor, mac, name) in FLEET {
        let id = id_of(mac);
        let (payload, retained) = probe.expect(&config_topic(&id), |_, _| true).await;
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
        .expect(
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
    let mut traffic = Probe::connect(fleet.gw.mqtt_port(), &["phone2mqtt/#"]).await;
    let reception = &fleet.phones[0];
    let yealink = id_of(FLEET[0].1);
    reception.ring("+4930123456", Some("Anna Schmidt")).unwrap();
    traffic
        .json(&format!("phone2mqtt/{yealink}"), |s| {
            s["call_state"] == "ringing"
        })
        .await;
    reception.local_answer().unwrap();
    traffic
        .json(&format!("phone2mqtt/{yealink}"), |s| {
            s["call_state"] == "talking"
        })
        .await;
    traffic
        .publish(&format!("phone2mqtt/{yealink}/cmd/dnd"), "on", false)
        .await;
    traffic
        .json(&format!("phone2mqtt/{yealink}"), |s| s["dnd"] == true)
        .await;
    // Someone presses the garage key.
    reception.press_key(3).unwrap();
    traffic
        .json(&format!("phone2mqtt/{yealink}/key/3"), |e| {
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
    let mut probe = Probe::connect(fleet.gw.mqtt_port(), &["homeassistant/#"]).await;
    let first = id_of(FLEET[0].1);
    probe
        .expect(&config_topic(&first), |_, retained| retained)
        .await;
    // Home Assistant's birth message: every phone's discovery again, live.
    probe.publish("homeassistant/status", "online", false).await;
    for (_, mac, _) in FLEET {
        let (payload, _) = probe
            .expect(&config_topic(&id_of(mac)), |_, retained| !retained)
            .await;
        let config: Value = read(&config_topic(&id_of(mac)), &payload).unwrap();
        assert_valid("again", &config);
    }
    // The hidden phone's discovery is removed with an empty retained payload.
    let (payload, _) = probe
        .expect(&config_topic(HIDDEN), |_, retained| !retained)
        .await;
    assert_eq!(payload, "");
    // Its last will is not a birth: nothing is sent for `offline`.
    probe
        .publish("homeassistant/status", "offline", false)
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let again = probe.payloads_on(&config_topic(&first));
    probe.publish("homeassistant/status", "online", false).await;
    probe
        .expect(&config_topic(&first), |_, retained| !retained)
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
        Probe::connect(fleet.gw.mqtt_port(), &["homeassistant/#", "phone2mqtt/#"]).await;
    let id = id_of(FLEET[0].1);
    let config = probe
        .json(&config_topic(&id), |c| c["components"].is_object())
        .await;
    let components = &config["components"];
    let phone = &fleet.phones[0];

    // The DND switch: its command payload turns DND on at the phone, and its state template's
    // input (the state topic) follows the phone's own dnd_on event.
    let dnd = &components["dnd"];
    let on = dnd["payload_on"].as_str().unwrap();
    probe
        .publish(dnd["command_topic"].as_str().unwrap(), on, false)
        .await;
    phone_got(phone, "GET /servlet?key=DNDOn").await;
    let state = probe
        .json(dnd["state_topic"].as_str().unwrap(), |s| s["dnd"] == true)
        .await;
    assert_eq!(state["dnd"], true);
    assert!(phone.snapshot().dnd);
    let off = dnd["payload_off"].as_str().unwrap();
    probe
        .publish(dnd["command_topic"].as_str().unwrap(), off, false)
        .await;
    phone_got(phone, "GET /servlet?key=DNDOff").await;
    probe
        .json(dnd["state_topic"].as_str().unwrap(), |s| s["dnd"] == false)
        .await;

    // The dial text, a button, the notify entity: what Home Assistant publishes for each.
    let dial = &components["dial"];
    probe
        .publish(
            dial["command_topic"].as_str().unwrap(),
            "+49 30 1234",
            false,
        )
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
            false,
        )
        .await;
    phone_got(phone, "GET /servlet?key=CALLEND").await;
    let message = &components["message"];
    probe
        .publish(
            message["command_topic"].as_str().unwrap(),
            "Lunch is served",
            false,
        )
        .await;
    let result = probe
        .json(&format!("phone2mqtt/{id}/result"), |r| {
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
    let mut probe = Probe::connect(gw.mqtt_port(), &["homeassistant/#"]).await;
    let mac = "00:15:65:00:02:01";
    let _phone = start_phone(&gw, "yealink", mac, free_port()).await;
    let config = probe
        .json(&config_topic(&id_of(mac)), |c| c["device"].is_object())
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
    let mut probe = Probe::connect(broker.mqtt_port(), &["homeassistant/#"]).await;
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
            .publish(&config_topic(id), &stale(agent, id), true)
            .await;
        // Seen by a subscriber: the broker has it.
        probe.expect(&config_topic(id), |p, _| !p.is_empty()).await;
    }

    // Agent `test` starts on that broker.
    let mut config: Config = test_config();
    config.mqtt.url = Some(format!("mqtt://127.0.0.1:{}", broker.mqtt_port()));
    let agent = start_gateway(config).await;
    // The broker keeps what is retained: every stale one is gone (an empty retained message
    // deletes it), the other agent's is still there.
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    loop {
        let mut check = Probe::connect(broker.mqtt_port(), &["homeassistant/device/#"]).await;
        let (payload, retained) = check.expect(&config_topic(elsewhere), |_, _| true).await;
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
async fn published_once_on_another_broker(mac: &str) -> (TestGateway, Config, Probe) {
    let mut first = test_config();
    first.agent.name = Some("other".into());
    let broker = start_gateway(first).await;
    let mut config = test_config();
    config.mqtt.url = Some(format!("mqtt://127.0.0.1:{}", broker.mqtt_port()));
    config
        .phones
        .push(phone_entry("yealink", mac, free_port(), "Desk"));
    let agent = start_gateway(config.clone()).await;
    let mut probe = Probe::connect(broker.mqtt_port(), &["homeassistant/device/#"]).await;
    probe
        .expect(&config_topic(&id_of(mac)), |p, _| !p.is_empty())
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
            .expect(&topic, |p, retained| p.is_empty() && !retained)
            .await;
        assert_eq!(payload, "");
    }
    let mut late = Probe::connect(broker.mqtt_port(), &["homeassistant/device/#"]).await;
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
        .expect(&config_topic(&id), |p, retained| p.is_empty() && !retained)
        .await;
    let (payload, retained) = probe.expect(&config_topic(&id), |p, _| !p.is_empty()).await;
    assert!(!retained);
    assert_valid("live", &read(&config_topic(&id), &payload).unwrap());

    // Nothing stays on the broker for a newcomer...
    let mut late = Probe::connect(broker.mqtt_port(), &["homeassistant/#"]).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(late.payloads_on(&config_topic(&id)).is_empty());
    // ...until Home Assistant announces itself: then it gets every message.
    late.publish("homeassistant/status", "online", false).await;
    let (payload, retained) = late.expect(&config_topic(&id), |p, _| !p.is_empty()).await;
    assert!(!retained);
    assert_valid(
        "after the birth message",
        &read(&config_topic(&id), &payload).unwrap(),
    );
    late.expect(
        "homeassistant/device/phone2mqtt_bridge_test/config",
        |p, r| !p.is_empty() && !r,
    )
    .await;
    agent.stop().await;
    broker.stop().await;
}

#[test]
fn the_node_red_example_imports_with_core_nodes_and_documented_topics() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/node-red-flow.json");
    let flow: Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).expect("the flow is JSON");
    let nodes = flow.as_array().expect("a flow export is an array of nodes");
    // The nodes that ship with Node-RED itself (packages/node_modules/@node-red/nodes/core).
    let core: BTreeSet<&str> = [
        "tab",
        "comment",
        "inject",
        "debug",
        "function",
        "change",
        "switch",
        "template",
        "mqtt in",
        "mqtt out",
        "mqtt-broker",
        "json",
        "delay",
    ]
    .into();
    let ids: BTreeSet<&str> = nodes.iter().map(|n| n["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), nodes.len(), "node ids are unique");
    let topics = Topics::new("phone2mqtt");
    let mut used = BTreeSet::new();
    for node in nodes {
        let kind = node["type"].as_str().unwrap();
        assert!(core.contains(kind), "{kind} is not a core node");
        let outputs = node["wires"].as_array().into_iter().flatten();
        for wire in outputs.filter_map(Value::as_array).flatten() {
            assert!(ids.contains(wire.as_str().unwrap()), "dangling wire {wire}");
        }
        if kind == "mqtt-broker" {
            assert_eq!(node["broker"], "localhost");
            assert_eq!(node["port"], "1883");
        }
        if kind == "mqtt in" || kind == "mqtt out" {
            let broker = node["broker"].as_str().unwrap();
            assert!(
                ids.contains(broker),
                "the broker config node is in the flow"
            );
            let topic = node["topic"].as_str().unwrap();
            // `+` stands for any phone: parse with a phone's name in its place.
            let concrete = topic.replace('+', "Reception");
            assert!(
                topics.parse(&concrete).is_some(),
                "{topic} is not a phone2mqtt topic"
            );
            used.insert(kind);
        }
    }
    assert_eq!(used.len(), 2, "the flow listens and sends");
}

/// The example flow imported into a real Node-RED (installed from npm into `target/node-red` on
/// first use), pointed at a test gateway: its inject buttons drive the phone and an incoming call
/// shows the caller. `PHONE2MQTT_NODE_RED=skip` skips it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_node_red_example_runs_in_node_red() {
    let Some(node_red) = node_red() else {
        return;
    };
    // Node-RED logs in as the README says for a broker that wants a login: an operator API
    // token's name as the user and the token as the password. The broker takes no anonymous
    // client, so the flow works only with that login.
    let addr = free_port();
    let mut config = test_config();
    config.broker.allow_anonymous = Some(false);
    config.phones.push(phone_entry(
        "yealink",
        "00:15:65:00:04:01",
        addr,
        "Reception",
    ));
    let gw = start_gateway(config).await;
    let phone = start_phone(&gw, "yealink", "00:15:65:00:04:01", addr).await;
    let token = phone2mqtt::auth::store::Store::new(&gw.data_dir.0)
        .create_token("nodered", phone2mqtt::auth::Role::Operator)
        .unwrap();
    let dir = tempdir::TempDir::new();
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/node-red-flow.json");
    let mut flow: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut credentials = serde_json::Map::new();
    for node in flow.as_array_mut().unwrap() {
        if node["type"] == "mqtt-broker" {
            node["port"] = json!(gw.mqtt_port().to_string());
            // What the node's Security tab keeps, in Node-RED's unencrypted credentials file.
            credentials.insert(
                node["id"].as_str().unwrap().to_string(),
                json!({"user": "nodered", "password": token}),
            );
        }
        if node["type"] == "debug" {
            // The sidebar needs a browser; the log is what a test can read.
            node["console"] = json!(true);
        }
    }
    std::fs::write(dir.0.join("flows.json"), flow.to_string()).unwrap();
    std::fs::write(
        dir.0.join("flows_cred.json"),
        Value::Object(credentials).to_string(),
    )
    .unwrap();
    let settings = dir.0.join("settings.js");
    std::fs::write(&settings, "module.exports = { credentialSecret: false };\n").unwrap();
    let log = dir.0.join("node-red.log");
    let http = free_port().port();
    let child = Command::new(&node_red)
        .args([
            "-u",
            dir.0.to_str().unwrap(),
            "-s",
            settings.to_str().unwrap(),
            "-p",
            &http.to_string(),
            "flows.json",
        ])
        .stdout(std::fs::File::create(&log).unwrap())
        .stderr(Stdio::null())
        .spawn()
        .expect("node-red starts");
    let _running = KillOnDrop(child);
    let wait_log = |needle: String| {
        let log = log.clone();
        async move {
            let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
            loop {
                let text = std::fs::read_to_string(&log).unwrap_or_default();
                if text.contains(&needle) {
                    return;
                }
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "Node-RED never logged `{needle}`:\n{text}"
                );
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    };
    wait_log("Started flows".into()).await;
    wait_log(format!(
        "Connected to broker: mqtt://localhost:{}",
        gw.mqtt_port()
    ))
    .await;
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(!text.contains("Waiting for missing types"), "{text}");

    // A call comes in: the caller shows, unescaped. Node-RED logs "Connected" before its
    // subscriptions are in place, so a call that beat them is rung again (a few times at most).
    let shown = "Call for 001565000401 from O'Brien & Sons +4930123456";
    for attempt in 1..=5 {
        phone.ring("+4930123456", Some("O'Brien & Sons")).unwrap();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(4);
        while tokio::time::Instant::now() < deadline
            && !std::fs::read_to_string(&log)
                .unwrap_or_default()
                .contains(shown)
        {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        phone.remote_hangup().unwrap();
        if std::fs::read_to_string(&log)
            .unwrap_or_default()
            .contains(shown)
            || attempt == 5
        {
            break;
        }
    }
    wait_log(shown.into()).await;
    // The inject buttons, pressed as the editor presses them.
    let press = |id: &'static str| async move {
        let url = format!("http://127.0.0.1:{http}/inject/{id}");
        let answer = reqwest::Client::new().post(url).send().await.unwrap();
        assert!(
            answer.status().is_success(),
            "inject {id}: {}",
            answer.status()
        );
    };
    press("p2m.dnd.on").await;
    phone_got(&phone, "GET /servlet?key=DNDOn").await;
    press("p2m.dnd.off").await;
    phone_got(&phone, "GET /servlet?key=DNDOff").await;
    press("p2m.dial").await;
    phone_got(
        &phone,
        "GET /servlet?key=number=%2B49301234&outgoing_uri=1001@pbx.example.com",
    )
    .await;
    gw.stop().await;
}

struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Node-RED 4 (the newest line that runs on Node.js 18 and 20), installed once into
/// `target/node-red`; `None` (with a note) where there is no npm.
fn node_red() -> Option<PathBuf> {
    if std::env::var("PHONE2MQTT_NODE_RED").as_deref() == Ok("skip") {
        eprintln!("PHONE2MQTT_NODE_RED=skip: the real Node-RED import skipped");
        return None;
    }
    let prefix = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/node-red");
    let bin = prefix.join("node_modules/.bin/node-red");
    if bin.exists() {
        return Some(bin);
    }
    let npm_works = Command::new("npm")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !npm_works {
        eprintln!("NOTE: no npm here: the Node-RED flow was checked as JSON only");
        return None;
    }
    eprintln!("Installing {NODE_RED} into {} (once)...", prefix.display());
    std::fs::create_dir_all(&prefix).unwrap();
    let output = Command::new("npm")
        .args(["install", "--no-audit", "--no-fund", "--prefix"])
        .arg(&prefix)
        .arg(NODE_RED)
        .output()
        .expect("npm runs");
    assert!(
        output.status.success() && bin.exists(),
        "installing Node-RED failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    Some(bin)
}

const NODE_RED: &str = "node-red@4.1.8";

// ---------------------------------------------------------------------------------------------
// Home Assistant's own check (tests/ha_check.py), when its package can be installed.

/// The newest Home Assistant that installs on Python 3.13.0 (later ones want 3.13.2+); the
/// MQTT integration it carries has device-based discovery (since 2024.11).
const HOMEASSISTANT: &str = "homeassistant==2025.4.4";
const PAHO: &str = "paho-mqtt==2.1.0";

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

/// A Python with Home Assistant: `PHONE2MQTT_HA_PYTHON`, or `target/ha-venv` (made on first use
/// from a Python 3.13+, with the pinned Home Assistant). `PHONE2MQTT_HA=skip` skips it.
fn ha_python() -> Option<PathBuf> {
    if std::env::var("PHONE2MQTT_HA").as_deref() == Ok("skip") {
        eprintln!("PHONE2MQTT_HA=skip: Home Assistant's own check skipped");
        return None;
    }
    if let Some(python) = std::env::var_os("PHONE2MQTT_HA_PYTHON").filter(|p| !p.is_empty()) {
        return Some(python.into());
    }
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/ha-venv");
    let python = venv.join("bin/python");
    let ready = |python: &Path| {
        Command::new(python)
            .args(["-c", "import homeassistant.components.mqtt.discovery"])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if ready(&python) {
        return Some(python);
    }
    let Some(base) = python_313() else {
        eprintln!(
            "NOTE: no Python 3.13+ here, so Home Assistant cannot be installed; the discovery was \
             checked against the schema written from its docs only"
        );
        return None;
    };
    eprintln!(
        "Installing {HOMEASSISTANT} into {} (once)...",
        venv.display()
    );
    let run = |command: &mut Command| {
        command.output().map(|o| {
            (
                o.status.success(),
                String::from_utf8_lossy(&o.stderr).into_owned(),
            )
        })
    };
    let steps = [
        run(Command::new(&base).arg("-m").arg("venv").arg(&venv)),
        run(Command::new(&python).args(["-m", "pip", "install", "-q", HOMEASSISTANT, PAHO])),
    ];
    for step in steps {
        match step {
            Ok((true, _)) => {}
            Ok((false, err)) => panic!("installing Home Assistant failed: {err}"),
            Err(err) => panic!("installing Home Assistant failed: {err}"),
        }
    }
    assert!(
        ready(&python),
        "Home Assistant installed but does not import"
    );
    Some(python)
}

/// A Python 3.13 or newer: on the PATH, or one of pyenv's.
fn python_313() -> Option<PathBuf> {
    let mut candidates: Vec<PathBuf> = ["python3.14", "python3.13", "python3"]
        .iter()
        .map(PathBuf::from)
        .collect();
    if let Some(home) = std::env::var_os("HOME") {
        let versions = Path::new(&home).join(".pyenv/versions");
        if let Ok(entries) = std::fs::read_dir(versions) {
            let mut found: Vec<PathBuf> = entries
                .flatten()
                .map(|e| e.path().join("bin/python3"))
                .collect();
            found.sort();
            candidates.extend(found.into_iter().rev());
        }
    }
    candidates.into_iter().find(|python| {
        Command::new(python)
            .args([
                "-c",
                "import sys; sys.exit(0 if sys.version_info >= (3, 13) else 1)",
            ])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    })
}

// ---------------------------------------------------------------------------------------------
// The schema written from Home Assistant's docs: always run, and the only check where Home
// Assistant cannot be installed. Every key is traced to the page that documents it.

mod ha_schema {
    use serde_json::Value;

    /// <https://www.home-assistant.io/integrations/mqtt/#device-discovery-payload>: the root of
    /// a device discovery message: `device` and `origin` (required), `components`, and the
    /// shared options (availability, `state_topic`, `command_topic`, `qos`, `encoding`).
    const ROOT: &[&str] = &[
        "device",
        "origin",
        "components",
        "availability",
        "availability_mode",
        "availability_topic",
        "availability_template",
        "payload_available",
        "payload_not_available",
        "state_topic",
        "command_topic",
        "qos",
        "encoding",
    ];

    /// The `device` mapping, documented on every entity page (e.g.
    /// <https://www.home-assistant.io/integrations/sensor.mqtt/#device>).
    const DEVICE: &[&str] = &[
        "identifiers",
        "connections",
        "manufacturer",
        "model",
        "model_id",
        "name",
        "hw_version",
        "serial_number",
        "sw_version",
        "via_device",
        "suggested_area",
        "configuration_url",
    ];

    /// <https://www.home-assistant.io/integrations/mqtt/#adding-information-about-the-origin-of-a-discovery-message>
    const ORIGIN: &[&str] = &["name", "sw_version", "support_url"];

    /// Options every MQTT entity takes (the common part of each entity page: availability,
    /// `device`, `entity_category`, `icon`, `json_attributes_*`, `name`, `unique_id`, `qos`...),
    /// plus `platform` in a device discovery component
    /// (<https://www.home-assistant.io/integrations/mqtt/#device-discovery-payload>).
    const ENTITY: &[&str] = &[
        "platform",
        "availability",
        "availability_mode",
        "availability_template",
        "availability_topic",
        "payload_available",
        "payload_not_available",
        "device",
        "origin",
        "enabled_by_default",
        "encoding",
        "entity_category",
        "entity_picture",
        "icon",
        "json_attributes_template",
        "json_attributes_topic",
        "name",
        "object_id",
        "qos",
        "unique_id",
    ];

    /// Per platform: (options beyond [`ENTITY`], required options, doc page).
    fn platform_options(
        name: &str,
    ) -> Option<(
        &'static [&'static str],
        &'static [&'static str],
        &'static str,
    )> {
        Some(match name {
            "event" => (
                &[
                    "state_topic",
                    "event_types",
                    "value_template",
                    "device_class",
                ],
                &["state_topic", "event_types"],
                "https://www.home-assistant.io/integrations/event.mqtt/",
            ),
            "sensor" => (
                &[
                    "state_topic",
                    "value_template",
                    "device_class",
                    "options",
                    "unit_of_measurement",
                    "state_class",
                    "expire_after",
                    "force_update",
                    "last_reset_value_template",
                    "suggested_display_precision",
                ],
                &["state_topic"],
                "https://www.home-assistant.io/integrations/sensor.mqtt/",
            ),
            "binary_sensor" => (
                &[
                    "state_topic",
                    "value_template",
                    "device_class",
                    "payload_on",
                    "payload_off",
                    "expire_after",
                    "force_update",
                    "off_delay",
                ],
                &["state_topic"],
                "https://www.home-assistant.io/integrations/binary_sensor.mqtt/",
            ),
            "switch" => (
                &[
                    "command_topic",
                    "command_template",
                    "state_topic",
                    "value_template",
                    "payload_on",
                    "payload_off",
                    "state_on",
                    "state_off",
                    "optimistic",
                    "retain",
                    "device_class",
                ],
                &["command_topic"],
                "https://www.home-assistant.io/integrations/switch.mqtt/",
            ),
            "button" => (
                &[
                    "command_topic",
                    "command_template",
                    "payload_press",
                    "retain",
                    "device_class",
                ],
                &["command_topic"],
                "https://www.home-assistant.io/integrations/button.mqtt/",
            ),
            "notify" => (
                &["command_topic", "command_template", "retain"],
                &["command_topic"],
                "https://www.home-assistant.io/integrations/notify.mqtt/",
            ),
            "text" => (
                &[
                    "command_topic",
                    "command_template",
                    "state_topic",
                    "value_template",
                    "min",
                    "max",
                    "mode",
                    "pattern",
                    "retain",
                ],
                &["command_topic"],
                "https://www.home-assistant.io/integrations/text.mqtt/",
            ),
            _ => return None,
        })
    }

    /// <https://www.home-assistant.io/integrations/device_trigger.mqtt/>: a device trigger has
    /// no entity options; `automation_type` is `trigger`.
    const TRIGGER: &[&str] = &[
        "platform",
        "automation_type",
        "topic",
        "type",
        "subtype",
        "payload",
        "value_template",
        "qos",
        "encoding",
    ];
    const TRIGGER_REQUIRED: &[&str] = &["automation_type", "topic", "type", "subtype"];

    /// Device classes from each page (and the entity integrations they link to).
    fn device_classes(platform: &str) -> &'static [&'static str] {
        match platform {
            // https://www.home-assistant.io/integrations/event/#device-class
            "event" => &["button", "doorbell", "motion"],
            // https://www.home-assistant.io/integrations/button/#device-class
            "button" => &["identify", "restart", "update"],
            // https://www.home-assistant.io/integrations/switch/#device-class
            "switch" => &["outlet", "switch"],
            // https://www.home-assistant.io/integrations/binary_sensor/#device-class (the ones used
            // here; the page lists more)
            "binary_sensor" => &["connectivity", "problem", "running", "sound", "occupancy"],
            // https://www.home-assistant.io/integrations/sensor/#device-class (likewise)
            "sensor" => &["enum", "timestamp"],
            _ => &[],
        }
    }

    /// Every problem with one discovery message; empty when it is valid.
    pub fn check(topic: &str, message: &Value) -> Vec<String> {
        let mut errors = Vec::new();
        let Some(root) = message.as_object() else {
            return vec![format!("{topic}: not a JSON object")];
        };
        unknown(&mut errors, topic, root, ROOT);
        for key in ["device", "origin", "components"] {
            if !root.contains_key(key) {
                errors.push(format!("{topic}: `{key}` is required"));
            }
        }
        let device = &message["device"];
        if let Some(device_map) = device.as_object() {
            unknown(&mut errors, &format!("{topic} device"), device_map, DEVICE);
            let has_ids = device["identifiers"]
                .as_array()
                .is_some_and(|a| !a.is_empty())
                || device["connections"]
                    .as_array()
                    .is_some_and(|a| !a.is_empty());
            if !has_ids {
                errors.push(format!(
                    "{topic}: the device needs identifiers or connections"
                ));
            }
            for connection in device["connections"].as_array().into_iter().flatten() {
                if connection.as_array().map(Vec::len) != Some(2) {
                    errors.push(format!("{topic}: a connection is a [type, value] pair"));
                }
            }
            if let Some(url) = device["configuration_url"].as_str() {
                if !(url.starts_with("http://") || url.starts_with("https://")) {
                    errors.push(format!("{topic}: configuration_url must be http(s)"));
                }
            }
        }
        if let Some(origin) = message["origin"].as_object() {
            unknown(&mut errors, &format!("{topic} origin"), origin, ORIGIN);
            if !origin.get("name").is_some_and(Value::is_string) {
                errors.push(format!("{topic}: origin.name is required"));
            }
        }
        availability(&mut errors, topic, message);
        let Some(components) = message["components"].as_object() else {
            errors.push(format!("{topic}: components must be a mapping"));
            return errors;
        };
        let mut unique_ids = std::collections::BTreeSet::new();
        for (id, component) in components {
            let at = format!("{topic} [{id}]");
            let Some(map) = component.as_object() else {
                errors.push(format!("{at}: not a mapping"));
                continue;
            };
            let platform = component["platform"].as_str().unwrap_or("");
            if platform == "device_automation" {
                unknown(&mut errors, &at, map, TRIGGER);
                required(&mut errors, &at, map, TRIGGER_REQUIRED);
                if component["automation_type"] != "trigger" {
                    errors.push(format!("{at}: automation_type must be trigger"));
                }
                if let Some(t) = component["topic"].as_str() {
                    topic_valid(&mut errors, &at, t, true);
                }
                continue;
            }
            let Some((own, needed, page)) = platform_options(platform) else {
                errors.push(format!("{at}: unknown platform `{platform}`"));
                continue;
            };
            let allowed: Vec<&str> = ENTITY.iter().chain(own).copied().collect();
            unknown(&mut errors, &format!("{at} ({page})"), map, &allowed);
            required(&mut errors, &format!("{at} ({page})"), map, needed);
            // Required for entities in device discovery (the device discovery section).
            match component["unique_id"].as_str() {
                Some(unique) if unique_ids.insert(unique.to_string()) => {}
                Some(unique) => errors.push(format!("{at}: unique_id {unique} twice")),
                None => errors.push(format!("{at}: unique_id is required")),
            }
            if let Some(category) = component["entity_category"].as_str() {
                if !["config", "diagnostic"].contains(&category) {
                    errors.push(format!("{at}: entity_category {category}"));
                }
            }
            if let Some(class) = component["device_class"].as_str() {
                if !device_classes(platform).contains(&class) {
                    errors.push(format!("{at}: device_class {class} ({page})"));
                }
            }
            if component["device_class"] == "enum" {
                // sensor.mqtt: an enum sensor lists its options and has no unit.
                let options_ok = component["options"]
                    .as_array()
                    .is_some_and(|o| !o.is_empty() && o.iter().all(Value::is_string));
                if !options_ok || map.contains_key("unit_of_measurement") {
                    errors.push(format!("{at}: an enum sensor needs options, no unit"));
                }
            }
            if platform == "event" {
                let types_ok = component["event_types"]
                    .as_array()
                    .is_some_and(|t| !t.is_empty() && t.iter().all(Value::is_string));
                if !types_ok {
                    errors.push(format!("{at}: event_types must list strings"));
                }
            }
            for (key, value) in map {
                if key.ends_with("_topic") {
                    let subscribe = key != "command_topic";
                    match value.as_str() {
                        Some(t) => topic_valid(&mut errors, &at, t, subscribe),
                        None => errors.push(format!("{at}: {key} must be a string")),
                    }
                }
                if key.ends_with("_template") && !value.as_str().is_some_and(balanced) {
                    errors.push(format!("{at}: {key} is not a template"));
                }
            }
            if let Some(icon) = component["icon"].as_str() {
                if !icon.starts_with("mdi:") {
                    errors.push(format!("{at}: icon {icon}"));
                }
            }
        }
        errors
    }

    /// <https://www.home-assistant.io/integrations/mqtt/#using-availability-topics>
    fn availability(errors: &mut Vec<String>, topic: &str, message: &Value) {
        if let Some(mode) = message.get("availability_mode") {
            if !["all", "any", "latest"].contains(&mode.as_str().unwrap_or("")) {
                errors.push(format!("{topic}: availability_mode {mode}"));
            }
        }
        if message.get("availability").is_some() && message.get("availability_topic").is_some() {
            errors.push(format!(
                "{topic}: availability and availability_topic exclude each other"
            ));
        }
        for entry in message["availability"].as_array().into_iter().flatten() {
            match entry["topic"].as_str() {
                Some(t) => topic_valid(errors, topic, t, true),
                None => errors.push(format!("{topic}: an availability entry needs a topic")),
            }
        }
    }

    fn unknown(
        errors: &mut Vec<String>,
        at: &str,
        map: &serde_json::Map<String, Value>,
        allowed: &[&str],
    ) {
        for key in map.keys() {
            if !allowed.contains(&key.as_str()) {
                errors.push(format!("{at}: unknown option `{key}`"));
            }
        }
    }

    fn required(
        errors: &mut Vec<String>,
        at: &str,
        map: &serde_json::Map<String, Value>,
        needed: &[&str],
    ) {
        for key in needed {
            if !map.contains_key(*key) {
                errors.push(format!("{at}: `{key}` is required"));
            }
        }
    }

    /// MQTT topics: non-empty; a publish topic has no wildcards.
    fn topic_valid(errors: &mut Vec<String>, at: &str, topic: &str, subscribe: bool) {
        if topic.is_empty() || (!subscribe && topic.contains(['+', '#'])) {
            errors.push(format!("{at}: bad topic `{topic}`"));
        }
    }

    /// Jinja delimiters open and close in order.
    fn balanced(template: &str) -> bool {
        let mut depth = 0i32;
        let bytes = template.as_bytes();
        for pair in bytes.windows(2) {
            match pair {
                b"{{" | b"{%" => depth += 1,
                b"}}" | b"%}" => depth -= 1,
                _ => {}
            }
            if depth < 0 {
                return false;
            }
        }
        depth == 0 && (template.contains("{{") || template.contains("{%"))
    }

    #[test]
    fn the_schema_catches_mistakes() {
        let good = serde_json::json!({
            "device": {"identifiers": ["x"], "name": "X"},
            "origin": {"name": "phone2mqtt"},
            "components": {"s": {"platform": "sensor", "unique_id": "x_s", "state_topic": "a/b",
                                 "value_template": "{{ value_json.x }}"}},
        });
        assert!(check("t", &good).is_empty(), "{:?}", check("t", &good));
        let mut bad = good.clone();
        bad["components"]["s"]["stat_topik"] = "a".into();
        bad["components"]["s"]
            .as_object_mut()
            .unwrap()
            .remove("unique_id");
        bad["device"] = serde_json::json!({"name": "X"});
        bad["availability_mode"] = "most".into();
        let errors = check("t", &bad);
        assert_eq!(errors.len(), 4, "{errors:#?}");
    }
}
