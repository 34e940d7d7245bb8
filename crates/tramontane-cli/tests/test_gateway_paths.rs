//! Paths a workspace opens (`gateway.paths`), through `tramontane gateway serve`: each for
//! the methods its entry names, the model and agent a body names checked whether it is JSON or
//! a multipart form, a body the gateway cannot read refused, and under a budget a call
//! reserved at its unit price (OCR pages, speech characters) or refused where the gateway
//! cannot price it — charged at least what the upstream billed.

use serde_json::json;
use tramontane_testkit::TestDir;
use tramontane_testkit::fake_inference::{Billing, FakeInference};

use super::test_gateway::{Running, client, digest, gateway_key, post, runtime};

const PATHS_UPSTREAM: &str = "sk-upstream-paths-V8nQ2xL5r";

fn policy(spend_guard: bool) -> String {
    let guard = if spend_guard {
        "spend_guard: { day: 5 }"
    } else {
        ""
    };
    format!(
        r#"version: 1
members:
  ada@acme.example: {{ name: Ada Admin, roles: [organization_admin] }}
workspaces:
  docs:
    admin: ada@acme.example
    members: {{ ada@acme.example: [workspace_admin] }}
    models: [mistral-small-latest, mistral-ocr-latest, voxtral-mini-tts-latest, voxtral-mini-latest]
    {guard}
    gateway:
      agents: [ag_docs]
      paths:
        - /v1/ocr
        - /v1/audio/speech
        - /v1/audio/transcriptions
        - /v1/conversations
        - {{ path: /v1/files/*, methods: [GET, DELETE], unmetered: true }}
    keys:
      svc: {{ owner: ada@acme.example, secret: {{ file: secrets/svc.key }} }}
gateway_keys:
  docskey: {{ digest: "{key}", holder: workspace.docs.key.svc, workspace: docs, expires: 2030-01-01 }}
"#,
        key = digest("docskey"),
    )
}

fn start(fake: &FakeInference, spend_guard: bool) -> (TestDir, Running) {
    let env = TestDir::new();
    env.write("policies/org.yaml", policy(spend_guard));
    env.write("upstream-keys/workspace.docs.key.svc", PATHS_UPSTREAM);
    let running = Running::start(&env, &fake.url, &[]);
    (env, running)
}

fn multipart(parts: &[(&str, &str)]) -> (String, String) {
    let mut body = String::new();
    for (name, value) in parts {
        let file = if *name == "file" {
            "; filename=\"a.wav\""
        } else {
            ""
        };
        body.push_str(&format!(
            "--b0undary\r\nContent-Disposition: form-data; name=\"{name}\"{file}\r\n\r\n{value}\r\n"
        ));
    }
    body.push_str("--b0undary--\r\n");
    ("multipart/form-data; boundary=b0undary".to_owned(), body)
}

#[test]
fn opened_paths_check_the_model_agent_and_method_whatever_the_body() {
    let fake = FakeInference::start();
    let (_env, running) = start(&fake, false);
    let key = gateway_key("docskey");
    runtime().block_on(async {
        let client = client();
        let send = |method: reqwest::Method, path: &str, content_type: &str, body: String| {
            client
                .request(method, running.url(path))
                .header("authorization", format!("Bearer {key}"))
                .header("content-type", content_type.to_owned())
                .body(body)
                .send()
        };
        // A model the workspace does not allow, named in a multipart form.
        let (form_type, form) =
            multipart(&[("file", "RIFF0000WAVE"), ("model", "mistral-large-latest")]);
        let answer = send(
            reqwest::Method::POST,
            "/v1/audio/transcriptions",
            &form_type,
            form,
        )
        .await
        .unwrap();
        assert_eq!(answer.status(), 403);
        assert!(answer.text().await.unwrap().contains("model_not_allowed"));
        // Two models in one form: which one the upstream reads is not the gateway's guess.
        let (form_type, form) = multipart(&[
            ("model", "voxtral-mini-latest"),
            ("model", "mistral-large-latest"),
        ]);
        let answer = send(
            reqwest::Method::POST,
            "/v1/audio/transcriptions",
            &form_type,
            form,
        )
        .await
        .unwrap();
        assert_eq!(answer.status(), 400);
        // A JSON body with `NaN`: no model can be read from it, so it is refused.
        let answer = send(
            reqwest::Method::POST,
            "/v1/ocr",
            "application/json",
            r#"{"model":"mistral-large-latest","pages":[0],"x":NaN}"#.to_owned(),
        )
        .await
        .unwrap();
        assert_eq!(answer.status(), 400);
        assert!(answer.text().await.unwrap().contains("unreadable_body"));
        // An agent the workspace does not list, on a path that takes one.
        let answer = send(
            reqwest::Method::POST,
            "/v1/conversations",
            "application/json",
            json!({"agent_id": "ag_other", "inputs": "hi"}).to_string(),
        )
        .await
        .unwrap();
        assert_eq!(answer.status(), 403);
        assert!(answer.text().await.unwrap().contains("agent_not_allowed"));
        // A path opened for POST only is not opened for GET or DELETE.
        for method in [reqwest::Method::GET, reqwest::Method::DELETE] {
            let answer = send(method, "/v1/ocr", "application/json", String::new())
                .await
                .unwrap();
            assert_eq!(answer.status(), 405);
        }
        // `/v1/files/*` for GET and DELETE, not POST.
        let answer = send(
            reqwest::Method::POST,
            "/v1/files/f-1",
            "application/json",
            "{}".into(),
        )
        .await
        .unwrap();
        assert_eq!(answer.status(), 405);
        assert!(
            fake.inference_requests().is_empty(),
            "a refused call went upstream"
        );
        // What the workspace allows goes through.
        let (form_type, form) =
            multipart(&[("file", "RIFF0000WAVE"), ("model", "voxtral-mini-latest")]);
        send(
            reqwest::Method::POST,
            "/v1/audio/transcriptions",
            &form_type,
            form,
        )
        .await
        .unwrap();
        send(
            reqwest::Method::GET,
            "/v1/files/f-1",
            "application/json",
            String::new(),
        )
        .await
        .unwrap();
        let forwarded: Vec<String> = fake
            .inference_requests()
            .iter()
            .map(|request| format!("{} {}", request.method, request.path))
            .collect();
        assert_eq!(
            forwarded,
            vec!["POST /v1/audio/transcriptions", "GET /v1/files/f-1"]
        );
    });
}

#[test]
fn under_a_spend_guard_ocr_and_speech_are_charged_by_the_unit_and_the_rest_refused() {
    let fake = FakeInference::start();
    fake.bill_like_mistral(Billing::default());
    let (_env, running) = start(&fake, true);
    let key = gateway_key("docskey");
    runtime().block_on(async {
        let client = client();
        let ocr = running.url("/v1/ocr");
        // Pages not named: a document of any length could be read.
        post(&client, &ocr, Some(&key), r#"{"model":"mistral-ocr-latest","document":{"type":"document_url","document_url":"https://example.com/a.pdf"}}"#)
            .await
            .refusal(403, "cost_unbounded");
        let answer = post(&client, &ocr, Some(&key), r#"{"model":"mistral-ocr-latest","pages":[0,1,2],"document":{"type":"document_url","document_url":"https://example.com/a.pdf"}}"#).await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        let answer = post(&client, &ocr, Some(&key), r#"{"model":"mistral-ocr-latest","pages":[4],"document_annotation_format":{"type":"json_schema"},"document":{"type":"document_url","document_url":"https://example.com/a.pdf"}}"#).await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        let speech = json!({"model": "voxtral-mini-tts-latest", "input": "Bonjour à tous, ".repeat(40)});
        let answer = post(&client, &running.url("/v1/audio/speech"), Some(&key), &speech.to_string()).await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        // Audio of unknown length, and a conversation kept upstream: not priced, refused.
        let (form_type, form) = multipart(&[("file", "RIFF0000WAVE"), ("model", "voxtral-mini-latest")]);
        let answer = client
            .post(running.url("/v1/audio/transcriptions"))
            .header("authorization", format!("Bearer {key}"))
            .header("content-type", form_type)
            .body(form)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 403);
        assert!(answer.text().await.unwrap().contains("unmetered_path"));
        post(&client, &running.url("/v1/conversations"), Some(&key), r#"{"model":"mistral-small-latest","inputs":"hi"}"#)
            .await
            .refusal(403, "unmetered_path");
    });
    let bills = fake.bills();
    assert_eq!(bills.len(), 3, "{bills:?}");
    let lines: Vec<serde_json::Value> = {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let lines: Vec<serde_json::Value> = running
                .audit_lines()
                .into_iter()
                .filter(|line| line.get("cost_micros").is_some())
                .collect();
            if lines.len() >= 3 || std::time::Instant::now() > deadline {
                break lines;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    };
    assert_eq!(lines.len(), 3);
    for (line, bill) in lines.iter().zip(&bills) {
        assert!(
            line["cost_micros"].as_u64().unwrap() >= bill.cost_micros,
            "charged {line}, billed {bill:?}"
        );
        assert!(bill.cost_micros > 0, "{bill:?}");
    }
    // 3 pages at 4.00 per 1,000; one annotated page at 5.00 per 1,000.
    assert_eq!(bills[0].cost_micros, 12_000);
    assert_eq!(bills[1].cost_micros, 5_000);
}
