//! The Admin API's JSON, field for field from its OpenAPI spec (`components.schemas`).
//!
//! UUIDs, dates and role codes stay strings: the client checks what it uses and tolerates
//! what it does not. Nested objects tramontane never reads are kept as raw JSON.

use std::collections::BTreeMap;

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

mod audit_log_event_types;
mod audit_logs;
mod usage;
pub use audit_log_event_types::AUDIT_LOG_EVENT_TYPES;
pub use audit_logs::*;
pub use usage::*;

// ---- roles

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RolesOut {
    pub workspace_roles: Vec<RoleOut>,
    pub organization_roles: Vec<RoleOut>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoleOut {
    pub name: String,
    pub uuid: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub is_custom_role: bool,
}

// ---- users and invites

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrganizationAdminUsersOut {
    pub members: Vec<AdminOrganizationMemberOut>,
    pub invites: Vec<OrganizationInviteOut>,
    pub total: Option<u64>,
    pub page: Option<u64>,
    pub page_size: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AdminOrganizationMemberOut {
    pub uuid: String,
    #[serde(default)]
    pub oid_id: Option<String>,
    pub name: Option<String>,
    pub email: Option<String>,
    #[serde(default)]
    pub is_sso_outsider: Option<bool>,
    #[serde(default)]
    pub workspaces: Option<Vec<MemberWorkspaceInfo>>,
    #[serde(default)]
    pub subscriptions: Vec<Value>,
    pub raw_roles: Vec<String>,
    #[serde(default)]
    pub raw_role: Option<String>,
    #[serde(default)]
    pub subscription_types: Option<Vec<String>>,
    pub created_at: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MemberWorkspaceInfo {
    pub uuid: String,
    pub name: String,
    pub is_default: bool,
    pub raw_roles: Vec<String>,
    #[serde(default)]
    pub raw_role: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrganizationInviteOut {
    pub uuid: String,
    pub raw_roles: Vec<String>,
    #[serde(default)]
    pub raw_role: Option<String>,
    pub email: String,
    pub expired: bool,
    pub created_at: String,
    #[serde(default)]
    pub workspace_uuids: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrganizationMemberCreate {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role_names: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub roles: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscription_types: Option<Vec<String>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrganizationUsersCreateOut {
    pub invalid_emails: Vec<String>,
    pub email_to_user_id: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AdminOrganizationMemberUpdate {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role_names: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub roles: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscription_types: Option<Vec<String>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeleteOut {
    pub message: String,
}

// ---- workspaces

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkspacesOut {
    pub total: u64,
    pub items: Vec<WorkspaceOut>,
    #[serde(default)]
    pub object: Option<String>,
    pub page: u64,
    pub page_size: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkspaceOut {
    pub uuid: String,
    pub name: String,
    pub description: Option<String>,
    pub icon: Option<String>,
    #[serde(default)]
    pub members_count: Option<u64>,
    #[serde(default)]
    pub spend_limit: Option<WorkspaceSpendLimitOut>,
    pub is_default: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkspaceEnrichedOut {
    pub uuid: String,
    pub name: String,
    pub description: Option<String>,
    pub icon: Option<String>,
    #[serde(default)]
    pub members_count: Option<u64>,
    #[serde(default)]
    pub spend_limit: Option<WorkspaceSpendLimitOut>,
    pub is_default: bool,
    #[serde(default)]
    pub raw_roles: Vec<String>,
    #[serde(default)]
    pub raw_role: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkspaceSpendLimitOut {
    pub value: Option<f64>,
    pub currency: Option<String>,
    pub no_monthly_limit: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AdminWorkspaceIn {
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub icon: String,
    #[serde(default)]
    pub add_all_org_members: bool,
    pub admin_user_id: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UpdateWorkspaceIn {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub icon: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkspaceMemberIn {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub members: Option<Vec<WorkspaceMemberSingleIn>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkspaceMemberSingleIn {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role_names: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub roles: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    pub user_uuid: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RemoveWorkspaceMembersIn {
    pub members: Vec<BaseWorkspaceMemberIn>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BaseWorkspaceMemberIn {
    pub user_uuid: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AddUsersToWorkspaceOut {
    pub added_members_count: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AddOrUpdateUsersToWorkspaceOut {
    pub added_members_count: u64,
    pub updated_members_count: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RemoveWorkspaceMembersOut {
    pub deleted_members_count: u64,
    #[serde(default)]
    pub not_deleted_members: Option<Vec<String>>,
}

// ---- user groups

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AdminUserGroupsOut {
    pub total: u64,
    pub items: Vec<AdminUserGroupOut>,
    pub page: u64,
    pub page_size: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AdminUserGroupOut {
    pub uuid: String,
    pub name: String,
    pub description: Option<String>,
    #[serde(default)]
    pub externally_managed: Option<bool>,
    #[serde(default)]
    pub target_type: Option<String>,
    #[serde(default)]
    pub organization_role: Option<String>,
    #[serde(default)]
    pub parent_group_ids: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AdminUserGroupMembersOut {
    pub total: u64,
    pub members: Vec<AdminUserGroupMemberOut>,
    pub page: u64,
    pub page_size: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AdminUserGroupMemberOut {
    pub user_uuid: String,
    pub name: Option<String>,
    pub email: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupWorkspaceAssignmentsOut {
    pub total: u64,
    pub items: Vec<GroupWorkspaceAssignmentOut>,
    pub page: u64,
    pub page_size: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupWorkspaceAssignmentOut {
    pub roles: Vec<WorkspaceRoleRef>,
    #[serde(default)]
    pub role_uuid: Option<String>,
    #[serde(default)]
    pub role_name: Option<String>,
    pub workspace_uuid: String,
    pub workspace_name: String,
    pub created: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkspaceRoleRef {
    pub name: String,
    pub uuid: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AdminUserGroupIn {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_type: Option<String>,
    #[serde(default)]
    pub parent_group_ids: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AdminUpdateUserGroupIn {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_group_ids: Option<Vec<String>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AdminAssignUsersToGroupIn {
    pub user_uuids: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AssignGroupToWorkspaceIn {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role_names: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub roles: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    pub workspace_uuid: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UpdateGroupWorkspaceAssignmentIn {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role_names: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub roles: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UpdateUserGroupOrganizationRoleIn {
    pub organization_role: String,
}

// ---- API keys

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ApiKeysExtendedOut {
    pub keys: Vec<ApiKeyExtendedOut>,
}

/// A key as listed. The plaintext `key` is `null` in lists; should it ever be present it
/// is held as a secret all the same.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ApiKeyExtendedOut {
    pub key_id: String,
    #[serde(default, with = "secret_option")]
    pub key: Option<SecretString>,
    pub name: Option<String>,
    pub hidden_key: String,
    pub created_at: Option<String>,
    pub expiration_date: Option<String>,
    #[serde(default)]
    pub actions: Value,
    pub workspace_id: Option<String>,
    pub workspace_name: Option<String>,
    pub created_by: Option<String>,
    #[serde(default)]
    pub product: Option<String>,
    pub last_used: Option<String>,
    #[serde(default)]
    pub can_delete: Option<bool>,
}

/// A key just created: the only time the API returns its plaintext.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ApiKeyOut {
    pub key_id: String,
    #[serde(default, with = "secret_option")]
    pub key: Option<SecretString>,
    pub name: Option<String>,
    pub hidden_key: String,
    pub created_at: Option<String>,
    pub expiration_date: Option<String>,
    #[serde(default)]
    pub actions: Value,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AdminCreateApiKeyIn {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expiration: Option<String>,
    pub workspace_uuid: String,
    pub user_id: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeleteApiKeyOut {
    pub detail: String,
}

/// `SecretString` has no `Serialize` on purpose; the fake Admin API must still send a
/// plaintext the way the real one does, so serializing exposes it here and nowhere else.
mod secret_option {
    use super::*;

    pub fn serialize<S: Serializer>(
        value: &Option<SecretString>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match value {
            Some(secret) => serializer.serialize_some(secret.expose_secret()),
            None => serializer.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<SecretString>, D::Error> {
        Ok(Option::<String>::deserialize(deserializer)?.map(SecretString::from))
    }
}

// ---- limits

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LimitsOut {
    pub limits: LimitsContext,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LimitsContext {
    pub completion: UsageLimits,
    pub last_payment_failure: bool,
    #[serde(default)]
    pub last_payment_failure_protection: Option<bool>,
    pub currency: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UsageLimits {
    #[serde(default)]
    pub no_monthly_limit: bool,
    pub monthly_limit_reached: bool,
    #[serde(default)]
    pub usage: Option<f64>,
    #[serde(default)]
    pub vibe_usage: Option<f64>,
    #[serde(default)]
    pub total_usage: Option<f64>,
    #[serde(default)]
    pub usage_limit: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewUsageLimitIn {
    pub amount: i64,
    #[serde(default)]
    pub no_monthly_limit: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RateLimitsOut {
    pub requests_per_second: i64,
    pub tokens_limits_by_model: BTreeMap<String, TokenLimitsByModel>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TokenLimitsByModel {
    pub tokens_per_minute: i64,
    pub tokens_per_month: i64,
}

// ---- errors (FastAPI)

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HttpValidationError {
    #[serde(default)]
    pub detail: Vec<ValidationError>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ValidationError {
    pub loc: Vec<Value>,
    pub msg: String,
    #[serde(rename = "type")]
    pub kind: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_created_key_never_shows_in_debug() {
        let key: ApiKeyOut = serde_json::from_value(serde_json::json!({
            "key_id": "k", "key": "plaintext-secret-value", "name": "ci", "hidden_key": "pl…ue",
            "created_at": null, "expiration_date": null, "actions": {}
        }))
        .unwrap();
        assert!(!format!("{key:?}").contains("plaintext-secret-value"));
        assert_eq!(
            key.key
                .as_ref()
                .map(|k| k.expose_secret().to_owned())
                .as_deref(),
            Some("plaintext-secret-value")
        );
    }

    #[test]
    fn a_realistic_users_page_parses() {
        let page: OrganizationAdminUsersOut = serde_json::from_value(serde_json::json!({
            "members": [{"uuid": "u1", "oid_id": null, "name": "Ada", "email": "ada@x.example",
                         "workspaces": [{"uuid": "w1", "name": "dev", "is_default": false, "raw_roles": ["r1"], "raw_role": "r1"}],
                         "raw_roles": ["A"], "raw_role": "A", "created_at": "2026-01-01T00:00:00Z"}],
            "invites": [{"uuid": "i1", "raw_roles": ["M"], "raw_role": "M", "email": "bo@x.example", "expired": false,
                         "created_at": "2026-01-01T00:00:00Z"}],
            "total": 2, "page": 1, "page_size": 25
        }))
        .unwrap();
        assert_eq!(page.members[0].workspaces.as_ref().unwrap()[0].name, "dev");
        assert_eq!(page.invites[0].email, "bo@x.example");
    }
}
