//! Stage: the diff, desired against live, one pass per kind in dependency order; each kind
//! has its own file. The passes push typed changes; this module orders them (creates and
//! updates parents first, deletes children first) and assembles the plan.

mod keys;
mod members;
mod organization;
mod runtime;
mod teams;
mod workspaces;

use std::collections::BTreeSet;

use jiff::Timestamp;
use jiff::civil::Date;
use serde::Serialize;
use serde_json::Value;

use super::runtime_section::RuntimeSection;
use super::{
    Action, Change, ChangeSpec, FORMAT_VERSION, Kind, LiveRef, Plan, PolicyRef, Rotation, Summary,
    Unmanaged,
};
use crate::model::{DesiredOrg, LiveOrg, SecretSink, WorkspaceRole, timestamp};
use crate::policy::catalog::Catalog;
use crate::runtime::Runtime;

pub use keys::expected_expiry;

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

/// The plan for `input`, without runtime changes: see [`diff_against`].
pub fn diff(input: &PlanInput<'_>) -> Plan {
    diff_against(input, None)
}

/// The plan for `input`, with a runtime change for each caller whose limits differ from
/// `recorded`, the runtime the last apply put in force (none without a record).
pub fn diff_against(input: &PlanInput<'_>, recorded: Option<&Runtime>) -> Plan {
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
    let effective = Runtime::of(input.desired, Catalog::bundled());
    // Runtime changes come last among creates and updates and first among deletes, as
    // their rank says; the kinds above are in place already.
    if let Some(recorded) = recorded {
        let (gone, rest): (Vec<Change>, Vec<Change>) =
            runtime::runtime_changes(recorded, &effective)
                .into_iter()
                .chain(runtime::gateway_key_changes(recorded, &effective))
                .chain(runtime::workload_changes(recorded, &effective))
                .chain(runtime::alert_changes(recorded, &effective))
                .partition(|change| change.action == Action::Delete);
        creates_and_updates.extend(rest);
        deletes.splice(0..0, gone);
    }
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
        runtime: RuntimeSection::of(input.desired, effective),
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
        Kind::Runtime => 5,
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

    /// A live object the policy does not name: deleted by `prune`'s change, for its reason,
    /// when its kind is pruned; otherwise left alone and listed as unmanaged with `note`.
    fn not_in_policy(
        &mut self,
        address: String,
        kind: Kind,
        prune: Option<(&str, ChangeSpec)>,
        note: impl FnOnce() -> String,
    ) {
        match prune {
            Some((reason, spec)) => self.push(Change::new(address, reason, spec)),
            None => self.unmanaged.push(Unmanaged {
                address,
                kind,
                note: note(),
            }),
        }
    }

    /// An update, if `before` and `after` differ in any attribute; the reason names them.
    fn update<T: Serialize>(&mut self, address: String, before: &T, after: &T, spec: ChangeSpec) {
        let changed = differing(before, after);
        if changed.is_empty() {
            return;
        }
        let names: Vec<&str> = changed.iter().map(String::as_str).collect();
        let reason = format!(
            "{} differ{} from the policy",
            list(&names),
            if names.len() == 1 { "s" } else { "" }
        );
        self.push(Change::new(address, reason, spec));
    }
}

/// Workspace roles as the Admin API names them.
fn workspace_role_names(roles: &[WorkspaceRole]) -> BTreeSet<String> {
    roles.iter().map(|role| role.as_str().to_owned()).collect()
}

/// The note on a team or workspace the policy does not name.
fn members_not_in_policy(count: usize) -> String {
    format!("{count} member{} and not in the policy", plural(count))
}

/// The attributes of `after` whose values `before` does not have, in `after`'s order.
fn differing<T: Serialize>(before: &T, after: &T) -> Vec<String> {
    let object = |side: &T| match serde_json::to_value(side) {
        Ok(Value::Object(map)) => map,
        _ => serde_json::Map::new(),
    };
    let (before, after) = (object(before), object(after));
    after
        .iter()
        .filter(|(name, value)| before.get(*name) != Some(*value))
        .map(|(name, _)| name.clone())
        .collect()
}

fn list(names: &[&str]) -> String {
    let quoted: Vec<String> = names.iter().map(|name| format!("`{name}`")).collect();
    match quoted.as_slice() {
        [] => String::new(),
        [one] => one.clone(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

fn plural(count: usize) -> &'static str {
    if count == 1 { "" } else { "s" }
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

#[cfg(test)]
mod tests;
