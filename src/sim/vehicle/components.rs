//! The components of a vehicle entity; [`Vehicle`] declares the whole shape with
//! `#[require]`, so spawning it brings the rest.

use bevy::prelude::*;
use bevy_rapier3d::prelude::*;
use rand::{Rng, SeedableRng, rngs::SmallRng};
use rand_distr::StandardNormal;

use super::spec::{BATTERY_MOHM, PAD_MM, VAN, VehicleSpec, spec};
use crate::model::{ComponentHealth, EventKind, FailureMode, METRIC_COUNT, Metric, MissionStop, RULE_COUNT, RuleDecision, TelemetryFrame, VehicleId, VehicleModel, VehicleStatus};

/// A vehicle's rigid body as rapier sees it: what the physics needs, and nothing else (the
/// physics floor of `aegis bench sim` spawns these alone).
#[derive(Component, Debug, Clone, Copy, Default)]
#[require(
    Transform,
    RigidBody = RigidBody::Dynamic,
    Velocity,
    ExternalForce,
    // Roads hold the vehicle on the ground plane: no pitch, roll or vertical motion; grades act
    // through the force model instead. See docs/ARCHITECTURE.md.
    LockedAxes = LockedAxes::TRANSLATION_LOCKED_Y | LockedAxes::ROTATION_LOCKED_X | LockedAxes::ROTATION_LOCKED_Z,
    GravityScale = GravityScale(0.0),
    Sleeping = Sleeping::disabled(),
)]
pub struct VehicleBody;

/// A simulated vehicle. Spawning this component brings everything else a vehicle needs.
#[derive(Component, Debug, Clone)]
#[require(
    VehicleBody,
    Drive,
    Condition,
    Navigation,
    Faults,
    RuleState,
    SensorState,
    CommandMemory,
)]
pub struct Vehicle {
    /// Identifier.
    pub id: VehicleId,
    /// Model.
    pub model: VehicleModel,
    /// Index of the home depot in [`crate::world::RoadNetwork::depots`].
    pub home_depot: u16,
}

impl Vehicle {
    /// This vehicle's physical specification.
    pub fn spec(&self) -> &'static VehicleSpec {
        spec(self.model)
    }
}

/// Driver inputs and the powertrain and motion state they produce.
#[derive(Component, Debug, Clone, Default)]
pub struct Drive {
    /// Accelerator, 0-1.
    pub throttle: f32,
    /// Brake pedal, 0-1.
    pub brake: f32,
    /// Engaged gear, 1-based; 0 is neutral.
    pub gear: u8,
    /// Engine speed in rpm.
    pub rpm: f32,
    /// Engine torque in N·m.
    pub engine_torque_nm: f32,
    /// Share of the available torque in use, 0-1.
    pub engine_load: f32,
    /// Engine output in watts.
    pub engine_power_w: f32,
    /// Power going into the front and rear brakes in watts.
    pub brake_power_w: [f32; 2],
    /// Forward speed in m/s.
    pub speed_mps: f32,
    /// Forward acceleration in m/s².
    pub accel_mps2: f32,
    /// Lateral acceleration in m/s².
    pub lateral_mps2: f32,
    /// Yaw rate, clockwise seen from above, in rad/s.
    pub yaw_rate: f32,
    /// Heading, clockwise from north, in radians.
    pub heading: f32,
    /// Road grade along the heading (rise over run).
    pub grade: f32,
    /// Altitude in metres.
    pub altitude_m: f32,
    /// Distance travelled in metres.
    pub odometer_m: f64,
    /// Fuel in the tank in litres.
    pub fuel_l: f32,
    /// Fuel flow in litres per hour.
    pub fuel_rate_lph: f32,
    /// Seconds of starter-motor cranking left.
    pub cranking_s: f32,
    /// Whether the engine runs.
    pub engine_on: bool,
    /// Share of the payload capacity aboard, 0-1: loaded at departure, unloaded along the way.
    pub payload: f32,
}

/// Temperatures, fluids, battery and wear: the slow state the physics step does not own.
#[derive(Component, Debug, Clone)]
pub struct Condition {
    /// Coolant temperature in °C.
    pub coolant_c: f32,
    /// Oil temperature in °C.
    pub oil_c: f32,
    /// Intake air temperature in °C.
    pub intake_c: f32,
    /// Transmission temperature in °C.
    pub transmission_c: f32,
    /// Brake disc temperatures (front, rear) in °C.
    pub brake_c: [f32; 2],
    /// Tyre temperatures (FL, FR, RL, RR) in °C.
    pub tyre_c: [f32; 4],
    /// Tyre pressures at 20 °C (FL, FR, RL, RR) in kPa; leaks lower these.
    pub tyre_cold_kpa: [f32; 4],
    /// Tyre pressures now, in kPa.
    pub tyre_kpa: [f32; 4],
    /// Whether each tyre has blown out.
    pub tyre_blown: [bool; 4],
    /// Coolant level, 0-1.
    pub coolant_level: f32,
    /// Brake pad thickness (front, rear) in millimetres.
    pub pad_mm: [f32; 2],
    /// Wheel bearing wear (FL, FR, RL, RR), 0 new to 1 seized.
    pub bearing_wear: [f32; 4],
    /// Oil pump delivery, 0-1 of nominal.
    pub oil_pump: f32,
    /// Oil pressure in kPa.
    pub oil_kpa: f32,
    /// Battery state of charge, 0-1.
    pub soc: f32,
    /// Battery capacity, 0-1 of nominal.
    pub battery_capacity: f32,
    /// Battery internal resistance in milliohms.
    pub battery_mohm: f32,
    /// Battery terminal voltage in volts.
    pub battery_v: f32,
    /// Battery current in amperes, positive when charging.
    pub battery_a: f32,
    /// Battery temperature in °C.
    pub battery_c: f32,
    /// Accumulated engine damage from heat or oil starvation, 0-1.
    pub engine_damage: f32,
    /// Per-component health.
    pub health: ComponentHealth,
}

impl Condition {
    /// A vehicle fresh from the depot, at air temperature `ambient_c`.
    pub fn new(spec: &VehicleSpec, ambient_c: f32) -> Self {
        Self {
            coolant_c: ambient_c,
            oil_c: ambient_c,
            intake_c: ambient_c,
            transmission_c: ambient_c,
            brake_c: [ambient_c; 2],
            tyre_c: [ambient_c; 4],
            tyre_cold_kpa: [spec.tyre_kpa; 4],
            tyre_kpa: [spec.tyre_kpa; 4],
            tyre_blown: [false; 4],
            coolant_level: 1.0,
            pad_mm: [PAD_MM; 2],
            bearing_wear: [0.0; 4],
            oil_pump: 1.0,
            oil_kpa: 0.0,
            soc: 0.9,
            battery_capacity: 1.0,
            battery_mohm: BATTERY_MOHM,
            battery_v: 25.4,
            battery_a: 0.0,
            battery_c: ambient_c,
            engine_damage: 0.0,
            health: ComponentHealth::default(),
        }
    }
}

impl Default for Condition {
    fn default() -> Self {
        Self::new(&VAN, 15.0)
    }
}

/// What the vehicle's trip looks like next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plan {
    /// Deliveries: wander this many more junctions, then head to a depot.
    Deliver {
        /// Junctions left.
        stops_left: u16,
        /// Depot to end the round at.
        then_depot: u16,
    },
    /// Head to this depot.
    ToDepot(u16),
    /// Drive the assigned mission's next stop.
    Mission,
}

/// A mission the centre assigned, being driven.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActiveMission {
    /// Mission id.
    pub id: String,
    /// Stops in order.
    pub stops: Vec<MissionStop>,
    /// Stops reached so far.
    pub reached: usize,
}

/// Where the vehicle is going and what limits apply.
#[derive(Component, Debug, Clone)]
pub struct Navigation {
    /// Activity.
    pub status: VehicleStatus,
    /// Node left last.
    pub from: u32,
    /// Node driving to.
    pub to: u32,
    /// What to do at the next junctions.
    pub plan: Plan,
    /// Seconds left to wait at a depot.
    pub dwell_s: f32,
    /// Seconds of repair left.
    pub repair_s: f32,
    /// Speed cap from a command, in m/s.
    pub commanded_cap_mps: Option<f32>,
    /// Whether a command asked for a stop.
    pub stop_commanded: bool,
    /// Whether the vehicle should be repaired at the next depot.
    pub maintenance_due: bool,
    /// The status last announced in a `status_changed` event.
    pub announced_status: VehicleStatus,
    /// The mission being driven, if any.
    pub mission: Option<ActiveMission>,
    /// Mission events waiting to be sent: navigation runs in parallel and cannot reach the
    /// outbox itself.
    pub mission_events: Vec<EventKind>,
}

impl Navigation {
    /// Gives the mission up, if there is one, saying why; the vehicle heads for depot `home`.
    pub fn abandon_mission(&mut self, reason: &str, home: u16) {
        if let Some(mission) = self.mission.take() {
            self.mission_events.push(EventKind::MissionAbandoned { mission_id: mission.id, reason: reason.to_owned() });
            if self.plan == Plan::Mission {
                self.plan = Plan::ToDepot(home);
            }
        }
    }

    /// Counts the mission's stops at node `here` as reached. Returns whether that finished it.
    pub fn reach_stops_at(&mut self, here: u32) -> bool {
        let Some(mission) = &mut self.mission else { return false };
        while let Some(stop) = mission.stops.get(mission.reached).filter(|s| s.node == here) {
            mission.reached += 1;
            self.mission_events.push(EventKind::MissionProgress {
                mission_id: mission.id.clone(),
                reached: mission.reached as u16,
                of: mission.stops.len() as u16,
                stop: stop.name.clone(),
            });
        }
        if mission.reached < mission.stops.len() {
            return false;
        }
        self.mission_events.push(EventKind::MissionCompleted { mission_id: mission.id.clone() });
        self.mission = None;
        true
    }

    /// The node the mission heads for next.
    pub fn mission_target(&self) -> Option<u32> {
        self.mission.as_ref().and_then(|m| m.stops.get(m.reached)).map(|s| s.node)
    }
}

impl Default for Navigation {
    fn default() -> Self {
        Self {
            status: VehicleStatus::Idle,
            from: 0,
            to: 0,
            plan: Plan::ToDepot(0),
            dwell_s: 0.0,
            repair_s: 0.0,
            commanded_cap_mps: None,
            stop_commanded: false,
            maintenance_due: false,
            announced_status: VehicleStatus::Idle,
            mission: None,
            mission_events: Vec::new(),
        }
    }
}

/// One injected failure in progress.
#[derive(Debug, Clone)]
pub struct ActiveFailure {
    /// Mode.
    pub mode: FailureMode,
    /// Simulation time it began, in seconds.
    pub onset_s: f64,
    /// Multiplier on the nominal degradation rate.
    pub rate: f32,
    /// Damage so far, 0-1.
    pub severity: f32,
    /// Simulation time of functional failure, once reached.
    pub failed_at_s: Option<f64>,
    /// Wheel (FL, FR, RL, RR) for tyre and bearing faults.
    pub wheel: usize,
    /// Sensor for sensor faults.
    pub sensor: Metric,
    /// Value a stuck sensor reports.
    pub stuck_value: Option<f32>,
    /// Direction of a drift, +1 or -1.
    pub drift_sign: f32,
}

/// Failures injected into this vehicle.
#[derive(Component, Debug, Clone, Default)]
pub struct Faults(pub Vec<ActiveFailure>);

/// Local-rule state: persistence counters, each rule's reading a second ago (for rates of
/// change) and the strongest decision in force. Inline, by rule index in
/// [`crate::sim::rules::RULES`]: no allocation and no second telemetry frame per vehicle.
#[derive(Component, Debug, Clone)]
pub struct RuleState {
    /// Seconds each rule's condition has held.
    pub held_s: [u16; RULE_COUNT],
    /// Each rule's signal at the previous sample; NaN before the first, so no rate holds.
    pub previous: [f32; RULE_COUNT],
    /// Rules that have fired and not yet re-armed (bit per rule).
    pub fired: u64,
    /// Strongest decision in force.
    pub decision: Option<RuleDecision>,
}

impl Default for RuleState {
    fn default() -> Self {
        Self { held_s: [0; RULE_COUNT], previous: [f32::NAN; RULE_COUNT], fired: 0, decision: None }
    }
}

/// The vehicle's sensors: noise source, the errors they carry from one reading to the next,
/// and the last frame they produced.
#[derive(Component, Debug, Clone)]
pub struct SensorState {
    /// Noise source, seeded per vehicle.
    pub rng: SmallRng,
    /// Each metric's carried error now (an estimate's or a temperature probe's), in standard
    /// deviations of its noise (see `sim::sensors`; unused where the noise is white). Drawn at
    /// spawn from the errors' own distribution, so a run starts as it goes on.
    pub carried_error: [f32; METRIC_COUNT],
    /// Last frame sent, for rates of change.
    pub last: Option<TelemetryFrame>,
}

impl SensorState {
    /// A vehicle's sensors, their noise seeded by `seed`.
    pub fn seeded(seed: u64) -> Self {
        let mut rng = SmallRng::seed_from_u64(seed);
        let carried_error = std::array::from_fn(|_| rng.sample(StandardNormal));
        Self { rng, carried_error, last: None }
    }
}

impl Default for SensorState {
    fn default() -> Self {
        Self::seeded(0)
    }
}

/// Commands remembered per vehicle: enough for the resends of one command and a restarted
/// centre's repeats, at a few bytes each.
const REMEMBERED_COMMANDS: usize = 8;

/// The commands a vehicle handled last and how it answered, so a repeat is acknowledged the
/// same way without being applied twice. A few bytes per vehicle: 32-bit hashes of the ids
/// (a false match needs two of the last eight ids to collide).
#[derive(Component, Debug, Clone, Default)]
pub struct CommandMemory {
    /// Hashes of the ids; 0 marks an empty slot.
    recent: [u32; REMEMBERED_COMMANDS],
    /// Bit `i` set: `recent[i]` was accepted.
    accepted: u8,
    next: u8,
}

impl CommandMemory {
    fn key(id: &str) -> u32 {
        use std::hash::{Hash, Hasher};
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        id.hash(&mut hasher);
        (hasher.finish() as u32).max(1)
    }

    /// How the command with `id` was answered, if it is remembered.
    pub fn outcome_of(&self, id: &str) -> Option<crate::model::CommandOutcome> {
        let key = Self::key(id);
        let slot = self.recent.iter().position(|k| *k == key)?;
        Some(if self.accepted & (1 << slot) != 0 { crate::model::CommandOutcome::Accepted } else { crate::model::CommandOutcome::Rejected })
    }

    /// Remembers the answer to `id`, forgetting the oldest.
    pub fn remember(&mut self, id: &str, outcome: crate::model::CommandOutcome) {
        let slot = usize::from(self.next) % REMEMBERED_COMMANDS;
        self.recent[slot] = Self::key(id);
        self.accepted = (self.accepted & !(1 << slot)) | (u8::from(outcome == crate::model::CommandOutcome::Accepted) << slot);
        self.next = self.next.wrapping_add(1);
    }
}
