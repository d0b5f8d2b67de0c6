//! The embedded backend: one SQLite file in WAL mode (readers never wait for the writer), its
//! schema from `migrations/sqlite`, each batch one transaction of prepared inserts.

use std::str::FromStr;
use std::sync::LazyLock;
use std::time::Duration;

use sqlx::sqlite::{SqliteArguments, SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow, SqliteSynchronous};
use sqlx::{AssertSqlSafe, Column as _, Row as _, Sqlite, Transaction, TypeInfo as _, ValueRef as _};

use super::rows::{Key, Row, RunTarget, failures, hourly_upserts, wire_name};
use super::sql::{Cell, Param, Statement};
use super::{StoreError, Written};
use crate::model::METRICS;

/// How long a statement waits for a lock before it fails.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// An open SQLite store.
#[derive(Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
}

static TELEMETRY_INSERT: LazyLock<String> = LazyLock::new(|| {
    let columns: Vec<&str> = METRICS.iter().map(|m| m.name).collect();
    let marks = vec!["?"; 6 + columns.len()].join(", ");
    format!("INSERT INTO telemetry (time, run_id, vehicle_id, seq, sim_ms, wall_ms, {}) VALUES ({marks}) ON CONFLICT DO NOTHING", columns.join(", "))
});

type Query<'q> = sqlx::query::Query<'q, Sqlite, SqliteArguments>;

impl SqliteStore {
    /// Opens (creating if missing) the database at `path`, or an in-memory one for
    /// `:memory:`, and applies the migrations.
    pub async fn open(path: &str) -> Result<Self, StoreError> {
        let memory = path == ":memory:";
        let options = if memory {
            SqliteConnectOptions::from_str("sqlite::memory:")?
        } else {
            SqliteConnectOptions::new()
                .filename(path)
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
        }
        .busy_timeout(BUSY_TIMEOUT)
        // Rows cross from SQLite's worker thread in batches this big, not 50 at a time.
        .row_buffer_size(1024);
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
    ///
    /// SQLite has no lock for migrators: two processes opening a new file together (`aegis
    /// store` starting while `aegis query` looks) can both see a migration as pending, and the
    /// second's fails on the first's tables. Trying again then finds it applied.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        let mut attempt = 0;
        loop {
            match sqlx::migrate!("migrations/sqlite").run(&self.pool).await {
                Ok(()) => return Ok(()),
                Err(_) if attempt < 5 => {
                    attempt += 1;
                    tokio::time::sleep(Duration::from_millis(50 * attempt)).await;
                }
                Err(error) => return Err(error.into()),
            }
        }
    }

    /// The connection pool, for queries of its own.
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// Rows of `statement`, each cell as the engine typed it.
    pub async fn fetch(&self, statement: &Statement) -> Result<Vec<Vec<Cell>>, StoreError> {
        let rows = bound(sqlx::query(AssertSqlSafe(statement.sql.clone())), &statement.params).fetch_all(&self.pool).await?;
        rows.iter().map(cells).collect()
    }

    /// Runs `statements` in one transaction; returns the rows each affected.
    pub async fn execute_all(&self, statements: &[Statement]) -> Result<Vec<u64>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let mut affected = Vec::with_capacity(statements.len());
        for statement in statements {
            let query = bound(sqlx::query(AssertSqlSafe(statement.sql.clone())), &statement.params);
            affected.push(query.execute(&mut *tx).await?.rows_affected());
        }
        tx.commit().await?;
        Ok(affected)
    }

    /// Writes `rows` for `target` in one transaction: all of them land, or none.
    pub async fn write(&self, target: &RunTarget, rows: &[Row]) -> Result<Written, StoreError> {
        let run_id = target.run_id;
        let mut tx = self.pool.begin().await?;
        let mut written = Written::default();
        let mut inserted = Vec::with_capacity(rows.len());
        for row in rows {
            let added = insert(&mut tx, run_id, row).await?;
            written.stored += added;
            written.duplicates += 1 - added.min(1);
            inserted.push(added > 0);
        }
        for upsert in hourly_upserts(super::Dialect::Sqlite, target, rows, |i| inserted[i]) {
            bound(sqlx::query(AssertSqlSafe(upsert.sql)), &upsert.params).execute(&mut *tx).await?;
        }
        for failure in failures(rows) {
            sqlx::query(FAILURE_UPSERT)
                .bind(run_id)
                .bind(failure.vehicle)
                .bind(failure.mode)
                .bind(failure.component)
                .bind(failure.onset_s)
                .bind(failure.functional_failure_s)
                .bind(failure.last_severity)
                .bind(failure.last_seen_s)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(written)
    }
}

fn bound<'q>(query: Query<'q>, params: &[Param]) -> Query<'q> {
    params.iter().fold(query, |query, param| match param {
        Param::Int(v) => query.bind(*v),
        Param::Float(v) => query.bind(*v),
        Param::Text(v) => query.bind(v.clone()),
        Param::Bytes(v) => query.bind(v.clone()),
        Param::Null => query.bind(None::<i64>),
    })
}

/// A row's cells by their stored type: SQLite types values, not columns.
fn cells(row: &SqliteRow) -> Result<Vec<Cell>, StoreError> {
    (0..row.columns().len())
        .map(|i| {
            let raw = row.try_get_raw(i)?;
            if raw.is_null() {
                return Ok(Cell::Null);
            }
            let type_info = raw.type_info();
            Ok(match type_info.name() {
                "INTEGER" | "BOOLEAN" => Cell::from(row.try_get_unchecked::<i64, _>(i)?),
                "REAL" | "NUMERIC" => Cell::from(row.try_get_unchecked::<f64, _>(i)?),
                "TEXT" => Cell::from(row.try_get_unchecked::<String, _>(i)?),
                other => return Err(StoreError::query(format!("column `{}` holds a {other} value, which answers cannot show", row.columns()[i].name()))),
            })
        })
        .collect()
}

/// Inserts one row unless it is there; returns the rows added (0 or 1). `ON CONFLICT DO
/// NOTHING`, not `INSERT OR IGNORE`: that would also skip, silently, a row that breaks a NOT
/// NULL constraint, which must be refused and dead-lettered instead.
async fn insert(tx: &mut Transaction<'_, Sqlite>, run_id: i64, row: &Row) -> Result<u64, StoreError> {
    fn keyed(sql: &'static str, run_id: i64, key: &Key) -> Query<'static> {
        sqlx::query(sql).bind(key.time_ms).bind(run_id).bind(key.vehicle).bind(key.seq).bind(key.sim_time).bind(key.wall_ms)
    }
    let query = match row {
        Row::Telemetry(key, telemetry) => {
            // A reading that is not a number binds NULL, which the column refuses: dead-lettered,
            // never stored as some other number.
            let query = sqlx::query(TELEMETRY_INSERT.as_str()).bind(key.time_ms).bind(run_id).bind(key.vehicle).bind(key.seq).bind(key.sim_ms()).bind(key.wall_ms);
            METRICS.iter().zip(&telemetry.metrics.values).fold(query, |query, (spec, value)| query.bind(spec.steps(*value)))
        }
        Row::Event(key, event, detail) => keyed(
            "INSERT INTO events (time, run_id, vehicle_id, seq, sim_time, wall_time, event, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            run_id,
            key,
        )
        .bind(event)
        .bind(detail),
        Row::Heartbeat(key, status, uptime_s) => keyed(
            "INSERT INTO heartbeats (time, run_id, vehicle_id, seq, sim_time, wall_time, status, uptime_s) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            run_id,
            key,
        )
        .bind(status)
        .bind(uptime_s),
        Row::Alert(key, update) => {
            let alert = &update.alert;
            keyed(
                "INSERT INTO alerts (time, run_id, vehicle_id, seq, sim_time, wall_time, alert_id, component, alert_type, severity, raised_at_s, evidence, recommendation,
                                               state, origin, occurrences, audit, record)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                run_id,
                key,
            )
            .bind(&alert.id)
            .bind(wire_name(&alert.key.component))
            .bind(&alert.key.alert_type)
            .bind(wire_name(&alert.severity))
            .bind(alert.created_at)
            .bind(serde_json::to_string(&alert.evidence).unwrap_or_default())
            .bind(serde_json::to_string(&alert.recommendation).unwrap_or_default())
            .bind(update.state())
            .bind(wire_name(&alert.origin))
            .bind(i64::from(alert.occurrences))
            .bind(serde_json::to_string(&update.audit).unwrap_or_default())
            .bind(serde_json::to_string(alert).unwrap_or_default())
        }
        Row::Command(key, id, action, detail, ttl_s) => keyed(
            "INSERT INTO commands (time, run_id, vehicle_id, seq, sim_time, wall_time, command_id, action, detail, ttl_s) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            run_id,
            key,
        )
        .bind(id)
        .bind(action)
        .bind(detail)
        .bind(ttl_s),
        Row::CommandAck(key, id, outcome, detail) => keyed(
            "INSERT INTO command_acks (time, run_id, vehicle_id, seq, sim_time, wall_time, command_id, outcome, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            run_id,
            key,
        )
        .bind(id)
        .bind(outcome)
        .bind(detail),
        Row::Presence(key, presence) => keyed(
            "INSERT INTO presence (time, run_id, vehicle_id, seq, sim_time, wall_time, online, last_seen_sim_time, silent_s) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            run_id,
            key,
        )
        .bind(presence.online)
        .bind(presence.last_seen_sim_time)
        .bind(presence.silent_s),
    };
    Ok(query.execute(&mut **tx).await?.rows_affected())
}

/// A failure's ground truth, kept up to date from each batch that reports it.
const FAILURE_UPSERT: &str = "INSERT INTO failures (run_id, vehicle_id, mode, component, onset_s, functional_failure_s, last_severity, last_seen_s)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?)
     ON CONFLICT (run_id, vehicle_id, mode, onset_s) DO UPDATE SET
        functional_failure_s = COALESCE(failures.functional_failure_s, excluded.functional_failure_s),
        last_severity = CASE WHEN excluded.last_seen_s >= failures.last_seen_s THEN excluded.last_severity ELSE failures.last_severity END,
        last_seen_s = MAX(failures.last_seen_s, excluded.last_seen_s)";

