//! The one error type of the people's HTTP side: every JSON error the REST API (`web::api`,
//! `web::logo`), the login and user routes and the authentication guard (`auth::http`) answer
//! is an [`ApiError`], turned into a response here: its status, and the body
//! `{"error": "<message>"}`, with the command's `transaction` where there is one. The Manager's
//! script reads `error`.
//!
//! It sits below both `auth` and `web` (the guard cannot use `web`), and knows neither: each
//! variant carries what its message needs as text. A message never holds a secret: no password,
//! token, session id or login secret is ever put in one.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

/// Every way a request on the people's side fails, with its status.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ApiError {
    // The guard (`auth::http::guard` and `login_guard`).
    /// 421: a `Host` that is not one of the gateway's names (DNS rebinding).
    #[error("the Host header is not one of this gateway's names (set [http] public_url or allowed_hosts)")]
    ForeignHost,
    /// 403: another site's `Origin`.
    #[error("cross-origin request")]
    CrossOrigin,
    /// 401
    #[error("the Authorization header must be `Bearer <API token>`")]
    BadAuthorization,
    /// 401
    #[error("unknown or revoked API token")]
    UnknownToken,
    /// 401; the guard also clears the cookie.
    #[error("the session has ended; log in again")]
    SessionEnded,
    /// 401; a page request is sent to the login form instead.
    #[error("authentication required: log in, or send `Authorization: Bearer <API token>`")]
    Unauthenticated,
    /// 403: what the browser adds by itself is not enough for a change or `/ws`.
    #[error("a request with the session cookie must carry an Origin header")]
    CookieWithoutOrigin,
    /// 429: the one-time login link, tried too often from one address.
    #[error("too many failed logins from this address; wait a minute")]
    TooManyLogins,
    /// 403: the caller's role is below what the action needs; the reason names both.
    #[error("{0}")]
    RoleTooLow(String),

    // Users (`POST /api/users`).
    /// 400
    #[error(
        "expected {{\"name\", \"password\", \"role\": \"viewer\" | \"operator\" | \"admin\"}}"
    )]
    BadUserForm,
    /// 400: the user store's reason (a name or password it does not take).
    #[error("{0}")]
    InvalidUser(String),
    /// 409
    #[error("{0}")]
    UserExists(String),
    /// 500; the cause is in the gateway's log only.
    #[error("the user file could not be written; see the gateway's log")]
    UserFileUnwritten,
    /// 500: the task adding the user did not finish.
    #[error("adding the user failed")]
    AddingUserFailed,

    // The REST API (`web::api`, `web::logo`).
    /// 400: a body that starts like a JSON object and is not one.
    #[error("the body is not valid JSON")]
    BadJson,
    /// 404: the phone reference as given.
    #[error("unknown phone `{0}`")]
    UnknownPhone(String),
    /// 504, with the command's transaction.
    #[error("no result within {wait} s")]
    NoResult { wait: f64, transaction: String },
    /// 503
    #[error("the gateway is stopping")]
    Stopping,
    /// 400: the phone cannot show a logo, or the image is unusable.
    #[error("{0}")]
    UnusableLogo(String),
    /// 413: the image file is over `[limits] image_bytes`.
    #[error("{0}")]
    LogoTooLarge(String),
    /// 422: the image's width or height is over `[limits] image_pixels`.
    #[error("{0}")]
    LogoTooManyPixels(String),
    /// 500: the logo's conversion did not finish, or the data directory refused it.
    #[error("{0}")]
    LogoFailed(String),
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        use ApiError::*;
        match self {
            ForeignHost => StatusCode::MISDIRECTED_REQUEST,
            BadAuthorization | UnknownToken | SessionEnded | Unauthenticated => {
                StatusCode::UNAUTHORIZED
            }
            CrossOrigin | CookieWithoutOrigin | RoleTooLow(_) => StatusCode::FORBIDDEN,
            TooManyLogins => StatusCode::TOO_MANY_REQUESTS,
            BadUserForm | InvalidUser(_) | BadJson | UnusableLogo(_) => StatusCode::BAD_REQUEST,
            UserExists(_) => StatusCode::CONFLICT,
            UserFileUnwritten | AddingUserFailed | LogoFailed(_) => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
            UnknownPhone(_) => StatusCode::NOT_FOUND,
            LogoTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            LogoTooManyPixels(_) => StatusCode::UNPROCESSABLE_ENTITY,
            NoResult { .. } => StatusCode::GATEWAY_TIMEOUT,
            Stopping => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let mut body = json!({ "error": self.to_string() });
        if let ApiError::NoResult { transaction, .. } = self {
            body["transaction"] = Value::String(transaction);
        }
        (status, Json(body)).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn answer(err: ApiError) -> (StatusCode, String) {
        let response = err.into_response();
        let status = response.status();
        let body = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .unwrap();
        (status, String::from_utf8(body.to_vec()).unwrap())
    }

    #[tokio::test]
    async fn a_status_and_the_error_in_json() {
        assert_eq!(
            answer(ApiError::UnknownPhone("lobby".into())).await,
            (
                StatusCode::NOT_FOUND,
                r#"{"error":"unknown phone `lobby`"}"#.into()
            )
        );
        assert_eq!(
            answer(ApiError::NoResult {
                wait: 0.5,
                transaction: "t-1".into()
            })
            .await,
            (
                StatusCode::GATEWAY_TIMEOUT,
                r#"{"error":"no result within 0.5 s","transaction":"t-1"}"#.into()
            )
        );
        assert_eq!(
            answer(ApiError::BadUserForm).await,
            (
                StatusCode::BAD_REQUEST,
                r#"{"error":"expected {\"name\", \"password\", \"role\": \"viewer\" | \"operator\" | \"admin\"}"}"#.into()
            )
        );
    }
}
