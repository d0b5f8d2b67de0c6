//! The simulation clock: a fixed physics step, a 1 Hz telemetry tick and a speed factor.

use bevy::prelude::*;

use crate::schedule::SimSystems;

/// Physics steps per simulated second.
pub const PHYSICS_HZ: u32 = 20;
/// Length of one physics step in seconds.
pub const STEP_S: f64 = 1.0 / PHYSICS_HZ as f64;

/// How fast simulated time runs against wall-clock time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Speed {
    /// This many simulated seconds per wall second (1 = real time).
    Factor(f64),
    /// As fast as the machine allows.
    Max,
}

impl std::str::FromStr for Speed {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.eq_ignore_ascii_case("max") {
            return Ok(Speed::Max);
        }
        match s.trim_end_matches('x').parse::<f64>() {
            Ok(f) if f.is_finite() && f > 0.0 => Ok(Speed::Factor(f)),
            _ => Err(format!("`{s}` is not a speed: expected a positive factor like 1, 60 or 0.5, or `max`")),
        }
    }
}

/// Simulated time, advanced once per fixed step. Counting steps keeps time exact: the n-th
/// step always happens at n × [`STEP_S`], however the frames fell.
#[derive(Resource, Debug, Default, Clone, Copy)]
pub struct SimClock {
    /// Fixed steps taken so far.
    pub steps: u64,
}

impl SimClock {
    /// Simulated seconds since the start.
    pub fn seconds(&self) -> f64 {
        self.steps as f64 * STEP_S
    }

    /// Whether this step is a whole simulated second, when sensors are sampled.
    pub fn is_sample_step(&self) -> bool {
        self.steps.is_multiple_of(PHYSICS_HZ as u64)
    }
}

pub(super) fn plugin(app: &mut App) {
    app.init_resource::<SimClock>();
    app.insert_resource(Time::<Fixed>::from_hz(PHYSICS_HZ as f64));
    app.add_systems(FixedUpdate, tick.in_set(SimSystems::Tick));
}

fn tick(mut clock: ResMut<SimClock>) {
    clock.steps += 1;
}
