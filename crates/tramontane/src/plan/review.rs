//! Stage: plan, read by apply before it runs.
//!
//! What a reviewer approved, compared with what apply is about to do.
//!
//! A pull request's plan is reviewed; the plan made when it merges is applied. The two can
//! differ (the base branch moved, someone changed the organization in the console), so
//! apply compares them and stops on any difference. The comparison covers what the plan
//! would do to each address, not the wording or the clock: reasons are prose that counts
//! days, and a new key's expiry date follows from the day it is created, while the policy's
//! `expires_after_days` it is computed from is compared. Changes the calendar alone makes
//! due (a rotation window reached, an overlap ended, a key expired) are left out: the
//! scheduled apply makes them without a review, so a merge does not stop for them either.

use std::collections::BTreeMap;

use jiff::civil::Date;
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::{Action, Change, ChangeSpec, Kind, Plan, RotationStage};

impl Plan {
    /// Whether the calendar alone made `change` due: a rotation, the deletion of a rotated
    /// key's predecessor once its overlap ended, or the replacement of a key that expired.
    /// Everything else (policy changes, drift) needs a reviewed plan. Read from the plan
    /// alone, so a saved plan is classified the same on any day.
    pub fn is_due_to_calendar(&self, change: &Change) -> bool {
        if change.kind != Kind::ApiKey {
            return false;
        }
        match change.action {
            Action::Rotate => true,
            Action::Delete => self.rotations.iter().any(|rotation| {
                rotation.address == change.address && rotation.stage == RotationStage::Finishing
            }),
            Action::Replace => replaces_an_expired_key(change),
            Action::Create | Action::Update | Action::Manual => false,
        }
    }

    /// The plan with only the changes `keep` selects, its summary counted again.
    pub fn retain_changes(&mut self, mut keep: impl FnMut(&Plan, &Change) -> bool) {
        let changes = std::mem::take(&mut self.changes);
        let kept: Vec<Change> = changes
            .into_iter()
            .filter(|change| keep(self, change))
            .collect();
        self.summary = super::Summary::of(&kept);
        self.changes = kept;
    }

    /// What the plan does to each address, as a reviewer approves it (see the module).
    pub fn reviewed_changes(&self) -> BTreeMap<String, Vec<Value>> {
        let mut by_address: BTreeMap<String, Vec<Value>> = BTreeMap::new();
        for change in &self.changes {
            if self.is_due_to_calendar(change) {
                continue;
            }
            by_address
                .entry(change.address.clone())
                .or_default()
                .push(reviewed_form(change));
        }
        by_address
    }

    /// A digest of [`Plan::reviewed_changes`], shown in the pull request comment and by
    /// apply, so a person can see that what is applied is what was reviewed.
    pub fn review_digest(&self) -> String {
        // Maps of strings and JSON values serialize infallibly.
        let bytes = serde_json::to_vec(&self.reviewed_changes()).unwrap_or_default();
        let digest = Sha256::digest(bytes);
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        format!("sha256:{hex}")
    }
}

/// Whether a key is replaced only because it expired: its expiry is the one the policy
/// wants and its owner (where readable) is the policy's, so neither a policy change nor
/// drift explains the replacement. Mirrors the order in which the plan decides it.
fn replaces_an_expired_key(change: &Change) -> bool {
    let ChangeSpec::KeyReplace { before, after } = &change.spec else {
        return false;
    };
    let Some(expires) = before.expires else {
        return false;
    };
    let wanted = match after.expires_after_days {
        Some(days) => before
            .created
            .as_deref()
            .and_then(|created| created.get(..10)?.parse::<Date>().ok())
            .and_then(|created| {
                created
                    .checked_add(jiff::Span::new().days(i64::from(days)))
                    .ok()
            }),
        None => after.expires,
    };
    let owner_kept = before
        .owner
        .as_ref()
        .is_none_or(|live| live.eq_ignore_ascii_case(&after.owner));
    wanted == Some(expires) && owner_kept
}

/// A change without its prose, and without the expiry date a new key gets from the day it
/// is created when the policy gives its lifetime in days instead.
fn reviewed_form(change: &Change) -> Value {
    let mut after = change.after();
    if let Some(Value::Object(fields)) = &mut after
        && fields.contains_key("expires_after_days")
    {
        fields.remove("expires");
    }
    serde_json::json!({
        "kind": change.kind,
        "action": change.action,
        "enforcement": change.enforcement,
        "before": change.before(),
        "after": after,
    })
}

/// How a plan made now differs from the one reviewed, by address.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReviewDifference {
    /// Changes to addresses the reviewed plan did not touch.
    pub added: Vec<String>,
    /// Addresses the reviewed plan changed and this one no longer does.
    pub removed: Vec<String>,
    /// Addresses both change, differently: `address: reviewed → now` by action.
    pub altered: Vec<String>,
}

impl ReviewDifference {
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty() && self.altered.is_empty()
    }
}

/// The differences between the reviewed plan and the plan made now, ignoring what the
/// calendar alone made due.
pub fn compare(reviewed: &Plan, now: &Plan) -> ReviewDifference {
    let before = reviewed.reviewed_changes();
    let after = now.reviewed_changes();
    let mut difference = ReviewDifference::default();
    for (address, changes) in &after {
        match before.get(address) {
            None => difference
                .added
                .push(format!("{address} ({})", actions(changes))),
            Some(reviewed) if reviewed != changes => difference.altered.push(format!(
                "{address} ({} reviewed, {} now{})",
                actions(reviewed),
                actions(changes),
                if actions(reviewed) == actions(changes) {
                    ", with other values"
                } else {
                    ""
                }
            )),
            Some(_) => {}
        }
    }
    for (address, changes) in &before {
        if !after.contains_key(address) {
            difference
                .removed
                .push(format!("{address} ({})", actions(changes)));
        }
    }
    difference
}

fn actions(changes: &[Value]) -> String {
    changes
        .iter()
        .filter_map(|change| change.get("action")?.as_str())
        .collect::<Vec<_>>()
        .join(" + ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{KeySpec, LiveKeyRef};

    fn live(created: &str, expires: &str, owner: Option<&str>) -> LiveKeyRef {
        LiveKeyRef {
            workspace: Some("w".into()),
            name: Some("k".into()),
            owner: owner.map(str::to_owned),
            created: Some(created.into()),
            expires: Some(expires.parse().unwrap()),
        }
    }

    fn wanted(days: Option<u32>, expires: Option<&str>, owner: &str) -> KeySpec {
        KeySpec {
            workspace: "w".into(),
            name: "k".into(),
            owner: owner.into(),
            expires: expires.map(|d| d.parse().unwrap()),
            expires_after_days: days,
            rotate_before_days: None,
            rotation_overlap_hours: None,
            secret: "file k".into(),
        }
    }

    fn replace(before: LiveKeyRef, after: KeySpec) -> Change {
        Change::new(
            "workspace.w.key.k",
            "",
            ChangeSpec::KeyReplace { before, after },
        )
    }

    fn plan(changes: Vec<Change>) -> Plan {
        Plan::of_changes("sandbox:demo", changes)
    }

    #[test]
    fn only_an_expired_key_in_sync_with_its_policy_is_replaced_by_the_calendar() {
        let live_key = live("2026-03-01T12:00:00Z", "2026-03-31", Some("bob@x"));
        let expired = replace(
            live_key.clone(),
            wanted(Some(30), Some("2026-07-01"), "Bob@x"),
        );
        let lifetime_changed = replace(live_key.clone(), wanted(Some(90), None, "bob@x"));
        let owner_changed = replace(live_key, wanted(Some(30), None, "carol@x"));
        let fixed_date = replace(
            live("2026-01-01T00:00:00Z", "2026-05-01", None),
            wanted(None, Some("2026-05-01"), "bob@x"),
        );
        let plan = plan(vec![expired, lifetime_changed, owner_changed, fixed_date]);
        let due: Vec<bool> = plan
            .changes
            .iter()
            .map(|change| plan.is_due_to_calendar(change))
            .collect();
        assert_eq!(due, [true, false, false, true]);
    }

    #[test]
    fn the_reviewed_form_ignores_prose_and_the_day_a_new_key_is_made() {
        let key = |day: &str, days: u32, reason: &str| {
            Change::new(
                "workspace.w.key.k",
                reason,
                ChangeSpec::KeyCreate(wanted(Some(days), Some(day), "bob@x")),
            )
        };
        let monday = plan(vec![key("2026-07-01", 30, "a")]);
        let tuesday = plan(vec![key("2026-07-02", 30, "b")]);
        assert_eq!(compare(&monday, &tuesday), ReviewDifference::default());
        assert_eq!(monday.review_digest(), tuesday.review_digest());
        let changed = plan(vec![key("2026-07-01", 60, "a")]);
        assert_ne!(monday.review_digest(), changed.review_digest());
        assert_eq!(
            compare(&monday, &changed).altered,
            ["workspace.w.key.k (create reviewed, create now, with other values)"]
        );
    }
}
