//! `--org`: which organization a command reads and changes. Always explicit: there is no
//! silent fallback to the sandbox.

use std::path::{Path, PathBuf};
use std::time::Duration;

use secrecy::SecretString;
use tramontane::org::{DEMO_PATH, lock_identity};

use super::CommandError;
use tramontane::model::{DesiredOrg, LiveOrg};
use tramontane::provider::mistral::MistralProvider;
use tramontane::provider::mistral::client::{AuthScheme, Client, ClientConfig, is_loopback};
use tramontane::provider::mistral::error::ApiError;
use tramontane::provider::mistral::transport::redact_userinfo;
use tramontane::provider::sandbox::{SandboxAdmin, SandboxProvider};
use tramontane::provider::{Operation, Outcome, Provider, ProviderError};
use tramontane::render::untrusted;
use tramontane::repository::RepositoryRoot;

#[derive(Debug, clap::Args)]
pub struct OrgArgs {
    /// The organization: `mistral` (the Admin API; needs MISTRAL_ADMIN_API_KEY),
    /// `sandbox:demo` (a demo org created on first use), or `sandbox:PATH` (a local org file,
    /// created on first use when missing or empty).
    #[arg(long, env = "TRAMONTANE_ORG")]
    pub org: Option<String>,

    /// The organization admin a new `sandbox:PATH` org is created with, when PATH is missing
    /// or empty. Without it, the policy's first `organization_admin` member (by email).
    #[arg(long, env = "TRAMONTANE_SANDBOX_ADMIN", value_name = "EMAIL")]
    pub sandbox_admin: Option<String>,

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

    /// Most Admin API requests in flight at once. tramontane starts here and, when the server
    /// answers 429, pauses, halves its pace and ramps back up, settling under the server's limit.
    #[arg(long, env = "TRAMONTANE_CONCURRENCY", default_value_t = 8)]
    pub concurrency: usize,

    /// A ceiling on Admin API requests per second, client-side (for a key shared with other
    /// tools). None by default: the pace adapts to the server's 429s.
    #[arg(long, env = "TRAMONTANE_RATE_LIMIT", value_name = "PER_SECOND")]
    pub rate_limit: Option<std::num::NonZeroU32>,

    /// Seconds before one Admin API request is abandoned (and retried when that is safe).
    #[arg(long, env = "TRAMONTANE_TIMEOUT", default_value_t = 30)]
    pub timeout: u64,

    /// The inference API's root, where each new key is shown to work (`GET /v1/models`)
    /// before the key it replaces is let go; the Admin API's root when not given.
    #[arg(long, env = "MISTRAL_INFERENCE_URL")]
    pub inference_url: Option<String>,

    /// Where apply records each key it creates until its secret is delivered; plan and apply
    /// read it to find keys an interrupted apply left without their secret. Keep it between
    /// CI runs (a cache) for that to reach across them. Relative to the policy repository.
    #[arg(
        long,
        env = "TRAMONTANE_JOURNAL",
        default_value = ".tramontane/journal.jsonl"
    )]
    pub journal: PathBuf,

    /// Most time one command spends on the Admin API, waits and retries included (`10m`,
    /// `90s`); a prompt or a secret's delivery does not count.
    #[arg(long, env = "TRAMONTANE_DEADLINE", default_value = "10m")]
    pub deadline: jiff::SignedDuration,

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
    pub fn lock_identity(&self, root: &RepositoryRoot) -> Option<String> {
        lock_identity(self.org.as_deref()?, &self.api_url, root)
    }

    /// The journal's file, under the policy repository unless absolute.
    pub fn journal_path(&self, root: &RepositoryRoot) -> PathBuf {
        root.resolve(&self.journal)
    }

    /// The keys the journal shows undelivered, marked on `live`.
    pub fn mark_undelivered(
        &self,
        live: &mut LiveOrg,
        root: &RepositoryRoot,
    ) -> Result<(), CommandError> {
        if let Some(identity) = self.lock_identity(root) {
            live.undelivered =
                tramontane::apply::journal::undelivered(&self.journal_path(root), &identity, live)?;
        }
        Ok(())
    }
}

/// The chosen organization's provider.
// One `Org` lives per command, so the variants' sizes cost nothing worth a box.
#[allow(clippy::large_enum_variant)]
pub enum Org {
    Mistral(MistralProvider),
    Sandbox(SandboxProvider),
}

/// Who a new sandbox org's admin is: `--sandbox-admin`, named as the policy names them, or
/// else the policy's first organization admin by email, so the first apply keeps them.
fn sandbox_admin(flag: Option<&str>, policy: Option<&DesiredOrg>) -> Option<SandboxAdmin> {
    let members = policy.map(|policy| &policy.members);
    if let Some(email) = flag.map(str::trim) {
        let named = members.and_then(|members| {
            members
                .iter()
                .find(|(listed, _)| listed.eq_ignore_ascii_case(email))
                .map(|(_, member)| member.name.clone())
        });
        let name = named.unwrap_or_else(|| email.split('@').next().unwrap_or(email).to_owned());
        return Some(SandboxAdmin {
            email: email.to_owned(),
            name,
        });
    }
    members?
        .iter()
        .find(|(_, member)| member.is_admin())
        .map(|(email, member)| SandboxAdmin {
            email: email.clone(),
            name: member.name.clone(),
        })
}

impl Org {
    /// Opens the organization `args` name. `policy`, when the command has one, says who a
    /// new sandbox org's admin is; the demo org lives under `root`.
    pub fn open(
        args: &OrgArgs,
        now: jiff::Timestamp,
        policy: Option<&DesiredOrg>,
        root: &RepositoryRoot,
    ) -> Result<(Org, String), CommandError> {
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
                message: format!(
                    "MISTRAL_API_URL `{}` is not a URL: {error}",
                    redact_userinfo(&args.api_url)
                ),
                help: Some("use a URL such as https://api.mistral.ai".into()),
            })?;
            let admin_root = base_url.clone();
            let mut config = ClientConfig::new(base_url, SecretString::from(key));
            config.auth = match args.auth {
                Auth::ApiKey => AuthScheme::ApiKeyHeader,
                Auth::Bearer => AuthScheme::Bearer,
            };
            config.concurrency = args.concurrency.max(1);
            config.max_requests_per_second = args.rate_limit;
            config.timeout = Duration::from_secs(args.timeout.max(1));
            config.backoff_base = Duration::from_millis(args.backoff_ms);
            config.deadline = args.deadline.unsigned_abs();
            // On a terminal each retry shows as it happens, so a slow failure is not silent;
            // in CI the final error says it all and the log stays short.
            if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
                config.on_retry = Some(std::sync::Arc::new(|notice| {
                    eprintln!("{notice}");
                }));
            }
            let client = Client::new(config).map_err(ProviderError::from)?;
            // New keys are shown to work against the inference API, which shares the Admin
            // API's root unless told otherwise; new keys travel to it, so the same rule holds.
            let inference = match &args.inference_url {
                Some(text) => {
                    let url = url::Url::parse(text).map_err(|error| CommandError::Usage {
                        message: format!(
                            "MISTRAL_INFERENCE_URL `{}` is not a URL: {error}",
                            redact_userinfo(text)
                        ),
                        help: Some("use a URL such as https://api.mistral.ai".into()),
                    })?;
                    if url.scheme() != "https" && !(url.scheme() == "http" && is_loopback(&url)) {
                        return Err(ProviderError::from(ApiError::InsecureUrl {
                            url: url.to_string(),
                        })
                        .into());
                    }
                    url
                }
                None => admin_root,
            };
            let provider = MistralProvider::new(client)
                .verifying_at(inference, Duration::from_millis(args.backoff_ms));
            return Ok((Org::Mistral(provider), "mistral".into()));
        }
        if let Some(path) = choice.strip_prefix("sandbox:") {
            let provider = if path == "demo" {
                SandboxProvider::open_demo(&root.resolve(Path::new(DEMO_PATH)), now)
                    .map_err(ProviderError::from)?
            } else {
                let admin = sandbox_admin(args.sandbox_admin.as_deref(), policy);
                let (provider, created) =
                    SandboxProvider::open_or_create(&PathBuf::from(path), now, admin.as_ref())
                        .map_err(ProviderError::from)?;
                if let (true, Some(admin)) = (created, admin) {
                    eprintln!(
                        "Created a sandbox organization at {path} with admin {} ({}), the default workspace and the platform's roles.",
                        untrusted::terminal(&admin.email),
                        untrusted::terminal(&admin.name)
                    );
                }
                provider
            };
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

    async fn verify_key(&self, secret: &SecretString) -> Result<(), ProviderError> {
        match self {
            Org::Mistral(provider) => provider.verify_key(secret).await,
            Org::Sandbox(provider) => provider.verify_key(secret).await,
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
