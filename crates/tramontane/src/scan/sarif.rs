//! The report as SARIF 2.1.0, the format GitHub code scanning uploads
//! (`github/codeql-action/upload-sarif`): each finding a result at its file, line and
//! column, with a partial fingerprint so an alert keeps its identity across runs.

use serde_json::{Value as Json, json};

use super::ScanReport;
use super::detect::{Rule, Severity};
use super::finding::Finding;

pub const SCHEMA: &str = "https://json.schemastore.org/sarif-2.1.0.json";
pub const INFORMATION_URI: &str = "https://github.com/tramontane-rs/tramontane";
/// The key of [`Finding::fingerprint`] in `partialFingerprints`.
pub const FINGERPRINT_KEY: &str = "tramontaneFingerprint/v1";

/// A SARIF 2.1.0 log of one run of the tool `name` at `version`: what `scan` and `audit`
/// upload to GitHub code scanning alike.
pub(crate) fn log(name: &str, version: &str, rules: Vec<Json>, results: Vec<Json>) -> String {
    let log = json!({
        "$schema": SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": {
                "driver": {
                    "name": name,
                    "version": version,
                    "semanticVersion": version,
                    "informationUri": INFORMATION_URI,
                    "rules": rules,
                }
            },
            // Columns count characters, as every other format does, not UTF-16 units.
            "columnKind": "unicodeCodePoints",
            "results": results,
        }],
    });
    let mut text = serde_json::to_string_pretty(&log).unwrap_or_default();
    text.push('\n');
    text
}

/// The SARIF log for `report`, produced by tramontane `version`.
pub fn render(report: &ScanReport, version: &str) -> String {
    let rules: Vec<Json> = Rule::ALL
        .iter()
        .map(|rule| rule_descriptor(*rule))
        .collect();
    let results: Vec<Json> = report.findings.iter().map(result).collect();
    log("tramontane", version, rules, results)
}

fn level(rule: Rule) -> &'static str {
    match rule.severity() {
        Severity::Error => "error",
        Severity::Warning => "warning",
    }
}

fn rule_descriptor(rule: Rule) -> Json {
    let (precision, security_severity) = match rule {
        Rule::GatewayKey => ("very-high", "9.0"),
        Rule::MistralApiKey => ("high", "9.0"),
        Rule::EnvFileTracked => ("high", "5.0"),
        Rule::SinkNotIgnored | Rule::EnvNotIgnored => ("high", "4.0"),
    };
    json!({
        "id": rule.id(),
        "name": pascal_case(rule.id()),
        "shortDescription": { "text": rule.title() },
        "fullDescription": { "text": rule.description() },
        "help": {
            "text": rule.help(),
            "markdown": rule.help(),
        },
        "helpUri": format!("{INFORMATION_URI}/blob/main/docs/scan.md#{}", rule.id()),
        "defaultConfiguration": { "level": level(rule) },
        "properties": {
            "tags": ["security", "secret"],
            "precision": precision,
            "security-severity": security_severity,
        },
    })
}

fn result(finding: &Finding) -> Json {
    let index = Rule::ALL
        .iter()
        .position(|rule| *rule == finding.rule)
        .unwrap_or_default();
    let mut properties = json!({ "inWorkingTree": finding.in_working_tree });
    if let Some(commit) = &finding.commit {
        properties["commit"] = json!(commit.id);
        properties["ref"] = json!(commit.reference);
    }
    if let Some(verification) = &finding.verification {
        properties["verification"] = json!(verification.as_str());
    }
    json!({
        "ruleId": finding.rule.id(),
        "ruleIndex": index,
        "level": level(finding.rule),
        "message": { "text": finding.message() },
        "locations": [{
            "physicalLocation": {
                "artifactLocation": {
                    "uri": uri_path(&finding.path),
                    "uriBaseId": "%SRCROOT%",
                },
                "region": {
                    "startLine": finding.line,
                    "startColumn": finding.column,
                },
            }
        }],
        "partialFingerprints": { FINGERPRINT_KEY: finding.fingerprint },
        "properties": properties,
    })
}

/// `mistral-api-key` → `MistralApiKey`, the form SARIF's `name` expects.
pub(crate) fn pascal_case(id: &str) -> String {
    id.split('-')
        .map(|word| {
            let mut chars = word.chars();
            chars
                .next()
                .map(|first| first.to_ascii_uppercase().to_string() + chars.as_str())
                .unwrap_or_default()
        })
        .collect()
}

/// A relative path as a URI reference: every byte outside the unreserved set and `/`
/// percent-encoded, so a space or `#` in a file name cannot change what the URI names.
pub(crate) fn uri_path(path: &str) -> String {
    let mut uri = String::with_capacity(path.len());
    for byte in path.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~' | b'/') {
            uri.push(char::from(byte));
        } else {
            uri.push_str(&format!("%{byte:02X}"));
        }
    }
    uri
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_become_uri_references() {
        assert_eq!(uri_path("config/app.env"), "config/app.env");
        assert_eq!(uri_path("a b/#c%.txt"), "a%20b/%23c%25.txt");
        assert_eq!(uri_path("é"), "%C3%A9");
    }

    #[test]
    fn rule_names_are_pascal_case() {
        assert_eq!(pascal_case("mistral-api-key"), "MistralApiKey");
        assert_eq!(pascal_case("env-file-tracked"), "EnvFileTracked");
    }
}
