//! The producer's outgoing queue: a bounded buffer in memory and, beyond it, a spill file on
//! local disk. Messages leave in the order they arrived, whichever of the two holds them.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::model::{MessageKind, VehicleId};

/// One message ready for `XADD`.
#[derive(Debug, Clone, PartialEq)]
pub struct Queued {
    /// The partition of its vehicle.
    pub partition: u16,
    /// Its kind, which picks the stream family.
    pub kind: MessageKind,
    /// Sender (or addressee) and its sequence number, for resuming numbering after a restart.
    pub vehicle: VehicleId,
    /// See `vehicle`.
    pub seq: u64,
    /// The envelope as JSON (one line: serde_json never writes raw newlines).
    pub data: String,
}

/// Where a pushed message went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pushed {
    /// Into the memory buffer.
    Memory,
    /// Into the spill file.
    Spilled,
    /// Nowhere: the spill file is at its limit.
    Dropped,
}

/// The spill file: appended at the end, read from the front.
struct Spill {
    path: PathBuf,
    writer: BufWriter<File>,
    reader: BufReader<File>,
    /// Lines written and not yet read back.
    lines: u64,
    bytes_written: u64,
}

/// Memory first; once memory is full, every later message goes to the file until the file is
/// drained, so order is kept.
pub struct SendQueue {
    memory: VecDeque<Queued>,
    capacity: usize,
    spill_path: PathBuf,
    spill_limit: u64,
    spill: Option<Spill>,
}

impl SendQueue {
    /// A queue holding `capacity` messages in memory and up to `spill_limit` bytes at
    /// `spill_path` (created only when needed).
    pub fn new(capacity: usize, spill_path: PathBuf, spill_limit: u64) -> Self {
        Self { memory: VecDeque::new(), capacity: capacity.max(1), spill_path, spill_limit, spill: None }
    }

    /// Messages held, in memory and on disk.
    pub fn len(&self) -> u64 {
        self.memory.len() as u64 + self.spill.as_ref().map_or(0, |s| s.lines)
    }

    /// Messages held in memory.
    pub fn memory_len(&self) -> u64 {
        self.memory.len() as u64
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Queues a message at the back.
    pub fn push(&mut self, message: Queued) -> std::io::Result<Pushed> {
        let spilling = self.spill.as_ref().is_some_and(|s| s.lines > 0);
        if !spilling && self.memory.len() < self.capacity {
            self.memory.push_back(message);
            return Ok(Pushed::Memory);
        }
        if self.spill.is_none() {
            self.spill = Some(open_spill(&self.spill_path)?);
        }
        let spill = self.spill.as_mut().expect("opened above");
        let line = spill_line(&message);
        if spill.bytes_written + line.len() as u64 > self.spill_limit {
            return Ok(Pushed::Dropped);
        }
        spill.writer.write_all(line.as_bytes())?;
        spill.bytes_written += line.len() as u64;
        spill.lines += 1;
        Ok(Pushed::Spilled)
    }

    /// Up to `n` messages from the front, without removing them. Refills memory from the spill
    /// file when memory is empty.
    pub fn front(&mut self, n: usize) -> std::io::Result<impl Iterator<Item = &Queued>> {
        if self.memory.is_empty() {
            self.refill()?;
        }
        Ok(self.memory.iter().take(n))
    }

    /// Removes `n` messages from the front (after they were sent).
    pub fn pop(&mut self, n: usize) {
        self.memory.drain(..n.min(self.memory.len()));
    }

    fn refill(&mut self) -> std::io::Result<()> {
        let Some(spill) = self.spill.as_mut() else { return Ok(()) };
        spill.writer.flush()?;
        let mut line = String::new();
        while spill.lines > 0 && self.memory.len() < self.capacity {
            line.clear();
            if spill.reader.read_line(&mut line)? == 0 {
                // Cannot happen after the flush above; never spin on it.
                tracing::error!("spill file {}: {} lines missing", spill.path.display(), spill.lines);
                spill.lines = 0;
                break;
            }
            spill.lines -= 1;
            match parse_line(line.trim_end_matches('\n')) {
                Some(message) => self.memory.push_back(message),
                None => tracing::error!("spill file {}: unreadable line skipped", spill.path.display()),
            }
        }
        if spill.lines == 0 {
            // Drained: start the next outage with an empty file.
            let path = spill.path.clone();
            self.spill = None;
            std::fs::remove_file(&path)?;
        }
        Ok(())
    }

    /// The spill file, while one exists.
    pub fn spill_path(&self) -> Option<&Path> {
        self.spill.as_ref().map(|s| s.path.as_path())
    }

    /// Writes what is still held to the spill file, so a run that ends while the transport is
    /// unreachable leaves its messages on disk. Returns the file when anything is there.
    pub fn persist(&mut self) -> std::io::Result<Option<PathBuf>> {
        if self.is_empty() {
            return Ok(None);
        }
        // Memory holds the oldest messages; rewrite the file as memory followed by the rest.
        let rest = match self.spill.take() {
            Some(mut spill) => {
                spill.writer.flush()?;
                let mut rest = String::new();
                std::io::Read::read_to_string(&mut spill.reader, &mut rest)?;
                rest
            }
            None => String::new(),
        };
        let mut out = BufWriter::new(File::create(&self.spill_path)?);
        for message in self.memory.drain(..) {
            out.write_all(spill_line(&message).as_bytes())?;
        }
        out.write_all(rest.as_bytes())?;
        out.flush()?;
        Ok(Some(self.spill_path.clone()))
    }
}

fn open_spill(path: &Path) -> std::io::Result<Spill> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let file = OpenOptions::new().create(true).truncate(true).write(true).open(path)?;
    // A handle of its own: a cloned one would share the writer's file offset.
    let reader = File::open(path)?;
    Ok(Spill { path: path.to_owned(), writer: BufWriter::with_capacity(1 << 20, file), reader: BufReader::new(reader), lines: 0, bytes_written: 0 })
}

/// A spill line: `partition kind vehicle seq json` and a newline.
fn spill_line(message: &Queued) -> String {
    format!("{} {} {} {} {}\n", message.partition, message.kind.as_str(), message.vehicle, message.seq, message.data)
}

/// Reads a [`spill_line`] (without its newline).
fn parse_line(line: &str) -> Option<Queued> {
    let mut parts = line.splitn(5, ' ');
    let partition = parts.next()?.parse().ok()?;
    let kind = parts.next()?;
    let kind = MessageKind::ALL.into_iter().find(|k| k.as_str() == kind)?;
    let vehicle = parts.next()?.parse().ok()?;
    let seq = parts.next()?.parse().ok()?;
    Some(Queued { partition, kind, vehicle, seq, data: parts.next()?.to_owned() })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(i: u32) -> Queued {
        Queued { partition: (i % 16) as u16, kind: MessageKind::Telemetry, vehicle: VehicleId(i % 16 + 1), seq: u64::from(i), data: format!("{{\"n\":{i}}}") }
    }

    #[test]
    fn order_is_kept_across_memory_and_spill() {
        let dir = tempfile::tempdir().unwrap();
        let mut queue = SendQueue::new(3, dir.path().join("spill"), 1 << 20);
        let mut sent = Vec::new();
        for i in 0..10 {
            queue.push(message(i)).unwrap();
            // Interleave sends with pushes, as the writer does while Redis comes back.
            if i % 4 == 3 {
                let batch: Vec<_> = queue.front(2).unwrap().cloned().collect();
                queue.pop(batch.len());
                sent.extend(batch);
            }
        }
        while !queue.is_empty() {
            let batch: Vec<_> = queue.front(2).unwrap().cloned().collect();
            queue.pop(batch.len());
            sent.extend(batch);
        }
        assert_eq!(sent, (0..10).map(message).collect::<Vec<_>>());
        assert!(!dir.path().join("spill").exists(), "a drained spill file is removed");
    }

    #[test]
    fn a_full_spill_file_drops_and_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let mut queue = SendQueue::new(1, dir.path().join("spill"), 30);
        assert_eq!(queue.push(message(0)).unwrap(), Pushed::Memory);
        assert_eq!(queue.push(message(1)).unwrap(), Pushed::Spilled);
        assert_eq!(queue.push(message(2)).unwrap(), Pushed::Dropped);
        assert_eq!(queue.len(), 2);
    }
}
