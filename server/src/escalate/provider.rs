//! The provider trait: one request in, one completion out, streamed as it arrives.
//!
//! A [`Provider`] sends one [`CompletionRequest`] to one model and reports what went wrong as a
//! [`ProviderError`] whose [`ProviderErrorKind`] says whether trying again can help. It does not
//! retry, fall back, cache or count cost: the chain (`chain.rs`) and its callers do that. Each
//! wire format has its own implementation (`anthropic.rs`, `openai.rs`, `gemini.rs`,
//! `command.rs`).

use std::fmt;
use std::time::Duration;

use futures_util::future::BoxFuture;
use tokio_util::sync::CancellationToken;

/// What to ask a model.
#[derive(Debug, Clone, PartialEq)]
pub struct CompletionRequest {
    /// Instructions that frame the task (the system prompt).
    pub system: String,
    /// The question itself, with its context.
    pub prompt: String,
    /// Upper bound on the reply's length in tokens.
    pub max_tokens: u32,
    /// Sampling temperature; `None` leaves the provider's default.
    pub temperature: Option<f32>,
    /// A JSON schema the reply should follow. Providers that support structured output are asked
    /// for it; the others are told the schema in the system prompt.
    pub json_schema: Option<serde_json::Value>,
}

/// Tokens used by one completion.
///
/// `input_tokens` counts every prompt token, cached or not; `cached_input_tokens` says how many of
/// them were read from the provider's prompt cache (billed at a lower rate).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cached_input_tokens: u64,
    /// The numbers are an estimate (about four characters per token), not the provider's count.
    pub estimated: bool,
}

/// A finished reply.
#[derive(Debug, Clone, PartialEq)]
pub struct Completion {
    /// The whole reply text.
    pub text: String,
    pub usage: Usage,
    /// The model that answered, as the provider reported it (or as configured when it did not).
    pub model: String,
    /// The configured name of the provider that answered.
    pub provider: String,
    /// Why generation stopped (`end_turn`, `stop`, `STOP`, `max_tokens`, ...), when reported.
    pub finish_reason: Option<String>,
}

/// Progress of a completion while it streams.
#[derive(Debug, Clone, PartialEq)]
pub enum StreamEvent {
    /// A new attempt has started: text received before this belongs to an attempt that failed
    /// and should be discarded.
    Started,
    /// The next piece of the reply text.
    Text(String),
    /// Usage so far (the last one received is final).
    Usage(Usage),
}

/// A model behind some wire format.
pub trait Provider: Send + Sync {
    /// The configured name (`primary`, `anthropic`, ...), used in logs and attempts.
    fn name(&self) -> &str;
    /// The configured model.
    fn model(&self) -> &str;
    /// Sends `request` and streams the reply through `events`. Resolves with
    /// [`ProviderErrorKind::Cancelled`] soon after `cancel` fires; dropping the future also
    /// abandons the request.
    fn complete<'a>(
        &'a self,
        request: &'a CompletionRequest,
        events: &'a mut (dyn FnMut(StreamEvent) + Send),
        cancel: &'a CancellationToken,
    ) -> BoxFuture<'a, Result<Completion, ProviderError>>;
}

/// Why a request failed, which decides what the chain does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProviderErrorKind {
    /// HTTP 429 or a rate-limit error event: retry after `retry_after`.
    RateLimited,
    /// HTTP 503 or 529, or an overloaded error event.
    Overloaded,
    /// Another 5xx, or a connection that could not be made.
    Server,
    /// HTTP 401 or 403: the key is missing, wrong or lacks permission.
    Auth,
    /// Another 4xx: the request itself is wrong, so sending it again cannot help.
    BadRequest,
    /// No answer within the request's timeout, or no data within the idle timeout.
    Timeout,
    /// The connection closed before the reply's terminal event.
    StreamCut,
    /// A body or event that could not be parsed.
    Malformed,
    /// The caller cancelled the request.
    Cancelled,
    /// A command provider could not be started or exited unsuccessfully.
    Spawn,
    /// Every provider of a chain is cooling down after failures.
    Unavailable,
}

impl ProviderErrorKind {
    /// Whether sending the same request to the same provider again may succeed.
    pub fn retryable(self) -> bool {
        match self {
            Self::RateLimited | Self::Overloaded | Self::Server | Self::Timeout | Self::StreamCut => true,
            Self::Auth
            | Self::BadRequest
            | Self::Malformed
            | Self::Cancelled
            | Self::Spawn
            | Self::Unavailable => false,
        }
    }
}

/// A failed request: what kind of failure, the provider's own words, and how long it asked us
/// to wait.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderError {
    pub kind: ProviderErrorKind,
    pub message: String,
    pub retry_after: Option<Duration>,
}

impl ProviderError {
    pub fn new(kind: ProviderErrorKind, message: impl Into<String>) -> Self {
        Self { kind, message: message.into(), retry_after: None }
    }

    pub(crate) fn cancelled(provider: &str) -> Self {
        Self::new(ProviderErrorKind::Cancelled, format!("{provider}: request cancelled"))
    }
}

impl fmt::Display for ProviderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ProviderError {}

/// Rough token count for text a provider did not count: about four characters per token.
pub(crate) fn estimate_tokens(text: &str) -> u64 {
    (text.chars().count() as u64).div_ceil(4)
}

/// Instructions appended to the system prompt of providers without structured output.
pub(crate) fn schema_instruction(schema: &serde_json::Value) -> String {
    format!("\n\nReply with a single JSON value, and nothing else, that follows this JSON schema:\n{schema}")
}
