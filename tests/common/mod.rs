//! One helper file, so that each test reads as a transcript: start a gateway on port 0 with
//! its embedded broker, start simulated phones pointed at it, watch MQTT and the websocket.
#![allow(dead_code)]

use std::net::{SocketAddr, TcpListener};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use phone2mqtt::auth::Role;
use phone2mqtt::config::{Config, PhoneConfig, Secret};
use phone2mqtt::gateway::{self, Gateway, GatewayOptions};
use phone2mqtt::model::PhoneId;
use phone2mqtt::sim::{self, SimOptions, SimPhone};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use serde_json::Value;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub const TIMEOUT: Duration = Duration::from_secs(10);
/// An installation-wide token as earlier versions had (`[http] action_token`), for the tests of
/// its grace period; `test_config` sets none, as on a new installation.
pub const TOKEN: &str = "test-token-0123456789abcdef";
pub const PASSWORD: &str = "s3cret-admin-pw";

/// A port nobody listens on right now, for a simulated phone that binds it later. Taken below
/// Linux's ephemeral range (32768 and up): a port the kernel handed out for port 0 could be
/// handed out again, as the source port of an outgoing connection, before the phone binds it.
pub fn free_port() -> SocketAddr {
    use std::sync::atomic::{AtomicU16, Ordering};
    const FIRST: u16 = 20_000;
    const SPAN: u16 = 12_000;
    // Each test binary starts elsewhere in the span, then counts up.
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let start = (std::process::id() % u32::from(SPAN)) as u16;
    for _ in 0..SPAN {
        let offset = start.wrapping_add(NEXT.fetch_add(1, Ordering::Relaxed)) % SPAN;
        if let Ok(listener) = TcpListener::bind(("127.0.0.1", FIRST + offset)) {
            return listener.local_addr().unwrap();
        }
    }
    panic!("no free port between {FIRST} and {}", FIRST + SPAN);
}

pub struct TestGateway {
    pub gateway: Gateway,
    pub stop: CancellationToken,
    pub tracker: TaskTracker,
    pub data_dir: tempdir::TempDir,
    /// An admin API token, for the REST API and `/ws`.
    pub admin_token: String,
}

pub mod tempdir {
    /// A directory removed when dropped.
    pub struct TempDir(pub std::path::PathBuf);

    impl TempDir {
        pub fn new() -> TempDir {
            let path = std::env::temp_dir().join(format!(
                "phone2mqtt-test-{}-{}",
                std::process::id(),
                rand_suffix()
            ));
            std::fs::create_dir_all(&path).unwrap();
            TempDir(path)
        }
    }

    fn rand_suffix() -> u64 {
        use std::sync::atomic::{AtomicU64, Ordering};
        static NEXT: AtomicU64 = AtomicU64::new(0);
        NEXT.fetch_add(1, Ordering::Relaxed)
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

impl TestGateway {
    pub fn http(&self) -> String {
        format!("http://{}", self.gateway.http_addr)
    }

    /// The token in the Action URLs of phone `mac` (any MAC spelling), as its file carries it.
    pub fn token(&self, mac: &str) -> String {
        self.gateway
            .phone_token(&PhoneId::parse(mac).expect("a MAC"))
    }

    pub fn mqtt_port(&self) -> u16 {
        self.gateway.broker.port
    }

    /// A new API token with `role`, created through the library as `phone2mqtt token create`
    /// does; the running gateway sees it at once.
    pub fn api_token(&self, role: Role) -> String {
        new_token(&self.data_dir.0, role)
    }

    /// An HTTP client that sends the admin token with every request.
    pub fn api(&self) -> reqwest::Client {
        bearer_client(&self.admin_token)
    }

    pub async fn stop(self) {
        self.stop_keeping_data().await;
    }

    /// Stops the gateway and hands back its data directory.
    pub async fn stop_keeping_data(self) -> tempdir::TempDir {
        self.stop.cancel();
        self.tracker.close();
        let _ = tokio::time::timeout(Duration::from_secs(5), self.tracker.wait()).await;
        self.data_dir
    }
}

/// A config for tests: everything on port 0, no legacy token, no polling.
pub fn test_config() -> Config {
    let mut config = Config::default();
    config.broker.listen = Some("127.0.0.1:0".parse().unwrap());
    config.http.listen = "127.0.0.1:0".parse().unwrap();
    config.agent.name = Some("test".into());
    config.agent.command_timeout = 3.0;
    config
}

pub async fn start_gateway(config: Config) -> TestGateway {
    start_gateway_in(config, tempdir::TempDir::new()).await
}

/// A gateway whose data directory is `data_dir`, to restart one on the same data.
pub async fn start_gateway_in(config: Config, data_dir: tempdir::TempDir) -> TestGateway {
    try_start_gateway_in(config, data_dir)
        .await
        .expect("the gateway starts")
}

/// A gateway, or why it did not start.
pub async fn try_start_gateway_in(
    config: Config,
    data_dir: tempdir::TempDir,
) -> anyhow::Result<TestGateway> {
    let stop = CancellationToken::new();
    let tracker = TaskTracker::new();
    let mut config = config;
    config.agent.data_dir = data_dir.0.clone();
    let started = gateway::start(
        GatewayOptions {
            config,
            embedded_broker: true,
            web: true,
            poll_interval: Duration::ZERO,
            mqtt_users: None,
        },
        stop.clone(),
        &tracker,
    )
    .await;
    let gateway = match started {
        Ok(gateway) => gateway,
        Err(err) => {
            stop.cancel();
            return Err(err);
        }
    };
    let admin_token = new_token(&data_dir.0, Role::Admin);
    Ok(TestGateway {
        gateway,
        stop,
        tracker,
        data_dir,
        admin_token,
    })
}

/// Stops a `phone2mqtt` process the way a service manager does (SIGTERM) and requires a clean
/// exit in time.
pub async fn terminate(child: &mut tokio::process::Child) {
    let pid = child.id().expect("still running").to_string();
    std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    let status = tokio::time::timeout(TIMEOUT, child.wait())
        .await
        .expect("the process stops on SIGTERM")
        .unwrap();
    assert!(status.success(), "the process exits 0 on SIGTERM");
}

/// A token named after its role and a counter (restarts on the same data keep the old ones).
fn new_token(data_dir: &std::path::Path, role: Role) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let name = format!("test-{role}-{}", NEXT.fetch_add(1, Ordering::Relaxed));
    phone2mqtt::auth::store::Store::new(data_dir)
        .create_token(&name, role)
        .expect("a token is created")
}

/// An HTTP client that sends `Authorization: Bearer <token>` with every request.
pub fn bearer_client(token: &str) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        reqwest::header::AUTHORIZATION,
        format!("Bearer {token}").parse().unwrap(),
    );
    reqwest::Client::builder()
        .default_headers(headers)
        .build()
        .unwrap()
}

/// A phone entry for a simulated phone that will listen on `addr`.
pub fn phone_entry(vendor: &str, mac: &str, addr: SocketAddr, name: &str) -> PhoneConfig {
    PhoneConfig {
        mac: mac.into(),
        vendor: vendor.into(),
        address: addr.to_string(),
        username: "admin".into(),
        password: Secret::new(PASSWORD),
        name: Some(name.into()),
        line: Some("1001@pbx.example.com".into()),
        legacy_api: false,
        dnd_key: None,
        groups: Vec::new(),
        homeassistant: true,
        keys: Default::default(),
        settings: Default::default(),
    }
}

/// Starts a simulated phone on `addr`, pointed at the gateway, and waits until it has booted.
pub async fn start_phone(gw: &TestGateway, vendor: &str, mac: &str, addr: SocketAddr) -> SimPhone {
    let personality = sim::personality(vendor).expect("a simulator for this vendor");
    let mut options = SimOptions::new(
        personality,
        PhoneId::parse(mac).unwrap(),
        &gw.gateway.public_url,
    );
    options.listen = addr;
    options.password = PASSWORD.into();
    options.remote_answers_after = None;
    let phone = SimPhone::spawn(options, gw.stop.clone()).await.unwrap();
    assert!(
        phone.wait_booted(TIMEOUT).await,
        "the simulated phone booted"
    );
    phone
}

/// A gateway with one configured, booted simulated phone.
pub async fn gateway_with_phone(vendor: &str, mac: &str) -> (TestGateway, SimPhone) {
    let addr = free_port();
    let mut config = test_config();
    config
        .phones
        .push(phone_entry(vendor, mac, addr, "Reception"));
    let gw = start_gateway(config).await;
    let phone = start_phone(&gw, vendor, mac, addr).await;
    (gw, phone)
}

/// An MQTT client that records everything under `phone2mqtt/#`.
pub struct MqttProbe {
    pub client: AsyncClient,
    messages: mpsc::UnboundedReceiver<(String, Vec<u8>, bool)>,
    pub seen: Vec<(String, String)>,
    /// Received but not matched yet, oldest first: messages on different topics may arrive in
    /// either order (a phone's event can overtake the command's result), so none is thrown away.
    pending: Vec<(String, String)>,
}

impl MqttProbe {
    pub async fn connect(port: u16) -> MqttProbe {
        Self::connect_filter(port, "phone2mqtt/#").await
    }

    pub async fn connect_filter(port: u16, filter: &str) -> MqttProbe {
        Self::connect_as(port, filter, None).await
    }

    /// A probe that logs in as `login` (user name, password).
    pub async fn connect_as(port: u16, filter: &str, login: Option<(&str, &str)>) -> MqttProbe {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let id = format!(
            "probe-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        );
        let mut options = MqttOptions::new(id, "127.0.0.1", port);
        options.set_max_packet_size(1 << 20, 1 << 20);
        if let Some((user, password)) = login {
            options.set_credentials(user, password);
        }
        let (client, mut eventloop) = AsyncClient::new(options, 100);
        let (tx, rx) = mpsc::unbounded_channel();
        let (subscribed_tx, mut subscribed_rx) = mpsc::unbounded_channel();
        let filter = filter.to_string();
        let sub_client = client.clone();
        tokio::spawn(async move {
            loop {
                match eventloop.poll().await {
                    Ok(Event::Incoming(Packet::ConnAck(_))) => {
                        let _ = sub_client.try_subscribe(filter.clone(), QoS::AtLeastOnce);
                    }
                    Ok(Event::Incoming(Packet::SubAck(_))) => {
                        let _ = subscribed_tx.send(());
                    }
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        if tx.send((p.topic, p.payload.to_vec(), p.retain)).is_err() {
                            return;
                        }
                    }
                    Ok(_) => {}
                    Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                }
            }
        });
        tokio::time::timeout(TIMEOUT, subscribed_rx.recv())
            .await
            .expect("the probe subscribed");
        MqttProbe {
            client,
            messages: rx,
            seen: Vec::new(),
            pending: Vec::new(),
        }
    }

    /// Waits for a message on `topic` whose payload satisfies `check`; returns it as JSON
    /// (a non-JSON payload comes back as a JSON string).
    pub async fn expect(&mut self, topic: &str, check: impl Fn(&Value) -> bool) -> Value {
        let parse =
            |text: &str| serde_json::from_str(text).unwrap_or(Value::String(text.to_string()));
        if let Some(index) = self
            .pending
            .iter()
            .position(|(got, text)| got == topic && check(&parse(text)))
        {
            let (_, text) = self.pending.remove(index);
            // What came on this topic before the match is superseded by it.
            let mut kept = 0;
            self.pending.retain(|(got, _)| {
                kept += 1;
                got != topic || kept > index
            });
            return parse(&text);
        }
        let deadline = tokio::time::Instant::now() + TIMEOUT;
        loop {
            let next = tokio::time::timeout_at(deadline, self.messages.recv()).await;
            let Ok(Some((got, payload, _))) = next else {
                panic!(
                    "no message on {topic} matching the check within {TIMEOUT:?}; seen: {:#?}",
                    self.seen
                );
            };
            let text = String::from_utf8_lossy(&payload).into_owned();
            self.seen.push((got.clone(), text.clone()));
            if got == topic && check(&parse(&text)) {
                self.pending.retain(|(pending, _)| pending != topic);
                return parse(&text);
            }
            self.pending.push((got, text));
        }
    }

    /// The next message on any topic matching `wanted`.
    pub async fn next_on(&mut self, wanted: impl Fn(&str) -> bool) -> (String, Value) {
        let parse =
            |text: &str| serde_json::from_str(text).unwrap_or(Value::String(text.to_string()));
        if let Some(index) = self.pending.iter().position(|(topic, _)| wanted(topic)) {
            let (topic, text) = self.pending.remove(index);
            return (topic, parse(&text));
        }
        let deadline = tokio::time::Instant::now() + TIMEOUT;
        loop {
            let Ok(Some((topic, payload, _))) =
                tokio::time::timeout_at(deadline, self.messages.recv()).await
            else {
                panic!(
                    "no matching message within {TIMEOUT:?}; seen: {:#?}",
                    self.seen
                );
            };
            let text = String::from_utf8_lossy(&payload).into_owned();
            self.seen.push((topic.clone(), text.clone()));
            if wanted(&topic) {
                return (topic, parse(&text));
            }
            self.pending.push((topic, text));
        }
    }

    pub async fn publish(&self, topic: &str, payload: &str) {
        self.client
            .publish(topic, QoS::AtLeastOnce, false, payload.as_bytes().to_vec())
            .await
            .unwrap();
    }

    /// Everything received so far, including what is still queued.
    pub fn drain(&mut self) -> Vec<(String, String)> {
        while let Ok((topic, payload, _)) = self.messages.try_recv() {
            self.seen
                .push((topic, String::from_utf8_lossy(&payload).into_owned()));
        }
        self.seen.clone()
    }
}

pub type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// `/ws` as an admin (the gateway's admin token).
pub async fn ws_connect(gw: &TestGateway) -> Ws {
    ws_connect_with(gw, &gw.admin_token)
        .await
        .expect("websocket connects")
}

/// `/ws` with `Authorization: Bearer <token>`.
pub async fn ws_connect_with(
    gw: &TestGateway,
    token: &str,
) -> Result<Ws, tokio_tungstenite::tungstenite::Error> {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut request = format!("ws://{}/ws", gw.gateway.http_addr)
        .into_client_request()
        .unwrap();
    request
        .headers_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    tokio_tungstenite::connect_async(request)
        .await
        .map(|(ws, _)| ws)
}

/// Waits for a websocket frame satisfying `check`.
pub async fn ws_expect(ws: &mut Ws, check: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    loop {
        let frame = tokio::time::timeout_at(deadline, ws.next())
            .await
            .expect("a matching websocket frame in time")
            .expect("the websocket stays open")
            .expect("a websocket frame");
        if let tokio_tungstenite::tungstenite::Message::Text(text) = frame {
            let value: Value = serde_json::from_str(text.as_str()).expect("frames are JSON");
            if check(&value) {
                return value;
            }
        }
    }
}

pub async fn ws_send(ws: &mut Ws, frame: Value) {
    ws.send(tokio_tungstenite::tungstenite::Message::Text(
        frame.to_string().into(),
    ))
    .await
    .unwrap();
}

/// Sends raw bytes to the gateway's HTTP port and returns the whole answer.
pub async fn raw_http(addr: SocketAddr, request: &[u8]) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(request).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(TIMEOUT, stream.read_to_end(&mut answer))
        .await
        .expect("an answer in time")
        .unwrap();
    String::from_utf8_lossy(&answer).into_owned()
}

/// The status code of a raw HTTP answer.
pub fn status_of(answer: &str) -> u16 {
    answer
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// Waits until the simulated phone received a request line starting with `prefix`.
pub async fn phone_got(phone: &SimPhone, line: &str) -> Vec<String> {
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    loop {
        let requests = phone.snapshot().requests;
        if requests.iter().any(|r| r == line) {
            return requests;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("the phone never got `{line}`; it got {requests:#?}");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Publishes a command to `phone` (payload with a `transaction`) and waits for its result.
pub async fn command(probe: &mut MqttProbe, phone: &str, command: &str, payload: Value) -> Value {
    let transaction = payload["transaction"]
        .as_str()
        .expect("the payload names a transaction")
        .to_string();
    probe
        .publish(
            &format!("phone2mqtt/{phone}/cmd/{command}"),
            &payload.to_string(),
        )
        .await;
    probe
        .expect(&format!("phone2mqtt/{phone}/result"), |r| {
            r["transaction"] == transaction.as_str()
        })
        .await
}

/// A simulated phone given nothing but the agent's address (no `[[phone]]` entry), with the
/// test password; it runs until `power` is cancelled, even past the gateway.
pub async fn unconfigured_phone(
    gw: &TestGateway,
    vendor: &str,
    mac: &str,
    power: &CancellationToken,
) -> SimPhone {
    let mut options = SimOptions::new(
        sim::personality(vendor).expect("a simulator for this vendor"),
        phone2mqtt::model::PhoneId::parse(mac).expect("a MAC"),
        &gw.gateway.public_url,
    );
    options.password = PASSWORD.into();
    options.remote_answers_after = None;
    let phone = SimPhone::spawn(options, power.clone()).await.unwrap();
    assert!(phone.wait_booted(TIMEOUT).await, "{vendor} {mac} booted");
    phone
}

/// Waits until the simulated phone's state satisfies `check` (it acts in the background).
pub async fn phone_becomes(
    phone: &SimPhone,
    what: &str,
    check: impl Fn(&phone2mqtt::sim::Snapshot) -> bool,
) {
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    while !check(&phone.snapshot()) {
        if tokio::time::Instant::now() > deadline {
            panic!(
                "the simulated phone never got {what}: {:#?}",
                phone.snapshot()
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Mosquitto, started by a test from Debian's packages (scripts/test installs them).
pub mod mosquitto {
    use std::process::Stdio;

    use tokio::process::{Child, Command};

    /// The path of an installed program.
    pub fn tool(name: &str) -> String {
        for dir in ["/usr/bin", "/usr/sbin", "/usr/local/bin", "/usr/local/sbin"] {
            let path = format!("{dir}/{name}");
            if std::path::Path::new(&path).exists() {
                return path;
            }
        }
        panic!("`{name}` is not installed: run scripts/test, which installs mosquitto and mosquitto-clients");
    }

    /// A running Mosquitto, killed when dropped.
    pub struct Mosquitto {
        pub child: Child,
    }

    impl Mosquitto {
        /// Starts Mosquitto with the config `text` (written to `dir`) and waits until every
        /// port of `ports` accepts connections.
        pub async fn start(dir: &std::path::Path, text: &str, ports: &[u16]) -> Mosquitto {
            let conf = dir.join("mosquitto.conf");
            std::fs::write(&conf, text).unwrap();
            let mut child = Command::new(tool("mosquitto"))
                .args(["-c", conf.to_str().unwrap()])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .kill_on_drop(true)
                .spawn()
                .expect("mosquitto starts");
            let deadline = tokio::time::Instant::now() + super::TIMEOUT;
            for port in ports {
                while tokio::net::TcpStream::connect(("127.0.0.1", *port))
                    .await
                    .is_err()
                {
                    if let Ok(Some(status)) = child.try_wait() {
                        panic!("mosquitto stopped ({status}) with this config:\n{text}");
                    }
                    assert!(
                        tokio::time::Instant::now() < deadline,
                        "mosquitto did not listen on {port}"
                    );
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                }
            }
            Mosquitto { child }
        }
    }

    /// Adds a user to a Mosquitto password file (created if missing), as its README says.
    pub fn add_user(file: &std::path::Path, user: &str, password: &str) {
        let mut args = vec!["-b"];
        if !file.exists() {
            args.push("-c");
        }
        let status = std::process::Command::new(tool("mosquitto_passwd"))
            .args(args)
            .args([file.to_str().unwrap(), user, password])
            .status()
            .expect("mosquitto_passwd runs");
        assert!(status.success(), "mosquitto_passwd {user}");
    }
}

/// A private CA and a server certificate it signed for `localhost` and 127.0.0.1, as PEM files
/// in `dir`: `ca.pem`, `server.pem`, `server.key`.
pub fn private_ca(dir: &std::path::Path, name: &str) -> std::path::PathBuf {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(DnType::CommonName, format!("{name} test CA"));
    let ca_key = KeyPair::generate().unwrap();
    let ca = params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(params, ca_key);
    let mut server = CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    server
        .distinguished_name
        .push(DnType::CommonName, "localhost");
    let server_key = KeyPair::generate().unwrap();
    let cert = server.signed_by(&server_key, &issuer).unwrap();
    let dir = dir.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("ca.pem"), ca.pem()).unwrap();
    std::fs::write(dir.join("server.pem"), cert.pem()).unwrap();
    std::fs::write(dir.join("server.key"), server_key.serialize_pem()).unwrap();
    dir
}

/// Whether an MQTT 3.1.1 session with this login (none: anonymous) is accepted at `addr`:
/// a real rumqttc client, connected or refused within the test timeout.
pub async fn mqtt_login(addr: SocketAddr, login: Option<(&str, &str)>) -> bool {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let id = format!(
        "login-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    );
    let mut options = MqttOptions::new(id, addr.ip().to_string(), addr.port());
    if let Some((user, password)) = login {
        options.set_credentials(user, password);
    }
    let (client, mut eventloop) = AsyncClient::new(options, 10);
    let accepted = tokio::time::timeout(TIMEOUT, async {
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(ack))) => {
                    return ack.code == rumqttc::ConnectReturnCode::Success
                }
                Ok(_) => {}
                Err(_) => return false,
            }
        }
    })
    .await
    .expect("the broker answers or closes the connection");
    let _ = client.try_disconnect();
    let _ = tokio::time::timeout(Duration::from_millis(200), eventloop.poll()).await;
    accepted
}

/// A plain HTTP listener posing as a phone or as anybody's service: it records the head of every
/// request that arrives, as sent, and answers each with the raw response `answer` gives for it.
pub async fn recording_listener(
    answer: impl Fn(&str) -> String + Send + Sync + 'static,
) -> (SocketAddr, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let socket = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = socket.local_addr().unwrap();
    let heard = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let kept = heard.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = socket.accept().await {
            let mut head = Vec::new();
            let mut buf = [0u8; 1024];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                match stream.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => head.extend_from_slice(&buf[..n]),
                }
            }
            let head = String::from_utf8_lossy(&head).into_owned();
            let reply = answer(&head);
            kept.lock().unwrap().push(head);
            let _ = stream.write_all(reply.as_bytes()).await;
        }
    });
    (addr, heard)
}
