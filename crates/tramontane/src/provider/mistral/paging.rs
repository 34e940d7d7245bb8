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

    pub fn len(&self) -> usize {
        self.items.len()
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
}
