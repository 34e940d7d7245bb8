//! `tramontane init`: from an empty directory to an applied sandbox with no other step, and
//! nothing secret left for git to pick up.

use std::path::Path;
use std::process::Command;

use crate::common::TestEnv;

fn git(dir: &Path, args: &[&str]) -> String {
    let output = Command::new("git")
        .current_dir(dir)
        .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
        .args(args)
        .env_remove("GIT_DIR")
        .env_remove("GIT_WORK_TREE")
        .output()
        .expect("git runs");
    assert!(
        output.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

#[test]
fn init_then_validate_plan_apply_works_and_leaves_no_secret_for_git() {
    let env = TestEnv::new();
    let init = env.run(&["init"]);
    assert_eq!(init.code, 0, "{}{}", init.stdout, init.stderr);
    insta::assert_snapshot!(init.stdout);
    // A repository from the start, as a policy repository is: apply checks its ignore rules.
    git(env.root(), &["init", "-q"]);

    let validated = env.run(&["validate"]);
    assert_eq!(
        validated.code, 0,
        "{}{}",
        validated.stdout, validated.stderr
    );
    let planned = env.run(&["plan", "--org", "sandbox:org.json", "--detailed-exitcode"]);
    assert_eq!(planned.code, 2, "{}{}", planned.stdout, planned.stderr);
    assert!(
        planned.stdout.contains("Plan: 3 to create"),
        "{}",
        planned.stdout
    );
    let applied = env.run(&["apply", "--org", "sandbox:org.json", "--auto-approve"]);
    assert_eq!(applied.code, 0, "{}{}", applied.stdout, applied.stderr);
    let secret_file = env.root().join("secrets/starter/starter-key.key");
    assert!(secret_file.is_file());
    assert!(
        !applied.stderr.contains("warning:"),
        "the starter's own sink is ignored: {}",
        applied.stderr
    );

    let converged = env.run(&["plan", "--org", "sandbox:org.json", "--detailed-exitcode"]);
    assert_eq!(
        converged.code, 0,
        "{}{}",
        converged.stdout, converged.stderr
    );

    git(env.root(), &["add", "-A"]);
    let status = git(env.root(), &["status", "--porcelain", "--ignored"]);
    let ignored: Vec<&str> = status
        .lines()
        .filter_map(|line| line.strip_prefix("!! "))
        .collect();
    assert_eq!(ignored, [".tramontane/", "secrets/"], "{status}");
    let tracked = git(env.root(), &["ls-files"]);
    let secret = std::fs::read_to_string(&secret_file).unwrap();
    for path in tracked.lines() {
        assert!(!path.starts_with("secrets/") && !path.starts_with(".tramontane/"));
        let content = std::fs::read_to_string(env.root().join(path)).unwrap();
        assert!(!content.contains(secret.trim()), "{path} holds the secret");
    }
    // The editor schema association points at a file the repository tracks.
    let settings = std::fs::read_to_string(env.root().join(".vscode/settings.json")).unwrap();
    assert!(settings.contains("\"./schema/policy.schema.json\": \"policies/**/*.yaml\""));
    assert!(
        tracked
            .lines()
            .any(|path| path == "schema/policy.schema.json")
    );
}

#[test]
fn init_refuses_to_overwrite_existing_policies() {
    let env = TestEnv::new();
    let first = env.run(&["init", "repo", "--admin", "ops@acme.example"]);
    assert_eq!(first.code, 0, "{}{}", first.stdout, first.stderr);
    let members = env.root().join("repo/policies/members.yaml");
    assert!(
        std::fs::read_to_string(&members).unwrap().contains(
            "ops@acme.example: { name: Organization Admin, roles: [organization_admin] }"
        )
    );
    std::fs::write(&members, "edited").unwrap();

    let second = env.run(&["init", "repo"]);
    assert_eq!(second.code, 1, "{}{}", second.stdout, second.stderr);
    assert!(
        second.stderr.contains("already exists"),
        "{}",
        second.stderr
    );
    assert_eq!(second.stdout, "");
    assert_eq!(std::fs::read_to_string(&members).unwrap(), "edited");
}

#[test]
fn apply_warns_about_a_secret_file_git_would_commit() {
    let env = TestEnv::new();
    let init = env.run(&["init"]);
    assert_eq!(init.code, 0, "{}{}", init.stdout, init.stderr);
    // A repository whose .gitignore lacks the secrets/ line.
    std::fs::write(env.root().join(".gitignore"), ".tramontane/\n").unwrap();
    git(env.root(), &["init", "-q"]);

    let applied = env.run(&["apply", "--org", "sandbox:org.json", "--auto-approve"]);
    assert_eq!(applied.code, 0, "{}{}", applied.stdout, applied.stderr);
    let warnings: Vec<&str> = applied
        .stderr
        .lines()
        .filter(|line| line.starts_with("warning:"))
        .collect();
    assert_eq!(
        warnings,
        [
            "warning: the secret file `secrets/starter/starter-key.key` is inside a git work tree and not ignored; add `secrets/` to .gitignore so it is never committed"
        ],
        "{}",
        applied.stderr
    );

    // Once ignored, the warning goes.
    std::fs::write(env.root().join(".gitignore"), ".tramontane/\nsecrets/\n").unwrap();
    let again = env.run(&["apply", "--org", "sandbox:org.json", "--auto-approve"]);
    assert_eq!(again.code, 0, "{}{}", again.stdout, again.stderr);
    assert!(!again.stderr.contains("warning:"), "{}", again.stderr);
}

#[test]
fn init_in_an_existing_repository_keeps_its_files_and_completes_its_gitignore() {
    let env = TestEnv::new();
    env.write("README.md", "ours\n")
        .write(".gitignore", "target/\nsecrets/");
    let init = env.run(&["init"]);
    assert_eq!(init.code, 0, "{}{}", init.stdout, init.stderr);
    assert!(
        init.stdout.contains("  README.md (exists, kept as it was)"),
        "{}",
        init.stdout
    );
    assert_eq!(
        std::fs::read_to_string(env.root().join("README.md")).unwrap(),
        "ours\n"
    );
    let gitignore = std::fs::read_to_string(env.root().join(".gitignore")).unwrap();
    let lines: Vec<&str> = gitignore
        .lines()
        .filter(|line| !line.starts_with('#'))
        .collect();
    assert_eq!(
        lines,
        ["target/", "secrets/", ".tramontane/", "plan.json", ".env*"]
    );
}

#[test]
fn init_from_org_imports_the_live_org_and_writes_the_same_scaffold() {
    let env = TestEnv::new();
    let starter = env.run(&["init", "starter"]);
    assert_eq!(starter.code, 0, "{}{}", starter.stdout, starter.stderr);
    let imported = env.run(&["init", "repo", "--from-org", "sandbox:demo"]);
    assert_eq!(imported.code, 0, "{}{}", imported.stdout, imported.stderr);
    assert!(
        imported
            .stdout
            .contains("policies/ (imported from sandbox:demo: 10 members, 3 workspaces, 3 teams)"),
        "{}",
        imported.stdout
    );
    let repo = env.root().join("repo");
    assert!(
        !repo.join("policies/workspaces/starter.yaml").exists(),
        "the starter is not written beside an import"
    );
    // Everything but the policies is what a plain `init` writes, byte for byte.
    for file in [
        ".gitignore",
        "README.md",
        "schema/policy.schema.json",
        ".vscode/settings.json",
        ".github/workflows/plan.yml",
        ".github/workflows/apply.yml",
        ".github/workflows/drift.yml",
    ] {
        assert_eq!(
            std::fs::read_to_string(repo.join(file)).unwrap(),
            std::fs::read_to_string(env.root().join("starter").join(file)).unwrap(),
            "{file}"
        );
    }
    // The modelines point at the schema init wrote.
    let organization = std::fs::read_to_string(repo.join("policies/organization.yaml")).unwrap();
    assert!(
        organization.starts_with("# yaml-language-server: $schema=../schema/policy.schema.json\n"),
        "{organization}"
    );

    let validated = env.run(&["validate", "--policies", "repo/policies"]);
    assert_eq!(
        validated.code, 0,
        "{}{}",
        validated.stdout, validated.stderr
    );
    let planned = env.run(&[
        "plan",
        "--org",
        "sandbox:demo",
        "--policies",
        "repo/policies",
        "--format",
        "json",
    ]);
    assert_eq!(planned.code, 0, "{}{}", planned.stdout, planned.stderr);
    let plan: serde_json::Value = serde_json::from_str(&planned.stdout).unwrap();
    for change in ["create", "update", "delete", "replace", "rotate"] {
        assert_eq!(plan["summary"][change], 0, "{change}: {}", plan["summary"]);
    }
}

#[test]
fn init_from_mistral_without_an_admin_key_fails_and_writes_nothing() {
    let env = TestEnv::new();
    let run = env.run(&["init", "repo", "--from-org", "mistral"]);
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stderr
            .contains("needs an admin API key in MISTRAL_ADMIN_API_KEY"),
        "{}",
        run.stderr
    );
    assert!(!env.root().join("repo").exists(), "nothing is written");
}

#[test]
fn init_reads_no_organization_from_the_environment() {
    // TRAMONTANE_ORG names the org for plan and apply; it must not turn init into an import.
    let env = TestEnv::new();
    let run = crate::common::command(env.root())
        .args(["init", "repo"])
        .env("TRAMONTANE_ORG", "mistral")
        .output()
        .unwrap();
    assert!(run.status.success(), "{run:?}");
    assert!(
        env.root()
            .join("repo/policies/workspaces/starter.yaml")
            .is_file()
    );
}
