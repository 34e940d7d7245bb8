//! Why an organization could not be opened, and what to do about it.

use crate::provider::ProviderError;

#[derive(Debug, thiserror::Error)]
pub enum OrgError {
    #[error("no organization chosen")]
    NotChosen,
    #[error("`{choice}` is not an organization")]
    NotAnOrg { choice: String },
    #[error("`--org mistral` needs an admin API key in MISTRAL_ADMIN_API_KEY")]
    MissingKey,
    /// `url` is shown without its userinfo.
    #[error("{setting} `{url}` is not a URL: {reason}")]
    InvalidUrl {
        setting: &'static str,
        url: String,
        reason: String,
    },
    /// The provider could not be set up: a sandbox file that is not one, a client that
    /// cannot be built, a URL that would carry the key in clear.
    #[error(transparent)]
    Provider(#[from] ProviderError),
}

impl OrgError {
    /// What to do, for the line under the error.
    pub fn help(&self) -> Option<&'static str> {
        match self {
            OrgError::NotChosen => Some(
                "pass `--org mistral` for the live org (with MISTRAL_ADMIN_API_KEY set), or `--org sandbox:demo` to try tramontane on a demo org",
            ),
            OrgError::NotAnOrg { .. } => {
                Some("use `--org mistral`, `--org sandbox:demo` or `--org sandbox:PATH`")
            }
            OrgError::MissingKey => Some(
                "set MISTRAL_ADMIN_API_KEY to an admin-scoped key of the organization (workspace keys are refused); keep it in CI secrets, and see docs/admin-key.md",
            ),
            OrgError::InvalidUrl { .. } => Some("use a URL such as https://api.mistral.ai"),
            OrgError::Provider(error) => error.help(),
        }
    }
}
