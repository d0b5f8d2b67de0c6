//! A throwaway redis-server per test: its own port and data directory, AOF with
//! `appendfsync always` as docker-compose.yml ships it, killed when dropped. And the `aegis`
//! processes the tests start against it.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aegis::bus::keys::{Family, Keys};

/// A redis-server child process.
pub struct RedisServer {
    pub port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl RedisServer {
    /// Starts a server on a free port in a new temp directory and waits until it answers.
    pub fn start() -> Self {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut server = Self { port, dir: tempfile::tempdir().unwrap(), child: None };
        server.restart();
        server
    }

    /// `redis://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Starts (again) on the same port and data directory, and waits until it has loaded its
    /// data and answers.
    pub fn restart(&mut self) {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "yes", "--appendfsync", "always"])
            .arg("--dir")
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server is on PATH");
        self.child = Some(child);
        wait_until(Duration::from_secs(20), "redis-server answers PING", || {
            let Ok(client) = redis::Client::open(self.url()) else { return false };
            let Ok(mut connection) = client.get_connection() else { return false };
            redis::cmd("PING").query::<String>(&mut connection).is_ok()
        });
    }

    /// SIGKILL: no shutdown, no final save.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }

    /// A plain connection for the test's own checks.
    pub fn connection(&self) -> redis::Connection {
        redis::Client::open(self.url()).unwrap().get_connection().unwrap()
    }

    /// Entries in all partitions of one stream family of prefix `aegis`.
    pub fn entries(&self, family: Family) -> u64 {
        let mut connection = self.connection();
        Keys::new("aegis").streams(family).iter().map(|stream| redis::cmd("XLEN").arg(stream).query::<u64>(&mut connection).unwrap_or(0)).sum()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Polls `condition` until it holds; panics naming `what` after `limit`. Waits for a state,
/// never for a fixed time.
/// Held by tests whose processes race simulated against wall time (a fleet at hundreds of times
/// real time answering an orchestrator that ticks once a wall second): two of them at once on
/// a two-core machine starve each other, so they take turns.
pub fn one_paced_test_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    static PACED: std::sync::Mutex<()> = std::sync::Mutex::new(());
    PACED.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

pub fn wait_until(limit: Duration, what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// An `aegis` child process with its stderr in a file and its summary path.
pub struct Aegis {
    pub child: Child,
    pub summary: PathBuf,
    pub log: PathBuf,
}

impl Aegis {
    /// Starts `aegis ARGS --summary DIR/NAME.json`, stderr to DIR/NAME.log.
    pub fn start(dir: &Path, name: &str, args: &[&str]) -> Self {
        let summary = dir.join(format!("{name}.json"));
        let log = dir.join(format!("{name}.log"));
        let child = Command::new(env!("CARGO_BIN_EXE_aegis"))
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .args(args)
            .arg("--summary")
            .arg(&summary)
            .env("AEGIS_LOG", "info")
            // Each test's producers keep their spill files and sequence records to themselves.
            .env("AEGIS_SPILL_DIR", dir.join("spill"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        Self { child, summary, log }
    }

    /// Sends a signal by name (TERM, KILL, STOP, CONT).
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill").arg(format!("-{name}")).arg(self.child.id().to_string()).status().unwrap();
        assert!(status.success());
    }

    /// Waits for exit; panics with the log unless it exited 0. Returns the summary.
    pub fn finish(mut self) -> serde_json::Value {
        let status = self.child.wait().unwrap();
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        assert!(status.success(), "exit {status}:\n{log}");
        let text = std::fs::read_to_string(&self.summary).unwrap_or_else(|e| panic!("{}: {e}\n{log}", self.summary.display()));
        serde_json::from_str(&text).unwrap()
    }

    /// Waits for exit, whatever its status; returns the status and the log.
    pub fn exit(mut self) -> (std::process::ExitStatus, String) {
        let status = self.child.wait().unwrap();
        (status, self.log())
    }

    /// The log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Aegis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
