//! Fleet history: every message the fleet sends, stored in a database and queried back.
//!
//! The storage domain is an adapter around the bus: [`writer::StoreWriter`] consumes
//! envelopes from a subscription (never from inside ECS systems) and writes them in batches;
//! [`query`] answers questions about what was stored. The schema is in `migrations/`, one set
//! per dialect, and docs/STORAGE.md describes it.
//!
//! Backends are chosen by the `--store` URL: `sqlite:PATH` or `sqlite::memory:` (embedded, the
//! default) today; `postgres://...` is parsed but not yet served.

mod error;
pub mod query;
mod rows;
mod sqlite;
pub mod writer;

use std::str::FromStr;

pub use error::StoreError;
pub use rows::Batch;
pub use sqlite::SqliteStore;

use crate::model::{VehicleId, VehicleModel, WallTime};

/// Where history is kept, as given by `--store`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreUrl {
    /// An SQLite database file (created when missing), or `:memory:`.
    Sqlite(String),
    /// A PostgreSQL server.
    Postgres(String),
}

impl FromStr for StoreUrl {
    type Err = StoreError;

    fn from_str(url: &str) -> Result<Self, Self::Err> {
        let problem = |problem: &str| StoreError::Url { url: url.to_owned(), problem: problem.to_owned() };
        if let Some(path) = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:")) {
            if path.is_empty() {
                return Err(problem("no database file after `sqlite:` (use sqlite:aegis.db or sqlite::memory:)"));
            }
            return Ok(StoreUrl::Sqlite(path.to_owned()));
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(StoreUrl::Postgres(url.to_owned()));
        }
        Err(problem("expected sqlite:PATH, sqlite::memory: or postgres://HOST/DB"))
    }
}

/// Opens the store at `url` and brings its schema up to date.
pub async fn open(url: &str) -> Result<SqliteStore, StoreError> {
    match url.parse::<StoreUrl>()? {
        StoreUrl::Sqlite(path) => SqliteStore::open(&path).await,
        StoreUrl::Postgres(_) => Err(StoreError::Url {
            url: url.to_owned(),
            problem: "PostgreSQL storage is not built yet; use sqlite:PATH".to_owned(),
        }),
    }
}

/// What a run is, registered before its first message is stored.
#[derive(Debug, Clone, PartialEq)]
pub struct RunInfo {
    /// Unique name, shown by `aegis store runs`.
    pub name: String,
    /// Scenario name.
    pub scenario: String,
    /// Run seed.
    pub seed: u64,
    /// Vehicles in the whole fleet.
    pub fleet: u32,
    /// The simulated instant of simulation time 0 (the scenario's `start`).
    pub start: WallTime,
    /// Each vehicle's model and home depot.
    pub vehicles: Vec<(VehicleId, VehicleModel, String)>,
}

impl RunInfo {
    /// A fresh run name that sorts by the wall time it began, like
    /// `20261201T131500.123Z-demo-42-7f3a`: the random tail keeps two runs begun in the same
    /// millisecond apart, since registering a name that exists joins that run.
    pub fn name_for(scenario: &str, seed: u64, began: WallTime) -> String {
        let text = began.to_string();
        let compact: String = text.chars().take(23).filter(|c| *c != '-' && *c != ':').collect();
        format!("{compact}Z-{scenario}-{seed}-{:04x}", rand::random::<u16>())
    }
}

/// `start` plus `sim_time` seconds, to the millisecond.
pub fn instant(start: WallTime, sim_time: f64) -> WallTime {
    WallTime::from_unix_ms(start.unix_ms().saturating_add((sim_time * 1000.0).round().max(0.0) as u64))
}

/// A stored run: which rows are its, and how its time is counted.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct StoredRun {
    /// Its number in this database.
    pub run_id: i64,
    /// Its name.
    pub name: String,
    /// Scenario name.
    pub scenario: String,
    /// Run seed.
    pub seed: i64,
    /// Vehicles in the fleet.
    pub fleet: i64,
    /// Simulated instant of simulation time 0.
    pub start: WallTime,
    /// Simulated seconds covered by its telemetry.
    pub sim_seconds: f64,
}

/// A run as `aegis store runs` lists it: the run and how many telemetry rows it has (a count
/// the queries do not need, and that grows with the run).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct RunListing {
    /// The run.
    #[serde(flatten)]
    pub run: StoredRun,
    /// Telemetry rows stored.
    pub telemetry_rows: i64,
}
