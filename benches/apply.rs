//! Benchmark: `tramontane apply --org mistral` creating 1,000 keys across 100 workspaces in
//! the fake Admin API, with 50 ms of latency on every request. Reports requests and wall
//! time beside the bound the concurrency sets: the creates, `--concurrency` at a time, each
//! one round trip, after the organization has been read.
//!
//! Run with `cargo bench --bench apply` (it builds and times the release binary).

#[path = "../tests/common/fake_api.rs"]
mod fake_api;

use std::fmt::Write;
use std::process::Command;
use std::time::{Duration, Instant};

use tramontane::provider::sandbox::SandboxOrg;
use tramontane::provider::{Operation, Outcome};

const WORKSPACES: usize = 100;
const KEYS_PER_WORKSPACE: usize = 10;
const LATENCY: Duration = Duration::from_millis(50);
const CONCURRENCY: usize = 8;
const RATE_LIMIT: u32 = 1_000;
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
        .args(["--concurrency", &CONCURRENCY.to_string()])
        .args(["--rate-limit", &RATE_LIMIT.to_string()])
        .current_dir(dir)
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
    let status = Command::new(env!("CARGO"))
        .args(["build", "--release", "--quiet", "--bin", "tramontane"])
        .status()
        .unwrap();
    assert!(status.success());
    let binary = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/release/tramontane");

    let (org, policy) = org_and_policy();
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("policies")).unwrap();
    std::fs::write(dir.path().join("policies/org.yaml"), policy).unwrap();
    let fake = fake_api::FakeApi::start(org, "bench-admin-key", LATENCY, TODAY);

    // The read alone, to separate it from the writes.
    let read = run(&binary, dir.path(), &fake.url, &["plan"]);
    let read_requests = fake.requests() as usize;
    let applied = run(&binary, dir.path(), &fake.url, &["apply", "--auto-approve"]);
    let apply_requests = fake.requests() as usize - read_requests;
    let creates = WORKSPACES * KEYS_PER_WORKSPACE;
    let keys = fake.org().keys.len();
    assert_eq!(keys, creates, "every key created exactly once");
    let delivered = walk(&dir.path().join("secrets"));
    assert_eq!(delivered, creates, "every secret delivered");

    let write_bound = LATENCY.mul_f64(creates.div_ceil(CONCURRENCY) as f64);
    let writes = applied.saturating_sub(read);
    println!("apply: {creates} keys across {WORKSPACES} workspaces, {delivered} secrets delivered");
    println!("{:<30} {:>10} {:>10}", "", "requests", "wall (s)");
    println!(
        "{:<30} {:>10} {:>10.2}",
        "read (tramontane plan)",
        read_requests,
        read.as_secs_f64()
    );
    println!(
        "{:<30} {:>10} {:>10.2}",
        "tramontane apply",
        apply_requests,
        applied.as_secs_f64()
    );
    println!(
        "{:<30} {:>10} {:>10.2}",
        "  of which writes (apply - read)",
        apply_requests - read_requests,
        writes.as_secs_f64()
    );
    println!(
        "{:<30} {:>10} {:>10.2}",
        "  bound for the writes",
        creates,
        write_bound.as_secs_f64()
    );
    println!(
        "ratio to the bound: {:.2}x (latency {} ms, concurrency {CONCURRENCY}, client rate limit {RATE_LIMIT}/s)",
        writes.as_secs_f64() / write_bound.as_secs_f64(),
        LATENCY.as_millis()
    );
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
