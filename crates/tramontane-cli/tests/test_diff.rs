//! `tramontane diff` on a temporary git repository: effective access between two commits,
//! or a commit and the working tree, with no organization read.

use tramontane_testkit::{Test, TestDir};

/// A scratch repository whose commits have fixed authors and times, so their ids, which
/// the output shows, are the same on every run.
struct Repo {
    env: TestDir,
    repo: git2::Repository,
}

impl Repo {
    fn new() -> Repo {
        let env = TestDir::new();
        let repo = git2::Repository::init(env.path()).unwrap();
        Repo { env, repo }
    }

    fn write(&self, relative: &str, text: &str) -> &Repo {
        self.env.write(relative, text);
        self
    }

    fn commit(&self, message: &str) -> String {
        let mut index = self.repo.index().unwrap();
        index
            .add_all(["*"], git2::IndexAddOption::DEFAULT, None)
            .unwrap();
        index.update_all(["*"], None).unwrap();
        index.write().unwrap();
        let tree = self.repo.find_tree(index.write_tree().unwrap()).unwrap();
        let count = self.repo.head().map_or(0, |_| 1);
        let when = git2::Time::new(1_767_225_600 + count * 3600, 0);
        let signature = git2::Signature::new("Test", "test@acme.example", &when).unwrap();
        let parent = self
            .repo
            .head()
            .ok()
            .and_then(|head| head.peel_to_commit().ok());
        let parents: Vec<&git2::Commit> = parent.iter().collect();
        self.repo
            .commit(
                Some("HEAD"),
                &signature,
                &signature,
                message,
                &tree,
                &parents,
            )
            .unwrap()
            .to_string()
    }

    fn test(&self) -> Test {
        self.env.test()
    }
}

const BASE: &str = "\
version: 1
organization:
  spend_limit: 1000
members:
  alice@acme.example: { name: Alice Martin, roles: [organization_admin] }
  bob@acme.example: { name: Bob Stone }
  carol@acme.example: { name: Carol Nguyen }
  dave@acme.example: { name: Dave Old }
roles:
  developer:
    models: [mistral-small-latest, codestral-latest]
    max_tokens_per_request: 2000
    daily_token_budget: 500000
teams:
  developers:
    members: [bob@acme.example]
    workspaces: { dev: [user] }
    role: developer
";

const DEV: &str = "\
version: 1
workspaces:
  dev:
    admin: alice@acme.example
    spend_limit: 100
    rpm: 60
    models: [mistral-small-latest, codestral-latest]
    keys:
      ci:
        owner: bob@acme.example
        expires_after_days: 90
        models: [codestral-latest]
        rpm: 30
        secret: { file: secrets/ci.key }
";

const ML: &str = "\
version: 1
workspaces:
  ml:
    admin: alice@acme.example
    members: { carol@acme.example: [dev] }
    spend_limit: 400
    rpm: 120
    keys:
      batch:
        owner: carol@acme.example
        expires: 2027-01-01
        secret: { file: secrets/batch.key }
";

/// Two commits: the second opens a workspace with a key, widens a team, lifts the org's
/// spend limit, raises a key's rate and removes a member.
fn two_commits() -> Repo {
    let repo = Repo::new();
    repo.write("policies/org.yaml", BASE)
        .write("policies/workspaces/dev.yaml", DEV);
    repo.commit("base");
    let head = BASE
        .replace("spend_limit: 1000", "spend_limit: unlimited")
        .replace("daily_token_budget: 500000", "daily_token_budget: 750000")
        .replace(
            "members: [bob@acme.example]",
            "members: [bob@acme.example, carol@acme.example]",
        )
        .replace("  dave@acme.example: { name: Dave Old }\n", "");
    repo.write("policies/org.yaml", &head)
        .write(
            "policies/workspaces/dev.yaml",
            &DEV.replace("        rpm: 30", "        rpm: 60"),
        )
        .write("policies/workspaces/ml.yaml", ML);
    repo.commit("open ml");
    repo
}

#[test]
fn access_changes_between_two_commits_for_people() {
    let repo = two_commits();
    let run = repo
        .test()
        .args(["diff", "--base", "HEAD~1", "--head", "HEAD"])
        .expect_code(0)
        .run();
    assert!(run.stderr.is_empty(), "{}", run.stderr);
    insta::assert_snapshot!(run.stdout, @r"
    Access changes in `policies` from `HEAD~1` (992266be03e1) to `HEAD` (a8c1813c01e1):

    ~ organization
        ~ spend_limit: 1000 → unlimited

    + workspace ml
        members: alice@acme.example: workspace_admin, carol@acme.example: dev
        models: every model
        rpm: 120
        spend_limit: 400

    ~ key dev/ci
        ~ rules:
            + `key:workspace.dev.key.ci:requests:minute`: 60 requests a minute for key `workspace.dev.key.ci`
            - `key:workspace.dev.key.ci:requests:minute`: 30 requests a minute for key `workspace.dev.key.ci`

    + key ml/batch
        owner: carol@acme.example
        models: every model (the workspace's)
        max_tokens_per_request: no limit
        rules: `workspace:ml:requests:minute`: 120 requests a minute for workspace `ml` together
        expires: 2027-01-01

    ~ team developers
        ~ members:
            + carol@acme.example
        ~ daily_token_budget: 500000 → 750000

    ~ member alice@acme.example
        ~ workspaces:
            + ml: workspace_admin
        ~ access:
            + ml: `workspace:ml:requests:minute`: 120 requests a minute for workspace `ml` together
            + ml: max tokens per request no limit
            + ml: models every model

    ~ member bob@acme.example
        ~ access:
            + dev: `member:bob@acme.example:tokens:day`: 750000 tokens a day for member `bob@acme.example`
            - dev: `member:bob@acme.example:tokens:day`: 500000 tokens a day for member `bob@acme.example`

    ~ member carol@acme.example
        ~ teams:
            + developers
        ~ workspaces:
            + dev: user (team developers)
            + ml: dev
        ~ access:
            + dev: `member:carol@acme.example:tokens:day`: 750000 tokens a day for member `carol@acme.example`
            + dev: `workspace:dev:requests:minute`: 60 requests a minute for workspace `dev` together
            + dev: max tokens per request 2000
            + dev: models codestral-latest, mistral-small-latest
            + ml: `workspace:ml:requests:minute`: 120 requests a minute for workspace `ml` together
            + ml: max tokens per request no limit
            + ml: models every model

    - member dave@acme.example
        roles: member

    Maximum monthly spend exposure: 1000 → 500 (−500)
        before: the organization's spend limit
        after: the sum of 2 workspace spend limits (the organization is unlimited)
    Access: 2 added, 6 changed, 1 removed.
    ");

    let detailed = repo
        .test()
        .args([
            "diff",
            "--base",
            "HEAD~1",
            "--head",
            "HEAD",
            "--detailed-exitcode",
        ])
        .expect_code(2)
        .run();
    assert_eq!(detailed.stdout, run.stdout);
}

#[test]
fn access_changes_as_markdown_for_the_pull_request() {
    let repo = two_commits();
    let run = repo
        .test()
        .args([
            "diff", "--base", "HEAD~1", "--head", "HEAD", "--format", "markdown",
        ])
        .expect_code(0)
        .run();
    insta::assert_snapshot!(run.stdout, @r"
    ### Access changes in `policies`: `HEAD~1` (992266be03e1) → `HEAD` (a8c1813c01e1)

    > [!IMPORTANT]
    > Maximum monthly spend exposure: **1000 → 500 (−500)**.  
    > Before: the organization's spend limit. After: the sum of 2 workspace spend limits (the organization is unlimited).

    Access: 2 added, 6 changed, 1 removed.

    | | subject | attribute | change |
    |:-:|---|---|---|
    | ~ | organization | spend_limit | `1000` → `unlimited` |
    | + | workspace `ml` | members | `alice@acme.example: workspace_admin`, `carol@acme.example: dev` |
    |  |  | models | `every model` |
    |  |  | rpm | `120` |
    |  |  | spend_limit | `400` |
    | ~ | key `dev/ci` | rules | added `` `key:workspace.dev.key.ci:requests:minute`: 60 requests a minute for key `workspace.dev.key.ci` ``; removed `` `key:workspace.dev.key.ci:requests:minute`: 30 requests a minute for key `workspace.dev.key.ci` `` |
    | + | key `ml/batch` | owner | `carol@acme.example` |
    |  |  | models | `every model (the workspace's)` |
    |  |  | max_tokens_per_request | `no limit` |
    |  |  | rules | `` `workspace:ml:requests:minute`: 120 requests a minute for workspace `ml` together `` |
    |  |  | expires | `2027-01-01` |
    | ~ | team `developers` | members | added `carol@acme.example` |
    |  |  | daily_token_budget | `500000` → `750000` |
    | ~ | member `alice@acme.example` | workspaces | added `ml: workspace_admin` |
    |  |  | access | added ``ml: `workspace:ml:requests:minute`: 120 requests a minute for workspace `ml` together``, `ml: max tokens per request no limit`, `ml: models every model` |
    | ~ | member `bob@acme.example` | access | added `` dev: `member:bob@acme.example:tokens:day`: 750000 tokens a day for member `bob@acme.example` ``; removed `` dev: `member:bob@acme.example:tokens:day`: 500000 tokens a day for member `bob@acme.example` `` |
    | ~ | member `carol@acme.example` | teams | added `developers` |
    |  |  | workspaces | added `dev: user (team developers)`, `ml: dev` |
    |  |  | access | added `` dev: `member:carol@acme.example:tokens:day`: 750000 tokens a day for member `carol@acme.example` ``, ``dev: `workspace:dev:requests:minute`: 60 requests a minute for workspace `dev` together``, `dev: max tokens per request 2000`, `dev: models codestral-latest, mistral-small-latest`, ``ml: `workspace:ml:requests:minute`: 120 requests a minute for workspace `ml` together``, `ml: max tokens per request no limit`, `ml: models every model` |
    | − | member `dave@acme.example` | roles | `member` |
    ");
}

#[test]
fn access_changes_as_json() {
    let repo = two_commits();
    let run = repo
        .test()
        .args([
            "diff", "--base", "HEAD~1", "--head", "HEAD", "--format", "json",
        ])
        .expect_code(0)
        .run();
    let diff: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(diff["base"]["revision"], "HEAD~1");
    assert_eq!(diff["head"]["commit"].as_str().unwrap().len(), 40);
    assert_eq!(diff["exposure"]["before"]["amount"], 1000.0);
    assert_eq!(diff["exposure"]["after"]["amount"], 500.0);
    let key = diff["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "ml/batch")
        .unwrap();
    assert_eq!(key["kind"], "key");
    assert_eq!(key["change"], "added");
}

#[test]
fn the_working_tree_against_a_commit_includes_uncommitted_edits() {
    let repo = two_commits();
    let clean = repo
        .test()
        .args(["diff", "--base", "HEAD", "--detailed-exitcode"])
        .expect_code(0)
        .run();
    insta::assert_snapshot!(clean.stdout, @r"
    No access changes in `policies` from `HEAD` (a8c1813c01e1) to the working tree.

    Maximum monthly spend exposure: 500, unchanged (the sum of 2 workspace spend limits (the organization is unlimited)).
    ");

    repo.write(
        "policies/workspaces/ml.yaml",
        &ML.replace(
            "    rpm: 120\n",
            "    rpm: 120\n    models: [mistral-small-latest]\n",
        )
        .replace("spend_limit: 400", "spend_limit: unlimited"),
    );
    let run = repo
        .test()
        .args(["diff", "--base", "HEAD", "--detailed-exitcode"])
        .expect_code(2)
        .run();
    insta::assert_snapshot!(run.stdout, @r"
    Access changes in `policies` from `HEAD` (a8c1813c01e1) to the working tree:

    ~ workspace ml
        ~ models: every model → mistral-small-latest
        ~ spend_limit: 400 → unlimited

    ~ key ml/batch
        ~ models: every model (the workspace's) → mistral-small-latest

    ~ member alice@acme.example
        ~ access:
            + ml: models mistral-small-latest
            - ml: models every model

    ~ member carol@acme.example
        ~ access:
            + ml: models mistral-small-latest
            - ml: models every model

    Maximum monthly spend exposure: 500 → unbounded
        before: the sum of 2 workspace spend limits (the organization is unlimited)
        after: unbounded: the organization is unlimited and workspace `ml` has no limit
    Access: 0 added, 4 changed, 0 removed.
    ");
}

#[test]
fn a_revision_with_invalid_policies_is_reported_at_revision_path_line_column() {
    let repo = two_commits();
    repo.write(
        "policies/workspaces/ml.yaml",
        &ML.replace("owner: carol@acme.example", "owner: zoe@acme.example"),
    );
    repo.commit("a typo");
    let run = repo
        .test()
        .args(["diff", "--base", "HEAD~1", "--head", "HEAD"])
        .expect_code(1)
        .run();
    assert!(run.stdout.is_empty(), "{}", run.stdout);
    insta::assert_snapshot!(run.stderr, @r"
    error[E030]: `zoe@acme.example`, owner of key `batch` of workspace `ml`, is not a member of the organization
      --> HEAD:policies/workspaces/ml.yaml:10:16
       |
    10 |         owner: zoe@acme.example
       |                ^^^^^^^^^^^^^^^^ not under `members`
       |
       = help: add `zoe@acme.example` under `members`, with a `name`

    error: could not validate `HEAD:policies`: 1 error in 3 files
    ");
}

#[test]
fn a_revision_without_the_policy_directory_grants_nothing() {
    let repo = Repo::new();
    repo.write("README.md", "policies to come\n");
    repo.commit("empty");
    repo.write("policies/org.yaml", BASE)
        .write("policies/workspaces/dev.yaml", DEV);
    let run = repo
        .test()
        .args(["diff", "--base", "HEAD", "--format", "markdown"])
        .expect_code(0)
        .run();
    let first = run.stdout.lines().next().unwrap();
    assert!(
        first.ends_with(", which has no `policies` → the working tree"),
        "{first}"
    );
    assert!(
        run.stdout
            .contains("Access: 7 added, 1 changed, 0 removed."),
        "{}",
        run.stdout
    );

    std::fs::remove_dir_all(repo.env.path().join("policies")).unwrap();
    let run = repo
        .test()
        .args(["diff", "--base", "HEAD"])
        .expect_code(1)
        .run();
    assert!(
        run.stderr
            .starts_with("error: `policies` exists on neither side:"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_revision_whose_policies_are_too_large_together_is_refused_before_reading_them() {
    let repo = Repo::new();
    // Five files under the per-file limit, over the total one.
    let padding = format!("version: 1\n{}", "# padding\n".repeat(370_000));
    for file in 0..5 {
        repo.write(&format!("policies/part{file}.yaml"), &padding);
    }
    repo.commit("huge");
    let run = repo
        .test()
        .args(["diff", "--base", "HEAD"])
        .expect_code(1)
        .run();
    insta::assert_snapshot!(run.stderr, @r"
    error: the policy files of `policies` at `HEAD` exceed the limit of 16 MiB together
    help: real policies are a few kilobytes per file: keep generated data out of the policy directory
    ");
}

#[test]
fn a_revision_the_repository_does_not_have_says_how_to_fetch_it() {
    let repo = two_commits();
    let run = repo
        .test()
        .args(["diff", "--base", "origin/main"])
        .expect_code(1)
        .run();
    insta::assert_snapshot!(run.stderr, @r"
    error: `origin/main` names no commit in this repository (revspec 'origin/main' not found)
    help: fetch it first; in GitHub Actions check out with `fetch-depth: 0`, or on a pull request compare with `--base HEAD^1` after checking out with `fetch-depth: 2`
    ");
}

#[test]
fn outside_a_repository_diff_says_where_to_run() {
    let env = TestDir::new();
    env.write("policies/org.yaml", BASE);
    let run = env
        .test()
        .args(["diff", "--base", "main"])
        .expect_code(1)
        .run();
    insta::assert_snapshot!(run.stderr, @r"
    error: `policies` is not inside a git repository
    help: run `tramontane diff` inside a clone of the policy repository
    ");
}

const GATEWAY_KEYS: &str = "\
version: 1
gateway_keys:
  bobkey0001:
    digest: sha256:1111111111111111111111111111111111111111111111111111111111111111
    holder: bob@acme.example
    workspace: dev
    expires: 2027-06-30
  cikey00001:
    digest: sha256:2222222222222222222222222222222222222222222222222222222222222222
    holder: workspace.dev.key.ci
    workspace: dev
    expires: 2027-06-30
";

/// Gateway keys between two commits: Bob's re-issued and extended, the CI key's revoked,
/// one issued to Alice. Each shows its holder, workspace, expiry and effective limits;
/// no digest is shown.
#[test]
fn gateway_keys_show_their_holder_workspace_expiry_and_limits_and_never_a_digest() {
    let repo = Repo::new();
    let dev = DEV.replace(
        "    keys:\n",
        "    gateway: { upstream_key: ci }\n    keys:\n",
    );
    repo.write("policies/org.yaml", BASE)
        .write("policies/workspaces/dev.yaml", &dev)
        .write("policies/gateway-keys.yaml", GATEWAY_KEYS);
    repo.commit("gateway keys");
    let head = GATEWAY_KEYS
        .replace(
            "sha256:1111111111111111111111111111111111111111111111111111111111111111\n    holder: bob@acme.example\n    workspace: dev\n    expires: 2027-06-30",
            "sha256:3333333333333333333333333333333333333333333333333333333333333333\n    holder: bob@acme.example\n    workspace: dev\n    expires: 2027-12-31",
        )
        .replace(
            "  cikey00001:\n    digest: sha256:2222222222222222222222222222222222222222222222222222222222222222\n    holder: workspace.dev.key.ci\n    workspace: dev\n    expires: 2027-06-30\n",
            "  alicekey01:\n    digest: sha256:4444444444444444444444444444444444444444444444444444444444444444\n    holder: alice@acme.example\n    workspace: dev\n    expires: 2027-03-31\n",
        );
    repo.write("policies/gateway-keys.yaml", &head);
    repo.commit("rotate, revoke, issue");
    let diff = |format: &str| {
        let mut test = repo
            .test()
            .args([
                "diff", "--base", "HEAD~1", "--head", "HEAD", "--format", format,
            ])
            .expect_code(0);
        for digit in ['1', '2', '3', '4'] {
            test = test.no_secret_in_output(digit.to_string().repeat(64));
        }
        test.run().stdout
    };
    insta::assert_snapshot!(diff("human"), @r"
    Access changes in `policies` from `HEAD~1` (a00a3e74a5f1) to `HEAD` (627563f84c29):

    + gateway key alicekey01
        holder: alice@acme.example
        workspace: dev
        expires: 2027-03-31
        models: codestral-latest, mistral-small-latest
        max_tokens_per_request: no limit
        rules: `workspace:dev:requests:minute`: 60 requests a minute for workspace `dev` together

    ~ gateway key bobkey0001
        ~ expires: 2027-06-30 → 2027-12-31
        ~ secret: the key issued before → re-issued (a new digest)

    - gateway key cikey00001
        holder: workspace.dev.key.ci
        workspace: dev
        expires: 2027-06-30
        models: codestral-latest
        max_tokens_per_request: no limit
        rules: `key:workspace.dev.key.ci:requests:minute`: 30 requests a minute for key `workspace.dev.key.ci`, `workspace:dev:requests:minute`: 60 requests a minute for workspace `dev` together

    Maximum monthly spend exposure: 1000, unchanged (the organization's spend limit).
    Access: 1 added, 1 changed, 1 removed.
    ");
    insta::assert_snapshot!(diff("markdown"), @r"
    ### Access changes in `policies`: `HEAD~1` (a00a3e74a5f1) → `HEAD` (627563f84c29)

    Maximum monthly spend exposure: **1000**, unchanged (the organization's spend limit).

    Access: 1 added, 1 changed, 1 removed.

    | | subject | attribute | change |
    |:-:|---|---|---|
    | + | gateway key `alicekey01` | holder | `alice@acme.example` |
    |  |  | workspace | `dev` |
    |  |  | expires | `2027-03-31` |
    |  |  | models | `codestral-latest`, `mistral-small-latest` |
    |  |  | max_tokens_per_request | `no limit` |
    |  |  | rules | `` `workspace:dev:requests:minute`: 60 requests a minute for workspace `dev` together `` |
    | ~ | gateway key `bobkey0001` | expires | `2027-06-30` → `2027-12-31` |
    |  |  | secret | `the key issued before` → `re-issued (a new digest)` |
    | − | gateway key `cikey00001` | holder | `workspace.dev.key.ci` |
    |  |  | workspace | `dev` |
    |  |  | expires | `2027-06-30` |
    |  |  | models | `codestral-latest` |
    |  |  | max_tokens_per_request | `no limit` |
    |  |  | rules | `` `key:workspace.dev.key.ci:requests:minute`: 30 requests a minute for key `workspace.dev.key.ci` ``, `` `workspace:dev:requests:minute`: 60 requests a minute for workspace `dev` together `` |
    ");
    let json: serde_json::Value = serde_json::from_str(&diff("json")).unwrap();
    let kinds: Vec<(&str, &str, &str)> = json["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|change| {
            (
                change["kind"].as_str().unwrap(),
                change["name"].as_str().unwrap(),
                change["change"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        kinds,
        [
            ("gateway_key", "alicekey01", "added"),
            ("gateway_key", "bobkey0001", "changed"),
            ("gateway_key", "cikey00001", "removed"),
        ]
    );
}

const WORKLOADS: &str = "\
version: 1
issuers:
  github:
    issuer: https://token.actions.githubusercontent.com
    discovery: true
    audiences: [tramontane]
    max_lifetime_minutes: 15
workloads:
  release-notes:
    issuer: github
    subject: repo:acme/app:environment:production
    claims: { repository: acme/app }
    workspace: dev
    models: [mistral-small-latest]
    rpm: 10
  nightly:
    issuer: github
    subject: repo:acme/app:ref:refs/heads/main
    workspace: dev
";

/// Workloads between two commits: one gains an audience through its issuer and a daily
/// budget, one is removed, one added. Each shows the token it must present and its limits.
#[test]
fn workloads_show_the_token_they_must_present_and_their_limits() {
    let repo = Repo::new();
    let dev = DEV.replace(
        "    keys:\n",
        "    gateway: { upstream_key: ci }\n    keys:\n",
    );
    repo.write("policies/org.yaml", BASE)
        .write("policies/workspaces/dev.yaml", &dev)
        .write("policies/identity.yaml", WORKLOADS);
    repo.commit("workloads");
    let head = WORKLOADS
        .replace(
            "audiences: [tramontane]",
            "audiences: [tramontane, https://github.com/acme]",
        )
        .replace(
            "    rpm: 10\n",
            "    rpm: 10\n    daily_token_budget: 100000\n",
        )
        .replace(
            "  nightly:\n    issuer: github\n    subject: repo:acme/app:ref:refs/heads/main\n",
            "  docs-bot:\n    issuer: github\n    subject: repo:acme/docs:ref:refs/heads/main\n",
        );
    repo.write("policies/identity.yaml", &head);
    repo.commit("widen, budget, replace");
    let run = repo
        .test()
        .args(["diff", "--base", "HEAD~1", "--head", "HEAD"])
        .expect_code(0)
        .run();
    insta::assert_snapshot!(run.stdout, @r"
    Access changes in `policies` from `HEAD~1` (eaeea01e9ea9) to `HEAD` (026d58af860b):

    + workload docs-bot
        token: aud https://github.com/acme, aud tramontane, issuer github, sub repo:acme/docs:ref:refs/heads/main
        workspace: dev
        models: codestral-latest, mistral-small-latest
        max_tokens_per_request: no limit
        rules: `workspace:dev:requests:minute`: 60 requests a minute for workspace `dev` together

    - workload nightly
        token: aud tramontane, issuer github, sub repo:acme/app:ref:refs/heads/main
        workspace: dev
        models: codestral-latest, mistral-small-latest
        max_tokens_per_request: no limit
        rules: `workspace:dev:requests:minute`: 60 requests a minute for workspace `dev` together

    ~ workload release-notes
        ~ token:
            + aud https://github.com/acme
        ~ rules:
            + `workload:release-notes:tokens:day`: 100000 tokens a day for workload `release-notes`

    Maximum monthly spend exposure: 1000, unchanged (the organization's spend limit).
    Access: 1 added, 1 changed, 1 removed.
    ");
}
