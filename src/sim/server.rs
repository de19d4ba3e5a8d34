//! The simulated phone's HTTP port.

use std::net::SocketAddr;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{header, HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;

use super::personality::Request;
use super::phone::SimPhone;

#[derive(Debug, Deserialize)]
struct RingQuery {
    number: String,
    name: Option<String>,
}

/// The phone's HTTP port: the vendor's Action URI API, plus `/sim/...` to play the people
/// around it (someone calls, someone picks up, someone presses OK).
pub(super) fn router(phone: SimPhone) -> Router {
    fn answer(result: Result<(), String>) -> Response {
        match result {
            Ok(()) => (StatusCode::OK, "OK\n").into_response(),
            Err(reason) => (StatusCode::CONFLICT, format!("{reason}\n")).into_response(),
        }
    }
    Router::new()
        .route(
            "/sim/state",
            get(|State(phone): State<SimPhone>| async move { Json(phone.snapshot()) }),
        )
        .route(
            "/sim/ring",
            post(
                |State(phone): State<SimPhone>, Query(q): Query<RingQuery>| async move {
                    answer(phone.ring(&q.number, q.name.as_deref()))
                },
            ),
        )
        .route(
            "/sim/answer",
            post(|State(phone): State<SimPhone>| async move { answer(phone.local_answer()) }),
        )
        .route(
            "/sim/remote_answer",
            post(|State(phone): State<SimPhone>| async move { answer(phone.remote_answer()) }),
        )
        .route(
            "/sim/remote_hangup",
            post(|State(phone): State<SimPhone>| async move { answer(phone.remote_hangup()) }),
        )
        .route(
            "/sim/key/{n}",
            post(
                |State(phone): State<SimPhone>,
                 axum::extract::Path(n): axum::extract::Path<u32>| async move {
                    answer(phone.press_key(n))
                },
            ),
        )
        .route(
            "/sim/confirm",
            post(|State(phone): State<SimPhone>| async move {
                phone.confirm_remote_control();
                answer(Ok(()))
            }),
        )
        .fallback(action_uri)
        .with_state(phone)
}

async fn action_uri(
    State(phone): State<SimPhone>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let request = Request {
        method,
        target: uri
            .path_and_query()
            .map(|pq| pq.as_str().to_string())
            .unwrap_or_default(),
        authorization: headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string),
        body: String::from_utf8_lossy(&body).into_owned(),
    };
    let reply = phone.handle(request, peer);
    let mut response = (
        StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        reply.body,
    )
        .into_response();
    for (name, value) in reply.headers {
        if let Ok(value) = header::HeaderValue::from_str(&value) {
            response.headers_mut().insert(name, value);
        }
    }
    response
}
