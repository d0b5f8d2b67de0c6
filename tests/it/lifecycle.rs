//! The life of telemetry after it is written, on SQLite and a throwaway PostgreSQL cluster:
//! the watermark compacts whole vehicle-hours once they are old enough in simulated time, the
//! segments take under 40 bytes a vehicle-second, every query over a range spanning compacted
//! and raw rows answers exactly as it does on the same run left raw, and nothing spooled is
//! compacted.

use std::sync::Arc;
use std::time::Duration;

use aegis::model::{Envelope, VehicleId, VehicleModel};
use aegis::store::lifecycle::LifecycleSettings;
use aegis::store::query::{self, Period, RangeQuery, Tsbs};
use aegis::store::writer::{BatchWriter, WriterSettings, WriterStatus};
use aegis::store::{Param, RunInfo, Store};

use crate::postgres_server::PostgresServer;
use crate::store::{batch, block_on, count, open, sqlite_url, stored_run};

fn small_world_run(name: &str) -> RunInfo {
    let vehicles = (1..=3).map(|v| (VehicleId(v), VehicleModel::Van, "A".into())).collect();
    RunInfo { name: name.into(), scenario: "small".into(), seed: 1, fleet: 3, start: aegis::scenario::DEFAULT_START.parse().unwrap(), vehicles }
}

/// Writes `sent` into `url` as run `name`, a minute of frames to a batch; returns the store
/// and the writer's counters.
fn write(url: &str, name: &str, sent: &[Envelope], lifecycle: Option<LifecycleSettings>) -> (Store, aegis::store::writer::WriterFigures) {
    let store = open(url);
    let run = small_world_run(name);
    let target = block_on(store.register_run(&run)).unwrap();
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
    let settings = LifecycleSettings { compact_after: Duration::from_secs(3600), segment: Duration::from_secs(3600) };
    let (compacted, figures) = write(url_compacted, "compacted", &sent, Some(settings));
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
        lifecycle: Some(LifecycleSettings { compact_after: Duration::from_secs(60), segment: Duration::from_secs(60) }),
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
