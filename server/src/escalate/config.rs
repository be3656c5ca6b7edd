//! Provider settings as they appear in `.acas/config.toml`, and building providers from them.
//!
//! ```toml
//! [[providers]]
//! name = "primary"
//! kind = "openai"              # anthropic | openai | gemini | command
//! base_url = "https://api.openai.com/v1"
//! model = "gpt-4o-mini"
//! api_key_env = "OPENAI_API_KEY"
//! timeout_secs = 60
//!
//! [[providers]]
//! name = "agent"
//! kind = "command"
//! command = ["claude", "-p"]
//! timeout_secs = 300
//! ```
//!
//! Reading the file is the `config` module's job; this one only defines the types (unknown keys
//! are errors) and turns one into a [`Provider`]. Keys are never in the file: `api_key_env` names
//! the environment variable that holds one. An OpenAI-compatible provider with its own
//! `base_url` and no `api_key_env` sends no key, so a local server never receives OpenAI's.

use std::time::Duration;

use serde::Deserialize;

use super::anthropic::{self, AnthropicProvider};
use super::command::{CommandProvider, CommandSettings};
use super::gemini::{self, GeminiProvider};
use super::http::HttpSettings;
use super::openai::{self, OpenAiProvider};
use super::provider::{Provider, ProviderError};
use super::redact::Redacting;

/// Default model per kind, used when `model` is not set.
pub const ANTHROPIC_MODEL: &str = "claude-haiku-4-5";
pub const OPENAI_MODEL: &str = "gpt-4o-mini";
pub const GEMINI_MODEL: &str = "gemini-2.5-flash";

/// Default timeouts, in seconds.
pub const HTTP_TIMEOUT_SECS: u64 = 60;
pub const IDLE_TIMEOUT_SECS: u64 = 30;
pub const COMMAND_TIMEOUT_SECS: u64 = 300;
/// Time a command has to exit after SIGTERM.
pub const COMMAND_GRACE: Duration = Duration::from_secs(2);

/// One `[[providers]]` entry, told apart by `kind`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum ProviderConfig {
    Anthropic(HttpProviderConfig),
    Openai(HttpProviderConfig),
    Gemini(HttpProviderConfig),
    Command(CommandProviderConfig),
}

/// Settings of an HTTP provider; what is left out takes the kind's default.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpProviderConfig {
    pub name: String,
    pub base_url: Option<String>,
    pub model: Option<String>,
    /// The environment variable holding the API key.
    pub api_key_env: Option<String>,
    pub timeout_secs: Option<u64>,
    /// Longest silence between two chunks of a streamed reply.
    pub idle_timeout_secs: Option<u64>,
}

/// Settings of a command provider.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommandProviderConfig {
    pub name: String,
    /// Program and arguments, run without a shell.
    pub command: Vec<String>,
    pub timeout_secs: Option<u64>,
}

impl ProviderConfig {
    pub fn name(&self) -> &str {
        match self {
            Self::Anthropic(config) | Self::Openai(config) | Self::Gemini(config) => &config.name,
            Self::Command(config) => &config.name,
        }
    }
}

/// Why a provider could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ConfigError {
    pub kind: ConfigErrorKind,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigErrorKind {
    /// The environment variable that should hold the API key is unset or empty.
    MissingKey,
    /// `command` is empty.
    EmptyCommand,
    /// `base_url` is not an http or https URL.
    InvalidBaseUrl,
    /// A timeout of zero.
    InvalidTimeout,
    /// The HTTP client could not be set up.
    Client,
}

impl ConfigError {
    fn new(kind: ConfigErrorKind, message: String) -> Self {
        Self { kind, message }
    }
}

/// The providers that API keys in the environment make available, in this order: Anthropic
/// (`ANTHROPIC_API_KEY`), OpenAI (`OPENAI_API_KEY`, with `OPENAI_BASE_URL` if set), Gemini
/// (`GEMINI_API_KEY`). Empty variables count as unset.
pub fn providers_from_env(env: &dyn Fn(&str) -> Option<String>) -> Vec<ProviderConfig> {
    let set = |name: &str| env(name).filter(|value| !value.trim().is_empty());
    let http = |name: &str, key_env: &str, base_url: Option<String>| HttpProviderConfig {
        name: name.to_owned(),
        base_url,
        model: None,
        api_key_env: Some(key_env.to_owned()),
        timeout_secs: None,
        idle_timeout_secs: None,
    };
    let mut providers = Vec::new();
    if set("ANTHROPIC_API_KEY").is_some() {
        providers.push(ProviderConfig::Anthropic(http("anthropic", "ANTHROPIC_API_KEY", None)));
    }
    if set("OPENAI_API_KEY").is_some() {
        providers.push(ProviderConfig::Openai(http("openai", "OPENAI_API_KEY", set("OPENAI_BASE_URL"))));
    }
    if set("GEMINI_API_KEY").is_some() {
        providers.push(ProviderConfig::Gemini(http("gemini", "GEMINI_API_KEY", None)));
    }
    providers
}

/// Builds the provider `config` describes, reading its key through `env`.
/// Builds the provider of `config`. Every provider built here redacts each request just before
/// sending it ([`Redacting`]), whatever its caller already removed.
pub fn build(
    config: &ProviderConfig,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Box<dyn Provider>, ConfigError> {
    Ok(Box::new(Redacting(build_unredacted(config, env)?)))
}

fn build_unredacted(
    config: &ProviderConfig,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Box<dyn Provider>, ConfigError> {
    let client_error = |error: ProviderError| ConfigError::new(ConfigErrorKind::Client, error.message);
    match config {
        ProviderConfig::Anthropic(http) => {
            let settings =
                http_settings(http, anthropic::BASE_URL, ANTHROPIC_MODEL, Some("ANTHROPIC_API_KEY"), env)?;
            Ok(Box::new(AnthropicProvider::new(settings).map_err(client_error)?))
        }
        ProviderConfig::Openai(http) => {
            // A custom base URL is another server: it gets no OpenAI key unless told which.
            let default_key = http.base_url.is_none().then_some("OPENAI_API_KEY");
            let settings = http_settings(http, openai::BASE_URL, OPENAI_MODEL, default_key, env)?;
            Ok(Box::new(OpenAiProvider::new(settings).map_err(client_error)?))
        }
        ProviderConfig::Gemini(http) => {
            let settings = http_settings(http, gemini::BASE_URL, GEMINI_MODEL, Some("GEMINI_API_KEY"), env)?;
            Ok(Box::new(GeminiProvider::new(settings).map_err(client_error)?))
        }
        ProviderConfig::Command(command) => {
            if command.command.first().is_none_or(|program| program.trim().is_empty()) {
                return Err(ConfigError::new(
                    ConfigErrorKind::EmptyCommand,
                    format!(
                        "provider `{}`: `command` is empty: give the program and its arguments, e.g. [\"claude\", \"-p\"]",
                        command.name
                    ),
                ));
            }
            let settings = CommandSettings {
                name: command.name.clone(),
                argv: command.command.clone(),
                timeout: timeout(&command.name, "timeout_secs", command.timeout_secs, COMMAND_TIMEOUT_SECS)?,
                grace: COMMAND_GRACE,
            };
            let provider = CommandProvider::new(settings)
                .map_err(|error| ConfigError::new(ConfigErrorKind::EmptyCommand, error.message))?;
            Ok(Box::new(provider))
        }
    }
}

fn http_settings(
    config: &HttpProviderConfig,
    default_base_url: &str,
    default_model: &str,
    default_key_env: Option<&str>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<HttpSettings, ConfigError> {
    let name = &config.name;
    let base_url = config.base_url.as_deref().unwrap_or(default_base_url).trim_end_matches('/');
    if !(base_url.starts_with("http://") || base_url.starts_with("https://")) {
        return Err(ConfigError::new(
            ConfigErrorKind::InvalidBaseUrl,
            format!("provider `{name}`: base_url `{base_url}` must start with http:// or https://"),
        ));
    }
    let api_key = match config.api_key_env.as_deref().or(default_key_env) {
        Some(variable) => match env(variable).filter(|key| !key.trim().is_empty()) {
            Some(key) => Some(key.trim().to_owned()),
            None => {
                return Err(ConfigError::new(
                    ConfigErrorKind::MissingKey,
                    format!(
                        "provider `{name}`: the environment variable {variable} is not set: set it to the API key"
                    ),
                ));
            }
        },
        None => None,
    };
    let timeout = timeout(name, "timeout_secs", config.timeout_secs, HTTP_TIMEOUT_SECS)?;
    let idle = self::timeout(name, "idle_timeout_secs", config.idle_timeout_secs, IDLE_TIMEOUT_SECS)?;
    Ok(HttpSettings {
        name: name.clone(),
        base_url: base_url.to_owned(),
        model: config.model.clone().unwrap_or_else(|| default_model.to_owned()),
        api_key,
        timeout,
        idle_timeout: idle.min(timeout),
    })
}

fn timeout(name: &str, key: &str, value: Option<u64>, default: u64) -> Result<Duration, ConfigError> {
    match value.unwrap_or(default) {
        0 => Err(ConfigError::new(
            ConfigErrorKind::InvalidTimeout,
            format!("provider `{name}`: {key} must be at least 1"),
        )),
        seconds => Ok(Duration::from_secs(seconds)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct File {
        providers: Vec<ProviderConfig>,
    }

    fn parse(text: &str) -> Result<Vec<ProviderConfig>, String> {
        toml::from_str::<File>(text).map(|file| file.providers).map_err(|e| e.message().to_owned())
    }

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let pairs: Vec<(String, String)> =
            pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |name| pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
    }

    #[test]
    fn the_documented_example_parses() {
        let providers = parse(
            r#"
[[providers]]
name = "primary"
kind = "openai"
base_url = "https://api.openai.com/v1"
model = "gpt-4o-mini"
api_key_env = "OPENAI_API_KEY"
timeout_secs = 60

[[providers]]
name = "agent"
kind = "command"
command = ["claude", "-p"]
timeout_secs = 300
"#,
        )
        .unwrap();
        assert_eq!(
            providers,
            vec![
                ProviderConfig::Openai(HttpProviderConfig {
                    name: "primary".into(),
                    base_url: Some("https://api.openai.com/v1".into()),
                    model: Some("gpt-4o-mini".into()),
                    api_key_env: Some("OPENAI_API_KEY".into()),
                    timeout_secs: Some(60),
                    idle_timeout_secs: None,
                }),
                ProviderConfig::Command(CommandProviderConfig {
                    name: "agent".into(),
                    command: vec!["claude".into(), "-p".into()],
                    timeout_secs: Some(300),
                }),
            ]
        );
    }

    #[test]
    fn unknown_keys_and_kinds_are_errors() {
        let error =
            parse("[[providers]]\nname = \"a\"\nkind = \"anthropic\"\napi_key = \"sk\"\n").unwrap_err();
        assert!(error.contains("unknown field `api_key`"), "{error}");
        let error = parse("[[providers]]\nname = \"a\"\nkind = \"cohere\"\n").unwrap_err();
        assert!(error.contains("unknown variant `cohere`"), "{error}");
        let error = parse("[[providers]]\nname = \"a\"\nkind = \"command\"\n").unwrap_err();
        assert!(error.contains("missing field `command`"), "{error}");
    }

    #[test]
    fn providers_come_from_the_keys_in_the_environment() {
        let env = env(&[
            ("OPENAI_API_KEY", "sk-o"),
            ("OPENAI_BASE_URL", "http://localhost:11434/v1"),
            ("GEMINI_API_KEY", " "),
        ]);
        let providers = providers_from_env(&env);
        assert_eq!(providers.iter().map(ProviderConfig::name).collect::<Vec<_>>(), vec!["openai"]);
        let ProviderConfig::Openai(openai) = &providers[0] else { panic!("{providers:?}") };
        assert_eq!(openai.base_url.as_deref(), Some("http://localhost:11434/v1"));
        let provider = build(&providers[0], &env).unwrap();
        assert_eq!((provider.name(), provider.model()), ("openai", OPENAI_MODEL));
    }

    #[test]
    fn a_missing_key_names_its_variable() {
        let config = parse("[[providers]]\nname = \"claude\"\nkind = \"anthropic\"\n").unwrap();
        let error = build(&config[0], &env(&[])).err().unwrap();
        assert_eq!(error.kind, ConfigErrorKind::MissingKey);
        assert_eq!(
            error.message,
            "provider `claude`: the environment variable ANTHROPIC_API_KEY is not set: set it to the API key"
        );
        let config =
            parse("[[providers]]\nname = \"g\"\nkind = \"gemini\"\napi_key_env = \"MY_KEY\"\n").unwrap();
        assert!(build(&config[0], &env(&[])).err().unwrap().message.contains("MY_KEY"));
    }

    #[test]
    fn a_local_openai_compatible_server_needs_no_key() {
        let config = parse(
            "[[providers]]\nname = \"ollama\"\nkind = \"openai\"\nbase_url = \"http://127.0.0.1:11434/v1\"\nmodel = \"qwen\"\n",
        )
        .unwrap();
        let provider = build(&config[0], &env(&[("OPENAI_API_KEY", "sk-secret")])).unwrap();
        assert_eq!(provider.model(), "qwen");
    }

    #[test]
    fn bad_values_are_reported() {
        let config = parse("[[providers]]\nname = \"x\"\nkind = \"command\"\ncommand = []\n").unwrap();
        assert_eq!(build(&config[0], &env(&[])).err().unwrap().kind, ConfigErrorKind::EmptyCommand);
        let config =
            parse("[[providers]]\nname = \"x\"\nkind = \"openai\"\nbase_url = \"localhost:8080\"\n").unwrap();
        assert_eq!(build(&config[0], &env(&[])).err().unwrap().kind, ConfigErrorKind::InvalidBaseUrl);
        let config =
            parse("[[providers]]\nname = \"x\"\nkind = \"command\"\ncommand = [\"a\"]\ntimeout_secs = 0\n")
                .unwrap();
        assert_eq!(build(&config[0], &env(&[])).err().unwrap().kind, ConfigErrorKind::InvalidTimeout);
    }
}
