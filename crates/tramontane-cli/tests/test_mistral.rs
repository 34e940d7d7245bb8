//! The `mistral` provider, end to end: the real binary against the fake Admin API on
//! loopback, with pagination, faults and wrong keys.

use std::time::{Duration, Instant};

use tramontane::provider::sandbox::{SandboxOrg, demo_org};

use crate::common::fake_api::{FakeApi, Fault};
use crate::common::{Run, TODAY, TestEnv, command, repo_root};

const KEY: &str = "test-admin-key-do-not-print";

fn fake(org: SandboxOrg) -> FakeApi {
    FakeApi::start(org, KEY, Duration::ZERO, TODAY)
}

fn plan(env: &TestEnv, api: &FakeApi, extra: &[&str]) -> Run {
    let output = command(env.root())
        .args(["plan", "--org", "mistral", "--policies"])
        .arg(repo_root().join("policies"))
        .args(extra)
        .env("MISTRAL_ADMIN_API_KEY", KEY)
        .env("MISTRAL_API_URL", &api.url)
        .env("TRAMONTANE_BACKOFF_MS", "5")
        .env("TRAMONTANE_RATE_LIMIT", "1000")
        .output()
        .unwrap();
    let run = Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8(output.stdout).unwrap(),
        stderr: String::from_utf8(output.stderr).unwrap(),
    };
    assert!(
        !run.stdout.contains(KEY) && !run.stderr.contains(KEY),
        "the key leaked:\n{}{}",
        run.stdout,
        run.stderr
    );
    run
}

fn json_plan(run: &Run) -> serde_json::Value {
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    serde_json::from_str(&run.stdout).unwrap()
}

#[test]
fn the_http_provider_reads_what_the_sandbox_reads() {
    let env = TestEnv::new();
    let api = fake(demo_org(TODAY.parse().unwrap()));
    let over_http = json_plan(&plan(&env, &api, &["--format", "json"]));
    let bearer = json_plan(&plan(&env, &api, &["--format", "json", "--auth", "bearer"]));
    assert_eq!(bearer, over_http);

    let sandbox = env.root().join("org.json");
    demo_org(TODAY.parse().unwrap()).save(&sandbox).unwrap();
    let output = command(env.root())
        .args(["plan", "--format", "json", "--policies"])
        .arg(repo_root().join("policies"))
        .arg("--org")
        .arg(format!("sandbox:{}", sandbox.display()))
        .output()
        .unwrap();
    let direct: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(
        over_http["live"]["fingerprint"], direct["live"]["fingerprint"],
        "the two providers read different orgs"
    );
    assert_eq!(over_http["changes"], direct["changes"]);
    assert_eq!(over_http["unmanaged"], direct["unmanaged"]);
}

#[test]
fn every_list_is_read_to_its_last_page() {
    let org = crate::common::demo_org_past_every_page_size();
    let env = TestEnv::new();
    let api = fake(org);
    let plan = json_plan(&plan(&env, &api, &["--format", "json"]));
    let unmanaged = plan["unmanaged"].as_array().unwrap();
    assert_eq!(
        unmanaged.iter().filter(|u| u["kind"] == "member").count(),
        2_101
    );
    assert_eq!(
        unmanaged.iter().filter(|u| u["kind"] == "team").count(),
        131
    );
    assert_eq!(
        unmanaged.iter().filter(|u| u["kind"] == "api_key").count(),
        1_051
    );
    let log = api.log();
    assert!(
        log.iter()
            .any(|line| line.starts_with("GET /v1/admin/users") && line.contains("page=3")),
        "{log:#?}"
    );
    assert!(
        log.iter()
            .any(|line| line.starts_with("GET /v1/admin/user-groups?") && line.contains("page=2")),
        "{log:#?}"
    );
    assert!(
        log.iter()
            .any(|line| line.starts_with("GET /v1/admin/api-keys") && line.contains("offset=1000")),
        "{log:#?}"
    );
}

#[test]
fn a_429_waits_for_retry_after_then_succeeds() {
    let env = TestEnv::new();
    let api = fake(demo_org(TODAY.parse().unwrap()));
    api.fail_next(
        "/v1/admin/workspaces",
        Fault::Status {
            status: 429,
            retry_after: Some(1),
        },
    );
    let started = Instant::now();
    let run = plan(&env, &api, &["--format", "json"]);
    json_plan(&run);
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "Retry-After was not honoured"
    );
}

#[test]
fn server_errors_and_lost_responses_are_retried() {
    let env = TestEnv::new();
    let api = fake(demo_org(TODAY.parse().unwrap()));
    api.fail_next(
        "/v1/admin/roles",
        Fault::Status {
            status: 503,
            retry_after: None,
        },
    );
    api.fail_next(
        "/v1/admin/user-groups",
        Fault::Status {
            status: 500,
            retry_after: None,
        },
    );
    api.fail_next(
        "/v1/admin/spend-limit",
        Fault::Stall(Duration::from_secs(3)),
    );
    let run = plan(&env, &api, &["--format", "json", "--timeout", "1"]);
    let retried = json_plan(&run);
    let env2 = TestEnv::new();
    let clean = json_plan(&plan(
        &env2,
        &fake(demo_org(TODAY.parse().unwrap())),
        &["--format", "json"],
    ));
    assert_eq!(retried["live"]["fingerprint"], clean["live"]["fingerprint"]);
}

#[test]
fn a_wrong_key_says_what_to_do() {
    let env = TestEnv::new();
    let api = FakeApi::start(
        demo_org(TODAY.parse().unwrap()),
        "another-key",
        Duration::ZERO,
        TODAY,
    );
    let run = plan(&env, &api, &[]);
    assert_eq!(run.code, 1);
    assert!(run.stdout.is_empty());
    assert!(run.stderr.contains("401"), "{}", run.stderr);
    assert!(
        run.stderr.contains("MISTRAL_ADMIN_API_KEY"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("GET /v1/admin/"),
        "the error names the call: {}",
        run.stderr
    );
}

#[test]
fn a_broken_answer_is_an_error_naming_the_call() {
    let env = TestEnv::new();
    let api = fake(demo_org(TODAY.parse().unwrap()));
    api.fail_next("/v1/admin/users", Fault::Truncated);
    let run = plan(&env, &api, &[]);
    assert_eq!(run.code, 1, "{}", run.stdout);
    assert!(
        run.stdout.is_empty(),
        "a plan was printed from half the data"
    );
    assert!(run.stderr.contains("GET /v1/admin/users"), "{}", run.stderr);
    for _ in 0..10 {
        api.fail_next("/v1/admin/rate-limit", Fault::Html);
    }
    let run = plan(&env, &api, &[]);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains("GET /v1/admin/rate-limit"),
        "{}",
        run.stderr
    );
}

#[test]
fn plain_http_is_refused_beyond_loopback() {
    let env = TestEnv::new();
    let output = command(env.root())
        .args(["plan", "--org", "mistral", "--policies"])
        .arg(repo_root().join("policies"))
        .env("MISTRAL_ADMIN_API_KEY", KEY)
        .env("MISTRAL_API_URL", "http://api.example.com")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains("http://api.example.com"), "{stderr}");
    assert!(!stderr.contains(KEY));
}
