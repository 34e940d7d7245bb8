//! A counted limit, one type from the policy to the gateway's store: a [`Rule`] says whose use
//! it counts (its scope), what it counts (requests, tokens, spend), over which calendar window
//! (UTC), and how much. The runtime emits them per caller; the gateway counts them under
//! [`Rule::store_key`] and refuses by [`Rule::id`]; the plan, `diff`, refusals, audit lines,
//! metrics, `usage` and alerts name a rule by that id and word it by its [`Display`], so
//! nothing words a limit twice.
//!
//! [`Display`]: std::fmt::Display

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::model::{Holder, Money};

/// Whose use a rule counts.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", content = "name", rename_all = "snake_case")]
pub enum RuleScope {
    /// One service key, by address (`workspace.W.key.K`).
    Key(String),
    /// One member, by email, across every gateway key they hold.
    Member(String),
    /// A team: its members together for spend; each member for requests and tokens (a team's
    /// runtime role gives every member the same allowance).
    Team(String),
    /// Every caller of the workspace together.
    Workspace(String),
    /// One workload (the policy's `workloads:`), by name, across every token it presents.
    Workload(String),
}

impl RuleScope {
    /// Whose own rate and token budget a gateway key's rules count: its holder's.
    pub fn holder(holder: &Holder) -> RuleScope {
        match holder {
            Holder::Member(email) => RuleScope::Member(email.to_lowercase()),
            Holder::ServiceKey { workspace, key } => {
                RuleScope::Key(super::key_address(workspace, key))
            }
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            RuleScope::Key(_) => "key",
            RuleScope::Member(_) => "member",
            RuleScope::Team(_) => "team",
            RuleScope::Workspace(_) => "workspace",
            RuleScope::Workload(_) => "workload",
        }
    }

    pub fn name(&self) -> &str {
        match self {
            RuleScope::Key(name)
            | RuleScope::Member(name)
            | RuleScope::Team(name)
            | RuleScope::Workspace(name)
            | RuleScope::Workload(name) => name,
        }
    }
}

/// What a rule counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Measure {
    Requests,
    Tokens,
    /// Micro-units of the billing currency.
    Spend,
}

impl Measure {
    pub fn as_str(self) -> &'static str {
        match self {
            Measure::Requests => "requests",
            Measure::Tokens => "tokens",
            Measure::Spend => "spend",
        }
    }
}

/// The calendar window (UTC) a rule counts over.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Window {
    Minute,
    Hour,
    Day,
    Month,
}

impl Window {
    pub fn as_str(self) -> &'static str {
        match self {
            Window::Minute => "minute",
            Window::Hour => "hour",
            Window::Day => "day",
            Window::Month => "month",
        }
    }
}

/// One counted limit.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Rule {
    /// `<scope kind>:<scope name>:<measure>:<window>`, such as
    /// `member:bob@acme.example:tokens:day`: stable while the policy line it comes from is.
    pub id: String,
    pub scope: RuleScope,
    pub measure: Measure,
    pub window: Window,
    /// Requests, tokens, or micro-units of the billing currency.
    pub limit: u64,
}

impl Rule {
    pub fn new(scope: RuleScope, measure: Measure, window: Window, limit: u64) -> Rule {
        let id = format!(
            "{}:{}:{}:{}",
            scope.kind(),
            scope.name(),
            measure.as_str(),
            window.as_str()
        );
        Rule {
            id,
            scope,
            measure,
            window,
            limit,
        }
    }

    /// The store's counter for this rule in the window named `window` (such as
    /// `2026-11-26`): the one key every replica counts the rule under.
    pub fn store_key(&self, window: &str) -> String {
        format!("rule:{}:{window}", self.id)
    }

    /// An amount of what the rule counts, in words: `60 requests`, `500000 tokens`, `20.5`.
    pub fn amount(&self, amount: u64) -> String {
        match self.measure {
            Measure::Requests => format!("{amount} requests"),
            Measure::Tokens => format!("{amount} tokens"),
            Measure::Spend => Money::from_micros(amount).to_string(),
        }
    }

    /// Whose use it counts, in words.
    pub fn whose(&self) -> String {
        let name = self.scope.name();
        match (&self.scope, self.measure) {
            (RuleScope::Key(_), _) => format!("key `{name}`"),
            (RuleScope::Member(_), _) => format!("member `{name}`"),
            (RuleScope::Team(_), Measure::Spend) => format!("team `{name}` together"),
            (RuleScope::Team(_), _) => format!("each member of team `{name}`"),
            (RuleScope::Workspace(_), _) => format!("workspace `{name}` together"),
            (RuleScope::Workload(_), _) => format!("workload `{name}`"),
        }
    }
}

/// The one wording of a rule: `500000 tokens a day for member `bob@acme.example``.
impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let limit = self.amount(self.limit);
        let what = match self.measure {
            Measure::Spend => format!("spend of {limit}"),
            _ => limit,
        };
        write!(f, "{what} a {} for {}", self.window.as_str(), self.whose())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rule_has_one_id_one_store_key_and_one_wording() {
        let rule = Rule::new(
            RuleScope::Member("bob@acme.example".into()),
            Measure::Tokens,
            Window::Day,
            500_000,
        );
        assert_eq!(rule.id, "member:bob@acme.example:tokens:day");
        assert_eq!(
            rule.store_key("2026-11-26"),
            "rule:member:bob@acme.example:tokens:day:2026-11-26"
        );
        assert_eq!(
            rule.to_string(),
            "500000 tokens a day for member `bob@acme.example`"
        );
        let guard = Rule::new(
            RuleScope::Team("developers".into()),
            Measure::Spend,
            Window::Month,
            250_500_000,
        );
        assert_eq!(
            guard.to_string(),
            "spend of 250.5 a month for team `developers` together"
        );
        let rate = Rule::new(
            RuleScope::Workspace("dev".into()),
            Measure::Requests,
            Window::Minute,
            60,
        );
        assert_eq!(
            rate.to_string(),
            "60 requests a minute for workspace `dev` together"
        );
        let json = serde_json::to_value(&rate).unwrap();
        assert_eq!(json["scope"]["kind"], "workspace");
        assert_eq!(json["measure"], "requests");
        assert_eq!(json["window"], "minute");
    }
}
