//! `tramontane init`: from an empty directory to an applied sandbox with no other step, and
//! nothing secret left for git to pick up.

use tramontane_testkit::TestDir;

#[test]
fn init_then_validate_plan_apply_works_and_leaves_no_secret_for_git() {
    let env = TestDir::new();
    let init = env.test().arg("init").expect_code(0).run();
    insta::assert_snapshot!(init.stdout);
    // A repository from the start, as a policy repository is: apply checks its ignore rules.
    env.git(&["init", "-q"]);

    env.test().arg("validate").expect_code(0).run();
    let planned = env
        .test()
        .args([
            "plan",
            "--org",
            "sandbox:.tramontane/org.json",
            "--detailed-exitcode",
        ])
        .expect_code(2)
        .run();
    assert!(
        planned.stdout.contains("Plan: 3 to create"),
        "{}",
        planned.stdout
    );
    let applied = env
        .test()
        .args([
            "apply",
            "--org",
            "sandbox:.tramontane/org.json",
            "--auto-approve",
        ])
        .expect_code(0)
        .run();
    let secret_file = env.path().join("secrets/starter/starter-key.key");
    assert!(secret_file.is_file());
    assert!(
        !applied.stderr.contains("warning:"),
        "the starter's own sink is ignored: {}",
        applied.stderr
    );

    env.test()
        .args([
            "plan",
            "--org",
            "sandbox:.tramontane/org.json",
            "--detailed-exitcode",
        ])
        .expect_code(0)
        .run();

    env.git(&["add", "-A"]);
    let status = env.git(&["status", "--porcelain", "--ignored"]);
    let ignored: Vec<&str> = status
        .lines()
        .filter_map(|line| line.strip_prefix("!! "))
        .collect();
    assert_eq!(ignored, [".tramontane/", "secrets/"], "{status}");
    let tracked = env.git(&["ls-files"]);
    let secret = std::fs::read_to_string(&secret_file).unwrap();
    for path in tracked.lines() {
        assert!(!path.starts_with("secrets/") && !path.starts_with(".tramontane/"));
        let content = std::fs::read_to_string(env.path().join(path)).unwrap();
        assert!(!content.contains(secret.trim()), "{path} holds the secret");
    }
    // The editor schema association points at a file the repository tracks.
    let settings = std::fs::read_to_string(env.path().join(".vscode/settings.json")).unwrap();
    assert!(settings.contains("\"./schema/policy.schema.json\": \"policies/**/*.yaml\""));
    assert!(
        tracked
            .lines()
            .any(|path| path == "schema/policy.schema.json")
    );
}

/// The starter takes a member's gateway key as written: its workspace names the key the
/// gateway forwards members' requests with (else `issue` stops at E047).
#[test]
fn the_starter_takes_a_gateway_key_without_an_edit() {
    let env = TestDir::new();
    env.test().arg("init").expect_code(0).run();
    let issued = env
        .test()
        .args([
            "gateway",
            "issue",
            "--member",
            "admin@example.com",
            "--workspace",
            "starter",
            "--sink",
            "file:secrets/admin.key",
        ])
        .run();
    assert_eq!(issued.code, 0, "{}{}", issued.stdout, issued.stderr);
    assert!(
        env.read("policies/gateway-keys.yaml")
            .contains("holder: admin@example.com")
    );
    env.test().arg("validate").expect_code(0).run();
}

#[test]
fn init_refuses_to_overwrite_existing_policies() {
    let env = TestDir::new();
    env.test()
        .args(["init", "repo", "--admin", "ops@acme.example"])
        .expect_code(0)
        .run();
    let members = env.path().join("repo/policies/members.yaml");
    assert!(
        std::fs::read_to_string(&members).unwrap().contains(
            "ops@acme.example: { name: Organization Admin, roles: [organization_admin] }"
        )
    );
    std::fs::write(&members, "edited").unwrap();

    let second = env.test().args(["init", "repo"]).expect_code(1).run();
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
    let env = TestDir::new();
    env.test().arg("init").expect_code(0).run();
    // A repository whose .gitignore lacks the secrets/ line.
    std::fs::write(env.path().join(".gitignore"), ".tramontane/\n").unwrap();
    env.git(&["init", "-q"]);

    let applied = env
        .test()
        .args([
            "apply",
            "--org",
            "sandbox:.tramontane/org.json",
            "--auto-approve",
        ])
        .expect_code(0)
        .run();
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
    std::fs::write(env.path().join(".gitignore"), ".tramontane/\nsecrets/\n").unwrap();
    let again = env
        .test()
        .args([
            "apply",
            "--org",
            "sandbox:.tramontane/org.json",
            "--auto-approve",
        ])
        .expect_code(0)
        .run();
    assert!(!again.stderr.contains("warning:"), "{}", again.stderr);
}

#[test]
fn init_in_an_existing_repository_keeps_its_files_and_completes_its_gitignore() {
    let env = TestDir::new();
    env.write("README.md", "ours\n")
        .write(".gitignore", "target/\nsecrets/");
    let init = env.test().arg("init").expect_code(0).run();
    assert!(
        init.stdout.contains("  README.md (exists, kept as it was)"),
        "{}",
        init.stdout
    );
    assert_eq!(
        std::fs::read_to_string(env.path().join("README.md")).unwrap(),
        "ours\n"
    );
    let gitignore = std::fs::read_to_string(env.path().join(".gitignore")).unwrap();
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
    let env = TestDir::new();
    env.test().args(["init", "starter"]).expect_code(0).run();
    let imported = env
        .test()
        .args(["init", "repo", "--from-org", "sandbox:demo"])
        .expect_code(0)
        .run();
    assert!(
        imported
            .stdout
            .contains("policies/ (imported from sandbox:demo: 10 members, 3 workspaces, 3 teams)"),
        "{}",
        imported.stdout
    );
    let repo = env.path().join("repo");
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
            std::fs::read_to_string(env.path().join("starter").join(file)).unwrap(),
            "{file}"
        );
    }
    // The modelines point at the schema init wrote.
    let organization = std::fs::read_to_string(repo.join("policies/organization.yaml")).unwrap();
    assert!(
        organization.starts_with("# yaml-language-server: $schema=../schema/policy.schema.json\n"),
        "{organization}"
    );

    env.test()
        .args(["validate", "--policies", "repo/policies"])
        .expect_code(0)
        .run();
    let planned = env
        .test()
        .args([
            "plan",
            "--org",
            "sandbox:demo",
            "--policies",
            "repo/policies",
            "--format",
            "json",
        ])
        .expect_code(0)
        .run();
    let plan: serde_json::Value = serde_json::from_str(&planned.stdout).unwrap();
    for change in ["create", "update", "delete", "replace", "rotate"] {
        assert_eq!(plan["summary"][change], 0, "{change}: {}", plan["summary"]);
    }
}

#[test]
fn init_from_mistral_without_an_admin_key_fails_and_writes_nothing() {
    let env = TestDir::new();
    let run = env
        .test()
        .args(["init", "repo", "--from-org", "mistral"])
        .expect_code(1)
        .run();
    assert!(
        run.stderr
            .contains("needs an admin API key in MISTRAL_ADMIN_API_KEY"),
        "{}",
        run.stderr
    );
    assert!(!env.path().join("repo").exists(), "nothing is written");
}

#[test]
fn init_reads_no_organization_from_the_environment() {
    // TRAMONTANE_ORG names the org for plan and apply; it must not turn init into an import.
    let env = TestDir::new();
    env.test()
        .args(["init", "repo"])
        .env("TRAMONTANE_ORG", "mistral")
        .expect_code(0)
        .run();
    assert!(
        env.path()
            .join("repo/policies/workspaces/starter.yaml")
            .is_file()
    );
}

/// A committed `.gitignore` or `.github` that is a symbolic link would have init write
/// outside the repository: refused, with nothing written anywhere.
#[cfg(unix)]
#[test]
fn init_writes_through_no_symbolic_link() {
    for link in [".gitignore", ".github"] {
        let outside = TestDir::new();
        let env = TestDir::new();
        let target = outside.path().join("target");
        if link == ".gitignore" {
            std::fs::write(&target, "keep\n").unwrap();
        } else {
            std::fs::create_dir(&target).unwrap();
        }
        std::os::unix::fs::symlink(&target, env.path().join(link)).unwrap();
        let run = env.test().arg("init").expect_code(1).run();
        assert!(
            run.stderr.contains("is a symbolic link") && run.stderr.contains("help: "),
            "{link}: {}",
            run.stderr
        );
        assert!(!env.path().join("policies").exists(), "{link}");
        if link == ".gitignore" {
            assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep\n");
        } else {
            assert_eq!(std::fs::read_dir(&target).unwrap().count(), 0);
        }
    }
}
