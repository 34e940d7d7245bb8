//! Prometheus metrics at `/metrics`. Labels are endpoints, statuses, decisions and reasons:
//! never a key, a key id, a holder or a prompt.

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

type Labels = Vec<(&'static str, String)>;

fn latency_histogram() -> Histogram {
    // 0.5 ms to about 2 minutes.
    Histogram::new(exponential_buckets(0.0005, 2.0, 18))
}

pub struct Metrics {
    registry: Registry,
    requests: Family<Labels, Counter>,
    decisions: Family<Labels, Counter>,
    upstream_latency: Family<Labels, Histogram, fn() -> Histogram>,
    added_latency: Histogram,
    tokens: Family<Labels, Counter>,
    cost_micros: Counter,
    reservations_open: Gauge,
    reloads: Family<Labels, Counter>,
    keys: Gauge,
    store_errors: Counter,
    store_fallbacks: Counter,
    alerts_failed: Counter,
    alerts_dropped: Counter,
}

impl Default for Metrics {
    fn default() -> Metrics {
        let mut registry = Registry::with_prefix("tramontane_gateway");
        let requests = Family::<Labels, Counter>::default();
        registry.register(
            "requests",
            "Requests answered, by endpoint and status",
            requests.clone(),
        );
        let decisions = Family::<Labels, Counter>::default();
        registry.register(
            "decisions",
            "Gateway decisions, by decision (admitted, refused, failed) and reason",
            decisions.clone(),
        );
        let upstream_latency =
            Family::<Labels, Histogram, fn() -> Histogram>::new_with_constructor(latency_histogram);
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
        let tokens = Family::<Labels, Counter>::default();
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
            store_errors,
            store_fallbacks,
            alerts_failed,
            alerts_dropped,
        }
    }
}

impl Metrics {
    pub fn request(&self, endpoint: &str, status: u16) {
        self.requests
            .get_or_create(&vec![
                ("endpoint", endpoint.to_owned()),
                ("status", status.to_string()),
            ])
            .inc();
    }

    pub fn decision(&self, decision: &str, reason: &str) {
        self.decisions
            .get_or_create(&vec![
                ("decision", decision.to_owned()),
                ("reason", reason.to_owned()),
            ])
            .inc();
    }

    pub fn upstream_latency(&self, endpoint: &str, seconds: f64) {
        self.upstream_latency
            .get_or_create(&vec![("endpoint", endpoint.to_owned())])
            .observe(seconds);
    }

    pub fn added_latency(&self, seconds: f64) {
        self.added_latency.observe(seconds);
    }

    pub fn usage(&self, prompt: u64, completion: u64, cost_micros: u64) {
        self.tokens
            .get_or_create(&vec![("kind", "prompt".to_owned())])
            .inc_by(prompt);
        self.tokens
            .get_or_create(&vec![("kind", "completion".to_owned())])
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

    pub fn store_error(&self) {
        self.store_errors.inc();
    }

    pub fn store_fallback(&self) {
        self.store_fallbacks.inc();
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
}
