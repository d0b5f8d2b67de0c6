//! Driving: route following, the driver's speed choice, and the powertrain, brake, steering and
//! tyre model that turns pedals into forces on each vehicle's rapier rigid body.
//!
//! Rapier integrates the motion. Tyre-road contact is modelled analytically (grip-limited
//! longitudinal and lateral tyre forces) rather than with collider contacts, which would cost
//! far more than the 10,000-vehicle budget allows.

use bevy::prelude::*;
use bevy_rapier3d::prelude::*;
use rand::SeedableRng;
use rand::rngs::SmallRng;

use super::clock::{SimClock, STEP_S};
use super::environment::Environment;
use super::vehicle::{Condition, Drive, Navigation, Plan, RuleState, Vehicle, VehicleSpec, vehicle_seed};
use super::fleet::WorldMap;
use crate::world::RoadNetwork;
use super::fleet::FleetConfig;
use crate::model::{RuleDecision, VehicleStatus};
use crate::schedule::SimSystems;

/// Standard gravity in m/s².
pub const G: f32 = 9.81;
/// Air density in kg/m³.
const AIR_DENSITY: f32 = 1.2;
/// Distance from a junction at which it counts as reached, in metres.
const ARRIVAL_M: f32 = 8.0;
/// Speed through junctions in m/s.
const JUNCTION_MPS: f32 = 20.0 / 3.6;
/// Share of the tank below which a delivery is cut short for the depot.
const LOW_FUEL_SHARE: f32 = 0.2;
/// Speed cap in limp mode in m/s.
pub const LIMP_MPS: f32 = 30.0 / 3.6;

pub(super) fn plugin(app: &mut App) {
    app.add_systems(FixedUpdate, (navigate, drive).chain().in_set(SimSystems::Control));
}

/// Moves vehicles along their routes: junction arrivals, depot dwell, departures.
fn navigate(
    clock: Res<SimClock>,
    network: Res<WorldMap>,
    config: Res<FleetConfig>,
    mut vehicles: Query<(&Vehicle, &Transform, &mut Navigation, &mut Drive, &RuleState, &mut AdditionalMassProperties)>,
) {
    let dt = STEP_S as f32;
    vehicles.par_iter_mut().for_each(|(vehicle, transform, mut nav, mut drive, rules, mut mass)| {
        let position = Vec2::new(transform.translation.x, transform.translation.z);
        let payload_before = drive.payload;
        navigate_one(vehicle, position, &clock, &network, &config, &mut nav, &mut drive, rules, dt);
        if drive.payload != payload_before {
            // The body weighs what it carries: rapier's mass, and so the acceleration a force
            // gives, follows the payload.
            let spec = vehicle.spec();
            let kg = spec.mass_with(drive.payload);
            let principal = spec.inertia_at(kg);
            *mass = AdditionalMassProperties::MassProperties(MassProperties { mass: kg, principal_inertia: Vec3::splat(principal), ..default() });
        }
    });
}

#[allow(clippy::too_many_arguments)]
fn navigate_one(
    vehicle: &Vehicle,
    position: Vec2,
    clock: &SimClock,
    network: &RoadNetwork,
    config: &FleetConfig,
    nav: &mut Navigation,
    drive: &mut Drive,
    rules: &RuleState,
    dt: f32,
) {
    match nav.status {
        VehicleStatus::Idle => {
            nav.dwell_s -= dt;
            if nav.dwell_s <= 0.0 && !nav.stop_commanded && drive.engine_on_allowed() {
                depart(vehicle, network, nav, drive, clock.steps, config.seed);
            }
        }
        // In the workshop (or on the recovery truck on its way there) the engine is off,
        // however the vehicle got there.
        VehicleStatus::InMaintenance => drive.engine_on = false,
        VehicleStatus::Stopped | VehicleStatus::Offline => {}
        VehicleStatus::EnRoute | VehicleStatus::Returning => {
            if position.distance(network.position(nav.to)) > ARRIVAL_M {
                return;
            }
            let here = nav.to;
            let depot_here = network.depots.iter().position(|d| d.node == here);
            if nav.plan == Plan::Mission && nav.reach_stops_at(here) {
                // Done: rest at the last stop when it is a depot, else head home.
                nav.plan = Plan::ToDepot(depot_here.map_or(vehicle.home_depot, |d| d as u16));
            }
            if let Some(depot) = depot_here
                && nav.plan == Plan::ToDepot(depot as u16)
            {
                arrive_at_depot(nav, drive, config.dwell_s, rules, vehicle.spec().tank_l);
                return;
            }
            // Limp mode overrides the plan: home, now.
            if rules.decision == Some(RuleDecision::LimpMode) && nav.plan != Plan::ToDepot(vehicle.home_depot) {
                nav.abandon_mission("limp mode: the vehicle's own rules sent it home", vehicle.home_depot);
                nav.plan = Plan::ToDepot(vehicle.home_depot);
                nav.status = VehicleStatus::Returning;
            }
            // Low on fuel: the rest of a delivery waits until the tank is filled at the depot.
            if let Plan::Deliver { then_depot, .. } = nav.plan
                && drive.fuel_l < LOW_FUEL_SHARE * vehicle.spec().tank_l
            {
                nav.plan = Plan::ToDepot(then_depot);
            }
            let next = match nav.plan {
                Plan::Deliver { stops_left, then_depot } => {
                    let mut rng = junction_rng(config.seed, vehicle, clock.steps);
                    nav.plan = if stops_left <= 1 { Plan::ToDepot(then_depot) } else { Plan::Deliver { stops_left: stops_left - 1, then_depot } };
                    // A drop at each stop: an even share of what is left.
                    drive.payload *= 1.0 - 1.0 / stops_left.max(1) as f32;
                    network.wander(here, nav.from, &mut rng)
                }
                Plan::ToDepot(depot) => network.next_towards_depot(depot as usize, here),
                Plan::Mission => match nav.mission_target() {
                    Some(target) => network.next_towards(target, here),
                    None => {
                        nav.plan = Plan::ToDepot(vehicle.home_depot);
                        network.next_towards_depot(vehicle.home_depot as usize, here)
                    }
                },
            };
            nav.from = here;
            nav.to = next;
        }
    }
}

impl Drive {
    fn engine_on_allowed(&self) -> bool {
        self.fuel_l > 0.0
    }
}

/// A random stream for one decision, derived from the seed, the vehicle and the step, so that
/// decisions do not depend on the order vehicles are processed in.
fn junction_rng(seed: u64, vehicle: &Vehicle, step: u64) -> SmallRng {
    SmallRng::seed_from_u64(vehicle_seed(seed ^ step.rotate_left(17), vehicle.id))
}

fn depart(vehicle: &Vehicle, network: &RoadNetwork, nav: &mut Navigation, drive: &mut Drive, step: u64, seed: u64) {
    use rand::Rng;
    let mut rng = junction_rng(seed, vehicle, step);
    // Light and heavy loads alike (a stream of its own, so routes do not depend on it): heavy
    // loads work the engine, brakes and tyres harder without any fault.
    drive.payload = junction_rng(seed ^ 0x09A7_10AD, vehicle, step).random_range(0.1..1.0);
    let depots = network.depots.len() as u16;
    let then_depot = if nav.maintenance_due { vehicle.home_depot } else { rng.random_range(0..depots) };
    // Parked vehicles sit at the depot node they last drove to.
    let start = nav.to;
    nav.from = start;
    if nav.mission.is_some() {
        nav.plan = Plan::Mission;
        // A delivery often starts where the vehicle is parked.
        if nav.reach_stops_at(start) {
            nav.plan = Plan::ToDepot(vehicle.home_depot);
        }
    } else {
        nav.plan = Plan::Deliver { stops_left: rng.random_range(4..12), then_depot };
    }
    nav.to = match (nav.plan, nav.mission_target()) {
        (Plan::Mission, Some(target)) => network.next_towards(target, start),
        _ => network.wander(start, u32::MAX, &mut rng),
    };
    nav.status = VehicleStatus::EnRoute;
    drive.engine_on = true;
    drive.cranking_s = 1.5;
}

fn arrive_at_depot(nav: &mut Navigation, drive: &mut Drive, dwell_s: f32, rules: &RuleState, tank_l: f32) {
    nav.from = nav.to;
    drive.engine_on = false;
    drive.payload = 0.0;
    // Every stop at a depot fills the tank (within the dwell).
    drive.fuel_l = tank_l;
    // A vehicle in limp mode, or one booked in, is repaired before it leaves again.
    if nav.maintenance_due || rules.decision >= Some(RuleDecision::DeratePower) {
        nav.status = VehicleStatus::InMaintenance;
        nav.repair_s = super::failures::REPAIR_S;
    } else {
        nav.status = VehicleStatus::Idle;
        nav.dwell_s = dwell_s;
    }
}

/// The driver and the vehicle: speed choice, pedals, gearbox, engine, brakes, tyres.
#[allow(clippy::type_complexity)]
fn drive(
    network: Res<WorldMap>,
    env: Res<Environment>,
    mut vehicles: Query<(&Vehicle, &Transform, &Navigation, &RuleState, &Condition, &mut Drive, &mut Velocity, &mut ExternalForce)>,
) {
    let dt = STEP_S as f32;
    vehicles.par_iter_mut().for_each(|(vehicle, transform, nav, rules, condition, mut drive, mut velocity, mut force)| {
        let spec = vehicle.spec();
        let forward3 = transform.forward();
        let forward = Vec2::new(forward3.x, forward3.z).normalize_or(Vec2::NEG_Y);
        let right = Vec2::new(-forward.y, forward.x);
        let position = Vec2::new(transform.translation.x, transform.translation.z);
        let planar = Vec2::new(velocity.linear.x, velocity.linear.z);
        let speed = planar.dot(forward);
        let lateral_speed = planar.dot(right);

        drive.altitude_m = network.terrain.height(position.x, position.y);
        drive.grade = network.terrain.gradient(position.x, position.y).dot(forward);
        drive.heading = forward.x.atan2(-forward.y).rem_euclid(std::f32::consts::TAU);
        drive.accel_mps2 = (speed - drive.speed_mps) / dt;
        drive.speed_mps = speed;
        drive.odometer_m += f64::from(speed.abs() * dt);

        let moving = matches!(nav.status, VehicleStatus::EnRoute | VehicleStatus::Returning);
        let stopping = !moving || rules.decision == Some(RuleDecision::ControlledStop) || nav.stop_commanded;
        let target_speed = if stopping { 0.0 } else { desired_speed(spec, &network, nav, rules, condition, position) };

        // Grip available from the road and the tyres.
        let blown = condition.tyre_blown.iter().filter(|b| **b).count() as f32;
        let mu = env.road_friction * (1.0 - 0.3 * blown);
        let mass_kg = spec.mass_with(drive.payload);
        let grip_n = mu * mass_kg * G;

        // Resistances along the direction of travel.
        let underinflation = condition.tyre_kpa.iter().map(|p| (1.0 - p / spec.tyre_kpa).max(0.0)).sum::<f32>() / 4.0;
        let bearing_drag = condition.bearing_wear.iter().map(|w| if *w >= 1.0 { 0.05 } else { w * w * 0.01 }).sum::<f32>();
        let rolling = (spec.rolling_coeff * (1.0 + 3.0 * underinflation + 4.0 * blown) + bearing_drag) * mass_kg * G;
        let aero = 0.5 * AIR_DENSITY * spec.drag_area_m2 * speed * speed.abs();
        let slope = mass_kg * G * drive.grade / (1.0 + drive.grade * drive.grade).sqrt();
        let resist = aero + rolling * speed.signum() * (speed.abs() > 0.05) as u8 as f32 + slope;

        // Pedals from a speed controller with feed-forward of the resistances.
        let wanted_accel = ((target_speed - speed) * 0.8).clamp(-if stopping { 2.5 } else { 4.0 }, 1.5);
        let needed_n = mass_kg * wanted_accel + resist;
        drive.gear = select_gear(spec, speed);
        let ratio = spec.gears[(drive.gear.max(1) - 1) as usize] * spec.final_drive;
        let wheel_rpm = speed.max(0.0) / spec.wheel_radius_m * 60.0 / std::f32::consts::TAU;
        drive.rpm = if drive.engine_on { (wheel_rpm * ratio).clamp(spec.idle_rpm, spec.redline_rpm) } else { 0.0 };
        let derate = match rules.decision {
            Some(RuleDecision::DeratePower) => 0.5,
            Some(RuleDecision::LimpMode) => 0.4,
            _ => 1.0,
        } * (1.0 - condition.engine_damage * 0.8);
        let torque_avail = if drive.engine_on { available_torque(spec, drive.rpm) * derate } else { 0.0 };
        let drive_avail_n = torque_avail * ratio * 0.9 / spec.wheel_radius_m;
        let pad_effect = (condition.pad_mm[0].min(condition.pad_mm[1]) / 2.0).clamp(0.5, 1.0);
        let fade = 1.0 - ((condition.brake_c[0] - 450.0) / 600.0).clamp(0.0, 0.4);
        // The brakes' force is the hardware's, sized for the laden mass.
        let brake_avail_n = spec.mass_kg * spec.max_brake_mps2 * pad_effect * fade;
        if needed_n >= 0.0 {
            drive.throttle = if drive_avail_n > 0.0 { (needed_n / drive_avail_n).clamp(0.0, 1.0) } else { 0.0 };
            drive.brake = 0.0;
        } else {
            drive.throttle = 0.0;
            drive.brake = (-needed_n / brake_avail_n).clamp(0.0, 1.0);
        }
        drive.engine_torque_nm = drive.throttle * torque_avail;
        drive.engine_load = if torque_avail > 0.0 { drive.engine_torque_nm / available_torque(spec, drive.rpm) } else { 0.0 };
        drive.engine_power_w = drive.engine_torque_nm * drive.rpm * std::f32::consts::TAU / 60.0;

        let traction = drive.throttle * drive_avail_n;
        let braking = drive.brake * brake_avail_n;
        let brake_power = braking * speed.abs();
        drive.brake_power_w = [brake_power * 0.6, brake_power * 0.4];

        // Longitudinal force, limited by grip; brakes cannot push a vehicle backwards.
        let mut longitudinal = (traction - braking * speed.signum() - resist).clamp(-grip_n, grip_n);
        if speed.abs() < 0.3 && target_speed == 0.0 {
            // Held by the parking brake.
            longitudinal = 0.0;
            velocity.linear = Vec3::ZERO;
        }
        // Tyres cancel sideways slip, within the grip left after the longitudinal force.
        let lateral_grip = (grip_n * grip_n - longitudinal * longitudinal).max(0.0).sqrt();
        let lateral = (-mass_kg * lateral_speed / dt).clamp(-lateral_grip, lateral_grip);
        let total = forward * longitudinal + right * lateral;
        force.force = Vec3::new(total.x, 0.0, total.y);

        // Steering: kinematic bicycle model, yaw rate limited by grip.
        let yaw_rate = if moving && speed > 0.1 {
            let target = network.position(nav.to) - position;
            let error = forward.angle_to(target.normalize_or(forward));
            let steer = (error * 1.5).clamp(-0.6, 0.6);
            let ideal = speed / spec.wheelbase_m * steer.tan();
            let limit = mu * G / speed.max(1.0);
            ideal.clamp(-limit, limit)
        } else {
            0.0
        };
        // angle_to is counter-clockwise in (x, z) with z south, i.e. clockwise seen from above.
        drive.yaw_rate = yaw_rate;
        drive.lateral_mps2 = speed * yaw_rate;
        velocity.angular = Vec3::new(0.0, -yaw_rate, 0.0);
    });
}

fn desired_speed(spec: &VehicleSpec, network: &RoadNetwork, nav: &Navigation, rules: &RuleState, condition: &Condition, position: Vec2) -> f32 {
    let mut speed = network.limit_between(nav.from, nav.to).min(spec.top_speed_mps);
    let to_junction = position.distance(network.position(nav.to));
    // Slow for the junction ahead: v² = v_j² + 2·a·d with a gentle 1.5 m/s².
    speed = speed.min((JUNCTION_MPS * JUNCTION_MPS + 3.0 * to_junction).sqrt());
    if rules.decision == Some(RuleDecision::LimpMode) || condition.tyre_blown.iter().any(|b| *b) {
        speed = speed.min(LIMP_MPS);
    }
    if let Some(cap) = nav.commanded_cap_mps {
        speed = speed.min(cap);
    }
    speed
}

/// The gear a driver would pick: the highest that keeps the engine above its torque band's floor.
fn select_gear(spec: &VehicleSpec, speed: f32) -> u8 {
    let wheel_rpm = speed.max(0.0) / spec.wheel_radius_m * 60.0 / std::f32::consts::TAU;
    let floor = spec.idle_rpm + 0.35 * (spec.redline_rpm - spec.idle_rpm);
    let mut gear = 1;
    for (i, ratio) in spec.gears.iter().enumerate() {
        if wheel_rpm * ratio * spec.final_drive >= floor {
            gear = i + 1;
        }
    }
    gear as u8
}

/// Full-throttle torque at `rpm`: a plateau in mid-range, less at idle, power-limited above.
pub fn available_torque(spec: &VehicleSpec, rpm: f32) -> f32 {
    let span = (rpm - spec.idle_rpm) / (spec.redline_rpm - spec.idle_rpm);
    let shape = if span < 0.3 { 0.7 + span } else { 1.0 };
    let power_limited = spec.max_power_w / (rpm.max(1.0) * std::f32::consts::TAU / 60.0);
    (spec.max_torque_nm * shape).min(power_limited)
}
