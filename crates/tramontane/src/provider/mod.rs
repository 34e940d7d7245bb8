//! Stage: the live side, read before `plan` and written by `apply`; it imports neither.
//!
//! Where the live organization comes from and where changes go: the Admin API over HTTP
//! ([`mistral`]) or a local organization in one JSON file ([`sandbox`]).
//!
//! Both speak in [`Operation`]s, one per Admin API write, so the apply engine translates a
//! plan once and every provider keeps the same semantics.

pub mod activity;
pub mod mistral;
pub mod request_id;
pub mod sandbox;

use jiff::civil::Date;
use secrecy::SecretString;

use crate::model::LiveOrg;

/// One write to the organization, with the live ids it needs. Mirrors an Admin API call.
#[derive(Clone, Debug, PartialEq)]
pub enum Operation {
    CreateUser {
        email: String,
        first_name: String,
        last_name: String,
        roles: Vec<String>,
    },
    SetUserRoles {
        user: String,
        roles: Vec<String>,
    },
    DeleteUser {
        user: String,
    },
    CreateWorkspace {
        name: String,
        description: String,
        admin: String,
    },
    SetWorkspaceDescription {
        workspace: String,
        description: String,
    },
    ArchiveWorkspace {
        workspace: String,
    },
    /// Adds or updates members; the API's `PATCH …/users` is an idempotent upsert.
    UpsertWorkspaceMembers {
        workspace: String,
        members: Vec<(String, Vec<String>)>,
    },
    RemoveWorkspaceMembers {
        workspace: String,
        users: Vec<String>,
    },
    CreateGroup {
        name: String,
        description: String,
    },
    SetGroupDescription {
        group: String,
        description: String,
    },
    DeleteGroup {
        group: String,
    },
    AddGroupMembers {
        group: String,
        users: Vec<String>,
    },
    RemoveGroupMembers {
        group: String,
        users: Vec<String>,
    },
    AssignGroupWorkspace {
        group: String,
        workspace: String,
        roles: Vec<String>,
    },
    UpdateGroupWorkspace {
        group: String,
        workspace: String,
        roles: Vec<String>,
    },
    UnassignGroupWorkspace {
        group: String,
        workspace: String,
    },
    SetGroupOrganizationRole {
        group: String,
        role: String,
    },
    CreateKey {
        workspace: String,
        user: String,
        name: String,
        expiration: Option<Date>,
        /// Keys of this name in this workspace before the call: after an answer lost on the
        /// way back, a key not among them is the one the call made.
        known: Vec<String>,
    },
    DeleteKey {
        key: String,
    },
    SetSpendLimit {
        limit: OrganizationLimit,
    },
}

/// The organization's monthly spend limit as the Admin API takes it: a whole amount of the
/// billing currency (the plan rounds the policy's once), or none.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OrganizationLimit {
    Monthly { units: i64 },
    Unlimited,
}

/// What an operation gave back.
#[derive(Debug)]
pub enum Outcome {
    Done,
    /// The id of the object created.
    Created(String),
    /// A new key: its id and the plaintext, which exists only here and in the secret sink.
    Key {
        id: String,
        secret: SecretString,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    #[error(transparent)]
    Api(#[from] mistral::error::ApiError),
    #[error(transparent)]
    Sandbox(#[from] sandbox::SandboxError),
    #[error("the Admin API answered {call} with {problem}")]
    Unexpected { call: String, problem: String },
    /// A new key's answer lacked its secret; `problem` says what became of the key and
    /// what to do.
    #[error("the Admin API answered {call} with {problem}")]
    SecretLost { call: String, problem: String },
    #[error(
        "{call} with the new key answered {status} after {attempts} attempt(s): the key does not work"
    )]
    KeyRejected {
        call: String,
        status: u16,
        attempts: usize,
    },
}

impl ProviderError {
    /// What to do, for the line under the error; `None` where the message already says.
    pub fn help(&self) -> Option<&'static str> {
        match self {
            ProviderError::Api(error) => error.help(),
            ProviderError::Sandbox(error) => error.help(),
            ProviderError::Unexpected { .. } => Some(
                "tramontane did not expect this answer: check that MISTRAL_API_URL points at the Admin API, and report it if it does",
            ),
            ProviderError::KeyRejected { .. } => Some(
                "check that keys of this workspace can reach the inference API (MISTRAL_INFERENCE_URL), then run apply again",
            ),
            ProviderError::SecretLost { .. } => None,
        }
    }
}

/// A source of the live organization and a sink for operations.
pub trait Provider {
    /// Reads the whole organization, every list to its end.
    fn read(&self) -> impl Future<Output = Result<LiveOrg, ProviderError>>;
    /// Performs one operation.
    fn perform(&self, operation: Operation)
    -> impl Future<Output = Result<Outcome, ProviderError>>;
    /// Shows that a new key works (`GET /v1/models` with it, against the inference API),
    /// before the key it succeeds is let go.
    fn verify_key(&self, secret: &SecretString) -> impl Future<Output = Result<(), ProviderError>>;
    /// Requests made so far (HTTP attempts, for the HTTP provider).
    fn requests(&self) -> u64 {
        0
    }
    /// The most writes the provider takes at once, whatever `--concurrency` asks for.
    fn max_concurrency(&self) -> Option<usize> {
        None
    }
}

/// Splits a policy's full name into the first and last names the API requires, at the
/// first space; a single word is both.
pub fn split_name(name: &str) -> (String, String) {
    let name = name.trim();
    match name.split_once(' ') {
        Some((first, last)) => (first.to_owned(), last.trim().to_owned()),
        None => (name.to_owned(), name.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_split_at_the_first_space() {
        assert_eq!(
            split_name("Ada Lovelace"),
            ("Ada".into(), "Lovelace".into())
        );
        assert_eq!(
            split_name("Jean Paul Sartre"),
            ("Jean".into(), "Paul Sartre".into())
        );
        assert_eq!(split_name("Plato"), ("Plato".into(), "Plato".into()));
    }
}
