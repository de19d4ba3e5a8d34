//! Htek through real sockets (docs/vendors.md §5): each command reaches the simulated phone as the
//! documented `/Phone_ActionURL&Command=...` path (no `?`, byte for byte) and ends in a result;
//! commands Htek does not document are refused by name; a raw callback as an Htek writes it
//! becomes an MQTT event; the phone provisions itself from the agent although Grandstream uses
//! the same file name.

mod common;

use common::*;
use serde_json::{json, Value};

const MAC: &str = "00:1f:c1:1c:22:a9";
const ID: &str = "001fc11c22a9";
const UA: &str = "Htek UC903 2.0.4.2 00:1f:c1:1c:22:a9";

/// Publishes a command and waits for its result.
async fn run(probe: &mut MqttProbe, name: &str, payload: Value) -> Value {
    command(probe, ID, name, payload).await
}

async fn call_state(probe: &mut MqttProbe, state: &str) {
    probe.call_state(ID, state).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_is_answered_and_hung_up() {
    let (gw, phone, mut probe) = ringing_phone("htek", MAC).await;

    walk_call(
        &mut probe,
        &phone,
        ID,
        &[
            ("answer", "GET /Phone_ActionURL&Command=3&key=OK", "talking"),
            ("hangup", "GET /Phone_ActionURL&Command=2", "idle"),
        ],
    )
    .await;
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_htek_command_has_its_request_line() {
    let (gw, phone) = gateway_with_phone("htek", MAC).await;
    let mut probe = MqttProbe::connect(gw.mqtt_port()).await;

    // Account is the 1-based account number: the command's line, else account 1.
    for (payload, line) in [
        (
            json!({"number": "+49 30 1234", "transaction": "d-1"}),
            "GET /Phone_ActionURL&Command=1&Number=%2B49301234&Account=1",
        ),
        (
            json!({"number": "*21#", "line": 2, "transaction": "d-2"}),
            "GET /Phone_ActionURL&Command=1&Number=*21%23&Account=2",
        ),
    ] {
        command_reaches(&mut probe, &phone, ID, "dial", payload, line).await;
        let event = probe.event(ID, "outgoing_call").await;
        assert!(event["remote"] == "+49301234" || event["remote"] == "*21#");
        let result = run(&mut probe, "hangup", json!({"transaction": "h"})).await;
        assert_eq!(result["status"], "ok", "{result}");
        call_state(&mut probe, "idle").await;
    }

    // (unverified) Yealink's key names, as docs/vendors.md guesses them for Htek.
    let cases = [
        ("dnd", "on", "GET /Phone_ActionURL&Command=3&key=DNDOn"),
        ("dnd", "off", "GET /Phone_ActionURL&Command=3&key=DNDOff"),
        (
            "volume_up",
            "",
            "GET /Phone_ActionURL&Command=3&key=VOLUME_UP",
        ),
        (
            "volume_down",
            "",
            "GET /Phone_ActionURL&Command=3&key=VOLUME_DOWN",
        ),
        ("key", "OK", "GET /Phone_ActionURL&Command=3&key=OK"),
        ("reboot", "", "GET /Phone_ActionURL&Command=3&key=Reboot"),
    ];
    for (index, (command, value, line)) in cases.iter().enumerate() {
        let payload = json!({"value": value, "transaction": format!("k-{index}")});
        command_reaches(&mut probe, &phone, ID, command, payload, line).await;
        if *command == "dnd" {
            probe.event(ID, &format!("dnd_{value}")).await;
        }
    }
    probe.event(ID, "setup_completed").await;

    // Several keys cannot go in one Htek request.
    let result = run(
        &mut probe,
        "key",
        json!({"key": "1 2", "transaction": "k-many"}),
    )
    .await;
    assert_eq!(result["status"], "error", "{result}");
    assert!(result["error"]
        .as_str()
        .unwrap()
        .contains("one key per request"));
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_raw_htek_callback_becomes_an_event() {
    let gw = start_gateway(test_config()).await;
    let mut probe = MqttProbe::connect(gw.mqtt_port()).await;
    // As the phone writes it: raw spaces, a raw `+`, an unfilled `$call_id`, Htek's User-Agent.
    let token = gw.token(ID);
    let path = format!(
        "/action/{token}/htek/incoming_call?mac=001fc11c22a9&ip=10.0.0.8&model=UC903&firmware=2.0.4.2&active_user=1001&active_host=pbx.example.com&local=sip:1001@pbx.example.com&remote=sip:+4930123456@pbx.example.com&display_local=Front Desk&display_remote=Anna Schmidt&call_id=$call_id"
    );
    let event = callback_event(&gw, &mut probe, ID, &path, UA).await;
    assert_incoming_from_anna(&event, ID);
    let info = probe
        .expect(&format!("phone2mqtt/{ID}/info"), |_| true)
        .await;
    assert_fields(
        &info,
        &[
            ("id", json!(ID)),
            ("mac", json!(MAC)),
            ("vendor", json!("htek")),
            ("model", json!("UC903")),
            ("firmware", json!("2.0.4.2")),
            ("ip", json!("10.0.0.8")),
            ("configured", json!(false)),
        ],
    );
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_phone_provisions_itself_and_reports_a_call() {
    let (gw, phone) = gateway_with_phone("htek", MAC).await;
    let mut probe = MqttProbe::connect(gw.mqtt_port()).await;
    let snapshot = phone.snapshot();
    assert!(snapshot.provisioned, "the phone read its cfg<mac>.xml");
    assert!(fired_ok(&phone, "setup_completed") && fired_ok(&phone, "registered"));

    let (event, _) = anna_calls(&mut probe, &phone, ID).await;
    assert_eq!(event["vars"]["mac"], ID);

    // The caller gives up: a missed call.
    phone.remote_hangup().unwrap();
    probe.event(ID, "missed_call").await;

    // `cfg<mac>.xml` is Grandstream's file name too: the configured vendor decides for this
    // MAC; for an unknown MAC, the User-Agent.
    let addr = gw.gateway.http_addr;
    let own = phone_fetch(addr, &format!("/cfg{ID}.xml"), "curl/8").await;
    assert!(own.contains("<hl_provision version=\"1\">"), "{own}");
    assert!(own.contains("para=\"ActionURL_IncomingCall\""), "{own}");
    let other = phone_fetch(
        addr,
        "/cfg001fc1000001.xml",
        "Htek UC926 2.0.4.4 00:1f:c1:00:00:01",
    )
    .await;
    assert!(other.contains("<hl_provision"), "{other}");
    gw.stop().await;
}
