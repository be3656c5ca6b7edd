//! Settings an editor passes in `initializationOptions` or `workspace/didChangeConfiguration`.
//!
//! They override `.acas/config.toml` for the session. Every field is optional so that a client
//! can send only what the user set. The VS Code extension's `package.json` declares each of
//! them as `acas.<name>`; a test checks the two agree.

use serde::{Deserialize, Serialize};
use ts_rs::TS;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase", default)]
pub struct Settings {
    /// Log level of the server: `error`, `warn`, `info`, `debug` or `trace`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub log_level: Option<LogLevel>,
    /// Also send the server's log, at `logLevel`, to the editor as `window/logMessage`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub log_to_client: Option<bool>,
    /// Extra ignore globs (gitignore syntax), on top of `.gitignore`, `.ignore` and `.acas/ignore`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub ignore: Option<Vec<String>>,
    /// Files larger than this many bytes are not parsed.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub max_file_size: Option<u64>,
    /// Checkers not to run on start or on save, because the editor shows their diagnostics
    /// already (rust-analyzer runs `cargo check`, tsserver `tsc`, Pylance `pyright`, the ESLint
    /// extension `eslint`). `acas.runCheckers` still runs them.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub skip_checkers: Option<Vec<String>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    Error,
    Warn,
    Info,
    Debug,
    Trace,
}

impl LogLevel {
    pub const ALL: [LogLevel; 5] =
        [LogLevel::Error, LogLevel::Warn, LogLevel::Info, LogLevel::Debug, LogLevel::Trace];

    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Error => "error",
            LogLevel::Warn => "warn",
            LogLevel::Info => "info",
            LogLevel::Debug => "debug",
            LogLevel::Trace => "trace",
        }
    }
}

/// One setting as the extension's `package.json` must declare it.
#[derive(Debug, Clone, PartialEq)]
pub struct SettingSpec {
    /// Key under `acas.`, camelCase as sent to the server.
    pub key: &'static str,
    /// JSON Schema type: `string`, `array`, `number`.
    pub json_type: &'static str,
    pub description: &'static str,
    /// Allowed values, for enumerations.
    pub values: Vec<&'static str>,
}

/// Every server setting, for checking `package.json` against this type.
pub fn specs() -> Vec<SettingSpec> {
    vec![
        SettingSpec {
            key: "logLevel",
            json_type: "string",
            description: "Log level of the ACAS server.",
            values: LogLevel::ALL.iter().map(|l| l.as_str()).collect(),
        },
        SettingSpec {
            key: "logToClient",
            json_type: "boolean",
            description: "Also send the server's log, at the log level, to the editor (window/logMessage).",
            values: Vec::new(),
        },
        SettingSpec {
            key: "ignore",
            json_type: "array",
            description: "Extra ignore globs (gitignore syntax), on top of .gitignore, .ignore and .acas/ignore.",
            values: Vec::new(),
        },
        SettingSpec {
            key: "maxFileSize",
            json_type: "number",
            description: "Files larger than this many bytes are not parsed.",
            values: Vec::new(),
        },
        SettingSpec {
            key: "skipCheckers",
            json_type: "array",
            description: "Checkers ACAS does not run on start or save because VS Code shows their diagnostics already. Left unset, the extension fills it from the installed extensions (rust-analyzer: cargo-check, clippy; TypeScript: tsc; Pylance: pyright; ESLint: eslint).",
            values: Vec::new(),
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_name_every_field() {
        let all = Settings {
            log_level: Some(LogLevel::Debug),
            log_to_client: Some(true),
            ignore: Some(vec![]),
            max_file_size: Some(1),
            skip_checkers: Some(vec![]),
        };
        let value = serde_json::to_value(all).unwrap();
        let mut fields: Vec<&str> = value.as_object().unwrap().keys().map(String::as_str).collect();
        fields.sort_unstable();
        let mut keys: Vec<&str> = specs().iter().map(|s| s.key).collect();
        keys.sort_unstable();
        assert_eq!(fields, keys);
    }
}

#[cfg(test)]
mod package_json {
    use std::path::Path;

    use serde_json::Value;

    /// Settings the extension declares for itself, which never reach the server.
    const EXTENSION_ONLY: &[&str] = &["acas.server.path"];

    #[test]
    fn the_extension_declares_exactly_the_server_settings() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../vscode-extension/package.json");
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let package: Value = serde_json::from_str(&text).unwrap();
        let properties = package["contributes"]["configuration"]["properties"]
            .as_object()
            .expect("contributes.configuration.properties");
        for spec in super::specs() {
            let key = format!("acas.{}", spec.key);
            let declared =
                properties.get(&key).unwrap_or_else(|| panic!("package.json does not declare `{key}`"));
            assert_eq!(declared["type"], spec.json_type, "type of `{key}`");
            if !spec.values.is_empty() {
                let values: Vec<&str> =
                    declared["enum"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
                assert_eq!(values, spec.values, "values of `{key}`");
            }
            let description = declared["description"].as_str().unwrap_or("");
            assert_eq!(description, spec.description, "description of `{key}`");
        }
        for key in properties.keys() {
            let known = EXTENSION_ONLY.contains(&key.as_str())
                || super::specs().iter().any(|s| key.strip_prefix("acas.") == Some(s.key));
            assert!(known, "package.json declares `{key}`, which the server's Settings type does not have");
        }
    }
}
