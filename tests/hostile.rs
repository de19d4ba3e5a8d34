//! Bad input of every kind gets a clear answer and breaks nothing: injected dial strings,
//! unknown commands, malformed JSON, unreachable and misconfigured phones, wrong tokens,
//! garbage on the HTTP port. No password or token ever reaches MQTT.

mod common;

use common::*;
use serde_json::json;

const MAC: &str = "00:15:65:4a:a9:37";
const ID: &str = "0015654aa937";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_commands_get_error_results_and_never_reach_the_phone() {
    let (gw, phone) = gateway_with_phone("yealink", MAC).await;
    let mut probe = MqttProbe::connect(gw.mqtt_port()).await;
    let result_topic = format!("phone2mqtt/{ID}/result");
    let cases = [
        (
            "dial",
            r#"{"number": "1001&key=Reboot", "transaction": "inject"}"#,
            "inject",
            "is not a number",
        ),
        (
            "dial",
            r#"{"number": "1001;Reboot", "transaction": "semi"}"#,
            "semi",
            "is not a number",
        ),
        (
            "dial",
            r#"{"number": "١٠٠١", "transaction": "arabic"}"#,
            "arabic",
            "is not a number",
        ),
        (
            "explode",
            r#"{"transaction": "unknown"}"#,
            "unknown",
            "unknown command `explode`",
        ),
        (
            "dial",
            r#"{"number": "1001", "transaction": "#,
            "",
            "invalid JSON",
        ),
        (
            "dnd",
            r#"{"state": "sideways", "transaction": "dnd"}"#,
            "dnd",
            "is not `on` or `off`",
        ),
        (
            "key",
            r#"{"key": "OK;Reboot", "transaction": "key"}"#,
            "key",
            "is not a key name",
        ),
        (
            "logo",
            r#"{"url": "file:///etc/passwd", "transaction": "logo"}"#,
            "logo",
            "`logo` needs an http(s) URL",
        ),
        (
            "configure",
            r#"{"settings": {"a": "1\naction_url.incoming_call = http://evil"}, "transaction": "c-inject"}"#,
            "c-inject",
            "the value must be one line",
        ),
        (
            "configure",
            r#"{"settings": {".": "1"}, "transaction": "c-name"}"#,
            "c-name",
            "a name starts with a letter",
        ),
        (
            "configure",
            r#"{"keys": {"0": "Gate"}, "transaction": "c-key"}"#,
            "c-key",
            "must be a number from 1",
        ),
        (
            "configure",
            r#"{"transaction": "c-empty"}"#,
            "c-empty",
            "needs `keys` or `settings`",
        ),
        (
            "configure",
            r#"{"keys": {"3": "Gate"}, "colour": "red", "transaction": "c-field"}"#,
            "c-field",
            "unknown field `colour`",
        ),
    ];
    for (command, payload, transaction, error) in cases {
        probe
            .publish(&format!("phone2mqtt/{ID}/cmd/{command}"), payload)
            .await;
        let result = probe
            .expect(&result_topic, |r| {
                r["command"] == command && r["status"] == "error"
            })
            .await;
        if !transaction.is_empty() {
            assert_eq!(result["transaction"], transaction);
        }
        let text = result["error"].as_str().unwrap();
        assert!(
            text.contains(error),
            "{command}: `{text}` should say `{error}`"
        );
    }
    // A good command after all that still works, and nothing else reached the phone.
    probe
        .publish(&format!("phone2mqtt/{ID}/cmd/dial"), "1001")
        .await;
    probe
        .expect(&result_topic, |r| {
            r["command"] == "dial" && r["status"] == "ok"
        })
        .await;
    let requests = phone_got(
        &phone,
        "GET /servlet?key=number=1001&outgoing_uri=1001@pbx.example.com",
    )
    .await;
    assert_eq!(
        requests.len(),
        1,
        "only the valid dial reached the phone: {requests:?}"
    );

    // Commands for a phone nobody knows are answered too.
    probe
        .publish(
            "phone2mqtt/0015650000ff/cmd/answer",
            r#"{"transaction": "who"}"#,
        )
        .await;
    let result = probe
        .expect("phone2mqtt/0015650000ff/result", |_| true)
        .await;
    assert_eq!(result["status"], "error");
    assert_eq!(result["transaction"], "who");
    assert_eq!(result["error"], "unknown phone `0015650000ff`");
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_and_refusing_phones_give_error_results_that_explain() {
    let unreachable = free_port();
    let wrong_password_addr = free_port();
    let mut config = test_config();
    config.phones.push(phone_entry(
        "yealink",
        "00:15:65:00:00:01",
        unreachable,
        "Gone",
    ));
    let mut wrong = phone_entry("yealink", "00:15:65:00:00:02", wrong_password_addr, "Wrong");
    wrong.password = phone2mqtt::config::Secret::new("not-the-password");
    config.phones.push(wrong);
    let gw = start_gateway(config).await;
    let _phone = start_phone(&gw, "yealink", "00:15:65:00:00:02", wrong_password_addr).await;
    let mut probe = MqttProbe::connect(gw.mqtt_port()).await;

    probe
        .publish(
            "phone2mqtt/001565000001/cmd/answer",
            r#"{"transaction": "a"}"#,
        )
        .await;
    // The failed attempt marks the phone offline, then the result explains.
    let availability = probe
        .expect("phone2mqtt/001565000001/availability", |_| true)
        .await;
    assert_eq!(availability, "offline");
    let result = probe
        .expect("phone2mqtt/001565000001/result", |_| true)
        .await;
    assert_eq!(result["status"], "error");
    assert_eq!(result["transaction"], "a");
    let error = result["error"].as_str().unwrap();
    assert!(
        error.starts_with("phone unreachable: http://127.0.0.1:"),
        "{error}"
    );

    probe
        .publish("phone2mqtt/001565000002/cmd/answer", "")
        .await;
    let result = probe
        .expect("phone2mqtt/001565000002/result", |_| true)
        .await;
    let error = result["error"].as_str().unwrap();
    assert!(
        error.contains("401") && error.contains("password"),
        "{error}"
    );

    let all = probe.drain();
    for (topic, payload) in &all {
        assert!(
            !payload.contains(PASSWORD) && !payload.contains("not-the-password"),
            "password on {topic}"
        );
        for mac in ["001565000001", "001565000002"] {
            assert!(!payload.contains(&gw.token(mac)), "token on {topic}");
        }
    }
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_phone_that_still_asks_for_confirmation_gets_a_403_hint() {
    // A phone never provisioned by the agent: empty allow list, on-screen prompt on.
    let addr = free_port();
    let mut config = test_config();
    config
        .phones
        .push(phone_entry("yealink", MAC, addr, "Fresh"));
    let gw = start_gateway(config).await;
    let personality = phone2mqtt::sim::personality("yealink").unwrap();
    let mut options = phone2mqtt::sim::SimOptions::new(
        personality,
        phone2mqtt::model::PhoneId::parse(MAC).unwrap(),
        "http://127.0.0.1:9", // nothing there: the phone keeps its factory settings
    );
    options.listen = addr;
    options.password = PASSWORD.into();
    let _phone = phone2mqtt::sim::SimPhone::spawn(options, gw.stop.clone())
        .await
        .unwrap();
    let mut probe = MqttProbe::connect(gw.mqtt_port()).await;
    probe
        .publish(&format!("phone2mqtt/{ID}/cmd/dnd"), "on")
        .await;
    let result = probe
        .expect(&format!("phone2mqtt/{ID}/result"), |_| true)
        .await;
    let error = result["error"].as_str().unwrap();
    assert!(
        error.contains("403")
            && error.contains("features.action_uri_limit_ip")
            && error.contains("Allow remote control?"),
        "{error}"
    );
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_token_gets_403_and_publishes_nothing() {
    let gw = start_gateway(test_config()).await;
    let mut probe = MqttProbe::connect_filter(gw.mqtt_port(), "phone2mqtt/+/event").await;
    let addr = gw.gateway.http_addr;
    let wrong = raw_http(
        addr,
        b"GET /action/wrong-token-000000000/yealink/incoming_call?mac=00:15:65:00:00:0a&remote=+491 HTTP/1.1\r\nHost: x\r\n\r\n",
    )
    .await;
    assert_eq!(status_of(&wrong), 403, "{wrong}");
    let missing = raw_http(
        addr,
        b"GET /action/yealink/incoming_call?mac=00:15:65:00:00:0a HTTP/1.1\r\nHost: x\r\n\r\n",
    )
    .await;
    assert_ne!(status_of(&missing), 200, "{missing}");
    // Another phone's token is as wrong.
    let other = raw_http(
        addr,
        format!(
            "GET /action/{}/yealink/dnd_on?mac=00:15:65:00:00:0b HTTP/1.1\r\nHost: x\r\n\r\n",
            gw.token("00156500000a")
        )
        .as_bytes(),
    )
    .await;
    assert_eq!(status_of(&other), 403, "{other}");
    // A correct callback afterwards is the first event the subscriber sees.
    let right = raw_http(
        addr,
        format!(
            "GET /action/{}/yealink/dnd_on?mac=00:15:65:00:00:0b HTTP/1.1\r\nHost: x\r\n\r\n",
            gw.token("00156500000b")
        )
        .as_bytes(),
    )
    .await;
    assert_eq!(status_of(&right), 200, "{right}");
    let (topic, event) = probe.next_on(|t| t.ends_with("/event")).await;
    assert_eq!(topic, "phone2mqtt/00156500000b/event");
    assert_eq!(event["event"], "dnd_on");
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callbacks_as_phones_really_write_them_are_accepted() {
    let gw = start_gateway(test_config()).await;
    let mut probe = MqttProbe::connect(gw.mqtt_port()).await;
    let addr = gw.gateway.http_addr;
    // Raw spaces, a raw `+`, an unfilled `$call_id`, an upper-case MAC, UTF-8 in the name.
    let request = format!(
        "GET /action/{}/yealink/incoming_call?mac=00:15:65:4A:A9:37&ip=10.0.0.5&remote=sip:+4930123456@pbx.example.com&display_remote=Jürgen Weiß & Co&call_id=$call_id HTTP/1.1\r\nHost: x\r\nUser-Agent: Yealink SIP-T46G 28.72.0.1 00:15:65:4a:a9:37\r\n\r\n",
        gw.token(ID)
    );
    let answer = raw_http(addr, request.as_bytes()).await;
    assert_eq!(status_of(&answer), 200, "{answer}");
    let event = probe
        .expect(&format!("phone2mqtt/{ID}/event"), |_| true)
        .await;
    assert_eq!(event["event"], "incoming_call");
    assert_eq!(event["remote"], "+4930123456");
    // A raw `&` inside a value is joined back, since what follows it is no variable.
    assert_eq!(event["remote_name"], "Jürgen Weiß & Co");
    assert!(
        event.get("call_id").is_none(),
        "an unfilled $call_id is absent: {event}"
    );
    assert_eq!(event["vars"]["remote"], "sip:+4930123456@pbx.example.com");
    // The phone was not configured: it is discovered, with what its User-Agent says.
    let info = probe
        .expect(&format!("phone2mqtt/{ID}/info"), |_| true)
        .await;
    assert_eq!(
        info,
        json!({"id": ID, "mac": "00:15:65:4a:a9:37", "name": null, "vendor": "yealink", "model": "SIP-T46G",
               "firmware": "28.72.0.1", "ip": "10.0.0.5", "agent": "test", "configured": false,
               "groups": [], "subscriber": null})
    );
    // Commands to a discovered phone say what is missing.
    probe
        .publish(&format!("phone2mqtt/{ID}/cmd/answer"), "")
        .await;
    let result = probe
        .expect(&format!("phone2mqtt/{ID}/result"), |_| true)
        .await;
    assert!(
        result["error"].as_str().unwrap().contains("not configured"),
        "{result}"
    );

    // Unknown events and callbacks without any MAC are refused with a reason.
    let unknown = raw_http(
        addr,
        format!(
            "GET /action/{}/yealink/explode?mac=001565000001 HTTP/1.1\r\n\r\n",
            gw.token("001565000001")
        )
        .as_bytes(),
    )
    .await;
    assert_eq!(status_of(&unknown), 404, "{unknown}");
    assert!(unknown.contains("no Action URL event `explode`"));
    let no_mac = raw_http(
        addr,
        format!(
            "GET /action/{}/yealink/dnd_on?mac=$mac HTTP/1.1\r\n\r\n",
            gw.token("001565000001")
        )
        .as_bytes(),
    )
    .await;
    assert_eq!(status_of(&no_mac), 400, "{no_mac}");
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_on_the_http_port_gets_400_and_the_server_keeps_serving() {
    let gw = start_gateway(test_config()).await;
    let addr = gw.gateway.http_addr;
    for garbage in [
        &b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 hello\r\n\r\n"[..],
        b"HELLO\r\n\r\n",
        b"GET /\r\n\r\n",
        b"GET / SPDY/3\r\n\r\n",
    ] {
        let answer = raw_http(addr, garbage).await;
        assert_eq!(status_of(&answer), 400, "{answer}");
    }
    let oversize = format!("GET /{} HTTP/1.1\r\n\r\n", "a".repeat(20_000));
    assert_eq!(status_of(&raw_http(addr, oversize.as_bytes()).await), 431);
    let answer = raw_http(
        addr,
        format!(
            "GET /api/info HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {}\r\nConnection: close\r\n\r\n",
            gw.admin_token
        )
        .as_bytes(),
    )
    .await;
    assert_eq!(status_of(&answer), 200, "{answer}");
    assert!(answer.contains("\"base_topic\":\"phone2mqtt\""));
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_websocket_refuses_everything_but_command_topics() {
    let (gw, phone) = gateway_with_phone("yealink", MAC).await;
    let mut ws = ws_connect(&gw).await;
    ws_send(
        &mut ws,
        json!({"topic": format!("phone2mqtt/{ID}"), "payload": {"call_state": "idle"}}),
    )
    .await;
    let error = ws_expect(&mut ws, |f| f.get("error").is_some()).await;
    assert!(
        error["error"]
            .as_str()
            .unwrap()
            .contains("only command topics"),
        "{error}"
    );
    ws.send_text("not json").await;
    let error = ws_expect(&mut ws, |f| f.get("error").is_some()).await;
    assert!(
        error["error"].as_str().unwrap().contains("invalid JSON"),
        "{error}"
    );
    ws_send(
        &mut ws,
        json!({"topic": "phone2mqtt/bridge/test/state", "payload": "offline"}),
    )
    .await;
    ws_expect(&mut ws, |f| f.get("error").is_some()).await;
    // Still open and working.
    ws_send(
        &mut ws,
        json!({"topic": format!("phone2mqtt/{ID}/cmd/volume_up"), "payload": {"transaction": "v"}}),
    )
    .await;
    let result = ws_expect(&mut ws, |f| {
        f["topic"] == format!("phone2mqtt/{ID}/result") && f["payload"]["transaction"] == "v"
    })
    .await;
    assert_eq!(result["payload"]["status"], "ok");
    assert_eq!(phone.snapshot().volume, 9);
    gw.stop().await;
}

trait SendText {
    async fn send_text(&mut self, text: &str);
}

impl SendText for Ws {
    async fn send_text(&mut self, text: &str) {
        use futures_util::SinkExt;
        self.send(tokio_tungstenite::tungstenite::Message::Text(
            text.to_string().into(),
        ))
        .await
        .unwrap();
    }
}
