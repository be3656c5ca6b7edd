//! Approvals and Policy Decision Records, in the workspace's `.acas/state.db`.
//!
//! [`record`] appends a decision to the hash-chained audit log. [`request`] creates a pending
//! approval (and its record) in one transaction; [`answer`] approves or denies it, once, saying
//! who did (and its record, in the same transaction); [`wait`] waits for the answer, bounded
//! and cancellable, marking the approval expired or cancelled when the wait ends without one.
//! Any process on the workspace sees the same approvals: an agent's server waits while the
//! editor or `acas approve` answers. Who asks a person is the front ends' business.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use serde::Serialize;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::{Decision, Outcome, PolicyError, PolicyErrorKind};
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
    crate::store::connect_workspace(root, BUSY_TIMEOUT)
        .map(|(conn, _)| conn)
        .map_err(|e| store_error(root, "open the workspace database", e))
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
    let mut conn = connect(root)?;
    let mut run = || -> rusqlite::Result<()> {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        append(&tx, &decision.agent, &decision.action, detail(decision, json!({})))?;
        tx.commit()
    };
    run().map_err(|e| store_error(root, "append a policy decision to the audit log", e))
}

/// Creates a pending approval for `decision` (which needs one), expiring after `timeout`, and
/// records the decision; returns its id.
pub fn request(root: &Path, decision: &Decision, timeout: Duration) -> Result<i64, PolicyError> {
    let mut conn = connect(root)?;
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
        append(&tx, &decision.agent, &decision.action, detail(decision, json!({ "approval": id })))?;
        tx.commit()?;
        Ok(id)
    };
    run().map_err(|e| store_error(root, "create a pending approval", e))
}

/// The approvals waiting for a person, oldest first (expired ones left out).
pub fn pending(root: &Path) -> Result<Vec<Pending>, PolicyError> {
    let conn = connect(root)?;
    let run = || -> rusqlite::Result<Vec<Pending>> {
        conn.prepare(
            "SELECT id, created_ms, expires_ms, agent, action, rule, reason FROM policy_approval \
             WHERE state = 'pending' AND expires_ms > ?1 ORDER BY id",
        )?
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
    let mut conn = connect(root)?;
    let mut run = || -> rusqlite::Result<Option<Pending>> {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let row = tx
            .query_row(
                "SELECT id, created_ms, expires_ms, agent, action, rule, reason FROM policy_approval \
                 WHERE id = ?1 AND state = 'pending'",
                [id],
                |row| {
                    Ok(Pending {
                        id: row.get(0)?,
                        created_ms: row.get(1)?,
                        expires_ms: row.get(2)?,
                        agent: row.get(3)?,
                        action: row.get(4)?,
                        rule: row.get(5)?,
                        reason: row.get(6)?,
                    })
                },
            )
            .optional()?;
        let Some(pending) = row else { return Ok(None) };
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
            }),
        )?;
        tx.commit()?;
        Ok(Some(pending))
    };
    match run().map_err(|e| store_error(root, "answer the approval", e))? {
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
    end(root, id, if approve { "approved" } else { "denied" }, by)
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
                "approved" => return Ok(Answer::Approved { by: by.unwrap_or_default() }),
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
            Some((s, by)) if s == "approved" => Ok(Answer::Approved { by: by.unwrap_or_default() }),
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
    action: &super::Action,
    cancel: &CancellationToken,
) -> Result<Decision, String> {
    let decision = policy.decide(agent, action);
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
