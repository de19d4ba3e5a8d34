//! The web side: the `/ws` adapter, the REST API and the Manager page.
//!
//! It is an MQTT client like any other: it subscribes to everything under the base topic, keeps
//! the retained topics it has seen (a mirror of the broker, for the websocket snapshot and the
//! REST API), and publishes what browsers send to command topics.

pub mod api;
pub mod ws;

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use axum::response::Html;
use axum::routing::get;
use axum::Router;
use serde::Serialize;
use serde_json::Value;
use tokio::sync::{broadcast, mpsc};
use tokio_util::sync::CancellationToken;

use crate::mqtt::{self, Message, Mqtt};
use crate::shutdown::Lifecycle;
use crate::topics::Topics;

const MANAGER_HTML: &str = include_str!("manager.html");

/// A message as websocket clients see it: `{"topic", "payload", "retained"}`.
#[derive(Debug, Clone, Serialize)]
pub struct Frame {
    pub topic: String,
    pub payload: Value,
    pub retained: bool,
}

impl Frame {
    /// JSON payloads stay JSON; anything else (`online`) is a string.
    pub fn from_message(message: &Message, retained: bool) -> Frame {
        let payload = serde_json::from_slice(&message.payload).unwrap_or_else(|_| {
            Value::String(String::from_utf8_lossy(&message.payload).into_owned())
        });
        Frame {
            topic: message.topic.clone(),
            payload,
            retained,
        }
    }
}

/// What the web handlers share.
#[derive(Debug, Clone)]
pub struct WebState {
    pub topics: Topics,
    pub mqtt: Mqtt,
    /// Retained topics as last seen, by topic.
    pub retained: Arc<RwLock<BTreeMap<String, Frame>>>,
    /// Every message, serialised once, for the websocket clients.
    pub live: broadcast::Sender<Arc<str>>,
}

/// Starts the web adapter's MQTT session and returns the state its routes need.
pub fn start(base_topic: &str, session: mqtt::SessionOptions, lifecycle: &Lifecycle) -> WebState {
    let topics = Topics::new(base_topic);
    let session = mqtt::SessionOptions {
        subscriptions: vec![topics.all_filter()],
        ..session
    };
    let (mqtt, incoming) = mqtt::start(
        session,
        lifecycle.sessions.clone(),
        &lifecycle.session_tracker,
    );
    let (live, _) = broadcast::channel(4096);
    let state = WebState {
        topics,
        mqtt,
        retained: Arc::default(),
        live,
    };
    lifecycle
        .work_tracker
        .spawn(mirror(state.clone(), incoming, lifecycle.work.clone()));
    state
}

/// Keeps the retained mirror and fans every message out to websocket clients.
async fn mirror(
    state: WebState,
    mut incoming: mpsc::UnboundedReceiver<Message>,
    stop: CancellationToken,
) {
    loop {
        let message = tokio::select! {
            message = incoming.recv() => match message { Some(message) => message, None => return },
            () = stop.cancelled() => return,
        };
        let retained = state.topics.is_retained(&message.topic);
        let frame = Frame::from_message(&message, retained);
        if retained {
            let mut mirror = state.retained.write().unwrap_or_else(|p| p.into_inner());
            if message.payload.is_empty() {
                mirror.remove(&message.topic);
            } else {
                mirror.insert(message.topic.clone(), frame.clone());
            }
        }
        if let Ok(text) = serde_json::to_string(&frame) {
            // No receivers is fine: nobody is watching.
            let _ = state.live.send(Arc::from(text));
        }
    }
}

/// The Manager page, `/ws` and the REST API.
pub fn router(state: WebState) -> Router {
    Router::new()
        .route("/", get(|| async { Html(MANAGER_HTML) }))
        .route("/ws", get(ws::upgrade))
        .merge(api::router())
        .with_state(state)
}
