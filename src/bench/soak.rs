//! The soak: mixed load for a long while against one gateway, its resident memory (`VmRSS`) and
//! open descriptors sampled every 10 s, then a minute idle, so that growth shows as a slope and
//! memory kept for good shows after the load.
//!
//! The load, all at once:
//! - Action URL callbacks at a fixed rate (200/s by default) from configured phones, each
//!   request with its own `$call_id`, counted by an MQTT subscriber of `phone2mqtt/+/event`;
//! - `reboot` commands on MQTT, two a second by default, to phones of the simulator's fleet that
//!   answer them, each result awaited by its transaction;
//! - websocket clients of `/ws` connected throughout, and one that reconnects every 15 s;
//! - MQTT subscribers of `phone2mqtt/#` that connect every 15 s, take the retained snapshot and
//!   what follows for 10 s, and leave: one with a fresh client id each time, one that comes back
//!   as itself;
//! - with `--soak-ha`, a subscriber with one filter per phone topic, as Home Assistant's MQTT
//!   integration subscribes to the topics its discovery names.
//!
//! The embedded broker keeps a log per subscription filter (broker.toml), so what the clients
//! subscribe to shapes the gateway's memory: BENCHMARKS.md, Soak.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Buf;
use rumqttc::QoS;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

use crate::bench::load::{self, Plan, Requests, Sent, Subscriber, Timeline};
use crate::bench::process::{Scratch, Server};
use crate::bench::stats::{thousands, Histogram};
use crate::bench::watch::Watch;
use crate::bench::{gateway_config, provision, table, BenchArgs, Discovery, Settings, Target};
use crate::sim::fleet::{Fleet, PASSWORD, USERNAME};

const SAMPLE_EVERY: Duration = Duration::from_secs(10);
/// How long the gateway is left alone after the load before the last sample.
const IDLE: Duration = Duration::from_secs(60);
/// Fleet phones the commands go to.
const COMMAND_PHONES: usize = 20;
/// How long a command's result may take before it counts as missing.
const RESULT_WAIT: Duration = Duration::from_secs(30);
const WS_CLIENTS: usize = 4;
const RECONNECT_EVERY: Duration = Duration::from_secs(15);
const CONNECTED_FOR: Duration = Duration::from_secs(10);
/// Connections the callbacks are sent on at once.
const CONNECTIONS: usize = 8;
/// A second-half slope below this counts as flat (6 MB an hour): the broker's logs of busy
/// filters grow and drop whole 1 MB segments, a saw-tooth that tilts a short run's slope by
/// about ±0.1 MB/min.
const FLAT_MB_PER_MIN: f64 = 0.1;

/// The soak's share of the arguments.
#[derive(Debug, Clone)]
pub struct SoakSettings {
    pub duration: Duration,
    pub rate: f64,
    pub phones: usize,
    pub keep: Option<PathBuf>,
    pub broker: Option<PathBuf>,
    /// Commands a second; 0: none.
    pub commands: f64,
    /// A subscriber with one filter per phone topic, as Home Assistant subscribes.
    pub ha: bool,
}

impl SoakSettings {
    pub fn new(args: &BenchArgs) -> SoakSettings {
        SoakSettings {
            duration: Duration::from_secs_f64((args.soak_minutes * 60.0).max(10.0)),
            rate: args.soak_rate.max(1.0),
            phones: args.soak_phones.clamp(1, crate::sim::fleet::MAX_PHONES),
            keep: args.soak_keep.clone(),
            broker: args.soak_broker.clone(),
            commands: args.soak_commands.max(0.0),
            ha: args.soak_ha,
        }
    }
}

/// One sample of the gateway.
#[derive(Debug, Clone, Copy, Default)]
pub struct Sample {
    /// Since the load began; the idle samples come after it.
    pub at: Duration,
    pub rss_kib: u64,
    pub fds: usize,
    /// Events the subscriber had received (each with its own call id).
    pub events: u64,
    pub results: u64,
    pub loaded: bool,
}

impl Sample {
    fn take(pid: u32, at: Duration, progress: &Progress<'_>, loaded: bool) -> Sample {
        Sample {
            at,
            rss_kib: crate::bench::process::memory_of(pid).now_kib,
            fds: descriptors(pid),
            events: progress.subscriber.count(),
            results: progress.results.load(Ordering::Relaxed),
            loaded,
        }
    }

    fn mib(&self) -> f64 {
        self.rss_kib as f64 / 1024.0
    }

    fn minutes(&self) -> f64 {
        self.at.as_secs_f64() / 60.0
    }
}

/// Open descriptors of a process: the entries of `/proc/<pid>/fd`.
pub fn descriptors(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |dir| dir.count())
}

/// What the load did, for the samples.
struct Progress<'a> {
    subscriber: &'a Subscriber,
    results: &'a AtomicU64,
}

#[derive(Debug, Clone, Default)]
pub struct SoakFigures {
    pub settings: Option<SoakSettings>,
    /// The binary that ran as the gateway.
    pub gateway: String,
    pub samples: Vec<Sample>,
    pub sent: Sent,
    pub delivered: u64,
    pub ws_events: u64,
    pub commands: Commands,
    pub mqtt_sessions: u64,
    pub mqtt_messages: u64,
    pub ws_sessions: u64,
    pub ws_frames: u64,
    /// Messages the Home Assistant-like subscriber received, when there was one.
    pub ha_messages: Option<u64>,
    pub first_error: Option<String>,
}

/// The commands sent and their results.
#[derive(Debug, Clone, Default)]
pub struct Commands {
    pub sent: u64,
    pub ok: u64,
    pub error: u64,
    pub first_error: Option<String>,
    pub latency: Histogram,
    /// Sent and not yet answered, by transaction number.
    pending: HashMap<u64, Instant>,
}

pub async fn run(settings: &Settings) -> anyhow::Result<SoakFigures> {
    let soak = &settings.soak;
    let stop_fleet = CancellationToken::new();
    let fleet = Fleet::start(COMMAND_PHONES, stop_fleet.clone()).await?;
    let scratch = Scratch::new("soak")?;
    let dir = &scratch.0;
    let mut entries = load::phone_entries(soak.phones);
    for index in 0..COMMAND_PHONES {
        entries.push_str(&format!(
            "[[phone]]\nmac = \"{}\"\nvendor = \"yealink\"\naddress = \"{}\"\nusername = \"{USERNAME}\"\npassword = \"{PASSWORD}\"\n\n",
            Fleet::mac(index),
            fleet.address(index)
        ));
    }
    let mut config = gateway_config(dir, Discovery::Retained, &entries);
    if let Some(broker) = &soak.broker {
        let broker = std::fs::canonicalize(broker)
            .with_context(|| format!("the broker config {}", broker.display()))?;
        config = config.replacen(
            "[broker]\n",
            &format!("[broker]\nconfig = \"{}\"\n", broker.display()),
            1,
        );
    }
    eprintln!(
        "soak: {} min at {} callbacks/s from {} phones, {} commands/s, gateway {}",
        soak.duration.as_secs_f64() / 60.0,
        soak.rate,
        soak.phones,
        soak.commands,
        settings.bin.display()
    );
    let server = Server::gateway(&settings.bin, dir, &config).await?;
    let result = soak_load(settings, &server, dir).await;
    let log = server.log.clone();
    server.stop().await;
    stop_fleet.cancel();
    if let Some(keep) = &soak.keep {
        std::fs::create_dir_all(keep)?;
        std::fs::copy(&log, keep.join("gateway.log"))?;
        if let Ok(figures) = &result {
            std::fs::write(keep.join("samples.csv"), figures.csv())?;
        }
    }
    result.map_err(|err| {
        err.context(format!(
            "the end of its log:\n{}",
            crate::bench::process::log_tail(&log)
        ))
    })
}

async fn soak_load(
    settings: &Settings,
    server: &Server,
    dir: &std::path::Path,
) -> anyhow::Result<SoakFigures> {
    let soak = &settings.soak;
    let broker = server.mqtt.context("the gateway names its broker")?;
    let token = server.token.clone().context("a viewer token")?;
    let provisioning = provision(&settings.bin, dir, &format!("http://{}", server.http)).await?;
    let keys = super::phone_keys(dir)?;
    let requests = Arc::new(Requests::new(&provisioning, soak.phones, false, &|mac| {
        keys.token(mac)
    })?);
    let capacity = (soak.rate * soak.duration.as_secs_f64()) as usize + 1;
    let timeline = Arc::new(Timeline::new(capacity));
    let subscriber =
        Subscriber::start(broker, "phone2mqtt/+/event", timeline.clone(), false).await?;
    let results = Arc::new(AtomicU64::new(0));
    let progress = Progress {
        subscriber: &subscriber,
        results: &results,
    };
    let ws = crate::bench::ws::Clients::connect(server.http, WS_CLIENTS, timeline.clone(), &token)
        .await?;
    // Give the start-up's allocations a moment to settle before the first sample.
    tokio::time::sleep(Duration::from_secs(2)).await;

    let stop = CancellationToken::new();
    let commands = Arc::new(Mutex::new(Commands::default()));
    let command_task = (soak.commands > 0.0).then(|| {
        tokio::spawn(send_commands(
            broker,
            Duration::from_secs_f64(1.0 / soak.commands),
            commands.clone(),
            results.clone(),
            stop.clone(),
        ))
    });
    let mqtt_counts = Arc::new((AtomicU64::new(0), AtomicU64::new(0)));
    let mut churn = Vec::new();
    for (fresh, offset) in [(true, 0), (false, 5)] {
        churn.push(tokio::spawn(reconnecting_subscriber(
            broker,
            fresh,
            Duration::from_secs(offset),
            mqtt_counts.clone(),
            stop.clone(),
        )));
    }
    let ha_messages = Arc::new(AtomicU64::new(0));
    let ha = if soak.ha {
        let mut phones: Vec<String> = (0..soak.phones)
            .map(|index| load::phone_mac(index).to_string())
            .collect();
        phones.extend((0..COMMAND_PHONES).map(|index| Fleet::mac(index).to_string()));
        Some(per_topic_subscriber(broker, &phones, ha_messages.clone()).await?)
    } else {
        None
    };
    let ws_counts = Arc::new((AtomicU64::new(0), AtomicU64::new(0)));
    let ws_churn = tokio::spawn(reconnecting_websocket(
        server.http,
        token.clone(),
        ws_counts.clone(),
        stop.clone(),
    ));

    let plan = Plan {
        addr: server.http,
        requests,
        connections: CONNECTIONS,
        rate: Some(soak.rate),
        duration: soak.duration,
    };
    let started = Instant::now();
    let mut samples = vec![Sample::take(server.pid, Duration::ZERO, &progress, true)];
    let mut sending = tokio::spawn({
        let timeline = timeline.clone();
        async move { load::send(&plan, &timeline).await }
    });
    let mut next = started + SAMPLE_EVERY;
    let sent = loop {
        tokio::select! {
            sent = &mut sending => break sent.context("the callback sender")?,
            () = tokio::time::sleep_until(next.into()) => {
                let sample = Sample::take(server.pid, started.elapsed(), &progress, true);
                report(&sample);
                samples.push(sample);
                next += SAMPLE_EVERY;
            }
        }
    };
    let load_end = started.elapsed();
    samples.push(Sample::take(server.pid, load_end, &progress, true));
    stop.cancel();
    for task in churn {
        let _ = task.await;
    }
    let _ = ws_churn.await;
    if let Some(task) = command_task {
        let _ = task.await;
    }

    // Idle (the command task has waited for the last results): nothing but the connected
    // clients.
    let idle_until = Instant::now() + IDLE;
    let mut next = Instant::now() + SAMPLE_EVERY;
    while next <= idle_until {
        tokio::time::sleep_until(next.into()).await;
        let sample = Sample::take(server.pid, started.elapsed(), &progress, false);
        report(&sample);
        samples.push(sample);
        next += SAMPLE_EVERY;
    }
    tokio::time::sleep_until(idle_until.into()).await;
    samples.push(Sample::take(
        server.pid,
        started.elapsed(),
        &progress,
        false,
    ));

    let ws_seen = ws.finish().await;
    drop(ha);
    let delivered = subscriber.finish();
    let commands = commands.lock().unwrap_or_else(|p| p.into_inner()).clone();
    Ok(SoakFigures {
        settings: Some(soak.clone()),
        gateway: settings.bin.display().to_string(),
        samples,
        first_error: sent.first_error.clone(),
        sent,
        delivered: delivered.count,
        ws_events: ws_seen.iter().map(|s| s.events).sum(),
        commands,
        mqtt_sessions: mqtt_counts.0.load(Ordering::Relaxed),
        mqtt_messages: mqtt_counts.1.load(Ordering::Relaxed),
        ws_sessions: ws_counts.0.load(Ordering::Relaxed),
        ws_frames: ws_counts.1.load(Ordering::Relaxed),
        ha_messages: soak.ha.then(|| ha_messages.load(Ordering::Relaxed)),
    })
}

fn report(sample: &Sample) {
    eprintln!(
        "soak: {:>6.1} min  {:>6.1} MB  {:>4} fds  {:>9} events  {:>6} results{}",
        sample.minutes(),
        sample.mib(),
        sample.fds,
        sample.events,
        sample.results,
        if sample.loaded { "" } else { "  (idle)" }
    );
}

/// `reboot` to the fleet's phones in turn, each with its own transaction; the results are
/// matched by it.
async fn send_commands(
    broker: SocketAddr,
    every: Duration,
    commands: Arc<Mutex<Commands>>,
    results: Arc<AtomicU64>,
    stop: CancellationToken,
) {
    let recorded = commands.clone();
    let session = Watch::start(
        broker,
        &["phone2mqtt/+/result"],
        QoS::AtLeastOnce,
        move |_, payload| {
            let Some(number) = transaction(payload) else {
                return;
            };
            let mut commands = recorded.lock().unwrap_or_else(|p| p.into_inner());
            let Some(sent) = commands.pending.remove(&number) else {
                return;
            };
            commands.latency.record(sent.elapsed());
            if payload.windows(13).any(|w| w == br#""status":"ok""#) {
                commands.ok += 1;
            } else {
                commands.error += 1;
                commands
                    .first_error
                    .get_or_insert_with(|| String::from_utf8_lossy(payload).into_owned());
            }
            results.fetch_add(1, Ordering::Relaxed);
        },
    )
    .await;
    let session = match session {
        Ok(session) => session,
        Err(err) => {
            commands
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .first_error = Some(err.to_string());
            return;
        }
    };
    let mut tick = tokio::time::interval(every);
    let mut number = 0u64;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = stop.cancelled() => break,
        }
        let phone = Fleet::mac(number as usize % COMMAND_PHONES);
        commands
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .pending
            .insert(number, Instant::now());
        let payload = format!(r#"{{"transaction":"soak-{number}"}}"#);
        if session
            .publish(&format!("phone2mqtt/{phone}/cmd/reboot"), &payload)
            .await
            .is_ok()
        {
            commands.lock().unwrap_or_else(|p| p.into_inner()).sent += 1;
        }
        number += 1;
    }
    // The session stays until the last results came or their wait is over.
    let until = Instant::now() + RESULT_WAIT;
    while !commands
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .pending
        .is_empty()
        && Instant::now() < until
    {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A session subscribed, as Home Assistant's MQTT integration does, to each topic its
/// discovery names for every phone: `phone2mqtt/<id>`, `.../event`, `.../availability`, one
/// filter each. Stops when dropped.
async fn per_topic_subscriber(
    broker: SocketAddr,
    phones: &[String],
    messages: Arc<AtomicU64>,
) -> anyhow::Result<Watch> {
    let filters: Vec<String> = phones
        .iter()
        .flat_map(|id| {
            [
                format!("phone2mqtt/{id}"),
                format!("phone2mqtt/{id}/event"),
                format!("phone2mqtt/{id}/availability"),
            ]
        })
        .collect();
    let filters: Vec<&str> = filters.iter().map(String::as_str).collect();
    Watch::start(broker, &filters, QoS::AtMostOnce, move |_, _| {
        messages.fetch_add(1, Ordering::Relaxed);
    })
    .await
    .context("the per-topic subscriber")
}

/// `N` in `"transaction":"soak-N"`.
fn transaction(payload: &[u8]) -> Option<u64> {
    const KEY: &[u8] = br#""transaction":"soak-"#;
    let at = payload.windows(KEY.len()).position(|w| w == KEY)? + KEY.len();
    let digits: Vec<u8> = payload[at..]
        .iter()
        .take_while(|b| b.is_ascii_digit())
        .copied()
        .collect();
    std::str::from_utf8(&digits).ok()?.parse().ok()
}

/// An MQTT client of `phone2mqtt/#` that stays `CONNECTED_FOR` every `RECONNECT_EVERY`; `fresh`:
/// a new client id each time, otherwise always the same one. `counts`: sessions, messages.
async fn reconnecting_subscriber(
    broker: SocketAddr,
    fresh: bool,
    offset: Duration,
    counts: Arc<(AtomicU64, AtomicU64)>,
    stop: CancellationToken,
) {
    let stable = format!("bench-soak-{}", crate::config::new_token());
    tokio::select! {
        () = tokio::time::sleep(offset) => {}
        () = stop.cancelled() => return,
    }
    let mut tick = tokio::time::interval(RECONNECT_EVERY);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = stop.cancelled() => return,
        }
        let id = if fresh {
            format!("bench-soak-{}", crate::config::new_token())
        } else {
            stable.clone()
        };
        let messages = counts.clone();
        let session = Watch::start_as(
            &id,
            broker,
            &["phone2mqtt/#"],
            QoS::AtMostOnce,
            move |_, _| {
                messages.1.fetch_add(1, Ordering::Relaxed);
            },
        )
        .await;
        if session.is_ok() {
            counts.0.fetch_add(1, Ordering::Relaxed);
        }
        tokio::select! {
            () = tokio::time::sleep(CONNECTED_FOR) => {}
            () = stop.cancelled() => return,
        }
        drop(session);
    }
}

/// A websocket client that stays `CONNECTED_FOR` every `RECONNECT_EVERY`, reading its
/// snapshot and the events. `counts`: sessions, frames.
async fn reconnecting_websocket(
    http: SocketAddr,
    token: String,
    counts: Arc<(AtomicU64, AtomicU64)>,
    stop: CancellationToken,
) {
    let mut tick = tokio::time::interval(RECONNECT_EVERY);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = stop.cancelled() => return,
        }
        let Ok((mut stream, mut buffer)) = crate::bench::ws::upgrade(http, &token).await else {
            continue;
        };
        counts.0.fetch_add(1, Ordering::Relaxed);
        let until = tokio::time::Instant::now() + CONNECTED_FOR;
        loop {
            while let Some((_, _, length)) = crate::bench::ws::next_frame(&buffer) {
                counts.1.fetch_add(1, Ordering::Relaxed);
                buffer.advance(length);
            }
            let read = tokio::select! {
                read = stream.read_buf(&mut buffer) => read,
                () = tokio::time::sleep_until(until) => break,
                () = stop.cancelled() => break,
            };
            if !matches!(read, Ok(n) if n > 0) {
                break;
            }
        }
        // A masked, empty close frame.
        let _ = stream.write_all(&[0x88, 0x80, 0, 0, 0, 0]).await;
    }
}

/// The least-squares slope of RSS over time, in MB a minute.
fn slope(samples: &[&Sample]) -> Option<f64> {
    if samples.len() < 2 {
        return None;
    }
    let n = samples.len() as f64;
    let mean_t = samples.iter().map(|s| s.minutes()).sum::<f64>() / n;
    let mean_m = samples.iter().map(|s| s.mib()).sum::<f64>() / n;
    let (mut covariance, mut variance) = (0.0, 0.0);
    for s in samples {
        covariance += (s.minutes() - mean_t) * (s.mib() - mean_m);
        variance += (s.minutes() - mean_t).powi(2);
    }
    (variance > 0.0).then(|| covariance / variance)
}

impl SoakFigures {
    fn loaded(&self) -> Vec<&Sample> {
        self.samples.iter().filter(|s| s.loaded).collect()
    }

    /// The samples of the load's second half.
    fn second_half(&self) -> Vec<&Sample> {
        let loaded = self.loaded();
        let end = loaded.last().map_or(Duration::ZERO, |s| s.at);
        loaded.into_iter().filter(|s| s.at >= end / 2).collect()
    }

    fn first_half(&self) -> Vec<&Sample> {
        let loaded = self.loaded();
        let end = loaded.last().map_or(Duration::ZERO, |s| s.at);
        loaded.into_iter().filter(|s| s.at <= end / 2).collect()
    }

    /// Start (the first sample under load), middle, end of the load, and after the idle minute.
    fn points(&self) -> Vec<(&'static str, Sample)> {
        let loaded = self.loaded();
        let (Some(first), Some(last)) = (loaded.first(), loaded.last()) else {
            return Vec::new();
        };
        let middle = loaded
            .iter()
            .min_by_key(|s| s.at.abs_diff(last.at / 2))
            .copied()
            .unwrap_or(first);
        let started = loaded.get(1).copied().unwrap_or(first);
        let mut points = vec![
            ("before the load", **first),
            ("start (first sample under load)", *started),
            ("middle", *middle),
            ("end of the load", **last),
        ];
        if let Some(idle) = self.samples.iter().rev().find(|s| !s.loaded) {
            points.push(("after a minute idle", *idle));
        }
        points
    }

    pub fn table(&self) -> String {
        let Some(settings) = &self.settings else {
            return String::new();
        };
        let rows: Vec<Vec<String>> = self
            .points()
            .into_iter()
            .map(|(what, s)| {
                vec![
                    what.to_string(),
                    format!("{:.1} min", s.minutes()),
                    format!("{:.1} MB", s.mib()),
                    s.fds.to_string(),
                    thousands(s.events),
                    thousands(s.results),
                ]
            })
            .collect();
        let rate = |samples: Vec<&Sample>| {
            slope(&samples).map_or("–".to_string(), |m| format!("{m:+.3} MB/min"))
        };
        let loaded = self.loaded();
        let minutes = loaded.last().map_or(0, |s| s.minutes().round() as u64);
        let per_minute: Vec<String> = (0..=minutes)
            .filter_map(|minute| {
                let at = Duration::from_secs(60 * minute);
                loaded.iter().min_by_key(|s| s.at.abs_diff(at))
            })
            .map(|s| format!("{:.1}", s.mib()))
            .collect();
        let commands = &self.commands;
        let missing = commands.pending.len();
        let latency = commands.latency.summary();
        let mut text = format!(
            "### Soak\n\n{} minutes of mixed load: {} Action URL callbacks/s from {} configured phones (each request its own call id), `reboot` on MQTT to {} simulated phones {} a second with every result awaited, {} websocket clients throughout plus one reconnecting every {} s, two MQTT subscribers of `phone2mqtt/#` reconnecting every {} s (one with a fresh client id each time). RSS (`VmRSS`) and descriptors (`/proc/<pid>/fd`) of the gateway (`{}`), embedded broker included.\n\n{}\n",
            settings.duration.as_secs_f64() / 60.0,
            settings.rate,
            settings.phones,
            COMMAND_PHONES,
            settings.commands,
            WS_CLIENTS,
            RECONNECT_EVERY.as_secs(),
            RECONNECT_EVERY.as_secs(),
            self.gateway,
            table(
                &["", "at", "RSS", "descriptors", "events delivered", "results"],
                &rows
            )
        );
        text.push_str(&format!(
            "\n- RSS slope: {} in the first half, {} in the second half.\n- RSS every minute under load (MB): {}.\n- Callbacks: {} answered 200 of {} sent; {} events delivered to the MQTT subscriber, {} to the websocket clients ({} each expected).\n- Commands: {} sent, {} ok, {} error, {} without a result after {} s; result latency {}.\n- Churn: {} MQTT sessions ({} messages), {} websocket sessions ({} frames).\n",
            rate(self.first_half()),
            rate(self.second_half()),
            per_minute.join(", "),
            thousands(self.sent.ok),
            thousands(self.sent.ok + self.sent.failed),
            thousands(self.delivered),
            thousands(self.ws_events),
            thousands(self.sent.ok),
            thousands(commands.sent),
            thousands(commands.ok),
            commands.error,
            missing,
            RESULT_WAIT.as_secs(),
            latency,
            thousands(self.mqtt_sessions),
            thousands(self.mqtt_messages),
            thousands(self.ws_sessions),
            thousands(self.ws_frames),
        ));
        if let Some(broker) = &settings.broker {
            text.push_str(&format!(
                "- The embedded broker with `{}` (`--soak-broker`).\n",
                broker.display()
            ));
        }
        if let Some(messages) = self.ha_messages {
            text.push_str(&format!(
                "- A subscriber like Home Assistant's, one filter per phone topic ({} filters), throughout: {} messages.\n",
                3 * (settings.phones + COMMAND_PHONES),
                thousands(messages)
            ));
        }
        for error in [&self.first_error, &commands.first_error]
            .into_iter()
            .flatten()
        {
            text.push_str(&format!("\nFirst error: {error}\n"));
        }
        text
    }

    pub fn csv(&self) -> String {
        let mut out = String::from("seconds,rss_kib,fds,events,results,loaded\n");
        for s in &self.samples {
            out.push_str(&format!(
                "{:.1},{},{},{},{},{}\n",
                s.at.as_secs_f64(),
                s.rss_kib,
                s.fds,
                s.events,
                s.results,
                s.loaded
            ));
        }
        out
    }

    pub fn targets(&self) -> Vec<Target> {
        let second = slope(&self.second_half()).unwrap_or(f64::INFINITY);
        let points = self.points();
        let end = points.iter().find(|(what, _)| *what == "end of the load");
        let idle = points
            .iter()
            .find(|(what, _)| *what == "after a minute idle");
        let kept = match (end, idle) {
            (Some((_, end)), Some((_, idle))) => idle.mib() - end.mib(),
            _ => f64::INFINITY,
        };
        let lost = self.sent.ok.saturating_sub(self.delivered)
            + self.sent.failed
            + self.commands.pending.len() as u64;
        vec![
            Target::new(
                "soak: RSS flat in the second half",
                format!("{second:+.3} MB/min (flat: below {FLAT_MB_PER_MIN} MB/min)"),
                second < FLAT_MB_PER_MIN,
            ),
            Target::new(
                "soak: memory given back when the load stops",
                format!("{kept:+.1} MB after a minute idle, against the end of the load"),
                kept <= 0.0,
            ),
            Target::new(
                "soak: nothing lost",
                format!("{lost} events or results lost or failed"),
                lost == 0,
            ),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transactions_and_slopes() {
        assert_eq!(
            transaction(br#"{"command":"reboot","transaction":"soak-42","status":"ok"}"#),
            Some(42)
        );
        assert_eq!(transaction(br#"{"transaction":"bench-reboot"}"#), None);
        let samples: Vec<Sample> = (0..5)
            .map(|i| Sample {
                at: Duration::from_secs(60 * i),
                rss_kib: 20 * 1024 + 512 * i,
                ..Default::default()
            })
            .collect();
        let refs: Vec<&Sample> = samples.iter().collect();
        let m = slope(&refs).unwrap();
        assert!((m - 0.5).abs() < 1e-9, "{m}");
        assert_eq!(slope(&refs[..1]), None);
    }
}
