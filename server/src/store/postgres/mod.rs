//! The shared store on PostgreSQL: what a team shares (cost ledger and budget reservations,
//! answer cache, tasks and their locks) in one database that every ACAS instance of the team
//! connects to.
//!
//! [`PgStore`] holds a pool of connections (`deadpool-postgres` over `tokio-postgres`), TLS
//! through rustls with the platform's certificate verifier (`sslmode=prefer`, the default, uses
//! TLS when the server offers it; `require` insists; `disable` never asks), and a small runtime
//! of its own, so that its calls block like the SQLite store's and work from any thread. Opening
//! brings the schema up to date (`schema.rs`). Rows carry the repository identity (the
//! normalised remote URL) and the user they came from.
//!
//! Errors name the database by its masked URL ([`DatabaseUrl`]): the password is never shown.
//! An unreachable server is [`StoreErrorKind::Unreachable`], so that callers can tell it from a
//! refusal. This module does not decide limits, run tasks or keep anything local.

pub mod copy;
mod fixes;
pub mod identity;
mod ledger;
pub mod listen;
pub mod presence;
pub mod runs;
mod schema;
pub mod steps;
pub mod url;

use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use rustls_platform_verifier::BuilderVerifierExt;

use super::error::{StoreError, StoreErrorKind};
pub use schema::SCHEMA_VERSION;
pub use url::DatabaseUrl;

/// The environment variable that points ACAS at a shared store; it wins over `[store] url`.
pub const URL_ENV: &str = "ACAS_DATABASE_URL";

/// Where the shared store is and who this workspace writes as, from `[store] url` (or
/// [`URL_ENV`]) and `[store] user`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedStore {
    pub url: DatabaseUrl,
    pub identity: Identity,
}

impl SharedStore {
    /// The shared store of the workspace at `root`: `env_url` (the value of [`URL_ENV`]) or
    /// else `file_url`; `None` when neither is set. The user is `user`, else git's
    /// `user.email`.
    pub fn resolve(
        root: &Path,
        env_url: Option<&str>,
        file_url: Option<&str>,
        user: Option<&str>,
    ) -> Result<Option<SharedStore>, StoreError> {
        let Some(text) = env_url.filter(|u| !u.trim().is_empty()).or(file_url) else { return Ok(None) };
        let url = DatabaseUrl::parse(text)?;
        let identity = Identity { repository: identity::repository(root), user: identity::user(user, root) };
        Ok(Some(SharedStore { url, identity }))
    }

    /// Connects with the default pool settings ([`PgStore::connect`]).
    pub fn connect(&self) -> Result<PgStore, StoreError> {
        PgStore::connect(&self.url, self.identity.clone(), &PgOptions::default())
    }
}

/// Who writes: the repository (its normalised remote URL) and the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub repository: String,
    pub user: String,
}

/// Pool and timeouts of the shared store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgOptions {
    /// Connections this process keeps open at most. Default: 4.
    pub max_connections: usize,
    /// How long to wait for a connection to be made or freed before failing with
    /// [`StoreErrorKind::Unreachable`]. Default: 5 seconds.
    pub connect_timeout: Duration,
}

impl Default for PgOptions {
    fn default() -> PgOptions {
        PgOptions { max_connections: 4, connect_timeout: Duration::from_secs(5) }
    }
}

/// A handle on the shared store. Cloning is cheap and shares the pool.
#[derive(Clone)]
pub struct PgStore {
    inner: Arc<Inner>,
}

struct Inner {
    pool: Pool,
    url: DatabaseUrl,
    identity: Identity,
    runtime: Option<tokio::runtime::Runtime>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Never blocks, so a handle may be dropped anywhere, an async task included.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl PgStore {
    /// Connects to the database at `url`, checks that it answers, and brings its schema up to
    /// date. Fails with [`StoreErrorKind::NewerSchema`] when a newer ACAS migrated it.
    pub fn connect(
        url: &DatabaseUrl,
        identity: Identity,
        options: &PgOptions,
    ) -> Result<PgStore, StoreError> {
        let mut config = url.config();
        config.connect_timeout(options.connect_timeout);
        config.application_name("acas");
        let manager = Manager::from_config(
            config,
            tls_connector(url)?,
            ManagerConfig { recycling_method: RecyclingMethod::Fast },
        );
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("acas-shared-store")
            .enable_all()
            .build()
            .map_err(|e| {
                StoreError::new(StoreErrorKind::Io, format!("could not start the shared store's runtime: {e}; free some memory or threads and try again"))
            })?;
        let built = {
            let _entered = runtime.enter();
            Pool::builder(manager)
                .max_size(options.max_connections.max(1))
                .runtime(deadpool_postgres::Runtime::Tokio1)
                .wait_timeout(Some(options.connect_timeout))
                .create_timeout(Some(options.connect_timeout))
                .build()
                .map_err(|e| {
                    StoreError::new(
                        StoreErrorKind::Config,
                        format!("could not set up connections to the shared store {url}: {e}"),
                    )
                })
        };
        // A runtime dropped in an async context would panic: shut it down without waiting.
        let pool = match built {
            Ok(pool) => pool,
            Err(error) => {
                runtime.shutdown_background();
                return Err(error);
            }
        };
        let store =
            PgStore { inner: Arc::new(Inner { pool, url: url.clone(), identity, runtime: Some(runtime) }) };
        store.run("bring the shared store's schema up to date", |pool| async move {
            let mut client = pool.get().await?;
            schema::migrate(&mut client).await
        })?;
        Ok(store)
    }

    pub fn url(&self) -> &DatabaseUrl {
        &self.inner.url
    }

    pub fn identity(&self) -> &Identity {
        &self.inner.identity
    }

    /// The schema version the database is at.
    pub fn schema_version(&self) -> Result<i32, StoreError> {
        self.run("read the shared store's schema version", |pool| async move {
            let client = pool.get().await?;
            Ok(schema::version(&client).await?)
        })
    }

    /// Runs `work` on the store's runtime and waits for its answer; errors name `what` failed.
    /// Works from any thread, async or not (an async caller's thread blocks meanwhile, so
    /// async callers use a blocking thread, as for the SQLite store).
    pub(crate) fn run<T, F, Fut>(&self, what: &str, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(Pool) -> Fut,
        Fut: Future<Output = Result<T, Fail>> + Send + 'static,
    {
        let future = work(self.inner.pool.clone());
        let (reply, answer) = std::sync::mpsc::sync_channel(1);
        let runtime = self.inner.runtime.as_ref().expect("the runtime lives as long as the store");
        runtime.spawn(async move {
            let _ = reply.send(future.await);
        });
        match answer.recv() {
            Ok(result) => result.map_err(|fail| fail.into_store_error(what, &self.inner.url)),
            Err(_) => Err(StoreError::new(
                StoreErrorKind::Database,
                format!(
                    "could not {what}: the shared store's worker stopped; restart ACAS and check its log"
                ),
            )),
        }
    }
}

/// A failure inside a call to PostgreSQL, before it is told in words.
#[derive(Debug)]
pub(crate) enum Fail {
    Pg(tokio_postgres::Error),
    Pool(deadpool_postgres::PoolError),
    /// Ours, already in words.
    Store(StoreError),
}

impl From<tokio_postgres::Error> for Fail {
    fn from(e: tokio_postgres::Error) -> Fail {
        Fail::Pg(e)
    }
}

impl From<deadpool_postgres::PoolError> for Fail {
    fn from(e: deadpool_postgres::PoolError) -> Fail {
        match e {
            deadpool_postgres::PoolError::Backend(e) => Fail::Pg(e),
            e => Fail::Pool(e),
        }
    }
}

impl From<StoreError> for Fail {
    fn from(e: StoreError) -> Fail {
        Fail::Store(e)
    }
}

impl Fail {
    fn into_store_error(self, what: &str, url: &DatabaseUrl) -> StoreError {
        match self {
            Fail::Store(e) => e,
            Fail::Pg(e) => match e.as_db_error() {
                Some(db) => StoreError::new(
                    StoreErrorKind::Database,
                    format!(
                        "could not {what} in the shared store {url}: {} ({}); if this persists, report it as a bug",
                        db.message(),
                        db.code().code()
                    ),
                ),
                None => unreachable_error(what, url, &e.to_string()),
            },
            Fail::Pool(e) => unreachable_error(what, url, &e.to_string()),
        }
    }
}

fn unreachable_error(what: &str, url: &DatabaseUrl, why: &str) -> StoreError {
    StoreError::new(
        StoreErrorKind::Unreachable,
        format!(
            "could not {what}: the shared store {url} cannot be reached ({why}); check that \
             PostgreSQL runs there and accepts this user, or unset `[store] url` and \
             ACAS_DATABASE_URL to work on the local store"
        ),
    )
}

/// TLS through rustls (ring), with the platform's certificate verifier.
fn tls_connector(url: &DatabaseUrl) -> Result<tokio_postgres_rustls::MakeRustlsConnect, StoreError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .and_then(|builder| builder.with_platform_verifier())
        .map_err(|e| {
            StoreError::new(
                StoreErrorKind::Config,
                format!("could not set up TLS for the shared store {url}: {e}; check the system's certificate store"),
            )
        })?
        .with_no_client_auth();
    Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
}
