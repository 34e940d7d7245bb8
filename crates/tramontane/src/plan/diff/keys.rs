//! API keys: created, replaced where the API cannot change what differs (expiry, owner),
//! rotated inside their window with an overlap, and their predecessors deleted once it
//! ends; keys an interrupted apply never delivered are replaced or deleted.

use std::collections::BTreeMap;

use jiff::Timestamp;
use jiff::civil::Date;

use super::{Planner, plural, sink_summary, timestamp};
use crate::model::{ApiKey, Expiry, LiveKey};
use crate::plan::{
    Action, Change, ChangeSpec, KeySpec, Kind, LiveKeyRef, Rotation, RotationStage, Unmanaged,
};

/// Why a key the journal shows undelivered is replaced.
const UNDELIVERED_KEY: &str = "an apply created this key and stopped before its secret reached its sink (the key journal has no delivery)";

impl Planner<'_> {
    pub(super) fn keys(&mut self) {
        let desired = &self.input.desired;
        let live = &self.input.live;
        let today = self.input.today();

        // The newest key of a name is the one the policy manages; older ones of the same
        // name are its predecessors, left by a rotation or a replacement.
        let mut by_address: BTreeMap<(String, String), Vec<&LiveKey>> = BTreeMap::new();
        let mut loose: Vec<&LiveKey> = Vec::new();
        for key in &live.keys {
            match (&key.workspace, &key.name) {
                (Some(workspace), Some(name)) if live.workspaces.contains_key(workspace) => {
                    by_address
                        .entry((workspace.clone(), name.clone()))
                        .or_default()
                        .push(key)
                }
                (Some(workspace), _) if live.archived_workspaces.contains(workspace) => {}
                _ => loose.push(key),
            }
        }
        for keys in by_address.values_mut() {
            keys.sort_by(|a, b| b.created_at.cmp(&a.created_at));
        }

        for (workspace_name, workspace) in &desired.workspaces {
            for (name, key) in &workspace.keys {
                let address = format!("workspace.{workspace_name}.key.{name}");
                let wanted = key_spec(workspace_name, name, key, today);
                let keys = by_address
                    .get(&(workspace_name.clone(), name.clone()))
                    .map_or(&[][..], Vec::as_slice);
                let Some(current) = keys.first().copied() else {
                    self.push(Change::new(
                        address,
                        "in the policy, not in the organization",
                        ChangeSpec::KeyCreate(wanted),
                    ));
                    continue;
                };
                let owner = self.readable_owner(current);
                let change = if live.undelivered.contains(&current.id) {
                    Some(Change::new(
                        address.clone(),
                        format!("{UNDELIVERED_KEY}; a new key, delivered, replaces it"),
                        ChangeSpec::KeyReplace {
                            before: live_key(current, owner.as_deref()),
                            after: wanted,
                        },
                    ))
                } else {
                    key_change(&address, key, wanted, current, owner.as_deref(), today)
                };
                if let Some(change) = change {
                    if change.action == Action::Rotate {
                        self.rotations.push(Rotation {
                            address: address.clone(),
                            stage: RotationStage::Starting,
                            predecessor_created: current.created_at.clone(),
                            successor_created: None,
                            retire_after: Some(timestamp(self.input.now + key.rotation_overlap())),
                        });
                    }
                    self.push(change);
                }
                // An older key whose secret reached nobody goes now; the others are
                // superseded by the next newer key whose secret was delivered.
                let mut successor = current;
                for older in &keys[1..] {
                    if live.undelivered.contains(&older.id) {
                        self.delete_undelivered(&address, older);
                        continue;
                    }
                    // A successor never delivered supersedes nothing: the key that replaces
                    // it starts the overlap afresh.
                    if !live.undelivered.contains(&successor.id) {
                        self.predecessor(&address, key, successor, older);
                    }
                    successor = older;
                }
            }
        }

        for ((workspace, name), keys) in &by_address {
            let declared = desired
                .workspaces
                .get(workspace)
                .is_some_and(|w| w.keys.contains_key(name));
            if declared {
                continue;
            }
            for key in keys {
                let address = format!("workspace.{workspace}.key.{name}");
                self.unmanaged_key(address, key, "not in the policy".into());
            }
        }
        for key in loose {
            let address = match &key.name {
                Some(name) => format!("key.{name}"),
                None => "key.(unnamed)".into(),
            };
            self.unmanaged_key(
                address,
                key,
                "outside any workspace the policy can address".into(),
            );
        }
    }

    /// The owner of a live key, where the API lets it be read: `created_by` naming a member.
    /// Anything else (no creator, an id, someone who left) says nothing about the owner.
    fn readable_owner(&self, key: &LiveKey) -> Option<String> {
        let creator = key.created_by.as_deref()?.to_lowercase();
        self.input
            .live
            .members
            .contains_key(&creator)
            .then_some(creator)
    }

    /// An older key of a declared name, superseded by `successor`: kept while the overlap
    /// lets consumers move to the new secret, deleted by the first plan after it ends.
    fn predecessor(
        &mut self,
        address: &str,
        key: &ApiKey,
        successor: &LiveKey,
        predecessor: &LiveKey,
    ) {
        let succeeded = successor
            .created_at
            .as_deref()
            .and_then(|text| text.parse::<Timestamp>().ok());
        let Some(succeeded) = succeeded else {
            // Without the successor's creation time the overlap cannot be counted: a person
            // decides, as for any key the policy does not manage.
            self.unmanaged.push(Unmanaged {
                address: address.to_owned(),
                kind: Kind::ApiKey,
                note: "an older key of the same name; its successor has no creation time, so its overlap cannot be counted".into(),
            });
            return;
        };
        let retire_after = succeeded + key.rotation_overlap();
        let finishing = self.input.now >= retire_after;
        self.rotations.push(Rotation {
            address: address.to_owned(),
            stage: if finishing {
                RotationStage::Finishing
            } else {
                RotationStage::Overlapping
            },
            predecessor_created: predecessor.created_at.clone(),
            successor_created: successor.created_at.clone(),
            retire_after: Some(timestamp(retire_after)),
        });
        if finishing {
            let reason = format!(
                "superseded: its successor was created {} and the {}-hour overlap ended {}",
                timestamp(succeeded),
                key.rotation_overlap().as_hours(),
                timestamp(retire_after)
            );
            self.push(Change::new(
                address,
                reason,
                ChangeSpec::KeyDelete(live_key(predecessor, None)),
            ));
        }
    }

    fn delete_undelivered(&mut self, address: &str, key: &LiveKey) {
        self.push(Change::new(
            address,
            format!("{UNDELIVERED_KEY}; nobody can be using it, so it is deleted"),
            ChangeSpec::KeyDelete(live_key(key, None)),
        ));
    }

    fn unmanaged_key(&mut self, address: String, key: &LiveKey, note: String) {
        if self.input.live.undelivered.contains(&key.id) && key.workspace.is_some() {
            return self.delete_undelivered(&address, key);
        }
        if self.input.desired.organization.prune.keys && key.workspace.is_some() {
            self.push(Change::new(
                address,
                format!("{note}, and `prune.keys` is on"),
                ChangeSpec::KeyDelete(live_key(key, None)),
            ));
        } else {
            let expiry = key
                .expires
                .map_or("never expires".into(), |d| format!("expires {d}"));
            self.unmanaged.push(Unmanaged {
                address,
                kind: Kind::ApiKey,
                note: format!("{note}; {expiry}"),
            });
        }
    }
}

/// The expiry a key should have, given when it was (or will be) created.
pub fn expected_expiry(key: &ApiKey, created: Date) -> Option<Date> {
    match key.expiry()? {
        Expiry::On(date) => Some(date),
        Expiry::AfterDays(days) => created
            .checked_add(jiff::Span::new().days(i64::from(days)))
            .ok(),
    }
}

fn key_spec(workspace: &str, name: &str, key: &ApiKey, today: Date) -> KeySpec {
    KeySpec {
        workspace: workspace.to_owned(),
        name: name.to_owned(),
        owner: key.owner.clone(),
        expires: expected_expiry(key, today),
        expires_after_days: key.expires_after_days,
        rotate_before_days: key.rotate_before_days,
        rotation_overlap_hours: key.rotation_overlap_hours,
        secret: sink_summary(&key.secret),
    }
}

/// A live key as a plan names it.
fn live_key(key: &LiveKey, owner: Option<&str>) -> LiveKeyRef {
    LiveKeyRef {
        workspace: key.workspace.clone(),
        name: key.name.clone(),
        owner: owner.map(str::to_owned),
        created: key.created_at.clone(),
        expires: key.expires,
    }
}

/// What a declared key that exists needs: a replacement where the API cannot change what
/// differs, a rotation inside its window, or nothing.
fn key_change(
    address: &str,
    key: &ApiKey,
    wanted: KeySpec,
    current: &LiveKey,
    owner: Option<&str>,
    today: Date,
) -> Option<Change> {
    let created = current.created_on().unwrap_or(today);
    let expiry = expected_expiry(key, created);
    let show = |date: Option<Date>| date.map_or("never".to_string(), |d| d.to_string());
    let before = live_key(current, owner);
    let replace = |reason: String| {
        Change::new(
            address,
            reason,
            ChangeSpec::KeyReplace {
                before: before.clone(),
                after: wanted.clone(),
            },
        )
    };
    if current.expires != expiry {
        // A relative expiry is counted from creation: the live key's from the day it was
        // created, its replacement's from today. Say both, so the dates shown agree with
        // the change's before and after.
        let policy = match key.expiry() {
            Some(Expiry::AfterDays(days)) => {
                format!("{days} days after creation, {} for this key", show(expiry))
            }
            _ => show(expiry),
        };
        let successor = if wanted.expires == expiry {
            String::new()
        } else {
            format!(", expiring {}", show(wanted.expires))
        };
        return Some(replace(format!(
            "the key expires {} but the policy says {policy}; the API cannot change a key's expiry, so a new key replaces it{successor}",
            show(current.expires),
        )));
    }
    if let Some(owner) = owner
        && *owner != key.owner.to_lowercase()
    {
        return Some(replace(format!(
            "the key belongs to {owner} but the policy says {}; the API cannot change a key's owner, so a new key replaces it",
            key.owner
        )));
    }
    let expires = current.expires?;
    if expires <= today {
        return Some(replace(format!("the key expired on {expires}")));
    }
    let window = key.rotate_before_days?;
    let left = today.until(expires).ok()?.get_days();
    if i64::from(left) > i64::from(window) {
        return None;
    }
    let reason = format!(
        "the key expires on {expires}, in {left} day{}, inside its {window}-day rotation window: a successor is created and delivered, and the old key is kept for {} hours, then deleted",
        plural(usize::try_from(left).unwrap_or(0)),
        key.rotation_overlap().as_hours()
    );
    Some(Change::new(
        address,
        reason,
        ChangeSpec::KeyRotate {
            before,
            after: wanted,
        },
    ))
}
