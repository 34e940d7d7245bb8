//! One specification, two stores: every test here runs against the in-process store and
//! against Redis with the same assertions.

use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use tramontane_gateway::store::{
    Admission, BudgetLine, LimitStore, MeterCounts, MeterEntry, RateHit, UsageCounter, month_of,
};
use tramontane_testkit::redis_server::Reply;

use crate::support::{OneSide, Subject, TestRedis, hit, id, line};

/// Declares `name::memory` and `name::redis`, both running `body(store)`.
macro_rules! conformance {
    ($($name:ident => $body:path;)*) => {$(
        mod $name {
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn memory() {
                $body(Subject::Memory.store()).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn redis() {
                let redis = TestRedis::any();
                $body(Subject::Redis(redis).store()).await;
            }
        }
    )*};
}

conformance! {
    reserve_is_all_or_nothing => reserve_is_all_or_nothing;
    settle_replaces_the_reservation_by_what_was_used => settle_replaces;
    a_line_settled_without_a_figure_counts_its_whole_reservation => settle_without_figure;
    settle_and_release_of_unknown_ids_do_nothing => unknown_ids;
    release_gives_the_whole_reservation_back => release_gives_back;
    a_refused_reservation_waits_for_its_window_to_close => refused_waits_for_window;
    no_lines_and_no_rates_need_nothing => nothing_to_count;
    a_rate_admits_exactly_its_limit_then_says_when_to_retry => rate_exact;
    a_refused_admission_counts_against_no_rate => refused_admission_counts_nowhere;
    a_rate_of_zero_never_admits => zero_rate;
    a_rate_window_slides_after_a_minute => rate_window_slides;
    racing_requests_with_rates_and_budgets_admit_exactly_what_the_tighter_holds => combined_race;
    a_request_refused_for_a_budget_takes_no_rate_slot => budget_refusal_takes_no_rate;
    a_request_refused_for_a_rate_opens_no_reservation => rate_refusal_reserves_nothing;
    meters_add_up_per_workspace_month_and_model => meters_add_up;
    racing_meters_lose_nothing => meters_race;
    settle_and_meter_is_a_settle_and_a_meter => settle_and_meter;
    usage_reads_what_is_used_or_reserved_and_the_last_minute_of_a_rate => usage_reads;
}

async fn usage_reads(store: Arc<dyn LimitStore>) {
    let now = Timestamp::now();
    let counters = [
        UsageCounter {
            key: "a".into(),
            rate: false,
        },
        UsageCounter {
            key: "r".into(),
            rate: true,
        },
        UsageCounter {
            key: "never".into(),
            rate: false,
        },
    ];
    assert_eq!(store.usage(&counters, now).await.unwrap(), [0, 0, 0]);
    store
        .reserve(&id("1"), &[line("a", 100, 30)], now)
        .await
        .unwrap();
    store
        .reserve(&id("2"), &[line("a", 100, 20)], now)
        .await
        .unwrap();
    store.settle(&id("1"), &[10]).await.unwrap();
    for _ in 0..3 {
        store.admit(&[hit("r", 10)], now).await.unwrap();
    }
    // 10 used, 20 still reserved by the request in flight; three admissions this minute.
    assert_eq!(store.usage(&counters, now).await.unwrap(), [30, 3, 0]);
    assert_eq!(store.usage(&[], now).await.unwrap(), Vec::<u64>::new());
}

async fn reserve_is_all_or_nothing(store: Arc<dyn LimitStore>) {
    let now = Timestamp::now();
    let lines = [line("a", 100, 80), line("b", 1000, 80)];
    assert_eq!(
        store.reserve(&id("1"), &lines, now).await.unwrap(),
        Admission::Admitted
    );
    assert_eq!(store.open_reservations().await.unwrap(), 1);
    let Admission::BudgetRefused { index, .. } =
        store.reserve(&id("2"), &lines, now).await.unwrap()
    else {
        panic!("a took 80 of 100: another 80 must be refused");
    };
    assert_eq!(index, 0);
    assert_eq!(store.open_reservations().await.unwrap(), 1);
    // The refused reservation took nothing from b: 920 of its 1000 are still free.
    assert_eq!(
        store
            .reserve(&id("3"), &[line("b", 1000, 920)], now)
            .await
            .unwrap(),
        Admission::Admitted
    );
    let Admission::BudgetRefused { index, .. } = store
        .reserve(&id("4"), &[line("c", 10, 1), line("b", 1000, 1)], now)
        .await
        .unwrap()
    else {
        panic!("b is full");
    };
    assert_eq!(index, 1, "the refusal names the full line");
    // c was not touched by the refusal either.
    assert_eq!(
        store
            .reserve(&id("5"), &[line("c", 10, 10)], now)
            .await
            .unwrap(),
        Admission::Admitted
    );
    assert_eq!(store.open_reservations().await.unwrap(), 3);
}

async fn settle_replaces(store: Arc<dyn LimitStore>) {
    let now = Timestamp::now();
    let lines = [line("a", 100, 80), line("b", 1000, 80)];
    assert_eq!(
        store.reserve(&id("1"), &lines, now).await.unwrap(),
        Admission::Admitted
    );
    store.settle(&id("1"), &[30, 50]).await.unwrap();
    assert_eq!(store.open_reservations().await.unwrap(), 0);
    // Settling again counts once.
    store.settle(&id("1"), &[30, 50]).await.unwrap();
    // 30 used of a: 71 does not fit, 70 fits exactly.
    assert!(matches!(
        store
            .reserve(&id("2"), &[line("a", 100, 71)], now)
            .await
            .unwrap(),
        Admission::BudgetRefused { index: 0, .. }
    ));
    assert_eq!(
        store
            .reserve(&id("3"), &[line("a", 100, 70)], now)
            .await
            .unwrap(),
        Admission::Admitted
    );
    // 50 used of b: 951 does not fit, 950 does.
    assert!(matches!(
        store
            .reserve(&id("4"), &[line("b", 1000, 951)], now)
            .await
            .unwrap(),
        Admission::BudgetRefused { index: 0, .. }
    ));
    assert_eq!(
        store
            .reserve(&id("5"), &[line("b", 1000, 950)], now)
            .await
            .unwrap(),
        Admission::Admitted
    );
    // Using more than was reserved is counted too (the worst case was an estimate).
    assert_eq!(
        store
            .reserve(&id("6"), &[line("d", 100, 10)], now)
            .await
            .unwrap(),
        Admission::Admitted
    );
    store.settle(&id("6"), &[95]).await.unwrap();
    assert!(matches!(
        store
            .reserve(&id("7"), &[line("d", 100, 6)], now)
            .await
            .unwrap(),
        Admission::BudgetRefused { .. }
    ));
}

async fn settle_without_figure(store: Arc<dyn LimitStore>) {
    let now = Timestamp::now();
    let lines = [line("a", 100, 10), line("b", 100, 40)];
    assert_eq!(
        store.reserve(&id("1"), &lines, now).await.unwrap(),
        Admission::Admitted
    );
    store.settle(&id("1"), &[5]).await.unwrap();
    // b counts its whole 40: 60 fit, 61 do not.
    assert!(matches!(
        store
            .reserve(&id("2"), &[line("b", 100, 61)], now)
            .await
            .unwrap(),
        Admission::BudgetRefused { .. }
    ));
    assert_eq!(
        store
            .reserve(&id("3"), &[line("b", 100, 60), line("a", 100, 95)], now)
            .await
            .unwrap(),
        Admission::Admitted
    );
}

async fn unknown_ids(store: Arc<dyn LimitStore>) {
    let now = Timestamp::now();
    store.settle(&id("never"), &[10]).await.unwrap();
    store.release(&id("never")).await.unwrap();
    assert_eq!(store.open_reservations().await.unwrap(), 0);
    assert_eq!(
        store
            .reserve(&id("1"), &[line("a", 100, 100)], now)
            .await
            .unwrap(),
        Admission::Admitted,
        "settling an unknown id counted nothing"
    );
    store.release(&id("1")).await.unwrap();
    store.release(&id("1")).await.unwrap();
    store.settle(&id("1"), &[100]).await.unwrap();
    assert_eq!(
        store
            .reserve(&id("2"), &[line("a", 100, 100)], now)
            .await
            .unwrap(),
        Admission::Admitted,
        "settling a released id counted nothing"
    );
}

async fn release_gives_back(store: Arc<dyn LimitStore>) {
    let now = Timestamp::now();
    let lines = [line("a", 100, 60), line("b", 100, 70)];
    for round in 0..3 {
        let name = format!("r{round}");
        assert_eq!(
            store.reserve(&id(&name), &lines, now).await.unwrap(),
            Admission::Admitted
        );
        assert_eq!(store.open_reservations().await.unwrap(), 1);
        store.release(&id(&name)).await.unwrap();
        assert_eq!(store.open_reservations().await.unwrap(), 0);
    }
}

async fn refused_waits_for_window(store: Arc<dyn LimitStore>) {
    let now = Timestamp::now();
    let ends = now + Duration::from_secs(600);
    let mut full = line("a", 10, 10);
    full.window_end = ends;
    assert_eq!(
        store.reserve(&id("1"), &[full.clone()], now).await.unwrap(),
        Admission::Admitted
    );
    let Admission::BudgetRefused { index, retry_after } =
        store.reserve(&id("2"), &[full], now).await.unwrap()
    else {
        panic!("the counter is full");
    };
    assert_eq!(index, 0);
    assert!(
        retry_after <= Duration::from_secs(600) && retry_after > Duration::from_secs(590),
        "{retry_after:?}"
    );
}

async fn nothing_to_count(store: Arc<dyn LimitStore>) {
    let now = Timestamp::now();
    assert_eq!(store.admit(&[], now).await.unwrap(), Admission::Admitted);
    assert_eq!(
        store.reserve(&id("1"), &[], now).await.unwrap(),
        Admission::Admitted
    );
    assert_eq!(store.open_reservations().await.unwrap(), 0);
}

async fn rate_exact(store: Arc<dyn LimitStore>) {
    let hits = [hit("rpm:workspace:w", 100), hit("rpm:key:k", 5)];
    for _ in 0..5 {
        assert_eq!(
            store.admit(&hits, Timestamp::now()).await.unwrap(),
            Admission::Admitted
        );
    }
    for _ in 0..3 {
        let Admission::RateLimited { index, retry_after } =
            store.admit(&hits, Timestamp::now()).await.unwrap()
        else {
            panic!("the sixth request in a minute passed a limit of five");
        };
        assert_eq!(index, 1);
        assert!(
            retry_after <= Duration::from_secs(60) && retry_after > Duration::from_secs(50),
            "{retry_after:?}"
        );
    }
}

async fn refused_admission_counts_nowhere(store: Arc<dyn LimitStore>) {
    let hits = [hit("rpm:workspace:w", 3), hit("rpm:key:k", 1)];
    assert_eq!(
        store.admit(&hits, Timestamp::now()).await.unwrap(),
        Admission::Admitted
    );
    for _ in 0..4 {
        assert!(matches!(
            store.admit(&hits, Timestamp::now()).await.unwrap(),
            Admission::RateLimited { index: 1, .. }
        ));
    }
    // The workspace holds one admission, not five: two more fit.
    let workspace = [hit("rpm:workspace:w", 3)];
    for _ in 0..2 {
        assert_eq!(
            store.admit(&workspace, Timestamp::now()).await.unwrap(),
            Admission::Admitted
        );
    }
    assert!(matches!(
        store.admit(&workspace, Timestamp::now()).await.unwrap(),
        Admission::RateLimited { index: 0, .. }
    ));
}

async fn zero_rate(store: Arc<dyn LimitStore>) {
    let Admission::RateLimited { index, retry_after } = store
        .admit(&[hit("rpm:key:none", 0)], Timestamp::now())
        .await
        .unwrap()
    else {
        panic!("a rate of zero admitted a request");
    };
    assert_eq!(index, 0);
    assert_eq!(retry_after, Duration::from_secs(60));
}

/// The one slow test: a minute of real time, since Redis counts by its own clock.
async fn rate_window_slides(store: Arc<dyn LimitStore>) {
    let hits = [hit("rpm:key:slow", 2)];
    assert_eq!(
        store.admit(&hits, Timestamp::now()).await.unwrap(),
        Admission::Admitted
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        store.admit(&hits, Timestamp::now()).await.unwrap(),
        Admission::Admitted
    );
    let Admission::RateLimited { retry_after, .. } =
        store.admit(&hits, Timestamp::now()).await.unwrap()
    else {
        panic!("a third request in a minute passed a limit of two");
    };
    assert!(retry_after <= Duration::from_secs(58), "{retry_after:?}");
    // Just before the first admission leaves the window: still full.
    tokio::time::sleep(retry_after.saturating_sub(Duration::from_millis(500))).await;
    assert!(matches!(
        store.admit(&hits, Timestamp::now()).await.unwrap(),
        Admission::RateLimited { .. }
    ));
    // Once it has left, exactly one slot is free (the second admission is still inside).
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(
        store.admit(&hits, Timestamp::now()).await.unwrap(),
        Admission::Admitted
    );
    assert!(matches!(
        store.admit(&hits, Timestamp::now()).await.unwrap(),
        Admission::RateLimited { .. }
    ));
}

/// Races `requests` combined operations over `replicas` handles on the store, each counting
/// against `hits` and reserving `lines`; returns the ids admitted.
async fn race(
    replicas: &[Arc<dyn LimitStore>],
    requests: usize,
    hits: &[RateHit],
    lines: &[BudgetLine],
) -> Vec<String> {
    let tasks: Vec<_> = (0..requests)
        .map(|i| {
            let store = replicas[i % replicas.len()].clone();
            let (hits, lines) = (hits.to_vec(), lines.to_vec());
            tokio::spawn(async move {
                let name = format!("race-{i}");
                let outcome = store
                    .admit_and_reserve(&hits, &id(&name), &lines, Timestamp::now())
                    .await
                    .unwrap();
                (name, outcome)
            })
        })
        .collect();
    let mut admitted = Vec::new();
    for task in tasks {
        match task.await.unwrap() {
            (name, Admission::Admitted) => admitted.push(name),
            (_, Admission::RateLimited { .. } | Admission::BudgetRefused { .. }) => {}
        }
    }
    admitted
}

async fn combined_race(store: Arc<dyn LimitStore>) {
    // Three handles on one store (for Redis: three connections, as three replicas have).
    let replicas = [store.clone(), store.clone(), store.clone()];
    // The rate binds: 50 of 300, each holding a reservation.
    let admitted = race(
        &replicas,
        300,
        &[hit("rpm:key:race", 50)],
        &[line("tokens:race", 1000, 10)],
    )
    .await;
    assert_eq!(admitted.len(), 50);
    assert_eq!(store.open_reservations().await.unwrap(), 50);
    for name in &admitted {
        store.release(&id(name)).await.unwrap();
    }
    // The budget binds: 40 of 300, and those 40 are all the rate counted.
    let admitted = race(
        &replicas,
        300,
        &[hit("rpm:key:budgeted", 1000)],
        &[line("tokens:budgeted", 400, 10)],
    )
    .await;
    assert_eq!(admitted.len(), 40);
    assert_eq!(store.open_reservations().await.unwrap(), 40);
    let counted = [hit("rpm:key:budgeted", 41)];
    assert_eq!(
        store.admit(&counted, Timestamp::now()).await.unwrap(),
        Admission::Admitted,
        "the 260 refused for the budget took no rate slot"
    );
    assert!(matches!(
        store.admit(&counted, Timestamp::now()).await.unwrap(),
        Admission::RateLimited { index: 0, .. }
    ));
}

async fn budget_refusal_takes_no_rate(store: Arc<dyn LimitStore>) {
    let now = Timestamp::now();
    let hits = [hit("rpm:key:k", 2), hit("rpm:workspace:w", 10)];
    let full = [line("tokens:a", 100, 10), line("tokens:b", 5, 10)];
    for name in ["1", "2", "3"] {
        let Admission::BudgetRefused { index, retry_after } = store
            .admit_and_reserve(&hits, &id(name), &full, now)
            .await
            .unwrap()
        else {
            panic!("b cannot hold 10 of 5");
        };
        assert_eq!(index, 1, "the refusal names the line without room");
        assert!(retry_after > Duration::from_secs(3500));
    }
    assert_eq!(store.open_reservations().await.unwrap(), 0);
    // Both rates still have every slot: the key admits its two.
    for _ in 0..2 {
        assert_eq!(
            store.admit(&hits, Timestamp::now()).await.unwrap(),
            Admission::Admitted
        );
    }
    // Now the key's rate is full and b still is: the rate is named first.
    assert!(matches!(
        store
            .admit_and_reserve(&hits, &id("4"), &full, Timestamp::now())
            .await
            .unwrap(),
        Admission::RateLimited { index: 0, .. }
    ));
    // a was not touched by any refusal: all 100 are free.
    assert_eq!(
        store
            .reserve(&id("5"), &[line("tokens:a", 100, 100)], Timestamp::now())
            .await
            .unwrap(),
        Admission::Admitted
    );
}

async fn rate_refusal_reserves_nothing(store: Arc<dyn LimitStore>) {
    let now = Timestamp::now();
    let hits = [hit("rpm:key:k", 1)];
    let lines = [line("tokens:a", 100, 30), line("spend:a", 1000, 300)];
    assert_eq!(
        store
            .admit_and_reserve(&hits, &id("1"), &lines, now)
            .await
            .unwrap(),
        Admission::Admitted
    );
    assert_eq!(store.open_reservations().await.unwrap(), 1);
    let Admission::RateLimited { index, retry_after } = store
        .admit_and_reserve(&hits, &id("2"), &lines, now)
        .await
        .unwrap()
    else {
        panic!("the rate of one a minute is used");
    };
    assert_eq!(index, 0);
    assert!(retry_after <= Duration::from_secs(60));
    assert_eq!(store.open_reservations().await.unwrap(), 1);
    // Settling the refused id does nothing: no reservation was opened under it.
    store.settle(&id("2"), &[30, 300]).await.unwrap();
    // Only the first request holds anything: 70 and 700 are still free, and the refused id
    // can be reserved under.
    assert_eq!(
        store
            .reserve(
                &id("2"),
                &[line("tokens:a", 100, 70), line("spend:a", 1000, 700)],
                now
            )
            .await
            .unwrap(),
        Admission::Admitted
    );
    assert_eq!(store.open_reservations().await.unwrap(), 2);
}

fn entry(workspace: &str, month: &str, model: &str, tokens: (u64, u64), cost: u64) -> MeterEntry {
    MeterEntry {
        workspace: workspace.into(),
        month: month.into(),
        day: format!("{month}-15"),
        model: model.into(),
        requests: 1,
        prompt_tokens: tokens.0,
        completion_tokens: tokens.1,
        cost_micros: cost,
    }
}

fn counts(requests: u64, prompt: u64, completion: u64, cost: u64) -> MeterCounts {
    MeterCounts {
        requests,
        prompt_tokens: prompt,
        completion_tokens: completion,
        cost_micros: cost,
    }
}

async fn meters_add_up(store: Arc<dyn LimitStore>) {
    assert_eq!(store.meters("2026-06").await.unwrap(), Vec::new());
    // A model id may hold colons (fine-tuned models do).
    let tuned = "ft:open-mistral-7b:acme:1";
    for meter in [
        entry("prod", "2026-06", "mistral-small-2506", (100, 20), 1_500),
        entry("prod", "2026-06", "mistral-small-2506", (50, 10), 700),
        entry("prod", "2026-06", tuned, (5, 1), 9_000_000_000_000),
        entry("dev", "2026-06", "mistral-small-2506", (1, 1), 0),
        entry("prod", "2026-05", "mistral-small-2506", (7, 7), 7),
    ] {
        store.meter(&meter).await.unwrap();
    }
    let june = store.meters("2026-06").await.unwrap();
    let names: Vec<&str> = june.iter().map(|m| m.workspace.as_str()).collect();
    assert_eq!(names, ["dev", "prod"]);
    let prod = &june[1];
    assert_eq!(prod.month, "2026-06");
    assert_eq!(prod.total, counts(3, 155, 31, 9_000_000_002_200));
    assert_eq!(
        prod.models.get("mistral-small-2506"),
        Some(&counts(2, 150, 30, 2_200))
    );
    assert_eq!(
        prod.models.get(tuned),
        Some(&counts(1, 5, 1, 9_000_000_000_000))
    );
    assert_eq!(june[0].total, counts(1, 1, 1, 0));
    // Spend per day, beside the month's.
    assert_eq!(prod.days.get("2026-06-15"), Some(&9_000_000_002_200));
    let may = store.meters("2026-05").await.unwrap();
    assert_eq!(may.len(), 1);
    assert_eq!(may[0].total, counts(1, 7, 7, 7));
}

async fn settle_and_meter(store: Arc<dyn LimitStore>) {
    let now = Timestamp::now();
    let month = month_of(now);
    let lines = [line("a", 100, 80), line("b", 1000, 80)];
    assert_eq!(
        store.reserve(&id("1"), &lines, now).await.unwrap(),
        Admission::Admitted
    );
    let answered = entry("w", &month, "mistral-small-2506", (20, 10), 50);
    store
        .settle_and_meter(&id("1"), &[30, 50], &answered)
        .await
        .unwrap();
    assert_eq!(store.open_reservations().await.unwrap(), 0);
    // 30 used of a: 71 does not fit, 70 fits exactly.
    assert!(matches!(
        store
            .reserve(&id("2"), &[line("a", 100, 71)], now)
            .await
            .unwrap(),
        Admission::BudgetRefused { index: 0, .. }
    ));
    assert_eq!(
        store
            .reserve(&id("3"), &[line("b", 1000, 950)], now)
            .await
            .unwrap(),
        Admission::Admitted
    );
    // A reservation already gone (lapsed, released) still meters what its answer used.
    store
        .settle_and_meter(&id("gone"), &[1, 1], &answered)
        .await
        .unwrap();
    let meters = store.meters(&month).await.unwrap();
    assert_eq!(meters.len(), 1);
    assert_eq!(meters[0].total, counts(2, 40, 20, 100));
    assert_eq!(
        meters[0].models.get("mistral-small-2506"),
        Some(&counts(2, 40, 20, 100))
    );
    assert_eq!(meters[0].days.values().sum::<u64>(), 100);
}

async fn meters_race(store: Arc<dyn LimitStore>) {
    let month = month_of(Timestamp::now());
    let tasks: Vec<_> = (0..200)
        .map(|i| {
            let store = store.clone();
            let month = month.clone();
            tokio::spawn(async move {
                let model = if i % 2 == 0 { "a" } else { "b" };
                store
                    .meter(&entry("w", &month, model, (i, 1), 1_000_001))
                    .await
                    .unwrap();
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let meters = store.meters(&month).await.unwrap();
    assert_eq!(meters.len(), 1);
    assert_eq!(
        meters[0].total,
        counts(200, (0..200).sum(), 200, 200 * 1_000_001)
    );
    assert_eq!(meters[0].models["a"].requests, 100);
}

#[tokio::test]
async fn redis_meters_are_one_hash_per_workspace_and_month_that_expires_after_100_days() {
    let mut redis = TestRedis::private();
    let store = redis.store();
    store
        .meter(&entry("prod", "2026-06", "m", (3, 4), 5))
        .await
        .unwrap();
    let prefix = redis.prefix.clone();
    let server = redis.server();
    let hash = format!("{prefix}meter:2026-06:prod");
    let index = format!("{prefix}meters:2026-06");
    assert_eq!(
        server.keys(&format!("{prefix}*")),
        [hash.clone(), index.clone()]
    );
    assert_eq!(
        server.command(&["HGET", &hash, "cost_micros"]),
        Reply::Bulk(Some(b"5".to_vec()))
    );
    assert_eq!(
        server.command(&["HGET", &hash, "model:m:prompt_tokens"]),
        Reply::Bulk(Some(b"3".to_vec()))
    );
    for key in [&hash, &index] {
        let Reply::Integer(ttl) = server.command(&["TTL", key]) else {
            panic!("TTL did not answer a number");
        };
        assert!((8_639_000..=8_640_000).contains(&ttl), "{key}: {ttl}");
    }
    // The meters outlive a restart of nothing but the reader: another store reads them.
    let reader = redis.store();
    assert_eq!(
        reader.meters("2026-06").await.unwrap()[0].total,
        counts(1, 3, 4, 5)
    );
}
