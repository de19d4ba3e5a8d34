//! Stopping in the middle of things: the command in flight still ends in a result, queued ones
//! are answered too, and the bridge says `offline` before the MQTT session closes.

mod common;

use common::*;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopping_mid_command_still_answers_every_command() {
    // A "phone" that accepts connections and never answers.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent_addr = silent.local_addr().unwrap();
    let (accepted_tx, mut accepted) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = silent.accept().await {
            held.push(stream);
            let _ = accepted_tx.send(());
        }
    });
    let mut config = test_config();
    config.agent.command_timeout = 2.0;
    config.phones.push(phone_entry(
        "yealink",
        "00:15:65:00:00:99",
        silent_addr,
        "Silent",
    ));
    let gw = start_gateway(config).await;
    let mut probe = MqttProbe::connect(gw.mqtt_port()).await;
    probe
        .publish(
            "phone2mqtt/001565000099/cmd/answer",
            &json!({"transaction": "in-flight"}).to_string(),
        )
        .await;
    probe
        .publish(
            "phone2mqtt/001565000099/cmd/hangup",
            &json!({"transaction": "queued"}).to_string(),
        )
        .await;
    // Once the first command is with the phone and the second reached the broker's
    // subscribers (the probe's own copy), stop.
    tokio::time::timeout(TIMEOUT, accepted.recv())
        .await
        .expect("the agent connects to the phone");
    probe
        .expect("phone2mqtt/001565000099/cmd/hangup", |_| true)
        .await;
    gw.stop.cancel();

    // Both are answered, in either order: the queued one may be refused before the one in
    // flight times out.
    let mut results = std::collections::HashMap::new();
    while results.len() < 2 {
        let (_, result) = probe
            .next_on(|topic| topic == "phone2mqtt/001565000099/result")
            .await;
        results.insert(result["transaction"].as_str().unwrap().to_string(), result);
    }
    let in_flight = &results["in-flight"];
    assert_eq!(in_flight["status"], "error");
    assert_eq!(in_flight["error"], "the phone did not answer within 2 s");
    assert_eq!(results["queued"]["error"], "the gateway is shutting down");
    let bridge = probe
        .expect("phone2mqtt/bridge/test/state", |v| v == "offline")
        .await;
    assert_eq!(bridge, "offline");
    gw.tracker.close();
    tokio::time::timeout(TIMEOUT, gw.tracker.wait())
        .await
        .expect("every task stops");
}
