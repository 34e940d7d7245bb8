//! Console changes: audit-log events that changed an object the policy manages, made by
//! someone or something other than tramontane. Each is drift a person chose to make, and
//! the finding says who, when, what, where, and the policy line it departs from.
//!
//! # Attribution
//! tramontane acts only through an admin API key, so an event whose actor is a person
//! (`HUMAN`) or `OTHER` is never its own. An `API_KEY` event is tramontane's when
//! - the policy's `audit.apply_admin_key` equals one of the actor's metadata values (the
//!   key's name or id, as the log shows it), or
//! - the apply audit log records a change at the same address (or one inside it) within
//!   [`ATTRIBUTION_WINDOW_MINUTES`] of the event.
//!
//! Any other admin key is another tool, and its changes are reported like a person's.

use std::collections::BTreeMap;

use super::applied::AppliedChange;
use super::{AuditInput, Finding, ObjectKind, Rule, Severity, SourceRef};
use crate::model::AuditSettings;
use crate::model::activity::{ActorKind, OrgEvent};

/// How far apart an apply's record and the audit-log event it explains may be: the two
/// clocks differ, and a slow apply records a change after the server made it.
pub const ATTRIBUTION_WINDOW_MINUTES: i64 = 10;

/// The event types that change what a policy manages; logins, chats and the rest are not
/// drift. A person creating their account or accepting an invitation (`user.create`,
/// `user.organization.join`, `organization.invite.accepted`) completes what apply began,
/// so those are left out too.
const CHANGES: [&str; 24] = [
    "user.delete",
    "user.organization.leave",
    "user.organization.role.update",
    "organization.invite.send",
    "organization.invite.revoked",
    "workspace.create",
    "workspace.update",
    "workspace.delete",
    "workspace.member.add",
    "workspace.member.remove",
    "workspace.member.role.update",
    "user_group.create",
    "user_group.update",
    "user_group.delete",
    "user_group.member.add",
    "user_group.member.remove",
    "user_group.workspace.provision",
    "user_group.workspace.deprovision",
    "user_group.workspace.update",
    "api_key.create",
    "api_key.rotate",
    "api_key.delete",
    "billing.monthly_limit.updated",
    "billing.workspace_monthly_limit.updated",
];

/// A managed object an event touched.
struct Touched {
    address: String,
    kind: ObjectKind,
    source: Option<SourceRef>,
}

pub(super) fn findings(
    input: &AuditInput<'_>,
    settings: &AuditSettings,
    applied: &[AppliedChange],
) -> Vec<Finding> {
    let (Some(activity), Some(_)) = (input.activity, input.desired) else {
        return Vec::new();
    };
    let mut findings = Vec::new();
    for event in &activity.events {
        if !CHANGES.contains(&event.event_type.as_str()) {
            continue;
        }
        let Some(touched) = touched(input, event) else {
            continue;
        };
        if by_tramontane(event, &touched.address, settings, applied) {
            continue;
        }
        let rule = Rule::ConsoleChange;
        // The console is the only way to set a workspace's limit: the change is expected,
        // only the policy's record of it is behind.
        let severity = if event.event_type == "billing.workspace_monthly_limit.updated" {
            Severity::Low
        } else {
            rule.severity()
        };
        let details = described(&event.details);
        findings.push(Finding {
            id: format!("{}:{}@{}", rule.id(), touched.address, event.id),
            rule,
            severity,
            kind: touched.kind,
            address: touched.address.clone(),
            managed: true,
            message: format!(
                "{} made `{}` at {} outside tramontane{}",
                actor(event),
                event.event_type,
                crate::model::timestamp(event.time),
                if details.is_empty() {
                    String::new()
                } else {
                    format!(" ({details})")
                }
            ),
            remedy: "bring the policy in line with the change, or run plan and apply to undo it; plan shows the drift it left".into(),
            source: touched.source,
        });
    }
    findings
}

/// The policy-managed object `event` changed, when it names one.
fn touched(input: &AuditInput<'_>, event: &OrgEvent) -> Option<Touched> {
    let desired = input.desired?;
    let live = input.live;
    let values: Vec<&str> = event.target.values().map(String::as_str).collect();
    let names = |candidate: &str| values.contains(&candidate);
    let workspace_named = || {
        live.workspaces
            .values()
            .find(|workspace| {
                names(&workspace.id) || event.workspace_id.as_deref() == Some(workspace.id.as_str())
            })
            .map(|workspace| workspace.name.clone())
            .or_else(|| desired.workspaces.keys().find(|name| names(name)).cloned())
    };
    match event.target_type.as_str() {
        "USER" => {
            let email = values
                .iter()
                .find(|value| value.contains('@'))
                .map(|value| value.to_lowercase())
                .or_else(|| {
                    live.members
                        .values()
                        .find(|member| names(&member.id))
                        .map(|member| member.email.to_lowercase())
                })?;
            let declared = desired
                .members
                .keys()
                .find(|known| known.eq_ignore_ascii_case(&email))?;
            Some(Touched {
                address: format!("member.{declared}"),
                kind: ObjectKind::Member,
                source: input.locator.member(declared),
            })
        }
        "WORKSPACE" | "WORKSPACE_MONTHLY_LIMIT" => {
            let name = workspace_named()?;
            desired.workspaces.contains_key(&name).then(|| Touched {
                source: input.locator.workspace(&name),
                address: format!("workspace.{name}"),
                kind: ObjectKind::Workspace,
            })
        }
        "USER_GROUP" => {
            let name = live
                .teams
                .values()
                .find(|team| names(&team.id))
                .map(|team| team.name.clone())
                .or_else(|| desired.teams.keys().find(|name| names(name)).cloned())?;
            desired.teams.contains_key(&name).then(|| Touched {
                source: input.locator.team(&name),
                address: format!("team.{name}"),
                kind: ObjectKind::Team,
            })
        }
        "API_KEY" => {
            let (workspace, name) = match live.keys.iter().find(|key| names(&key.id)) {
                Some(key) => (key.workspace.clone()?, key.name.clone()?),
                // A deleted key is no longer live: its name and workspace must say.
                None => {
                    let workspace = workspace_named()?;
                    let name = desired
                        .workspaces
                        .get(&workspace)?
                        .keys
                        .keys()
                        .find(|name| names(name))?
                        .clone();
                    (workspace, name)
                }
            };
            desired
                .workspaces
                .get(&workspace)?
                .keys
                .contains_key(&name)
                .then(|| Touched {
                    source: input.locator.key(&workspace, &name),
                    address: format!("workspace.{workspace}.key.{name}"),
                    kind: ObjectKind::ApiKey,
                })
        }
        "MONTHLY_LIMIT" => desired.organization.spend_limit.is_some().then(|| Touched {
            address: "organization".into(),
            kind: ObjectKind::Organization,
            source: input.locator.organization_spend_limit(),
        }),
        _ => None,
    }
}

/// Whether tramontane made the change, by the module's attribution rule.
fn by_tramontane(
    event: &OrgEvent,
    address: &str,
    settings: &AuditSettings,
    applied: &[AppliedChange],
) -> bool {
    if event.actor_kind != ActorKind::ApiKey {
        return false;
    }
    if let Some(key) = &settings.apply_admin_key
        && event.actor.values().any(|value| value == key)
    {
        return true;
    }
    let window = jiff::SignedDuration::from_mins(ATTRIBUTION_WINDOW_MINUTES);
    applied.iter().any(|change| {
        let inside = change.address == address
            || change
                .address
                .strip_prefix(address)
                .is_some_and(|rest| rest.starts_with('.'));
        inside && change.time.duration_since(event.time).abs() <= window
    })
}

/// Who acted, in words: a name or email the log gives, never a value that may be a secret.
fn actor(event: &OrgEvent) -> String {
    let named = [
        "email",
        "user_email",
        "name",
        "user_name",
        "api_key_name",
        "key_name",
    ]
    .iter()
    .find_map(|field| event.actor.get(*field).filter(|value| fit(value)));
    match (event.actor_kind, named) {
        (ActorKind::Human, Some(name)) => format!("`{name}`"),
        (ActorKind::Human, None) => "a person the log does not name".into(),
        (ActorKind::ApiKey, Some(name)) => format!("API key `{name}`"),
        (ActorKind::ApiKey, None) => "an API key the log does not name".into(),
        (ActorKind::Other, Some(name)) => format!("`{name}` (neither a person nor a key)"),
        (ActorKind::Other, None) => "an actor the log does not name".into(),
    }
}

/// The event's details as `field=value`, those fit to show, at most five.
fn described(details: &BTreeMap<String, String>) -> String {
    details
        .iter()
        .filter(|(field, value)| !field.to_lowercase().contains("secret") && fit(value))
        .take(5)
        .map(|(field, value)| format!("{}={value}", shown(field)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Whether a value from the log may be shown: short, printable, and not shaped like a
/// key (a long run of letters and digits).
fn fit(value: &str) -> bool {
    let key_shaped = value.len() >= 24 && value.chars().all(|c| c.is_ascii_alphanumeric());
    !value.is_empty() && value.len() <= 120 && !value.chars().any(char::is_control) && !key_shaped
}

fn shown(text: &str) -> String {
    text.chars().filter(|c| !c.is_control()).take(60).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(kind: ActorKind, actor: &[(&str, &str)]) -> OrgEvent {
        OrgEvent {
            id: 7,
            time: "2026-06-01T10:00:00Z".parse().unwrap(),
            actor_kind: kind,
            actor: actor
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            event_type: "workspace.update".into(),
            details: BTreeMap::new(),
            target_type: "WORKSPACE".into(),
            target: BTreeMap::new(),
            workspace_id: None,
        }
    }

    fn applied(at: &str, address: &str) -> AppliedChange {
        AppliedChange {
            time: at.parse().unwrap(),
            address: address.into(),
        }
    }

    #[test]
    fn every_change_is_an_event_type_the_spec_lists() {
        for change in CHANGES {
            assert!(
                crate::provider::mistral::api::AUDIT_LOG_EVENT_TYPES.contains(&change),
                "{change}"
            );
        }
    }

    #[test]
    fn a_person_is_never_tramontane() {
        let settings = AuditSettings {
            apply_admin_key: Some("ada@x.example".into()),
            ..AuditSettings::default()
        };
        let person = event(ActorKind::Human, &[("email", "ada@x.example")]);
        let log = [applied("2026-06-01T10:00:00Z", "workspace.dev")];
        assert!(!by_tramontane(&person, "workspace.dev", &settings, &log));
    }

    #[test]
    fn a_key_is_tramontane_by_name_or_by_a_matching_apply() {
        let named = AuditSettings {
            apply_admin_key: Some("tramontane-ci".into()),
            ..AuditSettings::default()
        };
        let key = event(ActorKind::ApiKey, &[("name", "tramontane-ci")]);
        assert!(by_tramontane(&key, "workspace.dev", &named, &[]));
        let other = event(ActorKind::ApiKey, &[("name", "terraform")]);
        assert!(!by_tramontane(&other, "workspace.dev", &named, &[]));
        let default = AuditSettings::default();
        let near = [applied(
            "2026-06-01T10:09:00Z",
            "workspace.dev.members.bob@x.example",
        )];
        assert!(by_tramontane(&other, "workspace.dev", &default, &near));
        let far = [applied("2026-06-01T10:11:00Z", "workspace.dev")];
        assert!(!by_tramontane(&other, "workspace.dev", &default, &far));
        let elsewhere = [applied("2026-06-01T10:00:00Z", "workspace.devops")];
        assert!(!by_tramontane(
            &other,
            "workspace.dev",
            &default,
            &elsewhere
        ));
    }

    #[test]
    fn key_shaped_values_are_never_shown() {
        let leaky = event(
            ActorKind::ApiKey,
            &[("name", "AbCdEfGhIjKlMnOpQrStUvWxYz012345")],
        );
        assert_eq!(actor(&leaky), "an API key the log does not name");
    }
}
