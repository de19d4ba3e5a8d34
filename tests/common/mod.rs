//! What the tests share, so that each test reads as a transcript: start a gateway on port 0
//! with its embedded broker, start simulated phones pointed at it, watch MQTT and the
//! websocket. One module a job:
//!
//! - `gateway`: a test gateway, its API tokens and HTTP clients;
//! - `phone`: simulated phones, what they received, what they became;
//! - `mqtt`: the one MQTT probe, commands, login checks;
//! - `ws`: the `/ws` websocket;
//! - `net`: free ports, raw HTTP as phones write it, recording listeners;
//! - `process`: stopping `phone2mqtt` processes, killing third-party ones;
//! - `tempdir`, `tls`: data directories and certificates;
//! - `mosquitto`, `ha_venv`, `node_red`: the third-party programs some tests start, installed
//!   where needed.
// Each test binary uses a part of what is shared here.
#![allow(dead_code, unused_imports)]

use std::time::Duration;

mod gateway;
pub mod ha_venv;
pub mod mosquitto;
mod mqtt;
mod net;
pub mod node_red;
mod phone;
mod process;
pub mod tempdir;
mod tls;
mod ws;

pub use gateway::*;
pub use mqtt::*;
pub use net::*;
pub use phone::*;
pub use process::*;
pub use tls::*;
pub use ws::*;

pub const TIMEOUT: Duration = Duration::from_secs(10);
/// An installation-wide token as earlier versions had (`[http] action_token`), for the tests of
/// its grace period; `test_config` sets none, as on a new installation.
pub const TOKEN: &str = "test-token-0123456789abcdef";
pub const PASSWORD: &str = "s3cret-admin-pw";
