//! Same scenario and seed, same telemetry stream.

use std::time::Duration;

use aegis::model::Body;

use crate::common::{Harness, with_failure};

fn stream(seed: u64) -> Vec<String> {
    let mut scenario = with_failure(aegis::model::FailureMode::SlowPuncture, 8.0, "");
    scenario.seed = seed;
    let mut h = Harness::new(scenario);
    h.run_for(Duration::from_secs(600));
    h.received
        .iter()
        .filter(|e| matches!(e.body, Body::Telemetry(_)))
        .map(|e| {
            let mut e = e.clone();
            e.wall_time = aegis::model::WallTime::UNIX_EPOCH;
            e.to_json()
        })
        .collect()
}

#[test]
fn same_seed_gives_an_identical_stream() {
    let a = stream(11);
    let b = stream(11);
    assert_eq!(a.len(), 3 * 600);
    assert!(a == b, "streams differ");
    assert!(stream(12) != a, "another seed gives another stream");
}
