//! The one MQTT session of a component (agent, web adapter, terminal client).
//!
//! Publishers never wait for the broker: [`Mqtt::publish`] puts the message in the session's
//! bounded [`outbox`] and returns. A single task owns the rumqttc `EventLoop` and the messages
//! on their way ([`flight`]): it hands rumqttc a window of messages at a time and keeps each
//! until the broker acknowledges it, so nothing is lost when rumqttc drops its own list on a
//! reconnect without a session. It takes a broker that stops acknowledging (hung, half-open)
//! for dead, reconnects with capped backoff and jitter, resubscribes on every ConnAck (rumqttc
//! does not restore subscriptions), tells the owner to republish its retained state, forwards
//! incoming publishes, and at shutdown sends what the outbox holds before its goodbye.

pub mod flight;
pub mod kept;
pub mod outbox;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use rumqttc::{
    AsyncClient, ConnectionError, Event, EventLoop, LastWill, MqttOptions, Outgoing, Packet, QoS,
    SubscribeFilter, Transport,
};
use tokio::sync::{mpsc, watch, Notify};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use self::flight::Flight;
use self::outbox::{Class, Entry, Outbox};
pub use crate::config::SessionTuning;

/// The largest MQTT packet sent or accepted. The retained directory report lists every phone
/// without a subscriber: 10,000 phones make 150 KB. The embedded broker takes the same
/// (broker.toml, `max_payload_size`).
pub const MAX_PACKET_SIZE: usize = 1024 * 1024;

/// Parsed with the config (`[mqtt] url`), where it is checked.
pub use crate::config::BrokerUrl;

/// The certificates of a PEM file, for trusting a private CA.
pub fn load_ca(path: &std::path::Path) -> anyhow::Result<rustls::RootCertStore> {
    use rustls::pki_types::{pem::PemObject, CertificateDer};
    let text = std::fs::read(path)
        .map_err(|err| anyhow::anyhow!("cannot read {}: {err}", path.display()))?;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&text) {
        let cert = cert
            .map_err(|err| anyhow::anyhow!("{}: not a PEM certificate: {err}", path.display()))?;
        roots
            .add(cert)
            .map_err(|err| anyhow::anyhow!("{}: unusable certificate: {err}", path.display()))?;
    }
    if roots.is_empty() {
        anyhow::bail!("{}: holds no PEM certificate", path.display());
    }
    Ok(roots)
}

/// rumqttc's TLS setup: the system's roots, or only the CA of `ca_file`.
fn tls_config(ca_file: Option<&std::path::Path>) -> anyhow::Result<rumqttc::TlsConfiguration> {
    let Some(path) = ca_file else {
        return Ok(rumqttc::TlsConfiguration::default());
    };
    let config = rustls::ClientConfig::builder()
        .with_root_certificates(load_ca(path)?)
        .with_no_client_auth();
    Ok(rumqttc::TlsConfiguration::Rustls(Arc::new(config)))
}

/// How to open a session.
#[derive(Clone)]
pub struct SessionOptions {
    pub broker: BrokerUrl,
    pub client_id: String,
    pub username: Option<String>,
    pub password: Option<String>,
    /// The CA of a TLS broker (`[mqtt] ca_file`); absent: the system's roots.
    pub ca_file: Option<std::path::PathBuf>,
    /// Published retained by the broker if this session dies without saying goodbye.
    pub last_will: Option<(String, String)>,
    /// Published retained by the session itself on a clean shutdown.
    pub goodbye: Option<(String, String)>,
    pub subscriptions: Vec<String>,
    /// Where reconnects are counted (`/metrics`); the command-line tools count nowhere.
    pub metrics: Option<std::sync::Arc<crate::metrics::Metrics>>,
    /// The gateway's sessions are supervised: a panic in one stops the process (the session
    /// owns its event loop, so it cannot be restarted in place).
    pub supervisor: Option<crate::supervise::Supervisor>,
    /// The outbox's bounds, keepalive, acknowledgement timeout and backoff (`[mqtt]`).
    pub tuning: SessionTuning,
    /// Ask the broker to keep the session (clean session off) so that what was in flight when
    /// the connection broke is delivered, and QoS 1 commands wait for the agent. Only the
    /// agent's session with an external broker: the embedded one stops with the agent.
    pub persistent: bool,
    /// Where the outbox is kept at the end of the session (`[mqtt] outbox_on_disk`).
    pub keep_outbox: Option<std::path::PathBuf>,
    /// Messages to send first: what the last session kept ([`kept::load`]).
    pub preload: Vec<Entry>,
}

impl SessionOptions {
    /// A session to `broker` with the credentials of `[mqtt]`, no will and no subscriptions.
    pub fn new(broker: BrokerUrl, client_id: String, config: &crate::config::MqttConfig) -> Self {
        SessionOptions {
            broker,
            client_id,
            username: config.username.clone(),
            password: config.password.as_ref().map(|p| p.expose().to_string()),
            ca_file: config.ca_file.clone(),
            last_will: None,
            goodbye: None,
            subscriptions: Vec::new(),
            metrics: None,
            supervisor: None,
            tuning: config.session_tuning(),
            persistent: false,
            keep_outbox: None,
            preload: Vec::new(),
        }
    }
}

impl std::fmt::Debug for SessionOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The broker password never reaches a log.
        f.debug_struct("SessionOptions")
            .field("broker", &self.broker.host)
            .field("client_id", &self.client_id)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("subscriptions", &self.subscriptions)
            .field("tuning", &self.tuning)
            .field("persistent", &self.persistent)
            .finish_non_exhaustive()
    }
}

/// An incoming message.
#[derive(Debug, Clone)]
pub struct Message {
    pub topic: String,
    pub payload: bytes::Bytes,
    pub retained: bool,
}

/// How long the session goes on sending what its outbox holds once it is told to stop, before
/// its goodbye: the last results of a shutdown reach the broker within it.
pub const DRAIN: Duration = Duration::from_secs(5);

/// The least time between two rebuilds of the owner's retained state after the outbox dropped
/// some of it.
const REBUILD_EVERY: Duration = Duration::from_secs(30);

/// What the publishers and the session task share.
#[derive(Debug)]
struct Shared {
    outbox: Mutex<Outbox>,
    /// Something was put in the outbox.
    ready: Notify,
    /// The outbox went below half full, or the session's connection changed.
    room: Notify,
    /// Connected now.
    online: AtomicBool,
    /// The session task has ended: a publish now is dropped (and counted).
    ended: AtomicBool,
    /// Drops by class, for sessions without `/metrics` too.
    dropped: [AtomicU64; 3],
    metrics: Option<Arc<crate::metrics::Metrics>>,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, Outbox> {
        self.outbox.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn push(&self, entry: Entry) {
        if entry.size() > MAX_PACKET_SIZE {
            // The broker would refuse it and drop the connection; it can never be sent.
            warn!(topic = %entry.topic, bytes = entry.size(), limit = MAX_PACKET_SIZE, "A message larger than an MQTT packet may be, dropped.");
            self.count_dropped(&[entry.class]);
            return;
        }
        if self.ended.load(Ordering::Acquire) {
            debug!(topic = %entry.topic, "Publish after the session ended, dropped.");
            self.count_dropped(&[entry.class]);
            return;
        }
        let pushed = {
            let mut outbox = self.lock();
            let pushed = outbox.push(entry);
            self.level(&outbox);
            pushed
        };
        self.count_dropped(&pushed.dropped);
        self.ready.notify_one();
    }

    fn pop(&self) -> Option<(u64, Entry)> {
        let mut outbox = self.lock();
        let next = outbox.pop();
        self.level(&outbox);
        if outbox.len() < outbox.bounds().messages / 2 {
            self.room.notify_waiters();
        }
        next
    }

    fn put_back(&self, entries: Vec<(u64, Entry)>) {
        if entries.is_empty() {
            return;
        }
        let pushed = {
            let mut outbox = self.lock();
            let pushed = outbox.put_back(entries);
            self.level(&outbox);
            pushed
        };
        self.count_dropped(&pushed.dropped);
    }

    fn level(&self, outbox: &Outbox) {
        if let Some(metrics) = &self.metrics {
            metrics.outbox_level(outbox.len(), outbox.bytes());
        }
    }

    fn count_dropped(&self, classes: &[Class]) {
        for &class in classes {
            self.dropped[class.index()].fetch_add(1, Ordering::Relaxed);
            if let Some(metrics) = &self.metrics {
                metrics.outbox_dropped(class.name());
            }
        }
        if !classes.is_empty() {
            debug!(dropped = classes.len(), "Outbox full: dropped the oldest.");
        }
    }

    fn set_online(&self, online: bool) {
        self.online.store(online, Ordering::Release);
        if let Some(metrics) = &self.metrics {
            metrics.mqtt_connected(online);
        }
        self.room.notify_waiters();
    }
}

/// What the outbox holds and has dropped, for the bridge's report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct OutboxStatus {
    pub connected: bool,
    pub queued: usize,
    pub bytes: usize,
    pub limit_messages: usize,
    pub limit_bytes: usize,
    pub dropped_events: u64,
    pub dropped_messages: u64,
    pub dropped_state: u64,
}

/// The publishing handle. Cloneable; every publish is QoS 1.
#[derive(Debug, Clone)]
pub struct Mqtt {
    client: AsyncClient,
    connected: watch::Receiver<u64>,
    shared: Arc<Shared>,
    /// Why the last connection attempt failed, for a client that gives up.
    last_error: Arc<Mutex<Option<String>>>,
}

impl Mqtt {
    /// Puts a message in the outbox; it never waits for the broker. A retained message replaces
    /// the one queued for its topic.
    pub async fn publish(&self, topic: String, payload: impl Into<Vec<u8>>, retain: bool) {
        self.put(topic, payload.into(), retain, Class::Message);
    }

    /// An event: the first thing dropped when the outbox is full.
    pub async fn publish_event(&self, topic: String, value: &impl serde::Serialize) {
        match serde_json::to_vec(value) {
            Ok(payload) => self.put(topic, payload, false, Class::Event),
            Err(err) => warn!(%topic, cause = %err, "Payload could not be serialised."),
        }
    }

    fn put(&self, topic: String, payload: Vec<u8>, retain: bool, class: Class) {
        self.shared
            .push(Entry::new(topic, Bytes::from(payload), retain, class));
    }

    /// Bulk publishers (every phone's state on connect, Home Assistant discovery) call it
    /// before each message: it waits while the outbox is half full or more, leaving the rest
    /// to the phones' callbacks. `false`: the session is not connected (the next connection
    /// asks for everything again anyway).
    pub async fn wait_for_room(&self) -> bool {
        loop {
            let room = self.shared.room.notified();
            if !self.shared.online.load(Ordering::Acquire) {
                return false;
            }
            {
                let outbox = self.shared.lock();
                if outbox.len() < outbox.bounds().messages / 2 {
                    return true;
                }
            }
            // Woken when the outbox empties below half or the connection changes; the timeout
            // only guards against a missed wake-up.
            let _ = tokio::time::timeout(Duration::from_millis(500), room).await;
        }
    }

    pub async fn publish_json(&self, topic: String, value: &impl serde::Serialize, retain: bool) {
        match serde_json::to_vec(value) {
            Ok(payload) => self.put(topic, payload, retain, Class::Message),
            Err(err) => warn!(%topic, cause = %err, "Payload could not be serialised."),
        }
    }

    pub async fn subscribe(&self, filter: String) {
        if let Err(err) = self
            .client
            .subscribe(filter.clone(), subscription_qos(&filter))
            .await
        {
            warn!(%filter, cause = %err, "Subscribe could not be queued.");
        }
    }

    /// Changes every time the session (re)connects and has subscribed, and when the outbox
    /// had to drop retained state: owners republish their retained state.
    pub fn connections(&self) -> watch::Receiver<u64> {
        self.connected.clone()
    }

    /// Why the last connection attempt failed, if it did.
    pub fn last_error(&self) -> Option<String> {
        self.last_error
            .lock()
            .map(|last| last.clone())
            .unwrap_or_default()
    }

    /// Waits until the session has connected once (and subscribed, when it has subscriptions),
    /// or the timeout passes.
    pub async fn wait_connected(&self, timeout: Duration) -> bool {
        let mut connected = self.connected.clone();
        tokio::time::timeout(timeout, connected.wait_for(|n| *n > 0))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// What the outbox holds and has dropped so far.
    pub fn outbox_status(&self) -> OutboxStatus {
        let shared = &self.shared;
        let (queued, bytes, bounds) = {
            let outbox = shared.lock();
            (outbox.len(), outbox.bytes(), outbox.bounds())
        };
        let dropped = |class: Class| shared.dropped[class.index()].load(Ordering::Relaxed);
        OutboxStatus {
            connected: shared.online.load(Ordering::Acquire),
            queued,
            bytes,
            limit_messages: bounds.messages,
            limit_bytes: bounds.bytes,
            dropped_events: dropped(Class::Event),
            dropped_messages: dropped(Class::Message),
            dropped_state: dropped(Class::State),
        }
    }
}

/// rumqttc's TLS takes rustls' process-wide crypto provider, and two of them are compiled in
/// (through different dependencies), so none is chosen by itself: choose one, once.
pub fn install_crypto_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// Starts the session task. Incoming publishes arrive on the returned receiver (unbounded, so
/// the polling task never waits on a slow consumer).
pub fn start(
    mut options: SessionOptions,
    shutdown: CancellationToken,
    tracker: &tokio_util::task::TaskTracker,
) -> (Mqtt, mpsc::UnboundedReceiver<Message>) {
    install_crypto_provider();
    let mut mqtt_options = MqttOptions::new(
        options.client_id.clone(),
        match options.broker.scheme.as_str() {
            "ws" | "wss" => options.broker.full.clone(),
            _ => options.broker.host.clone(),
        },
        options.broker.port,
    );
    mqtt_options.set_keep_alive(options.tuning.keepalive);
    mqtt_options.set_max_packet_size(MAX_PACKET_SIZE, MAX_PACKET_SIZE);
    mqtt_options.set_clean_session(!options.persistent);
    // A CA file that cannot be read was reported at start (gateway, terminal client); one
    // that went away since leaves the session without TLS roots, and its error in the log.
    let tls = || match tls_config(options.ca_file.as_deref()) {
        Ok(tls) => tls,
        Err(err) => {
            tracing::error!(cause = %err, "mqtt.ca_file: the CA cannot be loaded.");
            rumqttc::TlsConfiguration::Rustls(Arc::new(
                rustls::ClientConfig::builder()
                    .with_root_certificates(rustls::RootCertStore::empty())
                    .with_no_client_auth(),
            ))
        }
    };
    match options.broker.scheme.as_str() {
        "mqtts" | "ssl" => {
            mqtt_options.set_transport(Transport::tls_with_config(tls()));
        }
        "ws" => {
            mqtt_options.set_transport(Transport::Ws);
        }
        "wss" => {
            mqtt_options.set_transport(Transport::wss_with_config(tls()));
        }
        _ => {}
    }
    let username = options.username.clone().or(options.broker.username.clone());
    let password = options.password.clone().or(options.broker.password.clone());
    if let Some(user) = username {
        mqtt_options.set_credentials(user, password.unwrap_or_default());
    }
    if let Some((topic, payload)) = &options.last_will {
        mqtt_options.set_last_will(LastWill::new(
            topic,
            payload.clone(),
            QoS::AtLeastOnce,
            true,
        ));
    }
    // rumqttc's queue holds the window of publishes, the subscriptions and the goodbye.
    let (client, eventloop) = AsyncClient::new(mqtt_options, flight::WINDOW * 2);
    let (incoming_tx, incoming_rx) = mpsc::unbounded_channel();
    let (connected_tx, connected_rx) = watch::channel(0u64);
    let outbox = Outbox::new(outbox::Bounds {
        messages: options.tuning.outbox_messages,
        bytes: options.tuning.outbox_bytes,
    });
    let shared = Arc::new(Shared {
        outbox: Mutex::new(outbox),
        ready: Notify::new(),
        room: Notify::new(),
        online: AtomicBool::new(false),
        ended: AtomicBool::new(false),
        dropped: Default::default(),
        metrics: options.metrics.clone(),
    });
    // What the last session kept goes first, counted like any publish (and what no longer
    // fits is counted as dropped).
    let preload = std::mem::take(&mut options.preload);
    let kept = preload.len();
    for entry in preload {
        shared.push(entry);
    }
    let dropped_at_start: u64 = shared
        .dropped
        .iter()
        .map(|n| n.load(Ordering::Relaxed))
        .sum();
    if dropped_at_start > 0 {
        warn!(
            kept,
            dropped = dropped_at_start,
            "The kept outbox holds more than the outbox's bounds; the oldest were dropped."
        );
    }
    let handle = Mqtt {
        client,
        connected: connected_rx,
        shared,
        last_error: Arc::default(),
    };
    let supervisor = options.supervisor.clone();
    let session = Session {
        eventloop,
        handle: handle.clone(),
        options,
        incoming: incoming_tx,
        connected: connected_tx,
        flight: Flight::default(),
    }
    .run(shutdown);
    match supervisor {
        Some(supervisor) => supervisor.spawn_once(tracker, "mqtt_session", session),
        None => {
            tracker.spawn(session);
        }
    }
    (handle, incoming_rx)
}

/// Capped exponential backoff with jitter between connection attempts: many agents that lost
/// the same broker do not come back in step.
#[derive(Debug)]
struct Backoff {
    next: Duration,
    max: Duration,
}

impl Backoff {
    const FIRST: Duration = Duration::from_millis(250);

    fn new(max: Duration) -> Backoff {
        Backoff {
            next: Backoff::FIRST.min(max),
            max,
        }
    }

    /// The next wait: the current step, give or take a quarter.
    fn next(&mut self) -> Duration {
        use rand::Rng;
        let step = self.next;
        self.next = (self.next * 2).min(self.max);
        step.mul_f64(rand::thread_rng().gen_range(0.75..=1.25))
    }

    fn reset(&mut self) {
        self.next = Backoff::FIRST.min(self.max);
    }
}

/// What woke the session task.
enum Step {
    Event(Result<Event, ConnectionError>),
    /// The broker owes an answer for longer than `ack_timeout`.
    Unanswered,
    Stop,
    Deadline,
}

struct Session {
    eventloop: EventLoop,
    handle: Mqtt,
    options: SessionOptions,
    incoming: mpsc::UnboundedSender<Message>,
    connected: watch::Sender<u64>,
    flight: Flight,
}

impl Session {
    async fn run(mut self, shutdown: CancellationToken) {
        let broker = format!("{}:{}", self.options.broker.host, self.options.broker.port);
        let tuning = self.options.tuning;
        let mut backoff = Backoff::new(tuning.reconnect_max);
        let mut awaiting_suback = false;
        let mut connected_before = false;
        let mut online = false;
        let mut deadline: Option<Instant> = None;
        let mut last_rebuild: Option<Instant> = None;
        let shared = self.handle.shared.clone();
        loop {
            if online {
                feed_into(&self.handle.client, &shared, &mut self.flight);
                // Retained state was dropped from a full outbox: the owner sends it all again,
                // at most every `REBUILD_EVERY` (a rebuild that overflows again waits).
                let due = last_rebuild.is_none_or(|at: Instant| at.elapsed() >= REBUILD_EVERY);
                if due && shared.lock().take_lost_state() {
                    last_rebuild = Some(Instant::now());
                    self.connected.send_modify(|n| *n += 1);
                }
            }
            if deadline.is_some() && self.flight.is_empty() && shared.lock().is_empty() {
                break;
            }
            let unanswered_at = self.flight.owed_since().map(|at| at + tuning.ack_timeout);
            let step = {
                let poll = self.eventloop.poll();
                tokio::pin!(poll);
                loop {
                    tokio::select! {
                        biased;
                        () = shutdown.cancelled(), if deadline.is_none() => break Step::Stop,
                        () = sleep_until(deadline) => break Step::Deadline,
                        event = &mut poll => break Step::Event(event),
                        () = sleep_until(unanswered_at) => break Step::Unanswered,
                        () = shared.ready.notified(), if online && self.flight.has_room() => {
                            // Feeding needs no event loop: rumqttc picks the messages up in
                            // the poll in progress.
                            feed_into(&self.handle.client, &shared, &mut self.flight);
                        }
                    }
                }
            };
            match step {
                Step::Stop => {
                    deadline = Some(Instant::now() + DRAIN);
                }
                Step::Deadline => break,
                Step::Unanswered => {
                    warn!(client_id = %self.options.client_id, %broker, timeout = ?tuning.ack_timeout, "The MQTT broker stopped answering; reconnecting.");
                    if let Ok(mut last) = self.handle.last_error.lock() {
                        *last = Some("the broker stopped answering".into());
                    }
                    // Dropping the connection: rumqttc keeps what it wrote for a kept session.
                    self.eventloop.clean();
                    online = false;
                    shared.set_online(false);
                    self.flight.connection_lost();
                }
                Step::Event(Ok(Event::Incoming(Packet::ConnAck(ack)))) => {
                    info!(client_id = %self.options.client_id, %broker, session_present = ack.session_present, "Connected to the MQTT broker.");
                    if std::mem::replace(&mut connected_before, true) {
                        if let Some(metrics) = &self.options.metrics {
                            metrics.mqtt_reconnected();
                        }
                    }
                    backoff.reset();
                    if !ack.session_present {
                        // rumqttc dropped what it held: it goes out again from the outbox. A
                        // write reported on the lost connection but not yet read is stale now:
                        // it must not take a packet id for a message handed from here on.
                        shared.put_back(self.flight.take_all());
                        self.eventloop.state.events.retain(|event| {
                            !matches!(event, Event::Outgoing(Outgoing::Publish(_)))
                        });
                    }
                    online = true;
                    shared.set_online(true);
                    if !self.options.subscriptions.is_empty() {
                        // The window leaves room in rumqttc's queue.
                        let filters = self.options.subscriptions.iter().map(|filter| {
                            SubscribeFilter::new(filter.clone(), subscription_qos(filter))
                        });
                        if let Err(err) = self.handle.client.try_subscribe_many(filters) {
                            warn!(cause = %err, "Subscribe could not be queued.");
                        }
                        awaiting_suback = true;
                    } else {
                        self.connected.send_modify(|n| *n += 1);
                    }
                }
                // Connected means subscribed: a command published right after `wait_connected`
                // (a test, the CLI's own session) must find the subscription in place.
                Step::Event(Ok(Event::Incoming(Packet::SubAck(_)))) if awaiting_suback => {
                    awaiting_suback = false;
                    self.connected.send_modify(|n| *n += 1);
                }
                Step::Event(Ok(Event::Incoming(Packet::Publish(publish)))) => {
                    let _ = self.incoming.send(Message {
                        topic: publish.topic,
                        payload: publish.payload,
                        retained: publish.retain,
                    });
                }
                Step::Event(Ok(Event::Outgoing(Outgoing::Publish(pkid)))) => {
                    if !self.flight.written(pkid, Instant::now()) {
                        debug!(
                            pkid,
                            "A publish written that the session did not hand over."
                        );
                    }
                }
                Step::Event(Ok(Event::Incoming(Packet::PubAck(ack)))) => {
                    self.flight.acknowledged(ack.pkid);
                }
                Step::Event(Ok(Event::Outgoing(Outgoing::PingReq))) => {
                    self.flight.ping_sent(Instant::now());
                }
                Step::Event(Ok(Event::Incoming(Packet::PingResp))) => self.flight.pong(),
                Step::Event(Ok(_)) => {}
                Step::Event(Err(err)) => {
                    let cause = describe(&err);
                    let wait = backoff.next();
                    warn!(client_id = %self.options.client_id, %broker, %cause, retry_in = ?wait, "MQTT connection lost.");
                    if let Ok(mut last) = self.handle.last_error.lock() {
                        *last = Some(cause);
                    }
                    if online {
                        online = false;
                        shared.set_online(false);
                    }
                    self.flight.connection_lost();
                    awaiting_suback = false;
                    tokio::select! {
                        () = tokio::time::sleep(wait) => {}
                        () = shutdown.cancelled(), if deadline.is_none() => {
                            deadline = Some(Instant::now() + DRAIN);
                        }
                        () = sleep_until(deadline) => break,
                    }
                }
            }
        }
        self.close(online).await;
    }

    /// The goodbye: the retained offline state (the will covers only crashes), a clean
    /// disconnect, and what could not be sent kept on disk or counted as dropped.
    async fn close(mut self, online: bool) {
        let shared = self.handle.shared.clone();
        shared.ended.store(true, Ordering::Release);
        if online {
            if let Some((topic, payload)) = self.options.goodbye.take() {
                let _ = self
                    .handle
                    .client
                    .try_publish(topic, QoS::AtLeastOnce, true, payload);
            }
            let _ = self.handle.client.try_disconnect();
            let drain = async {
                loop {
                    match self.eventloop.poll().await {
                        Ok(Event::Outgoing(Outgoing::Disconnect)) | Err(_) => break,
                        Ok(_) => {}
                    }
                }
            };
            if tokio::time::timeout(Duration::from_secs(2), drain)
                .await
                .is_err()
            {
                debug!(client_id = %self.options.client_id, "MQTT session did not close in time.");
            }
        }
        shared.set_online(false);
        let mut left = self.flight.take_all();
        left.extend(shared.lock().drain());
        shared.level(&shared.lock());
        if left.is_empty() {
            if let Some(path) = &self.options.keep_outbox {
                if let Err(err) = kept::save(path, &[]) {
                    warn!(cause = %err, "The kept outbox could not be removed.");
                }
            }
            return;
        }
        let entries: Vec<Entry> = left.into_iter().map(|(_, entry)| entry).collect();
        match &self.options.keep_outbox {
            Some(path) => match kept::save(path, &entries) {
                Ok(()) => {
                    info!(messages = entries.len(), file = %path.display(), "Kept the messages not delivered; they are sent after the next start.")
                }
                Err(err) => {
                    warn!(messages = entries.len(), cause = %err, "Messages not delivered could not be kept; they are lost.");
                    shared.count_dropped(&entries.iter().map(|e| e.class).collect::<Vec<_>>());
                }
            },
            None => {
                warn!(client_id = %self.options.client_id, messages = entries.len(), "Messages not delivered before the session ended; dropped.");
                shared.count_dropped(&entries.iter().map(|e| e.class).collect::<Vec<_>>());
            }
        }
    }
}

/// Hands rumqttc the next messages of the outbox, up to the window.
fn feed_into(client: &AsyncClient, shared: &Shared, flight: &mut Flight) {
    while flight.has_room() {
        let Some((number, entry)) = shared.pop() else {
            break;
        };
        match client.try_publish(
            entry.topic.clone(),
            QoS::AtLeastOnce,
            entry.retain,
            entry.payload.to_vec(),
        ) {
            Ok(()) => flight.handed((number, entry)),
            Err(_) if !valid_topic(&entry.topic) => {
                warn!(topic = %entry.topic, "Not a valid topic to publish to; dropped.");
                shared.count_dropped(&[entry.class]);
            }
            Err(err) => {
                debug!(cause = %err, "rumqttc's queue is full; waiting.");
                shared.put_back(vec![(number, entry)]);
                break;
            }
        }
    }
}

/// A topic rumqttc publishes to: no wildcards, not empty.
fn valid_topic(topic: &str) -> bool {
    !topic.is_empty() && !topic.contains(['+', '#'])
}

/// Sleeps until `at`; never, without one.
async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// The QoS a filter is subscribed with. rumqttd hands a new QoS 1 subscription at most 100
/// retained messages (its in-flight window, fixed in its code) and drops the rest, so filters
/// read for their retained messages, which all end in `#` (the web adapter's and the terminal
/// client's mirror of the tree, the agent's read of Home Assistant discovery), subscribe at
/// QoS 0, where the broker's `max_outgoing_packet_count` applies instead. Commands stay at QoS 1.
pub fn subscription_qos(filter: &str) -> QoS {
    if filter.ends_with('#') {
        QoS::AtMostOnce
    } else {
        QoS::AtLeastOnce
    }
}

fn describe(err: &ConnectionError) -> String {
    match err {
        ConnectionError::Io(io) => io.to_string(),
        ConnectionError::ConnectionRefused(code) => {
            format!("the broker refused the connection: {code:?}")
        }
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broker_urls() {
        let url = BrokerUrl::parse("mqtt://user:pw@broker.example:1884").unwrap();
        assert_eq!((url.host.as_str(), url.port), ("broker.example", 1884));
        assert_eq!(url.username.as_deref(), Some("user"));
        assert_eq!(url.password.as_deref(), Some("pw"));
        assert_eq!(BrokerUrl::parse("mqtts://b").unwrap().port, 8883);
        assert_eq!(BrokerUrl::parse("mqtt://127.0.0.1").unwrap().port, 1883);
        assert!(BrokerUrl::parse("http://b").is_err());
        assert!(BrokerUrl::parse("nonsense").is_err());
    }

    #[test]
    fn passwords_travel_only_on_loopback_or_tls() {
        for private in [
            "mqtt://127.0.0.1:1883",
            "mqtt://127.0.1.1",
            "mqtt://localhost",
            "mqtt://[::1]:1883",
            "mqtts://broker.example",
            "wss://broker.example/mqtt",
        ] {
            assert!(BrokerUrl::parse(private).unwrap().is_private(), "{private}");
        }
        for clear in [
            "mqtt://192.168.1.10",
            "mqtt://broker.example",
            "ws://broker.example/mqtt",
            "mqtt://localhost.example",
        ] {
            assert!(!BrokerUrl::parse(clear).unwrap().is_private(), "{clear}");
        }
    }
}
