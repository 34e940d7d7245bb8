//! The workflows a policy repository copies, and this project's own, read as a security
//! review would: the admin key only where tramontane runs, every third-party action pinned
//! to a commit, write permissions only on the jobs that write.

use tramontane_testkit::repo_root;

/// Every workflow and the composite action, with their text.
fn workflow_files() -> Vec<(String, String)> {
    let root = repo_root();
    let mut files = vec![("action.yml".to_owned(), root.join("action.yml"))];
    for entry in std::fs::read_dir(root.join(".github/workflows")).unwrap() {
        let path = entry.unwrap().path();
        if path
            .extension()
            .is_some_and(|ext| ext == "yml" || ext == "yaml")
        {
            let name = format!(
                ".github/workflows/{}",
                path.file_name().unwrap().to_string_lossy()
            );
            files.push((name, path));
        }
    }
    assert!(files.len() >= 5, "{files:?}");
    files
        .into_iter()
        .map(|(name, path)| (name, std::fs::read_to_string(path).unwrap()))
        .collect()
}

fn indent(line: &str) -> usize {
    line.len() - line.trim_start_matches([' ', '-']).len()
}

/// The keys enclosing line `at` of a block-style YAML file, innermost first.
fn ancestors(lines: &[&str], at: usize) -> Vec<String> {
    let mut keys = Vec::new();
    let mut depth = indent(lines[at]);
    for line in lines[..at].iter().rev() {
        let content = line.trim_start_matches([' ', '-']);
        if content.is_empty() || content.starts_with('#') {
            continue;
        }
        if indent(line) < depth {
            depth = indent(line);
            keys.push(
                content
                    .split(':')
                    .next()
                    .unwrap_or_default()
                    .trim()
                    .to_owned(),
            );
        }
    }
    keys
}

#[test]
fn secrets_reach_only_the_steps_that_use_them() {
    for (name, text) in workflow_files() {
        let lines: Vec<&str> = text.lines().collect();
        for (at, line) in lines.iter().enumerate() {
            if !line.contains("secrets.") || line.trim_start().starts_with('#') {
                continue;
            }
            let keys = ancestors(&lines, at);
            assert!(
                keys.iter().any(|key| key == "steps"),
                "{name}:{}: a secret outside any step (in {:?}): {line}",
                at + 1,
                keys
            );
        }
    }
}

#[test]
fn third_party_actions_are_pinned_to_a_commit() {
    let mut checked = 0;
    for (name, text) in workflow_files() {
        for (at, line) in text.lines().enumerate() {
            let Some(used) = line
                .trim_start()
                .trim_start_matches("- ")
                .strip_prefix("uses:")
            else {
                continue;
            };
            let (reference, comment) = used.split_once('#').unwrap_or((used, ""));
            let reference = reference.trim();
            if reference.starts_with("./") {
                continue;
            }
            let (action, commit) = reference
                .split_once('@')
                .unwrap_or_else(|| panic!("{name}:{}: no version: {line}", at + 1));
            assert!(action.contains('/'), "{name}:{}: {line}", at + 1);
            assert!(
                commit.len() == 40
                    && commit
                        .bytes()
                        .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()),
                "{name}:{}: {action} is pinned to `{commit}`, not a full commit SHA",
                at + 1
            );
            assert!(
                !comment.trim().is_empty(),
                "{name}:{}: say which tag the commit is, in a comment",
                at + 1
            );
            checked += 1;
        }
    }
    assert!(
        checked >= 8,
        "only {checked} actions found: the test reads less than it says"
    );
}

#[test]
fn only_the_jobs_that_write_may_write() {
    for (name, text) in workflow_files() {
        if name == "action.yml" {
            continue;
        }
        let lines: Vec<&str> = text.lines().collect();
        let top: Vec<&&str> = lines
            .iter()
            .filter(|line| line.starts_with("permissions:"))
            .collect();
        assert_eq!(
            top,
            [&"permissions: {}"],
            "{name}: the workflow grants nothing by default"
        );
        for (at, line) in lines.iter().enumerate() {
            if line.trim_end().ends_with(": write") {
                let keys = ancestors(&lines, at);
                assert_eq!(
                    keys.first().map(String::as_str),
                    Some("permissions"),
                    "{name}:{}",
                    at + 1
                );
                assert_eq!(
                    keys.get(2).map(String::as_str),
                    Some("jobs"),
                    "{name}:{}: write outside a job",
                    at + 1
                );
            }
        }
    }
    let drift = std::fs::read_to_string(repo_root().join(".github/workflows/drift.yml")).unwrap();
    // Each nightly check keeps its own issue; only the audit uploads SARIF.
    assert_eq!(drift.matches("issues: write").count(), 2);
    for job in ["drift", "audit"] {
        assert_eq!(
            job_block(&drift, job).matches("issues: write").count(),
            1,
            "{job}"
        );
    }
    assert_eq!(drift.matches("security-events: write").count(), 1);
    assert_eq!(
        job_block(&drift, "audit")
            .matches("security-events: write")
            .count(),
        1
    );
    assert_eq!(
        job_block(&drift, "configured").matches(": write").count(),
        0
    );
    let plan = std::fs::read_to_string(repo_root().join(".github/workflows/plan.yml")).unwrap();
    assert_eq!(plan.matches("security-events: write").count(), 1);
    assert_eq!(
        job_block(&plan, "scan")
            .matches("security-events: write")
            .count(),
        1
    );
}

/// The audit step reads `tramontane audit`'s exit codes as documented: 0 clean, 3 findings,
/// anything else fails the run; the scan step likewise with 0, 1 and the rest.
#[test]
fn the_audit_and_scan_steps_read_their_exit_codes() {
    let drift = std::fs::read_to_string(repo_root().join(".github/workflows/drift.yml")).unwrap();
    let audit = run_block(&drift, "Audit");
    assert!(
        audit.contains("tramontane audit --format markdown"),
        "{audit}"
    );
    assert!(audit.contains("tramontane audit --format sarif"), "{audit}");
    assert!(audit.contains("3) echo \"findings=true\""), "{audit}");
    assert!(audit.contains("*) exit \"$status\""), "{audit}");
    assert!(job_block(&drift, "audit").contains("github/codeql-action/upload-sarif@"));
    let plan = std::fs::read_to_string(repo_root().join(".github/workflows/plan.yml")).unwrap();
    let scan = run_block(&plan, "Scan");
    assert!(scan.contains("tramontane scan --format sarif"), "{scan}");
    assert!(scan.contains("--baseline \"$SCAN_BASELINE\""), "{scan}");
    assert!(scan.contains("*) exit \"$status\""), "{scan}");
    let scan_job = job_block(&plan, "scan");
    assert!(
        scan_job.contains("if: steps.scan.outputs.status == '1'"),
        "{scan_job}"
    );
    assert!(
        !scan_job.contains("secrets."),
        "the scan needs no secret: {scan_job}"
    );
}

#[test]
fn the_merge_applies_only_the_reviewed_plan_and_the_schedule_only_rotations() {
    let apply = std::fs::read_to_string(repo_root().join(".github/workflows/apply.yml")).unwrap();
    assert!(apply.contains("push) scope=(--reviewed-plan reviewed/plan.json) ;;"));
    assert!(apply.contains("schedule) scope=(--only rotations) ;;"));
    assert!(apply.contains("--name \"plan-$pr\""));
    let plan = std::fs::read_to_string(repo_root().join(".github/workflows/plan.yml")).unwrap();
    assert!(plan.contains("name: plan-${{ github.event.pull_request.number }}"));
}

/// The lines of the `run: |` block of the step named `step`, unindented.
pub(crate) fn run_block(text: &str, step: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let named = lines
        .iter()
        .position(|line| line.trim() == format!("- name: {step}"))
        .unwrap_or_else(|| panic!("no step named {step}"));
    let run = named
        + lines[named..]
            .iter()
            .position(|line| line.trim() == "run: |")
            .unwrap_or_else(|| panic!("step {step} has no `run: |` block"));
    let leading = |line: &str| line.len() - line.trim_start_matches(' ').len();
    let depth = leading(lines[run + 1]);
    lines[run + 1..]
        .iter()
        .take_while(|line| line.trim().is_empty() || leading(line) >= depth)
        .map(|line| line.get(depth..).unwrap_or_default())
        .collect::<Vec<_>>()
        .join("\n")
}

/// Each workflow's Plan step run as GitHub runs it (`bash -eo pipefail`), with a
/// `tramontane` that exits as told: 0 and 2 are a plan made, anything else (a usage error
/// included) fails the step, so the run fails and plan.yml marks its comment failed.
#[cfg(unix)]
#[test]
fn the_plan_steps_fail_on_any_status_but_0_and_2() {
    use std::os::unix::fs::PermissionsExt;
    for (workflow, output) in [
        ("plan.yml", None),
        ("apply.yml", Some("changes")),
        ("drift.yml", Some("drift")),
    ] {
        let text =
            std::fs::read_to_string(repo_root().join(".github/workflows").join(workflow)).unwrap();
        let script = run_block(&text, "Plan");
        for status in [0, 1, 2, 3, 64] {
            let dir = tempfile::tempdir().unwrap();
            let fake = dir.path().join("bin/tramontane");
            std::fs::create_dir_all(fake.parent().unwrap()).unwrap();
            std::fs::write(
                &fake,
                "#!/bin/sh\nif [ \"$1\" = plan ]; then echo \"$*\" >> calls; exit \"$PLAN_STATUS\"; fi\n",
            )
            .unwrap();
            std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
            let path = format!(
                "{}:{}",
                fake.parent().unwrap().display(),
                std::env::var("PATH").unwrap_or_default()
            );
            let ran = std::process::Command::new("bash")
                .args(["--noprofile", "--norc", "-eo", "pipefail", "-c", &script])
                .current_dir(dir.path())
                .env("PATH", path)
                .env("PLAN_STATUS", status.to_string())
                .env("GITHUB_OUTPUT", dir.path().join("output"))
                .env("GITHUB_STEP_SUMMARY", dir.path().join("summary"))
                .output()
                .unwrap();
            let code = ran.status.code();
            let expected = if status == 0 || status == 2 {
                0
            } else {
                status
            };
            assert_eq!(
                code,
                Some(expected),
                "{workflow} with plan exiting {status}: {}",
                String::from_utf8_lossy(&ran.stderr)
            );
            if let (Some(name), 0 | 2) = (output, status) {
                let written = std::fs::read_to_string(dir.path().join("output")).unwrap();
                assert_eq!(written, format!("{name}={}\n", status == 2), "{workflow}");
            }
            let calls = std::fs::read_to_string(dir.path().join("calls")).unwrap();
            assert!(calls.contains("--detailed-exitcode"), "{workflow}: {calls}");
            // Drift includes console steps; apply has nothing to do for them.
            assert_eq!(
                calls.contains("--count-manual"),
                workflow == "drift.yml",
                "{workflow}: {calls}"
            );
        }
    }
    let plan = std::fs::read_to_string(repo_root().join(".github/workflows/plan.yml")).unwrap();
    let failed = plan
        .find("if: failure() && steps.plan.outcome == 'failure'")
        .expect("plan.yml marks the comment failed when planning fails");
    assert!(plan[failed..].contains("--failed"));
}

/// The lines of job `job` of a workflow, from its key to the next job's.
fn job_block(text: &str, job: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let key = format!("  {job}:");
    let start = lines
        .iter()
        .position(|line| *line == key)
        .unwrap_or_else(|| panic!("no job {job}"));
    let next_key = |line: &&str| {
        let content = line.trim_start();
        let depth = line.len() - content.len();
        depth <= 2 && !content.is_empty() && !content.starts_with('#')
    };
    let end = lines[start + 1..]
        .iter()
        .position(next_key)
        .map_or(lines.len(), |at| start + 1 + at);
    lines[start..end].join("\n") + "\n"
}

/// The release workflow's Version step, run as GitHub runs it: a pushed tag is published
/// only if it is `v` and the version in Cargo.toml (the version the action installs); a run
/// by hand is a dry run.
#[test]
fn a_release_publishes_only_a_tag_of_the_version_in_cargo_toml() {
    let release =
        std::fs::read_to_string(repo_root().join(".github/workflows/release.yml")).unwrap();
    let script = run_block(&release, "Version");
    let version = env!("CARGO_PKG_VERSION");
    let tag = format!("v{version}");
    for (event, reference, publish) in [
        ("push", tag.as_str(), Some(true)),
        ("push", "v0.0.0-not-this", None),
        ("push", version, None),
        ("workflow_dispatch", tag.as_str(), Some(false)),
        ("workflow_dispatch", "main", Some(false)),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let ran = std::process::Command::new("bash")
            .args(["--noprofile", "--norc", "-eo", "pipefail", "-c", &script])
            .current_dir(repo_root())
            .env("EVENT", event)
            .env("REF_NAME", reference)
            .env("GITHUB_OUTPUT", dir.path().join("output"))
            .output()
            .unwrap();
        let output = std::fs::read_to_string(dir.path().join("output")).unwrap_or_default();
        match publish {
            Some(publish) => {
                assert!(
                    ran.status.success(),
                    "{event} {reference}: {}",
                    String::from_utf8_lossy(&ran.stdout)
                );
                let prerelease = version.contains('-');
                assert_eq!(
                    output,
                    format!("version={version}\npublish={publish}\nprerelease={prerelease}\n"),
                    "{event} {reference}"
                );
            }
            None => {
                assert_eq!(ran.status.code(), Some(1), "{event} {reference}");
                let said = String::from_utf8_lossy(&ran.stdout);
                assert!(
                    said.contains(&format!("::error::The tag {reference} does not match")),
                    "{said}"
                );
                assert_eq!(output, "", "{event} {reference}");
            }
        }
    }
}

#[test]
fn the_release_builds_every_target_the_action_installs() {
    let release =
        std::fs::read_to_string(repo_root().join(".github/workflows/release.yml")).unwrap();
    let built: std::collections::BTreeSet<&str> = release
        .lines()
        .filter_map(|line| line.trim().strip_prefix("- target: "))
        .collect();
    let installer = std::fs::read_to_string(repo_root().join("action/install.sh")).unwrap();
    let installed: std::collections::BTreeSet<&str> = installer
        .lines()
        .filter_map(|line| line.split_once(") echo ").map(|(_, rest)| rest))
        .map(|target| target.trim_end_matches(";;").trim())
        .collect();
    assert_eq!(built.len(), 4, "{built:?}");
    assert_eq!(built, installed);
}

/// Publishing (the release, its checksums' pull request, the image push) happens only for a
/// pushed tag, never in a dry run; and only those jobs can write.
#[test]
fn only_a_pushed_tag_publishes_anything() {
    let release =
        std::fs::read_to_string(repo_root().join(".github/workflows/release.yml")).unwrap();
    let publish = job_block(&release, "publish");
    assert!(publish.contains("    if: needs.version.outputs.publish == 'true'\n"));
    assert!(publish.contains("gh release create"));
    assert_eq!(release.matches("gh release create").count(), 1);

    let pin = job_block(&release, "pin-checksums");
    assert!(pin.contains("    needs: [version, publish]\n"), "{pin}");

    let image = job_block(&release, "image");
    let guard = image
        .find("if [ \"$PUBLISH\" = true ]; then")
        .expect("the image job pushes only when publishing");
    for publishing in ["docker login", "--push"] {
        assert_eq!(image.matches(publishing).count(), 1, "{publishing}");
        assert!(image.find(publishing).unwrap() > guard, "{publishing}");
    }
    assert!(release.contains("      PUBLISH: ${{ needs.version.outputs.publish }}\n"));

    for job in ["version", "build", "checksums"] {
        assert!(
            !job_block(&release, job).contains(": write"),
            "the {job} job runs in dry runs too: it must not be able to write"
        );
    }
}

/// The release's Propose the checksums step, run as GitHub runs it in a clone of the
/// default branch: a released version's lines replace its old ones, other versions' stay,
/// and the change goes to a branch and a pull request; a second run changes nothing.
#[cfg(unix)]
#[test]
fn the_checksums_pull_request_replaces_a_versions_lines_and_keeps_the_others() {
    use std::os::unix::fs::PermissionsExt;
    use std::process::Command;

    let release =
        std::fs::read_to_string(repo_root().join(".github/workflows/release.yml")).unwrap();
    let script = run_block(&release, "Propose the checksums");
    let dir = tempfile::tempdir().unwrap();
    let git = |cwd: &std::path::Path, args: &[&str]| {
        let ran = Command::new("git")
            .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
            .args(args)
            .current_dir(cwd)
            .env("HOME", dir.path())
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .output()
            .unwrap();
        assert!(ran.status.success(), "git {args:?}: {ran:?}");
        String::from_utf8_lossy(&ran.stdout).into_owned()
    };
    git(dir.path(), &["init", "--quiet", "--bare", "remote.git"]);
    let work = dir.path().join("work");
    std::fs::create_dir_all(work.join("action")).unwrap();
    git(&work, &["init", "--quiet"]);
    std::fs::write(
        work.join("action/checksums.txt"),
        "# the header\n\
         1111  tramontane-9.9.8-x86_64-unknown-linux-gnu.tar.gz\n\
         2222  tramontane-9.9.9-x86_64-unknown-linux-gnu.tar.gz\n",
    )
    .unwrap();
    git(&work, &["add", "action/checksums.txt"]);
    git(&work, &["commit", "--quiet", "-m", "init"]);
    git(&work, &["checkout", "--quiet", "-B", "main"]);
    git(&work, &["remote", "add", "origin", "../remote.git"]);
    git(&work, &["push", "--quiet", "origin", "main"]);
    std::fs::create_dir_all(work.join("dist")).unwrap();
    std::fs::write(
        work.join("dist/SHA256SUMS"),
        "3333  tramontane-9.9.9-x86_64-unknown-linux-gnu.tar.gz\n\
         4444  tramontane-9.9.9-aarch64-apple-darwin.tar.gz\n",
    )
    .unwrap();
    let bin = dir.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::write(bin.join("gh"), "#!/bin/sh\necho \"$*\" >> \"$GH_CALLS\"\n").unwrap();
    std::fs::set_permissions(bin.join("gh"), std::fs::Permissions::from_mode(0o755)).unwrap();
    let calls = dir.path().join("gh-calls");
    let run = || {
        Command::new("bash")
            .args(["--noprofile", "--norc", "-eo", "pipefail", "-c", &script])
            .current_dir(&work)
            .env(
                "PATH",
                format!(
                    "{}:{}",
                    bin.display(),
                    std::env::var("PATH").unwrap_or_default()
                ),
            )
            .env("HOME", dir.path())
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GH_CALLS", &calls)
            .env("VERSION", "9.9.9")
            .env("BASE", "main")
            .env("RELEASE_URL", "https://example.com/releases/tag/v9.9.9")
            .output()
            .unwrap()
    };

    let ran = run();
    assert!(ran.status.success(), "{ran:?}");
    let pinned = git(
        dir.path(),
        &[
            "--git-dir",
            "remote.git",
            "show",
            "checksums/v9.9.9:action/checksums.txt",
        ],
    );
    assert_eq!(
        pinned,
        "# the header\n\
         1111  tramontane-9.9.8-x86_64-unknown-linux-gnu.tar.gz\n\
         3333  tramontane-9.9.9-x86_64-unknown-linux-gnu.tar.gz\n\
         4444  tramontane-9.9.9-aarch64-apple-darwin.tar.gz\n"
    );
    let gh = std::fs::read_to_string(&calls).unwrap();
    assert!(
        gh.starts_with("pr create --base main --head checksums/v9.9.9 "),
        "{gh}"
    );

    // Once merged, the same release proposes nothing more.
    git(&work, &["checkout", "--quiet", "main"]);
    git(
        &work,
        &["merge", "--quiet", "--ff-only", "checksums/v9.9.9"],
    );
    std::fs::remove_file(&calls).unwrap();
    let again = run();
    assert!(again.status.success(), "{again:?}");
    assert!(String::from_utf8_lossy(&again.stdout).contains("already lists"));
    assert!(!calls.exists());
}
