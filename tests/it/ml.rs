//! The learning pipeline: a dataset built from a simulated run holds a row per vehicle-minute
//! labelled from the injected ground truth (and pyarrow reads it); a model trained here on a
//! small generated dataset tells a failing vehicle from a healthy one, survives save and load,
//! and a malformed model file is refused with what is wrong.

use std::path::Path;
use std::time::Duration;

use aegis::app::dataset::{DatasetBuild, build_dataset};
use aegis::ml::dataset::{Dataset, RowKey, empty_manifest};
use aegis::ml::features::{FEATURES, feature_names, minute_of};
use aegis::ml::labels::{COMPONENTS, Labels, component_index};
use aegis::ml::model::FailureModel;
use aegis::ml::train::{Candidate, TrainSettings, train};
use aegis::ml::MlError;
use aegis::model::{Component, FailureMode, VehicleId, VehicleModel};
use aegis::orchestrator::policy::Policy;
use rand::{Rng, SeedableRng, rngs::SmallRng};

use crate::common::with_failure;

#[test]
fn a_dataset_holds_a_row_per_vehicle_minute_labelled_from_the_injected_failure() {
    let dir = tempfile::tempdir().unwrap();
    // V0001's coolant leaks from the second minute, fast enough to fail within the hour.
    let build = DatasetBuild {
        scenario: with_failure(FailureMode::CoolantLeak, 6.0, ""),
        seeds: vec![7],
        vehicles: None,
        duration: Some(Duration::from_secs(3600)),
        policy: Policy::shipped(),
        out: dir.path().join("set"),
        progress: false,
    };
    let manifest = build_dataset(&build).unwrap();
    let dataset = Dataset::load(&build.out).unwrap();
    assert_eq!(dataset.manifest, manifest);
    let run = &manifest.runs[0];
    // Frames at 1..=3600 s: minutes 0 to 60, for each of the three vehicles.
    assert_eq!(run.rows, 3 * (minute_of(3600.0) as u64 + 1));
    assert_eq!(dataset.keys.len() as u64, run.rows);
    assert_eq!(dataset.features.len(), dataset.keys.len() * FEATURES);

    let leak = run.episodes.iter().find(|e| e.mode == FailureMode::CoolantLeak).expect("the leak is an episode");
    assert_eq!((leak.vehicle, leak.onset_s), (VehicleId(1), 120.0));
    assert_eq!(run.episodes.len(), 1, "no other failure: {:?}", run.episodes);
    let fails_at = leak.failure_s().expect("it failed, or was repaired before it would have");
    assert!(fails_at < 3600.0 && fails_at > 120.0, "{fails_at}");
    let cooling = component_index(Component::CoolingSystem).unwrap();
    for (key, labels) in dataset.keys.iter().zip(&dataset.labels) {
        let ahead = key.vehicle == VehicleId(1) && key.sim_s < fails_at;
        // Within two hours of the failure for the whole hour before it, on V0001 only.
        assert_eq!(labels.fails_within(cooling, 2), ahead, "{key:?}");
        assert_eq!(labels.seconds_to_failure[cooling], ahead.then_some(fails_at - key.sim_s), "{key:?}");
        assert!(labels.seconds_to_failure.iter().enumerate().all(|(c, s)| c == cooling || s.is_none()));
        let broken = key.vehicle == VehicleId(1) && leak.failed_s.is_some_and(|f| f <= key.sim_s) && (key.sim_s <= leak.last_seen_s || leak.ongoing);
        assert_eq!(key.excluded, broken, "{key:?}");
    }
    // The leak shows in the features: V0001's coolant level falls over the hour, the others' not.
    let level = feature_names().iter().position(|n| n == "coolant_level_pct_1h_mean").unwrap();
    let last_level = |v: u32| dataset.keys.iter().enumerate().filter(|(_, k)| k.vehicle == VehicleId(v) && k.sim_s <= fails_at).map(|(i, _)| dataset.row(i)[level]).next_back().unwrap();
    assert!(last_level(1) < last_level(2) - 2.0, "{} vs {}", last_level(1), last_level(2));

    // Outside tools read it: pyarrow sees every row, the feature and label columns, and the
    // same positives.
    let script = r#"
import json, sys
import pyarrow.parquet as pq
t = pq.read_table(sys.argv[1])
print(json.dumps({"rows": t.num_rows, "columns": t.column_names, "positives": sum(t["cooling_system_within_2h"].to_pylist()),
  "types": {f.name: str(f.type) for f in t.schema}}))
"#;
    let out = std::process::Command::new("python3").arg("-c").arg(script).arg(build.out.join(&run.file)).output().expect("python3, for pyarrow (.ci/setup installs it)");
    assert!(out.status.success(), "pyarrow: {}", String::from_utf8_lossy(&out.stderr));
    let read: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(read["rows"], run.rows);
    assert_eq!(read["positives"], dataset.labels.iter().filter(|l| l.fails_within(cooling, 2)).count());
    assert_eq!(read["types"]["coolant_temp_c_5m_mean"], "float");
    assert_eq!(read["types"]["cooling_system_seconds_to_failure"], "double");
    assert_eq!(read["columns"].as_array().unwrap().len(), 5 + FEATURES + COMPONENTS.len() * 4);
}

/// A generated dataset: `vehicles` vans in one run, `minutes` rows each; the first half fail
/// (cooling) at the end, their coolant feature rising over the last two hours; the coolant
/// feature and nine others are noise, the rest constant.
fn generated(vehicles: u32, minutes: usize, seed: u64) -> Dataset {
    let mut rng = SmallRng::seed_from_u64(seed);
    let coolant = feature_names().iter().position(|n| n == "coolant_temp_c_1h_mean").unwrap();
    let cooling = component_index(Component::CoolingSystem).unwrap();
    let mut manifest = empty_manifest();
    manifest.runs.push(aegis::ml::dataset::RunEntry {
        run: "generated".into(),
        scenario: "generated".into(),
        seed,
        vehicles,
        sim_seconds: minutes as f64 * 60.0,
        file: "generated.parquet".into(),
        rows: u64::from(vehicles) * minutes as u64,
        excluded_rows: 0,
        episodes: Vec::new(),
    });
    let mut dataset = Dataset { manifest, dir: "generated".into(), keys: Vec::new(), features: Vec::new(), labels: Vec::new() };
    for v in 1..=vehicles {
        let failing = v <= vehicles / 2;
        let fails_at = minutes as f64 * 60.0 + 60.0;
        for m in 0..minutes {
            let sim_s = (m + 1) as f64 * 60.0;
            let left = fails_at - sim_s;
            let mut row: Vec<f32> = (0..FEATURES).map(|f| if f % 20 == coolant % 20 { rng.random_range(-1.0..1.0) } else { 0.0 }).collect();
            if failing && left < 7200.0 {
                row[coolant] += 3.0 * (1.0 - (left / 7200.0) as f32);
            }
            dataset.features.extend(row);
            dataset.keys.push(RowKey { run: 0, vehicle: VehicleId(v), model: VehicleModel::Van, sim_s, excluded: false });
            let mut labels = Labels { excluded: false, seconds_to_failure: [None; COMPONENTS.len()] };
            labels.seconds_to_failure[cooling] = failing.then_some(left);
            dataset.labels.push(labels);
        }
    }
    dataset
}

fn quick_settings() -> TrainSettings {
    TrainSettings {
        folds: 2,
        max_epochs: 12,
        patience: 3,
        batch: 64,
        positive_sample: 1.0,
        negative_sample: 1.0,
        search: vec![Candidate { architecture: aegis::ml::model::Architecture { hidden: vec![16], dropout: 0.0 }, learning_rate: 1e-2, weight_decay: 0.0 }],
        ..TrainSettings::default()
    }
}

#[test]
fn a_model_trained_here_tells_a_failing_vehicle_from_a_healthy_one_and_survives_save_and_load() {
    let dataset = generated(8, 240, 1);
    let (model, report) = train(&dataset, &quick_settings(), &mut |_| {}).unwrap();
    assert!(report.curves.iter().all(|c| !c.train_loss.is_empty()));
    // The search, two folds and the final fit, each with its curve, drawn into one plot.
    assert_eq!(report.curves.iter().map(|c| c.stage.as_str()).collect::<Vec<_>>(), ["search 1/1", "fold 1/2", "fold 2/2", "final"]);
    let plot_dir = tempfile::tempdir().unwrap();
    let plot = plot_dir.path().join("curves.svg");
    aegis::ml::plots::training_curves(&report.curves, &plot).unwrap();
    let svg = std::fs::read_to_string(&plot).unwrap();
    assert!(svg.starts_with("<svg") && svg.matches("<polyline").count() >= 7 && svg.contains("fold 2/2"), "{svg:.300}");
    let cooling = component_index(Component::CoolingSystem).unwrap();
    let within_2h = report.validation.iter().find(|f| f.component == "cooling_system" && f.horizon_h == 2).unwrap();
    assert!(within_2h.roc_auc > 0.75, "{within_2h:?}");

    // Fresh vehicles it never saw: an hour before failing against a healthy one.
    let fresh = generated(2, 240, 99);
    let near_failure = fresh.keys.iter().position(|k| k.vehicle == VehicleId(1) && k.sim_s == 230.0 * 60.0).unwrap();
    let healthy = fresh.keys.iter().position(|k| k.vehicle == VehicleId(2) && k.sim_s == 230.0 * 60.0).unwrap();
    let predictions = model.predict(&[fresh.row(near_failure), fresh.row(healthy)]);
    let (p_fail, p_ok) = (predictions[0].probability[cooling][0], predictions[1].probability[cooling][0]);
    assert!(p_fail > 0.5 && p_ok < 0.2, "failing {p_fail}, healthy {p_ok}");

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.aegis");
    model.save(&path).unwrap();
    let loaded = FailureModel::load(&path).unwrap();
    assert_same_model(&loaded, &model);
    let rows: Vec<&[f32]> = (0..fresh.keys.len()).map(|i| fresh.row(i)).collect();
    assert_eq!(loaded.predict(&rows), model.predict(&rows), "the same predictions after a save and a load");
}

#[test]
fn training_reproduces_itself_from_its_seed() {
    let dataset = generated(6, 120, 3);
    let mut settings = quick_settings();
    settings.max_epochs = 4;
    let outputs = |settings: &TrainSettings| {
        let (model, _) = train(&dataset, settings, &mut |_| {}).unwrap();
        model.outputs(&[dataset.row(0), dataset.row(500)])
    };
    let first = outputs(&settings);
    assert_eq!(outputs(&settings), first);
    settings.seed = 2;
    assert_ne!(outputs(&settings), first);
}

/// The same model: network, normalisation and calibration (the provenance's figures are JSON,
/// whose doubles need not come back to the last bit).
fn assert_same_model(a: &FailureModel, b: &FailureModel) {
    assert_eq!((&a.meta.architecture, &a.meta.features, &a.meta.feature_mean, &a.meta.feature_std), (&b.meta.architecture, &b.meta.features, &b.meta.feature_mean, &b.meta.feature_std));
    assert_eq!(a.meta.calibration, b.meta.calibration);
}

fn refusal(path: &Path) -> String {
    match FailureModel::load(path) {
        Err(e @ MlError::Model { .. }) => e.to_string(),
        Err(other) => panic!("expected a model error, got {other}"),
        Ok(_) => panic!("{} was accepted", path.display()),
    }
}

#[test]
fn a_malformed_or_mismatched_model_file_is_refused_with_what_is_wrong() {
    let dataset = generated(4, 60, 5);
    let mut settings = quick_settings();
    settings.max_epochs = 1;
    let (model, _) = train(&dataset, &settings, &mut |_| {}).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.aegis");
    model.save(&good).unwrap();
    let bytes = std::fs::read(&good).unwrap();
    let write = |name: &str, bytes: &[u8]| {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    };

    assert!(refusal(&write("text.aegis", b"hello")).contains("not an AEGIS model file"));
    assert!(refusal(&write("short.aegis", &bytes[..14])).contains("truncated"));
    assert!(refusal(&write("cut.aegis", &bytes[..bytes.len() - 100])).contains("weights"));
    // Made for another feature list: named, with where it differs.
    let length = u32::from_le_bytes(bytes[12..16].try_into().unwrap()) as usize;
    let mut meta: serde_json::Value = serde_json::from_slice(&bytes[16..16 + length]).unwrap();
    meta["features"][3] = "coolant_temp_c_5m_median".into();
    let meta = serde_json::to_vec(&meta).unwrap();
    let mut other = bytes[..12].to_vec();
    other.extend((meta.len() as u32).to_le_bytes());
    other.extend(&meta);
    other.extend(&bytes[16 + length..]);
    let message = refusal(&write("other.aegis", &other));
    assert!(message.contains("feature 3 is `coolant_temp_c_5m_median` there"), "{message}");
    assert!(matches!(FailureModel::load(&dir.path().join("missing.aegis")), Err(MlError::Io { .. })));
    // What was refused did not touch what was good.
    assert_same_model(&FailureModel::load(&good).unwrap(), &model);
}

#[test]
fn a_dataset_of_other_features_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let mut manifest = empty_manifest();
    manifest.features[0] = "speed".into();
    aegis::ml::dataset::write_manifest(dir.path(), &manifest).unwrap();
    let error = Dataset::load(dir.path()).unwrap_err().to_string();
    assert!(error.contains("features differ") && error.contains("manifest.json"), "{error}");
}

/// The model built into the binary was made for this build's features, and every feature reads
/// metrics that are in the telemetry catalogue.
#[test]
fn the_shipped_model_matches_the_metric_catalogue() {
    let model = FailureModel::shipped().expect("assets/models/failure.aegis fits this build (retrain it with `aegis train` if not)");
    assert_eq!(model.meta.features, feature_names());
    let catalogue: Vec<&str> = aegis::model::METRICS.iter().map(|m| m.name).collect();
    for channel in aegis::ml::features::Channel::ALL {
        assert!(model.meta.features.iter().any(|f| f.starts_with(channel.name())), "{} has features", channel.name());
        for metric in channel.metrics() {
            assert!(catalogue.contains(&metric.name()), "{} reads {}, which the catalogue lacks", channel.name(), metric.name());
        }
    }
}
