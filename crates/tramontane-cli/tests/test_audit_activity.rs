//! `tramontane audit --org mistral` against the fake Admin API: spend against monthly limits
//! (`/v1/admin/usage`, budget-threshold, budget-forecast) and changes made outside
//! tramontane (`/v1/admin/audit-logs`, console-change), beside the key and member findings.
//! The clock is pinned with `--now`.

use std::collections::{BTreeMap, BTreeSet};

use jiff::civil::Date;
use secrecy::ExposeSecret;
use tramontane::model::SpendLimit;
use tramontane::provider::mistral::api::AuditLogOut;
use tramontane::provider::sandbox::SandboxOrg;
use tramontane::provider::{Operation, Outcome};
use tramontane_testkit::fake_api::{FakeApi, Fault};
use tramontane_testkit::orgs::{self, People};
use tramontane_testkit::{Output, TestDir};

const KEY: &str = "test-admin-key-do-not-print";
const DAY_10: &str = "2026-06-10T12:00:00Z";
const DAY_2: &str = "2026-06-02T12:00:00Z";

/// The seeded organization and what a test needs to know of it.
struct Seeded {
    org: SandboxOrg,
    dev: String,
    default: String,
    devs: String,
    /// Every key's plaintext, none of which may show in any output.
    secrets: Vec<String>,
}

/// alice (admin) and bob in team `devs`, carol in it too unless `carol_alone`; workspace
/// `dev` with key `ci`; limits of 1,000 (organization) and 100 (each workspace).
fn seeded(carol_alone: bool) -> Seeded {
    let now = "2026-01-01T12:00:00Z";
    let (mut org, People { alice, bob, carol }) = orgs::three_people(now);
    let default = org.workspaces.keys().next().unwrap().clone();
    let Ok(Outcome::Created(devs)) = org.perform(
        Operation::CreateGroup {
            name: "devs".into(),
            description: String::new(),
        },
        now,
    ) else {
        panic!()
    };
    let mut members = vec![alice.clone(), bob];
    if !carol_alone {
        members.push(carol);
    }
    org.perform(
        Operation::AddGroupMembers {
            group: devs.clone(),
            users: members,
        },
        now,
    )
    .unwrap();
    let Ok(Outcome::Created(dev)) = org.perform(
        Operation::CreateWorkspace {
            name: "dev".into(),
            description: String::new(),
            admin: alice.clone(),
        },
        now,
    ) else {
        panic!()
    };
    let mut seeded = Seeded {
        org,
        dev,
        default,
        devs,
        secrets: Vec::new(),
    };
    seeded.key(
        "ci",
        "2026-05-01",
        Some("2026-09-01"),
        Some("2026-06-01"),
        "alice@acme.example",
    );
    seeded.org.spend_limit.amount = 1000;
    seeded.org.spend_limit.no_monthly_limit = false;
    for workspace in seeded.org.workspaces.values_mut() {
        workspace.spend_limit = Some(SpendLimit::Monthly(100.0));
    }
    seeded
}

impl Seeded {
    fn key(
        &mut self,
        name: &str,
        created: &str,
        expires: Option<&str>,
        last_used: Option<&str>,
        created_by: &str,
    ) {
        let alice = self
            .org
            .users
            .iter()
            .find(|(_, u)| u.email == "alice@acme.example")
            .map(|(id, _)| id.clone())
            .unwrap();
        let Ok(Outcome::Key { id, secret }) = self.org.perform(
            Operation::CreateKey {
                workspace: self.dev.clone(),
                user: alice,
                name: name.into(),
                expiration: None,
                known: Vec::new(),
            },
            "2026-01-01T12:00:00Z",
        ) else {
            panic!()
        };
        self.secrets.push(secret.expose_secret().to_owned());
        let key = self.org.keys.get_mut(&id).unwrap();
        key.created_at = format!("{created}T09:00:00Z");
        key.expiration = expires.map(|d| d.parse().unwrap());
        key.last_used = last_used.map(|d| d.parse().unwrap());
        key.created_by = Some(created_by.into());
    }

    fn spend(&mut self, workspace: &str, day: &str, amount: f64) {
        let workspace = workspace.to_owned();
        self.org
            .record_usage(&workspace, day.parse::<Date>().unwrap(), amount);
    }

    fn event(
        &mut self,
        id: i64,
        at: &str,
        actor: (&str, &[(&str, &str)]),
        what: &str,
        target: (&str, &[(&str, &str)]),
    ) {
        let map = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect()
        };
        let entry = serde_json::json!({
            "created_at": at, "actor_type": actor.0, "actor_metadata": map(actor.1),
            "event_type": what, "event_metadata": {"source": "console"},
            "target_type": target.0, "target_metadata": map(target.1), "log_id": id,
            "organization_uuid": null, "workspace_uuid": null,
        });
        let entry: AuditLogOut = serde_json::from_value(entry).unwrap();
        self.org.audit_log.push(entry);
    }
}

/// The policy: the three members, team `devs`, workspace `dev` with the keys `keys`, and
/// tramontane's admin key named for attribution.
fn policy(env: &TestDir, keys: &[&str]) {
    env.write(
        "policies/organization.yaml",
        "version: 1\n\
         organization:\n  spend_limit: 1000\n\
         audit:\n  apply_admin_key: tramontane-ci\n\
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
        text.push_str(&format!(
            "      {name}:\n        owner: alice@acme.example\n        expires_after_days: 90\n        secret: {{ file: secrets/{name}.key }}\n"
        ));
    }
    env.write("policies/workspaces/dev.yaml", text);
}

fn audit(env: &TestDir, api: &FakeApi, now: &str, extra: &[&str]) -> Output {
    env.test()
        .args(["audit", "--org", "mistral"])
        .args(if extra.contains(&"--fail-on") {
            &[][..]
        } else {
            &["--fail-on", "critical"][..]
        })
        .args(extra)
        .now(now)
        .fake_api(api)
        .env("TRAMONTANE_BACKOFF_MS", "5")
        .run()
}

fn ids(run: &Output) -> BTreeSet<String> {
    let report: serde_json::Value = serde_json::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}{}", run.stdout, run.stderr));
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["id"].as_str().unwrap().to_owned())
        .collect()
}

fn finding(run: &Output, id: &str) -> serde_json::Value {
    let report: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["id"] == id)
        .cloned()
        .unwrap_or_else(|| panic!("no {id} in {}", run.stdout))
}

/// Every rule once: the key findings' keys, carol in no team, an organization without a
/// limit, `dev` at 96 % by day 10 (threshold and forecast), and a console change.
fn messy() -> (TestDir, FakeApi, Vec<String>) {
    let mut seeded = seeded(true);
    for (name, created, expires, last_used, by) in [
        (
            "expiring",
            "2026-05-01",
            Some("2026-06-15"),
            Some("2026-06-09"),
            "alice@acme.example",
        ),
        (
            "expired",
            "2026-05-01",
            Some("2026-06-05"),
            Some("2026-06-09"),
            "alice@acme.example",
        ),
        (
            "forever",
            "2026-05-01",
            None,
            Some("2026-06-09"),
            "alice@acme.example",
        ),
        (
            "ancient",
            "2025-12-01",
            Some("2026-12-01"),
            Some("2026-06-09"),
            "alice@acme.example",
        ),
        (
            "idle",
            "2026-05-01",
            Some("2026-09-01"),
            Some("2026-04-01"),
            "alice@acme.example",
        ),
        (
            "silent",
            "2026-04-01",
            Some("2026-09-01"),
            None,
            "alice@acme.example",
        ),
        (
            "orphan",
            "2026-05-01",
            Some("2026-09-01"),
            Some("2026-06-09"),
            "dave@acme.example",
        ),
        (
            "stray",
            "2026-05-01",
            Some("2026-09-01"),
            Some("2026-06-09"),
            "alice@acme.example",
        ),
    ] {
        seeded.key(name, created, expires, last_used, by);
    }
    seeded.org.spend_limit.no_monthly_limit = true;
    let dev = seeded.dev.clone();
    seeded.spend(&dev, "2026-06-03", 50.0);
    seeded.spend(&dev, "2026-06-09", 46.0);
    seeded.event(
        1,
        "2026-06-08T09:30:00Z",
        (
            "HUMAN",
            &[("email", "bob@acme.example"), ("user_uuid", "u-bob")],
        ),
        "workspace.update",
        (
            "WORKSPACE",
            &[("workspace_uuid", dev.as_str()), ("name", "dev")],
        ),
    );
    let env = TestDir::new();
    policy(
        &env,
        &[
            "ci", "expiring", "expired", "forever", "ancient", "idle", "silent", "orphan",
        ],
    );
    let api = FakeApi::serving(seeded.org, KEY);
    (env, api, seeded.secrets)
}

#[test]
fn every_rule_finds_its_object_over_http() {
    let (env, api, secrets) = messy();
    let run = audit(&env, &api, DAY_10, &["--format", "json"]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
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
        "budget-threshold:workspace.dev",
        "budget-forecast:workspace.dev",
        "console-change:workspace.dev@1",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    assert_eq!(ids(&run), expected);
    let rules: BTreeSet<String> = expected
        .iter()
        .map(|id| id.split(':').next().unwrap().to_owned())
        .collect();
    // spend-unmetered needs the gateway's store beside the org: test_audit_unmetered.
    assert_eq!(
        rules.len() + 1,
        tramontane::hygiene::Rule::ALL.len(),
        "a rule is not covered"
    );
    let change = finding(&run, "console-change:workspace.dev@1");
    assert_eq!(change["source"]["file"], "policies/workspaces/dev.yaml");
    assert_eq!(change["source"]["line"], 2);
    let message = change["message"].as_str().unwrap();
    for part in [
        "`bob@acme.example`",
        "`workspace.update`",
        "2026-06-08T09:30:00Z",
        "source=console",
    ] {
        assert!(message.contains(part), "{message}");
    }
    for format in ["human", "json", "csv", "sarif", "markdown"] {
        let run = audit(&env, &api, DAY_10, &["--format", format]);
        for secret in &secrets {
            assert!(!run.stdout.contains(secret.as_str()) && !run.stderr.contains(secret.as_str()));
        }
        let text = run.stdout.replace(
            &format!("\"{}\"", env!("CARGO_PKG_VERSION")),
            "\"[version]\"",
        );
        insta::assert_snapshot!(format!("every_rule_over_http_{format}"), text);
    }
}

#[test]
fn a_clean_org_over_http_has_no_finding() {
    let mut seeded = seeded(false);
    let (dev, default) = (seeded.dev.clone(), seeded.default.clone());
    seeded.spend(&dev, "2026-06-05", 10.0);
    seeded.spend(&default, "2026-06-05", 1.0);
    // tramontane's own change, by the admin key the policy names.
    seeded.event(
        5,
        "2026-06-08T09:30:00Z",
        ("API_KEY", &[("name", "tramontane-ci")]),
        "api_key.create",
        (
            "API_KEY",
            &[("name", "ci"), ("workspace_uuid", dev.as_str())],
        ),
    );
    let env = TestDir::new();
    policy(&env, &["ci"]);
    let api = FakeApi::serving(seeded.org, KEY);
    let run = audit(&env, &api, DAY_10, &["--fail-on", "low"]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert_eq!(run.stdout, "Audit: no findings on 2026-06-10.\n");
}

#[test]
fn budget_thresholds_at_49_50_80_95_and_the_limit() {
    for (percent, severity) in [
        (49.0, None),
        (50.0, Some("low")),
        (80.0, Some("medium")),
        (95.0, Some("high")),
        (100.0, Some("critical")),
    ] {
        let mut seeded = seeded(false);
        let dev = seeded.dev.clone();
        // 100 is the limit, so the amount is the percentage; split over two days and two
        // records, as real usage is.
        seeded.spend(&dev, "2026-06-01", percent * 0.3);
        seeded.spend(&dev, "2026-06-02", percent * 0.7);
        let env = TestDir::new();
        policy(&env, &["ci"]);
        let api = FakeApi::serving(seeded.org, KEY);
        // Day 2: too early for a forecast, so only the threshold speaks.
        let run = audit(&env, &api, DAY_2, &["--format", "json"]);
        // Only the limit itself reached is at `--fail-on critical`.
        let code = if severity == Some("critical") { 3 } else { 0 };
        assert_eq!(run.code, code, "{}{}", run.stdout, run.stderr);
        let found = ids(&run);
        match severity {
            None => assert!(found.is_empty(), "{percent} %: {found:?}"),
            Some(severity) => {
                assert_eq!(
                    found,
                    BTreeSet::from(["budget-threshold:workspace.dev".to_owned()])
                );
                let finding = finding(&run, "budget-threshold:workspace.dev");
                assert_eq!(finding["severity"], severity, "{percent} %");
                assert_eq!(finding["source"]["file"], "policies/workspaces/dev.yaml");
            }
        }
    }
}

#[test]
fn the_policy_sets_the_thresholds() {
    let mut seeded = seeded(false);
    let dev = seeded.dev.clone();
    seeded.spend(&dev, "2026-06-01", 60.0);
    let env = TestDir::new();
    policy(&env, &["ci"]);
    env.write(
        "policies/audit.yaml",
        "audit:\n  budget_thresholds: [70, 90]\n",
    );
    // `audit:` may be in one file only: move the attribution key there too.
    let organization = std::fs::read_to_string(env.path().join("policies/organization.yaml"))
        .unwrap()
        .replace("audit:\n  apply_admin_key: tramontane-ci\n", "");
    env.write("policies/organization.yaml", organization);
    let api = FakeApi::serving(seeded.org, KEY);
    let run = audit(&env, &api, DAY_2, &["--format", "json"]);
    assert!(ids(&run).is_empty(), "{}{}", run.stdout, run.stderr);
    env.write("policies/audit.yaml", "audit:\n  budget_thresholds: [55]\n");
    let run = audit(&env, &api, DAY_2, &["--format", "json"]);
    assert_eq!(
        finding(&run, "budget-threshold:workspace.dev")["severity"],
        "high"
    );
}

#[test]
fn forecast_waits_three_days_then_projects_the_month() {
    let forecast = |now: &str, spent: f64| {
        let mut seeded = seeded(false);
        let dev = seeded.dev.clone();
        seeded.spend(&dev, "2026-06-01", spent);
        let env = TestDir::new();
        policy(&env, &["ci"]);
        let api = FakeApi::serving(seeded.org, KEY);
        let run = audit(&env, &api, now, &["--format", "json"]);
        assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
        ids(&run)
            .contains("budget-forecast:workspace.dev")
            .then(|| {
                finding(&run, "budget-forecast:workspace.dev")["message"]
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
    };
    // Day 2: 40 in a day and a half would be 800 by the month's end, but it is too early.
    assert_eq!(forecast(DAY_2, 40.0), None);
    // Day 10: 40 in 9.5 days is 126.32 over June's 30.
    let message = forecast(DAY_10, 40.0).expect("a forecast on day 10");
    assert!(message.contains("126.32 EUR"), "{message}");
    assert!(message.contains("in 9.5 days"), "{message}");
    // 30 in 9.5 days is 94.74: under the limit, no finding.
    assert_eq!(forecast(DAY_10, 30.0), None);
}

/// Changes outside tramontane to managed objects are reported with who, when and what;
/// tramontane's own, unmanaged objects, reads and old events are not.
fn attribution_org() -> (TestDir, Seeded) {
    let mut seeded = seeded(false);
    let (dev, default, devs) = (
        seeded.dev.clone(),
        seeded.default.clone(),
        seeded.devs.clone(),
    );
    let human = ("HUMAN", &[("email", "bob@acme.example")][..]);
    seeded.event(
        1,
        "2026-06-08T09:30:00Z",
        human,
        "workspace.update",
        ("WORKSPACE", &[("workspace_uuid", dev.as_str())]),
    );
    seeded.event(
        2,
        "2026-06-08T09:31:00Z",
        ("API_KEY", &[("name", "tramontane-ci")]),
        "api_key.create",
        (
            "API_KEY",
            &[("name", "ci"), ("workspace_uuid", dev.as_str())],
        ),
    );
    seeded.event(
        3,
        "2026-06-08T09:31:00Z",
        ("API_KEY", &[("name", "terraform")]),
        "user_group.member.add",
        ("USER_GROUP", &[("user_group_uuid", devs.as_str())]),
    );
    seeded.event(
        4,
        "2026-06-08T09:31:00Z",
        ("API_KEY", &[("name", "deploy-bot")]),
        "workspace.member.add",
        ("WORKSPACE", &[("workspace_uuid", dev.as_str())]),
    );
    seeded.event(
        5,
        "2026-06-08T09:32:00Z",
        human,
        "workspace.update",
        ("WORKSPACE", &[("workspace_uuid", default.as_str())]),
    );
    seeded.event(
        6,
        "2026-06-08T09:32:00Z",
        human,
        "user.log_in",
        ("USER", &[("email", "bob@acme.example")]),
    );
    seeded.event(
        7,
        "2026-04-01T09:00:00Z",
        human,
        "user_group.update",
        ("USER_GROUP", &[("name", "devs")]),
    );
    seeded.event(
        8,
        "2026-06-09T10:00:00Z",
        ("OTHER", &[]),
        "user.organization.role.update",
        ("USER", &[("email", "Carol@acme.example")]),
    );
    let env = TestDir::new();
    policy(&env, &["ci"]);
    // The apply that made event 4, as its audit log records it.
    env.write(
        ".tramontane/audit.jsonl",
        "{\"time\":\"2026-06-08T09:35:00Z\",\"actor\":\"ci\",\"org\":\"mistral\",\"commit\":null,\"address\":\"workspace.dev.members.bob@acme.example\",\"action\":\"create\",\"result\":\"ok\"}\n",
    );
    (env, seeded)
}

#[test]
fn audit_log_events_are_attributed() {
    let (env, seeded) = attribution_org();
    let api = FakeApi::serving(seeded.org.clone(), KEY);
    let run = audit(&env, &api, DAY_10, &["--format", "json"]);
    let expected = BTreeSet::from([
        "console-change:workspace.dev@1".to_owned(),
        "console-change:team.devs@3".to_owned(),
        "console-change:member.carol@acme.example@8".to_owned(),
    ]);
    assert_eq!(ids(&run), expected, "{}", run.stderr);
    let terraform = finding(&run, "console-change:team.devs@3");
    assert!(
        terraform["message"].as_str().unwrap().starts_with(
            "API key `terraform` made `user_group.member.add` at 2026-06-08T09:31:00Z"
        ),
        "{terraform}"
    );
    assert_eq!(terraform["source"]["file"], "policies/organization.yaml");
    let other = finding(&run, "console-change:member.carol@acme.example@8");
    assert!(
        other["message"]
            .as_str()
            .unwrap()
            .starts_with("an actor the log does not name made"),
        "{other}"
    );

    // Without the apply's log, the deploy bot's change is no longer explained.
    std::fs::remove_file(env.path().join(".tramontane/audit.jsonl")).unwrap();
    let run = audit(&env, &api, DAY_10, &["--format", "json"]);
    assert!(ids(&run).contains("console-change:workspace.dev@4"));

    // Read two entries a page, `after` inclusive or not, through 429s with and without
    // Retry-After: the same events, though three share one instant.
    for inclusive in [false, true] {
        let (env, seeded) = attribution_org();
        let api = FakeApi::serving(seeded.org, KEY);
        api.clamp_pages(Some(2));
        api.audit_log_after_inclusive(inclusive);
        api.fail_next(
            "/v1/admin/audit-logs",
            Fault::Status {
                status: 429,
                retry_after: Some(0),
            },
        );
        api.fail_next(
            "/v1/admin/audit-logs",
            Fault::Status {
                status: 429,
                retry_after: None,
            },
        );
        api.fail_next(
            "/v1/admin/usage",
            Fault::Status {
                status: 429,
                retry_after: None,
            },
        );
        let run = audit(&env, &api, DAY_10, &["--format", "json"]);
        assert_eq!(ids(&run), expected, "inclusive {inclusive}: {}", run.stderr);
    }
}

#[test]
fn usage_that_cannot_be_priced_is_an_error_naming_the_call() {
    let mut seeded = seeded(false);
    let dev = seeded.dev.clone();
    seeded.spend(&dev, "2026-06-01", 10.0);
    seeded.org.usage.prices.clear();
    let env = TestDir::new();
    policy(&env, &["ci"]);
    let api = FakeApi::serving(seeded.org, KEY);
    let run = audit(&env, &api, DAY_10, &[]);
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    assert!(run.stderr.contains("GET /v1/admin/usage"), "{}", run.stderr);
    assert!(
        run.stderr.contains("has no price in `prices`"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("help: "), "{}", run.stderr);
}

/// The real server keeps microseconds and truncates a finer bound: a window of ±1 ns
/// around an instant came back empty (exclusive bounds) or with the instant again
/// (inclusive). Several entries in one microsecond, one whose nanoseconds the server drops,
/// two a page, under either convention: all are read.
#[test]
fn a_server_that_keeps_microseconds_is_read_whole_with_either_bound_convention() {
    for inclusive in [false, true] {
        let (env, mut seeded) = attribution_org();
        let dev = seeded.dev.clone();
        for (id, at) in [
            (11, "2026-06-08T10:00:00.000001Z"),
            (12, "2026-06-08T10:00:00.000001Z"),
            (13, "2026-06-08T10:00:00.000001Z"),
            (14, "2026-06-08T10:00:00.000002Z"),
            (15, "2026-06-08T10:00:00.000002900Z"),
            (16, "2026-06-08T10:00:00.5Z"),
        ] {
            seeded.event(
                id,
                at,
                ("HUMAN", &[("email", "bob@acme.example")]),
                "workspace.update",
                ("WORKSPACE", &[("workspace_uuid", dev.as_str())]),
            );
        }
        let api = FakeApi::serving(seeded.org, KEY);
        api.clamp_pages(Some(2));
        api.audit_log_after_inclusive(inclusive);
        let run = audit(&env, &api, DAY_10, &["--format", "json"]);
        assert_eq!(run.code, 0, "inclusive {inclusive}: {}", run.stderr);
        let ids = ids(&run);
        for id in [1, 11, 12, 13, 14, 15, 16] {
            assert!(
                ids.contains(&format!("console-change:workspace.dev@{id}")),
                "inclusive {inclusive}: event {id} missing from {ids:?}"
            );
        }
    }
}

#[test]
fn more_entries_in_one_instant_than_two_pages_fail_the_read() {
    let (env, seeded) = attribution_org();
    let api = FakeApi::serving(seeded.org, KEY);
    // Three entries share 09:31: one a page cannot read them whole.
    api.clamp_pages(Some(1));
    let run = audit(&env, &api, DAY_10, &[]);
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stderr.contains("GET /v1/admin/audit-logs")
            && run
                .stderr
                .contains("more entries share the instant 2026-06-08T09:31:00Z"),
        "{}",
        run.stderr
    );
    // The cause is the server's, not a race: re-running is not offered as the fix.
    assert!(
        !run.stderr.contains("the list changed while it was read")
            && run.stderr.contains("re-running will not help"),
        "{}",
        run.stderr
    );
}

#[test]
fn the_organization_is_judged_against_its_own_limit() {
    let mut seeded = seeded(false);
    seeded.org.spend_limit.amount = 100;
    let dev = seeded.dev.clone();
    seeded.spend(&dev, "2026-06-01", 85.0);
    let env = TestDir::new();
    policy(&env, &["ci"]);
    let api = FakeApi::serving(seeded.org, KEY);
    let run = audit(&env, &api, DAY_2, &["--format", "json"]);
    let organization = finding(&run, "budget-threshold:organization");
    assert_eq!(organization["severity"], "medium");
    // The line that sets the limit: `spend_limit: 1000` under `organization:`.
    assert_eq!(organization["source"]["file"], "policies/organization.yaml");
    assert_eq!(organization["source"]["line"], 3);
    assert!(
        organization["message"]
            .as_str()
            .unwrap()
            .contains("the organization has spent 85.00 EUR this month, 85.0 %"),
        "{organization}"
    );
    assert_eq!(
        finding(&run, "budget-threshold:workspace.dev")["severity"],
        "medium"
    );
}

#[test]
fn a_broken_apply_audit_log_is_an_error_naming_its_line() {
    let (env, seeded) = attribution_org();
    env.write(
        ".tramontane/audit.jsonl",
        "{\"time\": \"yesterday\", \"address\": \"workspace.dev\"}\n",
    );
    let api = FakeApi::serving(seeded.org, KEY);
    let run = audit(&env, &api, DAY_10, &[]);
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stderr
            .contains("audit.jsonl:1: `time` is `yesterday`, not an RFC 3339 time")
            && run.stderr.contains("help: "),
        "{}",
        run.stderr
    );
}
