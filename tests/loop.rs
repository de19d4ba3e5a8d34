//! The whole loop through real sockets: a simulated phone's callbacks become MQTT events and
//! retained state; commands over MQTT and the websocket reach the phone as the documented
//! request line, and a result comes back.

mod common;

use common::*;
use serde_json::json;

const MAC: &str = "00:15:65:4a:a9:37";
const ID: &str = "0015654aa937";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_incoming_call_reaches_mqtt_state_and_websocket() {
    let (gw, phone) = gateway_with_phone("yealink", MAC).await;
    let mut probe = MqttProbe::connect(gw.mqtt_port()).await;
    let mut ws = ws_connect(&gw).await;
    // The websocket starts with the retained snapshot: the phone's info is in it.
    // (or, if the web side has not seen the boot yet, right after it).
    let info = ws_expect(&mut ws, |f| {
        f["topic"] == format!("phone2mqtt/{ID}/info") && f["payload"]["model"].is_string()
    })
    .await;
    assert_eq!(info["retained"], true);
    assert_eq!(info["payload"]["vendor"], "yealink");
    assert_eq!(info["payload"]["model"], "SIP-T46G");

    let (event, state) = anna_calls(&mut probe, &phone, ID).await;
    assert_eq!(event["phone"], ID);
    assert_eq!(event["vars"]["remote"], "sip:+4930123456@pbx.example.com");
    assert_eq!(event["vars"]["display_remote"], "Anna Schmidt");
    assert_eq!(state["remote_name"], "Anna Schmidt");

    let frame = ws_expect(&mut ws, |f| {
        f["topic"] == format!("phone2mqtt/{ID}/event") && f["payload"]["event"] == "incoming_call"
    })
    .await;
    assert_eq!(frame["retained"], false);
    assert_eq!(frame["payload"]["remote"], "+4930123456");
    assert_eq!(frame["payload"]["remote_name"], "Anna Schmidt");

    // A subscriber arriving later gets the retained state: ringing, and no retained event.
    let mut late = MqttProbe::connect_filter(gw.mqtt_port(), &format!("phone2mqtt/{ID}/#")).await;
    let availability = late
        .expect(&format!("phone2mqtt/{ID}/availability"), |_| true)
        .await;
    assert_eq!(availability, "online");
    let mut state_only =
        MqttProbe::connect_filter(gw.mqtt_port(), &format!("phone2mqtt/{ID}")).await;
    let retained = state_only
        .expect(&format!("phone2mqtt/{ID}"), |_| true)
        .await;
    assert_eq!(retained["call_state"], "ringing");
    let seen = late.drain();
    assert!(
        !seen.iter().any(|(topic, _)| topic.ends_with("/event")),
        "events must never be retained: {seen:?}"
    );
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_goes_through_answer_hold_and_hangup() {
    let (gw, phone, mut probe) = ringing_phone("yealink", MAC).await;

    walk_call(
        &mut probe,
        &phone,
        ID,
        &[
            ("answer", "GET /servlet?key=ANSWER", "talking"),
            ("hold", "GET /servlet?key=HOLD:1", "held"),
            ("resume", "GET /servlet?key=UNHOLD:1", "talking"),
            ("hangup", "GET /servlet?key=CALLEND", "idle"),
        ],
    )
    .await;
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_over_mqtt_and_websocket_reach_the_phone_as_documented() {
    let (gw, phone) = gateway_with_phone("yealink", MAC).await;
    let mut probe = MqttProbe::connect(gw.mqtt_port()).await;

    probe
        .publish(
            &format!("phone2mqtt/{ID}/cmd/dial"),
            r#"{"number": "+49 30 1234", "transaction": "t-1"}"#,
        )
        .await;
    let result = probe
        .expect(&format!("phone2mqtt/{ID}/result"), |r| {
            r["transaction"] == "t-1"
        })
        .await;
    assert_eq!(
        result,
        json!({"phone": ID, "command": "dial", "transaction": "t-1", "status": "ok"})
    );
    phone_got(
        &phone,
        "GET /servlet?key=number=%2B49301234&outgoing_uri=1001@pbx.example.com",
    )
    .await;
    let event = probe.event(ID, "outgoing_call").await;
    assert_eq!(event["remote"], "+49301234");

    let mut ws = ws_connect(&gw).await;
    ws_send(
        &mut ws,
        json!({"topic": format!("phone2mqtt/{ID}/cmd/dnd"), "payload": {"state": "on", "transaction": "web-1"}}),
    )
    .await;
    let frame = ws_expect(&mut ws, |f| {
        f["topic"] == format!("phone2mqtt/{ID}/result") && f["payload"]["transaction"] == "web-1"
    })
    .await;
    assert_eq!(frame["payload"]["status"], "ok");
    phone_got(&phone, "GET /servlet?key=DNDOn").await;
    assert!(phone.snapshot().dnd);
    probe
        .expect(&format!("phone2mqtt/{ID}"), |s| s["dnd"] == true)
        .await;

    // Commands can name the phone by its configured name; the result comes back under it.
    probe.publish("phone2mqtt/Reception/cmd/dnd", "off").await;
    let result = probe.expect("phone2mqtt/Reception/result", |_| true).await;
    assert_eq!(result["status"], "ok");
    phone_got(&phone, "GET /servlet?key=DNDOff").await;
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_yealink_command_has_its_documented_request_line() {
    let (gw, phone) = gateway_with_phone("yealink", MAC).await;
    let mut probe = MqttProbe::connect(gw.mqtt_port()).await;
    let cases = [
        (
            "dial",
            "*21#",
            "GET /servlet?key=number=*21%23&outgoing_uri=1001@pbx.example.com",
        ),
        ("reject", "", "GET /servlet?key=X"),
        ("transfer", "1002", "GET /servlet?key=BTrans=1002"),
        ("volume_up", "", "GET /servlet?key=VOLUME_UP"),
        ("volume_down", "", "GET /servlet?key=VOLUME_DOWN"),
        ("mute", "", "GET /servlet?key=MUTE"),
        ("key", "F1 OK", "GET /servlet?key=F1;OK"),
        ("message", "Lunch is served", "POST /servlet?push=xml"),
        (
            "refresh",
            "",
            "GET /servlet?phonecfg=get&accounts=1&dnd=1&fw=1",
        ),
        ("provision", "", "GET /servlet?key=AutoP"),
        ("reboot", "", "GET /servlet?key=Reboot"),
    ];
    for (index, (command, value, line)) in cases.iter().enumerate() {
        let transaction = format!("w-{index}");
        let payload = json!({"value": value, "transaction": transaction}).to_string();
        probe
            .publish(&format!("phone2mqtt/{ID}/cmd/{command}"), &payload)
            .await;
        let result = probe
            .expect(&format!("phone2mqtt/{ID}/result"), |r| {
                r["transaction"] == transaction.as_str()
            })
            .await;
        assert_eq!(result["status"], "ok", "{command}: {result}");
        phone_got(&phone, line).await;
        if *command == "refresh" {
            assert_eq!(result["data"]["firmware"], "28.72.0.1");
            assert_eq!(result["data"]["lines"][0]["user"], "1001");
        }
    }
    assert_eq!(
        phone.snapshot().last_message.as_deref(),
        Some("Lunch is served")
    );
    // The reboot makes the phone boot again, which it reports.
    probe.event(ID, "setup_completed").await;
    gw.stop().await;
}
