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

/// A local emulator process on a free loopback port, killed when dropped.
struct Emulator {
    child: Child,
    port: u16,
}

impl Emulator {
    /// Starts the emulator `name` by running `relative` (a program `make setup` installs) with the
    /// arguments `args(port)` gives, and waits until it listens.
    fn start(name: &str, relative: &str, args: impl FnOnce(u16) -> Vec<String>) -> Self {
        let binary = repo_root().join(relative);
        assert!(binary.exists(), "{} is missing: run `make setup` (make test does it)", binary.display());
        let port = TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port();
        let child = Command::new(&binary)
            .args(args(port))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{name} ({}) does not start: {e}", binary.display()));
        let mut emulator = Self { child, port };
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = emulator.child.try_wait() {
                panic!("{name} exited while starting ({status}); try `make setup`, or run it by hand to see why");
            }
            assert!(started.elapsed() < Duration::from_secs(30), "{name} did not listen on port {port}");
            std::thread::sleep(Duration::from_millis(50));
        }
        emulator
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A moto server on a free loopback port, stopped when dropped.
pub struct MotoServer {
    _process: Emulator,
    pub endpoint: String,
}

impl MotoServer {
    /// Starts moto through `tools/moto_server.py` (moto's server plus the SSM operations it lacks,
    /// such as ListCommandInvocations) with `.venv/bin/python` (installed by `make setup`), and
    /// waits until it listens.
    pub fn start() -> Self {
        let script = repo_root().join("tools/moto_server.py");
        assert!(script.exists(), "{} is missing", script.display());
        let script = script.display().to_string();
        let process = Emulator::start("moto server (tools/moto_server.py)", ".venv/bin/python", |port| {
            vec![script, "-H".into(), "127.0.0.1".into(), "-p".into(), port.to_string()]
        });
        Self { endpoint: format!("http://127.0.0.1:{}", process.port), _process: process }
    }
}

/// The Slack Web API emulator (`emulate`, pinned in `tools/package.json`) on a free port, seeded
/// from `tools/slack-emulator.yaml`, stopped when dropped.
pub struct SlackEmulator {
    _process: Emulator,
    /// The Web API's base URL, ending in `/`.
    pub api_url: String,
}

impl SlackEmulator {
    /// Starts `tools/node_modules/.bin/emulate` (installed by `make setup`) and waits until it listens.
    pub fn start() -> Self {
        let seed = repo_root().join("tools/slack-emulator.yaml").display().to_string();
        let process = Emulator::start("Slack emulator (emulate)", "tools/node_modules/.bin/emulate", |port| {
            vec!["--service".into(), "slack".into(), "--port".into(), port.to_string(), "--seed".into(), seed]
        });
        Self { api_url: format!("http://127.0.0.1:{}/api/", process.port), _process: process }
    }
}
