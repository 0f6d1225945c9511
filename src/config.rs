//! Configuration: the command line, one optional TOML config file, environment variables, and the
//! validated [`Config`] the rest of the program reads.
//!
//! Every setting has a flag and an environment variable (clap reads both: a flag wins over its
//! variable), a key in the config file, and a default: flag > env > file > default. The file is
//! `--config FILE` / `AUSPEX_CONFIG`, else `./auspex.toml` when it exists, else none
//! (`auspex.example.toml` lists every key). The command line is `auspex [COMMAND] [flags]`; `serve`
//! is the default command, and the offline commands (`run`, `replay`, `inspect`) take the same
//! `--config`, `--data` and `--log-format` so they find the same store a server would use.

mod file;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::builder::BoolishValueParser;

pub use file::FileConfig;

use crate::cli::{InspectArgs, ReplayArgs, RunArgs};

/// The config file read when neither `--config` nor `AUSPEX_CONFIG` names one.
pub const DEFAULT_CONFIG_FILE: &str = "auspex.toml";

/// The whole command line.
#[derive(Debug, clap::Parser)]
#[command(
    name = "auspex",
    version,
    about = "Anomaly-detection job engine speaking the Elasticsearch ML API",
    long_about = "Anomaly-detection job engine speaking the Elasticsearch ML API.\n\n\
        Settings come from flags, then AUSPEX_* environment variables, then the config file \
        (--config, or ./auspex.toml when present), then the defaults shown.\n\
        Logs go to stderr; the level is set by AUSPEX_LOG or RUST_LOG (default info).",
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    /// The `serve` flags, when `serve` is not spelled out.
    #[command(flatten)]
    pub serve: ServeArgs,
}

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Serve the HTTP API (the default).
    Serve(ServeArgs),
    /// Run a job over NDJSON or CSV files, offline: results go into the store (or to stdout).
    Run(RunArgs),
    /// Re-run a stored job over the input it stored, from the start or from a snapshot, offline.
    Replay(ReplayArgs),
    /// Show what a store holds: jobs, states, counts, snapshots, sizes.
    Inspect(InspectArgs),
    /// Check a whole store offline (every value's CRC and the cross-tree invariants); exits 1 if
    /// anything is wrong, 2 if the store cannot be opened. Run it while no server uses the data path.
    Verify(crate::cli::VerifyArgs),
    /// Manage jobs offline (delete), on a data path no server is using: removes even a job
    /// whose stored config is damaged.
    Jobs(crate::cli::JobsArgs),
    /// Manage users offline (add, passwd, delete, list), on a data path no server is using.
    Users(crate::cli::UsersArgs),
    /// Manage custom roles offline (add, delete, list), on a data path no server is using.
    Roles(crate::cli::RolesArgs),
}

impl Cli {
    /// The command to run (`serve` when none was given).
    pub fn into_command(self) -> Command {
        self.command.unwrap_or(Command::Serve(self.serve))
    }

    /// The server config, whichever way `serve` was given (panics on another command: tests only).
    pub fn into_serve_config(self) -> Config {
        match self.into_command() {
            Command::Serve(args) => args.resolve().expect("a valid serve config"),
            other => panic!("not a serve command: {other:?}"),
        }
    }
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// Flags every command takes: where the config file and the data are, how to log.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct CommonArgs {
    /// Config file (TOML) [default: ./auspex.toml when it exists]
    #[arg(long, env = "AUSPEX_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Data path (like Elasticsearch's path.data): the store lives in <data>/store [default: data]
    #[arg(long, env = "AUSPEX_DATA", value_name = "PATH")]
    pub data: Option<PathBuf>,
    /// Log format on stderr [default: text]
    #[arg(long, env = "AUSPEX_LOG_FORMAT", value_enum)]
    pub log_format: Option<LogFormat>,
}

/// `serve` flags. Each is `None` unless given by flag or environment.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// Address to listen on; port 0 picks a free port (stdout says which) [default: 127.0.0.1:9200]
    #[arg(long, env = "AUSPEX_LISTEN", value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// Largest request body accepted, e.g. 100mb (http.max_content_length) [default: 100mb]
    #[arg(long, env = "AUSPEX_MAX_CONTENT_LENGTH", value_name = "SIZE", value_parser = parse_byte_size)]
    pub max_content_length: Option<u64>,
    /// Longest a request body may take to arrive once its headers are in, e.g. 60s or 500ms; a
    /// client that stalls mid-body gets a 408 and the connection is closed [default: 60s]
    #[arg(long, env = "AUSPEX_BODY_READ_TIMEOUT", value_name = "DURATION", value_parser = parse_duration)]
    pub body_read_timeout: Option<std::time::Duration>,
    /// Request body bytes being read or held across all connections; a request that would go
    /// over gets 429 es_rejected_execution_exception. At least --max-content-length [default: 512mb]
    #[arg(long, env = "AUSPEX_MAX_IN_FLIGHT_BYTES", value_name = "SIZE", value_parser = parse_byte_size)]
    pub max_in_flight_bytes: Option<u64>,
    /// Connections served at once; more wait in the listen backlog [default: 1000]
    #[arg(long, env = "AUSPEX_MAX_CONNECTIONS", value_name = "N")]
    pub max_connections: Option<usize>,
    /// Connection slots only authenticated connections may hold: a connection counts as
    /// unauthenticated until one of its requests is answered with anything but 401, and those
    /// may hold at most max-connections minus this, except from addresses that authenticated
    /// recently [default: a tenth of max-connections, at most 100]
    #[arg(long, env = "AUSPEX_RESERVED_CONNECTIONS", value_name = "N")]
    pub reserved_connections: Option<usize>,
    /// Connections one client address may hold at once; more are closed at once [default: 250]
    #[arg(long, env = "AUSPEX_MAX_CONNECTIONS_PER_ADDRESS", value_name = "N")]
    pub max_connections_per_address: Option<usize>,
    /// Longest an unauthenticated connection may take to send a complete request head (first
    /// request, or the next one after a 401); later requests of an authenticated keep-alive
    /// connection get 60s [default: 10s]
    #[arg(long, env = "AUSPEX_HEADER_READ_TIMEOUT", value_name = "DURATION", value_parser = parse_duration)]
    pub header_read_timeout: Option<std::time::Duration>,
    /// Failed logins (per user, and per client address) within --login-failure-window before
    /// further attempts are delayed, exponentially from 250ms up to --login-max-delay [default: 5]
    #[arg(long, env = "AUSPEX_LOGIN_FREE_FAILURES", value_name = "N")]
    pub login_free_failures: Option<u32>,
    /// How long a failed login counts [default: 300s]
    #[arg(long, env = "AUSPEX_LOGIN_FAILURE_WINDOW", value_name = "DURATION", value_parser = parse_duration)]
    pub login_failure_window: Option<std::time::Duration>,
    /// Longest delay of a login attempt; attempts queued further ahead are refused unchecked
    /// [default: 30s]
    #[arg(long, env = "AUSPEX_LOGIN_MAX_DELAY", value_name = "DURATION", value_parser = parse_duration)]
    pub login_max_delay: Option<std::time::Duration>,
    /// Empty buckets one `_data` request or `advance_time` may finalize after the latest record;
    /// more is a 400 that points at `skip_time` [default: 10080]
    #[arg(long, env = "AUSPEX_MAX_EMPTY_BUCKETS", value_name = "N")]
    pub max_empty_buckets: Option<u64>,
    /// Default model_snapshot_retention_days of new jobs that do not set it [default: 10]
    #[arg(
        long,
        env = "AUSPEX_MODEL_SNAPSHOT_RETENTION_DAYS",
        value_name = "DAYS"
    )]
    pub model_snapshot_retention_days: Option<u64>,
    /// Default daily_model_snapshot_retention_after_days of new jobs [default: 1]
    #[arg(
        long,
        env = "AUSPEX_DAILY_MODEL_SNAPSHOT_RETENTION_AFTER_DAYS",
        value_name = "DAYS"
    )]
    pub daily_model_snapshot_retention_after_days: Option<u64>,
    /// Default results_retention_days of new jobs [default: none, results are kept]
    #[arg(long, env = "AUSPEX_RESULTS_RETENTION_DAYS", value_name = "DAYS")]
    pub results_retention_days: Option<u64>,
    /// Turn authentication and authorization off: anyone who can connect may do anything (like
    /// Elasticsearch's xpack.security.enabled: false). For local experiments only
    #[arg(long)]
    pub no_security: bool,
    /// Require authentication (users, roles, API keys); `false` is the same as --no-security
    /// [default: true]
    #[arg(long, env = "AUSPEX_SECURITY", value_name = "BOOL", value_parser = BoolishValueParser::new(), num_args = 0..=1, default_missing_value = "true")]
    pub security: Option<bool>,
    /// Serve HTTPS with --tls-certificate and --tls-key [default: true when both are given]
    #[arg(long, env = "AUSPEX_TLS_ENABLED", value_name = "BOOL", value_parser = BoolishValueParser::new(), num_args = 0..=1, default_missing_value = "true")]
    pub tls_enabled: Option<bool>,
    /// TLS certificate chain, PEM
    #[arg(long, env = "AUSPEX_TLS_CERTIFICATE", value_name = "FILE")]
    pub tls_certificate: Option<PathBuf>,
    /// TLS private key, PEM (PKCS#8, PKCS#1 or SEC1)
    #[arg(long, env = "AUSPEX_TLS_KEY", value_name = "FILE")]
    pub tls_key: Option<PathBuf>,
    /// Allow plain HTTP on an address that is not loopback (without it, such an address needs
    /// TLS) [default: false]
    #[arg(long, env = "AUSPEX_INSECURE_HTTP", value_name = "BOOL", value_parser = BoolishValueParser::new(), num_args = 0..=1, default_missing_value = "true")]
    pub insecure_http: Option<bool>,
}

/// Defaults applied to new jobs that do not set these retention fields themselves.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RetentionDefaults {
    pub model_snapshot_retention_days: Option<u64>,
    pub daily_model_snapshot_retention_after_days: Option<u64>,
    pub results_retention_days: Option<u64>,
}

/// Security settings: on unless switched off explicitly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecurityConfig {
    pub enabled: bool,
    /// How failed logins slow further attempts down.
    pub login: crate::security::LoginThrottle,
}

impl Default for SecurityConfig {
    fn default() -> SecurityConfig {
        SecurityConfig {
            enabled: true,
            login: crate::security::LoginThrottle::default(),
        }
    }
}

/// TLS settings: on when a certificate and key are configured (unless `enabled = false`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsConfig {
    pub enabled: bool,
    pub certificate: Option<PathBuf>,
    pub key: Option<PathBuf>,
    /// Plain HTTP on a non-loopback address was asked for explicitly.
    pub insecure_http: bool,
}

/// The validated configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub listen: SocketAddr,
    pub data: PathBuf,
    pub max_content_length: u64,
    pub body_read_timeout: std::time::Duration,
    pub max_in_flight_bytes: u64,
    pub max_connections: usize,
    /// Slots unauthenticated connections may not take (`max_connections` minus this is theirs).
    pub reserved_connections: usize,
    pub max_connections_per_address: usize,
    /// For a connection's request heads until it has authenticated.
    pub header_read_timeout: std::time::Duration,
    /// The gap bound of `job::pipeline`.
    pub max_empty_buckets: u64,
    pub log_format: LogFormat,
    pub retention: RetentionDefaults,
    pub security: SecurityConfig,
    pub tls: TlsConfig,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 9200)),
            data: PathBuf::from("data"),
            max_content_length: 100 << 20,
            body_read_timeout: std::time::Duration::from_secs(60),
            max_in_flight_bytes: 512 << 20,
            max_connections: 1000,
            reserved_connections: 100,
            max_connections_per_address: 250,
            header_read_timeout: std::time::Duration::from_secs(10),
            max_empty_buckets: crate::job::pipeline::DEFAULT_MAX_EMPTY_BUCKETS,
            log_format: LogFormat::Text,
            retention: RetentionDefaults::default(),
            security: SecurityConfig::default(),
            tls: TlsConfig::default(),
        }
    }
}

impl Config {
    /// The store directory under the data path.
    pub fn store_path(&self) -> PathBuf {
        self.data.join("store")
    }
}

/// `Config::parse_from(["auspex", "--listen", ...])` (via `clap::Parser`): the `serve` flags and
/// their environment variables over the defaults, without a config file. Tests build their server
/// config this way.
impl clap::FromArgMatches for Config {
    fn from_arg_matches(matches: &clap::ArgMatches) -> Result<Config, clap::Error> {
        let args = ServeArgs::from_arg_matches(matches)?;
        args.layer(FileConfig::default()).map_err(|error| {
            clap::Error::raw(
                clap::error::ErrorKind::ValueValidation,
                format!("{error:#}\n"),
            )
        })
    }

    fn update_from_arg_matches(&mut self, matches: &clap::ArgMatches) -> Result<(), clap::Error> {
        *self = Config::from_arg_matches(matches)?;
        Ok(())
    }
}

impl clap::CommandFactory for Config {
    fn command() -> clap::Command {
        use clap::Args;
        ServeArgs::augment_args(clap::Command::new("auspex"))
    }

    fn command_for_update() -> clap::Command {
        use clap::Args;
        ServeArgs::augment_args_for_update(clap::Command::new("auspex"))
    }
}

impl clap::Parser for Config {}

impl CommonArgs {
    /// The config for an offline command: these flags over the file over the defaults.
    pub fn resolve(&self) -> anyhow::Result<Config> {
        ServeArgs {
            common: self.clone(),
            ..ServeArgs::default()
        }
        .resolve()
    }

    /// The config file named by `--config`/`AUSPEX_CONFIG`, else `./auspex.toml` if present.
    fn load_file(&self) -> anyhow::Result<FileConfig> {
        match &self.config {
            Some(path) => FileConfig::load(path),
            None if Path::new(DEFAULT_CONFIG_FILE).is_file() => {
                FileConfig::load(Path::new(DEFAULT_CONFIG_FILE))
            }
            None => Ok(FileConfig::default()),
        }
    }
}

impl ServeArgs {
    /// Flags (and their environment variables) over the config file over the defaults.
    pub fn resolve(&self) -> anyhow::Result<Config> {
        let file = self.common.load_file()?;
        self.layer(file)
    }

    fn layer(&self, file: FileConfig) -> anyhow::Result<Config> {
        let defaults = Config::default();
        let max_content_length = match (self.max_content_length, &file.limits.max_content_length) {
            (Some(bytes), _) => bytes,
            (None, Some(text)) => parse_byte_size(text)
                .map_err(anyhow::Error::msg)
                .context("in the config file, limits.max_content_length")?,
            (None, None) => defaults.max_content_length,
        };
        let body_read_timeout = layered_duration(
            self.body_read_timeout,
            &file.limits.body_read_timeout,
            "limits.body_read_timeout",
            defaults.body_read_timeout,
        )?;
        let header_read_timeout = layered_duration(
            self.header_read_timeout,
            &file.limits.header_read_timeout,
            "limits.header_read_timeout",
            defaults.header_read_timeout,
        )?;
        let login = crate::security::LoginThrottle {
            free_failures: self
                .login_free_failures
                .or(file.security.login_free_failures)
                .unwrap_or(defaults.security.login.free_failures),
            window: layered_duration(
                self.login_failure_window,
                &file.security.login_failure_window,
                "security.login_failure_window",
                defaults.security.login.window,
            )?,
            max_delay: layered_duration(
                self.login_max_delay,
                &file.security.login_max_delay,
                "security.login_max_delay",
                defaults.security.login.max_delay,
            )?,
        };
        let max_in_flight_bytes = match (self.max_in_flight_bytes, &file.limits.max_in_flight_bytes)
        {
            (Some(bytes), _) => bytes,
            (None, Some(text)) => parse_byte_size(text)
                .map_err(anyhow::Error::msg)
                .context("in the config file, limits.max_in_flight_bytes")?,
            (None, None) => defaults.max_in_flight_bytes,
        };
        let max_connections = self
            .max_connections
            .or(file.limits.max_connections)
            .unwrap_or(defaults.max_connections);
        let config = Config {
            listen: self.listen.or(file.listen).unwrap_or(defaults.listen),
            data: self
                .common
                .data
                .clone()
                .or(file.data)
                .unwrap_or(defaults.data),
            max_content_length,
            body_read_timeout,
            max_in_flight_bytes,
            max_connections,
            // A tenth of the slots, at most the default, unless set.
            reserved_connections: self
                .reserved_connections
                .or(file.limits.reserved_connections)
                .unwrap_or((max_connections / 10).min(defaults.reserved_connections)),
            max_connections_per_address: self
                .max_connections_per_address
                .or(file.limits.max_connections_per_address)
                .unwrap_or(defaults.max_connections_per_address),
            header_read_timeout,
            max_empty_buckets: self
                .max_empty_buckets
                .or(file.limits.max_empty_buckets)
                .unwrap_or(defaults.max_empty_buckets),
            log_format: self
                .common
                .log_format
                .or(file.log_format)
                .unwrap_or_default(),
            retention: RetentionDefaults {
                model_snapshot_retention_days: self
                    .model_snapshot_retention_days
                    .or(file.retention.model_snapshot_retention_days),
                daily_model_snapshot_retention_after_days: self
                    .daily_model_snapshot_retention_after_days
                    .or(file.retention.daily_model_snapshot_retention_after_days),
                results_retention_days: self
                    .results_retention_days
                    .or(file.retention.results_retention_days),
            },
            security: SecurityConfig {
                enabled: !self.no_security
                    && self
                        .security
                        .or(file.security.enabled)
                        .unwrap_or(defaults.security.enabled),
                login,
            },
            tls: self.tls(file.tls)?,
        };
        config.validate()?;
        Ok(config)
    }
}

/// A duration from its flag, else the config file's text under `key`, else `default`.
fn layered_duration(
    flag: Option<std::time::Duration>,
    file: &Option<String>,
    key: &str,
    default: std::time::Duration,
) -> anyhow::Result<std::time::Duration> {
    match (flag, file) {
        (Some(duration), _) => Ok(duration),
        (None, Some(text)) => parse_duration(text)
            .map_err(anyhow::Error::msg)
            .with_context(|| format!("in the config file, {key}")),
        (None, None) => Ok(default),
    }
}

impl ServeArgs {
    fn tls(&self, file: file::Tls) -> anyhow::Result<TlsConfig> {
        let certificate = self.tls_certificate.clone().or(file.certificate);
        let key = self.tls_key.clone().or(file.key);
        let both = certificate.is_some() && key.is_some();
        let asked = self.tls_enabled.or(file.enabled);
        let enabled = asked.unwrap_or(both);
        // One file without the other is a mistake, not a request for plain HTTP: serving plain
        // HTTP where HTTPS was meant would send credentials in clear text.
        if asked != Some(false) && certificate.is_some() != key.is_some() {
            anyhow::bail!(
                "TLS needs both tls.certificate and tls.key (--tls-certificate, --tls-key): only \
                 the {} is set",
                if certificate.is_some() {
                    "certificate"
                } else {
                    "key"
                }
            );
        }
        if enabled && !both {
            anyhow::bail!(
                "TLS needs both tls.certificate and tls.key (--tls-certificate, --tls-key)"
            );
        }
        Ok(TlsConfig {
            enabled,
            certificate,
            key,
            insecure_http: self.insecure_http.or(file.insecure_http).unwrap_or(false),
        })
    }
}

impl Config {
    /// Plain HTTP stays on loopback unless asked for: credentials would cross the network in
    /// clear text.
    fn validate(&self) -> anyhow::Result<()> {
        if !self.tls.enabled && !self.tls.insecure_http && !self.listen.ip().is_loopback() {
            anyhow::bail!(
                "refusing to serve plain HTTP on {}, which is not a loopback address: configure                  TLS (--tls-certificate and --tls-key) or allow it with --insecure-http",
                self.listen
            );
        }
        // A body the budget could never hold would be refused with 429 forever: say so at startup.
        if self.max_in_flight_bytes < self.max_content_length {
            anyhow::bail!(
                "limits.max_in_flight_bytes ({}b) must be at least limits.max_content_length ({}b)",
                self.max_in_flight_bytes,
                self.max_content_length
            );
        }
        if self.max_connections == 0 {
            anyhow::bail!("limits.max_connections must be at least 1");
        }
        if self.reserved_connections >= self.max_connections {
            anyhow::bail!(
                "limits.reserved_connections ({}) must be below limits.max_connections ({})",
                self.reserved_connections,
                self.max_connections
            );
        }
        if self.max_connections_per_address == 0 || self.header_read_timeout.is_zero() {
            anyhow::bail!(
                "limits.max_connections_per_address and limits.header_read_timeout must be above 0"
            );
        }
        Ok(())
    }

    /// `https` or `http`.
    pub fn scheme(&self) -> &'static str {
        if self.tls.enabled {
            "https"
        } else {
            "http"
        }
    }
}

/// `60s`, `500ms`, or a plain number of seconds.
pub fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    let lower = text.trim().to_ascii_lowercase();
    let (digits, millis) = match lower.strip_suffix("ms") {
        Some(digits) => (digits, true),
        None => (lower.strip_suffix('s').unwrap_or(&lower), false),
    };
    let number: u64 = digits
        .parse()
        .map_err(|_| format!("failed to parse [{text}] as a duration (e.g. 60s, 500ms)"))?;
    Ok(if millis {
        std::time::Duration::from_millis(number)
    } else {
        std::time::Duration::from_secs(number)
    })
}

/// `100mb`, `512kb`, `1gb`, `1048576b` or a plain byte count.
pub fn parse_byte_size(text: &str) -> Result<u64, String> {
    let lower = text.trim().to_ascii_lowercase();
    let split = lower
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(lower.len());
    let (digits, unit) = lower.split_at(split);
    let number: u64 = digits
        .parse()
        .map_err(|_| format!("failed to parse [{text}] as a byte size"))?;
    let factor: u64 = match unit {
        "" | "b" => 1,
        "kb" | "k" => 1 << 10,
        "mb" | "m" => 1 << 20,
        "gb" | "g" => 1 << 30,
        _ => {
            return Err(format!(
                "failed to parse [{text}] as a byte size: unknown unit [{unit}]"
            ))
        }
    };
    number
        .checked_mul(factor)
        .ok_or_else(|| format!("byte size [{text}] is too large"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[test]
    fn serve_is_the_default_subcommand() {
        let implicit = Cli::parse_from(["auspex", "--listen", "127.0.0.1:0", "--data", "d"])
            .into_serve_config();
        let explicit =
            Cli::parse_from(["auspex", "serve", "--listen", "127.0.0.1:0", "--data", "d"])
                .into_serve_config();
        for config in [implicit, explicit] {
            assert_eq!(config.listen.port(), 0);
            assert_eq!(config.data, PathBuf::from("d"));
            assert_eq!(config.max_content_length, 100 << 20);
        }
        assert!(Cli::try_parse_from(["auspex", "bogus"]).is_err());
    }

    #[test]
    fn flags_beat_the_file_which_beats_the_defaults() {
        let file: FileConfig = toml::from_str(
            r#"
            listen = "127.0.0.1:9999"
            data = "from-file"
            log_format = "json"
            [limits]
            max_content_length = "1kb"
            [retention]
            model_snapshot_retention_days = 3
            "#,
        )
        .unwrap();
        let args = ServeArgs::default();
        let config = args.layer(file.clone()).unwrap();
        assert_eq!(config.listen.port(), 9999);
        assert_eq!(config.data, PathBuf::from("from-file"));
        assert_eq!(config.log_format, LogFormat::Json);
        assert_eq!(config.max_content_length, 1024);
        assert_eq!(config.retention.model_snapshot_retention_days, Some(3));
        assert_eq!(config.retention.results_retention_days, None);

        let Cli { serve: flags, .. } = Cli::parse_from([
            "auspex",
            "--data",
            "from-flag",
            "--max-content-length",
            "2kb",
            "--model-snapshot-retention-days",
            "5",
        ]);
        let config = flags.layer(file).unwrap();
        assert_eq!(config.listen.port(), 9999, "unset flag: the file's value");
        assert_eq!(config.data, PathBuf::from("from-flag"));
        assert_eq!(config.max_content_length, 2048);
        assert_eq!(config.retention.model_snapshot_retention_days, Some(5));

        let config = ServeArgs::default().layer(FileConfig::default()).unwrap();
        assert_eq!(config, Config::default());
    }

    #[test]
    fn security_is_on_unless_switched_off() {
        let config = ServeArgs::default().layer(FileConfig::default()).unwrap();
        assert!(config.security.enabled);
        let Cli { serve: flags, .. } = Cli::parse_from(["auspex", "--no-security"]);
        assert!(!flags.layer(FileConfig::default()).unwrap().security.enabled);
        let Cli { serve: flags, .. } = Cli::parse_from(["auspex", "--security", "false"]);
        assert!(!flags.layer(FileConfig::default()).unwrap().security.enabled);
        let file: FileConfig = toml::from_str("[security]\nenabled = false\n").unwrap();
        assert!(
            !ServeArgs::default()
                .layer(file.clone())
                .unwrap()
                .security
                .enabled
        );
        let Cli { serve: flags, .. } = Cli::parse_from(["auspex", "--security"]);
        assert!(
            flags.layer(file).unwrap().security.enabled,
            "the flag beats the file"
        );
    }

    #[test]
    fn tls_needs_both_files_and_plain_http_stays_on_loopback() {
        let Cli { serve: flags, .. } = Cli::parse_from(["auspex", "--tls-enabled"]);
        let error = flags.layer(FileConfig::default()).unwrap_err();
        assert!(error.to_string().contains("tls.key"), "{error}");
        let Cli { serve: flags, .. } =
            Cli::parse_from(["auspex", "--tls-certificate", "c.pem", "--tls-key", "k.pem"]);
        assert!(flags.layer(FileConfig::default()).unwrap().tls.enabled);
        let Cli { serve: flags, .. } = Cli::parse_from(["auspex", "--tls-enabled", "false"]);
        assert!(!flags.layer(FileConfig::default()).unwrap().tls.enabled);

        let Cli { serve: flags, .. } = Cli::parse_from(["auspex", "--listen", "0.0.0.0:9200"]);
        let error = flags.layer(FileConfig::default()).unwrap_err();
        assert!(error.to_string().contains("--insecure-http"), "{error}");
        let Cli { serve: flags, .. } =
            Cli::parse_from(["auspex", "--listen", "0.0.0.0:9200", "--insecure-http"]);
        assert!(flags.layer(FileConfig::default()).is_ok());
        let file: FileConfig =
            toml::from_str("listen = \"[::]:9200\"\n[tls]\ncertificate = \"c\"\nkey = \"k\"\n")
                .unwrap();
        let config = ServeArgs::default().layer(file).unwrap();
        assert_eq!(config.scheme(), "https");
    }

    /// A certificate without its key (or a key alone) used to serve plain HTTP silently.
    #[test]
    fn one_tls_file_without_the_other_refuses_to_start() {
        let Cli { serve: flags, .. } = Cli::parse_from(["auspex", "--tls-certificate", "c.pem"]);
        let error = flags.layer(FileConfig::default()).unwrap_err().to_string();
        assert!(error.contains("only the certificate is set"), "{error}");
        let file: FileConfig = toml::from_str("[tls]\nkey = \"k.pem\"\n").unwrap();
        let error = ServeArgs::default().layer(file).unwrap_err().to_string();
        assert!(error.contains("only the key is set"), "{error}");
        // Switched off explicitly, a leftover file is no mistake.
        let Cli { serve: flags, .. } = Cli::parse_from([
            "auspex",
            "--tls-certificate",
            "c.pem",
            "--tls-enabled",
            "false",
        ]);
        assert!(!flags.layer(FileConfig::default()).unwrap().tls.enabled);
    }

    #[test]
    fn connection_and_login_limits_layer_and_are_checked() {
        let config = ServeArgs::default().layer(FileConfig::default()).unwrap();
        assert_eq!(
            config.header_read_timeout,
            std::time::Duration::from_secs(10)
        );
        assert_eq!(
            (
                config.reserved_connections,
                config.max_connections_per_address
            ),
            (100, 250)
        );
        assert_eq!(config.security.login.free_failures, 5);
        let file: FileConfig = toml::from_str(
            "[limits]\nheader_read_timeout = \"3s\"\nmax_connections_per_address = 7\n\
             [security]\nlogin_free_failures = 2\nlogin_failure_window = \"9s\"\n",
        )
        .unwrap();
        let Cli { serve: flags, .. } = Cli::parse_from(["auspex", "--login-max-delay", "1s"]);
        let config = flags.layer(file).unwrap();
        assert_eq!(
            config.header_read_timeout,
            std::time::Duration::from_secs(3)
        );
        assert_eq!(config.max_connections_per_address, 7);
        assert_eq!(
            config.security.login,
            crate::security::LoginThrottle {
                free_failures: 2,
                window: std::time::Duration::from_secs(9),
                max_delay: std::time::Duration::from_secs(1),
            }
        );
        let Cli { serve: flags, .. } = Cli::parse_from([
            "auspex",
            "--max-connections",
            "10",
            "--reserved-connections",
            "10",
        ]);
        assert!(flags.layer(FileConfig::default()).is_err());
    }

    #[test]
    fn the_in_flight_budget_holds_at_least_one_largest_body() {
        let file: FileConfig =
            toml::from_str("[limits]\nmax_in_flight_bytes = \"256mb\"\nmax_connections = 10\n")
                .unwrap();
        let config = ServeArgs::default().layer(file.clone()).unwrap();
        assert_eq!(
            (config.max_in_flight_bytes, config.max_connections),
            (256 << 20, 10)
        );
        let Cli { serve: flags, .. } = Cli::parse_from(["auspex", "--max-in-flight-bytes", "1mb"]);
        let error = flags.layer(file).unwrap_err().to_string();
        assert!(error.contains("max_in_flight_bytes"), "{error}");
        let Cli { serve: flags, .. } = Cli::parse_from(["auspex", "--max-connections", "0"]);
        assert!(flags.layer(FileConfig::default()).is_err());
    }

    #[test]
    fn help_documents_every_setting() {
        use clap::CommandFactory;
        let help = Cli::command().render_long_help().to_string();
        for flag in [
            "--config",
            "--data",
            "--log-format",
            "--listen",
            "--max-content-length",
            "--max-in-flight-bytes",
            "--max-connections",
            "--reserved-connections",
            "--max-connections-per-address",
            "--header-read-timeout",
            "--login-free-failures",
            "--login-failure-window",
            "--login-max-delay",
            "--model-snapshot-retention-days",
            "--daily-model-snapshot-retention-after-days",
            "--results-retention-days",
            "--no-security",
            "--security",
            "--insecure-http",
            "--tls-enabled",
            "--tls-certificate",
            "--tls-key",
            "AUSPEX_LOG",
        ] {
            assert!(help.contains(flag), "--help lacks {flag}:\n{help}");
        }
    }

    #[test]
    fn byte_sizes() {
        assert_eq!(parse_byte_size("100mb"), Ok(100 << 20));
        assert_eq!(parse_byte_size("1KB"), Ok(1024));
        assert_eq!(parse_byte_size("42"), Ok(42));
        assert!(parse_byte_size("ten").is_err());
        assert!(parse_byte_size("5zb").is_err());
    }
}
