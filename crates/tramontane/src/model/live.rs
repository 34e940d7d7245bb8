//! The organization as the Admin API reports it, resolved to names.
//!
//! Providers read UUIDs and role UUIDs and resolve them here, so the planner compares
//! names with names. The ids stay on each object because applying a change needs them,
//! but they are never part of an address or a rendering.

use std::collections::{BTreeMap, BTreeSet};

use jiff::civil::Date;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::SpendLimit;

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LiveOrg {
    /// Members by lower-cased email: Mistral treats emails case-insensitively.
    pub members: BTreeMap<String, LiveMember>,
    /// Pending invitations by lower-cased email: people who are not members yet.
    pub invites: BTreeMap<String, LiveInvite>,
    /// Active workspaces by name.
    pub workspaces: BTreeMap<String, LiveWorkspace>,
    /// Archived workspaces by name: gone for every purpose but their name.
    pub archived_workspaces: BTreeSet<String>,
    pub teams: BTreeMap<String, LiveTeam>,
    pub keys: Vec<LiveKey>,
    pub spend_limit: Option<SpendLimit>,
    pub rate_limits: Option<RateLimits>,
    /// Ids of keys an apply created whose secret it never delivered (it stopped in between),
    /// as the key journal tells: not the API's knowledge, so absent from what it reports.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub undelivered: BTreeSet<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LiveMember {
    pub id: String,
    pub email: String,
    pub name: String,
    /// Organization role names (`member`, `billing_manager`, `organization_admin`, or a
    /// custom role's name).
    pub roles: BTreeSet<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LiveInvite {
    pub id: String,
    pub email: String,
    pub roles: BTreeSet<String>,
    pub expired: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LiveWorkspace {
    pub id: String,
    pub name: String,
    pub description: String,
    pub is_default: bool,
    /// Direct members by lower-cased email, with their workspace role names.
    pub members: BTreeMap<String, BTreeSet<String>>,
    /// Set in the console; `None` when the API reports none.
    pub spend_limit: Option<SpendLimit>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LiveTeam {
    pub id: String,
    pub name: String,
    pub description: String,
    /// Lower-cased emails.
    pub members: BTreeSet<String>,
    /// Workspace assignments by workspace name, with role names.
    pub workspaces: BTreeMap<String, BTreeSet<String>>,
    pub organization_role: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LiveKey {
    pub id: String,
    pub name: Option<String>,
    /// The workspace's name; `None` for a key outside any workspace.
    pub workspace: Option<String>,
    /// Who created the key. The API has no owner field, so this is all there is.
    pub created_by: Option<String>,
    /// RFC 3339 timestamp.
    pub created_at: Option<String>,
    pub expires: Option<Date>,
    pub last_used: Option<Date>,
}

impl LiveKey {
    pub fn created_on(&self) -> Option<Date> {
        let text = self.created_at.as_deref()?;
        text.get(..10)?.parse().ok()
    }
}

/// The organization's inference limits: org state to show, not the Admin API's own limit.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RateLimits {
    pub requests_per_second: u64,
    pub tokens_by_model: BTreeMap<String, TokenLimits>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenLimits {
    pub tokens_per_minute: u64,
    pub tokens_per_month: u64,
}

impl LiveOrg {
    /// A digest of everything a plan depends on, so apply can tell that the organization
    /// changed since the plan was made. `last_used` is left out: it moves whenever a key is
    /// used, which does not make a plan stale.
    pub fn fingerprint(&self) -> String {
        let mut stable = self.clone();
        for key in &mut stable.keys {
            key.last_used = None;
        }
        stable.keys.sort_by(|a, b| a.id.cmp(&b.id));
        // Serializing owned maps and vectors cannot fail.
        let bytes = serde_json::to_vec(&stable).unwrap_or_default();
        let digest = Sha256::digest(&bytes);
        let hex: String = digest.iter().map(|byte| format!("{byte:02x}")).collect();
        format!("sha256:{hex}")
    }

    /// Emails of the members who are organization admins.
    pub fn admins(&self) -> Vec<&str> {
        self.members
            .values()
            .filter(|member| member.roles.contains("organization_admin"))
            .map(|member| member.email.as_str())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(last_used: Option<&str>) -> LiveKey {
        LiveKey {
            id: "k1".into(),
            name: Some("ci".into()),
            workspace: Some("dev".into()),
            created_by: None,
            created_at: Some("2026-03-01T10:00:00Z".into()),
            expires: Some("2026-05-30".parse().unwrap()),
            last_used: last_used.map(|d| d.parse().unwrap()),
        }
    }

    #[test]
    fn the_fingerprint_ignores_use_but_not_change() {
        let mut a = LiveOrg::default();
        a.keys.push(key(None));
        let mut b = LiveOrg::default();
        b.keys.push(key(Some("2026-04-01")));
        assert_eq!(a.fingerprint(), b.fingerprint());
        b.keys[0].expires = None;
        assert_ne!(a.fingerprint(), b.fingerprint());
        assert_eq!(key(None).created_on(), Some("2026-03-01".parse().unwrap()));
    }
}
