//! Telemetry to Parquet: one file per run and UTC day, every metric a typed column in its
//! unit, and beside each row its ground truth (the failure ahead of the vehicle and the
//! seconds left until its functional failure), so that an exported month is a training set.
//!
//! Retention exports a day before it drops it ([`super::lifecycle`]); `aegis store export`
//! exports any range on demand. A file is written beside its final name, synced, then
//! renamed: a file under a `.parquet` name is always whole.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parquet::basic::{Compression, ZstdLevel};
use parquet::data_type::{BoolType, ByteArray, ByteArrayType, DataType, DoubleType, Int32Type, Int64Type};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;
use parquet::file::writer::{SerializedFileWriter, SerializedRowGroupWriter};
use parquet::schema::parser::parse_message_type;

use super::frames;
use super::segment::Frame;
use super::{DAY_MS, Param, RunTarget, Store, StoreError, floor_to};
use crate::model::{METRICS, Metric, WallTime};

/// One exported file.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Exported {
    /// Where it is.
    pub path: PathBuf,
    /// Telemetry rows in it.
    pub rows: u64,
}

/// A failure as the run's ground truth knows it, for the labels.
#[derive(Debug, Clone, PartialEq)]
struct Failure {
    mode: String,
    component: String,
    onset_s: f64,
    functional_failure_s: Option<f64>,
}

/// The label of a frame at `sim_time`: the first failure of its vehicle not yet past its
/// functional failure, whether it has begun or not (a failure after the exported window
/// labels the rows before it too).
fn label(failures: &[Failure], sim_time: f64) -> Option<&Failure> {
    failures.iter().filter(|f| f.functional_failure_s.is_none_or(|ff| ff >= sim_time)).min_by(|a, b| {
        let key = |f: &Failure| (f.functional_failure_s.unwrap_or(f64::INFINITY), f.onset_s);
        key(a).partial_cmp(&key(b)).unwrap_or(std::cmp::Ordering::Equal)
    })
}

/// The UTC date of `ms`, `YYYY-MM-DD`.
pub(super) fn date(ms: i64) -> String {
    WallTime::from_unix_ms(ms.max(0) as u64).to_string().chars().take(10).collect()
}

/// The file of run `run` for the day starting at `day_ms`, under `dir`.
pub fn day_path(dir: &Path, run: &str, day_ms: i64) -> PathBuf {
    dir.join(run).join(format!("{}.parquet", date(day_ms)))
}

/// Exports the telemetry of `run` in `[from_ms, to_ms)` under `dir`, one file per UTC day that
/// has rows (a day only partly in the range holds only that part). Returns the files written.
pub async fn export(store: &Store, run: &RunTarget, from_ms: i64, to_ms: i64, dir: &Path) -> Result<Vec<Exported>, StoreError> {
    let Some((first, last)) = extent(store, run.run_id).await? else { return Ok(vec![]) };
    let (from_ms, to_ms) = (from_ms.max(first), to_ms.min(last + 1));
    let failures = failures(store, run.run_id).await?;
    let mut written = Vec::new();
    let mut day = floor_to(from_ms, DAY_MS);
    while day < to_ms {
        let path = day_path(dir, &run.name, day);
        if let Some(rows) = write_day(store, run, &failures, (from_ms.max(day), to_ms.min(day + DAY_MS)), &path).await? {
            written.push(Exported { path, rows });
        }
        day += DAY_MS;
    }
    Ok(written)
}

/// The first and last telemetry times of run `run_id`, raw or compacted.
pub async fn extent(store: &Store, run_id: i64) -> Result<Option<(i64, i64)>, StoreError> {
    let d = store.dialect();
    let rows = store
        .fetch(
            &format!(
                "SELECT {}, {} FROM telemetry WHERE run_id = ? UNION ALL SELECT {}, {} FROM telemetry_segments WHERE run_id = ?",
                d.ms("MIN(time)"),
                d.ms("MAX(time)"),
                d.ms("MIN(start_time)"),
                d.ms("MAX(end_time)")
            ),
            vec![Param::Int(run_id), Param::Int(run_id)],
        )
        .await?;
    let firsts = rows.iter().filter_map(|r| r[0].as_i64());
    let lasts = rows.iter().filter_map(|r| r[1].as_i64());
    Ok(firsts.min().zip(lasts.max()))
}

/// Every failure of run `run_id` by vehicle.
async fn failures(store: &Store, run_id: i64) -> Result<BTreeMap<i64, Vec<Failure>>, StoreError> {
    let rows = store.fetch("SELECT vehicle_id, mode, component, onset_s, functional_failure_s FROM failures WHERE run_id = ?", vec![Param::Int(run_id)]).await?;
    let mut by_vehicle: BTreeMap<i64, Vec<Failure>> = BTreeMap::new();
    for row in rows {
        let Some(vehicle) = row[0].as_i64() else { continue };
        by_vehicle.entry(vehicle).or_default().push(Failure {
            mode: row[1].as_str().unwrap_or_default().to_owned(),
            component: row[2].as_str().unwrap_or_default().to_owned(),
            onset_s: row[3].as_f64().unwrap_or_default(),
            functional_failure_s: row[4].as_f64(),
        });
    }
    Ok(by_vehicle)
}

/// The Parquet schema: the row's key, every metric in its unit, then the labels.
fn schema() -> String {
    let metrics: String = METRICS.iter().map(|m| format!("  REQUIRED DOUBLE {};\n", m.name)).collect();
    format!(
        "message aegis_telemetry {{
  REQUIRED INT64 time (TIMESTAMP(MILLIS,true));
  REQUIRED INT32 vehicle;
  REQUIRED BYTE_ARRAY model (STRING);
  REQUIRED INT64 seq;
  REQUIRED DOUBLE sim_time_s;
  REQUIRED INT64 wall_time (TIMESTAMP(MILLIS,true));
{metrics}  OPTIONAL BYTE_ARRAY failure_mode (STRING);
  OPTIONAL BYTE_ARRAY failure_component (STRING);
  REQUIRED BOOLEAN failing;
  OPTIONAL DOUBLE seconds_to_failure;
}}"
    )
}

/// Writes the rows of `run` in `[from_ms, to_ms)` (within one day) to `path`, a row group per
/// vehicle; `None`, and no file, when there are none.
async fn write_day(store: &Store, run: &RunTarget, failures: &BTreeMap<i64, Vec<Failure>>, (from_ms, to_ms): (i64, i64), path: &Path) -> Result<Option<u64>, StoreError> {
    let problem = |problem: String| StoreError::Export { path: path.display().to_string(), problem };
    let vehicles: Vec<i64> = store
        .fetch("SELECT vehicle_id FROM vehicles WHERE run_id = ? ORDER BY vehicle_id", vec![Param::Int(run.run_id)])
        .await?
        .iter()
        .filter_map(|r| r[0].as_i64())
        .collect();
    let schema = Arc::new(parse_message_type(&schema()).map_err(|e| problem(format!("schema: {e}")))?);
    let metadata = vec![
        KeyValue::new("aegis.run".to_owned(), run.name.clone()),
        KeyValue::new("aegis.from".to_owned(), WallTime::from_unix_ms(from_ms.max(0) as u64).to_string()),
        KeyValue::new("aegis.to".to_owned(), WallTime::from_unix_ms(to_ms.max(0) as u64).to_string()),
        KeyValue::new("aegis.units".to_owned(), serde_json::to_string(&METRICS.iter().map(|m| (m.name, m.unit)).collect::<BTreeMap<_, _>>()).unwrap_or_default()),
    ];
    let properties = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(3).map_err(|e| problem(e.to_string()))?))
        .set_key_value_metadata(Some(metadata))
        .build();
    let partial = path.with_extension("parquet.partial");
    let mut writer: Option<SerializedFileWriter<File>> = None;
    let mut rows = 0;
    for vehicle in vehicles {
        let frames = frames::range(store, run.run_id, vehicle, from_ms, to_ms, Metric::ALL, usize::MAX >> 1).await?;
        if frames.is_empty() {
            continue;
        }
        if writer.is_none() {
            if let Some(parent) = partial.parent() {
                std::fs::create_dir_all(parent).map_err(|e| problem(e.to_string()))?;
            }
            let file = File::create(&partial).map_err(|e| problem(e.to_string()))?;
            writer = Some(SerializedFileWriter::new(file, schema.clone(), Arc::new(properties.clone())).map_err(|e| problem(e.to_string()))?);
        }
        let writer = writer.as_mut().expect("opened above");
        let mut group = writer.next_row_group().map_err(|e| problem(e.to_string()))?;
        let mine = failures.get(&vehicle).map_or(&[][..], Vec::as_slice);
        write_group(&mut group, vehicle, run.model_of(vehicle), &frames, mine).map_err(|e| problem(e.to_string()))?;
        group.close().map_err(|e| problem(e.to_string()))?;
        rows += frames.len() as u64;
    }
    let Some(writer) = writer else { return Ok(None) };
    let mut file = writer.into_inner().map_err(|e| problem(e.to_string()))?;
    // On disk before the rename, and the rename before anything is dropped.
    file.flush().and_then(|()| file.sync_all()).and_then(|()| std::fs::rename(&partial, path)).map_err(|e| problem(e.to_string()))?;
    if let Some(parent) = path.parent().and_then(|p| File::open(p).ok()) {
        parent.sync_all().map_err(|e| problem(e.to_string()))?;
    }
    Ok(Some(rows))
}

/// One vehicle's frames as a row group, column by column in the schema's order.
fn write_group(group: &mut SerializedRowGroupWriter<'_, File>, vehicle: i64, model: &str, frames: &[Frame], failures: &[Failure]) -> parquet::errors::Result<()> {
    let labels: Vec<Option<&Failure>> = frames.iter().map(|f| label(failures, f.sim_time)).collect();
    let present: Vec<i16> = labels.iter().map(|l| i16::from(l.is_some())).collect();
    let known: Vec<&Failure> = labels.iter().flatten().copied().collect();
    let seconds: Vec<Option<f64>> = frames.iter().zip(&labels).map(|(f, l)| l.and_then(|l| l.functional_failure_s).map(|ff| ff - f.sim_time)).collect();

    column::<Int64Type>(group, &frames.iter().map(|f| f.time_ms).collect::<Vec<_>>(), None)?;
    column::<Int32Type>(group, &vec![vehicle as i32; frames.len()], None)?;
    column::<ByteArrayType>(group, &vec![ByteArray::from(model); frames.len()], None)?;
    column::<Int64Type>(group, &frames.iter().map(|f| f.seq).collect::<Vec<_>>(), None)?;
    column::<DoubleType>(group, &frames.iter().map(|f| f.sim_time).collect::<Vec<_>>(), None)?;
    column::<Int64Type>(group, &frames.iter().map(|f| f.wall_ms).collect::<Vec<_>>(), None)?;
    for metric in Metric::ALL {
        column::<DoubleType>(group, &frames.iter().map(|f| frames::reading(f, *metric)).collect::<Vec<_>>(), None)?;
    }
    column::<ByteArrayType>(group, &known.iter().map(|f| ByteArray::from(f.mode.as_str())).collect::<Vec<_>>(), Some(&present))?;
    column::<ByteArrayType>(group, &known.iter().map(|f| ByteArray::from(f.component.as_str())).collect::<Vec<_>>(), Some(&present))?;
    column::<BoolType>(group, &frames.iter().zip(&labels).map(|(f, l)| l.is_some_and(|l| l.onset_s <= f.sim_time)).collect::<Vec<_>>(), None)?;
    column::<DoubleType>(group, &seconds.iter().flatten().copied().collect::<Vec<_>>(), Some(&seconds.iter().map(|s| i16::from(s.is_some())).collect::<Vec<_>>()))?;
    Ok(())
}

/// Writes the group's next column: `values` are the present ones, `defined` says which rows
/// have one (for an optional column).
fn column<T: DataType>(group: &mut SerializedRowGroupWriter<'_, File>, values: &[T::T], defined: Option<&[i16]>) -> parquet::errors::Result<()> {
    let mut writer = group.next_column()?.ok_or_else(|| parquet::errors::ParquetError::General("fewer columns than the schema".into()))?;
    writer.typed::<T>().write_batch(values, defined, None)?;
    writer.close()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failure(mode: &str, onset_s: f64, ff: Option<f64>) -> Failure {
        Failure { mode: mode.to_owned(), component: "engine".to_owned(), onset_s, functional_failure_s: ff }
    }

    #[test]
    fn a_row_is_labelled_with_the_next_failure_ahead_even_before_it_begins() {
        let failures = [failure("late", 50_000.0, Some(60_000.0)), failure("early", 100.0, Some(1_000.0)), failure("open", 2_000.0, None)];
        assert_eq!(label(&failures, 0.0).map(|f| f.mode.as_str()), Some("early"));
        assert_eq!(label(&failures, 1_000.0).map(|f| f.mode.as_str()), Some("early"));
        // Past the first one's functional failure, the next with a known end.
        assert_eq!(label(&failures, 1_001.0).map(|f| f.mode.as_str()), Some("late"));
        assert_eq!(label(&failures, 60_001.0).map(|f| f.mode.as_str()), Some("open"));
        assert_eq!(label(&[], 5.0), None);
    }

    #[test]
    fn the_schema_parses_and_names_every_metric() {
        let schema = parse_message_type(&schema()).expect("schema");
        assert_eq!(schema.get_fields().len(), 6 + METRICS.len() + 4);
    }
}
