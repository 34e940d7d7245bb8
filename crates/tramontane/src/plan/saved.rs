//! Stage: plan, read by apply before it runs.
//!
//! The rules a plan saved earlier must pass before apply acts on the plan made now: the
//! plan a reviewer approved (`--reviewed-plan`) must be the one made now, and a saved plan
//! (`apply plan.json`) must have been made against the same organization, in the same
//! state, from policies with the same content, and hold the same changes. Apply never acts
//! on a saved plan's changes: it applies the plan made now, which these rules say is the
//! same, with where rotations stand now.

use std::fmt;
use std::path::{Path, PathBuf};

use super::review::{self, ReviewDifference};
use super::{Plan, PolicyRef};
use crate::render::untrusted;

/// Why the plan made now is not the plan a reviewer approved.
#[derive(Debug, thiserror::Error)]
pub enum ReviewedPlanError {
    /// The reviewed plan is of another organization: the wrong file was passed.
    #[error("the reviewed plan was made against `{reviewed}`, not `{now}`")]
    OtherOrganization { reviewed: String, now: String },
    /// The policies or the organization changed after the review. A refusal, as a guard's
    /// is, not a mistake in how apply was called.
    #[error(
        "refused: the plan made now is not the plan reviewed in {}{}",
        .path.display(),
        lines(&[
            ("added since the review", &.difference.added),
            ("no longer in the plan", &.difference.removed),
            ("changed since the review", &.difference.altered),
        ])
    )]
    NotReviewed {
        path: PathBuf,
        difference: ReviewDifference,
    },
}

impl ReviewedPlanError {
    pub fn help(&self) -> &'static str {
        match self {
            ReviewedPlanError::OtherOrganization { .. } => {
                "pass the plan reviewed for this organization"
            }
            ReviewedPlanError::NotReviewed { .. } => {
                "the policies or the organization changed after the review: plan again on the pull request (or a new one), review it, and merge that"
            }
        }
    }
}

/// Checks that `now` makes the changes of `reviewed`, read from `path`, leaving out what
/// the calendar alone made due ([`review::compare`]).
pub fn check_reviewed(reviewed: &Plan, path: &Path, now: &Plan) -> Result<(), ReviewedPlanError> {
    if reviewed.live.org != now.live.org {
        return Err(ReviewedPlanError::OtherOrganization {
            reviewed: reviewed.live.org.clone(),
            now: now.live.org.clone(),
        });
    }
    let difference = review::compare(reviewed, now);
    if !difference.is_empty() {
        return Err(ReviewedPlanError::NotReviewed {
            path: path.to_owned(),
            difference,
        });
    }
    Ok(())
}

/// Why a saved plan may not be applied: it no longer says what applying does.
#[derive(Debug, thiserror::Error)]
pub enum SavedPlanError {
    /// The plan is of another organization.
    #[error("the plan was made against `{saved}`, not `{now}`")]
    OtherOrganization { saved: String, now: String },
    /// The live organization changed since the plan read it.
    #[error("stale plan: the organization changed since the plan was made")]
    OrganizationChanged { org: String },
    /// The policies' content changed since the plan was made.
    #[error("{}", stale_policies(&.0.saved, &.0.now, &.0.difference))]
    PoliciesChanged(Box<StalePolicies>),
    /// Same organization, same policies, other changes.
    #[error(
        "the plan file does not match what these policies and this organization give; it was edited, or a rotation's overlap or a key's expiry passed since it was made"
    )]
    ChangesDiffer { org: String },
}

impl SavedPlanError {
    /// What to do: a command to run where there is one, so it names the organization.
    pub fn help(&self) -> String {
        match self {
            SavedPlanError::OtherOrganization { .. } => {
                "apply a plan to the organization it was made against".into()
            }
            SavedPlanError::OrganizationChanged { org } => {
                format!("make a new plan and review it: `{}`", replan(org))
            }
            SavedPlanError::PoliciesChanged(stale) => {
                format!("make a new plan and review it: `{}`", replan(&stale.org))
            }
            SavedPlanError::ChangesDiffer { org } => {
                format!("make a new plan: `{}`", replan(org))
            }
        }
    }
}

/// A saved plan made from policies whose content changed since.
#[derive(Debug, Clone, PartialEq)]
pub struct StalePolicies {
    /// The organization, for the command that plans again.
    pub org: String,
    pub saved: PolicyRef,
    pub now: PolicyRef,
    /// How the plan made now differs from the saved one, by address.
    pub difference: ReviewDifference,
}

/// A saved plan that passed, though its policies were read from another commit: the
/// content binds a plan, not where it was read from, so this is a note, not a refusal.
#[derive(Debug, Clone, PartialEq)]
pub struct PoliciesMoved {
    pub saved: PolicyRef,
    pub now: PolicyRef,
}

impl fmt::Display for PoliciesMoved {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "The plan was made from {}; the policies are now {}, with the same content.",
            describe_commit(&self.saved),
            describe_commit(&self.now)
        )
    }
}

/// Checks that `saved` still says what applying `now` does; `Some` when it passes though
/// its policies were read from another commit.
pub fn check_saved(saved: &Plan, now: &Plan) -> Result<Option<PoliciesMoved>, SavedPlanError> {
    let org = || now.live.org.clone();
    if saved.live.org != now.live.org {
        return Err(SavedPlanError::OtherOrganization {
            saved: saved.live.org.clone(),
            now: org(),
        });
    }
    if saved.live.fingerprint != now.live.fingerprint {
        return Err(SavedPlanError::OrganizationChanged { org: org() });
    }
    // The plan binds the policy's content, not where it was read from: a plan made from
    // another directory, another clone or before an unrelated commit applies when the
    // policies it was made from are the ones loaded now.
    if saved.policy.digest != now.policy.digest {
        return Err(SavedPlanError::PoliciesChanged(Box::new(StalePolicies {
            org: org(),
            saved: saved.policy.clone(),
            now: now.policy.clone(),
            difference: review::compare(saved, now),
        })));
    }
    let moved = (saved.policy.commit != now.policy.commit).then(|| PoliciesMoved {
        saved: saved.policy.clone(),
        now: now.policy.clone(),
    });
    if saved.changes != now.changes {
        return Err(SavedPlanError::ChangesDiffer { org: org() });
    }
    Ok(moved)
}

fn replan(org: &str) -> String {
    format!("tramontane plan --org {org} --out plan.json")
}

/// Where a plan's policies came from, for a message: `commit 1a2b3c4d5e6f`, with uncommitted
/// edits when there were any, or `outside git`.
fn describe_commit(policy: &PolicyRef) -> String {
    match &policy.commit {
        Some(commit) => format!(
            "commit {}{}",
            commit.get(..12).unwrap_or(commit),
            if policy.dirty {
                " with uncommitted edits"
            } else {
                ""
            }
        ),
        None => "outside git".into(),
    }
}

/// `\n  label: address` for each address of each group, in order: how a refusal lists what
/// two plans differ in. Addresses come from policy files and the organization, so they are
/// made safe for a terminal.
fn lines(groups: &[(&str, &Vec<String>)]) -> String {
    groups
        .iter()
        .flat_map(|(label, addresses)| {
            addresses
                .iter()
                .map(move |address| format!("\n  {label}: {}", untrusted::terminal(address)))
        })
        .collect()
}

/// Why a saved plan no longer matches the policies: where each came from, and which
/// addresses the plan made now changes differently.
fn stale_policies(saved: &PolicyRef, now: &PolicyRef, difference: &ReviewDifference) -> String {
    let mut message = "stale plan: the policies changed since the plan was made".to_owned();
    if saved.commit.is_some() || now.commit.is_some() {
        message.push_str(&format!(
            " (made from {}, now {})",
            describe_commit(saved),
            describe_commit(now)
        ));
    }
    // `altered` words its detail for a review (`update reviewed, update now`): the address
    // alone says what a stale plan needs to.
    let altered: Vec<String> = difference
        .altered
        .iter()
        .map(|entry| {
            entry
                .split_once(" (")
                .map_or(entry.as_str(), |(address, _)| address)
                .to_owned()
        })
        .collect();
    message.push_str(&lines(&[
        ("added since the plan", &difference.added),
        ("no longer in the plan", &difference.removed),
        ("changed since the plan", &altered),
    ]));
    message
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{Change, ChangeSpec, MemberSpec};

    fn member_create(email: &str) -> Change {
        let member = MemberSpec {
            email: email.into(),
            name: "A".into(),
            roles: Default::default(),
        };
        Change::new(
            format!("member.{email}"),
            "",
            ChangeSpec::MemberCreate(member),
        )
    }

    fn plan(org: &str, emails: &[&str]) -> Plan {
        let mut plan = Plan::of_changes(org, emails.iter().map(|e| member_create(e)).collect());
        plan.policy.digest = "d".into();
        plan
    }

    #[test]
    fn a_reviewed_plan_passes_only_when_the_plan_made_now_changes_nothing_else() {
        let reviewed = plan("sandbox:demo", &["a@x"]);
        let path = Path::new("reviewed.json");
        assert!(check_reviewed(&reviewed, path, &plan("sandbox:demo", &["a@x"])).is_ok());
        let error =
            check_reviewed(&reviewed, path, &plan("sandbox:demo", &["a@x", "b@x"])).unwrap_err();
        assert_eq!(
            error.to_string(),
            "refused: the plan made now is not the plan reviewed in reviewed.json\n  added since the review: member.b@x (create)"
        );
        let other = check_reviewed(&reviewed, path, &plan("sandbox:other", &["a@x"]));
        assert!(matches!(
            other,
            Err(ReviewedPlanError::OtherOrganization { .. })
        ));
    }

    #[test]
    fn a_saved_plan_is_stale_when_the_organization_or_the_policies_changed() {
        let saved = plan("sandbox:demo", &["a@x"]);
        assert_eq!(check_saved(&saved, &saved.clone()).unwrap(), None);

        let mut moved = saved.clone();
        moved.policy.commit = Some("0123456789abcdef".into());
        let note = check_saved(&saved, &moved).unwrap().unwrap();
        assert_eq!(
            note.to_string(),
            "The plan was made from outside git; the policies are now commit 0123456789ab, with the same content."
        );

        let mut org_changed = saved.clone();
        org_changed.live.fingerprint = "other".into();
        let error = check_saved(&saved, &org_changed).unwrap_err();
        assert!(matches!(error, SavedPlanError::OrganizationChanged { .. }));
        assert_eq!(
            error.help(),
            "make a new plan and review it: `tramontane plan --org sandbox:demo --out plan.json`"
        );

        let mut policies_changed = plan("sandbox:demo", &["a@x", "b@x"]);
        policies_changed.policy.digest = "e".into();
        let error = check_saved(&saved, &policies_changed).unwrap_err();
        assert_eq!(
            error.to_string(),
            "stale plan: the policies changed since the plan was made\n  added since the plan: member.b@x (create)"
        );

        let edited = plan("sandbox:demo", &["a@x", "b@x"]);
        let error = check_saved(&saved, &edited).unwrap_err();
        assert!(matches!(error, SavedPlanError::ChangesDiffer { .. }));
    }
}
