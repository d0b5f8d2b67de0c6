//! The life of a telemetry row after it is written: raw for a while, then compacted with the
//! rest of its vehicle's hour into one segment ([`super::segment`]) once it is older than the
//! compaction age.
//!
//! Age is simulated age: the writer compacts at a **watermark**, the simulated instant of the
//! latest row it has committed, and only while nothing waits in its spool, so a row still in
//! the spool is never compacted (nor anything its replay could land beside). A 30-day run at
//! `--speed max` compacts as its simulated days pass; a wall clock is never consulted.

use std::collections::BTreeMap;
use std::time::Duration;

use super::segment::{self, Frame};
use super::{Param, Statement, Store, StoreError};
use super::frames::{frame_columns, frame_of};
use crate::model::Metric;

/// When telemetry is compacted, in simulated time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LifecycleSettings {
    /// Rows older than this, behind the watermark, are compacted (24 h by default).
    pub compact_after: Duration,
    /// Each segment spans this much simulated time, aligned to the Unix epoch (an hour).
    pub segment: Duration,
}

impl Default for LifecycleSettings {
    fn default() -> Self {
        Self { compact_after: Duration::from_secs(24 * 3600), segment: Duration::from_secs(3600) }
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

/// The compacted frames of run `run_id` (one vehicle's, or all) that may fall in
/// `[from_ms, to_ms)`, by vehicle and in time order: whole segments, to be cut by the caller.
pub async fn segments(store: &Store, run_id: i64, vehicle: Option<i64>, from_ms: i64, to_ms: i64) -> Result<Vec<(i64, Vec<Frame>)>, StoreError> {
    let d = store.dialect();
    let at = d.at();
    let mut params = vec![Param::Int(run_id), Param::Int(to_ms), Param::Int(from_ms)];
    let only = match vehicle {
        Some(v) => {
            params.push(Param::Int(v));
            "AND vehicle_id = ?"
        }
        None => "",
    };
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
    let lifecycle = "the store's own: vehicle-hours older than 24 simulated hours compacted into telemetry_segments by the writer's watermark (TimescaleDB hypertables are not used yet)".to_owned();
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
        segment_bytes_per_frame: if compacted_frames > 0 { bytes as f64 / compacted_frames as f64 } else { 0.0 },
    })
}
