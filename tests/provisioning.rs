//! Zero-touch provisioning, end to end: simulated phones of every vendor are given nothing but
//! the agent's address; the agent serves their files merged into the site's own (a plain HTTP
//! server standing in for the PBX's provisioning), with programmable keys, a logo and pushed
//! settings; the phones read them like phones do, press keys, and are verified.

mod common;

use std::collections::HashMap;
use std::io::Cursor;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use common::*;
use serde_json::json;

/// One phone per vendor, and the file the site's provisioning server has for it.
const PHONES: &[(&str, &str)] = &[
    ("yealink", "001565aa0001"),
    ("grandstream", "000b82aa0002"),
    ("snom", "000413aa0003"),
    ("fanvil", "0c383eaa0004"),
    ("htek", "001fc1aa0005"),
];

/// The site's files: a SIP account each, as a PBX would provision it, and an old Action URL the
/// merge must replace.
fn site_files() -> HashMap<String, String> {
    HashMap::from([
        (
            "001565aa0001.cfg".into(),
            "#!version:1.0.0.1\n# from the PBX\naccount.1.enable = 1\naccount.1.user_name = 2001\naccount.1.sip_server.1.address = pbx.site.example\naction_url.incoming_call = http://old-crm.example/in\n".into(),
        ),
        (
            "cfg000b82aa0002.xml".into(),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<gs_provision version=\"1\"><mac>000b82aa0002</mac><config version=\"1\"><P271>1</P271><P35>2002</P35><P8310>http://old-crm.example/in</P8310></config></gs_provision>\n".into(),
        ),
        (
            "000413AA0003.xml".into(),
            "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<settings><phone-settings><user_name idx=\"1\" perm=\"\">2003</user_name><user_host idx=\"1\" perm=\"\">pbx.site.example</user_host></phone-settings><functionKeys><fkey idx=\"0\" context=\"active\" perm=\"\">line</fkey></functionKeys></settings>\n".into(),
        ),
        (
            "0c383eaa0004.cfg".into(),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<sysConf><Version>2.0000000000</Version><sip><SipUser>2004</SipUser></sip></sysConf>\n".into(),
        ),
        (
            "cfg001fc1aa0005.xml".into(),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<hl_provision version=\"1\"><config version=\"1\"><P35 para=\"Profile1_User\">2005</P35></config></hl_provision>\n".into(),
        ),
    ])
}

/// A JPEG, 960×540, as a marketing department would hand it over.
fn company_logo() -> Vec<u8> {
    let image = image::RgbImage::from_fn(960, 540, |x, _| image::Rgb([(x % 256) as u8, 80, 160]));
    let mut bytes = Vec::new();
    image::DynamicImage::ImageRgb8(image)
        .write_to(&mut Cursor::new(&mut bytes), image::ImageFormat::Jpeg)
        .unwrap();
    bytes
}

/// The site's plain HTTP server: its provisioning files and the logo.
async fn site_server() -> SocketAddr {
    let files = Arc::new(site_files());
    let logo = Arc::new(company_logo());
    let app =
        axum::Router::new()
            .route(
                "/prov/{file}",
                axum::routing::get(
                    |State(files): State<Arc<HashMap<String, String>>>,
                     Path(file): Path<String>| async move {
                        match files.get(&file) {
                            Some(text) => (StatusCode::OK, text.clone()).into_response(),
                            None => StatusCode::NOT_FOUND.into_response(),
                        }
                    },
                ),
            )
            .route(
                "/logo.jpg",
                axum::routing::get(move || {
                    let logo = logo.clone();
                    async move { logo.to_vec() }
                }),
            )
            .with_state(files);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn phones_given_only_the_agents_address_are_provisioned_merged_adopted_and_programmed() {
    let site = site_server().await;
    let mut config = test_config();
    config.provisioning = toml::from_str(&format!(
        "upstream = \"http://{site}/prov/\"\nkeys = {{ 3 = \"Garage door\" }}\n"
    ))
    .unwrap();
    let gw = start_gateway(config).await;
    let mut probe = MqttProbe::connect(gw.mqtt_port()).await;
    let power = tokio_util::sync::CancellationToken::new();
    let mut phones = HashMap::new();
    for (vendor, mac) in PHONES {
        phones.insert(*vendor, unconfigured_phone(&gw, vendor, mac, &power).await);
    }

    for (vendor, mac) in PHONES {
        let phone = &phones[vendor];
        let snapshot = phone.snapshot();
        // The site's account survived the merge, and the agent's Action URLs are in.
        let account = snapshot
            .settings
            .iter()
            .find(|(_, value)| value.starts_with("200"))
            .map(|(key, value)| format!("{key} = {value}"));
        assert!(
            account.is_some(),
            "{vendor}: the site's account is lost: {:#?}",
            snapshot.settings
        );
        assert!(
            snapshot.settings.values().all(|v| !v.contains("old-crm")),
            "{vendor}: the site's old Action URL was not replaced"
        );
        assert!(
            snapshot.settings.values().any(|v| v.contains("/action/")),
            "{vendor}: no Action URL provisioned: {:#?}",
            snapshot.settings
        );
        // Discovered, unconfigured, with what it told.
        let info = probe
            .expect(&format!("phone2mqtt/{mac}/info"), |i| {
                i["vendor"] == *vendor
            })
            .await;
        assert_eq!(info["configured"], false, "{vendor}");
        let status = probe
            .expect(&format!("phone2mqtt/{mac}/provisioning"), |s| {
                s["served_at"].is_string()
            })
            .await;
        assert_eq!(status["in_sync"], true, "{vendor}: {status}");
        // Vendors without URL keys say so instead of dropping the key silently.
        let refused = status["refused"].as_array().unwrap();
        if matches!(*vendor, "yealink" | "snom") {
            assert!(refused.is_empty(), "{vendor}: {status}");
        } else {
            assert!(
                refused[0].as_str().unwrap().contains("Garage door"),
                "{vendor}: {status}"
            );
        }
    }

    // Adopted over MQTT with its credentials, then controllable.
    for (vendor, mac) in PHONES {
        let phone = &phones[vendor];
        let adopted = command(
            &mut probe,
            mac,
            "adopt",
            json!({"address": phone.addr().to_string(), "password": PASSWORD, "transaction": format!("a-{vendor}")}),
        )
        .await;
        assert_eq!(adopted["status"], "ok", "{vendor}: {adopted}");
        let hangup = command(
            &mut probe,
            mac,
            "hangup",
            json!({"transaction": format!("h-{vendor}")}),
        )
        .await;
        assert_eq!(hangup["status"], "ok", "{vendor}: {hangup}");
    }

    // The programmed key: pressing it on the phone publishes the event with its label, on the
    // phone's event topic and on the key's own topic.
    for vendor in ["yealink", "snom"] {
        let mac = PHONES.iter().find(|(v, _)| *v == vendor).unwrap().1;
        let phone = &phones[vendor];
        let client = reqwest::Client::new();
        let pressed = client
            .post(format!("http://{}/sim/key/3", phone.addr()))
            .send()
            .await
            .unwrap();
        assert_eq!(pressed.status(), 200, "{vendor}");
        let event = probe
            .expect(&format!("phone2mqtt/{mac}/key/3"), |_| true)
            .await;
        assert_eq!(event["event"], "key");
        assert_eq!(event["key"], "3");
        assert_eq!(event["label"], "Garage door");
        probe.event(mac, "key").await;
        // Key 4 is not programmed: the phone has nothing to call.
        let unprogrammed = client
            .post(format!("http://{}/sim/key/4", phone.addr()))
            .send()
            .await
            .unwrap();
        assert_eq!(unprogrammed.status(), 409, "{vendor}");
    }

    // A new logo, fetched from the site's server, converted and applied by re-provisioning.
    let yealink = &phones["yealink"];
    let logo = command(
        &mut probe,
        "001565aa0001",
        "logo",
        json!({"url": format!("http://{site}/logo.jpg"), "transaction": "logo-1"}),
    )
    .await;
    assert_eq!(logo["status"], "ok", "{logo}");
    assert_eq!(
        (
            logo["data"]["width"].as_u64(),
            logo["data"]["height"].as_u64()
        ),
        (Some(480), Some(270))
    );
    phone_becomes(yealink, "the logo", |s| s.logo.is_some()).await;
    let seen = yealink.snapshot().logo.unwrap();
    assert_eq!((seen.width, seen.height), (480, 270));
    assert!(seen.url.starts_with(&gw.gateway.public_url), "{}", seen.url);
    assert!(yealink.snapshot().settings["phone_setting.backgrounds"].starts_with("Config:logo-"));
    // The site's account is still there after re-provisioning.
    assert_eq!(yealink.snapshot().settings["account.1.user_name"], "2001");
    // A vendor with no logo setting gets an error naming it.
    let refused = command(
        &mut probe,
        "0c383eaa0004",
        "logo",
        json!({"url": format!("http://{site}/logo.jpg"), "transaction": "logo-2"}),
    )
    .await;
    assert_eq!(refused["status"], "error");
    assert!(
        refused["error"].as_str().unwrap().contains("Fanvil"),
        "{refused}"
    );
    // An image URL that is not an image.
    let broken = command(
        &mut probe,
        "000413aa0003",
        "logo",
        json!({"url": format!("http://{site}/prov/000413AA0003.xml"), "transaction": "logo-3"}),
    )
    .await;
    assert_eq!(broken["status"], "error");
    assert!(
        broken["error"].as_str().unwrap().contains("not an image"),
        "{broken}"
    );

    // A pushed setting reaches every vendor's phone through re-provisioning.
    let pushed = [
        ("yealink", "phone_setting.backlight_time", "60"),
        ("grandstream", "P1362", "en"),
        ("snom", "language", "Deutsch"),
        ("fanvil", "phone.Backlight", "45"),
        ("htek", "P1362", "de"),
    ];
    for (vendor, key, value) in pushed {
        let mac = PHONES.iter().find(|(v, _)| *v == vendor).unwrap().1;
        let result = command(
            &mut probe,
            mac,
            "configure",
            json!({"settings": {key: value}, "transaction": format!("c-{vendor}")}),
        )
        .await;
        assert_eq!(result["status"], "ok", "{vendor}: {result}");
        let phone = &phones[vendor];
        phone_becomes(phone, vendor, |s| {
            s.settings.get(key).map(String::as_str) == Some(value)
        })
        .await;
        phone_becomes(phone, vendor, |s| {
            s.settings.values().any(|v| v.starts_with("200"))
        })
        .await;
    }
    // Keys cannot be added where the vendor has no URL key type: an error naming it.
    let refused = command(
        &mut probe,
        "000b82aa0002",
        "configure",
        json!({"keys": {"5": "Lights"}, "transaction": "c-keys"}),
    )
    .await;
    assert_eq!(refused["status"], "error");
    assert!(
        refused["error"].as_str().unwrap().contains("Grandstream"),
        "{refused}"
    );

    // Verify: Grandstream's configuration is read back from the phone itself.
    let verified = command(
        &mut probe,
        "000b82aa0002",
        "verify",
        json!({"transaction": "v-1"}),
    )
    .await;
    assert_eq!(verified["status"], "ok", "{verified}");
    assert_eq!(verified["data"]["method"], "read_back");
    assert_eq!(verified["data"]["in_sync"], true, "{verified}");
    // Others compare what they were served with what they would be served now.
    let verified = command(
        &mut probe,
        "001565aa0001",
        "verify",
        json!({"transaction": "v-2"}),
    )
    .await;
    assert_eq!(verified["data"]["method"], "served");
    assert_eq!(verified["data"]["in_sync"], true, "{verified}");

    // Nothing published shows a phone's token.
    let tokens: Vec<String> = ["001565aa0001", "000b82aa0002"]
        .iter()
        .map(|mac| gw.token(mac))
        .collect();
    for (topic, payload) in probe.drain() {
        for token in &tokens {
            assert!(!payload.contains(token.as_str()), "{topic} shows a token");
        }
    }
    power.cancel();
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drift_is_found_by_reading_the_phone_back() {
    let mut config = test_config();
    config.provisioning.keys.clear();
    let gw = start_gateway(config).await;
    let mut probe = MqttProbe::connect(gw.mqtt_port()).await;
    let power = tokio_util::sync::CancellationToken::new();
    let mac = "000b82aa0012";
    let phone = unconfigured_phone(&gw, "grandstream", mac, &power).await;
    let adopted = command(
        &mut probe,
        mac,
        "adopt",
        json!({"address": phone.addr().to_string(), "password": PASSWORD, "transaction": "a"}),
    )
    .await;
    assert_eq!(adopted["status"], "ok", "{adopted}");
    // Stored without re-provisioning: the phone does not have it yet.
    let stored = command(
        &mut probe,
        mac,
        "configure",
        json!({"settings": {"P1362": "fr"}, "apply": false, "transaction": "c"}),
    )
    .await;
    assert_eq!(stored["status"], "ok", "{stored}");
    let status = probe
        .expect(&format!("phone2mqtt/{mac}/provisioning"), |s| {
            s["in_sync"] == false
        })
        .await;
    assert!(status["drift"].is_array());
    let verified = command(&mut probe, mac, "verify", json!({"transaction": "v"})).await;
    assert_eq!(verified["data"]["in_sync"], false, "{verified}");
    let drift = verified["data"]["drift"].as_array().unwrap();
    assert_eq!(drift.len(), 1, "{verified}");
    assert_eq!(drift[0]["setting"], "P1362");
    assert_eq!(drift[0]["expected"], "fr");
    // Re-provisioned, it is in sync again.
    let provisioned = command(&mut probe, mac, "provision", json!({"transaction": "p"})).await;
    assert_eq!(provisioned["status"], "ok", "{provisioned}");
    phone_becomes(&phone, "P1362", |s| {
        s.settings.get("P1362").map(String::as_str) == Some("fr")
    })
    .await;
    let verified = command(&mut probe, mac, "verify", json!({"transaction": "v2"})).await;
    assert_eq!(verified["data"]["in_sync"], true, "{verified}");
    power.cancel();
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn yealink_boot_files_include_the_sites_file_and_the_agents() {
    let site = site_server().await;
    let mut config = test_config();
    config.provisioning = toml::from_str(&format!(
        "upstream = \"http://{site}/prov\"\nyealink_boot = true\nkeys = {{ 2 = \"Door\" }}\n"
    ))
    .unwrap();
    let gw = start_gateway(config).await;
    let power = tokio_util::sync::CancellationToken::new();
    let phone = unconfigured_phone(&gw, "yealink", "001565aa0001", &power).await;
    let snapshot = phone.snapshot();
    assert_eq!(
        snapshot.provisioning_files,
        vec![
            format!("http://{site}/prov/001565aa0001.cfg"),
            format!("{}/001565aa0001.cfg", gw.gateway.public_url),
        ]
    );
    assert_eq!(snapshot.settings["account.1.user_name"], "2001");
    assert_eq!(snapshot.settings["linekey.2.label"], "Door");
    assert!(snapshot.settings["action_url.incoming_call"].contains("/action/"));
    power.cancel();
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_pushed_to_a_group_and_the_site_reach_its_phones_and_survive_a_restart() {
    let gw = start_gateway(test_config()).await;
    let mut probe = MqttProbe::connect(gw.mqtt_port()).await;
    let power = tokio_util::sync::CancellationToken::new();
    let first = unconfigured_phone(&gw, "yealink", "001565aa0021", &power).await;
    let second = unconfigured_phone(&gw, "snom", "000413aa0022", &power).await;
    for (phone, mac) in [(&first, "001565aa0021"), (&second, "000413aa0022")] {
        let adopted = command(
            &mut probe,
            mac,
            "adopt",
            json!({"address": phone.addr().to_string(), "password": PASSWORD, "groups": ["front"], "transaction": format!("a-{mac}")}),
        )
        .await;
        assert_eq!(adopted["status"], "ok", "{adopted}");
    }
    // Settings for a mixed group need the vendor they are written for.
    probe
        .publish(
            "phone2mqtt/group/front/cmd/configure",
            &json!({"settings": {"phone_setting.backlight_time": "30"}, "transaction": "g-0"})
                .to_string(),
        )
        .await;
    let refused = probe
        .expect("phone2mqtt/group/front/result", |r| {
            r["transaction"] == "g-0"
        })
        .await;
    assert_eq!(refused["status"], "error");
    assert!(
        refused["error"].as_str().unwrap().contains("vendor"),
        "{refused}"
    );
    probe
        .publish(
            "phone2mqtt/group/front/cmd/configure",
            &json!({"vendor": "yealink", "settings": {"phone_setting.backlight_time": "30"}, "keys": {"4": "Front door"}, "transaction": "g-1"}).to_string(),
        )
        .await;
    let done = probe
        .expect("phone2mqtt/group/front/result", |r| {
            r["transaction"] == "g-1"
        })
        .await;
    assert_eq!(done["status"], "ok", "{done}");
    assert_eq!(done["data"]["phones"], 2);
    phone_becomes(&first, "the group's setting and key", |s| {
        s.settings
            .get("phone_setting.backlight_time")
            .map(String::as_str)
            == Some("30")
            && s.settings.get("linekey.4.label").map(String::as_str) == Some("Front door")
    })
    .await;
    // The Snom gets the group's key (its own numbering), not the Yealink setting.
    phone_becomes(&second, "the group's key", |s| {
        s.settings.get("fkey_label3").map(String::as_str) == Some("Front door")
    })
    .await;
    assert!(!second
        .snapshot()
        .settings
        .contains_key("phone_setting.backlight_time"));
    // The whole site, as group `all`; kept and shown retained on the bridge.
    probe
        .publish(
            "phone2mqtt/group/all/cmd/configure",
            &json!({"vendor": "snom", "settings": {"language": "Deutsch", "http_pass": "new-secret"}, "transaction": "s-1"}).to_string(),
        )
        .await;
    let site = probe
        .expect("phone2mqtt/bridge/test/provisioning", |p| {
            !p["site"].is_null() && p["site"]["settings"].is_object()
        })
        .await;
    assert_eq!(site["site"]["settings"]["snom"]["language"], "Deutsch");
    assert_eq!(
        site["site"]["settings"]["snom"]["http_pass"], "***",
        "secrets stay off MQTT"
    );
    assert_eq!(site["group"]["front"]["keys"]["4"], "Front door");
    phone_becomes(&second, "the site's setting", |s| {
        s.settings.get("language").map(String::as_str) == Some("Deutsch")
    })
    .await;
    // Kept across a restart, without anyone editing phone2mqtt.toml.
    let data = gw.stop_keeping_data().await;
    let text = std::fs::read_to_string(data.0.join("provisioning.toml")).unwrap();
    assert!(
        text.contains("Front door") && text.contains("Deutsch"),
        "{text}"
    );
    let gw = start_gateway_in(test_config(), data).await;
    let mut probe = MqttProbe::connect(gw.mqtt_port()).await;
    let site = probe
        .expect("phone2mqtt/bridge/test/provisioning", |p| {
            p["site"]["settings"].is_object()
        })
        .await;
    assert_eq!(site["group"]["front"]["keys"]["4"], "Front door");
    // What each phone was served is kept too, and published again: the embedded broker
    // started empty, and the phones fetched nothing since.
    for mac in ["001565aa0021", "000413aa0022"] {
        let status = probe
            .expect(&format!("phone2mqtt/{mac}/provisioning"), |p| {
                p["served_at"].is_string()
            })
            .await;
        assert_eq!(status["phone"], mac, "{status}");
    }
    power.cancel();
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_or_unreachable_site_server_is_answered_502_never_with_a_file_that_drops_its_accounts(
) {
    // The site's server: a broken Grandstream file; nothing for Yealink (404).
    let app = axum::Router::new().route(
        "/prov/cfg000b82aa0051.xml",
        axum::routing::get(|| async { "<gs_provision><config><P35>2001</config>" }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let site = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    let mut config = test_config();
    config.provisioning.upstream = Some(format!("http://{site}/prov/"));
    let gw = start_gateway(config).await;
    let http = reqwest::Client::new();
    let get = |file: &str| http.get(format!("{}/{file}", gw.http())).send();

    let broken = get("cfg000b82aa0051.xml").await.unwrap();
    assert_eq!(broken.status(), 502);
    let text = broken.text().await.unwrap();
    assert!(
        text.contains("cannot be merged") && text.contains("not well-formed"),
        "{text}"
    );
    // No site file for this phone: the agent's own is served.
    let own = get("001565aa0052.cfg").await.unwrap();
    assert_eq!(own.status(), 200);
    assert!(own
        .text()
        .await
        .unwrap()
        .contains("action_url.incoming_call"));

    // The site's server is down: 502 naming it; the phone keeps what it has.
    let mut config = test_config();
    config.provisioning.upstream = Some(format!("http://{}/prov/", free_port()));
    let down = start_gateway(config).await;
    let answer = reqwest::get(format!("{}/001565aa0052.cfg", down.http()))
        .await
        .unwrap();
    assert_eq!(answer.status(), 502);
    assert!(answer
        .text()
        .await
        .unwrap()
        .contains("provisioning server failed"));
    down.stop().await;
    gw.stop().await;
}

/// `phone2mqtt provision <vendor> --mac <MAC>` prints exactly the file the running agent serves
/// that phone, from the same config and data directory: same public URL, same token, same Action
/// URI allow-list host, and the same profile layers: the site's, the group's and the phone's keys
/// and settings from phone2mqtt.toml, a phone adopted at run time (`phones.toml`), and the layers
/// pushed at run time (`provisioning.toml`), logo included. A phone the config does not name gets
/// what the agent serves an unknown phone of that vendor. The public URL is an IPv6 address with a
/// trailing slash, the spelling where the CLI and the agent once built their provisioning context
/// differently.
#[tokio::test]
async fn provision_command_prints_what_the_agent_serves() {
    let dir = tempdir::TempDir::new();
    let data_dir = dir.0.join("data");
    let path = dir.0.join("phone2mqtt.toml");
    // The agent listens on loopback; phones are told the address they would reach it at.
    let public_port = free_port().port();
    std::fs::write(
        &path,
        format!(
            r#"[broker]
listen = "127.0.0.1:0"
[http]
listen = "127.0.0.1:0"
public_url = "http://[::1]:{public_port}/"
[agent]
name = "test"
data_dir = {data_dir:?}

[provisioning]
keys = {{ 3 = "Garage door" }}
[provisioning.settings.yealink]
"phone_setting.backlight_time" = 30
[provisioning.settings.snom]
language = "Deutsch"
[provisioning.group.front]
keys = {{ 4 = "Front door" }}
[provisioning.group.front.settings.yealink]
"phone_setting.backlight_time" = 45
[provisioning.group.front.settings.snom]
timezone = "GER+1"

[[phone]]
mac = "001565aa0061"
vendor = "yealink"
address = "127.0.0.1:9"
password = "x"
groups = ["front"]
keys = {{ 5 = "Lights" }}
settings = {{ "phone_setting.lock" = 1 }}

[[phone]]
mac = "000413aa0063"
vendor = "snom"
address = "127.0.0.1:9"
password = "x"
groups = ["Front"]
keys = {{ 3 = "", 6 = "Alarm" }}
settings = {{ "dnd_mode" = "off" }}
"#
        ),
    )
    .unwrap();
    std::fs::create_dir_all(&data_dir).unwrap();
    // Pushed at run time before (MQTT `configure` and `logo`): the site, the group, a phone.
    std::fs::write(
        data_dir.join("provisioning.toml"),
        r#"[site]
keys = { "7" = "Bell" }
[site.settings.snom]
"http_user" = "site-admin"
[group.front]
keys = { "8" = "Gate" }
[group.front.settings.yealink]
"phone_setting.backlight_time" = "60"
[phone.001565aa0061]
logo = "front-desk.png"
keys = { "9" = "Light 2" }
[phone.000413aa0063]
logo = "front-desk.png"
[phone.000413aa0066.settings.snom]
"language" = "English"
[phone.000413aa0067.settings.snom]
"timezone" = "GBR-0"
"#,
    )
    .unwrap();
    // Adopted at run time: a Snom in group front, not named in phone2mqtt.toml.
    std::fs::write(
        data_dir.join("phones.toml"),
        "[[phone]]\nmac = \"000413aa0067\"\nvendor = \"snom\"\naddress = \"127.0.0.1:9\"\nusername = \"admin\"\npassword = \"x\"\ngroups = [\"front\"]\n",
    )
    .unwrap();
    let config = phone2mqtt::config::Config::load(&path).unwrap();
    let gw = start_gateway_in(config, tempdir::TempDir(data_dir)).await;
    let files = [
        ("yealink", "001565aa0061", "001565aa0061.cfg"),
        ("grandstream", "000b82aa0062", "cfg000b82aa0062.xml"),
        ("snom", "000413aa0063", "000413AA0063.xml"),
        ("fanvil", "0c383eaa0064", "0c383eaa0064.cfg"),
        ("htek", "001fc1aa0065", "cfg001fc1aa0065.xml"),
        // Not in phone2mqtt.toml: unknown to the agent, one with a pushed layer of its own.
        ("yealink", "001565aa0068", "001565aa0068.cfg"),
        ("snom", "000413aa0066", "000413AA0066.xml"),
        // Adopted at run time.
        ("snom", "000413aa0067", "000413AA0067.xml"),
    ];
    let mut mismatches = Vec::new();
    let mut served_files = HashMap::new();
    for (vendor, mac, file) in files {
        let served = reqwest::get(format!("{}/{file}", gw.http())).await.unwrap();
        assert_eq!(served.status(), 200, "{vendor}: {file}");
        let served = served.text().await.unwrap();
        let printed = std::process::Command::new(env!("CARGO_BIN_EXE_phone2mqtt"))
            .args(["provision", vendor, "--mac", mac, "--config"])
            .arg(&path)
            .output()
            .unwrap();
        assert!(printed.status.success(), "{vendor}: {printed:?}");
        let printed = String::from_utf8(printed.stdout).unwrap();
        if printed != served {
            let only = |a: &str, b: &str| a.lines().filter(|l| !b.lines().any(|m| m == *l)).count();
            mismatches.push(format!(
                "{vendor} {mac}: printed {} lines, served {}; {} lines only printed, {} only served\n--- printed\n{printed}\n--- served\n{served}",
                printed.lines().count(),
                served.lines().count(),
                only(&printed, &served),
                only(&served, &printed),
            ));
        }
        served_files.insert(mac, served);
    }
    assert!(
        mismatches.is_empty(),
        "`provision` printed another file than the agent served:\n{}",
        mismatches.join("\n\n")
    );
    // The layers really are in the files compared above.
    let yealink = &served_files["001565aa0061"];
    for expected in [
        "Garage door",
        "Front door",
        "Lights",
        "Bell",
        "Gate",
        "Light 2",
        "phone_setting.backlight_time = 60",
        "phone_setting.lock = 1",
        "/logos/front-desk.png",
    ] {
        assert!(yealink.contains(expected), "{expected}: {yealink}");
    }
    let snom = &served_files["000413aa0067"];
    for expected in ["Deutsch", "GBR-0", "site-admin", "Front door", "Gate"] {
        assert!(snom.contains(expected), "{expected}: {snom}");
    }
    gw.stop().await;
}
