//! The terminal client, as users run it: the real binary's `phones`, `send` and `watch` against a
//! gateway on port 0 with simulated phones.

mod common;

use std::net::SocketAddr;
use std::process::{Output, Stdio};
use std::time::Duration;

use common::*;
use phone2mqtt::model::PhoneId;
use phone2mqtt::sim::SimPhone;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStderr, ChildStdout};

const BIN: &str = env!("CARGO_BIN_EXE_phone2mqtt");

const RECEPTION: &str = "00:15:65:4a:a9:37";
const LOBBY: &str = "00:15:65:4a:a9:38";
const OFFICE: &str = "00:15:65:4a:a9:39";
const BASEMENT: &str = "00:15:65:4a:a9:3a";

/// A gateway whose configured phones are `phones` (MAC, name, groups); each one in `simulated`
/// gets a simulated phone, the others an address where nothing listens.
async fn fleet(
    phones: &[(&str, &str, &[&str])],
    simulated: &[&str],
) -> (TestGateway, Vec<SimPhone>) {
    let mut config = test_config();
    let mut addresses: Vec<(&str, SocketAddr)> = Vec::new();
    for (mac, name, groups) in phones {
        let addr = free_port();
        let mut entry = phone_entry("yealink", mac, addr, name);
        entry.groups = groups.iter().map(|g| g.to_string()).collect();
        config.phones.push(entry);
        addresses.push((mac, addr));
    }
    let gw = start_gateway(config).await;
    let mut sims = Vec::new();
    for (mac, addr) in addresses {
        if simulated.contains(&mac) {
            sims.push(start_phone(&gw, "yealink", mac, addr).await);
        }
    }
    // Every configured phone's info is retained before the client looks.
    let mut probe = MqttProbe::connect_filter(gw.mqtt_port(), "phone2mqtt/+/info").await;
    let mut missing: Vec<String> = phones
        .iter()
        .map(|(mac, _, _)| format!("phone2mqtt/{}/info", PhoneId::parse(mac).unwrap()))
        .collect();
    while !missing.is_empty() {
        let (topic, _) = probe.next_on(|topic| topic.ends_with("/info")).await;
        missing.retain(|wanted| *wanted != topic);
    }
    (gw, sims)
}

fn mqtt_url(gw: &TestGateway) -> String {
    format!("mqtt://127.0.0.1:{}", gw.mqtt_port())
}

/// Runs the binary to its end (bounded), with `--mqtt` pointing at the gateway's broker.
async fn client(gw: &TestGateway, args: &[&str]) -> Output {
    run(&[args, &["--mqtt", &mqtt_url(gw)]].concat()).await
}

async fn run(args: &[&str]) -> Output {
    let child = tokio::process::Command::new(BIN)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("`phone2mqtt {}` did not end in time", args.join(" ")))
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

async fn wait_for(what: &str, check: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    while !check() {
        assert!(tokio::time::Instant::now() < deadline, "{what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn phones_lists_the_configured_phones_as_json_and_as_a_table() {
    let (gw, _sims) = fleet(
        &[
            (RECEPTION, "Reception", &["front"]),
            (LOBBY, "Lobby", &["front"]),
        ],
        &[RECEPTION, LOBBY],
    )
    .await;
    let output = client(&gw, &["phones", "--json"]).await;
    assert!(output.status.success(), "{}", text(&output.stderr));
    let phones: Value = serde_json::from_slice(&output.stdout).expect("phones --json is JSON");
    let phones = phones.as_array().expect("an array");
    assert_eq!(phones.len(), 2, "{phones:#?}");
    // Sorted by name.
    assert_eq!(phones[0]["id"], "0015654aa938");
    assert_eq!(phones[0]["info"]["name"], "Lobby");
    assert_eq!(phones[1]["id"], "0015654aa937");
    let reception = &phones[1];
    assert_eq!(reception["info"]["name"], "Reception");
    assert_eq!(reception["info"]["vendor"], "yealink");
    assert_eq!(reception["info"]["configured"], true);
    assert_eq!(reception["info"]["groups"], serde_json::json!(["front"]));
    assert_eq!(reception["availability"], "online");
    assert_eq!(reception["state"]["dnd"], false);
    assert!(reception["state"]["call_state"].is_string());

    let output = client(&gw, &["phones"]).await;
    assert!(output.status.success(), "{}", text(&output.stderr));
    let table = text(&output.stdout);
    for expected in [
        "Name",
        "Reception",
        "Lobby",
        "0015654aa937",
        "Yealink",
        "online",
    ] {
        assert!(table.contains(expected), "`{expected}` missing:\n{table}");
    }
    assert!(
        table.find("Lobby").unwrap() < table.find("Reception").unwrap(),
        "sorted by name:\n{table}"
    );
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_to_one_phone_by_name_sets_dnd_and_prints_its_result() {
    let (gw, sims) = fleet(&[(RECEPTION, "Reception", &[])], &[RECEPTION]).await;
    assert!(!sims[0].snapshot().dnd);
    let output = client(&gw, &["send", "Reception", "dnd", "on"]).await;
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert_eq!(
        text(&output.stdout).trim(),
        "Reception (0015654aa937): dnd ok"
    );
    assert!(sims[0].snapshot().dnd, "the phone's DND is on");

    // By MAC in another form, with the whole payload as JSON.
    let output = client(
        &gw,
        &[
            "send",
            "00-15-65-4A-A9-37",
            "dnd",
            "--json",
            r#"{"state": "off"}"#,
        ],
    )
    .await;
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(!sims[0].snapshot().dnd, "the phone's DND is off again");
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_to_all_reports_every_phone_ok() {
    let phones: &[(&str, &str, &[&str])] = &[
        (RECEPTION, "Reception", &["front"]),
        (LOBBY, "Lobby", &["front"]),
        (OFFICE, "Office", &[]),
    ];
    let (gw, sims) = fleet(phones, &[RECEPTION, LOBBY, OFFICE]).await;
    let output = client(&gw, &["send", "all", "dnd", "on"]).await;
    assert!(output.status.success(), "{}", text(&output.stderr));
    let stdout = text(&output.stdout);
    assert!(
        stdout.contains("dnd to 3 phones: 3 ok, 0 failed"),
        "{stdout}"
    );
    for sim in &sims {
        assert!(sim.snapshot().dnd, "{} has DND on", sim.mac());
    }

    // A group reaches its members only.
    let output = client(&gw, &["send", "FRONT", "dnd", "off"]).await;
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(
        text(&output.stdout).contains("dnd to 2 phones: 2 ok, 0 failed"),
        "{}",
        text(&output.stdout)
    );
    wait_for("the group's phones turned DND off", || {
        !sims[0].snapshot().dnd && !sims[1].snapshot().dnd
    })
    .await;
    assert!(sims[2].snapshot().dnd, "Office is not in the group");
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_or_silent_phone_makes_send_fail_with_a_summary() {
    // Basement's address has nothing listening: the agent answers with an error result.
    let (gw, sims) = fleet(
        &[(RECEPTION, "Reception", &[]), (BASEMENT, "Basement", &[])],
        &[RECEPTION],
    )
    .await;
    let output = client(&gw, &["send", "all", "dnd", "on"]).await;
    assert!(!output.status.success(), "a failure exits non-zero");
    let stdout = text(&output.stdout);
    assert!(
        stdout.contains("dnd to 2 phones: 1 ok, 1 failed"),
        "{stdout}"
    );
    assert!(
        stdout.contains("failed  Basement (0015654aa93a): phone unreachable"),
        "the failure names the phone and the error: {stdout}"
    );
    assert!(
        text(&output.stderr).contains("failed on 1 of 2 phones"),
        "{}",
        text(&output.stderr)
    );
    assert!(sims[0].snapshot().dnd, "the reachable phone did it");

    // A single phone: its result line, and a non-zero exit.
    let output = client(&gw, &["send", "basement", "reboot"]).await;
    assert!(!output.status.success());
    assert!(
        text(&output.stdout)
            .starts_with("Basement (0015654aa93a): reboot failed: phone unreachable"),
        "{}",
        text(&output.stdout)
    );
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_phone_without_a_result_in_time_counts_as_failed() {
    // A port that accepts connections and never answers: the agent waits for its 3 s
    // command timeout, the client gives up after 1 s.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mut config = test_config();
    config.phones.push(phone_entry(
        "yealink",
        BASEMENT,
        silent.local_addr().unwrap(),
        "Basement",
    ));
    let gw = start_gateway(config).await;
    let mut probe = MqttProbe::connect_filter(gw.mqtt_port(), "phone2mqtt/+/info").await;
    probe.expect("phone2mqtt/0015654aa93a/info", |_| true).await;
    let started = std::time::Instant::now();
    let output = client(&gw, &["send", "Basement", "dnd", "on", "--timeout", "1"]).await;
    assert!(!output.status.success());
    assert!(
        text(&output.stdout).contains("Basement (0015654aa93a): dnd failed: no result within 1 s"),
        "{}",
        text(&output.stdout)
    );
    assert!(started.elapsed() < Duration::from_secs(8), "bounded wait");
    drop(silent);
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_targets_bad_values_and_a_dead_broker_are_clear_errors() {
    let (gw, _sims) = fleet(&[(RECEPTION, "Reception", &["front"])], &[RECEPTION]).await;
    let output = client(&gw, &["send", "Kitchen", "dnd", "on"]).await;
    assert!(!output.status.success());
    let stderr = text(&output.stderr);
    assert!(stderr.contains("unknown target `Kitchen`"), "{stderr}");
    assert!(
        stderr.contains("Reception (0015654aa937)") && stderr.contains("front"),
        "the message lists what exists: {stderr}"
    );

    // Checked before anything is sent.
    let output = client(&gw, &["send", "Reception", "dnd", "maybe"]).await;
    assert!(!output.status.success());
    assert!(
        text(&output.stderr).contains("`maybe` is not `on` or `off`"),
        "{}",
        text(&output.stderr)
    );
    let output = client(&gw, &["send", "Reception", "explode"]).await;
    assert!(!output.status.success());
    assert!(text(&output.stderr).contains("unknown command `explode`"));

    // Nothing listens there: an error within the connect timeout, not a hang.
    let dead = format!("mqtt://{}", free_port());
    let started = std::time::Instant::now();
    let output = run(&["phones", "--mqtt", &dead]).await;
    assert!(!output.status.success());
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("cannot connect to the MQTT broker"),
        "{stderr}"
    );
    assert!(started.elapsed() < Duration::from_secs(15));
    gw.stop().await;
}

/// A running `watch`, read line by line.
struct Watcher {
    child: Child,
    stdout: Lines<BufReader<ChildStdout>>,
}

impl Watcher {
    /// Starts `watch` and waits until it says it is watching (the subscription is live then).
    async fn start(gw: &TestGateway, args: &[&str]) -> Watcher {
        let mut child = tokio::process::Command::new(BIN)
            .args(args)
            .args(["--mqtt", &mqtt_url(gw)])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut stderr: Lines<BufReader<ChildStderr>> =
            BufReader::new(child.stderr.take().unwrap()).lines();
        loop {
            let line = tokio::time::timeout(TIMEOUT, stderr.next_line())
                .await
                .expect("watch says it is watching")
                .unwrap()
                .expect("watch is still running");
            if line.starts_with("Watching") {
                break;
            }
        }
        let stdout = BufReader::new(child.stdout.take().unwrap()).lines();
        Watcher { child, stdout }
    }

    async fn next_line(&mut self) -> String {
        tokio::time::timeout(TIMEOUT, self.stdout.next_line())
            .await
            .expect("a line from watch in time")
            .unwrap()
            .expect("watch is still running")
    }

    async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_prints_events_as_json_and_as_readable_lines() {
    let (gw, sims) = fleet(
        &[(RECEPTION, "Reception", &[]), (LOBBY, "Lobby", &[])],
        &[RECEPTION, LOBBY],
    )
    .await;
    let mut json = Watcher::start(&gw, &["watch", "--json"]).await;
    let mut readable =
        Watcher::start(&gw, &["watch", "reception", "--event", "incoming_call"]).await;

    // Lobby rings first: the JSON watcher sees it, the filtered one must not.
    sims[1].ring("+4930999999", None).unwrap();
    loop {
        let event: Value = serde_json::from_str(&json.next_line().await).expect("JSON lines");
        if event["event"] == "incoming_call" {
            assert_eq!(event["phone"], "0015654aa938");
            break;
        }
    }
    sims[0].ring("+4930123456", Some("Anna Schmidt")).unwrap();
    loop {
        let event: Value = serde_json::from_str(&json.next_line().await).expect("JSON lines");
        if event["event"] == "incoming_call" {
            assert_eq!(event["phone"], "0015654aa937");
            assert_eq!(event["remote"], "+4930123456");
            assert_eq!(event["remote_name"], "Anna Schmidt");
            break;
        }
    }
    let line = readable.next_line().await;
    assert!(
        line.ends_with("  Reception (0015654aa937)  incoming_call  +4930123456  \"Anna Schmidt\""),
        "{line}"
    );
    json.stop().await;
    readable.stop().await;
    gw.stop().await;
}
