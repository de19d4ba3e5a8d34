//! `mqtts://` to a broker with a private CA (`[mqtt] ca_file`, `--ca-file`): a real Mosquitto
//! TLS listener with a CA and server certificate made by the test; the agent works through it,
//! a wrong CA is refused with an error that says so.

mod common;

use std::process::Stdio;

use common::mosquitto::Mosquitto;
use common::*;
use serde_json::json;
use tokio::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_phone2mqtt");
const MAC: &str = "00:15:65:4a:a9:40";
const ID: &str = "0015654aa940";

/// Mosquitto with a plain listener (for the test's probe) and a TLS one (for phone2mqtt).
async fn tls_mosquitto(dir: &std::path::Path, certs: &std::path::Path) -> (Mosquitto, u16, u16) {
    let plain = free_port().port();
    let tls = free_port().port();
    let text = format!(
        "per_listener_settings false\nallow_anonymous true\npersistence false\n\
         listener {plain} 127.0.0.1\n\
         listener {tls} 127.0.0.1\ncertfile {}\nkeyfile {}\n",
        certs.join("server.pem").display(),
        certs.join("server.key").display()
    );
    (
        Mosquitto::start(dir, &text, &[plain, tls]).await,
        plain,
        tls,
    )
}

async fn phones_cli(url: &str, ca_file: Option<&std::path::Path>) -> std::process::Output {
    let mut command = Command::new(BIN);
    command.args(["phones", "--mqtt", url]);
    if let Some(ca_file) = ca_file {
        command.args(["--ca-file", ca_file.to_str().unwrap()]);
    }
    command.stdin(Stdio::null()).output().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agent_reaches_a_broker_with_a_private_ca_over_mqtts() {
    let dir = tempdir::TempDir::new();
    let site = private_ca(&dir.0, "site");
    let other = private_ca(&dir.0, "other");
    let (_mosquitto, plain, tls) = tls_mosquitto(&dir.0, &site).await;
    let url = format!("mqtts://localhost:{tls}");

    let addr = free_port();
    let mut config = test_config();
    config.mqtt.url = Some(url.clone());
    config.mqtt.ca_file = Some(site.join("ca.pem"));
    config
        .phones
        .push(phone_entry("yealink", MAC, addr, "Reception"));
    let gw = start_gateway(config).await;
    let phone = start_phone(&gw, "yealink", MAC, addr).await;
    let mut probe = MqttProbe::connect(plain).await;
    probe
        .expect(&format!("phone2mqtt/{ID}/availability"), |v| v == "online")
        .await;
    let result = command(&mut probe, ID, "hangup", json!({"transaction": "t1"})).await;
    assert_eq!(result["status"], "ok", "{result}");
    phone_got(&phone, "GET /servlet?key=CALLEND").await;
    // Over TLS a phone's password may travel.
    let adopted = command(
        &mut probe,
        "001565000009",
        "adopt",
        json!({"address": "10.0.0.9", "vendor": "yealink", "password": "pw-over-tls", "transaction": "a1"}),
    )
    .await;
    assert_eq!(adopted["status"], "ok", "{adopted}");

    // The terminal client, with the CA and with the wrong one.
    let output = phones_cli(&url, Some(&site.join("ca.pem"))).await;
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(String::from_utf8_lossy(&output.stdout).contains("Reception"));
    for ca in [Some(other.join("ca.pem")), None] {
        let output = phones_cli(&url, ca.as_deref()).await;
        assert!(!output.status.success());
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains("certificate") && stderr.contains("--ca-file"),
            "{stderr}"
        );
    }
    gw.stop().await;

    // An agent given the wrong CA does not connect, and says why.
    let mut config = test_config();
    config.mqtt.url = Some(url.clone());
    config.mqtt.ca_file = Some(other.join("ca.pem"));
    let gw = start_gateway(config).await;
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    let error = loop {
        if let Some(error) = gw.gateway.agent.mqtt().last_error() {
            break error;
        }
        assert!(tokio::time::Instant::now() < deadline, "no TLS error seen");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert!(
        error.contains("certificate") || error.contains("UnknownIssuer"),
        "{error}"
    );
    assert!(
        !gw.gateway
            .agent
            .mqtt()
            .wait_connected(std::time::Duration::from_millis(500))
            .await
    );
    gw.stop().await;
}

#[test]
fn a_ca_file_that_is_missing_or_not_for_tls_stops_the_agent() {
    let dir = tempdir::TempDir::new();
    let path = dir.0.join("phone2mqtt.toml");
    let cases = [
        (
            "mqtts://localhost:8883",
            "/nonexistent/ca.pem",
            "mqtt.ca_file: cannot read /nonexistent/ca.pem",
        ),
        (
            "mqtt://localhost:1883",
            "/nonexistent/ca.pem",
            "mqtt.ca_file: only for a TLS broker",
        ),
    ];
    for (url, ca, expected) in cases {
        std::fs::write(
            &path,
            format!(
                "[mqtt]\nurl = \"{url}\"\nca_file = \"{ca}\"\n[http]\nlisten = \"127.0.0.1:0\"\n[agent]\ndata_dir = \"{}\"\n",
                dir.0.join("data").display()
            ),
        )
        .unwrap();
        let output = std::process::Command::new(BIN)
            .args(["agent", "-c", path.to_str().unwrap()])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(!output.status.success());
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(expected), "{stderr}");
    }
}
