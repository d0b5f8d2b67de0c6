//! The vehicles' local rules by name: what a `rule_triggered` event says fired. The
//! simulator's rule table and the centre's alert mapping both match on this enum, so a rule
//! added on one side without the other fails to compile instead of being silently ignored.

use serde::{Deserialize, Serialize};

/// How many local rules there are: one per [`RuleId`] variant.
pub const RULE_COUNT: usize = 18;

/// A local rule, as named on the wire (snake case).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RuleId {
    /// Coolant above 108 °C.
    CoolantTempHigh,
    /// Coolant above 115 °C.
    CoolantTempVeryHigh,
    /// Coolant above 122 °C.
    CoolantTempCritical,
    /// Coolant rising faster than 0.5 °C/s.
    CoolantTempRisingFast,
    /// Coolant level below 60 %.
    CoolantLevelLow,
    /// Oil pressure below 120 kPa with the engine running.
    OilPressureLow,
    /// Oil pressure below 60 kPa with the engine running.
    OilPressureLost,
    /// Oil above 135 °C.
    OilTempHigh,
    /// Front brakes above 450 °C.
    BrakeTempHigh,
    /// Thinnest pad below 3 mm.
    BrakePadLow,
    /// Thinnest pad below 1.5 mm.
    BrakePadWornOut,
    /// Lowest tyre below 80 % of nominal.
    TyrePressureLow,
    /// Lowest tyre below 60 % of nominal.
    TyrePressureVeryLow,
    /// A tyre losing more than 5 % of nominal a second.
    TyreDeflation,
    /// Battery below 18 V.
    BatteryVoltageLow,
    /// Wheel-hub vibration above 1.2 g.
    WheelVibrationHigh,
    /// Wheel-hub vibration above 2.5 g.
    WheelVibrationSevere,
    /// Floored accelerator at standstill while meaning to drive.
    NoHeadway,
}

impl RuleId {
    /// The name on the wire, as in docs/RULES.md.
    pub fn as_str(self) -> &'static str {
        match self {
            RuleId::CoolantTempHigh => "coolant_temp_high",
            RuleId::CoolantTempVeryHigh => "coolant_temp_very_high",
            RuleId::CoolantTempCritical => "coolant_temp_critical",
            RuleId::CoolantTempRisingFast => "coolant_temp_rising_fast",
            RuleId::CoolantLevelLow => "coolant_level_low",
            RuleId::OilPressureLow => "oil_pressure_low",
            RuleId::OilPressureLost => "oil_pressure_lost",
            RuleId::OilTempHigh => "oil_temp_high",
            RuleId::BrakeTempHigh => "brake_temp_high",
            RuleId::BrakePadLow => "brake_pad_low",
            RuleId::BrakePadWornOut => "brake_pad_worn_out",
            RuleId::TyrePressureLow => "tyre_pressure_low",
            RuleId::TyrePressureVeryLow => "tyre_pressure_very_low",
            RuleId::TyreDeflation => "tyre_deflation",
            RuleId::BatteryVoltageLow => "battery_voltage_low",
            RuleId::WheelVibrationHigh => "wheel_vibration_high",
            RuleId::WheelVibrationSevere => "wheel_vibration_severe",
            RuleId::NoHeadway => "no_headway",
        }
    }
}

impl std::fmt::Display for RuleId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_names_are_the_documented_ones() {
        for rule in [RuleId::CoolantTempHigh, RuleId::BrakePadWornOut, RuleId::NoHeadway] {
            assert_eq!(serde_json::to_string(&rule).unwrap(), format!("\"{}\"", rule.as_str()));
        }
        assert!(serde_json::from_str::<RuleId>("\"engine_on_fire\"").is_err(), "an unknown rule is refused");
    }
}
