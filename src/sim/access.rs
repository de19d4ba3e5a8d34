//! The credentials a simulated phone asks for on its Action URI API: HTTP Basic, or Digest.

use super::personality::{AccessCtx, Reply};

/// Checks a `Basic` Authorization header against the phone's account: the same check as the
/// agent's provisioning server.
pub use crate::phone_auth::basic_auth_ok;

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
