//! `acas policy explain|check` and `acas approve`: what the workspace's policy says of an
//! action and which rule says it, whether the policy files are valid, and the approvals that
//! wait for a person.
//!
//! Exit codes: `policy explain` 0 allowed, 1 denied or needing approval; `policy check` 0 valid
//! (or no file), 1 invalid; `approve` 0 done, 1 the approval was not pending; 2 the command
//! failed.

use std::path::PathBuf;

use clap::{Args, Subcommand, ValueEnum};
use serde_json::json;

use super::{EXIT_FAILED, EXIT_FOUND, EXIT_OK, ListFormat, output};
use crate::display::shown;
use crate::policy::{self, Action, Outcome, Policy, PolicyErrorKind, Start, approvals};

#[derive(Args)]
pub(super) struct Common {
    /// The workspace (default: the current directory)
    #[arg(long, default_value = ".", global = true)]
    workspace: PathBuf,
    #[arg(long, value_enum, default_value_t = ListFormat::Text, global = true)]
    format: ListFormat,
}

#[derive(Subcommand)]
pub(super) enum PolicyCommand {
    /// Say which rule decides an action and why, for example `explain --agent claude-code write src/main.rs`
    Explain {
        /// The agent: an MCP client's name, or editor, cli, workflow (default: cli; inside a
        /// workflow step, the run's agent, whatever this says)
        #[arg(long)]
        agent: Option<String>,
        kind: ExplainKind,
        /// The path, command, host, workflow or action name; for spend, the USD amount
        #[arg(required = true, num_args = 1..)]
        what: Vec<String>,
        #[command(flatten)]
        common: Common,
    },
    /// Validate the workspace's and the user's policy files
    Check {
        #[command(flatten)]
        common: Common,
    },
}

#[derive(Clone, Copy, ValueEnum)]
pub(super) enum ExplainKind {
    /// Change a file
    Write,
    /// Run a command (judged like a shell step)
    Run,
    /// Reach a host over HTTP
    Http,
    /// Start a workflow
    Workflow,
    /// Run a workflow action (file.write, http.request...)
    Action,
    /// Spend this many USD today
    Spend,
}

pub(super) fn run(command: PolicyCommand) -> i32 {
    match command {
        PolicyCommand::Explain { agent, kind, what, common } => {
            // A step asks about its run's agent, as everything it starts acts for it.
            let agent = match crate::process_tree::acting_for() {
                Some(acting) => acting.agent,
                None => agent.unwrap_or_else(|| "cli".to_owned()),
            };
            explain(&agent, kind, &what.join(" "), &common)
        }
        PolicyCommand::Check { common } => check(&common),
    }
}

fn root(command: &str, common: &Common) -> Result<PathBuf, i32> {
    match super::resolve(&common.workspace) {
        Ok((root, true)) => Ok(root),
        Ok((_, false)) => {
            output::note(&format!("acas {command}: {} is not a directory", common.workspace.display()));
            Err(EXIT_FAILED)
        }
        Err(error) => {
            output::note(&format!("acas {command}: {error}"));
            Err(EXIT_FAILED)
        }
    }
}

fn explain(agent: &str, kind: ExplainKind, what: &str, common: &Common) -> i32 {
    let root = match root("policy explain", common) {
        Ok(root) => root,
        Err(code) => return code,
    };
    let action = match kind {
        ExplainKind::Write => Action::Write { path: what.to_owned() },
        ExplainKind::Run => Action::Shell {
            script: what.to_owned(),
            start: Start { dir: None, cdpath: std::env::var_os("CDPATH").is_some_and(|v| !v.is_empty()) },
        },
        ExplainKind::Http => Action::Http { host: what.to_owned() },
        ExplainKind::Workflow => Action::Workflow { name: what.to_owned() },
        ExplainKind::Action => Action::WorkflowAction { kind: what.to_owned() },
        ExplainKind::Spend => match what.trim_start_matches('$').parse::<f64>() {
            Ok(usd) if usd.is_finite() && usd >= 0.0 => match spent_today(&root, agent) {
                Ok((today_usd, agent_today_usd)) => {
                    Action::Spend { today_usd, agent_today_usd, request_usd: usd }
                }
                Err(message) => {
                    output::note(&format!("acas policy explain: {message}"));
                    return EXIT_FAILED;
                }
            },
            _ => {
                output::note(&format!(
                    "acas policy explain: `{what}` is not an amount in USD; write one like 1.50"
                ));
                return EXIT_FAILED;
            }
        },
    };
    let policy = Policy::load(&root);
    let decision = policy.decide(agent, &action);
    let verdicts = policy.verdicts(agent, &action);
    let rule_json = |rule: &Option<policy::Location>| {
        rule.as_ref().map(|r| json!({ "file": r.file, "line": r.line, "column": r.column, "text": r.text }))
    };
    match common.format {
        ListFormat::Text => {
            let mut text =
                format!("{}: {} for {}", decision.outcome.as_str(), decision.action, decision.agent);
            match &decision.rule {
                Some(rule) => text.push_str(&format!("\nrule: {rule}")),
                None => text.push_str("\nrule: none"),
            }
            text.push_str(&format!("\nwhy: {}", decision.reason));
            if verdicts.len() > 1 {
                text.push_str("\neach file (the strictest wins):");
                for v in &verdicts {
                    text.push_str(&format!(
                        "\n  {}: {}{}",
                        v.file.display(),
                        v.decision.outcome.as_str(),
                        v.decision
                            .rule
                            .as_ref()
                            .map(|r| format!(" by line {}: {}", r.line, r.text))
                            .unwrap_or_else(|| format!(" ({})", v.decision.reason))
                    ));
                }
            }
            output::line(&text);
        }
        ListFormat::Json => {
            output::line(
                &json!({
                    "outcome": decision.outcome,
                    "agent": decision.agent,
                    "action": decision.action,
                    "rule": decision.rule.as_ref().map(|r| json!({
                        "file": r.file, "line": r.line, "column": r.column, "text": r.text,
                    })),
                    "reason": decision.reason,
                    "files": policy.files(),
                    "verdicts": verdicts.iter().map(|v| json!({
                        "file": v.file,
                        "outcome": v.decision.outcome,
                        "rule": rule_json(&v.decision.rule),
                        "reason": v.decision.reason,
                    })).collect::<Vec<_>>(),
                })
                .to_string(),
            );
        }
    }
    if decision.outcome == Outcome::Allow { EXIT_OK } else { EXIT_FOUND }
}

/// Today's AI spend of the workspace (the team's, with a shared store) and of `agent`, read where
/// the calls are recorded: the shared store of `[store] url` when one is configured, else the
/// workspace's state; nothing when it has none yet.
fn spent_today(root: &std::path::Path, agent: &str) -> Result<(f64, f64), String> {
    use crate::escalate::cost;
    let (config, error) = crate::config::load(root);
    if let Some(error) = error {
        return Err(format!("{error}; fix .acas/config.toml"));
    }
    let agent = policy::normalize_agent(agent);
    let cannot = |e: crate::store::StoreError| format!("reading today's AI spend failed: {e}");
    if let Some(shared) = &config.escalation.shared_store {
        return cost::spent_today(&shared.connect().map_err(cannot)?, &agent).map_err(cannot);
    }
    if !crate::store::Store::recorded(root).map_err(cannot)? {
        return Ok((0.0, 0.0));
    }
    let options = crate::store::StoreOptions { integrity_check: false, ..Default::default() };
    let store = crate::store::Store::open_workspace(root, options).map_err(cannot)?;
    cost::spent_today(&store, &agent).map_err(cannot)
}

fn check(common: &Common) -> i32 {
    let root = match root("policy check", common) {
        Ok(root) => root,
        Err(code) => return code,
    };
    let mut files = vec![root.join(policy::WORKSPACE_FILE)];
    files.extend(policy::user_path());
    let mut problems = Vec::new();
    let mut checked = Vec::new();
    for file in files {
        match policy::read_file(&file) {
            Ok(None) => {}
            Ok(Some(_)) => checked.push(file),
            Err(error) => {
                checked.push(file.clone());
                for p in &error.problems {
                    problems.push(json!({
                        "file": error.file, "line": p.line, "column": p.column, "message": p.message,
                    }));
                }
            }
        }
    }
    match common.format {
        ListFormat::Text => {
            let mut text = String::new();
            for p in &problems {
                text.push_str(&format!(
                    "{}:{}:{}: error: {}\n",
                    p["file"].as_str().unwrap_or(""),
                    p["line"],
                    p["column"],
                    p["message"].as_str().unwrap_or("")
                ));
            }
            if checked.is_empty() {
                text.push_str(
                    "no policy file (.acas/policy.yaml or ~/.config/acas/policy.yaml): everything is allowed",
                );
            } else if problems.is_empty() {
                let names: Vec<String> = checked.iter().map(|f| f.display().to_string()).collect();
                text.push_str(&format!("valid: {}", names.join(", ")));
            } else {
                text.push_str(&format!(
                    "{} problems: until they are fixed the policy denies everything",
                    problems.len()
                ));
            }
            output::line(&text);
        }
        ListFormat::Json => {
            output::line(
                &json!({ "valid": problems.is_empty(), "files": checked, "problems": problems }).to_string(),
            );
        }
    }
    if problems.is_empty() { EXIT_OK } else { EXIT_FOUND }
}

/// `acas approve [ID] [--deny]`.
pub(super) fn approve(id: Option<i64>, deny: bool, common: &Common) -> i32 {
    let root = match root("approve", common) {
        Ok(root) => root,
        Err(code) => return code,
    };
    let Some(id) = id else {
        let pending = match approvals::pending(&root) {
            Ok(pending) => pending,
            Err(error) => {
                output::note(&format!("acas approve: {error}"));
                return EXIT_FAILED;
            }
        };
        match common.format {
            ListFormat::Text => {
                let mut text = String::new();
                for p in &pending {
                    text.push_str(&format!(
                        "{:>4} {} {}: {}\n     {}{}\n",
                        p.id,
                        crate::time::date_time(p.created_ms),
                        shown(&p.agent),
                        shown(&p.action.to_string()),
                        shown(&p.reason),
                        p.rule.as_deref().map(|r| format!(" ({})", shown(r))).unwrap_or_default()
                    ));
                }
                text.push_str(&format!(
                    "{} pending; answer with `acas approve ID` or `acas approve ID --deny`",
                    pending.len()
                ));
                output::line(&text);
            }
            ListFormat::Json => {
                output::line(&json!({ "pending": pending }).to_string());
            }
        }
        return EXIT_OK;
    };
    let by = match std::env::var("USER") {
        Ok(user) if !user.is_empty() => format!("cli:{user}"),
        _ => "cli".to_owned(),
    };
    match approvals::answer(&root, id, !deny, &by) {
        Ok(p) => {
            let verb = if deny { "denied" } else { "approved" };
            match common.format {
                ListFormat::Text => output::line(&format!(
                    "{verb} {}: {} for {}",
                    p.id,
                    shown(&p.action.to_string()),
                    shown(&p.agent)
                )),
                ListFormat::Json => {
                    output::line(&json!({ "id": p.id, "answer": verb, "by": by }).to_string())
                }
            };
            EXIT_OK
        }
        Err(error) if error.kind == PolicyErrorKind::NotPending => {
            output::note(&format!("acas approve: {}", error.problems[0].message));
            EXIT_FOUND
        }
        Err(error) => {
            output::note(&format!("acas approve: {error}"));
            EXIT_FAILED
        }
    }
}
