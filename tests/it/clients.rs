//! The official Elasticsearch clients against the real binary: each runs the whole workflow script
//! of `tests/clients/` (put job, open, post data, flush with each parameter, results, stats,
//! snapshots list/update/revert/delete, update, reset, close, delete) and asserts what it gets; then
//! each runs its security script against a secured binary (basic auth, API keys, 401 and 403).
//!
//! The clients are installed by `.ci/run` under `target/clients/` (a venv per Python client major
//! version, an npm folder for Node.js). When one is not installed its test prints a note and passes,
//! so `cargo test` works on a bare toolchain; with `AUSPEX_REQUIRE_CLIENTS=1` (what `.ci/run` sets)
//! a missing client fails instead.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::util::BinaryServer;

/// The longest one client's workflow may take.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(300);

fn clients_dir() -> PathBuf {
    std::env::var_os("AUSPEX_CLIENTS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target/clients"))
}

fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/clients")
        .join(name)
}

/// The `elastic` password of the secured server the security scripts run against.
const PASSWORD: &str = "client-test-pw";

/// Runs `command` (with the server's URL as its last argument) against a fresh binary; panics with
/// the client's output unless it exits 0 and reports every step passed.
fn run_client(label: &str, command: Command) {
    run_against(label, command, BinaryServer::start(&[]), &[]);
}

/// As [`run_client`], against a secured binary (`elastic` has [`PASSWORD`], the script's second
/// argument).
fn run_secured_client(label: &str, command: Command) {
    let server = BinaryServer::start_secured(Some(PASSWORD), Stdio::inherit());
    run_against(label, command, server, &[PASSWORD]);
}

fn run_against(label: &str, mut command: Command, server: BinaryServer, extra: &[&str]) {
    command
        .arg(&server.client.base_url)
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().expect("the client runtime starts");
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait on the client") {
            break status;
        }
        if started.elapsed() > CLIENT_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{label}: the workflow did not finish within {CLIENT_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let output = child.wait_with_output().expect("client output");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        status.success(),
        "{label} failed ({status}):\n--- stdout\n{stdout}\n--- stderr\n{stderr}"
    );
    let summary = stdout.lines().last().unwrap_or_default();
    assert!(
        summary.ends_with("passed, 0 failed"),
        "{label}: no summary line:\n{stdout}"
    );
    eprintln!("{label}: {summary}");
}

/// `Some(path)` when installed; otherwise a printed note (or a failure when clients are required).
fn installed(label: &str, path: PathBuf) -> Option<PathBuf> {
    if path.exists() {
        return Some(path);
    }
    let required = std::env::var("AUSPEX_REQUIRE_CLIENTS").is_ok_and(|v| v == "1");
    assert!(
        !required,
        "{label} is not installed at {} (run .ci/run to install the clients)",
        path.display()
    );
    eprintln!(
        "NOTE: {label} not installed at {}; skipping its workflow (.ci/run installs it)",
        path.display()
    );
    None
}

fn python_client(major: u32) {
    let label = format!("Python elasticsearch {major}.x");
    let venv = clients_dir().join(format!("py{major}"));
    let Some(python) = installed(&label, venv.join("bin/python")) else {
        return;
    };
    let mut command = Command::new(&python);
    command.arg(script("python_workflow.py"));
    run_client(&label, command);
    let mut command = Command::new(python);
    command.arg(script("python_security.py"));
    run_secured_client(&format!("{label}, secured"), command);
}

#[test]
fn python_client_8() {
    python_client(8);
}

#[test]
fn python_client_7() {
    python_client(7);
}

#[test]
fn python_client_9() {
    python_client(9);
}

#[test]
fn node_client_8() {
    let label = "Node.js @elastic/elasticsearch 8.x";
    let modules = clients_dir().join("node/node_modules");
    if installed(label, modules.join("@elastic/elasticsearch")).is_none() {
        return;
    }
    let mut command = Command::new("node");
    command
        .env("NODE_PATH", &modules)
        .arg(script("node_workflow.js"));
    run_client(label, command);
    let mut command = Command::new("node");
    command
        .env("NODE_PATH", &modules)
        .arg(script("node_security.js"));
    run_secured_client(&format!("{label}, secured"), command);
}
