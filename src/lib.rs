//! phone2mqtt turns SIP desk phones into MQTT devices.
//!
//! Phones report events through their Action URL (an HTTP GET on every call, key press, DND
//! change...) and take commands through their Action URI (HTTP requests that dial, answer, set
//! DND...). The agent receives the first and publishes them on MQTT; it subscribes to command
//! topics and drives the phones with the second.
//!
//! ARCHITECTURE.md names the tasks, who owns which state, and follows a Snom's incoming call to
//! MQTT and a `cmd/dnd` to a Grandstream hop by hop; docs/vendors.md is the wire reference the
//! vendor modules are written from.
//!
//! # Layout
//!
//! Three layers; each uses only the ones above it in this list.
//!
//! **Core**: data and pure functions, no tasks, no sockets.
//! - [`model`]: the intermediate form between every vendor's wire format and MQTT: `PhoneId`,
//!   `Event`, `Command`, `CommandResult`, `PhoneState`.
//! - [`phone_vendors`]: one file per vendor, declared as data: events, variables, commands, request
//!   building, reply reading, provisioning. No I/O.
//! - [`topics`]: every topic string is built and parsed there and nowhere else.
//! - [`command`]: command payloads into validated commands, and the errors a command ends in.
//! - [`profile`]: programmable keys, vendor settings and logos per site, group and phone.
//! - [`config`]: `phone2mqtt.toml`, every key checked before anything starts.
//! - [`phone_address`]: a phone's address, `host[:port]` and nothing else.
//! - [`hash`]: MD5 and SHA-256 as hex, compared in constant time.
//! - [`metrics`]: the counters and gauges `/metrics` serves, refusals by limit among them.
//!
//! **Runtime**: the tasks of `serve` and `agent`.
//! - [`agent`]: receives callbacks, keeps state, runs one command queue per phone, serves
//!   provisioning files.
//! - [`http_front`]: the HTTP listener, lenient about the request lines phones write.
//! - [`http_error`]: `ApiError`, the one error answer (status and `{"error": ...}`) of the
//!   REST API, the login routes and the guard.
//! - [`tls`]: HTTPS for people: the certificate, and the plain port kept for phones.
//! - [`mqtt`]: the one MQTT session task per component, with reconnect and resubscribe.
//! - [`broker`]: the embedded rumqttd broker.
//! - [`auth`]: users, API tokens, sessions and roles for the Manager, the REST API and `/ws`.
//! - [`phone_auth`]: how phones prove who they are: per-phone Action URL tokens, provisioning
//!   credentials.
//! - [`web`]: the `/ws` adapter, the REST API and the Manager page (ES modules, no build step).
//! - [`ha`]: Home Assistant MQTT discovery, one device per phone, from its vendor's table.
//! - [`gateway`]: wires the broker, the agent, the web side and the HTTP listener together.
//! - [`shutdown`]: Ctrl-C and SIGTERM, and the order things stop in.
//! - [`supervise`]: long-lived tasks restarted after a panic; the process exits when one keeps
//!   panicking.
//! - [`datafile`]: the data directory's files, written whole and atomically, and the one store
//!   type the agent's kept files use.
//! - [`logging`]: the log on stderr, `RUST_LOG` or the defaults.
//!
//! **Tools**: built on the two layers above.
//! - [`sim`]: simulated phones, one personality per vendor, and a lightweight fleet mode.
//! - [`bench`]: `phone2mqtt bench`, the gateway measured against baselines (BENCHMARKS.md).
//! - [`client`]: the terminal client (`phones`, `send`, `watch`...), over MQTT to any broker.
//! - [`docs`]: the README and topics.md tables, generated from the vendor tables.
//! - [`demo`]: `serve --demo`, the gateway with simulated phones that get calls.

pub mod agent;
pub mod auth;
pub mod bench;
pub mod broker;
pub mod client;
pub mod command;
pub mod config;
pub mod datafile;
pub mod demo;
pub mod docs;
pub mod gateway;
pub mod ha;
pub mod hash;
pub mod http_error;
pub mod http_front;
pub mod logging;
pub mod metrics;
pub mod model;
pub mod mqtt;
pub mod phone_address;
pub mod phone_auth;
pub mod phone_vendors;
pub mod profile;
pub mod shutdown;
pub mod sim;
pub mod supervise;
pub mod tls;
pub mod topics;
pub mod web;
