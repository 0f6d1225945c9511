//! Security of the real binary and the wire: the first start's `elastic` password (generated and
//! printed once, or taken from `AUSPEX_PASSWORD`), the audit log of a refused request, and HTTPS
//! with a generated certificate.

use std::fs::File;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::rustls::crypto::ring::default_provider;
use tokio_rustls::rustls::pki_types::ServerName;
use tokio_rustls::rustls::{ClientConfig, RootCertStore};
use tokio_rustls::TlsConnector;

use crate::util::{BinaryServer, TestServer, ELASTIC_PASSWORD};

const BANNER: &str = "Created the superuser [elastic] with the password";

/// Starts the secured binary on `data` with stderr into `log`.
fn start(data: tempfile::TempDir, password: Option<&str>, log: &Path) -> BinaryServer {
    let stderr = File::create(log).expect("log file");
    let command = Command::new(env!("CARGO_BIN_EXE_auspex"));
    BinaryServer::spawn_with(command, data, Some(password), Stdio::from(stderr))
}

fn read(log: &Path) -> String {
    std::fs::read_to_string(log).expect("log readable")
}

/// The generated password: the first non-empty line after the banner.
fn printed_password(log: &str) -> String {
    let after = log.split(BANNER).nth(1).expect("the banner");
    after
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .expect("a password line")
        .to_string()
}

#[tokio::test]
async fn first_start_prints_a_generated_password_once_and_denials_are_audited() {
    let logs = tempfile::tempdir().expect("log dir");
    let first_log = logs.path().join("first.log");
    let server = start(tempfile::tempdir().expect("data"), None, &first_log);
    let password = printed_password(&read(&first_log));
    assert_eq!(password.len(), 20);
    assert!(password.chars().all(|c| c.is_ascii_alphanumeric()));
    let elastic = server.as_user("elastic", &password);
    let who = elastic.get("/_security/_authenticate").await.json();
    assert_eq!(who["username"], "elastic");
    assert_eq!(who["roles"], json!(["superuser"]));
    assert_eq!(server.get("/_ml/info").await.status, 401);
    let guess = server.as_user("elastic", "guessed-password");
    assert_eq!(guess.get("/_ml/info").await.status, 401);

    let body = json!({"password": "user-secret-1", "roles": ["machine_learning_user"]});
    assert_eq!(
        elastic
            .put_json("/_security/user/viewer", &body)
            .await
            .status,
        200
    );
    let viewer = server.as_user("viewer", "user-secret-1");
    assert_eq!(viewer.get("/_ml/anomaly_detectors").await.status, 200);
    assert_eq!(
        viewer.post("/_ml/anomaly_detectors/j1/_flush").await.status,
        403
    );
    let (status, data) = server.terminate();
    assert!(status.success());
    let log = read(&first_log);
    assert_eq!(log.matches(BANNER).count(), 1);
    let denials: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("auspex::audit") && l.contains("event=\"access_denied\""))
        .collect();
    assert_eq!(denials.len(), 1, "{log}");
    for part in [
        "user=viewer",
        "roles=machine_learning_user",
        "action=\"cluster:admin/xpack/ml/job/flush\"",
        "uri=\"/_ml/anomaly_detectors/j1/_flush\"",
    ] {
        assert!(denials[0].contains(part), "{part} not in {}", denials[0]);
    }
    assert!(log.contains("event=\"authentication_failed\" principal=\"elastic\""));
    for secret in ["user-secret-1", "guessed-password"] {
        assert!(!log.contains(secret), "{secret} was logged:\n{log}");
    }

    // A restart keeps the user and never prints a password again.
    let second_log = logs.path().join("second.log");
    let server = start(data, Some("ignored-now"), &second_log);
    let elastic = server.as_user("elastic", &password);
    assert_eq!(elastic.get("/_security/user/viewer").await.status, 200);
    let ignored = server.as_user("elastic", "ignored-now");
    assert_eq!(ignored.get("/_ml/info").await.status, 401);
    drop(server);
    assert!(!read(&second_log).contains(BANNER));
}

#[tokio::test]
async fn auspex_password_sets_the_first_password_and_is_never_printed() {
    let logs = tempfile::tempdir().expect("log dir");
    let log = logs.path().join("given.log");
    let server = start(
        tempfile::tempdir().expect("data"),
        Some("chosen-secret"),
        &log,
    );
    let elastic = server.as_user("elastic", "chosen-secret");
    assert_eq!(elastic.get("/_ml/info").await.status, 200);
    let (status, _) = server.terminate();
    assert!(status.success());
    let log = read(&log);
    assert!(
        !log.contains(BANNER) && !log.contains("chosen-secret"),
        "{log}"
    );
    assert!(log.contains("AUSPEX_PASSWORD"), "{log}");
}

#[tokio::test]
async fn https_round_trip_with_a_generated_certificate() {
    let generated =
        rcgen::generate_simple_self_signed(vec!["localhost".into()]).expect("certificate");
    let dir = tempfile::tempdir().expect("cert dir");
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert, generated.cert.pem()).expect("cert written");
    std::fs::write(&key, generated.signing_key.serialize_pem()).expect("key written");

    // The binary serves HTTPS when given both files and says so.
    let cert_arg = cert.to_str().expect("utf-8 path");
    let key_arg = key.to_str().expect("utf-8 path");
    let binary = BinaryServer::start(&["--tls-certificate", cert_arg, "--tls-key", key_arg]);
    assert!(
        binary.base_url.starts_with("https://127.0.0.1:"),
        "{}",
        binary.base_url
    );
    drop(binary);

    let config = auspex::config::TlsConfig {
        enabled: true,
        certificate: Some(cert),
        key: Some(key),
        insecure_http: false,
    };
    let acceptor = auspex::server::tls::acceptor(&config)
        .expect("acceptor")
        .expect("TLS on");
    let server = TestServer::start_tls(acceptor).await;

    let mut roots = RootCertStore::empty();
    roots.add(generated.cert.der().clone()).expect("root");
    let client = ClientConfig::builder_with_provider(Arc::new(default_provider()))
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = TlsConnector::from(Arc::new(client));
    let tcp = tokio::net::TcpStream::connect(server.address)
        .await
        .expect("connect");
    let name = ServerName::try_from("localhost").expect("name");
    let mut tls = connector.connect(name, tcp).await.expect("TLS handshake");
    use base64::Engine;
    let credentials =
        base64::engine::general_purpose::STANDARD.encode(format!("elastic:{ELASTIC_PASSWORD}"));
    let request = format!(
        "GET /_security/_authenticate HTTP/1.1\r\nHost: localhost\r\nAuthorization: Basic \
         {credentials}\r\nConnection: close\r\n\r\n"
    );
    tls.write_all(request.as_bytes())
        .await
        .expect("request sent");
    let mut answer = String::new();
    tls.read_to_string(&mut answer).await.expect("answer");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("\"username\":\"elastic\""), "{answer}");

    // Plain HTTP to the TLS port gets no HTTP answer.
    let plain = reqwest::Client::new()
        .get(format!("http://{}/", server.address))
        .send()
        .await;
    assert!(plain.is_err(), "plain HTTP was answered: {plain:?}");
    server.stop().await;
}

/// `auspex users ...` / `auspex roles ...` on a data path, offline; returns (success, stdout, stderr).
fn offline(data: &Path, args: &[&str], stdin: &str) -> (bool, String, String) {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_auspex"))
        .args(args)
        .arg("--data")
        .arg(data)
        .env_remove("AUSPEX_DATA")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary runs");
    if let Some(mut input) = child.stdin.take() {
        input.write_all(stdin.as_bytes()).expect("stdin written");
    }
    let output = child.wait_with_output().expect("the binary ends");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test]
async fn users_and_roles_are_managed_offline() {
    let logs = tempfile::tempdir().expect("log dir");
    let log = logs.path().join("server.log");
    let server = start(
        tempfile::tempdir().expect("data"),
        Some("first-secret"),
        &log,
    );
    let (_, data) = server.terminate();
    let path = data.path();

    let (ok, _, stderr) = offline(
        path,
        &[
            "roles",
            "add",
            "keys",
            "--cluster",
            "monitor_ml,manage_own_api_key",
        ],
        "",
    );
    assert!(ok, "{stderr}");
    let (ok, _, stderr) = offline(path, &["roles", "add", "bad", "--cluster", "fly"], "");
    assert!(
        !ok && stderr.contains("unknown cluster privilege [fly]"),
        "{stderr}"
    );
    let (ok, stdout, stderr) = offline(
        path,
        &["users", "add", "ops", "-r", "keys", "--password-stdin"],
        "ops-secret\n",
    );
    assert!(ok && stdout.is_empty(), "{stderr}");
    let (ok, _, _) = offline(
        path,
        &["users", "add", "weak", "-r", "keys", "-p", "abc"],
        "",
    );
    assert!(!ok, "a 3-character password is refused");
    // No password given: a generated one, printed once on stdout.
    let (ok, stdout, stderr) = offline(path, &["users", "passwd", "elastic"], "");
    assert!(ok, "{stderr}");
    let new_password = stdout.trim().to_string();
    assert_eq!(new_password.len(), 20);
    let (ok, stdout, _) = offline(path, &["users", "list"], "");
    assert!(
        ok && stdout.contains("elastic: superuser") && stdout.contains("ops: keys"),
        "{stdout}"
    );
    let (ok, stdout, _) = offline(path, &["roles", "list"], "");
    assert!(
        ok && stdout.contains("keys: monitor_ml,manage_own_api_key"),
        "{stdout}"
    );

    let server = start(data, None, &log);
    assert_eq!(
        server
            .as_user("elastic", "first-secret")
            .get("/_ml/info")
            .await
            .status,
        401
    );
    let elastic = server.as_user("elastic", &new_password);
    assert_eq!(elastic.get("/_ml/info").await.status, 200);
    let ops = server.as_user("ops", "ops-secret");
    assert_eq!(ops.get("/_ml/info").await.status, 200);
    assert_eq!(
        ops.post_json("/_security/api_key", &json!({"name": "k"}))
            .await
            .status,
        200
    );
    // The server holds the store: the offline commands refuse it.
    let (ok, _, stderr) = offline(&server.data_path(), &["users", "list"], "");
    assert!(!ok && stderr.contains("is a server running"), "{stderr}");
    let (_, data) = server.terminate();
    let (ok, _, _) = offline(data.path(), &["users", "delete", "ops"], "");
    assert!(ok);
    let (_, stdout, _) = offline(data.path(), &["users", "list"], "");
    assert!(!stdout.contains("ops"), "{stdout}");
}
