//! Stores for the tests: an in-process one, or a Redis one under a prefix of its own.

use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use tramontane_gateway::store::memory::MemoryStore;
use tramontane_gateway::store::redis::{RedisSettings, RedisStore};
use tramontane_gateway::store::{
    Admission, BudgetLine, LimitStore, RateHit, ReservationId, StoreResult,
};
use tramontane_testkit::redis_server::RedisServer;

/// A Redis the test may use: the shared one the environment names, or a private server
/// (kept alive as long as the test holds this).
pub struct TestRedis {
    pub url: String,
    pub prefix: String,
    pub server: Option<RedisServer>,
}

impl TestRedis {
    /// The environment's Redis when `TRAMONTANE_TEST_REDIS_URL` is set, else a private one.
    pub fn any() -> TestRedis {
        match std::env::var("TRAMONTANE_TEST_REDIS_URL") {
            Ok(url) if !url.is_empty() => TestRedis {
                url,
                prefix: unique_prefix(),
                server: None,
            },
            _ => TestRedis::private(),
        }
    }

    /// A private redis-server, for tests that stop, restart or flush it.
    pub fn private() -> TestRedis {
        let server = RedisServer::start();
        TestRedis {
            url: server.url().to_owned(),
            prefix: unique_prefix(),
            server: Some(server),
        }
    }

    pub fn settings(&self) -> RedisSettings {
        let mut settings = RedisSettings::new(self.url.clone());
        settings.prefix = self.prefix.clone();
        settings
    }

    pub fn store(&self) -> Arc<dyn LimitStore> {
        self.store_with(self.settings())
    }

    pub fn store_with(&self, settings: RedisSettings) -> Arc<dyn LimitStore> {
        Arc::new(RedisStore::new(&settings).expect("a valid Redis address"))
    }

    pub fn server(&mut self) -> &mut RedisServer {
        self.server
            .as_mut()
            .expect("a private redis-server (TestRedis::private)")
    }
}

fn unique_prefix() -> String {
    format!("tramontane-test:{}:", uuid::Uuid::new_v4().simple())
}

/// Which store a conformance test runs against.
pub enum Subject {
    Memory,
    Redis(TestRedis),
}

impl Subject {
    pub fn store(&self) -> Arc<dyn LimitStore> {
        match self {
            Subject::Memory => Arc::new(MemoryStore::default()),
            Subject::Redis(redis) => redis.store(),
        }
    }
}

/// The one request-path operation seen from one side at a time, so a test of rates names no
/// budget and a test of budgets no rate.
pub trait OneSide {
    /// A request with rates and no budget lines: nothing is reserved.
    fn admit<'a>(&'a self, hits: &'a [RateHit], now: Timestamp) -> StoreResult<'a, Admission>;

    /// A request with budget lines and no rates.
    fn reserve<'a>(
        &'a self,
        id: &'a ReservationId,
        lines: &'a [BudgetLine],
        now: Timestamp,
    ) -> StoreResult<'a, Admission>;
}

/// The id under which a request without budget lines reserves nothing.
static RATES_ONLY: std::sync::LazyLock<ReservationId> =
    std::sync::LazyLock::new(|| ReservationId("rates-only".into()));

impl<S: LimitStore + ?Sized> OneSide for S {
    fn admit<'a>(&'a self, hits: &'a [RateHit], now: Timestamp) -> StoreResult<'a, Admission> {
        self.admit_and_reserve(hits, &RATES_ONLY, &[], now)
    }

    fn reserve<'a>(
        &'a self,
        id: &'a ReservationId,
        lines: &'a [BudgetLine],
        now: Timestamp,
    ) -> StoreResult<'a, Admission> {
        self.admit_and_reserve(&[], id, lines, now)
    }
}

pub fn hit(key: &str, per_minute: u32) -> RateHit {
    RateHit {
        rule: key.into(),
        key: key.into(),
        per_minute,
    }
}

/// A line in a window that ends an hour from now.
pub fn line(counter: &str, limit: u64, amount: u64) -> BudgetLine {
    BudgetLine {
        rule: counter.into(),
        counter: counter.into(),
        limit,
        amount,
        window_end: Timestamp::now() + Duration::from_secs(3600),
    }
}

pub fn id(name: &str) -> ReservationId {
    ReservationId(name.into())
}

/// Polls `check` until it holds or `within` passes.
pub async fn eventually(within: Duration, mut check: impl AsyncFnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if check().await {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
