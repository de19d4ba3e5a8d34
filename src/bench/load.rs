//! The callback flood: Action URL requests exactly as phones send them, and an MQTT subscriber
//! that counts the events they turn into.
//!
//! The URLs are the ones `phone2mqtt provision yealink` prints. Each phone's values are pasted
//! in raw, the way the simulator and real phones do it (`display_remote=Anna Schmidt`,
//! `remote=sip:+4930123456@...`), and each request goes on its own connection with
//! `Connection: close`, as phones send them. `$call_id` carries a sequence number, unique per
//! request, by which the subscriber finds when the request was sent.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use rumqttc::QoS;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;

use crate::bench::stats::Histogram;
use crate::bench::watch::Watch;
use crate::model::PhoneId;

/// The events a flood phone cycles through: a call that rings, is answered and ends. All three
/// carry `$call_id`.
pub const CALL: [&str; 3] = ["incoming_call", "call_established", "call_terminated"];

/// The Action URL templates of a provisioning file, by the vendor's event name.
pub fn action_urls(provisioning: &str) -> HashMap<String, String> {
    provisioning
        .lines()
        .filter_map(|line| line.strip_prefix("action_url."))
        .filter_map(|line| line.split_once(" = "))
        .map(|(event, url)| (event.trim().to_string(), url.trim().to_string()))
        .collect()
}

/// Flood phone `index`: a Yealink MAC and an address of its own.
pub fn phone_mac(index: usize) -> PhoneId {
    PhoneId::parse(&format!("001565{:06x}", 0xa0_0000 + index)).expect("12 hex digits")
}

/// The flood phones' `[[phone]]` entries: a site's phones are configured. Their addresses
/// answer nothing; the flood sends no command.
pub fn phone_entries(phones: usize) -> String {
    (0..phones)
        .map(|index| {
            format!(
                "[[phone]]\nmac = \"{}\"\nvendor = \"yealink\"\naddress = \"127.3.{}.{}:9\"\n\n",
                phone_mac(index),
                index / 250,
                1 + index % 250
            )
        })
        .collect()
}

/// What a Yealink phone in a call fills its variables with: the fleet phone's device variables
/// and the call's.
pub fn phone_values(mac: &PhoneId, ip: &str, line: usize) -> HashMap<&'static str, String> {
    let mut values = crate::sim::fleet::yealink_values(mac, ip, line);
    values.extend([
        ("local", format!("sip:{line}@pbx.example.com")),
        ("remote", "sip:+4930123456@pbx.example.com".to_string()),
        ("display_local", "Front Desk".to_string()),
        ("display_remote", "Anna Schmidt".to_string()),
    ]);
    values
}

/// One request with a hole where the sequence number goes.
#[derive(Debug, Clone)]
pub struct Template {
    head: Vec<u8>,
    tail: Vec<u8>,
}

impl Template {
    fn new(request: &[u8]) -> anyhow::Result<Template> {
        const HOLE: &[u8] = b"$call_id";
        let at = request
            .windows(HOLE.len())
            .position(|w| w == HOLE)
            .context("the Action URL has no $call_id")?;
        Ok(Template {
            head: request[..at].to_vec(),
            tail: request[at + HOLE.len()..].to_vec(),
        })
    }

    fn fill(&self, seq: u64, out: &mut Vec<u8>) {
        out.clear();
        out.extend_from_slice(&self.head);
        out.extend_from_slice(seq.to_string().as_bytes());
        out.extend_from_slice(&self.tail);
    }
}

/// Every flood phone's requests, in the order each phone sends them.
#[derive(Debug)]
pub struct Requests {
    /// By phone, then by step of [`CALL`].
    phones: Vec<Vec<Template>>,
}

impl Requests {
    /// The requests `phones` phones send, from the provisioning file's URLs. `repair` writes
    /// each as the lenient HTTP front hands it on (percent-encoded), for servers built on a
    /// stock HTTP parser, which refuses a raw space.
    /// `token` gives each phone's Action URL token (`$phone2mqtt_token` in the templates).
    pub fn new(
        provisioning: &str,
        phones: usize,
        repair: bool,
        token: &dyn Fn(&PhoneId) -> String,
    ) -> anyhow::Result<Requests> {
        let urls = action_urls(provisioning);
        let mut all = Vec::with_capacity(phones);
        for index in 0..phones {
            let mac = phone_mac(index);
            let mut values = phone_values(&mac, &flood_ip(index), 1000 + index);
            values.insert(super::TOKEN_VAR, token(&mac));
            let mut steps = Vec::new();
            for event in CALL {
                let template = urls
                    .get(event)
                    .with_context(|| format!("provision prints no action_url.{event}"))?;
                let url = crate::sim::substitute(template, &values);
                let (_, request) =
                    crate::sim::raw_get(&url, &crate::sim::fleet::yealink_user_agent(&mac))?;
                let request = if repair {
                    crate::http_front::repair_head(request.as_bytes())
                        .map_err(|reason| anyhow::anyhow!("repair: {reason}"))?
                        .to_vec()
                } else {
                    request.into_bytes()
                };
                steps.push(Template::new(&request)?);
            }
            all.push(steps);
        }
        Ok(Requests { phones: all })
    }

    pub fn phones(&self) -> usize {
        self.phones.len()
    }
}

fn flood_ip(index: usize) -> String {
    format!(
        "10.{}.{}.{}",
        20 + index / 62_500,
        (index / 250) % 250,
        1 + index % 250
    )
}

/// When each request was sent, by sequence number.
#[derive(Debug)]
pub struct Timeline {
    start: Instant,
    /// Nanoseconds after `start`, plus one; zero: not sent.
    sent: Vec<AtomicU64>,
}

impl Timeline {
    pub fn new(capacity: usize) -> Timeline {
        Timeline {
            start: Instant::now(),
            sent: (0..capacity).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    fn mark(&self, seq: u64, at: Instant) {
        let nanos = at.duration_since(self.start).as_nanos() as u64;
        self.sent[seq as usize].store(nanos + 1, Ordering::Relaxed);
    }

    /// How long ago request `seq` was sent.
    pub fn since_sent(&self, seq: u64, now: Instant) -> Option<Duration> {
        let nanos = self.sent.get(seq as usize)?.load(Ordering::Relaxed);
        (nanos > 0)
            .then(|| now.saturating_duration_since(self.start + Duration::from_nanos(nanos - 1)))
    }

    fn capacity(&self) -> u64 {
        self.sent.len() as u64
    }
}

/// How a flood is sent.
#[derive(Debug, Clone)]
pub struct Plan {
    pub addr: SocketAddr,
    pub requests: Arc<Requests>,
    /// Connections open at once; each phone belongs to one of them, so its events stay in order.
    pub connections: usize,
    /// Requests per second; `None`: as fast as they are answered.
    pub rate: Option<f64>,
    pub duration: Duration,
}

/// What the sending side saw.
#[derive(Debug, Clone, Default)]
pub struct Sent {
    /// Requests answered 200.
    pub ok: u64,
    pub failed: u64,
    pub first_error: Option<String>,
    /// From the first request to the last answer.
    pub elapsed: Duration,
}

/// Sends the flood; every request is marked in `timeline` when it is due (at a fixed rate:
/// its scheduled time, so a late sender counts against the latency, not for it).
pub async fn send(plan: &Plan, timeline: &Arc<Timeline>) -> Sent {
    let next = Arc::new(AtomicU64::new(0));
    let limit = match plan.rate {
        Some(rate) => ((rate * plan.duration.as_secs_f64()) as u64).min(timeline.capacity()),
        None => timeline.capacity(),
    };
    let start = Instant::now();
    let deadline = start + plan.duration;
    let connections = plan.connections.min(plan.requests.phones()).max(1);
    let mut workers = Vec::new();
    for worker in 0..connections {
        let plan = plan.clone();
        let timeline = timeline.clone();
        let next = next.clone();
        workers.push(tokio::spawn(async move {
            let phones: Vec<usize> = (worker..plan.requests.phones())
                .step_by(connections)
                .collect();
            let mut step = vec![0usize; phones.len()];
            let mut turn = 0;
            let mut sent = Sent::default();
            let mut request = Vec::with_capacity(1024);
            loop {
                let seq = next.fetch_add(1, Ordering::Relaxed);
                if seq >= limit {
                    break;
                }
                let due = match plan.rate {
                    Some(rate) => {
                        let due = start + Duration::from_secs_f64(seq as f64 / rate);
                        tokio::time::sleep_until(due.into()).await;
                        due
                    }
                    None if Instant::now() >= deadline => break,
                    None => Instant::now(),
                };
                let slot = turn % phones.len();
                turn += 1;
                let template = &plan.requests.phones[phones[slot]][step[slot] % CALL.len()];
                step[slot] += 1;
                template.fill(seq, &mut request);
                timeline.mark(seq, due);
                match exchange(plan.addr, &request).await {
                    Ok(200) => sent.ok += 1,
                    Ok(status) => {
                        sent.failed += 1;
                        sent.first_error
                            .get_or_insert_with(|| format!("HTTP {status}"));
                    }
                    Err(err) => {
                        sent.failed += 1;
                        sent.first_error.get_or_insert_with(|| err.to_string());
                    }
                }
            }
            sent
        }));
    }
    let mut total = Sent::default();
    for worker in workers {
        let sent = worker.await.unwrap_or_default();
        total.ok += sent.ok;
        total.failed += sent.failed;
        total.first_error = total.first_error.or(sent.first_error);
    }
    total.elapsed = start.elapsed();
    total
}

/// One request on its own connection; the status of the answer.
async fn exchange(addr: SocketAddr, request: &[u8]) -> std::io::Result<u16> {
    let exchange = async {
        let mut stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        stream.write_all(request).await?;
        // The answer ends where the server closes the connection.
        let mut answer = Vec::with_capacity(512);
        stream.read_to_end(&mut answer).await?;
        answer
            .split(|&b| b == b' ')
            .nth(1)
            .and_then(|code| std::str::from_utf8(code).ok())
            .and_then(|code| code.parse().ok())
            .ok_or_else(|| std::io::Error::other("no HTTP status in the answer"))
    };
    tokio::time::timeout(Duration::from_secs(10), exchange)
        .await
        .map_err(|_| std::io::Error::other("no answer within 10 s"))?
}

/// What the subscriber received.
#[derive(Debug, Clone, Default)]
pub struct Delivered {
    pub count: u64,
    pub duplicates: u64,
    /// Events of one phone that arrived after a later one of the same phone.
    pub out_of_order: u64,
    /// Messages without a sequence number the flood sent.
    pub unknown: u64,
    pub latency: Histogram,
    /// When the last event arrived.
    pub last: Option<Instant>,
}

/// An MQTT subscriber that counts flood events and how long each took.
pub struct Subscriber {
    state: Arc<Mutex<Delivered>>,
    count: watch::Receiver<u64>,
    _session: Watch,
}

impl Subscriber {
    /// Subscribes (QoS 1) to `filter` and returns once the broker confirmed it.
    pub async fn start(
        broker: SocketAddr,
        filter: &str,
        timeline: Arc<Timeline>,
        check_order: bool,
    ) -> anyhow::Result<Subscriber> {
        let state = Arc::new(Mutex::new(Delivered::default()));
        let (count_tx, count) = watch::channel(0u64);
        let shared = state.clone();
        let mut received: Vec<bool> = Vec::new();
        let mut last_by_phone: HashMap<String, u64> = HashMap::new();
        let session = Watch::start(
            broker,
            &[filter],
            QoS::AtLeastOnce,
            move |topic, payload| {
                let now = Instant::now();
                let mut state = shared.lock().unwrap_or_else(|p| p.into_inner());
                let Some((seq, latency)) = sequence_number(payload)
                    .and_then(|seq| Some((seq, timeline.since_sent(seq, now)?)))
                else {
                    state.unknown += 1;
                    return;
                };
                if received.len() <= seq as usize {
                    received.resize(seq as usize + 1, false);
                }
                if std::mem::replace(&mut received[seq as usize], true) {
                    state.duplicates += 1;
                    return;
                }
                if check_order {
                    let last = last_by_phone.entry(topic.to_string()).or_insert(seq);
                    if seq < *last {
                        state.out_of_order += 1;
                    }
                    *last = seq.max(*last);
                }
                state.count += 1;
                state.latency.record(latency);
                state.last = Some(now);
                count_tx.send_replace(state.count);
            },
        )
        .await?;
        Ok(Subscriber {
            state,
            count,
            _session: session,
        })
    }

    /// Waits until `expected` events arrived, or nothing new arrived for `quiet`.
    pub async fn wait_for(&mut self, expected: u64, quiet: Duration) -> u64 {
        loop {
            let current = *self.count.borrow_and_update();
            if current >= expected {
                return current;
            }
            if tokio::time::timeout(quiet, self.count.changed())
                .await
                .is_err()
            {
                return current;
            }
        }
    }

    /// Events received so far.
    pub fn count(&self) -> u64 {
        *self.count.borrow()
    }

    pub fn finish(self) -> Delivered {
        self.state.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// The number after `call_id` in a payload: `"call_id":"123"` in an event, `call_id=123` in
/// the baseline's echo of the request.
pub fn sequence_number(payload: &[u8]) -> Option<u64> {
    const KEY: &[u8] = b"call_id";
    let at = payload.windows(KEY.len()).position(|w| w == KEY)? + KEY.len();
    let digits: Vec<u8> = payload[at..]
        .iter()
        .skip_while(|b| matches!(b, b'"' | b':' | b'=' | b' '))
        .take_while(|b| b.is_ascii_digit())
        .copied()
        .collect();
    std::str::from_utf8(&digits).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequence_numbers_are_found_in_events_and_echoes() {
        assert_eq!(
            sequence_number(br#"{"event":"incoming_call","call_id":"4711","vars":{}}"#),
            Some(4711)
        );
        assert_eq!(
            sequence_number(br#"{"uri":"/action/t/yealink/x?mac=1&call_id=12"}"#),
            Some(12)
        );
        assert_eq!(sequence_number(br#"{"call_id":null}"#), None);
    }

    #[test]
    fn requests_are_raw_unless_repaired() {
        let provisioning = "action_url.incoming_call = http://127.0.0.1:1/action/t/yealink/incoming_call?mac=$mac&display_remote=$display_remote&remote=$remote&call_id=$call_id\naction_url.call_established = http://127.0.0.1:1/action/t/yealink/call_established?call_id=$call_id\naction_url.call_terminated = http://127.0.0.1:1/action/t/yealink/call_terminated?call_id=$call_id\n";
        let raw = Requests::new(provisioning, 2, false, &|_| "t".into()).unwrap();
        let mut out = Vec::new();
        raw.phones[1][0].fill(42, &mut out);
        let text = String::from_utf8(out.clone()).unwrap();
        assert!(text.starts_with("GET /action/t/yealink/incoming_call?mac=00:15:65:a0:00:01&display_remote=Anna Schmidt&remote=sip:+4930123456@pbx.example.com&call_id=42 HTTP/1.1\r\n"), "{text}");
        assert!(text.contains("\r\nConnection: close\r\n"));
        let repaired = Requests::new(provisioning, 2, true, &|_| "t".into()).unwrap();
        repaired.phones[1][0].fill(42, &mut out);
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("display_remote=Anna%20Schmidt&"), "{text}");
    }
}
