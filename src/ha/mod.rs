//! Home Assistant MQTT discovery: each phone becomes one Home Assistant device, announced by one
//! retained device-based discovery message, `<prefix>/device/phone2mqtt_<id>/config`, with only
//! the entities its vendor (and its config) can back.
//!
//! - `payload`: pure. The payloads, from a phone's `info`, its vendor's table and its
//!   `[[phone]]` entry, one function per kind of entity.
//! - `publisher`: what the agent calls, and the publisher task: publish on (re)connect, on a
//!   phone's first appearance or changed info, when Home Assistant announces itself on
//!   `<prefix>/status`, and remove what this agent published before but no longer has. It
//!   knows the agent only through [`Link`] (what it publishes with) and [`Phones`] (what it
//!   reads): the agent calls into this module, never the other way.
//! - `abbreviations`: Home Assistant's short keys, which keep 10,000 payloads small.
//!
//! Home Assistant's docs, which every key here follows:
//! - device-based discovery, `device`, `origin`, `components`, availability:
//!   <https://www.home-assistant.io/integrations/mqtt/#device-discovery-payload>
//! - the entity kinds: <https://www.home-assistant.io/integrations/event.mqtt/>,
//!   `device_trigger.mqtt`, `sensor.mqtt`, `binary_sensor.mqtt`, `switch.mqtt`, `button.mqtt`,
//!   `notify.mqtt`, `text.mqtt` (same address pattern).

pub mod abbreviations;
mod payload;
mod publisher;

pub use payload::*;
pub use publisher::*;
