//! Peer comparison: a vehicle whose readings drift away from those of its peers (same model,
//! moving at road speed, same weather) is flagged before any fixed threshold trips.
//!
//! Each vehicle keeps an exponential moving average of the compared metrics, updated only while
//! it drives at road speed, so a climb or a stop at a junction does not count. Once a minute the
//! averages of each model's moving vehicles are compared: a vehicle deviates when
//!
//! ```text
//! |average − peers' median| > DEVIATION × max(1.4826 × MAD, floor)
//! ```
//!
//! (the median absolute deviation is a spread that the outlier itself cannot inflate; the
//! floor keeps a very uniform fleet from flagging noise). Deviating for [`RAISE_CHECKS`] checks
//! in a row raises a minor alert on the metric's component; [`CLEAR_CHECKS`] within
//! [`CLEAR_DEVIATION`] clear it. Comparison needs [`MIN_PEERS`] vehicles of the model.
//!
//! Coolant and oil temperature rise and fall together through the engine block, so a coolant
//! reading away from the peers while the oil temperature matches them is put down to the
//! coolant sensor: a `sensor_drift` data-quality alert instead of a cooling-system one.

use std::collections::BTreeMap;

use super::alerts::{AlertKey, Condition, Observation, Origin};
use crate::model::{Component, Metric, Recommendation, RecommendedAction, Severity, TelemetryFrame, VehicleId, VehicleModel};

/// Vehicles of one model, moving, needed before any is compared.
pub const MIN_PEERS: usize = 5;
/// Seconds between comparisons.
pub const CHECK_EVERY_S: f64 = 60.0;
/// Robust standard deviations from the median that count as deviating.
pub const DEVIATION: f32 = 6.0;
/// Robust standard deviations within which a deviating vehicle counts as back.
pub const CLEAR_DEVIATION: f32 = 3.0;
/// Deviating checks in a row that raise.
pub const RAISE_CHECKS: u8 = 5;
/// Normal checks in a row that clear.
pub const CLEAR_CHECKS: u8 = 3;
/// Time constant of the moving averages, in seconds of driving.
const AVERAGE_S: f32 = 300.0;
/// Speed above which a vehicle counts as driving at road speed, km/h.
const ROAD_SPEED_KPH: f32 = 20.0;

/// The compared metrics, the component each speaks for, and the smallest spread assumed.
const COMPARED: [(Metric, Component, f32); 12] = [
    (Metric::CoolantTempC, Component::CoolingSystem, 3.0),
    (Metric::OilTempC, Component::Lubrication, 4.0),
    (Metric::OilPressureKpa, Component::Lubrication, 25.0),
    (Metric::TransmissionTempC, Component::Engine, 4.0),
    (Metric::BatteryVoltageV, Component::Battery, 0.25),
    (Metric::TyrePressureFlKpa, Component::Tyres, 15.0),
    (Metric::TyrePressureFrKpa, Component::Tyres, 15.0),
    (Metric::TyrePressureRlKpa, Component::Tyres, 15.0),
    (Metric::TyrePressureRrKpa, Component::Tyres, 15.0),
    (Metric::VibrationWheelFlG, Component::WheelBearings, 0.08),
    (Metric::VibrationWheelFrG, Component::WheelBearings, 0.08),
    (Metric::VibrationWheelRlG, Component::WheelBearings, 0.08),
];

/// One vehicle's averages and streaks.
#[derive(Debug, Clone)]
struct Averages {
    model: VehicleModel,
    values: [f32; COMPARED.len()],
    /// Seconds of driving averaged so far (the average is trusted after one time constant).
    driven_s: f32,
    last_at: f64,
    /// Per metric: whether flagged, and the streak towards changing that.
    flagged: [bool; COMPARED.len()],
    streak: [u8; COMPARED.len()],
    /// Per metric: whether its deviation was put down to the sensor.
    sensor_blamed: [bool; COMPARED.len()],
}

/// Index of the oil temperature in [`COMPARED`].
const OIL_TEMP: usize = 1;

/// The peer-comparison rule's state.
#[derive(Debug, Default)]
pub struct PeerComparison {
    vehicles: BTreeMap<VehicleId, Averages>,
    next_check: f64,
}

impl PeerComparison {
    /// Folds one frame from a vehicle of `model` into its averages.
    pub fn frame(&mut self, vehicle: VehicleId, model: VehicleModel, frame: &TelemetryFrame, at: f64) {
        let averages = self.vehicles.entry(vehicle).or_insert_with(|| Averages {
            model,
            values: COMPARED.map(|(m, _, _)| frame.get(m)),
            driven_s: 0.0,
            last_at: at,
            flagged: [false; COMPARED.len()],
            streak: [0; COMPARED.len()],
            sensor_blamed: [false; COMPARED.len()],
        });
        let dt = (at - averages.last_at).clamp(0.0, 10.0) as f32;
        averages.last_at = at;
        if frame.get(Metric::SpeedKph) < ROAD_SPEED_KPH {
            return;
        }
        averages.driven_s += dt;
        let weight = (dt / AVERAGE_S).min(1.0);
        for (value, (metric, _, _)) in averages.values.iter_mut().zip(COMPARED) {
            *value += (frame.get(metric) - *value) * weight;
        }
    }

    /// Compares the vehicles `eligible` accepts (online, driving), once a minute; returns the
    /// alerts raised and cleared.
    pub fn check(&mut self, at: f64, eligible: impl Fn(VehicleId) -> bool) -> Vec<Observation> {
        if at < self.next_check {
            return Vec::new();
        }
        self.next_check = at + CHECK_EVERY_S;
        let mut groups: BTreeMap<VehicleModel, Vec<VehicleId>> = BTreeMap::new();
        for (&vehicle, averages) in &self.vehicles {
            if averages.driven_s >= AVERAGE_S && at - averages.last_at < CHECK_EVERY_S && eligible(vehicle) {
                groups.entry(averages.model).or_default().push(vehicle);
            }
        }
        let mut out = Vec::new();
        for members in groups.values().filter(|m| m.len() >= MIN_PEERS) {
            // Each metric's median and robust spread over the group, then each member's z.
            let centre: Vec<(f32, f32)> = (0..COMPARED.len())
                .map(|i| {
                    let values: Vec<f32> = members.iter().map(|v| self.vehicles[v].values[i]).collect();
                    let middle = median(values.clone());
                    let mad = median(values.iter().map(|v| (v - middle).abs()).collect());
                    (middle, (1.4826 * mad).max(COMPARED[i].2))
                })
                .collect();
            let z_of = |averages: &Averages, i: usize| (averages.values[i] - centre[i].0).abs() / centre[i].1;
            for (i, &(metric, component, _)) in COMPARED.iter().enumerate() {
                let median = centre[i].0;
                for &vehicle in members {
                    let averages = self.vehicles.get_mut(&vehicle).expect("member");
                    let value = averages.values[i];
                    let z = z_of(averages, i);
                    let towards_change = if averages.flagged[i] { z < CLEAR_DEVIATION } else { z > DEVIATION };
                    averages.streak[i] = if towards_change { averages.streak[i].saturating_add(1) } else { 0 };
                    let needed = if averages.flagged[i] { CLEAR_CHECKS } else { RAISE_CHECKS };
                    if averages.streak[i] < needed {
                        continue;
                    }
                    averages.flagged[i] = !averages.flagged[i];
                    averages.streak[i] = 0;
                    // Coolant and oil warm together through the engine block: coolant alone
                    // away from the peers is its sensor drifting, not the engine.
                    if averages.flagged[i] {
                        averages.sensor_blamed[i] = metric == Metric::CoolantTempC && z_of(averages, OIL_TEMP) < CLEAR_DEVIATION;
                    }
                    if averages.sensor_blamed[i] {
                        out.push(Observation {
                            key: AlertKey { vehicle, component: Component::Sensors, alert_type: format!("sensor_drift:{}", metric.name()) },
                            at,
                            condition: if averages.flagged[i] { Condition::Raise } else { Condition::Clear },
                            severity: Severity::Warning,
                            origin: Origin::CentralRule,
                            evidence: vec![(metric.name().to_owned(), value), (format!("peer_median:{}", metric.name()), median), (Metric::OilTempC.name().to_owned(), averages.values[OIL_TEMP])],
                            recommendation: Recommendation {
                                action: RecommendedAction::InspectSensor,
                                reason: format!("{} averages {value:.1} against a peer median of {median:.1} while the oil temperature matches the peers", metric.name()),
                                within_hours: None,
                            },
                            confidence: 0.7,
                            time_to_failure_h: None,
                        });
                        continue;
                    }
                    out.push(Observation {
                        key: AlertKey { vehicle, component, alert_type: format!("peer_deviation:{}", metric.name()) },
                        at,
                        condition: if averages.flagged[i] { Condition::Raise } else { Condition::Clear },
                        severity: Severity::Minor,
                        origin: Origin::CentralRule,
                        evidence: vec![(metric.name().to_owned(), value), (format!("peer_median:{}", metric.name()), median)],
                        recommendation: Recommendation {
                            action: RecommendedAction::ScheduleMaintenance,
                            reason: format!(
                                "{} averages {value:.2} {} against a median of {median:.2} over {} {:?}s driving alike",
                                metric.name(),
                                metric.spec().unit,
                                members.len(),
                                averages.model
                            ),
                            within_hours: Some(24.0),
                        },
                        confidence: 0.7,
                        time_to_failure_h: None,
                    });
                }
            }
        }
        out
    }
}

fn median(mut values: Vec<f32>) -> f32 {
    values.sort_by(f32::total_cmp);
    let n = values.len();
    if n % 2 == 1 { values[n / 2] } else { (values[n / 2 - 1] + values[n / 2]) / 2.0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(vehicle: u32, step: u32, bearing_g: f32) -> TelemetryFrame {
        let mut f = TelemetryFrame::default();
        let jitter = ((vehicle * 31 + step * 17) % 11) as f32 / 10.0 - 0.5;
        f.set(Metric::SpeedKph, 50.0);
        f.set(Metric::CoolantTempC, 88.0 + jitter);
        f.set(Metric::OilTempC, 95.0 + jitter);
        f.set(Metric::OilPressureKpa, 300.0 + 5.0 * jitter);
        f.set(Metric::TransmissionTempC, 80.0 + jitter);
        f.set(Metric::BatteryVoltageV, 27.6 + 0.02 * jitter);
        for m in [Metric::TyrePressureFlKpa, Metric::TyrePressureFrKpa, Metric::TyrePressureRlKpa, Metric::TyrePressureRrKpa] {
            f.set(m, 450.0 + jitter);
        }
        for m in [Metric::VibrationWheelFlG, Metric::VibrationWheelFrG, Metric::VibrationWheelRlG] {
            f.set(m, 0.3 + 0.01 * jitter);
        }
        f.set(Metric::VibrationWheelFlG, bearing_g + 0.01 * jitter);
        f
    }

    /// Six vans drive for `minutes`; van 1's front-left hub shakes at `shaking` g.
    fn drive(peers: &mut PeerComparison, from_min: u32, minutes: u32, shaking: f32) -> Vec<Observation> {
        let mut out = Vec::new();
        for step in from_min * 60..(from_min + minutes) * 60 {
            for vehicle in 1..=6 {
                let g = if vehicle == 1 { shaking } else { 0.3 };
                peers.frame(VehicleId(vehicle), VehicleModel::Van, &frame(vehicle, step, g), f64::from(step));
            }
            out.extend(peers.check(f64::from(step), |_| true));
        }
        out
    }

    #[test]
    fn a_vehicle_that_drifts_from_its_peers_is_flagged_and_cleared_when_it_rejoins_them() {
        let mut peers = PeerComparison::default();
        assert!(drive(&mut peers, 0, 30, 0.3).is_empty(), "a uniform fleet raises nothing");
        let raised = drive(&mut peers, 30, 30, 1.2);
        assert_eq!(raised.len(), 1, "{raised:?}");
        let alert = &raised[0];
        assert_eq!((alert.key.vehicle, alert.key.component, alert.key.alert_type.as_str()), (VehicleId(1), Component::WheelBearings, "peer_deviation:vibration_wheel_fl_g"));
        assert_eq!(alert.condition, Condition::Raise);
        let cleared = drive(&mut peers, 60, 40, 0.3);
        assert_eq!(cleared.iter().map(|o| o.condition).collect::<Vec<_>>(), [Condition::Clear]);
    }

    #[test]
    fn coolant_away_from_the_peers_with_the_oil_in_line_is_a_drifting_sensor() {
        let mut peers = PeerComparison::default();
        let mut out = Vec::new();
        for step in 0..3600 {
            for vehicle in 1..=6 {
                let mut f = frame(vehicle, step, 0.3);
                if vehicle == 2 && step > 600 {
                    f.set(Metric::CoolantTempC, 88.0 + (step - 600) as f32 * 0.02);
                }
                peers.frame(VehicleId(vehicle), VehicleModel::Van, &f, f64::from(step));
            }
            out.extend(peers.check(f64::from(step), |_| true));
        }
        let keys: Vec<_> = out.iter().map(|o| (o.key.vehicle, o.key.component, o.key.alert_type.as_str(), o.severity)).collect();
        assert_eq!(keys, [(VehicleId(2), Component::Sensors, "sensor_drift:coolant_temp_c", Severity::Warning)]);
    }

    #[test]
    fn too_few_peers_are_not_compared() {
        let mut peers = PeerComparison::default();
        for step in 0..3600 {
            for vehicle in 1..=4 {
                let g = if vehicle == 1 { 2.0 } else { 0.3 };
                peers.frame(VehicleId(vehicle), VehicleModel::Van, &frame(vehicle, step, g), f64::from(step));
            }
            assert!(peers.check(f64::from(step), |_| true).is_empty());
        }
    }
}
