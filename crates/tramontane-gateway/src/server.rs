//! The listening side: accept loop with TCP_NODELAY and a header read timeout (a client that
//! trickles its headers is cut off), HTTP/1.1 and HTTP/2, health and metrics endpoints, and a
//! graceful shutdown that stops accepting and lets requests and streams in flight finish.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::response::IntoResponse;
use axum::routing::get;
use http::StatusCode;
use http::header::CONTENT_TYPE;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;

use crate::proxy;
use crate::state::Gateway;

pub fn router(gateway: Arc<Gateway>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .fallback(proxy::handle)
        .with_state(gateway)
}

async fn healthz() -> &'static str {
    "ok\n"
}

/// Ready once a policy is in force. The limit store's state is reported, but a failing store
/// does not make the replica unready: every replica shares it, so taking them all out of the
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
    (StatusCode::OK, format!("ready\n{store}{prices}"))
}

async fn metrics(State(gateway): State<Arc<Gateway>>) -> impl IntoResponse {
    let open = match gateway.store.open_reservations().await {
        Ok(open) => open,
        Err(error) => {
            tracing::warn!(%error, "cannot count open reservations");
            0
        }
    };
    (
        [(
            CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        gateway.metrics.render(open),
    )
}

/// Serves until `shutdown` completes, then waits up to the grace period for what is in
/// flight.
pub async fn run(listener: TcpListener, gateway: Arc<Gateway>, shutdown: impl Future<Output = ()>) {
    let service = TowerToHyperService::new(router(gateway.clone()));
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(gateway.config.limits.client_timeout)
        .keep_alive(true);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(Duration::from_secs(30));
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, _peer) = match accepted {
                    Ok(accepted) => accepted,
                    Err(error) => {
                        // Out of file descriptors and the like: wait rather than spin.
                        tracing::warn!(%error, "cannot accept a connection");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let connection = builder
                    .serve_connection(TokioIo::new(stream), service.clone())
                    .into_owned();
                let connection = graceful.watch(connection);
                tokio::spawn(async move {
                    if let Err(error) = connection.await {
                        tracing::debug!(%error, "connection ended with an error");
                    }
                });
            }
            () = &mut shutdown => break,
        }
    }
    drop(listener);
    let in_flight = graceful.count();
    tracing::info!(
        connections = in_flight,
        "shutting down: no new connections; waiting for requests in flight"
    );
    tokio::select! {
        () = graceful.shutdown() => tracing::info!("every request finished"),
        () = tokio::time::sleep(gateway.config.shutdown_grace) => {
            tracing::warn!(grace = ?gateway.config.shutdown_grace, "requests still in flight after the grace period are cut");
        }
    }
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
