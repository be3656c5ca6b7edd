//! Workspace configuration from `.acas/config.toml`.
//!
//! A missing file means defaults. A broken file never stops ACAS: [`load`] returns the defaults
//! together with a [`ConfigError`] that names the file, line and column, so that each front end
//! can show it (the CLI prints it, the server shows a message). Editor settings
//! ([`acas_protocol::Settings`]) override the file for one session.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::escalate::ProviderConfig;
use crate::escalate::cost::{Limits, Price, micros_from_usd};
use crate::escalate::rules::{Rule, RuleConfig};
pub use crate::escalate::settings::Escalation;
pub use crate::workflow::settings::WorkflowHistory;

/// Default size above which files are not parsed.
pub const DEFAULT_MAX_FILE_SIZE: u64 = 2 * 1024 * 1024;

/// The effective configuration of a workspace.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Files larger than this many bytes are skipped.
    pub max_file_size: u64,
    /// Extra ignore globs (gitignore syntax), on top of the ignore files.
    pub ignore: Vec<String>,
    /// How long activity rows are kept.
    pub retention: Duration,
    /// Quiet period after the last file-system event before it is handled.
    pub debounce: Duration,
    pub escalation: Escalation,
    pub webhooks: Webhooks,
    pub workflows: WorkflowHistory,
    pub lease: LeaseTimes,
    /// `[workflows] template_fuel`, `template_max_bytes` and `template_max_memory`: what one
    /// template render may do.
    pub templates: crate::workflow::template::TemplateLimits,
    /// `[[checkers]]`: the project's tools that report problems.
    pub checkers: crate::checkers::settings::CheckerSettings,
    /// `[store] url` and `user`: where the state a team shares lives (PostgreSQL), resolved by
    /// [`load_all`] with `ACAS_DATABASE_URL` and the repository's identity. `None`: everything
    /// stays in the workspace's SQLite.
    pub shared_store: Option<crate::store::SharedStore>,
    /// The `[store]` entries [`load_all`] resolves into [`Config::shared_store`].
    shared_url: Option<String>,
    shared_user: Option<String>,
}

/// `[webhooks]`: the local server that starts workflows with `on.webhook`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Webhooks {
    /// Port on 127.0.0.1; `None` (the default) serves no webhooks, 0 picks a free port.
    pub port: Option<u16>,
    /// Larger request bodies are refused with 413. Default: 1 MiB.
    pub max_body_bytes: usize,
    /// Connections open at once (`max_connections`). Default: 64.
    pub max_connections: usize,
    /// Time to send a request's headers, counted from when the connection opens or its last
    /// answer was sent, so it bounds idle keep-alive connections too (`header_timeout_ms`).
    /// Default: 5 s.
    pub header_timeout: Duration,
    /// Time to send a request's body once its headers arrived (`body_timeout_ms`). Default: 10 s.
    pub body_timeout: Duration,
    /// The slowest a request may arrive, in bytes per second (`min_body_bytes_per_sec`): a body
    /// that falls more than a second behind it gets 408, and at the connection limit the
    /// connection furthest below it makes room for a new one. Default: 16 KiB/s.
    pub min_body_rate: u64,
}

impl Default for Webhooks {
    fn default() -> Webhooks {
        Webhooks {
            port: None,
            max_body_bytes: 1024 * 1024,
            max_connections: 64,
            header_timeout: Duration::from_secs(5),
            body_timeout: Duration::from_secs(10),
            min_body_rate: 16 * 1024,
        }
    }
}

/// The shortest `[lease] heartbeat_ms`: shorter ones would keep the store busy with renewals.
pub const MIN_LEASE_HEARTBEAT_MS: u64 = 50;

/// `[lease]`: how the one process of a workspace that runs the shared work (triggers, the
/// outbox, webhooks, resuming runs, recording file events) says it is alive. The expiry is at
/// least 3 heartbeats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaseTimes {
    /// How often the holder renews the lease and the others try to take it
    /// (`heartbeat_ms`). Default: 2 s.
    pub heartbeat: Duration,
    /// A holder not heard of for this long has lost the lease (`expiry_ms`). Default: 15 s.
    pub expiry: Duration,
}

impl Default for LeaseTimes {
    fn default() -> LeaseTimes {
        LeaseTimes { heartbeat: Duration::from_secs(2), expiry: Duration::from_secs(15) }
    }
}

impl Default for Config {
    fn default() -> Config {
        Config {
            max_file_size: DEFAULT_MAX_FILE_SIZE,
            ignore: Vec::new(),
            retention: Duration::from_secs(30 * 24 * 3600),
            debounce: Duration::from_millis(50),
            escalation: Escalation::default(),
            webhooks: Webhooks::default(),
            workflows: WorkflowHistory::default(),
            lease: LeaseTimes::default(),
            templates: crate::workflow::template::TemplateLimits::default(),
            checkers: crate::checkers::settings::CheckerSettings::default(),
            shared_store: None,
            shared_url: None,
            shared_user: None,
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
    /// The mistake is in a `[[checkers]]` entry, which is left out; the rest of the file holds.
    pub checker: bool,
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
    #[serde(default)]
    providers: Vec<ProviderConfig>,
    budget: Option<BudgetSection>,
    #[serde(default)]
    pricing: std::collections::HashMap<String, Price>,
    #[serde(default)]
    rules: Vec<RuleConfig>,
    #[serde(default)]
    escalation: EscalationSection,
    #[serde(default)]
    webhooks: WebhooksSection,
    #[serde(default)]
    workflows: WorkflowsSection,
    #[serde(default)]
    lease: LeaseSection,
    /// Each entry is read on its own, so that one entry's mistake (an unknown field) does not
    /// hide the others'.
    #[serde(default)]
    checkers: Vec<toml::Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct LeaseSection {
    heartbeat_ms: Option<u64>,
    expiry_ms: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct WebhooksSection {
    port: Option<u16>,
    max_body_bytes: Option<usize>,
    max_connections: Option<usize>,
    header_timeout_ms: Option<u64>,
    body_timeout_ms: Option<u64>,
    min_body_bytes_per_sec: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct WorkflowsSection {
    keep_runs: Option<usize>,
    keep_days: Option<u64>,
    template_fuel: Option<u64>,
    template_max_bytes: Option<usize>,
    template_max_memory: Option<u64>,
    max_render_processes: Option<usize>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct BudgetSection {
    daily_usd: Option<f64>,
    monthly_usd: Option<f64>,
    /// What each user may spend (`[budget.per_user]`), the user being `[store] user` or git's
    /// `user.email`.
    per_user: Option<ProviderBudget>,
    #[serde(default)]
    providers: std::collections::HashMap<String, ProviderBudget>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProviderBudget {
    daily_usd: Option<f64>,
    monthly_usd: Option<f64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct EscalationSection {
    no_egress: Option<Vec<String>>,
    max_output_tokens: Option<u32>,
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
    /// The shared store, `postgres://…`; `ACAS_DATABASE_URL` wins over it.
    url: Option<String>,
    /// Who this workspace writes to the shared store as; default: git's `user.email`.
    user: Option<String>,
    /// The fraction of what each limit had left, when the shared store was last seen, that this
    /// workspace may spend while it cannot be reached.
    offline_share: Option<f64>,
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

/// The user's configuration file: `$XDG_CONFIG_HOME/acas/config.toml`, else
/// `~/.config/acas/config.toml`.
pub fn user_path() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))?;
    Some(base.join("acas").join("config.toml"))
}

/// Loads the configuration of the workspace at `root` over the user's. Never fails: on error
/// the defaults come back together with the first error.
pub fn load(root: &Path) -> (Config, Option<ConfigError>) {
    let (config, errors) = load_all(root);
    match errors.into_iter().next() {
        Some(error) => (Config::default(), Some(error)),
        None => (config, None),
    }
}

/// [`load`], with every mistake in the `[[checkers]]` entries rather than the first: the
/// configuration comes back with the entries that are right, and an error for each one that is
/// not. Any other mistake is the only error, with the defaults.
pub fn load_all(root: &Path) -> (Config, Vec<ConfigError>) {
    let user =
        user_path().map(|p| load_file(&p, Config::default())).unwrap_or((Config::default(), Vec::new()));
    let (base, mut errors) = match user {
        // A user file that cannot be read at all (another user's home, for one) is not this
        // workspace's problem: say so and go on without it.
        (_, errors)
            if errors.first().is_some_and(|e| e.line == 0 && e.message.starts_with("cannot read it")) =>
        {
            tracing::warn!("{}; going on without the user configuration", errors[0]);
            (Config::default(), Vec::new())
        }
        (config, errors) if errors.iter().all(|e| e.checker) => (config, errors),
        (_, errors) => return (Config::default(), errors),
    };
    let (mut config, more) = load_file(&path(root), base);
    if more.iter().any(|e| !e.checker) {
        return (config, more);
    }
    errors.extend(more);
    let env_url = std::env::var(crate::store::postgres::URL_ENV).ok();
    match crate::store::SharedStore::resolve(
        root,
        env_url.as_deref(),
        config.shared_url.as_deref(),
        config.shared_user.as_deref(),
    ) {
        Ok(shared) => {
            config.escalation.user = Some(match &shared {
                Some(shared) => shared.identity.user.clone(),
                None => crate::store::postgres::identity::user(config.shared_user.as_deref(), root),
            });
            config.escalation.shared_store = shared.clone();
            config.shared_store = shared;
        }
        Err(e) => {
            let from_env = env_url.is_some_and(|u| !u.trim().is_empty());
            let error = ConfigError {
                path: if from_env { PathBuf::from(crate::store::postgres::URL_ENV) } else { path(root) },
                line: 0,
                column: 0,
                message: e.to_string(),
                checker: false,
            };
            return (Config::default(), vec![error]);
        }
    }
    (config, errors)
}

fn load_file(path: &Path, base: Config) -> (Config, Vec<ConfigError>) {
    let path = path.to_path_buf();
    let text = match std::fs::read(&path) {
        Ok(bytes) => match String::from_utf8(bytes) {
            Ok(text) => text,
            Err(_) => {
                let error = ConfigError {
                    path,
                    line: 0,
                    column: 0,
                    message: "the file is not valid UTF-8; save it as UTF-8".to_owned(),
                    checker: false,
                };
                return (Config::default(), vec![error]);
            }
        },
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return (base, Vec::new()),
        Err(err) => {
            let error = ConfigError {
                path,
                line: 0,
                column: 0,
                message: format!("cannot read it: {err}"),
                checker: false,
            };
            return (Config::default(), vec![error]);
        }
    };
    let error = |offset: Option<usize>, message: String, checker: bool| {
        let (line, column) = offset.map(|o| line_column(&text, o)).unwrap_or((0, 0));
        ConfigError { path: path.clone(), line, column, message, checker }
    };
    match parse(&text, base) {
        Ok((config, mistakes)) => {
            (config, mistakes.into_iter().map(|(offset, message)| error(offset, message, true)).collect())
        }
        Err((offset, message)) => (Config::default(), vec![error(offset, message, false)]),
    }
}

/// The configuration, with the mistakes of the `[[checkers]]` entries left out of it; or the
/// first other mistake.
type Parsed = Result<(Config, Vec<(Option<usize>, String)>), (Option<usize>, String)>;

fn parse(text: &str, base: Config) -> Parsed {
    let file: File =
        toml::from_str(text).map_err(|e| (e.span().map(|s| s.start), e.message().trim().to_owned()))?;
    let defaults = base;
    let max_file_size = file.files.max_size.unwrap_or(defaults.max_file_size);
    if max_file_size == 0 {
        let at = text.find("max_size");
        return Err((at, "`files.max_size` must be greater than zero".to_owned()));
    }
    for (i, rule) in file.rules.iter().enumerate() {
        if let Err(error) = Rule::from_config(i, rule) {
            let at = text.match_indices("[[rules]]").nth(i).map(|(o, _)| o);
            return Err((at, error.to_string()));
        }
    }
    if file.workflows.keep_runs == Some(0) {
        let at = text.find("keep_runs");
        return Err((at, "`workflows.keep_runs` must be greater than zero".to_owned()));
    }
    if file.workflows.keep_days == Some(0) {
        let at = text.find("keep_days");
        return Err((at, "`workflows.keep_days` must be greater than zero".to_owned()));
    }
    if file.workflows.template_fuel == Some(0) || file.workflows.template_max_bytes == Some(0) {
        let at = text.find("template_");
        return Err((
            at,
            "`workflows.template_fuel` and `workflows.template_max_bytes` must be greater than zero"
                .to_owned(),
        ));
    }
    if file.workflows.template_max_memory.is_some_and(|m| m < 64 * 1024 * 1024) {
        let at = text.find("template_max_memory");
        return Err((at, "`workflows.template_max_memory` must be at least 67108864 (64 MiB)".to_owned()));
    }
    if file.workflows.max_render_processes == Some(0) {
        let at = text.find("max_render_processes");
        return Err((at, "`workflows.max_render_processes` must be at least 1".to_owned()));
    }
    let template_defaults = defaults.templates;
    let templates = crate::workflow::template::TemplateLimits {
        fuel: file.workflows.template_fuel.unwrap_or(template_defaults.fuel),
        max_bytes: file.workflows.template_max_bytes.unwrap_or(template_defaults.max_bytes),
        max_memory: file.workflows.template_max_memory.unwrap_or(template_defaults.max_memory),
        max_processes: file.workflows.max_render_processes.unwrap_or(template_defaults.max_processes),
    };
    let workflows = WorkflowHistory {
        keep_runs: file.workflows.keep_runs.unwrap_or(defaults.workflows.keep_runs),
        keep_age: file
            .workflows
            .keep_days
            .map(|days| Duration::from_secs(days.saturating_mul(24 * 3600)).min(crate::duration::MAX))
            .unwrap_or(defaults.workflows.keep_age),
    };
    let mut escalation = defaults.escalation.clone();
    if !file.providers.is_empty() {
        escalation.providers = file.providers;
    }
    if let Some(budget) = file.budget {
        let usd = |v: Option<f64>| v.map(micros_from_usd);
        if budget.daily_usd.is_some() {
            escalation.budget.workspace.daily = usd(budget.daily_usd);
        }
        if budget.monthly_usd.is_some() {
            escalation.budget.workspace.monthly = usd(budget.monthly_usd);
        }
        if let Some(limits) = budget.per_user {
            escalation.budget.per_user =
                Limits { daily: usd(limits.daily_usd), monthly: usd(limits.monthly_usd) };
        }
        for (name, limits) in budget.providers {
            escalation
                .budget
                .providers
                .insert(name, Limits { daily: usd(limits.daily_usd), monthly: usd(limits.monthly_usd) });
        }
    }
    escalation.pricing.extend(file.pricing);
    if !file.rules.is_empty() {
        escalation.rules = file.rules;
    }
    if let Some(no_egress) = file.escalation.no_egress {
        escalation.no_egress = no_egress;
    }
    if let Some(tokens) = file.escalation.max_output_tokens {
        escalation.max_output_tokens = tokens;
    }
    if let Some(share) = file.store.offline_share {
        if !(0.0..=1.0).contains(&share) {
            let at = text.find("offline_share");
            return Err((
                at,
                format!(
                    "`[store] offline_share` must be between 0 and 1 (a fraction of what each budget has left), not {share}"
                ),
            ));
        }
        escalation.offline_share = share;
    }
    let mut webhooks = defaults.webhooks.clone();
    if file.webhooks.port.is_some() {
        webhooks.port = file.webhooks.port;
    }
    if let Some(max) = file.webhooks.max_body_bytes {
        if max == 0 {
            let at = text.find("max_body_bytes");
            return Err((at, "`webhooks.max_body_bytes` must be greater than zero".to_owned()));
        }
        webhooks.max_body_bytes = max;
    }
    let positive = |value: Option<u64>, key: &str| match value {
        Some(0) => Err((
            text.find(key.rsplit('.').next().unwrap_or(key)),
            format!("`{key}` must be greater than zero"),
        )),
        other => Ok(other),
    };
    if let Some(max) = positive(file.webhooks.max_connections.map(|n| n as u64), "webhooks.max_connections")?
    {
        webhooks.max_connections = max as usize;
    }
    if let Some(ms) = positive(file.webhooks.header_timeout_ms, "webhooks.header_timeout_ms")? {
        webhooks.header_timeout = Duration::from_millis(ms);
    }
    if let Some(ms) = positive(file.webhooks.body_timeout_ms, "webhooks.body_timeout_ms")? {
        webhooks.body_timeout = Duration::from_millis(ms);
    }
    if let Some(rate) = positive(file.webhooks.min_body_bytes_per_sec, "webhooks.min_body_bytes_per_sec")? {
        webhooks.min_body_rate = rate;
    }
    let mut lease = defaults.lease;
    if let Some(ms) = positive(file.lease.heartbeat_ms, "lease.heartbeat_ms")? {
        if ms < MIN_LEASE_HEARTBEAT_MS {
            let at = text.find("heartbeat_ms");
            return Err((at, format!("`lease.heartbeat_ms` must be at least {MIN_LEASE_HEARTBEAT_MS}")));
        }
        lease.heartbeat = Duration::from_millis(ms);
    }
    if let Some(ms) = positive(file.lease.expiry_ms, "lease.expiry_ms")? {
        lease.expiry = Duration::from_millis(ms);
    }
    if lease.expiry < lease.heartbeat * 3 {
        let at = text.find("expiry_ms").or_else(|| text.find("heartbeat_ms"));
        return Err((at, "`lease.expiry_ms` must be at least 3 times `lease.heartbeat_ms`".to_owned()));
    }
    // The user's entries apply first, the workspace's over them.
    let mut checkers = defaults.checkers.clone();
    let mut named = std::collections::HashSet::new();
    let mut mistakes = Vec::new();
    for (i, raw) in file.checkers.into_iter().enumerate() {
        let at = || text.match_indices("[[checkers]]").nth(i).map(|(o, _)| o);
        let name = raw.get("name").and_then(toml::Value::as_str).map(str::to_owned);
        let entry = match raw.try_into::<crate::checkers::settings::EntryConfig>() {
            Ok(entry) => entry,
            Err(e) => {
                let what = match &name {
                    Some(name) => format!("checker `{name}`"),
                    None => format!("`[[checkers]]` entry {}", i + 1),
                };
                mistakes.push((at(), format!("{what}: {}", e.message().trim())));
                continue;
            }
        };
        let entry = match entry.check() {
            Ok(entry) => entry,
            Err(message) => {
                mistakes.push((at(), message));
                continue;
            }
        };
        if !named.insert(entry.name.clone()) {
            mistakes
                .push((at(), format!("checker `{}` is configured twice; merge the two entries", entry.name)));
            continue;
        }
        checkers.entries.push(entry);
    }
    let config = Config {
        max_file_size,
        ignore: if file.files.ignore.is_empty() { defaults.ignore } else { file.files.ignore },
        retention: file
            .store
            .retention_days
            .map(|days| Duration::from_secs(days * 24 * 3600))
            .unwrap_or(defaults.retention),
        debounce: file.watch.debounce_ms.map(Duration::from_millis).unwrap_or(defaults.debounce),
        escalation,
        webhooks,
        workflows,
        lease,
        templates,
        checkers,
        shared_store: None,
        shared_url: file.store.url.or(defaults.shared_url),
        shared_user: file.store.user.or(defaults.shared_user),
    };
    Ok((config, mistakes))
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
        let (mut config, error) = load(dir.path());
        assert_eq!(error, None);
        // The user who asks is always known (git's `user.email`, else `$USER`).
        assert!(config.escalation.user.take().is_some());
        assert_eq!(config, Config::default());
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
    fn escalation_sections_are_read_and_checked() {
        let (config, error) = load_text(
            r#"
[[providers]]
name = "primary"
kind = "openai"
base_url = "http://127.0.0.1:9/v1"
model = "gpt-4o-mini"
api_key_env = "OPENAI_API_KEY"

[budget]
daily_usd = 2.0
monthly_usd = 30.0
[budget.per_user]
monthly_usd = 5.0
[budget.providers.primary]
daily_usd = 0.5

[pricing."my-model"]
input = 1.0
output = 2.0

[[rules]]
category = "type"
persists = "10s"

[escalation]
no_egress = ["secrets/**"]
"#,
        );
        assert_eq!(error, None);
        let e = &config.escalation;
        assert_eq!(e.providers.len(), 1);
        assert_eq!(e.providers[0].name(), "primary");
        assert_eq!(e.budget.workspace.daily, Some(2_000_000));
        assert_eq!(e.budget.providers["primary"].daily, Some(500_000));
        assert_eq!((e.budget.per_user.daily, e.budget.per_user.monthly), (None, Some(5_000_000)));
        assert_eq!(e.pricing["my-model"].output, 2.0);
        assert_eq!(e.rules().len(), 1);
        assert_eq!(e.no_egress, vec!["secrets/**".to_owned()]);

        let (_, error) = load_text("[[rules]]\ncategory = \"type\"\n\n[[rules]]\npersists = \"later\"\n");
        let error = error.unwrap();
        assert_eq!((error.line, error.column), (4, 1));
        assert!(error.message.starts_with("rule 2: `persists`"), "{}", error.message);

        let (_, error) = load_text("[[providers]]\nname = \"x\"\nkind = \"mystery\"\n");
        assert!(error.unwrap().message.contains("mystery"));
    }

    #[test]
    fn checker_entries_are_kept_and_their_mistakes_located() {
        let (config, error) = load_text(
            "[[checkers]]\nname = \"clippy\"\nenabled = false\n\n[[checkers]]\nname = \"lint\"\ncommand = \"make lint\"\nformat = \"go\"\n",
        );
        assert!(error.is_none(), "{error:?}");
        let names: Vec<&str> = config.checkers.entries.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["clippy", "lint"]);

        let (_, error) =
            load_text("[[checkers]]\nname = \"a\"\n\n[[checkers]]\nname = \"b\"\nformat = \"nope\"\n");
        let error = error.unwrap();
        assert_eq!((error.line, error.column), (4, 1));
        assert!(error.message.contains("unknown format `nope`"), "{}", error.message);

        let (_, error) = load_text("[[checkers]]\nname = \"a\"\n[[checkers]]\nname = \"a\"\n");
        assert!(error.unwrap().message.contains("configured twice"));
    }

    #[test]
    fn webhooks_section_is_read_and_checked() {
        let (config, error) = load_text("[webhooks]\nport = 0\nmax_body_bytes = 4096\n");
        assert_eq!(error, None);
        assert_eq!(config.webhooks, Webhooks { port: Some(0), max_body_bytes: 4096, ..Webhooks::default() });
        assert_eq!(load_text("").0.webhooks, Webhooks::default());

        let check = |text: &str, at: (usize, usize), message: &str| {
            let error = load_text(text).1.unwrap();
            assert_eq!((error.line, error.column), at, "{text}");
            assert!(error.message.contains(message), "{}", error.message);
        };
        check("[webhooks]\nport = 70000\n", (2, 8), "invalid value");
        check("[webhooks]\nport = \"8080\"\n", (2, 8), "invalid type");
        check(
            "[webhooks]\nmax_body_bytes = 0\n",
            (2, 1),
            "`webhooks.max_body_bytes` must be greater than zero",
        );
        check("[webhooks]\nsecret = \"x\"\n", (2, 1), "unknown field `secret`");
        check(
            "[webhooks]\nmax_connections = 0\n",
            (2, 1),
            "`webhooks.max_connections` must be greater than zero",
        );

        check(
            "[webhooks]\nmin_body_bytes_per_sec = 0\n",
            (2, 1),
            "`webhooks.min_body_bytes_per_sec` must be greater than zero",
        );

        let text = "[webhooks]\nmax_connections = 8\nheader_timeout_ms = 250\nbody_timeout_ms = 500\n\
                    min_body_bytes_per_sec = 100\n";
        let webhooks = load_text(text).0.webhooks;
        assert_eq!(
            (
                webhooks.max_connections,
                webhooks.header_timeout,
                webhooks.body_timeout,
                webhooks.min_body_rate
            ),
            (8, Duration::from_millis(250), Duration::from_millis(500), 100)
        );
    }

    #[test]
    fn lease_section_is_read_and_checked() {
        assert_eq!(load_text("").0.lease, LeaseTimes::default());
        let (config, error) = load_text("[lease]\nheartbeat_ms = 100\nexpiry_ms = 1000\n");
        assert_eq!(error, None);
        assert_eq!(
            config.lease,
            LeaseTimes { heartbeat: Duration::from_millis(100), expiry: Duration::from_millis(1000) }
        );
        let error = load_text("[lease]\nheartbeat_ms = 100\nexpiry_ms = 299\n").1.unwrap();
        assert_eq!(
            (error.line, error.column, error.message.as_str()),
            (3, 1, "`lease.expiry_ms` must be at least 3 times `lease.heartbeat_ms`")
        );
        assert_eq!(load_text("[lease]\nheartbeat_ms = 100\nexpiry_ms = 300\n").1, None);
        let error = load_text("[lease]\nheartbeat_ms = 1\nexpiry_ms = 2\n").1.unwrap();
        assert_eq!((error.line, error.message.as_str()), (2, "`lease.heartbeat_ms` must be at least 50"));
        let error = load_text("[lease]\nheartbeat_ms = 0\n").1.unwrap();
        assert_eq!(error.message, "`lease.heartbeat_ms` must be greater than zero");
    }

    #[test]
    fn template_limits_are_read_and_checked() {
        let (config, error) = load_text("[workflows]\ntemplate_fuel = 5000\ntemplate_max_bytes = 4096\n");
        assert_eq!(error, None);
        assert_eq!(
            config.templates,
            crate::workflow::template::TemplateLimits { fuel: 5000, max_bytes: 4096, ..Default::default() }
        );
        let (config, error) = load_text("[workflows]\ntemplate_max_memory = 1073741824\n");
        assert_eq!(error, None);
        assert_eq!(config.templates.max_memory, 1 << 30);
        let (config, error) = load_text("[workflows]\nmax_render_processes = 2\n");
        assert!(error.is_none(), "{error:?}");
        assert_eq!(config.templates.max_processes, 2);
        let (_, error) = load_text("[workflows]\nmax_render_processes = 0\n");
        assert!(error.is_some_and(|e| e.message.contains("max_render_processes")));
        let (_, error) = load_text("[workflows]\ntemplate_max_memory = 1000\n");
        assert!(error.unwrap().message.contains("at least 67108864"));
        let (config, error) = load_text("[workflows]\ntemplate_fuel = 0\n");
        assert_eq!(config, Config::default());
        assert!(error.unwrap().message.contains("must be greater than zero"));
        // A huge `keep_days` is capped, not wrapped.
        let (config, error) = load_text("[workflows]\nkeep_days = 9223372036854775807\n");
        assert_eq!(error, None);
        assert_eq!(config.workflows.keep_age, crate::duration::MAX);
    }

    #[test]
    fn workflow_history_is_read_and_checked() {
        let (config, error) = load_text("[workflows]\nkeep_runs = 5\nkeep_days = 2\n");
        assert_eq!(error, None);
        assert_eq!(
            config.workflows,
            WorkflowHistory { keep_runs: 5, keep_age: Duration::from_secs(2 * 24 * 3600) }
        );
        assert_eq!(Config::default().workflows.keep_runs, 100);

        let (config, error) = load_text("[workflows]\nkeep_runs = 0\n");
        assert_eq!(config, Config::default());
        let error = error.unwrap();
        assert_eq!(
            (error.line, error.column, error.message.as_str()),
            (2, 1, "`workflows.keep_runs` must be greater than zero")
        );
        let (_, error) = load_text("[workflows]\nkeep_days = -1\n");
        assert_eq!(error.unwrap().line, 2);
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
