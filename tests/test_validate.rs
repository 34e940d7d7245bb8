use crate::common::{TestEnv, repo_root, run_in};

const BROKEN: &str = "\
version: 1
members:
  alice@acme.example: { name: Alice, roles: [organization_admin] }
workspaces:
  dev:
    admin: alice@acme.example
    rpm: 60
    models: [mistral-small-latest]
    keys:
      ci:
        owner: bob@acme.example
        expires_after_days: 90
        rpm: 100
        secret: { file: secrets/ci.key }
";

#[test]
fn the_example_org_is_valid() {
    let run = run_in(&repo_root(), &["validate"]);
    assert_eq!(run.code, 0, "{}", run.stdout);
    insta::assert_snapshot!(run.stdout, @"`policies` is valid: 6 files");
}

#[test]
fn human_output_is_a_rustc_style_frame() {
    let env = TestEnv::new();
    env.write("policies/org.yaml", BROKEN);
    let run = env.run(&["validate"]);
    assert_eq!(run.code, 1);
    insta::assert_snapshot!(run.stdout, @r"
    error[E030]: `bob@acme.example`, owner of key `ci` of workspace `dev`, is not a member of the organization
      --> policies/org.yaml:11:16
       |
    11 |         owner: bob@acme.example
       |                ^^^^^^^^^^^^^^^^ not under `members`
       |
       = help: add `bob@acme.example` under `members`, with a `name`

    error[E035]: key `ci` of workspace `dev` allows 100 requests per minute, more than the workspace's 60
      --> policies/org.yaml:13:14
       |
     7 |     rpm: 60
       |          -- workspace limit set here
    ...
    13 |         rpm: 100
       |              ^^^ above the workspace's 60
       |
       = help: lower the key's `rpm` to at most 60, or raise the workspace's

    error: could not validate `policies`: 2 errors in 1 file
    ");
}

#[test]
fn json_output_is_a_stable_array() {
    let env = TestEnv::new();
    env.write("policies/org.yaml", BROKEN);
    let run = env.run(&["validate", "--format", "json"]);
    assert_eq!(run.code, 1);
    insta::assert_snapshot!(run.stdout, @r#"
    [
      {
        "file": "policies/org.yaml",
        "line": 11,
        "column": 16,
        "code": "E030",
        "severity": "error",
        "message": "`bob@acme.example`, owner of key `ci` of workspace `dev`, is not a member of the organization",
        "help": "add `bob@acme.example` under `members`, with a `name`"
      },
      {
        "file": "policies/org.yaml",
        "line": 13,
        "column": 14,
        "code": "E035",
        "severity": "error",
        "message": "key `ci` of workspace `dev` allows 100 requests per minute, more than the workspace's 60",
        "help": "lower the key's `rpm` to at most 60, or raise the workspace's"
      }
    ]
    "#);
}

#[test]
fn github_output_is_workflow_commands() {
    let env = TestEnv::new();
    env.write("policies/org.yaml", BROKEN);
    let run = env.run(&["validate", "--format", "github"]);
    assert_eq!(run.code, 1);
    insta::assert_snapshot!(run.stdout, @r"
    ::error file=policies/org.yaml,line=11,col=16,title=E030::`bob@acme.example`, owner of key `ci` of workspace `dev`, is not a member of the organization%0Ahelp: add `bob@acme.example` under `members`, with a `name`
    ::error file=policies/org.yaml,line=13,col=14,title=E035::key `ci` of workspace `dev` allows 100 requests per minute, more than the workspace's 60%0Ahelp: lower the key's `rpm` to at most 60, or raise the workspace's
    ");
}

#[test]
fn colors_only_when_asked_or_on_a_terminal() {
    let env = TestEnv::new();
    env.write("policies/org.yaml", BROKEN);
    // Not a terminal: plain, whatever the default.
    assert!(!env.run(&["validate"]).stdout.contains('\x1b'));
    assert!(
        env.run(&["validate", "--color", "always"])
            .stdout
            .contains('\x1b')
    );
    assert!(
        !env.run(&["validate", "--color", "never"])
            .stdout
            .contains('\x1b')
    );
}

#[test]
fn a_missing_directory_is_named() {
    let env = TestEnv::new();
    let run = env.run(&["validate", "--policies", "nowhere"]);
    assert_eq!(run.code, 1);
    insta::assert_snapshot!(run.stdout, @"
    error[E001]: cannot read the policy directory `nowhere`: it does not exist
    --> nowhere
     = help: run tramontane from the repository root, or pass --policies DIR

    error: could not validate `nowhere`: 1 error in 0 files
    ");
}

#[test]
fn an_oversized_file_is_refused_without_reading_it_all() {
    let env = TestEnv::new();
    let mut big = String::from("members:\n");
    while big.len() < 5 * 1024 * 1024 {
        big.push_str("  # padding padding padding padding padding padding padding padding\n");
    }
    env.write("policies/big.yaml", big);
    let started = std::time::Instant::now();
    let run = env.run(&["validate", "--format", "json"]);
    assert_eq!(run.code, 1);
    assert!(run.stdout.contains("\"E005\""), "{}", run.stdout);
    assert!(run.stdout.contains("larger than the limit of 4 MiB"));
    // Generous: the point is "not a hang", not a performance assertion.
    assert!(started.elapsed().as_secs() < 30);
}

#[test]
fn warnings_do_not_fail_validation() {
    let env = TestEnv::new();
    env.write(
        "policies/org.yaml",
        "members:\n  a@acme.example: { name: A }\nworkspaces:\n  w:\n    admin: a@acme.example\n    keys:\n      forever:\n        owner: a@acme.example\n        secret: { file: k }\n",
    );
    let run = env.run(&["validate", "--format", "github"]);
    assert_eq!(run.code, 0);
    insta::assert_snapshot!(run.stdout, @"::warning file=policies/org.yaml,line=7,col=7,title=W001::key `forever` of workspace `w` never expires%0Ahelp: add `expires_after_days: 90` and `rotate_before_days: 14`, or an `expires` date");
}
