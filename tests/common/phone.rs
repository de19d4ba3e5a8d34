//! Simulated phones pointed at a test gateway, and waiting for what they received or became.

use std::net::SocketAddr;
use std::time::Duration;

use phone2mqtt::config::{Config, PhoneConfig, Secret};
use phone2mqtt::model::PhoneId;
use phone2mqtt::sim::{self, SimOptions, SimPhone};
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use super::{free_port, start_gateway, test_config, MqttProbe, TestGateway, PASSWORD, TIMEOUT};

/// A phone entry for a simulated phone that will listen on `addr`.
pub fn phone_entry(vendor: &str, mac: &str, addr: SocketAddr, name: &str) -> PhoneConfig {
    PhoneConfig {
        mac: mac.into(),
        vendor: vendor.into(),
        address: addr.to_string(),
        username: "admin".into(),
        password: Secret::new(PASSWORD),
        name: Some(name.into()),
        line: Some("1001@pbx.example.com".into()),
        legacy_api: false,
        dnd_key: None,
        groups: Vec::new(),
        homeassistant: true,
        keys: Default::default(),
        settings: Default::default(),
    }
}

/// Starts a simulated phone on `addr`, pointed at the gateway, and waits until it has booted.
pub async fn start_phone(gw: &TestGateway, vendor: &str, mac: &str, addr: SocketAddr) -> SimPhone {
    start_phone_with(gw, vendor, mac, |options| options.listen = addr).await
}

/// A simulated phone pointed at the gateway, with the test password and the simulator's
/// options changed by `adjust`; it runs as long as the gateway and has booted.
pub async fn start_phone_with(
    gw: &TestGateway,
    vendor: &str,
    mac: &str,
    adjust: impl FnOnce(&mut SimOptions),
) -> SimPhone {
    spawn_phone(gw, vendor, mac, &gw.stop, adjust).await
}

/// A simulated phone that runs until `power` is cancelled, booted.
async fn spawn_phone(
    gw: &TestGateway,
    vendor: &str,
    mac: &str,
    power: &CancellationToken,
    adjust: impl FnOnce(&mut SimOptions),
) -> SimPhone {
    spawn_phone_at(&gw.gateway.public_url, vendor, mac, power, adjust).await
}

/// A simulated phone pointed at the agent at `agent_url` (a `serve` process too), with the
/// test password and `adjust`ed options; it runs until `power` is cancelled, booted.
pub async fn spawn_phone_at(
    agent_url: &str,
    vendor: &str,
    mac: &str,
    power: &CancellationToken,
    adjust: impl FnOnce(&mut SimOptions),
) -> SimPhone {
    let personality = sim::personality(vendor).expect("a simulator for this vendor");
    let mut options = SimOptions::new(personality, PhoneId::parse(mac).expect("a MAC"), agent_url);
    options.password = PASSWORD.into();
    options.remote_answers_after = None;
    adjust(&mut options);
    let phone = SimPhone::spawn(options, power.clone()).await.unwrap();
    assert!(phone.wait_booted(TIMEOUT).await, "{vendor} {mac} booted");
    phone
}

/// A gateway with one configured, booted simulated phone.
pub async fn gateway_with_phone(vendor: &str, mac: &str) -> (TestGateway, SimPhone) {
    gateway_with_phone_in(test_config(), vendor, mac, |_| {}).await
}

/// A gateway with `config` and one more phone, whose entry `adjust` changes (legacy API, DND
/// key, a wrong password...), with the simulated phone booted.
pub async fn gateway_with_phone_in(
    config: Config,
    vendor: &str,
    mac: &str,
    adjust: impl FnOnce(&mut PhoneConfig),
) -> (TestGateway, SimPhone) {
    let addr = free_port();
    let mut config = config;
    let mut entry = phone_entry(vendor, mac, addr, "Reception");
    adjust(&mut entry);
    config.phones.push(entry);
    let gw = start_gateway(config).await;
    let phone = start_phone(&gw, vendor, mac, addr).await;
    (gw, phone)
}

/// Waits until the simulated phone received a request line starting with `prefix`.
pub async fn phone_got(phone: &SimPhone, line: &str) -> Vec<String> {
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    loop {
        let requests = phone.snapshot().requests;
        if requests.iter().any(|r| r == line) {
            return requests;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("the phone never got `{line}`; it got {requests:#?}");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A simulated phone given nothing but the agent's address (no `[[phone]]` entry), with the
/// test password; it runs until `power` is cancelled, even past the gateway.
pub async fn unconfigured_phone(
    gw: &TestGateway,
    vendor: &str,
    mac: &str,
    power: &CancellationToken,
) -> SimPhone {
    spawn_phone(gw, vendor, mac, power, |_| {}).await
}

/// Waits until the simulated phone's state satisfies `check` (it acts in the background).
pub async fn phone_becomes(
    phone: &SimPhone,
    what: &str,
    check: impl Fn(&phone2mqtt::sim::Snapshot) -> bool,
) {
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    while !check(&phone.snapshot()) {
        if tokio::time::Instant::now() > deadline {
            panic!(
                "the simulated phone never got {what}: {:#?}",
                phone.snapshot()
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Whether the simulated phone fired the Action URL `wire` and the agent took it (200).
pub fn fired_ok(phone: &SimPhone, wire: &str) -> bool {
    phone
        .snapshot()
        .fired
        .iter()
        .any(|(fired, status)| fired == wire && *status == 200)
}

/// Sends `command` with `payload` (which names a transaction) to phone `id`, requires an `ok`
/// result and the request line `line` at the simulated phone; returns the result.
pub async fn command_reaches(
    probe: &mut MqttProbe,
    phone: &SimPhone,
    id: &str,
    command: &str,
    payload: Value,
    line: &str,
) -> Value {
    let result = super::command(probe, id, command, payload).await;
    assert_eq!(result["status"], "ok", "{command}: {result}");
    phone_got(phone, line).await;
    result
}

/// Takes a call through `steps` (command, request line, call state after it): each command,
/// with a transaction named after it, ends in a plain `ok`, reaches the simulated phone as its
/// line, and the phone's state follows.
pub async fn walk_call(
    probe: &mut MqttProbe,
    phone: &SimPhone,
    id: &str,
    steps: &[(&str, &str, &str)],
) {
    for (command, line, call_state) in steps {
        let result = command_reaches(
            probe,
            phone,
            id,
            command,
            json!({"transaction": command}),
            line,
        )
        .await;
        assert_eq!(
            result,
            json!({"phone": id, "command": command, "transaction": command, "status": "ok"})
        );
        probe.call_state(id, call_state).await;
    }
}

/// Anna Schmidt (+4930123456) calls the simulated phone `id`: its `incoming_call` event and
/// its ringing state name her; both are returned for the vendor's own fields.
pub async fn anna_calls(probe: &mut MqttProbe, phone: &SimPhone, id: &str) -> (Value, Value) {
    phone.ring("+4930123456", Some("Anna Schmidt")).unwrap();
    let event = probe.event(id, "incoming_call").await;
    assert_eq!(event["remote"], "+4930123456");
    assert_eq!(event["remote_name"], "Anna Schmidt");
    let state = probe.call_state(id, "ringing").await;
    assert_eq!(state["remote"], "+4930123456");
    (event, state)
}

/// A GET as a phone writes it (Action URLs, provisioning files): `path` as is, with raw spaces
/// and `+`, the phone's User-Agent, the connection closed after the answer.
pub fn phone_request(path: &str, user_agent: &str) -> String {
    format!(
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: {user_agent}\r\nConnection: close\r\n\r\n"
    )
}

/// Sends [`phone_request`] to the gateway at `addr`; returns the whole answer.
pub async fn phone_fetch(addr: SocketAddr, path: &str, user_agent: &str) -> String {
    super::raw_http(addr, phone_request(path, user_agent).as_bytes()).await
}

/// Requires each field of `value` (a phone's info, an event) to be as listed.
pub fn assert_fields(value: &Value, expected: &[(&str, Value)]) {
    for (field, wanted) in expected {
        assert_eq!(&value[*field], wanted, "{field} in {value}");
    }
}

/// A gateway with one configured phone of `vendor`, and a probe that saw the phone ring
/// (1002, "Reception" calling), for the commands on a call.
pub async fn ringing_phone(vendor: &str, mac: &str) -> (TestGateway, SimPhone, MqttProbe) {
    let (gw, phone) = gateway_with_phone(vendor, mac).await;
    let mut probe = MqttProbe::connect(gw.mqtt_port()).await;
    phone.ring("1002", Some("Reception")).unwrap();
    let id = PhoneId::parse(mac).expect("a MAC").to_string();
    probe.call_state(&id, "ringing").await;
    (gw, phone, probe)
}

/// The event of a raw `incoming_call` callback for Anna Schmidt's call to line 1001 of phone
/// `id`, with the phone's unfilled `$call_id` left out.
pub fn assert_incoming_from_anna(event: &Value, id: &str) {
    assert_eq!(event["event"], "incoming_call");
    assert_eq!(event["phone"], id);
    assert_eq!(event["remote"], "+4930123456");
    assert_eq!(event["remote_name"], "Anna Schmidt");
    assert_eq!(event["line"], "1001");
    assert!(event.get("call_id").is_none(), "{event}");
    assert_eq!(event["vars"]["remote"], "sip:+4930123456@pbx.example.com");
}

/// Sends a callback to `path` as phone `id` writes it (see [`phone_fetch`]), requires a 200
/// and returns the next event the phone has on MQTT.
pub async fn callback_event(
    gw: &TestGateway,
    probe: &mut MqttProbe,
    id: &str,
    path: &str,
    user_agent: &str,
) -> Value {
    let answer = phone_fetch(gw.gateway.http_addr, path, user_agent).await;
    assert_eq!(super::status_of(&answer), 200, "{answer}");
    probe
        .expect(&format!("phone2mqtt/{id}/event"), |_| true)
        .await
}
