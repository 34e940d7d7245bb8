//! `GET /v1/admin/audit-logs`: the organization's audit log over a time window, read to
//! its end.
//!
//! The endpoint pages by time, not by number: `sort=ascending&after=T&limit=N` answers the
//! next N entries after T, as a bare array without a total. So the read asks again after
//! the latest time it has seen until a page brings nothing new. Whether the server's
//! `after` includes T or not, entries are told apart by `log_id`, and one seen twice is
//! dropped rather than counted twice.

use std::borrow::Cow;
use std::collections::HashSet;

use super::Client;
use crate::provider::mistral::api::{AuditLogOut, AuditLogsSorting};
use crate::provider::mistral::error::ApiError;
use crate::provider::mistral::paging::{Collected, Listed};

/// Entries asked for a page. The spec sets no maximum (its default is 20); a server may
/// serve fewer, which only costs requests.
pub const AUDIT_LOGS_PAGE_SIZE: usize = 500;

impl Listed for AuditLogOut {
    fn id(&self) -> Cow<'_, str> {
        Cow::Owned(self.log_id.to_string())
    }
}

impl Client {
    /// Every entry created after `after` and before `before` (RFC 3339 times), oldest first.
    pub async fn audit_logs(
        &self,
        after: jiff::Timestamp,
        before: jiff::Timestamp,
    ) -> Result<Vec<AuditLogOut>, ApiError> {
        const PATH: &str = "/v1/admin/audit-logs";
        let call = format!("GET {PATH}");
        let mut list = Collected::new(call.clone());
        let mut seen: HashSet<i64> = HashSet::new();
        let mut cursor = after;
        loop {
            let query = [
                ("sort", AuditLogsSorting::Ascending.as_str().to_owned()),
                ("after", cursor.to_string()),
                ("before", before.to_string()),
                ("limit", AUDIT_LOGS_PAGE_SIZE.to_string()),
            ];
            let page: Vec<AuditLogOut> = self.get(PATH, &query).await?;
            let mut latest = cursor;
            let mut fresh = Vec::new();
            for entry in page {
                let created: jiff::Timestamp =
                    entry
                        .created_at
                        .parse()
                        .map_err(|_| ApiError::ListChanged {
                            call: call.clone(),
                            problem: format!(
                                "entry {} has `created_at` `{}`, not an RFC 3339 time",
                                entry.log_id,
                                entry.created_at.chars().take(40).collect::<String>()
                            ),
                        })?;
                if created < cursor || created >= before {
                    return Err(list.changed(format!(
                        "entry {} of {} lies outside the window asked for ({cursor} to {before})",
                        entry.log_id, entry.created_at
                    )));
                }
                latest = latest.max(created);
                if seen.insert(entry.log_id) {
                    fresh.push(entry);
                }
            }
            if fresh.is_empty() {
                return list.finish(None);
            }
            list.add(fresh)?;
            cursor = latest;
        }
    }
}
