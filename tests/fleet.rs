//! Working with many phones: groups, the PBX subscriber directory, reminders that survive a
//! restart, and the REST command endpoint that waits for the result.

mod common;

use common::*;
use phone2mqtt::sim::SimPhone;
use serde_json::{json, Value};

const MACS: [&str; 3] = [
    "00:15:65:00:00:11",
    "00:15:65:00:00:12",
    "00:15:65:00:00:13",
];

/// Three configured phones: two in `sales`, one in `support`.
async fn three_phones(data_dir: Option<tempdir::TempDir>) -> (TestGateway, Vec<SimPhone>) {
    let addrs: Vec<_> = MACS.iter().map(|_| free_port()).collect();
    let mut config = test_config();
    for (index, (mac, addr)) in MACS.iter().zip(&addrs).enumerate() {
        let mut entry = phone_entry("yealink", mac, *addr, ["Anna", "Bob", "Cleo"][index]);
        entry.groups = vec![if index < 2 { "sales" } else { "support" }.to_string()];
        entry.line = Some(format!("{}@pbx.example.com", 1001 + index));
        config.phones.push(entry);
    }
    let gw = match data_dir {
        Some(dir) => start_gateway_in(config, dir).await,
        None => start_gateway(config).await,
    };
    let mut phones = Vec::new();
    for (index, (mac, addr)) in MACS.iter().zip(&addrs).enumerate() {
        let personality = phone2mqtt::sim::personality("yealink").unwrap();
        let id = phone2mqtt::model::PhoneId::parse(mac).unwrap();
        let mut options = phone2mqtt::sim::SimOptions::new(personality, id, &gw.gateway.public_url);
        options.listen = *addr;
        options.password = PASSWORD.into();
        options.line_user = format!("{}", 1001 + index);
        options.remote_answers_after = None;
        let phone = SimPhone::spawn(options, gw.stop.clone()).await.unwrap();
        assert!(phone.wait_booted(TIMEOUT).await);
        phones.push(phone);
    }
    (gw, phones)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_command_reaches_every_member_and_each_answers() {
    let (gw, phones) = three_phones(None).await;
    let mut probe = MqttProbe::connect(gw.mqtt_port()).await;
    probe
        .publish(
            "phone2mqtt/group/sales/cmd/dnd",
            r#"{"state": "on", "transaction": "g-1"}"#,
        )
        .await;
    for id in ["001565000011", "001565000012"] {
        let result = probe
            .expect(&format!("phone2mqtt/{id}/result"), |r| {
                r["transaction"] == "g-1"
            })
            .await;
        assert_eq!(result["status"], "ok");
    }
    phone_got(&phones[0], "GET /servlet?key=DNDOn").await;
    phone_got(&phones[1], "GET /servlet?key=DNDOn").await;
    assert!(!phones[2].snapshot().dnd, "support is not in sales");

    probe.publish("phone2mqtt/group/all/cmd/dnd", "off").await;
    for phone in &phones {
        phone_got(phone, "GET /servlet?key=DNDOff").await;
    }
    probe
        .publish(
            "phone2mqtt/group/nobody/cmd/dnd",
            r#"{"state": "on", "transaction": "g-2"}"#,
        )
        .await;
    let result = probe
        .expect("phone2mqtt/group/nobody/result", |_| true)
        .await;
    assert_eq!(result["transaction"], "g-2");
    assert!(result["error"]
        .as_str()
        .unwrap()
        .contains("no configured phone is in group `nobody`"));
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_directory_puts_names_beside_phones_and_survives_a_restart() {
    let (gw, _phones) = three_phones(None).await;
    let mut probe = MqttProbe::connect(gw.mqtt_port()).await;
    let csv = "extension,name,department\n1001,Anna Schmidt,Sales\n1002,\"Weiß, Jürgen\",Sales\n1099,Nobody Here,Lab\n";
    probe
        .publish(
            "phone2mqtt/directory/set",
            &json!({"csv": csv, "transaction": "d-1"}).to_string(),
        )
        .await;
    // The phones' info first, then the directory, then the result.
    let info = probe
        .expect("phone2mqtt/001565000012/info", |i| {
            !i["subscriber"].is_null()
        })
        .await;
    assert_eq!(
        info["subscriber"],
        json!({"extension": "1002", "name": "Weiß, Jürgen", "department": "Sales"})
    );
    let directory = probe
        .expect("phone2mqtt/directory", |d| {
            d["subscribers"].as_array().is_some_and(|s| s.len() == 3)
        })
        .await;
    assert_eq!(
        directory["phones_without_subscriber"],
        json!(["001565000013"])
    );
    assert_eq!(directory["subscribers_without_phone"], json!(["1099"]));
    let result = probe.expect("phone2mqtt/directory/result", |_| true).await;
    assert_eq!(
        result,
        json!({"command": "import", "transaction": "d-1", "status": "ok", "subscribers": 3, "matched": 2})
    );

    probe
        .publish("phone2mqtt/directory/set", "1001,Anna\n1001,Twice\n")
        .await;
    let result = probe.expect("phone2mqtt/directory/result", |_| true).await;
    assert_eq!(result["status"], "error");
    assert!(result["error"].as_str().unwrap().contains("appears twice"));

    // Restart on the same data: the imported directory is still there.
    let data = gw.stop_keeping_data().await;
    let (gw, _phones) = three_phones(Some(data)).await;
    let mut probe = MqttProbe::connect(gw.mqtt_port()).await;
    let info = probe.expect("phone2mqtt/001565000011/info", |_| true).await;
    assert_eq!(info["subscriber"]["name"], "Anna Schmidt");
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reminders_show_on_time_are_listed_cancelled_and_kept_across_restarts() {
    let (gw, phones) = three_phones(None).await;
    let mut probe = MqttProbe::connect(gw.mqtt_port()).await;
    probe
        .publish(
            "phone2mqtt/Anna/cmd/message",
            r#"{"text": "Stand-up in 5", "in": "1s", "transaction": "r-1"}"#,
        )
        .await;
    // The list is published first, then the result.
    let listed = probe
        .expect("phone2mqtt/bridge/test/reminders", |l| {
            l.as_array().is_some_and(|a| a.len() == 1)
        })
        .await;
    assert_eq!(listed[0]["text"], "Stand-up in 5");
    let scheduled = probe
        .expect("phone2mqtt/Anna/result", |r| r["transaction"] == "r-1")
        .await;
    assert_eq!(scheduled["status"], "ok");
    assert!(scheduled["data"]["reminder"].is_string());
    // Due: it leaves the list, and the phone shows it, with the scheduling transaction echoed.
    probe
        .expect("phone2mqtt/bridge/test/reminders", |l| {
            l.as_array().is_some_and(|a| a.is_empty())
        })
        .await;
    let shown = probe
        .expect("phone2mqtt/Anna/result", |r| {
            r["transaction"] == "r-1" && r["data"].is_null()
        })
        .await;
    assert_eq!(shown["status"], "ok");
    phone_got(&phones[0], "POST /servlet?push=xml").await;
    assert_eq!(
        phones[0].snapshot().last_message.as_deref(),
        Some("Stand-up in 5")
    );

    // A group reminder an hour ahead, kept across a restart, then cancelled.
    probe
        .publish(
            "phone2mqtt/group/sales/cmd/message",
            r#"{"text": "Lunch", "in": "1h", "transaction": "r-2"}"#,
        )
        .await;
    let scheduled = probe
        .expect("phone2mqtt/group/sales/result", |_| true)
        .await;
    let id = scheduled["data"]["reminder"].as_str().unwrap().to_string();
    let data = gw.stop_keeping_data().await;
    let (gw, _phones) = three_phones(Some(data)).await;
    let mut probe = MqttProbe::connect(gw.mqtt_port()).await;
    let listed = probe
        .expect("phone2mqtt/bridge/test/reminders", |_| true)
        .await;
    assert_eq!(listed[0]["id"], id.as_str());
    assert_eq!(listed[0]["target"], "group:sales");
    probe
        .publish(
            "phone2mqtt/bridge/test/reminders/cancel",
            &json!({"id": id, "transaction": "c-1"}).to_string(),
        )
        .await;
    // The list is published first, then the result.
    probe
        .expect("phone2mqtt/bridge/test/reminders", |l| {
            l.as_array().is_some_and(|a| a.is_empty())
        })
        .await;
    let cancelled = probe
        .expect("phone2mqtt/bridge/test/reminders/result", |_| true)
        .await;
    assert_eq!(cancelled["status"], "ok");
    probe
        .publish("phone2mqtt/bridge/test/reminders/cancel", "nope")
        .await;
    let missing = probe
        .expect("phone2mqtt/bridge/test/reminders/result", |_| true)
        .await;
    assert_eq!(missing["error"], "no reminder `nope`");
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_commands_wait_for_their_result() {
    let (gw, phones) = three_phones(None).await;
    let http = gw.api();
    let base = gw.http();
    let response = http
        .post(format!("{base}/api/phones/Anna/cmd/dial"))
        .body("+49 30 1234")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let result: Value = response.json().await.unwrap();
    assert_eq!(result["status"], "ok");
    assert!(result["transaction"].as_str().unwrap().starts_with("rest-"));
    phone_got(
        &phones[0],
        "GET /servlet?key=number=%2B49301234&outgoing_uri=1001@pbx.example.com",
    )
    .await;

    let response = http
        .post(format!("{base}/api/phones/001565000012/cmd/dnd"))
        .json(&json!({"state": "sideways", "transaction": "mine"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 502);
    let result: Value = response.json().await.unwrap();
    assert_eq!(result["transaction"], "mine");
    assert!(result["error"]
        .as_str()
        .unwrap()
        .contains("`sideways` is not `on` or `off`"));

    // An unknown phone is answered with an error result by default.
    let response = http
        .post(format!(
            "{base}/api/phones/0015650000ff/cmd/answer?timeout=0.5"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        502,
        "the agent answers unknown phones by default"
    );

    let phones_list: Value = http
        .get(format!("{base}/api/phones"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(phones_list.as_array().unwrap().len(), 3);
    let one: Value = http
        .get(format!("{base}/api/phones/cleo"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(one["info"]["groups"], json!(["support"]));
    assert_eq!(
        http.get(format!("{base}/api/phones/nobody"))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_commands_time_out_with_504() {
    let mut config = test_config();
    config.agent.answer_unknown_phones = false;
    let gw = start_gateway(config).await;
    let response = gw
        .api()
        .post(format!(
            "{}/api/phones/0015650000ff/cmd/answer?timeout=0.5",
            gw.http()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 504);
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_subscriber_gets_every_retained_message_of_a_large_fleet() {
    // 200 phones' info, state and availability: 600 retained messages, more than rumqttd hands
    // a QoS 1 subscriber at once; the terminal client must still see every phone.
    let gw = start_gateway(test_config()).await;
    let probe = MqttProbe::connect_filter(gw.mqtt_port(), "nothing/here").await;
    for index in 0..200u32 {
        let id = format!("0015650a{index:04x}");
        let info = json!({"id": id, "mac": id, "name": format!("Desk {index}"), "vendor": "yealink", "model": null,
                          "firmware": null, "ip": null, "agent": "test", "configured": true, "groups": [], "subscriber": null});
        for (topic, payload) in [
            (format!("phone2mqtt/{id}/info"), info.to_string()),
            (
                format!("phone2mqtt/{id}"),
                json!({"call_state": "idle"}).to_string(),
            ),
            (
                format!("phone2mqtt/{id}/availability"),
                "online".to_string(),
            ),
        ] {
            probe
                .client
                .publish(topic, rumqttc::QoS::AtLeastOnce, true, payload.into_bytes())
                .await
                .unwrap();
        }
    }
    // The last one is on the broker once a subscriber of it sees it.
    let mut last =
        MqttProbe::connect_filter(gw.mqtt_port(), "phone2mqtt/0015650a00c7/availability").await;
    last.expect("phone2mqtt/0015650a00c7/availability", |_| true)
        .await;
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_phone2mqtt"))
        .args([
            "phones",
            "--json",
            "--mqtt",
            &format!("mqtt://127.0.0.1:{}", gw.mqtt_port()),
        ])
        .output()
        .await
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let phones: Value = serde_json::from_slice(&output.stdout).unwrap();
    let phones = phones.as_array().unwrap();
    assert_eq!(phones.len(), 200);
    assert!(phones
        .iter()
        .all(|p| p["availability"] == "online" && p["info"]["name"].is_string()));
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_terminal_client_imports_the_directory_and_lists_and_cancels_reminders() {
    let (gw, _phones) = three_phones(None).await;
    let bin = env!("CARGO_BIN_EXE_phone2mqtt");
    let mqtt = format!("mqtt://127.0.0.1:{}", gw.mqtt_port());
    let run = |args: Vec<String>| async move {
        tokio::process::Command::new(bin)
            .args(&args)
            .output()
            .await
            .unwrap()
    };
    let csv = gw.data_dir.0.join("subscribers.csv");
    std::fs::write(
        &csv,
        "extension,name,department\n1001,Anna Schmidt,Sales\n1003,Cleo Weiß,Support\n",
    )
    .unwrap();
    let out = run(vec![
        "directory".into(),
        "--import".into(),
        csv.display().to_string(),
        "--mqtt".into(),
        mqtt.clone(),
    ])
    .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "Imported 2 subscribers, 2 matched to phones."
    );
    let out = run(vec!["directory".into(), "--mqtt".into(), mqtt.clone()]).await;
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("1003  Cleo Weiß  Support  Cleo (001565000013)"),
        "{text}"
    );
    assert!(
        text.contains("Phones with no subscriber: Bob (001565000012)"),
        "{text}"
    );

    let mut probe = MqttProbe::connect(gw.mqtt_port()).await;
    probe
        .publish(
            "phone2mqtt/Bob/cmd/message",
            r#"{"text": "Call back Anna", "in": "2h"}"#,
        )
        .await;
    let listed = probe
        .expect("phone2mqtt/bridge/test/reminders", |l| {
            l.as_array().is_some_and(|a| a.len() == 1)
        })
        .await;
    let id = listed[0]["id"].as_str().unwrap().to_string();
    let out = run(vec!["reminders".into(), "--mqtt".into(), mqtt.clone()]).await;
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.starts_with(&id) && text.contains("Bob") && text.contains("Call back Anna"),
        "{text}"
    );
    let out = run(vec![
        "reminders".into(),
        "--cancel".into(),
        id.clone(),
        "--mqtt".into(),
        mqtt.clone(),
    ])
    .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    probe
        .expect("phone2mqtt/bridge/test/reminders", |l| {
            l.as_array().is_some_and(|a| a.is_empty())
        })
        .await;
    let out = run(vec![
        "reminders".into(),
        "--cancel".into(),
        id,
        "--mqtt".into(),
        mqtt,
    ])
    .await;
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no reminder"));
    gw.stop().await;
}
