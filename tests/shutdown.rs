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

/// SIGTERM to the real binary with a phone's queue full, on an external Mosquitto: each of the
/// queued commands and the one in flight gets its result on that broker before the gateway's
/// session closes, and the bridge goes `offline`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_with_a_full_queue_answers_every_command_on_an_external_broker() {
    const SILENT_MAC: &str = "00:15:65:00:00:98";
    const SILENT: &str = "001565000098";
    // A "phone" that accepts connections and never answers: one command in flight, the others
    // wait in its queue.
    let (silent_addr, _silent) = silent_listener("127.0.0.1:0".parse().unwrap()).await;
    let dir = tempdir::TempDir::new();
    let (_broker, port) =
        common::mosquitto::Mosquitto::anonymous(&dir.0, "persistence false\n").await;
    let mut gw = GatewayProcess::start(Serve {
        broker: port,
        mqtt: "",
        agent: "command_timeout = 2.0",
        phones: vec![("yealink", SILENT_MAC, silent_addr, "Silent")],
    })
    .await;
    let mut probe = MqttProbe::connect(port).await;
    probe
        .expect("phone2mqtt/bridge/test/state", |v| v == "online")
        .await;
    // One in flight and 64 queued fill the queue: the commands past them are refused at once,
    // which tells that the gateway holds all the others.
    const SENT: usize = 70;
    for n in 0..SENT {
        probe
            .publish(
                &format!("phone2mqtt/{SILENT}/cmd/dnd"),
                &json!({"state": "on", "transaction": format!("q{n}")}).to_string(),
            )
            .await;
    }
    let result_topic = format!("phone2mqtt/{SILENT}/result");
    let mut results = std::collections::HashMap::new();
    while results.len() < 5 {
        let (_, result) = probe.next_on(|topic| topic == result_topic).await;
        assert!(
            result["error"]
                .as_str()
                .is_some_and(|e| e.starts_with("too many commands queued")),
            "{result}"
        );
        results.insert(result["transaction"].as_str().unwrap().to_string(), result);
    }

    let mark = probe.mark();
    terminate(&mut gw.child).await;
    // Every command has its result on the broker: refused, shutting down, or for the one in
    // flight its timeout or the stop.
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    while results.len() < SENT && tokio::time::Instant::now() < deadline {
        for text in probe.payloads_on(&result_topic) {
            let result: serde_json::Value = serde_json::from_str(&text).unwrap();
            results.insert(result["transaction"].as_str().unwrap().to_string(), result);
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let missing: Vec<String> = (0..SENT)
        .map(|n| format!("q{n}"))
        .filter(|tx| !results.contains_key(tx))
        .collect();
    assert!(
        missing.is_empty(),
        "{} of {SENT} commands got a result after SIGTERM; none for {missing:?}\n{}",
        results.len(),
        gw.log()
    );
    for result in results.values() {
        assert_eq!(result["status"], "error", "{result}");
        let error = result["error"].as_str().unwrap();
        assert!(
            error == "the gateway is shutting down"
                || error == "the phone did not answer within 2 s"
                || error.starts_with("the gateway stopped while the phone had the command")
                || error.starts_with("too many commands queued"),
            "{result}"
        );
    }
    probe
        .since(mark, "phone2mqtt/bridge/test/state", |v| v == "offline")
        .await;
}

/// A SIGTERM while the gateway still waits for its broker at start (phones are answered from
/// the first moment) stops it in order, not by the signal: exit 0, and with
/// `[mqtt] outbox_on_disk` the events of the callbacks it answered are kept for the next start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_the_start_keeps_what_phones_were_answered() {
    const MAC: &str = "00:15:65:00:00:97";
    // Nothing listens there: the gateway is still waiting for its broker.
    let nobody = free_port();
    let mut gw = GatewayProcess::start(Serve {
        broker: nobody.port(),
        mqtt: "outbox_on_disk = true",
        agent: "",
        phones: vec![],
    })
    .await;
    let token = gw.token(MAC);
    for call in 0..5 {
        let path = format!(
            "/action/{token}/yealink/missed_call?mac=001565000097&ip=127.0.0.1&model=SIP-T46G\
             &firmware=28.72.0.1&remote=1001&call_id=s{call}"
        );
        let answer = phone_fetch(gw.http, &path, "Yealink SIP-T46G").await;
        assert_eq!(status_of(&answer), 200, "{answer}");
    }
    terminate(&mut gw.child).await;
    let kept = std::fs::read_to_string(gw.data_dir.0.join("outbox.json"))
        .unwrap_or_else(|err| panic!("no kept outbox ({err}); log:\n{}", gw.log()));
    for call in 0..5 {
        assert!(
            kept.contains(&format!("s{call}")),
            "call s{call} not kept: {kept}"
        );
    }
}
