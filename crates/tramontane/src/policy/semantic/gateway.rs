//! The gateway's rules: who may hold a gateway key where, which key the gateway forwards
//! with, and that every spend guard is an amount it can count exactly.

use std::collections::HashMap;

use jiff::ToSpan;

use super::super::diagnostic::{Code, Diagnostic, closest};
use super::super::source::{SourceSet, Span};
use super::super::{Section, yaml};
use super::{Checker, did_you_mean};
use crate::model::money::MoneyError;
use crate::model::{GatewayKey, GatewayKeyId, Holder, KeyDigest, Money, SpendGuard};

/// Days before a gateway key's expiry that validation starts warning.
const EXPIRY_WARNING_DAYS: i64 = 14;

impl Checker<'_> {
    pub(super) fn gateway_keys(&mut self) {
        let mut digests: HashMap<KeyDigest, &GatewayKeyId> = HashMap::new();
        for (id, entry) in &self.desired.gateway_keys {
            let subject = format!("gateway key `{id}`");
            self.gateway_key_workspace(id, entry, &subject);
            self.holder(id, entry, &subject);
            self.gateway_key_expiry(id, entry, &subject);
            match digests.get(&entry.digest) {
                Some(first) => {
                    let mut diagnostic = Diagnostic::new(
                        Code::DuplicateDigest,
                        format!("{subject} has the same digest as gateway key `{first}`"),
                    )
                    .label("a copy of another entry's digest")
                    .help("a digest covers the key's public id, so this entry can never match a key: remove it, and issue a new key with `tramontane gateway issue`");
                    if let Some(span) = self.gateway_key_span(first, &["digest"]) {
                        diagnostic = diagnostic.note(span, "first used here");
                    }
                    self.push(self.gateway_key_span(id, &["digest"]), diagnostic);
                }
                None => {
                    digests.insert(entry.digest, id);
                }
            }
        }
    }

    fn gateway_key_span(&self, id: &GatewayKeyId, path: &[&str]) -> Option<Span> {
        self.origins.span(Section::GatewayKeys, id.as_str(), path)
    }

    fn gateway_key_workspace(&mut self, id: &GatewayKeyId, entry: &GatewayKey, subject: &str) {
        if self.origins.is_known(Section::Workspaces, &entry.workspace) {
            return;
        }
        let help = did_you_mean(
            &entry.workspace,
            self.desired.workspaces.keys().map(String::as_str),
            || {
                format!(
                    "define `{}` under `workspaces`, or issue the key for an existing workspace",
                    entry.workspace
                )
            },
        );
        self.push(
            self.gateway_key_span(id, &["workspace"]),
            Diagnostic::new(
                Code::UnknownWorkspace,
                format!(
                    "{subject} is for workspace `{}`, which is not defined",
                    entry.workspace
                ),
            )
            .label("no such workspace")
            .help(help),
        );
    }

    fn holder(&mut self, id: &GatewayKeyId, entry: &GatewayKey, subject: &str) {
        let span = self.gateway_key_span(id, &["holder"]);
        match &entry.holder {
            Holder::Member(email) => {
                if !self.origins.is_known(Section::Members, email) {
                    self.member_reference(email, span, &format!("holder of {subject}"));
                    return;
                }
                let Some(workspace) = self.desired.workspaces.get(&entry.workspace) else {
                    return;
                };
                if !self.member_may_use(email, &entry.workspace) {
                    let teams: Vec<&str> = self
                        .desired
                        .teams
                        .iter()
                        .filter(|(_, team)| team.workspaces.contains_key(&entry.workspace))
                        .map(|(name, _)| name.as_str())
                        .collect();
                    let help = if teams.is_empty() {
                        format!(
                            "assign a team with `{email}` to workspace `{}`, or list the member under its `members`",
                            entry.workspace
                        )
                    } else {
                        format!(
                            "add `{email}` to a team assigned to workspace `{}` ({}), or issue the key for a workspace the member belongs to",
                            entry.workspace,
                            teams.join(", ")
                        )
                    };
                    self.push(
                        span,
                        Diagnostic::new(
                            Code::HolderOutsideWorkspace,
                            format!(
                                "`{email}` holds {subject} for workspace `{}` but does not belong to that workspace",
                                entry.workspace
                            ),
                        )
                        .label("not in the workspace")
                        .help(help),
                    );
                    return;
                }
                let upstream = workspace
                    .gateway
                    .as_ref()
                    .and_then(|gateway| gateway.upstream_key.as_ref());
                if upstream.is_none() {
                    let mut diagnostic = Diagnostic::new(
                        Code::NoUpstreamKey,
                        format!(
                            "`{email}` holds {subject}, but workspace `{}` names no `gateway.upstream_key` to forward members' requests with",
                            entry.workspace
                        ),
                    )
                    .label("no key to forward with")
                    .help(upstream_key_help(&entry.workspace, workspace));
                    if let Some(at) =
                        self.origins
                            .key_span(Section::Workspaces, &entry.workspace, &[])
                    {
                        diagnostic = diagnostic.note(at, "the workspace");
                    }
                    self.push(span, diagnostic);
                }
            }
            Holder::ServiceKey { workspace, key } => {
                if !self.origins.is_known(Section::Workspaces, workspace) {
                    let help = match closest(
                        workspace,
                        self.desired.workspaces.keys().map(String::as_str),
                    ) {
                        Some(suggestion) => {
                            format!("did you mean `workspace.{suggestion}.key.{key}`?")
                        }
                        None => "write `workspace.<workspace>.key.<key>` with a defined workspace and one of its keys".into(),
                    };
                    self.push(
                        span,
                        Diagnostic::new(
                            Code::UnknownKey,
                            format!(
                                "{subject} is held by `{}`, but workspace `{workspace}` is not defined",
                                entry.holder
                            ),
                        )
                        .label("no such workspace")
                        .help(help),
                    );
                    return;
                }
                let Some(defined) = self.desired.workspaces.get(workspace) else {
                    // The workspace failed the schema: that is already reported.
                    return;
                };
                if !defined.keys.contains_key(key) {
                    let help = match closest(key, defined.keys.keys().map(String::as_str)) {
                        Some(suggestion) => {
                            format!("did you mean `workspace.{workspace}.key.{suggestion}`?")
                        }
                        None => format!(
                            "define key `{key}` under workspace `{workspace}`'s `keys`: the gateway forwards this holder's requests with its secret"
                        ),
                    };
                    self.push(
                        span,
                        Diagnostic::new(
                            Code::UnknownKey,
                            format!(
                                "{subject} is held by `{}`, but workspace `{workspace}` has no key `{key}`",
                                entry.holder
                            ),
                        )
                        .label("no such key")
                        .help(help),
                    );
                    return;
                }
                if *workspace != entry.workspace {
                    self.push(
                        span,
                        Diagnostic::new(
                            Code::HolderOutsideWorkspace,
                            format!(
                                "{subject} is for workspace `{}` but is held by a key of workspace `{workspace}`",
                                entry.workspace
                            ),
                        )
                        .label(format!("a key of `{workspace}`"))
                        .help(format!(
                            "a service calls in the workspace of its own key: set `workspace: {workspace}`, or hold the key with a key of `{}`",
                            entry.workspace
                        )),
                    );
                }
            }
        }
    }

    /// Whether a member belongs to a workspace: its admin, listed under its members, or in a
    /// team assigned to it.
    fn member_may_use(&self, email: &str, workspace_name: &str) -> bool {
        let same = |other: &String| other.eq_ignore_ascii_case(email);
        let Some(workspace) = self.desired.workspaces.get(workspace_name) else {
            return false;
        };
        workspace.admin.as_ref().is_some_and(same)
            || workspace.members.keys().any(same)
            || self.desired.teams.values().any(|team| {
                team.workspaces.contains_key(workspace_name) && team.members.iter().any(same)
            })
    }

    fn gateway_key_expiry(&mut self, id: &GatewayKeyId, entry: &GatewayKey, subject: &str) {
        let today = self.options.today;
        let span = self.gateway_key_span(id, &["expires"]);
        let expires = entry.expires;
        if !entry.is_valid_on(today) {
            self.push(
                span,
                Diagnostic::new(
                    Code::GatewayKeyExpired,
                    format!("{subject} expired on {expires}"),
                )
                .label("already passed")
                .help(format!(
                    "remove the entry, or issue a new key: `tramontane gateway issue {}`",
                    match &entry.holder {
                        Holder::Member(email) =>
                            format!("--member {email} --workspace {}", entry.workspace),
                        Holder::ServiceKey { .. } => format!("--key {}", entry.holder),
                    },
                )),
            );
            return;
        }
        let warn_from = expires
            .checked_sub(EXPIRY_WARNING_DAYS.days())
            .unwrap_or(expires);
        if today >= warn_from {
            let days = (expires - today).get_days();
            self.push(
                span,
                Diagnostic::new(
                    Code::GatewayKeyExpiresSoon,
                    format!(
                        "{subject} stops working on {expires}, in {days} day{}",
                        if days == 1 { "" } else { "s" }
                    ),
                )
                .label("expires soon")
                .help(format!(
                    "issue `{}` a new key with `tramontane gateway issue`, then revoke this one with `tramontane gateway revoke {id}`",
                    entry.holder
                )),
            );
        }
    }

    /// `gateway.upstream_key` names a key of the same workspace.
    pub(super) fn workspace_gateway(&mut self, name: &str) {
        let Some(workspace) = self.desired.workspaces.get(name) else {
            return;
        };
        let Some(upstream) = workspace
            .gateway
            .as_ref()
            .and_then(|gateway| gateway.upstream_key.as_ref())
        else {
            return;
        };
        if workspace.keys.contains_key(upstream) {
            return;
        }
        let help = match closest(upstream, workspace.keys.keys().map(String::as_str)) {
            Some(suggestion) => format!("did you mean `{suggestion}`?"),
            None => format!(
                "define key `{upstream}` under workspace `{name}`'s `keys` (the gateway forwards members' requests with its secret), or name one that is"
            ),
        };
        self.push(
            self.origins
                .span(Section::Workspaces, name, &["gateway", "upstream_key"]),
            Diagnostic::new(
                Code::UnknownKey,
                format!(
                    "workspace `{name}` forwards through upstream key `{upstream}`, which is not one of its keys"
                ),
            )
            .label("no such key in this workspace")
            .help(help),
        );
    }

    /// Every spend guard in the policy: each amount exact to a millionth as written.
    pub(super) fn spend_guards(&mut self, sources: &SourceSet) {
        let mut guards: Vec<(Section, String, Vec<String>, String, SpendGuard)> = Vec::new();
        for (name, team) in &self.desired.teams {
            if let Some(guard) = team.spend_guard {
                guards.push((
                    Section::Teams,
                    name.clone(),
                    Vec::new(),
                    format!("team `{name}`"),
                    guard,
                ));
            }
        }
        for (name, workspace) in &self.desired.workspaces {
            if let Some(guard) = workspace.spend_guard {
                guards.push((
                    Section::Workspaces,
                    name.clone(),
                    Vec::new(),
                    format!("workspace `{name}`"),
                    guard,
                ));
            }
            for (key_name, key) in &workspace.keys {
                if let Some(guard) = key.spend_guard {
                    guards.push((
                        Section::Workspaces,
                        name.clone(),
                        vec!["keys".into(), key_name.clone()],
                        format!("key `{key_name}` of workspace `{name}`"),
                        guard,
                    ));
                }
            }
        }
        for (name, workload) in &self.desired.workloads {
            if let Some(guard) = workload.spend_guard {
                guards.push((
                    Section::Workloads,
                    name.clone(),
                    Vec::new(),
                    format!("workload `{name}`"),
                    guard,
                ));
            }
        }
        for (section, name, prefix, owner, guard) in guards {
            for (window, decoded) in guard.windows() {
                let mut path: Vec<&str> = prefix.iter().map(String::as_str).collect();
                path.extend(["spend_guard", window]);
                let Some(node) = self.origins.node(section, &name, &path) else {
                    continue;
                };
                if let Some(problem) = inexact_amount(node, decoded, sources) {
                    self.push(
                        Some(node.span),
                        Diagnostic::new(
                            Code::AmountTooPrecise,
                            format!("the {window} spend guard of {owner} is {problem}"),
                        )
                        .label("more than 6 decimals")
                        .help("amounts are counted exactly in millionths: round it to at most 6 decimals, such as `0.000125`"),
                    );
                }
            }
        }
    }
}

/// What to write so a workspace without a `gateway.upstream_key` gets one.
pub(super) fn upstream_key_help(name: &str, workspace: &crate::model::Workspace) -> String {
    match workspace.keys.keys().next() {
        Some(key) => format!(
            "add `gateway: {{ upstream_key: {key} }}` to workspace `{name}` (or name another of its keys)"
        ),
        None => format!(
            "define a key under workspace `{name}`'s `keys` and name it in `gateway: {{ upstream_key: … }}`"
        ),
    }
}

/// Why an amount as written in the file is not the [`Money`] it decoded to, if it is not.
///
/// The YAML number reached the model through an f64, which cannot tell `0.1234567` from a
/// rounding of it, so the check reads the number's own text from the file.
pub(super) fn inexact_amount(
    node: &yaml::Node,
    decoded: Money,
    sources: &SourceSet,
) -> Option<String> {
    let yaml::Value::Float(value) = node.value else {
        // An integer is a whole amount, exact by construction.
        return None;
    };
    let file = sources.get(node.span.file);
    let start = file.byte_offset(node.span.start);
    let end = file.byte_offset(node.span.end);
    let written = file.text.get(start..end).unwrap_or("").trim();
    match Money::parse(written) {
        Ok(exact) if exact == decoded => None,
        Ok(exact) => Some(format!(
            "`{written}`, which would be counted as {decoded} instead of {exact}"
        )),
        Err(MoneyError::TooPrecise { decimals, .. }) => {
            Some(format!("`{written}`, which has {decimals} decimals"))
        }
        // Another spelling of a number, such as `1.5e-7`: judged by its value.
        Err(_) => match Money::parse(&format!("{value}")) {
            Err(MoneyError::TooPrecise { decimals, .. }) => Some(format!(
                "`{written}`, which has {decimals} decimals ({value})"
            )),
            _ => None,
        },
    }
}
