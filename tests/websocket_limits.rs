//! `/ws` under `[limits]`, through real sockets: clients in all and from one address are
//! refused before the upgrade, an oversized message closes its socket, each refusal is counted
//! and the `websocket_clients` gauge follows; phones and REST are served throughout.

mod common;

use std::net::{IpAddr, SocketAddr};

use common::*;
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::{self, client::IntoClientRequest, Message};

const MAC: &str = "00:15:65:4a:a9:37";
const ID: &str = "0015654aa937";

type RawWs = tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>;

/// `/ws` as an admin, from `source` (any of 127/8: each is its own address).
async fn ws_from(gw: &TestGateway, source: &str) -> Result<RawWs, tungstenite::Error> {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket
        .bind(SocketAddr::new(source.parse::<IpAddr>().unwrap(), 0))
        .unwrap();
    let stream = socket.connect(gw.gateway.http_addr).await.unwrap();
    let mut request = format!("ws://{}/ws", gw.gateway.http_addr)
        .into_client_request()
        .unwrap();
    request.headers_mut().insert(
        "authorization",
        format!("Bearer {}", gw.admin_token).parse().unwrap(),
    );
    tokio_tungstenite::client_async(request, stream)
        .await
        .map(|(ws, _)| ws)
}

/// The status of a refused upgrade, with its text.
fn refused_status(result: Result<RawWs, tungstenite::Error>) -> (u16, String) {
    match result {
        Err(tungstenite::Error::Http(response)) => (
            response.status().as_u16(),
            String::from_utf8_lossy(response.body().as_deref().unwrap_or_default()).into_owned(),
        ),
        Err(other) => panic!("refused with {other}"),
        Ok(_) => panic!("the upgrade was taken"),
    }
}

/// Waits until the `websocket_clients` gauge reads `wanted`.
async fn clients_become(gw: &TestGateway, wanted: i64) {
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    loop {
        let now = gw.metric("phone2mqtt_websocket_clients").await;
        if now == wanted {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "websocket_clients stays {now}, not {wanted}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

async fn phones_still_served(gw: &TestGateway, probe: &mut MqttProbe, event: &str) {
    let path = format!("/action/{}/yealink/{event}?mac={ID}", gw.token(MAC));
    let got = callback_event(gw, probe, ID, &path, "Yealink SIP-T46G 66.86.0.15").await;
    assert_eq!(got["event"], event);
    gw.rest_command_answered(ID).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_clients_are_limited_in_all_and_per_address() {
    let mut config = test_config();
    config.limits.websocket_clients = 3;
    config.limits.websocket_clients_per_address = 2;
    let (gw, _phone) = gateway_with_phone_in(config, "yealink", MAC, |_| {}).await;
    let mut probe = MqttProbe::connect(gw.mqtt_port()).await;

    let first = ws_from(&gw, "127.0.0.2").await.expect("the first connects");
    let _second = ws_from(&gw, "127.0.0.2")
        .await
        .expect("the second connects");
    let (status, text) = refused_status(ws_from(&gw, "127.0.0.2").await);
    assert_eq!(status, 429, "{text}");
    assert!(text.contains("websocket_clients_per_address"), "{text}");
    let _third = ws_from(&gw, "127.0.0.3")
        .await
        .expect("another address connects");
    let (status, text) = refused_status(ws_from(&gw, "127.0.0.4").await);
    assert_eq!(status, 503, "{text}");
    assert!(text.contains("[limits] websocket_clients"), "{text}");
    clients_become(&gw, 3).await;
    assert_eq!(gw.refusals("websocket_clients_per_address").await, 1);
    assert_eq!(gw.refusals("websocket_clients").await, 1);
    phones_still_served(&gw, &mut probe, "dnd_on").await;

    // A client that goes frees its place.
    drop(first);
    clients_become(&gw, 2).await;
    let _fourth = ws_from(&gw, "127.0.0.4")
        .await
        .expect("a freed place is taken");
    clients_become(&gw, 3).await;
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_message_closes_its_socket_and_is_counted() {
    let mut config = test_config();
    config.limits.websocket_message_bytes = 1024;
    let (gw, _phone) = gateway_with_phone_in(config, "yealink", MAC, |_| {}).await;
    let mut probe = MqttProbe::connect(gw.mqtt_port()).await;

    let mut ws = ws_from(&gw, "127.0.0.2").await.expect("connects");
    clients_become(&gw, 1).await;
    // A command frame within the limit is taken (an error frame for the unknown topic)...
    ws.send(Message::Text(
        serde_json::json!({"topic": "phone2mqtt/x/y", "payload": "small"})
            .to_string()
            .into(),
    ))
    .await
    .unwrap();
    // ...one over it ends the socket with close code 1009.
    let big = serde_json::json!({"topic": format!("phone2mqtt/{ID}/cmd/message"), "payload": "x".repeat(4096)});
    ws.send(Message::Text(big.to_string().into()))
        .await
        .unwrap();
    let mut close = None;
    while let Ok(Some(frame)) = tokio::time::timeout(TIMEOUT, ws.next())
        .await
        .expect("the gateway answers or closes in time")
        .transpose()
    {
        if let Message::Close(frame) = frame {
            close = frame;
            break;
        }
    }
    let close = close.expect("a close frame with a reason");
    assert_eq!(u16::from(close.code), 1009, "{close:?}");
    assert_eq!(gw.refusals("websocket_message").await, 1);
    clients_become(&gw, 0).await;
    phones_still_served(&gw, &mut probe, "dnd_on").await;
    gw.stop().await;
}
