//! Opening the database pool and running migrations.

use migration::{Migrator, MigratorTrait};
use sea_orm::{
    ConnectOptions, Database, DatabaseConnection, DbBackend,
    sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous},
};

use crate::config::Config;

pub async fn connect(config: &Config) -> anyhow::Result<DatabaseConnection> {
    open(config, config.database_max_connections).await
}

/// The pool writes go through. SQLite takes one writer at a time, and a writer
/// that finds the file locked sleeps and retries (its busy handler), in steps
/// up to 100 ms: under 32 concurrent writers that made p99 most of a second.
/// A pool of one connection makes writers queue for it in order instead. The
/// other databases lock rows, not the file: there it is the same pool.
pub async fn writer(config: &Config, db: &DatabaseConnection) -> anyhow::Result<DatabaseConnection> {
    let in_memory = config.database_url.contains(":memory:") || config.database_url.contains("mode=memory");
    if db.get_database_backend() != DbBackend::Sqlite || in_memory {
        return Ok(db.clone());
    }
    open(config, 1).await
}

async fn open(config: &Config, max_connections: u32) -> anyhow::Result<DatabaseConnection> {
    let mut options = ConnectOptions::new(config.database_url.clone());
    let busy_timeout = config.database_timeout;
    let statement_timeout = format!("{}ms", config.database_statement_timeout.as_millis());
    options
        .max_connections(max_connections)
        // Bounded waits: when the database stops answering, requests fail
        // fast with 503 instead of piling up.
        .connect_timeout(config.database_timeout)
        .acquire_timeout(config.database_timeout)
        // Statement text can carry emails; keep it out of the logs.
        .sqlx_logging(false)
        // WAL lets readers run beside the one writer; the busy timeout makes a
        // second writer wait for the lock instead of failing at once.
        // A stuck statement is cancelled by the server instead of holding a
        // connection (and the request) forever. (MySQL has no portable
        // equivalent; REQUEST_TIMEOUT bounds the request there.)
        .map_sqlx_postgres_opts(move |o| o.options([("statement_timeout", statement_timeout.clone())]))
        .map_sqlx_sqlite_opts(move |o| {
            o.journal_mode(SqliteJournalMode::Wal)
                // In WAL mode NORMAL is still crash-safe (a power cut may lose
                // the last commits, never corrupt the file) and saves an fsync
                // per commit, which is most of the time a writer holds the lock.
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(busy_timeout)
                .foreign_keys(true)
        });
    let db = Database::connect(options).await.map_err(|e| anyhow::anyhow!("cannot open DATABASE_URL: {e}"))?;
    Ok(db)
}

pub async fn migrate(db: &DatabaseConnection) -> anyhow::Result<()> {
    Migrator::up(db, None).await.map_err(|e| anyhow::anyhow!("migrations failed: {e}"))
}
