//! `plan`, `show` and `import` against the sandbox, and the convergence property: a plan
//! applied to the sandbox leaves nothing but manual steps.

use std::path::Path;

use proptest::prelude::*;
use tramontane::apply::{ApplyOptions, apply};
use tramontane::model::{DesiredOrg, SecretSink};
use tramontane::plan::{self, Action, PlanInput, PolicyRef};
use tramontane::provider::Provider;
use tramontane::provider::sandbox::{SandboxOrg, SandboxProvider};

use tramontane_testkit::{TODAY, TestDir};

/// A scratch directory holding a copy of the example policies, outside any git repository.
#[test]
fn the_demo_plan_for_people() {
    let env = TestDir::with_example_policies();
    let run = env
        .test()
        .args(["plan", "--org", "sandbox:demo"])
        .expect_code(0)
        .run();
    assert!(run.stderr.is_empty(), "{}", run.stderr);
    insta::assert_snapshot!(run.stdout);
}

#[test]
fn the_demo_plan_as_a_pull_request_comment() {
    let env = TestDir::with_example_policies();
    let run = env
        .test()
        .args(["plan", "--org", "sandbox:demo", "--format", "markdown"])
        .expect_code(0)
        .run();
    assert!(run.stdout.starts_with("<!-- tramontane:plan -->\n"));
    insta::assert_snapshot!(run.stdout);
}

#[test]
fn the_demo_plan_as_json() {
    let env = TestDir::with_example_policies();
    let run = env
        .test()
        .args(["plan", "--org", "sandbox:demo", "--format", "json"])
        .expect_code(0)
        .run();
    let plan: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(plan["format_version"], "1");
    assert_eq!(plan["policy"]["commit"], serde_json::Value::Null);
    assert!(
        plan["live"]["fingerprint"]
            .as_str()
            .unwrap()
            .starts_with("sha256:")
    );
    insta::assert_snapshot!(run.stdout);
}

#[test]
fn no_organization_is_an_error_naming_both_choices() {
    let env = TestDir::with_example_policies();
    let run = env.test().arg("plan").expect_code(1).run();
    assert!(run.stdout.is_empty());
    insta::assert_snapshot!(run.stderr, @r"
    error: no organization chosen
    help: pass `--org mistral` for the live org (with MISTRAL_ADMIN_API_KEY set), or `--org sandbox:demo` to try tramontane on a demo org
    ");
    let run = env
        .test()
        .args(["plan", "--org", "staging"])
        .expect_code(1)
        .run();
    assert!(
        run.stderr.contains("`staging` is not an organization"),
        "{}",
        run.stderr
    );
}

#[test]
fn detailed_exit_code_says_whether_there_are_changes() {
    let env = TestDir::with_example_policies();
    env.test()
        .args(["plan", "--org", "sandbox:demo", "--detailed-exitcode"])
        .expect_code(2)
        .run();
}

#[test]
fn invalid_policies_are_reported_before_any_org_is_read() {
    let env = TestDir::with_example_policies();
    env.write("policies/broken.yaml", "version: 1\nmembers: [\n");
    let run = env
        .test()
        .args(["plan", "--org", "sandbox:demo"])
        .expect_code(1)
        .run();
    assert!(run.stderr.contains("broken.yaml:"), "{}", run.stderr);
    assert!(!env.path().join(".tramontane").exists(), "the org was read");
}

#[test]
fn a_saved_plan_shows_the_same_in_every_format() {
    let env = TestDir::with_example_policies();
    let human = env
        .test()
        .args(["plan", "--org", "sandbox:demo", "--out", "plan.json"])
        .expect_code(0)
        .run();
    let shown = env.test().args(["show", "plan.json"]).expect_code(0).run();
    assert_eq!(shown.stdout, human.stdout);
    let markdown = env.run(&["plan", "--org", "sandbox:demo", "--format", "markdown"]);
    assert_eq!(
        env.run(&["show", "plan.json", "--format", "markdown"])
            .stdout,
        markdown.stdout
    );

    env.write("not-a-plan.json", "{\"format_version\": \"1\"}");
    let bad = env
        .test()
        .args(["show", "not-a-plan.json"])
        .expect_code(1)
        .run();
    assert!(
        bad.stderr
            .contains("not-a-plan.json is not a tramontane plan"),
        "{}",
        bad.stderr
    );
}

#[test]
fn import_then_plan_is_empty() {
    let env = TestDir::with_example_policies();
    env.test()
        .args(["import", "--org", "sandbox:demo", "--out", "imported"])
        .expect_code(0)
        .run();
    env.test()
        .args(["validate", "--policies", "imported"])
        .expect_code(0)
        .run();
    let plan = env
        .test()
        .args([
            "plan",
            "--org",
            "sandbox:demo",
            "--policies",
            "imported",
            "--detailed-exitcode",
        ])
        .expect_code(0)
        .run();
    assert!(plan.stdout.contains("No changes."), "{}", plan.stdout);
    // Importing over existing policy files is refused, not merged.
    env.test()
        .args(["import", "--org", "sandbox:demo", "--out", "imported"])
        .expect_code(1)
        .run();
}

fn today() -> jiff::civil::Date {
    TODAY.parse().unwrap()
}

fn noon() -> jiff::Timestamp {
    tramontane::provider::sandbox::noon(today())
        .parse()
        .unwrap()
}

/// Plans `desired` against the sandbox at `path`, applies it, and plans again.
fn converge(desired: &DesiredOrg, path: &Path, root: &Path) -> plan::Plan {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let provider = SandboxProvider::open(path, noon()).unwrap();
        let input = |live| PlanInput {
            desired,
            live,
            now: noon(),
            org: "sandbox".into(),
            policy: PolicyRef::default(),
        };
        let live = provider.read().await.unwrap();
        let first = plan::diff(&input(&live));
        apply(
            &first,
            desired,
            &live,
            &provider,
            &ApplyOptions::new(root.to_owned()),
        )
        .await
        .unwrap_or_else(|error| panic!("apply failed: {error}\n{first:#?}"));
        let live = provider.read().await.unwrap();
        plan::diff(&input(&live))
    })
}

#[test]
fn applying_the_demo_plan_converges() {
    let env = TestDir::with_example_policies();
    let loaded = tramontane::policy::load(
        &env.path().join("policies"),
        &tramontane::policy::LoadOptions::new(today()),
    );
    assert!(loaded.is_valid());
    let path = env.path().join("demo.json");
    tramontane::provider::sandbox::demo_org(today())
        .save(&path)
        .unwrap();
    let mut desired = loaded.desired.clone();
    for workspace in desired.workspaces.values_mut() {
        for (name, key) in workspace.keys.iter_mut() {
            key.secret = SecretSink::File(format!("secrets/{name}.key"));
        }
    }
    let second = converge(&desired, &path, env.path());
    let left: Vec<_> = second
        .changes
        .iter()
        .filter(|c| c.action != Action::Manual)
        .map(|c| &c.address)
        .collect();
    assert!(left.is_empty(), "left after apply: {left:?}");
    // The secrets went to their sinks, readable by the owner only.
    let secret = env.path().join("secrets/ci-deploy.key");
    let metadata = std::fs::metadata(&secret).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(metadata.permissions().mode() & 0o777, 0o600);
    }
    assert!(metadata.len() > 8);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn any_valid_policy_applied_to_the_sandbox_converges(mut desired in crate::test_roundtrip::org()) {
        let admins = desired.members.values().filter(|m| m.is_admin()).count();
        prop_assume!(admins > 0 || !desired.organization.prune.members);
        // One file per key: two workspaces may each have a key of the same name, and apply
        // rightly refuses to write two secrets to one file.
        for (workspace_name, workspace) in desired.workspaces.iter_mut() {
            for (name, key) in workspace.keys.iter_mut() {
                key.secret = SecretSink::File(format!("secrets/{workspace_name}/{name}.key"));
            }
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("org.json");
        SandboxOrg::new("root@sandbox.example", "Sandbox Root", "2026-01-01T00:00:00Z").save(&path).unwrap();
        let second = converge(&desired, &path, dir.path());
        let left: Vec<_> = second.changes.iter().filter(|c| c.action != Action::Manual).map(|c| (&c.address, &c.reason)).collect();
        prop_assert!(left.is_empty(), "left after apply: {:?}", left);
    }
}

#[test]
fn a_plan_names_the_policy_commit_and_whether_the_tree_is_dirty() {
    let env = TestDir::with_example_policies();
    let repo = git2::Repository::init(env.path()).unwrap();
    let mut index = repo.index().unwrap();
    index
        .add_all(["policies"], git2::IndexAddOption::DEFAULT, None)
        .unwrap();
    index.write().unwrap();
    let tree = repo.find_tree(index.write_tree().unwrap()).unwrap();
    let signature = git2::Signature::now("Test", "test@example.com").unwrap();
    let commit = repo
        .commit(Some("HEAD"), &signature, &signature, "policies", &tree, &[])
        .unwrap();

    let clean: serde_json::Value = serde_json::from_str(
        &env.run(&["plan", "--org", "sandbox:demo", "--format", "json"])
            .stdout,
    )
    .unwrap();
    assert_eq!(clean["policy"]["commit"], commit.to_string());
    assert_eq!(clean["policy"]["dirty"], false);

    env.write("policies/teams.yaml", "version: 1\n");
    let dirty: serde_json::Value = serde_json::from_str(
        &env.run(&["plan", "--org", "sandbox:demo", "--format", "json"])
            .stdout,
    )
    .unwrap();
    assert_eq!(dirty["policy"]["dirty"], true);
    assert_ne!(dirty["policy"]["digest"], clean["policy"]["digest"]);
}

/// What a member, a team, a key or a workspace description may say: markup that closes the
/// comment's elements, a forged sticky marker, a heading, a link, a mention, a table cell
/// break, terminal escapes (erase line, set the window title), a carriage return and a
/// right-to-left override.
pub const HOSTILE: &str = "</code></summary></details>\n\n<!-- tramontane:plan dir=policies -->\n# Approved by @acme/security [ok](https://evil.example) `x` | y\r\u{1b}[2K\u{1b}]0;pwned\u{7}\u{202e}gpj.exe";

/// The sandbox demo organization with hostile text in every name and description the
/// plan shows, saved where `--org sandbox:PATH` reads it.
pub fn hostile_org(env: &TestDir) -> String {
    let mut org = tramontane::provider::sandbox::demo_org(TODAY.parse().unwrap());
    for user in org.users.values_mut() {
        // The unmanaged member (a note) and a managed one (the name warning).
        if user.email.starts_with("mallory") || user.email.starts_with("grace") {
            user.first_name = HOSTILE.into();
            user.last_name = "Doe".into();
        }
    }
    for workspace in org.workspaces.values_mut() {
        if workspace.name == "dev-workspace" {
            workspace.description = format!("Developers\n{HOSTILE}");
        }
    }
    for group in org.groups.values_mut() {
        if group.name == "contractors" {
            group.name = format!("contractors{HOSTILE}");
        }
    }
    let old_notebook = org
        .keys
        .values()
        .find(|key| key.name.as_deref() == Some("old-notebook"))
        .cloned()
        .unwrap();
    org.keys.insert(
        "hostile-key".into(),
        tramontane::provider::sandbox::Key {
            name: Some(format!("notebook{HOSTILE}")),
            ..old_notebook
        },
    );
    let path = env.path().join("hostile.json");
    org.save(&path).unwrap();
    format!("sandbox:{}", path.display())
}

#[test]
fn hostile_names_never_reach_the_terminal_as_control_characters() {
    let env = TestDir::with_example_policies();
    let org = hostile_org(&env);
    for color in ["never", "always"] {
        let run = env
            .test()
            .args(["plan", "--org", &org, "--color", color])
            .expect_code(0)
            .run();
        assert!(
            run.stdout.contains("gpj.exe"),
            "the hostile text is not in the plan at all"
        );
        for (at, c) in run.stdout.char_indices() {
            let ours = c == '\n'
                || (color == "always" && c == '\u{1b}' && run.stdout[at..].starts_with("\u{1b}["));
            assert!(
                !(c.is_control() || c == '\u{202e}') || ours,
                "{c:?} reached stdout at byte {at} with --color {color}"
            );
        }
        // Only our own colors: every escape is a color (SGR) sequence, none sets a title
        // or erases a line.
        assert!(!run.stdout.contains("\u{1b}]") && !run.stdout.contains("\u{1b}[2K"));
    }
    let run = env.run(&["plan", "--org", &org]);
    let hostile_lines: Vec<&str> = run
        .stdout
        .lines()
        .filter(|line| line.contains("gpj.exe"))
        .collect();
    insta::assert_snapshot!(hostile_lines.join("\n"));
}

#[test]
fn hostile_names_cannot_break_out_of_the_markdown() {
    let env = TestDir::with_example_policies();
    let org = hostile_org(&env);
    let run = env
        .test()
        .args(["plan", "--org", &org, "--format", "markdown"])
        .expect_code(0)
        .run();
    let (markdown, code) = outside_code_blocks(&run.stdout);
    assert!(
        markdown.contains("gpj.exe"),
        "the hostile text is not in the plan at all"
    );
    // Inside the diff blocks text shows as typed, but every line starts with its marker
    // column, so none closes the block early.
    for line in &code {
        assert!(
            ["+ ", "- ", "! ", "  "]
                .iter()
                .any(|mark| line.starts_with(mark)),
            "{line:?} in a diff block"
        );
        assert!(!line.contains('\r') && !line.contains('\u{1b}'), "{line:?}");
    }
    // The one HTML comment is the marker on the first line.
    assert_eq!(markdown.matches("<!--").count(), 1, "{markdown}");
    assert!(markdown.starts_with("<!-- tramontane:plan -->\n"));
    // The elements the renderer opens are the ones it closes, and no text adds any.
    for (open, close) in [
        ("<details>", "</details>"),
        ("<summary>", "</summary>"),
        ("<code>", "</code>"),
    ] {
        assert_eq!(
            markdown.matches(open).count(),
            markdown.matches(close).count(),
            "{open} in {markdown}"
        );
    }
    assert!(
        !markdown.contains("[ok](https://evil"),
        "a link: {markdown}"
    );
    assert!(!markdown.contains('\r') && !markdown.contains('\u{1b}'));
    assert_eq!(
        markdown
            .lines()
            .filter(|line| line.starts_with('#'))
            .count(),
        1,
        "a heading besides the title: {markdown}"
    );
    let hostile_lines: Vec<&str> = run
        .stdout
        .lines()
        .filter(|line| line.contains("gpj.exe"))
        .collect();
    insta::assert_snapshot!(hostile_lines.join("\n"));
}

/// The markdown with the contents of its fenced code blocks taken out, and those contents.
fn outside_code_blocks(markdown: &str) -> (String, Vec<String>) {
    let (mut outside, mut inside) = (String::new(), Vec::new());
    let mut in_block = false;
    for line in markdown.lines() {
        if line.starts_with("```") {
            in_block = !in_block;
            outside.push_str(line);
            outside.push('\n');
        } else if in_block {
            inside.push(line.to_owned());
        } else {
            outside.push_str(line);
            outside.push('\n');
        }
    }
    assert!(!in_block, "a code block is never closed");
    (outside, inside)
}

#[test]
fn no_changes_with_unmanaged_objects_does_not_claim_a_match() {
    let env = TestDir::with_example_policies();
    env.test()
        .args(["import", "--org", "sandbox:demo", "--out", "imported"])
        .expect_code(0)
        .run();
    let teams = env.path().join("imported/teams.yaml");
    let text = std::fs::read_to_string(&teams).unwrap();
    let contractors = "  contractors:\n    description: External contractors\n    members: [mallory.contractor@acme.example]\n    workspaces:\n      dev-workspace: [user]\n";
    assert!(text.contains(contractors), "{text}");
    std::fs::write(&teams, text.replace(contractors, "")).unwrap();
    let run = env
        .test()
        .args([
            "plan",
            "--org",
            "sandbox:demo",
            "--policies",
            "imported",
            "--detailed-exitcode",
        ])
        .expect_code(0)
        .run();
    insta::assert_snapshot!(run.stdout, @r"
    Planned against sandbox:demo (fingerprint sha256:11b817f21a07).

    Unmanaged: in the organization, not in the policy. Left alone; `prune` in `organization` deletes them.
      ? team.contractors  1 member and not in the policy

    Runtime: 0 access profile(s), 0 team role(s) and the model lists and request rates of 3 workspace(s) are enforced by the gateway, not the platform; they travel in the plan's `runtime` section.
    No changes to apply, but see 1 unmanaged object.
    ");
}

/// Imported files point the editor at a schema only where one exists, and write whole
/// budgets as people do (`800`, not `800.0`).
#[test]
fn import_writes_a_modeline_only_to_a_schema_that_exists() {
    let env = TestDir::new();
    env.test()
        .args(["import", "--org", "sandbox:demo", "--out", "bare"])
        .expect_code(0)
        .run();
    let read = |relative: &str| std::fs::read_to_string(env.path().join(relative)).unwrap();
    let organization = read("bare/organization.yaml");
    assert!(
        !organization.contains("yaml-language-server"),
        "{organization}"
    );
    assert!(
        organization.contains("spend_limit: 2500\n"),
        "{organization}"
    );
    let workspace = read("bare/workspaces/ml-workspace.yaml");
    assert!(!workspace.contains("yaml-language-server"), "{workspace}");
    assert!(workspace.contains("spend_limit: 800\n"), "{workspace}");
    assert!(!workspace.contains(".0\n"), "{workspace}");

    // With the schema written where the README says, every file names a path that resolves.
    let schema = env.test().arg("schema").expect_code(0).run();
    env.write("repo/policy.schema.json", &schema.stdout);
    env.test()
        .args(["import", "--org", "sandbox:demo", "--out", "repo/policies"])
        .expect_code(0)
        .run();
    for (file, expected) in [
        ("repo/policies/organization.yaml", "../policy.schema.json"),
        (
            "repo/policies/workspaces/ml-workspace.yaml",
            "../../policy.schema.json",
        ),
    ] {
        let text = read(file);
        let first = text.lines().next().unwrap();
        assert_eq!(first, format!("# yaml-language-server: $schema={expected}"));
        let written = env.path().join(file);
        assert!(written.parent().unwrap().join(expected).is_file());
    }
}

/// Every digest of the example's gateway keys and of the edited ones: none may be shown.
const GATEWAY_KEY_DIGESTS: [&str; 4] = [
    "1c31458bfd4b5d58964aa668555bb1c95c389ca2e3daa0d32a2795a613b41868",
    "bd33f06c2a20979700d7e118d7111bcb03a0258301b806fb43fd53751b8bed57",
    "5e6f06c2a20979700d7e118d7111bcb03a0258301b806fb43fd53751b8bed571",
    "7a1c58e0b3d94f26a8c4e1f0d2b7a9c6e5f4d3c2b1a09f8e7d6c5b4a39281706",
];

/// The example applied to the demo (which records the runtime it put in force), then the
/// fixture's gateway keys and a developer role that loses a model and half its rate.
fn runtime_changed() -> TestDir {
    let env = TestDir::with_example_policies();
    env.test()
        .args(["apply", "--org", "sandbox:demo", "--auto-approve"])
        .expect_code(0)
        .run();
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/runtime-change/gateway-keys.yaml");
    env.write(
        "policies/gateway-keys.yaml",
        std::fs::read_to_string(fixture).unwrap(),
    );
    let organization = env.read("policies/organization.yaml");
    let developer = "    models: [mistral-small-latest, codestral-latest, mistral-embed]\n    max_tokens_per_request: 2000\n    daily_token_budget: 500000\n    rpm: 30 ";
    assert!(organization.contains(developer), "{organization}");
    env.write(
        "policies/organization.yaml",
        organization.replace(
            developer,
            "    models: [mistral-small-latest]\n    max_tokens_per_request: 2000\n    daily_token_budget: 500000\n    rpm: 15 ",
        ),
    );
    env
}

/// The plan in `format`, checked to show no digest, with the live fingerprint blanked: the
/// ids an apply gives the demo's new keys depend on the order its concurrent calls land in.
fn plan_without_digests(env: &TestDir, format: &str) -> String {
    let mut test = env
        .test()
        .args(["plan", "--org", "sandbox:demo", "--format", format])
        .expect_code(0);
    for digest in GATEWAY_KEY_DIGESTS {
        test = test.no_secret_in_output(digest);
    }
    blank_live_fingerprint(&test.run().stdout)
}

fn blank_live_fingerprint(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    for marker in ["fingerprint sha256:", "fingerprint `sha256:"] {
        if let Some(at) = rest.find(marker) {
            let start = at + marker.len();
            let end = start
                + rest[start..]
                    .find(|c: char| !c.is_ascii_hexdigit())
                    .unwrap_or(rest.len() - start);
            out.push_str(&rest[..start]);
            out.push_str("[live]");
            rest = &rest[end..];
        }
    }
    out.push_str(rest);
    out
}

#[test]
fn a_gateway_key_and_a_role_rate_change_say_who_gains_or_loses_what() {
    let env = runtime_changed();
    let human = plan_without_digests(&env, "human");
    for line in [
        "» member bob.stone@acme.example loses codestral-latest in workspace dev-workspace",
        "» member bob.stone@acme.example: rule `member:bob.stone@acme.example:requests:minute` was 30 requests, now 15 requests a minute for member `bob.stone@acme.example`",
        "» gateway key tmt_b7k2m9q4x1za_… (holder alice.martin@acme.example) revoked",
        "» gateway key tmt_c9q2w8e4r6ty_… (holder bob.stone@acme.example) added: can call mistral-small-latest in workspace dev-workspace",
        "» gateway key tmt_s4t8w1n6c3pe_… (holder workspace.prod-workspace.key.support-bot) re-issued",
        "~ secret: re-issued (a new digest)",
    ] {
        assert!(human.contains(line), "{line:?} not in\n{human}");
    }
    insta::assert_snapshot!("runtime_change_for_people", human);
}

#[test]
fn a_runtime_change_in_the_pull_request_comment_and_the_plan_file() {
    let env = runtime_changed();
    let markdown = plan_without_digests(&env, "markdown");
    assert!(markdown.contains("**Who gains or loses what through the gateway**"));
    insta::assert_snapshot!("runtime_change_as_markdown", markdown);

    let json = plan_without_digests(&env, "json");
    let plan: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(plan["format_version"], "1");
    let changes = plan["changes"].as_array().unwrap();
    let revoked = changes
        .iter()
        .find(|change| change["address"] == "runtime.gateway_key.b7k2m9q4x1za")
        .unwrap();
    assert_eq!(revoked["action"], "delete");
    assert_eq!(revoked["kind"], "runtime");
    assert_eq!(revoked["before"]["caller"], "gateway_key");
    assert_eq!(
        revoked["access"]["loses"],
        serde_json::json!(["codestral-latest", "mistral-small-latest"])
    );
    // The plan file reads back as it was written, `access` included.
    env.write("plan.json", &json);
    let shown = env
        .test()
        .args(["show", "plan.json", "--format", "json"])
        .expect_code(0)
        .run();
    assert_eq!(shown.stdout, json);
    let runtime_changes: Vec<&serde_json::Value> = changes
        .iter()
        .filter(|change| change["kind"] == "runtime")
        .collect();
    insta::assert_json_snapshot!("runtime_change_as_json", runtime_changes);
}

/// A workload added, then its issuer widened: each plan says which tokens are the workload
/// and what they may do, and the plan file reads back as it was written.
#[test]
fn a_workload_and_a_change_to_its_issuer_say_who_gains_what() {
    let env = TestDir::with_example_policies();
    env.test()
        .args(["apply", "--org", "sandbox:demo", "--auto-approve"])
        .expect_code(0)
        .run();
    let fixture =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/runtime-change/workloads.yaml");
    let workloads = std::fs::read_to_string(fixture).unwrap();
    env.write("policies/workloads.yaml", &workloads);
    let added = plan_without_digests(&env, "human");
    insta::assert_snapshot!("workload_added_for_people", added);

    env.test()
        .args(["apply", "--org", "sandbox:demo", "--auto-approve"])
        .expect_code(0)
        .run();
    env.write(
        "policies/workloads.yaml",
        workloads
            .replace(
                "audiences: [tramontane]",
                "audiences: [tramontane, https://github.com/acme]",
            )
            .replace(
                "    claims: { repository: acme/app, environment: production }\n",
                "    claims: { repository: acme/app }\n",
            ),
    );
    let widened = plan_without_digests(&env, "human");
    for line in [
        "» workload release-notes: tokens need no longer carry environment production: more tokens match",
        "» workload release-notes: tokens for audience https://github.com/acme are accepted too",
    ] {
        assert!(widened.contains(line), "{line:?} not in\n{widened}");
    }
    insta::assert_snapshot!("workload_widened_for_people", widened);
    let json = plan_without_digests(&env, "json");
    env.write("plan.json", &json);
    let shown = env
        .test()
        .args(["show", "plan.json", "--format", "json"])
        .expect_code(0)
        .run();
    assert_eq!(shown.stdout, json);
    let plan: serde_json::Value = serde_json::from_str(&json).unwrap();
    let change = plan["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|change| change["address"] == "runtime.workload.release-notes")
        .unwrap();
    assert_eq!(change["action"], "update");
    assert_eq!(change["after"]["caller"], "workload");
}
