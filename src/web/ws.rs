//! `/ws`: MQTT traffic as JSON frames (design.md §4).
//!
//! On connect a client gets every retained message under the base topic (`"retained": true`),
//! then live traffic. What it sends is published as if from an MQTT client, but only to command
//! topics (phone and group commands, directory imports, reminder cancellations); anything else
//! is answered with an error frame and the connection stays open.

use std::sync::Arc;

use axum::extract::ws::{Message as WsMessage, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::response::Response;
use serde_json::{json, Value};
use tokio::sync::broadcast::error::RecvError;
use tracing::debug;

use crate::topics::Topic;
use crate::web::WebState;

pub async fn upgrade(State(state): State<WebState>, upgrade: WebSocketUpgrade) -> Response {
    upgrade.on_upgrade(move |socket| session(state, socket))
}

async fn session(state: WebState, mut socket: WebSocket) {
    // Subscribe before taking the snapshot, so nothing falls between the two.
    let mut live = state.live.subscribe();
    let snapshot: Vec<Arc<str>> = {
        let mirror = state.retained.read().unwrap_or_else(|p| p.into_inner());
        mirror.values().cloned().collect()
    };
    for text in snapshot {
        if socket.send(WsMessage::Text(Utf8Bytes::from(&*text))).await.is_err() {
            return;
        }
    }
    loop {
        tokio::select! {
            message = live.recv() => match message {
                Ok(text) => {
                    if socket.send(WsMessage::Text(Utf8Bytes::from(&*text))).await.is_err() {
                        return;
                    }
                }
                Err(RecvError::Lagged(missed)) => {
                    let frame = json!({"error": format!("this client fell behind; {missed} messages were dropped")});
                    if socket.send(WsMessage::Text(frame.to_string().into())).await.is_err() {
                        return;
                    }
                }
                Err(RecvError::Closed) => return,
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
