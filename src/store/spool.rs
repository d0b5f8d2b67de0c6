//! Where rows wait while the database is down: a local file of JSON lines, appended and
//! synced to disk before the rows count as accepted, read back in order once the database
//! answers again, and emptied when all of it has landed.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use super::{Row, StoreError};

/// The spool file and how far replay has read it.
pub struct Spool {
    path: PathBuf,
    file: Option<File>,
    /// Byte offset of the first row not yet replayed.
    replayed_to: u64,
    /// Rows written and not yet replayed.
    waiting: u64,
}

impl Spool {
    /// A spool at `path`; nothing is created until the first row is spooled. A file left there
    /// by an earlier process is replaced: its rows were either stored or are still pending on
    /// the bus that delivered them.
    pub fn new(path: PathBuf) -> Self {
        Self { path, file: None, replayed_to: 0, waiting: 0 }
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
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

    /// Appends `rows` and syncs them to disk.
    pub fn append(&mut self, rows: &[Row]) -> Result<(), StoreError> {
        if self.file.is_none() {
            if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).map_err(|e| self.error(e))?;
            }
            let file = OpenOptions::new().create(true).read(true).write(true).truncate(true).open(&self.path).map_err(|e| self.error(e))?;
            self.file = Some(file);
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
        let Some(file) = self.file.as_mut() else { return Ok((Vec::new(), 0)) };
        let start = self.replayed_to;
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

    /// Marks the rows [`peek`](Self::peek) returned as stored; empties the file once all are.
    pub fn consume(&mut self, rows: u64, offset: u64) -> Result<(), StoreError> {
        self.replayed_to = offset;
        self.waiting = self.waiting.saturating_sub(rows);
        if self.waiting == 0 {
            if let Some(file) = self.file.as_mut() {
                let emptied = file.set_len(0).and_then(|()| file.sync_data());
                emptied.map_err(|e| self.error(e))?;
            }
            self.replayed_to = 0;
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
