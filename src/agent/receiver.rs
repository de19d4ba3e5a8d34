//! The routes phones call: Action URL callbacks and provisioning files.
//!
//! Callbacks arrive as `/action/<token>/<vendor>/<event>?<vars>`, exactly as `provision` writes
//! them. The token is the phone's own (`phone_auth`): a callback is taken only when it matches
//! the MAC the callback carries, so one phone's file lets nobody speak for another phone.
//!
//! Values are pasted in by the phone verbatim; the lenient HTTP front (`http_front`) has
//! already made the request line parseable, and here the query is split on `&` and the first
//! `=`, `%XX` is decoded and nothing else: a `+` stays a `+`. A variable the phone left
//! unfilled (`$call_id`) counts as absent. Vendors whose guides put the variables in the path
//! (`/incoming_call/mac=...&remote=...`, no `?`) are read the same way.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, State};
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Router};
use tracing::{info, warn};

use crate::agent::Shared;
use crate::model::{now_rfc3339, Event, EventKind};
use crate::phone_auth::Verdict;
use crate::phone_vendors::{self, Callback, ParseError};

/// What phones call: Action URLs, logos and provisioning files.
pub fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/action/{*rest}", get(action_url))
        .route("/logos/{file}", get(logo_file))
        .route("/{file}", get(provisioning_file))
        .with_state(shared)
}

fn reply(status: StatusCode, text: impl Into<String>) -> Response {
    let mut text = text.into();
    text.push('\n');
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        text,
    )
        .into_response()
}

type Peer = Option<Extension<ConnectInfo<SocketAddr>>>;

fn peer_ip(peer: &Peer) -> String {
    peer.as_ref()
        .map(|Extension(ConnectInfo(addr))| addr.ip().to_string())
        .unwrap_or_else(|| "unknown".into())
}

async fn action_url(
    State(shared): State<Arc<Shared>>,
    peer: Peer,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let peer_addr = peer.as_ref().map(|Extension(ConnectInfo(addr))| addr.ip());
    let peer = peer_ip(&peer);
    let raw = uri.path_and_query().map(|pq| pq.as_str()).unwrap_or("");
    let Some(target) = split_action_target(raw) else {
        return reply(
            StatusCode::NOT_FOUND,
            "not an Action URL: expected /action/<token>/<vendor>/<event>",
        );
    };
    let Some(vendor) = phone_vendors::find(target.vendor) else {
        warn!(%peer, vendor = %target.vendor, "Action URL for an unknown vendor.");
        return reply(
            StatusCode::NOT_FOUND,
            format!("unknown vendor `{}`", target.vendor),
        );
    };
    if target.event == "key" {
        let vars = parse_vars(target.vars);
        let Some(phone) = vars
            .get("mac")
            .and_then(|m| crate::model::PhoneId::parse(m))
        else {
            return reply(StatusCode::BAD_REQUEST, "a key press needs `mac`");
        };
        if let Some(refused) = check_token(&shared, &phone, &target, &peer) {
            return refused;
        }
        shared.metrics.callback();
        return key_press(&shared, vendor, phone, vars, &peer).await;
    }
    let callback = Callback {
        event: target.event.to_string(),
        vars: parse_vars(target.vars),
        user_agent: headers
            .get(header::USER_AGENT)
            .map(|ua| String::from_utf8_lossy(ua.as_bytes()).into_owned()),
    };
    let parsed = match vendor.parse(&callback) {
        Ok(parsed) => parsed,
        Err(err) => {
            warn!(%peer, vendor = vendor.id, event = %target.event, cause = %err, "Callback could not be parsed.");
            let status = match err {
                ParseError::UnknownEvent { .. } => StatusCode::NOT_FOUND,
                ParseError::NoMac => StatusCode::BAD_REQUEST,
            };
            return reply(status, err.to_string());
        }
    };
    let Some(phone) = parsed.mac.clone() else {
        return reply(StatusCode::BAD_REQUEST, ParseError::NoMac.to_string());
    };
    if let Some(refused) = check_token(&shared, &phone, &target, &peer) {
        return refused;
    }
    let event = Event {
        event: parsed.event,
        phone,
        ts: now_rfc3339(),
        remote: parsed.remote.clone(),
        remote_name: parsed.remote_name.clone(),
        local: parsed.local.clone(),
        call_id: parsed.call_id.clone(),
        line: parsed.line.clone(),
        key: None,
        label: None,
        forward: parsed.forward,
        vars: callback.vars,
    };
    // A phone not known yet is discovered by its callback: within the same limits as by its
    // provisioning request (a valid token is needed already).
    if let Err(limit) = crate::agent::provisioning::admit_discovery(&shared, &event.phone) {
        warn!(phone = %event.phone, %peer, ?limit, "Callback of an unknown phone refused: discovery limit.");
        return crate::agent::provisioning::discovery_refused(&shared, limit);
    }
    shared.metrics.callback();
    let update = shared.phones.registry.apply_event(vendor, &parsed, &event);
    if let Some(ip) = peer_addr {
        shared.phones.registry.note_callback(&event.phone, ip);
    }
    let discovered = update.discovered.then(|| update.info.clone()).flatten();
    info!(phone = %event.phone, event = event.event.name(), "Phone event.");
    shared.publish_event(&event).await;
    shared.publish_update(update).await;
    if let Some(info) = discovered {
        info!(phone = %event.phone, vendor = vendor.id, %peer, "Discovered a phone that is not configured.");
        shared.record_discovery(&info, peer_addr).await;
    }
    reply(StatusCode::OK, "OK")
}

/// `None` when the token is `phone`'s own (or the legacy token in its grace period); otherwise
/// the 403 to answer. The token never reaches the log, right or wrong.
fn check_token(
    shared: &Shared,
    phone: &crate::model::PhoneId,
    target: &ActionTarget<'_>,
    peer: &str,
) -> Option<Response> {
    let refuse = |why: &str| {
        reply(
            StatusCode::FORBIDDEN,
            format!("{why}: provision this phone again (its file carries its own token)"),
        )
    };
    match shared.phones.keys.check(phone, target.token) {
        Verdict::Phone => None,
        Verdict::Legacy { first } => {
            if first {
                let until = shared
                    .phones
                    .keys
                    .legacy_until()
                    .and_then(|t| {
                        t.format(&time::format_description::well_known::Rfc3339)
                            .ok()
                    })
                    .unwrap_or_default();
                warn!(%phone, %peer, %until, "This phone still sends the installation-wide Action URL token, accepted until then: provision it again.");
            }
            None
        }
        Verdict::LegacyExpired => {
            warn!(%phone, %peer, vendor = %target.vendor, event = %target.event, "Action URL refused: the installation-wide token's grace period is over.");
            Some(refuse("the installation-wide token is no longer accepted"))
        }
        Verdict::Wrong => {
            warn!(%phone, %peer, vendor = %target.vendor, event = %target.event, "Action URL refused: the token is not this phone's.");
            Some(refuse("wrong or missing token for this phone"))
        }
    }
}

struct ActionTarget<'a> {
    token: &'a str,
    vendor: &'a str,
    event: &'a str,
    vars: &'a str,
}

/// `/action/<token>/<vendor>/<event>[?|/|&]<vars>`.
fn split_action_target(raw: &str) -> Option<ActionTarget<'_>> {
    let rest = raw.strip_prefix("/action/")?;
    let (token, rest) = rest.split_once('/')?;
    let (vendor, rest) = rest.split_once('/')?;
    let end = rest.find(['?', '/', '&']).unwrap_or(rest.len());
    let (event, vars) = rest.split_at(end);
    let vars = vars.get(1..).unwrap_or("");
    (!event.is_empty()).then_some(ActionTarget {
        token,
        vendor,
        event,
        vars,
    })
}

/// Splits on `&` and the first `=`, decodes `%XX` only (`+` stays `+`, a malformed `%` stays
/// literal), and drops values the phone left as `$name`.
///
/// A raw `&` inside a value (`display_remote=Smith & Co`) leaves a piece without `=`; it is
/// joined back to the value before it rather than lost.
pub fn parse_vars(query: &str) -> BTreeMap<String, String> {
    // Borrowed from the query until a value has to be joined (every callback comes here: a
    // dozen variables, and a copy for each step adds up).
    let mut pairs: Vec<(&str, Cow<'_, str>)> = Vec::new();
    for piece in query.split(['&', '?']) {
        match piece.split_once('=') {
            Some((name, value)) => pairs.push((name, Cow::Borrowed(value))),
            None => {
                if let Some((_, value)) = pairs.last_mut() {
                    let value = value.to_mut();
                    value.push('&');
                    value.push_str(piece);
                }
            }
        }
    }
    let mut vars = BTreeMap::new();
    for (name, value) in pairs {
        let name = percent_decode(name);
        let value = percent_decode(&value);
        let trimmed = value.trim();
        if name.is_empty() || trimmed.is_empty() || is_unfilled(trimmed) {
            continue;
        }
        let value = if trimmed.len() == value.len() {
            value
        } else {
            trimmed.to_string()
        };
        vars.insert(name, value);
    }
    vars
}

fn is_unfilled(value: &str) -> bool {
    value.strip_prefix('$').is_some_and(|name| {
        !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    })
}

/// `%XX` decoded; a `%` without two hex digits after it stays, bytes that are not UTF-8 become
/// U+FFFD: phones send whatever their users typed.
fn percent_decode(text: &str) -> String {
    percent_encoding::percent_decode_str(text)
        .decode_utf8_lossy()
        .into_owned()
}

/// Serves the file a phone asks for when its provisioning server is this agent: only to
/// addresses inside `[provisioning] allow`, and with `[provisioning] auth_username` set, only
/// to phones that give the credentials.
async fn provisioning_file(
    State(shared): State<Arc<Shared>>,
    peer: Peer,
    method: axum::http::Method,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let file = uri.path().trim_start_matches('/');
    let ip = peer.as_ref().map(|Extension(ConnectInfo(addr))| addr.ip());
    if let Some(refused) = outside_allow(&shared, ip, file) {
        return refused;
    }
    if let Some(auth) = &shared.serving.provisioning_auth {
        let authorization = headers
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok());
        let target = uri.path_and_query().map(|pq| pq.as_str()).unwrap_or("/");
        if !auth.accepts(authorization, method.as_str(), target) {
            if authorization.is_some() {
                warn!(peer = ?ip, file, "Provisioning request with wrong credentials refused.");
            }
            let mut response = reply(
                StatusCode::UNAUTHORIZED,
                "this provisioning server needs the credentials of [provisioning] auth_username",
            );
            for challenge in auth.challenges() {
                if let Ok(value) = header::HeaderValue::from_str(&challenge) {
                    response
                        .headers_mut()
                        .append(header::WWW_AUTHENTICATE, value);
                }
            }
            return response;
        }
    }
    let user_agent = headers
        .get(header::USER_AGENT)
        .and_then(|ua| ua.to_str().ok())
        .map(str::to_string);
    match crate::agent::provisioning::serve(&shared, file, user_agent.as_deref(), ip).await {
        Some(response) => response,
        None => reply(StatusCode::NOT_FOUND, "not found"),
    }
}

/// The 403 for a provisioning request from outside `[provisioning] allow`, counted.
fn outside_allow(shared: &Shared, ip: Option<std::net::IpAddr>, file: &str) -> Option<Response> {
    if ip.is_some_and(|ip| shared.serving.provisioning.allows(ip)) {
        return None;
    }
    let refused = shared
        .serving
        .refused_outside_allow
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        + 1;
    warn!(peer = ?ip, file, refused, "Provisioning request from outside [provisioning] allow refused.");
    Some(reply(
        StatusCode::FORBIDDEN,
        "this address may not fetch provisioning files: see [provisioning] allow",
    ))
}

/// A logo the agent converted, for the phones' provisioning to download (from inside
/// `[provisioning] allow`; phones fetch it without the provisioning credentials).
async fn logo_file(
    State(shared): State<Arc<Shared>>,
    peer: Peer,
    axum::extract::Path(file): axum::extract::Path<String>,
) -> Response {
    let ip = peer.as_ref().map(|Extension(ConnectInfo(addr))| addr.ip());
    if let Some(refused) = outside_allow(&shared, ip, &file) {
        return refused;
    }
    if !crate::agent::logo::is_logo_file(&file) {
        return reply(StatusCode::NOT_FOUND, "not found");
    }
    match tokio::fs::read(crate::agent::logo::dir(&shared.kept.data_dir).join(&file)).await {
        Ok(bytes) => ([(header::CONTENT_TYPE, "image/png")], bytes).into_response(),
        Err(_) => reply(StatusCode::NOT_FOUND, "not found"),
    }
}

/// A programmable key: `/action/<token>/<vendor>/key?mac=<mac>&key=<n>`, the MAC written in by
/// provisioning. Published as a `key` event and on the key's own topic.
async fn key_press(
    shared: &Arc<Shared>,
    vendor: &'static crate::phone_vendors::VendorSpec,
    phone: crate::model::PhoneId,
    vars: BTreeMap<String, String>,
    peer: &str,
) -> Response {
    let Some(number) = vars
        .get("key")
        .and_then(|k| k.parse::<u32>().ok())
        .filter(|k| (1..=crate::profile::MAX_KEY).contains(k))
    else {
        return reply(
            StatusCode::BAD_REQUEST,
            "a key press needs `key`, a key number",
        );
    };
    let known = shared.phones.registry.get(&phone);
    let config = known.as_ref().and_then(|p| p.config.as_ref());
    let label = shared
        .serving
        .profiles
        .profile(vendor.id, &phone, config)
        .key(number)
        .map(|key| key.label.clone());
    let event = Event {
        event: EventKind::Key,
        phone: phone.clone(),
        ts: now_rfc3339(),
        remote: None,
        remote_name: None,
        local: None,
        call_id: None,
        line: None,
        key: Some(number.to_string()),
        label,
        forward: None,
        vars,
    };
    info!(%phone, key = number, %peer, "Programmable key pressed.");
    shared.publish_event(&event).await;
    shared
        .bus
        .mqtt
        .publish_json(shared.bus.topics.key(&phone, number), &event, false)
        .await;
    // A key press proves the phone is up.
    if let Some(update) = shared
        .phones
        .registry
        .apply_command_outcome(&phone, true, None, false)
        .filter(|u| u.online.is_some())
    {
        shared.publish_update(update).await;
    }
    reply(StatusCode::OK, "OK")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_decoded_like_phones_send_them() {
        let vars = parse_vars("mac=00:15:65:4A:A9:37&remote=+4930123456&display_remote=Anna%20Schmidt&call_id=$call_id&bad=%zz&pct=100%&x=a=b&empty=");
        assert_eq!(vars["mac"], "00:15:65:4A:A9:37");
        assert_eq!(vars["remote"], "+4930123456");
        assert_eq!(vars["display_remote"], "Anna Schmidt");
        assert!(!vars.contains_key("call_id"));
        assert_eq!(vars["bad"], "%zz");
        assert_eq!(vars["pct"], "100%");
        assert_eq!(vars["x"], "a=b");
        assert!(!vars.contains_key("empty"));
        let vars = parse_vars("display_remote=Smith & Co&remote=+1");
        assert_eq!(vars["display_remote"], "Smith & Co");
        assert_eq!(vars["remote"], "+1");
        assert_eq!(percent_decode("M%C3%BCller"), "Müller");
        assert_eq!(percent_decode("100%+1%4"), "100%+1%4");
        assert_eq!(percent_decode("%FF"), "\u{fffd}");
    }

    #[test]
    fn action_targets() {
        let t = split_action_target("/action/tok/yealink/incoming_call?mac=1").unwrap();
        assert_eq!(
            (t.token, t.vendor, t.event, t.vars),
            ("tok", "yealink", "incoming_call", "mac=1")
        );
        let t =
            split_action_target("/action/tok/grandstream/incoming_call/mac=1&remote=2").unwrap();
        assert_eq!((t.event, t.vars), ("incoming_call", "mac=1&remote=2"));
        assert!(split_action_target("/action/tok/yealink/").is_none());
        assert!(split_action_target("/other").is_none());
    }
}
