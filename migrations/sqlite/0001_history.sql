-- Fleet history, sqlite dialect. See docs/STORAGE.md. Times are INTEGER milliseconds since the Unix epoch (UTC).
-- Every message row is keyed by (time, run_id, vehicle_id, seq): time first, as hypertables need,
-- and since a message's time follows from its (run, vehicle, seq), a redelivered message adds nothing.
-- `time` is the simulated instant (the run's start plus sim_time); `wall_time` when it was sent.
-- No foreign keys point into the message tables, so they can become hypertables.

CREATE TABLE runs (
    run_id      INTEGER PRIMARY KEY AUTOINCREMENT,
    name        TEXT NOT NULL UNIQUE,
    scenario    TEXT NOT NULL,
    seed        BIGINT NOT NULL,
    fleet       INTEGER NOT NULL,
    start_time  INTEGER NOT NULL,
    created_at  INTEGER NOT NULL
);

CREATE TABLE vehicles (
    run_id      INTEGER NOT NULL,
    vehicle_id  INTEGER NOT NULL,
    model       TEXT NOT NULL,
    home_depot  TEXT NOT NULL,
    PRIMARY KEY (run_id, vehicle_id)
);

-- One typed column per metric, in wire order (docs/TELEMETRY.md).
CREATE TABLE telemetry (
    time        INTEGER NOT NULL,
    run_id      INTEGER NOT NULL,
    vehicle_id  INTEGER NOT NULL,
    seq         BIGINT NOT NULL,
    sim_time    DOUBLE PRECISION NOT NULL,
    wall_time   INTEGER NOT NULL,
    speed_kph                REAL NOT NULL,
    engine_rpm               REAL NOT NULL,
    engine_load_pct          REAL NOT NULL,
    throttle_pct             REAL NOT NULL,
    brake_pedal_pct          REAL NOT NULL,
    gear                     REAL NOT NULL,
    engine_power_kw          REAL NOT NULL,
    coolant_temp_c           REAL NOT NULL,
    oil_temp_c               REAL NOT NULL,
    intake_air_temp_c        REAL NOT NULL,
    transmission_temp_c      REAL NOT NULL,
    oil_pressure_kpa         REAL NOT NULL,
    coolant_level_pct        REAL NOT NULL,
    fuel_level_pct           REAL NOT NULL,
    fuel_rate_lph            REAL NOT NULL,
    battery_voltage_v        REAL NOT NULL,
    battery_current_a        REAL NOT NULL,
    battery_soc_pct          REAL NOT NULL,
    battery_temp_c           REAL NOT NULL,
    battery_resistance_mohm  REAL NOT NULL,
    brake_pad_front_mm       REAL NOT NULL,
    brake_pad_rear_mm        REAL NOT NULL,
    brake_temp_front_c       REAL NOT NULL,
    brake_temp_rear_c        REAL NOT NULL,
    tyre_pressure_fl_kpa     REAL NOT NULL,
    tyre_pressure_fr_kpa     REAL NOT NULL,
    tyre_pressure_rl_kpa     REAL NOT NULL,
    tyre_pressure_rr_kpa     REAL NOT NULL,
    tyre_temp_fl_c           REAL NOT NULL,
    tyre_temp_fr_c           REAL NOT NULL,
    tyre_temp_rl_c           REAL NOT NULL,
    tyre_temp_rr_c           REAL NOT NULL,
    vibration_chassis_g      REAL NOT NULL,
    vibration_engine_g       REAL NOT NULL,
    vibration_wheel_fl_g     REAL NOT NULL,
    vibration_wheel_fr_g     REAL NOT NULL,
    vibration_wheel_rl_g     REAL NOT NULL,
    vibration_wheel_rr_g     REAL NOT NULL,
    position_x_m             REAL NOT NULL,
    position_z_m             REAL NOT NULL,
    altitude_m               REAL NOT NULL,
    heading_deg              REAL NOT NULL,
    accel_long_g             REAL NOT NULL,
    accel_lat_g              REAL NOT NULL,
    yaw_rate_dps             REAL NOT NULL,
    grade_pct                REAL NOT NULL,
    odometer_km              REAL NOT NULL,
    ambient_temp_c           REAL NOT NULL,
    precipitation_mm_h       REAL NOT NULL,
    road_friction            REAL NOT NULL,
    wind_speed_mps           REAL NOT NULL,
    PRIMARY KEY (time, run_id, vehicle_id, seq)
);
CREATE INDEX telemetry_vehicle_time ON telemetry (run_id, vehicle_id, time);
CREATE INDEX telemetry_run_time ON telemetry (run_id, time);

CREATE TABLE events (
    time        INTEGER NOT NULL,
    run_id      INTEGER NOT NULL,
    vehicle_id  INTEGER NOT NULL,
    seq         BIGINT NOT NULL,
    sim_time    DOUBLE PRECISION NOT NULL,
    wall_time   INTEGER NOT NULL,
    event       TEXT NOT NULL,
    detail      TEXT NOT NULL,
    PRIMARY KEY (time, run_id, vehicle_id, seq)
);
CREATE INDEX events_run_time ON events (run_id, time);

CREATE TABLE heartbeats (
    time        INTEGER NOT NULL,
    run_id      INTEGER NOT NULL,
    vehicle_id  INTEGER NOT NULL,
    seq         BIGINT NOT NULL,
    sim_time    DOUBLE PRECISION NOT NULL,
    wall_time   INTEGER NOT NULL,
    status      TEXT NOT NULL,
    uptime_s    DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (time, run_id, vehicle_id, seq)
);

-- Central messages (the centre numbers its own messages per vehicle).
CREATE TABLE alerts (
    time        INTEGER NOT NULL,
    run_id      INTEGER NOT NULL,
    vehicle_id  INTEGER NOT NULL,
    seq         BIGINT NOT NULL,
    sim_time    DOUBLE PRECISION NOT NULL,
    wall_time   INTEGER NOT NULL,
    alert_id    TEXT NOT NULL,
    component   TEXT NOT NULL,
    alert_type  TEXT NOT NULL,
    severity    TEXT NOT NULL,
    raised_at_s DOUBLE PRECISION NOT NULL,
    evidence    TEXT NOT NULL,
    recommendation TEXT NOT NULL,
    PRIMARY KEY (time, run_id, vehicle_id, seq)
);
CREATE INDEX alerts_run_time ON alerts (run_id, time);

CREATE TABLE commands (
    time        INTEGER NOT NULL,
    run_id      INTEGER NOT NULL,
    vehicle_id  INTEGER NOT NULL,
    seq         BIGINT NOT NULL,
    sim_time    DOUBLE PRECISION NOT NULL,
    wall_time   INTEGER NOT NULL,
    command_id  TEXT NOT NULL,
    action      TEXT NOT NULL,
    detail      TEXT NOT NULL,
    ttl_s       DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (time, run_id, vehicle_id, seq)
);
CREATE INDEX commands_run_command ON commands (run_id, command_id);

CREATE TABLE command_acks (
    time        INTEGER NOT NULL,
    run_id      INTEGER NOT NULL,
    vehicle_id  INTEGER NOT NULL,
    seq         BIGINT NOT NULL,
    sim_time    DOUBLE PRECISION NOT NULL,
    wall_time   INTEGER NOT NULL,
    command_id  TEXT NOT NULL,
    outcome     TEXT NOT NULL,
    detail      TEXT,
    PRIMARY KEY (time, run_id, vehicle_id, seq)
);
CREATE INDEX command_acks_run_command ON command_acks (run_id, command_id);

CREATE TABLE presence (
    time        INTEGER NOT NULL,
    run_id      INTEGER NOT NULL,
    vehicle_id  INTEGER NOT NULL,
    seq         BIGINT NOT NULL,
    sim_time    DOUBLE PRECISION NOT NULL,
    wall_time   INTEGER NOT NULL,
    online      INTEGER NOT NULL,
    last_seen_sim_time DOUBLE PRECISION NOT NULL,
    silent_s    DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (time, run_id, vehicle_id, seq)
);

-- Ground truth of injected failures, from the telemetry's `truth`: one row per failure.
CREATE TABLE failures (
    run_id      INTEGER NOT NULL,
    vehicle_id  INTEGER NOT NULL,
    mode        TEXT NOT NULL,
    component   TEXT NOT NULL,
    onset_s     DOUBLE PRECISION NOT NULL,
    functional_failure_s DOUBLE PRECISION,
    last_severity REAL NOT NULL,
    last_seen_s DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (run_id, vehicle_id, mode, onset_s)
);

-- What the database refused, with the reason; the batch around it still landed.
CREATE TABLE dead_letters (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    received_at INTEGER NOT NULL,
    source      TEXT NOT NULL,
    reason      TEXT NOT NULL,
    payload     TEXT NOT NULL
);
