//! `aegis dataset build --scenario S --seeds ...`: runs the scenario headless once per seed,
//! with the centre in process as `aegis run` has it (so alerts, maintenance and repairs shape
//! the history as they would in service), and collects each run's telemetry into a labelled
//! dataset file on a thread of its own beside the simulation.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use anyhow::Context;

use super::{RunOptions, run_on_bus};
use crate::bus::{Backlog, Filter, MemoryBus, SharedBus};
use crate::ml::dataset::{Collector, Labelled, Manifest, RunEntry, empty_manifest, episode_counts, write_manifest, write_run};
use crate::model::{Body, MessageKind};
use crate::orchestrator::policy::Policy;
use crate::scenario::Scenario;

/// What `aegis dataset build` was asked for.
#[derive(Debug, Clone)]
pub struct DatasetBuild {
    /// The scenario.
    pub scenario: Scenario,
    /// One run per seed.
    pub seeds: Vec<u64>,
    /// Fleet size (default: the scenario's).
    pub vehicles: Option<u32>,
    /// Simulated time per run (default: the scenario's).
    pub duration: Option<Duration>,
    /// The centre's policy.
    pub policy: Policy,
    /// The dataset directory.
    pub out: PathBuf,
    /// Print progress lines.
    pub progress: bool,
}

/// Runs every seed and writes the dataset: a Parquet file per run and `manifest.json`.
pub fn build_dataset(build: &DatasetBuild) -> anyhow::Result<Manifest> {
    std::fs::create_dir_all(&build.out).with_context(|| format!("cannot create {}", build.out.display()))?;
    let mut manifest = empty_manifest();
    for &seed in &build.seeds {
        let started = Instant::now();
        let mut options = RunOptions::from_scenario(build.scenario.clone());
        options.seed = seed;
        options.vehicles = build.vehicles.unwrap_or(options.vehicles);
        options.duration = build.duration.unwrap_or(options.duration);
        options.policy = Some(build.policy.clone());
        options.progress = build.progress;
        let run = format!("{}-seed{seed}", build.scenario.name);
        let labelled = collect_run(&options)?;
        let file = format!("{run}.parquet");
        write_run(&build.out.join(&file), &run, &labelled)?;
        let entry = RunEntry {
            run,
            scenario: build.scenario.name.clone(),
            seed,
            vehicles: options.vehicles,
            sim_seconds: labelled.sim_seconds,
            file,
            rows: labelled.rows.len() as u64,
            excluded_rows: labelled.labels.iter().filter(|l| l.excluded).count() as u64,
            episodes: labelled.episodes,
        };
        if build.progress {
            let counts = episode_counts(entry.episodes.iter())
                .iter()
                .map(|(mode, (n, failed))| format!("{} {n} ({failed} failed)", mode.as_str()))
                .collect::<Vec<_>>()
                .join(", ");
            eprintln!("[aegis] dataset: {} rows of {:.0} vehicle-days in {:.0} s; episodes: {counts}", entry.rows, entry.vehicle_days(), started.elapsed().as_secs_f64());
        }
        manifest.runs.push(entry);
        // Written after each run, so that what is done survives an interrupted build.
        write_manifest(&build.out, &manifest)?;
    }
    Ok(manifest)
}

/// One run, its telemetry collected and labelled.
pub fn collect_run(options: &RunOptions) -> anyhow::Result<Labelled> {
    let bus: SharedBus = Arc::new(MemoryBus::new());
    let tap = bus.subscribe(Filter::kinds(&[MessageKind::Telemetry]), Backlog::Lossless);
    let models = options.scenario.fleet_by_id(options.vehicles);
    let done = AtomicBool::new(false);
    std::thread::scope(|scope| {
        let collector = scope.spawn(|| {
            let mut collector = Collector::new(models);
            let mut take = |envelope: crate::model::Envelope| {
                if let Body::Telemetry(telemetry) = &envelope.body {
                    collector.telemetry(envelope.vehicle_id, envelope.sim_time, telemetry);
                }
            };
            loop {
                match tap.receiver().recv_timeout(Duration::from_millis(100)) {
                    Ok(envelope) => take(envelope),
                    Err(crossbeam_channel::RecvTimeoutError::Timeout) if done.load(std::sync::atomic::Ordering::Acquire) => break,
                    Err(crossbeam_channel::RecvTimeoutError::Timeout) => {}
                    Err(crossbeam_channel::RecvTimeoutError::Disconnected) => break,
                }
            }
            // Whatever the simulation published before it stopped.
            tap.try_iter().for_each(&mut take);
            collector.finish()
        });
        let ran = run_on_bus(options, bus.clone(), &AtomicBool::new(false));
        done.store(true, std::sync::atomic::Ordering::Release);
        let labelled = collector.join().map_err(|_| anyhow::anyhow!("the dataset collector panicked"))?;
        ran?;
        Ok(labelled)
    })
}
