//! What every request reads: the policy in force (swapped whole on reload, never edited in
//! place), the model directory, prices, the upstream, the limit store, metrics and the audit
//! log.

use std::sync::Arc;

use arc_swap::{ArcSwap, ArcSwapOption};
use jiff::civil::Date;
use secrecy::SecretString;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tramontane::model::DesiredOrg;

use crate::access::CallerTable;
use crate::audit::AuditLog;
use crate::config::GatewayConfig;
use crate::metrics::Metrics;
use crate::models::ModelDirectory;
use crate::prices::PriceTable;
use crate::store::LimitStore;
use crate::upstream::Upstream;
use crate::upstream_keys::UpstreamKeys;
use tramontane::model::Currency;
use tramontane::policy::catalog::Catalog;

/// The key the sandbox is sent for an address the key directory does not hold.
const SANDBOX_KEY: &str = "sandbox-upstream-key";

/// One loaded policy and the keys that go with it.
pub struct PolicyState {
    pub desired: DesiredOrg,
    pub callers: CallerTable,
    /// Verifies workloads' tokens against the policy's issuers (none: every token refused).
    pub tokens: Arc<crate::oidc::Verifier>,
    pub upstream_keys: UpstreamKeys,
    /// Validation's messages about gateway keys past their expiry: refused, not fatal.
    pub expired: Vec<String>,
    /// The bundled records joined to the models the policy declares: what unit prices (OCR
    /// pages, speech characters) are read from.
    pub catalog: Arc<Catalog>,
    /// The token prices of `catalog`, in the gateway's currency.
    pub prices: Arc<PriceTable>,
    /// The policy's alert destinations, their URLs read.
    pub alerts: Arc<crate::alerts::AlertTargets>,
    /// Destinations left off, and why: said at start and on reload.
    pub alert_problems: Vec<crate::alerts::AlertSetupError>,
}

impl PolicyState {
    pub fn warn_alert_problems(&self) {
        for problem in &self.alert_problems {
            tracing::warn!(problem = %problem, help = problem.help(), "an alert destination is off");
        }
    }

    pub fn warn_expired(&self) {
        for message in &self.expired {
            tracing::warn!(problem = %message, help = "remove the entry, or issue a new key with `tramontane gateway issue`", "an expired gateway key is refused");
        }
    }
}

pub struct Gateway {
    pub config: GatewayConfig,
    pub policy: ArcSwapOption<PolicyState>,
    /// The upstream's live model list (the bundled records until it is first read), joined to
    /// the models the policy in force declares: what names resolve against.
    pub models: ArcSwap<ModelDirectory>,
    /// The upstream's live model list as it came, kept to join a reloaded policy's models to.
    pub live_models: ArcSwap<Catalog>,
    /// The currency prices and spend guards count in.
    pub currency: Currency,
    pub upstream: Upstream,
    pub store: Arc<dyn LimitStore>,
    /// Where a `fail_open` workspace is counted while the shared store fails: in this
    /// process, so its limits still hold per replica.
    pub fallback: Arc<dyn LimitStore>,
    pub metrics: Metrics,
    pub audit: AuditLog,
    /// Threshold alerts: the requests watched and the delivery queue.
    pub alerts: crate::alerts::Alerts,
    /// Every task the gateway starts beside its connections — settles, answers read on for
    /// a caller who left, releases, lease renewals, alert checks and deliveries, the reload
    /// and model-refresh loops — so that shutdown waits for them instead of cutting them.
    pub tasks: TaskTracker,
    /// Cancelled at shutdown: the loops that would run forever (reloads, model refresh,
    /// alert delivery) end.
    pub stopping: CancellationToken,
    /// The leases of the reservations in flight, renewed by one task among `tasks`.
    pub leases: crate::store::Leases,
}

impl Gateway {
    /// The UTC day key expiries are checked against.
    pub fn today(&self) -> Date {
        self.config.today.unwrap_or_else(|| {
            jiff::Timestamp::now()
                .to_zoned(jiff::tz::TimeZone::UTC)
                .date()
        })
    }

    /// The Mistral key to forward with for a policy key address.
    pub fn upstream_key(&self, policy: &PolicyState, address: &str) -> Option<SecretString> {
        match (policy.upstream_keys.get(address), &self.upstream) {
            (Some(key), _) => Some(key.clone()),
            (None, Upstream::Sandbox(_)) => Some(SecretString::from(SANDBOX_KEY)),
            (None, Upstream::Http(_)) => None,
        }
    }

    /// The models callers may name that have no price: a request for one is refused under
    /// a spend guard (`price_unknown`). Said at start and on `/readyz`.
    pub fn unpriced_models(&self) -> Vec<String> {
        let Some(policy) = self.policy.load_full() else {
            return Vec::new();
        };
        let models = self.models.load();
        let (named, every) = policy.callers.named_models();
        let mut candidates: Vec<&str> = named.into_iter().collect();
        let all_names = models.names();
        if every {
            candidates.extend(all_names.iter().map(String::as_str));
        }
        policy.prices.unpriced(candidates, &models)
    }

    /// Joins the live model list to the policy in force's declared models, and swaps the
    /// result in as the directory names resolve against.
    pub fn join_models(&self) {
        let live = self.live_models.load();
        let joined = match self.policy.load().as_ref() {
            Some(policy) => live.with_declared(&policy.desired.models),
            None => Catalog::clone(&live),
        };
        self.models
            .store(Arc::new(ModelDirectory::from_catalog(joined)));
    }

    /// A key to read the model list with: any the gateway holds.
    pub fn any_upstream_key(&self) -> Option<SecretString> {
        let policy = self.policy.load_full();
        match (
            policy.as_ref().and_then(|p| p.upstream_keys.any().cloned()),
            &self.upstream,
        ) {
            (Some(key), _) => Some(key),
            (None, Upstream::Sandbox(_)) => Some(SecretString::from(SANDBOX_KEY)),
            (None, Upstream::Http(_)) => None,
        }
    }
}
