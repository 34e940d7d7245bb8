//! The test environment: a scratch directory to write policies into and a way to run the
//! real binary there with a controlled environment.

pub use tramontane_testkit::fake_api;
pub use tramontane_testkit::fake_github;

use std::path::{Path, PathBuf};
use std::process::Command;

use tramontane::provider::sandbox::{SandboxOrg, demo_org};
use tramontane::provider::{Operation, Outcome};

/// The day expiry checks count from in every test, so results never drift with the calendar.
pub const TODAY: &str = "2026-06-01";

pub struct TestEnv {
    dir: tempfile::TempDir,
}

/// What one run of the binary produced.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl TestEnv {
    pub fn new() -> TestEnv {
        TestEnv {
            dir: tempfile::tempdir().expect("a temporary directory"),
        }
    }

    /// A scratch directory holding a copy of the example organization's `policies/`.
    pub fn with_example_policies() -> TestEnv {
        let env = TestEnv::new();
        copy_dir(&repo_root().join("policies"), &env.root().join("policies"));
        env
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    /// Writes a file under the scratch directory, creating parents.
    pub fn write(&self, relative: &str, contents: impl AsRef<[u8]>) -> &TestEnv {
        let path = self.root().join(relative);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, contents).unwrap();
        self
    }

    pub fn run(&self, args: &[&str]) -> Run {
        run_in(self.root(), args)
    }
}

/// A `tramontane` command with an environment that does not depend on the machine.
pub fn command(dir: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_tramontane"));
    command
        .current_dir(dir)
        .env_remove("NO_COLOR")
        .env_remove("TRAMONTANE_POLICIES")
        .env_remove("TRAMONTANE_ORG")
        .env_remove("MISTRAL_ADMIN_API_KEY")
        .env_remove("MISTRAL_API_URL")
        .env("TRAMONTANE_TODAY", TODAY)
        .env("TERM", "dumb");
    command
}

pub fn run_in(dir: &Path, args: &[&str]) -> Run {
    command(dir)
        .args(args)
        .output()
        .expect("the binary runs")
        .into()
}

impl From<std::process::Output> for Run {
    fn from(output: std::process::Output) -> Run {
        Run {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8(output.stdout).expect("stdout is UTF-8"),
            stderr: String::from_utf8(output.stderr).expect("stderr is UTF-8"),
        }
    }
}

pub fn repo_root() -> PathBuf {
    // The workspace root: this crate lives at crates/tramontane-cli.
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// The demo org grown past every page size the API allows, so every list takes several pages: 2,100 more members (150 of them in one team),
/// 130 more teams and 1,050 keys.
pub fn demo_org_past_every_page_size() -> SandboxOrg {
    let mut org = demo_org(TODAY.parse().unwrap());
    let now = "2026-05-01T12:00:00Z";
    let workspace = org
        .workspaces
        .iter()
        .find(|(_, w)| w.name == "ml-workspace")
        .map(|(id, _)| id.clone())
        .unwrap();
    let mut people = Vec::new();
    for i in 0..2_100 {
        let outcome = org.perform(
            Operation::CreateUser {
                email: format!("p{i}@bulk.example"),
                first_name: "P".into(),
                last_name: format!("{i}"),
                roles: vec!["member".into()],
            },
            now,
        );
        if let Ok(Outcome::Created(id)) = outcome {
            people.push(id);
        }
    }
    let mut first_team = String::new();
    for i in 0..130 {
        if let Ok(Outcome::Created(id)) = org.perform(
            Operation::CreateGroup {
                name: format!("bulk-{i:03}"),
                description: String::new(),
            },
            now,
        ) && first_team.is_empty()
        {
            first_team = id;
        }
    }
    org.perform(
        Operation::AddGroupMembers {
            group: first_team,
            users: people[..150].to_vec(),
        },
        now,
    )
    .unwrap();
    for i in 0..1_050 {
        org.perform(
            Operation::CreateKey {
                workspace: workspace.clone(),
                user: people[0].clone(),
                name: format!("bulk-{i}"),
                expiration: None,
                known: Vec::new(),
            },
            now,
        )
        .unwrap();
    }
    org
}
