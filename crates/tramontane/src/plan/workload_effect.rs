//! Who gains or loses what through a workload change: which tokens are the workload (its
//! issuer's `iss`, key source, audiences and longest lifetime, its own subject and claims),
//! and what it may do — in sentences, as a caller's change reads.

use std::collections::BTreeSet;

use super::effect::{AccessEffect, grant_phrase, limits_moved, model_names, models_phrase};
use crate::runtime::{RuleScope, WorkloadAccess};

pub(super) fn workload_effect(
    name: &str,
    before: Option<&WorkloadAccess>,
    after: Option<&WorkloadAccess>,
) -> AccessEffect {
    let subject = format!("workload {name}");
    let mut effect = AccessEffect {
        subject: subject.clone(),
        gains: Vec::new(),
        loses: Vec::new(),
        summary: Vec::new(),
    };
    let own = RuleScope::Workload(name.to_owned());
    match (before, after) {
        (None, Some(new)) => {
            let grant = match &new.limits {
                Some(limits) => {
                    effect.gains = model_names(&limits.models);
                    grant_phrase(limits, &new.workspace, &own)
                }
                None => format!("grants nothing: workspace {} is not defined", new.workspace),
            };
            effect.summary.push(format!("{subject} added: {grant}"));
            effect
                .summary
                .push(format!("{subject} is {}", token_phrase(new)));
        }
        (Some(old), None) => {
            if let Some(limits) = &old.limits {
                effect.loses = model_names(&limits.models);
            }
            effect.summary.push(format!(
                "{subject} removed: its tokens no longer call workspace {}{}",
                old.workspace,
                old.limits
                    .as_ref()
                    .map(|limits| format!(" (could call {})", models_phrase(&limits.models)))
                    .unwrap_or_default()
            ));
        }
        (Some(old), Some(new)) => {
            token_changes(&mut effect.summary, &subject, old, new);
            if old.workspace != new.workspace {
                effect.summary.push(format!(
                    "{subject}: workspace {} → {}",
                    old.workspace, new.workspace
                ));
            }
            limits_moved(
                &mut effect,
                &subject,
                &new.workspace,
                &own,
                (old.limits.as_ref(), new.limits.as_ref()),
                "no such workspace:",
            );
        }
        (None, None) => {}
    }
    effect
}

/// Which tokens are the workload, in one phrase.
fn token_phrase(access: &WorkloadAccess) -> String {
    let mut phrase = format!("a token of issuer {}", access.issuer);
    if let Some(trust) = &access.trust {
        phrase.push_str(&format!(
            " (iss {}, {}, audience {}, at most {} min)",
            trust.iss,
            trust
                .keys
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_else(|| "no key source".into()),
            trust.audiences.join(" or "),
            trust.max_lifetime_minutes
        ));
    }
    phrase.push_str(&format!(" with sub {}", access.subject));
    for (claim, value) in &access.claims {
        phrase.push_str(&format!(", {claim} {value}"));
    }
    phrase
}

/// What changes in which tokens are the workload: each a sentence.
fn token_changes(
    summary: &mut Vec<String>,
    subject: &str,
    old: &WorkloadAccess,
    new: &WorkloadAccess,
) {
    if old.issuer != new.issuer {
        summary.push(format!("{subject}: issuer {} → {}", old.issuer, new.issuer));
    }
    if old.subject != new.subject {
        summary.push(format!("{subject}: sub {} → {}", old.subject, new.subject));
    }
    let claims: BTreeSet<&String> = old.claims.keys().chain(new.claims.keys()).collect();
    for claim in claims {
        match (old.claims.get(claim), new.claims.get(claim)) {
            (Some(before), Some(after)) if before != after => {
                summary.push(format!("{subject}: claim {claim} {before} → {after}"));
            }
            (None, Some(after)) => {
                summary.push(format!("{subject}: tokens must also carry {claim} {after}"))
            }
            (Some(before), None) => summary.push(format!(
                "{subject}: tokens need no longer carry {claim} {before}: more tokens match"
            )),
            _ => {}
        }
    }
    match (&old.trust, &new.trust) {
        (Some(before), Some(after)) => {
            if before.iss != after.iss {
                summary.push(format!("{subject}: iss {} → {}", before.iss, after.iss));
            }
            if before.keys != after.keys {
                let shown = |keys: &Option<crate::model::IssuerKeys>| {
                    keys.as_ref()
                        .map(ToString::to_string)
                        .unwrap_or_else(|| "no key source".into())
                };
                summary.push(format!(
                    "{subject}: signing keys from {} → {}",
                    shown(&before.keys),
                    shown(&after.keys)
                ));
            }
            let old_audiences: BTreeSet<&String> = before.audiences.iter().collect();
            let new_audiences: BTreeSet<&String> = after.audiences.iter().collect();
            for audience in new_audiences.difference(&old_audiences) {
                summary.push(format!(
                    "{subject}: tokens for audience {audience} are accepted too"
                ));
            }
            for audience in old_audiences.difference(&new_audiences) {
                summary.push(format!(
                    "{subject}: tokens for audience {audience} are no longer accepted"
                ));
            }
            if before.max_lifetime_minutes != after.max_lifetime_minutes {
                summary.push(format!(
                    "{subject}: longest token lifetime {} → {} min",
                    before.max_lifetime_minutes, after.max_lifetime_minutes
                ));
            }
        }
        (None, Some(_)) => summary.push(format!(
            "{subject}: its issuer is now defined, so its tokens are accepted"
        )),
        (Some(_), None) => summary.push(format!(
            "{subject}: its issuer is no longer defined, so no token is it"
        )),
        (None, None) => {}
    }
}
