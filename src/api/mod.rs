//! Api: routing, request parsing, the Elasticsearch error envelope, replies.

use std::sync::Arc;

use crate::config::Config;
use crate::job::JobManager;

/// Shared, immutable after startup.
pub struct AppState {
    pub config: Config,
    pub jobs: Arc<JobManager>,
}
