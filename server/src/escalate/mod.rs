//! AI escalation: deciding when to ask, asking, and bringing answers back.
//!
//! - [`rules`] decides which diagnostics matter and when.
//! - [`context`] gathers the story of an error (enclosing code, [`symbols`] it uses, [`git`]
//!   history, past fixes), ranks what ties by a [`graph`] of the workspace's references, and
//!   renders it with secrets [`redact`]ed.
//! - [`cost`] prices requests and keeps spend inside the budgets.
//! - [`provider`] is the trait implemented once per wire format: Anthropic Messages
//!   ([`anthropic`]), OpenAI-compatible chat completions ([`openai`]), Gemini ([`gemini`]) and a
//!   local command ([`command`]); [`chain`] tries providers in order with retries, backoff and
//!   cooldowns; [`config`] builds providers from `.acas/config.toml` and the environment.
//!
//! Nothing here knows LSP.

pub mod answer;
pub mod anthropic;
pub mod chain;
pub mod choose;
pub mod command;
pub mod config;
pub mod context;
pub mod cost;
pub mod engine;
pub mod gemini;
pub mod git;
pub mod graph;
pub mod http;
pub mod openai;
pub mod provider;
pub mod redact;
pub mod rules;
pub mod settings;
pub mod sse;
pub mod symbols;

pub use chain::{Attempt, Chain, ChainError, ChainOptions, ChainReply, Clock, TokioClock};
pub use config::{ConfigError, ProviderConfig, build, providers_from_env};
pub use provider::{
    Completion, CompletionRequest, Provider, ProviderError, ProviderErrorKind, StreamEvent, Usage,
};
