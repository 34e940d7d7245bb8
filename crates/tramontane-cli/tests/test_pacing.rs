//! Pacing against a server that enforces a request limit, as a real one does: tramontane
//! starts fast, and on 429s slows every request and settles under the limit, making few
//! refused requests and never acting twice.

use std::collections::HashSet;
use std::fmt::Write;
use std::time::{Duration, Instant};

use secrecy::SecretString;
use tramontane::provider::mistral::client::{Client, ClientConfig};
use tramontane::provider::sandbox::SandboxOrg;
use tramontane::provider::{Operation, Outcome};
use tramontane_testkit::fake_api::{FakeApi, RetryAfter, ServerLimit};
use tramontane_testkit::{TestDir, example_policies, orgs};

const KEY: &str = "pacing-admin-key";

/// The demo org with 60 more teams: each team is two more requests, so a plan makes about
/// 130, several seconds' worth at 50 per second.
fn org_with_teams() -> SandboxOrg {
    let mut org = orgs::demo();
    for i in 0..60 {
        org.perform(
            Operation::CreateGroup {
                name: format!("team-{i:02}"),
                description: String::new(),
            },
            "2026-05-01T12:00:00Z",
        )
        .unwrap();
    }
    org
}

/// `tramontane plan` with the default pace (no `--rate-limit`, default backoff).
fn plan(env: &TestDir, api: &FakeApi) -> (serde_json::Value, Duration) {
    let started = Instant::now();
    let run = env
        .test()
        .args(["plan", "--org", "mistral", "--format", "json"])
        .policies(example_policies())
        .fake_api(api)
        .expect_code(0)
        .run();
    let took = started.elapsed();
    (run.json(), took)
}

/// Plans once without a limit (the fewest requests) and once under `limit`, and checks the
/// limited plan is the same plan, made with each call answered once and few 429s.
/// Returns the fewest requests, the 429s and the time taken under the limit.
fn plan_under(limit: ServerLimit) -> (u64, u64, Duration) {
    let env = TestDir::new();
    let api = FakeApi::serving(org_with_teams(), KEY);
    let (free, _) = plan(&env, &api);
    let fewest = api.requests();
    assert!(
        fewest > 120,
        "the org is too small to prove anything: {fewest}"
    );

    api.set_server_limit(Some(limit));
    let (limited, took) = plan(&env, &api);
    assert_eq!(limited["live"]["fingerprint"], free["live"]["fingerprint"]);
    assert_eq!(limited["changes"], free["changes"]);
    assert_eq!(limited["unmanaged"], free["unmanaged"]);
    let throttled = api.throttled();
    let answered = api.requests() - fewest - throttled;
    eprintln!("{fewest} calls answered, {throttled} refused, in {took:.2?}");
    assert_eq!(answered, fewest, "every call answered exactly once");
    assert!(
        throttled > 0,
        "the limit was never reached; the test proves nothing"
    );
    // The pace comes down at the first 429s and stays under the limit: a few 429s per
    // decrease, not one per request.
    assert!(
        throttled <= fewest / 8,
        "{throttled} requests refused for {fewest} answered"
    );
    (fewest, throttled, took)
}

#[test]
fn a_plan_settles_under_a_server_limit_without_retry_after() {
    let limit = ServerLimit::per_second(50.0, RetryAfter::Absent);
    let (fewest, _, took) = plan_under(limit);
    // The server allows `fewest` requests in about this long; a fixed 20 per second took
    // 2.5 times as long, a client that never slowed down would not be done yet.
    let ideal = Duration::from_secs_f64((fewest as f64 - limit.burst) / limit.per_second);
    assert!(
        took < ideal * 2,
        "{took:?} where the server allows {ideal:?}"
    );
}

#[test]
fn a_plan_settles_under_a_server_limit_with_retry_after() {
    let limit = ServerLimit::per_second(50.0, RetryAfter::Seconds(1));
    let (fewest, throttled, took) = plan_under(limit);
    // Each 429 costs the second the server asked for, and no more.
    let ideal = Duration::from_secs_f64((fewest as f64 - limit.burst) / limit.per_second);
    assert!(
        took < ideal * 2 + Duration::from_secs(throttled.min(4)),
        "{took:?} where the server allows {ideal:?}"
    );
}

/// An org of `workspaces` workspaces and no keys, and a policy that wants `keys` in each.
fn workspaces_wanting_keys(workspaces: usize, keys: usize) -> (SandboxOrg, String) {
    let now = "2026-05-01T12:00:00Z";
    let mut org = SandboxOrg::new("root@pace.example", "Pace Root", now);
    let root = org.users.keys().next().cloned().unwrap();
    org.perform(
        Operation::CreateUser {
            email: "second@pace.example".into(),
            first_name: "Second".into(),
            last_name: "Admin".into(),
            roles: vec!["organization_admin".into()],
        },
        now,
    )
    .unwrap();
    let mut policy = String::from(
        "version: 1\norganization: { min_admins: 2 }\nmembers:\n  root@pace.example: { name: Pace Root, roles: [organization_admin] }\n  second@pace.example: { name: Second Admin, roles: [organization_admin] }\nworkspaces:\n",
    );
    for w in 0..workspaces {
        let name = format!("ws-{w:02}");
        let created = org.perform(
            Operation::CreateWorkspace {
                name: name.clone(),
                description: String::new(),
                admin: root.clone(),
            },
            now,
        );
        assert!(matches!(created, Ok(Outcome::Created(_))));
        let _ = writeln!(policy, "  {name}:\n    admin: root@pace.example\n    keys:");
        for k in 0..keys {
            let _ = writeln!(
                policy,
                "      key-{k}: {{ owner: root@pace.example, secret: {{ file: secrets/{name}/key-{k}.key }} }}"
            );
        }
    }
    (org, policy)
}

#[test]
fn an_apply_of_many_creates_under_a_server_limit_converges_without_duplicates() {
    let (org, policy) = workspaces_wanting_keys(20, 6);
    let env = TestDir::new();
    env.write("policies/org.yaml", policy);
    let api = FakeApi::serving(org, KEY);
    api.set_server_limit(Some(ServerLimit::per_second(
        50.0,
        RetryAfter::Alternating(1),
    )));
    let against_the_api = |args: &[&str]| {
        env.test()
            .args(args)
            .args(["--org", "mistral"])
            .fake_api(&api)
    };
    against_the_api(&["apply", "--auto-approve"])
        .expect_code(0)
        .run();
    let throttled = api.throttled();
    eprintln!("{} requests, {throttled} refused", api.requests());
    assert!(
        throttled > 0,
        "the limit was never reached; the test proves nothing"
    );

    // Every key once, each secret delivered: the creates refused by 429 were sent again,
    // and none twice.
    let org = api.org();
    assert_eq!(org.keys.len(), 120);
    let mut names: Vec<(Option<String>, Option<String>)> = org
        .keys
        .values()
        .map(|key| (key.workspace.clone(), key.name.clone()))
        .collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), 120, "a key was created twice");
    let creates = api
        .log()
        .iter()
        .filter(|line| line.starts_with("POST /v1/admin/api-keys"))
        .count() as u64;
    assert!(
        creates <= 120 + throttled,
        "{creates} creates for 120 keys and {throttled} 429s"
    );
    for w in 0..20 {
        for k in 0..6 {
            let secret = env.path().join(format!("secrets/ws-{w:02}/key-{k}.key"));
            assert!(secret.is_file(), "{} missing", secret.display());
        }
    }
    assert!(
        throttled <= 40,
        "{throttled} requests refused for 120 creates: the pace did not come down"
    );

    let plan = against_the_api(&["plan", "--format", "json"])
        .expect_code(0)
        .run()
        .json();
    assert_eq!(plan["summary"]["create"], 0, "{}", plan["summary"]);
}

/// The demo org with `count` more keys in one workspace.
fn org_with_keys(count: usize) -> SandboxOrg {
    let mut org = orgs::demo();
    let workspace = org.workspaces.keys().next().cloned().unwrap();
    let user = org.users.keys().next().cloned().unwrap();
    for i in 0..count {
        org.perform(
            Operation::CreateKey {
                workspace: workspace.clone(),
                user: user.clone(),
                name: format!("bulk-{i}"),
                expiration: None,
                known: Vec::new(),
            },
            "2026-05-01T12:00:00Z",
        )
        .unwrap();
    }
    org
}

/// The key list has no total, so it is read ahead: after the first page shows the server's
/// clamp (and a second that it is a clamp, not the end), a window of as many pages as may be
/// in flight at a time, until the first short page. Pages asked past it are bounded (fewer
/// than a window) and discarded.
#[test]
fn a_key_list_without_a_total_is_read_a_window_at_a_time() {
    const CLAMP: usize = 100;
    const IN_FLIGHT: usize = 8;
    let latency = Duration::from_millis(50);
    let api = FakeApi::start(org_with_keys(10_000), KEY, latency, "2026-05-01");
    let count = api.org().keys.len();
    api.clamp_pages(Some(CLAMP));
    let mut config = ClientConfig::new(api.url.parse().unwrap(), SecretString::from(KEY));
    config.concurrency = IN_FLIGHT;
    let client = Client::new(config).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();

    let started = Instant::now();
    let keys = runtime.block_on(client.list_api_keys()).unwrap();
    let took = started.elapsed();

    let ids: HashSet<_> = keys.iter().map(|key| key.key_id.clone()).collect();
    assert_eq!((keys.len(), ids.len()), (count, count), "every key, once");
    // The pages the list needs: the full ones and the short one that ends it.
    let pages = count / CLAMP + 1;
    let requests = client.requests() as usize;
    let log = api.log();
    for offset in (CLAMP..count).step_by(CLAMP) {
        let page = format!("GET /v1/admin/api-keys?limit={CLAMP}&offset={offset}");
        assert!(log.contains(&page), "no `{page}`");
    }
    assert!(
        (pages..pages + IN_FLIGHT).contains(&requests),
        "{requests} requests for {pages} pages"
    );
    // Windows after the first two pages, each one round trip; the second page tells the
    // clamp from the end. Read one page at a time, it took `pages` round trips.
    let round_trips = 2 + (pages - 2).div_ceil(IN_FLIGHT);
    let bound = latency * round_trips as u32 + Duration::from_millis(500);
    eprintln!(
        "{count} keys at {CLAMP} a page: {requests} requests for {pages} pages in {took:.2?} \
         (bound {bound:.2?}, one at a time {:.2?})",
        latency * pages as u32
    );
    assert!(took < bound, "{took:?} for {count} keys, bound {bound:?}");
}
