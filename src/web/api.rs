//! The REST API: the fleet as the broker's retained messages describe it, and the vendor tables.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Map, Value};

use crate::model::PhoneId;
use crate::topics::Topic;
use crate::vendor;
use crate::web::WebState;

pub fn router() -> Router<WebState> {
    Router::new()
        .route("/api/info", get(info))
        .route("/api/vendors", get(|| async { Json(vendor::docs()) }))
        .route("/api/phones", get(phones))
        .route("/api/phones/{id}", get(phone))
}

async fn info(State(state): State<WebState>) -> Json<Value> {
    Json(json!({
        "base_topic": state.topics.base(),
        "version": env!("CARGO_PKG_VERSION"),
    }))
}

/// Every phone with its `info`, `state` and `availability`, keyed by id.
fn fleet(state: &WebState) -> BTreeMap<String, Map<String, Value>> {
    let mirror = state.retained.read().unwrap_or_else(|p| p.into_inner());
    let mut phones: BTreeMap<String, Map<String, Value>> = BTreeMap::new();
    for frame in mirror.values() {
        let (id, field) = match state.topics.parse(&frame.topic) {
            Some(Topic::Info(id)) => (id, "info"),
            Some(Topic::State(id)) => (id, "state"),
            Some(Topic::Availability(id)) => (id, "availability"),
            _ => continue,
        };
        let entry = phones.entry(id.to_string()).or_default();
        entry.insert("id".into(), Value::String(id.to_string()));
        entry.insert(field.into(), frame.payload.clone());
    }
    phones
}

async fn phones(State(state): State<WebState>) -> Json<Vec<Map<String, Value>>> {
    Json(fleet(&state).into_values().collect())
}

async fn phone(State(state): State<WebState>, Path(reference): Path<String>) -> Response {
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
    match found {
        Some(phone) => Json(phone.clone()).into_response(),
        None => (
            StatusCode::NOT_FOUND,
            Json(json!({"error": format!("unknown phone `{reference}`")})),
        )
            .into_response(),
    }
}
