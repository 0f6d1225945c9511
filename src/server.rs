//! Server: accept loop, one hyper http1 connection task per socket, graceful shutdown.

use std::future::Future;
use std::sync::Arc;

use tokio::net::TcpListener;

use crate::api::AppState;

/// Serves until `shutdown` resolves, then drains connections and persists open jobs.
pub async fn run(listener: TcpListener, state: Arc<AppState>, shutdown: impl Future<Output = ()>) {
    let _ = (listener, state, shutdown);
    todo!("api helper")
}
