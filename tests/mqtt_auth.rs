//! Who gets into the embedded broker, through real sockets: anonymous clients only on a broker
//! that listens on loopback only, phone2mqtt's users and broker.toml's static users beyond it,
//! the gateway's own login always; `serve` refuses a broker beyond loopback with nobody to let
//! in, starts with broker.toml's static users; a phone's password never goes over MQTT in
//! clear beyond this machine.

mod common;

use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::Arc;

use common::mosquitto::{tool, Mosquitto};
use common::*;
use phone2mqtt::broker::{self, Access};
use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_phone2mqtt");

/// broker.toml as its comment says to enable static users.
fn broker_toml_with_static_users() -> String {
    let text = broker::DEFAULT_BROKER_TOML
        .replace(
            "    # [v4.1.connections.auth]\n",
            "    [v4.1.connections.auth]\n",
        )
        .replace(
            "    # homeassistant = \"a long password\"\n",
            "    homeassistant = \"a long password\"\n",
        );
    assert!(
        text.contains("\n    [v4.1.connections.auth]\n    homeassistant = \"a long password\"\n"),
        "broker.toml documents [v4.1.connections.auth] as the tests expect"
    );
    text
}

/// An authenticator that knows one operator.
fn operator() -> Access {
    let check: broker::Authenticator =
        Arc::new(|user, password| user == "ops" && password == "ops-pw");
    Access {
        authenticator: Some(check),
        has_users: true,
        allow_anonymous: None,
    }
}

/// The broker's address for a client on this machine.
fn local(started: &broker::Started) -> SocketAddr {
    broker::connect_addr(started.addr)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn beyond_loopback_only_logins_get_in() {
    let config = broker::load_config(None).unwrap();
    // Listening on every address: the rule is about where the broker listens, whatever
    // address a client comes from (here 127.0.0.1).
    let started = broker::start(config, Some("0.0.0.0:0".parse().unwrap()), operator()).unwrap();
    assert!(!started.anonymous);
    let addr = local(&started);
    assert!(!mqtt_login(addr, None).await, "anonymous refused");
    assert!(
        !mqtt_login(addr, Some(("ops", "wrong"))).await,
        "wrong password refused"
    );
    assert!(
        !mqtt_login(addr, Some(("nobody", "ops-pw"))).await,
        "unknown user refused"
    );
    assert!(
        mqtt_login(addr, Some(("ops", "ops-pw"))).await,
        "the authenticator's user"
    );
    let gateway = &started.credentials;
    assert!(
        mqtt_login(addr, Some((&gateway.username, gateway.password.expose()))).await,
        "the gateway's own login"
    );
    assert!(!mqtt_login(addr, Some((&gateway.username, "guess"))).await);

    // A real third-party client: mosquitto_pub with and without the login.
    let publish = |login: Option<(&str, &str)>| {
        let mut command = Command::new(tool("mosquitto_pub"));
        command.args(["-h", "127.0.0.1", "-p", &addr.port().to_string()]);
        command.args(["-t", "phone2mqtt/test", "-m", "x", "-q", "1"]);
        if let Some((user, password)) = login {
            command.args(["-u", user, "-P", password]);
        }
        command.stdout(Stdio::null()).stderr(Stdio::null()).status()
    };
    assert!(publish(Some(("ops", "ops-pw"))).await.unwrap().success());
    assert!(!publish(None).await.unwrap().success());
    assert!(!publish(Some(("ops", "nope"))).await.unwrap().success());

    // broker.toml's static users beyond loopback, next to the authenticator's.
    let dir = tempdir::TempDir::new();
    let path = dir.0.join("broker.toml");
    std::fs::write(&path, broker_toml_with_static_users()).unwrap();
    let config = broker::load_config(Some(&path)).unwrap();
    let started = broker::start(config, Some("0.0.0.0:0".parse().unwrap()), operator()).unwrap();
    let addr = local(&started);
    assert!(mqtt_login(addr, Some(("homeassistant", "a long password"))).await);
    assert!(!mqtt_login(addr, Some(("homeassistant", "a long passwor"))).await);
    assert!(mqtt_login(addr, Some(("ops", "ops-pw"))).await);
    assert!(!mqtt_login(addr, None).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_loopback_broker_lets_anonymous_clients_in_unless_told_not_to() {
    let loopback = Some("127.0.0.1:0".parse().unwrap());
    let started = broker::start(
        broker::load_config(None).unwrap(),
        loopback,
        Access::default(),
    )
    .unwrap();
    assert!(started.anonymous);
    assert!(
        mqtt_login(local(&started), None).await,
        "anonymous on loopback"
    );

    let closed = Access {
        allow_anonymous: Some(false),
        ..operator()
    };
    let started = broker::start(broker::load_config(None).unwrap(), loopback, closed).unwrap();
    assert!(!started.anonymous);
    let addr = local(&started);
    assert!(!mqtt_login(addr, None).await, "allow_anonymous = false");
    assert!(mqtt_login(addr, Some(("ops", "ops-pw"))).await);

    // Anonymous beyond loopback is refused even when asked for.
    let open = Access {
        allow_anonymous: Some(true),
        ..operator()
    };
    let err = broker::start(
        broker::load_config(None).unwrap(),
        Some("0.0.0.0:0".parse().unwrap()),
        open,
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("allow_anonymous"), "{err}");
}

/// Runs `phone2mqtt serve -c <config>` to its end; returns (success, stderr).
fn serve_once(config: &str) -> (bool, String) {
    let dir = tempdir::TempDir::new();
    let path = dir.0.join("phone2mqtt.toml");
    std::fs::write(
        &path,
        format!(
            "{config}\n[http]\nlisten = \"127.0.0.1:0\"\n[agent]\ndata_dir = \"{}\"\n",
            dir.0.join("data").display()
        ),
    )
    .unwrap();
    let output = std::process::Command::new(BIN)
        .args(["serve", "-c", path.to_str().unwrap()])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn serve_refuses_a_broker_beyond_loopback_with_nobody_to_let_in() {
    let port = free_port().port();
    let (ok, stderr) = serve_once(&format!("[broker]\nlisten = \"0.0.0.0:{port}\"\n"));
    assert!(!ok, "serve must not start: {stderr}");
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "one clear line: {stderr}");
    assert!(
        lines[0].contains(&format!(
            "0.0.0.0:{port}, beyond loopback, and has no MQTT user"
        )),
        "{stderr}"
    );

    let (ok, stderr) = serve_once(&format!(
        "[broker]\nlisten = \"0.0.0.0:{port}\"\nallow_anonymous = true\n"
    ));
    assert!(!ok, "serve must not start: {stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("[broker] allow_anonymous"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_starts_with_the_static_users_of_broker_toml() {
    let dir = tempdir::TempDir::new();
    let broker_toml = dir.0.join("broker.toml");
    std::fs::write(&broker_toml, broker_toml_with_static_users()).unwrap();
    let mqtt = free_port();
    let config = dir.0.join("phone2mqtt.toml");
    std::fs::write(
        &config,
        format!(
            "[broker]\nconfig = \"{}\"\nlisten = \"{mqtt}\"\n[http]\nlisten = \"127.0.0.1:0\"\n[agent]\nname = \"static\"\ndata_dir = \"{}\"\n",
            broker_toml.display(),
            dir.0.join("data").display()
        ),
    )
    .unwrap();
    let mut serve = Command::new(BIN)
        .args(["serve", "-c", config.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(serve.stdout.take().unwrap()).lines();
    let running = tokio::time::timeout(TIMEOUT, async {
        while let Ok(Some(line)) = stdout.next_line().await {
            if line.starts_with("phone2mqtt is running") {
                return true;
            }
        }
        false
    })
    .await;
    assert!(matches!(running, Ok(true)), "serve started");

    // The static user reads the agent's retained bridge state, which the agent (logged in
    // as the gateway) published; nobody gets in without a login.
    let sub = |login: Option<(&str, &str)>| {
        let mut command = Command::new(tool("mosquitto_sub"));
        command.args(["-h", "127.0.0.1", "-p", &mqtt.port().to_string()]);
        command.args(["-t", "phone2mqtt/bridge/static/state", "-C", "1", "-W", "5"]);
        if let Some((user, password)) = login {
            command.args(["-u", user, "-P", password]);
        }
        command.stderr(Stdio::null()).output()
    };
    let output = sub(Some(("homeassistant", "a long password")))
        .await
        .unwrap();
    assert!(output.status.success());
    assert_eq!(String::from_utf8_lossy(&output.stdout).trim(), "online");
    assert!(
        !sub(None).await.unwrap().status.success(),
        "anonymous refused"
    );

    // The terminal client with the same login.
    let output = Command::new(BIN)
        .args(["phones", "--mqtt", &format!("mqtt://{mqtt}")])
        .args(["--username", "homeassistant"])
        .env("PHONE2MQTT_PASSWORD", "a long password")
        .output()
        .await
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let output = Command::new(BIN)
        .args(["phones", "--mqtt", &format!("mqtt://{mqtt}")])
        .output()
        .await
        .unwrap();
    assert!(
        !output.status.success(),
        "the terminal client needs the login"
    );
    let _ = serve.kill().await;
}

/// A name of this machine that the agent cannot tell is loopback (only `localhost` and loopback
/// addresses are taken as such), although it resolves to loopback: the machine's host name, as
/// Debian's /etc/hosts maps it. The test's traffic stays on loopback.
fn opaque_loopback_name() -> Option<String> {
    use std::net::ToSocketAddrs;
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname").ok()?;
    let name = name.trim().to_string();
    let addrs: Vec<_> = (name.as_str(), 1883).to_socket_addrs().ok()?.collect();
    (!name.is_empty()
        && !name.eq_ignore_ascii_case("localhost")
        && !addrs.is_empty()
        && addrs.iter().all(|addr| addr.ip().is_loopback()))
    .then_some(name)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adopt_with_a_password_is_refused_over_a_clear_connection_beyond_loopback() {
    let dir = tempdir::TempDir::new();
    let port = free_port().port();
    let _mosquitto = Mosquitto::start(
        &dir.0,
        &format!("listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n"),
        &[port],
    )
    .await;
    let Some(host) = opaque_loopback_name() else {
        eprintln!("SKIPPED: this machine's host name does not resolve to loopback only; the test sends nothing beyond loopback");
        return;
    };
    let url = format!("mqtt://{host}:{port}");
    let mut config = test_config();
    config.mqtt.url = Some(url.clone());
    let gw = start_gateway(config).await;
    let mut probe = MqttProbe::connect(port).await;

    let phone = "001565000001";
    let refused = command(
        &mut probe,
        phone,
        "adopt",
        json!({"address": "10.0.0.5", "vendor": "yealink", "password": "hunter2-secret", "transaction": "a1"}),
    )
    .await;
    assert_eq!(refused["status"], "error", "{refused}");
    let error = refused["error"].as_str().unwrap();
    assert!(error.contains("not sent over MQTT in clear"), "{error}");
    assert!(!refused.to_string().contains("hunter2-secret"));
    // Without a password the clear connection is no reason to refuse; the site's credentials
    // still go only to the address the phone called from, which this one never did.
    let without = command(
        &mut probe,
        phone,
        "adopt",
        json!({"address": "10.0.0.5", "vendor": "yealink", "transaction": "a2"}),
    )
    .await;
    let error = without["error"].as_str().unwrap_or_default();
    assert!(
        !error.contains("not sent over MQTT in clear") && error.contains("`password` required"),
        "{without}"
    );

    // The terminal client refuses before anything is sent (and before reading the password).
    let mut cli = Command::new(BIN)
        .args(["adopt", "001565000002", "--password-stdin", "--mqtt", &url])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = cli.stdin.take().unwrap();
    let _ = stdin.write_all(b"hunter2-secret\n").await;
    drop(stdin);
    let output = cli.wait_with_output().await.unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("not sent over MQTT in clear"), "{stderr}");
    assert!(!stderr.contains("hunter2-secret"));
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(
        !probe
            .drain()
            .iter()
            .any(|(topic, _)| topic.contains("001565000002")),
        "nothing was published for the second phone"
    );
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_embedded_broker_serves_the_gateway_and_its_users() {
    const MAC: &str = "00:15:65:4a:a9:50";
    const ID: &str = "0015654aa950";
    let addr = free_port();
    let data_dir = tempdir::TempDir::new();
    let mut config = test_config();
    config.broker.allow_anonymous = Some(false);
    config.agent.data_dir = data_dir.0.clone();
    config
        .phones
        .push(phone_entry("yealink", MAC, addr, "Reception"));
    // phone2mqtt's own user file, as `phone2mqtt user add` writes it: the gateway lets its
    // operators and admins into the embedded broker, never its viewers.
    let users = phone2mqtt::auth::store::Store::new(&data_dir.0);
    users
        .add_user("ops", phone2mqtt::auth::Role::Operator, "ops-password")
        .unwrap();
    users
        .add_user("looker", phone2mqtt::auth::Role::Viewer, "looker-password")
        .unwrap();
    let gw = start_gateway_in(config, data_dir).await;
    assert!(gw.gateway.agent.mqtt().wait_connected(TIMEOUT).await);
    let broker_addr: SocketAddr = format!("127.0.0.1:{}", gw.mqtt_port()).parse().unwrap();
    assert!(!mqtt_login(broker_addr, None).await, "anonymous refused");
    assert!(
        !mqtt_login(broker_addr, Some(("looker", "looker-password"))).await,
        "a viewer is refused: the embedded broker could not keep it read-only"
    );
    assert!(!mqtt_login(broker_addr, Some(("ops", "wrong-password"))).await);
    let phone = start_phone(&gw, "yealink", MAC, addr).await;
    // The agent published with its own login; the user reads it and commands the phone.
    let mut probe = MqttProbe::connect_as(
        gw.mqtt_port(),
        "phone2mqtt/#",
        Some(("ops", "ops-password")),
    )
    .await;
    probe
        .expect(&format!("phone2mqtt/{ID}/availability"), |v| v == "online")
        .await;
    let result = command(&mut probe, ID, "hangup", json!({"transaction": "c1"})).await;
    assert_eq!(result["status"], "ok", "{result}");
    phone_got(&phone, "GET /servlet?key=CALLEND").await;
    // The gateway's login is not the `[mqtt]` one, and not written anywhere.
    let login = gw
        .gateway
        .broker_login
        .clone()
        .expect("the embedded broker's login");
    let kept = std::fs::read_dir(&gw.data_dir.0)
        .unwrap()
        .flatten()
        .filter_map(|entry| std::fs::read_to_string(entry.path()).ok())
        .any(|text| text.contains(login.password.expose()));
    assert!(!kept, "the gateway's login stays in memory");
    gw.stop().await;
}
