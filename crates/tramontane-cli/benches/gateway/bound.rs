//! The bound a proxy's cost is read against: a pass-through proxy on the gateway's own stack
//! (hyper-util's server and pooled client, TCP_NODELAY, the request body read whole before
//! it is forwarded, the answer passed through frame by frame) that checks nothing, counts
//! nothing and writes nothing. Whatever it spends a request is what two loopback hops and
//! the runtime's wake-ups cost on this machine; what the gateway spends above it is its own.
//!
//! It runs as a process of its own, this bench binary started again with the role
//! [`ROLE`], and serves as the gateway does by default: one thread accepts, one thread per
//! core serves each connection to its end.

use std::convert::Infallible;
use std::net::SocketAddr;

use crate::role::RoleProcess;
use bytes::Bytes;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tramontane_gateway::workers::Workers;

pub const ROLE: &str = "bound";
/// Where the bound proxy forwards to, in its environment.
const UPSTREAM_VARIABLE: &str = "TRAMONTANE_BENCH_BOUND_UPSTREAM";

type Body = UnsyncBoxBody<Bytes, hyper::Error>;
type Upstream = Client<HttpConnector, Full<Bytes>>;

async fn forward(
    upstream: Upstream,
    base: &'static str,
    request: Request<Incoming>,
) -> Result<Response<Body>, Infallible> {
    let (parts, body) = request.into_parts();
    let Ok(body) = body.collect().await.map(|body| body.to_bytes()) else {
        return Ok(refusal(StatusCode::BAD_REQUEST));
    };
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let mut outgoing = Request::builder()
        .method(parts.method)
        .uri(format!("{base}{path}"));
    if let Some(headers) = outgoing.headers_mut() {
        *headers = parts.headers;
        headers.remove(hyper::header::HOST);
    }
    let Ok(outgoing) = outgoing.body(Full::new(body)) else {
        return Ok(refusal(StatusCode::BAD_REQUEST));
    };
    Ok(match upstream.request(outgoing).await {
        Ok(response) => response.map(BodyExt::boxed_unsync),
        Err(_) => refusal(StatusCode::BAD_GATEWAY),
    })
}

fn refusal(status: StatusCode) -> Response<Body> {
    let mut response = Response::new(
        Full::new(Bytes::new())
            .map_err(|never| match never {})
            .boxed_unsync(),
    );
    *response.status_mut() = status;
    response
}

thread_local! {
    /// Each serving thread's own pool of connections to the mock, as the gateway has.
    static UPSTREAM: Upstream = {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(64)
            .build(connector)
    };
}

/// The bound's role: forwards from a free loopback port to the mock, writes its address
/// on stdout, and exits when stdin closes. It serves the way the gateway does: one thread
/// accepts, and hands each connection to one of the gateway's own serving threads
/// (`tramontane_gateway::workers`, one per core), which serves it to its end with its own
/// upstream pool.
pub fn serve() {
    let upstream_address = std::env::var(UPSTREAM_VARIABLE).expect("the mock's address");
    let base: &'static str = format!("http://{upstream_address}").leak();
    let listener = crate::role::listen();
    let workers = Workers::start(Workers::default_count(None)).expect("serving threads");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::from_std(listener).expect("a listener");
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            let Ok(stream) = stream.into_std() else {
                continue;
            };
            workers.dispatch(move || async move {
                let Ok(stream) = tokio::net::TcpStream::from_std(stream) else {
                    return;
                };
                let service = hyper::service::service_fn(move |request| {
                    forward(UPSTREAM.with(Clone::clone), base, request)
                });
                let _ = auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
}

/// Starts the bound proxy's process in front of `upstream`.
pub fn start(upstream: SocketAddr) -> RoleProcess {
    RoleProcess::start(ROLE, &[(UPSTREAM_VARIABLE, upstream.to_string())])
}
