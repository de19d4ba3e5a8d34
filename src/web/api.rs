//! The REST API: the fleet as the broker's retained messages describe it, and the vendor tables.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::Query;
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::auth::http::Caller;
use crate::http_error::ApiError;
use crate::model::PhoneId;
use crate::phone_vendors;
use crate::topics::Topic;
use crate::web::WebState;

pub fn router() -> Router<WebState> {
    Router::new()
        .route("/api/info", get(info))
        .route(
            "/api/vendors",
            get(|| async { Json(phone_vendors::docs()) }),
        )
        .route("/api/phones", get(phones))
        .route("/api/phones/{id}", get(phone))
        .route("/api/phones/{id}/cmd/{command}", post(send_command))
}

#[derive(Debug, Deserialize)]
struct SendQuery {
    /// Seconds to wait for the result; default 10.
    timeout: Option<f64>,
}

/// Publishes a command and waits for its result: 200 when it is `ok`, 502 when it is an
/// error, 504 when none came in time. The body is the result JSON.
async fn send_command(
    State(state): State<WebState>,
    Extension(caller): Extension<Caller>,
    Path((phone, command)): Path<(String, String)>,
    Query(query): Query<SendQuery>,
    body: Bytes,
) -> Result<Response, ApiError> {
    caller.require(
        crate::auth::command_role(&command),
        &format!("the `{command}` command"),
    )?;
    let text = String::from_utf8_lossy(&body).trim().to_string();
    let mut payload = match serde_json::from_str::<Value>(&text) {
        Ok(Value::Object(fields)) => fields,
        _ if text.is_empty() => Map::new(),
        Ok(Value::String(value)) => Map::from_iter([("value".to_string(), Value::String(value))]),
        _ if text.starts_with('{') => return Err(ApiError::BadJson),
        _ => Map::from_iter([("value".to_string(), Value::String(text.clone()))]),
    };
    let transaction = match payload.get("transaction").and_then(Value::as_str) {
        Some(transaction) => transaction.to_string(),
        None => {
            let generated = format!("rest-{}", crate::config::new_token()[..12].to_lowercase());
            payload.insert("transaction".into(), Value::String(generated.clone()));
            generated
        }
    };
    // `?timeout=NaN` parses as a float, and would panic in `from_secs_f64`.
    let wait = query.timeout.filter(|t| t.is_finite()).unwrap_or(10.0);
    let wait = Duration::from_secs_f64(wait.clamp(0.1, 120.0));
    let result_topic = state.topics.result(&phone);
    // Listen before publishing, so the result cannot slip past.
    let mut live = state.live.subscribe();
    let payload = Value::Object(payload).to_string();
    state
        .mqtt
        .publish(state.topics.command(&phone, &command), payload, false)
        .await;
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let frame = match tokio::time::timeout_at(deadline, live.recv()).await {
            Err(_) => {
                return Err(ApiError::NoResult {
                    wait: wait.as_secs_f64(),
                    transaction,
                })
            }
            Ok(Err(tokio::sync::broadcast::error::RecvError::Lagged(_))) => continue,
            Ok(Err(_)) => return Err(ApiError::Stopping),
            Ok(Ok(frame)) => frame,
        };
        let Ok(frame) = serde_json::from_str::<Value>(&frame) else {
            continue;
        };
        if frame["topic"] != result_topic.as_str()
            || frame["payload"]["transaction"] != transaction.as_str()
        {
            continue;
        }
        let result = frame["payload"].clone();
        let status = if result["status"] == "ok" {
            StatusCode::OK
        } else {
            StatusCode::BAD_GATEWAY
        };
        return Ok((status, Json(result)).into_response());
    }
}

async fn info(State(state): State<WebState>) -> Json<Value> {
    Json(json!({
        "base_topic": state.topics.base(),
        "version": env!("CARGO_PKG_VERSION"),
    }))
}

/// The most a phone's retained `info`, `state` or provisioning status may take (the gateway's
/// are a few KB); the directory and reminders lists have `agent::directory::REPORT_BYTES`.
pub const PHONE_RETAINED_BYTES: usize = 64 * 1024;

/// Whether a retained message on a phone2mqtt topic is what its kind carries: a phone's `info`,
/// `state` and provisioning status a JSON object of bounded size under a MAC, availability
/// `online`/`offline`, the directory an object and the reminders a list within their bounds. An
/// empty payload (a removal) always is. Anything else is foreign: not mirrored, never served.
pub fn admissible(topic: &Topic<'_>, payload: &[u8]) -> bool {
    if payload.is_empty() {
        return true;
    }
    let report = crate::agent::directory::REPORT_BYTES;
    let is_phone = |id: &str| PhoneId::parse(id).is_some();
    let json = |max: usize| {
        (payload.len() <= max)
            .then(|| serde_json::from_slice::<Value>(payload).ok())
            .flatten()
    };
    let object = |max: usize| json(max).is_some_and(|v| v.is_object());
    match topic {
        Topic::Info(id) | Topic::State(id) | Topic::Provisioning(id) => {
            is_phone(id) && object(PHONE_RETAINED_BYTES)
        }
        Topic::Availability(id) => is_phone(id) && matches!(payload, b"online" | b"offline"),
        Topic::BridgeState(_) => matches!(payload, b"online" | b"offline"),
        Topic::BridgeProvisioning(_) => object(PHONE_RETAINED_BYTES),
        Topic::BridgeOutbox(_) => object(1024),
        Topic::Directory => object(report),
        Topic::Reminders(_) => json(report).is_some_and(|v| v.is_array()),
        _ => true,
    }
}

/// Every phone with its `info`, `state` and `availability`, keyed by id.
fn fleet(state: &WebState) -> BTreeMap<String, Map<String, Value>> {
    let mirror = state.retained.read().unwrap_or_else(|p| p.into_inner());
    let mut phones: BTreeMap<String, Map<String, Value>> = BTreeMap::new();
    for (topic, frame) in mirror.iter() {
        let (id, field) = match state.topics.parse(topic) {
            Some(Topic::Info(id)) => (id, "info"),
            Some(Topic::State(id)) => (id, "state"),
            Some(Topic::Availability(id)) => (id, "availability"),
            _ => continue,
        };
        let Ok(Value::Object(mut frame)) = serde_json::from_str::<Value>(frame) else {
            continue;
        };
        let entry = phones.entry(id.to_string()).or_default();
        entry.insert("id".into(), Value::String(id.to_string()));
        entry.insert(field.into(), frame.remove("payload").unwrap_or_default());
    }
    phones
}

async fn phones(State(state): State<WebState>) -> Json<Vec<Map<String, Value>>> {
    Json(fleet(&state).into_values().collect())
}

async fn phone(
    State(state): State<WebState>,
    Path(reference): Path<String>,
) -> Result<Json<Map<String, Value>>, ApiError> {
    let phones = fleet(&state);
    let id = PhoneId::parse(&reference).map(|id| id.to_string());
    let found = id.as_ref().and_then(|id| phones.get(id)).or_else(|| {
        phones.values().find(|phone| {
            phone
                .get("info")
                .and_then(|info| info.get("name"))
                .and_then(Value::as_str)
                .is_some_and(|name| name.eq_ignore_ascii_case(&reference))
        })
    });
    found
        .map(|phone| Json(phone.clone()))
        .ok_or(ApiError::UnknownPhone(reference))
}
