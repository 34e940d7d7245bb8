//! `tramontane gateway serve`, run as a process in front of a fake inference API: every
//! decision in Mistral's error shape, pass-through byte for byte and chunk by chunk,
//! reservations that never leak, a budget that holds under a race, hot reload, and a
//! Mistral key that never shows.

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tramontane::model::KeyDigest;
use tramontane_testkit::fake_inference::{FakeInference, InferenceFault};

use tramontane_testkit::{Test, TestDir};

/// The Mistral keys the gateway holds: distinctive, so a leak anywhere is found.
pub(crate) const DEV_UPSTREAM: &str = "sk-upstream-dev-QX7mZ2pL9";
pub(crate) const CI_UPSTREAM: &str = "sk-upstream-ci-W4rT8nB3k";
pub(crate) const RACE_UPSTREAM: &str = "sk-upstream-race-H5vY1cJ6";

/// A well-formed gateway key for a public id: `tmt_<id>_<43 base62 characters>`.
pub(crate) fn gateway_key(id: &str) -> String {
    let alphabet = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
    let seed = id
        .bytes()
        .fold(7u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b)));
    let secret: String = (0..43)
        .map(|i| alphabet[((seed.wrapping_mul(i + 13) >> 7) % 62) as usize] as char)
        .collect();
    format!("tmt_{id}_{secret}")
}

pub(crate) fn digest(id: &str) -> String {
    KeyDigest::of(&gateway_key(id)).to_string()
}

/// The test organization: Bob (a developer) and a CI service key in `dev`, a service key
/// with a tight daily budget in `race`.
pub(crate) fn policy(race_budget: u64, extra_keys: &str) -> String {
    format!(
        r#"version: 1
members:
  ada@acme.example: {{ name: Ada Admin, roles: [organization_admin] }}
  bob@acme.example: {{ name: Bob Dev }}
roles:
  developer:
    models: [mistral-small-latest, mistral-embed]
    max_tokens_per_request: 200
    daily_token_budget: 1000000
teams:
  developers:
    members: [bob@acme.example]
    workspaces: {{ dev: [user] }}
    role: developer
workspaces:
  dev:
    admin: ada@acme.example
    members: {{ ada@acme.example: [workspace_admin] }}
    models: [mistral-small-latest, mistral-embed, codestral-latest]
    # An agent's own prompt is kept upstream: reserved at this many tokens.
    gateway: {{ upstream_key: gw, agents: [ag_allowed], fetched_content_tokens: 20000 }}
    keys:
      gw: {{ owner: ada@acme.example, secret: {{ file: secrets/gw.key }} }}
      ci:
        owner: ada@acme.example
        models: [codestral-latest]
        rpm: 3
        max_tokens_per_request: 50
        secret: {{ file: secrets/ci.key }}
  race:
    admin: ada@acme.example
    members: {{ ada@acme.example: [workspace_admin] }}
    keys:
      racer:
        owner: ada@acme.example
        daily_token_budget: {race_budget}
        secret: {{ file: secrets/racer.key }}
gateway_keys:
  bobkey: {{ digest: "{bob}", holder: bob@acme.example, workspace: dev, expires: 2030-01-01 }}
  cikey: {{ digest: "{ci}", holder: workspace.dev.key.ci, workspace: dev, expires: 2030-01-01 }}
  racekey: {{ digest: "{race}", holder: workspace.race.key.racer, workspace: race, expires: 2030-01-01 }}
{extra_keys}"#,
        bob = digest("bobkey"),
        ci = digest("cikey"),
        race = digest("racekey"),
    )
}

pub(crate) fn write_env(policy_text: &str) -> TestDir {
    let env = TestDir::new();
    env.write("policies/org.yaml", policy_text);
    env.write("upstream-keys/workspace.dev.key.gw", DEV_UPSTREAM);
    env.write(
        "upstream-keys/workspace.dev.key.ci",
        format!("{CI_UPSTREAM}\n"),
    );
    env.write("upstream-keys/workspace.race.key.racer", RACE_UPSTREAM);
    env
}

/// A running gateway, stopped when dropped.
pub(crate) struct Running {
    child: Child,
    base: String,
    admin: String,
    logs: Arc<Mutex<Vec<String>>>,
    audit: Arc<Mutex<Vec<String>>>,
}

fn collect(stream: impl std::io::Read + Send + 'static, into: Arc<Mutex<Vec<String>>>) {
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            into.lock().unwrap().push(line);
        }
    });
}

impl Running {
    pub(crate) fn start(env: &TestDir, upstream: &str, extra: &[&str]) -> Running {
        let mut args = vec![
            "gateway",
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--admin-listen",
            "127.0.0.1:0",
            "--upstream",
            upstream,
            "--upstream-keys",
            "upstream-keys",
            "--policies",
            "policies",
        ];
        args.extend_from_slice(extra);
        let mut child = Test::in_dir(env)
            .command()
            .args(&args)
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the gateway starts");
        let logs = Arc::new(Mutex::new(Vec::new()));
        let audit = Arc::new(Mutex::new(Vec::new()));
        collect(child.stderr.take().unwrap(), logs.clone());
        collect(child.stdout.take().unwrap(), audit.clone());
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let addresses = logs.lock().unwrap().iter().find_map(|line| {
                let event: Value = serde_json::from_str(line).ok()?;
                (event["message"] == "listening").then(|| {
                    Some((
                        event["address"].as_str()?.to_owned(),
                        event["admin_address"].as_str()?.to_owned(),
                    ))
                })?
            });
            if let Some((address, admin)) = addresses {
                return Running {
                    child,
                    base: format!("http://{address}"),
                    admin: format!("http://{admin}"),
                    logs,
                    audit,
                };
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!(
                    "the gateway exited with {status}: {}",
                    logs.lock().unwrap().join("\n")
                );
            }
            assert!(Instant::now() < deadline, "the gateway did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A path on the admin listener (`/metrics`, `/readyz`, `/healthz`).
    pub(crate) fn admin_url(&self, path: &str) -> String {
        format!("{}{path}", self.admin)
    }

    pub(crate) fn logs(&self) -> String {
        self.logs.lock().unwrap().join("\n")
    }

    pub(crate) fn audit_lines(&self) -> Vec<Value> {
        self.audit
            .lock()
            .unwrap()
            .iter()
            .map(|line| serde_json::from_str(line).expect("an audit line is JSON"))
            .collect()
    }

    /// Waits for an audit line: they are written once an answer has been sent.
    pub(crate) fn audit_line(&self, wanted: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            if let Some(line) = self.audit_lines().into_iter().find(|line| wanted(line)) {
                return line;
            }
            assert!(Instant::now() < deadline, "no such audit line");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn terminate(&self) {
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
    }

    fn wait(&mut self, timeout: Duration) -> Option<i32> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// Asserts that no upstream key shows in anything the gateway said.
    pub(crate) fn assert_no_leak(&self, seen: &[String]) {
        let everything = format!(
            "{}\n{}\n{}",
            self.logs(),
            self.audit.lock().unwrap().join("\n"),
            seen.join("\n")
        );
        for key in [DEV_UPSTREAM, CI_UPSTREAM, RACE_UPSTREAM] {
            assert!(!everything.contains(key), "an upstream key leaked");
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

pub(crate) fn client() -> reqwest::Client {
    tramontane::tls::install_default_provider();
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// An answer as text, with its status and headers shown in one string for leak checks.
pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) headers: reqwest::header::HeaderMap,
    pub(crate) body: String,
}

impl Answer {
    pub(crate) fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|_| panic!("not JSON: {}", self.body))
    }

    fn shown(&self) -> String {
        format!("{} {:?} {}", self.status, self.headers, self.body)
    }

    /// Asserts a gateway decision in Mistral's error shape.
    pub(crate) fn refusal(&self, status: u16, code: &str) -> &Answer {
        assert_eq!(self.status, status, "{}", self.body);
        let body = self.json();
        assert_eq!(body["object"], "error", "{}", self.body);
        assert_eq!(body["code"], code, "{}", self.body);
        assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()));
        assert!(body.get("type").is_some() && body.get("param").is_some());
        self
    }
}

pub(crate) async fn post(
    client: &reqwest::Client,
    url: &str,
    key: Option<&str>,
    body: &str,
) -> Answer {
    let mut request = client
        .post(url)
        .header("content-type", "application/json")
        .body(body.to_owned());
    if let Some(key) = key {
        request = request.header("authorization", format!("Bearer {key}"));
    }
    let response = request.send().await.expect("the gateway answers");
    Answer {
        status: response.status().as_u16(),
        headers: response.headers().clone(),
        body: response.text().await.unwrap(),
    }
}

pub(crate) async fn get(client: &reqwest::Client, url: &str, key: Option<&str>) -> Answer {
    let mut request = client.get(url);
    if let Some(key) = key {
        request = request.header("authorization", format!("Bearer {key}"));
    }
    let response = request.send().await.expect("the gateway answers");
    Answer {
        status: response.status().as_u16(),
        headers: response.headers().clone(),
        body: response.text().await.unwrap(),
    }
}

/// The value of one metric line, such as `tramontane_gateway_reservations_open`.
pub(crate) async fn metric(client: &reqwest::Client, running: &Running, name: &str) -> Option<f64> {
    let text = get(client, &running.admin_url("/metrics"), None).await.body;
    text.lines().find_map(|line| {
        let (key, value) = line.rsplit_once(' ')?;
        (key == name).then(|| value.parse().ok())?
    })
}

pub(crate) async fn wait_for_metric(
    client: &reqwest::Client,
    running: &Running,
    name: &str,
    want: f64,
) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let value = metric(client, running, name).await;
        if value == Some(want) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{name} stayed at {value:?}, not {want}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub(crate) const CHAT: &str =
    r#"{"model":"mistral-small-latest","messages":[{"role":"user","content":"hello"}]}"#;

#[test]
fn every_decision_comes_back_in_mistrals_error_shape_and_nothing_refused_is_forwarded() {
    let fake = FakeInference::start();
    let expired = format!(
        "  oldkey: {{ digest: \"{}\", holder: bob@acme.example, workspace: dev, expires: 2026-06-01 }}\n",
        digest("oldkey")
    );
    let env = write_env(&policy(1_000_000, &expired));
    let running = Running::start(&env, &fake.url, &["--max-body-bytes", "4096"]);
    let chat = running.url("/v1/chat/completions");
    let bob = gateway_key("bobkey");
    let ci = gateway_key("cikey");
    let mut seen = Vec::new();
    runtime().block_on(async {
        let client = client();
        let forwarded_before = fake.inference_requests().len();
        let cases: Vec<(Answer, u16, &str)> = vec![
            (post(&client, &chat, None, CHAT).await, 401, "missing_key"),
            (post(&client, &chat, Some(DEV_UPSTREAM), CHAT).await, 401, "malformed_key"),
            (post(&client, &chat, Some(&gateway_key("nobody")), CHAT).await, 401, "unknown_key"),
            (post(&client, &chat, Some(&bob.replace('a', "b")), CHAT).await, 401, "unknown_key"),
            (post(&client, &chat, Some(&gateway_key("oldkey")), CHAT).await, 401, "expired_key"),
            (
                post(&client, &chat, Some(&bob), r#"{"model":"mistral-large-latest","messages":[]}"#).await,
                403,
                "model_not_allowed",
            ),
            (
                post(&client, &chat, Some(&bob), r#"{"model":"mistral-small-latest","messages":[],"max_tokens":201}"#).await,
                400,
                "max_tokens_exceeded",
            ),
            (
                post(&client, &chat, Some(&bob), r#"{"model":"mistral-small-latest","messages":[],"n":9}"#).await,
                400,
                "too_many_choices",
            ),
            (post(&client, &chat, Some(&bob), "{not json").await, 400, "malformed_json"),
            (post(&client, &chat, Some(&bob), r#"{"messages":[]}"#).await, 400, "missing_field"),
            (
                post(&client, &chat, Some(&bob), r#"{"model":"mistral-small-latest","max_tokens":1,"max_tokens":9999}"#).await,
                400,
                "duplicate_field",
            ),
            (
                post(&client, &chat, Some(&bob), &format!(r#"{{"model":"mistral-small-latest","messages":[{{"role":"user","content":"{}"}}]}}"#, "x".repeat(5000))).await,
                413,
                "body_too_large",
            ),
            (post(&client, &running.url("/v1/files"), Some(&bob), "{}").await, 404, "path_not_found"),
            (get(&client, &chat, Some(&bob)).await, 405, "method_not_allowed"),
            (
                post(&client, &running.url("/v1/agents/completions"), Some(&bob), r#"{"agent_id":"ag_other","messages":[]}"#).await,
                403,
                "agent_not_allowed",
            ),
        ];
        for (answer, status, code) in &cases {
            answer.refusal(*status, code);
            seen.push(answer.shown());
        }
        let body = cases[5].0.json();
        assert_eq!(
            body["message"],
            "Model `mistral-large-latest` is not allowed for this key; allowed: mistral-embed, mistral-small-latest."
        );
        assert_eq!(cases[0].0.headers["www-authenticate"], "Bearer");
        assert_eq!(
            fake.inference_requests().len(),
            forwarded_before,
            "a refused request reached the upstream"
        );

        // The CI key may make three requests a minute.
        let code = r#"{"model":"codestral-latest","messages":[{"role":"user","content":"fn"}]}"#;
        for _ in 0..3 {
            let answer = post(&client, &chat, Some(&ci), code).await;
            assert_eq!(answer.status, 200, "{}", answer.body);
        }
        let limited = post(&client, &chat, Some(&ci), code).await;
        limited.refusal(429, "rate_limited");
        let retry: u64 = limited.headers["retry-after"].to_str().unwrap().parse().unwrap();
        assert!((1..=60).contains(&retry), "{retry}");
        assert_eq!(fake.inference_requests().len(), forwarded_before + 3);

        // An allowed agent goes through.
        let agent = post(&client, &running.url("/v1/agents/completions"), Some(&bob), r#"{"agent_id":"ag_allowed","messages":[{"role":"user","content":"hi"}]}"#).await;
        assert_eq!(agent.status, 200, "{}", agent.body);
        seen.push(limited.shown());
        seen.push(get(&client, &running.admin_url("/metrics"), None).await.body);
    });
    // One audit line per request, none holding a prompt.
    running.audit_line(|line| {
        line["path"] == "/v1/agents/completions" && line["reason"] == "completed"
    });
    let audit = running.audit_lines();
    assert_eq!(audit.len(), 20, "one audit line per request");
    let refused = running.audit_line(|line| line["reason"] == "model_not_allowed");
    assert_eq!(refused["key_id"], "bobkey");
    assert_eq!(refused["holder"], "bob@acme.example");
    assert_eq!(refused["decision"], "refused");
    // The expired entry fails validation but does not stop the gateway: it is refused.
    assert!(running.logs().contains("an expired gateway key is refused"));
    assert!(!running.audit.lock().unwrap().join("\n").contains("hello"));
    running.assert_no_leak(&seen);
}

#[test]
fn admitted_requests_are_forwarded_byte_for_byte_with_the_gateways_key() {
    let fake = FakeInference::start();
    let env = write_env(&policy(1_000_000, ""));
    let running = Running::start(&env, &fake.url, &[]);
    let chat = running.url("/v1/chat/completions");
    let mut seen = Vec::new();
    runtime().block_on(async {
        let client = client();
        // Odd spacing and a max_tokens within the cap: forwarded exactly as sent.
        let exact = "{ \"model\" : \"mistral-small-latest\",\n \"messages\": [{\"role\":\"user\",\"content\":\"caf\\u00e9\"}], \"max_tokens\": 12 }";
        let answer = post(&client, &chat, Some(&gateway_key("bobkey")), exact).await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        assert_eq!(answer.headers["x-upstream-marker"], "fake-inference");
        assert!(answer.headers.contains_key("x-tramontane-request-id"));
        assert_eq!(answer.json()["usage"]["completion_tokens"], 12);
        let received = fake.inference_requests();
        let last = received.last().unwrap();
        assert_eq!(last.body, exact.as_bytes());
        assert_eq!(last.authorization.as_deref(), Some(format!("Bearer {DEV_UPSTREAM}").as_str()));
        assert!(!last.headers.iter().any(|(_, value)| value.contains("tmt_")));
        seen.push(answer.shown());

        // Without max_tokens, the cap goes in and the rest stays.
        let answer = post(&client, &chat, Some(&gateway_key("bobkey")), CHAT).await;
        assert_eq!(answer.status, 200);
        let forwarded = fake.inference_requests().last().unwrap().body.clone();
        assert_eq!(
            String::from_utf8(forwarded).unwrap(),
            format!("{{\"max_tokens\":200,{}", &CHAT[1..])
        );

        // A service key forwards with its own Mistral key; embeddings and FIM pass too.
        let answer = post(&client, &running.url("/v1/fim/completions"), Some(&gateway_key("cikey")), r#"{"model":"codestral-latest","prompt":"def"}"#).await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        let last = fake.inference_requests().last().unwrap().clone();
        assert_eq!(last.authorization.as_deref(), Some(format!("Bearer {CI_UPSTREAM}").as_str()));
        assert_eq!(last.json()["max_tokens"], 50);
        let answer = post(&client, &running.url("/v1/embeddings"), Some(&gateway_key("bobkey")), r#"{"model":"mistral-embed","input":["a"]}"#).await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        assert!(fake.inference_requests().last().unwrap().json().get("max_tokens").is_none());

        // An upstream error comes back untouched.
        fake.fail_next("/v1/chat", InferenceFault::Status { status: 503, retry_after: Some(7) });
        let answer = post(&client, &chat, Some(&gateway_key("bobkey")), CHAT).await;
        assert_eq!(answer.status, 503);
        assert_eq!(answer.headers["retry-after"], "7");
        assert_eq!(answer.json()["message"], "scripted failure");

        // The model list holds only what the caller may use, aliases kept.
        let models = get(&client, &running.url("/v1/models"), Some(&gateway_key("bobkey"))).await;
        assert_eq!(models.status, 200, "{}", models.body);
        let ids: Vec<String> = models.json()["data"].as_array().unwrap().iter()
            .map(|card| card["id"].as_str().unwrap().to_owned()).collect();
        assert_eq!(ids, vec!["mistral-small-2506", "mistral-small-latest", "mistral-embed"]);
        assert_eq!(models.json()["data"][0]["aliases"], json!(["mistral-small-latest"]));
        post(&client, &running.url("/v1/moderations"), Some(&gateway_key("bobkey")), r#"{"model":"mistral-moderation-latest","input":["x"]}"#).await
            .refusal(403, "model_not_allowed");
        get(&client, &running.url("/v1/models/mistral-large-latest"), Some(&gateway_key("bobkey"))).await
            .refusal(403, "model_not_allowed");
        seen.push(models.shown());
        wait_for_metric(&client, &running, "tramontane_gateway_reservations_open", 0.0).await;
        let tokens = metric(&client, &running, "tramontane_gateway_tokens_total{kind=\"completion\"}").await;
        assert!(tokens.is_some_and(|t| t >= 12.0), "{tokens:?}");
        seen.push(get(&client, &running.admin_url("/metrics"), None).await.body);
    });
    let completed = running.audit_line(|line| {
        line["reason"] == "completed" && line["model_asked"] == "mistral-small-latest"
    });
    assert_eq!(completed["model_resolved"], "mistral-small-2506");
    assert_eq!(completed["prompt_tokens"], 11);
    assert!(completed["cost_micros"].as_u64().is_some());
    assert!(completed["added_ms"].as_f64().is_some());
    running.assert_no_leak(&seen);
}

#[test]
fn streams_pass_through_chunk_by_chunk_and_an_abandoned_one_releases_its_reservation() {
    let fake = FakeInference::start();
    fake.set_stream_pause(Duration::from_millis(150));
    let env = write_env(&policy(1_000_000, ""));
    let running = Running::start(&env, &fake.url, &[]);
    let chat = running.url("/v1/chat/completions");
    runtime().block_on(async {
        let client = client();
        let body = r#"{"model":"mistral-small-latest","stream":true,"max_tokens":6,"messages":[{"role":"user","content":"hi"}]}"#;
        let started = Instant::now();
        let mut response = client.post(&chat)
            .header("authorization", format!("Bearer {}", gateway_key("bobkey")))
            .body(body).send().await.unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["content-type"], "text/event-stream");
        let mut arrivals = Vec::new();
        let mut text = String::new();
        while let Some(chunk) = response.chunk().await.unwrap() {
            arrivals.push(started.elapsed());
            text.push_str(std::str::from_utf8(&chunk).unwrap());
        }
        // Six chunks 150 ms apart: the first arrives long before the last.
        assert!(arrivals.len() >= 4, "{arrivals:?}");
        assert!(arrivals[arrivals.len() - 1] - arrivals[0] >= Duration::from_millis(600), "{arrivals:?}");
        assert_eq!(text.matches("data: ").count(), 7);
        assert!(text.ends_with("data: [DONE]\n\n"));

        // A caller that goes away mid-stream: the answer is read on to its end upstream
        // (Mistral bills what it generates), then its reservation is settled.
        fake.set_stream_pause(Duration::from_millis(100));
        let mut response = client.post(&chat)
            .header("authorization", format!("Bearer {}", gateway_key("bobkey")))
            .body(body.replace("\"max_tokens\":6", "\"max_tokens\":20")).send().await.unwrap();
        assert!(response.chunk().await.unwrap().is_some());
        assert_eq!(metric(&client, &running, "tramontane_gateway_reservations_open").await, Some(1.0));
        drop(response);
        wait_for_metric(&client, &running, "tramontane_gateway_reservations_open", 0.0).await;

        // A stream the upstream cuts off: the caller sees it end, nothing stays open.
        // (A pause, so the fake sends its headers before it breaks off.)
        fake.set_stream_pause(Duration::from_millis(50));
        fake.fail_next("/v1/chat", InferenceFault::CutStream { after_chunks: 2 });
        let response = client.post(&chat)
            .header("authorization", format!("Bearer {}", gateway_key("bobkey")))
            .body(body).send().await.unwrap();
        assert_eq!(response.status(), 200);
        assert!(response.text().await.is_err(), "a cut stream is not a complete one");
        wait_for_metric(&client, &running, "tramontane_gateway_reservations_open", 0.0).await;
    });
    let deadline = Instant::now() + Duration::from_secs(5);
    while !running
        .audit_lines()
        .iter()
        .any(|l| l["reason"] == "client_disconnected")
    {
        assert!(
            Instant::now() < deadline,
            "no audit line for the disconnect"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let audit = running.audit_lines();
    let gone = audit
        .iter()
        .find(|l| l["reason"] == "client_disconnected")
        .unwrap();
    // Read to its end upstream once the caller left, and settled from its usage.
    assert_eq!(gone["completion_tokens"], 20, "{gone}");
    assert!(gone.get("charged_reservation").is_none(), "{gone}");
    let complete = audit.iter().find(|l| l["reason"] == "completed").unwrap();
    assert_eq!(complete["completion_tokens"], 6);
    assert_eq!(complete["stream"], true);
    running.assert_no_leak(&[]);
}

#[test]
fn a_budget_race_admits_no_more_worst_cases_than_the_budget_holds() {
    use tramontane_gateway::request::{Endpoint, InferenceRequest};
    let body = r#"{"model":"mistral-small-latest","messages":[{"role":"user","content":"race"}],"max_tokens":1000}"#;
    let estimate = InferenceRequest::parse(Endpoint::Chat, body.as_bytes())
        .unwrap()
        .prompt_estimate;
    let worst = estimate + 1000;
    // Room for 100 worst cases and half of another.
    let budget = 100 * worst + worst / 2;
    let fake = FakeInference::start();
    // Every admitted request holds its reservation while the 500 arrive.
    fake.set_delay(Duration::from_millis(2500));
    let env = write_env(&policy(budget, ""));
    let running = Running::start(&env, &fake.url, &[]);
    let chat = running.url("/v1/chat/completions");
    let key = gateway_key("racekey");
    let (admitted, refused) = runtime().block_on(async {
        tramontane::tls::install_default_provider();
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .pool_max_idle_per_host(600)
            .build()
            .unwrap();
        let requests: Vec<_> = (0..500)
            .map(|_| {
                let client = client.clone();
                let chat = chat.clone();
                let key = key.clone();
                tokio::spawn(async move { post(&client, &chat, Some(&key), body).await })
            })
            .collect();
        let mut admitted = 0;
        let mut refused = 0;
        for request in requests {
            let answer = request.await.unwrap();
            match answer.status {
                200 => admitted += 1,
                429 => {
                    answer.refusal(429, "token_budget_exhausted");
                    refused += 1;
                }
                other => panic!("unexpected {other}: {}", answer.body),
            }
        }
        wait_for_metric(
            &client,
            &running,
            "tramontane_gateway_reservations_open",
            0.0,
        )
        .await;
        (admitted, refused)
    });
    assert!(
        admitted <= 100,
        "{admitted} admitted against a budget of 100 worst cases"
    );
    assert_eq!(admitted, 100, "every worst case that fits is admitted");
    assert_eq!(refused, 400);
    assert_eq!(fake.inference_requests().len(), 100);
}

#[test]
fn hot_reload_revokes_a_key_within_a_second_and_a_bad_policy_keeps_the_old_one() {
    let fake = FakeInference::start();
    let env = write_env(&policy(1_000_000, ""));
    let running = Running::start(&env, &fake.url, &[]);
    let chat = running.url("/v1/chat/completions");
    let bob = gateway_key("bobkey");
    runtime().block_on(async {
        let client = client();
        assert_eq!(post(&client, &chat, Some(&bob), CHAT).await.status, 200);

        // A policy that does not validate: the running one stays.
        env.write("policies/org.yaml", "version: 1\nmembers: [not, a, map]\n");
        let deadline = Instant::now() + Duration::from_secs(5);
        while !running.logs().contains("policy reload rejected") {
            assert!(Instant::now() < deadline, "the bad policy was not noticed");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(post(&client, &chat, Some(&bob), CHAT).await.status, 200);

        // Bob's entry removed: his key stops working within a second.
        let without_bob: String = policy(1_000_000, "")
            .lines()
            .filter(|line| !line.contains("bobkey:"))
            .map(|line| format!("{line}\n"))
            .collect();
        env.write("policies/org.yaml", without_bob);
        let revoked_at = Instant::now();
        loop {
            let answer = post(&client, &chat, Some(&bob), CHAT).await;
            if answer.status == 401 {
                answer.refusal(401, "unknown_key");
                break;
            }
            assert!(
                revoked_at.elapsed() < Duration::from_secs(1),
                "the key still worked after a second"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        // The CI key is untouched.
        let answer = post(
            &client,
            &chat,
            Some(&gateway_key("cikey")),
            r#"{"model":"codestral-latest","messages":[]}"#,
        )
        .await;
        assert_eq!(answer.status, 200);
    });
    assert!(running.logs().contains("policy reloaded"));
    running.assert_no_leak(&[]);
}

#[test]
fn upstream_failures_are_502_and_504_and_release_their_reservations() {
    let fake = FakeInference::start();
    let env = write_env(&policy(1_000_000, ""));
    let running = Running::start(
        &env,
        &fake.url,
        &["--upstream-timeout", "1s", "--stream-idle-timeout", "1s"],
    );
    let chat = running.url("/v1/chat/completions");
    let bob = gateway_key("bobkey");
    runtime().block_on(async {
        let client = client();
        fake.fail_next("/v1/chat", InferenceFault::Stall(Duration::from_secs(3)));
        post(&client, &chat, Some(&bob), CHAT)
            .await
            .refusal(504, "upstream_timeout");
        // A stream that goes silent is cut after the idle timeout.
        fake.fail_next("/v1/chat", InferenceFault::HangStream { after_chunks: 1 });
        let response = client
            .post(&chat)
            .header("authorization", format!("Bearer {bob}"))
            .body(r#"{"model":"mistral-small-latest","stream":true,"messages":[]}"#)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        assert!(response.text().await.is_err());
        wait_for_metric(
            &client,
            &running,
            "tramontane_gateway_reservations_open",
            0.0,
        )
        .await;
    });
    drop(running);
    drop(fake);

    // Nothing listening upstream.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let running = Running::start(&env, &url, &[]);
    runtime().block_on(async {
        let client = client();
        post(
            &client,
            &running.url("/v1/chat/completions"),
            Some(&bob),
            CHAT,
        )
        .await
        .refusal(502, "upstream_unreachable");
        wait_for_metric(
            &client,
            &running,
            "tramontane_gateway_reservations_open",
            0.0,
        )
        .await;
    });
    running.assert_no_leak(&[]);
}

#[test]
fn sigterm_lets_a_stream_in_flight_finish() {
    let fake = FakeInference::start();
    fake.set_stream_pause(Duration::from_millis(100));
    let env = write_env(&policy(1_000_000, ""));
    let mut running = Running::start(&env, &fake.url, &[]);
    let chat = running.url("/v1/chat/completions");
    let text =
        runtime().block_on(async {
            let client = client();
            let mut response = client.post(&chat)
            .header("authorization", format!("Bearer {}", gateway_key("bobkey")))
            .body(r#"{"model":"mistral-small-latest","stream":true,"max_tokens":10,"messages":[]}"#)
            .send().await.unwrap();
            let mut text =
                String::from_utf8(response.chunk().await.unwrap().unwrap().to_vec()).unwrap();
            running.terminate();
            while let Some(chunk) = response.chunk().await.unwrap() {
                text.push_str(std::str::from_utf8(&chunk).unwrap());
            }
            text
        });
    assert!(text.ends_with("data: [DONE]\n\n"), "{text}");
    assert_eq!(running.wait(Duration::from_secs(10)), Some(0));
    assert!(running.logs().contains("every request finished"));
}

#[test]
fn sigterm_waits_for_an_abandoned_stream_to_be_read_settled_and_audited() {
    let fake = FakeInference::start();
    fake.set_stream_pause(Duration::from_millis(150));
    let env = write_env(&policy(1_000_000, ""));
    let mut running = Running::start(&env, &fake.url, &[]);
    let chat = running.url("/v1/chat/completions");
    runtime().block_on(async {
        let client = client();
        let mut response = client
            .post(&chat)
            .header("authorization", format!("Bearer {}", gateway_key("bobkey")))
            .body(r#"{"model":"mistral-small-latest","stream":true,"max_tokens":20,"messages":[]}"#)
            .send()
            .await
            .unwrap();
        assert!(response.chunk().await.unwrap().is_some());
    });
    // The caller is gone and no request is in flight, but the answer is still being read
    // upstream for its usage (about 3 s more): shutdown waits for it, its settle and its
    // audit line.
    running.terminate();
    assert_eq!(running.wait(Duration::from_secs(20)), Some(0));
    assert!(
        running.logs().contains("background tasks drained"),
        "{}",
        running.logs()
    );
    let gone = running.audit_line(|line| line["reason"] == "client_disconnected");
    assert_eq!(gone["completion_tokens"], 20, "{gone}");
    assert!(gone.get("charged_reservation").is_none(), "{gone}");
}

#[test]
fn the_sandbox_answers_chat_streams_embeddings_and_models_without_an_account() {
    let env = write_env(&policy(1_000_000, ""));
    let running = Running::start(&env, "sandbox", &[]);
    let bob = gateway_key("bobkey");
    runtime().block_on(async {
        let client = client();
        let answer = post(
            &client,
            &running.url("/v1/chat/completions"),
            Some(&bob),
            CHAT,
        )
        .await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        let first = answer.json();
        assert_eq!(
            post(
                &client,
                &running.url("/v1/chat/completions"),
                Some(&bob),
                CHAT
            )
            .await
            .json(),
            first,
            "the sandbox is deterministic"
        );
        let stream = post(
            &client,
            &running.url("/v1/chat/completions"),
            Some(&bob),
            &CHAT.replace("{\"model\"", "{\"stream\":true,\"model\""),
        )
        .await;
        assert!(stream.body.ends_with("data: [DONE]\n\n"));
        assert!(stream.body.contains("\"usage\""));
        let embed = post(
            &client,
            &running.url("/v1/embeddings"),
            Some(&bob),
            r#"{"model":"mistral-embed","input":"x"}"#,
        )
        .await;
        assert_eq!(embed.status, 200, "{}", embed.body);
        let models = get(&client, &running.url("/v1/models"), Some(&bob)).await;
        assert_eq!(models.json()["data"].as_array().unwrap().len(), 4);
        assert_eq!(
            get(&client, &running.url("/healthz"), None).await.status,
            200
        );
        assert_eq!(
            get(&client, &running.admin_url("/readyz"), None)
                .await
                .status,
            200
        );
    });
}

#[test]
fn the_gateway_refuses_to_start_on_a_bad_policy_or_without_upstream_keys() {
    let env = write_env("version: 1\nmembers: [broken]\n");
    let run = env.run(&[
        "gateway",
        "serve",
        "--upstream",
        "sandbox",
        "--listen",
        "127.0.0.1:0",
        "--admin-listen",
        "off",
    ]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("error: the policies in `policies` are not valid"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("help: "), "{}", run.stderr);

    let env = write_env(&policy(1, ""));
    let run = env.run(&[
        "gateway",
        "serve",
        "--upstream",
        "https://api.mistral.ai",
        "--listen",
        "127.0.0.1:0",
        "--admin-listen",
        "off",
    ]);
    assert_eq!(run.code, 1);
    assert!(
        run.stderr.contains("needs --upstream-keys"),
        "{}",
        run.stderr
    );
    let run = env.run(&[
        "gateway",
        "serve",
        "--upstream",
        "http://api.mistral.ai",
        "--upstream-keys",
        "upstream-keys",
        "--listen",
        "127.0.0.1:0",
        "--admin-listen",
        "off",
    ]);
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("plain http"), "{}", run.stderr);
}

/// The official SDK pinned for the end-to-end test.
const MISTRALAI_SDK: &str = "mistralai==3.7.0";

/// Drives the gateway with the official `mistralai` SDK, pointed at it by `server_url`
/// alone; prints what it saw as JSON.
const SDK_SCRIPT: &str = r#"
import json, sys
try:
    from mistralai import Mistral
except ImportError:
    from mistralai.client import Mistral

base, member_key, ci_key = sys.argv[1], sys.argv[2], sys.argv[3]
client = Mistral(api_key=member_key, server_url=base)
hello = [{"role": "user", "content": "hello"}]
out = {}
answer = client.chat.complete(model="mistral-small-latest", messages=hello, max_tokens=5)
out["chat"] = {"model": answer.model, "completion_tokens": answer.usage.completion_tokens}
pieces, total = [], None
for event in client.chat.stream(model="mistral-small-latest", messages=hello, max_tokens=4):
    if event.data.choices:
        pieces.append(event.data.choices[0].delta.content)
    if event.data.usage:
        total = event.data.usage.total_tokens
out["stream"] = {"chunks": len(pieces), "total_tokens": total}
out["embeddings"] = len(client.embeddings.create(model="mistral-embed", inputs=["a", "b"]).data)
out["models"] = sorted(model.id for model in client.models.list().data)

def failure(call):
    try:
        call()
        return None
    except Exception as error:
        return {"status": getattr(error, "status_code", None), "body": str(getattr(error, "body", error))}

out["forbidden"] = failure(lambda: client.chat.complete(model="mistral-large-latest", messages=hello))
ci = Mistral(api_key=ci_key, server_url=base)
code = [{"role": "user", "content": "fn"}]
out["rate"] = [failure(lambda: ci.chat.complete(model="codestral-latest", messages=code)) for _ in range(4)]
print(json.dumps(out))
"#;

/// The Python with the SDK: the one `scripts/test` prepared (`TRAMONTANE_TEST_PYTHON`), or a
/// virtual environment made once under the target directory.
pub(crate) fn sdk_python() -> std::path::PathBuf {
    if let Some(python) = std::env::var_os("TRAMONTANE_TEST_PYTHON") {
        return python.into();
    }
    let venv = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("mistralai-sdk-venv");
    let python = venv.join("bin/python");
    let marker = venv.join(MISTRALAI_SDK);
    if !marker.exists() {
        let made = std::process::Command::new("python3")
            .args(["-m", "venv"])
            .arg(&venv)
            .status()
            .expect("python3 runs (the SDK test needs Python 3 with venv)");
        assert!(made.success(), "python3 -m venv failed");
        let installed = std::process::Command::new(venv.join("bin/pip"))
            .args([
                "install",
                "--quiet",
                "--disable-pip-version-check",
                MISTRALAI_SDK,
            ])
            .status()
            .expect("pip runs");
        assert!(installed.success(), "pip could not install {MISTRALAI_SDK}");
        std::fs::write(&marker, "").unwrap();
    }
    python
}

#[test]
fn the_official_python_sdk_and_curl_work_against_the_gateway() {
    let fake = FakeInference::start();
    let env = write_env(&policy(1_000_000, ""));
    let running = Running::start(&env, &fake.url, &[]);
    env.write("sdk.py", SDK_SCRIPT);
    let output = std::process::Command::new(sdk_python())
        .arg(env.path().join("sdk.py"))
        .args([&running.base, &gateway_key("bobkey"), &gateway_key("cikey")])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let seen: Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(
        seen["chat"],
        json!({"model": "mistral-small-2506", "completion_tokens": 5})
    );
    assert_eq!(seen["stream"], json!({"chunks": 4, "total_tokens": 15}));
    assert_eq!(seen["embeddings"], 1);
    assert_eq!(
        seen["models"],
        json!([
            "mistral-embed",
            "mistral-small-2506",
            "mistral-small-latest"
        ])
    );
    assert_eq!(seen["forbidden"]["status"], 403);
    assert!(
        seen["forbidden"]["body"]
            .as_str()
            .unwrap()
            .contains("model_not_allowed")
    );
    let rate = seen["rate"].as_array().unwrap();
    assert!(rate[..3].iter().all(Value::is_null), "{rate:?}");
    assert_eq!(rate[3]["status"], 429);

    // curl: a stream arrives as server-sent events, a refusal as Mistral's error.
    let curl = |body: &str| {
        let output = std::process::Command::new("curl")
            .args(["-sS", "-N", "-w", "\n%{http_code}", "-H"])
            .arg(format!("Authorization: Bearer {}", gateway_key("bobkey")))
            .args(["-H", "content-type: application/json", "-d", body])
            .arg(running.url("/v1/chat/completions"))
            .output()
            .expect("curl runs");
        String::from_utf8(output.stdout).unwrap()
    };
    let streamed = curl(
        r#"{"model":"mistral-small-latest","stream":true,"max_tokens":3,"messages":[{"role":"user","content":"hi"}]}"#,
    );
    assert!(streamed.ends_with("data: [DONE]\n\n\n200"), "{streamed}");
    let refused = curl(r#"{"model":"mistral-large-latest","messages":[]}"#);
    assert!(
        refused.ends_with("\n403") && refused.contains("\"object\":\"error\""),
        "{refused}"
    );
    running.assert_no_leak(&[stdout, streamed, refused]);
}

/// Sends raw bytes on a fresh connection and reads what comes back until it closes.
fn raw_exchange(address: &str, parts: &[(&[u8], Duration)]) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    for (bytes, pause) in parts {
        if stream.write_all(bytes).is_err() {
            break;
        }
        std::thread::sleep(*pause);
    }
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer).into_owned()
}

#[test]
fn slow_and_oversized_clients_are_cut_off_without_reaching_the_upstream() {
    let fake = FakeInference::start();
    let env = write_env(&policy(1_000_000, ""));
    let running = Running::start(
        &env,
        &fake.url,
        &["--client-timeout", "1s", "--max-body-bytes", "1000"],
    );
    let address = running.base.trim_start_matches("http://").to_owned();
    let auth = format!("Authorization: Bearer {}\r\n", gateway_key("bobkey"));
    let started = Instant::now();

    // Headers that never end: the connection is closed after the client timeout.
    let answer = raw_exchange(
        &address,
        &[(
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n",
            Duration::from_secs(3),
        )],
    );
    assert!(!answer.contains("200 OK"), "{answer}");

    // A body that stops half-way: 408.
    let head = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n{auth}content-type: application/json\r\ncontent-length: 100\r\n\r\n"
    );
    let answer = raw_exchange(
        &address,
        &[
            (head.as_bytes(), Duration::ZERO),
            (b"{\"model\":", Duration::from_secs(2)),
        ],
    );
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("\"code\":\"body_timeout\""), "{answer}");

    // A chunked body that grows past the limit, with no length announced: 413.
    let head = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n{auth}transfer-encoding: chunked\r\nconnection: close\r\n\r\n"
    );
    let chunk = format!("{:x}\r\n{}\r\n", 600, "x".repeat(600));
    let answer = raw_exchange(
        &address,
        &[
            (head.as_bytes(), Duration::ZERO),
            (chunk.as_bytes(), Duration::ZERO),
            (chunk.as_bytes(), Duration::ZERO),
            (b"0\r\n\r\n", Duration::ZERO),
        ],
    );
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(started.elapsed() < Duration::from_secs(15));
    assert!(
        fake.inference_requests().is_empty(),
        "nothing was forwarded"
    );
    running.assert_no_leak(&[]);
}
