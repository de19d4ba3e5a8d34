//! HTTPS for people: the certificate (given, or self-signed and kept in the data directory),
//! the TLS acceptor, and what the plain HTTP port answers on people's routes once HTTPS is on.
//!
//! Phones keep the plain port: most of them cannot be told to trust a private certificate, and
//! their Action URLs and provisioning requests are plain HTTP in every vendor's firmware. People
//! get the HTTPS port, so that their passwords, session cookies and API tokens never cross the
//! LAN in clear.

use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use axum::extract::Request;
use axum::http::{header, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use tokio_rustls::TlsAcceptor;
use tracing::{debug, info, warn};

use crate::config::HttpConfig;

/// The self-signed certificate and its key, in the data directory.
pub const SELF_SIGNED_CERT: &str = "https_cert.pem";
pub const SELF_SIGNED_KEY: &str = "https_key.pem";

/// A self-signed certificate's lifetime. Apple's systems refuse server certificates valid
/// longer than 825 days, also ones a user chose to trust.
const SELF_SIGNED_DAYS: i64 = 820;
/// A kept self-signed certificate this close to its end is replaced at start.
const RENEW_BEFORE: Duration = Duration::from_secs(30 * 24 * 3600);

/// The HTTPS side, ready to accept connections.
#[derive(Clone)]
pub struct Https {
    pub acceptor: TlsAcceptor,
    /// SHA-256 of the server certificate, `AB:CD:...`, as browsers and
    /// `openssl x509 -noout -fingerprint -sha256` show it.
    pub fingerprint: String,
    /// The self-signed certificate's file (to hand to clients that should trust it).
    pub self_signed: Option<PathBuf>,
}

impl std::fmt::Debug for Https {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Https")
            .field("fingerprint", &self.fingerprint)
            .field("self_signed", &self.self_signed)
            .finish_non_exhaustive()
    }
}

/// Loads `[http] tls_cert`/`tls_key`, or the self-signed certificate (made for `names` when
/// there is none yet).
pub fn setup(http: &HttpConfig, data_dir: &Path, names: &[String]) -> anyhow::Result<Https> {
    let (chain, key, self_signed) = match (&http.tls_cert, &http.tls_key) {
        (Some(cert), Some(key)) => {
            let chain = CertificateDer::pem_file_iter(cert)
                .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
                .map_err(|err| anyhow::anyhow!("http.tls_cert: {}: {err}", cert.display()))?;
            if chain.is_empty() {
                bail!(
                    "http.tls_cert: {}: no certificate in it (PEM `BEGIN CERTIFICATE` expected)",
                    cert.display()
                );
            }
            // The key's own error names the file only: it may quote what it could not parse.
            let key = PrivateKeyDer::from_pem_file(key).map_err(|_| {
                anyhow::anyhow!(
                    "http.tls_key: {}: no private key in it (PEM PKCS#8, PKCS#1 or SEC1 expected)",
                    key.display()
                )
            })?;
            (chain, key, None)
        }
        _ => {
            let (cert, key) = self_signed(data_dir, names)?;
            (vec![cert], key, Some(data_dir.join(SELF_SIGNED_CERT)))
        }
    };
    let fingerprint = fingerprint(&chain[0]);
    let mut server = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .context("TLS protocol versions")?
    .with_no_client_auth()
    .with_single_cert(chain, key)
    .context("http.tls_cert and http.tls_key do not make a usable certificate")?;
    // The front speaks HTTP/1.1 only (websocket upgrades included).
    server.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Https {
        acceptor: TlsAcceptor::from(Arc::new(server)),
        fingerprint,
        self_signed,
    })
}

/// `AB:CD:...`: SHA-256 of the DER certificate.
pub fn fingerprint(cert: &CertificateDer<'_>) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(cert.as_ref())
        .iter()
        .map(|byte| format!("{byte:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// The names a self-signed certificate is made for: loopback, the addresses HTTPS and HTTP
/// listen on, the hosts of `public_url` and `manager_url`, this machine's name and
/// `[http] allowed_hosts`.
pub fn certificate_names(
    http: &HttpConfig,
    https_addr: SocketAddr,
    public_url: &str,
    manager_url: &str,
) -> Vec<String> {
    let mut names: Vec<String> = vec!["localhost".into(), "127.0.0.1".into(), "::1".into()];
    for ip in [https_addr.ip(), http.listen.ip()] {
        if !ip.is_unspecified() {
            names.push(ip.to_string());
        }
    }
    for url in [public_url, manager_url] {
        if let Some(host) = url::Url::parse(url)
            .ok()
            .and_then(|u| u.host_str().map(|h| h.trim_matches(['[', ']']).to_string()))
        {
            names.push(host);
        }
    }
    if let Ok(host) = std::fs::read_to_string("/proc/sys/kernel/hostname") {
        names.push(host.trim().to_string());
    }
    // The names the Host check accepts (`host` or `host:port`): the certificate covers them too.
    names.extend(http.allowed_hosts.iter().map(|name| {
        crate::auth::http::parse_authority(name, 0)
            .map(|(host, _)| host)
            .unwrap_or_else(|| name.clone())
    }));
    let mut seen = std::collections::HashSet::new();
    names
        .into_iter()
        .filter(|name| ServerName::try_from(name.as_str()).is_ok())
        .filter(|name| seen.insert(name.to_ascii_lowercase()))
        .collect()
}

/// The Manager's address when HTTPS is on and `[http] manager_url` is not set: the HTTPS port
/// on the host phones use when it listens on every address, else its own address.
pub fn default_manager_url(https_addr: SocketAddr, public_url: &str) -> String {
    if https_addr.ip().is_unspecified() {
        if let Some(host) = url::Url::parse(public_url)
            .ok()
            .and_then(|u| u.host_str().map(str::to_string))
        {
            return format!("https://{host}:{}", https_addr.port());
        }
    }
    format!("https://{}", crate::broker::connect_addr(https_addr))
}

/// The kept self-signed certificate, or a new one when there is none or it is about to end.
fn self_signed(
    data_dir: &Path,
    names: &[String],
) -> anyhow::Result<(CertificateDer<'static>, PrivateKeyDer<'static>)> {
    let cert_path = data_dir.join(SELF_SIGNED_CERT);
    let key_path = data_dir.join(SELF_SIGNED_KEY);
    if cert_path.exists() && key_path.exists() {
        let cert = CertificateDer::from_pem_file(&cert_path)
            .map_err(|err| anyhow::anyhow!("{}: {err}", cert_path.display()))?;
        let key = PrivateKeyDer::from_pem_file(&key_path).map_err(|_| {
            anyhow::anyhow!(
                "{}: not a private key; delete it and {} to make a new certificate",
                key_path.display(),
                cert_path.display()
            )
        })?;
        let renew_at = UnixTime::since_unix_epoch(Duration::from_secs(
            UnixTime::now()
                .as_secs()
                .saturating_add(RENEW_BEFORE.as_secs()),
        ));
        match check_names(&cert, names, renew_at) {
            Check::Expiring => {
                info!(file = %cert_path.display(), "The self-signed HTTPS certificate ends within 30 days; making a new one.");
            }
            Check::Missing(missing) => {
                // Kept: people may have told their browsers to trust this one.
                warn!(
                    file = %cert_path.display(),
                    missing = %missing.join(", "),
                    "The self-signed HTTPS certificate does not name every address of this gateway; delete it and its key to make a new one."
                );
                return Ok((cert, key));
            }
            Check::Valid => {
                debug!(file = %cert_path.display(), "Using the kept self-signed HTTPS certificate.");
                return Ok((cert, key));
            }
        }
    }
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("agent.data_dir: cannot create {}", data_dir.display()))?;
    let (cert, key) = generate(names)?;
    // The key first: a certificate on disk always has its key.
    write_file(&key_path, key.as_bytes(), 0o600)?;
    write_file(&cert_path, cert.as_bytes(), 0o644)?;
    let cert = CertificateDer::from_pem_slice(cert.as_bytes())
        .map_err(|err| anyhow::anyhow!("the generated certificate: {err}"))?;
    let key = PrivateKeyDer::from_pem_slice(key.as_bytes())
        .map_err(|_| anyhow::anyhow!("the generated key does not read back"))?;
    info!(
        file = %cert_path.display(),
        names = %names.join(", "),
        sha256 = %fingerprint(&cert),
        "Generated a self-signed HTTPS certificate."
    );
    Ok((cert, key))
}

/// A new ECDSA P-256 certificate for `names`, and its key (both PEM).
fn generate(names: &[String]) -> anyhow::Result<(String, String)> {
    let mut params = rcgen::CertificateParams::new(names.to_vec())
        .context("the names for the HTTPS certificate")?;
    let now = time::OffsetDateTime::now_utc();
    // A day back, for clients whose clock is a little behind.
    params.not_before = now - time::Duration::days(1);
    params.not_after = now + time::Duration::days(SELF_SIGNED_DAYS);
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "phone2mqtt");
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    params.key_usages = vec![rcgen::KeyUsagePurpose::DigitalSignature];
    let key = rcgen::KeyPair::generate().context("generating the HTTPS key")?;
    let cert = params
        .self_signed(&key)
        .context("signing the HTTPS certificate")?;
    Ok((cert.pem(), key.serialize_pem()))
}

/// Writes through a temporary file and a rename, so that no half-written file is ever read.
fn write_file(path: &Path, contents: &[u8], mode: u32) -> anyhow::Result<()> {
    let temporary = path.with_extension("pem.new");
    let _ = std::fs::remove_file(&temporary);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, mode);
    #[cfg(not(unix))]
    let _ = mode;
    let mut file = options
        .open(&temporary)
        .with_context(|| format!("cannot create {}", temporary.display()))?;
    file.write_all(contents)
        .and_then(|()| file.sync_all())
        .with_context(|| format!("cannot write {}", temporary.display()))?;
    std::fs::rename(&temporary, path).with_context(|| format!("cannot write {}", path.display()))
}

enum Check {
    Valid,
    Expiring,
    Missing(Vec<String>),
}

/// Whether the self-signed `cert` is still good at `at` for every name, checked the way a
/// client that trusts it would.
fn check_names(cert: &CertificateDer<'static>, names: &[String], at: UnixTime) -> Check {
    use rustls::client::danger::ServerCertVerifier;
    let mut roots = rustls::RootCertStore::empty();
    let verifier = roots.add(cert.clone()).ok().and_then(|()| {
        rustls::client::WebPkiServerVerifier::builder_with_provider(
            Arc::new(roots),
            Arc::new(rustls::crypto::ring::default_provider()),
        )
        .build()
        .ok()
    });
    let Some(verifier) = verifier else {
        return Check::Expiring;
    };
    let mut missing = Vec::new();
    for name in names {
        let Ok(server_name) = ServerName::try_from(name.as_str()) else {
            continue;
        };
        match verifier.verify_server_cert(cert, &[], &server_name, &[], at) {
            Ok(_) => {}
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::NotValidForName
                | rustls::CertificateError::NotValidForNameContext { .. },
            )) => missing.push(name.clone()),
            Err(_) => return Check::Expiring,
        }
    }
    if missing.is_empty() {
        Check::Valid
    } else {
        Check::Missing(missing)
    }
}

/// People's routes on the plain port once HTTPS is on. A browser's page load is sent to the
/// same path on the Manager's HTTPS address; anything else (a form, an API call, a websocket)
/// is refused with 403 and that address, so that no client goes on sending passwords, cookies
/// or tokens in clear.
pub fn https_only(people: Router, manager_url: &str) -> Router {
    let manager: Arc<str> = manager_url.trim_end_matches('/').into();
    people.layer(axum::middleware::from_fn(
        move |request: Request, _next: Next| {
            let manager = manager.clone();
            async move { elsewhere(&manager, &request) }
        },
    ))
}

fn elsewhere(manager: &str, request: &Request) -> Response {
    let path = request.uri().path_and_query().map_or("/", |pq| pq.as_str());
    let upgrade = request.headers().contains_key(header::UPGRADE);
    let peer = request
        .extensions()
        .get::<axum::extract::ConnectInfo<SocketAddr>>()
        .map(|info| info.0.ip())
        .unwrap_or(IpAddr::from([0, 0, 0, 0]));
    if matches!(*request.method(), Method::GET | Method::HEAD) && !upgrade {
        debug!(%peer, path = %request.uri().path(), "People's route on the plain HTTP port: sent to HTTPS.");
        let location = format!("{manager}{path}");
        return (
            StatusCode::TEMPORARY_REDIRECT,
            [
                (header::LOCATION, location.clone()),
                (header::CONTENT_TYPE, "text/plain; charset=utf-8".into()),
            ],
            format!("The Manager is served over HTTPS: {location}\n"),
        )
            .into_response();
    }
    info!(%peer, method = %request.method(), path = %request.uri().path(), "People's route on the plain HTTP port refused: HTTPS only.");
    (
        StatusCode::FORBIDDEN,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        format!(
            "this port serves phones only; the Manager, /ws and the REST API are at {manager}/\n"
        ),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_certificate_is_valid_for_its_names_only() {
        let names = vec!["localhost".to_string(), "192.168.1.10".to_string()];
        let (cert, _key) = generate(&names).unwrap();
        let cert = CertificateDer::from_pem_slice(cert.as_bytes()).unwrap();
        assert!(matches!(
            check_names(&cert, &names, UnixTime::now()),
            Check::Valid
        ));
        let more = vec!["localhost".to_string(), "phones.example.com".to_string()];
        assert!(
            matches!(check_names(&cert, &more, UnixTime::now()), Check::Missing(m) if m == ["phones.example.com"])
        );
        let later = UnixTime::since_unix_epoch(Duration::from_secs(
            UnixTime::now().as_secs() + 900 * 24 * 3600,
        ));
        assert!(matches!(check_names(&cert, &names, later), Check::Expiring));
        assert_eq!(fingerprint(&cert).len(), 32 * 3 - 1);
    }

    #[test]
    fn names_and_addresses() {
        let http = HttpConfig {
            listen: "0.0.0.0:8080".parse().unwrap(),
            tls_self_signed: true,
            ..HttpConfig::default()
        };
        let https: SocketAddr = "0.0.0.0:8443".parse().unwrap();
        let manager = default_manager_url(https, "http://192.168.1.10:8080");
        assert_eq!(manager, "https://192.168.1.10:8443");
        let names = certificate_names(
            &http,
            https,
            "http://192.168.1.10:8080",
            "https://phones.example.com/",
        );
        for name in [
            "localhost",
            "127.0.0.1",
            "::1",
            "192.168.1.10",
            "phones.example.com",
        ] {
            assert!(names.iter().any(|n| n == name), "{name} in {names:?}");
        }
        assert!(!names.iter().any(|n| n == "0.0.0.0"), "{names:?}");
        assert_eq!(
            default_manager_url("10.0.0.5:8443".parse().unwrap(), "http://192.168.1.10:8080"),
            "https://10.0.0.5:8443"
        );
        assert_eq!(
            default_manager_url("[::]:8443".parse().unwrap(), "http://[fd00::5]:8080"),
            "https://[fd00::5]:8443"
        );
    }
}
