//! The one MQTT session of a component (agent, web adapter, terminal client).
//!
//! A single task owns the rumqttc `EventLoop` and does nothing but poll it: it resubscribes on
//! every ConnAck (rumqttc does not restore subscriptions), tells the owner to republish its
//! retained state (the embedded broker keeps nothing across restarts), backs off between
//! reconnects, and forwards incoming publishes. Everyone else publishes through the cloneable
//! [`Mqtt`] handle, never from the polling task, so the two can't deadlock.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rumqttc::{
    AsyncClient, ConnectionError, Event, EventLoop, LastWill, MqttOptions, Packet, QoS,
    SubscribeFilter, Transport,
};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

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

/// Publishes queued for the session task at most. Callbacks publish from thousands of tasks
/// at once in a registration storm; waiting on rumqttc's own full queue costs every waiter a
/// scan of its waiter list on each wake (an eighth of the gateway's CPU in a storm), so they
/// wait here, on a semaphore, and rumqttc's queue never fills.
const ROOM: usize = 1_024;
/// rumqttc's queue: the publishers' room, and room besides for subscriptions.
const QUEUE: usize = ROOM * 4;
/// Bulk publishers (every phone's state on connect, Home Assistant discovery) wait until this
/// much room is free, leaving the rest to the phones' callbacks.
const BULK_ROOM: usize = ROOM / 2;
/// The longest a bulk publisher waits for it.
const BULK_WAIT: Duration = Duration::from_secs(5);

/// The publishes queued and not yet written by the session task.
#[derive(Debug)]
struct Backlog {
    room: tokio::sync::Semaphore,
    queued: AtomicUsize,
}

impl Backlog {
    fn new() -> Backlog {
        Backlog {
            room: tokio::sync::Semaphore::new(ROOM),
            queued: AtomicUsize::new(0),
        }
    }

    async fn take(&self) {
        if let Ok(permit) = self.room.acquire().await {
            permit.forget();
        }
        self.queued.fetch_add(1, Ordering::Relaxed);
    }

    fn written(&self) {
        // After a reconnect rumqttc writes unacknowledged publishes again: those were counted.
        let counted = self
            .queued
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
            .is_ok();
        if counted {
            self.room.add_permits(1);
        }
    }
}

/// The publishing handle. Cloneable; every publish is QoS 1.
#[derive(Debug, Clone)]
pub struct Mqtt {
    client: AsyncClient,
    connected: watch::Receiver<u64>,
    backlog: Arc<Backlog>,
    /// Why the last connection attempt failed, for a client that gives up.
    last_error: Arc<std::sync::Mutex<Option<String>>>,
}

impl Mqtt {
    pub async fn publish(&self, topic: String, payload: impl Into<Vec<u8>>, retain: bool) {
        self.backlog.take().await;
        if let Err(err) = self
            .client
            .publish(topic.clone(), QoS::AtLeastOnce, retain, payload.into())
            .await
        {
            self.backlog.written();
            warn!(%topic, cause = %err, "Publish could not be queued.");
        }
    }

    /// Waits until the queue has [`BULK_ROOM`] free (at most [`BULK_WAIT`]): bulk publishers
    /// call it before each message.
    pub async fn wait_for_room(&self) {
        let deadline = tokio::time::Instant::now() + BULK_WAIT;
        while self.backlog.room.available_permits() < BULK_ROOM
            && tokio::time::Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    pub async fn publish_json(&self, topic: String, value: &impl serde::Serialize, retain: bool) {
        match serde_json::to_vec(value) {
            Ok(payload) => self.publish(topic, payload, retain).await,
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

    /// Changes every time the session (re)connects and has subscribed: owners republish their
    /// retained state.
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
}

/// Starts the session task. Incoming publishes arrive on the returned receiver (unbounded, so
/// the polling task never waits on a slow consumer).
/// rumqttc's TLS takes rustls' process-wide crypto provider, and two of them are compiled in
/// (through different dependencies), so none is chosen by itself: choose one, once.
pub fn install_crypto_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

pub fn start(
    options: SessionOptions,
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
    mqtt_options.set_keep_alive(Duration::from_secs(30));
    mqtt_options.set_max_packet_size(MAX_PACKET_SIZE, MAX_PACKET_SIZE);
    mqtt_options.set_clean_session(true);
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
    let (client, eventloop) = AsyncClient::new(mqtt_options, QUEUE);
    let (incoming_tx, incoming_rx) = mpsc::unbounded_channel();
    let (connected_tx, connected_rx) = watch::channel(0u64);
    let handle = Mqtt {
        client,
        connected: connected_rx,
        backlog: Arc::new(Backlog::new()),
        last_error: Arc::default(),
    };
    let supervisor = options.supervisor.clone();
    let session = run(
        eventloop,
        handle.clone(),
        options,
        incoming_tx,
        connected_tx,
        shutdown,
    );
    match supervisor {
        Some(supervisor) => supervisor.spawn_once(tracker, "mqtt_session", session),
        None => {
            tracker.spawn(session);
        }
    }
    (handle, incoming_rx)
}

async fn run(
    mut eventloop: EventLoop,
    handle: Mqtt,
    options: SessionOptions,
    incoming: mpsc::UnboundedSender<Message>,
    connected: watch::Sender<u64>,
    shutdown: CancellationToken,
) {
    let Mqtt {
        client,
        backlog,
        last_error,
        ..
    } = handle;
    let broker = format!("{}:{}", options.broker.host, options.broker.port);
    let mut backoff = Duration::from_millis(250);
    let mut awaiting_suback = false;
    let mut connected_before = false;
    loop {
        let event = tokio::select! {
            event = eventloop.poll() => event,
            () = shutdown.cancelled() => break,
        };
        match event {
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                info!(client_id = %options.client_id, %broker, "Connected to the MQTT broker.");
                if std::mem::replace(&mut connected_before, true) {
                    if let Some(metrics) = &options.metrics {
                        metrics.mqtt_reconnected();
                    }
                }
                backoff = Duration::from_millis(250);
                if !options.subscriptions.is_empty() {
                    // Publishers hold at most `ROOM` of the `QUEUE` slots, so there is room.
                    let filters = options.subscriptions.iter().map(|filter| {
                        SubscribeFilter::new(filter.clone(), subscription_qos(filter))
                    });
                    if let Err(err) = client.try_subscribe_many(filters) {
                        warn!(cause = %err, "Subscribe could not be queued.");
                    }
                    awaiting_suback = true;
                } else {
                    connected.send_modify(|n| *n += 1);
                }
            }
            // Connected means subscribed: a command published right after `wait_connected`
            // (a test, the CLI's own session) must find the subscription in place.
            Ok(Event::Incoming(Packet::SubAck(_))) if awaiting_suback => {
                awaiting_suback = false;
                connected.send_modify(|n| *n += 1);
            }
            Ok(Event::Incoming(Packet::Publish(publish))) => {
                let _ = incoming.send(Message {
                    topic: publish.topic,
                    payload: publish.payload,
                    retained: publish.retain,
                });
            }
            Ok(Event::Outgoing(rumqttc::Outgoing::Publish(_))) => backlog.written(),
            Ok(_) => {}
            Err(err) => {
                let cause = describe(&err);
                warn!(client_id = %options.client_id, %broker, %cause, retry_in = ?backoff, "MQTT connection lost.");
                if let Ok(mut last) = last_error.lock() {
                    *last = Some(cause);
                }
                tokio::select! {
                    () = tokio::time::sleep(backoff) => {}
                    () = shutdown.cancelled() => return,
                }
                backoff = (backoff * 2).min(Duration::from_secs(30));
            }
        }
    }
    // A clean goodbye: the retained offline state first (the will covers only crashes).
    if let Some((topic, payload)) = options.goodbye {
        let _ = client.try_publish(topic, QoS::AtLeastOnce, true, payload);
    }
    let _ = client.try_disconnect();
    let drain = async {
        loop {
            match eventloop.poll().await {
                Ok(Event::Outgoing(rumqttc::Outgoing::Disconnect)) | Err(_) => break,
                Ok(_) => {}
            }
        }
    };
    if tokio::time::timeout(Duration::from_secs(2), drain)
        .await
        .is_err()
    {
        debug!(client_id = %options.client_id, "MQTT session did not close in time.");
    }
    // Nothing will be written any more: publishers waiting for room go on (and are refused).
    backlog.room.close();
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
