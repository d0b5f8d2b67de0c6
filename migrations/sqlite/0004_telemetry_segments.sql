-- Telemetry older than the compaction age (24 simulated hours by default), one row per vehicle
-- and hour: the frames as one value, columnar, delta-encoded and zstd-compressed
-- (src/store/segment.rs). Queries read these and the raw rows alike. See docs/STORAGE.md.
-- A rowid table with a unique index, not WITHOUT ROWID: its rows are tens of kilobytes.
CREATE TABLE telemetry_segments (
    run_id      INTEGER NOT NULL,
    vehicle_id  INTEGER NOT NULL,
    start_time  INTEGER NOT NULL,
    end_time    INTEGER NOT NULL,
    frames      INTEGER NOT NULL,
    data        BLOB NOT NULL
);
CREATE UNIQUE INDEX telemetry_segments_key ON telemetry_segments (run_id, vehicle_id, start_time);
