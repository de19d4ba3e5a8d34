//! The Manager page: an HTML document, a stylesheet and native ES modules (no build step),
//! all embedded in the binary. `main.js` is the entry point and names where everything is;
//! `store.js` owns the page's state; there is one module per panel.
//!
//! The files are served from a fixed table of routes, one route per file: no directory is read
//! and no path is joined, so no request can reach anything else. They are served like the page
//! itself: behind the same guard (a session or an API token; they hold no secret, but the page
//! is for logged-in people and its code goes with it), with the same headers (no caching of
//! what a session sees, no sniffing, no framing).

use axum::http::header;
use axum::response::{Html, IntoResponse};
use axum::routing::get;
use axum::Router;

const INDEX_HTML: &str = include_str!("index.html");

const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";

/// Each file under `/manager/`: its name, its content type and its text.
macro_rules! assets {
    ($($name:literal: $kind:expr),* $(,)?) => {
        &[$(($name, $kind, include_str!($name))),*]
    };
}
const ASSETS: &[(&str, &str, &str)] = assets![
    "manager.css": CSS,
    "main.js": JS,
    "store.js": JS,
    "render.js": JS,
    "constants.js": JS,
    "util.js": JS,
    "dom.js": JS,
    "model.js": JS,
    "api.js": JS,
    "session.js": JS,
    "connection.js": JS,
    "messages.js": JS,
    "sending.js": JS,
    "header.js": JS,
    "health.js": JS,
    "phone-list.js": JS,
    "filters.js": JS,
    "sorting.js": JS,
    "selection.js": JS,
    "bulk.js": JS,
    "phone-panel.js": JS,
    "commands.js": JS,
    "adoption.js": JS,
    "log.js": JS,
    "directory.js": JS,
    "reminders.js": JS,
];

/// `/` (the page) and `/manager/<file>` for each of its files; the caller puts them behind
/// the authentication guard.
pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    let page = get(|| async { (crate::auth::http::page_headers(), Html(INDEX_HTML)) });
    ASSETS.iter().fold(
        Router::new().route("/", page),
        |router, &(name, content_type, text)| {
            let serve = get(move || async move {
                (
                    crate::auth::http::page_headers(),
                    [(header::CONTENT_TYPE, content_type)],
                    text,
                )
                    .into_response()
            });
            router.route(&format!("/manager/{name}"), serve)
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::http::{guard, Allowed, COOKIE};
    use crate::auth::{Auth, Role};
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use tower::ServiceExt;

    /// Every file the page or a module names is served, and every file served is named.
    #[test]
    fn the_table_holds_exactly_the_files_the_page_loads() {
        let mut named = std::collections::BTreeSet::new();
        for at in INDEX_HTML
            .match_indices("\"/manager/")
            .map(|(at, _)| at + 10)
        {
            let rest = &INDEX_HTML[at..];
            named.insert(rest[..rest.find('"').unwrap()].to_string());
        }
        for (_, _, text) in ASSETS {
            for at in text.match_indices("from './").map(|(at, _)| at + 8) {
                let rest = &text[at..];
                named.insert(rest[..rest.find('\'').unwrap()].to_string());
            }
        }
        let served: std::collections::BTreeSet<String> =
            ASSETS.iter().map(|(name, _, _)| name.to_string()).collect();
        assert_eq!(named, served);
        for (name, content_type, text) in ASSETS {
            assert_eq!(name.ends_with(".js"), *content_type == JS, "{name}");
            assert!(
                text.lines().count() < 800,
                "{name} is too long for a newcomer"
            );
        }
    }

    fn auth() -> (Auth, std::path::PathBuf) {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let dir = std::env::temp_dir().join(format!(
            "phone2mqtt-manager-assets-{}-{nanos}",
            std::process::id()
        ));
        let auth = Auth::open(&dir).unwrap();
        auth.allow(Allowed::new("127.0.0.1:8080".parse().unwrap(), None, &[]));
        (auth, dir)
    }

    async fn get(router: &Router, path: &str, cookie: Option<&str>) -> axum::response::Response {
        let mut request = Request::get(path).header(header::HOST, "127.0.0.1:8080");
        if let Some(cookie) = cookie {
            request = request.header(header::COOKIE, cookie);
        }
        router
            .clone()
            .oneshot(request.body(Body::empty()).unwrap())
            .await
            .unwrap()
    }

    /// The files follow the page's rule: without a session the page sends people to the login
    /// form and its files are refused; with one both are served, uncached, with their types.
    #[tokio::test]
    async fn the_files_are_served_to_sessions_only_and_nothing_else_is() {
        let (auth, dir) = auth();
        let router = routes().layer(axum::middleware::from_fn_with_state(auth.clone(), guard));

        let page = get(&router, "/", None).await;
        assert_eq!(page.status(), StatusCode::SEE_OTHER);
        assert_eq!(page.headers()[header::LOCATION], "/login");
        for path in ["/manager/main.js", "/manager/manager.css"] {
            let refused = get(&router, path, None).await;
            assert_eq!(refused.status(), StatusCode::UNAUTHORIZED, "{path}");
            let wrong = get(&router, path, Some(&format!("{COOKIE}=forged"))).await;
            assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED, "{path}");
        }

        let id = auth.new_session(None, Role::Viewer);
        let cookie = format!("{COOKIE}={}", id.expose());
        for (path, content_type) in [
            ("/", "text/html; charset=utf-8"),
            ("/manager/main.js", JS),
            ("/manager/store.js", JS),
            ("/manager/manager.css", CSS),
        ] {
            let served = get(&router, path, Some(&cookie)).await;
            assert_eq!(served.status(), StatusCode::OK, "{path}");
            let headers = served.headers();
            assert_eq!(headers[header::CONTENT_TYPE], content_type, "{path}");
            assert_eq!(headers[header::CACHE_CONTROL], "no-store", "{path}");
            assert_eq!(headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff", "{path}");
        }
        for path in [
            "/manager/",
            "/manager/mod.rs",
            "/manager/index.html",
            "/manager/../auth/login.html",
            "/manager/%2e%2e/auth/login.html",
            "/manager/main.js/x",
        ] {
            let missing = get(&router, path, Some(&cookie)).await;
            assert_eq!(missing.status(), StatusCode::NOT_FOUND, "{path}");
        }
        std::fs::remove_dir_all(dir).unwrap();
    }
}
