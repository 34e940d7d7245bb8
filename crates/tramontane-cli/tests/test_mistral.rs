//! The `mistral` provider, end to end: the real binary against the fake Admin API on
//! loopback, with pagination, faults and wrong keys.

use std::time::{Duration, Instant};

use tramontane::provider::sandbox::SandboxOrg;
use tramontane_testkit::fake_api::{FakeApi, Fault};
use tramontane_testkit::{Test, TestDir, example_policies, orgs};

const KEY: &str = "test-admin-key-do-not-print";

fn fake(org: SandboxOrg) -> FakeApi {
    FakeApi::serving(org, KEY)
}

/// `tramontane plan --org mistral` of the example policies against `api`, quick to retry,
/// failing the test if the admin key shows anywhere.
fn plan(env: &TestDir, api: &FakeApi) -> Test {
    env.test()
        .args(["plan", "--org", "mistral"])
        .policies(example_policies())
        .fake_api(api)
        .env("TRAMONTANE_BACKOFF_MS", "5")
        .env("TRAMONTANE_RATE_LIMIT", "1000")
        .no_secret_in_output(KEY)
}

/// The plan as JSON, from a run that succeeded.
fn json_plan(test: Test) -> serde_json::Value {
    test.args(["--format", "json"]).expect_code(0).run().json()
}

#[test]
fn the_http_provider_reads_what_the_sandbox_reads() {
    let env = TestDir::new();
    let api = fake(orgs::demo());
    let over_http = json_plan(plan(&env, &api));
    let bearer = json_plan(plan(&env, &api).args(["--auth", "bearer"]));
    assert_eq!(bearer, over_http);

    orgs::demo().save(&env.join("org.json")).unwrap();
    let direct = env
        .test()
        .args(["plan", "--format", "json", "--org", "sandbox:org.json"])
        .policies(example_policies())
        .expect_code(0)
        .run()
        .json();
    assert_eq!(
        over_http["live"]["fingerprint"], direct["live"]["fingerprint"],
        "the two providers read different orgs"
    );
    assert_eq!(over_http["changes"], direct["changes"]);
    assert_eq!(over_http["unmanaged"], direct["unmanaged"]);
}

#[test]
fn every_list_is_read_to_its_last_page() {
    let api = fake(orgs::demo_past_every_page_size());
    let plan = json_plan(plan(&TestDir::new(), &api));
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
    let api = fake(orgs::demo());
    api.fail_next(
        "/v1/admin/workspaces",
        Fault::Status {
            status: 429,
            retry_after: Some(1),
        },
    );
    let started = Instant::now();
    json_plan(plan(&TestDir::new(), &api));
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "Retry-After was not honoured"
    );
}

#[test]
fn server_errors_and_lost_responses_are_retried() {
    let api = fake(orgs::demo());
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
    let retried = json_plan(plan(&TestDir::new(), &api).args(["--timeout", "1"]));
    let clean = json_plan(plan(&TestDir::new(), &fake(orgs::demo())));
    assert_eq!(retried["live"]["fingerprint"], clean["live"]["fingerprint"]);
}

#[test]
fn a_wrong_key_says_what_to_do() {
    let api = FakeApi::serving(orgs::demo(), "another-key");
    // The server expects another key than the one sent.
    plan(&TestDir::new(), &api)
        .env("MISTRAL_ADMIN_API_KEY", KEY)
        .expect_code(1)
        .expect_stdout("")
        .expect_stderr_contains("401")
        .expect_stderr_contains("MISTRAL_ADMIN_API_KEY")
        // The error names the call.
        .expect_stderr_contains("GET /v1/admin/")
        .run();
}

#[test]
fn a_broken_answer_is_an_error_naming_the_call() {
    let env = TestDir::new();
    let api = fake(orgs::demo());
    api.fail_next("/v1/admin/users", Fault::Truncated);
    // No plan printed from half the data.
    plan(&env, &api)
        .expect_code(1)
        .expect_stdout("")
        .expect_stderr_contains("GET /v1/admin/users")
        .expect_stderr_contains(
            "\nhelp: check that MISTRAL_API_URL points at the Admin API, not at a proxy",
        )
        .run();
    for _ in 0..10 {
        api.fail_next("/v1/admin/rate-limit", Fault::Html);
    }
    plan(&env, &api)
        .expect_code(1)
        .expect_stderr_contains("GET /v1/admin/rate-limit")
        .run();
}

#[test]
fn plain_http_is_refused_beyond_loopback() {
    Test::new()
        .args(["plan", "--org", "mistral"])
        .policies(example_policies())
        .env("MISTRAL_ADMIN_API_KEY", KEY)
        .env("MISTRAL_API_URL", "http://api.example.com")
        .expect_code(1)
        .expect_stderr_contains("http://api.example.com")
        .no_secret_in_output(KEY)
        .run();
}
