//! The slow physics: temperatures, oil pressure, battery, fuel, tyre pressures and wear,
//! integrated every step from the powertrain and brake state and the environment.

use bevy::prelude::*;

use super::clock::STEP_S;
use super::environment::{Environment, EnvironmentModel};
use super::vehicle::{BATTERY_MOHM, Condition, Drive, PAD_MM, Vehicle};
use crate::model::Component;
use crate::schedule::SimSystems;

/// Diesel energy density in joules per litre.
const DIESEL_J_PER_L: f32 = 36e6;
/// Share of fuel energy that becomes crankshaft work.
const ENGINE_EFFICIENCY: f32 = 0.38;
/// Thermostat opening temperature in °C.
const THERMOSTAT_C: f32 = 88.0;
/// Radiator fan switch-on temperature in °C.
const FAN_C: f32 = 98.0;

pub(super) fn plugin(app: &mut App) {
    app.add_systems(FixedUpdate, integrate_condition.in_set(SimSystems::Condition));
}

/// First-order lag of `value` towards `target` with time constant `tau_s`.
fn lag(value: &mut f32, target: f32, tau_s: f32, dt: f32) {
    *value += (target - *value) * (dt / tau_s).min(1.0);
}

fn integrate_condition(env: Res<Environment>, env_model: Res<EnvironmentModel>, mut vehicles: Query<(&Vehicle, &mut Drive, &mut Condition)>) {
    let dt = STEP_S as f32;
    vehicles.par_iter_mut().for_each(|(vehicle, mut drive, mut c)| {
        let spec = vehicle.spec();
        let ambient = env_model.ambient_at(&env, drive.altitude_m);
        let speed = drive.speed_mps.abs();
        let load = drive.engine_load;
        let running = drive.engine_on;
        let airflow = 0.3 + speed / 15.0;

        // Engine cooling circuit: waste heat in, radiator heat out. The radiator only works
        // once the thermostat opens, and only as well as there is coolant to carry the heat.
        let waste_heat_w = if running { drive.engine_power_w * 0.35 + 0.02 * spec.max_power_w } else { 0.0 };
        let thermostat = ((c.coolant_c - THERMOSTAT_C + 4.0) / 8.0).clamp(0.05, 1.0);
        let fan = if c.coolant_c > FAN_C && running { 1.8 } else { 1.0 };
        let coolant_carry = ((c.coolant_level - 0.35) / 0.45).clamp(0.0, 1.0);
        let radiator_w_per_k = 0.012 * spec.max_power_w * thermostat * airflow.min(2.0) * fan * (0.02 + 0.98 * coolant_carry);
        let heat_flow_w = waste_heat_w - radiator_w_per_k * (c.coolant_c - ambient) - 25.0 * (c.coolant_c - ambient);
        c.coolant_c += heat_flow_w * dt / (spec.engine_heat_capacity_kj_k * 1000.0);

        // Oil runs hotter than coolant under load, and much hotter when starved.
        let starvation = (1.0 - c.oil_pump).max(0.0);
        let oil_target = if running { c.coolant_c + 8.0 + 15.0 * load + 40.0 * starvation * load } else { c.coolant_c };
        lag(&mut c.oil_c, oil_target, 240.0, dt);
        // Oil pressure: pump delivery rises with rpm; thin hot oil holds less pressure.
        let viscosity = (1.0 + (90.0 - c.oil_c) * 0.006).clamp(0.6, 1.5);
        let oil_target_kpa = if running { c.oil_pump * (90.0 + 0.11 * drive.rpm) * viscosity } else { 0.0 };
        lag(&mut c.oil_kpa, oil_target_kpa, 0.5, dt);

        let intake_target = ambient + if running { 4.0 + 25.0 * load } else { 0.0 };
        lag(&mut c.intake_c, intake_target, 60.0, dt);
        let transmission_target = ambient + if running { 35.0 + 30.0 * load } else { 0.0 };
        lag(&mut c.transmission_c, transmission_target, 900.0, dt);

        // Brakes: braking energy in, convection out, faster with airflow and rain.
        let wet = (env.precipitation_mm_h / 5.0).min(1.0);
        for axle in 0..2 {
            let metal_on_metal = if c.pad_mm[axle] < 1.5 { 1.6 } else { 1.0 };
            let heat_in = drive.brake_power_w[axle] * metal_on_metal;
            let cooling = (8.0 + 6.0 * speed) * (1.0 + wet) * (spec.mass_kg / 3000.0).sqrt();
            let capacity_j_k = 12_000.0 * (spec.mass_kg / 3000.0).sqrt();
            c.brake_c[axle] += (heat_in - cooling * (c.brake_c[axle] - ambient)) * dt / capacity_j_k;
            // Pads wear with braking energy: about 1 mm per 2 GJ on a van.
            c.pad_mm[axle] = (c.pad_mm[axle] - heat_in * dt / 2e9 * (3000.0 / spec.mass_kg)).max(0.0);
        }

        // Tyres warm with speed, and more when under-inflated; pressure follows temperature.
        for wheel in 0..4 {
            let under = (1.0 - c.tyre_cold_kpa[wheel] / spec.tyre_kpa).max(0.0);
            let bearing_heat = 25.0 * c.bearing_wear[wheel] * c.bearing_wear[wheel] * (speed / 15.0);
            let target = ambient + 0.6 * speed + 60.0 * under * (speed / 15.0) + bearing_heat;
            lag(&mut c.tyre_c[wheel], target, 400.0, dt);
            c.tyre_kpa[wheel] = if c.tyre_blown[wheel] {
                0.0
            } else {
                // Gauge pressure scales with absolute temperature (Gay-Lussac), from 20 °C cold.
                let absolute = (c.tyre_cold_kpa[wheel] + 101.3) * (c.tyre_c[wheel] + 273.15) / 293.15;
                (absolute - 101.3).max(0.0)
            };
        }

        // Battery: a 24 V lead-acid pack charged by the alternator, cranked by the starter.
        let ocv = 23.6 + 2.2 * c.soc;
        let resistance = c.battery_mohm / 1000.0;
        let current = if drive.cranking_s > 0.0 {
            drive.cranking_s -= dt;
            -450.0
        } else if running {
            // The alternator regulates to 28.2 V; a full or worn pack accepts less charge.
            let acceptance = (1.05 - c.soc).clamp(0.05, 1.0) * c.battery_capacity.max(0.2);
            ((28.2 - ocv) / (resistance + 0.05)).min(100.0) * acceptance
        } else {
            -4.0
        };
        c.battery_a = current.clamp(-600.0, 300.0);
        // Charging adds surface-charge polarisation on top of the resistive rise.
        let polarisation = if c.battery_a > 0.0 { 1.8 } else { 0.0 };
        c.battery_v = (ocv + c.battery_a * resistance + polarisation).clamp(0.0, 32.0);
        let capacity_as = 180.0 * 3600.0 * c.battery_capacity.max(0.05);
        c.soc = (c.soc + c.battery_a * dt / capacity_as).clamp(0.0, 1.0);
        let battery_target = ambient + 3.0 + c.battery_a * c.battery_a * resistance * 0.02;
        lag(&mut c.battery_c, battery_target, 1800.0, dt);

        // Fuel: crank work over efficiency, plus idle consumption.
        drive.fuel_rate_lph = if running {
            drive.engine_power_w.max(0.0) / ENGINE_EFFICIENCY / DIESEL_J_PER_L * 3600.0 + 0.008 * spec.max_power_w / 1000.0
        } else {
            0.0
        };
        drive.fuel_l = (drive.fuel_l - drive.fuel_rate_lph / 3600.0 * dt).max(0.0);
        if drive.fuel_l == 0.0 {
            drive.engine_on = false;
        }

        // Heat and oil starvation destroy an engine.
        if running {
            let overheat = ((c.coolant_c - 118.0) / 20.0).max(0.0);
            let starving = ((100.0 - c.oil_kpa) / 100.0).max(0.0) * (drive.rpm / 2000.0);
            c.engine_damage = (c.engine_damage + (overheat + starving) * dt / 1800.0).min(1.0);
        }
        update_health(&mut c, spec.tyre_kpa);
    });
}

/// Health of each component from its physical condition.
fn update_health(c: &mut Condition, tyre_kpa: f32) {
    let coolant = ((c.coolant_level - 0.3) / 0.7).clamp(0.0, 1.0);
    let oil = c.oil_pump;
    let battery = (1.0 - (c.battery_mohm - BATTERY_MOHM) / 50.0).min(c.battery_capacity).clamp(0.0, 1.0);
    let pads = (c.pad_mm[0].min(c.pad_mm[1]) / PAD_MM).clamp(0.0, 1.0);
    let tyres = if c.tyre_blown.iter().any(|b| *b) {
        0.0
    } else {
        c.tyre_cold_kpa.iter().map(|p| p / tyre_kpa).fold(1.0, f32::min)
    };
    let bearings = 1.0 - c.bearing_wear.iter().copied().fold(0.0, f32::max);
    let health = &mut c.health;
    health.set(Component::Engine, 1.0 - c.engine_damage);
    health.set(Component::CoolingSystem, coolant);
    health.set(Component::Lubrication, oil);
    health.set(Component::Battery, battery);
    health.set(Component::Brakes, pads);
    health.set(Component::Tyres, tyres);
    health.set(Component::WheelBearings, bearings);
}
