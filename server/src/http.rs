//! The process's one HTTP client and what every caller of it shares.
//!
//! Used by the AI providers (`escalate`), workflow `http.*` actions and the webhook outbox. It
//! knows HTTP only: no provider's JSON, no retries, no workflow.

use std::sync::OnceLock;
use std::time::Duration;

/// The HTTP client could not be set up (its TLS configuration was refused).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("could not set up the HTTP client: {detail}")]
pub struct ClientError {
    detail: String,
}

/// The process's HTTP client (one connection pool for every caller). Installs ring as the rustls
/// crypto provider first, unless the process already chose one.
pub fn client() -> Result<reqwest::Client, ClientError> {
    static CLIENT: OnceLock<Result<reqwest::Client, ClientError>> = OnceLock::new();
    CLIENT
        .get_or_init(|| {
            let _ = rustls::crypto::ring::default_provider().install_default();
            reqwest::Client::builder()
                .connect_timeout(Duration::from_secs(10))
                .build()
                .map_err(|error| ClientError { detail: error.to_string() })
        })
        .clone()
}

/// A client of its own whose redirects follow `policy`, with the same settings as [`client`].
pub fn client_with_redirects(policy: reqwest::redirect::Policy) -> Result<reqwest::Client, ClientError> {
    // The shared client installs the crypto provider.
    client()?;
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .redirect(policy)
        .build()
        .map_err(|error| ClientError { detail: error.to_string() })
}

/// An error with its causes, `outer: inner: innermost`.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
