//! The terminal client: `phone2mqtt phones`, `send` and `watch`.
//!
//! Each subcommand opens one MQTT session to any broker (the gateway's embedded one or an
//! external one) through [`crate::mqtt::start`], subscribes to everything under the base topic,
//! reads the retained `info`, state and `availability` of every phone (the "fleet", see
//! [`fleet`]) and then lists it, sends commands and waits for their results ([`send`]), or
//! prints live events ([`watch`]). Topics are built and parsed by [`crate::topics`] only.

pub mod fleet;
pub mod send;
pub mod watch;

use std::sync::OnceLock;
use std::time::Duration;

use anyhow::{anyhow, bail};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::mqtt::{self, BrokerUrl, Message, Mqtt, SessionOptions};
use crate::topics::Topics;

pub use fleet::phones;
pub mod admin;
pub use admin::{adopt, directory, reminders, AdoptArgs, DirectoryArgs, RemindersArgs};
pub use send::send;
pub use watch::watch;

/// How long to wait for the broker to accept the session before giving up.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Where the broker is and which base topic the gateway uses; shared by every client command.
#[derive(Debug, Clone, clap::Args)]
pub struct BrokerArgs {
    /// The MQTT broker: mqtt://, mqtts://, ws:// or wss://; `user:password@` in the URL works too.
    #[arg(
        long = "mqtt",
        value_name = "URL",
        env = "PHONE2MQTT_MQTT",
        default_value = "mqtt://127.0.0.1:1883"
    )]
    pub url: String,
    /// The gateway's base topic (`[mqtt] base_topic`).
    #[arg(long, env = "PHONE2MQTT_BASE_TOPIC", default_value = "phone2mqtt")]
    pub base_topic: String,
    /// MQTT user name.
    #[arg(long, env = "PHONE2MQTT_USERNAME")]
    pub username: Option<String>,
    /// MQTT password (better from the environment than on the command line).
    #[arg(long, env = "PHONE2MQTT_PASSWORD", hide_env_values = true)]
    pub password: Option<String>,
    /// The CA (PEM) that signed a mqtts:// or wss:// broker's certificate; default: the
    /// system's roots.
    #[arg(long, value_name = "PEM", env = "PHONE2MQTT_CA_FILE")]
    pub ca_file: Option<std::path::PathBuf>,
}

/// `phone2mqtt phones`.
#[derive(Debug, Clone, clap::Args)]
pub struct PhonesArgs {
    /// Print a JSON array of `{"id", "info", "state", "availability"}` instead of a table.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub broker: BrokerArgs,
}

/// `phone2mqtt send`.
#[derive(Debug, Clone, clap::Args)]
pub struct SendArgs {
    /// A phone id or MAC (any form), a phone name, a group name (`group:NAME` to be explicit), or
    /// `all` (every configured phone).
    pub target: String,
    /// dial, answer, hangup, reject, hold, resume, transfer, dnd, volume_up, volume_down, mute,
    /// key, message, reboot, refresh, provision, logo.
    pub command: String,
    /// The command's value (number, on/off, keys, text, URL); several words are joined by spaces.
    #[arg(conflicts_with = "json")]
    pub value: Vec<String>,
    /// The whole payload as a JSON object, e.g. '{"number": "1001", "line": 2}'; the transaction
    /// is added.
    #[arg(long, value_name = "OBJECT")]
    pub json: Option<String>,
    /// Show a `message` at this time (RFC 3339, e.g. 2026-11-26T15:00:00+01:00).
    #[arg(long, value_name = "TIME", conflicts_with = "within")]
    pub at: Option<String>,
    /// Show a `message` after this delay (90s, 10m, 1h 30m).
    #[arg(long = "in", value_name = "DURATION")]
    pub within: Option<String>,
    /// Seconds to wait for the results; a phone without a result by then counts as failed.
    #[arg(long, default_value_t = 10.0, value_name = "SECONDS")]
    pub timeout: f64,
    #[command(flatten)]
    pub broker: BrokerArgs,
}

/// `phone2mqtt watch`.
#[derive(Debug, Clone, clap::Args)]
pub struct WatchArgs {
    /// Only this phone: id, MAC (any form) or name.
    pub phone: Option<String>,
    /// Only these events (repeat the flag for several); `result` selects command results.
    #[arg(long = "event", value_name = "NAME")]
    pub events: Vec<String>,
    /// Print each event and result payload as one JSON line, as published.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub broker: BrokerArgs,
}

/// One MQTT session of a client command, subscribed to everything under the base topic.
pub struct Session {
    pub mqtt: Mqtt,
    pub incoming: mpsc::UnboundedReceiver<Message>,
    pub topics: Topics,
    /// `mqtt://host:port`, for messages (never with credentials).
    pub broker: String,
    stop: CancellationToken,
    tracker: TaskTracker,
}

impl Session {
    /// Connects, or fails within [`CONNECT_TIMEOUT`] with the reason when it can tell.
    pub async fn connect(args: &BrokerArgs) -> anyhow::Result<Session> {
        let url = BrokerUrl::parse(&args.url).map_err(|reason| anyhow!("--mqtt: {reason}"))?;
        let base = args.base_topic.trim_end_matches('/');
        if base.is_empty() || base.contains(['+', '#']) || base.starts_with('/') {
            bail!(
                "--base-topic: `{}` must be a topic without wildcards or a leading `/`",
                args.base_topic
            );
        }
        if let Some(ca_file) = &args.ca_file {
            if !url.is_tls() {
                bail!("--ca-file: only for a TLS broker (mqtts:// or wss://)");
            }
            mqtt::load_ca(ca_file).map_err(|err| anyhow!("--ca-file: {err}"))?;
        }
        let topics = Topics::new(base);
        let broker = format!("{}://{}:{}", url.scheme, url.host, url.port);
        let stop = CancellationToken::new();
        let tracker = TaskTracker::new();
        let (mqtt, incoming) = mqtt::start(
            SessionOptions {
                broker: url.clone(),
                client_id: format!("phone2mqtt-cli-{}", random_hex(8)),
                username: args.username.clone(),
                password: args.password.clone(),
                ca_file: args.ca_file.clone(),
                last_will: None,
                goodbye: None,
                subscriptions: vec![topics.all_filter()],
                metrics: None,
                supervisor: None,
                tuning: mqtt::SessionTuning::default(),
                persistent: false,
                keep_outbox: None,
                preload: Vec::new(),
            },
            stop.clone(),
            &tracker,
        );
        let session = Session {
            mqtt,
            incoming,
            topics,
            broker,
            stop,
            tracker,
        };
        if !session.mqtt.wait_connected(CONNECT_TIMEOUT).await {
            let broker = session.broker.clone();
            let last_error = session.mqtt.last_error();
            session.close().await;
            let why = diagnose(&url, last_error).await;
            bail!(
                "cannot connect to the MQTT broker at {broker} within {} s: {why}",
                CONNECT_TIMEOUT.as_secs()
            );
        }
        Ok(session)
    }

    /// Disconnects cleanly (bounded).
    pub async fn close(self) {
        self.stop.cancel();
        self.tracker.close();
        let _ = tokio::time::timeout(Duration::from_secs(3), self.tracker.wait()).await;
    }
}

/// Why the session did not come up: a TLS error as the session saw it, else a plain TCP connect
/// tells a dead broker from a refused session.
async fn diagnose(url: &BrokerUrl, last_error: Option<String>) -> String {
    if let Some(err) = last_error.filter(|err| err.contains("TLS") || err.contains("certificate")) {
        return format!(
            "{err} (the broker's certificate is not trusted: give the CA that signed it with --ca-file)"
        );
    }
    let address = (url.host.as_str(), url.port);
    match tokio::time::timeout(
        Duration::from_secs(2),
        tokio::net::TcpStream::connect(address),
    )
    .await
    {
        Err(_) => format!("no answer from {}:{}", url.host, url.port),
        Ok(Err(err)) => format!("{err} (is the broker running? set it with --mqtt URL)"),
        Ok(Ok(_)) => "the port is open but the MQTT session was not accepted: check \
                      --username/--password and the scheme (mqtt:// or mqtts://)"
            .into(),
    }
}

/// `n` random lowercase hex digits.
pub fn random_hex(n: usize) -> String {
    use rand::Rng;
    let mut rng = rand::thread_rng();
    (0..n)
        .map(|_| char::from_digit(rng.gen_range(0..16), 16).unwrap_or('0'))
        .collect()
}

static LOCAL_OFFSET: OnceLock<time::UtcOffset> = OnceLock::new();

/// Reads the local time zone's offset. Call it before the async runtime starts: the OS can only
/// be asked safely while the process has one thread. Later, UTC is used.
pub fn remember_local_offset() {
    if let Ok(offset) = time::UtcOffset::current_local_offset() {
        let _ = LOCAL_OFFSET.set(offset);
    }
}

/// The offset [`remember_local_offset`] found, or UTC.
pub fn local_offset() -> time::UtcOffset {
    LOCAL_OFFSET.get().copied().unwrap_or(time::UtcOffset::UTC)
}
