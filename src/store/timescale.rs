//! The TimescaleDB path: on a PostgreSQL server that has the `timescaledb` extension,
//! telemetry is a hypertable compressed natively, and the hourly and daily rollups are
//! continuous aggregates. Without the extension the same URL keeps working on plain
//! PostgreSQL, with the store's own compaction ([`super::lifecycle`]).
//!
//! TimescaleDB's policies judge a chunk's age by `now()`, but a simulated fleet at
//! `--speed max` lives days in minutes: the writer calls [`compress`] and [`refresh`] itself
//! at its watermark of simulated time, and [`drop_before`] once retention has exported what
//! goes. The compression and refresh policies are installed as well, for live fleets whose
//! simulated time is the wall clock; no retention policy is, since a database job cannot
//! write the Parquet export that must come first.

use std::time::Duration;

use sqlx::postgres::PgPool;
use sqlx::{AssertSqlSafe, Row as _};

use super::{DAY_MS, StoreError, floor_to};

/// Each chunk holds six hours of the fleet. Compression works a whole chunk at a time, so a
/// row is compressed between 24 and 30 hours after it was written: a day's chunks would leave
/// up to 48 hours raw, an hour's would make 720 chunks a month for the planner to consider.
/// Six hours of 1,000 vehicles is 21.6 M rows, about 2.8 GB raw: within the quarter of a
/// server's memory that TimescaleDB advises for the chunks being written.
/// A URL may choose another with `chunk_interval=` when the hypertable is created.
pub const CHUNK_INTERVAL: Duration = Duration::from_secs(6 * 3600);

/// Whether the server offers TimescaleDB: its version, when it does.
pub async fn offered(pool: &PgPool) -> Result<Option<String>, StoreError> {
    let row = sqlx::query("SELECT COALESCE(installed_version, default_version) FROM pg_available_extensions WHERE name = 'timescaledb'").fetch_optional(pool).await?;
    Ok(row.map(|r| r.try_get::<String, _>(0)).transpose()?)
}

/// Whether telemetry is a hypertable already (the extension installed in this database).
pub async fn is_hypertable(pool: &PgPool) -> Result<bool, StoreError> {
    let installed = sqlx::query("SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'").fetch_optional(pool).await?.is_some();
    if !installed {
        return Ok(false);
    }
    Ok(sqlx::query("SELECT 1 FROM timescaledb_information.hypertables WHERE hypertable_name = 'telemetry'").fetch_optional(pool).await?.is_some())
}

/// Makes telemetry a compressed hypertable with continuous aggregates; applying it again
/// changes nothing. Rows already there move into chunks.
pub async fn set_up(pool: &PgPool, chunk_interval: Duration) -> Result<(), StoreError> {
    run(pool, "CREATE EXTENSION IF NOT EXISTS timescaledb").await?;
    let seconds = chunk_interval.as_secs();
    run(pool, &format!("SELECT create_hypertable('telemetry', by_range('time', INTERVAL '{seconds} seconds'), if_not_exists => TRUE, migrate_data => TRUE)")).await?;
    let compressed: bool = sqlx::query("SELECT compression_enabled FROM timescaledb_information.hypertables WHERE hypertable_name = 'telemetry'").fetch_one(pool).await?.try_get(0)?;
    if !compressed {
        // One vehicle's rows together, in time order: neighbouring readings differ little.
        run(pool, "ALTER TABLE telemetry SET (timescaledb.compress, timescaledb.compress_segmentby = 'run_id, vehicle_id', timescaledb.compress_orderby = 'time, seq')").await?;
    }
    // Sums of steps (docs/TELEMETRY.md): the fleet query scales them to units. Real-time
    // (`materialized_only = false`), so hours not yet refreshed are read from the rows.
    let moving = moving_steps();
    run(
        pool,
        &format!(
            "CREATE MATERIALIZED VIEW IF NOT EXISTS telemetry_hourly WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
             SELECT run_id, vehicle_id, time_bucket(INTERVAL '1 hour', time) AS hour, COUNT(*) AS frames,
                    SUM(GREATEST(speed_kph, 0)) AS speed_steps, SUM(GREATEST(engine_power_kw, 0)) AS power_steps,
                    SUM(CASE WHEN speed_kph > {moving} THEN 1 ELSE 0 END) AS moving_frames, SUM(engine_load_pct) AS load_steps
             FROM telemetry GROUP BY run_id, vehicle_id, time_bucket(INTERVAL '1 hour', time) WITH NO DATA"
        ),
    )
    .await?;
    run(
        pool,
        "CREATE MATERIALIZED VIEW IF NOT EXISTS telemetry_daily WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
         SELECT run_id, vehicle_id, time_bucket(INTERVAL '1 day', hour) AS day, SUM(frames) AS frames, SUM(speed_steps) AS speed_steps,
                SUM(power_steps) AS power_steps, SUM(moving_frames) AS moving_frames, SUM(load_steps) AS load_steps
         FROM telemetry_hourly GROUP BY run_id, vehicle_id, time_bucket(INTERVAL '1 day', hour) WITH NO DATA",
    )
    .await?;
    // For live fleets (see the module's note); a simulated run's writer acts before them.
    run(pool, "SELECT add_compression_policy('telemetry', compress_after => INTERVAL '24 hours', if_not_exists => TRUE)").await?;
    run(pool, "SELECT add_continuous_aggregate_policy('telemetry_hourly', start_offset => INTERVAL '3 days', end_offset => INTERVAL '1 hour', schedule_interval => INTERVAL '1 hour', if_not_exists => TRUE)").await?;
    run(pool, "SELECT add_continuous_aggregate_policy('telemetry_daily', start_offset => INTERVAL '3 days', end_offset => INTERVAL '1 day', schedule_interval => INTERVAL '1 hour', if_not_exists => TRUE)").await?;
    Ok(())
}

/// The telemetry hypertable's chunk interval, as it was created.
pub async fn chunk_interval(pool: &PgPool) -> Result<Option<Duration>, StoreError> {
    let row = sqlx::query(
        "SELECT (EXTRACT(EPOCH FROM time_interval))::BIGINT FROM timescaledb_information.dimensions WHERE hypertable_name = 'telemetry' AND column_name = 'time'",
    )
    .fetch_optional(pool)
    .await?;
    Ok(row.map(|r| r.try_get::<i64, _>(0)).transpose()?.map(|s| Duration::from_secs(s.max(0) as u64)))
}

/// Speed above 1 km/h, in steps of the speed's resolution: what counts as moving, as in the
/// writer's own rollup.
fn moving_steps() -> i64 {
    let speed = crate::model::Metric::SpeedKph.spec();
    (1.0 / speed.resolution).floor() as i64
}

/// The migration that changes telemetry's column types (migrations/postgres/0006), which a
/// hypertable refuses while compression is enabled on it.
const RETYPING_MIGRATION: i64 = 6;

/// Readies a compressed hypertable written before [`RETYPING_MIGRATION`] for it: decompresses
/// its chunks and turns compression off. Returns the chunks that were compressed, for
/// [`after_migrations`], or `None` where there is nothing to do (a new database, plain
/// PostgreSQL, one migrated already).
pub async fn before_migrations(pool: &PgPool) -> Result<Option<Vec<String>>, StoreError> {
    if !is_hypertable(pool).await? {
        return Ok(None);
    }
    let applied = sqlx::query("SELECT 1 FROM _sqlx_migrations WHERE version = $1 AND success").bind(RETYPING_MIGRATION).fetch_optional(pool).await?.is_some();
    if applied {
        return Ok(None);
    }
    let compressed: Vec<String> = sqlx::query_scalar(
        "SELECT format('%I.%I', chunk_schema, chunk_name) FROM timescaledb_information.chunks WHERE hypertable_name = 'telemetry' AND is_compressed ORDER BY range_start",
    )
    .fetch_all(pool)
    .await?;
    for chunk in &compressed {
        sqlx::query("SELECT decompress_chunk($1::regclass, if_compressed => TRUE)").bind(chunk).fetch_all(pool).await?;
    }
    run(pool, "SELECT remove_compression_policy('telemetry', if_exists => TRUE)").await?;
    run(pool, "ALTER TABLE telemetry SET (timescaledb.compress = FALSE)").await?;
    Ok(Some(compressed))
}

/// After the migrations and [`set_up`] (which turns compression on again): the continuous
/// aggregates made again from the rescaled rows, and the chunks that were compressed before
/// compressed again.
pub async fn after_migrations(pool: &PgPool, compressed: &[String]) -> Result<(), StoreError> {
    run(pool, "CALL refresh_continuous_aggregate('telemetry_hourly', NULL, NULL)").await?;
    run(pool, "CALL refresh_continuous_aggregate('telemetry_daily', NULL, NULL)").await?;
    for chunk in compressed {
        sqlx::query("SELECT compress_chunk($1::regclass, if_not_compressed => TRUE)").bind(chunk).fetch_all(pool).await?;
    }
    Ok(())
}

/// Compresses every chunk that starts at `from_ms` or later, ends by `before_ms` and is not
/// compressed yet; returns how many.
pub async fn compress(pool: &PgPool, from_ms: i64, before_ms: i64) -> Result<u64, StoreError> {
    let rows = sqlx::query(
        "SELECT compress_chunk(format('%I.%I', chunk_schema, chunk_name)::regclass, if_not_compressed => TRUE)
         FROM timescaledb_information.chunks
         WHERE hypertable_name = 'telemetry' AND NOT is_compressed
           AND range_start >= to_timestamp($1::BIGINT / 1000.0) AND range_end <= to_timestamp($2::BIGINT / 1000.0)",
    )
    .bind(from_ms)
    .bind(before_ms)
    .fetch_all(pool)
    .await?;
    Ok(rows.len() as u64)
}

/// Materialises the hourly aggregate over `[from_ms, to_ms)`, and the daily one over the whole
/// days in it (a refresh must cover whole buckets; the days still open are read through the
/// hourly aggregate, as both are real-time). A procedure that cannot run inside a
/// transaction, so it is called on its own.
pub async fn refresh(pool: &PgPool, from_ms: i64, to_ms: i64) -> Result<(), StoreError> {
    // Numbers computed here, never input.
    let window = |from: i64, to: i64| format!("to_timestamp({from}::BIGINT / 1000.0), to_timestamp({to}::BIGINT / 1000.0)");
    if to_ms > from_ms {
        run(pool, &format!("CALL refresh_continuous_aggregate('telemetry_hourly', {})", window(from_ms, to_ms))).await?;
    }
    let (first_day, end_day) = (floor_to(from_ms, DAY_MS), floor_to(to_ms, DAY_MS));
    if end_day > first_day {
        run(pool, &format!("CALL refresh_continuous_aggregate('telemetry_daily', {})", window(first_day, end_day))).await?;
    }
    Ok(())
}

/// Drops the telemetry chunks that end by `before_ms`, when no run but `run_id` has rows
/// there, and returns whether it did; otherwise the caller deletes the run's own rows.
pub async fn drop_before(pool: &PgPool, run_id: i64, before_ms: i64) -> Result<bool, StoreError> {
    let chunks_end: Option<i64> = sqlx::query(
        "SELECT (EXTRACT(EPOCH FROM MAX(range_end)) * 1000)::BIGINT FROM timescaledb_information.chunks
         WHERE hypertable_name = 'telemetry' AND range_end <= to_timestamp($1::BIGINT / 1000.0)",
    )
    .bind(before_ms)
    .fetch_one(pool)
    .await?
    .try_get(0)?;
    let Some(chunks_end) = chunks_end else { return Ok(false) };
    let others = sqlx::query("SELECT 1 FROM telemetry WHERE run_id <> $2 AND time < to_timestamp($1::BIGINT / 1000.0) LIMIT 1")
        .bind(chunks_end)
        .bind(run_id)
        .fetch_optional(pool)
        .await?;
    if others.is_some() {
        return Ok(false);
    }
    sqlx::query("SELECT drop_chunks('telemetry', older_than => to_timestamp($1::BIGINT / 1000.0))").bind(before_ms).fetch_all(pool).await?;
    Ok(true)
}

async fn run(pool: &PgPool, sql: &str) -> Result<(), StoreError> {
    sqlx::raw_sql(AssertSqlSafe(sql.to_owned())).execute(pool).await?;
    Ok(())
}
