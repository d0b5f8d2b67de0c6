//! Where the simulation's fixed step spends its time, for `aegis bench sim`: a timestamp at
//! each phase boundary (the single-threaded executor runs the phases in their order), summed
//! per phase. Instrumentation of the benchmark only; the runs themselves never carry it.

use std::time::{Duration, Instant};

use bevy::prelude::*;
use bevy_rapier3d::plugin::PhysicsSet;

use crate::schedule::SimSystems;

/// Time per phase, in the order the step runs them.
#[derive(Resource, Default)]
pub struct PhaseTimes {
    last: Option<Instant>,
    spent: Vec<(&'static str, Duration)>,
}

impl PhaseTimes {
    fn mark(&mut self, ended: &'static str) {
        let now = Instant::now();
        if let Some(last) = self.last {
            match self.spent.iter_mut().find(|(name, _)| *name == ended) {
                Some((_, spent)) => *spent += now - last,
                None => self.spent.push((ended, now - last)),
            }
        }
        self.last = Some(now);
    }

    /// Forgets what was measured so far.
    pub fn reset(&mut self) {
        *self = Self::default();
    }

    /// Each phase's share of the time measured.
    pub fn shares(&self) -> Vec<(String, f64)> {
        let total: f64 = self.spent.iter().map(|(_, d)| d.as_secs_f64()).sum::<f64>().max(1e-12);
        self.spent.iter().map(|(name, d)| ((*name).to_owned(), d.as_secs_f64() / total)).collect()
    }
}

pub(super) fn plugin(app: &mut App) {
    app.init_resource::<PhaseTimes>();
    let mark = |name: &'static str| move |mut times: ResMut<PhaseTimes>| times.mark(name);
    app.add_systems(
        FixedUpdate,
        (
            // The step's start: time since the last mark is the schedule's own overhead and
            // whatever ran outside the phases.
            mark("between steps").before(SimSystems::Tick),
            mark("clock, commands").after(SimSystems::Receive).before(SimSystems::Environment),
            mark("environment").after(SimSystems::Environment).before(SimSystems::Failures),
            mark("failures").after(SimSystems::Failures).before(SimSystems::Control),
            mark("navigation and drive").after(SimSystems::Control).before(PhysicsSet::SyncBackend),
            mark("rapier (sync, step, writeback)").after(PhysicsSet::Writeback).before(SimSystems::Condition),
            mark("condition").after(SimSystems::Condition).before(SimSystems::Sample),
            mark("sensors").after(SimSystems::Sample).before(SimSystems::Judge),
            mark("local rules").after(SimSystems::Judge).before(SimSystems::Report),
            mark("heartbeats, status").after(SimSystems::Report).before(SimSystems::Send),
            mark("outbox to bus").after(SimSystems::Send).before(SimSystems::Centre),
        ),
    );
}
