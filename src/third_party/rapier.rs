//! bevy_rapier3d: physics in the fixed schedule, one rapier step per fixed step.

use bevy::prelude::*;
use bevy_rapier3d::prelude::*;

use crate::sim::clock::STEP_S;

pub(crate) fn plugin(app: &mut App) {
    app.add_plugins(RapierPhysicsPlugin::<NoUserData>::default().in_fixed_schedule());
    // Exactly one rapier step of the fixed length per fixed step: determinism needs a step that
    // never depends on frame timing.
    app.insert_resource(TimestepMode::Fixed { dt: STEP_S as f32, substeps: 1 });
}
