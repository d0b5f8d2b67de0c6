//! The environment all vehicles share: a day cycle of air temperature, weather that changes grip
//! and temperatures, and wind. Altitude adjusts temperature per vehicle.

use bevy::prelude::*;
use rand::{Rng, SeedableRng, rngs::SmallRng};
use rand_distr::StandardNormal;

use super::clock::SimClock;
use crate::scenario::{EnvironmentSpec, Weather};
use crate::schedule::SimSystems;

/// Standard atmospheric lapse rate in °C per metre of altitude.
pub const LAPSE_C_PER_M: f32 = 0.0065;

/// Conditions now, at the terrain's base altitude.
#[derive(Resource, Debug, Clone, Copy, Default)]
pub struct Environment {
    /// Air temperature in °C at base altitude.
    pub ambient_c: f32,
    /// Rain rate in mm/h.
    pub precipitation_mm_h: f32,
    /// Tyre-road friction coefficient.
    pub road_friction: f32,
    /// Wind speed in m/s.
    pub wind_mps: f32,
    /// Local hour of day, 0-24.
    pub hour: f32,
}

/// The scenario's environment settings plus a seed-derived phase for showers.
#[derive(Resource, Debug, Clone)]
pub struct EnvironmentModel {
    /// Scenario settings.
    pub spec: EnvironmentSpec,
    /// Base altitude the ambient temperature refers to, in metres.
    pub base_altitude_m: f32,
    /// Phase of the shower cycle, from the seed.
    pub shower_phase: f32,
    /// The run's seed, from which each day's deviation from the mean temperature is drawn.
    pub seed: u64,
}

impl EnvironmentModel {
    /// Conditions at simulated time `t` seconds.
    pub fn at(&self, t: f64) -> Environment {
        use std::f32::consts::TAU;
        let hour = (self.spec.start_hour + (t / 3600.0) as f32).rem_euclid(24.0);
        // Warmest at 15:00, coldest at 03:00.
        let daily = (TAU * (hour - 9.0) / 24.0).sin();
        let precipitation_mm_h = match self.spec.weather {
            Weather::Clear => 0.0,
            Weather::Rain => 4.0 + 2.0 * (TAU * (t as f32) / 1800.0 + self.shower_phase).sin(),
            // A shower roughly every 90 minutes, dry in between.
            Weather::Changing => (9.0 * (TAU * (t as f32) / 5400.0 + self.shower_phase).sin() - 4.0).max(0.0),
        };
        let wet = (precipitation_mm_h / 5.0).min(1.0);
        let mut ambient_c = self.spec.ambient_mean_c + self.day_offset_c(t) + self.spec.ambient_swing_c * daily - 2.0 * wet;
        ambient_c = ambient_c.clamp(-45.0, 55.0);
        let freezing = ambient_c < 0.5 && precipitation_mm_h > 0.0;
        let road_friction = if freezing { 0.25 } else { 0.85 - 0.3 * wet };
        let gust = 1.0 + 0.3 * (TAU * (t as f32) / 600.0 + 2.0 * self.shower_phase).sin();
        Environment { ambient_c, precipitation_mm_h, road_friction, wind_mps: (self.spec.wind_mps * gust).max(0.0), hour }
    }

    /// How much warmer than the mean this day is at `t` (hot and cold days): one normal draw
    /// per calendar day from the seed, blended from one day's to the next's over the night so
    /// that the temperature never jumps.
    fn day_offset_c(&self, t: f64) -> f32 {
        if self.spec.day_to_day_c == 0.0 {
            return 0.0;
        }
        // Days are counted from 03:00, the coldest hour, where one day gives way to the next.
        let days = (f64::from(self.spec.start_hour) - 3.0) / 24.0 + t / 86_400.0;
        let (day, into) = (days.floor(), days.fract() as f32);
        let draw = |day: f64| {
            let mut rng = SmallRng::seed_from_u64(self.seed ^ 0xDA7_0FF5E7 ^ (day as i64 as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
            rng.sample::<f32, _>(StandardNormal) * self.spec.day_to_day_c
        };
        // The first six hours of a day blend the night from the last day's value.
        let blend = (into * 4.0).min(1.0);
        let blend = 0.5 - 0.5 * (std::f32::consts::PI * blend).cos();
        draw(day - 1.0) * (1.0 - blend) + draw(day) * blend
    }

    /// Air temperature at `altitude_m`, given conditions at base altitude.
    pub fn ambient_at(&self, env: &Environment, altitude_m: f32) -> f32 {
        env.ambient_c - LAPSE_C_PER_M * (altitude_m - self.base_altitude_m)
    }
}

pub(super) fn plugin(app: &mut App) {
    app.init_resource::<Environment>();
    app.add_systems(FixedUpdate, update_environment.in_set(SimSystems::Environment));
}

fn update_environment(clock: Res<SimClock>, model: Res<EnvironmentModel>, mut env: ResMut<Environment>) {
    *env = model.at(clock.seconds());
}
