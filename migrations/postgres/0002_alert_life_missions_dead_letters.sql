-- Dead letters name their run; alerts keep their whole life; the fleet is rolled up by hour;
-- missions are read back from the commands that assigned them
-- and the events that reported on them. See docs/STORAGE.md.

ALTER TABLE dead_letters ADD COLUMN run_id INTEGER;
CREATE INDEX dead_letters_run ON dead_letters (run_id, id);

-- An alert row is one step of its life: the record as it stood, and the audit events since
-- the step before (raised, severity changed, acknowledged, assigned, shelved, cleared...).
ALTER TABLE alerts ADD COLUMN state TEXT NOT NULL DEFAULT 'active';
ALTER TABLE alerts ADD COLUMN origin TEXT NOT NULL DEFAULT 'central_rule';
ALTER TABLE alerts ADD COLUMN occurrences INTEGER NOT NULL DEFAULT 1;
ALTER TABLE alerts ADD COLUMN audit JSONB NOT NULL DEFAULT '[]';
ALTER TABLE alerts ADD COLUMN record JSONB NOT NULL DEFAULT '{}';

CREATE INDEX events_run_vehicle_time ON events (run_id, vehicle_id, time);
CREATE INDEX alerts_run_vehicle_time ON alerts (run_id, vehicle_id, time);
CREATE INDEX commands_run_time ON commands (run_id, time);

-- The fleet by hour and model, kept by the writer in the same transaction as the rows it
-- sums (a redelivered row adds nothing here either), so that fleet aggregates over days read
-- a few hundred rows instead of every frame.
CREATE TABLE fleet_hourly (
    run_id        INTEGER NOT NULL,
    hour          TIMESTAMPTZ NOT NULL,
    model         TEXT NOT NULL,
    frames        BIGINT NOT NULL,
    distance_km   DOUBLE PRECISION NOT NULL,
    energy_kwh    DOUBLE PRECISION NOT NULL,
    moving_frames BIGINT NOT NULL,
    load_sum      DOUBLE PRECISION NOT NULL,
    heartbeats    BIGINT NOT NULL,
    available     BIGINT NOT NULL,
    PRIMARY KEY (run_id, hour, model)
);

-- One row per assigned mission: when and to whom, how the vehicle answered, how far it got
-- and how it ended (NULL while under way).
CREATE VIEW missions AS
SELECT c.run_id,
       (c.detail ->> 'mission_id') AS mission_id,
       c.vehicle_id,
       (c.detail ->> 'kind') AS kind,
       jsonb_array_length(c.detail -> 'stops') AS stops,
       c.time AS assigned_time,
       c.sim_time AS assigned_sim_time,
       c.command_id,
       (SELECT a.outcome FROM command_acks a
         WHERE a.run_id = c.run_id AND a.command_id = c.command_id ORDER BY a.time LIMIT 1) AS ack,
       (SELECT MAX((e.detail ->> 'reached')::INTEGER) FROM events e
         WHERE e.run_id = c.run_id AND e.vehicle_id = c.vehicle_id AND e.time >= c.time
           AND e.event = 'mission_progress'
           AND (e.detail ->> 'mission_id') = (c.detail ->> 'mission_id')) AS stops_reached,
       (SELECT e.event FROM events e
         WHERE e.run_id = c.run_id AND e.vehicle_id = c.vehicle_id AND e.time >= c.time
           AND e.event IN ('mission_completed', 'mission_abandoned')
           AND (e.detail ->> 'mission_id') = (c.detail ->> 'mission_id')
         ORDER BY e.time LIMIT 1) AS ended,
       (SELECT e.sim_time FROM events e
         WHERE e.run_id = c.run_id AND e.vehicle_id = c.vehicle_id AND e.time >= c.time
           AND e.event IN ('mission_completed', 'mission_abandoned')
           AND (e.detail ->> 'mission_id') = (c.detail ->> 'mission_id')
         ORDER BY e.time LIMIT 1) AS ended_sim_time
FROM commands c
WHERE c.action = 'assign_mission';
