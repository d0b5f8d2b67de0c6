//! The one path that spawns a fleet: each member parked at its home depot, departures
//! staggered, random streams seeded per vehicle.

use bevy::prelude::*;
use bevy_rapier3d::prelude::*;
use rand::{SeedableRng, rngs::SmallRng};

use super::components::{Condition, Drive, Navigation, Plan, SensorState, Vehicle};
use super::spec::spec;
use crate::model::VehicleId;
use crate::sim::environment::EnvironmentModel;
use crate::sim::fleet::{FleetConfig, ScenarioResource, WorldMap};

/// Seeds of per-vehicle random streams: a vehicle's stream depends on the run seed and its id
/// only, not on how many other vehicles there are.
pub fn vehicle_seed(run_seed: u64, id: VehicleId) -> u64 {
    // SplitMix64 finaliser: spreads nearby ids over the whole seed space.
    let mut z = run_seed ^ (u64::from(id.0).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Spawns the fleet's members, parked at their home depots with staggered departures.
pub(crate) fn spawn_fleet(
    mut commands: Commands,
    config: Res<FleetConfig>,
    scenario: Res<ScenarioResource>,
    network: Res<WorldMap>,
    env_model: Res<EnvironmentModel>,
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
