//! Workflows: durable DAGs of steps that the editor, files, schedules, diagnostics, escalations
//! or webhooks start.
//!
//! - [`actions`] are the built-in `uses:` actions.
//! - [`dag`] finds dependency cycles.
//! - [`definition`] is the model of a `.acas/workflows/*.yaml` file.
//! - [`outbox`] delivers outgoing progress webhooks durably, with retries.
//! - [`parse`] reads a definition file into the model, with the position of every problem.
//! - [`signature`] signs and checks webhook bodies (HMAC-SHA256 over timestamp and body).
//! - [`template`] renders the `{{ ... }}` templates and `if:` conditions, strictly.
//! - [`triggers`] turn file changes, schedules, diagnostics, escalations, webhooks and manual
//!   requests into requests to start a run.
//! - [`validate`] checks references, cycles, cron expressions and globs, and loads a workspace's
//!   workflows.
//! - [`engine`] runs workflows as DAGs, durably; [`state`] is the runs' store, [`process`] runs
//!   the commands of `run:` steps, [`inputs`] types inputs, [`plan`] is the dry run.
//! - [`team_runs`] mirrors the runs this process owns into the shared store, for the team.
//! - [`workers`] hands `run:` steps to the team's workers through the shared store, and is the
//!   loop of `acas worker`.
//! - [`gate`] asks the policy before a step acts, and again after an approval.
//! - [`planner`] asks the AI providers for a plan of tasks (`ai.plan`, `acas plan`), checks,
//!   deduplicates and unties it, and turns it into a workflow.
//!
//! Nothing here knows LSP.

pub mod actions;
pub mod dag;
pub mod definition;
pub mod engine;
pub mod error;
pub mod gate;
pub mod inputs;
pub mod outbox;
pub mod parse;
pub mod plan;
pub mod planner;
pub mod process;
pub mod settings;
pub mod signature;
pub mod state;
pub mod team_runs;
pub mod template;
mod template_constants;
pub mod triggers;
pub mod validate;
pub mod workers;

#[cfg(test)]
mod proptests;
