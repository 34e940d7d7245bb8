//! Relative paths from another directory: the secrets a policy names and tramontane's state
//! (`.tramontane/`) land in the policy repository, the files given for one command (`--out`,
//! a plan file, `sandbox:PATH`) beside the shell.

use std::path::Path;

use crate::common::run_in;
use crate::test_sandbox::env;

/// The names in `dir`, sorted.
fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn outside_git_state_and_secrets_land_beside_the_policies() {
    let env = env();
    let elsewhere = env.root().join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    let org = ["--org", "sandbox:demo", "--policies", "../policies"];

    let planned = run_in(
        &elsewhere,
        &[&["plan", "--out", "plan.json"][..], &org].concat(),
    );
    assert_eq!(planned.code, 0, "{}{}", planned.stdout, planned.stderr);
    assert!(env.root().join(".tramontane/sandbox/demo.json").exists());

    let applied = run_in(
        &elsewhere,
        &[&["apply", "plan.json", "--auto-approve"][..], &org].concat(),
    );
    assert_eq!(applied.code, 0, "{}{}", applied.stdout, applied.stderr);
    // Said as the policy wrote it, written under the repository.
    assert!(
        applied
            .stdout
            .contains("new secret delivered to file secrets/prod-workspace/ci-deploy.key"),
        "{}",
        applied.stdout
    );
    for path in [
        "secrets/prod-workspace/ci-deploy.key",
        "secrets/dev-workspace/ide-completion.key",
        ".tramontane/audit.jsonl",
        ".tramontane/journal.jsonl",
    ] {
        assert!(
            env.root().join(path).is_file(),
            "{path} is not in the repository"
        );
    }
    assert_eq!(entries(&elsewhere), ["plan.json"]);

    // The next plan from the root sees the same demo org, converged.
    let again = crate::common::run_in(env.root(), &["plan", "--org", "sandbox:demo"]);
    assert!(
        again.stdout.contains("Plan: 0 to create"),
        "{}",
        again.stdout
    );
}

#[test]
fn in_git_state_and_secrets_land_at_the_work_tree_root() {
    let env = env();
    git2::Repository::init(env.root()).unwrap();
    let infra = env.root().join("infra");
    std::fs::create_dir(&infra).unwrap();
    std::fs::rename(env.root().join("policies"), infra.join("policies")).unwrap();
    let deeper = infra.join("deeper");
    std::fs::create_dir(&deeper).unwrap();

    let applied = run_in(
        &deeper,
        &[
            "apply",
            "--org",
            "sandbox:org.json",
            "--policies",
            "../policies",
            "--audit-log",
            "logs/audit.jsonl",
            "--auto-approve",
        ],
    );
    assert_eq!(applied.code, 0, "{}{}", applied.stdout, applied.stderr);
    for path in [
        "secrets/prod-workspace/ci-deploy.key",
        "secrets/ml-workspace/eval-harness.key",
        "logs/audit.jsonl",
        ".tramontane/journal.jsonl",
    ] {
        assert!(
            env.root().join(path).is_file(),
            "{path} is not at the work tree's root"
        );
    }
    // The sandbox is the file named on the command line, beside the shell.
    assert_eq!(entries(&deeper), ["org.json"]);
    assert_eq!(entries(&infra), ["deeper", "policies"]);
}
