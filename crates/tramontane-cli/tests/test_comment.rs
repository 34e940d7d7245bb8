//! `tramontane comment` against a fake GitHub API on loopback: the sticky comment created,
//! found again and updated, split when long, shrunk again, and every failure named without
//! the token.

use axum::http::Method;
use serde_json::{Value, json};
use tramontane::plan::Plan;

use tramontane_testkit::fake_github::{BODY_LIMIT, BOT, FakeComment, FakeGitHub};
use tramontane_testkit::{Output, Test, TestDir};

const TOKEN: &str = "ghs_FAKEtoken0123456789abcdefXYZ";
const PR: &str = "5";

/// A `tramontane comment` run against `github`, sending `TOKEN`.
fn comment(env: &TestDir, github: &FakeGitHub, args: &[&str]) -> Output {
    comment_on_the_pr(env)
        .env("GITHUB_TOKEN", TOKEN)
        .env("GITHUB_API_URL", &github.url)
        .args(args)
        .run()
}

/// `tramontane comment` on pull request 5 of acme/policies, with no GitHub settings (the
/// runner's own never leak in) and quick retries; the token never shows.
fn comment_on_the_pr(env: &TestDir) -> Test {
    env.test()
        .args(["comment", "--repo", "acme/policies", "--pr", PR])
        .env("TRAMONTANE_BACKOFF_MS", "1")
        .no_secret_in_output(TOKEN)
}

/// A plan with `creates` new keys in one workspace, and one unmanaged member.
fn plan(creates: usize) -> Value {
    let changes: Vec<Value> = (0..creates)
        .map(|i| {
            json!({
                "address": format!("workspace.dev-workspace.key.service-{i:04}"),
                "kind": "api_key", "action": "create", "enforcement": "platform",
                "reason": "in the policy, not in the organization",
                "before": null,
                "after": {"workspace": "dev-workspace", "name": format!("service-{i:04}"),
                          "owner": "bob@acme.example", "expires_after_days": 90,
                          "secret": format!("file secrets/service-{i:04}.key")}
            })
        })
        .collect();
    json!({
        "format_version": "1",
        "policy": {"commit": "0123456789abcdef0123456789abcdef01234567", "dirty": false, "digest": "sha256:00"},
        "live": {"org": "mistral", "fingerprint": "sha256:5e1f0c2d3b4a59687766554433221100ffeeddccbbaa"},
        "summary": {"create": creates, "update": 0, "delete": 0, "replace": 0, "rotate": 0, "manual": 0},
        "changes": changes,
        "unmanaged": [{"address": "member.mallory@acme.example", "kind": "member", "note": "not in the policy"}],
        "warnings": [],
        "runtime": {"roles": {}, "teams": {}, "workspaces": {}}
    })
}

fn write_plan(env: &TestDir, name: &str, plan: &Value) -> Plan {
    env.write(name, serde_json::to_string_pretty(plan).unwrap());
    serde_json::from_value(plan.clone()).unwrap()
}

fn markdown(plan: &Plan) -> String {
    tramontane::render::plan::markdown_body(plan)
}

fn ours(github: &FakeGitHub) -> Vec<FakeComment> {
    github
        .comments(5)
        .into_iter()
        .filter(|c| c.body.starts_with("<!-- tramontane:plan dir="))
        .collect()
}

#[test]
fn the_first_run_creates_the_comment_and_later_runs_update_it_in_place() {
    let env = TestDir::new();
    let github = FakeGitHub::start(TOKEN);
    github.add_comment(5, "alice", "Looks good to me");

    let first = write_plan(&env, "plan.json", &plan(2));
    let run = comment(&env, &github, &["--plan", "plan.json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    insta::assert_snapshot!(run.stdout, @"Plan comment for `policies` on acme/policies#5: created https://github.test/acme/policies/pull/5#issuecomment-1002");
    let posted = ours(&github);
    assert_eq!(posted.len(), 1);
    assert_eq!(
        posted[0].body,
        format!(
            "<!-- tramontane:plan dir=policies -->\n{}",
            markdown(&first)
        )
    );
    assert!(!posted[0].body.contains(TOKEN));
    // One marker, naming the directory: a second, generic one was noise in every comment.
    assert_eq!(posted[0].body.matches("<!-- tramontane:plan").count(), 1);

    // The next push: one more key. The same comment changes; nothing new is posted.
    let second = write_plan(&env, "plan.json", &plan(3));
    github.clear_log();
    let run = comment(&env, &github, &["--plan", "plan.json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    insta::assert_snapshot!(run.stdout, @"Plan comment for `policies` on acme/policies#5: updated https://github.test/acme/policies/pull/5#issuecomment-1002");
    let after = ours(&github);
    assert_eq!(after.len(), 1);
    assert_eq!(after[0].id, posted[0].id);
    assert!(after[0].body.ends_with(&markdown(&second)));
    assert_eq!(
        github.log(),
        [
            "GET /repos/acme/policies/issues/5/comments?per_page=100",
            "PATCH /repos/acme/policies/issues/comments/1002"
        ]
    );

    // The same plan again writes nothing.
    github.clear_log();
    let run = comment(&env, &github, &["--plan", "plan.json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains(": unchanged "), "{}", run.stdout);
    assert_eq!(github.log().len(), 1, "{:?}", github.log());
    assert_eq!(github.comments(5).len(), 2, "alice's comment is untouched");
}

#[test]
fn a_plan_without_changes_turns_the_comment_into_a_short_line() {
    let env = TestDir::new();
    let github = FakeGitHub::start(TOKEN);
    write_plan(&env, "plan.json", &plan(4));
    assert_eq!(comment(&env, &github, &["--plan", "plan.json"]).code, 0);

    write_plan(&env, "plan.json", &plan(0));
    let run = comment(
        &env,
        &github,
        &[
            "--plan",
            "plan.json",
            "--details-url",
            "https://github.test/acme/policies/actions/runs/42",
        ],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let posted = ours(&github);
    assert_eq!(posted.len(), 1);
    insta::assert_snapshot!(posted[0].body, @r"
    <!-- tramontane:plan dir=policies -->
    **tramontane plan** for `policies` against `mistral`: no changes. 1 unmanaged resource(s) left alone. [Details](https://github.test/acme/policies/actions/runs/42).
    ");
}

#[test]
fn the_comment_is_found_on_any_page_of_a_long_conversation() {
    let env = TestDir::new();
    let github = FakeGitHub::start(TOKEN);
    github.set_page_size(2);
    write_plan(&env, "plan.json", &plan(1));
    for i in 0..5 {
        github.add_comment(5, "alice", &format!("comment {i}"));
    }
    assert_eq!(comment(&env, &github, &["--plan", "plan.json"]).code, 0);
    github.add_comment(5, "bob", "one more");

    write_plan(&env, "plan.json", &plan(2));
    github.clear_log();
    let run = comment(&env, &github, &["--plan", "plan.json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains(": updated "), "{}", run.stdout);
    assert_eq!(ours(&github).len(), 1);
    assert_eq!(
        github.log(),
        [
            "GET /repos/acme/policies/issues/5/comments?per_page=100",
            "GET /repos/acme/policies/issues/5/comments?per_page=100&page=2",
            "GET /repos/acme/policies/issues/5/comments?per_page=100&page=3",
            "GET /repos/acme/policies/issues/5/comments?per_page=100&page=4",
            "PATCH /repos/acme/policies/issues/comments/1006",
        ]
    );
}

#[test]
fn a_plan_too_long_for_one_comment_is_split_and_shrinks_back() {
    let env = TestDir::new();
    let github = FakeGitHub::start(TOKEN);
    let long = write_plan(&env, "plan.json", &plan(450));
    let full = markdown(&long);
    assert!(
        full.chars().count() > BODY_LIMIT,
        "the test plan must be long"
    );

    let run = comment(&env, &github, &["--plan", "plan.json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let parts = ours(&github);
    assert!(parts.len() >= 3, "{} parts", parts.len());
    // How many parts depends on the plan's rendering; what each says does not.
    let count = parts.len();
    let mut expected =
        format!("Plan comment for `policies` on acme/policies#5, in {count} parts:\n");
    for (index, part) in parts.iter().enumerate() {
        expected.push_str(&format!(
            "  part {}: created https://github.test/acme/policies/pull/5#issuecomment-{}\n",
            index + 1,
            part.id
        ));
    }
    assert_eq!(run.stdout, expected);
    for (index, part) in parts.iter().enumerate() {
        let body = &part.body;
        assert!(body.chars().count() <= BODY_LIMIT);
        let marker = if index == 0 {
            "<!-- tramontane:plan dir=policies -->\n".to_owned()
        } else {
            format!("<!-- tramontane:plan dir=policies part={} -->\n", index + 1)
        };
        assert!(body.starts_with(&marker), "{}", &body[..80]);
        // Markdown intact in every part: fences and <details> balanced.
        assert_eq!(body.matches("```").count() % 2, 0, "part {}", index + 1);
        assert_eq!(
            body.matches("<details>").count(),
            body.matches("</details>").count(),
            "part {}",
            index + 1
        );
    }
    // Nothing lost: every change is in some part, in order.
    let joined: String = parts.iter().map(|p| p.body.as_str()).collect();
    let mut at = 0;
    for i in 0..450 {
        let address = format!("workspace.dev-workspace.key.service-{i:04}</code>");
        let found = joined[at..].find(&address).expect(&address);
        at += found;
    }
    assert!(
        parts[1].body.starts_with(&format!(
            "<!-- tramontane:plan dir=policies part=2 -->\n<sub>tramontane plan for `policies`, continued (part 2 of {count}).</sub>\n\n"
        )),
        "{}",
        &parts[1].body[..200]
    );
    assert!(parts[0].body.ends_with(&format!(
        "\n<sub>Continued in the next comment (part 1 of {count}).</sub>\n"
    )));

    // A later push with a short plan: the first part is updated, the others deleted.
    write_plan(&env, "plan.json", &plan(1));
    let run = comment(&env, &github, &["--plan", "plan.json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        run.stdout,
        format!(
            "Plan comment for `policies` on acme/policies#5: updated https://github.test/acme/policies/pull/5#issuecomment-{}\nDeleted {} stale plan comment(s): parts a shorter plan no longer needs, or duplicates.\n",
            parts[0].id,
            count - 1
        )
    );
    let left = ours(&github);
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].id, parts[0].id);
}

#[test]
fn a_failed_plan_replaces_the_old_plan_with_a_line_saying_so() {
    let env = TestDir::new();
    let github = FakeGitHub::start(TOKEN);
    write_plan(&env, "plan.json", &plan(450));
    assert_eq!(comment(&env, &github, &["--plan", "plan.json"]).code, 0);
    assert!(ours(&github).len() > 1);

    let run = comment(
        &env,
        &github,
        &[
            "--failed",
            "--details-url",
            "https://github.test/acme/policies/actions/runs/43",
        ],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let left = ours(&github);
    assert_eq!(left.len(), 1);
    insta::assert_snapshot!(left[0].body, @r"
    <!-- tramontane:plan dir=policies -->
    **tramontane plan** for `policies` failed on the latest push, so no plan is shown. [The run](https://github.test/acme/policies/actions/runs/43) says why.
    ");

    // A usage error: 1, never the 2 that means "changes".
    let run = comment(&env, &github, &[]);
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("--plan <PLAN>"), "{}", run.stderr);
}

#[test]
fn duplicates_of_the_comment_are_folded_into_the_oldest() {
    let env = TestDir::new();
    let github = FakeGitHub::start(TOKEN);
    let marker = "<!-- tramontane:plan dir=policies -->\nan old plan";
    let oldest = github.add_comment(5, BOT, marker);
    github.add_comment(5, "alice", "a review");
    github.add_comment(5, BOT, marker);
    write_plan(&env, "plan.json", &plan(1));
    let run = comment(&env, &github, &["--plan", "plan.json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout.contains("Deleted 1 stale plan comment(s)"),
        "{}",
        run.stdout
    );
    let left = ours(&github);
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].id, oldest);
    assert_eq!(github.comments(5).len(), 2);
}

#[test]
fn each_policy_directory_has_its_own_comment() {
    let env = TestDir::new();
    let github = FakeGitHub::start(TOKEN);
    write_plan(&env, "plan.json", &plan(1));
    for dir in ["policies", "./staging/policies/"] {
        let run = comment(&env, &github, &["--plan", "plan.json", "--policies", dir]);
        assert_eq!(run.code, 0, "{}", run.stderr);
    }
    let run = comment(
        &env,
        &github,
        &["--plan", "plan.json", "--policies", "staging/policies"],
    );
    assert!(run.stdout.contains(": unchanged "), "{}", run.stdout);
    let markers: Vec<String> = ours(&github)
        .iter()
        .map(|c| c.body.lines().next().unwrap().to_owned())
        .collect();
    assert_eq!(
        markers,
        [
            "<!-- tramontane:plan dir=policies -->",
            "<!-- tramontane:plan dir=staging/policies -->"
        ]
    );
}

#[test]
fn with_an_author_someone_elses_marker_is_ignored() {
    let env = TestDir::new();
    let github = FakeGitHub::start(TOKEN);
    write_plan(&env, "plan.json", &plan(1));
    let planted = github.add_comment(
        5,
        "mallory",
        "<!-- tramontane:plan dir=policies -->\nNo changes, merge away!",
    );

    // Trusting the marker alone, the fake refuses to let the bot edit mallory's comment.
    let run = comment(&env, &github, &["--plan", "plan.json"]);
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("403 Forbidden"), "{}", run.stderr);

    let run = comment(&env, &github, &["--plan", "plan.json", "--author", BOT]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains(": created "), "{}", run.stdout);
    let comments = github.comments(5);
    assert_eq!(comments.len(), 2);
    assert_eq!(comments[0].id, planted);
    assert_eq!(
        comments[0].body,
        "<!-- tramontane:plan dir=policies -->\nNo changes, merge away!"
    );
}

#[test]
fn transient_failures_are_retried_except_for_a_create() {
    let env = TestDir::new();
    let github = FakeGitHub::start(TOKEN);
    write_plan(&env, "plan.json", &plan(1));
    github.fail_next(Method::GET, 502);
    let run = comment(&env, &github, &["--plan", "plan.json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        github.log(),
        [
            "GET /repos/acme/policies/issues/5/comments?per_page=100",
            "GET /repos/acme/policies/issues/5/comments?per_page=100",
            "POST /repos/acme/policies/issues/5/comments",
        ]
    );

    // GitHub may have stored the comment before the failure: posting again could make two,
    // so a failed create is reported, not repeated.
    github.state.comments.lock().unwrap().clear();
    github.clear_log();
    github.fail_next(Method::POST, 502);
    let run = comment(&env, &github, &["--plan", "plan.json"]);
    assert_eq!(run.code, 1);
    insta::assert_snapshot!(run.stderr, @"error: POST /repos/acme/policies/issues/5/comments: GitHub failed with 502 after 1 attempt(s); try again later");
    assert_eq!(github.log().len(), 2, "{:?}", github.log());
}

#[test]
fn a_read_only_token_fails_naming_the_permission() {
    let env = TestDir::new();
    let github = FakeGitHub::start(TOKEN);
    github.set_read_only(true);
    write_plan(&env, "plan.json", &plan(1));
    let run = comment(&env, &github, &["--plan", "plan.json"]);
    assert_eq!(run.code, 1);
    assert!(run.stdout.is_empty(), "{}", run.stdout);
    insta::assert_snapshot!(run.stderr, @"error: POST /repos/acme/policies/issues/5/comments: 403 Forbidden (Resource not accessible by integration): the token may not write comments on this pull request; give the job `permissions: { pull-requests: write }` (the token of a pull request from a fork is always read-only: skip the comment for forks)");
    assert!(github.comments(5).is_empty());
}

#[test]
fn a_wrong_or_missing_token_is_named_without_being_shown() {
    let env = TestDir::new();
    let github = FakeGitHub::start("another-token");
    write_plan(&env, "plan.json", &plan(1));
    let run = comment(&env, &github, &["--plan", "plan.json"]);
    assert_eq!(run.code, 1);
    insta::assert_snapshot!(run.stderr, @"error: GET /repos/acme/policies/issues/5/comments?per_page=100: 401 Unauthorized: GitHub rejected GITHUB_TOKEN as wrong or expired; pass the workflow's `github.token`, or a token that has not expired");

    let run = comment_on_the_pr(&env)
        .env("GITHUB_API_URL", &github.url)
        .args(["--plan", "plan.json"])
        .expect_code(1)
        .run();
    insta::assert_snapshot!(run.stderr, @"error: GITHUB_TOKEN is not set; in a workflow step add `env: { GITHUB_TOKEN: ${{ github.token }} }`, elsewhere export a token allowed to write pull-request comments");
}

#[test]
fn the_token_never_travels_in_clear_to_another_machine() {
    let env = TestDir::new();
    write_plan(&env, "plan.json", &plan(1));
    let run = comment_on_the_pr(&env)
        .env("GITHUB_TOKEN", TOKEN)
        .env("GITHUB_API_URL", "http://github.example/api/v3")
        .args(["--plan", "plan.json"])
        .expect_code(1)
        .run();
    insta::assert_snapshot!(run.stderr, @"error: GITHUB_API_URL `http://github.example/api/v3` uses plain http to a host that is not this machine; use https, since the token would travel in clear");
}

#[test]
fn the_plan_and_appended_markdown_go_to_the_job_summary_and_the_comment() {
    let env = TestDir::new();
    let github = FakeGitHub::start(TOKEN);
    let plan = write_plan(&env, "plan.json", &plan(1));
    env.write("access.md", "### Access changes\n\nNone.\n");
    env.write("summary.md", "earlier step\n");
    comment_on_the_pr(&env)
        .fake_github(&github)
        .env("GITHUB_STEP_SUMMARY", env.join("summary.md"))
        .args(["--plan", "plan.json", "--append", "access.md"])
        .expect_code(0)
        .run();
    let summary = std::fs::read_to_string(env.path().join("summary.md")).unwrap();
    assert_eq!(
        summary,
        format!(
            "earlier step\n{}\n### Access changes\n\nNone.\n\n",
            markdown(&plan)
        )
    );
    assert_eq!(
        ours(&github)[0].body,
        format!(
            "<!-- tramontane:plan dir=policies -->\n{}\n### Access changes\n\nNone.\n",
            markdown(&plan)
        )
    );
}

#[test]
fn a_dry_run_prints_the_bodies_and_needs_no_token() {
    let env = TestDir::new();
    write_plan(&env, "plan.json", &plan(0));
    let run = comment_on_the_pr(&env)
        .args(["--plan", "plan.json", "--dry-run"])
        .expect_code(0)
        .run();
    insta::assert_snapshot!(run.stdout, @r"
    <!-- tramontane:plan dir=policies -->
    **tramontane plan** for `policies` against `mistral`: no changes. 1 unmanaged resource(s) left alone.
    ");
}

#[test]
fn a_real_plan_of_the_demo_org_is_posted() {
    let env = TestDir::with_example_policies();
    env.test()
        .args([
            "plan",
            "--org",
            "sandbox:demo",
            "--out",
            "plan.json",
            "--quiet",
        ])
        .expect_code(0)
        .run();
    let github = FakeGitHub::start(TOKEN);
    let run = comment(&env, &github, &["--plan", "plan.json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let saved: Plan =
        serde_json::from_str(&std::fs::read_to_string(env.path().join("plan.json")).unwrap())
            .unwrap();
    assert_eq!(
        ours(&github)[0].body,
        format!(
            "<!-- tramontane:plan dir=policies -->\n{}",
            markdown(&saved)
        )
    );
}

#[test]
fn hostile_names_in_the_org_cannot_forge_the_marker_or_escape_the_comment() {
    let env = TestDir::with_example_policies();
    let org = crate::test_plan::hostile_org(&env);
    env.test()
        .args(["plan", "--org", &org, "--out", "plan.json", "--quiet"])
        .expect_code(0)
        .run();
    let github = FakeGitHub::start(TOKEN);
    for _ in 0..2 {
        let run = comment(&env, &github, &["--plan", "plan.json", "--author", BOT]);
        assert_eq!(run.code, 0, "{}", run.stderr);
    }
    let posted = github.comments(5);
    assert_eq!(
        posted.len(),
        1,
        "the second run did not find the first comment"
    );
    let body = &posted[0].body;
    assert!(
        body.contains("gpj.exe"),
        "the hostile text is not in the comment"
    );
    // The marker is the first line and nowhere else: no later line, and no text from the
    // organization, reads as a marker to the comment finder.
    let lines: Vec<&str> = body.split('\n').collect();
    assert_eq!(
        tramontane::github::comment::parse_marker(body),
        Some(("policies".into(), 1))
    );
    for at in 1..lines.len() {
        let rest = lines[at..].join("\n");
        assert_eq!(
            tramontane::github::comment::parse_marker(&rest),
            None,
            "line {at} is a marker: {}",
            lines[at]
        );
    }
    // Outside the diff blocks (where text shows as typed), the only HTML comment is the
    // marker.
    let outside: Vec<&str> = body.split("```").step_by(2).collect();
    assert_eq!(outside.concat().matches("<!--").count(), 1, "{body}");
}

/// A plan revoking a gateway key, read from a file as CI passes it: the comment says who
/// loses what, names the key by its public id only, and a mention in policy text does not
/// notify anyone.
#[test]
fn a_revoked_gateway_key_says_who_loses_what_and_mentions_do_not_notify() {
    let env = TestDir::new();
    let github = FakeGitHub::start(TOKEN);
    let mut revoking = plan(0);
    revoking["summary"]["delete"] = json!(1);
    revoking["changes"] = json!([{
        "address": "runtime.gateway_key.ab12cd34",
        "kind": "runtime", "action": "delete", "enforcement": "runtime",
        "reason": "revoked: the gateway refuses this key once it loads this policy",
        "before": {"caller": "gateway_key", "id": "ab12cd34", "holder": "ops@acme.example",
                   "workspace": "prod", "expires": "2027-12-31", "fingerprint": "0011223344556677",
                   "limits": {"models": ["mistral-small-latest"], "rpm": 30, "workspace_rpm": null,
                              "max_tokens_per_request": null, "daily_token_budget": null,
                              "spend_limit": null}},
        "after": null
    }]);
    revoking["unmanaged"][0]["note"] = json!("not in the policy; ask @acme/platform");
    write_plan(&env, "plan.json", &revoking);
    let run = comment(&env, &github, &["--plan", "plan.json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let posted = ours(&github);
    let body = &posted[0].body;
    assert!(!body.contains("0011223344556677"), "{body}");
    assert!(!body.contains("@acme/platform"), "{body}");
    let gains = body
        .split("**Who gains or loses what through the gateway**\n\n")
        .nth(1)
        .and_then(|rest| rest.split("\n\n").next())
        .unwrap_or_else(|| panic!("no list of who gains or loses what in\n{body}"));
    insta::assert_snapshot!(gains, @r"
    - gateway key tmt\_ab12cd34\_… (holder ops@acme.example) revoked: it no longer calls workspace prod
    ");
    let unmanaged = body
        .lines()
        .find(|line| line.starts_with("- `member.mallory@acme.example`"))
        .unwrap();
    // The `@` below is followed by a zero-width joiner, which GitHub shows as nothing.
    insta::assert_snapshot!(unmanaged, @r"
    - `member.mallory@acme.example`: not in the policy; ask @‍acme/platform
    ");
}
