//! What `tramontane gateway serve` is started with. The command line builds it; tests build
//! it directly.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Where requests go once admitted. Chosen explicitly, never by fallback.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UpstreamChoice {
    /// Mistral's inference API, or a server speaking it, at this base URL (`https://...`;
    /// plain `http://` only on loopback).
    Url(String),
    /// The built-in deterministic stand-in, for trying the gateway without an account.
    Sandbox,
}

/// Where limits are counted.
#[derive(Clone, Debug)]
pub enum StoreChoice {
    /// In this process: limits hold per replica.
    Memory,
    /// In a Redis every replica shares: limits hold for all of them together.
    Redis(crate::store::redis::RedisSettings),
}

/// Where audit lines go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AuditTarget {
    Stdout,
    /// Appended to, created if missing.
    File(PathBuf),
    Off,
}

/// The gateway's configuration.
#[derive(Clone, Debug)]
pub struct GatewayConfig {
    pub listen: SocketAddr,
    /// Where `/metrics`, `/readyz` and `/healthz` are served, apart from the callers'
    /// listener: they need no key, so they stay on loopback unless asked otherwise. `None`
    /// serves no admin listener.
    pub admin_listen: Option<SocketAddr>,
    /// Bounds on the connections each listener holds.
    pub connections: ConnectionLimits,
    pub upstream: UpstreamChoice,
    /// A directory with one file per policy key address (`workspace.W.key.K`) holding that
    /// Mistral key; required for a real upstream.
    pub upstream_keys: Option<PathBuf>,
    /// The policy directory; reloaded on change and on SIGHUP.
    pub policies: PathBuf,
    /// The currency prices and spend guards count in: the organization's billing currency.
    pub currency: tramontane::model::Currency,
    pub audit: AuditTarget,
    pub store: StoreChoice,
    pub limits: RequestLimits,
    /// How often the upstream's model list is read again.
    pub models_refresh: Duration,
    /// How often the policy files are re-read even without a change notification (on
    /// file systems where notifications are missed).
    pub reload_poll: Duration,
    /// At most one read of an issuer's signing keys in this long: a token naming a key the
    /// gateway does not hold (a rotation, or a forgery) asks for one.
    pub issuer_keys_refresh: Duration,
    /// How long in-flight requests and streams may take to finish after SIGTERM.
    pub shutdown_grace: Duration,
    /// Threads serving callers' connections ([`crate::workers`]); `None`: one per core.
    pub workers: Option<usize>,
    /// The UTC day policy validation and key expiry count from; today when unset.
    pub today: Option<jiff::civil::Date>,
}

/// The default admin address: loopback only, since what it serves needs no key.
pub const DEFAULT_ADMIN_LISTEN: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 9464);

/// Bounds on the connections a listener holds, so idle or silent sockets cannot take the
/// file descriptors real requests need.
#[derive(Clone, Debug)]
pub struct ConnectionLimits {
    /// Most connections open at once on the callers' listener; past it, accepting waits
    /// (new connections queue in the kernel's backlog) until one closes.
    pub max_connections: usize,
    /// Longest a connection may stay open with no request in flight once it has served
    /// one, over HTTP/1 keep-alive or HTTP/2. Before its first request a connection has the
    /// client timeout.
    pub idle_timeout: Duration,
    /// Most concurrent streams one HTTP/2 connection may open.
    pub max_concurrent_streams: u32,
}

impl ConnectionLimits {
    /// Connections kept free for everything else the process opens (policy and key files,
    /// the audit log, upstream and Redis connections) below its file descriptor limit.
    const RESERVED_DESCRIPTORS: u64 = 64;
    /// The ceiling of the default cap, however high the descriptor limit is.
    const DEFAULT_CAP: u64 = 4096;

    /// The default connection cap: 4096, or less when the process's open-file limit is
    /// lower, so the cap is reached before the descriptors run out.
    pub fn default_max_connections() -> usize {
        let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile)
            .current
            .unwrap_or(u64::MAX);
        let cap = limit
            .saturating_sub(Self::RESERVED_DESCRIPTORS)
            .saturating_mul(3)
            / 4;
        usize::try_from(cap.clamp(16, Self::DEFAULT_CAP)).unwrap_or(16)
    }
}

impl Default for ConnectionLimits {
    fn default() -> ConnectionLimits {
        ConnectionLimits {
            max_connections: ConnectionLimits::default_max_connections(),
            idle_timeout: Duration::from_secs(60),
            max_concurrent_streams: 128,
        }
    }
}

/// Bounds on what one request may take.
#[derive(Clone, Debug)]
pub struct RequestLimits {
    /// Largest request body read, in bytes.
    pub max_body_bytes: usize,
    /// Most completions (`n`) one request may ask for.
    pub max_choices: u64,
    /// Time allowed for a client to send its request headers and body.
    pub client_timeout: Duration,
    /// Time allowed to connect to the upstream.
    pub connect_timeout: Duration,
    /// Time allowed for the upstream's response headers.
    pub upstream_timeout: Duration,
    /// Longest silence between two chunks of an upstream body (a stalled stream).
    pub stream_idle_timeout: Duration,
}

impl Default for RequestLimits {
    fn default() -> RequestLimits {
        RequestLimits {
            max_body_bytes: 10 * 1024 * 1024,
            max_choices: 8,
            client_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            upstream_timeout: Duration::from_secs(300),
            stream_idle_timeout: Duration::from_secs(120),
        }
    }
}

impl GatewayConfig {
    /// A configuration with the defaults `serve` documents.
    pub fn new(listen: SocketAddr, upstream: UpstreamChoice, policies: PathBuf) -> GatewayConfig {
        GatewayConfig {
            listen,
            admin_listen: Some(DEFAULT_ADMIN_LISTEN),
            connections: ConnectionLimits::default(),
            upstream,
            upstream_keys: None,
            policies,
            currency: tramontane::model::Currency::Usd,
            audit: AuditTarget::Stdout,
            store: StoreChoice::Memory,
            limits: RequestLimits::default(),
            models_refresh: Duration::from_secs(600),
            reload_poll: Duration::from_secs(30),
            issuer_keys_refresh: crate::oidc::KeyCacheSettings::default().refresh_interval,
            shutdown_grace: Duration::from_secs(30),
            workers: None,
            today: None,
        }
    }
}
