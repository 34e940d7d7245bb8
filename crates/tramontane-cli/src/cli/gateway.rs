//! `tramontane gateway serve`: the runtime gateway in front of Mistral's inference API.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use jiff::SignedDuration;
use jiff::civil::Date;
use tramontane_gateway::{AuditTarget, GatewayConfig, RequestLimits, StoreChoice, UpstreamChoice};

use super::{CommandError, ExitStatus, PoliciesArg};

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Address to listen on (`127.0.0.1:0` picks a free port, shown in the log).
    #[arg(long, default_value = "127.0.0.1:8080", env = "TRAMONTANE_LISTEN")]
    pub listen: SocketAddr,

    /// Address of the admin listener, which serves `/metrics`, `/readyz` and `/healthz`
    /// without a key: loopback by default; `off` serves none. Replicas sharing a host each
    /// need their own.
    #[arg(long, value_name = "ADDR|off", default_value = "127.0.0.1:9464")]
    pub admin_listen: String,

    /// Most connections the callers' listener holds open at once; past it, new connections
    /// wait to be accepted. Default: 4096, or 3/4 of the open-file limit when that is lower.
    #[arg(long, value_name = "N")]
    pub max_connections: Option<usize>,

    /// Longest a connection may stay open with no request in flight, after its first
    /// request (HTTP/1 keep-alive and HTTP/2 alike); before it, --client-timeout.
    #[arg(long, default_value = "60s")]
    pub idle_timeout: SignedDuration,

    /// Where admitted requests go: Mistral's API (`https://api.mistral.ai`), another server
    /// speaking it (plain http only on loopback), or `sandbox`, a built-in deterministic
    /// stand-in for trying the gateway without an account.
    #[arg(long, value_name = "URL|sandbox")]
    pub upstream: String,

    /// Directory with one file per policy key address (`workspace.W.key.K`) holding that
    /// Mistral key: the workspace's `gateway.upstream_key` for member keys, a service key's
    /// own key for service keys. Read again on every reload.
    #[arg(long, value_name = "DIR")]
    pub upstream_keys: Option<PathBuf>,

    #[command(flatten)]
    pub policies: PoliciesArg,

    /// The organization's billing currency: what prices and spend guards count in (Mistral's
    /// published list prices in it; a model with no price in it is refused under a spend
    /// guard). Negotiated prices and newer models go in the policy's `models:` section.
    #[arg(long, value_name = "USD|EUR", default_value = "USD")]
    pub currency: tramontane::model::Currency,

    /// Where the audit log goes: `stdout`, `off`, or a file to append to.
    #[arg(long, value_name = "stdout|off|FILE", default_value = "stdout")]
    pub audit: String,

    /// Largest request body accepted, in bytes.
    #[arg(long, default_value_t = RequestLimits::default().max_body_bytes)]
    pub max_body_bytes: usize,

    /// Most completions (`n`) one request may ask for.
    #[arg(long, default_value_t = RequestLimits::default().max_choices)]
    pub max_choices: u64,

    /// Time a client has to send its request headers and body.
    #[arg(long, default_value = "30s")]
    pub client_timeout: SignedDuration,

    /// Time the upstream has to send response headers.
    #[arg(long, default_value = "5m")]
    pub upstream_timeout: SignedDuration,

    /// Longest silence allowed in the middle of an upstream answer or stream.
    #[arg(long, default_value = "2m")]
    pub stream_idle_timeout: SignedDuration,

    /// How often the upstream's model list is read again.
    #[arg(long, default_value = "10m")]
    pub models_refresh: SignedDuration,

    /// How often the policy is re-read without a change notification (0s: never).
    #[arg(long, default_value = "30s")]
    pub reload_poll: SignedDuration,

    /// At most one read of an issuer's signing keys in this long; a token with a key the
    /// gateway does not hold asks for one.
    #[arg(long, default_value = "30s")]
    pub issuer_keys_refresh: SignedDuration,

    /// How long requests in flight may take to finish after SIGTERM or ctrl-c.
    #[arg(long, default_value = "30s")]
    pub shutdown_grace: SignedDuration,

    /// Threads that serve callers' connections, each connection on one thread; default one
    /// per CPU core (docs/performance.md).
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub worker_threads: Option<u16>,

    /// Where limits are counted: `memory` (this process; limits hold per replica) or
    /// `redis://HOST:PORT[/DB]` / `rediss://…` (shared by every replica).
    #[arg(
        long,
        value_name = "memory|redis://HOST:PORT[/DB]",
        default_value = "memory"
    )]
    pub store: String,

    #[command(flatten)]
    pub redis: super::store::RedisArgs,

    /// The longest one Redis operation may take before it counts as the store failing (the
    /// workspace's `store_failure` decides what the request gets then).
    #[arg(long, default_value = "250ms")]
    pub store_timeout: SignedDuration,

    /// How long a budget reservation outlives its gateway: a replica renews its
    /// reservations while their requests run; one that dies stops, and what it held comes
    /// back this long after.
    #[arg(long, default_value = "60s")]
    pub reservation_lease: SignedDuration,

    /// Check expiries against this day (UTC) instead of today.
    #[arg(long, env = "TRAMONTANE_TODAY", hide = true)]
    pub today: Option<Date>,
}

fn duration(flag: &str, value: SignedDuration) -> Result<Duration, CommandError> {
    Duration::try_from(value).map_err(|_| CommandError::Usage {
        message: format!("--{flag} cannot be negative"),
        help: Some("give a duration such as 30s or 5m".into()),
    })
}

fn config(args: &ServeArgs) -> Result<GatewayConfig, CommandError> {
    let upstream = if args.upstream == "sandbox" {
        UpstreamChoice::Sandbox
    } else {
        UpstreamChoice::Url(args.upstream.clone())
    };
    let mut config = GatewayConfig::new(args.listen, upstream, args.policies.dir.clone());
    config.admin_listen = match args.admin_listen.as_str() {
        "off" => None,
        address => Some(address.parse().map_err(|_| CommandError::Usage {
            message: format!("--admin-listen `{address}` is not an address"),
            help: Some("give HOST:PORT such as 127.0.0.1:9464, or `off`".into()),
        })?),
    };
    if let Some(max) = args.max_connections {
        if max == 0 {
            return Err(CommandError::Usage {
                message: "--max-connections must be at least 1".into(),
                help: Some(
                    "leave it out for the default, which follows the open-file limit".into(),
                ),
            });
        }
        config.connections.max_connections = max;
    }
    config.connections.idle_timeout =
        duration("idle-timeout", args.idle_timeout)?.max(Duration::from_millis(100));
    config.upstream_keys = args.upstream_keys.clone();
    config.currency = args.currency;
    config.audit = match args.audit.as_str() {
        "stdout" | "-" => AuditTarget::Stdout,
        "off" => AuditTarget::Off,
        path => AuditTarget::File(PathBuf::from(path)),
    };
    config.limits = RequestLimits {
        max_body_bytes: args.max_body_bytes,
        max_choices: args.max_choices,
        client_timeout: duration("client-timeout", args.client_timeout)?,
        upstream_timeout: duration("upstream-timeout", args.upstream_timeout)?,
        stream_idle_timeout: duration("stream-idle-timeout", args.stream_idle_timeout)?,
        ..RequestLimits::default()
    };
    config.models_refresh =
        duration("models-refresh", args.models_refresh)?.max(Duration::from_secs(1));
    config.reload_poll = duration("reload-poll", args.reload_poll)?;
    config.issuer_keys_refresh =
        duration("issuer-keys-refresh", args.issuer_keys_refresh)?.max(Duration::from_secs(1));
    config.shutdown_grace = duration("shutdown-grace", args.shutdown_grace)?;
    config.workers = args.worker_threads.map(usize::from);
    config.today = args.today;
    config.store = store(args)?;
    Ok(config)
}

fn store(args: &ServeArgs) -> Result<StoreChoice, CommandError> {
    if args.store == "memory" {
        return Ok(StoreChoice::Memory);
    }
    let mut settings = args.redis.settings(&args.store)?;
    settings.timeout = duration("store-timeout", args.store_timeout)?.max(Duration::from_millis(1));
    settings.lease =
        duration("reservation-lease", args.reservation_lease)?.max(Duration::from_millis(100));
    Ok(StoreChoice::Redis(settings))
}

/// Runs the gateway until SIGTERM or ctrl-c (`gateway serve`; the subcommand itself is
/// declared with `issue` and `revoke` in `gateway_keys`).
pub fn serve(args: &ServeArgs) -> Result<ExitStatus, CommandError> {
    let config = config(args)?;
    tramontane_gateway::telemetry::init_logging();
    // Callers' connections are served on the gateway's own threads (`--worker-threads`); this
    // runtime accepts them and runs the admin listener, reloads and other background work.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    runtime
        .block_on(tramontane_gateway::serve(config))
        .map_err(CommandError::from)?;
    Ok(ExitStatus::Success)
}

#[cfg(test)]
mod tests {
    use clap::Parser;
    use secrecy::ExposeSecret;

    use super::*;

    #[derive(clap::Parser)]
    struct Serve {
        #[command(flatten)]
        args: ServeArgs,
    }

    fn store_of(extra: &[&str]) -> Result<StoreChoice, CommandError> {
        let mut argv = vec!["serve", "--upstream", "sandbox"];
        argv.extend_from_slice(extra);
        store(&Serve::try_parse_from(argv).unwrap().args)
    }

    #[test]
    fn worker_threads_are_a_count_of_at_least_one() {
        let parse = |threads: &str| {
            Serve::try_parse_from([
                "serve",
                "--upstream",
                "sandbox",
                "--worker-threads",
                threads,
            ])
            .map(|serve| serve.args.worker_threads)
        };
        assert_eq!(parse("1").unwrap(), Some(1));
        assert!(parse("0").is_err());
        assert!(parse("-2").is_err());
        let default = Serve::try_parse_from(["serve", "--upstream", "sandbox"]).unwrap();
        assert_eq!(default.args.worker_threads, None);
    }

    fn usage(error: CommandError) -> (String, String) {
        match error {
            CommandError::Usage { message, help } => (message, help.unwrap_or_default()),
            other => panic!("not a usage error: {other}"),
        }
    }

    #[test]
    fn memory_is_the_default_store() {
        assert!(matches!(store_of(&[]).unwrap(), StoreChoice::Memory));
        assert!(matches!(
            store_of(&["--store", "memory"]).unwrap(),
            StoreChoice::Memory
        ));
    }

    #[test]
    fn a_redis_store_takes_its_password_from_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("redis-password");
        std::fs::write(&file, "hunter2\n").unwrap();
        let file = file.to_str().unwrap();
        let StoreChoice::Redis(settings) = store_of(&[
            "--store",
            "rediss://redis.internal:6380/1",
            "--store-password-file",
            file,
            "--store-prefix",
            "blue:",
            "--store-timeout",
            "400ms",
            "--reservation-lease",
            "2m",
        ])
        .unwrap() else {
            panic!("not a Redis store");
        };
        assert_eq!(settings.url, "rediss://redis.internal:6380/1");
        assert_eq!(
            settings
                .password
                .as_ref()
                .map(|p| p.expose_secret().to_owned()),
            Some("hunter2".to_owned())
        );
        assert_eq!(settings.prefix, "blue:");
        assert_eq!(settings.timeout, Duration::from_millis(400));
        assert_eq!(settings.lease, Duration::from_secs(120));
        assert!(!format!("{settings:?}").contains("hunter2"));
    }

    #[test]
    fn a_password_in_the_address_is_refused_without_echoing_it() {
        let (message, help) =
            usage(store_of(&["--store", "redis://:hunter2@redis.internal:6379"]).unwrap_err());
        assert!(message.starts_with("--store"), "{message}");
        assert!(!message.contains("hunter2") && !help.contains("hunter2"));
        assert!(help.contains("--store-password-file"), "{help}");
        assert!(help.contains("TRAMONTANE_STORE_PASSWORD"), "{help}");
    }

    #[test]
    fn a_wrong_address_names_the_flag() {
        for wrong in [
            "http://redis.internal:6379",
            "redis.internal:6379",
            "memroy",
        ] {
            let (message, help) = usage(store_of(&["--store", wrong]).unwrap_err());
            assert!(message.starts_with("--store"), "{message}");
            assert!(help.contains("redis://HOST:PORT"), "{help}");
        }
        let (message, _) = usage(
            store_of(&[
                "--store",
                "redis://127.0.0.1:6379",
                "--store-password-file",
                "/nonexistent/redis-password",
            ])
            .unwrap_err(),
        );
        assert!(message.contains("Redis password file"), "{message}");
    }
}
