//! Fleet history in SQLite and in a throwaway PostgreSQL cluster: every message of a run
//! arrives, runs stay apart, redelivery adds nothing, a database outage and a killed store
//! process lose nothing, refused rows land in the dead letters, and every query agrees with
//! a direct computation from the run's own JSON Lines.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use aegis::app::{RunOptions, run_headless};
use aegis::bus::{Backlog, Bus, Filter, MemoryBus};
use aegis::model::{Body, Envelope, Metric, Telemetry, TelemetryFrame, VehicleId, VehicleModel, WallTime};
use aegis::store::query::{self, HistoryFilter, Period, RangeQuery, Tsbs};
use aegis::store::writer::{BatchWriter, Landed, StoreWriter, WriterSettings, WriterStatus};
use aegis::store::{Batch, Dialect, Param, RunInfo, Store, StoreError};

use crate::common::{SMALL_WORLD, scenario};
use crate::postgres_server::PostgresServer;
use crate::redis_server::{Aegis, RedisServer, wait_until};

/// Runs `future` on this test thread's runtime: one per thread, since a pool made on a runtime
/// lives only as long as it (and an in-memory database with its one connection).
pub(crate) fn block_on<T>(future: impl std::future::Future<Output = T>) -> T {
    thread_local! {
        static RUNTIME: tokio::runtime::Runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    }
    RUNTIME.with(|runtime| runtime.block_on(future))
}

pub(crate) fn sqlite_url(dir: &tempfile::TempDir) -> String {
    format!("sqlite:{}", dir.path().join("history.db").display())
}

pub(crate) fn open(url: &str) -> Store {
    block_on(aegis::store::open(url)).unwrap()
}

/// One number from a query.
pub(crate) fn count(store: &Store, sql: &str, params: Vec<Param>) -> i64 {
    block_on(store.fetch(sql, params)).unwrap()[0][0].as_i64().unwrap()
}

/// Runs the small world for `duration` into the store at `url`, with its telemetry also
/// written as JSON Lines; returns the run's name and the telemetry envelopes.
pub(crate) fn stored_run(url: &str, dir: &std::path::Path, duration: Duration) -> (String, Vec<Envelope>) {
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

fn frame(e: &Envelope) -> &Telemetry {
    match &e.body {
        Body::Telemetry(t) => t,
        _ => panic!("telemetry only"),
    }
}

/// Every frame arrives as sent, and each query agrees with the frames themselves.
fn a_runs_telemetry_all_arrives_and_queries_agree_with_it(url: &str) {
    let dir = tempfile::tempdir().unwrap();
    let (name, sent) = stored_run(url, dir.path(), Duration::from_secs(180));
    let store = open(url);
    let run = block_on(query::run(&store, Some(&name))).unwrap();

    // Count and content: (vehicle, seq) -> speed, coolant, as sent and as stored.
    let expected: BTreeMap<(i64, i64), (f32, f32)> =
        sent.iter().map(|e| ((i64::from(e.vehicle_id.0), e.seq as i64), (frame(e).metrics.get(Metric::SpeedKph), frame(e).metrics.get(Metric::CoolantTempC)))).collect();
    let stored: BTreeMap<(i64, i64), (f32, f32)> = block_on(store.fetch("SELECT vehicle_id, seq, speed_kph, coolant_temp_c FROM telemetry_readings WHERE run_id = ?", vec![Param::Int(run.run_id)]))
        .unwrap()
        .iter()
        .map(|r| ((r[0].as_i64().unwrap(), r[1].as_i64().unwrap()), (r[2].as_f64().unwrap() as f32, r[3].as_f64().unwrap() as f32)))
        .collect();
    assert_eq!(stored.len(), 3 * 180, "one frame per vehicle per second");
    assert_eq!(stored, expected);

    // Latest state: each vehicle's last frame.
    let last = |vehicle: VehicleId| sent.iter().filter(|e| e.vehicle_id == vehicle).max_by(|a, b| a.sim_time.total_cmp(&b.sim_time)).unwrap();
    let latest = block_on(query::latest(&store, &run, &[Metric::SpeedKph])).unwrap();
    assert_eq!(latest.rows.len(), 3);
    for row in &latest.rows {
        let vehicle: VehicleId = row[0].as_str().unwrap().parse().unwrap();
        assert_eq!(row[1].as_f64().unwrap(), last(vehicle).sim_time);
        assert_eq!(row[3].as_f64().unwrap() as f32, frame(last(vehicle)).metrics.get(Metric::SpeedKph));
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
            .map(|e| f64::from(frame(e).metrics.get(Metric::SpeedKph)))
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

    // The hourly and daily fleet aggregates: distance is speed over the seconds, energy
    // positive traction power over the seconds.
    let distance: f64 = sent.iter().map(|e| f64::from(frame(e).metrics.get(Metric::SpeedKph)).max(0.0)).sum::<f64>() / 3600.0;
    let energy: f64 = sent.iter().map(|e| f64::from(frame(e).metrics.get(Metric::EnginePowerKw)).max(0.0)).sum::<f64>() / 3600.0;
    for period in [Period::Hour, Period::Day] {
        let fleet = block_on(query::fleet(&store, &run, period)).unwrap();
        assert_eq!(fleet.rows.len(), 1, "one hour, one model: {fleet:?}");
        let row = &fleet.rows[0];
        assert_eq!((row[1].as_str().unwrap(), row[2].as_i64().unwrap()), ("van", 3));
        assert!((row[3].as_f64().unwrap() - sent.len() as f64 / 3600.0).abs() < 1e-9, "{row:?}");
        assert!((row[4].as_f64().unwrap() - distance).abs() < 1e-6 * distance.max(1.0), "{row:?} vs {distance}");
        assert!((row[5].as_f64().unwrap() - energy).abs() < 1e-6 * energy.max(1.0), "{row:?} vs {energy}");
        assert_eq!(row[6].as_i64().unwrap(), 0, "no alerts in three quiet minutes");
    }

    // TSBS: hours driven per day, mean load per model per hour, last location, low fuel.
    let activity = block_on(query::tsbs(&store, &run, Tsbs::DailyActivity)).unwrap();
    for row in &activity.rows {
        let vehicle: VehicleId = row[0].as_str().unwrap().parse().unwrap();
        let driving = sent.iter().filter(|e| e.vehicle_id == vehicle && frame(e).metrics.get(Metric::SpeedKph) > 1.0).count();
        assert!((row[2].as_f64().unwrap() - driving as f64 / 3600.0).abs() < 1e-9, "{row:?}");
    }
    let load = block_on(query::tsbs(&store, &run, Tsbs::AvgLoad)).unwrap();
    let mean_load = sent.iter().map(|e| f64::from(frame(e).metrics.get(Metric::EngineLoadPct))).sum::<f64>() / sent.len() as f64;
    assert!((load.rows[0][2].as_f64().unwrap() - mean_load).abs() < 1e-3, "{load:?} vs {mean_load}");
    let located = block_on(query::tsbs(&store, &run, Tsbs::LastLoc)).unwrap();
    for row in &located.rows {
        let vehicle: VehicleId = row[0].as_str().unwrap().parse().unwrap();
        assert_eq!(row[3].as_f64().unwrap() as f32, frame(last(vehicle)).metrics.get(Metric::PositionXM));
    }
    let low_fuel = block_on(query::tsbs(&store, &run, Tsbs::LowFuel)).unwrap();
    let expected_low = (1..=3).filter(|v| frame(last(VehicleId(*v))).metrics.get(Metric::FuelLevelPct) < 10.0).count();
    assert_eq!(low_fuel.rows.len(), expected_low);
}

#[test]
fn sqlite_stores_a_whole_run_and_answers_like_its_json_lines() {
    let dir = tempfile::tempdir().unwrap();
    a_runs_telemetry_all_arrives_and_queries_agree_with_it(&sqlite_url(&dir));
}

#[test]
fn postgres_stores_a_whole_run_and_answers_like_its_json_lines() {
    let server = PostgresServer::start();
    a_runs_telemetry_all_arrives_and_queries_agree_with_it(&server.database("history"));
}

fn two_runs_into_one_database_keep_both_and_one_can_be_deleted(url: &str) {
    let dir = tempfile::tempdir().unwrap();
    let (first, _) = stored_run(url, dir.path(), Duration::from_secs(30));
    let (second, _) = stored_run(url, dir.path(), Duration::from_secs(30));
    assert_ne!(first, second);
    let store = open(url);
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
fn sqlite_keeps_two_runs_apart() {
    let dir = tempfile::tempdir().unwrap();
    two_runs_into_one_database_keep_both_and_one_can_be_deleted(&sqlite_url(&dir));
}

#[test]
fn postgres_keeps_two_runs_apart() {
    let server = PostgresServer::start();
    two_runs_into_one_database_keep_both_and_one_can_be_deleted(&server.database("history"));
}

fn one_van_run(name: &str) -> RunInfo {
    RunInfo { name: name.into(), scenario: "test".into(), seed: 1, fleet: 1, start: WallTime::UNIX_EPOCH, vehicles: vec![(VehicleId(1), VehicleModel::Van, "A".into())] }
}

fn frames(seqs: std::ops::Range<u64>) -> Vec<Envelope> {
    seqs.map(|seq| Envelope::new(VehicleId(1), seq, seq as f64, Body::Telemetry(Box::new(Telemetry { metrics: TelemetryFrame::default(), truth: Vec::new() })))).collect()
}

pub(crate) fn batch(start: WallTime, envelopes: &[Envelope]) -> Batch {
    let mut batch = Batch::default();
    for envelope in envelopes {
        batch.push(start, envelope.clone());
    }
    batch
}

fn migrations_apply_twice_and_redelivery_adds_nothing(url: &str) {
    let store = open(url);
    block_on(store.migrate()).unwrap();
    let applied = |store: &Store| count(store, "SELECT COUNT(*) FROM _sqlx_migrations", vec![]);
    let before = applied(&store);
    let dialect = match store.dialect() {
        Dialect::Sqlite => "sqlite",
        Dialect::Postgres => "postgres",
    };
    let files = std::fs::read_dir(format!("{}/migrations/{dialect}", env!("CARGO_MANIFEST_DIR"))).unwrap().count() as i64;
    assert_eq!(before, files, "every migration of the dialect applied");
    drop(store);
    let store = open(url);
    assert_eq!(applied(&store), before, "reopening applies nothing new");

    let run = one_van_run("redelivery");
    let target = block_on(store.register_run(&run)).unwrap();
    assert_eq!(block_on(store.register_run(&run)).unwrap(), target, "registering again joins the run");
    let messages = frames(0..20);
    let written = block_on(store.write(&target, &batch(run.start, &messages).rows)).unwrap();
    assert_eq!((written.stored, written.duplicates), (20, 0));
    // The second half again, with five new ones: only the new ones land.
    let mut again = messages[10..].to_vec();
    again.extend(frames(20..25));
    let written = block_on(store.write(&target, &batch(run.start, &again).rows)).unwrap();
    assert_eq!((written.stored, written.duplicates), (5, 10));
    assert_eq!(block_on(store.runs()).unwrap()[0].telemetry_rows, 25);
    // The hourly rollup counted each frame once.
    assert_eq!(count(&store, "SELECT CAST(SUM(frames) AS BIGINT) FROM fleet_hourly WHERE run_id = ?", vec![Param::Int(target.run_id)]), 25);
}

#[test]
fn sqlite_migrates_once_and_ignores_redelivery() {
    let dir = tempfile::tempdir().unwrap();
    migrations_apply_twice_and_redelivery_adds_nothing(&sqlite_url(&dir));
}

#[test]
fn postgres_migrates_once_and_ignores_redelivery() {
    let server = PostgresServer::start();
    migrations_apply_twice_and_redelivery_adds_nothing(&server.database("history"));
}

/// A batch with one row the database refuses: the rest lands, the refused one is in
/// `dead_letters` with the database's reason.
fn a_refused_row_is_dead_lettered_and_the_rest_lands(url: &str, spoil: impl Fn(&mut Envelope), reason: &str) {
    let dir = tempfile::tempdir().unwrap();
    let store = open(url);
    let run = one_van_run(&format!("refused: {reason}"));
    let target = block_on(store.register_run(&run)).unwrap();
    let run_id = target.run_id;
    let mut messages = frames(0..40);
    spoil(&mut messages[17]);
    let status = Arc::new(WriterStatus::default());
    let mut writer = BatchWriter::new(store.clone(), target, "test", dir.path().join("spool.jsonl"), &WriterSettings::default(), status.clone());
    assert_eq!(block_on(writer.write(batch(run.start, &messages))), Landed::Stored);
    let figures = status.figures();
    assert_eq!((figures.stored, figures.rejected, figures.spooled), (39, 1, 0), "{figures:?}");
    assert_eq!(count(&store, "SELECT COUNT(*) FROM telemetry WHERE run_id = ?", vec![Param::Int(run_id)]), 39);
    let letters = block_on(store.fetch("SELECT source, reason, payload FROM dead_letters WHERE run_id = ?", vec![Param::Int(run_id)])).unwrap();
    assert_eq!(letters.len(), 1);
    assert!(letters[0][1].as_str().unwrap().contains(reason), "{letters:?}");
    assert!(letters[0][2].as_str().unwrap().contains("\"seq\":17"), "the row itself is kept: {letters:?}");
}

#[test]
fn sqlite_dead_letters_a_reading_it_cannot_hold() {
    let dir = tempfile::tempdir().unwrap();
    // NaN is no number of steps: it binds NULL, which a reading column refuses.
    a_refused_row_is_dead_lettered_and_the_rest_lands(
        &sqlite_url(&dir),
        |e| {
            if let Body::Telemetry(t) = &mut e.body {
                t.metrics.values[0] = f32::NAN;
            }
        },
        "NOT NULL",
    );
}

#[test]
fn postgres_dead_letters_text_it_cannot_hold() {
    let server = PostgresServer::start();
    // PostgreSQL text cannot hold a NUL character.
    a_refused_row_is_dead_lettered_and_the_rest_lands(
        &server.database("history"),
        |e| e.body = Body::from(aegis::model::CommandAck { command_id: "C\u{0}1".into(), outcome: aegis::model::CommandOutcome::Accepted, detail: None }),
        "0x00",
    );
}

#[test]
fn postgres_dead_letters_a_reading_beyond_its_column_and_nan() {
    let server = PostgresServer::start();
    let url = server.database("history");
    // 20,000 km/h is 40,000 steps of 0.5 km/h: more than a SMALLINT holds.
    let spoil = |value: f32| {
        move |e: &mut Envelope| {
            if let Body::Telemetry(t) = &mut e.body {
                t.metrics.set(Metric::SpeedKph, value);
            }
        }
    };
    a_refused_row_is_dead_lettered_and_the_rest_lands(&url, spoil(20_000.0), "out of range for type smallint");
    a_refused_row_is_dead_lettered_and_the_rest_lands(&url, spoil(f32::NAN), "null value");
}

#[test]
fn postgres_stopped_for_a_minute_mid_run_loses_nothing_and_duplicates_nothing() {
    let server = PostgresServer::start();
    let url = server.database("history");
    let dir = tempfile::tempdir().unwrap();
    // A run's telemetry, replayed into the writer through the bus in three parts.
    let (_, sent) = stored_run(&sqlite_url(&dir), dir.path(), Duration::from_secs(180));
    let minute = |m: f64| sent.iter().filter(move |e| e.sim_time > m * 60.0 && e.sim_time <= (m + 1.0) * 60.0).cloned().collect::<Vec<_>>();
    let bus = MemoryBus::new();
    let subscription = bus.subscribe(Filter::all(), Backlog::Lossless);
    let settings = WriterSettings { spool: Some(dir.path().join("spool.jsonl")), max_backoff: Duration::from_millis(200), ..WriterSettings::default() };
    let mut run = one_van_run("outage");
    run.fleet = 3;
    let writer = StoreWriter::start(&url, run, subscription, settings).unwrap();

    let first = minute(0.0);
    first.iter().cloned().for_each(|e| bus.publish(e));
    wait_until(Duration::from_secs(60), "the first minute is stored", || writer.status().figures().stored == first.len() as u64);
    server.stop();
    // The second minute arrives while the database is down: it goes to the spool.
    let second = minute(1.0);
    second.iter().cloned().for_each(|e| bus.publish(e));
    wait_until(Duration::from_secs(60), "the second minute is spooled", || writer.status().figures().spooled == second.len() as u64);
    assert!(writer.status().in_outage());
    assert!(writer.status().lag_s(120.0) < 1.0, "during the outage the spool counts as safe");
    server.restart();
    let third = minute(2.0);
    third.iter().cloned().for_each(|e| bus.publish(e));
    let figures = writer.finish().unwrap();
    assert_eq!(figures.received, sent.len() as u64);
    assert_eq!(figures.stored, sent.len() as u64, "{figures:?}");
    assert!(figures.replayed >= second.len() as u64, "{figures:?}");
    assert!(figures.retried >= 1, "{figures:?}");
    assert_eq!(figures.spool_waiting, 0);

    let store = open(&url);
    let stored = count(&store, "SELECT COUNT(*) FROM telemetry", vec![]);
    let distinct = count(&store, "SELECT COUNT(*) FROM (SELECT DISTINCT vehicle_id, seq FROM telemetry) k", vec![]);
    assert_eq!((stored, distinct), (sent.len() as i64, sent.len() as i64), "0 lost, 0 duplicates");
}

#[test]
fn a_spool_left_behind_is_replayed_by_the_next_writer_on_that_database() {
    let server = PostgresServer::start();
    let url = server.database("history");
    let dir = tempfile::tempdir().unwrap();
    let (_, sent) = stored_run(&sqlite_url(&dir), dir.path(), Duration::from_secs(120));
    let (first, second): (Vec<Envelope>, Vec<Envelope>) = sent.into_iter().partition(|e| e.sim_time <= 60.0);
    let settings = WriterSettings { spool: Some(dir.path().join("spool.jsonl")), max_backoff: Duration::from_millis(200), drain_timeout: Duration::from_millis(500), ..WriterSettings::default() };
    let bus = MemoryBus::new();
    let writer = StoreWriter::start(&url, one_van_run("left-behind"), bus.subscribe(Filter::all(), Backlog::Lossless), settings.clone()).unwrap();
    first.iter().cloned().for_each(|e| bus.publish(e));
    wait_until(Duration::from_secs(60), "the first minute is stored", || writer.status().figures().stored == first.len() as u64);
    server.stop();
    second.iter().cloned().for_each(|e| bus.publish(e));
    // The database is still down at the end: the writer gives up and leaves its spool.
    let figures = writer.finish().unwrap();
    assert_eq!(figures.spool_waiting, second.len() as u64, "{figures:?}");
    assert!(dir.path().join("spool.jsonl").exists());

    server.restart();
    let bus = MemoryBus::new();
    let next = StoreWriter::start(&url, one_van_run("next"), bus.subscribe(Filter::all(), Backlog::Lossless), settings).unwrap();
    next.finish().unwrap();
    let store = open(&url);
    let run = block_on(store.find_run(Some("left-behind"))).unwrap().unwrap();
    let stored = count(&store, "SELECT COUNT(*) FROM telemetry WHERE run_id = ?", vec![Param::Int(run.run_id)]);
    let telemetry = first.iter().chain(&second).filter(|e| matches!(e.body, Body::Telemetry(_))).count() as i64;
    assert_eq!(stored, telemetry, "the first minute and the spooled second one, once each");
    assert!(!dir.path().join("spool.jsonl").exists(), "the replayed spool is removed");
}

#[test]
fn a_store_process_killed_over_redis_resumes_from_its_group_and_loses_nothing() {
    let _turn = crate::redis_server::one_paced_test_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let server = RedisServer::start();
    let url = sqlite_url(&dir);
    let scenario = dir.path().join("small.toml");
    std::fs::write(&scenario, SMALL_WORLD).unwrap();
    let scenario = scenario.to_str().unwrap();
    let store_args = ["store", "--redis", &server.url(), "--store", &url];
    let first = Aegis::start(dir.path(), "store-first", &store_args);
    let jsonl = dir.path().join("sent.jsonl");
    let fleet = Aegis::start(
        dir.path(),
        "fleet",
        &["fleet", "--scenario", scenario, "--redis", &server.url(), "--speed", "120", "--duration", "10m", "--telemetry-out", jsonl.to_str().unwrap()],
    );
    let stored_now = || {
        let store = block_on(aegis::store::open(&url)).ok()?;
        block_on(store.fetch("SELECT COUNT(*) FROM telemetry", vec![])).ok()?.first()?.first()?.as_i64()
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while stored_now().is_none_or(|n| n < 100) {
        assert!(std::time::Instant::now() < deadline, "the store process stored nothing:\n{}\nfleet:\n{}", first.log(), fleet.log());
        std::thread::sleep(Duration::from_millis(20));
    }
    first.signal("KILL");
    let (status, _) = first.exit();
    assert!(!status.success());
    fleet.finish();
    let second = Aegis::start(dir.path(), "store-second", &store_args);
    let sent: Vec<Envelope> = std::fs::read_to_string(&jsonl).unwrap().lines().map(|l| Envelope::from_json(l).unwrap()).collect();
    assert!(sent.len() > 1000, "{}", sent.len());
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while stored_now() != Some(sent.len() as i64) {
        assert!(std::time::Instant::now() < deadline, "{:?} of {} frames stored:\n{}", stored_now(), sent.len(), second.log());
        std::thread::sleep(Duration::from_millis(20));
    }
    second.signal("TERM");
    let summary = second.finish();
    assert_eq!(summary["writer"]["rejected"], 0, "{summary}");

    let store = open(&url);
    let runs = block_on(store.runs()).unwrap();
    assert_eq!(runs.len(), 1, "both store processes stored into the fleet's one run");
    let stored: BTreeMap<(i64, i64), f32> = block_on(store.fetch("SELECT vehicle_id, seq, speed_kph FROM telemetry_readings", vec![]))
        .unwrap()
        .iter()
        .map(|r| ((r[0].as_i64().unwrap(), r[1].as_i64().unwrap()), r[2].as_f64().unwrap() as f32))
        .collect();
    let expected: BTreeMap<(i64, i64), f32> = sent.iter().map(|e| ((i64::from(e.vehicle_id.0), e.seq as i64), frame(e).metrics.get(Metric::SpeedKph))).collect();
    assert_eq!(stored, expected, "0 lost, 0 changed");
    assert!(count(&store, "SELECT COUNT(*) FROM heartbeats", vec![]) > 0, "the other kinds are stored too");
}

#[test]
fn bad_store_urls_and_queries_name_what_is_wrong() {
    let error = |url: &str| block_on(aegis::store::open(url)).err().map(|e| e.to_string()).unwrap_or_default();
    assert!(error("mysql://db").contains("expected sqlite:PATH"), "{}", error("mysql://db"));
    assert!(error("sqlite:").contains("no database file"));

    let store = open("sqlite::memory:");
    let missing = block_on(query::run(&store, None)).unwrap_err();
    assert!(missing.to_string().contains("holds no runs"), "{missing}");
    let run = RunInfo { fleet: 2, vehicles: Vec::new(), ..one_van_run("r") };
    block_on(store.register_run(&run)).unwrap();
    assert!(matches!(block_on(query::run(&store, Some("nope"))), Err(StoreError::Query(m)) if m.contains("no run named `nope`")));
    let stored = block_on(query::run(&store, Some("r"))).unwrap();
    let range = RangeQuery { vehicle: VehicleId(1), metrics: vec![Metric::SpeedKph], from_s: 60.0, to_s: 10.0, every_s: None, limit: 10, offset: 0 };
    let inverted = block_on(query::range(&store, &stored, &range)).unwrap_err().to_string();
    assert!(inverted.contains("inverted"), "{inverted}");
    let unknown = block_on(query::range(&store, &stored, &RangeQuery { vehicle: VehicleId(9), to_s: 100.0, ..range })).unwrap_err().to_string();
    assert!(unknown.contains("has no vehicle V0009"), "{unknown}");
    assert!(query::metrics(&["speed".into()]).unwrap_err().to_string().contains("no metric named `speed`"));
    let filter = HistoryFilter::whole(&stored);
    let severity = query::AlertFilter { severity: Some("dire".into()), ..Default::default() };
    assert!(block_on(query::alerts(&store, &stored, &filter, &severity)).unwrap_err().to_string().contains("no severity named `dire`"));
    let state = query::AlertFilter { state: Some("open".into()), ..Default::default() };
    assert!(block_on(query::alerts(&store, &stored, &filter, &state)).unwrap_err().to_string().contains("no alert state named `open`"));
}
