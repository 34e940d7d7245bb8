//! Merging prepared policy files into one org: sections and named entities are collected
//! across files, duplicates are reported, and the semantic pass runs on the result.

use std::collections::HashMap;

use serde_json::Value as Json;

use super::diagnostic::{Code, Diagnostic, Severity};
use super::schema::Segment;
use super::source::{SourceSet, Span};
use super::{
    LoadOptions, LoadedPolicy, Origins, Prepared, SUPPORTED_VERSION, Section, alerts, drop_value,
    semantic, yaml,
};
use crate::model::DesiredOrg;

/// Merges prepared files into one org and runs the semantic pass; `refused` are problems the
/// walk found with entries it did not read.
pub(super) fn merge(
    shown_dir: &str,
    prepared: Vec<Prepared>,
    refused: Vec<Diagnostic>,
    options: &LoadOptions<'_>,
) -> LoadedPolicy {
    let mut sources = SourceSet::default();
    let mut diagnostics = refused;
    let mut origins = Origins::default();
    let mut desired = DesiredOrg::default();
    if prepared.is_empty() && diagnostics.is_empty() {
        diagnostics.push(
            Diagnostic::new(
                Code::Io,
                format!("no policy files (*.yaml, *.yml) under `{shown_dir}`"),
            )
            .path(shown_dir)
            .help("point --policies at the directory that holds the policy files"),
        );
    }

    let mut first_definition: HashMap<(Section, String), Span> = HashMap::new();
    // Entities checked without their broken values: a warning inside one may only say that
    // a dropped value is missing (an invalid `expires` is not "never expires").
    let mut partial: Vec<Span> = Vec::new();
    let mut organization_at: Option<Span> = None;
    let mut audit_at: Option<Span> = None;
    let mut alerts_at: Option<Span> = None;
    let any_files = !prepared.is_empty();
    // Whether every file could be read and parsed, so that a missing `version` is not
    // reported when it may sit in a file that is broken.
    let mut all_parsed = true;
    let mut version_declared = false;
    for prepared in prepared {
        let file = sources.add(prepared.source);

        // A file without a root is either empty (no diagnostics) or broken; one whose root
        // is not a mapping is broken (and reported) too.
        let parsed = match &prepared.root {
            Some(root) => matches!(root.value, yaml::Value::Map(_)),
            None => prepared.diagnostics.is_empty(),
        };
        all_parsed &= parsed;
        origins.incomplete |= !parsed;
        diagnostics.extend(prepared.diagnostics);
        let Some(root) = prepared.root else {
            continue;
        };
        version_declared |= root.get("version").is_some();
        let mut json = prepared.json;
        let broken_paths = prepared.broken_paths;
        let is_broken = |path: &[Segment]| {
            broken_paths
                .iter()
                .any(|bad| bad.starts_with(path) || path.starts_with(bad))
        };

        if let Some(version) = root.get("version")
            && let yaml::Value::Int(found) = version.value.value
            && found != SUPPORTED_VERSION
        {
            diagnostics.push(
                Diagnostic::new(
                    Code::UnsupportedVersion,
                    format!(
                        "policy format version {found} is not supported; this tramontane reads version {SUPPORTED_VERSION}"
                    ),
                )
                .at(version.value.span)
                .label("unsupported version")
                .help(format!(
                    "set `version: {SUPPORTED_VERSION}`, or upgrade tramontane to one that reads version {found}"
                )),
            );
        }

        if let Some(entry) = root.get("organization") {
            if let Some(first) = organization_at {
                diagnostics.push(duplicate(
                    "the `organization` section",
                    entry.key_span,
                    first,
                ));
            } else {
                organization_at = Some(entry.key_span);
                origins.organization = Some(file);
                let path = [Segment::Key("organization".into())];
                if !is_broken(&path)
                    && let Ok(organization) = serde_json::from_value(json["organization"].take())
                {
                    desired.organization = organization;
                }
            }
        }

        if let Some(entry) = root.get("audit") {
            if let Some(first) = audit_at {
                diagnostics.push(duplicate("the `audit` section", entry.key_span, first));
            } else {
                audit_at = Some(entry.key_span);
                let path = [Segment::Key("audit".into())];
                if !is_broken(&path)
                    && let Ok(audit) = serde_json::from_value(json["audit"].take())
                {
                    desired.audit = audit;
                }
            }
        }

        if let Some(entry) = root.get("alerts") {
            if let Some(first) = alerts_at {
                diagnostics.push(duplicate("the `alerts` section", entry.key_span, first));
            } else {
                alerts_at = Some(entry.key_span);
                diagnostics.extend(alerts::check(&entry.value));
                let path = [Segment::Key("alerts".into())];
                if !is_broken(&path)
                    && let Ok(alerts) = serde_json::from_value(json["alerts"].take())
                {
                    desired.alerts = alerts;
                }
            }
        }

        for section in Section::ALL {
            let Some(section_entry) = root.get(section.key()) else {
                continue;
            };
            let Some(Json::Object(mut entities)) = json.get_mut(section.key()).map(Json::take)
            else {
                continue;
            };
            for entry in section_entry.value.entries() {
                let key = (section, entry.key.clone());
                // Email addresses are one person whatever their case, as on the platform.
                let identity = match section {
                    Section::Members => (section, entry.key.to_lowercase()),
                    _ => key.clone(),
                };
                if let Some(first) = first_definition.get(&identity) {
                    diagnostics.push(duplicate(
                        &format!("{} `{}`", section.singular(), entry.key),
                        entry.key_span,
                        *first,
                    ));
                    continue;
                }
                first_definition.insert(identity, entry.key_span);
                let path = [
                    Segment::Key(section.key().to_owned()),
                    Segment::Key(entry.key.clone()),
                ];
                let mut value = entities.remove(&entry.key).unwrap_or(Json::Null);
                if is_broken(&path) {
                    // A schema error inside the entity: its other values are still checked,
                    // so one run reports the schema error and the rest together. Without
                    // the broken values it may decode; if the entity itself is broken, or
                    // what remains does not decode, it is left out.
                    origins.broken.insert(key.clone());
                    let inside: Vec<&Vec<Segment>> = broken_paths
                        .iter()
                        .filter(|bad| bad.len() > path.len() && bad.starts_with(&path))
                        .collect();
                    if inside.len()
                        != broken_paths
                            .iter()
                            .filter(|bad| bad.starts_with(&path) || path.starts_with(bad))
                            .count()
                    {
                        continue;
                    }
                    for bad in inside {
                        drop_value(&mut value, &bad[path.len()..]);
                    }
                    partial.push(Span {
                        end: entry.value.span.end,
                        ..entry.key_span
                    });
                }
                if !decode_into(&mut desired, section, &entry.key, value) {
                    origins.broken.insert(key);
                    continue;
                }
                origins.entities.insert(key, file);
            }
        }
        origins.roots.insert(file, root);
    }

    // An empty file among others contributes nothing, but a directory where no file says
    // which format it is written in (all of it empty, or files of comments only) is a
    // mistake, not a policy that manages nothing: `apply` would then plan to delete
    // whatever `prune` allows.
    if any_files && all_parsed && !version_declared {
        diagnostics.push(
            Diagnostic::new(
                Code::MissingProperty,
                format!("no policy file under `{shown_dir}` declares `version`"),
            )
            .path(shown_dir)
            .help(format!(
                "add `version: {SUPPORTED_VERSION}` to one of the files (organization.yaml by convention); a directory of empty files is not a policy"
            )),
        );
    }

    diagnostics.extend(
        semantic::check(&desired, &origins, &sources, options)
            .into_iter()
            .filter(|diagnostic| {
                diagnostic.severity() != Severity::Warning
                    || !diagnostic.span.is_some_and(|at| {
                        partial.iter().any(|entity| {
                            entity.file == at.file
                                && entity.start <= at.start
                                && at.end <= entity.end
                        })
                    })
            }),
    );
    diagnostics.sort_by(|a, b| {
        // A file that does not parse or cannot be read comes first: what else is reported
        // may follow from it, and it is what to fix first.
        let place = |d: &Diagnostic| {
            (
                !matches!(d.code, Code::Syntax | Code::Io | Code::Encoding),
                d.span.map(|span| span.file),
                d.span.map(|span| span.start),
                d.path.clone(),
            )
        };
        place(a).cmp(&place(b)).then_with(|| a.code.cmp(&b.code))
    });
    LoadedPolicy {
        sources,
        desired,
        diagnostics,
    }
}

fn decode_into(desired: &mut DesiredOrg, section: Section, name: &str, value: Json) -> bool {
    let name = name.to_owned();
    match section {
        Section::Members => serde_json::from_value(value)
            .map(|v| desired.members.insert(name, v))
            .is_ok(),
        Section::Roles => serde_json::from_value(value)
            .map(|v| desired.roles.insert(name, v))
            .is_ok(),
        Section::Teams => serde_json::from_value(value)
            .map(|v| desired.teams.insert(name, v))
            .is_ok(),
        Section::Workspaces => serde_json::from_value(value)
            .map(|v| desired.workspaces.insert(name, v))
            .is_ok(),
        Section::Models => serde_json::from_value(value)
            .map(|v| desired.models.insert(name, v))
            .is_ok(),
        Section::Issuers => serde_json::from_value(value)
            .map(|v| desired.issuers.insert(name, v))
            .is_ok(),
        Section::Workloads => serde_json::from_value(value)
            .map(|v| desired.workloads.insert(name, v))
            .is_ok(),
        Section::GatewayKeys => match crate::model::GatewayKeyId::parse(&name) {
            Ok(id) => serde_json::from_value(value)
                .map(|v| desired.gateway_keys.insert(id, v))
                .is_ok(),
            Err(_) => false,
        },
    }
}

fn duplicate(what: &str, again: Span, first: Span) -> Diagnostic {
    Diagnostic::new(Code::DuplicateName, format!("{what} is defined twice"))
        .at(again)
        .label("defined again here")
        .note(first, "first defined here")
        .help("names are unique across all policy files: keep one of the two definitions")
}
