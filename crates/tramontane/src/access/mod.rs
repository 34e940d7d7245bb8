//! Stage: the access diff, a renderer over [`Runtime`] (after `policy` and `runtime`, beside
//! `plan`): what a policy grants each key, team, member and workspace, and what changes
//! between two policies. This reads no live organization: it answers "what does this branch
//! change?" from the files alone.
//!
//! Inheritance is resolved once, in [`crate::runtime`]; this module only words it: a key's
//! rate is shown as the workspace's where that is the one that binds, a team's models and
//! token limits are its runtime role's.

pub mod render;

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::model::{Budget, Expiry, Money, WorkspaceRole};
use crate::runtime::{Limits, Models, Rule, RuleScope, Runtime, key_address};

/// Whom or what an access record describes, in the order changes are shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SubjectKind {
    Organization,
    Workspace,
    Key,
    GatewayKey,
    Workload,
    Team,
    Member,
}

impl SubjectKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SubjectKind::Organization => "organization",
            SubjectKind::Workspace => "workspace",
            SubjectKind::Key => "key",
            SubjectKind::GatewayKey => "gateway key",
            SubjectKind::Workload => "workload",
            SubjectKind::Team => "team",
            SubjectKind::Member => "member",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Subject {
    pub kind: SubjectKind,
    /// A key is named `workspace/key`; the organization has no name.
    pub name: String,
}

/// One attribute's value: a single text, or a set shown and compared item by item.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Value {
    Text(String),
    Set(BTreeSet<String>),
}

impl Value {
    fn text(text: impl Into<String>) -> Value {
        Value::Text(text.into())
    }

    fn set<I: IntoIterator<Item = S>, S: Into<String>>(items: I) -> Value {
        Value::Set(items.into_iter().map(Into::into).collect())
    }
}

/// Attributes in the order they are shown.
pub type Attributes = Vec<(&'static str, Value)>;

/// Everything one policy grants.
#[derive(Clone, Debug, PartialEq)]
pub struct Access {
    pub subjects: BTreeMap<Subject, Attributes>,
    pub exposure: Exposure,
    /// Each gateway key's digest fingerprint, by public id: never shown, only compared, so
    /// a re-issued key shows as one.
    pub gateway_key_fingerprints: BTreeMap<String, String>,
}

/// The most the organization can spend in a month under a policy (see docs/diff-and-comment.md).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Exposure {
    /// `None`: nothing in the policy bounds it.
    pub amount: Option<f64>,
    /// How the amount follows from the policy, in words.
    pub basis: String,
}

const EVERY_MODEL: &str = "every model";

impl Access {
    /// What `runtime` grants, subject by subject, as `tramontane diff` shows it.
    pub fn of(runtime: &Runtime) -> Access {
        let mut subjects = BTreeMap::new();
        let subject = |kind, name: &str| Subject {
            kind,
            name: name.to_owned(),
        };

        subjects.insert(
            subject(SubjectKind::Organization, ""),
            vec![(
                "spend_limit",
                Value::text(match runtime.organization.spend_limit {
                    Some(limit) => limit.to_string(),
                    None => "not set by the policy".into(),
                }),
            )],
        );

        for (name, workspace) in &runtime.workspaces {
            let members = workspace
                .members
                .iter()
                .map(|(email, roles)| format!("{email}: {}", join(roles)));
            let teams = workspace
                .teams
                .iter()
                .map(|(team, roles)| format!("{team}: {}", join(roles)));
            subjects.insert(
                subject(SubjectKind::Workspace, name),
                vec![
                    ("members", Value::set(members)),
                    ("teams", Value::set(teams)),
                    ("models", models(&workspace.models)),
                    ("rpm", rpm(workspace.rpm)),
                    ("spend_limit", workspace_limit(workspace.spend_limit)),
                ],
            );
            for (key_name, key) in &workspace.keys {
                let key_models = match models(&key.limits.models) {
                    Value::Text(text) if key.inherits_models => {
                        Value::Text(format!("{text} (the workspace's)"))
                    }
                    other => other,
                };
                let key_rules = rules(
                    &key.limits,
                    name,
                    &RuleScope::Key(key_address(name, key_name)),
                );
                let expires = match key.expiry {
                    Some(Expiry::On(date)) => date.to_string(),
                    Some(Expiry::AfterDays(days)) => format!("{days} days after creation"),
                    None => "never".into(),
                };
                subjects.insert(
                    subject(SubjectKind::Key, &format!("{name}/{key_name}")),
                    vec![
                        ("owner", Value::text(key.owner.clone())),
                        ("models", key_models),
                        (
                            "max_tokens_per_request",
                            limit(key.limits.max_tokens_per_request, "no limit"),
                        ),
                        ("rules", key_rules),
                        ("expires", Value::text(expires)),
                    ],
                );
            }
        }

        for (id, key) in &runtime.gateway_keys {
            let mut attributes = vec![
                ("holder", Value::text(key.holder.to_string())),
                ("workspace", Value::text(key.workspace.clone())),
                ("expires", Value::text(key.expires.to_string())),
            ];
            match &key.limits {
                Some(limits) => attributes.extend([
                    ("models", models(&limits.models)),
                    (
                        "max_tokens_per_request",
                        limit(limits.max_tokens_per_request, "no limit"),
                    ),
                    (
                        "rules",
                        rules(limits, &key.workspace, &RuleScope::holder(&key.holder)),
                    ),
                ]),
                None => attributes.push((
                    "models",
                    Value::text("none: the holder does not reach the workspace"),
                )),
            }
            subjects.insert(subject(SubjectKind::GatewayKey, id), attributes);
        }

        for (name, workload) in &runtime.workloads {
            let mut token = vec![
                format!("issuer {}", workload.issuer),
                format!("sub {}", workload.subject),
            ];
            token.extend(
                workload
                    .claims
                    .iter()
                    .map(|(claim, value)| format!("{claim} {value}")),
            );
            if let Some(trust) = &workload.trust {
                token.extend(
                    trust
                        .audiences
                        .iter()
                        .map(|audience| format!("aud {audience}")),
                );
            }
            let mut attributes = vec![
                ("token", Value::set(token)),
                ("workspace", Value::text(workload.workspace.clone())),
            ];
            match &workload.limits {
                Some(limits) => attributes.extend([
                    ("models", models(&limits.models)),
                    (
                        "max_tokens_per_request",
                        limit(limits.max_tokens_per_request, "no limit"),
                    ),
                    (
                        "rules",
                        rules(
                            limits,
                            &workload.workspace,
                            &RuleScope::Workload(name.clone()),
                        ),
                    ),
                ]),
                None => {
                    attributes.push(("models", Value::text("none: the workspace is not defined")))
                }
            }
            subjects.insert(subject(SubjectKind::Workload, name), attributes);
        }

        for (name, team) in &runtime.teams {
            let (team_models, member_rpm, max_tokens, budget) = match runtime.profile_of(team) {
                Some(profile) => (
                    models(&profile.models),
                    limit(profile.rpm.map(u64::from), "no limit"),
                    limit(profile.max_tokens_per_request, "no limit"),
                    limit(profile.daily_token_budget, "no cap"),
                ),
                // Without a runtime role the gateway has nothing to restrict the team by.
                None => (
                    Value::text("not restricted (no runtime role)"),
                    Value::text("no limit"),
                    Value::text("no limit"),
                    Value::text("no cap"),
                ),
            };
            let workspaces = team
                .workspaces
                .iter()
                .map(|(workspace, grant)| format!("{workspace}: {}", join(&grant.roles)));
            let mut attributes = vec![("members", Value::Set(team.members.clone()))];
            if let Some(role) = team.organization_role {
                attributes.push(("organization_role", Value::text(role.as_str())));
            }
            attributes.extend([
                ("workspaces", Value::set(workspaces)),
                ("role", Value::text(team.role.as_deref().unwrap_or("none"))),
                ("models", team_models),
                ("rpm_per_member", member_rpm),
                ("max_tokens_per_request", max_tokens),
                ("daily_token_budget", budget),
            ]);
            subjects.insert(subject(SubjectKind::Team, name), attributes);
        }

        for (email, member) in &runtime.members {
            let mut workspaces = BTreeSet::new();
            for (workspace, grant) in &member.workspaces {
                if let Some(roles) = &grant.roles {
                    workspaces.insert(format!("{workspace}: {}", join(roles)));
                }
                for (team, roles) in &grant.through_teams {
                    workspaces.insert(format!("{workspace}: {} (team {team})", join(roles)));
                }
            }
            let own = RuleScope::Member(email.clone());
            let access = member.workspaces.iter().flat_map(|(workspace, grant)| {
                limits_items(&grant.limits, workspace, &own)
                    .into_iter()
                    .map(move |item| format!("{workspace}: {item}"))
            });
            subjects.insert(
                subject(SubjectKind::Member, email),
                vec![
                    ("roles", Value::set(member.roles.iter().map(|r| r.as_str()))),
                    ("teams", Value::Set(member.teams.clone())),
                    ("workspaces", Value::Set(workspaces)),
                    ("access", Value::set(access)),
                ],
            );
        }

        Access {
            subjects,
            exposure: Exposure::of(runtime),
            gateway_key_fingerprints: runtime
                .gateway_keys
                .iter()
                .map(|(id, key)| (id.clone(), key.fingerprint.clone()))
                .collect(),
        }
    }
}

impl Exposure {
    /// The organization's limit when the policy sets one: the platform enforces it on all
    /// spend, including workspaces the policy does not declare. Otherwise the sum of the
    /// workspaces' limits when every declared workspace has one. Otherwise unbounded.
    pub fn of(runtime: &Runtime) -> Exposure {
        let organization = runtime.organization.spend_limit;
        if let Some(amount) = organization.and_then(Budget::monthly) {
            return Exposure {
                amount: Some(amount.as_f64()),
                basis: "the organization's spend limit".into(),
            };
        }
        let org = match organization {
            Some(_) => "the organization is unlimited",
            None => "the policy sets no organization limit",
        };
        if runtime.workspaces.is_empty() {
            return Exposure {
                amount: None,
                basis: format!("unbounded: {org} and declares no workspace"),
            };
        }
        let unlimited: Vec<&str> = runtime
            .workspaces
            .iter()
            .filter(|(_, workspace)| workspace.spend_limit.and_then(Budget::monthly).is_none())
            .map(|(name, _)| name.as_str())
            .collect();
        if unlimited.is_empty() {
            let sum: Money = runtime
                .workspaces
                .values()
                .filter_map(|workspace| workspace.spend_limit.and_then(Budget::monthly))
                .sum();
            let count = runtime.workspaces.len();
            return Exposure {
                amount: Some(sum.as_f64()),
                basis: format!(
                    "the sum of {count} workspace spend limit{} ({org})",
                    if count == 1 { "" } else { "s" }
                ),
            };
        }
        let shown: Vec<String> = unlimited
            .iter()
            .take(3)
            .map(|name| format!("`{name}`"))
            .collect();
        let more = match unlimited.len() {
            n if n > 3 => format!(" and {} more", n - 3),
            _ => String::new(),
        };
        Exposure {
            amount: None,
            basis: format!(
                "unbounded: {org} and workspace {}{more} {} no limit",
                shown.join(", "),
                if unlimited.len() == 1 { "has" } else { "have" }
            ),
        }
    }
}

/// Role names, sorted as text, joined.
fn join(roles: &BTreeSet<WorkspaceRole>) -> String {
    let mut names: Vec<&str> = roles.iter().map(|role| role.as_str()).collect();
    names.sort_unstable();
    names.join(", ")
}

fn models(models: &Models) -> Value {
    match models {
        Models::Every => Value::text(EVERY_MODEL),
        Models::Only(names) => Value::Set(names.clone()),
    }
}

fn limit(value: Option<u64>, none: &str) -> Value {
    Value::text(value.map_or_else(|| none.to_owned(), |n| n.to_string()))
}

/// A caller's counted limits, each named by its rule id and worded as the rule words itself.
fn rules(limits: &Limits, workspace: &str, own: &RuleScope) -> Value {
    let rules = limits.rules(workspace, own);
    if rules.is_empty() {
        return Value::text("none");
    }
    Value::set(rules.iter().map(rule_line))
}

fn rule_line(rule: &Rule) -> String {
    format!("`{}`: {rule}", rule.id)
}

/// A caller's access in one workspace, an item per limit, so a change shows only the limit
/// that moves.
fn limits_items(limits: &Limits, workspace: &str, own: &RuleScope) -> Vec<String> {
    let models = match &limits.models {
        Models::Every => EVERY_MODEL.to_owned(),
        Models::Only(names) if names.is_empty() => "no model".to_owned(),
        Models::Only(names) => names.iter().cloned().collect::<Vec<_>>().join(", "),
    };
    let text = |value: Value| match value {
        Value::Text(text) => text,
        Value::Set(items) => items.into_iter().collect::<Vec<_>>().join(", "),
    };
    let mut items = vec![
        format!("models {models}"),
        format!(
            "max tokens per request {}",
            text(limit(limits.max_tokens_per_request, "no limit"))
        ),
    ];
    items.extend(limits.rules(workspace, own).iter().map(rule_line));
    items
}

fn rpm(value: Option<u32>) -> Value {
    Value::text(value.map_or_else(|| "unlimited".to_owned(), |n| n.to_string()))
}

fn workspace_limit(limit: Option<Budget>) -> Value {
    Value::text(match limit {
        Some(limit) => limit.to_string(),
        None => "not set".into(),
    })
}

/// How one subject's access changes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    Added,
    Changed,
    Removed,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AttributeDiff {
    pub name: &'static str,
    pub before: Option<Value>,
    pub after: Option<Value>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SubjectDiff {
    pub kind: SubjectKind,
    pub name: String,
    pub change: ChangeKind,
    pub attributes: Vec<AttributeDiff>,
}

/// What changes in effective access between two policies.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AccessDiff {
    /// The policy directory compared.
    pub policies: String,
    pub base: Side,
    pub head: Side,
    pub changes: Vec<SubjectDiff>,
    pub exposure: ExposureDiff,
}

/// One side of a comparison: a revision, or the working tree.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Side {
    /// As the user wrote it (`main`, `HEAD^1`); `None` for the working tree.
    pub revision: Option<String>,
    /// The full id of the commit the revision names.
    pub commit: Option<String>,
    /// Whether the policy directory exists on this side; a side without one grants nothing.
    pub has_policies: bool,
}

impl Side {
    pub fn working_tree(has_policies: bool) -> Side {
        Side {
            revision: None,
            commit: None,
            has_policies,
        }
    }

    /// `` `main` (3f2a1b0c9d8e) ``, or `the working tree`.
    pub fn name(&self) -> String {
        match (&self.revision, &self.commit) {
            (Some(revision), Some(commit)) => {
                format!("`{revision}` ({})", &commit[..commit.len().min(12)])
            }
            (Some(revision), None) => format!("`{revision}`"),
            (None, _) => "the working tree".into(),
        }
    }

    /// The name, and whether the policy directory is missing there.
    pub fn label(&self, policies: &str) -> String {
        let mut label = self.name();
        if !self.has_policies {
            label.push_str(&format!(", which has no `{policies}`"));
        }
        label
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ExposureDiff {
    pub before: Exposure,
    pub after: Exposure,
}

impl AccessDiff {
    pub fn between(policies: &str, base: (Side, &Access), head: (Side, &Access)) -> AccessDiff {
        let (before, after) = (base.1, head.1);
        let mut changes = Vec::new();
        let subjects: BTreeSet<&Subject> = before
            .subjects
            .keys()
            .chain(after.subjects.keys())
            .collect();
        for subject in subjects {
            let old = before.subjects.get(subject);
            let new = after.subjects.get(subject);
            let (change, attributes) = match (old, new) {
                (None, Some(new)) => (ChangeKind::Added, side_only(new, false)),
                (Some(old), None) => (ChangeKind::Removed, side_only(old, true)),
                (Some(old), Some(new)) => {
                    let mut attributes = changed(old, new);
                    if subject.kind == SubjectKind::GatewayKey
                        && before.gateway_key_fingerprints.get(&subject.name)
                            != after.gateway_key_fingerprints.get(&subject.name)
                    {
                        attributes.push(AttributeDiff {
                            name: "secret",
                            before: Some(Value::text("the key issued before")),
                            after: Some(Value::text("re-issued (a new digest)")),
                        });
                    }
                    if attributes.is_empty() {
                        continue;
                    }
                    (ChangeKind::Changed, attributes)
                }
                (None, None) => continue,
            };
            changes.push(SubjectDiff {
                kind: subject.kind,
                name: subject.name.clone(),
                change,
                attributes,
            });
        }
        AccessDiff {
            policies: policies.to_owned(),
            base: base.0,
            head: head.0,
            changes,
            exposure: ExposureDiff {
                before: before.exposure.clone(),
                after: after.exposure.clone(),
            },
        }
    }

    pub fn has_changes(&self) -> bool {
        !self.changes.is_empty() || self.exposure.before != self.exposure.after
    }

    pub fn count(&self, change: ChangeKind) -> usize {
        self.changes.iter().filter(|c| c.change == change).count()
    }
}

fn side_only(attributes: &Attributes, removed: bool) -> Vec<AttributeDiff> {
    attributes
        .iter()
        // An empty set says nothing about a subject that appears or disappears whole.
        .filter(|(_, value)| !matches!(value, Value::Set(items) if items.is_empty()))
        .map(|(name, value)| AttributeDiff {
            name,
            before: removed.then(|| value.clone()),
            after: (!removed).then(|| value.clone()),
        })
        .collect()
}

fn changed(old: &Attributes, new: &Attributes) -> Vec<AttributeDiff> {
    let mut names: Vec<&'static str> = new.iter().map(|(name, _)| *name).collect();
    for (name, _) in old {
        if !names.contains(name) {
            names.push(name);
        }
    }
    let find = |attributes: &Attributes, name: &str| {
        attributes
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, value)| value.clone())
    };
    names
        .into_iter()
        .filter_map(|name| {
            let before = find(old, name);
            let after = find(new, name);
            (before != after).then_some(AttributeDiff {
                name,
                before,
                after,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::model::DesiredOrg;
    use crate::policy::catalog::Catalog;

    fn org(yaml: serde_json::Value) -> Runtime {
        let desired: DesiredOrg = serde_json::from_value(yaml).unwrap();
        Runtime::of(&desired, Catalog::bundled())
    }

    #[test]
    fn a_key_inherits_its_workspace_models_and_meets_both_rates() {
        let desired = org(serde_json::json!({
            "workspaces": {"dev": {"rpm": 60, "models": ["a", "b"], "keys": {
                "own": {"owner": "X@acme.example", "rpm": 30, "models": ["a"], "secret": {"file": "s"}},
                "inherits": {"owner": "x@acme.example", "secret": {"file": "s"}}
            }}}
        }));
        let access = Access::of(&desired);
        let key = |name: &str| {
            &access.subjects[&Subject {
                kind: SubjectKind::Key,
                name: name.into(),
            }]
        };
        assert_eq!(key("dev/own")[0], ("owner", Value::text("x@acme.example")));
        assert_eq!(key("dev/own")[1], ("models", Value::set(["a"])));
        // Both rates count, each named by its rule: the workspace's shared one and the key's.
        assert_eq!(
            key("dev/own")[3],
            (
                "rules",
                Value::set([
                    "`key:workspace.dev.key.own:requests:minute`: 30 requests a minute for key `workspace.dev.key.own`",
                    "`workspace:dev:requests:minute`: 60 requests a minute for workspace `dev` together",
                ])
            )
        );
        assert_eq!(key("dev/inherits")[1], ("models", Value::set(["a", "b"])));
        assert_eq!(
            key("dev/inherits")[3],
            (
                "rules",
                Value::set([
                    "`workspace:dev:requests:minute`: 60 requests a minute for workspace `dev` together"
                ])
            )
        );
    }

    #[test]
    fn exposure_is_the_org_limit_else_the_sum_of_workspace_limits() {
        let limited = org(serde_json::json!({
            "organization": {"spend_limit": 2000},
            "workspaces": {"a": {"spend_limit": 50}}
        }));
        assert_eq!(Exposure::of(&limited).amount, Some(2000.0));
        let summed = org(serde_json::json!({
            "organization": {"spend_limit": "unlimited"},
            "workspaces": {"a": {"spend_limit": 50}, "b": {"spend_limit": 25.5}}
        }));
        assert_eq!(Exposure::of(&summed).amount, Some(75.5));
        let open = org(serde_json::json!({
            "workspaces": {"a": {"spend_limit": 50}, "b": {}}
        }));
        let exposure = Exposure::of(&open);
        assert_eq!(exposure.amount, None);
        assert_eq!(
            exposure.basis,
            "unbounded: the policy sets no organization limit and workspace `b` has no limit"
        );
    }

    #[test]
    fn identical_policies_have_no_changes() {
        let desired = org(serde_json::json!({"members": {"a@acme.example": {"name": "A"}}}));
        let access = Access::of(&desired);
        let diff = AccessDiff::between(
            "policies",
            (Side::working_tree(true), &access),
            (Side::working_tree(true), &access),
        );
        assert!(!diff.has_changes());
    }
}
