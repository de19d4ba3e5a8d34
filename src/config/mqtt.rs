//! `[mqtt]` (the broker the agent talks to) and `[broker]` (the embedded one).

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::Deserialize;

use super::Secret;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MqttConfig {
    /// `mqtt://host:1883`, `mqtts://host:8883`, `ws://host:8083/mqtt`. Absent: the embedded broker.
    pub url: Option<String>,
    pub base_topic: String,
    pub username: Option<String>,
    pub password: Option<Secret>,
    /// The CA (PEM) that signed an `mqtts://` or `wss://` broker's certificate, for a private
    /// CA; absent: the system's roots.
    pub ca_file: Option<PathBuf>,
}

impl Default for MqttConfig {
    fn default() -> Self {
        MqttConfig {
            url: None,
            base_topic: "phone2mqtt".into(),
            username: None,
            password: None,
            ca_file: None,
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BrokerConfig {
    /// rumqttd settings; absent: the built-in copy of the shipped `broker.toml`.
    pub config: Option<PathBuf>,
    /// Overrides the MQTT listener of that file; default 127.0.0.1:1883.
    pub listen: Option<SocketAddr>,
    /// Let clients in without a user name. Only for a broker listening on loopback only;
    /// absent: allowed there unless broker.toml lists static users.
    pub allow_anonymous: Option<bool>,
}

/// Where the broker is, parsed from `mqtt://`, `mqtts://`, `ws://` or `wss://` URLs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerUrl {
    pub scheme: String,
    pub host: String,
    pub port: u16,
    /// For websocket URLs, the whole URL as rumqttc wants it.
    pub full: String,
    pub username: Option<String>,
    pub password: Option<String>,
}

impl BrokerUrl {
    pub fn parse(text: &str) -> Result<BrokerUrl, String> {
        let url = url::Url::parse(text).map_err(|err| format!("`{text}` is not a URL: {err}"))?;
        let scheme = url.scheme().to_string();
        let default_port = match scheme.as_str() {
            "mqtt" | "tcp" => 1883,
            "mqtts" | "ssl" => 8883,
            "ws" => 80,
            "wss" => 443,
            other => {
                return Err(format!(
                    "unsupported scheme `{other}`; use mqtt://, mqtts://, ws:// or wss://"
                ))
            }
        };
        let host = url
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| format!("`{text}` has no host"))?
            .trim_matches(['[', ']'])
            .to_string();
        let username = (!url.username().is_empty()).then(|| url.username().to_string());
        let password = url.password().map(str::to_string);
        let mut without_credentials = url.clone();
        let _ = without_credentials.set_username("");
        let _ = without_credentials.set_password(None);
        Ok(BrokerUrl {
            scheme,
            host,
            port: url.port().unwrap_or(default_port),
            full: without_credentials.to_string(),
            username,
            password,
        })
    }

    /// `mqtts://` or `wss://`.
    pub fn is_tls(&self) -> bool {
        matches!(self.scheme.as_str(), "mqtts" | "ssl" | "wss")
    }

    /// The broker is on this machine: `localhost`, 127.0.0.0/8 or ::1.
    pub fn is_loopback(&self) -> bool {
        self.host.eq_ignore_ascii_case("localhost")
            || self
                .host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    }

    /// Whether a password may travel over this connection: it does not leave the machine, or
    /// it is encrypted.
    pub fn is_private(&self) -> bool {
        self.is_loopback() || self.is_tls()
    }
}
