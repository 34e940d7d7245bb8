//! The shared limit store: every gateway replica counts in one Redis, so a limit holds for
//! all of them together.
//!
//! Each operation is one Lua script (`scripts/*.lua`), so each costs one round trip: a
//! request is admitted and reserved in one (`admit_and_reserve.lua`) and settled and
//! metered, or released, in another (`finish.lua`), plus a lease renewal every third of a lease while it
//! runs. Each script is atomic on the server and timed by Redis's own clock (`TIME`), so
//! replicas whose clocks drift still share one window. Every
//! key expires after its window (rates a minute after their last admission, budget counters
//! after their window ends and no lease can still settle into them), so nothing grows
//! without bound. A reservation is a lease its gateway renews while the request runs; a
//! gateway that dies stops renewing, and the next reservation on the same counter gives the
//! lapsed amount back. The scripts are sent by digest (`EVALSHA`) and loaded again when the
//! server answers `NOSCRIPT` (after a restart or `SCRIPT FLUSH`).
//!
//! Meters are one hash per workspace and month, `PREFIX meter:YYYY-MM:WORKSPACE` (fields
//! `requests`, `prompt_tokens`, `completion_tokens`, `cost_micros`, the same per model as
//! `model:MODEL:FIELD`, and the cost per day as `day:YYYY-MM-DD`), listed by a set per month, `PREFIX meters:YYYY-MM`; both expire
//! [`super::meter::METER_RETENTION`] after their last write (`meter.lua`, `meters.lua`).
//!
//! A standalone Redis (or a primary with replicas for failover): the budget scripts touch
//! keys they read from a reservation record, which Redis Cluster does not allow.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use jiff::Timestamp;
use redis::aio::ConnectionManager;
use redis::{Client, IntoConnectionInfo, Script};
use secrecy::ExposeSecret;

use super::meter::METER_RETENTION;
use super::{
    Admission, BudgetLine, LimitStore, Meter, MeterCounts, MeterEntry, MeterReadError, RateHit,
    ReservationId, StoreError, StoreResult, ThresholdCheck, ThresholdClaimed, UsageCounter,
};

mod settings;

pub use settings::{RedisAddressError, RedisSettings, check_address};

/// Amounts and limits above this are held at it: Lua counts in doubles, exact to 2^53.
const LARGEST_AMOUNT: u64 = 1 << 53;

struct Scripts {
    admit_and_reserve: Script,
    renew: Script,
    finish: Script,
    open: Script,
    meter: Script,
    meters: Script,
    usage: Script,
}

/// Kept beside [`Scripts`] rather than in it: a script added after the others, loaded the
/// same way (by digest, again on `NOSCRIPT`).
static CLAIM_THRESHOLDS: std::sync::LazyLock<Script> =
    std::sync::LazyLock::new(|| Script::new(include_str!("../scripts/claim_thresholds.lua")));

pub struct RedisStore {
    /// The multiplexed connection of every thread that is not a serving one.
    connection: ConnectionManager,
    /// One connection per serving thread ([`crate::workers`]), made on that thread's first
    /// operation so its driver runs there: a worker sharing another thread's connection
    /// wakes that thread for every script it sends.
    per_worker: Box<[OnceLock<ConnectionManager>]>,
    client: Client,
    config: redis::aio::ConnectionManagerConfig,
    /// Set when an operation is refused for want of the right password, cleared when one
    /// succeeds.
    refused_credentials: AtomicBool,
    scripts: Scripts,
    prefix: String,
    timeout: Duration,
    lease: Duration,
    /// The address as given (it carries no password: [`check_address`] refuses one).
    shown: String,
}

impl RedisStore {
    /// A store for `settings`. Nothing is connected yet: the first operation connects, and a
    /// Redis that is down now is a store failure per request (not a failure to start), until
    /// it answers.
    pub fn new(settings: &RedisSettings) -> Result<RedisStore, RedisAddressError> {
        check_address(&settings.url)?;
        let invalid = |error: redis::RedisError| RedisAddressError::Invalid {
            shown: settings.url.clone(),
            detail: error.to_string(),
        };
        let mut info = settings
            .url
            .as_str()
            .into_connection_info()
            .map_err(invalid)?;
        if let Some(password) = &settings.password {
            let redis = info
                .redis_settings()
                .clone()
                .set_password(password.expose_secret());
            info = info.set_redis_settings(redis);
        }
        let client = Client::open(info).map_err(invalid)?;
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(settings.timeout))
            .set_response_timeout(Some(settings.timeout))
            // Reconnect quickly and keep trying: a request fails fast meanwhile.
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(Duration::from_secs(1))
            .set_number_of_retries(2);
        // Made now, so a configuration the client refuses fails at start; the others are made
        // the same way.
        let connection = ConnectionManager::new_lazy_with_config(client.clone(), config.clone())
            .map_err(invalid)?;
        Ok(RedisStore {
            connection,
            per_worker: Box::new([]),
            client,
            config,
            refused_credentials: AtomicBool::new(false),
            scripts: Scripts {
                admit_and_reserve: Script::new(include_str!("../scripts/admit_and_reserve.lua")),
                renew: Script::new(include_str!("../scripts/renew.lua")),
                finish: Script::new(include_str!("../scripts/finish.lua")),
                open: Script::new(include_str!("../scripts/open.lua")),
                meter: Script::new(include_str!("../scripts/meter.lua")),
                meters: Script::new(include_str!("../scripts/meters.lua")),
                usage: Script::new(include_str!("../scripts/usage.lua")),
            },
            prefix: settings.prefix.clone(),
            timeout: settings.timeout,
            lease: settings.lease,
            shown: settings.url.clone(),
        })
    }

    fn key(&self, kind: &str, name: &str) -> String {
        format!("{}{kind}:{name}", self.prefix)
    }

    fn record(&self, id: &ReservationId) -> String {
        self.key("reservation", &id.0)
    }

    fn index(&self) -> String {
        format!("{}reservations", self.prefix)
    }

    /// The prefix of a month's meter keys: workspace W's is this followed by W.
    fn meter_prefix(&self, month: &str) -> String {
        self.key("meter", &format!("{month}:"))
    }

    fn meter_index(&self, month: &str) -> String {
        self.key("meters", month)
    }

    /// Where the store is, for messages: the address (never with a password) and prefix.
    pub fn describe(&self) -> String {
        format!("{} (prefix `{}`)", self.shown, self.prefix)
    }

    /// Every workspace's meter for `month` (`YYYY-MM`), or an error naming this store.
    pub async fn read_meters(&self, month: &str) -> Result<Vec<Meter>, MeterReadError> {
        self.meters(month).await.map_err(|source| MeterReadError {
            store: self.describe(),
            source,
        })
    }

    /// Runs a script within the operation timeout.
    async fn run<T: redis::FromRedisValue>(
        &self,
        operation: &'static str,
        invocation: redis::ScriptInvocation<'_>,
    ) -> Result<T, StoreError> {
        let mut connection = self.connection();
        match tokio::time::timeout(self.timeout, invocation.invoke_async(&mut connection)).await {
            Ok(Ok(value)) => {
                self.refused_credentials.store(false, Ordering::Relaxed);
                Ok(value)
            }
            Ok(Err(error)) if refuses_credentials(&error) => {
                self.refused_credentials.store(true, Ordering::Relaxed);
                Err(StoreError(format!(
                    "Redis {operation}: Redis wants a password this gateway was not given, or refuses the one it was ({error}); give it with --store-password-file or TRAMONTANE_STORE_PASSWORD"
                )))
            }
            Ok(Err(error)) => Err(StoreError(format!("Redis {operation}: {error}"))),
            Err(_) => Err(StoreError(format!(
                "Redis {operation}: no answer within {} ms",
                self.timeout.as_millis()
            ))),
        }
    }

    /// A connection of its own for each of `workers` serving threads.
    pub fn per_worker(mut self, workers: usize) -> RedisStore {
        self.per_worker = (0..workers).map(|_| OnceLock::new()).collect();
        self
    }

    /// The calling thread's connection.
    fn connection(&self) -> ConnectionManager {
        let Some(slot) = crate::workers::current().and_then(|w| self.per_worker.get(w)) else {
            return self.connection.clone();
        };
        if let Some(connection) = slot.get() {
            return connection.clone();
        }
        // The same configuration was accepted at start; should it not be now, share.
        match ConnectionManager::new_lazy_with_config(self.client.clone(), self.config.clone()) {
            Ok(made) => slot.get_or_init(|| made).clone(),
            Err(_) => self.connection.clone(),
        }
    }

    fn lease_millis(&self) -> u64 {
        u64::try_from(self.lease.as_millis())
            .unwrap_or(u64::MAX)
            .max(1)
    }
}

/// Whether Redis refused the connection's credentials. A client that has not authenticated
/// hears `NOAUTH` for a short command, but a long script call is cut off first with a bare
/// protocol error (`unauthenticated multibulk length`), which names no password at all.
fn refuses_credentials(error: &redis::RedisError) -> bool {
    if error.kind() == redis::ErrorKind::AuthenticationFailed
        || matches!(error.code(), Some("NOAUTH" | "WRONGPASS"))
    {
        return true;
    }
    let text = error.to_string();
    ["NOAUTH", "WRONGPASS", "unauthenticated"]
        .iter()
        .any(|marker| text.contains(marker))
}

fn index_of(value: i64, len: usize) -> Result<usize, StoreError> {
    usize::try_from(value - 1)
        .ok()
        .filter(|index| *index < len)
        .ok_or_else(|| StoreError(format!("Redis answered line {value} of {len}")))
}

impl LimitStore for RedisStore {
    fn admit_and_reserve<'a>(
        &'a self,
        hits: &'a [RateHit],
        id: &'a ReservationId,
        lines: &'a [BudgetLine],
        _now: Timestamp,
    ) -> StoreResult<'a, Admission> {
        Box::pin(async move {
            if hits.is_empty() && lines.is_empty() {
                return Ok(Admission::Admitted);
            }
            let mut invocation = self.scripts.admit_and_reserve.prepare_invoke();
            for hit in hits {
                invocation.key(self.key("rate", &hit.key));
            }
            for line in lines {
                let counter = self.key("budget", &line.counter);
                invocation.key(&counter);
                invocation.key(format!("{counter}:leases"));
                invocation.key(format!("{counter}:held"));
            }
            invocation.key(self.record(id)).key(self.index());
            invocation.arg(hits.len());
            for hit in hits {
                invocation.arg(hit.per_minute);
            }
            // A member unique to this admission, so two requests in one microsecond count
            // twice.
            invocation.arg(uuid::Uuid::new_v4().simple().to_string());
            invocation.arg(&id.0).arg(self.lease_millis());
            for line in lines {
                invocation
                    .arg(line.limit.min(LARGEST_AMOUNT))
                    .arg(line.amount.min(LARGEST_AMOUNT))
                    .arg(line.window_end.as_millisecond());
            }
            let (answer, index, wait): (i64, i64, i64) =
                self.run("admit and reserve", invocation).await?;
            match answer {
                0 => Ok(Admission::Admitted),
                1 => Ok(Admission::RateLimited {
                    index: index_of(index, hits.len())?,
                    retry_after: Duration::from_micros(u64::try_from(wait).unwrap_or(0)),
                }),
                2 => Ok(Admission::BudgetRefused {
                    index: index_of(index, lines.len())?,
                    retry_after: Duration::from_millis(u64::try_from(wait).unwrap_or(0)),
                }),
                -1 => Err(StoreError(format!(
                    "Redis admit and reserve: the reservation id {} is already taken",
                    id.0
                ))),
                other => Err(StoreError(format!(
                    "Redis admit and reserve answered {other}, which this gateway does not know"
                ))),
            }
        })
    }

    fn settle<'a>(&'a self, id: &'a ReservationId, used: &'a [u64]) -> StoreResult<'a, ()> {
        Box::pin(async move {
            let mut invocation = self.scripts.finish.prepare_invoke();
            invocation.key(self.record(id)).key(self.index());
            invocation.arg(&id.0).arg("settle");
            for amount in used {
                invocation.arg((*amount).min(LARGEST_AMOUNT));
            }
            let _: i64 = self.run("settle", invocation).await?;
            Ok(())
        })
    }

    fn settle_and_meter<'a>(
        &'a self,
        id: &'a ReservationId,
        used: &'a [u64],
        entry: &'a MeterEntry,
    ) -> StoreResult<'a, ()> {
        Box::pin(async move {
            let mut invocation = self.scripts.finish.prepare_invoke();
            invocation
                .key(self.record(id))
                .key(self.index())
                .key(format!(
                    "{}{}",
                    self.meter_prefix(&entry.month),
                    entry.workspace
                ))
                .key(self.meter_index(&entry.month));
            invocation
                .arg(&id.0)
                .arg("settle")
                .arg(&entry.workspace)
                .arg(&entry.model)
                .arg(METER_RETENTION.as_secs());
            for (_, amount) in MeterCounts::fields(entry) {
                // HINCRBY counts in signed 64 bits.
                invocation.arg(amount.min(i64::MAX as u64));
            }
            invocation.arg(&entry.day);
            for amount in used {
                invocation.arg((*amount).min(LARGEST_AMOUNT));
            }
            let _: i64 = self.run("settle and meter", invocation).await?;
            Ok(())
        })
    }

    fn release<'a>(&'a self, id: &'a ReservationId) -> StoreResult<'a, ()> {
        Box::pin(async move {
            let mut invocation = self.scripts.finish.prepare_invoke();
            invocation.key(self.record(id)).key(self.index());
            invocation.arg(&id.0).arg("release");
            let _: i64 = self.run("release", invocation).await?;
            Ok(())
        })
    }

    fn renew<'a>(&'a self, id: &'a ReservationId) -> StoreResult<'a, bool> {
        Box::pin(async move {
            let mut invocation = self.scripts.renew.prepare_invoke();
            invocation.key(self.record(id)).key(self.index());
            invocation.arg(&id.0).arg(self.lease_millis());
            let renewed: i64 = self.run("renew", invocation).await?;
            Ok(renewed == 1)
        })
    }

    fn lease(&self) -> Option<Duration> {
        Some(self.lease)
    }

    fn refuses_credentials(&self) -> bool {
        self.refused_credentials.load(Ordering::Relaxed)
    }

    fn claim_thresholds<'a>(
        &'a self,
        checks: &'a [ThresholdCheck],
        _now: Timestamp,
    ) -> StoreResult<'a, Vec<ThresholdClaimed>> {
        Box::pin(async move {
            if checks.iter().all(|check| check.thresholds.is_empty()) {
                return Ok(Vec::new());
            }
            let mut invocation = CLAIM_THRESHOLDS.prepare_invoke();
            for check in checks {
                invocation.key(self.key("budget", &check.counter));
                for &threshold in &check.thresholds {
                    invocation.key(format!("{}{}", self.prefix, check.claim_key(threshold)));
                }
                invocation
                    .arg(check.limit.min(LARGEST_AMOUNT))
                    .arg(check.window_end.as_millisecond())
                    .arg(check.thresholds.len());
                // One argument each: a `Vec<u8>` would go as one binary string.
                for &threshold in &check.thresholds {
                    invocation.arg(u32::from(threshold));
                }
            }
            let won: Vec<i64> = self.run("claim thresholds", invocation).await?;
            won.chunks_exact(3)
                .map(|claim| {
                    Ok(ThresholdClaimed {
                        check: index_of(claim[0], checks.len())?,
                        threshold: u8::try_from(claim[1]).map_err(|_| {
                            StoreError(format!("Redis claimed threshold {}", claim[1]))
                        })?,
                        held: u64::try_from(claim[2]).unwrap_or(0),
                    })
                })
                .collect()
        })
    }

    fn open_reservations(&self) -> StoreResult<'_, u64> {
        Box::pin(async move {
            let mut invocation = self.scripts.open.prepare_invoke();
            invocation.key(self.index());
            let open: u64 = self.run("count open reservations", invocation).await?;
            Ok(open)
        })
    }

    fn meter<'a>(&'a self, entry: &'a MeterEntry) -> StoreResult<'a, ()> {
        Box::pin(async move {
            let mut invocation = self.scripts.meter.prepare_invoke();
            invocation
                .key(format!(
                    "{}{}",
                    self.meter_prefix(&entry.month),
                    entry.workspace
                ))
                .key(self.meter_index(&entry.month));
            invocation
                .arg(&entry.workspace)
                .arg(&entry.model)
                .arg(METER_RETENTION.as_secs());
            for (_, amount) in MeterCounts::fields(entry) {
                // HINCRBY counts in signed 64 bits.
                invocation.arg(amount.min(i64::MAX as u64));
            }
            invocation.arg(&entry.day);
            let _: i64 = self.run("meter", invocation).await?;
            Ok(())
        })
    }

    fn usage<'a>(
        &'a self,
        counters: &'a [UsageCounter],
        _now: Timestamp,
    ) -> StoreResult<'a, Vec<u64>> {
        Box::pin(async move {
            if counters.is_empty() {
                return Ok(Vec::new());
            }
            let mut invocation = self.scripts.usage.prepare_invoke();
            for counter in counters {
                let kind = if counter.rate { "rate" } else { "budget" };
                invocation.key(self.key(kind, &counter.key)).arg(kind);
            }
            let used: Vec<i64> = self.run("read usage", invocation).await?;
            if used.len() != counters.len() {
                return Err(StoreError(format!(
                    "Redis read usage answered {} counts for {} counters",
                    used.len(),
                    counters.len()
                )));
            }
            Ok(used
                .into_iter()
                .map(|n| u64::try_from(n).unwrap_or(0))
                .collect())
        })
    }

    fn meters<'a>(&'a self, month: &'a str) -> StoreResult<'a, Vec<Meter>> {
        Box::pin(async move {
            let mut invocation = self.scripts.meters.prepare_invoke();
            invocation.key(self.meter_index(month));
            invocation.arg(self.meter_prefix(month));
            let answer: Vec<redis::Value> = self.run("read meters", invocation).await?;
            meters_of(month, answer)
        })
    }
}

/// The meters `meters.lua` answered: workspace names, each followed by its hash's fields and
/// values.
fn meters_of(month: &str, answer: Vec<redis::Value>) -> Result<Vec<Meter>, StoreError> {
    let unexpected = |what: &str| StoreError(format!("Redis read meters answered {what}"));
    let text = |value: &redis::Value| match value {
        redis::Value::BulkString(bytes) => {
            String::from_utf8(bytes.clone()).map_err(|_| unexpected("a name that is not UTF-8"))
        }
        redis::Value::SimpleString(text) => Ok(text.clone()),
        _ => Err(unexpected("something other than text")),
    };
    let mut meters = Vec::new();
    let mut items = answer.iter();
    while let Some(workspace) = items.next() {
        let Some(redis::Value::Array(hash)) = items.next() else {
            return Err(unexpected("a workspace without its meter"));
        };
        let mut meter = Meter {
            workspace: text(workspace)?,
            month: month.to_owned(),
            ..Meter::default()
        };
        for pair in hash.chunks(2) {
            let [field, value] = pair else {
                return Err(unexpected("a field without a value"));
            };
            let (field, value) = (text(field)?, text(value)?);
            let value: u64 = value
                .parse()
                .map_err(|_| unexpected(&format!("`{value}` for `{field}`, not a count")))?;
            if let Some(day) = field.strip_prefix("day:") {
                meter.days.insert(day.to_owned(), value);
                continue;
            }
            match field
                .strip_prefix("model:")
                .and_then(|rest| rest.rsplit_once(':'))
            {
                Some((model, name)) => {
                    meter
                        .models
                        .entry(model.to_owned())
                        .or_default()
                        .set(name, value);
                }
                None => {
                    meter.total.set(&field, value);
                }
            }
        }
        meters.push(meter);
    }
    meters.sort_by(|a, b| a.workspace.cmp(&b.workspace));
    Ok(meters)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_store_is_made_without_connecting() {
        // Nothing listens on port 1: making the store succeeds, an operation fails fast.
        let mut settings = RedisSettings::new("redis://127.0.0.1:1");
        settings.timeout = Duration::from_millis(100);
        let store = RedisStore::new(&settings).unwrap();
        let started = std::time::Instant::now();
        assert!(store.open_reservations().await.is_err());
        assert!(started.elapsed() < Duration::from_secs(2));
    }
}
