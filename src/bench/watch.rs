//! The bench's own MQTT sessions: subscribe, hand every message to a closure, publish.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS, SubscribeFilter};
use tokio::sync::oneshot;

/// An MQTT session that calls `on_message` for every message on its filters. Stops when
/// dropped.
pub struct Watch {
    client: AsyncClient,
    _stop: oneshot::Sender<()>,
}

impl Watch {
    /// Subscribes to `filters` and returns once the broker confirmed every subscription. At
    /// QoS 1 rumqttd hands a new subscription at most 100 retained messages; subscribe at QoS 0
    /// to see the retained state of every phone.
    pub async fn start(
        broker: SocketAddr,
        filters: &[&str],
        qos: QoS,
        on_message: impl FnMut(&str, &[u8]) + Send + 'static,
    ) -> anyhow::Result<Watch> {
        let id = format!("bench-{}", crate::config::new_token());
        Watch::start_as(&id, broker, filters, qos, on_message).await
    }

    /// As [`Watch::start`], with the client id `id`: a client that comes back as itself.
    pub async fn start_as(
        id: &str,
        broker: SocketAddr,
        filters: &[&str],
        qos: QoS,
        mut on_message: impl FnMut(&str, &[u8]) + Send + 'static,
    ) -> anyhow::Result<Watch> {
        let mut options = MqttOptions::new(id, broker.ip().to_string(), broker.port());
        options.set_keep_alive(Duration::from_secs(30));
        options.set_max_packet_size(1 << 20, 1 << 20);
        let (client, mut eventloop) = AsyncClient::new(options, 100);
        let (subscribed_tx, subscribed) = oneshot::channel();
        let (stop, mut stopped) = oneshot::channel::<()>();
        let filters: Vec<String> = filters.iter().map(|f| f.to_string()).collect();
        let subscriber = client.clone();
        tokio::spawn(async move {
            let mut subscribed_tx = Some(subscribed_tx);
            loop {
                let event = tokio::select! {
                    event = eventloop.poll() => event,
                    _ = &mut stopped => break,
                };
                match event {
                    Ok(Event::Incoming(Packet::ConnAck(_))) => {
                        // One SUBSCRIBE for every filter, however many: one SUBACK answers it.
                        let filters = filters
                            .iter()
                            .map(|filter| SubscribeFilter::new(filter.clone(), qos));
                        let _ = subscriber.try_subscribe_many(filters);
                    }
                    Ok(Event::Incoming(Packet::SubAck(_))) => {
                        if let Some(tx) = subscribed_tx.take() {
                            let _ = tx.send(());
                        }
                    }
                    Ok(Event::Incoming(Packet::Publish(publish))) => {
                        on_message(&publish.topic, &publish.payload);
                    }
                    Ok(_) => {}
                    Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
                }
            }
            let _ = subscriber.try_disconnect();
        });
        tokio::time::timeout(Duration::from_secs(10), subscribed)
            .await
            .context("the bench's MQTT session could not subscribe")?
            .context("the bench's MQTT session stopped")?;
        Ok(Watch {
            client,
            _stop: stop,
        })
    }

    /// Publishes at QoS 1, not retained.
    pub async fn publish(&self, topic: &str, payload: &str) -> anyhow::Result<()> {
        self.client
            .publish(topic, QoS::AtLeastOnce, false, payload.as_bytes().to_vec())
            .await
            .context("publish")
    }
}
