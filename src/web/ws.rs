//! `/ws`: MQTT traffic as JSON frames (design.md §4).
//!
//! On connect a client gets every retained message under the base topic (`"retained": true`),
//! then live traffic. What it sends is published as if from an MQTT client, but only to command
//! topics (phone and group commands, directory imports, reminder cancellations); anything else
//! is answered with an error frame and the connection stays open.

use axum::extract::ws::{Message as WsMessage, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::response::Response;
use futures_util::SinkExt;
use serde_json::{json, Value};
use tokio::sync::broadcast::error::{RecvError, TryRecvError};
use tracing::debug;

use crate::topics::Topic;
use crate::web::WebState;

/// Frames sent in one write, at most.
const MAX_BATCH: usize = 256;
/// Bytes a client's frames collect to before they are written.
const WRITE_BUFFER: usize = 16 * 1024;

pub async fn upgrade(State(state): State<WebState>, upgrade: WebSocketUpgrade) -> Response {
    // Frames collect in a client's write buffer until this much is there; with the default
    // (128 KiB), a thousand clients taking their snapshots at once hold 128 MB.
    upgrade
        .write_buffer_size(WRITE_BUFFER)
        .on_upgrade(move |socket| session(state, socket))
}

async fn session(state: WebState, mut socket: WebSocket) {
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
    loop {
        tokio::select! {
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
                    if let Some(error) = handle_frame(&state, text.as_str()).await {
                        if socket.send(WsMessage::Text(error.to_string().into())).await.is_err() {
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

/// Publishes a browser's command frame; returns an error frame when it is refused.
async fn handle_frame(state: &WebState, text: &str) -> Option<Value> {
    let frame: Value = match serde_json::from_str(text) {
        Ok(frame) => frame,
        Err(err) => return Some(json!({"error": format!("invalid JSON: {err}")})),
    };
    let Some(topic) = frame.get("topic").and_then(Value::as_str) else {
        return Some(json!({"error": "a frame needs a `topic` string"}));
    };
    let allowed = matches!(
        state.topics.parse(topic),
        Some(
            Topic::Command { .. }
                | Topic::GroupCommand { .. }
                | Topic::DirectorySet
                | Topic::RemindersCancel(_)
        )
    );
    if !allowed {
        return Some(json!({
            "error": format!(
                "only command topics can be published: {base}/<phone>/cmd/<command>, {base}/group/<group>/cmd/<command>, {base}/directory/set, {base}/bridge/<agent>/reminders/cancel",
                base = state.topics.base()
            ),
            "topic": topic,
        }));
    }
    let payload = match frame.get("payload") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(text)) => text.as_bytes().to_vec(),
        Some(other) => other.to_string().into_bytes(),
    };
    state.mqtt.publish(topic.to_string(), payload, false).await;
    None
}
