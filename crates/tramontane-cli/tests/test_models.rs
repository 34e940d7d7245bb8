//! `tramontane models diff`: the bundled catalog against a live model list, through the real
//! binary.

use tramontane_testkit::fake_api::FakeApi;
use tramontane_testkit::{Test, TestDir, orgs, repo_root};

/// A live list with one model newer than the records, `mistral-medium-latest` moved to it,
/// a retired model still served, and most current models missing.
fn from_fixture() -> Test {
    Test::new()
        .current_dir(repo_root().join("crates/tramontane-cli/tests/fixtures/models"))
        .args(["models", "diff", "--from", "live.json"])
        .today("2026-12-07")
}

#[test]
fn human_output_names_new_retired_unserved_and_realiased_models() {
    let run = from_fixture().expect_code(0).run();
    insta::assert_snapshot!(run.stdout);
}

#[test]
fn json_output_is_the_same_drift_as_data() {
    let run = from_fixture()
        .args(["--format", "json"])
        .expect_code(0)
        .run();
    insta::assert_snapshot!(run.stdout);
    let json = run.json();
    assert_eq!(json["new"][0]["ids"][0], "mistral-medium-3-6");
    assert_eq!(json["realiased"][0]["alias"], "mistral-medium-latest");
    assert_eq!(json["retired_but_served"][0]["id"], "mistral-small-2506");
}

#[test]
fn detailed_exitcode_says_whether_anything_differs() {
    from_fixture()
        .arg("--detailed-exitcode")
        .expect_code(2)
        .run();
}

#[test]
fn the_admin_api_s_list_is_read_with_org_mistral() {
    let api = FakeApi::serving(orgs::demo(), "test-admin-key-do-not-print");
    // The fake serves the bundled catalog: judged on the records' own date, nothing differs.
    let run = Test::new()
        .args(["models", "diff", "--org", "mistral", "--detailed-exitcode"])
        .fake_api(&api)
        .today("2026-08-21")
        .expect_code(0)
        .run();
    assert!(
        run.stdout
            .contains("The live models match the bundled records."),
        "{}",
        run.stdout
    );
}

#[test]
fn without_a_list_to_compare_it_says_where_to_get_one() {
    let run = Test::new()
        .args(["models", "diff"])
        .env_remove("TRAMONTANE_ORG")
        .expect_code(1)
        .run();
    insta::assert_snapshot!(run.stderr, @r"
    error: no model list to compare with
    help: pass --org mistral (or sandbox:PATH) to ask an organization, or --from FILE with a saved `GET /v1/models` answer
    ");
}

#[test]
fn a_plan_that_still_names_a_retired_model_warns_about_it() {
    let env = TestDir::with_example_policies();
    env.edit(
        "policies/workspaces/dev.yaml",
        "models: [codestral-latest]",
        "models: [codestral-latest, codestral-2501]",
    );
    env.edit(
        "policies/workspaces/dev.yaml",
        "models: [mistral-small-latest, codestral-latest]",
        "models: [mistral-small-latest, codestral-latest, codestral-2501]",
    );
    let plan = env
        .test()
        .args(["plan", "--org", "sandbox:demo", "--format", "json"])
        .expect_code(0)
        .run()
        .json();
    let warnings: Vec<&str> = plan["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|warning| warning.as_str())
        .filter(|warning| warning.starts_with("W004"))
        .collect();
    assert_eq!(
        warnings,
        [
            "W004 (policies/workspaces/dev.yaml:13): `codestral-2501` was retired on 2025-11-30: requests to it fail",
            "W004 (policies/workspaces/dev.yaml:23): `codestral-2501` was retired on 2025-11-30: requests to it fail",
        ],
        "{plan:#}"
    );
}
