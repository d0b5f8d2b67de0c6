//! A throwaway PostgreSQL cluster per test: `initdb` in a temp directory, `pg_ctl` on a free
//! port with its socket there too, stopped (immediately) and removed when dropped. The server
//! binaries come from Debian's PostgreSQL package, which keeps them off PATH. PostgreSQL will
//! not run as root: as root, the cluster is the `postgres` user's (through `runuser`).

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Command, Stdio};

/// A running cluster.
pub struct PostgresServer {
    pub port: u16,
    bin: PathBuf,
    dir: tempfile::TempDir,
}

/// The directory holding `initdb` and `pg_ctl`: `AEGIS_PG_BIN`, else the newest
/// `/usr/lib/postgresql/N/bin`, else PATH.
fn bin_dir() -> PathBuf {
    if let Ok(dir) = std::env::var("AEGIS_PG_BIN") {
        return PathBuf::from(dir);
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|dirs| dirs.filter_map(|d| d.ok()).map(|d| d.path().join("bin")).filter(|bin| bin.join("initdb").exists()).collect())
        .unwrap_or_default();
    found.sort();
    found.pop().unwrap_or_default()
}

/// Whether this process runs as root.
fn is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|out| String::from_utf8_lossy(&out.stdout).trim() == "0")
}

/// `program` from the server's binaries, as the `postgres` user when we are root.
fn server_command(bin: &std::path::Path, program: &str) -> Command {
    if is_root() {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--"]).arg(bin.join(program));
        command
    } else {
        Command::new(bin.join(program))
    }
}

impl PostgresServer {
    /// Initialises a cluster (trust authentication, user `postgres`) and starts it.
    pub fn start() -> Self {
        let bin = bin_dir();
        let dir = tempfile::tempdir().unwrap();
        if is_root() {
            let status = Command::new("chown").args(["postgres:postgres"]).arg(dir.path()).status().unwrap();
            assert!(status.success(), "chown the cluster's directory to postgres");
        }
        let status = server_command(&bin, "initdb")
            .args(["-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8", "--locale", "C", "-D"])
            .arg(dir.path().join("data"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap_or_else(|e| panic!("initdb from {} (install Debian's postgresql package, or set AEGIS_PG_BIN): {e}", bin.display()));
        assert!(status.success(), "initdb failed");
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let server = Self { port, bin, dir };
        server.restart();
        server
    }

    /// `postgres://postgres@127.0.0.1:PORT/DB`, creating the database first.
    pub fn database(&self, name: &str) -> String {
        let url = format!("postgres://postgres@127.0.0.1:{}/postgres", self.port);
        let status = Command::new(self.bin.join("psql"))
            .args(["-q", "-d", &url, "-c", &format!("CREATE DATABASE {name}")])
            .stdout(Stdio::null())
            .status()
            .or_else(|_| Command::new("psql").args(["-q", "-d", &url, "-c", &format!("CREATE DATABASE {name}")]).stdout(Stdio::null()).status())
            .unwrap();
        assert!(status.success(), "CREATE DATABASE {name}");
        format!("postgres://postgres@127.0.0.1:{}/{name}", self.port)
    }

    /// Starts the server (again) and waits until it accepts connections.
    pub fn restart(&self) {
        let options = format!("-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off", self.port, self.dir.path().display());
        let status = server_command(&self.bin, "pg_ctl")
            .args(["-w", "-s", "-t", "60", "-D"])
            .arg(self.dir.path().join("data"))
            .args(["-l"])
            .arg(self.dir.path().join("log"))
            .args(["-o", &options, "start"])
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "pg_ctl start: {}", std::fs::read_to_string(self.dir.path().join("log")).unwrap_or_default());
    }

    /// Stops the server at once, dropping its connections, as a crash or an outage would.
    pub fn stop(&self) {
        let status = server_command(&self.bin, "pg_ctl")
            .args(["-w", "-s", "-m", "immediate", "-D"])
            .arg(self.dir.path().join("data"))
            .arg("stop")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "pg_ctl stop");
    }
}

impl Drop for PostgresServer {
    fn drop(&mut self) {
        let _ = server_command(&self.bin, "pg_ctl")
            .args(["-w", "-s", "-m", "immediate", "-D"])
            .arg(self.dir.path().join("data"))
            .arg("stop")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}
