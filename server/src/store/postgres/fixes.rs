//! Fix outcomes on PostgreSQL: every clone of a repository appends to one log and learns from
//! it, so that a fix accepted in one clone orders the provider chain and is offered as an
//! example in every other. The queries are those of the workspace's SQLite (`query.rs`),
//! restricted to this store's repository. Rows are only appended; nothing here prunes them.

use super::{Fail, PgStore};
use crate::store::error::{StoreError, StoreErrorKind};
use crate::store::shared::FixLog;
use crate::store::types::{FixOutcome, FixStatsRow, Outcome};

impl FixLog for PgStore {
    fn record_fix(&self, f: FixOutcome) -> Result<(), StoreError> {
        let repository = self.identity().repository.clone();
        self.run("record a fix outcome in the shared store", move |pool| async move {
            let client = pool.get().await?;
            client
                .execute(
                    "INSERT INTO fix_outcome (repository, fix_id, at_ms, fingerprint, category, provider,
                         model, outcome, description, old, new, verified)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
                    &[
                        &repository,
                        &f.fix_id,
                        &f.at_ms,
                        &f.fingerprint,
                        &f.category,
                        &f.provider,
                        &f.model,
                        &f.outcome.as_str(),
                        &f.description,
                        &f.old,
                        &f.new,
                        &f.verified,
                    ],
                )
                .await?;
            Ok::<_, Fail>(())
        })
    }

    fn fix_stats(&self) -> Result<Vec<FixStatsRow>, StoreError> {
        let repository = self.identity().repository.clone();
        self.run("read the fix outcomes of the shared store", move |pool| async move {
            let client = pool.get().await?;
            let rows = client
                .query(
                    "SELECT provider, model, category,
                            count(DISTINCT fix_id) FILTER (WHERE outcome = 'offered'),
                            count(DISTINCT fix_id) FILTER (WHERE outcome = 'applied'),
                            count(DISTINCT fix_id) FILTER (WHERE outcome = 'resolved'),
                            count(DISTINCT fix_id) FILTER (WHERE outcome = 'reverted'),
                            count(DISTINCT fix_id) FILTER (WHERE outcome = 'dismissed')
                     FROM fix_outcome WHERE repository = $1
                     GROUP BY provider, model, category
                     ORDER BY provider, model, category",
                    &[&repository],
                )
                .await?;
            let count = |row: &tokio_postgres::Row, i: usize| row.get::<_, i64>(i).max(0) as u64;
            Ok::<_, Fail>(
                rows.iter()
                    .map(|row| FixStatsRow {
                        provider: row.get(0),
                        model: row.get(1),
                        category: row.get(2),
                        offered: count(row, 3),
                        applied: count(row, 4),
                        resolved: count(row, 5),
                        reverted: count(row, 6),
                        dismissed: count(row, 7),
                    })
                    .collect(),
            )
        })
    }

    fn past_fixes(&self, fingerprint: &str, limit: usize) -> Result<Vec<FixOutcome>, StoreError> {
        let repository = self.identity().repository.clone();
        let fingerprint = fingerprint.to_owned();
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.run("read past fixes from the shared store", move |pool| async move {
            let client = pool.get().await?;
            let rows = client
                .query(
                    "SELECT fix_id, at_ms, fingerprint, category, provider, model, outcome, description,
                            old, new, verified
                     FROM fix_outcome f
                     WHERE repository = $1 AND fingerprint = $2
                       AND id = (SELECT max(id) FROM fix_outcome g
                                 WHERE g.repository = $1 AND g.fix_id = f.fix_id AND g.fingerprint = $2
                                   AND g.outcome IN ('applied', 'resolved')
                                   AND g.old IS NOT NULL AND g.new IS NOT NULL)
                       AND NOT EXISTS (SELECT 1 FROM fix_outcome r
                                       WHERE r.repository = $1 AND r.fix_id = f.fix_id
                                         AND r.outcome = 'reverted' AND r.id > f.id)
                     ORDER BY at_ms DESC, id DESC
                     LIMIT $3",
                    &[&repository, &fingerprint, &limit],
                )
                .await?;
            let mut fixes = Vec::with_capacity(rows.len());
            for row in rows {
                let outcome: String = row.get(6);
                let Some(outcome) = Outcome::from_db(&outcome) else {
                    return Err(Fail::Store(StoreError::new(
                        StoreErrorKind::Database,
                        format!(
                            "the shared store holds a fix outcome this ACAS does not know ({outcome:?}); \
                             upgrade ACAS on this machine"
                        ),
                    )));
                };
                fixes.push(FixOutcome {
                    fix_id: row.get(0),
                    at_ms: row.get(1),
                    fingerprint: row.get(2),
                    category: row.get(3),
                    provider: row.get(4),
                    model: row.get(5),
                    outcome,
                    description: row.get(7),
                    old: row.get(8),
                    new: row.get(9),
                    verified: row.get(10),
                });
            }
            Ok::<_, Fail>(fixes)
        })
    }
}
