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
