//! Workflows: durable DAGs of steps that the editor, files, schedules, diagnostics, escalations
//! or webhooks start.
//!
//! - [`actions`] are the built-in `uses:` actions.
//! - [`definition`] is the model of a `.acas/workflows/*.yaml` file.
//! - [`parse`] reads a definition file into the model, with the position of every problem.
//! - [`template`] renders the `{{ ... }}` templates and `if:` conditions, strictly.
//! - [`validate`] checks references, cycles, cron expressions and globs, and loads a workspace's
//!   workflows.
//!
//! Nothing here knows LSP.

pub mod actions;
pub mod definition;
pub mod parse;
pub mod template;
pub mod validate;
