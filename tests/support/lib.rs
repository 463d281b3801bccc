//! Helpers for the workspace-level tests: paths into the repository, and a moto server or a Slack
//! API emulator per test.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A file of the repository, read as text.
pub fn read(relative: &str) -> String {
    let path = repo_root().join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A sample event from `events/`.
pub fn event(relative: &str) -> serde_json::Value {
    serde_json::from_str(&read(&format!("events/{relative}"))).unwrap_or_else(|e| panic!("{relative}: {e}"))
}

/// A moto server on a free loopback port, stopped when dropped.
pub struct MotoServer {
    child: Child,
    pub endpoint: String,
}

impl MotoServer {
    /// Starts `.venv/bin/moto_server` (installed by `make setup`) and waits until it listens.
    pub fn start() -> Self {
        let binary = repo_root().join(".venv/bin/moto_server");
        assert!(binary.exists(), "{} is missing: run `make setup` (make test does it)", binary.display());
        let port = TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port();
        let child = Command::new(binary)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("moto_server starts");
        let server = Self { child, endpoint: format!("http://127.0.0.1:{port}") };
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(started.elapsed() < Duration::from_secs(30), "moto_server did not listen on port {port}");
            std::thread::sleep(Duration::from_millis(50));
        }
        server
    }
}

impl Drop for MotoServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The Slack Web API emulator (`emulate`, pinned in `tools/package.json`) on a free port, seeded
/// from `tools/slack-emulator.yaml`, stopped when dropped.
pub struct SlackEmulator {
    child: Child,
    /// The Web API's base URL, ending in `/`.
    pub api_url: String,
}

impl SlackEmulator {
    /// Starts `tools/node_modules/.bin/emulate` (installed by `make setup`) and waits until it listens.
    pub fn start() -> Self {
        let binary = repo_root().join("tools/node_modules/.bin/emulate");
        assert!(binary.exists(), "{} is missing: run `make setup` (make test does it)", binary.display());
        let seed = repo_root().join("tools/slack-emulator.yaml");
        let port = TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port();
        let child = Command::new(binary)
            .args(["--service", "slack", "--port", &port.to_string(), "--seed"])
            .arg(&seed)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("emulate starts");
        let emulator = Self { child, api_url: format!("http://127.0.0.1:{port}/api/") };
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(started.elapsed() < Duration::from_secs(30), "emulate did not listen on port {port}");
            std::thread::sleep(Duration::from_millis(50));
        }
        emulator
    }
}

impl Drop for SlackEmulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
