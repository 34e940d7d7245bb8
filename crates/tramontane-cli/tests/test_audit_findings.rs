//! `tramontane audit` and `tramontane revoke` against a sandbox organization seeded with one
//! key per finding, and a clean one with none. The clock is pinned with `--now`.

use std::collections::BTreeSet;

use tramontane::model::SpendLimit;
use tramontane::provider::sandbox::SandboxOrg;
use tramontane::provider::{Operation, Outcome};
use tramontane_testkit::orgs::{self, People};
use tramontane_testkit::{Output, TestDir};

const NOW: &str = "2026-06-01T12:00:00Z";

/// A key of workspace `dev` that no rule reports unless a test changes it.
struct Seed {
    name: &'static str,
    created: &'static str,
    expires: Option<&'static str>,
    last_used: Option<&'static str>,
    created_by: &'static str,
}

impl Seed {
    fn clean(name: &'static str) -> Seed {
        Seed {
            name,
            created: "2026-05-01",
            expires: Some("2026-09-01"),
            last_used: Some("2026-05-31"),
            created_by: "alice@acme.example",
        }
    }
}

/// Every finding once: the key each rule is about, and carol in no team.
fn messy_keys() -> Vec<Seed> {
    vec![
        Seed::clean("ci"),
        Seed {
            expires: Some("2026-06-05"),
            ..Seed::clean("expiring")
        },
        Seed {
            expires: Some("2026-05-20"),
            ..Seed::clean("expired")
        },
        Seed {
            expires: None,
            ..Seed::clean("forever")
        },
        Seed {
            created: "2025-12-01",
            expires: Some("2026-12-01"),
            ..Seed::clean("ancient")
        },
        Seed {
            last_used: Some("2026-04-01"),
            ..Seed::clean("idle")
        },
        Seed {
            created: "2026-04-01",
            last_used: None,
            ..Seed::clean("silent")
        },
        Seed {
            created_by: "dave@acme.example",
            ..Seed::clean("orphan")
        },
        Seed::clean("stray"),
    ]
}

/// Writes `org.json`: alice (admin) and bob in team `devs`, `carol` in none unless
/// `everyone_in_a_team`, workspace `dev` with `keys`, and monthly spend limits on the
/// organization and every workspace when `limits`.
fn seed(env: &TestDir, keys: &[Seed], everyone_in_a_team: bool, limits: bool) {
    let now = "2026-01-01T12:00:00Z";
    let (mut org, People { alice, bob, carol }) = orgs::three_people(now);
    let Outcome::Created(devs) = org
        .perform(
            Operation::CreateGroup {
                name: "devs".into(),
                description: String::new(),
            },
            now,
        )
        .unwrap()
    else {
        panic!()
    };
    let mut members = vec![alice.clone(), bob];
    if everyone_in_a_team {
        members.push(carol);
    }
    org.perform(
        Operation::AddGroupMembers {
            group: devs,
            users: members,
        },
        now,
    )
    .unwrap();
    let Outcome::Created(dev) = org
        .perform(
            Operation::CreateWorkspace {
                name: "dev".into(),
                description: String::new(),
                admin: alice.clone(),
            },
            now,
        )
        .unwrap()
    else {
        panic!()
    };
    for seed in keys {
        let Outcome::Key { id, .. } = org
            .perform(
                Operation::CreateKey {
                    workspace: dev.clone(),
                    user: alice.clone(),
                    name: seed.name.into(),
                    expiration: None,
                    known: Vec::new(),
                },
                now,
            )
            .unwrap()
        else {
            panic!()
        };
        let key = org.keys.get_mut(&id).unwrap();
        key.created_at = format!("{}T09:00:00Z", seed.created);
        key.expiration = seed.expires.map(|d| d.parse().unwrap());
        key.last_used = seed.last_used.map(|d| d.parse().unwrap());
        key.created_by = Some(seed.created_by.into());
    }
    if limits {
        org.spend_limit.amount = 2000;
        org.spend_limit.no_monthly_limit = false;
        for workspace in org.workspaces.values_mut() {
            workspace.spend_limit = Some(SpendLimit::Monthly(100.0));
        }
    }
    org.save(&env.path().join("org.json")).unwrap();
}

/// The policy: every seeded key but `stray`, each declared with an expiry in the future.
fn policy(env: &TestDir, keys: &[&str]) {
    env.write(
        "policies/organization.yaml",
        "version: 1\n\
         members:\n  \
           alice@acme.example: { name: Alice Martin, roles: [organization_admin] }\n  \
           bob@acme.example: { name: Bob Stone }\n  \
           carol@acme.example: { name: Carol Diaz }\n\
         teams:\n  devs:\n    members: [alice@acme.example, bob@acme.example]\n",
    );
    let mut text = String::from(
        "workspaces:\n  dev:\n    admin: alice@acme.example\n    members: { alice@acme.example: [workspace_admin] }\n    keys:\n",
    );
    for name in keys {
        let rotate = if *name == "expiring" {
            "\n        rotate_before_days: 7"
        } else {
            ""
        };
        text.push_str(&format!(
            "      {name}:\n        owner: alice@acme.example\n        expires_after_days: 90{rotate}\n        secret: {{ file: secrets/{name}.key }}\n"
        ));
    }
    env.write("policies/workspaces/dev.yaml", text);
}

const MANAGED: [&str; 8] = [
    "ci", "expiring", "expired", "forever", "ancient", "idle", "silent", "orphan",
];

fn messy() -> TestDir {
    let env = TestDir::new();
    seed(&env, &messy_keys(), false, false);
    policy(&env, &MANAGED);
    env
}

fn clean() -> TestDir {
    let env = TestDir::new();
    seed(&env, &[Seed::clean("ci")], true, true);
    policy(&env, &["ci"]);
    env
}

fn audit(env: &TestDir, extra: &[&str]) -> Output {
    let mut args = vec!["audit", "--org", "sandbox:org.json", "--now", NOW];
    args.extend_from_slice(extra);
    env.run(&args)
}

fn json(run: &Output) -> serde_json::Value {
    serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}: {}", run.stdout))
}

#[test]
fn every_rule_finds_its_key_and_nothing_else() {
    let env = messy();
    let run = audit(&env, &["--format", "json"]);
    assert_eq!(run.code, 3, "{}{}", run.stdout, run.stderr);
    let report = json(&run);
    let ids: BTreeSet<String> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["id"].as_str().unwrap().to_owned())
        .collect();
    let expected: BTreeSet<String> = [
        "key-expiring:workspace.dev.key.expiring",
        "key-expired-present:workspace.dev.key.expired",
        "key-no-expiry:workspace.dev.key.forever",
        "key-max-age:workspace.dev.key.ancient",
        "key-unused:workspace.dev.key.idle",
        "key-never-used:workspace.dev.key.silent",
        "key-orphan-creator:workspace.dev.key.orphan",
        "key-unmanaged:workspace.dev.key.stray",
        "member-no-team:member.carol@acme.example",
        "no-spend-limit:organization",
        "no-spend-limit:workspace.dev",
        "no-spend-limit:workspace.Default Workspace",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    assert_eq!(ids, expected);
    // Managed findings point at the key's entry in the policy.
    let forever = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["rule"] == "key-no-expiry")
        .unwrap();
    assert_eq!(forever["source"]["file"], "policies/workspaces/dev.yaml");
    assert_eq!(forever["severity"], "high");
    insta::assert_snapshot!(run.stdout);
}

#[test]
fn a_clean_org_has_no_finding_and_exits_0() {
    let env = clean();
    let run = audit(&env, &["--fail-on", "low"]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert_eq!(run.stdout, "Audit: no findings on 2026-06-01.\n");
    let run = audit(&env, &["--format", "json"]);
    assert_eq!(json(&run)["findings"], serde_json::json!([]));
}

#[test]
fn fail_on_sets_the_bar_for_exit_3() {
    let env = messy();
    // The worst findings are high: --fail-on critical lets them through.
    assert_eq!(audit(&env, &["--fail-on", "critical"]).code, 0);
    assert_eq!(audit(&env, &["--fail-on", "high"]).code, 3);
    // Only carol's low finding left: it fails at low, not at medium.
    let env = clean();
    seed(&env, &[Seed::clean("ci")], false, true);
    assert_eq!(audit(&env, &["--fail-on", "medium"]).code, 0);
    assert_eq!(audit(&env, &["--fail-on", "low"]).code, 3);
}

#[test]
fn thresholds_come_from_the_policys_audit_section() {
    let env = messy();
    env.write(
        "policies/audit.yaml",
        "audit:\n  unused_days: 90\n  max_age_days: 365\n",
    );
    let run = audit(&env, &["--format", "json"]);
    let text = run.stdout;
    assert!(!text.contains("key-unused:"), "{text}");
    assert!(!text.contains("key-max-age:"), "{text}");
    assert!(text.contains("key-never-used:"), "{text}");
}

#[test]
fn an_error_exits_1() {
    let env = messy();
    // A file that is not a sandbox organization is refused, not overwritten.
    env.write("other.json", "{\"not\": \"an org\"}\n");
    let run = env.run(&["audit", "--org", "sandbox:other.json", "--now", NOW]);
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    env.write("policies/bad.yaml", "members: [oops\n");
    let run = audit(&env, &[]);
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    assert!(run.stderr.contains("policies/bad.yaml"), "{}", run.stderr);
}

#[test]
fn human_output() {
    insta::assert_snapshot!(audit(&messy(), &[]).stdout);
}

#[test]
fn csv_output() {
    insta::assert_snapshot!(audit(&messy(), &["--format", "csv"]).stdout);
}

#[test]
fn markdown_output() {
    insta::assert_snapshot!(audit(&messy(), &["--format", "markdown"]).stdout);
}

#[test]
fn sarif_output_is_valid_for_code_scanning() {
    let run = audit(&messy(), &["--format", "sarif"]);
    let log = json(&run);
    assert_eq!(log["version"], "2.1.0");
    for result in log["runs"][0]["results"].as_array().unwrap() {
        // GitHub refuses a result without a location.
        let location = &result["locations"][0]["physicalLocation"];
        assert!(location["artifactLocation"]["uri"].is_string(), "{result}");
        assert!(location["region"]["startLine"].as_u64().unwrap() >= 1);
        assert!(result["partialFingerprints"].is_object());
    }
    insta::assert_snapshot!(run.stdout.replace(
        &format!("\"{}\"", env!("CARGO_PKG_VERSION")),
        "\"[version]\""
    ));
}

fn key_names(env: &TestDir) -> Vec<String> {
    let org = SandboxOrg::load(&env.path().join("org.json")).unwrap();
    let mut names: Vec<String> = org.keys.values().filter_map(|k| k.name.clone()).collect();
    names.sort();
    names
}

#[test]
fn revoke_deletes_a_managed_key_logs_it_and_names_the_policy_edit() {
    let env = messy();
    let run = env.run(&[
        "revoke",
        "workspace.dev.key.orphan",
        "--reason",
        "leaked in a CI log",
        "--yes",
        "--org",
        "sandbox:org.json",
        "--now",
        NOW,
    ]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(!key_names(&env).contains(&"orphan".to_owned()));
    insta::assert_snapshot!(run.stdout);
    let log = std::fs::read_to_string(env.path().join(".tramontane/audit.jsonl")).unwrap();
    let entry: serde_json::Value = serde_json::from_str(log.lines().last().unwrap()).unwrap();
    assert_eq!(entry["address"], "workspace.dev.key.orphan");
    assert_eq!(entry["action"], "revoke");
    assert_eq!(entry["result"], "ok");
    assert_eq!(entry["reason"], "leaked in a CI log");
    assert_eq!(entry["org"], "sandbox:org.json");
    // Which live key went: the address alone may stand for several.
    let org = SandboxOrg::load(&env.path().join("org.json")).unwrap();
    let id = entry["key_id"]
        .as_str()
        .expect("the log line names the key id");
    assert!(!org.keys.contains_key(id), "{entry}");
    assert!(
        run.stderr.contains(&format!("Revoked key id {id}.")),
        "{}",
        run.stderr
    );
}

#[test]
fn revoke_deletes_an_unmanaged_key_by_its_live_names() {
    let env = messy();
    let run = env.run(&[
        "revoke",
        "workspace.dev.key.stray",
        "--yes",
        "--org",
        "sandbox:org.json",
    ]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(!key_names(&env).contains(&"stray".to_owned()));
    assert!(
        run.stdout.contains("No policy declares this key"),
        "{}",
        run.stdout
    );
}

#[test]
fn revoke_refuses_what_is_not_a_key() {
    let env = messy();
    let before = key_names(&env);
    for address in ["member.bob@acme.example", "workspace.dev", "team.devs"] {
        let run = env.run(&["revoke", address, "--yes", "--org", "sandbox:org.json"]);
        assert_eq!(run.code, 1, "{address}: {}{}", run.stdout, run.stderr);
        assert!(
            run.stderr.contains("is not an API key's address") && run.stderr.contains("help: "),
            "{}",
            run.stderr
        );
    }
    let run = env.run(&[
        "revoke",
        "workspace.dev.key.nope",
        "--yes",
        "--org",
        "sandbox:org.json",
    ]);
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("has no API key at"), "{}", run.stderr);
    assert_eq!(key_names(&env), before);
}

#[test]
fn revoke_without_a_terminal_needs_yes() {
    let env = messy();
    let run = env.run(&[
        "revoke",
        "workspace.dev.key.ci",
        "--org",
        "sandbox:org.json",
    ]);
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    assert!(run.stderr.contains("pass --yes"), "{}", run.stderr);
    assert!(key_names(&env).contains(&"ci".to_owned()));
}

#[test]
fn revoke_takes_the_apply_lock_and_fails_clearly_while_it_is_held() {
    let env = messy();
    let choice = format!("sandbox:{}", env.path().join("org.json").display());
    let locks = env.path().join("locks");
    let held = tramontane::apply::lock::acquire(
        &locks,
        &choice,
        &tramontane::org::lock_identity(
            &choice,
            "",
            &tramontane::repository::RepositoryRoot::current(),
        )
        .unwrap(),
        std::time::Duration::ZERO,
        |_, _| {},
    )
    .unwrap();
    let revoke = |extra: &[&str]| {
        let mut args = vec![
            "revoke",
            "workspace.dev.key.orphan",
            "--yes",
            "--org",
            choice.as_str(),
        ];
        args.extend_from_slice(extra);
        env.test()
            .args(args)
            .env("TRAMONTANE_LOCK_DIR", &locks)
            .run()
    };
    let run = revoke(&["--lock-timeout", "200ms"]);
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stderr.contains("cannot revoke now: an apply against")
            && run.stderr.contains("holds its lock")
            && run.stderr.contains("nothing was deleted")
            && run
                .stderr
                .contains("help: wait for the apply to finish and run revoke again"),
        "{}",
        run.stderr
    );
    assert!(key_names(&env).contains(&"orphan".to_owned()));

    drop(held);
    let run = revoke(&[]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(!key_names(&env).contains(&"orphan".to_owned()));
}

/// What live names can put into the report is shown as text, wherever the report goes.
#[test]
fn live_names_with_control_characters_stay_escaped_in_csv() {
    let env = TestDir::new();
    seed(
        &env,
        &[Seed::clean("ci"), Seed::clean("=evil\u{1b}[2J\rname")],
        false,
        false,
    );
    policy(&env, &["ci"]);
    let run = audit(&env, &["--format", "csv"]);
    let body = run.stdout.replace("\r\n", "\n");
    for raw in ['\u{1b}', '\r'] {
        assert!(!body.contains(raw), "{raw:?} in {}", run.stdout);
    }
    assert!(body.contains("\\u{1b}[2J\\r"), "{}", run.stdout);
}

#[test]
fn an_unmanaged_key_points_at_its_workspace_entry() {
    let run = audit(&messy(), &["--format", "json"]);
    let findings = json(&run)["findings"].as_array().unwrap().clone();
    let unmanaged = findings
        .iter()
        .find(|finding| finding["id"] == "key-unmanaged:workspace.dev.key.stray")
        .expect("the stray key is unmanaged");
    assert_eq!(
        unmanaged["source"]["file"], "policies/workspaces/dev.yaml",
        "{unmanaged}"
    );
    assert_eq!(unmanaged["source"]["line"], 2, "{unmanaged}");
}

#[test]
fn audit_help_shows_now() {
    let run = TestDir::new().run(&["audit", "--help"]);
    assert!(run.stdout.contains("--now <RFC3339>"), "{}", run.stdout);
}

/// An absolute `--policies` stays a path of the repository in SARIF, never of the machine.
#[test]
fn sarif_locations_are_relative_to_the_repository_root() {
    let env = messy();
    env.git(&["init", "-q"]);
    let policies = env.path().join("policies");
    let run = audit(
        &env,
        &[
            "--format",
            "sarif",
            "--policies",
            policies.to_str().unwrap(),
        ],
    );
    let log = json(&run);
    let results = log["runs"][0]["results"].as_array().unwrap();
    assert!(!results.is_empty());
    for result in results {
        let uri = result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
            .as_str()
            .unwrap_or_else(|| panic!("{result}"));
        assert!(uri.starts_with("policies/"), "{uri}");
    }
    assert!(
        !run.stdout.contains(env.path().to_str().unwrap()),
        "{}",
        run.stdout
    );
}
