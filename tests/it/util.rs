//! Test servers and a small client.
//!
//! - [`TestServer`]: `auspex::server::run` in-process on `127.0.0.1:0`, over `Store::temporary()`;
//!   `stop()` triggers the graceful shutdown and waits for `run` to return.
//! - [`BinaryServer`]: the real `auspex` binary with a temporary data path and `--listen
//!   127.0.0.1:0`; reads the `listening on http://ADDR` line; killed on drop.
//! - [`Reply`]: status, headers and body of one answer, with `json()`.
//!
//! Both servers run with security off (`--no-security`) unless a test asks for a secured one
//! ([`TestServer::start_secured`], [`BinaryServer::start_secured`]): their client then sends the
//! `elastic` user's Basic credentials; [`Client::as_user`], [`Client::with_api_key`] and
//! [`Client::anonymous`] make clients that send other credentials or none.

#![allow(dead_code)] // Not every test module uses every helper.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::time::Duration;

use auspex::api::AppState;
use auspex::config::Config;
use auspex::job::JobManager;
use auspex::security::Security;
use auspex::store::Store;
use bytes::Bytes;
use clap::Parser;
use reqwest::header::{HeaderMap, CONTENT_TYPE};
use reqwest::Method;
use serde_json::{json, Value};
use tempfile::TempDir;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// How long a test waits for a server to start or stop.
pub const TIMEOUT: Duration = Duration::from_secs(30);

/// One HTTP answer.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    /// The body as JSON; panics with the body text when it is not.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {}", self.text()))
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The `(type, reason)` of an Elasticsearch error envelope, checking the envelope's shape.
    pub fn es_error(&self) -> (String, String) {
        let body = self.json();
        assert_eq!(body["status"], self.status, "envelope status: {body}");
        let error = &body["error"];
        assert_eq!(error["root_cause"][0]["type"], error["type"], "{body}");
        assert_eq!(error["root_cause"][0]["reason"], error["reason"], "{body}");
        (
            error["type"].as_str().unwrap_or_default().to_string(),
            error["reason"].as_str().unwrap_or_default().to_string(),
        )
    }
}

/// A client bound to one server's base URL, sending one `Authorization` header (or none).
#[derive(Clone)]
pub struct Client {
    pub base_url: String,
    http: reqwest::Client,
    authorization: Option<String>,
}

/// The password secured test servers give `elastic`.
pub const ELASTIC_PASSWORD: &str = "elastic-test-pw";

impl Client {
    pub fn new(base_url: String) -> Client {
        Client {
            base_url,
            http: reqwest::Client::new(),
            authorization: None,
        }
    }

    /// The same server, as `username` with Basic credentials.
    pub fn as_user(&self, username: &str, password: &str) -> Client {
        use base64::Engine;
        let encoded =
            base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"));
        self.with_authorization(Some(format!("Basic {encoded}")))
    }

    /// The same server, with an API key (`encoded` as `POST /_security/api_key` returns it).
    pub fn with_api_key(&self, encoded: &str) -> Client {
        self.with_authorization(Some(format!("ApiKey {encoded}")))
    }

    /// The same server, without credentials.
    pub fn anonymous(&self) -> Client {
        self.with_authorization(None)
    }

    fn with_authorization(&self, authorization: Option<String>) -> Client {
        Client {
            authorization,
            ..self.clone()
        }
    }

    /// A request builder for anything the helpers below do not cover.
    pub fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        let builder = self
            .http
            .request(method, format!("{}{path}", self.base_url));
        match &self.authorization {
            Some(value) => builder.header(reqwest::header::AUTHORIZATION, value),
            None => builder,
        }
    }

    pub async fn send(&self, builder: reqwest::RequestBuilder) -> Reply {
        let response = builder.send().await.expect("request reaches the server");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response.bytes().await.expect("response body");
        Reply {
            status,
            headers,
            body,
        }
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.send(self.request(Method::GET, path)).await
    }

    pub async fn delete(&self, path: &str) -> Reply {
        self.send(self.request(Method::DELETE, path)).await
    }

    pub async fn put_json(&self, path: &str, body: &Value) -> Reply {
        self.send(self.request(Method::PUT, path).json(body)).await
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> Reply {
        self.send(self.request(Method::POST, path).json(body)).await
    }

    /// `POST` with no body.
    pub async fn post(&self, path: &str) -> Reply {
        self.send(self.request(Method::POST, path)).await
    }

    /// `POST` of raw bytes with the given content type (e.g. NDJSON for `_data`).
    pub async fn post_raw(&self, path: &str, content_type: &str, body: impl Into<Bytes>) -> Reply {
        let builder = self
            .request(Method::POST, path)
            .header(CONTENT_TYPE, content_type)
            .body(body.into());
        self.send(builder).await
    }
}

/// An in-process server.
pub struct TestServer {
    pub address: SocketAddr,
    pub client: Client,
    pub state: Arc<AppState>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
    _data: TempDir,
}

impl TestServer {
    /// Security off.
    pub async fn start() -> TestServer {
        TestServer::start_with(|_| {}).await
    }

    /// Starts with a config adjusted by `configure` (the defaults with security off, a temporary
    /// data path).
    /// Security on (as [`TestServer::start_secured`]) with a changed config.
    pub async fn start_with_security(configure: impl FnOnce(&mut Config)) -> TestServer {
        TestServer::start_full(configure, None).await
    }

    pub async fn start_with(configure: impl FnOnce(&mut Config)) -> TestServer {
        TestServer::start_full(
            |config| {
                config.security.enabled = false;
                configure(config);
            },
            None,
        )
        .await
    }

    /// Security on: `elastic` has [`ELASTIC_PASSWORD`], and the client sends it.
    pub async fn start_secured() -> TestServer {
        TestServer::start_full(|_| {}, None).await
    }

    /// Security on and HTTPS with `tls` (the client is left to the test).
    pub async fn start_tls(tls: tokio_rustls::TlsAcceptor) -> TestServer {
        TestServer::start_full(|_| {}, Some(tls)).await
    }

    async fn start_full(
        configure: impl FnOnce(&mut Config),
        tls: Option<tokio_rustls::TlsAcceptor>,
    ) -> TestServer {
        let data = tempfile::tempdir().expect("temporary data path");
        let data_arg = data.path().to_str().expect("utf-8 temp path").to_string();
        let mut config =
            Config::parse_from(["auspex", "--listen", "127.0.0.1:0", "--data", &data_arg]);
        configure(&mut config);
        let store = Store::temporary().expect("temporary store");
        let security = Security::new(store.clone(), config.security.enabled)
            .expect("security")
            .with_login_throttle(config.security.login);
        if config.security.enabled {
            security
                .bootstrap(Some(ELASTIC_PASSWORD))
                .expect("the elastic user");
        }
        let jobs = JobManager::start_with(store, config.max_empty_buckets)
            .await
            .expect("job manager starts");
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = listener.local_addr().expect("bound address");
        let scheme = if tls.is_some() { "https" } else { "http" };
        let client = Client::new(format!("{scheme}://{address}"));
        let client = if config.security.enabled {
            client.as_user("elastic", ELASTIC_PASSWORD)
        } else {
            client
        };
        let state = Arc::new(AppState {
            config,
            jobs,
            security: Arc::new(security),
        });
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(auspex::server::run_tls(
            listener,
            Arc::clone(&state),
            tls,
            async {
                let _ = stopped.await;
            },
        ));
        TestServer {
            address,
            client,
            state,
            stop: Some(stop),
            task: Some(task),
            _data: data,
        }
    }

    /// Graceful shutdown; panics unless `run` returns within [`TIMEOUT`].
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            tokio::time::timeout(TIMEOUT, task)
                .await
                .expect("server stops in time")
                .expect("server task does not panic");
        }
    }
}

impl std::ops::Deref for TestServer {
    type Target = Client;

    fn deref(&self) -> &Client {
        &self.client
    }
}

/// The real binary.
pub struct BinaryServer {
    pub client: Client,
    child: Child,
    data: Option<TempDir>,
}

/// Runs `auspex` with `args` to completion (for startup failures); returns status and stderr.
pub fn run_binary(args: &[&str]) -> (ExitStatus, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_auspex"))
        .args(args)
        .env_remove("AUSPEX_LISTEN")
        .env_remove("AUSPEX_DATA")
        .stdin(Stdio::null())
        .output()
        .expect("the binary runs");
    (
        output.status,
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// `auspex verify --data <data>`: its exit code and stdout + stderr.
pub fn verify_store(data: &std::path::Path) -> (Option<i32>, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_auspex"))
        .arg("verify")
        .arg("--data")
        .arg(data)
        .env_remove("AUSPEX_DATA")
        .stdin(Stdio::null())
        .output()
        .expect("the binary runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.code(), text)
}

impl BinaryServer {
    /// Starts the binary on a temporary data path with `args`; waits for its address line.
    pub fn start(args: &[&str]) -> BinaryServer {
        let data = tempfile::tempdir().expect("temporary data path");
        BinaryServer::start_on(data, args)
    }

    /// As [`BinaryServer::start`], on an existing data path (for restarts). `args` come first, so
    /// they may start with a subcommand (`serve`).
    pub fn start_on(data: TempDir, args: &[&str]) -> BinaryServer {
        let mut command = Command::new(env!("CARGO_BIN_EXE_auspex"));
        command.args(args);
        BinaryServer::spawn(command, data)
    }

    /// As [`BinaryServer::start_on`], with files limited to `blocks` 512-byte blocks (`ulimit -f`,
    /// SIGXFSZ ignored): a write past it fails with EFBIG, as on a full disk.
    pub fn start_with_file_limit(data: TempDir, blocks: u64) -> BinaryServer {
        let mut command = Command::new("sh");
        command
            .arg("-c")
            .arg(format!(
                "trap '' XFSZ; ulimit -f {blocks}; exec \"$0\" \"$@\""
            ))
            .arg(env!("CARGO_BIN_EXE_auspex"));
        BinaryServer::spawn(command, data)
    }

    /// Starts the binary with security on (`AUSPEX_PASSWORD` = `password`, or a generated one
    /// when `None`) on a temporary data path; stderr goes to `stderr`. The client sends no
    /// credentials.
    pub fn start_secured(password: Option<&str>, stderr: Stdio) -> BinaryServer {
        let data = tempfile::tempdir().expect("temporary data path");
        let command = Command::new(env!("CARGO_BIN_EXE_auspex"));
        BinaryServer::spawn_with(command, data, Some(password), stderr)
    }

    /// Starts `command` (the binary, or a wrapper that execs it) with `--listen` and `--data` added,
    /// security off.
    pub fn spawn(command: Command, data: TempDir) -> BinaryServer {
        BinaryServer::spawn_with(command, data, None, Stdio::inherit())
    }

    /// As [`BinaryServer::spawn`]; `secured` = `Some(password)` turns security on.
    pub fn spawn_with(
        command: Command,
        data: TempDir,
        secured: Option<Option<&str>>,
        stderr: Stdio,
    ) -> BinaryServer {
        match BinaryServer::try_spawn_with(command, data, secured, stderr) {
            Ok(server) => server,
            Err((status, _)) => panic!("auspex exited ({status}) before printing its address"),
        }
    }

    /// As [`BinaryServer::start_on`], for a start that may fail: the exit status and the data
    /// path back when the binary exits before printing its address.
    pub fn try_start_on(data: TempDir) -> Result<BinaryServer, (ExitStatus, TempDir)> {
        let command = Command::new(env!("CARGO_BIN_EXE_auspex"));
        BinaryServer::try_spawn_with(command, data, None, Stdio::inherit())
    }

    fn try_spawn_with(
        mut command: Command,
        data: TempDir,
        secured: Option<Option<&str>>,
        stderr: Stdio,
    ) -> Result<BinaryServer, (ExitStatus, TempDir)> {
        command.env_remove("AUSPEX_PASSWORD");
        match secured {
            None => {
                command.env("AUSPEX_SECURITY", "false");
            }
            Some(password) => {
                command.env("AUSPEX_SECURITY", "true");
                if let Some(password) = password {
                    command.env("AUSPEX_PASSWORD", password);
                }
            }
        }
        let mut child = command
            .arg("--listen")
            .arg("127.0.0.1:0")
            .arg("--data")
            .arg(data.path())
            .env_remove("AUSPEX_LISTEN")
            .env_remove("AUSPEX_DATA")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("the binary starts");
        let stdout = child.stdout.take().expect("piped stdout");
        let (line_tx, line_rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = line_tx.send(line);
        });
        let line = match line_rx.recv_timeout(TIMEOUT) {
            Ok(line) => line,
            Err(_) => {
                let _ = child.kill();
                panic!("auspex printed no address line within {TIMEOUT:?}");
            }
        };
        if line.is_empty() {
            // stdout closed without a line: the binary exited (a startup failure).
            let status = child.wait().expect("wait on child");
            return Err((status, data));
        }
        let base_url = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| {
                let _ = child.kill();
                panic!("unexpected first stdout line: {line:?}")
            })
            .to_string();
        Ok(BinaryServer {
            client: Client::new(base_url),
            child,
            data: Some(data),
        })
    }

    /// Sends SIGTERM and waits for the exit; hands back the data path (for a restart).
    pub fn terminate(mut self) -> (ExitStatus, TempDir) {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill runs");
        assert!(sent.success(), "SIGTERM delivered");
        let deadline = std::time::Instant::now() + TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait on child") {
                let data = self.data.take().expect("data path present until terminate");
                return (status, data);
            }
            assert!(
                std::time::Instant::now() < deadline,
                "auspex did not exit within {TIMEOUT:?} of SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl BinaryServer {
    /// The data path the server runs on.
    pub fn data_path(&self) -> std::path::PathBuf {
        self.data
            .as_ref()
            .map(|d| d.path().to_path_buf())
            .expect("data path present until kill or terminate")
    }

    /// The process id (for reading `/proc/<pid>/status`).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL: the process dies at once, mid-whatever; hands back the data path (for a restart).
    pub fn kill(mut self) -> TempDir {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.data.take().expect("data path present until kill")
    }
}

impl Drop for BinaryServer {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

impl std::ops::Deref for BinaryServer {
    type Target = Client;

    fn deref(&self) -> &Client {
        &self.client
    }
}

/// Runs `docs` (each with an epoch-seconds `time`) through a fresh job with one `detector` and
/// hourly buckets, flushed to the end of the last document's hour; returns every record.
pub async fn run_hourly_job(
    client: &Client,
    job: &str,
    detector: Value,
    docs: &[Value],
) -> Vec<Value> {
    let config = json!({
        "analysis_config": {"bucket_span": "1h", "detectors": [detector]},
        "data_description": {"time_field": "time", "time_format": "epoch"}
    });
    let put = client
        .put_json(&format!("/_ml/anomaly_detectors/{job}"), &config)
        .await;
    assert_eq!(put.status, 200, "{}", put.text());
    let open = client
        .post(&format!("/_ml/anomaly_detectors/{job}/_open"))
        .await;
    assert_eq!(open.status, 200, "{}", open.text());
    let body: String = docs.iter().map(|d| format!("{d}\n")).collect();
    let posted = client
        .post_raw(
            &format!("/_ml/anomaly_detectors/{job}/_data"),
            "application/x-ndjson",
            body,
        )
        .await;
    assert!(
        posted.status == 200 || posted.status == 202,
        "{}",
        posted.text()
    );
    let end = docs
        .iter()
        .filter_map(|d| d["time"].as_i64())
        .max()
        .unwrap_or(0)
        / 3600
        * 3600
        + 3600;
    let flush = client
        .post_json(
            &format!("/_ml/anomaly_detectors/{job}/_flush"),
            &json!({"advance_time": end.to_string()}),
        )
        .await;
    assert_eq!(flush.status, 200, "{}", flush.text());
    let records = client
        .get(&format!(
            "/_ml/anomaly_detectors/{job}/results/records?size=10000"
        ))
        .await;
    assert_eq!(records.status, 200, "{}", records.text());
    records.json()["records"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}
