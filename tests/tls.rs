//! HTTPS for people, through real sockets: the Manager, the REST API and `/ws` over TLS with a
//! self-signed or a given certificate, the certificate kept across restarts, and the plain
//! port left to phones once HTTPS is on.

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use common::*;
use phone2mqtt::tls;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const MAC: &str = "00:15:65:4a:a9:37";
const ID: &str = "0015654aa937";

/// The test config with a self-signed HTTPS listener on a free port.
fn https_config() -> phone2mqtt::config::Config {
    let mut config = test_config();
    config.http.tls_self_signed = true;
    config.http.tls_listen = Some("127.0.0.1:0".parse().unwrap());
    config
}

fn https_url(gw: &TestGateway) -> String {
    format!("https://{}", gw.gateway.https_addr.expect("HTTPS is on"))
}

/// A client that trusts exactly `cert_pem` and refuses plain HTTP and redirects.
fn client_trusting(cert_pem: &[u8]) -> reqwest::Client {
    reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(cert_pem).unwrap())
        .https_only(true)
        .tls_info(true)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(TIMEOUT)
        .build()
        .unwrap()
}

/// A client that follows nothing, for the plain port.
fn plain_client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(TIMEOUT)
        .build()
        .unwrap()
}

fn self_signed_pem(gw: &TestGateway) -> Vec<u8> {
    std::fs::read(gw.data_dir.0.join(tls::SELF_SIGNED_CERT)).expect("the certificate is kept")
}

/// The fingerprint of the certificate the server presented.
fn presented(response: &reqwest::Response) -> String {
    let info = response
        .extensions()
        .get::<reqwest::tls::TlsInfo>()
        .expect("TLS info");
    tls::fingerprint(&CertificateDer::from(
        info.peer_certificate().expect("a certificate").to_vec(),
    ))
}

/// Statuses that show the request got through TLS to the router, with or without the
/// authentication people's routes may ask for.
fn reached(status: reqwest::StatusCode) -> bool {
    status.is_success() || status == 401 || status == 403 || status.is_redirection()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_manager_api_and_websocket_are_served_over_https_with_a_self_signed_certificate() {
    let gw = start_gateway(https_config()).await;
    let pem = self_signed_pem(&gw);
    let client = client_trusting(&pem);
    let fingerprint = gw.gateway.tls_fingerprint.clone().expect("a fingerprint");
    assert_eq!(gw.gateway.manager_url, https_url(&gw));

    let page = client
        .get(format!("{}/", https_url(&gw)))
        .send()
        .await
        .unwrap();
    assert!(reached(page.status()), "{}", page.status());
    assert_eq!(presented(&page), fingerprint);
    let info = client
        .get(format!("{}/api/info", https_url(&gw)))
        .send()
        .await
        .unwrap();
    assert_eq!(
        info.status(),
        401,
        "people's routes need credentials over HTTPS too"
    );
    let info = client
        .get(format!("{}/api/info", https_url(&gw)))
        .bearer_auth(&gw.admin_token)
        .send()
        .await
        .unwrap();
    assert_eq!(info.status(), 200);
    // A login over HTTPS sets a session cookie only HTTPS will carry.
    phone2mqtt::auth::store::Store::new(&gw.data_dir.0)
        .add_user(
            "ada",
            phone2mqtt::auth::Role::Admin,
            "correct horse battery",
        )
        .unwrap();
    let login = client
        .post(format!("{}/login", https_url(&gw)))
        .header("Origin", https_url(&gw))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body("name=ada&password=correct+horse+battery")
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 303);
    let cookie = login.headers()[reqwest::header::SET_COOKIE]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        cookie.contains("HttpOnly")
            && cookie.contains("SameSite=Strict")
            && cookie.contains("Secure"),
        "{cookie}"
    );
    // By name as well as by address: `localhost` is in the certificate.
    let port = gw.gateway.https_addr.unwrap().port();
    let by_name = reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap())
        .resolve("localhost", gw.gateway.https_addr.unwrap())
        .timeout(TIMEOUT)
        .build()
        .unwrap()
        .get(format!("https://localhost:{port}/api/info"))
        .send()
        .await
        .unwrap();
    assert!(reached(by_name.status()), "{}", by_name.status());

    // A client that does not trust the certificate is refused by its own TLS check.
    let untrusting = reqwest::Client::builder().timeout(TIMEOUT).build().unwrap();
    assert!(untrusting
        .get(format!("{}/api/info", https_url(&gw)))
        .send()
        .await
        .is_err());

    // wss://: the websocket upgrade travels over TLS; it opens, or is refused for want of
    // credentials, but never fails at the TLS layer.
    let stream = tls_connect(gw.gateway.https_addr.unwrap(), &pem).await;
    match tokio_tungstenite::client_async(format!("wss://127.0.0.1:{port}/ws"), stream).await {
        Ok((mut ws, response)) => {
            assert_eq!(response.status(), 101);
            use futures_util::StreamExt;
            let frame = tokio::time::timeout(TIMEOUT, ws.next())
                .await
                .expect("a first frame");
            assert!(frame.is_some(), "the websocket stays open");
        }
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert!(
                response.status() == 401 || response.status() == 403,
                "{}",
                response.status()
            );
        }
        Err(err) => panic!("wss failed: {err}"),
    }
    gw.stop().await;
}

/// A TLS connection to `addr` trusting only `cert_pem`.
async fn tls_connect(
    addr: SocketAddr,
    cert_pem: &[u8],
) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(cert_pem).unwrap())
        .unwrap();
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from("127.0.0.1").unwrap(), tcp)
        .await
        .expect("the TLS handshake succeeds")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_self_signed_certificate_is_kept_across_restarts() {
    let gw = start_gateway(https_config()).await;
    let first = gw.gateway.tls_fingerprint.clone().unwrap();
    let pem = self_signed_pem(&gw);
    let key = gw.data_dir.0.join(tls::SELF_SIGNED_KEY);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "the key is the owner's only");
    }
    let data = gw.stop_keeping_data().await;

    let gw = start_gateway_in(https_config(), data).await;
    assert_eq!(gw.gateway.tls_fingerprint.as_deref(), Some(first.as_str()));
    assert_eq!(self_signed_pem(&gw), pem);
    // The restarted gateway presents it: a client that trusted it before still connects.
    let response = client_trusting(&pem)
        .get(format!("{}/api/info", https_url(&gw)))
        .send()
        .await
        .unwrap();
    assert_eq!(presented(&response), first);
    gw.stop().await;
}

/// A certificate and key for `127.0.0.1` and `localhost`, written as PEM files in `dir`.
fn write_certificate(dir: &Path, stem: &str) -> (std::path::PathBuf, std::path::PathBuf) {
    let key = rcgen::KeyPair::generate().unwrap();
    let params =
        rcgen::CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
            .unwrap();
    let cert = params.self_signed(&key).unwrap();
    let cert_path = dir.join(format!("{stem}.crt"));
    let key_path = dir.join(format!("{stem}.key"));
    std::fs::write(&cert_path, cert.pem()).unwrap();
    std::fs::write(&key_path, key.serialize_pem()).unwrap();
    (cert_path, key_path)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_certificate_files_are_served_and_bad_ones_stop_the_start() {
    let dir = tempdir::TempDir::new();
    let (cert, key) = write_certificate(&dir.0, "site");
    let mut config = test_config();
    config.http.tls_listen = Some("127.0.0.1:0".parse().unwrap());
    config.http.tls_cert = Some(cert.clone());
    config.http.tls_key = Some(key.clone());
    config.http.manager_url = Some("https://phones.example.com:8443".into());
    let gw = start_gateway(config.clone()).await;
    let pem = std::fs::read(&cert).unwrap();
    let expected = tls::fingerprint(&CertificateDer::from_pem_slice(&pem).unwrap());
    assert_eq!(
        gw.gateway.tls_fingerprint.as_deref(),
        Some(expected.as_str())
    );
    assert_eq!(gw.gateway.manager_url, "https://phones.example.com:8443");
    assert!(
        !gw.data_dir.0.join(tls::SELF_SIGNED_CERT).exists(),
        "nothing self-signed is made when a certificate is given"
    );
    let response = client_trusting(&pem)
        .get(format!("{}/", https_url(&gw)))
        .send()
        .await
        .unwrap();
    assert!(reached(response.status()), "{}", response.status());
    assert_eq!(presented(&response), expected);
    // The plain port sends people to manager_url.
    let plain = plain_client()
        .get(format!("{}/", gw.http()))
        .send()
        .await
        .unwrap();
    assert_eq!(plain.status(), 307);
    assert_eq!(
        plain.headers()["location"],
        "https://phones.example.com:8443/"
    );
    gw.stop().await;

    // A key that is not the certificate's, a file that holds no certificate: no start.
    let (_, other_key) = write_certificate(&dir.0, "other");
    let mut mismatched = config.clone();
    mismatched.http.tls_key = Some(other_key);
    let not_a_cert = dir.0.join("empty.crt");
    std::fs::write(&not_a_cert, "not a certificate\n").unwrap();
    let mut empty = config.clone();
    empty.http.tls_cert = Some(not_a_cert);
    let mut missing = config;
    missing.http.tls_key = Some(dir.0.join("nowhere.key"));
    for (bad, expected) in [
        (mismatched, "http.tls_cert"),
        (empty, "http.tls_cert"),
        (missing, "http.tls_key"),
    ] {
        let Err(err) = try_start_gateway_in(bad, tempdir::TempDir::new()).await else {
            panic!("{expected}: a bad certificate stops the start");
        };
        let message = format!("{err:#}");
        assert!(message.contains(expected), "{expected}: {message}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_https_on_the_plain_port_serves_phones_and_sends_people_to_https() {
    let addr = free_port();
    let mut config = https_config();
    config
        .phones
        .push(phone_entry("yealink", MAC, addr, "Reception"));
    let gw = start_gateway(config).await;
    let mut probe = MqttProbe::connect_filter(gw.mqtt_port(), "#").await;
    // The simulated phone knows only the plain address: it fetches its provisioning there and
    // its callbacks arrive.
    let phone = start_phone(&gw, "yealink", MAC, addr).await;
    assert!(gw.gateway.public_url.starts_with("http://"));
    phone.ring("+4930123456", Some("Anna Schmidt")).unwrap();
    probe.event(ID, "incoming_call").await;
    // Home Assistant's link to the phone's page (`dev.cu`, abbreviated on the wire) is the
    // Manager's HTTPS address.
    let link = format!("{}/#{ID}", https_url(&gw));
    probe
        .expect(
            &format!("homeassistant/device/phone2mqtt_{ID}/config"),
            |d| d["dev"]["cu"] == link.as_str(),
        )
        .await;

    let plain = plain_client();
    let https = https_url(&gw);
    for path in ["/", "/api/info", "/api/phones?x=1"] {
        let response = plain
            .get(format!("{}{path}", gw.http()))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 307, "{path}");
        assert_eq!(response.headers()["location"], format!("{https}{path}"));
    }
    for (method, path) in [
        ("POST", format!("/api/phones/{ID}/cmd/reboot")),
        ("POST", format!("/api/phones/{ID}/logo")),
        ("PUT", "/api/info".to_string()),
    ] {
        let response = plain
            .request(method.parse().unwrap(), format!("{}{path}", gw.http()))
            .header("content-type", "application/json")
            .body("{}")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 403, "{method} {path}");
        assert!(response.text().await.unwrap().contains(&https));
    }
    // A websocket over plain HTTP is refused, not upgraded.
    let answer = raw_http(
        gw.gateway.http_addr,
        b"GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, close\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
    )
    .await;
    assert_eq!(status_of(&answer), 403, "{answer}");
    // The phone got no reboot from any of that.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        !phone
            .snapshot()
            .requests
            .iter()
            .any(|r| r.contains("reboot")),
        "{:?}",
        phone.snapshot().requests
    );
    // Phones' files are still served on the plain port.
    let file = plain
        .get(format!("{}/{ID}.cfg", gw.http()))
        .send()
        .await
        .unwrap();
    assert_eq!(file.status(), 200);
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_https_one_port_serves_everyone_as_before() {
    let gw = start_gateway(test_config()).await;
    assert!(gw.gateway.https_addr.is_none());
    assert!(gw.gateway.tls_fingerprint.is_none());
    assert_eq!(gw.gateway.manager_url, gw.gateway.public_url);
    let response = plain_client()
        .get(format!("{}/", gw.http()))
        .send()
        .await
        .unwrap();
    assert!(
        response.status() != 307 && response.status() != 403,
        "{}",
        response.status()
    );
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_on_the_https_port_does_not_stop_it() {
    let gw = start_gateway(https_config()).await;
    let addr = gw.gateway.https_addr.unwrap();
    // Plain HTTP on the HTTPS port is told so, in clear, and nothing more.
    let answer = raw_http(addr, b"GET /api/info HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert_eq!(status_of(&answer), 400, "{answer}");
    assert!(answer.contains("https://"), "{answer}");
    for garbage in [&b"\x16\x03\x01\x00\x05hello"[..], &[0u8; 4096][..]] {
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let _ = stream.write_all(garbage).await;
        let mut answer = Vec::new();
        // The server closes (with a TLS alert at most); it does not answer HTTP in clear.
        let read = tokio::time::timeout(TIMEOUT, stream.read_to_end(&mut answer))
            .await
            .expect("the server closes the connection");
        assert!(
            read.is_err() || !String::from_utf8_lossy(&answer).contains("HTTP/1.1 200"),
            "{answer:?}"
        );
    }
    // A client that connects and says nothing holds one connection; others are served.
    let _silent = tokio::net::TcpStream::connect(addr).await.unwrap();
    let response = client_trusting(&self_signed_pem(&gw))
        .get(format!("{}/api/info", https_url(&gw)))
        .send()
        .await
        .unwrap();
    assert!(reached(response.status()), "{}", response.status());
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_over_tls_carry_the_via_tls_marker() {
    use axum::routing::{get, post};
    use phone2mqtt::http_front::{self, ViaTls};
    async fn seen(marker: Option<axum::Extension<ViaTls>>) -> &'static str {
        if marker.is_some() {
            "tls"
        } else {
            "plain"
        }
    }
    // The front answers a plain `GET /action/...` itself and hands the rest to hyper: both
    // paths must mark TLS requests.
    let router = axum::Router::new()
        .route("/action/{*rest}", get(seen))
        .route("/other", post(seen));
    let data = tempdir::TempDir::new();
    let http = phone2mqtt::config::HttpConfig {
        tls_self_signed: true,
        ..Default::default()
    };
    let https = tls::setup(&http, &data.0, &["127.0.0.1".to_string()]).unwrap();
    let plain_tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let tls_tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (plain_addr, tls_addr) = (
        plain_tcp.local_addr().unwrap(),
        tls_tcp.local_addr().unwrap(),
    );
    let stop = tokio_util::sync::CancellationToken::new();
    let tracker = tokio_util::task::TaskTracker::new();
    tracker.spawn(http_front::serve_all(
        vec![
            http_front::Listener {
                tcp: plain_tcp,
                tls: None,
                router: router.clone(),
            },
            http_front::Listener {
                tcp: tls_tcp,
                tls: Some(https.acceptor.clone()),
                router,
            },
        ],
        http_front::Front::default(),
        stop.clone(),
        tracker.clone(),
    ));
    let pem = std::fs::read(data.0.join(tls::SELF_SIGNED_CERT)).unwrap();
    let client = client_trusting(&pem);
    let plain = plain_client();
    for (path, post) in [("/action/t/yealink/dnd_on?mac=1", false), ("/other", true)] {
        let request = |client: &reqwest::Client, base: String| {
            if post {
                client.post(format!("{base}{path}")).body("x")
            } else {
                client.get(format!("{base}{path}"))
            }
        };
        let over_tls = request(&client, format!("https://{tls_addr}"))
            .send()
            .await
            .unwrap();
        assert_eq!(over_tls.text().await.unwrap(), "tls", "{path}");
        let in_clear = request(&plain, format!("http://{plain_addr}"))
            .send()
            .await
            .unwrap();
        assert_eq!(in_clear.text().await.unwrap(), "plain", "{path}");
    }
    stop.cancel();
    tracker.close();
    tracker.wait().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_prints_the_https_address_and_the_certificate_fingerprint() {
    use tokio::io::AsyncBufReadExt;
    let dir = tempdir::TempDir::new();
    let (http, https, mqtt) = (free_port(), free_port(), free_port());
    let config = dir.0.join("phone2mqtt.toml");
    std::fs::write(
        &config,
        format!(
            "[broker]\nlisten = \"{mqtt}\"\n[http]\nlisten = \"{http}\"\ntls_listen = \"{https}\"\ntls_self_signed = true\n[agent]\ndata_dir = \"{}\"\n",
            dir.0.display()
        ),
    )
    .unwrap();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_phone2mqtt"))
        .args(["serve", "-c", config.to_str().unwrap(), "--poll", "0"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let logs = tokio::spawn(async move {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text).await;
        text
    });
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let banner = tokio::time::timeout(TIMEOUT, async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if line.contains("is running") {
                return line;
            }
        }
        panic!("serve ended without its banner");
    })
    .await
    .expect("the banner in time");
    let pem = std::fs::read(dir.0.join(tls::SELF_SIGNED_CERT)).unwrap();
    let fingerprint = tls::fingerprint(&CertificateDer::from_pem_slice(&pem).unwrap());
    assert!(
        banner.contains(&format!(
            "Manager https://{https}/ (certificate SHA-256 {fingerprint}), phones http://{http}/ ,"
        )),
        "{banner}"
    );
    let response = client_trusting(&pem)
        .get(format!("https://{https}/api/info"))
        .send()
        .await
        .unwrap();
    assert!(reached(response.status()), "{}", response.status());
    assert_eq!(presented(&response), fingerprint);

    terminate(&mut child).await;
    let logs = logs.await.unwrap();
    assert!(
        logs.contains("Generated a self-signed HTTPS certificate") && logs.contains(&fingerprint),
        "{logs}"
    );
    let key = String::from_utf8(std::fs::read(dir.0.join(tls::SELF_SIGNED_KEY)).unwrap()).unwrap();
    let secret = key.lines().nth(1).unwrap();
    assert!(!logs.contains(secret), "the key stays out of the logs");
}
