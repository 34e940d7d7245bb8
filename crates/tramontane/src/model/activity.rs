//! What the organization did, beside what it is: one month's spend, and the events of its
//! audit log. `tramontane audit` judges budgets and console changes by them.

use std::collections::BTreeMap;

use serde::Serialize;

use super::money::Money;

/// One calendar month's spend, in the billing currency: the organization's and each
/// workspace's (by name).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct MonthSpend {
    pub year: i16,
    pub month: i8,
    pub currency: Option<String>,
    pub organization: f64,
    pub workspaces: BTreeMap<String, f64>,
}

/// What tramontane's gateway metered for one workspace in one month: the requests it let
/// through and settled, their tokens, and their cost by the gateway's price table.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WorkspaceMeter {
    pub requests: u64,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub cost: Money,
}

impl WorkspaceMeter {
    pub fn tokens(&self) -> u64 {
        self.prompt_tokens.saturating_add(self.completion_tokens)
    }
}

/// The gateway's meters for one calendar month (UTC), by workspace name, as read from its
/// store: set against [`MonthSpend`], what Mistral billed for the same month.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MonthMeters {
    pub year: i16,
    pub month: i8,
    /// Where the meters were read (the store's address), for findings to name.
    pub store: String,
    pub workspaces: BTreeMap<String, WorkspaceMeter>,
}

/// Who an audit-log event says acted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ActorKind {
    /// A person, in the console or a client of theirs.
    Human,
    /// An API key: an admin key, tramontane's or another tool's.
    ApiKey,
    Other,
}

/// One entry of the organization's audit log, as the Admin API's `AuditLogOut` gives it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct OrgEvent {
    pub id: i64,
    pub time: jiff::Timestamp,
    pub actor_kind: ActorKind,
    /// What the log says about the actor (`email`, `name`, ids…), as it says it.
    pub actor: BTreeMap<String, String>,
    /// `workspace.update`, `api_key.create`…: the spec's `AuditLogEventType`.
    pub event_type: String,
    pub details: BTreeMap<String, String>,
    /// `WORKSPACE`, `API_KEY`…: the spec's `TargetType`.
    pub target_type: String,
    pub target: BTreeMap<String, String>,
    pub workspace_id: Option<String>,
}

/// Everything an audit reads beside the live organization.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Activity {
    /// The spend of the month the audit runs in.
    pub spend: MonthSpend,
    /// The audit log's events in the window read, oldest first.
    pub events: Vec<OrgEvent>,
}
