-- Two changes to telemetry, each for what TimescaleDB's codecs make of it (docs/STORAGE.md):
--
-- 1. Readings in steps of the coarsest resolution within each sensor's noise, no longer at or
--    under half of it (docs/TELEMETRY.md): the steps of the 34 metrics whose resolution grew 2
--    or 2.5 times are rescaled to the nearest new step (a half away from zero, as the sensors
--    round). A reading that is noise costs about a bit less.
-- 2. Its clocks as integer milliseconds, `sim_ms` and `wall_ms`: `sim_time` was a double whose
--    steps of 0.05 s left a last bit astray, and `wall_time` a timestamp in microseconds; both
--    are whole milliseconds (as `time` is), which compress to almost nothing.
--
-- `telemetry_readings` still shows `sim_time` in seconds and `wall_time` as a time.
-- On TimescaleDB the store decompresses telemetry before this runs and compresses it again
-- after (src/store/timescale.rs), since a compressed hypertable's columns cannot change type;
-- its continuous aggregates (sums of steps) are refreshed then.

DROP VIEW IF EXISTS telemetry_readings;

-- An UPDATE, not ALTER COLUMN TYPE: the continuous aggregates read some of these columns.
UPDATE telemetry SET
    speed_kph = round(speed_kph::NUMERIC * 2 / 5),
    engine_rpm = round(engine_rpm::NUMERIC / 2),
    engine_load_pct = round(engine_load_pct::NUMERIC / 2),
    throttle_pct = round(throttle_pct::NUMERIC * 2 / 5),
    brake_pedal_pct = round(brake_pedal_pct::NUMERIC * 2 / 5),
    engine_power_kw = round(engine_power_kw::NUMERIC / 2),
    coolant_temp_c = round(coolant_temp_c::NUMERIC / 2),
    intake_air_temp_c = round(intake_air_temp_c::NUMERIC / 2),
    oil_pressure_kpa = round(oil_pressure_kpa::NUMERIC / 2),
    coolant_level_pct = round(coolant_level_pct::NUMERIC / 2),
    fuel_level_pct = round(fuel_level_pct::NUMERIC * 2 / 5),
    fuel_rate_lph = round(fuel_rate_lph::NUMERIC / 2),
    battery_voltage_v = round(battery_voltage_v::NUMERIC * 2 / 5),
    battery_current_a = round(battery_current_a::NUMERIC / 2),
    battery_soc_pct = round(battery_soc_pct::NUMERIC / 2),
    battery_temp_c = round(battery_temp_c::NUMERIC / 2),
    brake_pad_front_mm = round(brake_pad_front_mm::NUMERIC / 2),
    brake_pad_rear_mm = round(brake_pad_rear_mm::NUMERIC / 2),
    brake_temp_front_c = round(brake_temp_front_c::NUMERIC / 2),
    brake_temp_rear_c = round(brake_temp_rear_c::NUMERIC / 2),
    tyre_pressure_fl_kpa = round(tyre_pressure_fl_kpa::NUMERIC / 2),
    tyre_pressure_fr_kpa = round(tyre_pressure_fr_kpa::NUMERIC / 2),
    tyre_pressure_rl_kpa = round(tyre_pressure_rl_kpa::NUMERIC / 2),
    tyre_pressure_rr_kpa = round(tyre_pressure_rr_kpa::NUMERIC / 2),
    altitude_m = round(altitude_m::NUMERIC / 2),
    heading_deg = round(heading_deg::NUMERIC * 2 / 5),
    accel_long_g = round(accel_long_g::NUMERIC / 2),
    accel_lat_g = round(accel_lat_g::NUMERIC / 2),
    yaw_rate_dps = round(yaw_rate_dps::NUMERIC * 2 / 5),
    grade_pct = round(grade_pct::NUMERIC / 2),
    ambient_temp_c = round(ambient_temp_c::NUMERIC / 2),
    precipitation_mm_h = round(precipitation_mm_h::NUMERIC / 2),
    road_friction = round(road_friction::NUMERIC / 2),
    wind_speed_mps = round(wind_speed_mps::NUMERIC / 2);

ALTER TABLE telemetry
    ALTER COLUMN sim_time TYPE BIGINT USING round(sim_time * 1000)::BIGINT,
    ALTER COLUMN wall_time TYPE BIGINT USING round(EXTRACT(EPOCH FROM wall_time) * 1000)::BIGINT;
ALTER TABLE telemetry RENAME COLUMN sim_time TO sim_ms;
ALTER TABLE telemetry RENAME COLUMN wall_time TO wall_ms;

CREATE VIEW telemetry_readings AS
SELECT time, run_id, vehicle_id, seq, sim_ms / CAST(1000 AS DOUBLE PRECISION) AS sim_time, to_timestamp(wall_ms / CAST(1000 AS DOUBLE PRECISION)) AS wall_time,
       speed_kph * CAST(0.5 AS DOUBLE PRECISION) AS speed_kph,
       engine_rpm * CAST(10.0 AS DOUBLE PRECISION) AS engine_rpm,
       engine_load_pct * CAST(0.2 AS DOUBLE PRECISION) AS engine_load_pct,
       throttle_pct * CAST(0.05 AS DOUBLE PRECISION) AS throttle_pct,
       brake_pedal_pct * CAST(0.05 AS DOUBLE PRECISION) AS brake_pedal_pct,
       gear * CAST(1.0 AS DOUBLE PRECISION) AS gear,
       engine_power_kw * CAST(1.0 AS DOUBLE PRECISION) AS engine_power_kw,
       coolant_temp_c * CAST(0.2 AS DOUBLE PRECISION) AS coolant_temp_c,
       oil_temp_c * CAST(0.2 AS DOUBLE PRECISION) AS oil_temp_c,
       intake_air_temp_c * CAST(0.2 AS DOUBLE PRECISION) AS intake_air_temp_c,
       transmission_temp_c * CAST(0.2 AS DOUBLE PRECISION) AS transmission_temp_c,
       oil_pressure_kpa * CAST(1.0 AS DOUBLE PRECISION) AS oil_pressure_kpa,
       coolant_level_pct * CAST(0.2 AS DOUBLE PRECISION) AS coolant_level_pct,
       fuel_level_pct * CAST(0.05 AS DOUBLE PRECISION) AS fuel_level_pct,
       fuel_rate_lph * CAST(0.2 AS DOUBLE PRECISION) AS fuel_rate_lph,
       battery_voltage_v * CAST(0.05 AS DOUBLE PRECISION) AS battery_voltage_v,
       battery_current_a * CAST(1.0 AS DOUBLE PRECISION) AS battery_current_a,
       battery_soc_pct * CAST(0.2 AS DOUBLE PRECISION) AS battery_soc_pct,
       battery_temp_c * CAST(0.2 AS DOUBLE PRECISION) AS battery_temp_c,
       battery_resistance_mohm * CAST(0.2 AS DOUBLE PRECISION) AS battery_resistance_mohm,
       brake_pad_front_mm * CAST(0.01 AS DOUBLE PRECISION) AS brake_pad_front_mm,
       brake_pad_rear_mm * CAST(0.01 AS DOUBLE PRECISION) AS brake_pad_rear_mm,
       brake_temp_front_c * CAST(1.0 AS DOUBLE PRECISION) AS brake_temp_front_c,
       brake_temp_rear_c * CAST(1.0 AS DOUBLE PRECISION) AS brake_temp_rear_c,
       tyre_pressure_fl_kpa * CAST(2.0 AS DOUBLE PRECISION) AS tyre_pressure_fl_kpa,
       tyre_pressure_fr_kpa * CAST(2.0 AS DOUBLE PRECISION) AS tyre_pressure_fr_kpa,
       tyre_pressure_rl_kpa * CAST(2.0 AS DOUBLE PRECISION) AS tyre_pressure_rl_kpa,
       tyre_pressure_rr_kpa * CAST(2.0 AS DOUBLE PRECISION) AS tyre_pressure_rr_kpa,
       tyre_temp_fl_c * CAST(0.2 AS DOUBLE PRECISION) AS tyre_temp_fl_c,
       tyre_temp_fr_c * CAST(0.2 AS DOUBLE PRECISION) AS tyre_temp_fr_c,
       tyre_temp_rl_c * CAST(0.2 AS DOUBLE PRECISION) AS tyre_temp_rl_c,
       tyre_temp_rr_c * CAST(0.2 AS DOUBLE PRECISION) AS tyre_temp_rr_c,
       vibration_chassis_g * CAST(0.02 AS DOUBLE PRECISION) AS vibration_chassis_g,
       vibration_engine_g * CAST(0.02 AS DOUBLE PRECISION) AS vibration_engine_g,
       vibration_wheel_fl_g * CAST(0.02 AS DOUBLE PRECISION) AS vibration_wheel_fl_g,
       vibration_wheel_fr_g * CAST(0.02 AS DOUBLE PRECISION) AS vibration_wheel_fr_g,
       vibration_wheel_rl_g * CAST(0.02 AS DOUBLE PRECISION) AS vibration_wheel_rl_g,
       vibration_wheel_rr_g * CAST(0.02 AS DOUBLE PRECISION) AS vibration_wheel_rr_g,
       position_x_m * CAST(0.1 AS DOUBLE PRECISION) AS position_x_m,
       position_z_m * CAST(0.1 AS DOUBLE PRECISION) AS position_z_m,
       altitude_m * CAST(10.0 AS DOUBLE PRECISION) AS altitude_m,
       heading_deg * CAST(0.5 AS DOUBLE PRECISION) AS heading_deg,
       accel_long_g * CAST(0.01 AS DOUBLE PRECISION) AS accel_long_g,
       accel_lat_g * CAST(0.01 AS DOUBLE PRECISION) AS accel_lat_g,
       yaw_rate_dps * CAST(0.5 AS DOUBLE PRECISION) AS yaw_rate_dps,
       grade_pct * CAST(0.1 AS DOUBLE PRECISION) AS grade_pct,
       odometer_km * CAST(0.005 AS DOUBLE PRECISION) AS odometer_km,
       ambient_temp_c * CAST(0.2 AS DOUBLE PRECISION) AS ambient_temp_c,
       precipitation_mm_h * CAST(0.2 AS DOUBLE PRECISION) AS precipitation_mm_h,
       road_friction * CAST(0.002 AS DOUBLE PRECISION) AS road_friction,
       wind_speed_mps * CAST(0.1 AS DOUBLE PRECISION) AS wind_speed_mps
FROM telemetry;
