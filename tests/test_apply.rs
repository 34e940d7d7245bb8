//! `tramontane apply` on the sandbox demo: from a saved plan to nothing left but manual
//! steps, with secrets in their sinks and nowhere else.

use crate::common::{TestEnv, repo_root};

/// The example policies, with the Vault commands swapped for a shell that writes the secret
/// from stdin to a file, so the command sink runs for real.
fn env() -> TestEnv {
    let env = TestEnv::new();
    for relative in [
        "organization.yaml",
        "members.yaml",
        "teams.yaml",
        "workspaces/dev.yaml",
        "workspaces/ml.yaml",
        "workspaces/prod.yaml",
    ] {
        let text = std::fs::read_to_string(repo_root().join("policies").join(relative)).unwrap();
        let text: String = text
            .lines()
            .map(|line| match line.find("{ command: [vault") {
                Some(at) => {
                    let name = line
                        .rsplit('/')
                        .next()
                        .unwrap()
                        .trim_end_matches(", key=-] }");
                    format!(
                        "{}{{ command: [sh, -c, \"umask 077; cat > piped-{name}.key\"] }}",
                        &line[..at]
                    )
                }
                None => line.to_owned(),
            })
            .collect::<Vec<_>>()
            .join("\n");
        env.write(&format!("policies/{relative}"), text);
    }
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

    let unconfirmed = env.run(&["apply", "plan.json", "--org", "sandbox:demo"]);
    assert_eq!(unconfirmed.code, 1);
    assert!(
        unconfirmed.stderr.contains("not on a terminal"),
        "{}",
        unconfirmed.stderr
    );

    let applied = env.run(&[
        "apply",
        "plan.json",
        "--org",
        "sandbox:demo",
        "--auto-approve",
    ]);
    assert_eq!(applied.code, 0, "{}{}", applied.stdout, applied.stderr);
    assert!(
        applied
            .stdout
            .contains("Apply complete: 11 change(s) applied."),
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
        let file = env.root().join(path);
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
    let audit = std::fs::read_to_string(env.root().join(".tramontane/audit.jsonl")).unwrap();
    assert_eq!(audit.lines().count(), 11);
    let org = std::fs::read_to_string(env.root().join(".tramontane/sandbox/demo.json")).unwrap();
    for secret in &secrets {
        assert!(secret.len() >= 16);
        for (what, text) in [
            ("stdout", &applied.stdout),
            ("stderr", &applied.stderr),
            ("audit log", &audit),
            ("sandbox", &org),
        ] {
            assert!(
                !text.contains(secret.as_str()),
                "a secret leaked into the {what}"
            );
        }
    }

    let again = env.run(&["plan", "--org", "sandbox:demo", "--format", "json"]);
    let plan: serde_json::Value = serde_json::from_str(&again.stdout).unwrap();
    let summary = &plan["summary"];
    for action in ["create", "update", "delete", "replace", "rotate"] {
        assert_eq!(summary[action], 0, "{action} left: {summary}");
    }
    assert_eq!(summary["manual"], 2);

    let stale = env.run(&[
        "apply",
        "plan.json",
        "--org",
        "sandbox:demo",
        "--auto-approve",
    ]);
    assert_eq!(stale.code, 1);
    assert!(stale.stderr.contains("stale plan"), "{}", stale.stderr);
}

#[test]
fn a_failing_sink_leaves_no_key_behind() {
    let env = env();
    let prod = std::fs::read_to_string(env.root().join("policies/workspaces/prod.yaml")).unwrap();
    env.write(
        "policies/workspaces/prod.yaml",
        prod.replace("umask 077; cat > piped-support-bot.key", "exit 7"),
    );
    let run = env.run(&["apply", "--org", "sandbox:demo", "--auto-approve"]);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr
            .contains("workspace.prod-workspace.key.support-bot: failed"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("it was deleted again"),
        "{}",
        run.stderr
    );
    let org = std::fs::read_to_string(env.root().join(".tramontane/sandbox/demo.json")).unwrap();
    assert!(
        !org.contains("support-bot"),
        "the undelivered key is still there"
    );
}

#[test]
fn an_empty_policy_is_refused_by_a_guard() {
    let env = TestEnv::new();
    env.write("policies/empty.yaml", "# nothing yet\n");
    let run = env.run(&["apply", "--org", "sandbox:demo", "--auto-approve"]);
    assert_eq!(run.code, 3, "{}{}", run.stdout, run.stderr);
    assert!(run.stderr.contains("--allow-empty"), "{}", run.stderr);
    insta::assert_snapshot!(run.stderr);
}
