//! Lists read whole or not at all. The server decides how many items a page holds (it may
//! serve fewer than asked), so paging follows what it returned, and a list is accepted only
//! when its items are as many as its `total` says and none appears twice.

use std::borrow::Cow;
use std::collections::HashSet;

use super::api::*;
use super::error::ApiError;

/// The most items read from one list. A real organization is far below; a `total` or a
/// page sequence beyond is a broken or hostile server, refused before it costs memory.
pub const MAX_LIST_ITEMS: usize = 1_000_000;

/// Pages fetched at once, for lists whose `total` says how many there are; the client's
/// semaphore bounds requests in flight, this bounds the futures waiting for it.
pub const PAGES_PER_BATCH: usize = 64;

/// One page as the server sent it.
pub struct Page<T> {
    pub total: Option<u64>,
    pub items: Vec<T>,
}

/// An item that a list holds once.
pub trait Listed {
    fn id(&self) -> Cow<'_, str>;
}

macro_rules! listed_by {
    ($($kind:ty => $field:ident),* $(,)?) => {
        $(impl Listed for $kind {
            fn id(&self) -> Cow<'_, str> {
                Cow::Borrowed(&self.$field)
            }
        })*
    };
}

listed_by! {
    WorkspaceOut => uuid,
    AdminUserGroupOut => uuid,
    AdminUserGroupMemberOut => user_uuid,
    GroupWorkspaceAssignmentOut => workspace_uuid,
    ApiKeyExtendedOut => key_id,
}

/// The users list holds members and invitations, and its `total` counts both.
pub enum UserEntry {
    Member(AdminOrganizationMemberOut),
    Invite(OrganizationInviteOut),
}

impl Listed for UserEntry {
    fn id(&self) -> Cow<'_, str> {
        match self {
            UserEntry::Member(member) => Cow::Borrowed(&member.uuid),
            UserEntry::Invite(invite) => Cow::Owned(format!("invite {}", invite.uuid)),
        }
    }
}

/// The items of one list as its pages arrive, refusing one seen before (a server that
/// serves the same page forever ends there) and a list longer than any organization has.
pub struct Collected<T> {
    call: String,
    items: Vec<T>,
    seen: HashSet<String>,
}

impl<T: Listed> Collected<T> {
    pub fn new(call: String) -> Collected<T> {
        Collected {
            call,
            items: Vec::new(),
            seen: HashSet::new(),
        }
    }

    pub fn add(&mut self, page: Vec<T>) -> Result<(), ApiError> {
        if self.items.len() + page.len() > MAX_LIST_ITEMS {
            return Err(self.too_long((self.items.len() + page.len()) as u64));
        }
        for item in page {
            if !self.seen.insert(item.id().into_owned()) {
                return Err(self.changed(format!("`{}` was listed twice", shown(&item.id()))));
            }
            self.items.push(item);
        }
        Ok(())
    }

    /// The items, once they are as many as the list's `total` said.
    pub fn finish(self, total: Option<u64>) -> Result<Vec<T>, ApiError> {
        match total {
            Some(total) if total != self.items.len() as u64 => Err(self.changed(format!(
                "{} items were read where the list's total is {total}",
                self.items.len()
            ))),
            _ => Ok(self.items),
        }
    }

    pub fn changed(&self, problem: String) -> ApiError {
        ApiError::ListChanged {
            call: self.call.clone(),
            problem,
        }
    }

    /// The server's time windows do not answer as documented, the same way every run.
    pub fn window(&self, problem: String) -> ApiError {
        ApiError::AuditLogWindow {
            call: self.call.clone(),
            problem,
        }
    }

    pub fn too_long(&self, count: u64) -> ApiError {
        ApiError::ListTooLong {
            call: self.call.clone(),
            count,
            max: MAX_LIST_ITEMS,
        }
    }
}

/// A list paged by `limit` and `offset` with no total (the API keys), read ahead: the
/// first page shows how many items the server puts on a page (it may clamp the `limit`
/// asked), and that count is the stride of every later page, so no item is skipped. Later
/// pages are asked a window at a time; the first page shorter than the stride ends the
/// list, and pages asked past it are discarded (counted, never trusted). When the first
/// page is already short of the `limit` asked, it may be the whole list or only the
/// server's clamp: one page alone tells which before a window is spent on it.
///
/// Accepted only whole: a page longer than asked, an item seen twice (what an `offset` the
/// server ignores looks like) or items after the end (a page that shrank and grew again)
/// is an error, never a shorter list.
pub struct OffsetRead<T> {
    list: Collected<T>,
    /// The `limit` of the first page.
    asked: usize,
    /// The server's page size, from the first page.
    stride: Option<usize>,
    /// Pages taken, past-the-end ones aside.
    pages: usize,
    /// The offset of the next page to ask.
    next: usize,
    /// Where the list ended: the offset just past its last item.
    end: Option<usize>,
    discarded: usize,
}

impl<T: Listed> OffsetRead<T> {
    pub fn new(call: String, limit: usize) -> OffsetRead<T> {
        OffsetRead {
            list: Collected::new(call),
            asked: limit.max(1),
            stride: None,
            pages: 0,
            next: 0,
            end: None,
            discarded: 0,
        }
    }

    /// The pages to ask next, as `(offset, limit)`, at most `budget` of them; none once
    /// the end is known. The answers go to [`OffsetRead::take`] in this order.
    pub fn window(&mut self, budget: usize) -> Vec<(usize, usize)> {
        if self.end.is_some() {
            return Vec::new();
        }
        let Some(stride) = self.stride else {
            return vec![(0, self.asked)];
        };
        let count = if self.pages == 1 && stride < self.asked {
            1
        } else {
            budget.max(1)
        };
        let window = (0..count)
            .map(|i| (self.next + i * stride, stride))
            .collect();
        self.next += count * stride;
        window
    }

    /// The items of the page at `offset`.
    pub fn take(&mut self, offset: usize, items: Vec<T>) -> Result<(), ApiError> {
        let limit = self.stride.unwrap_or(self.asked);
        if items.len() > limit {
            return Err(self.list.changed(format!(
                "the page at offset {offset} holds {} items where at most {limit} were asked",
                items.len()
            )));
        }
        if let Some(end) = self.end {
            if !items.is_empty() {
                return Err(self.list.changed(format!(
                    "the page at offset {offset} holds {} items past the end at {end}: a page shrank and grew again",
                    items.len()
                )));
            }
            self.discarded += 1;
            return Ok(());
        }
        self.pages += 1;
        let served = items.len();
        match self.stride {
            None => {
                self.stride = Some(served.max(1));
                self.next = served;
                if served == 0 {
                    self.end = Some(0);
                }
            }
            Some(stride) if served < stride => self.end = Some(offset + served),
            Some(_) => {}
        }
        self.list.add(items)
    }

    /// A page past the end whose request failed: its answer is not needed.
    pub fn failed_past_end(&mut self) -> bool {
        if self.end.is_some() {
            self.discarded += 1;
        }
        self.end.is_some()
    }

    /// Pages asked past the end, and discarded.
    #[cfg(test)]
    pub fn discarded(&self) -> usize {
        self.discarded
    }

    pub fn finish(self) -> Result<Vec<T>, ApiError> {
        self.list.finish(None)
    }
}

/// An id from the server, fit for a terminal: no control characters, not too long.
fn shown(id: &str) -> String {
    id.chars().filter(|c| !c.is_control()).take(100).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(id: &str) -> AdminUserGroupOut {
        serde_json::from_value(serde_json::json!({"uuid": id, "name": id, "description": null}))
            .unwrap()
    }

    #[test]
    fn an_item_seen_twice_is_refused() {
        let mut list = Collected::new("GET /v1/admin/user-groups".into());
        list.add(vec![group("a"), group("b")]).unwrap();
        let error = list.add(vec![group("b")]).unwrap_err().to_string();
        assert!(error.contains("`b` was listed twice"), "{error}");
        assert!(error.contains("the list changed while it was read: re-run"));
        assert!(error.starts_with("GET /v1/admin/user-groups: "), "{error}");
    }

    #[test]
    fn the_count_must_match_the_total() {
        let mut list = Collected::new("GET /v1/admin/workspaces".into());
        list.add(vec![group("a")]).unwrap();
        let error = list.finish(Some(2)).unwrap_err().to_string();
        assert!(error.contains("1 items were read where the list's total is 2"));
        let mut list = Collected::new("GET /v1/admin/workspaces".into());
        list.add(vec![group("a")]).unwrap();
        assert_eq!(list.finish(Some(1)).unwrap().len(), 1);
    }

    fn key(id: usize) -> ApiKeyExtendedOut {
        serde_json::from_value(serde_json::json!({
            "key_id": format!("k-{id}"), "key": null, "name": null, "hidden_key": "****",
            "created_at": "2026-01-01T00:00:00Z", "expiration_date": null, "workspace_id": null,
            "workspace_name": null, "created_by": null, "last_used": null}))
        .unwrap()
    }

    /// A server holding `count` keys that serves at most `clamp` a page.
    fn serve(count: usize, clamp: usize, offset: usize, limit: usize) -> Vec<ApiKeyExtendedOut> {
        (offset..count.min(offset + limit.min(clamp)))
            .map(key)
            .collect()
    }

    /// Reads `count` keys at `clamp` a page, `budget` at once: the keys, the requests and
    /// the windows (round trips) it took, and the pages discarded.
    fn read(count: usize, clamp: usize, budget: usize) -> (usize, usize, usize, usize) {
        let mut read = OffsetRead::new("GET /v1/admin/api-keys".into(), 1000);
        let (mut requests, mut windows) = (0, 0);
        loop {
            let window = read.window(budget);
            if window.is_empty() {
                break;
            }
            windows += 1;
            for (offset, limit) in window {
                requests += 1;
                read.take(offset, serve(count, clamp, offset, limit))
                    .unwrap();
            }
        }
        let discarded = read.discarded();
        (read.finish().unwrap().len(), requests, windows, discarded)
    }

    #[test]
    fn a_clamped_key_list_is_read_a_window_at_a_time() {
        // 10,000 keys at 100 a page, 8 at once: the first page, one to tell the clamp from
        // the end, then windows of 8 until the short (here empty) page 101.
        let (keys, requests, windows, discarded) = read(10_000, 100, 8);
        assert_eq!(keys, 10_000);
        assert_eq!(windows, 2 + 99usize.div_ceil(8));
        assert_eq!(requests, 2 + 13 * 8);
        assert_eq!(discarded, requests - 101);
        // Not clamped: 1,051 keys are a full page, then one window ended by the short page.
        assert_eq!(read(1_051, 1000, 8), (1_051, 9, 2, 7));
        // A small list costs its page and the empty one that confirms it.
        assert_eq!(read(5, 1000, 8), (5, 2, 2, 0));
        assert_eq!(read(0, 1000, 8), (0, 1, 1, 0));
        // Exactly full pages end with an empty one.
        assert_eq!(read(300, 100, 1), (300, 4, 4, 0));
    }

    fn refused(pages: &[(usize, Vec<ApiKeyExtendedOut>)]) -> String {
        let mut read = OffsetRead::new("GET /v1/admin/api-keys".into(), 100);
        for (offset, items) in pages {
            if let Err(error) = read.take(*offset, items.clone()) {
                return error.to_string();
            }
        }
        panic!("every page was taken")
    }

    #[test]
    fn a_key_list_is_accepted_only_whole() {
        let page = |from: usize, to: usize| (from..to).map(key).collect::<Vec<_>>();
        let error = refused(&[(0, page(0, 101))]);
        assert!(
            error.starts_with("GET /v1/admin/api-keys: the page at offset 0 holds 101 items where at most 100 were asked"),
            "{error}"
        );
        // The clamp is 10: a later page of 20 is longer than asked.
        let error = refused(&[(0, page(0, 10)), (10, page(10, 30))]);
        assert!(
            error.contains("holds 20 items where at most 10 were asked"),
            "{error}"
        );
        // An offset the server ignores: the first page again.
        let error = refused(&[(0, page(0, 10)), (10, page(0, 10))]);
        assert!(error.contains("`k-0` was listed twice"), "{error}");
        // A short page, then a full one: keys may have been skipped.
        let error = refused(&[
            (0, page(0, 10)),
            (10, page(10, 20)),
            (20, page(20, 25)),
            (30, page(30, 40)),
        ]);
        assert!(
            error.contains("the page at offset 30 holds 10 items past the end at 25: a page shrank and grew again"),
            "{error}"
        );
        assert!(
            error.ends_with("the list changed while it was read: re-run"),
            "{error}"
        );
    }

    #[test]
    fn pages_past_the_end_are_discarded() {
        let mut read = OffsetRead::new("GET /v1/admin/api-keys".into(), 10);
        assert_eq!(read.window(4), [(0, 10)]);
        read.take(0, (0..10).map(key).collect()).unwrap();
        assert_eq!(read.window(3), [(10, 10), (20, 10), (30, 10)]);
        read.take(10, (10..13).map(key).collect()).unwrap();
        assert!(read.failed_past_end());
        read.take(30, Vec::new()).unwrap();
        assert_eq!(read.discarded(), 2);
        assert!(read.window(3).is_empty());
        assert_eq!(read.finish().unwrap().len(), 13);
    }
}
