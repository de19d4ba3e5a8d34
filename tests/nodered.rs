//! The Node-RED example flow (`examples/node-red-flow.json`): it uses only Node-RED's core nodes
//! and documented topics, and, imported into a real Node-RED pointed at a test gateway, its
//! inject buttons drive the phone and an incoming call shows the caller.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::node_red::node_red;
use common::*;
use phone2mqtt::topics::Topics;
use serde_json::{json, Value};

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
    let mut config = test_config();
    config.broker.allow_anonymous = Some(false);
    let (gw, phone) = gateway_with_phone_in(config, "yealink", "00:15:65:00:04:01", |_| {}).await;
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
