//! Benchmark: the latency and the CPU `tramontane gateway serve` adds in front of Mistral's
//! inference API. The release binary, with its default flags, runs in front of a mock that
//! is a small process of its own, cheap enough not to be what is measured (mock.rs), with a
//! policy whose models list, rpm and daily token budget are all checked on every request
//! but never bind (process.rs). The same load goes straight to the mock and through the
//! gateway (and through a peer proxy, when one is asked: peer.rs), mode by mode in turn:
//!
//! - serial: one connection, back to back;
//! - open loop at 1k, 5k and 10k requests/s, latency counted from each request's due time
//!   (coordinated omission corrected, load.rs);
//! - the throughput ceiling: closed loop, as fast as 32 connections go;
//! - time to the first byte of a streamed answer.
//!
//! Each row has the latencies, the answers per second, the errors, how many chat
//! completions the mock answered during it (a proxy that errors or answers on its own
//! shows here), the difference to the straight path, and the CPU time per request of the
//! proxy and of the mock, from `/proc/PID/stat`, and the proxy's context switches per
//! request (procfs.rs). Memory is read idle after
//! start and, sampled, under load.
//!
//! `TRAMONTANE_BENCH_STORE=redis://...` (or `local`, for a private `redis-server`) adds
//! replicas sharing that store (`--store`) at 1k and 5k requests/s, one and three of them,
//! with the round trips to Redis per request (the scripts Redis was sent during the load,
//! from `INFO commandstats`, over the requests sent).
//!
//! The load generator, the mock and the proxies share the machine's cores: on two cores
//! the proxy competes with the load it is measured under.
//!
//! Run with `cargo bench --bench gateway` (cargo builds the binary with the optimized
//! bench profile); `benches/gateway/litellm.sh` runs it with LiteLLM beside.

mod bound;
mod load;
mod mock;
mod peer;
mod process;
mod procfs;
mod role;

use std::time::Duration;

use bytes::Bytes;

use load::{Measured, Target};
use mock::Mock;
use process::{GATEWAY_KEY, Gateway};
use procfs::Processes;

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
/// How long the processes are left idle to read what they spend doing nothing.
const IDLE_SPAN: Duration = Duration::from_secs(2);
/// How often memory is sampled under load.
const MEMORY_PERIOD: Duration = Duration::from_millis(20);

/// The targets of the issue, in µs.
const SERIAL_ADDED_P50: f64 = 100.0;
const RATE_5K_ADDED_P99: f64 = 1_000.0;
const CPU_IN_PROCESS: f64 = 50.0;
const CPU_REDIS: f64 = 80.0;
const IDLE_MIB: f64 = 30.0;

/// The name of the bare pass-through proxy's rows (bound.rs), what a proxy's CPU is read
/// against.
const BOUND: &str = "bare proxy";

const CHAT: &str = r#"{"model":"mistral-small-latest","messages":[{"role":"system","content":"You are a concise assistant."},{"role":"user","content":"Say hello to the benchmark in one short sentence."}],"max_tokens":64}"#;
const CHAT_STREAM: &str = r#"{"model":"mistral-small-latest","messages":[{"role":"system","content":"You are a concise assistant."},{"role":"user","content":"Say hello to the benchmark in one short sentence."}],"max_tokens":64,"stream":true}"#;

fn micros(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e6
}

/// One way to the mock: straight, or through a proxy whose processes are measured.
struct Path {
    name: String,
    target: Target,
    /// `None` for the straight path, which has no proxy.
    proxy: Option<Processes>,
    /// The CPU target per request, in µs, where the issue sets one.
    cpu_target: Option<f64>,
    /// The bench's own paths must answer its check; a peer that refuses is measured
    /// refusing, its errors in its rows.
    must_answer: bool,
}

#[derive(Clone, Copy)]
enum Mode {
    Serial,
    Rate(f64),
    Ceiling,
    FirstByte,
}

impl Mode {
    fn label(self) -> String {
        match self {
            Mode::Serial => "serial".into(),
            Mode::Rate(rate) => rate_label(rate),
            Mode::Ceiling => format!("ceiling, {CEILING_CONNECTIONS} conns"),
            Mode::FirstByte => "stream, first byte".into(),
        }
    }

    async fn run(self, target: &Target) -> Measured {
        match self {
            Mode::Serial => load::serial(target, SERIAL_REQUESTS).await,
            Mode::Rate(rate) => {
                load::open_loop(target, rate, RATE_DURATION, OPEN_CONNECTIONS).await
            }
            Mode::Ceiling => load::closed_loop(target, CEILING_DURATION, CEILING_CONNECTIONS).await,
            Mode::FirstByte => {
                let streamed = Target {
                    body: Bytes::from_static(CHAT_STREAM.as_bytes()),
                    ..target.clone()
                };
                load::first_byte(&streamed, STREAM_REQUESTS).await
            }
        }
    }

    /// The latency target a proxy's row is held to: (which, percentile, bound in µs).
    fn latency_target(self) -> Option<(&'static str, f64, f64)> {
        match self {
            Mode::Serial => Some(("added p50", 0.5, SERIAL_ADDED_P50)),
            Mode::Rate(5_000.0) => Some(("added p99", 0.99, RATE_5K_ADDED_P99)),
            _ => None,
        }
    }
}

/// One path's run of one mode.
#[derive(Clone)]
struct Sample {
    path: String,
    measured: Measured,
    /// Chat completions the mock answered during the run.
    mock_answered: u64,
    /// Per request sent, of the proxy and of the mock.
    proxy_cpu: Option<Duration>,
    /// The proxy's context switches per request sent: a thread put to sleep and woken
    /// again costs CPU that a busier proxy shares between requests.
    proxy_switches: Option<f64>,
    mock_cpu: Duration,
    cpu_target: Option<f64>,
}

/// Runs `mode` on `path`, reading the mock's count and both CPU times around it.
async fn sample(mode: Mode, path: &Path, mock: &Mock, mock_processes: &Processes) -> Sample {
    let proxy_before = path.proxy.as_ref().map(Processes::cpu_time);
    let switches_before = path.proxy.as_ref().map(Processes::context_switches);
    let mock_before = mock_processes.cpu_time();
    let answered_before = mock.answered();
    let measured = mode.run(&path.target).await;
    let answered = mock.answered() - answered_before;
    let sent = measured.sent().max(1) as f64;
    let per_request = |spent: Duration| spent.div_f64(sent);
    Sample {
        path: path.name.clone(),
        proxy_cpu: path
            .proxy
            .as_ref()
            .zip(proxy_before)
            .map(|(proxy, before)| per_request(proxy.cpu_time() - before)),
        proxy_switches: path
            .proxy
            .as_ref()
            .zip(switches_before)
            .map(|(proxy, before)| (proxy.context_switches() - before) as f64 / sent),
        mock_cpu: per_request(mock_processes.cpu_time() - mock_before),
        mock_answered: answered,
        measured,
        cpu_target: path.cpu_target,
    }
}

/// One mode, every path: the first sample is the straight one.
struct Row {
    mode: Mode,
    label: String,
    samples: Vec<Sample>,
    /// Round trips to the shared store per request through the gateway, where there is one.
    round_trips: Option<f64>,
}

fn verdict(name: &str, value: f64, bound: f64) -> String {
    let outcome = if value <= bound { "ok" } else { "MISSED" };
    format!("{name} <= {bound:.0} {outcome}")
}

impl Row {
    fn print(&self) {
        let direct = &self.samples[0];
        for (index, sample) in self.samples.iter().enumerate() {
            let m = &sample.measured;
            let label = if index == 0 { self.label.as_str() } else { "" };
            let mut notes = Vec::new();
            let (added_p50, added_p99) = if index == 0 {
                (String::new(), String::new())
            } else {
                let added = |fraction: f64| {
                    micros(m.percentile(fraction)) - micros(direct.measured.percentile(fraction))
                };
                if let Some((name, fraction, bound)) = self.mode.latency_target() {
                    notes.push(verdict(name, added(fraction), bound));
                }
                if let (Some(cpu), Some(bound)) = (sample.proxy_cpu, sample.cpu_target)
                    && !matches!(self.mode, Mode::FirstByte)
                {
                    notes.push(verdict("CPU", micros(cpu), bound));
                    // What this proxy spends above a proxy that does nothing, in the same row.
                    if let Some(floor) = self
                        .samples
                        .iter()
                        .find(|other| other.path == BOUND)
                        .and_then(|other| other.proxy_cpu)
                    {
                        notes.push(format!(
                            "{:+.0} over the bare proxy",
                            micros(cpu) - micros(floor)
                        ));
                    }
                }
                if m.unsent > 0 {
                    notes.push(format!("{} unsent (fell behind)", m.unsent));
                }
                // Every answer a proxy gave must have come from the mock.
                if (m.latencies.len() as u64) > sample.mock_answered {
                    notes.push(format!(
                        "NOT ROUTED: {} answers, {} reached the mock",
                        m.latencies.len(),
                        sample.mock_answered
                    ));
                }
                (format!("{:.0}", added(0.5)), format!("{:.0}", added(0.99)))
            };
            if let Mode::Rate(rate) = self.mode
                && index > 0
                && self.round_trips.is_some()
            {
                let keeps_up = m.errors == 0 && m.rate() >= 0.99 * rate;
                notes.push(if keeps_up { "keeps up" } else { "FELL BEHIND" }.into());
            }
            if let Some(trips) = self.round_trips.filter(|_| index > 0) {
                notes.push(format!("{trips:.2} store RTT/req"));
            }
            println!(
                "{:<20} {:<14} {:>7.0} {:>7.0} {:>7.0} {:>7.0} {:>6} {:>7} | {:>7} {:>7} | {:>7} {:>6.1} | {:>8} | {}",
                label,
                sample.path,
                micros(m.percentile(0.5)),
                micros(m.percentile(0.99)),
                micros(m.percentile(0.999)),
                m.rate(),
                m.errors,
                sample.mock_answered,
                added_p50,
                added_p99,
                sample
                    .proxy_cpu
                    .map_or_else(String::new, |cpu| format!("{:.1}", micros(cpu))),
                micros(sample.mock_cpu),
                sample
                    .proxy_switches
                    .map_or_else(String::new, |switches| format!("{switches:.1}")),
                notes.join("; ")
            );
        }
    }
}

fn header() {
    println!(
        "{:<20} {:<14} {:>7} {:>7} {:>7} {:>7} {:>6} {:>7} | {:>15} | {:>14} | {:>8} |",
        "", "", "", "", "", "", "", "mock", "added", "CPU µs/req", "switches"
    );
    println!(
        "{:<20} {:<14} {:>7} {:>7} {:>7} {:>7} {:>6} {:>7} | {:>7} {:>7} | {:>7} {:>6} | {:>8} | targets",
        "load (latency in µs)",
        "path",
        "p50",
        "p99",
        "p99.9",
        "req/s",
        "errors",
        "saw",
        "p50",
        "p99",
        "proxy",
        "mock",
        "/req",
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

fn chat(addresses: Vec<std::net::SocketAddr>, authorization: String) -> Target {
    Target {
        addresses,
        authorization,
        body: Bytes::from_static(CHAT.as_bytes()),
    }
}

/// Memory of one proxy: idle after start, and the peak sampled while the load ran.
struct Memory {
    name: String,
    idle: f64,
    peak: Option<procfs::PeakSampler>,
    target: Option<f64>,
}

/// CPU time per second each of `processes` spends over [`IDLE_SPAN`] with no load.
fn idle_cpu(processes: Vec<(String, Processes)>) -> Vec<(String, Duration)> {
    let before: Vec<Duration> = processes.iter().map(|(_, p)| p.cpu_time()).collect();
    std::thread::sleep(IDLE_SPAN);
    processes
        .into_iter()
        .zip(before)
        .map(|((name, p), before)| {
            (
                name,
                (p.cpu_time() - before).div_f64(IDLE_SPAN.as_secs_f64()),
            )
        })
        .collect()
}

fn main() {
    if std::env::var(role::ROLE_VARIABLE).as_deref() == Ok(mock::ROLE) {
        mock::serve();
        return;
    }
    if std::env::var(role::ROLE_VARIABLE).as_deref() == Ok(bound::ROLE) {
        bound::serve();
        return;
    }
    // The binary cargo built for this bench, with the same optimized profile: building it
    // again with `--release` would relink it under the other profile's fingerprint.
    let binary = std::path::Path::new(env!("CARGO_BIN_EXE_tramontane"));
    let store = std::env::var("TRAMONTANE_BENCH_STORE")
        .ok()
        .filter(|s| !s.is_empty());

    let load_before = load_average();
    let dir = tempfile::tempdir().unwrap();
    process::write_policy(dir.path());
    let mock = Mock::start();
    let mock_processes = Processes::new(vec![mock.pid()]);
    let gateway = Gateway::start(binary, dir.path(), mock.address, None, 0);
    let bound = bound::start(mock.address);
    let peer = match peer::from_env(mock.address) {
        Some(Ok(peer)) => Some(peer),
        Some(Err(error)) => {
            eprintln!("gateway bench: the peer did not start: {error}");
            std::process::exit(2);
        }
        None => None,
    };
    // Started means the policy is loaded and the model list read; give it a moment to settle.
    std::thread::sleep(Duration::from_millis(500));

    let mut paths = vec![
        Path {
            name: "mock (direct)".into(),
            target: chat(vec![mock.address], "Bearer bench-upstream-key".into()),
            proxy: None,
            cpu_target: None,
            must_answer: true,
        },
        Path {
            name: BOUND.into(),
            target: chat(vec![bound.address], "Bearer bench-upstream-key".into()),
            proxy: Some(Processes::new(vec![bound.pid()])),
            cpu_target: None,
            must_answer: true,
        },
        Path {
            name: "tramontane".into(),
            target: chat(vec![gateway.address], format!("Bearer {GATEWAY_KEY}")),
            proxy: Some(Processes::new(vec![gateway.pid()])),
            cpu_target: Some(CPU_IN_PROCESS),
            must_answer: true,
        },
    ];
    if let Some(peer) = &peer {
        paths.push(Path {
            name: peer.name.into(),
            target: chat(vec![peer.address], peer.authorization.clone()),
            proxy: Some(peer.processes.clone()),
            cpu_target: None,
            must_answer: false,
        });
    }
    let mut memory: Vec<Memory> = paths
        .iter()
        .filter_map(|path| {
            let proxy = path.proxy.as_ref()?;
            Some(Memory {
                name: path.name.clone(),
                idle: proxy.resident_mib(),
                peak: Some(proxy.sample_peak(MEMORY_PERIOD)),
                target: path.cpu_target.map(|_| IDLE_MIB),
            })
        })
        .collect();

    // What each process spends with no request at all (timers, housekeeping): at a low
    // rate it is a share of every request's CPU time.
    let idle_cpu = idle_cpu(
        paths
            .iter()
            .filter_map(|path| Some((path.name.clone(), path.proxy.clone()?)))
            .chain([("mock".to_owned(), mock_processes.clone())])
            .collect(),
    );

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut modes = vec![Mode::Serial];
    modes.extend(RATES.map(Mode::Rate));
    modes.extend([Mode::Ceiling, Mode::FirstByte]);
    let mut rows = Vec::new();
    let mut not_measured = Vec::new();
    runtime.block_on(async {
        let mut answering = Vec::new();
        for path in paths.drain(..) {
            step(&format!("checking and warming up {}", path.name));
            match load::check(&path.target).await {
                Ok(()) => {
                    load::serial(&path.target, WARM_UP_REQUESTS).await;
                    answering.push(path);
                }
                // A peer that refuses the one request is not timed at failing thousands:
                // the table says it was not measured, and why.
                Err(error) if !path.must_answer => not_measured.push((path.name, error)),
                Err(error) => panic!("{} refused the bench's request: {error}", path.name),
            }
        }
        paths = answering;
        for mode in &modes {
            step(&mode.label());
            let mut samples = Vec::new();
            for path in &paths {
                samples.push(sample(*mode, path, &mock, &mock_processes).await);
            }
            rows.push(Row {
                mode: *mode,
                label: mode.label(),
                samples,
                round_trips: None,
            });
        }
    });

    let flags = process::extra_flags();
    let flags = if flags.is_empty() {
        "default flags".to_owned()
    } else {
        format!("NOT the default flags: {}", flags.join(" "))
    };
    println!(
        "gateway: chat completions through `tramontane gateway serve` (in-process store, {flags}, audit to stdout into a file), through a bare pass-through proxy (the bound){} and straight to a mock process",
        if peer.is_some() {
            ", through a peer proxy"
        } else {
            ""
        }
    );
    header();
    for row in &rows {
        row.print();
    }
    for (name, error) in &not_measured {
        let error: String = error.chars().take(300).collect();
        println!("{name}: NOT MEASURED, it refused the bench's request: {error}");
    }
    for entry in &mut memory {
        let peak = entry
            .peak
            .take()
            .map_or(f64::NAN, procfs::PeakSampler::finish);
        let verdict = entry.target.map_or_else(String::new, |bound| {
            format!(" ({})", verdict("idle", entry.idle, bound))
        });
        println!(
            "{} memory (RSS, MiB): idle after start {:.1}{verdict}, peak under load {peak:.1}",
            entry.name, entry.idle
        );
    }
    println!(
        "CPU while idle, over {}s before the load (ms per second): {}",
        IDLE_SPAN.as_secs(),
        idle_cpu
            .iter()
            .map(|(name, per_second)| format!("{name} {:.1}", per_second.as_secs_f64() * 1e3))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!(
        "load average (1, 5, 15 min) before the run {load_before}, after {}",
        load_average()
    );
    println!(
        "open loop: requests due at t0 + i/rate over {OPEN_CONNECTIONS} keep-alive connections, latency from the due time, requests still unsent {}s after the last was due counted apart (unsent); {}s per rate; CPU per request sent, from /proc/PID/stat (utime + stime); the load generator, the mock and the proxies share this machine's {} cores",
        load::DRAIN_LIMIT.as_secs(),
        RATE_DURATION.as_secs(),
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    drop(peer);
    drop(gateway);
    drop(bound);

    if let Some(store) = store {
        // `local`: a private redis-server, nothing persisted, for as long as the bench runs.
        let local = (store == "local").then(tramontane_testkit::redis_server::RedisServer::start);
        let url = local.as_ref().map_or(store.as_str(), |server| server.url());
        shared_store(binary, url, &runtime, &mock, &mock_processes, &rows);
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
    mock: &Mock,
    mock_processes: &Processes,
    in_process: &[Row],
) {
    let dir = tempfile::tempdir().unwrap();
    process::write_policy(dir.path());
    let replicas: Vec<Gateway> = (0..REPLICAS)
        .map(|replica| Gateway::start(binary, dir.path(), mock.address, Some(store), replica))
        .collect();
    let scheme = store.split("://").next().unwrap_or("shared");
    println!();
    println!("gateway with the {scheme} store (--store), replicas sharing it");
    header();
    let direct = Path {
        name: "mock (direct)".into(),
        target: chat(vec![mock.address], "Bearer bench-upstream-key".into()),
        proxy: None,
        cpu_target: None,
        must_answer: true,
    };
    runtime.block_on(async {
        for count in [1, REPLICAS] {
            let through = Path {
                name: format!("tramontane x{count}"),
                target: chat(
                    replicas[..count].iter().map(|g| g.address).collect(),
                    format!("Bearer {GATEWAY_KEY}"),
                ),
                proxy: Some(Processes::new(
                    replicas[..count].iter().map(Gateway::pid).collect(),
                )),
                cpu_target: Some(CPU_REDIS),
                must_answer: true,
            };
            if let Err(error) = load::check(&through.target).await {
                panic!("the bench's request was refused by the {scheme} store gateway: {error}");
            }
            load::serial(&through.target, WARM_UP_REQUESTS).await;
            for rate in STORE_RATES {
                let mode = Mode::Rate(rate);
                let direct = sample(mode, &direct, mock, mock_processes).await;
                let before = round_trips_so_far(store);
                let gateway = sample(mode, &through, mock, mock_processes).await;
                // A settle follows its answer's last byte: let the last ones land.
                tokio::time::sleep(SETTLE_GRACE).await;
                let requests = gateway.measured.sent().max(1) as f64;
                let round_trips = match (before, round_trips_so_far(store)) {
                    (Some(before), Some(after)) => Some((after - before) as f64 / requests),
                    _ => None,
                };
                Row {
                    mode,
                    label: format!("{scheme} x{count}, {}", rate_label(rate)),
                    samples: vec![direct, gateway],
                    round_trips,
                }
                .print();
            }
        }
    });
    for row in in_process
        .iter()
        .filter(|row| matches!(row.mode, Mode::Rate(rate) if STORE_RATES.contains(&rate)))
    {
        Row {
            mode: row.mode,
            label: format!("in-process, {}", row.label),
            // The straight path and the gateway's, not the bound's or a peer's.
            samples: row
                .samples
                .iter()
                .enumerate()
                .filter(|(index, sample)| *index == 0 || sample.path == "tramontane")
                .map(|(_, sample)| sample.clone())
                .collect(),
            round_trips: None,
        }
        .print();
    }
}
