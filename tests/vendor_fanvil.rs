//! Fanvil through real sockets (docs/vendors.md §2): each command reaches the simulated phone as the
//! documented `/cgi-bin/ConfigManApp.com?key=...` line and ends in a result; commands Fanvil
//! does not document are refused by name; a raw callback as a Fanvil writes it becomes an MQTT
//! event; the phone provisions itself from the agent although Yealink uses the same file name.

mod common;

use common::*;
use serde_json::{json, Value};

const MAC: &str = "0c:38:3e:07:e1:6c";
const ID: &str = "0c383e07e16c";
const UA: &str = "Fanvil X4 2.10.2.6887 0c383e07e16c";

/// Publishes a command and waits for its result.
async fn run(probe: &mut MqttProbe, name: &str, payload: Value) -> Value {
    command(probe, ID, name, payload).await
}

async fn call_state(probe: &mut MqttProbe, state: &str) {
    probe.call_state(ID, state).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_is_answered_held_resumed_muted_and_released() {
    let (gw, phone, mut probe) = ringing_phone("fanvil", MAC).await;

    let key = |name: &str| format!("GET /cgi-bin/ConfigManApp.com?key={name}");
    walk_call(
        &mut probe,
        &phone,
        ID,
        &[
            ("answer", &key("OK"), "talking"),
            ("hold", &key("F_HOLD"), "held"),
            ("resume", &key("F_HOLD"), "talking"),
        ],
    )
    .await;
    // Fanvil reports mute with the call's party.
    let result = command_reaches(
        &mut probe,
        &phone,
        ID,
        "mute",
        json!({"transaction": "mute"}),
        &key("MUTE"),
    )
    .await;
    assert_eq!(
        result,
        json!({"phone": ID, "command": "mute", "transaction": "mute", "status": "ok"})
    );
    let muted = probe.event(ID, "mute").await;
    assert_eq!(muted["remote"], "1002");
    call_state(&mut probe, "talking").await;
    walk_call(
        &mut probe,
        &phone,
        ID,
        &[("hangup", &key("RELEASE"), "idle")],
    )
    .await;

    // A second call is rejected while it rings.
    phone.ring("+4930123456", None).unwrap();
    call_state(&mut probe, "ringing").await;
    let result = run(&mut probe, "reject", json!({"transaction": "r-1"})).await;
    assert_eq!(result["status"], "ok", "{result}");
    phone_got(&phone, "GET /cgi-bin/ConfigManApp.com?key=X").await;
    assert_eq!(
        phone.snapshot().call_state,
        phone2mqtt::model::CallState::Idle
    );
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_fanvil_command_has_its_request_line() {
    let (gw, phone) = gateway_with_phone("fanvil", MAC).await;
    let mut probe = MqttProbe::connect(gw.mqtt_port()).await;

    // (unverified) dial: the reference's first candidate, Yealink's form.
    command_reaches(
        &mut probe,
        &phone,
        ID,
        "dial",
        json!({"number": "+49 30 1234", "transaction": "d-1"}),
        "GET /cgi-bin/ConfigManApp.com?key=number=%2B49301234&outgoing_uri=1001@pbx.example.com",
    )
    .await;
    let event = probe.event(ID, "outgoing_call").await;
    assert_eq!(event["remote"], "+49301234");
    let result = run(&mut probe, "hangup", json!({"transaction": "h-1"})).await;
    assert_eq!(result["status"], "ok", "{result}");
    call_state(&mut probe, "idle").await;

    let cases = [
        ("dnd", "on", "GET /cgi-bin/ConfigManApp.com?key=DNDOn"),
        ("dnd", "off", "GET /cgi-bin/ConfigManApp.com?key=DNDOff"),
        (
            "volume_up",
            "",
            "GET /cgi-bin/ConfigManApp.com?key=VOLUME_UP",
        ),
        (
            "volume_down",
            "",
            "GET /cgi-bin/ConfigManApp.com?key=VOLUME_DOWN",
        ),
        (
            "key",
            "D1 5 * #",
            "GET /cgi-bin/ConfigManApp.com?key=D1;5;*;POUND",
        ),
        ("provision", "", "GET /cgi-bin/ConfigManApp.com?key=AutoP"),
        ("reboot", "", "GET /cgi-bin/ConfigManApp.com?key=Reboot"),
    ];
    for (index, (command, value, line)) in cases.iter().enumerate() {
        let payload = json!({"value": value, "transaction": format!("f-{index}")});
        command_reaches(&mut probe, &phone, ID, command, payload, line).await;
        if *command == "dnd" {
            probe.event(ID, &format!("dnd_{value}")).await;
        }
    }
    assert_eq!(phone.snapshot().keys, ["D1", "5", "*", "POUND"]);
    // The reboot makes the phone boot again, which it reports.
    probe.event(ID, "setup_completed").await;
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_raw_fanvil_callback_becomes_an_event() {
    let gw = start_gateway(test_config()).await;
    let mut probe = MqttProbe::connect(gw.mqtt_port()).await;
    // As the phone writes it: raw spaces, a raw `+`, unfilled `$call_id` and `$duration`,
    // camelCase `callDirection`, Fanvil's User-Agent.
    let token = gw.token(ID);
    let path = format!(
        "/action/{token}/fanvil/incoming_call?mac=0c383e07e16c&ip=10.0.0.7&model=X4&firmware=2.10.2.6887&active_user=1001&active_host=pbx.example.com&local=sip:1001@pbx.example.com&remote=sip:+4930123456@pbx.example.com&display_local=Front Desk&display_remote=Anna Schmidt&call_id=$call_id&duration=$duration&callDirection=in"
    );
    let event = callback_event(&gw, &mut probe, ID, &path, UA).await;
    assert_incoming_from_anna(&event, ID);
    assert_eq!(event["vars"]["callDirection"], "in");
    assert!(event["vars"].get("duration").is_none(), "{event}");
    let info = probe
        .expect(&format!("phone2mqtt/{ID}/info"), |_| true)
        .await;
    assert_fields(
        &info,
        &[
            ("id", json!(ID)),
            ("mac", json!(MAC)),
            ("vendor", json!("fanvil")),
            ("model", json!("X4")),
            ("firmware", json!("2.10.2.6887")),
            ("ip", json!("10.0.0.7")),
            ("configured", json!(false)),
        ],
    );

    // `$mac` left unfilled: the MAC comes from the User-Agent.
    let token = gw.token(ID);
    let path = format!("/action/{token}/fanvil/dnd_on?mac=$mac&ip=10.0.0.7");
    let event = callback_event(&gw, &mut probe, ID, &path, UA).await;
    assert_eq!(event["event"], "dnd_on");
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_phone_provisions_itself_and_reports_a_call() {
    let (gw, phone) = gateway_with_phone("fanvil", MAC).await;
    let mut probe = MqttProbe::connect(gw.mqtt_port()).await;
    let snapshot = phone.snapshot();
    assert!(snapshot.provisioned, "the phone read its <mac>.cfg");
    assert!(fired_ok(&phone, "setup_completed") && fired_ok(&phone, "registered"));

    let (event, _) = anna_calls(&mut probe, &phone, ID).await;
    assert_eq!(event["vars"]["mac"], ID);
    assert_eq!(event["vars"]["remote"], "sip:+4930123456@pbx.example.com");

    // `<mac>.cfg` is Yealink's file name too: the configured vendor decides for this MAC; for
    // an unknown MAC, the User-Agent.
    let addr = gw.gateway.http_addr;
    let own = phone_fetch(addr, &format!("/{ID}.cfg"), "curl/8").await;
    assert!(own.contains("<sysConf>"), "{own}");
    assert!(own.contains("<DNDOnUrl>"), "{own}");
    let other = phone_fetch(
        addr,
        "/0c383e000001.cfg",
        "Fanvil X6U Pro 0.0.10 0c383e000001",
    )
    .await;
    assert!(other.contains("<sysConf>"), "{other}");
    let yealink = phone_fetch(
        addr,
        "/0015654aa937.cfg",
        "Yealink SIP-T46G 28.72.0.1 00:15:65:4a:a9:37",
    )
    .await;
    assert!(
        yealink.contains("#!version:1.0.0.1") && !yealink.contains("<sysConf>"),
        "{yealink}"
    );
    gw.stop().await;
}
