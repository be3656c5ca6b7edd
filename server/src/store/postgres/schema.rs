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
    // The agent a provider call was made for, so that an agent's spend limit counts its own.
    "ALTER TABLE provider_call ADD COLUMN agent text;
     CREATE INDEX provider_call_agent_at ON provider_call (agent, at_ms);",
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
