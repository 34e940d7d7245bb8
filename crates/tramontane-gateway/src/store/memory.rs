//! The in-process limit store: one lock over every counter, held for a few map operations
//! per request, which keeps each operation atomic exactly as a Lua script keeps it on Redis.
//! Its counts live as long as the process; several replicas need a shared store.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use jiff::Timestamp;

use super::{
    Admission, BudgetLine, LimitStore, Meter, MeterEntry, RateHit, ReservationId, StoreError,
    StoreResult, ThresholdCheck, ThresholdClaimed, UsageCounter,
};

const MINUTE_NANOS: i128 = 60_000_000_000;
/// Expired counters are swept after this many operations.
const SWEEP_EVERY: u64 = 4096;

#[derive(Default)]
pub struct MemoryStore {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// Admission times in the last minute, per rate key, oldest first.
    rates: HashMap<String, VecDeque<i128>>,
    counters: HashMap<String, Counter>,
    /// Counter names and the amounts each open reservation holds in them.
    reservations: HashMap<ReservationId, Vec<(String, u64)>>,
    /// Meters by month, then workspace. Never swept: a process lives far shorter than the
    /// months worth auditing, and there are few workspaces.
    meters: BTreeMap<String, BTreeMap<String, Meter>>,
    operations: u64,
}

#[derive(Default)]
struct Counter {
    used: u64,
    reserved: u64,
    expires: i128,
}

fn nanos(at: Timestamp) -> i128 {
    at.as_nanosecond()
}

fn wait(from: i128, until: i128) -> Duration {
    Duration::from_nanos(u64::try_from((until - from).max(0)).unwrap_or(u64::MAX))
}

impl State {
    fn sweep(&mut self, now: i128) {
        self.operations += 1;
        if !self.operations.is_multiple_of(SWEEP_EVERY) {
            return;
        }
        self.rates.retain(|_, times| {
            while times.front().is_some_and(|&t| t <= now - MINUTE_NANOS) {
                times.pop_front();
            }
            !times.is_empty()
        });
        self.counters
            .retain(|_, counter| counter.expires > now || counter.reserved > 0);
    }

    /// The first rate that is full, and when its oldest admission leaves the window.
    /// Trims the windows it reads; counts nothing.
    fn full_rate(&mut self, hits: &[RateHit], now: i128) -> Option<(usize, Duration)> {
        for (index, hit) in hits.iter().enumerate() {
            let times = self.rates.entry(hit.key.clone()).or_default();
            while times.front().is_some_and(|&t| t <= now - MINUTE_NANOS) {
                times.pop_front();
            }
            if times.len() >= hit.per_minute as usize {
                // Full: the oldest admission leaves the window first. A limit of zero
                // never admits; its caller may try again in a minute.
                let until = times
                    .front()
                    .map_or(now + MINUTE_NANOS, |&oldest| oldest + MINUTE_NANOS);
                return Some((index, wait(now, until)));
            }
        }
        None
    }

    /// The first line without room for its amount, and when its window closes. Takes
    /// nothing.
    fn full_line(&mut self, lines: &[BudgetLine], now: i128) -> Option<(usize, Duration)> {
        for (index, line) in lines.iter().enumerate() {
            let expires = nanos(line.window_end);
            let counter = self.counters.entry(line.counter.clone()).or_default();
            counter.expires = counter.expires.max(expires);
            let held = counter.used.saturating_add(counter.reserved);
            if held.saturating_add(line.amount) > line.limit {
                return Some((index, wait(now, expires)));
            }
        }
        None
    }

    /// Checks every rate and every line, then (only if all have room) counts and reserves.
    fn admit_and_reserve(
        &mut self,
        hits: &[RateHit],
        id: &ReservationId,
        lines: &[BudgetLine],
        now: i128,
    ) -> Admission {
        self.sweep(now);
        if let Some((index, retry_after)) = self.full_rate(hits, now) {
            return Admission::RateLimited { index, retry_after };
        }
        if let Some((index, retry_after)) = self.full_line(lines, now) {
            return Admission::BudgetRefused { index, retry_after };
        }
        for hit in hits {
            self.rates
                .entry(hit.key.clone())
                .or_default()
                .push_back(now);
        }
        // Nothing to hold: no reservation to settle or count as open (as in Redis).
        if lines.is_empty() {
            return Admission::Admitted;
        }
        let mut held = Vec::with_capacity(lines.len());
        for line in lines {
            if let Some(counter) = self.counters.get_mut(&line.counter) {
                counter.reserved = counter.reserved.saturating_add(line.amount);
            }
            held.push((line.counter.clone(), line.amount));
        }
        self.reservations.insert(id.clone(), held);
        Admission::Admitted
    }

    fn finish(&mut self, id: &ReservationId, used: Option<&[u64]>) {
        let Some(held) = self.reservations.remove(id) else {
            return;
        };
        for (i, (name, amount)) in held.into_iter().enumerate() {
            if let Some(counter) = self.counters.get_mut(&name) {
                counter.reserved = counter.reserved.saturating_sub(amount);
                if let Some(used) = used {
                    counter.used = counter
                        .used
                        .saturating_add(used.get(i).copied().unwrap_or(amount));
                }
            }
        }
    }
}

impl State {
    /// Claims are kept as counters (named `alert:…`, never a budget's `rule:…`) expiring at
    /// their window's end, so the counters' sweep forgets them too.
    fn claim_thresholds(&mut self, checks: &[ThresholdCheck], now: i128) -> Vec<ThresholdClaimed> {
        self.sweep(now);
        let mut won = Vec::new();
        for (index, check) in checks.iter().enumerate() {
            let held = self
                .counters
                .get(&check.counter)
                .map_or(0, |counter| counter.used.saturating_add(counter.reserved));
            for threshold in check.reached(held) {
                let claim = self.counters.entry(check.claim_key(threshold)).or_default();
                if claim.used > 0 && claim.expires > now {
                    continue;
                }
                *claim = Counter {
                    used: 1,
                    reserved: 0,
                    expires: nanos(check.window_end),
                };
                won.push(ThresholdClaimed {
                    check: index,
                    threshold,
                    held,
                });
            }
        }
        won
    }
}

impl MemoryStore {
    fn lock(&self) -> Result<std::sync::MutexGuard<'_, State>, StoreError> {
        self.state
            .lock()
            .map_err(|_| StoreError("the in-process store's lock was poisoned".into()))
    }

    /// What a counter holds, used and reserved; for tests and metrics.
    pub fn counter(&self, name: &str) -> Option<(u64, u64)> {
        let state = self.lock().ok()?;
        state
            .counters
            .get(name)
            .map(|counter| (counter.used, counter.reserved))
    }
}

impl LimitStore for MemoryStore {
    fn admit_and_reserve<'a>(
        &'a self,
        hits: &'a [RateHit],
        id: &'a ReservationId,
        lines: &'a [BudgetLine],
        now: Timestamp,
    ) -> StoreResult<'a, Admission> {
        Box::pin(async move { Ok(self.lock()?.admit_and_reserve(hits, id, lines, nanos(now))) })
    }

    fn settle<'a>(&'a self, id: &'a ReservationId, used: &'a [u64]) -> StoreResult<'a, ()> {
        Box::pin(async move {
            self.lock()?.finish(id, Some(used));
            Ok(())
        })
    }

    fn release<'a>(&'a self, id: &'a ReservationId) -> StoreResult<'a, ()> {
        Box::pin(async move {
            self.lock()?.finish(id, None);
            Ok(())
        })
    }

    fn claim_thresholds<'a>(
        &'a self,
        checks: &'a [ThresholdCheck],
        now: Timestamp,
    ) -> StoreResult<'a, Vec<ThresholdClaimed>> {
        Box::pin(async move { Ok(self.lock()?.claim_thresholds(checks, nanos(now))) })
    }

    fn open_reservations(&self) -> StoreResult<'_, u64> {
        Box::pin(async move { Ok(self.lock()?.reservations.len() as u64) })
    }

    fn meter<'a>(&'a self, entry: &'a MeterEntry) -> StoreResult<'a, ()> {
        Box::pin(async move {
            let mut state = self.lock()?;
            let meter = state
                .meters
                .entry(entry.month.clone())
                .or_default()
                .entry(entry.workspace.clone())
                .or_insert_with(|| Meter {
                    workspace: entry.workspace.clone(),
                    month: entry.month.clone(),
                    ..Meter::default()
                });
            meter.total.add(entry);
            meter
                .models
                .entry(entry.model.clone())
                .or_default()
                .add(entry);
            let day = meter.days.entry(entry.day.clone()).or_default();
            *day = day.saturating_add(entry.cost_micros);
            Ok(())
        })
    }

    fn usage<'a>(
        &'a self,
        counters: &'a [UsageCounter],
        now: Timestamp,
    ) -> StoreResult<'a, Vec<u64>> {
        Box::pin(async move { self.read_usage(counters, nanos(now)) })
    }

    fn meters<'a>(&'a self, month: &'a str) -> StoreResult<'a, Vec<Meter>> {
        Box::pin(async move {
            let state = self.lock()?;
            Ok(state
                .meters
                .get(month)
                .map(|workspaces| workspaces.values().cloned().collect())
                .unwrap_or_default())
        })
    }
}

impl MemoryStore {
    fn read_usage(&self, counters: &[UsageCounter], now: i128) -> Result<Vec<u64>, StoreError> {
        let state = self.lock()?;
        Ok(counters
            .iter()
            .map(|counter| {
                if counter.rate {
                    state.rates.get(&counter.key).map_or(0, |times| {
                        times.iter().filter(|&&t| t > now - MINUTE_NANOS).count() as u64
                    })
                } else {
                    state
                        .counters
                        .get(&counter.key)
                        .map_or(0, |held| held.used.saturating_add(held.reserved))
                }
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    /// The id of a request with no budget lines: nothing is reserved under it.
    fn rates_only() -> ReservationId {
        ReservationId("rates-only".into())
    }

    fn hit(key: &str, per_minute: u32) -> RateHit {
        RateHit {
            rule: key.into(),
            key: key.into(),
            per_minute,
        }
    }

    #[tokio::test]
    async fn a_rate_admits_its_limit_per_rolling_minute() {
        let store = MemoryStore::default();
        let hits = [hit("rpm:key:a", 2), hit("rpm:workspace:w", 100)];
        let t0 = at("2026-11-26T10:00:00Z");
        assert_eq!(
            store
                .admit_and_reserve(&hits, &rates_only(), &[], t0)
                .await
                .unwrap(),
            Admission::Admitted
        );
        let t1 = at("2026-11-26T10:00:20Z");
        assert_eq!(
            store
                .admit_and_reserve(&hits, &rates_only(), &[], t1)
                .await
                .unwrap(),
            Admission::Admitted
        );
        let t2 = at("2026-11-26T10:00:30Z");
        assert_eq!(
            store
                .admit_and_reserve(&hits, &rates_only(), &[], t2)
                .await
                .unwrap(),
            Admission::RateLimited {
                index: 0,
                retry_after: Duration::from_secs(30)
            }
        );
        // The refused request counted against neither rate: the workspace holds two.
        let other = [hit("rpm:workspace:w", 3)];
        assert_eq!(
            store
                .admit_and_reserve(&other, &rates_only(), &[], t2)
                .await
                .unwrap(),
            Admission::Admitted
        );
        assert_eq!(
            store
                .admit_and_reserve(&hits, &rates_only(), &[], at("2026-11-26T10:01:00.5Z"))
                .await
                .unwrap(),
            Admission::Admitted
        );
    }

    #[tokio::test]
    async fn reservations_are_all_or_nothing_and_settle_to_what_was_used() {
        let store = MemoryStore::default();
        let end = at("2026-11-27T00:00:00Z");
        let now = at("2026-11-26T23:00:00Z");
        let line = |counter: &str, limit, amount| BudgetLine {
            rule: counter.into(),
            counter: counter.into(),
            limit,
            amount,
            window_end: end,
        };
        let first = ReservationId("1".into());
        let lines = [line("a", 100, 80), line("b", 1000, 80)];
        assert_eq!(
            store
                .admit_and_reserve(&[], &first, &lines, now)
                .await
                .unwrap(),
            Admission::Admitted
        );
        let second = ReservationId("2".into());
        assert_eq!(
            store
                .admit_and_reserve(&[], &second, &lines, now)
                .await
                .unwrap(),
            Admission::BudgetRefused {
                index: 0,
                retry_after: Duration::from_secs(3600)
            }
        );
        assert_eq!(store.counter("b"), Some((0, 80)), "b was not touched");
        store.settle(&first, &[30, 30]).await.unwrap();
        assert_eq!(store.counter("a"), Some((30, 0)));
        store.settle(&first, &[30, 30]).await.unwrap();
        assert_eq!(
            store.counter("a"),
            Some((30, 0)),
            "settling twice counts once"
        );
        // 30 used: 80 more would pass 100, 70 fits exactly.
        assert!(matches!(
            store
                .admit_and_reserve(&[], &second, &lines[..1], now)
                .await
                .unwrap(),
            Admission::BudgetRefused { .. }
        ));
        let third = ReservationId("3".into());
        assert_eq!(
            store
                .admit_and_reserve(&[], &third, &[line("a", 100, 70)], now)
                .await
                .unwrap(),
            Admission::Admitted
        );
        store.release(&third).await.unwrap();
        assert_eq!(store.counter("a"), Some((30, 0)));
        assert_eq!(store.open_reservations().await.unwrap(), 0);
    }
}
