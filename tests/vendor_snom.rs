//! Snom through real sockets (docs/vendors.md §4): each command reaches the simulated phone as the
//! documented request line and ends in a result; dial's 302 is success; the password goes only
//! in answer to the phone's challenge (Digest, or Basic on a phone that asks for Basic and never
//! asked for Digest); raw callbacks as Snom sends them become MQTT events; the phone provisions
//! itself from the agent.

mod common;

use common::*;
use phone2mqtt::config::Secret;
use phone2mqtt::sim::SimPhone;
use serde_json::{json, Value};

const MAC: &str = "00:04:13:92:2d:24";
const ID: &str = "000413922d24";
const UA: &str = "Mozilla/4.0 (compatible; snomD785-SIP 10.1.33.33 2010.12-00004-g9ba52f5 000413922D24 SXM:0 UXM:0)";

/// Publishes a command and waits for its result.
async fn run(probe: &mut MqttProbe, name: &str, value: &str, transaction: &str) -> Value {
    command(
        probe,
        ID,
        name,
        json!({"value": value, "transaction": transaction}),
    )
    .await
}

/// How often the phone received exactly this request line with credentials (the first one,
/// without, only fetches the phone's challenge).
fn times(phone: &SimPhone, line: &str) -> usize {
    let seen = phone.snapshot();
    seen.requests
        .iter()
        .zip(&seen.authorizations)
        .filter(|(r, auth)| *r == line && *auth != "none")
        .count()
}

/// The authentication scheme of each request the phone received with this line.
fn schemes(phone: &SimPhone, line: &str) -> Vec<String> {
    let seen = phone.snapshot();
    seen.requests
        .iter()
        .zip(seen.authorizations)
        .filter(|(r, _)| *r == line)
        .map(|(_, auth)| auth)
        .collect()
}

/// A gateway with the Snom configured, and the simulated phone started by hand, so that it
/// can want Digest or have another password than the gateway thinks.
async fn gateway_with_custom_phone(
    digest: bool,
    configured_password: &str,
) -> (TestGateway, SimPhone) {
    let addr = free_port();
    let mut config = test_config();
    let mut entry = phone_entry("snom", MAC, addr, "Reception");
    entry.password = Secret::new(configured_password);
    config.phones.push(entry);
    let gw = start_gateway(config).await;
    let phone = start_phone_with(&gw, "snom", MAC, |options| {
        options.listen = addr;
        options.digest = digest;
    })
    .await;
    (gw, phone)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dial_is_answered_302_and_counts_as_ok() {
    let (gw, phone) = gateway_with_phone("snom", MAC).await;
    let mut probe = MqttProbe::connect(gw.mqtt_port()).await;

    let result = run(&mut probe, "dial", "+49 30 1234", "d-1").await;
    assert_eq!(
        result,
        json!({"phone": ID, "command": "dial", "transaction": "d-1", "status": "ok"})
    );
    phone_got(
        &phone,
        "GET /command.htm?number=%2B49301234&outgoing_uri=1001@pbx.example.com",
    )
    .await;
    let event = probe.event(ID, "outgoing_call").await;
    assert_eq!(event["remote"], "+49301234");
    probe.call_state(ID, "dialing").await;

    // What the agent took as success was the phone's 302 to index.htm.
    let answer = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(format!("http://{}/command.htm?number=1002", phone.addr()))
        .basic_auth("admin", Some(PASSWORD))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status().as_u16(), 302);
    assert_eq!(answer.headers()["location"], "/index.htm");

    let result = run(&mut probe, "hangup", "", "d-2").await;
    assert_eq!(result["status"], "ok", "{result}");
    phone_got(&phone, "GET /command.htm?key=CANCEL").await;
    probe.event(ID, "call_terminated").await;
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_is_answered_held_resumed_and_hung_up() {
    let (gw, phone, mut probe) = ringing_phone("snom", MAC).await;

    // F_R is a toggle: hold and resume send the same key. Snom has no mute Action URL, so
    // mute changes nothing the agent can see.
    for (command, line, count, call_state) in [
        ("answer", "GET /command.htm?key=ENTER", 1, Some("talking")),
        ("hold", "GET /command.htm?key=F_R", 1, Some("held")),
        ("resume", "GET /command.htm?key=F_R", 2, Some("talking")),
        ("mute", "GET /command.htm?key=MUTE", 1, None),
        ("hangup", "GET /command.htm?key=CANCEL", 1, Some("idle")),
    ] {
        let result = run(&mut probe, command, "", command).await;
        assert_eq!(result["status"], "ok", "{command}: {result}");
        phone_got(&phone, line).await;
        assert_eq!(times(&phone, line), count, "{command}");
        match call_state {
            Some(call_state) => {
                probe.call_state(ID, call_state).await;
            }
            None => assert!(phone.snapshot().muted, "{command}"),
        }
    }
    assert!(fired_ok(&phone, "disconnected"));
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reject_on_a_ringing_snom_fires_no_action_url() {
    let (gw, phone) = gateway_with_phone("snom", MAC).await;
    let mut probe = MqttProbe::connect(gw.mqtt_port()).await;
    phone.ring("+4930123456", Some("Anna Schmidt")).unwrap();
    probe.call_state(ID, "ringing").await;
    let fired_before = phone.snapshot().fired.len();
    let seen_before = probe.drain().len();

    let result = run(&mut probe, "reject", "", "r-1").await;
    assert_eq!(result["status"], "ok", "{result}");
    phone_got(&phone, "GET /command.htm?key=CANCEL").await;
    let snapshot = phone.snapshot();
    assert_eq!(
        snapshot.call_state,
        phone2mqtt::model::CallState::Idle,
        "the call is rejected"
    );
    // As on a real Snom (p4irin): no Action URL at all, so the agent hears nothing.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(phone.snapshot().fired.len(), fired_before);
    let seen = probe.drain();
    assert!(
        !seen[seen_before..]
            .iter()
            .any(|(topic, _)| topic == &format!("phone2mqtt/{ID}/event")),
        "no event after a Snom reject: {:?}",
        &seen[seen_before..]
    );
    // The agent knows the phone went quiet on purpose and ends the call in its state itself.
    assert!(
        seen[seen_before..]
            .iter()
            .any(|(topic, payload)| topic == &format!("phone2mqtt/{ID}")
                && payload.contains("\"call_state\":\"idle\"")),
        "the agent's state is idle after the reject: {:?}",
        &seen[seen_before..]
    );
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dnd_volume_keys_and_reboot_have_their_documented_request_lines() {
    let (gw, phone) = gateway_with_phone("snom", MAC).await;
    let mut probe = MqttProbe::connect(gw.mqtt_port()).await;
    let cases = [
        (
            "dnd",
            "on",
            "GET /dummy.htm?settings=save&dnd_mode=on&store_settings=save",
        ),
        (
            "dnd",
            "off",
            "GET /dummy.htm?settings=save&dnd_mode=off&store_settings=save",
        ),
        ("volume_up", "", "GET /command.htm?key=VOLUME_UP"),
        ("volume_down", "", "GET /command.htm?key=VOLUME_DOWN"),
        ("key", "P1 * #", "GET /command.htm?key=P1;*;%23"),
        ("reboot", "", "GET /advanced_update.htm?reboot=Reboot"),
    ];
    for (index, (command, value, line)) in cases.iter().enumerate() {
        let transaction = format!("s-{index}");
        let result = run(&mut probe, command, value, &transaction).await;
        assert_eq!(result["status"], "ok", "{command}: {result}");
        phone_got(&phone, line).await;
        if *value == "on" {
            assert!(phone.snapshot().dnd);
            probe
                .expect(&format!("phone2mqtt/{ID}"), |s| s["dnd"] == true)
                .await;
        }
    }
    let snapshot = phone.snapshot();
    assert!(!snapshot.dnd);
    assert_eq!(snapshot.keys, vec!["P1", "*", "#"]);
    // The reboot makes the phone boot again, which it reports through action_setup_url.
    probe.event(ID, "setup_completed").await;
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_phone_that_wants_digest_gets_digest_and_never_basic() {
    let (gw, phone) = gateway_with_custom_phone(true, PASSWORD).await;
    let mut probe = MqttProbe::connect(gw.mqtt_port()).await;
    let result = run(&mut probe, "volume_up", "", "g-1").await;
    assert_eq!(result["status"], "ok", "{result}");
    // Nothing first, answered 401 with a Digest challenge; then the Digest answer.
    assert_eq!(
        schemes(&phone, "GET /command.htm?key=VOLUME_UP"),
        ["none", "Digest"]
    );
    assert_eq!(phone.snapshot().volume, 9);

    // The phone wants Digest, the agent knows: later commands answer its challenge at once.
    let result = run(&mut probe, "dial", "1002", "g-2").await;
    assert_eq!(result["status"], "ok", "{result}");
    assert_eq!(
        schemes(
            &phone,
            "GET /command.htm?number=1002&outgoing_uri=1001@pbx.example.com"
        ),
        ["Digest"]
    );
    let result = run(&mut probe, "volume_up", "", "g-3").await;
    assert_eq!(result["status"], "ok", "{result}");
    assert_eq!(
        schemes(&phone, "GET /command.htm?key=VOLUME_UP"),
        ["none", "Digest", "Digest"]
    );
    let seen = phone.snapshot().authorizations;
    assert!(!seen.iter().any(|a| a == "Basic"), "{seen:?}");
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_phone_on_basic_gets_basic_only_when_it_asks_for_it() {
    let (gw, phone) = gateway_with_custom_phone(false, PASSWORD).await;
    let mut probe = MqttProbe::connect(gw.mqtt_port()).await;
    for transaction in ["b-1", "b-2"] {
        let result = run(&mut probe, "volume_up", "", transaction).await;
        assert_eq!(result["status"], "ok", "{result}");
    }
    // Each time: nothing, the phone's Basic challenge, then Basic; never Basic unasked.
    assert_eq!(
        schemes(&phone, "GET /command.htm?key=VOLUME_UP"),
        ["none", "Basic", "none", "Basic"]
    );
    assert_eq!(phone.snapshot().volume, 10);
    gw.stop().await;
}

/// Something on a Digest phone's address that suddenly asks for Basic (a downgrade) gets no
/// password: a plain listener that challenges with Digest, then with Basic.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_digest_phone_that_turns_to_basic_gets_no_password() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let basic_now = std::sync::Arc::new(AtomicBool::new(false));
    let mode = basic_now.clone();
    let (addr, heard) = recording_listener(move |head| {
        let digest = head.to_lowercase().contains("authorization: digest");
        if mode.load(Ordering::SeqCst) {
            "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"snom\"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        } else if digest {
            "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        } else {
            "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Digest realm=\"snom\", nonce=\"abc123\", qop=\"auth\", algorithm=MD5\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        }
        .to_string()
    })
    .await;
    let mut config = test_config();
    config
        .phones
        .push(phone_entry("snom", MAC, addr, "Reception"));
    let gw = start_gateway(config).await;
    let mut probe = MqttProbe::connect(gw.mqtt_port()).await;
    let result = run(&mut probe, "volume_up", "", "d-1").await;
    assert_eq!(result["status"], "ok", "{result}");
    basic_now.store(true, Ordering::SeqCst);
    let result = run(&mut probe, "volume_up", "", "d-2").await;
    assert_eq!(result["status"], "error", "{result}");
    let error = result["error"].as_str().unwrap();
    assert!(error.contains("asked for HTTP Basic after"), "{error}");
    let heard = heard.lock().unwrap().clone();
    assert!(
        heard
            .iter()
            .all(|head| !head.to_lowercase().contains("authorization: basic")),
        "{heard:#?}"
    );
    // Digest, then (turned) the remembered Digest answer, refused with a Basic challenge.
    assert_eq!(heard.len(), 3, "{heard:#?}");
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_password_is_an_error_mentioning_401() {
    for digest in [false, true] {
        let (gw, phone) = gateway_with_custom_phone(digest, "not-the-password").await;
        let mut probe = MqttProbe::connect(gw.mqtt_port()).await;
        let result = run(&mut probe, "answer", "", "w-1").await;
        assert_eq!(result["status"], "error", "{result}");
        let error = result["error"].as_str().unwrap();
        assert!(error.contains("401"), "{error}");
        assert!(error.contains("http_user"), "{error}");
        assert!(
            !error.contains("not-the-password") && !error.contains(PASSWORD),
            "{error}"
        );
        phone_got(&phone, "GET /command.htm?key=ENTER").await;
        gw.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_raw_snom_callback_becomes_an_mqtt_event() {
    let gw = start_gateway(test_config()).await;
    let mut probe = MqttProbe::connect(gw.mqtt_port()).await;
    // Pasted in verbatim, as Snom does: raw spaces, a raw `+`, an unfilled `$call-id`.
    let token = gw.token(ID);
    let request = format!(
        "GET /action/{token}/snom/incoming?mac=000413922D24&remote=sip:+4930123456@pbx.example.com&display_remote=Anna Schmidt&call-id=$call-id HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: {UA}\r\nConnection: close\r\n\r\n"
    );
    let answer = raw_http(gw.gateway.http_addr, request.as_bytes()).await;
    assert_eq!(status_of(&answer), 200, "{answer}");
    let event = probe.event(ID, "incoming_call").await;
    assert_eq!(event["phone"], ID);
    assert_eq!(event["remote"], "+4930123456");
    assert_eq!(event["remote_name"], "Anna Schmidt");
    assert_eq!(event["vars"]["remote"], "sip:+4930123456@pbx.example.com");
    assert!(
        event.get("call_id").is_none() && event["vars"].get("call-id").is_none(),
        "an unfilled $call-id is absent: {event}"
    );
    // Model and firmware come from the User-Agent: Snom has no variable for them.
    // The retained info may still be the one from before the boot callbacks: wait for theirs.
    let info = probe.info_with_model(ID).await;
    assert_eq!(info["vendor"], "snom");
    assert_eq!(info["model"], "D785");
    assert_eq!(info["firmware"], "10.1.33.33");
    let state = probe.call_state(ID, "ringing").await;
    assert_eq!(state["remote"], "+4930123456");

    // The irregular setting names keep their wire names: `action_reg_failed` is `reg_failed`.
    let token = gw.token(ID);
    let request = format!(
        "GET /action/{token}/snom/reg_failed?mac=000413922D24&phone_ip=10.0.0.7&active_user=1001&active_host=pbx.example.com HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: {UA}\r\nConnection: close\r\n\r\n"
    );
    let answer = raw_http(gw.gateway.http_addr, request.as_bytes()).await;
    assert_eq!(status_of(&answer), 200, "{answer}");
    let event = probe.event(ID, "register_failed").await;
    assert_eq!(event["line"], "1001");
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_simulated_snom_provisions_itself_and_reports_an_incoming_call() {
    let (gw, phone) = gateway_with_phone("snom", MAC).await;
    let mut probe = MqttProbe::connect(gw.mqtt_port()).await;
    let snapshot = phone.snapshot();
    assert!(snapshot.provisioned, "the phone read its provisioning");
    // Booted: action_setup_url fired and the agent took it. There is no "registered" URL.
    assert!(
        snapshot
            .fired
            .iter()
            .any(|(wire, status)| wire == "setup" && *status == 200),
        "{:?}",
        snapshot.fired
    );

    // The retained info may still be the one from before the boot callbacks: wait for theirs.
    let info = probe.info_with_model(ID).await;
    assert_eq!(info["vendor"], "snom");
    assert_eq!(info["model"], "D785");
    assert_eq!(info["firmware"], "10.1.33.33");

    let (event, state) = anna_calls(&mut probe, &phone, ID).await;
    assert_eq!(event["line"], "1001");
    assert_eq!(event["call_id"], "1");
    assert_eq!(event["vars"]["mac"], "000413922D24");
    assert_eq!(event["vars"]["remote"], "sip:+4930123456@pbx.example.com");
    assert_eq!(event["vars"]["call-id"], "1");
    assert!(event["vars"].get("phone_ip").is_some(), "{event}");
    assert_eq!(state["remote_name"], "Anna Schmidt");
    gw.stop().await;
}
