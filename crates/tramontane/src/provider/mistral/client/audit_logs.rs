//! `GET /v1/admin/audit-logs`: the organization's audit log over a time window, read to
//! its end.
//!
//! The endpoint pages by time, not by number: `sort=ascending&after=T&limit=N` answers the
//! next N entries after T, as a bare array without a total, and the server may serve fewer
//! than N. Paging on by the latest time seen would lose entries that share that instant
//! but did not fit on the page, so each page's latest instant is read on its own
//! (`after` just before it, `before` just after it), from both ends: when the two answers
//! meet, every entry of that instant is in hand; when they do not, more entries share one
//! instant than two pages hold, and the read fails rather than miss some. Whether the
//! server's `after` includes its own instant or not, entries are told apart by `log_id`.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashSet};

use jiff::{SignedDuration, Timestamp};

use super::Client;
use crate::provider::mistral::api::{AuditLogOut, AuditLogsSorting};
use crate::provider::mistral::error::ApiError;
use crate::provider::mistral::paging::{Collected, Listed};

/// Entries asked for a page. The spec sets no maximum (its default is 20); a server may
/// serve fewer, which only costs requests.
pub const AUDIT_LOGS_PAGE_SIZE: usize = 500;

const PATH: &str = "/v1/admin/audit-logs";

impl Listed for AuditLogOut {
    fn id(&self) -> Cow<'_, str> {
        Cow::Owned(self.log_id.to_string())
    }
}

/// One page's entries with their times.
type Timed = Vec<(Timestamp, AuditLogOut)>;

impl Client {
    /// Every entry created after `after` and before `before`, oldest first.
    pub async fn audit_logs(
        &self,
        after: Timestamp,
        before: Timestamp,
    ) -> Result<Vec<AuditLogOut>, ApiError> {
        let mut list = Collected::new(format!("GET {PATH}"));
        let mut seen: HashSet<i64> = HashSet::new();
        let mut found: BTreeMap<(Timestamp, i64), AuditLogOut> = BTreeMap::new();
        // Every entry at or before `done` is in hand.
        let mut done: Option<Timestamp> = None;
        let mut asked_after = after;
        loop {
            let page = self
                .audit_page(asked_after, before, AuditLogsSorting::Ascending, &list)
                .await?;
            let served = !page.is_empty();
            let fresh: Timed = page
                .into_iter()
                .filter(|(time, _)| done.is_none_or(|done| *time > done))
                .collect();
            let Some(latest) = fresh.iter().map(|(time, _)| *time).max() else {
                if !served {
                    break;
                }
                // The server's `after` includes its own instant, and that instant is read
                // already: ask from just past it.
                let Some(done) = done else { break };
                let past = done + SignedDuration::from_nanos(1);
                if asked_after >= past {
                    return Err(list.changed(format!(
                        "entries at or before {done} came back for `after={asked_after}`"
                    )));
                }
                asked_after = past;
                continue;
            };
            let instant = self.audit_instant(latest, &list).await?;
            let mut batch = Vec::new();
            for (time, entry) in fresh.into_iter().chain(instant) {
                if seen.insert(entry.log_id) {
                    found.insert((time, entry.log_id), entry.clone());
                    batch.push(entry);
                }
            }
            list.add(batch)?;
            done = Some(latest);
            asked_after = latest;
        }
        drop(list);
        Ok(found.into_values().collect())
    }

    /// Every entry of one instant, or an error when more share it than two pages hold.
    async fn audit_instant(
        &self,
        instant: Timestamp,
        list: &Collected<AuditLogOut>,
    ) -> Result<Timed, ApiError> {
        let (from, to) = (
            instant - SignedDuration::from_nanos(1),
            instant + SignedDuration::from_nanos(1),
        );
        let (first, last) = tokio::try_join!(
            self.audit_page(from, to, AuditLogsSorting::Ascending, list),
            self.audit_page(from, to, AuditLogsSorting::Descending, list),
        )?;
        let at = |page: Timed| -> Timed {
            page.into_iter()
                .filter(|(time, _)| *time == instant)
                .collect()
        };
        let (first, last) = (at(first), at(last));
        let from_start: HashSet<i64> = first.iter().map(|(_, entry)| entry.log_id).collect();
        if !last
            .iter()
            .any(|(_, entry)| from_start.contains(&entry.log_id))
        {
            return Err(list.changed(format!(
                "more entries share the instant {instant} than two pages of the server's hold ({} and {} served): they cannot be read whole",
                first.len(),
                last.len()
            )));
        }
        Ok(first.into_iter().chain(last).collect())
    }

    /// One page, each entry with its time, refused when an entry lies outside the window.
    async fn audit_page(
        &self,
        after: Timestamp,
        before: Timestamp,
        sort: AuditLogsSorting,
        list: &Collected<AuditLogOut>,
    ) -> Result<Timed, ApiError> {
        let query = [
            ("sort", sort.as_str().to_owned()),
            ("after", after.to_string()),
            ("before", before.to_string()),
            ("limit", AUDIT_LOGS_PAGE_SIZE.to_string()),
        ];
        let page: Vec<AuditLogOut> = self.get(PATH, &query).await?;
        page.into_iter()
            .map(|entry| {
                let time: Timestamp = entry.created_at.parse().map_err(|_| {
                    list.changed(format!(
                        "entry {} has `created_at` `{}`, not an RFC 3339 time",
                        entry.log_id,
                        entry.created_at.chars().take(40).collect::<String>()
                    ))
                })?;
                if time < after || time > before {
                    return Err(list.changed(format!(
                        "entry {} of {time} lies outside the window asked for ({after} to {before})",
                        entry.log_id
                    )));
                }
                Ok((time, entry))
            })
            .collect()
    }
}
