//! How phones prove who they are.
//!
//! - Action URL tokens: each phone's own, derived from a secret key kept in the data directory
//!   (`phone_key`) and its MAC, so nothing is stored per phone and one phone's provisioning file
//!   lets nobody forge another phone's events. The installation-wide token of earlier versions
//!   (`[http] action_token`, `data/action_token`) was in every file ever served and so counts as
//!   public: it is accepted only for a grace period, counted from the first start of a version
//!   with per-phone tokens.
//! - Provisioning server credentials (`[provisioning] auth_username`/`auth_password`), HTTP
//!   Basic or Digest, whichever the phone answers the challenge with.

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use anyhow::{bail, Context};
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use time::OffsetDateTime;
use tracing::info;

use crate::config::Secret;
use crate::hash::{constant_time_eq, md5_hex};
use crate::model::PhoneId;

/// The secret the phones' tokens are derived from; never served, never logged.
pub const KEY_FILE: &str = "phone_key";
/// Where earlier versions kept the installation-wide token they generated.
pub const LEGACY_TOKEN_FILE: &str = "action_token";
/// When this installation first ran with per-phone tokens while it had a legacy token.
pub const LEGACY_SINCE_FILE: &str = "legacy_token_since";
pub use crate::config::DEFAULT_GRACE_DAYS;

/// Bytes of HMAC kept in a token: 128 bits, 22 characters of URL-safe base64.
const TOKEN_BYTES: usize = 16;

type HmacSha256 = Hmac<Sha256>;

/// The phones' Action URL tokens, and the legacy token while its grace period lasts.
#[derive(Debug)]
pub struct PhoneKeys {
    key: Secret,
    legacy: Option<Legacy>,
    /// Phones already told about in this run to be re-provisioned: one log line each.
    warned: Mutex<HashSet<PhoneId>>,
}

#[derive(Debug)]
struct Legacy {
    token: Secret,
    until: OffsetDateTime,
}

/// What a token presented with a callback is worth.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The phone's own token.
    Phone,
    /// The legacy token within its grace period; `first`: the first time for this phone in
    /// this run (time for the log line that says to re-provision it).
    Legacy { first: bool },
    /// The legacy token after its grace period.
    LegacyExpired,
    /// Anything else, including another phone's token.
    Wrong,
}

impl PhoneKeys {
    /// The key kept in `data_dir`, created on first use; no legacy token (`provision`).
    pub fn load(data_dir: &Path) -> anyhow::Result<PhoneKeys> {
        Ok(PhoneKeys {
            key: load_or_create_key(data_dir)?,
            legacy: None,
            warned: Mutex::new(HashSet::new()),
        })
    }

    /// The key, and the legacy token if this installation has one: configured, or kept by an
    /// earlier version in the data directory. New installations have none.
    pub fn load_with_legacy(
        data_dir: &Path,
        configured: Option<&Secret>,
        grace_days: u32,
    ) -> anyhow::Result<PhoneKeys> {
        let mut keys = PhoneKeys::load(data_dir)?;
        let kept = data_dir.join(LEGACY_TOKEN_FILE);
        let token = match configured {
            Some(token) => Some(token.clone()),
            None => std::fs::read_to_string(&kept)
                .ok()
                .map(|text| text.trim().to_string())
                .filter(|token| !token.is_empty())
                .map(Secret::new),
        };
        if let Some(token) = token {
            let since = legacy_since(data_dir)?;
            keys.legacy = Some(Legacy {
                token,
                // Checked: a date past the calendar's end would panic.
                until: since
                    .checked_add(time::Duration::days(i64::from(grace_days)))
                    .unwrap_or(since),
            });
        }
        Ok(keys)
    }

    /// Phone `id`'s Action URL token: HMAC-SHA256 of its MAC under the key, truncated to 128
    /// bits, URL-safe base64.
    pub fn token(&self, id: &PhoneId) -> String {
        let mut mac = HmacSha256::new_from_slice(self.key.expose().as_bytes())
            .expect("HMAC takes a key of any length");
        mac.update(b"phone2mqtt action url\0");
        mac.update(id.as_str().as_bytes());
        let tag = mac.finalize().into_bytes();
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&tag[..TOKEN_BYTES])
    }

    /// Judges the token a callback for phone `id` came with.
    pub fn check(&self, id: &PhoneId, presented: &str) -> Verdict {
        if constant_time_eq(presented.as_bytes(), self.token(id).as_bytes()) {
            return Verdict::Phone;
        }
        match &self.legacy {
            Some(legacy)
                if constant_time_eq(presented.as_bytes(), legacy.token.expose().as_bytes()) =>
            {
                if OffsetDateTime::now_utc() < legacy.until {
                    let first = self
                        .warned
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .insert(id.clone());
                    Verdict::Legacy { first }
                } else {
                    Verdict::LegacyExpired
                }
            }
            _ => Verdict::Wrong,
        }
    }

    /// When the legacy token stops being accepted; `None` without one.
    pub fn legacy_until(&self) -> Option<OffsetDateTime> {
        self.legacy.as_ref().map(|legacy| legacy.until)
    }

    /// Every token this phone's values could show, for hiding them where values are published.
    pub fn hide_tokens(&self, id: &PhoneId, text: &str) -> String {
        let mut text = text.replace(&self.token(id), "***");
        if let Some(legacy) = &self.legacy {
            text = text.replace(legacy.token.expose(), "***");
        }
        text
    }

    /// A key for tags only this process makes (Digest nonces): derived, so it never equals a
    /// phone's token.
    fn nonce_key(&self) -> Vec<u8> {
        let mut mac = HmacSha256::new_from_slice(self.key.expose().as_bytes())
            .expect("HMAC takes a key of any length");
        mac.update(b"phone2mqtt digest nonce\0");
        mac.finalize().into_bytes().to_vec()
    }
}

/// The day the legacy token's grace period started: kept in the data directory, written on the
/// first start that finds a legacy token.
fn legacy_since(data_dir: &Path) -> anyhow::Result<OffsetDateTime> {
    let path = data_dir.join(LEGACY_SINCE_FILE);
    let format = time::format_description::well_known::Rfc3339;
    if let Ok(text) = std::fs::read_to_string(&path) {
        return OffsetDateTime::parse(text.trim(), &format).with_context(|| {
            format!(
                "{}: not a date; delete the file to start the legacy token's grace period again",
                path.display()
            )
        });
    }
    let now = OffsetDateTime::now_utc();
    let text = now.format(&format).context("formatting the current time")?;
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("agent.data_dir: cannot create {}", data_dir.display()))?;
    std::fs::write(&path, format!("{text}\n"))
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(now)
}

fn load_or_create_key(data_dir: &Path) -> anyhow::Result<Secret> {
    let path = data_dir.join(KEY_FILE);
    if let Ok(text) = std::fs::read_to_string(&path) {
        let key = text.trim();
        if key.len() >= 32 && key.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Ok(Secret::new(key));
        }
        bail!(
            "{}: not a key phone2mqtt wrote; deleting it makes a new one, and every phone must then be provisioned again",
            path.display()
        );
    }
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("agent.data_dir: cannot create {}", data_dir.display()))?;
    let key: String = (0..32)
        .map(|_| format!("{:02x}", rand::random::<u8>()))
        .collect();
    write_private(&path, &key)?;
    info!(file = %path.display(), "Generated the key the phones' Action URL tokens are derived from.");
    Ok(Secret::new(key))
}

/// Creates a file only its owner can read (0600 on Unix).
pub fn write_private(path: &PathBuf, text: &str) -> anyhow::Result<()> {
    // Whole or not at all, and never over a file another process made meanwhile: a temporary
    // file flushed to disk, then linked under the final name (which fails if that exists), then
    // the directory flushed. A crash leaves no empty key behind.
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(format!(".tmp{}", std::process::id()));
    let temporary = PathBuf::from(temporary);
    let written = (|| -> std::io::Result<()> {
        let mut file = crate::datafile::owner_only(&temporary, true)?;
        writeln!(file, "{text}")?;
        file.sync_all()?;
        std::fs::hard_link(&temporary, path)
    })();
    let _ = std::fs::remove_file(&temporary);
    written.with_context(|| format!("cannot create {}", path.display()))?;
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => std::path::Path::new("."),
    };
    crate::datafile::sync_dir(dir).with_context(|| format!("cannot flush {}", dir.display()))?;
    Ok(())
}

/// The realm of the provisioning server's challenge.
pub const REALM: &str = "phone2mqtt provisioning";
/// How long a Digest nonce is good for; a phone fetching several files in a row reuses it.
const NONCE_SECONDS: i64 = 300;

/// `[provisioning] auth_username`/`auth_password`, checked on every provisioning file.
#[derive(Debug)]
pub struct ProvisioningAuth {
    username: String,
    password: Secret,
    nonce_key: Vec<u8>,
}

impl ProvisioningAuth {
    pub fn new(username: &str, password: &Secret, keys: &PhoneKeys) -> ProvisioningAuth {
        ProvisioningAuth {
            username: username.to_string(),
            password: password.clone(),
            nonce_key: keys.nonce_key(),
        }
    }

    /// Whether an `Authorization` header carries the credentials, as Basic or as Digest for
    /// this request (`method`, `uri` as sent).
    pub fn accepts(&self, authorization: Option<&str>, method: &str, uri: &str) -> bool {
        basic_auth_ok(authorization, &self.username, self.password.expose())
            || digest_auth_ok(
                authorization,
                method,
                &self.username,
                self.password.expose(),
                REALM,
                |nonce| self.nonce_fresh(nonce),
            ) && digest_uri(authorization).is_some_and(|claimed| claimed == uri)
    }

    /// The challenges of a 401: Digest first (phones take the first they support), then Basic.
    pub fn challenges(&self) -> [String; 2] {
        [
            format!(
                "Digest realm=\"{REALM}\", nonce=\"{}\", qop=\"auth\", algorithm=MD5",
                self.nonce()
            ),
            format!("Basic realm=\"{REALM}\""),
        ]
    }

    /// `<unix seconds, hex>.<HMAC of them>`: checked without keeping any state.
    fn nonce(&self) -> String {
        let now = OffsetDateTime::now_utc().unix_timestamp();
        let stamp = format!("{now:x}");
        format!("{stamp}.{}", self.nonce_tag(&stamp))
    }

    fn nonce_tag(&self, stamp: &str) -> String {
        let mut mac =
            HmacSha256::new_from_slice(&self.nonce_key).expect("HMAC takes a key of any length");
        mac.update(stamp.as_bytes());
        let tag = mac.finalize().into_bytes();
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&tag[..TOKEN_BYTES])
    }

    fn nonce_fresh(&self, nonce: &str) -> bool {
        let Some((stamp, tag)) = nonce.split_once('.') else {
            return false;
        };
        let Ok(issued) = i64::from_str_radix(stamp, 16) else {
            return false;
        };
        let age = OffsetDateTime::now_utc().unix_timestamp() - issued;
        (0..=NONCE_SECONDS).contains(&age)
            && constant_time_eq(tag.as_bytes(), self.nonce_tag(stamp).as_bytes())
    }
}

/// Checks a `Basic` Authorization header against an account.
pub fn basic_auth_ok(authorization: Option<&str>, username: &str, password: &str) -> bool {
    let Some(encoded) = authorization.and_then(|a| a.strip_prefix("Basic ")) else {
        return false;
    };
    base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .is_some_and(|pair| {
            constant_time_eq(pair.as_bytes(), format!("{username}:{password}").as_bytes())
        })
}

/// Verifies a `Digest` Authorization header (RFC 2617, MD5, with or without `qop=auth`) against
/// an account, with a nonce `nonce_ok` accepts.
pub fn digest_auth_ok(
    authorization: Option<&str>,
    method: &str,
    username: &str,
    password: &str,
    realm: &str,
    nonce_ok: impl Fn(&str) -> bool,
) -> bool {
    let hex = |text: String| md5_hex(text);
    let Some(params) = digest_params(authorization) else {
        return false;
    };
    let get = |key: &str| params.get(key).map(String::as_str).unwrap_or("");
    let algorithm_ok = get("algorithm").is_empty() || get("algorithm").eq_ignore_ascii_case("MD5");
    if get("username") != username || get("realm") != realm || !algorithm_ok {
        return false;
    }
    let nonce = get("nonce");
    if !nonce_ok(nonce) {
        return false;
    }
    let ha1 = hex(format!("{username}:{realm}:{password}"));
    let ha2 = hex(format!("{method}:{}", get("uri")));
    let expected = if get("qop").is_empty() {
        hex(format!("{ha1}:{nonce}:{ha2}"))
    } else {
        hex(format!(
            "{ha1}:{nonce}:{}:{}:{}:{ha2}",
            get("nc"),
            get("cnonce"),
            get("qop")
        ))
    };
    constant_time_eq(get("response").as_bytes(), expected.as_bytes())
}

/// The `uri` a Digest answer was computed for.
fn digest_uri(authorization: Option<&str>) -> Option<String> {
    digest_params(authorization)?.remove("uri")
}

fn digest_params(authorization: Option<&str>) -> Option<HashMap<String, String>> {
    let fields = authorization?.strip_prefix("Digest ")?;
    let mut params = HashMap::new();
    for part in split_header_params(fields) {
        if let Some((key, value)) = part.split_once('=') {
            params.insert(
                key.trim().to_ascii_lowercase(),
                value.trim().trim_matches('"').to_string(),
            );
        }
    }
    Some(params)
}

/// Splits `a="x, y", b=z` on the commas outside quotes.
pub fn split_header_params(text: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut start = 0;
    let mut quoted = false;
    for (index, c) in text.char_indices() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => {
                parts.push(&text[start..index]);
                start = index + 1;
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "phone2mqtt-keys-{}-{}",
            std::process::id(),
            rand::random::<u32>()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn tokens_are_per_phone_and_kept() {
        let dir = dir();
        let keys = PhoneKeys::load(&dir).unwrap();
        let a = PhoneId::parse("001565000001").unwrap();
        let b = PhoneId::parse("001565000002").unwrap();
        let token = keys.token(&a);
        assert_eq!(token.len(), 22);
        assert!(token
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'));
        assert_ne!(token, keys.token(&b));
        assert_eq!(keys.check(&a, &token), Verdict::Phone);
        assert_eq!(keys.check(&b, &token), Verdict::Wrong);
        // The same key after a restart.
        assert_eq!(PhoneKeys::load(&dir).unwrap().token(&a), token);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.join(KEY_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        // No legacy token on a new installation, and none is created.
        let keys = PhoneKeys::load_with_legacy(&dir, None, 30).unwrap();
        assert!(keys.legacy_until().is_none());
        assert!(!dir.join(LEGACY_TOKEN_FILE).exists());
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn the_legacy_token_is_accepted_within_its_grace_period_only() {
        let dir = dir();
        std::fs::write(dir.join(LEGACY_TOKEN_FILE), "old-token-0123456789abcdef\n").unwrap();
        let keys = PhoneKeys::load_with_legacy(&dir, None, 30).unwrap();
        let a = PhoneId::parse("001565000001").unwrap();
        let b = PhoneId::parse("001565000002").unwrap();
        assert_eq!(
            keys.check(&a, "old-token-0123456789abcdef"),
            Verdict::Legacy { first: true }
        );
        assert_eq!(
            keys.check(&a, "old-token-0123456789abcdef"),
            Verdict::Legacy { first: false }
        );
        assert_eq!(
            keys.check(&b, "old-token-0123456789abcdef"),
            Verdict::Legacy { first: true }
        );
        assert!(dir.join(LEGACY_SINCE_FILE).exists());
        let keys = PhoneKeys::load_with_legacy(&dir, None, 0).unwrap();
        assert_eq!(
            keys.check(&a, "old-token-0123456789abcdef"),
            Verdict::LegacyExpired
        );
        assert_eq!(keys.check(&a, &keys.token(&a)), Verdict::Phone);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn digest_and_basic() {
        let dir = dir();
        let keys = PhoneKeys::load(&dir).unwrap();
        let auth = ProvisioningAuth::new("prov", &Secret::new("pw"), &keys);
        let basic = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode("prov:pw")
        );
        assert!(auth.accepts(Some(&basic), "GET", "/x.cfg"));
        assert!(!auth.accepts(Some("Basic cHJvdjp4"), "GET", "/x.cfg"));
        assert!(!auth.accepts(None, "GET", "/x.cfg"));
        let challenge = auth.challenges()[0].clone();
        let mut prompt = digest_auth::parse(&challenge).unwrap();
        let answer = prompt
            .respond(&digest_auth::AuthContext::new("prov", "pw", "/x.cfg"))
            .unwrap()
            .to_string();
        assert!(auth.accepts(Some(&answer), "GET", "/x.cfg"));
        assert!(
            !auth.accepts(Some(&answer), "GET", "/y.cfg"),
            "another file"
        );
        let forged = answer.replace(
            &challenge[challenge.find("nonce=\"").unwrap() + 7..][..8],
            "00000000",
        );
        assert!(
            !auth.accepts(Some(&forged), "GET", "/x.cfg"),
            "a nonce not ours"
        );
        std::fs::remove_dir_all(dir).unwrap();
    }
}
