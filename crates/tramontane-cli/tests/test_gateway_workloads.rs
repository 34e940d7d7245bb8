//! Workload identity through `tramontane gateway serve`: a token minted by a local OIDC
//! issuer (loopback, its own keys and JWKS) gets through with its workload's limits — models,
//! rate, largest request — beside a gateway key; every forged or stale token is refused in
//! Mistral's error shape and nothing reaches the upstream for it; the official SDK works with
//! the token as its `api_key`; no token shows in logs or audit lines.

use std::time::Duration;

use serde_json::{Value, json};
use tramontane_testkit::TestDir;
use tramontane_testkit::fake_inference::FakeInference;
use tramontane_testkit::fake_issuer::{FakeIssuer, KeyKind, Rotation, SUBJECT};

use super::test_gateway::{Running, client, digest, gateway_key, get, post, runtime, sdk_python};

const WORKLOAD_UPSTREAM: &str = "sk-upstream-workloads-Q4mZ8tR2w";

/// The organization: a `prod` workspace forwarding with its gateway key, the local issuer,
/// a batch workload held to one model, 3 requests a minute and 50 tokens a request, a
/// workload of another subject, and a gateway key beside them.
fn policy(issuer: &FakeIssuer, keys: &str) -> String {
    format!(
        r#"version: 1
members:
  ada@acme.example: {{ name: Ada Admin, roles: [organization_admin] }}
workspaces:
  prod:
    admin: ada@acme.example
    members: {{ ada@acme.example: [workspace_admin] }}
    models: [mistral-small-latest, codestral-latest]
    gateway: {{ upstream_key: gw }}
    keys:
      gw: {{ owner: ada@acme.example, secret: {{ file: secrets/gw.key }} }}
issuers:
  cluster:
    issuer: {iss}
    {keys}
    audiences: [tramontane]
    max_lifetime_minutes: 60
workloads:
  batch:
    issuer: cluster
    subject: {SUBJECT}
    claims: {{ kubernetes.io/namespace: team }}
    workspace: prod
    models: [mistral-small-latest]
    rpm: 3
    max_tokens_per_request: 50
  reports:
    issuer: cluster
    subject: system:serviceaccount:reports:writer
    workspace: prod
gateway_keys:
  adakey: {{ digest: "{ada}", holder: ada@acme.example, workspace: prod, expires: 2030-01-01 }}
"#,
        iss = issuer.issuer(),
        ada = digest("adakey"),
    )
}

fn start(fake: &FakeInference, issuer: &FakeIssuer, keys: &str) -> (TestDir, Running) {
    let env = TestDir::new();
    env.write("policies/org.yaml", policy(issuer, keys));
    env.write("upstream-keys/workspace.prod.key.gw", WORKLOAD_UPSTREAM);
    // A rotation is picked up within a second, not the default 30.
    let running = Running::start(&env, &fake.url, &["--issuer-keys-refresh", "1s"]);
    (env, running)
}

/// A token of the batch workload: the default subject, in namespace `team`.
fn batch_token(issuer: &FakeIssuer) -> tramontane_testkit::fake_issuer::TokenBuilder {
    issuer.token().claim(
        "kubernetes.io",
        json!({"namespace": "team", "serviceaccount": {"name": "app"}}),
    )
}

const CHAT: &str = r#"{"model":"mistral-small-latest","max_tokens":20,"messages":[{"role":"user","content":"hi"}]}"#;

fn chat(model: &str, max_tokens: u64) -> String {
    json!({"model": model, "max_tokens": max_tokens,
           "messages": [{"role": "user", "content": "hi"}]})
    .to_string()
}

#[test]
fn a_workload_token_gets_through_with_its_workloads_limits() {
    let fake = FakeInference::start();
    let issuer = FakeIssuer::start();
    let (_env, running) = start(&fake, &issuer, "discovery: true");
    let token = batch_token(&issuer).mint();
    let mut seen = Vec::new();
    runtime().block_on(async {
        let client = client();
        let url = running.url("/v1/chat/completions");
        let answer = post(&client, &url, Some(&token), CHAT).await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        // Its models: the workspace allows codestral, the workload does not.
        post(&client, &url, Some(&token), &chat("codestral-latest", 20))
            .await
            .refusal(403, "model_not_allowed");
        // Its largest request.
        post(
            &client,
            &url,
            Some(&token),
            &chat("mistral-small-latest", 51),
        )
        .await
        .refusal(400, "max_tokens_exceeded");
        // Its rate: 3 a minute, counted for the workload across its tokens.
        let another = batch_token(&issuer).mint();
        let answer = post(&client, &url, Some(&another), CHAT).await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        let answer = post(&client, &url, Some(&token), CHAT).await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        let limited = post(&client, &url, Some(&token), CHAT).await;
        limited.refusal(429, "rate_limited");
        assert!(
            limited.body.contains("workload:batch:requests:minute"),
            "{}",
            limited.body
        );
        seen.push(limited.body.clone());
        // Metrics count workloads apart from gateway keys, and refusals by their code.
        let metrics = get(&client, &running.admin_url("/metrics"), None)
            .await
            .body;
        assert!(
            metrics.contains("tramontane_gateway_workloads 2"),
            "{metrics}"
        );
        assert!(metrics.contains("tramontane_gateway_keys 1"), "{metrics}");
        assert!(
            metrics.contains("tramontane_gateway_issuer_keys_held{issuer=\"cluster\"} 1"),
            "{metrics}"
        );
        // A gateway key works beside tokens, with its own limits.
        let answer = post(
            &client,
            &url,
            Some(&gateway_key("adakey")),
            &chat("codestral-latest", 20),
        )
        .await;
        assert_eq!(answer.status, 200, "{}", answer.body);
    });
    // What reached the upstream: the four admitted requests, forwarded with the workspace's
    // key and never the token.
    let received = fake.inference_requests();
    assert_eq!(received.len(), 4);
    for request in &received {
        assert_eq!(
            request.authorization.as_deref(),
            Some(format!("Bearer {WORKLOAD_UPSTREAM}").as_str())
        );
    }
    // The audit line names the workload, its issuer, the subject and the token's id.
    let line =
        running.audit_line(|line| line["workload"] == "batch" && line["decision"] == "admitted");
    assert_eq!(line["issuer"], "cluster");
    assert_eq!(line["subject"], SUBJECT);
    assert!(
        line["token_id"]
            .as_str()
            .is_some_and(|id| id.starts_with("jti-"))
    );
    assert!(line.get("key_id").is_none());
    no_token_shown(&running, &[&token], &seen);
}

#[test]
fn forged_and_stale_tokens_are_refused_and_never_reach_the_upstream() {
    let fake = FakeInference::start();
    let mut issuer = FakeIssuer::builder()
        .keys(&[KeyKind::Rsa, KeyKind::P256])
        .start();
    let (_env, running) = start(&fake, &issuer, &format!("jwks_url: {}", issuer.jwks_url()));
    let now = jiff::Timestamp::now();
    let hour = Duration::from_secs(3600);
    let p256 = issuer.kid(KeyKind::P256);
    let cases: Vec<(&str, String, u16, &str)> = vec![
        (
            "alg none",
            batch_token(&issuer).unsigned().mint(),
            401,
            "token_algorithm_refused",
        ),
        (
            "HS256 keyed with the public key",
            batch_token(&issuer).hmac_with_public_key().mint(),
            401,
            "token_algorithm_refused",
        ),
        (
            "RS256 header on the P-256 key",
            batch_token(&issuer)
                .key(KeyKind::P256)
                .header("alg", "RS256")
                .mint(),
            401,
            "token_algorithm_refused",
        ),
        (
            "expired",
            batch_token(&issuer)
                .issued(now - Duration::from_secs(7200), Duration::from_secs(600))
                .mint(),
            401,
            "token_expired",
        ),
        (
            "not yet valid",
            batch_token(&issuer)
                .claim("nbf", (now + Duration::from_secs(600)).as_second())
                .mint(),
            401,
            "token_not_yet_valid",
        ),
        (
            "lives longer than the issuer allows",
            batch_token(&issuer).issued(now, 2 * hour).mint(),
            401,
            "token_lifetime_too_long",
        ),
        (
            "for another audience",
            batch_token(&issuer)
                .claim("aud", "https://elsewhere.example")
                .mint(),
            401,
            "token_audience_refused",
        ),
        (
            "from an issuer not trusted",
            batch_token(&issuer)
                .claim("iss", "https://evil.example")
                .mint(),
            401,
            "token_issuer_unknown",
        ),
        (
            "signed by a key the issuer never published",
            batch_token(&issuer)
                .kid_key(&p256)
                .header("kid", "made-up")
                .mint(),
            401,
            "token_key_unknown",
        ),
        (
            "of another workload's namespace",
            batch_token(&issuer)
                .claim("kubernetes.io", json!({"namespace": "other"}))
                .mint(),
            403,
            "token_no_workload",
        ),
        (
            "of a subject no workload has",
            issuer
                .token()
                .claim("sub", "system:serviceaccount:team:intruder")
                .mint(),
            403,
            "token_no_workload",
        ),
    ];
    let mut tokens = Vec::new();
    let mut seen = Vec::new();
    runtime().block_on(async {
        let client = client();
        let url = running.url("/v1/chat/completions");
        for (case, token, status, code) in &cases {
            let answer = post(&client, &url, Some(token), CHAT).await;
            assert_eq!(answer.status, *status, "{case}: {}", answer.body);
            answer.refusal(*status, code);
            seen.push(answer.body.clone());
            tokens.push(token.clone());
        }
        // A tampered payload under a real signature.
        let good = batch_token(&issuer).mint();
        let mut parts: Vec<String> = good.split('.').map(str::to_owned).collect();
        parts[1] = batch_token(&issuer)
            .claim("sub", "system:serviceaccount:reports:writer")
            .mint()
            .split('.')
            .nth(1)
            .unwrap()
            .to_owned();
        let tampered = parts.join(".");
        post(&client, &url, Some(&tampered), CHAT)
            .await
            .refusal(401, "token_signature_invalid");
        tokens.push(tampered);

        // A rotation: the issuer drops its RSA key for a new one. Once the refresh interval
        // has passed, a token of the new key gets in after one more read of the key set, and
        // a token of the dropped key is refused: the set read no longer has it.
        let old_kid = issuer.kid(KeyKind::Rsa);
        let new_kid = issuer.rotate(KeyKind::Rsa, Rotation::DropOld);
        tokio::time::sleep(Duration::from_millis(1200)).await;
        let fetches = issuer.jwks_fetches();
        let fresh = batch_token(&issuer).kid_key(&new_kid).mint();
        let answer = post(&client, &url, Some(&fresh), CHAT).await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        assert_eq!(
            issuer.jwks_fetches(),
            fetches + 1,
            "one read of the rotated key set"
        );
        let dropped = batch_token(&issuer).kid_key(&old_kid).mint();
        post(&client, &url, Some(&dropped), CHAT)
            .await
            .refusal(401, "token_key_unknown");
        // A burst of made-up kids reads the set at most once more in the interval.
        for _ in 0..5 {
            let forged = batch_token(&issuer)
                .kid_key(&new_kid)
                .header("kid", format!("x{}", rand_suffix()))
                .mint();
            post(&client, &url, Some(&forged), CHAT)
                .await
                .refusal(401, "token_key_unknown");
            tokens.push(forged);
        }
        assert!(
            issuer.jwks_fetches() <= fetches + 2,
            "{} reads",
            issuer.jwks_fetches() - fetches
        );
        tokens.push(fresh);
        tokens.push(dropped);

        // The issuer goes away: cached keys still verify; an unknown kid cannot be read and
        // is refused, and nothing is forwarded for it.
        issuer.stop();
        let cached = batch_token(&issuer).kid_key(&new_kid).mint();
        let answer = post(&client, &url, Some(&cached), CHAT).await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        tokens.push(cached);
    });
    // Only the two good tokens were forwarded.
    assert_eq!(fake.inference_requests().len(), 2);
    let refused = running.audit_line(|line| line["reason"] == "token_no_workload");
    assert_eq!(refused["issuer"], "cluster");
    assert_eq!(refused["decision"], "refused");
    let token_refs: Vec<&str> = tokens.iter().map(String::as_str).collect();
    no_token_shown(&running, &token_refs, &seen);
}

#[test]
fn an_issuer_that_never_answered_refuses_its_tokens_until_it_does() {
    let fake = FakeInference::start();
    let mut issuer = FakeIssuer::start();
    let token = batch_token(&issuer).mint();
    let policy_keys = format!("jwks_url: {}", issuer.jwks_url());
    issuer.stop();
    let (_env, running) = start(&fake, &issuer, &policy_keys);
    runtime().block_on(async {
        let client = client();
        let url = running.url("/v1/chat/completions");
        let answer = post(&client, &url, Some(&token), CHAT).await;
        answer.refusal(503, "token_issuer_unavailable");
        // A gateway key is not held up by an issuer.
        let answer = post(&client, &url, Some(&gateway_key("adakey")), CHAT).await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        let ready = client
            .get(running.admin_url("/readyz"))
            .send()
            .await
            .unwrap();
        assert_eq!(ready.status(), 200);
        let text = ready.text().await.unwrap();
        assert!(text.contains("no signing keys for cluster"), "{text}");
        let metrics = get(&client, &running.admin_url("/metrics"), None)
            .await
            .body;
        assert!(
            metrics.contains("tramontane_gateway_issuer_keys_held{issuer=\"cluster\"} 0"),
            "{metrics}"
        );
    });
    assert_eq!(fake.inference_requests().len(), 1);
    assert!(
        running
            .logs()
            .contains("issuers' signing keys cannot be read")
    );
}

#[test]
fn the_official_sdk_calls_the_gateway_with_a_token_as_its_api_key() {
    let fake = FakeInference::start();
    let issuer = FakeIssuer::start();
    let env_dir = TestDir::new();
    issuer.write_jwks(&env_dir.path().join("cluster-jwks.json"));
    env_dir.write(
        "policies/org.yaml",
        policy(&issuer, "jwks_file: cluster-jwks.json"),
    );
    env_dir.write("upstream-keys/workspace.prod.key.gw", WORKLOAD_UPSTREAM);
    // One worker thread: the gateway serves the same on a runtime of any size.
    let running = Running::start(&env_dir, &fake.url, &["--worker-threads", "1"]);
    let token = batch_token(&issuer).mint();
    env_dir.write("token", &token);
    env_dir.write(
        "sdk.py",
        r#"
import sys
from mistralai.client import Mistral

base, token_file = sys.argv[1], sys.argv[2]

def token():
    with open(token_file) as file:
        return file.read().strip()

client = Mistral(api_key=token, server_url=base)
answer = client.chat.complete(model="mistral-small-latest", max_tokens=5,
                              messages=[{"role": "user", "content": "hello"}])
print(answer.model)
try:
    client.chat.complete(model="codestral-latest", messages=[{"role": "user", "content": "hi"}])
except Exception as error:
    print("refused", getattr(error, "status_code", None))
"#,
    );
    let output = std::process::Command::new(sdk_python())
        .arg(env_dir.path().join("sdk.py"))
        .arg(running.url(""))
        .arg(env_dir.path().join("token"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("mistral-small"), "{stdout}");
    assert!(stdout.contains("refused 403"), "{stdout}");
    no_token_shown(&running, &[&token], &[stdout.into_owned()]);
}

fn rand_suffix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|since| since.subsec_nanos().into())
        .unwrap_or_default()
}

/// No token, nor its signature alone, shows in the gateway's logs, audit lines or answers.
fn no_token_shown(running: &Running, tokens: &[&str], answers: &[String]) {
    let everything = format!(
        "{}\n{}\n{}",
        running.logs(),
        running
            .audit_lines()
            .iter()
            .map(Value::to_string)
            .collect::<Vec<_>>()
            .join("\n"),
        answers.join("\n")
    );
    for token in tokens {
        let signature = token.rsplit('.').next().unwrap_or_default();
        assert!(!everything.contains(*token), "a token leaked");
        if signature.len() > 16 {
            assert!(
                !everything.contains(signature),
                "a token's signature leaked"
            );
        }
    }
    assert!(
        !everything.contains(WORKLOAD_UPSTREAM),
        "the upstream key leaked"
    );
}
