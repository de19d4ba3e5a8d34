//! The embedded MQTT broker: rumqttd, configured by `broker.toml`.
//!
//! rumqttd ignores unknown keys, only logs a port it cannot bind, and cannot be stopped
//! (its `start()` never returns). So phone2mqtt checks the file's keys itself, checks that every
//! listener can bind before starting it, runs it on its own thread, and waits until its MQTT
//! listener answers before anything connects to it.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

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

/// Starts the broker on its own thread and returns the address of its MQTT 3.1.1 listener.
/// `listen` overrides the first `[v4.N]` listener; port 0 picks a free port.
pub fn start(
    mut config: rumqttd::Config,
    listen: Option<SocketAddr>,
) -> Result<SocketAddr, BrokerError> {
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
        if mqtt_handshake(connect_addr(mqtt_addr)).is_ok() {
            return Ok(mqtt_addr);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Err(BrokerError::NotListening(mqtt_addr))
}

/// A complete MQTT 3.1.1 CONNECT, CONNACK, DISCONNECT exchange: proof that the broker serves,
/// and (unlike a bare TCP connect) nothing rumqttd logs as an error.
fn mqtt_handshake(addr: SocketAddr) -> std::io::Result<()> {
    use std::io::{Read, Write};
    const CLIENT_ID: &[u8] = b"phone2mqtt-probe";
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_millis(200))?;
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    let mut packet = vec![0x10, (12 + CLIENT_ID.len()) as u8];
    packet.extend_from_slice(&[0x00, 0x04, b'M', b'Q', b'T', b'T', 0x04, 0x02, 0x00, 0x0a]);
    packet.extend_from_slice(&[0x00, CLIENT_ID.len() as u8]);
    packet.extend_from_slice(CLIENT_ID);
    stream.write_all(&packet)?;
    let mut connack = [0u8; 4];
    stream.read_exact(&mut connack)?;
    stream.write_all(&[0xe0, 0x00])?;
    if connack[0] == 0x20 && connack[3] == 0x00 {
        Ok(())
    } else {
        Err(std::io::Error::other("the broker refused the probe"))
    }
}

/// The address a client on this machine connects to for a listener address.
pub fn connect_addr(listen: SocketAddr) -> SocketAddr {
    let mut addr = listen;
    if addr.ip().is_unspecified() {
        addr.set_ip(if addr.is_ipv4() {
            std::net::Ipv4Addr::LOCALHOST.into()
        } else {
            std::net::Ipv6Addr::LOCALHOST.into()
        });
    }
    addr
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
        assert_eq!(config.router.max_segment_size, 1048576);
        assert_eq!(config.v4.unwrap()["1"].listen.to_string(), DEFAULT_LISTEN);
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
