//! The leases of a gateway's open reservations, kept alive by one task.
//!
//! A store with leases (Redis) gives a reservation back by itself once its lease lapses, so
//! a replica that dies cannot hold budget forever; the replica that took it renews the lease
//! while its request runs. One task renews every open reservation that is due, rather than a
//! task and a timer per reservation: most requests end long before their first renewal, and
//! for them holding a lease costs an entry in a map, not a task spawned and aborted.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::{LimitStore, ReservationId};

/// How often, in parts of a lease, the keeper looks for leases to renew. A lease is renewed
/// at the first look once it is older than one and a half parts: every two parts (a third of
/// the lease) while its request runs, and at most two and a half parts after it was taken.
/// A renewal that fails is tried again at every look, so a lease outlives several.
const PARTS_OF_A_LEASE: u32 = 6;
/// The keeper never looks more often than this, however short a lease.
const SHORTEST_TICK: Duration = Duration::from_millis(5);

/// The open reservations whose leases this gateway renews, and the background tasks it
/// runs (a reservation dropped without being settled is released in one of them).
#[derive(Clone)]
pub struct Leases {
    inner: Arc<Inner>,
}

struct Inner {
    held: Mutex<HashMap<ReservationId, Held>>,
    /// Wakes the keeper when the first lease is held after none were.
    first_held: Notify,
    started: AtomicBool,
    tasks: TaskTracker,
    stopping: CancellationToken,
}

struct Held {
    store: Arc<dyn LimitStore>,
    lease: Duration,
    renewed: Instant,
}

impl std::fmt::Debug for Leases {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Leases")
            .field("held", &self.held())
            .finish()
    }
}

impl Leases {
    /// Leases renewed in `tasks` until `stopping` is cancelled.
    pub fn new(tasks: TaskTracker, stopping: CancellationToken) -> Leases {
        Leases {
            inner: Arc::new(Inner {
                held: Mutex::new(HashMap::new()),
                first_held: Notify::new(),
                started: AtomicBool::new(false),
                tasks,
                stopping,
            }),
        }
    }

    /// Where background work of a reservation runs: the gateway's tasks, which shutdown
    /// waits for.
    pub fn tasks(&self) -> &TaskTracker {
        &self.inner.tasks
    }

    /// How many leases are being kept.
    pub fn held(&self) -> usize {
        self.inner.held.lock().map_or(0, |held| held.len())
    }

    /// Keeps the lease of reservation `id` in `store` until [`Leases::let_go`]; nothing for
    /// a store without leases. Returns whether a lease is kept.
    pub fn hold(&self, store: &Arc<dyn LimitStore>, id: &ReservationId) -> bool {
        let Some(lease) = store.lease() else {
            return false;
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            tracing::error!(reservation = %id.0, "a reservation was taken outside the runtime; its lease is not renewed");
            return false;
        };
        if !self.inner.started.swap(true, Ordering::AcqRel) {
            self.inner
                .tasks
                .spawn_on(keep(self.inner.clone()), &runtime);
        }
        let Ok(mut held) = self.inner.held.lock() else {
            return false;
        };
        let was_empty = held.is_empty();
        held.insert(
            id.clone(),
            Held {
                store: store.clone(),
                lease,
                renewed: Instant::now(),
            },
        );
        drop(held);
        if was_empty {
            self.inner.first_held.notify_one();
        }
        true
    }

    /// Stops renewing reservation `id`: it was settled, released or dropped.
    pub fn let_go(&self, id: &ReservationId) {
        if let Ok(mut held) = self.inner.held.lock() {
            held.remove(id);
        }
    }
}

/// Renews every lease that is due, a part of the shortest lease apart, until the gateway
/// stops; sleeps without a timer while no lease is held.
async fn keep(inner: Arc<Inner>) {
    loop {
        let shortest = inner
            .held
            .lock()
            .ok()
            .and_then(|held| held.values().map(|held| held.lease).min());
        let waited = match shortest {
            None => {
                inner
                    .stopping
                    .run_until_cancelled(inner.first_held.notified())
                    .await
            }
            Some(lease) => {
                let tick = (lease / PARTS_OF_A_LEASE).max(SHORTEST_TICK);
                inner
                    .stopping
                    .run_until_cancelled(tokio::time::sleep(tick))
                    .await
            }
        };
        if waited.is_none() {
            return;
        }
        renew_due(&inner).await;
    }
}

async fn renew_due(inner: &Inner) {
    let now = Instant::now();
    let due: Vec<(ReservationId, Arc<dyn LimitStore>)> = match inner.held.lock() {
        Ok(held) => held
            .iter()
            .filter(|(_, held)| {
                now.duration_since(held.renewed) * 2 > held.lease * 3 / PARTS_OF_A_LEASE
            })
            .map(|(id, held)| (id.clone(), held.store.clone()))
            .collect(),
        Err(_) => return,
    };
    if due.is_empty() {
        return;
    }
    // Concurrently: a store that multiplexes one connection pipelines them.
    let renewed = futures_util::future::join_all(due.into_iter().map(|(id, store)| async move {
        let outcome = store.renew(&id).await;
        (id, outcome)
    }))
    .await;
    let Ok(mut held) = inner.held.lock() else {
        return;
    };
    for (id, outcome) in renewed {
        match outcome {
            Ok(true) => {
                if let Some(entry) = held.get_mut(&id) {
                    entry.renewed = now;
                }
            }
            Ok(false) => {
                // Settled or released between the look and the renewal, or lapsed.
                if held.remove(&id).is_some() {
                    tracing::warn!(reservation = %id.0, "a reservation's lease lapsed while its request ran; its budget was given back early");
                }
            }
            Err(error) => {
                tracing::warn!(reservation = %id.0, %error, "could not renew a reservation's lease");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicU64;

    use futures_util::future::BoxFuture;
    use jiff::Timestamp;

    use super::*;
    use crate::store::memory::MemoryStore;
    use crate::store::{
        Admission, BudgetLine, MeterEntry, RateHit, StoreError, ThresholdCheck, ThresholdClaimed,
        UsageCounter,
    };

    /// The in-process store with a lease, counting renewals; `expired` ids renew as gone.
    struct Leased {
        inner: MemoryStore,
        lease: Duration,
        renewals: AtomicU64,
        expired: Mutex<Vec<ReservationId>>,
    }

    type Answer<'a, T> = BoxFuture<'a, Result<T, StoreError>>;

    impl LimitStore for Leased {
        fn admit_and_reserve<'a>(
            &'a self,
            rates: &'a [RateHit],
            id: &'a ReservationId,
            lines: &'a [BudgetLine],
            now: Timestamp,
        ) -> Answer<'a, Admission> {
            self.inner.admit_and_reserve(rates, id, lines, now)
        }
        fn settle<'a>(&'a self, id: &'a ReservationId, used: &'a [u64]) -> Answer<'a, ()> {
            self.inner.settle(id, used)
        }
        fn settle_and_meter<'a>(
            &'a self,
            id: &'a ReservationId,
            used: &'a [u64],
            entry: &'a MeterEntry,
        ) -> Answer<'a, ()> {
            self.inner.settle_and_meter(id, used, entry)
        }
        fn release<'a>(&'a self, id: &'a ReservationId) -> Answer<'a, ()> {
            self.inner.release(id)
        }
        fn open_reservations(&self) -> Answer<'_, u64> {
            self.inner.open_reservations()
        }
        fn meter<'a>(&'a self, entry: &'a MeterEntry) -> Answer<'a, ()> {
            self.inner.meter(entry)
        }
        fn meters<'a>(&'a self, month: &'a str) -> Answer<'a, Vec<crate::store::Meter>> {
            self.inner.meters(month)
        }
        fn usage<'a>(
            &'a self,
            counters: &'a [UsageCounter],
            now: Timestamp,
        ) -> Answer<'a, Vec<u64>> {
            self.inner.usage(counters, now)
        }
        fn claim_thresholds<'a>(
            &'a self,
            checks: &'a [ThresholdCheck],
            now: Timestamp,
        ) -> Answer<'a, Vec<ThresholdClaimed>> {
            self.inner.claim_thresholds(checks, now)
        }
        fn lease(&self) -> Option<Duration> {
            Some(self.lease)
        }
        fn renew<'a>(&'a self, id: &'a ReservationId) -> Answer<'a, bool> {
            self.renewals.fetch_add(1, Ordering::Relaxed);
            let gone = self.expired.lock().unwrap().contains(id);
            Box::pin(async move { Ok(!gone) })
        }
    }

    fn leased(lease: Duration) -> Arc<Leased> {
        Arc::new(Leased {
            inner: MemoryStore::default(),
            lease,
            renewals: AtomicU64::new(0),
            expired: Mutex::new(Vec::new()),
        })
    }

    #[tokio::test(start_paused = true)]
    async fn one_task_renews_every_held_lease_within_a_third_of_it_and_stops_at_let_go() {
        let store = leased(Duration::from_secs(60));
        let dyn_store: Arc<dyn LimitStore> = store.clone();
        let leases = Leases::new(TaskTracker::new(), CancellationToken::new());
        let ids: Vec<ReservationId> = (0..3).map(|n| ReservationId(format!("r{n}"))).collect();
        for id in &ids {
            assert!(leases.hold(&dyn_store, id));
        }
        assert_eq!(leases.held(), 3);
        // Nothing is due before a quarter of the lease.
        tokio::time::sleep(Duration::from_secs(15)).await;
        assert_eq!(store.renewals.load(Ordering::Relaxed), 0);
        // Within a third of the lease, each is renewed once.
        tokio::time::sleep(Duration::from_secs(6)).await;
        assert_eq!(store.renewals.load(Ordering::Relaxed), 3);
        for id in &ids {
            leases.let_go(id);
        }
        assert_eq!(leases.held(), 0);
        tokio::time::sleep(Duration::from_secs(600)).await;
        assert_eq!(store.renewals.load(Ordering::Relaxed), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn a_long_request_is_renewed_for_as_long_as_it_runs() {
        let store = leased(Duration::from_secs(3));
        let dyn_store: Arc<dyn LimitStore> = store.clone();
        let leases = Leases::new(TaskTracker::new(), CancellationToken::new());
        let id = ReservationId("long".into());
        leases.hold(&dyn_store, &id);
        // 30 s: ten leases' worth, renewed every third of a lease.
        tokio::time::sleep(Duration::from_secs(30)).await;
        let renewals = store.renewals.load(Ordering::Relaxed);
        assert!((28..=30).contains(&renewals), "{renewals} renewals");
        leases.let_go(&id);
    }

    #[tokio::test(start_paused = true)]
    async fn a_lapsed_lease_is_dropped_and_the_keeper_stops_with_the_gateway() {
        let store = leased(Duration::from_secs(6));
        let dyn_store: Arc<dyn LimitStore> = store.clone();
        let (tasks, stopping) = (TaskTracker::new(), CancellationToken::new());
        let leases = Leases::new(tasks.clone(), stopping.clone());
        let id = ReservationId("lapsed".into());
        store.expired.lock().unwrap().push(id.clone());
        leases.hold(&dyn_store, &id);
        tokio::time::sleep(Duration::from_secs(3)).await;
        assert_eq!(
            leases.held(),
            0,
            "a lease the store no longer holds is not renewed"
        );
        stopping.cancel();
        tasks.close();
        tokio::time::timeout(Duration::from_secs(1), tasks.wait())
            .await
            .expect("the keeper ends when the gateway stops");
    }

    #[tokio::test]
    async fn a_store_without_leases_holds_nothing_and_starts_no_task() {
        let store: Arc<dyn LimitStore> = Arc::new(MemoryStore::default());
        let tasks = TaskTracker::new();
        let leases = Leases::new(tasks.clone(), CancellationToken::new());
        assert!(!leases.hold(&store, &ReservationId("r".into())));
        assert_eq!(leases.held(), 0);
        assert_eq!(tasks.len(), 0);
    }
}
