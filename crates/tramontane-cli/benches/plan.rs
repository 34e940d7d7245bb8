//! Benchmark: `tramontane plan --org mistral` with its default flags against the fake Admin
//! API with 50 ms of latency per request, on an organization of 500 workspaces, 5,000
//! members, 200 teams and 10,000 keys. Reports requests, wall time and peak memory beside
//! the lower bound: the fewest requests the API's page sizes allow, at the default
//! concurrency, times the latency. Then the same plan against a server that limits
//! requests to 100 per second and answers 429 beyond, beside what that limit allows.
//! Between the two, the same plan against a server that serves at most 100 items a page
//! whatever is asked (the key list, without a total, cannot tell the clamp from its end by
//! one page), beside the bound of pages of that size.
//!
//! Run with `cargo bench --bench plan` (cargo builds the binary with the optimized bench
//! profile).

use tramontane_testkit::fake_api::{FakeApi, RetryAfter, ServerLimit};

use std::process::Command;
use std::time::{Duration, Instant};

use tramontane::model::import::desired_from_live;
use tramontane::policy::write::to_yaml;
use tramontane::provider::sandbox::SandboxOrg;
use tramontane::provider::{Operation, Outcome};

const WORKSPACES: usize = 500;
const MEMBERS: usize = 5_000;
const TEAMS: usize = 200;
const KEYS: usize = 10_000;
const LATENCY: Duration = Duration::from_millis(50);
/// The default `--concurrency`.
const CONCURRENCY: usize = 8;
/// The server-side limit of the second run, in requests per second.
const SERVER_LIMIT: f64 = 100.0;
const TODAY: &str = "2026-06-01";
/// The most items a page holds in the clamped run, whatever the client asks.
const PAGE_CLAMP: usize = 100;

fn created(outcome: Outcome) -> String {
    match outcome {
        Outcome::Created(id) | Outcome::Key { id, .. } => id,
        Outcome::Done => String::new(),
    }
}

fn big_org() -> SandboxOrg {
    let now = "2026-05-01T12:00:00Z";
    let mut org = SandboxOrg::new("root@bench.example", "Bench Root", now);
    let perform = |org: &mut SandboxOrg, op| {
        created(org.perform(op, now).expect("the bench org keeps the rules"))
    };
    let users: Vec<String> = (1..MEMBERS)
        .map(|i| {
            perform(
                &mut org,
                Operation::CreateUser {
                    email: format!("user{i:05}@bench.example"),
                    first_name: "User".into(),
                    last_name: format!("Number{i}"),
                    roles: vec![
                        if i < 3 {
                            "organization_admin"
                        } else {
                            "member"
                        }
                        .into(),
                    ],
                },
            )
        })
        .collect();
    let workspaces: Vec<String> = (0..WORKSPACES)
        .map(|w| {
            let id = perform(
                &mut org,
                Operation::CreateWorkspace {
                    name: format!("ws-{w:04}"),
                    description: format!("Workspace {w}"),
                    admin: users[w % users.len()].clone(),
                },
            );
            let members = (1..10)
                .map(|m| {
                    (
                        users[(w * 10 + m) % users.len()].clone(),
                        vec!["dev".to_owned()],
                    )
                })
                .collect();
            perform(
                &mut org,
                Operation::UpsertWorkspaceMembers {
                    workspace: id.clone(),
                    members,
                },
            );
            id
        })
        .collect();
    for t in 0..TEAMS {
        let group = perform(
            &mut org,
            Operation::CreateGroup {
                name: format!("team-{t:03}"),
                description: format!("Team {t}"),
            },
        );
        let members = (0..25)
            .map(|m| users[(t * 25 + m) % users.len()].clone())
            .collect();
        perform(
            &mut org,
            Operation::AddGroupMembers {
                group: group.clone(),
                users: members,
            },
        );
        for w in 0..2 {
            perform(
                &mut org,
                Operation::AssignGroupWorkspace {
                    group: group.clone(),
                    workspace: workspaces[(t * 2 + w) % WORKSPACES].clone(),
                    roles: vec!["user".into()],
                },
            );
        }
    }
    for k in 0..KEYS {
        let w = k % WORKSPACES;
        perform(
            &mut org,
            Operation::CreateKey {
                workspace: workspaces[w].clone(),
                user: users[w % users.len()].clone(),
                name: format!("key-{k:05}"),
                expiration: Some("2026-08-01".parse().unwrap()),
                known: Vec::new(),
            },
        );
    }
    org
}

/// The fewest requests the API's page sizes allow for this org, each page at most `clamp`
/// items when the server serves fewer than asked, and how many must run one after another.
fn lower_bound(clamp: Option<usize>) -> (usize, usize) {
    use tramontane::provider::mistral::client::{
        API_KEYS_PAGE_SIZE, GROUP_MEMBERS_PAGE_SIZE, GROUP_WORKSPACES_PAGE_SIZE, GROUPS_PAGE_SIZE,
        USERS_PAGE_SIZE, WORKSPACES_PAGE_SIZE,
    };
    let served = |asked: usize| clamp.map_or(asked, |clamp| asked.min(clamp));
    let pages = |items: usize, asked: usize| items.div_ceil(served(asked)).max(1);
    let users = pages(MEMBERS, USERS_PAGE_SIZE);
    let groups = pages(TEAMS, GROUPS_PAGE_SIZE);
    let per_group = pages(25, GROUP_MEMBERS_PAGE_SIZE) + pages(2, GROUP_WORKSPACES_PAGE_SIZE);
    // Offset paging has no total: reading to the end takes one page past the last full one.
    let keys = KEYS / served(API_KEYS_PAGE_SIZE) + 1;
    let requests = 1
        + users
        + pages(WORKSPACES, WORKSPACES_PAGE_SIZE)
        + 1
        + groups
        + TEAMS * per_group
        + keys
        + 2;
    // The longest chain: the keys, read ahead (the first page, then windows of as many
    // pages as may be in flight until the short one). A first page short of the size asked
    // may be the whole list or the clamp: one more page alone tells which.
    let chain = match clamp {
        Some(clamp) if clamp < API_KEYS_PAGE_SIZE => 2 + (keys - 2).div_ceil(CONCURRENCY),
        _ => 1 + (keys - 1).div_ceil(CONCURRENCY),
    };
    (requests, chain)
}

/// The bound of a plan at the default concurrency: the requests spread over it, or the
/// longest chain where that is longer.
fn bound_of((fewest, chain): (usize, usize)) -> Duration {
    LATENCY.mul_f64((fewest as f64 / CONCURRENCY as f64).max(chain as f64))
}

fn main() {
    // The binary cargo built for this bench, with the optimized bench profile: a second
    // `cargo build --release` would build the whole tree again under the release profile.
    let binary = std::path::Path::new(env!("CARGO_BIN_EXE_tramontane"));

    let started = Instant::now();
    let org = big_org();
    let live = org.to_live();
    println!(
        "built the org in {:.1?}: {} members, {} workspaces, {} teams, {} keys",
        started.elapsed(),
        live.members.len(),
        live.workspaces.len(),
        live.teams.len(),
        live.keys.len()
    );
    let (desired, _) = desired_from_live(&live, TODAY.parse().unwrap());
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("policies")).unwrap();
    std::fs::write(dir.path().join("policies/org.yaml"), to_yaml(&desired)).unwrap();

    let fake = FakeApi::start(org, KEY, LATENCY, TODAY);
    let (fewest, chain) = lower_bound(None);
    let bound = bound_of((fewest, chain));
    let free = plan(binary, dir.path(), &fake);
    println!("plan: {}", free.last_line);

    // Pages clamped: the server serves at most PAGE_CLAMP items whatever is asked, so the
    // key list, which has no total, is read without knowing its length or the page size.
    fake.clamp_pages(Some(PAGE_CLAMP));
    let clamped_bound = lower_bound(Some(PAGE_CLAMP));
    let clamped = plan(binary, dir.path(), &fake);
    fake.clamp_pages(None);

    let limit = ServerLimit::per_second(SERVER_LIMIT, RetryAfter::Absent);
    fake.set_server_limit(Some(limit));
    let limited = plan(binary, dir.path(), &fake);
    let allowed = Duration::from_secs_f64((fewest as f64 - limit.burst) / limit.per_second);

    println!(
        "{:<30} {:>9} {:>6} {:>9} {:>9} {:>7} {:>10}",
        "", "requests", "429s", "wall (s)", "bound (s)", "ratio", "peak (MB)"
    );
    for (name, requests, ideal) in [
        ("lower bound".to_owned(), fewest, bound),
        (
            format!("lower bound, pages of {PAGE_CLAMP}"),
            clamped_bound.0,
            bound_of(clamped_bound),
        ),
    ] {
        println!(
            "{:<30} {:>9} {:>6} {:>9} {:>9} {:>7} {:>10}",
            name,
            requests,
            "",
            "",
            format!("{:.2}", ideal.as_secs_f64()),
            "",
            ""
        );
    }
    for (name, run, ideal) in [
        ("tramontane plan".to_owned(), &free, bound),
        (
            format!("  pages clamped to {PAGE_CLAMP}"),
            &clamped,
            bound_of(clamped_bound),
        ),
        (
            "  server limit 100/s, 429s".to_owned(),
            &limited,
            bound.max(allowed),
        ),
    ] {
        println!(
            "{:<30} {:>9} {:>6} {:>9.2} {:>9.2} {:>6.2}x {:>10}",
            name,
            run.requests,
            run.throttled,
            run.wall.as_secs_f64(),
            ideal.as_secs_f64(),
            run.wall.as_secs_f64() / ideal.as_secs_f64(),
            run.peak_kb / 1024
        );
    }
    println!(
        "default flags (concurrency {CONCURRENCY}, no rate limit), latency {} ms; the limited run's bound is the larger of the lower bound and (requests - burst) / limit",
        LATENCY.as_millis()
    );
}

const KEY: &str = "bench-admin-key";

/// What one `tramontane plan` run took.
struct Measured {
    wall: Duration,
    peak_kb: u64,
    requests: u64,
    throttled: u64,
    last_line: String,
}

fn plan(binary: &std::path::Path, dir: &std::path::Path, fake: &FakeApi) -> Measured {
    let (requests, throttled) = (fake.requests(), fake.throttled());
    let time_file = dir.join("time");
    let started = Instant::now();
    let output = Command::new("/usr/bin/time")
        .arg("-o")
        .arg(&time_file)
        .args(["-f", "%M"])
        .arg(binary)
        .args([
            "plan",
            "--org",
            "mistral",
            "--quiet",
            "--policies",
            "policies",
        ])
        .current_dir(dir)
        .env("MISTRAL_ADMIN_API_KEY", KEY)
        .env("MISTRAL_API_URL", &fake.url)
        .env("TRAMONTANE_TODAY", TODAY)
        .env_remove("TRAMONTANE_RATE_LIMIT")
        .env_remove("TRAMONTANE_CONCURRENCY")
        .output()
        .unwrap();
    let wall = started.elapsed();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let peak_kb: u64 = std::fs::read_to_string(&time_file)
        .unwrap()
        .lines()
        .last()
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    Measured {
        wall,
        peak_kb,
        requests: fake.requests() - requests,
        throttled: fake.throttled() - throttled,
        last_line: String::from_utf8_lossy(&output.stdout)
            .lines()
            .last()
            .unwrap_or_default()
            .to_owned(),
    }
}
