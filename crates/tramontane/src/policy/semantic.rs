//! The second pass: the rules a schema cannot express, over the merged org.

use std::collections::HashSet;

mod gateway;
mod models;
mod workloads;

use models::model_diagnostic;

use super::catalog::Catalog;
use super::diagnostic::{Code, Diagnostic, closest, closest_email};
use super::secret_path::SecretPathError;
use super::source::{SourceSet, Span};
use super::{LoadOptions, Origins, Section};
use crate::model::{ALL_MODELS, DesiredOrg, Expiry, WorkspaceRole};

struct Checker<'a> {
    desired: &'a DesiredOrg,
    origins: &'a Origins,
    options: &'a LoadOptions<'a>,
    /// The catalog with the models the policy declares.
    catalog: &'a Catalog,
    found: Vec<Diagnostic>,
}

pub(super) fn check(
    desired: &DesiredOrg,
    origins: &Origins,
    sources: &SourceSet,
    options: &LoadOptions<'_>,
) -> Vec<Diagnostic> {
    let catalog = options.catalog.with_declared(&desired.models);
    let mut checker = Checker {
        desired,
        origins,
        options,
        catalog: &catalog,
        found: Vec::new(),
    };
    checker.declared_models(sources);
    checker.organization();
    checker.roles();
    checker.teams();
    checker.workspaces();
    checker.gateway_keys();
    checker.issuers();
    checker.workloads();
    checker.spend_guards(sources);
    checker.found
}

/// `did you mean …?` when a candidate is close to `name`, else `otherwise`.
fn did_you_mean<'c>(
    name: &str,
    candidates: impl Iterator<Item = &'c str>,
    otherwise: impl FnOnce() -> String,
) -> String {
    match closest(name, candidates) {
        Some(suggestion) => format!("did you mean `{suggestion}`?"),
        None => otherwise(),
    }
}

impl Checker<'_> {
    fn push(&mut self, span: Option<Span>, diagnostic: Diagnostic) {
        // Every entity checked here was loaded from a file, so a span exists; the fallback
        // only keeps a missing one from hiding the problem.
        self.found.push(match span {
            Some(span) => diagnostic.at(span),
            None => diagnostic,
        });
    }

    /// Reports `email` if no member has it.
    fn member_reference(&mut self, email: &str, span: Option<Span>, role: &str) {
        if self.origins.is_known(Section::Members, email) {
            return;
        }
        let suggestion = closest_email(email, self.desired.members.keys().map(String::as_str));
        let help = match suggestion {
            Some(suggestion) => format!("did you mean `{suggestion}`?"),
            None => format!("add `{email}` under `members`, with a `name`"),
        };
        self.push(
            span,
            Diagnostic::new(
                Code::UnknownMember,
                format!("`{email}`, {role}, is not a member of the organization"),
            )
            .label("not under `members`")
            .help(help),
        );
    }

    /// Reports unknown, deprecated and retired models in a model list.
    fn model_list(&mut self, models: &[String], at: impl Fn(usize) -> Option<Span>) {
        let catalog = self.catalog;
        let today = self.options.today;
        let mut found = Vec::new();
        for (i, model) in models.iter().enumerate() {
            if model == ALL_MODELS {
                continue;
            }
            if let Some(diagnostic) = model_diagnostic(catalog, model, today) {
                found.push((at(i), diagnostic));
            }
        }
        for (span, diagnostic) in found {
            self.push(span, diagnostic);
        }
    }

    fn organization(&mut self) {
        let Some(min_admins) = self.desired.organization.min_admins else {
            return;
        };
        let mut admins: std::collections::BTreeSet<&str> = self
            .desired
            .members
            .iter()
            .filter(|(_, member)| member.is_admin())
            .map(|(email, _)| email.as_str())
            .collect();
        let via_teams: Vec<&str> = self
            .desired
            .teams
            .values()
            .filter(|team| {
                team.organization_role == Some(crate::model::OrganizationRole::OrganizationAdmin)
            })
            .flat_map(|team| team.members.iter().map(String::as_str))
            .filter(|email| self.desired.members.contains_key(*email))
            .collect();
        admins.extend(via_teams);
        let admins: Vec<&str> = admins.into_iter().collect();
        if (admins.len() as u32) < min_admins {
            let listed = if admins.is_empty() {
                "no member has it".to_owned()
            } else {
                format!("only {}", admins.join(", "))
            };
            let span = self.origins.organization_span("min_admins");
            self.push(
                span,
                Diagnostic::new(
                    Code::TooFewAdmins,
                    format!(
                        "the policy names {} organization admin{} but `min_admins` is {min_admins}",
                        admins.len(),
                        if admins.len() == 1 { "" } else { "s" }
                    ),
                )
                .label(format!("requires {min_admins}"))
                .help(format!(
                    "give more members `roles: [organization_admin]` ({listed}), or lower `min_admins`"
                )),
            );
        }
    }

    fn roles(&mut self) {
        for (name, role) in &self.desired.roles {
            self.model_list(&role.models, |i| {
                self.origins.item_span(Section::Roles, name, &["models"], i)
            });
        }
    }

    fn teams(&mut self) {
        for (name, team) in &self.desired.teams {
            for (i, email) in team.members.iter().enumerate() {
                let span = self
                    .origins
                    .item_span(Section::Teams, name, &["members"], i);
                self.member_reference(email, span, &format!("listed in team `{name}`"));
            }
            for workspace in team.workspaces.keys() {
                if self.origins.is_known(Section::Workspaces, workspace) {
                    continue;
                }
                let help = match closest(
                    workspace,
                    self.desired.workspaces.keys().map(String::as_str),
                ) {
                    Some(suggestion) => format!("did you mean `{suggestion}`?"),
                    None => {
                        format!("define `{workspace}` under `workspaces`, or remove the assignment")
                    }
                };
                let span = self
                    .origins
                    .key_span(Section::Teams, name, &["workspaces", workspace]);
                self.push(
                    span,
                    Diagnostic::new(
                        Code::UnknownWorkspace,
                        format!("team `{name}` is assigned to workspace `{workspace}`, which is not defined"),
                    )
                    .label("no such workspace")
                    .help(help),
                );
            }
            if let Some(role) = &team.role
                && !self.origins.is_known(Section::Roles, role)
            {
                let help = match closest(role, self.desired.roles.keys().map(String::as_str)) {
                    Some(suggestion) => format!("did you mean `{suggestion}`?"),
                    None => format!("define `{role}` under `roles`"),
                };
                let span = self.origins.span(Section::Teams, name, &["role"]);
                self.push(
                    span,
                    Diagnostic::new(
                        Code::UnknownRole,
                        format!("team `{name}` has role `{role}`, which is not defined"),
                    )
                    .label("no such role")
                    .help(help),
                );
            }
        }
    }

    fn workspaces(&mut self) {
        let origins = self.origins;
        // Secret files by normalized path, with the first key that writes there.
        let mut secret_files: std::collections::HashMap<std::path::PathBuf, String> =
            std::collections::HashMap::new();
        for (name, workspace) in &self.desired.workspaces {
            let at = |path: &[&str]| origins.span(Section::Workspaces, name, path);
            let key_at = |path: &[&str]| origins.key_span(Section::Workspaces, name, path);

            match &workspace.admin {
                None => {
                    let candidate = workspace
                        .members
                        .iter()
                        .find(|(_, roles)| roles.contains(&WorkspaceRole::WorkspaceAdmin))
                        .map(|(email, _)| email.as_str());
                    let help = match candidate {
                        Some(email) => format!("add `admin: {email}`"),
                        None => "add `admin:` with the email of the member who administers it"
                            .to_owned(),
                    };
                    self.push(
                        key_at(&[]),
                        Diagnostic::new(
                            Code::WorkspaceWithoutAdmin,
                            format!("workspace `{name}` has no `admin`"),
                        )
                        .label("needs an admin")
                        .help(help),
                    );
                }
                Some(admin) => {
                    self.member_reference(
                        admin,
                        at(&["admin"]),
                        &format!("admin of workspace `{name}`"),
                    );
                    if let Some(roles) = workspace.members.get(admin)
                        && !roles.contains(&WorkspaceRole::WorkspaceAdmin)
                    {
                        self.push(
                            at(&["members", admin]),
                            Diagnostic::new(
                                Code::AdminRoleConflict,
                                format!(
                                    "`{admin}` is the admin of workspace `{name}` but is listed under its members without `workspace_admin`"
                                ),
                            )
                            .label("missing `workspace_admin`")
                            .note(
                                at(&["admin"]).unwrap_or_else(|| key_at(&[]).expect("the workspace was loaded from a file")),
                                "admin set here",
                            )
                            .help("add `workspace_admin` to these roles, or remove the entry"),
                        );
                    }
                }
            }

            for email in workspace.members.keys() {
                self.member_reference(
                    email,
                    key_at(&["members", email]),
                    &format!("listed in workspace `{name}`"),
                );
            }

            if let Some(models) = &workspace.models {
                self.model_list(models, |i| {
                    origins.item_span(Section::Workspaces, name, &["models"], i)
                });
            }

            self.workspace_gateway(name);

            for (key_name, key) in &workspace.keys {
                let key_path = |rest: &[&str]| {
                    let mut path = vec!["keys", key_name.as_str()];
                    path.extend_from_slice(rest);
                    at(&path)
                };
                let key_item = |rest: &[&str], index: usize| {
                    let mut path = vec!["keys", key_name.as_str()];
                    path.extend_from_slice(rest);
                    origins.item_span(Section::Workspaces, name, &path, index)
                };
                let key_key_path = |rest: &[&str]| {
                    let mut path = vec!["keys", key_name.as_str()];
                    path.extend_from_slice(rest);
                    key_at(&path)
                };
                let subject = format!("key `{key_name}` of workspace `{name}`");

                if let crate::model::SecretSink::File(file) = &key.secret {
                    self.secret_file(
                        &mut secret_files,
                        &subject,
                        file,
                        key_path(&["secret", "file"]),
                    );
                }

                self.member_reference(
                    &key.owner,
                    key_path(&["owner"]),
                    &format!("owner of {subject}"),
                );

                if let Some(models) = &key.models {
                    self.model_list(models, |i| key_item(&["models"], i));
                    self.key_models_subset(
                        name,
                        workspace.models.as_deref(),
                        &format!("key `{key_name}`"),
                        models,
                        &key_item,
                    );
                }

                if let (Some(key_rpm), Some(workspace_rpm)) = (key.rpm, workspace.rpm)
                    && key_rpm > workspace_rpm
                {
                    let mut diagnostic = Diagnostic::new(
                        Code::KeyRpmAboveWorkspace,
                        format!(
                            "{subject} allows {key_rpm} requests per minute, more than the workspace's {workspace_rpm}"
                        ),
                    )
                    .label(format!("above the workspace's {workspace_rpm}"))
                    .help(format!("lower the key's `rpm` to at most {workspace_rpm}, or raise the workspace's"));
                    if let Some(span) = at(&["rpm"]) {
                        diagnostic = diagnostic.note(span, "workspace limit set here");
                    }
                    self.push(key_path(&["rpm"]), diagnostic);
                }

                match (key.expires, key.expires_after_days) {
                    (Some(_), Some(_)) => {
                        let mut diagnostic = Diagnostic::new(
                            Code::ExpiryConflict,
                            format!("{subject} sets both `expires` and `expires_after_days`"),
                        )
                        .label("second expiry")
                        .help("keep one: a fixed date, or a number of days from creation");
                        if let Some(span) = key_key_path(&["expires"]) {
                            diagnostic = diagnostic.note(span, "`expires` set here");
                        }
                        self.push(key_key_path(&["expires_after_days"]), diagnostic);
                    }
                    (Some(date), None) if date <= self.options.today => {
                        self.push(
                            key_path(&["expires"]),
                            Diagnostic::new(
                                Code::ExpiryInPast,
                                format!("{subject} expires on {date}, which is not in the future"),
                            )
                            .label("already passed")
                            .help("move `expires` to a future date, or use `expires_after_days`"),
                        );
                    }
                    _ => {}
                }

                match (key.rotate_before_days, key.expiry()) {
                    (Some(_), None) => self.push(
                        key_key_path(&["rotate_before_days"]),
                        Diagnostic::new(
                            Code::RotationWindow,
                            format!("{subject} has a rotation window but never expires"),
                        )
                        .label("nothing to count from")
                        .help("add `expires_after_days` (or `expires`), or remove `rotate_before_days`"),
                    ),
                    (Some(window), Some(Expiry::AfterDays(lifetime))) if window >= lifetime => self.push(
                        key_path(&["rotate_before_days"]),
                        Diagnostic::new(
                            Code::RotationWindow,
                            format!(
                                "{subject} would rotate {window} days before expiry but lives only {lifetime} days"
                            ),
                        )
                        .label(format!("must be less than {lifetime}"))
                        .help("a rotation window longer than the key's life rotates it on every apply: shorten the window"),
                    ),
                    (None, None) => self.push(
                        key_key_path(&[]),
                        Diagnostic::new(Code::KeyNeverExpires, format!("{subject} never expires"))
                            .label("no expiry")
                            .help("add `expires_after_days: 90` and `rotate_before_days: 14`, or an `expires` date"),
                    ),
                    _ => {}
                }
            }
        }
    }

    /// A key's secret file: inside the repository, and no other key's under any spelling.
    fn secret_file(
        &mut self,
        secret_files: &mut std::collections::HashMap<std::path::PathBuf, String>,
        subject: &str,
        file: &str,
        span: Option<Span>,
    ) {
        let normalized = match super::secret_path::normalize(file) {
            Ok(normalized) => normalized,
            Err(problem) => {
                let label = match problem {
                    SecretPathError::Absolute => "absolute path",
                    SecretPathError::Escapes => "outside the repository",
                    SecretPathError::NotAFile => "not a file",
                };
                self.push(
                    span,
                    Diagnostic::new(
                        Code::SecretFileOutside,
                        format!("{subject} writes its secret to `{file}`, which {problem}"),
                    )
                    .label(label)
                    .help(problem.help().unwrap_or_default()),
                );
                return;
            }
        };
        if let Some(root) = &self.options.repository
            && let Some(link) = super::secret_path::first_link(root, &normalized)
        {
            let link = link.to_string_lossy().replace('\\', "/");
            self.push(
                span,
                Diagnostic::new(
                    Code::SecretFileThroughLink,
                    format!(
                        "{subject} writes its secret to `{file}`, but `{link}` is a symbolic link"
                    ),
                )
                .label("crosses a symbolic link")
                .help("replace the link with a directory, or name the file where the link points: tramontane follows no link in a secret file's path"),
            );
            return;
        }
        match secret_files.get(&normalized) {
            Some(first) => self.push(
                span,
                Diagnostic::new(
                    Code::SharedSecretFile,
                    format!("{subject} writes its secret to `{file}`, as {first} does"),
                )
                .label("already another key's file")
                .help("give each key a secret file of its own: one would overwrite the other's secret"),
            ),
            None => {
                secret_files.insert(normalized, subject.to_owned());
            }
        }
    }

    fn key_models_subset(
        &mut self,
        workspace_name: &str,
        workspace_models: Option<&[String]>,
        caller: &str,
        key_models: &[String],
        key_item: &dyn Fn(&[&str], usize) -> Option<Span>,
    ) {
        let Some(workspace_models) = workspace_models else {
            return;
        };
        if workspace_models.iter().any(|model| model == ALL_MODELS) {
            return;
        }
        let catalog = self.catalog;
        let allowed: HashSet<_> = workspace_models
            .iter()
            .filter_map(|model| catalog.resolve(model))
            .collect();
        let workspace_span = self
            .origins
            .span(Section::Workspaces, workspace_name, &["models"]);
        for (i, model) in key_models.iter().enumerate() {
            let outside = if model == ALL_MODELS {
                true
            } else {
                match catalog.resolve(model) {
                    Some(id) => !allowed.contains(&id),
                    None => false,
                }
            };
            if !outside {
                continue;
            }
            let what = if model == ALL_MODELS {
                "every model (`*`)".to_owned()
            } else {
                format!("`{model}`")
            };
            let mut diagnostic = Diagnostic::new(
                Code::KeyModelsNotSubset,
                format!(
                    "{caller} allows {what}, which workspace `{workspace_name}` does not"
                ),
            )
            .label("not in the workspace's models")
            .help(format!(
                "the workspace allows: {}; remove this model from {caller} or add it to the workspace",
                workspace_models.join(", ")
            ));
            if let Some(span) = workspace_span {
                diagnostic = diagnostic.note(span, "the workspace's models");
            }
            self.push(key_item(&["models"], i), diagnostic);
        }
    }
}
