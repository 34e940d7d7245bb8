//! The diff itself: one pass per kind, in dependency order.

use std::collections::{BTreeMap, BTreeSet};

use jiff::Timestamp;
use jiff::civil::Date;
use serde_json::{Map, Value, json};

use super::{
    Action, Change, Enforcement, FORMAT_VERSION, Kind, LiveRef, Plan, PolicyRef, Rotation,
    RotationStage, Summary, Unmanaged,
};
use crate::model::{
    ApiKey, DesiredOrg, Expiry, LiveKey, LiveOrg, SecretSink, SpendLimit, Workspace, WorkspaceRole,
};

/// Everything a plan is made from.
pub struct PlanInput<'a> {
    pub desired: &'a DesiredOrg,
    pub live: &'a LiveOrg,
    /// The moment expiries, rotation windows and overlaps are counted from.
    pub now: Timestamp,
    /// How the organization was chosen, for the plan's `live.org`.
    pub org: String,
    pub policy: PolicyRef,
}

impl PlanInput<'_> {
    /// The day (UTC) expiries are compared with: keys expire on dates, not instants.
    pub fn today(&self) -> Date {
        self.now.to_zoned(jiff::tz::TimeZone::UTC).date()
    }
}

pub fn diff(input: &PlanInput<'_>) -> Plan {
    let pending = input
        .desired
        .members
        .keys()
        .map(|email| email.to_lowercase())
        .filter(|email| {
            !input.live.members.contains_key(email) && input.live.invites.contains_key(email)
        })
        .collect();
    let mut planner = Planner {
        input,
        pending,
        creates_and_updates: Vec::new(),
        deletes: Vec::new(),
        manual: Vec::new(),
        unmanaged: Vec::new(),
        rotations: Vec::new(),
        warnings: Vec::new(),
    };
    planner.organization();
    planner.members();
    planner.workspaces();
    planner.teams();
    planner.keys();

    // Creates and updates run parents first; deletes run children first.
    let Planner {
        mut creates_and_updates,
        mut deletes,
        manual,
        unmanaged,
        rotations,
        warnings,
        ..
    } = planner;
    creates_and_updates.sort_by_key(|change| rank(change.kind));
    deletes.sort_by_key(|change| std::cmp::Reverse(rank(change.kind)));
    let mut changes = creates_and_updates;
    changes.append(&mut deletes);
    changes.extend(manual);

    let mut plan = Plan {
        format_version: FORMAT_VERSION.into(),
        policy: input.policy.clone(),
        live: LiveRef {
            org: input.org.clone(),
            fingerprint: input.live.fingerprint(),
            rate_limits: input.live.rate_limits.clone(),
        },
        summary: Summary::of(&changes),
        changes,
        unmanaged,
        rotations,
        guards: Vec::new(),
        warnings,
        runtime: runtime(input.desired),
    };
    plan.guards = super::guard::check(
        &plan,
        input.desired,
        input.live,
        &super::guard::GuardOptions::default(),
    );
    plan
}

fn rank(kind: Kind) -> u8 {
    match kind {
        Kind::Organization => 0,
        Kind::Member => 1,
        Kind::Workspace => 2,
        Kind::Team => 3,
        Kind::ApiKey => 4,
    }
}

struct Planner<'a> {
    input: &'a PlanInput<'a>,
    /// Invited people the policy lists who have not accepted: they cannot be added to
    /// workspaces or teams until they do.
    pending: BTreeSet<String>,
    creates_and_updates: Vec<Change>,
    deletes: Vec<Change>,
    manual: Vec<Change>,
    unmanaged: Vec<Unmanaged>,
    rotations: Vec<Rotation>,
    warnings: Vec<String>,
}

impl Planner<'_> {
    fn push(&mut self, change: Change) {
        match change.action {
            Action::Delete => self.deletes.push(change),
            Action::Manual => self.manual.push(change),
            _ => self.creates_and_updates.push(change),
        }
    }

    fn update(
        &mut self,
        address: String,
        kind: Kind,
        before: Map<String, Value>,
        after: Map<String, Value>,
    ) {
        let changed: Vec<&str> = after
            .iter()
            .filter(|(name, value)| before.get(*name) != Some(*value))
            .map(|(name, _)| name.as_str())
            .collect();
        if changed.is_empty() {
            return;
        }
        let reason = format!(
            "{} differ{} from the policy",
            list(&changed),
            if changed.len() == 1 { "s" } else { "" }
        );
        self.push(Change {
            address,
            kind,
            action: Action::Update,
            enforcement: Enforcement::Platform,
            reason,
            before: Some(Value::Object(before)),
            after: Some(Value::Object(after)),
        });
    }

    fn organization(&mut self) {
        let Some(desired) = self.input.desired.organization.spend_limit else {
            return;
        };
        // The API takes the organization's budget in whole units.
        let desired = match desired {
            SpendLimit::Monthly(amount) => SpendLimit::Monthly(amount.round()),
            unlimited => unlimited,
        };
        let live = self.input.live.spend_limit;
        if live.is_some_and(|live| same_limit(live, desired)) {
            return;
        }
        let mut before = Map::new();
        before.insert("spend_limit".into(), limit_value(live));
        let mut after = Map::new();
        after.insert("spend_limit".into(), limit_value(Some(desired)));
        self.update("organization".into(), Kind::Organization, before, after);
    }

    fn members(&mut self) {
        let desired = &self.input.desired;
        let live = &self.input.live;
        let prune = desired.organization.prune.members;
        let wanted: BTreeMap<String, _> = desired
            .members
            .iter()
            .map(|(email, member)| (email.to_lowercase(), (email, member)))
            .collect();
        for (lower, (email, member)) in &wanted {
            let roles: BTreeSet<&str> = member.roles.iter().map(|role| role.as_str()).collect();
            let address = format!("member.{email}");
            match live.members.get(lower) {
                Some(current) => {
                    if current.name != member.name {
                        self.warnings.push(format!(
                            "`{address}`: the organization knows this person as `{}`, the policy as `{}`; \
                             names belong to the person's own profile and the Admin API cannot change them",
                            current.name, member.name
                        ));
                    }
                    let mut before = Map::new();
                    before.insert("roles".into(), json!(current.roles));
                    let mut after = Map::new();
                    after.insert("roles".into(), json!(roles));
                    self.update(address, Kind::Member, before, after);
                }
                None => {
                    if let Some(invite) = live.invites.get(lower) {
                        self.warnings.push(if invite.expired {
                            format!("`{address}` was invited but the invitation expired: invite them again from the console")
                        } else {
                            format!("`{address}` is invited and not a member until they accept; their workspaces and teams follow on the first plan after that")
                        });
                        continue;
                    }
                    self.push(Change {
                        address,
                        kind: Kind::Member,
                        action: Action::Create,
                        enforcement: Enforcement::Platform,
                        reason: "in the policy, not in the organization".into(),
                        before: None,
                        after: Some(json!({"email": email, "name": member.name, "roles": roles})),
                    });
                }
            }
        }
        for (lower, current) in &live.members {
            if wanted.contains_key(lower) {
                continue;
            }
            let address = format!("member.{}", current.email);
            if prune {
                self.push(Change {
                    address,
                    kind: Kind::Member,
                    action: Action::Delete,
                    enforcement: Enforcement::Platform,
                    reason: "not in the policy, and `prune.members` is on".into(),
                    before: Some(json!({"email": current.email, "name": current.name, "roles": current.roles})),
                    after: None,
                });
            } else {
                self.unmanaged.push(Unmanaged {
                    address,
                    kind: Kind::Member,
                    note: format!(
                        "{} ({}) is not in the policy",
                        current.name,
                        list_set(&current.roles)
                    ),
                });
            }
        }
    }

    fn workspaces(&mut self) {
        let desired = &self.input.desired;
        let live = &self.input.live;
        for (name, workspace) in &desired.workspaces {
            let address = format!("workspace.{name}");
            let mut members = desired_workspace_members(workspace);
            members.retain(|email, _| !self.pending.contains(email));
            match live.workspaces.get(name) {
                None => {
                    let mut after = Map::new();
                    after.insert("name".into(), json!(name));
                    after.insert(
                        "description".into(),
                        json!(workspace.description.clone().unwrap_or_default()),
                    );
                    after.insert("admin".into(), json!(workspace.admin));
                    after.insert("members".into(), json!(members));
                    let archived = live.archived_workspaces.contains(name);
                    self.push(Change {
                        address: address.clone(),
                        kind: Kind::Workspace,
                        action: Action::Create,
                        enforcement: Enforcement::Platform,
                        reason: if archived {
                            "in the policy; the organization has only an archived workspace of this name, which cannot be restored through the API".into()
                        } else {
                            "in the policy, not in the organization".into()
                        },
                        before: None,
                        after: Some(Value::Object(after)),
                    });
                    if let Some(limit) = workspace.spend_limit {
                        self.push(manual_spend_limit(&address, name, None, limit, true));
                    }
                }
                Some(current) => {
                    let mut before = Map::new();
                    let mut after = Map::new();
                    if let Some(description) = &workspace.description {
                        before.insert("description".into(), json!(current.description));
                        after.insert("description".into(), json!(description));
                    }
                    before.insert("members".into(), json!(current.members));
                    after.insert("members".into(), json!(members));
                    self.update(address.clone(), Kind::Workspace, before, after);
                    if let Some(limit) = workspace.spend_limit
                        && !current
                            .spend_limit
                            .is_some_and(|live| same_limit(live, limit))
                    {
                        self.push(manual_spend_limit(
                            &address,
                            name,
                            current.spend_limit,
                            limit,
                            false,
                        ));
                    }
                }
            }
        }
        for (name, current) in &live.workspaces {
            if desired.workspaces.contains_key(name) {
                continue;
            }
            let address = format!("workspace.{name}");
            if current.is_default {
                self.unmanaged.push(Unmanaged {
                    address,
                    kind: Kind::Workspace,
                    note: "the organization's default workspace, which cannot be archived".into(),
                });
            } else if desired.organization.prune.workspaces {
                self.push(Change {
                    address,
                    kind: Kind::Workspace,
                    action: Action::Delete,
                    enforcement: Enforcement::Platform,
                    reason: "not in the policy, and `prune.workspaces` is on: the workspace is archived".into(),
                    before: Some(json!({"name": name, "description": current.description, "members": current.members})),
                    after: None,
                });
            } else {
                self.unmanaged.push(Unmanaged {
                    address,
                    kind: Kind::Workspace,
                    note: format!(
                        "{} member{} and not in the policy",
                        current.members.len(),
                        plural(current.members.len())
                    ),
                });
            }
        }
    }

    fn teams(&mut self) {
        let desired = &self.input.desired;
        let live = &self.input.live;
        for (name, team) in &desired.teams {
            let address = format!("team.{name}");
            let members: BTreeSet<String> = team
                .members
                .iter()
                .map(|email| email.to_lowercase())
                .filter(|email| !self.pending.contains(email))
                .collect();
            let workspaces: BTreeMap<&str, BTreeSet<&str>> = team
                .workspaces
                .iter()
                .map(|(workspace, roles)| {
                    (
                        workspace.as_str(),
                        roles.iter().map(|role| role.as_str()).collect(),
                    )
                })
                .collect();
            let organization_role = team.organization_role.map(|role| role.as_str());
            match live.teams.get(name) {
                None => {
                    let mut after = Map::new();
                    after.insert("name".into(), json!(name));
                    after.insert(
                        "description".into(),
                        json!(team.description.clone().unwrap_or_default()),
                    );
                    after.insert("members".into(), json!(members));
                    after.insert("workspaces".into(), json!(workspaces));
                    if let Some(role) = organization_role {
                        after.insert("organization_role".into(), json!(role));
                    }
                    self.push(Change {
                        address,
                        kind: Kind::Team,
                        action: Action::Create,
                        enforcement: Enforcement::Platform,
                        reason: "in the policy, not in the organization".into(),
                        before: None,
                        after: Some(Value::Object(after)),
                    });
                }
                Some(current) => {
                    let mut before = Map::new();
                    let mut after = Map::new();
                    if let Some(description) = &team.description {
                        before.insert("description".into(), json!(current.description));
                        after.insert("description".into(), json!(description));
                    }
                    before.insert("members".into(), json!(current.members));
                    after.insert("members".into(), json!(members));
                    before.insert("workspaces".into(), json!(current.workspaces));
                    after.insert("workspaces".into(), json!(workspaces));
                    if let Some(role) = organization_role {
                        before.insert("organization_role".into(), json!(current.organization_role));
                        after.insert("organization_role".into(), json!(role));
                    }
                    self.update(address, Kind::Team, before, after);
                }
            }
        }
        for (name, current) in &live.teams {
            if desired.teams.contains_key(name) {
                continue;
            }
            let address = format!("team.{name}");
            if desired.organization.prune.teams {
                self.push(Change {
                    address,
                    kind: Kind::Team,
                    action: Action::Delete,
                    enforcement: Enforcement::Platform,
                    reason: "not in the policy, and `prune.teams` is on".into(),
                    before: Some(json!({"name": name, "description": current.description, "members": current.members, "workspaces": current.workspaces})),
                    after: None,
                });
            } else {
                self.unmanaged.push(Unmanaged {
                    address,
                    kind: Kind::Team,
                    note: format!(
                        "{} member{} and not in the policy",
                        current.members.len(),
                        plural(current.members.len())
                    ),
                });
            }
        }
    }

    fn keys(&mut self) {
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
                let keys = by_address
                    .get(&(workspace_name.clone(), name.clone()))
                    .map_or(&[][..], Vec::as_slice);
                let Some(current) = keys.first().copied() else {
                    self.push(Change {
                        address,
                        kind: Kind::ApiKey,
                        action: Action::Create,
                        enforcement: Enforcement::Platform,
                        reason: "in the policy, not in the organization".into(),
                        before: None,
                        after: Some(desired_key(workspace_name, name, key, today)),
                    });
                    continue;
                };
                let target = KeyTarget {
                    workspace: workspace_name,
                    name,
                    key,
                    owner: self.readable_owner(current),
                };
                let change = if live.undelivered.contains(&current.id) {
                    Some(Change {
                        address: address.clone(),
                        kind: Kind::ApiKey,
                        action: Action::Replace,
                        enforcement: Enforcement::Platform,
                        reason: format!("{UNDELIVERED_KEY}; a new key, delivered, replaces it"),
                        before: Some(live_key(current, target.owner.as_deref())),
                        after: Some(desired_key(workspace_name, name, key, today)),
                    })
                } else {
                    key_change(&address, &target, current, today)
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
            self.push(Change {
                address: address.to_owned(),
                kind: Kind::ApiKey,
                action: Action::Delete,
                enforcement: Enforcement::Platform,
                reason: format!(
                    "superseded: its successor was created {} and the {}-hour overlap ended {}",
                    timestamp(succeeded),
                    key.rotation_overlap().as_hours(),
                    timestamp(retire_after)
                ),
                before: Some(live_key(predecessor, None)),
                after: None,
            });
        }
    }

    fn delete_undelivered(&mut self, address: &str, key: &LiveKey) {
        self.push(Change {
            address: address.to_owned(),
            kind: Kind::ApiKey,
            action: Action::Delete,
            enforcement: Enforcement::Platform,
            reason: format!("{UNDELIVERED_KEY}; nobody can be using it, so it is deleted"),
            before: Some(live_key(key, None)),
            after: None,
        });
    }

    fn unmanaged_key(&mut self, address: String, key: &LiveKey, note: String) {
        if self.input.live.undelivered.contains(&key.id) && key.workspace.is_some() {
            return self.delete_undelivered(&address, key);
        }
        if self.input.desired.organization.prune.keys && key.workspace.is_some() {
            self.push(Change {
                address,
                kind: Kind::ApiKey,
                action: Action::Delete,
                enforcement: Enforcement::Platform,
                reason: format!("{note}, and `prune.keys` is on"),
                before: Some(live_key(key, None)),
                after: None,
            });
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

/// Why a key the journal shows undelivered is replaced.
const UNDELIVERED_KEY: &str = "an apply created this key and stopped before its secret reached its sink (the key journal has no delivery)";

/// A workspace's members as the policy wants them: the listed ones, and the admin, who must
/// hold `workspace_admin`.
fn desired_workspace_members(workspace: &Workspace) -> BTreeMap<String, BTreeSet<&'static str>> {
    let mut members: BTreeMap<String, BTreeSet<&'static str>> = workspace
        .members
        .iter()
        .map(|(email, roles)| {
            (
                email.to_lowercase(),
                roles.iter().map(|role| role.as_str()).collect(),
            )
        })
        .collect();
    if let Some(admin) = &workspace.admin {
        members
            .entry(admin.to_lowercase())
            .or_default()
            .insert(WorkspaceRole::WorkspaceAdmin.as_str());
    }
    members
}

/// The expiry a key should have, given when it was (or will be) created.
pub(crate) fn expected_expiry(key: &ApiKey, created: Date) -> Option<Date> {
    match key.expiry()? {
        Expiry::On(date) => Some(date),
        Expiry::AfterDays(days) => created
            .checked_add(jiff::Span::new().days(i64::from(days)))
            .ok(),
    }
}

fn desired_key(workspace: &str, name: &str, key: &ApiKey, today: Date) -> Value {
    let mut after = Map::new();
    after.insert("workspace".into(), json!(workspace));
    after.insert("name".into(), json!(name));
    after.insert("owner".into(), json!(key.owner));
    after.insert(
        "expires".into(),
        json!(expected_expiry(key, today).map(|d| d.to_string())),
    );
    if let Some(days) = key.expires_after_days {
        after.insert("expires_after_days".into(), json!(days));
    }
    if let Some(days) = key.rotate_before_days {
        after.insert("rotate_before_days".into(), json!(days));
    }
    if let Some(hours) = key.rotation_overlap_hours {
        after.insert("rotation_overlap_hours".into(), json!(hours));
    }
    after.insert("secret".into(), json!(sink_summary(&key.secret)));
    Value::Object(after)
}

/// A live key as a plan shows it. `created` is the full creation time: with the workspace
/// and name it tells apply which of several keys of one name a change means.
fn live_key(key: &LiveKey, owner: Option<&str>) -> Value {
    let mut before = Map::new();
    before.insert("workspace".into(), json!(key.workspace));
    before.insert("name".into(), json!(key.name));
    if let Some(owner) = owner {
        before.insert("owner".into(), json!(owner));
    }
    before.insert("created".into(), json!(key.created_at));
    before.insert("expires".into(), json!(key.expires.map(|d| d.to_string())));
    Value::Object(before)
}

/// An instant as plans show it: UTC, to the second.
pub fn timestamp(at: Timestamp) -> String {
    at.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// Where a new key's secret goes, for showing: a command shows its program only, since its
/// arguments may carry credentials of their own.
pub fn sink_summary(sink: &SecretSink) -> String {
    match sink {
        SecretSink::File(path) => format!("file {path}"),
        SecretSink::Command(argv) => {
            format!("stdin of `{}`", argv.first().map_or("", String::as_str))
        }
    }
}

/// A declared key and what can be read of its live counterpart.
struct KeyTarget<'a> {
    workspace: &'a str,
    name: &'a str,
    key: &'a ApiKey,
    /// The live key's owner, when the API lets it be read.
    owner: Option<String>,
}

fn key_change(
    address: &str,
    target: &KeyTarget<'_>,
    current: &LiveKey,
    today: Date,
) -> Option<Change> {
    let key = target.key;
    let created = current.created_on().unwrap_or(today);
    let wanted = expected_expiry(key, created);
    let show = |date: Option<Date>| date.map_or("never".to_string(), |d| d.to_string());
    let change = |action: Action, reason: String| Change {
        address: address.to_owned(),
        kind: Kind::ApiKey,
        action,
        enforcement: Enforcement::Platform,
        reason,
        before: Some(live_key(current, target.owner.as_deref())),
        after: Some(desired_key(target.workspace, target.name, key, today)),
    };
    if current.expires != wanted {
        return Some(change(
            Action::Replace,
            format!(
                "the key expires {} but the policy says {}; the API cannot change a key's expiry, so a new key replaces it",
                show(current.expires),
                show(wanted)
            ),
        ));
    }
    if let Some(owner) = &target.owner
        && *owner != key.owner.to_lowercase()
    {
        return Some(change(
            Action::Replace,
            format!(
                "the key belongs to {owner} but the policy says {}; the API cannot change a key's owner, so a new key replaces it",
                key.owner
            ),
        ));
    }
    let expires = current.expires?;
    if expires <= today {
        return Some(change(
            Action::Replace,
            format!("the key expired on {expires}"),
        ));
    }
    let window = key.rotate_before_days?;
    let left = today.until(expires).ok()?.get_days();
    if i64::from(left) > i64::from(window) {
        return None;
    }
    Some(change(
        Action::Rotate,
        format!(
            "the key expires on {expires}, in {left} day{}, inside its {window}-day rotation window: a successor is created and delivered, and the old key is kept for {} hours, then deleted",
            plural(usize::try_from(left).unwrap_or(0)),
            key.rotation_overlap().as_hours()
        ),
    ))
}

fn manual_spend_limit(
    address: &str,
    name: &str,
    live: Option<SpendLimit>,
    wanted: SpendLimit,
    new: bool,
) -> Change {
    let what = match wanted {
        SpendLimit::Monthly(amount) => format!("set the monthly limit to {amount}"),
        SpendLimit::Unlimited(_) => "remove the monthly limit".into(),
    };
    let when = if new {
        "once the workspace exists, "
    } else {
        ""
    };
    Change {
        address: address.into(),
        kind: Kind::Workspace,
        action: Action::Manual,
        enforcement: crate::provider::enforcement(Kind::Workspace, "spend_limit"),
        reason: format!(
            "the Admin API cannot set a workspace's budget: {when}in the console open Admin → Workspaces → {name} → Limits and {what}"
        ),
        before: Some(json!({"spend_limit": limit_value(live)})),
        after: Some(json!({"spend_limit": limit_value(Some(wanted))})),
    }
}

fn same_limit(a: SpendLimit, b: SpendLimit) -> bool {
    match (a, b) {
        (SpendLimit::Monthly(a), SpendLimit::Monthly(b)) => (a - b).abs() < 0.005,
        (SpendLimit::Unlimited(_), SpendLimit::Unlimited(_)) => true,
        _ => false,
    }
}

fn limit_value(limit: Option<SpendLimit>) -> Value {
    match limit {
        None => Value::Null,
        Some(SpendLimit::Unlimited(_)) => json!("unlimited"),
        // Budgets are whole amounts in practice: show `500`, not `500.0`.
        Some(SpendLimit::Monthly(amount)) if amount.fract() == 0.0 && amount.abs() < 1e15 => {
            json!(amount as i64)
        }
        Some(SpendLimit::Monthly(amount)) => json!(amount),
    }
}

/// What the gateway enforces: the platform has no such settings, so the plan carries them.
fn runtime(desired: &DesiredOrg) -> Value {
    let teams: BTreeMap<&str, Value> = desired
        .teams
        .iter()
        .filter_map(|(name, team)| {
            Some((
                name.as_str(),
                json!({"role": team.role.as_ref()?, "members": team.members}),
            ))
        })
        .collect();
    let workspaces: BTreeMap<&str, Value> = desired
        .workspaces
        .iter()
        .map(|(name, workspace)| {
            let keys: BTreeMap<&str, Value> = workspace
                .keys
                .iter()
                .map(|(key_name, key)| {
                    (
                        key_name.as_str(),
                        json!({"models": key.models, "rpm": key.rpm}),
                    )
                })
                .collect();
            (
                name.as_str(),
                json!({"models": workspace.models, "rpm": workspace.rpm, "keys": keys}),
            )
        })
        .collect();
    json!({
        "note": "the platform has no per-key or per-team model lists, request rates or token budgets; the gateway enforces these",
        "roles": desired.roles,
        "teams": teams,
        "workspaces": workspaces,
    })
}

fn list(names: &[&str]) -> String {
    let quoted: Vec<String> = names.iter().map(|name| format!("`{name}`")).collect();
    match quoted.as_slice() {
        [] => String::new(),
        [one] => one.clone(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

fn list_set(roles: &BTreeSet<String>) -> String {
    roles.iter().cloned().collect::<Vec<_>>().join(", ")
}

fn plural(count: usize) -> &'static str {
    if count == 1 { "" } else { "s" }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{LiveTeam, LiveWorkspace, Prune};

    fn plan(desired: &DesiredOrg, live: &LiveOrg) -> Plan {
        plan_at(desired, live, "2026-06-01T12:00:00Z")
    }

    fn plan_at(desired: &DesiredOrg, live: &LiveOrg, now: &str) -> Plan {
        diff(&PlanInput {
            desired,
            live,
            now: now.parse().unwrap(),
            org: "test".into(),
            policy: PolicyRef::default(),
        })
    }

    fn workspace(name: &str, is_default: bool) -> LiveWorkspace {
        LiveWorkspace {
            id: format!("id-{name}"),
            name: name.into(),
            description: String::new(),
            is_default,
            members: BTreeMap::new(),
            spend_limit: None,
        }
    }

    fn key(expires: &str, created: &str) -> LiveKey {
        LiveKey {
            id: "k".into(),
            name: Some("ci".into()),
            workspace: Some("dev".into()),
            created_by: None,
            created_at: Some(format!("{created}T09:00:00Z")),
            expires: Some(expires.parse().unwrap()),
            last_used: None,
        }
    }

    fn desired_key(days: u32, rotate: Option<u32>) -> DesiredOrg {
        serde_json::from_value(serde_json::json!({
            "workspaces": {"dev": {"keys": {"ci": {
                "owner": "a@x.example", "expires_after_days": days, "rotate_before_days": rotate,
                "secret": {"file": "ci.key"}
            }}}}
        }))
        .unwrap()
    }

    fn live_with(key: LiveKey) -> LiveOrg {
        let mut live = LiveOrg::default();
        live.workspaces
            .insert("dev".into(), workspace("dev", false));
        live.keys.push(key);
        live
    }

    #[test]
    fn expiry_after_days_counts_from_creation() {
        let in_sync = plan(
            &desired_key(90, Some(14)),
            &live_with(key("2026-08-30", "2026-06-01")),
        );
        assert!(in_sync.changes.is_empty(), "{:?}", in_sync.changes);
        let replaced = plan(
            &desired_key(30, None),
            &live_with(key("2026-08-30", "2026-06-01")),
        );
        assert_eq!(replaced.changes[0].action, Action::Replace);
        let rotated = plan(
            &desired_key(90, Some(14)),
            &live_with(key("2026-06-10", "2026-03-12")),
        );
        assert_eq!(rotated.changes[0].action, Action::Rotate);
        let expired = plan(
            &desired_key(90, None),
            &live_with(key("2026-05-01", "2026-01-31")),
        );
        assert_eq!(expired.changes[0].action, Action::Replace);
    }

    #[test]
    fn a_rotation_starts_overlaps_then_deletes_the_predecessor_after_the_overlap() {
        let desired = desired_key(90, Some(14));
        let old = key("2026-06-10", "2026-03-12");
        let starting = plan(&desired, &live_with(old.clone()));
        assert_eq!(starting.changes[0].action, Action::Rotate);
        assert_eq!(starting.rotations[0].stage, RotationStage::Starting);
        assert_eq!(
            starting.rotations[0].retire_after.as_deref(),
            Some("2026-06-02T12:00:00Z")
        );

        let mut live = live_with(old);
        live.keys.push(LiveKey {
            id: "k2".into(),
            created_at: Some("2026-06-01T12:00:00Z".into()),
            expires: Some("2026-08-30".parse().unwrap()),
            ..live.keys[0].clone()
        });
        let overlapping = plan_at(&desired, &live, "2026-06-02T11:59:59Z");
        assert!(overlapping.changes.is_empty(), "{:?}", overlapping.changes);
        assert!(
            overlapping.unmanaged.is_empty(),
            "{:?}",
            overlapping.unmanaged
        );
        assert_eq!(overlapping.rotations[0].stage, RotationStage::Overlapping);

        let finishing = plan_at(&desired, &live, "2026-06-02T12:00:00Z");
        assert_eq!(finishing.rotations[0].stage, RotationStage::Finishing);
        let delete = &finishing.changes[0];
        assert_eq!(delete.action, Action::Delete);
        assert_eq!(delete.address, "workspace.dev.key.ci");
        // The delete names the predecessor by its creation time, never the successor.
        assert_eq!(
            delete.before.as_ref().unwrap()["created"],
            "2026-03-12T09:00:00Z"
        );

        let mut longer = desired.clone();
        longer
            .workspaces
            .get_mut("dev")
            .unwrap()
            .keys
            .get_mut("ci")
            .unwrap()
            .rotation_overlap_hours = Some(48);
        let waiting = plan_at(&longer, &live, "2026-06-02T12:00:00Z");
        assert!(waiting.changes.is_empty(), "{:?}", waiting.changes);
    }

    #[test]
    fn a_key_whose_secret_was_never_delivered_is_never_in_sync() {
        let desired = desired_key(90, Some(14));
        let mut live = live_with(key("2026-08-30", "2026-06-01"));
        assert!(plan(&desired, &live).changes.is_empty());
        live.undelivered.insert("k".into());
        let replaced = plan(&desired, &live);
        assert_eq!(replaced.changes.len(), 1, "{:?}", replaced.changes);
        assert_eq!(replaced.changes[0].action, Action::Replace);
        assert!(
            replaced.changes[0]
                .reason
                .contains("stopped before its secret reached its sink"),
            "{}",
            replaced.changes[0].reason
        );

        // An interrupted rotation: the delivered predecessor stays (no overlap has begun),
        // and the undelivered successor is replaced.
        let mut live = live_with(key("2026-06-10", "2026-03-12"));
        live.keys.push(LiveKey {
            id: "k2".into(),
            created_at: Some("2026-05-01T12:00:00Z".into()),
            expires: Some("2026-07-30".parse().unwrap()),
            ..live.keys[0].clone()
        });
        live.undelivered.insert("k2".into());
        let resumed = plan(&desired, &live);
        let actions: Vec<Action> = resumed.changes.iter().map(|c| c.action).collect();
        assert_eq!(actions, [Action::Replace], "{:?}", resumed.changes);
        assert_eq!(
            resumed.changes[0].before.as_ref().unwrap()["created"],
            "2026-05-01T12:00:00Z"
        );

        // An older key never delivered goes at once; so does one the policy no longer names.
        let mut live = live_with(key("2026-08-30", "2026-06-01"));
        live.keys.push(LiveKey {
            id: "stray".into(),
            created_at: Some("2026-05-01T12:00:00Z".into()),
            ..live.keys[0].clone()
        });
        live.keys.push(LiveKey {
            id: "gone".into(),
            name: Some("removed".into()),
            ..live.keys[0].clone()
        });
        live.undelivered
            .extend(["stray".to_owned(), "gone".to_owned()]);
        let cleaned = plan(&desired, &live);
        let deletes: Vec<&str> = cleaned
            .changes
            .iter()
            .filter(|c| c.action == Action::Delete)
            .map(|c| c.address.as_str())
            .collect();
        assert_eq!(
            deletes,
            ["workspace.dev.key.ci", "workspace.dev.key.removed"],
            "{:?}",
            cleaned.changes
        );
    }

    #[test]
    fn an_owner_change_replaces_the_key_only_where_the_owner_can_be_read() {
        let desired = desired_key(90, None);
        let mut live = live_with(key("2026-08-30", "2026-06-01"));
        // Nobody named as creator: the owner cannot be read, so nothing to compare.
        assert!(plan(&desired, &live).changes.is_empty());
        for email in ["a@x.example", "b@x.example"] {
            live.members.insert(
                email.into(),
                crate::model::LiveMember {
                    id: email.into(),
                    email: email.into(),
                    name: "Someone".into(),
                    roles: BTreeSet::new(),
                },
            );
        }
        live.keys[0].created_by = Some("A@x.example".into());
        assert!(plan(&desired, &live).changes.is_empty());
        live.keys[0].created_by = Some("b@x.example".into());
        let replaced = plan(&desired, &live);
        assert_eq!(replaced.changes[0].action, Action::Replace);
        assert!(
            replaced.changes[0]
                .reason
                .contains("belongs to b@x.example")
        );
        // A creator who is not a member says nothing about the owner.
        live.keys[0].created_by = Some("0b6d-uuid".into());
        assert!(plan(&desired, &live).changes.is_empty());
    }

    #[test]
    fn unmanaged_objects_are_deleted_only_when_pruned_and_never_the_default_workspace() {
        let mut live = LiveOrg::default();
        live.workspaces
            .insert("old".into(), workspace("old", false));
        live.workspaces.insert(
            "Default Workspace".into(),
            workspace("Default Workspace", true),
        );
        let mut desired = DesiredOrg::default();
        let listed = plan(&desired, &live);
        assert!(listed.changes.is_empty());
        assert_eq!(listed.unmanaged.len(), 2);
        desired.organization.prune = Prune {
            workspaces: true,
            ..Prune::default()
        };
        let pruned = plan(&desired, &live);
        assert_eq!(pruned.changes.len(), 1);
        assert_eq!(pruned.changes[0].address, "workspace.old");
        assert_eq!(pruned.changes[0].action, Action::Delete);
        assert_eq!(pruned.unmanaged.len(), 1);
    }

    #[test]
    fn creates_run_parents_first_and_deletes_children_first() {
        let desired: DesiredOrg = serde_json::from_value(serde_json::json!({
            "members": {"a@x.example": {"name": "A"}},
            "workspaces": {"dev": {"admin": "a@x.example", "keys": {"ci": {"owner": "a@x.example", "secret": {"file": "k"}}}}},
            "organization": {"prune": {"keys": true, "teams": true}}
        }))
        .unwrap();
        let mut live = LiveOrg::default();
        live.teams.insert(
            "t".into(),
            LiveTeam {
                id: "t".into(),
                name: "t".into(),
                description: String::new(),
                members: BTreeSet::new(),
                workspaces: BTreeMap::new(),
                organization_role: None,
            },
        );
        let plan = plan(&desired, &live);
        let order: Vec<&str> = plan.changes.iter().map(|c| c.address.as_str()).collect();
        assert_eq!(
            order,
            [
                "member.a@x.example",
                "workspace.dev",
                "workspace.dev.key.ci",
                "team.t"
            ]
        );
    }
}
