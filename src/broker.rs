//! The embedded MQTT broker: rumqttd, configured by `broker.toml`.
//!
//! rumqttd ignores unknown keys, only logs a port it cannot bind, and cannot be stopped
//! (its `start()` never returns). So phone2mqtt checks the file's keys itself, checks that every
//! listener can bind before starting it, runs it on its own thread, and waits until its MQTT
//! listener answers before anything connects to it.
//!
//! Who may connect ([`Access`]) is decided here, through rumqttd's authentication hook:
//! - the gateway's own clients (agent, web adapter, readiness probe, Home Assistant's
//!   short-lived sessions) log in with [`Credentials`] made anew at each start;
//! - phone2mqtt's users, through the gateway's [`Authenticator`];
//! - the static users of broker.toml (`[v4.N.connections.auth]`): rumqttd ignores that map once
//!   a hook is set, so phone2mqtt takes it out of the config and checks it in its own hook.
//!
//! rumqttd refuses a client without a user name whenever any authentication is configured,
//! before the hook is asked; and it has no topic ACLs: a client it lets in may publish and
//! subscribe to everything. So anonymous clients (Mosquitto 2.0's local-only mode) are served
//! by installing no authentication at all, which phone2mqtt allows only on a broker that
//! listens on loopback only; there, a client's user name and password are not checked either.
//! A broker that listens beyond loopback always authenticates, and refuses to start without a
//! single user to let in.

use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::config::Secret;

/// The shipped `broker.toml`, used when `[broker] config` is not set.
pub const DEFAULT_BROKER_TOML: &str = include_str!("../broker.toml");

/// The MQTT listener address when neither phone2mqtt.toml nor broker.toml says otherwise.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:1883";

#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    #[error("{file}: {reason}")]
    Config { file: String, reason: String },
    #[error("embedded broker: cannot listen on {addr} ({what}): {cause}")]
    Bind {
        addr: SocketAddr,
        what: String,
        cause: std::io::Error,
    },
    #[error("embedded broker: its MQTT listener on {0} did not come up")]
    NotListening(SocketAddr),
    #[error("embedded broker: {0}")]
    Access(String),
}

/// Checks a user name and password against phone2mqtt's own users (its user file: operators,
/// admins and API tokens). It may be slow (a password hash): the broker calls it off its
/// connection threads.
pub type Authenticator = Arc<dyn Fn(&str, &str) -> bool + Send + Sync>;

/// Who may use the embedded broker besides the gateway's own clients and broker.toml's static
/// users.
#[derive(Clone, Default)]
pub struct Access {
    /// phone2mqtt's users.
    pub authenticator: Option<Authenticator>,
    /// Whether the authenticator has anyone to let in: a broker listening beyond loopback with
    /// no user at all does not start.
    pub has_users: bool,
    /// `[broker] allow_anonymous`; absent: allowed when the broker listens on loopback only
    /// and broker.toml lists no static users.
    pub allow_anonymous: Option<bool>,
}

impl std::fmt::Debug for Access {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Access")
            .field("authenticator", &self.authenticator.is_some())
            .field("has_users", &self.has_users)
            .field("allow_anonymous", &self.allow_anonymous)
            .finish()
    }
}

/// The login of the gateway's own clients on the embedded broker, made anew at each start and
/// never written anywhere.
#[derive(Debug, Clone)]
pub struct Credentials {
    pub username: String,
    pub password: Secret,
}

impl Credentials {
    fn generate() -> Credentials {
        Credentials {
            username: format!("phone2mqtt-gateway-{}", std::process::id()),
            password: Secret::new(crate::config::new_token()),
        }
    }

    fn matches(&self, username: &str, password: &str) -> bool {
        same(&self.username, username) && same(self.password.expose(), password)
    }
}

/// Compares two secrets in a time that depends on their lengths only.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |diff, (x, y)| diff | (x ^ y))
            == 0
}

/// A started broker.
#[derive(Debug, Clone)]
pub struct Started {
    /// Its MQTT 3.1.1 listener.
    pub addr: SocketAddr,
    /// The gateway's own login.
    pub credentials: Credentials,
    /// Clients get in without a user name (and nobody's login is checked).
    pub anonymous: bool,
}

/// Loads and checks a broker config: the file's text, or the built-in default.
pub fn load_config(path: Option<&Path>) -> Result<rumqttd::Config, BrokerError> {
    let (file, text) = match path {
        Some(path) => {
            let file = path.display().to_string();
            let text = std::fs::read_to_string(path).map_err(|err| BrokerError::Config {
                file: file.clone(),
                reason: format!("cannot read it: {err}"),
            })?;
            (file, text)
        }
        None => (
            "broker.toml (built in)".to_string(),
            DEFAULT_BROKER_TOML.to_string(),
        ),
    };
    let fail = |reason: String| BrokerError::Config {
        file: file.clone(),
        reason,
    };
    let mut ignored = Vec::new();
    let deserializer = toml::Deserializer::new(&text);
    let config: rumqttd::Config =
        serde_ignored::deserialize(deserializer, |path| ignored.push(path.to_string()))
            .map_err(|err| fail(err.to_string()))?;
    if !ignored.is_empty() {
        return Err(fail(format!(
            "unknown key{} {} (rumqttd would silently ignore {})",
            if ignored.len() > 1 { "s" } else { "" },
            ignored.join(", "),
            if ignored.len() > 1 { "them" } else { "it" }
        )));
    }
    if config.v4.as_ref().is_none_or(|v4| v4.is_empty()) {
        return Err(fail(
            "no [v4.N] listener: phone2mqtt speaks MQTT 3.1.1 to it".into(),
        ));
    }
    Ok(config)
}

/// Starts the broker on its own thread and returns the address of its MQTT 3.1.1 listener and
/// the gateway's login. `listen` overrides the first `[v4.N]` listener; port 0 picks a free
/// port.
pub fn start(
    mut config: rumqttd::Config,
    listen: Option<SocketAddr>,
    access: Access,
) -> Result<Started, BrokerError> {
    let v4 = config.v4.get_or_insert_with(Default::default);
    let first = v4
        .keys()
        .min()
        .cloned()
        .expect("load_config checked a v4 listener");
    let server = v4.get_mut(&first).expect("key from the map");
    if let Some(listen) = listen {
        server.listen = listen;
    }
    if server.listen.port() == 0 {
        server.listen = free_port(server.listen)?;
    }
    let mqtt_addr = server.listen;
    let credentials = Credentials::generate();
    let anonymous = authenticate(&mut config, &access, &credentials)?;
    for (what, addr) in listeners(&config) {
        // Bind and release: rumqttd would only log the failure and go on without the listener.
        TcpListener::bind(addr).map_err(|cause| BrokerError::Bind { addr, what, cause })?;
    }
    std::thread::Builder::new()
        .name("rumqttd".into())
        .spawn(move || {
            let mut broker = rumqttd::Broker::new(config);
            if let Err(err) = broker.start() {
                tracing::error!(cause = %err, "The embedded broker stopped.");
            }
        })
        .expect("spawn the broker thread");
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if mqtt_handshake(connect_addr(mqtt_addr), &credentials).is_ok() {
            return Ok(Started {
                addr: mqtt_addr,
                credentials,
                anonymous,
            });
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Err(BrokerError::NotListening(mqtt_addr))
}

/// Applies `access` to every MQTT listener of `config`; returns whether anonymous clients get
/// in. Refuses a broker listening beyond loopback that would let anyone in, or no one.
fn authenticate(
    config: &mut rumqttd::Config,
    access: &Access,
    credentials: &Credentials,
) -> Result<bool, BrokerError> {
    let beyond_loopback: Vec<SocketAddr> = servers(config)
        .map(|server| server.listen)
        .filter(|addr| !addr.ip().is_loopback())
        .collect();
    let static_users = servers(config).any(|server| {
        server
            .connections
            .auth
            .as_ref()
            .is_some_and(|users| !users.is_empty())
    });
    let anonymous = access
        .allow_anonymous
        .unwrap_or(beyond_loopback.is_empty() && !static_users);
    if let Some(addr) = beyond_loopback.first() {
        if anonymous {
            return Err(BrokerError::Access(format!(
                "[broker] allow_anonymous: anonymous clients are allowed only on a broker that listens on loopback only, and this one listens on {addr}"
            )));
        }
        if !static_users && !access.has_users {
            return Err(BrokerError::Access(format!(
                "it listens on {addr}, beyond loopback, and has no MQTT user: add one (`phone2mqtt user add NAME --role operator`, or an API token), or static users in broker.toml ([v4.1.connections.auth]), or listen on 127.0.0.1"
            )));
        }
    }
    if anonymous {
        if static_users {
            tracing::warn!("broker.toml lists users, but [broker] allow_anonymous lets every client of the embedded broker in without checking any login (rumqttd cannot let clients without a user name in and check the others).");
        }
        for server in servers(config) {
            server.connections.auth = None;
            server.connections.external_auth = None;
        }
        return Ok(true);
    }
    for server in servers(config) {
        let statics = server.connections.auth.take().unwrap_or_default();
        server.set_auth_handler(hook(
            credentials.clone(),
            statics,
            access.authenticator.clone(),
        ));
    }
    Ok(false)
}

/// Every MQTT listener: `[v4.N]`, `[v5.N]` and `[ws.N]`.
fn servers(config: &mut rumqttd::Config) -> impl Iterator<Item = &mut rumqttd::ServerSettings> {
    [&mut config.v4, &mut config.v5, &mut config.ws]
        .into_iter()
        .flat_map(|servers| servers.iter_mut().flat_map(|s| s.values_mut()))
}

/// rumqttd's authentication hook for one listener: the gateway's login, that listener's static
/// users, then phone2mqtt's users.
fn hook(
    credentials: Credentials,
    statics: HashMap<String, String>,
    authenticator: Option<Authenticator>,
) -> impl Fn(String, String, String) -> futures_util::future::BoxFuture<'static, bool>
       + Send
       + Sync
       + 'static {
    let statics = Arc::new(statics);
    move |client_id: String, username: String, password: String| {
        let credentials = credentials.clone();
        let statics = statics.clone();
        let authenticator = authenticator.clone();
        Box::pin(async move {
            if credentials.matches(&username, &password)
                || statics
                    .get(&username)
                    .is_some_and(|stored| same(stored, &password))
            {
                return true;
            }
            if let Some(check) = authenticator {
                // A password hash takes milliseconds: not on the listener's only thread.
                let user = username.clone();
                let accepted = tokio::task::spawn_blocking(move || check(&user, &password))
                    .await
                    .unwrap_or(false);
                if accepted {
                    return true;
                }
            }
            tracing::warn!(%client_id, user = %username, "MQTT client refused by the embedded broker: unknown user or wrong password.");
            false
        })
    }
}

/// A complete MQTT 3.1.1 CONNECT, CONNACK, DISCONNECT exchange: proof that the broker serves,
/// and (unlike a bare TCP connect) nothing rumqttd logs as an error.
fn mqtt_handshake(addr: SocketAddr, login: &Credentials) -> std::io::Result<()> {
    use std::io::{Read, Write};
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_millis(200))?;
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    stream.write_all(&connect_packet(
        "phone2mqtt-probe",
        &login.username,
        login.password.expose(),
    ))?;
    let mut connack = [0u8; 4];
    stream.read_exact(&mut connack)?;
    stream.write_all(&[0xe0, 0x00])?;
    if connack[0] == 0x20 && connack[3] == 0x00 {
        Ok(())
    } else {
        Err(std::io::Error::other("the broker refused the probe"))
    }
}

pub use crate::config::connect_addr;

/// An MQTT 3.1.1 CONNECT with a clean session, a keep-alive of 10 s and a login.
fn connect_packet(client_id: &str, username: &str, password: &str) -> Vec<u8> {
    fn string(out: &mut Vec<u8>, text: &str) {
        out.extend_from_slice(&(text.len() as u16).to_be_bytes());
        out.extend_from_slice(text.as_bytes());
    }
    // Protocol name and level, flags (user name, password, clean session), keep-alive.
    let mut body = vec![0x00, 0x04, b'M', b'Q', b'T', b'T', 0x04, 0xc2, 0x00, 0x0a];
    string(&mut body, client_id);
    string(&mut body, username);
    string(&mut body, password);
    let mut packet = vec![0x10];
    let mut length = body.len();
    loop {
        let byte = (length % 128) as u8;
        length /= 128;
        packet.push(if length > 0 { byte | 0x80 } else { byte });
        if length == 0 {
            break;
        }
    }
    packet.extend_from_slice(&body);
    packet
}

fn listeners(config: &rumqttd::Config) -> Vec<(String, SocketAddr)> {
    let mut all = Vec::new();
    for (kind, servers) in [("v4", &config.v4), ("v5", &config.v5), ("ws", &config.ws)] {
        for (name, server) in servers.iter().flatten() {
            all.push((format!("[{kind}.{name}]"), server.listen));
        }
    }
    all
}

fn free_port(addr: SocketAddr) -> Result<SocketAddr, BrokerError> {
    let listener = TcpListener::bind(addr).map_err(|cause| BrokerError::Bind {
        addr,
        what: "MQTT".into(),
        cause,
    })?;
    listener.local_addr().map_err(|cause| BrokerError::Bind {
        addr,
        what: "MQTT".into(),
        cause,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_config_loads_with_small_segments() {
        let config = load_config(None).unwrap();
        assert_eq!(config.router.max_segment_size, 65536);
        assert_eq!(config.v4.unwrap()["1"].listen.to_string(), DEFAULT_LISTEN);
    }

    #[test]
    fn the_probe_logs_in_with_long_credentials() {
        let password = "p".repeat(300);
        let packet = connect_packet("probe", "user", &password);
        // The remaining length, in two bytes of MQTT's variable-length encoding.
        let length = usize::from(packet[1] & 0x7f) + 128 * usize::from(packet[2]);
        assert!(packet[1] & 0x80 != 0);
        assert_eq!(length, packet.len() - 3);
        assert!(packet.ends_with(password.as_bytes()));
        assert_eq!(packet[10], 0xc2, "user name, password, clean session");
    }

    #[test]
    fn secrets_compare_whole() {
        assert!(same("abc", "abc"));
        assert!(!same("abc", "abd"));
        assert!(!same("abc", "ab"));
        assert!(!same("", "a"));
    }

    #[test]
    fn misspelled_keys_are_refused() {
        let dir = std::env::temp_dir().join(format!("p2m-broker-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("broker.toml");
        let text = DEFAULT_BROKER_TOML.replace("[router]\n", "[router]\nmax_segmnet_count = 3\n");
        std::fs::write(&path, text).unwrap();
        let err = load_config(Some(&path)).unwrap_err().to_string();
        assert!(err.contains("router.max_segmnet_count"), "{err}");
    }
}
