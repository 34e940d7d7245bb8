//! `--org` and the flags that go with it, turned into the library's [`OrgConfig`]. Always
//! explicit: there is no silent fallback to the sandbox.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use secrecy::SecretString;
use tramontane::apply::lock;
use tramontane::model::DesiredOrg;
use tramontane::org::{CreatedSandbox, Org, OrgConfig, lock_identity};
use tramontane::provider::mistral::client::AuthScheme;
use tramontane::render::untrusted;
use tramontane::repository::RepositoryRoot;

use super::CommandError;

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

/// The flags of the organization's apply lock, which apply and revoke both hold while they
/// change the organization.
#[derive(Debug, clap::Args)]
pub struct LockArgs {
    /// How long to wait for another apply or revoke against the same organization to finish
    /// (`0s` fails at once; `30s`, `5m`).
    #[arg(long, default_value = "0s", env = "TRAMONTANE_LOCK_TIMEOUT")]
    pub lock_timeout: jiff::SignedDuration,

    /// Where apply locks live (one file per organization).
    #[arg(long, env = "TRAMONTANE_LOCK_DIR", hide = true)]
    pub lock_dir: Option<PathBuf>,
}

impl LockArgs {
    /// Takes the lock of the organization `org` names, when it names one, waiting up to
    /// `--lock-timeout` and saying on stderr that it waits for `holder` (`another apply`)
    /// to finish.
    pub fn take(
        &self,
        org: &OrgArgs,
        root: &RepositoryRoot,
        holder: &str,
    ) -> Result<Option<lock::OrgLock>, lock::LockError> {
        let Some(identity) = org.lock_identity(root) else {
            return Ok(None);
        };
        let org = org.org.as_deref().unwrap_or_default();
        let timeout = self.lock_timeout.unsigned_abs();
        let dir = self.lock_dir.clone().unwrap_or_else(lock::default_dir);
        lock::acquire(&dir, org, &identity, timeout, |path, held_by| {
            eprintln!(
                "Waiting up to {timeout:?} for {holder} against {org} to finish ({}{})…",
                path.display(),
                held_by
                    .map(|h| format!(", held by {h}"))
                    .unwrap_or_default()
            );
        })
        .map(Some)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Auth {
    ApiKey,
    Bearer,
}

impl OrgArgs {
    /// The library's configuration from these flags, the admin key from
    /// MISTRAL_ADMIN_API_KEY, and, on a terminal, retries shown as they happen.
    pub fn config(&self) -> OrgConfig {
        let mut config = OrgConfig::new(self.org.clone());
        config.sandbox_admin = self.sandbox_admin.clone();
        config.api_url = self.api_url.clone();
        config.admin_key = std::env::var("MISTRAL_ADMIN_API_KEY")
            .ok()
            .map(SecretString::from);
        config.auth = match self.auth {
            Auth::ApiKey => AuthScheme::ApiKeyHeader,
            Auth::Bearer => AuthScheme::Bearer,
        };
        config.concurrency = self.concurrency;
        config.rate_limit = self.rate_limit;
        config.timeout = Duration::from_secs(self.timeout);
        config.inference_url = self.inference_url.clone();
        config.journal = self.journal.clone();
        config.deadline = self.deadline.unsigned_abs();
        config.backoff = Duration::from_millis(self.backoff_ms);
        // On a terminal each retry shows as it happens, so a slow failure is not silent;
        // in CI the final error says it all and the log stays short.
        if std::io::stderr().is_terminal() {
            config.on_retry = Some(Arc::new(|notice| eprintln!("{notice}")));
        }
        config
    }

    /// What names the organization for the apply lock.
    pub fn lock_identity(&self, root: &RepositoryRoot) -> Option<String> {
        lock_identity(self.org.as_deref()?, &self.api_url, root)
    }

    /// The journal's file, under the policy repository unless absolute.
    pub fn journal_path(&self, root: &RepositoryRoot) -> PathBuf {
        root.resolve(&self.journal)
    }

    /// Opens the organization these flags name, saying on stderr when a new sandbox org
    /// was created for it; with its name as plans show it.
    pub fn open(
        &self,
        now: jiff::Timestamp,
        policy: Option<&DesiredOrg>,
        root: &RepositoryRoot,
    ) -> Result<(Org, String), CommandError> {
        let opened = Org::open(&self.config(), now, policy, root)?;
        if let Some(created) = &opened.created {
            tell_created(created);
        }
        Ok((opened.org, opened.label))
    }
}

/// Says on stderr that a sandbox org was created, with whom as its admin.
pub fn tell_created(created: &CreatedSandbox) {
    eprintln!(
        "Created a sandbox organization at {} with admin {} ({}), the default workspace and the platform's roles.",
        created.path,
        untrusted::terminal(&created.admin.email),
        untrusted::terminal(&created.admin.name)
    );
}

/// One runtime for a command: the HTTP provider is async, the command line is not.
pub fn runtime() -> Result<tokio::runtime::Runtime, CommandError> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(CommandError::Output)
}
