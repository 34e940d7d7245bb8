//! Workload identity's rules: every issuer names one source of keys it can read safely, and
//! every workload names a defined issuer and workspace, could match some token, and shares no
//! token with another workload.

use super::super::Section;
use super::super::diagnostic::{Code, Diagnostic};
use super::super::source::Span;
use super::gateway::upstream_key_help;
use super::{Checker, did_you_mean};
use crate::model::workload::{REGISTERED_CLAIMS, untrusted_key_url};
use crate::model::{Issuer, Workload};

impl Checker<'_> {
    pub(super) fn issuers(&mut self) {
        let mut seen: Vec<(&str, &str)> = Vec::new();
        for (name, issuer) in &self.desired.issuers {
            self.issuer_keys(name, issuer);
            match seen.iter().find(|(_, iss)| *iss == issuer.issuer) {
                Some((first, _)) => self.same_iss(name, first, &issuer.issuer),
                None => seen.push((name, &issuer.issuer)),
            }
        }
    }

    fn same_iss(&mut self, name: &str, first: &str, iss: &str) {
        let mut diagnostic = Diagnostic::new(
            Code::DuplicateIssuer,
            format!("issuers `{first}` and `{name}` both have the `iss` `{iss}`"),
        )
        .label(format!("the same `iss` as issuer `{first}`"))
        .help(format!(
            "keep one entry for `{iss}` and list every audience it accepts under its `audiences`"
        ));
        if let Some(span) = self.origins.span(Section::Issuers, first, &["issuer"]) {
            diagnostic = diagnostic.note(span, format!("issuer `{first}`"));
        }
        self.push(
            self.origins.span(Section::Issuers, name, &["issuer"]),
            diagnostic,
        );
    }

    fn issuer_keys(&mut self, name: &str, issuer: &Issuer) {
        let subject = format!("issuer `{name}`");
        let span = |path: &[&str]| self.origins.span(Section::Issuers, name, path);
        let sources: Vec<&str> = [
            issuer.jwks_url.as_ref().map(|_| "jwks_url"),
            issuer.discovery.then_some("discovery"),
            issuer.jwks_file.as_ref().map(|_| "jwks_file"),
        ]
        .into_iter()
        .flatten()
        .collect();
        if sources.len() != 1 {
            let (message, at) = match sources.as_slice() {
                [] => (
                    format!("{subject} names no source of signing keys"),
                    span(&[]),
                ),
                [_, second, ..] => (
                    format!(
                        "{subject} names its signing keys twice ({})",
                        sources.join(", ")
                    ),
                    span(&[second]),
                ),
                [_] => unreachable!("one source is the valid case"),
            };
            self.push(
                at,
                Diagnostic::new(Code::IssuerKeySource, message)
                    .label("one of `jwks_url`, `discovery` or `jwks_file`")
                    .help("name exactly one: `discovery: true` for an issuer that publishes its configuration, `jwks_url:` for a known key set, `jwks_file:` for keys copied out of band"),
            );
            return;
        }
        let checked = match (&issuer.jwks_url, issuer.discovery) {
            (Some(url), _) => Some(("jwks_url", url.as_str())),
            // Discovery reads `<issuer>/.well-known/openid-configuration`: the issuer itself
            // is the URL the keys are found through.
            (None, true) => Some(("issuer", issuer.issuer.as_str())),
            _ => None,
        };
        if let Some((field, url)) = checked
            && let Some(problem) = untrusted_key_url(url)
        {
            self.push(
                span(&[field]),
                Diagnostic::new(
                    Code::IssuerKeySource,
                    format!("{subject} reads its signing keys from `{url}`, but {problem}"),
                )
                .label("keys read here could be replaced on the way")
                .help("use the issuer's `https://` URL; plain `http://` is accepted only to a loopback address"),
            );
        }
    }

    pub(super) fn workloads(&mut self) {
        let names: Vec<&String> = self.desired.workloads.keys().collect();
        for (index, name) in names.iter().enumerate() {
            let workload = &self.desired.workloads[*name];
            self.workload_issuer(name, workload);
            self.workload_workspace(name, workload);
            self.workload_claims(name, workload);
            for other in &names[..index] {
                let first = &self.desired.workloads[*other];
                if workload.overlaps(first) {
                    self.overlap(name, other);
                }
            }
        }
    }

    fn workload_span(&self, name: &str, path: &[&str]) -> Option<Span> {
        self.origins.span(Section::Workloads, name, path)
    }

    fn workload_issuer(&mut self, name: &str, workload: &Workload) {
        if self.origins.is_known(Section::Issuers, &workload.issuer) {
            return;
        }
        let help = did_you_mean(
            &workload.issuer,
            self.desired.issuers.keys().map(String::as_str),
            || {
                format!(
                    "define `{}` under `issuers`, with its `issuer`, signing keys and `audiences`",
                    workload.issuer
                )
            },
        );
        self.push(
            self.workload_span(name, &["issuer"]),
            Diagnostic::new(
                Code::UnknownIssuer,
                format!(
                    "workload `{name}` trusts issuer `{}`, which is not defined",
                    workload.issuer
                ),
            )
            .label("no such issuer")
            .help(help),
        );
    }

    fn workload_workspace(&mut self, name: &str, workload: &Workload) {
        let subject = format!("workload `{name}`");
        if !self
            .origins
            .is_known(Section::Workspaces, &workload.workspace)
        {
            let help = did_you_mean(
                &workload.workspace,
                self.desired.workspaces.keys().map(String::as_str),
                || format!("define `{}` under `workspaces`", workload.workspace),
            );
            self.push(
                self.workload_span(name, &["workspace"]),
                Diagnostic::new(
                    Code::UnknownWorkspace,
                    format!(
                        "{subject} calls in workspace `{}`, which is not defined",
                        workload.workspace
                    ),
                )
                .label("no such workspace")
                .help(help),
            );
            return;
        }
        let Some(workspace) = self.desired.workspaces.get(&workload.workspace) else {
            // The workspace failed the schema: that is already reported.
            return;
        };
        if let Some(models) = &workload.models {
            let origins = self.origins;
            let item = |rest: &[&str], index: usize| {
                origins.item_span(Section::Workloads, name, rest, index)
            };
            self.model_list(models, |i| item(&["models"], i));
            self.key_models_subset(
                &workload.workspace,
                workspace.models.as_deref(),
                &subject,
                models,
                &item,
            );
        }
        let upstream = workspace
            .gateway
            .as_ref()
            .and_then(|gateway| gateway.upstream_key.as_ref());
        if upstream.is_none() {
            self.push(
                self.workload_span(name, &["workspace"]),
                Diagnostic::new(
                    Code::NoUpstreamKey,
                    format!(
                        "{subject} calls in workspace `{}`, which names no `gateway.upstream_key` to forward its requests with",
                        workload.workspace
                    ),
                )
                .label("no key to forward with")
                .help(upstream_key_help(&workload.workspace, workspace)),
            );
        }
    }

    /// A registered claim under `claims` is either said elsewhere or never a string.
    fn workload_claims(&mut self, name: &str, workload: &Workload) {
        for claim in workload.claims.keys() {
            if !REGISTERED_CLAIMS.contains(&claim.as_str()) {
                continue;
            }
            let why = match claim.as_str() {
                "sub" => "the subject is matched by `subject`".to_owned(),
                "iss" => "the issuer is matched by the issuer's `issuer`".to_owned(),
                "aud" => "the audience is checked against the issuer's `audiences`".to_owned(),
                other => format!("`{other}` is a number in every token, never this string"),
            };
            self.push(
                self.origins
                    .key_span(Section::Workloads, name, &["claims", claim]),
                Diagnostic::new(
                    Code::WorkloadUnmatchable,
                    format!("workload `{name}` requires claim `{claim}`, which no token can match as written"),
                )
                .label("a registered claim")
                .help(format!("{why}: remove `{claim}` from `claims`")),
            );
        }
    }

    fn overlap(&mut self, name: &str, first: &str) {
        let mut diagnostic = Diagnostic::new(
            Code::WorkloadsOverlap,
            format!("a token of workload `{name}` would also be one of workload `{first}`"),
        )
        .label("same issuer and subject, and no claim tells them apart")
        .help(format!(
            "add a claim whose value differs between `{first}` and `{name}` (such as `environment`), or merge them"
        ));
        if let Some(span) = self.workload_span(first, &["subject"]) {
            diagnostic = diagnostic.note(span, "the other workload");
        }
        self.push(self.workload_span(name, &["subject"]), diagnostic);
    }
}
