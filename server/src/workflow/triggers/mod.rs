//! Triggers: what starts a workflow run, apart from the engine itself.
//!
//! Every trigger ends in a [`Fired`] (which workflow, the `trigger` object its templates see,
//! and its inputs) sent on a [`FiredSender`]; whoever owns the engine starts one run per
//! `Fired`. The triggers themselves start nothing.
//!
//! - [`file_change`] matches workspace-relative paths and event kinds and debounces per
//!   (workflow, path);
//! - [`schedule`] computes cron fire times in a time zone;
//! - [`diagnostic`] fires when a matching diagnostic has stayed open long enough, once per
//!   appearance;
//! - [`escalation`] fires on escalation outcomes;
//! - [`manual`] checks and coerces typed inputs given by the editor or the CLI;
//! - [`webhook`] is the signed HTTP endpoint on 127.0.0.1;
//! - [`runner`] runs the first four in one task that owns their state, fed through a
//!   [`runner::TriggerHandle`].
//!
//! The matchers are plain state machines that take the current time as an argument, so that
//! they are tested without waiting; only [`runner`] and [`webhook`] own tasks.

pub mod diagnostic;
pub mod escalation;
pub mod file_change;
pub mod manual;
pub mod runner;
pub mod schedule;
pub mod webhook;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tokio::sync::mpsc;

/// What started a run: the `trigger` object its templates read, `kind` plus the fields of that
/// kind (`{"kind": "file_change", "path": "src/a.py", "event": "modified"}`). Every start builds
/// one — the CLI, the editor, each trigger, a rule, a plan, and the dry run's sample — so
/// `trigger.kind == 'manual'` means the same wherever the run started. `docs/workflows.md`
/// lists the fields of each kind.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Trigger {
    /// By hand: `acas workflow run` or the editor's command.
    Manual {
        source: ManualSource,
        /// The agent that asked, for a run started through the MCP server (its client's name).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        agent: Option<String>,
        /// The agent's session (`1a2b3c4d`), which its decision records name with it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        session: Option<String>,
    },
    /// A file matching `on.file_change` changed.
    FileChange {
        /// Workspace-relative, `/`-separated.
        path: String,
        /// `created`, `modified`, `deleted` or `renamed`.
        event: String,
    },
    /// `on.schedule` came due.
    Schedule {
        cron: String,
        /// RFC 3339, in the schedule's time zone.
        scheduled_at: String,
        /// The IANA zone of the schedule: `UTC` when it names none.
        timezone: String,
    },
    /// A diagnostic matching `on.diagnostic` persisted.
    Diagnostic {
        path: String,
        /// 1-based.
        line: u32,
        category: String,
        severity: String,
        fingerprint: String,
        message: String,
    },
    /// An escalation ended (`on.escalation`).
    Escalation {
        /// `fixed`, `explained` or `failed`.
        outcome: String,
        path: String,
        fingerprint: String,
        provider: Option<String>,
        message: String,
    },
    /// A signed request reached `on.webhook`'s path.
    Webhook {
        path: String,
        /// The body as JSON, or as a string when it is not JSON.
        body: Value,
        headers: Value,
        /// GitHub's `X-GitHub-Event` (`push`, `pull_request`, …) under `scheme: github`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        event: Option<String>,
    },
    /// A rule of `.acas/config.toml` named this workflow for a diagnostic.
    Rule {
        path: String,
        /// 1-based.
        line: u32,
        category: String,
        severity: String,
        source: String,
        fingerprint: String,
    },
    /// An approved plan (`acas plan`, the editor's plan approval).
    Plan { prompt: String },
}

/// Where a manual run was asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ManualSource {
    Cli,
    Editor,
    /// An AI agent, through the MCP server.
    Agent,
}

impl Trigger {
    /// The object templates see as `trigger`.
    pub fn to_value(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }

    /// `trigger.kind`.
    pub fn kind(&self) -> &'static str {
        match self {
            Trigger::Manual { .. } => "manual",
            Trigger::FileChange { .. } => "file_change",
            Trigger::Schedule { .. } => "schedule",
            Trigger::Diagnostic { .. } => "diagnostic",
            Trigger::Escalation { .. } => "escalation",
            Trigger::Webhook { .. } => "webhook",
            Trigger::Rule { .. } => "rule",
            Trigger::Plan { .. } => "plan",
        }
    }
}

/// One request to start a run.
#[derive(Debug, Clone, PartialEq)]
pub struct Fired {
    /// The workflow's `name`.
    pub workflow: String,
    /// What started it: the `trigger` its templates see.
    pub trigger: Trigger,
    /// The run's inputs (defaults of the workflow's typed inputs for automatic triggers).
    pub inputs: Map<String, Value>,
    /// The store's inbox entry of an accepted webhook request, removed once the run started.
    pub inbox: Option<i64>,
}

pub type FiredSender = mpsc::Sender<Fired>;
pub type FiredReceiver = mpsc::Receiver<Fired>;

/// The channel every trigger sends on. A full channel makes triggers wait (nothing is dropped).
pub fn channel() -> (FiredSender, FiredReceiver) {
    mpsc::channel(256)
}

/// What went wrong with a trigger definition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TriggerErrorKind {
    /// A path glob does not compile.
    Glob,
    /// A cron expression does not parse.
    Cron,
    /// A time zone is not an IANA name.
    TimeZone,
}

/// A trigger that cannot be used; the rest of the workflows' triggers still work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("workflow `{workflow}`: {message}")]
pub struct TriggerError {
    pub kind: TriggerErrorKind,
    pub workflow: String,
    pub message: String,
}

/// Compiles workspace-relative path globs, where `*` stays within one directory and `**`
/// crosses directories.
pub(crate) fn glob_set(globs: &[String]) -> Result<globset::GlobSet, String> {
    let mut builder = globset::GlobSetBuilder::new();
    for glob in globs {
        let compiled = globset::GlobBuilder::new(glob.trim_start_matches("./"))
            .literal_separator(true)
            .build()
            .map_err(|e| format!("invalid glob `{glob}`: {}", e.kind()))?;
        builder.add(compiled);
    }
    builder.build().map_err(|e| format!("invalid globs: {e}"))
}

/// The inputs of an automatically triggered run: the declared defaults.
pub(crate) fn default_inputs(workflow: &crate::workflow::definition::Workflow) -> Map<String, Value> {
    workflow.inputs.iter().filter_map(|(name, spec)| Some((name.clone(), spec.default.clone()?))).collect()
}

#[cfg(test)]
pub(crate) mod testing {
    use std::collections::BTreeMap;
    use std::path::PathBuf;

    use crate::workflow::definition::{Triggers, Workflow};

    /// A workflow with no steps and the given triggers.
    pub fn workflow(name: &str, on: Triggers) -> Workflow {
        Workflow {
            name: name.to_owned(),
            file: PathBuf::from(format!("/ws/.acas/workflows/{name}.yaml")),
            hash: String::new(),
            source: String::new(),
            on,
            inputs: BTreeMap::new(),
            env: BTreeMap::new(),
            concurrency: None,
            timeout: None,
            max_parallel: 4,
            runs_on: Vec::new(),
            steps: Vec::new(),
        }
    }
}
