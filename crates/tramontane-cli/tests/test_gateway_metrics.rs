//! The gateway's metrics as a scraper reads them, from `tramontane gateway serve` in front of
//! the fake inference API: each rule's limit and what this replica saw used of it, by rule
//! id; requests, tokens and spend by workspace; series that follow the policy on reload; and
//! the deploy files built on them — the Prometheus alerting rules (through `promtool`) and
//! the Grafana dashboard, whose every expression must name metrics the gateway exports.
//!
//! `promtool` is `TRAMONTANE_TEST_PROMTOOL` or `promtool` on the PATH; when neither runs, the
//! test fails and says what to install (it never skips).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;
use tramontane_testkit::TestDir;
use tramontane_testkit::fake_inference::{COMPLETION_TOKENS, FakeInference, PROMPT_TOKENS};
use tramontane_testkit::gateway::{GatewayProcess, gateway_key, key_digest};
use tramontane_testkit::gateway_client::{client, get, post};

const SVC_UPSTREAM: &str = "sk-upstream-metrics-T8kW3nR6";

const RATE: &str = "key:workspace.dev.key.svc:requests:minute";
const TOKENS: &str = "key:workspace.dev.key.svc:tokens:day";
const SPEND: &str = "workspace:dev:spend:day";

/// `dev` has a service key with a rate and a daily token budget under a daily spend guard;
/// `ops` has no key, so its counters stay at zero. `with_ops_and_guard: false` drops both.
fn policy(with_ops_and_guard: bool) -> String {
    let guard = if with_ops_and_guard {
        "spend_guard: { day: 100 }"
    } else {
        ""
    };
    let ops = if with_ops_and_guard {
        "  ops:\n    admin: ada@acme.example\n    members: { ada@acme.example: [workspace_admin] }\n"
    } else {
        ""
    };
    format!(
        r#"version: 1
members:
  ada@acme.example: {{ name: Ada Admin, roles: [organization_admin] }}
workspaces:
  dev:
    admin: ada@acme.example
    members: {{ ada@acme.example: [workspace_admin] }}
    models: [mistral-small-latest]
    {guard}
    keys:
      svc:
        owner: ada@acme.example
        rpm: 50
        daily_token_budget: 100000
        max_tokens_per_request: 100
        secret: {{ file: secrets/svc.key }}
{ops}gateway_keys:
  svckey: {{ digest: "{digest}", holder: workspace.dev.key.svc, workspace: dev, expires: 2030-01-01 }}
"#,
        digest = key_digest("svckey"),
    )
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

struct Served {
    _fake: FakeInference,
    env: TestDir,
    gateway: GatewayProcess,
}

/// A workspace whose callers are workloads, trusting an issuer that never answers: its
/// series (`issuer_keys_held` at 0) are exported.
const IDENTITY: &str = "version: 1
workspaces:
  tokens:
    admin: ada@acme.example
    gateway: { upstream_key: svc }
    keys:
      svc: { owner: ada@acme.example, secret: { file: secrets/tokens.key } }
issuers:
  cluster:
    issuer: http://127.0.0.1:9
    jwks_url: http://127.0.0.1:9/jwks
    audiences: [tramontane]
workloads:
  batch: { issuer: cluster, subject: 'system:serviceaccount:team:app', workspace: tokens }
";

impl Served {
    fn start() -> Served {
        Served::start_with(&[])
    }

    fn start_with(files: &[(&str, &str)]) -> Served {
        let fake = FakeInference::start();
        let env = TestDir::new();
        env.write("policies/org.yaml", policy(true));
        for (path, text) in files {
            env.write(path, text);
        }
        env.write("upstream-keys/workspace.dev.key.svc", SVC_UPSTREAM);
        let gateway = GatewayProcess::start(
            &env,
            &[
                "--upstream",
                fake.url.as_str(),
                "--upstream-keys",
                "upstream-keys",
                "--policies",
                "policies",
            ],
        );
        Served {
            _fake: fake,
            env,
            gateway,
        }
    }

    fn scrape(&self) -> String {
        let base = self.gateway.admin_base.clone();
        runtime()
            .block_on(async move { get(&client(), &format!("{base}/metrics"), None).await.body })
    }

    /// `admitted` chat completions of 5 completion tokens, then one for a model the key may
    /// not use; returns once every admitted answer is settled, with what they cost.
    fn traffic(&self, admitted: usize) -> u64 {
        let url = self.gateway.url("/v1/chat/completions");
        runtime().block_on(async {
            let client = client();
            let key = gateway_key("svckey");
            for _ in 0..admitted {
                let body = r#"{"model":"mistral-small-latest","messages":[{"role":"user","content":"hi"}],"max_tokens":5}"#;
                let answer = post(&client, &url, Some(&key), body).await;
                assert_eq!(answer.status, 200, "{}", answer.body);
            }
            let body = r#"{"model":"mistral-large-latest","messages":[]}"#;
            post(&client, &url, Some(&key), body)
                .await
                .refusal(403, "model_not_allowed");
        });
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let costs: Vec<u64> = self
                .gateway
                .audit_lines()
                .iter()
                .filter_map(|line| line["cost_micros"].as_u64())
                .collect();
            if costs.len() == admitted {
                return costs.iter().sum();
            }
            assert!(
                Instant::now() < deadline,
                "{} of {admitted} settled",
                costs.len()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// One sample's value, `name` with its labels as the exposition writes them.
fn sample(text: &str, name: &str) -> Option<f64> {
    text.lines().find_map(|line| {
        let (key, value) = line.rsplit_once(' ')?;
        (key == name).then(|| value.parse().ok())?
    })
}

fn rule(metric: &str, id: &str) -> String {
    format!("tramontane_gateway_rule_{metric}{{rule=\"{id}\"}}")
}

fn workspace(metric: &str, name: &str) -> String {
    format!("tramontane_gateway_workspace_{metric}_total{{workspace=\"{name}\"}}")
}

fn minute_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        / 60
}

#[test]
fn rules_and_workspaces_are_measured_by_id_and_follow_the_policy() {
    let served = Served::start();
    let text = served.scrape();
    // Every rule in force has its limit from the start, nothing used yet.
    assert_eq!(sample(&text, &rule("limit", RATE)), Some(50.0), "{text}");
    assert_eq!(sample(&text, &rule("limit", TOKENS)), Some(100_000.0));
    assert_eq!(sample(&text, &rule("limit", SPEND)), Some(100_000_000.0));
    for id in [RATE, TOKENS, SPEND] {
        assert_eq!(sample(&text, &rule("used", id)), Some(0.0), "{id}: {text}");
    }
    for name in ["dev", "ops"] {
        assert_eq!(sample(&text, &workspace("requests", name)), Some(0.0));
    }

    let minute = minute_now();
    let cost = served.traffic(3);
    let same_minute = minute == minute_now();
    let text = served.scrape();
    let per_answer = PROMPT_TOKENS + 5.min(COMPLETION_TOKENS);
    let tokens = 3.0 * per_answer as f64;
    assert!(cost > 0, "a priced model costs something");
    assert_eq!(sample(&text, &rule("used", TOKENS)), Some(tokens), "{text}");
    assert_eq!(sample(&text, &rule("used", SPEND)), Some(cost as f64));
    // The refused request took no rate slot; the three admitted did, in the calendar minute
    // the gauge counts (a minute that turned mid-test holds only the later ones).
    let rate = sample(&text, &rule("used", RATE)).unwrap();
    if same_minute {
        assert_eq!(rate, 3.0);
    } else {
        assert!((0.0..=3.0).contains(&rate), "{rate}");
    }
    assert_eq!(sample(&text, &workspace("requests", "dev")), Some(4.0));
    assert_eq!(sample(&text, &workspace("tokens", "dev")), Some(tokens));
    assert_eq!(
        sample(&text, &workspace("spend_micros", "dev")),
        Some(cost as f64)
    );
    assert_eq!(sample(&text, &workspace("requests", "ops")), Some(0.0));
    // A label names rules and workspaces, never a gateway key or its id.
    assert!(!text.contains("svckey"), "{text}");
    assert!(!text.contains(&gateway_key("svckey")));

    // A reload drops the guard and the workspace: their series go; the rules kept keep what
    // their window counted.
    served.env.write("policies/org.yaml", policy(false));
    let deadline = Instant::now() + Duration::from_secs(10);
    let text = loop {
        let text = served.scrape();
        if !text.contains(SPEND) {
            break text;
        }
        assert!(Instant::now() < deadline, "the dropped guard stays: {text}");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(!text.contains("workspace=\"ops\""), "{text}");
    assert_eq!(sample(&text, &rule("used", TOKENS)), Some(tokens), "{text}");
    assert_eq!(sample(&text, &workspace("requests", "dev")), Some(4.0));
}

fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `promtool`: `TRAMONTANE_TEST_PROMTOOL` or the one on the PATH; the test fails without it.
fn promtool(args: &[&str], stdin: Option<&str>) -> String {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let binary = std::env::var_os("TRAMONTANE_TEST_PROMTOOL")
        .map_or_else(|| PathBuf::from("promtool"), PathBuf::from);
    let mut child = Command::new(&binary)
        .args(args)
        .current_dir(repository())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|error| {
            panic!(
                "cannot run {}: {error}; run the tests with `scripts/test`, which installs it, or install Prometheus's promtool (`apt-get install prometheus`) or set TRAMONTANE_TEST_PROMTOOL to it",
                binary.display()
            )
        });
    let mut input = child.stdin.take().expect("piped stdin");
    input
        .write_all(stdin.unwrap_or_default().as_bytes())
        .unwrap();
    drop(input);
    let output = child.wait_with_output().unwrap();
    let shown = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success(),
        "promtool {args:?} failed:\n{shown}"
    );
    shown
}

/// The OpenMetrics text the gateway serves in Prometheus's classic text format, the one
/// `promtool check metrics` reads (a scraping Prometheus asks for either): a counter family
/// is named by its samples' `_total` name there, and nothing marks the end.
fn classic(openmetrics: &str) -> String {
    let counters: BTreeSet<&str> = openmetrics
        .lines()
        .filter_map(|line| line.strip_prefix("# TYPE ")?.strip_suffix(" counter"))
        .collect();
    let mut out = String::new();
    for line in openmetrics.lines().filter(|line| *line != "# EOF") {
        let renamed = ["# HELP ", "# TYPE "].iter().find_map(|prefix| {
            let rest = line.strip_prefix(prefix)?;
            let (name, tail) = rest.split_once(' ')?;
            counters
                .contains(name)
                .then(|| format!("{prefix}{name}_total {tail}"))
        });
        out.push_str(renamed.as_deref().unwrap_or(line));
        out.push('\n');
    }
    out
}

#[test]
fn promtool_accepts_the_metrics_the_alerting_rules_and_their_tests() {
    let served = Served::start();
    served.traffic(1);
    let text = served.scrape();
    // Anything printed is a lint problem: a counter without `_total`, a missing help.
    let lint = promtool(&["check", "metrics"], Some(&classic(&text)));
    assert!(lint.trim().is_empty(), "promtool check metrics:\n{lint}");
    promtool(
        &["check", "rules", "deploy/prometheus/tramontane.rules.yml"],
        None,
    );
    promtool(
        &[
            "test",
            "rules",
            "deploy/prometheus/tramontane.rules.test.yml",
        ],
        None,
    );
}

/// The names a scrape offers to a query: each family's samples by their type's suffixes.
fn exported(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("# TYPE ") else {
            continue;
        };
        let (name, kind) = rest.split_once(' ').expect("# TYPE NAME KIND");
        let suffixes: &[&str] = match kind {
            "counter" => &["_total"],
            "histogram" => &["_bucket", "_sum", "_count"],
            _ => &[""],
        };
        names.extend(suffixes.iter().map(|suffix| format!("{name}{suffix}")));
    }
    names
}

/// The metric names a PromQL expression reads: every identifier that is not a function, an
/// aggregation's label list, a keyword, inside a label matcher, a range or a string.
fn metrics_read(expr: &str) -> Vec<String> {
    // Keywords, and the aggregations, which may take their label list before their
    // parenthesis (`sum by (x) (...)`).
    const KEYWORDS: &[&str] = &[
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
        "and",
        "or",
        "unless",
        "bool",
        "offset",
        "inf",
        "nan",
        "sum",
        "min",
        "max",
        "avg",
        "group",
        "stddev",
        "stdvar",
        "count",
        "count_values",
        "bottomk",
        "topk",
        "quantile",
    ];
    let chars: Vec<char> = expr.chars().collect();
    let mut names = Vec::new();
    let mut i = 0;
    // After `by`, `without`, `on`, `ignoring`: the parenthesised list is labels.
    let mut labels_next = false;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '{' | '[' | '"' => {
                let close = match c {
                    '{' => '}',
                    '[' => ']',
                    _ => '"',
                };
                i += 1;
                while i < chars.len() && chars[i] != close {
                    i += if chars[i] == '\\' { 2 } else { 1 };
                }
                i += 1;
            }
            '(' if labels_next => {
                while i < chars.len() && chars[i] != ')' {
                    i += 1;
                }
                i += 1;
                labels_next = false;
            }
            '$' => {
                // A Grafana variable such as `$__rate_interval`.
                i += 1;
                while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                    i += 1;
                }
            }
            c if c.is_ascii_digit() || c == '.' => {
                // A number, `1e6` included.
                while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '.') {
                    i += 1;
                }
            }
            c if c.is_ascii_alphabetic() || c == '_' || c == ':' => {
                let start = i;
                while i < chars.len()
                    && (chars[i].is_ascii_alphanumeric() || chars[i] == '_' || chars[i] == ':')
                {
                    i += 1;
                }
                let word: String = chars[start..i].iter().collect();
                let mut next = i;
                while next < chars.len() && chars[next].is_whitespace() {
                    next += 1;
                }
                let lower = word.to_lowercase();
                if [
                    "by",
                    "without",
                    "on",
                    "ignoring",
                    "group_left",
                    "group_right",
                ]
                .contains(&lower.as_str())
                {
                    labels_next = true;
                } else if KEYWORDS.contains(&lower.as_str()) || chars.get(next) == Some(&'(') {
                    // A keyword or a function.
                } else {
                    names.push(word);
                }
            }
            _ => i += 1,
        }
    }
    names
}

#[test]
fn the_expression_reader_finds_metrics_and_nothing_else() {
    assert_eq!(
        metrics_read(
            r#"histogram_quantile(0.99, sum by (le) (rate(a_bucket{x=~"$y"}[$__rate_interval]))) / on (z) group_left b * 1e6"#
        ),
        ["a_bucket", "b"]
    );
}

/// Every panel's expressions, rows' panels included.
fn expressions(panels: &[Value], into: &mut Vec<(String, String)>) {
    for panel in panels {
        let title = panel["title"].as_str().unwrap_or_default().to_owned();
        for target in panel["targets"].as_array().into_iter().flatten() {
            if let Some(expr) = target["expr"].as_str() {
                into.push((title.clone(), expr.to_owned()));
            }
        }
        if let Some(nested) = panel["panels"].as_array() {
            expressions(nested, into);
        }
    }
}

#[test]
fn the_dashboard_and_the_alerts_read_only_metrics_the_gateway_exports() {
    let served = Served::start_with(&[("policies/identity.yaml", IDENTITY)]);
    served.traffic(1);
    let names = exported(&served.scrape());
    assert!(names.contains("tramontane_gateway_rule_used"), "{names:?}");

    let text = std::fs::read_to_string(repository().join("deploy/grafana/tramontane.json"))
        .expect("the dashboard");
    let dashboard: Value = serde_json::from_str(&text).expect("the dashboard is JSON");
    assert!(dashboard["schemaVersion"].as_u64().is_some());
    assert_eq!(dashboard["__inputs"][0]["name"], "DS_PROMETHEUS");
    let panels = dashboard["panels"].as_array().expect("panels");
    for panel in panels {
        assert_eq!(
            panel["datasource"]["uid"], "${DS_PROMETHEUS}",
            "{}",
            panel["title"]
        );
    }
    let mut all = Vec::new();
    expressions(panels, &mut all);
    for variable in dashboard["templating"]["list"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let query = variable["definition"].as_str().unwrap_or_default();
        // `label_values(METRIC, LABEL)`: the metric is its first argument.
        if let Some(metric) = query
            .strip_prefix("label_values(")
            .and_then(|rest| rest.split(',').next())
        {
            all.push((format!("variable {}", variable["name"]), metric.to_owned()));
        }
    }
    assert!(all.len() >= 8, "{all:?}");

    let rules =
        std::fs::read_to_string(repository().join("deploy/prometheus/tramontane.rules.yml"))
            .expect("the alerting rules");
    let mut in_expr = false;
    let mut expr = String::new();
    for line in rules.lines().chain(["end:"]) {
        let trimmed = line.trim();
        if in_expr
            && (trimmed.starts_with("for:") || trimmed.ends_with(':') || trimmed.contains(": "))
        {
            all.push(("an alerting rule".into(), std::mem::take(&mut expr)));
            in_expr = false;
        }
        if let Some(rest) = trimmed.strip_prefix("expr:") {
            in_expr = true;
            expr = rest.trim_start_matches(" >-").to_owned();
        } else if in_expr {
            expr.push(' ');
            expr.push_str(trimmed);
        }
    }

    for (whose, expr) in &all {
        let read = metrics_read(expr);
        assert!(!read.is_empty(), "{whose}: no metric in `{expr}`");
        for name in read {
            // `up` is Prometheus's own, for every target it scrapes.
            assert!(
                name == "up" || names.contains(&name),
                "{whose}: `{name}` is not a metric the gateway exports ({expr})"
            );
        }
    }
}
