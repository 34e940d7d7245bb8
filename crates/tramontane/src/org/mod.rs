//! Which organization a command reads and changes: `mistral` (the Admin API), `sandbox:demo`
//! (a demo org created on first use) or `sandbox:PATH` (a local org file), opened from a
//! plain [`OrgConfig`] that the command line fills from its flags and environment. Never a
//! silent fallback to the sandbox: no choice is an error.

mod activity;
mod error;
mod open;

use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::time::Duration;

use secrecy::SecretString;

pub use error::OrgError;
pub use open::{CreatedSandbox, Opened};

use crate::apply::journal::{self, JournalError};
use crate::model::LiveOrg;
use crate::provider::mistral::MistralProvider;
use crate::provider::mistral::client::{AuthScheme, RetryObserver};
use crate::provider::sandbox::SandboxProvider;
use crate::provider::{Operation, Outcome, Provider, ProviderError};
use crate::repository::RepositoryRoot;

/// Where the demo org lives, relative to the policy repository's root.
pub const DEMO_PATH: &str = ".tramontane/sandbox/demo.json";

/// Everything that says which organization to open and how to talk to it.
pub struct OrgConfig {
    /// `mistral`, `sandbox:demo` or `sandbox:PATH`; `None` when nothing chose one.
    pub choice: Option<String>,
    /// The organization admin a new `sandbox:PATH` org is created with (an email); the
    /// policy's first organization admin when `None`.
    pub sandbox_admin: Option<String>,
    /// The Admin API's base URL, as given (it may carry a password, never shown).
    pub api_url: String,
    /// The admin key, for `mistral`.
    pub admin_key: Option<SecretString>,
    pub auth: AuthScheme,
    /// Most Admin API requests in flight at once (at least 1).
    pub concurrency: usize,
    /// A client-side ceiling on requests per second.
    pub rate_limit: Option<NonZeroU32>,
    /// How long one request may take before it is abandoned.
    pub timeout: Duration,
    /// The inference API's root, where new keys are shown to work; the Admin API's when
    /// `None`.
    pub inference_url: Option<String>,
    /// The key journal, relative to the policy repository unless absolute.
    pub journal: PathBuf,
    /// The most time one command spends on the Admin API.
    pub deadline: Duration,
    /// The first retry delay; later ones double.
    pub backoff: Duration,
    /// Told of each retry as it happens; the library prints nothing itself.
    pub on_retry: Option<RetryObserver>,
}

impl OrgConfig {
    /// A configuration with the defaults the command line documents, for `choice`.
    pub fn new(choice: Option<String>) -> OrgConfig {
        OrgConfig {
            choice,
            sandbox_admin: None,
            api_url: "https://api.mistral.ai".into(),
            admin_key: None,
            auth: AuthScheme::ApiKeyHeader,
            concurrency: 8,
            rate_limit: None,
            timeout: Duration::from_secs(30),
            inference_url: None,
            journal: PathBuf::from(".tramontane/journal.jsonl"),
            deadline: Duration::from_secs(600),
            backoff: Duration::from_millis(500),
            on_retry: None,
        }
    }

    /// What names the organization for the apply lock and the journal.
    pub fn lock_identity(&self, root: &RepositoryRoot) -> Option<String> {
        lock_identity(self.choice.as_deref()?, &self.api_url, root)
    }

    /// The journal's file, under the policy repository unless absolute.
    pub fn journal_path(&self, root: &RepositoryRoot) -> PathBuf {
        root.resolve(&self.journal)
    }

    /// Marks on `live` the keys the journal shows created but never delivered.
    pub fn mark_undelivered(
        &self,
        live: &mut LiveOrg,
        root: &RepositoryRoot,
    ) -> Result<(), JournalError> {
        if let Some(identity) = self.lock_identity(root) {
            live.undelivered = journal::undelivered(&self.journal_path(root), &identity, live)?;
        }
        Ok(())
    }
}

/// By hand, so neither the key nor a password in the URL ever shows.
impl std::fmt::Debug for OrgConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OrgConfig")
            .field("choice", &self.choice)
            .field(
                "api_url",
                &crate::provider::mistral::transport::redact_userinfo(&self.api_url),
            )
            .field("auth", &self.auth)
            .field("concurrency", &self.concurrency)
            .finish_non_exhaustive()
    }
}

/// What names an organization for the apply lock: the API's address, or the sandbox's
/// file. Never the admin key.
pub fn lock_identity(choice: &str, api_url: &str, root: &RepositoryRoot) -> Option<String> {
    if choice == "mistral" {
        return Some(format!(
            "mistral {}",
            crate::apply::lock::api_identity(api_url)
        ));
    }
    let path = choice.strip_prefix("sandbox:")?;
    let path = if path == "demo" {
        root.resolve(Path::new(DEMO_PATH))
    } else {
        PathBuf::from(path)
    };
    let absolute = std::path::absolute(&path).unwrap_or(path);
    Some(format!("sandbox {}", absolute.display()))
}

/// The chosen organization's provider.
// One `Org` lives per command, so the variants' sizes cost nothing worth a box.
#[allow(clippy::large_enum_variant)]
pub enum Org {
    Mistral(MistralProvider),
    Sandbox(SandboxProvider),
}

impl Org {
    /// The models the organization is served, as a `GET /v1/models` answer. A sandbox org is
    /// served the bundled catalog, as the sandbox's stand-in upstream is.
    pub async fn model_list(&self) -> Result<Vec<u8>, ProviderError> {
        match self {
            Org::Mistral(provider) => provider.model_list().await,
            Org::Sandbox(_) => Ok(crate::policy::catalog::Catalog::bundled_json()
                .as_bytes()
                .to_vec()),
        }
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

    fn max_concurrency(&self) -> Option<usize> {
        match self {
            Org::Mistral(provider) => provider.max_concurrency(),
            Org::Sandbox(provider) => provider.max_concurrency(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_shows_neither_the_key_nor_a_password() {
        let mut config = OrgConfig::new(Some("mistral".into()));
        config.admin_key = Some(SecretString::from("sk-admin-very-secret"));
        config.api_url = "https://admin:hunter2@api.example.com".into();
        let shown = format!("{config:?}");
        assert!(!shown.contains("very-secret"), "{shown}");
        assert!(!shown.contains("hunter2"), "{shown}");
    }
}
