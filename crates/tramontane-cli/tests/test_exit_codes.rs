//! Exit codes as scripts and CI read them: 0 done, 1 failed (usage errors included), 2
//! changes with `--detailed-exitcode`, 3 refused by a guard. A usage error must never look
//! like "changes": `plan.yml` would post a plan that was never made.

use tramontane_testkit::TestDir;

#[test]
fn a_mistyped_flag_exits_1_with_claps_message() {
    let env = TestDir::with_example_policies();
    let run = env
        .test()
        .args(["plan", "--org", "sandbox:demo", "--detailed-exitcod"])
        .expect_code(1)
        .run();
    assert!(
        run.stderr
            .contains("error: unexpected argument '--detailed-exitcod' found"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("a similar argument exists: '--detailed-exitcode'"),
        "{}",
        run.stderr
    );
    assert_eq!(run.stdout, "");
}

#[test]
fn every_kind_of_usage_error_exits_1() {
    let env = TestDir::with_example_policies();
    for args in [
        &["plna"][..],
        &[][..],
        &["plan", "--format", "yaml"][..],
        &["plan", "--org", "sandbox:demo", "--count-manual"][..],
        &["apply", "a.json", "b.json"][..],
    ] {
        let run = env.run(args);
        assert_eq!(run.code, 1, "{args:?}: {}", run.stderr);
        // With no command at all clap shows the help, on stderr: it is still a mistake.
        assert!(!run.stderr.is_empty(), "{args:?}");
        assert_eq!(run.stdout, "", "{args:?}");
    }
}

#[test]
fn help_and_version_exit_0_on_stdout() {
    let env = TestDir::new();
    for args in [
        &["--help"][..],
        &["-h"][..],
        &["help"][..],
        &["plan", "--help"][..],
        &["help", "apply"][..],
    ] {
        let run = env.run(args);
        assert_eq!(run.code, 0, "{args:?}: {}", run.stderr);
        assert!(
            run.stdout.contains("Usage: tramontane"),
            "{args:?}: {}",
            run.stdout
        );
        assert_eq!(run.stderr, "", "{args:?}");
    }
    let run = env.test().arg("--version").expect_code(0).run();
    assert_eq!(
        run.stdout,
        format!("tramontane {}\n", env!("CARGO_PKG_VERSION"))
    );
}

/// The demo org imported as policies, with one workspace's budget changed: a plan whose
/// only entry is a console step apply cannot take.
fn manual_only() -> TestDir {
    let env = TestDir::with_example_policies();
    env.test()
        .args(["import", "--org", "sandbox:demo", "--out", "imported"])
        .expect_code(0)
        .run();
    let path = env.path().join("imported/workspaces/dev-workspace.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains("spend_limit: 50\n"), "{text}");
    std::fs::write(
        &path,
        text.replace("spend_limit: 50\n", "spend_limit: 75\n"),
    )
    .unwrap();
    env
}

#[test]
fn manual_steps_alone_are_no_changes_unless_counted() {
    let env = manual_only();
    let plan = ["plan", "--org", "sandbox:demo", "--policies", "imported"];
    let run = env.run(&[&plan[..], &["--detailed-exitcode"]].concat());
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout.contains(
            "Plan: 0 to create, 0 to update, 0 to delete, 0 to replace, 0 to rotate; 1 manual step."
        ),
        "{}",
        run.stdout
    );
    let counted = env.run(&[&plan[..], &["--detailed-exitcode", "--count-manual"]].concat());
    assert_eq!(counted.code, 2, "{}", counted.stderr);
    assert_eq!(counted.stdout, run.stdout);
    // Apply has nothing to do either: the daily apply that skips on 0 misses nothing.
    let apply = env.run(&[&["apply", "--auto-approve"][..], &plan[1..]].concat());
    assert_eq!(apply.code, 0, "{}", apply.stderr);
    assert!(
        apply.stdout.ends_with("Nothing to apply.\n"),
        "{}",
        apply.stdout
    );
}

#[test]
fn a_plan_with_changes_and_manual_steps_exits_2_either_way() {
    let env = manual_only();
    let path = env.path().join("imported/teams.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains("External contractors"), "{text}");
    std::fs::write(
        &path,
        text.replace("External contractors", "Outside contractors"),
    )
    .unwrap();
    let plan = ["plan", "--org", "sandbox:demo", "--policies", "imported"];
    for extra in [
        &["--detailed-exitcode"][..],
        &["--detailed-exitcode", "--count-manual"],
    ] {
        let run = env.run(&[&plan[..], extra].concat());
        assert_eq!(run.code, 2, "{extra:?}: {}{}", run.stdout, run.stderr);
    }
}
