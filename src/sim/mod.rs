//! The simulated fleet: vehicles as ECS entities on rapier rigid bodies, driven over a road
//! network, with thermal, electrical and wear models, injected failures, sensors and local
//! rules. Everything runs in `FixedUpdate`, so a run depends only on its scenario and seed.
//!
//! Modules depend on each other in one direction only (a test checks it): [`fleet`],
//! [`clock`] and [`vehicle`] at the bottom, the phases above them, this file assembling them.

pub mod clock;
mod commands;
pub mod condition;
pub mod dynamics;
pub mod environment;
pub mod failures;
pub mod fleet;
pub mod hazards;
mod missions;
pub mod outbox;
pub mod rules;
pub mod sensors;
pub mod vehicle;

use std::sync::Arc;

use bevy::prelude::*;

use crate::bus::SharedBus;
use crate::model::VehicleId;
use crate::scenario::Scenario;
use crate::world::RoadNetwork;

pub use clock::{SimClock, Speed};
pub use failures::InjectFailure;
pub use fleet::{FleetConfig, Members, Outages, ScenarioResource, VehicleIndex, WorldMap};
pub use outbox::{BusHandle, SimCounters};
pub use vehicle::Vehicle;

/// Runs a scenario's fleet on a bus.
pub struct SimPlugin {
    /// The scenario.
    pub scenario: Scenario,
    /// Vehicles in the fleet (the scenario's count unless overridden).
    pub vehicles: u32,
    /// Which of them to simulate here.
    pub members: Members,
    /// First sequence number per vehicle (0 for those absent).
    pub first_seq: std::collections::BTreeMap<VehicleId, u64>,
    /// Run seed (the scenario's unless overridden).
    pub seed: u64,
    /// Where vehicles publish and receive.
    pub bus: SharedBus,
}

impl Plugin for SimPlugin {
    fn build(&self, app: &mut App) {
        let network = WorldMap(Arc::new(RoadNetwork::generate(&self.scenario)));
        let env_model = environment::EnvironmentModel {
            spec: self.scenario.environment.clone(),
            base_altitude_m: self.scenario.world.base_altitude_m,
            shower_phase: (self.seed % 6283) as f32 / 1000.0,
            seed: self.seed,
        };
        app.insert_resource(failures::InjectionSchedule::from_scenario(&self.scenario, self.vehicles, self.members))
            .insert_resource(hazards::Hazards::from_scenario(&self.scenario, self.vehicles, self.seed))
            .insert_resource(FleetConfig { count: self.vehicles, members: self.members, seed: self.seed, dwell_s: self.scenario.fleet.dwell_s })
            .insert_resource(ScenarioResource(self.scenario.clone()))
            .insert_resource(commands::CommandInbox::subscribe(&BusHandle(self.bus.clone())))
            .insert_resource(BusHandle(self.bus.clone()))
            .insert_resource(outbox::Outbox::starting_at(&self.first_seq))
            .insert_resource(fleet::Outages::from_scenario(&self.scenario, self.members))
            .insert_resource(network)
            .insert_resource(env_model)
            .init_resource::<VehicleIndex>();
        app.add_plugins((
            crate::third_party::rapier::plugin,
            crate::schedule::plugin,
            clock::plugin,
            environment::plugin,
            outbox::plugin,
            commands::plugin,
            failures::plugin,
            hazards::plugin,
            dynamics::plugin,
            condition::plugin,
            sensors::plugin,
            rules::plugin,
            missions::plugin,
        ));
        app.add_systems(Startup, (vehicle::spawn::spawn_fleet, index_vehicles).chain());
    }
}

fn index_vehicles(mut index: ResMut<VehicleIndex>, vehicles: Query<(Entity, &Vehicle)>) {
    for (entity, vehicle) in &vehicles {
        let slot = vehicle.id.0 as usize - 1;
        if index.0.len() <= slot {
            index.0.resize(slot + 1, None);
        }
        index.0[slot] = Some(entity);
    }
}
