//! `tramontane scan` on generated git repositories: keys written ten ways, then committed,
//! deleted, renamed, left on a branch or pasted into a merge resolution; `.env` files and
//! secret sinks git would commit; baselines; `--verify`; every output format.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::get;
use git2::Oid;
use serde_json::Value as Json;
use sha2::{Digest, Sha256};

use tramontane_testkit::{Output, Test, TestDir};

// ---------------------------------------------------------------------------------------
// Keys, made at run time so this file holds no literal that looks like one.

fn random_base62(seed: u64, len: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    loop {
        let text: String = (0..len)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                char::from(ALPHABET[(state % 62) as usize])
            })
            .collect();
        // The shape the scanner takes for a random key: both cases and a digit.
        let has = |test: fn(&u8) -> bool| text.as_bytes().iter().any(test);
        if has(u8::is_ascii_uppercase) && has(u8::is_ascii_lowercase) && has(u8::is_ascii_digit) {
            return text;
        }
    }
}

fn mistral_key(seed: u64) -> String {
    random_base62(seed, 32)
}

fn gateway_key(seed: u64) -> String {
    format!(
        "tmt_{}_{}",
        random_base62(seed ^ 0x5eed, 12),
        random_base62(seed, 43)
    )
}

/// The fingerprint the scanner promises: SHA-256 of rule, path and secret, NUL-separated,
/// the first 32 hex characters.
fn fingerprint(rule: &str, path: &str, secret: &str) -> String {
    let digest = Sha256::digest(format!("{rule}\0{path}\0{secret}").as_bytes());
    digest.iter().take(16).map(|b| format!("{b:02x}")).collect()
}

/// Ten ways a Mistral key is written down, and a gateway key: (file name, rule, text).
const FORMATS: [(&str, &str, &str); 11] = [
    (
        "settings.env",
        "mistral-api-key",
        "DEBUG=1\nMISTRAL_API_KEY={key}\n",
    ),
    (
        "config.yaml",
        "mistral-api-key",
        "server:\n  port: 8080\nmistral:\n  model: mistral-large-latest\n  api_key: {key}\n",
    ),
    (
        "config.json",
        "mistral-api-key",
        "{\n  \"mistral\": {\n    \"apiKey\": \"{key}\"\n  }\n}\n",
    ),
    (
        "config.toml",
        "mistral-api-key",
        "[mistral]\nmodel = \"codestral-latest\"\napi_key = \"{key}\"\n",
    ),
    (
        "chat.py",
        "mistral-api-key",
        "from mistralai import Mistral\n\nclient = Mistral(api_key=\"{key}\")\n",
    ),
    (
        "chat.js",
        "mistral-api-key",
        "import { Mistral } from \"@mistralai/mistralai\";\nconst client = new Mistral({ apiKey: \"{key}\" });\n",
    ),
    (
        "models.sh",
        "mistral-api-key",
        "curl https://api.mistral.ai/v1/models \\\n  -H \"Authorization: Bearer {key}\"\n",
    ),
    (
        "profile.sh",
        "mistral-api-key",
        "export MISTRAL_API_KEY=\"{key}\"\n",
    ),
    (
        "main.rs",
        "mistral-api-key",
        "const MISTRAL_API_KEY: &str = \"{key}\";\n",
    ),
    (
        "main.go",
        "mistral-api-key",
        "package main\n\nfunc main() {\n\tclient := mistral.NewMistralClientDefault(\"{key}\")\n\t_ = client\n}\n",
    ),
    ("gateway.txt", "gateway-key", "caller key: {key}\n"),
];

/// Where in the history a key was put.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Scenario {
    Committed,
    Deleted,
    Renamed,
    OnBranch,
    MergeOnly,
}

const SCENARIOS: [Scenario; 5] = [
    Scenario::Committed,
    Scenario::Deleted,
    Scenario::Renamed,
    Scenario::OnBranch,
    Scenario::MergeOnly,
];

fn key_for(scenario: Scenario, format: usize) -> String {
    let seed = (scenario as u64) * 100 + format as u64 + 1;
    if FORMATS[format].1 == "gateway-key" {
        gateway_key(seed)
    } else {
        mistral_key(seed)
    }
}

fn content(scenario: Scenario, format: usize) -> String {
    FORMATS[format]
        .2
        .replace("{key}", &key_for(scenario, format))
}

// ---------------------------------------------------------------------------------------
// A repository built commit by commit, with fixed authors and times so commit ids are the
// same on every run.

type Files = BTreeMap<String, String>;

struct Repo {
    env: TestDir,
    repo: git2::Repository,
    tick: i64,
}

impl Repo {
    fn new() -> Repo {
        let env = TestDir::new();
        let mut options = git2::RepositoryInitOptions::new();
        options.initial_head("main");
        let repo = git2::Repository::init_opts(env.path(), &options).unwrap();
        Repo { env, repo, tick: 0 }
    }

    fn path(&self) -> &Path {
        self.env.path()
    }

    /// A commit of exactly `files`, on `reference` (which must point at `parents[0]`).
    fn commit(&mut self, reference: &str, files: &Files, parents: &[Oid], message: &str) -> Oid {
        let mut index = git2::Index::new().unwrap();
        for (path, text) in files {
            let blob = self.repo.blob(text.as_bytes()).unwrap();
            let mut entry = index_entry(path);
            entry.id = blob;
            entry.file_size = text.len() as u32;
            index.add(&entry).unwrap();
        }
        let tree = self
            .repo
            .find_tree(index.write_tree_to(&self.repo).unwrap())
            .unwrap();
        self.tick += 1;
        let when = git2::Time::new(1_767_225_600 + self.tick * 3600, 0);
        let signature = git2::Signature::new("Test", "test@acme.example", &when).unwrap();
        let parents: Vec<git2::Commit> = parents
            .iter()
            .map(|id| self.repo.find_commit(*id).unwrap())
            .collect();
        let parents: Vec<&git2::Commit> = parents.iter().collect();
        self.repo
            .commit(
                Some(reference),
                &signature,
                &signature,
                message,
                &tree,
                &parents,
            )
            .unwrap()
    }

    /// Makes the working tree and index those of `main`'s tip.
    fn check_out_main(&self) {
        self.repo.set_head("refs/heads/main").unwrap();
        let mut checkout = git2::build::CheckoutBuilder::new();
        checkout.force();
        self.repo.checkout_head(Some(&mut checkout)).unwrap();
    }

    fn write(&self, path: &str, text: &str) {
        self.env.write(path, text);
    }

    fn scan(&self, args: &[&str]) -> Output {
        scan_in(self.path(), args)
    }
}

/// `tramontane scan ARGS` in `dir`, with git's user-wide configuration (a global excludes
/// file) kept out of it.
fn scan_in(dir: &Path, args: &[&str]) -> Output {
    let mut full = vec!["scan"];
    full.extend_from_slice(args);
    Test::new()
        .current_dir(dir)
        .env("HOME", dir)
        .env("XDG_CONFIG_HOME", dir)
        .env_remove("MISTRAL_API_URL")
        .args(&full)
        .run()
}

fn index_entry(path: &str) -> git2::IndexEntry {
    git2::IndexEntry {
        ctime: git2::IndexTime::new(0, 0),
        mtime: git2::IndexTime::new(0, 0),
        dev: 0,
        ino: 0,
        mode: 0o100644,
        uid: 0,
        gid: 0,
        file_size: 0,
        id: Oid::ZERO_SHA1,
        flags: 0,
        flags_extended: 0,
        path: path.as_bytes().to_vec(),
    }
}

fn json(run: &Output) -> Json {
    serde_json::from_str(&run.stdout)
        .unwrap_or_else(|error| panic!("not JSON ({error}):\n{}\n{}", run.stdout, run.stderr))
}

fn findings(run: &Output) -> Vec<Json> {
    json(run)["findings"].as_array().unwrap().clone()
}

/// Fails when any of `secrets` appears whole in the run's output.
fn assert_no_secret_in(run: &Output, secrets: &[String]) {
    for secret in secrets {
        assert!(
            !run.stdout.contains(secret.as_str()) && !run.stderr.contains(secret.as_str()),
            "a full key was printed"
        );
        // Not even the part past the four characters shown.
        assert!(
            !run.stdout.contains(&secret[4..]),
            "a key's hidden part was printed"
        );
    }
}

// ---------------------------------------------------------------------------------------
// The grid: every format in every scenario.

/// Commits of the grid repository, to check where each finding is said to come from.
struct Grid {
    repo: Repo,
    first: Oid,
    branch: Oid,
    merge: Oid,
}

fn dir(scenario: Scenario) -> &'static str {
    match scenario {
        Scenario::Committed => "committed",
        Scenario::Deleted => "deleted",
        Scenario::Renamed => "renamed-from",
        Scenario::OnBranch => "branch",
        Scenario::MergeOnly => "merge",
    }
}

fn grid() -> Grid {
    let mut repo = Repo::new();
    let placeholder = |state: &mut Files, text: &str| {
        for (name, ..) in FORMATS {
            state.insert(format!("merge/{name}"), text.to_owned());
        }
    };
    // 1. The keys that will be committed, deleted and renamed, and merge/ placeholders.
    let mut state = Files::new();
    state.insert("README.md".into(), "# app\n".into());
    for scenario in [Scenario::Committed, Scenario::Deleted, Scenario::Renamed] {
        for (index, (name, ..)) in FORMATS.iter().enumerate() {
            state.insert(
                format!("{}/{name}", dir(scenario)),
                content(scenario, index),
            );
        }
    }
    placeholder(&mut state, "placeholder\n");
    let first = repo.commit("refs/heads/main", &state, &[], "start");
    // 2. Delete deleted/, rename renamed-from/ to renamed-to/ (same blobs).
    for (index, (name, ..)) in FORMATS.iter().enumerate() {
        state.remove(&format!("deleted/{name}"));
        let moved = state.remove(&format!("renamed-from/{name}")).unwrap();
        assert_eq!(moved, content(Scenario::Renamed, index));
        state.insert(format!("renamed-to/{name}"), moved);
    }
    let second = repo.commit("refs/heads/main", &state, &[first], "delete and rename");
    // 3. A branch never merged, with keys of its own.
    let mut feature = state.clone();
    for (index, (name, ..)) in FORMATS.iter().enumerate() {
        feature.insert(format!("branch/{name}"), content(Scenario::OnBranch, index));
    }
    let branch = repo.commit("refs/heads/feature", &feature, &[second], "feature");
    // 4. Two sides edit merge/ differently; the merge resolves them by pasting keys in,
    //    and a later commit takes them out again: the keys exist in the merge alone.
    let mut side = state.clone();
    placeholder(&mut side, "side\n");
    let side_tip = repo.commit("refs/heads/side", &side, &[second], "side");
    placeholder(&mut state, "main\n");
    let main_tip = repo.commit("refs/heads/main", &state, &[second], "main edit");
    let mut resolved = state.clone();
    for (index, (name, ..)) in FORMATS.iter().enumerate() {
        resolved.insert(format!("merge/{name}"), content(Scenario::MergeOnly, index));
    }
    let merge = repo.commit(
        "refs/heads/main",
        &resolved,
        &[main_tip, side_tip],
        "Merge branch 'side'",
    );
    placeholder(&mut state, "resolved\n");
    repo.commit("refs/heads/main", &state, &[merge], "scrub");
    repo.check_out_main();
    Grid {
        repo,
        first,
        branch,
        merge,
    }
}

/// The path a scenario's key is reported at, in the working tree or the history.
fn reported_path(scenario: Scenario, name: &str, history: bool) -> Option<String> {
    match (scenario, history) {
        (Scenario::Committed, _) => Some(format!("committed/{name}")),
        (Scenario::Renamed, false) => Some(format!("renamed-to/{name}")),
        (_, false) => None,
        (scenario, true) => Some(format!("{}/{name}", dir(scenario))),
    }
}

#[test]
fn history_misses_no_key_in_any_format_or_place() {
    let grid = grid();
    let run = grid.repo.scan(&["--history", "--format", "json"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let found: BTreeMap<String, Json> = findings(&run)
        .into_iter()
        .map(|finding| (finding["fingerprint"].as_str().unwrap().to_owned(), finding))
        .collect();

    let mut expected = BTreeSet::new();
    let mut secrets = Vec::new();
    for scenario in SCENARIOS {
        for (index, (name, rule, _)) in FORMATS.iter().enumerate() {
            let key = key_for(scenario, index);
            secrets.push(key.clone());
            let path = reported_path(scenario, name, true).unwrap();
            let print = fingerprint(rule, &path, &key);
            let finding = found
                .get(&print)
                .unwrap_or_else(|| panic!("missed the {rule} {scenario:?} in {path}"));
            assert_eq!(finding["path"], path.as_str());
            assert_eq!(finding["secret"], format!("{}…", &key[..4]).as_str());
            let (commit, reference) = match scenario {
                Scenario::OnBranch => (grid.branch, "refs/heads/feature"),
                Scenario::MergeOnly => (grid.merge, "refs/heads/main"),
                _ => (grid.first, "refs/heads/main"),
            };
            assert_eq!(
                finding["commit"]["id"],
                commit.to_string().as_str(),
                "{path}"
            );
            assert_eq!(finding["commit"]["ref"], reference, "{path}");
            assert_eq!(
                finding["in_working_tree"],
                scenario == Scenario::Committed,
                "{path}"
            );
            expected.insert(print);
            // The renamed file is in the working tree under its new name too.
            if let Some(current) = reported_path(scenario, name, false)
                && current != path
            {
                let print = fingerprint(rule, &current, &key);
                assert!(found.contains_key(&print), "missed {current}");
                expected.insert(print);
            }
        }
    }
    let unexpected: Vec<&Json> = found
        .iter()
        .filter(|(print, _)| !expected.contains(*print))
        .map(|(_, finding)| finding)
        .collect();
    assert!(
        unexpected.is_empty(),
        "unexpected findings: {unexpected:#?}"
    );
    assert_no_secret_in(&run, &secrets);
    // Each distinct blob read once: 11 committed, 11 deleted, 11 renamed, 11 on the branch,
    // 11 in the merge, 5 placeholders of merge/ and the README.
    assert_eq!(json(&run)["scanned"]["blobs"], 11 * 5 + 4 + 1);
    assert_eq!(json(&run)["scanned"]["commits"], 7);
    assert_eq!(json(&run)["scanned"]["refs"], 3);
}

#[test]
fn the_working_tree_alone_finds_exactly_the_current_keys() {
    let grid = grid();
    let run = grid.repo.scan(&["--format", "json"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let found: BTreeSet<String> = findings(&run)
        .iter()
        .map(|finding| {
            assert!(finding["commit"].is_null());
            assert_eq!(finding["in_working_tree"], true);
            finding["fingerprint"].as_str().unwrap().to_owned()
        })
        .collect();
    let mut expected = BTreeSet::new();
    for scenario in SCENARIOS {
        for (index, (name, rule, _)) in FORMATS.iter().enumerate() {
            if let Some(path) = reported_path(scenario, name, false) {
                expected.insert(fingerprint(rule, &path, &key_for(scenario, index)));
            }
        }
    }
    assert_eq!(expected.len(), 22);
    assert_eq!(found, expected);
    assert_eq!(json(&run)["scanned"]["history"], false);
}

#[test]
fn sarif_of_the_grid_is_what_github_code_scanning_reads() {
    let grid = grid();
    let run = grid.repo.scan(&["--history", "--format", "sarif"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let log = json(&run);
    assert_eq!(log["version"], "2.1.0");
    assert!(log["$schema"].as_str().unwrap().contains("sarif-2.1.0"));
    let runs = log["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 1);
    let driver = &runs[0]["tool"]["driver"];
    assert_eq!(driver["name"], "tramontane");
    assert!(driver["version"].is_string());
    let rules: Vec<&str> = driver["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|rule| {
            assert!(rule["shortDescription"]["text"].is_string());
            assert!(rule["fullDescription"]["text"].is_string());
            assert!(rule["help"]["text"].is_string());
            rule["id"].as_str().unwrap()
        })
        .collect();
    assert_eq!(
        rules,
        [
            "mistral-api-key",
            "gateway-key",
            "env-file-tracked",
            "sink-not-ignored",
            "env-not-ignored"
        ]
    );
    let results = runs[0]["results"].as_array().unwrap();
    assert_eq!(results.len(), 66);
    for result in results {
        let rule = result["ruleId"].as_str().unwrap();
        let index = result["ruleIndex"].as_u64().unwrap() as usize;
        assert_eq!(rules[index], rule);
        assert!(matches!(
            result["level"].as_str(),
            Some("error" | "warning")
        ));
        assert!(result["message"]["text"].is_string());
        let location = &result["locations"][0]["physicalLocation"];
        let uri = location["artifactLocation"]["uri"].as_str().unwrap();
        assert!(!uri.starts_with('/') && !uri.contains(' '), "{uri}");
        assert!(location["region"]["startLine"].as_u64().unwrap() >= 1);
        assert!(location["region"]["startColumn"].as_u64().unwrap() >= 1);
        let print = result["partialFingerprints"]["tramontaneFingerprint/v1"]
            .as_str()
            .unwrap();
        assert_eq!(print.len(), 32);
    }
}

// ---------------------------------------------------------------------------------------
// Files git would commit.

const POLICY: &str = "\
version: 1
members:
  alice@acme.example: { name: Alice Martin, roles: [organization_admin] }
workspaces:
  dev:
    admin: alice@acme.example
    keys:
      ci:
        owner: alice@acme.example
        secret: { file: secrets/dev/ci.key }
      laptop:
        owner: alice@acme.example
        secret: { file: private/laptop.key }
";

#[test]
fn env_files_and_secret_sinks_git_would_commit() {
    let mut repo = Repo::new();
    let mut files = Files::new();
    files.insert(".gitignore".into(), "/private\n.env.production\n".into());
    files.insert(".env".into(), "DEBUG=1\n".into());
    files.insert("app/.env.example".into(), "MISTRAL_API_KEY=\n".into());
    files.insert("policies/org.yaml".into(), POLICY.into());
    repo.commit("refs/heads/main", &files, &[], "start");
    repo.check_out_main();
    repo.write(".env.local", "DEBUG=2\n");
    repo.write(".env.production", "DEBUG=3\n");
    // A sink file that exists and git would pick up: its bare key is found too.
    let sink_key = mistral_key(4242);
    repo.write("secrets/dev/ci.key", &format!("{sink_key}\n"));

    let run = repo.scan(&["--format", "json"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let summary: Vec<(String, String, u64, u64)> = findings(&run)
        .iter()
        .map(|finding| {
            (
                finding["rule"].as_str().unwrap().to_owned(),
                finding["path"].as_str().unwrap().to_owned(),
                finding["line"].as_u64().unwrap(),
                finding["column"].as_u64().unwrap(),
            )
        })
        .collect();
    let row =
        |rule: &str, path: &str, line, column| (rule.to_owned(), path.to_owned(), line, column);
    assert_eq!(
        summary,
        vec![
            row("env-file-tracked", ".env", 1, 1),
            row("env-not-ignored", ".env.local", 1, 1),
            // The policy line naming the sink; the other sink is under an ignored directory.
            row("sink-not-ignored", "policies/org.yaml", 10, 25),
            row("mistral-api-key", "secrets/dev/ci.key", 1, 1),
        ]
    );
    let sink = &findings(&run)[2];
    assert_eq!(
        sink["message"],
        "secret file `secrets/dev/ci.key` of key `ci` in workspace `dev` is not ignored by git; add `secrets/` to .gitignore"
    );
    assert_no_secret_in(&run, &[sink_key]);

    // Ignoring them clears every finding.
    repo.write(".gitignore", "/private\n.env*\n!.env.example\n/secrets\n");
    let run = repo.scan(&[]);
    assert_eq!(
        run.code, 1,
        "the tracked .env stays tracked: {}",
        run.stdout
    );
    assert!(run.stdout.contains("env-file-tracked"));
    assert!(!run.stdout.contains("env-not-ignored"));
    assert!(!run.stdout.contains("sink-not-ignored"));
    assert!(!run.stdout.contains("mistral-api-key"));

    // `secrets/` is ignored, but a link sends it to `public/`, which is not: the sink is
    // reported though git's rules cover its path.
    #[cfg(unix)]
    {
        std::fs::remove_dir_all(repo.path().join("secrets")).unwrap();
        std::fs::create_dir(repo.path().join("public")).unwrap();
        std::os::unix::fs::symlink("public", repo.path().join("secrets")).unwrap();
        let run = repo.scan(&["--format", "json"]);
        let all = findings(&run);
        let sinks: Vec<&Json> = all
            .iter()
            .filter(|finding| finding["rule"] == "sink-not-ignored")
            .collect();
        assert_eq!(sinks.len(), 1, "{}", run.stdout);
        assert_eq!(
            (sinks[0]["line"].as_u64(), sinks[0]["column"].as_u64()),
            (Some(10), Some(25))
        );
        assert_eq!(
            sinks[0]["message"],
            "secret file `secrets/dev/ci.key` of key `ci` in workspace `dev` is reached through the symbolic link `secrets`, so git's ignore rules for its path do not cover where it lands; replace the link with a directory"
        );
    }
}

// ---------------------------------------------------------------------------------------
// A small repository whose every output is a snapshot.

struct Small {
    repo: Repo,
    secrets: Vec<String>,
}

fn small() -> Small {
    let mut repo = Repo::new();
    let current = mistral_key(1);
    let old_gateway = gateway_key(2);
    let mut files = Files::new();
    files.insert(".gitignore".into(), "/target\n".into());
    files.insert(".env".into(), "DEBUG=1\n".into());
    files.insert(
        "config/app.env".into(),
        format!("MISTRAL_API_KEY={current}\n"),
    );
    files.insert(
        "scripts/call.sh".into(),
        format!("curl -H \"Authorization: Bearer {old_gateway}\" http://gateway:8080/v1/models\n"),
    );
    files.insert(
        "policies/org.yaml".into(),
        POLICY.replace("private/laptop.key", "target/laptop.key"),
    );
    let first = repo.commit("refs/heads/main", &files, &[], "start");
    files.remove("scripts/call.sh");
    repo.commit("refs/heads/main", &files, &[first], "remove the script");
    repo.check_out_main();
    repo.write(".env.local", "DEBUG=2\n");
    Small {
        repo,
        secrets: vec![current, old_gateway],
    }
}

/// The output with the version, which changes with every release, masked.
fn stable(text: &str) -> String {
    text.replace(
        &format!("\"{}\"", env!("CARGO_PKG_VERSION")),
        "\"[version]\"",
    )
}

#[test]
fn human_output() {
    let small = small();
    let run = small.repo.scan(&["--history"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert_no_secret_in(&run, &small.secrets);
    insta::assert_snapshot!(run.stdout);
}

#[test]
fn json_output() {
    let small = small();
    let run = small.repo.scan(&["--history", "--format", "json"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert_no_secret_in(&run, &small.secrets);
    insta::assert_snapshot!(run.stdout);
}

#[test]
fn sarif_output() {
    let small = small();
    let run = small.repo.scan(&["--history", "--format", "sarif"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert_no_secret_in(&run, &small.secrets);
    insta::assert_snapshot!(stable(&run.stdout));
}

#[test]
fn a_clean_repository_exits_0() {
    let mut repo = Repo::new();
    let mut files = Files::new();
    files.insert(".gitignore".into(), ".env*\n".into());
    files.insert(
        "README.md".into(),
        "Set MISTRAL_API_KEY in your shell.\n".into(),
    );
    repo.commit("refs/heads/main", &files, &[], "start");
    repo.check_out_main();
    repo.write(".env", &format!("MISTRAL_API_KEY={}\n", mistral_key(3)));
    for format in ["human", "json", "sarif"] {
        let run = repo.scan(&["--history", "--format", format]);
        assert_eq!(run.code, 0, "{format}: {}{}", run.stdout, run.stderr);
    }
    let run = repo.scan(&["--history"]);
    insta::assert_snapshot!(run.stdout, @r"
    no leaked keys, and no secret or .env file git would commit
    scanned 2 files in the working tree and 2 blobs in 1 commit of 1 ref
    ");
}

// ---------------------------------------------------------------------------------------
// Baselines.

#[test]
fn a_baseline_accepts_known_findings_and_only_those() {
    let small = small();
    let root = small.repo.path();
    let baseline = root.join("scan-baseline.json");
    let shown = baseline.to_str().unwrap();

    let wrote = small.repo.scan(&["--history", "--write-baseline", shown]);
    assert_eq!(
        wrote.code, 0,
        "writing a baseline accepts: {}",
        wrote.stderr
    );
    assert!(
        wrote.stderr.contains("wrote 5 fingerprints"),
        "{}",
        wrote.stderr
    );
    let listed: Vec<String> =
        serde_json::from_str(&std::fs::read_to_string(&baseline).unwrap()).unwrap();
    assert_eq!(listed.len(), 5);
    assert_no_secret_in(&wrote, &small.secrets);
    let on_disk = std::fs::read_to_string(&baseline).unwrap();
    for secret in &small.secrets {
        assert!(!on_disk.contains(secret.as_str()));
    }

    let accepted = small.repo.scan(&["--history", "--baseline", shown]);
    assert_eq!(accepted.code, 0, "{}", accepted.stdout);
    assert!(
        accepted
            .stdout
            .contains("5 findings accepted by the baseline"),
        "{}",
        accepted.stdout
    );

    // A new key is new; the baseline's other entries still hold.
    let fresh = mistral_key(77);
    small
        .repo
        .write("config/other.env", &format!("MISTRAL_API_KEY={fresh}\n"));
    let run = small
        .repo
        .scan(&["--history", "--baseline", shown, "--format", "json"]);
    assert_eq!(run.code, 1);
    let found = findings(&run);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0]["path"], "config/other.env");
    assert_eq!(json(&run)["summary"]["accepted_by_baseline"], 5);

    // The same key in another file is a new finding: fingerprints bind the path.
    std::fs::remove_file(root.join("config/other.env")).unwrap();
    std::fs::rename(root.join("config/app.env"), root.join("config/moved.env")).unwrap();
    let run = small.repo.scan(&["--baseline", shown, "--format", "json"]);
    assert_eq!(run.code, 1);
    let found = findings(&run);
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!(found[0]["path"], "config/moved.env");
    assert_eq!(json(&run)["summary"]["stale_baseline_entries"], 2);
}

#[test]
fn a_bad_baseline_is_an_error_not_a_pass() {
    let small = small();
    let root = small.repo.path();
    let missing = small.repo.scan(&["--baseline", "nowhere.json"]);
    assert_eq!(missing.code, 2);
    assert!(
        missing
            .stderr
            .starts_with("error: cannot read the baseline `nowhere.json`")
    );
    assert!(missing.stderr.contains("help: create the baseline"));

    std::fs::write(root.join("bad.json"), "[\n  \"abc\",\n  {}\n]\n").unwrap();
    let bad = small.repo.scan(&["--baseline", "bad.json"]);
    assert_eq!(bad.code, 2);
    insta::assert_snapshot!(bad.stderr, @r"
    error: bad.json:3:2: not a baseline: invalid type: map, expected a string
    help: a baseline is a JSON list of fingerprint strings; recreate it with `tramontane scan --write-baseline FILE`
    ");
}

// ---------------------------------------------------------------------------------------
// Exit codes and limits.

#[test]
fn errors_exit_2() {
    let outside = TestDir::new();
    let run = scan_in(outside.path(), &[]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("is not in a git repository"),
        "{}",
        run.stderr
    );

    let run = scan_in(outside.path(), &["no/such/dir"]);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains("cannot read `no/such/dir`"),
        "{}",
        run.stderr
    );

    // Usage errors too, unlike other commands' 1: for scan, 1 means findings.
    let run = scan_in(outside.path(), &["--format", "xml"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    let run = Test::new()
        .current_dir(outside.path())
        .args(["--color", "never", "scan", "--bogus"])
        .run();
    assert_eq!(run.code, 2, "{}", run.stderr);
    let run = Test::new()
        .current_dir(outside.path())
        .args(["validate", "--bogus"])
        .run();
    assert_eq!(run.code, 1, "other commands keep their usage exit code");

    let bare = TestDir::new();
    git2::Repository::init_bare(bare.path()).unwrap();
    let run = scan_in(bare.path(), &[]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("pass --history"), "{}", run.stderr);
    let run = scan_in(bare.path(), &["--history"]);
    assert_eq!(
        run.code, 0,
        "an empty bare repository is clean: {}",
        run.stderr
    );
}

#[test]
fn large_and_binary_files_are_skipped_and_counted() {
    let mut repo = Repo::new();
    let big_key = mistral_key(5);
    let binary_key = mistral_key(6);
    let mut files = Files::new();
    let big = format!("MISTRAL_API_KEY={big_key}\n{}", "x".repeat(5000));
    files.insert("big.env.txt".into(), big);
    files.insert(
        "blob.bin".into(),
        format!("\0\0MISTRAL_API_KEY={binary_key}\n"),
    );
    repo.commit("refs/heads/main", &files, &[], "start");
    repo.check_out_main();
    let run = repo.scan(&["--history", "--max-file-size", "4096"]);
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert!(
        run.stdout.contains(
            "skipped 2 files and blobs over 4 KiB (big.env.txt) and 2 binary files and blobs"
        ),
        "{}",
        run.stdout
    );
    let run = repo.scan(&["--history", "--format", "json"]);
    assert_eq!(
        run.code, 1,
        "read whole under the default limit: {}",
        run.stdout
    );
    assert_eq!(findings(&run).len(), 1);
    assert_eq!(json(&run)["skipped"]["binary"], 2);
}

// ---------------------------------------------------------------------------------------
// --verify.

/// A loopback inference API answering `GET /v1/models`: 200 for `live`, 500 for `flaky`,
/// 401 for anything else; it counts requests.
struct ModelsApi {
    url: String,
    requests: Arc<AtomicUsize>,
    _runtime: tokio::runtime::Runtime,
}

impl ModelsApi {
    fn start(live: String, flaky: String) -> ModelsApi {
        let requests = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&requests);
        let router = Router::new().route(
            "/v1/models",
            get(move |headers: HeaderMap| {
                counter.fetch_add(1, Ordering::SeqCst);
                let bearer = headers
                    .get("authorization")
                    .and_then(|value| value.to_str().ok())
                    .and_then(|value| value.strip_prefix("Bearer "))
                    .unwrap_or_default()
                    .to_owned();
                let status = if bearer == live {
                    StatusCode::OK
                } else if bearer == flaky {
                    StatusCode::INTERNAL_SERVER_ERROR
                } else {
                    StatusCode::UNAUTHORIZED
                };
                async move { (status, "{}") }
            }),
        );
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind(SocketAddr::from((
                [127, 0, 0, 1],
                0,
            ))))
            .unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        runtime.spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        ModelsApi {
            url,
            requests,
            _runtime: runtime,
        }
    }
}

#[test]
fn verify_marks_keys_live_revoked_or_unknown_and_only_when_asked() {
    let mut repo = Repo::new();
    let (live, revoked, flaky) = (mistral_key(10), mistral_key(11), mistral_key(12));
    let mut files = Files::new();
    files.insert("a.env".into(), format!("MISTRAL_API_KEY={live}\n"));
    // The same live key twice is checked once.
    files.insert("b.env".into(), format!("MISTRAL_API_KEY={live}\n"));
    files.insert("c.env".into(), format!("MISTRAL_API_KEY={revoked}\n"));
    files.insert("d.env".into(), format!("MISTRAL_API_KEY={flaky}\n"));
    files.insert("e.txt".into(), format!("key: {}\n", gateway_key(13)));
    repo.commit("refs/heads/main", &files, &[], "start");
    repo.check_out_main();
    let api = ModelsApi::start(live.clone(), flaky.clone());

    let scan_with_api = |args: &[&str]| -> Output {
        let mut full = vec!["scan"];
        full.extend_from_slice(args);
        Test::new()
            .current_dir(repo.path())
            .env("HOME", repo.path())
            .env("MISTRAL_API_URL", &api.url)
            .args(&full)
            .run()
    };
    let run = scan_with_api(&["--format", "json"]);
    assert_eq!(run.code, 1);
    assert_eq!(
        api.requests.load(Ordering::SeqCst),
        0,
        "no request without --verify"
    );
    assert!(
        findings(&run)
            .iter()
            .all(|finding| finding["verification"].is_null())
    );

    let run = scan_with_api(&["--verify", "--format", "json"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert_eq!(
        api.requests.load(Ordering::SeqCst),
        3,
        "each distinct key once"
    );
    let statuses: Vec<(String, Json)> = findings(&run)
        .iter()
        .map(|finding| {
            (
                finding["path"].as_str().unwrap().to_owned(),
                finding["verification"].clone(),
            )
        })
        .collect();
    assert_eq!(
        statuses,
        vec![
            ("a.env".to_owned(), serde_json::json!({"status": "live"})),
            ("b.env".to_owned(), serde_json::json!({"status": "live"})),
            ("c.env".to_owned(), serde_json::json!({"status": "revoked"})),
            (
                "d.env".to_owned(),
                serde_json::json!({"status": "unknown", "reason": "HTTP 500"})
            ),
            ("e.txt".to_owned(), Json::Null),
        ]
    );
    assert_no_secret_in(&run, &[live.clone(), revoked.clone(), flaky.clone()]);

    let human = scan_with_api(&["--verify"]);
    assert!(human.stdout.contains("verified: live, the key works now"));
    assert_no_secret_in(&human, &[live, revoked, flaky]);

    // Keys never travel in the clear to another host.
    let run = Test::new()
        .current_dir(repo.path())
        .env("HOME", repo.path())
        .env("MISTRAL_API_URL", "http://api.example.com")
        .args(["scan", "--verify"])
        .run();
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("only over https"), "{}", run.stderr);
}

#[test]
fn refs_of_every_kind_are_read() {
    let mut repo = Repo::new();
    let mut files = Files::new();
    files.insert("README.md".into(), "# app\n".into());
    let first = repo.commit("refs/heads/main", &files, &[], "start");
    // A pull request's ref, fetched but not a branch.
    let pulled = mistral_key(20);
    let mut pull = files.clone();
    pull.insert("pr.env".into(), format!("MISTRAL_API_KEY={pulled}\n"));
    let pr = repo.commit("refs/pull/1/head", &pull, &[first], "pull request");
    // A tag naming a blob directly.
    let tagged = gateway_key(21);
    let blob = repo.repo.blob(format!("{tagged}\n").as_bytes()).unwrap();
    repo.repo
        .reference("refs/tags/raw-blob", blob, false, "tag a blob")
        .unwrap();
    repo.check_out_main();

    let run = repo.scan(&["--history", "--format", "json"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let found: Vec<(String, String, String)> = findings(&run)
        .iter()
        .map(|finding| {
            (
                finding["path"].as_str().unwrap().to_owned(),
                finding["commit"]["id"].as_str().unwrap().to_owned(),
                finding["commit"]["ref"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        found,
        vec![
            (
                "pr.env".to_owned(),
                pr.to_string(),
                "refs/pull/1/head".to_owned()
            ),
            (
                "refs/tags/raw-blob".to_owned(),
                blob.to_string(),
                "refs/tags/raw-blob".to_owned()
            ),
        ]
    );
    assert_no_secret_in(&run, &[pulled, tagged]);
}

#[test]
fn a_missing_object_stops_the_scan_rather_than_passing_it() {
    let mut repo = Repo::new();
    let mut files = Files::new();
    files.insert("app.env".into(), "DEBUG=1\n".into());
    repo.commit("refs/heads/main", &files, &[], "start");
    repo.check_out_main();
    let blob = repo.repo.blob(b"DEBUG=1\n").unwrap().to_string();
    let loose = repo
        .path()
        .join(".git/objects")
        .join(&blob[..2])
        .join(&blob[2..]);
    std::fs::remove_file(loose).unwrap();
    let run = repo.scan(&["--history"]);
    assert_eq!(run.code, 2, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stderr
            .starts_with(&format!("error: cannot read blob {blob} (app.env)")),
        "{}",
        run.stderr
    );
}
