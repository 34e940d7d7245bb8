//! What the organization did, beside what it is: one month's spend, and the events of its
//! audit log. `tramontane audit` judges budgets and console changes by them.

use std::collections::BTreeMap;

use serde::Serialize;

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
