//! `plan`, `show` and `import` against the sandbox, and the convergence property: a plan
//! applied to the sandbox leaves nothing but manual steps.

use std::path::Path;

use proptest::prelude::*;
use tramontane::apply::{ApplyOptions, apply};
use tramontane::model::{DesiredOrg, SecretSink};
use tramontane::plan::{self, Action, PlanInput, PolicyRef};
use tramontane::provider::Provider;
use tramontane::provider::sandbox::{SandboxOrg, SandboxProvider};

use crate::common::{TODAY, TestEnv};

/// A scratch directory holding a copy of the example policies, outside any git repository.
#[test]
fn the_demo_plan_for_people() {
    let env = TestEnv::with_example_policies();
    let run = env.run(&["plan", "--org", "sandbox:demo"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stderr.is_empty(), "{}", run.stderr);
    insta::assert_snapshot!(run.stdout);
}

#[test]
fn the_demo_plan_as_a_pull_request_comment() {
    let env = TestEnv::with_example_policies();
    let run = env.run(&["plan", "--org", "sandbox:demo", "--format", "markdown"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.starts_with("<!-- tramontane:plan -->\n"));
    insta::assert_snapshot!(run.stdout);
}

#[test]
fn the_demo_plan_as_json() {
    let env = TestEnv::with_example_policies();
    let run = env.run(&["plan", "--org", "sandbox:demo", "--format", "json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let plan: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(plan["format_version"], "1");
    assert_eq!(plan["policy"]["commit"], serde_json::Value::Null);
    assert!(
        plan["live"]["fingerprint"]
            .as_str()
            .unwrap()
            .starts_with("sha256:")
    );
    insta::assert_snapshot!(run.stdout);
}

#[test]
fn no_organization_is_an_error_naming_both_choices() {
    let env = TestEnv::with_example_policies();
    let run = env.run(&["plan"]);
    assert_eq!(run.code, 1);
    assert!(run.stdout.is_empty());
    insta::assert_snapshot!(run.stderr, @r"
    error: no organization chosen
    help: pass `--org mistral` for the live org (with MISTRAL_ADMIN_API_KEY set), or `--org sandbox:demo` to try tramontane on a demo org
    ");
    let run = env.run(&["plan", "--org", "staging"]);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains("`staging` is not an organization"),
        "{}",
        run.stderr
    );
}

#[test]
fn detailed_exit_code_says_whether_there_are_changes() {
    let env = TestEnv::with_example_policies();
    let run = env.run(&["plan", "--org", "sandbox:demo", "--detailed-exitcode"]);
    assert_eq!(run.code, 2);
}

#[test]
fn invalid_policies_are_reported_before_any_org_is_read() {
    let env = TestEnv::with_example_policies();
    env.write("policies/broken.yaml", "version: 1\nmembers: [\n");
    let run = env.run(&["plan", "--org", "sandbox:demo"]);
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("broken.yaml:"), "{}", run.stderr);
    assert!(!env.root().join(".tramontane").exists(), "the org was read");
}

#[test]
fn a_saved_plan_shows_the_same_in_every_format() {
    let env = TestEnv::with_example_policies();
    let human = env.run(&["plan", "--org", "sandbox:demo", "--out", "plan.json"]);
    assert_eq!(human.code, 0);
    let shown = env.run(&["show", "plan.json"]);
    assert_eq!(shown.code, 0);
    assert_eq!(shown.stdout, human.stdout);
    let markdown = env.run(&["plan", "--org", "sandbox:demo", "--format", "markdown"]);
    assert_eq!(
        env.run(&["show", "plan.json", "--format", "markdown"])
            .stdout,
        markdown.stdout
    );

    env.write("not-a-plan.json", "{\"format_version\": \"1\"}");
    let bad = env.run(&["show", "not-a-plan.json"]);
    assert_eq!(bad.code, 1);
    assert!(
        bad.stderr
            .contains("not-a-plan.json is not a tramontane plan"),
        "{}",
        bad.stderr
    );
}

#[test]
fn import_then_plan_is_empty() {
    let env = TestEnv::with_example_policies();
    let run = env.run(&["import", "--org", "sandbox:demo", "--out", "imported"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let validate = env.run(&["validate", "--policies", "imported"]);
    assert_eq!(validate.code, 0, "{}", validate.stdout);
    let plan = env.run(&[
        "plan",
        "--org",
        "sandbox:demo",
        "--policies",
        "imported",
        "--detailed-exitcode",
    ]);
    assert_eq!(plan.code, 0, "{}", plan.stdout);
    assert!(plan.stdout.contains("No changes."), "{}", plan.stdout);
    // Importing over existing policy files is refused, not merged.
    let again = env.run(&["import", "--org", "sandbox:demo", "--out", "imported"]);
    assert_eq!(again.code, 1);
}

fn today() -> jiff::civil::Date {
    TODAY.parse().unwrap()
}

fn noon() -> jiff::Timestamp {
    tramontane::provider::sandbox::noon(today())
        .parse()
        .unwrap()
}

/// Plans `desired` against the sandbox at `path`, applies it, and plans again.
fn converge(desired: &DesiredOrg, path: &Path, root: &Path) -> plan::Plan {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let provider = SandboxProvider::open(path, noon()).unwrap();
        let input = |live| PlanInput {
            desired,
            live,
            now: noon(),
            org: "sandbox".into(),
            policy: PolicyRef::default(),
        };
        let live = provider.read().await.unwrap();
        let first = plan::diff(&input(&live));
        apply(
            &first,
            desired,
            &live,
            &provider,
            &ApplyOptions::new(root.to_owned()),
        )
        .await
        .unwrap_or_else(|error| panic!("apply failed: {error}\n{first:#?}"));
        let live = provider.read().await.unwrap();
        plan::diff(&input(&live))
    })
}

#[test]
fn applying_the_demo_plan_converges() {
    let env = TestEnv::with_example_policies();
    let loaded = tramontane::policy::load(
        &env.root().join("policies"),
        &tramontane::policy::LoadOptions::new(today()),
    );
    assert!(loaded.is_valid());
    let path = env.root().join("demo.json");
    tramontane::provider::sandbox::demo_org(today())
        .save(&path)
        .unwrap();
    let mut desired = loaded.desired.clone();
    for workspace in desired.workspaces.values_mut() {
        for (name, key) in workspace.keys.iter_mut() {
            key.secret = SecretSink::File(format!("secrets/{name}.key"));
        }
    }
    let second = converge(&desired, &path, env.root());
    let left: Vec<_> = second
        .changes
        .iter()
        .filter(|c| c.action != Action::Manual)
        .map(|c| &c.address)
        .collect();
    assert!(left.is_empty(), "left after apply: {left:?}");
    // The secrets went to their sinks, readable by the owner only.
    let secret = env.root().join("secrets/ci-deploy.key");
    let metadata = std::fs::metadata(&secret).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(metadata.permissions().mode() & 0o777, 0o600);
    }
    assert!(metadata.len() > 8);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn any_valid_policy_applied_to_the_sandbox_converges(mut desired in crate::test_roundtrip::org()) {
        let admins = desired.members.values().filter(|m| m.is_admin()).count();
        prop_assume!(admins > 0 || !desired.organization.prune.members);
        for workspace in desired.workspaces.values_mut() {
            for (name, key) in workspace.keys.iter_mut() {
                key.secret = SecretSink::File(format!("secrets/{name}.key"));
            }
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("org.json");
        SandboxOrg::new("root@sandbox.example", "Sandbox Root", "2026-01-01T00:00:00Z").save(&path).unwrap();
        let second = converge(&desired, &path, dir.path());
        let left: Vec<_> = second.changes.iter().filter(|c| c.action != Action::Manual).map(|c| (&c.address, &c.reason)).collect();
        prop_assert!(left.is_empty(), "left after apply: {:?}", left);
    }
}

#[test]
fn a_plan_names_the_policy_commit_and_whether_the_tree_is_dirty() {
    let env = TestEnv::with_example_policies();
    let repo = git2::Repository::init(env.root()).unwrap();
    let mut index = repo.index().unwrap();
    index
        .add_all(["policies"], git2::IndexAddOption::DEFAULT, None)
        .unwrap();
    index.write().unwrap();
    let tree = repo.find_tree(index.write_tree().unwrap()).unwrap();
    let signature = git2::Signature::now("Test", "test@example.com").unwrap();
    let commit = repo
        .commit(Some("HEAD"), &signature, &signature, "policies", &tree, &[])
        .unwrap();

    let clean: serde_json::Value = serde_json::from_str(
        &env.run(&["plan", "--org", "sandbox:demo", "--format", "json"])
            .stdout,
    )
    .unwrap();
    assert_eq!(clean["policy"]["commit"], commit.to_string());
    assert_eq!(clean["policy"]["dirty"], false);

    env.write("policies/teams.yaml", "version: 1\n");
    let dirty: serde_json::Value = serde_json::from_str(
        &env.run(&["plan", "--org", "sandbox:demo", "--format", "json"])
            .stdout,
    )
    .unwrap();
    assert_eq!(dirty["policy"]["dirty"], true);
    assert_ne!(dirty["policy"]["digest"], clean["policy"]["digest"]);
}
