//! `auspex serve` (the default command): resolve the config, start logging, open the store, serve
//! until SIGINT/SIGTERM.
//!
//! stdout carries exactly one line, `listening on http://ADDR` (`https` with TLS; the bound address,
//! so `--listen 127.0.0.1:0` is usable: tests read it); logs go to stderr. A startup failure is one
//! message on stderr and exit code 1.
//!
//! Security: on a data path without users, the first secured start creates the superuser
//! `elastic` with the password in `AUSPEX_PASSWORD`, or a generated one that is printed once on
//! stderr (only its argon2 hash is stored).

use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use tokio::signal::unix::{signal, SignalKind};

use super::{fail, init_logging};
use crate::api::AppState;
use crate::config::{Config, ServeArgs};
use crate::job::JobManager;
use crate::security::Security;
use crate::store::{Store, RESOURCES_SCOPE, SECURITY_SCOPE};

pub fn main(args: ServeArgs) -> ExitCode {
    let config = match args.resolve() {
        Ok(config) => config,
        Err(error) => return fail(&error),
    };
    init_logging(config.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            return fail(&anyhow::Error::new(error).context("cannot start the async runtime"))
        }
    };
    match runtime.block_on(serve(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => fail(&error),
    }
}

async fn serve(config: Config) -> anyhow::Result<()> {
    // Signal handlers first, so a signal sent right after the "listening" line is not lost.
    let mut interrupt = signal(SignalKind::interrupt()).context("cannot listen for SIGINT")?;
    let mut terminate = signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?;

    // Bind before opening the store: a taken port is reported without touching the data.
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let address = listener
        .local_addr()
        .context("cannot read the bound address")?;
    std::fs::create_dir_all(&config.data)
        .with_context(|| format!("cannot create data path {}", config.data.display()))?;
    let store_path = config.store_path();
    let store = Store::open(&store_path)
        .with_context(|| format!("cannot open the store at {}", store_path.display()))?;
    refuse_lost_shared_data(&store)?;
    let tls = crate::server::tls::acceptor(&config.tls)?;
    let security = start_security(&config, &store).await?;
    let jobs = JobManager::start_with(store, config.max_empty_buckets)
        .await
        .context("cannot start the job manager")?;

    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "listening on {}://{address}", config.scheme())
        .context("cannot write to stdout")?;
    stdout.flush().context("cannot write to stdout")?;
    drop(stdout);
    tracing::info!(%address, data = %config.data.display(), security = config.security.enabled, tls = config.tls.enabled, "auspex started");

    let manager = Arc::clone(&jobs);
    let state = Arc::new(AppState {
        config,
        jobs,
        security,
    });
    let shutdown = async move {
        tokio::select! {
            _ = interrupt.recv() => tracing::info!("SIGINT received"),
            _ = terminate.recv() => tracing::info!("SIGTERM received"),
        }
    };
    crate::server::run_tls(listener, state, tls, shutdown).await;
    match manager.unpersisted_at_shutdown() {
        0 => Ok(()),
        n => anyhow::bail!(
            "{n} job(s) could not be persisted at shutdown (see the log); they restart from their \
             last snapshot and replay the input stored since"
        ),
    }
}

/// Users, API keys, filters and calendars belong to no job that could be failed alone: if sled
/// lost flushed writes to them (a deleted user or an invalidated API key back, say), the server
/// does not start until the operator has looked (`auspex verify`) and accepted the store as it is.
fn refuse_lost_shared_data(store: &Store) -> anyhow::Result<()> {
    let lost = store.lost();
    let shared: Vec<(&str, &String)> = [
        (SECURITY_SCOPE, "users, roles and API keys"),
        (RESOURCES_SCOPE, "filters and calendars"),
    ]
    .into_iter()
    .filter_map(|(scope, what)| lost.get(scope).map(|reason| (what, reason)))
    .collect();
    if let Some((_, reason)) = shared.first() {
        let what: Vec<&str> = shared.iter().map(|(what, _)| *what).collect();
        anyhow::bail!(
            "refusing to serve: the stored {} may be out of date ({reason}); check the store with \
             `auspex verify` and, to serve it as it now is, run `auspex verify --accept-loss`",
            what.join(" and ")
        );
    }
    Ok(())
}

/// The environment variable that sets the bootstrap `elastic` password.
pub const PASSWORD_ENV: &str = "AUSPEX_PASSWORD";

/// The security service; creates `elastic` on a store without users (and says so once).
async fn start_security(config: &Config, store: &Store) -> anyhow::Result<Arc<Security>> {
    let security = Security::new(store.clone(), config.security.enabled)
        .context("cannot start security")?
        .with_login_throttle(config.security.login);
    if !config.security.enabled {
        tracing::warn!(
            "security is disabled (--no-security): anyone who can reach this server can read \
             and change everything"
        );
        return Ok(Arc::new(security));
    }
    let given = std::env::var(PASSWORD_ENV).ok().filter(|p| !p.is_empty());
    let created = security.bootstrap(given.as_deref()).with_context(|| {
        format!("cannot create the [elastic] user (is {PASSWORD_ENV} at least 6 characters?)")
    })?;
    if created.is_some() {
        security
            .flush()
            .await
            .context("cannot store the [elastic] user")?;
    }
    match (created, given) {
        (Some(_), Some(_)) => {
            tracing::info!("created the superuser [elastic] with the password from {PASSWORD_ENV}")
        }
        (Some(password), None) => eprintln!(
            "\nauspex: security is on. Created the superuser [elastic] with the password\n\n    \
             {password}\n\nIt is shown only this once (only a hash is stored). Use it as `curl -u \
             elastic:{password} ...`; change it with `POST /_security/user/elastic/_password` or, \
             with the server stopped, `auspex users passwd elastic`.\n"
        ),
        (None, Some(_)) => {
            tracing::info!("{PASSWORD_ENV} is ignored: this data path has users already")
        }
        (None, None) => {}
    }
    Ok(Arc::new(security))
}
