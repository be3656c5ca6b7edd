//! `ai.ask`, `ai.review` and `ai.plan`, through [`Ai`](super::Ai), and [`EscalatorAi`], which
//! makes the escalation providers, with their budgets, cache and redaction, that `Ai`. `ai.plan`
//! is the planner's, reached through [`Planner`](super::Planner); this module only exposes it as
//! an action.

use std::path::Path;
use std::sync::Arc;

use futures_util::future::BoxFuture;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::confine::{self, Follow};
use super::schema::{Exclusive, Kind, Param, Spec};
use super::{ActionContext, ActionError, Ai, AiAnswer, AiError, AiErrorKind, Args};
use crate::escalate::cost;
use crate::escalate::engine::{EscalateError, Escalator};

/// What calls from workflows are labelled with in `acas cost`.
pub const CATEGORY: &str = "workflow";

const ASK_SYSTEM: &str = "You are a careful senior software engineer helping inside a developer's editor. Answer precisely and briefly.";
const REVIEW_SYSTEM: &str = "You are a careful senior software engineer reviewing code. Point out bugs, risks and unclear code, most important first, each with its line. Say so plainly when the code is fine.";
const REVIEW_INSTRUCTIONS: &str = "Review this code.";
/// Largest file `ai.review` sends.
const MAX_REVIEW_BYTES: u64 = 256 * 1024;

pub const ASK: Spec = Spec {
    name: "ai.ask",
    summary: "Asks the configured AI providers, in chain order, within the budgets: the request is redacted, answered from the cache when the same question was asked before, and refused before sending when its worst-case cost would exceed a budget.",
    params: &[
        Param::required("prompt", Kind::Text, "The question."),
        Param::optional(
            "system",
            Kind::Text,
            Some("a short engineering-assistant prompt"),
            "The system prompt.",
        ),
        Param::optional(
            "json",
            Kind::JsonRequest,
            Some("false"),
            "Ask for JSON: `true` for any object, or a JSON Schema the reply must follow; the reply is parsed into `json`.",
        ),
    ],
    exclusive: &[],
    output: "`{text, json, provider, model, input_tokens, output_tokens, cost_usd, cached}`; `json` is the parsed reply when `json` was asked for, else `null`.",
};

pub const REVIEW: Spec = Spec {
    name: "ai.review",
    summary: "Asks the AI providers to review a file of the workspace (at most 256 KiB; files matching `no_egress` are never sent) or a piece of text, like `ai.ask`.",
    params: &[
        Param::optional("path", Kind::String, None, "The file to review, confined to the workspace."),
        Param::optional("content", Kind::Text, None, "The text to review instead of a file."),
        Param::optional("instructions", Kind::Text, Some("Review this code."), "What to look for."),
    ],
    exclusive: &[Exclusive { names: &["path", "content"], required: true }],
    output: "`{text, path, provider, model, input_tokens, output_tokens, cost_usd, cached}`; `path` is `null` for `content`.",
};

pub const PLAN: Spec = Spec {
    name: "ai.plan",
    summary: "Asks the AI providers for a plan reaching `prompt`: a DAG of tasks, each a built-in action or a command, checked against a JSON Schema and the action schemas (an invalid reply is repaired once), with identical tasks merged and dependency cycles broken (see [Plan, then execute](#plan-then-execute)). The plan is returned, not run: running a plan needs someone to approve it, with `acas plan` or in the editor.",
    params: &[Param::required("prompt", Kind::Text, "What the plan should achieve.")],
    exclusive: &[],
    output: "`{tasks, notes, definition, cost_usd, calls}`: `tasks` as `[{id, name, description, action, with, needs, priority}]`, `notes` what was repaired, merged or untied, `definition` the workflow that runs the plan (JSON, which a `.acas/workflows/*.yaml` file may hold).",
};

fn provider(ctx: &ActionContext) -> Result<&dyn Ai, ActionError> {
    ctx.ai.as_deref().ok_or_else(|| ActionError::new(EscalateError::NoProvider.to_string()))
}

/// Asks. Cancellation is left to the provider, which stops at `ctx.cancel` and records how the
/// call ended; dropping its future instead would leave the call's cost reserved.
async fn ask(
    ctx: &ActionContext,
    system: &str,
    prompt: &str,
    schema: Option<Value>,
) -> Result<AiAnswer, ActionError> {
    let ai = provider(ctx)?;
    refuse_withheld(ctx, ai, &[system, prompt])?;
    ai.ask(system, prompt, schema, &ctx.cancel).await.map_err(|e| ActionError::new(e.message))
}

/// Fails when any of `texts` holds text of a file that must not leave ([`withheld_in`]).
fn refuse_withheld(ctx: &ActionContext, ai: &dyn Ai, texts: &[&str]) -> Result<(), ActionError> {
    for text in texts {
        if let Some(path) = withheld_in(&ctx.workspace, ai, text) {
            return Err(ActionError::new(format!(
                "the request holds text of `{path}`, which matches the no_egress globs, so nothing from it is sent; leave that text out of the prompt"
            )));
        }
    }
    Ok(())
}

/// Most files of the workspace looked at for text that must not leave.
const MAX_WITHHELD_FILES: usize = 20_000;
/// Shortest value of a withheld file looked for in a request.
const MIN_WITHHELD_VALUE: usize = 8;

/// A workspace file matching `no_egress` whose content `text` holds (a value of one of its
/// lines, `NAME=value` or `name: value`, of eight characters or more), whatever way it came
/// into the text: `file.read` then a template, a command's output, a step's result. Text read
/// from such a file is never sent, however it reached a request.
fn withheld_in(workspace: &Path, ai: &dyn Ai, text: &str) -> Option<String> {
    let walk = ignore::WalkBuilder::new(workspace)
        .standard_filters(false)
        .hidden(false)
        .filter_entry(|e| {
            !matches!(e.file_name().to_str(), Some(".git" | ".acas" | "target" | "node_modules"))
        })
        .build();
    for entry in walk.take(MAX_WITHHELD_FILES).flatten() {
        if !entry.file_type().is_some_and(|t| t.is_file()) {
            continue;
        }
        let Ok(relative) = entry.path().strip_prefix(workspace) else { continue };
        let relative = relative.to_string_lossy().replace('\\', "/");
        if ai.may_send(&relative) {
            continue;
        }
        let Ok(content) = std::fs::read(entry.path()) else { continue };
        let content = String::from_utf8_lossy(&content[..content.len().min(MAX_REVIEW_BYTES as usize)]);
        let holds = content.lines().any(|line| {
            let line = line.trim();
            let value = line.split_once(['=', ':']).map_or(line, |(_, v)| v).trim().trim_matches(['"', '\'']);
            value.chars().count() >= MIN_WITHHELD_VALUE && text.contains(value)
        });
        if holds {
            return Some(relative);
        }
    }
    None
}

fn output(answer: AiAnswer) -> Value {
    json!({
        "text": answer.text,
        "provider": answer.provider,
        "model": answer.model,
        "input_tokens": answer.input_tokens,
        "output_tokens": answer.output_tokens,
        "cost_usd": answer.cost_usd,
        "cached": answer.cached,
    })
}

pub async fn run_ask(ctx: &ActionContext, args: &Args<'_>) -> Result<Value, ActionError> {
    let prompt = args.need_text("prompt")?;
    let system = args.text("system").unwrap_or_else(|| ASK_SYSTEM.to_owned());
    let schema = match args.value("json") {
        Some(Value::Bool(true)) => Some(json!({"type": "object"})),
        Some(schema @ Value::Object(_)) => Some(schema.clone()),
        _ => None,
    };
    let wants_json = schema.is_some();
    let answer = ask(ctx, &system, &prompt, schema).await?;
    let parsed = if wants_json {
        parse_json(&answer.text)
            .map_err(|e| ActionError::new(format!("the reply is not the JSON asked for: {e}")))?
    } else {
        Value::Null
    };
    let mut out = output(answer);
    out["json"] = parsed;
    Ok(out)
}

pub async fn run_plan(ctx: &ActionContext, args: &Args<'_>) -> Result<Value, ActionError> {
    let ai = provider(ctx)?;
    let prompt = args.need_text("prompt")?;
    refuse_withheld(ctx, ai, &[&prompt])?;
    let name = format!("plan-{}-{}", ctx.run_id, ctx.step_id);
    ctx.planner.plan(ai, &prompt, &name, &ctx.cancel).await
}

/// The JSON of a reply, with or without a Markdown code fence around it.
fn parse_json(text: &str) -> Result<Value, serde_json::Error> {
    let trimmed = text.trim();
    let unfenced = trimmed
        .strip_prefix("```json")
        .or_else(|| trimmed.strip_prefix("```"))
        .and_then(|rest| rest.trim_end().strip_suffix("```"))
        .unwrap_or(trimmed);
    serde_json::from_str(unfenced.trim())
}

pub async fn run_review(ctx: &ActionContext, args: &Args<'_>) -> Result<Value, ActionError> {
    let ai = provider(ctx)?;
    let instructions = args.text("instructions").unwrap_or_else(|| REVIEW_INSTRUCTIONS.to_owned());
    let (path, content) = match args.str("path") {
        Some(given) => {
            let (relative, content) = read_for_review(&ctx.workspace, given)?;
            if !ai.may_send(&relative) {
                return Err(ActionError::new(format!(
                    "`{relative}` matches the no_egress globs, so nothing from it is sent"
                )));
            }
            (Some(relative), content)
        }
        None => (None, args.need_text("content")?),
    };
    let prompt = match &path {
        Some(path) => format!("{instructions}\n\nThe file `{path}`:\n\n```\n{content}\n```\n"),
        None => format!("{instructions}\n\n```\n{content}\n```\n"),
    };
    let answer = ask(ctx, REVIEW_SYSTEM, &prompt, None).await?;
    let mut out = output(answer);
    out["path"] = json!(path);
    Ok(out)
}

fn read_for_review(workspace: &Path, given: &str) -> Result<(String, String), ActionError> {
    let root = confine::Root::open(workspace)?;
    let resolved = confine::resolve(workspace, given, Follow::All)?;
    let shown = resolved.relative;
    let cannot = |e: std::io::Error| ActionError::new(format!("cannot read `{shown}`: {e}"));
    let mut file = root.dir().open(&resolved.beneath).map_err(cannot)?.into_std();
    let size = file.metadata().map_err(cannot)?.len();
    if size > MAX_REVIEW_BYTES {
        return Err(ActionError::new(format!(
            "`{shown}` is too large to review: {size} bytes, the limit is {MAX_REVIEW_BYTES}"
        )));
    }
    let mut content = String::new();
    std::io::Read::read_to_string(&mut file, &mut content).map_err(cannot)?;
    Ok((shown, content))
}

/// The escalation providers as [`Ai`]: every question goes through [`Escalator::ask`], so the
/// budgets, the reply cache and redaction apply, and the calls are recorded for `acas cost`
/// under the category `workflow`.
pub struct EscalatorAi(pub Arc<Escalator>);

impl Ai for EscalatorAi {
    fn ask<'a>(
        &'a self,
        system: &'a str,
        prompt: &'a str,
        json_schema: Option<Value>,
        cancel: &'a CancellationToken,
    ) -> BoxFuture<'a, Result<AiAnswer, AiError>> {
        Box::pin(async move {
            let asked = self.0.ask(system, prompt, json_schema, CATEGORY, cancel).await.map_err(|e| {
                let kind = match e {
                    EscalateError::NoProvider | EscalateError::Config(_) | EscalateError::NoEgress(_) => {
                        AiErrorKind::Unavailable
                    }
                    EscalateError::Exhausted(_)
                    | EscalateError::OverBudget(_)
                    | EscalateError::SpendDenied(_)
                    | EscalateError::Internal(_) => AiErrorKind::Failed,
                    EscalateError::Cancelled => AiErrorKind::Cancelled,
                };
                AiError::new(kind, e.to_string())
            })?;
            Ok(AiAnswer {
                text: asked.text,
                provider: asked.provider,
                model: asked.model,
                input_tokens: asked.usage.input_tokens,
                output_tokens: asked.usage.output_tokens,
                cost_usd: cost::usd(asked.cost_micros),
                cached: asked.cached,
            })
        })
    }

    fn may_send(&self, relative_path: &str) -> bool {
        self.0.redactor().may_send(relative_path)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use futures_util::future::BoxFuture;
    use serde_json::{Value, json};
    use tokio_util::sync::CancellationToken;

    use super::super::tests::{context, run_with};
    use super::super::{ActionContext, Ai, AiAnswer, AiError};

    /// Answers with a fixed text and remembers what it was asked. This stands in for the
    /// providers only to check what the actions send and return; the providers themselves, with
    /// budgets, are tested against the fake provider server in `tests/tests/ai_actions.rs`.
    struct Scripted {
        reply: String,
        asked: Mutex<Vec<(String, String, Option<Value>)>>,
    }

    impl Ai for Scripted {
        fn ask<'a>(
            &'a self,
            system: &'a str,
            prompt: &'a str,
            json_schema: Option<Value>,
            _cancel: &'a CancellationToken,
        ) -> BoxFuture<'a, Result<AiAnswer, AiError>> {
            self.asked.lock().unwrap().push((system.to_owned(), prompt.to_owned(), json_schema));
            let reply = self.reply.clone();
            Box::pin(async move {
                Ok(AiAnswer {
                    text: reply,
                    provider: "p".into(),
                    model: "m".into(),
                    input_tokens: 3,
                    output_tokens: 4,
                    cost_usd: 0.5,
                    cached: false,
                })
            })
        }

        fn may_send(&self, relative_path: &str) -> bool {
            !relative_path.ends_with(".env")
        }
    }

    fn with_ai(ws: &std::path::Path, reply: &str) -> (ActionContext, Arc<Scripted>) {
        let ai = Arc::new(Scripted { reply: reply.into(), asked: Mutex::new(Vec::new()) });
        let mut ctx = context(ws);
        ctx.ai = Some(ai.clone());
        (ctx, ai)
    }

    #[test]
    fn without_a_provider_the_actions_say_so() {
        let ws = tempfile::tempdir().unwrap();
        let ctx = context(ws.path());
        let got = run_with(&ctx, "ai.ask", json!({"prompt": "hi"})).err();
        assert!(got.starts_with("no AI provider is configured: add [[providers]]"), "{got}");
        let got = run_with(&ctx, "ai.review", json!({"content": "x"})).err();
        assert!(got.starts_with("no AI provider is configured"), "{got}");
    }

    #[test]
    fn asking_for_text_and_for_json() {
        let ws = tempfile::tempdir().unwrap();
        let (ctx, ai) = with_ai(ws.path(), "```json\n{\"ok\": true}\n```");
        let got =
            run_with(&ctx, "ai.ask", json!({"prompt": "Is it ok?", "system": "Be terse.", "json": true}))
                .ok();
        assert_eq!(
            got,
            json!({"text": "```json\n{\"ok\": true}\n```", "json": {"ok": true}, "provider": "p", "model": "m",
                   "input_tokens": 3, "output_tokens": 4, "cost_usd": 0.5, "cached": false})
        );
        let schema = json!({"type": "object", "properties": {"ok": {"type": "boolean"}}});
        run_with(&ctx, "ai.ask", json!({"prompt": "again", "json": schema})).ok();
        let plain = run_with(&ctx, "ai.ask", json!({"prompt": "plain"})).ok();
        assert_eq!(plain["json"], Value::Null);
        let asked = ai.asked.lock().unwrap().clone();
        assert_eq!(asked[0], ("Be terse.".into(), "Is it ok?".into(), Some(json!({"type": "object"}))));
        assert_eq!(asked[1].2, Some(schema));
        assert_eq!(asked[2].2, None);

        let (ctx, _) = with_ai(ws.path(), "Sure! Here it is.");
        let got = run_with(&ctx, "ai.ask", json!({"prompt": "json please", "json": true})).err();
        assert!(got.starts_with("the reply is not the JSON asked for"), "{got}");
    }

    #[test]
    fn reviews_read_confined_files() {
        let dir = tempfile::tempdir().unwrap();
        let ws = dir.path().join("ws");
        std::fs::create_dir_all(&ws).unwrap();
        std::fs::write(ws.join("lib.rs"), "fn main() {}\n").unwrap();
        std::fs::write(ws.join("prod.env"), "KEY=1\n").unwrap();
        std::fs::write(dir.path().join("outside.rs"), "secret\n").unwrap();
        let (ctx, ai) = with_ai(&ws, "Looks fine.");
        let got =
            run_with(&ctx, "ai.review", json!({"path": "lib.rs", "instructions": "Check errors."})).ok();
        assert_eq!((got["text"].clone(), got["path"].clone()), (json!("Looks fine."), json!("lib.rs")));
        let prompt = ai.asked.lock().unwrap()[0].1.clone();
        assert!(prompt.starts_with("Check errors.\n\nThe file `lib.rs`:\n\n```\nfn main() {}\n"), "{prompt}");

        for (with, message) in [
            (json!({"path": "../outside.rs"}), "climbs out of the workspace"),
            (json!({"path": "prod.env"}), "`prod.env` matches the no_egress globs"),
            (json!({"path": "missing.rs"}), "cannot read `missing.rs`"),
            (json!({}), "`ai.review` needs `path` or `content`"),
            (json!({"path": "lib.rs", "content": "x"}), "give only one of `path` and `content`"),
        ] {
            let got = run_with(&ctx, "ai.review", with.clone()).err();
            assert!(got.contains(message), "{with}: {got}");
        }
        assert_eq!(ai.asked.lock().unwrap().len(), 1, "refused reviews send nothing");
        let got = run_with(&ctx, "ai.review", json!({"content": "let x = 1;"})).ok();
        assert_eq!(got["path"], Value::Null);
    }
}
