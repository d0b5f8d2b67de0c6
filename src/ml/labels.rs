//! Labels from the failure ground truth that telemetry carries beside its readings: each
//! failure episode's onset, functional failure and repair, and from them, for any moment of a
//! vehicle's history, whether each component fails within each horizon and how many seconds
//! are left. The moments between a functional failure and its repair are marked: a model is
//! neither trained nor scored on a vehicle already broken down.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::model::{Component, FailureMode, FailureTruth, VehicleId};

/// The horizons a model predicts failure within, in hours.
pub const HORIZONS_H: [u32; 3] = [2, 6, 24];

/// The components a model predicts, in output order: those failure modes damage.
pub const COMPONENTS: [Component; 7] = [
    Component::CoolingSystem,
    Component::Lubrication,
    Component::Battery,
    Component::Brakes,
    Component::Tyres,
    Component::WheelBearings,
    Component::Sensors,
];

/// The index of `component` in [`COMPONENTS`].
pub fn component_index(component: Component) -> Option<usize> {
    COMPONENTS.iter().position(|&c| c == component)
}

/// One failure on one vehicle, from onset to repair (or the end of the history).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Episode {
    /// The vehicle.
    pub vehicle: VehicleId,
    /// The mode.
    pub mode: FailureMode,
    /// Simulated second the degradation began.
    pub onset_s: f64,
    /// Simulated second the component functionally failed, if it did.
    pub failed_s: Option<f64>,
    /// The last simulated second the failure was seen: its repair follows (unless the history
    /// ended first, see `ongoing`).
    pub last_seen_s: f64,
    /// Where the ground truth's own projection put the failure when last seen: the failure
    /// time of an episode repaired before it failed.
    pub projected_failure_s: Option<f64>,
    /// Whether the history ended with the failure still present (not repaired).
    pub ongoing: bool,
}

impl Episode {
    /// The component it damages.
    pub fn component(&self) -> Component {
        self.mode.component()
    }

    /// When the component failed or, repaired before it did, would have failed at the rate it
    /// was degrading; `None` when neither is known.
    pub fn failure_s(&self) -> Option<f64> {
        self.failed_s.or(self.projected_failure_s)
    }

    /// Whether the vehicle was broken down at `sim_s`: after the functional failure, before
    /// the repair.
    pub fn broken_at(&self, sim_s: f64) -> bool {
        self.failed_s.is_some_and(|f| f <= sim_s) && (sim_s <= self.last_seen_s || self.ongoing)
    }
}

/// Every vehicle's episodes, collected frame by frame from the ground truth.
#[derive(Debug, Clone, Default)]
pub struct EpisodeLog {
    /// By vehicle, in order of onset.
    by_vehicle: BTreeMap<VehicleId, Vec<Episode>>,
}

impl EpisodeLog {
    /// Nothing seen yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records what a frame of `vehicle` at `sim_s` says is failing. A failure is the same
    /// episode for as long as its mode and onset stay; once it is gone from the frames it was
    /// repaired.
    pub fn record(&mut self, vehicle: VehicleId, sim_s: f64, truth: &[FailureTruth]) {
        let episodes = self.by_vehicle.entry(vehicle).or_default();
        for t in truth {
            let known = episodes.iter_mut().rev().find(|e| e.mode == t.mode && e.onset_s == t.onset_s);
            match known {
                Some(e) => {
                    e.last_seen_s = e.last_seen_s.max(sim_s);
                    e.failed_s = e.failed_s.or(t.functional_failure_s);
                    if t.predicted_failure_s.is_some() {
                        e.projected_failure_s = t.predicted_failure_s;
                    }
                }
                None => episodes.push(Episode {
                    vehicle,
                    mode: t.mode,
                    onset_s: t.onset_s,
                    failed_s: t.functional_failure_s,
                    last_seen_s: sim_s,
                    projected_failure_s: t.predicted_failure_s,
                    ongoing: false,
                }),
            }
        }
    }

    /// Closes the history at `end_s`: failures seen in the last `grace_s` seconds are ongoing
    /// rather than repaired.
    pub fn close(&mut self, end_s: f64, grace_s: f64) {
        for e in self.by_vehicle.values_mut().flatten() {
            e.ongoing = e.last_seen_s >= end_s - grace_s;
        }
    }

    /// A vehicle's episodes.
    pub fn of(&self, vehicle: VehicleId) -> &[Episode] {
        self.by_vehicle.get(&vehicle).map_or(&[], Vec::as_slice)
    }

    /// Every episode, by vehicle then onset.
    pub fn all(&self) -> impl Iterator<Item = &Episode> {
        self.by_vehicle.values().flatten()
    }
}

/// The labels of one moment of one vehicle.
#[derive(Debug, Clone, PartialEq)]
pub struct Labels {
    /// Broken down (after a functional failure, before its repair): left out of training and
    /// scoring.
    pub excluded: bool,
    /// Seconds to the next failure of each component in [`COMPONENTS`], if one is coming while
    /// the failing part is still on the vehicle.
    pub seconds_to_failure: [Option<f64>; COMPONENTS.len()],
}

impl Labels {
    /// Whether component `c` (index into [`COMPONENTS`]) fails within `hours`.
    pub fn fails_within(&self, c: usize, hours: u32) -> bool {
        self.seconds_to_failure[c].is_some_and(|s| s <= f64::from(hours) * 3600.0)
    }
}

/// The labels of a moment `sim_s` of a vehicle with `episodes`: a failure counts from before its
/// onset up to its time, as long as the part is still on the vehicle (not after its repair).
pub fn label(episodes: &[Episode], sim_s: f64) -> Labels {
    let mut seconds_to_failure = [None; COMPONENTS.len()];
    let mut excluded = false;
    for e in episodes {
        excluded |= e.broken_at(sim_s);
        let Some(c) = component_index(e.component()) else { continue };
        let Some(failure_s) = e.failure_s() else { continue };
        let part_still_fitted = sim_s <= e.last_seen_s || e.ongoing;
        if failure_s > sim_s && part_still_fitted {
            let left = failure_s - sim_s;
            seconds_to_failure[c] = Some(seconds_to_failure[c].map_or(left, |s: f64| s.min(left)));
        }
    }
    Labels { excluded, seconds_to_failure }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn truth(mode: FailureMode, onset_s: f64, failed: Option<f64>, predicted: Option<f64>) -> FailureTruth {
        FailureTruth { mode, component: mode.component(), onset_s, functional_failure_s: failed, predicted_failure_s: predicted, severity: 0.5 }
    }

    #[test]
    fn labels_follow_the_injected_ground_truth() {
        let v = VehicleId(3);
        let mut log = EpisodeLog::new();
        // A leak from 10,000 s that fails at 20,000 s and is repaired after 25,000 s.
        for t in (10_000..=25_000).step_by(1000) {
            let failed = (t >= 20_000).then_some(20_000.0);
            log.record(v, f64::from(t), &[truth(FailureMode::CoolantLeak, 10_000.0, failed, Some(20_000.0))]);
        }
        // Frames without it: repaired.
        log.record(v, 26_000.0, &[]);
        log.close(100_000.0, 60.0);
        let episodes = log.of(v);
        assert_eq!(episodes.len(), 1);
        assert_eq!((episodes[0].failed_s, episodes[0].last_seen_s, episodes[0].ongoing), (Some(20_000.0), 25_000.0, false));
        let cooling = component_index(Component::CoolingSystem).unwrap();

        // Before the onset the failure is already ahead: 12,800 s is within 6 h, not 2 h.
        let early = label(episodes, 7_200.0);
        assert_eq!(early.seconds_to_failure[cooling], Some(12_800.0));
        assert!(!early.fails_within(cooling, 2) && early.fails_within(cooling, 6) && early.fails_within(cooling, 24));
        assert!(!early.excluded);
        // One hour before the failure: within every horizon; other components healthy.
        let late = label(episodes, 16_400.0);
        assert!(HORIZONS_H.iter().all(|&h| late.fails_within(cooling, h)));
        assert!(late.seconds_to_failure.iter().enumerate().all(|(c, s)| c == cooling || s.is_none()));
        // Broken down until the repair: excluded.
        assert!(label(episodes, 22_000.0).excluded);
        // Repaired: healthy again, and nothing ahead.
        let after = label(episodes, 30_000.0);
        assert!(!after.excluded && after.seconds_to_failure[cooling].is_none());
    }

    #[test]
    fn a_failure_repaired_before_it_happened_counts_at_its_projected_time() {
        let v = VehicleId(1);
        let mut log = EpisodeLog::new();
        log.record(v, 100.0, &[truth(FailureMode::BrakePadWear, 100.0, None, Some(50_000.0))]);
        log.record(v, 5_000.0, &[truth(FailureMode::BrakePadWear, 100.0, None, Some(40_000.0))]);
        log.close(90_000.0, 60.0);
        let brakes = component_index(Component::Brakes).unwrap();
        assert_eq!(label(log.of(v), 4_000.0).seconds_to_failure[brakes], Some(36_000.0));
        // After the repair the worn pads are gone.
        assert_eq!(label(log.of(v), 6_000.0).seconds_to_failure[brakes], None);
    }

    #[test]
    fn a_failure_still_present_at_the_end_is_ongoing() {
        let v = VehicleId(1);
        let mut log = EpisodeLog::new();
        log.record(v, 1_000.0, &[truth(FailureMode::SlowPuncture, 500.0, Some(900.0), Some(900.0))]);
        log.close(1_000.0, 60.0);
        assert!(log.of(v)[0].ongoing);
        assert!(label(log.of(v), 5_000.0).excluded);
    }
}
