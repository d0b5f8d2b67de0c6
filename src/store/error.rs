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
    /// The background writer stopped.
    #[error("the store writer stopped: {0}")]
    WriterGone(String),
}

impl StoreError {
    /// A query error naming what is wrong.
    pub fn query(problem: impl Into<String>) -> Self {
        StoreError::Query(problem.into())
    }
}
