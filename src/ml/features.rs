//! The model's inputs, kept incrementally per vehicle: every telemetry frame goes into a
//! one-minute bucket of running moments for each [`Channel`], an hour of buckets per vehicle;
//! at each minute's end a row of window aggregates (the last 5 minutes and the last hour: mean,
//! standard deviation, minimum, maximum and slope) is read from them, with each channel's hour
//! compared against the other vehicles of the same model. The dataset builder and the
//! orchestrator's inference run this same code, so a model sees in service what it saw in
//! training.

use std::collections::BTreeMap;

use crate::model::{Metric, TelemetryFrame, VehicleId, VehicleModel};

/// Seconds in a bucket, and the stride between rows.
pub const BUCKET_S: f64 = 60.0;
/// Buckets in the short window (5 minutes).
pub const SHORT_BUCKETS: usize = 5;
/// Buckets in the long window (1 hour), and so the buckets a vehicle keeps.
pub const LONG_BUCKETS: usize = 60;

/// The minute (bucket number) a sample at simulated second `sim_s` falls in.
pub fn minute_of(sim_s: f64) -> i64 {
    (sim_s / BUCKET_S).floor() as i64
}

macro_rules! channels {
    ($($variant:ident => $name:literal, $doc:literal;)*) => {
        /// A per-second quantity the features summarise: one metric, or what the four wheels or
        /// two axles say together (so that a fault on any one wheel looks the same).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum Channel {
            $(#[doc = $doc] $variant,)*
        }

        impl Channel {
            /// Every channel, in feature order.
            pub const ALL: &'static [Channel] = &[$(Channel::$variant,)*];

            /// The channel's name in feature names.
            pub fn name(self) -> &'static str {
                match self {
                    $(Channel::$variant => $name,)*
                }
            }
        }
    };
}

channels! {
    CoolantTemp => "coolant_temp_c", "Coolant temperature, °C.";
    CoolantLevel => "coolant_level_pct", "Coolant level, %.";
    OilTemp => "oil_temp_c", "Oil temperature, °C.";
    OilPressure => "oil_pressure_kpa", "Oil pressure, kPa.";
    EngineLoad => "engine_load_pct", "Engine load, %.";
    EngineRpm => "engine_rpm", "Engine speed, rpm.";
    Speed => "speed_kph", "Speed, km/h.";
    BatteryVoltage => "battery_voltage_v", "Battery voltage, V.";
    BatteryResistance => "battery_resistance_mohm", "Battery internal resistance, mΩ.";
    BatterySoc => "battery_soc_pct", "Battery state of charge, %.";
    BrakePadMin => "brake_pad_min_mm", "The thinner axle's brake pads, mm.";
    BrakeTempMax => "brake_temp_max_c", "The hotter axle's brake discs, °C.";
    TyrePressureMinShare => "tyre_pressure_min_share", "The softest tyre's pressure as a share of the four's mean.";
    TyreTempSpread => "tyre_temp_spread_c", "The hottest tyre above the four's mean, °C.";
    WheelVibrationSpread => "wheel_vibration_spread_g", "The roughest hub above the four's mean, g.";
    ChassisVibration => "vibration_chassis_g", "Chassis vibration, g.";
    Grade => "grade_pct", "Road grade, %: the hills, context.";
    Ambient => "ambient_temp_c", "Outside air temperature, °C: the day, context.";
}

/// The number of channels.
pub const CHANNELS: usize = Channel::ALL.len();

const TYRE_PRESSURES: [Metric; 4] = [Metric::TyrePressureFlKpa, Metric::TyrePressureFrKpa, Metric::TyrePressureRlKpa, Metric::TyrePressureRrKpa];
const TYRE_TEMPS: [Metric; 4] = [Metric::TyreTempFlC, Metric::TyreTempFrC, Metric::TyreTempRlC, Metric::TyreTempRrC];
const HUB_VIBRATIONS: [Metric; 4] = [Metric::VibrationWheelFlG, Metric::VibrationWheelFrG, Metric::VibrationWheelRlG, Metric::VibrationWheelRrG];

impl Channel {
    /// The metrics the channel is made of (a shipped model's features are checked against the
    /// metric catalogue through these).
    pub fn metrics(self) -> &'static [Metric] {
        match self {
            Channel::CoolantTemp => &[Metric::CoolantTempC],
            Channel::CoolantLevel => &[Metric::CoolantLevelPct],
            Channel::OilTemp => &[Metric::OilTempC],
            Channel::OilPressure => &[Metric::OilPressureKpa],
            Channel::EngineLoad => &[Metric::EngineLoadPct],
            Channel::EngineRpm => &[Metric::EngineRpm],
            Channel::Speed => &[Metric::SpeedKph],
            Channel::BatteryVoltage => &[Metric::BatteryVoltageV],
            Channel::BatteryResistance => &[Metric::BatteryResistanceMohm],
            Channel::BatterySoc => &[Metric::BatterySocPct],
            Channel::BrakePadMin => &[Metric::BrakePadFrontMm, Metric::BrakePadRearMm],
            Channel::BrakeTempMax => &[Metric::BrakeTempFrontC, Metric::BrakeTempRearC],
            Channel::TyrePressureMinShare => &TYRE_PRESSURES,
            Channel::TyreTempSpread => &TYRE_TEMPS,
            Channel::WheelVibrationSpread => &HUB_VIBRATIONS,
            Channel::ChassisVibration => &[Metric::VibrationChassisG],
            Channel::Grade => &[Metric::GradePct],
            Channel::Ambient => &[Metric::AmbientTempC],
        }
    }

    /// The channel's value in `frame`.
    pub fn read(self, frame: &TelemetryFrame) -> f32 {
        let four = |metrics: &[Metric; 4]| metrics.map(|m| frame.get(m));
        let mean = |v: [f32; 4]| v.iter().sum::<f32>() / 4.0;
        let max = |v: [f32; 4]| v.iter().copied().fold(f32::MIN, f32::max);
        match self {
            Channel::BrakePadMin => frame.get(Metric::BrakePadFrontMm).min(frame.get(Metric::BrakePadRearMm)),
            Channel::BrakeTempMax => frame.get(Metric::BrakeTempFrontC).max(frame.get(Metric::BrakeTempRearC)),
            Channel::TyrePressureMinShare => {
                let p = four(&TYRE_PRESSURES);
                let m = mean(p);
                if m > 1.0 { p.iter().copied().fold(f32::MAX, f32::min) / m } else { 0.0 }
            }
            Channel::TyreTempSpread => {
                let t = four(&TYRE_TEMPS);
                max(t) - mean(t)
            }
            Channel::WheelVibrationSpread => {
                let v = four(&HUB_VIBRATIONS);
                max(v) - mean(v)
            }
            single => frame.get(single.metrics()[0]),
        }
    }
}

/// A window's summary of one channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stat {
    /// Mean.
    Mean,
    /// Population standard deviation.
    Std,
    /// Minimum.
    Min,
    /// Maximum.
    Max,
    /// Least-squares slope of the minute means, per hour.
    Slope,
}

impl Stat {
    /// Every statistic, in feature order.
    pub const ALL: [Stat; 5] = [Stat::Mean, Stat::Std, Stat::Min, Stat::Max, Stat::Slope];

    fn name(self) -> &'static str {
        match self {
            Stat::Mean => "mean",
            Stat::Std => "std",
            Stat::Min => "min",
            Stat::Max => "max",
            Stat::Slope => "slope_per_h",
        }
    }
}

/// The two windows: (name, buckets).
pub const WINDOWS: [(&str, usize); 2] = [("5m", SHORT_BUCKETS), ("1h", LONG_BUCKETS)];

/// Vehicle models, in the order of their one-hot features.
const MODELS: [VehicleModel; 3] = VehicleModel::ALL;

/// The number of features in a row.
pub const FEATURES: usize = CHANNELS * WINDOWS.len() * Stat::ALL.len() + CHANNELS + MODELS.len();

/// The features' names, in row order: `{channel}_{window}_{stat}` for each channel, window and
/// statistic; then `{channel}_1h_mean_vs_fleet` (the hour's mean less the median of the
/// vehicles of the same model); then `model_{van,truck,bus}` (one-hot).
pub fn feature_names() -> Vec<String> {
    let mut names = Vec::with_capacity(FEATURES);
    for channel in Channel::ALL {
        for (window, _) in WINDOWS {
            for stat in Stat::ALL {
                names.push(format!("{}_{window}_{}", channel.name(), stat.name()));
            }
        }
    }
    names.extend(Channel::ALL.iter().map(|c| format!("{}_1h_mean_vs_fleet", c.name())));
    names.extend(MODELS.iter().map(|m| format!("model_{}", m.as_str())));
    names
}

/// How `features` (a dataset's or a model's list) differs from this build's, if it does: the
/// first feature that differs, by name, and the two lengths.
pub fn feature_list_difference(features: &[String]) -> Option<String> {
    let names = feature_names();
    if features == names.as_slice() {
        return None;
    }
    let at = features.iter().zip(&names).position(|(a, b)| a != b).unwrap_or(features.len().min(names.len()));
    let theirs = features.get(at).map_or("nothing", String::as_str);
    let ours = names.get(at).map_or("nothing", String::as_str);
    Some(format!("its features differ from this build's: feature {at} is `{theirs}` there, `{ours}` here ({} features there, {} here)", features.len(), names.len()))
}

/// Running moments of one channel over one bucket (Welford's, so that a small variance about a
/// large mean survives single precision).
#[derive(Debug, Clone, Copy, Default)]
struct Moments {
    mean: f32,
    m2: f32,
    min: f32,
    max: f32,
}

/// One minute of one vehicle.
#[derive(Debug, Clone)]
struct Bucket {
    minute: i64,
    samples: u16,
    channels: [Moments; CHANNELS],
}

impl Bucket {
    const EMPTY: Bucket = Bucket { minute: i64::MIN, samples: 0, channels: [Moments { mean: 0.0, m2: 0.0, min: 0.0, max: 0.0 }; CHANNELS] };

    fn add(&mut self, values: &[f32; CHANNELS]) {
        self.samples += 1;
        let n = f32::from(self.samples);
        for (m, &x) in self.channels.iter_mut().zip(values) {
            if self.samples == 1 {
                *m = Moments { mean: x, m2: 0.0, min: x, max: x };
                continue;
            }
            let delta = x - m.mean;
            m.mean += delta / n;
            m.m2 += delta * (x - m.mean);
            m.min = m.min.min(x);
            m.max = m.max.max(x);
        }
    }
}

/// One vehicle's last hour, a bucket a minute (bounded: [`LONG_BUCKETS`] buckets, whatever the
/// run's length).
#[derive(Debug, Clone)]
pub struct VehicleWindow {
    model: VehicleModel,
    buckets: Box<[Bucket; LONG_BUCKETS]>,
}

impl VehicleWindow {
    /// An empty window for a vehicle of `model`.
    pub fn new(model: VehicleModel) -> Self {
        Self { model, buckets: Box::new(std::array::from_fn(|_| Bucket::EMPTY)) }
    }

    /// Adds a frame sampled at simulated second `sim_s`. A frame for a minute already left
    /// behind by an hour (a very late store-and-forward) is dropped.
    pub fn add(&mut self, sim_s: f64, frame: &TelemetryFrame) {
        let minute = minute_of(sim_s);
        let bucket = &mut self.buckets[minute.rem_euclid(LONG_BUCKETS as i64) as usize];
        if bucket.minute > minute {
            return;
        }
        if bucket.minute < minute {
            *bucket = Bucket { minute, ..Bucket::EMPTY };
        }
        let values: [f32; CHANNELS] = std::array::from_fn(|i| Channel::ALL[i].read(frame));
        bucket.add(&values);
    }

    /// Whether minute `minute` holds samples.
    pub fn has(&self, minute: i64) -> bool {
        let bucket = &self.buckets[minute.rem_euclid(LONG_BUCKETS as i64) as usize];
        bucket.minute == minute && bucket.samples > 0
    }

    /// The window features at the end of `minute` (everything but the fleet comparison, which
    /// needs the other vehicles): [`CHANNELS`] × windows × statistics, in name order.
    fn window_features(&self, minute: i64, out: &mut Vec<f32>) {
        let mut per_window: Vec<[WindowStats; CHANNELS]> = Vec::with_capacity(WINDOWS.len());
        for (_, span) in WINDOWS {
            let buckets: Vec<&Bucket> = (minute + 1 - span as i64..=minute)
                .map(|m| &self.buckets[m.rem_euclid(LONG_BUCKETS as i64) as usize])
                .filter(|b| b.minute > minute - span as i64 && b.minute <= minute && b.samples > 0)
                .collect();
            per_window.push(std::array::from_fn(|c| WindowStats::of(&buckets, c)));
        }
        for c in 0..CHANNELS {
            for stats in &per_window {
                let s = stats[c];
                out.extend([s.mean, s.std, s.min, s.max, s.slope_per_h].map(|v| v as f32));
            }
        }
    }

}

/// The hour's mean of each channel in a row's window features.
fn hour_means(row: &[f32]) -> [f32; CHANNELS] {
    // The 1 h mean sits after the 5 m window's statistics of its channel.
    let per_channel = WINDOWS.len() * Stat::ALL.len();
    std::array::from_fn(|c| row[c * per_channel + Stat::ALL.len()])
}

/// A window's statistics of one channel, in double precision.
#[derive(Debug, Clone, Copy, Default)]
struct WindowStats {
    mean: f64,
    std: f64,
    min: f64,
    max: f64,
    slope_per_h: f64,
}

impl WindowStats {
    /// Combines the buckets' moments of channel `c` (Chan's parallel formula), and fits a line
    /// through their means weighted by their samples.
    fn of(buckets: &[&Bucket], c: usize) -> Self {
        let (mut n, mut mean, mut m2) = (0.0f64, 0.0f64, 0.0f64);
        let (mut min, mut max) = (f64::MAX, f64::MIN);
        for b in buckets {
            let m = b.channels[c];
            let (nb, mb) = (f64::from(b.samples), f64::from(m.mean));
            let total = n + nb;
            let delta = mb - mean;
            mean += delta * nb / total;
            m2 += f64::from(m.m2) + delta * delta * n * nb / total;
            n = total;
            min = min.min(f64::from(m.min));
            max = max.max(f64::from(m.max));
        }
        if n == 0.0 {
            return Self::default();
        }
        // Slope of the minute means against time in hours, weighted by samples.
        let hours = |b: &Bucket| b.minute as f64 / 60.0;
        let t_mean = buckets.iter().map(|b| f64::from(b.samples) * hours(b)).sum::<f64>() / n;
        let (mut sxy, mut sxx) = (0.0, 0.0);
        for b in buckets {
            let w = f64::from(b.samples);
            let dt = hours(b) - t_mean;
            sxy += w * dt * (f64::from(b.channels[c].mean) - mean);
            sxx += w * dt * dt;
        }
        let slope_per_h = if sxx > 0.0 { sxy / sxx } else { 0.0 };
        Self { mean, std: (m2 / n).max(0.0).sqrt(), min, max, slope_per_h }
    }
}

/// One row: a vehicle's features at the end of a minute.
#[derive(Debug, Clone, PartialEq)]
pub struct FeatureRow {
    /// The vehicle.
    pub vehicle: VehicleId,
    /// Its model.
    pub model: VehicleModel,
    /// The minute the row closes ([`minute_of`]); the row describes time up to its end.
    pub minute: i64,
    /// [`FEATURES`] values, in [`feature_names`] order.
    pub values: Vec<f32>,
}

impl FeatureRow {
    /// Simulated seconds at the end of the row's minute.
    pub fn sim_s(&self) -> f64 {
        (self.minute + 1) as f64 * BUCKET_S
    }
}

/// Every vehicle's window, and the rows read from them at a minute's end.
#[derive(Debug, Clone, Default)]
pub struct FleetFeatures {
    vehicles: BTreeMap<VehicleId, VehicleWindow>,
    /// Each vehicle's model, for a fleet known up front ([`FleetFeatures::for_fleet`]).
    fleet: BTreeMap<VehicleId, VehicleModel>,
    /// The minute frames are arriving in ([`FleetFeatures::observe`]).
    open: Option<i64>,
}

impl FleetFeatures {
    /// No vehicle yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// For a fleet of `models`, fed frame by frame through [`FleetFeatures::observe`].
    pub fn for_fleet(models: BTreeMap<VehicleId, VehicleModel>) -> Self {
        Self { fleet: models, ..Self::default() }
    }

    /// Whether `vehicle` is one of the fleet's.
    pub fn in_fleet(&self, vehicle: VehicleId) -> bool {
        self.fleet.contains_key(&vehicle)
    }

    /// Takes one frame of a fleet vehicle as it arrives: frames come in time order across the
    /// fleet (a late one, held back by an outage, joins its minute if still within the hour),
    /// so the first frame of a new minute closes the last one, whose rows it returns (none
    /// otherwise). Frames of vehicles outside the fleet are ignored.
    pub fn observe(&mut self, vehicle: VehicleId, sim_s: f64, frame: &TelemetryFrame) -> Vec<FeatureRow> {
        let Some(&model) = self.fleet.get(&vehicle) else { return Vec::new() };
        let minute = minute_of(sim_s);
        let closed = match self.open {
            Some(open) if minute > open => self.rows(open),
            _ => Vec::new(),
        };
        self.open = Some(self.open.map_or(minute, |m| m.max(minute)));
        self.add(vehicle, model, sim_s, frame);
        closed
    }

    /// The rows of the minute still open: the end of the history.
    pub fn close(&mut self) -> Vec<FeatureRow> {
        self.open.take().map_or_else(Vec::new, |open| self.rows(open))
    }

    /// Adds one frame of `vehicle` (of `model`) sampled at `sim_s`.
    pub fn add(&mut self, vehicle: VehicleId, model: VehicleModel, sim_s: f64, frame: &TelemetryFrame) {
        self.vehicles.entry(vehicle).or_insert_with(|| VehicleWindow::new(model)).add(sim_s, frame);
    }

    /// Bytes the windows take per vehicle (the feature state's memory).
    pub fn bytes_per_vehicle() -> usize {
        std::mem::size_of::<VehicleWindow>() + std::mem::size_of::<[Bucket; LONG_BUCKETS]>()
    }

    /// The rows at the end of `minute`: one for each vehicle with samples in that minute, in
    /// vehicle order.
    pub fn rows(&self, minute: i64) -> Vec<FeatureRow> {
        let mut rows: Vec<FeatureRow> = self
            .vehicles
            .iter()
            .filter(|(_, w)| w.has(minute))
            .map(|(&vehicle, w)| {
                let mut values = Vec::with_capacity(FEATURES);
                w.window_features(minute, &mut values);
                FeatureRow { vehicle, model: w.model, minute, values }
            })
            .collect();
        // The fleet comparison: each hour's mean against the median of the same model's.
        let mut medians: BTreeMap<VehicleModel, [f32; CHANNELS]> = BTreeMap::new();
        for model in MODELS {
            let means: Vec<[f32; CHANNELS]> = rows.iter().filter(|r| r.model == model).map(|r| hour_means(&r.values)).collect();
            if means.is_empty() {
                continue;
            }
            medians.insert(model, std::array::from_fn(|c| median(means.iter().map(|m| m[c]).collect())));
        }
        for row in &mut rows {
            let own = hour_means(&row.values);
            let fleet = medians[&row.model];
            row.values.extend((0..CHANNELS).map(|c| own[c] - fleet[c]));
            row.values.extend(MODELS.iter().map(|&m| f32::from(u8::from(m == row.model))));
        }
        rows
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

    fn frame(coolant: f32) -> TelemetryFrame {
        let mut f = TelemetryFrame::default();
        f.set(Metric::CoolantTempC, coolant);
        for m in TYRE_PRESSURES {
            f.set(m, 800.0);
        }
        f
    }

    fn feature(row: &FeatureRow, name: &str) -> f32 {
        row.values[feature_names().iter().position(|n| n == name).unwrap_or_else(|| panic!("no feature {name}"))]
    }

    #[test]
    fn names_match_the_row_length() {
        let names = feature_names();
        assert_eq!(names.len(), FEATURES);
        let mut sorted = names.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), FEATURES, "feature names are unique");
    }

    #[test]
    fn window_aggregates_equal_hand_computed_values() {
        let mut fleet = FleetFeatures::new();
        // Ten minutes of coolant temperature rising one degree a minute, 60 samples each:
        // minute k reads 80 + k + (s - 29.5)/60 at second s, so each minute's mean is 80 + k.
        for k in 0..10 {
            for s in 0..60 {
                let t = f64::from(k * 60 + s);
                fleet.add(VehicleId(1), VehicleModel::Van, t, &frame(80.0 + k as f32 + (s as f32 - 29.5) / 60.0));
            }
        }
        let rows = fleet.rows(9);
        assert_eq!(rows.len(), 1);
        let row = &rows[0];
        assert_eq!(row.sim_s(), 600.0);
        // The last five minutes: means 85..89, so 87; range 85 - 29.5/60 to 89 + 29.5/60.
        let close = |a: f32, b: f64| assert!((f64::from(a) - b).abs() < 1e-3, "{a} vs {b}");
        close(feature(row, "coolant_temp_c_5m_mean"), 87.0);
        close(feature(row, "coolant_temp_c_5m_min"), 85.0 - 29.5 / 60.0);
        close(feature(row, "coolant_temp_c_5m_max"), 89.0 + 29.5 / 60.0);
        // A steady rise of one degree a minute: 60 per hour, in both windows.
        close(feature(row, "coolant_temp_c_5m_slope_per_h"), 60.0);
        close(feature(row, "coolant_temp_c_1h_slope_per_h"), 60.0);
        // The variance of 300 evenly spaced samples 1/60 apart: (n² - 1)/12 × (1/60)².
        close(feature(row, "coolant_temp_c_5m_std"), ((300.0f64 * 300.0 - 1.0) / 12.0).sqrt() / 60.0);
        // The hour holds only the ten minutes there are.
        close(feature(row, "coolant_temp_c_1h_mean"), 84.5);
        // Alone in its model, the vehicle is its own median.
        close(feature(row, "coolant_temp_c_1h_mean_vs_fleet"), 0.0);
        close(feature(row, "model_van"), 1.0);
        close(feature(row, "model_truck"), 0.0);
        close(feature(row, "tyre_pressure_min_share_5m_mean"), 1.0);
    }

    #[test]
    fn the_fleet_comparison_is_against_the_median_of_the_same_model() {
        let mut fleet = FleetFeatures::new();
        for (id, model, coolant) in [(1, VehicleModel::Van, 90.0), (2, VehicleModel::Van, 91.0), (3, VehicleModel::Van, 99.0), (4, VehicleModel::Truck, 70.0)] {
            for s in 0..60 {
                fleet.add(VehicleId(id), model, f64::from(s), &frame(coolant));
            }
        }
        let rows = fleet.rows(0);
        let vs: Vec<f32> = rows.iter().map(|r| feature(r, "coolant_temp_c_1h_mean_vs_fleet")).collect();
        assert_eq!(vs, vec![-1.0, 0.0, 8.0, 0.0]);
    }

    #[test]
    fn the_window_forgets_what_is_over_an_hour_old_and_keeps_its_size() {
        let mut window = VehicleWindow::new(VehicleModel::Bus);
        window.add(30.0, &frame(50.0));
        assert!(window.has(0));
        // An hour later the same slot holds the new minute.
        window.add(3630.0, &frame(60.0));
        assert!(!window.has(0) && window.has(60));
        // A frame for the forgotten minute is dropped, not mixed into the new one.
        window.add(40.0, &frame(1000.0));
        let mut fleet = FleetFeatures::new();
        fleet.vehicles.insert(VehicleId(1), window);
        let row = &fleet.rows(60)[0];
        assert_eq!(feature(row, "coolant_temp_c_1h_max"), 60.0);
        assert!(FleetFeatures::bytes_per_vehicle() < 20_000);
    }
}
