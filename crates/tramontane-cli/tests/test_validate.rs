use std::path::Path;

use tramontane_testkit::TestDir;

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
    let env = TestDir::with_example_policies();
    let run = env.test().arg("validate").expect_code(0).run();
    insta::assert_snapshot!(run.stdout, @"`policies` is valid: 7 files");
}

#[test]
fn human_output_is_a_rustc_style_frame() {
    let env = TestDir::new();
    env.write("policies/org.yaml", BROKEN);
    let run = env.test().arg("validate").expect_code(1).run();
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
    let env = TestDir::new();
    env.write("policies/org.yaml", BROKEN);
    let run = env
        .test()
        .args(["validate", "--format", "json"])
        .expect_code(1)
        .run();
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
    let env = TestDir::new();
    env.write("policies/org.yaml", BROKEN);
    let run = env
        .test()
        .args(["validate", "--format", "github"])
        .expect_code(1)
        .run();
    insta::assert_snapshot!(run.stdout, @r"
    ::error file=policies/org.yaml,line=11,col=16,title=E030::`bob@acme.example`, owner of key `ci` of workspace `dev`, is not a member of the organization%0Ahelp: add `bob@acme.example` under `members`, with a `name`
    ::error file=policies/org.yaml,line=13,col=14,title=E035::key `ci` of workspace `dev` allows 100 requests per minute, more than the workspace's 60%0Ahelp: lower the key's `rpm` to at most 60, or raise the workspace's
    ");
}

#[test]
fn colors_only_when_asked_or_on_a_terminal() {
    let env = TestDir::new();
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
    let env = TestDir::new();
    let run = env
        .test()
        .args(["validate", "--policies", "nowhere"])
        .expect_code(1)
        .run();
    insta::assert_snapshot!(run.stdout, @"
    error[E001]: cannot read the policy directory `nowhere`: it does not exist
    --> nowhere
     = help: run tramontane from the repository root, or pass --policies DIR

    error: could not validate `nowhere`: 1 error in 0 files
    ");
}

#[test]
fn an_oversized_file_is_refused_without_reading_it_all() {
    let env = TestDir::new();
    let mut big = String::from("members:\n");
    while big.len() < 5 * 1024 * 1024 {
        big.push_str("  # padding padding padding padding padding padding padding padding\n");
    }
    env.write("policies/big.yaml", big);
    let started = std::time::Instant::now();
    let run = env
        .test()
        .args(["validate", "--format", "json"])
        .expect_code(1)
        .run();
    assert!(run.stdout.contains("\"E005\""), "{}", run.stdout);
    assert!(run.stdout.contains("larger than the limit of 4 MiB"));
    // Generous: the point is "not a hang", not a performance assertion.
    assert!(started.elapsed().as_secs() < 30);
}

#[test]
fn warnings_do_not_fail_validation() {
    let env = TestDir::new();
    env.write(
        "policies/org.yaml",
        "members:\n  a@acme.example: { name: A }\nworkspaces:\n  w:\n    admin: a@acme.example\n    keys:\n      forever:\n        owner: a@acme.example\n        secret: { file: k }\nversion: 1\n",
    );
    let run = env
        .test()
        .args(["validate", "--format", "github"])
        .expect_code(0)
        .run();
    insta::assert_snapshot!(run.stdout, @"::warning file=policies/org.yaml,line=7,col=7,title=W001::key `forever` of workspace `w` never expires%0Ahelp: add `expires_after_days: 90` and `rotate_before_days: 14`, or an `expires` date");
}

#[cfg(unix)]
#[test]
fn symbolic_links_are_never_followed() {
    let env = TestDir::new();
    env.write("policies/org.yaml", "version: 1\n");
    // What a link could expose: a file outside the policy directory that would otherwise
    // be quoted in a diagnostic, and the process's own environment with the admin key.
    let canary = "canary-4f1d8e2a";
    env.write("outside/leak.yaml", format!("{canary}: {canary}\n"));
    env.write("outside/dir/more.yaml", format!("{canary}: 1\n"));
    let link = |target: &Path, name: &str| {
        std::os::unix::fs::symlink(target, env.path().join("policies").join(name)).unwrap();
    };
    link(&env.path().join("outside/leak.yaml"), "leak.yaml");
    link(&env.path().join("outside/dir"), "shared");
    link(Path::new("/proc/self/environ"), "environ.yml");
    for format in ["human", "json", "github"] {
        let run = env
            .test()
            .args(["validate", "--format", format])
            .env("MISTRAL_ADMIN_API_KEY", canary)
            .expect_code(1)
            .no_secret_in_output(canary)
            .run();
        for name in ["leak.yaml", "shared", "environ.yml"] {
            assert!(
                run.stdout.contains(&format!("policies/{name}")),
                "{}",
                run.stdout
            );
        }
    }
    let run = env.run(&["validate"]);
    insta::assert_snapshot!(run.stdout, @r"
    error[E006]: `policies/environ.yml` is a symbolic link; tramontane does not follow links under the policy directory
    --> policies/environ.yml
     = help: replace the link with the file or directory it points to (a copy), or point --policies at the real directory

    error[E006]: `policies/leak.yaml` is a symbolic link; tramontane does not follow links under the policy directory
    --> policies/leak.yaml
     = help: replace the link with the file or directory it points to (a copy), or point --policies at the real directory

    error[E006]: `policies/shared` is a symbolic link; tramontane does not follow links under the policy directory
    --> policies/shared
     = help: replace the link with the file or directory it points to (a copy), or point --policies at the real directory

    error: could not validate `policies`: 3 errors in 1 file
    ");
}

#[test]
fn too_many_bytes_in_total_fail_before_any_file_is_parsed() {
    let env = TestDir::new();
    // Five files, each under the per-file limit, 19.5 MiB together.
    let mut members = String::from("members:\n");
    let mut i = 0;
    while members.len() < 4 * 1024 * 1024 - 200 {
        members.push_str(&format!("  m{i}@acme.example: {{ name: Member {i} }}\n"));
        i += 1;
    }
    for file in 0..5 {
        env.write(format!("policies/part{file}.yaml"), &members);
    }
    let started = std::time::Instant::now();
    let run = env.run(&["validate"]);
    let elapsed = started.elapsed();
    assert_eq!(run.code, 1, "{}", run.stdout);
    insta::assert_snapshot!(run.stdout, @r"
    error[E005]: the policy files under `policies` hold more than 16 MiB together (limit reached at 5 files)
    --> policies
     = help: real policies are a few kilobytes per file: check that --policies points at the policy directory and holds no generated data

    error: could not validate `policies`: 1 error in 0 files
    ");
    // Nothing was parsed: far below the seconds parsing 20 MiB takes.
    assert!(elapsed < std::time::Duration::from_secs(5), "{elapsed:?}");
}

/// Secret file paths that cross a symbolic link are refused where the policy names them: a
/// committed link could send a secret outside the repository, or make two keys' paths one
/// file.
#[cfg(unix)]
#[test]
fn a_secret_file_behind_a_symbolic_link_is_refused_at_its_line() {
    let env = TestDir::new();
    let outside = TestDir::new();
    env.write(
        "policies/org.yaml",
        "\
version: 1
members:
  alice@acme.example: { name: Alice, roles: [organization_admin] }
workspaces:
  dev:
    admin: alice@acme.example
    keys:
      out:
        owner: alice@acme.example
        expires_after_days: 90
        secret: { file: secrets/out.key }
      one:
        owner: alice@acme.example
        expires_after_days: 90
        secret: { file: public/k.key }
      two:
        owner: alice@acme.example
        expires_after_days: 90
        secret: { file: alias/k.key }
",
    );
    std::fs::create_dir(env.path().join("public")).unwrap();
    std::os::unix::fs::symlink(outside.path(), env.path().join("secrets")).unwrap();
    std::os::unix::fs::symlink("public", env.path().join("alias")).unwrap();
    let run = env.test().arg("validate").expect_code(1).run();
    insta::assert_snapshot!(run.stdout);
}

/// One run reports every problem, the one to fix first first, and nothing that follows from
/// it: a file that does not parse comes first and hides no reference into it as "not
/// defined"; a missing colon is reported on its own line; a schema error in a workspace does
/// not hide that workspace's other errors.
#[test]
fn errors_neither_cascade_nor_hide() {
    let env = TestDir::with_example_policies();
    env.edit(
        "policies/workspaces/dev.yaml",
        "    description: Every developer",
        "    description Every developer",
    );
    let run = env.test().arg("validate").expect_code(1).run();
    let errors: Vec<&str> = run
        .stdout
        .lines()
        .filter(|line| line.starts_with("error"))
        .collect();
    assert_eq!(
        errors,
        [
            "error[E003]: invalid YAML: `description` is not followed by `:`",
            "error: could not validate `policies`: 1 error in 7 files"
        ],
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("policies/workspaces/dev.yaml:6:16"),
        "{}",
        run.stdout
    );

    let env = TestDir::with_example_policies();
    env.edit(
        "policies/workspaces/dev.yaml",
        "    rpm: 60 ",
        "    rpm: sixty ",
    )
    .edit(
        "policies/workspaces/dev.yaml",
        "models: [mistral-small-latest, codestral-latest]",
        "models: [mistral-smal-latest, codestral-latest]",
    );
    let run = env.test().arg("validate").expect_code(1).run();
    assert!(run.stdout.contains("error[E012]"), "{}", run.stdout);
    assert!(run.stdout.contains("error[E033]"), "{}", run.stdout);
}
