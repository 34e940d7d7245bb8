//! The sandbox as a provider: an org file opened (or created on first use), every operation
//! saved to it at once.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use secrecy::SecretString;

use super::{Result, SandboxError, SandboxOrg, demo_org};
use crate::model::LiveOrg;
use crate::provider::{Operation, Outcome, Provider, ProviderError};

/// The one organization admin a new sandbox org starts with, as a new Mistral org starts
/// with the person who made it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SandboxAdmin {
    pub email: String,
    pub name: String,
}

/// The sandbox as a provider: every operation is saved to the file at once, so an
/// interrupted apply leaves the org as far as it got, like the real API would.
pub struct SandboxProvider {
    path: PathBuf,
    org: Mutex<SandboxOrg>,
    now: String,
}

impl SandboxProvider {
    /// Opens the org at `path`. `now` is the sandbox's clock: what it creates is created then.
    pub fn open(path: &Path, now: jiff::Timestamp) -> Result<SandboxProvider> {
        Ok(SandboxProvider {
            path: path.to_owned(),
            org: Mutex::new(SandboxOrg::load(path)?),
            now: crate::model::timestamp(now),
        })
    }

    /// Opens the org at `path`, first creating it, with `admin` as its one organization
    /// admin, when the file is missing or empty: an empty file is what `touch` or an editor
    /// leaves, not an org. Says whether it created the org.
    pub fn open_or_create(
        path: &Path,
        now: jiff::Timestamp,
        admin: Option<&SandboxAdmin>,
    ) -> Result<(SandboxProvider, bool)> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => Some(text),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => None,
            Err(source) => {
                return Err(SandboxError::Read {
                    path: path.to_owned(),
                    source,
                });
            }
        };
        if let Some(text) = text.filter(|text| !text.trim().is_empty()) {
            let provider = SandboxProvider {
                path: path.to_owned(),
                org: Mutex::new(SandboxOrg::parse(path, &text)?),
                now: crate::model::timestamp(now),
            };
            return Ok((provider, false));
        }
        let admin = admin.ok_or_else(|| SandboxError::NeedsAdmin {
            path: path.to_owned(),
        })?;
        if !admin.email.contains('@') {
            return Err(SandboxError::AdminNotEmail {
                email: admin.email.clone(),
            });
        }
        let now_text = crate::model::timestamp(now);
        let org = SandboxOrg::new(&admin.email, &admin.name, &now_text);
        org.save(path)?;
        let provider = SandboxProvider {
            path: path.to_owned(),
            org: Mutex::new(org),
            now: now_text,
        };
        Ok((provider, true))
    }

    /// Opens the demo org at `path`, creating it first when it does not exist.
    pub fn open_demo(path: &Path, now: jiff::Timestamp) -> Result<SandboxProvider> {
        if !path.exists() {
            demo_org(now.to_zoned(jiff::tz::TimeZone::UTC).date()).save(path)?;
        }
        SandboxProvider::open(path, now)
    }

    pub fn org(&self) -> SandboxOrg {
        self.org
            .lock()
            .map(|org| org.clone())
            .unwrap_or_else(|poisoned| poisoned.into_inner().clone())
    }
}

impl Provider for SandboxProvider {
    /// One write at a time: the sandbox numbers what it creates in the order the writes
    /// arrive, so writes in parallel would make its ids, and the fingerprint of the
    /// organization, differ from run to run. Nothing is waited for, so it costs nothing.
    fn max_concurrency(&self) -> Option<usize> {
        Some(1)
    }

    async fn read(&self) -> Result<LiveOrg, ProviderError> {
        Ok(self.org().to_live())
    }

    async fn verify_key(&self, secret: &SecretString) -> Result<(), ProviderError> {
        use secrecy::ExposeSecret;
        let accepted = self
            .org
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .accepts(secret.expose_secret());
        if accepted {
            Ok(())
        } else {
            Err(ProviderError::KeyRejected {
                call: "GET /v1/models".into(),
                status: 401,
                attempts: 1,
            })
        }
    }

    async fn perform(&self, operation: Operation) -> Result<Outcome, ProviderError> {
        let mut org = self
            .org
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut next = org.clone();
        let outcome = next.perform(operation, &self.now)?;
        next.save(&self.path)?;
        *org = next;
        Ok(outcome)
    }
}
