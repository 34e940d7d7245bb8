//! A fake Mistral Admin API on loopback: the sandbox org served over HTTP in the spec's JSON
//! shapes, with injectable latency and faults. The HTTP provider is tested and benchmarked
//! against it, so it keeps the same rules as the sandbox provider.
//!
//! [`serve`] is the front every request passes (counting, limits, faults), [`faults`] the
//! misbehaviour it can be told to show, and `routes` the Admin API's paths by resource kind.

mod faults;
mod routes;
mod serve;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tramontane::provider::sandbox::{SandboxOrg, noon};

use faults::ServerLimiter;
pub use faults::{Chaos, Fault, RetryAfter, ServerLimit};

pub struct FakeState {
    /// The server-side limit, if one is set, and how many requests it refused.
    server_limit: Mutex<Option<ServerLimiter>>,
    pub throttled: AtomicU64,
    in_flight: AtomicUsize,
    pub org: Mutex<SandboxOrg>,
    pub chaos: Mutex<Option<(Chaos, rand::rngs::StdRng)>>,
    pub lost: AtomicU64,
    pub key: String,
    pub latency: Duration,
    pub faults: Mutex<VecDeque<(String, Fault)>>,
    pub requests: AtomicU64,
    pub log: Mutex<Vec<String>>,
    pub now: String,
    pub secrets: SecretKnobs,
    /// Paging as a server may do it: the most items served on one page, whatever
    /// `page_size` or `limit` asked (the echoed `page_size` says what was served).
    pub page_clamp: Mutex<Option<usize>>,
    /// `GET /audit-logs?after=T&before=U` also serves entries of the instants T and U.
    pub audit_log_after_inclusive: AtomicBool,
}

/// Knobs for the moments a key's secret is in play: the create's answer, and the inference
/// API's `GET /v1/models`, which answers 200 for a live key's secret and 401 otherwise.
#[derive(Default)]
pub struct SecretKnobs {
    /// Creates answer without `key`: the key is made, its secret never shown.
    pub without_key: AtomicBool,
    /// Creates answer with a `key_id` of the wrong type beside the real `key`.
    pub malformed: AtomicBool,
    /// The secrets handed out in malformed answers, for tests to look for.
    pub handed_out: Mutex<Vec<String>>,
    /// `GET /v1/models` refuses every key, live or not.
    pub reject_all: AtomicBool,
}

pub struct FakeApi {
    pub url: String,
    pub state: Arc<FakeState>,
    _runtime: tokio::runtime::Runtime,
}

impl FakeApi {
    /// Serves `org` on a free loopback port from a runtime of its own, so tests that run
    /// the binary synchronously can use it.
    pub fn start(org: SandboxOrg, key: &str, latency: Duration, today: &str) -> FakeApi {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a runtime");
        let state = Arc::new(FakeState {
            server_limit: Mutex::new(None),
            throttled: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
            org: Mutex::new(org),
            chaos: Mutex::new(None),
            lost: AtomicU64::new(0),
            key: key.to_owned(),
            latency,
            faults: Mutex::new(VecDeque::new()),
            requests: AtomicU64::new(0),
            log: Mutex::new(Vec::new()),
            now: noon(today.parse().expect("a date")),
            secrets: SecretKnobs::default(),
            page_clamp: Mutex::new(None),
            audit_log_after_inclusive: AtomicBool::new(false),
        });
        let app = axum::Router::new()
            .fallback(serve::handle)
            .with_state(state.clone());
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind(SocketAddr::from((
                [127, 0, 0, 1],
                0,
            ))))
            .expect("a loopback port");
        let address = listener.local_addr().expect("an address");
        runtime.spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeApi {
            url: format!("http://{address}"),
            state,
            _runtime: runtime,
        }
    }

    /// Serves `org` at once, on [`TODAY`](crate::TODAY), accepting `key`.
    pub fn serving(org: SandboxOrg, key: &str) -> FakeApi {
        FakeApi::start(org, key, Duration::ZERO, crate::TODAY)
    }

    /// The key the server accepts.
    pub fn key(&self) -> &str {
        &self.state.key
    }

    pub fn fail_next(&self, path: &str, fault: Fault) {
        self.state
            .faults
            .lock()
            .unwrap()
            .push_back((path.to_owned(), fault));
    }

    pub fn requests(&self) -> u64 {
        self.state.requests.load(Ordering::SeqCst)
    }

    /// Enforces a server-side request limit from now on (`None`: no limit), its bucket full.
    pub fn set_server_limit(&self, limit: Option<ServerLimit>) {
        *self.state.server_limit.lock().unwrap() = limit.map(|limit| ServerLimiter {
            limit,
            tokens: limit.burst.max(1.0),
            refilled: Instant::now(),
        });
    }

    /// Requests the server-side limit refused with a 429.
    pub fn throttled(&self) -> u64 {
        self.state.throttled.load(Ordering::SeqCst)
    }

    /// Misbehaves at random from now on (`None`: behaves again).
    pub fn set_chaos(&self, chaos: Option<Chaos>) {
        use rand::SeedableRng;
        *self.state.chaos.lock().unwrap() =
            chaos.map(|chaos| (chaos, rand::rngs::StdRng::seed_from_u64(chaos.seed)));
    }

    /// Creates and deletes carried out whose answer the chaos dropped.
    pub fn lost_writes(&self) -> u64 {
        self.state.lost.load(Ordering::SeqCst)
    }

    pub fn log(&self) -> Vec<String> {
        self.state.log.lock().unwrap().clone()
    }

    pub fn org(&self) -> SandboxOrg {
        self.state.org.lock().unwrap().clone()
    }

    /// Key creates answer without `key` from now on (`false`: with it again).
    pub fn answer_creates_without_key(&self, on: bool) {
        self.state.secrets.without_key.store(on, Ordering::SeqCst);
    }

    /// Key creates answer with a body that does not parse, the secret inside.
    pub fn answer_creates_malformed(&self, on: bool) {
        self.state.secrets.malformed.store(on, Ordering::SeqCst);
    }

    /// The secrets the malformed answers carried.
    pub fn secrets_handed_out(&self) -> Vec<String> {
        self.state.secrets.handed_out.lock().unwrap().clone()
    }

    /// `GET /v1/models` refuses every key from now on: no new key can be shown to work.
    pub fn reject_keys_on_models(&self, on: bool) {
        self.state.secrets.reject_all.store(on, Ordering::SeqCst);
    }

    // ---- paging knobs

    /// `GET /audit-logs?after=T&before=U` includes entries at T and at U from now on
    /// (`false`: only those strictly between).
    pub fn audit_log_after_inclusive(&self, on: bool) {
        self.state
            .audit_log_after_inclusive
            .store(on, Ordering::SeqCst);
    }

    /// Serves at most `max` items a page from now on (`None`: as many as asked).
    pub fn clamp_pages(&self, max: Option<usize>) {
        *self.state.page_clamp.lock().unwrap() = max;
    }
}
