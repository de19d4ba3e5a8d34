//! `<data_dir>/users.json`: the people (name, role, argon2id hash of the password) and the API
//! tokens (name, role, SHA-256 of the token) that may use the Manager, the REST API and `/ws`.
//!
//! The file is the owner's only (0600) and every change replaces it whole: a temporary file in
//! the same directory, written and flushed to disk, then renamed over the old one, so that a
//! reader (a running `serve`) never sees half a file. Changes from the command line and from a
//! running gateway are serialised by an advisory lock on `users.json.lock`. A token itself is
//! shown once, when it is created, and never kept.

use std::path::{Path, PathBuf};

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use serde::{Deserialize, Serialize};

use crate::auth::Role;

pub const USERS_FILE: &str = "users.json";
/// Shortest password accepted.
pub const MIN_PASSWORD: usize = 8;
/// Longest password accepted: hashing is costly enough without megabyte inputs.
const MAX_PASSWORD: usize = 1024;
const MAX_NAME: usize = 64;
/// What every new API token starts with, so that it is recognisable in a script or a leak scan.
pub const TOKEN_PREFIX: &str = "p2m_";

/// The file's contents.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserFile {
    #[serde(default)]
    pub users: Vec<User>,
    #[serde(default)]
    pub tokens: Vec<ApiToken>,
}

#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct User {
    pub name: String,
    pub role: Role,
    /// The password as an argon2id PHC string (`$argon2id$v=19$...`).
    pub hash: String,
}

impl std::fmt::Debug for User {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("User")
            .field("name", &self.name)
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiToken {
    pub name: String,
    pub role: Role,
    /// SHA-256 of the token, hex. A token is 190 random bits: a fast hash is enough, and it
    /// keeps checking a token on every request cheap.
    pub sha256: String,
    /// RFC 3339.
    pub created: String,
}

impl std::fmt::Debug for ApiToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiToken")
            .field("name", &self.name)
            .field("role", &self.role)
            .field("created", &self.created)
            .finish_non_exhaustive()
    }
}

/// Why a change was refused.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Weak or malformed input: a bad name, a short password.
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Exists(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{path}: {reason}")]
    Io { path: String, reason: String },
}

impl UserFile {
    pub fn user(&self, name: &str) -> Option<&User> {
        self.users.iter().find(|u| u.name == name)
    }

    /// The token whose hash is `sha256(token)`, compared without an early exit.
    pub fn token_by_secret(&self, token: &str) -> Option<&ApiToken> {
        let digest = sha256_hex(token);
        self.tokens
            .iter()
            .find(|t| constant_time_eq(t.sha256.as_bytes(), digest.as_bytes()))
    }
}

/// The user file of one data directory.
#[derive(Debug, Clone)]
pub struct Store {
    path: PathBuf,
}

impl Store {
    pub fn new(data_dir: &Path) -> Store {
        Store {
            path: data_dir.join(USERS_FILE),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn io_error(&self, err: impl std::fmt::Display) -> StoreError {
        StoreError::Io {
            path: self.path.display().to_string(),
            reason: err.to_string(),
        }
    }

    /// The file as it is now; no file is an empty one.
    pub fn load(&self) -> Result<UserFile, StoreError> {
        match std::fs::read(&self.path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|err| self.io_error(format!("not a valid user file: {err}"))),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(UserFile::default()),
            Err(err) => Err(self.io_error(err)),
        }
    }

    /// Loads, changes and writes the file under the lock.
    pub fn modify<T>(
        &self,
        change: impl FnOnce(&mut UserFile) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let dir = self.path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(|err| self.io_error(err))?;
        let lock = crate::datafile::owner_only(&self.path.with_extension("json.lock"), false)
            .map_err(|err| self.io_error(err))?;
        rustix::fs::flock(&lock, rustix::fs::FlockOperation::LockExclusive)
            .map_err(|err| self.io_error(err))?;
        let mut file = self.load()?;
        let value = change(&mut file)?;
        self.save(&file)?;
        // The lock goes with the descriptor.
        drop(lock);
        Ok(value)
    }

    /// Replaces the file: temporary file, fsync, rename, fsync of the directory.
    fn save(&self, file: &UserFile) -> Result<(), StoreError> {
        let mut text = serde_json::to_vec_pretty(file).map_err(|err| self.io_error(err))?;
        text.push(b'\n');
        crate::datafile::write_bytes(&self.path, &text).map_err(|err| StoreError::Io {
            path: err.path,
            reason: err.reason,
        })
    }

    /// Adds a user; the password is hashed here and never kept.
    pub fn add_user(&self, name: &str, role: Role, password: &str) -> Result<(), StoreError> {
        check_name(name)?;
        check_password(password)?;
        let hash = hash_password(password)?;
        self.modify(|file| {
            if file.user(name).is_some() {
                return Err(StoreError::Exists(format!(
                    "user `{name}` exists already; remove it first to change it"
                )));
            }
            file.users.push(User {
                name: name.to_string(),
                role,
                hash,
            });
            Ok(())
        })
    }

    pub fn remove_user(&self, name: &str) -> Result<(), StoreError> {
        self.modify(|file| {
            let before = file.users.len();
            file.users.retain(|u| u.name != name);
            if file.users.len() == before {
                return Err(StoreError::NotFound(format!("no user `{name}`")));
            }
            Ok(())
        })
    }

    /// Creates a token and returns it: the only time it is seen.
    pub fn create_token(&self, name: &str, role: Role) -> Result<String, StoreError> {
        check_name(name)?;
        let token = new_token();
        let sha256 = sha256_hex(&token);
        self.modify(|file| {
            if file.tokens.iter().any(|t| t.name == name) {
                return Err(StoreError::Exists(format!(
                    "token `{name}` exists already; revoke it first to replace it"
                )));
            }
            file.tokens.push(ApiToken {
                name: name.to_string(),
                role,
                sha256,
                created: crate::model::now_rfc3339(),
            });
            Ok(())
        })?;
        Ok(token)
    }

    pub fn revoke_token(&self, name: &str) -> Result<(), StoreError> {
        self.modify(|file| {
            let before = file.tokens.len();
            file.tokens.retain(|t| t.name != name);
            if file.tokens.len() == before {
                return Err(StoreError::NotFound(format!("no token `{name}`")));
            }
            Ok(())
        })
    }
}

/// Names are shown in logs and the Manager and used as MQTT user names: printable, trimmed,
/// at most 64 characters.
pub fn check_name(name: &str) -> Result<(), StoreError> {
    if name.is_empty() {
        return Err(StoreError::Invalid("the name is empty".into()));
    }
    if name.chars().count() > MAX_NAME {
        return Err(StoreError::Invalid(format!(
            "the name is longer than {MAX_NAME} characters"
        )));
    }
    if name.chars().any(char::is_control) {
        return Err(StoreError::Invalid(
            "the name holds control characters".into(),
        ));
    }
    if name.trim() != name {
        return Err(StoreError::Invalid(
            "the name starts or ends with a space".into(),
        ));
    }
    Ok(())
}

pub fn check_password(password: &str) -> Result<(), StoreError> {
    let length = password.chars().count();
    if length < MIN_PASSWORD {
        return Err(StoreError::Invalid(format!(
            "the password is shorter than {MIN_PASSWORD} characters"
        )));
    }
    if password.len() > MAX_PASSWORD {
        return Err(StoreError::Invalid(format!(
            "the password is longer than {MAX_PASSWORD} bytes"
        )));
    }
    if password.contains(['\n', '\r', '\0']) {
        return Err(StoreError::Invalid(
            "the password holds a line break or a NUL".into(),
        ));
    }
    Ok(())
}

/// argon2id with the crate's defaults (19 MiB, 2 passes), a random salt; the PHC string.
pub fn hash_password(password: &str) -> Result<String, StoreError> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|err| StoreError::Invalid(format!("cannot hash the password: {err}")))
}

/// Whether `password` matches a PHC string; a malformed string matches nothing.
pub fn verify_password(password: &str, phc: &str) -> bool {
    PasswordHash::new(phc).is_ok_and(|hash| {
        Argon2::default()
            .verify_password(password.as_bytes(), &hash)
            .is_ok()
    })
}

/// `p2m_` and 32 random letters and digits (about 190 bits).
pub fn new_token() -> String {
    format!("{TOKEN_PREFIX}{}", crate::gateway::new_token())
}

pub use crate::hash::{constant_time_eq, sha256_hex};

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "phone2mqtt-auth-{tag}-{}-{}",
            std::process::id(),
            crate::gateway::new_token()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn users_and_tokens_are_kept_hashed_and_private() {
        let dir = temp_dir("store");
        let store = Store::new(&dir);
        store
            .add_user("anna", Role::Admin, "correct horse battery")
            .unwrap();
        assert!(matches!(
            store.add_user("anna", Role::Viewer, "another password"),
            Err(StoreError::Exists(_))
        ));
        let token = store.create_token("ha", Role::Operator).unwrap();
        assert!(token.starts_with(TOKEN_PREFIX) && token.len() == 36);
        let text = std::fs::read_to_string(store.path()).unwrap();
        assert!(!text.contains("correct horse battery") && !text.contains(&token));
        assert!(text.contains("$argon2id$"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(store.path())
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let file = store.load().unwrap();
        assert!(verify_password(
            "correct horse battery",
            &file.user("anna").unwrap().hash
        ));
        assert!(!verify_password("wrong", &file.user("anna").unwrap().hash));
        assert_eq!(file.token_by_secret(&token).unwrap().name, "ha");
        assert!(file.token_by_secret("p2m_nope").is_none());
        store.revoke_token("ha").unwrap();
        assert!(store.load().unwrap().token_by_secret(&token).is_none());
        assert!(matches!(
            store.revoke_token("ha"),
            Err(StoreError::NotFound(_))
        ));
        store.remove_user("anna").unwrap();
        assert!(store.load().unwrap().users.is_empty());
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn weak_input_is_refused() {
        for name in ["", " anna", "an\nna", "a\u{7f}", &"x".repeat(65)] {
            assert!(check_name(name).is_err(), "{name:?}");
        }
        assert!(check_name("Anna Schmidt").is_ok());
        for password in ["", "short", "1234567", "line\nbreak pw"] {
            assert!(check_password(password).is_err(), "{password:?}");
        }
        assert!(check_password("12345678").is_ok());
    }
}
