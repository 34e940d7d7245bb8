//! `tramontane apply` on the sandbox demo and against the fake Admin API: from a saved plan
//! to nothing left but manual steps, with secrets in their sinks and nowhere else, through
//! faults, rotations, guards and a second apply holding the lock.

use std::collections::BTreeMap;
use std::time::Duration;

use tramontane::repository::RepositoryRoot;

use tramontane_testkit::fake_api::{Chaos, FakeApi, Fault};
use tramontane_testkit::{Output, Test, TestDir, orgs};

/// The example policies, with two of the file sinks swapped for a shell that writes the
/// secret from stdin to a file, so the command sink runs for real.
fn env() -> TestDir {
    let env = TestDir::with_example_policies();
    let prod = env.path().join("policies/workspaces/prod.yaml");
    let mut text = std::fs::read_to_string(&prod).unwrap();
    for name in ["support-bot", "search-indexer"] {
        text = text.replace(
            &format!("secret: {{ file: secrets/prod-workspace/{name}.key }}"),
            &format!("secret: {{ command: [sh, -c, \"umask 077; cat > piped-{name}.key\"] }}"),
        );
    }
    std::fs::write(prod, text).unwrap();
    env
}

#[test]
fn a_saved_plan_applies_and_converges() {
    let env = env();
    assert_eq!(
        env.run(&["plan", "--org", "sandbox:demo", "--out", "plan.json"])
            .code,
        0
    );

    let unconfirmed = env
        .test()
        .args(["apply", "plan.json", "--org", "sandbox:demo"])
        .expect_code(1)
        .run();
    assert!(
        unconfirmed.stderr.contains("not on a terminal"),
        "{}",
        unconfirmed.stderr
    );

    let applied = env
        .test()
        .args([
            "apply",
            "plan.json",
            "--org",
            "sandbox:demo",
            "--auto-approve",
        ])
        .expect_code(0)
        .run();
    assert!(
        applied
            .stdout
            .contains("Apply complete: 11 changes applied."),
        "{}",
        applied.stdout
    );
    assert!(
        applied.stdout.contains("Left to a person, in the console:"),
        "{}",
        applied.stdout
    );
    insta::assert_snapshot!(applied.stdout);

    // Every new key's secret is in its sink, readable by its owner only, and nowhere else.
    let mut secrets = Vec::new();
    for path in [
        "secrets/prod-workspace/ci-deploy.key",
        "secrets/dev-workspace/ide-completion.key",
        "piped-support-bot.key",
        "piped-search-indexer.key",
    ] {
        let file = env.path().join(path);
        let secret = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{path}: {e}"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                std::fs::metadata(&file).unwrap().permissions().mode() & 0o077,
                0,
                "{path}"
            );
        }
        secrets.push(secret.trim().to_owned());
    }
    let audit = env.read(".tramontane/audit.jsonl");
    assert_eq!(audit.lines().count(), 11);
    // Not in the output, the audit log, the journal, the sandbox or the saved plan.
    for secret in &secrets {
        assert!(secret.len() >= 16);
        applied.assert_no_secret(secret);
    }

    let again = env.run(&["plan", "--org", "sandbox:demo", "--format", "json"]);
    let plan: serde_json::Value = serde_json::from_str(&again.stdout).unwrap();
    let summary = &plan["summary"];
    for action in ["create", "update", "delete", "replace", "rotate"] {
        assert_eq!(summary[action], 0, "{action} left: {summary}");
    }
    assert_eq!(summary["manual"], 2);

    let stale = env
        .test()
        .args([
            "apply",
            "plan.json",
            "--org",
            "sandbox:demo",
            "--auto-approve",
        ])
        .expect_code(1)
        .run();
    assert!(stale.stderr.contains("stale plan"), "{}", stale.stderr);
}

#[test]
fn a_failing_sink_leaves_no_key_behind() {
    let env = env();
    let prod = std::fs::read_to_string(env.path().join("policies/workspaces/prod.yaml")).unwrap();
    env.write(
        "policies/workspaces/prod.yaml",
        prod.replace("umask 077; cat > piped-support-bot.key", "exit 7"),
    );
    let run = env
        .test()
        .args(["apply", "--org", "sandbox:demo", "--auto-approve"])
        .expect_code(1)
        .run();
    assert!(
        run.stdout
            .contains("workspace.prod-workspace.key.support-bot: failed"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("Apply stopped:"), "{}", run.stdout);
    insta::assert_snapshot!(run.stdout.lines().filter(|line| !line.starts_with(' ') && line.contains("key.") && line.contains(": ") || line.starts_with("Apply")).collect::<Vec<_>>().join("\n"), @r"
    +/- workspace.dev-workspace.key.ide-completion: done; new secret delivered to file secrets/dev-workspace/ide-completion.key
    + workspace.prod-workspace.key.ci-deploy: done; new secret delivered to file secrets/prod-workspace/ci-deploy.key
    + workspace.prod-workspace.key.search-indexer: done; new secret delivered to stdin of `sh`
    + workspace.prod-workspace.key.support-bot: failed
    Apply stopped: 10 done, 1 failed, 0 not attempted.
    ");
    assert!(
        run.stderr.contains("it was deleted again"),
        "{}",
        run.stderr
    );
    let org = std::fs::read_to_string(env.path().join(".tramontane/sandbox/demo.json")).unwrap();
    assert!(
        !org.contains("support-bot"),
        "the undelivered key is still there"
    );
}

#[test]
fn an_empty_policy_is_refused_by_a_guard() {
    let env = TestDir::new();
    env.write("policies/empty.yaml", "version: 1\n# nothing yet\n");
    let run = env
        .test()
        .args(["apply", "--org", "sandbox:demo", "--auto-approve"])
        .expect_code(3)
        .run();
    assert!(run.stderr.contains("--allow-empty"), "{}", run.stderr);
    insta::assert_snapshot!(run.stderr);
}

fn run_at(env: &TestDir, now: &str, args: &[&str]) -> Output {
    env.test().now(now).args(args).run()
}

/// The keys of the sandbox demo org named `name`, oldest first, as (created_at, hidden key).
fn sandbox_keys(env: &TestDir, name: &str) -> Vec<(String, String)> {
    let org: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(env.path().join(".tramontane/sandbox/demo.json")).unwrap(),
    )
    .unwrap();
    let mut keys: Vec<(String, String)> = org["keys"]
        .as_object()
        .unwrap()
        .values()
        .filter(|key| key["name"] == name)
        .map(|key| {
            (
                key["created_at"].as_str().unwrap().to_owned(),
                key["hidden_key"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    keys.sort();
    keys
}

#[test]
fn a_rotation_keeps_the_old_key_for_the_overlap_then_deletes_it() {
    let env = env();
    let start = "2026-06-01T12:00:00Z";
    let first = run_at(
        &env,
        start,
        &["apply", "--org", "sandbox:demo", "--auto-approve"],
    );
    assert_eq!(first.code, 0, "{}{}", first.stdout, first.stderr);
    let keys = sandbox_keys(&env, "ide-completion");
    assert_eq!(keys.len(), 2, "the successor is created beside the old key");
    let secret =
        std::fs::read_to_string(env.path().join("secrets/dev-workspace/ide-completion.key"))
            .unwrap();
    let successor = &keys[1];
    assert_eq!(successor.0, start);
    assert!(
        successor.1.starts_with(&secret[..4]),
        "the file holds the successor's secret"
    );

    // Inside the overlap: both keys stay, and the plan says until when.
    let during = run_at(
        &env,
        "2026-06-02T11:59:59Z",
        &["plan", "--org", "sandbox:demo"],
    );
    assert!(
        during.stdout.contains("overlapping: the successor was created 2026-06-01T12:00:00Z; the old key (created 2026-03-13T12:00:00Z) stays valid until 2026-06-02T12:00:00Z"),
        "{}",
        during.stdout
    );
    let nothing = run_at(
        &env,
        "2026-06-02T11:59:59Z",
        &["apply", "--org", "sandbox:demo", "--auto-approve"],
    );
    assert!(
        nothing.stdout.contains("Nothing to apply."),
        "{}",
        nothing.stdout
    );
    assert_eq!(sandbox_keys(&env, "ide-completion").len(), 2);

    // After it: the first apply deletes the predecessor, never the successor.
    let after = "2026-06-02T12:00:00Z";
    let plan = run_at(&env, after, &["plan", "--org", "sandbox:demo"]);
    insta::assert_snapshot!(plan.stdout.lines().filter(|line| line.contains("ide-completion") || line.contains("overlap")).collect::<Vec<_>>().join("\n"), @r#"
    - workspace.dev-workspace.key.ide-completion  delete · platform
        # superseded: its successor was created 2026-06-01T12:00:00Z and the 24-hour overlap ended 2026-06-02T12:00:00Z
        - name: "ide-completion"
      workspace.dev-workspace.key.ide-completion  finishing: the overlap ended 2026-06-02T12:00:00Z, so this plan deletes the old key (created 2026-03-13T12:00:00Z)
    "#);
    let last = run_at(
        &env,
        after,
        &["apply", "--org", "sandbox:demo", "--auto-approve"],
    );
    assert_eq!(last.code, 0, "{}{}", last.stdout, last.stderr);
    assert_eq!(
        sandbox_keys(&env, "ide-completion"),
        vec![successor.clone()]
    );
    let settled = run_at(
        &env,
        after,
        &["plan", "--org", "sandbox:demo", "--format", "json"],
    );
    let settled: serde_json::Value = serde_json::from_str(&settled.stdout).unwrap();
    assert_eq!(settled["summary"]["delete"], 0);
    assert!(
        settled.get("rotations").is_none(),
        "{}",
        settled["rotations"]
    );
}

/// The apply that ends an overlap checks the successor again: one whose secret no longer
/// works keeps its predecessor, with the failure reported, until it does.
#[test]
fn a_rotation_keeps_the_old_key_while_its_successor_fails() {
    let env = env();
    let start = "2026-06-01T12:00:00Z";
    let first = run_at(
        &env,
        start,
        &["apply", "--org", "sandbox:demo", "--auto-approve"],
    );
    assert_eq!(first.code, 0, "{}{}", first.stdout, first.stderr);
    let sink = env.path().join("secrets/dev-workspace/ide-completion.key");
    let secret = std::fs::read_to_string(&sink).unwrap();
    // The successor's secret lost (overwritten by something else) since it was delivered.
    std::fs::write(&sink, "not-the-secret\n").unwrap();

    let after = "2026-06-02T12:00:00Z";
    let failed = run_at(
        &env,
        after,
        &["apply", "--org", "sandbox:demo", "--auto-approve"],
    );
    assert_eq!(failed.code, 1, "{}{}", failed.stdout, failed.stderr);
    assert!(
        failed.stderr.contains("its successor no longer answers")
            && failed.stderr.contains("the old key is kept"),
        "{}",
        failed.stderr
    );
    assert!(
        !failed.stderr.contains("not-the-secret"),
        "{}",
        failed.stderr
    );
    assert_eq!(sandbox_keys(&env, "ide-completion").len(), 2);

    // The secret back where it belongs: the predecessor goes.
    std::fs::write(&sink, &secret).unwrap();
    let last = run_at(
        &env,
        after,
        &["apply", "--org", "sandbox:demo", "--auto-approve"],
    );
    assert_eq!(last.code, 0, "{}{}", last.stdout, last.stderr);
    assert_eq!(sandbox_keys(&env, "ide-completion").len(), 1);
}

/// A successor whose secret went to a command cannot be read back: the apply that ends the
/// overlap checks what it can (the successor exists and has not expired), deletes the
/// predecessor, and says the check was partial.
#[test]
fn a_rotation_through_a_command_sink_says_its_check_was_partial() {
    let env = env();
    let dev = std::fs::read_to_string(env.path().join("policies/workspaces/dev.yaml")).unwrap();
    let piped = dev.replace(
        "secret: { file: secrets/dev-workspace/ide-completion.key }",
        "secret: { command: [sh, -c, \"umask 077; cat > piped-ide.key\"] }",
    );
    assert_ne!(dev, piped);
    env.write("policies/workspaces/dev.yaml", piped);
    let first = run_at(
        &env,
        "2026-06-01T12:00:00Z",
        &["apply", "--org", "sandbox:demo", "--auto-approve"],
    );
    assert_eq!(first.code, 0, "{}{}", first.stdout, first.stderr);
    assert_eq!(sandbox_keys(&env, "ide-completion").len(), 2);
    let last = run_at(
        &env,
        "2026-06-02T12:00:00Z",
        &["apply", "--org", "sandbox:demo", "--auto-approve"],
    );
    assert_eq!(last.code, 0, "{}{}", last.stdout, last.stderr);
    assert!(
        last.stdout
            .contains("was checked only partly: it still exists and has not expired"),
        "{}",
        last.stdout
    );
    assert_eq!(sandbox_keys(&env, "ide-completion").len(), 1);
}

const ADMIN_KEY: &str = "admin-key-that-must-never-print";

/// `tramontane apply --org mistral` against `api`, quick to retry and time out.
fn apply_over_http(env: &TestDir, api: &FakeApi) -> Output {
    over_http(env, api)
        .args(["apply", "--auto-approve"])
        .env("TRAMONTANE_RATE_LIMIT", "1000")
        .env("TRAMONTANE_TIMEOUT", "2")
        .run()
}

/// `tramontane --org mistral` against `api` (the subcommand comes from the caller), with a
/// short first retry; the admin key never shows.
fn over_http(env: &TestDir, api: &FakeApi) -> Test {
    env.test()
        .env("TRAMONTANE_ORG", "mistral")
        .env("TRAMONTANE_BACKOFF_MS", "2")
        .fake_api(api)
}

#[test]
fn apply_converges_through_faults_without_duplicates_or_lost_secrets() {
    let env = env();
    let api = FakeApi::serving(orgs::demo(), ADMIN_KEY);
    // The first create of each kind has its answer lost for sure; the chaos loses more.
    for call in [
        "POST /v1/admin/users",
        "POST /v1/admin/workspaces",
        "POST /v1/admin/user-groups",
        "POST /v1/admin/api-keys",
    ] {
        api.fail_next(call, Fault::Lost);
    }
    api.set_chaos(Some(Chaos {
        seed: 7,
        server_errors: 0.10,
        rate_limited: 0.10,
        lost_writes: 0.10,
    }));
    let mut runs = Vec::new();
    for _ in 0..3 {
        let run = apply_over_http(&env, &api);
        let converged = run.code == 0;
        runs.push(run);
        if converged {
            break;
        }
    }
    let transcript: String = runs
        .iter()
        .map(|run| format!("{}{}", run.stdout, run.stderr))
        .collect();
    assert_eq!(
        runs.last().unwrap().code,
        0,
        "no convergence in 3 runs:\n{transcript}"
    );
    assert!(
        api.lost_writes() >= 4,
        "fewer answers lost than scripted; the test proves less than it says"
    );

    // The organization matches the policy: nothing left but the console's steps.
    api.set_chaos(None);
    let plan = env
        .test()
        .args(["plan", "--org", "mistral", "--format", "json"])
        .fake_api(&api)
        .expect_code(0)
        .run()
        .json();
    for action in ["create", "update", "delete", "replace", "rotate"] {
        assert_eq!(
            plan["summary"][action], 0,
            "{action} left: {}",
            plan["summary"]
        );
    }

    // Zero duplicates: one key per name, but the rotated one beside its predecessor.
    let org = api.org();
    let mut by_name: BTreeMap<String, Vec<&tramontane::provider::sandbox::Key>> = BTreeMap::new();
    for key in org.keys.values() {
        by_name
            .entry(key.name.clone().unwrap_or_default())
            .or_default()
            .push(key);
    }
    let counts: BTreeMap<&str, usize> =
        by_name.iter().map(|(n, k)| (n.as_str(), k.len())).collect();
    assert_eq!(
        counts,
        BTreeMap::from([
            ("ci-deploy", 1),
            ("eval-harness", 1),
            ("ide-completion", 2),
            ("old-notebook", 1),
            ("search-indexer", 1),
            ("support-bot", 1),
        ]),
        "{transcript}"
    );

    // Every secret delivered is the live key's own (its first and last four characters are
    // what the API shows), private to its owner, and printed nowhere.
    let audit = std::fs::read_to_string(env.path().join(".tramontane/audit.jsonl")).unwrap();
    for (name, path) in [
        ("ci-deploy", "secrets/prod-workspace/ci-deploy.key"),
        ("ide-completion", "secrets/dev-workspace/ide-completion.key"),
        ("support-bot", "piped-support-bot.key"),
        ("search-indexer", "piped-search-indexer.key"),
    ] {
        let file = env.path().join(path);
        let secret = std::fs::read_to_string(&file).unwrap();
        let secret = secret.trim();
        let newest = by_name[name]
            .iter()
            .max_by_key(|key| &key.created_at)
            .unwrap();
        assert_eq!(
            newest.hidden_key,
            format!("{}…{}", &secret[..4], &secret[secret.len() - 4..]),
            "{name}: the sink holds another key's secret"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&file).unwrap().permissions().mode();
            assert_eq!(mode & 0o077, 0, "{path}");
        }
        assert!(
            !transcript.contains(secret),
            "{name}'s secret is in the output"
        );
        assert!(
            !audit.contains(secret),
            "{name}'s secret is in the audit log"
        );
    }
    assert!(!transcript.contains(ADMIN_KEY) && !audit.contains(ADMIN_KEY));
    assert!(audit.contains("\"request_ids\":[\"req-"), "{audit}");
    // Two days on, the rotated key's predecessor goes; the delete's answer is lost (the
    // server deletes, then stalls past the timeout), its retry finds nothing left to delete.
    let key_deletes = || {
        api.log()
            .iter()
            .filter(|line| line.starts_with("DELETE /v1/admin/api-keys/"))
            .count()
    };
    let before = key_deletes();
    api.fail_next("/v1/admin/api-keys/", Fault::Stall(Duration::from_secs(3)));
    over_http(&env, &api)
        .args(["apply", "--auto-approve"])
        .now("2026-06-03T12:00:00Z")
        .env("TRAMONTANE_TIMEOUT", "1")
        .expect_code(0)
        .expect_stdout_contains("- workspace.dev-workspace.key.ide-completion: done")
        .run();
    let left = api
        .org()
        .keys
        .values()
        .filter(|key| key.name.as_deref() == Some("ide-completion"))
        .count();
    assert_eq!(left, 1);
    assert_eq!(
        key_deletes() - before,
        2,
        "the delete was not retried after its lost answer"
    );
}

#[test]
fn a_second_apply_waits_for_the_lock_then_gives_up() {
    let env = env();
    let org = env.path().join("org.json");
    orgs::demo().save(&org).unwrap();
    let choice = format!("sandbox:{}", org.display());
    let locks = env.path().join("locks");
    let held = tramontane::apply::lock::acquire(
        &locks,
        &choice,
        &tramontane::org::lock_identity(&choice, "", &RepositoryRoot::current()).unwrap(),
        Duration::ZERO,
        |_, _| {},
    )
    .unwrap();
    env.test()
        .args(["apply", "--org", &choice, "--auto-approve"])
        .args(["--lock-timeout", "300ms"])
        .env("TRAMONTANE_LOCK_DIR", &locks)
        .expect_code(1)
        .expect_stderr_contains("Waiting up to 300ms for another apply")
        .expect_stderr_contains("holds its lock")
        .expect_stderr_contains("help: wait for it to finish")
        .run();
    let untouched = std::fs::read_to_string(&org).unwrap();
    assert!(
        !untouched.contains("prod-workspace"),
        "applied without the lock"
    );

    drop(held);
    env.test()
        .args(["apply", "--org", &choice, "--auto-approve"])
        .env("TRAMONTANE_LOCK_DIR", &locks)
        .expect_code(0)
        .run();
}

/// `http://127.0.0.1:P` and `http://localhost:P/` are one server: an apply through one
/// spelling holds off an apply through the other, rather than both creating the same keys.
#[test]
fn two_spellings_of_one_server_share_the_lock() {
    let env = env();
    let api = FakeApi::serving(orgs::demo(), ADMIN_KEY);
    let port = api.url.rsplit(':').next().unwrap().trim_end_matches('/');
    let locks = env.path().join("locks");
    let held = tramontane::apply::lock::acquire(
        &locks,
        "mistral",
        &tramontane::org::lock_identity(
            "mistral",
            &format!("http://localhost:{port}/"),
            &RepositoryRoot::current(),
        )
        .unwrap(),
        Duration::ZERO,
        |_, _| {},
    )
    .unwrap();
    env.test()
        .args(["apply", "--org", "mistral", "--auto-approve"])
        .fake_api(&api)
        .env("MISTRAL_API_URL", format!("http://127.0.0.1:{port}"))
        .env("TRAMONTANE_LOCK_DIR", &locks)
        .expect_code(1)
        .expect_stderr_contains("another apply against mistral holds its lock")
        .run();
    assert_eq!(api.requests(), 0, "read the org without the lock");
    drop(held);
}

#[test]
fn plan_files_that_are_not_this_plan_are_refused() {
    let env = env();
    assert_eq!(
        env.run(&["plan", "--org", "sandbox:demo", "--out", "plan.json"])
            .code,
        0
    );
    let text = std::fs::read_to_string(env.path().join("plan.json")).unwrap();
    let apply = |file: &str, contents: String| {
        env.write(file, contents);
        let run = env
            .test()
            .args(["apply", file, "--org", "sandbox:demo", "--auto-approve"])
            .expect_code(1)
            .run();
        run.stderr
    };
    let edited = apply(
        "edited.json",
        text.replacen(
            "in the policy, not in the organization",
            "nothing to see here",
            1,
        ),
    );
    assert!(edited.contains("does not match"), "{edited}");
    let foreign = apply(
        "foreign.json",
        text.replace("\"org\": \"sandbox:demo\"", "\"org\": \"mistral\""),
    );
    assert!(foreign.contains("made against `mistral`"), "{foreign}");
    let future = apply(
        "future.json",
        text.replace("\"format_version\": \"1\"", "\"format_version\": \"9\""),
    );
    assert!(future.contains("a plan of format 9"), "{future}");
    let other = apply("other.json", "{\"hello\": 1}".into());
    assert!(other.contains("is not a tramontane plan"), "{other}");
    let audit = env.path().join(".tramontane/audit.jsonl");
    assert!(!audit.exists(), "something was applied");
}

#[test]
fn deleting_a_workspace_needs_its_own_flag() {
    let env = env();
    let org_policy =
        std::fs::read_to_string(env.path().join("policies/organization.yaml")).unwrap();
    env.write(
        "policies/organization.yaml",
        org_policy.replace(
            "  min_admins: 2",
            "  min_admins: 2\n  prune: { workspaces: true }",
        ),
    );
    let mut org = orgs::demo();
    let admin = org
        .users
        .iter()
        .find(|(_, user)| user.email == "alice.martin@acme.example")
        .map(|(id, _)| id.clone())
        .unwrap();
    org.perform(
        tramontane::provider::Operation::CreateWorkspace {
            name: "scratch".into(),
            description: "made by hand".into(),
            admin,
        },
        "2026-05-01T12:00:00Z",
    )
    .unwrap();
    let path = env.path().join("org.json");
    org.save(&path).unwrap();
    let choice = format!("sandbox:{}", path.display());

    // The plan says so before apply refuses, in every rendering.
    let plan = env.run(&["plan", "--org", &choice]);
    let guard_lines: Vec<&str> = plan
        .stdout
        .lines()
        .skip_while(|line| !line.starts_with("Apply will refuse"))
        .take(2)
        .collect();
    insta::assert_snapshot!(guard_lines.join("\n"), @r"
    Apply will refuse this plan unless told otherwise:
      ! the plan deletes (archives) workspace.scratch  (lift with: --allow-destroy workspace)
    ");
    let markdown = env.run(&["plan", "--org", &choice, "--format", "markdown"]);
    assert!(
        markdown.stdout.contains("> - the plan deletes (archives) workspace.scratch (lift with: `--allow-destroy workspace`)"),
        "{}",
        markdown.stdout
    );
    let json = env.run(&["plan", "--org", &choice, "--format", "json"]);
    let json: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(json["guards"][0]["flag"], "--allow-destroy workspace");

    let refused = env
        .test()
        .args(["apply", "--org", &choice, "--auto-approve"])
        .expect_code(3)
        .run();
    assert!(
        refused.stderr.contains("error: refused: the plan deletes (archives) workspace.scratch\nhelp: if this is intended, pass --allow-destroy workspace"),
        "{}",
        refused.stderr
    );
    let scratch_is_active = || {
        tramontane::provider::sandbox::SandboxOrg::load(&path)
            .unwrap()
            .workspaces
            .values()
            .any(|w| w.name == "scratch" && !w.archived)
    };
    assert!(scratch_is_active());
    let allowed = env
        .test()
        .args([
            "apply",
            "--org",
            &choice,
            "--auto-approve",
            "--allow-destroy",
            "workspace",
        ])
        .expect_code(0)
        .run();
    assert!(
        allowed.stdout.contains("- workspace.scratch: done"),
        "{}",
        allowed.stdout
    );
    assert!(!scratch_is_active());
}

#[test]
fn a_saved_plan_whose_summary_was_edited_is_refused() {
    let env = env();
    assert_eq!(
        env.run(&["plan", "--org", "sandbox:demo", "--out", "plan.json"])
            .code,
        0
    );
    let mut plan: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(env.path().join("plan.json")).unwrap())
            .unwrap();
    assert!(plan["changes"].as_array().unwrap().len() > 1);
    for action in ["create", "update", "delete", "replace", "rotate", "manual"] {
        plan["summary"][action] = 0.into();
    }
    env.write("zeros.json", serde_json::to_string_pretty(&plan).unwrap());
    let sandbox = env.path().join(".tramontane/sandbox/demo.json");
    let before = std::fs::read_to_string(&sandbox).unwrap();

    // Not on a terminal and without --auto-approve: a summary of zeros must not make the
    // plan look like one that needs no confirmation.
    let run = env
        .test()
        .args(["apply", "zeros.json", "--org", "sandbox:demo"])
        .expect_code(1)
        .run();
    insta::assert_snapshot!(run.stderr, @r"
    error: zeros.json was edited: its summary says 0 create, 0 update, 0 delete, 0 replace, 0 rotate, 0 manual, but its changes are 6 create, 4 update, 0 delete, 0 replace, 1 rotate, 2 manual
    help: make the plan again with `tramontane plan --out` and review it; a plan file is never edited by hand
    ");
    let approved = env
        .test()
        .args([
            "apply",
            "zeros.json",
            "--org",
            "sandbox:demo",
            "--auto-approve",
        ])
        .expect_code(1)
        .run();
    assert!(
        approved.stderr.contains("was edited"),
        "{}",
        approved.stderr
    );
    assert_eq!(
        std::fs::read_to_string(&sandbox).unwrap(),
        before,
        "something was applied"
    );
    assert!(!env.path().join(".tramontane/audit.jsonl").exists());

    // Every reader of a saved plan refuses it: `show` would print the false summary.
    let shown = env.test().args(["show", "zeros.json"]).expect_code(1).run();
    assert!(shown.stdout.is_empty(), "{}", shown.stdout);
}

// ---- Secrets: never lost, never left with a key that has none -------------------------

/// The example policies with `support-bot`'s sink replaced by `command`.
fn env_with_support_bot_sink(command: &str) -> TestDir {
    let env = env();
    let prod = std::fs::read_to_string(env.path().join("policies/workspaces/prod.yaml")).unwrap();
    let replaced = prod.replace("umask 077; cat > piped-support-bot.key", command);
    assert_ne!(prod, replaced);
    env.write("policies/workspaces/prod.yaml", replaced);
    env
}

fn plan_json(env: &TestDir, org: &str) -> serde_json::Value {
    let run = env
        .test()
        .args(["plan", "--org", org, "--format", "json"])
        .expect_code(0)
        .run();
    serde_json::from_str(&run.stdout).unwrap()
}

fn change<'a>(plan: &'a serde_json::Value, address: &str) -> Option<&'a serde_json::Value> {
    plan["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|change| change["address"] == address)
}

const SUPPORT_BOT: &str = "workspace.prod-workspace.key.support-bot";

#[test]
fn a_hanging_sink_is_stopped_at_its_timeout_and_its_key_deleted() {
    let env = env_with_support_bot_sink("sleep 1000");
    let started = std::time::Instant::now();
    let run = env.run(&[
        "apply",
        "--org",
        "sandbox:demo",
        "--auto-approve",
        "--sink-timeout",
        "1s",
    ]);
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout.contains(&format!("{SUPPORT_BOT}: failed")),
        "{}",
        run.stdout
    );
    assert!(
        run.stderr
            .contains("`sh` did not finish within 1 s, so it was stopped"),
        "{}",
        run.stderr
    );
    assert!(
        sandbox_keys(&env, "support-bot").is_empty(),
        "an orphan key"
    );
    // Nothing is in sync that has no secret: the next plan creates the key.
    let plan = plan_json(&env, "sandbox:demo");
    assert_eq!(change(&plan, SUPPORT_BOT).unwrap()["action"], "create");
}

#[test]
fn a_sink_that_ignores_its_stdin_fails_shows_its_stderr_and_sees_no_credentials() {
    let env = env_with_support_bot_sink(
        "env > sink-env.txt; echo first line >&2; echo 'vault: permission denied' >&2; exit 0",
    );
    let run = env
        .test()
        .args(["apply", "--org", "sandbox:demo", "--auto-approve"])
        .env("GITHUB_TOKEN", "ghs_credential")
        .env("GH_TOKEN", "gho_credential")
        .env("MISTRAL_ADMIN_API_KEY", "admin-credential")
        .env("TRAMONTANE_GATEWAY_TOKEN", "gateway-credential")
        .env("SINK_OWN_SETTING", "kept")
        .expect_code(1)
        .run();
    assert!(
        run.stderr
            .contains("without reading the secret from its stdin"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("its stderr ended with:\n    first line\n    vault: permission denied"),
        "{}",
        run.stderr
    );
    assert!(
        sandbox_keys(&env, "support-bot").is_empty(),
        "an orphan key"
    );
    let seen = std::fs::read_to_string(env.path().join("sink-env.txt")).unwrap();
    assert!(seen.contains("SINK_OWN_SETTING=kept"), "{seen}");
    for name in [
        "GITHUB_TOKEN",
        "GH_TOKEN",
        "MISTRAL_ADMIN_API_KEY",
        "TRAMONTANE_GATEWAY_TOKEN",
    ] {
        assert!(
            !seen.contains(&format!("{name}=")),
            "{name} reached the sink"
        );
    }
}

#[test]
fn an_apply_killed_between_create_and_delivery_is_replaced_by_the_next() {
    // The sink kills tramontane itself: the key exists, its secret went nowhere.
    let env = env_with_support_bot_sink("kill -9 $PPID");
    let killed = env.run(&["apply", "--org", "sandbox:demo", "--auto-approve"]);
    assert_eq!(
        killed.code, -1,
        "not killed: {}{}",
        killed.stdout, killed.stderr
    );
    let orphans = sandbox_keys(&env, "support-bot");
    assert_eq!(orphans.len(), 1, "the key was not created before the kill");

    // With a working sink again, the next plan replaces the key and says why.
    let prod = std::fs::read_to_string(env.path().join("policies/workspaces/prod.yaml")).unwrap();
    env.write(
        "policies/workspaces/prod.yaml",
        prod.replace("kill -9 $PPID", "umask 077; cat > piped-support-bot.key"),
    );
    let plan = plan_json(&env, "sandbox:demo");
    let replace = change(&plan, SUPPORT_BOT).expect("the undelivered key is planned");
    assert_eq!(replace["action"], "replace", "{replace}");
    assert!(
        replace["reason"]
            .as_str()
            .unwrap()
            .contains("stopped before its secret reached its sink"),
        "{replace}"
    );
    let human = env.run(&["plan", "--org", "sandbox:demo"]);
    assert!(
        human
            .stdout
            .contains(&format!("-/+ {SUPPORT_BOT}  replace")),
        "{}",
        human.stdout
    );

    env.test()
        .args(["apply", "--org", "sandbox:demo", "--auto-approve"])
        .expect_code(0)
        .run();
    let keys = sandbox_keys(&env, "support-bot");
    assert_eq!(keys.len(), 1, "{keys:?}");
    assert_ne!(keys, orphans, "the undelivered key is still there");
    let secret = std::fs::read_to_string(env.path().join("piped-support-bot.key")).unwrap();
    assert_eq!(
        keys[0].1,
        format!("{}…{}", &secret[..4], &secret[secret.len() - 4..])
    );
    let settled = plan_json(&env, "sandbox:demo");
    for action in ["create", "update", "delete", "replace", "rotate"] {
        assert_eq!(
            settled["summary"][action], 0,
            "{action}: {}",
            settled["summary"]
        );
    }
    let journal = std::fs::read_to_string(env.path().join(".tramontane/journal.jsonl")).unwrap();
    assert!(!journal.contains(secret.trim()));
}

fn fake_org() -> FakeApi {
    FakeApi::serving(orgs::demo(), ADMIN_KEY)
}

fn key_ids(api: &FakeApi) -> Vec<String> {
    api.org().keys.keys().cloned().collect()
}

#[test]
fn a_create_answer_without_the_secret_deletes_the_key_it_made() {
    let env = env();
    let api = fake_org();
    let before = key_ids(&api);
    api.answer_creates_without_key(true);
    let run = apply_over_http(&env, &api);
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stderr.contains("no `key` in the answer"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("the key was deleted again"),
        "{}",
        run.stderr
    );
    assert!(
        api.log()
            .iter()
            .any(|line| line.starts_with("DELETE /v1/admin/api-keys/")),
        "{:?}",
        api.log()
    );
    assert_eq!(key_ids(&api), before, "a key without its secret is left");

    api.answer_creates_without_key(false);
    let run = apply_over_http(&env, &api);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
}

#[test]
fn a_malformed_create_answer_never_shows_the_secret_it_carries() {
    let env = env();
    let api = fake_org();
    let before = key_ids(&api);
    api.answer_creates_malformed(true);
    let run = apply_over_http(&env, &api);
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stderr.contains("POST /v1/admin/api-keys"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("withheld"), "{}", run.stderr);
    let secrets = api.secrets_handed_out();
    assert!(!secrets.is_empty(), "no malformed answer was sent");
    let audit_path = env.path().join(".tramontane/audit.jsonl");
    let audit = std::fs::read_to_string(&audit_path).unwrap();
    for secret in &secrets {
        for (what, text) in [
            ("stdout", &run.stdout),
            ("stderr", &run.stderr),
            ("audit log", &audit),
        ] {
            assert!(
                !text.contains(secret.as_str()),
                "a secret reached the {what}"
            );
            assert!(
                !text.contains(&secret[..12]),
                "part of a secret reached the {what}"
            );
        }
    }
    assert_eq!(key_ids(&api), before, "a key whose secret was lost is left");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&audit_path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "the audit log is readable by others");
    }
}

#[test]
fn a_successor_not_shown_to_work_never_displaces_its_predecessor() {
    let env = env();
    let api = fake_org();
    let ide_keys = |api: &FakeApi| {
        api.org()
            .keys
            .values()
            .filter(|key| key.name.as_deref() == Some("ide-completion"))
            .count()
    };
    assert_eq!(ide_keys(&api), 1);
    api.reject_keys_on_models(true);
    let run = apply_over_http(&env, &api);
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stderr.contains(
            "workspace.dev-workspace.key.ide-completion: the new key was not shown to work (GET /v1/models with the new key answered 401"
        ),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("the key it was to succeed is kept"),
        "{}",
        run.stderr
    );
    assert_eq!(ide_keys(&api), 1, "the unproven successor was kept");
    assert!(
        !env.path()
            .join("secrets/dev-workspace/ide-completion.key")
            .exists(),
        "the unproven successor's secret replaced the working one in its sink"
    );

    api.reject_keys_on_models(false);
    let run = apply_over_http(&env, &api);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert_eq!(ide_keys(&api), 2);
    assert!(
        api.log().iter().any(|line| line == "GET /v1/models"),
        "{:?}",
        api.log()
    );
}

#[test]
fn a_replacement_not_shown_to_work_keeps_the_key_it_would_replace() {
    let env = env();
    // A longer expiry, which the API cannot change on a key: a replacement.
    let dev = std::fs::read_to_string(env.path().join("policies/workspaces/dev.yaml")).unwrap();
    env.write(
        "policies/workspaces/dev.yaml",
        dev.replace(
            "        expires_after_days: 90\n        rotate_before_days: 14\n        models: [codestral-latest]",
            "        expires_after_days: 120\n        models: [codestral-latest]",
        ),
    );
    let api = fake_org();
    let ide_keys = |api: &FakeApi| -> Vec<String> {
        api.org()
            .keys
            .iter()
            .filter(|(_, key)| key.name.as_deref() == Some("ide-completion"))
            .map(|(id, _)| id.clone())
            .collect()
    };
    let original = ide_keys(&api);
    assert_eq!(original.len(), 1);
    api.reject_keys_on_models(true);
    let run = apply_over_http(&env, &api);
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout
            .contains("-/+ workspace.dev-workspace.key.ide-completion: failed"),
        "{}",
        run.stdout
    );
    assert!(
        run.stderr.contains("the new key was not shown to work"),
        "{}",
        run.stderr
    );
    assert_eq!(ide_keys(&api), original, "the working key was let go");

    api.reject_keys_on_models(false);
    let run = apply_over_http(&env, &api);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let replaced = ide_keys(&api);
    assert_eq!(replaced.len(), 1);
    assert_ne!(replaced, original, "the replacement did not happen");
}

/// The markdown plan's digest of its reviewed changes.
fn review_digest(markdown: &str) -> String {
    let at = markdown
        .find("reviewed changes `")
        .expect("the digest is in the comment");
    markdown[at..].split('`').nth(1).unwrap().to_owned()
}

#[test]
fn apply_stops_when_the_plan_is_not_the_one_reviewed() {
    let env = env();
    env.test()
        .args(["plan", "--org", "sandbox:demo", "--out", "reviewed.json"])
        .expect_code(0)
        .run();
    let sandbox = env.path().join(".tramontane/sandbox/demo.json");
    let untouched = std::fs::read_to_string(&sandbox).unwrap();

    // After the review: the base branch gained a member, a description changed, and a role
    // change the review showed is no longer needed.
    let edit = |file: &str, from: &str, to: &str| {
        let path = format!("policies/{file}");
        let text = std::fs::read_to_string(env.path().join(&path)).unwrap();
        assert!(text.contains(from), "{from} not in {file}");
        env.write(&path, text.replacen(from, to, 1));
    };
    edit(
        "members.yaml",
        "  jon.berg@acme.example:      { name: Jon Berg }",
        "  jon.berg@acme.example:      { name: Jon Berg }\n  zoe.new@acme.example:       { name: Zoe New }",
    );
    edit(
        "workspaces/dev.yaml",
        "small and code models only",
        "small models only",
    );
    edit(
        "members.yaml",
        "roles: [billing_manager]",
        "roles: [member]",
    );
    let refused = env
        .test()
        .args([
            "apply",
            "--org",
            "sandbox:demo",
            "--auto-approve",
            "--reviewed-plan",
            "reviewed.json",
        ])
        .expect_code(3)
        .run();
    insta::assert_snapshot!(refused.stderr, @r"
    error: refused: the plan made now is not the plan reviewed in reviewed.json
      added since the review: member.zoe.new@acme.example (create)
      no longer in the plan: member.grace.okafor@acme.example (update)
      changed since the review: workspace.dev-workspace (update reviewed, update now, with other values)
    help: the policies or the organization changed after the review: plan again on the pull request (or a new one), review it, and merge that
    Nothing applied.
    ");
    assert_eq!(std::fs::read_to_string(&sandbox).unwrap(), untouched);
    assert!(!env.path().join(".tramontane/audit.jsonl").exists());

    // The policies as reviewed, planned and applied a day later: new keys expire a day
    // later and the rotation is a day nearer, yet the changes are the ones reviewed.
    edit(
        "members.yaml",
        "\n  zoe.new@acme.example:       { name: Zoe New }",
        "",
    );
    edit(
        "workspaces/dev.yaml",
        "small models only",
        "small and code models only",
    );
    edit(
        "members.yaml",
        "{ name: Grace Okafor, roles: [member] }",
        "{ name: Grace Okafor, roles: [billing_manager] }",
    );
    let next_day = |args: &[&str]| env.test().today("2026-06-02").args(args).run();
    let markdown = |run: Output| {
        assert_eq!(run.code, 0, "{}", run.stderr);
        review_digest(&run.stdout)
    };
    assert_eq!(
        markdown(env.run(&["show", "reviewed.json", "--format", "markdown"])),
        markdown(next_day(&[
            "plan",
            "--org",
            "sandbox:demo",
            "--format",
            "markdown"
        ])),
        "the comment's digest moved with the calendar"
    );
    let applied = next_day(&[
        "apply",
        "--org",
        "sandbox:demo",
        "--auto-approve",
        "--reviewed-plan",
        "reviewed.json",
    ]);
    assert_eq!(applied.code, 0, "{}{}", applied.stdout, applied.stderr);
    assert!(
        applied
            .stderr
            .contains("The plan made now is the plan reviewed in reviewed.json (changes sha256:"),
        "{}",
        applied.stderr
    );
    assert!(
        applied.stdout.contains("Apply complete"),
        "{}",
        applied.stdout
    );
}

#[test]
fn only_rotations_applies_what_the_calendar_made_due_and_nothing_else() {
    let env = env();
    let run = env
        .test()
        .args([
            "apply",
            "--org",
            "sandbox:demo",
            "--auto-approve",
            "--only",
            "rotations",
        ])
        .expect_code(0)
        .run();
    insta::assert_snapshot!(run.stderr, @"--only rotations: 1 change the calendar made due; 10 other changes wait for a reviewed apply.");
    assert!(
        run.stdout.ends_with(
            "+/- workspace.dev-workspace.key.ide-completion: done; new secret delivered to file secrets/dev-workspace/ide-completion.key\n\nRotations under way:\n  workspace.dev-workspace.key.ide-completion: the old key stays valid until 2026-06-02T12:00:00Z; the first apply after that deletes it\n\nApply complete: 1 change applied.\n"
        ),
        "{}",
        run.stdout
    );
    assert_eq!(
        sandbox_keys(&env, "ide-completion").len(),
        2,
        "the rotation started"
    );
    let org = std::fs::read_to_string(env.path().join(".tramontane/sandbox/demo.json")).unwrap();
    assert!(
        !org.contains("prod-workspace"),
        "drift was applied by a rotations-only run"
    );
    assert!(
        !org.contains("jon.berg"),
        "drift was applied by a rotations-only run"
    );

    // What was left is still planned, for a reviewed apply.
    let plan = env.run(&["plan", "--org", "sandbox:demo", "--format", "json"]);
    let plan: serde_json::Value = serde_json::from_str(&plan.stdout).unwrap();
    assert_eq!(plan["summary"]["create"], 6, "{}", plan["summary"]);
    assert_eq!(plan["summary"]["rotate"], 0, "{}", plan["summary"]);

    // Once the overlap ends, retiring the old key is due too.
    let finishing = run_at(
        &env,
        "2026-06-02T12:00:00Z",
        &[
            "apply",
            "--org",
            "sandbox:demo",
            "--auto-approve",
            "--only",
            "rotations",
        ],
    );
    assert_eq!(
        finishing.code, 0,
        "{}{}",
        finishing.stdout, finishing.stderr
    );
    assert!(
        finishing
            .stdout
            .contains("- workspace.dev-workspace.key.ide-completion: done"),
        "{}",
        finishing.stdout
    );
    assert_eq!(sandbox_keys(&env, "ide-completion").len(), 1);
}
