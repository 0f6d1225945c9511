//! The binary: the address line, exit codes, signals.

use std::net::TcpListener;

use crate::util::{run_binary, BinaryServer};

#[test]
fn a_taken_port_is_exit_code_1_with_a_message() {
    let taken = TcpListener::bind("127.0.0.1:0").expect("bind");
    let address = taken.local_addr().expect("address").to_string();
    let data = tempfile::tempdir().expect("temp dir");
    let data = data.path().to_str().expect("utf-8 path");
    let (status, stderr) = run_binary(&["--listen", &address, "--data", data]);
    assert_eq!(status.code(), Some(1), "stderr: {stderr}");
    assert!(
        stderr.contains(&format!("cannot listen on {address}")),
        "{stderr}"
    );
}

#[test]
fn an_unusable_data_path_is_exit_code_1_with_a_message() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("a-file");
    std::fs::write(&file, b"not a directory").expect("write");
    let data = file.join("data");
    let data = data.to_str().expect("utf-8 path");
    let (status, stderr) = run_binary(&["--listen", "127.0.0.1:0", "--data", data]);
    assert_eq!(status.code(), Some(1), "stderr: {stderr}");
    assert!(stderr.contains("cannot create data path"), "{stderr}");
}

#[tokio::test]
async fn serves_then_exits_0_on_sigterm() {
    let server = BinaryServer::start(&[]);
    let reply = server.get("/").await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("x-elastic-product"), Some("Elasticsearch"));
    let cluster_uuid = reply.json()["cluster_uuid"].clone();
    let (status, data) = server.terminate();
    assert!(status.success(), "exit status {status:?}");

    // Same data path, same cluster identity.
    let server = BinaryServer::start_on(data, &["serve"]);
    assert_eq!(server.get("/").await.json()["cluster_uuid"], cluster_uuid);
    let (status, _) = server.terminate();
    assert!(status.success(), "exit status {status:?}");
}
