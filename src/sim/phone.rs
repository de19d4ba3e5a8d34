//! A running simulated phone: its options, its state, how it is started and how it boots.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::personality::{Identity, Personality, Provisioned, Snapshot};
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

/// An Action URL to fire: the vendor's event name and the variables at the time it happened.
#[derive(Debug)]
pub(super) struct Fire {
    pub(super) wire: String,
    pub(super) url: String,
}

impl SimPhone {
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
