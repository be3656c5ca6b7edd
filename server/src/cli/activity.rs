//! `acas activity`: read the activity log of a workspace.

use std::path::Path;
use std::time::Duration;

use serde_json::json;

use super::{EXIT_FAILED, EXIT_OK, ListFormat, output};
use crate::store::{ActivityKind, ActivityQuery, Store, StoreOptions};
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
    if !root.join(".acas").join("state.db").exists() {
        output::note(&format!(
            "acas activity: nothing recorded in {} yet; run `acas watch` or open it in an editor with ACAS",
            root.display()
        ));
        return EXIT_FAILED;
    }
    let store = match Store::open_workspace(&root, StoreOptions::default()) {
        Ok(store) => store,
        Err(error) => {
            output::note(&format!("acas activity: {error}"));
            return EXIT_FAILED;
        }
    };
    let query =
        ActivityQuery { since_ms: since.map(|s| now_ms() - s.as_millis() as i64), limit, path_prefix: None };
    let rows = match store.activity(&query) {
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
    };
    match format {
        ListFormat::Text => {
            for row in &rows {
                let detail = row.detail.as_deref().map(|d| format!("  {d}")).unwrap_or_default();
                let line = format!(
                    "{}  {:<10} {:<9} {}{detail}",
                    format_time(row.at_ms),
                    kind(row.kind),
                    row.action,
                    row.path
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
    let _ = store.close();
    EXIT_OK
}

/// `YYYY-MM-DD HH:MM:SS` in UTC, from Unix milliseconds.
fn format_time(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}", rem / 3600, rem % 3600 / 60, rem % 60)
}

/// Howard Hinnant's days-to-civil algorithm.
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    #[test]
    fn times_are_utc() {
        assert_eq!(super::format_time(0), "1970-01-01 00:00:00");
        assert_eq!(super::format_time(1_795_000_000_000), "2026-11-18 11:06:40");
    }
}
