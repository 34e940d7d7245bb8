//! The composite action's installer, action/install.sh, run step by step as action.yml runs
//! it, with the environment a runner gives it, against a release served from loopback: a
//! verified binary is put on the PATH, a tampered one is refused and nothing runs, a release
//! that does not exist (404) is refused saying what to do, and a release cut by
//! scripts/release installs end to end.

#![cfg(unix)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use crate::test_workflows::run_block;
use tramontane_testkit::repo_root;

/// The version the fake action is at, and the asset a Linux x64 runner asks for.
const VERSION: &str = "9.8.7";
const LINUX_X64: &str = "x86_64-unknown-linux-gnu";

fn asset(target: &str) -> String {
    format!("tramontane-{VERSION}-{target}.tar.gz")
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// A release download server on loopback: files by URL path, anything else 404, and the
/// paths asked for, in order.
struct ReleaseServer {
    url: String,
    state: Arc<Served>,
    _runtime: tokio::runtime::Runtime,
}

#[derive(Default)]
struct Served {
    files: Mutex<HashMap<String, (u16, Vec<u8>)>>,
    /// A directory served as /download/<path>, as a mirror lays releases out.
    dir: Mutex<Option<PathBuf>>,
    requests: Mutex<Vec<String>>,
}

async fn serve(State(served): State<Arc<Served>>, uri: Uri) -> Response {
    served.requests.lock().unwrap().push(uri.path().to_owned());
    if let Some((status, body)) = served.files.lock().unwrap().get(uri.path()) {
        return (StatusCode::from_u16(*status).unwrap(), body.clone()).into_response();
    }
    let dir = served.dir.lock().unwrap().clone();
    if let (Some(dir), Some(path)) = (dir, uri.path().strip_prefix("/download/"))
        && !path.split('/').any(|part| part == ".." || part.is_empty())
        && let Ok(body) = std::fs::read(dir.join(path))
    {
        return (StatusCode::OK, body).into_response();
    }
    StatusCode::NOT_FOUND.into_response()
}

impl ReleaseServer {
    fn start() -> ReleaseServer {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let state = Arc::new(Served::default());
        let app = axum::Router::new()
            .fallback(serve)
            .with_state(state.clone());
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind(SocketAddr::from((
                [127, 0, 0, 1],
                0,
            ))))
            .unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        runtime.spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        ReleaseServer {
            url,
            state,
            _runtime: runtime,
        }
    }

    /// The base URL the installer is pointed at: BASE/v<version>/<file>.
    fn base(&self) -> String {
        format!("{}/download", self.url)
    }

    /// Serves the files under `dir` as BASE/<path>: BASE/v<version>/<file> is
    /// `dir/v<version>/<file>`.
    fn serve_dir(&self, dir: &Path) {
        *self.state.dir.lock().unwrap() = Some(dir.to_owned());
    }

    fn publish(&self, file: &str, body: &[u8]) {
        self.answer(file, 200, body);
    }

    fn answer(&self, file: &str, status: u16, body: &[u8]) {
        self.state.files.lock().unwrap().insert(
            format!("/download/v{VERSION}/{file}"),
            (status, body.to_vec()),
        );
    }

    /// The file names asked for, in order.
    fn requests(&self) -> Vec<String> {
        self.state
            .requests
            .lock()
            .unwrap()
            .iter()
            .map(|path| path.rsplit('/').next().unwrap_or_default().to_owned())
            .collect()
    }
}

/// A release tarball as the release workflow packs it, holding a `tramontane` that is a
/// shell script printing `reports` for --version.
fn tarball(target: &str, reports: &str) -> Vec<u8> {
    tarball_doing(target, reports, "")
}

/// The same, with more in the script after it answers --version.
fn tarball_doing(target: &str, reports: &str, more: &str) -> Vec<u8> {
    let staging = tempfile::tempdir().unwrap();
    let name = format!("tramontane-{VERSION}-{target}");
    let dir = staging.path().join(&name);
    std::fs::create_dir_all(&dir).unwrap();
    let binary = dir.join("tramontane");
    std::fs::write(
        &binary,
        format!("#!/bin/sh\nif [ \"$1\" = --version ]; then echo '{reports}'; fi\n{more}\n"),
    )
    .unwrap();
    std::fs::set_permissions(&binary, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(dir.join("README.md"), "# tramontane\n").unwrap();
    let packed = Command::new("tar")
        .args(["-czf", "release.tar.gz", &name])
        .current_dir(staging.path())
        .output()
        .unwrap();
    assert!(packed.status.success(), "{packed:?}");
    std::fs::read(staging.path().join("release.tar.gz")).unwrap()
}

fn sums(entries: &[(&str, &[u8])]) -> String {
    entries
        .iter()
        .map(|(name, bytes)| format!("{}  {name}\n", sha256_hex(bytes)))
        .collect()
}

/// A runner's job: the action checked out at a version (its Cargo.toml, and
/// action/checksums.txt when given), and the files and directories a runner provides.
struct Job {
    dir: tempfile::TempDir,
    base: String,
    os: &'static str,
    arch: &'static str,
}

impl Job {
    fn new(server: &ReleaseServer) -> Job {
        Job::at(server, VERSION)
    }

    /// An action whose Cargo.toml says `version`.
    fn at(server: &ReleaseServer, version: &str) -> Job {
        let job = Job {
            dir: tempfile::tempdir().unwrap(),
            base: server.base(),
            os: "Linux",
            arch: "X64",
        };
        std::fs::create_dir_all(job.action().join("action")).unwrap();
        std::fs::create_dir_all(job.action().join("crates/tramontane-cli/src")).unwrap();
        std::fs::write(
            job.action().join("Cargo.toml"),
            format!(
                "[workspace]\nmembers = [\"crates/*\"]\n\n[workspace.package]\nversion = \"{version}\"\nrepository = \"https://github.com/tramontane-rs/tramontane\"\n"
            ),
        )
        .unwrap();
        std::fs::write(
            job.action().join("crates/tramontane-cli/src/main.rs"),
            "fn main() {}\n",
        )
        .unwrap();
        std::fs::create_dir_all(job.temp()).unwrap();
        std::fs::create_dir_all(job.dir.path().join("workspace")).unwrap();
        std::fs::create_dir_all(job.dir.path().join("home")).unwrap();
        job
    }

    fn on(mut self, os: &'static str, arch: &'static str) -> Job {
        self.os = os;
        self.arch = arch;
        self
    }

    fn action(&self) -> PathBuf {
        self.dir.path().join("action")
    }

    fn temp(&self) -> PathBuf {
        self.dir.path().join("runner-temp")
    }

    fn pin(&self, checksums: &str) {
        std::fs::write(self.action().join("action/checksums.txt"), checksums).unwrap();
    }

    /// One step of action.yml: `install.sh <step>` with the runner's environment.
    fn step(&self, step: &str, env: &[(&str, &str)]) -> Output {
        let mut command = Command::new("bash");
        command
            .arg(repo_root().join("action/install.sh"))
            .arg(step)
            .current_dir(self.dir.path())
            .env("GITHUB_ACTION_PATH", self.action())
            .env("GITHUB_OUTPUT", self.dir.path().join("output"))
            .env("GITHUB_PATH", self.dir.path().join("path"))
            .env("RUNNER_OS", self.os)
            .env("RUNNER_ARCH", self.arch)
            .env("RUNNER_TEMP", self.temp())
            // A published action lives outside the workflow's checkout.
            .env("GITHUB_WORKSPACE", self.dir.path().join("workspace"))
            .env("HOME", self.dir.path().join("home"))
            .env("TRAMONTANE_RELEASE_URL", &self.base)
            .env_remove("INPUT_RELEASE_URL")
            .env_remove("INPUT_FROM_SOURCE")
            .env_remove("INSTALL_ROOT")
            .env_remove("MISTRAL_ADMIN_API_KEY")
            .env_remove("TRAMONTANE_ACTION_BUILD_COMMAND");
        for (key, value) in env {
            command.env(key, value);
        }
        command.output().unwrap()
    }

    /// The directories the steps added to the PATH.
    fn path(&self) -> Vec<String> {
        read_lines(&self.dir.path().join("path"))
    }

    /// The step outputs written, as `name=value` lines.
    fn outputs(&self) -> Vec<String> {
        read_lines(&self.dir.path().join("output"))
    }

    fn output(&self, name: &str) -> Option<String> {
        self.outputs()
            .iter()
            .find_map(|line| line.strip_prefix(&format!("{name}=")).map(str::to_owned))
    }
}

fn read_lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Every file named `tramontane` under a directory.
fn binaries_under(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return found;
    };
    for entry in entries {
        let path = entry.unwrap().path();
        if path.is_dir() {
            found.extend(binaries_under(&path));
        } else if path.file_name().is_some_and(|name| name == "tramontane") {
            found.push(path);
        }
    }
    found
}

fn version_of(binary_dir: &str) -> String {
    let ran = Command::new(Path::new(binary_dir).join("tramontane"))
        .arg("--version")
        .output()
        .unwrap();
    String::from_utf8_lossy(&ran.stdout).trim().to_owned()
}

#[test]
fn a_verified_release_is_installed_and_put_on_the_path() {
    let server = ReleaseServer::start();
    let good = tarball(LINUX_X64, &format!("tramontane {VERSION}"));
    server.publish(&asset(LINUX_X64), &good);
    server.publish("SHA256SUMS", sums(&[(&asset(LINUX_X64), &good)]).as_bytes());
    let job = Job::new(&server);

    let ran = job.step("download", &[]);

    assert!(ran.status.success(), "{}", stderr(&ran));
    assert_eq!(
        server.requests(),
        [asset(LINUX_X64), "SHA256SUMS".to_owned()]
    );
    let path = job.path();
    assert_eq!(path.len(), 1, "{path:?}");
    assert_eq!(version_of(&path[0]), format!("tramontane {VERSION}"));
    assert_eq!(job.output("source").as_deref(), Some("release"));
    assert_eq!(job.output("version"), Some(format!("tramontane {VERSION}")));
    let said = String::from_utf8_lossy(&ran.stdout);
    assert!(said.contains(&sha256_hex(&good)), "{said}");
}

#[test]
fn a_tampered_tarball_is_refused_and_nothing_is_installed() {
    let server = ReleaseServer::start();
    let good = tarball(LINUX_X64, &format!("tramontane {VERSION}"));
    let tampered = tarball(LINUX_X64, "tramontane 9.8.7 with a surprise");
    server.publish(&asset(LINUX_X64), &tampered);
    server.publish("SHA256SUMS", sums(&[(&asset(LINUX_X64), &good)]).as_bytes());
    let job = Job::new(&server);

    let ran = job.step("download", &[]);

    assert_ne!(ran.status.code(), Some(0));
    let error = stderr(&ran);
    assert!(error.contains("::error::Checksum mismatch"), "{error}");
    assert!(error.contains(&asset(LINUX_X64)), "{error}");
    assert!(error.contains(&sha256_hex(&tampered)), "{error}");
    assert!(error.contains(&sha256_hex(&good)), "{error}");
    assert!(error.contains("SHA256SUMS"), "{error}");
    assert!(job.path().is_empty(), "{:?}", job.path());
    // No `source` output: the build steps do not run either.
    assert!(job.outputs().is_empty(), "{:?}", job.outputs());
    assert!(binaries_under(&job.temp()).is_empty());
}

#[test]
fn a_release_that_does_not_exist_is_refused_saying_what_to_do() {
    let server = ReleaseServer::start();
    let job = Job::new(&server);
    let ran = job.step("download", &[]);
    assert_ne!(ran.status.code(), Some(0));
    let error = stderr(&ran);
    let base = format!("{}/v{VERSION}", server.base());
    for said in [
        format!(
            "::error::There is no release v{VERSION}: {base}/{}",
            asset(LINUX_X64)
        ),
        format!("This action is at version {VERSION}"),
        "nothing was installed".to_owned(),
        "Pin the action to the commit of a release that exists".to_owned(),
        "set the input from-source to true".to_owned(),
        "cargo install --locked --path crates/tramontane-cli".to_owned(),
    ] {
        assert!(error.contains(&said), "{said:?} not in {error}");
    }
    assert_eq!(
        server.requests(),
        [asset(LINUX_X64), "SHA256SUMS".to_owned()]
    );
    assert!(job.path().is_empty());
    assert_eq!(job.output("source"), None, "no silent fallback to a build");
    assert!(binaries_under(&job.temp()).is_empty());

    // A release that exists, without this platform's asset.
    let server = ReleaseServer::start();
    let other = tarball("aarch64-apple-darwin", &format!("tramontane {VERSION}"));
    server.publish(&asset("aarch64-apple-darwin"), &other);
    server.publish(
        "SHA256SUMS",
        sums(&[(&asset("aarch64-apple-darwin"), &other)]).as_bytes(),
    );
    let job = Job::new(&server);
    let ran = job.step("download", &[]);
    assert_ne!(ran.status.code(), Some(0));
    let error = stderr(&ran);
    assert!(
        error.contains(&format!(
            "The release v{VERSION} exists at {}/v{VERSION} but has no {} (HTTP 404), so there is no tramontane {VERSION} for {LINUX_X64}.",
            server.base(),
            asset(LINUX_X64)
        )),
        "{error}"
    );
    assert!(error.contains("from-source to true"), "{error}");
    assert!(job.path().is_empty());
    assert_eq!(job.output("source"), None, "no silent fallback to a build");
}

#[test]
fn a_source_build_is_keyed_by_its_source_and_put_on_the_path() {
    let server = ReleaseServer::start();
    let job = Job::new(&server);

    let ran = job.step("download", &[("INPUT_FROM_SOURCE", "true")]);
    assert!(ran.status.success(), "{}", stderr(&ran));
    assert!(server.requests().is_empty());
    assert!(job.path().is_empty());
    assert_eq!(job.output("source").as_deref(), Some("build"));
    let key = job.output("key").unwrap();
    let digest = key.strip_prefix("tramontane-Linux-X64-").unwrap();
    assert!(
        digest.len() == 16 && digest.bytes().all(|b| b.is_ascii_hexdigit()),
        "{key}"
    );
    let root = job.output("root").unwrap();

    // The build step, with a command standing in for `cargo install`.
    let build = format!(
        "mkdir -p \"$INSTALL_ROOT/bin\" && printf '#!/bin/sh\\necho \"tramontane {VERSION}\"\\n' > \"$INSTALL_ROOT/bin/tramontane\" && chmod +x \"$INSTALL_ROOT/bin/tramontane\""
    );
    let built = job.step(
        "build",
        &[
            ("INSTALL_ROOT", &root),
            ("TRAMONTANE_ACTION_BUILD_COMMAND", &build),
        ],
    );
    assert!(built.status.success(), "{}", stderr(&built));
    assert!(
        job.path().is_empty(),
        "the build step puts nothing on the PATH"
    );

    let activated = job.step("activate", &[("INSTALL_ROOT", &root)]);
    assert!(activated.status.success(), "{}", stderr(&activated));
    assert_eq!(job.path(), [format!("{root}/bin")]);
    assert_eq!(job.output("version"), Some(format!("tramontane {VERSION}")));
}

#[test]
fn the_source_build_refuses_to_run_next_to_the_admin_key() {
    let server = ReleaseServer::start();
    let job = Job::new(&server);
    let marker = job.dir.path().join("built");
    let build = format!("touch '{}'", marker.display());
    let root = job.dir.path().join("root");

    let ran = job.step(
        "build",
        &[
            ("INSTALL_ROOT", root.to_str().unwrap()),
            ("TRAMONTANE_ACTION_BUILD_COMMAND", &build),
            ("MISTRAL_ADMIN_API_KEY", "sk-admin-test"),
        ],
    );

    assert_ne!(ran.status.code(), Some(0));
    let error = stderr(&ran);
    assert!(
        error.contains("::error::MISTRAL_ADMIN_API_KEY is set while tramontane is built"),
        "{error}"
    );
    assert!(!error.contains("sk-admin-test"), "{error}");
    assert!(!marker.exists(), "the build command ran");
}

#[test]
fn platforms_without_release_binaries_local_checkouts_and_from_source_build_without_downloading() {
    let server = ReleaseServer::start();
    let good = tarball(LINUX_X64, &format!("tramontane {VERSION}"));
    server.publish(&asset(LINUX_X64), &good);
    server.publish("SHA256SUMS", sums(&[(&asset(LINUX_X64), &good)]).as_bytes());

    let windows = Job::new(&server).on("Windows", "X64");
    let ran = windows.step("download", &[]);
    assert!(ran.status.success(), "{}", stderr(&ran));
    assert_eq!(windows.output("source").as_deref(), Some("build"));

    let from_source = Job::new(&server);
    let ran = from_source.step("download", &[("INPUT_FROM_SOURCE", "true")]);
    assert!(ran.status.success(), "{}", stderr(&ran));
    assert_eq!(from_source.output("source").as_deref(), Some("build"));

    // `uses: ./`: the action is the workflow's own checkout, maybe ahead of any release.
    let local = Job::new(&server);
    let workspace = local.dir.path().to_str().unwrap().to_owned();
    let ran = local.step("download", &[("GITHUB_WORKSPACE", &workspace)]);
    assert!(ran.status.success(), "{}", stderr(&ran));
    assert_eq!(local.output("source").as_deref(), Some("build"));
    assert!(
        String::from_utf8_lossy(&ran.stdout).contains("own checkout"),
        "{ran:?}"
    );

    assert!(server.requests().is_empty(), "{:?}", server.requests());

    // Unless told to install the release all the same.
    let local = Job::new(&server);
    let workspace = local.dir.path().to_str().unwrap().to_owned();
    let ran = local.step(
        "download",
        &[
            ("GITHUB_WORKSPACE", &workspace),
            ("INPUT_FROM_SOURCE", "false"),
        ],
    );
    assert!(ran.status.success(), "{}", stderr(&ran));
    assert_eq!(local.output("source").as_deref(), Some("release"));

    let wrong = Job::new(&server);
    let ran = wrong.step("download", &[("INPUT_FROM_SOURCE", "yes")]);
    assert_ne!(ran.status.code(), Some(0));
    assert!(stderr(&ran).contains("it takes auto, true or false"));
}

#[test]
fn the_checksum_pinned_at_the_actions_commit_wins_over_the_release() {
    let good = tarball(LINUX_X64, &format!("tramontane {VERSION}"));
    // As the release workflow writes it, but with the digest in capitals.
    let pinned = format!(
        "# a comment\n{}  {}\n",
        sha256_hex(&good).to_uppercase(),
        asset(LINUX_X64)
    );

    // Pinned: the release's SHA256SUMS is not even asked for.
    let server = ReleaseServer::start();
    server.publish(&asset(LINUX_X64), &good);
    let job = Job::new(&server);
    job.pin(&pinned);
    let ran = job.step("download", &[]);
    assert!(ran.status.success(), "{}", stderr(&ran));
    assert_eq!(server.requests(), [asset(LINUX_X64)]);
    assert_eq!(job.path().len(), 1);

    // The release replaced, tarball and SHA256SUMS alike: the pinned digest refuses it.
    let replaced = tarball_doing(
        LINUX_X64,
        &format!("tramontane {VERSION}"),
        "echo 'something else'",
    );
    let server = ReleaseServer::start();
    server.publish(&asset(LINUX_X64), &replaced);
    server.publish(
        "SHA256SUMS",
        sums(&[(&asset(LINUX_X64), &replaced)]).as_bytes(),
    );
    let job = Job::new(&server);
    job.pin(&pinned);
    let ran = job.step("download", &[]);
    assert_ne!(ran.status.code(), Some(0));
    let error = stderr(&ran);
    assert!(error.contains("action/checksums.txt"), "{error}");
    assert!(error.contains(&sha256_hex(&replaced)), "{error}");
    assert!(error.contains(&sha256_hex(&good)), "{error}");
    assert!(job.path().is_empty());
    assert!(binaries_under(&job.temp()).is_empty());
}

/// What a release server is made to serve.
type Publish<'a> = Box<dyn Fn(&ReleaseServer) + 'a>;

#[test]
fn an_unverifiable_or_unreachable_release_is_refused_not_built() {
    let good = tarball(LINUX_X64, &format!("tramontane {VERSION}"));
    let other = tarball("aarch64-apple-darwin", &format!("tramontane {VERSION}"));
    let cases: [(&str, Publish, &str); 4] = [
        (
            "no SHA256SUMS",
            Box::new(|server| server.publish(&asset(LINUX_X64), &good)),
            "SHA256SUMS answered HTTP 404",
        ),
        (
            "SHA256SUMS without this asset",
            Box::new(|server| {
                server.publish(&asset(LINUX_X64), &good);
                server.publish(
                    "SHA256SUMS",
                    sums(&[(&asset("aarch64-apple-darwin"), &other)]).as_bytes(),
                );
            }),
            "Neither action/checksums.txt at the action's commit nor",
        ),
        (
            "a server error",
            Box::new(|server| server.answer(&asset(LINUX_X64), 503, b"busy")),
            "answered HTTP 503",
        ),
        (
            "a binary of another version",
            Box::new(|server| {
                let mislabelled = tarball(LINUX_X64, "tramontane 1.0.0");
                server.publish(&asset(LINUX_X64), &mislabelled);
                server.publish(
                    "SHA256SUMS",
                    sums(&[(&asset(LINUX_X64), &mislabelled)]).as_bytes(),
                );
            }),
            "reports 'tramontane 1.0.0'",
        ),
    ];
    for (case, release, message) in cases {
        let server = ReleaseServer::start();
        release(&server);
        let job = Job::new(&server);
        let ran = job.step("download", &[]);
        assert_ne!(ran.status.code(), Some(0), "{case}");
        let error = stderr(&ran);
        assert!(error.contains("::error::"), "{case}: {error}");
        assert!(error.contains(message), "{case}: {error}");
        assert!(job.path().is_empty(), "{case}");
        assert_eq!(job.output("source"), None, "{case}: no fallback to a build");
    }
}

/// The release workflow's Pack and Checksums steps produce what the installer accepts, for
/// every target it builds.
#[test]
fn what_the_release_workflow_packs_the_installer_installs() {
    let workflow =
        std::fs::read_to_string(repo_root().join(".github/workflows/release.yml")).unwrap();
    let workspace = tempfile::tempdir().unwrap();
    std::fs::write(workspace.path().join("README.md"), "# tramontane\n").unwrap();
    let targets = [
        ("x86_64-unknown-linux-gnu", "Linux", "X64"),
        ("aarch64-unknown-linux-gnu", "Linux", "ARM64"),
        ("x86_64-apple-darwin", "macOS", "X64"),
        ("aarch64-apple-darwin", "macOS", "ARM64"),
    ];
    for (target, _, _) in targets {
        let binary = workspace
            .path()
            .join(format!("target/{target}/dist/tramontane"));
        std::fs::create_dir_all(binary.parent().unwrap()).unwrap();
        std::fs::write(&binary, format!("#!/bin/sh\necho 'tramontane {VERSION}'\n")).unwrap();
        std::fs::set_permissions(&binary, std::fs::Permissions::from_mode(0o755)).unwrap();
        let packed = Command::new("bash")
            .args(["--noprofile", "--norc", "-eo", "pipefail", "-c"])
            .arg(run_block(&workflow, "Pack"))
            .current_dir(workspace.path())
            .env("VERSION", VERSION)
            .env("TARGET", target)
            .output()
            .unwrap();
        assert!(packed.status.success(), "{target}: {}", stderr(&packed));
        // Each build job uploads its own dist/; the checksums job downloads them into one.
        let dist = workspace.path().join("all");
        std::fs::create_dir_all(&dist).unwrap();
        let name = asset(target);
        std::fs::rename(workspace.path().join("dist").join(&name), dist.join(&name)).unwrap();
    }
    let dist = workspace.path().join("all");
    let summed = Command::new("bash")
        .args(["--noprofile", "--norc", "-eo", "pipefail", "-c"])
        .arg(run_block(&workflow, "Checksums"))
        .current_dir(&dist)
        .env("VERSION", VERSION)
        .env("GITHUB_STEP_SUMMARY", workspace.path().join("summary"))
        .output()
        .unwrap();
    assert!(summed.status.success(), "{}", stderr(&summed));

    let server = ReleaseServer::start();
    for entry in std::fs::read_dir(&dist).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        server.publish(&name, &std::fs::read(&path).unwrap());
    }
    for (target, os, arch) in targets {
        let job = Job::new(&server).on(os, arch);
        let ran = job.step("download", &[]);
        assert!(ran.status.success(), "{target}: {}", stderr(&ran));
        assert_eq!(job.path().len(), 1, "{target}");
        assert!(job.path()[0].ends_with(&format!("tramontane-{VERSION}-{target}")));
    }
}

/// action.yml runs the installer's steps in the order these tests do, and the build steps
/// only when the download step handed over to them.
#[test]
fn the_action_runs_the_installer_steps_in_order() {
    let action = std::fs::read_to_string(repo_root().join("action.yml")).unwrap();
    let steps: Vec<&str> = action
        .lines()
        .filter_map(|line| {
            line.trim()
                .strip_prefix("run: bash \"$GITHUB_ACTION_PATH/action/install.sh\" ")
        })
        .collect();
    assert_eq!(steps, ["download", "build", "activate"]);
    let handed_over = "if: steps.release.outputs.source == 'build'";
    assert_eq!(action.matches(handed_over).count(), 3, "{action}");
    assert!(action.contains("uses: actions/cache@"));
}

/// The runner platform of the machine the tests run on, and the target the release script
/// names its archive after, where a release binary is built for it.
fn this_runner() -> Option<(&'static str, &'static str, &'static str)> {
    match (std::env::consts::OS, std::env::consts::ARCH) {
        ("linux", "x86_64") => Some(("Linux", "X64", "x86_64-unknown-linux-gnu")),
        ("linux", "aarch64") => Some(("Linux", "ARM64", "aarch64-unknown-linux-gnu")),
        ("macos", "x86_64") => Some(("macOS", "X64", "x86_64-apple-darwin")),
        ("macos", "aarch64") => Some(("macOS", "ARM64", "aarch64-apple-darwin")),
        _ => None,
    }
}

/// Cutting a release, rehearsed: scripts/release packs the tramontane binary these tests
/// run (so nothing is compiled) into a directory served over loopback as `release-url`,
/// and the action installs and verifies it from there, then refuses it tampered or absent.
#[test]
fn a_release_cut_by_the_script_is_installed_through_release_url() {
    let Some((os, arch, target)) = this_runner() else {
        eprintln!("no release binary is built for this platform; nothing to rehearse");
        return;
    };
    let version = env!("CARGO_PKG_VERSION");
    let server = ReleaseServer::start();
    let served = tempfile::tempdir().unwrap();
    server.serve_dir(served.path());
    let out = served.path().join(format!("v{version}"));
    let job = Job::at(&server, version).on(os, arch);
    job.pin("# the action's pinned checksums\n");
    let pinned = job.action().join("action/checksums.txt");

    let release = |args: &[&Path]| {
        Command::new("bash")
            .arg(repo_root().join("scripts/release"))
            .arg(version)
            .arg("--binary")
            .arg(env!("CARGO_BIN_EXE_tramontane"))
            .arg("--out")
            .arg(&out)
            .args(args)
            .output()
            .unwrap()
    };
    let cut = release(&[Path::new("--pin"), &pinned]);
    assert!(cut.status.success(), "{}", stderr(&cut));
    let name = format!("tramontane-{version}-{target}.tar.gz");
    let archive = out.join(&name);
    let digest = sha256_hex(&std::fs::read(&archive).unwrap());
    let line = format!("{digest}  {name}");
    assert_eq!(
        read_lines(&out.join("SHA256SUMS")),
        std::slice::from_ref(&line)
    );
    assert_eq!(
        read_lines(&pinned),
        ["# the action's pinned checksums".to_owned(), line.clone()]
    );
    // Cut again, the pin is replaced, not repeated.
    let again = release(&[Path::new("--pin"), &pinned]);
    assert!(again.status.success(), "{}", stderr(&again));
    let repinned = read_lines(&pinned);
    assert_eq!(repinned.len(), 2, "{repinned:?}");
    let line = repinned[1].clone();

    // Installed and verified against the pinned checksum, and it runs.
    let ran = job.step("download", &[("INPUT_RELEASE_URL", &server.base())]);
    assert!(ran.status.success(), "{}", stderr(&ran));
    assert!(
        String::from_utf8_lossy(&ran.stdout)
            .contains("as action/checksums.txt at the action's commit expects"),
        "{ran:?}"
    );
    let path = job.path();
    assert_eq!(path.len(), 1, "{path:?}");
    assert_eq!(version_of(&path[0]), format!("tramontane {version}"));
    assert_eq!(job.output("source").as_deref(), Some("release"));

    // Unpinned, the release's own SHA256SUMS verifies it.
    let unpinned = Job::at(&server, version).on(os, arch);
    let ran = unpinned.step("download", &[("INPUT_RELEASE_URL", &server.base())]);
    assert!(ran.status.success(), "{}", stderr(&ran));
    assert_eq!(
        version_of(&unpinned.path()[0]),
        format!("tramontane {version}")
    );

    // A tampered archive is refused: nothing installed, no build.
    let mut bytes = std::fs::read(&archive).unwrap();
    bytes.extend_from_slice(b"tampered");
    std::fs::write(&archive, &bytes).unwrap();
    let tampered = Job::at(&server, version).on(os, arch);
    tampered.pin(&format!("{line}\n"));
    let ran = tampered.step("download", &[("INPUT_RELEASE_URL", &server.base())]);
    assert_ne!(ran.status.code(), Some(0));
    let error = stderr(&ran);
    assert!(
        error.contains(&format!("::error::Checksum mismatch for {name}")),
        "{error}"
    );
    assert!(tampered.path().is_empty());
    assert_eq!(tampered.output("source"), None);
    assert!(binaries_under(&tampered.temp()).is_empty());

    // No checksum anywhere for it: neither pinned nor in a SHA256SUMS.
    std::fs::remove_file(out.join("SHA256SUMS")).unwrap();
    let unverifiable = Job::at(&server, version).on(os, arch);
    let ran = unverifiable.step("download", &[("INPUT_RELEASE_URL", &server.base())]);
    assert_ne!(ran.status.code(), Some(0));
    let error = stderr(&ran);
    assert!(
        error.contains(&format!(
            "action/checksums.txt at the action's commit does not list {name} (tramontane {version} for {target})"
        )),
        "{error}"
    );
    assert!(unverifiable.path().is_empty());

    // The release not published at all: which version, where, and what to do.
    std::fs::remove_dir_all(&out).unwrap();
    let missing = Job::at(&server, version).on(os, arch);
    let ran = missing.step("download", &[("INPUT_RELEASE_URL", &server.base())]);
    assert_ne!(ran.status.code(), Some(0));
    let error = stderr(&ran);
    assert!(
        error.contains(&format!(
            "::error::There is no release v{version}: {}/v{version}/{name}",
            server.base()
        )),
        "{error}"
    );
    assert!(
        error.contains("set the input from-source to true"),
        "{error}"
    );
    assert!(missing.path().is_empty());
    assert_eq!(
        missing.output("source"),
        None,
        "no silent fallback to a build"
    );

    // The script refuses a binary that is not of the version it is asked to release.
    let wrong = Command::new("bash")
        .arg(repo_root().join("scripts/release"))
        .arg("99.0.0")
        .arg("--binary")
        .arg(env!("CARGO_BIN_EXE_tramontane"))
        .arg("--out")
        .arg(served.path().join("wrong"))
        .output()
        .unwrap();
    assert_ne!(wrong.status.code(), Some(0));
    assert!(stderr(&wrong).contains("not 99.0.0"), "{}", stderr(&wrong));
    assert!(!served.path().join("wrong").exists());
}
