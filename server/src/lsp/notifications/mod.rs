//! Notification handlers, one per file: each turns the LSP notification into a workspace
//! [`crate::workspace::Event`], sent before any `.await` so the loop sees notifications in
//! arrival order.

pub(super) mod did_change;
pub(super) mod did_change_configuration;
pub(super) mod did_close;
pub(super) mod did_open;
pub(super) mod did_save;
pub(super) mod external_diagnostics;
pub(super) mod fix_feedback;
pub(super) mod initialized;
pub(super) mod progress_cancel;
