//! Starting a simulated phone: its HTTP port, its queue of Action URLs, its boot (provisioning,
//! then the boot and registration events) and, in the demo, calls now and then.

use std::net::SocketAddr;
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::callbacks::fire_loop;
use super::personality::{Action, Identity, Personality, Provisioned};
use super::phone::{Inner, PhoneState, SimOptions, SimPhone};
use super::server::router;
use crate::model::{CallState, PhoneId};

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
