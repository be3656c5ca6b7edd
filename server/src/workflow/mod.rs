//! Workflows: durable DAGs of steps that the editor, files, schedules, diagnostics, escalations
//! or webhooks start.
//!
//! - [`actions`] are the built-in `uses:` actions.
//! - [`definition`] is the model of a `.acas/workflows/*.yaml` file.
//! - [`template`] renders the `{{ ... }}` templates and `if:` conditions, strictly.
//!
//! Nothing here knows LSP.

pub mod actions;
pub mod definition;
pub mod template;
