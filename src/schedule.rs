//! The order of the simulation's system sets, configured in this one place. Modules only tag
//! their systems with `.in_set(SimSystems::..)`.

use bevy::prelude::*;
use bevy_rapier3d::plugin::PhysicsSet;

/// Phases of one fixed simulation step, in order.
#[derive(SystemSet, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SimSystems {
    /// Advance the simulation clock.
    Tick,
    /// Take commands off the bus.
    Receive,
    /// Update weather and temperatures.
    Environment,
    /// Progress injected failures.
    Failures,
    /// Drivers and controllers decide throttle, brake and steering, and turn them into forces.
    Control,
    /// Integrate everything rapier does not: temperatures, fluids, battery, wear.
    Condition,
    /// Sample the sensors (telemetry at 1 Hz).
    Sample,
    /// Run the local rules on what the sensors read.
    Judge,
    /// Heartbeats and status announcements, after the rules have had their say.
    Report,
    /// Hand messages to the bus.
    Send,
    /// A centre in the same process (`aegis run`, the 3D view) takes in what was sent and
    /// decides; what it sends the vehicles receive at the next step.
    Centre,
}

pub(crate) fn plugin(app: &mut App) {
    app.configure_sets(
        FixedUpdate,
        (
            SimSystems::Tick,
            SimSystems::Receive,
            SimSystems::Environment,
            SimSystems::Failures,
            SimSystems::Control,
        )
            .chain()
            .before(PhysicsSet::SyncBackend),
    );
    app.configure_sets(
        FixedUpdate,
        (SimSystems::Condition, SimSystems::Sample, SimSystems::Judge, SimSystems::Report, SimSystems::Send, SimSystems::Centre)
            .chain()
            .after(PhysicsSet::Writeback),
    );
}
