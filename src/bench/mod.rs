//! `aegis bench`: throughput, latency and memory figures, measured on the real simulation
//! and the real transport.

mod bus;
mod floor;
mod orchestrator;
mod predict;
mod profile;
mod store;
mod ws;

pub use bus::{BusBench, bench_bus};
pub use predict::{PredictBench, bench_predict};
pub use store::{StoreBench, StoreBenchOptions, bench_store};
pub use ws::{WsBench, WsBenchOptions, bench_ws};

/// The `q` quantile (0 to 1) of sorted values, nearest rank; 0 when there are none.
fn quantile(sorted: &[f64], q: f64) -> f64 {
    sorted.get(((sorted.len() as f64 - 1.0) * q).round() as usize).copied().unwrap_or(0.0)
}
pub use orchestrator::{OrchestratorBench, bench_orchestrator};

use std::sync::Arc;
use std::time::{Duration, Instant};

use bevy::time::TimeUpdateStrategy;
use serde::Serialize;

use crate::app::{RunOptions, headless_app};
use crate::bus::{Backlog, Filter, MemoryBus, SharedBus};
use crate::scenario::Scenario;
use crate::sim::clock::{PHYSICS_HZ, SimClock};

/// Figures from `aegis bench sim`.
#[derive(Debug, Clone, Serialize)]
pub struct SimBench {
    /// Vehicles simulated.
    pub vehicles: u32,
    /// Simulated seconds.
    pub sim_seconds: f64,
    /// Wall seconds the simulation took (after set-up).
    pub wall_seconds: f64,
    /// Vehicle-seconds simulated per wall second.
    pub vehicle_seconds_per_second: f64,
    /// Physics steps per simulated second.
    pub physics_hz: u32,
    /// Resident memory growth from before the app was built to the end, per vehicle.
    pub bytes_per_vehicle: f64,
    /// Resident memory at the end, in bytes.
    pub rss_bytes: u64,
    /// Telemetry messages a consumer received.
    pub messages_received: u64,
    /// The physics floor: the same number of rapier bodies, set up as vehicles are, stepped
    /// alone at the same rate with a force applied each step, and nothing else; in
    /// vehicle-seconds per wall second.
    pub ceiling_vehicle_seconds_per_second: f64,
    /// The full simulation's speed as a share of the floor's, 0 to 1.
    pub share_of_ceiling: f64,
    /// Where the full simulation's fixed step spends its time, by phase, in shares of the
    /// step (they add up to about 1).
    pub profile: Vec<(String, f64)>,
}

/// Resident set size of this process in bytes (Linux), or 0 where unknown.
pub fn resident_bytes() -> u64 {
    let pages = std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1).and_then(|p| p.parse::<u64>().ok()))
        .unwrap_or(0);
    pages * 4096
}

/// Simulates `vehicles` vehicles of `scenario` for `duration` as fast as possible, with one
/// consumer draining the bus, and reports throughput and memory; then the physics floor at
/// the same size, and a profile of the full step by phase.
pub fn bench_sim(scenario: Scenario, vehicles: u32, duration: Duration) -> SimBench {
    let before = resident_bytes();
    let bus: SharedBus = Arc::new(MemoryBus::new());
    // Drained after every update, so it never holds more than one simulated second.
    let consumer = bus.subscribe(Filter::all(), Backlog::Lossless);
    let mut options = RunOptions::from_scenario(scenario);
    options.vehicles = vehicles;
    let mut app = headless_app(&options, bus);
    profile::plugin(&mut app);
    app.insert_resource(TimeUpdateStrategy::FixedTimesteps(PHYSICS_HZ));
    app.finish();
    app.cleanup();
    // The first update spawns the fleet; time the steady state after it.
    app.update();
    app.world_mut().resource_mut::<profile::PhaseTimes>().reset();
    let mut received = consumer.try_iter().count() as u64;
    let start_s = app.world().resource::<SimClock>().seconds();
    let started = Instant::now();
    while app.world().resource::<SimClock>().seconds() - start_s < duration.as_secs_f64() {
        app.update();
        received += consumer.try_iter().count() as u64;
    }
    let wall = started.elapsed().as_secs_f64();
    let sim_seconds = app.world().resource::<SimClock>().seconds() - start_s;
    let rss = resident_bytes();
    let profile = app.world().resource::<profile::PhaseTimes>().shares();
    drop(app);
    let vehicle_seconds_per_second = f64::from(vehicles) * sim_seconds / wall;
    let ceiling = floor::bench(vehicles, duration);
    SimBench {
        vehicles,
        sim_seconds,
        wall_seconds: wall,
        vehicle_seconds_per_second,
        physics_hz: PHYSICS_HZ,
        bytes_per_vehicle: rss.saturating_sub(before) as f64 / f64::from(vehicles.max(1)),
        rss_bytes: rss,
        messages_received: received,
        ceiling_vehicle_seconds_per_second: ceiling,
        share_of_ceiling: vehicle_seconds_per_second / ceiling.max(1e-9),
        profile,
    }
}
