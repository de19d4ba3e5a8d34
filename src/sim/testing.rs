//! What the personalities' tests share.

use crate::phone_vendors::ProvisionCtx;

/// What an agent at `http://<host>:8080` with the token `tok` writes into provisioning files,
/// in the vendor's `format` (`None`: its usual one).
pub fn provision_ctx(host: &str, format: Option<&str>) -> ProvisionCtx {
    ProvisionCtx {
        public_url: format!("http://{host}:8080"),
        token: Some("tok".into()),
        agent_host: host.into(),
        format: format.map(str::to_string),
    }
}
