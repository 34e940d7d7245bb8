//! Benchmark: the latency `tramontane gateway serve` adds in front of Mistral's inference
//! API. The release binary, with its default flags, runs in front of a loopback mock fast
//! enough not to be what is measured (mock.rs), with a policy whose models list, rpm and
//! daily token budget are all checked on every request but never bind (process.rs). The
//! same load goes straight to the mock and through the gateway, mode by mode in turn, and
//! the table prints both and the difference beside the targets:
//!
//! - serial: one connection, back to back;
//! - open loop at 1k, 5k and 10k requests/s, latency counted from each request's due time
//!   (coordinated omission corrected, load.rs);
//! - the throughput ceiling: closed loop, as fast as 32 connections go;
//! - time to the first byte of a streamed answer;
//! - the gateway's resident memory idle after start and at its peak.
//!
//! With `TRAMONTANE_BENCH_STORE=redis://...` it also runs replicas sharing that store
//! (`--store`) at 1k and 5k requests/s, one and three of them, and counts the round trips
//! to Redis per request (the scripts Redis was sent during the load, from `INFO
//! commandstats`, over the requests sent).
//!
//! The load generator, the mock and the gateway share the machine's cores: on two cores
//! the gateway competes with the load it is measured under.
//!
//! Run with `cargo bench --bench gateway` (cargo builds the binary with the optimized
//! bench profile).

mod load;
mod mock;
mod process;

use std::time::Duration;

use bytes::Bytes;

use load::{Measured, Target};
use process::{GATEWAY_KEY, Gateway};

const SERIAL_REQUESTS: usize = 5_000;
const RATES: [f64; 3] = [1_000.0, 5_000.0, 10_000.0];
const STORE_RATES: [f64; 2] = [1_000.0, 5_000.0];
const RATE_DURATION: Duration = Duration::from_secs(4);
/// Connections the open loop spreads its requests over (oha's default is 50).
const OPEN_CONNECTIONS: usize = 32;
const CEILING_DURATION: Duration = Duration::from_secs(3);
const CEILING_CONNECTIONS: usize = 32;
const STREAM_REQUESTS: usize = 500;
const WARM_UP_REQUESTS: usize = 2_000;
const REPLICAS: usize = 3;
/// How long the store rows wait after their load for the last settles to reach the store.
const SETTLE_GRACE: Duration = Duration::from_millis(500);

const CHAT: &str = r#"{"model":"mistral-small-latest","messages":[{"role":"system","content":"You are a concise assistant."},{"role":"user","content":"Say hello to the benchmark in one short sentence."}],"max_tokens":64}"#;
const CHAT_STREAM: &str = r#"{"model":"mistral-small-latest","messages":[{"role":"system","content":"You are a concise assistant."},{"role":"user","content":"Say hello to the benchmark in one short sentence."}],"max_tokens":64,"stream":true}"#;

fn micros(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e6
}

/// One line of the table: the same load straight to the mock and through the gateway.
struct Row {
    load: String,
    direct: Measured,
    gateway: Measured,
    /// The target on added p99, in µs, where the issue sets one.
    target: Option<f64>,
    /// Round trips to the shared store per request through the gateway, where there is one.
    round_trips: Option<f64>,
}

impl Row {
    fn added(&self, fraction: f64) -> f64 {
        micros(self.gateway.percentile(fraction)) - micros(self.direct.percentile(fraction))
    }

    fn print(&self) {
        self.print_as(&self.load);
    }

    fn print_as(&self, label: &str) {
        let side = |m: &Measured| {
            format!(
                "{:>7.0} {:>7.0} {:>7.0} {:>7.0}",
                micros(m.percentile(0.5)),
                micros(m.percentile(0.99)),
                micros(m.percentile(0.999)),
                m.rate()
            )
        };
        let verdict = match self.target {
            Some(bound) if self.added(0.99) <= bound => format!("<= {bound:.0} ok"),
            Some(bound) => format!("<= {bound:.0} MISSED"),
            None => String::new(),
        };
        let round_trips = self
            .round_trips
            .map_or_else(String::new, |trips| format!("{trips:.2}"));
        println!(
            "{:<22} {} | {} {:>6} | {:>7.0} {:>7.0}  {:<16} {:>13}",
            label,
            side(&self.direct),
            side(&self.gateway),
            self.direct.errors + self.gateway.errors,
            self.added(0.5),
            self.added(0.99),
            verdict,
            round_trips
        );
    }
}

fn header() {
    println!(
        "{:<22} {:>31} | {:>31} {:>6} | {:>15}",
        "", "straight to the mock", "through the gateway", "", "added"
    );
    println!(
        "{:<22} {:>7} {:>7} {:>7} {:>7} | {:>7} {:>7} {:>7} {:>7} {:>6} | {:>7} {:>7}  target p99       store RTT/req",
        "load (latency in µs)",
        "p50",
        "p99",
        "p99.9",
        "req/s",
        "p50",
        "p99",
        "p99.9",
        "req/s",
        "errors",
        "p50",
        "p99",
    );
}

/// The machine's load average, to tell a quiet run from one that shared the cores.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|text| {
            text.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_else(|_| "unknown".into())
}

/// Progress on stderr, so a long run shows where it is.
fn step(what: &str) {
    eprintln!("gateway bench: {what}");
}

fn rate_label(rate: f64) -> String {
    format!("{:.0}k req/s", rate / 1000.0)
}

fn main() {
    // The binary cargo built for this bench, with the same optimized profile: building it
    // again with `--release` would relink it under the other profile's fingerprint.
    let binary = std::path::Path::new(env!("CARGO_BIN_EXE_tramontane"));
    let store = std::env::var("TRAMONTANE_BENCH_STORE")
        .ok()
        .filter(|s| !s.is_empty());

    let load_before = load_average();
    let dir = tempfile::tempdir().unwrap();
    process::write_policy(dir.path());
    let upstream = mock::start();
    let gateway = Gateway::start(binary, dir.path(), upstream, None, 0);
    // Started means the policy is loaded and the model list read; give it a moment to settle.
    std::thread::sleep(Duration::from_millis(500));
    let (idle, _) = gateway.memory();

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let direct = Target {
        addresses: vec![upstream],
        authorization: "Bearer bench-upstream-key".into(),
        body: Bytes::from_static(CHAT.as_bytes()),
    };
    let through = Target {
        addresses: vec![gateway.address],
        authorization: format!("Bearer {GATEWAY_KEY}"),
        body: Bytes::from_static(CHAT.as_bytes()),
    };
    let streamed = |target: &Target| Target {
        body: Bytes::from_static(CHAT_STREAM.as_bytes()),
        ..target.clone()
    };

    let mut rows = Vec::new();
    let mut ceiling = None;
    let mut first_byte = None;
    let mut cpu_per_request = Duration::ZERO;
    runtime.block_on(async {
        for target in [&direct, &through] {
            step("checking and warming up");
            if let Err(error) = load::check(target).await {
                panic!("the bench's request was refused: {error}");
            }
            load::serial(target, WARM_UP_REQUESTS).await;
        }
        step("serial");
        rows.push(Row {
            load: "serial".into(),
            direct: load::serial(&direct, SERIAL_REQUESTS).await,
            gateway: load::serial(&through, SERIAL_REQUESTS).await,
            target: Some(150.0),
            round_trips: None,
        });
        for rate in RATES {
            step(&rate_label(rate));
            rows.push(Row {
                load: rate_label(rate),
                direct: load::open_loop(&direct, rate, RATE_DURATION, OPEN_CONNECTIONS).await,
                gateway: load::open_loop(&through, rate, RATE_DURATION, OPEN_CONNECTIONS).await,
                target: (rate == 5_000.0).then_some(1_000.0),
                round_trips: None,
            });
        }
        step("throughput ceiling");
        let direct_ceiling =
            load::closed_loop(&direct, CEILING_DURATION, CEILING_CONNECTIONS).await;
        let cpu_before = gateway.cpu_time();
        let through_ceiling =
            load::closed_loop(&through, CEILING_DURATION, CEILING_CONNECTIONS).await;
        cpu_per_request = (gateway.cpu_time() - cpu_before)
            .div_f64(through_ceiling.latencies.len().max(1) as f64);
        ceiling = Some((direct_ceiling, through_ceiling));
        step("streaming, first byte");
        first_byte = Some(Row {
            load: "stream, first byte".into(),
            direct: load::first_byte(&streamed(&direct), STREAM_REQUESTS).await,
            gateway: load::first_byte(&streamed(&through), STREAM_REQUESTS).await,
            target: None,
            round_trips: None,
        });
    });
    let (after, peak) = gateway.memory();
    drop(gateway);

    println!(
        "gateway: chat completions through `tramontane gateway serve` (in-process store, default flags, audit to stdout into a file) vs straight to a loopback mock"
    );
    header();
    for row in &rows {
        row.print();
    }
    if let Some(row) = &first_byte {
        row.print();
    }
    if let Some((direct, gateway)) = &ceiling {
        println!(
            "throughput ceiling, closed loop over {CEILING_CONNECTIONS} connections: straight to the mock {:.0} req/s, through the gateway {:.0} req/s ({} errors), p50 {:.0} µs vs {:.0} µs",
            direct.rate(),
            gateway.rate(),
            direct.errors + gateway.errors,
            micros(direct.percentile(0.5)),
            micros(gateway.percentile(0.5)),
        );
        println!(
            "gateway CPU time per request at the ceiling (user + system, all its threads): {:.0} µs",
            micros(cpu_per_request)
        );
    }
    println!(
        "gateway memory (RSS): idle after start {idle:.1} MiB (target <= 30 MiB {}), after the load {after:.1} MiB, peak {peak:.1} MiB",
        if idle <= 30.0 { "ok" } else { "MISSED" }
    );
    println!(
        "load average (1, 5, 15 min) before the run {load_before}, after {}",
        load_average()
    );
    println!(
        "open loop: requests due at t0 + i/rate over {OPEN_CONNECTIONS} keep-alive connections, latency from the due time; {}s per rate; the load generator, the mock and the gateway share this machine's {} cores",
        RATE_DURATION.as_secs(),
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );

    if let Some(store) = store {
        shared_store(binary, &store, &runtime, &direct, &rows);
    }
}

/// Round trips the gateways have made to a Redis `store` so far: the scripts it was sent
/// (the store sends nothing else). `None` for another kind of store or one that does not
/// answer.
fn round_trips_so_far(store: &str) -> Option<u64> {
    let rest = store.strip_prefix("redis://")?;
    let address = rest.rsplit('@').next()?.split('/').next()?;
    tramontane_testkit::redis_server::scripts_sent(address).ok()
}

/// The same open loop against gateways sharing `store`: one, then several replicas with
/// the connections spread over them, beside the in-process rows.
fn shared_store(
    binary: &std::path::Path,
    store: &str,
    runtime: &tokio::runtime::Runtime,
    direct: &Target,
    in_process: &[Row],
) {
    let dir = tempfile::tempdir().unwrap();
    process::write_policy(dir.path());
    let upstream = mock::start();
    let replicas: Vec<Gateway> = (0..REPLICAS)
        .map(|replica| Gateway::start(binary, dir.path(), upstream, Some(store), replica))
        .collect();
    let scheme = store.split("://").next().unwrap_or("shared");
    println!();
    println!("gateway with the {scheme} store (--store), replicas sharing it");
    header();
    let direct = Target {
        addresses: vec![upstream],
        ..direct.clone()
    };
    runtime.block_on(async {
        for count in [1, REPLICAS] {
            let through = Target {
                addresses: replicas[..count].iter().map(|g| g.address).collect(),
                authorization: format!("Bearer {GATEWAY_KEY}"),
                body: Bytes::from_static(CHAT.as_bytes()),
            };
            if let Err(error) = load::check(&through).await {
                panic!("the bench's request was refused by the {scheme} store gateway: {error}");
            }
            load::serial(&through, WARM_UP_REQUESTS).await;
            for rate in STORE_RATES {
                let direct = load::open_loop(&direct, rate, RATE_DURATION, OPEN_CONNECTIONS).await;
                let before = round_trips_so_far(store);
                let gateway =
                    load::open_loop(&through, rate, RATE_DURATION, OPEN_CONNECTIONS).await;
                // A settle follows its answer's last byte: let the last ones land.
                tokio::time::sleep(SETTLE_GRACE).await;
                let requests = (gateway.latencies.len() + gateway.errors).max(1) as f64;
                let round_trips = match (before, round_trips_so_far(store)) {
                    (Some(before), Some(after)) => Some((after - before) as f64 / requests),
                    _ => None,
                };
                Row {
                    load: format!("{scheme} x{count}, {}", rate_label(rate)),
                    direct,
                    gateway,
                    target: (rate == 5_000.0).then_some(1_000.0),
                    round_trips,
                }
                .print();
            }
        }
    });
    for row in in_process
        .iter()
        .filter(|row| STORE_RATES.iter().any(|rate| row.load == rate_label(*rate)))
    {
        row.print_as(&format!("in-process, {}", row.load));
    }
}
