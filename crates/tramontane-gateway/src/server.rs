//! The listening side: the callers' listener and the admin listener (`/metrics`, `/readyz`,
//! `/healthz`, `/usage`, which need no key), each an accept loop with TCP_NODELAY, HTTP/1.1 and HTTP/2,
//! and bounds that keep silent or idle sockets from holding the process's file descriptors:
//! a connection cap that makes accepting wait, a deadline for a connection's first request,
//! an idle timeout between requests, HTTP/2 keep-alive pings and a stream limit. Shutdown
//! stops accepting and lets requests and streams in flight finish.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::response::IntoResponse;
use axum::routing::get;
use http::header::CONTENT_TYPE;
use http::{Request, Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use tokio::net::TcpListener;
use tokio::sync::{Notify, Semaphore, watch};
use tower::ServiceExt;

use crate::proxy;
use crate::state::Gateway;
use crate::workers::Workers;

/// Connections the admin listener holds at once: a scraper and a probe or two.
const ADMIN_MAX_CONNECTIONS: usize = 32;
/// How often at most a listener logs that it cannot accept, or that its cap is reached.
const ACCEPT_LOG_PERIOD: Duration = Duration::from_secs(10);
/// How long accepting pauses after an error such as running out of file descriptors.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);
/// HTTP/2 keep-alive: a ping this often while a connection is open, and the connection is
/// closed when one is not answered within the timeout.
const H2_KEEP_ALIVE_INTERVAL: Duration = Duration::from_secs(30);
const H2_KEEP_ALIVE_TIMEOUT: Duration = Duration::from_secs(20);
/// Largest header block an HTTP/2 client may send.
const H2_MAX_HEADER_LIST_BYTES: u32 = 64 * 1024;

/// The callers' listener: `/healthz` for load balancers (it says only `ok`), everything else
/// through the proxy.
pub fn router(gateway: Arc<Gateway>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .fallback(proxy::handle)
        .with_state(gateway)
}

/// The admin listener: liveness, readiness and metrics, no key needed, so it listens on
/// loopback unless told otherwise.
pub fn admin_router(gateway: Arc<Gateway>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/usage", get(usage))
        .fallback(admin_not_found)
        .with_state(gateway)
}

async fn admin_not_found() -> (StatusCode, &'static str) {
    (
        StatusCode::NOT_FOUND,
        "not found: the admin listener serves /healthz, /readyz, /metrics and /usage\n",
    )
}

async fn healthz() -> &'static str {
    "ok\n"
}

/// Ready once a policy is in force and the limit store takes this gateway's credentials.
/// The store's state is reported, but a store that fails otherwise does not make the replica
/// unready: every replica shares it, so taking them all out of the
/// load balancer at once would refuse even the workspaces that chose `fail_open`, and a
/// `fail_closed` one gets its 503 per request anyway.
async fn readyz(State(gateway): State<Arc<Gateway>>) -> impl IntoResponse {
    if gateway.policy.load().is_none() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "no policy loaded\n".to_owned(),
        );
    }
    let store = match gateway.store.open_reservations().await {
        Ok(_) => "store: ok\n".to_owned(),
        // Unlike an outage, a password this replica lacks or has wrong is its own
        // misconfiguration: every request it takes would fail, so it is not ready.
        Err(error) if gateway.store.refuses_credentials() => {
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                format!("not ready: the limit store refuses this gateway's credentials: {error}\n"),
            );
        }
        Err(error) => format!("store: failing ({error})\n"),
    };
    let unpriced = gateway.unpriced_models();
    let prices = if unpriced.is_empty() {
        "prices: every model callers may use is priced\n".to_owned()
    } else {
        format!(
            "prices: no price for {} (refused under a spend guard)\n",
            unpriced.join(", ")
        )
    };
    // An issuer whose keys cannot be read refuses its workloads' tokens (fail closed); the
    // gateway still serves gateway keys and every other issuer, so it stays ready.
    let tokens = gateway.policy.load().as_ref().map(|p| p.tokens.clone());
    let issuers = match tokens.filter(|tokens| tokens.issuers().next().is_some()) {
        None => String::new(),
        Some(tokens) => {
            let without = tokens.warm().await;
            if without.is_empty() {
                "issuers: every issuer's signing keys are read\n".to_owned()
            } else {
                format!(
                    "issuers: no signing keys for {} (their tokens are refused)\n",
                    without.join(", ")
                )
            }
        }
    };
    (StatusCode::OK, format!("ready\n{store}{prices}{issuers}"))
}

async fn metrics(State(gateway): State<Arc<Gateway>>) -> impl IntoResponse {
    let open = match gateway.store.open_reservations().await {
        Ok(open) => open,
        Err(error) => {
            tracing::warn!(%error, "cannot count open reservations");
            0
        }
    };
    let policy = gateway.policy.load_full();
    gateway
        .metrics
        .issuers(policy.as_ref().map(|policy| &*policy.tokens));
    (
        [(
            CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        gateway.metrics.render(open),
    )
}

#[derive(serde::Deserialize)]
struct UsageQuery {
    /// Read the windows `now` falls in (RFC 3339) instead of the present's.
    now: Option<jiff::Timestamp>,
}

/// `tramontane usage --gateway`: the usage report (JSON, as `usage --format json` prints it)
/// of every rule of the policy in force, read from this gateway's store; the one way to read
/// an in-process store from outside the process.
async fn usage(
    State(gateway): State<Arc<Gateway>>,
    axum::extract::Query(query): axum::extract::Query<UsageQuery>,
) -> Response<Body> {
    let Some(policy) = gateway.policy.load_full() else {
        return (StatusCode::SERVICE_UNAVAILABLE, "no policy loaded\n").into_response();
    };
    let runtime = tramontane::runtime::Runtime::of(&policy.desired, &policy.catalog);
    let now = query.now.unwrap_or_else(jiff::Timestamp::now);
    match crate::ledger::read(gateway.store.as_ref(), &runtime, now).await {
        Ok(report) => (
            [(CONTENT_TYPE, "application/json")],
            tramontane::usage::render::json(&report),
        )
            .into_response(),
        Err(error) => (StatusCode::SERVICE_UNAVAILABLE, format!("{error}\n")).into_response(),
    }
}

/// The gateway's listeners, bound.
pub struct Listeners {
    pub main: TcpListener,
    pub admin: Option<TcpListener>,
}

/// Serves until `shutdown` completes, then waits up to the grace period for what is in
/// flight.
///
/// Callers' connections are served on `workers` (each connection on one thread, see
/// [`crate::workers`]); the admin listener's on the runtime this runs on.
pub async fn run(
    listeners: Listeners,
    gateway: Arc<Gateway>,
    workers: Arc<Workers>,
    shutdown: impl Future<Output = ()>,
) {
    let (stop, stopped) = watch::channel(false);
    let limits = &gateway.config.connections;
    let main = Listener {
        name: "callers",
        router: router(gateway.clone()),
        connections: Arc::new(Semaphore::new(limits.max_connections)),
        cap: limits.max_connections,
        builder: Arc::new(builder(&gateway)),
        first_request: gateway.config.limits.client_timeout,
        idle: limits.idle_timeout,
        workers: Some(workers),
    };
    let admin = listeners.admin.map(|listener| {
        let serving = Listener {
            name: "admin",
            router: admin_router(gateway.clone()),
            connections: Arc::new(Semaphore::new(ADMIN_MAX_CONNECTIONS)),
            cap: ADMIN_MAX_CONNECTIONS,
            workers: None,
            ..main.clone()
        };
        (
            serving.clone(),
            tokio::spawn(serving.accept(listener, stopped.clone())),
        )
    });
    let accepting = tokio::spawn(main.clone().accept(listeners.main, stopped));
    shutdown.await;
    let _ = stop.send(true);
    let _ = accepting.await;
    let mut draining = vec![main];
    if let Some((admin, accepting)) = admin {
        let _ = accepting.await;
        draining.push(admin);
    }
    let in_flight: usize = draining.iter().map(Listener::open).sum();
    tracing::info!(
        connections = in_flight,
        "shutting down: no new connections; waiting for requests in flight"
    );
    let drained = futures_util::future::join_all(draining.iter().map(Listener::drained));
    tokio::select! {
        _ = drained => tracing::info!("every request finished"),
        () = tokio::time::sleep(gateway.config.shutdown_grace) => {
            tracing::warn!(grace = ?gateway.config.shutdown_grace, "requests still in flight after the grace period are cut");
        }
    }
}

fn builder(gateway: &Gateway) -> Builder<TokioExecutor> {
    let limits = &gateway.config.connections;
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(gateway.config.limits.client_timeout)
        .keep_alive(true);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(H2_KEEP_ALIVE_INTERVAL)
        .keep_alive_timeout(H2_KEEP_ALIVE_TIMEOUT)
        .max_concurrent_streams(limits.max_concurrent_streams)
        .max_header_list_size(H2_MAX_HEADER_LIST_BYTES)
        .max_pending_accept_reset_streams(Some(limits.max_concurrent_streams as usize));
    builder
}

/// One listening socket and how its connections are served.
#[derive(Clone)]
struct Listener {
    name: &'static str,
    router: Router,
    /// One permit per connection: accepting waits for one, a connection holds it until it
    /// closes.
    connections: Arc<Semaphore>,
    cap: usize,
    builder: Arc<Builder<TokioExecutor>>,
    /// How long a new connection has to send its first request's headers.
    first_request: Duration,
    /// How long a connection may stay open with nothing in flight after a request.
    idle: Duration,
    /// Where its connections are served; on this runtime when `None`.
    workers: Option<Arc<Workers>>,
}

impl Listener {
    fn open(&self) -> usize {
        self.cap - self.connections.available_permits()
    }

    /// Completes once every connection has closed.
    async fn drained(&self) {
        let all = u32::try_from(self.cap).unwrap_or(u32::MAX);
        let _ = self.connections.acquire_many(all).await;
    }

    async fn accept(self, listener: TcpListener, mut stopped: watch::Receiver<bool>) {
        let accept_errors = BurstLog::default();
        let cap_reached = BurstLog::default();
        loop {
            let permit = match self.connections.clone().try_acquire_owned() {
                Ok(permit) => permit,
                Err(_) => {
                    // Full: stop accepting, so new connections wait in the kernel's backlog
                    // instead of failing, until one of ours closes.
                    if let Some(waited) = cap_reached.note() {
                        tracing::warn!(
                            listener = self.name,
                            max_connections = self.cap,
                            times_since_last_logged = waited,
                            help = "raise --max-connections (and the open-file limit) if this is real load",
                            "connection cap reached; new connections wait until one closes"
                        );
                    }
                    tokio::select! {
                        permit = self.connections.clone().acquire_owned() => match permit {
                            Ok(permit) => permit,
                            Err(_) => return,
                        },
                        _ = stopped.wait_for(|stop| *stop) => return,
                    }
                }
            };
            let accepted = tokio::select! {
                accepted = listener.accept() => accepted,
                _ = stopped.wait_for(|stop| *stop) => return,
            };
            let stream = match accepted {
                Ok((stream, _peer)) => stream,
                Err(error) => {
                    // Out of file descriptors and the like: every attempt fails the same way
                    // until something closes, so say it once per burst and pause.
                    if let Some(failed) = accept_errors.note() {
                        tracing::error!(
                            listener = self.name,
                            %error,
                            failures_since_last_logged = failed,
                            help = "lower --max-connections below the open-file limit (ulimit -n), or raise the limit",
                            "cannot accept connections"
                        );
                    }
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            let serving = self.clone();
            let stopped = stopped.clone();
            let Some(workers) = &self.workers else {
                tokio::spawn(async move {
                    serving.serve(stream, stopped).await;
                    drop(permit);
                });
                continue;
            };
            // Handed over as a plain socket: the worker's runtime registers it with its own
            // driver, so its readiness wakes that thread only.
            let stream = match stream.into_std() {
                Ok(stream) => stream,
                Err(error) => {
                    tracing::debug!(%error, "an accepted connection could not be handed over");
                    continue;
                }
            };
            let taken = workers.dispatch(move || async move {
                match tokio::net::TcpStream::from_std(stream) {
                    Ok(stream) => serving.serve(stream, stopped).await,
                    Err(error) => {
                        tracing::debug!(%error, "a handed-over connection could not be served")
                    }
                }
                drop(permit);
            });
            if !taken {
                // The workers are gone: the gateway is stopping.
                return;
            }
        }
    }

    /// Serves one connection until it ends, goes idle past its deadline, or the gateway
    /// shuts down.
    async fn serve(self, stream: tokio::net::TcpStream, mut stopped: watch::Receiver<bool>) {
        let activity = Arc::new(Activity::new());
        let service = {
            let router = self.router.clone();
            let activity = activity.clone();
            hyper::service::service_fn(move |request: Request<Incoming>| {
                let busy = activity.begin();
                let router = router.clone();
                async move {
                    let response = router
                        .oneshot(request.map(Body::new))
                        .await
                        .unwrap_or_else(|never: Infallible| match never {});
                    // The connection counts as busy until the answer's last byte is sent
                    // (a stream may run for minutes): the body holds the mark.
                    Ok::<Response<Body>, Infallible>(response.map(|body| {
                        Body::new(body.map_frame(move |frame| {
                            let _ = &busy;
                            frame
                        }))
                    }))
                }
            })
        };
        let connection = self
            .builder
            .serve_connection(TokioIo::new(stream), service)
            .into_owned();
        tokio::pin!(connection);
        let idle = activity.clone().idle(self.first_request, self.idle);
        tokio::pin!(idle);
        // Set once the connection was asked to close because it sat idle: if the peer does
        // not let it close (an HTTP/2 client that ignores GOAWAY), it is dropped.
        let cut = tokio::time::sleep(Duration::MAX / 4);
        tokio::pin!(cut);
        let (mut closing, mut stopping) = (false, false);
        loop {
            tokio::select! {
                ended = connection.as_mut() => {
                    if let Err(error) = ended {
                        tracing::debug!(%error, "connection ended with an error");
                    }
                    return;
                }
                () = &mut idle, if !closing => {
                    closing = true;
                    if !stopping {
                        connection.as_mut().graceful_shutdown();
                    }
                    cut.as_mut().reset(tokio::time::Instant::now() + self.first_request);
                }
                () = &mut cut, if closing => {
                    if !activity.busy() {
                        return;
                    }
                    cut.as_mut().reset(tokio::time::Instant::now() + self.first_request);
                }
                _ = stopped.wait_for(|stop| *stop), if !stopping => {
                    stopping = true;
                    if !closing {
                        connection.as_mut().graceful_shutdown();
                    }
                }
            }
        }
    }
}

/// What one connection is doing: requests in flight, and since when it has had none.
struct Activity {
    in_flight: AtomicUsize,
    served: AtomicUsize,
    idle_since: Mutex<Instant>,
    went_idle: Notify,
}

/// Marks a request in flight on its connection until dropped.
struct Busy(Arc<Activity>);

impl Drop for Busy {
    fn drop(&mut self) {
        if self.0.in_flight.fetch_sub(1, Ordering::AcqRel) == 1 {
            if let Ok(mut since) = self.0.idle_since.lock() {
                *since = Instant::now();
            }
            self.0.went_idle.notify_one();
        }
    }
}

impl Activity {
    fn new() -> Activity {
        Activity {
            in_flight: AtomicUsize::new(0),
            served: AtomicUsize::new(0),
            idle_since: Mutex::new(Instant::now()),
            went_idle: Notify::new(),
        }
    }

    fn begin(self: &Arc<Self>) -> Busy {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        self.served.fetch_add(1, Ordering::AcqRel);
        Busy(self.clone())
    }

    fn busy(&self) -> bool {
        self.in_flight.load(Ordering::Acquire) > 0
    }

    /// Completes once the connection has had nothing in flight for its deadline: `first`
    /// before its first request, `between` after one.
    async fn idle(self: Arc<Self>, first: Duration, between: Duration) {
        loop {
            if self.busy() {
                self.went_idle.notified().await;
                continue;
            }
            let since = self
                .idle_since
                .lock()
                .map_or_else(|_| Instant::now(), |since| *since);
            let timeout = if self.served.load(Ordering::Acquire) == 0 {
                first
            } else {
                between
            };
            let deadline = since + timeout;
            if Instant::now() >= deadline && !self.busy() {
                return;
            }
            tokio::select! {
                () = tokio::time::sleep_until(deadline.into()) => {}
                () = self.went_idle.notified() => {}
            }
        }
    }
}

/// A warning said once per burst: the first occurrence, then at most once per period with
/// how many happened since.
#[derive(Default)]
struct BurstLog {
    state: Mutex<(Option<Instant>, u64)>,
}

impl BurstLog {
    /// Counts one occurrence; returns how many to report when this one should be logged.
    fn note(&self) -> Option<u64> {
        self.note_at(Instant::now())
    }

    fn note_at(&self, now: Instant) -> Option<u64> {
        let mut state = self.state.lock().ok()?;
        let (last, count) = &mut *state;
        *count += 1;
        if last.is_some_and(|last| now.saturating_duration_since(last) < ACCEPT_LOG_PERIOD) {
            return None;
        }
        *last = Some(now);
        Some(std::mem::take(count))
    }
}

/// The address a listener ended up on (a port 0 picks one).
pub fn address_of(listener: &TcpListener) -> Option<SocketAddr> {
    listener.local_addr().ok()
}

/// Completes on SIGTERM or ctrl-c.
pub async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => tracing::info!("interrupted"),
        () = terminate => tracing::info!("SIGTERM received"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_is_logged_once_per_period_with_its_count() {
        let log = BurstLog::default();
        let start = Instant::now();
        assert_eq!(log.note_at(start), Some(1));
        for i in 1..200 {
            assert_eq!(log.note_at(start + Duration::from_millis(i * 40)), None);
        }
        assert_eq!(log.note_at(start + ACCEPT_LOG_PERIOD), Some(200));
    }

    #[tokio::test]
    async fn a_connection_is_idle_only_with_nothing_in_flight() {
        let activity = Arc::new(Activity::new());
        let busy = activity.begin();
        let idle = tokio::spawn(
            activity
                .clone()
                .idle(Duration::from_millis(50), Duration::from_millis(50)),
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(!idle.is_finished(), "idle while a request was in flight");
        drop(busy);
        tokio::time::timeout(Duration::from_secs(2), idle)
            .await
            .expect("idle once the request ended")
            .unwrap();
    }
}
