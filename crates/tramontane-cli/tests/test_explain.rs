use tramontane::policy::diagnostic::Code;

use tramontane_testkit::{Test, TestDir, repo_root};

/// `tramontane explain ARGS`, run in an empty directory: it reads no policy.
fn explain(args: &[&str]) -> Test {
    TestDir::new().test().arg("explain").args(args)
}

#[test]
fn explain_describes_a_code() {
    let run = explain(&["e034"]).expect_code(0).run();
    insta::assert_snapshot!(run.stdout, @r"
    E034: a key allows a model its workspace does not (error)

    A key's `models` must be a subset of its workspace's `models`: a key can narrow
    what the workspace allows, never widen it. Aliases count as the model they point
    to.
    ");
}

#[test]
fn explain_refuses_an_unknown_code() {
    let run = explain(&["E999"]).expect_code(1).run();
    insta::assert_snapshot!(run.stderr, @r"
    error: `E999` is not a tramontane error code
    help: run `tramontane explain` to list every code
    ");
}

/// The table of codes in docs/policy.md is part of the feature: it must list every code.
#[test]
fn every_code_is_listed_and_documented() {
    let listing = explain(&[]).expect_code(0).run().stdout;
    let docs = std::fs::read_to_string(repo_root().join("docs/policy.md")).unwrap();
    for code in Code::ALL {
        assert!(listing.contains(code.as_str()), "{code} not listed");
        assert!(
            docs.contains(&format!("| {code} |")),
            "{code} missing from the table of codes in docs/policy.md"
        );
    }
}
