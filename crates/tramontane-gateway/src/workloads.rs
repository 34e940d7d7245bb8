//! Workloads as the gateway matches them: a verified token's issuer, subject and claims lead
//! to exactly one workload of the policy, or to a refusal. Validation already refuses two
//! workloads one token could match; the gateway checks again rather than pick one, since a
//! policy could reach it unvalidated.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tramontane::model::{DesiredOrg, IssuerKeys, Workload};

use crate::oidc::{IssuerSettings, IssuerSettingsError, KeyCacheSettings, KeySource, Verifier};

use crate::access::{Caller, Grant, Principal};

/// Every workload the policy declares whose workspace exists, by name, and indexed by the
/// issuer and subject a token must carry.
#[derive(Clone, Debug, Default)]
pub struct WorkloadTable {
    callers: BTreeMap<String, Caller>,
    /// By issuer, then subject: looked up with the token's own strings.
    by_subject: HashMap<String, HashMap<String, Vec<Candidate>>>,
}

/// One workload a token of some issuer and subject may be, and the claims that decide it.
#[derive(Clone, Debug)]
struct Candidate {
    name: String,
    claims: Vec<(String, String)>,
}

/// Why a verified token is no workload's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Unmatched {
    /// No workload names this issuer, subject and claims.
    NoWorkload,
    /// Several do: the policy is ambiguous, and no limits are picked for it.
    Several(Vec<String>),
}

impl WorkloadTable {
    /// The workloads of `desired`, each with the grant `grant` gives it; a workload whose
    /// grant cannot be built (its workspace is missing) is left out.
    pub fn of(
        desired: &DesiredOrg,
        grant: impl Fn(&str, &Workload) -> Option<Grant>,
    ) -> WorkloadTable {
        let mut table = WorkloadTable::default();
        for (name, workload) in &desired.workloads {
            let Some(grant) = grant(name, workload) else {
                continue;
            };
            table.callers.insert(
                name.clone(),
                Caller {
                    principal: Principal::Workload {
                        name: name.clone(),
                        issuer: workload.issuer.clone(),
                    },
                    workspace: workload.workspace.clone(),
                    grant,
                },
            );
            table
                .by_subject
                .entry(workload.issuer.clone())
                .or_default()
                .entry(workload.subject.clone())
                .or_default()
                .push(Candidate {
                    name: name.clone(),
                    claims: workload
                        .claims
                        .iter()
                        .map(|(claim, value)| (claim.clone(), value.clone()))
                        .collect(),
                });
        }
        table
    }

    pub fn len(&self) -> usize {
        self.callers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.callers.is_empty()
    }

    pub fn callers(&self) -> impl Iterator<Item = &Caller> {
        self.callers.values()
    }

    /// The one workload a token of `issuer` (its name in `issuers:`) with `subject` is,
    /// `claim` reading the token's claims by path (`repository`, `kubernetes.io/namespace`).
    pub fn matching<'c>(
        &self,
        issuer: &str,
        subject: &str,
        claim: impl Fn(&str) -> Option<&'c str>,
    ) -> Result<&Caller, Unmatched> {
        let candidates = self
            .by_subject
            .get(issuer)
            .and_then(|subjects| subjects.get(subject))
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        let matched: Vec<&Candidate> = candidates
            .iter()
            .filter(|candidate| {
                candidate
                    .claims
                    .iter()
                    .all(|(name, wanted)| claim(name) == Some(wanted.as_str()))
            })
            .collect();
        match matched.as_slice() {
            [one] => self.callers.get(&one.name).ok_or(Unmatched::NoWorkload),
            [] => Err(Unmatched::NoWorkload),
            several => Err(Unmatched::Several(
                several.iter().map(|c| c.name.clone()).collect(),
            )),
        }
    }
}

/// The verifier for the policy's issuers, keeping the cached keys of `previous` for every
/// issuer whose key source did not change. A policy that trusts no issuer still gets one,
/// which refuses every token by the `iss` it names.
pub fn verifier_of(
    desired: &DesiredOrg,
    previous: Option<&Verifier>,
    refresh_interval: Duration,
) -> Result<Arc<Verifier>, IssuerSettingsError> {
    let issuers: Vec<IssuerSettings> = desired
        .issuers
        .iter()
        .filter_map(|(name, issuer)| {
            // Validation refuses an issuer without exactly one source (E055).
            let keys = match issuer.keys()? {
                IssuerKeys::JwksUrl(url) => KeySource::JwksUrl(url.parse().ok()?),
                IssuerKeys::Discovery => KeySource::Discovery,
                // Relative to the directory the gateway runs in, as secret files are.
                IssuerKeys::JwksFile(path) => KeySource::JwksFile(PathBuf::from(path)),
            };
            Some(IssuerSettings {
                name: name.clone(),
                issuer: issuer.issuer.clone(),
                keys,
                audiences: issuer.audiences.clone(),
                max_lifetime: Duration::from_secs(u64::from(issuer.max_lifetime_minutes) * 60),
            })
        })
        .collect();
    let verifier = match previous {
        Some(previous) => previous.reconfigured(issuers)?,
        None => Verifier::new(
            issuers,
            KeyCacheSettings {
                refresh_interval,
                ..KeyCacheSettings::default()
            },
        )?,
    };
    Ok(Arc::new(verifier))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access::CallerTable;

    fn org() -> DesiredOrg {
        serde_json::from_value(serde_json::json!({
            "workspaces": {"prod": {"models": ["mistral-small-latest"],
                "gateway": {"upstream_key": "gw"},
                "keys": {"gw": {"owner": "a@x.example", "secret": {"file": "gw"}}}}},
            "issuers": {
                "cluster": {"issuer": "https://k8s.example", "jwks_file": "k.json",
                            "audiences": ["tramontane"]},
                "github": {"issuer": "https://token.actions.githubusercontent.com",
                           "discovery": true, "audiences": ["tramontane"]}
            },
            "workloads": {
                "batch": {"issuer": "cluster", "subject": "system:serviceaccount:billing:batch",
                          "claims": {"kubernetes.io/namespace": "billing"},
                          "workspace": "prod", "rpm": 5},
                "prod-deploy": {"issuer": "github", "subject": "repo:acme/app:environment:production",
                                "claims": {"environment": "production"}, "workspace": "prod"},
                "prod-any": {"issuer": "github", "subject": "repo:acme/app:environment:production",
                             "workspace": "prod"},
                "lost": {"issuer": "github", "subject": "x", "workspace": "gone"}
            }
        }))
        .unwrap()
    }

    /// Claims by path, as a verified token reads them.
    fn claims(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(path, value)| (path.to_string(), value.to_string()))
            .collect()
    }

    #[test]
    fn a_token_is_the_one_workload_its_issuer_subject_and_claims_name() {
        let table = CallerTable::of(&org());
        let workloads = table.workloads();
        assert_eq!(
            workloads.len(),
            3,
            "the workload of a missing workspace is left out"
        );
        let nested = claims(&[("kubernetes.io/namespace", "billing")]);
        let batch = workloads
            .matching("cluster", "system:serviceaccount:billing:batch", |path| {
                nested.get(path).map(String::as_str)
            })
            .unwrap();
        assert!(matches!(&batch.principal, Principal::Workload { name, .. } if name == "batch"));
        assert_eq!(
            batch.grant.upstream_key.as_deref(),
            Some("workspace.prod.key.gw")
        );
        assert!(
            batch
                .grant
                .rules
                .iter()
                .any(|rule| rule.id == "workload:batch:requests:minute")
        );
        let elsewhere = claims(&[("kubernetes.io/namespace", "other")]);
        assert_eq!(
            workloads
                .matching("cluster", "system:serviceaccount:billing:batch", |path| {
                    elsewhere.get(path).map(String::as_str)
                })
                .unwrap_err(),
            Unmatched::NoWorkload
        );
        // The same subject from another issuer is nobody.
        assert!(
            workloads
                .matching("github", "system:serviceaccount:billing:batch", |path| {
                    nested.get(path).map(String::as_str)
                })
                .is_err()
        );
        // Two workloads this token could be: refused, not picked.
        let production = claims(&[("environment", "production")]);
        assert_eq!(
            workloads
                .matching("github", "repo:acme/app:environment:production", |path| {
                    production.get(path).map(String::as_str)
                })
                .unwrap_err(),
            Unmatched::Several(vec!["prod-any".into(), "prod-deploy".into()])
        );
        let staging = claims(&[("environment", "staging")]);
        let any = workloads
            .matching("github", "repo:acme/app:environment:production", |path| {
                staging.get(path).map(String::as_str)
            })
            .unwrap();
        assert!(matches!(&any.principal, Principal::Workload { name, .. } if name == "prod-any"));
    }
}
