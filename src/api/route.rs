//! Routing: (method, decoded path segments) -> [`Endpoint`].
//!
//! Owns the route table: every anomaly-detection endpoint of the Elasticsearch REST spec (a test
//! checks the spec files against it) and auspex's extensions.
//! Matching follows Elasticsearch's `RestController`: every pattern that fits the path is a candidate,
//! the most literal one first (`/_ml/anomaly_detectors/_stats` beats `/{job_id}`); the first candidate
//! with a handler for the method wins; when candidates exist but none takes the method the answer is
//! 405 with the union of their methods; when nothing fits, 400 `no handler found`.
//! Also owns each endpoint's Elasticsearch action name (`Endpoint::action`), which `api::auth`
//! checks against the caller's cluster privileges.
//! Does not own: decoding (`api::request`) or the error bodies (`api::reply`).
//! Talks to: nothing.

use hyper::Method;

/// A routed request: what to do, with its path parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// `GET /` or `HEAD /`.
    Root,
    PutJob {
        job_id: String,
    },
    /// `GET _ml/anomaly_detectors[/<expr>]` (`_all` when the path has none).
    GetJobs {
        expression: String,
    },
    DeleteJob {
        job_id: String,
    },
    JobStats {
        expression: String,
    },
    OpenJob {
        job_id: String,
    },
    CloseJob {
        expression: String,
    },
    PostData {
        job_id: String,
    },
    Flush {
        job_id: String,
    },
    Buckets {
        job_id: String,
        timestamp: Option<String>,
    },
    Records {
        job_id: String,
    },
    OverallBuckets {
        expression: String,
    },
    /// `model_snapshots[/<snapshot_id>]` (GET or POST).
    ModelSnapshots {
        job_id: String,
        snapshot_id: Option<String>,
    },
    UpdateModelSnapshot {
        job_id: String,
        snapshot_id: String,
    },
    DeleteModelSnapshot {
        job_id: String,
        snapshot_id: String,
    },
    RevertModelSnapshot {
        job_id: String,
        snapshot_id: String,
    },
    UpdateJob {
        job_id: String,
    },
    ResetJob {
        job_id: String,
    },
    ValidateJob,
    ValidateDetector,
    EstimateModelMemory,
    MlInfo,
    DeleteExpiredData {
        job_id: Option<String>,
    },
    CatJobs {
        job_id: Option<String>,
    },
    PutFilter {
        filter_id: String,
    },
    GetFilters {
        filter_id: Option<String>,
    },
    UpdateFilter {
        filter_id: String,
    },
    DeleteFilter {
        filter_id: String,
    },
    PutCalendar {
        calendar_id: String,
    },
    GetCalendars {
        calendar_id: Option<String>,
    },
    DeleteCalendar {
        calendar_id: String,
    },
    /// `PUT` (`add`) or `DELETE` `calendars/<id>/jobs/<job ids>`.
    CalendarJobs {
        calendar_id: String,
        job_ids: String,
        add: bool,
    },
    PostCalendarEvents {
        calendar_id: String,
    },
    GetCalendarEvents {
        calendar_id: String,
    },
    DeleteCalendarEvent {
        calendar_id: String,
        event_id: String,
    },
    UpgradeModelSnapshot {
        job_id: String,
        snapshot_id: String,
    },
    ModelSnapshotUpgradeStats {
        job_id: String,
    },
    /// `POST _ml/set_upgrade_mode`.
    SetUpgradeMode,
    /// `GET _ml/memory[/<node_id>]/_stats`.
    MemoryStats {
        node_id: Option<String>,
    },
    /// auspex extension: the anomaly explorer page (`asset` `None`) or one of its files.
    Explorer {
        asset: Option<String>,
    },
    /// auspex extension: `GET /_prometheus/metrics`.
    Metrics,
    /// auspex extension: `POST /_auspex/anomaly_detectors/<job_id>/_replay` starts a replay task.
    Replay {
        job_id: String,
    },
    /// auspex extension: `GET /_auspex/tasks[/<task_id>]`.
    Tasks {
        task_id: Option<String>,
    },
    Influencers {
        job_id: String,
    },
    Forecast {
        job_id: String,
    },
    /// `DELETE _forecast[/<forecast_id>]` (`None`: all).
    DeleteForecast {
        job_id: String,
        forecast_id: Option<String>,
    },
    /// auspex extension: `results/model_plot` (GET or POST).
    ModelPlot {
        job_id: String,
    },
    /// auspex extension: `results/forecasts[/<forecast_id>]` (GET or POST).
    Forecasts {
        job_id: String,
        forecast_id: Option<String>,
    },
    /// `results/categories[/<category_id>]` (GET or POST).
    Categories {
        job_id: String,
        category_id: Option<String>,
    },
    /// `GET /_security/_authenticate`.
    Authenticate,
    /// `POST`/`PUT /_security/api_key`.
    CreateApiKey,
    /// `GET /_security/api_key`.
    GetApiKeys,
    /// `DELETE /_security/api_key`.
    InvalidateApiKeys,
    PutRole {
        name: String,
    },
    GetRoles {
        name: Option<String>,
    },
    DeleteRole {
        name: String,
    },
    PutUser {
        username: String,
    },
    GetUsers {
        username: Option<String>,
    },
    DeleteUser {
        username: String,
    },
    /// `/_security/user[/<username>]/_password` (`None`: the caller's own).
    ChangePassword {
        username: Option<String>,
    },
}

/// The actions Elasticsearch's upgrade-mode filter refuses (those that write ML data), plus
/// `_reset` and auspex's replay, which write results too.
const UPGRADE_MODE_BLOCKED: &[&str] = &[
    "cluster:admin/xpack/ml/job/put",
    "cluster:admin/xpack/ml/job/update",
    "cluster:admin/xpack/ml/job/delete",
    "cluster:admin/xpack/ml/job/open",
    "cluster:admin/xpack/ml/job/close",
    "cluster:admin/xpack/ml/job/flush",
    "cluster:admin/xpack/ml/job/data/post",
    "cluster:admin/xpack/ml/job/reset",
    "cluster:admin/xpack/ml/job/model_snapshots/revert",
    "cluster:admin/xpack/ml/job/model_snapshots/update",
    "cluster:admin/xpack/ml/job/model_snapshots/delete",
    "cluster:admin/xpack/ml/job/model_snapshots/upgrade",
    "cluster:admin/xpack/ml/filters/put",
    "cluster:admin/xpack/ml/filters/update",
    "cluster:admin/xpack/ml/filters/delete",
    "cluster:admin/xpack/ml/calendars/put",
    "cluster:admin/xpack/ml/calendars/jobs/update",
    "cluster:admin/xpack/ml/calendars/events/post",
    "cluster:admin/xpack/ml/calendars/delete",
    "cluster:admin/xpack/ml/calendars/event/delete",
    "cluster:admin/xpack/ml/delete_expired_data",
    "cluster:admin/xpack/ml/job/forecast",
    "cluster:admin/xpack/ml/job/forecast/delete",
    "cluster:admin/xpack/ml/auspex/replay",
];

impl Endpoint {
    /// The Elasticsearch action of an endpoint that writes ML data, which upgrade mode refuses
    /// (Elasticsearch's upgrade-mode filter list; `_reset` and auspex's replay write results too).
    /// `None`: a read, or a write upgrade mode allows.
    pub fn upgrade_mode_blocked_action(&self) -> Option<&'static str> {
        let action = self.action();
        UPGRADE_MODE_BLOCKED.contains(&action).then_some(action)
    }

    /// A stable name for metrics and logs: the Elasticsearch spec name, or `auspex.*`.
    pub fn name(&self) -> &'static str {
        match self {
            Endpoint::Root => "info",
            Endpoint::PutJob { .. } => "ml.put_job",
            Endpoint::GetJobs { .. } => "ml.get_jobs",
            Endpoint::DeleteJob { .. } => "ml.delete_job",
            Endpoint::JobStats { .. } => "ml.get_job_stats",
            Endpoint::OpenJob { .. } => "ml.open_job",
            Endpoint::CloseJob { .. } => "ml.close_job",
            Endpoint::PostData { .. } => "ml.post_data",
            Endpoint::Flush { .. } => "ml.flush_job",
            Endpoint::Buckets { .. } => "ml.get_buckets",
            Endpoint::Records { .. } => "ml.get_records",
            Endpoint::OverallBuckets { .. } => "ml.get_overall_buckets",
            Endpoint::ModelSnapshots { .. } => "ml.get_model_snapshots",
            Endpoint::UpdateModelSnapshot { .. } => "ml.update_model_snapshot",
            Endpoint::DeleteModelSnapshot { .. } => "ml.delete_model_snapshot",
            Endpoint::RevertModelSnapshot { .. } => "ml.revert_model_snapshot",
            Endpoint::UpgradeModelSnapshot { .. } => "ml.upgrade_job_snapshot",
            Endpoint::ModelSnapshotUpgradeStats { .. } => "ml.get_model_snapshot_upgrade_stats",
            Endpoint::UpdateJob { .. } => "ml.update_job",
            Endpoint::ResetJob { .. } => "ml.reset_job",
            Endpoint::ValidateJob => "ml.validate",
            Endpoint::ValidateDetector => "ml.validate_detector",
            Endpoint::EstimateModelMemory => "ml.estimate_model_memory",
            Endpoint::MlInfo => "ml.info",
            Endpoint::DeleteExpiredData { .. } => "ml.delete_expired_data",
            Endpoint::CatJobs { .. } => "cat.ml_jobs",
            Endpoint::PutFilter { .. } => "ml.put_filter",
            Endpoint::GetFilters { .. } => "ml.get_filters",
            Endpoint::UpdateFilter { .. } => "ml.update_filter",
            Endpoint::DeleteFilter { .. } => "ml.delete_filter",
            Endpoint::PutCalendar { .. } => "ml.put_calendar",
            Endpoint::GetCalendars { .. } => "ml.get_calendars",
            Endpoint::DeleteCalendar { .. } => "ml.delete_calendar",
            Endpoint::CalendarJobs { add: true, .. } => "ml.put_calendar_job",
            Endpoint::CalendarJobs { add: false, .. } => "ml.delete_calendar_job",
            Endpoint::PostCalendarEvents { .. } => "ml.post_calendar_events",
            Endpoint::GetCalendarEvents { .. } => "ml.get_calendar_events",
            Endpoint::DeleteCalendarEvent { .. } => "ml.delete_calendar_event",
            Endpoint::MemoryStats { .. } => "ml.get_memory_stats",
            Endpoint::SetUpgradeMode => "ml.set_upgrade_mode",
            Endpoint::Explorer { .. } => "auspex.explorer",
            Endpoint::Metrics => "auspex.metrics",
            Endpoint::Replay { .. } => "auspex.replay",
            Endpoint::Tasks { .. } => "auspex.tasks",
            Endpoint::Influencers { .. } => "ml.get_influencers",
            Endpoint::Forecast { .. } => "ml.forecast",
            Endpoint::DeleteForecast { .. } => "ml.delete_forecast",
            Endpoint::ModelPlot { .. } => "auspex.model_plot",
            Endpoint::Forecasts { .. } => "auspex.forecasts",
            Endpoint::Categories { .. } => "ml.get_categories",
            Endpoint::Authenticate => "security.authenticate",
            Endpoint::CreateApiKey => "security.create_api_key",
            Endpoint::GetApiKeys => "security.get_api_key",
            Endpoint::InvalidateApiKeys => "security.invalidate_api_key",
            Endpoint::PutRole { .. } => "security.put_role",
            Endpoint::GetRoles { .. } => "security.get_role",
            Endpoint::DeleteRole { .. } => "security.delete_role",
            Endpoint::PutUser { .. } => "security.put_user",
            Endpoint::GetUsers { .. } => "security.get_user",
            Endpoint::DeleteUser { .. } => "security.delete_user",
            Endpoint::ChangePassword { .. } => "security.change_password",
        }
    }

    /// The Elasticsearch action name a request to this endpoint performs; the caller's cluster
    /// privileges must grant it (`security::privilege`): `cluster:monitor/xpack/ml/*` is granted by
    /// `monitor_ml` (and `manage_ml`, `monitor`, `manage`, `all`), `cluster:admin/xpack/ml/*` by
    /// `manage_ml` (and `manage`, `all`). Exhaustive, so a new endpoint has to pick one.
    pub fn action(&self) -> &'static str {
        use crate::security::privilege::action as security;
        match self {
            Endpoint::Root => "cluster:monitor/main",
            Endpoint::PutJob { .. } => "cluster:admin/xpack/ml/job/put",
            Endpoint::GetJobs { .. } => "cluster:monitor/xpack/ml/job/get",
            Endpoint::DeleteJob { .. } => "cluster:admin/xpack/ml/job/delete",
            Endpoint::JobStats { .. } | Endpoint::CatJobs { .. } => {
                "cluster:monitor/xpack/ml/job/stats/get"
            }
            Endpoint::OpenJob { .. } => "cluster:admin/xpack/ml/job/open",
            Endpoint::CloseJob { .. } => "cluster:admin/xpack/ml/job/close",
            Endpoint::PostData { .. } => "cluster:admin/xpack/ml/job/data/post",
            Endpoint::Flush { .. } => "cluster:admin/xpack/ml/job/flush",
            Endpoint::Buckets { .. } => "cluster:monitor/xpack/ml/job/results/buckets/get",
            Endpoint::Records { .. } => "cluster:monitor/xpack/ml/job/results/records/get",
            Endpoint::OverallBuckets { .. } => {
                "cluster:monitor/xpack/ml/job/results/overall_buckets/get"
            }
            Endpoint::ModelSnapshots { .. } => "cluster:monitor/xpack/ml/job/model_snapshots/get",
            Endpoint::UpdateModelSnapshot { .. } => {
                "cluster:admin/xpack/ml/job/model_snapshots/update"
            }
            Endpoint::DeleteModelSnapshot { .. } => {
                "cluster:admin/xpack/ml/job/model_snapshots/delete"
            }
            Endpoint::RevertModelSnapshot { .. } => {
                "cluster:admin/xpack/ml/job/model_snapshots/revert"
            }
            Endpoint::UpgradeModelSnapshot { .. } => {
                "cluster:admin/xpack/ml/job/model_snapshots/upgrade"
            }
            Endpoint::ModelSnapshotUpgradeStats { .. } => {
                "cluster:monitor/xpack/ml/job/model_snapshots/upgrade/stats"
            }
            Endpoint::UpdateJob { .. } => "cluster:admin/xpack/ml/job/update",
            Endpoint::ResetJob { .. } => "cluster:admin/xpack/ml/job/reset",
            Endpoint::ValidateJob => "cluster:admin/xpack/ml/job/validate",
            Endpoint::ValidateDetector => "cluster:admin/xpack/ml/job/validate/detector",
            Endpoint::EstimateModelMemory => "cluster:admin/xpack/ml/job/estimate_model_memory",
            Endpoint::MlInfo => "cluster:monitor/xpack/ml/info/get",
            Endpoint::DeleteExpiredData { .. } => "cluster:admin/xpack/ml/delete_expired_data",
            Endpoint::PutFilter { .. } => "cluster:admin/xpack/ml/filters/put",
            Endpoint::GetFilters { .. } => "cluster:admin/xpack/ml/filters/get",
            Endpoint::UpdateFilter { .. } => "cluster:admin/xpack/ml/filters/update",
            Endpoint::DeleteFilter { .. } => "cluster:admin/xpack/ml/filters/delete",
            Endpoint::PutCalendar { .. } => "cluster:admin/xpack/ml/calendars/put",
            Endpoint::GetCalendars { .. } => "cluster:monitor/xpack/ml/calendars/get",
            Endpoint::DeleteCalendar { .. } => "cluster:admin/xpack/ml/calendars/delete",
            Endpoint::CalendarJobs { .. } => "cluster:admin/xpack/ml/calendars/jobs/update",
            Endpoint::PostCalendarEvents { .. } => "cluster:admin/xpack/ml/calendars/events/post",
            Endpoint::GetCalendarEvents { .. } => "cluster:monitor/xpack/ml/calendars/events/get",
            Endpoint::DeleteCalendarEvent { .. } => "cluster:admin/xpack/ml/calendars/event/delete",
            Endpoint::Forecast { .. } => "cluster:admin/xpack/ml/job/forecast",
            Endpoint::DeleteForecast { .. } => "cluster:admin/xpack/ml/job/forecast/delete",
            Endpoint::Categories { .. } => "cluster:monitor/xpack/ml/job/results/categories/get",
            Endpoint::Influencers { .. } => "cluster:monitor/xpack/ml/job/results/influencers/get",
            Endpoint::MemoryStats { .. } => "cluster:monitor/xpack/ml/memory/stats/get",
            Endpoint::SetUpgradeMode => "cluster:admin/xpack/ml/upgrade_mode",
            // auspex extensions: reads of ML data are ML monitoring, a replay writes a job.
            Endpoint::Explorer { .. } => "cluster:monitor/xpack/ml/auspex/explorer",
            Endpoint::Metrics => "cluster:monitor/xpack/ml/auspex/metrics",
            Endpoint::Replay { .. } => "cluster:admin/xpack/ml/auspex/replay",
            Endpoint::Tasks { .. } => "cluster:monitor/xpack/ml/auspex/tasks/get",
            Endpoint::ModelPlot { .. } => "cluster:monitor/xpack/ml/auspex/model_plot/get",
            Endpoint::Forecasts { .. } => "cluster:monitor/xpack/ml/auspex/forecasts/get",
            Endpoint::Authenticate => security::AUTHENTICATE,
            Endpoint::CreateApiKey => security::CREATE_API_KEY,
            Endpoint::GetApiKeys => security::GET_API_KEY,
            Endpoint::InvalidateApiKeys => security::INVALIDATE_API_KEY,
            Endpoint::PutRole { .. } => security::PUT_ROLE,
            Endpoint::GetRoles { .. } => security::GET_ROLES,
            Endpoint::DeleteRole { .. } => security::DELETE_ROLE,
            Endpoint::PutUser { .. } => security::PUT_USER,
            Endpoint::GetUsers { .. } => security::GET_USERS,
            Endpoint::DeleteUser { .. } => security::DELETE_USER,
            Endpoint::ChangePassword { .. } => security::CHANGE_PASSWORD,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteError {
    /// No pattern fits the path.
    NoHandler,
    /// Patterns fit, none for this method; the methods they do take, in a fixed order.
    MethodNotAllowed { allowed: Vec<Method> },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Api {
    Root,
    PutJob,
    GetJobs,
    DeleteJob,
    JobStats,
    OpenJob,
    CloseJob,
    PostData,
    Flush,
    Buckets,
    Records,
    OverallBuckets,
    ModelSnapshots,
    UpdateModelSnapshot,
    DeleteModelSnapshot,
    RevertModelSnapshot,
    UpdateJob,
    ResetJob,
    ValidateJob,
    ValidateDetector,
    EstimateModelMemory,
    MlInfo,
    DeleteExpiredData,
    CatJobs,
    PutFilter,
    GetFilters,
    UpdateFilter,
    DeleteFilter,
    PutCalendar,
    GetCalendars,
    DeleteCalendar,
    AddCalendarJobs,
    RemoveCalendarJobs,
    PostCalendarEvents,
    GetCalendarEvents,
    DeleteCalendarEvent,
    UpgradeModelSnapshot,
    ModelSnapshotUpgradeStats,
    MemoryStats,
    SetUpgradeMode,
    Explorer,
    Metrics,
    Replay,
    Tasks,
    Influencers,
    Forecast,
    DeleteForecast,
    ModelPlot,
    Forecasts,
    Categories,
    Authenticate,
    CreateApiKey,
    GetApiKeys,
    InvalidateApiKeys,
    PutRole,
    GetRoles,
    DeleteRole,
    PutUser,
    GetUsers,
    DeleteUser,
    ChangePassword,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verb {
    Get,
    Head,
    Post,
    Put,
    Delete,
}

/// The order methods are listed in 405 answers and `Allow` headers.
const VERB_ORDER: [Verb; 5] = [Verb::Get, Verb::Head, Verb::Post, Verb::Put, Verb::Delete];

impl Verb {
    fn of(method: &Method) -> Option<Verb> {
        match *method {
            Method::GET => Some(Verb::Get),
            Method::HEAD => Some(Verb::Head),
            Method::POST => Some(Verb::Post),
            Method::PUT => Some(Verb::Put),
            Method::DELETE => Some(Verb::Delete),
            _ => None,
        }
    }

    fn method(self) -> Method {
        match self {
            Verb::Get => Method::GET,
            Verb::Head => Method::HEAD,
            Verb::Post => Method::POST,
            Verb::Put => Method::PUT,
            Verb::Delete => Method::DELETE,
        }
    }
}

use Verb::{Delete, Get, Head, Post, Put};

/// (methods, pattern, api). Patterns use `{name}` for a path parameter and read like the spec.
#[rustfmt::skip]
const ROUTES: &[(&[Verb], &str, Api)] = &[
    (&[Get, Head], "/", Api::Root),
    (&[Put], "/_ml/anomaly_detectors/{job_id}", Api::PutJob),
    (&[Get], "/_ml/anomaly_detectors/{job_id}", Api::GetJobs),
    (&[Delete], "/_ml/anomaly_detectors/{job_id}", Api::DeleteJob),
    (&[Get], "/_ml/anomaly_detectors", Api::GetJobs),
    (&[Get], "/_ml/anomaly_detectors/_stats", Api::JobStats),
    (&[Get], "/_ml/anomaly_detectors/{job_id}/_stats", Api::JobStats),
    (&[Post], "/_ml/anomaly_detectors/{job_id}/_open", Api::OpenJob),
    (&[Post], "/_ml/anomaly_detectors/{job_id}/_close", Api::CloseJob),
    (&[Post], "/_ml/anomaly_detectors/{job_id}/_data", Api::PostData),
    (&[Post], "/_ml/anomaly_detectors/{job_id}/_flush", Api::Flush),
    (&[Get, Post], "/_ml/anomaly_detectors/{job_id}/results/buckets", Api::Buckets),
    (&[Get, Post], "/_ml/anomaly_detectors/{job_id}/results/buckets/{timestamp}", Api::Buckets),
    (&[Get, Post], "/_ml/anomaly_detectors/{job_id}/results/records", Api::Records),
    // auspex extensions (README "auspex extensions").
    (&[Get], "/_explorer", Api::Explorer),
    (&[Get], "/_explorer/{asset}", Api::Explorer),
    (&[Get], "/_prometheus/metrics", Api::Metrics),
    (&[Post], "/_auspex/anomaly_detectors/{job_id}/_replay", Api::Replay),
    (&[Get], "/_auspex/tasks", Api::Tasks),
    (&[Get], "/_auspex/tasks/{task_id}", Api::Tasks),
    (&[Get, Post], "/_ml/anomaly_detectors/{job_id}/results/model_plot", Api::ModelPlot),
    (&[Get, Post], "/_ml/anomaly_detectors/{job_id}/results/forecasts", Api::Forecasts),
    (&[Get, Post], "/_ml/anomaly_detectors/{job_id}/results/forecasts/{forecast_id}", Api::Forecasts),
    // Spec endpoints not implemented yet.
    (&[Get], "/_cat/ml/anomaly_detectors", Api::CatJobs),
    (&[Get], "/_cat/ml/anomaly_detectors/{job_id}", Api::CatJobs),
    (&[Delete], "/_ml/calendars/{calendar_id}", Api::DeleteCalendar),
    (&[Delete], "/_ml/calendars/{calendar_id}/events/{event_id}", Api::DeleteCalendarEvent),
    (&[Delete], "/_ml/calendars/{calendar_id}/jobs/{job_id}", Api::RemoveCalendarJobs),
    (&[Delete], "/_ml/_delete_expired_data", Api::DeleteExpiredData),
    (&[Delete], "/_ml/_delete_expired_data/{job_id}", Api::DeleteExpiredData),
    (&[Delete], "/_ml/filters/{filter_id}", Api::DeleteFilter),
    (&[Delete], "/_ml/anomaly_detectors/{job_id}/_forecast", Api::DeleteForecast),
    (&[Delete], "/_ml/anomaly_detectors/{job_id}/_forecast/{forecast_id}", Api::DeleteForecast),
    (&[Delete], "/_ml/anomaly_detectors/{job_id}/model_snapshots/{snapshot_id}", Api::DeleteModelSnapshot),
    (&[Post], "/_ml/anomaly_detectors/_estimate_model_memory", Api::EstimateModelMemory),
    (&[Post], "/_ml/anomaly_detectors/{job_id}/_forecast", Api::Forecast),
    (&[Get], "/_ml/calendars/{calendar_id}/events", Api::GetCalendarEvents),
    (&[Get, Post], "/_ml/calendars", Api::GetCalendars),
    (&[Get, Post], "/_ml/calendars/{calendar_id}", Api::GetCalendars),
    (&[Get, Post], "/_ml/anomaly_detectors/{job_id}/results/categories", Api::Categories),
    (&[Get, Post], "/_ml/anomaly_detectors/{job_id}/results/categories/{category_id}", Api::Categories),
    (&[Get], "/_ml/filters", Api::GetFilters),
    (&[Get], "/_ml/filters/{filter_id}", Api::GetFilters),
    (&[Get, Post], "/_ml/anomaly_detectors/{job_id}/results/influencers", Api::Influencers),
    (&[Get], "/_ml/memory/_stats", Api::MemoryStats),
    (&[Get], "/_ml/memory/{node_id}/_stats", Api::MemoryStats),
    (&[Get], "/_ml/anomaly_detectors/{job_id}/model_snapshots/{snapshot_id}/_upgrade/_stats", Api::ModelSnapshotUpgradeStats),
    (&[Get, Post], "/_ml/anomaly_detectors/{job_id}/model_snapshots", Api::ModelSnapshots),
    (&[Get, Post], "/_ml/anomaly_detectors/{job_id}/model_snapshots/{snapshot_id}", Api::ModelSnapshots),
    (&[Get, Post], "/_ml/anomaly_detectors/{job_id}/results/overall_buckets", Api::OverallBuckets),
    (&[Get], "/_ml/info", Api::MlInfo),
    (&[Post], "/_ml/calendars/{calendar_id}/events", Api::PostCalendarEvents),
    (&[Put], "/_ml/calendars/{calendar_id}", Api::PutCalendar),
    (&[Put], "/_ml/calendars/{calendar_id}/jobs/{job_id}", Api::AddCalendarJobs),
    (&[Put], "/_ml/filters/{filter_id}", Api::PutFilter),
    (&[Post], "/_ml/anomaly_detectors/{job_id}/_reset", Api::ResetJob),
    (&[Post], "/_ml/anomaly_detectors/{job_id}/model_snapshots/{snapshot_id}/_revert", Api::RevertModelSnapshot),
    (&[Post], "/_ml/set_upgrade_mode", Api::SetUpgradeMode),
    (&[Post], "/_ml/filters/{filter_id}/_update", Api::UpdateFilter),
    (&[Post], "/_ml/anomaly_detectors/{job_id}/_update", Api::UpdateJob),
    (&[Post], "/_ml/anomaly_detectors/{job_id}/model_snapshots/{snapshot_id}/_update", Api::UpdateModelSnapshot),
    (&[Post], "/_ml/anomaly_detectors/{job_id}/model_snapshots/{snapshot_id}/_upgrade", Api::UpgradeModelSnapshot),
    (&[Post], "/_ml/anomaly_detectors/_validate", Api::ValidateJob),
    (&[Post], "/_ml/anomaly_detectors/_validate/detector", Api::ValidateDetector),
    // Security (enforced unless --no-security).
    (&[Get], "/_security/_authenticate", Api::Authenticate),
    (&[Post, Put], "/_security/api_key", Api::CreateApiKey),
    (&[Get], "/_security/api_key", Api::GetApiKeys),
    (&[Delete], "/_security/api_key", Api::InvalidateApiKeys),
    (&[Put, Post], "/_security/role/{name}", Api::PutRole),
    (&[Get], "/_security/role", Api::GetRoles),
    (&[Get], "/_security/role/{name}", Api::GetRoles),
    (&[Delete], "/_security/role/{name}", Api::DeleteRole),
    (&[Put, Post], "/_security/user/{username}", Api::PutUser),
    (&[Get], "/_security/user", Api::GetUsers),
    (&[Get], "/_security/user/{username}", Api::GetUsers),
    (&[Delete], "/_security/user/{username}", Api::DeleteUser),
    (&[Put, Post], "/_security/user/{username}/_password", Api::ChangePassword),
    (&[Put, Post], "/_security/user/_password", Api::ChangePassword),
];

/// One pattern that fits the path: its literal-ness per segment (for ordering) and captures.
struct Candidate {
    literal_mask: Vec<bool>,
    pattern: &'static str,
    captures: Vec<String>,
}

fn candidates(segments: &[String]) -> Vec<Candidate> {
    let mut found: Vec<Candidate> = Vec::new();
    for (_, pattern, _) in ROUTES {
        if found.iter().any(|c| c.pattern == *pattern) {
            continue;
        }
        let parts: Vec<&str> = pattern.split('/').filter(|p| !p.is_empty()).collect();
        if parts.len() != segments.len() {
            continue;
        }
        let mut captures = Vec::new();
        let mut literal_mask = Vec::with_capacity(parts.len());
        let fits = parts.iter().zip(segments).all(|(part, segment)| {
            if part.starts_with('{') {
                captures.push(segment.clone());
                literal_mask.push(false);
                true
            } else {
                literal_mask.push(true);
                part == segment
            }
        });
        if fits {
            found.push(Candidate {
                literal_mask,
                pattern,
                captures,
            });
        }
    }
    // Most literal first: compare segment by segment, a literal beating a parameter.
    found.sort_by(|a, b| b.literal_mask.cmp(&a.literal_mask));
    found
}

/// Routes a request. `segments` are the decoded, non-empty path segments.
pub fn route(method: &Method, segments: &[String]) -> Result<Endpoint, RouteError> {
    let candidates = candidates(segments);
    if let Some(verb) = Verb::of(method) {
        for candidate in &candidates {
            let handler = ROUTES
                .iter()
                .find(|(verbs, pattern, _)| *pattern == candidate.pattern && verbs.contains(&verb));
            if let Some((_, _, api)) = handler {
                return Ok(endpoint(*api, candidate.captures.clone()));
            }
        }
    }
    if candidates.is_empty() {
        Err(RouteError::NoHandler)
    } else {
        Err(RouteError::MethodNotAllowed {
            allowed: allowed_methods(segments),
        })
    }
}

/// Every (method, pattern) of the route table, in table order: the tests walk it to try every
/// endpoint (the security matrix).
pub fn routes() -> Vec<(Method, &'static str)> {
    ROUTES
        .iter()
        .flat_map(|(verbs, pattern, _)| verbs.iter().map(move |verb| (verb.method(), *pattern)))
        .collect()
}

/// Every method some pattern fitting the path takes (for 405 and `OPTIONS`).
pub fn allowed_methods(segments: &[String]) -> Vec<Method> {
    let fitting: Vec<&'static str> = candidates(segments).iter().map(|c| c.pattern).collect();
    VERB_ORDER
        .iter()
        .filter(|verb| {
            ROUTES
                .iter()
                .any(|(verbs, pattern, _)| fitting.contains(pattern) && verbs.contains(verb))
        })
        .map(|verb| verb.method())
        .collect()
}

fn endpoint(api: Api, captures: Vec<String>) -> Endpoint {
    let mut captures = captures.into_iter();
    let mut next = || captures.next().unwrap_or_default();
    match api {
        Api::Root => Endpoint::Root,
        Api::PutJob => Endpoint::PutJob { job_id: next() },
        Api::GetJobs => Endpoint::GetJobs {
            expression: non_empty_or_all(next()),
        },
        Api::DeleteJob => Endpoint::DeleteJob { job_id: next() },
        Api::JobStats => Endpoint::JobStats {
            expression: non_empty_or_all(next()),
        },
        Api::OpenJob => Endpoint::OpenJob { job_id: next() },
        Api::CloseJob => Endpoint::CloseJob { expression: next() },
        Api::PostData => Endpoint::PostData { job_id: next() },
        Api::Flush => Endpoint::Flush { job_id: next() },
        Api::Buckets => {
            let job_id = next();
            let timestamp = Some(next()).filter(|t| !t.is_empty());
            Endpoint::Buckets { job_id, timestamp }
        }
        Api::Records => Endpoint::Records { job_id: next() },
        Api::OverallBuckets => Endpoint::OverallBuckets { expression: next() },
        Api::ModelSnapshots => {
            let job_id = next();
            let snapshot_id = Some(next()).filter(|s| !s.is_empty());
            Endpoint::ModelSnapshots {
                job_id,
                snapshot_id,
            }
        }
        Api::UpdateModelSnapshot => Endpoint::UpdateModelSnapshot {
            job_id: next(),
            snapshot_id: next(),
        },
        Api::DeleteModelSnapshot => Endpoint::DeleteModelSnapshot {
            job_id: next(),
            snapshot_id: next(),
        },
        Api::RevertModelSnapshot => Endpoint::RevertModelSnapshot {
            job_id: next(),
            snapshot_id: next(),
        },
        Api::UpdateJob => Endpoint::UpdateJob { job_id: next() },
        Api::ResetJob => Endpoint::ResetJob { job_id: next() },
        Api::ValidateJob => Endpoint::ValidateJob,
        Api::ValidateDetector => Endpoint::ValidateDetector,
        Api::EstimateModelMemory => Endpoint::EstimateModelMemory,
        Api::MlInfo => Endpoint::MlInfo,
        Api::DeleteExpiredData => Endpoint::DeleteExpiredData {
            job_id: Some(next()).filter(|s| !s.is_empty()),
        },
        Api::CatJobs => Endpoint::CatJobs {
            job_id: Some(next()).filter(|s| !s.is_empty()),
        },
        Api::PutFilter => Endpoint::PutFilter { filter_id: next() },
        Api::GetFilters => Endpoint::GetFilters {
            filter_id: Some(next()).filter(|s| !s.is_empty()),
        },
        Api::UpdateFilter => Endpoint::UpdateFilter { filter_id: next() },
        Api::DeleteFilter => Endpoint::DeleteFilter { filter_id: next() },
        Api::PutCalendar => Endpoint::PutCalendar {
            calendar_id: next(),
        },
        Api::GetCalendars => Endpoint::GetCalendars {
            calendar_id: Some(next()).filter(|s| !s.is_empty()),
        },
        Api::DeleteCalendar => Endpoint::DeleteCalendar {
            calendar_id: next(),
        },
        Api::AddCalendarJobs | Api::RemoveCalendarJobs => Endpoint::CalendarJobs {
            calendar_id: next(),
            job_ids: next(),
            add: api == Api::AddCalendarJobs,
        },
        Api::PostCalendarEvents => Endpoint::PostCalendarEvents {
            calendar_id: next(),
        },
        Api::GetCalendarEvents => Endpoint::GetCalendarEvents {
            calendar_id: next(),
        },
        Api::DeleteCalendarEvent => Endpoint::DeleteCalendarEvent {
            calendar_id: next(),
            event_id: next(),
        },
        Api::UpgradeModelSnapshot => Endpoint::UpgradeModelSnapshot {
            job_id: next(),
            snapshot_id: next(),
        },
        Api::ModelSnapshotUpgradeStats => Endpoint::ModelSnapshotUpgradeStats { job_id: next() },
        Api::MemoryStats => Endpoint::MemoryStats {
            node_id: Some(next()).filter(|n| !n.is_empty()),
        },
        Api::SetUpgradeMode => Endpoint::SetUpgradeMode,
        Api::Explorer => Endpoint::Explorer {
            asset: Some(next()).filter(|a| !a.is_empty()),
        },
        Api::Metrics => Endpoint::Metrics,
        Api::Replay => Endpoint::Replay { job_id: next() },
        Api::Tasks => Endpoint::Tasks {
            task_id: Some(next()).filter(|t| !t.is_empty()),
        },
        Api::Influencers => Endpoint::Influencers { job_id: next() },
        Api::Forecast => Endpoint::Forecast { job_id: next() },
        Api::DeleteForecast => Endpoint::DeleteForecast {
            job_id: next(),
            forecast_id: Some(next()).filter(|f| !f.is_empty()),
        },
        Api::ModelPlot => Endpoint::ModelPlot { job_id: next() },
        Api::Forecasts => Endpoint::Forecasts {
            job_id: next(),
            forecast_id: Some(next()).filter(|f| !f.is_empty()),
        },
        Api::Categories => {
            let job_id = next();
            let category_id = Some(next()).filter(|c| !c.is_empty());
            Endpoint::Categories {
                job_id,
                category_id,
            }
        }
        Api::Authenticate => Endpoint::Authenticate,
        Api::CreateApiKey => Endpoint::CreateApiKey,
        Api::GetApiKeys => Endpoint::GetApiKeys,
        Api::InvalidateApiKeys => Endpoint::InvalidateApiKeys,
        Api::PutRole => Endpoint::PutRole { name: next() },
        Api::GetRoles => Endpoint::GetRoles {
            name: Some(next()).filter(|n| !n.is_empty()),
        },
        Api::DeleteRole => Endpoint::DeleteRole { name: next() },
        Api::PutUser => Endpoint::PutUser { username: next() },
        Api::GetUsers => Endpoint::GetUsers {
            username: Some(next()).filter(|n| !n.is_empty()),
        },
        Api::DeleteUser => Endpoint::DeleteUser { username: next() },
        Api::ChangePassword => Endpoint::ChangePassword {
            username: Some(next()).filter(|n| !n.is_empty()),
        },
    }
}

fn non_empty_or_all(expression: String) -> String {
    if expression.is_empty() {
        "_all".to_string()
    } else {
        expression
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segs(path: &str) -> Vec<String> {
        path.split('/')
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect()
    }

    fn routed(method: Method, path: &str) -> Result<Endpoint, RouteError> {
        route(&method, &segs(path))
    }

    #[test]
    fn implemented_endpoints() {
        assert_eq!(routed(Method::GET, "/"), Ok(Endpoint::Root));
        assert_eq!(routed(Method::HEAD, "/"), Ok(Endpoint::Root));
        assert_eq!(
            routed(Method::PUT, "/_ml/anomaly_detectors/j1"),
            Ok(Endpoint::PutJob {
                job_id: "j1".into()
            })
        );
        assert_eq!(
            routed(Method::GET, "/_ml/anomaly_detectors"),
            Ok(Endpoint::GetJobs {
                expression: "_all".into()
            })
        );
        assert_eq!(
            routed(Method::GET, "/_ml/anomaly_detectors/a*,b"),
            Ok(Endpoint::GetJobs {
                expression: "a*,b".into()
            })
        );
        assert_eq!(
            routed(Method::DELETE, "/_ml/anomaly_detectors/j1"),
            Ok(Endpoint::DeleteJob {
                job_id: "j1".into()
            })
        );
        assert_eq!(
            routed(Method::GET, "/_ml/anomaly_detectors/_stats"),
            Ok(Endpoint::JobStats {
                expression: "_all".into()
            })
        );
        assert_eq!(
            routed(Method::GET, "/_ml/anomaly_detectors/j1/_stats"),
            Ok(Endpoint::JobStats {
                expression: "j1".into()
            })
        );
        assert_eq!(
            routed(Method::POST, "/_ml/anomaly_detectors/j1/_flush"),
            Ok(Endpoint::Flush {
                job_id: "j1".into()
            })
        );
        assert_eq!(
            routed(
                Method::POST,
                "/_ml/anomaly_detectors/j1/results/buckets/1403481600000"
            ),
            Ok(Endpoint::Buckets {
                job_id: "j1".into(),
                timestamp: Some("1403481600000".into())
            })
        );
        assert_eq!(
            routed(Method::GET, "/_ml/anomaly_detectors/j1/results/records"),
            Ok(Endpoint::Records {
                job_id: "j1".into()
            })
        );
    }

    #[test]
    fn auspex_extensions() {
        assert_eq!(
            routed(Method::GET, "/_explorer"),
            Ok(Endpoint::Explorer { asset: None })
        );
        assert_eq!(
            routed(Method::GET, "/_explorer/app.js"),
            Ok(Endpoint::Explorer {
                asset: Some("app.js".into())
            })
        );
        assert_eq!(
            routed(Method::GET, "/_prometheus/metrics"),
            Ok(Endpoint::Metrics)
        );
        assert_eq!(
            routed(Method::POST, "/_auspex/anomaly_detectors/j1/_replay"),
            Ok(Endpoint::Replay {
                job_id: "j1".into()
            })
        );
        assert_eq!(
            routed(Method::GET, "/_auspex/tasks/replay-3"),
            Ok(Endpoint::Tasks {
                task_id: Some("replay-3".into())
            })
        );
        assert_eq!(
            routed(Method::GET, "/_auspex/tasks/replay-3")
                .unwrap()
                .name(),
            "auspex.tasks"
        );
        assert_eq!(
            routed(Method::POST, "/_ml/anomaly_detectors/j1/results/model_plot"),
            Ok(Endpoint::ModelPlot {
                job_id: "j1".into()
            })
        );
        assert_eq!(
            routed(
                Method::GET,
                "/_ml/anomaly_detectors/j1/results/forecasts/f1"
            ),
            Ok(Endpoint::Forecasts {
                job_id: "j1".into(),
                forecast_id: Some("f1".into())
            })
        );
        assert_eq!(
            routed(Method::DELETE, "/_ml/anomaly_detectors/j1/_forecast"),
            Ok(Endpoint::DeleteForecast {
                job_id: "j1".into(),
                forecast_id: None
            })
        );
    }

    #[test]
    fn security_endpoints_and_their_actions() {
        assert_eq!(
            routed(Method::PUT, "/_security/user/_password"),
            Ok(Endpoint::ChangePassword { username: None })
        );
        assert_eq!(
            routed(Method::POST, "/_security/user/ann/_password"),
            Ok(Endpoint::ChangePassword {
                username: Some("ann".into())
            })
        );
        assert_eq!(
            routed(Method::DELETE, "/_security/api_key"),
            Ok(Endpoint::InvalidateApiKeys)
        );
        let flush = routed(Method::POST, "/_ml/anomaly_detectors/j/_flush").unwrap();
        assert_eq!(flush.action(), "cluster:admin/xpack/ml/job/flush");
        let read = routed(Method::GET, "/_ml/anomaly_detectors/j/results/buckets").unwrap();
        assert!(read.action().starts_with("cluster:monitor/xpack/ml/"));
    }

    #[test]
    fn literal_segments_beat_parameters_but_fall_back_by_method() {
        // `_validate` has only POST; a GET falls through to the `{job_id}` pattern, as in ES.
        assert_eq!(
            routed(Method::POST, "/_ml/anomaly_detectors/_validate"),
            Ok(Endpoint::ValidateJob)
        );
        assert_eq!(
            routed(Method::GET, "/_ml/anomaly_detectors/_validate"),
            Ok(Endpoint::GetJobs {
                expression: "_validate".into()
            })
        );
    }

    #[test]
    fn wrong_method_lists_the_allowed_ones() {
        assert_eq!(
            routed(Method::DELETE, "/"),
            Err(RouteError::MethodNotAllowed {
                allowed: vec![Method::GET, Method::HEAD]
            })
        );
        assert_eq!(
            routed(Method::GET, "/_ml/anomaly_detectors/j1/_flush"),
            Err(RouteError::MethodNotAllowed {
                allowed: vec![Method::POST]
            })
        );
        assert_eq!(
            routed(Method::PATCH, "/_ml/anomaly_detectors/j1"),
            Err(RouteError::MethodNotAllowed {
                allowed: vec![Method::GET, Method::PUT, Method::DELETE]
            })
        );
    }

    #[test]
    fn unknown_paths() {
        assert_eq!(routed(Method::GET, "/nope"), Err(RouteError::NoHandler));
        assert_eq!(
            routed(Method::GET, "/_ml/anomaly_detectors/j1/results/nope"),
            Err(RouteError::NoHandler)
        );
        assert_eq!(
            routed(Method::GET, "/_ml/datafeeds"),
            Err(RouteError::NoHandler)
        );
    }

    /// Every path and method of the shared REST spec routes somewhere; the ones auspex does not
    /// implement yet name their spec API.
    #[test]
    fn every_spec_endpoint_is_routed() {
        // `shared/` sits beside the checkout, for developers and CI alike.
        let dir = std::path::Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../shared/es-api/spec"
        ));
        let Ok(entries) = std::fs::read_dir(dir) else {
            eprintln!("spec directory {} not present; skipping", dir.display());
            return;
        };
        let implemented = [
            "ml.get_categories",
            "ml.put_job",
            "ml.get_jobs",
            "ml.delete_job",
            "ml.get_job_stats",
            "ml.open_job",
            "ml.close_job",
            "ml.post_data",
            "ml.flush_job",
            "ml.get_buckets",
            "ml.get_records",
            "ml.get_overall_buckets",
            "ml.get_model_snapshots",
            "ml.update_model_snapshot",
            "ml.delete_model_snapshot",
            "ml.revert_model_snapshot",
            "ml.update_job",
            "ml.reset_job",
            "ml.validate",
            "ml.validate_detector",
            "ml.estimate_model_memory",
            "ml.info",
            "ml.delete_expired_data",
            "cat.ml_jobs",
            "ml.put_filter",
            "ml.get_filters",
            "ml.update_filter",
            "ml.delete_filter",
            "ml.put_calendar",
            "ml.get_calendars",
            "ml.delete_calendar",
            "ml.put_calendar_job",
            "ml.delete_calendar_job",
            "ml.post_calendar_events",
            "ml.get_calendar_events",
            "ml.delete_calendar_event",
            "ml.upgrade_job_snapshot",
            "ml.get_model_snapshot_upgrade_stats",
            "ml.get_memory_stats",
            "ml.set_upgrade_mode",
            "ml.get_influencers",
            "ml.forecast",
            "ml.delete_forecast",
        ];
        let mut checked = 0;
        for entry in entries.flatten() {
            let text = std::fs::read_to_string(entry.path()).expect("spec file is readable");
            let spec: serde_json::Value = serde_json::from_str(&text).expect("spec is JSON");
            let (name, api) = spec
                .as_object()
                .and_then(|o| o.iter().next())
                .expect("one API per file");
            for path in api["url"]["paths"].as_array().expect("paths") {
                let pattern = path["path"].as_str().expect("path");
                let concrete: String = pattern
                    .split('/')
                    .map(|s| if s.starts_with('{') { "value1" } else { s })
                    .collect::<Vec<_>>()
                    .join("/");
                for method in path["methods"].as_array().expect("methods") {
                    let method: Method = method.as_str().expect("method").parse().expect("verb");
                    let endpoint = route(&method, &segs(&concrete))
                        .unwrap_or_else(|e| panic!("{name} {method} {pattern}: {e:?}"));
                    assert!(
                        implemented.contains(&name.as_str()),
                        "{name} {method} {pattern} routed to {endpoint:?}"
                    );
                    checked += 1;
                }
            }
        }
        assert!(checked > 50, "only {checked} spec routes found");
    }
}
