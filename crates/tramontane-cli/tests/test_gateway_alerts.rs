//! Threshold alerts across three `tramontane gateway serve` replicas sharing one real
//! redis-server: a key's daily token budget driven past 50, 80 and 95 % is told exactly once
//! per threshold to each destination (a JSON webhook and a Slack-compatible one), whichever
//! replica served the request; a destination that always fails costs no request anything
//! and leaves an audit line per alert; the URLs, secrets, appear nowhere.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde_json::Value;
use tramontane_gateway::request::{Endpoint, InferenceRequest};
use tramontane_testkit::TestDir;
use tramontane_testkit::fake_inference::FakeInference;
use tramontane_testkit::gateway::{GatewayProcess, gateway_key, key_digest};
use tramontane_testkit::gateway_client::{client, metric, post};
use tramontane_testkit::redis_server::RedisServer;

const REPLICAS: usize = 3;
const BUDGET: u64 = 2000;
/// A part of every URL the gateway is given: it must show nowhere.
const URL_SECRET: &str = "T0KEN-w9Xq2";

type Deliveries = Arc<Mutex<Vec<(String, Value)>>>;

/// A webhook receiver: `POST /ok/{name}/…` records the document and answers 200,
/// `POST /fail/…` answers 500 every time.
async fn receiver() -> (String, Deliveries) {
    async fn ok(
        State(deliveries): State<Deliveries>,
        Path((name, _secret)): Path<(String, String)>,
        Json(body): Json<Value>,
    ) -> StatusCode {
        deliveries.lock().unwrap().push((name, body));
        StatusCode::NO_CONTENT
    }
    async fn fail() -> StatusCode {
        StatusCode::INTERNAL_SERVER_ERROR
    }
    let deliveries = Deliveries::default();
    let app = axum::Router::new()
        .route("/ok/{name}/{secret}", axum::routing::post(ok))
        .route("/fail/{secret}", axum::routing::post(fail))
        .with_state(deliveries.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (base, deliveries)
}

fn policy() -> String {
    format!(
        r#"version: 1
members:
  ada@acme.example: {{ name: Ada Admin, roles: [organization_admin] }}
workspaces:
  shared:
    admin: ada@acme.example
    members: {{ ada@acme.example: [workspace_admin] }}
    keys:
      watched:
        owner: ada@acme.example
        daily_token_budget: {BUDGET}
        secret: {{ file: secrets/watched.key }}
gateway_keys:
  watchkey: {{ digest: "{digest}", holder: workspace.shared.key.watched, workspace: shared, expires: 2030-01-01 }}
alerts:
  destinations:
    hook: {{ kind: webhook, url: {{ env: ALERT_HOOK_URL }} }}
    chat: {{ kind: slack, url: {{ file: secrets/chat-url }} }}
    broken: {{ kind: webhook, url: {{ env: ALERT_BROKEN_URL }} }}
    absent: {{ kind: webhook, url: {{ env: ALERT_ABSENT_URL }} }}
"#,
        digest = key_digest("watchkey"),
    )
}

fn thresholds(deliveries: &[(String, Value)], name: &str) -> Vec<Value> {
    deliveries
        .iter()
        .filter(|(to, _)| to == name)
        .map(|(_, body)| body.clone())
        .collect()
}

#[test]
fn a_budget_past_each_threshold_alerts_once_per_threshold_across_replicas() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    // Started outside the runtime: the fake runs one of its own.
    let redis = RedisServer::start();
    let fake = FakeInference::start();
    let env = TestDir::new();
    // The receiver serves from the runtime's workers between and after `block_on`s.
    let (base, deliveries) = runtime.block_on(receiver());
    {
        env.write(
            "upstream-keys/workspace.shared.key.watched",
            "sk-upstream-watched-Q8",
        );
        env.write("policies/org.yaml", policy());
        env.write("secrets/chat-url", format!("{base}/ok/chat/{URL_SECRET}\n"));
        let hook = format!("{base}/ok/hook/{URL_SECRET}");
        let broken = format!("{base}/fail/{URL_SECRET}");
        let replicas: Vec<GatewayProcess> = (0..REPLICAS)
            .map(|_| {
                GatewayProcess::start_with_env(
                    &env,
                    &[
                        "--upstream",
                        fake.url.as_str(),
                        "--upstream-keys",
                        "upstream-keys",
                        "--policies",
                        "policies",
                        "--store",
                        redis.url(),
                        "--store-timeout",
                        "3s",
                    ],
                    &[("ALERT_HOOK_URL", &hook), ("ALERT_BROKEN_URL", &broken)],
                )
            })
            .collect();
        // A destination whose variable is not set is off, and the gateway says so.
        for replica in &replicas {
            replica.wait_for_log("ALERT_ABSENT_URL", Duration::from_secs(5));
        }
        runtime.block_on(async {

        // Small requests round-robin over the replicas until the budget refuses: each
        // settles at 11 + 20 tokens, so the window passes 50, 80 and 95 % on its way.
        let http = client();
        let key = gateway_key("watchkey");
        let body = r#"{"model":"mistral-small-latest","max_tokens":20,"messages":[{"role":"user","content":"how far?"}]}"#;
        // Each request's worst case is small beside what is left of the budget when it is
        // refused, so settled use itself (not only a reservation) passes 95 %: the last
        // admitted request leaves more than `BUDGET - worst` used.
        let worst = {
            let request = InferenceRequest::parse(Endpoint::Chat, body.as_bytes()).unwrap();
            request.prompt_estimate + request.max_tokens.unwrap()
        };
        assert!(worst <= BUDGET * 5 / 100, "a worst case of {worst}");
        let mut served = 0;
        let mut refused = false;
        for n in 0..150 {
            let url = replicas[n % REPLICAS].url("/v1/chat/completions");
            let mut answer = post(&http, &url, Some(&key), body).await;
            if answer.status == 429 {
                // The previous answers settle after they are sent: a refusal may still count
                // a reservation about to give its room back. Asked again once they have, a
                // refusal is the budget's.
                tokio::time::sleep(Duration::from_millis(500)).await;
                answer = post(&http, &url, Some(&key), body).await;
            }
            if answer.status == 429 {
                refused = true;
                break;
            }
            // A failing destination never blocks a request.
            assert_eq!(answer.status, 200, "{}", answer.shown());
            served += 1;
        }
        assert!(refused, "the budget refuses in the end");
        assert!(served * 31 > BUDGET - worst, "{served} served");

        // Exactly three deliveries to each working destination, one per threshold.
        let deadline = Instant::now() + Duration::from_secs(40);
        while (thresholds(&deliveries.lock().unwrap(), "hook").len() < 3
            || thresholds(&deliveries.lock().unwrap(), "chat").len() < 3)
            && Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // Time for any duplicate to arrive.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let delivered = deliveries.lock().unwrap().clone();
        let hook = thresholds(&delivered, "hook");
        let mut reached: Vec<u64> = hook
            .iter()
            .map(|body| body["threshold"].as_u64().unwrap())
            .collect();
        reached.sort_unstable();
        assert_eq!(reached, vec![50, 80, 95], "{hook:#?}");
        let today = jiff::Timestamp::now()
            .to_zoned(jiff::tz::TimeZone::UTC)
            .date();
        for body in &hook {
            assert_eq!(body["rule"]["id"], "key:workspace.shared.key.watched:tokens:day");
            assert_eq!(
                body["rule"]["scope"],
                serde_json::json!({"kind": "key", "name": "workspace.shared.key.watched"})
            );
            assert_eq!(body["rule"]["measure"], "tokens");
            assert_eq!(body["rule"]["window"], "day");
            assert_eq!(body["window_start"], format!("{today}T00:00:00Z"));
            assert_eq!(body["limit"], BUDGET);
            let used = body["used"].as_u64().unwrap();
            let threshold = body["threshold"].as_u64().unwrap();
            assert!(used * 100 >= threshold * BUDGET, "{body}");
            assert_eq!(
                body["text"],
                format!("{BUDGET} tokens a day for key `workspace.shared.key.watched`")
            );
        }
        let chat = thresholds(&delivered, "chat");
        assert_eq!(chat.len(), 3, "{chat:#?}");
        for body in &chat {
            let text = body["text"].as_str().unwrap();
            assert_eq!(body.as_object().unwrap().len(), 1, "{body}");
            assert!(
                text.contains(&format!(
                    "of {BUDGET} tokens a day for key `workspace.shared.key.watched` reached"
                )),
                "{text}"
            );
        }

        // The destination that always fails: one audit line per alert, over the replicas,
        // after its tries, and the metric says so.
        let deadline = Instant::now() + Duration::from_secs(40);
        let failed = loop {
            let lines: Vec<Value> = replicas
                .iter()
                .flat_map(|replica| replica.audit_lines())
                .filter(|line| line["kind"] == "alert")
                .collect();
            if lines.len() >= 3 || Instant::now() > deadline {
                break lines;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        assert_eq!(failed.len(), 3, "{failed:#?}");
        for line in &failed {
            assert_eq!(line["destination"], "broken");
            assert_eq!(line["decision"], "failed");
            assert_eq!(line["reason"], "answered HTTP 500");
            assert_eq!(line["rule"], "key:workspace.shared.key.watched:tokens:day");
        }
        let mut metered = 0.0;
        for replica in &replicas {
            metered += metric(&http, &replica.admin_base, "tramontane_gateway_alerts_failed_total")
                .await
                .unwrap_or(0.0);
        }
        assert_eq!(metered, 3.0);

        // The URLs are secrets: in no log and no audit line.
        for replica in &replicas {
            assert!(!replica.logs().contains(URL_SECRET));
            assert!(!replica.audit_text().contains(URL_SECRET));
        }
        });
    }
}
