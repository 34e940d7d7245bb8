//! The load generator: HTTP/1.1 keep-alive connections on loopback, serial (one connection,
//! back to back), open loop at a constant arrival rate, closed loop as fast as possible, and
//! time to the first byte of a stream.
//!
//! The open loop corrects for coordinated omission: request `i` is due at `t0 + i / rate`
//! whatever happened before it, a thread of its own releases it at that time, and its
//! latency counts from that due time, so a request that waited for a free connection
//! behind a slow one is charged for the wait (as `oha -q N --latency-correction` or wrk2 do).
//! A path that falls far behind is not waited for without end: requests still unsent
//! [`DRAIN_LIMIT`] after the last was due are counted apart, as unsent, so a slow proxy's
//! row shows the requests it could not serve rather than a run of minutes.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::client::conn::http1::{self, SendRequest};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;

/// Longest wait for one answer before it counts as an error, so a stuck path ends the run.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How long after the last due time the open loop still sends what is queued.
pub const DRAIN_LIMIT: Duration = Duration::from_secs(5);

/// What one request is: where it goes and what it carries.
#[derive(Clone)]
pub struct Target {
    /// Connections are spread over these addresses in turn (replicas of one gateway).
    pub addresses: Vec<SocketAddr>,
    pub authorization: String,
    pub body: Bytes,
}

/// Latencies of the requests that succeeded, and how many did not.
#[derive(Clone, Default)]
pub struct Measured {
    pub latencies: Vec<Duration>,
    pub errors: usize,
    /// Open loop only: requests still unsent when the drain limit passed.
    pub unsent: usize,
    /// From the first due time to the last answer.
    pub elapsed: Duration,
}

impl Measured {
    fn merge(&mut self, other: Measured) {
        self.latencies.extend(other.latencies);
        self.errors += other.errors;
        self.unsent += other.unsent;
    }

    /// Requests that were sent, answered or not.
    pub fn sent(&self) -> usize {
        self.latencies.len() + self.errors
    }

    /// The latency below which `fraction` of the requests answered (nearest rank).
    pub fn percentile(&self, fraction: f64) -> Duration {
        if self.latencies.is_empty() {
            return Duration::ZERO;
        }
        let mut sorted = self.latencies.clone();
        sorted.sort_unstable();
        let rank = ((fraction * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
        sorted[rank - 1]
    }

    /// Answers per second over the run.
    pub fn rate(&self) -> f64 {
        self.latencies.len() as f64 / self.elapsed.as_secs_f64().max(f64::EPSILON)
    }
}

struct Connection {
    sender: SendRequest<Full<Bytes>>,
}

impl Connection {
    async fn open(address: SocketAddr) -> std::io::Result<Connection> {
        let stream = tokio::net::TcpStream::connect(address).await?;
        stream.set_nodelay(true)?;
        let (sender, connection) = http1::handshake(TokioIo::new(stream))
            .await
            .map_err(std::io::Error::other)?;
        tokio::spawn(connection);
        Ok(Connection { sender })
    }

    fn request(target: &Target) -> Request<Full<Bytes>> {
        Request::post("/v1/chat/completions")
            .header("host", "127.0.0.1")
            .header("authorization", &target.authorization)
            .header("content-type", "application/json")
            .body(Full::new(target.body.clone()))
            .expect("a request")
    }

    async fn send(&mut self, target: &Target) -> Result<Response<Incoming>, hyper::Error> {
        self.sender.ready().await?;
        self.sender.send_request(Self::request(target)).await
    }

    /// Sends one request and reads the whole answer; `Ok` only for a 200 within
    /// [`REQUEST_TIMEOUT`].
    async fn exchange(&mut self, target: &Target) -> Result<(), String> {
        tokio::time::timeout(REQUEST_TIMEOUT, self.exchange_unbounded(target))
            .await
            .map_err(|_| format!("no answer within {REQUEST_TIMEOUT:?}"))?
    }

    async fn exchange_unbounded(&mut self, target: &Target) -> Result<(), String> {
        let response = self.send(target).await.map_err(|e| e.to_string())?;
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?;
        if status.is_success() {
            Ok(())
        } else {
            Err(format!(
                "{status}: {}",
                String::from_utf8_lossy(&body.to_bytes())
            ))
        }
    }
}

/// One request, checked: the bench refuses to measure a path that does not answer 200.
pub async fn check(target: &Target) -> Result<(), String> {
    let mut connection = Connection::open(target.addresses[0])
        .await
        .map_err(|e| e.to_string())?;
    connection.exchange(target).await
}

/// One connection, each request sent when the previous one has answered.
pub async fn serial(target: &Target, requests: usize) -> Measured {
    let mut measured = Measured::default();
    let mut connection = Connection::open(target.addresses[0])
        .await
        .expect("a connection");
    let started = Instant::now();
    for _ in 0..requests {
        let sent = Instant::now();
        match connection.exchange(target).await {
            Ok(()) => measured.latencies.push(sent.elapsed()),
            Err(_) => {
                measured.errors += 1;
                connection = Connection::open(target.addresses[0])
                    .await
                    .expect("a connection");
            }
        }
    }
    measured.elapsed = started.elapsed();
    measured
}

/// `rate` requests per second for `duration`, over `connections` keep-alive connections.
pub async fn open_loop(
    target: &Target,
    rate: f64,
    duration: Duration,
    connections: usize,
) -> Measured {
    let total = (rate * duration.as_secs_f64()) as u64;
    let period = Duration::from_secs_f64(1.0 / rate);
    let (due_tx, due_rx) = tokio::sync::mpsc::unbounded_channel::<Instant>();
    let due_rx = Arc::new(tokio::sync::Mutex::new(due_rx));
    let mut opened = Vec::new();
    for c in 0..connections {
        let address = target.addresses[c % target.addresses.len()];
        opened.push((
            address,
            Connection::open(address).await.expect("a connection"),
        ));
    }
    let t0 = Instant::now() + Duration::from_millis(20);
    let drained_by = t0 + duration + DRAIN_LIMIT;
    // A thread rather than a tokio timer: tokio's timers tick in milliseconds, which would
    // release 10 requests at once at 10k/s and charge each up to a millisecond of lateness.
    let releaser = std::thread::spawn(move || {
        for i in 0..total {
            let due = t0 + period.mul_f64(i as f64);
            let now = Instant::now();
            if due > now {
                std::thread::sleep(due - now);
            }
            if due_tx.send(due).is_err() {
                break;
            }
        }
    });
    let workers: Vec<_> = opened
        .into_iter()
        .map(|(address, mut connection)| {
            let target = target.clone();
            let due_rx = due_rx.clone();
            tokio::spawn(async move {
                let mut measured = Measured::default();
                loop {
                    let due = due_rx.lock().await.recv().await;
                    let Some(due) = due else { break };
                    if Instant::now() > drained_by {
                        measured.unsent += 1;
                        continue;
                    }
                    match connection.exchange(&target).await {
                        Ok(()) => measured.latencies.push(due.elapsed()),
                        Err(_) => {
                            measured.errors += 1;
                            match Connection::open(address).await {
                                Ok(fresh) => connection = fresh,
                                Err(_) => break,
                            }
                        }
                    }
                }
                measured
            })
        })
        .collect();
    let mut measured = Measured::default();
    for worker in workers {
        measured.merge(worker.await.expect("a worker"));
    }
    releaser.join().expect("the releaser");
    measured.elapsed = t0.elapsed();
    measured
}

/// `connections` connections, each sending its next request as soon as the last answered,
/// for `duration`: the most the path sustains.
pub async fn closed_loop(target: &Target, duration: Duration, connections: usize) -> Measured {
    let started = Instant::now();
    let end = started + duration;
    let workers: Vec<_> = (0..connections)
        .map(|c| {
            let target = target.clone();
            let address = target.addresses[c % target.addresses.len()];
            tokio::spawn(async move {
                let mut measured = Measured::default();
                let mut connection = Connection::open(address).await.expect("a connection");
                while Instant::now() < end {
                    let sent = Instant::now();
                    match connection.exchange(&target).await {
                        Ok(()) => measured.latencies.push(sent.elapsed()),
                        Err(_) => {
                            measured.errors += 1;
                            connection = Connection::open(address).await.expect("a connection");
                        }
                    }
                }
                measured
            })
        })
        .collect();
    let mut measured = Measured::default();
    for worker in workers {
        measured.merge(worker.await.expect("a worker"));
    }
    measured.elapsed = started.elapsed();
    measured
}

/// One connection, one streamed request at a time: the time from sending to the first
/// byte of the body, the rest of the stream read before the next request.
pub async fn first_byte(target: &Target, requests: usize) -> Measured {
    let mut measured = Measured::default();
    let mut connection = Connection::open(target.addresses[0])
        .await
        .expect("a connection");
    let started = Instant::now();
    for _ in 0..requests {
        let sent = Instant::now();
        let Ok(response) = connection.send(target).await else {
            measured.errors += 1;
            connection = Connection::open(target.addresses[0])
                .await
                .expect("a connection");
            continue;
        };
        let ok = response.status().is_success();
        let mut body = response.into_body();
        let mut first = None;
        let mut failed = false;
        while let Some(frame) = body.frame().await {
            match frame {
                Ok(frame) => {
                    if first.is_none() && frame.data_ref().is_some_and(|d| !d.is_empty()) {
                        first = Some(sent.elapsed());
                    }
                }
                Err(_) => {
                    failed = true;
                    break;
                }
            }
        }
        match first {
            Some(latency) if ok && !failed => measured.latencies.push(latency),
            _ => measured.errors += 1,
        }
    }
    measured.elapsed = started.elapsed();
    measured
}
