//! Every shipped scenario loads; malformed files get file, line, column and what was expected.

use std::path::Path;

use aegis::scenario::{Scenario, ScenarioError};

#[test]
fn every_shipped_scenario_loads() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    let mut count = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            Scenario::load(&path).unwrap_or_else(|e| panic!("{e}"));
            count += 1;
        }
    }
    assert!(count >= 7, "expected a scenario per failure mode plus the demo, found {count}");
}

fn error_of(text: &str) -> (usize, usize, String) {
    match Scenario::parse(text, Path::new("bad.toml")).unwrap_err() {
        ScenarioError::Invalid { path, line, column, message } => {
            assert_eq!(path, Path::new("bad.toml"));
            (line, column, message)
        }
        other => panic!("unexpected {other}"),
    }
}

const GOOD_HEAD: &str = "name = \"x\"\nduration = \"1h\"\n[fleet]\ncount = 2\ndepots = [ { name = \"A\", x_m = 0, z_m = 0 } ]\n";

#[test]
fn syntax_error_points_at_line_and_column() {
    let (line, column, message) = error_of("name = \"x\"\nduration = \n");
    assert_eq!(line, 2);
    assert!(column >= 11, "column {column}");
    assert!(!message.is_empty());
}

#[test]
fn unknown_field_is_named_with_its_line() {
    let (line, _, message) = error_of(&format!("{GOOD_HEAD}colour = \"red\"\n"));
    assert_eq!(line, 6);
    assert!(message.contains("colour"), "{message}");
}

#[test]
fn bad_values_say_what_was_expected() {
    let (line, _, message) = error_of(&format!("{GOOD_HEAD}[[failures]]\nvehicles = [\"V0001\"]\nmode = \"gremlins\"\nstart = \"1m\"\n"));
    assert_eq!(line, 8);
    assert!(message.contains("gremlins") && message.contains("coolant_leak"), "{message}");
    let (line, _, message) = error_of(&format!("{GOOD_HEAD}[[failures]]\nvehicles = [\"V0001\"]\nmode = \"coolant_leak\"\nstart = \"soon\"\n"));
    assert_eq!(line, 9);
    assert!(message.contains("soon") && message.contains("duration"), "{message}");
    let (line, _, message) = error_of(&format!("{GOOD_HEAD}[[failures]]\nvehicles = [\"bus-1\"]\nmode = \"coolant_leak\"\nstart = \"1m\"\n"));
    assert_eq!(line, 7);
    assert!(message.contains("bus-1"), "{message}");
}

#[test]
fn semantic_errors_point_at_the_entry() {
    let (line, _, message) = error_of(&format!("{GOOD_HEAD}\n[[failures]]\nvehicles = [\"V0001\"]\nmode = \"coolant_leak\"\nstart = \"1m\"\nrate = -2\n"));
    assert!(line >= 7, "line {line}");
    assert!(message.contains("rate"), "{message}");
    let (_, _, message) = error_of("name = \"x\"\nduration = \"1h\"\n[fleet]\ncount = 2\ndepots = []\n");
    assert!(message.contains("depot"), "{message}");
    let hazard = |extra: &str| error_of(&format!("{GOOD_HEAD}\n[[hazards]]\nmode = \"coolant_leak\"\ncharacteristic_life = \"30d\"\ndevelops_over = \"1d\"\n{extra}"));
    let (line, _, message) = hazard("shape = 40\n");
    assert!(line >= 7 && message.contains("hazards.shape: expected 0.2 to 10, found 40"), "{line}: {message}");
    let (_, _, message) = hazard("[[hazards]]\nmode = \"coolant_leak\"\ncharacteristic_life = \"9d\"\ndevelops_over = \"1d\"\n");
    assert!(message.contains("\"coolant_leak\" has more than one hazard"), "{message}");
}

#[test]
fn models_are_spread_by_weight() {
    let text = format!("{GOOD_HEAD}models = {{ van = 2, truck = 1 }}\n").replace("count = 2", "count = 30");
    // `models` must be inside [fleet]; it is the last key there.
    let scenario = Scenario::parse(&text, Path::new("x.toml")).unwrap();
    let models = scenario.fleet_models(30);
    let vans = models.iter().filter(|&&m| m == aegis::model::VehicleModel::Van).count();
    assert_eq!(models[..3].iter().filter(|&&m| m == aegis::model::VehicleModel::Van).count(), 2);
    assert_eq!(vans, 20);
}
