//! The organization as the reconciler sees it, shared by every stage of the pipeline: the
//! lowest layer, which imports no other stage. What a change is about ([`Kind`]), who
//! enforces it ([`Enforcement`]) and amounts of money ([`Money`], [`Budget`]) live here so
//! that the planner, apply and the providers share them without importing each other.
//!
//! Names and emails address everything: a live UUID never appears here. The serde shape is
//! the policy format itself, so the policy loader decodes straight into these types and the
//! policy writer renders them back.

use std::collections::BTreeMap;

use jiff::civil::Date;
use serde::{Deserialize, Serialize};

pub mod activity;
pub mod alerts;
mod budget;
pub mod declared;
pub mod gateway;
mod hygiene;
pub mod import;
mod kind;
pub mod live;
pub mod money;
pub mod price;
pub mod workload;
pub use alerts::{AlertDestination, AlertKind, Alerts, SecretSource};
pub use budget::Budget;
pub use declared::{DeclaredModel, DeclaredPrices};
pub use gateway::{
    GatewayKey, GatewayKeyId, Holder, KeyDigest, OpenedMethod, OpenedPath, StoreFailure,
    WorkspaceGateway,
};
pub use hygiene::AuditSettings;
pub use kind::{Enforcement, Kind};
pub use live::{LiveInvite, LiveKey, LiveMember, LiveOrg, LiveTeam, LiveWorkspace, RateLimits};
pub use money::{Money, SpendGuard};
pub use price::{Currency, ModelPrices, PriceUnit, TierPrices};
pub use workload::{Issuer, IssuerKeys, Workload};

/// An instant as plans, journals and the sandbox show it: UTC, to the second.
pub fn timestamp(at: jiff::Timestamp) -> String {
    at.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// The organization the policies describe.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DesiredOrg {
    #[serde(default, skip_serializing_if = "Organization::is_default")]
    pub organization: Organization,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub members: BTreeMap<String, Member>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub roles: BTreeMap<String, AccessProfile>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub teams: BTreeMap<String, Team>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub workspaces: BTreeMap<String, Workspace>,
    /// Keys callers present to the gateway, by public id: only their digests are here.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub gateway_keys: BTreeMap<GatewayKeyId, GatewayKey>,
    /// OIDC issuers whose tokens the gateway verifies, by name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub issuers: BTreeMap<String, Issuer>,
    /// Workloads that call the gateway with an issuer's token, by name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub workloads: BTreeMap<String, Workload>,
    /// Models the policy declares beside the bundled catalog, by API id.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub models: BTreeMap<String, DeclaredModel>,
    /// Thresholds of `tramontane audit`; read by nothing else.
    #[serde(default, skip_serializing_if = "AuditSettings::is_default")]
    pub audit: AuditSettings,
    /// Threshold alerts the gateway sends on token budgets and spend guards.
    #[serde(default, skip_serializing_if = "Alerts::is_default")]
    pub alerts: Alerts,
}

impl DesiredOrg {
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
            && self.roles.is_empty()
            && self.teams.is_empty()
            && self.workspaces.is_empty()
            && self.gateway_keys.is_empty()
            && self.issuers.is_empty()
            && self.workloads.is_empty()
            && self.organization.is_default()
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Organization {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spend_limit: Option<SpendLimit>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_admins: Option<u32>,
    #[serde(default, skip_serializing_if = "Prune::is_default")]
    pub prune: Prune,
}

impl Organization {
    pub fn is_default(&self) -> bool {
        *self == Organization::default()
    }
}

/// Which kinds of unmanaged live objects may be deleted. Nothing is, unless opted in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Prune {
    #[serde(default, skip_serializing_if = "is_false")]
    pub members: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub teams: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub workspaces: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub keys: bool,
}

impl Prune {
    pub fn is_default(&self) -> bool {
        *self == Prune::default()
    }
}

fn is_false(value: &bool) -> bool {
    !*value
}

/// A monthly spend limit in the organization's billing currency.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum SpendLimit {
    Monthly(f64),
    Unlimited(Unlimited),
}

/// The word `unlimited`, the only text a spend limit accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Unlimited {
    Unlimited,
}

impl std::fmt::Display for SpendLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SpendLimit::Monthly(amount) => write!(f, "{amount}"),
            SpendLimit::Unlimited(_) => f.write_str("unlimited"),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrganizationRole {
    Member,
    BillingManager,
    OrganizationAdmin,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WorkspaceRole {
    User,
    Dev,
    MistralCodeUser,
    Billing,
    WorkspaceContributor,
    WorkspaceAdmin,
    ObservabilityViewer,
}

impl OrganizationRole {
    /// The role's name as the Admin API spells it in `role_names`.
    pub fn as_str(self) -> &'static str {
        match self {
            OrganizationRole::Member => "member",
            OrganizationRole::BillingManager => "billing_manager",
            OrganizationRole::OrganizationAdmin => "organization_admin",
        }
    }
}

impl WorkspaceRole {
    /// The role's name as the Admin API spells it in `role_names`.
    pub fn as_str(self) -> &'static str {
        match self {
            WorkspaceRole::User => "user",
            WorkspaceRole::Dev => "dev",
            WorkspaceRole::MistralCodeUser => "mistral_code_user",
            WorkspaceRole::Billing => "billing",
            WorkspaceRole::WorkspaceContributor => "workspace_contributor",
            WorkspaceRole::WorkspaceAdmin => "workspace_admin",
            WorkspaceRole::ObservabilityViewer => "observability_viewer",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Member {
    pub name: String,
    #[serde(default = "default_member_roles")]
    pub roles: Vec<OrganizationRole>,
}

fn default_member_roles() -> Vec<OrganizationRole> {
    vec![OrganizationRole::Member]
}

impl Member {
    pub fn is_admin(&self) -> bool {
        self.roles.contains(&OrganizationRole::OrganizationAdmin)
    }
}

/// A runtime access profile: enforced by the gateway, not by the platform.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessProfile {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub models: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens_per_request: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub daily_token_budget: Option<u64>,
    /// Requests per minute for each member with this profile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rpm: Option<u32>,
}

/// The model-list entry that allows every model.
pub const ALL_MODELS: &str = "*";

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Team {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub members: Vec<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub workspaces: BTreeMap<String, Vec<WorkspaceRole>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organization_role: Option<OrganizationRole>,
    /// The runtime access profile of the team's members, a key of [`DesiredOrg::roles`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// Spend through the gateway by all the team's members together.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spend_guard: Option<SpendGuard>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Workspace {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub members: BTreeMap<String, Vec<WorkspaceRole>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spend_limit: Option<SpendLimit>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rpm: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub models: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub keys: BTreeMap<String, ApiKey>,
    /// Spend through the gateway by every caller of the workspace together.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spend_guard: Option<SpendGuard>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<WorkspaceGateway>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiKey {
    pub owner: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<Date>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_after_days: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotate_before_days: Option<u32>,
    /// Hours a rotated-out key stays valid beside its successor; 24 when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotation_overlap_hours: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub models: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rpm: Option<u32>,
    /// Largest `max_tokens` one request through the gateway may ask for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens_per_request: Option<u64>,
    /// Tokens a day through the gateway with this key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub daily_token_budget: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spend_guard: Option<SpendGuard>,
    pub secret: SecretSink,
}

/// When a key expires. Validation guarantees at most one of the two fields is set.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Expiry {
    On(Date),
    AfterDays(u32),
}

/// How long a rotated-out key is kept beside its successor unless the policy says otherwise:
/// a day lets every consumer pick up the new secret before the old one stops working.
pub const DEFAULT_ROTATION_OVERLAP_HOURS: u32 = 24;

impl ApiKey {
    pub fn rotation_overlap(&self) -> jiff::SignedDuration {
        let hours = self
            .rotation_overlap_hours
            .unwrap_or(DEFAULT_ROTATION_OVERLAP_HOURS);
        jiff::SignedDuration::from_hours(i64::from(hours))
    }

    pub fn expiry(&self) -> Option<Expiry> {
        match (self.expires, self.expires_after_days) {
            (Some(date), _) => Some(Expiry::On(date)),
            (None, Some(days)) => Some(Expiry::AfterDays(days)),
            (None, None) => None,
        }
    }
}

/// Where a new key's secret goes the moment it exists.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum SecretSink {
    /// A file written with mode 0600.
    File(String),
    /// A program and its arguments; the secret arrives on its standard input.
    Command(Vec<String>),
}

impl std::fmt::Debug for SecretSink {
    // The sink's location is not secret, but a command line may carry tokens of its own
    // (a vault address with credentials): show only the program.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SecretSink::File(path) => f.debug_tuple("File").field(path).finish(),
            SecretSink::Command(argv) => f
                .debug_tuple("Command")
                .field(&argv.first().map(String::as_str).unwrap_or(""))
                .finish_non_exhaustive(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_policy_shape_decodes() {
        let key: ApiKey = serde_json::from_value(serde_json::json!({
            "owner": "bob@acme.example", "expires_after_days": 90,
            "secret": {"command": ["vault", "kv", "put", "secret/ci"]}
        }))
        .unwrap();
        assert_eq!(key.expiry(), Some(Expiry::AfterDays(90)));
        assert_eq!(format!("{:?}", key.secret), "Command(\"vault\", ..)");
        let limit: SpendLimit = serde_json::from_value(serde_json::json!("unlimited")).unwrap();
        assert_eq!(limit.to_string(), "unlimited");
        let member: Member = serde_json::from_value(serde_json::json!({"name": "Bob"})).unwrap();
        assert_eq!(member.roles, vec![OrganizationRole::Member]);
    }
}
