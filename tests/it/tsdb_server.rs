//! A throwaway TimescaleDB engine per test: the project's shared `tools/tsdb` (PGlite with the
//! TimescaleDB extension, over the PostgreSQL wire protocol) copied into a temp directory,
//! its one npm package installed there, serving an in-memory database on a free port; killed
//! when dropped. It takes one client at a time, so its URL asks for a pool of one.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

/// A running engine.
pub struct TsdbServer {
    port: u16,
    child: Child,
    _dir: tempfile::TempDir,
}

/// The engine's folder: `AEGIS_TSDB_DIR`, else `shared/tools/tsdb` beside the checkout, else
/// the workspace's.
fn source_dir() -> PathBuf {
    if let Ok(dir) = std::env::var("AEGIS_TSDB_DIR") {
        return PathBuf::from(dir);
    }
    let beside = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/tools/tsdb");
    if beside.join("tsdb-server.mjs").exists() {
        return beside;
    }
    PathBuf::from("/work/shared/tools/tsdb")
}

impl TsdbServer {
    /// Copies the engine, installs its package (from npm's cache after the first time) and
    /// starts it.
    pub fn start() -> Self {
        let source = source_dir();
        let dir = tempfile::tempdir().unwrap();
        let entries = std::fs::read_dir(&source).unwrap_or_else(|e| panic!("the TimescaleDB engine for tests at {} (set AEGIS_TSDB_DIR): {e}", source.display()));
        for entry in entries.filter_map(Result::ok).filter(|e| e.path().is_file()) {
            std::fs::copy(entry.path(), dir.path().join(entry.file_name())).unwrap();
        }
        let status = Command::new("npm")
            .args(["install", "--no-audit", "--no-fund", "--prefer-offline", "--loglevel", "error"])
            .current_dir(dir.path())
            .stdout(Stdio::null())
            .status()
            .unwrap_or_else(|e| panic!("npm, for the TimescaleDB engine (.ci/setup installs Node.js): {e}"));
        assert!(status.success(), "npm install in the TimescaleDB engine's folder failed");
        let mut child = Command::new("node")
            .arg(dir.path().join("tsdb-server.mjs"))
            .arg("0")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("node, for the TimescaleDB engine: {e}"));
        // It prints `LISTENING <port>` once it accepts connections.
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let port = line.trim().strip_prefix("LISTENING ").and_then(|p| p.parse().ok()).unwrap_or_else(|| panic!("the TimescaleDB engine said `{line}`, not LISTENING <port>"));
        Self { port, child, _dir: dir }
    }

    /// Its database, for a pool of one, with hour-long chunks so that tests of a few hours
    /// have whole chunks to compress and drop.
    pub fn url(&self) -> String {
        self.url_with_chunks("1h")
    }

    /// Its database, for a pool of one, with chunks of `interval` (humantime: `3h`).
    pub fn url_with_chunks(&self, interval: &str) -> String {
        format!("postgres://postgres:aegis@127.0.0.1:{}/postgres?max_connections=1&chunk_interval={interval}", self.port)
    }
}

impl Drop for TsdbServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
