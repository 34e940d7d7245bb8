//! `tramontane usage` through the real binary: a real gateway on a real Redis in front of the
//! fake inference API, billing like Mistral; what `usage` reports a daily token budget used is
//! what the fake billed, read from Redis (`--store`) and from an in-process gateway's admin
//! listener (`--gateway`). The HTML report is opened in headless Chromium and its numbers read
//! back from the rendered page.

use std::time::{Duration, Instant};

use serde_json::Value;
use tramontane_testkit::fake_inference::{Billing, FakeInference};
use tramontane_testkit::redis_server::RedisServer;
use tramontane_testkit::{Test, TestDir};

use super::test_gateway::{Running, client, digest, gateway_key, post, runtime};

const UPSTREAM: &str = "sk-upstream-usage-Q8mW2rT5z";
const RULE: &str = "key:workspace.watch.key.svc:tokens:day";

fn policy() -> String {
    format!(
        r#"version: 1
members:
  ada@acme.example: {{ name: Ada Admin, roles: [organization_admin] }}
workspaces:
  watch:
    admin: ada@acme.example
    members: {{ ada@acme.example: [workspace_admin] }}
    rpm: 600
    keys:
      svc:
        owner: ada@acme.example
        daily_token_budget: 100000
        secret: {{ file: secrets/svc.key }}
gateway_keys:
  watchkey: {{ digest: "{key}", holder: workspace.watch.key.svc, workspace: watch, expires: 2030-01-01 }}
"#,
        key = digest("watchkey"),
    )
}

fn start(fake: &FakeInference, extra: &[&str]) -> (TestDir, Running) {
    let env = TestDir::new();
    env.write("policies/org.yaml", policy());
    env.write("upstream-keys/workspace.watch.key.svc", UPSTREAM);
    let running = Running::start(&env, &fake.url, extra);
    (env, running)
}

/// Sends `count` chat requests under the budgeted key; every one is admitted.
fn send(running: &Running, count: usize) {
    runtime().block_on(async {
        let client = client();
        for i in 0..count {
            let body = format!(
                r#"{{"model":"mistral-small-latest","max_tokens":{},"messages":[{{"role":"user","content":"count to {i}"}}]}}"#,
                5 + i
            );
            let answer = post(
                &client,
                &running.url("/v1/chat/completions"),
                Some(&gateway_key("watchkey")),
                &body,
            )
            .await;
            assert_eq!(answer.status, 200, "{}", answer.body);
        }
    });
}

fn billed_tokens(fake: &FakeInference) -> u64 {
    fake.bills()
        .iter()
        .map(|bill| bill.prompt_tokens + bill.completion_tokens)
        .sum()
}

fn usage(env: &TestDir, args: &[&str]) -> Value {
    let output = Test::in_dir(env)
        .args(["usage", "--policies", "policies", "--format", "json"])
        .args(args)
        .run();
    assert_eq!(output.code, 0, "{}", output.stderr);
    output.json()
}

fn rule<'a>(report: &'a Value, id: &str) -> &'a Value {
    report["rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|rule| rule["id"] == id)
        .unwrap_or_else(|| panic!("no rule {id} in {report:#}"))
}

/// Reads until the rule's counter holds `expected`: a request settles just after its answer
/// reaches the caller, and holds its worst case until then.
fn settled(read: impl Fn() -> Value, expected: u64) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let report = read();
        if rule(&report, RULE)["used"] == expected || Instant::now() > deadline {
            return report;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn usage_from_redis_reports_a_daily_budget_used_as_the_upstream_billed() {
    let redis = RedisServer::start();
    let fake = FakeInference::start();
    fake.bill_like_mistral(Billing::default());
    let (env, running) = start(&fake, &["--store", redis.url()]);
    send(&running, 3);
    let billed = billed_tokens(&fake);
    assert!(billed > 0);
    let report = settled(|| usage(&env, &["--store", redis.url()]), billed);
    let budget = rule(&report, RULE);
    assert_eq!(budget["used"], billed, "{report:#}");
    assert_eq!(budget["limit"], 100_000);
    assert_eq!(budget["left"], 100_000 - billed);
    assert_eq!(
        budget["rule"],
        "100000 tokens a day for key `workspace.watch.key.svc`"
    );
    assert_eq!(report["format_version"], 1);
    // The month's meter: three requests of the workspace's model, and the day's spend.
    let watch = &report["workspaces"][0];
    assert_eq!(watch["workspace"], "watch");
    assert_eq!(watch["requests"], 3);
    assert_eq!(watch["tokens"], billed);
    let today: u64 = report["days"].as_array().unwrap().last().unwrap()["spend_micros"]
        .as_u64()
        .unwrap();
    assert_eq!(today, watch["spend_micros"].as_u64().unwrap());
    // The workspace's rate counted the three requests in the last minute.
    assert_eq!(rule(&report, "workspace:watch:requests:minute")["used"], 3);

    // The same store through the gateway's admin listener.
    let through_gateway = usage(&env, &["--gateway", &running.admin_url("")]);
    assert_eq!(rule(&through_gateway, RULE)["used"], billed);
}

#[test]
fn usage_from_an_in_process_gateway_and_its_html_renders_the_same_numbers() {
    let fake = FakeInference::start();
    fake.bill_like_mistral(Billing::default());
    let (env, running) = start(&fake, &[]);
    send(&running, 2);
    let billed = billed_tokens(&fake);
    let admin = running.admin_url("");
    let report = settled(|| usage(&env, &["--gateway", &admin]), billed);
    assert_eq!(rule(&report, RULE)["used"], billed, "{report:#}");

    // A store flag meant for Redis is refused with what to do instead.
    let refused = Test::in_dir(&env)
        .args(["usage", "--store", "memory"])
        .run();
    assert_eq!(refused.code, 1);
    assert!(
        refused.stderr.contains("help: read it through the gateway"),
        "{}",
        refused.stderr
    );

    let html = Test::in_dir(&env)
        .args([
            "usage",
            "--gateway",
            &admin,
            "--format",
            "html",
            "--out",
            "usage.html",
        ])
        .run();
    assert_eq!(html.code, 0, "{}", html.stderr);
    let dom = super::test_usage_html::dump_dom(&env.path().join("usage.html"));
    super::test_usage_html::assert_dom_matches(&dom, &report);
}
