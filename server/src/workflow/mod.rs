//! Workflows: durable DAGs of steps that the editor, files, schedules, diagnostics, escalations
//! or webhooks start.
//!
//! - [`actions`] are the built-in `uses:` actions.
//! - [`definition`] is the model of a `.acas/workflows/*.yaml` file.
//! - [`parse`] reads a definition file into the model, with the position of every problem.
//! - [`template`] renders the `{{ ... }}` templates and `if:` conditions, strictly.
//! - [`validate`] checks references, cycles, cron expressions and globs, and loads a workspace's
//!   workflows.
//! - [`engine`] runs workflows as DAGs, durably; [`state`] is the runs' store, [`process`] runs
//!   the commands of `run:` steps, [`inputs`] types inputs, [`plan`] is the dry run.
//!
//! Nothing here knows LSP.

pub mod actions;
pub mod definition;
pub mod engine;
pub mod error;
pub mod inputs;
pub mod parse;
pub mod plan;
pub mod process;
pub mod state;
pub mod template;
pub mod validate;
