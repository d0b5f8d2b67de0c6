//! The telemetry metric catalogue: every metric's name, unit, group and plausible (sensor)
//! range, in one table that drives serialisation, validation and the documentation.

use serde::{Deserialize, Serialize};

/// Subsystem a metric belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MetricGroup {
    /// Engine, transmission and driver inputs.
    Powertrain,
    /// Engine and drivetrain temperatures.
    Thermal,
    /// Oil, coolant and fuel.
    Fluids,
    /// Battery and charging system.
    Electrical,
    /// Friction brakes.
    Brakes,
    /// The four tyres.
    Tyres,
    /// Accelerometers on the chassis, engine and wheel hubs.
    Vibration,
    /// Position and inertial measurement.
    Position,
    /// What the vehicle senses of its surroundings.
    Environment,
}

/// Static description of one metric.
#[derive(Debug, Clone, Copy)]
pub struct MetricSpec {
    /// Wire name, e.g. `coolant_temp_c`.
    pub name: &'static str,
    /// Unit symbol.
    pub unit: &'static str,
    /// Subsystem.
    pub group: MetricGroup,
    /// Lowest value the sensor can report.
    pub min: f32,
    /// Highest value the sensor can report.
    pub max: f32,
    /// The smallest step the sensor reports: every reading is a whole number of these (see
    /// [`MetricSpec::quantise`]), never coarser than the sensor's noise.
    pub resolution: f64,
    /// One-line description.
    pub description: &'static str,
}

macro_rules! metrics {
    ($( $variant:ident => $name:literal, $unit:literal, $group:ident, $min:literal, $max:literal, $resolution:literal, $doc:literal; )*) => {
        /// One named telemetry metric. The discriminant indexes [`TelemetryFrame::values`](super::TelemetryFrame).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[repr(u8)]
        pub enum Metric {
            $( #[doc = $doc] $variant, )*
        }

        /// Every metric, in wire order.
        pub const METRICS: &[MetricSpec] = &[
            $( MetricSpec { name: $name, unit: $unit, group: MetricGroup::$group, min: $min, max: $max, resolution: $resolution, description: $doc }, )*
        ];

        impl Metric {
            /// Every metric, in wire order.
            pub const ALL: &[Metric] = &[ $( Metric::$variant, )* ];
        }
    };
}

metrics! {
    SpeedKph => "speed_kph", "km/h", Powertrain, 0.0, 250.0, 0.5, "Vehicle speed over ground";
    EngineRpm => "engine_rpm", "rpm", Powertrain, 0.0, 8000.0, 10.0, "Engine crankshaft speed";
    EngineLoadPct => "engine_load_pct", "%", Powertrain, 0.0, 100.0, 0.2, "Engine torque as a share of the torque available at this rpm";
    ThrottlePct => "throttle_pct", "%", Powertrain, 0.0, 100.0, 0.05, "Accelerator pedal position";
    BrakePedalPct => "brake_pedal_pct", "%", Powertrain, 0.0, 100.0, 0.05, "Brake pedal position";
    Gear => "gear", "-", Powertrain, 0.0, 8.0, 1.0, "Engaged gear (0 = neutral)";
    EnginePowerKw => "engine_power_kw", "kW", Powertrain, -50.0, 600.0, 1.0, "Engine output power";
    CoolantTempC => "coolant_temp_c", "°C", Thermal, -40.0, 150.0, 0.2, "Engine coolant temperature";
    OilTempC => "oil_temp_c", "°C", Thermal, -40.0, 180.0, 0.2, "Engine oil temperature";
    IntakeAirTempC => "intake_air_temp_c", "°C", Thermal, -40.0, 120.0, 0.2, "Intake manifold air temperature";
    TransmissionTempC => "transmission_temp_c", "°C", Thermal, -40.0, 160.0, 0.2, "Transmission fluid temperature";
    OilPressureKpa => "oil_pressure_kpa", "kPa", Fluids, 0.0, 800.0, 1.0, "Engine oil gallery pressure";
    CoolantLevelPct => "coolant_level_pct", "%", Fluids, 0.0, 100.0, 0.2, "Coolant expansion tank level";
    FuelLevelPct => "fuel_level_pct", "%", Fluids, 0.0, 100.0, 0.05, "Fuel tank level";
    FuelRateLph => "fuel_rate_lph", "L/h", Fluids, 0.0, 150.0, 0.2, "Instantaneous fuel consumption";
    BatteryVoltageV => "battery_voltage_v", "V", Electrical, 0.0, 32.0, 0.05, "Battery terminal voltage (24 V system)";
    BatteryCurrentA => "battery_current_a", "A", Electrical, -600.0, 300.0, 1.0, "Battery current, positive when charging";
    BatterySocPct => "battery_soc_pct", "%", Electrical, 0.0, 100.0, 0.2, "Battery state of charge";
    BatteryTempC => "battery_temp_c", "°C", Electrical, -40.0, 90.0, 0.2, "Battery pack temperature";
    BatteryResistanceMohm => "battery_resistance_mohm", "mΩ", Electrical, 0.0, 200.0, 0.2, "Estimated battery internal resistance";
    BrakePadFrontMm => "brake_pad_front_mm", "mm", Brakes, 0.0, 25.0, 0.01, "Front brake pad thickness";
    BrakePadRearMm => "brake_pad_rear_mm", "mm", Brakes, 0.0, 25.0, 0.01, "Rear brake pad thickness";
    BrakeTempFrontC => "brake_temp_front_c", "°C", Brakes, -40.0, 900.0, 1.0, "Front brake disc temperature";
    BrakeTempRearC => "brake_temp_rear_c", "°C", Brakes, -40.0, 900.0, 1.0, "Rear brake disc temperature";
    TyrePressureFlKpa => "tyre_pressure_fl_kpa", "kPa", Tyres, 0.0, 1200.0, 2.0, "Front-left tyre pressure";
    TyrePressureFrKpa => "tyre_pressure_fr_kpa", "kPa", Tyres, 0.0, 1200.0, 2.0, "Front-right tyre pressure";
    TyrePressureRlKpa => "tyre_pressure_rl_kpa", "kPa", Tyres, 0.0, 1200.0, 2.0, "Rear-left tyre pressure";
    TyrePressureRrKpa => "tyre_pressure_rr_kpa", "kPa", Tyres, 0.0, 1200.0, 2.0, "Rear-right tyre pressure";
    TyreTempFlC => "tyre_temp_fl_c", "°C", Tyres, -40.0, 200.0, 0.2, "Front-left tyre temperature";
    TyreTempFrC => "tyre_temp_fr_c", "°C", Tyres, -40.0, 200.0, 0.2, "Front-right tyre temperature";
    TyreTempRlC => "tyre_temp_rl_c", "°C", Tyres, -40.0, 200.0, 0.2, "Rear-left tyre temperature";
    TyreTempRrC => "tyre_temp_rr_c", "°C", Tyres, -40.0, 200.0, 0.2, "Rear-right tyre temperature";
    VibrationChassisG => "vibration_chassis_g", "g", Vibration, 0.0, 20.0, 0.02, "Chassis vibration, RMS";
    VibrationEngineG => "vibration_engine_g", "g", Vibration, 0.0, 20.0, 0.02, "Engine block vibration, RMS";
    VibrationWheelFlG => "vibration_wheel_fl_g", "g", Vibration, 0.0, 20.0, 0.02, "Front-left hub vibration, RMS";
    VibrationWheelFrG => "vibration_wheel_fr_g", "g", Vibration, 0.0, 20.0, 0.02, "Front-right hub vibration, RMS";
    VibrationWheelRlG => "vibration_wheel_rl_g", "g", Vibration, 0.0, 20.0, 0.02, "Rear-left hub vibration, RMS";
    VibrationWheelRrG => "vibration_wheel_rr_g", "g", Vibration, 0.0, 20.0, 0.02, "Rear-right hub vibration, RMS";
    PositionXM => "position_x_m", "m", Position, -100000.0, 100000.0, 0.1, "East position in the world frame";
    PositionZM => "position_z_m", "m", Position, -100000.0, 100000.0, 0.1, "South position in the world frame";
    AltitudeM => "altitude_m", "m", Position, -500.0, 5000.0, 10.0, "Altitude above sea level";
    HeadingDeg => "heading_deg", "°", Position, 0.0, 360.0, 0.5, "Heading, clockwise from north";
    AccelLongG => "accel_long_g", "g", Position, -3.0, 3.0, 0.01, "Longitudinal acceleration";
    AccelLatG => "accel_lat_g", "g", Position, -3.0, 3.0, 0.01, "Lateral acceleration";
    YawRateDps => "yaw_rate_dps", "°/s", Position, -180.0, 180.0, 0.5, "Yaw rate";
    GradePct => "grade_pct", "%", Position, -40.0, 40.0, 0.1, "Road grade along the heading, positive uphill";
    OdometerKm => "odometer_km", "km", Position, 0.0, 5000000.0, 0.005, "Distance travelled";
    AmbientTempC => "ambient_temp_c", "°C", Environment, -50.0, 60.0, 0.2, "Outside air temperature";
    PrecipitationMmH => "precipitation_mm_h", "mm/h", Environment, 0.0, 100.0, 0.2, "Rain rate at the vehicle";
    RoadFriction => "road_friction", "μ", Environment, 0.0, 1.2, 0.002, "Estimated tyre-road friction coefficient";
    WindSpeedMps => "wind_speed_mps", "m/s", Environment, 0.0, 60.0, 0.1, "Wind speed";
}

impl MetricSpec {
    /// The whole number of [`resolution`](Self::resolution) steps nearest `value`: what the
    /// store keeps. `None` for a value that is not a finite number of steps (NaN, infinite, or
    /// beyond 64 bits).
    pub fn steps(&self, value: f32) -> Option<i64> {
        let steps = (f64::from(value) / self.resolution).round();
        (steps.is_finite() && steps.abs() < 9.0e18).then_some(steps as i64)
    }

    /// The reading `steps` whole steps stand for.
    pub fn from_steps(&self, steps: i64) -> f32 {
        (steps as f64 * self.resolution) as f32
    }

    /// `value` as the sensor reports it: the nearest whole number of steps. Stored and read
    /// back, a quantised reading is the same `f32`.
    pub fn quantise(&self, value: f32) -> f32 {
        self.steps(value).map_or(value, |steps| self.from_steps(steps))
    }

    /// Whether every reading in range fits a 16-bit integer of steps (else 32 bits do).
    pub fn fits_i16(&self) -> bool {
        self.steps(self.min).is_some_and(|s| s >= i64::from(i16::MIN)) && self.steps(self.max).is_some_and(|s| s <= i64::from(i16::MAX))
    }
}

/// Number of metrics in a telemetry frame.
pub const METRIC_COUNT: usize = METRICS.len();

impl Metric {
    /// Static description of this metric.
    pub fn spec(self) -> &'static MetricSpec {
        &METRICS[self as usize]
    }

    /// Wire name of this metric.
    pub fn name(self) -> &'static str {
        self.spec().name
    }

    /// Whether the vehicle estimates this quantity from a model of what it measures (a battery
    /// management system's state of charge, an engine controller's load) rather than measuring
    /// it. An estimate's error drifts rather than jumping every reading, so an estimate may
    /// legitimately repeat exactly for many seconds. See docs/TELEMETRY.md.
    pub fn is_estimate(self) -> bool {
        use Metric::*;
        matches!(
            self,
            BatterySocPct
                | BatteryResistanceMohm
                | FuelLevelPct
                | CoolantLevelPct
                | BrakePadFrontMm
                | BrakePadRearMm
                | EngineLoadPct
                | EnginePowerKw
                | FuelRateLph
                | GradePct
                | RoadFriction
                | AltitudeM
        )
    }

    /// Looks a metric up by its wire name.
    pub fn from_name(name: &str) -> Option<Metric> {
        METRICS.iter().position(|spec| spec.name == name).map(|i| Metric::ALL[i])
    }
}

/// The metric table as Markdown, as it appears in `docs/TELEMETRY.md`.
pub fn markdown_table() -> String {
    let mut out = String::from("| metric | unit | group | min | max | resolution | stored as | description |\n|---|---|---|---|---|---|---|---|\n");
    for spec in METRICS {
        out.push_str(&format!(
            "| `{}` | {} | {:?} | {} | {} | {} | {} | {} |\n",
            spec.name,
            spec.unit,
            spec.group,
            spec.min,
            spec.max,
            spec.resolution,
            if spec.fits_i16() { "SMALLINT" } else { "INTEGER" },
            spec.description
        ));
    }
    out
}
