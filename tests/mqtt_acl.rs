//! The shipped Mosquitto example (examples/mosquitto/) with a real Mosquitto: the agent works
//! with a simulated phone through its ACL (over its TLS listener, with a private CA), Home
//! Assistant's user commands phones, the viewer sees their state and its commands never reach
//! a phone.

mod common;

use std::time::Duration;

use common::mosquitto::{add_user, Mosquitto};
use common::*;
use serde_json::json;

const MAC: &str = "00:15:65:4a:a9:41";
const ID: &str = "0015654aa941";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_example_acl_gives_each_user_its_role() {
    let dir = tempdir::TempDir::new();
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/mosquitto");
    let passwd = dir.0.join("phone2mqtt.passwd");
    for (user, password) in [
        ("phone2mqtt", "agent-pw"),
        ("homeassistant", "ha-pw"),
        ("viewer", "viewer-pw"),
    ] {
        add_user(&passwd, user, password);
    }
    let certs = private_ca(&dir.0, "site");
    let plain = free_port().port();
    let tls = free_port().port();
    // The shipped files, with this test's paths and ports.
    let conf = std::fs::read_to_string(format!("{example}/mosquitto.conf"))
        .unwrap()
        .replace("/etc/mosquitto/phone2mqtt.passwd", passwd.to_str().unwrap())
        .replace(
            "/etc/mosquitto/phone2mqtt.acl",
            &format!("{example}/phone2mqtt.acl"),
        )
        .replace(
            "listener 1883 127.0.0.1",
            &format!("listener {plain} 127.0.0.1"),
        )
        .replace("listener 8883", &format!("listener {tls} 127.0.0.1"))
        .replace(
            "/etc/mosquitto/certs/server.crt",
            certs.join("server.pem").to_str().unwrap(),
        )
        .replace(
            "/etc/mosquitto/certs/server.key",
            certs.join("server.key").to_str().unwrap(),
        );
    let _mosquitto =
        Mosquitto::start(&dir.0, &format!("{conf}persistence false\n"), &[plain, tls]).await;

    let addr = free_port();
    let mut config = test_config();
    config.mqtt.url = Some(format!("mqtts://localhost:{tls}"));
    config.mqtt.ca_file = Some(certs.join("ca.pem"));
    config.mqtt.username = Some("phone2mqtt".into());
    config.mqtt.password = Some(phone2mqtt::config::Secret::new("agent-pw"));
    config
        .phones
        .push(phone_entry("yealink", MAC, addr, "Reception"));
    let gw = start_gateway(config).await;
    assert!(
        gw.gateway.agent.mqtt().wait_connected(TIMEOUT).await,
        "the agent logged in: {:?}",
        gw.gateway.agent.mqtt().last_error()
    );
    let phone = start_phone(&gw, "yealink", MAC, addr).await;

    // Home Assistant sees the phone and its discovery, and commands it.
    let mut ha = MqttProbe::connect_as(plain, "#", Some(("homeassistant", "ha-pw"))).await;
    ha.expect(&format!("phone2mqtt/{ID}/availability"), |v| v == "online")
        .await;
    ha.expect(
        &format!("homeassistant/device/phone2mqtt_{ID}/config"),
        |v| v.is_object(),
    )
    .await;
    phone.ring("+4930123456", Some("Anna Schmidt")).unwrap();
    ha.event(ID, "incoming_call").await;
    let result = command(&mut ha, ID, "hangup", json!({"transaction": "ha-1"})).await;
    assert_eq!(result["status"], "ok", "{result}");
    phone_got(&phone, "GET /servlet?key=CALLEND").await;
    // An operator's role: adopting is an administrator's, and never reaches the agent.
    ha.publish(
        "phone2mqtt/001565000042/cmd/adopt",
        &json!({"address": "10.0.0.42", "vendor": "yealink", "transaction": "ha-adopt"})
            .to_string(),
    )
    .await;

    // The viewer sees the state, but its command is dropped by the broker.
    let mut viewer =
        MqttProbe::connect_as(plain, "phone2mqtt/#", Some(("viewer", "viewer-pw"))).await;
    let state = viewer
        .expect(&format!("phone2mqtt/{ID}"), |v| v.is_object())
        .await;
    assert_eq!(state["call_state"], "idle", "{state}");
    let before = phone.snapshot().requests.len();
    viewer
        .publish(
            &format!("phone2mqtt/{ID}/cmd/dial"),
            &json!({"number": "1234", "transaction": "viewer-1"}).to_string(),
        )
        .await;
    // Home Assistant's next command is answered: the viewer's, sent before it, would have
    // been answered first.
    let result = command(&mut ha, ID, "refresh", json!({"transaction": "ha-2"})).await;
    assert_eq!(result["status"], "ok", "{result}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let seen = ha.drain();
    for transaction in ["viewer-1", "ha-adopt"] {
        assert!(
            !seen
                .iter()
                .any(|(topic, payload)| topic.ends_with("/result") && payload.contains(transaction)),
            "{transaction} must not reach the agent: {seen:#?}"
        );
    }
    assert!(
        !phone.snapshot().requests[before..]
            .iter()
            .any(|line| line.contains("1234")),
        "the viewer's dial reached the phone"
    );
    gw.stop().await;
}
