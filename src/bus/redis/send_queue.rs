//! The producer's outgoing queue: a bounded buffer in memory and, beyond it, a spill file on
//! local disk. Messages leave in the order they arrived, whichever of the two holds them.
//!
//! Nothing handed to the queue is ever dropped. Lines bound for the spill file are written in
//! blocks; a block the disk refuses (full, or the spill limit reached) stays in memory, the
//! file is cut back to its last whole line, and the queue reports itself held up so that the
//! producer slows the simulation instead of losing data. A spill file left by an earlier run
//! of the same producer (it exited while Redis was away) is adopted and sent first.

use std::collections::{BTreeMap, VecDeque};
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::model::{MessageKind, VehicleId};

/// Bytes gathered before a block goes to disk.
const BLOCK_BYTES: usize = 1 << 20;

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
    /// Into the spill file (or its block still to be written).
    Spilled,
}

/// An append-only file of spill lines, read from the front, whose unwritten tail stays in
/// memory until the disk takes it.
pub struct SpillFile {
    path: PathBuf,
    file: File,
    reader: BufReader<File>,
    /// Bytes on disk that are whole lines.
    on_disk: u64,
    /// Lines on disk not yet read back.
    unread: u64,
    /// Lines not yet written, as one block of text.
    pending: Vec<u8>,
    pending_lines: u64,
    limit: u64,
    /// Why the latest write failed, until one succeeds.
    failing: Option<String>,
}

impl SpillFile {
    /// Opens `path`, keeping what an earlier run left there. Returns the file and the lines it
    /// already holds.
    pub fn open(path: &Path, limit: u64) -> std::io::Result<Self> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        // A device or pipe would never end when read back (and /dev/full reads as zeros).
        if let Ok(meta) = std::fs::metadata(path)
            && !meta.is_file()
        {
            return Err(std::io::Error::other("not a regular file"));
        }
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        let mut reader = BufReader::new(File::open(path)?);
        // A crash may have left a partial last line: keep only whole lines.
        let (mut lines, mut whole) = (0u64, 0u64);
        let mut line = Vec::new();
        loop {
            line.clear();
            let read = reader.read_until(b'\n', &mut line)?;
            if read == 0 || line.last() != Some(&b'\n') {
                break;
            }
            lines += 1;
            whole += read as u64;
        }
        if whole != file.metadata()?.len() {
            file.set_len(whole)?;
        }
        reader.seek(SeekFrom::Start(0))?;
        Ok(Self { path: path.to_owned(), file, reader, on_disk: whole, unread: lines, pending: Vec::new(), pending_lines: 0, limit, failing: None })
    }

    /// Lines held, on disk and pending.
    pub fn len(&self) -> u64 {
        self.unread + self.pending_lines
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Why writing fails, while it does.
    pub fn failing(&self) -> Option<&str> {
        self.failing.as_deref()
    }

    /// Appends a line (with its newline). Never loses it: when the disk refuses the block it
    /// stays pending and [`SpillFile::failing`] says why.
    pub fn append(&mut self, line: &str) {
        self.pending.extend_from_slice(line.as_bytes());
        self.pending_lines += 1;
        if self.pending.len() >= BLOCK_BYTES || self.failing.is_some() {
            self.write_pending();
        }
    }

    /// Writes the pending block; on failure cuts the file back to its last whole line.
    pub fn write_pending(&mut self) -> bool {
        if self.pending.is_empty() {
            // Nothing is held beyond what was written: whatever failed before is over.
            self.failing = None;
            return true;
        }
        let result = if self.on_disk + self.pending.len() as u64 > self.limit {
            Err(std::io::Error::other(format!("spill limit of {} bytes reached", self.limit)))
        } else {
            self.file.write_all(&self.pending).and_then(|()| self.file.flush())
        };
        match result {
            Ok(()) => {
                self.on_disk += self.pending.len() as u64;
                self.unread += self.pending_lines;
                self.pending.clear();
                self.pending_lines = 0;
                self.failing = None;
                true
            }
            Err(error) => {
                if self.failing.is_none() {
                    tracing::error!("spill file {}: {error}; holding {} messages in memory", self.path.display(), self.pending_lines);
                }
                self.failing = Some(error.to_string());
                // A partial block must not leave half a line behind.
                let _ = self.file.set_len(self.on_disk);
                false
            }
        }
    }

    /// The next line, oldest first: from disk while it has unread lines, then from the pending
    /// block (so a disk that refuses writes still lets the queue drain).
    pub fn next_line(&mut self) -> std::io::Result<Option<String>> {
        if self.unread == 0 && self.pending_lines > 0 && !self.write_pending() {
            let end = self.pending.iter().position(|&b| b == b'\n').map_or(self.pending.len(), |i| i + 1);
            let line: Vec<u8> = self.pending.drain(..end).collect();
            self.pending_lines -= 1;
            return Ok(Some(String::from_utf8_lossy(&line).trim_end_matches('\n').to_owned()));
        }
        if self.unread == 0 {
            return Ok(None);
        }
        let mut line = String::new();
        if self.reader.read_line(&mut line)? == 0 {
            // Lines counted but not on disk cannot happen; never spin on it.
            tracing::error!("spill file {}: {} lines missing", self.path.display(), self.unread);
            self.unread = 0;
            return Ok(None);
        }
        self.unread -= 1;
        Ok(Some(line.trim_end_matches('\n').to_owned()))
    }

    /// Empties the file once everything has been read back.
    pub fn reset_if_drained(&mut self) -> std::io::Result<()> {
        if self.is_empty() && self.on_disk > 0 {
            self.file.set_len(0)?;
            self.reader.seek(SeekFrom::Start(0))?;
            self.on_disk = 0;
        }
        Ok(())
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Memory first; once memory is full, every later message goes to the spill file until the
/// file is drained, so order is kept.
pub struct SendQueue {
    memory: VecDeque<Queued>,
    capacity: usize,
    spill: SpillFile,
}

/// What an earlier run left in the spill file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Leftover {
    /// Messages in it.
    pub messages: u64,
    /// For each vehicle, the number after the highest sequence number among them.
    pub next_seq: BTreeMap<VehicleId, u64>,
}

impl SendQueue {
    /// A queue holding `capacity` messages in memory and up to `spill_limit` bytes in the
    /// spill file at `spill_path`, which keeps (and sends first) what an earlier run left
    /// there.
    pub fn open(capacity: usize, spill_path: PathBuf, spill_limit: u64) -> std::io::Result<(Self, Leftover)> {
        let mut spill = SpillFile::open(&spill_path, spill_limit)?;
        let mut leftover = Leftover { messages: spill.len(), next_seq: BTreeMap::new() };
        if leftover.messages > 0 {
            // Read the numbering back without consuming: a second handle.
            let mut reader = BufReader::new(File::open(&spill_path)?);
            let mut line = String::new();
            for _ in 0..leftover.messages {
                line.clear();
                reader.read_line(&mut line)?;
                if let Some(message) = parse_line(line.trim_end_matches('\n')) {
                    let next = leftover.next_seq.entry(message.vehicle).or_default();
                    *next = (*next).max(message.seq + 1);
                }
            }
            spill.reader.seek(SeekFrom::Start(0))?;
        }
        Ok((Self { memory: VecDeque::new(), capacity: capacity.max(1), spill }, leftover))
    }

    /// Messages held, in memory and on disk.
    pub fn len(&self) -> u64 {
        self.memory.len() as u64 + self.spill.len()
    }

    /// Messages held in memory.
    pub fn memory_len(&self) -> u64 {
        self.memory.len() as u64
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Why the queue cannot take more without growing memory past its bound: the spill file
    /// refuses writes. `None` when all is well.
    pub fn held_up(&self) -> Option<&str> {
        self.spill.failing()
    }

    /// Writes what waits for the spill file now, rather than when a block is full; says
    /// whether the disk took it.
    pub fn write_pending(&mut self) -> bool {
        self.spill.write_pending()
    }

    /// Queues a message at the back.
    pub fn push(&mut self, message: Queued) -> Pushed {
        if self.spill.is_empty() && self.memory.len() < self.capacity {
            self.memory.push_back(message);
            return Pushed::Memory;
        }
        self.spill.append(&spill_line(&message));
        Pushed::Spilled
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
        while self.memory.len() < self.capacity {
            let Some(line) = self.spill.next_line()? else { break };
            match parse_line(&line) {
                Some(message) => self.memory.push_back(message),
                None => tracing::error!("spill file {}: unreadable line skipped", self.spill.path().display()),
            }
        }
        self.spill.reset_if_drained()
    }

    /// The spill file's path.
    pub fn spill_path(&self) -> &Path {
        self.spill.path()
    }

    /// Writes what is still held to the spill file, so a run that ends while the transport is
    /// unreachable leaves its messages on disk for the next run. Returns how many are there.
    pub fn persist(&mut self) -> std::io::Result<u64> {
        if self.is_empty() {
            return Ok(0);
        }
        // Memory holds the oldest messages: the file becomes memory followed by the rest.
        let mut rest = Vec::new();
        while let Some(line) = self.spill.next_line()? {
            rest.push(line);
        }
        let path = self.spill.path().to_owned();
        let temporary = path.with_extension("spill.new");
        let mut out = std::io::BufWriter::new(File::create(&temporary)?);
        let mut count = 0u64;
        for message in self.memory.drain(..) {
            out.write_all(spill_line(&message).as_bytes())?;
            count += 1;
        }
        for line in rest {
            out.write_all(line.as_bytes())?;
            out.write_all(b"\n")?;
            count += 1;
        }
        out.flush()?;
        out.get_ref().sync_all()?;
        std::fs::rename(&temporary, &path)?;
        Ok(count)
    }
}

/// A spill line: `partition kind vehicle seq json` and a newline.
pub fn spill_line(message: &Queued) -> String {
    format!("{} {} {} {} {}\n", message.partition, message.kind.as_str(), message.vehicle, message.seq, message.data)
}

/// Reads a [`spill_line`] (without its newline).
pub fn parse_line(line: &str) -> Option<Queued> {
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

    fn drain(queue: &mut SendQueue, n: usize) -> Vec<Queued> {
        let batch: Vec<_> = queue.front(n).unwrap().cloned().collect();
        queue.pop(batch.len());
        batch
    }

    #[test]
    fn order_is_kept_across_memory_and_spill() {
        let dir = tempfile::tempdir().unwrap();
        let (mut queue, leftover) = SendQueue::open(3, dir.path().join("spill"), 1 << 20).unwrap();
        assert_eq!(leftover, Leftover::default());
        let mut sent = Vec::new();
        for i in 0..10 {
            queue.push(message(i));
            // Interleave sends with pushes, as the writer does while Redis comes back.
            if i % 4 == 3 {
                sent.extend(drain(&mut queue, 2));
            }
        }
        while !queue.is_empty() {
            sent.extend(drain(&mut queue, 2));
        }
        assert_eq!(sent, (0..10).map(message).collect::<Vec<_>>());
        assert_eq!(std::fs::metadata(dir.path().join("spill")).unwrap().len(), 0, "a drained spill file is emptied");
    }

    #[test]
    fn a_full_spill_file_holds_messages_in_memory_and_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let (mut queue, _) = SendQueue::open(1, dir.path().join("spill"), 30).unwrap();
        assert_eq!(queue.push(message(0)), Pushed::Memory);
        for i in 1..6 {
            queue.push(message(i));
            queue.spill.write_pending();
        }
        assert!(queue.held_up().is_some_and(|why| why.contains("limit")), "{:?}", queue.held_up());
        assert_eq!(queue.len(), 6, "nothing dropped");
        let mut sent = Vec::new();
        while !queue.is_empty() {
            sent.extend(drain(&mut queue, 1));
        }
        assert_eq!(sent, (0..6).map(message).collect::<Vec<_>>(), "all of them, in order");
    }

    #[test]
    fn what_a_run_leaves_is_adopted_by_the_next_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("spill");
        let (mut queue, _) = SendQueue::open(2, path.clone(), 1 << 20).unwrap();
        for i in 0..5 {
            queue.push(message(i));
        }
        assert_eq!(queue.persist().unwrap(), 5);
        drop(queue);
        let (mut queue, leftover) = SendQueue::open(2, path, 1 << 20).unwrap();
        assert_eq!(leftover.messages, 5);
        assert_eq!(leftover.next_seq[&VehicleId(5)], 5, "message 4 went to V0005");
        queue.push(message(5));
        let mut sent = Vec::new();
        while !queue.is_empty() {
            sent.extend(drain(&mut queue, 2));
        }
        assert_eq!(sent, (0..6).map(message).collect::<Vec<_>>());
    }
}
