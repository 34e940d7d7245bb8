//! tramontane's runtime gateway: an HTTP server in front of Mistral's inference API that
//! makes a policy's runtime lines true — which models each caller may use, request rates, max
//! tokens per request, daily token budgets and spend guards.
//!
//! Callers talk to it exactly as to Mistral (same paths, bodies, streams and error shapes)
//! with a gateway key; it forwards with a Mistral key only it holds. [`serve`] runs it until
//! SIGTERM or ctrl-c.
//!
//! Where a policy line becomes a decision: [`reload`] loads and validates the policy;
//! [`access`] reads each gateway key's limits from the library's effective access
//! (`tramontane::runtime::Runtime`, the one place inheritance is resolved, the same the plan
//! shows) into a [`access::Grant`]; per request, [`proxy`] finds the caller ([`identity`]),
//! reads the body ([`request`]), and [`enforce`] judges it against the grant, counting in the
//! limit [`store`]; the answer goes back through [`metered`], which settles what was used.

pub mod access;
pub mod alerts;
pub mod audit;
pub mod body_scan;
pub mod config;
pub mod enforce;
pub mod identity;
pub mod ledger;
pub mod metered;
pub mod metrics;
pub mod models;
pub mod oidc;
pub mod opened;
pub mod prices;
pub mod proxy;
pub mod refusal;
pub mod reload;
pub mod request;
pub mod scrub;
pub mod server;
pub mod state;
pub mod store;
pub mod telemetry;
pub mod upstream;
pub mod upstream_keys;
pub mod usage;
pub mod workers;
pub mod workloads;

use std::sync::Arc;

use arc_swap::{ArcSwap, ArcSwapOption};

pub use config::{
    AuditTarget, ConnectionLimits, GatewayConfig, RequestLimits, StoreChoice, UpstreamChoice,
};

use crate::state::Gateway;
use crate::upstream::Upstream;

/// Why the gateway could not start.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error(transparent)]
    Policy(#[from] reload::PolicyLoadError),
    #[error(transparent)]
    Upstream(#[from] upstream::http::UpstreamUrlError),
    #[error(transparent)]
    Audit(#[from] audit::AuditOpenError),
    #[error("the limit store: {0}")]
    Store(#[from] store::redis::RedisAddressError),
    #[error("cannot listen on {address} (--{flag}): {source}")]
    Listen {
        flag: &'static str,
        address: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error(
        "a real upstream needs --upstream-keys: the gateway never forwards a caller's credential"
    )]
    NoUpstreamKeys,
    #[error(transparent)]
    Workers(#[from] workers::WorkersError),
}

impl GatewayError {
    pub fn help(&self) -> &'static str {
        match self {
            GatewayError::Policy(error) => error.help(),
            GatewayError::Upstream(error) => error.help(),
            GatewayError::Audit(error) => error.help(),
            GatewayError::Store(error) => error.help(),
            GatewayError::Listen {
                flag: "admin-listen",
                ..
            } => {
                "pick another --admin-listen address (each replica on one host needs its own), `--admin-listen off`, or stop what holds this one"
            }
            GatewayError::Listen { .. } => {
                "pick another --listen address, or stop what holds this one"
            }
            GatewayError::NoUpstreamKeys => {
                "pass --upstream-keys DIR with one file per key address (workspace.W.key.K), or use --upstream sandbox"
            }
            GatewayError::Workers(_) => {
                "lower --worker-threads, or raise the process's thread limit (ulimit -u)"
            }
        }
    }
}

/// Runs the gateway until SIGTERM or ctrl-c, then lets requests in flight finish.
pub async fn serve(config: GatewayConfig) -> Result<(), GatewayError> {
    let main = bind("listen", config.listen).await?;
    let admin = match config.admin_listen {
        Some(address) => Some(bind("admin-listen", address).await?),
        None => None,
    };
    serve_on(
        server::Listeners { main, admin },
        config,
        server::shutdown_signal(),
    )
    .await
}

async fn bind(
    flag: &'static str,
    address: std::net::SocketAddr,
) -> Result<tokio::net::TcpListener, GatewayError> {
    tokio::net::TcpListener::bind(address)
        .await
        .map_err(|source| GatewayError::Listen {
            flag,
            address,
            source,
        })
}

/// Runs the gateway on bound listeners until `shutdown` completes.
pub async fn serve_on(
    listeners: server::Listeners,
    config: GatewayConfig,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), GatewayError> {
    let worker_count = workers::Workers::default_count(config.workers);
    let upstream = match &config.upstream {
        UpstreamChoice::Sandbox => Upstream::Sandbox(upstream::sandbox::SandboxUpstream::default()),
        UpstreamChoice::Url(url) => {
            if config.upstream_keys.is_none() {
                return Err(GatewayError::NoUpstreamKeys);
            }
            Upstream::Http(Box::new(upstream::http::HttpUpstream::new(
                url,
                config.limits.connect_timeout,
                worker_count,
            )?))
        }
    };
    let metrics = metrics::Metrics::default();
    let (audit, audit_writer) =
        audit::AuditLog::open(&config.audit, metrics.audit_lines_dropped())?;
    let today = config.today.unwrap_or_else(|| {
        jiff::Timestamp::now()
            .to_zoned(jiff::tz::TimeZone::UTC)
            .date()
    });
    let store: Arc<dyn store::LimitStore> = match &config.store {
        StoreChoice::Memory => Arc::new(store::memory::MemoryStore::default()),
        StoreChoice::Redis(settings) => {
            Arc::new(store::redis::RedisStore::new(settings)?.per_worker(worker_count))
        }
    };
    let policy = reload::load(&config, today, None)?;
    policy.warn_expired();
    policy.warn_alert_problems();
    policy.upstream_keys.warn_problems();
    let keys = policy.callers.len();
    metrics.policy(&policy);
    let (tasks, stopping) = (
        tokio_util::task::TaskTracker::new(),
        tokio_util::sync::CancellationToken::new(),
    );
    let gateway = Arc::new(Gateway {
        policy: ArcSwapOption::from_pointee(policy),
        models: ArcSwap::from_pointee(models::ModelDirectory::bundled()),
        live_models: ArcSwap::from_pointee(tramontane::policy::catalog::Catalog::bundled().clone()),
        currency: config.currency,
        upstream,
        store,
        fallback: Arc::new(store::memory::MemoryStore::default()),
        metrics,
        audit,
        alerts: alerts::Alerts::default(),
        tasks: tasks.clone(),
        stopping: stopping.clone(),
        leases: store::Leases::new(tasks, stopping),
        config,
    });
    alerts::spawn_delivery(gateway.clone());
    gateway.join_models();
    let address = server::address_of(&listeners.main);
    let admin_address = listeners.admin.as_ref().and_then(server::address_of);
    tracing::info!(
        address = %address.map_or_else(|| "?".into(), |a| a.to_string()),
        admin_address = %admin_address.map_or_else(|| "off".into(), |a| a.to_string()),
        max_connections = gateway.config.connections.max_connections,
        upstream = %gateway.upstream.describe(),
        callers = keys,
        currency = %gateway.currency,
        prices = %format!(
            "Mistral's model records of {}, and the policy's declared models",
            tramontane::policy::catalog::records::bundled().source.date
        ),
        "listening"
    );
    let unpriced = gateway.unpriced_models();
    if !unpriced.is_empty() {
        tracing::warn!(
            models = %unpriced.join(", "),
            help = "declare their prices in the policy's `models:` section, or keep them out of spend-guarded workspaces",
            "models callers may use have no price: requests for them are refused under a spend guard"
        );
    }
    let tokens = gateway
        .policy
        .load()
        .as_ref()
        .map(|p| p.tokens.clone())
        .filter(|tokens| tokens.issuers().next().is_some());
    if let Some(tokens) = tokens {
        // In the background: an issuer that does not answer must not hold up the listener.
        gateway.tasks.spawn(async move {
            let without = tokens.warm().await;
            if !without.is_empty() {
                tracing::warn!(
                    issuers = %without.join(", "),
                    help = "check the issuer's `jwks_url`, discovery or `jwks_file`; the gateway reads the keys again when a token asks for them",
                    "issuers' signing keys cannot be read: their workloads' tokens are refused until they can"
                );
            }
        });
    }
    // Kept until the end: settles and releases spawned on a worker run on its runtime, and
    // the background drain below waits for them.
    let workers = Arc::new(workers::Workers::start(worker_count)?);
    let stop_writing = tokio_util::sync::CancellationToken::new();
    let writing = tokio::spawn(audit_writer.run(stop_writing.clone()));
    let watcher = reload::spawn(gateway.clone());
    reload::spawn_model_refresh(gateway.clone());
    server::run(listeners, gateway.clone(), workers.clone(), shutdown).await;
    drop(watcher);
    drain_background(&gateway).await;
    // Last: every line queued until now, the settles' included, is written before the
    // process ends.
    stop_writing.cancel();
    let _ = writing.await;
    drop(workers);
    Ok(())
}

/// Once no request is in flight: ends the gateway's loops and waits, up to the grace
/// period, for every task it started — settles, answers read on for callers who left,
/// releases, alert checks and deliveries.
async fn drain_background(gateway: &Gateway) {
    gateway.stopping.cancel();
    gateway.tasks.close();
    let grace = gateway.config.shutdown_grace;
    match tokio::time::timeout(grace, gateway.tasks.wait()).await {
        Ok(()) => tracing::info!("background tasks drained"),
        Err(_) => tracing::warn!(
            tasks = gateway.tasks.len(),
            ?grace,
            "background tasks still running after the grace period are cut"
        ),
    }
}
