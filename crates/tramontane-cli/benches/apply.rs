//! Benchmark: `tramontane apply --org mistral` with its default flags, creating 1,000 keys
//! across 100 workspaces in the fake Admin API, with 50 ms of latency on every request.
//! Reports requests and wall time beside the bound the concurrency sets: the creates, the
//! default `--concurrency` at a time, each one round trip, after the organization has been
//! read. Then the same apply against a server that limits requests to 100 per second and
//! answers 429 beyond, beside what that limit allows.
//!
//! Run with `cargo bench --bench apply` (cargo builds the binary with the optimized bench
//! profile).

use tramontane_testkit::fake_api::{FakeApi, RetryAfter, ServerLimit};

use std::fmt::Write;
use std::process::Command;
use std::time::{Duration, Instant};

use tramontane::provider::sandbox::SandboxOrg;
use tramontane::provider::{Operation, Outcome};

const WORKSPACES: usize = 100;
const KEYS_PER_WORKSPACE: usize = 10;
const LATENCY: Duration = Duration::from_millis(50);
/// The default `--concurrency`.
const CONCURRENCY: usize = 8;
/// The server-side limit of the second run, in requests per second.
const SERVER_LIMIT: f64 = 100.0;
const TODAY: &str = "2026-06-01";

/// An organization with the workspaces and no keys, and the policy that wants the keys.
fn org_and_policy() -> (SandboxOrg, String) {
    let now = "2026-05-01T12:00:00Z";
    let mut org = SandboxOrg::new("root@bench.example", "Bench Root", now);
    let root = org.users.keys().next().cloned().expect("the root user");
    org.perform(
        Operation::CreateUser {
            email: "second@bench.example".into(),
            first_name: "Second".into(),
            last_name: "Admin".into(),
            roles: vec!["organization_admin".into()],
        },
        now,
    )
    .expect("a second admin");
    let mut policy = String::from(
        "version: 1\norganization: { min_admins: 2 }\nmembers:\n  root@bench.example: { name: Bench Root, roles: [organization_admin] }\n  second@bench.example: { name: Second Admin, roles: [organization_admin] }\nworkspaces:\n",
    );
    for w in 0..WORKSPACES {
        let name = format!("ws-{w:03}");
        let outcome = org.perform(
            Operation::CreateWorkspace {
                name: name.clone(),
                description: String::new(),
                admin: root.clone(),
            },
            now,
        );
        assert!(matches!(outcome, Ok(Outcome::Created(_))));
        let _ = writeln!(
            policy,
            "  {name}:\n    admin: root@bench.example\n    keys:"
        );
        for k in 0..KEYS_PER_WORKSPACE {
            let _ = writeln!(
                policy,
                "      key-{k:02}: {{ owner: root@bench.example, expires_after_days: 90, secret: {{ file: secrets/{name}/key-{k:02}.key }} }}"
            );
        }
    }
    (org, policy)
}

fn run(binary: &std::path::Path, dir: &std::path::Path, url: &str, args: &[&str]) -> Duration {
    let started = Instant::now();
    let output = Command::new(binary)
        .args(args)
        .args(["--org", "mistral", "--quiet"])
        .current_dir(dir)
        .env_remove("TRAMONTANE_RATE_LIMIT")
        .env_remove("TRAMONTANE_CONCURRENCY")
        .env("MISTRAL_ADMIN_API_KEY", "bench-admin-key")
        .env("MISTRAL_API_URL", url)
        .env("TRAMONTANE_TODAY", TODAY)
        .env("TRAMONTANE_LOCK_DIR", dir.join("locks"))
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    started.elapsed()
}

fn main() {
    // The binary cargo built for this bench, with the optimized bench profile: a second
    // `cargo build --release` would build the whole tree again under the release profile.
    let binary = std::path::Path::new(env!("CARGO_BIN_EXE_tramontane"));

    let free = apply(binary, None);
    let limit = ServerLimit::per_second(SERVER_LIMIT, RetryAfter::Absent);
    let limited = apply(binary, Some(limit));

    let creates = WORKSPACES * KEYS_PER_WORKSPACE;
    let write_bound = LATENCY.mul_f64(creates.div_ceil(CONCURRENCY) as f64);
    let allowed = Duration::from_secs_f64((creates as f64 - limit.burst) / limit.per_second);
    println!("apply: {creates} keys across {WORKSPACES} workspaces, every secret delivered");
    println!(
        "{:<34} {:>9} {:>6} {:>9} {:>9} {:>7}",
        "", "requests", "429s", "wall (s)", "bound (s)", "ratio"
    );
    for (name, run, bound) in [
        ("default flags", &free, write_bound),
        (
            "server limit 100/s, 429s",
            &limited,
            write_bound.max(allowed),
        ),
    ] {
        let writes = run.applied.saturating_sub(run.read);
        println!("{name}");
        println!(
            "{:<34} {:>9} {:>6} {:>9.2}",
            "  read (tramontane plan)",
            run.read_requests,
            "",
            run.read.as_secs_f64()
        );
        println!(
            "{:<34} {:>9} {:>6} {:>9.2}",
            "  tramontane apply",
            run.apply_requests,
            run.throttled,
            run.applied.as_secs_f64()
        );
        println!(
            "{:<34} {:>9} {:>6} {:>9.2} {:>9.2} {:>6.2}x",
            "    of which writes (apply - read)",
            run.apply_requests.saturating_sub(run.read_requests),
            "",
            writes.as_secs_f64(),
            bound.as_secs_f64(),
            writes.as_secs_f64() / bound.as_secs_f64()
        );
    }
    println!(
        "default flags (concurrency {CONCURRENCY}, no rate limit), latency {} ms; the write bound is the creates, {CONCURRENCY} at a time, one round trip each, or (creates - burst) / limit under the limit",
        LATENCY.as_millis()
    );
}

/// What one plan and one apply of the whole policy took, on a fresh organization.
struct Measured {
    read: Duration,
    read_requests: usize,
    applied: Duration,
    apply_requests: usize,
    throttled: u64,
}

fn apply(binary: &std::path::Path, limit: Option<ServerLimit>) -> Measured {
    let (org, policy) = org_and_policy();
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("policies")).unwrap();
    std::fs::write(dir.path().join("policies/org.yaml"), policy).unwrap();
    let fake = FakeApi::start(org, "bench-admin-key", LATENCY, TODAY);
    fake.set_server_limit(limit);

    // The read alone, to separate it from the writes.
    let read = run(binary, dir.path(), &fake.url, &["plan"]);
    let read_requests = fake.requests() as usize;
    let read_throttled = fake.throttled();
    let applied = run(binary, dir.path(), &fake.url, &["apply", "--auto-approve"]);
    let apply_requests = fake.requests() as usize - read_requests;
    let creates = WORKSPACES * KEYS_PER_WORKSPACE;
    assert_eq!(
        fake.org().keys.len(),
        creates,
        "every key created exactly once"
    );
    assert_eq!(
        walk(&dir.path().join("secrets")),
        creates,
        "every secret delivered"
    );
    Measured {
        read,
        read_requests,
        applied,
        apply_requests,
        throttled: fake.throttled() - read_throttled,
    }
}

fn walk(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|entry| {
                    let path = entry.path();
                    if path.is_dir() { walk(&path) } else { 1 }
                })
                .sum()
        })
        .unwrap_or(0)
}
