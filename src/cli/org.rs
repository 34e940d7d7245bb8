//! `--org`: which organization a command reads and changes. Always explicit: there is no
//! silent fallback to the sandbox.

use std::path::PathBuf;
use std::time::Duration;

use secrecy::SecretString;

use super::CommandError;
use crate::model::LiveOrg;
use crate::provider::mistral::MistralProvider;
use crate::provider::mistral::client::{AuthScheme, Client, ClientConfig};
use crate::provider::sandbox::SandboxProvider;
use crate::provider::{Operation, Outcome, Provider, ProviderError};

/// Where the demo org lives, relative to the directory tramontane runs in.
pub const DEMO_PATH: &str = ".tramontane/sandbox/demo.json";

#[derive(Debug, clap::Args)]
pub struct OrgArgs {
    /// The organization: `mistral` (the Admin API; needs MISTRAL_ADMIN_API_KEY),
    /// `sandbox:demo` (a demo org created on first use), or `sandbox:PATH` (a local org file).
    #[arg(long, env = "TRAMONTANE_ORG")]
    pub org: Option<String>,

    /// Admin API base URL; the spec's paths are appended. Plain http only to loopback.
    #[arg(
        long,
        env = "MISTRAL_API_URL",
        default_value = "https://api.mistral.ai",
        hide_default_value = false
    )]
    pub api_url: String,

    /// How the admin key is sent: the `x-api-key` header, as Mistral's admin guides do, or a bearer token.
    #[arg(long, env = "TRAMONTANE_AUTH", value_enum, default_value_t = Auth::ApiKey)]
    pub auth: Auth,

    /// Most Admin API requests in flight at once.
    #[arg(long, env = "TRAMONTANE_CONCURRENCY", default_value_t = 8)]
    pub concurrency: usize,

    /// Most Admin API requests per second, client-side.
    #[arg(long, env = "TRAMONTANE_RATE_LIMIT", default_value_t = 20)]
    pub rate_limit: u32,

    /// Seconds before one Admin API request is abandoned (and retried when that is safe).
    #[arg(long, env = "TRAMONTANE_TIMEOUT", default_value_t = 30)]
    pub timeout: u64,

    /// First retry delay in milliseconds; later ones double, with jitter.
    #[arg(
        long,
        env = "TRAMONTANE_BACKOFF_MS",
        default_value_t = 500,
        hide = true
    )]
    pub backoff_ms: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Auth {
    ApiKey,
    Bearer,
}

impl OrgArgs {
    /// What names the organization for the apply lock.
    pub fn lock_identity(&self) -> Option<String> {
        lock_identity(self.org.as_deref()?, &self.api_url)
    }
}

/// What names an organization for the apply lock: the API's address, or the sandbox's
/// file. Never the admin key.
pub fn lock_identity(choice: &str, api_url: &str) -> Option<String> {
    if choice == "mistral" {
        return Some(format!(
            "mistral {}",
            crate::apply::lock::api_identity(api_url)
        ));
    }
    let path = choice.strip_prefix("sandbox:")?;
    let path = if path == "demo" { DEMO_PATH } else { path };
    let absolute = std::path::absolute(path).unwrap_or_else(|_| PathBuf::from(path));
    Some(format!("sandbox {}", absolute.display()))
}

/// The chosen organization's provider.
pub enum Org {
    Mistral(MistralProvider),
    Sandbox(SandboxProvider),
}

impl Org {
    pub fn open(args: &OrgArgs, now: jiff::Timestamp) -> Result<(Org, String), CommandError> {
        let Some(choice) = args.org.as_deref() else {
            return Err(CommandError::Usage {
                message: "no organization chosen".into(),
                help: Some(
                    "pass `--org mistral` for the live org (with MISTRAL_ADMIN_API_KEY set), or `--org sandbox:demo` to try tramontane on a demo org".into(),
                ),
            });
        };
        if choice == "mistral" {
            let key = std::env::var("MISTRAL_ADMIN_API_KEY")
                .ok()
                .filter(|key| !key.trim().is_empty());
            let Some(key) = key else {
                return Err(CommandError::Usage {
                    message: "`--org mistral` needs an admin API key in MISTRAL_ADMIN_API_KEY".into(),
                    help: Some("create an admin key in the Mistral console (Admin → API keys) and export it".into()),
                });
            };
            let base_url = url::Url::parse(&args.api_url).map_err(|error| CommandError::Usage {
                message: format!("MISTRAL_API_URL `{}` is not a URL: {error}", args.api_url),
                help: Some("use a URL such as https://api.mistral.ai".into()),
            })?;
            let mut config = ClientConfig::new(base_url, SecretString::from(key));
            config.auth = match args.auth {
                Auth::ApiKey => AuthScheme::ApiKeyHeader,
                Auth::Bearer => AuthScheme::Bearer,
            };
            config.concurrency = args.concurrency.max(1);
            config.requests_per_second = args.rate_limit.max(1);
            config.timeout = Duration::from_secs(args.timeout.max(1));
            config.backoff_base = Duration::from_millis(args.backoff_ms);
            let client = Client::new(config).map_err(ProviderError::from)?;
            return Ok((Org::Mistral(MistralProvider::new(client)), "mistral".into()));
        }
        if let Some(path) = choice.strip_prefix("sandbox:") {
            let provider = if path == "demo" {
                SandboxProvider::open_demo(&PathBuf::from(DEMO_PATH), now)
            } else {
                SandboxProvider::open(&PathBuf::from(path), now)
            }
            .map_err(ProviderError::from)?;
            return Ok((Org::Sandbox(provider), choice.to_owned()));
        }
        Err(CommandError::Usage {
            message: format!("`{choice}` is not an organization"),
            help: Some("use `--org mistral`, `--org sandbox:demo` or `--org sandbox:PATH`".into()),
        })
    }
}

impl Provider for Org {
    async fn read(&self) -> Result<LiveOrg, ProviderError> {
        match self {
            Org::Mistral(provider) => provider.read().await,
            Org::Sandbox(provider) => provider.read().await,
        }
    }

    async fn perform(&self, operation: Operation) -> Result<Outcome, ProviderError> {
        match self {
            Org::Mistral(provider) => provider.perform(operation).await,
            Org::Sandbox(provider) => provider.perform(operation).await,
        }
    }

    fn requests(&self) -> u64 {
        match self {
            Org::Mistral(provider) => provider.requests(),
            Org::Sandbox(provider) => provider.requests(),
        }
    }
}

/// One runtime for a command: the HTTP provider is async, the command line is not.
pub fn runtime() -> Result<tokio::runtime::Runtime, CommandError> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(CommandError::Output)
}
