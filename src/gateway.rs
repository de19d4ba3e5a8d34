//! Wiring: the embedded broker (unless `mqtt.url` names another), the agent, the web side and
//! the HTTP listener they share, started in that order and stopped by one token.

use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

use crate::agent::{Agent, AgentOptions};
use crate::config::{Config, Secret};
use crate::mqtt::{BrokerUrl, SessionOptions};
use crate::shutdown::Lifecycle;
use crate::{broker, http_front, web};

/// What to run.
#[derive(Debug, Clone)]
pub struct GatewayOptions {
    pub config: Config,
    /// Start the embedded broker when `mqtt.url` is not set (`serve`); `agent` never does.
    pub embedded_broker: bool,
    /// Serve the Manager, `/ws` and the REST API (`serve`), or only what phones need (`agent`).
    pub web: bool,
    /// How often configured phones are polled for their state; zero turns it off.
    pub poll_interval: Duration,
    /// phone2mqtt's users on the embedded broker (operators, admins, API tokens), besides the
    /// gateway's own clients and broker.toml's static users.
    pub mqtt_users: Option<MqttUsers>,
}

/// phone2mqtt's users as the embedded broker asks for them.
#[derive(Clone)]
pub struct MqttUsers {
    pub authenticator: broker::Authenticator,
    /// Whether there is anyone the authenticator can let in.
    pub any: bool,
}

impl std::fmt::Debug for MqttUsers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MqttUsers").field("any", &self.any).finish()
    }
}

/// A running gateway, with the addresses it ended up on.
#[derive(Debug, Clone)]
pub struct Gateway {
    pub http_addr: SocketAddr,
    pub public_url: String,
    pub broker: BrokerUrl,
    /// The gateway's own login on the embedded broker (none with `[mqtt] url`).
    pub broker_login: Option<broker::Credentials>,
    /// The embedded broker lets clients in without a login.
    pub broker_anonymous: bool,
    pub token: Secret,
    pub agent: Agent,
}

pub async fn start(
    options: GatewayOptions,
    shutdown: CancellationToken,
    tracker: &TaskTracker,
) -> anyhow::Result<Gateway> {
    raise_file_limit();
    let mut config = options.config.clone();
    let mut broker_login = None;
    let mut broker_anonymous = false;
    let broker = match &config.mqtt.url {
        Some(url) => {
            if let Some(ca_file) = &config.mqtt.ca_file {
                crate::mqtt::load_ca(ca_file).context("mqtt.ca_file")?;
            }
            BrokerUrl::parse(url).map_err(|reason| anyhow::anyhow!("mqtt.url: {reason}"))?
        }
        None if options.embedded_broker => {
            let broker_config = broker::load_config(config.broker.config.as_deref())?;
            let access = broker::Access {
                authenticator: options.mqtt_users.as_ref().map(|u| u.authenticator.clone()),
                has_users: options.mqtt_users.as_ref().is_some_and(|u| u.any),
                allow_anonymous: config.broker.allow_anonymous,
            };
            let started = broker::start(broker_config, config.broker.listen, access)?;
            let addr = broker::connect_addr(started.addr);
            info!(%addr, anonymous = started.anonymous, "Embedded MQTT broker listening.");
            // Every session the gateway opens to it (agent, web adapter, Home Assistant's
            // short-lived reads) logs in as the gateway, whatever `[mqtt]` says.
            config.mqtt.username = Some(started.credentials.username.clone());
            config.mqtt.password = Some(started.credentials.password.clone());
            broker_login = Some(started.credentials);
            broker_anonymous = started.anonymous;
            BrokerUrl::parse(&format!("mqtt://{addr}")).expect("a socket address makes a URL")
        }
        None => {
            bail!("mqtt.url: the agent needs the broker's address, e.g. mqtt://broker.example:1883")
        }
    };
    let config = &config;
    let listener = listen(config.http.listen)
        .with_context(|| format!("http.listen: cannot listen on {}", config.http.listen))?;
    let http_addr = listener.local_addr()?;
    let public_url = config
        .http
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{}", broker::connect_addr(http_addr)))
        .trim_end_matches('/')
        .to_string();
    let token = match &config.http.action_token {
        Some(token) => token.clone(),
        None => load_or_create_token(&config.agent.data_dir)?,
    };
    let name = config.agent.name.clone().unwrap_or_else(host_name);
    let lifecycle = Lifecycle::new(&shutdown, tracker);
    let agent = Agent::start(
        config,
        AgentOptions {
            name: name.clone(),
            broker: broker.clone(),
            public_url: public_url.clone(),
            token: token.clone(),
            poll_interval: options.poll_interval,
        },
        &lifecycle,
    )?;
    let mut router = agent.router();
    let mut sessions = vec![agent.mqtt().clone()];
    if options.web {
        let web_state = web::start(
            &config.mqtt.base_topic,
            SessionOptions::new(
                broker.clone(),
                format!("phone2mqtt-web-{name}-{}", std::process::id()),
                &config.mqtt,
            ),
            &lifecycle,
        );
        sessions.push(web_state.mqtt.clone());
        router = router.merge(web::router(web_state));
    }
    lifecycle.work_tracker.spawn(http_front::serve(
        listener,
        router,
        lifecycle.work.clone(),
        lifecycle.work_tracker.clone(),
    ));
    info!(%http_addr, %public_url, agent = %name, "HTTP listening.");
    for session in sessions {
        if !session.wait_connected(Duration::from_secs(10)).await {
            warn!(broker = %format!("{}:{}", broker.host, broker.port), "Not connected to the MQTT broker yet; retrying in the background.");
            break;
        }
    }
    Ok(Gateway {
        http_addr,
        public_url,
        broker,
        broker_login,
        broker_anonymous,
        token,
        agent,
    })
}

/// Connections the kernel holds for the HTTP listener until they are accepted. Phones send each
/// callback on a new connection; after a PBX restart thousands register at once, and a
/// connection that finds the queue full waits a second or more for its SYN to be retried. The
/// kernel caps this at `net.core.somaxconn` (4096 by default since Linux 5.4).
const LISTEN_BACKLOG: u32 = 4096;

/// The HTTP listener, with a backlog sized for registration storms.
fn listen(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = match addr {
        SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
        SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
    };
    // As the standard library's listeners do: a restarted gateway can bind at once.
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

/// Raises this process's open-file limit to its hard limit, and returns the limit in force.
/// Every phone callback is a connection, the HTTP front holds up to 4,096 at once and the
/// kernel queues 4,096 more; the usual soft limit of 1,024 would make a registration storm fail
/// with "too many open files" while the system allows far more (systemd's hard limit is
/// 524,288). Processes started from here inherit it.
pub fn raise_file_limit() -> u64 {
    use rustix::process::{getrlimit, setrlimit, Resource};
    let mut limit = getrlimit(Resource::Nofile);
    if limit.maximum != limit.current {
        limit.current = limit.maximum;
        if let Err(err) = setrlimit(Resource::Nofile, limit) {
            warn!(cause = %err, "Could not raise the open-file limit.");
        }
    }
    getrlimit(Resource::Nofile).current.unwrap_or(u64::MAX)
}

/// The action token kept in the data directory, created on first use.
pub fn load_or_create_token(data_dir: &Path) -> anyhow::Result<Secret> {
    let path = data_dir.join("action_token");
    if let Ok(text) = std::fs::read_to_string(&path) {
        let token = text.trim();
        if token.len() >= 16 {
            return Ok(Secret::new(token));
        }
        bail!(
            "{}: the kept action token is too short; delete the file to make a new one",
            path.display()
        );
    }
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("agent.data_dir: cannot create {}", data_dir.display()))?;
    let token = new_token();
    let mut file = {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        options
            .open(&path)
            .with_context(|| format!("cannot create {}", path.display()))?
    };
    writeln!(file, "{token}")?;
    info!(file = %path.display(), "Generated a new action token.");
    Ok(Secret::new(token))
}

/// 32 random letters and digits.
pub fn new_token() -> String {
    use rand::distributions::Alphanumeric;
    use rand::Rng;
    rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(32)
        .map(char::from)
        .collect()
}

/// This machine's name, usable in a topic.
fn host_name() -> String {
    let raw = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .unwrap_or_default();
    let name: String = raw
        .trim()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if name.is_empty() {
        "agent".into()
    } else {
        name
    }
}
