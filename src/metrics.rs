//! The gateway's counters and gauges, served as Prometheus text on `/metrics`.
//!
//! One [`Metrics`] per gateway, shared by every task (`Arc`): the HTTP front, the agent, the web
//! side and the MQTT sessions count into it; nothing reads it but `/metrics`, the Manager's
//! figures and the tests. Every limit of the README's table counts its refusals under
//! `phone2mqtt_refusals_total{limit="..."}`, named by [`Limit`].

use std::sync::atomic::{AtomicI64, AtomicU64};

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// Every limit of the README's table of limits: the value of the `limit` label.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub enum Limit {
    /// A request head over `[limits] http_head_bytes`.
    http_head,
    /// A request body over its route's limit.
    http_body,
    /// A connection that sent nothing within `[limits] http_idle_secs` (head or keep-alive).
    http_idle,
    /// Connections from one address over `[limits] connections_per_address`.
    connections_per_address,
    /// All connections of the people's side (Manager, API, websockets) over their budget.
    people_connections,
    /// All connections over `[limits] connections`.
    connections,
    /// Websocket clients over `[limits] websocket_clients`.
    websocket_clients,
    /// Websocket clients of one address over `[limits] websocket_clients_per_address`.
    websocket_clients_per_address,
    /// A websocket message over `[limits] websocket_message_bytes`.
    websocket_message,
    /// An MQTT message over its topic kind's payload limit.
    mqtt_payload,
    /// A directory with more rows than `[limits] directory_rows`.
    directory_rows,
    /// A reminder past `[limits] reminders`.
    reminders,
    /// A group past `[limits] groups`.
    groups,
    /// A phone discovered past `[limits] discovered_per_minute`.
    discovery_rate,
    /// A phone discovered past `[limits] discovered_phones`.
    discovery_total,
    /// An image file over `[limits] image_bytes`.
    image_bytes,
    /// An image whose width or height is over `[limits] image_pixels`.
    image_dimensions,
    /// A download over `[limits] download_bytes`.
    download_bytes,
    /// A download not done within `[limits] download_secs`.
    download_time,
    /// A retained message on a phone2mqtt topic that does not parse: ignored, not mirrored.
    foreign_retained,
    /// A command for a phone that has 64 commands waiting already.
    command_queue,
}

impl Limit {
    /// Every limit, so that `/metrics` shows each one from the start (at 0).
    pub const ALL: &'static [Limit] = &[
        Limit::http_head,
        Limit::http_body,
        Limit::http_idle,
        Limit::connections_per_address,
        Limit::people_connections,
        Limit::connections,
        Limit::websocket_clients,
        Limit::websocket_clients_per_address,
        Limit::websocket_message,
        Limit::mqtt_payload,
        Limit::directory_rows,
        Limit::reminders,
        Limit::groups,
        Limit::discovery_rate,
        Limit::discovery_total,
        Limit::image_bytes,
        Limit::image_dimensions,
        Limit::download_bytes,
        Limit::download_time,
        Limit::foreign_retained,
        Limit::command_queue,
    ];
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LimitLabel {
    limit: Limit,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabel {
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TaskLabel {
    task: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ClassLabel {
    class: &'static str,
}

/// The classes of the MQTT outbox's drop policy, in the order they are dropped.
pub const OUTBOX_CLASSES: [&str; 3] = ["event", "message", "state"];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct QueueLabel {
    queue: String,
}

/// The gateway's metrics. Counting is a relaxed atomic add: cheap enough for every callback.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    callbacks: Counter,
    events: Counter,
    commands: Counter,
    results: Family<StatusLabel, Counter>,
    refusals: Family<LimitLabel, Counter>,
    panics: Family<TaskLabel, Counter>,
    mqtt_reconnects: Counter,
    websocket_clients: Gauge<i64, AtomicI64>,
    queue_depth: Family<QueueLabel, Gauge<i64, AtomicI64>>,
    outbox_messages: Gauge<i64, AtomicI64>,
    outbox_bytes: Gauge<i64, AtomicI64>,
    outbox_dropped: Family<ClassLabel, Counter>,
    mqtt_connected: Gauge<i64, AtomicI64>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("phone2mqtt");
        let callbacks = Counter::<u64, AtomicU64>::default();
        let events = Counter::<u64, AtomicU64>::default();
        let commands = Counter::<u64, AtomicU64>::default();
        let results = Family::<StatusLabel, Counter>::default();
        let refusals = Family::<LimitLabel, Counter>::default();
        let panics = Family::<TaskLabel, Counter>::default();
        let mqtt_reconnects = Counter::<u64, AtomicU64>::default();
        let websocket_clients = Gauge::<i64, AtomicI64>::default();
        let queue_depth = Family::<QueueLabel, Gauge<i64, AtomicI64>>::default();
        let outbox_messages = Gauge::<i64, AtomicI64>::default();
        let outbox_bytes = Gauge::<i64, AtomicI64>::default();
        let outbox_dropped = Family::<ClassLabel, Counter>::default();
        let mqtt_connected = Gauge::<i64, AtomicI64>::default();
        registry.register(
            "outbox_messages",
            "Messages in the agent's MQTT outbox, not yet acknowledged by the broker",
            outbox_messages.clone(),
        );
        registry.register(
            "outbox_bytes",
            "Bytes (payloads and topics) in the agent's MQTT outbox",
            outbox_bytes.clone(),
        );
        registry.register(
            "outbox_dropped",
            "Messages dropped from the agent's full MQTT outbox, by class (event first, then message, then state, which is republished)",
            outbox_dropped.clone(),
        );
        registry.register(
            "mqtt_connected",
            "1 while the agent's MQTT session is connected",
            mqtt_connected.clone(),
        );
        for class in OUTBOX_CLASSES {
            let _ = outbox_dropped.get_or_create(&ClassLabel { class });
        }
        registry.register(
            "callbacks",
            "Action URL callbacks accepted from phones",
            callbacks.clone(),
        );
        registry.register("events", "Events published on MQTT", events.clone());
        registry.register(
            "commands",
            "Commands accepted for phones and groups",
            commands.clone(),
        );
        registry.register(
            "results",
            "Command results published, by status",
            results.clone(),
        );
        registry.register(
            "refusals",
            "Inputs refused by a limit, by limit (the README's table of limits)",
            refusals.clone(),
        );
        registry.register(
            "task_panics",
            "Panics caught in a supervised task, which was restarted",
            panics.clone(),
        );
        registry.register(
            "mqtt_reconnects",
            "MQTT sessions re-established after a loss",
            mqtt_reconnects.clone(),
        );
        registry.register(
            "websocket_clients",
            "Websocket clients connected now",
            websocket_clients.clone(),
        );
        registry.register(
            "queue_depth",
            "Items waiting in a queue now, by queue",
            queue_depth.clone(),
        );
        for &limit in Limit::ALL {
            let _ = refusals.get_or_create(&LimitLabel { limit });
        }
        Metrics {
            registry,
            callbacks,
            events,
            commands,
            results,
            refusals,
            panics,
            mqtt_reconnects,
            websocket_clients,
            queue_depth,
            outbox_messages,
            outbox_bytes,
            outbox_dropped,
            mqtt_connected,
        }
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry)
            .expect("writing to a String cannot fail");
        text
    }

    /// An input refused by `limit`.
    pub fn refused(&self, limit: Limit) {
        self.refusals.get_or_create(&LimitLabel { limit }).inc();
    }

    /// Refusals by `limit` so far.
    pub fn refusals(&self, limit: Limit) -> u64 {
        self.refusals.get_or_create(&LimitLabel { limit }).get()
    }

    pub fn callback(&self) {
        self.callbacks.inc();
    }

    pub fn callbacks(&self) -> u64 {
        self.callbacks.get()
    }

    pub fn event(&self) {
        self.events.inc();
    }

    pub fn command(&self) {
        self.commands.inc();
    }

    pub fn commands(&self) -> u64 {
        self.commands.get()
    }

    /// A command result published, by its status (`ok`, `error`, `timeout`...).
    pub fn result(&self, status: &str) {
        self.results
            .get_or_create(&StatusLabel {
                status: status.to_string(),
            })
            .inc();
    }

    /// A panic caught in `task`, which the supervisor restarted.
    pub fn panicked(&self, task: &str) {
        self.panics
            .get_or_create(&TaskLabel {
                task: task.to_string(),
            })
            .inc();
    }

    pub fn panics(&self, task: &str) -> u64 {
        self.panics
            .get_or_create(&TaskLabel {
                task: task.to_string(),
            })
            .get()
    }

    pub fn mqtt_reconnected(&self) {
        self.mqtt_reconnects.inc();
    }

    pub fn mqtt_reconnects(&self) -> u64 {
        self.mqtt_reconnects.get()
    }

    /// The websocket clients gauge; `inc` on connect, `dec` on close.
    pub fn websocket_clients(&self) -> &Gauge<i64, AtomicI64> {
        &self.websocket_clients
    }

    /// The outbox's content now.
    pub fn outbox_level(&self, messages: usize, bytes: usize) {
        self.outbox_messages
            .set(i64::try_from(messages).unwrap_or(i64::MAX));
        self.outbox_bytes
            .set(i64::try_from(bytes).unwrap_or(i64::MAX));
    }

    /// A message dropped from the full outbox; `class` is one of [`OUTBOX_CLASSES`].
    pub fn outbox_dropped(&self, class: &'static str) {
        self.outbox_dropped
            .get_or_create(&ClassLabel { class })
            .inc();
    }

    /// Messages of `class` dropped so far.
    pub fn outbox_drops(&self, class: &'static str) -> u64 {
        self.outbox_dropped
            .get_or_create(&ClassLabel { class })
            .get()
    }

    pub fn mqtt_connected(&self, connected: bool) {
        self.mqtt_connected.set(i64::from(connected));
    }

    /// Sets queue `queue`'s depth now.
    pub fn queue_depth(&self, queue: &str, depth: usize) {
        self.queue_depth
            .get_or_create(&QueueLabel {
                queue: queue.to_string(),
            })
            .set(i64::try_from(depth).unwrap_or(i64::MAX));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_are_rendered_by_limit() {
        let metrics = Metrics::new();
        metrics.refused(Limit::directory_rows);
        metrics.refused(Limit::directory_rows);
        metrics.result("ok");
        let text = metrics.render();
        assert!(
            text.contains("phone2mqtt_refusals_total{limit=\"directory_rows\"} 2"),
            "{text}"
        );
        assert!(
            text.contains("phone2mqtt_results_total{status=\"ok\"} 1"),
            "{text}"
        );
        assert_eq!(metrics.refusals(Limit::directory_rows), 2);
        assert_eq!(metrics.refusals(Limit::reminders), 0);
        assert!(
            text.contains("phone2mqtt_refusals_total{limit=\"foreign_retained\"} 0"),
            "every limit is shown from the start: {text}"
        );
    }
}
