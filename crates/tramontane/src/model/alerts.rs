//! The policy's `alerts:` section: at which share of a counted limit (a token budget or a
//! spend guard) the gateway tells someone, and where. The destinations' URLs are secrets —
//! a webhook URL is a credential — so the policy names only where the gateway reads each
//! one (an environment variable or a file), never the URL itself.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Percentages of a limit at which an alert fires when the section gives none.
pub const DEFAULT_ALERT_THRESHOLDS: [u8; 3] = [50, 80, 95];

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Alerts {
    /// Percentages of a rule's limit, ascending; [`DEFAULT_ALERT_THRESHOLDS`] when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thresholds: Option<Vec<u8>>,
    /// Where alerts go, by a name of the operator's choosing.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub destinations: BTreeMap<String, AlertDestination>,
}

impl Alerts {
    pub fn is_default(&self) -> bool {
        *self == Alerts::default()
    }

    /// The thresholds in force, ascending and without repeats (validation refuses a list
    /// that is not, so this only guards a policy decoded without it).
    pub fn thresholds(&self) -> Vec<u8> {
        let mut thresholds = self
            .thresholds
            .clone()
            .unwrap_or_else(|| DEFAULT_ALERT_THRESHOLDS.to_vec());
        thresholds.retain(|percent| (1..=100).contains(percent));
        thresholds.sort_unstable();
        thresholds.dedup();
        thresholds
    }
}

/// One place alerts are sent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertDestination {
    pub kind: AlertKind,
    /// Where the gateway reads the URL to post to.
    pub url: SecretSource,
}

/// The shape of what is posted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertKind {
    /// A JSON document naming the rule, its window, the threshold and the use.
    Webhook,
    /// `{"text": "…"}`, which Slack's incoming webhooks (and Mattermost's, Rocket.Chat's…)
    /// accept.
    Slack,
}

impl AlertKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertKind::Webhook => "webhook",
            AlertKind::Slack => "slack",
        }
    }
}

/// Where a secret is read when the gateway loads the policy: `{ env: VAR }` or
/// `{ file: path }`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum SecretSource {
    /// An environment variable of the gateway's process.
    Env(String),
    /// A file on the gateway's machine (relative to its working directory); its content,
    /// trimmed of surrounding white space, is the secret.
    File(String),
}

impl std::fmt::Display for SecretSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SecretSource::Env(name) => write!(f, "environment variable `{name}`"),
            SecretSource::File(path) => write!(f, "file `{path}`"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_policy_shape_decodes_and_defaults_apply() {
        let alerts: Alerts = serde_json::from_value(serde_json::json!({
            "destinations": {
                "ops": {"kind": "webhook", "url": {"env": "OPS_WEBHOOK_URL"}},
                "chat": {"kind": "slack", "url": {"file": "/run/secrets/slack"}},
            }
        }))
        .unwrap();
        assert_eq!(alerts.thresholds(), vec![50, 80, 95]);
        assert_eq!(
            alerts.destinations["ops"].url,
            SecretSource::Env("OPS_WEBHOOK_URL".into())
        );
        assert_eq!(alerts.destinations["chat"].kind, AlertKind::Slack);
        // A URL written in the policy does not decode: validation says where to put it.
        assert!(
            serde_json::from_value::<AlertDestination>(serde_json::json!({
                "kind": "webhook", "url": "https://hooks.example/x"
            }))
            .is_err()
        );
        assert!(Alerts::default().is_default());
    }
}
