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

/// The client for requests to `url`: the process's [`client`], or for a plain `http://` URL
/// (a provider on this machine or the local network) a client that never loads the system's
/// certificate store, reading and parsing which is most of what setting up TLS costs a
/// short-lived process such as `acas explain`. That client refuses a redirect to `https://`
/// (it could not verify the server) and is not used when a proxy for `http://` is itself
/// reached over TLS.
pub fn client_for(url: &str) -> Result<reqwest::Client, ClientError> {
    if !is_plain_http(url) || proxied_over_tls() {
        return client();
    }
    static PLAIN: OnceLock<Result<reqwest::Client, ClientError>> = OnceLock::new();
    PLAIN
        .get_or_init(|| {
            let _ = rustls::crypto::ring::default_provider().install_default();
            let redirects = reqwest::redirect::Policy::custom(|attempt| {
                if attempt.url().scheme() != "http" {
                    let to = attempt.url().to_string();
                    attempt.error(format!(
                        "a plain http:// endpoint redirected to {to}: configure that URL instead"
                    ))
                } else if attempt.previous().len() >= MAX_REDIRECTS {
                    attempt.error(format!("more than {MAX_REDIRECTS} redirects"))
                } else {
                    attempt.follow()
                }
            });
            reqwest::Client::builder()
                .connect_timeout(Duration::from_secs(10))
                .redirect(redirects)
                .tls_certs_only([])
                .build()
                .map_err(|error| ClientError { detail: error.to_string() })
        })
        .clone()
}

/// As many redirects as reqwest's default policy follows.
const MAX_REDIRECTS: usize = 10;

fn is_plain_http(url: &str) -> bool {
    url.get(..7).is_some_and(|scheme| scheme.eq_ignore_ascii_case("http://"))
}

/// Whether the proxy the environment names for `http://` URLs is reached over TLS.
fn proxied_over_tls() -> bool {
    ["http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"].iter().filter_map(std::env::var_os).any(|proxy| {
        proxy.to_string_lossy().trim_start().get(..8).is_some_and(|s| s.eq_ignore_ascii_case("https://"))
    })
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_http_urls_skip_the_certificate_store() {
        assert!(is_plain_http("http://127.0.0.1:11434/v1"));
        assert!(is_plain_http("HTTP://localhost/v1"));
        assert!(!is_plain_http("https://api.openai.com/v1"));
        assert!(!is_plain_http("http:/x"));
        assert!(!is_plain_http(""));
    }
}
