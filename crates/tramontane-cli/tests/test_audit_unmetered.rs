//! `tramontane audit --store`: each workspace's bill (`/v1/admin/usage` of the fake Admin API)
//! set against what the gateway metered in its Redis store, written there by the gateway's own
//! store code. The clock is pinned with `--now`.

use std::collections::BTreeSet;

use jiff::civil::Date;
use tramontane::provider::sandbox::SandboxOrg;
use tramontane::provider::{Operation, Outcome};
use tramontane_gateway::store::redis::{RedisSettings, RedisStore};
use tramontane_gateway::store::{LimitStore, MeterEntry};
use tramontane_testkit::fake_api::FakeApi;
use tramontane_testkit::orgs::{self, People};
use tramontane_testkit::redis_server::RedisServer;
use tramontane_testkit::{Output, TestDir};

const KEY: &str = "test-admin-key-do-not-print";
const NOW: &str = "2026-06-10T12:00:00Z";

/// Workspaces `prod`, `dev`, `ops` and `lab` beside the default one. Billed this month: prod
/// 40.00, dev 20.00, ops 5.00, lab 30.00; in May, prod another 500.00.
fn org() -> SandboxOrg {
    let now = "2026-01-01T12:00:00Z";
    let (mut org, People { alice, .. }) = orgs::three_people(now);
    for (name, billed) in [("prod", 40.0), ("dev", 20.0), ("ops", 5.0), ("lab", 30.0)] {
        let Ok(Outcome::Created(id)) = org.perform(
            Operation::CreateWorkspace {
                name: name.into(),
                description: String::new(),
                admin: alice.clone(),
            },
            now,
        ) else {
            panic!("workspace {name} was not created")
        };
        // Billed in two halves, on two days: the bill is a sum of records.
        for day in ["2026-06-02", "2026-06-09"] {
            org.record_usage(&id, day.parse::<Date>().unwrap(), billed / 2.0);
        }
        if name == "prod" {
            org.record_usage(&id, "2026-05-20".parse().unwrap(), 500.0);
        }
    }
    org
}

/// The policy puts `ops` behind the gateway (a `gateway:` block); `prod` and `dev` are
/// behind it because the gateway metered them; `lab` is not, and is billed without a meter
/// by design.
fn policy(env: &TestDir) {
    env.write(
        "policies/organization.yaml",
        "version: 1\n\
         members:\n  \
           alice@acme.example: { name: Alice Martin, roles: [organization_admin] }\n  \
           bob@acme.example: { name: Bob Stone }\n  \
           carol@acme.example: { name: Carol Diaz }\n",
    );
    env.write(
        "policies/workspaces/ops.yaml",
        "workspaces:\n  ops:\n    admin: alice@acme.example\n    gateway: {}\n",
    );
}

/// Meters what the gateway would have for June: prod 10.00 over three requests (30.00 short
/// of its bill), dev 19.50 (within the 1.00 floor of its tolerance), ops nothing; and May's
/// prod, which a June audit must not read.
fn meter(redis: &RedisServer, prefix: &str) {
    let mut settings = RedisSettings::new(redis.url());
    settings.prefix = prefix.into();
    let entries = [
        ("prod", "2026-06", "mistral-small-2506", 4_000_000),
        ("prod", "2026-06", "mistral-small-2506", 5_000_000),
        ("prod", "2026-06", "mistral-large-2411", 1_000_000),
        ("dev", "2026-06", "mistral-small-2506", 19_500_000),
        ("prod", "2026-05", "mistral-small-2506", 500_000_000),
    ];
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            let store = RedisStore::new(&settings).unwrap();
            for (workspace, month, model, cost) in entries {
                store
                    .meter(&MeterEntry {
                        workspace: workspace.into(),
                        month: month.into(),
                        day: format!("{month}-01"),
                        model: model.into(),
                        requests: 1,
                        prompt_tokens: 1000,
                        completion_tokens: 200,
                        cost_micros: cost,
                    })
                    .await
                    .unwrap();
            }
        });
}

fn audit(env: &TestDir, api: &FakeApi, extra: &[&str]) -> Output {
    env.test()
        .args(["audit", "--org", "mistral", "--fail-on", "critical"])
        .args(extra)
        .now(NOW)
        .fake_api(api)
        .env("TRAMONTANE_BACKOFF_MS", "5")
        .env_remove("TRAMONTANE_STORE_PASSWORD")
        .run()
}

fn unmetered(run: &Output) -> BTreeSet<String> {
    let report: serde_json::Value = serde_json::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}{}", run.stdout, run.stderr));
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["id"].as_str().unwrap().to_owned())
        .filter(|id| id.starts_with("spend-unmetered:"))
        .collect()
}

fn setup() -> (TestDir, FakeApi, RedisServer) {
    let env = TestDir::new();
    policy(&env);
    let redis = RedisServer::start();
    meter(&redis, "blue:");
    (env, FakeApi::serving(org(), KEY), redis)
}

#[test]
fn a_workspace_billed_more_than_metered_is_reported_and_one_within_tolerance_is_not() {
    let (env, api, redis) = setup();
    let store = ["--store", redis.url(), "--store-prefix", "blue:"];
    let run = audit(&env, &api, &[&store[..], &["--format", "json"]].concat());
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert_eq!(
        unmetered(&run),
        BTreeSet::from([
            "spend-unmetered:workspace.ops".to_owned(),
            "spend-unmetered:workspace.prod".to_owned(),
        ])
    );
    let report: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let prod = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["id"] == "spend-unmetered:workspace.prod")
        .unwrap();
    assert_eq!(prod["severity"], "medium");
    assert_eq!(prod["rule"], "spend-unmetered");
    let message = prod["message"].as_str().unwrap();
    for part in [
        "billed 40.00 EUR for 2026-06",
        "metered 10.00 EUR (3 requests, 3600 tokens):",
        "30.00 EUR unmetered",
        "tolerance of 2.00 EUR",
    ] {
        assert!(message.contains(part), "{message}");
    }
    let remedy = prod["remedy"].as_str().unwrap();
    assert!(remedy.contains("tramontane revoke"), "{remedy}");
    assert!(remedy.contains("models diff"), "{remedy}");
    for format in ["human", "json", "csv", "sarif", "markdown"] {
        let run = audit(&env, &api, &[&store[..], &["--format", format]].concat());
        assert_eq!(run.code, 0, "{}", run.stderr);
        let text = run
            .stdout
            .replace(redis.url(), "redis://127.0.0.1:[port]")
            // A PR comment's markdown breaks the scheme with a zero-width joiner, so no
            // renderer links it.
            .replace(
                &redis.url().replacen("://", "\u{200d}://", 1),
                "redis\u{200d}://127.0.0.1:[port]",
            )
            .replace(
                &format!("\"{}\"", env!("CARGO_PKG_VERSION")),
                "\"[version]\"",
            );
        insta::assert_snapshot!(format!("unmetered_{format}"), text);
    }
}

#[test]
fn the_tolerance_is_a_flag_and_without_a_store_nothing_is_compared() {
    let (env, api, redis) = setup();
    let store = ["--store", redis.url(), "--store-prefix", "blue:"];
    // 80 % of prod's 40.00 is 32.00, more than its 30.00 gap; ops' 5.00 is past the floor.
    let run = audit(
        &env,
        &api,
        &[
            &store[..],
            &["--format", "json", "--unmetered-tolerance", "80"],
        ]
        .concat(),
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        unmetered(&run),
        BTreeSet::from(["spend-unmetered:workspace.ops".to_owned()])
    );
    let run = audit(&env, &api, &["--format", "json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(unmetered(&run), BTreeSet::new());
    // Another prefix holds no meters: every workspace behind the gateway is unmetered.
    let run = audit(&env, &api, &["--store", redis.url(), "--format", "json"]);
    assert_eq!(
        unmetered(&run),
        BTreeSet::from(["spend-unmetered:workspace.ops".to_owned()])
    );
    let run = audit(&env, &api, &["--unmetered-tolerance", "150"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("percentage"), "{}", run.stderr);
}

#[test]
fn a_store_that_cannot_be_read_is_an_error_naming_it() {
    let (env, api, mut redis) = setup();
    let url = redis.url().to_owned();
    redis.stop();
    let run = audit(&env, &api, &["--store", &url, "--store-prefix", "blue:"]);
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    assert_eq!(run.stdout, "");
    assert!(
        run.stderr.contains(&format!(
            "cannot read the gateway's meters from the store at {url} (prefix `blue:`)"
        )),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("help:"), "{}", run.stderr);
    let run = audit(&env, &api, &["--store", "memory"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("redis://"), "{}", run.stderr);
    let run = audit(&env, &api, &["--store", "redis://:hunter2@127.0.0.1:1"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(!run.stderr.contains("hunter2"), "{}", run.stderr);
    assert!(
        run.stderr.contains("--store-password-file"),
        "{}",
        run.stderr
    );
}
