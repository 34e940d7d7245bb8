//! Effective access: what a policy grants each key, team, member and workspace once every
//! inheritance is resolved, and what changes between two policies. This reads no live
//! organization: it answers "what does this branch change?" from the files alone.
//!
//! Inheritance resolved here: a key without `models` may use its workspace's, and its rate is
//! the lower of its own `rpm` and its workspace's; a team's models and token limits come from
//! its runtime role; a member's workspace roles are their own plus those of their teams.

pub mod render;

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::model::{ALL_MODELS, DesiredOrg, Expiry, SpendLimit};

/// Whom or what an access record describes, in the order changes are shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SubjectKind {
    Organization,
    Workspace,
    Key,
    Team,
    Member,
}

impl SubjectKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SubjectKind::Organization => "organization",
            SubjectKind::Workspace => "workspace",
            SubjectKind::Key => "key",
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
}

/// The most the organization can spend in a month under a policy (see the README).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Exposure {
    /// `None`: nothing in the policy bounds it.
    pub amount: Option<f64>,
    /// How the amount follows from the policy, in words.
    pub basis: String,
}

const EVERY_MODEL: &str = "every model";

impl Access {
    pub fn of(desired: &DesiredOrg) -> Access {
        let mut subjects = BTreeMap::new();
        let subject = |kind, name: &str| Subject {
            kind,
            name: name.to_owned(),
        };

        subjects.insert(
            subject(SubjectKind::Organization, ""),
            vec![(
                "spend_limit",
                Value::text(match desired.organization.spend_limit {
                    Some(limit) => limit.to_string(),
                    None => "not set by the policy".into(),
                }),
            )],
        );

        // Workspace roles each member holds, directly or through a team.
        let mut member_workspaces: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        let mut member_teams: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();

        for (name, workspace) in &desired.workspaces {
            let mut members: BTreeMap<String, BTreeSet<&str>> = BTreeMap::new();
            if let Some(admin) = &workspace.admin {
                members
                    .entry(admin.to_lowercase())
                    .or_default()
                    .insert("workspace_admin");
            }
            for (email, roles) in &workspace.members {
                members
                    .entry(email.to_lowercase())
                    .or_default()
                    .extend(roles.iter().map(|role| role.as_str()));
            }
            for (email, roles) in &members {
                member_workspaces
                    .entry(email.clone())
                    .or_default()
                    .insert(format!("{name}: {}", join(roles)));
            }
            let teams = desired.teams.iter().filter_map(|(team, spec)| {
                spec.workspaces.get(name).map(|roles| {
                    let roles: BTreeSet<&str> = roles.iter().map(|role| role.as_str()).collect();
                    format!("{team}: {}", join(&roles))
                })
            });
            subjects.insert(
                subject(SubjectKind::Workspace, name),
                vec![
                    (
                        "members",
                        Value::set(
                            members
                                .iter()
                                .map(|(email, roles)| format!("{email}: {}", join(roles))),
                        ),
                    ),
                    ("teams", Value::set(teams)),
                    ("models", models(workspace.models.as_deref())),
                    ("rpm", rpm(workspace.rpm)),
                    ("spend_limit", workspace_limit(workspace.spend_limit)),
                ],
            );

            for (key_name, key) in &workspace.keys {
                let key_models = match (&key.models, &workspace.models) {
                    (Some(own), _) => models(Some(own)),
                    (None, inherited) => inherited_models(inherited.as_deref()),
                };
                let key_rpm = match (key.rpm, workspace.rpm) {
                    (Some(own), Some(limit)) if limit < own => {
                        Value::text(format!("{limit} (the workspace's)"))
                    }
                    (Some(own), _) => Value::text(own.to_string()),
                    (None, Some(limit)) => Value::text(format!("{limit} (the workspace's)")),
                    (None, None) => Value::text("unlimited"),
                };
                let expires = match key.expiry() {
                    Some(Expiry::On(date)) => date.to_string(),
                    Some(Expiry::AfterDays(days)) => format!("{days} days after creation"),
                    None => "never".into(),
                };
                subjects.insert(
                    subject(SubjectKind::Key, &format!("{name}/{key_name}")),
                    vec![
                        ("owner", Value::text(key.owner.to_lowercase())),
                        ("models", key_models),
                        ("rpm", key_rpm),
                        ("expires", Value::text(expires)),
                    ],
                );
            }
        }

        for (name, team) in &desired.teams {
            let members: BTreeSet<String> = team
                .members
                .iter()
                .map(|email| email.to_lowercase())
                .collect();
            for email in &members {
                member_teams
                    .entry(email.clone())
                    .or_default()
                    .insert(name.clone());
                for (workspace, roles) in &team.workspaces {
                    let roles: BTreeSet<&str> = roles.iter().map(|role| role.as_str()).collect();
                    member_workspaces
                        .entry(email.clone())
                        .or_default()
                        .insert(format!("{workspace}: {} (team {name})", join(&roles)));
                }
            }
            let profile = team
                .role
                .as_deref()
                .and_then(|role| desired.roles.get(role));
            let limit = |value: Option<u64>, none: &str| {
                Value::text(value.map_or_else(|| none.to_owned(), |n| n.to_string()))
            };
            let (team_models, max_tokens, budget) = match (&team.role, profile) {
                (_, Some(profile)) => (
                    models(Some(&profile.models)),
                    limit(profile.max_tokens_per_request, "no limit"),
                    limit(profile.daily_token_budget, "no cap"),
                ),
                // Without a runtime role the gateway has nothing to restrict the team by.
                _ => (
                    Value::text("not restricted (no runtime role)"),
                    Value::text("no limit"),
                    Value::text("no cap"),
                ),
            };
            let workspaces = team.workspaces.iter().map(|(workspace, roles)| {
                let roles: BTreeSet<&str> = roles.iter().map(|role| role.as_str()).collect();
                format!("{workspace}: {}", join(&roles))
            });
            let mut attributes = vec![("members", Value::Set(members))];
            if let Some(role) = team.organization_role {
                attributes.push(("organization_role", Value::text(role.as_str())));
            }
            attributes.extend([
                ("workspaces", Value::set(workspaces)),
                ("role", Value::text(team.role.as_deref().unwrap_or("none"))),
                ("models", team_models),
                ("max_tokens_per_request", max_tokens),
                ("daily_token_budget", budget),
            ]);
            subjects.insert(subject(SubjectKind::Team, name), attributes);
        }

        for (email, member) in &desired.members {
            let email = email.to_lowercase();
            let roles = member.roles.iter().map(|role| role.as_str());
            subjects.insert(
                subject(SubjectKind::Member, &email),
                vec![
                    ("roles", Value::set(roles)),
                    (
                        "teams",
                        Value::Set(member_teams.remove(&email).unwrap_or_default()),
                    ),
                    (
                        "workspaces",
                        Value::Set(member_workspaces.remove(&email).unwrap_or_default()),
                    ),
                ],
            );
        }

        Access {
            subjects,
            exposure: Exposure::of(desired),
        }
    }
}

impl Exposure {
    /// The organization's limit when the policy sets one: the platform enforces it on all
    /// spend, including workspaces the policy does not declare. Otherwise the sum of the
    /// workspaces' limits when every declared workspace has one. Otherwise unbounded.
    pub fn of(desired: &DesiredOrg) -> Exposure {
        if let Some(SpendLimit::Monthly(amount)) = desired.organization.spend_limit {
            return Exposure {
                amount: Some(amount),
                basis: "the organization's spend limit".into(),
            };
        }
        let org = match desired.organization.spend_limit {
            Some(SpendLimit::Unlimited(_)) => "the organization is unlimited",
            _ => "the policy sets no organization limit",
        };
        if desired.workspaces.is_empty() {
            return Exposure {
                amount: None,
                basis: format!("unbounded: {org} and declares no workspace"),
            };
        }
        let unlimited: Vec<&str> = desired
            .workspaces
            .iter()
            .filter(|(_, workspace)| !matches!(workspace.spend_limit, Some(SpendLimit::Monthly(_))))
            .map(|(name, _)| name.as_str())
            .collect();
        if unlimited.is_empty() {
            let sum = desired
                .workspaces
                .values()
                .filter_map(|workspace| match workspace.spend_limit {
                    Some(SpendLimit::Monthly(amount)) => Some(amount),
                    _ => None,
                })
                .sum();
            let count = desired.workspaces.len();
            return Exposure {
                amount: Some(sum),
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

fn join(roles: &BTreeSet<&str>) -> String {
    roles.iter().copied().collect::<Vec<_>>().join(", ")
}

fn models(list: Option<&[String]>) -> Value {
    match list {
        Some(list) if !list.iter().any(|model| model == ALL_MODELS) => {
            Value::set(list.iter().cloned())
        }
        _ => Value::text(EVERY_MODEL),
    }
}

fn inherited_models(list: Option<&[String]>) -> Value {
    match models(list) {
        Value::Text(text) => Value::Text(format!("{text} (the workspace's)")),
        set => set,
    }
}

fn rpm(value: Option<u32>) -> Value {
    Value::text(value.map_or_else(|| "unlimited".to_owned(), |n| n.to_string()))
}

fn workspace_limit(limit: Option<SpendLimit>) -> Value {
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
                    let attributes = changed(old, new);
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

    fn org(yaml: serde_json::Value) -> DesiredOrg {
        serde_json::from_value(yaml).unwrap()
    }

    #[test]
    fn a_key_inherits_its_workspace_models_and_the_lower_rate() {
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
        assert_eq!(key("dev/own")[2], ("rpm", Value::text("30")));
        assert_eq!(key("dev/inherits")[1], ("models", Value::set(["a", "b"])));
        assert_eq!(
            key("dev/inherits")[2],
            ("rpm", Value::text("60 (the workspace's)"))
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
