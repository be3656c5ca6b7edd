//! Reads, on the read-only connection.

use rusqlite::types::Type;
use rusqlite::{Connection, params};

use super::types::{ActivityKind, ActivityQuery, ActivityRow, ProblemQuery, ProblemRow};

pub(super) fn activity(conn: &Connection, query: &ActivityQuery) -> rusqlite::Result<Vec<ActivityRow>> {
    let limit = i64::try_from(query.limit).unwrap_or(i64::MAX);
    let mut stmt = conn.prepare_cached(
        "SELECT at_ms, kind, action, path, to_path, size, version, language, changes, detail
         FROM activity
         WHERE (?1 IS NULL OR at_ms >= ?1)
           AND (?2 IS NULL OR substr(path, 1, length(?2)) = ?2)
         ORDER BY at_ms DESC, id DESC
         LIMIT ?3",
    )?;
    let rows = stmt.query_map(params![query.since_ms, query.path_prefix, limit], |row| {
        let kind: String = row.get(1)?;
        let kind = ActivityKind::from_db(&kind).ok_or_else(|| {
            rusqlite::Error::FromSqlConversionFailure(
                1,
                Type::Text,
                format!("unknown activity kind {kind:?}").into(),
            )
        })?;
        let detail = match kind {
            ActivityKind::File => join_detail([
                row.get::<_, Option<String>>(4)?.map(|to| format!("to {to}")),
                row.get::<_, Option<i64>>(5)?.map(|size| format!("{size} bytes")),
                row.get::<_, Option<String>>(7)?,
            ]),
            ActivityKind::Editor => join_detail([
                row.get::<_, Option<i64>>(6)?.map(|v| format!("version {v}")),
                row.get::<_, Option<i64>>(8)?.filter(|&n| n > 1).map(|n| format!("{n} changes")),
                row.get::<_, Option<String>>(7)?,
            ]),
            ActivityKind::Diagnostic => row.get(9)?,
        };
        Ok(ActivityRow { at_ms: row.get(0)?, kind, action: row.get(2)?, path: row.get(3)?, detail })
    })?;
    rows.collect()
}

fn join_detail<const N: usize>(parts: [Option<String>; N]) -> Option<String> {
    let parts: Vec<String> = parts.into_iter().flatten().collect();
    (!parts.is_empty()).then(|| parts.join(", "))
}

pub(super) fn problems(conn: &Connection, query: &ProblemQuery) -> rusqlite::Result<Vec<ProblemRow>> {
    let mut stmt = conn.prepare_cached(
        "SELECT fingerprint, category, severity, message, source, symbol, occurrences,
                first_seen_ms, last_seen_ms, appeared_ms, resolved_at_ms
         FROM problem
         WHERE (?1 IS NULL OR category = ?1)
           AND (?2 OR resolved_at_ms IS NULL)
           AND (?3 IS NULL OR last_path = ?3
                OR EXISTS (SELECT 1 FROM open_diagnostic o
                           WHERE o.fingerprint = problem.fingerprint AND o.path = ?3))
         ORDER BY last_seen_ms DESC, fingerprint",
    )?;
    let mut problems = stmt
        .query_map(params![query.category, query.include_resolved, query.path], |row| {
            Ok(ProblemRow {
                fingerprint: row.get(0)?,
                category: row.get(1)?,
                severity: row.get(2)?,
                message: row.get(3)?,
                source: row.get(4)?,
                symbol: row.get(5)?,
                occurrences: row.get::<_, i64>(6)?.max(0) as u64,
                first_seen_ms: row.get(7)?,
                last_seen_ms: row.get(8)?,
                appeared_ms: row.get(9)?,
                resolved_at_ms: row.get(10)?,
                locations: Vec::new(),
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;

    let mut locations = conn.prepare_cached(
        "SELECT DISTINCT path, line, character FROM open_diagnostic
         WHERE fingerprint = ?1 ORDER BY path, line, character",
    )?;
    for problem in problems.iter_mut().filter(|p| p.resolved_at_ms.is_none()) {
        problem.locations = locations
            .query_map([&problem.fingerprint], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))?
            .collect::<rusqlite::Result<_>>()?;
    }
    Ok(problems)
}
