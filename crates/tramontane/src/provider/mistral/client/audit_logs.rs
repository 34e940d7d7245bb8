//! `GET /v1/admin/audit-logs`: the organization's audit log over a time window, read to
//! its end.
//!
//! The endpoint pages by time, not by number: `sort=ascending&after=T&limit=N` answers the
//! next N entries after T, as a bare array without a total, and the server may serve fewer
//! than N. Paging on by the latest time seen would lose entries that share that instant
//! but did not fit on the page, so each page's latest instant is read on its own (`after`
//! one microsecond before it, `before` one after it), from both ends: when the two answers
//! meet, every entry of that instant is in hand; when they do not, more entries share one
//! instant than two pages hold, and the read fails rather than miss some.
//!
//! Every bound asked for is a whole microsecond: the real server (pydantic over Postgres)
//! keeps no finer time and truncates a finer bound, so a window of ±1 ns around an instant
//! came back empty, or holding the instant itself, and paging could never finish. Whether
//! the server's bounds include their own instant or not, both are handled: entries are told
//! apart by `log_id`, and each window is read for the instant it was asked about only.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashSet};

use jiff::{RoundMode, SignedDuration, Timestamp, TimestampRound, Unit};

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

/// The finest time the server keeps and filters by.
const TICK: SignedDuration = SignedDuration::from_micros(1);

/// `time` on the tick at or before it.
fn tick_floor(time: Timestamp) -> Timestamp {
    to_tick(time, RoundMode::Floor)
}

/// `time` on the tick at or after it.
fn tick_ceil(time: Timestamp) -> Timestamp {
    to_tick(time, RoundMode::Ceil)
}

fn to_tick(time: Timestamp, mode: RoundMode) -> Timestamp {
    time.round(TimestampRound::new().smallest(Unit::Microsecond).mode(mode))
        .unwrap_or(time)
}

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
        // The window widened to whole ticks; entries between it and the one asked for are
        // dropped at the end.
        let mut asked_after = tick_floor(after);
        let asked_before = tick_ceil(before);
        // Whether the server's bounds include their own instants, once an answer shows it.
        let mut inclusive = false;
        loop {
            let page = self
                .audit_page(
                    asked_after,
                    asked_before,
                    AuditLogsSorting::Ascending,
                    &list,
                )
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
                // Only entries in hand came back: the server's `after` includes its own
                // instant (or keeps finer times than a tick). Ask from the instant read,
                // then from the tick past it.
                let Some(done) = done else { break };
                let next = if asked_after < done {
                    done
                } else {
                    tick_floor(done) + TICK
                };
                if asked_after >= next {
                    return Err(list.window(format!(
                        "`after={asked_after}` served only entries at or before {done} again, so paging cannot move on"
                    )));
                }
                asked_after = next;
                continue;
            };
            let instant = self.audit_instant(latest, &mut inclusive, &list).await?;
            let mut batch = Vec::new();
            for (time, entry) in fresh.into_iter().chain(instant) {
                if seen.insert(entry.log_id) {
                    found.insert((time, entry.log_id), entry.clone());
                    batch.push(entry);
                }
            }
            list.add(batch)?;
            done = Some(latest);
            asked_after = tick_floor(latest);
        }
        drop(list);
        Ok(found
            .into_iter()
            .filter(|((time, _), _)| *time > after && *time < before)
            .map(|(_, entry)| entry)
            .collect())
    }

    /// Every entry of one instant, or an error when more share it than two pages hold.
    /// `inclusive` is whether the server's bounds were seen to include their own instants.
    async fn audit_instant(
        &self,
        instant: Timestamp,
        inclusive: &mut bool,
        list: &Collected<AuditLogOut>,
    ) -> Result<Timed, ApiError> {
        let on_tick = tick_floor(instant) == instant;
        // A tick either side is a window around the instant alone for a server whose
        // bounds are exclusive. One whose bounds include their instants serves the
        // neighbours too, which could fill both pages: it is asked for the instant itself.
        let (from, to) = if *inclusive && on_tick {
            (instant, instant)
        } else {
            (tick_floor(instant) - TICK, tick_ceil(instant) + TICK)
        };
        let (first, last) = tokio::try_join!(
            self.audit_page(from, to, AuditLogsSorting::Ascending, list),
            self.audit_page(from, to, AuditLogsSorting::Descending, list),
        )?;
        if from != to
            && on_tick
            && first
                .iter()
                .chain(&last)
                .any(|(time, _)| *time == from || *time == to)
        {
            *inclusive = true;
            return Box::pin(self.audit_instant(instant, inclusive, list)).await;
        }
        let at = |page: Timed| -> Timed {
            page.into_iter()
                .filter(|(time, _)| *time == instant)
                .collect()
        };
        let (first, last) = (at(first), at(last));
        if first.is_empty() && last.is_empty() {
            return Err(list.window(format!(
                "the server served an entry at {instant}, but none for `after={from}&before={to}` around it: it filters by times other than those it reports"
            )));
        }
        let from_start: HashSet<i64> = first.iter().map(|(_, entry)| entry.log_id).collect();
        if !last
            .iter()
            .any(|(_, entry)| from_start.contains(&entry.log_id))
        {
            return Err(list.window(format!(
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
                // Bounds may be inclusive or exclusive: only beyond them is an entry wrong.
                if time < after || time > before {
                    return Err(list.window(format!(
                        "entry {} of {time} lies outside the window asked for ({after} to {before}): the server did not filter by `after` and `before`",
                        entry.log_id
                    )));
                }
                Ok((time, entry))
            })
            .collect()
    }
}
