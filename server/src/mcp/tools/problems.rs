//! `problems`: the open problems the workspace recorded, by class, with their history and how
//! the same problem was fixed before.

use std::collections::BTreeMap;
use std::sync::Arc;

use rmcp::model::{ErrorData, Tool};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{plural, tool};
use crate::mcp::{Answer, Shared, internal, invalid};
use crate::store::{FixOutcome, ProblemRow};
use crate::time::date_time;

pub(super) const PROBLEMS: &str = "problems";

/// Past fixes listed per problem.
const PAST_FIXES: usize = 3;
/// Most problems one answer lists, and the default.
pub const MAX_PROBLEMS: usize = 500;
const DEFAULT_PROBLEMS: usize = 50;

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct ProblemsArgs {
    /// Only problems of this category (`syntax`, `type`, `lint`, `import`, …).
    #[serde(default)]
    category: Option<String>,
    /// Only problems open in this file (relative to the workspace root).
    #[serde(default)]
    path: Option<String>,
    /// At most this many problems, most recently seen first (default 50, at most 500).
    #[serde(default)]
    limit: Option<usize>,
}

pub(super) fn tools() -> Vec<Tool> {
    vec![tool::<ProblemsArgs>(
        PROBLEMS,
        "The open problems ACAS has recorded in this workspace (its own syntax errors and the diagnostics \
         of the project's checkers and editors), grouped by category, each with its fingerprint, where it is \
         open now, when it was first seen, how many times it appeared, and how the same problem was fixed \
         before (the edits that resolved it).",
    )]
}

pub(super) async fn problems(shared: &Arc<Shared>, args: ProblemsArgs) -> Result<Answer, ErrorData> {
    let limit = args.limit.unwrap_or(DEFAULT_PROBLEMS);
    if limit == 0 || limit > MAX_PROBLEMS {
        return Err(invalid(format!("`limit` must be between 1 and {MAX_PROBLEMS}; it was {limit}")));
    }
    let path = args.path.as_deref().map(|p| shared.inside(p)).transpose()?;
    let rel = path.as_deref().map(|p| shared.relative(p));
    let (_, mut rows) = shared
        .handle
        .problems(args.category.clone(), path)
        .await
        .ok_or_else(|| internal("reading problems failed inside ACAS; see its log"))?
        .map_err(|refused| internal(refused.message))?;
    let total = rows.len();
    rows.truncate(limit);
    let store = shared.store.clone();
    let fingerprints: Vec<String> = rows.iter().map(|r| r.fingerprint.clone()).collect();
    let past: Vec<Vec<FixOutcome>> = tokio::task::spawn_blocking(move || {
        fingerprints
            .iter()
            .map(|f| store.as_ref().and_then(|s| s.past_fixes(f, PAST_FIXES).ok()).unwrap_or_default())
            .collect()
    })
    .await
    .unwrap_or_default();
    Ok(answer(&rows, &past, total, rel))
}

fn answer(rows: &[ProblemRow], past: &[Vec<FixOutcome>], total: usize, path: Option<String>) -> Answer {
    let mut by_category: BTreeMap<&str, Vec<(&ProblemRow, &[FixOutcome])>> = BTreeMap::new();
    for (i, row) in rows.iter().enumerate() {
        let fixes = past.get(i).map_or(&[][..], Vec::as_slice);
        by_category.entry(row.category.as_str()).or_default().push((row, fixes));
    }
    let counts: Vec<String> = by_category.iter().map(|(c, rs)| format!("{} {c}", rs.len())).collect();
    let mut text = if rows.is_empty() {
        "no open problems".to_owned()
    } else {
        format!("{} open ({})", plural(total, "problem", "problems"), counts.join(", "))
    };
    if rows.len() < total {
        text.push_str(&format!("; the {} most recently seen listed", rows.len()));
    }
    let mut classes = serde_json::Map::new();
    for (category, entries) in &by_category {
        text.push_str(&format!("\n{category}:"));
        let mut listed = Vec::new();
        for (row, fixes) in entries {
            let at = row
                .locations
                .first()
                .map(|(p, l, c)| format!("{p}:{}:{}", l + 1, c + 1))
                .unwrap_or_else(|| "resolved".to_owned());
            text.push_str(&format!(
                "\n  {at}: {} [{}] {} ({}, first seen {}, {})",
                row.severity,
                row.source,
                row.message,
                row.fingerprint,
                date_time(row.first_seen_ms),
                plural(row.occurrences as usize, "occurrence", "occurrences"),
            ));
            for fix in fixes.iter() {
                text.push_str(&format!(
                    "\n    fixed before ({}): {}",
                    fix.outcome.as_str(),
                    fix.description.as_deref().unwrap_or("an edit")
                ));
            }
            listed.push(problem_json(row, fixes));
        }
        classes.insert((*category).to_owned(), Value::Array(listed));
    }
    let data = json!({ "total": total, "listed": rows.len(), "by_category": classes });
    Answer { text, data, path }
}

fn problem_json(row: &ProblemRow, fixes: &[FixOutcome]) -> Value {
    json!({
        "fingerprint": row.fingerprint,
        "category": row.category,
        "severity": row.severity,
        "message": row.message,
        "source": row.source,
        "symbol": row.symbol,
        "occurrences": row.occurrences,
        "first_seen": date_time(row.first_seen_ms),
        "first_seen_ms": row.first_seen_ms,
        "last_seen_ms": row.last_seen_ms,
        "locations": row.locations.iter().map(|(p, l, c)| json!({ "path": p, "line": l + 1, "column": c + 1 })).collect::<Vec<_>>(),
        "past_fixes": fixes.iter().map(|f| json!({
            "description": f.description,
            "outcome": f.outcome.as_str(),
            "provider": f.provider,
            "model": f.model,
            "old": f.old,
            "new": f.new,
            "at_ms": f.at_ms,
        })).collect::<Vec<_>>(),
    })
}
