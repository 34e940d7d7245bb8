//! `GET /v1/admin/audit-logs`: `AuditLogOut` and its enums, field for field.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};

use super::audit_log_event_types::AUDIT_LOG_EVENT_TYPES;

/// `AuditLogOut`. The answer is a bare array of these.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditLogOut {
    pub created_at: String,
    pub actor_type: ActorType,
    pub actor_metadata: BTreeMap<String, String>,
    pub event_type: AuditLogEventType,
    pub event_metadata: BTreeMap<String, String>,
    pub target_type: TargetType,
    pub target_metadata: BTreeMap<String, String>,
    pub log_id: i64,
    #[serde(default)]
    pub organization_uuid: Option<String>,
    #[serde(default)]
    pub workspace_uuid: Option<String>,
}

/// `ActorType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ActorType {
    Human,
    ApiKey,
    Other,
}

impl ActorType {
    pub fn as_str(self) -> &'static str {
        match self {
            ActorType::Human => "HUMAN",
            ActorType::ApiKey => "API_KEY",
            ActorType::Other => "OTHER",
        }
    }
}

/// `AuditLogEventType`: one of the spec's values ([`AUDIT_LOG_EVENT_TYPES`]); any other is
/// refused when read.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct AuditLogEventType(String);

impl AuditLogEventType {
    /// The value, when the spec lists it.
    pub fn new(value: &str) -> Option<AuditLogEventType> {
        AUDIT_LOG_EVENT_TYPES
            .contains(&value)
            .then(|| AuditLogEventType(value.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for AuditLogEventType {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = String::deserialize(deserializer)?;
        AuditLogEventType::new(&value).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "`{value}` is not an event type the Admin API's spec lists"
            ))
        })
    }
}

/// The query's `sort`: `AuditLogsSorting`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditLogsSorting {
    Ascending,
    Descending,
}

impl AuditLogsSorting {
    pub fn as_str(self) -> &'static str {
        match self {
            AuditLogsSorting::Ascending => "ascending",
            AuditLogsSorting::Descending => "descending",
        }
    }
}

/// `TargetType`, every value the spec lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum TargetType {
    #[serde(rename = "USER")]
    User,
    #[serde(rename = "USER_GROUP")]
    UserGroup,
    #[serde(rename = "ORGANIZATION")]
    Organization,
    #[serde(rename = "WORKSPACE")]
    Workspace,
    #[serde(rename = "API_KEY")]
    ApiKey,
    #[serde(rename = "ADMIN_API_KEY")]
    AdminApiKey,
    #[serde(rename = "API_KEY_POLICY")]
    ApiKeyPolicy,
    #[serde(rename = "SERVICE_ACCOUNT")]
    ServiceAccount,
    #[serde(rename = "AGENT")]
    Agent,
    #[serde(rename = "SKILL")]
    Skill,
    #[serde(rename = "PROMPT")]
    Prompt,
    #[serde(rename = "KNOWLEDGE_BASE")]
    KnowledgeBase,
    #[serde(rename = "CUSTOM_VOICE")]
    CustomVoice,
    #[serde(rename = "DATASET")]
    Dataset,
    #[serde(rename = "FINE_TUNING_JOB")]
    FineTuningJob,
    #[serde(rename = "BATCH_JOB")]
    BatchJob,
    #[serde(rename = "DATA_CAPTURE_EXTRACT_JOB")]
    DataCaptureExtractJob,
    #[serde(rename = "LE_CHAT_CONVERSATION")]
    LeChatConversation,
    #[serde(rename = "LE_CHAT_MEMORIES")]
    LeChatMemories,
    #[serde(rename = "LE_CHAT_FLASH_ANSWERS")]
    LeChatFlashAnswers,
    #[serde(rename = "LE_CHAT_LOCALISATION")]
    LeChatLocalisation,
    #[serde(rename = "LE_CHAT_DATA")]
    LeChatData,
    #[serde(rename = "INVOICE")]
    Invoice,
    #[serde(rename = "WALLET")]
    Wallet,
    #[serde(rename = "MONTHLY_LIMIT")]
    MonthlyLimit,
    #[serde(rename = "WORKSPACE_MONTHLY_LIMIT")]
    WorkspaceMonthlyLimit,
    #[serde(rename = "SHARED_BUDGET")]
    SharedBudget,
    #[serde(rename = "AUTO_RECHARGE")]
    AutoRecharge,
    #[serde(rename = "PAYMENT_METHOD")]
    PaymentMethod,
    #[serde(rename = "SUBSCRIPTION")]
    Subscription,
    #[serde(rename = "BILLING_INFO")]
    BillingInfo,
    #[serde(rename = "LIBRARY")]
    Library,
    #[serde(rename = "LIBRARY_DOCUMENT")]
    LibraryDocument,
    #[serde(rename = "INTEGRATION")]
    Integration,
    #[serde(rename = "CONNECTORS_GATEWAY")]
    ConnectorsGateway,
    #[serde(rename = "CONNECTORS_DEBUGGER")]
    ConnectorsDebugger,
    #[serde(rename = "FEATURE_PERMISSION")]
    FeaturePermission,
    #[serde(rename = "SECRET_STORE_ENTRY")]
    SecretStoreEntry,
    #[serde(rename = "CRAWLER_CONFIG")]
    CrawlerConfig,
    #[serde(rename = "SHARED_RESOURCE")]
    SharedResource,
    #[serde(rename = "RATE_LIMIT_RULE")]
    RateLimitRule,
    #[serde(rename = "APP")]
    App,
    #[serde(rename = "DEPLOYMENT")]
    Deployment,
    #[serde(rename = "DOMAIN")]
    Domain,
    #[serde(rename = "PERSISTENT_VOLUME")]
    PersistentVolume,
    #[serde(rename = "SECRET")]
    Secret,
    #[serde(rename = "SERVICE")]
    Service,
    #[serde(rename = "TRUSTED_ISSUER")]
    TrustedIssuer,
}

impl TargetType {
    /// The spec's spelling.
    pub fn as_str(self) -> String {
        serde_json::to_value(self)
            .ok()
            .and_then(|value| value.as_str().map(str::to_owned))
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_type_the_spec_lacks_is_refused() {
        let good = r#"{"created_at":"2026-06-01T10:00:00Z","actor_type":"HUMAN","actor_metadata":{},
            "event_type":"workspace.update","event_metadata":{},"target_type":"WORKSPACE",
            "target_metadata":{},"log_id":1}"#;
        let event: AuditLogOut = serde_json::from_str(good).unwrap();
        assert_eq!(event.event_type.as_str(), "workspace.update");
        assert_eq!(event.target_type.as_str(), "WORKSPACE");
        let bad = good.replace("workspace.update", "workspace.teleport");
        let error = serde_json::from_str::<AuditLogOut>(&bad).unwrap_err();
        assert!(error.to_string().contains("workspace.teleport"), "{error}");
        let bad = good.replace("\"HUMAN\"", "\"ROBOT\"");
        assert!(serde_json::from_str::<AuditLogOut>(&bad).is_err());
    }
}
