//! Settings an editor may pass in `initializationOptions` or `workspace/didChangeConfiguration`.
//!
//! They override `.acas/config.toml` for the session. Every field is optional so that a client
//! can send only what the user changed.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Settings {
    /// Log level for the server (`error`, `warn`, `info`, `debug`, `trace`).
    pub log_level: Option<String>,
    /// Extra ignore globs, on top of `.gitignore`, `.ignore` and `.acas/ignore`.
    pub ignore: Option<Vec<String>>,
    /// Files larger than this many bytes are not parsed.
    pub max_file_size: Option<u64>,
}
