//! The agent's inputs have limits (`[limits]`): the directory's rows, reminders, groups,
//! discovered phones, MQTT payloads per topic kind, foreign retained messages. Each refusal is
//! seen by a real client, counted on `/metrics`, loses nothing accepted before, and the
//! gateway answers the next callback and command at once.

mod common;

use common::*;
use phone2mqtt::config::Config;
use serde_json::{json, Value};

const MAC: &str = "00:15:65:4a:a9:37";
const ID: &str = "0015654aa937";
const UA: &str = "Yealink SIP-T46G 28.72.0.1 00:15:65:4a:a9:37";

fn limited(adjust: impl FnOnce(&mut phone2mqtt::config::LimitsConfig)) -> Config {
    let mut config = test_config();
    adjust(&mut config.limits);
    config
}

/// The subscribers of the retained directory report, as a newcomer reads it.
async fn retained_directory_rows(gw: &TestGateway) -> usize {
    let mut late = MqttProbe::connect(gw.mqtt_port()).await;
    let report = late.expect("phone2mqtt/directory", |_| true).await;
    report["subscribers"].as_array().unwrap().len()
}

/// The gateway still serves the phone: a callback is published and a command answered.
async fn still_serves(gw: &TestGateway, probe: &mut MqttProbe, tx: &str) {
    let path = format!(
        "/action/{}/yealink/incoming_call?mac={MAC}&remote=1001",
        gw.token(MAC)
    );
    let event = callback_event(gw, probe, ID, &path, UA).await;
    assert_eq!(event["event"], "incoming_call");
    let result = command(
        probe,
        ID,
        "dial",
        json!({"number": "1002", "transaction": tx}),
    )
    .await;
    assert_eq!(result["status"], "ok", "{result}");
}

/// A provisioning request for `mac`'s file, as a Yealink phone makes it.
async fn fetch(gw: &TestGateway, mac: &str) -> String {
    phone_fetch(
        gw.gateway.http_addr,
        &format!("/{mac}.cfg"),
        "Yealink SIP-T46G 28.72.0.1",
    )
    .await
}

fn csv(rows: usize) -> String {
    (0..rows)
        .map(|i| format!("{},Name {i},Sales\n", 1000 + i))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_directory_over_its_rows_is_refused_and_the_old_one_kept() {
    let config = limited(|l| l.directory_rows = 3);
    let (gw, _phone) = gateway_with_phone_in(config, "yealink", MAC, |_| {}).await;
    let mut probe = MqttProbe::connect(gw.mqtt_port()).await;
    let set = "phone2mqtt/directory/set";
    let answer = |tx: &'static str| move |r: &Value| r["transaction"] == tx;
    probe
        .publish(
            set,
            &json!({"csv": csv(3), "transaction": "ok"}).to_string(),
        )
        .await;
    let ok = probe
        .expect("phone2mqtt/directory/result", answer("ok"))
        .await;
    assert_eq!(ok["status"], "ok", "{ok}");
    probe
        .publish(
            set,
            &json!({"csv": csv(4), "transaction": "big"}).to_string(),
        )
        .await;
    let refused = probe
        .expect("phone2mqtt/directory/result", answer("big"))
        .await;
    assert_eq!(refused["status"], "error", "{refused}");
    assert!(
        refused["error"]
            .as_str()
            .unwrap()
            .contains("directory_rows"),
        "{refused}"
    );
    assert_eq!(gw.refusals("directory_rows").await, 1);
    // The kept file and the retained report are the three rows of before.
    let kept = std::fs::read_to_string(gw.data_dir.0.join("directory.csv")).unwrap();
    assert_eq!(kept.lines().count(), 4, "{kept}");
    assert_eq!(retained_directory_rows(&gw).await, 3);
    still_serves(&gw, &mut probe, "after-directory").await;
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kept_directory_over_the_limit_does_not_stop_the_start() {
    let data = tempdir::TempDir::new();
    std::fs::write(data.0.join("directory.csv"), csv(10)).unwrap();
    let mut config = limited(|l| l.directory_rows = 5);
    let addr = free_port();
    config
        .phones
        .push(phone_entry("yealink", MAC, addr, "Reception"));
    let gw = start_gateway_in(config, data).await;
    let _phone = start_phone(&gw, "yealink", MAC, addr).await;
    assert_eq!(gw.refusals("directory_rows").await, 1);
    let mut probe = MqttProbe::connect(gw.mqtt_port()).await;
    still_serves(&gw, &mut probe, "after-start").await;
    // The file is not lost: a higher limit takes it at the next start.
    assert_eq!(
        std::fs::read_to_string(gw.data_dir.0.join("directory.csv")).unwrap(),
        csv(10)
    );
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_directory_is_reported_within_the_packet_limit() {
    let config = limited(|l| l.directory_rows = 50_000);
    let (gw, _phone) = gateway_with_phone_in(config, "yealink", MAC, |_| {}).await;
    let mut probe = MqttProbe::connect(gw.mqtt_port()).await;
    // About 800 KB: whole, its report would be about 1.5 MB, over the broker's 1 MiB.
    let rows: String = (0..15_000)
        .map(|i| {
            format!(
                "{},Subscriber with a long name {i},Department {i}\n",
                10_000 + i
            )
        })
        .collect();
    probe
        .publish(
            "phone2mqtt/directory/set",
            &json!({"csv": rows, "transaction": "l"}).to_string(),
        )
        .await;
    let result = probe
        .expect("phone2mqtt/directory/result", |r| r["transaction"] == "l")
        .await;
    assert_eq!(result["status"], "ok", "{result}");
    assert_eq!(result["subscribers"], 15_000);
    let mut late = MqttProbe::connect(gw.mqtt_port()).await;
    let report = late.expect("phone2mqtt/directory", |_| true).await;
    assert_eq!(report["truncated"], true);
    assert_eq!(report["subscribers_total"], 15_000);
    assert!(serde_json::to_vec(&report).unwrap().len() < 1024 * 1024);
    still_serves(&gw, &mut probe, "after-large").await;
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reminders_past_the_limit_are_refused() {
    let config = limited(|l| l.reminders = 2);
    let (gw, _phone) = gateway_with_phone_in(config, "yealink", MAC, |_| {}).await;
    let mut probe = MqttProbe::connect(gw.mqtt_port()).await;
    for tx in ["r1", "r2"] {
        let result = command(
            &mut probe,
            ID,
            "message",
            json!({"text": "later", "in": "1h", "transaction": tx}),
        )
        .await;
        assert_eq!(result["status"], "ok", "{result}");
    }
    let refused = command(
        &mut probe,
        ID,
        "message",
        json!({"text": "later", "in": "1h", "transaction": "r3"}),
    )
    .await;
    assert_eq!(refused["status"], "error", "{refused}");
    assert!(
        refused.to_string().contains("[limits] reminders"),
        "{refused}"
    );
    assert_eq!(gw.refusals("reminders").await, 1);
    // The list is published a moment after its changes: the retained one may still be the
    // first's, until the second's comes; never a third.
    let mut late = MqttProbe::connect(gw.mqtt_port()).await;
    let list = late
        .expect("phone2mqtt/bridge/test/reminders", |l| {
            l.as_array().is_some_and(|a| a.len() >= 2)
        })
        .await;
    assert_eq!(list.as_array().unwrap().len(), 2, "{list}");
    still_serves(&gw, &mut probe, "after-reminders").await;
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_adoption_past_the_groups_limit_is_refused() {
    let config = limited(|l| l.groups = 2);
    let (gw, _phone) =
        gateway_with_phone_in(config, "yealink", MAC, |p| p.groups = vec!["front".into()]).await;
    let mut probe = MqttProbe::connect(gw.mqtt_port()).await;
    let other = "0015650000aa";
    let adopt = |groups: Value, tx: &str| json!({"address": "127.0.0.1:9", "password": "x", "vendor": "yealink", "groups": groups, "transaction": tx});
    let refused = command(&mut probe, other, "adopt", adopt(json!(["a", "b"]), "g1")).await;
    assert_eq!(refused["status"], "error", "{refused}");
    assert!(refused.to_string().contains("[limits] groups"), "{refused}");
    assert_eq!(gw.refusals("groups").await, 1);
    let ok = command(
        &mut probe,
        other,
        "adopt",
        adopt(json!(["FRONT", "back"]), "g2"),
    )
    .await;
    assert_eq!(ok["status"], "ok", "{ok}");
    still_serves(&gw, &mut probe, "after-groups").await;
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_is_limited_per_minute_and_in_total() {
    // Per minute: the third new MAC within the minute is refused.
    let config = limited(|l| l.discovered_per_minute = 2);
    let (gw, _phone) = gateway_with_phone_in(config, "yealink", MAC, |_| {}).await;
    let mut probe = MqttProbe::connect(gw.mqtt_port()).await;
    assert_eq!(status_of(&fetch(&gw, "001565000001").await), 200);
    assert_eq!(status_of(&fetch(&gw, "001565000002").await), 200);
    let refused = fetch(&gw, "001565000003").await;
    assert_eq!(status_of(&refused), 429, "{refused}");
    assert!(refused.contains("discovered_per_minute"), "{refused}");
    // A phone known already is served all the same.
    assert_eq!(status_of(&fetch(&gw, "001565000001").await), 200);
    assert_eq!(gw.refusals("discovery_rate").await, 1);
    still_serves(&gw, &mut probe, "after-rate").await;
    let data = gw.stop_keeping_data().await;
    let kept = std::fs::read_to_string(data.0.join("phones.toml")).unwrap_or_default();
    assert!(kept.contains("001565000002"), "{kept}");
    assert!(!kept.contains("001565000003"), "{kept}");

    // In total: past two unconfigured phones, neither a file request nor a callback discovers.
    let config = limited(|l| l.discovered_phones = 2);
    let (gw, _phone) = gateway_with_phone_in(config, "yealink", MAC, |_| {}).await;
    let mut probe = MqttProbe::connect(gw.mqtt_port()).await;
    assert_eq!(status_of(&fetch(&gw, "001565000001").await), 200);
    assert_eq!(status_of(&fetch(&gw, "001565000002").await), 200);
    assert_eq!(status_of(&fetch(&gw, "001565000003").await), 503);
    let unknown = "00:15:65:00:00:04";
    let path = format!(
        "/action/{}/yealink/incoming_call?mac={unknown}",
        gw.token(unknown)
    );
    let answer = phone_fetch(gw.gateway.http_addr, &path, UA).await;
    assert_eq!(status_of(&answer), 503, "{answer}");
    assert_eq!(gw.refusals("discovery_total").await, 2);
    still_serves(&gw, &mut probe, "after-total").await;
    let phones: Value = gw
        .api()
        .get(format!("{}/api/phones", gw.http()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ids: Vec<&str> = phones
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    assert!(
        !ids.contains(&"001565000003") && !ids.contains(&"001565000004"),
        "{ids:?}"
    );
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payloads_over_their_topic_kind_limit_are_refused() {
    let config = limited(|l| {
        l.command_payload_bytes = 200;
        l.directory_payload_bytes = 300;
    });
    let (gw, _phone) = gateway_with_phone_in(config, "yealink", MAC, |_| {}).await;
    let mut probe = MqttProbe::connect(gw.mqtt_port()).await;
    probe
        .publish(
            "phone2mqtt/directory/set",
            &json!({"csv": csv(2), "transaction": "d"}).to_string(),
        )
        .await;
    probe
        .expect("phone2mqtt/directory/result", |r| r["transaction"] == "d")
        .await;
    let text = "x".repeat(300);
    probe
        .publish(
            &format!("phone2mqtt/{ID}/cmd/message"),
            &json!({"text": text, "transaction": "big"}).to_string(),
        )
        .await;
    let refused = probe
        .expect(&format!("phone2mqtt/{ID}/result"), |r| {
            r["command"] == "message"
        })
        .await;
    assert_eq!(refused["status"], "error", "{refused}");
    assert!(
        refused.to_string().contains("command_payload_bytes"),
        "{refused}"
    );
    probe.publish("phone2mqtt/directory/set", &csv(40)).await;
    let refused = probe
        .expect("phone2mqtt/directory/result", |r| r["status"] == "error")
        .await;
    assert!(
        refused.to_string().contains("directory_payload_bytes"),
        "{refused}"
    );
    assert_eq!(gw.refusals("mqtt_payload").await, 2);
    assert_eq!(retained_directory_rows(&gw).await, 2);
    still_serves(&gw, &mut probe, "after-payload").await;
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreign_retained_messages_are_not_mirrored() {
    let (gw, _phone) = gateway_with_phone_in(test_config(), "yealink", MAC, |_| {}).await;
    let mut probe = MqttProbe::connect(gw.mqtt_port()).await;
    // The phone's own info is there before.
    probe
        .expect(&format!("phone2mqtt/{ID}/info"), |_| true)
        .await;
    let big = "y".repeat(100_000);
    probe
        .publish_retained("phone2mqtt/intruder/info", "{}")
        .await;
    probe
        .publish_retained(
            "phone2mqtt/0015650000bb/info",
            &json!({"junk": big}).to_string(),
        )
        .await;
    probe
        .publish_retained(&format!("phone2mqtt/{ID}/info"), "not json")
        .await;
    probe
        .publish_retained("phone2mqtt/0015650000bb/availability", "maybe")
        .await;
    // A valid one after them: once it is mirrored, the others have been seen.
    probe
        .publish_retained("phone2mqtt/0015650000cc/availability", "online")
        .await;
    let api = gw.api();
    let phones = loop {
        let phones: Value = api
            .get(format!("{}/api/phones", gw.http()))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if phones.to_string().contains("0015650000cc") {
            break phones;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    let text = phones.to_string();
    assert!(
        !text.contains("intruder") && !text.contains("junk"),
        "{text}"
    );
    assert!(!text.contains("maybe"), "{text}");
    let own = phones
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == ID)
        .unwrap();
    assert_eq!(own["info"]["id"], ID, "{own}");
    assert_eq!(gw.refusals("foreign_retained").await, 4);
    still_serves(&gw, &mut probe, "after-foreign").await;
    probe
        .publish_retained(&format!("phone2mqtt/{ID}/info"), "")
        .await;
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callbacks_and_events_are_counted() {
    let (gw, _phone) = gateway_with_phone_in(test_config(), "yealink", MAC, |_| {}).await;
    let mut probe = MqttProbe::connect(gw.mqtt_port()).await;
    still_serves(&gw, &mut probe, "counted").await;
    let text = gw
        .api()
        .get(format!("{}/metrics", gw.http()))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let value = |name: &str| -> u64 {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{name} ")))
            .map_or(0, |n| n.trim().parse().unwrap())
    };
    assert!(value("phone2mqtt_callbacks_total") >= 1, "{text}");
    assert!(value("phone2mqtt_events_total") >= 1, "{text}");
    gw.stop().await;
}
