//! Missions in process: generated from the scenario, assigned, driven, completed, and handed on
//! when a vehicle is recalled.

use std::path::Path;

use aegis::app::{RunOptions, run_headless};
use aegis::orchestrator::missions::MissionState;
use aegis::orchestrator::policy::Policy;
use aegis::scenario::Scenario;

fn deliveries() -> aegis::app::RunSummary {
    let scenario = Scenario::load(Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/scenarios/deliveries.toml"))).unwrap();
    let mut options = RunOptions::from_scenario(scenario);
    options.policy = Some(Policy::shipped());
    run_headless(&options).unwrap()
}

#[test]
fn deliveries_are_dispatched_driven_and_a_recalled_vehicles_delivery_is_handed_on() {
    let summary = deliveries();
    // Same seed, same missions, same histories.
    let plan = |s: &aegis::app::RunSummary| s.missions.iter().map(|m| (m.id.clone(), m.state, m.history.clone())).collect::<Vec<_>>();
    assert_eq!(plan(&summary), plan(&deliveries()));
    let figures = summary.orchestrator.unwrap();
    let m = figures.missions;
    assert!(m.missions_generated >= 75, "40 an hour for two hours: {m:?}");
    assert!(m.missions_completed * 10 >= m.missions_generated * 8, "most are done, the rest under way: {m:?}");
    assert_eq!(m.missions_missed, 0, "{m:?}");
    assert_eq!(figures.commands_failed + figures.commands_timed_out, 0, "{figures:?}");
    for mission in summary.missions.iter().filter(|m| m.state == MissionState::Completed) {
        assert!(mission.history.iter().any(|(_, what)| what.starts_with("completed by")), "{mission:?}");
        assert!(mission.history.windows(2).all(|w| w[0].0 <= w[1].0), "history in time order: {mission:?}");
    }

    // The leaking vehicle was on a delivery when it was recalled; another vehicle finished it.
    let handed_on: Vec<_> = summary.missions.iter().filter(|m| m.assignments > 1).collect();
    assert!(m.missions_reassigned >= 1 && !handed_on.is_empty(), "{m:?}");
    let mission = handed_on[0];
    assert_eq!(mission.state, MissionState::Completed, "{mission:?}");
    assert!(mission.history.iter().any(|(_, what)| what.contains("V0009 recalled")), "{mission:?}");
    assert!(mission.history.iter().any(|(_, what)| what.starts_with("completed by") && !what.contains("V0009")), "{mission:?}");

    // The recall was for overheating; the repair cleared it.
    let overheating = summary.alerts.iter().find(|a| a.key.alert_type == "overheating").expect("the leak overheats the engine");
    assert_eq!(overheating.key.vehicle.to_string(), "V0009");
    assert!(!overheating.active && summary.repairs >= 1);
}

/// A vehicle low on fuel cuts its delivery short, fills up at the depot and drives on: a fleet
/// keeps running for days, not until its tanks are dry.
#[test]
fn a_vehicle_low_on_fuel_fills_up_at_the_depot_and_drives_on() {
    use aegis::model::Metric;
    use aegis::sim::vehicle::Drive;
    let mut h = crate::common::Harness::new(crate::common::scenario(crate::common::SMALL_WORLD));
    h.run_for(std::time::Duration::from_secs(60));
    // V0001 is under way with a tenth of its tank.
    let mut drives = h.app.world_mut().query::<(&aegis::sim::Vehicle, &mut Drive)>();
    for (vehicle, mut drive) in drives.iter_mut(h.app.world_mut()) {
        if vehicle.id.0 == 1 {
            drive.fuel_l = vehicle.spec().tank_l * 0.1;
        }
    }
    h.run_for(std::time::Duration::from_secs(40 * 60));
    let fuel = h.series(1, Metric::FuelLevelPct);
    let lowest = fuel.iter().copied().fold(f32::MAX, f32::min);
    let refilled = fuel.iter().rposition(|&f| f < 11.0).map(|i| fuel[i + 1..].iter().copied().fold(0.0, f32::max));
    assert!(lowest > 0.0, "it never ran dry");
    assert!(refilled.is_some_and(|f| f > 95.0), "it filled up: the most after the low {refilled:?}");
    let speed = h.series(1, Metric::SpeedKph);
    assert!(speed[speed.len() - 600..].iter().any(|&s| s > 10.0), "and drove on");
}
