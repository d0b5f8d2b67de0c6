//! The command lifecycle: QUEUED → SENT → DELIVERED → SUCCEEDED / FAILED, or TIMEOUT /
//! EXPIRED. A command is resent until acknowledged or its time to live runs out, waits in the
//! queue while its vehicle is offline, and succeeds only once its effect shows in the
//! vehicle's telemetry (speed actually dropped, vehicle actually heading to the depot).
//!
//! Times are the caller's clock in seconds (the vehicle's simulation time); the tracker holds
//! no clock of its own.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::model::{Command, CommandAck, CommandAction, CommandOutcome, VehicleId, VehicleStatus};

/// Where a command is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CommandState {
    /// Waiting to be sent (its vehicle may be offline).
    Queued,
    /// Sent, not yet acknowledged.
    Sent,
    /// Acknowledged as accepted; its effect not yet seen.
    Delivered,
    /// Its effect was seen.
    Succeeded,
    /// Rejected by the vehicle, or its effect never showed.
    Failed,
    /// Sent but never acknowledged within its time to live.
    Timeout,
    /// Never sent within its time to live (the vehicle stayed offline).
    Expired,
}

impl CommandState {
    /// Whether nothing more will happen to it.
    pub fn is_final(self) -> bool {
        matches!(self, CommandState::Succeeded | CommandState::Failed | CommandState::Timeout | CommandState::Expired)
    }
}

/// Resending and verification settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CommandPolicy {
    /// Resend an unacknowledged command this often.
    pub resend_every_s: f64,
    /// After delivery, the effect must show within this long.
    pub verify_within_s: f64,
}

impl Default for CommandPolicy {
    fn default() -> Self {
        Self { resend_every_s: 10.0, verify_within_s: 120.0 }
    }
}

/// What the tracker needs to see in telemetry to verify an effect.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Effect {
    /// Speed over ground.
    pub speed_kph: f32,
    /// Activity.
    pub status: VehicleStatus,
}

/// One command and its history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrackedCommand {
    /// Unique id, `C000001` onwards.
    pub id: String,
    /// Addressee.
    pub vehicle: VehicleId,
    /// What it asks.
    pub action: CommandAction,
    /// Where it is.
    pub state: CommandState,
    /// Issued at.
    pub issued_at: f64,
    /// Not to be applied after this.
    pub expires_at: f64,
    /// Times sent.
    pub attempts: u32,
    /// Last sent at.
    pub sent_at: Option<f64>,
    /// Acknowledged at.
    pub delivered_at: Option<f64>,
    /// Reached its final state at.
    pub finished_at: Option<f64>,
    /// Why it failed, when it did.
    pub detail: Option<String>,
    /// The operator who sent it; `None` for the centre's own decisions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issued_by: Option<String>,
}

impl TrackedCommand {
    /// Whether `effect` shows the command took hold.
    pub fn took_effect(&self, effect: &Effect) -> bool {
        match &self.action {
            CommandAction::ReduceSpeed { max_kph } => effect.speed_kph <= max_kph + 2.0,
            CommandAction::Stop => effect.speed_kph < 1.0 && effect.status != VehicleStatus::EnRoute && effect.status != VehicleStatus::Returning,
            CommandAction::Resume => effect.status != VehicleStatus::Stopped,
            CommandAction::ReturnToDepot => matches!(effect.status, VehicleStatus::Returning | VehicleStatus::Idle | VehicleStatus::InMaintenance),
            CommandAction::ScheduleMaintenance => matches!(effect.status, VehicleStatus::Returning | VehicleStatus::InMaintenance),
            CommandAction::ChangeMission { .. } | CommandAction::AssignMission { .. } => effect.status == VehicleStatus::EnRoute,
        }
    }

    fn finish(&mut self, state: CommandState, at: f64, detail: Option<String>) {
        self.state = state;
        self.finished_at = Some(at);
        self.detail = detail;
    }
}

/// Every command the centre has issued.
#[derive(Debug, Default)]
pub struct CommandTracker {
    policy: CommandPolicy,
    commands: BTreeMap<String, TrackedCommand>,
    next_id: u64,
    /// Changed since [`CommandTracker::take_changed`] last ran.
    changed: BTreeSet<String>,
}

impl CommandTracker {
    /// An empty tracker.
    pub fn new(policy: CommandPolicy) -> Self {
        Self { policy, ..Self::default() }
    }

    /// Issues a command to `vehicle` that must not be applied after `ttl_s`; returns its id.
    pub fn issue(&mut self, vehicle: VehicleId, action: CommandAction, at: f64, ttl_s: f64) -> String {
        self.issue_as(vehicle, action, at, ttl_s, None)
    }

    /// [`CommandTracker::issue`] on behalf of an operator, `issued_by`.
    pub fn issue_as(&mut self, vehicle: VehicleId, action: CommandAction, at: f64, ttl_s: f64, issued_by: Option<&str>) -> String {
        self.next_id += 1;
        let id = format!("C{:06}", self.next_id);
        self.commands.insert(
            id.clone(),
            TrackedCommand {
                id: id.clone(),
                vehicle,
                action,
                state: CommandState::Queued,
                issued_at: at,
                expires_at: at + ttl_s,
                attempts: 0,
                sent_at: None,
                delivered_at: None,
                finished_at: None,
                detail: None,
                issued_by: issued_by.map(str::to_owned),
            },
        );
        self.changed.insert(id.clone());
        id
    }

    /// Takes back commands an earlier run kept: ids continue after the highest, and those
    /// still in flight go on being sent, followed and timed out.
    pub fn restore(&mut self, commands: Vec<TrackedCommand>) {
        for command in commands {
            let number = command.id.trim_start_matches('C').parse::<u64>().unwrap_or(0);
            self.next_id = self.next_id.max(number);
            self.commands.insert(command.id.clone(), command);
        }
    }

    /// Commands changed since the last call, and clears the marks.
    pub fn take_changed(&mut self) -> Vec<TrackedCommand> {
        std::mem::take(&mut self.changed).into_iter().filter_map(|id| self.commands.get(&id).cloned()).collect()
    }

    /// The commands to send now: queued ones whose vehicle is online, and sent ones whose
    /// resend is due. Each is marked sent. Their `ttl_s` is what is left of their life.
    pub fn due(&mut self, at: f64, online: impl Fn(VehicleId) -> bool) -> Vec<(VehicleId, Command)> {
        let resend = self.policy.resend_every_s;
        let mut due = Vec::new();
        for command in self.commands.values_mut() {
            let wanted = match command.state {
                CommandState::Queued => true,
                CommandState::Sent => command.sent_at.is_some_and(|s| at - s >= resend),
                _ => false,
            };
            if !wanted || at >= command.expires_at || !online(command.vehicle) {
                continue;
            }
            command.state = CommandState::Sent;
            command.attempts += 1;
            command.sent_at = Some(at);
            self.changed.insert(command.id.clone());
            due.push((command.vehicle, Command { command_id: command.id.clone(), action: command.action.clone(), ttl_s: command.expires_at - at }));
        }
        due
    }

    /// Applies a vehicle's acknowledgement; unknown and repeated ones change nothing.
    pub fn acknowledged(&mut self, ack: &CommandAck, at: f64) {
        let Some(command) = self.commands.get_mut(&ack.command_id) else { return };
        if !matches!(command.state, CommandState::Sent | CommandState::Queued) {
            return;
        }
        self.changed.insert(command.id.clone());
        match ack.outcome {
            CommandOutcome::Accepted => {
                command.state = CommandState::Delivered;
                command.delivered_at = Some(at);
            }
            CommandOutcome::Rejected => command.finish(CommandState::Failed, at, Some(ack.detail.clone().unwrap_or_else(|| "rejected".into()))),
        }
    }

    /// Checks delivered commands of `vehicle` against what its telemetry shows.
    pub fn observe(&mut self, vehicle: VehicleId, effect: &Effect, at: f64) {
        for command in self.commands.values_mut().filter(|c| c.vehicle == vehicle && c.state == CommandState::Delivered) {
            if command.took_effect(effect) {
                command.finish(CommandState::Succeeded, at, None);
                self.changed.insert(command.id.clone());
            }
        }
    }

    /// Ends what ran out of time: delivered commands whose effect never showed fail, sent ones
    /// never acknowledged time out, queued ones never sent expire. Returns their ids.
    pub fn tick(&mut self, at: f64) -> Vec<String> {
        let verify = self.policy.verify_within_s;
        let mut ended = Vec::new();
        for command in self.commands.values_mut() {
            let (state, detail) = match command.state {
                CommandState::Delivered if command.delivered_at.is_some_and(|d| at - d >= verify) => {
                    (CommandState::Failed, Some(format!("no effect seen within {verify} s of delivery")))
                }
                CommandState::Sent if at >= command.expires_at => (CommandState::Timeout, Some(format!("not acknowledged after {} attempts", command.attempts))),
                CommandState::Queued if at >= command.expires_at => (CommandState::Expired, Some("the vehicle stayed unreachable".to_owned())),
                _ => continue,
            };
            command.finish(state, at, detail);
            self.changed.insert(command.id.clone());
            ended.push(command.id.clone());
        }
        ended
    }

    /// One command.
    pub fn get(&self, id: &str) -> Option<&TrackedCommand> {
        self.commands.get(id)
    }

    /// Every command, by id.
    pub fn all(&self) -> impl Iterator<Item = &TrackedCommand> {
        self.commands.values()
    }

    /// Commands by state.
    pub fn counts(&self) -> BTreeMap<&'static str, u64> {
        let mut counts = BTreeMap::new();
        for command in self.commands.values() {
            let name = match command.state {
                CommandState::Queued => "queued",
                CommandState::Sent => "sent",
                CommandState::Delivered => "delivered",
                CommandState::Succeeded => "succeeded",
                CommandState::Failed => "failed",
                CommandState::Timeout => "timeout",
                CommandState::Expired => "expired",
            };
            *counts.entry(name).or_default() += 1;
        }
        counts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tracker() -> CommandTracker {
        CommandTracker::new(CommandPolicy { resend_every_s: 10.0, verify_within_s: 60.0 })
    }

    fn ack(id: &str, outcome: CommandOutcome) -> CommandAck {
        CommandAck { command_id: id.into(), outcome, detail: (outcome == CommandOutcome::Rejected).then(|| "no depot named `Nowhere`".into()) }
    }

    const DRIVING: Effect = Effect { speed_kph: 72.0, status: VehicleStatus::EnRoute };

    #[test]
    fn a_command_succeeds_only_when_its_effect_shows() {
        let mut commands = tracker();
        let id = commands.issue(VehicleId(1), CommandAction::ReduceSpeed { max_kph: 40.0 }, 0.0, 300.0);
        assert_eq!(commands.get(&id).unwrap().state, CommandState::Queued);
        let sent = commands.due(1.0, |_| true);
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].1.ttl_s, 299.0);
        assert!(commands.due(2.0, |_| true).is_empty(), "not resent before it is due");
        commands.acknowledged(&ack(&id, CommandOutcome::Accepted), 3.0);
        assert_eq!(commands.get(&id).unwrap().state, CommandState::Delivered);
        commands.observe(VehicleId(1), &DRIVING, 4.0);
        assert_eq!(commands.get(&id).unwrap().state, CommandState::Delivered, "still too fast");
        commands.observe(VehicleId(2), &Effect { speed_kph: 30.0, status: VehicleStatus::EnRoute }, 5.0);
        assert_eq!(commands.get(&id).unwrap().state, CommandState::Delivered, "another vehicle's speed proves nothing");
        commands.observe(VehicleId(1), &Effect { speed_kph: 39.0, status: VehicleStatus::EnRoute }, 20.0);
        let command = commands.get(&id).unwrap();
        assert_eq!((command.state, command.finished_at, command.attempts), (CommandState::Succeeded, Some(20.0), 1));
    }

    #[test]
    fn an_effect_that_never_shows_fails_the_command() {
        let mut commands = tracker();
        let id = commands.issue(VehicleId(1), CommandAction::ReturnToDepot, 0.0, 300.0);
        commands.due(0.0, |_| true);
        commands.acknowledged(&ack(&id, CommandOutcome::Accepted), 1.0);
        commands.observe(VehicleId(1), &DRIVING, 30.0);
        assert!(commands.tick(30.0).is_empty());
        assert_eq!(commands.tick(61.0), std::slice::from_ref(&id));
        let command = commands.get(&id).unwrap();
        assert_eq!(command.state, CommandState::Failed);
        assert!(command.detail.as_deref().unwrap().contains("no effect"));
    }

    #[test]
    fn unacknowledged_commands_are_resent_then_time_out() {
        let mut commands = tracker();
        let id = commands.issue(VehicleId(1), CommandAction::Stop, 0.0, 35.0);
        assert_eq!(commands.due(0.0, |_| true).len(), 1);
        assert_eq!(commands.due(10.0, |_| true).len(), 1, "resent");
        assert_eq!(commands.due(20.0, |_| true)[0].1.ttl_s, 15.0);
        commands.tick(30.0);
        assert_eq!(commands.get(&id).unwrap().state, CommandState::Sent);
        commands.tick(35.0);
        let command = commands.get(&id).unwrap();
        assert_eq!((command.state, command.attempts), (CommandState::Timeout, 3));
        commands.acknowledged(&ack(&id, CommandOutcome::Accepted), 36.0);
        assert_eq!(commands.get(&id).unwrap().state, CommandState::Timeout, "a late answer changes nothing");
    }

    #[test]
    fn a_command_for_an_offline_vehicle_waits_for_it_or_expires() {
        let mut commands = tracker();
        let waits = commands.issue(VehicleId(1), CommandAction::ScheduleMaintenance, 0.0, 600.0);
        let expires = commands.issue(VehicleId(2), CommandAction::ScheduleMaintenance, 0.0, 100.0);
        assert!(commands.due(50.0, |_| false).is_empty(), "both vehicles offline");
        commands.tick(100.0);
        assert_eq!(commands.get(&expires).unwrap().state, CommandState::Expired);
        let sent = commands.due(200.0, |v| v == VehicleId(1));
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].1.command_id, waits);
        commands.acknowledged(&ack(&waits, CommandOutcome::Accepted), 201.0);
        commands.observe(VehicleId(1), &Effect { speed_kph: 50.0, status: VehicleStatus::Returning }, 202.0);
        assert_eq!(commands.get(&waits).unwrap().state, CommandState::Succeeded);
        assert_eq!(commands.counts(), BTreeMap::from([("expired", 1), ("succeeded", 1)]));
    }

    #[test]
    fn a_rejected_command_fails_with_the_vehicles_reason() {
        let mut commands = tracker();
        let id = commands.issue(VehicleId(1), CommandAction::ChangeMission { destination_depot: "Nowhere".into() }, 0.0, 60.0);
        commands.due(0.0, |_| true);
        commands.acknowledged(&ack(&id, CommandOutcome::Rejected), 1.0);
        let command = commands.get(&id).unwrap();
        assert_eq!(command.state, CommandState::Failed);
        assert!(command.detail.as_deref().unwrap().contains("Nowhere"));
        assert!(command.state.is_final());
    }
}
