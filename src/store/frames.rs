//! Telemetry frames read back from raw rows and compacted segments alike: what every query of
//! [`super::query`] that reads telemetry goes through, so that none can tell where a frame
//! lives. Raw rows are read by SQL (filtered, aggregated where the engine can), segments are
//! decoded here and cut to the range; the two are merged by time.

use std::collections::BTreeMap;

use super::lifecycle::{only_vehicle, segments};
use super::segment::Frame;
use super::{DAY_MS, Param, Store, StoreError, floor_to};
use crate::model::{METRIC_COUNT, Metric};

/// Every instant a store can hold, in milliseconds: from year 1 to the end of year 9999
/// (PostgreSQL's timestamps reach further, but `i64::MIN` and `MAX` do not fit them).
pub const ALL_TIME: (i64, i64) = (-62_135_596_800_000, 253_402_300_800_000);

/// The columns of a raw frame with `metrics` (the others read as 0), as [`frame_of`] reads
/// them, each prefixed with `prefix`: fewer columns are quicker to bring back.
pub(super) fn frame_columns(store: &Store, prefix: &str, metrics: &[Metric]) -> String {
    let d = store.dialect();
    let metrics: Vec<String> = metrics.iter().map(|m| format!("{prefix}{}", m.name())).collect();
    format!("{}, {prefix}seq, {prefix}sim_ms, {prefix}wall_ms, {}", d.ms(&format!("{prefix}time")), metrics.join(", "))
}

/// A frame from the cells `frame_columns` selected for `metrics`, starting at cell `at`.
pub(super) fn frame_of(row: &[serde_json::Value], at: usize, metrics: &[Metric]) -> Result<Frame, StoreError> {
    let int = |i: usize| row.get(at + i).and_then(serde_json::Value::as_i64).ok_or_else(|| StoreError::query(format!("a telemetry row's column {} is not an integer", at + i)));
    let mut steps = [0; METRIC_COUNT];
    for (i, metric) in metrics.iter().enumerate() {
        steps[*metric as usize] = int(4 + i)?;
    }
    Ok(Frame { time_ms: int(0)?, seq: int(1)?, sim_time: int(2)? as f64 / 1000.0, wall_ms: int(3)?, steps })
}

/// A frame's reading of `metric`, in its unit.
pub fn reading(frame: &Frame, metric: Metric) -> f64 {
    frame.steps[metric as usize] as f64 * metric.spec().resolution
}

/// Each vehicle's latest frame in run `run_id`, by vehicle number, wherever it is kept.
pub async fn latest(store: &Store, run_id: i64) -> Result<BTreeMap<i64, Frame>, StoreError> {
    // Each vehicle's latest time first, then one lookup per vehicle: SQLite's CROSS JOIN keeps
    // that order (left to itself, SQLite 3.51 walks the run's whole telemetry instead).
    let sql = format!(
        "WITH last AS MATERIALIZED (
            SELECT v.vehicle_id, (SELECT MAX(l.time) FROM telemetry l WHERE l.run_id = v.run_id AND l.vehicle_id = v.vehicle_id) AS time
            FROM vehicles v WHERE v.run_id = ?)
         SELECT t.vehicle_id, {} FROM last v CROSS JOIN telemetry t
         WHERE t.run_id = ? AND t.vehicle_id = v.vehicle_id AND t.time = v.time ORDER BY v.vehicle_id",
        frame_columns(store, "t.", Metric::ALL)
    );
    let mut latest = BTreeMap::new();
    for row in store.fetch(&sql, vec![Param::Int(run_id), Param::Int(run_id)]).await? {
        latest.insert(row[0].as_i64().unwrap_or_default(), frame_of(&row, 1, Metric::ALL)?);
    }
    // A vehicle whose newest frames are compacted (a run older than the compaction age): its
    // latest segment's last frame.
    let d = store.dialect();
    let ends = store.fetch(&format!("SELECT vehicle_id, {} FROM telemetry_segments WHERE run_id = ? GROUP BY vehicle_id", d.ms("MAX(end_time)")), vec![Param::Int(run_id)]).await?;
    for end in ends {
        let (Some(vehicle), Some(end_ms)) = (end[0].as_i64(), end[1].as_i64()) else { continue };
        if latest.get(&vehicle).is_some_and(|f: &Frame| f.time_ms >= end_ms) {
            continue;
        }
        if let Some(frame) = segments(store, run_id, Some(vehicle), end_ms, end_ms + 1).await?.into_iter().flat_map(|(_, f)| f).rfind(|f| f.time_ms <= end_ms) {
            latest.insert(vehicle, frame);
        }
    }
    Ok(latest)
}

/// The first `limit` frames of one vehicle in `[from_ms, to_ms)`, in time order, with
/// `metrics` (the others read as 0).
pub async fn range(store: &Store, run_id: i64, vehicle: i64, from_ms: i64, to_ms: i64, metrics: &[Metric], limit: usize) -> Result<Vec<Frame>, StoreError> {
    let at = store.dialect().at();
    let sql = format!("SELECT {} FROM telemetry WHERE run_id = ? AND vehicle_id = ? AND time >= {at} AND time < {at} ORDER BY time LIMIT ?", frame_columns(store, "", metrics));
    let params = vec![Param::Int(run_id), Param::Int(vehicle), Param::Int(from_ms), Param::Int(to_ms), Param::Int(limit as i64)];
    let raw = store.fetch(&sql, params).await?.iter().map(|row| frame_of(row, 0, metrics)).collect::<Result<Vec<_>, _>>()?;
    let compacted: Vec<Frame> = segments(store, run_id, Some(vehicle), from_ms, to_ms).await?.into_iter().flat_map(|(_, f)| f).filter(|f| f.time_ms >= from_ms && f.time_ms < to_ms).collect();
    if compacted.is_empty() {
        return Ok(raw);
    }
    // Both in time order; a frame in both (a late copy not yet merged) counts once.
    let mut merged: BTreeMap<(i64, i64), Frame> = compacted.into_iter().map(|f| ((f.time_ms, f.seq), f)).collect();
    merged.extend(raw.into_iter().map(|f| ((f.time_ms, f.seq), f)));
    Ok(merged.into_values().take(limit).collect())
}

/// Calls `each` with every compacted frame of run `run_id` (one vehicle's, or all) in
/// `[from_ms, to_ms)`, by vehicle and in time order. Segments are fetched and decoded a
/// vehicle-day at a time, so memory holds one vehicle-day however long the run or the range
/// (a month of ten vehicles decoded at once is some 11 GB).
pub async fn each_compacted(store: &Store, run_id: i64, vehicle: Option<i64>, from_ms: i64, to_ms: i64, mut each: impl FnMut(i64, &Frame)) -> Result<(), StoreError> {
    let d = store.dialect();
    let mut params = vec![Param::Int(run_id)];
    let only = only_vehicle(vehicle, &mut params);
    let spans = store
        .fetch(
            &format!("SELECT vehicle_id, {}, {} FROM telemetry_segments WHERE run_id = ? {only} GROUP BY vehicle_id ORDER BY vehicle_id", d.ms("MIN(start_time)"), d.ms("MAX(end_time)")),
            params,
        )
        .await?;
    for span in spans {
        let (Some(vehicle), Some(first), Some(last)) = (span[0].as_i64(), span[1].as_i64(), span[2].as_i64()) else { continue };
        let mut window = from_ms.max(first);
        let to = to_ms.min(last.saturating_add(1));
        while window < to {
            let end = (floor_to(window, DAY_MS) + DAY_MS).min(to);
            for (_, frames) in segments(store, run_id, Some(vehicle), window, end).await? {
                // A segment reaching past the window is cut here and read again in the next.
                frames.iter().filter(|f| f.time_ms >= window && f.time_ms < end).for_each(|f| each(vehicle, f));
            }
            window = end;
        }
    }
    Ok(())
}
