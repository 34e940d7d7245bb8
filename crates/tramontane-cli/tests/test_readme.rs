//! The samples in README.md and docs/*.md are runs of the real binary, so they cannot drift
//! from it. A fenced block right after a `<!-- sample: NAME -->` line is made again by the
//! scenario of that name below and compared with what the document shows; on a difference
//! the test fails with a diff. With `UPDATE_README=1` it rewrites the blocks instead:
//!
//! ```sh
//! UPDATE_README=1 cargo test -p tramontane-cli --test runner test_readme
//! ```
//!
//! Three kinds of block:
//! - ```` ```console ````: a transcript. Each `$ tramontane ARGS` line is run, in a scratch copy
//!   of the example `policies/` (`$ cd DIR` moves into a directory of it), and followed by
//!   what the command printed, stdout and stderr together in the order a terminal shows them.
//! - ```` ```json ````: the answer of the scenario's JSON command, abridged. The block's shape
//!   chooses what is shown (these keys; these items of an array, found by `address` when they
//!   have one); every value is filled in from the real answer, and every top-level key of the
//!   real answer must be shown, so a new section of the contract cannot go unmentioned.
//! - ```` ```yaml ````: a policy file. It is input, not output, so it is never rewritten; it
//!   must validate on its own, alone in a `policies/` directory.
//! - ```` ```sh ```` and ```` ```python ````: code a reader runs, input too. It runs in a
//!   scratch copy, the shell with `tramontane` on its PATH and the Python with the official
//!   SDK, against the gateway on the sandbox upstream: on a free port instead of 8080
//!   (`TRAMONTANE_LISTEN`, and `127.0.0.1:8080` / `localhost:8080` in the code rewritten to
//!   it), started by the scenario (`gateway: true`, with a key for Alice in `TRAMONTANE_KEY`)
//!   or by the code itself (a line ending in `&` waits until the port listens). It must exit
//!   0 and print what its scenario names.

use std::fmt::Write as _;
use std::io::{Read, Seek};
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use tramontane_testkit::{Test, TestDir, repo_root};

mod workload_identity;

/// A scratch copy of the example policy repository, for one scenario.
struct Scratch {
    env: TestDir,
}

impl Scratch {
    fn path(&self) -> &Path {
        self.env.path()
    }

    /// Replaces `from` with `to` in a file of the scratch copy; `from` must occur exactly once,
    /// so a change to the example that moves the text fails here rather than silently.
    fn edit(&self, file: &str, from: &str, to: &str) {
        let path = self.path().join(file);
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(
            text.matches(from).count(),
            1,
            "{file} should hold `{from}` exactly once for this sample's edit"
        );
        std::fs::write(path, text.replacen(from, to, 1)).unwrap();
    }

    /// A step the sample builds on, which must succeed.
    fn tramontane(&self, args: &[&str]) {
        let output = Test::new()
            .current_dir(self.path())
            .command()
            .args(args)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "tramontane {}: {}{}",
            args.join(" "),
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }

    /// Makes the scratch copy a git repository and commits everything in it. Author, time and
    /// content are fixed, so the commit id the output shows is the same on every run.
    fn commit_all(&self, message: &str) {
        let repo = git2::Repository::init(self.path()).unwrap();
        let mut index = repo.index().unwrap();
        index
            .add_all(["*"], git2::IndexAddOption::DEFAULT, None)
            .unwrap();
        index.write().unwrap();
        let tree = repo.find_tree(index.write_tree().unwrap()).unwrap();
        let when = git2::Time::new(1_767_225_600, 0);
        let signature = git2::Signature::new("Acme Platform", "platform@acme.example", &when)
            .expect("a signature");
        repo.commit(Some("HEAD"), &signature, &signature, message, &tree, &[])
            .unwrap();
    }
}

/// How the example is brought to where a sample starts, and what its commands must exit with.
struct Scenario {
    name: &'static str,
    setup: fn(&Scratch),
    /// The exit status of each `tramontane` command of the transcript, in order.
    exits: &'static [i32],
    /// For a JSON block: the command whose answer the block abridges.
    json_of: Option<&'static [&'static str]>,
    /// For code: the gateway on the sandbox upstream that runs before it, and who calls it.
    /// A workload scenario's YAML is policy lines added to the example's.
    gateway: Gateway,
    /// For code: what its output must hold.
    prints: &'static [&'static str],
}

/// Which gateway a code sample runs against.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Gateway {
    None,
    /// A key for Alice in `TRAMONTANE_KEY`.
    Key,
    /// The example with the workloads of docs/workload-identity.md trusting a local issuer:
    /// a Kubernetes token in the file `TRAMONTANE_TOKEN_FILE` names, and GitHub's token
    /// endpoint at `ACTIONS_ID_TOKEN_REQUEST_URL`; the gateway's URL in `TRAMONTANE_URL`.
    Workload,
}

/// The two mistakes the quickstart makes in the example to show what `validate` says.
fn break_the_example(scratch: &Scratch) {
    let file = "policies/workspaces/dev.yaml";
    scratch.edit(
        file,
        "    description: Every developer",
        "    descripton: Every developer",
    );
    scratch.edit(file, "        rpm: 30\n", "        rpm: 300\n");
}

fn nothing(_: &Scratch) {}

const SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "usage-memory",
        setup: nothing,
        exits: &[1],
        json_of: None,
        gateway: Gateway::None,
        prints: &[],
    },
    Scenario {
        name: "validate",
        setup: nothing,
        exits: &[0],
        json_of: None,
        gateway: Gateway::None,
        prints: &[],
    },
    Scenario {
        name: "validate-error",
        setup: break_the_example,
        exits: &[1],
        json_of: None,
        gateway: Gateway::None,
        prints: &[],
    },
    Scenario {
        name: "validate-json",
        setup: break_the_example,
        exits: &[1],
        json_of: None,
        gateway: Gateway::None,
        prints: &[],
    },
    Scenario {
        name: "policy-format",
        setup: nothing,
        exits: &[0],
        json_of: None,
        gateway: Gateway::None,
        prints: &[],
    },
    Scenario {
        name: "explain",
        setup: nothing,
        exits: &[0],
        json_of: None,
        gateway: Gateway::None,
        prints: &[],
    },
    Scenario {
        name: "plan-demo",
        setup: nothing,
        exits: &[0],
        json_of: None,
        gateway: Gateway::None,
        prints: &[],
    },
    Scenario {
        name: "apply-demo",
        setup: |scratch| {
            scratch.tramontane(&["plan", "--org", "sandbox:demo", "--out", "plan.json"])
        },
        exits: &[0, 0],
        json_of: None,
        gateway: Gateway::None,
        prints: &[],
    },
    Scenario {
        name: "plan-delete-replace",
        setup: |scratch| {
            scratch.tramontane(&["apply", "--org", "sandbox:demo", "--auto-approve"]);
            scratch.edit(
                "policies/organization.yaml",
                "  min_admins: 2",
                "  prune: { members: true, keys: true }\n  min_admins: 2",
            );
            scratch.edit(
                "policies/workspaces/ml.yaml",
                "        expires_after_days: 90",
                "        expires_after_days: 60",
            );
        },
        exits: &[0],
        json_of: None,
        gateway: Gateway::None,
        prints: &[],
    },
    Scenario {
        name: "plan-json",
        setup: nothing,
        exits: &[0],
        json_of: Some(&["plan", "--org", "sandbox:demo", "--format", "json"]),
        gateway: Gateway::None,
        prints: &[],
    },
    Scenario {
        name: "init",
        setup: nothing,
        exits: &[0, 0, 0],
        json_of: None,
        gateway: Gateway::None,
        prints: &[],
    },
    Scenario {
        name: "diff",
        setup: |scratch| {
            scratch.commit_all("Acme's organization");
            scratch.edit(
                "policies/organization.yaml",
                "  spend_limit: 3000 ",
                "  spend_limit: unlimited ",
            );
            scratch.edit(
                "policies/organization.yaml",
                "    daily_token_budget: 500000",
                "    daily_token_budget: 750000",
            );
            scratch.edit(
                "policies/teams.yaml",
                "      - hugo.lefebvre@acme.example\n",
                "      - hugo.lefebvre@acme.example\n      - carol.nguyen@acme.example\n",
            );
        },
        exits: &[0],
        json_of: None,
        gateway: Gateway::None,
        prints: &[],
    },
    Scenario {
        name: "gateway-three-commands",
        setup: nothing,
        exits: &[0],
        json_of: None,
        gateway: Gateway::None,
        prints: &["\"code\":\"model_not_allowed\"", "mistral-small-latest"],
    },
    Scenario {
        name: "gateway-python",
        setup: nothing,
        exits: &[0],
        json_of: None,
        gateway: Gateway::Key,
        prints: &["Sandbox answer from mistral-small-latest"],
    },
    Scenario {
        name: "workload-kubernetes-policy",
        setup: nothing,
        exits: &[0],
        json_of: None,
        gateway: Gateway::Workload,
        prints: &[],
    },
    Scenario {
        name: "workload-kubernetes-python",
        setup: workload_identity::trust_the_local_issuer,
        exits: &[0],
        json_of: None,
        gateway: Gateway::Workload,
        prints: &["Sandbox answer from mistral-small-latest"],
    },
    Scenario {
        name: "workload-github-policy",
        setup: nothing,
        exits: &[0],
        json_of: None,
        gateway: Gateway::Workload,
        prints: &[],
    },
    Scenario {
        name: "workload-github-python",
        setup: workload_identity::trust_the_local_issuer,
        exits: &[0],
        json_of: None,
        gateway: Gateway::Workload,
        prints: &["Sandbox answer from mistral-small-latest"],
    },
    Scenario {
        name: "gateway-curl",
        setup: nothing,
        exits: &[0],
        json_of: None,
        gateway: Gateway::Key,
        prints: &["\"choices\"", "\"mistral-small"],
    },
];

/// A fenced block marked as a sample, in one document.
struct Sample {
    name: String,
    /// The line of the marker, 1-based, for messages.
    marker_line: usize,
    language: String,
    /// Line indices (0-based) of the opening and closing fences.
    open: usize,
    close: usize,
    content: String,
}

const MARKER_START: &str = "<!-- sample: ";
const MARKER_END: &str = " -->";

fn documents() -> Vec<PathBuf> {
    let root = repo_root();
    let mut documents = vec![root.join("README.md")];
    let mut docs: Vec<PathBuf> = std::fs::read_dir(root.join("docs"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "md"))
        .collect();
    docs.sort();
    documents.extend(docs);
    documents
}

fn samples_in(document: &Path, text: &str) -> Result<Vec<Sample>, String> {
    let lines: Vec<&str> = text.lines().collect();
    let mut samples = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i].trim();
        let Some(name) = line
            .strip_prefix(MARKER_START)
            .and_then(|rest| rest.strip_suffix(MARKER_END))
        else {
            i += 1;
            continue;
        };
        let at = format!("{}:{}", document.display(), i + 1);
        let open = i + 1;
        let language = lines
            .get(open)
            .and_then(|fence| fence.strip_prefix("```"))
            .filter(|language| !language.is_empty())
            .ok_or_else(|| {
                format!("{at}: the sample `{name}` must be followed by a fence such as ```console")
            })?;
        let close = (open + 1..lines.len())
            .find(|&j| lines[j] == "```")
            .ok_or_else(|| format!("{at}: the block of sample `{name}` is never closed"))?;
        let mut content = String::new();
        for line in &lines[open + 1..close] {
            content.push_str(line);
            content.push('\n');
        }
        samples.push(Sample {
            name: name.trim().to_owned(),
            marker_line: i + 1,
            language: language.trim().to_owned(),
            open,
            close,
            content,
        });
        i = close + 1;
    }
    Ok(samples)
}

/// Runs the binary with stdout and stderr on one file, so the two interleave as on a
/// terminal, and returns its exit status and everything it printed.
fn run_together(dir: &Path, args: &[String]) -> (i32, String) {
    let mut file = tempfile::tempfile().unwrap();
    let status = Test::new()
        .current_dir(dir)
        .command()
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(file.try_clone().unwrap())
        .stderr(file.try_clone().unwrap())
        .status()
        .expect("the binary runs");
    file.rewind().unwrap();
    let mut printed = String::new();
    file.read_to_string(&mut printed).unwrap();
    (status.code().unwrap_or(-1), printed)
}

/// Splits a sample's command line into words; quotes group, and nothing a shell would
/// interpret otherwise (pipes, redirections, variables) is accepted.
fn words(line: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut word: Option<String> = None;
    let mut quote: Option<char> = None;
    for c in line.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => word.get_or_insert_with(String::new).push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                word.get_or_insert_with(String::new);
            }
            (None, c) if c.is_whitespace() => words.extend(word.take()),
            (None, '|' | '>' | '<' | '&' | ';' | '$' | '`' | '*') => {
                return Err(format!(
                    "`{line}`: a sample runs one command, without `{c}`; do the rest in its scenario"
                ));
            }
            (None, c) => word.get_or_insert_with(String::new).push(c),
        }
    }
    if quote.is_some() {
        return Err(format!("`{line}`: a quote is never closed"));
    }
    words.extend(word);
    Ok(words)
}

/// The transcript a console sample should hold: each command of the sample, run in turn,
/// followed by what it printed.
fn transcript(sample: &Sample, scenario: &Scenario, scratch: &Scratch) -> Result<String, String> {
    let mut dir = scratch.path().to_owned();
    let mut exits = Vec::new();
    let mut shown = String::new();
    for line in sample.content.lines().filter(|line| line.starts_with("$ ")) {
        let words = words(&line[2..])?;
        writeln!(shown, "{line}").unwrap();
        match words.split_first() {
            Some((program, args)) if program == "tramontane" => {
                let (code, printed) = run_together(&dir, args);
                if printed.contains("```") {
                    return Err(format!(
                        "`{line}` prints a fence, which would end the block"
                    ));
                }
                shown.push_str(&printed);
                if !printed.is_empty() && !printed.ends_with('\n') {
                    shown.push('\n');
                }
                exits.push(code);
            }
            Some((program, [to])) if program == "cd" => {
                let root = scratch.path().canonicalize().unwrap();
                match dir.join(to).canonicalize() {
                    Ok(to) if to.starts_with(&root) && to.is_dir() => dir = to,
                    _ => return Err(format!("`{line}`: no such directory in the scratch copy")),
                }
            }
            _ => {
                return Err(format!(
                    "`{line}`: a sample runs `tramontane ARGS` or `cd DIR`, nothing else"
                ));
            }
        }
    }
    if exits.is_empty() {
        return Err("the block has no `$ tramontane ARGS` line".into());
    }
    if exits != scenario.exits {
        return Err(format!(
            "its commands exited {exits:?}, the scenario expects {:?}:\n{shown}",
            scenario.exits
        ));
    }
    Ok(shown)
}

/// The JSON a json sample should hold: the real answer, cut to the sample's shape.
fn abridged(sample: &Sample, scenario: &Scenario, scratch: &Scratch) -> Result<String, String> {
    let args = scenario
        .json_of
        .ok_or("a json sample's scenario must name its command")?;
    let output = Test::new()
        .current_dir(scratch.path())
        .command()
        .args(args)
        .output()
        .unwrap();
    if output.status.code() != Some(scenario.exits[0]) {
        return Err(format!(
            "`tramontane {}` exited {:?}: {}",
            args.join(" "),
            output.status.code(),
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    let real: Value = serde_json::from_slice(&output.stdout)
        .map_err(|e| format!("`tramontane {}` printed no JSON: {e}", args.join(" ")))?;
    let shape: Value =
        serde_json::from_str(&sample.content).map_err(|e| format!("the block is not JSON: {e}"))?;
    if let (Some(real), Some(shape)) = (real.as_object(), shape.as_object()) {
        let unshown: Vec<&String> = real.keys().filter(|k| !shape.contains_key(*k)).collect();
        if !unshown.is_empty() {
            return Err(format!(
                "the answer has {unshown:?}, which the sample does not show; add them to the block"
            ));
        }
    }
    let mut problems = Vec::new();
    let cut = cut_to_shape(&shape, &real, "", &mut problems);
    if !problems.is_empty() {
        return Err(problems.join("\n"));
    }
    Ok(serde_json::to_string_pretty(&cut).unwrap() + "\n")
}

/// `real` with only what `shape` shows: its keys, and its items of arrays (matched by their
/// `address`, else by position). A scalar in the shape stands for the real value, whatever it is.
fn cut_to_shape(shape: &Value, real: &Value, at: &str, problems: &mut Vec<String>) -> Value {
    match (shape, real) {
        (Value::Object(shape), Value::Object(real)) => {
            let mut cut = Map::new();
            for (key, shown) in shape {
                match real.get(key) {
                    Some(value) => {
                        let at = format!("{at}.{key}");
                        cut.insert(key.clone(), cut_to_shape(shown, value, &at, problems));
                    }
                    None => problems.push(format!("`{at}.{key}` is shown but not in the answer")),
                }
            }
            Value::Object(cut)
        }
        (Value::Array(shape), Value::Array(real)) => {
            let mut cut = Vec::new();
            for (i, shown) in shape.iter().enumerate() {
                let address = shown.get("address").and_then(Value::as_str);
                let found = match address {
                    Some(address) => real
                        .iter()
                        .find(|item| item.get("address").and_then(Value::as_str) == Some(address)),
                    None => real.get(i),
                };
                match found {
                    Some(item) => {
                        cut.push(cut_to_shape(shown, item, &format!("{at}[{i}]"), problems))
                    }
                    None => problems.push(format!(
                        "`{at}[{i}]` ({}) is shown but not in the answer",
                        address.unwrap_or("by position")
                    )),
                }
            }
            Value::Array(cut)
        }
        _ => real.clone(),
    }
}

/// A policy sample is what `validate` accepts; it stays as the document shows it.
fn validated_policy(sample: &Sample, scenario: &Scenario) -> Result<String, String> {
    let env = if scenario.gateway == Gateway::Workload {
        TestDir::with_example_policies()
    } else {
        TestDir::new()
    };
    env.write("policies/sample.yaml", &sample.content);
    let (code, printed) = run_together(env.path(), &["validate".to_owned()]);
    if code != scenario.exits[0] {
        return Err(format!(
            "`tramontane validate` exited {code}, the scenario expects {}:\n{printed}",
            scenario.exits[0]
        ));
    }
    Ok(sample.content.clone())
}

/// A free loopback port, for a gateway the code talks to.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits until something accepts connections on `address`.
fn wait_listening(address: &str) -> Result<(), String> {
    for _ in 0..400 {
        if std::net::TcpStream::connect(address).is_ok() {
            return Ok(());
        }
        std::thread::sleep(std::time::Duration::from_millis(25));
    }
    Err(format!("nothing listens on {address} after 10 s"))
}

/// A process killed when the sample is done with it.
struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs a code sample as a reader would, and returns it unchanged when it exits 0 and prints
/// what its scenario names.
fn ran_code(sample: &Sample, scenario: &Scenario, scratch: &Scratch) -> Result<String, String> {
    let address = format!("127.0.0.1:{}", free_port());
    let code = sample
        .content
        .replace("127.0.0.1:8080", &address)
        .replace("localhost:8080", &address);
    // The binary's controlled environment (fixed day, none of the caller's variables), for
    // every process the code starts.
    let binary_run = Test::new().current_dir(scratch.path()).command();
    let with_env = |mut command: std::process::Command| {
        for (name, value) in binary_run.get_envs() {
            match value {
                Some(value) => command.env(name, value),
                None => command.env_remove(name),
            };
        }
        command.current_dir(scratch.path());
        command.env("TRAMONTANE_LISTEN", &address);
        command
    };
    let mut _gateway = None;
    let mut key = String::new();
    if scenario.gateway == Gateway::Key {
        scratch.tramontane(&[
            "gateway",
            "issue",
            "--member",
            "alice.martin@acme.example",
            "--workspace",
            "dev-workspace",
            "--sink",
            "file:secrets/alice.key",
        ]);
        key = std::fs::read_to_string(scratch.path().join("secrets/alice.key"))
            .unwrap()
            .trim_end()
            .to_owned();
    }
    if scenario.gateway != Gateway::None {
        let mut serve = with_env(std::process::Command::new(binary_run.get_program()));
        serve
            .args(["gateway", "serve", "--upstream", "sandbox"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        _gateway = Some(Killed(serve.spawn().unwrap()));
        wait_listening(&address)?;
    }
    let mut command = if sample.language == "python" {
        scratch.env.write("sample.py", &code);
        let mut python = with_env(std::process::Command::new(crate::test_gateway::sdk_python()));
        python.arg("sample.py");
        python
    } else {
        // `set -e` so a failing line fails the sample; a server the code starts in the
        // background is waited for before the next line, and stopped at the end.
        let mut script =
            String::from("set -euo pipefail\ntrap 'kill $(jobs -p) 2>/dev/null || true' EXIT\n");
        for line in code.lines() {
            script.push_str(line);
            script.push('\n');
            if line.trim_end().ends_with('&') {
                let port = address.rsplit(':').next().unwrap();
                writeln!(
                    script,
                    "for _ in $(seq 400); do (exec 3<>/dev/tcp/127.0.0.1/{port}) 2>/dev/null && break; sleep 0.025; done"
                )
                .unwrap();
            }
        }
        scratch.env.write("sample.sh", script);
        let binary = std::path::Path::new(binary_run.get_program());
        let path =
            std::env::join_paths(std::iter::once(binary.parent().unwrap().to_owned()).chain(
                std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()),
            ))
            .unwrap();
        let mut bash = with_env(std::process::Command::new("bash"));
        bash.args(["--noprofile", "--norc", "sample.sh"])
            .env("PATH", path);
        bash
    };
    match scenario.gateway {
        Gateway::None => {}
        Gateway::Key => {
            command.env("TRAMONTANE_KEY", &key);
        }
        Gateway::Workload => {
            command
                .env(
                    "TRAMONTANE_TOKEN_FILE",
                    scratch.path().join(workload_identity::TOKEN_FILE),
                )
                .env("TRAMONTANE_URL", format!("http://{address}"))
                .env(
                    "ACTIONS_ID_TOKEN_REQUEST_URL",
                    workload_identity::token_request_url(),
                )
                .env(
                    "ACTIONS_ID_TOKEN_REQUEST_TOKEN",
                    workload_identity::REQUEST_TOKEN,
                );
        }
    }
    let output = command
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| format!("cannot run the {} sample: {e}", sample.language))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() {
        return Err(format!(
            "the {} sample exited {:?}:\n{stdout}{stderr}",
            sample.language,
            output.status.code()
        ));
    }
    let missing: Vec<&&str> = scenario
        .prints
        .iter()
        .filter(|expected| !stdout.contains(**expected))
        .collect();
    if !missing.is_empty() {
        return Err(format!(
            "the {} sample's output lacks {missing:?}:\n{stdout}{stderr}",
            sample.language
        ));
    }
    Ok(sample.content.clone())
}

/// A line diff of what the document shows against what the binary prints, with a little
/// context around each difference.
fn diff(shown: &str, printed: &str) -> String {
    let a: Vec<&str> = shown.lines().collect();
    let b: Vec<&str> = printed.lines().collect();
    // Longest common subsequence, table from the end.
    let mut lcs = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            lcs[i][j] = if a[i] == b[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let mut ops = Vec::new();
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            ops.push((' ', a[i]));
            i += 1;
            j += 1;
        } else if i < a.len() && (j == b.len() || lcs[i + 1][j] >= lcs[i][j + 1]) {
            ops.push(('-', a[i]));
            i += 1;
        } else {
            ops.push(('+', b[j]));
            j += 1;
        }
    }
    let near_change = |k: usize| {
        ops[k.saturating_sub(2)..(k + 3).min(ops.len())]
            .iter()
            .any(|(op, _)| *op != ' ')
    };
    let mut out = String::from("--- the document\n+++ the binary\n");
    let mut skipped = false;
    for (k, (op, line)) in ops.iter().enumerate() {
        if near_change(k) {
            writeln!(out, "{op} {line}").unwrap();
            skipped = false;
        } else if !skipped {
            out.push_str("  …\n");
            skipped = true;
        }
    }
    out
}

#[test]
fn the_samples_in_the_docs_are_what_the_binary_prints() {
    let update = std::env::var_os("UPDATE_README").is_some_and(|v| !v.is_empty() && v != "0");
    let mut failures = Vec::new();
    let mut seen: Vec<String> = Vec::new();
    for document in documents() {
        let text = std::fs::read_to_string(&document).unwrap();
        let name = document.strip_prefix(repo_root()).unwrap_or(&document);
        let samples = match samples_in(name, &text) {
            Ok(samples) => samples,
            Err(failure) => {
                failures.push(failure);
                continue;
            }
        };
        let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
        // Blocks are replaced from the last, so earlier line numbers stay right.
        for sample in samples.iter().rev() {
            let at = format!(
                "{}:{} (sample `{}`)",
                name.display(),
                sample.marker_line,
                sample.name
            );
            if seen.contains(&sample.name) {
                failures.push(format!("{at}: another sample already has this name"));
                continue;
            }
            seen.push(sample.name.clone());
            let Some(scenario) = SCENARIOS.iter().find(|s| s.name == sample.name) else {
                failures.push(format!(
                    "{at}: no scenario of this name in tests/test_readme.rs; add one"
                ));
                continue;
            };
            let prepared = || {
                let scratch = Scratch {
                    env: TestDir::with_example_policies(),
                };
                (scenario.setup)(&scratch);
                scratch
            };
            let made = match sample.language.as_str() {
                "console" => transcript(sample, scenario, &prepared()),
                "json" => abridged(sample, scenario, &prepared()),
                "yaml" => validated_policy(sample, scenario),
                "sh" | "python" => ran_code(sample, scenario, &prepared()),
                other => Err(format!(
                    "a sample block is ```console, ```json, ```yaml, ```sh or ```python, not ```{other}"
                )),
            };
            let made = match made {
                Ok(made) => made,
                Err(failure) => {
                    failures.push(format!("{at}: {failure}"));
                    continue;
                }
            };
            if made == sample.content {
                continue;
            }
            if update {
                lines.splice(
                    sample.open + 1..sample.close,
                    made.lines().map(str::to_owned),
                );
            } else {
                failures.push(format!(
                    "{at} differs from what the binary prints:\n{}",
                    diff(&sample.content, &made)
                ));
            }
        }
        if update {
            let mut rewritten = lines.join("\n");
            rewritten.push('\n');
            if rewritten != text {
                std::fs::write(&document, rewritten).unwrap();
            }
        }
    }
    for scenario in SCENARIOS {
        if !seen.iter().any(|name| name == scenario.name) {
            failures.push(format!(
                "the scenario `{}` has no `<!-- sample: {} -->` in README.md or docs/*.md",
                scenario.name, scenario.name
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{}\n\nIf the change in output is intended, regenerate the samples with\n  \
         UPDATE_README=1 cargo test -p tramontane-cli --test runner test_readme\n",
        failures.join("\n\n")
    );
}

#[test]
fn a_sample_command_is_one_command_and_nothing_a_shell_would_expand() {
    assert_eq!(
        words("tramontane plan --org 'sandbox:my org.json'").unwrap(),
        ["tramontane", "plan", "--org", "sandbox:my org.json"]
    );
    assert!(words("tramontane plan > plan.txt").is_err());
    assert!(words("tramontane plan | less").is_err());
    assert!(words("tramontane plan --org \"sandbox:x").is_err());
}

#[test]
fn a_json_sample_keeps_its_shape_and_takes_the_real_values() {
    let shape: Value = serde_json::json!({
        "summary": {"create": 0},
        "changes": [{"address": "b", "action": "old"}],
    });
    let real: Value = serde_json::json!({
        "summary": {"create": 6, "delete": 1},
        "changes": [{"address": "a", "action": "create"}, {"address": "b", "action": "rotate", "reason": "r"}],
    });
    let mut problems = Vec::new();
    assert_eq!(
        cut_to_shape(&shape, &real, "", &mut problems),
        serde_json::json!({"summary": {"create": 6}, "changes": [{"address": "b", "action": "rotate"}]})
    );
    assert!(problems.is_empty());

    let gone: Value = serde_json::json!({"changes": [{"address": "c"}], "nowhere": 1});
    cut_to_shape(&gone, &real, "", &mut problems);
    assert_eq!(problems.len(), 2, "{problems:?}");
}

#[test]
fn a_difference_is_shown_as_a_diff() {
    let shown = "a\nb\nc\nd\ne\nf\ng\n";
    let printed = "a\nb\nc\nD\ne\nf\ng\n";
    assert_eq!(
        diff(shown, printed),
        "--- the document\n+++ the binary\n  …\n  b\n  c\n- d\n+ D\n  e\n  f\n  …\n"
    );
}

/// The README opens with the two commands a newcomer runs: a plan of the demo organization
/// (the run the `plan-demo` sample shows, built by cargo) and the test command.
#[test]
fn the_readme_opens_with_the_two_commands_of_a_fresh_clone() {
    let readme = std::fs::read_to_string(repo_root().join("README.md")).unwrap();
    let before_install = &readme[..readme.find("\n## Install\n").expect("an Install section")];
    let block = before_install
        .split("```sh\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("a ```sh block before Install");
    assert_eq!(
        block,
        "cargo run --locked -p tramontane-cli -- plan --org sandbox:demo\nscripts/test\n"
    );
    let plan_demo = SCENARIOS
        .iter()
        .find(|scenario| scenario.name == "plan-demo")
        .unwrap();
    assert!(plan_demo.json_of.is_none() && plan_demo.exits == [0]);
    assert!(
        readme.contains(
            "<!-- sample: plan-demo -->\n```console\n$ tramontane plan --org sandbox:demo\n"
        ),
        "the plan the first command runs is the quickstart's `plan-demo` sample"
    );
    let script = repo_root().join("scripts/test");
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&script).unwrap().permissions());
    assert!(mode & 0o111 != 0, "scripts/test must be executable");
    assert!(
        std::fs::read_to_string(&script)
            .unwrap()
            .contains("cargo test --locked \"$@\"")
    );
}
