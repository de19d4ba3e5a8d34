//! Grandstream through real sockets, against docs/vendors.md §3: the simulated phone provisions
//! itself from the agent and reports calls; every command reaches it as the documented CTI
//! request line (`/cgi-bin/api-*?passcode=...`); a 200 with `"response":"error"` is an error;
//! undocumented commands are refused naming Grandstream.

mod common;

use std::collections::{BTreeSet, HashMap};

use common::*;
use phone2mqtt::config::Secret;
use phone2mqtt::sim::{self, Provisioned, SimPhone};
use serde_json::{json, Value};

const MAC: &str = "c0:74:ad:2b:d8:59";
const ID: &str = "c074ad2bd859";
const BIN: &str = env!("CARGO_BIN_EXE_phone2mqtt");

/// A gateway whose one Grandstream phone entry is adjusted by `adjust`, the phone booted.
async fn gateway_with(
    adjust: impl FnOnce(&mut phone2mqtt::config::PhoneConfig),
) -> (TestGateway, SimPhone) {
    gateway_with_phone_in(test_config(), "grandstream", MAC, adjust).await
}

/// Sends one command and waits for its result. Also returns how many messages the probe had
/// seen before, for [`MqttProbe::since`]: what the command caused may arrive before its result.
async fn send(
    probe: &mut MqttProbe,
    command: &str,
    payload: Value,
    transaction: &str,
) -> (Value, usize) {
    let mark = probe.mark();
    let mut payload = payload;
    payload["transaction"] = json!(transaction);
    let result = common::command(probe, ID, command, payload).await;
    (result, mark)
}

fn state_topic() -> String {
    format!("phone2mqtt/{ID}")
}

fn event_topic() -> String {
    format!("phone2mqtt/{ID}/event")
}

fn line(api: &str) -> String {
    format!("GET /cgi-bin/api-{api}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_phone_provisions_itself_and_its_incoming_call_reaches_mqtt() {
    let (gw, phone) = gateway_with_phone("grandstream", MAC).await;
    let snapshot = phone.snapshot();
    assert!(snapshot.provisioned, "the phone read cfg{ID}.xml");
    assert!(snapshot
        .fired
        .iter()
        .any(|(wire, status)| wire == "registered" && *status == 200));
    let mut probe = MqttProbe::connect(gw.mqtt_port()).await;
    // The retained info may still be the one from before the boot callbacks: wait for theirs.
    let info = probe.info_with_model(ID).await;
    assert_eq!(info["vendor"], "grandstream");
    assert_eq!(info["model"], "GXP1628");
    assert_eq!(info["firmware"], "1.0.4.138");

    let (event, _) = anna_calls(&mut probe, &phone, ID).await;
    assert_eq!(event["phone"], ID);
    assert_eq!(event["local"], "1001");
    assert_eq!(event["line"], "1001");
    assert_eq!(event["call_id"], "1");
    assert_eq!(event["vars"]["remote"], "+4930123456");
    assert_eq!(event["vars"]["call-id"], "1");
    assert_eq!(event["vars"]["mac"], ID);
    assert_eq!(event["vars"]["product"], "GXP1628");
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_goes_through_answer_hold_resume_and_hangup() {
    let (gw, phone, mut probe) = ringing_phone("grandstream", MAC).await;
    let state_topic = format!("phone2mqtt/{ID}");
    for (command, api, call_state) in [
        (
            "answer",
            "phone_operation?passcode=s3cret-admin-pw&cmd=acceptcall",
            "talking",
        ),
        (
            "hold",
            "phone_operation?passcode=s3cret-admin-pw&cmd=holdcall",
            "held",
        ),
        (
            "resume",
            "phone_operation?passcode=s3cret-admin-pw&cmd=unhold",
            "talking",
        ),
        (
            "hangup",
            "phone_operation?passcode=s3cret-admin-pw&cmd=endcall",
            "idle",
        ),
    ] {
        let (result, mark) = send(&mut probe, command, json!({}), command).await;
        assert_eq!(
            result,
            json!({"phone": ID, "command": command, "transaction": command, "status": "ok"})
        );
        phone_got(&phone, &line(api)).await;
        probe
            .since(mark, &state_topic, |s| s["call_state"] == call_state)
            .await;
    }
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_grandstream_command_has_its_documented_request_line() {
    let (gw, phone) = gateway_with_phone("grandstream", MAC).await;
    let mut probe = MqttProbe::connect(gw.mqtt_port()).await;
    let p = "passcode=s3cret-admin-pw";

    let (result, mark) = send(&mut probe, "dial", json!({"number": "+49 30 1234"}), "d-1").await;
    assert_eq!(result["status"], "ok", "{result}");
    phone_got(
        &phone,
        &line(&format!("make_call?{p}&phonenumber=%2B49301234")),
    )
    .await;
    let event = probe
        .since(mark, &event_topic(), |e| e["event"] == "outgoing_call")
        .await;
    assert_eq!(event["remote"], "+49301234");
    let (result, mark) = send(&mut probe, "hangup", json!({}), "d-2").await;
    assert_eq!(result["status"], "ok", "{result}");
    probe
        .since(mark, &state_topic(), |s| s["call_state"] == "idle")
        .await;

    let (result, _) = send(&mut probe, "dial", json!({"number": "*21#"}), "d-3").await;
    assert_eq!(result["status"], "ok", "{result}");
    phone_got(&phone, &line(&format!("make_call?{p}&phonenumber=*21%23"))).await;
    let (result, mark) = send(&mut probe, "hangup", json!({}), "d-4").await;
    assert_eq!(result["status"], "ok", "{result}");
    probe
        .since(mark, &state_topic(), |s| s["call_state"] == "idle")
        .await;

    let mark = probe.mark();
    phone.ring("+4930123456", None).unwrap();
    probe
        .since(mark, &state_topic(), |s| s["call_state"] == "ringing")
        .await;
    let (result, _) = send(&mut probe, "reject", json!({}), "r-1").await;
    assert_eq!(result["status"], "ok", "{result}");
    phone_got(
        &phone,
        &line(&format!("phone_operation?{p}&cmd=rejectcall")),
    )
    .await;

    let (result, _) = send(&mut probe, "key", json!({"keys": "1 * # OK MPK3"}), "k-1").await;
    assert_eq!(result["status"], "ok", "{result}");
    phone_got(
        &phone,
        &line(&format!("send_key?{p}&keys=1:STAR:%23:OK:MPK3")),
    )
    .await;
    assert_eq!(phone.snapshot().keys, ["1", "STAR", "#", "OK", "MPK3"]);

    let mark = probe.mark();
    phone.ring("+4930123456", Some("Anna Schmidt")).unwrap();
    probe
        .since(mark, &state_topic(), |s| s["remote_name"] == "Anna Schmidt")
        .await;
    let (result, _) = send(&mut probe, "refresh", json!({}), "f-1").await;
    assert_eq!(result["status"], "ok", "{result}");
    phone_got(&phone, &line(&format!("get_line_status?{p}"))).await;
    assert_eq!(
        result["data"]["lines"][0],
        json!({"line": 1, "state": "ringing", "account": 0, "remote": "+4930123456", "remote_name": "Anna Schmidt", "active": true})
    );
    assert_eq!(result["data"]["lines"][1]["state"], "idle");

    let (result, mark) = send(&mut probe, "reboot", json!({}), "b-1").await;
    assert_eq!(result["status"], "ok", "{result}");
    phone_got(&phone, &line(&format!("sys_operation?{p}&request=REBOOT"))).await;
    // The phone comes back and says so.
    probe
        .since(mark, &event_topic(), |e| e["event"] == "setup_completed")
        .await;
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn legacy_api_dials_with_password_and_a_zero_based_account() {
    let (gw, phone) = gateway_with(|entry| entry.legacy_api = true).await;
    let mut probe = MqttProbe::connect(gw.mqtt_port()).await;
    let (result, _) = send(&mut probe, "dial", json!({"number": "+49 30 1234"}), "l-1").await;
    assert_eq!(result["status"], "ok", "{result}");
    phone_got(
        &phone,
        "GET /cgi-bin/api-make_call?phonenumber=%2B49301234&account=0&password=s3cret-admin-pw",
    )
    .await;
    let (result, mark) = send(&mut probe, "hangup", json!({}), "l-2").await;
    assert_eq!(result["status"], "ok", "{result}");
    probe
        .since(mark, &state_topic(), |s| s["call_state"] == "idle")
        .await;
    let (result, _) = send(
        &mut probe,
        "dial",
        json!({"number": "1002", "line": 2}),
        "l-3",
    )
    .await;
    assert_eq!(result["status"], "ok", "{result}");
    phone_got(
        &phone,
        "GET /cgi-bin/api-make_call?phonenumber=1002&account=1&password=s3cret-admin-pw",
    )
    .await;
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dnd_presses_the_dnd_key_only_when_the_state_must_change() {
    let (gw, phone) = gateway_with(|entry| entry.dnd_key = Some("MPK1".into())).await;
    let mut probe = MqttProbe::connect(gw.mqtt_port()).await;
    let press = "GET /cgi-bin/api-send_key?passcode=s3cret-admin-pw&keys=MPK1";
    let presses = |phone: &SimPhone| {
        phone
            .snapshot()
            .requests
            .iter()
            .filter(|r| *r == press)
            .count()
    };

    let (result, mark) = send(&mut probe, "dnd", json!({"state": "on"}), "n-1").await;
    assert_eq!(result["status"], "ok", "{result}");
    phone_got(&phone, press).await;
    assert!(phone.snapshot().dnd);
    // The phone reports the change (P8316), and the agent's state follows.
    probe
        .since(mark, &state_topic(), |s| s["dnd"] == true)
        .await;

    // Already on: the key is not pressed again (it toggles); the phone is only asked to answer.
    let (result, _) = send(&mut probe, "dnd", json!({"state": "on"}), "n-2").await;
    assert_eq!(result["status"], "ok", "{result}");
    phone_got(
        &phone,
        "GET /cgi-bin/api-get_line_status?passcode=s3cret-admin-pw",
    )
    .await;
    assert_eq!(presses(&phone), 1);
    assert!(phone.snapshot().dnd);

    let (result, mark) = send(&mut probe, "dnd", json!({"state": "off"}), "n-3").await;
    assert_eq!(result["status"], "ok", "{result}");
    assert_eq!(presses(&phone), 2);
    assert!(!phone.snapshot().dnd);
    probe
        .since(mark, &state_topic(), |s| s["dnd"] == false)
        .await;
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dnd_without_a_dnd_key_says_how_to_set_one_up() {
    let (gw, phone) = gateway_with_phone("grandstream", MAC).await;
    let mut probe = MqttProbe::connect(gw.mqtt_port()).await;
    let before = phone.snapshot().requests.len();
    let (result, _) = send(&mut probe, "dnd", json!({"state": "on"}), "n-1").await;
    assert_eq!(result["status"], "error");
    let error = result["error"].as_str().unwrap();
    assert!(
        error.contains("MPK") && error.contains("dnd_key"),
        "{error}"
    );
    assert_eq!(phone.snapshot().requests.len(), before);
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusal_in_a_200_answer_is_an_error_result() {
    let (gw, phone) = gateway_with(|entry| entry.password = Secret::new("wrong pass+word")).await;
    let mut probe = MqttProbe::connect(gw.mqtt_port()).await;
    phone.ring("1002", None).unwrap();
    let (result, _) = send(&mut probe, "answer", json!({}), "w-1").await;
    phone_got(
        &phone,
        "GET /cgi-bin/api-phone_operation?passcode=wrong%20pass%2Bword&cmd=acceptcall",
    )
    .await;
    assert_eq!(result["status"], "error", "{result}");
    let error = result["error"].as_str().unwrap();
    assert!(
        error.contains("unauthorized") && error.contains("passcode"),
        "{error}"
    );
    assert!(
        !error.contains("wrong pass"),
        "the password never shows: {error}"
    );
    assert_eq!(
        phone.snapshot().call_state,
        phone2mqtt::model::CallState::Ringing
    );
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operation_the_phone_cannot_do_now_is_an_error_result() {
    let (gw, phone) = gateway_with_phone("grandstream", MAC).await;
    let mut probe = MqttProbe::connect(gw.mqtt_port()).await;
    // Nothing rings: `acceptcall` answers {"response":"error","body":false}.
    let (result, _) = send(&mut probe, "answer", json!({}), "a-1").await;
    phone_got(
        &phone,
        "GET /cgi-bin/api-phone_operation?passcode=s3cret-admin-pw&cmd=acceptcall",
    )
    .await;
    assert_eq!(result["status"], "error", "{result}");
    assert!(result["error"].as_str().unwrap().contains("false"));
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_raw_path_style_callback_becomes_an_event() {
    // A configured phone, but no simulator: only the raw request below talks to the agent.
    let mut config = test_config();
    config
        .phones
        .push(phone_entry("grandstream", MAC, free_port(), "Reception"));
    let gw = start_gateway(config).await;
    let mut probe = MqttProbe::connect_filter(gw.mqtt_port(), "phone2mqtt/+/event").await;
    let token = gw.token(ID);
    let request = format!(
        "GET /action/{token}/grandstream/incoming_call/mac=c074ad2bd859&remote=+4930123456&display_remote=Anna Schmidt&call-id=$call-id HTTP/1.1\r\nHost: {}\r\nUser-Agent: Grandstream Model HW GXP1628 SW 1.0.4.138 DevId c074ad2bd859\r\nConnection: close\r\n\r\n",
        gw.gateway.http_addr
    );
    let answer = raw_http(gw.gateway.http_addr, request.as_bytes()).await;
    assert_eq!(status_of(&answer), 200, "{answer}");
    let (topic, event) = probe.next_on(|t| t.ends_with("/event")).await;
    assert_eq!(topic, format!("phone2mqtt/{ID}/event"));
    assert_eq!(event["event"], "incoming_call");
    assert_eq!(event["remote"], "+4930123456");
    assert_eq!(event["remote_name"], "Anna Schmidt");
    assert!(
        event.get("call_id").is_none(),
        "an unfilled $call-id is absent"
    );
    assert_eq!(
        event["vars"],
        json!({"mac": ID, "remote": "+4930123456", "display_remote": "Anna Schmidt"})
    );
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agent_serves_every_grandstream_file_name() {
    let gw = start_gateway(test_config()).await;
    let token = gw.token(ID);
    for file in [format!("cfg{ID}.xml"), format!("cfg{ID}"), "cfg.xml".into()] {
        let request = format!(
            "GET /{file} HTTP/1.1\r\nHost: x\r\nUser-Agent: Grandstream Model HW GXP1628 SW 1.0.4.138 DevId {ID}\r\nConnection: close\r\n\r\n"
        );
        let answer = raw_http(gw.gateway.http_addr, request.as_bytes()).await;
        assert_eq!(status_of(&answer), 200, "{file}: {answer}");
        assert!(answer.contains("<gs_provision version=\"1\">"), "{file}");
        // The phone's own files carry its Action URLs; the generic one none, and no token.
        let generic = file == "cfg.xml";
        assert_eq!(answer.contains("<P8310>"), !generic, "{file}");
        assert_eq!(answer.contains(&token), !generic, "{file}");
        if generic {
            assert!(!answer.contains("/action/"), "{answer}");
        }
    }
    gw.stop().await;
}

/// `phone2mqtt provision grandstream --format v2`, read by the simulated phone's parser, gives
/// every aliased event's URL; fired with Grandstream's values, each becomes its event on MQTT.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provision_v2_output_is_read_by_the_phone_and_accepted_by_the_agent() {
    let gw = start_gateway(test_config()).await;
    let dir = tempdir::TempDir::new();
    let path = gw.cli_config(&dir);
    let output = std::process::Command::new(BIN)
        .args([
            "provision",
            "grandstream",
            "--mac",
            MAC,
            "--format",
            "v2",
            "-c",
            path.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(text.contains("<config version=\"2\">"), "{text}");
    assert!(text.contains("Action URI Allowed IP List = 127.0.0.1"));

    let personality = sim::personality("grandstream").unwrap();
    let mut provisioned = Provisioned::default();
    (personality.read_provisioning)(&text, &mut provisioned);
    let spec = personality.vendor;
    let aliased: BTreeSet<&str> = spec
        .events
        .iter()
        .filter(|e| !matches!(e.setting, "P8328" | "P8329"))
        .map(|e| e.wire)
        .collect();
    assert_eq!(
        provisioned
            .action_urls
            .keys()
            .map(String::as_str)
            .collect::<BTreeSet<_>>(),
        aliased
    );

    let values: HashMap<&'static str, String> = [
        ("mac", ID.to_string()),
        ("phone_ip", "10.0.0.6".to_string()),
        ("product", "GXP2170".to_string()),
        ("program_version", "1.0.11.3".to_string()),
        ("active_user", "1001".to_string()),
        ("active_host", "pbx.example.com".to_string()),
        ("local", "1001".to_string()),
        ("remote", "+4930123456".to_string()),
        ("display_local", "Front Desk".to_string()),
        ("display_remote", "Anna Schmidt".to_string()),
        ("call-id", "42".to_string()),
    ]
    .into_iter()
    .collect();
    let mut probe = MqttProbe::connect_filter(gw.mqtt_port(), "phone2mqtt/+/event").await;
    for wire in &aliased {
        let url = sim::substitute(&provisioned.action_urls[*wire], &values);
        let status = sim::send_raw_get(
            &url,
            &format!("Grandstream Model HW GXP2170 SW 1.0.11.3 DevId {ID}"),
        )
        .await
        .unwrap();
        assert_eq!(status, 200, "{url}");
        let (_, event) = probe.next_on(|t| t.ends_with("/event")).await;
        assert_eq!(
            event["event"],
            spec.event(wire).unwrap().event.name(),
            "{wire}"
        );
        assert_eq!(event["phone"], ID);
        if spec.event(wire).unwrap().carries == phone2mqtt::phone_vendors::Carries::Call {
            assert_eq!(event["remote"], "+4930123456", "{wire}");
            assert_eq!(event["call_id"], "42", "{wire}");
        }
    }
    gw.stop().await;
}
