//! Three `tramontane gateway serve` processes sharing one real redis-server, in front of the
//! fake inference API: every limit holds for the three together — a budget under a
//! barrier-synchronized race, a request rate, a reservation whose replica was killed, Redis
//! going away and coming back, and a policy reloaded on one replica while another streams;
//! and what a request costs in Redis round trips.
//!
//! Each test starts a private redis-server (it may stop it), from
//! `TRAMONTANE_TEST_REDIS_SERVER` or `redis-server` on the PATH, and fails if none starts.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tramontane_gateway::request::{Endpoint, InferenceRequest};
use tramontane_testkit::TestDir;
use tramontane_testkit::fake_inference::{self, FakeInference};
use tramontane_testkit::gateway::{GatewayProcess, gateway_key, key_digest};
use tramontane_testkit::gateway_client::{Answer, client, metric, post, wait_for_metric};
use tramontane_testkit::redis_server::{RedisServer, Reply};

/// The Mistral keys the replicas forward with, one per service key, so the fake's record
/// tells whose requests reached it.
const RACER_UPSTREAM: &str = "sk-upstream-racer-P3nV8kQ2";
const PACED_UPSTREAM: &str = "sk-upstream-paced-L6tR1wZ9";
const STREAMER_UPSTREAM: &str = "sk-upstream-streamer-D4hJ7sX5";
const LENIENT_UPSTREAM: &str = "sk-upstream-lenient-M2cF9gB8";

const REPLICAS: usize = 3;

/// How long a reservation outlives the last sign of life of the replica that holds it.
const LEASE: &str = "2s";
const LEASE_DURATION: Duration = Duration::from_secs(2);

const OPEN_RESERVATIONS: &str = "tramontane_gateway_reservations_open";

/// What the policy's limits are set to, test by test.
struct Limits {
    /// The racer's daily token budget.
    race_budget: u64,
    /// The streamer's daily token budget.
    stream_budget: u64,
    /// The streamer's max tokens per request.
    stream_cap: u64,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            race_budget: 1_000_000,
            stream_budget: 1_000_000,
            stream_cap: 200,
        }
    }
}

/// Two workspaces: `shared` fails closed when the store is unreachable, `open` fails open.
fn policy(limits: &Limits) -> String {
    format!(
        r#"version: 1
members:
  ada@acme.example: {{ name: Ada Admin, roles: [organization_admin] }}
workspaces:
  shared:
    admin: ada@acme.example
    members: {{ ada@acme.example: [workspace_admin] }}
    gateway: {{ store_failure: fail_closed }}
    keys:
      racer:
        owner: ada@acme.example
        rpm: 100000
        daily_token_budget: {race_budget}
        secret: {{ file: secrets/racer.key }}
      paced:
        owner: ada@acme.example
        rpm: 60
        secret: {{ file: secrets/paced.key }}
      streamer:
        owner: ada@acme.example
        daily_token_budget: {stream_budget}
        max_tokens_per_request: {stream_cap}
        secret: {{ file: secrets/streamer.key }}
  open:
    admin: ada@acme.example
    members: {{ ada@acme.example: [workspace_admin] }}
    gateway: {{ store_failure: fail_open }}
    keys:
      lenient:
        owner: ada@acme.example
        rpm: 3
        secret: {{ file: secrets/lenient.key }}
gateway_keys:
  racekey: {{ digest: "{race}", holder: workspace.shared.key.racer, workspace: shared, expires: 2030-01-01 }}
  pacekey: {{ digest: "{pace}", holder: workspace.shared.key.paced, workspace: shared, expires: 2030-01-01 }}
  streamkey: {{ digest: "{stream}", holder: workspace.shared.key.streamer, workspace: shared, expires: 2030-01-01 }}
  openkey: {{ digest: "{open}", holder: workspace.open.key.lenient, workspace: open, expires: 2030-01-01 }}
"#,
        race_budget = limits.race_budget,
        stream_budget = limits.stream_budget,
        stream_cap = limits.stream_cap,
        race = key_digest("racekey"),
        pace = key_digest("pacekey"),
        stream = key_digest("streamkey"),
        open = key_digest("openkey"),
    )
}

/// Where replica `i` reads its policy: a directory of its own, so one replica can be given
/// a new policy while the others keep theirs.
fn policies_dir(replica: usize) -> String {
    format!("policies-{replica}")
}

/// A private redis-server, the fake inference API and three replicas sharing them.
struct Cluster {
    redis: RedisServer,
    fake: FakeInference,
    env: TestDir,
    replicas: Vec<GatewayProcess>,
}

impl Cluster {
    fn start(limits: &Limits, extra: &[&str]) -> Cluster {
        let redis = RedisServer::start();
        let fake = FakeInference::start();
        let env = TestDir::new();
        for (address, key) in [
            ("workspace.shared.key.racer", RACER_UPSTREAM),
            ("workspace.shared.key.paced", PACED_UPSTREAM),
            ("workspace.shared.key.streamer", STREAMER_UPSTREAM),
            ("workspace.open.key.lenient", LENIENT_UPSTREAM),
        ] {
            env.write(format!("upstream-keys/{address}"), key);
        }
        let text = policy(limits);
        let replicas = (0..REPLICAS)
            .map(|replica| {
                env.write(format!("{}/org.yaml", policies_dir(replica)), &text);
                let policies = policies_dir(replica);
                let mut args = vec![
                    "--upstream",
                    fake.url.as_str(),
                    "--upstream-keys",
                    "upstream-keys",
                    "--policies",
                    policies.as_str(),
                    "--store",
                    redis.url(),
                    "--reservation-lease",
                    LEASE,
                    // A burst of 500 on a loaded machine can keep Redis's answer past the
                    // default 250 ms; a stopped Redis is refused at once either way.
                    "--store-timeout",
                    "3s",
                ];
                args.extend_from_slice(extra);
                GatewayProcess::start(&env, &args)
            })
            .collect();
        Cluster {
            redis,
            fake,
            env,
            replicas,
        }
    }

    fn url(&self, replica: usize, path: &str) -> String {
        self.replicas[replica].url(path)
    }

    /// Requests the fake received with this Mistral key.
    fn forwarded_with(&self, upstream_key: &str) -> usize {
        let wanted = format!("Bearer {upstream_key}");
        self.fake
            .inference_requests()
            .iter()
            .filter(|request| request.authorization.as_deref() == Some(wanted.as_str()))
            .count()
    }

    /// Audit lines with this decision over every replica, once all `total` requests have
    /// their line (each is written after its answer).
    fn audited(&self, decision: &str, total: usize) -> usize {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let lines: Vec<_> = self.replicas.iter().flat_map(|r| r.audit_lines()).collect();
            if lines.len() >= total {
                assert_eq!(lines.len(), total, "one audit line per request");
                return lines
                    .iter()
                    .filter(|line| line["decision"] == decision)
                    .count();
            }
            assert!(
                Instant::now() < deadline,
                "{} audit lines of {total}",
                lines.len()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits until no replica counts an open reservation.
    async fn wait_until_settled(&self, client: &reqwest::Client) {
        for replica in &self.replicas {
            wait_for_metric(
                client,
                &replica.admin_base,
                OPEN_RESERVATIONS,
                0.0,
                Duration::from_secs(10),
            )
            .await;
        }
    }

    /// Asserts that no Mistral key shows in anything a replica said.
    fn assert_no_leak(&self, seen: &[String]) {
        let mut everything = seen.join("\n");
        for replica in &self.replicas {
            everything.push_str(&replica.logs());
            everything.push_str(&replica.audit_text());
        }
        for key in [
            RACER_UPSTREAM,
            PACED_UPSTREAM,
            STREAMER_UPSTREAM,
            LENIENT_UPSTREAM,
        ] {
            assert!(!everything.contains(key), "an upstream key leaked");
        }
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn chat(max_tokens: u64, stream: bool) -> String {
    format!(
        r#"{{"model":"mistral-small-latest","stream":{stream},"max_tokens":{max_tokens},"messages":[{{"role":"user","content":"replicas"}}]}}"#
    )
}

/// What a request reserves at worst: the gateway's prompt estimate plus every completion
/// token it may ask for.
fn worst_case(body: &str) -> u64 {
    let request = InferenceRequest::parse(Endpoint::Chat, body.as_bytes()).unwrap();
    request.prompt_estimate + request.max_tokens.unwrap()
}

/// What Redis still holds for reservations: any key naming a reservation or a lease, and any
/// counter with an amount still `reserved`. Empty once everything has settled.
fn reservations_left(redis: &RedisServer) -> Vec<String> {
    let mut left = Vec::new();
    for key in redis.keys("*") {
        if key.contains("reservation") || key.ends_with(":leases") || key.ends_with(":held") {
            left.push(key);
            continue;
        }
        if redis.command(&["TYPE", &key]) != Reply::Status("hash".into()) {
            continue;
        }
        match redis.command(&["HGET", &key, "reserved"]) {
            Reply::Bulk(Some(amount)) if amount != b"0" => left.push(format!(
                "{key} reserved {}",
                String::from_utf8_lossy(&amount)
            )),
            _ => {}
        }
    }
    left
}

/// The `used` amount of every counter in Redis that has one.
fn used_in_redis(redis: &RedisServer) -> Vec<u64> {
    redis
        .keys("*")
        .into_iter()
        .filter(|key| redis.command(&["TYPE", key]) == Reply::Status("hash".into()))
        .filter_map(|key| match redis.command(&["HGET", &key, "used"]) {
            Reply::Bulk(Some(amount)) => String::from_utf8_lossy(&amount).parse().ok(),
            _ => None,
        })
        .collect()
}

#[test]
fn a_request_with_a_rate_and_a_budget_costs_one_redis_round_trip_to_admit_and_one_to_settle_and_meter()
 {
    let cluster = Cluster::start(&Limits::default(), &[]);
    let key = gateway_key("racekey");
    let body = chat(5, false);
    let url = cluster.url(0, "/v1/chat/completions");
    const REQUESTS: u64 = 10;
    // The store sends nothing but scripts, one per operation: the scripts Redis was sent are
    // its round trips.
    runtime().block_on(async {
        let client = client();
        // The first request connects and loads the scripts into Redis.
        assert_eq!(post(&client, &url, Some(&key), &body).await.status, 200);
        cluster.wait_until_settled(&client).await;
        let before = cluster.redis.scripts_sent();
        for sent in 1..=REQUESTS {
            let answer = post(&client, &url, Some(&key), &body).await;
            assert_eq!(answer.status, 200, "{}", answer.body);
            // The settle, with the meter, follows the answer's last byte: wait for it before
            // the next.
            let deadline = Instant::now() + Duration::from_secs(10);
            while cluster.redis.scripts_sent() - before < 2 * sent {
                assert!(Instant::now() < deadline, "request {sent} was not settled");
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
        // Nothing comes late: no third round trip per request.
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(
            cluster.redis.scripts_sent() - before,
            2 * REQUESTS,
            "one round trip to admit and reserve, one to settle and meter, per request"
        );
    });
    // Every request is in its workspace's meter for the month.
    let meters = cluster.redis.keys("*meter:*");
    assert_eq!(meters.len(), 1, "{meters:?}");
    assert_eq!(
        cluster.redis.command(&["HGET", &meters[0], "requests"]),
        Reply::Bulk(Some((1 + REQUESTS).to_string().into_bytes()))
    );
    assert_eq!(
        cluster.forwarded_with(RACER_UPSTREAM),
        1 + REQUESTS as usize
    );
    assert_eq!(reservations_left(&cluster.redis), Vec::<String>::new());
}

#[test]
fn a_race_of_500_over_three_replicas_admits_no_more_worst_cases_than_the_budget_holds() {
    let body = chat(1000, false);
    let worst = worst_case(&body);
    // Room for 100 worst cases and half of another.
    let cluster = Cluster::start(
        &Limits {
            race_budget: 100 * worst + worst / 2,
            ..Limits::default()
        },
        &[],
    );
    // What goes upstream is held there until every other answer is in: nothing settles
    // (and gives room back) while the race is on.
    cluster.fake.close_gate();
    let key = gateway_key("racekey");
    let started = Instant::now();
    let answers = runtime().block_on(async {
        let client = client();
        let barrier = Arc::new(tokio::sync::Barrier::new(500));
        let answered = Arc::new(AtomicUsize::new(0));
        let requests: Vec<_> = (0..500)
            .map(|i| {
                let (client, barrier, answered) =
                    (client.clone(), barrier.clone(), answered.clone());
                let (url, key, body) = (
                    cluster.url(i % REPLICAS, "/v1/chat/completions"),
                    key.clone(),
                    body.clone(),
                );
                tokio::spawn(async move {
                    barrier.wait().await;
                    let answer = post(&client, &url, Some(&key), &body).await;
                    answered.fetch_add(1, Ordering::SeqCst);
                    answer
                })
            })
            .collect();
        // Every request is either answered (refused) or waiting at the fake's gate.
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let waiting = cluster.forwarded_with(RACER_UPSTREAM);
            let answered = answered.load(Ordering::SeqCst);
            if waiting + answered == 500 {
                assert!(
                    waiting <= 100,
                    "{waiting} went upstream against a budget of 100 worst cases"
                );
                assert_eq!(waiting, 100, "every worst case that fits is admitted");
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{answered} answered and {waiting} forwarded of 500"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        cluster.fake.open_gate();
        let mut answers: Vec<Answer> = Vec::new();
        for request in requests {
            answers.push(request.await.unwrap());
        }
        cluster.wait_until_settled(&client).await;
        answers
    });
    let admitted = answers.iter().filter(|a| a.status == 200).count();
    assert_eq!(admitted, 100);
    for answer in answers.iter().filter(|a| a.status != 200) {
        answer.refusal(429, "token_budget_exhausted");
    }
    assert_eq!(cluster.forwarded_with(RACER_UPSTREAM), 100);
    // The replicas' own accounts agree: 100 admitted among them.
    assert_eq!(cluster.audited("admitted", 500), 100);
    assert_eq!(reservations_left(&cluster.redis), Vec::<String>::new());
    // One counter, in Redis, holding what the hundred really used.
    let each = fake_inference::PROMPT_TOKENS + fake_inference::COMPLETION_TOKENS;
    assert_eq!(used_in_redis(&cluster.redis), vec![100 * each]);
    let shown: Vec<String> = answers.iter().map(Answer::shown).collect();
    cluster.assert_no_leak(&shown);
    eprintln!("the race took {:?}", started.elapsed());
}

#[test]
fn sixty_requests_a_minute_means_sixty_across_three_replicas_not_one_hundred_eighty() {
    let cluster = Cluster::start(&Limits::default(), &[]);
    let key = gateway_key("pacekey");
    let body = chat(5, false);
    let answers = runtime().block_on(async {
        let client = client();
        let requests: Vec<_> = (0..120)
            .map(|i| {
                let client = client.clone();
                let (url, key, body) = (
                    cluster.url(i % REPLICAS, "/v1/chat/completions"),
                    key.clone(),
                    body.clone(),
                );
                tokio::spawn(async move { post(&client, &url, Some(&key), &body).await })
            })
            .collect();
        let mut answers = Vec::new();
        for request in requests {
            answers.push(request.await.unwrap());
        }
        answers
    });
    let admitted = answers.iter().filter(|a| a.status == 200).count();
    assert_eq!(admitted, 60, "60 a minute across the replicas together");
    for answer in answers.iter().filter(|a| a.status != 200) {
        answer.refusal(429, "rate_limited");
        let retry: u64 = answer.headers["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((1..=60).contains(&retry), "{retry}");
    }
    assert_eq!(cluster.forwarded_with(PACED_UPSTREAM), 60);
    assert_eq!(cluster.audited("admitted", 120), 60);
}

#[test]
fn a_replica_killed_mid_stream_gives_its_reservation_back_when_the_lease_runs_out() {
    let body = chat(20, true);
    let worst = worst_case(&body);
    // One worst case fits, two do not.
    let mut cluster = Cluster::start(
        &Limits {
            stream_budget: worst + worst / 2,
            ..Limits::default()
        },
        &[],
    );
    // Twenty chunks, 300 ms apart: the stream outlives the lease while its replica lives.
    cluster.fake.set_stream_pause(Duration::from_millis(300));
    let key = gateway_key("streamkey");
    let second = chat(20, false);
    runtime().block_on(async {
        let client = client();
        let mut stream = client
            .post(cluster.url(0, "/v1/chat/completions"))
            .header("authorization", format!("Bearer {key}"))
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(stream.status(), 200);
        assert!(stream.chunk().await.unwrap().is_some());
        let started = Instant::now();
        post(
            &client,
            &cluster.url(1, "/v1/chat/completions"),
            Some(&key),
            &second,
        )
        .await
        .refusal(429, "token_budget_exhausted");

        // Past the lease, replica 0 is alive and streaming: its reservation still holds.
        tokio::time::sleep(
            (LEASE_DURATION + Duration::from_secs(1)).saturating_sub(started.elapsed()),
        )
        .await;
        assert!(
            stream.chunk().await.unwrap().is_some(),
            "the stream goes on"
        );
        post(
            &client,
            &cluster.url(2, "/v1/chat/completions"),
            Some(&key),
            &second,
        )
        .await
        .refusal(429, "token_budget_exhausted");

        // SIGKILL: nothing is settled or released by the replica itself.
        cluster.replicas[0].kill();
        let killed = Instant::now();
        let deadline = killed + LEASE_DURATION + Duration::from_secs(10);
        loop {
            let answer = post(
                &client,
                &cluster.url(
                    1 + (killed.elapsed().as_millis() % 2) as usize,
                    "/v1/chat/completions",
                ),
                Some(&key),
                &second,
            )
            .await;
            if answer.status == 200 {
                break;
            }
            answer.refusal(429, "token_budget_exhausted");
            assert!(
                Instant::now() < deadline,
                "the dead replica's reservation was still held {:?} after the kill",
                killed.elapsed()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        drop(stream);
        for replica in &cluster.replicas[1..] {
            wait_for_metric(
                &client,
                &replica.admin_base,
                OPEN_RESERVATIONS,
                0.0,
                Duration::from_secs(10),
            )
            .await;
        }
    });
    assert_eq!(reservations_left(&cluster.redis), Vec::<String>::new());
    // The request that fit once the lease ran out went upstream, beside the killed stream.
    assert_eq!(cluster.forwarded_with(STREAMER_UPSTREAM), 2);
}

#[test]
fn with_redis_gone_fail_closed_answers_503_and_fail_open_serves_until_it_is_back() {
    let mut cluster = Cluster::start(&Limits::default(), &[]);
    let closed_key = gateway_key("racekey");
    let open_key = gateway_key("openkey");
    let body = chat(5, false);
    let mut seen = Vec::new();
    runtime().block_on(async {
        let client = client();
        for replica in 0..REPLICAS {
            let url = cluster.url(replica, "/v1/chat/completions");
            assert_eq!(
                post(&client, &url, Some(&closed_key), &body).await.status,
                200
            );
            assert_eq!(
                post(&client, &url, Some(&open_key), &body).await.status,
                200
            );
        }
        let forwarded_closed = cluster.forwarded_with(RACER_UPSTREAM);

        cluster.redis.stop();
        for replica in 0..REPLICAS {
            let url = cluster.url(replica, "/v1/chat/completions");
            let answer = post(&client, &url, Some(&closed_key), &body).await;
            answer.refusal(503, "store_unavailable");
            seen.push(answer.shown());
            // The fail-open workspace is served, counted in-process meanwhile.
            let answer = post(&client, &url, Some(&open_key), &body).await;
            assert_eq!(answer.status, 200, "{}", answer.body);
        }
        assert_eq!(
            cluster.forwarded_with(RACER_UPSTREAM),
            forwarded_closed,
            "a fail-closed request went upstream without its limits"
        );
        // Counted in-process: replica 0 takes two more of the key's 3 a minute, then refuses.
        let url = cluster.url(0, "/v1/chat/completions");
        for _ in 0..2 {
            let answer = post(&client, &url, Some(&open_key), &body).await;
            assert_eq!(answer.status, 200, "{}", answer.body);
        }
        post(&client, &url, Some(&open_key), &body)
            .await
            .refusal(429, "rate_limited");
        for replica in &cluster.replicas {
            let errors = metric(
                &client,
                &replica.admin_base,
                "tramontane_gateway_store_errors_total",
            )
            .await;
            assert!(errors.is_some_and(|e| e >= 1.0), "{errors:?}");
        }

        // Redis comes back on the same address: the replicas resume on their own.
        cluster.redis.restart();
        let deadline = Instant::now() + Duration::from_secs(15);
        for replica in 0..REPLICAS {
            let url = cluster.url(replica, "/v1/chat/completions");
            loop {
                let answer = post(&client, &url, Some(&closed_key), &body).await;
                if answer.status == 200 {
                    break;
                }
                answer.refusal(503, "store_unavailable");
                assert!(
                    Instant::now() < deadline,
                    "replica {replica} did not resume after Redis came back"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        cluster.wait_until_settled(&client).await;
    });
    for replica in &mut cluster.replicas {
        assert_eq!(replica.wait(Duration::ZERO), None, "a replica exited");
    }
    assert_eq!(cluster.forwarded_with(RACER_UPSTREAM), 3 + REPLICAS);
    cluster.assert_no_leak(&seen);
}

#[test]
fn a_stream_through_one_replica_completes_while_another_reloads_its_policy() {
    let cluster = Cluster::start(&Limits::default(), &[]);
    // Twenty chunks 250 ms apart: the last leaves the fake nearly five seconds after the
    // first, and the reload happens in between.
    cluster.fake.set_stream_pause(Duration::from_millis(250));
    let key = gateway_key("streamkey");
    let above_old_cap = chat(300, false);
    runtime().block_on(async {
        let client = client();
        let mut stream = client
            .post(cluster.url(0, "/v1/chat/completions"))
            .header("authorization", format!("Bearer {key}"))
            .body(chat(20, true))
            .send()
            .await
            .unwrap();
        assert_eq!(stream.status(), 200);
        let mut text = String::from_utf8(stream.chunk().await.unwrap().unwrap().to_vec()).unwrap();
        let first_chunk = Instant::now();

        // Replica 1 is given a policy with a higher cap; replicas 0 and 2 keep theirs.
        cluster.env.write(
            format!("{}/org.yaml", policies_dir(1)),
            policy(&Limits {
                stream_cap: 400,
                ..Limits::default()
            }),
        );
        cluster.replicas[1].signal("HUP");
        cluster.replicas[1].wait_for_log("policy reloaded", Duration::from_secs(10));
        let answer = post(
            &client,
            &cluster.url(1, "/v1/chat/completions"),
            Some(&key),
            &above_old_cap,
        )
        .await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        post(
            &client,
            &cluster.url(0, "/v1/chat/completions"),
            Some(&key),
            &above_old_cap,
        )
        .await
        .refusal(400, "max_tokens_exceeded");
        assert!(
            first_chunk.elapsed() < Duration::from_millis(4500),
            "the reload took {:?}, longer than the stream",
            first_chunk.elapsed()
        );

        while let Some(chunk) = stream.chunk().await.unwrap() {
            text.push_str(std::str::from_utf8(&chunk).unwrap());
        }
        // Every chunk, in order, and the end.
        assert_eq!(text.matches("data: ").count(), 21, "{text}");
        for (i, piece) in (0..20).map(|i| (i, format!("\"t{i} \""))) {
            let at = text
                .find(&piece)
                .unwrap_or_else(|| panic!("chunk {i} is missing"));
            if i > 0 {
                assert!(text.find(&format!("\"t{} \"", i - 1)).unwrap() < at);
            }
        }
        assert!(text.ends_with("data: [DONE]\n\n"), "{text}");
        cluster.wait_until_settled(&client).await;
    });
    let completed = cluster.replicas[0]
        .audit_line(|line| line["reason"] == "completed" && line["stream"] == true);
    assert_eq!(completed["completion_tokens"], 20);
    assert!(!cluster.replicas[0].logs().contains("policy reloaded"));
    assert_eq!(reservations_left(&cluster.redis), Vec::<String>::new());
    cluster.assert_no_leak(&[]);
}
