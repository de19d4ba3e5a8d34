//! The gateway's `/ws` websocket, as the Manager page uses it.

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;

use super::{TestGateway, TIMEOUT};

pub type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// `/ws` as an admin (the gateway's admin token).
pub async fn ws_connect(gw: &TestGateway) -> Ws {
    ws_connect_with(gw, &gw.admin_token)
        .await
        .expect("websocket connects")
}

/// `/ws` with `Authorization: Bearer <token>`.
pub async fn ws_connect_with(
    gw: &TestGateway,
    token: &str,
) -> Result<Ws, tokio_tungstenite::tungstenite::Error> {
    ws_connect_headers(gw, &[("authorization", &format!("Bearer {token}"))]).await
}

/// `/ws` as a browser opens it: its Origin and the session cookie.
pub async fn ws_connect_browser(gw: &TestGateway, origin: &str, cookie: &str) -> Ws {
    ws_connect_headers(gw, &[("origin", origin), ("cookie", cookie)])
        .await
        .expect("a browser's websocket connects")
}

/// `/ws` with these request headers.
async fn ws_connect_headers(
    gw: &TestGateway,
    headers: &[(&'static str, &str)],
) -> Result<Ws, tokio_tungstenite::tungstenite::Error> {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut request = format!("ws://{}/ws", gw.gateway.http_addr)
        .into_client_request()
        .unwrap();
    for (name, value) in headers {
        request.headers_mut().insert(*name, value.parse().unwrap());
    }
    tokio_tungstenite::connect_async(request)
        .await
        .map(|(ws, _)| ws)
}

/// Waits for a websocket frame satisfying `check`.
pub async fn ws_expect(ws: &mut Ws, check: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    loop {
        let frame = tokio::time::timeout_at(deadline, ws.next())
            .await
            .expect("a matching websocket frame in time")
            .expect("the websocket stays open")
            .expect("a websocket frame");
        if let tokio_tungstenite::tungstenite::Message::Text(text) = frame {
            let value: Value = serde_json::from_str(text.as_str()).expect("frames are JSON");
            if check(&value) {
                return value;
            }
        }
    }
}

pub async fn ws_send(ws: &mut Ws, frame: Value) {
    ws.send(tokio_tungstenite::tungstenite::Message::Text(
        frame.to_string().into(),
    ))
    .await
    .unwrap();
}
