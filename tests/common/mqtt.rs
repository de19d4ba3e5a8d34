//! The one MQTT probe of the tests: a real rumqttc client that records what arrives on its
//! filters (with the retain flag) and waits for messages; and a login check.

use std::net::SocketAddr;
use std::time::Duration;

use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use serde_json::Value;
use tokio::sync::mpsc;

use super::TIMEOUT;

/// One message as the probe received it.
#[derive(Clone, Debug)]
struct Received {
    topic: String,
    payload: String,
    retained: bool,
}

/// A payload as JSON; a non-JSON payload comes back as a JSON string.
fn parse(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or(Value::String(text.to_string()))
}

/// An MQTT client that records everything on its filters (`phone2mqtt/#` unless told).
pub struct MqttProbe {
    pub client: AsyncClient,
    messages: mpsc::UnboundedReceiver<Received>,
    seen: Vec<Received>,
    /// Received but not matched yet, oldest first: messages on different topics may arrive in
    /// either order (a phone's event can overtake the command's result), so none is thrown away.
    pending: Vec<Received>,
}

impl MqttProbe {
    pub async fn connect(port: u16) -> MqttProbe {
        Self::connect_filter(port, "phone2mqtt/#").await
    }

    pub async fn connect_filter(port: u16, filter: &str) -> MqttProbe {
        Self::connect_with(port, &[filter], None).await
    }

    /// A probe with a session the broker keeps (clean session off, QoS 1 subscriptions), for
    /// an external broker that goes away: what is published while the probe reconnects waits
    /// for it on the broker instead of being lost to it.
    pub async fn connect_persistent(port: u16, filters: &[&str]) -> MqttProbe {
        Self::connect_session(port, filters, None, true).await
    }

    /// A probe on several filters.
    pub async fn connect_filters(port: u16, filters: &[&str]) -> MqttProbe {
        Self::connect_with(port, filters, None).await
    }

    /// A probe that logs in as `login` (user name, password).
    pub async fn connect_as(port: u16, filter: &str, login: Option<(&str, &str)>) -> MqttProbe {
        Self::connect_with(port, &[filter], login).await
    }

    async fn connect_with(port: u16, filters: &[&str], login: Option<(&str, &str)>) -> MqttProbe {
        Self::connect_session(port, filters, login, false).await
    }

    /// Connects, subscribes to every filter and returns once the broker acknowledged them all;
    /// `persistent`: see [`MqttProbe::connect_persistent`].
    async fn connect_session(
        port: u16,
        filters: &[&str],
        login: Option<(&str, &str)>,
        persistent: bool,
    ) -> MqttProbe {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let id = format!(
            "probe-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        );
        let mut options = MqttOptions::new(id, "127.0.0.1", port);
        options.set_max_packet_size(1 << 20, 1 << 20);
        options.set_clean_session(!persistent);
        if let Some((user, password)) = login {
            options.set_credentials(user, password);
        }
        let (client, mut eventloop) = AsyncClient::new(options, 100);
        let (tx, rx) = mpsc::unbounded_channel();
        let (subscribed_tx, mut subscribed_rx) = mpsc::unbounded_channel();
        let filters: Vec<String> = filters.iter().map(|f| f.to_string()).collect();
        let wanted = filters.len();
        let sub_client = client.clone();
        tokio::spawn(async move {
            let mut acks = 0;
            loop {
                match eventloop.poll().await {
                    Ok(Event::Incoming(Packet::ConnAck(_))) => {
                        for filter in &filters {
                            // As the gateway's own readers subscribe: QoS 0 for `#` filters,
                            // as rumqttd gives a QoS 1 subscription at most 100 retained
                            // messages. A kept session needs QoS 1 to be kept anything.
                            let qos = if persistent {
                                QoS::AtLeastOnce
                            } else {
                                phone2mqtt::mqtt::subscription_qos(filter)
                            };
                            let _ = sub_client.try_subscribe(filter.clone(), qos);
                        }
                    }
                    Ok(Event::Incoming(Packet::SubAck(_))) => {
                        acks += 1;
                        if acks == wanted {
                            let _ = subscribed_tx.send(());
                        }
                    }
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        let received = Received {
                            topic: p.topic,
                            payload: String::from_utf8_lossy(&p.payload).into_owned(),
                            retained: p.retain,
                        };
                        if tx.send(received).is_err() {
                            return;
                        }
                    }
                    Ok(_) => {}
                    Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                }
            }
        });
        tokio::time::timeout(TIMEOUT, subscribed_rx.recv())
            .await
            .expect("the probe subscribed");
        MqttProbe {
            client,
            messages: rx,
            seen: Vec::new(),
            pending: Vec::new(),
        }
    }

    /// The first message on `topic` that passes `check(payload, retained)`, already received
    /// or still to come; what came on this topic before it is superseded by it.
    async fn matching(
        &mut self,
        topic: &str,
        check: impl Fn(&str, bool) -> bool,
    ) -> Option<Received> {
        if let Some(index) = self
            .pending
            .iter()
            .position(|m| m.topic == topic && check(&m.payload, m.retained))
        {
            let found = self.pending.remove(index);
            let mut kept = 0;
            self.pending.retain(|m| {
                kept += 1;
                m.topic != topic || kept > index
            });
            return Some(found);
        }
        let deadline = tokio::time::Instant::now() + TIMEOUT;
        loop {
            let Ok(Some(message)) = tokio::time::timeout_at(deadline, self.messages.recv()).await
            else {
                return None;
            };
            self.seen.push(message.clone());
            if message.topic == topic && check(&message.payload, message.retained) {
                self.pending.retain(|m| m.topic != topic);
                return Some(message);
            }
            self.pending.push(message);
        }
    }

    /// Waits for a message on `topic` whose payload satisfies `check`; returns it as JSON
    /// (a non-JSON payload comes back as a JSON string).
    pub async fn expect(&mut self, topic: &str, check: impl Fn(&Value) -> bool) -> Value {
        match self.matching(topic, |text, _| check(&parse(text))).await {
            Some(message) => parse(&message.payload),
            None => panic!(
                "no message on {topic} matching the check within {TIMEOUT:?}; seen: {:#?}",
                self.drain()
            ),
        }
    }

    /// Waits for a message on `topic` that passes `check(payload, retained)`; returns the
    /// payload as sent, and whether it was retained.
    pub async fn expect_raw(
        &mut self,
        topic: &str,
        check: impl Fn(&str, bool) -> bool,
    ) -> (String, bool) {
        match self.matching(topic, check).await {
            Some(message) => (message.payload, message.retained),
            None => {
                let seen: Vec<_> = self.seen.iter().map(|m| (&m.topic, m.retained)).collect();
                panic!("nothing on {topic} matching the check within {TIMEOUT:?}; seen: {seen:#?}")
            }
        }
    }

    /// The event `name` of phone `id`.
    pub async fn event(&mut self, id: &str, name: &str) -> Value {
        self.expect(&format!("phone2mqtt/{id}/event"), |e| e["event"] == name)
            .await
    }

    /// The state of phone `id` once its call state is `call_state`.
    pub async fn call_state(&mut self, id: &str, call_state: &str) -> Value {
        self.expect(&format!("phone2mqtt/{id}"), |s| {
            s["call_state"] == call_state
        })
        .await
    }

    /// The info of phone `id` once its model is known: the retained info may still be the one
    /// from before the phone's boot callbacks.
    pub async fn info_with_model(&mut self, id: &str) -> Value {
        self.expect(&format!("phone2mqtt/{id}/info"), |i| i["model"].is_string())
            .await
    }

    /// The next message on any topic matching `wanted`.
    pub async fn next_on(&mut self, wanted: impl Fn(&str) -> bool) -> (String, Value) {
        if let Some(index) = self.pending.iter().position(|m| wanted(&m.topic)) {
            let message = self.pending.remove(index);
            return (message.topic, parse(&message.payload));
        }
        let deadline = tokio::time::Instant::now() + TIMEOUT;
        loop {
            let Ok(Some(message)) = tokio::time::timeout_at(deadline, self.messages.recv()).await
            else {
                panic!(
                    "no matching message within {TIMEOUT:?}; seen: {:#?}",
                    self.drain()
                );
            };
            self.seen.push(message.clone());
            if wanted(&message.topic) {
                return (message.topic, parse(&message.payload));
            }
            self.pending.push(message);
        }
    }

    pub async fn publish(&self, topic: &str, payload: &str) {
        self.send(topic, payload, false).await;
    }

    /// Publishes a retained message, as an agent leaves one on the broker.
    pub async fn publish_retained(&self, topic: &str, payload: &str) {
        self.send(topic, payload, true).await;
    }

    async fn send(&self, topic: &str, payload: &str, retain: bool) {
        self.client
            .publish(topic, QoS::AtLeastOnce, retain, payload.as_bytes().to_vec())
            .await
            .unwrap();
    }

    /// Everything received so far, including what is still queued; what is queued is no
    /// longer waited for by `expect`.
    pub fn drain(&mut self) -> Vec<(String, String)> {
        while let Ok(message) = self.messages.try_recv() {
            self.seen.push(message);
        }
        self.seen
            .iter()
            .map(|m| (m.topic.clone(), m.payload.clone()))
            .collect()
    }

    /// Every payload received so far on `topic`, oldest first.
    pub fn payloads_on(&mut self, topic: &str) -> Vec<String> {
        self.drain()
            .into_iter()
            .filter(|(t, _)| t == topic)
            .map(|(_, payload)| payload)
            .collect()
    }

    /// How many messages the probe has received so far, for [`MqttProbe::since`].
    pub fn mark(&mut self) -> usize {
        self.drain().len()
    }

    /// The first message on `topic` received after `mark` that passes `check`, already seen
    /// or still to come: what a command caused may arrive before its result.
    pub async fn since(
        &mut self,
        mark: usize,
        topic: &str,
        check: impl Fn(&Value) -> bool,
    ) -> Value {
        let seen = self.drain();
        let earlier = seen[mark..]
            .iter()
            .filter(|(t, _)| t == topic)
            .map(|(_, text)| parse(text))
            .find(|value| check(value));
        match earlier {
            Some(value) => value,
            None => self.expect(topic, check).await,
        }
    }
}

/// Publishes a command to `phone` (payload with a `transaction`) and waits for its result.
pub async fn command(probe: &mut MqttProbe, phone: &str, command: &str, payload: Value) -> Value {
    let transaction = payload["transaction"]
        .as_str()
        .expect("the payload names a transaction")
        .to_string();
    probe
        .publish(
            &format!("phone2mqtt/{phone}/cmd/{command}"),
            &payload.to_string(),
        )
        .await;
    probe
        .expect(&format!("phone2mqtt/{phone}/result"), |r| {
            r["transaction"] == transaction.as_str()
        })
        .await
}

/// Whether an MQTT 3.1.1 session with this login (none: anonymous) is accepted at `addr`:
/// a real rumqttc client, connected or refused within the test timeout.
pub async fn mqtt_login(addr: SocketAddr, login: Option<(&str, &str)>) -> bool {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let id = format!(
        "login-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    );
    let mut options = MqttOptions::new(id, addr.ip().to_string(), addr.port());
    if let Some((user, password)) = login {
        options.set_credentials(user, password);
    }
    let (client, mut eventloop) = AsyncClient::new(options, 10);
    let accepted = tokio::time::timeout(TIMEOUT, async {
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(ack))) => {
                    return ack.code == rumqttc::ConnectReturnCode::Success
                }
                Ok(_) => {}
                Err(_) => return false,
            }
        }
    })
    .await
    .expect("the broker answers or closes the connection");
    let _ = client.try_disconnect();
    let _ = tokio::time::timeout(Duration::from_millis(200), eventloop.poll()).await;
    accepted
}
