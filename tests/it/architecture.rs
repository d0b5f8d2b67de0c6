//! The layers of docs/ARCHITECTURE.md, checked on the source: the centre runs without the
//! simulator, a transport or Bevy; the data model and the world are Bevy-free; the
//! simulator's modules depend on each other in one direction only.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every `.rs` file under `dir`, with its text.
fn sources(dir: &Path) -> Vec<(PathBuf, String)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                out.push((path, text));
            }
        }
    }
    out.sort();
    out
}

/// The code of a file without comments (so a doc comment may name what the code must not use).
fn code(text: &str) -> String {
    text.lines().map(|line| line.split("//").next().unwrap_or("")).collect::<Vec<_>>().join("\n")
}

/// Lines of the files under `dir` that name any of `forbidden` as a path.
fn uses(dir: &str, forbidden: &[&str]) -> Vec<String> {
    let mut found = Vec::new();
    for (path, text) in sources(&src().join(dir)) {
        for (number, line) in code(&text).lines().enumerate() {
            for name in forbidden {
                if line.contains(&format!("{name}::")) || line.contains(&format!("{name} ")) && line.trim_start().starts_with("use ") {
                    found.push(format!("{}:{}: {}", path.display(), number + 1, line.trim()));
                }
            }
        }
    }
    found
}

#[test]
fn the_centre_imports_neither_the_simulator_nor_a_transport_nor_bevy() {
    let found = uses("orchestrator", &["crate::sim", "crate::gui", "crate::bus", "crate::app", "bevy", "bevy_rapier3d", "redis", "tokio"]);
    assert!(found.is_empty(), "the centre must depend only on model, world and scenario:\n{}", found.join("\n"));
}

#[test]
fn the_data_model_and_the_world_are_bevy_free() {
    for dir in ["model", "world", "scenario"] {
        let found = uses(dir, &["bevy", "bevy_rapier3d", "crate::sim", "crate::orchestrator", "crate::bus"]);
        assert!(found.is_empty(), "{dir}/ must not depend on Bevy or the layers above it:\n{}", found.join("\n"));
    }
}

#[test]
fn the_learning_code_is_an_adapter_free_of_the_simulator_and_bevy() {
    // Of the centre, only its ports: the predictor is an adapter the centre consults.
    let found: Vec<String> = uses("ml", &["crate::sim", "crate::gui", "crate::bus", "crate::app", "crate::orchestrator", "crate::store", "bevy", "bevy_rapier3d", "redis", "tokio"])
        .into_iter()
        .filter(|line| !line.contains("crate::orchestrator::ports::"))
        .collect();
    assert!(found.is_empty(), "ml/ must depend only on the data model and the centre's ports (and Burn, Parquet):\n{}", found.join("\n"));
}

#[test]
fn the_simulators_modules_have_no_import_loop() {
    let sim = src().join("sim");
    // Module of each file: `sim/vehicle/spawn.rs` is `vehicle`, `sim/mod.rs` is `mod`.
    let module_of = |path: &Path| -> String {
        let relative = path.strip_prefix(&sim).unwrap();
        let first = relative.components().next().unwrap().as_os_str().to_string_lossy().into_owned();
        first.trim_end_matches(".rs").to_owned()
    };
    let files = sources(&sim);
    let modules: BTreeSet<String> = files.iter().map(|(p, _)| module_of(p)).filter(|m| m != "mod").collect();
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (path, text) in &files {
        let from = module_of(path);
        if from == "mod" {
            continue;
        }
        let nested = path.parent().unwrap() != sim;
        for line in code(text).lines() {
            for (prefix, depth_ok) in [("crate::sim::", true), ("super::super::", nested), ("super::", !nested)] {
                let mut rest = line;
                while let Some(at) = rest.find(prefix) {
                    rest = &rest[at + prefix.len()..];
                    if !depth_ok {
                        continue;
                    }
                    let name: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
                    // A name that is not a sibling module is an item of sim/mod.rs.
                    let to = if modules.contains(&name) { name } else { "mod".to_owned() };
                    if to != from {
                        edges.entry(from.clone()).or_default().insert(to);
                    }
                }
            }
        }
    }
    // Depth-first search for a cycle.
    fn visit(node: &str, edges: &BTreeMap<String, BTreeSet<String>>, path: &mut Vec<String>, done: &mut BTreeSet<String>) -> Option<Vec<String>> {
        if let Some(start) = path.iter().position(|n| n == node) {
            let mut cycle = path[start..].to_vec();
            cycle.push(node.to_owned());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_owned());
        for next in edges.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, edges, path, done) {
                return Some(cycle);
            }
        }
        path.pop();
        done.insert(node.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    for module in &modules {
        if let Some(cycle) = visit(module, &edges, &mut Vec::new(), &mut done) {
            panic!("import loop in sim/: {}", cycle.join(" -> "));
        }
    }
    assert!(!edges.contains_key("mod") && edges.values().all(|to| !to.contains("mod")), "sim/ modules must not reach back into sim/mod.rs: {edges:?}");
}

#[test]
fn the_api_reads_the_centre_through_its_ports_and_never_the_simulator_or_bevy() {
    let found = uses("api", &["crate::sim", "crate::gui", "crate::app", "bevy", "bevy_rapier3d", "crate::store::writer"]);
    assert!(found.is_empty(), "the API is an adapter around the centre:\n{}", found.join("\n"));
}

#[test]
fn transports_carry_messages_and_know_neither_the_api_nor_the_store_nor_the_simulator() {
    let found = uses("bus", &["crate::api", "crate::store", "crate::sim", "crate::gui", "crate::app", "bevy", "bevy_rapier3d"]);
    assert!(found.is_empty(), "bus/ is a transport: what rides beside the centre is assembled in processes.rs:\n{}", found.join("\n"));
}
