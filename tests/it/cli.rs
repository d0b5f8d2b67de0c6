//! The `aegis` binary end to end.

use std::process::Command;

use aegis::model::{Body, Envelope};

fn aegis() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_aegis"));
    command.current_dir(env!("CARGO_MANIFEST_DIR"));
    command
}

fn strip_wall_time(line: &str) -> String {
    let mut value: serde_json::Value = serde_json::from_str(line).unwrap();
    value.as_object_mut().unwrap().remove("wall_time");
    value.to_string()
}

#[test]
fn headless_run_writes_telemetry_and_summary_identically_twice() {
    let dir = tempfile::tempdir().unwrap();
    let run = |name: &str| {
        let out = dir.path().join(format!("{name}.jsonl"));
        let summary = dir.path().join(format!("{name}.json"));
        let result = aegis()
            .args(["run", "--headless", "--scenario", "scenarios/coolant_leak.toml", "--duration", "90s", "--speed", "max", "--seed", "5"])
            .arg("--telemetry-out")
            .arg(&out)
            .arg("--summary")
            .arg(&summary)
            .output()
            .unwrap();
        assert!(result.status.success(), "{}", String::from_utf8_lossy(&result.stderr));
        (std::fs::read_to_string(out).unwrap(), std::fs::read_to_string(summary).unwrap(), String::from_utf8_lossy(&result.stderr).into_owned())
    };
    let (telemetry, summary, stderr) = run("a");
    let lines: Vec<&str> = telemetry.lines().collect();
    assert_eq!(lines.len(), 4 * 90, "4 vehicles × 90 s");
    for line in &lines {
        let envelope = Envelope::from_json(line).unwrap();
        assert!(matches!(envelope.body, Body::Telemetry(_)));
    }
    let summary: serde_json::Value = serde_json::from_str(&summary).unwrap();
    for key in ["vehicles", "sim_seconds", "telemetry_messages", "events", "failures_injected", "local_rule_actions"] {
        assert!(summary.get(key).is_some(), "summary lacks {key}");
    }
    assert_eq!(summary["vehicles"], 4);
    assert_eq!(summary["sim_seconds"], 90.0);
    assert_eq!(summary["telemetry_messages"], 360);
    assert!(stderr.contains("vehicles"), "{stderr}");

    let (again, _, _) = run("b");
    let a: Vec<String> = telemetry.lines().map(strip_wall_time).collect();
    let b: Vec<String> = again.lines().map(strip_wall_time).collect();
    assert!(a == b, "two runs with the same seed differ");
}

#[test]
fn validate_reports_file_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "name = \"x\"\nduration = \"1h\"\n[fleet]\ncount = \"many\"\n").unwrap();
    let result = aegis().args(["scenario", "validate"]).arg(&bad).output().unwrap();
    assert!(!result.status.success());
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(stderr.contains("bad.toml:4:"), "{stderr}");
    assert!(stderr.contains("integer") || stderr.contains("u32"), "{stderr}");
    let good = aegis().args(["scenario", "validate", "scenarios/demo.toml"]).output().unwrap();
    assert!(good.status.success(), "{}", String::from_utf8_lossy(&good.stderr));
}

#[test]
fn bench_sim_prints_json_figures() {
    let result = aegis().args(["bench", "sim", "--vehicles", "20", "--duration", "10s", "--json"]).output().unwrap();
    assert!(result.status.success(), "{}", String::from_utf8_lossy(&result.stderr));
    let figures: serde_json::Value = serde_json::from_slice(&result.stdout).unwrap();
    assert_eq!(figures["vehicles"], 20);
    assert!(figures["vehicle_seconds_per_second"].as_f64().unwrap() > 0.0);
    assert!(figures["bytes_per_vehicle"].is_number());
}

#[test]
fn bench_orchestrator_prints_json_figures() {
    let result = aegis().args(["bench", "orchestrator", "--vehicles", "200", "--duration", "1s", "--json"]).output().unwrap();
    assert!(result.status.success(), "{}", String::from_utf8_lossy(&result.stderr));
    let figures: serde_json::Value = serde_json::from_slice(&result.stdout).unwrap();
    assert_eq!(figures["vehicles"], 200);
    assert_eq!(figures["alerts"], 2, "1% of the vehicles raise an alert each second");
    for key in ["alert_latency_p50_ms", "alert_latency_p99_ms", "ingested_per_second"] {
        assert!(figures[key].is_number(), "{key}");
    }
    assert!(figures["keeps_up"].is_boolean());
}

/// `aegis run` consults the model built in: both leaking vehicles of the coolant-leak scenario
/// are predicted to fail before their own rules see anything, and the healthy two are not.
#[test]
fn a_run_raises_prediction_alerts_from_the_shipped_model_before_the_rules_fire() {
    let dir = tempfile::tempdir().unwrap();
    let summary = dir.path().join("summary.json");
    let result = aegis().args(["run", "--headless", "--scenario", "scenarios/coolant_leak.toml", "--speed", "max", "--duration", "45m", "--summary"]).arg(&summary).output().unwrap();
    assert!(result.status.success(), "{}", String::from_utf8_lossy(&result.stderr));
    let summary: serde_json::Value = serde_json::from_slice(&std::fs::read(&summary).unwrap()).unwrap();
    let alerts = summary["alerts"].as_array().unwrap();
    let first = |vehicle: &str, origin: &str| alerts.iter().filter(|a| a["key"]["vehicle"] == vehicle && a["origin"] == origin).map(|a| a["created_at"].as_f64().unwrap()).fold(f64::INFINITY, f64::min);
    for vehicle in ["V0001", "V0002"] {
        let predicted = alerts.iter().find(|a| a["key"]["vehicle"] == vehicle && a["origin"] == "prediction").unwrap_or_else(|| panic!("no prediction for {vehicle}: {alerts:?}"));
        assert_eq!((predicted["key"]["component"].as_str(), predicted["key"]["alert_type"].as_str()), (Some("cooling_system"), Some("predicted_failure")));
        assert!(predicted["evidence"].as_array().is_some_and(|e| !e.is_empty()), "with the features behind it: {predicted}");
        assert!(first(vehicle, "prediction") < first(vehicle, "vehicle_rule"), "{vehicle}: predicted before its own rules fired");
    }
    assert!(alerts.iter().all(|a| a["origin"] != "prediction" || ["V0001", "V0002"].contains(&a["key"]["vehicle"].as_str().unwrap())), "no prediction for the healthy vehicles: {alerts:?}");
}

#[test]
fn a_run_refuses_a_model_it_cannot_use_before_it_starts() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.aegis");
    std::fs::write(&bad, b"AEGIS-MODEL\n\x05\x00\x00\x00{oops").unwrap();
    let result = aegis().args(["run", "--headless", "--scenario", "scenarios/demo.toml", "--duration", "10s", "--speed", "max", "--model"]).arg(&bad).output().unwrap();
    assert!(!result.status.success());
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(stderr.contains("bad.aegis") && stderr.contains("metadata"), "{stderr}");
    assert!(!stderr.contains("panicked") && !stderr.contains("sim 00:00"), "refused before the run: {stderr}");
    // Without a model the same run goes.
    let plain = aegis().args(["run", "--headless", "--scenario", "scenarios/demo.toml", "--duration", "10s", "--speed", "max", "--no-model"]).output().unwrap();
    assert!(plain.status.success(), "{}", String::from_utf8_lossy(&plain.stderr));
}

#[test]
fn bad_arguments_are_named() {
    let result = aegis().args(["run", "--headless", "--scenario", "scenarios/demo.toml", "--duration", "forever"]).output().unwrap();
    assert!(!result.status.success());
    assert!(String::from_utf8_lossy(&result.stderr).contains("forever"));
    let missing = aegis().args(["run", "--headless", "--scenario", "scenarios/nope.toml"]).output().unwrap();
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("nope.toml"));
    let remote_errors = [
        (&["fleet", "--scenario", "scenarios/demo.toml", "--redis", "redis://127.0.0.1:1", "--shard", "3/2"][..], "numbered 1 to N"),
        (&["fleet", "--scenario", "scenarios/demo.toml", "--redis", "redis://127.0.0.1:1", "--shard", "two"][..], "expected I/N"),
        (&["vehicle", "--scenario", "scenarios/demo.toml", "--redis", "redis://127.0.0.1:1", "--id", "V0099"][..], "V0001 to V0024"),
        (&["orchestrator", "--redis", "not a url"][..], "--redis `not a url`"),
    ];
    for (args, expected) in remote_errors {
        let result = aegis().args(args).env_remove("AEGIS_REDIS_URL").output().unwrap();
        assert!(!result.status.success());
        let stderr = String::from_utf8_lossy(&result.stderr);
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    }
}

#[test]
fn a_finished_run_is_compacted_by_store_compact_and_info_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", dir.path().join("history.db").display());
    let run = aegis().args(["run", "--headless", "--scenario", "scenarios/coolant_leak.toml", "--duration", "2h", "--speed", "max", "--store", &url]).output().unwrap();
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    // Two hours are far younger than the writer's 24: all raw until asked.
    let compact = aegis().args(["store", "compact", "--store", &url, "--older-than", "2m"]).output().unwrap();
    assert!(compact.status.success(), "{}", String::from_utf8_lossy(&compact.stderr));
    let said = String::from_utf8_lossy(&compact.stdout);
    assert!(said.contains("compacted into"), "{said}");
    let info = aegis().args(["store", "info", "--store", &url, "--json"]).output().unwrap();
    let info: serde_json::Value = serde_json::from_slice(&info.stdout).unwrap();
    assert_eq!(info["backend"], "sqlite");
    // 4 vehicles × 2 h: the whole hours older than 2 minutes before the end are segments now,
    // the rest raw, and not a frame lost.
    assert!(info["compacted_frames"].as_i64().unwrap() >= 4 * 3599, "{info}");
    assert!(info["segments"].as_i64().unwrap() >= 4, "{info}");
    assert_eq!(info["raw_frames"].as_i64().unwrap() + info["compacted_frames"].as_i64().unwrap(), 4 * 7200, "{info}");
    let unknown = aegis().args(["store", "compact", "--store", &url, "--run", "no-such-run"]).output().unwrap();
    assert!(!unknown.status.success());
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("no run named `no-such-run`"));

    // An hour that spans compacted and raw rows, exported on demand: the database keeps it.
    let out = dir.path().join("export");
    let export = aegis().args(["store", "export", "--store", &url, "--from", "30m", "--to", "90m", "--out"]).arg(&out).output().unwrap();
    assert!(export.status.success(), "{}", String::from_utf8_lossy(&export.stderr));
    let said = String::from_utf8_lossy(&export.stdout);
    let (path, rows) = said.trim().rsplit_once(": ").unwrap();
    assert_eq!(rows, "14400 rows", "{said}");
    assert!(path.ends_with(".parquet"), "{said}");
    let read = crate::lifecycle::read_with_pyarrow(std::path::Path::new(path));
    assert_eq!(read["rows"], 4 * 3600);
    assert!(read["labelled"].as_u64().unwrap() > 0, "the coolant leak labels the rows before it: {read}");
    let info: serde_json::Value = serde_json::from_slice(&aegis().args(["store", "info", "--store", &url, "--json"]).output().unwrap().stdout).unwrap();
    assert_eq!(info["raw_frames"].as_i64().unwrap() + info["compacted_frames"].as_i64().unwrap(), 4 * 7200, "export drops nothing: {info}");
    let backwards = aegis().args(["store", "export", "--store", &url, "--from", "90m", "--to", "30m", "--out"]).arg(&out).output().unwrap();
    assert!(!backwards.status.success());
    assert!(String::from_utf8_lossy(&backwards.stderr).contains("--from must come before --to"));
}
