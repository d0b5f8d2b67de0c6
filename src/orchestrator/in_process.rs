//! The orchestrator inside the simulation's process, as `aegis run` and the 3D view use it:
//! it hears every vehicle message on the in-process bus and answers on the same bus. What it
//! sends after one update the vehicles receive at the next step, so runs stay deterministic.

use std::time::Instant;

use bevy::prelude::*;

use super::brain::Brain;
use super::policy::Policy;
use crate::bus::{Backlog, Filter, SharedBus, Subscription};
use crate::model::MessageKind;
use crate::scenario::Scenario;
use crate::sim::SimClock;

/// The decision loop with its end of the bus.
#[derive(Resource)]
pub struct Centre {
    /// The decision loop.
    pub brain: Brain,
    inbox: Subscription,
    bus: SharedBus,
}

impl Centre {
    /// A centre with `policy` for the fleet of `scenario` on `bus`.
    pub fn new(policy: Policy, scenario: &Scenario, bus: SharedBus) -> Self {
        let inbox = bus.subscribe(Filter::kinds(&[MessageKind::Telemetry, MessageKind::Heartbeat, MessageKind::Event, MessageKind::CommandAck]), Backlog::Lossless);
        Self { brain: Brain::new(policy).with_scenario(scenario), inbox, bus }
    }

    /// Takes in everything the vehicles sent, advances the loop to simulation time `at` and
    /// sends the commands due.
    pub fn step(&mut self, at: f64) {
        let now = Instant::now();
        for envelope in self.inbox.try_iter() {
            self.brain.ingest(&envelope, now);
        }
        for command in self.brain.tick(at) {
            self.bus.publish(command);
        }
    }
}

/// Runs an inserted [`Centre`] after each update of the app.
pub fn plugin(app: &mut App) {
    app.add_systems(Last, step_centre);
}

fn step_centre(clock: Res<SimClock>, centre: Option<ResMut<Centre>>) {
    if let Some(mut centre) = centre {
        centre.step(clock.seconds());
    }
}
