//! The HTTP exchange with one phone: a command's request built by its vendor, sent with the
//! phone's credentials (Basic, or Digest once the phone has asked for it), and its reply read
//! by the vendor. Used by the command queues (`commands`) and by re-provisioning
//! (`reprovision`), which both talk to phones and neither owns the other.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use tracing::{debug, warn};

use crate::agent::registry::Phone;
use crate::agent::Shared;
use crate::command::CommandError;
use crate::config::PhoneConfig;
use crate::model::{Command, PhoneId};
use crate::phone_vendors::{
    HttpAuth, Method, PhoneReply, PhoneRequest, ReplyOutcome, Target, VendorSpec,
};

/// Builds a command's request as the phone's vendor says, sends it and reads the reply.
pub async fn send_command(
    shared: &Shared,
    phone: &Phone,
    config: &PhoneConfig,
    command: &Command,
) -> Result<ReplyOutcome, CommandError> {
    let vendor = phone.vendor;
    let target = target(shared, phone, config);
    let request = (vendor.build)(command, &target)?;
    let reply = send_request(shared, vendor, config, &request).await?;
    (vendor.read_reply)(command, &reply)
}

/// What a vendor's request builder needs to know about the phone.
pub fn target(shared: &Shared, phone: &Phone, config: &PhoneConfig) -> Target {
    Target {
        line: config.line.clone(),
        call_id: phone.state.call_id.clone(),
        agent_url: Some(shared.serving.public_url.clone()),
        password: config.password.expose().to_string(),
        dnd: phone.state.dnd,
        options: config.options().read_by(phone.vendor),
    }
}

/// Sends one request with the command timeout; a 4xx/5xx becomes the vendor's error.
pub async fn send_request(
    shared: &Shared,
    vendor: &'static VendorSpec,
    config: &PhoneConfig,
    request: &PhoneRequest,
) -> Result<PhoneReply, CommandError> {
    let timeout = shared.phones.command_timeout;
    let reply = tokio::time::timeout(
        timeout,
        send(
            &shared.phones.http,
            &shared.phones.phone_auth,
            vendor,
            config,
            request,
        ),
    )
    .await
    .map_err(|_| CommandError::Timeout(timeout.as_secs_f64()))??;
    check_status(vendor, &reply)?;
    Ok(reply)
}

/// What the agent learnt about how each phone of a challenge-first vendor authenticates.
#[derive(Debug, Default)]
pub struct PhoneAuth {
    learnt: Mutex<HashMap<PhoneId, Learnt>>,
}

#[derive(Debug, Clone)]
struct Learnt {
    /// The address it was learnt at: a phone adopted again elsewhere starts over.
    address: String,
    scheme: Scheme,
}

#[derive(Debug, Clone)]
enum Scheme {
    /// The phone asked for Digest: its last challenge, answered again with the next nonce
    /// count (no extra round trip while the phone accepts it), and never Basic from then on.
    Digest(Box<digest_auth::WwwAuthenticateHeader>),
    /// The phone asked for Basic (Snom's factory scheme): answered, never offered unasked.
    Basic,
}

impl PhoneAuth {
    fn lock(&self) -> MutexGuard<'_, HashMap<PhoneId, Learnt>> {
        self.learnt.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn scheme(&self, config: &PhoneConfig) -> Option<Scheme> {
        self.lock()
            .get(&config.id())
            .filter(|learnt| learnt.address == config.address)
            .map(|learnt| learnt.scheme.clone())
    }

    /// The answer to the phone's last Digest challenge, if it gave one, for this request.
    fn digest_answer(
        &self,
        config: &PhoneConfig,
        request: &PhoneRequest,
    ) -> Result<Option<String>, CommandError> {
        let mut learnt = self.lock();
        let Some(Learnt {
            address,
            scheme: Scheme::Digest(challenge),
        }) = learnt.get_mut(&config.id())
        else {
            return Ok(None);
        };
        if *address != config.address {
            return Ok(None);
        }
        digest_answer(challenge, config, request).map(Some)
    }

    fn remember(&self, config: &PhoneConfig, scheme: Scheme) {
        self.lock().insert(
            config.id(),
            Learnt {
                address: config.address.clone(),
                scheme,
            },
        );
    }
}

/// Sends the request exactly as built, following no redirect, with the phone's credentials as
/// its vendor takes them: Basic up front where the vendor documents Basic; for a Digest vendor
/// nothing until the phone challenges (see [`HttpAuth::Digest`]); none at the HTTP level where
/// the password travels in the query.
async fn send(
    http: &reqwest::Client,
    auth: &PhoneAuth,
    vendor: &'static VendorSpec,
    config: &PhoneConfig,
    request: &PhoneRequest,
) -> Result<PhoneReply, CommandError> {
    let response = match vendor.http_auth {
        HttpAuth::Basic => attempt(http, config, request, Authorization::Basic).await?,
        HttpAuth::InQuery => attempt(http, config, request, Authorization::None).await?,
        HttpAuth::Digest => challenge_first(http, auth, config, request).await?,
    };
    let status = response.status().as_u16();
    let body = response.text().await.unwrap_or_default();
    Ok(PhoneReply { status, body })
}

/// A Digest vendor's exchange. The first request carries no password, or the Digest answer to
/// the phone's last challenge; a 401 is answered once, with what it asks for. Basic is answered
/// only when the phone asks for it and has never asked for Digest: a Digest phone that suddenly
/// asks for Basic is something else on its address, and gets no password in the clear.
async fn challenge_first(
    http: &reqwest::Client,
    auth: &PhoneAuth,
    config: &PhoneConfig,
    request: &PhoneRequest,
) -> Result<reqwest::Response, CommandError> {
    let first = match auth.digest_answer(config, request)? {
        Some(header) => Authorization::Digest(header),
        None => Authorization::None,
    };
    let response = attempt(http, config, request, first).await?;
    if response.status().as_u16() != 401 {
        return Ok(response);
    }
    match Challenge::of(&response) {
        Some(Challenge::Digest(text)) => {
            let mut challenge = digest_auth::parse(&text).map_err(|err| {
                CommandError::Rejected(format!("unreadable Digest challenge: {err}"))
            })?;
            let header = digest_answer(&mut challenge, config, request)?;
            auth.remember(config, Scheme::Digest(Box::new(challenge)));
            attempt(http, config, request, Authorization::Digest(header)).await
        }
        Some(Challenge::Basic) => match auth.scheme(config) {
            Some(Scheme::Digest(_)) => {
                warn!(phone = %config.id(), address = %config.address, "The phone asked for Basic authentication after asking for Digest; no password sent.");
                Err(CommandError::Unauthorized(
                    "the phone asked for HTTP Basic after it had asked for Digest: no password was sent (Basic would show it to anyone on the way). If its Authentication Scheme (http_scheme) was switched back to Basic on purpose, restart the agent".into(),
                ))
            }
            learnt => {
                if learnt.is_none() {
                    warn!(phone = %config.id(), address = %config.address, "The phone asks for HTTP Basic: its password travels readable on the network. Set its Authentication Scheme (http_scheme) to Digest.");
                    auth.remember(config, Scheme::Basic);
                }
                attempt(http, config, request, Authorization::Basic).await
            }
        },
        None => Ok(response),
    }
}

/// What a 401 asks for; Digest wins when a phone offers both.
enum Challenge {
    Digest(String),
    Basic,
}

impl Challenge {
    fn of(response: &reqwest::Response) -> Option<Challenge> {
        let offered: Vec<&str> = response
            .headers()
            .get_all(reqwest::header::WWW_AUTHENTICATE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .map(str::trim_start)
            .collect();
        let scheme_is = |value: &str, scheme: &str| {
            value
                .get(..scheme.len())
                .is_some_and(|s| s.eq_ignore_ascii_case(scheme))
        };
        offered
            .iter()
            .find(|v| scheme_is(v, "digest"))
            .map(|v| Challenge::Digest(v.to_string()))
            .or_else(|| {
                offered
                    .iter()
                    .any(|v| scheme_is(v, "basic"))
                    .then_some(Challenge::Basic)
            })
    }
}

enum Authorization {
    None,
    Basic,
    Digest(String),
}

async fn attempt(
    http: &reqwest::Client,
    config: &PhoneConfig,
    request: &PhoneRequest,
    authorization: Authorization,
) -> Result<reqwest::Response, CommandError> {
    let url = format!("{}{}", config.base_url(), request.path_and_query);
    let mut builder = match request.method {
        Method::Get => http.get(&url),
        Method::Post => http.post(&url),
    };
    builder = match authorization {
        Authorization::None => builder,
        Authorization::Basic => {
            builder.basic_auth(&config.username, Some(config.password.expose()))
        }
        Authorization::Digest(header) => builder.header(reqwest::header::AUTHORIZATION, header),
    };
    if let Some((content_type, body)) = &request.body {
        builder = builder
            .header(reqwest::header::CONTENT_TYPE, *content_type)
            .body(body.clone());
    }
    builder
        .send()
        .await
        .map_err(|err| describe_send_error(config, &err))
}

/// The `Authorization: Digest ...` answer to a phone's challenge (its nonce count goes up).
fn digest_answer(
    challenge: &mut digest_auth::WwwAuthenticateHeader,
    config: &PhoneConfig,
    request: &PhoneRequest,
) -> Result<String, CommandError> {
    let method = match request.method {
        Method::Get => digest_auth::HttpMethod::GET,
        Method::Post => digest_auth::HttpMethod::POST,
    };
    let context = digest_auth::AuthContext::new_with_method(
        config.username.as_str(),
        config.password.expose(),
        request.path_and_query.as_str(),
        request.body.as_ref().map(|(_, body)| body.as_bytes()),
        method,
    );
    challenge
        .respond(&context)
        .map(|answer| answer.to_header_string())
        .map_err(|err| CommandError::Rejected(format!("cannot answer the Digest challenge: {err}")))
}

fn describe_send_error(config: &PhoneConfig, err: &reqwest::Error) -> CommandError {
    let address = config.base_url();
    let cause = if err.is_connect() {
        "connection refused or no route".to_string()
    } else if err.is_timeout() {
        "timed out".to_string()
    } else {
        // Walk to the root cause; reqwest's own text would repeat the URL (and with it nothing
        // secret, but also nothing useful).
        let mut source: &dyn std::error::Error = err;
        while let Some(inner) = source.source() {
            source = inner;
        }
        source.to_string()
    };
    CommandError::Unreachable(format!("{address}: {cause}"))
}

fn check_status(vendor: &VendorSpec, reply: &PhoneReply) -> Result<(), CommandError> {
    match reply.status {
        200..=399 => Ok(()),
        401 => Err(CommandError::Unauthorized(
            vendor.auth_hints.unauthorized.into(),
        )),
        403 => Err(CommandError::Forbidden(vendor.auth_hints.forbidden.into())),
        status => {
            // The status only: an adopted address may be any service on the network, and its
            // answer must not come back to whoever adopted it. The log keeps a little of it.
            let detail: String = reply.body.trim().chars().take(120).collect();
            debug!(status, answer = %detail, "The phone refused a request.");
            let reason = reqwest::StatusCode::from_u16(status)
                .ok()
                .and_then(|s| s.canonical_reason())
                .map(|reason| format!(" {reason}"))
                .unwrap_or_default();
            Err(CommandError::Rejected(format!("HTTP {status}{reason}")))
        }
    }
}

/// The HTTP client every command uses. Phones on HTTPS have self-signed certificates.
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .danger_accept_invalid_certs(true)
        .connect_timeout(Duration::from_secs(3))
        .pool_max_idle_per_host(1)
        // Long enough for the next command of a burst, no longer: an idle connection costs
        // about 20 KB, and polling 10,000 phones would otherwise keep 10,000 of them.
        .pool_idle_timeout(Duration::from_secs(5))
        .user_agent(concat!("phone2mqtt/", env!("CARGO_PKG_VERSION")))
        .build()
        .expect("a plain reqwest client builds")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn challenged(offers: &[&str]) -> reqwest::Response {
        let mut answer = axum::http::Response::builder().status(401);
        for offer in offers {
            answer = answer.header("www-authenticate", *offer);
        }
        reqwest::Response::from(answer.body("").unwrap())
    }

    #[test]
    fn digest_wins_when_a_phone_offers_both() {
        let digest = "Digest realm=\"snom\", nonce=\"n\", qop=\"auth\"";
        for offers in [
            vec!["Basic realm=\"snom\"", digest],
            vec![digest, "basic realm=x"],
        ] {
            assert!(matches!(
                Challenge::of(&challenged(&offers)),
                Some(Challenge::Digest(text)) if text == digest
            ));
        }
        assert!(matches!(
            Challenge::of(&challenged(&["BASIC realm=\"x\""])),
            Some(Challenge::Basic)
        ));
        assert!(Challenge::of(&challenged(&["Bearer"])).is_none());
        assert!(Challenge::of(&challenged(&[])).is_none());
    }

    #[test]
    fn what_a_phone_asked_for_is_forgotten_when_its_address_changes() {
        let auth = PhoneAuth::default();
        let mut config = crate::agent::store::StoredPhone {
            mac: "000413000001".into(),
            vendor: "snom".into(),
            address: "10.0.0.5".into(),
            username: "admin".into(),
            password: "pw".into(),
            name: None,
            line: None,
            groups: Vec::new(),
        }
        .to_config();
        let request = PhoneRequest::get("/command.htm?key=ENTER".into());
        assert!(auth.digest_answer(&config, &request).unwrap().is_none());
        let challenge =
            digest_auth::parse("Digest realm=\"snom\", nonce=\"n1\", qop=\"auth\"").unwrap();
        auth.remember(&config, Scheme::Digest(Box::new(challenge)));
        let first = auth.digest_answer(&config, &request).unwrap().unwrap();
        let second = auth.digest_answer(&config, &request).unwrap().unwrap();
        assert!(first.contains("nc=00000001"), "{first}");
        assert!(second.contains("nc=00000002"), "{second}");
        assert!(!first.contains("pw"));
        config.address = "10.0.0.6".into();
        assert!(auth.digest_answer(&config, &request).unwrap().is_none());
        assert!(auth.scheme(&config).is_none());
    }
}
