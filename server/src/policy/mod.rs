//! What agents and ACAS's own runs may do in a workspace: `.acas/policy.yaml` over the user's
//! `$XDG_CONFIG_HOME/acas/policy.yaml`, with a `defaults` section and per-agent sections.
//!
//! [`Policy::decide`] says of one [`Action`] (a path to change, a command to run, a workflow
//! action, a host to reach, a workflow to start, a spend) whether it is allowed, denied or needs
//! a person's approval, naming the rule (`file:line: text`) that decided. Each file is judged
//! on its own and the strictest verdict wins (deny, then needs approval, then allow), so a
//! workspace's file can narrow the user's but never waive it. Within a file a deny rule in any
//! section that applies wins; otherwise the most specific section with a matching rule decides
//! (an agent's own section, then `"*"`, then `defaults`); an `allow` list that matches nothing
//! denies. Without a policy file everything is allowed, as before policies existed; a policy
//! file that is empty, holds no mapping or does not parse denies everything until it is fixed,
//! unless this process read a good version of it before (`cache`).
//!
//! `approvals` keeps the approvals a decision asks for in the store and records every decision
//! in the audit log. It does not know who asks a person (the editor and the command line do),
//! and it does not run anything: callers ask before they act.

pub mod approvals;
pub mod cache;
mod command;
pub mod guard;
pub mod parse;
mod paths;
mod shell;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use globset::{Glob, GlobBuilder, GlobMatcher};
use serde::Serialize;

pub use approvals::{Answer, Pending};
use cache::Loaded;
pub use command::risky_env;

/// The workspace's policy file, relative to its root.
pub const WORKSPACE_FILE: &str = ".acas/policy.yaml";

/// How long an approval waits for a person when the policy names no `approval_timeout`.
pub const DEFAULT_APPROVAL_TIMEOUT: Duration = Duration::from_secs(600);

/// What a policy rule is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    Paths,
    Commands,
    Actions,
    Hosts,
    Workflows,
}

impl Category {
    fn from_key(key: &str) -> Option<Category> {
        Some(match key {
            "paths" => Category::Paths,
            "commands" => Category::Commands,
            "actions" => Category::Actions,
            "hosts" => Category::Hosts,
            "workflows" => Category::Workflows,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Category::Paths => "paths",
            Category::Commands => "commands",
            Category::Actions => "actions",
            Category::Hosts => "hosts",
            Category::Workflows => "workflows",
        }
    }
}

/// Where a command starts.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Start {
    /// Its working directory, relative to the workspace root or absolute; the root when `None`.
    pub dir: Option<String>,
    /// Whether `CDPATH` is set in its environment: a `cd NAME` may then go anywhere.
    pub cdpath: bool,
}

impl Start {
    /// The directory in a few words, as [`Action::describe`] adds it: nothing for the root.
    fn suffix(&self) -> String {
        match self.dir.as_deref().map(|d| d.trim_end_matches('/')) {
            None | Some("" | ".") => String::new(),
            Some(dir) => format!(" in {dir}"),
        }
    }
}

/// What is about to happen.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// A file is created, changed or removed: workspace-relative or absolute.
    Write { path: String },
    /// What `from` holds now arrives at `path` (a move or a copy): judged as `path` and, when
    /// `from` is a directory, as each path beneath it re-rooted under `path`, so a move to a
    /// directory that does not exist yet is judged as what it creates.
    Arrive { path: String, from: String },
    /// A command runs with this working directory (workspace-relative or absolute): judged as a
    /// file the command may write there, so outside the workspace is denied.
    Directory { path: String },
    /// A program runs with these arguments, from `start`.
    Command { argv: Vec<String>, start: Start },
    /// A shell script runs (`sh -c`) from `start`: each of its commands is judged, relative paths
    /// from the directory the shell would be in by then.
    Shell { script: String, start: Start },
    /// A command runs with these environment variables set: those that change what a program
    /// executes are judged by the commands rules.
    Environment { vars: Vec<(String, String)> },
    /// A workflow action (`file.write`, `http.request`...) runs.
    WorkflowAction { kind: String },
    /// An HTTP request goes to this host.
    Http { host: String },
    /// A workflow is started by name.
    Workflow { name: String },
    /// AI spend: what the agent's request may cost, on top of what was spent today in the
    /// workspace (`today_usd`) and for this agent (`agent_today_usd`), in USD.
    Spend { today_usd: f64, agent_today_usd: f64, request_usd: f64 },
}

impl Action {
    /// The action in a few words, as decision records and messages show it.
    pub fn describe(&self) -> String {
        match self {
            Action::Write { path } => format!("write {path}"),
            Action::Arrive { path, from } => format!("write {path} with what {from} holds"),
            Action::Directory { path } => format!("run in {path}"),
            Action::Command { argv, start } => format!("run `{}`{}", argv.join(" "), start.suffix()),
            Action::Shell { script, start } => format!("run `{}`{}", script.trim(), start.suffix()),
            Action::Environment { vars } => {
                let names: Vec<&str> = vars.iter().map(|(name, _)| name.as_str()).collect();
                format!("run with environment {}", names.join(", "))
            }
            Action::WorkflowAction { kind } => format!("action {kind}"),
            Action::Http { host } => format!("http {host}"),
            Action::Workflow { name } => format!("workflow {name}"),
            Action::Spend { today_usd, agent_today_usd, request_usd } => format!(
                "spend up to ${request_usd:.4} (${agent_today_usd:.4} spent today by the agent, ${today_usd:.4} in \
                 the workspace)"
            ),
        }
    }
}

impl Action {
    /// Whether judging it goes through paths of the workspace (a file written, a working
    /// directory, a redirection, a program written as a path): a directory swapped for a link
    /// between the decision and the act would make it act elsewhere, so callers keep anything
    /// else they run from changing the workspace in between.
    pub fn judges_paths(&self, root: &Path) -> bool {
        match self {
            Action::Write { .. } | Action::Arrive { .. } | Action::Directory { .. } => true,
            Action::Command { argv, start } => command::argv_judges_paths(root, argv, start),
            Action::Shell { script, start } => command::script_judges_paths(root, script, start),
            Action::Environment { .. }
            | Action::WorkflowAction { .. }
            | Action::Http { .. }
            | Action::Workflow { .. }
            | Action::Spend { .. } => false,
        }
    }
}

/// What a decision says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Allow,
    NeedsApproval,
    Deny,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Allow => "allow",
            Outcome::NeedsApproval => "needs_approval",
            Outcome::Deny => "deny",
        }
    }
}

/// Where a rule is written: the file, its 1-based line and column, and the line's text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Location {
    pub file: PathBuf,
    pub line: u32,
    pub column: u32,
    pub text: String,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.file.display(), self.line, self.text)
    }
}

/// The answer of [`Policy::decide`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Decision {
    pub outcome: Outcome,
    /// The agent as the policy saw it (lower case).
    pub agent: String,
    /// [`Action::describe`].
    pub action: String,
    /// The rule that decided; `None` when none did (no policy file, nothing matched).
    pub rule: Option<Location>,
    pub reason: String,
}

impl Decision {
    /// The refusal an agent or a run is shown: what was denied, by which rule, what to change.
    pub fn refusal(&self) -> String {
        let rule = match &self.rule {
            Some(rule) => format!(" by {rule}"),
            None => String::new(),
        };
        format!(
            "policy denies {} to {}{rule}: {}; change the policy file (acas policy explain shows the rule) or ask \
             for another action",
            self.action, self.agent, self.reason
        )
    }
}

/// A problem in a policy file, at a 1-based line and column.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    pub line: u32,
    pub column: u32,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyErrorKind {
    /// The file does not parse or does not follow the schema.
    Invalid,
    /// The file cannot be read.
    Unreadable,
    /// The store (approvals, the audit log) failed.
    Store,
    /// An approval is not pending (answered, expired, unknown).
    NotPending,
    /// Asked from inside a workflow run, which cannot answer approvals.
    InsideRun,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PolicyError {
    pub kind: PolicyErrorKind,
    pub file: PathBuf,
    pub problems: Vec<Problem>,
}

impl PolicyError {
    fn other(kind: PolicyErrorKind, file: &Path, message: String) -> PolicyError {
        PolicyError {
            kind,
            file: file.to_path_buf(),
            problems: vec![Problem { line: 0, column: 0, message }],
        }
    }
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let each: Vec<String> = self
            .problems
            .iter()
            .map(|p| {
                if p.line == 0 {
                    format!("{}: {}", self.file.display(), p.message)
                } else {
                    format!("{}:{}:{}: {}", self.file.display(), p.line, p.column, p.message)
                }
            })
            .collect();
        f.write_str(&each.join("; "))
    }
}

impl std::error::Error for PolicyError {}

/// One pattern of a rule list, and where it is written.
#[derive(Debug, Clone)]
pub struct Rule {
    pub pattern: String,
    pub at: Location,
    matcher: Matcher,
}

#[derive(Debug, Clone)]
enum Matcher {
    /// A glob, compiled as written and folded to lower case (deny and approve match either).
    Glob { exact: Box<LazyGlob>, folded: Box<LazyGlob> },
    /// A command's leading words.
    Words(Vec<String>),
}

/// A glob checked when the file is read and compiled the first time something is matched
/// against it on its own: a list's globs are usually matched through their [`RuleSets`], so a
/// file of thousands of globs is not compiled twice over when it is read.
#[derive(Debug, Clone)]
pub struct LazyGlob {
    glob: Glob,
    compiled: std::sync::OnceLock<GlobMatcher>,
}

impl LazyGlob {
    fn is_match(&self, text: &str) -> bool {
        self.compiled.get_or_init(|| self.glob.compile_matcher()).is_match(text)
    }
}

fn glob(pattern: &str, literal_separator: bool, fold: bool) -> Result<Box<LazyGlob>, String> {
    GlobBuilder::new(pattern)
        .literal_separator(literal_separator)
        .case_insensitive(fold)
        .backslash_escape(true)
        .build()
        .map(|glob| Box::new(LazyGlob { glob, compiled: std::sync::OnceLock::new() }))
        .map_err(|e| format!("`{pattern}` is not a glob: {}; fix the pattern", e.kind()))
}

fn has_glob(pattern: &str) -> bool {
    pattern.contains(['*', '?', '[', '{'])
}

impl Rule {
    fn new(category: Category, pattern: &str, at: Location) -> Result<Rule, String> {
        let pattern = pattern.trim();
        let matcher = match category {
            Category::Paths => {
                let normal = pattern.trim_start_matches("./");
                if normal.starts_with('/') {
                    return Err(format!(
                        "`{pattern}` is absolute; path patterns are relative to the workspace root"
                    ));
                }
                if normal.split('/').any(|part| part == "..") {
                    return Err(format!(
                        "`{pattern}` has `..`; path patterns match paths inside the workspace, written from its root"
                    ));
                }
                let mut full = if normal.contains('/') { normal.to_owned() } else { format!("**/{normal}") };
                if full.ends_with('/') {
                    full.push_str("**");
                }
                Matcher::Glob { exact: glob(&full, true, false)?, folded: glob(&full, true, true)? }
            }
            Category::Commands if !has_glob(pattern) => {
                let words: Vec<String> = pattern.split_whitespace().map(str::to_owned).collect();
                if words.is_empty() {
                    return Err("an empty command pattern".to_owned());
                }
                Matcher::Words(words)
            }
            Category::Hosts => {
                let host = pattern.to_ascii_lowercase();
                let host = host.trim_end_matches('.');
                if host.contains(['/', ':']) {
                    return Err(format!(
                        "`{pattern}` is not a host name; write it without scheme, port or path"
                    ));
                }
                Matcher::Glob { exact: glob(host, false, true)?, folded: glob(host, false, true)? }
            }
            _ => Matcher::Glob { exact: glob(pattern, false, false)?, folded: glob(pattern, false, true)? },
        };
        Ok(Rule { pattern: pattern.to_owned(), at, matcher })
    }

    /// Whether the rule matches `subject`; `folded` matches regardless of case.
    fn matches(&self, subject: &Subject<'_>, folded: bool) -> bool {
        match (&self.matcher, subject) {
            (Matcher::Glob { exact, folded: f }, Subject::Text(text)) => {
                if folded {
                    f.is_match(text)
                } else {
                    exact.is_match(text)
                }
            }
            // Command patterns are matched by `command`, by what would run.
            (Matcher::Words(_), Subject::Text(_)) => false,
        }
    }
}

enum Subject<'a> {
    Text(&'a str),
}

/// A category's rules in one section.
#[derive(Debug, Clone, Default)]
pub struct RuleList {
    /// `None`: the section does not restrict this category to a list.
    pub allow: Option<Vec<Rule>>,
    pub deny: Vec<Rule>,
    pub approve: Vec<Rule>,
    /// Each list's globs as one set, built on first use.
    sets: RuleSets,
}

/// The globs of a rule list compiled together (`globset::GlobSet`): one pass over a subject
/// finds every rule of the list that matches it, however many there are. Built the first time
/// the list judges a subject that is a single text (a path, a host, an action or workflow name),
/// then kept with the parsed file.
#[derive(Debug, Clone, Default)]
struct RuleSets {
    allow: std::sync::OnceLock<Option<globset::GlobSet>>,
    deny: std::sync::OnceLock<Option<globset::GlobSet>>,
    approve: std::sync::OnceLock<Option<globset::GlobSet>>,
}

/// The first rule of `rules` that matches `text`, through `set` (built from the rules' globs on
/// first use); rule by rule when a rule is not a glob or the set cannot be built.
fn first_match<'r>(
    rules: &'r [Rule],
    set: &std::sync::OnceLock<Option<globset::GlobSet>>,
    text: &str,
    folded: bool,
) -> Option<&'r Rule> {
    let set = set.get_or_init(|| {
        let mut builder = globset::GlobSetBuilder::new();
        for rule in rules {
            let Matcher::Glob { exact, folded: f } = &rule.matcher else { return None };
            builder.add(if folded { f.glob.clone() } else { exact.glob.clone() });
        }
        builder.build().ok()
    });
    match set {
        Some(set) => set.matches(text).first().map(|&i| &rules[i]),
        None => rules.iter().find(|r| r.matches(&Subject::Text(text), folded)),
    }
}

impl RuleList {
    fn first_deny(&self, subject: &Subject<'_>) -> Option<&Rule> {
        let Subject::Text(text) = subject;
        first_match(&self.deny, &self.sets.deny, text, true)
    }

    fn first_approve(&self, subject: &Subject<'_>) -> Option<&Rule> {
        let Subject::Text(text) = subject;
        first_match(&self.approve, &self.sets.approve, text, true)
    }

    fn first_allow(&self, subject: &Subject<'_>) -> Option<&Rule> {
        let allow = self.allow.as_deref()?;
        let Subject::Text(text) = subject;
        first_match(allow, &self.sets.allow, text, false)
    }
}

/// A spend limit.
#[derive(Debug, Clone)]
pub struct Spend {
    pub daily_usd: f64,
    pub rule: Location,
}

/// `defaults` or one agent's section.
#[derive(Debug, Clone, Default)]
pub struct Section {
    pub lists: BTreeMap<Category, RuleList>,
    pub spend: Option<Spend>,
}

/// One policy file, parsed.
#[derive(Debug, Clone, Default)]
pub struct Sections {
    pub file: PathBuf,
    pub defaults: Option<Section>,
    /// Agents by normalised name (`*` included), in file order.
    pub agents: Vec<(String, Section)>,
    pub approval_timeout: Option<Duration>,
}

/// An agent's name as policies compare it: trimmed, lower case.
pub fn normalize_agent(name: &str) -> String {
    name.trim().to_lowercase()
}

/// The name an MCP client is judged by: its `clientInfo.name`, except that it cannot pass for
/// ACAS's own starts (`editor`, `cli`, `workflow`) or for every agent (`*`): those, and an
/// empty name, become `unknown agent`.
pub fn agent_from_client(name: &str) -> String {
    let normal = normalize_agent(name);
    if normal.is_empty() || normal == "*" || parse::RESERVED_AGENTS.contains(&normal.as_str()) {
        "unknown agent".to_owned()
    } else {
        normal
    }
}

/// The policy of a workspace: its file and the user's, or why one could not be read.
#[derive(Debug, Clone)]
pub struct Policy {
    /// The canonical workspace root.
    root: PathBuf,
    /// In force, the workspace's file first, then the user's; each is judged on its own and the
    /// strictest verdict wins.
    files: Vec<Arc<Sections>>,
    /// For each file, the root its patterns are written from when it is not this workspace's:
    /// the files of the run whose step started this process (see [`guard`]).
    roots: Vec<Option<PathBuf>>,
    error: Option<PolicyError>,
    /// Files that are broken now and judged by the version this process read before they broke.
    stale: Vec<PolicyError>,
}

/// The user's policy file: `$XDG_CONFIG_HOME/acas/policy.yaml`, else `~/.config/acas/policy.yaml`.
pub fn user_path() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))?;
    Some(base.join("acas").join("policy.yaml"))
}

/// Whether `path` is the workspace's policy file.
pub fn is_policy_file(root: &Path, path: &Path) -> bool {
    path == root.join(WORKSPACE_FILE)
}

/// Reads and parses one policy file (through the cache: an unchanged file is not read or
/// compiled again); `Ok(None)` when there is none.
pub fn read_file(path: &Path) -> Result<Option<Arc<Sections>>, PolicyError> {
    match cache::load(path) {
        Loaded::Absent => Ok(None),
        Loaded::Good(sections) => Ok(Some(sections)),
        Loaded::Broken { error, .. } => Err(error),
    }
}

/// What one file said of an action, for `acas policy explain`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Verdict {
    pub file: PathBuf,
    pub decision: Decision,
}

impl Policy {
    /// The workspace's policy and the user's. Never fails: a file that cannot be used makes a
    /// policy that denies everything and says why, unless this process read a good version of
    /// it before (that version stays in force, and decisions say so).
    ///
    /// In a process a workflow step started (`acas workflow run` in a step, `acas mcp`...), the
    /// files the run was judged by when the step started apply too, each from the run's
    /// workspace root, whatever this process's environment or workspace: a nested run cannot
    /// shed the user's file by unsetting `HOME`, nor the workspace's by naming another
    /// `--workspace`. One of them that changed since the step started denies everything.
    pub fn load(root: &Path) -> Policy {
        guard::hold();
        let mut policy = Policy::load_from(root, user_path().as_deref());
        policy.inherit(&guard::inherited());
        policy
    }

    /// Adds the files `pins` name, judged from their own roots, each only as it was pinned.
    fn inherit(&mut self, pins: &[crate::process_tree::PinnedFile]) {
        for pin in pins {
            // This process read the same file by itself: the pinned content replaces it.
            if let Some(at) = self.files.iter().position(|f| f.file == pin.path)
                && self.roots[at].as_deref().unwrap_or(&self.root) == pin.root
            {
                self.files.remove(at);
                self.roots.remove(at);
            }
            match cache::load_pinned(&pin.path, pin.sha256.as_deref()) {
                Loaded::Absent => {}
                Loaded::Good(sections) => {
                    let root = (pin.root != self.root).then(|| pin.root.clone());
                    self.files.push(sections);
                    self.roots.push(root);
                }
                Loaded::Broken { error, .. } => {
                    self.error.get_or_insert(error);
                }
            }
        }
    }

    /// [`Policy::load`] with the user's file given.
    pub fn load_from(root: &Path, user: Option<&Path>) -> Policy {
        let root = root.canonicalize().unwrap_or_else(|_| root.to_path_buf());
        let mut files = Vec::new();
        let mut error = None;
        let mut stale = Vec::new();
        for path in std::iter::once(root.join(WORKSPACE_FILE)).chain(user.map(Path::to_path_buf)) {
            match cache::load(&path) {
                Loaded::Good(sections) => files.push(sections),
                Loaded::Absent => {}
                Loaded::Broken { error: e, last_good: Some((sections, _)) } => {
                    files.push(sections);
                    stale.push(e);
                }
                Loaded::Broken { error: e, last_good: None } => {
                    error.get_or_insert(e);
                }
            }
        }
        let roots = vec![None; files.len()];
        Policy { root, files, roots, error, stale }
    }

    /// A policy from files already parsed (the workspace's first), for tests.
    pub fn from_sections(root: &Path, files: Vec<Sections>) -> Policy {
        Policy {
            root: root.to_path_buf(),
            roots: vec![None; files.len()],
            files: files.into_iter().map(Arc::new).collect(),
            error: None,
            stale: Vec::new(),
        }
    }

    /// Whether there is no policy file at all (everything is allowed, nothing recorded).
    pub fn is_absent(&self) -> bool {
        self.files.is_empty() && self.error.is_none()
    }

    /// Why the policy denies everything, when a file could not be used.
    pub fn error(&self) -> Option<&PolicyError> {
        self.error.as_ref()
    }

    /// The files that are broken now and judged by their last good version.
    pub fn stale(&self) -> &[PolicyError] {
        &self.stale
    }

    /// The files in force, the workspace's first.
    pub fn files(&self) -> Vec<&Path> {
        self.files.iter().map(|s| s.file.as_path()).collect()
    }

    /// How long an approval waits for a person.
    pub fn approval_timeout(&self) -> Duration {
        self.files.iter().find_map(|s| s.approval_timeout).unwrap_or(DEFAULT_APPROVAL_TIMEOUT)
    }

    /// The sections of one file that apply to `agent`, most specific first: its own, `"*"`,
    /// then `defaults`.
    fn chain<'s>(file: &'s Sections, agent: &str) -> Vec<&'s Section> {
        let mut chain = Vec::new();
        for name in [agent, "*"] {
            if let Some((_, section)) = file.agents.iter().find(|(n, _)| n == name) {
                chain.push(section);
            }
        }
        chain.extend(file.defaults.as_ref());
        chain
    }

    /// What the policy says of `agent` doing `action`: each file is judged on its own and the
    /// strictest verdict wins (deny, then needs approval, then allow), so the workspace's file
    /// can narrow what the user's allows but never waive its allow lists, approvals or denies.
    pub fn decide(&self, agent: &str, action: &Action) -> Decision {
        let mut verdicts = self.verdicts(agent, action).into_iter();
        let Some(first) = verdicts.next() else { return self.decide_without_files(agent, action) };
        let mut decision = verdicts.fold(first.decision, |worst, v| {
            if v.decision.outcome > worst.outcome { v.decision } else { worst }
        });
        for broken in &self.stale {
            decision.reason.push_str(&format!(
                "; note: {} is broken now ({}), so the version read before it broke is in force until it is fixed",
                broken.file.display(),
                broken
            ));
        }
        decision
    }

    /// Each file's verdict on `agent` doing `action`, the workspace's first; none when there is
    /// no file or one cannot be used.
    pub fn verdicts(&self, agent: &str, action: &Action) -> Vec<Verdict> {
        if self.error.is_some() {
            return Vec::new();
        }
        let agent = normalize_agent(agent);
        self.files
            .iter()
            .zip(&self.roots)
            .map(|(file, root)| {
                let (outcome, rule, reason) = match root {
                    None => self.decide_file(&self.root, file, &agent, action),
                    Some(root) => self.decide_file(root, file, &agent, &self.rebased(action)),
                };
                Verdict {
                    file: file.file.clone(),
                    decision: Decision {
                        outcome,
                        agent: agent.clone(),
                        action: action.describe(),
                        rule,
                        reason,
                    },
                }
            })
            .collect()
    }

    fn decide_without_files(&self, agent: &str, action: &Action) -> Decision {
        let decision = |outcome, reason: String| Decision {
            outcome,
            agent: normalize_agent(agent),
            action: action.describe(),
            rule: None,
            reason,
        };
        match &self.error {
            Some(error) => decision(
                Outcome::Deny,
                format!(
                    "the policy file cannot be used, so everything is denied until it is fixed ({error})"
                ),
            ),
            None => decision(
                Outcome::Allow,
                "no policy file (.acas/policy.yaml or ~/.config/acas/policy.yaml): everything is allowed"
                    .to_owned(),
            ),
        }
    }

    /// What one file says of `agent` (normalised) doing `action`.
    /// `action` with its relative paths made absolute from this workspace's root, for a file whose
    /// patterns are written from another root.
    fn rebased(&self, action: &Action) -> Action {
        let absolute = |path: &str| self.root.join(path).to_string_lossy().into_owned();
        match action {
            Action::Write { path } => Action::Write { path: absolute(path) },
            Action::Arrive { path, from } => Action::Arrive { path: absolute(path), from: absolute(from) },
            Action::Directory { path } => Action::Directory { path: absolute(path) },
            Action::Command { argv, start } => {
                Action::Command { argv: argv.clone(), start: self.rebased_start(start) }
            }
            Action::Shell { script, start } => {
                Action::Shell { script: script.clone(), start: self.rebased_start(start) }
            }
            other => other.clone(),
        }
    }

    fn rebased_start(&self, start: &Start) -> Start {
        let dir = start.dir.as_deref().unwrap_or(".");
        Start { dir: Some(self.root.join(dir).to_string_lossy().into_owned()), cdpath: start.cdpath }
    }

    fn decide_file(
        &self,
        root: &Path,
        file: &Sections,
        agent: &str,
        action: &Action,
    ) -> (Outcome, Option<Location>, String) {
        let chain = Self::chain(file, agent);
        match action {
            Action::Write { path } => decide_path_in(root, &chain, path, false),
            Action::Arrive { path, from } => match self.held(from) {
                Ok(brought) => decide_path_brought(root, &chain, path, false, &brought),
                Err(verdict) => verdict,
            },
            Action::Directory { path } if lexical(root, path).as_deref() == Some(root) => (
                Outcome::Allow,
                None,
                "the workspace root, where every step runs unless it names a cwd".to_owned(),
            ),
            Action::Directory { path } => {
                // Whatever the command writes by a relative path lands in that directory.
                let file = format!("{}/{}", path.trim_end_matches('/'), paths::ANY_FILE);
                decide_path_in(root, &chain, &file, false)
            }
            Action::Command { argv, start } => command::decide_argv(root, &chain, argv, start),
            Action::Shell { script, start } => command::decide_script(root, &chain, script, start),
            Action::Environment { vars } => command::decide_env(root, &chain, vars),
            Action::WorkflowAction { kind } => decide_in(&chain, Category::Actions, &Subject::Text(kind)),
            Action::Http { host } => {
                let host = canonical_host(host);
                decide_in(&chain, Category::Hosts, &Subject::Text(&host))
            }
            Action::Workflow { name } => decide_in(&chain, Category::Workflows, &Subject::Text(name)),
            Action::Spend { today_usd, agent_today_usd, request_usd } => {
                decide_spend(file, agent, *today_usd, *agent_today_usd, *request_usd)
            }
        }
    }

    /// What `from` (a move's or a copy's source, not followed if it is a link) holds, relative to
    /// it: nothing for a file, a link or a path outside the workspace (judged on its own as the
    /// source); a verdict when it holds too much to judge.
    fn held(&self, from: &str) -> Result<Vec<String>, (Outcome, Option<Location>, String)> {
        let Some(source) = lexical(&self.root, from) else { return Ok(Vec::new()) };
        paths::held(&source).map_err(|count| too_many(from, count))
    }
}

/// The spend limit of the most specific section that has one: under an agent's own section or
/// `"*"` it counts that agent's spend only, under `defaults` the workspace's.
fn decide_spend(
    file: &Sections,
    agent: &str,
    workspace_usd: f64,
    agent_usd: f64,
    request_usd: f64,
) -> (Outcome, Option<Location>, String) {
    let in_agents = |name: &str| {
        file.agents.iter().find(|(n, _)| n == name).and_then(|(_, section)| section.spend.as_ref())
    };
    let found = in_agents(agent)
        .or_else(|| in_agents("*"))
        .map(|limit| (limit, true))
        .or_else(|| file.defaults.as_ref().and_then(|d| d.spend.as_ref()).map(|limit| (limit, false)));
    let Some((limit, own)) = found else {
        return (Outcome::Allow, None, "no spend limit applies".to_owned());
    };
    let (spent, whose, allowed) = if own {
        (agent_usd, format!("{agent} spent"), format!("allowed to {agent}"))
    } else {
        (workspace_usd, "the workspace spent".to_owned(), "allowed to the workspace".to_owned())
    };
    if spent + request_usd > limit.daily_usd {
        (
            Outcome::Deny,
            Some(limit.rule.clone()),
            format!(
                "{whose} ${spent:.4} today (UTC); with up to ${request_usd:.4} for this request that is over the \
                 ${} a day {allowed}",
                limit.daily_usd
            ),
        )
    } else {
        (
            Outcome::Allow,
            Some(limit.rule.clone()),
            format!("{whose} ${spent:.4} today, within the ${} a day {allowed}", limit.daily_usd),
        )
    }
}

/// `path` judged as written (`..` resolved) and as it resolves through links: both must pass, and
/// one outside the workspace is denied. With `refuse_acas`, a file under `.acas/` is denied rather
/// than left to a person (a shell redirection writes it unasked).
pub(super) fn decide_path_in(
    root: &Path,
    chain: &[&Section],
    path: &str,
    refuse_acas: bool,
) -> (Outcome, Option<Location>, String) {
    decide_path_brought(root, chain, path, refuse_acas, &[])
}

/// The refusal of a directory too large to judge.
fn too_many(path: &str, count: usize) -> (Outcome, Option<Location>, String) {
    (
        Outcome::Deny,
        None,
        format!(
            "`{path}` holds more than {} entries ({count} seen), too many to judge; act on smaller directories",
            paths::MAX_BENEATH
        ),
    )
}

/// [`decide_path_in`], with the paths (relative to `path`) that a move or a copy brings there.
fn decide_path_brought(
    root: &Path,
    chain: &[&Section],
    path: &str,
    refuse_acas: bool,
    brought: &[String],
) -> (Outcome, Option<Location>, String) {
    let outside = || {
        (
            Outcome::Deny,
            None,
            format!("`{path}` is outside the workspace {}; only its files may be changed", root.display()),
        )
    };
    let Some(lexical) = lexical(root, path) else { return outside() };
    let Some(resolved) = resolve(root, &lexical) else { return outside() };
    let mut worst = (Outcome::Allow, None, String::new());
    let mut candidates = vec![lexical];
    if !candidates.contains(&resolved) {
        candidates.push(resolved);
    }
    for candidate in candidates {
        let rel = crate::files::relative(root, &candidate);
        if rel.is_empty() {
            return (Outcome::Deny, None, "the workspace root itself cannot be changed".to_owned());
        }
        // A directory is judged as everything beneath it.
        let mut all = vec![rel];
        match paths::beneath(&candidate, &all[0]) {
            Ok(more) => all.extend(more),
            Err(count) => return too_many(&all[0], count),
        }
        // What a move or a copy brings: the paths it will have once it arrived.
        let here = all[0].clone();
        for sub in brought {
            let arrived = format!("{here}/{sub}");
            if !all.contains(&arrived) {
                all.push(arrived);
            }
        }
        if all.len() > paths::MAX_BENEATH {
            return too_many(&here, all.len());
        }
        for rel in all {
            let (mut outcome, mut rule, mut reason) = decide_in(chain, Category::Paths, &Subject::Text(&rel));
            // What ACAS runs by itself is a person's to change: the policy never by a run, the
            // rest of `.acas` (workflows, configuration) with a person's approval.
            let folded = rel.to_lowercase();
            if folded == WORKSPACE_FILE {
                (outcome, rule, reason) = (
                    Outcome::Deny,
                    None,
                    "the policy file is changed by a person, never by a run".to_owned(),
                );
            } else if folded.split('/').any(|part| part == ".git") {
                // Its configuration and hooks name programs git runs (`core.fsmonitor`, aliases,
                // filters, hooks): what an allowed `git status` would run is not the run's to set.
                (outcome, rule, reason) = (
                    Outcome::Deny,
                    None,
                    "files in .git (configuration, hooks) name programs git runs: a run changes them only through git"
                        .to_owned(),
                );
            } else if folded.starts_with(".acas/") && refuse_acas {
                (outcome, rule, reason) = (
                    Outcome::Deny,
                    None,
                    "files under .acas change what ACAS runs by itself: a shell redirection may not write them"
                        .to_owned(),
                );
            } else if folded.starts_with(".acas/") && outcome == Outcome::Allow {
                (outcome, rule, reason) = (
                    Outcome::NeedsApproval,
                    None,
                    "files under .acas change what ACAS runs by itself: a person must allow it".to_owned(),
                );
            }
            if outcome > worst.0 || worst.2.is_empty() {
                worst = (outcome, rule, format!("{reason} (as `{rel}`)"));
            }
        }
    }
    worst
}

/// `path` under `root` with `.` and `..` resolved as written; `None` when it leaves the root.
fn lexical(root: &Path, path: &str) -> Option<PathBuf> {
    let joined = if Path::new(path).is_absolute() { PathBuf::from(path) } else { root.join(path) };
    let mut out = PathBuf::new();
    for part in joined.components() {
        match part {
            Component::ParentDir => {
                if !out.pop() {
                    return None;
                }
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out.starts_with(root).then_some(out)
}

/// `path` with its deepest existing ancestor resolved through links; `None` when that leads out
/// of the root.
fn resolve(root: &Path, path: &Path) -> Option<PathBuf> {
    let mut existing = path.to_path_buf();
    let mut rest = Vec::new();
    loop {
        // A link at the end that points nowhere is still a link: resolve what it names.
        if let Ok(target) = std::fs::read_link(&existing) {
            let target = if target.is_absolute() { target } else { existing.parent()?.join(target) };
            let parent_ok = existing.parent().and_then(|p| p.canonicalize().ok()).is_some();
            if parent_ok {
                let target_str = target.to_string_lossy().into_owned();
                let again = lexical(root, &target_str)?;
                if again == existing {
                    return None;
                }
                let mut out = resolve(root, &again)?;
                for part in rest.iter().rev() {
                    out.push(part);
                }
                return Some(out);
            }
        }
        if let Ok(real) = existing.canonicalize() {
            let mut out = real;
            for part in rest.iter().rev() {
                out.push(part);
            }
            return out.starts_with(root).then_some(out);
        }
        let name = existing.file_name()?.to_os_string();
        rest.push(name);
        if !existing.pop() {
            return None;
        }
    }
}

fn decide_in(
    chain: &[&Section],
    category: Category,
    subject: &Subject<'_>,
) -> (Outcome, Option<Location>, String) {
    let what = category.as_str();
    for section in chain {
        if let Some(list) = section.lists.get(&category)
            && let Some(rule) = list.first_deny(subject)
        {
            return (
                Outcome::Deny,
                Some(rule.at.clone()),
                format!("{what} deny rule `{}` matches", rule.pattern),
            );
        }
    }
    for section in chain {
        let Some(list) = section.lists.get(&category) else { continue };
        if let Some(rule) = list.first_approve(subject) {
            return (
                Outcome::NeedsApproval,
                Some(rule.at.clone()),
                format!("{what} approve rule `{}` matches: a person must allow it", rule.pattern),
            );
        }
        if let Some(rule) = list.first_allow(subject) {
            return (
                Outcome::Allow,
                Some(rule.at.clone()),
                format!("{what} allow rule `{}` matches", rule.pattern),
            );
        }
    }
    for section in chain {
        if let Some(allow) = section.lists.get(&category).and_then(|l| l.allow.as_ref()) {
            let at = allow.first().map(|r| r.at.clone());
            return (
                Outcome::Deny,
                at,
                format!("no rule of the {what} allow list matches; add one to allow it"),
            );
        }
    }
    (Outcome::Allow, None, format!("no {what} rule applies"))
}

/// A host as rules name it: lower case without a trailing dot, an IP address in one spelling
/// (`[::ffff:127.0.0.1]`, `127.1`, `2130706433` and `0x7f.1` are all `127.0.0.1`).
pub fn canonical_host(host: &str) -> String {
    let host = host.trim().trim_end_matches('.').to_ascii_lowercase();
    let bare = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(&host);
    if let Ok(v6) = bare.parse::<std::net::Ipv6Addr>() {
        return match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => v6.to_string(),
        };
    }
    short_ipv4(bare).map_or(host.clone(), |v4| v4.to_string())
}

/// An IPv4 address in any spelling the C resolver accepts: one to four parts, each decimal,
/// octal (`0` first) or hexadecimal (`0x` first), the last filling the remaining bytes.
fn short_ipv4(host: &str) -> Option<std::net::Ipv4Addr> {
    let parts: Vec<&str> = host.split('.').collect();
    if parts.is_empty() || parts.len() > 4 {
        return None;
    }
    let mut values = Vec::with_capacity(parts.len());
    for part in &parts {
        let value = if let Some(hex) = part.strip_prefix("0x") {
            u64::from_str_radix(hex, 16).ok()?
        } else if part.len() > 1 && part.starts_with('0') {
            u64::from_str_radix(&part[1..], 8).ok()?
        } else {
            if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            part.parse::<u64>().ok()?
        };
        values.push(value);
    }
    let (last, head) = values.split_last()?;
    if head.iter().any(|v| *v > 255) || *last >= 1u64 << (8 * (5 - values.len())) {
        return None;
    }
    let mut address: u64 = 0;
    for (i, v) in head.iter().enumerate() {
        address |= v << (24 - 8 * i);
    }
    Some(std::net::Ipv4Addr::from((address | last) as u32))
}
