//! Assembling the simulation into a Bevy app, and the headless run loop: pacing, progress
//! lines, the telemetry recorder and the end-of-run summary. [`centre`] assembles the centre
//! in the same process.

pub mod centre;
pub mod dataset;

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use bevy::ecs::schedule::ScheduleLabel;
use bevy::ecs::schedule::SingleThreadedExecutor;
use bevy::prelude::*;
use bevy::time::TimeUpdateStrategy;
use serde::Serialize;

use crate::bus::{Backlog, Bus, BusStats, Filter, MemoryBus, SharedBus, Subscription};
use crate::model::{Envelope, MessageKind, VehicleId};
use crate::orchestrator::alerts::AlertRecord;
use crate::orchestrator::brain::BrainFigures;
use crate::orchestrator::commands::TrackedCommand;
use crate::orchestrator::missions::Mission;
use crate::orchestrator::policy::Policy;
use crate::scenario::Scenario;
use crate::sim::clock::{PHYSICS_HZ, SimClock, Speed};
use crate::sim::{Members, SimCounters, SimPlugin};
use crate::store::RunInfo;
use crate::store::writer::{StoreWriter, WriterFigures, WriterSettings};

/// Everything `aegis run` needs to know.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The scenario, loaded.
    pub scenario: Scenario,
    /// Vehicles in the fleet.
    pub vehicles: u32,
    /// Which of them this process simulates.
    pub members: Members,
    /// First sequence number per vehicle (0 for those absent): where an earlier run stopped.
    pub first_seq: BTreeMap<VehicleId, u64>,
    /// Run seed.
    pub seed: u64,
    /// Simulated time to run for.
    pub duration: Duration,
    /// Pace.
    pub speed: Speed,
    /// Write every telemetry envelope here as JSON Lines.
    pub telemetry_out: Option<PathBuf>,
    /// Write the summary JSON here at exit.
    pub summary: Option<PathBuf>,
    /// Run the orchestrator's decision loop in this process with this policy.
    pub policy: Option<Policy>,
    /// The failure model the in-process centre consults (none: no predictions).
    pub model: Option<ModelChoice>,
    /// Print progress lines to stderr.
    pub progress: bool,
    /// Store every message in this database (`sqlite:PATH`), fed from the bus.
    pub store: Option<String>,
    /// How the stored telemetry ages.
    pub lifecycle: crate::store::lifecycle::LifecycleSettings,
    /// Serve the WebSocket and HTTP API while the run lasts.
    pub api: Option<crate::api::ApiSettings>,
}

impl RunOptions {
    /// Options from a scenario with its own fleet size, seed and duration, as fast as possible.
    pub fn from_scenario(scenario: Scenario) -> Self {
        Self {
            vehicles: scenario.fleet.count,
            members: Members::All,
            first_seq: BTreeMap::new(),
            seed: scenario.seed,
            duration: scenario.duration,
            speed: Speed::Max,
            telemetry_out: None,
            summary: None,
            policy: None,
            model: None,
            progress: false,
            store: None,
            lifecycle: Default::default(),
            api: None,
            scenario,
        }
    }
}

/// A headless simulation app on `bus`: no window, no renderer, time advanced only by
/// [`App::update`], one fixed step per update unless changed.
pub fn headless_app(options: &RunOptions, bus: SharedBus) -> App {
    let mut app = App::new();
    app.add_plugins((MinimalPlugins, TransformPlugin));
    app.insert_resource(TimeUpdateStrategy::FixedTimesteps(1));
    // Virtual time caps each update's advance at 250 ms by default, which silently turned an
    // update of 20 fixed steps into 5: let an update advance as many steps as it is told.
    app.world_mut().resource_mut::<Time<Virtual>>().set_max_delta(Duration::from_secs(3600));
    app.add_plugins(SimPlugin { scenario: options.scenario.clone(), vehicles: options.vehicles, members: options.members, first_seq: options.first_seq.clone(), seed: options.seed, bus });
    // A fixed step is a few hundred microseconds of work; waking worker threads for each of
    // its systems costs more than it saves. Data parallelism inside systems (`par_iter`) stays.
    for schedule in [FixedUpdate.intern(), Update.intern(), PostUpdate.intern(), First.intern(), PreUpdate.intern(), Last.intern()] {
        app.edit_schedule(schedule, |s| {
            s.set_executor(SingleThreadedExecutor::new());
        });
    }
    app
}

/// Which failure model a run's centre consults.
#[derive(Debug, Clone, PartialEq)]
pub enum ModelChoice {
    /// The model built into this binary (assets/models/failure.aegis).
    Shipped,
    /// A model file.
    File(PathBuf),
}

/// What a run did, written as JSON by `--summary`.
#[derive(Debug, Clone, Serialize)]
pub struct RunSummary {
    /// Scenario name.
    pub scenario: String,
    /// Run seed.
    pub seed: u64,
    /// Vehicles in the fleet.
    pub vehicles: u32,
    /// Of them, simulated by this process (fewer for a shard).
    pub vehicles_simulated: u32,
    /// Simulated seconds.
    pub sim_seconds: f64,
    /// Wall-clock seconds.
    pub wall_seconds: f64,
    /// Simulated seconds per wall second.
    pub speedup: f64,
    /// Telemetry frames sent.
    pub telemetry_messages: u64,
    /// Events sent.
    pub events: u64,
    /// Heartbeats sent.
    pub heartbeats: u64,
    /// Failures injected.
    pub failures_injected: u64,
    /// Components that reached functional failure.
    pub functional_failures: u64,
    /// Local-rule decisions taken.
    pub local_rule_actions: u64,
    /// Repairs completed at depots.
    pub repairs: u64,
    /// Commands vehicles answered.
    pub commands_handled: u64,
    /// Vehicles the in-process centre declared offline (silent for three heartbeats).
    pub went_offline: u64,
    /// The bus's counters: published, acknowledged, retried, buffered, spilled, dropped.
    pub bus: BusStats,
    /// What the in-process orchestrator did, when it ran.
    #[serde(flatten)]
    pub orchestrator: Option<BrainFigures>,
    /// Its alerts at the end, with their histories, by id.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub alerts: Vec<AlertRecord>,
    /// Its missions at the end, with their histories, by id.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub missions: Vec<Mission>,
    /// Its commands at the end, with their states, by id.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub commands: Vec<TrackedCommand>,
    /// What the store writer did, with `--store`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub store: Option<StoreSummary>,
}

/// The store's part of a run summary.
#[derive(Debug, Clone, Serialize)]
pub struct StoreSummary {
    /// The run's name in the store (`aegis query --run NAME`).
    pub run: String,
    /// The writer's counters at the end.
    #[serde(flatten)]
    pub figures: WriterFigures,
}

impl RunSummary {
    fn new(options: &RunOptions, clock: SimClock, counters: SimCounters, bus: &SharedBus, wall: Duration) -> Self {
        let sim_seconds = clock.seconds();
        let wall_seconds = wall.as_secs_f64();
        Self {
            scenario: options.scenario.name.clone(),
            seed: options.seed,
            vehicles: options.vehicles,
            vehicles_simulated: (1..=options.vehicles).filter(|&n| options.members.contains(VehicleId(n))).count() as u32,
            sim_seconds,
            wall_seconds,
            speedup: sim_seconds / wall_seconds.max(1e-9),
            telemetry_messages: counters.telemetry_messages,
            events: counters.events,
            heartbeats: counters.heartbeats,
            failures_injected: counters.failures_injected,
            functional_failures: counters.functional_failures,
            local_rule_actions: counters.local_rule_actions,
            repairs: counters.repairs,
            commands_handled: counters.commands_handled,
            went_offline: 0,
            bus: bus.stats(),
            orchestrator: None,
            alerts: Vec::new(),
            missions: Vec::new(),
            commands: Vec::new(),
            store: None,
        }
    }

    /// Writes the summary as JSON to `path`.
    pub fn write(&self, path: &Path) -> anyhow::Result<()> {
        std::fs::write(path, serde_json::to_string_pretty(self)? + "\n").with_context(|| format!("cannot write {}", path.display()))
    }

    /// The summary for people.
    pub fn human(&self) -> String {
        format!(
            "{}: {} of {} vehicles, {} simulated in {:.1} s ({:.0}x real time)\n  telemetry {}  events {}  heartbeats {}\n  failures injected {}  functional failures {}  local-rule actions {}  repairs {}\n  bus: {}",
            self.scenario,
            self.vehicles_simulated,
            self.vehicles,
            clock_text(self.sim_seconds),
            self.wall_seconds,
            self.speedup,
            self.telemetry_messages,
            self.events,
            self.heartbeats,
            self.failures_injected,
            self.functional_failures,
            self.local_rule_actions,
            self.repairs,
            self.bus.line(),
        ) + &self.store.as_ref().map_or(String::new(), |s| format!("\n  run {} {}", s.run, s.figures.line()))
            + &self.orchestrator.map_or(String::new(), |o| {
            format!(
                "\n  orchestrator: alerts raised {} cleared {} escalated {}  commands issued {} succeeded {} failed {} timed out {}\n  missions: generated {} completed {} re-assigned {} missed {}",
                o.alerts_raised,
                o.alerts_cleared,
                o.alerts_escalated,
                o.commands_issued,
                o.commands_succeeded,
                o.commands_failed,
                o.commands_timed_out,
                o.missions.missions_generated,
                o.missions.missions_completed,
                o.missions.missions_reassigned,
                o.missions.missions_missed
            )
        })
    }
}

/// `hh:mm:ss` (with days when needed) for a count of seconds.
pub fn clock_text(seconds: f64) -> String {
    let s = seconds as u64;
    let (d, h, m, s) = (s / 86_400, s / 3600 % 24, s / 60 % 60, s % 60);
    if d > 0 { format!("{d}d {h:02}:{m:02}:{s:02}") } else { format!("{h:02}:{m:02}:{s:02}") }
}

/// Writes telemetry envelopes as JSON Lines, draining its copies between updates.
struct Recorder {
    copies: crossbeam_channel::Receiver<Envelope>,
    out: BufWriter<File>,
    path: PathBuf,
}

impl Recorder {
    /// A recorder of what is published on `bus`, and the bus the simulation is to publish on.
    fn open(path: &Path, bus: SharedBus) -> anyhow::Result<(Self, SharedBus)> {
        let file = File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
        let (sender, copies) = crossbeam_channel::unbounded();
        let tee: SharedBus = Arc::new(Recorded { inner: bus, copies: sender });
        Ok((Self { copies, out: BufWriter::with_capacity(1 << 20, file), path: path.to_owned() }, tee))
    }

    fn drain(&mut self) -> anyhow::Result<()> {
        for envelope in self.copies.try_iter() {
            serde_json::to_writer(&mut self.out, &envelope)?;
            self.out.write_all(b"\n").with_context(|| format!("writing {}", self.path.display()))?;
        }
        Ok(())
    }
}

/// The bus, with a copy of every telemetry envelope published on it handed to the recorder as
/// it is published: a subscription would get them back only as the transport delivers them,
/// and over Redis the last ones are still on their way when the run ends.
struct Recorded {
    inner: SharedBus,
    copies: crossbeam_channel::Sender<Envelope>,
}

impl Bus for Recorded {
    fn publish(&self, envelope: Envelope) {
        if envelope.kind() == MessageKind::Telemetry {
            let _ = self.copies.send(envelope.clone());
        }
        self.inner.publish(envelope);
    }

    fn subscribe(&self, filter: Filter, backlog: Backlog) -> Subscription {
        self.inner.subscribe(filter, backlog)
    }

    fn stats(&self) -> BusStats {
        self.inner.stats()
    }

    fn flush(&self, timeout: Duration) -> bool {
        self.inner.flush(timeout)
    }

    fn held_up(&self) -> Option<String> {
        self.inner.held_up()
    }
}

/// Simulated seconds the store writer may fall behind before the simulation waits for it.
pub const STORE_LAG_LIMIT_S: f64 = 60.0;

/// What the store records about this run, under the name `name`.
pub fn run_info(options: &RunOptions, name: String) -> RunInfo {
    let scenario = &options.scenario;
    let models = scenario.fleet_models(options.vehicles);
    RunInfo {
        name,
        scenario: scenario.name.clone(),
        seed: options.seed,
        fleet: options.vehicles,
        start: scenario.start,
        vehicles: (0..options.vehicles)
            .map(|i| (VehicleId(i + 1), models[i as usize], scenario.fleet.depots[scenario.home_depot(i)].name.clone()))
            .collect(),
    }
}

/// A fresh run name for `options`.
pub fn run_name(options: &RunOptions) -> String {
    RunInfo::name_for(&options.scenario.name, options.seed, crate::model::WallTime::now())
}

/// Opens the store at `url`, registers this run and starts its writer on every message of
/// `bus`. Returns the run's name and the writer.
pub fn open_store(url: &str, options: &RunOptions, bus: &SharedBus) -> anyhow::Result<(String, StoreWriter)> {
    let run = run_info(options, run_name(options));
    // Lossless: the writer drains it on its own thread, and the simulation waits when the
    // writer falls behind, so the backlog stays within a minute of simulated messages.
    let subscription = bus.subscribe(Filter::all(), Backlog::Lossless);
    let name = run.name.clone();
    let writer = StoreWriter::start(url, run, subscription, WriterSettings { lifecycle: Some(options.lifecycle.clone()), ..WriterSettings::default() }).with_context(|| format!("--store {url}"))?;
    Ok((name, writer))
}

/// `[########------------]  40%  ETA 12m 5s`: how far a run is, and when it ends at this pace.
pub fn progress_bar(done: f64, elapsed: Duration) -> String {
    const WIDTH: usize = 20;
    let done = done.clamp(0.0, 1.0);
    let filled = (done * WIDTH as f64).round() as usize;
    let eta = if done > 0.0 { Duration::from_secs((elapsed.as_secs_f64() * (1.0 - done) / done).round() as u64) } else { Duration::ZERO };
    format!("[{}{}] {:>3.0}%  ETA {}", "#".repeat(filled), "-".repeat(WIDTH - filled), done * 100.0, humantime::format_duration(eta))
}

/// The API's view of the fleet, when `options` ask for the API: the scenario's world for maps.
pub fn api_hub(options: &RunOptions) -> Option<Arc<crate::api::hub::Hub>> {
    options.api.as_ref().map(|_| Arc::new(crate::api::hub::Hub::new(crate::api::hub::describe_world(&crate::world::RoadNetwork::generate(&options.scenario)))))
}

/// Serves the API over `hub` while the returned server lives, when `options` ask for it:
/// operator actions go to the in-process centre's `desk`, history comes from the run's store
/// (`run`, its name there).
pub fn serve_api(
    options: &RunOptions,
    bus: &SharedBus,
    hub: Option<Arc<crate::api::hub::Hub>>,
    desk: Option<crate::bus::local::OperatorDesk>,
    run: Option<String>,
) -> anyhow::Result<Option<crate::api::RunningApi>> {
    let (Some(settings), Some(hub)) = (&options.api, hub) else { return Ok(None) };
    let mut settings = settings.clone();
    settings.store = options.store.clone();
    settings.run = run;
    let operators = desk.map(|desk| Arc::new(desk) as Arc<dyn crate::api::server::OperatorGate>);
    Ok(Some(crate::api::RunningApi::start(&settings, hub, operators, Some(api_feed(bus)))?))
}

/// What the API takes from the bus: the vehicles' telemetry and events. Bounded: the API takes
/// them in five times a second; were it stuck, maps and events would stop, not the run.
pub fn api_feed(bus: &SharedBus) -> Subscription {
    bus.subscribe(Filter::kinds(&[MessageKind::Telemetry, MessageKind::Event]), Backlog::Bounded(1 << 20))
}

/// The process's own gauges for the API's `/metrics`: the bus's backlog and losses, and how
/// far the store writer is behind.
pub fn report_gauges(hub: &crate::api::hub::Hub, bus: &SharedBus, writer: Option<&StoreWriter>, sim_now: f64) {
    let stats = bus.stats();
    hub.report("aegis_bus_published", "Messages published on the bus by this process.", stats.published as f64);
    hub.report("aegis_bus_backlog", "Messages published but not yet confirmed by the transport.", stats.backlog as f64);
    hub.report("aegis_bus_dropped", "Messages lost by the bus (a full bounded subscriber or spill file).", stats.dropped as f64);
    if let Some(writer) = writer {
        let status = writer.status();
        hub.report("aegis_store_lag_seconds", "Simulated seconds the store writer is behind the simulation.", status.lag_s(sim_now));
        hub.report("aegis_store_spooled", "Rows the writer has spooled to disk while the database was away.", status.figures().spooled as f64);
    }
}

/// Runs a scenario headless on the in-process bus to its end, writes `--summary` and returns
/// the summary.
pub fn run_headless(options: &RunOptions) -> anyhow::Result<RunSummary> {
    let bus: SharedBus = Arc::new(MemoryBus::new());
    let summary = run_on_bus(options, bus, &AtomicBool::new(false))?;
    if let Some(path) = &options.summary {
        summary.write(path)?;
    }
    Ok(summary)
}

/// Runs the simulation on `bus` until its duration has passed or `stop` is set, and returns
/// the summary. Publishing never waits on the bus; flushing it is the caller's business.
pub fn run_on_bus(options: &RunOptions, bus: SharedBus, stop: &AtomicBool) -> anyhow::Result<RunSummary> {
    // First: a model that cannot be used is refused before any file or run is made.
    let predictor = centre::predictor(options)?;
    let (mut recorder, bus) = match options.telemetry_out.as_deref() {
        Some(path) => {
            let (recorder, bus) = Recorder::open(path, bus)?;
            (Some(recorder), bus)
        }
        None => (None, bus),
    };
    let store = options.store.as_deref().map(|url| open_store(url, options, &bus)).transpose()?;
    let mut app = headless_app(options, bus.clone());
    let hub = api_hub(options);
    let mut desk = None;
    if let Some(policy) = options.policy.clone() {
        let centre = centre::LocalCentre::new(policy, &options.scenario, bus.clone(), hub.clone(), predictor);
        desk = Some(centre.desk.clone());
        app.insert_resource(centre);
        app.add_plugins(centre::plugin);
    }
    // Served from its own thread until the run ends (dropped with this function's locals).
    let _api = serve_api(options, &bus, hub.clone(), desk, store.as_ref().map(|(run, _)| run.clone()))?;
    // One simulated second per update amortises the schedule's overhead; pacing at real time
    // still needs whole seconds only.
    let per_update = PHYSICS_HZ as u64;
    app.insert_resource(TimeUpdateStrategy::FixedTimesteps(per_update as u32));
    app.finish();
    app.cleanup();

    let total_steps = (options.duration.as_secs_f64() * f64::from(PHYSICS_HZ)).round() as u64;
    let started = Instant::now();
    let mut last_report = (Instant::now(), 0u64);
    loop {
        let steps = app.world().resource::<SimClock>().steps;
        if steps >= total_steps || stop.load(Ordering::Relaxed) {
            break;
        }
        if let Some((_, writer)) = &store
            && writer.status().lag_s(app.world().resource::<SimClock>().seconds()) > STORE_LAG_LIMIT_S
        {
            // The database is behind: wait for it rather than run away from it.
            if last_report.0.elapsed() >= Duration::from_secs(2) {
                let why = writer.status().last_error().map_or(String::new(), |e| format!(" ({e})"));
                eprintln!("[aegis] sim {}  WAITING for the store{why}; {}", clock_text(app.world().resource::<SimClock>().seconds()), writer.status().figures().line());
                last_report = (Instant::now(), bus.stats().published);
            }
            std::thread::sleep(Duration::from_millis(20));
            continue;
        }
        if let Some(why) = bus.held_up() {
            // The transport cannot keep more on disk: wait rather than lose messages.
            if last_report.0.elapsed() >= Duration::from_secs(2) {
                eprintln!("[aegis] sim {}  HELD UP: {why}; the simulation waits", clock_text(app.world().resource::<SimClock>().seconds()));
                last_report = (Instant::now(), bus.stats().published);
            }
            std::thread::sleep(Duration::from_millis(50));
            continue;
        }
        let remaining = (total_steps - steps).min(per_update) as u32;
        app.insert_resource(TimeUpdateStrategy::FixedTimesteps(remaining));
        app.update();
        if let Some(recorder) = &mut recorder {
            recorder.drain()?;
        }
        let clock = *app.world().resource::<SimClock>();
        if let Some(hub) = &hub {
            report_gauges(hub, &bus, store.as_ref().map(|(_, writer)| writer), clock.seconds());
        }
        if let Speed::Factor(factor) = options.speed {
            let due = Duration::from_secs_f64(clock.seconds() / factor);
            if let Some(ahead) = due.checked_sub(started.elapsed()) {
                std::thread::sleep(ahead);
            }
        }
        if options.progress && last_report.0.elapsed() >= Duration::from_secs(2) {
            let stats = bus.stats();
            let rate = (stats.published - last_report.1) as f64 / last_report.0.elapsed().as_secs_f64();
            let store_line = store.as_ref().map_or(String::new(), |(_, w)| {
                format!("  {} lag {:.0} s", w.status().figures().line(), w.status().lag_s(clock.seconds()))
            });
            eprintln!(
                "[aegis] {}  sim {}  vehicles {}  {:.0} msg/s  {:.1}x real time  {}{store_line}",
                progress_bar(clock.seconds() / options.duration.as_secs_f64().max(1.0), started.elapsed()),
                clock_text(clock.seconds()),
                options.vehicles,
                rate,
                clock.seconds() / started.elapsed().as_secs_f64(),
                stats.line()
            );
            let published = stats.published;
            last_report = (Instant::now(), published);
        }
    }
    if let Some(mut recorder) = recorder {
        recorder.drain()?;
        recorder.out.flush()?;
    }
    let clock = *app.world().resource::<SimClock>();
    let counters = *app.world().resource::<SimCounters>();
    let mut summary = RunSummary::new(options, clock, counters, &bus, started.elapsed());
    if let Some((run, writer)) = store {
        summary.store = Some(StoreSummary { run, figures: writer.finish()? });
    }
    if let Some(local) = app.world().get_resource::<centre::LocalCentre>() {
        let brain = &local.centre.brain;
        summary.orchestrator = Some(brain.figures());
        summary.alerts = brain.alerts.all().cloned().collect();
        summary.missions = brain.missions.iter().flat_map(|b| b.all().cloned()).collect();
        summary.commands = brain.commands.all().cloned().collect();
        summary.went_offline = local.centre.counters.went_offline;
    }
    Ok(summary)
}
