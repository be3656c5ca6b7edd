//! Workflows: durable DAGs of steps that the editor, files, schedules, diagnostics, escalations
//! or webhooks start.
//!
//! - [`actions`] are the built-in `uses:` actions.
//! - [`definition`] is the model of a `.acas/workflows/*.yaml` file.
//! - [`outbox`] delivers outgoing progress webhooks durably, with retries.
//! - [`signature`] signs and checks webhook bodies (HMAC-SHA256 over timestamp and body).
//! - [`template`] renders the `{{ ... }}` templates and `if:` conditions, strictly.
//! - [`triggers`] turn file changes, schedules, diagnostics, escalations, webhooks and manual
//!   requests into requests to start a run.
//!
//! Nothing here knows LSP.

pub mod actions;
pub mod definition;
pub mod outbox;
pub mod signature;
pub mod template;
pub mod triggers;
