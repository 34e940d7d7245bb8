//! Relative paths from another directory: the secrets a policy names and tramontane's state
//! (`.tramontane/`) land in the policy repository, the files given for one command (`--out`,
//! a plan file, `sandbox:PATH`) beside the shell.

use std::path::Path;

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
    let elsewhere = env.path().join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    let org = ["--org", "sandbox:demo", "--policies", "../policies"];

    let planned = env
        .test()
        .current_dir(&elsewhere)
        .args([&["plan", "--out", "plan.json"][..], &org].concat())
        .run();
    assert_eq!(planned.code, 0, "{}{}", planned.stdout, planned.stderr);
    assert!(env.path().join(".tramontane/sandbox/demo.json").exists());

    let applied = env
        .test()
        .current_dir(&elsewhere)
        .args([&["apply", "plan.json", "--auto-approve"][..], &org].concat())
        .run();
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
            env.path().join(path).is_file(),
            "{path} is not in the repository"
        );
    }
    assert_eq!(entries(&elsewhere), ["plan.json"]);

    // The next plan from the root sees the same demo org, converged.
    let again = env.test().args(["plan", "--org", "sandbox:demo"]).run();
    assert!(
        again.stdout.contains("Plan: 0 to create"),
        "{}",
        again.stdout
    );
}

#[test]
fn in_git_state_and_secrets_land_at_the_work_tree_root() {
    let env = env();
    git2::Repository::init(env.path()).unwrap();
    let infra = env.path().join("infra");
    std::fs::create_dir(&infra).unwrap();
    std::fs::rename(env.path().join("policies"), infra.join("policies")).unwrap();
    let deeper = infra.join("deeper");
    std::fs::create_dir(&deeper).unwrap();

    let applied = env
        .test()
        .current_dir(&deeper)
        .args([
            "apply",
            "--org",
            "sandbox:org.json",
            "--policies",
            "../policies",
            "--audit-log",
            "logs/audit.jsonl",
            "--auto-approve",
        ])
        .run();
    assert_eq!(applied.code, 0, "{}{}", applied.stdout, applied.stderr);
    for path in [
        "secrets/prod-workspace/ci-deploy.key",
        "secrets/ml-workspace/eval-harness.key",
        "logs/audit.jsonl",
        ".tramontane/journal.jsonl",
    ] {
        assert!(
            env.path().join(path).is_file(),
            "{path} is not at the work tree's root"
        );
    }
    // The sandbox is the file named on the command line, beside the shell.
    assert_eq!(entries(&deeper), ["org.json"]);
    assert_eq!(entries(&infra), ["deeper", "policies"]);
}

/// Commits everything in the work tree at `root`, as a user's `git add -A && git commit`.
fn commit_all(repo: &git2::Repository, message: &str) {
    let mut index = repo.index().unwrap();
    index
        .add_all(["*"], git2::IndexAddOption::DEFAULT, None)
        .unwrap();
    index.write().unwrap();
    let tree = repo.find_tree(index.write_tree().unwrap()).unwrap();
    let signature = git2::Signature::now("Test", "test@acme.example").unwrap();
    let parent = repo.head().ok().and_then(|head| head.peel_to_commit().ok());
    let parents: Vec<&git2::Commit> = parent.iter().collect();
    repo.commit(
        Some("HEAD"),
        &signature,
        &signature,
        message,
        &tree,
        &parents,
    )
    .unwrap();
}

#[test]
fn a_plan_made_in_one_directory_applies_from_another_after_an_unrelated_commit() {
    let env = env();
    let repo = git2::Repository::init(env.path()).unwrap();
    commit_all(&repo, "policies");
    let elsewhere = env.path().join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();

    let planned = env
        .test()
        .args(["plan", "--org", "sandbox:demo", "--out", "plan.json"])
        .run();
    assert_eq!(planned.code, 0, "{}{}", planned.stdout, planned.stderr);
    // HEAD moves without touching the policies, as committing a README (or the plan) does.
    env.write("README.md", "# policies\n");
    commit_all(&repo, "readme");

    let applied = env
        .test()
        .current_dir(&elsewhere)
        .args([
            "apply",
            "../plan.json",
            "--org",
            "sandbox:demo",
            "--policies",
            "../policies",
            "--auto-approve",
        ])
        .run();
    assert_eq!(applied.code, 0, "{}{}", applied.stdout, applied.stderr);
    assert!(
        applied.stderr.contains("with the same content"),
        "{}",
        applied.stderr
    );
}

#[test]
fn a_plan_is_still_refused_once_a_policy_changes_naming_what_changed() {
    let env = env();
    let elsewhere = env.path().join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    let planned = env
        .test()
        .args(["plan", "--org", "sandbox:demo", "--out", "plan.json"])
        .run();
    assert_eq!(planned.code, 0, "{}{}", planned.stdout, planned.stderr);

    let ml = env.path().join("policies/workspaces/ml.yaml");
    let text = std::fs::read_to_string(&ml).unwrap();
    let edited = text.replace("spend_limit: 500", "spend_limit: 750");
    assert_ne!(text, edited);
    std::fs::write(&ml, edited).unwrap();

    let applied = env
        .test()
        .current_dir(&elsewhere)
        .args([
            "apply",
            "../plan.json",
            "--org",
            "sandbox:demo",
            "--policies",
            "../policies",
            "--auto-approve",
        ])
        .run();
    assert_eq!(applied.code, 1, "{}{}", applied.stdout, applied.stderr);
    insta::assert_snapshot!(applied.stderr);
    assert!(!env.path().join("secrets").exists(), "nothing was applied");
}
