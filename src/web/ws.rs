//! `/ws`: MQTT traffic as JSON frames (topics.md, "Websocket: `/ws`").
//!
//! On connect a client gets every retained message under the base topic (`"retained": true`),
//! then live traffic. What it sends is published as if from an MQTT client, but only to command
//! topics (phone and group commands, directory imports, reminder cancellations); anything else
//! is answered with an error frame and the connection stays open.
//!
//! The upgrade is authenticated like any people's route (`crate::auth::http::guard`). Each
//! command frame needs the role its command needs (`crate::auth::publish_role`): a viewer's, or
//! an operator's `adopt`, gets `{"error": ..., "topic": ...}` and nothing is published. The
//! credential is checked again before each command and every half minute: a revoked token or an
//! ended session closes the socket.
//!
//! `[limits]`: at most `websocket_clients` clients in all and `websocket_clients_per_address`
//! from one address, refused before the upgrade (503 / 429); a message over
//! `websocket_message_bytes` closes the socket (close code 1009). Each refusal is counted.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use axum::extract::ws::{CloseFrame, Message as WsMessage, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use futures_util::SinkExt;
use serde_json::{json, Value};
use tokio::sync::broadcast::error::{RecvError, TryRecvError};
use tracing::{debug, warn};

use crate::auth::http::Caller;
use crate::auth::peer_text;
use crate::metrics::{Limit, Metrics};
use crate::web::WebState;

/// Frames sent in one write, at most.
const MAX_BATCH: usize = 256;
/// Bytes a client's frames collect to before they are written.
const WRITE_BUFFER: usize = 16 * 1024;

/// How often a connected client's credential is checked again when it sends nothing.
const RECHECK: std::time::Duration = std::time::Duration::from_secs(30);

/// The websocket clients connected now, in all and by address.
#[derive(Debug, Default)]
pub struct Clients {
    by_address: Mutex<HashMap<Option<IpAddr>, usize>>,
}

/// A connected client's place in [`Clients`] and in the gauge, given back when dropped: on
/// close, on error, and if the upgrade never happens or the session panics.
pub struct Admitted {
    clients: Arc<Clients>,
    address: Option<IpAddr>,
    metrics: Arc<Metrics>,
}

impl Clients {
    /// A place for a client from `address`, or the limit it is over.
    pub fn admit(
        self: &Arc<Self>,
        address: Option<IpAddr>,
        limits: &crate::config::LimitsConfig,
        metrics: &Arc<Metrics>,
    ) -> Result<Admitted, Limit> {
        let address = address.map(|ip| ip.to_canonical());
        let mut counts = self.by_address.lock().unwrap_or_else(|p| p.into_inner());
        let total: usize = counts.values().sum();
        if total >= limits.websocket_clients {
            return Err(Limit::websocket_clients);
        }
        let count = counts.entry(address).or_insert(0);
        if *count >= limits.websocket_clients_per_address {
            return Err(Limit::websocket_clients_per_address);
        }
        *count += 1;
        metrics.websocket_clients().inc();
        Ok(Admitted {
            clients: self.clone(),
            address,
            metrics: metrics.clone(),
        })
    }
}

impl Drop for Admitted {
    fn drop(&mut self) {
        let mut counts = self
            .clients
            .by_address
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if let Some(count) = counts.get_mut(&self.address) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                counts.remove(&self.address);
            }
        }
        self.metrics.websocket_clients().dec();
    }
}

pub async fn upgrade(
    State(state): State<WebState>,
    Extension(caller): Extension<Caller>,
    upgrade: WebSocketUpgrade,
) -> Response {
    let limits = &state.serving.limits;
    let admitted = match state.clients.admit(
        caller.peer.map(|peer| peer.ip()),
        limits,
        &state.serving.metrics,
    ) {
        Ok(admitted) => admitted,
        Err(limit) => {
            state.serving.metrics.refused(limit);
            let (status, text) = if limit == Limit::websocket_clients_per_address {
                (
                    StatusCode::TOO_MANY_REQUESTS,
                    format!(
                        "too many websockets from this address (at most {}, [limits] websocket_clients_per_address)",
                        limits.websocket_clients_per_address
                    ),
                )
            } else {
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!(
                        "too many websocket clients (at most {}, [limits] websocket_clients); try again shortly",
                        limits.websocket_clients
                    ),
                )
            };
            warn!(peer = %peer_text(caller.peer), user = %caller.principal.name, reason = %text, "Websocket refused.");
            return (
                status,
                [
                    (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
                    (header::RETRY_AFTER, "5"),
                ],
                text + "\n",
            )
                .into_response();
        }
    };
    // Frames collect in a client's write buffer until this much is there; with the default
    // (128 KiB), a thousand clients taking their snapshots at once hold 128 MB.
    // A frame's announced length is checked before its payload is read, so an oversized
    // message costs nothing.
    upgrade
        .write_buffer_size(WRITE_BUFFER)
        .max_message_size(limits.websocket_message_bytes)
        .max_frame_size(limits.websocket_message_bytes)
        .on_upgrade(move |socket| session(state, caller, socket, admitted))
}

/// The error frame a client gets before the socket closes because its credential went.
fn ended() -> Value {
    json!({"error": "the session ended or the token was revoked; log in again"})
}

async fn session(state: WebState, caller: Caller, mut socket: WebSocket, admitted: Admitted) {
    let _admitted = admitted;
    // Subscribe before taking the snapshot, so nothing falls between the two.
    let mut live = state.live.subscribe();
    let snapshot: Vec<Utf8Bytes> = {
        let mirror = state.retained.read().unwrap_or_else(|p| p.into_inner());
        mirror.values().cloned().collect()
    };
    for text in snapshot {
        if socket.feed(WsMessage::Text(text)).await.is_err() {
            return;
        }
    }
    if socket.flush().await.is_err() {
        return;
    }
    let mut recheck = tokio::time::interval(RECHECK);
    recheck.reset();
    loop {
        tokio::select! {
            _ = recheck.tick() => {
                if state.auth.revalidate(&caller.principal).is_none() {
                    let _ = socket.send(WsMessage::Text(ended().to_string().into())).await;
                    let _ = socket.send(WsMessage::Close(None)).await;
                    return;
                }
            },
            message = live.recv() => {
                // Everything that is already waiting goes out in one write: a thousand clients
                // each woken for every frame would spend the machine on wake-ups and syscalls.
                let mut next = Some(message);
                let mut batch = 0;
                while let Some(message) = next.take() {
                    let text = match message {
                        Ok(text) => text,
                        Err(RecvError::Lagged(missed)) => json!({"error": format!("this client fell behind; {missed} messages were dropped")}).to_string().into(),
                        Err(RecvError::Closed) => return,
                    };
                    if socket.feed(WsMessage::Text(text)).await.is_err() {
                        return;
                    }
                    batch += 1;
                    if batch < MAX_BATCH {
                        next = match live.try_recv() {
                            Ok(text) => Some(Ok(text)),
                            Err(TryRecvError::Empty) => None,
                            Err(TryRecvError::Lagged(missed)) => Some(Err(RecvError::Lagged(missed))),
                            Err(TryRecvError::Closed) => Some(Err(RecvError::Closed)),
                        };
                    }
                }
                if socket.flush().await.is_err() {
                    return;
                }
            },
            incoming = socket.recv() => match incoming {
                Some(Ok(WsMessage::Text(text))) => {
                    match handle_frame(&state, &caller, text.as_str()).await {
                        Ok(()) => {}
                        Err(Refusal::Frame(error)) => {
                            if socket.send(WsMessage::Text(error.to_string().into())).await.is_err() {
                                return;
                            }
                        }
                        Err(Refusal::Ended) => {
                            let _ = socket.send(WsMessage::Text(ended().to_string().into())).await;
                            let _ = socket.send(WsMessage::Close(None)).await;
                            return;
                        }
                    }
                }
                Some(Ok(WsMessage::Binary(_))) => {
                    let error = json!({"error": "binary frames are not understood; send JSON text frames"});
                    if socket.send(WsMessage::Text(error.to_string().into())).await.is_err() {
                        return;
                    }
                }
                Some(Ok(WsMessage::Close(_))) | None => return,
                Some(Ok(_)) => {}
                Some(Err(err)) => {
                    // The only way to tell a message over the limit from the error alone.
                    if err.to_string().contains("Message too long") {
                        state.serving.metrics.refused(Limit::websocket_message);
                        warn!(peer = %peer_text(caller.peer), user = %caller.principal.name, cause = %err, "Websocket message over [limits] websocket_message_bytes; closing.");
                        let reason = format!("a message may be at most {} bytes", state.serving.limits.websocket_message_bytes);
                        let _ = socket.send(WsMessage::Close(Some(CloseFrame { code: 1009, reason: reason.into() }))).await;
                    } else {
                        debug!(cause = %err, "Websocket closed with an error.");
                    }
                    return;
                }
            },
        }
    }
}

enum Refusal {
    /// Answered with this error frame; the connection stays open.
    Frame(Value),
    /// The credential is no longer valid: the connection closes.
    Ended,
}

/// Publishes a browser's command frame, if the topic is a command topic and the caller's role
/// allows it.
async fn handle_frame(state: &WebState, caller: &Caller, text: &str) -> Result<(), Refusal> {
    let frame: Value = match serde_json::from_str(text) {
        Ok(frame) => frame,
        Err(err) => {
            return Err(Refusal::Frame(
                json!({"error": format!("invalid JSON: {err}")}),
            ))
        }
    };
    let Some(topic) = frame.get("topic").and_then(Value::as_str) else {
        return Err(Refusal::Frame(
            json!({"error": "a frame needs a `topic` string"}),
        ));
    };
    let needed = state
        .topics
        .parse(topic)
        .as_ref()
        .and_then(crate::auth::publish_role);
    let Some(needed) = needed else {
        return Err(Refusal::Frame(json!({
            "error": format!(
                "only command topics can be published: {base}/<phone>/cmd/<command>, {base}/group/<group>/cmd/<command>, {base}/directory/set, {base}/bridge/<agent>/reminders/cancel",
                base = state.topics.base()
            ),
            "topic": topic,
        })));
    };
    // The role now, not at connect time: a user's role may have changed, a token been revoked.
    let Some(role) = state.auth.revalidate(&caller.principal) else {
        warn!(peer = %peer_text(caller.peer), user = %caller.principal.name, topic, reason = "credential no longer valid", "Websocket command refused.");
        return Err(Refusal::Ended);
    };
    if role < needed {
        let reason = format!(
            "publishing on this topic needs the {needed} role; `{}` is {role}",
            caller.principal.name
        );
        warn!(peer = %peer_text(caller.peer), user = %caller.principal.name, topic, reason, "Websocket command refused.");
        return Err(Refusal::Frame(json!({"error": reason, "topic": topic})));
    }
    let payload = match frame.get("payload") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(text)) => text.as_bytes().to_vec(),
        Some(other) => other.to_string().into_bytes(),
    };
    state.mqtt.publish(topic.to_string(), payload, false).await;
    Ok(())
}
