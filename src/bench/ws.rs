//! Websocket clients of `/ws`, as light as a client can be so that the CPU the machine has goes
//! to the gateway: a raw upgrade, then frames are only split and their topic read; the sequence
//! number of each event tells how late it arrived.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use bytes::{Buf, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::bench::load::{sequence_number, Timeline};
use crate::bench::stats::Histogram;

/// What one client saw.
#[derive(Debug, Clone, Default)]
pub struct Seen {
    pub events: u64,
    pub frames: u64,
    /// `{"error": "this client fell behind; N messages were dropped"}` frames.
    pub fell_behind: u64,
    pub lag: Histogram,
}

/// Clients connected to one gateway.
pub struct Clients {
    tasks: Vec<JoinHandle<Seen>>,
    /// Events received by all clients together.
    pub events: Arc<AtomicU64>,
    stop: CancellationToken,
}

impl Clients {
    /// Connects `count` clients; returns once their snapshots of retained messages have
    /// stopped coming.
    pub async fn connect(
        http: SocketAddr,
        count: usize,
        timeline: Arc<Timeline>,
        token: &str,
    ) -> anyhow::Result<Clients> {
        let events = Arc::new(AtomicU64::new(0));
        let frames = Arc::new(AtomicU64::new(0));
        let stop = CancellationToken::new();
        let mut tasks = Vec::with_capacity(count);
        for _ in 0..count {
            let stream = upgrade(http, token).await?;
            tasks.push(tokio::spawn(read_frames(
                stream,
                timeline.clone(),
                events.clone(),
                frames.clone(),
                stop.clone(),
            )));
        }
        // The snapshot: every client gets the same retained messages; wait until they stop coming.
        let mut last = u64::MAX;
        while frames.load(Ordering::Relaxed) != last {
            last = frames.load(Ordering::Relaxed);
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        Ok(Clients {
            tasks,
            events,
            stop,
        })
    }

    /// Waits until the clients together received `expected` events, or none came for `quiet`.
    pub async fn wait_for(&self, expected: u64, quiet: Duration) -> u64 {
        let mut last = self.events.load(Ordering::Relaxed);
        let mut last_change = Instant::now();
        loop {
            let now = self.events.load(Ordering::Relaxed);
            if now >= expected {
                return now;
            }
            if now != last {
                last = now;
                last_change = Instant::now();
            } else if last_change.elapsed() > quiet {
                return now;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Closes every client and returns what each saw.
    pub async fn finish(self) -> Vec<Seen> {
        self.stop.cancel();
        let mut seen = Vec::with_capacity(self.tasks.len());
        for task in self.tasks {
            seen.push(task.await.unwrap_or_default());
        }
        seen
    }
}

/// The HTTP upgrade to a websocket, by hand, with an API token.
pub async fn upgrade(http: SocketAddr, token: &str) -> anyhow::Result<(TcpStream, BytesMut)> {
    let mut stream = TcpStream::connect(http).await?;
    let request = format!(
        "GET /ws HTTP/1.1\r\nHost: {http}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: cGhvbmUybXF0dC1iZW5jaA==\r\nSec-WebSocket-Version: 13\r\nAuthorization: Bearer {token}\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await?;
    let mut buffer = BytesMut::with_capacity(16 * 1024);
    let head_end = loop {
        if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break end + 4;
        }
        if buffer.len() > 8192 || stream.read_buf(&mut buffer).await.context("upgrade")? == 0 {
            bail!("the websocket upgrade got no answer");
        }
    };
    if !buffer.starts_with(b"HTTP/1.1 101") {
        bail!(
            "the websocket upgrade was refused: {}",
            String::from_utf8_lossy(&buffer[..head_end])
        );
    }
    buffer.advance(head_end);
    Ok((stream, buffer))
}

async fn read_frames(
    (mut stream, mut buffer): (TcpStream, BytesMut),
    timeline: Arc<Timeline>,
    events: Arc<AtomicU64>,
    frames: Arc<AtomicU64>,
    stop: CancellationToken,
) -> Seen {
    let mut seen = Seen::default();
    loop {
        while let Some((opcode, payload, length)) = next_frame(&buffer) {
            if opcode == 1 {
                let frame = &buffer[payload..length];
                seen.frames += 1;
                frames.fetch_add(1, Ordering::Relaxed);
                if frame.starts_with(b"{\"error\"") {
                    seen.fell_behind += 1;
                } else if topic_of(frame).is_some_and(|t| t.ends_with(b"/event")) {
                    if let Some(lag) = sequence_number(frame)
                        .and_then(|seq| timeline.since_sent(seq, Instant::now()))
                    {
                        seen.events += 1;
                        seen.lag.record(lag);
                        events.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            buffer.advance(length);
        }
        let read = tokio::select! {
            read = stream.read_buf(&mut buffer) => read,
            () = stop.cancelled() => break,
        };
        if !matches!(read, Ok(n) if n > 0) {
            break;
        }
    }
    // A masked, empty close frame.
    let _ = stream.write_all(&[0x88, 0x80, 0, 0, 0, 0]).await;
    seen
}

/// The opcode, where the payload starts and where the frame ends, once a whole frame is in.
pub fn next_frame(buffer: &[u8]) -> Option<(u8, usize, usize)> {
    let [first, second, ..] = *buffer else {
        return None;
    };
    let (length, mut start) = match second & 0x7f {
        126 => (
            u64::from(u16::from_be_bytes(buffer.get(2..4)?.try_into().ok()?)),
            4,
        ),
        127 => (u64::from_be_bytes(buffer.get(2..10)?.try_into().ok()?), 10),
        short => (u64::from(short), 2),
    };
    if second & 0x80 != 0 {
        start += 4; // servers do not mask, but skip a mask if one is there
    }
    let end = start + usize::try_from(length).ok()?;
    (buffer.len() >= end).then_some((first & 0x0f, start, end))
}

/// `phone2mqtt/x/event` in `{"topic":"phone2mqtt/x/event","payload":...}`.
fn topic_of(frame: &[u8]) -> Option<&[u8]> {
    let rest = frame.strip_prefix(b"{\"topic\":\"")?;
    let end = rest.iter().position(|&b| b == b'"')?;
    Some(&rest[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_split() {
        let mut buffer = vec![0x81, 5];
        buffer.extend_from_slice(b"hello");
        buffer.extend_from_slice(&[0x81, 126, 0x01, 0x00]);
        buffer.extend_from_slice(&[b'x'; 256]);
        assert_eq!(next_frame(&buffer), Some((1, 2, 7)));
        assert_eq!(next_frame(&buffer[7..]), Some((1, 4, 260)));
        assert_eq!(next_frame(&buffer[7..100]), None);
        assert_eq!(
            topic_of(br#"{"topic":"phone2mqtt/a/event","payload":{}}"#),
            Some(&b"phone2mqtt/a/event"[..])
        );
    }
}
