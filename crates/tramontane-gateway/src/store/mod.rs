//! Where limits are counted: request rates and the reservations that keep token budgets and
//! spend guards from being overrun.
//!
//! The store's interface is shaped for a shared store with server-side scripts (a Redis
//! with one Lua script per operation): every operation is one async call on string keys that
//! checks and updates all the counters it names at once, all or nothing, and a reservation
//! is known by an id the gateway chooses, so `settle` and `release` need nothing the store
//! did not already record. [`memory::MemoryStore`] is the in-process implementation.
//!
//! A request's worst case is reserved before it goes upstream, in the same operation that
//! counts it against its rates ([`LimitStore::admit_and_reserve`]);
//! its real cost replaces the reservation when the answer says what it used
//! ([`LimitStore::settle`]), and an upstream error, a timeout or a client that goes away
//! gives the reservation back ([`LimitStore::release`]). [`Reservation`] is the guard that
//! makes the last one happen on every path: dropping it releases.
//!
//! Beside the limits, the store keeps what each workspace was metered per month
//! ([`LimitStore::meter`], read back by [`LimitStore::meters`]), for `tramontane audit` to set
//! against what Mistral billed.

pub mod claims;
pub mod failure_log;
pub mod leases;
pub mod memory;
pub mod meter;
pub mod redis;

pub use claims::{ThresholdCheck, ThresholdClaimed};
pub use leases::Leases;
pub use meter::{Meter, MeterCounts, MeterEntry, MeterReadError, month_of};

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use jiff::Timestamp;

/// Why the store could not answer.
#[derive(Clone, Debug, thiserror::Error)]
#[error("the limit store failed: {0}")]
pub struct StoreError(pub String);

pub type StoreResult<'a, T> = BoxFuture<'a, Result<T, StoreError>>;

/// One rate a request counts against: a requests-a-minute rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RateHit {
    /// The id of the rule it counts for, named back when it refuses.
    pub rule: String,
    /// The rule's store key, such as `rule:workspace:prod:requests:minute`.
    pub key: String,
    pub per_minute: u32,
}

/// One counter a reservation takes from: a token or spend rule in one window.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BudgetLine {
    /// The id of the rule it counts for, named back when it refuses.
    pub rule: String,
    /// The rule's store key in its window, such as
    /// `rule:member:bob@acme.example:tokens:day:2026-11-26`.
    pub counter: String,
    pub limit: u64,
    /// What this request may cost at worst.
    pub amount: u64,
    /// When the window closes: the counter can be forgotten then, and a refused caller may
    /// come back.
    pub window_end: Timestamp,
}

/// What the store answers a request before it goes upstream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Admission {
    /// Counted against every rate, and the reservation opened (when there were lines).
    Admitted,
    /// The `index`th rate (whose `rule` says which) is at its limit; a slot frees up after
    /// `retry_after`. Nothing was counted or reserved.
    RateLimited { index: usize, retry_after: Duration },
    /// The `index`th budget line (whose `rule` says which) has no room; its window closes
    /// after `retry_after`. Nothing was counted or reserved: the request takes no rate slot
    /// either.
    BudgetRefused { index: usize, retry_after: Duration },
}

impl Admission {
    /// The id of the rule that refused, read from what was asked; `None` when admitted.
    pub fn refused_by<'a>(
        &self,
        hits: &'a [RateHit],
        lines: &'a [BudgetLine],
    ) -> Option<(&'a str, Duration)> {
        match *self {
            Admission::Admitted => None,
            Admission::RateLimited { index, retry_after } => {
                hits.get(index).map(|hit| (hit.rule.as_str(), retry_after))
            }
            Admission::BudgetRefused { index, retry_after } => lines
                .get(index)
                .map(|line| (line.rule.as_str(), retry_after)),
        }
    }
}

/// A counter `tramontane usage` reads: a rule's store key in its window.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UsageCounter {
    /// The rule's store key, as [`RateHit::key`] or [`BudgetLine::counter`] name it.
    pub key: String,
    /// A requests-a-minute rate (a sliding log of admissions), not a budget counter.
    pub rate: bool,
}

/// A reservation's name, chosen by the gateway (the request id).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ReservationId(pub String);

/// The counting operations, each atomic over every key it names.
pub trait LimitStore: Send + Sync + 'static {
    /// Counts a request against every rate and takes each line's `amount` from its counter
    /// (counting what is used and what other requests hold reserved), all at once: every
    /// rate and every line is checked before anything is written, so a request refused for
    /// either counts against no rate and holds nothing. Rates are checked first: a request
    /// over both a rate and a budget is refused for the rate. With no lines no reservation
    /// is opened (there is nothing to settle). One operation on the request path, so a
    /// shared store costs one round trip per request here and one to settle.
    fn admit_and_reserve<'a>(
        &'a self,
        hits: &'a [RateHit],
        id: &'a ReservationId,
        lines: &'a [BudgetLine],
        now: Timestamp,
    ) -> StoreResult<'a, Admission>;

    /// Replaces a reservation by what the request really used, line by line in the order it
    /// was reserved. Settling an unknown id (already settled or released) does nothing.
    fn settle<'a>(&'a self, id: &'a ReservationId, used: &'a [u64]) -> StoreResult<'a, ()>;

    /// Settles a reservation as [`LimitStore::settle`] does and adds the request to its
    /// workspace's meter as [`LimitStore::meter`] does, in one operation: a shared store
    /// settles an answer in one round trip. The meter is added even when the reservation
    /// is unknown (it lapsed): it counts what the answer used. This default does one, then
    /// the other, and fails when either did.
    fn settle_and_meter<'a>(
        &'a self,
        id: &'a ReservationId,
        used: &'a [u64],
        entry: &'a MeterEntry,
    ) -> StoreResult<'a, ()> {
        Box::pin(async move {
            let settled = self.settle(id, used).await;
            let metered = self.meter(entry).await;
            settled.and(metered)
        })
    }

    /// Gives a reservation back whole. Releasing an unknown id does nothing.
    fn release<'a>(&'a self, id: &'a ReservationId) -> StoreResult<'a, ()>;

    /// Reservations taken and neither settled nor released.
    fn open_reservations(&self) -> StoreResult<'_, u64>;

    /// Whether the store's last answer refused this gateway's credentials (a Redis that
    /// wants a password it was not given, or refuses the one it was): a mistake in this
    /// replica's configuration, not an outage every replica shares.
    fn refuses_credentials(&self) -> bool {
        false
    }

    /// Adds one settled request to its workspace's meter for its month, totals and model
    /// alike, in one operation. Meters outlive the month long enough to audit it after it
    /// ends.
    fn meter<'a>(&'a self, entry: &'a MeterEntry) -> StoreResult<'a, ()>;

    /// Every workspace's meter for `month` (`YYYY-MM`), by workspace name; a workspace
    /// nothing was metered for is absent.
    fn meters<'a>(&'a self, month: &'a str) -> StoreResult<'a, Vec<Meter>>;

    /// What each counter holds, in the order asked, in one operation (one round trip to a
    /// shared store): for a budget counter, what was used *or reserved* in its window (a
    /// request in flight holds its worst case); for a rate, the admissions in the minute
    /// before `now`. A counter never written holds 0. Reads only: nothing is trimmed or given
    /// back.
    fn usage<'a>(
        &'a self,
        counters: &'a [UsageCounter],
        now: Timestamp,
    ) -> StoreResult<'a, Vec<u64>>;

    /// Reads each check's counter (what is used and what is reserved, together) and claims
    /// every threshold it has reached that no one claimed yet in its window, all in one
    /// operation. Returns the claims this call won: only their winner alerts, so each fires
    /// once across every replica sharing the store. A claim lives until its window ends.
    fn claim_thresholds<'a>(
        &'a self,
        checks: &'a [ThresholdCheck],
        now: Timestamp,
    ) -> StoreResult<'a, Vec<ThresholdClaimed>>;

    /// How long a reservation lives unless renewed; `None`: until settled or released (a
    /// store that dies with its gateway needs no lease).
    fn lease(&self) -> Option<Duration> {
        None
    }

    /// Extends a reservation's lease while its request runs. Returns whether it was still
    /// held.
    fn renew<'a>(&'a self, id: &'a ReservationId) -> StoreResult<'a, bool> {
        let _ = id;
        Box::pin(async { Ok(true) })
    }
}

/// A reservation held for one request: settle it with what was used, or drop it to give it
/// back. Either way the store hears of it exactly once.
pub struct Reservation {
    store: Arc<dyn LimitStore>,
    id: ReservationId,
    lines: usize,
    finished: bool,
    /// Where its lease is kept while the request runs (a store with leases only), and
    /// where a release on drop runs: the gateway's tasks, which shutdown waits for.
    leases: Leases,
    leased: bool,
}

impl std::fmt::Debug for Reservation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reservation").field("id", &self.id).finish()
    }
}

impl Reservation {
    pub fn new(
        store: Arc<dyn LimitStore>,
        id: ReservationId,
        lines: usize,
        leases: &Leases,
    ) -> Reservation {
        let leased = lines > 0 && leases.hold(&store, &id);
        Reservation {
            store,
            id,
            lines,
            finished: false,
            leases: leases.clone(),
            leased,
        }
    }

    fn finish(&mut self) {
        self.finished = true;
        self.let_go();
    }

    fn let_go(&mut self) {
        if std::mem::take(&mut self.leased) {
            self.leases.let_go(&self.id);
        }
    }

    /// A reservation of nothing (the caller has no budgets): settling and dropping it are
    /// free.
    pub fn is_empty(&self) -> bool {
        self.lines == 0
    }

    pub async fn settle(mut self, used: Vec<u64>) -> Result<(), StoreError> {
        self.finish();
        if self.lines == 0 {
            return Ok(());
        }
        self.store.settle(&self.id, &used).await
    }

    /// Whether this reservation is held in `store` (rather than in the in-process fallback).
    pub fn is_in(&self, store: &Arc<dyn LimitStore>) -> bool {
        Arc::ptr_eq(&self.store, store)
    }

    /// Settles the reservation and meters the request in its store, in one operation.
    pub async fn settle_and_meter(
        mut self,
        used: Vec<u64>,
        entry: &MeterEntry,
    ) -> Result<(), StoreError> {
        self.finish();
        if self.lines == 0 {
            return self.store.meter(entry).await;
        }
        self.store.settle_and_meter(&self.id, &used, entry).await
    }

    pub async fn release(mut self) -> Result<(), StoreError> {
        self.finish();
        if self.lines == 0 {
            return Ok(());
        }
        self.store.release(&self.id).await
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.let_go();
        if self.finished || self.lines == 0 {
            return;
        }
        let store = self.store.clone();
        let id = self.id.clone();
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                self.leases.tasks().spawn_on(async move {
                    if let Err(error) = store.release(&id).await {
                        tracing::error!(reservation = %id.0, %error, "could not release a reservation");
                    }
                }, &runtime);
            }
            Err(_) => {
                tracing::error!(reservation = %self.id.0, "a reservation was dropped outside the runtime and stays open")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::memory::MemoryStore;
    use super::*;

    fn line(amount: u64) -> BudgetLine {
        BudgetLine {
            rule: "a".into(),
            counter: "tokens:key:k:day:2026-11-26".into(),
            limit: 100,
            amount,
            window_end: "2026-11-27T00:00:00Z".parse().unwrap(),
        }
    }

    #[tokio::test]
    async fn dropping_a_reservation_releases_it() {
        let store: Arc<dyn LimitStore> = Arc::new(MemoryStore::default());
        let now: Timestamp = "2026-11-26T10:00:00Z".parse().unwrap();
        let id = ReservationId("r1".into());
        let lines = [line(60)];
        assert_eq!(
            store
                .admit_and_reserve(&[], &id, &lines, now)
                .await
                .unwrap(),
            Admission::Admitted
        );
        let leases = Leases::new(
            tokio_util::task::TaskTracker::new(),
            tokio_util::sync::CancellationToken::new(),
        );
        let reservation = Reservation::new(store.clone(), id, 1, &leases);
        assert_eq!(store.open_reservations().await.unwrap(), 1);
        drop(reservation);
        for _ in 0..100 {
            if store.open_reservations().await.unwrap() == 0 {
                break;
            }
            tokio::task::yield_now().await;
        }
        assert_eq!(store.open_reservations().await.unwrap(), 0);
        // The whole budget is free again.
        let again = ReservationId("r2".into());
        assert_eq!(
            store
                .admit_and_reserve(&[], &again, &[line(100)], now)
                .await
                .unwrap(),
            Admission::Admitted
        );
    }
}
