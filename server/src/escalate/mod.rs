//! Sending a prompt to an AI provider and getting its reply back.
//!
//! [`provider`] defines the [`Provider`] trait, implemented once per wire format: Anthropic
//! Messages ([`anthropic`]), OpenAI-compatible chat completions ([`openai`]), Gemini
//! ([`gemini`]) and a local command ([`command`]). [`chain`] tries providers in order with
//! retries, backoff and cooldowns. [`config`] holds the provider settings of `.acas/config.toml`
//! and builds providers from them.
//!
//! This module knows nothing of LSP, prompts' contents, budgets or caching: it sends the request
//! it is given and reports what happened.

pub mod anthropic;
pub mod chain;
pub mod command;
pub mod config;
pub mod gemini;
pub mod http;
pub mod openai;
pub mod provider;
pub mod sse;

pub use chain::{Attempt, Chain, ChainError, ChainOptions, ChainReply, Clock, TokioClock};
pub use config::{ConfigError, ProviderConfig, build, providers_from_env};
pub use provider::{
    Completion, CompletionRequest, Provider, ProviderError, ProviderErrorKind, StreamEvent, Usage,
};
