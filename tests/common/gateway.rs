//! A gateway on port 0 with its embedded broker and a data directory of its own, and the API
//! tokens and HTTP clients a test talks to it with.

use std::time::Duration;

use phone2mqtt::auth::Role;
use phone2mqtt::config::Config;
use phone2mqtt::gateway::{self, Gateway, GatewayOptions};
use phone2mqtt::model::PhoneId;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::tempdir;

pub struct TestGateway {
    pub gateway: Gateway,
    pub stop: CancellationToken,
    pub tracker: TaskTracker,
    pub data_dir: tempdir::TempDir,
    /// An admin API token, for the REST API and `/ws`.
    pub admin_token: String,
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

    /// A `phone2mqtt.toml` in `dir` for the command line to work on this gateway's data, as
    /// an installer runs `phone2mqtt provision` next to the running service.
    pub fn cli_config(&self, dir: &tempdir::TempDir) -> std::path::PathBuf {
        let path = dir.0.join("phone2mqtt.toml");
        let text = format!(
            "[http]\npublic_url = \"{}\"\n[agent]\ndata_dir = \"{}\"\n",
            self.gateway.public_url,
            self.data_dir.0.display()
        );
        std::fs::write(&path, text).unwrap();
        path
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

impl TestGateway {
    /// `/metrics` as a scraper reads it (with the admin token).
    pub async fn metrics(&self) -> String {
        let answer = self
            .api()
            .get(format!("{}/metrics", self.http()))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 200);
        answer.text().await.unwrap()
    }

    /// The value of the `/metrics` sample `series` (its name and labels), 0 when absent.
    pub async fn metric(&self, series: &str) -> i64 {
        sample(&self.metrics().await, series)
    }

    /// `phone2mqtt_refusals_total{limit="<limit>"}`: the refusals of one limit so far.
    pub async fn refusals(&self, limit: &str) -> i64 {
        refusals_in(&self.metrics().await, limit)
    }
}

/// The value of the sample `series` (name and labels) in a `/metrics` text, 0 when absent.
pub fn sample(text: &str, series: &str) -> i64 {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .map_or(0, |n| n.trim().parse().unwrap())
}

/// The refusals of `limit` in a `/metrics` text.
pub fn refusals_in(text: &str, limit: &str) -> i64 {
    sample(
        text,
        &format!("phone2mqtt_refusals_total{{limit=\"{limit}\"}}"),
    )
}

impl TestGateway {
    /// A REST command to `phone` (`dnd` on) is answered by the phone: the gateway still drives
    /// phones.
    pub async fn rest_command_answered(&self, phone: &str) {
        let answer = self
            .api()
            .post(format!("{}/api/phones/{phone}/cmd/dnd", self.http()))
            .body("on")
            .send()
            .await
            .unwrap();
        let status = answer.status();
        assert_eq!(status, 200, "{}", answer.text().await.unwrap());
    }
}

/// What [`GatewayProcess::start`] writes into the `phone2mqtt.toml` of a real `serve`.
pub struct Serve<'a> {
    /// The port of the external broker (`[mqtt] url`).
    pub broker: u16,
    /// More `[mqtt]` keys, one `key = value` a line.
    pub mqtt: &'a str,
    /// More `[agent]` keys, one `key = value` a line.
    pub agent: &'a str,
    /// `[[phone]]` entries: vendor, MAC, address, name; each with the test password.
    pub phones: Vec<(&'a str, &'a str, std::net::SocketAddr, &'a str)>,
}

/// `phone2mqtt serve`, the real binary, as a service manager runs it against an external
/// broker: its own config file and data directory, no polling, agent `test`, its output kept
/// in `serve.log` of the data directory for a failing test to show.
pub struct GatewayProcess {
    pub child: tokio::process::Child,
    pub data_dir: tempdir::TempDir,
    pub http: std::net::SocketAddr,
    /// An admin API token, for `/metrics`.
    pub admin_token: String,
    keys: phone2mqtt::phone_auth::PhoneKeys,
}

impl GatewayProcess {
    /// Starts `serve` and returns once its HTTP port listens.
    pub async fn start(serve: Serve<'_>) -> GatewayProcess {
        let data_dir = tempdir::TempDir::new();
        let http = super::free_port();
        let mut text = format!(
            "[mqtt]\nurl = \"mqtt://127.0.0.1:{}\"\n{}\n[http]\nlisten = \"{http}\"\n\
             [agent]\nname = \"test\"\ndata_dir = \"{}\"\n{}\n",
            serve.broker,
            serve.mqtt,
            data_dir.0.display(),
            serve.agent
        );
        for (vendor, mac, addr, name) in &serve.phones {
            text.push_str(&format!(
                "[[phone]]\nmac = \"{mac}\"\nvendor = \"{vendor}\"\naddress = \"{addr}\"\n\
                 name = \"{name}\"\npassword = \"{}\"\n",
                super::PASSWORD
            ));
        }
        let config = data_dir.0.join("phone2mqtt.toml");
        std::fs::write(&config, &text).unwrap();
        // The key of the phones' tokens and an admin token, as `provision` and `token create`
        // make them next to a running service.
        let keys = phone2mqtt::phone_auth::PhoneKeys::load(&data_dir.0).unwrap();
        let admin_token = new_token(&data_dir.0, Role::Admin);
        let log = std::fs::File::create(data_dir.0.join("serve.log")).unwrap();
        let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_phone2mqtt"))
            .args(["serve", "--poll", "0", "-c", config.to_str().unwrap()])
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let deadline = tokio::time::Instant::now() + super::TIMEOUT;
        while tokio::net::TcpStream::connect(http).await.is_err() {
            if let Ok(Some(status)) = child.try_wait() {
                let log = std::fs::read_to_string(data_dir.0.join("serve.log")).unwrap();
                panic!("serve stopped ({status}) with this config:\n{text}\n{log}");
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "serve does not listen on {http}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        GatewayProcess {
            child,
            data_dir,
            http,
            admin_token,
            keys,
        }
    }

    pub fn public_url(&self) -> String {
        format!("http://{}", self.http)
    }

    /// The token in the Action URLs of phone `mac` (any MAC spelling).
    pub fn token(&self, mac: &str) -> String {
        self.keys.token(&PhoneId::parse(mac).expect("a MAC"))
    }

    /// What the gateway logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.data_dir.0.join("serve.log")).unwrap_or_default()
    }

    /// The value of the `/metrics` sample `series` (name and labels), 0 when absent.
    pub async fn metric(&self, series: &str) -> i64 {
        let answer = bearer_client(&self.admin_token)
            .get(format!("{}/metrics", self.public_url()))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 200);
        sample(&answer.text().await.unwrap(), series)
    }
}
