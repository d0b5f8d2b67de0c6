//! Fleet history in SQLite: every message of a run arrives, runs stay apart, redelivery adds
//! nothing, and queries agree with the run's own JSON Lines.

use std::collections::BTreeMap;
use std::time::Duration;

use aegis::app::{RunOptions, run_headless};
use aegis::model::{Body, Envelope, Metric, VehicleId};
use aegis::store::query::{self, RangeQuery};
use aegis::store::{Batch, RunInfo, SqliteStore, StoreError};
use sqlx::Row as _;

use crate::common::{SMALL_WORLD, scenario};

/// Runs `future` on this test thread's runtime: one per thread, since a pool made on a runtime
/// lives only as long as it (and an in-memory database with its one connection).
fn block_on<T>(future: impl std::future::Future<Output = T>) -> T {
    thread_local! {
        static RUNTIME: tokio::runtime::Runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    }
    RUNTIME.with(|runtime| runtime.block_on(future))
}

/// Runs the small world for `duration` into the store at `url`, with its telemetry also
/// written as JSON Lines; returns the run's name and the telemetry envelopes.
fn stored_run(url: &str, dir: &std::path::Path, duration: Duration) -> (String, Vec<Envelope>) {
    let mut options = RunOptions::from_scenario(scenario(SMALL_WORLD));
    options.duration = duration;
    options.store = Some(url.to_owned());
    let jsonl = dir.join(format!("telemetry-{}.jsonl", rand::random::<u32>()));
    options.telemetry_out = Some(jsonl.clone());
    let summary = run_headless(&options).unwrap();
    let store = summary.store.expect("a run with --store reports its store");
    assert_eq!(store.figures.stored, store.figures.received, "every message taken from the bus is stored");
    let text = std::fs::read_to_string(jsonl).unwrap();
    (store.run, text.lines().map(|line| Envelope::from_json(line).unwrap()).collect())
}

#[test]
fn a_runs_telemetry_all_arrives_and_queries_agree_with_it() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", dir.path().join("history.db").display());
    let (name, sent) = stored_run(&url, dir.path(), Duration::from_secs(180));
    let store = block_on(aegis::store::open(&url)).unwrap();

    // Count and content: (vehicle, seq) -> speed, coolant, as sent and as stored.
    let expected: BTreeMap<(i64, i64), (f32, f32)> = sent
        .iter()
        .map(|e| {
            let Body::Telemetry(t) = &e.body else { panic!("telemetry only") };
            ((i64::from(e.vehicle_id.0), e.seq as i64), (t.metrics.get(Metric::SpeedKph), t.metrics.get(Metric::CoolantTempC)))
        })
        .collect();
    let stored: BTreeMap<(i64, i64), (f32, f32)> = block_on(async {
        sqlx::query("SELECT vehicle_id, seq, speed_kph, coolant_temp_c FROM telemetry").fetch_all(store.pool()).await.unwrap()
    })
    .iter()
    .map(|r| ((r.get(0), r.get(1)), (r.get::<f64, _>(2) as f32, r.get::<f64, _>(3) as f32)))
    .collect();
    assert_eq!(stored.len(), 3 * 180, "one frame per vehicle per second");
    assert_eq!(stored, expected);

    // Latest state: each vehicle's last frame.
    let run = block_on(query::run(&store, Some(&name))).unwrap();
    let latest = block_on(query::latest(&store, &run, &[Metric::SpeedKph])).unwrap();
    assert_eq!(latest.rows.len(), 3);
    for row in &latest.rows {
        let vehicle: VehicleId = row[0].as_str().unwrap().parse().unwrap();
        let last = sent.iter().filter(|e| e.vehicle_id == vehicle).max_by(|a, b| a.sim_time.total_cmp(&b.sim_time)).unwrap();
        let Body::Telemetry(t) = &last.body else { unreachable!() };
        assert_eq!(row[1].as_f64().unwrap(), last.sim_time);
        assert_eq!(row[3].as_f64().unwrap() as f32, t.metrics.get(Metric::SpeedKph));
    }

    // One-minute buckets of V0002's speed: min, mean and max of the frames in each minute.
    let range = RangeQuery { vehicle: VehicleId(2), metrics: vec![Metric::SpeedKph], from_s: 0.0, to_s: 180.0, every_s: Some(60.0), limit: 100, offset: 0 };
    let buckets = block_on(query::range(&store, &run, &range)).unwrap();
    assert_eq!(buckets.columns[3..], ["speed_kph_min", "speed_kph_avg", "speed_kph_max"]);
    assert_eq!(buckets.rows.len(), 3);
    for (minute, row) in buckets.rows.iter().enumerate() {
        let speeds: Vec<f64> = sent
            .iter()
            .filter(|e| e.vehicle_id == VehicleId(2) && (e.sim_time / 60.0).floor() as usize == minute)
            .map(|e| match &e.body {
                Body::Telemetry(t) => f64::from(t.metrics.get(Metric::SpeedKph)),
                _ => unreachable!(),
            })
            .collect();
        let mean = speeds.iter().sum::<f64>() / speeds.len() as f64;
        assert!((row[4].as_f64().unwrap() - mean).abs() < 1e-3 * mean.abs().max(1.0), "minute {minute}: {row:?} vs mean {mean}");
        assert_eq!(row[3].as_f64().unwrap() as f32, speeds.iter().cloned().fold(f64::MAX, f64::min) as f32);
        assert_eq!(row[5].as_f64().unwrap() as f32, speeds.iter().cloned().fold(f64::MIN, f64::max) as f32);
    }

    // Raw rows page by page: two pages of 50 are the first 100 frames in order.
    let page = |offset| RangeQuery { every_s: None, limit: 50, offset, ..range.clone() };
    let first = block_on(query::range(&store, &run, &page(0))).unwrap();
    let second = block_on(query::range(&store, &run, &page(50))).unwrap();
    let times: Vec<f64> = first.rows.iter().chain(&second.rows).map(|r| r[1].as_f64().unwrap()).collect();
    assert_eq!(times, (1..=100).map(f64::from).collect::<Vec<_>>());
}

#[test]
fn two_runs_into_one_database_keep_both_and_one_can_be_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", dir.path().join("history.db").display());
    let (first, _) = stored_run(&url, dir.path(), Duration::from_secs(30));
    let (second, _) = stored_run(&url, dir.path(), Duration::from_secs(30));
    assert_ne!(first, second);
    let store = block_on(aegis::store::open(&url)).unwrap();
    let runs = block_on(store.runs()).unwrap();
    assert_eq!(runs.iter().map(|r| (r.run.name.as_str(), r.telemetry_rows)).collect::<Vec<_>>(), [(first.as_str(), 90), (second.as_str(), 90)]);
    // The latest run is the default.
    assert_eq!(block_on(query::run(&store, None)).unwrap().name, second);
    assert!(block_on(store.delete_run(&first)).unwrap());
    assert!(!block_on(store.delete_run(&first)).unwrap(), "a second delete finds nothing");
    let runs = block_on(store.runs()).unwrap();
    assert_eq!(runs.iter().map(|r| r.run.name.as_str()).collect::<Vec<_>>(), [second.as_str()]);
}

#[test]
fn migrations_apply_twice_and_redelivery_adds_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("history.db");
    let store = block_on(SqliteStore::open(path.to_str().unwrap())).unwrap();
    block_on(store.migrate()).unwrap();
    let applied = |store: &SqliteStore| -> i64 {
        block_on(async { sqlx::query("SELECT COUNT(*) FROM _sqlx_migrations").fetch_one(store.pool()).await.unwrap().get(0) })
    };
    let before = applied(&store);
    drop(store);
    let store = block_on(SqliteStore::open(path.to_str().unwrap())).unwrap();
    assert_eq!(applied(&store), before, "reopening applies nothing new");

    let run = RunInfo {
        name: "redelivery".into(),
        scenario: "test".into(),
        seed: 1,
        fleet: 1,
        start: aegis::model::WallTime::UNIX_EPOCH,
        vehicles: vec![(VehicleId(1), aegis::model::VehicleModel::Van, "A".into())],
    };
    let run_id = block_on(store.register_run(&run)).unwrap();
    assert_eq!(block_on(store.register_run(&run)).unwrap(), run_id, "registering again joins the run");
    let messages: Vec<Envelope> = (0..20)
        .map(|seq| {
            let telemetry = aegis::model::Telemetry { metrics: aegis::model::TelemetryFrame::default(), truth: Vec::new() };
            Envelope::new(VehicleId(1), seq, seq as f64, Body::Telemetry(Box::new(telemetry)))
        })
        .collect();
    let batch = |envelopes: &[Envelope]| {
        let mut batch = Batch::default();
        for envelope in envelopes {
            batch.push(run.start, envelope.clone());
        }
        batch
    };
    let written = block_on(store.write(run_id, &batch(&messages))).unwrap();
    assert_eq!((written.stored, written.duplicates), (20, 0));
    // The second half again, with five new ones: only the new ones land.
    let mut again = messages[10..].to_vec();
    again.extend((20..25).map(|seq| Envelope { seq, sim_time: seq as f64, ..messages[0].clone() }));
    let written = block_on(store.write(run_id, &batch(&again))).unwrap();
    assert_eq!((written.stored, written.duplicates), (5, 10));
    assert_eq!(block_on(store.runs()).unwrap()[0].telemetry_rows, 25);
}

#[test]
fn bad_store_urls_and_queries_name_what_is_wrong() {
    let error = |url: &str| block_on(aegis::store::open(url)).err().map(|e| e.to_string()).unwrap_or_default();
    assert!(error("mysql://db").contains("expected sqlite:PATH"), "{}", error("mysql://db"));
    assert!(error("sqlite:").contains("no database file"));

    let store = block_on(aegis::store::open("sqlite::memory:")).unwrap();
    let missing = block_on(query::run(&store, None)).unwrap_err();
    assert!(missing.to_string().contains("holds no runs"), "{missing}");
    let run = RunInfo {
        name: "r".into(),
        scenario: "test".into(),
        seed: 1,
        fleet: 2,
        start: aegis::model::WallTime::UNIX_EPOCH,
        vehicles: Vec::new(),
    };
    block_on(store.register_run(&run)).unwrap();
    assert!(matches!(block_on(query::run(&store, Some("nope"))), Err(StoreError::Query(m)) if m.contains("no run named `nope`")));
    let stored = block_on(query::run(&store, Some("r"))).unwrap();
    let range = RangeQuery { vehicle: VehicleId(1), metrics: vec![Metric::SpeedKph], from_s: 60.0, to_s: 10.0, every_s: None, limit: 10, offset: 0 };
    let inverted = block_on(query::range(&store, &stored, &range)).unwrap_err().to_string();
    assert!(inverted.contains("inverted"), "{inverted}");
    let unknown = block_on(query::range(&store, &stored, &RangeQuery { vehicle: VehicleId(9), to_s: 100.0, ..range })).unwrap_err().to_string();
    assert!(unknown.contains("has no vehicle V0009"), "{unknown}");
    assert!(query::metrics(&["speed".into()]).unwrap_err().to_string().contains("no metric named `speed`"));
}
