//! `aegis bench store --store URL`: how fast history goes in and comes back out.
//!
//! - **Ingest**: the same synthetic 1 Hz frames of a large fleet written two ways into the
//!   same database, batch by batch in turn so that neither gets the emptier tables: through
//!   the writer ([`BatchWriter`]: rows from envelopes, one transaction per batch with the
//!   failure and rollup upkeep, COPY on PostgreSQL) and by the plainest fast path the engine
//!   has (one COPY of pre-formatted text on PostgreSQL; one prepared INSERT per row in one
//!   transaction on SQLite), the ceiling.
//! - **Queries**: thirty days of ten vehicles (26 million frames, kept between runs under a
//!   fixed run name so later runs skip the load; all but the last day compressed as they
//!   load), then the latest state, one hour of one vehicle, and the daily fleet aggregate from
//!   the rollups and from the frames themselves, each timed over repeated calls.
//! - **Compression**: the simulator's own telemetry of ten vehicles, raw and then compressed
//!   (the store's segments, or TimescaleDB's chunks), by the engine's own size figures: in a
//!   scratch database beside the one measured, or on TimescaleDB in chunks of a year no run
//!   uses, dropped after.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;

use crate::model::{Body, Envelope, Heartbeat, METRICS, Metric, Telemetry, TelemetryFrame, VehicleId, VehicleModel, VehicleStatus, WallTime};
use crate::store::query::{self, Period, RangeQuery};
use crate::store::writer::{BatchWriter, WriterSettings, WriterStatus};
use crate::store::{Batch, RunInfo, Store, StoreError};

/// What to measure.
#[derive(Debug, Clone)]
pub struct StoreBenchOptions {
    /// The database.
    pub url: String,
    /// Vehicles in the ingest fleet.
    pub vehicles: u32,
    /// Simulated seconds of the ingest fleet's telemetry.
    pub seconds: u32,
    /// Days of history for the query figures.
    pub history_days: u32,
    /// Vehicles of history for the query figures.
    pub history_vehicles: u32,
    /// Calls per query figure.
    pub repeats: u32,
    /// Simulated hours of the demo world's fleet for the compression figures.
    pub compression_hours: u32,
}

/// Figures of `aegis bench store`.
#[derive(Debug, Clone, Serialize)]
pub struct StoreBench {
    /// `sqlite`, `postgres` or `timescaledb`.
    pub backend: &'static str,
    /// Telemetry rows written each way.
    pub ingest_rows: u64,
    /// Vehicles of the ingest fleet.
    pub ingest_vehicles: u32,
    /// Rows per second through the writer.
    pub ingest_rows_per_second: f64,
    /// Rows per second by the engine's plainest fast path (COPY, or prepared INSERTs), on the
    /// same rows and database; `None` on a server that refuses COPY.
    pub ceiling_rows_per_second: Option<f64>,
    /// The writer's share of the ceiling, 0 to 1.
    pub share_of_ceiling: Option<f64>,
    /// Vehicles at 1 Hz the writer keeps up with: its rows per second.
    pub vehicles_at_1hz: f64,
    /// Telemetry rows of the query history.
    pub history_rows: u64,
    /// Whether the history was loaded by this run (false: an earlier run's was reused).
    pub history_loaded_now: bool,
    /// Latest state of every vehicle, 99th percentile.
    pub latest_query_p99_ms: f64,
    /// One hour of one vehicle, raw, four metrics (a dashboard panel: speed, engine load,
    /// coolant temperature, fuel level), 99th percentile.
    pub range_query_p99_ms: f64,
    /// The same, median.
    pub range_query_p50_ms: f64,
    /// The same hour with every metric, 99th percentile.
    pub range_query_all_metrics_p99_ms: f64,
    /// The whole history by day and model from the rollups (continuous aggregates on
    /// TimescaleDB), median of the calls.
    pub daily_aggregate_ms: f64,
    /// The same days summed from the frames (raw and compressed), median of five calls.
    pub daily_aggregate_from_frames_ms: f64,
    /// Calls per query figure.
    pub repeats: u32,
    /// Bytes on disk per vehicle-second of compacted telemetry, indexes included, by the
    /// database's own figures.
    pub bytes_per_vehicle_second: f64,
    /// The same rows raw, per vehicle-second.
    pub raw_bytes_per_vehicle_second: f64,
    /// Raw bytes over compacted bytes.
    pub compression_ratio: f64,
    /// Vehicle-seconds of the compression figures.
    pub compression_vehicle_seconds: u64,
}

/// One synthetic frame: smooth driving with noise, readings inside their ranges.
fn frame(rng: &mut SmallRng, vehicle: u32, t: u32, odometer: &mut f32) -> Telemetry {
    let mut metrics = TelemetryFrame::default();
    for (i, spec) in METRICS.iter().enumerate() {
        metrics.values[i] = spec.min + (spec.max - spec.min) * rng.random_range(0.3..0.5);
    }
    let phase = (f64::from(t) / 600.0 + f64::from(vehicle)).sin();
    let speed = (45.0 + 40.0 * phase).max(0.0) as f32;
    *odometer += speed / 3600.0;
    metrics.set(Metric::SpeedKph, speed);
    metrics.set(Metric::EnginePowerKw, speed * 1.8);
    metrics.set(Metric::EngineLoadPct, (20.0 + speed * 0.6).min(100.0));
    metrics.set(Metric::OdometerKm, *odometer);
    Telemetry { metrics, truth: Vec::new() }
}

fn run_info(name: &str, vehicles: u32) -> RunInfo {
    RunInfo {
        name: name.to_owned(),
        scenario: "bench".into(),
        seed: 1,
        fleet: vehicles,
        start: WallTime::from_unix_ms(1_767_592_800_000),
        vehicles: (1..=vehicles).map(|v| (VehicleId(v), [VehicleModel::Van, VehicleModel::Truck, VehicleModel::Bus][v as usize % 3], "North".into())).collect(),
    }
}

/// Measures `options.url`; progress goes to stderr.
pub fn bench_store(options: &StoreBenchOptions) -> Result<StoreBench, StoreError> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| StoreError::WriterGone(e.to_string()))?;
    runtime.block_on(measure(options))
}

async fn measure(options: &StoreBenchOptions) -> Result<StoreBench, StoreError> {
    let store = crate::store::open(&options.url).await?;
    let backend = match store.dialect() {
        crate::store::Dialect::Sqlite => "sqlite",
        crate::store::Dialect::Postgres if store.timescale().is_some() => "timescaledb",
        crate::store::Dialect::Postgres => "postgres",
    };
    let compressed = compression(&store, options).await?;
    let (ingest_rows, writer_s, ceiling_s) = ingest(&store, options).await?;
    let (history_rows, loaded, name) = history(&store, options).await?;
    let run = query::run(&store, Some(&name)).await?;

    let mut latest = Vec::new();
    let mut range = Vec::new();
    let mut range_all = Vec::new();
    let panel = vec![Metric::SpeedKph, Metric::EngineLoadPct, Metric::CoolantTempC, Metric::FuelLevelPct];
    let mut daily = Vec::new();
    let mut rng = SmallRng::seed_from_u64(7);
    for _ in 0..options.repeats {
        let started = Instant::now();
        let answer = query::latest(&store, &run, Metric::ALL).await?;
        latest.push(started.elapsed().as_secs_f64() * 1000.0);
        debug_assert_eq!(answer.rows.len(), options.history_vehicles as usize);

        let hour = rng.random_range(0..options.history_days * 24);
        let vehicle = VehicleId(rng.random_range(1..=options.history_vehicles));
        let one_hour = RangeQuery { vehicle, metrics: panel.clone(), from_s: f64::from(hour) * 3600.0, to_s: f64::from(hour + 1) * 3600.0, every_s: None, limit: 10_000, offset: 0 };
        let started = Instant::now();
        query::range(&store, &run, &one_hour).await?;
        range.push(started.elapsed().as_secs_f64() * 1000.0);
        // Another hour, so that neither finds the other's pages in the cache.
        let hour = rng.random_range(0..options.history_days * 24);
        let vehicle = VehicleId(rng.random_range(1..=options.history_vehicles));
        let every_metric = RangeQuery { vehicle, metrics: Metric::ALL.to_vec(), from_s: f64::from(hour) * 3600.0, to_s: f64::from(hour + 1) * 3600.0, ..one_hour };
        let started = Instant::now();
        query::range(&store, &run, &every_metric).await?;
        range_all.push(started.elapsed().as_secs_f64() * 1000.0);

        let started = Instant::now();
        query::fleet(&store, &run, Period::Day).await?;
        daily.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    let mut from_frames = Vec::new();
    for _ in 0..options.repeats.clamp(1, 5) {
        let started = Instant::now();
        query::fleet_from_frames(&store, &run, Period::Day).await?;
        from_frames.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    for times in [&mut latest, &mut range, &mut range_all, &mut daily, &mut from_frames] {
        times.sort_by(f64::total_cmp);
    }
    let ingest_rate = ingest_rows as f64 / writer_s;
    let ceiling_rate = ceiling_s.map(|s| ingest_rows as f64 / s);
    Ok(StoreBench {
        backend,
        ingest_rows,
        ingest_vehicles: options.vehicles,
        ingest_rows_per_second: ingest_rate,
        ceiling_rows_per_second: ceiling_rate,
        share_of_ceiling: ceiling_rate.map(|c| ingest_rate / c),
        vehicles_at_1hz: ingest_rate,
        history_rows,
        history_loaded_now: loaded,
        latest_query_p99_ms: super::quantile(&latest, 0.99),
        range_query_p99_ms: super::quantile(&range, 0.99),
        range_query_p50_ms: super::quantile(&range, 0.5),
        range_query_all_metrics_p99_ms: super::quantile(&range_all, 0.99),
        daily_aggregate_ms: super::quantile(&daily, 0.5),
        daily_aggregate_from_frames_ms: super::quantile(&from_frames, 0.5),
        repeats: options.repeats,
        bytes_per_vehicle_second: compressed.compacted_bytes as f64 / compressed.vehicle_seconds as f64,
        raw_bytes_per_vehicle_second: compressed.raw_bytes as f64 / compressed.vehicle_seconds as f64,
        compression_ratio: compressed.raw_bytes as f64 / compressed.compacted_bytes as f64,
        compression_vehicle_seconds: compressed.vehicle_seconds,
    })
}

/// Bytes on disk of the same telemetry raw and compacted.
struct Compression {
    raw_bytes: u64,
    compacted_bytes: u64,
    vehicle_seconds: u64,
}

/// The simulator's own telemetry (the demo world, ten vehicles, `compression_hours`), since
/// noise and motion are what compression meets: written raw into a scratch database beside
/// `store` (a temporary SQLite file, or a new PostgreSQL database on the same server, dropped
/// after), measured by the engine's figures, compacted whole, measured again.
async fn compression(store: &Store, options: &StoreBenchOptions) -> Result<Compression, StoreError> {
    let dir = std::env::temp_dir().join(format!("aegis-bench-compression-{:08x}", rand::random::<u32>()));
    std::fs::create_dir_all(&dir).map_err(|e| StoreError::Spool { path: dir.display().to_string(), source: e })?;
    let measured = compress_in(store, options, &dir).await;
    let _ = std::fs::remove_dir_all(&dir);
    measured
}

async fn compress_in(store: &Store, options: &StoreBenchOptions, dir: &std::path::Path) -> Result<Compression, StoreError> {
    let jsonl = dir.join("telemetry.jsonl");
    let mut run = crate::app::RunOptions::from_scenario(crate::scenario::Scenario::builtin_demo());
    run.vehicles = 10;
    run.duration = Duration::from_secs(u64::from(options.compression_hours) * 3600);
    run.telemetry_out = Some(jsonl.clone());
    run.progress = false;
    eprintln!("[aegis] bench store: simulating {} h of 10 vehicles for the compression figures", options.compression_hours);
    crate::app::run_headless(&run).map_err(|e| StoreError::WriterGone(format!("the simulation for the compression figures: {e}")))?;
    let text = std::fs::read_to_string(&jsonl).map_err(|e| StoreError::Spool { path: jsonl.display().to_string(), source: e })?;
    let envelopes: Vec<Envelope> = text.lines().filter_map(|line| Envelope::from_json(line).ok()).collect();

    if let Some(pool) = store.timescale() {
        return compress_in_chunks(store, pool, &envelopes, options, dir).await;
    }
    let (scratch, drop_after) = match store {
        Store::Sqlite(_) => (format!("sqlite:{}", dir.join("compression.db").display()), None),
        Store::Postgres(pg) => {
            let name = format!("aegis_bench_compression_{:08x}", rand::random::<u32>());
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).execute(pg.pool()).await?;
            (with_database(&options.url, &name), Some(name))
        }
    };
    let measured = async {
        let scratch = crate::store::open(&scratch).await?;
        let empty = used_bytes(&scratch, "telemetry").await?;
        let info = run_info("bench-compression", 10);
        let target = write_raw(&scratch, &info, &envelopes, dir).await?;
        let raw = used_bytes(&scratch, "telemetry").await?.saturating_sub(empty);
        let before_segments = used_bytes(&scratch, "telemetry_segments").await?;
        crate::store::lifecycle::compact(&scratch, target.run_id, crate::store::frames::ALL_TIME.1, &Default::default()).await?;
        let compacted = match scratch {
            // The file's pages in use, less the empty schema's: the raw rows' pages are free now.
            Store::Sqlite(_) => used_bytes(&scratch, "").await?.saturating_sub(empty),
            Store::Postgres(_) => used_bytes(&scratch, "telemetry_segments").await?.saturating_sub(before_segments),
        };
        Ok::<_, StoreError>(Compression { raw_bytes: raw, compacted_bytes: compacted.max(1), vehicle_seconds: envelopes.len() as u64 })
    }
    .await;
    if let (Store::Postgres(pg), Some(name)) = (store, drop_after) {
        sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))).execute(pg.pool()).await?;
    }
    measured
}

/// `envelopes` written raw through the writer as run `info` of `store`.
async fn write_raw(store: &Store, info: &RunInfo, envelopes: &[Envelope], dir: &std::path::Path) -> Result<crate::store::RunTarget, StoreError> {
    let target = store.register_run(info).await?;
    let settings = WriterSettings { lifecycle: None, ..WriterSettings::default() };
    let spool = dir.join("spool.jsonl");
    let mut writer = BatchWriter::new(store.clone(), target.clone(), "bench", spool, &settings, Arc::new(WriterStatus::default()));
    for chunk in envelopes.chunks(settings.batch_rows) {
        let mut batch = Batch::default();
        for envelope in chunk {
            batch.push(info.start, envelope.clone());
        }
        writer.write(batch).await;
    }
    writer.catch_up_fully(None).await;
    Ok(target)
}

/// On TimescaleDB: the telemetry as a run of its own in 2031, whose chunks no other run shares,
/// compressed natively; the engine's before and after figures of those chunks (heap, TOAST and
/// indexes); the chunks dropped after.
async fn compress_in_chunks(store: &Store, pool: &sqlx::PgPool, envelopes: &[Envelope], options: &StoreBenchOptions, dir: &std::path::Path) -> Result<Compression, StoreError> {
    let start = WallTime::from_unix_ms(1_925_424_000_000); // 2031-01-06T00:00:00Z
    let info = RunInfo { start, ..run_info(&format!("bench-compression-{:08x}", rand::random::<u32>()), 10) };
    let from = start.unix_ms() as i64;
    let until = from + i64::from(options.compression_hours) * 3_600_000;
    let measured = async {
        write_raw(store, &info, envelopes, dir).await?;
        crate::store::timescale::compress(pool, from, until).await?;
        let row = sqlx::query(
            "SELECT COALESCE(SUM(s.before_compression_total_bytes), 0)::BIGINT, COALESCE(SUM(s.after_compression_total_bytes), 0)::BIGINT
             FROM chunk_compression_stats('telemetry') s
             JOIN timescaledb_information.chunks c ON c.chunk_schema = s.chunk_schema AND c.chunk_name = s.chunk_name
             WHERE c.hypertable_name = 'telemetry' AND c.is_compressed AND c.range_start >= to_timestamp($1::BIGINT / 1000.0)",
        )
        .bind(from)
        .fetch_one(pool)
        .await?;
        let (before, after): (i64, i64) = (sqlx::Row::try_get(&row, 0)?, sqlx::Row::try_get(&row, 1)?);
        // Only the compressed chunks' frames: the last instant may open a chunk of its own.
        let compressed: Vec<(i64, i64)> = sqlx::query_as(
            "SELECT (EXTRACT(EPOCH FROM range_start) * 1000)::BIGINT, (EXTRACT(EPOCH FROM range_end) * 1000)::BIGINT FROM timescaledb_information.chunks
             WHERE hypertable_name = 'telemetry' AND is_compressed AND range_start >= to_timestamp($1::BIGINT / 1000.0)",
        )
        .bind(from)
        .fetch_all(pool)
        .await?;
        let inside = |e: &&Envelope| {
            let at = crate::store::instant(start, e.sim_time).unix_ms() as i64;
            compressed.iter().any(|(a, b)| at >= *a && at < *b)
        };
        let vehicle_seconds = envelopes.iter().filter(|e| matches!(e.body, Body::Telemetry(_))).filter(inside).count() as u64;
        Ok::<_, StoreError>(Compression { raw_bytes: before.max(0) as u64, compacted_bytes: after.max(1) as u64, vehicle_seconds: vehicle_seconds.max(1) })
    }
    .await;
    sqlx::query("SELECT drop_chunks('telemetry', newer_than => to_timestamp($1::BIGINT / 1000.0))").bind(from).fetch_all(pool).await?;
    store.delete_run(&info.name).await?;
    measured
}

/// Bytes the engine reports in use: on SQLite the whole file's pages less the free ones
/// (`table` is ignored: one table's pages have no figure of their own there); on PostgreSQL
/// `pg_total_relation_size` of `table` (heap, TOAST and indexes).
async fn used_bytes(store: &Store, table: &str) -> Result<u64, StoreError> {
    let sql = match store {
        Store::Sqlite(_) => "SELECT (page_count - freelist_count) * page_size FROM pragma_page_count(), pragma_freelist_count(), pragma_page_size()".to_owned(),
        // A partitioned table's size is its partitions'.
        Store::Postgres(_) => format!(
            "SELECT (pg_total_relation_size('{table}') + COALESCE((SELECT SUM(pg_total_relation_size(inhrelid)) FROM pg_inherits WHERE inhparent = '{table}'::regclass), 0))::BIGINT"
        ),
    };
    Ok(store.fetch(&sql, vec![]).await?.first().and_then(|r| r[0].as_i64()).unwrap_or(0).max(0) as u64)
}

/// `url` naming database `name` on the same server.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = url.split_once('?').map_or((url, None), |(b, q)| (b, Some(q)));
    let host_end = base.find("://").map_or(0, |i| i + 3);
    let root = match base[host_end..].find('/') {
        Some(slash) => &base[..host_end + slash],
        None => base,
    };
    match query {
        Some(query) => format!("{root}/{name}?{query}"),
        None => format!("{root}/{name}"),
    }
}

/// Writes the ingest fleet's frames through the writer and by the ceiling path, a batch of
/// each in turn; returns the rows each wrote and the seconds each took (no ceiling on a server
/// that refuses COPY).
async fn ingest(store: &Store, options: &StoreBenchOptions) -> Result<(u64, f64, Option<f64>), StoreError> {
    let tag = format!("{:08x}", rand::random::<u32>());
    let writer_run = run_info(&format!("bench-ingest-writer-{tag}"), options.vehicles);
    let ceiling_run = run_info(&format!("bench-ingest-ceiling-{tag}"), options.vehicles);
    let writer_target = store.register_run(&writer_run).await?;
    let ceiling_target = store.register_run(&ceiling_run).await?;
    let settings = WriterSettings::default();
    let spool = std::env::temp_dir().join(format!("aegis-bench-spool-{tag}.jsonl"));
    let mut writer = BatchWriter::new(store.clone(), writer_target, "bench", spool, &settings, Arc::new(WriterStatus::default()));
    let mut rng = SmallRng::seed_from_u64(42);
    let mut odometers = vec![0.0f32; options.vehicles as usize];
    let (mut writer_time, mut ceiling_time) = (Duration::ZERO, Some(Duration::ZERO));
    let mut envelopes = Vec::with_capacity(settings.batch_rows);
    let total = u64::from(options.vehicles) * u64::from(options.seconds);
    let mut rows = 0u64;
    let mut last_report = Instant::now();
    for t in 1..=options.seconds {
        for v in 1..=options.vehicles {
            let telemetry = frame(&mut rng, v, t, &mut odometers[v as usize - 1]);
            envelopes.push(Envelope::new(VehicleId(v), u64::from(t), f64::from(t), Body::Telemetry(Box::new(telemetry))));
            if envelopes.len() == settings.batch_rows || (t == options.seconds && v == options.vehicles) {
                rows += envelopes.len() as u64;
                let ceiling_input = ceiling::prepare(store, ceiling_target.run_id, &ceiling_run, &envelopes);
                // The ceiling writes past the store: the day's partition must be there for it.
                store.ensure_partitions(envelopes.iter().map(|e| crate::store::instant(ceiling_run.start, e.sim_time).unix_ms() as i64)).await?;
                // Each goes first every other batch: neither always meets the other's
                // checkpoint or freshly grown index.
                let writer_first = (rows / settings.batch_rows as u64).is_multiple_of(2);
                if !writer_first {
                    ceiling_time = ceiling::timed(store, ceiling_input.clone(), ceiling_time).await?;
                }
                let started = Instant::now();
                let mut batch = Batch::default();
                for envelope in envelopes.drain(..) {
                    batch.push(writer_run.start, envelope);
                }
                writer.write(batch).await;
                writer_time += started.elapsed();
                if writer_first {
                    ceiling_time = ceiling::timed(store, ceiling_input, ceiling_time).await?;
                }
                if last_report.elapsed() >= Duration::from_secs(2) {
                    last_report = Instant::now();
                    eprintln!("[aegis] bench store: ingest {rows} of {total} rows");
                }
            }
        }
    }
    if !writer.is_caught_up() || writer.status().figures().stored != rows {
        return Err(StoreError::WriterGone(format!("the writer stored {} of {rows} rows: {:?}", writer.status().figures().stored, writer.status().last_error())));
    }
    // The bench's own rows go again: they are not history anyone asked for.
    store.delete_run(&writer_run.name).await?;
    store.delete_run(&ceiling_run.name).await?;
    Ok((rows, writer_time.as_secs_f64(), ceiling_time.map(|t| t.as_secs_f64())))
}

/// The query history: loaded through the writer unless a complete one is there. Returns its
/// telemetry rows, whether it was loaded now, and the run's name.
async fn history(store: &Store, options: &StoreBenchOptions) -> Result<(u64, bool, String), StoreError> {
    let name = format!("bench-history-{}d-{}v", options.history_days, options.history_vehicles);
    let seconds = options.history_days * 86_400;
    let expected = u64::from(seconds) * u64::from(options.history_vehicles);
    if let Some(found) = store.runs().await?.into_iter().find(|r| r.run.name == name) {
        if found.telemetry_rows as u64 == expected {
            return Ok((expected, false, name));
        }
        store.delete_run(&name).await?;
    }
    let run = run_info(&name, options.history_vehicles);
    let target = store.register_run(&run).await?;
    let run_id = target.run_id;
    let settings = WriterSettings::default();
    let spool = std::env::temp_dir().join(format!("aegis-bench-history-spool-{}.jsonl", std::process::id()));
    let mut writer = BatchWriter::new(store.clone(), target, "bench", spool, &settings, Arc::new(WriterStatus::default()));
    let mut rng = SmallRng::seed_from_u64(99);
    let mut odometers = vec![0.0f32; options.history_vehicles as usize];
    let mut batch = Batch::default();
    let mut last_report = Instant::now();
    for t in 1..=seconds {
        for v in 1..=options.history_vehicles {
            let telemetry = frame(&mut rng, v, t, &mut odometers[v as usize - 1]);
            batch.push(run.start, Envelope::new(VehicleId(v), u64::from(t) * 2, f64::from(t), Body::Telemetry(Box::new(telemetry))));
            if (t + v) % 5 == 0 {
                let status = if (t / 3600 + v) % 24 == 0 { VehicleStatus::InMaintenance } else { VehicleStatus::EnRoute };
                batch.push(run.start, Envelope::new(VehicleId(v), u64::from(t) * 2 + 1, f64::from(t), Body::Heartbeat(Heartbeat { status, uptime_s: f64::from(t) })));
            }
        }
        if batch.len() >= settings.batch_rows || t == seconds {
            writer.write(std::mem::take(&mut batch)).await;
        }
        if last_report.elapsed() >= Duration::from_secs(5) {
            last_report = Instant::now();
            eprintln!("[aegis] bench store: loading history, day {:.1} of {}", f64::from(t) / 86_400.0, options.history_days);
        }
    }
    writer.catch_up_fully(None).await;
    // Raw and compacted alike: all but the last day is in segments by now.
    let stored = store.runs().await?.into_iter().find(|r| r.run.run_id == run_id).map_or(0, |r| r.telemetry_rows);
    Ok((stored.max(0) as u64, true, name))
}

/// The ceiling: the plainest fast way each engine takes the same rows.
mod ceiling {
    use std::fmt::Write as _;

    use crate::model::{Body, Envelope};
    use crate::store::{RunInfo, Store, StoreError};

    /// One row's values to bind: time, run, vehicle, seq, sim and wall time (milliseconds),
    /// readings in steps.
    pub type Values = (i64, i64, i64, i64, i64, [Option<i64>; crate::model::METRIC_COUNT]);

    /// The rows, ready for the engine: COPY text, or values to bind.
    #[derive(Clone)]
    pub enum Prepared {
        /// PostgreSQL: one COPY's text.
        Copy(String),
        /// SQLite: (time, run, vehicle, seq, sim and wall time, readings in steps) per row.
        Rows(i64, Vec<Values>),
    }

    /// Formats outside the timed part: the ceiling is the engine's work alone.
    pub fn prepare(store: &Store, run_id: i64, run: &RunInfo, envelopes: &[Envelope]) -> Prepared {
        let frames = envelopes.iter().filter_map(|e| match &e.body {
            Body::Telemetry(t) => {
                let steps = std::array::from_fn(|i| crate::model::METRICS[i].steps(t.metrics.values[i]));
                Some((crate::store::instant(run.start, e.sim_time).unix_ms() as i64, i64::from(e.vehicle_id.0), e.seq as i64, crate::store::sim_ms(e.sim_time), e.wall_time.unix_ms() as i64, steps))
            }
            _ => None,
        });
        match store {
            Store::Postgres(_) => {
                let mut text = String::new();
                for (time, vehicle, seq, sim_ms, wall_ms, values) in frames {
                    let _ = write!(text, "{}\t{run_id}\t{vehicle}\t{seq}\t{sim_ms}\t{wall_ms}", crate::model::WallTime::from_unix_ms(time as u64));
                    for steps in values {
                        let _ = write!(text, "\t{}", steps.unwrap_or_default());
                    }
                    text.push('\n');
                }
                Prepared::Copy(text)
            }
            Store::Sqlite(_) => Prepared::Rows(run_id, frames.collect()),
        }
    }

    /// Writes `prepared` and adds its time to `so_far`; `None` from then on once the server
    /// refuses COPY (feature_not_supported: the TimescaleDB engine for tests).
    pub async fn timed(store: &Store, prepared: Prepared, so_far: Option<std::time::Duration>) -> Result<Option<std::time::Duration>, StoreError> {
        let Some(so_far) = so_far else { return Ok(None) };
        let started = std::time::Instant::now();
        match write(store, prepared).await {
            Ok(()) => Ok(Some(so_far + started.elapsed())),
            Err(StoreError::Database(sqlx::Error::Database(error))) if error.code().as_deref() == Some("0A000") => Ok(None),
            Err(error) => Err(error),
        }
    }

    /// Writes prepared rows.
    pub async fn write(store: &Store, prepared: Prepared) -> Result<(), StoreError> {
        match (store, prepared) {
            (Store::Postgres(pg), Prepared::Copy(text)) => {
                let columns: Vec<&str> = crate::model::METRICS.iter().map(|m| m.name).collect();
                let statement = format!("COPY telemetry (time, run_id, vehicle_id, seq, sim_ms, wall_ms, {}) FROM STDIN", columns.join(", "));
                let mut connection = pg.pool().acquire().await?;
                let mut copy = connection.copy_in_raw(&statement).await?;
                copy.send(text.as_bytes()).await?;
                copy.finish().await?;
                Ok(())
            }
            (Store::Sqlite(lite), Prepared::Rows(run_id, rows)) => {
                let columns: Vec<&str> = crate::model::METRICS.iter().map(|m| m.name).collect();
                let marks = vec!["?"; 6 + columns.len()].join(", ");
                let sql = format!("INSERT INTO telemetry (time, run_id, vehicle_id, seq, sim_ms, wall_ms, {}) VALUES ({marks})", columns.join(", "));
                let mut tx = lite.pool().begin().await?;
                for (time, vehicle, seq, sim_ms, wall_ms, values) in rows {
                    let query = sqlx::query(sqlx::AssertSqlSafe(sql.as_str())).bind(time).bind(run_id).bind(vehicle).bind(seq).bind(sim_ms).bind(wall_ms);
                    values.iter().fold(query, |q, v| q.bind(*v)).execute(&mut *tx).await?;
                }
                tx.commit().await?;
                Ok(())
            }
            _ => Err(StoreError::query("the ceiling's rows were prepared for the other engine")),
        }
    }
}
