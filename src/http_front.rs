//! The HTTP listener, lenient about request lines the way desk phones write them.
//!
//! Phones paste values into Action URLs verbatim: raw spaces (`display_remote=Anna Schmidt`),
//! non-ASCII names, stray `%`. A stock HTTP/1.1 parser answers 400 to those. So each connection's
//! first request head is read here, its target is re-encoded (`%XX` for every byte a URI may not
//! hold; nothing that is already valid changes, `+` included), and the connection is handed to
//! hyper and the axum router with the repaired head in front of the rest of the stream.
//! Action URL requests are answered with `Connection: close`, so that each one gets this repair;
//! a plain one (a GET with no body, as phones send them, the bulk of the traffic) is run through
//! the router and answered here, without a hyper connection of its own.
//! A head that is not HTTP at all gets a 400 here, and the listener goes on serving.
//!
//! The same front serves plain TCP and TLS (`[http] tls_listen`): a TLS connection is
//! handshaken first, then read, repaired and answered the same way, and each of its requests
//! carries [`ViaTls`].
//!
//! `[limits]` are enforced here, each refusal answered and counted ([`Limit`]): connections in
//! all (`connections`, 503) and from one address (`connections_per_address`, 429), checked as
//! a connection is accepted; the people's routes (anything but [`is_phone_path`]) hold at most
//! `people_connections` of them (503), so a flood of browsers or scripts leaves the rest to
//! phones; a connection silent for `http_idle_secs` before a head (408) or between requests is
//! closed; a head over `http_head_bytes` gets a 431.

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::Router;
use bytes::{Buf, Bytes, BytesMut};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;
use tracing::{debug, warn};

use crate::metrics::{Limit, Metrics};

/// The largest answer to a callback this front writes itself (they are a line of text).
const MAX_CALLBACK_ANSWER: usize = 16 * 1024;
/// How long a client may take to complete its TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Refusals being answered at once at most; past that a refused connection is just closed,
/// so that a flood costs no more than this many tasks.
const REFUSALS_IN_FLIGHT: usize = 256;
/// How long a refused client has to send its head before it is answered anyway.
const REFUSAL_READ: Duration = Duration::from_secs(1);
/// How long a new connection waits for the room a closed silent one leaves.
const EVICTION_WAIT: Duration = Duration::from_millis(200);
/// What a client over a budget is told to wait before trying again.
const RETRY_AFTER_SECS: u32 = 5;

/// The request extension of every request that arrived over TLS (`[http] tls_listen`); the
/// session cookie is then `Secure`.
#[derive(Clone, Copy, Debug)]
pub struct ViaTls;

/// What every listener shares: `[limits]` and the counters of its refusals.
#[derive(Debug, Clone, Default)]
pub struct Front {
    pub limits: crate::config::LimitsConfig,
    pub metrics: Arc<crate::metrics::Metrics>,
}

/// One listening socket and what it serves.
pub struct Listener {
    pub tcp: TcpListener,
    /// Handshake every connection first; `None`: plain HTTP.
    pub tls: Option<TlsAcceptor>,
    pub router: Router,
}

/// Whether `path` is one of the phones' routes (`crate::agent::receiver`): Action URL
/// callbacks, logos and provisioning files (`/<file>`). Everything else (the Manager, the REST
/// API, `/ws`, `/metrics`, login) is the people's side and counts against their budget.
pub fn is_phone_path(path: &str) -> bool {
    /// The people's routes of one segment, which `/<file>` would otherwise take for a file.
    const PEOPLE: [&str; 4] = ["/ws", "/metrics", "/login", "/logout"];
    if path.starts_with("/action/") || path.starts_with("/logos/") {
        return true;
    }
    path.len() > 1 && !path[1..].contains('/') && !PEOPLE.contains(&path)
}

/// The connection budgets every listener draws from.
struct Budgets {
    all: Arc<Semaphore>,
    people: Arc<Semaphore>,
    per_address: Arc<Mutex<HashMap<IpAddr, usize>>>,
    refusals: Arc<Semaphore>,
    /// Connections that have not sent their first head yet, oldest first: at the connection
    /// limit the one silent longest makes room, so that idle sockets from many addresses cannot
    /// keep phones out.
    silent: Arc<Mutex<BTreeMap<u64, CancellationToken>>>,
    next_silent: AtomicU64,
    limits: crate::config::LimitsConfig,
    metrics: Arc<Metrics>,
}

impl Budgets {
    /// A slot for a new connection from `ip`, or the limit it is over. At the connection limit,
    /// the connection silent longest is closed to make room.
    async fn admit(&self, ip: IpAddr) -> Result<Admission, Limit> {
        let ip = ip.to_canonical();
        let address = {
            let mut counts = self.per_address.lock().unwrap_or_else(|p| p.into_inner());
            let count = counts.entry(ip).or_insert(0);
            if *count >= self.limits.connections_per_address {
                return Err(Limit::connections_per_address);
            }
            *count += 1;
            AddressSlot {
                ip,
                counts: self.per_address.clone(),
            }
        };
        let all = match self.all.clone().try_acquire_owned() {
            Ok(all) => all,
            Err(_) => {
                if !self.evict_silent() {
                    return Err(Limit::connections);
                }
                tokio::time::timeout(EVICTION_WAIT, self.all.clone().acquire_owned())
                    .await
                    .ok()
                    .and_then(Result::ok)
                    .ok_or(Limit::connections)?
            }
        };
        let seq = self.next_silent.fetch_add(1, Ordering::Relaxed);
        let token = CancellationToken::new();
        lock(&self.silent).insert(seq, token.clone());
        Ok(Admission {
            _all: all,
            _address: address,
            people: Arc::new(Mutex::new(None)),
            budget: self.people.clone(),
            silent: Some(SilentSlot {
                seq,
                token,
                silent: self.silent.clone(),
            }),
        })
    }

    /// Closes the connection that has waited longest without sending its head; whether there
    /// was one. Counted under `connections`: the budget it defends.
    fn evict_silent(&self) -> bool {
        let Some((_, token)) = lock(&self.silent).pop_first() else {
            return false;
        };
        token.cancel();
        self.metrics.refused(Limit::connections);
        true
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

/// A connection's place among those not heard from yet; left when its head arrives.
struct SilentSlot {
    seq: u64,
    /// Cancelled when the connection is closed to make room.
    token: CancellationToken,
    silent: Arc<Mutex<BTreeMap<u64, CancellationToken>>>,
}

impl Drop for SilentSlot {
    fn drop(&mut self) {
        lock(&self.silent).remove(&self.seq);
    }
}

/// One connection from an address, given back when dropped.
struct AddressSlot {
    ip: IpAddr,
    counts: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

impl Drop for AddressSlot {
    fn drop(&mut self) {
        let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(count) = counts.get_mut(&self.ip) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                counts.remove(&self.ip);
            }
        }
    }
}

/// What an admitted connection holds until its stream is dropped (an upgraded websocket's
/// too): its place in the budgets, and once it asked for a people's route, a people's one.
struct Admission {
    _all: OwnedSemaphorePermit,
    _address: AddressSlot,
    people: Arc<Mutex<Option<OwnedSemaphorePermit>>>,
    budget: Arc<Semaphore>,
    /// Until its first head arrives.
    silent: Option<SilentSlot>,
}

impl Admission {
    /// Cancelled when this connection, still silent, is closed to make room.
    fn evicted(&self) -> CancellationToken {
        self.silent
            .as_ref()
            .map(|slot| slot.token.clone())
            .unwrap_or_default()
    }

    /// Whether this connection may serve a request for `path`: phones' routes always, the
    /// people's if it holds (or can take) a people's slot.
    fn allows(&self, path: &str) -> bool {
        people_allowed(&self.people, &self.budget, path)
    }
}

fn people_allowed(
    held: &Mutex<Option<OwnedSemaphorePermit>>,
    budget: &Arc<Semaphore>,
    path: &str,
) -> bool {
    if is_phone_path(path) {
        return true;
    }
    let mut held = held.lock().unwrap_or_else(|p| p.into_inner());
    if held.is_none() {
        *held = budget.clone().try_acquire_owned().ok();
    }
    held.is_some()
}

/// The answer to a refusal by `limit`: status, reason phrase and text.
fn refusal(limit: Limit, limits: &crate::config::LimitsConfig) -> (u16, &'static str, String) {
    match limit {
        Limit::connections_per_address => (
            429,
            "Too Many Requests",
            format!(
                "too many connections from this address (at most {}, [limits] connections_per_address); try again shortly",
                limits.connections_per_address
            ),
        ),
        Limit::people_connections => (
            503,
            "Service Unavailable",
            format!(
                "the Manager and the API are at their connection limit ({}, [limits] people_connections); phones are still served; try again shortly",
                limits.people_connections
            ),
        ),
        _ => (
            503,
            "Service Unavailable",
            format!(
                "the gateway is at its connection limit ({}, [limits] connections); try again shortly",
                limits.connections
            ),
        ),
    }
}

/// Serves every listener until `shutdown` is cancelled; their connections count against one
/// limit, so a flood on one port cannot take more than the front holds altogether.
pub async fn serve_all(
    listeners: Vec<Listener>,
    front: Front,
    shutdown: CancellationToken,
    tracker: TaskTracker,
) {
    let budgets = Arc::new(Budgets {
        all: Arc::new(Semaphore::new(front.limits.connections)),
        people: Arc::new(Semaphore::new(front.limits.people_connections)),
        per_address: Arc::default(),
        refusals: Arc::new(Semaphore::new(REFUSALS_IN_FLIGHT)),
        silent: Arc::default(),
        next_silent: AtomicU64::new(0),
        limits: front.limits,
        metrics: front.metrics,
    });
    futures_util::future::join_all(
        listeners.into_iter().map(|listener| {
            accept_loop(listener, budgets.clone(), shutdown.clone(), tracker.clone())
        }),
    )
    .await;
}

async fn accept_loop(
    Listener {
        tcp: listener,
        tls,
        router,
    }: Listener,
    budgets: Arc<Budgets>,
    shutdown: CancellationToken,
    tracker: TaskTracker,
) {
    let mut backoff = Duration::from_millis(10);
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = shutdown.cancelled() => return,
        };
        match accepted {
            Ok((stream, peer)) => {
                backoff = Duration::from_millis(10);
                let admission = match budgets.admit(peer.ip()).await {
                    Ok(admission) => admission,
                    Err(limit) => {
                        budgets.metrics.refused(limit);
                        debug!(%peer, ?limit, "Connection refused.");
                        refuse_early(stream, tls.is_some(), limit, &budgets, &tracker);
                        continue;
                    }
                };
                let router = router.clone();
                let shutdown = shutdown.clone();
                let tls = tls.clone();
                let budgets = budgets.clone();
                tracker.spawn(async move {
                    let result = match tls {
                        None => {
                            connection(stream, peer, router, shutdown, None, admission, &budgets)
                                .await
                        }
                        Some(acceptor) => {
                            let evicted = admission.evicted();
                            let handshake = tokio::select! {
                                handshake = tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake(acceptor, stream)) => handshake,
                                () = shutdown.cancelled() => return,
                                () = evicted.cancelled() => return,
                            };
                            match handshake {
                                Ok(Ok(Some(stream))) => {
                                    connection(
                                        stream,
                                        peer,
                                        router,
                                        shutdown,
                                        Some(ViaTls),
                                        admission,
                                        &budgets,
                                    )
                                    .await
                                }
                                Ok(Ok(None)) => Ok(()),
                                // Scanners and clients that do not trust the certificate end
                                // here all day: not worth a warning.
                                Ok(Err(err)) => {
                                    debug!(%peer, cause = %err, "TLS handshake failed.");
                                    Ok(())
                                }
                                Err(_) => {
                                    debug!(%peer, "TLS handshake timed out.");
                                    Ok(())
                                }
                            }
                        }
                    };
                    if let Err(err) = result {
                        debug!(%peer, cause = %err, "Connection ended with an error.");
                    }
                });
            }
            Err(err) => {
                // Out of file descriptors and the like: wait, then accept again.
                warn!(cause = %err, retry_in = ?backoff, "Accept failed.");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(64));
            }
        }
    }
}

/// Answers a connection refused before its head was read. Its head is read first (briefly),
/// so that the client sees the answer rather than a reset; past [`REFUSALS_IN_FLIGHT`], or on
/// the TLS port (an answer would need a handshake), it is only closed.
fn refuse_early(
    mut stream: TcpStream,
    tls: bool,
    limit: Limit,
    budgets: &Budgets,
    tracker: &TaskTracker,
) {
    if tls {
        return;
    }
    let Ok(slot) = budgets.refusals.clone().try_acquire_owned() else {
        return;
    };
    let (status, reason, text) = refusal(limit, &budgets.limits);
    let head_bytes = budgets.limits.http_head_bytes;
    tracker.spawn(async move {
        let _ = tokio::time::timeout(REFUSAL_READ, read_head(&mut stream, head_bytes)).await;
        let _ = respond_retry(&mut stream, status, reason, &text, Some(RETRY_AFTER_SECS)).await;
        drop(slot);
    });
}

/// The TLS handshake; `Ok(None)` when the client spoke plain HTTP and was told to use HTTPS.
async fn handshake(
    acceptor: TlsAcceptor,
    mut stream: TcpStream,
) -> io::Result<Option<tokio_rustls::server::TlsStream<TcpStream>>> {
    // A TLS connection opens with a handshake record (0x16); an `http://` address typed for
    // the HTTPS port opens with a method's capital letter, and gets a line saying so instead
    // of a connection reset.
    let mut first = [0u8; 1];
    if stream.peek(&mut first).await? == 1 && first[0].is_ascii_uppercase() {
        let mut discard = BytesMut::with_capacity(1024);
        let _ =
            tokio::time::timeout(Duration::from_millis(100), stream.read_buf(&mut discard)).await;
        respond(
            &mut stream,
            400,
            "Bad Request",
            "this port speaks HTTPS: use an https:// address",
        )
        .await?;
        return Ok(None);
    }
    acceptor.accept(stream).await.map(Some)
}

/// A connection's byte stream: TCP, or TLS over it.
trait Stream: AsyncRead + AsyncWrite + Unpin + Send + 'static {}

impl<S: AsyncRead + AsyncWrite + Unpin + Send + 'static> Stream for S {}

/// The path of a repaired head's request line (`GET /path?query HTTP/1.1`).
fn head_path(head: &[u8]) -> &str {
    let target = head.split(|&b| b == b' ').nth(1).unwrap_or_default();
    let path = target.split(|&b| b == b'?').next().unwrap_or_default();
    std::str::from_utf8(path).unwrap_or("/")
}

async fn connection<S: Stream>(
    mut stream: S,
    peer: SocketAddr,
    router: Router,
    shutdown: CancellationToken,
    via_tls: Option<ViaTls>,
    mut admission: Admission,
    budgets: &Budgets,
) -> io::Result<()> {
    let limits = &budgets.limits;
    let metrics = &budgets.metrics;
    let idle = Duration::from_secs(limits.http_idle_secs);
    let evicted = admission.evicted();
    let head = tokio::select! {
        head = tokio::time::timeout(idle, read_head(&mut stream, limits.http_head_bytes)) => head,
        () = shutdown.cancelled() => return Ok(()),
        // Silent while the gateway was full: closed to make room (counted by the evictor).
        () = evicted.cancelled() => return Ok(()),
    };
    // Heard from: no longer among those closed to make room.
    admission.silent = None;
    let buffered = match head {
        Err(_) => {
            metrics.refused(Limit::http_idle);
            return respond(
                &mut stream,
                408,
                "Request Timeout",
                &format!(
                    "the request head did not arrive within {} s ([limits] http_idle_secs)",
                    limits.http_idle_secs
                ),
            )
            .await;
        }
        Ok(Err(HeadError::Closed)) => return Ok(()),
        Ok(Err(HeadError::TooLarge)) => {
            metrics.refused(Limit::http_head);
            return respond(
                &mut stream,
                431,
                "Request Header Fields Too Large",
                &format!(
                    "the request head is larger than {} bytes ([limits] http_head_bytes)",
                    limits.http_head_bytes
                ),
            )
            .await;
        }
        Ok(Err(HeadError::Io(err))) => return Err(err),
        Ok(Ok(buffered)) => buffered,
    };
    let prefix = match repair_head(&buffered) {
        Ok(prefix) => prefix,
        Err(reason) => {
            warn!(%peer, reason, "Malformed HTTP request refused.");
            return respond(&mut stream, 400, "Bad Request", reason).await;
        }
    };
    if !admission.allows(head_path(&prefix)) {
        metrics.refused(Limit::people_connections);
        let (status, reason, text) = refusal(Limit::people_connections, limits);
        return respond_retry(&mut stream, status, reason, &text, Some(RETRY_AFTER_SECS)).await;
    }
    if let Some(mut request) = callback_request(&prefix, peer) {
        if let Some(marker) = via_tls {
            request.extensions_mut().insert(marker);
        }
        return answer_callback(&mut stream, request, router).await;
    }
    let people = admission.people.clone();
    let people_budget = admission.budget.clone();
    let refused_people = people_refusal(limits);
    let counter = metrics.clone();
    let io = TokioIo::new(Prefixed {
        prefix,
        inner: stream,
        _admission: admission,
    });
    let service =
        hyper::service::service_fn(move |mut request: hyper::Request<hyper::body::Incoming>| {
            // A kept-alive connection that began with a phone's route asks for a people's one.
            let allowed = people_allowed(&people, &people_budget, request.uri().path());
            if !allowed {
                counter.refused(Limit::people_connections);
            }
            request.extensions_mut().insert(ConnectInfo(peer));
            if let Some(marker) = via_tls {
                request.extensions_mut().insert(marker);
            }
            let router = router.clone();
            let refused = refused_people.clone();
            async move {
                if allowed {
                    router.oneshot(request.map(axum::body::Body::new)).await
                } else {
                    Ok(refused.into_response())
                }
            }
        });
    let connection = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        // Covers the wait for each next request on a kept-alive connection too.
        .header_read_timeout(idle)
        .max_buf_size(limits.http_head_bytes.max(8192))
        .serve_connection(io, service)
        .with_upgrades();
    tokio::pin!(connection);
    let result = tokio::select! {
        result = connection.as_mut() => result,
        () = shutdown.cancelled() => {
            connection.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(Duration::from_secs(5), connection).await;
            return Ok(());
        }
    };
    match result {
        Err(err) if err.is_timeout() => {
            metrics.refused(Limit::http_idle);
            Ok(())
        }
        Err(err) if err.is_parse_too_large() => {
            metrics.refused(Limit::http_head);
            Ok(())
        }
        result => result.map_err(io::Error::other),
    }
}

/// The 503 a people's request gets on a connection that could not take a people's slot.
#[derive(Clone)]
struct PeopleRefusal(String);

fn people_refusal(limits: &crate::config::LimitsConfig) -> PeopleRefusal {
    PeopleRefusal(refusal(Limit::people_connections, limits).2)
}

impl PeopleRefusal {
    fn into_response(self) -> axum::response::Response {
        use axum::http::{header, StatusCode};
        use axum::response::IntoResponse;
        (
            StatusCode::SERVICE_UNAVAILABLE,
            [
                (
                    header::CONTENT_TYPE,
                    "text/plain; charset=utf-8".to_string(),
                ),
                (header::RETRY_AFTER, RETRY_AFTER_SECS.to_string()),
            ],
            self.0 + "\n",
        )
            .into_response()
    }
}

enum HeadError {
    Closed,
    TooLarge,
    Io(io::Error),
}

/// Reads until the end of the first request head, at most `max` bytes of it; returns
/// everything read so far.
async fn read_head(stream: &mut impl Stream, max: usize) -> Result<BytesMut, HeadError> {
    let mut buffer = BytesMut::with_capacity(1024);
    loop {
        if let Some(end) = find_head_end(&buffer) {
            return if end > max {
                Err(HeadError::TooLarge)
            } else {
                Ok(buffer)
            };
        }
        if buffer.len() > max {
            return Err(HeadError::TooLarge);
        }
        let read = stream.read_buf(&mut buffer).await.map_err(HeadError::Io)?;
        if read == 0 {
            return if buffer.is_empty() {
                Err(HeadError::Closed)
            } else {
                Err(HeadError::Io(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "closed mid-head",
                )))
            };
        }
    }
}

/// The index just past the blank line ending the head (`\r\n\r\n`, or a bare `\n\n`).
fn find_head_end(buffer: &[u8]) -> Option<usize> {
    let crlf = buffer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| i + 4);
    let lf = buffer.windows(2).position(|w| w == b"\n\n").map(|i| i + 2);
    match (crlf, lf) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Rewrites the request line so that hyper accepts it; returns the bytes to hand on.
pub fn repair_head(buffered: &[u8]) -> Result<Bytes, &'static str> {
    let head_end = find_head_end(buffered).ok_or("incomplete request head")?;
    let line_end = buffered
        .iter()
        .position(|&b| b == b'\n')
        .ok_or("no request line")?;
    let line = &buffered[..line_end];
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let first_space = line
        .iter()
        .position(|&b| b == b' ')
        .ok_or("malformed request line")?;
    let last_space = line
        .iter()
        .rposition(|&b| b == b' ')
        .ok_or("malformed request line")?;
    if last_space <= first_space {
        return Err("malformed request line");
    }
    let method = &line[..first_space];
    let version = &line[last_space + 1..];
    let target = trim_spaces(&line[first_space + 1..last_space]);
    if method.is_empty() || method.len() > 16 || !method.iter().all(u8::is_ascii_uppercase) {
        return Err("malformed request line: bad method");
    }
    if version != b"HTTP/1.1" && version != b"HTTP/1.0" {
        return Err("malformed request line: not HTTP/1.x");
    }
    let target = strip_origin(target);
    if !target.starts_with(b"/") {
        return Err("malformed request line: the target must start with /");
    }
    let repaired = encode_target(target);
    let needs_close = repaired.as_slice() != target || target.starts_with(b"/action/");
    let mut out = BytesMut::with_capacity(buffered.len() + 64);
    out.extend_from_slice(method);
    out.extend_from_slice(b" ");
    out.extend_from_slice(&repaired);
    out.extend_from_slice(b" ");
    out.extend_from_slice(version);
    out.extend_from_slice(b"\r\n");
    let headers = &buffered[line_end + 1..head_end];
    for header in headers.split(|&b| b == b'\n') {
        let header = header.strip_suffix(b"\r").unwrap_or(header);
        if header.is_empty() {
            continue;
        }
        if needs_close && header.len() >= 11 && header[..11].eq_ignore_ascii_case(b"connection:") {
            continue;
        }
        out.extend_from_slice(header);
        out.extend_from_slice(b"\r\n");
    }
    if needs_close {
        out.extend_from_slice(b"Connection: close\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(&buffered[head_end..]);
    Ok(out.freeze())
}

fn trim_spaces(mut bytes: &[u8]) -> &[u8] {
    while let [b' ', rest @ ..] = bytes {
        bytes = rest;
    }
    while let [rest @ .., b' '] = bytes {
        bytes = rest;
    }
    bytes
}

/// `http://host:port/path` (absolute form, as some phones send through proxies) to `/path`.
fn strip_origin(target: &[u8]) -> &[u8] {
    for scheme in [&b"http://"[..], &b"https://"[..]] {
        if target.len() > scheme.len() && target[..scheme.len()].eq_ignore_ascii_case(scheme) {
            let rest = &target[scheme.len()..];
            return rest
                .iter()
                .position(|&b| b == b'/')
                .map_or(b"/", |i| &rest[i..]);
        }
    }
    target
}

/// Percent-encodes every byte a URI target may not hold. Valid `%XX` escapes stay as they are,
/// a stray `%` becomes `%25`: a choice per `%` that the percent-encoding crate's byte sets
/// cannot make, hence this loop.
fn encode_target(target: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(target.len());
    for (i, &byte) in target.iter().enumerate() {
        let allowed = byte.is_ascii_alphanumeric()
            || b"-._~!$&'()*+,;=:@/?".contains(&byte)
            || (byte == b'%'
                && target.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
                && target.get(i + 2).is_some_and(u8::is_ascii_hexdigit));
        if allowed {
            out.push(byte);
        } else {
            out.extend_from_slice(format!("%{byte:02X}").as_bytes());
        }
    }
    out
}

/// An Action URL callback as phones send it (`GET /action/...`, no body, nothing after the
/// head), as a request for the router; `None` for anything else, which goes to hyper.
///
/// Callbacks are nearly all the traffic, one connection each, thousands at once in a
/// registration storm: a hyper connection for each costs 16 KB of buffers and a good share of
/// the CPU a callback takes (BENCHMARKS.md), for a request whose head is already here. The
/// head was repaired by `repair_head`, so it is read strictly, with httparse as hyper reads it.
fn callback_request(
    head: &[u8],
    peer: SocketAddr,
) -> Option<axum::http::Request<axum::body::Body>> {
    use axum::http::{HeaderName, HeaderValue, Method, Version};
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut parsed = httparse::Request::new(&mut headers);
    match parsed.parse(head) {
        Ok(httparse::Status::Complete(end)) if end == head.len() => {}
        _ => return None,
    }
    let target = parsed.path?;
    if parsed.method? != "GET" || !target.starts_with("/action/") {
        return None;
    }
    let version = match parsed.version? {
        1 => Version::HTTP_11,
        0 => Version::HTTP_10,
        _ => return None,
    };
    let mut request = axum::http::Request::builder()
        .method(Method::GET)
        .uri(target)
        .version(version)
        .body(axum::body::Body::empty())
        .ok()?;
    for header in parsed.headers.iter() {
        let name = HeaderName::from_bytes(header.name.as_bytes()).ok()?;
        let value = HeaderValue::from_bytes(header.value).ok()?;
        // A body, announced either way, is hyper's to read.
        let has_body = (name == axum::http::header::CONTENT_LENGTH && value != "0")
            || name == axum::http::header::TRANSFER_ENCODING;
        if has_body {
            return None;
        }
        request.headers_mut().append(name, value);
    }
    request.extensions_mut().insert(ConnectInfo(peer));
    Some(request)
}

/// Runs a callback through the router and writes the answer, then closes the connection.
async fn answer_callback(
    stream: &mut impl Stream,
    request: axum::http::Request<axum::body::Body>,
    router: Router,
) -> io::Result<()> {
    use axum::http::header;
    let response = match router.oneshot(request).await {
        Ok(response) => response,
        Err(never) => match never {},
    };
    let (parts, body) = response.into_parts();
    let body = axum::body::to_bytes(body, MAX_CALLBACK_ANSWER)
        .await
        .map_err(io::Error::other)?;
    let mut out = Vec::with_capacity(256 + body.len());
    let status = parts.status;
    out.extend_from_slice(
        format!(
            "HTTP/1.1 {} {}\r\n",
            status.as_u16(),
            status.canonical_reason().unwrap_or("")
        )
        .as_bytes(),
    );
    for (name, value) in &parts.headers {
        if name != header::CONTENT_LENGTH && name != header::CONNECTION && name != header::DATE {
            out.extend_from_slice(name.as_str().as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(value.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
    }
    out.extend_from_slice(
        format!(
            "content-length: {}\r\nconnection: close\r\ndate: {}\r\n\r\n",
            body.len(),
            http_date()
        )
        .as_bytes(),
    );
    out.extend_from_slice(&body);
    stream.write_all(&out).await?;
    stream.shutdown().await
}

/// `Thu, 26 Nov 2026 21:49:09 GMT`.
fn http_date() -> String {
    httpdate::fmt_http_date(std::time::SystemTime::now())
}

async fn respond(
    stream: &mut impl Stream,
    status: u16,
    reason: &str,
    body: &str,
) -> io::Result<()> {
    respond_retry(stream, status, reason, body, None).await
}

/// Answers and closes; with `retry_after`, says when to try again.
async fn respond_retry(
    stream: &mut impl Stream,
    status: u16,
    reason: &str,
    body: &str,
    retry_after: Option<u32>,
) -> io::Result<()> {
    let retry_after = retry_after
        .map(|secs| format!("Retry-After: {secs}\r\n"))
        .unwrap_or_default();
    let response = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\n{retry_after}Connection: close\r\n\r\n{body}\n",
        body.len() + 1
    );
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await
}

/// A stream with some bytes already read from it put back in front, holding its connection's
/// place in the budgets as long as it lives (an upgraded websocket's too).
struct Prefixed<S> {
    prefix: Bytes,
    inner: S,
    _admission: Admission,
}

impl<S: Stream> AsyncRead for Prefixed<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if !self.prefix.is_empty() {
            let n = self.prefix.len().min(buf.remaining());
            buf.put_slice(&self.prefix[..n]);
            self.prefix.advance(n);
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: Stream> AsyncWrite for Prefixed<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repaired(head: &str) -> String {
        String::from_utf8(repair_head(head.as_bytes()).unwrap().to_vec()).unwrap()
    }

    #[test]
    fn raw_spaces_and_plus_are_repaired() {
        let out = repaired("GET /action/t/yealink/incoming_call?remote=+4930123456&display_remote=Anna Schmidt&call_id=$call_id HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\n\r\n");
        assert!(out.starts_with("GET /action/t/yealink/incoming_call?remote=+4930123456&display_remote=Anna%20Schmidt&call_id=$call_id HTTP/1.1\r\n"), "{out}");
        assert!(out.contains("Connection: close\r\n") && !out.contains("keep-alive"));
    }

    #[test]
    fn valid_requests_pass_unchanged() {
        let head = "GET /api/phones?x=%20 HTTP/1.1\r\nHost: x\r\n\r\n";
        assert_eq!(repaired(head), head);
        let out = repaired("GET /a?name=Müller&p=100% HTTP/1.0\n\n");
        assert!(
            out.starts_with("GET /a?name=M%C3%BCller&p=100%25 HTTP/1.0\r\n"),
            "{out}"
        );
        assert!(repaired("GET http://10.0.0.1:8080/x HTTP/1.1\r\n\r\n").starts_with("GET /x "));
    }

    #[test]
    fn plain_callbacks_are_answered_without_hyper() {
        let peer: SocketAddr = "10.0.0.5:5060".parse().unwrap();
        let head = repair_head(b"GET /action/t/yealink/dnd_on?mac=1&n=Anna Schmidt HTTP/1.1\r\nHost: x\r\nUser-Agent: Yealink T46G\r\n\r\n").unwrap();
        let request = callback_request(&head, peer).expect("a plain callback");
        assert_eq!(request.uri().query(), Some("mac=1&n=Anna%20Schmidt"));
        assert_eq!(request.headers()["user-agent"], "Yealink T46G");
        assert!(request
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .is_some());
        for other in [
            "GET /api/phones HTTP/1.1\r\n\r\n",
            "GET /action/t/yealink/dnd_on HTTP/1.1\r\nContent-Length: 2\r\n\r\nab",
            "GET /action/t/yealink/dnd_on HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
            "GET /action/t/yealink/dnd_on HTTP/1.1\r\n\r\nGET /action/t/x/y HTTP/1.1\r\n\r\n",
            "POST /action/t/yealink/dnd_on HTTP/1.1\r\n\r\n",
        ] {
            let head = repair_head(other.as_bytes()).unwrap();
            assert!(callback_request(&head, peer).is_none(), "{other:?}");
        }
    }

    #[test]
    fn garbage_is_refused() {
        for head in [
            "\x16\x03\x01 junk\r\n\r\n",
            "GET\r\n\r\n",
            "GET /x FTP/1\r\n\r\n",
            "get /x HTTP/1.1\r\n\r\n",
            "GET x HTTP/1.1\r\n\r\n",
        ] {
            assert!(repair_head(head.as_bytes()).is_err(), "{head:?}");
        }
    }
}
