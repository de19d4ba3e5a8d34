//! The web side: the `/ws` adapter, the REST API and the Manager page.
//!
//! It is an MQTT client like any other: it subscribes to everything under the base topic, keeps
//! the retained topics it has seen (a mirror of the broker, for the websocket snapshot and the
//! REST API), and publishes what browsers send to command topics.

pub mod api;
mod logo;
pub mod manager;
pub mod ws;

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use axum::extract::ws::Utf8Bytes;
use axum::routing::get;
use axum::Router;
use serde_json::Value;
use tokio::sync::{broadcast, mpsc};
use tokio_util::sync::CancellationToken;

use crate::agent::Agent;
use crate::auth::Auth;
use crate::model::CommandKind;
use crate::mqtt::{self, Message, Mqtt};
use crate::shutdown::Lifecycle;
use crate::topics::Topics;

/// A message as websocket clients see it, `{"topic", "payload", "retained"}`, as JSON text.
/// A JSON payload is put in as it came (it is checked, not parsed into a tree and written
/// again); anything else (`online`) becomes a string.
pub fn frame_text(message: &Message, retained: bool) -> String {
    let payload = &message.payload;
    let json = serde_json::from_slice::<serde::de::IgnoredAny>(payload)
        .ok()
        .and_then(|_| std::str::from_utf8(payload).ok());
    let mut text = String::with_capacity(message.topic.len() + payload.len() + 48);
    text.push_str("{\"topic\":");
    text.push_str(&Value::from(message.topic.as_str()).to_string());
    text.push_str(",\"payload\":");
    match json {
        Some(json) => text.push_str(json.trim()),
        None => text.push_str(&Value::from(String::from_utf8_lossy(payload)).to_string()),
    }
    text.push_str(if retained {
        ",\"retained\":true}"
    } else {
        ",\"retained\":false}"
    });
    text
}

/// What the web handlers share.
#[derive(Debug, Clone)]
pub struct WebState {
    pub topics: Topics,
    pub mqtt: Mqtt,
    /// Retained topics as last seen: each one's frame (as websocket clients get it), by topic.
    pub retained: Arc<RwLock<BTreeMap<String, Utf8Bytes>>>,
    /// Every message, serialised once, for the websocket clients.
    pub live: broadcast::Sender<Utf8Bytes>,
    /// Who may do what: `/ws` checks each command frame against it.
    pub auth: Auth,
    /// `[limits]` and the counters.
    pub serving: Serving,
    /// The websocket clients connected now, counted against `[limits]`.
    pub clients: Arc<ws::Clients>,
}

/// The web side's limits and where its refusals are counted.
#[derive(Debug, Clone)]
pub struct Serving {
    pub limits: crate::config::LimitsConfig,
    pub metrics: Arc<crate::metrics::Metrics>,
}

/// Starts the web adapter's MQTT session and returns the state its routes need.
pub fn start(
    base_topic: &str,
    session: mqtt::SessionOptions,
    lifecycle: &Lifecycle,
    auth: Auth,
    serving: Serving,
) -> WebState {
    let topics = Topics::new(base_topic);
    let session = mqtt::SessionOptions {
        subscriptions: vec![topics.all_filter()],
        metrics: Some(serving.metrics.clone()),
        supervisor: Some(lifecycle.supervisor.clone()),
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
        auth,
        serving,
        clients: Arc::default(),
    };
    // Restarted after a panic; the session's channel outlives each run.
    let (task, incoming, stop) = (
        state.clone(),
        crate::supervise::Relay::new(incoming),
        lifecycle.work.clone(),
    );
    lifecycle
        .supervisor
        .spawn(&lifecycle.work_tracker, "web_mirror", move || {
            let (state, incoming, stop) = (task.clone(), incoming.clone(), stop.clone());
            async move { incoming.run(|rx| mirror(state, rx, stop)).await }
        });
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
        // Retained by anyone who may publish there: what does not parse as its kind is dropped.
        if retained {
            let admissible = state
                .topics
                .parse(&message.topic)
                .is_some_and(|topic| api::admissible(&topic, &message.payload));
            if !admissible {
                state
                    .serving
                    .metrics
                    .refused(crate::metrics::Limit::foreign_retained);
                tracing::warn!(topic = %message.topic, bytes = message.payload.len(), "A retained message that is not what its topic carries was ignored.");
                continue;
            }
        }
        // Live traffic nobody watches is not even serialised.
        if !retained && state.live.receiver_count() == 0 {
            continue;
        }
        let message = without_secrets(&state.topics, message);
        // Shared, not copied, by every client it goes to.
        let frame = Utf8Bytes::from(frame_text(&message, retained));
        if retained {
            let mut mirror = state.retained.write().unwrap_or_else(|p| p.into_inner());
            if message.payload.is_empty() {
                mirror.remove(&message.topic);
            } else {
                mirror.insert(message.topic, frame.clone());
            }
        }
        // No receivers is fine: nobody is watching.
        let _ = state.live.send(frame);
    }
}

/// What browsers (and viewers) never see of a command: the password a `cmd/adopt` carries to the
/// agent, and the values of secret settings (SIP and admin passwords) in a `cmd/configure`,
/// are shown as `***`.
fn without_secrets(topics: &Topics, message: Message) -> Message {
    use crate::topics::Topic;
    let command = match topics.parse(&message.topic) {
        Some(Topic::Command { command, .. } | Topic::GroupCommand { command, .. }) => command,
        _ => return message,
    };
    if command != CommandKind::Adopt.name() && command != CommandKind::Configure.name() {
        return message;
    }
    let Ok(Value::Object(mut fields)) = serde_json::from_slice::<Value>(&message.payload) else {
        return message;
    };
    if fields.contains_key("password") {
        fields.insert("password".into(), Value::from("***"));
    }
    if let Some(Value::Object(settings)) = fields.get_mut("settings") {
        for (key, value) in settings.iter_mut() {
            if crate::profile::is_secret_setting(key) {
                *value = Value::from("***");
            }
        }
    }
    Message {
        payload: Value::Object(fields).to_string().into_bytes().into(),
        ..message
    }
}

/// The Manager page, `/ws`, the REST API, the logo upload (handed to `agent`) and the login
/// routes. Everything but `/login` is behind the authentication guard. Request bodies are
/// limited to `[limits] http_body_bytes` (a logo upload to `image_bytes`), each refusal a 413
/// that says so, counted.
pub fn router(state: WebState, agent: Agent) -> Router {
    let auth = state.auth.clone();
    let serving = state.serving.clone();
    Router::new()
        .merge(manager::routes())
        .route("/ws", get(ws::upgrade))
        .route("/metrics", get(metrics))
        .merge(api::router())
        .with_state(state)
        .merge(crate::auth::http::guarded_routes(auth.clone()))
        .merge(logo::router(agent, &serving))
        .layer(axum::middleware::from_fn_with_state(
            auth.clone(),
            crate::auth::http::guard,
        ))
        .merge(crate::auth::http::login_routes(auth))
        .layer(axum::extract::DefaultBodyLimit::max(
            serving.limits.http_body_bytes,
        ))
        .layer(axum::middleware::from_fn_with_state(serving, body_refusals))
}

/// Marks a 413 already counted under its own limit (a logo's `image_bytes`).
#[derive(Clone, Copy)]
pub(crate) struct BodyRefusalCounted;

/// Counts a body over `[limits] http_body_bytes` and says so, instead of axum's bare
/// "length limit exceeded".
async fn body_refusals(
    axum::extract::State(serving): axum::extract::State<Serving>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let response = next.run(request).await;
    if response.status() != axum::http::StatusCode::PAYLOAD_TOO_LARGE
        || response.extensions().get::<BodyRefusalCounted>().is_some()
    {
        return response;
    }
    serving.metrics.refused(crate::metrics::Limit::http_body);
    (
        axum::http::StatusCode::PAYLOAD_TOO_LARGE,
        format!(
            "the request body is larger than {} bytes ([limits] http_body_bytes)\n",
            serving.limits.http_body_bytes
        ),
    )
        .into_response()
}

/// `/metrics`: the Prometheus text exposition, for anyone signed in (a viewer's API token is
/// what a scraper is given).
async fn metrics(
    axum::extract::State(state): axum::extract::State<WebState>,
) -> impl axum::response::IntoResponse {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.serving.metrics.render(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn frame(payload: &str, retained: bool) -> Value {
        let message = Message {
            topic: "phone2mqtt/0015654aa937".into(),
            payload: bytes::Bytes::from(payload.to_string()),
            retained: false,
        };
        serde_json::from_str(&frame_text(&message, retained)).expect("a frame is JSON")
    }

    #[test]
    fn browsers_never_see_passwords_in_commands() {
        let topics = Topics::new("phone2mqtt");
        let scrub = |topic: &str, payload: Value| {
            let message = Message {
                topic: topic.into(),
                payload: bytes::Bytes::from(payload.to_string()),
                retained: false,
            };
            serde_json::from_slice::<Value>(&without_secrets(&topics, message).payload).unwrap()
        };
        let adopt = scrub(
            "phone2mqtt/0015654aa937/cmd/adopt",
            json!({"address": "10.0.0.5", "password": "hunter22"}),
        );
        assert_eq!(adopt, json!({"address": "10.0.0.5", "password": "***"}));
        let configure = scrub(
            "phone2mqtt/group/all/cmd/configure",
            json!({"settings": {"account.1.password": "sip-secret", "P34": "gs-secret", "language": "Deutsch"}}),
        );
        assert_eq!(
            configure,
            json!({"settings": {"account.1.password": "***", "P34": "***", "language": "Deutsch"}})
        );
        let dial = scrub("phone2mqtt/0015654aa937/cmd/dial", json!({"number": "123"}));
        assert_eq!(dial, json!({"number": "123"}));
    }

    #[test]
    fn json_payloads_stay_json_and_the_rest_become_strings() {
        assert_eq!(
            frame("{\"dnd\": true, \"lines\": [1, 2]}\n", true),
            json!({"topic": "phone2mqtt/0015654aa937", "payload": {"dnd": true, "lines": [1, 2]}, "retained": true})
        );
        assert_eq!(frame("online", false)["payload"], "online");
        assert_eq!(frame("\"quoted\"", false)["payload"], "quoted");
        assert_eq!(frame("{broken", false)["payload"], "{broken");
        assert_eq!(frame("", false)["payload"], "");
        assert_eq!(frame("42", false)["payload"], 42);
    }
}
