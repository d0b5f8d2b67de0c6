//! Fleet history: every message the fleet sends, stored in a database and queried back.
//!
//! The storage domain is an adapter around the bus: [`writer`] consumes envelopes from a
//! subscription (never from inside ECS systems) or, as its own process, from the Redis
//! streams ([`from_redis`]), and writes them in batches; [`query`] answers questions about
//! what was stored. The schema is in `migrations/`, one set per dialect, and docs/STORAGE.md
//! describes it.
//!
//! Backends are chosen by the `--store` URL: `sqlite:PATH` or `sqlite::memory:` (embedded, the
//! default) and `postgres://...`. Both sit behind [`Store`]; every query is written once, in
//! the shared SQL of [`sql`].

mod error;
pub mod export;
pub mod frames;
pub mod from_redis;
pub mod lifecycle;
mod partitions;
mod postgres;
pub mod query;
mod rows;
pub mod segment;
mod spool;
mod sql;
mod sqlite;
pub mod timescale;
pub mod writer;

use std::str::FromStr;

pub use error::StoreError;
pub use postgres::{Ingest, PostgresStore};
pub use rows::{Batch, Row, RunTarget};
pub use sql::{Dialect, Param, Statement};
pub use sqlite::SqliteStore;

use crate::model::{VehicleId, VehicleModel, WallTime};
use sql::Cell;

/// An hour and a UTC day, in milliseconds: the spans the store buckets, compacts and retires by.
pub const HOUR_MS: i64 = 3_600_000;
/// See [`HOUR_MS`].
pub const DAY_MS: i64 = 86_400_000;

/// The start of the span of `span_ms` (counted from the Unix epoch) that holds `ms`.
pub fn floor_to(ms: i64, span_ms: i64) -> i64 {
    ms.div_euclid(span_ms) * span_ms
}

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
pub async fn open(url: &str) -> Result<Store, StoreError> {
    open_with(url, Ingest::Copy).await
}

/// [`open`], choosing how PostgreSQL takes batches.
pub async fn open_with(url: &str, ingest: Ingest) -> Result<Store, StoreError> {
    Ok(match url.parse::<StoreUrl>()? {
        StoreUrl::Sqlite(path) => Store::Sqlite(SqliteStore::open(&path).await?),
        StoreUrl::Postgres(url) => Store::Postgres(PostgresStore::open(&url, ingest).await?),
    })
}

/// What one write did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Written {
    /// Rows added.
    pub stored: u64,
    /// Rows already there (a redelivered message): nothing added.
    pub duplicates: u64,
}

/// Every table with rows of a run, the run itself last.
const RUN_TABLES: [&str; 13] =
    ["telemetry", "telemetry_segments", "events", "heartbeats", "alerts", "commands", "command_acks", "presence", "failures", "fleet_hourly", "dead_letters", "vehicles", "runs"];

/// An open store, of either backend.
#[derive(Clone)]
pub enum Store {
    /// Embedded SQLite.
    Sqlite(SqliteStore),
    /// A PostgreSQL server.
    Postgres(PostgresStore),
}

impl Store {
    /// The SQL it speaks.
    pub fn dialect(&self) -> Dialect {
        match self {
            Store::Sqlite(_) => Dialect::Sqlite,
            Store::Postgres(_) => Dialect::Postgres,
        }
    }

    /// The pool of a PostgreSQL server whose telemetry is a TimescaleDB hypertable.
    pub fn timescale(&self) -> Option<&sqlx::PgPool> {
        match self {
            Store::Postgres(store) if store.timescale().is_some() => Some(store.pool()),
            _ => None,
        }
    }

    /// The pool of a plain PostgreSQL server, whose telemetry is partitioned by day, and the
    /// partitions it knows.
    pub(crate) fn partitioned(&self) -> Option<(&sqlx::PgPool, &partitions::Days)> {
        match self {
            Store::Postgres(store) => store.days().map(|days| (store.pool(), days)),
            _ => None,
        }
    }

    /// Makes the day partitions that rows at `times_ms` need, for a writer that goes past
    /// [`Store::write`] (plain PostgreSQL; nothing elsewhere).
    pub async fn ensure_partitions(&self, times_ms: impl Iterator<Item = i64>) -> Result<(), StoreError> {
        match self.partitioned() {
            Some((pool, days)) => days.ensure(pool, times_ms).await,
            None => Ok(()),
        }
    }

    /// SQL for the start, in milliseconds, of the bucket of `every_ms` (counted from
    /// `origin_ms`) that holds the instant `time` at or after the origin: TimescaleDB's
    /// `time_bucket` where telemetry is a hypertable, arithmetic elsewhere. Numbers computed
    /// by the caller, never input.
    pub fn bucket_ms(&self, time: &str, every_ms: i64, origin_ms: i64) -> String {
        let d = self.dialect();
        match self.timescale() {
            Some(_) => d.ms(&format!("time_bucket(INTERVAL '{every_ms} milliseconds', {time}, to_timestamp({origin_ms}::BIGINT / 1000.0))")),
            None => format!("({} - {origin_ms}) / {every_ms} * {every_ms} + {origin_ms}", d.ms(time)),
        }
    }

    /// Applies the migrations not yet applied; applying them again changes nothing.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        match self {
            Store::Sqlite(store) => store.migrate().await,
            Store::Postgres(store) => store.migrate().await,
        }
    }

    /// Writes `rows` for `target` in one transaction: all of them land, or none.
    pub async fn write(&self, target: &RunTarget, rows: &[Row]) -> Result<Written, StoreError> {
        match self {
            Store::Sqlite(store) => store.write(target, rows).await,
            Store::Postgres(store) => store.write(target, rows).await,
        }
    }

    /// Rows of `sql` (with `?` placeholders) binding `params`.
    pub async fn fetch(&self, sql: &str, params: Vec<Param>) -> Result<Vec<Vec<Cell>>, StoreError> {
        let statement = Statement::new(self.dialect().placeholders(sql), params);
        match self {
            Store::Sqlite(store) => store.fetch(&statement).await,
            Store::Postgres(store) => store.fetch(&statement).await,
        }
    }

    /// Runs `statements` (with `?` placeholders) in one transaction; the rows each affected.
    pub async fn execute_all(&self, statements: Vec<Statement>) -> Result<Vec<u64>, StoreError> {
        let dialect = self.dialect();
        let statements: Vec<Statement> = statements.into_iter().map(|s| Statement::new(dialect.placeholders(&s.sql), s.params)).collect();
        match self {
            Store::Sqlite(store) => store.execute_all(&statements).await,
            Store::Postgres(store) => store.execute_all(&statements).await,
        }
    }

    /// Registers `run` (again, harmlessly, if it is there) and returns where its rows go.
    pub async fn register_run(&self, run: &RunInfo) -> Result<RunTarget, StoreError> {
        let at = self.dialect().at();
        self.execute_all(vec![Statement::new(
            format!("INSERT INTO runs (name, scenario, seed, fleet, start_time, created_at) VALUES (?, ?, ?, ?, {at}, {at}) ON CONFLICT (name) DO NOTHING"),
            vec![
                run.name.as_str().into(),
                run.scenario.as_str().into(),
                Param::Int(run.seed as i64),
                Param::Int(i64::from(run.fleet)),
                Param::Int(run.start.unix_ms() as i64),
                Param::Int(WallTime::now().unix_ms() as i64),
            ],
        )])
        .await?;
        let found = self.fetch("SELECT run_id FROM runs WHERE name = ?", vec![run.name.as_str().into()]).await?;
        let run_id = found.first().and_then(|row| row[0].as_i64()).ok_or_else(|| StoreError::query(format!("run `{}` vanished as it was registered", run.name)))?;
        // Many vehicles to a statement: a 10,000-vehicle fleet is 20 statements, not 10,000.
        let statements = run
            .vehicles
            .chunks(500)
            .map(|chunk| {
                let values = vec!["(?, ?, ?, ?)"; chunk.len()].join(", ");
                let params = chunk
                    .iter()
                    .flat_map(|(vehicle, model, depot)| [Param::Int(run_id), Param::Int(i64::from(vehicle.0)), Param::Text(rows::wire_name(model)), depot.as_str().into()])
                    .collect();
                Statement::new(format!("INSERT INTO vehicles (run_id, vehicle_id, model, home_depot) VALUES {values} ON CONFLICT DO NOTHING"), params)
            })
            .collect();
        self.execute_all(statements).await?;
        Ok(RunTarget { run_id, name: run.name.clone(), start: run.start, models: run.vehicles.iter().map(|(_, model, _)| rows::wire_name(model)).collect() })
    }

    /// The columns of `runs` that [`stored_run`] reads, with its latest telemetry time.
    fn run_columns(&self) -> String {
        let d = self.dialect();
        // The later of the raw rows' and the segments' latest times (either may be missing).
        let raw = format!("(SELECT {} FROM telemetry t WHERE t.run_id = r.run_id)", d.ms("MAX(t.time)"));
        let compacted = format!("(SELECT {} FROM telemetry_segments s WHERE s.run_id = r.run_id)", d.ms("MAX(s.end_time)"));
        format!(
            "r.run_id, r.name, r.scenario, r.seed, r.fleet, {}, CASE WHEN {compacted} IS NULL OR {raw} >= {compacted} THEN {raw} ELSE {compacted} END",
            d.ms("r.start_time"),
        )
    }

    /// Every run in the database, oldest first, with its telemetry row count.
    pub async fn runs(&self) -> Result<Vec<RunListing>, StoreError> {
        let sql = format!(
            "SELECT {}, (SELECT COUNT(*) FROM telemetry t WHERE t.run_id = r.run_id) + (SELECT COALESCE(SUM(s.frames), 0) FROM telemetry_segments s WHERE s.run_id = r.run_id) FROM runs r ORDER BY r.run_id",
            self.run_columns()
        );
        let rows = self.fetch(&sql, vec![]).await?;
        Ok(rows.iter().map(|r| RunListing { run: stored_run(r), telemetry_rows: r[7].as_i64().unwrap_or(0) }).collect())
    }

    /// The run named `name`, or the latest when `None`; `None` when there is no such run.
    /// One row of `runs` and one index lookup: queries call this every time.
    pub async fn find_run(&self, name: Option<&str>) -> Result<Option<StoredRun>, StoreError> {
        let rows = match name {
            Some(name) => self.fetch(&format!("SELECT {} FROM runs r WHERE r.name = ?", self.run_columns()), vec![name.into()]).await?,
            None => self.fetch(&format!("SELECT {} FROM runs r ORDER BY r.run_id DESC LIMIT 1", self.run_columns()), vec![]).await?,
        };
        Ok(rows.first().map(|r| stored_run(r)))
    }

    /// Where more rows of the stored run `run` go: its number, name and vehicles' models.
    pub async fn run_target(&self, run: &StoredRun) -> Result<RunTarget, StoreError> {
        let rows = self.fetch("SELECT vehicle_id, model FROM vehicles WHERE run_id = ? ORDER BY vehicle_id", vec![Param::Int(run.run_id)]).await?;
        let mut models = Vec::new();
        for row in rows {
            let (Some(vehicle), Some(model)) = (row[0].as_i64(), row[1].as_str()) else { continue };
            let Ok(index) = usize::try_from(vehicle - 1) else { continue };
            if models.len() <= index {
                models.resize(index + 1, "unknown".to_owned());
            }
            models[index] = model.to_owned();
        }
        Ok(RunTarget { run_id: run.run_id, name: run.name.clone(), start: run.start, models })
    }

    /// Removes run `name` and every row of it, in one transaction. Returns whether there was
    /// such a run.
    pub async fn delete_run(&self, name: &str) -> Result<bool, StoreError> {
        let Some(run) = self.find_run(Some(name)).await? else {
            return Ok(false);
        };
        // Table names from the list above, never from input.
        let statements = RUN_TABLES.iter().map(|table| Statement::new(format!("DELETE FROM {table} WHERE run_id = ?"), vec![Param::Int(run.run_id)])).collect();
        self.execute_all(statements).await?;
        Ok(true)
    }

    /// Records rows the database refused, each with the reason, for run `run_id`.
    pub async fn dead_letter(&self, run_id: Option<i64>, letters: &[DeadLetter]) -> Result<(), StoreError> {
        let at = self.dialect().at();
        let statements = letters
            .iter()
            .map(|letter| {
                Statement::new(
                    format!("INSERT INTO dead_letters (received_at, run_id, source, reason, payload) VALUES ({at}, ?, ?, ?, ?)"),
                    vec![
                        Param::Int(WallTime::now().unix_ms() as i64),
                        run_id.map_or(Param::Null, Param::Int),
                        letter.source.as_str().into(),
                        letter.reason.as_str().into(),
                        letter.payload.as_str().into(),
                    ],
                )
            })
            .collect();
        self.execute_all(statements).await?;
        Ok(())
    }
}

/// Something the store would not or could not take, kept with the reason.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DeadLetter {
    /// Where it came from: `bus`, or the Redis stream.
    pub source: String,
    /// Why it was refused.
    pub reason: String,
    /// The row as JSON, or the raw entry.
    pub payload: String,
}

/// A run from the first seven cells of a `runs` query: the run, then its latest telemetry
/// time (NULL before its first frame).
fn stored_run(row: &[Cell]) -> StoredRun {
    let start_ms = row[5].as_i64().unwrap_or(0);
    let latest_ms = row[6].as_i64();
    StoredRun {
        run_id: row[0].as_i64().unwrap_or(0),
        name: row[1].as_str().unwrap_or_default().to_owned(),
        scenario: row[2].as_str().unwrap_or_default().to_owned(),
        seed: row[3].as_i64().unwrap_or(0),
        fleet: row[4].as_i64().unwrap_or(0),
        start: WallTime::from_unix_ms(start_ms.max(0) as u64),
        // A row's time is the start plus its sim time, to the millisecond.
        sim_seconds: latest_ms.map_or(0.0, |latest| (latest - start_ms) as f64 / 1000.0),
    }
}

/// What a run is, registered before its first message is stored. Over Redis the first shard
/// of a fleet publishes it for the others and for `aegis store` (docs/PROTOCOL.md).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
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
    WallTime::from_unix_ms(start.unix_ms().saturating_add(sim_ms(sim_time).max(0) as u64))
}

/// `sim_time` seconds in whole milliseconds, as telemetry keeps its simulated time: steps of
/// 0.05 s summed as doubles stray in the last bit.
pub fn sim_ms(sim_time: f64) -> i64 {
    (sim_time * 1000.0).round() as i64
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
