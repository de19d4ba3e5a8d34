//! What a vendor personality is made of: the functions that make a simulated phone look like
//! one vendor's on the wire, and the values they work on (requests, replies, actions, the
//! phone's snapshot).

use std::collections::HashMap;
use std::net::SocketAddr;

use axum::http::Method;
use serde::Serialize;

use super::{fanvil, grandstream, htek, settings, snom, yealink};
use crate::model::{CallState, PhoneId};
use crate::phone_vendors::{PhoneOptions, VendorSpec};

/// One vendor's behaviour on the wire.
#[derive(Debug)]
pub struct Personality {
    pub vendor: &'static VendorSpec,
    pub default_model: &'static str,
    pub default_firmware: &'static str,
    pub user_agent: fn(&Identity) -> String,
    /// The provisioning files the phone requests, in order.
    pub provisioning_files: fn(&PhoneId) -> Vec<String>,
    /// Reads a provisioning file into settings; later files override earlier ones.
    pub read_provisioning: fn(&str, &mut Provisioned),
    /// Checks authentication and access; `Err` is the reply to send instead.
    pub check_access: fn(&AccessCtx) -> Result<(), Reply>,
    /// Turns an Action URI request into phone actions, or refuses it.
    pub parse_request: fn(&Request) -> Result<Vec<Action>, Reply>,
    /// The reply to a request whose actions were carried out.
    pub reply: fn(&Request, &[Action], &Snapshot) -> Reply,
    /// How `$mac` and `$remote` look when this vendor fills them in.
    pub mac_value: fn(&PhoneId) -> String,
    pub remote_value: fn(&str, &str) -> String,
    /// Reads every setting of a provisioning file (accounts, keys, logo, pushed settings).
    pub read_settings: fn(&str, &mut settings::Settings),
    /// The URL programmable key `n` (1-based, as printed) requests, if it is programmed so.
    pub key_url: fn(&settings::Settings, u32) -> Option<String>,
    /// The logo or background image provisioning set.
    pub logo_url: fn(&settings::Settings) -> Option<String>,
    /// A boot file asked for before anything else; its includes are the files to read.
    pub boot_file: Option<fn(&PhoneId) -> String>,
    /// What a `[[phone]]` entry for this phone sets of its vendor's options
    /// (`VendorSpec::options`), so that every command it has reaches it (the demo's phones).
    pub phone_options: fn() -> PhoneOptions,
}

/// Every vendor personality the simulator has.
pub static PERSONALITIES: &[&Personality] = &[
    &yealink::PERSONALITY,
    &grandstream::PERSONALITY,
    &snom::PERSONALITY,
    &fanvil::PERSONALITY,
    &htek::PERSONALITY,
];

pub fn personality(vendor: &str) -> Option<&'static Personality> {
    PERSONALITIES
        .iter()
        .copied()
        .find(|p| p.vendor.id.eq_ignore_ascii_case(vendor))
}

/// What a phone announces about itself.
#[derive(Debug, Clone)]
pub struct Identity {
    pub mac: PhoneId,
    pub model: String,
    pub firmware: String,
}

/// Settings read from provisioning.
#[derive(Debug, Clone, Default)]
pub struct Provisioned {
    /// Action URL templates by the vendor's event name.
    pub action_urls: HashMap<String, String>,
    /// The Action URI allow list as written in the file, if it set one.
    pub allow_list: Option<String>,
    /// Whether the phone asks "Allow remote control?" on its screen.
    pub prompt: Option<bool>,
    /// Whether any file was read.
    pub loaded: bool,
    /// Every setting read, later files overriding earlier ones.
    pub settings: settings::Settings,
    /// The logo provisioning pointed at, as downloaded.
    pub logo: Option<LogoSeen>,
}

/// An image the phone downloaded as its logo or background.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LogoSeen {
    pub url: String,
    pub bytes: usize,
    pub width: u32,
    pub height: u32,
}

/// An Action URI request as the phone received it.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: Method,
    /// The path and query exactly as sent.
    pub target: String,
    pub authorization: Option<String>,
    pub body: String,
}

impl Request {
    /// A `GET` of `target` without credentials.
    pub fn get(target: &str) -> Request {
        Request {
            method: Method::GET,
            target: target.into(),
            authorization: None,
            body: String::new(),
        }
    }
}

/// What access checks look at.
#[derive(Debug)]
pub struct AccessCtx<'a> {
    pub request: &'a Request,
    pub peer: SocketAddr,
    pub username: &'a str,
    pub password: &'a str,
    pub provisioned: &'a Provisioned,
    /// Someone pressed OK on the remote-control prompt.
    pub confirmed: bool,
    /// The phone wants HTTP Digest instead of Basic.
    pub digest: bool,
}

/// A reply to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: String,
}

impl Reply {
    pub fn new(status: u16, body: impl Into<String>) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            body: body.into(),
        }
    }

    /// `400 Bad Request: <why>`, as the simulated phones refuse what their vendor's API does
    /// not take.
    pub fn bad_request(why: impl std::fmt::Display) -> Reply {
        Reply::new(400, format!("Bad Request: {why}"))
    }

    pub fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Reply {
        self.headers.push((name, value.into()));
        self
    }
}

/// What a request makes the phone do, the same for every vendor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Dial(String),
    Answer,
    Hangup,
    Reject,
    ToggleHold,
    Hold,
    Resume,
    Transfer(String),
    Dnd(bool),
    ToggleDnd,
    VolumeUp,
    VolumeDown,
    Mute,
    Key(String),
    Reboot,
    Reprovision,
    Message(String),
    /// Report state; the reply renders it.
    Status,
}

/// The phone's state, as tests and `/sim/state` see it.
#[derive(Debug, Clone, Serialize)]
pub struct Snapshot {
    pub mac: String,
    pub vendor: &'static str,
    pub model: String,
    pub firmware: String,
    pub call_state: CallState,
    pub remote: Option<String>,
    pub remote_name: Option<String>,
    pub call_id: Option<u32>,
    pub dnd: bool,
    pub muted: bool,
    pub volume: u8,
    pub registered: bool,
    pub line_user: String,
    pub last_message: Option<String>,
    pub keys: Vec<String>,
    pub provisioned: bool,
    /// Every provisioned setting, as the phone read it.
    pub settings: settings::Settings,
    pub logo: Option<LogoSeen>,
    /// Which files the last provisioning read, in order.
    pub provisioning_files: Vec<String>,
    pub prompt_pending: bool,
    pub boots: u32,
    /// Every Action URI request line received, `METHOD target`.
    pub requests: Vec<String>,
    /// The authentication scheme each of those requests carried (`Basic`, `Digest`...), or
    /// `none`: the credentials themselves are not kept.
    pub authorizations: Vec<String>,
    /// Every Action URL fired: vendor event name and the agent's status code.
    pub fired: Vec<(String, u16)>,
}
