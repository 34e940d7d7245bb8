//! A scan report for people (rustc-style frames) and for programs (JSON). Secrets appear
//! only redacted; paths come from the repository and are shown escaped.

use annotate_snippets::{Group, Level, Origin};
use serde_json::{Value as Json, json};

use super::detect::Severity;
use super::finding::{Finding, Verification};
use super::{Coverage, ScanReport};
use crate::render::diagnostics::frame_renderer;
use crate::render::untrusted;

/// The version of the `--format json` document; bumped on an incompatible change.
pub const JSON_VERSION: u32 = 1;

/// One frame per finding, then a summary.
pub fn human(report: &ScanReport, color: bool) -> String {
    let renderer = frame_renderer(color);
    let mut out = String::new();
    for finding in &report.findings {
        out.push_str(&renderer.render(&frame(finding)));
        out.push_str("\n\n");
    }
    out.push_str(&summary(report));
    out
}

fn frame(finding: &Finding) -> Vec<Group<'static>> {
    let level = match finding.rule.severity() {
        Severity::Error => Level::ERROR,
        Severity::Warning => Level::WARNING,
    };
    let title = level
        .primary_title(untrusted::terminal(&finding.message()).into_owned())
        .id(finding.rule.id());
    let origin = Origin::path(untrusted::terminal(&finding.path).into_owned())
        .line(finding.line as usize)
        .char_column(finding.column as usize);
    let mut group = title.element(origin);
    if let Some(commit) = &finding.commit {
        let short = &commit.id[..commit.id.len().min(12)];
        let place = if finding.in_working_tree {
            "still in the working tree"
        } else {
            "no longer in the working tree"
        };
        group = group.element(Level::NOTE.message(format!(
            "first seen in {short} on {}; {place}",
            untrusted::terminal(&commit.reference)
        )));
    }
    if let Some(verification) = &finding.verification {
        group = group.element(Level::NOTE.message(verification_text(verification)));
    }
    group = group
        .element(Level::NOTE.message(format!("fingerprint {}", finding.fingerprint)))
        .element(Level::HELP.message(finding.rule.help()));
    vec![group]
}

fn verification_text(verification: &Verification) -> String {
    match verification {
        Verification::Live => "verified: live, the key works now".to_owned(),
        Verification::Revoked => "verified: revoked, the API refused the key".to_owned(),
        Verification::Unknown(why) => {
            format!("verified: unknown ({})", untrusted::terminal(why))
        }
    }
}

fn summary(report: &ScanReport) -> String {
    let coverage = &report.coverage;
    let mut lines = Vec::new();
    let errors = report.count(Severity::Error);
    let warnings = report.count(Severity::Warning);
    lines.push(if report.findings.is_empty() {
        "no leaked keys, and no secret or .env file git would commit".to_owned()
    } else {
        let mut parts = Vec::new();
        if errors > 0 {
            parts.push(count(errors, "leaked key", "leaked keys"));
        }
        if warnings > 0 {
            parts.push(count(
                warnings,
                "secret file git would commit",
                "secret files git would commit",
            ));
        }
        format!("found {}", parts.join(" and "))
    });
    lines.push(scanned(coverage));
    if !report.accepted.is_empty() || report.stale_baseline_entries > 0 {
        let mut baseline = count(
            report.accepted.len(),
            "finding accepted by the baseline",
            "findings accepted by the baseline",
        );
        if report.stale_baseline_entries > 0 {
            baseline.push_str(&format!(
                "; {} match nothing any more",
                count(
                    report.stale_baseline_entries,
                    "baseline entry",
                    "baseline entries"
                )
            ));
        }
        lines.push(baseline);
    }
    if coverage.too_large > 0 || coverage.binary > 0 {
        // With the history, a file is counted once in the working tree and once per blob.
        let (one, many) = if coverage.history {
            ("file or blob", "files and blobs")
        } else {
            ("file", "files")
        };
        let mut skipped = Vec::new();
        if coverage.too_large > 0 {
            let mut large = format!(
                "{} over {}",
                count(coverage.too_large as usize, one, many),
                bytes(coverage.max_file_bytes)
            );
            let listed: Vec<String> = coverage
                .too_large_paths
                .iter()
                .map(|path| untrusted::terminal(path).into_owned())
                .collect();
            large.push_str(&format!(" ({}", listed.join(", ")));
            if coverage.too_large_paths.len() == super::LISTED_TOO_LARGE {
                large.push_str(", …");
            }
            large.push(')');
            skipped.push(large);
        }
        if coverage.binary > 0 {
            skipped.push(count(
                coverage.binary as usize,
                &format!("binary {one}"),
                &format!("binary {many}"),
            ));
        }
        lines.push(format!("skipped {}", skipped.join(" and ")));
    }
    let mut text = lines.join("\n");
    text.push('\n');
    text
}

fn scanned(coverage: &Coverage) -> String {
    let mut text = format!(
        "scanned {} in the working tree",
        count(coverage.files as usize, "file", "files")
    );
    if coverage.history {
        text.push_str(&format!(
            " and {} in {} of {}",
            count(coverage.blobs as usize, "blob", "blobs"),
            count(coverage.commits as usize, "commit", "commits"),
            count(coverage.refs as usize, "ref", "refs")
        ));
    }
    text
}

fn count(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn bytes(n: u64) -> String {
    const MIB: u64 = 1024 * 1024;
    const KIB: u64 = 1024;
    if n >= MIB && n.is_multiple_of(MIB) {
        format!("{} MiB", n / MIB)
    } else if n >= KIB && n.is_multiple_of(KIB) {
        format!("{} KiB", n / KIB)
    } else {
        format!("{n} bytes")
    }
}

/// The `--format json` document. Its fields are a stable contract.
pub fn json(report: &ScanReport) -> String {
    let findings: Vec<Json> = report.findings.iter().map(json_finding).collect();
    let coverage = &report.coverage;
    let document = json!({
        "version": JSON_VERSION,
        "findings": findings,
        "summary": {
            "errors": report.count(Severity::Error),
            "warnings": report.count(Severity::Warning),
            "accepted_by_baseline": report.accepted.len(),
            "stale_baseline_entries": report.stale_baseline_entries,
        },
        "scanned": {
            "history": coverage.history,
            "files": coverage.files,
            "blobs": coverage.blobs,
            "commits": coverage.commits,
            "refs": coverage.refs,
        },
        "skipped": {
            "max_file_bytes": coverage.max_file_bytes,
            "too_large": coverage.too_large,
            "too_large_paths": coverage.too_large_paths,
            "binary": coverage.binary,
        },
    });
    let mut text = serde_json::to_string_pretty(&document).unwrap_or_default();
    text.push('\n');
    text
}

fn json_finding(finding: &Finding) -> Json {
    json!({
        "rule": finding.rule.id(),
        "severity": match finding.rule.severity() {
            Severity::Error => "error",
            Severity::Warning => "warning",
        },
        "path": finding.path,
        "line": finding.line,
        "column": finding.column,
        "secret": finding.redacted,
        "message": finding.message(),
        "fingerprint": finding.fingerprint,
        "commit": finding.commit.as_ref().map(|commit| json!({
            "id": commit.id,
            "ref": commit.reference,
        })),
        "in_working_tree": finding.in_working_tree,
        "verification": finding.verification.as_ref().map(|verification| match verification {
            Verification::Unknown(why) => json!({"status": verification.as_str(), "reason": why}),
            _ => json!({"status": verification.as_str()}),
        }),
    })
}
