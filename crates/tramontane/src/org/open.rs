//! Opening the organization a configuration chooses: the Admin API's client with its
//! settings, or a sandbox file (created on first use when it is missing or empty).

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{DEMO_PATH, Org, OrgConfig, OrgError};
use crate::model::DesiredOrg;
use crate::provider::ProviderError;
use crate::provider::mistral::MistralProvider;
use crate::provider::mistral::client::{Client, ClientConfig};
use crate::provider::mistral::error::ApiError;
use crate::provider::mistral::transport::{may_carry_credentials, redact_userinfo};
use crate::provider::sandbox::{SandboxAdmin, SandboxProvider};
use crate::repository::RepositoryRoot;

/// An organization opened, what it is called in plans, and the sandbox org created to
/// open it, if one was: the caller tells the person, since the library prints nothing.
pub struct Opened {
    pub org: Org,
    /// `mistral`, or the choice as given (`sandbox:demo`, `sandbox:PATH`).
    pub label: String,
    pub created: Option<CreatedSandbox>,
}

/// A new sandbox org, made because its file was missing or empty.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CreatedSandbox {
    /// The path as the choice named it.
    pub path: String,
    /// The organization admin it starts with.
    pub admin: SandboxAdmin,
}

impl Org {
    /// Opens the organization `config` chooses. `policy`, when the command has one, says
    /// who a new sandbox org's admin is; the demo org lives under `root`; `now` is the
    /// sandbox's clock.
    pub fn open(
        config: &OrgConfig,
        now: jiff::Timestamp,
        policy: Option<&DesiredOrg>,
        root: &RepositoryRoot,
    ) -> Result<Opened, OrgError> {
        let Some(choice) = config.choice.as_deref() else {
            return Err(OrgError::NotChosen);
        };
        if choice == "mistral" {
            return Ok(Opened {
                org: Org::Mistral(open_mistral(config)?),
                label: "mistral".into(),
                created: None,
            });
        }
        let Some(path) = choice.strip_prefix("sandbox:") else {
            return Err(OrgError::NotAnOrg {
                choice: choice.to_owned(),
            });
        };
        let (provider, created) = if path == "demo" {
            let provider = SandboxProvider::open_demo(&root.resolve(Path::new(DEMO_PATH)), now)
                .map_err(ProviderError::from)?;
            (provider, None)
        } else {
            let admin = sandbox_admin(config.sandbox_admin.as_deref(), policy);
            let (provider, created) =
                SandboxProvider::open_or_create(&PathBuf::from(path), now, admin.as_ref())
                    .map_err(ProviderError::from)?;
            let created = admin.filter(|_| created).map(|admin| CreatedSandbox {
                path: path.to_owned(),
                admin,
            });
            (provider, created)
        };
        Ok(Opened {
            org: Org::Sandbox(provider),
            label: choice.to_owned(),
            created,
        })
    }
}

/// The Admin API's provider, with the key and every setting of `config`.
fn open_mistral(config: &OrgConfig) -> Result<MistralProvider, OrgError> {
    let key = config
        .admin_key
        .clone()
        .filter(|key| !secrecy::ExposeSecret::expose_secret(key).trim().is_empty())
        .ok_or(OrgError::MissingKey)?;
    let base_url = parse_url("MISTRAL_API_URL", &config.api_url)?;
    let admin_root = base_url.clone();
    let mut client = ClientConfig::new(base_url, key);
    client.auth = config.auth;
    client.concurrency = config.concurrency.max(1);
    client.max_requests_per_second = config.rate_limit;
    client.timeout = config.timeout.max(Duration::from_secs(1));
    client.backoff_base = config.backoff;
    client.deadline = config.deadline;
    client.on_retry = config.on_retry.clone();
    let client = Client::new(client).map_err(ProviderError::from)?;
    // New keys are shown to work against the inference API, which shares the Admin API's
    // root unless told otherwise; new keys travel to it, so the same rule holds.
    let inference = match &config.inference_url {
        Some(text) => {
            let url = parse_url("MISTRAL_INFERENCE_URL", text)?;
            if !may_carry_credentials(&url) {
                return Err(ProviderError::from(ApiError::InsecureUrl {
                    url: url.to_string(),
                })
                .into());
            }
            url
        }
        None => admin_root,
    };
    Ok(MistralProvider::new(client).verifying_at(inference, config.backoff))
}

/// `text` as a URL, or the error naming the setting it came from, without its password.
fn parse_url(setting: &'static str, text: &str) -> Result<url::Url, OrgError> {
    url::Url::parse(text).map_err(|error| OrgError::InvalidUrl {
        setting,
        url: redact_userinfo(text),
        reason: error.to_string(),
    })
}

/// Who a new sandbox org's admin is: the one named (as the policy names them, if it does),
/// or else the policy's first organization admin by email, so the first apply keeps them.
fn sandbox_admin(named: Option<&str>, policy: Option<&DesiredOrg>) -> Option<SandboxAdmin> {
    let members = policy.map(|policy| &policy.members);
    if let Some(email) = named.map(str::trim) {
        let name = members
            .and_then(|members| {
                members
                    .iter()
                    .find(|(listed, _)| listed.eq_ignore_ascii_case(email))
                    .map(|(_, member)| member.name.clone())
            })
            .unwrap_or_else(|| email.split('@').next().unwrap_or(email).to_owned());
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

#[cfg(test)]
mod tests {
    use super::*;

    fn config(choice: Option<&str>) -> OrgConfig {
        OrgConfig::new(choice.map(str::to_owned))
    }

    fn error(config: &OrgConfig) -> OrgError {
        match Org::open(
            config,
            jiff::Timestamp::now(),
            None,
            &RepositoryRoot::current(),
        ) {
            Ok(_) => panic!("opened"),
            Err(error) => error,
        }
    }

    #[test]
    fn no_choice_and_an_unknown_choice_are_errors_that_say_what_to_pass() {
        let none = error(&config(None));
        assert_eq!(none.to_string(), "no organization chosen");
        assert!(none.help().unwrap().contains("--org sandbox:demo"));
        let unknown = error(&config(Some("staging")));
        assert_eq!(unknown.to_string(), "`staging` is not an organization");
    }

    #[test]
    fn mistral_needs_a_key_and_a_url_and_never_shows_a_password() {
        assert!(matches!(
            error(&config(Some("mistral"))),
            OrgError::MissingKey
        ));
        let mut blank = config(Some("mistral"));
        blank.admin_key = Some(" ".to_owned().into());
        assert!(matches!(error(&blank), OrgError::MissingKey));
        let mut bad_url = config(Some("mistral"));
        bad_url.admin_key = Some("sk-admin".to_owned().into());
        bad_url.api_url = "http://admin:hunter2@exa mple.com".into();
        let shown = error(&bad_url).to_string();
        assert!(shown.starts_with("MISTRAL_API_URL `"), "{shown}");
        assert!(!shown.contains("hunter2"), "{shown}");
    }

    #[test]
    fn a_new_sandbox_admin_is_the_one_named_or_the_policys_first_admin() {
        let named = sandbox_admin(Some(" ada@x.example "), None).unwrap();
        assert_eq!(
            (named.email.as_str(), named.name.as_str()),
            ("ada@x.example", "ada")
        );
        assert_eq!(sandbox_admin(None, None), None);
    }
}
