//! Workloads as callers: each entry of the policy's `workloads:` with the token it must
//! present — its issuer's trust (the `iss`, the key source, the audiences, the longest
//! lifetime) and its own subject and claims — and the limits it gets, computed as a service
//! key's are: models within the workspace's, its own rate, largest request, daily token
//! budget and spend guard, beside the workspace's shared rate and guard.
//!
//! The issuer's trust is copied into every workload that names it, so a plan shows a change
//! to an issuer as a change to each workload a token can then be: who gains or loses what.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{GuardScope, Limits, Models, SharedGuard, WorkspaceAccess};
use crate::model::{Issuer, IssuerKeys, Workload};
use crate::policy::catalog::Catalog;

/// One workload and what a token that is it may do.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WorkloadAccess {
    /// The name of its issuer in `issuers:`.
    pub issuer: String,
    /// The issuer's trust as the gateway applies it; `None`: the issuer is not defined, so
    /// no token can be this workload (validation reports it).
    pub trust: Option<IssuerTrust>,
    /// The token's exact `sub`.
    pub subject: String,
    /// Further claims the token must carry, exactly.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub claims: BTreeMap<String, String>,
    /// The workspace whose models, limits and upstream key the workload gets.
    pub workspace: String,
    /// `None`: the workspace is not defined, so the workload grants nothing.
    pub limits: Option<Limits>,
}

/// What an issuer's token must be for the gateway to believe it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssuerTrust {
    /// The exact `iss`.
    pub iss: String,
    /// Where the signing keys are read; `None`: the entry names no single source.
    pub keys: Option<IssuerKeys>,
    pub audiences: Vec<String>,
    pub max_lifetime_minutes: u32,
}

impl IssuerTrust {
    fn of(issuer: &Issuer) -> IssuerTrust {
        IssuerTrust {
            iss: issuer.issuer.clone(),
            keys: issuer.keys(),
            audiences: issuer.audiences.clone(),
            max_lifetime_minutes: issuer.max_lifetime_minutes,
        }
    }
}

/// Every workload with its limits, read from workspace access already resolved.
pub(super) fn workloads_of(
    issuers: &BTreeMap<String, Issuer>,
    workloads: &BTreeMap<String, Workload>,
    workspaces: &BTreeMap<String, WorkspaceAccess>,
    catalog: &Catalog,
) -> BTreeMap<String, WorkloadAccess> {
    workloads
        .iter()
        .map(|(name, workload)| {
            let limits = workspaces
                .get(&workload.workspace)
                .map(|access| limits_of(name, workload, access, catalog));
            let access = WorkloadAccess {
                issuer: workload.issuer.clone(),
                trust: issuers.get(&workload.issuer).map(IssuerTrust::of),
                subject: workload.subject.clone(),
                claims: workload.claims.clone(),
                workspace: workload.workspace.clone(),
                limits,
            };
            (name.clone(), access)
        })
        .collect()
}

/// A workload's limits in its workspace: a service key's computation.
fn limits_of(
    name: &str,
    workload: &Workload,
    access: &WorkspaceAccess,
    catalog: &Catalog,
) -> Limits {
    let models = match &workload.models {
        Some(own) => Models::declared(Some(own)).within(&access.models, catalog),
        None => access.models.clone(),
    };
    let mut limits = Limits {
        models,
        rpm: workload.rpm,
        max_tokens_per_request: workload.max_tokens_per_request,
        daily_token_budget: workload.daily_token_budget,
        ..access.limits(&workload.workspace)
    };
    limits.spend_guards.extend(SharedGuard::of(
        GuardScope::Workload(name.to_owned()),
        workload.spend_guard.as_ref(),
    ));
    limits
}
