//! The HTTP provider as a source of spend and audit-log events.

use jiff::Timestamp;

use super::MistralProvider;
use super::api::{AuditLogOut, UsageOutJson};
use crate::provider::ProviderError;
use crate::provider::activity::ActivitySource;

impl ActivitySource for MistralProvider {
    async fn usage(
        &self,
        year: i16,
        month: i8,
        workspace: Option<&str>,
    ) -> Result<UsageOutJson, ProviderError> {
        Ok(self.client.usage(year, month, workspace).await?)
    }

    async fn audit_logs(
        &self,
        after: Timestamp,
        before: Timestamp,
    ) -> Result<Vec<AuditLogOut>, ProviderError> {
        Ok(self.client.audit_logs(after, before).await?)
    }
}
