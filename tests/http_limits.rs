//! The HTTP front's `[limits]`, tried through real sockets: connections in all, from one
//! address and on the people's side, idle connections, heads and bodies. Each refusal is seen
//! by the client and counted on `/metrics`, and phones' callbacks and REST commands are still
//! answered during and after the flood.

mod common;

use std::net::{IpAddr, SocketAddr};

use common::*;
use phone2mqtt::config::Config;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

const MAC: &str = "00:15:65:4a:a9:37";
const ID: &str = "0015654aa937";

fn config(adjust: impl FnOnce(&mut phone2mqtt::config::LimitsConfig)) -> Config {
    let mut config = test_config();
    adjust(&mut config.limits);
    config
}

/// A connection to the gateway from `source` (any of 127/8: each is its own address).
async fn connect_from(gw: &TestGateway, source: &str) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket
        .bind(SocketAddr::new(source.parse::<IpAddr>().unwrap(), 0))
        .unwrap();
    socket.connect(gw.gateway.http_addr).await.unwrap()
}

/// Reads one answer's head (and what came with it) from a kept-alive connection.
async fn read_answer(stream: &mut TcpStream) -> String {
    let mut answer = Vec::new();
    let mut buffer = [0u8; 4096];
    while !answer.windows(4).any(|w| w == b"\r\n\r\n") {
        let read = tokio::time::timeout(TIMEOUT, stream.read(&mut buffer))
            .await
            .expect("an answer in time")
            .unwrap_or(0);
        if read == 0 {
            break;
        }
        answer.extend_from_slice(&buffer[..read]);
    }
    String::from_utf8_lossy(&answer).into_owned()
}

/// Sends `request` and reads one answer, its body as long as its Content-Length says: a
/// refused body is never read, so the connection is not closed at once.
async fn one_answer(gw: &TestGateway, request: &str) -> String {
    let mut stream = connect_from(gw, "127.0.0.1").await;
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = read_answer(&mut stream).await;
    let length: usize = answer
        .lines()
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().ok())?
        })
        .unwrap_or(0);
    let head_end = answer.find("\r\n\r\n").map_or(answer.len(), |i| i + 4);
    while answer.len() < head_end + length {
        let mut buffer = [0u8; 4096];
        let read = tokio::time::timeout(TIMEOUT, stream.read(&mut buffer))
            .await
            .expect("the body in time")
            .unwrap_or(0);
        if read == 0 {
            break;
        }
        answer.push_str(&String::from_utf8_lossy(&buffer[..read]));
    }
    answer
}

/// Sends `request` on a new connection from `source` and returns the whole answer.
async fn request_from(gw: &TestGateway, source: &str, request: &str) -> String {
    let mut stream = connect_from(gw, source).await;
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(TIMEOUT, stream.read_to_end(&mut answer))
        .await
        .expect("an answer in time");
    String::from_utf8_lossy(&answer).into_owned()
}

/// Waits until the gateway closes `stream` (it sent nothing more), with what it said last.
async fn closed_by_gateway(stream: &mut TcpStream) -> String {
    let mut rest = Vec::new();
    tokio::time::timeout(TIMEOUT, stream.read_to_end(&mut rest))
        .await
        .expect("the gateway closes an idle connection")
        .ok();
    String::from_utf8_lossy(&rest).into_owned()
}

/// A kept-alive API request, as a script or a browser sends it.
fn api_request(gw: &TestGateway, path: &str) -> String {
    format!(
        "GET {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\n\r\n",
        gw.gateway.http_addr, gw.admin_token
    )
}

/// A callback of the phone (an incoming call from `caller`) is answered and its event
/// published, and a REST command gets its result.
async fn phones_still_served(gw: &TestGateway, probe: &mut MqttProbe, caller: &str) {
    callback_answered(gw, probe, caller).await;
    gw.rest_command_answered(ID).await;
}

async fn callback_answered(gw: &TestGateway, probe: &mut MqttProbe, caller: &str) {
    let path = format!(
        "/action/{}/yealink/incoming_call?mac={ID}&remote=sip:{caller}@pbx.example.com",
        gw.token(MAC)
    );
    let answer = phone_fetch(gw.gateway.http_addr, &path, "Yealink SIP-T46G 66.86.0.15").await;
    assert_eq!(status_of(&answer), 200, "{answer}");
    probe
        .expect(&format!("phone2mqtt/{ID}/event"), |event| {
            event["event"] == "incoming_call" && event["remote"] == caller
        })
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_people_budget_leaves_connections_to_phones_and_idle_ones_are_closed() {
    let config = config(|limits| {
        limits.connections = 32;
        limits.people_connections = 6;
        limits.connections_per_address = 32;
        limits.http_idle_secs = 1;
    });
    let (gw, _phone) = gateway_with_phone_in(config, "yealink", MAC, |_| {}).await;
    let mut probe = MqttProbe::connect(gw.mqtt_port()).await;
    // Before the flood: one callback, so that the probe knows the phone's retained state.
    phones_still_served(&gw, &mut probe, "1001").await;
    // Read now: `/metrics` is a people's route, refused while they are flooded.
    let people_before = gw.refusals("people_connections").await;
    let idle_before = gw.refusals("http_idle").await;

    // Kept-alive API connections take the whole people's budget...
    let mut held = Vec::new();
    for _ in 0..6 {
        let mut stream = connect_from(&gw, "127.0.0.2").await;
        stream
            .write_all(api_request(&gw, "/api/info").as_bytes())
            .await
            .unwrap();
        let answer = read_answer(&mut stream).await;
        assert_eq!(status_of(&answer), 200, "{answer}");
        held.push(stream);
    }
    // ...so the next person is told to come back, and a websocket too...
    let answer = request_from(&gw, "127.0.0.3", &api_request(&gw, "/api/phones")).await;
    assert_eq!(status_of(&answer), 503, "{answer}");
    assert!(answer.contains("Retry-After: 5"), "{answer}");
    assert!(answer.contains("people_connections"), "{answer}");
    let answer = request_from(&gw, "127.0.0.3", &api_request(&gw, "/ws")).await;
    assert_eq!(status_of(&answer), 503, "{answer}");
    // ...and a phone's route on a kept-alive connection cannot be turned into a people's one.
    let mut stream = connect_from(&gw, "127.0.0.4").await;
    stream
        .write_all(b"GET /nothing-here.cfg HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let answer = read_answer(&mut stream).await;
    assert_ne!(status_of(&answer), 503, "{answer}");
    stream
        .write_all(api_request(&gw, "/api/info").as_bytes())
        .await
        .unwrap();
    let answer = read_answer(&mut stream).await;
    assert_eq!(status_of(&answer), 503, "{answer}");
    drop(stream);
    // Phones are served meanwhile.
    callback_answered(&gw, &mut probe, "1002").await;

    // A kept-alive connection silent for `http_idle_secs` is closed, and counted.
    for stream in &mut held {
        closed_by_gateway(stream).await;
    }
    assert!(gw.refusals("http_idle").await >= idle_before + 6);
    assert!(gw.refusals("people_connections").await >= people_before + 3);
    // The people's budget is free again.
    phones_still_served(&gw, &mut probe, "1003").await;
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_over_the_limits_are_refused_and_silent_ones_make_room_or_time_out() {
    let config = config(|limits| {
        limits.connections = 12;
        limits.people_connections = 4;
        limits.connections_per_address = 5;
        limits.http_idle_secs = 2;
    });
    let (gw, _phone) = gateway_with_phone_in(config, "yealink", MAC, |_| {}).await;
    let mut probe = MqttProbe::connect(gw.mqtt_port()).await;
    phones_still_served(&gw, &mut probe, "1001").await;
    // The clients above close their connections as they are dropped; let the gateway see it.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;

    // One address opens connections and says nothing: the sixth is refused with a 429.
    let mut silent = Vec::new();
    for _ in 0..5 {
        silent.push(connect_from(&gw, "127.0.0.2").await);
    }
    let answer = request_from(&gw, "127.0.0.2", &api_request(&gw, "/api/info")).await;
    assert_eq!(status_of(&answer), 429, "{answer}");
    assert!(answer.contains("connections_per_address"), "{answer}");
    // Two more addresses fill the rest with silent connections: the gateway is full. (Read
    // the counter before: reading it takes a connection too.)
    let evicted_before = gw.refusals("connections").await;
    for _ in 0..5 {
        silent.push(connect_from(&gw, "127.0.0.3").await);
    }
    for _ in 0..2 {
        silent.push(connect_from(&gw, "127.0.0.4").await);
    }
    // One more past the limit: the oldest silent one is closed for it, whatever the test's own
    // connections still held.
    silent.push(connect_from(&gw, "127.0.0.6").await);
    // A phone's callback still gets in: the connection silent longest is closed for it.
    callback_answered(&gw, &mut probe, "1002").await;
    assert!(gw.refusals("connections").await > evicted_before);
    // The rest get a 408 after `http_idle_secs`, counted; the ones closed to make room (the
    // oldest: the test's own requests took room too) got nothing.
    let (mut timed_out, mut closed) = (0, 0);
    for stream in &mut silent {
        let said = closed_by_gateway(stream).await;
        match status_of(&said) {
            408 => timed_out += 1,
            _ if said.is_empty() => closed += 1,
            _ => panic!("{said}"),
        }
    }
    assert!(closed >= 1, "no silent connection was closed to make room");
    assert!(
        timed_out >= 9,
        "{timed_out} of 13 timed out, {closed} closed"
    );
    assert!(gw.refusals("http_idle").await >= timed_out);
    assert!(gw.refusals("connections_per_address").await >= 1);
    phones_still_served(&gw, &mut probe, "1003").await;
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_heads_and_bodies_get_431_and_413() {
    let config = config(|limits| {
        limits.http_head_bytes = 2048;
        limits.http_body_bytes = 1024;
        limits.image_bytes = 4096;
    });
    let (gw, _phone) = gateway_with_phone_in(config, "yealink", MAC, |_| {}).await;
    let mut probe = MqttProbe::connect(gw.mqtt_port()).await;

    let big_header = "x".repeat(4000);
    let answer = raw_http(
        gw.gateway.http_addr,
        format!("GET /api/info HTTP/1.1\r\nHost: x\r\nX-Big: {big_header}\r\n\r\n").as_bytes(),
    )
    .await;
    assert_eq!(status_of(&answer), 431, "{answer}");
    assert!(answer.contains("http_head_bytes"), "{answer}");
    assert!(gw.refusals("http_head").await >= 1);

    // A body over the limit: refused once the limit is reached.
    let answer = one_answer(
        &gw,
        &format!(
            "POST /api/phones/{ID}/cmd/dial HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: 5000\r\nConnection: close\r\n\r\n{}",
            gw.gateway.http_addr,
            gw.admin_token,
            "x".repeat(5000)
        ),
    )
    .await;
    assert_eq!(status_of(&answer), 413, "{answer}");
    assert!(answer.contains("http_body_bytes"), "{answer}");
    assert_eq!(gw.refusals("http_body").await, 1);
    // A logo has its own limit and counter.
    let answer = one_answer(
        &gw,
        &format!(
            "POST /api/phones/{ID}/logo HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\nContent-Length: 8000\r\nConnection: close\r\n\r\n{}",
            gw.gateway.http_addr,
            gw.admin_token,
            "x".repeat(8000)
        ),
    )
    .await;
    assert_eq!(status_of(&answer), 413, "{answer}");
    assert!(answer.contains("image_bytes"), "{answer}");
    assert_eq!(gw.refusals("http_body").await, 1);
    assert!(gw.refusals("image_bytes").await >= 1);
    // A body within the limit is taken.
    phones_still_served(&gw, &mut probe, "1003").await;
    gw.stop().await;
}

#[test]
fn phones_routes_are_told_from_the_peoples() {
    use phone2mqtt::http_front::is_phone_path;
    for phone in [
        "/action/t/yealink/dnd_on",
        "/logos/0015654aa937.png",
        "/0015654aa937.cfg",
        "/y000000000028.cfg",
    ] {
        assert!(is_phone_path(phone), "{phone}");
    }
    for people in [
        "/",
        "/ws",
        "/metrics",
        "/login",
        "/logout",
        "/api/info",
        "/api/phones/0015654aa937/cmd/dnd",
        "/manager/app.js",
    ] {
        assert!(!is_phone_path(people), "{people}");
    }
}
