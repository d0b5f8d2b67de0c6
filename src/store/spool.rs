//! Where rows wait while the database is down: a local file of JSON lines, appended and
//! synced to disk before the rows count as accepted, read back in order once the database
//! answers again, and emptied when all of it has landed.
//!
//! The first line names the run the rows belong to, and the writer holds an exclusive lock
//! on the file while it lives. A file left behind (the process crashed, was killed, or gave
//! up waiting for its database at exit) is unlocked and not empty: the next writer opened on
//! a database that holds that run adopts it and replays it ([`Spool::leftovers`]).

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{BufRead, BufReader, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{Row, StoreError};

/// The first line of a spool file.
#[derive(Debug, Serialize, Deserialize)]
struct Header {
    /// The file format's version.
    aegis_spool: u32,
    /// The run's name.
    run: String,
}

/// The spool file and how far replay has read it.
pub struct Spool {
    path: PathBuf,
    run: String,
    file: Option<File>,
    /// Bytes of the header line.
    header_len: u64,
    /// Byte offset of the first row not yet replayed.
    replayed_to: u64,
    /// Rows written and not yet replayed.
    waiting: u64,
}

impl Spool {
    /// A spool of run `run` at `path`; nothing is created until the first row is spooled.
    pub fn new(path: PathBuf, run: &str) -> Self {
        Self { path, run: run.to_owned(), file: None, header_len: 0, replayed_to: 0, waiting: 0 }
    }

    /// Spools left behind in folder `dir` (files named `PREFIX*.jsonl`): each unlocked,
    /// readable and holding rows, now locked by the spool returned. Files of another format
    /// or held by a live writer are passed over.
    pub fn leftovers(dir: &Path, prefix: &str) -> Vec<Spool> {
        let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
        let mut files: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.is_file() && p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with(prefix) && n.ends_with(".jsonl")))
            .collect();
        files.sort();
        files
            .into_iter()
            .filter_map(|path| {
                Self::adopt(path).unwrap_or_else(|e| {
                    tracing::warn!("{e}; left as it is");
                    None
                })
            })
            .collect()
    }

    /// The spool at `path` if no live writer holds it and rows wait in it; an empty one is
    /// removed.
    fn adopt(path: PathBuf) -> Result<Option<Spool>, StoreError> {
        let error = |source: std::io::Error| StoreError::Spool { path: path.display().to_string(), source };
        let mut file = OpenOptions::new().read(true).write(true).open(&path).map_err(error)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => return Ok(None),
            Err(TryLockError::Error(e)) => return Err(error(e)),
        }
        let mut reader = BufReader::new(&mut file);
        let mut line = String::new();
        reader.read_line(&mut line).map_err(error)?;
        let Ok(header) = serde_json::from_str::<Header>(line.trim_end()) else {
            return Ok(None);
        };
        let header_len = line.len() as u64;
        let mut waiting = 0;
        let mut complete = header_len;
        loop {
            line.clear();
            let n = reader.read_line(&mut line).map_err(error)?;
            if n == 0 || !line.ends_with('\n') {
                break;
            }
            waiting += 1;
            complete += n as u64;
        }
        drop(reader);
        // A line cut short by a crash mid-append was never accepted: cut it off, so that
        // rows appended after adoption start on a line of their own.
        file.set_len(complete).map_err(error)?;
        if waiting == 0 {
            drop(file);
            let _ = std::fs::remove_file(&path);
            return Ok(None);
        }
        Ok(Some(Spool { path, run: header.run, file: Some(file), header_len, replayed_to: header_len, waiting }))
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The run whose rows it holds.
    pub fn run(&self) -> &str {
        &self.run
    }

    /// Rows waiting to be replayed.
    pub fn waiting(&self) -> u64 {
        self.waiting
    }

    /// Whether nothing waits.
    pub fn is_empty(&self) -> bool {
        self.waiting == 0
    }

    fn error(&self, source: std::io::Error) -> StoreError {
        StoreError::Spool { path: self.path.display().to_string(), source }
    }

    /// Creates the file, locked, with its header. Rows another writer left at this path are
    /// moved aside first, never overwritten (the next writer on their database adopts them).
    fn create(&mut self) -> Result<File, StoreError> {
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| self.error(e))?;
        }
        if std::fs::metadata(&self.path).is_ok_and(|m| m.len() > 0) {
            let aside = self.path.with_extension(format!("{}.jsonl", crate::model::WallTime::now().unix_ms()));
            tracing::warn!("{} holds rows of an earlier writer; moved to {}", self.path.display(), aside.display());
            std::fs::rename(&self.path, &aside).map_err(|e| self.error(e))?;
        }
        let mut file = OpenOptions::new().create(true).read(true).write(true).truncate(true).open(&self.path).map_err(|e| self.error(e))?;
        file.try_lock().map_err(|e| self.error(e.into()))?;
        let mut header = serde_json::to_string(&Header { aegis_spool: 1, run: self.run.clone() }).expect("headers serialise");
        header.push('\n');
        file.write_all(header.as_bytes()).map_err(|e| self.error(e))?;
        self.header_len = header.len() as u64;
        self.replayed_to = self.header_len;
        Ok(file)
    }

    /// Appends `rows` and syncs them to disk.
    pub fn append(&mut self, rows: &[Row]) -> Result<(), StoreError> {
        if self.file.is_none() {
            self.file = Some(self.create()?);
        }
        let mut text = String::new();
        for row in rows {
            text += &serde_json::to_string(row).expect("rows always serialise");
            text.push('\n');
        }
        let file = self.file.as_mut().expect("opened above");
        let written = file.seek(SeekFrom::End(0)).and_then(|_| file.write_all(text.as_bytes())).and_then(|()| file.sync_data());
        written.map_err(|e| self.error(e))?;
        self.waiting += rows.len() as u64;
        Ok(())
    }

    /// Up to `limit` rows from where replay stands, and the offset after them. A line that
    /// does not read back as a row is returned as an error string in its place, so that it
    /// can be dead-lettered instead of stopping replay.
    pub fn peek(&mut self, limit: usize) -> Result<(Vec<Result<Row, String>>, u64), StoreError> {
        let start = self.replayed_to;
        let Some(file) = self.file.as_mut() else { return Ok((Vec::new(), start)) };
        let read = file.seek(SeekFrom::Start(start));
        read.map_err(|e| self.error(e))?;
        let mut reader = BufReader::new(self.file.as_mut().expect("checked above"));
        let mut rows = Vec::new();
        let mut offset = start;
        let mut line = String::new();
        while rows.len() < limit {
            line.clear();
            let n = match reader.read_line(&mut line) {
                Ok(n) => n,
                Err(e) => return Err(StoreError::Spool { path: self.path.display().to_string(), source: e }),
            };
            // A line without its newline was cut short by a crash mid-append: not accepted.
            if n == 0 || !line.ends_with('\n') {
                break;
            }
            offset += n as u64;
            rows.push(serde_json::from_str::<Row>(line.trim_end()).map_err(|e| format!("spool line unreadable: {e}: {}", line.trim_end())));
        }
        Ok((rows, offset))
    }

    /// Marks the rows [`peek`](Self::peek) returned as stored; empties the file (all but its
    /// header) once all are.
    pub fn consume(&mut self, rows: u64, offset: u64) -> Result<(), StoreError> {
        self.replayed_to = offset;
        self.waiting = self.waiting.saturating_sub(rows);
        if self.waiting == 0 {
            if let Some(file) = self.file.as_mut() {
                let emptied = file.set_len(self.header_len).and_then(|()| file.sync_data());
                emptied.map_err(|e| self.error(e))?;
            }
            self.replayed_to = self.header_len;
        }
        Ok(())
    }

    /// Removes the file if nothing waits in it.
    pub fn remove_if_empty(&mut self) {
        if self.waiting == 0 && self.file.take().is_some() {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::rows::Key;

    fn heartbeats(seqs: std::ops::Range<i64>) -> Vec<Row> {
        seqs.map(|seq| Row::Heartbeat(Key { time_ms: seq * 1000, vehicle: 1, seq, sim_time: seq as f64, wall_ms: 0 }, "ok".into(), 1.0)).collect()
    }

    #[test]
    fn a_spool_is_left_behind_only_once_its_writer_is_gone_and_a_cut_line_is_not_a_row() {
        let dir = tempfile::tempdir().unwrap();
        let mut spool = Spool::new(dir.path().join("aegis-spool-a.jsonl"), "run-a");
        spool.append(&heartbeats(0..3)).unwrap();
        assert!(Spool::leftovers(dir.path(), "aegis-spool-").is_empty(), "a live writer's spool is locked");
        drop(spool);
        // A crash in the middle of an append leaves a line without its newline.
        let mut file = OpenOptions::new().append(true).open(dir.path().join("aegis-spool-a.jsonl")).unwrap();
        file.write_all(b"{\"table\":\"heartbeat\"").unwrap();
        let mut left = Spool::leftovers(dir.path(), "aegis-spool-");
        assert_eq!(left.len(), 1);
        let adopted = &mut left[0];
        assert_eq!((adopted.run(), adopted.waiting()), ("run-a", 3));
        adopted.append(&heartbeats(3..4)).unwrap();
        let (rows, offset) = adopted.peek(10).unwrap();
        assert_eq!(rows.into_iter().collect::<Result<Vec<_>, _>>().unwrap(), heartbeats(0..4), "the cut line is gone");
        adopted.consume(4, offset).unwrap();
        adopted.remove_if_empty();
        assert!(Spool::leftovers(dir.path(), "aegis-spool-").is_empty());
    }

    #[test]
    fn rows_left_where_a_new_spool_goes_are_moved_aside_not_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("spool.jsonl");
        let mut first = Spool::new(path.clone(), "first");
        first.append(&heartbeats(0..2)).unwrap();
        drop(first);
        let mut second = Spool::new(path.clone(), "second");
        second.append(&heartbeats(5..6)).unwrap();
        drop(second);
        let mut runs: Vec<(String, u64)> = Spool::leftovers(dir.path(), "spool").iter().map(|s| (s.run().to_owned(), s.waiting())).collect();
        runs.sort();
        assert_eq!(runs, [("first".to_owned(), 2), ("second".to_owned(), 1)]);
    }
}
