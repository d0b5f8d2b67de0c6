//! A vehicle entity: its shape (declared with `#[require]`), its physical specification and the
//! one path that spawns a fleet.

use bevy::prelude::*;
use bevy_rapier3d::prelude::*;
use rand::{SeedableRng, rngs::SmallRng};

use super::world::RoadNetwork;
use crate::model::{ComponentHealth, EventKind, Metric, MissionStop, RuleDecision, TelemetryFrame, VehicleId, VehicleModel, VehicleStatus};

/// Physical specification of a vehicle model.
#[derive(Debug, Clone, Copy)]
pub struct VehicleSpec {
    /// Laden mass in kilograms.
    pub mass_kg: f32,
    /// Peak engine power in watts.
    pub max_power_w: f32,
    /// Peak engine torque in newton metres.
    pub max_torque_nm: f32,
    /// Idle speed in rpm.
    pub idle_rpm: f32,
    /// Maximum engine speed in rpm.
    pub redline_rpm: f32,
    /// Gearbox ratios, first gear first.
    pub gears: &'static [f32],
    /// Final drive ratio.
    pub final_drive: f32,
    /// Rolling radius of the tyres in metres.
    pub wheel_radius_m: f32,
    /// Drag coefficient times frontal area in square metres.
    pub drag_area_m2: f32,
    /// Rolling resistance coefficient at nominal tyre pressure.
    pub rolling_coeff: f32,
    /// Deceleration the brakes give at full pedal on good pads, in m/s².
    pub max_brake_mps2: f32,
    /// Cold tyre pressure in kPa.
    pub tyre_kpa: f32,
    /// Wheelbase in metres.
    pub wheelbase_m: f32,
    /// Top speed in metres per second.
    pub top_speed_mps: f32,
    /// Heat capacity of the engine and coolant in kJ/K.
    pub engine_heat_capacity_kj_k: f32,
    /// Fuel tank in litres.
    pub tank_l: f32,
    /// Body size (length, height, width) in metres, for drawing.
    pub size_m: Vec3,
}

const VAN: VehicleSpec = VehicleSpec {
    mass_kg: 3_000.0,
    max_power_w: 120_000.0,
    max_torque_nm: 400.0,
    idle_rpm: 800.0,
    redline_rpm: 4_500.0,
    gears: &[4.5, 2.6, 1.6, 1.2, 1.0, 0.8],
    final_drive: 3.9,
    wheel_radius_m: 0.36,
    drag_area_m2: 1.6,
    rolling_coeff: 0.010,
    max_brake_mps2: 8.0,
    tyre_kpa: 450.0,
    wheelbase_m: 3.6,
    top_speed_mps: 36.0,
    engine_heat_capacity_kj_k: 60.0,
    tank_l: 80.0,
    size_m: Vec3::new(5.9, 2.6, 2.0),
};

const TRUCK: VehicleSpec = VehicleSpec {
    mass_kg: 14_000.0,
    max_power_w: 240_000.0,
    max_torque_nm: 1_200.0,
    idle_rpm: 600.0,
    redline_rpm: 2_600.0,
    gears: &[6.5, 4.0, 2.6, 1.7, 1.25, 1.0],
    final_drive: 4.1,
    wheel_radius_m: 0.5,
    drag_area_m2: 6.0,
    rolling_coeff: 0.007,
    max_brake_mps2: 6.5,
    tyre_kpa: 850.0,
    wheelbase_m: 5.5,
    top_speed_mps: 25.0,
    engine_heat_capacity_kj_k: 180.0,
    tank_l: 300.0,
    size_m: Vec3::new(9.0, 3.6, 2.5),
};

const BUS: VehicleSpec = VehicleSpec {
    mass_kg: 15_000.0,
    max_power_w: 220_000.0,
    max_torque_nm: 1_100.0,
    idle_rpm: 600.0,
    redline_rpm: 2_500.0,
    gears: &[5.0, 3.0, 2.0, 1.4, 1.0, 0.8],
    final_drive: 4.9,
    wheel_radius_m: 0.5,
    drag_area_m2: 6.5,
    rolling_coeff: 0.008,
    max_brake_mps2: 6.5,
    tyre_kpa: 800.0,
    wheelbase_m: 6.0,
    top_speed_mps: 22.0,
    engine_heat_capacity_kj_k: 170.0,
    tank_l: 250.0,
    size_m: Vec3::new(12.0, 3.2, 2.55),
};

/// The specification of a model.
pub fn spec(model: VehicleModel) -> &'static VehicleSpec {
    match model {
        VehicleModel::Van => &VAN,
        VehicleModel::Truck => &TRUCK,
        VehicleModel::Bus => &BUS,
    }
}

/// A simulated vehicle. Spawning this component brings everything else a vehicle needs.
#[derive(Component, Debug, Clone)]
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
    Drive,
    Condition,
    Navigation,
    Faults,
    RuleState,
    SensorState,
    super::rules::PreviousFrame,
)]
pub struct Vehicle {
    /// Identifier.
    pub id: VehicleId,
    /// Model.
    pub model: VehicleModel,
    /// Index of the home depot in [`RoadNetwork::depots`].
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

/// Nominal battery internal resistance in milliohms.
pub const BATTERY_MOHM: f32 = 8.0;
/// Nominal brake pad thickness in millimetres.
pub const PAD_MM: f32 = 12.0;

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
    pub mode: crate::model::FailureMode,
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

/// Local-rule state: persistence counters and the strongest decision in force.
#[derive(Component, Debug, Clone, Default)]
pub struct RuleState {
    /// Seconds each rule's condition has held.
    pub held_s: Vec<u16>,
    /// Rules that have fired and not yet re-armed (bit per rule).
    pub fired: u64,
    /// Strongest decision in force.
    pub decision: Option<RuleDecision>,
}

/// The vehicle's sensors: noise source and the last frame they produced.
#[derive(Component, Debug, Clone)]
pub struct SensorState {
    /// Noise source, seeded per vehicle.
    pub rng: SmallRng,
    /// Last frame sent, for rates of change.
    pub last: Option<TelemetryFrame>,
}

impl Default for SensorState {
    fn default() -> Self {
        Self { rng: SmallRng::seed_from_u64(0), last: None }
    }
}

/// Seeds of per-vehicle random streams: a vehicle's stream depends on the run seed and its id
/// only, not on how many other vehicles there are.
pub fn vehicle_seed(run_seed: u64, id: VehicleId) -> u64 {
    // SplitMix64 finaliser: spreads nearby ids over the whole seed space.
    let mut z = run_seed ^ (u64::from(id.0).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Fleet parameters resolved from the scenario and the command line.
#[derive(Resource, Debug, Clone)]
pub struct FleetConfig {
    /// Vehicles in the whole fleet.
    pub count: u32,
    /// Which of them this process simulates.
    pub members: Members,
    /// Run seed.
    pub seed: u64,
    /// Seconds vehicles wait at depots.
    pub dwell_s: f32,
}

/// Which vehicles of the fleet one process simulates. A vehicle's behaviour depends only on the
/// scenario, the seed and its id, so shards of a fleet together produce exactly the messages the
/// whole fleet produces in one process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Members {
    /// Every vehicle.
    #[default]
    All,
    /// Shard `index` (from 0) of `count`: vehicles whose number minus one is `index` modulo `count`.
    Shard {
        /// This shard, from 0.
        index: u32,
        /// Shards in all.
        count: u32,
    },
    /// One vehicle.
    One(VehicleId),
}

impl Members {
    /// Whether vehicle `id` is simulated here.
    pub fn contains(self, id: VehicleId) -> bool {
        match self {
            Members::All => true,
            Members::Shard { index, count } => (id.0.wrapping_sub(1)) % count == index,
            Members::One(one) => one == id,
        }
    }

    /// Parses `I/N`, shards numbered from 1 as people count them.
    pub fn parse_shard(text: &str) -> Result<Members, String> {
        let (i, n) = text.split_once('/').ok_or_else(|| format!("`{text}`: expected I/N, like 1/2"))?;
        let i: u32 = i.trim().parse().map_err(|_| format!("`{text}`: shard `{i}` is not a number"))?;
        let n: u32 = n.trim().parse().map_err(|_| format!("`{text}`: shard count `{n}` is not a number"))?;
        if n == 0 || i == 0 || i > n {
            return Err(format!("`{text}`: shards are numbered 1 to N, and N is at least 1"));
        }
        Ok(Members::Shard { index: i - 1, count: n })
    }
}

/// Spawns the fleet's members, parked at their home depots with staggered departures.
pub(super) fn spawn_fleet(
    mut commands: Commands,
    config: Res<FleetConfig>,
    scenario: Res<super::ScenarioResource>,
    network: Res<RoadNetwork>,
    env_model: Res<super::environment::EnvironmentModel>,
) {
    let env = env_model.at(0.0);
    let depot_count = network.depots.len() as u32;
    let models = scenario.0.fleet_models(config.count);
    for index in 0..config.count {
        let id = VehicleId(index + 1);
        if !config.members.contains(id) {
            continue;
        }
        let model = models[index as usize];
        let spec = spec(model);
        let home = (index % depot_count) as u16;
        let node = network.depots[home as usize].node;
        let at = network.position(node);
        let altitude = network.terrain.height(at.x, at.y);
        // Park vehicles side by side so they do not overlap on screen.
        let slot = (index / depot_count) as f32;
        let offset = Vec3::new((slot % 10.0) * 4.0 - 18.0, 0.0, (slot / 10.0).floor() * 14.0);
        let mut drive = Drive { fuel_l: spec.tank_l * 0.9, altitude_m: altitude, ..default() };
        drive.rpm = 0.0;
        let navigation = Navigation {
            from: node,
            to: node,
            plan: Plan::ToDepot(home),
            // Staggered departures: a fleet does not leave in one convoy.
            dwell_s: (index % 60) as f32 * 5.0,
            ..default()
        };
        let principal = spec.mass_kg * (spec.size_m.x * spec.size_m.x + spec.size_m.z * spec.size_m.z) / 12.0;
        commands.spawn((
            Name::new(id.to_string()),
            Vehicle { id, model, home_depot: home },
            Transform::from_translation(Vec3::new(at.x, 0.0, at.y) + offset),
            AdditionalMassProperties::MassProperties(MassProperties {
                local_center_of_mass: Vec3::ZERO,
                mass: spec.mass_kg,
                principal_inertia: Vec3::new(principal, principal, principal),
                ..default()
            }),
            drive,
            Condition::new(spec, env_model.ambient_at(&env, altitude)),
            navigation,
            SensorState { rng: SmallRng::seed_from_u64(vehicle_seed(config.seed, id)), last: None },
        ));
    }
}
