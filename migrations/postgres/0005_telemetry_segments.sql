-- Telemetry older than the compaction age (24 simulated hours by default), one row per vehicle
-- and hour: the frames as one value, columnar, delta-encoded and zstd-compressed
-- (src/store/segment.rs). Queries read these and the raw rows alike. See docs/STORAGE.md.
-- `start_time` first in the key, as hypertables need; `end_time` is the last frame's time.
CREATE TABLE telemetry_segments (
    start_time  TIMESTAMPTZ NOT NULL,
    end_time    TIMESTAMPTZ NOT NULL,
    run_id      INTEGER NOT NULL,
    vehicle_id  INTEGER NOT NULL,
    frames      INTEGER NOT NULL,
    data        BYTEA NOT NULL,
    PRIMARY KEY (start_time, run_id, vehicle_id)
);
CREATE INDEX telemetry_segments_vehicle ON telemetry_segments (run_id, vehicle_id, start_time);
-- Already compressed: TOAST stores it out of line as it is, without trying pglz on it.
ALTER TABLE telemetry_segments ALTER COLUMN data SET STORAGE EXTERNAL;
