//! Desired against live: the ordered list of changes that would make the organization match
//! its policy, each with its reason and its enforcement.
//!
//! Stage: the plan, made from the desired and the live organization (after `policy` and
//! `provider::read`, before `apply` and `render`).
//!
//! The plan is data: renderers show it, `--out` saves it, apply executes it. Its changes are
//! typed ([`ChangeSpec`]); its JSON shape is a versioned contract (see docs/plan-and-apply.md and
//! `docs/plan-format-changes.md`), so field names here and in [`wire`] are part of the
//! interface.

mod change;
mod diff;
mod effect;
pub mod guard;
pub mod review;
mod runtime_section;
pub mod saved;
mod wire;
mod workload_effect;

use serde::{Deserialize, Serialize};

pub use crate::model::{Enforcement, Kind, timestamp};
pub use change::{
    ArchivedWorkspace, AttributeChange, Change, ChangeSpec, DeletedTeam, KeySpec, LiveKeyRef,
    MemberSpec, NewTeam, NewWorkspace, TeamState, TeamWorkspaces, WorkspaceMembers, WorkspaceState,
};
pub use diff::{PlanInput, diff, diff_against, expected_expiry, sink_summary};
pub use effect::{AccessEffect, gateway_key_name};
pub use runtime_section::RuntimeSection;

pub const FORMAT_VERSION: &str = "1";

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub format_version: String,
    pub policy: PolicyRef,
    pub live: LiveRef,
    pub summary: Summary,
    pub changes: Vec<Change>,
    pub unmanaged: Vec<Unmanaged>,
    /// Where each key rotation stands; absent when none is under way.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rotations: Vec<Rotation>,
    /// The safety guards apply will refuse this plan by, at their defaults.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub guards: Vec<guard::Tripped>,
    pub warnings: Vec<String>,
    /// What the gateway enforces, which the platform has no setting for.
    pub runtime: RuntimeSection,
}

/// The policy the plan was made from, so apply can refuse a plan made from other files.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PolicyRef {
    /// `HEAD` of the repository holding the policies, when they are in one.
    pub commit: Option<String>,
    /// Whether the policy files differ from `commit`.
    pub dirty: bool,
    /// A digest of the loaded policy, which binds the plan even outside git.
    pub digest: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LiveRef {
    /// The organization planned against: `mistral`, `sandbox:demo` or `sandbox:PATH`.
    pub org: String,
    pub fingerprint: String,
    /// The organization's inference limits, read-only through the API.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limits: Option<crate::model::RateLimits>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    pub create: usize,
    pub update: usize,
    pub delete: usize,
    pub replace: usize,
    pub rotate: usize,
    pub manual: usize,
}

impl Summary {
    pub fn of(changes: &[Change]) -> Summary {
        let mut summary = Summary::default();
        for change in changes {
            *match change.action {
                Action::Create => &mut summary.create,
                Action::Update => &mut summary.update,
                Action::Delete => &mut summary.delete,
                Action::Replace => &mut summary.replace,
                Action::Rotate => &mut summary.rotate,
                Action::Manual => &mut summary.manual,
            } += 1;
        }
        summary
    }

    /// Changes tramontane itself would make (manual steps are for a person).
    pub fn applicable(&self) -> usize {
        self.create + self.update + self.delete + self.replace + self.rotate
    }

    pub fn total(&self) -> usize {
        self.applicable() + self.manual
    }

    pub fn is_destructive(&self) -> bool {
        self.delete + self.replace > 0
    }
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} create, {} update, {} delete, {} replace, {} rotate, {} manual",
            self.create, self.update, self.delete, self.replace, self.rotate, self.manual
        )
    }
}

/// A saved plan whose summary is not what its changes count: the file was edited, and a
/// summary that understates the changes would skip the confirmation they need.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("its summary says {stated}, but its changes are {counted}")]
pub struct SummaryMismatch {
    pub stated: Summary,
    pub counted: Summary,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Create,
    Update,
    Delete,
    Replace,
    Rotate,
    Manual,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Create => "create",
            Action::Update => "update",
            Action::Delete => "delete",
            Action::Replace => "replace",
            Action::Rotate => "rotate",
            Action::Manual => "manual",
        }
    }

    /// Terraform's marks, so a plan reads the way those users expect.
    pub fn symbol(self) -> &'static str {
        match self {
            Action::Create => "+",
            Action::Update => "~",
            Action::Delete => "-",
            Action::Replace => "-/+",
            Action::Rotate => "+/-",
            Action::Manual => "!",
        }
    }
}

/// A live object no policy declares; deleted only where the policy opts in with `prune`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Unmanaged {
    pub address: String,
    pub kind: Kind,
    pub note: String,
}

/// A key rotation in progress: the successor is created (or about to be) and the
/// predecessor stays valid until its overlap ends, so consumers can move to the new secret.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Rotation {
    pub address: String,
    pub stage: RotationStage,
    /// When the key being rotated out was created (RFC 3339).
    pub predecessor_created: Option<String>,
    /// When its successor was created; `null` while this plan is the one creating it.
    pub successor_created: Option<String>,
    /// From when the predecessor may be deleted.
    pub retire_after: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RotationStage {
    /// This plan creates and delivers the successor.
    Starting,
    /// Both keys are live; the predecessor is kept until `retire_after`.
    Overlapping,
    /// The overlap is over: this plan deletes the predecessor.
    Finishing,
}

impl RotationStage {
    pub fn as_str(self) -> &'static str {
        match self {
            RotationStage::Starting => "starting",
            RotationStage::Overlapping => "overlapping",
            RotationStage::Finishing => "finishing",
        }
    }
}

impl Plan {
    /// A plan of just these changes against the org named `org`, for unit tests.
    #[cfg(test)]
    pub(crate) fn of_changes(org: &str, changes: Vec<Change>) -> Plan {
        Plan {
            format_version: FORMAT_VERSION.into(),
            policy: PolicyRef::default(),
            live: LiveRef {
                org: org.into(),
                fingerprint: String::new(),
                rate_limits: None,
            },
            summary: Summary::of(&changes),
            changes,
            unmanaged: Vec::new(),
            rotations: Vec::new(),
            guards: Vec::new(),
            warnings: Vec::new(),
            runtime: RuntimeSection::default(),
        }
    }

    pub fn has_changes(&self) -> bool {
        self.summary.total() > 0
    }

    /// Checks that the summary is the count of the changes. Everything that decides whether
    /// to ask, warn or refuse reads the summary, so a plan read from a file is checked first.
    pub fn check_summary(&self) -> Result<(), SummaryMismatch> {
        let counted = Summary::of(&self.changes);
        if counted == self.summary {
            Ok(())
        } else {
            Err(SummaryMismatch {
                stated: self.summary,
                counted,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(action: Action) -> Change {
        let member = MemberSpec {
            email: "a@example.com".into(),
            name: "A".into(),
            roles: Default::default(),
        };
        let spec = match action {
            Action::Create => ChangeSpec::MemberCreate(member),
            _ => ChangeSpec::MemberDelete(member),
        };
        Change::new("member.a@example.com", "", spec)
    }

    #[test]
    fn a_summary_that_is_not_the_count_of_the_changes_is_caught() {
        let changes = vec![change(Action::Create), change(Action::Delete)];
        let mut plan = Plan::of_changes("sandbox:demo", changes);
        assert_eq!(plan.check_summary(), Ok(()));
        plan.summary.delete = 0;
        let mismatch = plan.check_summary().unwrap_err();
        assert_eq!(mismatch.counted.delete, 1);
        assert_eq!(
            mismatch.to_string(),
            "its summary says 1 create, 0 update, 0 delete, 0 replace, 0 rotate, 0 manual, but its changes are 1 create, 0 update, 1 delete, 0 replace, 0 rotate, 0 manual"
        );
    }
}
