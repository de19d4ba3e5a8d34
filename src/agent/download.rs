//! Downloads the agent makes (a logo from a URL, the site's upstream provisioning file):
//! streamed with a byte cap (`[limits] download_bytes`) and one deadline for the whole
//! exchange, answer and body alike (`[limits] download_secs`), so that a server that sends
//! without end, or slowly, costs neither memory nor a command slot. Refusals are counted.

use std::time::Duration;

use crate::metrics::{Limit, Metrics};

/// Why a download ended without a body.
#[derive(Debug, thiserror::Error)]
pub enum DownloadError {
    #[error("the server answered {0}")]
    Status(reqwest::StatusCode),
    #[error("it is over {max} bytes ([limits] download_bytes)")]
    TooLarge { max: usize },
    #[error("it did not arrive within {} s ([limits] download_secs)", .0.as_secs())]
    TooSlow(Duration),
    #[error("{0}")]
    Failed(String),
}

/// What a download may take.
#[derive(Debug, Clone, Copy)]
pub struct Cap {
    pub bytes: usize,
    pub deadline: Duration,
}

impl Cap {
    pub fn of(limits: &crate::config::LimitsConfig) -> Cap {
        Cap {
            bytes: limits.download_bytes,
            deadline: Duration::from_secs(limits.download_secs),
        }
    }
}

/// Sends `request` and reads its body within `cap`; `Ok(None)` for a 404 when `missing_ok`.
pub async fn fetch(
    request: reqwest::RequestBuilder,
    cap: Cap,
    missing_ok: bool,
    metrics: &Metrics,
) -> Result<Option<Vec<u8>>, DownloadError> {
    let outcome = tokio::time::timeout(cap.deadline, read(request, cap.bytes, missing_ok)).await;
    let outcome = outcome.unwrap_or(Err(DownloadError::TooSlow(cap.deadline)));
    match &outcome {
        Err(DownloadError::TooLarge { .. }) => metrics.refused(Limit::download_bytes),
        Err(DownloadError::TooSlow(_)) => metrics.refused(Limit::download_time),
        _ => {}
    }
    outcome
}

async fn read(
    request: reqwest::RequestBuilder,
    max: usize,
    missing_ok: bool,
) -> Result<Option<Vec<u8>>, DownloadError> {
    let mut response = request.send().await.map_err(failed)?;
    let status = response.status();
    if missing_ok && status == reqwest::StatusCode::NOT_FOUND {
        return Ok(None);
    }
    if !status.is_success() {
        return Err(DownloadError::Status(status));
    }
    // Refused before a byte of the body is read.
    let cap = u64::try_from(max).unwrap_or(u64::MAX);
    if response.content_length().is_some_and(|len| len > cap) {
        return Err(DownloadError::TooLarge { max });
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(failed)? {
        if body.len().saturating_add(chunk.len()) > max {
            return Err(DownloadError::TooLarge { max });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Some(body))
}

/// reqwest's error with its causes, without the URL (it may carry a password).
fn failed(err: reqwest::Error) -> DownloadError {
    let err = err.without_url();
    let mut text = err.to_string();
    let mut source = std::error::Error::source(&err);
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    DownloadError::Failed(text)
}
