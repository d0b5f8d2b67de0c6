//! What can go wrong storing or querying fleet history.

/// An error of the storage domain.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The `--store` URL names no backend this build knows.
    #[error("store URL `{url}`: {problem}")]
    Url {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        problem: String,
    },
    /// The database could not be reached or refused a statement.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// The schema could not be brought up to date.
    #[error("migrating the schema: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A query asked for something that does not exist or cannot be answered.
    #[error("{0}")]
    Query(String),
    /// The spool file could not be written or read.
    #[error("spool {path}: {source}")]
    Spool {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// Redis, as the store process's feed, failed.
    #[error("redis: {0}")]
    Redis(String),
    /// A compacted segment of telemetry could not be read back.
    #[error("compacted telemetry segment: {0}")]
    Segment(String),
    /// Telemetry could not be exported to Parquet; nothing was dropped.
    #[error("exporting {path}: {problem}")]
    Export {
        /// The file being written.
        path: String,
        /// Why.
        problem: String,
    },
    /// The background writer stopped.
    #[error("the store writer stopped: {0}")]
    WriterGone(String),
}

impl StoreError {
    /// Whether the database refused the data itself (a constraint, a value it cannot hold), so
    /// that writing the same rows again would fail again. Anything else (the server down, a
    /// timeout, a lost connection) may pass on a later try.
    pub fn is_refusal(&self) -> bool {
        match self {
            StoreError::Database(sqlx::Error::Database(error)) => {
                let code = error.code().unwrap_or_default();
                !matches!(error.kind(), sqlx::error::ErrorKind::Other)
                    // PostgreSQL: data exceptions (22) and integrity violations (23).
                    || code.starts_with("22")
                    || code.starts_with("23")
                    // SQLite: SQLITE_TOOBIG, SQLITE_CONSTRAINT and SQLITE_MISMATCH, with
                    // their extended codes.
                    || code.parse::<i32>().is_ok_and(|code| matches!(code & 0xff, 18..=20))
            }
            StoreError::Database(sqlx::Error::Encode(_) | sqlx::Error::ColumnDecode { .. }) => true,
            _ => false,
        }
    }

    /// A query error naming what is wrong.
    pub fn query(problem: impl Into<String>) -> Self {
        StoreError::Query(problem.into())
    }
}
