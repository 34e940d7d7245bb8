//! Threshold alerts: when a token budget or spend guard's window reaches a share of its
//! limit (the policy's `alerts.thresholds`), the destinations the policy names are told,
//! once per rule, window and threshold across every replica.
//!
//! A request's counters are checked twice: when its reservation is admitted (a reservation
//! holds budget other requests cannot take, so a window held past a threshold is reported
//! then) and after it settles (what it really used). Each check is one store operation
//! ([`LimitStore::claim_thresholds`]) that reads the counters and claims the thresholds
//! reached; only the replica that wins a claim delivers it. Nothing here is on a request's
//! path: checks run in tasks of their own, deliveries go through a bounded queue (a full
//! queue drops the alert and counts it), each is tried a few times with backoff and a
//! timeout, and one that finally fails is an audit line (`kind: alert`) and a metric.
//!
//! Destination URLs are secrets: read from the environment or a file when the policy loads,
//! held as [`SecretString`], and never logged or written to the audit log.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Uri};
use http_body_util::Full;
use jiff::{Timestamp, ToSpan};
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use tokio::sync::{Semaphore, mpsc};
use tramontane::model::{AlertKind, SecretSource};
use tramontane::runtime::{Rule, Window};

use crate::access::Grant;
use crate::state::Gateway;
use crate::store::{BudgetLine, LimitStore, ThresholdCheck};

/// Alerts waiting for delivery; more are dropped (and counted) rather than held.
const QUEUE: usize = 1024;
/// Deliveries in flight at once, so one slow destination does not hold up the others.
const CONCURRENT: usize = 4;
/// Tries per delivery, the first included.
const TRIES: u32 = 3;
/// The wait before the second try; each later wait is four times the one before.
const FIRST_BACKOFF: Duration = Duration::from_millis(250);
/// How long one try may take, connection included.
const TRY_TIMEOUT: Duration = Duration::from_secs(5);
/// Requests watched between admission and settling; past this the oldest are forgotten (a
/// request that never settles, such as one whose upstream call failed, leaves its watch).
const WATCHED: usize = 10_000;
/// A watch older than this is forgotten: no request runs that long.
const WATCH_FOR: Duration = Duration::from_secs(3600);

/// A destination whose URL could be read.
pub struct Destination {
    pub name: String,
    pub kind: AlertKind,
    url: SecretString,
}

impl std::fmt::Debug for Destination {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Destination")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

/// The policy's alerts, with their URLs read: what a loaded policy alerts with.
#[derive(Debug, Default)]
pub struct AlertTargets {
    pub thresholds: Vec<u8>,
    pub destinations: Vec<Destination>,
}

impl AlertTargets {
    /// Reads each destination's URL; a destination whose URL cannot be read (or is not one
    /// the gateway may post to) is left out, and the problem returned for the gateway to say.
    pub fn load(alerts: &tramontane::model::Alerts) -> (AlertTargets, Vec<AlertSetupError>) {
        let mut problems = Vec::new();
        let mut destinations = Vec::new();
        for (name, destination) in &alerts.destinations {
            match read_url(name, &destination.url) {
                Ok(url) => destinations.push(Destination {
                    name: name.clone(),
                    kind: destination.kind,
                    url,
                }),
                Err(problem) => problems.push(problem),
            }
        }
        let targets = AlertTargets {
            thresholds: alerts.thresholds(),
            destinations,
        };
        (targets, problems)
    }

    /// Whether anything would be told: without a destination nothing is claimed either.
    pub fn is_active(&self) -> bool {
        !self.destinations.is_empty() && !self.thresholds.is_empty()
    }

    /// Whether `other` alerts the same way, URLs included (a changed secret is a change).
    pub fn same_as(&self, other: &AlertTargets) -> bool {
        self.thresholds == other.thresholds
            && self.destinations.len() == other.destinations.len()
            && self
                .destinations
                .iter()
                .zip(&other.destinations)
                .all(|(a, b)| {
                    a.name == b.name
                        && a.kind == b.kind
                        && a.url.expose_secret() == b.url.expose_secret()
                })
    }
}

/// Why a destination is off. The messages name where the URL was to be read, never the URL.
#[derive(Debug, thiserror::Error)]
pub enum AlertSetupError {
    #[error(
        "alert destination `{destination}` is off: the environment variable `{variable}` is not set"
    )]
    MissingVariable {
        destination: String,
        variable: String,
    },
    #[error(
        "alert destination `{destination}` is off: cannot read its URL from `{path}`: {source}"
    )]
    UnreadableFile {
        destination: String,
        path: String,
        source: std::io::Error,
    },
    #[error(
        "alert destination `{destination}` is off: the URL in the {from} is not an https URL (plain http only to a loopback address)"
    )]
    InvalidUrl { destination: String, from: String },
}

impl AlertSetupError {
    pub fn help(&self) -> &'static str {
        match self {
            AlertSetupError::MissingVariable { .. } => {
                "set the variable in the gateway's environment and restart it, or point the destination's `url` at a file"
            }
            AlertSetupError::UnreadableFile { .. } => {
                "put the URL in that file, readable by the gateway; the policy is read again when it changes or on SIGHUP"
            }
            AlertSetupError::InvalidUrl { .. } => {
                "give the webhook's https URL, as its service shows it"
            }
        }
    }
}

fn read_url(destination: &str, source: &SecretSource) -> Result<SecretString, AlertSetupError> {
    let text = match source {
        SecretSource::Env(variable) => std::env::var(variable)
            .ok()
            .filter(|value| !value.trim().is_empty())
            .ok_or_else(|| AlertSetupError::MissingVariable {
                destination: destination.to_owned(),
                variable: variable.clone(),
            })?,
        SecretSource::File(path) => {
            std::fs::read_to_string(path).map_err(|source| AlertSetupError::UnreadableFile {
                destination: destination.to_owned(),
                path: path.clone(),
                source,
            })?
        }
    };
    let url = text.trim().to_owned();
    let allowed = url
        .parse::<Uri>()
        .ok()
        .is_some_and(|uri| match (uri.scheme_str(), uri.host()) {
            (Some("https"), Some(_)) => true,
            (Some("http"), Some(host)) => tramontane::tls::is_loopback_host(host),
            _ => false,
        });
    if !allowed {
        return Err(AlertSetupError::InvalidUrl {
            destination: destination.to_owned(),
            from: source.to_string(),
        });
    }
    Ok(SecretString::from(url))
}

/// One threshold reached, claimed by this replica.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Alert {
    pub rule: Rule,
    /// The window's name, such as `2026-11-26`.
    pub window: String,
    pub window_start: Timestamp,
    pub threshold: u8,
    /// What the window held: settled use and what requests in flight hold reserved.
    pub used: u64,
}

impl Alert {
    /// The generic webhook's document.
    pub fn webhook_payload(&self) -> serde_json::Value {
        serde_json::json!({
            "rule": {
                "id": self.rule.id,
                "scope": self.rule.scope,
                "measure": self.rule.measure,
                "window": self.rule.window,
            },
            "window_start": tramontane::model::timestamp(self.window_start),
            "threshold": self.threshold,
            "used": self.used,
            "limit": self.rule.limit,
            "text": self.rule.to_string(),
        })
    }

    /// One sentence for people: `80% of 1000 tokens a day for key `…` reached: 812 tokens
    /// in the window that began 2026-11-26T00:00:00Z (rule `…`)`.
    pub fn sentence(&self) -> String {
        format!(
            "{}% of {} reached: {} in the window that began {} (rule `{}`)",
            self.threshold,
            self.rule,
            self.rule.amount(self.used),
            tramontane::model::timestamp(self.window_start),
            self.rule.id
        )
    }

    /// The document posted to a destination of `kind`.
    pub fn payload(&self, kind: AlertKind) -> serde_json::Value {
        match kind {
            AlertKind::Webhook => self.webhook_payload(),
            AlertKind::Slack => serde_json::json!({ "text": self.sentence() }),
        }
    }
}

/// When the window of `window` that ends at `end` began.
pub fn window_start(window: Window, end: Timestamp) -> Timestamp {
    let zoned = end.to_zoned(jiff::tz::TimeZone::UTC);
    let start = match window {
        Window::Minute => zoned.checked_sub(1.minute()),
        Window::Hour => zoned.checked_sub(1.hour()),
        Window::Day => zoned.checked_sub(1.day()),
        Window::Month => zoned.checked_sub(1.month()),
    };
    start.map_or(end, |start| start.timestamp())
}

/// The counters one request was reserved against, to check again once it settles.
struct Watch {
    store: Arc<dyn LimitStore>,
    targets: Arc<AlertTargets>,
    checks: Arc<[Watched]>,
    since: Instant,
}

/// One counter's check with the rule it counts for.
struct Watched {
    check: ThresholdCheck,
    rule: Rule,
}

struct Delivery {
    alert: Alert,
    targets: Arc<AlertTargets>,
}

/// The gateway's alerting: the requests it watches and the queue to the delivery task.
pub struct Alerts {
    queue: mpsc::Sender<Delivery>,
    /// Taken by [`spawn_delivery`].
    receiver: Mutex<Option<mpsc::Receiver<Delivery>>>,
    watching: Mutex<HashMap<String, Watch>>,
}

impl Default for Alerts {
    fn default() -> Alerts {
        let (queue, receiver) = mpsc::channel(QUEUE);
        Alerts {
            queue,
            receiver: Mutex::new(Some(receiver)),
            watching: Mutex::new(HashMap::new()),
        }
    }
}

impl Alerts {
    /// A request was admitted with `lines` reserved in `store`: checks its counters now (in a
    /// task of its own) and watches them until [`Alerts::settled`].
    pub fn admitted(
        &self,
        gateway: &Arc<Gateway>,
        store: &Arc<dyn LimitStore>,
        grant: &Grant,
        request_id: &str,
        lines: &[BudgetLine],
    ) {
        let Some(policy) = gateway.policy.load_full() else {
            return;
        };
        let targets = policy.alerts.clone();
        if !targets.is_active() || lines.is_empty() {
            return;
        }
        let checks: Arc<[Watched]> = lines
            .iter()
            .filter_map(|line| {
                let rule = grant.rule(&line.rule)?.clone();
                // The counter is the rule's store key in its window: `rule:{id}:{window}`.
                let window = line
                    .counter
                    .strip_prefix(&format!("rule:{}:", rule.id))?
                    .to_owned();
                let check = ThresholdCheck {
                    rule: rule.id.clone(),
                    counter: line.counter.clone(),
                    window,
                    limit: line.limit,
                    window_end: line.window_end,
                    thresholds: targets.thresholds.clone(),
                };
                Some(Watched { check, rule })
            })
            .collect();
        if checks.is_empty() {
            return;
        }
        if let Ok(mut watching) = self.watching.lock() {
            if watching.len() >= WATCHED {
                watching.retain(|_, watch| watch.since.elapsed() < WATCH_FOR);
            }
            if watching.len() < WATCHED {
                watching.insert(
                    request_id.to_owned(),
                    Watch {
                        store: store.clone(),
                        targets: targets.clone(),
                        checks: checks.clone(),
                        since: Instant::now(),
                    },
                );
            }
        }
        spawn_check(gateway.clone(), store.clone(), targets, checks);
    }

    /// The request `request_id` settled: checks its counters with what it used. Does nothing
    /// for a request not watched.
    pub fn settled(&self, gateway: &Arc<Gateway>, request_id: &str) {
        let watch = self
            .watching
            .lock()
            .ok()
            .and_then(|mut watching| watching.remove(request_id));
        if let Some(watch) = watch {
            spawn_check(gateway.clone(), watch.store, watch.targets, watch.checks);
        }
    }

    /// Queues `alert`; a full queue drops it, counted.
    fn enqueue(&self, gateway: &Gateway, alert: Alert, targets: Arc<AlertTargets>) {
        if let Err(error) = self.queue.try_send(Delivery { alert, targets }) {
            let delivery = match error {
                mpsc::error::TrySendError::Full(delivery)
                | mpsc::error::TrySendError::Closed(delivery) => delivery,
            };
            gateway.metrics.alert_dropped();
            tracing::warn!(rule = %delivery.alert.rule.id, threshold = delivery.alert.threshold, "an alert was dropped: the delivery queue is full");
        }
    }
}

fn spawn_check(
    gateway: Arc<Gateway>,
    store: Arc<dyn LimitStore>,
    targets: Arc<AlertTargets>,
    checks: Arc<[Watched]>,
) {
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return;
    };
    let tasks = gateway.tasks.clone();
    tasks.spawn_on(
        async move {
            let asked: Vec<ThresholdCheck> =
                checks.iter().map(|watched| watched.check.clone()).collect();
            match store.claim_thresholds(&asked, Timestamp::now()).await {
                Ok(claimed) => {
                    for claim in claimed {
                        let Some(watched) = checks.get(claim.check) else {
                            continue;
                        };
                        let alert = Alert {
                            rule: watched.rule.clone(),
                            window: watched.check.window.clone(),
                            window_start: window_start(
                                watched.rule.window,
                                watched.check.window_end,
                            ),
                            threshold: claim.threshold,
                            used: claim.held,
                        };
                        gateway.alerts.enqueue(&gateway, alert, targets.clone());
                    }
                }
                Err(error) => {
                    // Checked again with the next request.
                    gateway
                        .metrics
                        .store_failed("claim alert thresholds", &error);
                }
            }
        },
        &runtime,
    );
}

/// Starts the task that delivers queued alerts; runs until the gateway stops, then
/// delivers what is already queued.
pub fn spawn_delivery(gateway: Arc<Gateway>) {
    let Some(mut receiver) = gateway
        .alerts
        .receiver
        .lock()
        .ok()
        .and_then(|mut receiver| receiver.take())
    else {
        return;
    };
    tramontane::tls::install_default_provider();
    let client = match client() {
        Ok(client) => Arc::new(client),
        Err(error) => {
            tracing::error!(%error, "cannot set up TLS for alert deliveries; alerts are off");
            return;
        }
    };
    let slots = Arc::new(Semaphore::new(CONCURRENT));
    let tasks = gateway.tasks.clone();
    tasks.spawn(async move {
        let stopping = gateway.stopping.clone();
        loop {
            let delivery = tokio::select! {
                delivery = receiver.recv() => delivery,
                () = stopping.cancelled() => {
                    receiver.close();
                    receiver.recv().await
                }
            };
            let Some(delivery) = delivery else {
                return;
            };
            for (index, destination) in delivery.targets.destinations.iter().enumerate() {
                let Ok(slot) = slots.clone().acquire_owned().await else {
                    return;
                };
                let gateway = gateway.clone();
                let client = client.clone();
                let targets = delivery.targets.clone();
                let alert = delivery.alert.clone();
                let name = destination.name.clone();
                gateway.tasks.clone().spawn(async move {
                    let destination = &targets.destinations[index];
                    deliver(&gateway, &client, destination, &alert).await;
                    drop((slot, name));
                });
            }
        }
    });
}

type Client = hyper_util::client::legacy::Client<
    hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
    Full<Bytes>,
>;

fn client() -> Result<Client, rustls::Error> {
    let mut http = hyper_util::client::legacy::connect::HttpConnector::new();
    http.enforce_http(false);
    http.set_connect_timeout(Some(TRY_TIMEOUT));
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_provider_and_webpki_roots(rustls::crypto::ring::default_provider())?
        .https_or_http()
        .enable_http1()
        .build();
    Ok(
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .build(connector),
    )
}

/// Why one try failed, in words that never hold the URL.
async fn post(client: &Client, url: &SecretString, body: &Bytes) -> Result<(), String> {
    let request = Request::post(url.expose_secret())
        .header(http::header::CONTENT_TYPE, "application/json")
        .header(http::header::USER_AGENT, "tramontane-gateway")
        .body(Full::new(body.clone()))
        .map_err(|_| "the URL cannot be requested".to_owned())?;
    match tokio::time::timeout(TRY_TIMEOUT, client.request(request)).await {
        Ok(Ok(response)) if response.status().is_success() => Ok(()),
        Ok(Ok(response)) => Err(format!("answered HTTP {}", response.status().as_u16())),
        // The error's chain may quote the URL (a connector names what it failed to reach).
        Ok(Err(error)) if error.is_connect() => Err("cannot connect".to_owned()),
        Ok(Err(_)) => Err("the request failed".to_owned()),
        Err(_) => Err(format!("no answer within {} s", TRY_TIMEOUT.as_secs())),
    }
}

/// Delivers one alert to one destination, trying again with backoff; a delivery that fails
/// every try is an audit line and a metric.
async fn deliver(gateway: &Gateway, client: &Client, destination: &Destination, alert: &Alert) {
    let body = Bytes::from(alert.payload(destination.kind).to_string());
    let mut wait = FIRST_BACKOFF;
    let mut last = String::new();
    for attempt in 1..=TRIES {
        match post(client, &destination.url, &body).await {
            Ok(()) => {
                tracing::info!(destination = %destination.name, rule = %alert.rule.id, window = %alert.window, threshold = alert.threshold, "alert delivered");
                return;
            }
            Err(reason) => last = reason,
        }
        if attempt < TRIES {
            tokio::time::sleep(wait).await;
            wait *= 4;
        }
    }
    gateway.metrics.alert_failed();
    tracing::warn!(destination = %destination.name, rule = %alert.rule.id, threshold = alert.threshold, reason = %last, "an alert could not be delivered");
    gateway.audit.write_alert(AlertAuditRecord {
        time: tramontane::model::timestamp(Timestamp::now()),
        kind: "alert",
        decision: "failed",
        destination: destination.name.clone(),
        rule: alert.rule.id.clone(),
        window: alert.window.clone(),
        threshold: alert.threshold,
        used: alert.used,
        limit: alert.rule.limit,
        tries: TRIES,
        reason: last,
    });
}

/// The audit line of an alert that could not be delivered.
#[derive(Clone, Debug, Serialize)]
pub struct AlertAuditRecord {
    pub time: String,
    /// `alert`: not a request's line.
    pub kind: &'static str,
    /// `failed`.
    pub decision: &'static str,
    pub destination: String,
    pub rule: String,
    pub window: String,
    pub threshold: u8,
    pub used: u64,
    pub limit: u64,
    pub tries: u32,
    pub reason: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use tramontane::runtime::{Measure, RuleScope};

    fn alert(threshold: u8, used: u64) -> Alert {
        Alert {
            rule: Rule::new(
                RuleScope::Key("workspace.dev.key.ci".into()),
                Measure::Tokens,
                Window::Day,
                1000,
            ),
            window: "2026-11-26".into(),
            window_start: "2026-11-26T00:00:00Z".parse().unwrap(),
            threshold,
            used,
        }
    }

    #[test]
    fn the_webhook_names_the_rule_its_window_the_threshold_and_the_use() {
        let payload = alert(80, 812).payload(AlertKind::Webhook);
        assert_eq!(
            payload,
            serde_json::json!({
                "rule": {
                    "id": "key:workspace.dev.key.ci:tokens:day",
                    "scope": {"kind": "key", "name": "workspace.dev.key.ci"},
                    "measure": "tokens",
                    "window": "day",
                },
                "window_start": "2026-11-26T00:00:00Z",
                "threshold": 80,
                "used": 812,
                "limit": 1000,
                "text": "1000 tokens a day for key `workspace.dev.key.ci`",
            })
        );
        let slack = alert(80, 812).payload(AlertKind::Slack);
        assert_eq!(
            slack["text"],
            "80% of 1000 tokens a day for key `workspace.dev.key.ci` reached: 812 tokens in the window that began 2026-11-26T00:00:00Z (rule `key:workspace.dev.key.ci:tokens:day`)"
        );
        assert_eq!(slack.as_object().unwrap().len(), 1);
    }

    #[test]
    fn a_window_starts_one_window_before_it_ends() {
        let at = |text: &str| text.parse::<Timestamp>().unwrap();
        let end = at("2026-12-01T00:00:00Z");
        assert_eq!(window_start(Window::Month, end), at("2026-11-01T00:00:00Z"));
        assert_eq!(window_start(Window::Day, end), at("2026-11-30T00:00:00Z"));
        assert_eq!(window_start(Window::Hour, end), at("2026-11-30T23:00:00Z"));
        let (name, end) = crate::enforce::window(Window::Month, at("2026-02-14T10:00:00Z"));
        assert_eq!(name, "2026-02");
        assert_eq!(window_start(Window::Month, end), at("2026-02-01T00:00:00Z"));
    }

    #[test]
    fn urls_come_from_the_environment_or_a_file_and_are_never_shown() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("url");
        std::fs::write(&file, "https://hooks.example/T0/secret\n").unwrap();
        let alerts: tramontane::model::Alerts = serde_json::from_value(serde_json::json!({
            "thresholds": [90],
            "destinations": {
                "chat": {"kind": "slack", "url": {"file": file.to_str().unwrap()}},
                "gone": {"kind": "webhook", "url": {"env": "TRAMONTANE_TEST_ALERT_URL_NEVER_SET"}},
                "plain": {"kind": "webhook", "url": {"file": dir.path().join("plain").to_str().unwrap()}},
            }
        }))
        .unwrap();
        std::fs::write(dir.path().join("plain"), "http://hooks.example/x").unwrap();
        let (targets, problems) = AlertTargets::load(&alerts);
        assert_eq!(targets.thresholds, vec![90]);
        assert_eq!(targets.destinations.len(), 1);
        assert_eq!(
            targets.destinations[0].url.expose_secret(),
            "https://hooks.example/T0/secret"
        );
        assert!(!format!("{targets:?}").contains("secret"));
        let messages: Vec<String> = problems.iter().map(ToString::to_string).collect();
        assert_eq!(messages.len(), 2, "{messages:?}");
        assert!(messages[0].contains("`TRAMONTANE_TEST_ALERT_URL_NEVER_SET` is not set"));
        assert!(messages[1].contains("not an https URL"));
        assert!(!messages[1].contains("hooks.example"));
        assert!(targets.is_active());
        assert!(!AlertTargets::default().is_active());
    }
}
