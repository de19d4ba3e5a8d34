//! A phone that calls in without a `[[phone]]` entry is discovered, adopted over MQTT with its
//! credentials, then controllable; adopted and discovered phones survive a restart.

mod common;

use common::*;
use serde_json::json;

const MAC: &str = "00:04:13:92:2d:24";
const ID: &str = "000413922d24";
const OTHER: &str = "0c383e07e16c";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_discovered_phone_is_adopted_then_controllable_and_stays_so() {
    let gw = start_gateway(test_config()).await;
    let mut probe = MqttProbe::connect(gw.mqtt_port()).await;
    let power = tokio_util::sync::CancellationToken::new();
    let phone = unconfigured_phone(&gw, "snom", MAC, &power).await;
    let _other = unconfigured_phone(&gw, "fanvil", OTHER, &power).await;

    let info = probe.info_with_model(ID).await;
    assert_eq!(info["configured"], false);
    assert_eq!(info["vendor"], "snom");
    // Discovered by its provisioning request already, with what its User-Agent tells.
    let discovered = probe
        .expect("phone2mqtt/bridge/test/event", |e| e["phone"] == ID)
        .await;
    assert_eq!(discovered["event"], "phone_discovered");
    assert_eq!(discovered["model"], "D785");
    assert_eq!(discovered["ip"], "127.0.0.1");

    // Not controllable yet, and adopting needs what the phone cannot tell.
    probe
        .publish(&format!("phone2mqtt/{ID}/cmd/dnd"), "on")
        .await;
    let refused = probe
        .expect(&format!("phone2mqtt/{ID}/result"), |_| true)
        .await;
    assert!(
        refused["error"]
            .as_str()
            .unwrap()
            .contains("not configured"),
        "{refused}"
    );
    probe
        .publish(
            &format!("phone2mqtt/{ID}/cmd/adopt"),
            &json!({"address": "not an address", "transaction": "a-0"}).to_string(),
        )
        .await;
    let bad = probe
        .expect(&format!("phone2mqtt/{ID}/result"), |r| {
            r["transaction"] == "a-0"
        })
        .await;
    assert_eq!(bad["status"], "error");
    assert!(
        bad["error"]
            .as_str()
            .unwrap()
            .starts_with("invalid argument: address"),
        "{bad}"
    );

    // Adopt it with its address and password.
    let adopt = json!({"address": phone.addr().to_string(), "password": PASSWORD, "name": "Lobby",
                       "groups": ["front"], "transaction": "a-1"});
    probe
        .publish(&format!("phone2mqtt/{ID}/cmd/adopt"), &adopt.to_string())
        .await;
    let info = probe
        .expect(&format!("phone2mqtt/{ID}/info"), |i| {
            i["configured"] == true
        })
        .await;
    assert_eq!(info["name"], "Lobby");
    assert_eq!(info["groups"], json!(["front"]));
    let adopted = probe
        .expect(&format!("phone2mqtt/{ID}/result"), |r| {
            r["transaction"] == "a-1"
        })
        .await;
    assert_eq!(adopted["status"], "ok", "{adopted}");
    probe.publish("phone2mqtt/Lobby/cmd/dnd", "on").await;
    let done = probe.expect("phone2mqtt/Lobby/result", |_| true).await;
    assert_eq!(done["status"], "ok", "{done}");
    assert!(phone.snapshot().dnd);

    // The data directory keeps both, human-readable; the password is in no message the
    // gateway publishes (only in the adopt command the user sent), nor on the websocket.
    let kept = std::fs::read_to_string(gw.data_dir.0.join("phones.toml")).unwrap();
    assert!(
        kept.contains("[[phone]]") && kept.contains("[[discovered]]"),
        "{kept}"
    );
    for (topic, payload) in probe.drain() {
        if !topic.ends_with("/cmd/adopt") {
            assert!(!payload.contains(PASSWORD), "the password reached {topic}");
        }
    }
    let mut ws = ws_connect(&gw).await;
    ws_send(
        &mut ws,
        json!({"topic": format!("phone2mqtt/{ID}/cmd/adopt"), "payload": adopt}),
    )
    .await;
    let echoed = ws_expect(&mut ws, |f| {
        f["topic"] == format!("phone2mqtt/{ID}/cmd/adopt")
    })
    .await;
    assert_eq!(echoed["payload"]["password"], "***");
    ws_expect(&mut ws, |f| {
        f["topic"] == format!("phone2mqtt/{ID}/result") && f["payload"]["transaction"] == "a-1"
    })
    .await;

    // After a restart: still adopted (and controllable), the other one still discovered.
    let data = gw.stop_keeping_data().await;
    let gw = start_gateway_in(test_config(), data).await;
    let mut probe = MqttProbe::connect(gw.mqtt_port()).await;
    let info = probe
        .expect(&format!("phone2mqtt/{ID}/info"), |_| true)
        .await;
    assert_eq!(info["configured"], true);
    assert_eq!(info["name"], "Lobby");
    // What it told before the restart shows before it calls in again.
    assert_eq!(info["model"], "D785", "{info}");
    assert_eq!(info["firmware"], "10.1.33.33", "{info}");
    let other = probe
        .expect(&format!("phone2mqtt/{OTHER}/info"), |_| true)
        .await;
    assert_eq!(other["configured"], false);
    assert_eq!(other["vendor"], "fanvil");
    probe.publish("phone2mqtt/group/front/cmd/dnd", "off").await;
    let done = probe
        .expect(&format!("phone2mqtt/{ID}/result"), |_| true)
        .await;
    assert_eq!(done["status"], "ok", "{done}");
    assert!(!phone.snapshot().dnd);
    gw.stop().await;
    power.cancel();
}

/// `[provisioning] auto_adopt`: a phone that asks for its provisioning is adopted at once with
/// the site's credentials, at the address it called from.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_adopt_uses_the_sites_credentials_and_the_address_the_phone_called_from() {
    let mut config = test_config();
    config.provisioning.auto_adopt = true;
    config.provisioning.username = Some("admin".into());
    config.provisioning.password = Some(phone2mqtt::config::Secret::new(PASSWORD));
    let gw = start_gateway(config).await;
    let mut probe = MqttProbe::connect(gw.mqtt_port()).await;
    let power = tokio_util::sync::CancellationToken::new();
    let _phone = unconfigured_phone(&gw, "yealink", "001565aa0041", &power).await;
    let info = probe
        .expect("phone2mqtt/001565aa0041/info", |i| i["configured"] == true)
        .await;
    assert_eq!(info["ip"], "127.0.0.1");
    let adopted = probe
        .expect("phone2mqtt/001565aa0041/result", |r| {
            r["command"] == "adopt"
        })
        .await;
    assert_eq!(adopted["status"], "ok", "{adopted}");
    let kept = std::fs::read_to_string(gw.data_dir.0.join("phones.toml")).unwrap();
    assert!(kept.contains("address = \"127.0.0.1\""), "{kept}");
    // The password is the site's, kept for the phone, and published nowhere.
    assert!(kept.contains(PASSWORD));
    for (topic, payload) in probe.drain() {
        assert!(!payload.contains(PASSWORD), "the password reached {topic}");
    }
    power.cancel();
    gw.stop().await;
}
