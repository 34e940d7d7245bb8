//! Money through `tramontane gateway serve`, against a fake upstream that bills every request
//! as Mistral would at worst (every byte of text a token, images at their largest, fetched
//! documents expanded, every token asked for generated whether read or not, priority capacity
//! at 1.75 ×, cached prompt tokens at a tenth): what the gateway charges a request is never
//! less than what the upstream billed for it, on every path, and a budget or spend guard under
//! attack is never exceeded in what the upstream billed.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tramontane_testkit::TestDir;
use tramontane_testkit::fake_inference::{Bill, Billing, FakeInference, InferenceFault};

use super::test_gateway::{Running, client, digest, gateway_key, post, runtime};

const MONEY_UPSTREAM: &str = "sk-upstream-money-P3kD8sW1q";

/// One workspace whose service key has a daily token budget and a daily spend guard;
/// `gateway` is the workspace's gateway block.
fn policy(budget: u64, guard: &str, gateway: &str) -> String {
    format!(
        r#"version: 1
members:
  ada@acme.example: {{ name: Ada Admin, roles: [organization_admin] }}
workspaces:
  money:
    admin: ada@acme.example
    members: {{ ada@acme.example: [workspace_admin] }}
    spend_guard: {{ day: {guard} }}
    gateway: {{ agents: [ag_money]{gateway} }}
    keys:
      svc:
        owner: ada@acme.example
        daily_token_budget: {budget}
        secret: {{ file: secrets/svc.key }}
gateway_keys:
  moneykey: {{ digest: "{key}", holder: workspace.money.key.svc, workspace: money, expires: 2030-01-01 }}
"#,
        key = digest("moneykey"),
    )
}

fn start(fake: &FakeInference, policy_text: &str) -> (TestDir, Running) {
    let env = TestDir::new();
    env.write("policies/org.yaml", policy_text);
    env.write("upstream-keys/workspace.money.key.svc", MONEY_UPSTREAM);
    let running = Running::start(&env, &fake.url, &[]);
    (env, running)
}

/// What the gateway charged one request, from its audit line.
#[derive(Debug)]
struct Charged {
    tokens: u64,
    cost: u64,
    line: Value,
}

fn charged(line: &Value) -> Charged {
    Charged {
        tokens: line["prompt_tokens"].as_u64().expect("prompt tokens")
            + line["completion_tokens"]
                .as_u64()
                .expect("completion tokens"),
        cost: line["cost_micros"].as_u64().expect("a cost"),
        line: line.clone(),
    }
}

/// Waits until the gateway has closed `count` metered exchanges (streams the caller left
/// are closed once read to their end).
fn metered_lines(running: &Running, count: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let lines: Vec<Value> = running
            .audit_lines()
            .into_iter()
            .filter(|line| line.get("cost_micros").is_some())
            .collect();
        if lines.len() >= count {
            return lines;
        }
        assert!(
            Instant::now() < deadline,
            "only {} of {count} exchanges closed",
            lines.len()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn assert_covers(what: &str, charged: &Charged, bill: &Bill) {
    assert!(
        charged.tokens >= bill.tokens(),
        "{what}: charged {} tokens, the upstream billed {}: {bill:?} {}",
        charged.tokens,
        bill.tokens(),
        charged.line
    );
    assert!(
        charged.cost >= bill.cost_micros,
        "{what}: charged {} micro-units, the upstream billed {}: {bill:?} {}",
        charged.cost,
        bill.cost_micros,
        charged.line
    );
}

/// How a request is sent and read.
enum Read {
    Whole,
    /// Streamed, and the caller goes away after this many chunks.
    LeaveAfter(usize),
}

struct Case {
    what: &'static str,
    path: &'static str,
    body: String,
    read: Read,
}

fn chat(what: &'static str, body: Value) -> Case {
    Case {
        what,
        path: "/v1/chat/completions",
        body: body.to_string(),
        read: Read::Whole,
    }
}

/// A chat completion streamed to a caller who leaves after `chunks` chunks.
fn left(what: &'static str, chunks: usize, body: Value) -> Case {
    Case {
        read: Read::LeaveAfter(chunks),
        ..chat(what, body)
    }
}

async fn send(client: &reqwest::Client, running: &Running, case: &Case) -> u16 {
    let key = gateway_key("moneykey");
    match case.read {
        Read::Whole => {
            post(client, &running.url(case.path), Some(&key), &case.body)
                .await
                .status
        }
        Read::LeaveAfter(chunks) => {
            let mut response = client
                .post(running.url(case.path))
                .header("authorization", format!("Bearer {key}"))
                .header("content-type", "application/json")
                .body(case.body.clone())
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            for _ in 0..chunks {
                if response.chunk().await.unwrap().is_none() {
                    break;
                }
            }
            drop(response);
            status
        }
    }
}

/// Sends each case alone, waits for its exchange to close, and holds its charge against
/// its bill.
fn assert_each_covered(fake: &FakeInference, running: &Running, cases: &[Case]) {
    let client = client();
    runtime().block_on(async {
        for (i, case) in cases.iter().enumerate() {
            let status = send(&client, running, case).await;
            assert_eq!(status, 200, "{}", case.what);
            let lines = metered_lines(running, i + 1);
            let bills = fake.bills();
            assert_eq!(bills.len(), i + 1, "{}: one bill per request", case.what);
            assert_covers(case.what, &charged(&lines[i]), &bills[i]);
        }
    });
}

fn text(bytes: usize) -> String {
    "é".repeat(bytes / 2)
}

#[test]
fn every_path_is_charged_at_least_what_the_upstream_billed() {
    let fake = FakeInference::start();
    fake.bill_like_mistral(Billing::default());
    fake.set_stream_pause(Duration::from_millis(10));
    let (_env, running) = start(
        &fake,
        &policy(10_000_000, "100", ", fetched_content_tokens: 40000"),
    );
    let small = "mistral-small-latest";
    let image = format!("data:image/png;base64,{}", "iVBORw0K".repeat(20_000));
    let cases = [
        chat(
            "plain chat",
            json!({"model": small, "messages": [{"role": "user", "content": "hello"}]}),
        ),
        chat(
            "text that starts like an inline image",
            json!({"model": small, "stream": true, "max_tokens": 300,
                   "messages": [{"role": "user", "content": format!("data:{}", text(20_000))}]}),
        ),
        chat(
            "tools, a response schema and a prediction",
            json!({"model": small, "max_tokens": 50,
                   "messages": [{"role": "system", "content": text(500)}, {"role": "user", "content": "go"}],
                   "tools": [{"type": "function", "function": {"name": "lookup", "description": text(3_000),
                              "parameters": {"type": "object", "properties": {text(400): {"type": "string"}}}}}],
                   "response_format": {"type": "json_schema", "json_schema": {"name": "s", "schema": {"description": text(2_000)}}},
                   "prediction": {"type": "content", "content": text(1_000)}}),
        ),
        chat(
            "an inline image",
            json!({"model": small, "max_tokens": 10,
                   "messages": [{"role": "user", "content": [{"type": "text", "text": "what is it"},
                                                               {"type": "image_url", "image_url": image}]}]}),
        ),
        chat(
            "a document by URL, under the workspace's declared bound",
            json!({"model": small, "max_tokens": 10,
                   "messages": [{"role": "user", "content": [{"type": "document_url", "document_url": "https://example.com/report.pdf"}]}]}),
        ),
        left(
            "a stream the caller leaves after three chunks",
            3,
            json!({"model": small, "stream": true, "max_tokens": 4_000,
                   "messages": [{"role": "user", "content": text(8_000)}]}),
        ),
        chat(
            "two choices",
            json!({"model": "mistral-large-latest", "n": 2, "max_tokens": 700,
                   "messages": [{"role": "user", "content": text(100)}]}),
        ),
        chat(
            "cached prompt tokens",
            json!({"model": small, "max_tokens": 20, "prompt_cache_key": "conversation-1",
                   "messages": [{"role": "user", "content": text(6_000)}]}),
        ),
        chat(
            "standard capacity only",
            json!({"model": small, "max_tokens": 20, "service_tier": "standard_only",
                   "messages": [{"role": "user", "content": text(300)}]}),
        ),
        Case {
            what: "fill in the middle",
            path: "/v1/fim/completions",
            body: json!({"model": "codestral-latest", "max_tokens": 64,
                         "prompt": text(2_000), "suffix": text(500)})
            .to_string(),
            read: Read::Whole,
        },
        Case {
            what: "an agent, whose own prompt is kept upstream",
            path: "/v1/agents/completions",
            body: json!({"agent_id": "ag_money", "max_tokens": 30,
                         "messages": [{"role": "user", "content": "hi"}]})
            .to_string(),
            read: Read::Whole,
        },
    ];
    assert_each_covered(&fake, &running, &cases);
    let lines = metered_lines(&running, cases.len());
    // The stream the caller left was read to its end and settled from its usage.
    let left = &lines[5];
    assert_eq!(left["reason"], "client_disconnected", "{left}");
    assert_eq!(left["completion_tokens"], 4_000, "{left}");
    assert!(left.get("charged_reservation").is_none(), "{left}");
    // A request that does not ask for standard capacity is reserved at the priority price,
    // and settled at the tier the answer names.
    assert_eq!(lines[0]["tier"], "standard", "{}", lines[0]);
    assert_eq!(lines[7]["cached_tokens"], fake.bills()[7].cached_tokens);
    // Where the answer says what it used, the charge is exactly the bill.
    assert_eq!(lines[0]["cost_micros"], fake.bills()[0].cost_micros);
    let everything = format!("{}\n{:?}", running.logs(), running.audit_lines());
    assert!(
        !everything.contains(MONEY_UPSTREAM),
        "the upstream key leaked"
    );
}

#[test]
fn priority_capacity_is_charged_at_its_price() {
    let fake = FakeInference::start();
    fake.bill_like_mistral(Billing {
        priority: true,
        ..Billing::default()
    });
    let (_env, running) = start(&fake, &policy(10_000_000, "100", ""));
    let cases = [
        chat(
            "auto, served on priority",
            json!({"model": "mistral-small-latest", "max_tokens": 500,
                   "messages": [{"role": "user", "content": text(4_000)}]}),
        ),
        chat(
            "standard only",
            json!({"model": "mistral-small-latest", "max_tokens": 500, "service_tier": "standard_only",
                   "messages": [{"role": "user", "content": text(4_000)}]}),
        ),
    ];
    assert_each_covered(&fake, &running, &cases);
    let lines = metered_lines(&running, 2);
    let bills = fake.bills();
    assert!(bills[0].priority && !bills[1].priority);
    assert_eq!(lines[0]["tier"], "priority");
    assert_eq!(lines[0]["cost_micros"], bills[0].cost_micros);
    assert_eq!(lines[1]["tier"], "standard");
    assert_eq!(lines[1]["cost_micros"], bills[1].cost_micros);
}

#[test]
fn an_answer_that_never_says_what_it_used_is_charged_its_whole_reservation() {
    let fake = FakeInference::start();
    fake.bill_like_mistral(Billing {
        omit_usage: true,
        ..Billing::default()
    });
    fake.set_stream_pause(Duration::from_millis(5));
    let (_env, running) = start(&fake, &policy(10_000_000, "100", ""));
    let stream = json!({"model": "mistral-small-latest", "stream": true, "max_tokens": 200,
                        "messages": [{"role": "user", "content": text(2_000)}]});
    let cases = [
        chat("a stream that completes without usage", stream.clone()),
        chat(
            "an answer without usage",
            json!({"model": "mistral-small-latest", "max_tokens": 200,
                   "messages": [{"role": "user", "content": text(2_000)}]}),
        ),
        left(
            "a stream the caller leaves, read to an end without usage",
            2,
            stream.clone(),
        ),
    ];
    assert_each_covered(&fake, &running, &cases);
    for line in metered_lines(&running, 3) {
        assert_eq!(line["charged_reservation"], true, "{line}");
    }
    // A stream the upstream cuts off: no usage, the whole reservation.
    fake.fail_next("/v1/chat", InferenceFault::CutStream { after_chunks: 3 });
    runtime().block_on(async {
        let response = client()
            .post(running.url("/v1/chat/completions"))
            .header(
                "authorization",
                format!("Bearer {}", gateway_key("moneykey")),
            )
            .body(stream.to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        assert!(
            response.text().await.is_err(),
            "a cut stream is not a whole one"
        );
    });
    let lines = metered_lines(&running, 4);
    let bills = fake.bills();
    assert_eq!(lines[3]["charged_reservation"], true, "{}", lines[3]);
    assert_covers("a stream the upstream cuts", &charged(&lines[3]), &bills[3]);
}

#[test]
fn budgets_hold_in_what_the_upstream_billed_under_attack() {
    let fake = FakeInference::start();
    fake.bill_like_mistral(Billing::default());
    fake.set_stream_pause(Duration::from_millis(20));
    // 5,000 tokens a day; 0.002 a day.
    let (_env, running) = start(&fake, &policy(5_000, "0.002", ""));
    let key = gateway_key("moneykey");
    let chat_url = running.url("/v1/chat/completions");
    let client = client();
    runtime().block_on(async {
        // The attack of issue 20: text dressed as an inline image, streamed, left after
        // three events, again and again.
        let attack = json!({"model": "mistral-small-latest", "stream": true, "max_tokens": 100,
                            "messages": [{"role": "user", "content": format!("data:{}", "x".repeat(1_200))}]});
        let case = Case {
            what: "attack",
            path: "/v1/chat/completions",
            body: attack.to_string(),
            read: Read::LeaveAfter(3),
        };
        let mut refused = false;
        for _ in 0..20 {
            if send(&client, &running, &case).await == 429 {
                refused = true;
                break;
            }
        }
        assert!(refused, "the budget never refused");
        // The prompt alone is larger than the budget: refused before anything is sent.
        let forwarded = fake.inference_requests().len();
        let whole = json!({"model": "mistral-small-latest",
                           "messages": [{"role": "user", "content": format!("data:{}", "x".repeat(100_000))}]});
        post(&client, &chat_url, Some(&key), &whole.to_string())
            .await
            .refusal(429, "token_budget_exhausted");
        // Content the upstream fetches, with no bound declared: refused.
        let document = json!({"model": "mistral-small-latest",
                              "messages": [{"role": "user", "content": [{"type": "document_url", "document_url": "https://example.com/a.pdf"}]}]});
        post(&client, &chat_url, Some(&key), &document.to_string())
            .await
            .refusal(403, "fetched_content_unbounded");
        assert_eq!(fake.inference_requests().len(), forwarded);
    });
    // Every exchange is closed (the streams the caller left were read to their end).
    let billed = fake.bills();
    metered_lines(&running, billed.len());
    let tokens: u64 = billed.iter().map(Bill::tokens).sum();
    let cost: u64 = billed.iter().map(|bill| bill.cost_micros).sum();
    assert!(tokens <= 5_000, "the upstream billed {tokens} tokens");
    assert!(cost <= 2_000, "the upstream billed {cost} micro-units");
}

#[test]
fn a_model_without_a_price_is_refused_under_a_spend_guard_and_named_on_readyz() {
    let fake = FakeInference::start();
    fake.bill_like_mistral(Billing::default());
    // A fine-tune declared with its contract's prices, and one declared without any.
    let declared = r#"models:
  ft:mistral-small-2603:acme:7c1a:
    aliases: [acme-support-latest]
    prices: { currency: USD, input_tokens: "0.30", output_tokens: "0.90" }
  ft:mistral-small-2603:acme:9f2b: {}
"#;
    let (_env, running) = start(
        &fake,
        &format!("{}{declared}", policy(10_000_000, "100", "")),
    );
    let key = gateway_key("moneykey");
    let chat_url = running.url("/v1/chat/completions");
    runtime().block_on(async {
        let client = client();
        let unpriced = post(
            &client,
            &chat_url,
            Some(&key),
            r#"{"model":"ft:mistral-small-2603:acme:9f2b","messages":[{"role":"user","content":"hi"}]}"#,
        )
        .await;
        unpriced.refusal(403, "price_unknown");
        assert!(
            unpriced.json()["message"]
                .as_str()
                .unwrap()
                .contains("ft:mistral-small-2603:acme:9f2b")
        );
        assert!(fake.inference_requests().is_empty());
        // Priced by the policy, through its alias: admitted and forwarded (the fake has no
        // such model and says so).
        let priced = post(
            &client,
            &chat_url,
            Some(&key),
            r#"{"model":"acme-support-latest","messages":[{"role":"user","content":"hi"}]}"#,
        )
        .await;
        assert_ne!(priced.status, 403, "{}", priced.body);
        assert_eq!(fake.inference_requests().len(), 1);
        // `/readyz` names what callers may use and nothing prices.
        let ready = super::test_gateway::get(&client, &running.url("/readyz"), None).await;
        assert_eq!(ready.status, 200);
        assert!(
            ready.body.contains("no price for") && ready.body.contains("ft:mistral-small-2603:acme:9f2b"),
            "{}",
            ready.body
        );
        assert!(!ready.body.contains("acme:7c1a"), "{}", ready.body);
    });
    assert!(
        running.logs().contains("ft:mistral-small-2603:acme:9f2b"),
        "the start names the unpriced model"
    );
}
