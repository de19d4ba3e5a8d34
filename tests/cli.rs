//! The real binary, as users run it: config errors, `provision`, and `serve` with secrets that
//! must never reach its logs.

mod common;

use std::collections::BTreeSet;
use std::process::Stdio;

use common::*;

const BIN: &str = env!("CARGO_BIN_EXE_phone2mqtt");

#[test]
fn a_bad_config_names_the_file_and_key_and_exits_non_zero() {
    let dir = tempdir::TempDir::new();
    let cases = [
        ("[http]\nlisen = \"127.0.0.1:8080\"\n", "http.lisen"),
        ("[[phone]]\nmac = \"00:15:65:zz:00:01\"\nvendor = \"yealink\"\naddress = \"10.0.0.5\"\n", "phone[0].mac"),
        ("[[phone]]\nmac = \"001565000001\"\nvendor = \"nokia\"\naddress = \"10.0.0.5\"\n", "phone[0].vendor"),
        ("[mqtt]\nurl = \"http://broker\"\n", "mqtt.url"),
        ("[agent]\ncommand_timeout = -1\n", "agent.command_timeout"),
        ("[http\n", "http (line 1)"),
    ];
    for (text, key) in cases {
        let path = dir.0.join("phone2mqtt.toml");
        std::fs::write(&path, text).unwrap();
        let output = std::process::Command::new(BIN)
            .args(["serve", "-c", path.to_str().unwrap()])
            .output()
            .unwrap();
        assert!(!output.status.success(), "{text} should be refused");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains(&format!("{}: {key}", path.display())),
            "{text}: the message should name the file and `{key}`: {stderr}"
        );
    }
    let broker = dir.0.join("broker.toml");
    std::fs::write(&broker, "id = 0\n[router]\nmax_connections = 10\nmax_outgoing_packet_count = 200\nmax_segment_size = 1000\nmax_segment_count = 1\nmax_segmnet_size = 3\n[v4.1]\nname = \"v4\"\nlisten = \"127.0.0.1:0\"\nnext_connection_delay_ms = 1\n[v4.1.connections]\nconnection_timeout_ms = 1000\nmax_payload_size = 1000\nmax_inflight_count = 10\ndynamic_filters = true\n").unwrap();
    let path = dir.0.join("phone2mqtt.toml");
    std::fs::write(
        &path,
        format!(
            "[broker]\nconfig = \"{}\"\n[http]\nlisten = \"127.0.0.1:0\"\n",
            broker.display()
        ),
    )
    .unwrap();
    let output = std::process::Command::new(BIN)
        .args(["serve", "-c", path.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("router.max_segmnet_size"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_receiver_accepts_exactly_what_provision_prints() {
    let gw = start_gateway(test_config()).await;
    let dir = tempdir::TempDir::new();
    let path = gw.cli_config(&dir);
    // Without a MAC: no Action URLs, and the installer is told why and what to do.
    let output = std::process::Command::new(BIN)
        .args(["provision", "yealink", "-c", path.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(output.status.success());
    let generic = String::from_utf8(output.stdout).unwrap();
    assert!(generic.starts_with("#!version:1.0.0.1\n"), "{generic}");
    assert!(!generic.contains("/action/"), "{generic}");
    let note = String::from_utf8(output.stderr).unwrap();
    assert!(note.contains("--mac"), "{note}");
    // With it: that phone's Action URLs, with its token.
    let output = std::process::Command::new(BIN)
        .args([
            "provision",
            "yealink",
            "--mac",
            "00:15:65:4a:a9:37",
            "-c",
            path.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(output.status.success());
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(text.contains(&format!("/action/{}/", gw.token("0015654aa937"))));
    assert!(text.starts_with("#!version:1.0.0.1\n"), "{text}");
    assert!(text.contains("features.show_action_uri_option = 0\n"));
    assert!(text.contains("features.action_uri_limit_ip = 127.0.0.1\n"));

    let mut probe = MqttProbe::connect_filter(gw.mqtt_port(), "phone2mqtt/+/event").await;
    let mut expected = BTreeSet::new();
    let mut published = BTreeSet::new();
    let values: std::collections::HashMap<&'static str, String> = [
        ("mac", "00:15:65:4a:a9:37".to_string()),
        ("ip", "10.0.0.5".to_string()),
        ("model", "SIP-T46G".to_string()),
        ("firmware", "28.72.0.1".to_string()),
        ("active_user", "1001".to_string()),
        ("active_host", "pbx.example.com".to_string()),
        ("local", "sip:1001@pbx.example.com".to_string()),
        ("remote", "sip:+4930123456@pbx.example.com".to_string()),
        ("display_local", "Front Desk".to_string()),
        ("display_remote", "Anna Schmidt".to_string()),
    ]
    .into_iter()
    .collect();
    for line in text.lines().filter(|l| l.starts_with("action_url.")) {
        let (key, url) = line.split_once(" = ").unwrap();
        let wire = key.trim_start_matches("action_url.");
        let spec = phone2mqtt::phone_vendors::yealink::SPEC
            .event(wire)
            .expect("a known event");
        expected.insert(spec.event.name());
        // `$call_id` stays unfilled, as phones leave it when there is no call.
        let url = phone2mqtt::sim::substitute(url, &values);
        let status =
            phone2mqtt::sim::send_raw_get(&url, "Yealink SIP-T46G 28.72.0.1 00:15:65:4a:a9:37")
                .await
                .unwrap();
        assert_eq!(status, 200, "{url}");
        let (_, event) = probe.next_on(|t| t.ends_with("/event")).await;
        assert_eq!(event["event"], spec.event.name(), "{wire}");
        published.insert(event["event"].as_str().unwrap().to_string());
    }
    assert_eq!(
        text.matches("action_url.").count(),
        46,
        "every Yealink event is provisioned"
    );
    assert_eq!(published.len(), expected.len());
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_never_logs_passwords_or_tokens() {
    let dir = tempdir::TempDir::new();
    let http = free_port();
    let mqtt = free_port();
    let phone_addr = free_port();
    let wrong_addr = free_port();
    let config = dir.0.join("phone2mqtt.toml");
    std::fs::write(
        &config,
        format!(
            "[broker]\nlisten = \"{mqtt}\"\n[http]\nlisten = \"{http}\"\naction_token = \"{TOKEN}\"\n[agent]\nname = \"cli\"\ndata_dir = \"{}\"\n\
             [[phone]]\nmac = \"00:15:65:4a:a9:37\"\nvendor = \"yealink\"\naddress = \"{phone_addr}\"\npassword = \"{PASSWORD}\"\n\
             [[phone]]\nmac = \"00:15:65:4a:a9:38\"\nvendor = \"yealink\"\naddress = \"{wrong_addr}\"\npassword = \"wrong-{PASSWORD}\"\n",
            dir.0.display()
        ),
    )
    .unwrap();
    let mut child = tokio::process::Command::new(BIN)
        .args(["serve", "-c", config.to_str().unwrap(), "--poll", "1"])
        .env("RUST_LOG", "debug")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    // Read the logs while serve runs: at debug level they outgrow a pipe's buffer, and a
    // full pipe would block serve's logging threads.
    let stdout = collect(child.stdout.take().unwrap());
    let stderr = collect(child.stderr.take().unwrap());
    wait_listening(http, "serve").await;
    let stop = tokio_util::sync::CancellationToken::new();
    let personality = phone2mqtt::sim::personality("yealink").unwrap();
    for (mac, addr) in [
        ("00:15:65:4a:a9:37", phone_addr),
        ("00:15:65:4a:a9:38", wrong_addr),
    ] {
        let mut options = phone2mqtt::sim::SimOptions::new(
            personality,
            phone2mqtt::model::PhoneId::parse(mac).unwrap(),
            &format!("http://{http}"),
        );
        options.listen = addr;
        options.password = PASSWORD.into();
        let phone = phone2mqtt::sim::SimPhone::spawn(options, stop.clone())
            .await
            .unwrap();
        assert!(phone.wait_booted(TIMEOUT).await);
    }
    let mut probe = MqttProbe::connect(mqtt.port()).await;
    probe
        .publish("phone2mqtt/0015654aa937/cmd/dial", "1001")
        .await;
    probe
        .expect("phone2mqtt/0015654aa937/result", |_| true)
        .await;
    probe
        .publish("phone2mqtt/0015654aa938/cmd/dial", "1001")
        .await;
    let result = probe
        .expect("phone2mqtt/0015654aa938/result", |_| true)
        .await;
    assert!(result["error"].as_str().unwrap().contains("401"));
    let wrong = raw_http(
        http,
        b"GET /action/guessed-token-00000000/yealink/dnd_on?mac=001565000001 HTTP/1.1\r\n\r\n",
    )
    .await;
    assert_eq!(status_of(&wrong), 403);

    // SIGTERM: a clean stop, with the bridge marked offline.
    terminate(&mut child).await;
    stop.cancel();
    let logs = format!("{}{}", stdout.await.unwrap(), stderr.await.unwrap());
    assert!(
        logs.contains("Phone event."),
        "the logs are there at all: {logs}"
    );
    assert!(!logs.contains(PASSWORD), "a password reached the logs");
    assert!(!logs.contains(TOKEN), "the legacy token reached the logs");
    // Nor the key the phones' tokens come from, nor any phone's token.
    let key = std::fs::read_to_string(dir.0.join("phone_key")).unwrap();
    assert!(!logs.contains(key.trim()), "the phone key reached the logs");
    let keys = phone2mqtt::phone_auth::PhoneKeys::load(&dir.0).unwrap();
    let tokens: Vec<String> = ["0015654aa937", "0015654aa938"]
        .iter()
        .map(|mac| keys.token(&phone2mqtt::model::PhoneId::parse(mac).unwrap()))
        .collect();
    for token in &tokens {
        assert!(
            !logs.contains(token.as_str()),
            "a phone's token reached the logs"
        );
    }
    assert!(
        !logs.contains("guessed-token"),
        "even a wrong token stays out of the logs"
    );
    let seen = probe.drain();
    for (topic, payload) in seen {
        assert!(
            !payload.contains(PASSWORD) && !payload.contains(TOKEN),
            "secret on {topic}"
        );
        for token in &tokens {
            assert!(!payload.contains(token.as_str()), "a token on {topic}");
        }
    }
}

/// Reads a child's output to the end on its own task.
fn collect(
    mut pipe: impl tokio::io::AsyncRead + Unpin + Send + 'static,
) -> tokio::task::JoinHandle<String> {
    tokio::spawn(async move {
        use tokio::io::AsyncReadExt;
        let mut bytes = Vec::new();
        pipe.read_to_end(&mut bytes).await.unwrap();
        String::from_utf8_lossy(&bytes).into_owned()
    })
}
