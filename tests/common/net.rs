//! Loopback sockets: free ports, raw HTTP as phones write it, a listener that records requests.

use std::net::{SocketAddr, TcpListener};

use super::TIMEOUT;

/// A port nobody listens on right now, for a simulated phone that binds it later. Taken below
/// Linux's ephemeral range (32768 and up): a port the kernel handed out for port 0 could be
/// handed out again, as the source port of an outgoing connection, before the phone binds it.
pub fn free_port() -> SocketAddr {
    use std::sync::atomic::{AtomicU16, Ordering};
    const FIRST: u16 = 20_000;
    const SPAN: u16 = 12_000;
    // Each test binary starts elsewhere in the span, then counts up.
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let start = (std::process::id() % u32::from(SPAN)) as u16;
    for _ in 0..SPAN {
        let offset = start.wrapping_add(NEXT.fetch_add(1, Ordering::Relaxed)) % SPAN;
        if let Ok(listener) = TcpListener::bind(("127.0.0.1", FIRST + offset)) {
            return listener.local_addr().unwrap();
        }
    }
    panic!("no free port between {FIRST} and {}", FIRST + SPAN);
}

/// Sends raw bytes to the gateway's HTTP port and returns the whole answer.
pub async fn raw_http(addr: SocketAddr, request: &[u8]) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(request).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(TIMEOUT, stream.read_to_end(&mut answer))
        .await
        .expect("an answer in time")
        .unwrap();
    String::from_utf8_lossy(&answer).into_owned()
}

/// The status code of a raw HTTP answer.
pub fn status_of(answer: &str) -> u16 {
    answer
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// A plain HTTP listener posing as a phone or as anybody's service: it records the head of every
/// request that arrives, as sent, and answers each with the raw response `answer` gives for it.
pub async fn recording_listener(
    answer: impl Fn(&str) -> String + Send + Sync + 'static,
) -> (SocketAddr, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let socket = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = socket.local_addr().unwrap();
    let heard = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let kept = heard.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = socket.accept().await {
            let mut head = Vec::new();
            let mut buf = [0u8; 1024];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                match stream.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => head.extend_from_slice(&buf[..n]),
                }
            }
            let head = String::from_utf8_lossy(&head).into_owned();
            let reply = answer(&head);
            kept.lock().unwrap().push(head);
            let _ = stream.write_all(reply.as_bytes()).await;
        }
    });
    (addr, heard)
}

/// A "phone" on `addr` (port 0: any free one) that takes every connection and never answers,
/// until the returned task is aborted; its address.
pub async fn silent_listener(addr: SocketAddr) -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let socket = tokio::net::TcpListener::bind(addr).await.unwrap();
    let addr = socket.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = socket.accept().await {
            held.push(stream);
        }
    });
    (addr, task)
}

/// An HTTP client that follows no redirect, to see them.
pub fn no_redirect_client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// Sends a raw request and returns the answer's head (a refused upgrade keeps the connection).
pub async fn raw_head(addr: SocketAddr, request: &[u8]) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(request).await.unwrap();
    let mut answer = Vec::new();
    let mut buffer = [0u8; 4096];
    while !answer.windows(4).any(|w| w == b"\r\n\r\n") {
        let read = tokio::time::timeout(TIMEOUT, stream.read(&mut buffer))
            .await
            .expect("an answer in time")
            .unwrap();
        if read == 0 {
            break;
        }
        answer.extend_from_slice(&buffer[..read]);
    }
    String::from_utf8_lossy(&answer).into_owned()
}

/// Sends a request; the answer's status.
pub async fn status(request: reqwest::RequestBuilder) -> reqwest::StatusCode {
    request.send().await.unwrap().status()
}

/// Sends a request and reads its answer as JSON.
pub async fn json_of(request: reqwest::RequestBuilder) -> serde_json::Value {
    request.send().await.unwrap().json().await.unwrap()
}

/// Waits until something (a `phone2mqtt serve` just started) accepts connections on `addr`.
pub async fn wait_listening(addr: SocketAddr, what: &str) {
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    while tokio::net::TcpStream::connect(addr).await.is_err() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what} does not listen on {addr}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}
