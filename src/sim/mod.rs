//! Simulated desk phones that behave on the wire as docs/vendors.md says real ones do.
//!
//! A simulated phone starts with nothing but the agent's address. Like a real phone it fetches
//! its provisioning file from the agent, reads the Action URLs out of it, and fires them with the
//! values pasted in verbatim (raw spaces, raw `+`) over a plain TCP socket, exactly as phones do.
//! It serves its vendor's Action URI API with the vendor's authentication and access rules,
//! keeps a call state machine, and answers commands the way a phone does (dial fires
//! `outgoing_call`, answer fires `call_established`...).
//!
//! What is the same for every vendor lives here; `sim/<vendor>.rs` holds one personality: how
//! that vendor's requests, replies, provisioning files and variables look.

pub mod fanvil;
pub mod fleet;
pub mod grandstream;
pub mod htek;
pub mod settings;
pub mod snom;
pub mod yealink;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{header, HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::model::{CallState, PhoneId};
use crate::phone_vendors::VendorSpec;

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

/// How to start a simulated phone.
#[derive(Debug, Clone)]
pub struct SimOptions {
    pub personality: &'static Personality,
    pub mac: PhoneId,
    /// The agent's address, `http://host:port`: all the phone is given.
    pub agent_url: String,
    pub listen: SocketAddr,
    pub username: String,
    pub password: String,
    pub line_user: String,
    pub pbx_host: String,
    pub display_name: String,
    /// The far end picks up this long after the phone dials; `None`: it never does.
    pub remote_answers_after: Option<Duration>,
    /// Random incoming calls, for the demo.
    pub random_calls: bool,
    /// Ask for HTTP Digest instead of Basic (Snom's "Authentication Scheme").
    pub digest: bool,
}

impl SimOptions {
    pub fn new(personality: &'static Personality, mac: PhoneId, agent_url: &str) -> SimOptions {
        SimOptions {
            personality,
            mac,
            agent_url: agent_url.trim_end_matches('/').to_string(),
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            username: "admin".into(),
            password: "admin".into(),
            line_user: "1001".into(),
            pbx_host: "pbx.example.com".into(),
            display_name: "Desk".into(),
            remote_answers_after: Some(Duration::from_secs(2)),
            random_calls: false,
            digest: false,
        }
    }
}

#[derive(Debug)]
struct PhoneState {
    identity: Identity,
    call_state: CallState,
    remote: Option<String>,
    remote_name: Option<String>,
    call_id: Option<u32>,
    next_call_id: u32,
    dnd: bool,
    muted: bool,
    volume: u8,
    registered: bool,
    last_message: Option<String>,
    keys: Vec<String>,
    provisioned: Provisioned,
    confirmed: bool,
    prompt_pending: bool,
    boots: u32,
    requests: Vec<String>,
    authorizations: Vec<String>,
    fired: Vec<(String, u16)>,
    provisioned_files: Vec<String>,
}

/// A running simulated phone.
#[derive(Debug, Clone)]
pub struct SimPhone {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    options: SimOptions,
    addr: SocketAddr,
    state: Mutex<PhoneState>,
    fire_tx: mpsc::UnboundedSender<Fire>,
    /// Action URLs queued and not yet answered by the agent.
    unanswered: std::sync::atomic::AtomicUsize,
    http: reqwest::Client,
    shutdown: CancellationToken,
}

/// An Action URL to fire: the vendor's event name and the variables at the time it happened.
#[derive(Debug)]
struct Fire {
    wire: String,
    url: String,
}

impl SimPhone {
    /// Binds the phone's HTTP port, then boots it: fetch provisioning, fire setup and registration.
    pub async fn spawn(
        options: SimOptions,
        shutdown: CancellationToken,
    ) -> std::io::Result<SimPhone> {
        let listener = TcpListener::bind(options.listen).await?;
        let addr = listener.local_addr()?;
        let (fire_tx, fire_rx) = mpsc::unbounded_channel();
        let personality = options.personality;
        let phone = SimPhone {
            inner: Arc::new(Inner {
                state: Mutex::new(PhoneState {
                    identity: Identity {
                        mac: options.mac.clone(),
                        model: personality.default_model.into(),
                        firmware: personality.default_firmware.into(),
                    },
                    call_state: CallState::Idle,
                    remote: None,
                    remote_name: None,
                    call_id: None,
                    next_call_id: 1,
                    dnd: false,
                    muted: false,
                    volume: 8,
                    registered: false,
                    last_message: None,
                    keys: Vec::new(),
                    provisioned: Provisioned::default(),
                    confirmed: false,
                    prompt_pending: false,
                    boots: 0,
                    requests: Vec::new(),
                    authorizations: Vec::new(),
                    fired: Vec::new(),
                    provisioned_files: Vec::new(),
                }),
                options,
                addr,
                fire_tx,
                unanswered: std::sync::atomic::AtomicUsize::new(0),
                http: reqwest::Client::builder()
                    .timeout(Duration::from_secs(5))
                    .build()
                    .expect("a plain reqwest client builds"),
                shutdown: shutdown.clone(),
            }),
        };
        tokio::spawn(fire_loop(phone.clone(), fire_rx));
        let router = router(phone.clone());
        let serve_shutdown = shutdown.clone();
        tokio::spawn(async move {
            let service = router.into_make_service_with_connect_info::<SocketAddr>();
            let _ = axum::serve(listener, service)
                .with_graceful_shutdown(serve_shutdown.cancelled_owned())
                .await;
        });
        let booting = phone.clone();
        tokio::spawn(async move { booting.boot().await });
        if phone.inner.options.random_calls {
            tokio::spawn(random_calls(phone.clone()));
        }
        Ok(phone)
    }

    pub fn addr(&self) -> SocketAddr {
        self.inner.addr
    }

    pub fn mac(&self) -> &PhoneId {
        &self.inner.options.mac
    }

    pub fn options(&self) -> &SimOptions {
        &self.inner.options
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, PhoneState> {
        self.inner.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn snapshot(&self) -> Snapshot {
        let state = self.lock();
        snapshot_of(&self.inner.options, &state)
    }

    /// Waits until provisioning was read and the agent has answered the boot events.
    pub async fn wait_booted(&self, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        while tokio::time::Instant::now() < deadline {
            // Booted once registered and the agent has answered every Action URL sent so far.
            let answered = self
                .inner
                .unanswered
                .load(std::sync::atomic::Ordering::SeqCst)
                == 0;
            if self.snapshot().registered && answered {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        false
    }

    /// Powers up: fetch provisioning like a real phone, then report boot and registration.
    async fn boot(&self) {
        self.fetch_provisioning().await;
        {
            let mut state = self.lock();
            state.boots += 1;
            state.call_state = CallState::Idle;
            state.remote = None;
            state.remote_name = None;
            state.call_id = None;
            state.muted = false;
        }
        self.fire("setup_completed");
        self.lock().registered = true;
        self.fire("registered");
    }

    async fn fetch_provisioning(&self) {
        let personality = self.inner.options.personality;
        let identity = self.lock().identity.clone();
        let user_agent = (personality.user_agent)(&identity);
        let (agent, _) = agent_and_credentials(&self.inner.options.agent_url);
        let absolute = |file: &str| {
            if file.starts_with("http://") || file.starts_with("https://") {
                file.to_string()
            } else {
                format!("{agent}/{}", file.trim_start_matches('/'))
            }
        };
        // A boot file, where the vendor has one, lists the files to read; without it the
        // phone asks for its usual files.
        let mut files = Vec::new();
        if let Some(boot_file) = personality.boot_file {
            if let Some(text) = self
                .get_text(&absolute(&boot_file(&identity.mac)), &user_agent)
                .await
            {
                files = settings::boot_includes(&text)
                    .iter()
                    .map(|f| absolute(f))
                    .collect();
            }
        }
        if files.is_empty() {
            files = (personality.provisioning_files)(&identity.mac)
                .iter()
                .map(|f| absolute(f))
                .collect();
        }
        let mut provisioned = Provisioned::default();
        let mut read = Vec::new();
        for url in files {
            if let Some(text) = self.get_text(&url, &user_agent).await {
                (personality.read_provisioning)(&text, &mut provisioned);
                (personality.read_settings)(&text, &mut provisioned.settings);
                provisioned.loaded = true;
                read.push(url);
            }
        }
        if !provisioned.loaded {
            warn!(mac = %identity.mac, agent = %self.inner.options.agent_url, "No provisioning found; this phone will send no events.");
        }
        if let Some(url) = (personality.logo_url)(&provisioned.settings) {
            provisioned.logo = self.download_logo(&url, &user_agent).await;
        }
        let mut state = self.lock();
        state.provisioned = provisioned;
        state.provisioned_files = read;
    }

    /// A GET from the provisioning server, as the phone makes it; `None` when the file is not
    /// served (or the server is down). Like a phone given provisioning server credentials, it
    /// asks without them first and answers the agent's challenge: Digest when offered, else
    /// Basic.
    async fn fetch(&self, url: &str, user_agent: &str) -> Option<reqwest::Response> {
        let get = |authorization: Option<String>| {
            let mut request = self
                .inner
                .http
                .get(url)
                .header(header::USER_AGENT, user_agent);
            if let Some(authorization) = authorization {
                request = request.header(header::AUTHORIZATION, authorization);
            }
            request.send()
        };
        let mut sent = get(None).await;
        let (agent, credentials) = agent_and_credentials(&self.inner.options.agent_url);
        if let (Ok(response), Some((username, password))) = (&sent, credentials) {
            if response.status() == StatusCode::UNAUTHORIZED && same_origin(url, &agent) {
                let challenges: Vec<String> = response
                    .headers()
                    .get_all(header::WWW_AUTHENTICATE)
                    .iter()
                    .filter_map(|value| value.to_str().ok().map(str::to_string))
                    .collect();
                if let Some(answer) = answer_challenge(&challenges, url, &username, &password) {
                    sent = get(Some(answer)).await;
                }
            }
        }
        match sent {
            Ok(response) if response.status().is_success() => Some(response),
            Ok(response) => {
                debug!(%url, status = %response.status(), "Provisioning file not served.");
                None
            }
            Err(err) => {
                warn!(%url, cause = %err, "Provisioning server unreachable.");
                None
            }
        }
    }

    /// A provisioning file's text.
    async fn get_text(&self, url: &str, user_agent: &str) -> Option<String> {
        self.fetch(url, user_agent).await?.text().await.ok()
    }

    /// Downloads the logo like the phone would, and reads its size.
    async fn download_logo(&self, url: &str, user_agent: &str) -> Option<LogoSeen> {
        let bytes = self.fetch(url, user_agent).await?.bytes().await.ok()?;
        let image = match image::load_from_memory(&bytes) {
            Ok(image) => image,
            Err(err) => {
                warn!(%url, cause = %err, "The logo is not an image this phone can show.");
                return None;
            }
        };
        Some(LogoSeen {
            url: url.to_string(),
            bytes: bytes.len(),
            width: image.width(),
            height: image.height(),
        })
    }

    /// Someone presses programmable key `n`: the phone requests the URL it is programmed with.
    pub fn press_key(&self, n: u32) -> Result<(), String> {
        let personality = self.inner.options.personality;
        let url = {
            let state = self.lock();
            (personality.key_url)(&state.provisioned.settings, n)
        };
        let Some(url) = url else {
            return Err(format!("key {n} is not programmed to call a URL"));
        };
        let user_agent = (personality.user_agent)(&self.lock().identity);
        let phone = self.clone();
        tokio::spawn(async move {
            let status = send_raw_get(&url, &user_agent).await.unwrap_or(0);
            phone.lock().fired.push((format!("key {n}"), status));
        });
        Ok(())
    }

    /// Queues the Action URL for a normalised event, if provisioning set one.
    fn fire(&self, event: &str) {
        self.fire_with(event, None);
    }

    fn fire_with(&self, event: &str, forward: Option<&str>) {
        let vendor = self.inner.options.personality.vendor;
        let Some(spec) = vendor.events.iter().find(|spec| {
            spec.event.name() == event
                && (forward.is_none() || spec.forward.map(|f| f.name()) == forward)
        }) else {
            return;
        };
        let state = self.lock();
        let Some(template) = state.provisioned.action_urls.get(spec.wire) else {
            return;
        };
        let url = substitute(template, &self.variables(&state));
        self.inner
            .unanswered
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let _ = self.inner.fire_tx.send(Fire {
            wire: spec.wire.to_string(),
            url,
        });
    }

    /// The vendor's variables with their current values, by the vendor's spelling.
    fn variables(&self, state: &PhoneState) -> HashMap<&'static str, String> {
        let options = &self.inner.options;
        let personality = options.personality;
        let names = &personality.vendor.vars;
        let local = format!("{}@{}", options.line_user, options.pbx_host);
        let mut values: HashMap<&'static str, String> = HashMap::new();
        values.insert(names.mac, (personality.mac_value)(&state.identity.mac));
        let mut put = |name: Option<&'static str>, value: Option<String>| {
            if let (Some(name), Some(value)) = (name, value) {
                values.insert(name, value);
            }
        };
        put(names.ip, Some(self.inner.addr.ip().to_string()));
        put(names.model, Some(state.identity.model.clone()));
        put(names.firmware, Some(state.identity.firmware.clone()));
        put(names.active_user, Some(options.line_user.clone()));
        put(names.active_host, Some(options.pbx_host.clone()));
        put(
            names.local,
            Some((personality.remote_value)(
                &options.line_user,
                &options.pbx_host,
            )),
        );
        put(names.display_local, Some(options.display_name.clone()));
        put(
            names.remote,
            state
                .remote
                .as_ref()
                .map(|r| (personality.remote_value)(r, &options.pbx_host)),
        );
        put(names.display_remote, state.remote_name.clone());
        put(names.call_id, state.call_id.map(|id| id.to_string()));
        let _ = local;
        values
    }

    /// An incoming call from `number` (shown as `name`).
    pub fn ring(&self, number: &str, name: Option<&str>) -> Result<(), String> {
        {
            let mut state = self.lock();
            if state.call_state != CallState::Idle {
                return Err("the phone is busy".into());
            }
            if state.dnd {
                return Err("do-not-disturb is on: the call is refused".into());
            }
            state.call_state = CallState::Ringing;
            state.remote = Some(number.to_string());
            state.remote_name = name.map(str::to_string);
            state.call_id = Some(state.next_call_id);
            state.next_call_id += 1;
        }
        self.fire("incoming_call");
        Ok(())
    }

    /// The far end answers our outgoing call.
    pub fn remote_answer(&self) -> Result<(), String> {
        {
            let mut state = self.lock();
            if state.call_state != CallState::Dialing {
                return Err("no outgoing call to answer".into());
            }
            state.call_state = CallState::Talking;
        }
        self.fire("call_established");
        Ok(())
    }

    /// The far end hangs up (or gives up while we ring).
    pub fn remote_hangup(&self) -> Result<(), String> {
        let was = self.lock().call_state;
        match was {
            CallState::Ringing => {
                self.fire("remote_cancelled");
                self.fire("missed_call");
            }
            CallState::Talking | CallState::Held | CallState::Dialing => {
                self.fire("call_terminated")
            }
            CallState::Idle => return Err("no call".into()),
        }
        self.go_idle();
        Ok(())
    }

    /// Someone at the phone picks up the ringing call.
    pub fn local_answer(&self) -> Result<(), String> {
        self.apply(&Action::Answer);
        (self.lock().call_state == CallState::Talking)
            .then_some(())
            .ok_or_else(|| "nothing to answer".into())
    }

    /// Someone at the phone presses OK on the "Allow remote control?" prompt.
    pub fn confirm_remote_control(&self) {
        let mut state = self.lock();
        state.confirmed = true;
        state.prompt_pending = false;
    }

    fn go_idle(&self) {
        let mut state = self.lock();
        state.call_state = CallState::Idle;
        state.remote = None;
        state.remote_name = None;
        state.call_id = None;
        state.muted = false;
    }

    /// Carries out one action as the phone would, firing the events a real one fires.
    fn apply(&self, action: &Action) {
        let call_state = self.lock().call_state;
        match action {
            Action::Dial(number) => {
                if call_state != CallState::Idle {
                    return;
                }
                {
                    let mut state = self.lock();
                    state.call_state = CallState::Dialing;
                    state.remote = Some(number.clone());
                    state.remote_name = None;
                    state.call_id = Some(state.next_call_id);
                    state.next_call_id += 1;
                }
                self.fire("outgoing_call");
                if let Some(delay) = self.inner.options.remote_answers_after {
                    let phone = self.clone();
                    tokio::spawn(async move {
                        tokio::time::sleep(delay).await;
                        let _ = phone.remote_answer();
                    });
                }
            }
            Action::Answer => {
                if call_state == CallState::Ringing {
                    self.lock().call_state = CallState::Talking;
                    self.fire("call_established");
                }
            }
            Action::Hangup => match call_state {
                CallState::Talking | CallState::Held | CallState::Dialing => {
                    self.fire("call_terminated");
                    self.go_idle();
                }
                CallState::Ringing => {
                    self.fire("call_rejected");
                    self.go_idle();
                }
                CallState::Idle => {}
            },
            Action::Reject => match call_state {
                CallState::Ringing => {
                    self.fire("call_rejected");
                    self.go_idle();
                }
                CallState::Dialing => {
                    self.fire("call_cancelled");
                    self.go_idle();
                }
                _ => {}
            },
            Action::ToggleHold => match call_state {
                CallState::Talking => self.apply(&Action::Hold),
                CallState::Held => self.apply(&Action::Resume),
                _ => {}
            },
            Action::Hold => {
                if call_state == CallState::Talking {
                    self.lock().call_state = CallState::Held;
                    self.fire("hold");
                }
            }
            Action::Resume => {
                if call_state == CallState::Held {
                    self.lock().call_state = CallState::Talking;
                    self.fire("unhold");
                }
            }
            Action::Transfer(_) => {
                if matches!(call_state, CallState::Talking | CallState::Held) {
                    self.fire("blind_transfer");
                    self.fire("call_terminated");
                    self.go_idle();
                }
            }
            Action::Dnd(on) => {
                self.lock().dnd = *on;
                self.fire(if *on { "dnd_on" } else { "dnd_off" });
            }
            Action::ToggleDnd => {
                let on = !self.lock().dnd;
                self.apply(&Action::Dnd(on));
            }
            Action::VolumeUp => {
                let mut state = self.lock();
                state.volume = (state.volume + 1).min(15);
            }
            Action::VolumeDown => {
                let mut state = self.lock();
                state.volume = state.volume.saturating_sub(1);
            }
            Action::Mute => {
                if matches!(call_state, CallState::Talking | CallState::Held) {
                    let muted = {
                        let mut state = self.lock();
                        state.muted = !state.muted;
                        state.muted
                    };
                    self.fire(if muted { "mute" } else { "unmute" });
                }
            }
            Action::Key(key) => self.lock().keys.push(key.clone()),
            Action::Message(text) => self.lock().last_message = Some(text.clone()),
            Action::Reboot => {
                let phone = self.clone();
                tokio::spawn(async move {
                    // Answer the request first, then go down and come back like a real phone.
                    tokio::time::sleep(Duration::from_millis(300)).await;
                    {
                        let mut state = phone.lock();
                        state.registered = false;
                        state.confirmed = false;
                    }
                    tokio::time::sleep(Duration::from_millis(700)).await;
                    phone.boot().await;
                });
            }
            Action::Reprovision => {
                let phone = self.clone();
                tokio::spawn(async move {
                    phone.fetch_provisioning().await;
                    phone.fire("provisioned");
                });
            }
            Action::Status => {}
        }
    }

    /// Handles one Action URI request: access, parse, act, reply.
    fn handle(&self, request: Request, peer: SocketAddr) -> Reply {
        let personality = self.inner.options.personality;
        let line = format!("{} {}", request.method, request.target);
        info!(mac = %self.mac(), request = %line, "Simulated phone received a request.");
        let scheme = request
            .authorization
            .as_deref()
            .and_then(|value| value.split_whitespace().next())
            .unwrap_or("none")
            .to_string();
        {
            let mut state = self.lock();
            state.requests.push(line);
            state.authorizations.push(scheme);
        }
        let access = {
            let state = self.lock();
            (personality.check_access)(&AccessCtx {
                request: &request,
                peer,
                username: &self.inner.options.username,
                password: &self.inner.options.password,
                provisioned: &state.provisioned,
                confirmed: state.confirmed,
                digest: self.inner.options.digest,
            })
        };
        if let Err(reply) = access {
            if reply.status == 403 && reply.body.contains("prompt") {
                self.lock().prompt_pending = true;
            }
            return reply;
        }
        let actions = match (personality.parse_request)(&request) {
            Ok(actions) => actions,
            Err(reply) => return reply,
        };
        for action in &actions {
            self.apply(action);
        }
        let snapshot = self.snapshot();
        (personality.reply)(&request, &actions, &snapshot)
    }
}

fn snapshot_of(options: &SimOptions, state: &PhoneState) -> Snapshot {
    Snapshot {
        mac: state.identity.mac.to_string(),
        vendor: options.personality.vendor.id,
        model: state.identity.model.clone(),
        firmware: state.identity.firmware.clone(),
        call_state: state.call_state,
        remote: state.remote.clone(),
        remote_name: state.remote_name.clone(),
        call_id: state.call_id,
        dnd: state.dnd,
        muted: state.muted,
        volume: state.volume,
        registered: state.registered,
        line_user: options.line_user.clone(),
        last_message: state.last_message.clone(),
        keys: state.keys.clone(),
        provisioned: state.provisioned.loaded,
        settings: state.provisioned.settings.clone(),
        logo: state.provisioned.logo.clone(),
        provisioning_files: state.provisioned_files.clone(),
        prompt_pending: state.prompt_pending,
        boots: state.boots,
        requests: state.requests.clone(),
        authorizations: state.authorizations.clone(),
        fired: state.fired.clone(),
    }
}

/// Replaces each `$name` the phone knows with its value, verbatim; unknown ones stay literal,
/// as real phones leave them.
pub fn substitute(template: &str, values: &HashMap<&'static str, String>) -> String {
    let mut out = String::with_capacity(template.len() + 64);
    let mut rest = template;
    while let Some(dollar) = rest.find('$') {
        out.push_str(&rest[..dollar]);
        let after = &rest[dollar + 1..];
        let name_len = after
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
            .unwrap_or(after.len());
        let name = &after[..name_len];
        match values.get(name) {
            Some(value) => out.push_str(value),
            None => {
                out.push('$');
                out.push_str(name);
            }
        }
        rest = &after[name_len..];
    }
    out.push_str(rest);
    out
}

/// Sends the queued Action URLs in order, each as a raw request line on its own connection.
async fn fire_loop(phone: SimPhone, mut queue: mpsc::UnboundedReceiver<Fire>) {
    while let Some(fire) = queue.recv().await {
        let user_agent = {
            let state = phone.lock();
            (phone.inner.options.personality.user_agent)(&state.identity)
        };
        let status = match send_raw_get(&fire.url, &user_agent).await {
            Ok(status) => status,
            Err(err) => {
                warn!(url_event = %fire.wire, cause = %err, "Action URL could not be sent.");
                0
            }
        };
        debug!(event = %fire.wire, status, "Action URL fired.");
        phone.lock().fired.push((fire.wire, status));
        phone
            .inner
            .unanswered
            .fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
        if phone.inner.shutdown.is_cancelled() {
            return;
        }
    }
}

/// `GET` with the target written byte for byte, spaces and all, the way phones do it.
pub async fn send_raw_get(url: &str, user_agent: &str) -> std::io::Result<u16> {
    let (address, request) = raw_get(url, user_agent)?;
    let mut stream = tokio::time::timeout(Duration::from_secs(5), TcpStream::connect(&address))
        .await
        .map_err(|_| std::io::Error::other("connect timed out"))??;
    stream.write_all(request.as_bytes()).await?;
    let mut response = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut response))
        .await
        .map_err(|_| std::io::Error::other("no answer"))??;
    let text = String::from_utf8_lossy(&response);
    text.split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| std::io::Error::other("no HTTP status in the answer"))
}

/// The address to connect to and the request a phone writes for an Action URL: the target byte
/// for byte, spaces and all, one request per connection.
pub fn raw_get(url: &str, user_agent: &str) -> std::io::Result<(String, String)> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| std::io::Error::other("only http:// Action URLs are simulated"))?;
    let (authority, target) = match rest.find('/') {
        Some(slash) => (&rest[..slash], &rest[slash..]),
        None => (rest, "/"),
    };
    let address = if authority.contains(':') {
        authority.to_string()
    } else {
        format!("{authority}:80")
    };
    let request = format!(
        "GET {target} HTTP/1.1\r\nHost: {authority}\r\nUser-Agent: {user_agent}\r\nAccept: */*\r\nConnection: close\r\n\r\n"
    );
    Ok((address, request))
}

/// People calling the demo phones.
const CALLERS: &[(&str, &str)] = &[
    ("+4930123456", "Anna Schmidt"),
    ("+33 1 42 68 53 00", "Élise Martin"),
    ("+1 (415) 555-0100", "Front Desk"),
    ("1002", "Reception"),
    ("+4989987654", "Jürgen Weiß"),
    ("+442071234567", "O'Brien & Sons"),
];

/// Now and then a call comes in; usually someone answers, talks a while and hangs up.
async fn random_calls(phone: SimPhone) {
    use rand::Rng;
    let shutdown = phone.inner.shutdown.clone();
    let pause =
        |range: std::ops::Range<u64>| Duration::from_millis(rand::thread_rng().gen_range(range));
    let mut next = pause(2_000..8_000);
    loop {
        tokio::select! {
            () = tokio::time::sleep(next) => {}
            () = shutdown.cancelled() => return,
        }
        next = pause(15_000..45_000);
        let (number, name) = CALLERS[rand::thread_rng().gen_range(0..CALLERS.len())];
        if phone.ring(number, Some(name)).is_err() {
            continue;
        }
        tokio::time::sleep(pause(2_000..5_000)).await;
        if rand::thread_rng().gen_bool(0.25) {
            let _ = phone.remote_hangup();
            continue;
        }
        if phone.local_answer().is_err() {
            continue;
        }
        tokio::time::sleep(pause(4_000..12_000)).await;
        if phone.snapshot().call_state != CallState::Idle {
            phone.apply(&Action::Hangup);
        }
    }
}

#[derive(Debug, Deserialize)]
struct RingQuery {
    number: String,
    name: Option<String>,
}

/// The phone's HTTP port: the vendor's Action URI API, plus `/sim/...` to play the people
/// around it (someone calls, someone picks up, someone presses OK).
fn router(phone: SimPhone) -> Router {
    fn answer(result: Result<(), String>) -> Response {
        match result {
            Ok(()) => (StatusCode::OK, "OK\n").into_response(),
            Err(reason) => (StatusCode::CONFLICT, format!("{reason}\n")).into_response(),
        }
    }
    Router::new()
        .route(
            "/sim/state",
            get(|State(phone): State<SimPhone>| async move { Json(phone.snapshot()) }),
        )
        .route(
            "/sim/ring",
            post(
                |State(phone): State<SimPhone>, Query(q): Query<RingQuery>| async move {
                    answer(phone.ring(&q.number, q.name.as_deref()))
                },
            ),
        )
        .route(
            "/sim/answer",
            post(|State(phone): State<SimPhone>| async move { answer(phone.local_answer()) }),
        )
        .route(
            "/sim/remote_answer",
            post(|State(phone): State<SimPhone>| async move { answer(phone.remote_answer()) }),
        )
        .route(
            "/sim/remote_hangup",
            post(|State(phone): State<SimPhone>| async move { answer(phone.remote_hangup()) }),
        )
        .route(
            "/sim/key/{n}",
            post(
                |State(phone): State<SimPhone>,
                 axum::extract::Path(n): axum::extract::Path<u32>| async move {
                    answer(phone.press_key(n))
                },
            ),
        )
        .route(
            "/sim/confirm",
            post(|State(phone): State<SimPhone>| async move {
                phone.confirm_remote_control();
                answer(Ok(()))
            }),
        )
        .fallback(action_uri)
        .with_state(phone)
}

async fn action_uri(
    State(phone): State<SimPhone>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let request = Request {
        method,
        target: uri
            .path_and_query()
            .map(|pq| pq.as_str().to_string())
            .unwrap_or_default(),
        authorization: headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string),
        body: String::from_utf8_lossy(&body).into_owned(),
    };
    let reply = phone.handle(request, peer);
    let mut response = (
        StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        reply.body,
    )
        .into_response();
    for (name, value) in reply.headers {
        if let Ok(value) = header::HeaderValue::from_str(&value) {
            response.headers_mut().insert(name, value);
        }
    }
    response
}

/// The agent's address without credentials, and the provisioning server credentials it
/// carried (`http://user:pass@host:port`), as an installer gives both to a phone.
pub fn agent_and_credentials(agent_url: &str) -> (String, Option<(String, String)>) {
    let Ok(mut url) = url::Url::parse(agent_url) else {
        return (agent_url.trim_end_matches('/').to_string(), None);
    };
    let credentials = (!url.username().is_empty()).then(|| {
        (
            decode(url.username()),
            decode(url.password().unwrap_or_default()),
        )
    });
    let _ = url.set_username("");
    let _ = url.set_password(None);
    (url.as_str().trim_end_matches('/').to_string(), credentials)
}

/// Whether `url` is on the agent's host and port: only the agent gets its credentials.
fn same_origin(url: &str, agent: &str) -> bool {
    let origin = |text: &str| url::Url::parse(text).ok().map(|u| u.origin());
    origin(url).is_some_and(|o| Some(o) == origin(agent))
}

/// The `Authorization` a phone sends back for the challenges of a 401.
fn answer_challenge(
    challenges: &[String],
    url: &str,
    username: &str,
    password: &str,
) -> Option<String> {
    use base64::Engine;
    let digest = challenges
        .iter()
        .find(|c| c.trim_start().to_ascii_lowercase().starts_with("digest"));
    match digest {
        Some(challenge) => {
            let uri = url::Url::parse(url).ok().map(|u| match u.query() {
                Some(query) => format!("{}?{query}", u.path()),
                None => u.path().to_string(),
            })?;
            let mut prompt = digest_auth::parse(challenge).ok()?;
            let context = digest_auth::AuthContext::new(username, password, uri);
            prompt
                .respond(&context)
                .ok()
                .map(|answer| answer.to_string())
        }
        None => challenges
            .iter()
            .any(|c| c.trim_start().to_ascii_lowercase().starts_with("basic"))
            .then(|| {
                let pair = format!("{username}:{password}");
                format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(pair)
                )
            }),
    }
}

/// Checks a `Basic` Authorization header against the phone's account.
pub fn basic_auth_ok(authorization: Option<&str>, username: &str, password: &str) -> bool {
    crate::phone_auth::basic_auth_ok(authorization, username, password)
}

/// The nonce simulated phones put in their Digest challenges.
pub const DIGEST_NONCE: &str = "5f1d2c3b4a5968778695a4b3c2d1e0f1";

/// Checks credentials the way the phone is set up: Basic, or Digest (RFC 2617, `qop=auth`).
/// `Err` is the 401 to send, with the challenge the phone's scheme needs.
pub fn check_credentials(ctx: &AccessCtx<'_>, realm: &str) -> Result<(), Reply> {
    let authorization = ctx.request.authorization.as_deref();
    let ok = if ctx.digest {
        crate::phone_auth::digest_auth_ok(
            authorization,
            ctx.request.method.as_str(),
            ctx.username,
            ctx.password,
            realm,
            |nonce| nonce == DIGEST_NONCE,
        )
    } else {
        basic_auth_ok(authorization, ctx.username, ctx.password)
    };
    if ok {
        return Ok(());
    }
    let challenge = if ctx.digest {
        format!("Digest realm=\"{realm}\", nonce=\"{DIGEST_NONCE}\", qop=\"auth\", algorithm=MD5")
    } else {
        format!("Basic realm=\"{realm}\"")
    };
    Err(Reply::new(401, "Unauthorized").with_header("www-authenticate", challenge))
}

/// Decodes `%XX` as a phone's web server does for query values.
pub fn decode(value: &str) -> String {
    crate::agent::receiver::percent_decode(value)
}

/// Splits a query on `&` and the first `=`.
pub fn query_pairs(query: &str) -> Vec<(&str, &str)> {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| pair.split_once('=').unwrap_or((pair, "")))
        .collect()
}

/// Starts `count` simulated phones of one vendor, MACs counted up from `first_mac`.
pub async fn spawn_many(
    personality: &'static Personality,
    count: usize,
    first_mac: &PhoneId,
    agent_url: &str,
    configure: impl Fn(&mut SimOptions),
    shutdown: CancellationToken,
) -> std::io::Result<Vec<SimPhone>> {
    let base = u64::from_str_radix(first_mac.as_str(), 16).expect("a MAC is hex");
    let mut phones = Vec::with_capacity(count);
    for index in 0..count {
        let mac = PhoneId::parse(&format!("{:012x}", base + index as u64)).expect("12 hex digits");
        let mut options = SimOptions::new(personality, mac, agent_url);
        options.line_user = format!("{}", 1001 + index);
        configure(&mut options);
        phones.push(SimPhone::spawn(options, shutdown.clone()).await?);
    }
    Ok(phones)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variables_are_pasted_verbatim() {
        let values: HashMap<&'static str, String> = [
            ("mac", "00:15:65:4a:a9:37".to_string()),
            ("display_remote", "Anna Schmidt".to_string()),
            ("remote", "+4930123456".to_string()),
            ("call-id", "7".to_string()),
        ]
        .into_iter()
        .collect();
        assert_eq!(
            substitute(
                "http://a/x?mac=$mac&n=$display_remote&r=$remote&c=$call_id&g=$call-id",
                &values
            ),
            "http://a/x?mac=00:15:65:4a:a9:37&n=Anna Schmidt&r=+4930123456&c=$call_id&g=7"
        );
    }
}
