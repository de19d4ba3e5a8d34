//! Adoption tried as an attacker would, through real sockets: the attacker's address is a plain
//! TCP listener that records whatever arrives. Site credentials never reach it, an adoption
//! cannot take another phone's name, an address is `host[:port]` and nothing else, and an
//! adoption at the address the phone called from still works with the site's credentials.

mod common;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use phone2mqtt::config::Secret;
use phone2mqtt::model::PhoneId;
use serde_json::{json, Value};

/// A discovered Yealink (Basic auth): what an attacker would like the site password for.
const MAC: &str = "00:15:65:aa:00:51";
const ID: &str = "001565aa0051";
/// The body an internal service answers with; it must never come back in a result.
const INTERNAL: &str = "INTERNAL-ONLY-7f3a";

/// What the attacker's listener received: the head of each request, as sent.
type Heard = Arc<Mutex<Vec<String>>>;

/// An attacker's (or an internal service's) HTTP port: records every request head and answers
/// 500 with a body that must never be published.
async fn listener() -> (SocketAddr, Heard) {
    recording_listener(|_| {
        format!(
            "HTTP/1.1 500 Internal Server Error\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{INTERNAL}",
            INTERNAL.len()
        )
    })
    .await
}

/// The gateway with the site's credentials in `[provisioning]`.
fn site_config() -> phone2mqtt::config::Config {
    let mut config = test_config();
    config.provisioning.username = Some("admin".into());
    config.provisioning.password = Some(Secret::new(PASSWORD));
    config
}

/// A gateway with the site's credentials, and a Yealink it discovered (and nothing else knows).
async fn discovered_yealink() -> (TestGateway, MqttProbe, tokio_util::sync::CancellationToken) {
    let gw = start_gateway(site_config()).await;
    let mut probe = MqttProbe::connect(gw.mqtt_port()).await;
    let power = tokio_util::sync::CancellationToken::new();
    unconfigured_phone(&gw, "yealink", MAC, &power).await;
    probe.info_with_model(ID).await;
    (gw, probe, power)
}

async fn adopt(probe: &mut MqttProbe, phone: &str, payload: Value) -> Value {
    command(probe, phone, "adopt", payload).await
}

fn error_of(result: &Value) -> String {
    assert_eq!(result["status"], "error", "{result}");
    result["error"].as_str().unwrap().to_string()
}

/// Gives a refused adoption's command time to go anywhere, then checks that nothing did.
async fn nothing_arrived(heard: &Heard) {
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        heard.lock().unwrap().is_empty(),
        "the attacker got {:#?}",
        heard.lock().unwrap().clone()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn site_credentials_never_go_to_an_address_the_phone_did_not_call_from() {
    let (gw, mut probe, power) = discovered_yealink().await;
    let (attacker, heard) = listener().await;

    // The phone called from 127.0.0.1; the attacker listens on 127.0.0.1 too, on another port.
    let result = adopt(
        &mut probe,
        ID,
        json!({"address": attacker.to_string(), "transaction": "t-1"}),
    )
    .await;
    let error = error_of(&result);
    assert!(
        error.contains("`password`") && error.contains("called from"),
        "{error}"
    );
    assert!(!error.contains(PASSWORD), "{error}");
    // The username alone does not make the site's password the adoption's own.
    let result = adopt(
        &mut probe,
        ID,
        json!({"address": attacker.to_string(), "username": "admin", "transaction": "t-2"}),
    )
    .await;
    assert!(error_of(&result).contains("`password`"), "{result}");
    // A DNS name is not the address the phone called from either, whatever it resolves to.
    let result = adopt(
        &mut probe,
        ID,
        json!({"address": format!("localhost:{}", attacker.port()), "transaction": "t-3"}),
    )
    .await;
    assert!(error_of(&result).contains("`password`"), "{result}");

    // Still not adopted: a command is refused before anything is sent.
    let result = command(
        &mut probe,
        ID,
        "dnd",
        json!({"value": "on", "transaction": "t-4"}),
    )
    .await;
    assert!(error_of(&result).contains("not configured"), "{result}");
    nothing_arrived(&heard).await;
    for (topic, payload) in probe.drain() {
        assert!(!payload.contains(PASSWORD), "the password reached {topic}");
    }
    power.cancel();
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_foreign_address_with_its_own_password_gets_only_that_password() {
    let (gw, mut probe, power) = discovered_yealink().await;
    let (elsewhere, heard) = listener().await;
    let result = adopt(
        &mut probe,
        ID,
        json!({"address": elsewhere.to_string(), "password": "its-own", "transaction": "f-1"}),
    )
    .await;
    assert_eq!(result["status"], "ok", "{result}");
    let result = command(
        &mut probe,
        ID,
        "dnd",
        json!({"value": "on", "transaction": "f-2"}),
    )
    .await;
    let error = error_of(&result);
    // The status, never the body: an adopted address can be anybody's service.
    assert!(error.contains("HTTP 500"), "{error}");
    assert!(!error.contains(INTERNAL), "{error}");
    let heads = heard.lock().unwrap().clone();
    assert_eq!(heads.len(), 1, "{heads:#?}");
    use base64::Engine;
    let own = base64::engine::general_purpose::STANDARD.encode("admin:its-own");
    let site = base64::engine::general_purpose::STANDARD.encode(format!("admin:{PASSWORD}"));
    assert!(heads[0].contains(&own), "{}", heads[0]);
    assert!(!heads[0].contains(&site), "{}", heads[0]);
    power.cancel();
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_address_is_host_and_port_only() {
    let (gw, mut probe, power) = discovered_yealink().await;
    let (internal, heard) = listener().await;
    let port = internal.port();
    for (n, address) in [
        format!("http://127.0.0.1:{port}/internal/admin#"),
        format!("127.0.0.1:{port}/internal/admin#"),
        format!("https://127.0.0.1:{port}"),
        format!("admin:x@127.0.0.1:{port}"),
        format!("127.0.0.1:{port}?x=1"),
        format!("127.0.0.1:{port}#"),
        format!("127.0.0.1:{port} "),
        format!("127.0.0.1:{port}\r\nX: y"),
        "::1".to_string(),
        format!("[::1:{port}"),
        "127.0.0.1:99999".to_string(),
        "127.0.0.1:".to_string(),
        "127.1".to_string(),
        "0x7f.0.0.1".to_string(),
        "-phone.example.com".to_string(),
        String::new(),
    ]
    .into_iter()
    .enumerate()
    {
        let transaction = format!("a-{n}");
        let result = adopt(
            &mut probe,
            ID,
            json!({"address": address, "password": "x", "transaction": transaction}),
        )
        .await;
        let error = error_of(&result);
        assert!(
            error.starts_with("invalid argument: address") && error.contains("host[:port]"),
            "{address:?}: {error}"
        );
    }
    let result = command(
        &mut probe,
        ID,
        "dnd",
        json!({"value": "on", "transaction": "a-x"}),
    )
    .await;
    assert!(error_of(&result).contains("not configured"), "{result}");
    nothing_arrived(&heard).await;
    for (topic, payload) in probe.drain() {
        assert!(
            !payload.contains(INTERNAL),
            "the internal body reached {topic}"
        );
    }
    power.cancel();
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_adoption_cannot_take_another_phones_name_mac_or_entry() {
    let (gw, reception) = gateway_with_phone("yealink", "00:15:65:00:00:01").await;
    let mut probe = MqttProbe::connect(gw.mqtt_port()).await;
    let power = tokio_util::sync::CancellationToken::new();
    let phone = unconfigured_phone(&gw, "snom", "00:04:13:aa:00:52", &power).await;
    let id = "000413aa0052";
    probe.info_with_model(id).await;
    let own = phone.addr().to_string();
    for (n, name, why) in [
        (
            1,
            "reception",
            "`Reception` is the name of phone 001565000001",
        ),
        (
            2,
            "RECEPTION",
            "`Reception` is the name of phone 001565000001",
        ),
        (3, "001565000001", "is another phone's MAC"),
        (4, "00:15:65:00:00:01", "is another phone's MAC"),
        (5, "00-15-65-00-00-99", "is another phone's MAC"),
    ] {
        let result = adopt(
            &mut probe,
            id,
            json!({"address": own, "password": PASSWORD, "name": name, "transaction": format!("n-{n}")}),
        )
        .await;
        let error = error_of(&result);
        assert!(error.contains(why), "{name}: {error}");
    }
    // The configured phone cannot be adopted over, by name or by MAC in any spelling.
    for (n, target) in [
        "Reception",
        "reception",
        "001565000001",
        "00:15:65:00:00:01",
    ]
    .into_iter()
    .enumerate()
    {
        let result = adopt(
            &mut probe,
            target,
            json!({"address": own, "password": PASSWORD, "transaction": format!("c-{n}")}),
        )
        .await;
        assert!(
            error_of(&result).contains("configured in phone2mqtt.toml"),
            "{target}: {result}"
        );
    }
    // Nor can the adoption make a Snom (Digest) a Yealink (Basic).
    let result = adopt(
        &mut probe,
        id,
        json!({"address": own, "password": PASSWORD, "vendor": "yealink", "transaction": "v-1"}),
    )
    .await;
    assert!(error_of(&result).contains("`vendor`"), "{result}");
    // An unknown key is refused rather than ignored (a misspelt `password` would silently
    // fall back to the site's).
    let result = adopt(
        &mut probe,
        id,
        json!({"address": own, "pasword": PASSWORD, "transaction": "k-1"}),
    )
    .await;
    assert!(error_of(&result).contains("`pasword`"), "{result}");

    // Reception is still the configured phone; the Snom gets a name of its own.
    let result = command(
        &mut probe,
        "Reception",
        "dnd",
        json!({"value": "on", "transaction": "r-1"}),
    )
    .await;
    assert_eq!(result["status"], "ok", "{result}");
    assert!(reception.snapshot().dnd);
    assert!(!phone.snapshot().dnd);
    let result = adopt(
        &mut probe,
        id,
        json!({"address": own, "password": PASSWORD, "name": "Lobby", "transaction": "ok-1"}),
    )
    .await;
    assert_eq!(result["status"], "ok", "{result}");
    // Renamed on a second adoption, the old name no longer reaches it.
    let result = adopt(
        &mut probe,
        id,
        json!({"address": own, "password": PASSWORD, "name": "Hall", "transaction": "ok-2"}),
    )
    .await;
    assert_eq!(result["status"], "ok", "{result}");
    let result = command(
        &mut probe,
        "Lobby",
        "dnd",
        json!({"value": "on", "transaction": "l-1"}),
    )
    .await;
    assert!(error_of(&result).contains("unknown phone"), "{result}");
    let result = command(
        &mut probe,
        "hall",
        "dnd",
        json!({"value": "on", "transaction": "h-1"}),
    )
    .await;
    assert_eq!(result["status"], "ok", "{result}");
    assert!(phone.snapshot().dnd);
    power.cancel();
    gw.stop().await;
}

/// A discovered phone, adopted with nothing but a name: the site's credentials go to the IP it
/// called from, on the phones' web port (`[provisioning] phone_port`, 80 unless set).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adoption_at_the_phones_own_address_uses_the_site_credentials() {
    for (vendor, mac) in [
        ("yealink", "00:15:65:aa:00:53"),
        ("snom", "00:04:13:aa:00:54"),
    ] {
        let addr = free_port();
        let mut config = site_config();
        config.provisioning.phone_port = Some(addr.port());
        let gw = start_gateway(config).await;
        let mut probe = MqttProbe::connect(gw.mqtt_port()).await;
        let phone = start_phone_with(&gw, vendor, mac, |options| {
            options.listen = addr;
            options.digest = vendor == "snom";
        })
        .await;
        let id = PhoneId::parse(mac).unwrap().to_string();
        probe.info_with_model(&id).await;
        // With no address: the one it called from. With it spelt out: the same.
        let result = adopt(
            &mut probe,
            &id,
            json!({"name": "Desk", "transaction": "s-1"}),
        )
        .await;
        assert_eq!(result["status"], "ok", "{vendor}: {result}");
        let result = adopt(
            &mut probe,
            &id,
            json!({"address": addr.to_string(), "name": "Desk", "transaction": "s-2"}),
        )
        .await;
        assert_eq!(result["status"], "ok", "{vendor}: {result}");
        let kept = std::fs::read_to_string(gw.data_dir.0.join("phones.toml")).unwrap();
        assert!(kept.contains(&format!("address = \"{addr}\"")), "{kept}");
        let result = command(
            &mut probe,
            "desk",
            "dnd",
            json!({"value": "on", "transaction": "s-3"}),
        )
        .await;
        assert_eq!(result["status"], "ok", "{vendor}: {result}");
        assert!(phone.snapshot().dnd, "{vendor}");
        if vendor == "snom" {
            assert!(
                !phone.snapshot().authorizations.iter().any(|a| a == "Basic"),
                "{:?}",
                phone.snapshot().authorizations
            );
        }
        for (topic, payload) in probe.drain() {
            if !topic.ends_with("/cmd/adopt") {
                assert!(!payload.contains(PASSWORD), "the password reached {topic}");
            }
        }
        gw.stop().await;
    }
}
