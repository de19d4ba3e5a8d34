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
