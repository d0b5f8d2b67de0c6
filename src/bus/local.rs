//! The centre's ports in process, for `aegis run` and the 3D view: operators' requests over
//! a channel ([`OperatorDesk`] is the operators' end, as the 3D view's buttons use it), and a
//! state store that keeps the latest of everything in memory for readers in the same process.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use crossbeam_channel::{Receiver, Sender};

use crate::model::{AlertRecord, FleetStatus, Operation, OperatorReply, OperatorRequest, VehicleId, VehicleSummary};
use crate::orchestrator::commands::TrackedCommand;
use crate::orchestrator::missions::Mission;
use crate::orchestrator::ports::{Changes, Cursor, KeptState, OperatorChannel, StateStore};

/// Where in-process operators hand in requests.
#[derive(Clone)]
pub struct OperatorDesk {
    requests: Sender<(OperatorRequest, Sender<OperatorReply>)>,
    next: Arc<std::sync::atomic::AtomicU64>,
}

/// The centre's end of the desk.
pub struct LocalOperators {
    requests: Receiver<(OperatorRequest, Sender<OperatorReply>)>,
    waiting: BTreeMap<String, Sender<OperatorReply>>,
}

/// A desk and the centre's end of it.
pub fn operator_desk() -> (OperatorDesk, LocalOperators) {
    let (sender, receiver) = crossbeam_channel::unbounded();
    (OperatorDesk { requests: sender, next: Arc::default() }, LocalOperators { requests: receiver, waiting: BTreeMap::new() })
}

impl OperatorDesk {
    /// Hands in `operation` on `alert` by `actor`; the reply arrives on the returned channel
    /// once the centre has applied it (at its next tick).
    pub fn submit(&self, alert: &str, actor: &str, operation: Operation) -> Receiver<OperatorReply> {
        let number = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let request = OperatorRequest { request_id: format!("local-{number}"), alert: alert.to_owned(), actor: actor.to_owned(), operation };
        let (reply, answer) = crossbeam_channel::bounded(1);
        // The centre's end lives as long as the app; if it is gone, the answer never comes.
        let _ = self.requests.send((request, reply));
        answer
    }
}

impl OperatorChannel for LocalOperators {
    fn requests(&mut self) -> Vec<OperatorRequest> {
        self.requests
            .try_iter()
            .map(|(request, reply)| {
                self.waiting.insert(request.request_id.clone(), reply);
                request
            })
            .collect()
    }

    fn reply(&mut self, request: &OperatorRequest, reply: OperatorReply) {
        if let Some(waiting) = self.waiting.remove(&request.request_id) {
            // Whoever asked may have stopped waiting.
            let _ = waiting.send(reply);
        }
    }
}

/// Everything the centre saved, latest first, by id.
#[derive(Debug, Default)]
pub struct Kept {
    /// The latest status.
    pub status: Option<FleetStatus>,
    /// Alerts by id.
    pub alerts: BTreeMap<String, AlertRecord>,
    /// Commands by id.
    pub commands: BTreeMap<String, TrackedCommand>,
    /// Missions by id.
    pub missions: BTreeMap<String, Mission>,
    /// Vehicles.
    pub vehicles: BTreeMap<VehicleId, VehicleSummary>,
    /// The counters.
    pub cursor: Option<Cursor>,
}

impl Kept {
    /// What a centre started on this would take back.
    pub fn to_kept_state(&self) -> KeptState {
        KeptState {
            alerts: self.alerts.values().cloned().collect(),
            commands: self.commands.values().cloned().collect(),
            missions: self.missions.values().cloned().collect(),
            cursor: self.cursor.clone(),
        }
    }
}

/// A state store in memory, shared with readers in the same process.
#[derive(Clone, Default)]
pub struct MemoryState(pub Arc<RwLock<Kept>>);

impl StateStore for MemoryState {
    fn save(&mut self, changes: Changes) {
        let mut kept = self.0.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(status) = changes.status {
            kept.status = Some(status);
        }
        for alert in changes.alerts {
            kept.alerts.insert(alert.id.clone(), alert);
        }
        for command in changes.commands {
            kept.commands.insert(command.id.clone(), command);
        }
        for mission in changes.missions {
            kept.missions.insert(mission.id.clone(), mission);
        }
        kept.vehicles.extend(changes.vehicles);
        if changes.cursor.is_some() {
            kept.cursor = changes.cursor;
        }
    }
}
