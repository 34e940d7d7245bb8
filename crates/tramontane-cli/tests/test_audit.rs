//! Who the audit log says applied.

use tramontane_testkit::Test;

/// The user `id -un` names, or `uid N` when the password database has no entry.
#[cfg(unix)]
fn os_user() -> String {
    let named = std::process::Command::new("id")
        .arg("-un")
        .output()
        .unwrap();
    if named.status.success() {
        return String::from_utf8(named.stdout).unwrap().trim().to_owned();
    }
    let uid = std::process::Command::new("id").arg("-u").output().unwrap();
    format!("uid {}", String::from_utf8(uid.stdout).unwrap().trim())
}

#[cfg(unix)]
#[test]
fn without_user_in_the_environment_the_actor_is_the_os_user() {
    let run = Test::new()
        .example_policies()
        .args(["apply", "--org", "sandbox:demo", "--auto-approve"])
        .env_remove("GITHUB_ACTOR")
        .env_remove("USER")
        .env_remove("USERNAME")
        .expect_code(0)
        .run();
    let audit = run.dir.read(".tramontane/audit.jsonl");
    let expected = os_user();
    assert_ne!(expected, "");
    for line in audit.lines() {
        let entry: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(entry["actor"], expected.as_str(), "{line}");
    }
    assert!(audit.lines().count() > 0);
}

#[test]
fn github_actor_comes_first() {
    let run = Test::new()
        .example_policies()
        .args(["apply", "--org", "sandbox:demo", "--auto-approve"])
        .env("GITHUB_ACTOR", "octocat")
        .env("USER", "someone-else")
        .expect_code(0)
        .run();
    let audit = run.dir.read(".tramontane/audit.jsonl");
    let first: serde_json::Value = serde_json::from_str(audit.lines().next().unwrap()).unwrap();
    assert_eq!(first["actor"], "octocat");
}
