//! Each failure mode leaves its signature in the telemetry and its ground truth beside it.

use std::time::Duration;

use aegis::model::{EventKind, FailureMode, Metric};
use aegis::sim::Vehicle;
use aegis::sim::vehicle::{Condition, SensorState};

use crate::common::{Harness, mean, with_failure};

const MINUTE: Duration = Duration::from_secs(60);

/// Runs V0001 with `mode` for `minutes` and returns the harness.
fn run(mode: FailureMode, rate: f32, minutes: u64, extra: &str) -> Harness {
    let mut h = Harness::new(with_failure(mode, rate, extra));
    h.run_for(MINUTE * minutes as u32);
    h
}

fn late(series: &[f32], share: f32) -> &[f32] {
    &series[(series.len() as f32 * (1.0 - share)) as usize..]
}

fn assert_truth(h: &Harness, mode: FailureMode) {
    let telemetry = h.telemetry(1);
    // The latest frame that carries it: a depot may have repaired the fault since.
    let truth = telemetry.iter().rev().find_map(|(_, t)| t.truth.iter().find(|t| t.mode == mode)).expect("ground truth recorded");
    assert_eq!(truth.onset_s, 120.0);
    assert_eq!(truth.component, mode.component());
    assert!(truth.severity > 0.0);
    // Before onset, no truth; healthy vehicles carry none.
    assert!(telemetry[..100].iter().all(|(_, t)| t.truth.is_empty()));
    assert!(h.telemetry(2).iter().all(|(_, t)| t.truth.is_empty()));
    assert!(h.events(1).iter().any(|e| matches!(e, EventKind::FailureInjected { mode: m, .. } if *m == mode)));
}

#[test]
fn coolant_leak_drains_coolant_then_overheats() {
    let h = run(FailureMode::CoolantLeak, 6.0, 45, "");
    let level = h.series(1, Metric::CoolantLevelPct);
    let temp = h.series(1, Metric::CoolantTempC);
    assert!(level[60] > 95.0, "full before onset: {}", level[60]);
    assert!(*level.last().unwrap() < 55.0, "drained: {}", level.last().unwrap());
    let healthy_peak = h.series(2, Metric::CoolantTempC).into_iter().fold(0.0, f32::max);
    let leaking_peak = temp.iter().copied().fold(0.0, f32::max);
    assert!(leaking_peak > 110.0 && leaking_peak > healthy_peak + 10.0, "leaking {leaking_peak} vs healthy {healthy_peak}");
    assert_truth(&h, FailureMode::CoolantLeak);
}

#[test]
fn brake_pads_wear_down() {
    let h = run(FailureMode::BrakePadWear, 12.0, 40, "");
    let pads = h.series(1, Metric::BrakePadFrontMm);
    assert!(pads[60] > 11.5);
    assert!(*pads.last().unwrap() < 4.0, "{}", pads.last().unwrap());
    assert!(*h.series(2, Metric::BrakePadFrontMm).last().unwrap() > 11.0);
    assert_truth(&h, FailureMode::BrakePadWear);
}

#[test]
fn battery_degradation_raises_resistance_and_sags_voltage() {
    let h = run(FailureMode::BatteryDegradation, 10.0, 40, "");
    let resistance = h.series(1, Metric::BatteryResistanceMohm);
    assert!(resistance[60] < 12.0);
    assert!(*resistance.last().unwrap() > 40.0, "{}", resistance.last().unwrap());
    assert!(mean(late(&resistance, 0.1)) > mean(&resistance[..120]) + 30.0);
    assert_truth(&h, FailureMode::BatteryDegradation);
}

#[test]
fn slow_puncture_loses_pressure_on_one_tyre() {
    let h = run(FailureMode::SlowPuncture, 8.0, 40, "");
    let pressures = [Metric::TyrePressureFlKpa, Metric::TyrePressureFrKpa, Metric::TyrePressureRlKpa, Metric::TyrePressureRrKpa];
    let last: Vec<f32> = pressures.iter().map(|m| *h.series(1, *m).last().unwrap()).collect();
    let lowest = last.iter().copied().fold(f32::MAX, f32::min);
    let highest = last.iter().copied().fold(0.0, f32::max);
    assert!(lowest < 0.6 * highest, "one tyre low: {last:?}");
    assert_truth(&h, FailureMode::SlowPuncture);
}

#[test]
fn oil_pump_failure_drops_oil_pressure() {
    let h = run(FailureMode::OilPumpFailure, 8.0, 40, "");
    let rpm = h.series(1, Metric::EngineRpm);
    let oil = h.series(1, Metric::OilPressureKpa);
    let at_revs = |range: std::ops::Range<usize>| -> Vec<f32> { range.filter(|&i| rpm[i] > 1000.0).map(|i| oil[i]).collect() };
    let early = mean(&at_revs(0..120));
    let later = mean(&at_revs(oil.len() - 600..oil.len()));
    assert!(early > 200.0, "healthy pressure {early}");
    assert!(later < 0.6 * early || later == 0.0, "early {early}, late {later}");
    assert_truth(&h, FailureMode::OilPumpFailure);
}

#[test]
fn wheel_bearing_wear_shakes_one_hub() {
    let h = run(FailureMode::WheelBearingWear, 20.0, 40, "");
    let hubs = [Metric::VibrationWheelFlG, Metric::VibrationWheelFrG, Metric::VibrationWheelRlG, Metric::VibrationWheelRrG];
    let late_peak: Vec<f32> = hubs.iter().map(|m| late(&h.series(1, *m), 0.3).iter().copied().fold(0.0, f32::max)).collect();
    let healthy_peak = late(&h.series(2, Metric::VibrationWheelFlG), 0.3).iter().copied().fold(0.0, f32::max);
    let worst = late_peak.iter().copied().fold(0.0, f32::max);
    assert!(worst > 3.0 * healthy_peak, "worn hub {late_peak:?} vs healthy {healthy_peak}");
    assert_truth(&h, FailureMode::WheelBearingWear);
}

fn truth_and_reading(h: &mut Harness, metric: Metric) -> (f32, f32) {
    let world = h.app.world_mut();
    let mut query = world.query::<(&Vehicle, &Condition, &SensorState)>();
    let (_, condition, sensors) = query.iter(world).find(|(v, _, _)| v.id.0 == 1).unwrap();
    let truth = match metric {
        Metric::CoolantTempC => condition.coolant_c,
        Metric::OilPressureKpa => condition.oil_kpa,
        _ => unreachable!(),
    };
    (truth, sensors.last.unwrap().get(metric))
}

#[test]
fn drifting_sensor_reads_away_from_the_truth() {
    let mut h = run(FailureMode::SensorDrift, 6.0, 30, "sensor = \"coolant_temp_c\"");
    let (truth, reading) = truth_and_reading(&mut h, Metric::CoolantTempC);
    assert!((truth - reading).abs() > 10.0, "truth {truth}, reading {reading}");
    assert_truth(&h, FailureMode::SensorDrift);
}

#[test]
fn stuck_sensor_stops_changing_while_the_truth_moves() {
    let mut h = run(FailureMode::SensorStuck, 1.0, 20, "sensor = \"engine_rpm\"");
    let rpm = h.series(1, Metric::EngineRpm);
    let after = &rpm[200..];
    assert!(after.windows(2).all(|w| w[0] == w[1]), "stuck reading constant");
    let speed = &h.series(1, Metric::SpeedKph)[200..];
    let spread = speed.iter().copied().fold(0.0, f32::max) - speed.iter().copied().fold(f32::MAX, f32::min);
    assert!(spread > 10.0, "the vehicle kept driving");
    let _ = truth_and_reading(&mut h, Metric::CoolantTempC);
    assert_truth(&h, FailureMode::SensorStuck);
}

/// A hazard makes its failures arise by themselves: every vehicle's part begins to fail at an
/// age drawn from its Weibull life, the same seed draws the same onsets and another seed
/// others, and each onset carries its ground truth like an injected fault.
#[test]
fn hazards_make_failures_arise_by_themselves_at_times_drawn_from_the_seed() {
    // Forty minutes of a moving van's age: nearly every part begins within the hour and a half.
    let text = format!("{}\n[[hazards]]\nmode = \"slow_puncture\"\ncharacteristic_life = \"40m\"\ndevelops_over = \"2h\"\n", crate::common::SMALL_WORLD);
    let onsets = |seed: u64| {
        let mut with_seed = crate::common::scenario(&text);
        with_seed.seed = seed;
        let mut h = Harness::new(with_seed);
        h.run_for(MINUTE * 90);
        let onsets: Vec<Option<f64>> = (1..=3).map(|v| h.first_event_at(v, |e| matches!(e, EventKind::FailureInjected { mode: FailureMode::SlowPuncture, .. }))).collect();
        for (v, onset) in (1..=3).zip(&onsets) {
            let Some(onset) = onset else { continue };
            let truth = h.telemetry(v).iter().find_map(|(_, t)| t.truth.iter().find(|t| t.mode == FailureMode::SlowPuncture).cloned()).expect("ground truth");
            assert_eq!(truth.onset_s, *onset, "V000{v}'s truth dates the onset");
        }
        onsets
    };
    let first = onsets(7);
    assert!(first.iter().filter(|o| o.is_some()).count() >= 2, "{first:?}");
    let mut times: Vec<f64> = first.iter().flatten().copied().collect();
    times.dedup();
    assert_eq!(times.len(), first.iter().flatten().count(), "each vehicle's onset is its own: {first:?}");
    assert_eq!(onsets(7), first, "the same seed, the same onsets");
    assert_ne!(onsets(8), first, "another seed, other onsets");
}
