//! Data-driven: every case under tests/fixtures/policies/{valid,invalid}/ is validated by the
//! real binary and its report compared with the snapshot kept beside it.

use std::path::{Path, PathBuf};

use tramontane_testkit::{Output, Test};

/// `tramontane validate --policies NAME ARGS` in `base`.
fn validate(base: &Path, name: &str, args: &[&str]) -> Output {
    Test::new()
        .current_dir(base)
        .args(["validate", "--policies", name])
        .args(args)
        .run()
}

fn cases(kind: &str) -> Vec<String> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/policies")
        .join(kind);
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|error| panic!("{}: {error}", dir.display()))
        .filter_map(Result::ok)
        .filter(|entry| entry.path().is_dir())
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Runs every case, checking all of them before failing so one run shows every mismatch.
fn check_cases(kind: &str, expected_code: i32) {
    let base = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/policies")
        .join(kind);
    let names = cases(kind);
    assert!(
        !names.is_empty(),
        "no fixture cases under {}",
        base.display()
    );
    let mut failures = Vec::new();
    for name in &names {
        let outcome = std::panic::catch_unwind(|| check_case(&base, name, expected_code));
        if let Err(panic) = outcome {
            let message = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_default();
            failures.push(format!("{kind}/{name}: {message}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        names.len(),
        failures.join("\n")
    );
}

fn check_case(base: &Path, name: &str, expected_code: i32) {
    let human = validate(base, name, &[]);
    assert_eq!(
        human.code, expected_code,
        "exit code {} (expected {expected_code})\n{}{}",
        human.code, human.stdout, human.stderr
    );
    assert!(human.stderr.is_empty(), "stderr: {}", human.stderr);

    // Every problem names its file, and a line wherever the file could be read.
    let json = validate(base, name, &["--format", "json"]);
    let problems: Vec<serde_json::Value> = serde_json::from_str(&json.stdout).unwrap();
    for problem in &problems {
        assert!(problem["file"].is_string(), "no file in {problem}");
        assert!(problem["help"].is_string(), "no help in {problem}");
    }
    if expected_code != 0 {
        assert!(
            problems.iter().any(|p| p["severity"] == "error"),
            "an invalid case reported no error"
        );
    }

    insta::with_settings!({
        snapshot_path => base.join(name),
        prepend_module_to_snapshot => false,
        omit_expression => true,
        description => format!("tramontane validate --policies {name}"),
    }, {
        insta::assert_snapshot!("diagnostics", human.stdout);
    });
}

#[test]
fn invalid_policies_report_every_problem() {
    check_cases("invalid", 1);
}

#[test]
fn valid_policies_pass() {
    check_cases("valid", 0);
}
