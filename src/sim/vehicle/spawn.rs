//! The one path that spawns a fleet: each member parked at its home depot, departures
//! staggered, random streams seeded per vehicle.

use bevy::ecs::system::RunSystemOnce;
use bevy::prelude::*;
use bevy_rapier3d::plugin::context::{DefaultRapierContext, RapierContextEntityLink, RapierRigidBodySet};
use bevy_rapier3d::prelude::*;

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
///
/// In batches, with the physics context already linked, each batch given its rapier bodies
/// before the next is spawned: a vehicle's row moves archetype once (when rapier inserts its
/// body handle), and the table it was spawned in, emptied, is reused by the next batch
/// instead of holding a second copy of the whole fleet. (A command queue of one spawn per
/// vehicle, and a spawn table of the fleet's size, cost 3.5 KB a vehicle at 10,000.)
pub(crate) fn spawn_fleet(world: &mut World) {
    let config = world.resource::<FleetConfig>().clone();
    let network = world.resource::<WorldMap>().clone();
    let env_model = world.resource::<EnvironmentModel>().clone();
    let scenario = &world.resource::<ScenarioResource>().0;
    let models = scenario.fleet_models(config.count);
    let homes: Vec<u16> = (0..config.count).map(|index| scenario.home_depot(index) as u16).collect();
    // The physics plugin (part of the simulation) makes its default context before Startup.
    let context = world.query_filtered::<Entity, With<DefaultRapierContext>>().single(world).expect("the rapier plugin's default context exists at Startup");
    let env = env_model.at(0.0);
    let depot_count = network.depots.len() as u32;
    let members: Vec<u32> = (0..config.count).filter(|&index| config.members.contains(VehicleId(index + 1))).collect();
    let fleet_size = members.len();
    let mut vehicles = members.into_iter().map(|index| {
        let id = VehicleId(index + 1);
        let model = models[index as usize];
        let spec = spec(model);
        let home = homes[index as usize];
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
        // Parked empty: the payload is loaded at departure.
        let (mass, principal) = (spec.mass_with(0.0), spec.inertia_at(spec.mass_with(0.0)));
        (
            (Name::new(id.to_string()), Vehicle { id, model, home_depot: home }, Transform::from_translation(Vec3::new(at.x, 0.0, at.y) + offset)),
            AdditionalMassProperties::MassProperties(MassProperties {
                local_center_of_mass: Vec3::ZERO,
                mass,
                principal_inertia: Vec3::new(principal, principal, principal),
                ..default()
            }),
            drive,
            Condition::new(spec, env_model.ambient_at(&env, altitude)),
            navigation,
            SensorState::seeded(vehicle_seed(config.seed, id)),
            RapierContextEntityLink(context),
        )
    });
    // Rapier's body arena, too, at the fleet's size rather than the next power of two.
    if let Some(mut bodies) = world.get_mut::<RapierRigidBodySet>(context)
        && bodies.bodies.is_empty()
    {
        bodies.bodies = bevy_rapier3d::rapier::dynamics::RigidBodySet::with_capacity(fleet_size);
    }
    // Bundles are made a batch at a time: the whole fleet's, made first, would be a second
    // copy of it in memory.
    loop {
        let batch: Vec<_> = vehicles.by_ref().take(SPAWN_BATCH).collect();
        if batch.is_empty() {
            break;
        }
        world.spawn_batch(batch);
        if let Err(error) = world.run_system_once(bevy_rapier3d::plugin::systems::init_rigid_bodies) {
            error!("cannot give the fleet its rigid bodies: {error}");
            return;
        }
    }
}

/// Vehicles spawned per batch.
const SPAWN_BATCH: usize = 256;
