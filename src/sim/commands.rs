//! Commands from the bus: vehicles apply them to their navigation and acknowledge them.

use bevy::prelude::*;

use super::clock::SimClock;
use super::outbox::{BusHandle, Outbox, SimCounters};
use super::vehicle::{ActiveMission, CommandMemory, Navigation, Plan, RuleState, Vehicle};
use super::fleet::{FleetConfig, Outages, WorldMap};
use crate::world::RoadNetwork;
use super::fleet::VehicleIndex;
use crate::bus::{Backlog, Filter, Subscription};
use bevy_rapier3d::prelude::Velocity;

use crate::model::{Body, CommandAck, CommandAction, CommandOutcome, MessageKind, RuleDecision, VehicleStatus};
use crate::schedule::SimSystems;

/// Commands waiting for the vehicles.
#[derive(Resource)]
pub struct CommandInbox(Subscription);

impl CommandInbox {
    /// Subscribes to commands. Done while the app is built, not in a system: a transport may
    /// take a moment to set the subscription up, and systems must never wait.
    pub fn subscribe(bus: &BusHandle) -> Self {
        Self(bus.0.subscribe(Filter::kinds(&[MessageKind::Command]), Backlog::Bounded(4096)))
    }
}

pub(super) fn plugin(app: &mut App) {
    app.add_systems(FixedUpdate, apply_commands.in_set(SimSystems::Receive));
}

#[allow(clippy::too_many_arguments)]
fn apply_commands(
    clock: Res<SimClock>,
    inbox: Option<Res<CommandInbox>>,
    index: Res<VehicleIndex>,
    fleet: Res<FleetConfig>,
    network: Res<WorldMap>,
    outages: Res<Outages>,
    mut vehicles: Query<(&Vehicle, &mut Navigation, &mut RuleState, &mut Transform, &mut Velocity, &mut CommandMemory)>,
    mut outbox: ResMut<Outbox>,
    mut counters: ResMut<SimCounters>,
) {
    let Some(inbox) = inbox else { return };
    for envelope in inbox.0.try_iter() {
        let Body::Command(command) = &envelope.body else { continue };
        if !fleet.members.contains(envelope.vehicle_id) {
            // Another process simulates that vehicle.
            continue;
        }
        if outages.dark(envelope.vehicle_id, clock.seconds()) {
            // Out of touch: it never arrives (the centre sends it again).
            continue;
        }
        let Some((vehicle, mut nav, mut rules, mut transform, mut velocity, mut memory)) = index.get(envelope.vehicle_id).and_then(|e| vehicles.get_mut(e).ok()) else {
            warn!("command {} for unknown vehicle {} ignored", command.command_id, envelope.vehicle_id);
            continue;
        };
        if let Some(outcome) = memory.outcome_of(&command.command_id) {
            // A repeat (resent, or re-sent by a restarted centre): answered, not applied again.
            let detail = Some("already handled".to_owned()).filter(|_| outcome == CommandOutcome::Rejected);
            outbox.send(vehicle.id, Body::from(CommandAck { command_id: command.command_id.clone(), outcome, detail }));
            continue;
        }
        let expired = envelope.sim_time + command.ttl_s < clock.seconds();
        let result = if expired {
            Err("expired before delivery".to_owned())
        } else if disabled(&rules) && matches!(command.action, CommandAction::ReturnToDepot | CommandAction::ScheduleMaintenance) {
            recover(vehicle, &mut nav, &mut rules, &mut transform, &mut velocity, &network);
            Ok(())
        } else {
            apply(&command.action, vehicle, &mut nav, &mut rules, &network)
        };
        counters.commands_handled += 1;
        let (outcome, detail) = match result {
            Ok(()) => (CommandOutcome::Accepted, None),
            Err(why) => (CommandOutcome::Rejected, Some(why)),
        };
        memory.remember(&command.command_id, outcome);
        outbox.send(vehicle.id, Body::from(CommandAck { command_id: command.command_id.clone(), outcome, detail }));
    }
}

/// Seconds a recovery truck takes to bring a disabled vehicle to its depot.
pub const RECOVERY_S: f32 = 2700.0;

/// Whether the vehicle's own rules have stopped it for good (it cannot drive itself home).
fn disabled(rules: &RuleState) -> bool {
    rules.decision == Some(RuleDecision::ControlledStop)
}

/// A disabled vehicle sent home is recovered by truck: it is placed at its home depot and its
/// repair takes the recovery time longer.
fn recover(vehicle: &Vehicle, nav: &mut Navigation, rules: &mut RuleState, transform: &mut Transform, velocity: &mut Velocity, network: &RoadNetwork) {
    let node = network.depots[vehicle.home_depot as usize].node;
    let at = network.position(node);
    transform.translation = Vec3::new(at.x, transform.translation.y, at.y);
    *velocity = Velocity::zero();
    nav.abandon_mission("recovered to the depot", vehicle.home_depot);
    nav.from = node;
    nav.to = node;
    nav.plan = Plan::ToDepot(vehicle.home_depot);
    nav.stop_commanded = false;
    nav.maintenance_due = true;
    nav.status = VehicleStatus::InMaintenance;
    nav.repair_s = super::failures::REPAIR_S + RECOVERY_S;
    rules.decision = None;
}

fn apply(action: &CommandAction, vehicle: &Vehicle, nav: &mut Navigation, rules: &mut RuleState, network: &RoadNetwork) -> Result<(), String> {
    let driving = matches!(nav.status, VehicleStatus::EnRoute | VehicleStatus::Returning);
    // Any order that takes the vehicle off its route ends its mission; the centre re-assigns it.
    if matches!(action, CommandAction::Stop | CommandAction::ReturnToDepot | CommandAction::ScheduleMaintenance) {
        nav.abandon_mission("recalled by the centre", vehicle.home_depot);
    }
    match action {
        CommandAction::ReduceSpeed { max_kph } => nav.commanded_cap_mps = Some(max_kph / 3.6),
        CommandAction::Stop => {
            nav.stop_commanded = true;
            if driving {
                nav.status = VehicleStatus::Stopped;
            }
        }
        CommandAction::Resume => {
            nav.stop_commanded = false;
            nav.commanded_cap_mps = None;
            rules.decision = None;
            if nav.status == VehicleStatus::Stopped {
                nav.status = VehicleStatus::EnRoute;
            }
        }
        CommandAction::ReturnToDepot | CommandAction::ScheduleMaintenance => {
            if matches!(action, CommandAction::ScheduleMaintenance) {
                nav.maintenance_due = true;
            }
            nav.plan = Plan::ToDepot(vehicle.home_depot);
            if driving || nav.status == VehicleStatus::Stopped {
                nav.status = VehicleStatus::Returning;
            } else if nav.status == VehicleStatus::Idle && nav.maintenance_due {
                nav.status = VehicleStatus::InMaintenance;
                nav.repair_s = super::failures::REPAIR_S;
            }
        }
        CommandAction::ChangeMission { destination_depot } => {
            let depot = network.depot_named(destination_depot).ok_or_else(|| format!("no depot named `{destination_depot}`"))?;
            nav.abandon_mission(&format!("sent to depot {destination_depot}"), vehicle.home_depot);
            nav.plan = Plan::ToDepot(depot as u16);
        }
        CommandAction::AssignMission { mission_id, stops, .. } => {
            let unavailable = match nav.status {
                VehicleStatus::InMaintenance => Some("in maintenance"),
                VehicleStatus::Stopped => Some("stopped"),
                VehicleStatus::Returning => Some("returning to its depot"),
                VehicleStatus::Offline => Some("offline"),
                VehicleStatus::Idle | VehicleStatus::EnRoute => None,
            }
            .or(nav.maintenance_due.then_some("booked in for maintenance"))
            .or(nav.stop_commanded.then_some("held by a stop command"))
            .or((rules.decision >= Some(RuleDecision::LimpMode)).then_some("in limp mode"));
            if let Some(why) = unavailable {
                return Err(format!("cannot take mission {mission_id}: the vehicle is {why}"));
            }
            if let Some(stop) = stops.iter().find(|s| s.node as usize >= network.nodes.len()) {
                return Err(format!("mission {mission_id}: stop `{}` (node {}) is not in this world", stop.name, stop.node));
            }
            if nav.mission.as_ref().is_some_and(|m| m.id != *mission_id) {
                nav.abandon_mission(&format!("replaced by mission {mission_id}"), vehicle.home_depot);
            }
            nav.mission = Some(ActiveMission { id: mission_id.clone(), stops: stops.clone(), reached: 0 });
            nav.plan = Plan::Mission;
            if nav.status == VehicleStatus::Idle {
                // Leave now rather than after the rest of the dwell.
                nav.dwell_s = 0.0;
            }
        }
    }
    Ok(())
}
