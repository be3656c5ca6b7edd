//! Reads, on the read-only connection.

use rusqlite::types::Type;
use rusqlite::{Connection, OptionalExtension, params};

use super::types::{
    ActivityKind, ActivityQuery, ActivityRow, CacheEntry, CostRow, FixOutcome, FixStatsRow, Outcome,
    ProblemQuery, ProblemRow, SymbolFile, SymbolText,
};

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
            ActivityKind::Diagnostic | ActivityKind::Agent => row.get(9)?,
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

pub(super) fn open_diagnostics(
    conn: &Connection,
    path: &str,
    source: &str,
) -> rusqlite::Result<Vec<super::DiagnosticRecord>> {
    let mut stmt = conn.prepare_cached(
        "SELECT o.fingerprint, p.category, p.severity, p.message, o.source, p.symbol, o.line, o.character
         FROM open_diagnostic o JOIN problem p ON p.fingerprint = o.fingerprint
         WHERE o.path = ?1 AND o.source = ?2
         ORDER BY o.line, o.character, o.fingerprint",
    )?;
    stmt.query_map(params![path, source], |row| {
        Ok(super::DiagnosticRecord {
            fingerprint: row.get(0)?,
            category: row.get(1)?,
            severity: row.get(2)?,
            message: row.get(3)?,
            source: row.get(4)?,
            symbol: row.get(5)?,
            line: row.get::<_, i64>(6)?.clamp(0, i64::from(u32::MAX)) as u32,
            character: row.get::<_, i64>(7)?.clamp(0, i64::from(u32::MAX)) as u32,
        })
    })?
    .collect()
}

/// A count or sum read from SQLite, where it is an `INTEGER`, as `u64`.
fn get_u64(row: &rusqlite::Row, index: usize) -> rusqlite::Result<u64> {
    Ok(row.get::<_, i64>(index)?.max(0) as u64)
}

pub(super) fn spend_since(conn: &Connection, since_ms: i64, provider: Option<&str>) -> rusqlite::Result<u64> {
    // Refused and cached calls cost nothing, whatever their row says; so do rows with a negative
    // amount or dated in the future (see `budget::FUTURE_SKEW_MS`). A cancelled call may have
    // been billed for what was streamed before the cancellation, so its actual cost counts.
    let sql = "SELECT coalesce(sum(max(0, CASE
                   WHEN status = 'reserved' THEN reserved_micros
                   WHEN status IN ('succeeded', 'failed', 'cancelled') THEN cost_micros
                   ELSE 0 END)), 0)
               FROM provider_call WHERE at_ms >= ?1 AND at_ms <= ?2";
    let latest = super::budget::latest_counted_ms();
    match provider {
        Some(provider) => conn
            .prepare_cached(&format!("{sql} AND provider = ?3"))?
            .query_row(params![since_ms, latest, provider], |row| get_u64(row, 0)),
        None => conn.prepare_cached(sql)?.query_row(params![since_ms, latest], |row| get_u64(row, 0)),
    }
}

/// Whose calls a spend sum counts.
#[derive(Clone, Copy)]
pub(super) enum SpentBy<'a> {
    /// The person who asked (`[store] user`, else git's `user.email`).
    User(&'a str),
    /// The agent the call was made for, as policies name it.
    Agent(&'a str),
}

/// [`spend_since`] of the calls of one user or one agent.
pub(super) fn spend_since_by(conn: &Connection, since_ms: i64, by: SpentBy<'_>) -> rusqlite::Result<u64> {
    let (column, name) = match by {
        SpentBy::User(user) => ("user_name", user),
        SpentBy::Agent(agent) => ("agent", agent),
    };
    conn.prepare_cached(&format!(
        "SELECT coalesce(sum(max(0, CASE
             WHEN status = 'reserved' THEN reserved_micros
             WHEN status IN ('succeeded', 'failed', 'cancelled') THEN cost_micros
             ELSE 0 END)), 0)
         FROM provider_call WHERE {column} = ?2 AND at_ms >= ?1 AND at_ms <= ?3"
    ))?
    .query_row(params![since_ms, name, super::budget::latest_counted_ms()], |row| get_u64(row, 0))
}

pub(super) fn cache_get(conn: &Connection, key: &str) -> rusqlite::Result<Option<CacheEntry>> {
    conn.prepare_cached(
        "SELECT key, at_ms, fingerprint, model, provider, reply FROM cache_entry WHERE key = ?1",
    )?
    .query_row([key], |row| {
        Ok(CacheEntry {
            key: row.get(0)?,
            at_ms: row.get(1)?,
            fingerprint: row.get(2)?,
            model: row.get(3)?,
            provider: row.get(4)?,
            reply: row.get(5)?,
        })
    })
    .optional()
}

pub(super) fn cost_report(conn: &Connection, since_ms: i64) -> rusqlite::Result<Vec<CostRow>> {
    let mut stmt = conn.prepare_cached(
        "SELECT date(at_ms / 1000, 'unixepoch') AS day, provider, model,
                coalesce(category, '') AS cat,
                count(*) FILTER (WHERE status NOT IN ('refused', 'cached')),
                count(*) FILTER (WHERE status = 'cached'),
                count(*) FILTER (WHERE status = 'refused'),
                coalesce(sum(input_tokens) FILTER (WHERE status NOT IN ('refused', 'cached')), 0),
                coalesce(sum(output_tokens) FILTER (WHERE status NOT IN ('refused', 'cached')), 0),
                coalesce(sum(cost_micros)
                         FILTER (WHERE status IN ('succeeded', 'failed', 'cancelled')), 0)
         FROM provider_call
         WHERE at_ms >= ?1
         GROUP BY day, provider, model, cat
         ORDER BY day, provider, model, cat",
    )?;
    let rows = stmt.query_map([since_ms], |row| {
        Ok(CostRow {
            day: row.get(0)?,
            provider: row.get(1)?,
            model: row.get(2)?,
            category: row.get(3)?,
            calls: get_u64(row, 4)?,
            cached: get_u64(row, 5)?,
            refused: get_u64(row, 6)?,
            input_tokens: get_u64(row, 7)?,
            output_tokens: get_u64(row, 8)?,
            cost_micros: get_u64(row, 9)?,
        })
    })?;
    rows.collect()
}

pub(super) fn fix_stats(conn: &Connection) -> rusqlite::Result<Vec<FixStatsRow>> {
    let mut stmt = conn.prepare_cached(
        "SELECT provider, model, category,
                count(DISTINCT fix_id) FILTER (WHERE outcome = 'offered'),
                count(DISTINCT fix_id) FILTER (WHERE outcome = 'applied'),
                count(DISTINCT fix_id) FILTER (WHERE outcome = 'resolved'),
                count(DISTINCT fix_id) FILTER (WHERE outcome = 'reverted'),
                count(DISTINCT fix_id) FILTER (WHERE outcome = 'dismissed')
         FROM fix_outcome
         GROUP BY provider, model, category
         ORDER BY provider, model, category",
    )?;
    let rows = stmt.query_map([], |row| {
        Ok(FixStatsRow {
            provider: row.get(0)?,
            model: row.get(1)?,
            category: row.get(2)?,
            offered: get_u64(row, 3)?,
            applied: get_u64(row, 4)?,
            resolved: get_u64(row, 5)?,
            reverted: get_u64(row, 6)?,
            dismissed: get_u64(row, 7)?,
        })
    })?;
    rows.collect()
}

pub(super) fn past_fixes(
    conn: &Connection,
    fingerprint: &str,
    limit: usize,
) -> rusqlite::Result<Vec<FixOutcome>> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    // Per fix, its latest applied or resolved event that carries the edit, unless the fix was
    // reverted after it.
    let mut stmt = conn.prepare_cached(
        "SELECT fix_id, at_ms, fingerprint, category, provider, model, outcome, description,
                old, new, verified
         FROM fix_outcome f
         WHERE fingerprint = ?1
           AND id = (SELECT max(id) FROM fix_outcome g
                     WHERE g.fix_id = f.fix_id AND g.fingerprint = ?1
                       AND g.outcome IN ('applied', 'resolved')
                       AND g.old IS NOT NULL AND g.new IS NOT NULL)
           AND NOT EXISTS (SELECT 1 FROM fix_outcome r
                           WHERE r.fix_id = f.fix_id AND r.outcome = 'reverted' AND r.id > f.id)
         ORDER BY at_ms DESC, id DESC
         LIMIT ?2",
    )?;
    let rows = stmt.query_map(params![fingerprint, limit], |row| {
        let outcome: String = row.get(6)?;
        let outcome = Outcome::from_db(&outcome).ok_or_else(|| {
            rusqlite::Error::FromSqlConversionFailure(
                6,
                Type::Text,
                format!("unknown fix outcome {outcome:?}").into(),
            )
        })?;
        Ok(FixOutcome {
            fix_id: row.get(0)?,
            at_ms: row.get(1)?,
            fingerprint: row.get(2)?,
            category: row.get(3)?,
            provider: row.get(4)?,
            model: row.get(5)?,
            outcome,
            description: row.get(7)?,
            old: row.get(8)?,
            new: row.get(9)?,
            verified: row.get(10)?,
        })
    })?;
    rows.collect()
}

/// The stored symbols of the text whose SHA-256 hex is `hash`, if any. A row whose columns do not
/// have their types is left out.
pub(super) fn symbol_text(conn: &Connection, hash: &str) -> rusqlite::Result<Option<SymbolText>> {
    let mut stmt = conn.prepare_cached(
        "SELECT hash, language, size, format, entries, stored_ms FROM symbol_text WHERE hash = ?1",
    )?;
    let mut rows = stmt.query([hash])?;
    let Some(row) = rows.next()? else { return Ok(None) };
    let text = (|| {
        Ok::<_, rusqlite::Error>(SymbolText {
            hash: row.get(0)?,
            language: row.get(1)?,
            size: row.get(2)?,
            format: row.get(3)?,
            entries: row.get(4)?,
            stored_ms: row.get(5)?,
        })
    })();
    Ok(text.ok())
}

/// The stored symbols of `language`'s files. A row whose columns do not have their types is left
/// out, as if the file had never been indexed.
pub(super) fn symbol_files(conn: &Connection, language: &str) -> rusqlite::Result<Vec<SymbolFile>> {
    let mut stmt = conn.prepare_cached(
        "SELECT path, language, hash, size, mtime_ns, indexed_ms, format, entries
         FROM symbol_file WHERE language = ?1",
    )?;
    let rows = stmt.query_map([language], |row| {
        Ok(SymbolFile {
            path: row.get(0)?,
            language: row.get(1)?,
            hash: row.get(2)?,
            size: row.get(3)?,
            mtime_ns: row.get(4)?,
            indexed_ms: row.get(5)?,
            format: row.get(6)?,
            entries: row.get(7)?,
        })
    })?;
    Ok(rows.filter_map(Result::ok).collect())
}
