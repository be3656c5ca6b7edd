//! Workspace configuration from `.acas/config.toml`.
//!
//! A missing file means defaults. A broken file never stops ACAS: [`load`] returns the defaults
//! together with a [`ConfigError`] that names the file, line and column, so that each front end
//! can show it (the CLI prints it, the server shows a message). Editor settings
//! ([`acas_protocol::Settings`]) override the file for one session.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

/// Default size above which files are not parsed.
pub const DEFAULT_MAX_FILE_SIZE: u64 = 2 * 1024 * 1024;

/// The effective configuration of a workspace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Files larger than this many bytes are skipped.
    pub max_file_size: u64,
    /// Extra ignore globs (gitignore syntax), on top of the ignore files.
    pub ignore: Vec<String>,
    /// How long activity rows are kept.
    pub retention: Duration,
    /// Quiet period after the last file-system event before it is handled.
    pub debounce: Duration,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            max_file_size: DEFAULT_MAX_FILE_SIZE,
            ignore: Vec::new(),
            retention: Duration::from_secs(30 * 24 * 3600),
            debounce: Duration::from_millis(50),
        }
    }
}

impl Config {
    /// Applies editor settings on top of the file's values.
    pub fn with_settings(mut self, settings: &acas_protocol::Settings) -> Config {
        if let Some(size) = settings.max_file_size {
            self.max_file_size = size;
        }
        if let Some(ignore) = &settings.ignore {
            self.ignore.extend(ignore.iter().cloned());
        }
        self
    }
}

/// A configuration file that could not be used, located for the user.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}:{line}:{column}: {message}", path.display())]
pub struct ConfigError {
    pub path: PathBuf,
    /// One-based line, zero when unknown.
    pub line: usize,
    /// One-based column, zero when unknown.
    pub column: usize,
    pub message: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    files: FilesSection,
    #[serde(default)]
    store: StoreSection,
    #[serde(default)]
    watch: WatchSection,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FilesSection {
    max_size: Option<u64>,
    #[serde(default)]
    ignore: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct StoreSection {
    retention_days: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct WatchSection {
    debounce_ms: Option<u64>,
}

/// Path of the configuration file of a workspace.
pub fn path(root: &Path) -> PathBuf {
    root.join(".acas").join("config.toml")
}

/// Loads the configuration of the workspace at `root`. Never fails: on error the defaults come
/// back together with the error.
pub fn load(root: &Path) -> (Config, Option<ConfigError>) {
    let path = path(root);
    let text = match std::fs::read(&path) {
        Ok(bytes) => match String::from_utf8(bytes) {
            Ok(text) => text,
            Err(_) => {
                let error = ConfigError {
                    path,
                    line: 0,
                    column: 0,
                    message: "the file is not valid UTF-8; save it as UTF-8".to_owned(),
                };
                return (Config::default(), Some(error));
            }
        },
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return (Config::default(), None),
        Err(err) => {
            let error = ConfigError { path, line: 0, column: 0, message: format!("cannot read it: {err}") };
            return (Config::default(), Some(error));
        }
    };
    match parse(&text) {
        Ok(config) => (config, None),
        Err((offset, message)) => {
            let (line, column) = offset.map(|o| line_column(&text, o)).unwrap_or((0, 0));
            (Config::default(), Some(ConfigError { path, line, column, message }))
        }
    }
}

fn parse(text: &str) -> Result<Config, (Option<usize>, String)> {
    let file: File =
        toml::from_str(text).map_err(|e| (e.span().map(|s| s.start), e.message().trim().to_owned()))?;
    let defaults = Config::default();
    let max_file_size = file.files.max_size.unwrap_or(defaults.max_file_size);
    if max_file_size == 0 {
        let at = text.find("max_size");
        return Err((at, "`files.max_size` must be greater than zero".to_owned()));
    }
    Ok(Config {
        max_file_size,
        ignore: file.files.ignore,
        retention: file
            .store
            .retention_days
            .map(|days| Duration::from_secs(days * 24 * 3600))
            .unwrap_or(defaults.retention),
        debounce: file.watch.debounce_ms.map(Duration::from_millis).unwrap_or(defaults.debounce),
    })
}

fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_text(text: &str) -> (Config, Option<ConfigError>) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join(".acas")).unwrap();
        std::fs::write(path(dir.path()), text).unwrap();
        let (config, error) = load(dir.path());
        (config, error.map(|e| ConfigError { path: PathBuf::from("config.toml"), ..e }))
    }

    #[test]
    fn missing_file_gives_defaults() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(load(dir.path()), (Config::default(), None));
    }

    #[test]
    fn values_are_read() {
        let (config, error) =
            load_text("[files]\nmax_size = 1024\nignore = [\"gen/**\"]\n[store]\nretention_days = 2\n");
        assert_eq!(error, None);
        assert_eq!(config.max_file_size, 1024);
        assert_eq!(config.ignore, vec!["gen/**".to_owned()]);
        assert_eq!(config.retention, Duration::from_secs(2 * 24 * 3600));
    }

    #[test]
    fn errors_carry_line_and_column() {
        let (config, error) = load_text("[files]\nmax_size = \"big\"\n");
        assert_eq!(config, Config::default());
        let error = error.unwrap();
        assert_eq!((error.line, error.column), (2, 12));
        assert!(error.message.contains("invalid type"), "{}", error.message);

        let (_, error) = load_text("[files]\nmax_sise = 3\n");
        let error = error.unwrap();
        assert_eq!((error.line, error.column), (2, 1));
        assert!(error.message.contains("unknown field `max_sise`"), "{}", error.message);

        let (_, error) = load_text("[files\n");
        assert_eq!(error.unwrap().line, 1);
    }

    #[test]
    fn settings_override_the_file() {
        let settings = acas_protocol::Settings {
            max_file_size: Some(10),
            ignore: Some(vec!["x".into()]),
            ..Default::default()
        };
        let config = Config::default().with_settings(&settings);
        assert_eq!(config.max_file_size, 10);
        assert_eq!(config.ignore, vec!["x".to_owned()]);
    }
}
