//! The life of telemetry after it is written, on SQLite, a throwaway PostgreSQL cluster and
//! the TimescaleDB engine for tests: the watermark compresses whole vehicle-hours (or chunks)
//! once they are old enough in simulated time, into under 40 bytes a vehicle-second; every
//! query over a range spanning compressed and raw rows answers as it does on the same run left
//! raw; retention exports whole days to Parquet (read back by pyarrow) before it drops them,
//! and keeps the rollups; nothing spooled is compacted.

use std::sync::Arc;
use std::time::Duration;

use aegis::model::{Envelope, VehicleId, VehicleModel};
use aegis::store::lifecycle::LifecycleSettings;
use aegis::store::query::{self, Period, RangeQuery, Tsbs};
use aegis::store::writer::{BatchWriter, WriterSettings, WriterStatus};
use aegis::store::{Param, RunInfo, Store};

use crate::postgres_server::PostgresServer;
use crate::store::{batch, block_on, count, open, sqlite_url, stored_run};
use crate::tsdb_server::TsdbServer;

fn small_world_run(name: &str) -> RunInfo {
    let vehicles = (1..=3).map(|v| (VehicleId(v), VehicleModel::Van, "A".into())).collect();
    RunInfo { name: name.into(), scenario: "small".into(), seed: 1, fleet: 3, start: aegis::scenario::DEFAULT_START.parse().unwrap(), vehicles }
}

/// Compaction an hour behind the watermark, in hour segments; no retention.
fn compact_after_an_hour() -> LifecycleSettings {
    LifecycleSettings { compact_after: Duration::from_secs(3600), segment: Duration::from_secs(3600), retain_for: None, ..LifecycleSettings::default() }
}

/// Writes `sent` into `url` as run `name`, a minute of frames to a batch; returns the store
/// and the writer's counters.
fn write(url: &str, name: &str, sent: &[Envelope], lifecycle: Option<LifecycleSettings>) -> (Store, aegis::store::writer::WriterFigures) {
    write_run(url, small_world_run(name), sent, lifecycle, |_, _| {})
}

/// [`write`] for `run`, calling `before` once the run is registered.
fn write_run(url: &str, run: RunInfo, sent: &[Envelope], lifecycle: Option<LifecycleSettings>, before: impl FnOnce(&Store, i64)) -> (Store, aegis::store::writer::WriterFigures) {
    let store = open(url);
    let target = block_on(store.register_run(&run)).unwrap();
    before(&store, target.run_id);
    let dir = tempfile::tempdir().unwrap();
    let settings = WriterSettings { lifecycle, ..WriterSettings::default() };
    let status = Arc::new(WriterStatus::default());
    let mut writer = BatchWriter::new(store.clone(), target, "test", dir.path().join("spool.jsonl"), &settings, status.clone());
    for minute in sent.chunks(180) {
        block_on(writer.write(batch(run.start, minute)));
    }
    (store, status.figures())
}

/// Every answer of the query service, over ranges that cross from compacted into raw rows.
fn answers(store: &Store, name: &str) -> Vec<query::Answer> {
    let run = block_on(query::run(store, Some(name))).unwrap();
    let mut answers = vec![block_on(query::latest(store, &run, &[aegis::model::Metric::SpeedKph, aegis::model::Metric::PositionXM])).unwrap()];
    let metrics = vec![aegis::model::Metric::SpeedKph, aegis::model::Metric::CoolantTempC, aegis::model::Metric::OdometerKm];
    for vehicle in 1..=3 {
        // 40 minutes to 2 h 50: compacted, then raw. Pages of 1,000 cross the boundary.
        for offset in [0, 1000, 4000, 7000] {
            let page = RangeQuery { vehicle: VehicleId(vehicle), metrics: metrics.clone(), from_s: 2400.0, to_s: 10_200.0, every_s: None, limit: 1000, offset };
            answers.push(block_on(query::range(store, &run, &page)).unwrap());
        }
        let buckets = RangeQuery { vehicle: VehicleId(vehicle), metrics: metrics.clone(), from_s: 100.0, to_s: 10_800.0, every_s: Some(700.0), limit: 100, offset: 0 };
        answers.push(block_on(query::range(store, &run, &buckets)).unwrap());
    }
    for tsbs in [Tsbs::LastLoc, Tsbs::LowFuel, Tsbs::HighLoad, Tsbs::StationaryTrucks, Tsbs::DailyActivity, Tsbs::AvgLoad] {
        answers.push(block_on(query::tsbs(store, &run, tsbs)).unwrap());
    }
    answers.push(block_on(query::fleet(store, &run, Period::Hour)).unwrap());
    answers
}

fn compacted_hours_answer_like_raw_ones(url_raw: &str, url_compacted: &str) {
    let dir = tempfile::tempdir().unwrap();
    let (_, sent) = stored_run(&sqlite_url(&dir), dir.path(), Duration::from_secs(3 * 3600));
    assert_eq!(sent.len(), 3 * 3 * 3600);
    let (raw, _) = write(url_raw, "raw", &sent, None);
    // Compact what is an hour old: at the end of the third hour, the first two are segments.
    let (compacted, figures) = write(url_compacted, "compacted", &sent, Some(compact_after_an_hour()));
    let old = sent.iter().filter(|e| e.sim_time < 7200.0).count();
    assert_eq!((figures.stored, figures.compacted, figures.segments), (sent.len() as u64, old as u64, 2 * 3), "{figures:?}");
    let run_id = block_on(query::run(&compacted, Some("compacted"))).unwrap().run_id;
    assert_eq!(count(&compacted, "SELECT COUNT(*) FROM telemetry WHERE run_id = ?", vec![Param::Int(run_id)]), (sent.len() - old) as i64, "the last hour stays raw");
    assert_eq!(block_on(compacted.runs()).unwrap().iter().find(|r| r.run.name == "compacted").unwrap().telemetry_rows, sent.len() as i64);

    // Under 40 bytes a vehicle-second in the segments themselves.
    let bytes = count(&compacted, "SELECT CAST(SUM(LENGTH(data)) AS BIGINT) FROM telemetry_segments WHERE run_id = ?", vec![Param::Int(run_id)]);
    let per_second = bytes as f64 / old as f64;
    assert!(per_second < 40.0, "{per_second:.1} bytes a vehicle-second");

    let info = block_on(aegis::store::lifecycle::info(&compacted)).unwrap();
    assert_eq!((info.segments, info.compacted_frames, info.raw_frames), (6, old as i64, (sent.len() - old) as i64), "{info:?}");

    assert_rollups_equal_the_frames(&compacted, "compacted");
    let expected = answers(&raw, "raw");
    let got = answers(&compacted, "compacted");
    assert_eq!(expected.len(), got.len());
    for (i, (expected, got)) in expected.iter().zip(&got).enumerate() {
        assert!(!expected.rows.is_empty() || i >= 16, "answer {i} is empty on the raw run too: the test asks the wrong question");
        assert_eq!(got, expected, "answer {i} differs once compacted");
    }
}

#[test]
fn sqlite_compacted_hours_answer_like_raw_ones() {
    let dir = tempfile::tempdir().unwrap();
    compacted_hours_answer_like_raw_ones(&format!("sqlite:{}", dir.path().join("raw.db").display()), &format!("sqlite:{}", dir.path().join("compacted.db").display()));
}

#[test]
fn postgres_compacted_hours_answer_like_raw_ones() {
    let server = PostgresServer::start();
    compacted_hours_answer_like_raw_ones(&server.database("raw"), &server.database("compacted"));
}

#[test]
fn nothing_is_compacted_while_rows_wait_in_the_spool() {
    let server = PostgresServer::start();
    let url = server.database("history");
    let store = open(&url);
    let run = small_world_run("spooled");
    let target = block_on(store.register_run(&run)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let settings = WriterSettings {
        lifecycle: Some(LifecycleSettings { compact_after: Duration::from_secs(60), segment: Duration::from_secs(60), retain_for: None, ..LifecycleSettings::default() }),
        max_backoff: Duration::from_millis(50),
        ..WriterSettings::default()
    };
    let status = Arc::new(WriterStatus::default());
    let mut writer = BatchWriter::new(store.clone(), target, "test", dir.path().join("spool.jsonl"), &settings, status.clone());
    let frames = |from: u64, to: u64| -> Vec<Envelope> {
        (from..to).map(|s| Envelope::new(VehicleId(1), s, s as f64, aegis::model::Body::Telemetry(Box::new(aegis::model::Telemetry { metrics: aegis::model::TelemetryFrame::default(), truth: Vec::new() })))).collect()
    };
    block_on(writer.write(batch(run.start, &frames(0, 120))));
    server.stop();
    // Two minutes more arrive while the database is down: spooled, so the watermark stays.
    block_on(writer.write(batch(run.start, &frames(120, 240))));
    assert!(status.figures().spooled > 0);
    server.restart();
    block_on(writer.catch_up_fully(None));
    assert_eq!(status.figures().compacted, 0, "the spool held rows: no compaction");
    // The next batch after the replay moves the watermark: now the old minutes compact.
    block_on(writer.write(batch(run.start, &frames(240, 300))));
    let figures = status.figures();
    assert!(figures.compacted >= 180, "{figures:?}");
    let store = open(&url);
    let total = count(&store, "SELECT COUNT(*) FROM telemetry", vec![]) + count(&store, "SELECT CAST(SUM(frames) AS BIGINT) FROM telemetry_segments", vec![]);
    assert_eq!(total, 300, "every frame once, raw or compacted");
}

/// The rollups (the writer's, or TimescaleDB's continuous aggregates) against the same sums
/// taken from the frames, raw and compressed: vehicle-hours, distance and energy by day.
fn assert_rollups_equal_the_frames(store: &Store, name: &str) {
    let run = block_on(query::run(store, Some(name))).unwrap();
    for period in [Period::Hour, Period::Day] {
        let rolled = block_on(query::fleet(store, &run, period)).unwrap();
        let direct = block_on(query::fleet_from_frames(store, &run, period)).unwrap();
        assert_eq!(rolled.rows.len(), direct.rows.len(), "{period:?}: {rolled:?} vs {direct:?}");
        for (r, d) in rolled.rows.iter().zip(&direct.rows) {
            assert_eq!((&r[0], &r[1]), (&d[0], &d[1]), "{period:?}");
            for (got, expected) in [(&r[3], &d[2]), (&r[4], &d[3]), (&r[5], &d[4])] {
                let (got, expected) = (got.as_f64().unwrap(), expected.as_f64().unwrap());
                assert!((got - expected).abs() <= 1e-6 * expected.abs().max(1.0), "{period:?}: {r:?} vs {d:?}");
            }
        }
    }
}

/// Cells equal, numbers within a billionth of each other (sums added in another order).
fn assert_close(got: &query::Answer, expected: &query::Answer, what: &str) {
    assert_eq!(got.columns, expected.columns, "{what}");
    assert_eq!(got.rows.len(), expected.rows.len(), "{what}: {got:?} vs {expected:?}");
    for (got, expected) in got.rows.iter().zip(&expected.rows) {
        for (g, e) in got.iter().zip(expected) {
            match (g.as_f64(), e.as_f64()) {
                (Some(g), Some(e)) => assert!((g - e).abs() <= 1e-9 * e.abs().max(1.0), "{what}: {got:?} vs {expected:?}"),
                _ => assert_eq!(g, e, "{what}"),
            }
        }
    }
}

#[test]
fn timescaledb_compresses_chunks_natively_and_answers_like_raw_rows() {
    let dir = tempfile::tempdir().unwrap();
    let (_, sent) = stored_run(&sqlite_url(&dir), dir.path(), Duration::from_secs(3 * 3600));
    let (raw, _) = write(&format!("sqlite:{}", dir.path().join("raw.db").display()), "raw", &sent, None);
    let tsdb = TsdbServer::start();
    let (store, figures) = write(&tsdb.url(), "compressed", &sent, Some(compact_after_an_hour()));
    assert_eq!(figures.stored, sent.len() as u64);

    // A hypertable, compressed by (run, vehicle) in time order, and both continuous aggregates.
    let one = |sql: &str| block_on(store.fetch(sql, vec![])).unwrap();
    assert_eq!(one("SELECT hypertable_name, compression_enabled FROM timescaledb_information.hypertables")[0], [serde_json::json!("telemetry"), serde_json::json!(true)]);
    let segment_by = one("SELECT attname FROM timescaledb_information.compression_settings WHERE hypertable_name = 'telemetry' AND segmentby_column_index IS NOT NULL ORDER BY segmentby_column_index");
    assert_eq!(segment_by, [[serde_json::json!("run_id")], [serde_json::json!("vehicle_id")]]);
    let views = one("SELECT view_name FROM timescaledb_information.continuous_aggregates ORDER BY view_name");
    assert_eq!(views, [[serde_json::json!("telemetry_daily")], [serde_json::json!("telemetry_hourly")]]);
    // The last frame is 09:00:00 (3 h in): an hour behind it, the chunks that end by 08:00 are
    // compressed, and the two after them (08:00 and 09:00) are not.
    let compressed = one("SELECT chunk_name FROM timescaledb_information.chunks WHERE hypertable_name = 'telemetry' AND is_compressed");
    assert_eq!((compressed.len() as u64, figures.segments), (2, 2), "{compressed:?}");

    // On disk, by the engine's own figures: these hour-long chunks hold 3 vehicles' 10,800
    // frames, too few to carry a compressed chunk's own pages (heap, TOAST, their indexes)
    // lightly (45.9 bytes a vehicle-second measured); the next test's fuller chunk keeps under
    // 40.
    let stats = one("SELECT SUM(before_compression_total_bytes)::BIGINT, SUM(after_compression_total_bytes)::BIGINT FROM chunk_compression_stats('telemetry') WHERE compression_status = 'Compressed'");
    let (before, after) = (stats[0][0].as_i64().unwrap() as f64, stats[0][1].as_i64().unwrap() as f64);
    let per_second = after / (2.0 * 3.0 * 3600.0);
    assert!(per_second < 50.0 && before / after > 5.0, "{per_second:.1} bytes a vehicle-second ({:.1}:1)", before / after);

    let info = block_on(aegis::store::lifecycle::info(&store)).unwrap();
    assert!(info.lifecycle.starts_with("TimescaleDB"), "{info:?}");
    assert_eq!((info.chunks, info.compressed_chunks), (Some(4), Some(2)), "{info:?}");

    assert_rollups_equal_the_frames(&store, "compressed");
    // Every answer as on the raw run; the fleet's sums (continuous aggregates here) to a billionth.
    let expected = answers(&raw, "raw");
    let got = answers(&store, "compressed");
    let (fleet_got, fleet_expected) = (got.last().unwrap(), expected.last().unwrap());
    assert_close(fleet_got, fleet_expected, "the hourly fleet aggregate");
    for (i, (expected, got)) in expected.iter().zip(&got).enumerate().take(expected.len() - 1) {
        assert_eq!(got, expected, "answer {i} differs on TimescaleDB");
    }
    let daily = |store: &Store, name: &str| block_on(query::fleet(store, &block_on(query::run(store, Some(name))).unwrap(), Period::Day)).unwrap();
    assert_close(&daily(&store, "compressed"), &daily(&raw, "raw"), "the daily fleet aggregate");
}

/// Under 40 bytes a vehicle-second on disk, by the engine's own figures (heap, TOAST and
/// indexes of the compressed chunk, and their free-space maps), in a chunk of three hours of
/// nine vehicles: the run written three times over. A compressed chunk's pages of its own
/// weigh about 100 kB whatever it holds, 3 bytes a vehicle-second on 3 vehicles' three hours
/// (docs/STORAGE.md).
#[test]
fn timescaledb_keeps_a_compressed_chunk_under_40_bytes_a_vehicle_second() {
    let dir = tempfile::tempdir().unwrap();
    let (_, sent) = stored_run(&sqlite_url(&dir), dir.path(), Duration::from_secs(3 * 3600));
    let tsdb = TsdbServer::start();
    let url = tsdb.url_with_chunks("3h");
    for name in ["first", "second", "third", "fourth"] {
        let (_, figures) = write(&url, name, &sent, None);
        assert_eq!(figures.stored, sent.len() as u64);
    }
    let store = open(&url);
    let Store::Postgres(pg) = &store else { unreachable!("a postgres:// URL") };
    // 06:00 to 09:00, aligned to chunks of 3 hours: every frame but the last instant's.
    let start = small_world_run("").start.unix_ms() as i64;
    let end = start + 3 * 3_600_000;
    assert_eq!(block_on(aegis::store::timescale::compress(pg.pool(), start, end)).unwrap(), 1, "one chunk compressed");
    let frames = count(&store, "SELECT COUNT(*) FROM telemetry WHERE time < to_timestamp(?::BIGINT / 1000.0)", vec![Param::Int(end)]);
    assert_eq!(frames, 4 * (sent.len() as i64 - 3));
    let stats = block_on(store.fetch("SELECT before_compression_total_bytes, after_compression_total_bytes FROM chunk_compression_stats('telemetry') WHERE compression_status = 'Compressed'", vec![])).unwrap();
    let (before, after) = (stats[0][0].as_i64().unwrap() as f64, stats[0][1].as_i64().unwrap() as f64);
    let per_second = after / frames as f64;
    assert!(per_second < 40.0 && before / after > 5.0, "{per_second:.1} bytes a vehicle-second ({:.1}:1)", before / after);
}

/// A run that starts at 23:00 UTC, so that two hours of it cross midnight.
fn late_run(name: &str) -> RunInfo {
    RunInfo { start: "2026-01-05T23:00:00Z".parse().unwrap(), ..small_world_run(name) }
}

/// pyarrow's reading of a Parquet file: rows, column types, the file's metadata, and vehicle
/// 2's first row.
pub(crate) fn read_with_pyarrow(path: &std::path::Path) -> serde_json::Value {
    let script = r#"
import json, sys
import pyarrow.compute as pc
import pyarrow.parquet as pq
t = pq.read_table(sys.argv[1])
v2 = t.filter(pc.equal(t["vehicle"], 2))
first = {name: v2[name][0].as_py() for name in ["vehicle", "model", "seq", "sim_time_s", "speed_kph", "coolant_temp_c", "odometer_km", "failure_mode", "failure_component", "failing", "seconds_to_failure"]}
first["time_ms"] = v2["time"].cast("int64")[0].as_py()
print(json.dumps({
    "rows": t.num_rows,
    "types": {f.name: str(f.type) for f in t.schema},
    "metadata": {k.decode(): v.decode() for k, v in (t.schema.metadata or {}).items()},
    "labelled": t.num_rows - t["failure_mode"].null_count,
    "first_of_v2": first,
}))
"#;
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(path)
        .output()
        .unwrap_or_else(|e| panic!("python3, for pyarrow (.ci/setup installs it): {e}"));
    assert!(out.status.success(), "pyarrow could not read {}: {} (.ci/setup installs pyarrow)", path.display(), String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn retention_exports_whole_days_then_drops_them(url: &str) {
    let dir = tempfile::tempdir().unwrap();
    let (_, sent) = stored_run(&sqlite_url(&dir), dir.path(), Duration::from_secs(2 * 3600));
    let archive = dir.path().join("archive");
    // Keep half an hour: at the end (00:59:59), the day before midnight is old enough to go.
    let settings = LifecycleSettings { compact_after: Duration::from_secs(1800), segment: Duration::from_secs(3600), retain_for: Some(Duration::from_secs(1800)), archive: archive.clone() };
    let run = late_run("retired");
    // A failure after the exported window, known beforehand: vehicle 2's rows say how far off.
    let (store, figures) = write_run(url, run.clone(), &sent, Some(settings), |store, run_id| {
        block_on(store.execute_all(vec![aegis::store::Statement::new(
            "INSERT INTO failures (run_id, vehicle_id, mode, component, onset_s, functional_failure_s, last_severity, last_seen_s) VALUES (?, 2, 'coolant_leak', 'cooling', 9000.0, 10000.0, 1.0, 10000.0)",
            vec![Param::Int(run_id)],
        )]))
        .unwrap();
    });
    let before_midnight: Vec<&Envelope> = sent.iter().filter(|e| e.sim_time < 3600.0).collect();
    assert_eq!((figures.stored, figures.exported, figures.retired), (sent.len() as u64, 1, before_midnight.len() as u64), "{figures:?}");

    // The database keeps the day after midnight, and every rollup.
    let run_id = block_on(query::run(&store, Some("retired"))).unwrap().run_id;
    let id = || vec![Param::Int(run_id)];
    let kept = count(&store, "SELECT COUNT(*) FROM telemetry WHERE run_id = ?", id()) + count(&store, "SELECT CAST(COALESCE(SUM(frames), 0) AS BIGINT) FROM telemetry_segments WHERE run_id = ?", id());
    assert_eq!(kept, (sent.len() - before_midnight.len()) as i64);
    assert_eq!(count(&store, "SELECT CAST(SUM(frames) AS BIGINT) FROM fleet_hourly WHERE run_id = ?", id()), sent.len() as i64, "the rollup keeps the dropped hour");
    if store.dialect() == aegis::store::Dialect::Postgres && store.timescale().is_none() {
        let partitions = block_on(store.fetch("SELECT c.relname::TEXT FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'telemetry'::regclass ORDER BY 1", vec![])).unwrap();
        assert_eq!(partitions, [[serde_json::json!("telemetry_20260106")]], "by day, and the retired day's partition dropped");
    }
    if store.timescale().is_some() {
        assert_eq!(count(&store, "SELECT CAST(SUM(frames) AS BIGINT) FROM telemetry_hourly WHERE run_id = ?", id()), sent.len() as i64, "the continuous aggregate keeps it too");
        let dropped = count(&store, "SELECT COUNT(*) FROM timescaledb_information.chunks WHERE hypertable_name = 'telemetry' AND range_end <= '2026-01-06T00:00:00Z'", vec![]);
        assert_eq!(dropped, 0, "the day's chunks were dropped");
    }

    // The file, read by pyarrow: every row of the day, typed, labelled.
    let path = aegis::store::export::day_path(&archive, "retired", "2026-01-05T00:00:00Z".parse::<aegis::model::WallTime>().unwrap().unix_ms() as i64);
    assert!(path.ends_with("retired/2026-01-05.parquet"), "{}", path.display());
    let read = read_with_pyarrow(&path);
    assert_eq!(read["rows"], before_midnight.len());
    for (column, kind) in [("time", "timestamp[ms, tz=UTC]"), ("vehicle", "int32"), ("model", "string"), ("seq", "int64"), ("speed_kph", "double"), ("failure_mode", "string"), ("failing", "bool"), ("seconds_to_failure", "double")] {
        assert_eq!(read["types"][column], kind, "{column}: {}", read["types"]);
    }
    assert_eq!(read["types"].as_object().unwrap().len(), 6 + aegis::model::METRICS.len() + 4);
    assert_eq!(read["metadata"]["aegis.run"], "retired");
    assert_eq!(read["labelled"], before_midnight.iter().filter(|e| e.vehicle_id == VehicleId(2)).count(), "vehicle 2's rows, and only those, know the failure ahead");
    let first = before_midnight.iter().find(|e| e.vehicle_id == VehicleId(2)).unwrap();
    let aegis::model::Body::Telemetry(telemetry) = &first.body else { panic!("telemetry") };
    let row = &read["first_of_v2"];
    assert_eq!((row["vehicle"].as_i64(), row["model"].as_str(), row["seq"].as_u64()), (Some(2), Some("van"), Some(first.seq)));
    assert_eq!(row["time_ms"].as_i64().unwrap(), aegis::store::instant(run.start, first.sim_time).unix_ms() as i64);
    for metric in [aegis::model::Metric::SpeedKph, aegis::model::Metric::CoolantTempC, aegis::model::Metric::OdometerKm] {
        let stored = row[metric.name()].as_f64().unwrap();
        let reported = f64::from(telemetry.metrics.get(metric));
        assert!((stored - reported).abs() <= metric.spec().resolution * 1e-3 + reported.abs() * 1e-6, "{}: {stored} vs {reported}", metric.name());
    }
    assert_eq!((row["failure_mode"].as_str(), row["failure_component"].as_str(), row["failing"].as_bool()), (Some("coolant_leak"), Some("cooling"), Some(false)));
    assert!((row["seconds_to_failure"].as_f64().unwrap() - (10_000.0 - first.sim_time)).abs() < 1e-6, "{row}");

    // What is gone is gone from the queries too; what stays still answers.
    let stored = block_on(query::run(&store, Some("retired"))).unwrap();
    let page = RangeQuery { vehicle: VehicleId(1), metrics: vec![aegis::model::Metric::SpeedKph], from_s: 0.0, to_s: 7200.0, every_s: None, limit: 10, offset: 0 };
    let answer = block_on(query::range(&store, &stored, &page)).unwrap();
    assert_eq!(answer.rows[0][1].as_f64(), Some(3600.0), "the first frame kept is midnight's: {:?}", answer.rows[0]);
}

#[test]
fn sqlite_retention_exports_whole_days_then_drops_them() {
    let dir = tempfile::tempdir().unwrap();
    retention_exports_whole_days_then_drops_them(&sqlite_url(&dir));
}

#[test]
fn postgres_retention_exports_whole_days_then_drops_them() {
    let server = PostgresServer::start();
    retention_exports_whole_days_then_drops_them(&server.database("history"));
}

#[test]
fn timescaledb_retention_exports_whole_days_then_drops_chunks() {
    let server = TsdbServer::start();
    retention_exports_whole_days_then_drops_them(&server.url());
}
