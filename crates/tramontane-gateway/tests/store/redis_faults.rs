//! What only a shared store can suffer: replicas racing for the same counters, a gateway
//! that dies holding a reservation, a flushed script cache, a server that goes away and
//! comes back. Each test has a private redis-server or a prefix of its own.

use std::sync::Arc;
use std::time::{Duration, Instant};

use jiff::Timestamp;
use tramontane_gateway::store::{Admission, LimitStore, MeterEntry};
use tramontane_testkit::redis_server::Reply;

use crate::support::{OneSide, TestRedis, eventually, hit, id, line};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_hundred_racing_reservations_admit_exactly_what_the_budget_holds() {
    let redis = TestRedis::any();
    // Three replicas: three stores, each with its own connection, on one Redis.
    let replicas: Vec<Arc<dyn LimitStore>> = (0..3).map(|_| redis.store()).collect();
    let tasks: Vec<_> = (0..500)
        .map(|i| {
            let store = replicas[i % replicas.len()].clone();
            tokio::spawn(async move {
                let name = format!("race-{i}");
                let lines = [line("tokens:shared", 100, 1), line("spend:shared", 1000, 3)];
                // A store failure counts as refused: the test then fails on the totals.
                let outcome = store.reserve(&id(&name), &lines, Timestamp::now()).await;
                (name, matches!(outcome, Ok(Admission::Admitted)))
            })
        })
        .collect();
    let mut admitted = Vec::new();
    for task in tasks {
        let (name, reserved) = task.await.unwrap();
        if reserved {
            admitted.push(name);
        }
    }
    assert_eq!(admitted.len(), 100);
    assert_eq!(replicas[0].open_reservations().await.unwrap(), 100);
    for (i, name) in admitted.iter().enumerate() {
        replicas[i % 3].settle(&id(name), &[1, 3]).await.unwrap();
    }
    assert_eq!(replicas[1].open_reservations().await.unwrap(), 0);
    // Used to the last token: nothing more fits.
    assert!(matches!(
        replicas[2]
            .reserve(
                &id("late"),
                &[line("tokens:shared", 100, 1)],
                Timestamp::now()
            )
            .await
            .unwrap(),
        Admission::BudgetRefused { .. }
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_replicas_admit_exactly_a_rate_per_minute() {
    let redis = TestRedis::any();
    let replicas: Vec<Arc<dyn LimitStore>> = (0..3).map(|_| redis.store()).collect();
    let tasks: Vec<_> = (0..300)
        .map(|i| {
            let store = replicas[i % replicas.len()].clone();
            tokio::spawn(async move {
                let hits = [hit("rpm:workspace:w", 1000), hit("rpm:key:k", 50)];
                store.admit(&hits, Timestamp::now()).await
            })
        })
        .collect();
    let mut admitted = 0;
    for task in tasks {
        match task.await.unwrap().unwrap() {
            Admission::Admitted => admitted += 1,
            Admission::RateLimited { index, retry_after } => {
                assert_eq!(index, 1);
                assert!(retry_after <= Duration::from_secs(60));
            }
            other => panic!("a request with no budget lines answered {other:?}"),
        }
    }
    assert_eq!(admitted, 50);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reservation_whose_gateway_died_is_given_back_when_its_lease_lapses() {
    let redis = TestRedis::any();
    let mut settings = redis.settings();
    settings.lease = Duration::from_millis(400);
    let dead = redis.store_with(settings.clone());
    let alive = redis.store_with(settings);
    let now = Timestamp::now();
    assert_eq!(
        dead.reserve(&id("orphan"), &[line("tokens:t", 100, 90)], now)
            .await
            .unwrap(),
        Admission::Admitted
    );
    // The dying gateway never settles nor renews.
    drop(dead);
    assert!(matches!(
        alive
            .reserve(&id("blocked"), &[line("tokens:t", 100, 20)], now)
            .await
            .unwrap(),
        Admission::BudgetRefused { .. }
    ));
    assert_eq!(alive.open_reservations().await.unwrap(), 1);
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(
        alive.open_reservations().await.unwrap(),
        0,
        "a lapsed lease still counts as open"
    );
    assert_eq!(
        alive
            .reserve(
                &id("after"),
                &[line("tokens:t", 100, 100)],
                Timestamp::now()
            )
            .await
            .unwrap(),
        Admission::Admitted,
        "the lapsed reservation still holds budget"
    );
    // A settle arriving after the lapse does not give back what the lease already gave
    // back: `after` still holds the whole budget.
    alive.settle(&id("orphan"), &[0]).await.unwrap();
    assert!(matches!(
        alive
            .reserve(
                &id("one-more"),
                &[line("tokens:t", 100, 1)],
                Timestamp::now()
            )
            .await
            .unwrap(),
        Admission::BudgetRefused { .. }
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renewed_lease_outlives_its_first_deadline() {
    let redis = TestRedis::any();
    let mut settings = redis.settings();
    settings.lease = Duration::from_millis(400);
    let store = redis.store_with(settings);
    assert_eq!(
        store
            .reserve(&id("long"), &[line("tokens:t", 100, 100)], Timestamp::now())
            .await
            .unwrap(),
        Admission::Admitted
    );
    for _ in 0..4 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(store.renew(&id("long")).await.unwrap());
    }
    assert_eq!(store.open_reservations().await.unwrap(), 1);
    assert!(matches!(
        store
            .reserve(&id("other"), &[line("tokens:t", 100, 1)], Timestamp::now())
            .await
            .unwrap(),
        Admission::BudgetRefused { .. }
    ));
    store.settle(&id("long"), &[40]).await.unwrap();
    assert!(
        !store.renew(&id("long")).await.unwrap(),
        "a settled lease renewed"
    );
    assert_eq!(
        store
            .reserve(&id("rest"), &[line("tokens:t", 100, 60)], Timestamp::now())
            .await
            .unwrap(),
        Admission::Admitted
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_key_expires_and_prefixes_keep_gateway_groups_apart() {
    let mut redis = TestRedis::private();
    let store = redis.store();
    let mut other_settings = redis.settings();
    other_settings.prefix = "other-group:".into();
    let other = redis.store_with(other_settings);
    let hits = [hit("rpm:key:k", 1)];
    assert_eq!(
        store.admit(&hits, Timestamp::now()).await.unwrap(),
        Admission::Admitted
    );
    assert_eq!(
        other.admit(&hits, Timestamp::now()).await.unwrap(),
        Admission::Admitted,
        "another prefix shares a rate"
    );
    assert_eq!(
        store
            .reserve(&id("held"), &[line("tokens:t", 100, 100)], Timestamp::now())
            .await
            .unwrap(),
        Admission::Admitted
    );
    assert_eq!(
        other
            .reserve(&id("held"), &[line("tokens:t", 100, 100)], Timestamp::now())
            .await
            .unwrap(),
        Admission::Admitted,
        "another prefix shares a budget"
    );
    assert_eq!(
        store
            .reserve(&id("done"), &[line("tokens:u", 100, 5)], Timestamp::now())
            .await
            .unwrap(),
        Admission::Admitted
    );
    store.settle(&id("done"), &[5]).await.unwrap();
    let prefix = redis.prefix.clone();
    let server = redis.server();
    let keys = server.keys("*");
    assert!(!keys.is_empty());
    for key in &keys {
        assert!(
            key.starts_with(&prefix) || key.starts_with("other-group:"),
            "{key} has no prefix"
        );
        let Reply::Integer(ttl) = server.command(&["PTTL", key]) else {
            panic!("PTTL did not answer a number");
        };
        assert!(ttl > 0, "{key} never expires ({ttl})");
        // Nothing outlives its window (an hour) plus a lease (a minute) by much.
        assert!(ttl <= 3_700_000, "{key} lives {ttl} ms");
    }
    let rate = keys
        .iter()
        .find(|key| key.starts_with(&prefix) && key.contains("rpm:key:k"))
        .expect("a rate key");
    let Reply::Integer(ttl) = server.command(&["PTTL", rate]) else {
        panic!("PTTL did not answer a number");
    };
    assert!(ttl <= 61_000, "a rate key outlives its minute: {ttl} ms");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flushed_script_cache_is_loaded_again() {
    let mut redis = TestRedis::private();
    let store = redis.store();
    let hits = [hit("rpm:key:k", 10)];
    assert_eq!(
        store.admit(&hits, Timestamp::now()).await.unwrap(),
        Admission::Admitted
    );
    assert_eq!(
        store
            .reserve(&id("1"), &[line("tokens:t", 100, 50)], Timestamp::now())
            .await
            .unwrap(),
        Admission::Admitted
    );
    assert_eq!(
        redis.server().command(&["SCRIPT", "FLUSH"]),
        Reply::Status("OK".into())
    );
    assert_eq!(
        store.admit(&hits, Timestamp::now()).await.unwrap(),
        Admission::Admitted
    );
    store.settle(&id("1"), &[50]).await.unwrap();
    assert_eq!(store.open_reservations().await.unwrap(), 0);
    redis.server().command(&["SCRIPT", "FLUSH"]);
    assert!(matches!(
        store
            .reserve(&id("2"), &[line("tokens:t", 100, 51)], Timestamp::now())
            .await
            .unwrap(),
        Admission::BudgetRefused { .. }
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_redis_fails_within_the_timeout_and_a_restarted_one_serves_again() {
    let mut redis = TestRedis::private();
    let settings = redis.settings();
    let timeout = settings.timeout;
    let store = redis.store_with(settings);
    let hits = [hit("rpm:key:k", 100)];
    assert_eq!(
        store.admit(&hits, Timestamp::now()).await.unwrap(),
        Admission::Admitted
    );
    redis.server().stop();
    for _ in 0..3 {
        let started = Instant::now();
        let admitted = store.admit(&hits, Timestamp::now()).await;
        assert!(admitted.is_err(), "{admitted:?}");
        let reserved = store
            .reserve(&id("down"), &[line("tokens:t", 10, 1)], Timestamp::now())
            .await;
        assert!(reserved.is_err(), "{reserved:?}");
        assert!(store.settle(&id("down"), &[1]).await.is_err());
        assert!(store.release(&id("down")).await.is_err());
        assert!(store.open_reservations().await.is_err());
        // Five operations, each bounded by the timeout (plus scheduling slack).
        let took = started.elapsed();
        assert!(took < timeout * 5 + Duration::from_secs(1), "{took:?}");
    }
    redis.server().restart();
    let back = eventually(Duration::from_secs(10), async || {
        store.admit(&hits, Timestamp::now()).await.is_ok()
    })
    .await;
    assert!(back, "the store did not reconnect after Redis came back");
    assert_eq!(
        store
            .reserve(&id("up"), &[line("tokens:t", 10, 10)], Timestamp::now())
            .await
            .unwrap(),
        Admission::Admitted
    );
    store.settle(&id("up"), &[10]).await.unwrap();
    assert_eq!(store.open_reservations().await.unwrap(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_costs_one_round_trip_to_admit_one_to_reserve_and_one_to_settle() {
    let mut redis = TestRedis::private();
    let store = redis.store();
    let hits = [hit("rpm:workspace:w", 100), hit("rpm:key:k", 100)];
    let lines = [line("tokens:t", 1000, 10), line("spend:s", 1000, 10)];
    // Warm up: connect and load the scripts.
    store.admit(&hits, Timestamp::now()).await.unwrap();
    store
        .reserve(&id("0"), &lines, Timestamp::now())
        .await
        .unwrap();
    store.settle(&id("0"), &[1, 1]).await.unwrap();
    redis.server().command(&["CONFIG", "RESETSTAT"]);
    for i in 1..=10 {
        let name = i.to_string();
        store.admit(&hits, Timestamp::now()).await.unwrap();
        store
            .reserve(&id(&name), &lines, Timestamp::now())
            .await
            .unwrap();
        store.settle(&id(&name), &[1, 1]).await.unwrap();
    }
    let Reply::Bulk(Some(info)) = redis.server().command(&["INFO", "commandstats"]) else {
        panic!("INFO did not answer");
    };
    // Commands the clients sent: a script's own calls are counted under their names, so
    // only what a client can send counts here (EVALSHA, EVAL after NOSCRIPT, SCRIPT).
    let info = String::from_utf8_lossy(&info);
    let sent: u64 = info
        .lines()
        .filter(|line| {
            ["cmdstat_evalsha:", "cmdstat_eval:", "cmdstat_script"]
                .iter()
                .any(|name| line.starts_with(name))
        })
        .filter_map(|line| {
            let calls = line.split_once("calls=")?.1;
            calls.split(',').next()?.parse::<u64>().ok()
        })
        .sum();
    let per_request = sent as f64 / 10.0;
    eprintln!("Redis round trips per request (admit + reserve + settle): {per_request}");
    assert_eq!(per_request, 3.0, "{info}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_metered_request_costs_one_round_trip_in_and_one_to_settle_and_meter() {
    let mut redis = TestRedis::private();
    let store = redis.store();
    let hits = [hit("rpm:workspace:w", 100), hit("rpm:key:k", 100)];
    let lines = [line("tokens:t", 1000, 10), line("spend:s", 1000, 10)];
    let month = tramontane_gateway::store::month_of(Timestamp::now());
    let answered = MeterEntry {
        workspace: "w".into(),
        month: month.clone(),
        day: format!("{month}-01"),
        model: "m".into(),
        requests: 1,
        prompt_tokens: 1,
        completion_tokens: 1,
        cost_micros: 1,
    };
    // Warm up: connect and load the scripts.
    store
        .admit_and_reserve(&hits, &id("0"), &lines, Timestamp::now())
        .await
        .unwrap();
    store
        .settle_and_meter(&id("0"), &[1, 1], &answered)
        .await
        .unwrap();
    redis.server().command(&["CONFIG", "RESETSTAT"]);
    for i in 1..=10 {
        let name = i.to_string();
        store
            .admit_and_reserve(&hits, &id(&name), &lines, Timestamp::now())
            .await
            .unwrap();
        store
            .settle_and_meter(&id(&name), &[1, 1], &answered)
            .await
            .unwrap();
    }
    let per_request = client_commands(&mut redis) as f64 / 10.0;
    eprintln!("Redis round trips per metered request: {per_request}");
    assert_eq!(per_request, 2.0);
    assert_eq!(store.meters(&month).await.unwrap()[0].total.requests, 11);
}

/// Commands clients sent since the last `CONFIG RESETSTAT`: a script's own calls are counted
/// under their names, so only what a client can send counts (EVALSHA, EVAL after NOSCRIPT,
/// SCRIPT).
fn client_commands(redis: &mut TestRedis) -> u64 {
    let Reply::Bulk(Some(info)) = redis.server().command(&["INFO", "commandstats"]) else {
        panic!("INFO did not answer");
    };
    String::from_utf8_lossy(&info)
        .lines()
        .filter(|line| {
            ["cmdstat_evalsha:", "cmdstat_eval:", "cmdstat_script"]
                .iter()
                .any(|name| line.starts_with(name))
        })
        .filter_map(|line| {
            let calls = line.split_once("calls=")?.1;
            calls.split(',').next()?.parse::<u64>().ok()
        })
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_with_a_password_serves_only_a_store_that_has_it() {
    let mut redis = TestRedis::private();
    assert_eq!(
        redis
            .server()
            .command(&["CONFIG", "SET", "requirepass", "hunter2"]),
        Reply::Status("OK".into())
    );
    let hits = [hit("rpm:key:k", 10)];
    let without = redis.store();
    let refused = without.admit(&hits, Timestamp::now()).await.unwrap_err();
    assert!(!refused.to_string().contains("hunter2"), "{refused}");
    let mut settings = redis.settings();
    settings.password = Some(secrecy::SecretString::from("hunter2".to_owned()));
    let with = redis.store_with(settings);
    assert_eq!(
        with.admit(&hits, Timestamp::now()).await.unwrap(),
        Admission::Admitted
    );
}
