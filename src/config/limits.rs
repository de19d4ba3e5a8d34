//! `[limits]`: how much of each input the gateway takes. The README's table of limits lists every
//! key with its default and what a refusal looks like; each refusal is counted on `/metrics`
//! under `phone2mqtt_refusals_total{limit="..."}`.

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Open HTTP connections at most, over all listeners.
    pub connections: usize,
    /// Of those, at most this many serve people (Manager, REST API, websockets); the rest are
    /// kept for phones' callbacks and provisioning.
    pub people_connections: usize,
    /// Open HTTP connections from one address at most.
    pub connections_per_address: usize,
    /// Seconds a connection may stay silent: before its request head, and between requests on a
    /// kept-alive connection. Phones send one request per connection.
    pub http_idle_secs: u64,
    /// The largest request head.
    pub http_head_bytes: usize,
    /// The largest request body of the REST API: a command's JSON (logo uploads have
    /// `image_bytes`).
    pub http_body_bytes: usize,
    /// Websocket clients at most, in total and from one address.
    pub websocket_clients: usize,
    pub websocket_clients_per_address: usize,
    /// The largest message a websocket client may send. A command is small; the Manager's
    /// directory import (`directory/set` over `/ws`) is the one large message, so the default
    /// is the broker's packet limit.
    pub websocket_message_bytes: usize,
    /// The largest command payload on MQTT (`cmd/<name>`, group commands).
    pub command_payload_bytes: usize,
    /// The largest directory payload on MQTT (`directory/set`).
    pub directory_payload_bytes: usize,
    /// Subscribers in the directory at most.
    pub directory_rows: usize,
    /// Pending reminders at most.
    pub reminders: usize,
    /// Groups at most (configured and learned).
    pub groups: usize,
    /// Phones newly discovered per minute at most, and in total.
    pub discovered_per_minute: usize,
    pub discovered_phones: usize,
    /// The largest image file (logo uploads and downloads).
    pub image_bytes: usize,
    /// The largest width or height of an image, in pixels.
    pub image_pixels: u32,
    /// Images decoded at the same time at most.
    pub image_decodes: usize,
    /// The largest download (a logo from a URL), and the seconds it may take in all.
    pub download_bytes: usize,
    pub download_secs: u64,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            connections: 4096,
            people_connections: 512,
            connections_per_address: 256,
            http_idle_secs: 10,
            http_head_bytes: 16 * 1024,
            http_body_bytes: 64 * 1024,
            websocket_clients: 128,
            websocket_clients_per_address: 16,
            websocket_message_bytes: 1024 * 1024,
            command_payload_bytes: 64 * 1024,
            directory_payload_bytes: 1024 * 1024 - 1024,
            directory_rows: 20_000,
            reminders: 1000,
            groups: 500,
            discovered_per_minute: 120,
            discovered_phones: 2000,
            image_bytes: 2 * 1024 * 1024,
            image_pixels: 4096,
            image_decodes: 2,
            download_bytes: 2 * 1024 * 1024,
            download_secs: 20,
        }
    }
}

impl LimitsConfig {
    /// Every limit must let something through, and the people's budget must leave room for phones.
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        let nonzero: [(&'static str, usize); 18] = [
            ("connections", self.connections),
            ("people_connections", self.people_connections),
            ("connections_per_address", self.connections_per_address),
            ("http_head_bytes", self.http_head_bytes),
            ("http_body_bytes", self.http_body_bytes),
            ("websocket_clients", self.websocket_clients),
            (
                "websocket_clients_per_address",
                self.websocket_clients_per_address,
            ),
            ("websocket_message_bytes", self.websocket_message_bytes),
            ("command_payload_bytes", self.command_payload_bytes),
            ("directory_payload_bytes", self.directory_payload_bytes),
            ("directory_rows", self.directory_rows),
            ("reminders", self.reminders),
            ("groups", self.groups),
            ("discovered_per_minute", self.discovered_per_minute),
            ("discovered_phones", self.discovered_phones),
            ("image_bytes", self.image_bytes),
            ("image_decodes", self.image_decodes),
            ("download_bytes", self.download_bytes),
        ];
        for (key, value) in nonzero {
            if value == 0 {
                return Err((key, "must be at least 1".into()));
            }
        }
        if self.people_connections >= self.connections {
            return Err((
                "people_connections",
                format!(
                    "must be below `connections` ({}), so that phones keep connections of their own",
                    self.connections
                ),
            ));
        }
        if self.http_idle_secs == 0 || self.download_secs == 0 || self.image_pixels == 0 {
            return Err((
                "http_idle_secs",
                "http_idle_secs, download_secs and image_pixels must be at least 1".into(),
            ));
        }
        Ok(())
    }
}
