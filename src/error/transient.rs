//! Which database errors a retry resolves. Decided from the error's kind and
//! the database's own error code, never its message text.

use sea_orm::{DbErr, RuntimeErr, sqlx};

/// Failures to reach the database, and transient conflicts a retry resolves
/// (lock timeouts, deadlocks, serialization failures, a cancelled statement):
/// the request answers 503 with `Retry-After`, not 500. Decided from the
/// error's kind and the database's own error code, never its message text.
pub fn is_transient(err: &DbErr) -> bool {
    match err {
        DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => true,
        DbErr::Exec(RuntimeErr::SqlxError(e)) | DbErr::Query(RuntimeErr::SqlxError(e)) => sqlx_is_transient(e),
        _ => false,
    }
}

fn sqlx_is_transient(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => {
            if let Some(mysql) = db.try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>() {
                return mysql_is_transient(mysql.number());
            }
            let code = db.code().unwrap_or_default();
            match db.try_downcast_ref::<sqlx::sqlite::SqliteError>() {
                Some(_) => code.parse::<i32>().is_ok_and(sqlite_is_transient),
                None => postgres_is_transient(&code),
            }
        }
        _ => false,
    }
}

/// SQLSTATE: 08 connection exception, 40001 serialization failure, 40P01
/// deadlock, 53300 too many connections, 55P03 lock not available, 57014
/// statement timeout (or cancel), 57P01-57P03 server shutting down or starting.
fn postgres_is_transient(sqlstate: &str) -> bool {
    sqlstate.starts_with("08")
        || matches!(sqlstate, "40001" | "40P01" | "53300" | "55P03" | "57014" | "57P01" | "57P02" | "57P03")
}

/// 1040 too many connections, 1205 lock wait timeout, 1213 deadlock, 2006
/// server gone away, 2013 connection lost, 3024 statement time limit.
fn mysql_is_transient(number: u16) -> bool {
    matches!(number, 1040 | 1205 | 1213 | 2006 | 2013 | 3024)
}

/// Primary result codes (the low byte of an extended code): 5 SQLITE_BUSY,
/// 6 SQLITE_LOCKED.
fn sqlite_is_transient(extended: i32) -> bool {
    matches!(extended & 0xff, 5 | 6)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_of_the_server_databases() {
        for transient in ["08006", "08P01", "40001", "40P01", "57014", "57P01"] {
            assert!(postgres_is_transient(transient), "{transient}");
        }
        for bug in ["23505", "42P01", "42601", "22001", ""] {
            assert!(!postgres_is_transient(bug), "{bug}");
        }
        assert!(mysql_is_transient(1213) && mysql_is_transient(1205));
        assert!(!mysql_is_transient(1062) && !mysql_is_transient(1146));
        assert!(sqlite_is_transient(5) && sqlite_is_transient(517) && sqlite_is_transient(6));
        assert!(!sqlite_is_transient(19) && !sqlite_is_transient(2067));
    }
}
