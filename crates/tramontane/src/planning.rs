//! Making a plan, the step `plan` and `apply` share: load the policies, open the
//! organization, read it whole, mark the keys an interrupted apply left undelivered, and
//! diff. The caller hears of each stage through [`Stage`], so a command line can show a
//! notice or a spinner; nothing here prints.

use std::path::Path;

use jiff::Timestamp;
use sha2::{Digest, Sha256};

use crate::apply::journal::JournalError;
use crate::apply::runtime_record::{RuntimeRecord, RuntimeRecordError};
use crate::clock::day_of;
use crate::model::{DesiredOrg, LiveOrg};
use crate::org::{CreatedSandbox, Org, OrgConfig, OrgError};
use crate::plan::{self, Plan, PlanInput, PolicyRef};
use crate::policy::{self, LoadOptions, LoadedPolicy};
use crate::provider::{Provider, ProviderError};
use crate::repository::RepositoryRoot;

/// What a plan is made from.
pub struct PlanRequest<'a> {
    /// The policy directory.
    pub policies: &'a Path,
    pub org: &'a OrgConfig,
    /// The moment expiries, rotation windows and overlaps are counted from.
    pub now: Timestamp,
}

/// Everything a plan was made from, kept for apply.
pub struct Planned {
    pub desired: DesiredOrg,
    pub org: Org,
    pub live: LiveOrg,
    pub plan: Plan,
}

/// How making a plan ended, when nothing failed.
// One `Planning` lives per command: its size costs nothing worth a box.
#[allow(clippy::large_enum_variant)]
pub enum Planning {
    /// The policies are invalid; no organization was opened. Their diagnostics say why.
    Invalid(LoadedPolicy),
    Planned(Planned),
}

/// A stage of making a plan, as it happens.
#[derive(Debug)]
pub enum Stage<'a> {
    /// A new sandbox org was created to open the one chosen.
    SandboxCreated(&'a CreatedSandbox),
    /// The organization, named as plans name it, is being read.
    Reading { org: &'a str },
    /// The read is over, whether or not it succeeded.
    Read,
}

/// Why no plan could be made.
#[derive(Debug, thiserror::Error)]
pub enum PlanningError {
    #[error(transparent)]
    Org(#[from] OrgError),
    #[error(transparent)]
    Provider(#[from] ProviderError),
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error(transparent)]
    RuntimeRecord(#[from] RuntimeRecordError),
}

impl PlanningError {
    /// What to do, for the line under the error; `None` when the message says it.
    pub fn help(&self) -> Option<&'static str> {
        match self {
            PlanningError::Org(error) => error.help(),
            PlanningError::Provider(error) => error.help(),
            PlanningError::Journal(error) => error.help(),
            PlanningError::RuntimeRecord(error) => Some(error.help()),
        }
    }
}

/// Loads the policies and, when they are valid, reads the organization into a plan.
pub async fn make_plan(
    request: &PlanRequest<'_>,
    stage: &mut dyn FnMut(Stage<'_>),
) -> Result<Planning, PlanningError> {
    let loaded = policy::load(request.policies, &LoadOptions::new(day_of(request.now)));
    if !loaded.is_valid() {
        return Ok(Planning::Invalid(loaded));
    }
    let root = RepositoryRoot::of_policies(request.policies);
    let opened = Org::open(request.org, request.now, Some(&loaded.desired), &root)?;
    if let Some(created) = &opened.created {
        stage(Stage::SandboxCreated(created));
    }
    stage(Stage::Reading { org: &opened.label });
    let live = opened.org.read().await;
    stage(Stage::Read);
    let mut live = live?;
    request.org.mark_undelivered(&mut live, &root)?;

    let (commit, dirty) = policy::git::locate(request.policies);
    let policy = PolicyRef {
        commit,
        dirty,
        digest: digest(&loaded.desired),
    };
    // The runtime the last complete apply put in force, which runtime changes are shown
    // against; none for an org without an identity or before a first apply.
    let recorded = match request.org.lock_identity(&root) {
        Some(identity) => runtime_record(request.org, &root).read(&identity)?,
        None => None,
    };
    let mut plan = plan::diff_against(
        &PlanInput {
            desired: &loaded.desired,
            live: &live,
            now: request.now,
            org: opened.label,
            policy,
        },
        recorded.as_ref(),
    );
    plan.warnings.extend(model_warnings(&loaded));
    Ok(Planning::Planned(Planned {
        desired: loaded.desired,
        org: opened.org,
        live,
        plan,
    }))
}

/// The policy's warnings about the models it names (deprecated, retired), for the plan's
/// warnings: a plan that still allows a retired model says so where it is reviewed.
fn model_warnings(loaded: &LoadedPolicy) -> Vec<String> {
    loaded
        .diagnostics
        .iter()
        .filter(|diagnostic| {
            matches!(
                diagnostic.code,
                policy::diagnostic::Code::DeprecatedModel | policy::diagnostic::Code::RetiredModel
            )
        })
        .map(|diagnostic| {
            let place = diagnostic
                .span
                .map(|span| {
                    let file = loaded.sources.get(span.file).display.as_str();
                    format!(" ({file}:{})", span.start.line)
                })
                .unwrap_or_default();
            format!("{}{place}: {}", diagnostic.code, diagnostic.message)
        })
        .collect()
}

/// Where the runtime the last apply put in force is recorded: beside the key journal.
pub fn runtime_record(org: &OrgConfig, root: &RepositoryRoot) -> RuntimeRecord {
    RuntimeRecord::at(org.journal_path(root).with_file_name("runtime.json"))
}

/// What binds a plan to the policy it was made from, wherever it was read: a digest of the
/// loaded policy, not of its files' bytes, so a comment or a moved file changes nothing.
pub fn digest(desired: &DesiredOrg) -> String {
    let digest = Sha256::digest(serde_json::to_vec(desired).unwrap_or_default());
    format!(
        "sha256:{}",
        digest
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    )
}
