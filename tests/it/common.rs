//! The shared harness: a headless app on an in-process bus, advanced in whole fixed steps.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use aegis::app::{RunOptions, headless_app};
use aegis::bus::{Backlog, Filter, MemoryBus, SharedBus, Subscription};
use aegis::model::{Body, Envelope, FailureMode, Metric, Telemetry, VehicleId};
use aegis::scenario::Scenario;
use aegis::sim::clock::{PHYSICS_HZ, SimClock};
use bevy::prelude::*;
use bevy::time::TimeUpdateStrategy;

/// A small world with two depots; failures are added per test.
pub const SMALL_WORLD: &str = r#"
name = "test"
seed = 7
duration = "1h"

[fleet]
count = 3
models = { van = 1 }
dwell_s = 10
depots = [ { name = "A", x_m = 0, z_m = 0 }, { name = "B", x_m = 1200, z_m = -900 } ]

[world]
size_m = 3000
road_seed = 1
junction_spacing_m = 500
"#;

/// A scenario from text.
pub fn scenario(text: &str) -> Scenario {
    Scenario::parse(text, Path::new("test.toml")).expect("test scenario parses")
}

/// A headless simulation with a subscription to everything it publishes.
pub struct Harness {
    pub app: App,
    pub messages: Subscription,
    pub received: Vec<Envelope>,
}

impl Harness {
    pub fn new(scenario: Scenario) -> Self {
        let bus: SharedBus = Arc::new(MemoryBus::new());
        let messages = bus.subscribe(Filter::all(), Backlog::Lossless);
        let mut app = headless_app(&RunOptions::from_scenario(scenario), bus);
        app.insert_resource(TimeUpdateStrategy::FixedTimesteps(PHYSICS_HZ));
        app.finish();
        app.cleanup();
        Self { app, messages, received: Vec::new() }
    }

    /// Advances simulated time by whole seconds, collecting what was published.
    pub fn run_for(&mut self, duration: Duration) {
        let target = self.now() + duration.as_secs_f64();
        while self.now() < target - 1e-9 {
            self.app.update();
            self.received.extend(self.messages.try_iter());
        }
    }

    pub fn now(&self) -> f64 {
        self.app.world().resource::<SimClock>().seconds()
    }

    /// Telemetry of one vehicle, in order.
    pub fn telemetry(&self, vehicle: u32) -> Vec<(f64, &Telemetry)> {
        self.received
            .iter()
            .filter(|e| e.vehicle_id == VehicleId(vehicle))
            .filter_map(|e| match &e.body {
                Body::Telemetry(t) => Some((e.sim_time, t.as_ref())),
                _ => None,
            })
            .collect()
    }

    /// One metric of one vehicle over time.
    pub fn series(&self, vehicle: u32, metric: Metric) -> Vec<f32> {
        self.telemetry(vehicle).into_iter().map(|(_, t)| t.metrics.get(metric)).collect()
    }

    /// Simulation time of the first event of `vehicle` that `matches`.
    pub fn first_event_at(&self, vehicle: u32, matches: impl Fn(&aegis::model::EventKind) -> bool) -> Option<f64> {
        self.received.iter().find_map(|e| match &e.body {
            Body::Event(ev) if e.vehicle_id == VehicleId(vehicle) && matches(&ev.event) => Some(e.sim_time),
            _ => None,
        })
    }

    /// Events of one vehicle.
    pub fn events(&self, vehicle: u32) -> Vec<&aegis::model::EventKind> {
        self.received
            .iter()
            .filter(|e| e.vehicle_id == VehicleId(vehicle))
            .filter_map(|e| match &e.body {
                Body::Event(ev) => Some(&ev.event),
                _ => None,
            })
            .collect()
    }
}

/// A one-failure scenario on vehicle V0001 from the start, with a fast rate.
pub fn with_failure(mode: FailureMode, rate: f32, extra: &str) -> Scenario {
    scenario(&format!(
        "{SMALL_WORLD}\n[[failures]]\nvehicles = [\"V0001\"]\nmode = \"{}\"\nstart = \"2m\"\nrate = {rate}\n{extra}\n",
        serde_json::to_value(mode).unwrap().as_str().unwrap()
    ))
}

pub fn mean(values: &[f32]) -> f32 {
    values.iter().sum::<f32>() / values.len().max(1) as f32
}
