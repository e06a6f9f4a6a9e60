//! The catalog of record: SQLite (embedded default) or PostgreSQL through sqlx's `Any` driver,
//! so both backends run the same queries. One transaction per location; an unchanged entity
//! costs no write; a location that fails keeps its last good entities.

mod claims;
mod cluster;
mod commit_statuses;
pub mod diff;
mod lease;
mod objects;
mod pins;
mod query;
mod read;
mod rows;
mod signing_keys;
pub mod stream;
mod templates;
mod triggers;
mod write;

use std::time::Duration;

use std::sync::Arc;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, ConnectOptions, Executor};

pub use claims::Holder;
pub use cluster::ManagedEntity;
pub use commit_statuses::StatusClaim;
pub use lease::{SecondWriter, SourceLease, WriterLock};
pub use objects::{Identity, ObjectKey, MANIFESTS_ANNOTATION};
pub use query::EntityQuery;
pub use read::{LocationRow, SourceRow, StoredEntity, SyncRunRow, UnresolvedRelation};
pub use templates::{TemplateChange, TemplateEntity, TemplateFileRow, TemplateRecord, TemplateVersion};
pub use triggers::PendingSync;
pub use write::{Changes, Deferred, OrphanDeletion, SyncRun};

/// How long a connection attempt may take before the store counts as down.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl std::fmt::Display for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Sqlite => "SQLite",
            Self::Postgres => "PostgreSQL",
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot connect to the database: {0}")]
    Connect(#[source] sqlx::Error),
    #[error("database migration failed: {0}")]
    Migrate(#[source] sqlx::migrate::MigrateError),
    #[error("database query failed ({step}): {source}")]
    Query {
        step: &'static str,
        #[source]
        source: sqlx::Error,
    },
    #[error("stored entity {entity_ref} is not valid JSON: {source}")]
    Corrupt {
        entity_ref: String,
        #[source]
        source: serde_json::Error,
    },
}

impl StoreError {
    /// Connection trouble is transient; a broken migration or corrupt row is not.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Connect(_) => true,
            Self::Query { source, .. } => {
                matches!(
                    source,
                    sqlx::Error::Io(_)
                        | sqlx::Error::PoolTimedOut
                        | sqlx::Error::PoolClosed
                        | sqlx::Error::WorkerCrashed
                ) || is_busy(source)
                    || lost_a_race(source)
            }
            Self::Migrate(_) | Self::Corrupt { .. } => false,
        }
    }
}

impl crate::retry::Transient for StoreError {
    fn is_transient(&self) -> bool {
        StoreError::is_transient(self)
    }
}

/// SQLite's "database is locked" clears by itself once the other writer commits.
fn is_busy(err: &sqlx::Error) -> bool {
    err.as_database_error().is_some_and(|e| e.message().contains("locked") || e.message().contains("busy"))
}

/// Two writers locking the same rows in opposite orders, or a serialisation conflict: PostgreSQL
/// aborts one transaction, which succeeds when run again.
fn lost_a_race(err: &sqlx::Error) -> bool {
    err.as_database_error()
        .and_then(sqlx::error::DatabaseError::code)
        .is_some_and(|code| code == "40P01" || code == "40001")
}

/// A statement slower than this is logged (at debug level).
const SLOW_STATEMENT: std::time::Duration = std::time::Duration::from_secs(1);

fn options(url: &str) -> Result<(Backend, AnyConnectOptions), StoreError> {
    sqlx::any::install_default_drivers();
    let backend = if url.starts_with("sqlite:") { Backend::Sqlite } else { Backend::Postgres };
    let url = match backend {
        Backend::Sqlite if !url.contains("mode=") => {
            format!("{url}{}mode=rwc", if url.contains('?') { '&' } else { '?' })
        }
        _ => url.to_owned(),
    };
    let options: AnyConnectOptions = url.parse().map_err(StoreError::Connect)?;
    // Statements, and slow ones (a large first ingest, our own `ANALYZE`), at debug: the text of
    // a statement is not an operator's business unless asked for (`RUST_LOG=sqlx=debug`).
    let options =
        options.log_statements(log::LevelFilter::Trace).log_slow_statements(log::LevelFilter::Debug, SLOW_STATEMENT);
    Ok((backend, options))
}

/// Connections a PostgreSQL pool keeps for the catalog API, on top of what syncing holds.
pub const API_CONNECTIONS: u32 = 8;

/// Location writers one PostgreSQL pass runs at once (see `stream::concurrent_writers`).
pub const MAX_LOCATION_WRITERS: usize = 4;

fn pool_options(backend: Backend) -> AnyPoolOptions {
    AnyPoolOptions::new()
        .max_connections(if backend == Backend::Sqlite { 4 } else { API_CONNECTIONS })
        .acquire_timeout(CONNECT_TIMEOUT)
        .after_connect(move |conn, _| {
            Box::pin(async move {
                match backend {
                    // `synchronous = NORMAL`: in WAL mode a commit no longer waits for the disk
                    // (the WAL is synced at checkpoints). A crash of the agent loses nothing;
                    // a power cut may lose the last commits, never consistency — and the
                    // catalog is re-derived from git on the next pass. With FULL, a monorepo's
                    // ten thousand files cost ten thousand fsyncs.
                    Backend::Sqlite => {
                        conn.execute(
                            "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 30000;",
                        )
                        .await?;
                    }
                    // Catalog queries are prepared once and run with very different values: a
                    // generic plan ignores how rare `tags=t7` is and picks a bad join order.
                    Backend::Postgres => {
                        conn.execute("SET plan_cache_mode = force_custom_plan").await?;
                    }
                }
                Ok(())
            })
        })
}

pub(crate) fn query_err(step: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError {
    move |source| StoreError::Query { step, source }
}

#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    /// The URL as opened (secrets inside it never leave this struct).
    url: String,
    /// SQLite's one write lock, taken in this process first: waiters are woken the moment it is
    /// free, where SQLite's own busy handler would poll with sleeps of up to 100 ms.
    write_turn: Arc<tokio::sync::Mutex<()>>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("backend", &self.backend).finish_non_exhaustive()
    }
}

impl Store {
    /// A pool that connects on first use, so the daemon starts while the database is down.
    pub fn open_lazy(url: &str) -> Result<Self, StoreError> {
        Self::open_lazy_for(url, 0)
    }

    /// [`Store::open_lazy`] for an agent that syncs `concurrent_passes` sources at once. On
    /// PostgreSQL each pass holds its lease (a transaction) and writes with up to
    /// [`MAX_LOCATION_WRITERS`] connections of its own; the pool has room for all of them plus
    /// [`API_CONNECTIONS`], so syncing never starves the API of connections.
    pub fn open_lazy_for(url: &str, concurrent_passes: usize) -> Result<Self, StoreError> {
        let (backend, options) = options(url)?;
        let mut pool = pool_options(backend);
        if backend == Backend::Postgres {
            let per_pass = 1 + MAX_LOCATION_WRITERS;
            let syncing = u32::try_from(concurrent_passes.saturating_mul(per_pass)).unwrap_or(u32::MAX);
            pool = pool.max_connections(API_CONNECTIONS.saturating_add(syncing));
        }
        let pool = pool.connect_lazy_with(options);
        Ok(Self { pool, backend, url: url.to_owned(), write_turn: Arc::default() })
    }

    /// A one-connection pool of its own, for readiness checks: they must never wait behind
    /// catalog queries on the shared pool, or a busy agent would look unready.
    pub fn probe(&self) -> Result<Self, StoreError> {
        let (backend, options) = options(&self.url)?;
        let pool = pool_options(backend).max_connections(1).connect_lazy_with(options);
        Ok(Self { pool, backend, url: self.url.clone(), write_turn: self.write_turn.clone() })
    }

    /// Opens a pool. SQLite files are created on first use; SQLite runs in `WAL` mode with a busy
    /// timeout so the HTTP readers and the one writer do not trip over each other.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let (backend, options) = options(url)?;
        let pool = pool_options(backend).connect_with(options).await.map_err(StoreError::Connect)?;
        Ok(Self { pool, backend, url: url.to_owned(), write_turn: Arc::default() })
    }

    /// Connections the pool may open.
    pub fn pool_size(&self) -> u32 {
        self.pool.options().get_max_connections()
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Applies the migrations for this backend; idempotent.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        let migrator = match self.backend {
            Backend::Sqlite => sqlx::migrate!("agent/store/migrations/sqlite"),
            Backend::Postgres => sqlx::migrate!("agent/store/migrations/postgres"),
        };
        migrator.run(&self.pool).await.map_err(StoreError::Migrate)
    }

    /// A cheap round trip, for readiness.
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await.map_err(query_err("ping"))?;
        Ok(())
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Unix time in milliseconds, the unit of every timestamp column.
impl Store {
    /// A transaction that writes. SQLite's plain `BEGIN` takes the write lock at the first
    /// write and fails at once ("database is locked") when another connection wrote since it
    /// began; `BEGIN IMMEDIATE` takes the lock up front and waits its turn (`busy_timeout`), so
    /// passes of several sources share the one writer instead of failing and retrying.
    /// This process's turn at SQLite's writer, for a write outside [`Store::begin_write`]'s
    /// transactions (one statement in autocommit mode).
    pub(crate) async fn write_turn(&self) -> WriteTurn {
        match self.backend {
            Backend::Sqlite => Some(self.write_turn.clone().lock_owned().await),
            Backend::Postgres => None,
        }
    }

    /// On SQLite the transaction comes with this process's turn at the writer ([`WriteTurn`]):
    /// keep it until the transaction is committed or dropped.
    pub(crate) async fn begin_write(&self) -> Result<(sqlx::Transaction<'static, sqlx::Any>, WriteTurn), StoreError> {
        let (tx, turn) = match self.backend {
            Backend::Sqlite => {
                let turn = self.write_turn().await;
                (self.pool.begin_with("BEGIN IMMEDIATE").await, turn)
            }
            Backend::Postgres => (self.pool.begin().await, None),
        };
        Ok((tx.map_err(query_err("begin"))?, turn))
    }
}

/// This process's turn at SQLite's writer, held with a write transaction (`None` on PostgreSQL,
/// whose writers do not wait on one lock). Other processes still wait through `busy_timeout`.
pub(crate) type WriteTurn = Option<tokio::sync::OwnedMutexGuard<()>>;

pub use crate::telemetry::now_millis;
