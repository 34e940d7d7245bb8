//! Who gains or loses what through one runtime change: the models a caller may call after it
//! and not before (and the other way round), and each limit that moves, in sentences a
//! reviewer reads without comparing two objects.
//!
//! Everything here is read from the change's two sides, which are [`Runtime`] values: the
//! effective access before and after, with inheritance already resolved. Nothing here
//! re-derives access from the policy.
//!
//! [`Runtime`]: crate::runtime::Runtime

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::{Change, ChangeSpec};
use crate::model::ALL_MODELS;
use crate::runtime::{Caller, GatewayKeyAccess, Limits, Models, RuleScope};

/// What a runtime change does to the one caller it is about.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AccessEffect {
    /// The caller, in words: `member bob@acme.example`, `key workspace.prod.key.ci`,
    /// `team developers`, `gateway key tmt_b7k2m9q4x1za_… (holder …)`.
    pub subject: String,
    /// Models the caller may call after the change and not before; `"*"` for every model.
    pub gains: Vec<String>,
    /// Models the caller may call before the change and not after; `"*"` for every model.
    pub loses: Vec<String>,
    /// One sentence per effect, in the order a reviewer reads them.
    pub summary: Vec<String>,
}

impl Change {
    /// Who gains or loses what through this change; `None` for anything but a runtime change.
    pub fn access_effect(&self) -> Option<AccessEffect> {
        match &self.spec {
            ChangeSpec::Runtime {
                caller,
                before,
                after,
            } => Some(caller_effect(caller, before.as_ref(), after.as_ref())),
            ChangeSpec::GatewayKey { id, before, after } => {
                Some(gateway_key_effect(id, before.as_ref(), after.as_ref()))
            }
            ChangeSpec::Workload {
                name,
                before,
                after,
            } => Some(super::workload_effect::workload_effect(
                name,
                before.as_ref(),
                after.as_ref(),
            )),
            _ => None,
        }
    }
}

/// How a plan names a gateway key: its public id inside the key's shape, never more of it.
pub fn gateway_key_name(id: &str) -> String {
    format!("tmt_{id}_…")
}

fn caller_subject(caller: &Caller) -> (String, &str) {
    match caller {
        Caller::Key { workspace, key } => {
            (format!("key workspace.{workspace}.key.{key}"), workspace)
        }
        Caller::Team { team, workspace } => (format!("team {team}"), workspace),
        Caller::Member { email, workspace } => (format!("member {email}"), workspace),
    }
}

fn caller_effect(caller: &Caller, before: Option<&Limits>, after: Option<&Limits>) -> AccessEffect {
    let (subject, workspace) = caller_subject(caller);
    let mut effect = AccessEffect {
        subject,
        gains: Vec::new(),
        loses: Vec::new(),
        summary: Vec::new(),
    };
    let subject = effect.subject.clone();
    match (before, after) {
        (None, Some(new)) => {
            effect.gains = model_names(&new.models);
            effect.summary.push(format!(
                "{subject} gains access: {}",
                grant_phrase(new, workspace, &caller.own_scope())
            ));
        }
        (Some(old), None) => {
            effect.loses = model_names(&old.models);
            effect.summary.push(format!(
                "{subject} loses access to workspace {workspace} (could call {})",
                models_phrase(&old.models)
            ));
        }
        (Some(old), Some(new)) => {
            changed_limits(
                &mut effect,
                &subject,
                workspace,
                &caller.own_scope(),
                old,
                new,
            );
        }
        (None, None) => {}
    }
    effect
}

fn gateway_key_effect(
    id: &str,
    before: Option<&GatewayKeyAccess>,
    after: Option<&GatewayKeyAccess>,
) -> AccessEffect {
    let name = gateway_key_name(id);
    let holder = after.or(before).map(|key| key.holder.to_string());
    let subject = match &holder {
        Some(holder) => format!("gateway key {name} (holder {holder})"),
        None => format!("gateway key {name}"),
    };
    let mut effect = AccessEffect {
        subject: subject.clone(),
        gains: Vec::new(),
        loses: Vec::new(),
        summary: Vec::new(),
    };
    match (before, after) {
        (None, Some(new)) => {
            let line = match &new.limits {
                Some(limits) => {
                    effect.gains = model_names(&limits.models);
                    format!(
                        "{subject} added: {}; expires {}",
                        grant_phrase(limits, &new.workspace, &RuleScope::holder(&new.holder)),
                        new.expires
                    )
                }
                None => format!(
                    "{subject} added, but grants nothing: its holder does not reach workspace {}",
                    new.workspace
                ),
            };
            effect.summary.push(line);
        }
        (Some(old), None) => {
            if let Some(limits) = &old.limits {
                effect.loses = model_names(&limits.models);
            }
            effect.summary.push(format!(
                "{subject} revoked: it no longer calls workspace {}",
                old.workspace
            ));
        }
        (Some(old), Some(new)) => {
            if old.holder != new.holder {
                effect
                    .summary
                    .push(format!("{subject}: holder {} → {}", old.holder, new.holder));
            }
            if old.workspace != new.workspace {
                effect.summary.push(format!(
                    "{subject}: workspace {} → {}",
                    old.workspace, new.workspace
                ));
            }
            if old.expires != new.expires {
                effect.summary.push(format!(
                    "{subject}: expires {} → {}",
                    old.expires, new.expires
                ));
            }
            if old.fingerprint != new.fingerprint {
                effect.summary.push(format!(
                    "{subject} re-issued: the key it had stops working, the new one works"
                ));
            }
            limits_moved(
                &mut effect,
                &subject,
                &new.workspace,
                &RuleScope::holder(&new.holder),
                (old.limits.as_ref(), new.limits.as_ref()),
                "its holder does not reach workspace",
            );
        }
        (None, None) => {}
    }
    effect
}

/// What a change does to a caller whose access may be none on either side: none before is
/// access gained, none after is access lost (`why_none`, followed by the workspace, says why),
/// and otherwise each limit that moves.
pub(super) fn limits_moved(
    effect: &mut AccessEffect,
    subject: &str,
    workspace: &str,
    own: &RuleScope,
    (old, new): (Option<&Limits>, Option<&Limits>),
    why_none: &str,
) {
    match (old, new) {
        (Some(old), Some(new)) => changed_limits(effect, subject, workspace, own, old, new),
        (None, Some(limits)) => {
            effect.gains = model_names(&limits.models);
            effect.summary.push(format!(
                "{subject} gains access: {}",
                grant_phrase(limits, workspace, own)
            ));
        }
        (Some(limits), None) => {
            effect.loses = model_names(&limits.models);
            effect.summary.push(format!(
                "{subject} grants nothing any more: {why_none} {workspace}"
            ));
        }
        (None, None) => {}
    }
}

/// The models gained and lost and each limit that moves, between two sides of one caller.
fn changed_limits(
    effect: &mut AccessEffect,
    subject: &str,
    workspace: &str,
    own: &RuleScope,
    old: &Limits,
    new: &Limits,
) {
    match (&old.models, &new.models) {
        (Models::Only(old_names), Models::Only(new_names)) => {
            let gained: BTreeSet<&String> = new_names.difference(old_names).collect();
            let lost: BTreeSet<&String> = old_names.difference(new_names).collect();
            if !gained.is_empty() {
                effect.gains = gained.iter().map(|name| (*name).clone()).collect();
                effect.summary.push(format!(
                    "{subject} gains {} in workspace {workspace}",
                    effect.gains.join(", ")
                ));
            }
            if !lost.is_empty() {
                effect.loses = lost.iter().map(|name| (*name).clone()).collect();
                effect.summary.push(format!(
                    "{subject} loses {} in workspace {workspace}",
                    effect.loses.join(", ")
                ));
            }
        }
        (Models::Only(old_names), Models::Every) => {
            effect.gains = vec![ALL_MODELS.to_owned()];
            effect.summary.push(format!(
                "{subject} gains every model in workspace {workspace} (could call {})",
                join(old_names)
            ));
        }
        (Models::Every, Models::Only(new_names)) => {
            effect.loses = vec![ALL_MODELS.to_owned()];
            effect.summary.push(format!(
                "{subject} is held to {} in workspace {workspace} (could call every model)",
                join(new_names)
            ));
        }
        (Models::Every, Models::Every) => {}
    }
    let (old_fields, new_fields) = (limit_fields(old), limit_fields(new));
    for (name, new_value) in &new_fields {
        let old_value = old_fields
            .iter()
            .find(|(old_name, _)| old_name == name)
            .map(|(_, value)| value.as_str());
        if old_value != Some(new_value.as_str()) {
            effect.summary.push(format!(
                "{subject}: {name} {} → {new_value} in workspace {workspace}",
                old_value.unwrap_or(UNSET)
            ));
        }
    }
    // Counted limits are rules, compared by id and worded by the rule itself.
    let (old_rules, new_rules) = (old.rules(workspace, own), new.rules(workspace, own));
    for rule in &new_rules {
        match old_rules.iter().find(|old| old.id == rule.id) {
            None => effect
                .summary
                .push(format!("{subject}: rule `{}` added: {rule}", rule.id)),
            Some(old) if old.limit != rule.limit => effect.summary.push(format!(
                "{subject}: rule `{}` was {}, now {rule}",
                rule.id,
                old.amount(old.limit)
            )),
            Some(_) => {}
        }
    }
    for rule in &old_rules {
        if !new_rules.iter().any(|new| new.id == rule.id) {
            effect.summary.push(format!(
                "{subject}: rule `{}` removed (was {rule})",
                rule.id
            ));
        }
    }
}

/// What a new caller may do in `workspace`: its models, then each limit it has.
pub(super) fn grant_phrase(limits: &Limits, workspace: &str, own: &RuleScope) -> String {
    let mut phrase = format!(
        "can call {} in workspace {workspace}",
        models_phrase(&limits.models)
    );
    let set: Vec<String> = limit_fields(limits)
        .into_iter()
        .filter(|(_, value)| value != UNSET)
        .map(|(name, value)| format!("{name} {value}"))
        .chain(
            limits
                .rules(workspace, own)
                .iter()
                .map(|rule| format!("rule `{}`: {rule}", rule.id)),
        )
        .collect();
    if !set.is_empty() {
        phrase.push_str(&format!(" ({})", set.join(", ")));
    }
    phrase
}

pub(super) fn models_phrase(models: &Models) -> String {
    match models {
        Models::Every => "every model".into(),
        Models::Only(names) if names.is_empty() => "no model".into(),
        Models::Only(names) => join(names),
    }
}

pub(super) fn model_names(models: &Models) -> Vec<String> {
    match models {
        Models::Every => vec![ALL_MODELS.to_owned()],
        Models::Only(names) => names.iter().cloned().collect(),
    }
}

fn join(names: &BTreeSet<String>) -> String {
    names.iter().cloned().collect::<Vec<_>>().join(", ")
}

/// How a limit without a value reads.
const UNSET: &str = "none";

/// The limits that are not counted (so not rules), named for people and shown as values.
fn limit_fields(limits: &Limits) -> Vec<(String, String)> {
    fn shown<T: ToString>(value: Option<T>) -> String {
        value.map_or_else(|| UNSET.to_owned(), |value| value.to_string())
    }
    vec![
        (
            "max tokens per request".to_owned(),
            shown(limits.max_tokens_per_request),
        ),
        ("spend limit".to_owned(), shown(limits.spend_limit)),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Holder;

    fn limits(models: &[&str], rpm: Option<u32>) -> Limits {
        Limits {
            models: Models::declared(Some(
                &models.iter().map(|m| m.to_string()).collect::<Vec<_>>(),
            )),
            rpm,
            workspace_rpm: Some(500),
            max_tokens_per_request: None,
            daily_token_budget: None,
            spend_limit: None,
            spend_guards: Vec::new(),
        }
    }

    fn member_change(before: Option<Limits>, after: Option<Limits>) -> Change {
        let caller = Caller::Member {
            email: "bob@acme.example".into(),
            workspace: "prod".into(),
        };
        Change::new(
            caller.address(),
            "",
            ChangeSpec::Runtime {
                caller,
                before,
                after,
            },
        )
    }

    #[test]
    fn a_member_gains_and_loses_models_and_a_rate_moves() {
        let change = member_change(
            Some(limits(&["large", "small"], Some(60))),
            Some(limits(&["small", "embed"], Some(30))),
        );
        let effect = change.access_effect().unwrap();
        assert_eq!(effect.gains, ["embed"]);
        assert_eq!(effect.loses, ["large"]);
        assert_eq!(
            effect.summary,
            [
                "member bob@acme.example gains embed in workspace prod",
                "member bob@acme.example loses large in workspace prod",
                "member bob@acme.example: rule `member:bob@acme.example:requests:minute` was 60 requests, now 30 requests a minute for member `bob@acme.example`",
            ]
        );
    }

    #[test]
    fn a_caller_that_comes_or_goes_says_what_it_could_call() {
        let new = member_change(None, Some(limits(&["*"], None)));
        assert_eq!(
            new.access_effect().unwrap().summary,
            [
                "member bob@acme.example gains access: can call every model in workspace prod (rule `workspace:prod:requests:minute`: 500 requests a minute for workspace `prod` together)"
            ]
        );
        let gone = member_change(Some(limits(&["small"], Some(5))), None);
        let effect = gone.access_effect().unwrap();
        assert_eq!(effect.loses, ["small"]);
        assert_eq!(
            effect.summary,
            ["member bob@acme.example loses access to workspace prod (could call small)"]
        );
        let narrowed = member_change(Some(limits(&["*"], None)), Some(limits(&["a"], None)));
        assert_eq!(
            narrowed.access_effect().unwrap().summary,
            ["member bob@acme.example is held to a in workspace prod (could call every model)"]
        );
    }

    fn key(holder: &str, fingerprint: &str, limits: Option<Limits>) -> GatewayKeyAccess {
        GatewayKeyAccess {
            holder: Holder::parse(holder),
            workspace: "prod".into(),
            expires: jiff::civil::date(2027, 12, 31),
            fingerprint: fingerprint.into(),
            limits,
        }
    }

    #[test]
    fn a_gateway_key_names_its_holder_and_never_its_digest() {
        let issued = Change::new(
            "runtime.gateway_key.ab12cd34",
            "",
            ChangeSpec::GatewayKey {
                id: "ab12cd34".into(),
                before: None,
                after: Some(key(
                    "alice@acme.example",
                    "0011223344556677",
                    Some(limits(&["small", "codestral"], None)),
                )),
            },
        );
        let effect = issued.access_effect().unwrap();
        assert_eq!(effect.gains, ["codestral", "small"]);
        assert_eq!(
            effect.summary,
            [
                "gateway key tmt_ab12cd34_… (holder alice@acme.example) added: can call codestral, small in workspace prod (rule `workspace:prod:requests:minute`: 500 requests a minute for workspace `prod` together); expires 2027-12-31"
            ]
        );
        let rotated = Change::new(
            "runtime.gateway_key.ab12cd34",
            "",
            ChangeSpec::GatewayKey {
                id: "ab12cd34".into(),
                before: Some(key("alice@acme.example", "0011223344556677", None)),
                after: Some(key(
                    "workspace.prod.key.ci",
                    "8899aabbccddeeff",
                    Some(limits(&["small"], Some(30))),
                )),
            },
        );
        let summary = rotated.access_effect().unwrap().summary;
        assert_eq!(
            summary,
            [
                "gateway key tmt_ab12cd34_… (holder workspace.prod.key.ci): holder alice@acme.example → workspace.prod.key.ci",
                "gateway key tmt_ab12cd34_… (holder workspace.prod.key.ci) re-issued: the key it had stops working, the new one works",
                "gateway key tmt_ab12cd34_… (holder workspace.prod.key.ci) gains access: can call small in workspace prod (rule `workspace:prod:requests:minute`: 500 requests a minute for workspace `prod` together, rule `key:workspace.prod.key.ci:requests:minute`: 30 requests a minute for key `workspace.prod.key.ci`)",
            ]
        );
        assert!(!summary.join("\n").contains("8899aabb"));
    }
}
