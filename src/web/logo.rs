//! `POST /api/phones/<id>/logo` with an image as the body (the Manager's upload, admins only):
//! converted for the phone's screen and hosted by the agent; the answer's `url` is then given
//! to the `logo` command.

use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::{Extension, Json, Router};
use serde_json::json;

use crate::agent::logo::Refused;
use crate::agent::Agent;
use crate::auth::http::Caller;
use crate::auth::Role;
use crate::http_error::ApiError;
use crate::metrics::Limit;
use axum::response::IntoResponse;

/// The upload route, to be served behind the people's authentication guard; its body may be
/// `[limits] image_bytes`, a larger one is refused (413) and counted as `image_bytes`.
pub fn router(agent: Agent, serving: &crate::web::Serving) -> Router {
    Router::new()
        .route(
            "/api/phones/{id}/logo",
            axum::routing::post(upload_logo)
                .layer(DefaultBodyLimit::max(serving.limits.image_bytes)),
        )
        .with_state(agent)
}

async fn upload_logo(
    State(agent): State<Agent>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    body: Result<axum::body::Bytes, BytesRejection>,
) -> Result<axum::response::Response, ApiError> {
    caller.require(Role::Admin, "uploading a logo")?;
    let body = match body {
        Ok(body) => body,
        Err(rejection) if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE => {
            agent.metrics().refused(Limit::image_bytes);
            let mut refused = ApiError::LogoTooLarge(format!(
                "the image is over {} bytes ([limits] image_bytes)",
                agent.image_bytes()
            ))
            .into_response();
            // Counted here, under its own limit, not again as `http_body`.
            refused
                .extensions_mut()
                .insert(crate::web::BodyRefusalCounted);
            return Ok(refused);
        }
        Err(rejection) => return Err(ApiError::UnusableLogo(rejection.body_text())),
    };
    match agent.upload_logo(&id, body).await {
        Ok((logo, url)) => Ok(Json(json!({
            "url": url,
            "width": logo.width,
            "height": logo.height,
        }))
        .into_response()),
        Err(Refused::UnknownPhone) => Err(ApiError::UnknownPhone(id)),
        Err(Refused::Unusable(err)) => Err(ApiError::UnusableLogo(err)),
        Err(Refused::TooLarge(err)) => Err(ApiError::LogoTooLarge(err)),
        Err(Refused::TooManyPixels(err)) => Err(ApiError::LogoTooManyPixels(err)),
        Err(Refused::Failed(err)) => Err(ApiError::LogoFailed(err)),
    }
}
