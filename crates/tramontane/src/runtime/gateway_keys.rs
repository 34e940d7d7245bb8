//! Gateway keys as callers: each key of the policy's `gateway_keys:` with whom it is for,
//! the workspace it calls, when it stops working, and the limits it gets, which are its
//! holder's in that workspace as the rest of [`Runtime`] already resolves them: a member's
//! grant there, or the service key's own limits.
//!
//! The digest itself is never kept here: a [`Runtime`] is shown in plans and recorded after
//! apply, and only a fingerprint of the digest is needed to see that a key was re-issued.

use std::collections::BTreeMap;

use jiff::civil::Date;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{Limits, MemberAccess, WorkspaceAccess};
use crate::model::{GatewayKey, GatewayKeyId, Holder, KeyDigest};

/// One gateway key and what it lets its caller do.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GatewayKeyAccess {
    pub holder: Holder,
    /// The workspace whose models, limits and upstream key the caller gets.
    pub workspace: String,
    /// The day (UTC) the key stops working.
    pub expires: Date,
    /// A fingerprint of the key's digest: it changes when the key is re-issued, and tells
    /// nothing about the digest or the key.
    pub fingerprint: String,
    /// The holder's limits in the workspace; `None`: the holder does not reach it, so the
    /// key grants nothing (validation reports it).
    pub limits: Option<Limits>,
}

/// Characters of a digest fingerprint: 64 bits, far more than any policy's keys need to
/// tell a re-issued key from the one before it.
const FINGERPRINT_LENGTH: usize = 16;

/// The fingerprint of `digest`, as [`GatewayKeyAccess::fingerprint`] holds it.
pub fn fingerprint(digest: &KeyDigest) -> String {
    let mut hasher = Sha256::new();
    // A domain of its own, so the fingerprint is no prefix of any other hash of the digest.
    hasher.update(b"tramontane gateway key fingerprint\0");
    hasher.update(digest.as_bytes());
    hasher
        .finalize()
        .iter()
        .take(FINGERPRINT_LENGTH / 2)
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// Every gateway key with its holder's limits, read from access already resolved.
pub(super) fn gateway_keys_of(
    entries: &BTreeMap<GatewayKeyId, GatewayKey>,
    workspaces: &BTreeMap<String, WorkspaceAccess>,
    members: &BTreeMap<String, MemberAccess>,
) -> BTreeMap<String, GatewayKeyAccess> {
    entries
        .iter()
        .map(|(id, entry)| {
            let limits = match &entry.holder {
                Holder::Member(email) => members
                    .get(&email.to_lowercase())
                    .and_then(|member| member.workspaces.get(&entry.workspace))
                    .map(|grant| grant.limits.clone()),
                Holder::ServiceKey { workspace, key } => workspaces
                    .get(workspace)
                    .and_then(|access| access.keys.get(key))
                    .map(|key| key.limits.clone()),
            };
            let access = GatewayKeyAccess {
                holder: match &entry.holder {
                    Holder::Member(email) => Holder::Member(email.to_lowercase()),
                    service => service.clone(),
                },
                workspace: entry.workspace.clone(),
                expires: entry.expires,
                fingerprint: fingerprint(&entry.digest),
                limits,
            };
            (id.as_str().to_owned(), access)
        })
        .collect()
}
