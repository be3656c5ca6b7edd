//! `context` and `explain`: one error, named by its file and line or by its fingerprint. The
//! first returns the redacted context ACAS would send to a provider, within the caller's token
//! budget, and sends nothing; the second escalates through ACAS's own providers, rules and
//! budgets (`assist::escalate`, as the editor and `acas explain` do).

use std::path::PathBuf;
use std::sync::Arc;

use rmcp::model::{ErrorData, Tool};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::tool;
use crate::assist::{self, Index, Job, Outcome, Providers};
use crate::classify::{Document, Language};
use crate::config;
use crate::escalate::context::Budget;
use crate::escalate::cost::{estimate_tokens, usd};
use crate::escalate::engine::EscalateError;
use crate::mcp::{Answer, Shared, internal, invalid, refused};
use crate::text::PositionEncoding;
use crate::watch::IgnoreRules;

pub(super) const CONTEXT: &str = "context";
pub(super) const EXPLAIN: &str = "explain";

/// Bounds of `context`'s `max_tokens`, and its default (the budget an escalation uses).
pub const MIN_CONTEXT_TOKENS: u64 = 200;
pub const MAX_CONTEXT_TOKENS: u64 = 100_000;
const DEFAULT_CONTEXT_TOKENS: u64 = 3_600;

/// Where the error is: `path` and `line`, or `fingerprint`.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct ContextArgs {
    /// The file, relative to the workspace root (with `line`).
    #[serde(default)]
    path: Option<String>,
    /// The error's line, from 1 (with `path`).
    #[serde(default)]
    line: Option<u32>,
    /// The error's fingerprint, as `check` or `problems` gave it (instead of `path` and `line`).
    #[serde(default)]
    fingerprint: Option<String>,
    /// How many tokens of context to return at most (default 3600, from 200 to 100000).
    #[serde(default)]
    max_tokens: Option<u64>,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct ExplainArgs {
    /// The file, relative to the workspace root (with `line`).
    #[serde(default)]
    path: Option<String>,
    /// The error's line, from 1 (with `path`).
    #[serde(default)]
    line: Option<u32>,
    /// The error's fingerprint, as `check` or `problems` gave it (instead of `path` and `line`).
    #[serde(default)]
    fingerprint: Option<String>,
    /// Ask only this provider (its name in the workspace's [[providers]]).
    #[serde(default)]
    provider: Option<String>,
}

pub(super) fn tools() -> Vec<Tool> {
    vec![
        tool::<ContextArgs>(
            CONTEXT,
            "The context ACAS would send to an AI provider for one error, redacted (secrets removed, \
             no_egress files left out), within `max_tokens`: the enclosing code, the definitions it uses, \
             the git history of its lines, other tools' messages there and how the same error was fixed \
             before. Name the error by `path` and `line` or by `fingerprint`. Sends nothing.",
        ),
        tool::<ExplainArgs>(
            EXPLAIN,
            "Escalate one error to the AI providers configured for this workspace, under its budgets, and \
             return the explanation and a fix that was verified to apply and parse. Name the error by \
             `path` and `line` or by `fingerprint`. Costs money; prefer `context` when you can reason \
             about the error yourself.",
        ),
    ]
}

pub(super) async fn context(shared: &Arc<Shared>, args: ContextArgs) -> Result<Answer, ErrorData> {
    let max_tokens = args.max_tokens.unwrap_or(DEFAULT_CONTEXT_TOKENS);
    if !(MIN_CONTEXT_TOKENS..=MAX_CONTEXT_TOKENS).contains(&max_tokens) {
        return Err(invalid(format!(
            "`max_tokens` must be between {MIN_CONTEXT_TOKENS} and {MAX_CONTEXT_TOKENS}; it was {max_tokens}"
        )));
    }
    let (path, line) = locate(shared, args.path, args.line, args.fingerprint).await?;
    // The budget is shared out between the parts of the context; the prompt around them (the
    // problem, the past fixes) comes on top, so a prompt over the limit is built again smaller.
    let mut budget_tokens = max_tokens;
    let mut attempt = 0;
    loop {
        let job = job(shared, &path, line, None, true, Budget::within(budget_tokens))?;
        let rel = job.rel.clone();
        let outcome = assist::escalate(job, &mut |_, _| {}, &CancellationToken::new()).await;
        let prepared = match outcome {
            Ok(Outcome::DryRun { prepared, .. }) => prepared,
            Ok(Outcome::Explained(_)) => return Err(internal("a dry run was answered; see ACAS's log")),
            Err(error) => return Err(escalate_error(error)),
        };
        let tokens = estimate_tokens(&prepared.prompt);
        attempt += 1;
        if tokens > max_tokens && attempt < 4 && budget_tokens > MIN_CONTEXT_TOKENS / 4 {
            budget_tokens = budget_tokens.saturating_mul(max_tokens) / tokens.max(1) * 9 / 10;
            continue;
        }
        let redactions: Vec<_> =
            prepared.redactions.kinds.iter().map(|(k, n)| json!({ "kind": k, "count": n })).collect();
        let text = format!(
            "Context for {rel}:{} ({} tokens of {max_tokens}; {} redacted):\n\n{}",
            line + 1,
            tokens,
            prepared.redactions.total(),
            prepared.prompt
        );
        let data = json!({
            "path": rel,
            "line": line + 1,
            "fingerprint": prepared.fingerprint,
            "category": prepared.category,
            "context": prepared.prompt,
            "estimated_tokens": tokens,
            "max_tokens": max_tokens,
            "within_budget": tokens <= max_tokens,
            "redactions": redactions,
        });
        return Ok(Answer { text, data, path: Some(rel) });
    }
}

pub(super) async fn explain(
    shared: &Arc<Shared>,
    agent: &str,
    holder: &str,
    args: ExplainArgs,
    cancel: &CancellationToken,
) -> Result<Answer, ErrorData> {
    let (path, line) = locate(shared, args.path, args.line, args.fingerprint).await?;
    // The spend limit counts the agent's own spend (asked before anything is sent), and this
    // request is recorded as its.
    let mut job = job(shared, &path, line, args.provider, false, Budget::default())?;
    job.agent = Some(shared.policy_agent(agent));
    job.session = crate::policy::approvals::session_of(holder).map(str::to_owned);
    let rel = job.rel.clone();
    let explained = match assist::escalate(job, &mut |_, _| {}, cancel).await {
        Ok(Outcome::Explained(explained)) => explained,
        Ok(Outcome::DryRun { .. }) => return Err(internal("the escalation was a dry run; see ACAS's log")),
        Err(error) => return Err(escalate_error(error)),
    };
    if let Some(store) = &shared.store {
        let _ = store.flush();
    }
    let mut text = explained.explanation.trim().to_owned();
    let fix = match (&explained.fix, &explained.fix_rejected) {
        (Some(fix), _) => {
            text.push_str(&format!("\n\nFix (verified: it applies and parses): {}", fix.description));
            for (file, replacements) in &fix.files {
                for r in replacements {
                    text.push_str(&format!("\n{file} bytes {}..{}:\n{}", r.range.start, r.range.end, r.new));
                }
            }
            json!({
                "description": fix.description,
                "verified": true,
                "edits": fix.files.iter().flat_map(|(p, rs)| rs.iter().map(move |r| json!({
                    "path": p, "start_byte": r.range.start, "end_byte": r.range.end, "new": r.new,
                }))).collect::<Vec<_>>(),
            })
        }
        (None, Some(reason)) => {
            text.push_str(&format!("\n\nThe proposed fix is not offered: {reason}"));
            json!({ "verified": false, "reason": reason, "edits": [] })
        }
        (None, None) => serde_json::Value::Null,
    };
    text.push_str(&format!(
        "\n\n{} ({}), ${:.6}{}",
        explained.provider,
        explained.model,
        usd(explained.cost_micros),
        if explained.cached { ", from the cache" } else { "" }
    ));
    let data = json!({
        "path": rel,
        "line": line + 1,
        "explanation": explained.explanation,
        "fix": fix,
        "provider": explained.provider,
        "model": explained.model,
        "input_tokens": explained.usage.input_tokens,
        "output_tokens": explained.usage.output_tokens,
        "cost_usd": usd(explained.cost_micros),
        "cached": explained.cached,
    });
    Ok(Answer { text, data, path: Some(rel) })
}

/// The file and zero-based line of the error the arguments name.
async fn locate(
    shared: &Arc<Shared>,
    path: Option<String>,
    line: Option<u32>,
    fingerprint: Option<String>,
) -> Result<(PathBuf, u32), ErrorData> {
    match (path, line, fingerprint) {
        (None, None, Some(fingerprint)) => {
            let (root, rows) = shared
                .handle
                .problems(None, None)
                .await
                .ok_or_else(|| internal("reading problems failed inside ACAS; see its log"))?
                .map_err(|refused| internal(refused.message))?;
            let row = rows.into_iter().find(|r| r.fingerprint == fingerprint).ok_or_else(|| {
                invalid(format!(
                    "no open problem has fingerprint `{fingerprint}`; `problems` lists the open ones, `check` the current ones"
                ))
            })?;
            let (rel, line, _) =
                row.locations.first().cloned().ok_or_else(|| {
                    invalid(format!("problem `{fingerprint}` is resolved: it is open nowhere"))
                })?;
            Ok((shared.inside(&root.join(rel).to_string_lossy())?, line))
        }
        (Some(path), Some(line), None) if line > 0 => Ok((shared.inside(&path)?, line - 1)),
        (Some(_), Some(0), None) => Err(invalid("`line` counts from 1")),
        (Some(_), Some(_), Some(_)) | (None, _, Some(_)) | (Some(_), None, Some(_)) => {
            Err(invalid("give either `path` and `line`, or `fingerprint`, not both"))
        }
        _ => Err(invalid("name the error: give `path` and `line` (from 1), or `fingerprint`")),
    }
}

/// The escalation of the problem on `line` (zero-based) of `path`.
fn job(
    shared: &Shared,
    path: &std::path::Path,
    line: u32,
    only: Option<String>,
    dry_run: bool,
    budget: Budget,
) -> Result<Job, ErrorData> {
    let root = shared.root.clone();
    let (config, error) = config::load(&root);
    if let Some(error) = error {
        return Err(refused("invalid_config", format!("{error}; fix .acas/config.toml and call again")));
    }
    let rel = shared.relative(path);
    let language = Language::from_path(path)
        .ok_or_else(|| invalid(format!("{rel}: ACAS does not parse this kind of file")))?;
    // Opened beneath the workspace root: a directory swapped for a link out of the workspace
    // after `path` was checked is refused, not followed.
    let text = crate::files::read_beneath(&root, path, config.max_file_size)
        .map_err(|skip| invalid(format!("{rel}: {skip}")))?;
    let doc = Document::new(language, text);
    let (range, problem) = assist::problem_on_line(&doc, &rel, line, shared.store.as_ref())
        .ok_or_else(|| invalid(format!("no diagnostic on {rel}:{}; `check` lists them", line + 1)))?;
    Ok(Job {
        root: root.clone(),
        path: path.to_path_buf(),
        rel,
        language,
        text: doc.text().to_owned(),
        tree: doc.tree().clone(),
        range,
        problem,
        providers: Providers::Build {
            config: Box::new(config.escalation.clone()),
            store: shared.store.clone(),
            only,
        },
        index: Index::Walk {
            rules: Arc::new(IgnoreRules::new(&root, &config.ignore)),
            store: shared.store.clone(),
        },
        max_size: config.max_file_size,
        dry_run,
        encoding: PositionEncoding::Utf16,
        budget,
        agent: None,
        session: None,
    })
}

fn escalate_error(error: EscalateError) -> ErrorData {
    let message = error.to_string();
    match error {
        EscalateError::NoProvider => refused(
            "no_provider",
            format!(
                "{message}; docs/mcp.md says how (then call `explain` again, or use `context` meanwhile)"
            ),
        ),
        EscalateError::Config(_) => refused("invalid_config", message),
        EscalateError::NoEgress(_) => refused("no_egress", message),
        EscalateError::OverBudget(_) => refused("budget_exceeded", message),
        EscalateError::SpendDenied(_) => refused("policy_denied", message),
        EscalateError::Exhausted(_) => refused("provider_failed", message),
        EscalateError::Cancelled => refused("cancelled", message),
        EscalateError::Internal(_) => internal(message),
    }
}
