//! What a failed delivery says: what failed, and whether a retry can help.

use std::time::Duration;

/// Why a notification (or a checkpoint copy) was not delivered, and whether trying again can
/// help. Messages name the target by host only: a webhook URL's path often holds its secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeliveryError {
    /// The target's settings cannot work (an address, URL or recipient that does not parse):
    /// retrying will not help.
    #[error("{0}")]
    Config(String),
    /// The target could not be reached, or did not answer in time: a retry may succeed.
    #[error("{target}: {reason}")]
    Unreachable {
        /// The host (and port) tried.
        target: String,
        /// What went wrong.
        reason: String,
    },
    /// The target answered with a refusal: temporary (`retry`: an HTTP 5xx, 408 or 429, an
    /// SMTP 4xx) or for good.
    #[error("{target} refused: {reason}")]
    Refused {
        /// The host (and port) that refused.
        target: String,
        /// Its answer.
        reason: String,
        /// Whether asking again later may succeed.
        retry: bool,
    },
}

impl DeliveryError {
    /// Whether a retry can help.
    pub fn retryable(&self) -> bool {
        match self {
            DeliveryError::Config(_) => false,
            DeliveryError::Unreachable { .. } => true,
            DeliveryError::Refused { retry, .. } => *retry,
        }
    }
}

/// `host[:port]` of a URL, for messages (never its path or query, which may hold a secret).
fn url_host(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(u) => match (u.host_str(), u.port()) {
            (Some(h), Some(p)) => format!("{h}:{p}"),
            (Some(h), None) => h.to_owned(),
            _ => "webhook".to_owned(),
        },
        Err(_) => "webhook".to_owned(),
    }
}

/// POSTs `body` as JSON to a webhook, within 10 s.
pub async fn post_webhook(
    client: &reqwest::Client,
    url: &str,
    body: &serde_json::Value,
) -> Result<(), DeliveryError> {
    let target = url_host(url);
    let resp = client
        .post(url)
        .json(body)
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .map_err(|e| {
            if e.is_builder() {
                DeliveryError::Config(format!("webhook {target}: {}", e.without_url()))
            } else {
                DeliveryError::Unreachable {
                    target: target.clone(),
                    reason: e.without_url().to_string(),
                }
            }
        })?;
    let status = resp.status();
    if status.is_success() {
        return Ok(());
    }
    Err(DeliveryError::Refused {
        target,
        reason: format!("answered {status}"),
        retry: status.is_server_error()
            || status == reqwest::StatusCode::TOO_MANY_REQUESTS
            || status == reqwest::StatusCode::REQUEST_TIMEOUT,
    })
}
