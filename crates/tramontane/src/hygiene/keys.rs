//! Findings about API keys: expiry, age, use, creator and whether the policy declares them.

use std::collections::BTreeMap;

use jiff::civil::Date;

use super::{AuditInput, Finding, ObjectKind, Rule, SourceRef};
use crate::model::{ApiKey, AuditSettings, LiveKey};

/// A live key with what the audit knows about its place in the policy.
struct Judged<'a> {
    key: &'a LiveKey,
    address: String,
    /// Set when several live keys share the address: told apart by id.
    disambiguator: Option<&'a str>,
    declared: Option<&'a ApiKey>,
    source: Option<SourceRef>,
}

/// The address of a live key: its workspace's and its own name, as the policy names them.
pub fn key_address(key: &LiveKey) -> String {
    let name = key.name.as_deref().unwrap_or("(unnamed)");
    match &key.workspace {
        Some(workspace) => format!("workspace.{workspace}.key.{name}"),
        None => format!("key.{name}"),
    }
}

pub(super) fn findings(input: &AuditInput<'_>, settings: &AuditSettings) -> Vec<Finding> {
    let live = input.live;
    let mut by_address: BTreeMap<String, Vec<&LiveKey>> = BTreeMap::new();
    for key in &live.keys {
        // A key of an archived workspace is gone with it.
        if key
            .workspace
            .as_ref()
            .is_some_and(|workspace| live.archived_workspaces.contains(workspace))
        {
            continue;
        }
        by_address.entry(key_address(key)).or_default().push(key);
    }
    let mut findings = Vec::new();
    for (address, keys) in &by_address {
        for key in keys {
            let declared = match (&key.workspace, &key.name, input.desired) {
                (Some(workspace), Some(name), Some(desired)) => desired
                    .workspaces
                    .get(workspace)
                    .and_then(|w| w.keys.get(name)),
                _ => None,
            };
            let source = match (&key.workspace, &key.name, declared) {
                (Some(workspace), Some(name), Some(_)) => input.locator.key(workspace, name),
                // A key no policy declares is declared under its workspace's entry: that is
                // the line to change.
                (Some(workspace), _, None) => input.locator.workspace(workspace),
                _ => None,
            };
            let judged = Judged {
                key,
                address: address.clone(),
                disambiguator: (keys.len() > 1).then_some(key.id.as_str()),
                declared,
                source,
            };
            judge(&judged, input, settings, &mut findings);
        }
    }
    findings
}

fn judge(
    judged: &Judged<'_>,
    input: &AuditInput<'_>,
    settings: &AuditSettings,
    findings: &mut Vec<Finding>,
) {
    let key = judged.key;
    let today = input.today;
    let address = &judged.address;
    let managed = judged.declared.is_some();
    let revoke = format!("`tramontane revoke {address}`");
    let mut push = |rule: Rule, message: String, remedy: String| {
        findings.push(finding(judged, rule, message, remedy));
    };

    match key.expires {
        Some(expires) if expires < today => push(
            Rule::KeyExpiredPresent,
            format!("expired on {expires} and is still listed"),
            if managed {
                "run apply: it replaces the key with a new one under the policy's expiry".into()
            } else {
                format!("delete it with {revoke}")
            },
        ),
        Some(expires) => {
            let window = judged
                .declared
                .and_then(|declared| declared.rotate_before_days)
                .unwrap_or_else(|| settings.rotate_before_days());
            let left = days_between(today, expires);
            if left <= i64::from(window) {
                push(
                    Rule::KeyExpiring,
                    format!(
                        "expires on {expires}, in {left} day(s) (rotation window {window} days)"
                    ),
                    if managed {
                        "run apply: it rotates the key inside its window, keeping the old one for the overlap".into()
                    } else {
                        "declare the key in the policy with `rotate_before_days` so apply rotates it, or create its successor before it expires".into()
                    },
                );
            }
        }
        None => push(
            Rule::KeyNoExpiry,
            "has no expiry: it works until someone deletes it".into(),
            if managed {
                "set `expires_after_days` (or `expires`) on the key's entry; apply replaces the key with one that expires".into()
            } else {
                format!(
                    "declare it in the policy with `expires_after_days` so apply replaces it, or delete it with {revoke}"
                )
            },
        ),
    }

    let created = key.created_on();
    if let Some(created) = created {
        let age = days_between(created, today);
        let max_age = settings.max_age_days();
        if age > i64::from(max_age) {
            push(
                Rule::KeyMaxAge,
                format!("created on {created}, {age} days ago (maximum age {max_age} days)"),
                if managed {
                    "give the key an expiry within the maximum age (`expires_after_days`) so apply replaces it".into()
                } else {
                    format!(
                        "replace it with a key the policy declares, then delete it with {revoke}"
                    )
                },
            );
        }
    }

    match (key.last_used, created) {
        (Some(last_used), _) => {
            let idle = days_between(last_used, today);
            let threshold = settings.unused_days();
            if idle >= i64::from(threshold) {
                push(
                    Rule::KeyUnused,
                    // `last_used` is a day: the key may have been used late that day.
                    format!(
                        "last used on {last_used}, at least {idle} days ago (threshold {threshold} days)"
                    ),
                    unused_remedy(managed, &revoke),
                );
            }
        }
        (None, Some(created)) => {
            let age = days_between(created, today);
            let threshold = settings.never_used_days();
            if age >= i64::from(threshold) {
                push(
                    Rule::KeyNeverUsed,
                    format!(
                        "never used since its creation on {created}, {age} days ago (threshold {threshold} days)"
                    ),
                    unused_remedy(managed, &revoke),
                );
            }
        }
        (None, None) => {}
    }

    if let Some(creator) = &key.created_by
        && !input.live.members.contains_key(&creator.to_lowercase())
    {
        push(
            Rule::KeyOrphanCreator,
            format!("created by {creator}, who is no longer a member"),
            if managed {
                "run apply after deleting the key (`tramontane revoke`): apply creates it again under the policy's owner".into()
            } else {
                format!("find who uses it now; declare it in the policy or delete it with {revoke}")
            },
        );
    }

    if input.desired.is_some() && !managed {
        push(
            Rule::KeyUnmanaged,
            "is declared by no policy".into(),
            format!(
                "declare it under its workspace's `keys` to manage it, or delete it with {revoke}"
            ),
        );
    }
}

fn unused_remedy(managed: bool, revoke: &str) -> String {
    if managed {
        "if nothing needs the key, remove its entry from the policy and delete it with `tramontane revoke`".into()
    } else {
        format!("if nothing needs the key, delete it with {revoke}")
    }
}

fn finding(judged: &Judged<'_>, rule: Rule, message: String, remedy: String) -> Finding {
    let id = match judged.disambiguator {
        Some(key_id) => format!("{}:{}@{key_id}", rule.id(), judged.address),
        None => format!("{}:{}", rule.id(), judged.address),
    };
    Finding {
        id,
        rule,
        severity: rule.severity(),
        kind: ObjectKind::ApiKey,
        address: judged.address.clone(),
        managed: judged.declared.is_some(),
        message: format!("API key {}", message_prefix(judged)) + &message,
        remedy,
        source: judged.source.clone(),
    }
}

/// `ci-deploy ` and, when several keys share the name, which one.
fn message_prefix(judged: &Judged<'_>) -> String {
    let name = judged.key.name.as_deref().unwrap_or("(unnamed)");
    match (judged.disambiguator, judged.key.created_on()) {
        (Some(_), Some(created)) => format!("`{name}` (the one created {created}) "),
        (Some(id), None) => format!("`{name}` (id {id}) "),
        (None, _) => format!("`{name}` "),
    }
}

/// Whole days from `from` to `to`; negative when `to` is earlier.
fn days_between(from: Date, to: Date) -> i64 {
    from.until(to)
        .map(|span| i64::from(span.get_days()))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_count_whole_calendar_days() {
        let a: Date = "2026-01-30".parse().unwrap();
        let b: Date = "2026-03-01".parse().unwrap();
        assert_eq!(days_between(a, b), 30);
        assert_eq!(days_between(b, a), -30);
    }
}
