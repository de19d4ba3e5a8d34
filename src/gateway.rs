//! Wiring: the embedded broker (unless `mqtt.url` names another), the agent, the web side and
//! the HTTP listener they share, started in that order and stopped by one token.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use axum::Router;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

use crate::agent::{Agent, AgentOptions};
use crate::auth::Auth;
use crate::config::Config;
use crate::metrics::Metrics;
use crate::mqtt::{BrokerUrl, SessionOptions};
use crate::phone_auth::PhoneKeys;
use crate::shutdown::Lifecycle;
use crate::{broker, http_front, tls, web};

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

/// The embedded broker's view of phone2mqtt's users: operators, admins and their API tokens.
fn broker_users(auth: &Auth) -> MqttUsers {
    let file = auth.file();
    let any = file
        .users
        .iter()
        .any(|u| u.role >= crate::auth::Role::Operator)
        || file
            .tokens
            .iter()
            .any(|t| t.role >= crate::auth::Role::Operator);
    let auth = auth.clone();
    MqttUsers {
        authenticator: Arc::new(move |username: &str, password: &str| {
            auth.check_mqtt(username, password)
        }),
        any,
    }
}

/// Host names people may use besides the listen addresses: `[http] allowed_hosts` and the
/// host of `manager_url`.
fn allowed_names(http: &crate::config::HttpConfig, manager_url: &str) -> Vec<String> {
    let mut names = http.allowed_hosts.clone();
    if let Some(authority) = url::Url::parse(manager_url).ok().and_then(|url| {
        Some(format!(
            "{}:{}",
            url.host_str()?,
            url.port_or_known_default()?
        ))
    }) {
        names.push(authority);
    }
    names
}

/// A running gateway, with the addresses it ended up on.
#[derive(Debug, Clone)]
pub struct Gateway {
    /// The counters `/metrics` serves.
    pub metrics: Arc<Metrics>,
    pub http_addr: SocketAddr,
    pub public_url: String,
    /// The HTTPS listener's address, when `[http]` configures a certificate.
    pub https_addr: Option<SocketAddr>,
    /// Where people open the Manager: `[http] manager_url`, else the HTTPS address when HTTPS
    /// is on, else `public_url`.
    pub manager_url: String,
    /// SHA-256 of the HTTPS certificate, `AB:CD:...`.
    pub tls_fingerprint: Option<String>,
    pub broker: BrokerUrl,
    /// The gateway's own login on the embedded broker (none with `[mqtt] url`).
    pub broker_login: Option<broker::Credentials>,
    /// The phones' Action URL tokens (`phone_token`).
    pub keys: Arc<PhoneKeys>,
    /// The embedded broker lets clients in without a login.
    pub broker_anonymous: bool,
    pub agent: Agent,
    /// Users, tokens and sessions of the Manager, the REST API and `/ws` (`None` without web).
    pub auth: Option<Auth>,
    /// Cancelled when a task kept panicking: the process should stop and exit with
    /// `supervise::FATAL_EXIT_CODE`.
    pub fatal: CancellationToken,
}

impl Gateway {
    /// The Manager's address on this machine: `http://127.0.0.1:8080`.
    pub fn local_url(&self) -> String {
        format!("http://{}", broker::connect_addr(self.http_addr))
    }

    /// The one-time link that logs a browser in as an admin, while it is unused.
    pub fn login_link(&self) -> Option<String> {
        // With HTTPS on, the plain port serves phones only: the link goes to the Manager's.
        let base = match self.https_addr {
            Some(_) => self.manager_url.clone(),
            None => self.local_url(),
        };
        self.auth.as_ref()?.login_link(&base)
    }
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
    let mut config = options.config.clone();
    let listener = listen(config.http.listen)
        .with_context(|| format!("http.listen: cannot listen on {}", config.http.listen))?;
    let http_addr = listener.local_addr()?;
    let public_url = config.http.public_url_for(http_addr);
    let https_listener = match config.http.https_listen() {
        Some(addr) => Some(
            listen(addr).with_context(|| format!("http.tls_listen: cannot listen on {addr}"))?,
        ),
        None => None,
    };
    let https_addr = https_listener
        .as_ref()
        .map(TcpListener::local_addr)
        .transpose()?;
    let manager_url = config
        .http
        .manager_url
        .clone()
        .or_else(|| https_addr.map(|addr| tls::default_manager_url(addr, &public_url)))
        .unwrap_or_else(|| public_url.clone())
        .trim_end_matches('/')
        .to_string();
    // People's side: who may use the Manager, the REST API and `/ws`, and (same users) the
    // embedded broker.
    let auth = if options.web {
        let mut allowed = crate::auth::http::Allowed::new(
            http_addr,
            config.http.public_url.as_deref(),
            &allowed_names(&config.http, &manager_url),
        );
        if let Some(addr) = https_addr {
            allowed.add_port(addr.port());
        }
        let opened = Auth::open(&config.agent.data_dir)?;
        opened.allow(allowed);
        Some(opened)
    } else {
        None
    };
    let mqtt_users = options
        .mqtt_users
        .clone()
        .or_else(|| auth.as_ref().map(broker_users));
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
                authenticator: mqtt_users.as_ref().map(|u| u.authenticator.clone()),
                has_users: mqtt_users.as_ref().is_some_and(|u| u.any),
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
    let https = match https_addr {
        Some(addr) => {
            let names = tls::certificate_names(&config.http, addr, &public_url, &manager_url);
            Some(tls::setup(&config.http, &config.agent.data_dir, &names)?)
        }
        None => None,
    };
    if options.web && https.is_none() && !http_addr.ip().is_loopback() {
        // Phones need this port on the LAN; people's passwords and cookies should not cross it.
        warn!(%http_addr, "The Manager and the REST API are served over plain HTTP beyond loopback: passwords, session cookies and API tokens cross the network in clear. Set [http] tls_self_signed = true (or tls_cert and tls_key) to serve people over HTTPS.");
    }
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
    let metrics = Arc::new(Metrics::new());
    let supervisor = crate::supervise::Supervisor::new(metrics.clone());
    let lifecycle = Lifecycle::new(&shutdown, tracker, supervisor.clone());
    let agent = Agent::start(
        config,
        AgentOptions {
            name: name.clone(),
            broker: broker.clone(),
            public_url: public_url.clone(),
            manager_url: manager_url.clone(),
            keys: keys.clone(),
            poll_interval: options.poll_interval,
            metrics: metrics.clone(),
        },
        &lifecycle,
    )?;
    // Phones' routes and people's routes: with HTTPS on, the plain port keeps only the first.
    let phones = agent.router();
    let mut people = Router::new();
    let mut sessions = vec![agent.mqtt().clone()];
    if let Some(opened) = &auth {
        let web_state = web::start(
            &config.mqtt.base_topic,
            SessionOptions::new(
                broker.clone(),
                format!("phone2mqtt-web-{name}-{}", std::process::id()),
                &config.mqtt,
            ),
            &lifecycle,
            opened.clone(),
            crate::web::Serving {
                limits: config.limits.clone(),
                metrics: metrics.clone(),
            },
        );
        sessions.push(web_state.mqtt.clone());
        people = web::router(web_state, agent.clone());
    }
    let mut listeners = Vec::new();
    match (https_listener, &https) {
        (Some(https_listener), Some(https)) => {
            listeners.push(http_front::Listener {
                tcp: listener,
                tls: None,
                router: phones
                    .clone()
                    .merge(tls::https_only(people.clone(), &manager_url)),
            });
            listeners.push(http_front::Listener {
                tcp: https_listener,
                tls: Some(https.acceptor.clone()),
                router: phones.merge(people),
            });
        }
        _ => listeners.push(http_front::Listener {
            tcp: listener,
            tls: None,
            router: phones.merge(people),
        }),
    }
    lifecycle.work_tracker.spawn(http_front::serve_all(
        listeners,
        http_front::Front {
            limits: config.limits.clone(),
            metrics: metrics.clone(),
        },
        lifecycle.work.clone(),
        lifecycle.work_tracker.clone(),
    ));
    info!(%http_addr, %public_url, agent = %name, "HTTP listening.");
    if let (Some(https_addr), Some(https)) = (https_addr, &https) {
        info!(%https_addr, %manager_url, sha256 = %https.fingerprint, "HTTPS listening; the plain HTTP port serves phones only.");
    }
    for session in sessions {
        // A stop meanwhile (SIGTERM) ends the wait: the gateway stops in order from here.
        let connected = tokio::select! {
            connected = session.wait_connected(Duration::from_secs(10)) => connected,
            () = shutdown.cancelled() => break,
        };
        if !connected {
            warn!(broker = %format!("{}:{}", broker.host, broker.port), "Not connected to the MQTT broker yet; retrying in the background.");
            break;
        }
    }
    Ok(Gateway {
        http_addr,
        public_url,
        https_addr,
        manager_url,
        tls_fingerprint: https.map(|https| https.fingerprint),
        broker,
        broker_login,
        keys,
        broker_anonymous,
        agent,
        auth,
        metrics,
        fatal: supervisor.fatal().clone(),
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
