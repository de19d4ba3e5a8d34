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
    /// Messages the outbox holds while the broker is away or slow; past it the oldest event
    /// is dropped (README, "When the broker is away").
    pub outbox_messages: usize,
    /// Bytes (payloads and topics) the outbox holds, likewise.
    pub outbox_bytes: usize,
    /// Keep what the outbox still holds at shutdown in `<data_dir>/outbox.json`, and send it
    /// after the next start.
    pub outbox_on_disk: bool,
    /// Seconds between pings when nothing else is sent.
    pub keepalive_secs: u64,
    /// Seconds the broker has to acknowledge a publish or answer a ping before the connection
    /// is taken for dead (a hung or half-open broker) and opened again.
    pub ack_timeout_secs: u64,
    /// The longest wait between two connection attempts (doubling from 0.25 s, with jitter).
    pub reconnect_max_secs: f64,
}

impl MqttConfig {
    /// The session settings `[mqtt]` gives.
    pub fn session_tuning(&self) -> SessionTuning {
        SessionTuning {
            outbox_messages: self.outbox_messages,
            outbox_bytes: self.outbox_bytes,
            keepalive: std::time::Duration::from_secs(self.keepalive_secs),
            ack_timeout: std::time::Duration::from_secs(self.ack_timeout_secs),
            reconnect_max: std::time::Duration::from_secs_f64(self.reconnect_max_secs),
        }
    }

    /// Why the session settings are refused, if they are: (key, reason).
    pub fn check(&self) -> Result<(), (&'static str, &'static str)> {
        // Room for the largest message (1 MiB, the retained directory report) several times
        // over: a bound below it would drop that report on every try and republish for ever.
        if !(10..=10_000_000).contains(&self.outbox_messages) {
            return Err(("mqtt.outbox_messages", "must be between 10 and 10000000"));
        }
        if !((4 << 20)..=(4 << 30)).contains(&self.outbox_bytes) {
            return Err((
                "mqtt.outbox_bytes",
                "must be between 4194304 and 4294967296",
            ));
        }
        if !(1..=3600).contains(&self.keepalive_secs) {
            return Err(("mqtt.keepalive_secs", "must be between 1 and 3600"));
        }
        if !(1..=3600).contains(&self.ack_timeout_secs) {
            return Err(("mqtt.ack_timeout_secs", "must be between 1 and 3600"));
        }
        if !(self.reconnect_max_secs >= 0.25 && self.reconnect_max_secs <= 300.0) {
            return Err(("mqtt.reconnect_max_secs", "must be between 0.25 and 300"));
        }
        Ok(())
    }
}

/// How a session holds on to the broker: `[mqtt]`'s outbox, keepalive, acknowledgement timeout
/// and reconnect backoff.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SessionTuning {
    pub outbox_messages: usize,
    pub outbox_bytes: usize,
    pub keepalive: std::time::Duration,
    pub ack_timeout: std::time::Duration,
    pub reconnect_max: std::time::Duration,
}

impl Default for SessionTuning {
    fn default() -> Self {
        MqttConfig::default().session_tuning()
    }
}

impl Default for MqttConfig {
    fn default() -> Self {
        MqttConfig {
            url: None,
            base_topic: "phone2mqtt".into(),
            username: None,
            password: None,
            ca_file: None,
            // A 60 s outage at 50 events/s is 3,000 events; 10,000 leave room for the results
            // and retained state of a site of a few hundred phones besides.
            outbox_messages: 10_000,
            outbox_bytes: 16 * 1024 * 1024,
            outbox_on_disk: false,
            keepalive_secs: 10,
            ack_timeout_secs: 10,
            reconnect_max_secs: 2.0,
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

/// Why a broker URL was refused. The URL is shown without its password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BrokerUrlError {
    #[error("`{shown}` is not a URL: {cause}")]
    NotAUrl {
        shown: String,
        cause: url::ParseError,
    },
    #[error("unsupported scheme `{0}`; use mqtt://, mqtts://, ws:// or wss://")]
    Scheme(String),
    #[error("`{0}` has no host")]
    NoHost(String),
}

/// `text` with the password of its `user:password@`, if any, as `***`: the URL goes into an
/// error message, which goes to the log.
fn without_password(text: &str) -> String {
    let Some((scheme, rest)) = text.split_once("://") else {
        return text.to_string();
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(end);
    match authority.rsplit_once('@') {
        Some((user_info, host)) => match user_info.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***@{host}{path}"),
            None => text.to_string(),
        },
        None => text.to_string(),
    }
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
    pub fn parse(text: &str) -> Result<BrokerUrl, BrokerUrlError> {
        let url = url::Url::parse(text).map_err(|cause| BrokerUrlError::NotAUrl {
            shown: without_password(text),
            cause,
        })?;
        let scheme = url.scheme().to_string();
        let default_port = match scheme.as_str() {
            "mqtt" | "tcp" => 1883,
            "mqtts" | "ssl" => 8883,
            "ws" => 80,
            "wss" => 443,
            other => return Err(BrokerUrlError::Scheme(other.to_string())),
        };
        let host = url
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| BrokerUrlError::NoHost(without_password(text)))?
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_name_the_url_without_its_password() {
        let err = BrokerUrl::parse("mqtt://gw:s3cret@broker.example:18x3").unwrap_err();
        assert!(matches!(err, BrokerUrlError::NotAUrl { .. }), "{err}");
        assert_eq!(
            err.to_string(),
            "`mqtt://gw:***@broker.example:18x3` is not a URL: invalid port number"
        );
        assert_eq!(
            BrokerUrl::parse("nonsense").unwrap_err().to_string(),
            "`nonsense` is not a URL: relative URL without a base"
        );
        assert_eq!(
            BrokerUrl::parse("http://b").unwrap_err(),
            BrokerUrlError::Scheme("http".into())
        );
        assert_eq!(without_password("mqtt://gw@b/x"), "mqtt://gw@b/x");
        assert_eq!(without_password("mqtt://gw:p@ss@b/x"), "mqtt://gw:***@b/x");
    }
}
