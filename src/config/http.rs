//! `[http]`: where phones and people reach the agent.

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::Deserialize;

use super::{ConfigError, Secret};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    pub listen: SocketAddr,
    /// How phones reach this agent, e.g. `http://192.168.1.10:8080`. Absent: derived from `listen`.
    pub public_url: Option<String>,
    /// The installation-wide Action URL token of earlier versions, now a legacy token: phones
    /// provisioned with it keep working for `action_token_grace_days`, then must be provisioned
    /// again (each phone has its own token now).
    pub action_token: Option<Secret>,
    /// The HTTPS listener for people (Manager, `/ws`, REST API). Absent while a certificate is
    /// configured: port 8443 on the `listen` address.
    pub tls_listen: Option<SocketAddr>,
    /// The HTTPS certificate chain and its private key (PEM files).
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// A self-signed certificate, generated on first start and kept in the data directory.
    pub tls_self_signed: bool,
    /// How people reach the Manager, e.g. `https://phones.example.com:8443`. Absent: the HTTPS
    /// address when HTTPS is on, `public_url` otherwise.
    pub manager_url: Option<String>,
    /// More names people reach the Manager by (`phones.example.com`, `gw.example.com:8443`),
    /// besides the listen address, loopback and `public_url`: a browser request whose `Host` or
    /// `Origin` is none of them is refused (DNS rebinding, cross-site requests).
    pub allowed_hosts: Vec<String>,
    /// Days the legacy token (`action_token`, or the one kept in the data directory) is still
    /// accepted, counted from the first start of this version; 0 refuses it now.
    pub action_token_grace_days: u32,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            public_url: None,
            action_token: None,
            tls_listen: None,
            tls_cert: None,
            tls_key: None,
            tls_self_signed: false,
            manager_url: None,
            allowed_hosts: Vec::new(),
            action_token_grace_days: DEFAULT_GRACE_DAYS,
        }
    }
}

impl HttpConfig {
    /// How phones reach this agent, without a trailing `/`: `public_url`, else the address
    /// HTTP listens on (an unspecified address as loopback). `bound`: that listener's own
    /// address once bound (port 0 resolved); `phone2mqtt provision` passes `listen`, which is
    /// the same whenever phones could use it.
    pub fn public_url_for(&self, bound: SocketAddr) -> String {
        self.public_url
            .clone()
            .unwrap_or_else(|| format!("http://{}", connect_addr(bound)))
            .trim_end_matches('/')
            .to_string()
    }

    /// Where HTTPS listens, when a certificate is configured.
    pub fn https_listen(&self) -> Option<SocketAddr> {
        let certificate = self.tls_self_signed || self.tls_cert.is_some();
        certificate.then(|| {
            self.tls_listen
                .unwrap_or_else(|| SocketAddr::new(self.listen.ip(), DEFAULT_HTTPS_PORT))
        })
    }

    pub(super) fn validate_tls(
        &self,
        fail: &dyn Fn(String, String) -> ConfigError,
    ) -> Result<(), ConfigError> {
        match (&self.tls_cert, &self.tls_key) {
            (Some(_), None) => {
                return Err(fail(
                    "http.tls_key".into(),
                    "required with http.tls_cert: the certificate's private key (PEM)".into(),
                ))
            }
            (None, Some(_)) => {
                return Err(fail(
                    "http.tls_cert".into(),
                    "required with http.tls_key: the certificate chain (PEM)".into(),
                ))
            }
            (Some(_), Some(_)) if self.tls_self_signed => {
                return Err(fail(
                    "http.tls_self_signed".into(),
                    "either tls_cert and tls_key or tls_self_signed, not both".into(),
                ))
            }
            _ => {}
        }
        if let Some(tls_listen) = self.tls_listen {
            if self.https_listen().is_none() {
                return Err(fail(
                    "http.tls_listen".into(),
                    "needs a certificate: http.tls_cert and http.tls_key, or http.tls_self_signed = true".into(),
                ));
            }
            if tls_listen == self.listen && tls_listen.port() != 0 {
                return Err(fail(
                    "http.tls_listen".into(),
                    "must differ from http.listen, which stays plain HTTP for the phones".into(),
                ));
            }
        }
        if let Some(url) = &self.manager_url {
            if url::Url::parse(url)
                .ok()
                .filter(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some())
                .is_none()
            {
                return Err(fail(
                    "http.manager_url".into(),
                    format!("`{url}` must be an http:// or https:// URL"),
                ));
            }
        }
        Ok(())
    }
}

/// HTTPS's port when `[http] tls_listen` is not given.
pub const DEFAULT_HTTPS_PORT: u16 = 8443;

/// How long the legacy token is still accepted, unless `[http] action_token_grace_days` says.
pub const DEFAULT_GRACE_DAYS: u32 = 30;

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

/// Whether `text` is `host` or `host:port` (`[http] allowed_hosts`).
pub fn is_host_name(text: &str) -> bool {
    parse_authority(text, 0).is_some()
}

/// `host[:port]` or `[v6][:port]`, lower-cased, without brackets or a trailing dot.
pub fn parse_authority(text: &str, default_port: u16) -> Option<(String, u16)> {
    let text = text.trim();
    let (host, port) = if let Some(rest) = text.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        let port = match after {
            "" => None,
            _ => Some(after.strip_prefix(':')?),
        };
        (host, port)
    } else {
        match text.rsplit_once(':') {
            Some((host, port)) if !host.contains(':') => (host, Some(port)),
            Some(_) => return None,
            None => (text, None),
        }
    };
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    let valid = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':');
    if host.is_empty() || !host.chars().all(valid) {
        return None;
    }
    let port = match port {
        Some(port) => port.parse().ok()?,
        None => default_port,
    };
    Some((host, port))
}
