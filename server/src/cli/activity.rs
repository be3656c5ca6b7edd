//! `acas activity`: read the activity log of a workspace.

use std::path::Path;
use std::time::Duration;

use serde_json::json;

use super::{EXIT_FAILED, EXIT_OK, ListFormat, output};
use crate::store::{ActivityKind, ActivityQuery};
use crate::workspace::now_ms;

pub(super) fn run(path: &Path, since: Option<Duration>, limit: usize, format: ListFormat) -> i32 {
    let root = match super::resolve(path) {
        Ok((root, true)) => root,
        Ok((_, false)) => {
            output::note(&format!("acas activity: {} is not a directory", path.display()));
            return EXIT_FAILED;
        }
        Err(error) => {
            output::note(&format!("acas activity: {error}"));
            return EXIT_FAILED;
        }
    };
    match super::recorded("activity", &root) {
        Ok(true) => {}
        Ok(false) => {
            output::note(&format!(
                "acas activity: nothing recorded in {} yet; run `acas watch` or open it in an editor with ACAS",
                root.display()
            ));
            return EXIT_FAILED;
        }
        Err(code) => return code,
    }
    let query =
        ActivityQuery { since_ms: since.map(|s| now_ms() - s.as_millis() as i64), limit, path_prefix: None };
    let rows = match super::read_state("activity", &root, |s| s.activity(&query), |s| s.activity(&query)) {
        Ok(rows) => rows,
        Err(error) => {
            output::note(&format!("acas activity: {error}"));
            return EXIT_FAILED;
        }
    };
    let kind = |k: ActivityKind| match k {
        ActivityKind::File => "file",
        ActivityKind::Editor => "editor",
        ActivityKind::Diagnostic => "diagnostic",
        ActivityKind::Agent => "agent",
    };
    match format {
        ListFormat::Text => {
            for row in &rows {
                let detail =
                    row.detail.as_deref().map(|d| format!("  {}", output::shown(d))).unwrap_or_default();
                let line = format!(
                    "{}  {:<10} {:<9} {}{detail}",
                    crate::time::date_time(row.at_ms),
                    kind(row.kind),
                    output::shown(&row.action),
                    output::shown(&row.path)
                );
                if !output::line(&line) {
                    break;
                }
            }
        }
        ListFormat::Json => {
            let rows: Vec<_> = rows
                .iter()
                .map(|r| {
                    json!({ "at_ms": r.at_ms, "kind": kind(r.kind), "action": r.action, "path": r.path, "detail": r.detail })
                })
                .collect();
            output::line(&json!({ "activity": rows }).to_string());
        }
    }
    EXIT_OK
}
