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

use axum::extract::ws::{Message as WsMessage, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::response::Response;
use axum::Extension;
use futures_util::SinkExt;
use serde_json::{json, Value};
use tokio::sync::broadcast::error::{RecvError, TryRecvError};
use tracing::{debug, warn};

use crate::auth::http::Caller;
use crate::auth::peer_text;
use crate::web::WebState;

/// Frames sent in one write, at most.
const MAX_BATCH: usize = 256;
/// Bytes a client's frames collect to before they are written.
const WRITE_BUFFER: usize = 16 * 1024;

/// How often a connected client's credential is checked again when it sends nothing.
const RECHECK: std::time::Duration = std::time::Duration::from_secs(30);

pub async fn upgrade(
    State(state): State<WebState>,
    Extension(caller): Extension<Caller>,
    upgrade: WebSocketUpgrade,
) -> Response {
    // Frames collect in a client's write buffer until this much is there; with the default
    // (128 KiB), a thousand clients taking their snapshots at once hold 128 MB.
    upgrade
        .write_buffer_size(WRITE_BUFFER)
        .on_upgrade(move |socket| session(state, caller, socket))
}

/// The error frame a client gets before the socket closes because its credential went.
fn ended() -> Value {
    json!({"error": "the session ended or the token was revoked; log in again"})
}

async fn session(state: WebState, caller: Caller, mut socket: WebSocket) {
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
                    debug!(cause = %err, "Websocket closed with an error.");
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
