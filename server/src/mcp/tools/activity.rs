//! `activity`: what changed in the workspace recently and by whom: the activity log (files on
//! disk, editors, diagnostics appearing and resolved, agents' tool calls) and, in a git
//! repository, the recent commits with their authors and what is not committed yet.

use std::sync::Arc;

use rmcp::model::{ErrorData, Tool};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};

use super::tool;
use crate::escalate::git;
use crate::mcp::{Answer, Shared, internal, invalid};
use crate::store::{ActivityQuery, ActivityRow};
use crate::time::{date_time, now_ms};

pub(super) const ACTIVITY: &str = "activity";

/// Most rows and commits one answer lists.
pub const MAX_ACTIVITY: usize = 500;
const DEFAULT_ACTIVITY: usize = 50;
const DEFAULT_COMMITS: usize = 10;

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct ActivityArgs {
    /// Only activity newer than this, as `30s`, `10m`, `2h` or `7d`.
    #[serde(default)]
    since: Option<String>,
    /// Only activity under this path (relative to the workspace root).
    #[serde(default)]
    path: Option<String>,
    /// At most this many rows of the activity log, newest first (default 50, at most 500).
    #[serde(default)]
    limit: Option<usize>,
    /// At most this many recent git commits (default 10, at most 500; 0 for none).
    #[serde(default)]
    commits: Option<usize>,
}

pub(super) fn tools() -> Vec<Tool> {
    vec![tool::<ActivityArgs>(
        ACTIVITY,
        "What changed in the workspace recently, newest first, and by whom: files created, modified, \
         deleted or renamed on disk; editor opens, changes and saves; diagnostics that appeared or were \
         resolved; tool calls of AI agents (by client name); and the recent git commits (author, files) \
         and uncommitted files.",
    )]
}

pub(super) async fn activity(shared: &Arc<Shared>, args: ActivityArgs) -> Result<Answer, ErrorData> {
    let limit = args.limit.unwrap_or(DEFAULT_ACTIVITY);
    let commits = args.commits.unwrap_or(DEFAULT_COMMITS);
    if limit == 0 || limit > MAX_ACTIVITY || commits > MAX_ACTIVITY {
        return Err(invalid(format!(
            "`limit` must be between 1 and {MAX_ACTIVITY} and `commits` at most {MAX_ACTIVITY}"
        )));
    }
    let since = match &args.since {
        Some(text) => Some(
            crate::duration::parse(text)
                .map_err(|e| invalid(format!("`since`: {}; write it as 30s, 10m, 2h or 7d", e.message)))?,
        ),
        None => None,
    };
    let path_prefix = match args.path.as_deref() {
        Some(p) => Some(shared.relative(&shared.inside(p)?)),
        None => None,
    };
    let query = ActivityQuery {
        since_ms: since.map(|s| now_ms() - s.as_millis() as i64),
        limit,
        path_prefix: path_prefix.clone().filter(|p| !p.is_empty()),
    };
    let store = shared.store.clone();
    let root = shared.root.clone();
    let (rows, recent) = tokio::task::spawn_blocking(move || {
        let rows = match &store {
            Some(store) => store.flush().and_then(|()| store.activity(&query)).map_err(|e| e.to_string()),
            None => Ok(Vec::new()),
        };
        let recent = if commits > 0 { git::recent(&root, commits).ok().flatten() } else { None };
        (rows, recent)
    })
    .await
    .map_err(|_| internal("reading the activity failed inside ACAS; see its log"))?;
    let rows = rows.map_err(|e| internal(format!("reading the activity failed: {e}")))?;
    Ok(answer(&rows, recent.as_ref(), path_prefix))
}

fn answer(rows: &[ActivityRow], recent: Option<&git::Recent>, path: Option<String>) -> Answer {
    let mut text = format!("{} recent change{}", rows.len(), if rows.len() == 1 { "" } else { "s" });
    for row in rows {
        let detail = row.detail.as_deref().map(|d| format!(" ({d})")).unwrap_or_default();
        text.push_str(&format!(
            "\n{} {} {} {}{detail}",
            date_time(row.at_ms),
            row.kind.as_str(),
            row.action,
            if row.path.is_empty() { "-" } else { row.path.as_str() }
        ));
    }
    let mut git_json = Value::Null;
    if let Some(recent) = recent {
        if !recent.uncommitted.is_empty() {
            text.push_str(&format!("\nuncommitted: {}", recent.uncommitted.join(", ")));
        }
        for change in &recent.commits {
            let c = &change.commit;
            let more = if change.more_files > 0 {
                format!(" and {} more", change.more_files)
            } else {
                String::new()
            };
            text.push_str(&format!(
                "\ncommit {} {} by {}: {} [{}{more}]",
                c.id,
                c.date,
                c.author,
                c.summary,
                change.files.join(", ")
            ));
        }
        git_json = json!({
            "uncommitted": recent.uncommitted,
            "commits": recent.commits.iter().map(|ch| json!({
                "id": ch.commit.id,
                "author": ch.commit.author,
                "date": ch.commit.date,
                "summary": ch.commit.summary,
                "files": ch.files,
                "more_files": ch.more_files,
            })).collect::<Vec<_>>(),
        });
    }
    let activity: Vec<Value> = rows
        .iter()
        .map(|r| {
            json!({
                "at": date_time(r.at_ms),
                "at_ms": r.at_ms,
                "kind": r.kind.as_str(),
                "action": r.action,
                "path": r.path,
                "detail": r.detail,
            })
        })
        .collect();
    Answer { text, data: json!({ "activity": activity, "git": git_json }), path }
}
