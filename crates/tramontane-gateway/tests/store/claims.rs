//! Threshold claims, against both stores: each threshold of a rule's window is won once,
//! across every replica sharing the store, and only once the counter reached it.

use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use tramontane_gateway::store::{LimitStore, ThresholdCheck};

use crate::support::{OneSide, Subject, TestRedis, id, line};

macro_rules! claims {
    ($($name:ident => $body:path;)*) => {$(
        mod $name {
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn memory() {
                let store = Subject::Memory.store();
                $body(store.clone(), store).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn redis() {
                // Two stores on one Redis: two replicas.
                let redis = TestRedis::any();
                $body(redis.store(), redis.store()).await;
            }
        }
    )*};
}

claims! {
    each_threshold_is_claimed_once_per_window_by_one_replica => once_per_window;
    racing_replicas_win_each_claim_exactly_once => racing_claims;
}

fn check(counter: &str, limit: u64, window: &str) -> ThresholdCheck {
    ThresholdCheck {
        rule: counter.into(),
        counter: counter.into(),
        window: window.into(),
        limit,
        window_end: Timestamp::now() + Duration::from_secs(3600),
        thresholds: vec![50, 80, 95],
    }
}

fn won(claims: &[tramontane_gateway::store::ThresholdClaimed]) -> Vec<(usize, u8, u64)> {
    claims
        .iter()
        .map(|claim| (claim.check, claim.threshold, claim.held))
        .collect()
}

async fn once_per_window(one: Arc<dyn LimitStore>, other: Arc<dyn LimitStore>) {
    let now = Timestamp::now();
    let checks = [check("t", 1000, "w1"), check("s", 100, "w1")];
    // Nothing counted yet: nothing reached.
    assert!(one.claim_thresholds(&checks, now).await.unwrap().is_empty());
    one.reserve(&id("1"), &[line("t", 1000, 600)], now)
        .await
        .unwrap();
    // A reservation counts: 600 of 1000 held reaches 50 %.
    assert_eq!(
        won(&one.claim_thresholds(&checks, now).await.unwrap()),
        vec![(0, 50, 600)]
    );
    // Settled at 820: 80 % is claimed once, by whichever replica asks first.
    one.settle(&id("1"), &[820]).await.unwrap();
    assert_eq!(
        won(&other.claim_thresholds(&checks, now).await.unwrap()),
        vec![(0, 80, 820)]
    );
    assert!(one.claim_thresholds(&checks, now).await.unwrap().is_empty());
    // A jump past two thresholds at once claims both, in one call, with the other check.
    other
        .reserve(&id("2"), &[line("t", 1000, 150), line("s", 100, 100)], now)
        .await
        .unwrap();
    other.settle(&id("2"), &[150, 100]).await.unwrap();
    assert_eq!(
        won(&one.claim_thresholds(&checks, now).await.unwrap()),
        vec![(0, 95, 970), (1, 50, 100), (1, 80, 100), (1, 95, 100)]
    );
    assert!(
        other
            .claim_thresholds(&checks, now)
            .await
            .unwrap()
            .is_empty()
    );
    // Another window of the same rule is claimed afresh.
    let next = [check("t", 1000, "w2")];
    assert_eq!(
        won(&one.claim_thresholds(&next, now).await.unwrap()),
        vec![(0, 50, 970), (0, 80, 970), (0, 95, 970)]
    );
}

async fn racing_claims(one: Arc<dyn LimitStore>, other: Arc<dyn LimitStore>) {
    let now = Timestamp::now();
    one.reserve(&id("1"), &[line("r", 100, 100)], now)
        .await
        .unwrap();
    let checks = Arc::new([check("r", 100, "w")]);
    let mut tasks = Vec::new();
    for n in 0..16 {
        let store = if n % 2 == 0 {
            one.clone()
        } else {
            other.clone()
        };
        let checks = checks.clone();
        tasks.push(tokio::spawn(async move {
            store.claim_thresholds(&checks[..], now).await.unwrap()
        }));
    }
    let mut thresholds = Vec::new();
    for task in tasks {
        thresholds.extend(task.await.unwrap().into_iter().map(|claim| claim.threshold));
    }
    thresholds.sort_unstable();
    assert_eq!(thresholds, vec![50, 80, 95]);
}
