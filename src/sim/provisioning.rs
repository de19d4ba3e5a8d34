//! How a simulated phone fetches its provisioning: the boot file or its usual files from the
//! agent, with the provisioning server credentials it was given, and the logo they point at.

use axum::http::{header, StatusCode};
use tracing::{debug, warn};

use super::personality::{LogoSeen, Provisioned};
use super::phone::SimPhone;
use super::{decode, settings};

impl SimPhone {
    pub(super) async fn fetch_provisioning(&self) {
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
