//! What the gateway accepted is kept until done, through the real binary: a reminder due while
//! its phone is off is shown when the phone is back (across a SIGKILL too); discovered and
//! adopted phones and reminders that were acknowledged survive a SIGKILL right after; a damaged
//! data file stops the start with one line naming it.

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use common::*;
use phone2mqtt::model::PhoneId;
use phone2mqtt::sim::{self, SimOptions, SimPhone};
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

/// The binary under test; `PHONE2MQTT_BIN` runs these tests on another build (an earlier
/// release, to compare).
fn bin() -> String {
    std::env::var("PHONE2MQTT_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_phone2mqtt").into())
}
/// A reminder's retries start 5 s apart and double: a phone back within a few seconds of its
/// first failed delivery shows it within this bound.
const RETRY_BOUND: Duration = Duration::from_secs(60);

/// A `phone2mqtt serve` process on ports of its own, over a data directory that outlives it.
struct Served {
    child: tokio::process::Child,
    http: SocketAddr,
    mqtt: SocketAddr,
}

impl Served {
    fn url(&self) -> String {
        format!("http://{}", self.http)
    }

    /// A probe on `phone2mqtt/#` once the agent is on the broker (and subscribed to its
    /// commands).
    async fn probe(&self) -> MqttProbe {
        let mut probe = MqttProbe::connect(self.mqtt.port()).await;
        probe
            .expect("phone2mqtt/bridge/dur/state", |s| s == "online")
            .await;
        probe
    }

    /// SIGKILL: no flush, no goodbye.
    async fn kill(mut self) {
        self.child.kill().await.unwrap();
    }
}

/// The config of a gateway over `data`, with `extra` appended (`[[phone]]` entries...).
fn write_config(
    dir: &Path,
    data: &Path,
    http: SocketAddr,
    mqtt: SocketAddr,
    extra: &str,
) -> PathBuf {
    let path = dir.join("phone2mqtt.toml");
    std::fs::write(
        &path,
        format!(
            "[broker]\nlisten = \"{mqtt}\"\n[http]\nlisten = \"{http}\"\npublic_url = \"http://{http}\"\n\
             [agent]\nname = \"dur\"\ndata_dir = \"{}\"\ncommand_timeout = 2\n{extra}",
            data.display()
        ),
    )
    .unwrap();
    path
}

/// Starts `phone2mqtt serve` (no polling) and waits until its HTTP and MQTT ports listen.
async fn serve(dir: &Path, data: &Path, extra: &str) -> Served {
    serve_polling(dir, data, extra, 0).await
}

/// The same, polling the phones every `poll` seconds (0: never).
async fn serve_polling(dir: &Path, data: &Path, extra: &str, poll: u32) -> Served {
    let (http, mqtt) = (free_port(), free_port());
    let config = write_config(dir, data, http, mqtt, extra);
    let child = tokio::process::Command::new(bin())
        .args(["serve", "-c", config.to_str().unwrap()])
        .args(["--poll", &poll.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    wait_listening(http, "serve (HTTP)").await;
    wait_listening(mqtt, "serve (MQTT)").await;
    Served { child, http, mqtt }
}

/// A simulated phone of `vendor` on `listen`, pointed at `agent`, running until `power` is
/// cancelled, booted.
async fn phone(
    agent: &str,
    vendor: &str,
    mac: &str,
    listen: SocketAddr,
    power: &CancellationToken,
) -> SimPhone {
    let mut options = SimOptions::new(
        sim::personality(vendor).unwrap(),
        PhoneId::parse(mac).unwrap(),
        agent,
    );
    options.listen = listen;
    options.password = PASSWORD.into();
    options.remote_answers_after = None;
    let phone = SimPhone::spawn(options, power.clone()).await.unwrap();
    assert!(phone.wait_booted(TIMEOUT).await, "{mac} booted");
    phone
}

/// The retained reminders list once `check` holds for it (the probe's bounded wait).
async fn reminders_where(probe: &mut MqttProbe, check: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    probe
        .expect("phone2mqtt/bridge/dur/reminders", |l| {
            l.as_array().is_some_and(|a| check(a))
        })
        .await
        .as_array()
        .unwrap()
        .clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reminder_due_while_its_phone_is_off_is_shown_when_the_phone_is_back() {
    let dir = tempdir::TempDir::new();
    let data = dir.0.join("data");
    let mac = "001565000d01";
    let phone_addr = free_port();
    let entry = entry("yealink", mac, phone_addr, "Desk");
    let gw = serve(&dir.0, &data, &entry).await;
    let mut probe = gw.probe().await;
    probe
        .publish(
            "phone2mqtt/Desk/cmd/message",
            r#"{"text": "Call Anna back", "in": "1s", "transaction": "r-off"}"#,
        )
        .await;
    let scheduled = probe
        .expect("phone2mqtt/Desk/result", |r| r["transaction"] == "r-off")
        .await;
    assert_eq!(scheduled["status"], "ok", "{scheduled}");
    // Due with the phone off: still listed, with the failed attempt counted.
    let listed = reminders_where(&mut probe, |l| {
        l.len() == 1 && l[0]["attempts"].as_u64().is_some_and(|a| a >= 1)
    })
    .await;
    assert!(listed[0]["next_try"].is_string(), "{listed:?}");
    // Still on disk, with its attempts (written within a second of each).
    let file = data.join("reminders.json");
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    loop {
        let kept = std::fs::read_to_string(&file).unwrap();
        if kept.contains("Call Anna back") && kept.contains("\"attempts\": ") {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the attempts never reached the file: {kept}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The gateway dies and comes back: the reminder and its schedule are still there.
    gw.kill().await;
    let gw = serve(&dir.0, &data, &entry).await;
    let mut probe = gw.probe().await;
    let listed = reminders_where(&mut probe, |l| l.len() == 1).await;
    assert!(listed[0]["attempts"].as_u64().unwrap() >= 1, "{listed:?}");

    // The phone comes back: it shows the message, and the result says so, once.
    let power = CancellationToken::new();
    let desk = phone(&gw.url(), "yealink", mac, phone_addr, &power).await;
    let deadline = tokio::time::Instant::now() + RETRY_BOUND;
    while desk.snapshot().last_message.as_deref() != Some("Call Anna back") {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the phone never showed the reminder: {:#?}",
            desk.snapshot()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let shown = probe
        .expect("phone2mqtt/Desk/result", |r| r["transaction"] == "r-off")
        .await;
    assert_eq!(shown["status"], "ok", "{shown}");
    reminders_where(&mut probe, |l| l.is_empty()).await;
    // Off the disk too, within a second.
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    while std::fs::read_to_string(data.join("reminders.json"))
        .unwrap()
        .contains("Call Anna back")
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the shown reminder stays on disk"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    power.cancel();
    gw.kill().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reminder_never_delivered_expires_with_a_result() {
    let dir = tempdir::TempDir::new();
    let data = dir.0.join("data");
    // Nothing listens there.
    let entry = format!(
        "reminder_expiry = 3\n{}",
        entry("yealink", "001565000d02", free_port(), "Gone")
    );
    let gw = serve(&dir.0, &data, &entry).await;
    let mut probe = gw.probe().await;
    probe
        .publish(
            "phone2mqtt/Gone/cmd/message",
            r#"{"text": "Nobody home", "in": "1s", "transaction": "r-gone"}"#,
        )
        .await;
    let scheduled = probe
        .expect("phone2mqtt/Gone/result", |r| r["transaction"] == "r-gone")
        .await;
    assert_eq!(scheduled["status"], "ok");
    let expired = probe
        .expect("phone2mqtt/Gone/result", |r| {
            r["transaction"] == "r-gone" && r["status"] == "error"
        })
        .await;
    let error = expired["error"].as_str().unwrap();
    assert!(error.contains("expired"), "{expired}");
    assert!(
        expired["data"]["attempts"].as_u64().unwrap() >= 1,
        "{expired}"
    );
    reminders_where(&mut probe, |l| l.is_empty()).await;
    gw.kill().await;
}

/// A `[[phone]]` entry for the test's password.
fn entry(vendor: &str, mac: &str, addr: SocketAddr, name: &str) -> String {
    format!(
        "[[phone]]\nmac = \"{mac}\"\nvendor = \"{vendor}\"\naddress = \"{addr}\"\nusername = \"admin\"\npassword = \"{PASSWORD}\"\nname = \"{name}\"\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_restart_every_configured_phone_has_its_availability_at_once() {
    let dir = tempdir::TempDir::new();
    let data = dir.0.join("data");
    // A phone that can be polled (Yealink), one that cannot (Snom: no `refresh`), one that is off.
    let (yealink, snom, off) = (free_port(), free_port(), free_port());
    let phones = [
        entry("yealink", "001565000a11", yealink, "Poll"),
        entry("snom", "000413000a12", snom, "NoPoll"),
        entry("yealink", "001565000a13", off, "Off"),
    ]
    .concat();
    let gw = serve(&dir.0, &data, &phones).await;
    let power = CancellationToken::new();
    let _poll = phone(&gw.url(), "yealink", "001565000a11", yealink, &power).await;
    let _no_poll = phone(&gw.url(), "snom", "000413000a12", snom, &power).await;
    gw.kill().await;

    // The phones stay quiet (nothing to tell): only the gateway can find out, by itself.
    let gw = serve_polling(&dir.0, &data, &phones, 3600).await;
    let mut probe = gw.probe().await;
    for (id, wanted) in [
        ("001565000a11", "online"),
        ("000413000a12", "online"),
        ("001565000a13", "offline"),
    ] {
        let seen = probe
            .expect(&format!("phone2mqtt/{id}/availability"), |_| true)
            .await;
        assert_eq!(seen, wanted, "{id}");
    }
    power.cancel();
    gw.kill().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_reminder_reaches_each_phone_on_its_own() {
    let dir = tempdir::TempDir::new();
    let data = dir.0.join("data");
    let (on, off) = (free_port(), free_port());
    let phones = [
        entry("yealink", "001565000b21", on, "On"),
        "groups = [\"front\"]\n".into(),
        entry("yealink", "001565000b22", off, "Later"),
        "groups = [\"front\"]\n".into(),
    ]
    .concat();
    let gw = serve(&dir.0, &data, &phones).await;
    let power = CancellationToken::new();
    let first = phone(&gw.url(), "yealink", "001565000b21", on, &power).await;
    let mut probe = gw.probe().await;
    probe
        .publish(
            "phone2mqtt/group/front/cmd/message",
            r#"{"text": "Fire drill at 3", "in": "1s", "transaction": "g-1"}"#,
        )
        .await;
    // The phone that is on shows it at once; the other one keeps it pending.
    let shown = probe
        .expect("phone2mqtt/001565000b21/result", |r| {
            r["transaction"] == "g-1" && r["data"].is_null()
        })
        .await;
    assert_eq!(shown["status"], "ok", "{shown}");
    assert_eq!(
        first.snapshot().last_message.as_deref(),
        Some("Fire drill at 3")
    );
    let listed = reminders_where(&mut probe, |l| {
        l.len() == 1 && l[0]["pending"] == 1 && l[0]["attempts"].as_u64() >= Some(1)
    })
    .await;
    assert_eq!(listed[0]["target"], "group:front");
    let second = phone(&gw.url(), "yealink", "001565000b22", off, &power).await;
    let deadline = tokio::time::Instant::now() + RETRY_BOUND;
    while second.snapshot().last_message.as_deref() != Some("Fire drill at 3") {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the second phone never showed the reminder"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let shown = probe
        .expect("phone2mqtt/001565000b22/result", |r| {
            r["transaction"] == "g-1"
        })
        .await;
    assert_eq!(shown["status"], "ok", "{shown}");
    reminders_where(&mut probe, |l| l.is_empty()).await;
    // The first phone was not shown it twice.
    assert_eq!(
        first
            .snapshot()
            .requests
            .iter()
            .filter(|r| r.as_str() == "POST /servlet?push=xml")
            .count(),
        1
    );
    power.cancel();
    gw.kill().await;
}

/// A phone's callback, as the phone sends it with its own token.
async fn callback(http: SocketAddr, token: &str, mac: &str) -> u16 {
    let request = format!(
        "GET /action/{token}/yealink/dnd_on?mac={mac} HTTP/1.1\r\nHost: x\r\nUser-Agent: Yealink SIP-T46G 28.72.0.1 {mac}\r\nConnection: close\r\n\r\n"
    );
    status_of(&raw_http(http, request.as_bytes()).await)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_was_acknowledged_survives_a_sigkill_right_after() {
    const EACH: usize = 8;
    let dir = tempdir::TempDir::new();
    let data = dir.0.join("data");
    std::fs::create_dir_all(&data).unwrap();
    // The phones' tokens come from the key in the data directory, made here first.
    let keys = phone2mqtt::phone_auth::PhoneKeys::load(&data).unwrap();
    let gw = serve(&dir.0, &data, "").await;
    let mut probe = gw.probe().await;
    let discovered: Vec<String> = (0..EACH).map(|i| format!("0015650e{i:04x}")).collect();
    let adopted: Vec<String> = (0..EACH).map(|i| format!("0015650f{i:04x}")).collect();
    for (i, mac) in adopted.iter().enumerate() {
        let adopt = json!({"vendor": "yealink", "address": format!("127.0.0.1:{}", 20000 + i),
                           "password": PASSWORD, "transaction": format!("a-{i}")});
        probe
            .publish(&format!("phone2mqtt/{mac}/cmd/adopt"), &adopt.to_string())
            .await;
        probe
            .publish(
                &format!("phone2mqtt/{mac}/cmd/message"),
                &json!({"text": format!("later {i}"), "in": "1h", "transaction": format!("r-{i}")})
                    .to_string(),
            )
            .await;
    }
    let mut reminders = Vec::new();
    for i in 0..EACH {
        let mac = &adopted[i];
        let adopted = probe
            .expect(&format!("phone2mqtt/{mac}/result"), |r| {
                r["transaction"] == format!("a-{i}")
            })
            .await;
        assert_eq!(adopted["status"], "ok", "{adopted}");
        let scheduled = probe
            .expect(&format!("phone2mqtt/{mac}/result"), |r| {
                r["transaction"] == format!("r-{i}")
            })
            .await;
        assert_eq!(scheduled["status"], "ok", "{scheduled}");
        reminders.push(scheduled["data"]["reminder"].as_str().unwrap().to_string());
    }
    // New phones call in last: once the last is answered, the gateway dies at once.
    for mac in &discovered {
        let id = PhoneId::parse(mac).unwrap();
        assert_eq!(callback(gw.http, &keys.token(&id), mac).await, 200);
    }
    gw.kill().await;

    let gw = serve(&dir.0, &data, "").await;
    let mut probe = gw.probe().await;
    let mut kept_discovered = 0;
    let mut kept_adopted = 0;
    // Every known phone's info is retained at start; a phone forgotten has none.
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    let mut infos = std::collections::HashMap::new();
    while infos.len() < 2 * EACH && tokio::time::Instant::now() < deadline {
        if let Ok((topic, info)) = tokio::time::timeout(
            Duration::from_millis(500),
            probe.next_on(|t| t.ends_with("/info")),
        )
        .await
        {
            infos.insert(topic, info);
        }
    }
    for mac in &discovered {
        if infos
            .get(&format!("phone2mqtt/{mac}/info"))
            .is_some_and(|i| i["configured"] == false)
        {
            kept_discovered += 1;
        }
    }
    for mac in &adopted {
        if infos
            .get(&format!("phone2mqtt/{mac}/info"))
            .is_some_and(|i| i["configured"] == true)
        {
            kept_adopted += 1;
        }
    }
    let listed = reminders_where(&mut probe, |_| true).await;
    let kept_reminders = reminders
        .iter()
        .filter(|id| listed.iter().any(|r| r["id"] == id.as_str()))
        .count();
    assert_eq!(
        (kept_discovered, kept_adopted, kept_reminders),
        (EACH, EACH, EACH),
        "discovered, adopted and reminders kept after SIGKILL, of {EACH} each"
    );
    gw.kill().await;
}

/// Runs `serve` to its end over `data`; its exit status and stderr.
async fn start_fails(dir: &Path, data: &Path) -> (bool, String) {
    let config = write_config(dir, data, free_port(), free_port(), "");
    let output = tokio::time::timeout(
        TIMEOUT,
        tokio::process::Command::new(bin())
            .args(["serve", "-c", config.to_str().unwrap(), "--poll", "0"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("serve stops by itself on a damaged file")
    .unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_data_file_stops_the_start_with_one_line_naming_it() {
    for file in [
        "identities.json",
        "phones.toml",
        "reminders.json",
        "provisioning.toml",
    ] {
        let dir = tempdir::TempDir::new();
        let data = dir.0.join("data");
        std::fs::create_dir_all(&data).unwrap();
        // Half a file, as a crash on a file system without ordering could leave.
        std::fs::write(data.join(file), "{\"00156500").unwrap();
        let (ok, stderr) = start_fails(&dir.0, &data).await;
        assert!(
            !ok,
            "{file}: serve started on a damaged file; stderr: {stderr}"
        );
        // The log's lines come first; the last line says why, naming the file, and only it.
        let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
        let naming = lines.iter().filter(|l| l.contains(file)).count();
        assert_eq!(naming, 1, "{file}: one line names the file: {stderr}");
        let last = lines.last().copied().unwrap_or_default();
        assert!(
            last.starts_with("phone2mqtt: ")
                && last.contains(&data.join(file).display().to_string()),
            "{file}: the last line gives the file's path: {stderr}"
        );
        // Nothing was emptied or replaced.
        assert_eq!(
            std::fs::read_to_string(data.join(file)).unwrap(),
            "{\"00156500"
        );
    }
}
