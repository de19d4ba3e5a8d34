//! Real third-party MQTT clients and brokers: `mosquitto_sub`/`mosquitto_pub` against the
//! embedded broker, and the whole loop against a Mosquitto broker the test starts itself.
//! The test command (scripts/test) installs Debian's mosquitto and mosquitto-clients.

mod common;

use std::process::Stdio;

use common::*;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

const MAC: &str = "00:15:65:4a:a9:37";
const ID: &str = "0015654aa937";

use common::mosquitto::tool;

/// Lines of `mosquitto_sub -v` output, as `(topic, payload)`.
struct Sub {
    child: tokio::process::Child,
    lines: tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
}

/// A topic and what its message must hold.
type Wanted<'a> = (&'a str, &'a dyn Fn(&Value) -> bool);

impl Sub {
    async fn start(port: u16, filter: &str) -> Sub {
        let mut child = Command::new(tool("mosquitto_sub"))
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &port.to_string(),
                "-t",
                filter,
                "-v",
                "-q",
                "1",
            ])
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("mosquitto_sub starts");
        let lines = BufReader::new(child.stdout.take().unwrap()).lines();
        Sub { child, lines }
    }

    /// Waits until each topic has been seen once, in whatever order the broker sends them.
    async fn expect_all(&mut self, topics: &[String]) -> std::collections::HashMap<String, Value> {
        let mut found = std::collections::HashMap::new();
        let deadline = tokio::time::Instant::now() + TIMEOUT;
        while found.len() < topics.len() {
            let line = tokio::time::timeout_at(deadline, self.lines.next_line())
                .await
                .unwrap_or_else(|_| {
                    panic!("mosquitto_sub saw only {:?} of {topics:?}", found.keys())
                })
                .unwrap()
                .expect("mosquitto_sub keeps running");
            let (got, payload) = line.split_once(' ').unwrap_or((line.as_str(), ""));
            if topics.iter().any(|t| t == got) {
                let value =
                    serde_json::from_str(payload).unwrap_or(Value::String(payload.to_string()));
                found.insert(got.to_string(), value);
            }
        }
        found
    }

    async fn expect(&mut self, topic: &str, check: impl Fn(&Value) -> bool) -> Value {
        self.expect_each(&[(topic, &check)]).await.remove(0)
    }

    /// Waits until each `(topic, check)` has matched a message, in whatever order they come
    /// (a phone's event can come before the result of the command that caused it).
    async fn expect_each(&mut self, wanted: &[Wanted<'_>]) -> Vec<Value> {
        let deadline = tokio::time::Instant::now() + TIMEOUT;
        let mut seen: Vec<Option<Value>> = vec![None; wanted.len()];
        while seen.iter().any(Option::is_none) {
            let line = tokio::time::timeout_at(deadline, self.lines.next_line())
                .await
                .unwrap_or_else(|_| {
                    let missing: Vec<_> = wanted
                        .iter()
                        .zip(&seen)
                        .filter(|(_, seen)| seen.is_none())
                        .map(|((topic, _), _)| *topic)
                        .collect();
                    panic!("mosquitto_sub saw nothing on {missing:?} in time")
                })
                .unwrap()
                .expect("mosquitto_sub keeps running");
            let (got, payload) = line.split_once(' ').unwrap_or((line.as_str(), ""));
            let value = serde_json::from_str(payload).unwrap_or(Value::String(payload.to_string()));
            for ((topic, check), seen) in wanted.iter().zip(seen.iter_mut()) {
                if seen.is_none() && got == *topic && check(&value) {
                    *seen = Some(value.clone());
                    break;
                }
            }
        }
        seen.into_iter().map(Option::unwrap).collect()
    }
}

async fn mosquitto_pub(port: u16, topic: &str, message: &str) {
    let status = Command::new(tool("mosquitto_pub"))
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-t",
            topic,
            "-m",
            message,
            "-q",
            "1",
        ])
        .status()
        .await
        .expect("mosquitto_pub runs");
    assert!(status.success());
}

/// The loop as a user tries it from a terminal.
async fn terminal_walkthrough(gw: &TestGateway, phone: &phone2mqtt::sim::SimPhone, port: u16) {
    let mut sub = Sub::start(port, "phone2mqtt/#").await;
    // Retained: the phone's info, availability and state arrive at once.
    let retained = sub
        .expect_all(&[
            format!("phone2mqtt/{ID}/info"),
            format!("phone2mqtt/{ID}/availability"),
            format!("phone2mqtt/{ID}"),
            "phone2mqtt/bridge/test/state".to_string(),
        ])
        .await;
    assert_eq!(
        retained[&format!("phone2mqtt/{ID}/info")]["vendor"],
        "yealink"
    );
    assert_eq!(retained[&format!("phone2mqtt/{ID}/availability")], "online");
    assert_eq!(retained[&format!("phone2mqtt/{ID}")]["call_state"], "idle");
    assert_eq!(retained["phone2mqtt/bridge/test/state"], "online");

    phone.ring("+4930123456", Some("Anna Schmidt")).unwrap();
    let event = sub
        .expect(&format!("phone2mqtt/{ID}/event"), |e| {
            e["event"] == "incoming_call"
        })
        .await;
    assert_eq!(event["remote"], "+4930123456");
    assert_eq!(event["remote_name"], "Anna Schmidt");
    mosquitto_pub(port, &format!("phone2mqtt/{ID}/cmd/hangup"), "").await;
    let result = sub
        .expect(&format!("phone2mqtt/{ID}/result"), |_| true)
        .await;
    assert_eq!(result["status"], "ok");
    phone_got(phone, "GET /servlet?key=CALLEND").await;

    mosquitto_pub(port, &format!("phone2mqtt/{ID}/cmd/dial"), "+49 30 1234").await;
    let (result_topic, event_topic) = (
        format!("phone2mqtt/{ID}/result"),
        format!("phone2mqtt/{ID}/event"),
    );
    let seen = sub
        .expect_each(&[
            (&result_topic, &|r: &Value| r["command"] == "dial"),
            (&event_topic, &|e: &Value| e["event"] == "outgoing_call"),
        ])
        .await;
    assert_eq!(seen[0]["status"], "ok");
    phone_got(
        phone,
        "GET /servlet?key=number=%2B49301234&outgoing_uri=1001@pbx.example.com",
    )
    .await;
    assert_eq!(seen[1]["remote"], "+49301234");
    let _ = gw;
    drop(sub.child);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mosquitto_clients_work_with_the_embedded_broker() {
    let (gw, phone) = gateway_with_phone("yealink", MAC).await;
    terminal_walkthrough(&gw, &phone, gw.mqtt_port()).await;
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_loop_runs_against_an_external_mosquitto_broker() {
    let dir = tempdir::TempDir::new();
    let port = free_port().port();
    let _broker = common::mosquitto::Mosquitto::start(
        &dir.0,
        &format!("listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n"),
        &[port],
    )
    .await;

    let addr = free_port();
    let mut config = test_config();
    config.mqtt.url = Some(format!("mqtt://127.0.0.1:{port}"));
    config
        .phones
        .push(phone_entry("yealink", MAC, addr, "Reception"));
    let gw = start_gateway(config).await;
    assert_eq!(
        gw.gateway.broker.port, port,
        "no embedded broker when mqtt.url is set"
    );
    let phone = start_phone(&gw, "yealink", MAC, addr).await;
    terminal_walkthrough(&gw, &phone, port).await;

    // The agent's goodbye marks the bridge offline, retained, on the external broker.
    let mut sub = Sub::start(port, "phone2mqtt/bridge/#").await;
    sub.expect("phone2mqtt/bridge/test/state", |v| v == "online")
        .await;
    gw.stop().await;
    sub.expect("phone2mqtt/bridge/test/state", |v| v == "offline")
        .await;
}
