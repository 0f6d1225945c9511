//! Server: accept loop, one hyper http1 connection task per socket, graceful shutdown.
//!
//! Owns: accepting, HTTP/1.1 keep-alive connections (with a header read timeout against idle
//! half-open clients), running every request's handler as its own task, and the shutdown sequence:
//! stop accepting -> let in-flight requests finish while idle keep-alive connections close
//! (bounded by [`DRAIN_TIMEOUT`]) -> wait for handler tasks still running (same bound) ->
//! `JobManager::shutdown` (persists open jobs).
//!
//! Limits: at most `max_connections` connections are served at once (beyond that the accept loop
//! waits, and new connections wait in the listen backlog), and every request carries the process's
//! in-flight body budget (`api::BodyBudget`, `max_in_flight_bytes`) in its extensions.
//!
//! Handlers as tasks: a panicking handler becomes a 500 error envelope (the `JoinError` is mapped)
//! and the connection and server carry on. It also means a handler whose client went away still
//! runs to completion, so an acknowledged-or-not `_data` never stops halfway.
//! With TLS configured (`tls`), each accepted socket first completes a TLS handshake (bounded by
//! [`TLS_HANDSHAKE_TIMEOUT`], in the connection's own task) and then speaks HTTP/1.1 over it.
//! Does not own: what a request means (`api`). Talks to: `api::handle`, `job::JobManager::shutdown`.

pub mod tls;

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;
use tokio_util::task::TaskTracker;

use crate::api::{self, AppState, BodyBudget};

/// How long shutdown waits for in-flight requests (and again for their handler tasks).
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);
/// A client must send a request's headers within this time of starting it (or of the last one).
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(60);
/// A client must finish the TLS handshake within this time of connecting.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Pause after a failed `accept` (e.g. out of file descriptors) so the loop does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Serves plain HTTP until `shutdown` resolves, then drains connections and persists open jobs.
pub async fn run(listener: TcpListener, state: Arc<AppState>, shutdown: impl Future<Output = ()>) {
    run_tls(listener, state, None, shutdown).await;
}

/// As [`run`], over TLS when `tls` is given.
pub async fn run_tls(
    listener: TcpListener,
    state: Arc<AppState>,
    tls: Option<TlsAcceptor>,
    shutdown: impl Future<Output = ()>,
) {
    let handler_state = Arc::clone(&state);
    let limits = Limits {
        max_connections: state.config.max_connections,
        body_budget: BodyBudget::new(state.config.max_in_flight_bytes),
    };
    serve(
        listener,
        move |request| api::handle(Arc::clone(&handler_state), request),
        limits,
        tls,
        shutdown,
    )
    .await;
    state.jobs.shutdown().await;
    tracing::info!("shutdown complete");
}

/// What the server bounds across all connections.
struct Limits {
    max_connections: usize,
    body_budget: Arc<BodyBudget>,
}

/// The accept loop and the drain, for any handler (`run` passes `api::handle`).
async fn serve<H, F>(
    listener: TcpListener,
    handler: H,
    limits: Limits,
    tls: Option<TlsAcceptor>,
    shutdown: impl Future<Output = ()>,
) where
    H: Fn(Request<Incoming>) -> F + Clone + Send + 'static,
    F: Future<Output = Response<Full<Bytes>>> + Send + 'static,
{
    let graceful = GracefulShutdown::new();
    let handlers = TaskTracker::new();
    let connections = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let mut http = http1::Builder::new();
    http.keep_alive(true)
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    tokio::pin!(shutdown);
    loop {
        // A connection slot first: at the limit, new connections wait in the listen backlog.
        let slot = tokio::select! {
            slot = Arc::clone(&connections).acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_) => break, // never closed
            },
            () = &mut shutdown => break,
        };
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    if let Err(error) = stream.set_nodelay(true) {
                        tracing::debug!(%peer, "set_nodelay failed: {error}");
                    }
                    let service = {
                        let handler = handler.clone();
                        let handlers = handlers.clone();
                        let budget = Arc::clone(&limits.body_budget);
                        service_fn(move |mut request: Request<Incoming>| {
                            request.extensions_mut().insert(Arc::clone(&budget));
                            let task = handlers.spawn(handler(request));
                            async move {
                                Ok::<_, Infallible>(match task.await {
                                    Ok(response) => response,
                                    Err(error) => api::reply::panic_response(&format!(
                                        "request handler for {peer} failed: {error}"
                                    )),
                                })
                            }
                        })
                    };
                    let watcher = graceful.watcher();
                    let (http, tls) = (http.clone(), tls.clone());
                    tokio::spawn(async move {
                        let ended = match tls {
                            None => watcher.watch(http.serve_connection(TokioIo::new(stream), service)).await,
                            Some(acceptor) => {
                                let handshake = tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await;
                                match handshake {
                                    Ok(Ok(stream)) => watcher.watch(http.serve_connection(TokioIo::new(stream), service)).await,
                                    Ok(Err(error)) => {
                                        tracing::debug!(%peer, "TLS handshake failed: {error}");
                                        return;
                                    }
                                    Err(_) => {
                                        tracing::debug!(%peer, "TLS handshake timed out");
                                        return;
                                    }
                                }
                            }
                        };
                        if let Err(error) = ended {
                            tracing::debug!(%peer, "connection ended with an error: {error}");
                        }
                        drop(slot);
                    });
                }
                Err(error) => {
                    tracing::warn!("accept failed: {error}");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                }
            },
            () = &mut shutdown => break,
        }
    }
    drop(listener);
    tracing::info!("shutting down: draining {} connection(s)", graceful.count());
    if tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            "connections still open after {}s; closing them",
            DRAIN_TIMEOUT.as_secs()
        );
    }
    handlers.close();
    if tokio::time::timeout(DRAIN_TIMEOUT, handlers.wait())
        .await
        .is_err()
    {
        tracing::warn!(
            "{} request handler(s) still running after {}s",
            handlers.len(),
            DRAIN_TIMEOUT.as_secs()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::SocketAddr;
    use tokio::sync::oneshot;
    use tokio::task::JoinHandle;

    /// `/panic` panics, `/slow` answers after 300 ms, anything else answers 200 at once.
    async fn test_handler(request: Request<Incoming>) -> Response<Full<Bytes>> {
        match request.uri().path() {
            "/panic" => panic!("deliberate test panic"),
            "/slow" => {
                tokio::time::sleep(Duration::from_millis(300)).await;
                Response::new(Full::new(Bytes::from_static(b"slow")))
            }
            _ => Response::new(Full::new(Bytes::from_static(b"ok"))),
        }
    }

    async fn start() -> (SocketAddr, oneshot::Sender<()>, JoinHandle<()>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = listener.local_addr().expect("local addr");
        let (stop, stopped) = oneshot::channel::<()>();
        let limits = Limits {
            max_connections: 2,
            body_budget: BodyBudget::new(1 << 20),
        };
        let server = tokio::spawn(serve(listener, test_handler, limits, None, async {
            let _ = stopped.await;
        }));
        (address, stop, server)
    }

    #[tokio::test]
    async fn a_panicking_handler_is_a_500_and_the_server_keeps_serving() {
        let (address, stop, server) = start().await;
        let client = reqwest::Client::new();
        let response = client
            .get(format!("http://{address}/panic"))
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), 500);
        assert_eq!(response.headers()["x-elastic-product"], "Elasticsearch");
        let body: serde_json::Value = response.json().await.expect("json body");
        assert_eq!(body["status"], 500);
        assert_eq!(body["error"]["type"], "exception");
        assert_eq!(body["error"]["root_cause"][0]["type"], "exception");
        for _ in 0..3 {
            let response = client
                .get(format!("http://{address}/"))
                .send()
                .await
                .expect("request after the panic");
            assert_eq!(response.status(), 200);
            assert_eq!(response.text().await.expect("body"), "ok");
        }
        stop.send(()).expect("server alive");
        server.await.expect("serve returns");
    }

    /// `start` allows two connections: a third waits (in the backlog) until one of them closes.
    #[tokio::test]
    async fn connections_over_the_limit_wait_for_a_free_slot() {
        let (address, stop, server) = start().await;
        let idle_one = tokio::net::TcpStream::connect(address)
            .await
            .expect("connect");
        let _idle_two = tokio::net::TcpStream::connect(address)
            .await
            .expect("connect");
        let client = reqwest::Client::new();
        let waiting = tokio::spawn({
            let client = client.clone();
            async move { client.get(format!("http://{address}/")).send().await }
        });
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(
            !waiting.is_finished(),
            "the third connection is not served yet"
        );
        drop(idle_one);
        let response = tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .expect("served once a slot is free")
            .expect("task")
            .expect("response");
        assert_eq!(response.status(), 200);
        stop.send(()).expect("server alive");
        server.await.expect("serve returns");
    }

    #[tokio::test]
    async fn shutdown_finishes_in_flight_requests_then_stops_accepting() {
        let (address, stop, server) = start().await;
        let client = reqwest::Client::new();
        let in_flight = tokio::spawn({
            let client = client.clone();
            async move {
                client
                    .get(format!("http://{address}/slow"))
                    .send()
                    .await?
                    .text()
                    .await
            }
        });
        tokio::time::sleep(Duration::from_millis(100)).await;
        stop.send(()).expect("server alive");
        let body = in_flight
            .await
            .expect("task")
            .expect("the in-flight request completes");
        assert_eq!(body, "slow");
        tokio::time::timeout(Duration::from_secs(5), server)
            .await
            .expect("serve returns promptly")
            .expect("no panic");
        let refused = reqwest::Client::new()
            .get(format!("http://{address}/"))
            .send()
            .await;
        assert!(refused.is_err(), "the listener is closed after shutdown");
    }
}
