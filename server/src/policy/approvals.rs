//! Approvals and Policy Decision Records, in the workspace's `.acas/state.db`.
//!
//! [`record`] appends a decision to the hash-chained audit log. [`request`] creates a pending
//! approval (and its record) in one transaction; [`answer`] approves or denies it, once, saying
//! who did (and its record, in the same transaction); [`wait`] waits for the answer, bounded
//! and cancellable, marking the approval expired or cancelled when the wait ends without one.
//! Any process on the workspace sees the same approvals: an agent's server waits while the
//! editor or `acas approve` answers. Who asks a person is the front ends' business.
//!
//! An approval counts only when the audit log holds its answer: a record of the approval's
//! number answered `approved`, on a chain that verifies up to it (compared with the anchor
//! outside the database). A row set to `approved` by a write into the database is still pending to every
//! waiter, `acas approve` lists it as pending, and [`unproven`] (which `acas audit verify`
//! reports) names it. Someone who writes the database and also appends a record with the
//! chain's hashes recomputed (and the anchor rewritten) is not caught here: the audit log's own
//! limits apply.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use serde::Serialize;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::{Decision, Outcome, PolicyError, PolicyErrorKind};
use crate::process_tree::namespaces::Namespaces;
use crate::store::audit::{self, AuditEvent, AuditKind};
use crate::time::now_ms;

const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// How often a wait looks for the answer.
const POLL: Duration = Duration::from_millis(100);

/// A pending approval, as a person is asked about it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Pending {
    pub id: i64,
    pub created_ms: i64,
    pub expires_ms: i64,
    pub agent: String,
    pub action: String,
    pub rule: Option<String>,
    pub reason: String,
}

/// How an approval ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Answer {
    Approved {
        by: String,
    },
    Denied {
        by: String,
    },
    /// Nobody answered in time.
    Expired,
    /// The one waiting gave up (its run or call was cancelled).
    Cancelled,
}

fn store_error(root: &Path, what: &str, e: impl std::fmt::Display) -> PolicyError {
    PolicyError::other(
        PolicyErrorKind::Store,
        &root.join(".acas/state.db"),
        format!("cannot {what}: {e}; check that the workspace's .acas directory is writable"),
    )
}

fn connect(root: &Path) -> Result<Connection, PolicyError> {
    connect_db(root).map(|(conn, _)| conn)
}

fn connect_db(root: &Path) -> Result<(Connection, std::path::PathBuf), PolicyError> {
    crate::store::connect_workspace(root, BUSY_TIMEOUT)
        .map_err(|e| store_error(root, "open the workspace database", e))
}

/// The session of a holder's name: `claude-code/1a2b3c4d` gives `1a2b3c4d`.
pub fn session_of(holder: &str) -> Option<&str> {
    holder.rsplit_once('/').map(|(_, session)| session).filter(|s| !s.is_empty())
}

/// How records name an agent: with its session when it has one (`claude-code/1a2b3c4d`), as
/// MCP call records do.
pub fn named(agent: &str, session: Option<&str>) -> String {
    match session {
        Some(session) => format!("{agent}/{session}"),
        None => agent.to_owned(),
    }
}

/// The condition on `policy_approval` (aliased `p`) of a row marked answered with no answer
/// record for it in the audit log.
const UNPROVEN: &str = "p.state IN ('approved', 'denied') AND NOT EXISTS (SELECT 1 FROM audit_log a \
     WHERE a.kind = 'policy_decision' AND json_extract(a.detail, '$.approval') = p.id \
     AND json_extract(a.detail, '$.answer') = p.state)";

/// An approval marked answered in the database whose answer the audit log does not hold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Unproven {
    pub id: i64,
    pub state: String,
    pub answered_by: Option<String>,
    pub action: String,
}

/// The approvals marked answered with no answer record in the audit log: rows written into the
/// database by something other than ACAS, as they are now, and those that were ended since (the
/// record that ended one keeps what the row claimed). They count as pending.
pub fn unproven(root: &Path) -> Result<Vec<Unproven>, PolicyError> {
    let conn = connect(root)?;
    let run = || -> rusqlite::Result<Vec<Unproven>> {
        let mut found: Vec<Unproven> = conn
            .prepare(&format!(
                "SELECT p.id, p.state, p.answered_by, p.action FROM policy_approval p WHERE {UNPROVEN} ORDER BY p.id"
            ))?
            .query_map([], |row| {
                Ok(Unproven { id: row.get(0)?, state: row.get(1)?, answered_by: row.get(2)?, action: row.get(3)? })
            })?
            .collect::<rusqlite::Result<_>>()?;
        let ended = conn
            .prepare(
                "SELECT json_extract(detail, '$.approval'), json_extract(detail, '$.unproven_row.state'), \
                 json_extract(detail, '$.unproven_row.answered_by'), subject FROM audit_log \
                 WHERE kind = 'policy_decision' AND json_extract(detail, '$.unproven_row') IS NOT NULL ORDER BY seq",
            )?
            .query_map([], |row| {
                Ok(Unproven { id: row.get(0)?, state: row.get(1)?, answered_by: row.get(2)?, action: row.get(3)? })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        found.extend(ended);
        found.sort_by_key(|u| u.id);
        Ok(found)
    };
    run().map_err(|e| store_error(root, "read the answered approvals", e))
}

/// Whether the audit log proves that approval `id` was approved: its answer record is there and
/// the chain, compared with the anchor outside the database, verifies up to it.
fn approval_proven(root: &Path, id: i64) -> Result<bool, PolicyError> {
    let (conn, db_path) = connect_db(root)?;
    let seq: Option<i64> = conn
        .query_row(
            "SELECT seq FROM audit_log WHERE kind = 'policy_decision' AND json_extract(detail, '$.approval') = ?1 \
             AND json_extract(detail, '$.answer') = 'approved' ORDER BY seq DESC LIMIT 1",
            [id],
            |row| row.get(0),
        )
        .optional()
        .map_err(|e| store_error(root, "read the audit log", e))?;
    let Some(seq) = seq else { return Ok(false) };
    drop(conn);
    let mut log = crate::store::audit::AuditLog::open_db(&db_path, BUSY_TIMEOUT)
        .map_err(|e| store_error(root, "open the audit log", e))?;
    let (verification, _) = log.verify(None).map_err(|e| store_error(root, "verify the audit log", e))?;
    // The chain up to the record and its comparison with the anchor (a break there has the
    // number of the first record it concerns).
    Ok(verification.first_break.as_ref().is_none_or(|b| b.seq > seq))
}

fn detail(decision: &Decision, extra: serde_json::Value) -> serde_json::Value {
    let mut detail = json!({
        "outcome": decision.outcome.as_str(),
        "agent": decision.agent,
        "action": decision.action,
        "rule": decision.rule.as_ref().map(ToString::to_string),
        "reason": decision.reason,
    });
    if let (Some(object), serde_json::Value::Object(extra)) = (detail.as_object_mut(), extra) {
        object.extend(extra);
    }
    detail
}

fn append(conn: &Connection, actor: &str, subject: &str, detail: serde_json::Value) -> rusqlite::Result<()> {
    audit::append(
        conn,
        &AuditEvent { at_ms: now_ms(), kind: AuditKind::PolicyDecision, actor, subject, detail },
    )
    .map(|_| ())
}

/// Appends `decision` to the audit log as a Policy Decision Record.
pub fn record(root: &Path, decision: &Decision) -> Result<(), PolicyError> {
    let (mut conn, db_path) = connect_db(root)?;
    let mut run = || -> rusqlite::Result<()> {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        append(&tx, &decision.agent, &decision.action, detail(decision, json!({})))?;
        tx.commit()
    };
    run().map_err(|e| store_error(root, "append a policy decision to the audit log", e))?;
    crate::store::anchor::update(&conn, &db_path);
    Ok(())
}

/// Creates a pending approval for `decision` (which needs one), expiring after `timeout`, and
/// records the decision; returns its id.
pub fn request(root: &Path, decision: &Decision, timeout: Duration) -> Result<i64, PolicyError> {
    let (mut conn, db_path) = connect_db(root)?;
    let now = now_ms();
    let expires = now.saturating_add(timeout.as_millis().min(i64::MAX as u128) as i64);
    let mut run = || -> rusqlite::Result<i64> {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute(
            "INSERT INTO policy_approval (created_ms, agent, action, rule, reason, expires_ms, state) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'pending')",
            params![
                now,
                decision.agent,
                decision.action,
                decision.rule.as_ref().map(ToString::to_string),
                decision.reason,
                expires
            ],
        )?;
        let id = tx.last_insert_rowid();
        // Who may answer is compared with the namespaces of the ACAS that asks (see [`answer`]).
        let namespaces = Namespaces::own();
        append(
            &tx,
            &decision.agent,
            &decision.action,
            detail(decision, json!({ "approval": id, "namespaces": namespaces })),
        )?;
        tx.commit()?;
        Ok(id)
    };
    let id = run().map_err(|e| store_error(root, "create a pending approval", e))?;
    crate::store::anchor::update(&conn, &db_path);
    Ok(id)
}

/// The approvals waiting for a person, oldest first (expired ones left out).
pub fn pending(root: &Path) -> Result<Vec<Pending>, PolicyError> {
    let conn = connect(root)?;
    let run = || -> rusqlite::Result<Vec<Pending>> {
        conn.prepare(&format!(
            "SELECT id, created_ms, expires_ms, agent, action, rule, reason FROM policy_approval p \
             WHERE expires_ms > ?1 AND (state = 'pending' OR ({UNPROVEN})) ORDER BY id"
        ))?
        .query_map([now_ms()], |row| {
            Ok(Pending {
                id: row.get(0)?,
                created_ms: row.get(1)?,
                expires_ms: row.get(2)?,
                agent: row.get(3)?,
                action: row.get(4)?,
                rule: row.get(5)?,
                reason: row.get(6)?,
            })
        })?
        .collect()
    };
    run().map_err(|e| store_error(root, "read the pending approvals", e))
}

/// Ends approval `id`: `state` is `approved`, `denied`, `expired` or `cancelled`. Only a pending
/// one changes; its record says who ended it.
fn end(root: &Path, id: i64, state: &str, by: &str) -> Result<Pending, PolicyError> {
    let (mut conn, db_path) = connect_db(root)?;
    let mut run = || -> rusqlite::Result<Option<Pending>> {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let row = tx
            .query_row(
                &format!(
                    "SELECT id, created_ms, expires_ms, agent, action, rule, reason, state, answered_by \
                     FROM policy_approval p WHERE id = ?1 AND (state = 'pending' OR ({UNPROVEN}))"
                ),
                [id],
                |row| {
                    let pending = Pending {
                        id: row.get(0)?,
                        created_ms: row.get(1)?,
                        expires_ms: row.get(2)?,
                        agent: row.get(3)?,
                        action: row.get(4)?,
                        rule: row.get(5)?,
                        reason: row.get(6)?,
                    };
                    let (was, claimed_by): (String, Option<String>) = (row.get(7)?, row.get(8)?);
                    Ok((pending, was, claimed_by))
                },
            )
            .optional()?;
        let Some((pending, was, claimed_by)) = row else { return Ok(None) };
        // A row that claimed an answer the log never recorded: the record that ends it says so.
        let unproven_row = (was != "pending").then(|| json!({ "state": was, "answered_by": claimed_by }));
        let now = now_ms();
        // An answer after the wait ran out comes too late: the approval expires instead.
        let state = if matches!(state, "approved" | "denied") && pending.expires_ms <= now {
            "expired"
        } else {
            state
        };
        tx.execute(
            "UPDATE policy_approval SET state = ?2, answered_by = ?3, answered_ms = ?4 WHERE id = ?1",
            params![id, state, by, now],
        )?;
        let outcome = if state == "approved" { Outcome::Allow } else { Outcome::Deny };
        append(
            &tx,
            by,
            &pending.action,
            json!({
                "outcome": outcome.as_str(),
                "agent": pending.agent,
                "action": pending.action,
                "rule": pending.rule,
                "reason": pending.reason,
                "approval": id,
                "answer": state,
                "answered_by": by,
                "namespaces": Namespaces::own(),
                "unproven_row": unproven_row,
            }),
        )?;
        tx.commit()?;
        Ok(Some(pending))
    };
    let ended = run().map_err(|e| store_error(root, "answer the approval", e))?;
    crate::store::anchor::update(&conn, &db_path);
    match ended {
        Some(pending) => Ok(pending),
        None => Err(PolicyError::other(
            PolicyErrorKind::NotPending,
            &root.join(".acas/state.db"),
            format!(
                "approval {id} is not pending (answered, expired or unknown); `acas approve` lists those that are"
            ),
        )),
    }
}

/// A person's answer to approval `id`; `by` says who (`editor`, `cli`, a user name).
pub fn answer(root: &Path, id: i64, approve: bool, by: &str) -> Result<Pending, PolicyError> {
    // A person answers: never a run, nor anything a run started (its steps' processes, however
    // they forked, stay below the step's supervisor).
    if let Some(enclosing) = crate::process_tree::enclosing() {
        return Err(PolicyError::other(
            PolicyErrorKind::InsideRun,
            &root.join(".acas/state.db"),
            format!(
                "a workflow run cannot answer approvals: this was started by {}; a person answers with `acas \
                 approve {id}` in their own terminal or in the editor",
                enclosing.describe()
            ),
        ));
    }
    // Nor a process that made namespaces of its own, where the walk above finds nothing: it
    // answers from the namespaces of the ACAS that asked, or from the machine's first ones (a
    // person's editor outside the sandbox an agent runs in).
    if let (Some(asked), Some(own)) = (asked_from(root, id)?, Namespaces::own())
        && asked != own
        && !own.are_initial()
    {
        return Err(PolicyError::other(
            PolicyErrorKind::InsideRun,
            &root.join(".acas/state.db"),
            format!(
                "approval {id} was asked by an ACAS in other namespaces ({}) than this process ({}): a \
                 process in namespaces of its own (unshare, a container) is taken for something a run \
                 started; a person answers with `acas approve {id}` in their own terminal or in the editor, \
                 on the machine or in the container where ACAS runs",
                asked.as_str(),
                own.as_str()
            ),
        ));
    }
    end(root, id, if approve { "approved" } else { "denied" }, by)
}

/// The namespaces of the ACAS that asked for approval `id`, as the audit record of the request
/// holds them; `None` when the record does not say (an approval asked by an older ACAS).
fn asked_from(root: &Path, id: i64) -> Result<Option<Namespaces>, PolicyError> {
    let conn = connect(root)?;
    conn.query_row(
        "SELECT json_extract(detail, '$.namespaces') FROM audit_log WHERE kind = 'policy_decision' \
         AND json_extract(detail, '$.approval') = ?1 AND json_extract(detail, '$.answer') IS NULL \
         ORDER BY seq LIMIT 1",
        [id],
        |row| row.get::<_, Option<String>>(0),
    )
    .optional()
    .map(|found| found.flatten().map(Namespaces::from))
    .map_err(|e| store_error(root, "read the approval's request from the audit log", e))
}

fn state_of(root: &Path, id: i64) -> Result<Option<(String, Option<String>)>, PolicyError> {
    let conn = connect(root)?;
    conn.query_row("SELECT state, answered_by FROM policy_approval WHERE id = ?1", [id], |row| {
        Ok((row.get(0)?, row.get(1)?))
    })
    .optional()
    .map_err(|e| store_error(root, "read an approval", e))
}

/// Waits for the answer to approval `id` until it expires or `cancel` fires.
pub async fn wait(
    root: &Path,
    id: i64,
    timeout: Duration,
    cancel: &CancellationToken,
) -> Result<Answer, PolicyError> {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut tick = tokio::time::interval(POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut warned = false;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = tokio::time::sleep_until(deadline) => {
                return finish(root, id, "expired", "acas").await;
            }
            _ = cancel.cancelled() => {
                return finish(root, id, "cancelled", "acas").await;
            }
        }
        let root_owned = root.to_path_buf();
        let state = tokio::task::spawn_blocking(move || state_of(&root_owned, id))
            .await
            .map_err(|e| store_error(root, "read an approval", e))??;
        match state {
            Some((state, by)) => match state.as_str() {
                "pending" => {}
                "approved" => {
                    let root_owned = root.to_path_buf();
                    let proven = tokio::task::spawn_blocking(move || approval_proven(&root_owned, id))
                        .await
                        .map_err(|e| store_error(root, "read an approval", e))??;
                    if proven {
                        return Ok(Answer::Approved { by: by.unwrap_or_default() });
                    }
                    if !warned {
                        warned = true;
                        tracing::warn!(
                            id,
                            "approval {id} is marked approved in the database but the audit log holds no answer \
                             for it: it stays pending (`acas audit verify` names it)"
                        );
                    }
                }
                "denied" => return Ok(Answer::Denied { by: by.unwrap_or_default() }),
                "cancelled" => return Ok(Answer::Cancelled),
                _ => return Ok(Answer::Expired),
            },
            None => return Ok(Answer::Expired),
        }
    }
}

/// Ends a wait that got no answer; an answer that arrived meanwhile wins.
async fn finish(root: &Path, id: i64, state: &'static str, by: &'static str) -> Result<Answer, PolicyError> {
    let root = root.to_path_buf();
    tokio::task::spawn_blocking(move || match end(&root, id, state, by) {
        Ok(_) => Ok(if state == "expired" { Answer::Expired } else { Answer::Cancelled }),
        Err(e) if e.kind == PolicyErrorKind::NotPending => match state_of(&root, id)? {
            Some((s, by)) if s == "approved" && approval_proven(&root, id)? => {
                Ok(Answer::Approved { by: by.unwrap_or_default() })
            }
            Some((s, by)) if s == "denied" => Ok(Answer::Denied { by: by.unwrap_or_default() }),
            _ => Ok(Answer::Expired),
        },
        Err(e) => Err(e),
    })
    .await
    .map_err(|e| PolicyError::other(PolicyErrorKind::Store, Path::new(".acas/state.db"), e.to_string()))?
}

/// Asks the policy before acting: records the decision, and when it needs approval waits for a
/// person (bounded by the policy's `approval_timeout`, cancellable). `Ok` with the final decision
/// when the action may go ahead; `Err` with the refusal to show otherwise.
pub async fn enforce(
    root: &Path,
    policy: &super::Policy,
    agent: &str,
    session: Option<&str>,
    action: &super::Action,
    cancel: &CancellationToken,
) -> Result<Decision, String> {
    let mut decision = policy.decide(agent, action);
    // Judged as the agent, recorded as the agent in its session.
    decision.agent = named(&decision.agent, session);
    if policy.is_absent() {
        // No policy file: today's behaviour, and nothing to record.
        return Ok(decision);
    }
    let owned_root = root.to_path_buf();
    let timeout = policy.approval_timeout();
    match decision.outcome {
        Outcome::Allow | Outcome::Deny => {
            let copy = decision.clone();
            let recorded = tokio::task::spawn_blocking(move || record(&owned_root, &copy)).await;
            match recorded {
                Ok(Ok(())) => {}
                // Nothing acts without its record.
                Ok(Err(e)) => return Err(format!("{e}")),
                Err(e) => return Err(format!("recording a policy decision failed: {e}")),
            }
            if decision.outcome == Outcome::Deny { Err(decision.refusal()) } else { Ok(decision) }
        }
        Outcome::NeedsApproval => {
            let copy = decision.clone();
            let id = tokio::task::spawn_blocking(move || request(&owned_root, &copy, timeout))
                .await
                .map_err(|e| format!("creating an approval failed: {e}"))?
                .map_err(|e| e.to_string())?;
            tracing::info!(id, agent, action = %decision.action, "waiting for a person's approval");
            match wait(root, id, timeout, cancel).await.map_err(|e| e.to_string())? {
                Answer::Approved { .. } => Ok(Decision { outcome: Outcome::Allow, ..decision }),
                Answer::Denied { by } => Err(format!(
                    "{} was denied by {by} (approval {id}, asked by {}): ask them, or change the policy file",
                    decision.action,
                    decision.rule.as_ref().map_or_else(|| "the policy".to_owned(), ToString::to_string)
                )),
                Answer::Expired => Err(format!(
                    "{} needs a person's approval (approval {id}, asked by {}) and nobody answered within {}; \
                     answer with `acas approve {id}` or the editor while it waits, or raise `approval_timeout`",
                    decision.action,
                    decision.rule.as_ref().map_or_else(|| "the policy".to_owned(), ToString::to_string),
                    human(timeout)
                )),
                Answer::Cancelled => Err("cancelled while waiting for a person's approval".to_owned()),
            }
        }
    }
}

fn human(d: Duration) -> String {
    let secs = d.as_secs();
    if secs >= 3600 && secs.is_multiple_of(3600) {
        format!("{}h", secs / 3600)
    } else if secs >= 60 && secs.is_multiple_of(60) {
        format!("{}m", secs / 60)
    } else {
        format!("{:.1}s", d.as_secs_f64())
    }
}
