//! The example organization a reader edits, `policies/` at the repository's root, and the
//! suite's own copy of it, `tests/fixtures/example/policies/`. The README has the reader break
//! the example for `validate` and issue a gateway key into it; the suite runs on its copy, so
//! what a reader does to the example changes no test's outcome.

use std::collections::BTreeMap;
use std::path::Path;

use tramontane_testkit::{TestDir, copy_dir, example_policies, repo_root};

/// Every file under `dir`, by its path relative to `dir`, with its bytes.
fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, into: &mut BTreeMap<String, Vec<u8>>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(root, &path, into);
            } else {
                let relative = path.strip_prefix(root).unwrap().to_string_lossy();
                into.insert(relative.replace('\\', "/"), std::fs::read(&path).unwrap());
            }
        }
    }
    let mut into = BTreeMap::new();
    walk(dir, dir, &mut into);
    into
}

/// `git` in the repository's root, failing the test with git's message.
fn git(args: &[&str]) -> Vec<u8> {
    let output = std::process::Command::new("git")
        .current_dir(repo_root())
        .args(args)
        .env_remove("GIT_DIR")
        .env_remove("GIT_WORK_TREE")
        .output()
        .expect("git runs");
    assert!(
        output.status.success(),
        "git {args:?} in the repository: {}\nthis test compares the suite's copy of the example \
         with `policies/` as committed, so it needs the repository's git history",
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

/// The copy is the example as committed (`HEAD`), not as the working tree holds it: a reader's
/// uncommitted edits are theirs, and a change committed to the example must reach the copy.
#[test]
fn the_suites_copy_is_the_example_as_committed() {
    let listed = String::from_utf8(git(&["ls-tree", "-r", "--name-only", "HEAD", "policies"]))
        .expect("git lists UTF-8 paths");
    let committed: BTreeMap<String, Vec<u8>> = listed
        .lines()
        .map(|path| {
            let relative = path.strip_prefix("policies/").unwrap().to_owned();
            (relative, git(&["show", &format!("HEAD:{path}")]))
        })
        .collect();
    assert!(!committed.is_empty(), "no `policies/` in HEAD");
    let copy = files(&example_policies());
    let differing: Vec<&String> = committed
        .keys()
        .chain(copy.keys())
        .filter(|name| committed.get(*name) != copy.get(*name))
        .collect();
    assert!(
        differing.is_empty(),
        "the suite's copy of the example differs from `policies/` at HEAD in {differing:?}; \
         after changing the example on purpose, copy it over:\n  \
         rm -r crates/tramontane-cli/tests/fixtures/example/policies && \
         git archive HEAD policies | tar -x -C crates/tramontane-cli/tests/fixtures/example"
    );
}

/// What the README has a reader do to `policies/`, done to a copy laid out as a clone: the
/// copy is dirty afterwards, and the suite's fixture, and every scratch copy a test gets, is
/// what it was.
#[test]
fn editing_the_example_as_the_readme_does_leaves_the_suites_copy_alone() {
    let before = files(&example_policies());
    let clone = TestDir::new();
    copy_dir(&example_policies(), &clone.join("policies"));

    // The quickstart's two mistakes, then the gateway section's first command.
    clone
        .edit(
            "policies/workspaces/dev.yaml",
            "    description: Every developer",
            "    descripton: Every developer",
        )
        .edit(
            "policies/workspaces/dev.yaml",
            "        rpm: 30\n",
            "        rpm: 300\n",
        );
    clone.test().args(["validate"]).expect_code(1).run();
    clone.edit(
        "policies/workspaces/dev.yaml",
        "    descripton: Every developer",
        "    description: Every developer",
    );
    clone.edit(
        "policies/workspaces/dev.yaml",
        "        rpm: 300\n",
        "        rpm: 30\n",
    );
    clone
        .test()
        .args([
            "gateway",
            "issue",
            "--member",
            "alice.martin@acme.example",
            "--workspace",
            "dev-workspace",
            "--sink",
            "file:secrets/alice.key",
        ])
        .expect_code(0)
        .run();
    let dirtied = files(&clone.join("policies"));
    assert_ne!(
        dirtied.get("gateway-keys.yaml"),
        before.get("gateway-keys.yaml"),
        "`gateway issue` should have added an entry to the copy"
    );

    assert!(
        !example_policies().starts_with(repo_root().join("policies")),
        "the suite's copy must not be the example a reader edits"
    );
    assert_eq!(files(&example_policies()), before, "the fixture changed");
    let scratch = TestDir::with_example_policies();
    assert_eq!(files(&scratch.join("policies")), before);
    let run = scratch.test().arg("validate").expect_code(0).run();
    assert_eq!(run.stdout.trim_end(), "`policies` is valid: 7 files");
}
