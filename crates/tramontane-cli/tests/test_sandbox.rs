//! `--org sandbox:PATH` from nothing: a missing or empty file becomes a new organization
//! with one admin, the default workspace and the roles table; anything else that is not a
//! sandbox file is refused, untouched.

use tramontane_testkit::{Output, TestDir};

/// The example policies, with the one command sink (`vault`, not installed here) turned
/// into a file sink so apply can deliver every secret.
pub fn env() -> TestDir {
    let env = TestDir::with_example_policies();
    let ml = env.path().join("policies/workspaces/ml.yaml");
    let text = std::fs::read_to_string(&ml).unwrap().replace(
        "secret: { command: [vault, kv, put, secret/ml/eval-harness, key=-] }",
        "secret: { file: secrets/ml-workspace/eval-harness.key }",
    );
    std::fs::write(ml, text).unwrap();
    env
}

/// The number in `Plan: N to create`.
fn creates(run: &Output) -> usize {
    let line = run
        .stdout
        .lines()
        .find(|line| line.starts_with("Plan: "))
        .unwrap_or_else(|| panic!("no plan summary in:\n{}{}", run.stdout, run.stderr));
    line["Plan: ".len()..]
        .split(' ')
        .next()
        .and_then(|count| count.parse().ok())
        .unwrap_or_else(|| panic!("no create count in `{line}`"))
}

/// Plans against `org.json` as it is, then applies and plans again: the first plan creates
/// the org and everything the policy lists, the second has nothing left to create.
fn plan_apply_converge(env: &TestDir) {
    let planned = env
        .test()
        .args(["plan", "--org", "sandbox:org.json"])
        .expect_code(0)
        .run();
    assert!(
        planned.stderr.contains(
            "Created a sandbox organization at org.json with admin alice.martin@acme.example (Alice Martin)"
        ),
        "{}",
        planned.stderr
    );
    assert!(creates(&planned) > 10, "{}", planned.stdout);
    assert!(
        planned.stdout.contains("+ member.bob.stone@acme.example"),
        "{}",
        planned.stdout
    );
    // The admin the org was created with is already there: the plan does not create them.
    assert!(
        !planned
            .stdout
            .contains("+ member.alice.martin@acme.example"),
        "{}",
        planned.stdout
    );

    let stored: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(env.path().join("org.json")).unwrap())
            .unwrap();
    assert_eq!(stored["format"], 1);
    assert_eq!(
        stored["roles"]["organization"]
            .as_object()
            .map(|roles| roles.len()),
        Some(3)
    );
    let workspaces = stored["workspaces"].as_object().unwrap();
    assert_eq!(workspaces.len(), 1);
    assert!(workspaces.values().all(|w| w["is_default"] == true));

    let applied = env
        .test()
        .args(["apply", "--org", "sandbox:org.json", "--auto-approve"])
        .expect_code(0)
        .run();
    assert!(
        !applied.stderr.contains("Created a sandbox"),
        "the org exists now: {}",
        applied.stderr
    );
    assert!(
        env.path()
            .join("secrets/ml-workspace/eval-harness.key")
            .exists()
    );

    let again = env
        .test()
        .args(["plan", "--org", "sandbox:org.json"])
        .expect_code(0)
        .run();
    assert_eq!(creates(&again), 0, "{}", again.stdout);
}

#[test]
fn a_missing_sandbox_is_created_on_first_use_and_converges() {
    let env = env();
    plan_apply_converge(&env);
}

#[test]
fn an_empty_sandbox_file_is_a_new_organization() {
    let env = env();
    env.write("org.json", "");
    plan_apply_converge(&env);
}

#[test]
fn a_file_that_is_not_a_sandbox_is_refused_and_left_alone() {
    let env = env();
    let foreign = "{\"name\": \"not an org\"}\n";
    env.write("org.json", foreign);
    let refused = env
        .test()
        .args(["plan", "--org", "sandbox:org.json"])
        .expect_code(1)
        .run();
    assert_eq!(refused.stdout, "");
    insta::assert_snapshot!(refused.stderr);
    assert_eq!(
        std::fs::read_to_string(env.path().join("org.json")).unwrap(),
        foreign
    );
}

#[test]
fn a_policy_without_an_admin_needs_one_named() {
    let env = TestDir::new();
    env.write(
        "policies/members.yaml",
        "version: 1\nmembers:\n  bob@x.example: { name: Bob Stone }\n",
    );
    let refused = env
        .test()
        .args(["plan", "--org", "sandbox:org.json"])
        .expect_code(1)
        .run();
    insta::assert_snapshot!(refused.stderr);
    assert!(!env.path().join("org.json").exists());

    let named = env
        .test()
        .args([
            "plan",
            "--org",
            "sandbox:org.json",
            "--sandbox-admin",
            "ada@x.example",
        ])
        .expect_code(0)
        .run();
    assert!(
        named
            .stderr
            .contains("Created a sandbox organization at org.json with admin ada@x.example (ada)"),
        "{}",
        named.stderr
    );
    assert!(
        named.stdout.contains("+ member.bob@x.example"),
        "{}",
        named.stdout
    );

    let not_an_email = TestDir::new();
    not_an_email.write(
        "policies/members.yaml",
        "version: 1\nmembers:\n  bob@x.example: { name: Bob Stone }\n",
    );
    let refused = not_an_email
        .test()
        .args([
            "plan",
            "--org",
            "sandbox:org.json",
            "--sandbox-admin",
            "ada",
        ])
        .expect_code(1)
        .run();
    assert!(
        refused
            .stderr
            .contains("`--sandbox-admin ada` is not an email"),
        "{}",
        refused.stderr
    );
}
