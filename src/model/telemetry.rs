//! The telemetry frame: one sample of every metric of one vehicle, serialised as a JSON object
//! keyed by metric name, and the ground truth recorded beside it for prediction work.

use std::fmt;

use serde::de::{self, MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::metrics::{METRIC_COUNT, METRICS, Metric};
use super::{Component, FailureMode, ValidationError};

/// One sample of all metrics. Values are in the units of [`METRICS`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TelemetryFrame {
    /// Values indexed by [`Metric`] discriminant.
    pub values: [f32; METRIC_COUNT],
}

impl Default for TelemetryFrame {
    fn default() -> Self {
        Self { values: [0.0; METRIC_COUNT] }
    }
}

impl TelemetryFrame {
    /// The value of one metric.
    pub fn get(&self, metric: Metric) -> f32 {
        self.values[metric as usize]
    }

    /// Sets one metric.
    pub fn set(&mut self, metric: Metric, value: f32) {
        self.values[metric as usize] = value;
    }

    /// Rejects non-finite and out-of-range values, naming the metric.
    pub fn validate(&self) -> Result<(), ValidationError> {
        for (spec, &value) in METRICS.iter().zip(&self.values) {
            if !value.is_finite() {
                return Err(ValidationError::new(spec.name, format!("{value} is not a finite number")));
            }
            if value < spec.min || value > spec.max {
                return Err(ValidationError::new(
                    spec.name,
                    format!("{value} {} is outside [{}, {}]", spec.unit, spec.min, spec.max),
                ));
            }
        }
        Ok(())
    }
}

impl Serialize for TelemetryFrame {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(METRIC_COUNT))?;
        for (spec, value) in METRICS.iter().zip(&self.values) {
            map.serialize_entry(spec.name, value)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for TelemetryFrame {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct FrameVisitor;
        impl<'de> Visitor<'de> for FrameVisitor {
            type Value = TelemetryFrame;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object with one number per telemetry metric")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut frame = TelemetryFrame::default();
                let mut seen = [false; METRIC_COUNT];
                // Frames are written in table order, so the next metric is usually the one
                // after the last.
                let mut expected = 0;
                while let Some(MetricKey(metric)) = map.next_key_seed(MetricKeySeed { expected })? {
                    if std::mem::replace(&mut seen[metric as usize], true) {
                        return Err(de::Error::custom(format!("duplicate metric `{}`", metric.name())));
                    }
                    let value: f32 = map
                        .next_value()
                        .map_err(|e| de::Error::custom(format!("metric `{}`: {e}", metric.name())))?;
                    frame.set(metric, value);
                    expected = metric as usize + 1;
                }
                if let Some(missing) = seen.iter().position(|s| !s) {
                    return Err(de::Error::custom(format!("missing metric `{}`", METRICS[missing].name)));
                }
                Ok(frame)
            }
        }
        deserializer.deserialize_map(FrameVisitor)
    }
}

/// A metric name read as a key, without allocating.
struct MetricKey(Metric);

/// Reads a [`MetricKey`], trying the metric at `expected` in the table first.
struct MetricKeySeed {
    expected: usize,
}

impl<'de> de::DeserializeSeed<'de> for MetricKeySeed {
    type Value = MetricKey;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<MetricKey, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for MetricKeySeed {
    type Value = MetricKey;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a metric name")
    }

    fn visit_str<E: de::Error>(self, name: &str) -> Result<MetricKey, E> {
        match METRICS.get(self.expected) {
            Some(spec) if spec.name == name => Ok(MetricKey(Metric::ALL[self.expected])),
            _ => Metric::from_name(name).map(MetricKey).ok_or_else(|| E::custom(format!("unknown metric `{name}`"))),
        }
    }
}

/// Ground truth of one active failure, recorded next to the telemetry it shaped so that
/// prediction models can be trained and scored against it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FailureTruth {
    /// The injected failure mode.
    pub mode: FailureMode,
    /// The component it damages.
    pub component: Component,
    /// Simulation time the degradation started, in seconds.
    pub onset_s: f64,
    /// Simulation time the component functionally failed, in seconds, once it has.
    pub functional_failure_s: Option<f64>,
    /// Simulation time the component is expected to fail at the current rate, in seconds.
    pub predicted_failure_s: Option<f64>,
    /// Damage so far, from 0 (healthy) to 1 (failed).
    pub severity: f32,
}

/// The payload of a telemetry message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Telemetry {
    /// The sensor readings, with noise and sensor faults applied.
    pub metrics: TelemetryFrame,
    /// Failures active on this vehicle (ground truth, not visible to a real vehicle).
    #[serde(default)]
    pub truth: Vec<FailureTruth>,
}
