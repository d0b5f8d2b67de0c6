//! The centre inside the simulation's process, as `aegis run` and the 3D view assemble it:
//! the same [`Centre`] that `aegis orchestrator` runs over Redis, on the in-process bus and
//! ports. It is stepped once per simulated second, right after the vehicles have sent that
//! second's messages, on simulated time (so a vehicle silent for three heartbeats goes
//! offline here as it does over Redis); what it sends reaches the vehicles at the next step,
//! so runs stay deterministic and the 3D view decides exactly as a headless run does.

use std::sync::Arc;

use bevy::prelude::*;

use crate::api::hub::Hub;
use crate::bus::local::{MemoryState, OperatorDesk, operator_desk};
use crate::bus::{Backlog, Filter, SharedBus, Subscription};
use crate::model::{MessageKind, Operation, OperatorReply};
use crate::orchestrator::Centre;
use crate::orchestrator::brain::Brain;
use crate::orchestrator::policy::Policy;
use crate::orchestrator::ports::{FailurePredictor, StateStore, Watched};
use crate::scenario::Scenario;
use crate::schedule::SimSystems;
use crate::sim::SimClock;

/// Who the 3D view's actions are audited as.
pub const VIEW_ACTOR: &str = "3d-view";

/// The centre with its end of the in-process bus and its ports.
#[derive(Resource)]
pub struct LocalCentre {
    /// The centre.
    pub centre: Centre,
    /// Where operators in this process (the 3D view's buttons) hand in requests.
    pub desk: OperatorDesk,
    /// What the centre saved, for readers in this process.
    pub state: MemoryState,
    inbox: Subscription,
    bus: SharedBus,
}

impl LocalCentre {
    /// A centre with `policy` for the fleet of `scenario` on `bus`, consulting `predictor`
    /// when given; what it saves also feeds `hub`, the API's view of the fleet, when there is
    /// one.
    pub fn new(policy: Policy, scenario: &Scenario, bus: SharedBus, hub: Option<Arc<Hub>>, predictor: Option<Box<dyn FailurePredictor>>) -> Self {
        let inbox = bus.subscribe(Filter::kinds(&[MessageKind::Telemetry, MessageKind::Heartbeat, MessageKind::Event, MessageKind::CommandAck]), Backlog::Lossless);
        let (desk, operators) = operator_desk();
        let state = MemoryState::default();
        let store: Box<dyn StateStore> = match hub {
            Some(hub) => Box::new(Watched { inner: state.clone(), watcher: hub }),
            None => Box::new(state.clone()),
        };
        let mut centre = Centre::new(Brain::new(policy).with_scenario(scenario), Box::new(operators), store);
        if let Some(predictor) = predictor {
            centre = centre.with_predictor(predictor);
        }
        Self { centre, desk, state, inbox, bus }
    }

    /// Hands an acknowledgement of `alert` to the centre as the 3D view's button does, audited
    /// as [`VIEW_ACTOR`]; the centre applies it at its next tick, like any operator request.
    pub fn acknowledge_from_view(&self, alert: &str) -> crossbeam_channel::Receiver<OperatorReply> {
        self.desk.submit(alert, VIEW_ACTOR, Operation::Ack)
    }

    /// Takes in everything the vehicles sent, ticks at simulation time `at` and sends what
    /// is due.
    pub fn step(&mut self, at: f64) {
        for envelope in self.inbox.try_iter() {
            self.centre.ingest(&envelope, at);
        }
        self.centre.tick(at, at);
        for envelope in self.centre.take_outgoing() {
            self.bus.publish(envelope);
        }
    }
}

/// The failure predictor `options` ask for, its model loaded and checked against this build:
/// a missing, malformed or mismatched model file is an error here, before the run starts.
pub fn predictor(options: &super::RunOptions) -> anyhow::Result<Option<Box<dyn FailurePredictor>>> {
    let Some(choice) = &options.model else { return Ok(None) };
    let model = match choice {
        super::ModelChoice::Shipped => crate::ml::model::FailureModel::shipped()?,
        super::ModelChoice::File(path) => crate::ml::model::FailureModel::load(path)?,
    };
    Ok(Some(Box::new(crate::ml::online::OnlinePredictor::new(model, options.scenario.fleet_by_id(options.vehicles)))))
}

/// Steps an inserted [`LocalCentre`] once per simulated second.
pub fn plugin(app: &mut App) {
    app.add_systems(FixedUpdate, step_centre.in_set(SimSystems::Centre));
}

fn step_centre(clock: Res<SimClock>, centre: Option<ResMut<LocalCentre>>) {
    if let Some(mut centre) = centre
        && clock.is_sample_step()
    {
        centre.step(clock.seconds());
    }
}
