//! Wiring: the embedded broker (unless `mqtt.url` names another), the agent, the web side and
//! the HTTP listener they share, started in that order and stopped by one token.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

use crate::agent::{Agent, AgentOptions};
use crate::config::Config;
use crate::mqtt::{BrokerUrl, SessionOptions};
use crate::phone_auth::PhoneKeys;
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
}

/// A running gateway, with the addresses it ended up on.
#[derive(Debug, Clone)]
pub struct Gateway {
    pub http_addr: SocketAddr,
    pub public_url: String,
    pub broker: BrokerUrl,
    /// The phones' Action URL tokens (`phone_token`).
    pub keys: Arc<PhoneKeys>,
    pub agent: Agent,
}

impl Gateway {
    /// The token in phone `id`'s Action URLs.
    pub fn phone_token(&self, id: &crate::model::PhoneId) -> String {
        self.keys.token(id)
    }
}

pub async fn start(
    options: GatewayOptions,
    shutdown: CancellationToken,
    tracker: &TaskTracker,
) -> anyhow::Result<Gateway> {
    raise_file_limit();
    let config = &options.config;
    let broker = match &config.mqtt.url {
        Some(url) => {
            BrokerUrl::parse(url).map_err(|reason| anyhow::anyhow!("mqtt.url: {reason}"))?
        }
        None if options.embedded_broker => {
            let broker_config = broker::load_config(config.broker.config.as_deref())?;
            let addr = broker::start(broker_config, config.broker.listen)?;
            let addr = broker::connect_addr(addr);
            info!(%addr, "Embedded MQTT broker listening.");
            BrokerUrl::parse(&format!("mqtt://{addr}")).expect("a socket address makes a URL")
        }
        None => {
            bail!("mqtt.url: the agent needs the broker's address, e.g. mqtt://broker.example:1883")
        }
    };
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
    let keys = Arc::new(PhoneKeys::load_with_legacy(
        &config.agent.data_dir,
        config.http.action_token.as_ref(),
        config.http.action_token_grace_days,
    )?);
    if let Some(until) = keys.legacy_until() {
        let until = until
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default();
        warn!(%until, "Phones provisioned by an earlier version carry the installation-wide Action URL token, accepted until then: provision every phone again (it then gets its own token), then remove [http] action_token or data/action_token.");
    }
    let name = config.agent.name.clone().unwrap_or_else(host_name);
    let lifecycle = Lifecycle::new(&shutdown, tracker);
    let agent = Agent::start(
        config,
        AgentOptions {
            name: name.clone(),
            broker: broker.clone(),
            public_url: public_url.clone(),
            keys: keys.clone(),
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
        keys,
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
