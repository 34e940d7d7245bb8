//! `tramontane gateway serve` on hostile or unusual input, over real sockets: paths that
//! would reach another upstream path than the one checked, silent and idle connections,
//! more connections than the cap, a broken upstream key file during a revocation, huge
//! fields in audit lines, an upstream that echoes its key, compressed bodies, the admin
//! listener, and a Redis that wants a password.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use tramontane_testkit::fake_inference::{FakeInference, InferenceFault};
use tramontane_testkit::redis_server::RedisServer;

use super::test_gateway::{
    CHAT, DEV_UPSTREAM, Running, client, gateway_key, get, policy, post, runtime, write_env,
};

/// Sends `request` on a fresh connection and reads until the gateway closes it.
fn exchange(address: &str, request: &[u8]) -> String {
    let mut stream = TcpStream::connect(address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream.write_all(request).unwrap();
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer).into_owned()
}

/// How long the gateway takes to close a connection on which the test sends `bytes` and
/// then nothing; panics if it is still open after ten seconds.
fn closed_after(address: &str, bytes: &[u8]) -> (Duration, Vec<u8>) {
    let mut stream = TcpStream::connect(address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let started = Instant::now();
    stream.write_all(bytes).unwrap();
    let mut seen = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        match stream.read(&mut buffer) {
            Ok(0) => return (started.elapsed(), seen),
            Ok(read) => seen.extend_from_slice(&buffer[..read]),
            Err(error) if error.kind() == std::io::ErrorKind::ConnectionReset => {
                return (started.elapsed(), seen);
            }
            Err(error) => panic!("still open after {:?}: {error}", started.elapsed()),
        }
    }
}

fn address(running: &Running) -> String {
    running
        .url("")
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned()
}

#[test]
fn a_model_path_reaches_the_upstream_only_as_the_one_segment_checked() {
    let fake = FakeInference::start();
    let env = write_env(&policy(1_000_000, ""));
    let running = Running::start(&env, &fake.url, &[]);
    let address = address(&running);
    // The race workspace's key may use every model ("*").
    let auth = format!("Authorization: Bearer {}", gateway_key("racekey"));
    let ask = |path: &str| {
        exchange(
            &address,
            format!("GET {path} HTTP/1.1\r\nHost: x\r\n{auth}\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        )
    };
    let card = ask("/v1/models/mistral-embed?then=../../files");
    assert!(card.starts_with("HTTP/1.1 200"), "{card}");
    for path in [
        "/v1/models/../files",
        "/v1/models/%2e%2e/batch/jobs",
        "/v1/models/%2E%2E/batch/jobs",
        "/v1/models/x/../../files/file-abc/content",
        "/v1/models/x%2f..%2f..%2ffiles",
        "/v1/models/..%5c..%5cfiles",
        "/v1/models/..\\..\\files",
        "/v1/models/%252e%252e/files",
    ] {
        let answer = ask(path);
        assert!(answer.starts_with("HTTP/1.1 400"), "{path}: {answer}");
        assert!(
            answer.contains("\"code\":\"invalid_path\""),
            "{path}: {answer}"
        );
    }
    // A model id of two segments is no model card: not served, not forwarded.
    let answer = ask("/v1/models/x/files");
    assert!(answer.starts_with("HTTP/1.1 404"), "{answer}");
    let forwarded: Vec<String> = fake
        .received()
        .into_iter()
        .map(|request| request.path)
        .filter(|path| path != "/v1/models")
        .collect();
    assert_eq!(forwarded, vec!["/v1/models/mistral-embed".to_owned()]);
    running.assert_no_leak(&[]);
}

#[test]
fn silent_and_idle_connections_are_closed_and_connections_past_the_cap_wait() {
    let fake = FakeInference::start();
    let env = write_env(&policy(1_000_000, ""));
    let running = Running::start(
        &env,
        &fake.url,
        &[
            "--client-timeout",
            "1s",
            "--idle-timeout",
            "1s",
            "--max-connections",
            "2",
        ],
    );
    let address = address(&running);

    // A socket that never says anything is closed after the client timeout.
    let (took, _) = closed_after(&address, b"");
    assert!(
        took < Duration::from_secs(4),
        "silent socket open for {took:?}"
    );

    // HTTP/1 keep-alive: after its answer, an idle connection is closed after the idle
    // timeout.
    let (took, seen) = closed_after(&address, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(String::from_utf8_lossy(&seen).starts_with("HTTP/1.1 200"));
    assert!(
        took < Duration::from_secs(4),
        "idle HTTP/1 open for {took:?}"
    );

    // HTTP/2 with prior knowledge: the preface and empty settings, then silence.
    let mut preface = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    preface.extend_from_slice(&[0, 0, 0, 4, 0, 0, 0, 0, 0]);
    let (took, seen) = closed_after(&address, &preface);
    assert!(!seen.is_empty(), "the gateway spoke HTTP/2");
    assert!(
        took < Duration::from_secs(5),
        "idle HTTP/2 open for {took:?}"
    );

    // Two silent sockets take the whole cap: a third connection waits to be accepted, and
    // is answered once the silent ones are closed.
    let holders: Vec<TcpStream> = (0..2)
        .map(|_| TcpStream::connect(&address).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(200));
    let started = Instant::now();
    let answer = exchange(
        &address,
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "the third connection was not held back by the cap"
    );
    drop(holders);
    assert!(running.logs().contains("connection cap reached"));
}

#[test]
fn a_bad_upstream_key_file_disables_only_its_keys_and_a_revocation_still_applies() {
    let fake = FakeInference::start();
    let env = write_env(&policy(1_000_000, ""));
    let running = Running::start(&env, &fake.url, &[]);
    let chat = running.url("/v1/chat/completions");
    let (bob, ci, race) = (
        gateway_key("bobkey"),
        gateway_key("cikey"),
        gateway_key("racekey"),
    );
    let codestral = r#"{"model":"codestral-latest","messages":[]}"#;
    runtime().block_on(async {
        let client = client();
        assert_eq!(post(&client, &chat, Some(&ci), codestral).await.status, 200);

        // In one change: the CI key's entry is removed, and the dev workspace's upstream
        // key file (what member keys forward with) is left empty.
        let without_ci: String = policy(1_000_000, "")
            .lines()
            .filter(|line| !line.contains("cikey:"))
            .map(|line| format!("{line}\n"))
            .collect();
        env.write("upstream-keys/workspace.dev.key.gw", "");
        env.write("policies/org.yaml", without_ci);
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let answer = post(&client, &chat, Some(&ci), codestral).await;
            if answer.status == 401 {
                answer.refusal(401, "unknown_key");
                break;
            }
            assert!(Instant::now() < deadline, "the revoked key still works");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // Bob forwards with the broken file's key: 503, until it is fixed.
        post(&client, &chat, Some(&bob), CHAT)
            .await
            .refusal(503, "no_upstream_key");
        // A key that needs another file works on.
        assert_eq!(post(&client, &chat, Some(&race), CHAT).await.status, 200);

        env.write("upstream-keys/workspace.dev.key.gw", DEV_UPSTREAM);
        let deadline = Instant::now() + Duration::from_secs(5);
        while post(&client, &chat, Some(&bob), CHAT).await.status != 200 {
            assert!(Instant::now() < deadline, "the fixed key file was not read");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    let logs = running.logs();
    assert!(logs.contains("an upstream key file is unusable"), "{logs}");
    assert!(logs.contains("workspace.dev.key.gw` is empty"), "{logs}");
    assert!(!logs.contains("policy reload rejected"), "{logs}");
    running.assert_no_leak(&[]);
}

#[test]
fn audit_lines_stay_small_whatever_the_request_names() {
    let fake = FakeInference::start();
    let env = write_env(&policy(1_000_000, ""));
    let running = Running::start(&env, &fake.url, &[]);
    let address = address(&running);
    let long = "a".repeat(60_000);
    // No key at all, a 60 KB path.
    let answer = exchange(
        &address,
        format!("GET /v1/{long} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
    );
    assert!(answer.starts_with("HTTP/1.1 401"), "{}", &answer[..200]);
    assert!(answer.len() < 2_000, "the refusal repeats the whole path");
    // A key, and a 60 KB model name.
    runtime().block_on(async {
        let body = format!(r#"{{"model":"{long}","messages":[]}}"#);
        let chat = running.url("/v1/chat/completions");
        post(&client(), &chat, Some(&gateway_key("bobkey")), &body)
            .await
            .refusal(403, "model_not_allowed");
    });
    let unauthenticated = running.audit_line(|line| line["reason"] == "missing_key");
    let refused = running.audit_line(|line| line["reason"] == "model_not_allowed");
    for line in [&unauthenticated, &refused] {
        assert!(
            line.to_string().len() < 1_500,
            "{} bytes",
            line.to_string().len()
        );
    }
    assert!(
        unauthenticated["path"]
            .as_str()
            .unwrap()
            .ends_with("bytes cut]")
    );
    assert!(refused["model_asked"].as_str().unwrap().starts_with("aaaa"));
}

#[test]
fn an_upstream_error_never_hands_the_caller_the_upstream_key() {
    let fake = FakeInference::start();
    let env = write_env(&policy(1_000_000, ""));
    let running = Running::start(&env, &fake.url, &[]);
    let chat = running.url("/v1/chat/completions");
    runtime().block_on(async {
        let client = client();
        fake.fail_next("/v1/chat", InferenceFault::EchoKey { status: 401 });
        let response = client
            .post(&chat)
            .header("authorization", format!("Bearer {}", gateway_key("bobkey")))
            .header("content-type", "application/json")
            .header("accept-encoding", "gzip")
            .body(CHAT)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 401);
        let length = response.content_length();
        let body = response.text().await.unwrap();
        assert!(!body.contains(DEV_UPSTREAM), "{body}");
        assert!(body.contains("Invalid credentials `Bearer *"), "{body}");
        if let Some(length) = length {
            assert_eq!(length as usize, body.len(), "the length stays true");
        }
    });
    // The gateway reads answers as they come back: it never asks for a compressed one.
    let sent = fake.inference_requests();
    assert!(
        sent.iter().all(|request| !request
            .headers
            .iter()
            .any(|(name, _)| name == "accept-encoding")),
        "{sent:?}"
    );
}

#[test]
fn a_compressed_request_body_is_refused_with_415() {
    let fake = FakeInference::start();
    let env = write_env(&policy(1_000_000, ""));
    let running = Running::start(&env, &fake.url, &[]);
    runtime().block_on(async {
        let response = client()
            .post(running.url("/v1/chat/completions"))
            .header("authorization", format!("Bearer {}", gateway_key("bobkey")))
            .header("content-type", "application/json")
            .header("content-encoding", "gzip")
            .body(b"\x1f\x8b\x08\x00not really gzip".to_vec())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 415);
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["object"], "error");
        assert_eq!(body["code"], "unsupported_content_encoding");
        assert!(body["message"].as_str().unwrap().contains("gzip"));
    });
    assert!(
        fake.inference_requests().is_empty(),
        "nothing was forwarded"
    );
}

#[test]
fn metrics_and_readiness_are_on_the_admin_listener_only() {
    let fake = FakeInference::start();
    let env = write_env(&policy(1_000_000, ""));
    let running = Running::start(&env, &fake.url, &[]);
    runtime().block_on(async {
        let client = client();
        let bob = gateway_key("bobkey");
        // The callers' listener: liveness for load balancers, nothing else without a key.
        assert_eq!(
            get(&client, &running.url("/healthz"), None).await.status,
            200
        );
        for path in ["/metrics", "/readyz"] {
            get(&client, &running.url(path), None)
                .await
                .refusal(401, "missing_key");
            get(&client, &running.url(path), Some(&bob))
                .await
                .refusal(404, "path_not_found");
        }
        // The admin listener serves them, and no inference path.
        let metrics = get(&client, &running.admin_url("/metrics"), None).await;
        assert_eq!(metrics.status, 200);
        assert!(metrics.body.contains("tramontane_gateway_keys"));
        assert_eq!(
            get(&client, &running.admin_url("/readyz"), None)
                .await
                .status,
            200
        );
        assert_eq!(
            get(&client, &running.admin_url("/healthz"), None)
                .await
                .status,
            200
        );
        let chat = post(
            &client,
            &running.admin_url("/v1/chat/completions"),
            Some(&bob),
            CHAT,
        )
        .await;
        assert_eq!(chat.status, 404);
    });
    assert!(fake.inference_requests().is_empty());
}

#[test]
fn a_redis_that_wants_a_password_leaves_the_gateway_unready_and_says_so() {
    let redis = RedisServer::start();
    redis.command(&["CONFIG", "SET", "requirepass", "s3cret-redis"]);
    let fake = FakeInference::start();
    let env = write_env(&policy(1_000_000, ""));
    let running = Running::start(&env, &fake.url, &["--store", redis.url()]);
    runtime().block_on(async {
        let client = client();
        let ready = get(&client, &running.admin_url("/readyz"), None).await;
        assert_eq!(ready.status, 503, "{}", ready.body);
        assert!(ready.body.contains("wants a password"), "{}", ready.body);
        assert!(
            ready.body.contains("--store-password-file"),
            "{}",
            ready.body
        );
        post(
            &client,
            &running.url("/v1/chat/completions"),
            Some(&gateway_key("bobkey")),
            CHAT,
        )
        .await
        .refusal(503, "store_unavailable");
    });
    let deadline = Instant::now() + Duration::from_secs(5);
    while !running.logs().contains("--store-password-file") {
        assert!(
            Instant::now() < deadline,
            "the log does not say a password is needed: {}",
            running.logs()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!running.logs().contains("s3cret-redis"));
}
