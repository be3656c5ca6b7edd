//! Versioned migrations of the shared store.
//!
//! `schema_version` holds one row per migration applied. [`migrate`] takes a transaction-level
//! advisory lock first, so that instances starting together apply each migration once, then
//! applies those the database lacks, each in the same transaction as its row. A database whose
//! version is above [`SCHEMA_VERSION`] was migrated by a newer ACAS and is refused. Running it
//! again changes nothing.

use deadpool_postgres::GenericClient;

use super::Fail;
use crate::store::error::{StoreError, StoreErrorKind};

/// The version this ACAS brings the shared store to.
pub const SCHEMA_VERSION: i32 = MIGRATIONS.len() as i32;

/// Taken by [`migrate`] for the length of its transaction ("ACAS" in ASCII).
const MIGRATION_LOCK: i64 = 0x4143_4153;

/// Migration `i + 1` is `MIGRATIONS[i]`. Append only: never edit one that shipped.
const MIGRATIONS: &[&str] = &[
    // 1: cost ledger, budget rows, answer cache, tasks and their path locks.
    "CREATE TABLE provider_call (
         id text PRIMARY KEY,
         repository text NOT NULL,
         user_name text NOT NULL,
         at_ms bigint NOT NULL,
         provider text NOT NULL,
         model text NOT NULL,
         fingerprint text,
         category text,
         status text NOT NULL,
         reserved_micros bigint NOT NULL,
         input_tokens bigint NOT NULL,
         output_tokens bigint NOT NULL,
         cached_input_tokens bigint NOT NULL,
         cost_micros bigint NOT NULL,
         latency_ms bigint,
         error text
     );
     CREATE INDEX provider_call_at ON provider_call (at_ms);
     CREATE TABLE budget (scope text PRIMARY KEY);
     INSERT INTO budget (scope) VALUES ('team');
     CREATE TABLE cache_entry (
         key text PRIMARY KEY,
         at_ms bigint NOT NULL,
         fingerprint text NOT NULL,
         model text NOT NULL,
         provider text NOT NULL,
         reply text NOT NULL
     );
     CREATE TABLE task (
         id bigserial PRIMARY KEY,
         repository text NOT NULL,
         title text NOT NULL,
         description text NOT NULL,
         kind text NOT NULL,
         priority bigint NOT NULL,
         labels text[] NOT NULL,
         paths text[] NOT NULL,
         state text NOT NULL,
         source text NOT NULL,
         fingerprint text,
         created_by text NOT NULL,
         created_ms bigint NOT NULL,
         updated_ms bigint NOT NULL,
         agent text,
         claimed_ms bigint,
         heartbeat_ms bigint,
         lease_until_ms bigint,
         attempts integer NOT NULL DEFAULT 0,
         max_attempts integer NOT NULL,
         retry_at_ms bigint,
         last_error text,
         finished_ms bigint
     );
     CREATE INDEX task_ready ON task (repository, state, priority DESC, id);
     CREATE TABLE task_need (
         task bigint NOT NULL REFERENCES task (id) ON DELETE CASCADE,
         need bigint NOT NULL REFERENCES task (id),
         PRIMARY KEY (task, need)
     );
     CREATE INDEX task_need_need ON task_need (need);
     CREATE TABLE task_lock (
         id bigserial PRIMARY KEY,
         task bigint NOT NULL REFERENCES task (id) ON DELETE CASCADE,
         glob text NOT NULL,
         agent text NOT NULL,
         acquired_ms bigint NOT NULL
     );
     CREATE INDEX task_lock_task ON task_lock (task);",
    // Workflow step attempts queued for workers, and the workers.
    "CREATE TABLE step_attempt (
         id bigserial PRIMARY KEY,
         repository text NOT NULL,
         run_key text NOT NULL,
         step_id text NOT NULL,
         attempt integer NOT NULL,
         argv text[] NOT NULL,
         env text NOT NULL,
         cwd text NOT NULL,
         timeout_ms bigint,
         labels text[] NOT NULL,
         agent text NOT NULL,
         idempotent boolean NOT NULL,
         state text NOT NULL,
         worker text,
         lease_until_ms bigint,
         claims integer NOT NULL DEFAULT 0,
         succeeded boolean,
         exit_code integer,
         output text,
         error text,
         created_ms bigint NOT NULL,
         updated_ms bigint NOT NULL,
         UNIQUE (run_key, step_id, attempt)
     );
     CREATE INDEX step_attempt_open ON step_attempt (repository, id) WHERE state IN ('queued', 'claimed');
     CREATE TABLE step_worker (
         name text PRIMARY KEY,
         repository text NOT NULL,
         labels text[] NOT NULL,
         host text NOT NULL,
         started_ms bigint NOT NULL,
         heartbeat_ms bigint NOT NULL,
         lease_until_ms bigint NOT NULL
     );
     CREATE INDEX step_worker_repository ON step_worker (repository, lease_until_ms);",
    // Per-user spend (each user's budget row is made on first use, their calls read by user
    // and time); where a task copied from a workspace's SQLite came from, so that copying again
    // adds nothing; `NOTIFY acas_changes` with the repository and the kind of change (tasks,
    // locks, spend) when those rows are written (`listen.rs`); presence (`presence.rs`).
    "CREATE INDEX provider_call_user_at ON provider_call (user_name, at_ms);
     ALTER TABLE task ADD COLUMN origin text;
     CREATE UNIQUE INDEX task_origin ON task (repository, origin) WHERE origin IS NOT NULL;
     CREATE FUNCTION acas_notify_change() RETURNS trigger LANGUAGE plpgsql AS $$
     DECLARE repo text;
     BEGIN
         IF TG_TABLE_NAME = 'task_lock' THEN
             SELECT repository INTO repo FROM task
             WHERE id = CASE WHEN TG_OP = 'DELETE' THEN OLD.task ELSE NEW.task END;
         ELSIF TG_OP = 'DELETE' THEN
             repo := OLD.repository;
         ELSE
             repo := NEW.repository;
         END IF;
         IF repo IS NOT NULL THEN
             PERFORM pg_notify('acas_changes', json_build_object('repository', repo, 'kind', TG_ARGV[0])::text);
         END IF;
         RETURN NULL;
     END $$;
     CREATE TRIGGER task_changed AFTER INSERT OR UPDATE OR DELETE ON task
         FOR EACH ROW EXECUTE FUNCTION acas_notify_change('tasks');
     CREATE TRIGGER task_lock_changed AFTER INSERT OR UPDATE OR DELETE ON task_lock
         FOR EACH ROW EXECUTE FUNCTION acas_notify_change('locks');
     CREATE TRIGGER provider_call_changed AFTER INSERT OR UPDATE ON provider_call
         FOR EACH ROW EXECUTE FUNCTION acas_notify_change('spend');
     CREATE TABLE presence (
         instance text PRIMARY KEY,
         user_name text NOT NULL,
         host text NOT NULL,
         repository text NOT NULL,
         branch text,
         started_ms bigint NOT NULL,
         seen_ms bigint NOT NULL,
         expires_ms bigint NOT NULL
     );
     CREATE INDEX presence_expires ON presence (expires_ms);",
    // The agent a provider call was made for, so that an agent's spend limit counts its own.
    "ALTER TABLE provider_call ADD COLUMN agent text;
     CREATE INDEX provider_call_agent_at ON provider_call (agent, at_ms);",
    // A repository identity too long for a notification's payload (8000 bytes) is sent as its
    // SHA-256, so that its writes never fail for it (`listen.rs` matches either).
    "CREATE OR REPLACE FUNCTION acas_notify_change() RETURNS trigger LANGUAGE plpgsql AS $$
     DECLARE repo text;
     BEGIN
         IF TG_TABLE_NAME = 'task_lock' THEN
             SELECT repository INTO repo FROM task
             WHERE id = CASE WHEN TG_OP = 'DELETE' THEN OLD.task ELSE NEW.task END;
         ELSIF TG_OP = 'DELETE' THEN
             repo := OLD.repository;
         ELSE
             repo := NEW.repository;
         END IF;
         IF repo IS NULL THEN
             RETURN NULL;
         END IF;
         IF octet_length(repo) > 1000 THEN
             PERFORM pg_notify('acas_changes', json_build_object(
                 'repository_sha256', encode(sha256(convert_to(repo, 'UTF8')), 'hex'),
                 'kind', TG_ARGV[0])::text);
         ELSE
             PERFORM pg_notify('acas_changes', json_build_object('repository', repo, 'kind', TG_ARGV[0])::text);
         END IF;
         RETURN NULL;
     END $$;",
    // Workflow definitions, runs and their steps, mirrored by each run's process (`runs.rs`):
    // the run's own SQLite stays its owner; `version` only grows, so a late or repeated write
    // never moves a run back. A run's row is written on every change of the run or of a step,
    // so its trigger alone tells listeners (`runs`).
    "CREATE TABLE workflow_definition (
         repository text NOT NULL,
         name text NOT NULL,
         hash text NOT NULL,
         source text NOT NULL,
         first_seen_ms bigint NOT NULL,
         PRIMARY KEY (repository, name, hash)
     );
     CREATE TABLE workflow_run (
         id text PRIMARY KEY,
         repository text NOT NULL,
         local_id bigint NOT NULL,
         user_name text NOT NULL,
         host text NOT NULL,
         clone text NOT NULL,
         workflow text NOT NULL,
         definition_hash text NOT NULL,
         trigger text NOT NULL,
         status text NOT NULL,
         error text,
         created_ms bigint NOT NULL,
         started_ms bigint,
         finished_ms bigint,
         version bigint NOT NULL,
         updated_ms bigint NOT NULL
     );
     CREATE INDEX workflow_run_recent ON workflow_run (repository, created_ms DESC);
     CREATE TABLE workflow_run_step (
         run_id text NOT NULL REFERENCES workflow_run (id) ON DELETE CASCADE,
         step_id text NOT NULL,
         position integer NOT NULL,
         status text NOT NULL,
         attempts integer NOT NULL,
         started_ms bigint,
         finished_ms bigint,
         exit_code integer,
         error text,
         output_tail text,
         version bigint NOT NULL,
         PRIMARY KEY (run_id, step_id)
     );
     CREATE TRIGGER workflow_run_changed AFTER INSERT OR UPDATE OR DELETE ON workflow_run
         FOR EACH ROW EXECUTE FUNCTION acas_notify_change('runs');",
    // Fix outcomes of every clone of a repository, for learning (`fixes.rs`).
    "CREATE TABLE fix_outcome (
         id bigserial PRIMARY KEY,
         repository text NOT NULL,
         fix_id text NOT NULL,
         at_ms bigint NOT NULL,
         fingerprint text NOT NULL,
         category text NOT NULL,
         provider text NOT NULL,
         model text NOT NULL,
         outcome text NOT NULL,
         description text,
         old text,
         new text,
         verified text
     );
     CREATE INDEX fix_outcome_fingerprint ON fix_outcome (repository, fingerprint, at_ms);
     CREATE INDEX fix_outcome_fix ON fix_outcome (repository, fix_id);",
];

/// Brings the schema to [`SCHEMA_VERSION`]; see the module's doc.
pub(super) async fn migrate(client: &mut deadpool_postgres::Client) -> Result<(), Fail> {
    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK]).await?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_version (
             version integer PRIMARY KEY,
             applied_at timestamptz NOT NULL DEFAULT now()
         )",
    )
    .await?;
    let current = version(&tx).await?;
    if current > SCHEMA_VERSION {
        return Err(Fail::Store(StoreError::new(
            StoreErrorKind::NewerSchema,
            format!(
                "the shared store's schema is at version {current}, written by a newer ACAS than \
                 this one (which knows up to {SCHEMA_VERSION}); upgrade ACAS on this machine"
            ),
        )));
    }
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
        let number = index as i32 + 1;
        tx.batch_execute(sql).await?;
        tx.execute("INSERT INTO schema_version (version) VALUES ($1)", &[&number]).await?;
        tracing::info!(version = number, "migrated the shared store");
    }
    tx.commit().await?;
    Ok(())
}

/// The highest migration applied; 0 for a new database.
pub(super) async fn version(client: &impl GenericClient) -> Result<i32, tokio_postgres::Error> {
    let exists: bool =
        client.query_one("SELECT to_regclass('schema_version') IS NOT NULL", &[]).await?.get(0);
    if !exists {
        return Ok(0);
    }
    let row = client.query_one("SELECT coalesce(max(version), 0) FROM schema_version", &[]).await?;
    Ok(row.get(0))
}
