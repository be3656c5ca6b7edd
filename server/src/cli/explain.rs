//! `acas explain FILE:LINE`: escalate one error from the terminal.

use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::{EXIT_FAILED, EXIT_OK, ListFormat, output};
use crate::assist::{self, Index, Job, Outcome, Providers};
use crate::classify::{Document, Language};
use crate::config;
use crate::escalate::cost::usd;
use crate::escalate::engine::{EscalateError, Explained, Prepared};
use crate::files;
use crate::store::{Store, StoreOptions};
use crate::text::PositionEncoding;
use crate::watch::IgnoreRules;
use crate::workspace::relative;

pub(super) struct Args {
    pub target: String,
    pub provider: Option<String>,
    pub dry_run: bool,
    /// `--agent`: who the request is for, unless a workflow step started this process.
    pub agent: Option<String>,
    pub format: ListFormat,
}

/// The longest name `--agent` takes, as the task queue's agent names.
const MAX_AGENT_CHARS: usize = 128;

/// Who a request is made for: the enclosing run's agent when a workflow step started this
/// process (whatever `--agent` says), else `--agent` as policies name it (trimmed, lower case),
/// with the session decision records name it in. `None` for a person at the terminal.
fn requester(flag: Option<&str>) -> Result<Option<crate::process_tree::Acting>, String> {
    if let Some(acting) = crate::process_tree::acting_for() {
        return Ok(Some(acting));
    }
    let Some(name) = flag else { return Ok(None) };
    let agent = crate::policy::normalize_agent(name);
    let fine = !agent.is_empty()
        && agent != "*"
        && agent.chars().count() <= MAX_AGENT_CHARS
        && !agent.chars().any(|c| c.is_control() || crate::display::is_hidden_char(c));
    if !fine {
        return Err(format!(
            "`--agent {}` is not an agent's name: give 1 to {MAX_AGENT_CHARS} characters, not `*`, without control or invisible characters",
            name.escape_debug()
        ));
    }
    Ok(Some(crate::process_tree::Acting { agent, session: None }))
}

pub(super) fn run(args: Args) -> i32 {
    match explain(&args) {
        Ok(code) => code,
        Err(message) => {
            output::note(&format!("acas explain: {message}"));
            EXIT_FAILED
        }
    }
}

fn explain(args: &Args) -> Result<i32, String> {
    let requester = requester(args.agent.as_deref())?;
    let (file, line) = args
        .target
        .rsplit_once(':')
        .and_then(|(f, l)| Some((f, l.parse::<u32>().ok().filter(|l| *l > 0)?)))
        .ok_or_else(|| format!("`{}` is not FILE:LINE (lines count from 1)", args.target))?;
    let path = std::fs::canonicalize(file).map_err(|e| format!("cannot open {file}: {e}"))?;
    let root = assist::workspace_root(&path);
    // A real request is counted against the budgets in the store: without it, nothing is sent.
    let recorded = Store::recorded(&root).map_err(|e| e.to_string())?;
    // A state this process cannot write is never written: a dry run leaves out what the store
    // would add (past fixes, earlier occurrences), a real request is refused.
    let read_only = crate::store::read_only(&root).is_some();
    if read_only {
        if !args.dry_run
            && let Err(code) = super::refuse_read_only("explain", &root)
        {
            return Ok(code);
        }
        if recorded {
            output::note(&format!(
                "acas explain: the state of {} is read-only; the dry run leaves out the past fixes and earlier occurrences it holds",
                root.display()
            ));
        }
    }
    let (config, error) = config::load(&root);
    if let Some(error) = error {
        return Err(error.to_string());
    }
    let language =
        Language::from_path(&path).ok_or_else(|| format!("{file}: ACAS does not parse this kind of file"))?;
    let text = files::read_source(&path, config.max_file_size).map_err(|skip| format!("{file}: {skip}"))?;
    let rel = relative(&root, &path);
    let doc = Document::new(language, text);
    let store = if !read_only && (recorded || !args.dry_run) {
        Some(Store::open_workspace(&root, short_lived()).map_err(|e| e.to_string())?)
    } else {
        None
    };
    let (range, problem) = assist::problem_on_line(&doc, &rel, line - 1, store.as_ref())
        .ok_or_else(|| format!("no diagnostic on {rel}:{line}; `acas check {file}` lists them"))?;

    let job = Job {
        root: root.clone(),
        path: path.clone(),
        rel,
        language,
        text: doc.text().to_owned(),
        tree: doc.tree().clone(),
        range,
        problem,
        // A dry run needs no provider and no key: it is how a user checks what would leave.
        providers: Providers::Build {
            config: Box::new(config.escalation.clone()),
            store: store.clone(),
            only: args.provider.clone(),
        },
        // The symbol index kept in the store: only files changed since are indexed again. A dry
        // run without a state it may write keeps it in the user's cache instead.
        index: Index::Walk {
            rules: std::sync::Arc::new(IgnoreRules::new(&root, &config.ignore)),
            store: store.clone().or_else(|| args.dry_run.then(|| index_cache(&root)).flatten()),
        },
        max_size: config.max_file_size,
        dry_run: args.dry_run,
        encoding: PositionEncoding::Utf16,
        budget: crate::escalate::context::Budget::default(),
        // An agent's request passes its spend limit first, and counts as its spend.
        agent: requester.as_ref().map(|r| r.agent.clone()),
        session: requester.and_then(|r| r.session),
    };
    let runtime = super::runtime();
    let cancel = CancellationToken::new();
    let result = runtime.block_on(async {
        let interrupt = cancel.clone();
        // Ctrl-C, SIGTERM or SIGHUP end the call as cancelled, so that its reservation does not
        // hold budget that was never spent.
        let signal = super::stop_requested();
        tokio::spawn(async move {
            signal.await;
            interrupt.cancel();
        });
        assist::escalate(job, &mut |_, _| {}, &cancel).await
    });
    if let Some(store) = &store {
        let _ = store.flush();
    }
    runtime.shutdown_background();
    match result {
        Ok(Outcome::DryRun { prepared, unavailable }) => {
            print_dry_run(&prepared, &unavailable, args.format);
            Ok(EXIT_OK)
        }
        Ok(Outcome::Explained(explained)) => {
            print_explained(&explained, args.format);
            Ok(EXIT_OK)
        }
        Err(EscalateError::Cancelled) => Err("cancelled".to_owned()),
        Err(error) => Err(error.to_string()),
    }
}

/// How this one-shot command opens a store: without the integrity check's read of the whole
/// file, which it would not wait for, and without moving the write-ahead log into the database
/// when it ends (the next writer does).
fn short_lived() -> StoreOptions {
    StoreOptions { integrity_check: false, checkpoint_on_close: false, ..StoreOptions::default() }
}

/// The symbol index of a workspace whose own state a dry run does not write (there is none yet,
/// or it is read-only), kept in the user's cache directory so that the next dry run parses only
/// what changed: `$XDG_CACHE_HOME/acas/index/<hash of the root>.db`, else `~/.cache/acas/…`.
/// `None`, and every file indexed, when that cannot be opened.
fn index_cache(root: &std::path::Path) -> Option<Store> {
    let path = crate::store::index_cache_path(root)?;
    match Store::open_cache(&path, short_lived()) {
        Ok(store) => {
            tracing::info!("the symbol index is kept in {}", path.display());
            Some(store)
        }
        Err(error) => {
            tracing::warn!(%error, "the symbol index cannot be kept in the cache; every file is indexed");
            None
        }
    }
}

fn print_dry_run(prepared: &Prepared, unavailable: &[(String, String)], format: ListFormat) {
    match format {
        ListFormat::Text => {
            let mut text = format!("# System\n\n{}\n\n# Prompt\n\n{}\n", prepared.system, prepared.prompt);
            text.push_str(&format!(
                "# Estimate\n\n{} input tokens, up to {} output tokens\n",
                prepared.estimated_input_tokens, prepared.max_output_tokens
            ));
            for (provider, model, cost) in &prepared.estimates {
                text.push_str(&format!("- {provider} ({model}): up to ${:.4}\n", usd(*cost)));
            }
            for (provider, why) in unavailable {
                text.push_str(&format!("- {provider}: not ready, {why}\n"));
            }
            text.push_str("\n# Redacted\n\n");
            if prepared.redactions.kinds.is_empty() {
                text.push_str("nothing\n");
            }
            for (kind, n) in &prepared.redactions.kinds {
                text.push_str(&format!("{n} × {kind}\n"));
            }
            text.push_str("\nNothing was sent (--dry-run).");
            output::line(&text);
        }
        ListFormat::Json => {
            let value = json!({
                "dry_run": true,
                "system": prepared.system,
                "prompt": prepared.prompt,
                "estimated_input_tokens": prepared.estimated_input_tokens,
                "max_output_tokens": prepared.max_output_tokens,
                "estimates": prepared.estimates.iter().map(|(p, m, c)| json!({ "provider": p, "model": m, "max_cost_usd": usd(*c) })).collect::<Vec<_>>(),
                "redactions": prepared.redactions.kinds.iter().map(|(k, n)| json!({ "kind": k, "count": n })).collect::<Vec<_>>(),
                "unavailable": unavailable.iter().map(|(p, why)| json!({ "provider": p, "reason": why })).collect::<Vec<_>>(),
            });
            output::line(&serde_json::to_string_pretty(&value).expect("JSON values serialise"));
        }
    }
}

fn print_explained(e: &Explained, format: ListFormat) {
    match format {
        ListFormat::Text => {
            let mut text = format!("{}\n", e.explanation.trim());
            match (&e.fix, &e.fix_rejected) {
                (Some(fix), _) => {
                    text.push_str(&format!("\nFix (verified: it applies and parses): {}\n", fix.description));
                    for (path, replacements) in &fix.files {
                        for r in replacements {
                            text.push_str(&format!("  {path} @{}..{}:\n", r.range.start, r.range.end));
                            text.push_str(&format!("  + {}\n", r.new.replace('\n', "\n  + ")));
                        }
                    }
                }
                (None, Some(reason)) => {
                    text.push_str(&format!("\nThe proposed fix is not offered: {reason}\n"))
                }
                (None, None) => text.push_str("\nNo fix proposed.\n"),
            }
            let cached = if e.cached { ", from the cache" } else { "" };
            text.push_str(&format!(
                "\n{} ({}): {} input + {} output tokens, ${:.6}{cached}",
                e.provider,
                e.model,
                e.usage.input_tokens,
                e.usage.output_tokens,
                usd(e.cost_micros)
            ));
            for (provider, why) in &e.skipped {
                text.push_str(&format!("\nskipped {provider}: {why}"));
            }
            output::line(&text);
        }
        ListFormat::Json => {
            let fix = match (&e.fix, &e.fix_rejected) {
                (Some(fix), _) => json!({
                    "description": fix.description,
                    "verified": true,
                    "edits": fix.files.iter().flat_map(|(path, rs)| rs.iter().map(move |r| json!({
                        "path": path, "start": r.range.start, "end": r.range.end, "new": r.new,
                    }))).collect::<Vec<_>>(),
                }),
                (None, Some(reason)) => json!({ "verified": false, "reason": reason, "edits": [] }),
                (None, None) => serde_json::Value::Null,
            };
            let value = json!({
                "explanation": e.explanation,
                "fix": fix,
                "provider": e.provider,
                "model": e.model,
                "usage": { "input_tokens": e.usage.input_tokens, "output_tokens": e.usage.output_tokens, "cached_input_tokens": e.usage.cached_input_tokens },
                "cost_usd": usd(e.cost_micros),
                "cached": e.cached,
                "skipped": e.skipped.iter().map(|(p, why)| json!({ "provider": p, "reason": why })).collect::<Vec<_>>(),
            });
            output::line(&serde_json::to_string_pretty(&value).expect("JSON values serialise"));
        }
    }
}
