//! Plain PostgreSQL: telemetry partitioned by UTC day (declarative partitioning), one table
//! `telemetry_YYYYMMDD` a day, made as the first row of that day arrives. Retention then drops
//! a day's table instead of deleting its rows, and a day compacted whole into segments is
//! truncated, so that its space comes back at once rather than after a vacuum.
//!
//! The table the migrations create is converted once, on the first open of a server without
//! TimescaleDB (a hypertable cannot be partitioned, nor a partitioned table made a hypertable).

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use sqlx::postgres::PgPool;
use sqlx::{AssertSqlSafe, Row as _};

use super::{DAY_MS, StoreError, floor_to};
use crate::model::{METRICS, WallTime};

/// The days whose partitions this process knows exist.
#[derive(Debug, Clone, Default)]
pub struct Days(Arc<Mutex<HashSet<i64>>>);

/// Whether telemetry is partitioned already.
pub async fn is_partitioned<'e>(executor: impl sqlx::PgExecutor<'e>) -> Result<bool, StoreError> {
    Ok(sqlx::query("SELECT relkind = 'p' FROM pg_class WHERE oid = 'telemetry'::regclass").fetch_one(executor).await?.try_get(0)?)
}

/// The day of `ms` as a partition's name.
fn name(day_ms: i64) -> String {
    format!("telemetry_{}", super::export::date(day_ms).replace('-', ""))
}

/// `CREATE TABLE IF NOT EXISTS` of the partition for the day starting at `day_ms`.
fn create(day_ms: i64) -> String {
    let bound = |ms: i64| format!("to_timestamp({}::BIGINT)", ms / 1000);
    format!("CREATE TABLE IF NOT EXISTS {} PARTITION OF telemetry FOR VALUES FROM ({}) TO ({})", name(day_ms), bound(day_ms), bound(day_ms + DAY_MS))
}

/// Converts the migrations' telemetry table into one partitioned by day, moving its rows, in
/// one transaction; does nothing where it is partitioned already. Two processes opening a new
/// database at once convert it once: the second waits on the lock, then finds it done.
pub async fn set_up(pool: &PgPool) -> Result<(), StoreError> {
    if is_partitioned(pool).await? {
        return Ok(());
    }
    let mut tx = pool.begin().await?;
    // "AEGS" as a number: the lock is this conversion's alone.
    sqlx::query("SELECT pg_advisory_xact_lock(1095058771)").execute(&mut *tx).await?;
    if is_partitioned(&mut *tx).await? {
        return Ok(());
    }
    let days: Vec<i64> = sqlx::query("SELECT DISTINCT (EXTRACT(EPOCH FROM date_trunc('day', time AT TIME ZONE 'UTC')) * 1000)::BIGINT FROM telemetry")
        .fetch_all(&mut *tx)
        .await?
        .iter()
        .map(|r| r.try_get::<i64, _>(0))
        .collect::<Result<_, _>>()?;
    let mut statements = vec![
        // The view reads the table it was made on: made again on the new one below.
        "DROP VIEW IF EXISTS telemetry_readings".to_owned(),
        "ALTER TABLE telemetry RENAME TO telemetry_unpartitioned".to_owned(),
        "ALTER INDEX telemetry_pkey RENAME TO telemetry_unpartitioned_pkey".to_owned(),
        "ALTER INDEX telemetry_vehicle_time RENAME TO telemetry_unpartitioned_vehicle_time".to_owned(),
        "ALTER INDEX telemetry_run_time RENAME TO telemetry_unpartitioned_run_time".to_owned(),
        "CREATE TABLE telemetry (LIKE telemetry_unpartitioned INCLUDING DEFAULTS) PARTITION BY RANGE (time)".to_owned(),
        "ALTER TABLE telemetry ADD PRIMARY KEY (time, run_id, vehicle_id, seq)".to_owned(),
        "CREATE INDEX telemetry_vehicle_time ON telemetry (run_id, vehicle_id, time)".to_owned(),
        "CREATE INDEX telemetry_run_time ON telemetry (run_id, time)".to_owned(),
    ];
    statements.extend(days.iter().map(|day| create(*day)));
    statements.push("INSERT INTO telemetry SELECT * FROM telemetry_unpartitioned".to_owned());
    statements.push("DROP TABLE telemetry_unpartitioned".to_owned());
    statements.push(readings_view());
    for statement in statements {
        sqlx::query(AssertSqlSafe(statement)).execute(&mut *tx).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// `telemetry_readings`: the rows in the metrics' units, as migration 0006 made it.
fn readings_view() -> String {
    let readings: Vec<String> = METRICS.iter().map(|m| format!("{0} * CAST({1:?} AS DOUBLE PRECISION) AS {0}", m.name, m.resolution)).collect();
    format!(
        "CREATE VIEW telemetry_readings AS SELECT time, run_id, vehicle_id, seq, sim_ms / CAST(1000 AS DOUBLE PRECISION) AS sim_time, to_timestamp(wall_ms / CAST(1000 AS DOUBLE PRECISION)) AS wall_time, {} FROM telemetry",
        readings.join(", ")
    )
}

impl Days {
    /// Makes the partitions of the days in `times_ms` that this process has not seen yet. A
    /// partition another writer made at the same moment counts as made.
    pub async fn ensure(&self, pool: &PgPool, times_ms: impl Iterator<Item = i64>) -> Result<(), StoreError> {
        let wanted: HashSet<i64> = times_ms.map(|t| floor_to(t, DAY_MS)).collect();
        let missing: Vec<i64> = {
            let known = self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            wanted.into_iter().filter(|day| !known.contains(day)).collect()
        };
        for day in missing {
            match sqlx::query(AssertSqlSafe(create(day))).execute(pool).await {
                Ok(_) => {}
                // duplicate_table, or the catalogue's unique index: made by another writer.
                Err(sqlx::Error::Database(error)) if matches!(error.code().as_deref(), Some("42P07" | "23505")) => {}
                Err(error) => return Err(error.into()),
            }
            self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).insert(day);
        }
        Ok(())
    }
}

/// Drops the partition of the day starting at `day_ms` when no run but `run_id` has rows in
/// it; returns whether it did (otherwise the caller deletes the run's own rows).
pub async fn drop_day(pool: &PgPool, run_id: i64, day_ms: i64, days: &Days) -> Result<bool, StoreError> {
    let partition = name(day_ms);
    let mut tx = pool.begin().await?;
    let exists: bool = sqlx::query("SELECT to_regclass($1) IS NOT NULL").bind(&partition).fetch_one(&mut *tx).await?.try_get(0)?;
    if !exists {
        return Ok(false);
    }
    // No row lands in it between the look and the drop.
    sqlx::query(AssertSqlSafe(format!("LOCK TABLE {partition} IN ACCESS EXCLUSIVE MODE"))).execute(&mut *tx).await?;
    let others = sqlx::query(AssertSqlSafe(format!("SELECT 1 FROM {partition} WHERE run_id <> $1 LIMIT 1"))).bind(run_id).fetch_optional(&mut *tx).await?;
    if others.is_some() {
        return Ok(false);
    }
    sqlx::query(AssertSqlSafe(format!("DROP TABLE {partition}"))).execute(&mut *tx).await?;
    tx.commit().await?;
    days.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).remove(&day_ms);
    Ok(true)
}

/// Truncates the partitions of days wholly before `before_ms` that hold no row any more (all
/// compacted): their pages come back now instead of at the next vacuum. Returns how many.
pub async fn reclaim(pool: &PgPool, before_ms: i64) -> Result<u64, StoreError> {
    let partitions: Vec<String> = sqlx::query(
        "SELECT c.relname::TEXT FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
         WHERE i.inhparent = 'telemetry'::regclass AND pg_relation_size(c.oid) > 0 ORDER BY c.relname",
    )
    .fetch_all(pool)
    .await?
    .iter()
    .map(|r| r.try_get::<String, _>(0))
    .collect::<Result<_, _>>()?;
    let mut truncated = 0;
    for partition in partitions {
        let day = partition.strip_prefix("telemetry_").and_then(|d| d.parse::<u32>().ok());
        let Some(day_ms) = day.and_then(day_start) else { continue };
        if day_ms + DAY_MS > before_ms {
            continue;
        }
        let mut tx = pool.begin().await?;
        sqlx::query(AssertSqlSafe(format!("LOCK TABLE {partition} IN ACCESS EXCLUSIVE MODE"))).execute(&mut *tx).await?;
        if sqlx::query(AssertSqlSafe(format!("SELECT 1 FROM {partition} LIMIT 1"))).fetch_optional(&mut *tx).await?.is_none() {
            sqlx::query(AssertSqlSafe(format!("TRUNCATE {partition}"))).execute(&mut *tx).await?;
            truncated += 1;
        }
        tx.commit().await?;
    }
    Ok(truncated)
}

/// The instant a `YYYYMMDD` day begins.
fn day_start(yyyymmdd: u32) -> Option<i64> {
    let text = format!("{:04}-{:02}-{:02}T00:00:00Z", yyyymmdd / 10_000, yyyymmdd / 100 % 100, yyyymmdd % 100);
    text.parse::<WallTime>().ok().map(|t| t.unix_ms() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_day_names_its_partition_and_back() {
        let day = "2026-01-05T00:00:00Z".parse::<WallTime>().unwrap().unix_ms() as i64;
        assert_eq!(name(day), "telemetry_20260105");
        assert_eq!(name(day + DAY_MS - 1), "telemetry_20260105");
        assert_eq!(day_start(20260105), Some(day));
        assert!(create(day).contains("FROM (to_timestamp(1767571200::BIGINT)) TO (to_timestamp(1767657600::BIGINT))"), "{}", create(day));
    }
}
