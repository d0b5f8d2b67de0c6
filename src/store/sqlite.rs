//! The embedded backend: one SQLite file in WAL mode (readers never wait for the writer), its
//! schema from `migrations/sqlite`, each batch one transaction of prepared inserts.

use std::str::FromStr;
use std::sync::LazyLock;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row as _, Sqlite, Transaction};

use super::rows::{Key, Row, wire_name};
use super::{Batch, RunInfo, RunListing, StoreError, StoredRun};
use crate::model::{METRICS, WallTime};

/// Every table with rows of a run, the run itself last.
const RUN_TABLES: [&str; 10] = ["telemetry", "events", "heartbeats", "alerts", "commands", "command_acks", "presence", "failures", "vehicles", "runs"];

/// How long a statement waits for a lock before it fails.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// An open SQLite store.
#[derive(Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
}

/// What one write did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Written {
    /// Rows added.
    pub stored: u64,
    /// Rows already there (a redelivered message): nothing added.
    pub duplicates: u64,
}

static TELEMETRY_INSERT: LazyLock<String> = LazyLock::new(|| {
    let columns: Vec<&str> = METRICS.iter().map(|m| m.name).collect();
    let marks = vec!["?"; 6 + columns.len()].join(", ");
    format!("INSERT OR IGNORE INTO telemetry (time, run_id, vehicle_id, seq, sim_time, wall_time, {}) VALUES ({marks})", columns.join(", "))
});

impl SqliteStore {
    /// Opens (creating if missing) the database at `path`, or an in-memory one for
    /// `:memory:`, and applies the migrations.
    pub async fn open(path: &str) -> Result<Self, StoreError> {
        let memory = path == ":memory:";
        let options = if memory {
            SqliteConnectOptions::from_str("sqlite::memory:")?
        } else {
            SqliteConnectOptions::new().filename(path).create_if_missing(true).journal_mode(SqliteJournalMode::Wal).synchronous(SqliteSynchronous::Normal)
        }
        .busy_timeout(BUSY_TIMEOUT);
        // Each connection to `:memory:` is a database of its own: keep exactly one, forever.
        let pool = if memory {
            SqlitePoolOptions::new().max_connections(1).min_connections(1).idle_timeout(None).max_lifetime(None).connect_with(options).await?
        } else {
            SqlitePoolOptions::new().max_connections(4).connect_with(options).await?
        };
        let store = Self { pool };
        store.migrate().await?;
        Ok(store)
    }

    /// Applies the migrations not yet applied; applying them again changes nothing.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        sqlx::migrate!("migrations/sqlite").run(&self.pool).await?;
        Ok(())
    }

    /// The connection pool, for queries.
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// Registers `run` (again, harmlessly, if it is there) and returns its number.
    pub async fn register_run(&self, run: &RunInfo) -> Result<i64, StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("INSERT OR IGNORE INTO runs (name, scenario, seed, fleet, start_time, created_at) VALUES (?, ?, ?, ?, ?, ?)")
            .bind(&run.name)
            .bind(&run.scenario)
            .bind(run.seed as i64)
            .bind(i64::from(run.fleet))
            .bind(run.start.unix_ms() as i64)
            .bind(WallTime::now().unix_ms() as i64)
            .execute(&mut *tx)
            .await?;
        let run_id: i64 = sqlx::query("SELECT run_id FROM runs WHERE name = ?").bind(&run.name).fetch_one(&mut *tx).await?.get(0);
        for (vehicle, model, depot) in &run.vehicles {
            sqlx::query("INSERT OR IGNORE INTO vehicles (run_id, vehicle_id, model, home_depot) VALUES (?, ?, ?, ?)")
                .bind(run_id)
                .bind(i64::from(vehicle.0))
                .bind(wire_name(model))
                .bind(depot)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(run_id)
    }

    /// Writes `batch` for run `run_id` in one transaction: all of it lands, or none of it.
    pub async fn write(&self, run_id: i64, batch: &Batch) -> Result<Written, StoreError> {
        let mut tx = self.pool.begin().await?;
        let mut written = Written::default();
        for row in &batch.rows {
            let added = insert(&mut tx, run_id, row).await?;
            written.stored += added;
            written.duplicates += 1 - added.min(1);
        }
        tx.commit().await?;
        Ok(written)
    }

    /// Every run in the database, oldest first, with its telemetry row count.
    pub async fn runs(&self) -> Result<Vec<RunListing>, StoreError> {
        let rows = sqlx::query(
            "SELECT r.run_id, r.name, r.scenario, r.seed, r.fleet, r.start_time,
                    (SELECT MAX(time) FROM telemetry t WHERE t.run_id = r.run_id),
                    (SELECT COUNT(*) FROM telemetry t WHERE t.run_id = r.run_id)
             FROM runs r ORDER BY r.run_id",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(|r| RunListing { run: stored_run(r), telemetry_rows: r.get(7) }).collect())
    }

    /// The run named `name`, or the latest when `None`; `None` when there is no such run.
    /// One row of `runs` and one index lookup: queries call this every time.
    pub async fn find_run(&self, name: Option<&str>) -> Result<Option<StoredRun>, StoreError> {
        let row = match name {
            Some(name) => sqlx::query(
                "SELECT r.run_id, r.name, r.scenario, r.seed, r.fleet, r.start_time,
                        (SELECT MAX(time) FROM telemetry t WHERE t.run_id = r.run_id)
                 FROM runs r WHERE r.name = ?",
            )
            .bind(name)
            .fetch_optional(&self.pool)
            .await?,
            None => sqlx::query(
                "SELECT r.run_id, r.name, r.scenario, r.seed, r.fleet, r.start_time,
                        (SELECT MAX(time) FROM telemetry t WHERE t.run_id = r.run_id)
                 FROM runs r ORDER BY r.run_id DESC LIMIT 1",
            )
            .fetch_optional(&self.pool)
            .await?,
        };
        Ok(row.as_ref().map(stored_run))
    }

    /// Removes run `name` and every row of it. Returns whether there was such a run.
    pub async fn delete_run(&self, name: &str) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        let Some(row) = sqlx::query("SELECT run_id FROM runs WHERE name = ?").bind(name).fetch_optional(&mut *tx).await? else {
            return Ok(false);
        };
        let run_id: i64 = row.get(0);
        for table in RUN_TABLES {
            // Table names from the list above, never from input.
            sqlx::query(sqlx::AssertSqlSafe(format!("DELETE FROM {table} WHERE run_id = ?"))).bind(run_id).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(true)
    }
}

/// A run from the first seven columns of a `runs` query: the run, then its latest telemetry
/// time (NULL before its first frame).
fn stored_run(row: &sqlx::sqlite::SqliteRow) -> StoredRun {
    let start_ms: i64 = row.get(5);
    let latest_ms: Option<i64> = row.get(6);
    StoredRun {
        run_id: row.get(0),
        name: row.get(1),
        scenario: row.get(2),
        seed: row.get(3),
        fleet: row.get(4),
        start: WallTime::from_unix_ms(start_ms.max(0) as u64),
        // A row's time is the start plus its sim time, to the millisecond.
        sim_seconds: latest_ms.map_or(0.0, |latest| (latest - start_ms) as f64 / 1000.0),
    }
}

/// Inserts one row unless it is there; returns the rows added (0 or 1).
async fn insert(tx: &mut Transaction<'_, Sqlite>, run_id: i64, row: &Row) -> Result<u64, StoreError> {
    type Query<'q> = sqlx::query::Query<'q, Sqlite, sqlx::sqlite::SqliteArguments>;
    fn keyed(sql: &'static str, run_id: i64, key: &Key) -> Query<'static> {
        sqlx::query(sql).bind(key.time_ms).bind(run_id).bind(key.vehicle).bind(key.seq).bind(key.sim_time).bind(key.wall_ms)
    }
    let query = match row {
        Row::Telemetry(key, telemetry) => {
            let query = telemetry.metrics.values.iter().fold(keyed(TELEMETRY_INSERT.as_str(), run_id, key), |query, value| query.bind(*value));
            let added = query.execute(&mut **tx).await?.rows_affected();
            for failure in &telemetry.truth {
                sqlx::query(FAILURE_UPSERT)
                    .bind(run_id)
                    .bind(key.vehicle)
                    .bind(wire_name(&failure.mode))
                    .bind(wire_name(&failure.component))
                    .bind(failure.onset_s)
                    .bind(failure.functional_failure_s)
                    .bind(failure.severity)
                    .bind(key.sim_time)
                    .execute(&mut **tx)
                    .await?;
            }
            return Ok(added);
        }
        Row::Event(key, event, detail) => keyed(
            "INSERT OR IGNORE INTO events (time, run_id, vehicle_id, seq, sim_time, wall_time, event, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            run_id,
            key,
        )
        .bind(event)
        .bind(detail),
        Row::Heartbeat(key, status, uptime_s) => keyed(
            "INSERT OR IGNORE INTO heartbeats (time, run_id, vehicle_id, seq, sim_time, wall_time, status, uptime_s) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            run_id,
            key,
        )
        .bind(status)
        .bind(uptime_s),
        Row::Alert(key, alert) => keyed(
            "INSERT OR IGNORE INTO alerts (time, run_id, vehicle_id, seq, sim_time, wall_time, alert_id, component, alert_type, severity, raised_at_s, evidence, recommendation)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            run_id,
            key,
        )
        .bind(&alert.id)
        .bind(wire_name(&alert.component))
        .bind(&alert.alert_type)
        .bind(wire_name(&alert.severity))
        .bind(alert.raised_at_s)
        .bind(serde_json::to_string(&alert.evidence).unwrap_or_default())
        .bind(serde_json::to_string(&alert.recommendation).unwrap_or_default()),
        Row::Command(key, id, action, detail, ttl_s) => keyed(
            "INSERT OR IGNORE INTO commands (time, run_id, vehicle_id, seq, sim_time, wall_time, command_id, action, detail, ttl_s) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            run_id,
            key,
        )
        .bind(id)
        .bind(action)
        .bind(detail)
        .bind(ttl_s),
        Row::CommandAck(key, id, outcome, detail) => keyed(
            "INSERT OR IGNORE INTO command_acks (time, run_id, vehicle_id, seq, sim_time, wall_time, command_id, outcome, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            run_id,
            key,
        )
        .bind(id)
        .bind(outcome)
        .bind(detail),
        Row::Presence(key, presence) => keyed(
            "INSERT OR IGNORE INTO presence (time, run_id, vehicle_id, seq, sim_time, wall_time, online, last_seen_sim_time, silent_s) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            run_id,
            key,
        )
        .bind(presence.online)
        .bind(presence.last_seen_sim_time)
        .bind(presence.silent_s),
    };
    Ok(query.execute(&mut **tx).await?.rows_affected())
}

/// A failure's ground truth, kept up to date from each frame that reports it.
const FAILURE_UPSERT: &str = "INSERT INTO failures (run_id, vehicle_id, mode, component, onset_s, functional_failure_s, last_severity, last_seen_s)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?)
     ON CONFLICT (run_id, vehicle_id, mode, onset_s) DO UPDATE SET
        functional_failure_s = COALESCE(failures.functional_failure_s, excluded.functional_failure_s),
        last_severity = CASE WHEN excluded.last_seen_s >= failures.last_seen_s THEN excluded.last_severity ELSE failures.last_severity END,
        last_seen_s = MAX(failures.last_seen_s, excluded.last_seen_s)";
