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

/// Each mechanical failure scenario: the right alert, commands the vehicle obeys, maintenance,
/// and the alert cleared by the repair.
#[test]
fn every_mechanical_failure_scenario_is_alerted_commanded_repaired_and_cleared() {
    use aegis::model::Component;
    let cases = [
        ("coolant_leak", Component::CoolingSystem, "overheating"),
        ("brake_pad_wear", Component::Brakes, "brake_pads_worn"),
        ("slow_puncture", Component::Tyres, "tyre_pressure_low"),
        ("oil_pump_failure", Component::Lubrication, "oil_pressure_low"),
        ("wheel_bearing_wear", Component::WheelBearings, "wheel_bearing_wear"),
    ];
    for (name, component, alert_type) in cases {
        let path = format!("{}/scenarios/{name}.toml", env!("CARGO_MANIFEST_DIR"));
        let mut options = RunOptions::from_scenario(Scenario::load(Path::new(&path)).unwrap());
        options.policy = Some(Policy::parse(DEFAULT_POLICY, Path::new("default.toml")).unwrap());
        let summary = run_headless(&options).unwrap();
        let figures = summary.orchestrator.unwrap();
        let ours: Vec<_> = summary.alerts.iter().filter(|a| a.key.component == component && a.key.alert_type == alert_type).collect();
        assert!(!ours.is_empty(), "{name}: a {alert_type} alert on {component:?}; got {:?}", summary.alerts.iter().map(|a| &a.key).collect::<Vec<_>>());
        assert!(figures.commands_succeeded >= 1 && figures.commands_failed == 0, "{name}: {figures:?}");
        assert!(summary.repairs >= 1, "{name}: repaired at a depot");
        assert!(ours.iter().any(|a| !a.active), "{name}: the repair cleared the alert");
        assert!(summary.alerts.iter().all(|a| a.key.vehicle.0 <= 2), "{name}: only the failing vehicles alert");
    }
}
