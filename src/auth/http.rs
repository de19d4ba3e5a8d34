//! The HTTP side of authentication: the guard in front of every people's route (the Manager,
//! `/ws`, `/api/*`), the login page, the one-time link, logout, `/api/me` and `/api/users`.
//!
//! The guard, in order:
//! 1. `Host` must be one of the gateway's own names (the listen address, loopback names,
//!    `[http] public_url`, `[http] allowed_hosts`): a page whose domain was re-pointed at this
//!    machine (DNS rebinding) sends its own name and is refused.
//! 2. On `/ws` and every state-changing request, an `Origin` header, when present, must be one
//!    of those too (or the request's own `Host`): another site's page is refused, whatever it
//!    carries.
//! 3. Credentials: `Authorization: Bearer <API token>` or the session cookie. None: 401.
//! 4. A request authenticated by the cookie alone (what a browser adds by itself) must carry
//!    `Origin` on `/ws` and on state-changing methods.
//!
//! Then the handler checks the role the action needs (403). Each refusal is one warning in the
//! log, with the peer, method, path and reason, and never a secret. No CORS header is ever set:
//! other origins cannot read the answers.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Form, Json, Router};
use serde::Deserialize;
use serde_json::json;
use tracing::{info, warn};

use crate::auth::store::StoreError;
use crate::auth::{peer_text, Auth, Principal, Role, Via};
use crate::http_error::ApiError;

/// The session cookie's name.
pub const COOKIE: &str = "p2m_session";

const LOGIN_HTML: &str = include_str!("login.html");

/// The names a browser may call this gateway by, for the `Host` and `Origin` checks.
#[derive(Debug, Clone)]
pub struct Allowed {
    listen: IpAddr,
    ports: Vec<u16>,
    public: Option<(String, u16)>,
    names: Vec<(String, Option<u16>)>,
}

impl Allowed {
    /// `listen`: the HTTP listener's bound address; `public_url`: `[http] public_url`;
    /// `names`: `[http] allowed_hosts` (`name` for any port, `name:port` for one).
    pub fn new(listen: SocketAddr, public_url: Option<&str>, names: &[String]) -> Allowed {
        let public = public_url
            .and_then(|url| url::Url::parse(url).ok())
            .and_then(|url| {
                let host = url
                    .host_str()?
                    .trim_matches(['[', ']'])
                    .to_ascii_lowercase();
                Some((host, url.port_or_known_default()?))
            });
        let names = names
            .iter()
            .filter_map(|name| match parse_authority(name, 0) {
                Some((host, 0)) => Some((host, None)),
                Some((host, port)) => Some((host, Some(port))),
                None => None,
            })
            .collect();
        Allowed {
            listen: listen.ip(),
            ports: vec![listen.port()],
            public,
            names,
        }
    }

    /// Another port the same names are served on (a TLS listener).
    pub fn add_port(&mut self, port: u16) {
        if !self.ports.contains(&port) {
            self.ports.push(port);
        }
    }

    /// Names given in the configuration, or loopback, or the listen address itself.
    fn named(&self, host: &str, port: u16) -> bool {
        let own_port = self.ports.contains(&port);
        let loopback = matches!(host, "localhost" | "127.0.0.1" | "::1");
        let listen = !self.listen.is_unspecified() && host == self.listen.to_string();
        ((loopback || listen) && own_port)
            || self
                .public
                .as_ref()
                .is_some_and(|(h, p)| h == host && *p == port)
            || self
                .names
                .iter()
                .any(|(h, p)| h == host && p.is_none_or(|p| p == port))
    }

    /// Whether a `Host` header names this gateway. Listening on every address, any IP address
    /// with the right port is accepted too: rebinding needs a domain name, and the addresses of
    /// every interface are not known here.
    pub fn host_ok(&self, host: &str, tls: bool) -> bool {
        let Some((host, port)) = parse_authority(host, if tls { 443 } else { 80 }) else {
            return false;
        };
        self.named(&host, port)
            || (self.listen.is_unspecified()
                && host.parse::<IpAddr>().is_ok()
                && self.ports.contains(&port))
    }

    /// Whether an `Origin` header is this gateway's: a configured name, or exactly the
    /// request's own `Host` (already checked).
    pub fn origin_ok(&self, origin: &str, host: Option<&str>, tls: bool) -> bool {
        let Some((scheme, authority)) = origin.split_once("://") else {
            return false;
        };
        let default = match scheme.to_ascii_lowercase().as_str() {
            "http" => 80,
            "https" => 443,
            _ => return false,
        };
        let Some(origin) = parse_authority(authority, default) else {
            return false;
        };
        let own = host.and_then(|h| parse_authority(h, if tls { 443 } else { 80 }));
        self.named(&origin.0, origin.1) || own.as_ref() == Some(&origin)
    }
}

pub use crate::config::{is_host_name, parse_authority};

/// Who is calling, as the guard found it, for the handlers behind it.
#[derive(Debug, Clone)]
pub struct Caller {
    pub principal: Principal,
    pub peer: Option<SocketAddr>,
    pub method: Method,
    pub path: String,
}

impl Caller {
    /// [`ApiError::RoleTooLow`] (and a log line) unless the caller's role reaches `needed`.
    pub fn require(&self, needed: Role, what: &str) -> Result<(), ApiError> {
        if self.principal.role >= needed {
            return Ok(());
        }
        let reason = format!(
            "{what} needs the {needed} role; `{}` is {}",
            self.principal.name, self.principal.role
        );
        warn!(peer = %peer_text(self.peer), method = %self.method, path = %self.path, user = %self.principal.name, reason, "HTTP request refused.");
        Err(ApiError::RoleTooLow(reason))
    }
}

/// Whether the page or a JSON route: a refused page sends the browser to the login form.
fn is_page(path: &str) -> bool {
    path == "/"
}

/// The guard's refusal: a log line, then the error's answer, or the login form for a page
/// that needs a login.
fn refuse(err: ApiError, peer: Option<SocketAddr>, method: &Method, path: &str) -> Response {
    let reason = err.to_string();
    let reason = reason.as_str();
    warn!(peer = %peer_text(peer), %method, path, reason, "HTTP request refused.");
    if is_page(path) && err.status() == StatusCode::UNAUTHORIZED {
        return (
            StatusCode::SEE_OTHER,
            [
                (header::LOCATION, HeaderValue::from_static("/login")),
                (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
            ],
        )
            .into_response();
    }
    err.into_response()
}

struct Seen {
    peer: Option<SocketAddr>,
    tls: bool,
    method: Method,
    path: String,
}

impl Seen {
    fn of(request: &Request) -> Seen {
        Seen {
            peer: request
                .extensions()
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0),
            tls: request
                .extensions()
                .get::<crate::http_front::ViaTls>()
                .is_some(),
            method: request.method().clone(),
            path: request.uri().path().to_string(),
        }
    }

    fn refuse(&self, err: ApiError) -> Response {
        refuse(err, self.peer, &self.method, &self.path)
    }

    fn changes_state(&self) -> bool {
        !matches!(self.method, Method::GET | Method::HEAD | Method::OPTIONS)
    }
}

fn header_text(headers: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Steps 1 and 2: the `Host` and, where it matters, the `Origin`; the refusal, if any.
fn check_browser(auth: &Auth, seen: &Seen, headers: &HeaderMap) -> Option<Response> {
    let host = header_text(headers, header::HOST);
    if !host.is_some_and(|h| auth.host_ok(h, seen.tls)) {
        return Some(seen.refuse(ApiError::ForeignHost));
    }
    if seen.changes_state() || seen.path == "/ws" {
        if let Some(origin) = headers.get(header::ORIGIN) {
            let ok = origin
                .to_str()
                .is_ok_and(|o| auth.origin_ok(o, host, seen.tls));
            if !ok {
                return Some(seen.refuse(ApiError::CrossOrigin));
            }
        }
    }
    None
}

/// The session cookie's value, if the request has one.
pub fn session_cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value)
}

fn set_cookie(id: &str, tls: bool) -> String {
    let secure = if tls { "; Secure" } else { "" };
    format!("{COOKIE}={id}; HttpOnly; SameSite=Strict; Path=/{secure}")
}

fn clear_cookie(tls: bool) -> String {
    let secure = if tls { "; Secure" } else { "" };
    format!("{COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0{secure}")
}

/// The guard of every people's route.
pub async fn guard(State(auth): State<Auth>, mut request: Request, next: Next) -> Response {
    let seen = Seen::of(&request);
    if let Some(refused) = check_browser(&auth, &seen, request.headers()) {
        return refused;
    }
    if seen.path == "/" && seen.method == Method::GET {
        if let Some(secret) = link_secret(request.uri().query()) {
            return link_login(&auth, &seen, &secret);
        }
    }
    let headers = request.headers();
    let principal = if let Some(authorization) = headers.get(header::AUTHORIZATION) {
        let token = authorization
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim);
        let Some(token) = token else {
            return seen.refuse(ApiError::BadAuthorization);
        };
        match auth.token(token) {
            Some(principal) => principal,
            None => return seen.refuse(ApiError::UnknownToken),
        }
    } else if let Some(id) = session_cookie(headers) {
        match auth.session(id) {
            Some(principal) => principal,
            None => {
                let mut refused = seen.refuse(ApiError::SessionEnded);
                if let Ok(value) = HeaderValue::from_str(&clear_cookie(seen.tls)) {
                    refused.headers_mut().insert(header::SET_COOKIE, value);
                }
                return refused;
            }
        }
    } else {
        return seen.refuse(ApiError::Unauthenticated);
    };
    let browser = matches!(principal.via, Via::Session(_));
    if browser
        && (seen.changes_state() || seen.path == "/ws")
        && !headers.contains_key(header::ORIGIN)
    {
        return seen.refuse(ApiError::CookieWithoutOrigin);
    }
    request.extensions_mut().insert(Caller {
        principal,
        peer: seen.peer,
        method: seen.method,
        path: seen.path,
    });
    next.run(request).await
}

/// The login routes' own guard: `Host`, and `Origin` where present (a login form posted from
/// another site would log the browser in as the attacker).
pub async fn login_guard(State(auth): State<Auth>, request: Request, next: Next) -> Response {
    let seen = Seen::of(&request);
    if let Some(refused) = check_browser(&auth, &seen, request.headers()) {
        return refused;
    }
    next.run(request).await
}

/// `token=...` in the query of `/`.
fn link_secret(query: Option<&str>) -> Option<String> {
    query?
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(name, _)| *name == "token")
        .map(|(_, value)| {
            percent_encoding::percent_decode_str(value)
                .decode_utf8_lossy()
                .into_owned()
        })
}

/// Headers every page for people carries: no framing by other sites (clickjacking), no
/// referrer to other sites (an address never travels on; `same-origin` rather than
/// `no-referrer`, which would make browsers send `Origin: null` on the pages' own POSTs), no
/// caching of what a session sees.
pub fn page_headers() -> [(header::HeaderName, HeaderValue); 5] {
    [
        (
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static("frame-ancestors 'none'"),
        ),
        (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
        (
            header::REFERRER_POLICY,
            HeaderValue::from_static("same-origin"),
        ),
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
        (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
    ]
}

/// `/?token=<one-time secret>`: an admin session, then the Manager without the secret in the
/// address bar. The answer is a page that moves on by itself rather than a redirect: a
/// navigation this page starts is same-site, so the `SameSite=Strict` cookie goes with it even
/// when the link was opened from another site's page.
fn link_login(auth: &Auth, seen: &Seen, secret: &str) -> Response {
    let ip = seen
        .peer
        .map_or(IpAddr::from([0, 0, 0, 0]), |peer| peer.ip());
    if !auth.login_allowed(ip) {
        return seen.refuse(ApiError::TooManyLogins);
    }
    if !auth.take_login_secret(secret) {
        auth.login_failed(ip);
        warn!(peer = %peer_text(seen.peer), method = %seen.method, path = %seen.path, reason = "the one-time login link is used up or wrong", "HTTP request refused.");
        return (
            StatusCode::SEE_OTHER,
            [
                (
                    header::LOCATION,
                    HeaderValue::from_static("/login?link=used"),
                ),
                (
                    header::REFERRER_POLICY,
                    HeaderValue::from_static("same-origin"),
                ),
            ],
        )
            .into_response();
    }
    let id = auth.new_session(None, Role::Admin);
    info!(peer = %peer_text(seen.peer), "Logged in to the Manager with the one-time link.");
    let page = "<!doctype html><meta charset=utf-8><meta http-equiv=refresh content=\"0;url=/\"><title>phone2mqtt</title><p>Logged in. <a href=\"/\">Open the Manager</a>.</p>";
    let mut response = (page_headers(), Html(page)).into_response();
    if let Ok(value) = HeaderValue::from_str(&set_cookie(id.expose(), seen.tls)) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

/// The login page, with one of a few fixed messages.
fn login_page(status: StatusCode, message: &str) -> Response {
    let page = LOGIN_HTML.replace("{{message}}", &escape_html(message));
    (status, page_headers(), Html(page)).into_response()
}

fn escape_html(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[derive(Debug, Deserialize)]
struct LoginQuery {
    link: Option<String>,
    out: Option<String>,
}

async fn login_form(axum::extract::Query(query): axum::extract::Query<LoginQuery>) -> Response {
    let message = if query.link.is_some() {
        "That login link was used already (it works once). Log in with a name and password, create one with `phone2mqtt user add`, or restart the gateway for a new link."
    } else if query.out.is_some() {
        "Logged out."
    } else {
        ""
    };
    login_page(StatusCode::OK, message)
}

#[derive(Deserialize)]
struct LoginForm {
    name: String,
    password: String,
}

async fn login(
    State(auth): State<Auth>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    tls: Option<Extension<crate::http_front::ViaTls>>,
    Form(form): Form<LoginForm>,
) -> Response {
    let peer = peer.map(|Extension(ConnectInfo(addr))| addr);
    let ip = peer.map_or(IpAddr::from([0, 0, 0, 0]), |p| p.ip());
    if !auth.login_allowed(ip) {
        warn!(peer = %peer_text(peer), method = "POST", path = "/login", reason = "too many failed logins", "HTTP request refused.");
        return login_page(
            StatusCode::TOO_MANY_REQUESTS,
            "Too many failed logins from this address: wait a minute.",
        );
    }
    let checking = auth.clone();
    let name = form.name.clone();
    let role = tokio::task::spawn_blocking(move || checking.verify_user(&name, &form.password))
        .await
        .ok()
        .flatten();
    let Some(role) = role else {
        let failures = auth.login_failed(ip);
        // The name only when it is a user's: a password typed into the name field stays out.
        let known = auth.file().user(&form.name).is_some();
        let user = if known {
            form.name.as_str()
        } else {
            "(unknown)"
        };
        warn!(peer = %peer_text(peer), method = "POST", path = "/login", user, failures, reason = "wrong name or password", "HTTP request refused.");
        return login_page(StatusCode::UNAUTHORIZED, "Wrong name or password.");
    };
    let id = auth.new_session(Some(&form.name), role);
    info!(peer = %peer_text(peer), user = %form.name, %role, "Logged in to the Manager.");
    let cookie = set_cookie(id.expose(), tls.is_some());
    let mut response = (
        StatusCode::SEE_OTHER,
        [(header::LOCATION, HeaderValue::from_static("/"))],
    )
        .into_response();
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

async fn logout(
    State(auth): State<Auth>,
    Extension(caller): Extension<Caller>,
    tls: Option<Extension<crate::http_front::ViaTls>>,
) -> Response {
    if let Via::Session(id) = &caller.principal.via {
        auth.logout(id.expose());
        info!(peer = %peer_text(caller.peer), user = %caller.principal.name, "Logged out of the Manager.");
    }
    let mut response = (
        StatusCode::SEE_OTHER,
        [(header::LOCATION, HeaderValue::from_static("/login?out=1"))],
    )
        .into_response();
    if let Ok(value) = HeaderValue::from_str(&clear_cookie(tls.is_some())) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

/// `GET /api/me`: who this is; `first_user` tells an admin that no user exists yet.
async fn me(State(auth): State<Auth>, Extension(caller): Extension<Caller>) -> Response {
    let principal = &caller.principal;
    Json(json!({
        "name": principal.name,
        "role": principal.role,
        "via": principal.via.kind(),
        "first_user": principal.role == Role::Admin && auth.no_users(),
    }))
    .into_response()
}

/// `GET /api/users` (admin): users and tokens, names and roles only.
async fn users(
    State(auth): State<Auth>,
    Extension(caller): Extension<Caller>,
) -> Result<Response, ApiError> {
    caller.require(Role::Admin, "listing users")?;
    let file = auth.file();
    Ok(Json(json!({
        "users": file.users.iter().map(|u| json!({"name": u.name, "role": u.role})).collect::<Vec<_>>(),
        "tokens": file.tokens.iter().map(|t| json!({"name": t.name, "role": t.role, "created": t.created})).collect::<Vec<_>>(),
    }))
    .into_response())
}

#[derive(Deserialize)]
struct NewUser {
    name: String,
    password: String,
    role: Role,
}

/// `POST /api/users` (admin) `{"name", "password", "role"}`: the Manager's form for the first
/// admin, and for more users.
async fn add_user(
    State(auth): State<Auth>,
    Extension(caller): Extension<Caller>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    caller.require(Role::Admin, "adding a user")?;
    let new: NewUser = serde_json::from_slice(&body).map_err(|_| ApiError::BadUserForm)?;
    let store = auth.store().clone();
    let (name, role) = (new.name.clone(), new.role);
    let added =
        tokio::task::spawn_blocking(move || store.add_user(&new.name, new.role, &new.password))
            .await;
    match added {
        Ok(Ok(())) => {
            info!(by = %caller.principal.name, user = %name, %role, "User added.");
            Ok((
                StatusCode::CREATED,
                Json(json!({"name": name, "role": role})),
            )
                .into_response())
        }
        Ok(Err(StoreError::Invalid(reason))) => Err(ApiError::InvalidUser(reason)),
        Ok(Err(StoreError::Exists(reason))) => Err(ApiError::UserExists(reason)),
        Ok(Err(err)) => {
            warn!(cause = %err, "Could not add a user.");
            Err(ApiError::UserFileUnwritten)
        }
        Err(_) => Err(ApiError::AddingUserFailed),
    }
}

/// Routes behind [`guard`]: logout, `/api/me`, `/api/users`.
pub fn guarded_routes(auth: Auth) -> Router {
    Router::new()
        .route("/logout", post(logout))
        .route("/api/me", get(me))
        .route("/api/users", get(users).post(add_user))
        .with_state(auth)
}

/// `/login`, open to all but behind [`login_guard`].
pub fn login_routes(auth: Auth) -> Router {
    Router::new()
        .route("/login", get(login_form).post(login))
        .layer(axum::middleware::from_fn_with_state(
            auth.clone(),
            login_guard,
        ))
        .with_state(auth)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allowed(listen: &str) -> Allowed {
        Allowed::new(
            listen.parse().unwrap(),
            Some("http://phones.example.com:8080/"),
            &["gw.example.com".into(), "Other.Example:9000".into()],
        )
    }

    #[test]
    fn hosts() {
        let a = allowed("127.0.0.1:8080");
        for host in [
            "127.0.0.1:8080",
            "localhost:8080",
            "[::1]:8080",
            "phones.example.com:8080",
            "gw.example.com",
            "gw.example.com:1234",
            "other.example:9000",
            "LOCALHOST:8080",
        ] {
            assert!(a.host_ok(host, false), "{host}");
        }
        for host in [
            "evil.example:8080",
            "127.0.0.1:8081",
            "localhost",
            "phones.example.com",
            "other.example:9001",
            "192.168.1.10:8080",
            "",
            "a b:8080",
            "[::1:8080",
        ] {
            assert!(!a.host_ok(host, false), "{host}");
        }
        let any = allowed("0.0.0.0:8080");
        assert!(any.host_ok("192.168.1.10:8080", false));
        assert!(!any.host_ok("192.168.1.10:8081", false));
        assert!(!any.host_ok("rebound.example:8080", false));
        let one = allowed("192.168.1.10:8080");
        assert!(one.host_ok("192.168.1.10:8080", false));
    }

    #[test]
    fn origins() {
        let a = allowed("0.0.0.0:8080");
        let host = Some("192.168.1.10:8080");
        assert!(a.origin_ok("http://192.168.1.10:8080", host, false));
        assert!(a.origin_ok("http://localhost:8080", host, false));
        assert!(a.origin_ok("http://phones.example.com:8080", host, false));
        assert!(!a.origin_ok("http://192.168.1.11:8080", host, false));
        assert!(!a.origin_ok("http://evil.example", host, false));
        assert!(!a.origin_ok("null", host, false));
        assert!(!a.origin_ok("file://", host, false));
        assert!(!a.origin_ok("http://localhost:3000", host, false));
    }

    #[test]
    fn cookies_and_links() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; p2m_session=abc; b=2"),
        );
        assert_eq!(session_cookie(&headers), Some("abc"));
        assert_eq!(
            link_secret(Some("x=1&token=s3cr%65t")),
            Some("s3cret".into())
        );
        assert_eq!(link_secret(Some("tokenx=1")), None);
        assert!(set_cookie("id", true).ends_with("; Secure"));
        assert!(set_cookie("id", false).contains("HttpOnly; SameSite=Strict; Path=/"));
    }
}
