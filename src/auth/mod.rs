//! Who may use the Manager, the REST API and `/ws`, and what each may do.
//!
//! People log in with a name and password (kept as argon2id hashes in `<data_dir>/users.json`,
//! see [`store`]) and get a session cookie; scripts send `Authorization: Bearer <token>` with an
//! API token. Each has a [`Role`]: `viewer` sees, `operator` sends phone commands, `admin` also
//! adopts, configures, provisions, uploads logos, imports the directory and manages users.
//! Every start makes a one-time login secret, printed (never logged) as a link that opens the
//! Manager as an admin, so that a new install needs no user to begin with.
//!
//! The routes phones call (Action URLs, provisioning files, logos) are not people's routes and
//! are not guarded here.

pub mod cli;
pub mod http;
pub mod store;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime};

use serde::{Deserialize, Serialize};
use tracing::warn;

use crate::config::Secret;
use crate::model::{Access, CommandKind};
use crate::topics::Topic;
use store::{Store, UserFile};

/// What a user or token may do; each role includes the ones before it.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Sees the fleet, its events and results.
    Viewer,
    /// Also sends phone commands (dial, answer, DND, reboot...).
    Operator,
    /// Also adopts, configures, provisions, uploads logos, imports the directory, manages users.
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Role {
    type Err = String;

    fn from_str(text: &str) -> Result<Role, String> {
        match text.to_ascii_lowercase().as_str() {
            "viewer" => Ok(Role::Viewer),
            "operator" => Ok(Role::Operator),
            "admin" => Ok(Role::Admin),
            _ => Err(format!(
                "unknown role `{text}`; roles: viewer, operator, admin"
            )),
        }
    }
}

/// The role a phone or group command needs. What changes a phone's configuration or hands it
/// credentials is the admin's; an unknown name is too, so that a command added later is never
/// open by accident.
pub fn command_role(command: &str) -> Role {
    match CommandKind::from_name(command).map(CommandKind::access) {
        Some(Access::Operator) => Role::Operator,
        Some(Access::Admin) | None => Role::Admin,
    }
}

/// The role publishing on `topic` needs; `None` for topics nobody may publish from the web.
pub fn publish_role(topic: &Topic<'_>) -> Option<Role> {
    match topic {
        Topic::Command { command, .. } | Topic::GroupCommand { command, .. } => {
            Some(command_role(command))
        }
        Topic::DirectorySet => Some(Role::Admin),
        Topic::RemindersCancel(_) => Some(Role::Operator),
        _ => None,
    }
}

/// Who made a request.
#[derive(Clone)]
pub struct Principal {
    /// The user's or token's name; `login link` for the one-time link's session.
    pub name: String,
    pub role: Role,
    pub via: Via,
}

impl std::fmt::Debug for Principal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Principal")
            .field("name", &self.name)
            .field("role", &self.role)
            .field("via", &self.via.kind())
            .finish()
    }
}

/// How a request authenticated.
#[derive(Clone)]
pub enum Via {
    /// `Authorization: Bearer`; the token's hash, to check it is still valid later.
    Token(String),
    /// The session cookie; the session id.
    Session(Secret),
}

impl Via {
    pub fn kind(&self) -> &'static str {
        match self {
            Via::Token(_) => "token",
            Via::Session(_) => "session",
        }
    }
}

/// The name the one-time link's sessions go by.
pub const LINK_USER: &str = "login link";

/// Sessions kept at most; the least recently used goes first.
const MAX_SESSIONS: usize = 1000;
/// A session unused this long is gone.
const SESSION_IDLE: Duration = Duration::from_secs(12 * 3600);
/// And none lives longer than this.
const SESSION_MAX: Duration = Duration::from_secs(7 * 24 * 3600);
/// Failed logins per source address per window before it is refused.
pub const MAX_FAILED_LOGINS: u32 = 10;
const FAILED_LOGIN_WINDOW: Duration = Duration::from_secs(60);
/// Source addresses whose failures are remembered at most.
const MAX_TRACKED_ADDRESSES: usize = 10_000;
/// Successful MQTT password checks remembered (argon2 is slow on purpose; a client that
/// reconnects every few seconds should not cost 20 ms of CPU each time).
const MAX_VERIFIED: usize = 1000;

struct Session {
    /// `None`: the one-time link's admin session; `Some`: a user of the file, whose current
    /// role is looked up on every request (removing the user ends the session).
    user: Option<String>,
    role: Role,
    created: Instant,
    last: Instant,
}

#[derive(Default)]
struct Cached {
    /// (modified, length, inode) of the file when it was read.
    stamp: Option<(SystemTime, u64, u64)>,
    file: Arc<UserFile>,
}

struct Failures {
    started: Instant,
    count: u32,
}

/// Authentication state of one gateway: the user file (re-read when it changes on disk, so that
/// `phone2mqtt user`/`token` act on a running gateway), sessions, the one-time secret and the
/// failed-login counters.
#[derive(Clone)]
pub struct Auth {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    cached: RwLock<Cached>,
    sessions: Mutex<HashMap<String, Session>>,
    login_secret: Mutex<Option<Secret>>,
    failures: Mutex<HashMap<IpAddr, Failures>>,
    failed_logins: AtomicU64,
    verified: Mutex<HashMap<String, String>>,
    /// Set once the HTTP listener is bound (its port is part of every allowed name); until
    /// then no name is allowed.
    allowed: RwLock<Option<http::Allowed>>,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth")
            .field("file", &self.inner.store.path())
            .finish_non_exhaustive()
    }
}

impl Auth {
    /// Opens the user file of `data_dir` (it need not exist yet) and makes this start's
    /// one-time login secret. The names browsers may use come later, from [`Auth::allow`]:
    /// the user file is needed before the HTTP listener exists (the embedded broker checks
    /// MQTT credentials against it).
    pub fn open(data_dir: &Path) -> anyhow::Result<Auth> {
        std::fs::create_dir_all(data_dir).map_err(|err| {
            anyhow::anyhow!(
                "agent.data_dir: cannot create {}: {err}",
                data_dir.display()
            )
        })?;
        let store = Store::new(data_dir);
        tighten_permissions(store.path());
        store.load()?;
        let auth = Auth {
            inner: Arc::new(Inner {
                store,
                cached: RwLock::default(),
                sessions: Mutex::default(),
                login_secret: Mutex::new(Some(Secret::new(crate::config::new_token()))),
                failures: Mutex::default(),
                failed_logins: AtomicU64::new(0),
                verified: Mutex::default(),
                allowed: RwLock::new(None),
            }),
        };
        auth.file();
        Ok(auth)
    }

    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// Sets the names (`Host`, `Origin`) browsers may reach the gateway by.
    pub fn allow(&self, allowed: http::Allowed) {
        *self
            .inner
            .allowed
            .write()
            .unwrap_or_else(|p| p.into_inner()) = Some(allowed);
    }

    /// Changes the allowed names (another listener's port, say).
    pub fn update_allowed(&self, change: impl FnOnce(&mut http::Allowed)) {
        let mut allowed = self
            .inner
            .allowed
            .write()
            .unwrap_or_else(|p| p.into_inner());
        if let Some(allowed) = allowed.as_mut() {
            change(allowed);
        }
    }

    /// Whether a `Host` header names this gateway.
    pub fn host_ok(&self, host: &str, tls: bool) -> bool {
        let allowed = self.inner.allowed.read().unwrap_or_else(|p| p.into_inner());
        allowed.as_ref().is_some_and(|a| a.host_ok(host, tls))
    }

    /// Whether an `Origin` header is this gateway's own.
    pub fn origin_ok(&self, origin: &str, host: Option<&str>, tls: bool) -> bool {
        let allowed = self.inner.allowed.read().unwrap_or_else(|p| p.into_inner());
        allowed
            .as_ref()
            .is_some_and(|a| a.origin_ok(origin, host, tls))
    }

    /// The user file as it is on disk now: a `stat` per call, a read only when it changed.
    pub fn file(&self) -> Arc<UserFile> {
        let stamp = std::fs::metadata(self.inner.store.path()).ok().map(|m| {
            #[cfg(unix)]
            let inode = std::os::unix::fs::MetadataExt::ino(&m);
            #[cfg(not(unix))]
            let inode = 0;
            (
                m.modified().unwrap_or(SystemTime::UNIX_EPOCH),
                m.len(),
                inode,
            )
        });
        {
            let cached = self.inner.cached.read().unwrap_or_else(|p| p.into_inner());
            // No file (`None`) is the empty file the cache starts with.
            if cached.stamp == stamp {
                return cached.file.clone();
            }
        }
        let file = match self.inner.store.load() {
            Ok(file) => file,
            Err(err) => {
                // Nobody gets in on a file that cannot be read: failing open would undo a revoke.
                warn!(cause = %err, "The user file cannot be read; only the login link works until it is fixed.");
                UserFile::default()
            }
        };
        let file = Arc::new(file);
        let mut cached = self.inner.cached.write().unwrap_or_else(|p| p.into_inner());
        *cached = Cached {
            stamp,
            file: file.clone(),
        };
        file
    }

    /// Whether the user file holds no user yet (the Manager then offers to create the first).
    pub fn no_users(&self) -> bool {
        self.file().users.is_empty()
    }

    /// The API token's principal, if it is a current token.
    pub fn token(&self, token: &str) -> Option<Principal> {
        let file = self.file();
        let found = file.token_by_secret(token)?;
        Some(Principal {
            name: found.name.clone(),
            role: found.role,
            via: Via::Token(found.sha256.clone()),
        })
    }

    /// Checks a name and password (slow on purpose: call it off the async threads). An unknown
    /// name costs the same as a wrong password, so that timing tells no names.
    pub fn verify_user(&self, name: &str, password: &str) -> Option<Role> {
        let file = self.file();
        match file.user(name) {
            Some(user) => store::verify_password(password, &user.hash).then_some(user.role),
            None => {
                let _ = store::verify_password(password, dummy_hash());
                None
            }
        }
    }

    /// A new session for a user (`Some(name)`) or for the one-time link (`None`); its id.
    pub fn new_session(&self, user: Option<&str>, role: Role) -> Secret {
        let id = crate::config::new_token() + &crate::config::new_token();
        let now = Instant::now();
        let mut sessions = self
            .inner
            .sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        sessions.retain(|_, s| live(s, now));
        while sessions.len() >= MAX_SESSIONS {
            let Some(oldest) = sessions
                .iter()
                .min_by_key(|(_, s)| s.last)
                .map(|(id, _)| id.clone())
            else {
                break;
            };
            sessions.remove(&oldest);
        }
        sessions.insert(
            id.clone(),
            Session {
                user: user.map(str::to_string),
                role,
                created: now,
                last: now,
            },
        );
        Secret::new(id)
    }

    /// The session's principal if it is live; touching it keeps it so.
    pub fn session(&self, id: &str) -> Option<Principal> {
        let now = Instant::now();
        let (user, role) = {
            let mut sessions = self
                .inner
                .sessions
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            let session = sessions.get_mut(id)?;
            if !live(session, now) {
                sessions.remove(id);
                return None;
            }
            session.last = now;
            (session.user.clone(), session.role)
        };
        let (name, role) = match user {
            None => (LINK_USER.to_string(), role),
            Some(name) => {
                let Some(role) = self.file().user(&name).map(|u| u.role) else {
                    self.logout(id);
                    return None;
                };
                (name, role)
            }
        };
        Some(Principal {
            name,
            role,
            via: Via::Session(Secret::new(id)),
        })
    }

    pub fn logout(&self, id: &str) {
        self.inner
            .sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id);
    }

    /// Whether a principal's credential still holds, and its role now (a long-lived websocket
    /// checks this before each command: a revoked token or ended session sends no more).
    pub fn revalidate(&self, principal: &Principal) -> Option<Role> {
        match &principal.via {
            Via::Token(sha256) => self
                .file()
                .tokens
                .iter()
                .find(|t| t.sha256 == *sha256)
                .map(|t| t.role),
            Via::Session(id) => self.session(id.expose()).map(|p| p.role),
        }
    }

    /// The one-time login secret, while it is unused.
    pub fn login_secret(&self) -> Option<Secret> {
        self.inner
            .login_secret
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Uses up the one-time secret if `candidate` is it.
    pub fn take_login_secret(&self, candidate: &str) -> bool {
        let mut secret = self
            .inner
            .login_secret
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let matches = secret
            .as_ref()
            .is_some_and(|s| store::constant_time_eq(s.expose().as_bytes(), candidate.as_bytes()));
        if matches {
            *secret = None;
        }
        matches
    }

    /// Whether `ip` may try to log in now (fewer than [`MAX_FAILED_LOGINS`] failures in the
    /// last minute).
    pub fn login_allowed(&self, ip: IpAddr) -> bool {
        let failures = self
            .inner
            .failures
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        failures.get(&ip).is_none_or(|f| {
            f.started.elapsed() >= FAILED_LOGIN_WINDOW || f.count < MAX_FAILED_LOGINS
        })
    }

    /// Counts a failed login from `ip`; returns the failures in its current window.
    pub fn login_failed(&self, ip: IpAddr) -> u32 {
        self.inner.failed_logins.fetch_add(1, Ordering::Relaxed);
        let mut failures = self
            .inner
            .failures
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        if failures.len() >= MAX_TRACKED_ADDRESSES {
            failures.retain(|_, f| now.duration_since(f.started) < FAILED_LOGIN_WINDOW);
        }
        let entry = failures.entry(ip).or_insert(Failures {
            started: now,
            count: 0,
        });
        if now.duration_since(entry.started) >= FAILED_LOGIN_WINDOW {
            *entry = Failures {
                started: now,
                count: 0,
            };
        }
        entry.count += 1;
        entry.count
    }

    /// Failed logins since start, every address together.
    pub fn failed_logins(&self) -> u64 {
        self.inner.failed_logins.load(Ordering::Relaxed)
    }

    /// MQTT credentials for the embedded broker: an operator or admin user with its password, or
    /// an operator or admin API token with its name as the user name and the token as the
    /// password. Viewers are refused: the embedded broker has no topic ACLs, so it could not
    /// keep them read-only.
    pub fn check_mqtt(&self, username: &str, password: &str) -> bool {
        let file = self.file();
        if let Some(token) = file.token_by_secret(password) {
            if token.name == username {
                return token.role >= Role::Operator;
            }
        }
        let Some(user) = file.user(username) else {
            let _ = store::verify_password(password, dummy_hash());
            return false;
        };
        if user.role < Role::Operator {
            return false;
        }
        let key = store::sha256_hex(format!("{username}\0{password}"));
        {
            let verified = self
                .inner
                .verified
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            if verified.get(&key).is_some_and(|hash| *hash == user.hash) {
                return true;
            }
        }
        if !store::verify_password(password, &user.hash) {
            return false;
        }
        let mut verified = self
            .inner
            .verified
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if verified.len() >= MAX_VERIFIED {
            verified.clear();
        }
        verified.insert(key, user.hash.clone());
        true
    }

    /// The one-time link that opens the Manager at `base` (`http://127.0.0.1:8080`).
    pub fn login_link(&self, base: &str) -> Option<String> {
        self.login_secret()
            .map(|secret| format!("{}/?token={}", base.trim_end_matches('/'), secret.expose()))
    }
}

fn live(session: &Session, now: Instant) -> bool {
    now.duration_since(session.last) < SESSION_IDLE
        && now.duration_since(session.created) < SESSION_MAX
}

/// A hash no password matches, verified against for unknown names so that they take as long.
fn dummy_hash() -> &'static str {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| {
        store::hash_password(&crate::config::new_token()).unwrap_or_else(|_| String::new())
    })
}

/// A user file others can read is made the owner's only, with a warning.
fn tighten_permissions(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let Ok(metadata) = std::fs::metadata(path) else {
            return;
        };
        if metadata.permissions().mode() & 0o077 != 0 {
            warn!(file = %path.display(), "The user file was readable by others; made it the owner's only (0600).");
            let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
        }
    }
}

/// The address a request came from, as logged.
pub fn peer_text(peer: Option<SocketAddr>) -> String {
    peer.map_or_else(|| "unknown".into(), |p| p.ip().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_are_ordered_and_commands_need_theirs() {
        assert!(Role::Viewer < Role::Operator && Role::Operator < Role::Admin);
        assert_eq!(
            serde_json::to_string(&Role::Operator).unwrap(),
            "\"operator\""
        );
        for command in ["dial", "dnd", "reboot", "verify", "message", "volume_up"] {
            assert_eq!(command_role(command), Role::Operator, "{command}");
        }
        for command in ["adopt", "configure", "logo", "provision", "something_new"] {
            assert_eq!(command_role(command), Role::Admin, "{command}");
        }
        assert_eq!(publish_role(&Topic::DirectorySet), Some(Role::Admin));
        assert_eq!(
            publish_role(&Topic::RemindersCancel("a")),
            Some(Role::Operator)
        );
        assert_eq!(publish_role(&Topic::State("x")), None);
    }

    #[test]
    fn mqtt_credentials_are_operators_and_admins_only() {
        let dir = std::env::temp_dir().join(format!(
            "phone2mqtt-auth-mqtt-{}-{}",
            std::process::id(),
            crate::config::new_token()
        ));
        let auth = Auth::open(&dir).unwrap();
        let store = auth.store();
        store
            .add_user("ops", Role::Operator, "operator pw")
            .unwrap();
        store.add_user("eve", Role::Viewer, "viewer pw!").unwrap();
        let token = store.create_token("ha", Role::Operator).unwrap();
        let viewer_token = store.create_token("dash", Role::Viewer).unwrap();
        assert!(auth.check_mqtt("ops", "operator pw"));
        // Remembered: the second check does not hash again, and still refuses a wrong one.
        assert!(auth.check_mqtt("ops", "operator pw"));
        assert!(!auth.check_mqtt("ops", "operator pW"));
        assert!(!auth.check_mqtt("eve", "viewer pw!"));
        assert!(auth.check_mqtt("ha", &token));
        assert!(!auth.check_mqtt("someone", &token));
        assert!(!auth.check_mqtt("dash", &viewer_token));
        assert!(!auth.check_mqtt("nobody", "whatever1"));
        store.revoke_token("ha").unwrap();
        assert!(!auth.check_mqtt("ha", &token));
        std::fs::remove_dir_all(dir).unwrap();
    }
}
