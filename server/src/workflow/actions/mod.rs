//! Built-in workflow actions (`uses:`), each with a parameter schema.
//!
//! [`run`] executes one action with its rendered `with:` parameters and returns its output as
//! JSON; [`check_params`] validates parameters before any run. Actions reach the editor through
//! [`Editor`] and AI providers through [`Ai`], so that they work the same under `acas serve`,
//! `acas watch` and `acas workflow run`.

use std::path::PathBuf;
use std::sync::Arc;

use futures_util::future::BoxFuture;
use serde_json::{Map, Value};
use tokio_util::sync::CancellationToken;

/// Where `editor.notify` and `editor.diagnostic` go.
pub trait Editor: Send + Sync {
    /// `level` is `info`, `warning` or `error`.
    fn notify(&self, level: &str, message: &str);
    /// A diagnostic on a workspace-relative `path`, 1-based `line` and `column`.
    fn diagnostic(&self, path: &str, line: u32, column: u32, severity: &str, message: &str);
}

/// What `ai.ask`, `ai.review` and `ai.plan` get back.
#[derive(Debug, Clone, PartialEq)]
pub struct AiAnswer {
    pub text: String,
    pub provider: String,
    pub model: String,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cost_usd: f64,
    pub cached: bool,
}

/// The escalation providers, with their budgets, as actions see them.
pub trait Ai: Send + Sync {
    fn ask<'a>(
        &'a self,
        system: &'a str,
        prompt: &'a str,
        json_schema: Option<Value>,
        cancel: &'a CancellationToken,
    ) -> BoxFuture<'a, Result<AiAnswer, String>>;
}

/// Everything an action may use.
#[derive(Clone)]
pub struct ActionContext {
    /// Absolute workspace root; file actions are confined to it.
    pub workspace: PathBuf,
    pub run_id: String,
    pub step_id: String,
    pub cancel: CancellationToken,
    pub editor: Arc<dyn Editor>,
    /// `None` when no provider is configured: AI actions then fail with a clear message.
    pub ai: Option<Arc<dyn Ai>>,
}

/// Why an action failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ActionError {
    pub message: String,
    /// A workspace-relative file the failure is about, with a 1-based line, when known; the
    /// editor shows such failures as diagnostics on that file.
    pub location: Option<(String, u32)>,
}

impl ActionError {
    pub fn new(message: impl Into<String>) -> Self {
        ActionError { message: message.into(), location: None }
    }
}

/// A problem with a step's `with:` parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamProblem {
    /// The parameter's key (`path`, `headers.Authorization`), or empty for the whole map.
    pub key: String,
    pub message: String,
}

/// Runs `action` with its rendered parameters.
pub async fn run(action: &str, with: &Map<String, Value>, ctx: &ActionContext) -> Result<Value, ActionError> {
    let _ = (with, ctx);
    Err(ActionError::new(format!("unknown action `{action}`")))
}

/// Checks `with:` against the action's schema. Values that are templates are checked after
/// rendering, at run time; only their presence is checked here.
pub fn check_params(action: &str, with: &Map<String, Value>) -> Vec<ParamProblem> {
    let _ = (action, with);
    Vec::new()
}
