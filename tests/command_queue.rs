//! A phone that never answers holds its own queue only: past 64 waiting commands the next ones
//! get an error result at once, counted as `command_queue`, and other phones are driven as usual.

mod common;

use common::*;

const SILENT_MAC: &str = "00:15:65:4a:a9:50";
const SILENT_ID: &str = "0015654aa950";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_phone_queue_refuses_with_a_result_and_a_count() {
    // A phone that takes the connection and never answers: each command waits its timeout.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent_addr = silent.local_addr().unwrap();
    let (reached, mut first_reached) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = silent.accept().await {
            held.push(stream);
            let _ = reached.send(());
        }
    });
    let mut config = test_config();
    config
        .phones
        .push(phone_entry("yealink", SILENT_MAC, silent_addr, "Silent"));
    let (gw, _phone) = gateway_with_phone_in(config, "yealink", "00:15:65:4a:a9:37", |_| {}).await;
    let mut probe = MqttProbe::connect(gw.mqtt_port()).await;

    for n in 0..70 {
        if n == 1 {
            // The first command has reached the phone (it runs), so exactly 64 can wait.
            tokio::time::timeout(TIMEOUT, first_reached.recv())
                .await
                .expect("the first command reaches the phone");
        }
        probe
            .publish(
                &format!("phone2mqtt/{SILENT_ID}/cmd/dnd"),
                &format!(r#"{{"state":"on","transaction":"q{n}"}}"#),
            )
            .await;
    }
    // One runs, 64 wait: the last five are refused at once.
    for _ in 0..5 {
        let result = probe
            .expect(&format!("phone2mqtt/{SILENT_ID}/result"), |r| {
                r["status"] == "error"
                    && r["error"]
                        .as_str()
                        .is_some_and(|e| e.contains("too many commands queued"))
            })
            .await;
        assert!(result["transaction"].as_str().unwrap().starts_with('q'));
    }
    assert_eq!(gw.refusals("command_queue").await, 5);
    // The other phone is driven as usual.
    gw.rest_command_answered("0015654aa937").await;
    gw.stop().await;
}
