//! Missions: generated from the scenario's `[missions]` table, assigned to the vehicle best
//! placed to do them, followed through the vehicles' progress events, and re-assigned when a
//! vehicle is recalled or cannot take them.
//!
//! Assignment (once per simulated second, oldest mission first) considers vehicles that are
//! online, parked or on a local round, hold no mission, have no active alert the policy marks
//! `hold_missions`, a centre-estimated health of at least [`MIN_HEALTH`] and fuel above
//! [`MIN_FUEL_PCT`]. Among them it picks the lowest cost, in seconds:
//!
//! ```text
//! cost = road time to the first stop
//!      + HEALTH_WEIGHT_S × (1 − health)      health = 1 − Σ active alerts' severity weights
//!      + ENERGY_WEIGHT_S × (1 − fuel / 100)
//! ```
//!
//! so a vehicle a few minutes further away wins over one that is ailing or nearly empty.
//! Everything runs on simulation time and a seeded generator: same scenario, same missions.

use std::collections::{BTreeMap, BTreeSet};

use glam::Vec2;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

pub use crate::model::MissionFigures;
use crate::model::{CommandAction, MissionKind, MissionStop, Severity, VehicleId};
use crate::scenario::{MissionSpec, Scenario};
use crate::world::RoadNetwork;

/// Vehicles below this estimated health get no missions.
pub const MIN_HEALTH: f32 = 0.6;
/// Vehicles with less fuel than this (percent) get no missions.
pub const MIN_FUEL_PCT: f32 = 15.0;
/// Cost, in seconds of driving, of a vehicle in the worst health still allowed.
pub const HEALTH_WEIGHT_S: f32 = 1200.0;
/// Cost, in seconds of driving, of an empty tank.
pub const ENERGY_WEIGHT_S: f32 = 600.0;
/// Seconds an assignment command stays valid: long enough for a round trip over Redis with
/// the simulation running hundreds of times faster than real time.
pub const ASSIGN_TTL_S: f64 = 600.0;

/// How much an active alert of each severity takes off a vehicle's estimated health.
pub fn health_weight(severity: Severity) -> f32 {
    match severity {
        Severity::Critical => 1.0,
        Severity::Major => 0.5,
        Severity::Minor => 0.2,
        Severity::Warning => 0.1,
        Severity::Info => 0.0,
    }
}

/// Where a mission is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MissionState {
    /// Waiting for a vehicle.
    Pending,
    /// Sent to a vehicle, not yet under way.
    Assigned,
    /// The vehicle is driving it.
    InProgress,
    /// Every stop reached.
    Completed,
    /// Nobody started it before its deadline.
    Missed,
}

/// One mission and its history.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Mission {
    /// `M000001` onwards.
    pub id: String,
    /// What it is for.
    pub kind: MissionKind,
    /// Stops in order.
    pub stops: Vec<MissionStop>,
    /// Where it is.
    pub state: MissionState,
    /// Stops reached.
    pub reached: usize,
    /// The vehicle holding it.
    pub vehicle: Option<VehicleId>,
    /// The command that assigned it.
    pub command: Option<String>,
    /// Created at (simulation seconds).
    pub created_at: f64,
    /// Missed if not started by then.
    pub start_by: f64,
    /// Completed at.
    pub completed_at: Option<f64>,
    /// Vehicles it has been assigned to.
    pub assignments: u32,
    /// What happened, in order: (time, what).
    pub history: Vec<(f64, String)>,
    /// Index in `stops` of the first stop the current vehicle was sent.
    offset: usize,
}

impl Mission {
    /// Index of the first stop a (new) vehicle is sent: a delivery starts over at its pickup
    /// (the goods go back there), a patrol continues where the last vehicle stopped.
    fn first_stop_to_send(&self) -> usize {
        match self.kind {
            MissionKind::Delivery => 0,
            MissionKind::Patrol => self.reached.min(self.stops.len() - 1),
        }
    }
}

/// A vehicle that might take a mission, as the centre sees it.
#[derive(Debug, Clone, Copy)]
pub struct Candidate {
    /// Who.
    pub vehicle: VehicleId,
    /// Where (ground x, z in metres).
    pub position: Vec2,
    /// Fuel level in percent.
    pub fuel_pct: f32,
    /// Estimated health, 0-1, from its active alerts.
    pub health: f32,
    /// Whether an active alert's policy says no new missions.
    pub held: bool,
}

/// Where a mission board's generator stands.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BoardCursor {
    /// Number of the last mission generated.
    pub next_id: u64,
    /// When the next mission is due (simulation seconds).
    pub next_due: f64,
    /// Counts so far.
    pub figures: MissionFigures,
}

/// The mission generator and ledger.
#[derive(Debug)]
pub struct MissionBoard {
    spec: MissionSpec,
    network: RoadNetwork,
    /// Each mission's stops are drawn from its own stream, seeded from this and its number, so
    /// a board restored after a restart draws the same missions it would have.
    seed: u64,
    interval_s: f64,
    next_due: f64,
    next_id: u64,
    /// Changed since [`MissionBoard::take_changed`] last ran.
    changed: BTreeSet<String>,
    missions: BTreeMap<String, Mission>,
    by_vehicle: BTreeMap<VehicleId, String>,
    /// Road times to each stop node, computed once per node.
    times_to: BTreeMap<u32, Vec<f32>>,
    figures: MissionFigures,
}

impl MissionBoard {
    /// The board for a scenario, or `None` when it has no `[missions]` table.
    pub fn for_scenario(scenario: &Scenario) -> Option<Self> {
        let spec = scenario.missions.clone()?;
        Some(Self {
            interval_s: 3600.0 / f64::from(spec.per_hour),
            spec,
            network: RoadNetwork::generate(scenario),
            seed: scenario.seed ^ 0x4D15_5101,
            next_due: 0.0,
            next_id: 0,
            changed: BTreeSet::new(),
            missions: BTreeMap::new(),
            by_vehicle: BTreeMap::new(),
            times_to: BTreeMap::new(),
            figures: MissionFigures::default(),
        })
    }

    /// Generates the missions due by `at`, and drops those nobody started in time.
    pub fn generate(&mut self, at: f64) {
        // A board that starts late (an orchestrator restarted mid-run) does not make up for the
        // missions it was not there to generate.
        if self.next_id == 0 && at - self.next_due > self.interval_s {
            self.next_due = at;
        }
        while self.next_due <= at {
            let created = self.next_due;
            self.next_due += self.interval_s;
            self.next_id += 1;
            let stops = self.draw_stops(self.next_id);
            let id = format!("M{:06}", self.next_id);
            let start_by = created + self.spec.deadline.as_secs_f64();
            let mission = Mission {
                id: id.clone(),
                kind: self.spec.kind,
                stops,
                state: MissionState::Pending,
                reached: 0,
                vehicle: None,
                command: None,
                created_at: created,
                start_by,
                completed_at: None,
                assignments: 0,
                history: vec![(created, "created".to_owned())],
                offset: 0,
            };
            self.changed.insert(id.clone());
            self.missions.insert(id, mission);
            self.figures.missions_generated += 1;
        }
        for mission in self.missions.values_mut().filter(|m| m.state == MissionState::Pending && m.start_by < at) {
            self.changed.insert(mission.id.clone());
            mission.state = MissionState::Missed;
            mission.history.push((at, "missed: nobody started it in time".to_owned()));
            self.figures.missions_missed += 1;
        }
    }

    fn draw_stops(&self, number: u64) -> Vec<MissionStop> {
        let mut rng = SmallRng::seed_from_u64(self.seed ^ number.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let depots = self.network.depots.len();
        let depot_stop = |network: &RoadNetwork, d: usize| MissionStop { node: network.depots[d].node, name: network.depots[d].name.clone() };
        match self.spec.kind {
            MissionKind::Delivery => {
                let pickup = rng.random_range(0..depots);
                // Another depot: the scenario check guarantees there are at least two.
                let dropoff = (pickup + rng.random_range(1..depots.max(2))) % depots;
                vec![depot_stop(&self.network, pickup), depot_stop(&self.network, dropoff)]
            }
            MissionKind::Patrol => {
                let base = rng.random_range(0..depots);
                let junctions = self.network.junctions();
                let mut stops = vec![depot_stop(&self.network, base)];
                for _ in 0..self.spec.stops {
                    let node = rng.random_range(0..junctions);
                    stops.push(MissionStop { node, name: format!("junction {node}") });
                }
                stops.push(depot_stop(&self.network, base));
                stops
            }
        }
    }

    /// Matches pending missions, oldest first, with the cheapest eligible candidates. Returns
    /// (mission id, vehicle, command) for each assignment; call [`MissionBoard::assigned`]
    /// with the command's id once issued.
    pub fn assign(&mut self, candidates: &[Candidate]) -> Vec<(String, VehicleId, CommandAction)> {
        let mut free: Vec<(Candidate, u32)> = candidates
            .iter()
            .filter(|c| !c.held && c.health >= MIN_HEALTH && c.fuel_pct >= MIN_FUEL_PCT && !self.by_vehicle.contains_key(&c.vehicle))
            .map(|c| (*c, self.network.nearest_node(c.position)))
            .collect();
        let pending: Vec<String> = self.missions.values().filter(|m| m.state == MissionState::Pending).map(|m| m.id.clone()).collect();
        let mut out = Vec::new();
        for id in pending {
            if free.is_empty() {
                break;
            }
            let mission = &self.missions[&id];
            let first = mission.first_stop_to_send();
            let target = mission.stops[first].node;
            let times = self.times_to.entry(target).or_insert_with(|| self.network.fastest_to(target).0);
            let cost = |(c, node): &(Candidate, u32)| times[*node as usize] + HEALTH_WEIGHT_S * (1.0 - c.health) + ENERGY_WEIGHT_S * (1.0 - c.fuel_pct / 100.0);
            let best = (0..free.len()).min_by(|&a, &b| cost(&free[a]).total_cmp(&cost(&free[b])).then(free[a].0.vehicle.cmp(&free[b].0.vehicle))).expect("not empty");
            let (chosen, _) = free.swap_remove(best);
            let mission = self.missions.get_mut(&id).expect("pending mission");
            mission.offset = first;
            self.changed.insert(id.clone());
            let action = CommandAction::AssignMission { mission_id: id.clone(), kind: mission.kind, stops: mission.stops[first..].to_vec() };
            out.push((id, chosen.vehicle, action));
        }
        out
    }

    /// Records that mission `id` was sent to `vehicle` by command `command`.
    pub fn assigned(&mut self, id: &str, vehicle: VehicleId, command: String, at: f64) {
        let Some(mission) = self.missions.get_mut(id) else { return };
        self.changed.insert(id.to_owned());
        mission.state = MissionState::Assigned;
        mission.vehicle = Some(vehicle);
        mission.assignments += 1;
        mission.history.push((at, format!("assigned to {vehicle} by {command}")));
        mission.command = Some(command);
        self.by_vehicle.insert(vehicle, id.to_owned());
    }

    /// The assigning command reached a final state: success means the vehicle is under way;
    /// anything else puts the mission back in the queue.
    pub fn command_finished(&mut self, command: &str, succeeded: bool, detail: Option<&str>, at: f64) {
        let Some(mission) = self.missions.values_mut().find(|m| m.state == MissionState::Assigned && m.command.as_deref() == Some(command)) else { return };
        if succeeded {
            mission.state = MissionState::InProgress;
            self.changed.insert(mission.id.clone());
            return;
        }
        if let Some(vehicle) = mission.vehicle {
            self.release(vehicle, &format!("{command} did not take: {}", detail.unwrap_or("no reason given")), at);
        }
    }

    /// The vehicle reports `reached` of the stops it was sent.
    pub fn progress(&mut self, vehicle: VehicleId, id: &str, reached: u16, at: f64) {
        if let Some(mission) = self.held_by(vehicle, id) {
            mission.state = MissionState::InProgress;
            mission.reached = mission.offset + usize::from(reached);
            let stop = &mission.stops[mission.reached.min(mission.stops.len()) - 1].name;
            mission.history.push((at, format!("{vehicle} reached {stop}")));
        }
    }

    /// The vehicle reached the last stop.
    pub fn completed(&mut self, vehicle: VehicleId, id: &str, at: f64) {
        if let Some(mission) = self.held_by(vehicle, id) {
            mission.state = MissionState::Completed;
            mission.reached = mission.stops.len();
            mission.completed_at = Some(at);
            mission.history.push((at, format!("completed by {vehicle}")));
            self.by_vehicle.remove(&vehicle);
            self.figures.missions_completed += 1;
        }
    }

    /// The vehicle gave its mission up.
    pub fn abandoned(&mut self, vehicle: VehicleId, id: &str, reason: &str, at: f64) {
        if self.held_by(vehicle, id).is_some() {
            self.release(vehicle, &format!("abandoned by {vehicle}: {reason}"), at);
        }
    }

    /// Takes `vehicle`'s mission, if it holds one, back into the queue for another vehicle.
    pub fn release(&mut self, vehicle: VehicleId, why: &str, at: f64) {
        let Some(id) = self.by_vehicle.remove(&vehicle) else { return };
        let Some(mission) = self.missions.get_mut(&id) else { return };
        if matches!(mission.state, MissionState::Completed | MissionState::Missed) {
            return;
        }
        self.changed.insert(id.clone());
        mission.state = MissionState::Pending;
        mission.vehicle = None;
        mission.command = None;
        // A fresh chance: the deadline counts from the release.
        mission.start_by = at + self.spec.deadline.as_secs_f64();
        mission.history.push((at, format!("back in the queue: {why}")));
        self.figures.missions_reassigned += 1;
    }

    fn held_by(&mut self, vehicle: VehicleId, id: &str) -> Option<&mut Mission> {
        if self.by_vehicle.get(&vehicle).map(String::as_str) != Some(id) {
            return None;
        }
        self.changed.insert(id.to_owned());
        self.missions.get_mut(id)
    }

    /// The mission `vehicle` holds.
    pub fn of_vehicle(&self, vehicle: VehicleId) -> Option<&Mission> {
        self.by_vehicle.get(&vehicle).and_then(|id| self.missions.get(id))
    }

    /// Missions assigned or in progress.
    pub fn under_way(&self) -> usize {
        self.missions.values().filter(|m| matches!(m.state, MissionState::Assigned | MissionState::InProgress)).count()
    }

    /// Whether any mission waits for a vehicle.
    pub fn has_pending(&self) -> bool {
        self.missions.values().any(|m| m.state == MissionState::Pending)
    }

    /// Every mission, in id order.
    pub fn all(&self) -> impl Iterator<Item = &Mission> {
        self.missions.values()
    }

    /// Counts so far.
    pub fn figures(&self) -> MissionFigures {
        self.figures
    }

    /// Missions changed since the last call, and clears the marks.
    pub fn take_changed(&mut self) -> Vec<Mission> {
        std::mem::take(&mut self.changed).into_iter().filter_map(|id| self.missions.get(&id).cloned()).collect()
    }

    /// Where the generator stands, for a restart to continue from.
    pub fn cursor(&self) -> BoardCursor {
        BoardCursor { next_id: self.next_id, next_due: self.next_due, figures: self.figures }
    }

    /// Takes back what an earlier run kept: the generator continues where it stood, and
    /// missions assigned or under way stay with their vehicles.
    pub fn restore(&mut self, cursor: BoardCursor, missions: Vec<Mission>) {
        self.next_id = cursor.next_id;
        self.next_due = cursor.next_due;
        self.figures = cursor.figures;
        for mission in missions {
            if let (Some(vehicle), MissionState::Assigned | MissionState::InProgress) = (mission.vehicle, mission.state) {
                self.by_vehicle.insert(vehicle, mission.id.clone());
            }
            self.missions.insert(mission.id.clone(), mission);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn board(kind: &str) -> MissionBoard {
        let text = format!(
            r#"name = "t"
seed = 3
duration = "1h"
[fleet]
count = 4
depots = [{{ name = "A", x_m = -2000, z_m = 0 }}, {{ name = "B", x_m = 2000, z_m = 0 }}]
[missions]
kind = "{kind}"
per_hour = 6
deadline = "30m"
"#
        );
        MissionBoard::for_scenario(&Scenario::parse(&text, Path::new("t.toml")).unwrap()).unwrap()
    }

    fn candidate(vehicle: u32, x: f32) -> Candidate {
        Candidate { vehicle: VehicleId(vehicle), position: Vec2::new(x, 0.0), fuel_pct: 80.0, health: 1.0, held: false }
    }

    #[test]
    fn missions_are_generated_at_the_scenario_rate_and_the_same_for_the_same_seed() {
        let (mut a, mut b) = (board("delivery"), board("delivery"));
        for board in [&mut a, &mut b] {
            board.generate(0.0);
            board.generate(3599.0);
        }
        assert_eq!(a.figures().missions_generated, 6, "six per hour, the first at once");
        let mut late = board("delivery");
        late.generate(7200.0);
        assert_eq!(late.figures().missions_generated, 1, "a board that starts late does not catch up");
        let stops = |board: &MissionBoard| board.all().map(|m| m.stops.clone()).collect::<Vec<_>>();
        assert_eq!(stops(&a), stops(&b));
        assert!(a.all().all(|m| m.stops.len() == 2 && m.stops[0] != m.stops[1]), "pickup and drop-off at different depots");
        let mut patrol = board("patrol");
        patrol.generate(0.0);
        let mission = patrol.all().next().unwrap();
        assert_eq!(mission.stops.len(), 6, "a depot, four junctions, the same depot");
        assert_eq!(mission.stops.first(), mission.stops.last());
    }

    #[test]
    fn the_nearest_healthy_fuelled_vehicle_gets_the_mission() {
        let mut board = board("delivery");
        board.generate(0.0);
        let pickup = board.all().next().unwrap().stops[0].node;
        let at = board.network.position(pickup);
        let near = candidate(1, at.x + 100.0);
        let far = candidate(2, -at.x);
        let ailing = Candidate { health: 0.7, ..candidate(3, at.x) };
        let held = Candidate { held: true, ..candidate(4, at.x) };
        let empty = Candidate { fuel_pct: 5.0, ..candidate(5, at.x) };
        let assigned = board.assign(&[far, ailing, held, empty, near]);
        assert_eq!(assigned.len(), 1);
        assert_eq!(assigned[0].1, VehicleId(1), "nearest eligible; an ailing vehicle next door pays {HEALTH_WEIGHT_S} s × 0.3");
        assert!(matches!(&assigned[0].2, CommandAction::AssignMission { stops, .. } if stops[0].node == pickup));
    }

    #[test]
    fn a_recalled_or_refused_mission_is_reassigned_and_completes_with_another_vehicle() {
        let mut board = board("delivery");
        board.generate(0.0);
        let (id, vehicle, _) = board.assign(&[candidate(1, 0.0)]).remove(0);
        board.assigned(&id, vehicle, "C000001".into(), 1.0);
        assert!(board.assign(&[candidate(1, 0.0)]).is_empty(), "one mission per vehicle");
        board.command_finished("C000001", true, None, 5.0);
        board.progress(vehicle, &id, 1, 300.0);
        assert_eq!(board.of_vehicle(vehicle).unwrap().state, MissionState::InProgress);
        board.release(vehicle, "recalled", 400.0);
        assert_eq!(board.figures().missions_reassigned, 1);
        assert!(board.of_vehicle(vehicle).is_none());
        // The second vehicle refuses; the third completes it.
        let (_, second, _) = board.assign(&[candidate(2, 0.0)]).remove(0);
        board.assigned(&id, second, "C000002".into(), 401.0);
        board.command_finished("C000002", false, Some("in maintenance"), 402.0);
        board.abandoned(vehicle, &id, "late report from the recalled vehicle", 403.0);
        assert_eq!(board.figures().missions_reassigned, 2, "a stale report from the first vehicle changes nothing");
        let (_, third, action) = board.assign(&[candidate(3, 0.0)]).remove(0);
        assert!(matches!(action, CommandAction::AssignMission { stops, .. } if stops.len() == 2), "a delivery starts over at its pickup");
        board.assigned(&id, third, "C000003".into(), 404.0);
        board.completed(third, &id, 900.0);
        let mission = board.all().next().unwrap();
        assert_eq!((mission.state, mission.assignments), (MissionState::Completed, 3));
        assert_eq!(board.figures().missions_completed, 1);
    }

    #[test]
    fn a_mission_nobody_starts_in_time_is_missed() {
        let mut board = board("patrol");
        board.generate(0.0);
        board.generate(1801.0);
        let first = board.all().next().unwrap();
        assert_eq!(first.state, MissionState::Missed);
        assert_eq!(board.figures().missions_missed, 1);
    }
}
