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
//! in-flight body budget (`api::BodyBudget`, `max_in_flight_bytes`) and the peer's address in its
//! extensions. Connections before authentication are bounded apart, so idle or slow clients
//! cannot hold every slot: a connection is *unproven* until one of its requests is answered with
//! anything but 401; unproven connections may hold at most `max_connections -
//! reserved_connections` slots (beyond that a new connection is closed at once, unless its
//! address authenticated within the last 10 minutes: the reserved slots are for authenticated
//! keep-alive connections and for clients that reconnect) and must
//! send each complete request head within `header_read_timeout` (10 s by default; afterwards
//! hyper's 60 s keep-alive header timeout applies), and one client address may hold at most
//! `max_connections_per_address` connections (more are closed at once).
//!
//! HEAD: a HEAD request is answered as the GET of the same path would be, without the body (as
//! Elasticsearch does for every GET endpoint); hyper knows the request was HEAD and sends the
//! headers, `content-length` included, only.
//!
//! Handlers as tasks: a panicking handler becomes a 500 error envelope (the `JoinError` is mapped)
//! and the connection and server carry on. It also means a handler whose client went away still
//! runs to completion, so an acknowledged-or-not `_data` never stops halfway.
//! With TLS configured (`tls`), each accepted socket first completes a TLS handshake (bounded by
//! [`TLS_HANDSHAKE_TIMEOUT`], in the connection's own task) and then speaks HTTP/1.1 over it.
//! Does not own: what a request means (`api`). Talks to: `api::handle`, `job::JobManager::shutdown`.

pub mod tls;

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_rustls::TlsAcceptor;
use tokio_util::task::TaskTracker;

use crate::api::{self, AppState, BodyBudget};

/// How long shutdown waits for in-flight requests (and again for their handler tasks).
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);
/// An authenticated keep-alive connection must send a request's headers within this time of
/// starting it (or of the last one); an unproven one gets `header_read_timeout`.
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
    let config = &state.config;
    let limits = Limits {
        max_connections: config.max_connections,
        reserved_connections: config.reserved_connections,
        max_connections_per_address: config.max_connections_per_address,
        unproven_header_timeout: config.header_read_timeout,
        body_budget: BodyBudget::new(config.max_in_flight_bytes),
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
    reserved_connections: usize,
    max_connections_per_address: usize,
    unproven_header_timeout: Duration,
    body_budget: Arc<BodyBudget>,
}

/// Connections per client address; a slot is given back when its guard drops.
struct AddressSlots {
    limit: usize,
    held: Mutex<HashMap<IpAddr, usize>>,
}

struct AddressSlot {
    slots: Arc<AddressSlots>,
    address: IpAddr,
}

impl AddressSlots {
    fn take(self: &Arc<Self>, address: IpAddr) -> Option<AddressSlot> {
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        let count = held.entry(address).or_default();
        if *count >= self.limit {
            return None;
        }
        *count += 1;
        Some(AddressSlot {
            slots: Arc::clone(self),
            address,
        })
    }
}

impl Drop for AddressSlot {
    fn drop(&mut self) {
        let mut held = self.slots.held.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(count) = held.get_mut(&self.address) {
            *count -= 1;
            if *count == 0 {
                held.remove(&self.address);
            }
        }
    }
}

/// How long an address that authenticated may still use the reserved slots.
const KNOWN_ADDRESS_MEMORY: Duration = Duration::from_secs(600);
/// Addresses remembered at most (the oldest are forgotten first).
const MAX_KNOWN_ADDRESSES: usize = 10_000;

/// Addresses with a connection that authenticated recently.
#[derive(Default)]
struct KnownAddresses {
    proven_at: Mutex<HashMap<IpAddr, std::time::Instant>>,
}

impl KnownAddresses {
    fn proven(&self, address: IpAddr) {
        let mut known = self.proven_at.lock().unwrap_or_else(|p| p.into_inner());
        known.insert(address, std::time::Instant::now());
        if known.len() > MAX_KNOWN_ADDRESSES {
            known.retain(|_, at| at.elapsed() < KNOWN_ADDRESS_MEMORY);
            if known.len() > MAX_KNOWN_ADDRESSES {
                known.clear();
            }
        }
    }

    fn recently_proven(&self, address: IpAddr) -> bool {
        self.proven_at
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&address)
            .is_some_and(|at| at.elapsed() < KNOWN_ADDRESS_MEMORY)
    }
}

/// One connection's standing: unproven (holding an unproven slot, or one of the reserved ones)
/// until a request is answered with anything but 401.
struct Standing {
    unproven: Mutex<Option<OwnedSemaphorePermit>>,
    proven: std::sync::atomic::AtomicBool,
    known: Arc<KnownAddresses>,
    address: IpAddr,
    in_flight: AtomicUsize,
    last_activity: Mutex<tokio::time::Instant>,
}

impl Standing {
    fn new(
        unproven: Option<OwnedSemaphorePermit>,
        known: Arc<KnownAddresses>,
        address: IpAddr,
    ) -> Arc<Standing> {
        Arc::new(Standing {
            unproven: Mutex::new(unproven),
            proven: std::sync::atomic::AtomicBool::new(false),
            known,
            address,
            in_flight: AtomicUsize::new(0),
            last_activity: Mutex::new(tokio::time::Instant::now()),
        })
    }

    fn proven(&self) -> bool {
        self.proven.load(Ordering::SeqCst)
    }

    fn touch(&self) {
        *self.last_activity.lock().unwrap_or_else(|p| p.into_inner()) = tokio::time::Instant::now();
    }

    fn request_started(&self) {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        self.touch();
    }

    fn request_answered(&self, status: StatusCode) {
        if status != StatusCode::UNAUTHORIZED && !self.proven.swap(true, Ordering::SeqCst) {
            // Gives the unproven slot back: this connection now holds only its plain slot.
            self.unproven
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .take();
            self.known.proven(self.address);
        }
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        self.touch();
    }

    /// Resolves when the connection, still unproven, has been idle (no request in flight, no
    /// complete head) for `timeout`; never once it is proven.
    async fn unproven_timeout(&self, timeout: Duration) {
        loop {
            let last = *self.last_activity.lock().unwrap_or_else(|p| p.into_inner());
            tokio::time::sleep_until(last + timeout).await;
            if self.proven() {
                return std::future::pending().await;
            }
            let idle = self
                .last_activity
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .elapsed();
            if self.in_flight.load(Ordering::SeqCst) == 0 && idle >= timeout {
                return;
            }
        }
    }
}

/// Serves `connection` until it ends, or until it idles unproven past `timeout` (then it is
/// dropped, which closes it).
async fn until_unproven_timeout<F, E>(
    connection: F,
    standing: &Standing,
    timeout: Duration,
    peer: std::net::SocketAddr,
) -> Result<(), E>
where
    F: Future<Output = Result<(), E>>,
{
    tokio::select! {
        ended = connection => ended,
        () = standing.unproven_timeout(timeout) => {
            tracing::debug!(%peer, "connection closed: no complete request head within {}ms before authenticating", timeout.as_millis());
            Ok(())
        }
    }
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
    let unproven = Arc::new(Semaphore::new(
        limits
            .max_connections
            .saturating_sub(limits.reserved_connections)
            .max(1),
    ));
    let known = Arc::new(KnownAddresses::default());
    let addresses = Arc::new(AddressSlots {
        limit: limits.max_connections_per_address.max(1),
        held: Mutex::new(HashMap::new()),
    });
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
                    let Some(address_slot) = addresses.take(peer.ip()) else {
                        tracing::debug!(%peer, "connection closed: the address holds its maximum of connections");
                        continue;
                    };
                    if let Err(error) = stream.set_nodelay(true) {
                        tracing::debug!(%peer, "set_nodelay failed: {error}");
                    }
                    // Every connection starts unproven. Past the unproven share of the slots, only
                    // an address that authenticated recently gets in (on the reserved slots).
                    let unproven_slot = match Arc::clone(&unproven).try_acquire_owned() {
                        Ok(permit) => Some(permit),
                        Err(_) if known.recently_proven(peer.ip()) => None,
                        Err(_) => {
                            tracing::debug!(%peer, "connection closed: unauthenticated connections hold all the slots they may");
                            continue;
                        }
                    };
                    let standing = Standing::new(unproven_slot, Arc::clone(&known), peer.ip());
                    let service = {
                        let handler = handler.clone();
                        let handlers = handlers.clone();
                        let budget = Arc::clone(&limits.body_budget);
                        let standing = Arc::clone(&standing);
                        service_fn(move |mut request: Request<Incoming>| {
                            standing.request_started();
                            request.extensions_mut().insert(Arc::clone(&budget));
                            request.extensions_mut().insert(peer);
                            if request.method() == Method::HEAD {
                                *request.method_mut() = Method::GET;
                            }
                            let task = handlers.spawn(handler(request));
                            let standing = Arc::clone(&standing);
                            async move {
                                let response = match task.await {
                                    Ok(response) => response,
                                    Err(error) => api::reply::panic_response(&format!(
                                        "request handler for {peer} failed: {error}"
                                    )),
                                };
                                standing.request_answered(response.status());
                                Ok::<_, Infallible>(response)
                            }
                        })
                    };
                    let unproven_timeout = limits.unproven_header_timeout;
                    let watcher = graceful.watcher();
                    let (http, tls) = (http.clone(), tls.clone());
                    tokio::spawn(async move {
                        let _address_slot = address_slot;
                        let ended = match tls {
                            None => until_unproven_timeout(watcher.watch(http.serve_connection(TokioIo::new(stream), service)), &standing, unproven_timeout, peer).await,
                            Some(acceptor) => {
                                let handshake = tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await;
                                match handshake {
                                    Ok(Ok(stream)) => until_unproven_timeout(watcher.watch(http.serve_connection(TokioIo::new(stream), service)), &standing, unproven_timeout, peer).await,
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

    /// `/panic` panics, `/slow` answers after 300 ms, `/denied` answers 401, anything else
    /// answers 200 at once (`GET` says `ok`, another method names itself).
    async fn test_handler(request: Request<Incoming>) -> Response<Full<Bytes>> {
        match request.uri().path() {
            "/panic" => panic!("deliberate test panic"),
            "/denied" => {
                let mut response = Response::new(Full::new(Bytes::from_static(b"who?")));
                *response.status_mut() = StatusCode::UNAUTHORIZED;
                response
            }
            _ if request.method() != Method::GET => {
                Response::new(Full::new(Bytes::from(request.method().to_string())))
            }
            "/slow" => {
                tokio::time::sleep(Duration::from_millis(300)).await;
                Response::new(Full::new(Bytes::from_static(b"slow")))
            }
            _ => Response::new(Full::new(Bytes::from_static(b"ok"))),
        }
    }

    async fn start() -> (SocketAddr, oneshot::Sender<()>, JoinHandle<()>) {
        start_with(Limits {
            max_connections: 2,
            reserved_connections: 0,
            max_connections_per_address: 10,
            unproven_header_timeout: Duration::from_secs(10),
            body_budget: BodyBudget::new(1 << 20),
        })
        .await
    }

    async fn start_with(limits: Limits) -> (SocketAddr, oneshot::Sender<()>, JoinHandle<()>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = listener.local_addr().expect("local addr");
        let (stop, stopped) = oneshot::channel::<()>();
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

    fn limits(max: usize, reserved: usize, per_address: usize, timeout_ms: u64) -> Limits {
        Limits {
            max_connections: max,
            reserved_connections: reserved,
            max_connections_per_address: per_address,
            unproven_header_timeout: Duration::from_millis(timeout_ms),
            body_budget: BodyBudget::new(1 << 20),
        }
    }

    /// A connection from `source` (a loopback address: each is its own client address).
    async fn connect_from(source: [u8; 4], address: SocketAddr) -> tokio::net::TcpStream {
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        socket
            .bind(SocketAddr::from((source, 0)))
            .expect("bind the source address");
        socket.connect(address).await.expect("connect")
    }

    /// Whether the server closes the connection within `within` (reads EOF or a reset).
    async fn closed_within(stream: &mut tokio::net::TcpStream, within: Duration) -> bool {
        use tokio::io::AsyncReadExt;
        let mut buffer = [0u8; 256];
        loop {
            match tokio::time::timeout(within, stream.read(&mut buffer)).await {
                Err(_) => return false,
                Ok(Ok(0)) | Ok(Err(_)) => return true,
                Ok(Ok(_)) => continue, // an answer; keep reading until the close
            }
        }
    }

    async fn request_on(stream: &mut tokio::net::TcpStream, path: &str) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        stream
            .write_all(format!("GET {path} HTTP/1.1\r\nhost: x\r\n\r\n").as_bytes())
            .await
            .expect("write");
        let mut buffer = vec![0u8; 1024];
        let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buffer))
            .await
            .expect("an answer in time")
            .expect("read");
        String::from_utf8_lossy(&buffer[..n]).into_owned()
    }

    /// Issue 24 section 6: idle or slow connections that never authenticate held every slot for
    /// the 60 s header timeout. Unproven ones now get `unproven_header_timeout`, whether they
    /// send nothing, a head byte by byte, or only requests that are refused with 401.
    #[tokio::test]
    async fn unauthenticated_connections_that_idle_or_trickle_are_closed_soon() {
        let (address, stop, server) = start_with(limits(10, 0, 10, 300)).await;
        let mut idle = connect_from([127, 0, 0, 1], address).await;
        assert!(closed_within(&mut idle, Duration::from_secs(2)).await);

        let mut trickle = connect_from([127, 0, 0, 1], address).await;
        let writer = tokio::spawn(async move {
            use tokio::io::AsyncWriteExt;
            let head = b"GET / HTTP/1.1\r\nhost: x\r\nx-slow: aaaaaaaaaaaaaaaaaaaaaaaa";
            for byte in head {
                if trickle.write_all(&[*byte]).await.is_err() {
                    return true;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            false
        });
        let cut_off = tokio::time::timeout(Duration::from_secs(3), writer)
            .await
            .expect("the trickle ends")
            .expect("task");
        assert!(cut_off, "a head trickled in byte by byte is cut off");

        let mut refused = connect_from([127, 0, 0, 1], address).await;
        assert!(request_on(&mut refused, "/denied")
            .await
            .starts_with("HTTP/1.1 401"));
        assert!(closed_within(&mut refused, Duration::from_secs(2)).await);

        // A connection whose request was served is kept across idle gaps longer than that.
        let mut served = connect_from([127, 0, 0, 1], address).await;
        assert!(request_on(&mut served, "/")
            .await
            .starts_with("HTTP/1.1 200"));
        tokio::time::sleep(Duration::from_millis(900)).await;
        assert!(request_on(&mut served, "/")
            .await
            .starts_with("HTTP/1.1 200"));
        stop.send(()).expect("server alive");
        server.await.expect("serve returns");
    }

    #[tokio::test]
    async fn one_address_holds_at_most_its_share_and_reserved_slots_stay_for_known_clients() {
        let (address, stop, server) = start_with(limits(4, 2, 3, 10_000)).await;
        // 127.0.0.1 authenticates (its request is served): it is a known client now.
        let mut known = connect_from([127, 0, 0, 1], address).await;
        assert!(request_on(&mut known, "/")
            .await
            .starts_with("HTTP/1.1 200"));
        // 127.0.0.2 never authenticates: the two unproven slots are all it gets.
        let mut attacker = Vec::new();
        for _ in 0..2 {
            attacker.push(connect_from([127, 0, 0, 2], address).await);
        }
        let mut third = connect_from([127, 0, 0, 2], address).await;
        assert!(
            closed_within(&mut third, Duration::from_secs(2)).await,
            "past the unproven slots, an unknown address is turned away"
        );
        // The known client reconnects on a reserved slot.
        let mut again = connect_from([127, 0, 0, 1], address).await;
        assert!(request_on(&mut again, "/")
            .await
            .starts_with("HTTP/1.1 200"));
        drop((known, again));

        // Per address: 127.0.0.3 may hold three connections, not four.
        drop(attacker);
        tokio::time::sleep(Duration::from_millis(100)).await;
        let (address, stop2, server2) = start_with(limits(10, 0, 3, 10_000)).await;
        let mut held = Vec::new();
        for _ in 0..3 {
            held.push(connect_from([127, 0, 0, 3], address).await);
        }
        let mut fourth = connect_from([127, 0, 0, 3], address).await;
        assert!(closed_within(&mut fourth, Duration::from_secs(2)).await);
        let mut other = connect_from([127, 0, 0, 4], address).await;
        assert!(request_on(&mut other, "/")
            .await
            .starts_with("HTTP/1.1 200"));
        drop(held);
        for (stop, server) in [(stop, server), (stop2, server2)] {
            stop.send(()).expect("server alive");
            server.await.expect("serve returns");
        }
    }

    /// HEAD answered 405 where Elasticsearch answers as GET without the body.
    #[tokio::test]
    async fn head_is_answered_as_get_without_a_body() {
        let (address, stop, server) = start().await;
        let response = reqwest::Client::new()
            .head(format!("http://{address}/"))
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["content-length"], "2");
        assert_eq!(response.bytes().await.expect("body").len(), 0);
        stop.send(()).expect("server alive");
        server.await.expect("serve returns");
    }
}
