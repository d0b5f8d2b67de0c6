//! Compacted telemetry: one vehicle's frames over a span of simulated time (an hour by
//! default) as one value, columnar, delta-encoded and zstd-compressed.
//!
//! Readings are whole steps of their metric's resolution (docs/TELEMETRY.md), so each column is
//! a run of integers. Each column is written the way that takes the fewest bytes of three: the
//! values themselves, their differences (a slowly moving reading, or a noisy one around a level)
//! or the differences of those (position, odometer and the clocks, which move at a steady
//! rate), each as a zigzag varint. zstd then takes what the noise leaves, about the noise's own
//! entropy. Decoding gives back exactly the frames encoded.
//!
//! Layout: `AEGS`, a version byte (2; version 1 held steps of the finer resolutions of before,
//! and is rescaled on reading), then zstd of: the frame count (varint), a flag byte (1 when
//! every `sim_time` is a whole number of milliseconds, so it is a column of integers; else its
//! bits are stored raw), then the columns in order (time, seq, sim time, wall time, each metric),
//! each a method byte followed by its varints.

use super::StoreError;
use crate::model::{METRIC_COUNT, METRICS};

/// One frame as the store keeps it.
#[derive(Debug, Clone, PartialEq)]
pub struct Frame {
    /// Simulated instant, milliseconds since the Unix epoch.
    pub time_ms: i64,
    /// The sender's sequence number.
    pub seq: i64,
    /// Simulation seconds.
    pub sim_time: f64,
    /// When it was sent, milliseconds since the Unix epoch.
    pub wall_ms: i64,
    /// Each metric's reading in steps of its resolution, in wire order.
    pub steps: [i64; METRIC_COUNT],
}

const MAGIC: &[u8; 4] = b"AEGS";
const VERSION: u8 = 2;

/// Each metric's resolution when version 1 was written, in wire order: at or under half the
/// noise, where today's is the coarsest step within it (docs/TELEMETRY.md). Today's is 1, 2 or
/// 2.5 times each (a test checks).
const V1_RESOLUTIONS: [f64; METRIC_COUNT] = [
    0.2, 5.0, 0.1, 0.02, 0.02, 1.0, 0.5, 0.1, 0.2, 0.1, 0.2, 0.5,
    0.1, 0.02, 0.1, 0.02, 0.5, 0.1, 0.1, 0.2, 0.005, 0.005, 0.5, 0.5,
    1.0, 1.0, 1.0, 1.0, 0.2, 0.2, 0.2, 0.2, 0.02, 0.02, 0.02, 0.02,
    0.02, 0.02, 0.1, 0.1, 5.0, 0.2, 0.005, 0.005, 0.2, 0.05, 0.005, 0.1,
    0.1, 0.001, 0.05,
];

/// Each metric's step today in halves of version 1's: 2, 4 or 5.
fn v1_halves() -> [u64; METRIC_COUNT] {
    std::array::from_fn(|m| (2.0 * METRICS[m].resolution / V1_RESOLUTIONS[m]).round() as u64)
}

/// Version 1's `steps` in steps of today's resolution, `halves` ([`v1_halves`]) of them, the
/// nearest (a half away from zero, as the migrations' `round` of a NUMERIC): in integers,
/// since 2.5 is no binary fraction.
fn rescaled_from_v1(steps: i64, halves: u64) -> i64 {
    let twice = steps.saturating_mul(2);
    let nearest = (twice.unsigned_abs() + halves / 2) / halves;
    (nearest as i64) * twice.signum()
}
/// zstd's level: 9 packs noise-heavy columns a little tighter than the default 3 at a cost
/// the compactor, which runs once per vehicle-hour, does not notice.
const LEVEL: i32 = 9;

/// How a column's values are written.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Method {
    Values = 0,
    Deltas = 1,
    DeltasOfDeltas = 2,
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn varint_len(v: u64) -> usize {
    (64 - v.max(1).leading_zeros() as usize).div_ceil(7)
}

/// The column transformed by `method` (wrapping: any i64 goes in and comes back).
fn transformed(values: &[i64], method: Method) -> Vec<i64> {
    let deltas = |v: &[i64]| -> Vec<i64> { v.iter().scan(0i64, |prev, &x| Some(x.wrapping_sub(std::mem::replace(prev, x)))).collect() };
    match method {
        Method::Values => values.to_vec(),
        Method::Deltas => deltas(values),
        Method::DeltasOfDeltas => deltas(&deltas(values)),
    }
}

fn put_column(out: &mut Vec<u8>, values: &[i64]) {
    let size = |v: &[i64]| v.iter().map(|&x| varint_len(zigzag(x))).sum::<usize>();
    let (method, column) = [Method::Values, Method::Deltas, Method::DeltasOfDeltas]
        .into_iter()
        .map(|m| (m, transformed(values, m)))
        .min_by_key(|(_, c)| size(c))
        .expect("three methods");
    out.push(method as u8);
    for v in column {
        put_varint(out, zigzag(v));
    }
}

/// Reads back what [`put_column`] wrote.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn byte(&mut self) -> Result<u8, StoreError> {
        let b = *self.bytes.get(self.at).ok_or_else(|| corrupt("it ends early"))?;
        self.at += 1;
        Ok(b)
    }

    fn varint(&mut self) -> Result<u64, StoreError> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            v |= u64::from(b & 0x7f) << shift;
            if b < 0x80 {
                return Ok(v);
            }
        }
        Err(corrupt("a number runs past 64 bits"))
    }

    fn column(&mut self, n: usize) -> Result<Vec<i64>, StoreError> {
        let method = match self.byte()? {
            0 => Method::Values,
            1 => Method::Deltas,
            2 => Method::DeltasOfDeltas,
            other => return Err(corrupt(&format!("unknown column method {other}"))),
        };
        let mut column = (0..n).map(|_| self.varint().map(unzigzag)).collect::<Result<Vec<i64>, _>>()?;
        let undo = |c: &mut Vec<i64>| c.iter_mut().fold(0i64, |sum, x| {
            *x = sum.wrapping_add(*x);
            *x
        });
        if method != Method::Values {
            undo(&mut column);
        }
        if method == Method::DeltasOfDeltas {
            undo(&mut column);
        }
        Ok(column)
    }
}

fn corrupt(why: &str) -> StoreError {
    StoreError::Segment(why.to_owned())
}

/// `frames` (one vehicle's, in time order) as one compressed value.
pub fn encode(frames: &[Frame]) -> Vec<u8> {
    let mut raw = Vec::with_capacity(frames.len() * 64);
    put_varint(&mut raw, frames.len() as u64);
    let whole_ms = frames.iter().all(|f| (f.sim_time * 1000.0).round() / 1000.0 == f.sim_time && f.sim_time.abs() < 9.0e12);
    raw.push(u8::from(whole_ms));
    put_column(&mut raw, &frames.iter().map(|f| f.time_ms).collect::<Vec<_>>());
    put_column(&mut raw, &frames.iter().map(|f| f.seq).collect::<Vec<_>>());
    if whole_ms {
        put_column(&mut raw, &frames.iter().map(|f| (f.sim_time * 1000.0).round() as i64).collect::<Vec<_>>());
    } else {
        put_column(&mut raw, &frames.iter().map(|f| f.sim_time.to_bits() as i64).collect::<Vec<_>>());
    }
    put_column(&mut raw, &frames.iter().map(|f| f.wall_ms).collect::<Vec<_>>());
    for metric in 0..METRIC_COUNT {
        put_column(&mut raw, &frames.iter().map(|f| f.steps[metric]).collect::<Vec<_>>());
    }
    let mut out = MAGIC.to_vec();
    out.push(VERSION);
    out.extend(zstd::bulk::compress(&raw, LEVEL).expect("zstd compresses any bytes held in memory"));
    out
}

/// The frames [`encode`] made `bytes` of; a clear error, never a panic, for anything else.
pub fn decode(bytes: &[u8]) -> Result<Vec<Frame>, StoreError> {
    let body = bytes.strip_prefix(MAGIC.as_slice()).ok_or_else(|| corrupt("it does not begin with AEGS"))?;
    let (&version, packed) = body.split_first().ok_or_else(|| corrupt("it has no version"))?;
    if version != VERSION && version != 1 {
        return Err(corrupt(&format!("version {version} is not one this build reads (1 or {VERSION})")));
    }
    // A frame takes well under 1 KiB unpacked: bound what a corrupt header can ask for.
    let raw = zstd::bulk::decompress(packed, 64 << 20).map_err(|e| corrupt(&format!("zstd: {e}")))?;
    let mut reader = Reader { bytes: &raw, at: 0 };
    let n = usize::try_from(reader.varint()?).map_err(|_| corrupt("its frame count is too large"))?;
    if n > raw.len() {
        return Err(corrupt(&format!("it claims {n} frames in {} bytes", raw.len())));
    }
    let whole_ms = reader.byte()? == 1;
    let time = reader.column(n)?;
    let seq = reader.column(n)?;
    let sim = reader.column(n)?;
    let wall = reader.column(n)?;
    let mut frames: Vec<Frame> = (0..n)
        .map(|i| Frame {
            time_ms: time[i],
            seq: seq[i],
            sim_time: if whole_ms { sim[i] as f64 / 1000.0 } else { f64::from_bits(sim[i] as u64) },
            wall_ms: wall[i],
            steps: [0; METRIC_COUNT],
        })
        .collect();
    let halves = (version == 1).then(v1_halves);
    for metric in 0..METRIC_COUNT {
        for (frame, steps) in frames.iter_mut().zip(reader.column(n)?) {
            frame.steps[metric] = halves.map_or(steps, |h| rescaled_from_v1(steps, h[metric]));
        }
    }
    if reader.at != raw.len() {
        return Err(corrupt(&format!("{} bytes are left over", raw.len() - reader.at)));
    }
    Ok(frames)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(n: i64) -> Vec<Frame> {
        (0..n)
            .map(|i| Frame {
                time_ms: 1_767_592_800_000 + i * 1000,
                seq: i,
                sim_time: i as f64,
                wall_ms: 1_800_000_000_000 + i * 3 + i % 7,
                steps: std::array::from_fn(|m| match m {
                    0 => 400 + (i * 7919 + m as i64) % 5 - 2,
                    1 => i * 250,
                    2 => i64::MIN + i,
                    _ => m as i64 * 10 + (i * 31 + m as i64 * 17) % 9,
                }),
            })
            .collect()
    }

    #[test]
    fn frames_come_back_exactly_whatever_their_columns_hold() {
        for n in [0, 1, 2, 3600] {
            let sent = frames(n);
            assert_eq!(decode(&encode(&sent)).unwrap(), sent, "{n} frames");
        }
        let mut odd = frames(10);
        odd[3].sim_time = 3.000_000_1;
        assert_eq!(decode(&encode(&odd)).unwrap(), odd, "a sim time between milliseconds");
    }

    #[test]
    fn a_version_1_segment_reads_in_steps_of_todays_resolutions() {
        use crate::model::Metric;
        let mut frame = frames(1).remove(0);
        frame.steps = [0; METRIC_COUNT];
        // 1.0 km/h in 0.2 km/h steps; 25 rpm in 5 rpm ones (half way between 20 and 30: away
        // from zero); -25 rpm; a gear, whose step did not change.
        let mut rpm_down = frame.clone();
        (frame.steps[Metric::SpeedKph as usize], frame.steps[Metric::EngineRpm as usize], frame.steps[Metric::Gear as usize]) = (5, 5, 3);
        rpm_down.steps[Metric::EngineRpm as usize] = -5;
        let mut bytes = encode(&[frame, rpm_down]);
        bytes[4] = 1;
        let read = decode(&bytes).unwrap();
        assert_eq!(Metric::SpeedKph.spec().resolution, 0.5);
        assert_eq!(Metric::EngineRpm.spec().resolution, 10.0);
        assert_eq!((read[0].steps[Metric::SpeedKph as usize], read[0].steps[Metric::EngineRpm as usize], read[0].steps[Metric::Gear as usize]), (2, 3, 3));
        assert_eq!(read[1].steps[Metric::EngineRpm as usize], -3);
        for (spec, old) in METRICS.iter().zip(V1_RESOLUTIONS) {
            let halves = 2.0 * spec.resolution / old;
            assert!([2.0, 4.0, 5.0].iter().any(|h| (halves - h).abs() < 1e-9), "{}: {} from {old}", spec.name, spec.resolution);
        }
    }

    #[test]
    fn corrupt_bytes_are_an_error_naming_what_is_wrong() {
        let good = encode(&frames(100));
        let cases: [(&[u8], &str); 4] = [(b"", "AEGS"), (b"AEGS\x07", "version 7"), (&good[..good.len() - 3], "zstd"), (b"AEGS\x01garbage", "zstd")];
        for (bytes, named) in cases {
            let error = decode(bytes).unwrap_err().to_string();
            assert!(error.contains(named), "{error}");
        }
    }
}
