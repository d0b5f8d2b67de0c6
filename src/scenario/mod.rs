//! Scenario files: human-editable TOML describing a fleet, its world, its environment and the
//! failures to inject. `docs/SCENARIOS.md` documents the schema; `scenarios/` ships examples.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Deserializer};

use crate::model::{FailureMode, Metric, MissionKind, VehicleId, VehicleModel};

/// A whole scenario.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Short name, shown in logs and the summary.
    pub name: String,
    /// What the scenario shows.
    #[serde(default)]
    pub description: String,
    /// Seed for every random choice: same seed, same run.
    #[serde(default)]
    pub seed: u64,
    /// The simulated instant at simulation time 0, e.g. `"2026-03-02T06:00:00Z"`: stored rows
    /// are stamped with it plus simulation time.
    #[serde(default = "default_start")]
    pub start: crate::model::WallTime,
    /// Simulated time to run for, e.g. `"2h"`.
    #[serde(deserialize_with = "duration_field")]
    pub duration: Duration,
    /// The vehicles and their depots.
    pub fleet: FleetSpec,
    /// Terrain and roads.
    #[serde(default)]
    pub world: WorldSpec,
    /// Weather and temperatures.
    #[serde(default)]
    pub environment: EnvironmentSpec,
    /// Failures to inject.
    #[serde(default)]
    pub failures: Vec<toml::Spanned<FailureSpec>>,
    /// Failure modes that arise by themselves, at a rate that rises with age and stress.
    #[serde(default)]
    pub hazards: Vec<toml::Spanned<HazardSpec>>,
    /// Missions the orchestrator generates and assigns. Without them vehicles run their
    /// depots' local delivery rounds only.
    #[serde(default)]
    pub missions: Option<MissionSpec>,
    /// Periods in which vehicles' telematics units lose their connection.
    #[serde(default)]
    pub outages: Vec<toml::Spanned<OutageSpec>>,
}

/// A telematics outage: the vehicles go on driving and keep what they would have sent (and
/// send it, in order, once connected again, as store-and-forward units do), but send and
/// receive nothing meanwhile.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutageSpec {
    /// Vehicles it hits, e.g. `["V0003"]`.
    pub vehicles: Vec<VehicleId>,
    /// When the connection drops, e.g. `"10m"`.
    #[serde(deserialize_with = "duration_field")]
    pub start: Duration,
    /// How long it stays down, e.g. `"2m"`.
    #[serde(deserialize_with = "duration_field")]
    pub duration: Duration,
}

/// The mission generator's settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MissionSpec {
    /// Deliveries between depots, or patrols of junctions from a depot.
    #[serde(default)]
    pub kind: MissionKind,
    /// Missions generated per simulated hour.
    pub per_hour: f32,
    /// Junctions a patrol visits before it returns.
    #[serde(default = "default_patrol_stops")]
    pub stops: u16,
    /// A mission nobody has started within this time is dropped as missed, e.g. `"2h"`.
    #[serde(default = "default_deadline", deserialize_with = "duration_field")]
    pub deadline: Duration,
}

fn default_patrol_stops() -> u16 {
    4
}

fn default_deadline() -> Duration {
    Duration::from_secs(2 * 3600)
}

/// The fleet.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FleetSpec {
    /// Number of vehicles (the CLI's `--vehicles` overrides it).
    pub count: u32,
    /// Share of each model in the fleet, e.g. `{ van = 2, truck = 1 }`; weights need not sum to 1.
    #[serde(default = "default_models")]
    pub models: BTreeMap<VehicleModel, f32>,
    /// Depots, at least one; vehicles are homed to them in turn.
    pub depots: Vec<DepotSpec>,
    /// Seconds a vehicle waits at a depot between trips.
    #[serde(default = "default_dwell")]
    pub dwell_s: f32,
}

fn default_models() -> BTreeMap<VehicleModel, f32> {
    BTreeMap::from([(VehicleModel::Van, 1.0)])
}

fn default_dwell() -> f32 {
    120.0
}

/// A depot: where vehicles start, rest and get repaired.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DepotSpec {
    /// Unique name.
    pub name: String,
    /// East position in metres.
    pub x_m: f32,
    /// South position in metres.
    pub z_m: f32,
}

/// Terrain and road network.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorldSpec {
    /// Side of the square world in metres, centred on the origin.
    #[serde(default = "default_size")]
    pub size_m: f32,
    /// Seed of the road network and terrain shape.
    #[serde(default)]
    pub road_seed: u64,
    /// Mean distance between road junctions in metres.
    #[serde(default = "default_spacing")]
    pub junction_spacing_m: f32,
    /// Height difference between the lowest valley and the highest hill, in metres.
    #[serde(default = "default_relief")]
    pub relief_m: f32,
    /// Altitude of the terrain's mean level, in metres.
    #[serde(default = "default_base_altitude")]
    pub base_altitude_m: f32,
}

fn default_size() -> f32 {
    6000.0
}
fn default_spacing() -> f32 {
    600.0
}
fn default_relief() -> f32 {
    120.0
}
fn default_base_altitude() -> f32 {
    200.0
}

impl Default for WorldSpec {
    fn default() -> Self {
        Self {
            size_m: default_size(),
            road_seed: 0,
            junction_spacing_m: default_spacing(),
            relief_m: default_relief(),
            base_altitude_m: default_base_altitude(),
        }
    }
}

/// Weather pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Weather {
    /// Dry all day.
    #[default]
    Clear,
    /// Raining all day.
    Rain,
    /// Showers come and go.
    Changing,
}

/// Environment.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvironmentSpec {
    /// Daily mean air temperature in °C.
    #[serde(default = "default_ambient")]
    pub ambient_mean_c: f32,
    /// Half the day-night temperature difference in °C.
    #[serde(default = "default_swing")]
    pub ambient_swing_c: f32,
    /// Local hour of day the simulation starts at (0-24).
    #[serde(default = "default_start_hour")]
    pub start_hour: f32,
    /// Weather pattern.
    #[serde(default)]
    pub weather: Weather,
    /// Mean wind speed in m/s.
    #[serde(default = "default_wind")]
    pub wind_mps: f32,
    /// Standard deviation of one day's mean temperature about `ambient_mean_c`, in °C: hot and
    /// cold days, drawn from the seed (0: every day alike).
    #[serde(default)]
    pub day_to_day_c: f32,
}

fn default_ambient() -> f32 {
    15.0
}
fn default_swing() -> f32 {
    6.0
}
fn default_start_hour() -> f32 {
    8.0
}
fn default_wind() -> f32 {
    3.0
}

impl Default for EnvironmentSpec {
    fn default() -> Self {
        Self {
            ambient_mean_c: default_ambient(),
            ambient_swing_c: default_swing(),
            day_to_day_c: 0.0,
            start_hour: default_start_hour(),
            weather: Weather::Clear,
            wind_mps: default_wind(),
        }
    }
}

/// One failure injection.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FailureSpec {
    /// Vehicles it hits, e.g. `["V0001", "V0004"]`.
    pub vehicles: Vec<VehicleId>,
    /// Failure mode.
    pub mode: FailureMode,
    /// Simulation time the degradation starts, e.g. `"10m"`.
    #[serde(deserialize_with = "duration_field")]
    pub start: Duration,
    /// Multiplier on the mode's nominal degradation rate (1 = nominal; larger fails sooner).
    #[serde(default = "default_rate")]
    pub rate: f32,
    /// Damage at onset, from 0 (gradual from new) to 1 (sudden failure at `start`).
    #[serde(default)]
    pub initial_severity: f32,
    /// For sensor faults: the metric whose sensor fails, e.g. `"coolant_temp_c"`.
    #[serde(default, deserialize_with = "metric_field")]
    pub sensor: Option<Metric>,
}

/// A failure mode that arises by itself on every vehicle of the fleet: each vehicle's component
/// fails after a Weibull-distributed age, and ages faster under stress (load, heat, hills,
/// distance: `sim::hazards` says how for each mode), so onsets fall at random times drawn from
/// the seed. A repair at a depot renews the vehicle's components.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HazardSpec {
    /// Failure mode.
    pub mode: FailureMode,
    /// The Weibull scale η: the age under nominal stress by which 63% of components have
    /// begun to fail, e.g. `"30d"`.
    #[serde(deserialize_with = "duration_field")]
    pub characteristic_life: Duration,
    /// The Weibull shape β: above 1 the hazard rises with age (wear-out), 1 is constant.
    #[serde(default = "default_shape")]
    pub shape: f32,
    /// Time from onset to functional failure under nominal stress, e.g. `"2d"` for a gradual
    /// mode, `"10m"` for a sudden one.
    #[serde(deserialize_with = "duration_field")]
    pub develops_over: Duration,
    /// Each vehicle's component is of an age drawn evenly from zero to this at the start, so
    /// a fleet of mixed ages does not fail all at once.
    #[serde(default, deserialize_with = "duration_field")]
    pub initial_age: Duration,
    /// For sensor faults: the metric whose sensor fails, e.g. `"coolant_temp_c"`.
    #[serde(default, deserialize_with = "metric_field")]
    pub sensor: Option<Metric>,
}

fn default_shape() -> f32 {
    2.0
}

fn metric_field<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Metric>, D::Error> {
    let name = String::deserialize(deserializer)?;
    Metric::from_name(&name)
        .map(Some)
        .ok_or_else(|| serde::de::Error::custom(format!("`{name}` is not a telemetry metric (see docs/TELEMETRY.md)")))
}

fn default_rate() -> f32 {
    1.0
}

/// Simulation time 0 of a scenario that names no `start`: a fixed instant, so the same scenario
/// and seed store the same timestamps.
pub const DEFAULT_START: &str = "2026-01-05T06:00:00Z";

fn default_start() -> crate::model::WallTime {
    DEFAULT_START.parse().expect("the default start is a valid RFC 3339 time")
}

fn duration_field<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(deserializer)?;
    parse_duration(&text).map_err(serde::de::Error::custom)
}

/// Parses `90s`, `30m`, `24h`, `30d` and combinations like `1h30m`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text.trim())
        .map_err(|e| format!("`{text}` is not a duration like 90s, 30m, 24h or 30d ({e})"))
}

/// A scenario that could not be loaded, with where and why.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// File.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// The file is not a valid scenario.
    #[error("{path}:{line}:{column}: {message}")]
    Invalid {
        /// File.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What was expected.
        message: String,
    },
}

/// The shipped demo scenario, built in: benchmarks use its world when given none.
const BUILTIN_DEMO: &str = include_str!("../../scenarios/demo.toml");

impl Scenario {
    /// `scenarios/demo.toml` as shipped with this build.
    pub fn builtin_demo() -> Scenario {
        Scenario::parse(BUILTIN_DEMO, Path::new("scenarios/demo.toml")).expect("the shipped demo scenario is valid")
    }

    /// Reads and validates a scenario file.
    pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| ScenarioError::Io { path: path.to_owned(), source })?;
        Self::parse(&text, path)
    }

    /// Parses and validates scenario text; `path` only names it in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Scenario, ScenarioError> {
        let invalid = |offset: usize, message: String| {
            let (line, column) = line_column(text, offset);
            ScenarioError::Invalid { path: path.to_owned(), line, column, message }
        };
        let scenario: Scenario = toml::from_str(text).map_err(|e| {
            let offset = e.span().map_or(0, |span| span.start);
            invalid(offset, e.message().trim().to_owned())
        })?;
        scenario.check().map_err(|(offset, message)| invalid(offset.unwrap_or(0), message))?;
        Ok(scenario)
    }

    /// Semantic checks that the TOML shape cannot express. Returns the byte offset of the
    /// offending entry where one is known.
    fn check(&self) -> Result<(), (Option<usize>, String)> {
        let whole = |message: String| (None, message);
        if self.fleet.count == 0 {
            return Err(whole("fleet.count: expected at least one vehicle".into()));
        }
        if self.fleet.depots.is_empty() {
            return Err(whole("fleet.depots: expected at least one depot".into()));
        }
        if self.fleet.models.values().any(|w| !w.is_finite() || *w < 0.0) || self.fleet.models.values().sum::<f32>() <= 0.0 {
            return Err(whole("fleet.models: expected non-negative weights with a positive sum".into()));
        }
        let half = self.world.size_m / 2.0;
        if !(500.0..=100_000.0).contains(&self.world.size_m) {
            return Err(whole(format!("world.size_m: expected 500 to 100000 metres, found {}", self.world.size_m)));
        }
        if !(100.0..=self.world.size_m / 2.0).contains(&self.world.junction_spacing_m) {
            return Err(whole(format!(
                "world.junction_spacing_m: expected 100 metres to half the world size, found {}",
                self.world.junction_spacing_m
            )));
        }
        for depot in &self.fleet.depots {
            if depot.x_m.abs() > half || depot.z_m.abs() > half {
                return Err(whole(format!("fleet.depots: depot `{}` lies outside the world (±{half} m)", depot.name)));
            }
        }
        let mut names: Vec<_> = self.fleet.depots.iter().map(|d| &d.name).collect();
        names.sort();
        if let Some(pair) = names.windows(2).find(|pair| pair[0] == pair[1]) {
            return Err(whole(format!("fleet.depots: depot name `{}` is used twice", pair[0])));
        }
        if !(0.0..=24.0).contains(&self.environment.start_hour) {
            return Err(whole("environment.start_hour: expected an hour from 0 to 24".into()));
        }
        if !(self.environment.day_to_day_c.is_finite() && (0.0..=20.0).contains(&self.environment.day_to_day_c)) {
            return Err(whole(format!("environment.day_to_day_c: expected 0 to 20 °C, found {}", self.environment.day_to_day_c)));
        }
        if let Some(missions) = &self.missions {
            if !(missions.per_hour.is_finite() && missions.per_hour > 0.0 && missions.per_hour <= 100_000.0) {
                return Err(whole(format!("missions.per_hour: expected a rate above 0 and at most 100000, found {}", missions.per_hour)));
            }
            if !(1..=20).contains(&missions.stops) {
                return Err(whole(format!("missions.stops: expected 1 to 20 junctions, found {}", missions.stops)));
            }
            if missions.kind == MissionKind::Delivery && self.fleet.depots.len() < 2 {
                return Err(whole("missions.kind: deliveries run between depots, so they need at least two".into()));
            }
            if missions.deadline.is_zero() {
                return Err(whole("missions.deadline: expected a duration above zero".into()));
            }
        }
        for failure in &self.failures {
            let at = Some(failure.span().start);
            let spec = failure.get_ref();
            if spec.vehicles.is_empty() {
                return Err((at, "failures.vehicles: expected at least one vehicle id".into()));
            }
            if !(spec.rate.is_finite() && spec.rate > 0.0) {
                return Err((at, format!("failures.rate: expected a positive number, found {}", spec.rate)));
            }
            if !(0.0..=1.0).contains(&spec.initial_severity) {
                return Err((at, format!("failures.initial_severity: expected 0 to 1, found {}", spec.initial_severity)));
            }
        }
        for hazard in &self.hazards {
            let at = Some(hazard.span().start);
            let spec = hazard.get_ref();
            if spec.characteristic_life.is_zero() {
                return Err((at, "hazards.characteristic_life: expected a duration above zero".into()));
            }
            if !(spec.shape.is_finite() && (0.2..=10.0).contains(&spec.shape)) {
                return Err((at, format!("hazards.shape: expected 0.2 to 10, found {}", spec.shape)));
            }
            if spec.develops_over.is_zero() {
                return Err((at, "hazards.develops_over: expected a duration above zero".into()));
            }
            if self.hazards.iter().filter(|h| h.get_ref().mode == spec.mode).count() > 1 {
                return Err((at, format!("hazards.mode: {} has more than one hazard", serde_json::to_string(&spec.mode).unwrap_or_default())));
            }
        }
        for outage in &self.outages {
            let at = Some(outage.span().start);
            let spec = outage.get_ref();
            if spec.vehicles.is_empty() {
                return Err((at, "outages.vehicles: expected at least one vehicle id".into()));
            }
            if spec.duration.is_zero() {
                return Err((at, "outages.duration: expected a duration above zero".into()));
            }
        }
        Ok(())
    }

    /// The home depot of the vehicle at `index` (V0001 is 0), as an index into `fleet.depots`:
    /// vehicles are homed to the depots in turn.
    pub fn home_depot(&self, index: u32) -> usize {
        index as usize % self.fleet.depots.len()
    }

    /// [`Scenario::fleet_models`] by vehicle id.
    pub fn fleet_by_id(&self, count: u32) -> std::collections::BTreeMap<crate::model::VehicleId, VehicleModel> {
        self.fleet_models(count).into_iter().zip(1..).map(|(model, n)| (crate::model::VehicleId(n), model)).collect()
    }

    /// The model of each of `count` vehicles: each next vehicle goes to the model furthest
    /// behind its share, so any prefix of the fleet has close to the requested mix.
    pub fn fleet_models(&self, count: u32) -> Vec<VehicleModel> {
        let total: f32 = self.fleet.models.values().sum();
        let mut assigned = vec![0u32; self.fleet.models.len()];
        (0..count)
            .map(|i| {
                let (slot, (&model, _)) = self
                    .fleet
                    .models
                    .iter()
                    .enumerate()
                    .max_by(|(a, (_, wa)), (b, (_, wb))| {
                        let deficit = |k: usize, w: f32| (i + 1) as f32 * w / total - assigned[k] as f32;
                        deficit(*a, **wa).total_cmp(&deficit(*b, **wb)).then(b.cmp(a))
                    })
                    .expect("at least one model");
                assigned[slot] += 1;
                model
            })
            .collect()
    }
}

pub(crate) fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rfind('\n').map_or(before.len(), |nl| before.len() - nl - 1) + 1;
    (line, column)
}
