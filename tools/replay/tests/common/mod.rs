//! What the tests that run `replay history` share: the binary against their emulators, and its
//! summary line.

use std::process::{Command, Output};

use serde_json::Value;
use workspace_tests::{MotoServer, SlackEmulator, repo_root};

/// `replay history ARGS`, as a tester runs it, against these emulators and the shipped rules.
pub fn replay_history(moto: &MotoServer, slack: &SlackEmulator, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_replay"))
        .arg("history")
        .args(args)
        .current_dir(repo_root())
        .env("AWS_ENDPOINT_URL", &moto.endpoint)
        .env("SLACK_API_URL", &slack.api_url)
        .env_remove("ROUTES_FILE")
        .output()
        .expect("replay runs")
}

/// The run's JSON summary (its last line on stdout); the run must have succeeded.
pub fn summary(output: &Output) -> Value {
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "exit {:?}\nstdout: {stdout}\nstderr: {stderr}", output.status);
    serde_json::from_str(stdout.lines().last().expect("a summary line")).expect("JSON summary")
}
