//! Prometheus metrics at `/metrics`. Labels are endpoints, statuses, decisions, reasons, and
//! the rule ids and workspace names of the policy in force: never a key, a key id, a holder
//! or a prompt. The per-rule and per-workspace series are registered when a policy is loaded
//! and removed when it drops them, so their number is bounded by the policy, not by traffic,
//! and a request only looks its series up.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use jiff::Timestamp;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use tramontane::runtime::{Measure, Rule, Window};

use crate::state::PolicyState;

type Labels = Vec<(&'static str, String)>;
/// The labels of the per-request series: fixed names, so counting a request allocates
/// nothing (a `String` label would be built on every request only to look the series up).
type StaticLabels<const N: usize> = [(&'static str, &'static str); N];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    endpoint: &'static str,
    status: u16,
}

fn latency_histogram() -> Histogram {
    // 0.5 ms to about 2 minutes.
    Histogram::new(exponential_buckets(0.0005, 2.0, 18))
}

pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    decisions: Family<StaticLabels<2>, Counter>,
    upstream_latency: Family<StaticLabels<1>, Histogram, fn() -> Histogram>,
    added_latency: Histogram,
    tokens: Family<StaticLabels<1>, Counter>,
    cost_micros: Counter,
    reservations_open: Gauge,
    reloads: Family<Labels, Counter>,
    keys: Gauge,
    workloads: Gauge,
    store_errors: Counter,
    /// Store failures in the log, at most one warning per period.
    store_failure_log: crate::store::failure_log::FailureLog,
    store_fallbacks: Counter,
    audit_lines_dropped: Counter,
    alerts_failed: Counter,
    alerts_dropped: Counter,
    rule_limit: Family<Labels, Gauge>,
    rule_used: Family<Labels, Gauge>,
    workspace_requests: Family<Labels, Counter>,
    workspace_tokens: Family<Labels, Counter>,
    workspace_spend: Family<Labels, Counter>,
    /// The series of the policy in force, swapped whole when a policy is loaded.
    series: ArcSwap<PolicySeries>,
    /// Loads one at a time: each reads the series the previous one left.
    loading: Mutex<()>,
}

/// The per-rule and per-workspace series of one policy.
#[derive(Default)]
struct PolicySeries {
    rules: HashMap<String, Arc<RuleMeter>>,
    /// Each gateway key's token and spend rules, by public key id: what a settled answer is
    /// charged to.
    budgets: HashMap<String, Vec<Arc<RuleMeter>>>,
    workspaces: HashMap<String, WorkspaceCounters>,
}

/// What this replica saw used of one rule in the rule's current window.
struct RuleMeter {
    measure: Measure,
    window: Window,
    used: Gauge,
    /// The window counted in (its number since the epoch, in the window's unit) and what was
    /// counted in it.
    counted: Mutex<(i64, u64)>,
}

impl RuleMeter {
    fn add(&self, amount: u64, now: Timestamp) {
        let window = window_number(self.window, now);
        let mut counted = self.counted.lock().unwrap_or_else(|e| e.into_inner());
        if counted.0 != window {
            *counted = (window, 0);
        }
        counted.1 = counted.1.saturating_add(amount);
        self.used.set(saturating_i64(counted.1));
    }

    /// Back to zero once the window it counted in has ended, so a scrape after midnight does
    /// not show yesterday's use against today's budget.
    fn roll(&self, now: Timestamp) {
        let window = window_number(self.window, now);
        let mut counted = self.counted.lock().unwrap_or_else(|e| e.into_inner());
        if counted.0 != window {
            *counted = (window, 0);
            self.used.set(0);
        }
    }
}

#[derive(Clone)]
struct WorkspaceCounters {
    requests: Counter,
    tokens: Counter,
    spend: Counter,
}

/// The calendar window (UTC) `now` falls in, as a number that changes when the window does:
/// cheaper than the window's name, which the store needs and the gauges do not. Rates slide
/// over the last minute in the store; their gauge counts the calendar minute.
fn window_number(window: Window, now: Timestamp) -> i64 {
    let seconds = now.as_second();
    match window {
        Window::Minute => seconds.div_euclid(60),
        Window::Hour => seconds.div_euclid(3600),
        // Unix time has no leap seconds: every UTC day is 86400 of them.
        Window::Day => seconds.div_euclid(86_400),
        Window::Month => {
            let date = now.to_zoned(jiff::tz::TimeZone::UTC).date();
            i64::from(date.year()) * 12 + i64::from(date.month())
        }
    }
}

fn saturating_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

fn rule_labels(id: &str) -> Labels {
    vec![("rule", id.to_owned())]
}

fn workspace_labels(name: &str) -> Labels {
    vec![("workspace", name.to_owned())]
}

impl Default for Metrics {
    fn default() -> Metrics {
        let mut registry = Registry::with_prefix("tramontane_gateway");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "requests",
            "Requests answered, by endpoint and status",
            requests.clone(),
        );
        let decisions = Family::<StaticLabels<2>, Counter>::default();
        registry.register(
            "decisions",
            "Gateway decisions, by decision (admitted, refused, failed) and reason",
            decisions.clone(),
        );
        let upstream_latency =
            Family::<StaticLabels<1>, Histogram, fn() -> Histogram>::new_with_constructor(
                latency_histogram,
            );
        registry.register(
            "upstream_latency_seconds",
            "Time from forwarding a request to the upstream's response headers",
            upstream_latency.clone(),
        );
        let added_latency = latency_histogram();
        registry.register(
            "added_latency_seconds",
            "Time the gateway spends on a request before forwarding it (authentication, reading, enforcement)",
            added_latency.clone(),
        );
        let tokens = Family::<StaticLabels<1>, Counter>::default();
        registry.register(
            "tokens",
            "Tokens used, as the upstream reported them, by kind (prompt, completion)",
            tokens.clone(),
        );
        let cost_micros = Counter::default();
        registry.register(
            "cost_micros",
            "Cost of the requests answered, in micro-units of the price table's currency",
            cost_micros.clone(),
        );
        let reservations_open = Gauge::default();
        registry.register(
            "reservations_open",
            "Budget reservations held by requests in flight",
            reservations_open.clone(),
        );
        let reloads = Family::<Labels, Counter>::default();
        registry.register(
            "policy_reloads",
            "Policy reloads, by result (applied, rejected)",
            reloads.clone(),
        );
        let keys = Gauge::default();
        registry.register("keys", "Gateway keys in the policy in force", keys.clone());
        let workloads = Gauge::default();
        registry.register(
            "workloads",
            "Workloads (callers with an issuer's token) in the policy in force",
            workloads.clone(),
        );
        let store_errors = Counter::default();
        registry.register(
            "store_errors",
            "Operations the limit store failed",
            store_errors.clone(),
        );
        let store_fallbacks = Counter::default();
        registry.register(
            "store_fallbacks",
            "Requests of fail_open workspaces counted in-process because the shared store failed",
            store_fallbacks.clone(),
        );
        let rule_limit = Family::<Labels, Gauge>::default();
        registry.register(
            "rule_limit",
            "The limit of each counted rule in force, by rule id: requests, tokens, or micro-units of the billing currency",
            rule_limit.clone(),
        );
        let rule_used = Family::<Labels, Gauge>::default();
        registry.register(
            "rule_used",
            "What this replica saw used of each rule in the rule's current window (a rate's: in the calendar minute), by rule id; back to 0 when the window changes. With several replicas the shared store is the truth: `tramontane usage` reads it",
            rule_used.clone(),
        );
        let workspace_requests = Family::<Labels, Counter>::default();
        registry.register(
            "workspace_requests",
            "Requests made with the workspace's gateway keys, whatever the decision, by workspace",
            workspace_requests.clone(),
        );
        let workspace_tokens = Family::<Labels, Counter>::default();
        registry.register(
            "workspace_tokens",
            "Tokens charged to the workspace's requests (what token budgets count), by workspace",
            workspace_tokens.clone(),
        );
        let workspace_spend = Family::<Labels, Counter>::default();
        registry.register(
            "workspace_spend_micros",
            "Spend charged to the workspace's requests, in micro-units of the billing currency, by workspace",
            workspace_spend.clone(),
        );
        let audit_lines_dropped = Counter::default();
        registry.register(
            "audit_lines_dropped",
            "Audit lines dropped because the writer's queue was full (a request never waits for the audit log)",
            audit_lines_dropped.clone(),
        );
        let alerts_failed = Counter::default();
        registry.register(
            "alerts_failed",
            "Threshold alerts not delivered after every try (each is also an audit line)",
            alerts_failed.clone(),
        );
        let alerts_dropped = Counter::default();
        registry.register(
            "alerts_dropped",
            "Threshold alerts dropped because the delivery queue was full",
            alerts_dropped.clone(),
        );
        Metrics {
            registry,
            requests,
            decisions,
            upstream_latency,
            added_latency,
            tokens,
            cost_micros,
            reservations_open,
            reloads,
            keys,
            workloads,
            store_errors,
            store_failure_log: crate::store::failure_log::FailureLog::new(),
            store_fallbacks,
            rule_limit,
            rule_used,
            workspace_requests,
            workspace_tokens,
            workspace_spend,
            series: ArcSwap::default(),
            loading: Mutex::new(()),
            audit_lines_dropped,
            alerts_failed,
            alerts_dropped,
        }
    }
}

impl Metrics {
    pub fn request(&self, endpoint: &'static str, status: u16) {
        self.requests
            .get_or_create(&RequestLabels { endpoint, status })
            .inc();
    }

    pub fn decision(&self, decision: &'static str, reason: &'static str) {
        self.decisions
            .get_or_create(&[("decision", decision), ("reason", reason)])
            .inc();
    }

    pub fn upstream_latency(&self, endpoint: &'static str, seconds: f64) {
        self.upstream_latency
            .get_or_create(&[("endpoint", endpoint)])
            .observe(seconds);
    }

    pub fn added_latency(&self, seconds: f64) {
        self.added_latency.observe(seconds);
    }

    pub fn usage(&self, prompt: u64, completion: u64, cost_micros: u64) {
        self.tokens
            .get_or_create(&[("kind", "prompt")])
            .inc_by(prompt);
        self.tokens
            .get_or_create(&[("kind", "completion")])
            .inc_by(completion);
        self.cost_micros.inc_by(cost_micros);
    }

    pub fn reload(&self, applied: bool) {
        let result = if applied { "applied" } else { "rejected" };
        self.reloads
            .get_or_create(&vec![("result", result.to_owned())])
            .inc();
    }

    pub fn keys(&self, count: usize) {
        self.keys.set(i64::try_from(count).unwrap_or(i64::MAX));
    }

    /// A policy is in force, at start or on reload: its rules' limits are set, a rule or
    /// workspace it keeps keeps its series (and what its window has counted), a new one gets
    /// its series, and one it dropped loses them.
    pub fn policy(&self, policy: &PolicyState) {
        let _loading = self.loading.lock().unwrap_or_else(|e| e.into_inner());
        self.keys(policy.callers.len() - policy.callers.workloads().len());
        self.workloads
            .set(i64::try_from(policy.callers.workloads().len()).unwrap_or(i64::MAX));
        let previous = self.series.load_full();
        let mut next = PolicySeries::default();
        for caller in policy.callers.iter() {
            let mut budgets = Vec::new();
            for rule in &caller.grant.rules {
                let meter = next
                    .rules
                    .entry(rule.id.clone())
                    .or_insert_with(|| match previous.rules.get(&rule.id) {
                        Some(meter) => meter.clone(),
                        None => Arc::new(RuleMeter {
                            measure: rule.measure,
                            window: rule.window,
                            used: self.rule_used.get_or_create_owned(&rule_labels(&rule.id)),
                            counted: Mutex::new((window_number(rule.window, Timestamp::now()), 0)),
                        }),
                    })
                    .clone();
                self.rule_limit
                    .get_or_create(&rule_labels(&rule.id))
                    .set(saturating_i64(rule.limit));
                if rule.measure != Measure::Requests {
                    budgets.push(meter);
                }
            }
            next.budgets.insert(caller.meter_name(), budgets);
        }
        for name in policy.desired.workspaces.keys() {
            let counters = previous.workspaces.get(name).cloned().unwrap_or_else(|| {
                let labels = workspace_labels(name);
                WorkspaceCounters {
                    requests: self.workspace_requests.get_or_create_owned(&labels),
                    tokens: self.workspace_tokens.get_or_create_owned(&labels),
                    spend: self.workspace_spend.get_or_create_owned(&labels),
                }
            });
            next.workspaces.insert(name.clone(), counters);
        }
        for id in previous.rules.keys() {
            if !next.rules.contains_key(id) {
                let labels = rule_labels(id);
                self.rule_limit.remove(&labels);
                self.rule_used.remove(&labels);
            }
        }
        for name in previous.workspaces.keys() {
            if !next.workspaces.contains_key(name) {
                let labels = workspace_labels(name);
                self.workspace_requests.remove(&labels);
                self.workspace_tokens.remove(&labels);
                self.workspace_spend.remove(&labels);
            }
        }
        self.series.store(Arc::new(next));
    }

    /// A request of `workspace` answered, whatever the decision; `None` before the caller is
    /// known.
    pub fn workspace_request(&self, workspace: Option<&str>) {
        let series = self.series.load();
        if let Some(counters) = workspace.and_then(|name| series.workspaces.get(name)) {
            counters.requests.inc();
        }
    }

    /// A request took a slot of each of its rates (`rules` is its grant's; the others are
    /// counted when it is settled).
    pub fn rates_counted(&self, rules: &[Rule]) {
        let series = self.series.load();
        let now = Timestamp::now();
        for rule in rules {
            if rule.measure == Measure::Requests
                && let Some(meter) = series.rules.get(&rule.id)
            {
                meter.add(1, now);
            }
        }
    }

    /// An answer was settled at `tokens` and `cost` (micro-units) for the gateway key
    /// `key_id` of `workspace`: added to the key's token and spend rules and the workspace's
    /// counters. A key or workspace the policy has dropped since is counted nowhere.
    pub fn settled(&self, key_id: Option<&str>, workspace: Option<&str>, tokens: u64, cost: u64) {
        let series = self.series.load();
        let now = Timestamp::now();
        for meter in key_id
            .and_then(|id| series.budgets.get(id))
            .into_iter()
            .flatten()
        {
            match meter.measure {
                Measure::Tokens => meter.add(tokens, now),
                Measure::Spend => meter.add(cost, now),
                Measure::Requests => {}
            }
        }
        if let Some(counters) = workspace.and_then(|name| series.workspaces.get(name)) {
            counters.tokens.inc_by(tokens);
            counters.spend.inc_by(cost);
        }
    }

    /// The store failed `operation`: counted every time, logged at most once per period
    /// (while Redis is away every request fails the same way). Returns whether it was logged.
    pub fn store_failed(&self, operation: &'static str, error: &crate::store::StoreError) -> bool {
        self.store_errors.inc();
        self.store_failure_log.warn(operation, error)
    }

    pub fn store_fallback(&self) {
        self.store_fallbacks.inc();
    }

    /// The counter the audit log's queue counts dropped lines in.
    pub fn audit_lines_dropped(&self) -> Counter {
        self.audit_lines_dropped.clone()
    }

    pub fn alert_failed(&self) {
        self.alerts_failed.inc();
    }

    pub fn alert_dropped(&self) {
        self.alerts_dropped.inc();
    }

    /// The exposition text, with the open reservations as the store counts them now.
    pub fn render(&self, reservations_open: u64) -> String {
        self.reservations_open
            .set(i64::try_from(reservations_open).unwrap_or(i64::MAX));
        let now = Timestamp::now();
        for meter in self.series.load().rules.values() {
            meter.roll(now);
        }
        let mut text = String::new();
        // Writing to a String cannot fail.
        let _ = encode(&mut text, &self.registry);
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_prometheus_text() {
        let metrics = Metrics::default();
        metrics.request("chat", 200);
        metrics.decision("refused", "model_not_allowed");
        metrics.usage(10, 5, 42);
        metrics.upstream_latency("chat", 0.01);
        let text = metrics.render(3);
        assert!(
            text.contains("tramontane_gateway_requests_total{endpoint=\"chat\",status=\"200\"} 1"),
            "{text}"
        );
        assert!(text.contains("tramontane_gateway_decisions_total{decision=\"refused\",reason=\"model_not_allowed\"} 1"));
        assert!(text.contains("tramontane_gateway_reservations_open 3"));
        assert!(text.contains("tramontane_gateway_cost_micros_total 42"));
        assert!(text.ends_with("# EOF\n"));
    }

    #[test]
    fn every_store_failure_is_counted_and_a_burst_logged_once() {
        let metrics = Metrics::default();
        let error = crate::store::StoreError("Redis settle: connection refused".into());
        assert!(metrics.store_failed("admit and reserve", &error));
        for _ in 0..9 {
            assert!(!metrics.store_failed("settle", &error));
        }
        assert!(
            metrics
                .render(0)
                .contains("tramontane_gateway_store_errors_total 10")
        );
        // Another gateway in the same process has a log of its own.
        assert!(Metrics::default().store_failed("settle", &error));
    }

    #[test]
    fn a_rules_use_counts_in_its_window_and_restarts_in_the_next() {
        let meter = RuleMeter {
            measure: Measure::Tokens,
            window: Window::Day,
            used: Gauge::default(),
            counted: Mutex::new((0, 0)),
        };
        let at = |time: &str| time.parse::<Timestamp>().unwrap();
        meter.add(40, at("2026-11-26T10:00:00Z"));
        meter.add(2, at("2026-11-26T23:59:59Z"));
        assert_eq!(meter.used.get(), 42);
        // A scrape after midnight shows the new day, before any request is settled in it.
        meter.roll(at("2026-11-26T23:59:59.9Z"));
        assert_eq!(meter.used.get(), 42);
        meter.roll(at("2026-11-27T00:00:00Z"));
        assert_eq!(meter.used.get(), 0);
        meter.add(5, at("2026-11-27T00:00:01Z"));
        assert_eq!(meter.used.get(), 5);
    }

    #[test]
    fn windows_change_on_utc_calendar_boundaries() {
        let at = |time: &str| time.parse::<Timestamp>().unwrap();
        let same = |window, a, b| window_number(window, at(a)) == window_number(window, at(b));
        assert!(same(
            Window::Minute,
            "2026-11-26T10:00:00Z",
            "2026-11-26T10:00:59Z"
        ));
        assert!(!same(
            Window::Minute,
            "2026-11-26T10:00:59Z",
            "2026-11-26T10:01:00Z"
        ));
        assert!(!same(
            Window::Hour,
            "2026-11-26T10:59:59Z",
            "2026-11-26T11:00:00Z"
        ));
        assert!(same(
            Window::Month,
            "2026-02-01T00:00:00Z",
            "2026-02-28T23:59:59Z"
        ));
        assert!(!same(
            Window::Month,
            "2026-12-31T23:59:59Z",
            "2027-01-01T00:00:00Z"
        ));
        // Before 1970 too: windows are floored, not truncated toward zero.
        assert!(!same(
            Window::Day,
            "1969-12-31T23:59:59Z",
            "1970-01-01T00:00:00Z"
        ));
    }
}
