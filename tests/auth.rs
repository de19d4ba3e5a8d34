//! People and programs authenticate, roles decide, and browsers cannot be turned against the
//! gateway: every attack tried through real sockets against a running gateway (and the real
//! binary where a person would use it), and the phone receives nothing.

mod common;

use std::time::Duration;

use common::*;
use phone2mqtt::auth::store::Store;
use phone2mqtt::auth::Role;
use phone2mqtt::sim::SimPhone;
use reqwest::header::{
    HeaderMap, AUTHORIZATION, CONTENT_TYPE, COOKIE, LOCATION, ORIGIN, SET_COOKIE,
};
use reqwest::StatusCode;
use serde_json::{json, Value};

const MAC: &str = "00:15:65:00:00:31";
const ID: &str = "001565000031";
const USER_PASSWORD: &str = "correct horse battery";

/// `GET /api/me` with a session cookie.
async fn who(gw: &TestGateway, cookie: &str) -> Value {
    json_of(
        no_redirect_client()
            .get(format!("{}/api/me", gw.http()))
            .header(COOKIE, cookie),
    )
    .await
}

/// `POST /api/users` as the Manager's first-admin form sends it (cookie and Origin).
async fn create_admin(base: &str, cookie: &str, password: &str) -> StatusCode {
    no_redirect_client()
        .post(format!("{base}/api/users"))
        .header(COOKIE, cookie)
        .header(ORIGIN, base)
        .json(&json!({"name": "admin", "password": password, "role": "admin"}))
        .send()
        .await
        .unwrap()
        .status()
}

/// A gateway with no phone and one user.
async fn gateway_with_user(name: &str, role: Role) -> TestGateway {
    let gw = start_gateway(test_config()).await;
    Store::new(&gw.data_dir.0)
        .add_user(name, role, USER_PASSWORD)
        .unwrap();
    gw
}

/// The requests the simulated phone has received so far.
fn requests(phone: &SimPhone) -> usize {
    phone.snapshot().requests.len()
}

/// After refused attempts: nothing reached the phone and no command was published.
async fn nothing_happened(phone: &SimPhone, before: usize, probe: &mut MqttProbe) {
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        requests(phone),
        before,
        "the phone got requests: {:#?}",
        phone.snapshot().requests
    );
    let commands: Vec<_> = probe
        .drain()
        .into_iter()
        .filter(|(topic, _)| topic.contains("/cmd/") || topic.ends_with("/directory/set"))
        .collect();
    assert!(
        commands.is_empty(),
        "commands were published: {commands:#?}"
    );
}

/// Logs in through `POST /login`; the cookie as a `Cookie` header value.
async fn login(gw: &TestGateway, name: &str, password: &str) -> String {
    let answer = no_redirect_client()
        .post(format!("{}/login", gw.http()))
        .form(&[("name", name), ("password", password)])
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::SEE_OTHER);
    cookie_of(answer.headers())
}

fn cookie_of(headers: &HeaderMap) -> String {
    let set = headers
        .get(SET_COOKIE)
        .expect("a Set-Cookie header")
        .to_str()
        .unwrap();
    set.split(';').next().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_credentials_rest_and_websocket_are_refused_and_the_phone_gets_nothing() {
    let (gw, phone) = gateway_with_phone("yealink", MAC).await;
    let mut probe = MqttProbe::connect(gw.mqtt_port()).await;
    let before = requests(&phone);
    let http = no_redirect_client();
    let base = gw.http();
    for (method, path, body) in [
        (
            "POST",
            "/api/phones/group%2Fall/cmd/configure",
            r#"{"settings": {"auto_provision.server.url": "http://evil.example/"}}"#,
        ),
        ("POST", &format!("/api/phones/{ID}/cmd/reboot") as &str, ""),
        ("POST", &format!("/api/phones/{ID}/logo"), "not an image"),
        ("GET", "/api/phones", ""),
        ("GET", "/api/info", ""),
        ("GET", "/api/me", ""),
        ("GET", "/api/users", ""),
        (
            "POST",
            "/api/users",
            r#"{"name": "mallory", "password": "12345678", "role": "admin"}"#,
        ),
    ] {
        let request = match method {
            "GET" => http.get(format!("{base}{path}")),
            _ => http.post(format!("{base}{path}")).body(body.to_string()),
        };
        let answer = request.send().await.unwrap();
        assert_eq!(answer.status(), StatusCode::UNAUTHORIZED, "{method} {path}");
        let body: Value = answer.json().await.unwrap();
        assert!(body["error"].is_string(), "{method} {path}: {body}");
    }
    // A wrong or malformed credential is no better.
    for authorization in [
        "Bearer p2m_wrongwrongwrongwrongwrongwrongwr",
        "Basic YWRtaW46YWRtaW4=",
    ] {
        assert_eq!(
            status(
                http.post(format!("{base}/api/phones/{ID}/cmd/reboot"))
                    .header(AUTHORIZATION, authorization)
            )
            .await,
            StatusCode::UNAUTHORIZED,
            "{authorization}"
        );
    }
    assert_eq!(
        status(
            http.get(format!("{base}/api/phones"))
                .header(COOKIE, "p2m_session=made-up")
        )
        .await,
        StatusCode::UNAUTHORIZED
    );
    // The page sends the browser to the login form.
    let answer = http.get(format!("{base}/")).send().await.unwrap();
    assert_eq!(answer.status(), StatusCode::SEE_OTHER);
    assert_eq!(answer.headers()[LOCATION], "/login");
    // The websocket: no upgrade without a token, nor with a wrong one.
    for token in ["", "p2m_wrongwrongwrongwrongwrongwrongwr"] {
        match ws_connect_with(&gw, token).await {
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
                assert_eq!(response.status(), 401)
            }
            Err(other) => panic!("refused, but not with 401: {other}"),
            Ok(_) => panic!("a websocket without a valid token was accepted"),
        }
    }
    let upgrade = raw_head(
        gw.gateway.http_addr,
        format!(
            "GET /ws HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
            gw.gateway.http_addr
        )
        .as_bytes(),
    )
    .await;
    assert_eq!(status_of(&upgrade), 401, "{upgrade}");
    nothing_happened(&phone, before, &mut probe).await;
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn viewers_and_operators_are_refused_what_their_role_may_not_do() {
    let (gw, phone) = gateway_with_phone("yealink", MAC).await;
    let mut probe = MqttProbe::connect(gw.mqtt_port()).await;
    let viewer = bearer_client(&gw.api_token(Role::Viewer));
    let operator_token = gw.api_token(Role::Operator);
    let operator = bearer_client(&operator_token);
    let base = gw.http();

    // A viewer sees the fleet (once the web side's mirror has the phone's retained messages)...
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    loop {
        let phones = json_of(viewer.get(format!("{base}/api/phones"))).await;
        if phones[0]["id"] == ID {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{phones}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let me = json_of(viewer.get(format!("{base}/api/me"))).await;
    assert_eq!(me["role"], "viewer");
    assert_eq!(me["first_user"], false);
    // ...and commands nothing, on REST or the websocket.
    let before = requests(&phone);
    for command in ["dnd", "reboot", "configure", "adopt"] {
        let answer = viewer
            .post(format!("{base}/api/phones/{ID}/cmd/{command}"))
            .body("on")
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), StatusCode::FORBIDDEN, "{command}");
        let body: Value = answer.json().await.unwrap();
        assert!(
            body["error"].as_str().unwrap().contains("role"),
            "{command}: {body}"
        );
    }
    let token = gw.api_token(Role::Viewer);
    let mut ws = ws_connect_with(&gw, &token).await.unwrap();
    ws_expect(&mut ws, |f| f["topic"] == format!("phone2mqtt/{ID}/info")).await;
    for (topic, payload) in [
        (format!("phone2mqtt/{ID}/cmd/dnd"), json!("on")),
        ("phone2mqtt/group/all/cmd/reboot".to_string(), json!({})),
        ("phone2mqtt/directory/set".to_string(), json!("100,Anna")),
        (
            "phone2mqtt/bridge/test/reminders/cancel".to_string(),
            json!({"id": "x"}),
        ),
    ] {
        ws_send(&mut ws, json!({"topic": topic, "payload": payload})).await;
        let error = ws_expect(&mut ws, |f| f.get("error").is_some()).await;
        assert_eq!(error["topic"], topic.as_str(), "{error}");
        assert!(error["error"].as_str().unwrap().contains("role"), "{error}");
    }
    nothing_happened(&phone, before, &mut probe).await;
    // Live frames still reach the viewer.
    phone.ring("+4930123456", None).unwrap();
    ws_expect(&mut ws, |f| f["topic"] == format!("phone2mqtt/{ID}/event")).await;
    phone.remote_hangup().unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    probe.drain();
    let before = requests(&phone);

    // An operator is refused what belongs to admins, on REST and the websocket.
    for (command, body) in [
        ("configure", r#"{"settings": {"language": "Deutsch"}}"#),
        ("adopt", r#"{"address": "127.0.0.1:1"}"#),
        ("logo", r#"{"url": "http://127.0.0.1/x.png"}"#),
        ("provision", ""),
    ] {
        assert_eq!(
            status(
                operator
                    .post(format!("{base}/api/phones/{ID}/cmd/{command}"))
                    .body(body)
            )
            .await,
            StatusCode::FORBIDDEN,
            "{command}"
        );
    }
    assert_eq!(
        status(
            operator
                .post(format!("{base}/api/phones/{ID}/logo"))
                .body(vec![0u8; 16])
        )
        .await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        status(
            operator
                .post(format!("{base}/api/users"))
                .json(&json!({"name": "op2", "password": "12345678", "role": "admin"}))
        )
        .await,
        StatusCode::FORBIDDEN
    );
    let mut ws = ws_connect_with(&gw, &operator_token).await.unwrap();
    for command in ["adopt", "configure", "logo", "provision"] {
        let topic = format!("phone2mqtt/{ID}/cmd/{command}");
        ws_send(
            &mut ws,
            json!({"topic": topic, "payload": {"address": "127.0.0.1:1"}}),
        )
        .await;
        let error = ws_expect(&mut ws, |f| f.get("error").is_some()).await;
        assert_eq!(error["topic"], topic.as_str(), "{error}");
    }
    nothing_happened(&phone, before, &mut probe).await;

    // What the operator may do works.
    assert_eq!(
        status(
            operator
                .post(format!("{base}/api/phones/{ID}/cmd/dnd"))
                .body("on")
        )
        .await,
        StatusCode::OK
    );
    phone_got(&phone, "GET /servlet?key=DNDOn").await;
    ws_send(
        &mut ws,
        json!({"topic": format!("phone2mqtt/{ID}/cmd/dnd"), "payload": {"state": "off", "transaction": "w"}}),
    )
    .await;
    let result = ws_expect(&mut ws, |f| {
        f["topic"] == format!("phone2mqtt/{ID}/result") && f["payload"]["transaction"] == "w"
    })
    .await;
    assert_eq!(result["payload"]["status"], "ok");
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_origins_and_other_host_names_are_refused() {
    let (gw, phone) = gateway_with_phone("yealink", MAC).await;
    let mut probe = MqttProbe::connect(gw.mqtt_port()).await;
    Store::new(&gw.data_dir.0)
        .add_user("anna", Role::Admin, USER_PASSWORD)
        .unwrap();
    let cookie = login(&gw, "anna", USER_PASSWORD).await;
    let base = gw.http();
    let own_origin = base.clone();
    let http = no_redirect_client();
    let before = requests(&phone);
    let reboot = format!("{base}/api/phones/{ID}/cmd/reboot");
    // The attack of the issue: a page elsewhere posts text/plain (no preflight), with the
    // cookie the browser adds by itself or without credentials; another port of this machine
    // is another origin too; the cookie alone, without an Origin, changes nothing; and a token
    // does not make a foreign origin acceptable.
    let bearer = format!("Bearer {}", gw.admin_token);
    for (origin, credential) in [
        (Some("http://evil.example"), Some((COOKIE, cookie.as_str()))),
        (Some("http://evil.example"), None),
        (Some("http://127.0.0.1:1"), Some((COOKIE, cookie.as_str()))),
        (None, Some((COOKIE, cookie.as_str()))),
        (
            Some("http://evil.example"),
            Some((AUTHORIZATION, bearer.as_str())),
        ),
    ] {
        let mut request = http
            .post(&reboot)
            .header(CONTENT_TYPE, "text/plain")
            .body("{}");
        if let Some(origin) = origin {
            request = request.header(ORIGIN, origin);
        }
        if let Some((name, value)) = &credential {
            request = request.header(name, *value);
        }
        let answer = request.send().await.unwrap();
        let case = format!("{origin:?} {:?}", credential.as_ref().map(|c| &c.0));
        assert_eq!(answer.status(), StatusCode::FORBIDDEN, "{case}");
        assert!(answer
            .headers()
            .get("access-control-allow-origin")
            .is_none());
    }
    // A login form posted from elsewhere (login CSRF).
    assert_eq!(
        status(
            http.post(format!("{base}/login"))
                .header(ORIGIN, "http://evil.example")
                .form(&[("name", "anna"), ("password", USER_PASSWORD)])
        )
        .await,
        StatusCode::FORBIDDEN
    );
    // Cross-origin websockets, with the cookie or a token, and the cookie without an Origin.
    let addr = gw.gateway.http_addr;
    let upgrade = |extra: String| {
        format!(
            "GET /ws HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n"
        )
    };
    for extra in [
        format!("Origin: http://evil.example\r\nCookie: {cookie}\r\n"),
        format!(
            "Origin: http://evil.example\r\nAuthorization: Bearer {}\r\n",
            gw.admin_token
        ),
        format!("Cookie: {cookie}\r\n"),
    ] {
        let answer = raw_head(addr, upgrade(extra.clone()).as_bytes()).await;
        assert_eq!(status_of(&answer), 403, "{extra}: {answer}");
    }
    // A rebound name: the attacker's domain pointed at this machine, with a valid token even.
    for path in ["/api/phones", "/", "/login"] {
        let answer = raw_http(
            addr,
            format!(
                "GET {path} HTTP/1.1\r\nHost: rebound.evil.example:{}\r\nAuthorization: Bearer {}\r\nConnection: close\r\n\r\n",
                addr.port(),
                gw.admin_token
            )
            .as_bytes(),
        )
        .await;
        assert_eq!(status_of(&answer), 421, "{path}: {answer}");
    }
    nothing_happened(&phone, before, &mut probe).await;

    // The same origin works, with the cookie (a browser on the Manager page).
    assert_eq!(
        status(
            http.post(format!("{base}/api/phones/{ID}/cmd/dnd"))
                .header(ORIGIN, &own_origin)
                .header(COOKIE, &cookie)
                .body("on")
        )
        .await,
        StatusCode::OK
    );
    let mut ws = ws_connect_browser(&gw, &own_origin, &cookie).await;
    ws_send(
        &mut ws,
        json!({"topic": format!("phone2mqtt/{ID}/cmd/dnd"), "payload": {"state": "off", "transaction": "b"}}),
    )
    .await;
    ws_expect(&mut ws, |f| f["payload"]["transaction"] == "b").await;
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_sets_a_strict_http_only_cookie_and_logout_ends_the_session() {
    let gw = gateway_with_user("otto", Role::Operator).await;
    let http = no_redirect_client();
    let base = gw.http();
    let page = http.get(format!("{base}/login")).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert_eq!(page.headers()["x-frame-options"], "DENY");
    let html = page.text().await.unwrap();
    assert!(html.contains("action=\"/login\""));
    // Served by the binary, nothing fetched from elsewhere.
    assert!(!html.contains("src=\"http") && !html.contains("href=\"http"));

    let wrong = http
        .post(format!("{base}/login"))
        .form(&[("name", "otto"), ("password", "not the password")])
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    assert!(wrong.headers().get(SET_COOKIE).is_none());

    let answer = http
        .post(format!("{base}/login"))
        .form(&[("name", "otto"), ("password", USER_PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::SEE_OTHER);
    assert_eq!(answer.headers()[LOCATION], "/");
    let set = answer.headers()[SET_COOKIE].to_str().unwrap().to_string();
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(set.contains(attribute), "{set}");
    }
    assert!(!set.contains("Secure"), "plain HTTP: {set}");
    let cookie = cookie_of(answer.headers());
    let me = who(&gw, &cookie).await;
    assert_eq!(
        me,
        json!({"name": "otto", "role": "operator", "via": "session", "first_user": false})
    );
    let manager = http
        .get(format!("{base}/"))
        .header(COOKIE, &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(manager.status(), StatusCode::OK);
    assert!(manager.text().await.unwrap().contains("phone2mqtt Manager"));

    let out = http
        .post(format!("{base}/logout"))
        .header(COOKIE, &cookie)
        .header(ORIGIN, &base)
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), StatusCode::SEE_OTHER);
    assert!(out.headers()[SET_COOKIE]
        .to_str()
        .unwrap()
        .contains("Max-Age=0"));
    assert_eq!(
        status(http.get(format!("{base}/api/me")).header(COOKIE, &cookie)).await,
        StatusCode::UNAUTHORIZED
    );

    // Removing the user ends its sessions.
    let cookie = login(&gw, "otto", USER_PASSWORD).await;
    Store::new(&gw.data_dir.0).remove_user("otto").unwrap();
    assert_eq!(
        status(http.get(format!("{base}/api/me")).header(COOKIE, &cookie)).await,
        StatusCode::UNAUTHORIZED
    );
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_one_time_link_logs_in_once_and_creates_the_first_admin() {
    let gw = start_gateway(test_config()).await;
    let link = gw.gateway.login_link().expect("a login link");
    assert!(
        link.starts_with(&format!("{}/?token=", gw.http())),
        "{link}"
    );
    let http = no_redirect_client();
    let answer = http.get(&link).send().await.unwrap();
    assert_eq!(answer.status(), StatusCode::OK);
    assert_eq!(answer.headers()["referrer-policy"], "same-origin");
    let cookie = cookie_of(answer.headers());
    let page = answer.text().await.unwrap();
    assert!(page.contains("url=/\""), "{page}");
    assert!(gw.gateway.login_link().is_none(), "the link is used up");

    let base = gw.http();
    let me = who(&gw, &cookie).await;
    assert_eq!(me["role"], "admin");
    assert_eq!(me["first_user"], true);
    // The first admin, as the Manager's form creates it; a weak one is refused.
    assert_eq!(
        create_admin(&base, &cookie, "short").await,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        create_admin(&base, &cookie, USER_PASSWORD).await,
        StatusCode::CREATED
    );
    let me = who(&gw, &cookie).await;
    assert_eq!(me["first_user"], false);
    login(&gw, "admin", USER_PASSWORD).await;

    // Used once: the second time is a trip to the login page, with no session.
    let again = http.get(&link).send().await.unwrap();
    assert_eq!(again.status(), StatusCode::SEE_OTHER);
    assert_eq!(again.headers()[LOCATION], "/login?link=used");
    assert!(again.headers().get(SET_COOKIE).is_none());
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_logins_are_rate_limited_per_address() {
    let gw = gateway_with_user("anna", Role::Viewer).await;
    let http = no_redirect_client();
    let attempt = |password: &'static str| {
        http.post(format!("{}/login", gw.http()))
            .form(&[("name", "anna"), ("password", password)])
            .send()
    };
    for _ in 0..phone2mqtt::auth::MAX_FAILED_LOGINS {
        assert_eq!(
            attempt("wrong password").await.unwrap().status(),
            StatusCode::UNAUTHORIZED
        );
    }
    // Now even the right password waits.
    assert_eq!(
        attempt(USER_PASSWORD).await.unwrap().status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    assert!(gw.gateway.auth.as_ref().unwrap().failed_logins() >= 10);
    // The one-time link too.
    let link = gw.gateway.login_link().unwrap();
    assert_eq!(
        http.get(&link).send().await.unwrap().status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    gw.stop().await;
}

/// `phone2mqtt` itself, as a person runs it, on a config in a scratch directory.
fn binary(dir: &std::path::Path, args: &[&str], stdin: Option<&str>) -> (bool, String, String) {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut child = Command::new(env!("CARGO_BIN_EXE_phone2mqtt"))
        .args(args)
        .arg("-c")
        .arg(dir.join("phone2mqtt.toml"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).unwrap();
    }
    drop(input);
    let output = child.wait_with_output().unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn scratch_config() -> tempdir::TempDir {
    let dir = tempdir::TempDir::new();
    std::fs::write(
        dir.0.join("phone2mqtt.toml"),
        format!(
            "[agent]\ndata_dir = \"{}\"\nname = \"test\"\n\n[http]\nlisten = \"127.0.0.1:0\"\naction_token = \"{TOKEN}\"\n\n[broker]\nlisten = \"127.0.0.1:0\"\n",
            dir.0.join("data").display()
        ),
    )
    .unwrap();
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_and_users_from_the_command_line_act_on_a_running_gateway() {
    let dir = scratch_config();
    let data = dir.0.join("data");
    let (ok, stdout, stderr) = binary(
        &dir.0,
        &["token", "create", "ci", "--role", "operator"],
        None,
    );
    assert!(ok, "{stderr}");
    let token = stdout.lines().last().unwrap().trim().to_string();
    assert!(token.starts_with("p2m_") && token.len() == 36, "{stdout}");
    let (ok, stdout, _) = binary(&dir.0, &["token", "list"], None);
    assert!(
        ok && stdout.contains("ci") && stdout.contains("operator"),
        "{stdout}"
    );
    assert!(!stdout.contains(&token));
    // Refused: a duplicate, a weak password, an empty name.
    assert!(!binary(&dir.0, &["token", "create", "ci", "--role", "admin"], None).0);
    let (ok, _, stderr) = binary(
        &dir.0,
        &["user", "add", "anna", "--role", "admin"],
        Some("short\n"),
    );
    assert!(!ok && stderr.contains("shorter than 8"), "{stderr}");
    assert!(
        !binary(
            &dir.0,
            &["user", "add", "", "--role", "admin"],
            Some("long enough pw\n")
        )
        .0
    );
    let (ok, _, stderr) = binary(
        &dir.0,
        &["user", "add", "anna", "--role", "admin"],
        Some(&format!("{USER_PASSWORD}\n")),
    );
    assert!(ok, "{stderr}");
    let (_, stdout, _) = binary(&dir.0, &["user", "list"], None);
    assert!(
        stdout.contains("anna") && stdout.contains("admin"),
        "{stdout}"
    );

    let users = std::fs::read_to_string(data.join("users.json")).unwrap();
    assert!(
        !users.contains(USER_PASSWORD) && !users.contains(&token),
        "{users}"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(data.join("users.json"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    // A gateway on the same data: the token works, then is revoked while it runs.
    let mut config = test_config();
    config.agent.data_dir = data.clone();
    let gw = start_gateway_in(config, tempdir::TempDir(data.clone())).await;
    let http = bearer_client(&token);
    assert_eq!(
        status(http.get(format!("{}/api/phones", gw.http()))).await,
        StatusCode::OK
    );
    let mut ws = ws_connect_with(&gw, &token).await.unwrap();
    let (ok, _, stderr) = binary(&dir.0, &["token", "revoke", "ci"], None);
    assert!(ok, "{stderr}");
    assert_eq!(
        status(http.get(format!("{}/api/phones", gw.http()))).await,
        StatusCode::UNAUTHORIZED
    );
    assert!(ws_connect_with(&gw, &token).await.is_err());
    // The open websocket of the revoked token sends nothing more.
    ws_send(
        &mut ws,
        json!({"topic": format!("phone2mqtt/{ID}/cmd/dnd"), "payload": "on"}),
    )
    .await;
    let error = ws_expect(&mut ws, |f| f.get("error").is_some()).await;
    assert!(
        error["error"].as_str().unwrap().contains("revoked"),
        "{error}"
    );
    let (ok, _, _) = binary(&dir.0, &["user", "remove", "anna"], None);
    assert!(ok);
    assert!(!binary(&dir.0, &["user", "remove", "anna"], None).0);
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_prints_a_working_login_link_and_logs_no_secret() {
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
    let dir = scratch_config();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_phone2mqtt"))
        .args(["serve", "--poll", "0", "-c"])
        .arg(dir.0.join("phone2mqtt.toml"))
        .env("RUST_LOG", "debug,rumqttd=warn,rumqttc=warn,hyper=warn")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let link = tokio::time::timeout(TIMEOUT * 3, async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if let Some(at) = line.find("http://") {
                if line.contains("?token=") {
                    return line[at..].trim().to_string();
                }
            }
        }
        panic!("serve ended without printing a login link");
    })
    .await
    .expect("the login link in time");
    let base = link.split("/?token=").next().unwrap().to_string();
    let secret = link.split("?token=").nth(1).unwrap().to_string();
    let http = no_redirect_client();
    let answer = http.get(&link).send().await.unwrap();
    assert_eq!(answer.status(), StatusCode::OK);
    let cookie = cookie_of(answer.headers());
    let session = cookie.split('=').nth(1).unwrap().to_string();
    // The browser's first admin, a wrong login and a wrong token: the log keeps none of them.
    assert_eq!(
        create_admin(&base, &cookie, USER_PASSWORD).await,
        StatusCode::CREATED
    );
    assert_eq!(
        status(
            http.post(format!("{base}/login"))
                .form(&[("name", "admin"), ("password", "a wrong password here")])
        )
        .await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        status(
            http.post(format!("{base}/login"))
                .form(&[("name", USER_PASSWORD), ("password", USER_PASSWORD)])
        )
        .await,
        StatusCode::UNAUTHORIZED
    );
    let bad_token = "p2m_thisisnotarealtokenbutlookslike1";
    let refused = http
        .get(format!("{base}/api/phones"))
        .header(AUTHORIZATION, format!("Bearer {bad_token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    tokio::time::sleep(Duration::from_millis(300)).await;
    child.start_kill().unwrap();
    let mut log = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut log)
        .await
        .unwrap();
    assert!(log.contains("HTTP request refused"), "{log}");
    for secret in [
        &secret,
        &session,
        USER_PASSWORD,
        "a wrong password here",
        bad_token,
    ] {
        assert!(!log.contains(secret), "the log holds `{secret}`:\n{log}");
    }
}
