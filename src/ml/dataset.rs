//! The training dataset: one row per vehicle per minute of a run's history, its features
//! ([`super::features`]) and its labels ([`super::labels`]), as Parquet files (one per run) and
//! a `manifest.json` that says what made them. [`Collector`] turns a run's telemetry into
//! rows as it arrives; [`Dataset::load`] reads a directory back for training.
//!
//! Each file's columns: `run`, `vehicle`, `model`, `sim_s` (the end of the row's minute),
//! `excluded` (broken down: left out of training and scoring), the features in
//! [`feature_names`] order (FLOAT), then for each component `{component}_within_{h}h`
//! (BOOLEAN, h in [`HORIZONS_H`]) and `{component}_seconds_to_failure` (DOUBLE, null when no
//! failure is ahead).

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parquet::basic::{Compression, ZstdLevel};
use parquet::column::reader::ColumnReader;
use parquet::data_type::{BoolType, ByteArray, ByteArrayType, DataType, DoubleType, FloatType, Int32Type};
use parquet::file::properties::WriterProperties;
use parquet::file::reader::{FileReader, SerializedFileReader};
use parquet::file::writer::{SerializedFileWriter, SerializedRowGroupWriter};
use parquet::schema::parser::parse_message_type;
use serde::{Deserialize, Serialize};

use super::MlError;
use super::features::{FEATURES, FeatureRow, FleetFeatures, feature_list_difference, feature_names};
use super::labels::{COMPONENTS, Episode, EpisodeLog, HORIZONS_H, Labels, label};
use crate::model::{FailureMode, Telemetry, VehicleId, VehicleModel};

/// The dataset format this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;

/// Rows in a Parquet row group.
const GROUP_ROWS: usize = 65_536;

/// What a dataset directory holds and what made it (`manifest.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// [`FORMAT_VERSION`] when written.
    pub format: u32,
    /// The features, in column order.
    pub features: Vec<String>,
    /// The components labelled, in order.
    pub components: Vec<String>,
    /// The horizons labelled, in hours.
    pub horizons_h: Vec<u32>,
    /// Seconds between a vehicle's rows.
    pub stride_s: f64,
    /// The runs, one file each.
    pub runs: Vec<RunEntry>,
}

/// One run's file and what it holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunEntry {
    /// The run's name (`{scenario}-seed{seed}`, or its name in the store).
    pub run: String,
    /// The scenario it ran.
    pub scenario: String,
    /// Its seed.
    pub seed: u64,
    /// Vehicles in the fleet.
    pub vehicles: u32,
    /// Simulated seconds.
    pub sim_seconds: f64,
    /// The file, relative to the directory.
    pub file: String,
    /// Rows written.
    pub rows: u64,
    /// Of them, excluded (broken down).
    pub excluded_rows: u64,
    /// Its failure episodes, from the ground truth.
    pub episodes: Vec<Episode>,
}

impl RunEntry {
    /// Vehicle-days of history.
    pub fn vehicle_days(&self) -> f64 {
        f64::from(self.vehicles) * self.sim_seconds / 86_400.0
    }
}

/// A run's rows as they are collected, labelled at the end.
#[derive(Debug)]
pub struct Collector {
    features: FleetFeatures,
    episodes: EpisodeLog,
    rows: Vec<FeatureRow>,
    last_s: f64,
}

impl Collector {
    /// A collector for a fleet of `models`.
    pub fn new(models: BTreeMap<VehicleId, VehicleModel>) -> Self {
        Self { features: FleetFeatures::for_fleet(models), episodes: EpisodeLog::new(), rows: Vec::new(), last_s: 0.0 }
    }

    /// Takes one telemetry frame of `vehicle` sampled at `sim_s`, in the order
    /// [`FleetFeatures::observe`] expects.
    pub fn telemetry(&mut self, vehicle: VehicleId, sim_s: f64, telemetry: &Telemetry) {
        if !self.features.in_fleet(vehicle) {
            return;
        }
        let closed = self.features.observe(vehicle, sim_s, &telemetry.metrics);
        self.rows.extend(closed);
        self.episodes.record(vehicle, sim_s, &telemetry.truth);
        self.last_s = self.last_s.max(sim_s);
    }

    /// Closes the history: the last minute's rows, and every row's labels.
    pub fn finish(mut self) -> Labelled {
        let last = self.features.close();
        self.rows.extend(last);
        // A failure seen in the last minute is still present when the history ends.
        self.episodes.close(self.last_s, 60.0);
        let labels = self.rows.iter().map(|r| label(self.episodes.of(r.vehicle), r.sim_s())).collect();
        Labelled { rows: self.rows, labels, episodes: self.episodes.all().cloned().collect(), sim_seconds: self.last_s }
    }
}

/// A run's rows with their labels.
#[derive(Debug, Clone)]
pub struct Labelled {
    /// The rows, minute by minute, vehicles in order within a minute.
    pub rows: Vec<FeatureRow>,
    /// Each row's labels.
    pub labels: Vec<Labels>,
    /// The run's failure episodes.
    pub episodes: Vec<Episode>,
    /// The last simulated second seen.
    pub sim_seconds: f64,
}

/// The label columns' names, in order: `{component}_within_{h}h` for each component and
/// horizon, then `{component}_seconds_to_failure` for each component.
pub fn label_names() -> Vec<String> {
    let mut names: Vec<String> = COMPONENTS.iter().flat_map(|c| HORIZONS_H.iter().map(move |h| format!("{}_within_{h}h", c.as_str()))).collect();
    names.extend(COMPONENTS.iter().map(|c| format!("{}_seconds_to_failure", c.as_str())));
    names
}

fn schema() -> String {
    let features: String = feature_names().iter().map(|n| format!("  REQUIRED FLOAT {n};\n")).collect();
    let names = label_names();
    let (within, seconds) = names.split_at(COMPONENTS.len() * HORIZONS_H.len());
    let within: String = within.iter().map(|n| format!("  REQUIRED BOOLEAN {n};\n")).collect();
    let seconds: String = seconds.iter().map(|n| format!("  OPTIONAL DOUBLE {n};\n")).collect();
    format!(
        "message aegis_dataset {{
  REQUIRED BYTE_ARRAY run (STRING);
  REQUIRED INT32 vehicle;
  REQUIRED BYTE_ARRAY model (STRING);
  REQUIRED DOUBLE sim_s;
  REQUIRED BOOLEAN excluded;
{features}{within}{seconds}}}"
    )
}

/// The number of columns before the features.
const KEY_COLUMNS: usize = 5;

/// Writes `labelled` (run `run`) to `path` as Parquet, through a temporary file renamed into
/// place once complete.
pub fn write_run(path: &Path, run: &str, labelled: &Labelled) -> Result<(), MlError> {
    let pq = MlError::parquet(path);
    let schema = Arc::new(parse_message_type(&schema()).map_err(MlError::parquet(path))?);
    let properties = WriterProperties::builder().set_compression(Compression::ZSTD(ZstdLevel::try_new(3).map_err(MlError::parquet(path))?)).build();
    let partial = path.with_extension("parquet.partial");
    let file = File::create(&partial).map_err(MlError::io(&partial))?;
    let mut writer = SerializedFileWriter::new(file, schema, Arc::new(properties)).map_err(MlError::parquet(path))?;
    for (rows, labels) in labelled.rows.chunks(GROUP_ROWS).zip(labelled.labels.chunks(GROUP_ROWS)) {
        let mut group = writer.next_row_group().map_err(MlError::parquet(path))?;
        write_group(&mut group, run, rows, labels).map_err(MlError::parquet(path))?;
        group.close().map_err(MlError::parquet(path))?;
    }
    writer.close().map_err(pq)?;
    std::fs::rename(&partial, path).map_err(MlError::io(path))
}

fn write_group(group: &mut SerializedRowGroupWriter<'_, File>, run: &str, rows: &[FeatureRow], labels: &[Labels]) -> parquet::errors::Result<()> {
    column::<ByteArrayType>(group, &vec![ByteArray::from(run); rows.len()], None)?;
    column::<Int32Type>(group, &rows.iter().map(|r| r.vehicle.0 as i32).collect::<Vec<_>>(), None)?;
    column::<ByteArrayType>(group, &rows.iter().map(|r| ByteArray::from(r.model.as_str())).collect::<Vec<_>>(), None)?;
    column::<DoubleType>(group, &rows.iter().map(FeatureRow::sim_s).collect::<Vec<_>>(), None)?;
    column::<BoolType>(group, &labels.iter().map(|l| l.excluded).collect::<Vec<_>>(), None)?;
    for f in 0..FEATURES {
        column::<FloatType>(group, &rows.iter().map(|r| r.values[f]).collect::<Vec<_>>(), None)?;
    }
    for c in 0..COMPONENTS.len() {
        for h in HORIZONS_H {
            column::<BoolType>(group, &labels.iter().map(|l| l.fails_within(c, h)).collect::<Vec<_>>(), None)?;
        }
    }
    for c in 0..COMPONENTS.len() {
        let seconds: Vec<Option<f64>> = labels.iter().map(|l| l.seconds_to_failure[c]).collect();
        let defined: Vec<i16> = seconds.iter().map(|s| i16::from(s.is_some())).collect();
        column::<DoubleType>(group, &seconds.into_iter().flatten().collect::<Vec<_>>(), Some(&defined))?;
    }
    Ok(())
}

/// Writes the group's next column: `values` are the present ones, `defined` says which rows
/// have one (for an optional column).
fn column<T: DataType>(group: &mut SerializedRowGroupWriter<'_, File>, values: &[T::T], defined: Option<&[i16]>) -> parquet::errors::Result<()> {
    let mut writer = group.next_column()?.ok_or_else(|| parquet::errors::ParquetError::General("fewer columns than the schema".into()))?;
    writer.typed::<T>().write_batch(values, defined, None)?;
    writer.close()
}

/// Where a row came from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RowKey {
    /// Index of its run in the manifest.
    pub run: u16,
    /// The vehicle.
    pub vehicle: VehicleId,
    /// Its model.
    pub model: VehicleModel,
    /// Simulated second at the end of the row's minute.
    pub sim_s: f64,
    /// Broken down: not for training or scoring.
    pub excluded: bool,
}

/// A dataset read back: every run's rows, features in one row-major block.
#[derive(Debug, Clone)]
pub struct Dataset {
    /// The directory's manifest.
    pub manifest: Manifest,
    /// The directory.
    pub dir: PathBuf,
    /// Each row's key.
    pub keys: Vec<RowKey>,
    /// `keys.len() × FEATURES` values.
    pub features: Vec<f32>,
    /// Each row's labels.
    pub labels: Vec<Labels>,
}

impl Dataset {
    /// The features of row `i`.
    pub fn row(&self, i: usize) -> &[f32] {
        &self.features[i * FEATURES..(i + 1) * FEATURES]
    }

    /// Reads `dir`'s manifest and files, refusing a dataset of another format or feature list.
    pub fn load(dir: &Path) -> Result<Dataset, MlError> {
        let manifest = read_manifest(dir)?;
        let mut dataset = Dataset { manifest, dir: dir.to_owned(), keys: Vec::new(), features: Vec::new(), labels: Vec::new() };
        for (index, run) in dataset.manifest.runs.clone().iter().enumerate() {
            read_run(&dir.join(&run.file), index as u16, &mut dataset)?;
        }
        Ok(dataset)
    }
}

/// Reads and checks `dir/manifest.json`.
pub fn read_manifest(dir: &Path) -> Result<Manifest, MlError> {
    let path = dir.join("manifest.json");
    let text = std::fs::read_to_string(&path).map_err(MlError::io(&path))?;
    let manifest: Manifest = serde_json::from_str(&text).map_err(|e| MlError::Dataset { path: path.clone(), problem: e.to_string() })?;
    let problem = |problem: String| Err(MlError::Dataset { path: path.clone(), problem });
    if manifest.format != FORMAT_VERSION {
        return problem(format!("dataset format {} (this build reads {FORMAT_VERSION}); rebuild it with `aegis dataset build`", manifest.format));
    }
    if let Some(difference) = feature_list_difference(&manifest.features) {
        return problem(format!("{difference}; rebuild it"));
    }
    let components: Vec<String> = COMPONENTS.iter().map(|c| c.as_str().to_owned()).collect();
    if manifest.components != components || manifest.horizons_h != HORIZONS_H {
        return problem("its components or horizons differ from this build's; rebuild it".into());
    }
    Ok(manifest)
}

/// Writes `dir/manifest.json`.
pub fn write_manifest(dir: &Path, manifest: &Manifest) -> Result<(), MlError> {
    let path = dir.join("manifest.json");
    let text = serde_json::to_string_pretty(manifest).map_err(|e| MlError::Dataset { path: path.clone(), problem: e.to_string() })?;
    std::fs::write(&path, text + "\n").map_err(MlError::io(&path))
}

/// A manifest with no runs yet, for this build's features and labels.
pub fn empty_manifest() -> Manifest {
    Manifest {
        format: FORMAT_VERSION,
        features: feature_names(),
        components: COMPONENTS.iter().map(|c| c.as_str().to_owned()).collect(),
        horizons_h: HORIZONS_H.to_vec(),
        stride_s: super::features::BUCKET_S,
        runs: Vec::new(),
    }
}

/// Appends the rows of the run file at `path` (run `index` of the manifest) to `dataset`.
fn read_run(path: &Path, index: u16, dataset: &mut Dataset) -> Result<(), MlError> {
    let file = File::open(path).map_err(MlError::io(path))?;
    let reader = SerializedFileReader::new(file).map_err(MlError::parquet(path))?;
    let expected = parse_message_type(&schema()).map_err(MlError::parquet(path))?;
    let found = reader.metadata().file_metadata().schema();
    let names = |t: &parquet::schema::types::Type| t.get_fields().iter().map(|f| (f.name().to_owned(), f.get_physical_type())).collect::<Vec<_>>();
    if names(found) != names(&expected) {
        let (want, have) = (names(&expected), names(found));
        let at = want.iter().zip(&have).position(|(a, b)| a != b).unwrap_or(want.len().min(have.len()));
        let what = have.get(at).map_or("nothing".to_owned(), |(n, t)| format!("`{n}` ({t})"));
        let wanted = want.get(at).map_or("nothing".to_owned(), |(n, t)| format!("`{n}` ({t})"));
        return Err(MlError::Dataset { path: path.to_owned(), problem: format!("column {at} is {what}, expected {wanted}") });
    }
    let bad = |problem: String| MlError::Dataset { path: path.to_owned(), problem };
    for g in 0..reader.num_row_groups() {
        let group = reader.get_row_group(g).map_err(MlError::parquet(path))?;
        let n = group.metadata().num_rows() as usize;
        let col = |i: usize| group.get_column_reader(i).map_err(MlError::parquet(path));
        let vehicles = read_column::<Int32Type>(col(1)?, n, path)?;
        let models = read_column::<ByteArrayType>(col(2)?, n, path)?;
        let times = read_column::<DoubleType>(col(3)?, n, path)?;
        let excluded = read_column::<BoolType>(col(4)?, n, path)?;
        let first = dataset.keys.len();
        for i in 0..n {
            let model = VehicleModel::ALL.into_iter().find(|m| m.as_str().as_bytes() == models[i].data()).ok_or_else(|| bad(format!("row {i}: unknown vehicle model {:?}", String::from_utf8_lossy(models[i].data()))))?;
            let vehicle = u32::try_from(vehicles[i]).map_err(|_| bad(format!("row {i}: vehicle {} is negative", vehicles[i])))?;
            dataset.keys.push(RowKey { run: index, vehicle: VehicleId(vehicle), model, sim_s: times[i], excluded: excluded[i] });
        }
        let start = dataset.features.len();
        dataset.features.resize(start + n * FEATURES, 0.0);
        for f in 0..FEATURES {
            let values = read_column::<FloatType>(col(KEY_COLUMNS + f)?, n, path)?;
            for (i, v) in values.into_iter().enumerate() {
                dataset.features[start + i * FEATURES + f] = v;
            }
        }
        let seconds_from = KEY_COLUMNS + FEATURES + COMPONENTS.len() * HORIZONS_H.len();
        let mut labels = vec![Labels { excluded: false, seconds_to_failure: [None; COMPONENTS.len()] }; n];
        for (i, label) in labels.iter_mut().enumerate() {
            label.excluded = dataset.keys[first + i].excluded;
        }
        for c in 0..COMPONENTS.len() {
            let mut reader = parquet::column::reader::get_typed_column_reader::<DoubleType>(col(seconds_from + c)?);
            let (mut values, mut defined) = (Vec::with_capacity(n), Vec::with_capacity(n));
            reader.read_records(n, Some(&mut defined), None, &mut values).map_err(MlError::parquet(path))?;
            let mut present = values.into_iter();
            for (label, d) in labels.iter_mut().zip(defined) {
                label.seconds_to_failure[c] = if d > 0 { present.next() } else { None };
            }
        }
        dataset.labels.extend(labels);
    }
    Ok(())
}

/// Reads `n` values of a required column whose type the schema check has established.
fn read_column<T: DataType>(column: ColumnReader, n: usize, path: &Path) -> Result<Vec<T::T>, MlError> {
    let mut reader = parquet::column::reader::get_typed_column_reader::<T>(column);
    let mut values = Vec::with_capacity(n);
    let (records, _, _) = reader.read_records(n, None, None, &mut values).map_err(MlError::parquet(path))?;
    if records != n {
        return Err(MlError::Dataset { path: path.to_owned(), problem: format!("a column holds {records} rows of its group's {n}") });
    }
    Ok(values)
}

/// Episodes by failure mode: how many there were, and how many reached functional failure.
pub fn episode_counts<'a>(episodes: impl Iterator<Item = &'a Episode>) -> BTreeMap<FailureMode, (u32, u32)> {
    let mut counts = BTreeMap::new();
    for e in episodes {
        let entry = counts.entry(e.mode).or_insert((0, 0));
        entry.0 += 1;
        entry.1 += u32::from(e.failed_s.is_some());
    }
    counts
}
