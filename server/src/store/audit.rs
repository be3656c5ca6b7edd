//! The tamper-evident audit log: every system event (escalations, fix outcomes, workflow run and
//! step state changes, task claims and releases...) appended to one hash chain in `audit_log`.
//!
//! Each record commits to the one before it: its `hash` is SHA-256 over the previous record's
//! hash (as its 64 hex characters) followed by a canonical encoding of the record (see
//! [`record_hash`]). Records are numbered 1, 2, 3... without gaps; `audit_head` holds the number
//! and hash of the last one, updated in the same transaction as the append. [`verify`] walks the
//! chain in order and names the first record that was changed, removed, moved or cut off the end.
//!
//! [`append`] must run inside a write (`IMMEDIATE`) transaction of the caller: the event is then
//! committed with the change it records, or not at all, and two processes cannot append the
//! same number (it is the primary key).
//!
//! Retention ([`prune`]) removes whole segments of [`SEGMENT_RECORDS`] records, oldest first,
//! and only once the last record of a segment is older than the cut-off; the pruned segment's
//! first and last numbers and its final hash stay in `audit_segment`, so the remaining records
//! still verify from that hash. A segment that does not verify is not pruned.
//!
//! This detects changes made without recomputing the chain (a row edited, deleted or moved with
//! the sqlite3 tool, a restored older copy of one table). Someone who can write the database and
//! recomputes every hash after their change is not detected: keep the head hash elsewhere
//! (`acas audit verify --format json` prints it) to catch that.
//!
//! It knows nothing of the modules whose events it records; they pass an [`AuditEvent`].

use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::error::StoreError;

/// How many records make a segment, the unit retention removes.
pub const SEGMENT_RECORDS: i64 = 1000;

/// The youngest a record may be when it is pruned, whatever the caller asks: what a run or an
/// agent just did stays in the log for a person to see, even if it manages to prune.
pub const MIN_PRUNE_AGE: std::time::Duration = std::time::Duration::from_secs(24 * 60 * 60);

/// The hash the first record follows.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// What kind of event a record is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditKind {
    /// A request to an AI provider: reserved, sent, answered, failed, refused or cached.
    Escalation,
    /// What became of an offered fix.
    FixOutcome,
    /// A workflow run changed state.
    WorkflowRun,
    /// A workflow step changed state.
    WorkflowStep,
    /// A task was created, claimed, heartbeaten into running, released, finished, failed,
    /// unblocked, or its lease ran out.
    Task,
    /// A path lock was taken or refused.
    Lock,
    /// A policy allowed, denied or asked for approval.
    PolicyDecision,
    /// An MCP tool was called.
    McpToolCall,
}

impl AuditKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AuditKind::Escalation => "escalation",
            AuditKind::FixOutcome => "fix_outcome",
            AuditKind::WorkflowRun => "workflow_run",
            AuditKind::WorkflowStep => "workflow_step",
            AuditKind::Task => "task",
            AuditKind::Lock => "lock",
            AuditKind::PolicyDecision => "policy_decision",
            AuditKind::McpToolCall => "mcp_tool_call",
        }
    }
}

/// An event to append.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditEvent<'a> {
    pub at_ms: i64,
    pub kind: AuditKind,
    /// Who did it: `acas` for the system itself, an agent's name, `user`.
    pub actor: &'a str,
    /// What it was done to: `task 3`, `run 12 step build`, `call <id>`...
    pub subject: &'a str,
    /// What happened, as a JSON object.
    pub detail: serde_json::Value,
}

/// A record as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditRecord {
    pub seq: i64,
    pub at_ms: i64,
    /// An [`AuditKind`] as text (a newer ACAS may have written one this one does not know).
    pub kind: String,
    pub actor: String,
    pub subject: String,
    /// JSON text, exactly as hashed.
    pub detail: String,
    pub prev_hash: String,
    pub hash: String,
}

/// How the chain is broken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BreakKind {
    /// The record's content no longer gives its hash.
    Changed,
    /// A record number is missing.
    Removed,
    /// The record is intact but does not follow the record before it.
    OutOfOrder,
    /// Records after the last one present were removed (or the head was changed).
    Truncated,
    /// The kept hashes of pruned segments do not line up.
    Segments,
}

/// The first bad record verification found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditBreak {
    /// The number of the first bad (or first missing) record.
    pub seq: i64,
    pub kind: BreakKind,
    pub message: String,
}

/// What [`verify`] found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verification {
    /// Records checked.
    pub records: u64,
    /// Segments removed by retention, whose final hash the check started from.
    pub pruned_segments: u64,
    /// The number and hash of the last record, when there is one.
    pub head_seq: i64,
    pub head_hash: String,
    pub first_break: Option<AuditBreak>,
}

/// Reading the log: records newer than `since_ms`, at most `limit`, oldest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditQuery {
    pub since_ms: Option<i64>,
    pub limit: Option<usize>,
}

/// SHA-256 over `prev_hash` (its hex text) and the canonical encoding of the record: a version
/// tag, `at_ms` as 8 big-endian bytes, then `kind`, `actor`, `subject` and `detail`, each as its
/// byte length (8 bytes, big-endian) and its UTF-8 bytes. Lengths make the encoding
/// unambiguous: no two different records encode to the same bytes. The record's number is not
/// in it: where a record stands is given by the hash it follows.
pub fn record_hash(
    prev_hash: &str,
    at_ms: i64,
    kind: &str,
    actor: &str,
    subject: &str,
    detail: &str,
) -> String {
    let mut hasher = Sha256::new();
    hasher.update(prev_hash.as_bytes());
    hasher.update(b"acas-audit-1");
    hasher.update(at_ms.to_be_bytes());
    for field in [kind, actor, subject, detail] {
        hasher.update((field.len() as u64).to_be_bytes());
        hasher.update(field.as_bytes());
    }
    hex(&hasher.finalize())
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// The last record's number and hash: the head row, or the last pruned segment's end when the
/// log is empty, or the genesis.
fn head(conn: &Connection) -> rusqlite::Result<(i64, String)> {
    if let Some(head) = conn
        .prepare_cached("SELECT seq, hash FROM audit_head WHERE id = 1")?
        .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?
    {
        return Ok(head);
    }
    Ok(last_pruned(conn)?.map_or_else(|| (0, GENESIS_HASH.to_owned()), |s| (s.last_seq, s.last_hash)))
}

/// Appends `event` after the current head. Call it inside the caller's write transaction.
///
/// A log damaged by hand (a head behind its last record) still takes the event, numbered after
/// both, so that recording what happens never fails because of an earlier tampering, which
/// [`verify`] reports.
pub fn append(conn: &Connection, event: &AuditEvent<'_>) -> rusqlite::Result<AuditRecord> {
    let (head_seq, prev_hash) = head(conn)?;
    let max_seq: Option<i64> =
        conn.prepare_cached("SELECT MAX(seq) FROM audit_log")?.query_row([], |r| r.get(0))?;
    let seq = head_seq.max(max_seq.unwrap_or(0)) + 1;
    let kind = event.kind.as_str();
    let detail = event.detail.to_string();
    let hash = record_hash(&prev_hash, event.at_ms, kind, event.actor, event.subject, &detail);
    conn.prepare_cached(
        "INSERT INTO audit_log (seq, at_ms, kind, actor, subject, detail, prev_hash, hash) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![seq, event.at_ms, kind, event.actor, event.subject, detail, prev_hash, hash])?;
    conn.prepare_cached(
        "INSERT INTO audit_head (id, seq, hash) VALUES (1, ?1, ?2) \
         ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash",
    )?
    .execute(params![seq, hash])?;
    Ok(AuditRecord {
        seq,
        at_ms: event.at_ms,
        kind: kind.to_owned(),
        actor: event.actor.to_owned(),
        subject: event.subject.to_owned(),
        detail,
        prev_hash,
        hash,
    })
}

fn record_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<AuditRecord> {
    Ok(AuditRecord {
        seq: r.get(0)?,
        at_ms: r.get(1)?,
        kind: r.get(2)?,
        actor: r.get(3)?,
        subject: r.get(4)?,
        detail: r.get(5)?,
        prev_hash: r.get(6)?,
        hash: r.get(7)?,
    })
}

const RECORD_COLUMNS: &str = "seq, at_ms, kind, actor, subject, detail, prev_hash, hash";

/// Records matching `query`, oldest first: with a limit, the newest `limit` of them.
pub fn records(conn: &Connection, query: &AuditQuery) -> rusqlite::Result<Vec<AuditRecord>> {
    let limit = query.limit.map_or(-1, |l| i64::try_from(l).unwrap_or(i64::MAX));
    let mut records = conn
        .prepare_cached(&format!(
            "SELECT {RECORD_COLUMNS} FROM audit_log WHERE at_ms >= ?1 ORDER BY seq DESC LIMIT ?2"
        ))?
        .query_map(params![query.since_ms.unwrap_or(i64::MIN), limit], record_row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    records.reverse();
    Ok(records)
}

/// A segment removed by retention.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PrunedSegment {
    pub segment: i64,
    pub first_seq: i64,
    pub last_seq: i64,
    pub last_at_ms: i64,
    pub last_hash: String,
    pub pruned_ms: i64,
}

/// Every pruned segment, oldest first.
pub(super) fn all_segments(conn: &Connection) -> rusqlite::Result<Vec<PrunedSegment>> {
    conn.prepare_cached(
        "SELECT segment, first_seq, last_seq, last_at_ms, last_hash, pruned_ms FROM audit_segment ORDER BY segment",
    )?
    .query_map([], segment_row)?
    .collect()
}

fn last_pruned(conn: &Connection) -> rusqlite::Result<Option<PrunedSegment>> {
    conn.prepare_cached(
        "SELECT segment, first_seq, last_seq, last_at_ms, last_hash, pruned_ms FROM audit_segment \
         ORDER BY segment DESC LIMIT 1",
    )?
    .query_row([], segment_row)
    .optional()
}

fn segment_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<PrunedSegment> {
    Ok(PrunedSegment {
        segment: r.get(0)?,
        first_seq: r.get(1)?,
        last_seq: r.get(2)?,
        last_at_ms: r.get(3)?,
        last_hash: r.get(4)?,
        pruned_ms: r.get(5)?,
    })
}

/// Walks the records after record `seq` (whose hash is `hash`) to the head row: each must come
/// next in number, follow the one before it and give its own hash, and the head row must be the
/// last of them. `Ok(Err(why))` names the first that does not; `Ok(Ok(()))` means the head's
/// chain contains that record unchanged. Run it in a read transaction.
pub(super) fn extends(conn: &Connection, seq: i64, hash: &str) -> rusqlite::Result<Result<(), String>> {
    let mut stmt =
        conn.prepare_cached(&format!("SELECT {RECORD_COLUMNS} FROM audit_log WHERE seq > ?1 ORDER BY seq"))?;
    let mut rows = stmt.query([seq])?;
    let (mut last_seq, mut last_hash) = (seq, hash.to_owned());
    while let Some(row) = rows.next()? {
        let r = record_row(row)?;
        if r.seq != last_seq + 1 {
            return Ok(Err(format!("record {} is missing after record {last_seq}", last_seq + 1)));
        }
        if r.prev_hash != last_hash {
            return Ok(Err(format!("record {} does not follow record {last_seq}", r.seq)));
        }
        if record_hash(&r.prev_hash, r.at_ms, &r.kind, &r.actor, &r.subject, &r.detail) != r.hash {
            return Ok(Err(format!("record {}'s content no longer gives its hash", r.seq)));
        }
        (last_seq, last_hash) = (r.seq, r.hash);
    }
    let stored: Option<(i64, String)> = conn
        .prepare_cached("SELECT seq, hash FROM audit_head WHERE id = 1")?
        .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    Ok(match stored {
        Some((head_seq, head_hash)) if head_seq == last_seq && head_hash == last_hash => Ok(()),
        Some((head_seq, _)) => {
            Err(format!("the log's head (record {head_seq}) is not its last record ({last_seq})"))
        }
        None if last_seq == seq => Ok(()),
        None => Err("the log's head row was removed".to_owned()),
    })
}

/// Walks the chain from the genesis, or from the final hash of the last pruned segment, and
/// stops at the first bad record. Reads the records in order one at a time: memory stays flat
/// whatever the log holds. Run it in a read transaction so that the log and its head are read
/// at one moment.
pub fn verify(conn: &Connection) -> rusqlite::Result<Verification> {
    let segments = conn
        .prepare_cached(
            "SELECT segment, first_seq, last_seq, last_at_ms, last_hash, pruned_ms FROM audit_segment \
             ORDER BY segment",
        )?
        .query_map([], segment_row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let mut result = Verification {
        records: 0,
        pruned_segments: segments.len() as u64,
        head_seq: 0,
        head_hash: GENESIS_HASH.to_owned(),
        first_break: None,
    };
    let (mut expected_seq, mut prev_hash) = (1, GENESIS_HASH.to_owned());
    for (i, s) in segments.iter().enumerate() {
        let (first, last) = (s.segment * SEGMENT_RECORDS + 1, (s.segment + 1) * SEGMENT_RECORDS);
        if s.segment != i as i64 || s.first_seq != first || s.last_seq != last {
            result.first_break = Some(AuditBreak {
                seq: expected_seq,
                kind: BreakKind::Segments,
                message: format!(
                    "pruned segment {} (records {} to {}) does not follow the segments before it: \
                     the record of pruned segments was changed",
                    s.segment, s.first_seq, s.last_seq
                ),
            });
            return Ok(result);
        }
        expected_seq = s.last_seq + 1;
        prev_hash.clone_from(&s.last_hash);
    }
    result.head_seq = expected_seq - 1;
    result.head_hash.clone_from(&prev_hash);

    let mut stmt = conn.prepare(&format!("SELECT {RECORD_COLUMNS} FROM audit_log ORDER BY seq"))?;
    let mut rows = stmt.query([])?;
    while let Some(row) = rows.next()? {
        let r = record_row(row)?;
        let broken = |kind, message| Some(AuditBreak { seq: r.seq, kind, message });
        let computed = record_hash(&r.prev_hash, r.at_ms, &r.kind, &r.actor, &r.subject, &r.detail);
        result.first_break = if r.seq < expected_seq {
            broken(
                BreakKind::Removed,
                format!(
                    "record {} is in the log after its pruned segment: it was put back or renumbered",
                    r.seq
                ),
            )
        } else if r.seq > expected_seq {
            Some(AuditBreak {
                seq: expected_seq,
                kind: BreakKind::Removed,
                message: if r.seq == expected_seq + 1 {
                    format!(
                        "record {expected_seq} was removed (the log goes from {} to {})",
                        expected_seq - 1,
                        r.seq
                    )
                } else {
                    format!(
                        "records {expected_seq} to {} were removed (the log goes from {} to {})",
                        r.seq - 1,
                        expected_seq - 1,
                        r.seq
                    )
                },
            })
        } else if computed != r.hash {
            broken(
                BreakKind::Changed,
                format!(
                    "record {} ({} {} at {}) was changed: its content no longer gives its hash",
                    r.seq,
                    r.kind,
                    r.subject,
                    crate::time::date_time(r.at_ms)
                ),
            )
        } else if r.prev_hash != prev_hash {
            broken(
                BreakKind::OutOfOrder,
                format!(
                    "record {} ({} {}) does not follow record {}: records were moved, or one \
                     before it was replaced",
                    r.seq,
                    r.kind,
                    r.subject,
                    r.seq - 1
                ),
            )
        } else {
            None
        };
        if result.first_break.is_some() {
            return Ok(result);
        }
        result.records += 1;
        expected_seq = r.seq + 1;
        prev_hash = r.hash;
        result.head_seq = r.seq;
        result.head_hash.clone_from(&prev_hash);
    }
    let stored_head: Option<(i64, String)> = conn
        .prepare_cached("SELECT seq, hash FROM audit_head WHERE id = 1")?
        .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let head_ok = match &stored_head {
        Some((seq, hash)) => *seq == result.head_seq && *hash == result.head_hash,
        None => result.head_seq == 0,
    };
    if !head_ok {
        let (seq, message) = match stored_head {
            Some((seq, _)) if seq > result.head_seq => (
                result.head_seq + 1,
                format!(
                    "records {} to {seq} were removed from the end of the log (the log's head is record {seq})",
                    result.head_seq + 1
                ),
            ),
            Some((seq, _)) => (
                seq.min(result.head_seq),
                format!(
                    "the log's head (record {seq}) does not match its last record ({}): the head or the \
                     last records were changed",
                    result.head_seq
                ),
            ),
            None => (result.head_seq, "the log's head was removed".to_owned()),
        };
        result.first_break = Some(AuditBreak { seq, kind: BreakKind::Truncated, message });
    }
    Ok(result)
}

/// Removes, oldest first, each whole segment whose last record is older than `before_ms`, keeping
/// its final hash in `audit_segment`. The segment holding the head is never removed, so the head
/// always has a record or a kept hash to match. A segment that does not verify from the hash
/// before it is left in place, and pruning stops there. Call it inside a write transaction;
/// returns the number of segments removed.
pub fn prune(conn: &Connection, before_ms: i64, now_ms: i64) -> rusqlite::Result<u64> {
    let (head_seq, _) = head(conn)?;
    let (mut next_segment, mut prev_hash) = match last_pruned(conn)? {
        Some(s) => (s.segment + 1, s.last_hash),
        None => (0, GENESIS_HASH.to_owned()),
    };
    let mut pruned = 0;
    loop {
        let (first, last) = (next_segment * SEGMENT_RECORDS + 1, (next_segment + 1) * SEGMENT_RECORDS);
        if last >= head_seq {
            break;
        }
        let records = conn
            .prepare_cached(&format!(
                "SELECT {RECORD_COLUMNS} FROM audit_log WHERE seq BETWEEN ?1 AND ?2 ORDER BY seq"
            ))?
            .query_map(params![first, last], record_row)?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        let intact = records.len() as i64 == SEGMENT_RECORDS
            && records.iter().enumerate().all(|(i, r)| {
                let prev = if i == 0 { prev_hash.as_str() } else { records[i - 1].hash.as_str() };
                r.seq == first + i as i64
                    && r.prev_hash == prev
                    && record_hash(&r.prev_hash, r.at_ms, &r.kind, &r.actor, &r.subject, &r.detail) == r.hash
            });
        let Some(end) = records.last() else { break };
        if end.at_ms >= before_ms {
            break;
        }
        if !intact {
            tracing::warn!(
                first,
                last,
                "an audit log segment does not verify; it is kept: run `acas audit verify` to see where"
            );
            break;
        }
        conn.prepare_cached(
            "INSERT INTO audit_segment (segment, first_seq, last_seq, first_at_ms, last_at_ms, last_hash, pruned_ms) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )?
        .execute(params![next_segment, first, last, records[0].at_ms, end.at_ms, end.hash, now_ms])?;
        conn.prepare_cached("DELETE FROM audit_log WHERE seq BETWEEN ?1 AND ?2")?
            .execute(params![first, last])?;
        prev_hash.clone_from(&end.hash);
        next_segment += 1;
        pruned += 1;
    }
    Ok(pruned)
}

/// The audit log of a workspace on a write connection of its own, for the command line and
/// front ends that read, verify, prune or append outside another transaction.
pub struct AuditLog {
    conn: Connection,
    db_path: std::path::PathBuf,
    busy_timeout: std::time::Duration,
}

impl AuditLog {
    /// Opens `<root>/.acas/state.db` (creating and migrating it as the store does).
    pub fn open(root: &std::path::Path, busy_timeout: std::time::Duration) -> Result<AuditLog, StoreError> {
        let (conn, db_path) = super::connect_workspace(root, busy_timeout)?;
        Ok(AuditLog { conn, db_path, busy_timeout })
    }

    /// Opens the database at `db_path`.
    pub fn open_db(
        db_path: &std::path::Path,
        busy_timeout: std::time::Duration,
    ) -> Result<AuditLog, StoreError> {
        let conn = super::schema::open_writer(db_path, busy_timeout)?;
        Ok(AuditLog { conn, db_path: db_path.to_owned(), busy_timeout })
    }

    fn error(&self, what: &str) -> impl Fn(rusqlite::Error) -> StoreError + '_ {
        let what = what.to_owned();
        move |e| StoreError::sqlite(&what, &self.db_path, self.busy_timeout, &e)
    }

    /// Appends one event in a transaction of its own.
    pub fn append(&mut self, event: &AuditEvent<'_>) -> Result<AuditRecord, StoreError> {
        let err = |e| StoreError::sqlite("append to the audit log", &self.db_path, self.busy_timeout, &e);
        let tx =
            self.conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(err)?;
        let record = append(&tx, event).map_err(err)?;
        tx.commit().map_err(err)?;
        super::anchor::update(&self.conn, &self.db_path);
        Ok(record)
    }

    /// See [`records`].
    pub fn records(&self, query: &AuditQuery) -> Result<Vec<AuditRecord>, StoreError> {
        records(&self.conn, query).map_err(self.error("read the audit log"))
    }

    /// See [`verify`]; reads the log and its head at one moment, then compares them with an
    /// anchor: `head` when given (as `acas audit head` printed it), else the anchor ACAS keeps in
    /// the state directory (see [`super::anchor`]). The anchor checked, if any, is returned.
    pub fn verify(
        &mut self,
        head: Option<&super::anchor::Anchor>,
    ) -> Result<(Verification, Option<String>), StoreError> {
        let err = |e| StoreError::sqlite("verify the audit log", &self.db_path, self.busy_timeout, &e);
        let tx = self.conn.transaction_with_behavior(rusqlite::TransactionBehavior::Deferred).map_err(err)?;
        let mut result = verify(&tx).map_err(err)?;
        let (anchor, exact, from) = match head {
            Some(head) => (Some(head.clone()), false, Some("the head given".to_owned())),
            None => match super::anchor::read(&self.db_path) {
                Ok(Some((path, Some(anchor)))) => (Some(anchor), true, Some(path.display().to_string())),
                Ok(Some((path, None))) => {
                    result.first_break.get_or_insert(AuditBreak {
                        seq: 0,
                        kind: BreakKind::Truncated,
                        message: format!("the anchor {} is damaged: it does not hold a head", path.display()),
                    });
                    (None, true, Some(path.display().to_string()))
                }
                Ok(None) | Err(_) => (None, true, None),
            },
        };
        if result.first_break.is_none()
            && let Some(anchor) = &anchor
        {
            result.first_break = super::anchor::check(&tx, &result, anchor, exact).map_err(err)?;
        }
        tx.commit().map_err(err)?;
        Ok((result, from))
    }

    /// The head of the log now, as `acas audit head` prints it.
    pub fn head(&self) -> Result<super::anchor::Anchor, StoreError> {
        super::anchor::current(&self.conn).map_err(self.error("read the audit log's head"))
    }

    /// See [`prune`]; records younger than [`MIN_PRUNE_AGE`] are kept whatever `before_ms` says.
    pub fn prune(&mut self, before_ms: i64, now_ms: i64) -> Result<u64, StoreError> {
        let before_ms = before_ms.min(now_ms.saturating_sub(MIN_PRUNE_AGE.as_millis() as i64));
        let err = |e| StoreError::sqlite("prune the audit log", &self.db_path, self.busy_timeout, &e);
        let tx =
            self.conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(err)?;
        let pruned = prune(&tx, before_ms, now_ms).map_err(err)?;
        tx.commit().map_err(err)?;
        super::anchor::update_after_prune(&self.conn, &self.db_path, pruned);
        Ok(pruned)
    }

    /// The segments removed by retention, oldest first.
    pub fn pruned_segments(&self) -> Result<Vec<PrunedSegment>, StoreError> {
        let read = || -> rusqlite::Result<Vec<PrunedSegment>> {
            self.conn
                .prepare_cached(
                    "SELECT segment, first_seq, last_seq, last_at_ms, last_hash, pruned_ms FROM audit_segment \
                     ORDER BY segment",
                )?
                .query_map([], segment_row)?
                .collect()
        };
        read().map_err(self.error("read the audit log's pruned segments"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open() -> (tempfile::TempDir, AuditLog) {
        let dir = tempfile::tempdir().unwrap();
        let log = AuditLog::open(dir.path(), std::time::Duration::from_secs(5)).unwrap();
        (dir, log)
    }

    fn event(at_ms: i64, n: usize) -> AuditEvent<'static> {
        AuditEvent {
            at_ms,
            kind: AuditKind::Task,
            actor: "agent",
            subject: "task 1",
            detail: serde_json::json!({ "n": n }),
        }
    }

    fn fill(log: &mut AuditLog, count: usize, at_ms: i64) {
        let tx = log.conn.transaction().unwrap();
        for n in 0..count {
            append(&tx, &event(at_ms, n)).unwrap();
        }
        tx.commit().unwrap();
    }

    fn first_break(log: &mut AuditLog) -> Option<(i64, BreakKind)> {
        log.verify(None).unwrap().0.first_break.map(|b| (b.seq, b.kind))
    }

    #[test]
    fn tampering_is_found_and_the_first_bad_record_named() {
        let cases: [(&str, Option<(i64, BreakKind)>); 6] = [
            ("", None),
            ("UPDATE audit_log SET detail = '{\"n\":99}' WHERE seq = 4", Some((4, BreakKind::Changed))),
            ("UPDATE audit_log SET at_ms = at_ms + 1 WHERE seq = 7", Some((7, BreakKind::Changed))),
            ("DELETE FROM audit_log WHERE seq = 5", Some((5, BreakKind::Removed))),
            (
                // Rows 3 and 6 exchange everything but their numbers.
                "CREATE TEMP TABLE t AS SELECT * FROM audit_log WHERE seq IN (3, 6);
                 UPDATE audit_log SET (at_ms, kind, actor, subject, detail, prev_hash, hash) =
                   (SELECT at_ms, kind, actor, subject, detail, prev_hash, hash FROM t
                    WHERE t.seq = 9 - audit_log.seq) WHERE seq IN (3, 6);",
                Some((3, BreakKind::OutOfOrder)),
            ),
            ("DELETE FROM audit_log WHERE seq >= 9", Some((9, BreakKind::Truncated))),
        ];
        for (sql, expected) in cases {
            let (_dir, mut log) = open();
            fill(&mut log, 10, 1_000);
            if !sql.is_empty() {
                log.conn.execute_batch(sql).unwrap();
            }
            assert_eq!(first_break(&mut log), expected, "after {sql}");
        }
    }

    #[test]
    fn pruning_keeps_whole_segments_hashes_and_verification() {
        let (_dir, mut log) = open();
        let total = 2 * SEGMENT_RECORDS + SEGMENT_RECORDS / 2;
        fill(&mut log, total as usize, 1_000);
        let now = 2_000 + MIN_PRUNE_AGE.as_millis() as i64;
        assert_eq!(log.prune(500, now).unwrap(), 0, "nothing is old enough");
        assert_eq!(log.prune(1_001, 1_001).unwrap(), 0, "nothing is older than the minimum age");
        assert_eq!(log.prune(1_001, now).unwrap(), 2, "the segment of the head stays");
        let segments = log.pruned_segments().unwrap();
        assert_eq!(
            segments.iter().map(|s| s.last_seq).collect::<Vec<_>>(),
            [SEGMENT_RECORDS, 2 * SEGMENT_RECORDS]
        );
        let result = log.verify(None).unwrap().0;
        assert_eq!(
            (result.first_break, result.records, result.head_seq),
            (None, (total - 2 * SEGMENT_RECORDS) as u64, total)
        );
        // Appending goes on after the kept hash, and the first record left is still checked.
        log.append(&event(3_000, 0)).unwrap();
        assert_eq!(first_break(&mut log), None);
        log.conn
            .execute(
                "UPDATE audit_log SET prev_hash = ?1 WHERE seq = ?2",
                params![GENESIS_HASH, 2 * SEGMENT_RECORDS + 1],
            )
            .unwrap();
        assert_eq!(first_break(&mut log), Some((2 * SEGMENT_RECORDS + 1, BreakKind::Changed)));
    }

    #[test]
    fn a_damaged_segment_is_not_pruned() {
        let (_dir, mut log) = open();
        fill(&mut log, (2 * SEGMENT_RECORDS) as usize + 1, 1_000);
        log.conn.execute("UPDATE audit_log SET detail = '{}' WHERE seq = 10", []).unwrap();
        assert_eq!(log.prune(2_000, 2_000 + MIN_PRUNE_AGE.as_millis() as i64).unwrap(), 0);
        assert_eq!(first_break(&mut log), Some((10, BreakKind::Changed)));
    }

    #[test]
    fn appending_after_tampering_still_records() {
        let (_dir, mut log) = open();
        fill(&mut log, 3, 1_000);
        // The head is set back to the first record, as a restored older copy would have it.
        log.conn
            .execute("UPDATE audit_head SET seq = 1, hash = (SELECT hash FROM audit_log WHERE seq = 1)", [])
            .unwrap();
        let record = log.append(&event(2_000, 0)).unwrap();
        assert_eq!(record.seq, 4);
        assert_eq!(first_break(&mut log), Some((4, BreakKind::OutOfOrder)));
    }
}
