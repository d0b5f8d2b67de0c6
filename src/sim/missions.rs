//! Mission reporting: the progress, completion and abandonment that navigation and commands
//! recorded on each vehicle, sent as events in the order they happened.

use bevy::prelude::*;

use super::outbox::Outbox;
use super::vehicle::{Navigation, Vehicle};
use crate::schedule::SimSystems;

pub(super) fn plugin(app: &mut App) {
    app.add_systems(FixedUpdate, report_missions.in_set(SimSystems::Condition));
}

fn report_missions(mut vehicles: Query<(&Vehicle, &mut Navigation)>, mut outbox: ResMut<Outbox>) {
    for (vehicle, mut nav) in &mut vehicles {
        if nav.mission_events.is_empty() {
            continue;
        }
        for event in std::mem::take(&mut nav.mission_events) {
            outbox.event(vehicle.id, event);
        }
    }
}
