//! The life of a telemetry row after it is written: raw for a while, then compressed once it
//! is older than the compaction age, and exported to Parquet ([`super::export`]) and dropped
//! once it is older than the retention age; the rollups and the alert, command and mission
//! history stay. On SQLite and plain PostgreSQL a vehicle's hour is compacted into one
//! segment ([`super::segment`]); on TimescaleDB chunks are compressed natively and the
//! continuous aggregates refreshed ([`super::timescale`]).
//!
//! Age is simulated age: the writer acts at a **watermark**, the simulated instant of the
//! latest row it has committed, and only while nothing waits in its spool, so a row still in
//! the spool is never compacted or dropped (nor anything its replay could land beside). A
//! 30-day run at `--speed max` compresses and retires as its simulated days pass; a wall
//! clock is never consulted.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use super::export;
use super::frames::{frame_columns, frame_of};
use super::segment::{self, Frame};
use super::{DAY_MS, HOUR_MS, Param, RunTarget, Statement, Store, StoreError, floor_to, timescale};
use crate::model::Metric;

/// When telemetry is compacted and retired, in simulated time.
#[derive(Debug, Clone, PartialEq)]
pub struct LifecycleSettings {
    /// Rows older than this, behind the watermark, are compacted (24 h by default).
    pub compact_after: Duration,
    /// Each segment spans this much simulated time, aligned to the Unix epoch (an hour).
    pub segment: Duration,
    /// Whole UTC days older than this are exported to Parquet and dropped (30 days by
    /// default); never when `None`.
    pub retain_for: Option<Duration>,
    /// Where retired days go: `ARCHIVE/RUN/YYYY-MM-DD.parquet`.
    pub archive: PathBuf,
}

impl Default for LifecycleSettings {
    fn default() -> Self {
        Self {
            compact_after: Duration::from_secs(24 * 3600),
            segment: Duration::from_secs(3600),
            retain_for: Some(Duration::from_secs(30 * 86_400)),
            archive: PathBuf::from("aegis-archive"),
        }
    }
}

impl LifecycleSettings {
    fn segment_ms(&self) -> i64 {
        (self.segment.as_millis() as i64).max(1000)
    }

    /// The end of the last whole segment that is old enough at `watermark_ms`: rows before it
    /// may be compacted.
    pub fn cutoff(&self, watermark_ms: i64) -> i64 {
        let old = watermark_ms - self.compact_after.as_millis() as i64;
        old.div_euclid(self.segment_ms()) * self.segment_ms()
    }

    /// The start of the first UTC day not yet old enough to retire at `watermark_ms`: whole
    /// days before it are exported and dropped.
    pub fn retire_before(&self, watermark_ms: i64) -> Option<i64> {
        let old = watermark_ms - self.retain_for?.as_millis() as i64;
        Some(floor_to(old, DAY_MS))
    }
}

/// How far a writer's life cycle has gone, so that each step is taken once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Rows before this instant (ms) are compacted.
    pub compacted_to: i64,
    /// The continuous aggregates are refreshed up to here (TimescaleDB).
    pub refreshed_to: i64,
    /// Days before this are retired.
    pub retired_to: i64,
}

impl Default for Progress {
    fn default() -> Self {
        Self { compacted_to: i64::MIN, refreshed_to: i64::MIN, retired_to: i64::MIN }
    }
}

impl Progress {
    /// Counts the compaction and retention due at `watermark_ms` as taken: after a failure,
    /// the next try waits for the next step instead of hammering a failing database or disk
    /// (the next step covers what this one left). A refresh is tried again at once: one left
    /// out would leave a hole below the aggregate's watermark.
    pub fn skip_to(&mut self, watermark_ms: i64, settings: &LifecycleSettings) {
        self.compacted_to = self.compacted_to.max(settings.cutoff(watermark_ms));
        self.retired_to = self.retired_to.max(settings.retire_before(watermark_ms).unwrap_or(i64::MIN));
    }
}

/// What one step of the life cycle did.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Maintained {
    /// Compaction (segments, or TimescaleDB chunks compressed, as `segments`).
    pub compacted: Compacted,
    /// Parquet files written by retention.
    pub exported: Vec<export::Exported>,
    /// Telemetry rows retired.
    pub retired: u64,
}

/// Takes the life cycle of run `target` as far as `watermark_ms` allows: compression (and on
/// TimescaleDB the aggregates' refresh), then retention. The caller vouches that no row
/// before the watermark still waits to be written.
pub async fn maintain(store: &Store, target: &RunTarget, watermark_ms: i64, settings: &LifecycleSettings, progress: &mut Progress) -> Result<Maintained, StoreError> {
    let mut done = Maintained::default();
    let cutoff = settings.cutoff(watermark_ms);
    if cutoff > progress.compacted_to {
        done.compacted = match store.timescale() {
            Some(pool) => Compacted { segments: timescale::compress(pool, super::frames::ALL_TIME.0, cutoff).await?, frames: 0 },
            None => compact(store, target.run_id, cutoff, settings).await?,
        };
        if let Some((pool, _)) = store.partitioned() {
            super::partitions::reclaim(pool, cutoff).await?;
        }
        progress.compacted_to = cutoff;
    }
    if let Some(pool) = store.timescale() {
        // Whole hours behind the watermark; never over days retention has dropped, where a
        // refresh would find no rows and empty the aggregate.
        let hour = floor_to(watermark_ms, HOUR_MS);
        if hour > progress.refreshed_to {
            let since = match progress.refreshed_to {
                i64::MIN => export::extent(store, target.run_id).await?.map_or(hour, |(first, _)| first),
                refreshed => refreshed,
            };
            let from = floor_to(since.max(settings.retire_before(watermark_ms).unwrap_or(i64::MIN)), HOUR_MS);
            timescale::refresh(pool, from, hour).await?;
            progress.refreshed_to = hour;
        }
    }
    if let Some(before) = settings.retire_before(watermark_ms).filter(|before| *before > progress.retired_to) {
        let (exported, retired) = retire(store, target, before, settings).await?;
        done.exported = exported;
        done.retired = retired;
        progress.retired_to = before;
    }
    Ok(done)
}

/// Exports the telemetry of `target` before `before_ms` to Parquet, a file per day, then drops
/// it; returns the files and the rows dropped. A day is dropped only once its file is whole on
/// disk; a failed export drops nothing.
pub async fn retire(store: &Store, target: &RunTarget, before_ms: i64, settings: &LifecycleSettings) -> Result<(Vec<export::Exported>, u64), StoreError> {
    let Some((first, _)) = export::extent(store, target.run_id).await? else { return Ok((vec![], 0)) };
    // Whole days only: `before_ms` is the start of one.
    let files = export::export(store, target, first, before_ms, &settings.archive).await?;
    let retired = files.iter().map(|e| e.rows).sum::<u64>();
    if let Some((pool, days)) = store.partitioned() {
        let mut day = floor_to(first, DAY_MS);
        while day < before_ms {
            super::partitions::drop_day(pool, target.run_id, day, days).await?;
            day += DAY_MS;
        }
    }
    if retired == 0 {
        return Ok((files, 0));
    }
    if let Some(pool) = store.timescale() {
        timescale::drop_before(pool, target.run_id, before_ms).await?;
    }
    let at = store.dialect().at();
    let bounds = vec![Param::Int(target.run_id), Param::Int(before_ms)];
    store
        .execute_all(vec![
            Statement::new(format!("DELETE FROM telemetry WHERE run_id = ? AND time < {at}"), bounds.clone()),
            Statement::new(format!("DELETE FROM telemetry_segments WHERE run_id = ? AND start_time < {at}"), bounds),
        ])
        .await?;
    Ok((files, retired))
}

/// What one compaction did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Compacted {
    /// Segments written (new, or merged with rows that arrived late).
    pub segments: u64,
    /// Raw rows moved into them.
    pub frames: u64,
}

/// Compacts every whole segment of run `run_id` that ends before `cutoff_ms` and still has raw
/// rows: each vehicle's hour becomes one segment (merged with the segment already there, if
/// rows of that hour arrived after it was made), and its raw rows go, in one transaction.
pub async fn compact(store: &Store, run_id: i64, cutoff_ms: i64, settings: &LifecycleSettings) -> Result<Compacted, StoreError> {
    let d = store.dialect();
    let seg = settings.segment_ms();
    let at = d.at();
    let due = store
        .fetch(
            &format!("SELECT DISTINCT vehicle_id, ({} / {seg}) * {seg} FROM telemetry WHERE run_id = ? AND time < {at} ORDER BY 2, 1", d.ms("time")),
            vec![Param::Int(run_id), Param::Int(cutoff_ms)],
        )
        .await?;
    let mut done = Compacted::default();
    for key in due {
        let (Some(vehicle), Some(start)) = (key[0].as_i64(), key[1].as_i64()) else { continue };
        let bounds = vec![Param::Int(run_id), Param::Int(vehicle), Param::Int(start), Param::Int(start + seg)];
        let raw = store
            .fetch(&format!("SELECT {} FROM telemetry WHERE run_id = ? AND vehicle_id = ? AND time >= {at} AND time < {at} ORDER BY time", frame_columns(store, "", Metric::ALL)), bounds.clone())
            .await?;
        let raw = raw.iter().map(|row| frame_of(row, 0, Metric::ALL)).collect::<Result<Vec<_>, _>>()?;
        let moved = raw.len() as u64;
        // Rows of an hour compacted before (late arrivals): one segment holds them all, each once.
        let existing = segments(store, run_id, Some(vehicle), start, start + seg).await?;
        let merged: BTreeMap<i64, Frame> = existing.into_iter().flat_map(|(_, f)| f).chain(raw).map(|f| (f.seq, f)).collect();
        let mut frames: Vec<Frame> = merged.into_values().collect();
        frames.sort_by_key(|f| (f.time_ms, f.seq));
        let (Some(first), Some(last)) = (frames.first(), frames.last()) else { continue };
        let (first_ms, last_ms, count) = (first.time_ms, last.time_ms, frames.len() as i64);
        let data = segment::encode(&frames);
        store
            .execute_all(vec![
                Statement::new(format!("DELETE FROM telemetry_segments WHERE run_id = ? AND vehicle_id = ? AND start_time >= {at} AND start_time < {at}"), bounds.clone()),
                Statement::new(
                    format!("INSERT INTO telemetry_segments (run_id, vehicle_id, start_time, end_time, frames, data) VALUES (?, ?, {at}, {at}, ?, ?)"),
                    vec![Param::Int(run_id), Param::Int(vehicle), Param::Int(start), Param::Int(last_ms.max(first_ms)), Param::Int(count), Param::Bytes(data)],
                ),
                Statement::new(format!("DELETE FROM telemetry WHERE run_id = ? AND vehicle_id = ? AND time >= {at} AND time < {at}"), bounds),
            ])
            .await?;
        done.segments += 1;
        done.frames += moved;
    }
    Ok(done)
}

/// `AND vehicle_id = ?` with the vehicle bound after `params`, or nothing for every vehicle.
pub(super) fn only_vehicle(vehicle: Option<i64>, params: &mut Vec<Param>) -> &'static str {
    match vehicle {
        Some(v) => {
            params.push(Param::Int(v));
            "AND vehicle_id = ?"
        }
        None => "",
    }
}

/// The compacted frames of run `run_id` (one vehicle's, or all) that may fall in
/// `[from_ms, to_ms)`, by vehicle and in time order: whole segments, to be cut by the caller.
pub async fn segments(store: &Store, run_id: i64, vehicle: Option<i64>, from_ms: i64, to_ms: i64) -> Result<Vec<(i64, Vec<Frame>)>, StoreError> {
    let d = store.dialect();
    let at = d.at();
    let mut params = vec![Param::Int(run_id), Param::Int(to_ms), Param::Int(from_ms)];
    let only = only_vehicle(vehicle, &mut params);
    let rows = store
        .fetch(
            &format!("SELECT vehicle_id, {} FROM telemetry_segments WHERE run_id = ? AND start_time < {at} AND end_time >= {at} {only} ORDER BY vehicle_id, start_time", d.hex("data")),
            params,
        )
        .await?;
    rows.iter()
        .map(|row| {
            let vehicle = row[0].as_i64().unwrap_or_default();
            let bytes = hex::decode(row[1].as_str().unwrap_or_default()).map_err(|e| StoreError::Segment(format!("not hexadecimal: {e}")))?;
            Ok((vehicle, segment::decode(&bytes)?))
        })
        .collect()
}

/// The store's own life cycle, as SQLite and plain PostgreSQL live it.
pub(super) fn own_path() -> &'static str {
    "vehicle-hours older than the compaction age compacted into telemetry_segments, and telemetry past the retention age exported to Parquet and dropped, at the writer's watermark of simulated time"
}

/// What `aegis store info` says: the engine, which life-cycle path is active and why, and
/// how much is raw and compacted.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct StoreInfo {
    /// `sqlite` or `postgres`.
    pub backend: &'static str,
    /// The engine's version.
    pub version: String,
    /// The TimescaleDB extension: installed (its version), available to install, or absent.
    pub timescaledb: String,
    /// How telemetry ages here, and why.
    pub lifecycle: String,
    /// Runs stored.
    pub runs: i64,
    /// Raw telemetry rows.
    pub raw_frames: i64,
    /// Compacted segments.
    pub segments: i64,
    /// Frames in them.
    pub compacted_frames: i64,
    /// TimescaleDB only: the telemetry hypertable's chunks, and how many are compressed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chunks: Option<i64>,
    /// See `chunks`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compressed_chunks: Option<i64>,
    /// Bytes of segment data per compacted frame (the values themselves, before the engine's
    /// own overhead; `aegis bench store` measures on-disk figures).
    pub segment_bytes_per_frame: f64,
}

/// The engine, the active life-cycle path and what is raw and compacted.
pub async fn info(store: &Store) -> Result<StoreInfo, StoreError> {
    let one = |rows: Vec<Vec<serde_json::Value>>| rows.into_iter().next().unwrap_or_default();
    let (backend, version, timescaledb) = match store.dialect() {
        super::Dialect::Sqlite => ("sqlite", one(store.fetch("SELECT sqlite_version()", vec![]).await?), "absent (SQLite)".to_owned()),
        super::Dialect::Postgres => {
            let version = one(store.fetch("SELECT current_setting('server_version')", vec![]).await?);
            let extension = one(store.fetch("SELECT installed_version, default_version FROM pg_available_extensions WHERE name = 'timescaledb'", vec![]).await?);
            let timescaledb = match (extension.first().and_then(|v| v.as_str()), extension.get(1).and_then(|v| v.as_str())) {
                (Some(installed), _) => format!("installed, {installed}"),
                (None, Some(available)) => format!("available ({available}), not installed in this database"),
                _ => "absent from this server".to_owned(),
            };
            ("postgres", version, timescaledb)
        }
    };
    let version = version.first().and_then(|v| v.as_str()).unwrap_or("unknown").to_owned();
    let lifecycle = match store {
        Store::Sqlite(_) => format!("SQLite: {}", own_path()),
        Store::Postgres(pg) => pg.path().to_owned(),
    };
    let (chunks, compressed_chunks) = match store.timescale() {
        Some(_) => {
            let counts = one(
                store
                    .fetch("SELECT COUNT(*), COUNT(*) FILTER (WHERE is_compressed) FROM timescaledb_information.chunks WHERE hypertable_name = 'telemetry'", vec![])
                    .await?,
            );
            (counts.first().and_then(|v| v.as_i64()), counts.get(1).and_then(|v| v.as_i64()))
        }
        None => (None, None),
    };
    let counts = one(
        store
            .fetch(
                "SELECT (SELECT COUNT(*) FROM runs), (SELECT COUNT(*) FROM telemetry), (SELECT COUNT(*) FROM telemetry_segments),
                        (SELECT COALESCE(SUM(frames), 0) FROM telemetry_segments), (SELECT COALESCE(SUM(LENGTH(data)), 0) FROM telemetry_segments)",
                vec![],
            )
            .await?,
    );
    let int = |i: usize| counts.get(i).and_then(|v| v.as_i64().or_else(|| v.as_f64().map(|f| f as i64))).unwrap_or(0);
    let (compacted_frames, bytes) = (int(3), int(4));
    Ok(StoreInfo {
        backend,
        version,
        timescaledb,
        lifecycle,
        runs: int(0),
        raw_frames: int(1),
        segments: int(2),
        compacted_frames,
        chunks,
        compressed_chunks,
        segment_bytes_per_frame: if compacted_frames > 0 { bytes as f64 / compacted_frames as f64 } else { 0.0 },
    })
}
