//! Phones authenticate: each phone's Action URL token is its own, the installation-wide token of
//! earlier versions only lasts its grace period, provisioning answers only `[provisioning]
//! allow` and, when set, the provisioning credentials, and the site's upstream server must
//! show a certificate that verifies. All through real sockets.

mod common;

use std::process::Stdio;
use std::sync::Arc;

use base64::Engine;
use common::*;
use phone2mqtt::config::Secret;
use phone2mqtt::model::PhoneId;
use phone2mqtt::sim::{self, SimOptions, SimPhone};

const BIN: &str = env!("CARGO_BIN_EXE_phone2mqtt");
const A: &str = "001565000a01";
const B: &str = "001565000b02";
const UA_A: &str = "Yealink SIP-T46G 28.72.0.1 00:15:65:00:0a:01";

fn get(path: &str, headers: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: x\r\n{headers}Connection: close\r\n\r\n").into_bytes()
}

/// Phone `mac`'s `dnd_on` Action URL with `token`, sent raw; the status of the answer.
async fn dnd_on(addr: std::net::SocketAddr, token: &str, mac: &str) -> u16 {
    let answer = raw_http(
        addr,
        &get(&format!("/action/{token}/yealink/dnd_on?mac={mac}"), ""),
    )
    .await;
    status_of(&answer)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_phones_token_is_refused_for_another_mac() {
    let gw = start_gateway(test_config()).await;
    let addr = gw.gateway.http_addr;
    let mut probe = MqttProbe::connect_filter(gw.mqtt_port(), "phone2mqtt/+/event").await;
    let (token_a, token_b) = (gw.token(A), gw.token(B));
    assert_ne!(token_a, token_b);

    // A's token with B's MAC, in the variables or only in the User-Agent: refused.
    for request in [
        get(&format!("/action/{token_a}/yealink/dnd_on?mac={B}"), ""),
        get(
            &format!("/action/{token_a}/yealink/dnd_on?mac=$mac"),
            "User-Agent: Yealink SIP-T46G 28.72.0.1 00:15:65:00:0b:02\r\n",
        ),
        // A key press names its phone in `mac`.
        get(&format!("/action/{token_a}/yealink/key?mac={B}&key=3"), ""),
    ] {
        let answer = raw_http(addr, &request).await;
        assert_eq!(status_of(&answer), 403, "{answer}");
        assert!(!answer.contains(&token_a), "the answer shows no token");
    }
    // Each phone's own token works, for its events and its keys.
    assert_eq!(dnd_on(addr, &token_b, B).await, 200);
    let (topic, event) = probe.next_on(|t| t.ends_with("/event")).await;
    assert_eq!(
        topic,
        format!("phone2mqtt/{B}/event"),
        "the first event is B's own"
    );
    assert_eq!(event["event"], "dnd_on");
    let answer = raw_http(
        addr,
        &get(&format!("/action/{token_a}/yealink/key?mac={A}&key=3"), ""),
    )
    .await;
    assert_eq!(status_of(&answer), 200, "{answer}");
    let (topic, event) = probe.next_on(|t| t.ends_with("/event")).await;
    assert_eq!(topic, format!("phone2mqtt/{A}/event"));
    assert_eq!(event["event"], "key");
    gw.stop().await;
}

/// The legacy token through the real binary: accepted within its grace period with one log line
/// per phone (not per callback), never logged itself; refused once the period is over.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_legacy_token_lasts_its_grace_period_with_one_line_per_phone() {
    let dir = tempdir::TempDir::new();
    let data = dir.0.join("data");
    std::fs::create_dir_all(&data).unwrap();
    // What an earlier version left in the data directory.
    std::fs::write(data.join("action_token"), format!("{TOKEN}\n")).unwrap();
    let (http, mqtt) = (free_port(), free_port());
    let config = dir.0.join("phone2mqtt.toml");
    std::fs::write(
        &config,
        format!(
            "[broker]\nlisten = \"{mqtt}\"\n[http]\nlisten = \"{http}\"\n[agent]\nname = \"legacy\"\ndata_dir = \"{}\"\n",
            data.display()
        ),
    )
    .unwrap();
    let mut child = tokio::process::Command::new(BIN)
        .args(["serve", "-c", config.to_str().unwrap(), "--poll", "0"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let logs = tokio::spawn(async move {
        use tokio::io::AsyncReadExt;
        let mut text = String::new();
        let mut stderr = stderr;
        let _ = stderr.read_to_string(&mut text).await;
        text
    });
    wait_listening(http, "serve").await;
    for (mac, times) in [(A, 3), (B, 1)] {
        for _ in 0..times {
            assert_eq!(dnd_on(http, TOKEN, mac).await, 200);
        }
    }
    assert!(data.join("legacy_token_since").exists());
    let pid = child.id().unwrap().to_string();
    std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    tokio::time::timeout(TIMEOUT, child.wait())
        .await
        .expect("serve stops")
        .unwrap();
    let logs = logs.await.unwrap();
    let line = "still sends the installation-wide Action URL token";
    assert_eq!(
        logs.lines()
            .filter(|l| l.contains(line) && l.contains(A))
            .count(),
        1,
        "one line for A, however many callbacks: {logs}"
    );
    assert_eq!(
        logs.lines()
            .filter(|l| l.contains(line) && l.contains(B))
            .count(),
        1,
        "{logs}"
    );
    assert!(!logs.contains(TOKEN), "the legacy token reached the logs");

    // The grace period over (here: ended early with 0 days), the legacy token is refused.
    let mut config = test_config();
    config.http.action_token = Some(Secret::new(TOKEN));
    config.http.action_token_grace_days = 0;
    let gw = start_gateway(config).await;
    let answer = raw_http(
        gw.gateway.http_addr,
        &get(&format!("/action/{TOKEN}/yealink/dnd_on?mac={A}"), ""),
    )
    .await;
    assert_eq!(status_of(&answer), 403, "{answer}");
    assert!(answer.contains("provision this phone again"), "{answer}");
    // The phone's own token still works.
    assert_eq!(dnd_on(gw.gateway.http_addr, &gw.token(A), A).await, 200);
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provisioning_outside_allow_is_refused_and_counted() {
    // Loopback is all a test can use: leave it out of `allow`.
    let mut config = test_config();
    config.provisioning.allow = Some(vec!["10.0.0.0/8".parse().unwrap()]);
    let gw = start_gateway(config).await;
    let mut probe = MqttProbe::connect(gw.mqtt_port()).await;
    let addr = gw.gateway.http_addr;
    for file in [
        format!("{A}.cfg"),
        "y000000000028.cfg".into(),
        "logos/x.png".into(),
    ] {
        let answer = raw_http(
            addr,
            &get(&format!("/{file}"), &format!("User-Agent: {UA_A}\r\n")),
        )
        .await;
        assert_eq!(status_of(&answer), 403, "{file}: {answer}");
        assert!(!answer.contains("/action/"), "{answer}");
    }
    assert_eq!(gw.gateway.agent.refused_outside_allow(), 3);
    // No provisioning status for the refused phone; its Action URLs still work (their token is
    // theirs, wherever they come from).
    assert_eq!(dnd_on(addr, &gw.token(A), A).await, 200);
    let (_, event) = probe.next_on(|t| t.ends_with("/event")).await;
    assert_eq!(event["event"], "dnd_on");
    let seen = probe.drain();
    assert!(
        !seen
            .iter()
            .any(|(topic, _)| topic == &format!("phone2mqtt/{A}/provisioning")),
        "no provisioning status for a refused request: {seen:?}"
    );
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generic_files_carry_no_token_and_mac_files_their_phones() {
    let gw = start_gateway(test_config()).await;
    let addr = gw.gateway.http_addr;
    for (file, ua) in [
        ("y000000000028.cfg", UA_A),
        ("cfg.xml", "Grandstream Model HW GXP1628 SW 1.0.4.138 DevId c074ad2bd859"),
        ("snomD785.htm", "Mozilla/4.0 (compatible; snomD785-SIP 10.1.33.33 2010.12-00004-g9ba52f5 000413922D24 SXM:0 UXM:0)"),
    ] {
        let answer = raw_http(addr, &get(&format!("/{file}"), &format!("User-Agent: {ua}\r\n"))).await;
        assert_eq!(status_of(&answer), 200, "{file}: {answer}");
        assert!(!answer.contains("/action/"), "{file} has an Action URL: {answer}");
    }
    for (file, mac) in [
        (format!("{A}.cfg"), A),
        ("cfgc074ad2bd859.xml".to_string(), "c074ad2bd859"),
        ("000413922D24.xml".to_string(), "000413922d24"),
    ] {
        let answer = raw_http(addr, &get(&format!("/{file}"), "")).await;
        assert_eq!(status_of(&answer), 200, "{file}: {answer}");
        assert!(
            answer.contains(&format!("/action/{}/", gw.token(mac))),
            "{file} carries its phone's token"
        );
    }
    gw.stop().await;
}

fn with_credentials() -> phone2mqtt::config::Config {
    let mut config = test_config();
    config.provisioning.auth_username = Some("prov".into());
    config.provisioning.auth_password = Some(Secret::new("prov-s3cret"));
    config
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provisioning_credentials_basic_and_digest() {
    let gw = start_gateway(with_credentials()).await;
    let addr = gw.gateway.http_addr;
    let path = format!("/{A}.cfg");
    let basic = |user: &str, password: &str| {
        format!(
            "Authorization: Basic {}\r\n",
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
        )
    };

    // No credentials: 401 with a Digest and a Basic challenge.
    let answer = raw_http(addr, &get(&path, "")).await;
    assert_eq!(status_of(&answer), 401, "{answer}");
    let lower = answer.to_ascii_lowercase();
    assert!(
        lower.contains("www-authenticate: digest realm="),
        "{answer}"
    );
    assert!(lower.contains("www-authenticate: basic realm="), "{answer}");
    assert!(!answer.contains("/action/"));
    // Wrong ones: 401.
    let answer = raw_http(addr, &get(&path, &basic("prov", "wrong"))).await;
    assert_eq!(status_of(&answer), 401, "{answer}");
    // Basic.
    let answer = raw_http(addr, &get(&path, &basic("prov", "prov-s3cret"))).await;
    assert_eq!(status_of(&answer), 200, "{answer}");
    assert!(answer.contains(&gw.token(A)));
    // Digest, answering the challenge; a wrong password in Digest is 401 too.
    let challenge = reqwest::get(format!("{}{path}", gw.http()))
        .await
        .unwrap()
        .headers()
        .get_all("www-authenticate")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .find(|v| v.starts_with("Digest"))
        .unwrap();
    for (password, status) in [("wrong", 401), ("prov-s3cret", 200)] {
        let mut prompt = digest_auth::parse(&challenge).unwrap();
        let answer_header = prompt
            .respond(&digest_auth::AuthContext::new(
                "prov",
                password,
                path.as_str(),
            ))
            .unwrap()
            .to_string();
        let answer = raw_http(
            addr,
            &get(&path, &format!("Authorization: {answer_header}\r\n")),
        )
        .await;
        assert_eq!(status_of(&answer), status, "{password}: {answer}");
    }
    // Action URLs need no provisioning credentials: their token is theirs.
    assert_eq!(dnd_on(addr, &gw.token(A), A).await, 200);
    gw.stop().await;
}

/// Every vendor's simulated phone, given the credentials in its agent URL as an installer gives
/// them to a phone, answers the challenge, reads its own file and calls in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulated_phones_with_credentials_provision_and_call_in() {
    let gw = start_gateway(with_credentials()).await;
    let mut probe = MqttProbe::connect_filter(gw.mqtt_port(), "phone2mqtt/+/event").await;
    let agent = format!("http://prov:prov-s3cret@{}", gw.gateway.http_addr);
    for (index, personality) in sim::PERSONALITIES.iter().enumerate() {
        let mac =
            PhoneId::parse(&format!("{}5e00{index:02x}", personality.vendor.ouis[0])).unwrap();
        let mut options = SimOptions::new(personality, mac.clone(), &agent);
        options.password = PASSWORD.into();
        let phone = SimPhone::spawn(options, gw.stop.clone()).await.unwrap();
        assert!(
            phone.wait_booted(TIMEOUT).await,
            "{} booted",
            personality.vendor.id
        );
        let snapshot = phone.snapshot();
        assert!(
            snapshot.provisioned,
            "{} read its file",
            personality.vendor.id
        );
        assert!(
            snapshot.fired.iter().all(|(_, status)| *status == 200),
            "{}: {:?}",
            personality.vendor.id,
            snapshot.fired
        );
        probe
            .expect(&format!("phone2mqtt/{mac}/event"), |_| true)
            .await;
    }
    // Without the credentials, a phone gets nothing and sends nothing.
    let personality = sim::personality("yealink").unwrap();
    let mac = PhoneId::parse("0015655e00ff").unwrap();
    let phone = SimPhone::spawn(
        SimOptions::new(personality, mac, &gw.gateway.public_url),
        gw.stop.clone(),
    )
    .await
    .unwrap();
    phone_becomes(&phone, "booted without provisioning", |s| s.registered).await;
    assert!(!phone.snapshot().provisioned);
    assert!(phone.snapshot().fired.is_empty());
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_adopt_takes_only_phones_inside_allow() {
    let mut config = test_config();
    config.provisioning.auto_adopt = true;
    config.provisioning.username = Some("admin".into());
    config.provisioning.password = Some(Secret::new(PASSWORD));
    config.provisioning.allow = Some(vec!["10.0.0.0/8".parse().unwrap()]);
    let gw = start_gateway(config).await;
    let mut probe = MqttProbe::connect(gw.mqtt_port()).await;
    let addr = gw.gateway.http_addr;
    // A phone calling in from loopback, outside `allow`: discovered, not adopted.
    let answer = raw_http(
        addr,
        &get(
            &format!("/action/{}/yealink/setup_completed?mac={A}", gw.token(A)),
            &format!("User-Agent: {UA_A}\r\n"),
        ),
    )
    .await;
    assert_eq!(status_of(&answer), 200, "{answer}");
    probe
        .expect("phone2mqtt/bridge/test/event", |e| {
            e["event"] == "phone_discovered" && e["phone"] == A
        })
        .await;
    // An adoption would have been published before the callback was answered: a later event
    // marks the point by which it would have shown.
    assert_eq!(dnd_on(addr, &gw.token(A), A).await, 200);
    probe.event(A, "dnd_on").await;
    let seen = probe.drain();
    assert!(
        !seen
            .iter()
            .any(|(topic, _)| topic == &format!("phone2mqtt/{A}/result")),
        "not adopted: {seen:?}"
    );
    // Kept as discovered (at once), with no `[[phone]]` entry (its header names them).
    let kept = std::fs::read_to_string(gw.data_dir.0.join("phones.toml")).unwrap_or_default();
    assert!(kept.lines().any(|l| l == "[[discovered]]"), "{kept}");
    assert!(!kept.lines().any(|l| l == "[[phone]]"), "{kept}");
    gw.stop().await;
}

/// A TLS server with a self-signed certificate, as a site's provisioning server might have:
/// the agent must not hand such a server's file (SIP passwords) to phones.
async fn self_signed_https() -> std::net::SocketAddr {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs = vec![CertificateDer::from_pem_file("tests/data/self-signed.crt").unwrap()];
    let key = PrivateKeyDer::from_pem_file("tests/data/self-signed.key").unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                use tokio::io::AsyncWriteExt;
                if let Ok(mut tls) = acceptor.accept(stream).await {
                    let body = "#!version:1.0.0.1\naccount.1.password = sip-secret\n";
                    let _ = tls
                        .write_all(
                            format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len())
                                .as_bytes(),
                        )
                        .await;
                    let _ = tls.shutdown().await;
                }
            });
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_with_a_self_signed_certificate_is_refused() {
    let upstream = self_signed_https().await;
    let mut config = test_config();
    config.provisioning.upstream = Some(format!("https://prov-user:prov-pw@{upstream}/prov/"));
    let gw = start_gateway(config).await;
    let answer = raw_http(gw.gateway.http_addr, &get(&format!("/{A}.cfg"), "")).await;
    assert_eq!(status_of(&answer), 502, "{answer}");
    assert!(!answer.contains("sip-secret"), "{answer}");
    assert!(
        answer.to_ascii_lowercase().contains("certificate"),
        "a clear reason: {answer}"
    );
    assert!(
        !answer.contains("prov-pw"),
        "the upstream's password is not shown: {answer}"
    );
    gw.stop().await;
}
