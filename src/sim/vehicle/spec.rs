//! Vehicle models' physical specifications: masses, powertrains, brakes, tyres, sizes.

use bevy::math::Vec3;

use crate::model::VehicleModel;

/// Physical specification of a vehicle model.
#[derive(Debug, Clone, Copy)]
pub struct VehicleSpec {
    /// Laden mass in kilograms: with a full payload.
    pub mass_kg: f32,
    /// Payload capacity in kilograms (cargo or passengers), part of the laden mass.
    pub payload_kg: f32,
    /// Peak engine power in watts.
    pub max_power_w: f32,
    /// Peak engine torque in newton metres.
    pub max_torque_nm: f32,
    /// Idle speed in rpm.
    pub idle_rpm: f32,
    /// Maximum engine speed in rpm.
    pub redline_rpm: f32,
    /// Gearbox ratios, first gear first.
    pub gears: &'static [f32],
    /// Final drive ratio.
    pub final_drive: f32,
    /// Rolling radius of the tyres in metres.
    pub wheel_radius_m: f32,
    /// Drag coefficient times frontal area in square metres.
    pub drag_area_m2: f32,
    /// Rolling resistance coefficient at nominal tyre pressure.
    pub rolling_coeff: f32,
    /// Deceleration the brakes give at full pedal on good pads, in m/s².
    pub max_brake_mps2: f32,
    /// Cold tyre pressure in kPa.
    pub tyre_kpa: f32,
    /// Wheelbase in metres.
    pub wheelbase_m: f32,
    /// Top speed in metres per second.
    pub top_speed_mps: f32,
    /// Heat capacity of the engine and coolant in kJ/K.
    pub engine_heat_capacity_kj_k: f32,
    /// Fuel tank in litres.
    pub tank_l: f32,
    /// Body size (length, height, width) in metres, for drawing.
    pub size_m: Vec3,
}

pub(super) const VAN: VehicleSpec = VehicleSpec {
    mass_kg: 3_000.0,
    payload_kg: 1_000.0,
    max_power_w: 120_000.0,
    max_torque_nm: 400.0,
    idle_rpm: 800.0,
    redline_rpm: 4_500.0,
    gears: &[4.5, 2.6, 1.6, 1.2, 1.0, 0.8],
    final_drive: 3.9,
    wheel_radius_m: 0.36,
    drag_area_m2: 1.6,
    rolling_coeff: 0.010,
    max_brake_mps2: 8.0,
    tyre_kpa: 450.0,
    wheelbase_m: 3.6,
    top_speed_mps: 36.0,
    engine_heat_capacity_kj_k: 60.0,
    tank_l: 80.0,
    size_m: Vec3::new(5.9, 2.6, 2.0),
};

const TRUCK: VehicleSpec = VehicleSpec {
    mass_kg: 14_000.0,
    payload_kg: 7_000.0,
    max_power_w: 240_000.0,
    max_torque_nm: 1_200.0,
    idle_rpm: 600.0,
    redline_rpm: 2_600.0,
    gears: &[6.5, 4.0, 2.6, 1.7, 1.25, 1.0],
    final_drive: 4.1,
    wheel_radius_m: 0.5,
    drag_area_m2: 6.0,
    rolling_coeff: 0.007,
    max_brake_mps2: 6.5,
    tyre_kpa: 850.0,
    wheelbase_m: 5.5,
    top_speed_mps: 25.0,
    engine_heat_capacity_kj_k: 180.0,
    tank_l: 300.0,
    size_m: Vec3::new(9.0, 3.6, 2.5),
};

const BUS: VehicleSpec = VehicleSpec {
    mass_kg: 15_000.0,
    payload_kg: 4_500.0,
    max_power_w: 220_000.0,
    max_torque_nm: 1_100.0,
    idle_rpm: 600.0,
    redline_rpm: 2_500.0,
    gears: &[5.0, 3.0, 2.0, 1.4, 1.0, 0.8],
    final_drive: 4.9,
    wheel_radius_m: 0.5,
    drag_area_m2: 6.5,
    rolling_coeff: 0.008,
    max_brake_mps2: 6.5,
    tyre_kpa: 800.0,
    wheelbase_m: 6.0,
    top_speed_mps: 22.0,
    engine_heat_capacity_kj_k: 170.0,
    tank_l: 250.0,
    size_m: Vec3::new(12.0, 3.2, 2.55),
};

impl VehicleSpec {
    /// Mass in kilograms with `payload` (0 empty to 1 full) aboard.
    pub fn mass_with(&self, payload: f32) -> f32 {
        self.mass_kg - self.payload_kg * (1.0 - payload.clamp(0.0, 1.0))
    }

    /// Principal moment of inertia in kg·m² at mass `mass_kg` (a uniform box about its
    /// vertical axis, used for all three).
    pub fn inertia_at(&self, mass_kg: f32) -> f32 {
        mass_kg * (self.size_m.x * self.size_m.x + self.size_m.z * self.size_m.z) / 12.0
    }
}

/// The specification of a model.
pub fn spec(model: VehicleModel) -> &'static VehicleSpec {
    match model {
        VehicleModel::Van => &VAN,
        VehicleModel::Truck => &TRUCK,
        VehicleModel::Bus => &BUS,
    }
}

/// Nominal battery internal resistance in milliohms.
pub const BATTERY_MOHM: f32 = 8.0;
/// Nominal brake pad thickness in millimetres.
pub const PAD_MM: f32 = 12.0;
