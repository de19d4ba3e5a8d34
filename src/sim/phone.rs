//! A running simulated phone: its options, its state, how it is started and how it boots.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::callbacks::{fire_loop, Fire};
use super::personality::{Action, Identity, Personality, Provisioned, Snapshot};
use super::server::router;
use crate::model::{CallState, PhoneId};

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

/// What a phone is doing and what it was told and asked.
#[derive(Debug)]
pub(super) struct PhoneState {
    pub(super) identity: Identity,
    pub(super) call_state: CallState,
    pub(super) remote: Option<String>,
    pub(super) remote_name: Option<String>,
    pub(super) call_id: Option<u32>,
    pub(super) next_call_id: u32,
    pub(super) dnd: bool,
    pub(super) muted: bool,
    pub(super) volume: u8,
    pub(super) registered: bool,
    pub(super) last_message: Option<String>,
    pub(super) keys: Vec<String>,
    pub(super) provisioned: Provisioned,
    pub(super) confirmed: bool,
    pub(super) prompt_pending: bool,
    pub(super) boots: u32,
    pub(super) requests: Vec<String>,
    pub(super) authorizations: Vec<String>,
    pub(super) fired: Vec<(String, u16)>,
    pub(super) provisioned_files: Vec<String>,
}

/// A running simulated phone.
#[derive(Debug, Clone)]
pub struct SimPhone {
    pub(super) inner: Arc<Inner>,
}

#[derive(Debug)]
pub(super) struct Inner {
    pub(super) options: SimOptions,
    pub(super) addr: SocketAddr,
    pub(super) state: Mutex<PhoneState>,
    pub(super) fire_tx: mpsc::UnboundedSender<Fire>,
    /// Action URLs queued and not yet answered by the agent.
    pub(super) unanswered: AtomicUsize,
    pub(super) http: reqwest::Client,
    pub(super) shutdown: CancellationToken,
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
                unanswered: AtomicUsize::new(0),
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

    pub(super) fn lock(&self) -> std::sync::MutexGuard<'_, PhoneState> {
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
            let answered = self.inner.unanswered.load(Ordering::SeqCst) == 0;
            if self.snapshot().registered && answered {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        false
    }

    /// Powers up: fetch provisioning like a real phone, then report boot and registration.
    pub(super) async fn boot(&self) {
        self.fetch_provisioning().await;
        self.lock().boots += 1;
        self.go_idle();
        self.fire("setup_completed");
        self.lock().registered = true;
        self.fire("registered");
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
