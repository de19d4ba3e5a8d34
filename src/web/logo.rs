//! `POST /api/phones/<id>/logo` with an image as the body (the Manager's upload, admins only):
//! converted for the phone's screen and hosted by the agent; the answer's `url` is then given
//! to the `logo` command.

use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json, Router};
use serde_json::json;

use crate::agent::logo::{Refused, MAX_IMAGE_BYTES};
use crate::agent::Agent;
use crate::auth::http::Caller;
use crate::auth::Role;

/// The upload route, to be served behind the people's authentication guard.
pub fn router(agent: Agent) -> Router {
    Router::new()
        .route(
            "/api/phones/{id}/logo",
            axum::routing::post(upload_logo).layer(DefaultBodyLimit::max(MAX_IMAGE_BYTES)),
        )
        .with_state(agent)
}

async fn upload_logo(
    State(agent): State<Agent>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    if let Err(refused) = caller.require(Role::Admin, "uploading a logo") {
        return refused;
    }
    let fail = |status: StatusCode, error: String| {
        (status, Json(json!({ "error": error }))).into_response()
    };
    match agent.upload_logo(&id, body).await {
        Ok((logo, url)) => Json(json!({
            "url": url,
            "width": logo.width,
            "height": logo.height,
        }))
        .into_response(),
        Err(Refused::UnknownPhone(err)) => fail(StatusCode::NOT_FOUND, err),
        Err(Refused::Unusable(err)) => fail(StatusCode::BAD_REQUEST, err),
        Err(Refused::Failed(err)) => fail(StatusCode::INTERNAL_SERVER_ERROR, err),
    }
}
