//! Central data-quality rules: sensors that are stuck, out of their plausible range, or whose
//! telemetry has gone stale. They raise warnings on the vehicle's sensors, distinct from any
//! mechanical fault, so a bad reading sends a technician with a multimeter, not a mechanic.
//!
//! - **Stuck:** a reading that repeats exactly [`STUCK_AFTER`] times in a row, away from the
//!   ends of its range (where real sensors saturate). Real sensors carry noise, so even a
//!   steady quantity never reads exactly the same thirty times.
//! - **Out of range:** for [`OUT_OF_RANGE_AFTER`] frames in a row, a temperature more than
//!   [`BELOW_AMBIENT_C`] below the outside air (nothing on a vehicle is that much colder than
//!   the air around it), or a reading pinned at the top of its measuring range (a shorted or
//!   open circuit), on metrics where full scale is not a normal state.
//! - **Stale:** heartbeats keep coming but no telemetry frame for [`STALE_AFTER_S`], both
//!   measured on the vehicle's own clock (shards of a fleet may run at different paces).
//!
//! Each clears once the condition has been gone as long as it took to raise.

use std::collections::BTreeMap;

use super::alerts::{AlertKey, Condition, Observation, Origin};
use crate::model::{Component, METRIC_COUNT, METRICS, Metric, Recommendation, RecommendedAction, Severity, TelemetryFrame, VehicleId};

/// Identical readings in a row after which a sensor counts as stuck.
pub const STUCK_AFTER: u16 = 30;
/// Implausible readings in a row after which a sensor counts as out of range.
pub const OUT_OF_RANGE_AFTER: u16 = 10;
/// How far below the outside air a temperature may read before it is implausible, in °C.
pub const BELOW_AMBIENT_C: f32 = 15.0;
/// Simulation seconds without telemetry, from a vehicle still sending heartbeats, after which
/// its telemetry is stale.
pub const STALE_AFTER_S: f64 = 30.0;

/// Measured metrics that legitimately repeat exactly (counters, positions at rest, pedals at
/// rest), left out of the stuck-sensor check with every estimate ([`Metric::is_estimate`]),
/// whose error drifts rather than jumping every reading.
const STEADY_METRICS: [Metric; 6] = [Metric::Gear, Metric::OdometerKm, Metric::PositionXM, Metric::PositionZM, Metric::ThrottlePct, Metric::BrakePedalPct];

/// Metrics whose full scale is a normal reading (a floored pedal, a full tank).
const FULL_SCALE_NORMAL: [Metric; 8] = [
    Metric::ThrottlePct,
    Metric::BrakePedalPct,
    Metric::EngineLoadPct,
    Metric::CoolantLevelPct,
    Metric::FuelLevelPct,
    Metric::BatterySocPct,
    Metric::HeadingDeg,
    Metric::RoadFriction,
];

/// Temperatures measured on the vehicle, none of which can sit far below the outside air.
const VEHICLE_TEMPERATURES: [Metric; 11] = [
    Metric::CoolantTempC,
    Metric::OilTempC,
    Metric::IntakeAirTempC,
    Metric::TransmissionTempC,
    Metric::BatteryTempC,
    Metric::BrakeTempFrontC,
    Metric::BrakeTempRearC,
    Metric::TyreTempFlC,
    Metric::TyreTempFrC,
    Metric::TyreTempRlC,
    Metric::TyreTempRrC,
];

/// One sensor's recent history.
#[derive(Debug, Clone, Copy)]
struct Track {
    last: f32,
    /// Exact repeats in a row.
    repeats: u16,
    stuck: bool,
    /// Implausible readings in a row (or, once flagged, plausible ones in a row).
    streak: u16,
    out_of_range: bool,
}

impl Default for Track {
    fn default() -> Self {
        Self { last: f32::NAN, repeats: 0, stuck: false, streak: 0, out_of_range: false }
    }
}

/// One vehicle's sensors, when its last frame came and when it was last heard at all.
#[derive(Debug, Clone)]
struct VehicleSensors {
    tracks: [Track; METRIC_COUNT],
    last_frame_at: f64,
    last_heard_at: f64,
    stale: bool,
}

/// The data-quality rules' state for the whole fleet.
#[derive(Debug, Default)]
pub struct DataQuality {
    vehicles: BTreeMap<VehicleId, VehicleSensors>,
}

impl DataQuality {
    /// Runs the stuck and out-of-range rules on one frame; returns what changed.
    pub fn frame(&mut self, vehicle: VehicleId, frame: &TelemetryFrame, at: f64) -> Vec<Observation> {
        let sensors = self.vehicles.entry(vehicle).or_insert_with(|| VehicleSensors { tracks: [Track::default(); METRIC_COUNT], last_frame_at: at, last_heard_at: at, stale: false });
        let mut out = Vec::new();
        sensors.last_frame_at = at;
        sensors.last_heard_at = sensors.last_heard_at.max(at);
        if std::mem::take(&mut sensors.stale) {
            out.push(stale_observation(vehicle, at, false));
        }
        let ambient = frame.get(Metric::AmbientTempC);
        for (i, spec) in METRICS.iter().enumerate() {
            let metric = Metric::ALL[i];
            let value = frame.values[i];
            let track = &mut sensors.tracks[i];

            if !STEADY_METRICS.contains(&metric) && !metric.is_estimate() {
                let saturated = value <= spec.min || value >= spec.max;
                track.repeats = if value == track.last && !saturated { track.repeats.saturating_add(1) } else { 0 };
                let stuck = track.repeats >= STUCK_AFTER;
                if stuck != track.stuck {
                    track.stuck = stuck;
                    let reason = format!("{} read {value} {STUCK_AFTER} times in a row", spec.name);
                    out.push(sensor_observation(vehicle, at, "sensor_stuck", metric, value, stuck, reason, 0.9));
                }
            }
            track.last = value;

            let implausible = (VEHICLE_TEMPERATURES.contains(&metric) && value < ambient - BELOW_AMBIENT_C)
                || (!FULL_SCALE_NORMAL.contains(&metric) && value >= spec.max);
            // While unflagged the streak counts implausible readings, once flagged plausible ones.
            track.streak = if implausible != track.out_of_range { track.streak.saturating_add(1) } else { 0 };
            if track.streak >= OUT_OF_RANGE_AFTER {
                track.out_of_range = !track.out_of_range;
                track.streak = 0;
                let reason = if value >= spec.max {
                    format!("{} pinned at the top of its range ({} {})", spec.name, spec.max, spec.unit)
                } else {
                    format!("{} read {value:.1} {} with the air at {ambient:.1} °C", spec.name, spec.unit)
                };
                out.push(sensor_observation(vehicle, at, "sensor_out_of_range", metric, value, track.out_of_range, reason, 0.8));
            }
        }
        out
    }

    /// Any message from `vehicle`, stamped `at` on its clock: proof it is there.
    pub fn heard(&mut self, vehicle: VehicleId, at: f64) {
        if let Some(sensors) = self.vehicles.get_mut(&vehicle) {
            sensors.last_heard_at = sensors.last_heard_at.max(at);
        }
    }

    /// The stale-telemetry rule, for vehicles `online` says are still reachable (an
    /// unreachable vehicle is a connectivity alert, not a data-quality one).
    pub fn check_stale(&mut self, online: impl Fn(VehicleId) -> bool) -> Vec<Observation> {
        let mut out = Vec::new();
        for (&vehicle, sensors) in &mut self.vehicles {
            if !sensors.stale && sensors.last_heard_at - sensors.last_frame_at > STALE_AFTER_S && online(vehicle) {
                sensors.stale = true;
                out.push(stale_observation(vehicle, sensors.last_heard_at, true));
            }
        }
        out
    }
}

#[allow(clippy::too_many_arguments)]
fn sensor_observation(vehicle: VehicleId, at: f64, kind: &str, metric: Metric, value: f32, raise: bool, reason: String, confidence: f32) -> Observation {
    Observation {
        key: AlertKey { vehicle, component: Component::Sensors, alert_type: format!("{kind}:{}", metric.name()) },
        at,
        condition: if raise { Condition::Raise } else { Condition::Clear },
        severity: Severity::Warning,
        origin: Origin::CentralRule,
        evidence: vec![(metric.name().to_owned(), value)],
        recommendation: Recommendation { action: RecommendedAction::InspectSensor, reason, within_hours: None },
        confidence,
        time_to_failure_h: None,
    }
}

fn stale_observation(vehicle: VehicleId, at: f64, raise: bool) -> Observation {
    Observation {
        key: AlertKey { vehicle, component: Component::Sensors, alert_type: "telemetry_stale".to_owned() },
        at,
        condition: if raise { Condition::Raise } else { Condition::Clear },
        severity: Severity::Warning,
        origin: Origin::CentralRule,
        evidence: Vec::new(),
        recommendation: Recommendation {
            action: RecommendedAction::InspectSensor,
            reason: format!("heartbeats arrive but no telemetry for over {STALE_AFTER_S} s"),
            within_hours: None,
        },
        confidence: 0.9,
        time_to_failure_h: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Noisy mid-range readings that never repeat, with the air at 15 °C.
    fn frame(step: u32) -> TelemetryFrame {
        let mut metrics = TelemetryFrame::default();
        for (i, spec) in METRICS.iter().enumerate() {
            metrics.values[i] = spec.min + (spec.max - spec.min) * (0.4 + 0.001 * ((step * 7 + i as u32) % 97) as f32);
        }
        metrics.set(Metric::AmbientTempC, 15.0 + 0.001 * step as f32);
        metrics
    }

    fn run(quality: &mut DataQuality, steps: std::ops::Range<u32>, edit: impl Fn(&mut TelemetryFrame)) -> Vec<Observation> {
        steps
            .flat_map(|step| {
                let mut f = frame(step);
                edit(&mut f);
                quality.frame(VehicleId(1), &f, f64::from(step))
            })
            .collect()
    }

    #[test]
    fn a_stuck_sensor_raises_after_thirty_repeats_and_clears_when_it_moves() {
        let mut quality = DataQuality::default();
        assert!(run(&mut quality, 0..40, |_| {}).is_empty(), "noisy readings are not stuck");
        let raised = run(&mut quality, 40..(41 + u32::from(STUCK_AFTER)), |f| f.set(Metric::OilPressureKpa, 312.5));
        assert_eq!(raised.len(), 1);
        assert_eq!(raised[0].key.alert_type, "sensor_stuck:oil_pressure_kpa");
        assert_eq!(raised[0].condition, Condition::Raise);
        let cleared = run(&mut quality, 100..101, |_| {});
        assert_eq!((cleared.len(), cleared[0].condition), (1, Condition::Clear));
    }

    #[test]
    fn a_temperature_far_below_the_air_or_a_pinned_reading_is_out_of_range() {
        let mut quality = DataQuality::default();
        let cold = |f: &mut TelemetryFrame| f.set(Metric::CoolantTempC, -20.0 + f.get(Metric::AmbientTempC) * 0.01);
        let raised = run(&mut quality, 0..u32::from(OUT_OF_RANGE_AFTER), cold);
        assert_eq!(raised.len(), 1, "raised on the tenth frame only");
        assert_eq!((raised[0].key.alert_type.as_str(), raised[0].condition), ("sensor_out_of_range:coolant_temp_c", Condition::Raise));
        assert!(run(&mut quality, 10..19, |_| {}).is_empty(), "nine good frames do not clear it");
        assert_eq!(run(&mut quality, 19..20, |_| {})[0].condition, Condition::Clear);

        let pinned = |f: &mut TelemetryFrame| f.set(Metric::VibrationWheelRrG, Metric::VibrationWheelRrG.spec().max);
        let raised = run(&mut quality, 20..40, pinned);
        assert_eq!(raised.iter().map(|o| o.key.alert_type.as_str()).collect::<Vec<_>>(), ["sensor_out_of_range:vibration_wheel_rr_g"]);
        let floored = |f: &mut TelemetryFrame| f.set(Metric::ThrottlePct, 100.0);
        assert!(run(&mut quality, 40..60, floored).iter().all(|o| o.key.alert_type != "sensor_out_of_range:throttle_pct"), "a floored pedal is normal");
    }

    #[test]
    fn telemetry_that_stops_while_heartbeats_continue_is_stale_until_it_resumes() {
        let mut quality = DataQuality::default();
        run(&mut quality, 0..10, |_| {});
        quality.heard(VehicleId(1), 35.0);
        assert!(quality.check_stale(|_| true).is_empty(), "heartbeats 26 s after the last frame");
        quality.heard(VehicleId(1), 60.0);
        assert!(quality.check_stale(|_| false).is_empty(), "an unreachable vehicle is a connectivity matter");
        let stale = quality.check_stale(|_| true);
        assert_eq!((stale.len(), stale[0].key.alert_type.as_str()), (1, "telemetry_stale"));
        assert!(quality.check_stale(|_| true).is_empty(), "raised once");
        let resumed = run(&mut quality, 62..63, |_| {});
        assert_eq!((resumed[0].key.alert_type.as_str(), resumed[0].condition), ("telemetry_stale", Condition::Clear));
    }
}
