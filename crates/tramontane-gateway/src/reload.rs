//! Keeping the policy current: the policy directory and the upstream key directory are
//! watched, SIGHUP asks for a reload, and a slow poll catches what a file system does not
//! report. A reload builds the whole new state first and swaps it in at once; a policy that
//! does not validate leaves the running one in force and the log says why.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use notify::{RecursiveMode, Watcher};
use tokio::sync::mpsc;
use tramontane::policy::diagnostic::{Code, Severity};
use tramontane::policy::{self, LoadOptions};

use crate::access::CallerTable;
use crate::state::{Gateway, PolicyState};
use crate::upstream::UpstreamRequest;
use crate::upstream_keys::{UpstreamKeys, UpstreamKeysError};

/// Changes arriving within this time are read as one.
const SETTLE: Duration = Duration::from_millis(100);

#[derive(Debug, thiserror::Error)]
pub enum PolicyLoadError {
    #[error("the policies in `{dir}` are not valid:\n{report}")]
    Invalid { dir: String, report: String },
    #[error(transparent)]
    UpstreamKeys(#[from] UpstreamKeysError),
    #[error(transparent)]
    Issuers(#[from] crate::oidc::IssuerSettingsError),
}

impl PolicyLoadError {
    pub fn help(&self) -> &'static str {
        match self {
            PolicyLoadError::Invalid { .. } => {
                "fix the errors shown (`tramontane validate` shows them too); a running gateway keeps its last valid policy meanwhile"
            }
            PolicyLoadError::UpstreamKeys(error) => error.help(),
            PolicyLoadError::Issuers(error) => error.help(),
        }
    }
}

/// Loads and checks the policy and the upstream keys into a state ready to swap in.
/// `previous` is the state in force on a reload: if the key directory cannot be read at all
/// then, its upstream keys stay, so a revocation in the policy still takes effect; and the
/// issuers' signing keys it cached are kept where the issuer's key source did not change.
pub fn load(
    gateway_config: &crate::config::GatewayConfig,
    today: jiff::civil::Date,
    previous: Option<&PolicyState>,
) -> Result<PolicyState, PolicyLoadError> {
    let dir = &gateway_config.policies;
    let loaded = policy::load(dir, &LoadOptions::new(today));
    // An expired gateway key fails validation, but it must not stop the gateway from taking
    // every other change: the key is refused at the door (401) until its entry is removed.
    let blocking = loaded.diagnostics.iter().any(|diagnostic| {
        diagnostic.severity() == Severity::Error && diagnostic.code != Code::GatewayKeyExpired
    });
    let expired: Vec<String> = loaded
        .diagnostics
        .iter()
        .filter(|diagnostic| diagnostic.code == Code::GatewayKeyExpired)
        .map(|diagnostic| diagnostic.message.clone())
        .collect();
    if blocking {
        let shown = dir.to_string_lossy();
        return Err(PolicyLoadError::Invalid {
            dir: shown.to_string(),
            report: tramontane::render::diagnostics::human(&loaded, &shown, false),
        });
    }
    let upstream_keys = match &gateway_config.upstream_keys {
        Some(dir) => match (UpstreamKeys::read_dir(dir), previous) {
            (Ok(keys), _) => keys,
            (Err(error), Some(previous)) => {
                tracing::error!(%error, help = error.help(), "the upstream keys read before stay in force; the policy is reloaded");
                previous.upstream_keys.clone()
            }
            (Err(error), None) => return Err(error.into()),
        },
        None => UpstreamKeys::default(),
    };
    let callers = CallerTable::of(&loaded.desired);
    let tokens = crate::workloads::verifier_of(
        &loaded.desired,
        previous.map(|previous| &*previous.tokens),
        gateway_config.issuer_keys_refresh,
    )?;
    let catalog =
        tramontane::policy::catalog::Catalog::bundled().with_declared(&loaded.desired.models);
    let prices = crate::prices::PriceTable::from_catalog(&catalog, gateway_config.currency);
    let (alerts, alert_problems) = crate::alerts::AlertTargets::load(&loaded.desired.alerts);
    Ok(PolicyState {
        alerts: Arc::new(alerts),
        alert_problems,
        desired: loaded.desired,
        callers,
        tokens,
        upstream_keys,
        expired,
        prices: Arc::new(prices),
        catalog: Arc::new(catalog),
    })
}

/// Loads the policy again and swaps it in if it validates and differs.
pub fn reload(gateway: &Gateway, why: &str) {
    let current = gateway.policy.load_full();
    match load(&gateway.config, gateway.today(), current.as_deref()) {
        Ok(state) => {
            let unchanged = current.as_ref().is_some_and(|current| {
                current.desired == state.desired
                    && current.upstream_keys.same_as(&state.upstream_keys)
                    && current.alerts.same_as(&state.alerts)
            });
            if unchanged {
                return;
            }
            let keys = state.callers.len();
            state.warn_expired();
            state.warn_alert_problems();
            state.upstream_keys.warn_problems();
            gateway.metrics.policy(&state);
            gateway.policy.store(Some(Arc::new(state)));
            gateway.join_models();
            gateway.metrics.reload(true);
            tracing::info!(trigger = why, callers = keys, "policy reloaded");
        }
        Err(error) => {
            gateway.metrics.reload(false);
            tracing::error!(trigger = why, %error, help = error.help(), "policy reload rejected; the previous policy stays in force");
        }
    }
}

/// Runs until the gateway stops: reloads on file changes, SIGHUP and the poll interval. The
/// tasks are the gateway's (shutdown waits for them); the file watcher is the caller's to
/// keep for as long as reloads should follow file changes.
pub fn spawn(gateway: Arc<Gateway>) -> Option<notify::RecommendedWatcher> {
    let (trigger, mut triggers) = mpsc::unbounded_channel::<&'static str>();
    let watcher = watch(&gateway, trigger.clone());
    let (tasks, stopping) = (gateway.tasks.clone(), gateway.stopping.clone());

    #[cfg(unix)]
    {
        let trigger = trigger.clone();
        let stopping = stopping.clone();
        tasks.spawn(async move {
            use tokio::signal::unix::{SignalKind, signal};
            let Ok(mut hangups) = signal(SignalKind::hangup()) else {
                tracing::warn!("cannot listen for SIGHUP; reloads follow file changes only");
                return;
            };
            while stopping
                .run_until_cancelled(hangups.recv())
                .await
                .flatten()
                .is_some()
            {
                if trigger.send("sighup").is_err() {
                    return;
                }
            }
        });
    }

    let poll = gateway.config.reload_poll;
    if !poll.is_zero() {
        let trigger = trigger.clone();
        let stopping = stopping.clone();
        tasks.spawn(async move {
            let mut ticks = tokio::time::interval(poll);
            ticks.tick().await;
            while stopping.run_until_cancelled(ticks.tick()).await.is_some() {
                if trigger.send("poll").is_err() {
                    return;
                }
            }
        });
    }

    tasks.spawn(async move {
        while let Some(Some(first)) = stopping.run_until_cancelled(triggers.recv()).await {
            // Editors write a file in several steps: wait for the burst to end.
            tokio::time::sleep(SETTLE).await;
            let mut why = first;
            while let Ok(next) = triggers.try_recv() {
                if next != "poll" {
                    why = next;
                }
            }
            let gateway = gateway.clone();
            let _ = tokio::task::spawn_blocking(move || reload(&gateway, why)).await;
        }
    });
    watcher
}

fn watch(
    gateway: &Gateway,
    trigger: mpsc::UnboundedSender<&'static str>,
) -> Option<notify::RecommendedWatcher> {
    let mut watcher = match notify::recommended_watcher(
        move |event: notify::Result<notify::Event>| {
            if let Ok(event) = event
                && !event.kind.is_access()
            {
                let _ = trigger.send("file change");
            }
        },
    ) {
        Ok(watcher) => watcher,
        Err(error) => {
            tracing::warn!(%error, "cannot watch the policy files; reloads follow SIGHUP and the poll only");
            return None;
        }
    };
    let dirs: Vec<PathBuf> = std::iter::once(gateway.config.policies.clone())
        .chain(gateway.config.upstream_keys.clone())
        .collect();
    for dir in dirs {
        if let Err(error) = watcher.watch(&dir, RecursiveMode::Recursive) {
            tracing::warn!(dir = %dir.display(), %error, "cannot watch a directory; reloads follow SIGHUP and the poll only");
        }
    }
    Some(watcher)
}

/// Reads the upstream's model list now and every `models_refresh` after, until the gateway
/// stops; until a read succeeds the bundled catalog stands in.
pub fn spawn_model_refresh(gateway: Arc<Gateway>) {
    let tasks = gateway.tasks.clone();
    tasks.spawn(async move {
        let stopping = gateway.stopping.clone();
        let refreshing = async {
            loop {
                refresh_models(&gateway).await;
                tokio::time::sleep(gateway.config.models_refresh).await;
            }
        };
        stopping.run_until_cancelled(refreshing).await;
    });
}

async fn refresh_models(gateway: &Gateway) {
    let Some(key) = gateway.any_upstream_key() else {
        tracing::warn!(
            "no upstream key to read the model list with; the bundled catalog stands in"
        );
        return;
    };
    let request = UpstreamRequest {
        method: http::Method::GET,
        path_and_query: "/v1/models".into(),
        headers: http::HeaderMap::new(),
        body: bytes::Bytes::new(),
        key,
    };
    let timeout = gateway
        .config
        .limits
        .upstream_timeout
        .min(Duration::from_secs(30));
    let response = match gateway.upstream.send(request, timeout).await {
        Ok(response) => response,
        Err(error) => {
            tracing::warn!(%error, "cannot read the upstream's model list; keeping the one in use");
            return;
        }
    };
    let status = response.status();
    let body = http_body_util::Limited::new(response.into_body(), 16 * 1024 * 1024);
    let bytes = match tokio::time::timeout(timeout, http_body_util::BodyExt::collect(body)).await {
        Ok(Ok(collected)) => collected.to_bytes(),
        _ => {
            tracing::warn!(
                "the upstream's model list did not arrive whole; keeping the one in use"
            );
            return;
        }
    };
    if !status.is_success() {
        tracing::warn!(
            status = status.as_u16(),
            "the upstream refused to list models; keeping the one in use"
        );
        return;
    }
    match tramontane::policy::catalog::Catalog::from_slice(&bytes) {
        Ok(live) => {
            tracing::info!(models = live.models(), "model list read from the upstream");
            gateway.live_models.store(Arc::new(live));
            gateway.join_models();
        }
        Err(error) => tracing::warn!(%error, "keeping the model list in use"),
    }
}
