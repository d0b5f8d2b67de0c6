//! Training: folds grouped by vehicle and run (no vehicle's history on both sides of a split),
//! a small hyperparameter search on the first fold, cross-validation of the chosen settings for
//! out-of-fold predictions, Platt calibration fitted on those, and a final model on every row
//! for the number of epochs cross-validation found. Early stopping on the validation loss;
//! every epoch reported to a callback (the command line draws a progress bar).

use std::collections::BTreeMap;
use std::time::Instant;

use burn::module::Module;
use burn::optim::{AdamWConfig, GradientsParams};
use burn::tensor::{Device, Tensor, TensorData};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng, rngs::SmallRng};
use serde::Serialize;

use super::MlError;
use super::dataset::Dataset;
use super::features::{FEATURES, feature_names};
use super::labels::{COMPONENTS, HORIZONS_H};
use super::metrics::{average_precision, brier, roc_auc};
use super::model::{Architecture, FailureModel, MODEL_FORMAT, Mlp, ModelMeta, OUTPUTS, PROBABILITIES, Platt, TIME_HORIZON_H, forward_rows, normalise, probability_index};

/// How to train.
#[derive(Debug, Clone, Serialize)]
pub struct TrainSettings {
    /// Seed of the folds, the sampling, the initial weights and the batch order.
    pub seed: u64,
    /// Folds of the cross-validation (at least 2).
    pub folds: usize,
    /// Epochs at most.
    pub max_epochs: usize,
    /// Epochs without a better validation loss before stopping.
    pub patience: usize,
    /// Rows in a batch.
    pub batch: usize,
    /// Share of the rows with a failure ahead within the longest horizon kept for training
    /// (neighbouring minutes say nearly the same).
    pub positive_sample: f64,
    /// Share of the other rows kept; those kept weigh the inverse, so the loss stays unbiased.
    pub negative_sample: f64,
    /// The settings tried on the first fold.
    pub search: Vec<Candidate>,
}

/// One point of the hyperparameter search.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Candidate {
    /// The network.
    pub architecture: Architecture,
    /// Adam's learning rate.
    pub learning_rate: f64,
    /// Decoupled weight decay.
    pub weight_decay: f32,
}

impl Default for TrainSettings {
    fn default() -> Self {
        let candidate = |hidden: Vec<usize>, learning_rate: f64| Candidate { architecture: Architecture { hidden, dropout: 0.1 }, learning_rate, weight_decay: 1e-4 };
        Self {
            seed: 1,
            folds: 5,
            max_epochs: 40,
            patience: 4,
            batch: 256,
            positive_sample: 0.5,
            negative_sample: 0.1,
            search: vec![candidate(vec![64, 64], 1e-3), candidate(vec![128, 64], 1e-3), candidate(vec![64, 64], 3e-3), candidate(vec![32], 3e-3)],
        }
    }
}

/// What training reports as it goes.
#[derive(Debug, Clone)]
pub struct EpochReport {
    /// Which training: `search 2/4`, `fold 3/5`, `final`.
    pub stage: String,
    /// Epoch, from 1.
    pub epoch: usize,
    /// Epochs at most.
    pub max_epochs: usize,
    /// Mean training loss of the epoch.
    pub train_loss: f64,
    /// Validation loss after it (none for the final model).
    pub val_loss: Option<f64>,
}

/// One training's curve.
#[derive(Debug, Clone, Serialize)]
pub struct Curve {
    /// Which training.
    pub stage: String,
    /// Training loss per epoch.
    pub train_loss: Vec<f64>,
    /// Validation loss per epoch.
    pub val_loss: Vec<f64>,
    /// The epoch (from 1) whose weights were kept.
    pub best_epoch: usize,
}

/// How one probability output did out of fold.
#[derive(Debug, Clone, Serialize)]
pub struct OutputFigures {
    /// Component.
    pub component: String,
    /// Horizon in hours.
    pub horizon_h: u32,
    /// Rows labelled positive.
    pub positives: usize,
    /// Area under the ROC curve.
    pub roc_auc: f64,
    /// Average precision (area under the precision-recall curve).
    pub average_precision: f64,
    /// Brier score of the calibrated probabilities.
    pub brier: f64,
    /// Brier score before calibration.
    pub brier_uncalibrated: f64,
}

/// What training did: the search, the folds, the figures; it goes into the model file.
#[derive(Debug, Clone, Serialize)]
pub struct TrainReport {
    /// The settings.
    pub settings: TrainSettings,
    /// The dataset's directory and runs.
    pub dataset: serde_json::Value,
    /// Rows used (not excluded), and of them kept for training after sampling.
    pub rows: usize,
    /// Each candidate's best validation loss on the first fold.
    pub search: Vec<(Candidate, f64)>,
    /// The candidate chosen.
    pub chosen: Candidate,
    /// Epochs the final model trained for.
    pub final_epochs: usize,
    /// Out-of-fold figures of every probability output.
    pub validation: Vec<OutputFigures>,
    /// Mean absolute error of the hours-to-failure estimate where a failure was within
    /// [`TIME_HORIZON_H`], out of fold.
    pub hours_to_failure_mae: f64,
    /// Every training's loss curve.
    pub curves: Vec<Curve>,
    /// Wall seconds training took.
    pub seconds: f64,
}

/// The rows training may use and their targets.
struct Prepared<'a> {
    dataset: &'a Dataset,
    /// Indices of rows that are not excluded.
    rows: Vec<usize>,
    /// Each used row's fold.
    fold: Vec<usize>,
    /// Each used row's weight when sampled for training (0: not sampled).
    weight: Vec<f32>,
    /// `PROBABILITIES` targets per used row.
    y: Vec<f32>,
    /// `COMPONENTS` time targets (`ln(1 + hours)`) and masks per used row.
    time: Vec<f32>,
    time_mask: Vec<f32>,
}

impl<'a> Prepared<'a> {
    fn new(dataset: &'a Dataset, settings: &TrainSettings) -> Result<Self, MlError> {
        let rows: Vec<usize> = (0..dataset.keys.len()).filter(|&i| !dataset.keys[i].excluded).collect();
        if rows.len() < 10 * settings.folds {
            return Err(MlError::Training(format!("{} usable rows are too few for {} folds", rows.len(), settings.folds)));
        }
        let folds = group_folds(dataset, &rows, settings.folds, settings.seed);
        let mut rng = SmallRng::seed_from_u64(settings.seed ^ 0x005A_3F1E);
        let (mut y, mut time, mut time_mask, mut weight) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let longest = HORIZONS_H.len() - 1;
        for &i in &rows {
            let label = &dataset.labels[i];
            for c in 0..COMPONENTS.len() {
                for &hours in &HORIZONS_H {
                    y.push(f32::from(u8::from(label.fails_within(c, hours))));
                }
            }
            for c in 0..COMPONENTS.len() {
                let near = label.seconds_to_failure[c].map(|s| (s / 3600.0) as f32).filter(|h| *h <= TIME_HORIZON_H);
                time.push(near.map_or(0.0, f32::ln_1p));
                time_mask.push(f32::from(u8::from(near.is_some())));
            }
            let positive = (0..COMPONENTS.len()).any(|c| label.fails_within(c, HORIZONS_H[longest]));
            let keep = if positive { settings.positive_sample } else { settings.negative_sample };
            weight.push(if rng.random_bool(keep.clamp(0.0, 1.0)) { (1.0 / keep) as f32 } else { 0.0 });
        }
        if !y.iter().any(|&v| v > 0.0) {
            return Err(MlError::Training("no row has a failure ahead: nothing to learn".into()));
        }
        Ok(Self { dataset, rows, fold: folds, weight, y, time, time_mask })
    }

    fn features(&self, used: usize) -> &[f32] {
        self.dataset.row(self.rows[used])
    }
}

/// Each used row's fold: the vehicles of each run are shuffled and dealt round the folds, so a
/// vehicle's history lies in one fold only.
fn group_folds(dataset: &Dataset, rows: &[usize], folds: usize, seed: u64) -> Vec<usize> {
    let mut groups: Vec<(u16, u32)> = rows.iter().map(|&i| (dataset.keys[i].run, dataset.keys[i].vehicle.0)).collect();
    groups.sort_unstable();
    groups.dedup();
    groups.shuffle(&mut SmallRng::seed_from_u64(seed));
    let of: BTreeMap<(u16, u32), usize> = groups.iter().enumerate().map(|(n, g)| (*g, n % folds)).collect();
    rows.iter().map(|&i| of[&(dataset.keys[i].run, dataset.keys[i].vehicle.0)]).collect()
}

/// The mean and standard deviation of each feature over `used` rows (a constant feature gets
/// 1, so that it normalises to 0 rather than to infinity).
fn normalisation(data: &Prepared, used: &[usize]) -> (Vec<f32>, Vec<f32>) {
    let mut sum = vec![0.0f64; FEATURES];
    let mut sq = vec![0.0f64; FEATURES];
    for &u in used {
        for (f, &v) in data.features(u).iter().enumerate() {
            sum[f] += f64::from(v);
            sq[f] += f64::from(v) * f64::from(v);
        }
    }
    let n = used.len().max(1) as f64;
    let mean: Vec<f32> = sum.iter().map(|s| (s / n) as f32).collect();
    let std = sum.iter().zip(&sq).map(|(s, q)| (q / n - (s / n) * (s / n)).max(0.0).sqrt()).map(|s| if s > 1e-6 { s as f32 } else { 1.0 }).collect();
    (mean, std)
}

/// A network trained on `train` rows, validated on `val` rows (early stopping) or, without
/// them, for exactly `epochs`.
struct Fit {
    net: Mlp,
    curve: Curve,
}

#[allow(clippy::too_many_arguments)]
fn fit(data: &Prepared, train: &[usize], val: &[usize], norm: &(Vec<f32>, Vec<f32>), candidate: &Candidate, settings: &TrainSettings, epochs: usize, stage: &str, report: &mut dyn FnMut(&EpochReport)) -> Fit {
    let device = Device::flex().autodiff();
    device.seed(settings.seed);
    let mut net = Mlp::new(&candidate.architecture, &device);
    let mut optim = AdamWConfig::new().with_weight_decay(candidate.weight_decay).init();
    let mut rng = SmallRng::seed_from_u64(settings.seed ^ 0x000B_A7C4);
    let mut order: Vec<usize> = train.iter().copied().filter(|&u| data.weight[u] > 0.0).collect();
    let mut curve = Curve { stage: stage.to_owned(), train_loss: Vec::new(), val_loss: Vec::new(), best_epoch: 0 };
    let mut best: Option<(f64, Mlp)> = None;
    for epoch in 1..=epochs {
        order.shuffle(&mut rng);
        let (mut total, mut batches) = (0.0, 0usize);
        for batch in order.chunks(settings.batch) {
            let (x, y, w, t, m) = batch_tensors(data, batch, norm, &device, true);
            let loss = loss(net.forward(x), y, w, t, m);
            total += f64::from(loss.clone().into_scalar::<f32>());
            batches += 1;
            let grads = GradientsParams::from_grads(loss.backward(), &net);
            net = optim.step(candidate.learning_rate, net, grads);
        }
        let train_loss = total / batches.max(1) as f64;
        let val_loss = (!val.is_empty()).then(|| validation_loss(&net.valid(), data, val, norm));
        curve.train_loss.push(train_loss);
        report(&EpochReport { stage: stage.to_owned(), epoch, max_epochs: epochs, train_loss, val_loss });
        match val_loss {
            Some(v) => {
                curve.val_loss.push(v);
                if best.as_ref().is_none_or(|(b, _)| v < *b) {
                    best = Some((v, net.clone()));
                    curve.best_epoch = epoch;
                } else if epoch - curve.best_epoch >= settings.patience {
                    break;
                }
            }
            None => curve.best_epoch = epoch,
        }
    }
    let net = best.map_or(net, |(_, net)| net);
    Fit { net: net.valid(), curve }
}

/// A batch's tensors: normalised features, probability targets, their weights, time targets
/// and their mask.
fn batch_tensors(data: &Prepared, batch: &[usize], norm: &(Vec<f32>, Vec<f32>), device: &Device, weighted: bool) -> (Tensor<2>, Tensor<2>, Tensor<2>, Tensor<2>, Tensor<2>) {
    let n = batch.len();
    let rows: Vec<&[f32]> = batch.iter().map(|&u| data.features(u)).collect();
    let x = normalise(&rows, &norm.0, &norm.1);
    let gather = |source: &[f32], width: usize| batch.iter().flat_map(|&u| source[u * width..(u + 1) * width].iter().copied()).collect::<Vec<f32>>();
    let w: Vec<f32> = batch.iter().flat_map(|&u| std::iter::repeat_n(if weighted { data.weight[u] } else { 1.0 }, PROBABILITIES)).collect();
    let tensor = |values: Vec<f32>, width: usize| Tensor::<2>::from_data(TensorData::new(values, [n, width]), device);
    (
        tensor(x, FEATURES),
        tensor(gather(&data.y, PROBABILITIES), PROBABILITIES),
        tensor(w, PROBABILITIES),
        tensor(gather(&data.time, COMPONENTS.len()), COMPONENTS.len()),
        tensor(gather(&data.time_mask, COMPONENTS.len()), COMPONENTS.len()),
    )
}

/// Weighted binary cross-entropy of the probability logits (in its stable form
/// `max(z, 0) − z·y + ln(1 + e^−|z|)`), plus the squared error of the time head where a failure
/// is near.
fn loss(out: Tensor<2>, y: Tensor<2>, w: Tensor<2>, t: Tensor<2>, m: Tensor<2>) -> Tensor<1> {
    let n = out.dims()[0];
    let z = out.clone().slice([0..n, 0..PROBABILITIES]);
    let bce = z.clone().clamp_min(0.0) - z.clone() * y + z.abs().neg().exp().log1p();
    let probability_loss = (bce * w.clone()).sum() / w.sum();
    let time = out.slice([0..n, PROBABILITIES..OUTPUTS]);
    let time_loss = ((time - t).powf_scalar(2.0) * m.clone()).sum() / (m.sum() + 1.0);
    probability_loss + time_loss * 0.05
}

/// The unweighted loss over every `val` row.
fn validation_loss(net: &Mlp, data: &Prepared, val: &[usize], norm: &(Vec<f32>, Vec<f32>)) -> f64 {
    let device = Device::flex();
    let (mut total, mut count) = (0.0, 0usize);
    for batch in val.chunks(4096) {
        let (x, y, w, t, m) = batch_tensors(data, batch, norm, &device, false);
        total += f64::from(loss(net.forward(x), y, w, t, m).into_scalar::<f32>()) * batch.len() as f64;
        count += batch.len();
    }
    total / count.max(1) as f64
}

/// Raw outputs of `net` for `rows`.
fn outputs(net: &Mlp, data: &Prepared, rows: &[usize], norm: &(Vec<f32>, Vec<f32>)) -> Vec<[f32; OUTPUTS]> {
    rows.chunks(4096)
        .flat_map(|batch| {
            let features: Vec<&[f32]> = batch.iter().map(|&u| data.features(u)).collect();
            forward_rows(net, &features, &norm.0, &norm.1)
        })
        .collect()
}

/// Trains a model on `dataset`, reporting each epoch to `report`.
pub fn train(dataset: &Dataset, settings: &TrainSettings, report: &mut dyn FnMut(&EpochReport)) -> Result<(FailureModel, TrainReport), MlError> {
    if settings.folds < 2 || settings.search.is_empty() || settings.batch == 0 || settings.max_epochs == 0 {
        return Err(MlError::Training("expected at least 2 folds, one candidate, a batch and an epoch".into()));
    }
    let started = Instant::now();
    let data = Prepared::new(dataset, settings)?;
    let all: Vec<usize> = (0..data.rows.len()).collect();
    let split = |k: usize| -> (Vec<usize>, Vec<usize>) { all.iter().partition(|&&u| data.fold[u] != k) };
    let mut curves = Vec::new();

    // The search, on the first fold.
    let (train0, val0) = split(0);
    let norm0 = normalisation(&data, &train0);
    let mut search = Vec::new();
    for (i, candidate) in settings.search.iter().enumerate() {
        let stage = format!("search {}/{}", i + 1, settings.search.len());
        let fitted = fit(&data, &train0, &val0, &norm0, candidate, settings, settings.max_epochs, &stage, report);
        let best = fitted.curve.val_loss.iter().copied().fold(f64::INFINITY, f64::min);
        curves.push(fitted.curve);
        search.push((candidate.clone(), best));
    }
    let chosen = search.iter().min_by(|a, b| a.1.total_cmp(&b.1)).map(|(c, _)| c.clone()).expect("at least one candidate");

    // Cross-validation of the chosen settings: out-of-fold outputs of every row.
    let mut oof = vec![[0.0f32; OUTPUTS]; data.rows.len()];
    let mut best_epochs = Vec::new();
    for k in 0..settings.folds {
        let (train_k, val_k) = split(k);
        if val_k.is_empty() {
            continue;
        }
        let norm = normalisation(&data, &train_k);
        let stage = format!("fold {}/{}", k + 1, settings.folds);
        let fitted = fit(&data, &train_k, &val_k, &norm, &chosen, settings, settings.max_epochs, &stage, report);
        for (&u, o) in val_k.iter().zip(outputs(&fitted.net, &data, &val_k, &norm)) {
            oof[u] = o;
        }
        best_epochs.push(fitted.curve.best_epoch.max(1));
        curves.push(fitted.curve);
    }

    // Calibration on the out-of-fold logits, and the figures it gives.
    let calibration: Vec<Platt> = (0..PROBABILITIES).map(|p| fit_platt(&oof.iter().map(|o| o[p]).collect::<Vec<_>>(), &(0..data.rows.len()).map(|u| data.y[u * PROBABILITIES + p]).collect::<Vec<_>>())).collect();
    let mut validation = Vec::new();
    for (c, component) in COMPONENTS.iter().enumerate() {
        for (h, &hours) in HORIZONS_H.iter().enumerate() {
            let p = probability_index(c, h);
            let labels: Vec<bool> = (0..data.rows.len()).map(|u| data.y[u * PROBABILITIES + p] > 0.5).collect();
            let raw: Vec<f64> = oof.iter().map(|o| f64::from(Platt::IDENTITY.probability(o[p]))).collect();
            let calibrated: Vec<f64> = oof.iter().map(|o| f64::from(calibration[p].probability(o[p]))).collect();
            validation.push(OutputFigures {
                component: component.as_str().to_owned(),
                horizon_h: hours,
                positives: labels.iter().filter(|&&l| l).count(),
                roc_auc: roc_auc(&calibrated, &labels),
                average_precision: average_precision(&calibrated, &labels),
                brier: brier(&calibrated, &labels),
                brier_uncalibrated: brier(&raw, &labels),
            });
        }
    }
    let (mut error, mut near) = (0.0, 0usize);
    for (u, o) in oof.iter().enumerate() {
        for c in 0..COMPONENTS.len() {
            if data.time_mask[u * COMPONENTS.len() + c] > 0.0 {
                error += f64::from((o[PROBABILITIES + c].exp_m1() - data.time[u * COMPONENTS.len() + c].exp_m1()).abs());
                near += 1;
            }
        }
    }

    // The final model, on every row, for the median of the folds' best epoch counts.
    best_epochs.sort_unstable();
    let final_epochs = best_epochs.get(best_epochs.len() / 2).copied().unwrap_or(settings.max_epochs);
    let norm = normalisation(&data, &all);
    let fitted = fit(&data, &all, &[], &norm, &chosen, settings, final_epochs, "final", report);
    curves.push(fitted.curve);

    let dataset_info = serde_json::json!({
        "dir": dataset.dir.display().to_string(),
        "runs": dataset.manifest.runs.iter().map(|r| serde_json::json!({"run": r.run, "scenario": r.scenario, "seed": r.seed, "vehicles": r.vehicles, "sim_seconds": r.sim_seconds, "rows": r.rows})).collect::<Vec<_>>(),
    });
    let train_report = TrainReport {
        settings: settings.clone(),
        dataset: dataset_info,
        rows: data.rows.len(),
        search,
        chosen: chosen.clone(),
        final_epochs,
        validation,
        hours_to_failure_mae: error / near.max(1) as f64,
        curves,
        seconds: started.elapsed().as_secs_f64(),
    };
    let meta = ModelMeta {
        format: MODEL_FORMAT,
        architecture: chosen.architecture.clone(),
        features: feature_names(),
        feature_mean: norm.0,
        feature_std: norm.1,
        components: COMPONENTS.iter().map(|c| c.as_str().to_owned()).collect(),
        horizons_h: HORIZONS_H.to_vec(),
        calibration,
        provenance: serde_json::json!({
            "trained_with": settings,
            "dataset": train_report.dataset,
            "rows": train_report.rows,
            "search": train_report.search,
            "final_epochs": final_epochs,
            "validation": train_report.validation,
            "hours_to_failure_mae": train_report.hours_to_failure_mae,
        }),
    };
    Ok((FailureModel::new(meta, fitted.net), train_report))
}

/// Platt scaling: the `a`, `b` that minimise the log loss of `σ(a·z + b)` against `labels`
/// (Newton's method on the two parameters, each step halved until the loss falls, with Platt's
/// smoothed targets so that a perfectly separated output does not run off to infinity). Never
/// worse than no recalibration on the data it is fitted to.
pub fn fit_platt(logits: &[f32], labels: &[f32]) -> Platt {
    let positives = labels.iter().filter(|&&y| y > 0.5).count() as f64;
    let negatives = labels.len() as f64 - positives;
    if positives == 0.0 || negatives == 0.0 {
        return Platt::IDENTITY;
    }
    let (hi, lo) = ((positives + 1.0) / (positives + 2.0), 1.0 / (negatives + 2.0));
    let target = |y: f32| if y > 0.5 { hi } else { lo };
    let log_loss = |a: f64, b: f64| -> f64 {
        logits
            .iter()
            .zip(labels)
            .map(|(&z, &y)| {
                let s = a * f64::from(z) + b;
                // ln(1 + e^s) − t·s, in its stable form.
                s.max(0.0) + (-s.abs()).exp().ln_1p() - target(y) * s
            })
            .sum()
    };
    let (mut a, mut b) = (1.0f64, 0.0f64);
    let mut loss = log_loss(a, b);
    for _ in 0..50 {
        let (mut ga, mut gb, mut haa, mut hab, mut hbb) = (0.0, 0.0, 0.0, 0.0, 0.0);
        for (&z, &y) in logits.iter().zip(labels) {
            let z = f64::from(z);
            let p = 1.0 / (1.0 + (-(a * z + b)).exp());
            let d = p - target(y);
            let s = (p * (1.0 - p)).max(1e-12);
            ga += d * z;
            gb += d;
            haa += s * z * z;
            hab += s * z;
            hbb += s;
        }
        let det = haa * hbb - hab * hab;
        if det.abs() < 1e-12 {
            break;
        }
        let (da, db) = ((hbb * ga - hab * gb) / det, (haa * gb - hab * ga) / det);
        let mut step = 1.0;
        let improved = loop {
            let (na, nb) = (a - step * da, b - step * db);
            let next = log_loss(na, nb);
            if next.is_finite() && next < loss {
                break Some((na, nb, next));
            }
            step /= 2.0;
            if step < 1e-6 {
                break None;
            }
        };
        let Some((na, nb, next)) = improved else { break };
        let done = (loss - next).abs() < 1e-9 * loss.abs().max(1.0);
        (a, b, loss) = (na, nb, next);
        if done {
            break;
        }
    }
    if a.is_finite() && b.is_finite() { Platt { a: a as f32, b: b as f32 } } else { Platt::IDENTITY }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ml::dataset::{RowKey, empty_manifest};
    use crate::ml::labels::Labels;
    use crate::model::{VehicleId, VehicleModel};

    #[test]
    fn no_vehicle_of_a_run_is_in_two_folds() {
        let mut dataset = Dataset { manifest: empty_manifest(), dir: "x".into(), keys: Vec::new(), features: Vec::new(), labels: Vec::new() };
        for run in 0..2u16 {
            for vehicle in 1..=7 {
                for minute in 0..10 {
                    dataset.keys.push(RowKey { run, vehicle: VehicleId(vehicle), model: VehicleModel::Van, sim_s: f64::from(minute) * 60.0, excluded: false });
                    dataset.labels.push(Labels { excluded: false, seconds_to_failure: [None; COMPONENTS.len()] });
                }
            }
        }
        let rows: Vec<usize> = (0..dataset.keys.len()).collect();
        let folds = group_folds(&dataset, &rows, 3, 11);
        let mut fold_of: BTreeMap<(u16, u32), usize> = BTreeMap::new();
        for (&i, &fold) in rows.iter().zip(&folds) {
            let key = (dataset.keys[i].run, dataset.keys[i].vehicle.0);
            assert_eq!(*fold_of.entry(key).or_insert(fold), fold, "{key:?} lies in two folds");
        }
        // Fourteen vehicle-runs dealt round three folds: five, five and four.
        let mut sizes = [0; 3];
        fold_of.values().for_each(|&f| sizes[f] += 1);
        sizes.sort_unstable();
        assert_eq!(sizes, [4, 5, 5]);
        assert_eq!(group_folds(&dataset, &rows, 3, 11), folds, "the same seed, the same folds");
    }

    #[test]
    fn platt_scaling_stays_sane_on_rare_positives_with_extreme_logits() {
        // Three positives among thousands, logits far out: the fit keeps the order and the
        // separation, shrinking only as far as three positives warrant.
        let mut logits: Vec<f32> = (0..5000).map(|i| -12.0 + (i % 7) as f32).collect();
        let mut labels = vec![0.0; 5000];
        for i in [10, 2000, 4000] {
            logits[i] = 9.0;
            labels[i] = 1.0;
        }
        let fitted = fit_platt(&logits, &labels);
        assert!(fitted.a > 0.0, "{fitted:?}");
        assert!(fitted.probability(9.0) > 0.5 && fitted.probability(-6.0) < 0.01, "{fitted:?}");
    }

    #[test]
    fn platt_scaling_recovers_a_known_miscalibration() {
        // Labels drawn with p = σ(2z − 1), the scores given as z: the fit finds a ≈ 2, b ≈ −1.
        let mut rng = SmallRng::seed_from_u64(4);
        let logits: Vec<f32> = (0..20_000).map(|_| rng.random_range(-4.0..4.0)).collect();
        let labels: Vec<f32> = logits.iter().map(|&z| f32::from(u8::from(rng.random_bool(f64::from(Platt { a: 2.0, b: -1.0 }.probability(z)))))).collect();
        let fitted = fit_platt(&logits, &labels);
        assert!((fitted.a - 2.0).abs() < 0.15 && (fitted.b + 1.0).abs() < 0.15, "{fitted:?}");
    }
}
