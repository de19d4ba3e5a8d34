//! `POST /api/phones/<id>/logo` with an image as the body (the Manager's upload, admins only):
//! converted for the phone's screen and hosted by the agent; the answer's `url` is then given
//! to the `logo` command.

use axum::extract::{DefaultBodyLimit, Path, State};
use axum::{Extension, Json, Router};
use serde_json::{json, Value};

use crate::agent::logo::{Refused, MAX_IMAGE_BYTES};
use crate::agent::Agent;
use crate::auth::http::Caller;
use crate::auth::Role;
use crate::http_error::ApiError;

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
) -> Result<Json<Value>, ApiError> {
    caller.require(Role::Admin, "uploading a logo")?;
    match agent.upload_logo(&id, body).await {
        Ok((logo, url)) => Ok(Json(json!({
            "url": url,
            "width": logo.width,
            "height": logo.height,
        }))),
        Err(Refused::UnknownPhone) => Err(ApiError::UnknownPhone(id)),
        Err(Refused::Unusable(err)) => Err(ApiError::UnusableLogo(err)),
        Err(Refused::Failed(err)) => Err(ApiError::LogoFailed(err)),
    }
}
