//! A store written before the readings took the coarsest step within their noise, and before
//! telemetry's clocks were integer milliseconds (migrations postgres/0006 and sqlite/0005),
//! reads afterwards as if written now: on SQLite, plain PostgreSQL and TimescaleDB, where its
//! compressed chunks are decompressed for the migration, then compressed again.

use std::path::Path;
use std::time::Duration;

use aegis::model::Metric;
use aegis::store::Store;
use sqlx::migrate::Migrator;

use crate::postgres_server::PostgresServer;
use crate::store::{block_on, count, open, sqlite_url};
use crate::tsdb_server::TsdbServer;

/// 2026-01-05T06:00:00Z, the run's start.
const START_MS: i64 = 1_767_592_800_000;

/// One frame of the old schema: 1.0 km/h in 0.2 km/h steps, 25 rpm in 5 rpm ones (half way
/// between two of today's 10 rpm steps), a gear, at simulated second `second`.
fn old_frame_sql(time: &str, wall: &str, second: i64) -> String {
    let columns: Vec<&str> = aegis::model::METRICS.iter().map(|m| m.name).collect();
    let values: Vec<&str> = Metric::ALL
        .iter()
        .map(|m| match m {
            Metric::SpeedKph | Metric::EngineRpm => "5",
            Metric::Gear => "3",
            _ => "0",
        })
        .collect();
    format!(
        "INSERT INTO telemetry (time, run_id, vehicle_id, seq, sim_time, wall_time, {}) VALUES ({time}, 1, 1, {second}, {}, {wall}, {})",
        columns.join(", "),
        // A sum of 0.05 s steps, a last bit off the whole second.
        (0..second * 20).map(|_| 0.05f64).sum::<f64>(),
        values.join(", ")
    )
}

fn old_run_sql(start: &str) -> [String; 2] {
    [
        format!("INSERT INTO runs (name, scenario, seed, fleet, start_time, created_at) VALUES ('old', 'old.toml', 1, 1, {start}, {start})"),
        "INSERT INTO vehicles (run_id, vehicle_id, model, home_depot) VALUES (1, 1, 'van', 'north')".to_owned(),
    ]
}

/// What the upgraded store reads back, whatever the engine.
fn reads_as_new(store: &Store) {
    let row = &block_on(store.fetch("SELECT sim_time, speed_kph, engine_rpm, gear FROM telemetry_readings WHERE seq = 7", vec![])).unwrap()[0];
    let numbers: Vec<f64> = row.iter().map(|cell| cell.as_f64().unwrap()).collect();
    assert_eq!(numbers, [7.0, 1.0, 30.0, 3.0], "sim_time, speed, rpm and gear of the frame at 7 s");
    assert_eq!(count(store, "SELECT speed_kph FROM telemetry WHERE seq = 7", vec![]), 2, "1.0 km/h is two 0.5 km/h steps");
    assert_eq!(count(store, "SELECT sim_ms FROM telemetry WHERE seq = 7", vec![]), 7000);
    assert_eq!(count(store, "SELECT wall_ms FROM telemetry WHERE seq = 7", vec![]), START_MS + 7_123);
    // The query service agrees.
    let latest = block_on(aegis::store::frames::latest(store, 1)).unwrap();
    assert_eq!(latest[&1].seq, 9);
    assert_eq!(aegis::store::frames::reading(&latest[&1], Metric::EngineRpm), 30.0);
    assert_eq!(count(store, "SELECT COUNT(*) FROM telemetry", vec![]), 10);
}

#[test]
fn an_sqlite_store_of_the_old_schema_is_rescaled_by_its_migration() {
    let dir = tempfile::tempdir().unwrap();
    let url = sqlite_url(&dir);
    block_on(async {
        let pool = sqlx::SqlitePool::connect(&format!("{url}?mode=rwc")).await.unwrap();
        Migrator::new(Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/sqlite"))).await.unwrap().run_to(4, &pool).await.unwrap();
        for sql in old_run_sql(&START_MS.to_string()) {
            sqlx::raw_sql(sqlx::AssertSqlSafe(sql)).execute(&pool).await.unwrap();
        }
        for second in 0..10 {
            let sql = old_frame_sql(&(START_MS + second * 1000).to_string(), &(START_MS + second * 1000 + 123).to_string(), second);
            sqlx::raw_sql(sqlx::AssertSqlSafe(sql)).execute(&pool).await.unwrap();
        }
        pool.close().await;
    });
    reads_as_new(&open(&url));
}

/// Writes the old schema and one old run of ten frames at `url` (without its query string),
/// having applied the migrations before 0006, and `then` on the same connection.
async fn old_postgres(url: &str, then: impl AsyncFnOnce(&sqlx::PgPool)) {
    let bare = url.split('?').next().unwrap();
    let pool = sqlx::postgres::PgPoolOptions::new().max_connections(1).connect(bare).await.unwrap();
    Migrator::new(Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/postgres"))).await.unwrap().run_to(5, &pool).await.unwrap();
    let at = |ms: i64| format!("to_timestamp({ms}::BIGINT / 1000.0)");
    for sql in old_run_sql(&at(START_MS)) {
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql)).execute(&pool).await.unwrap();
    }
    then(&pool).await;
    for second in 0..10 {
        let sql = old_frame_sql(&at(START_MS + second * 1000), &at(START_MS + second * 1000 + 123), second);
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql)).execute(&pool).await.unwrap();
    }
    pool.close().await;
}

#[test]
fn a_postgres_store_of_the_old_schema_is_rescaled_by_its_migration() {
    let server = PostgresServer::start();
    let url = server.database("old");
    block_on(old_postgres(&url, async |_| {}));
    let store = open(&url);
    reads_as_new(&store);
    assert_eq!(count(&store, "SELECT COUNT(*) FROM pg_inherits WHERE inhparent = 'telemetry'::regclass", vec![]), 1, "then partitioned by day");
}

#[test]
fn a_compressed_timescaledb_store_of_the_old_schema_is_rescaled_and_compressed_again() {
    let server = TsdbServer::start();
    let url = server.url();
    block_on(old_postgres(&url, async |pool| {
        // As the store made it then: a compressed hypertable with its continuous aggregates.
        aegis::store::timescale::set_up(pool, Duration::from_secs(3600)).await.unwrap();
    }));
    block_on(async {
        let pool = sqlx::postgres::PgPoolOptions::new().max_connections(1).connect(url.split('?').next().unwrap()).await.unwrap();
        // Each on its own: a procedure that refreshes cannot run in a transaction.
        for sql in ["SELECT compress_chunk(c) FROM show_chunks('telemetry') c", "CALL refresh_continuous_aggregate('telemetry_hourly', NULL, NULL)"] {
            sqlx::raw_sql(sql).execute(&pool).await.unwrap();
        }
        pool.close().await;
    });
    let store = open(&url);
    reads_as_new(&store);
    let compressed = "SELECT COUNT(*) FROM timescaledb_information.chunks WHERE hypertable_name = 'telemetry' AND is_compressed";
    assert_eq!(count(&store, compressed, vec![]), 1, "the chunk is compressed again");
    // The hourly aggregate's sum of speed steps is in today's steps: ten frames of two.
    assert_eq!(count(&store, "SELECT speed_steps::BIGINT FROM telemetry_hourly", vec![]), 20);
}
