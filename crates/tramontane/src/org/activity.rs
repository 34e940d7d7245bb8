//! The chosen organization as a source of spend and audit-log events.

use jiff::Timestamp;

use super::Org;
use crate::provider::ProviderError;
use crate::provider::activity::ActivitySource;
use crate::provider::mistral::api::{AuditLogOut, UsageOutJson};

impl ActivitySource for Org {
    async fn usage(
        &self,
        year: i16,
        month: i8,
        workspace: Option<&str>,
    ) -> Result<UsageOutJson, ProviderError> {
        match self {
            Org::Mistral(provider) => provider.usage(year, month, workspace).await,
            Org::Sandbox(provider) => provider.usage(year, month, workspace).await,
        }
    }

    async fn audit_logs(
        &self,
        after: Timestamp,
        before: Timestamp,
    ) -> Result<Vec<AuditLogOut>, ProviderError> {
        match self {
            Org::Mistral(provider) => provider.audit_logs(after, before).await,
            Org::Sandbox(provider) => provider.audit_logs(after, before).await,
        }
    }
}
