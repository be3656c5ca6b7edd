//! Logging to stderr through `tracing`, with a level that can change while the server runs.
//!
//! Stdout belongs to JSON-RPC, so logs always go to stderr; editors show it in their output
//! panel. The level comes from `--log-level`, then `ACAS_LOG`, then the command's default, and
//! an editor can change it later through the `logLevel` setting.

use std::sync::OnceLock;

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Registry, reload};

static RELOAD: OnceLock<reload::Handle<EnvFilter, Registry>> = OnceLock::new();

/// Installs the global subscriber. Only the first call has an effect.
pub fn init(level: Option<&str>, default_level: &str) {
    let wanted = level.map(str::to_owned).or_else(|| std::env::var("ACAS_LOG").ok());
    let filter = wanted
        .as_deref()
        .and_then(|l| EnvFilter::try_new(l).ok())
        .unwrap_or_else(|| EnvFilter::new(default_level));
    let (filter, handle) = reload::Layer::new(filter);
    let fmt =
        tracing_subscriber::fmt::layer().with_writer(std::io::stderr).with_ansi(false).with_target(false);
    if tracing_subscriber::registry().with(filter).with(fmt).try_init().is_ok() {
        let _ = RELOAD.set(handle);
    }
}

/// Changes the level of the running process (`error`, `warn`, `info`, `debug`, `trace`, or any
/// `tracing` filter directive).
pub fn set_level(level: &str) {
    let Some(handle) = RELOAD.get() else { return };
    match EnvFilter::try_new(level) {
        Ok(filter) => {
            if handle.reload(filter).is_ok() {
                tracing::info!("log level is now {level}");
            }
        }
        Err(error) => tracing::warn!("log level `{level}` is not valid: {error}"),
    }
}
