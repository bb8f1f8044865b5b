//! Opening the database pools, running migrations, and telling a database
//! failure worth retrying from one that is a bug.

use migration::{Migrator, MigratorTrait};
use sea_orm::{
    ConnectOptions, Database, DatabaseConnection, DbBackend,
    sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous},
};

use crate::config::Config;

pub async fn connect(config: &Config) -> anyhow::Result<DatabaseConnection> {
    open(config, config.database_pool_size()).await
}

/// [`connect`], then apply pending migrations unless `RUN_MIGRATIONS=false`.
pub async fn connect_migrated(config: &Config) -> anyhow::Result<DatabaseConnection> {
    let db = connect(config).await?;
    if config.run_migrations {
        migrate(&db).await?;
    }
    Ok(db)
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
                // SQLite's own cache of file pages, per connection (default
                // 2 MB); the operating system caches the file as well.
                .pragma("cache_size", format!("-{SQLITE_CACHE_KIB}"))
        });
    let db = Database::connect(options).await.map_err(|e| anyhow::anyhow!("cannot open DATABASE_URL: {e}"))?;
    Ok(db)
}

/// Per connection, in KiB.
const SQLITE_CACHE_KIB: u32 = 512;

pub async fn migrate(db: &DatabaseConnection) -> anyhow::Result<()> {
    Migrator::up(db, None).await.map_err(|e| anyhow::anyhow!("migrations failed: {e}"))
}

#[cfg(test)]
mod tests {
    use sea_orm::{ConnectionTrait, DbErr, Statement};

    use super::*;

    async fn sqlite(path: &std::path::Path) -> DatabaseConnection {
        let mut options = ConnectOptions::new(format!("sqlite://{}?mode=rwc", path.display()));
        options
            .max_connections(1)
            .sqlx_logging(false)
            .map_sqlx_sqlite_opts(|o| o.journal_mode(SqliteJournalMode::Wal).busy_timeout(std::time::Duration::ZERO));
        Database::connect(options).await.unwrap()
    }

    async fn run(db: &impl ConnectionTrait, sql: &str) -> Result<(), DbErr> {
        db.execute_raw(Statement::from_string(DbBackend::Sqlite, sql)).await.map(|_| ())
    }

    #[tokio::test]
    async fn a_locked_database_is_transient_and_a_broken_statement_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let (first, second) = (sqlite(&path).await, sqlite(&path).await);
        run(&first, "CREATE TABLE t (id INTEGER PRIMARY KEY)").await.unwrap();
        use sea_orm::TransactionTrait;
        let holding = first.begin().await.unwrap();
        run(&holding, "INSERT INTO t VALUES (1)").await.unwrap();
        let locked = run(&second, "INSERT INTO t VALUES (2)").await.unwrap_err();
        assert!(crate::error::is_transient(&locked), "{locked}");
        holding.commit().await.unwrap();

        let duplicate = run(&second, "INSERT INTO t VALUES (1)").await.unwrap_err();
        assert!(!crate::error::is_transient(&duplicate), "{duplicate}");
        let broken = run(&second, "INSERT INTO nowhere VALUES (1)").await.unwrap_err();
        assert!(!crate::error::is_transient(&broken), "{broken}");
    }
}
