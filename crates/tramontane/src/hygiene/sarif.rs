//! The audit report as SARIF 2.1.0, for GitHub code scanning: each finding a result at the
//! policy line that governs its object (or the first policy file, for an object no policy
//! declares), with the finding's id as its fingerprint so an alert keeps its identity.

use serde_json::{Value as Json, json};

use super::{AuditReport, Finding, Rule, Severity};
use crate::scan::sarif::{INFORMATION_URI, pascal_case, uri_path};

/// The key of the finding's id in `partialFingerprints`.
pub const FINGERPRINT_KEY: &str = "tramontaneAuditFinding/v1";

/// The SARIF log for `report`; `fallback_file` is where findings without a policy line are
/// placed (GitHub needs a location for every result). Locations are relative to `root`,
/// the repository root `%SRCROOT%` stands for: a policy file given as an absolute path
/// (`--policies /home/ci/repo/policies`) is made relative to it, and one outside it gets
/// no location rather than a path of the machine that ran the audit.
pub fn render(
    report: &AuditReport,
    version: &str,
    fallback_file: Option<&str>,
    root: &std::path::Path,
) -> String {
    let rules: Vec<Json> = Rule::ALL.iter().map(|rule| descriptor(*rule)).collect();
    let results: Vec<Json> = report
        .findings
        .iter()
        .map(|finding| result(finding, fallback_file, root))
        .collect();
    crate::scan::sarif::log("tramontane-audit", version, rules, results)
}

fn level(severity: Severity) -> &'static str {
    match severity {
        Severity::Critical | Severity::High => "error",
        Severity::Medium => "warning",
        Severity::Low => "note",
    }
}

/// GitHub's `security-severity`: critical above 9, high 7 to 8.9, medium 4 to 6.9.
fn security_severity(severity: Severity) -> &'static str {
    match severity {
        Severity::Critical => "9.5",
        Severity::High => "7.5",
        Severity::Medium => "5.0",
        Severity::Low => "2.0",
    }
}

fn descriptor(rule: Rule) -> Json {
    let severity = rule.severity();
    json!({
        "id": rule.id(),
        "name": pascal_case(rule.id()),
        "shortDescription": { "text": rule.title() },
        "helpUri": format!("{INFORMATION_URI}/blob/main/docs/audit.md#{}", rule.id()),
        "defaultConfiguration": { "level": level(severity) },
        "properties": {
            "tags": ["security", "hygiene"],
            "precision": "very-high",
            "security-severity": security_severity(severity),
        },
    })
}

/// `file` as a path relative to `root`, `/`-separated; `None` for an absolute path outside
/// it.
fn relative_to_root(file: &str, root: &std::path::Path) -> Option<String> {
    let path = std::path::Path::new(file);
    if !path.is_absolute() {
        return Some(file.to_owned());
    }
    let canonical = |path: &std::path::Path| std::fs::canonicalize(path).ok();
    let relative = path
        .strip_prefix(root)
        .map(std::path::Path::to_owned)
        .ok()
        .or_else(|| {
            let (path, root) = (canonical(path)?, canonical(root)?);
            path.strip_prefix(root).map(std::path::Path::to_owned).ok()
        })?;
    Some(
        relative
            .components()
            .map(|part| part.as_os_str().to_string_lossy())
            .collect::<Vec<_>>()
            .join("/"),
    )
}

fn result(finding: &Finding, fallback_file: Option<&str>, root: &std::path::Path) -> Json {
    let index = Rule::ALL
        .iter()
        .position(|rule| *rule == finding.rule)
        .unwrap_or_default();
    let place = match &finding.source {
        Some(source) => Some((source.file.as_str(), source.line, source.column)),
        None => fallback_file.map(|file| (file, 1, 1)),
    };
    let locations: Vec<Json> = place
        .and_then(|(file, line, column)| Some((relative_to_root(file, root)?, line, column)))
        .map(|(file, line, column)| {
            json!({
                "physicalLocation": {
                    "artifactLocation": { "uri": uri_path(&file), "uriBaseId": "%SRCROOT%" },
                    "region": { "startLine": line, "startColumn": column },
                },
                "logicalLocations": [{ "fullyQualifiedName": finding.address }],
            })
        })
        .into_iter()
        .collect();
    json!({
        "ruleId": finding.rule.id(),
        "ruleIndex": index,
        "level": level(finding.severity),
        "message": { "text": format!("{} ({}). Fix: {}", finding.message, finding.address, finding.remedy) },
        "locations": locations,
        "partialFingerprints": { FINGERPRINT_KEY: finding.id },
        "properties": {
            "severity": finding.severity.as_str(),
            "address": finding.address,
            "managed": finding.managed,
        },
    })
}
