//! The in-process orchestrator: vehicle rule decisions become alerts, the policy turns them
//! into commands, and the vehicles obey them.

use std::path::Path;
use std::time::Duration;

use aegis::app::{RunOptions, run_headless};
use aegis::orchestrator::policy::{DEFAULT_POLICY, Policy};
use aegis::scenario::Scenario;

#[test]
fn overheating_raises_alerts_the_vehicles_obey_and_repair_clears_them() {
    let scenario = Scenario::load(Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/scenarios/coolant_leak.toml"))).unwrap();
    let mut options = RunOptions::from_scenario(scenario);
    options.duration = Duration::from_secs(2 * 3600);
    options.policy = Some(Policy::parse(DEFAULT_POLICY, Path::new("default.toml")).unwrap());
    let summary = run_headless(&options).unwrap();
    let figures = summary.orchestrator.expect("the orchestrator ran");
    assert!(figures.alerts_raised >= 2, "both leaking vehicles alert: {figures:?}");
    assert!(figures.commands_issued >= 2, "{figures:?}");
    // Every command was acknowledged and its effect seen in telemetry.
    assert_eq!(figures.commands_succeeded, figures.commands_issued, "{figures:?}");
    assert_eq!(summary.commands_handled, figures.commands_issued);
    assert_eq!((figures.commands_failed, figures.commands_timed_out), (0, 0));
    // A vehicle its own rules stopped is recovered to its depot, repaired, and its alert cleared.
    assert!(summary.repairs >= 1 && figures.alerts_cleared >= 1, "{figures:?}, repairs {}", summary.repairs);
}

#[test]
fn without_the_orchestrator_nothing_is_commanded() {
    let scenario = Scenario::load(Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/scenarios/coolant_leak.toml"))).unwrap();
    let mut options = RunOptions::from_scenario(scenario);
    options.duration = Duration::from_secs(3600);
    let summary = run_headless(&options).unwrap();
    assert!(summary.orchestrator.is_none());
    assert_eq!(summary.commands_handled, 0);
}
