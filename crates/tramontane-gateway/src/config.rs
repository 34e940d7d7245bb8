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
    /// How long in-flight requests and streams may take to finish after SIGTERM.
    pub shutdown_grace: Duration,
    /// The UTC day policy validation and key expiry count from; today when unset.
    pub today: Option<jiff::civil::Date>,
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
            upstream,
            upstream_keys: None,
            policies,
            currency: tramontane::model::Currency::Usd,
            audit: AuditTarget::Stdout,
            store: StoreChoice::Memory,
            limits: RequestLimits::default(),
            models_refresh: Duration::from_secs(600),
            reload_poll: Duration::from_secs(30),
            shutdown_grace: Duration::from_secs(30),
            today: None,
        }
    }
}
