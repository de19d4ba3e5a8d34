//! The refusals of people's routes at router level, with tower's `oneshot`: the guard in front
//! of every people's route (`Host`, credentials, `Origin`, roles) and the plain port's answer
//! once HTTPS is on. A request here needs no socket: what the guard decides depends on the
//! request's headers only. `tests/auth.rs` and `tests/tls.rs` send the same kinds of requests
//! through a running gateway's sockets, to the real Manager, API and websocket.

mod common;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use axum::routing::post;
use axum::Router;
use common::tempdir::TempDir;
use phone2mqtt::auth::http::{guard, guarded_routes, login_routes, Allowed, COOKIE};
use phone2mqtt::auth::{Auth, Role};
use serde_json::Value;
use tower::ServiceExt;

/// The address the gateway listens on, as the `Host` browsers send.
const HOST: &str = "127.0.0.1:8080";
const ORIGIN: &str = "http://127.0.0.1:8080";

/// A gateway's authentication with its data in `dir`, for browsers calling it `HOST`.
fn auth(dir: &TempDir) -> Auth {
    let auth = Auth::open(&dir.0).expect("the user file opens");
    auth.allow(Allowed::new(HOST.parse().unwrap(), None, &[]));
    auth
}

/// People's routes as the web adapter puts them together: a stand-in for the Manager's own
/// routes (a command), the account routes, all behind the guard; `/login` beside it.
fn people(auth: &Auth) -> Router {
    Router::new()
        .route(
            "/api/phones/{phone}/cmd/{command}",
            post(|| async { "reached" }),
        )
        .merge(guarded_routes(auth.clone()))
        .layer(axum::middleware::from_fn_with_state(auth.clone(), guard))
        .merge(login_routes(auth.clone()))
}

/// A request to `HOST` with these headers.
fn request(method: &str, path: &str, headers: &[(header::HeaderName, &str)]) -> Request<Body> {
    let mut builder = Request::builder()
        .method(method)
        .uri(path)
        .header(header::HOST, HOST);
    for (name, value) in headers {
        builder = builder.header(name, *value);
    }
    builder.body(Body::empty()).unwrap()
}

/// The answer's status, headers and body text.
async fn send(router: &Router, request: Request<Body>) -> (StatusCode, header::HeaderMap, String) {
    let response = router.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let body = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    (status, headers, String::from_utf8_lossy(&body).into_owned())
}

#[tokio::test]
async fn a_name_that_is_not_the_gateways_is_misdirected_before_any_credential_is_read() {
    let dir = TempDir::new();
    let auth = auth(&dir);
    let router = people(&auth);
    let token = auth.store().create_token("ops", Role::Admin).unwrap();
    let bearer = format!("Bearer {token}");
    for host in [
        "rebound.evil.example",
        "rebound.evil.example:8080",
        "127.0.0.1:9",
    ] {
        let mut wrong = request("GET", "/api/me", &[(header::AUTHORIZATION, &bearer)]);
        wrong
            .headers_mut()
            .insert(header::HOST, host.parse().unwrap());
        let (status, _, body) = send(&router, wrong).await;
        assert_eq!(status, StatusCode::MISDIRECTED_REQUEST, "{host}: {body}");
        // The login form is behind the same check.
        let mut login = request("GET", "/login", &[]);
        login
            .headers_mut()
            .insert(header::HOST, host.parse().unwrap());
        assert_eq!(
            send(&router, login).await.0,
            StatusCode::MISDIRECTED_REQUEST
        );
    }
    let mut nameless = request("GET", "/api/me", &[(header::AUTHORIZATION, &bearer)]);
    nameless.headers_mut().remove(header::HOST);
    assert_eq!(
        send(&router, nameless).await.0,
        StatusCode::MISDIRECTED_REQUEST
    );
    let (status, _, body) = send(
        &router,
        request("GET", "/api/me", &[(header::AUTHORIZATION, &bearer)]),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn without_a_valid_credential_people_are_told_how_to_authenticate() {
    let dir = TempDir::new();
    let auth = auth(&dir);
    let router = people(&auth);
    let revoked = auth.store().create_token("gone", Role::Admin).unwrap();
    auth.store().revoke_token("gone").unwrap();
    let cases = [
        (None, "authentication required"),
        (
            Some("Basic YWRtaW46YWRtaW4="),
            "must be `Bearer <API token>`",
        ),
        (
            Some("Bearer not-a-token-of-this-gateway"),
            "unknown or revoked API token",
        ),
        (Some(&*format!("Bearer {revoked}")), "unknown or revoked"),
    ];
    for (authorization, why) in cases {
        for (method, path) in [
            ("GET", "/api/me"),
            ("GET", "/api/users"),
            ("POST", "/api/phones/0015654aa937/cmd/reboot"),
        ] {
            let headers: Vec<_> = authorization
                .map(|value| (header::AUTHORIZATION, value))
                .into_iter()
                .collect();
            let (status, _, body) = send(&router, request(method, path, &headers)).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{method} {path}: {body}");
            let error: Value = serde_json::from_str(&body).expect("a JSON error");
            assert!(
                error["error"].as_str().unwrap().contains(why),
                "{authorization:?}: {body}"
            );
        }
    }
    // An ended session is told so, and its cookie is cleared.
    let cookie = format!("{COOKIE}=no-such-session");
    let (status, headers, body) = send(
        &router,
        request("GET", "/api/me", &[(header::COOKIE, &cookie)]),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert!(body.contains("the session has ended"), "{body}");
    let cleared = headers[header::SET_COOKIE].to_str().unwrap();
    assert!(
        cleared.starts_with(&format!("{COOKIE}=;")) && cleared.contains("Max-Age=0"),
        "{cleared}"
    );
}

#[tokio::test]
async fn a_browser_session_changes_state_only_with_its_own_origin() {
    let dir = TempDir::new();
    let auth = auth(&dir);
    let router = people(&auth);
    let session = auth.new_session(Some("anna"), Role::Admin);
    let cookie = format!("{COOKIE}={}", session.expose());
    let command = "/api/phones/0015654aa937/cmd/reboot";

    // Reading needs no Origin.
    let (status, _, body) = send(
        &router,
        request("GET", "/api/me", &[(header::COOKIE, &cookie)]),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let me: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(me["name"], "anna");
    assert_eq!(me["via"], "session");

    // A change without an Origin, or from another site, never reaches the route.
    for origin in [None, Some("http://evil.example"), Some("null")] {
        let mut headers = vec![(header::COOKIE, cookie.as_str())];
        headers.extend(origin.map(|o| (header::ORIGIN, o)));
        let (status, _, body) = send(&router, request("POST", command, &headers)).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{origin:?}: {body}");
        assert_ne!(body, "reached");
    }
    // A login form posted from another site is refused too.
    let (status, _, _) = send(
        &router,
        request("POST", "/login", &[(header::ORIGIN, "http://evil.example")]),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // From the Manager's own page, the change goes through.
    let (status, _, body) = send(
        &router,
        request(
            "POST",
            command,
            &[(header::COOKIE, &cookie), (header::ORIGIN, ORIGIN)],
        ),
    )
    .await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "reached"));
}

#[tokio::test]
async fn an_api_token_acts_with_its_role_and_needs_no_origin() {
    let dir = TempDir::new();
    let auth = auth(&dir);
    let router = people(&auth);
    for (role, may_list_users) in [
        (Role::Viewer, false),
        (Role::Operator, false),
        (Role::Admin, true),
    ] {
        let token = auth
            .store()
            .create_token(&format!("script-{role}"), role)
            .unwrap();
        let bearer = format!("Bearer {token}");
        let (status, _, body) = send(
            &router,
            request("GET", "/api/me", &[(header::AUTHORIZATION, &bearer)]),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let me: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(me["role"], role.to_string());
        assert_eq!(me["via"], "token");
        let (status, _, body) = send(
            &router,
            request("GET", "/api/users", &[(header::AUTHORIZATION, &bearer)]),
        )
        .await;
        let expected = if may_list_users {
            StatusCode::OK
        } else {
            StatusCode::FORBIDDEN
        };
        assert_eq!(status, expected, "{role}: {body}");
        // A program sends no Origin; its token is enough.
        let (status, _, body) = send(
            &router,
            request(
                "POST",
                "/api/phones/0015654aa937/cmd/reboot",
                &[(header::AUTHORIZATION, &bearer)],
            ),
        )
        .await;
        assert_eq!((status, body.as_str()), (StatusCode::OK, "reached"));
    }
}

#[tokio::test]
async fn with_https_on_the_plain_port_sends_page_loads_over_and_refuses_the_rest() {
    let people = Router::new().fallback(|| async { "served in clear" });
    let plain = phone2mqtt::tls::https_only(people, "https://phones.example.com:8443/");
    let https = "https://phones.example.com:8443";
    for (method, path) in [
        ("GET", "/"),
        ("GET", "/api/info"),
        ("GET", "/api/phones?x=1"),
        ("HEAD", "/login"),
    ] {
        let (status, headers, body) = send(&plain, request(method, path, &[])).await;
        assert_eq!(status, StatusCode::TEMPORARY_REDIRECT, "{method} {path}");
        assert_eq!(headers[header::LOCATION], format!("{https}{path}"));
        assert_ne!(body, "served in clear");
    }
    for (method, path) in [
        ("POST", "/api/phones/0015654aa937/cmd/reboot"),
        ("POST", "/api/phones/0015654aa937/logo"),
        ("PUT", "/api/info"),
        ("DELETE", "/api/users/anna"),
        ("POST", "/login"),
    ] {
        let (status, _, body) = send(&plain, request(method, path, &[])).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{method} {path}");
        assert!(body.contains(&format!("{https}/")), "{body}");
    }
    // A websocket is refused, not upgraded and not sent on.
    let upgrade = request(
        "GET",
        "/ws",
        &[
            (header::CONNECTION, "Upgrade"),
            (header::UPGRADE, "websocket"),
        ],
    );
    let (status, headers, _) = send(&plain, upgrade).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(!headers.contains_key(header::LOCATION));
}
