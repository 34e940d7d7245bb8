//! The audit report for people (human, markdown) and for programs (json, csv).

use std::fmt::Write;

use serde_json::json;

use super::{AuditReport, Severity};
use crate::render::untrusted;

/// The version of the JSON report's shape; bumped only on a breaking change.
pub const FORMAT_VERSION: &str = "1";

/// One block per finding, most severe first, then a summary line.
pub fn human(report: &AuditReport, color: bool) -> String {
    let mut out = String::new();
    for finding in &report.findings {
        let severity = finding.severity.as_str().to_uppercase();
        let severity = if color {
            let code = match finding.severity {
                Severity::Critical | Severity::High => "31",
                Severity::Medium => "33",
                Severity::Low => "36",
            };
            format!("\x1b[1;{code}m{severity}\x1b[0m")
        } else {
            severity
        };
        let _ = writeln!(
            out,
            "{severity} {} {}",
            finding.rule.id(),
            untrusted::terminal(&finding.address)
        );
        let _ = writeln!(out, "  {}", untrusted::terminal(&finding.message));
        match &finding.source {
            Some(source) => {
                let _ = writeln!(
                    out,
                    "  policy: {}",
                    untrusted::terminal(&source.to_string())
                );
            }
            None if !finding.managed => {
                let _ = writeln!(out, "  policy: none (not in the policy)");
            }
            None => {}
        }
        let _ = writeln!(out, "  fix: {}", untrusted::terminal(&finding.remedy));
        let _ = writeln!(out, "  id: {}", untrusted::terminal(&finding.id));
        out.push('\n');
    }
    out.push_str(&summary(report));
    out.push('\n');
    out
}

/// `Audit: 2 high, 5 medium, 1 low (8 findings) on 2026-06-01.`
fn summary(report: &AuditReport) -> String {
    if report.findings.is_empty() {
        return format!("Audit: no findings on {}.", report.today);
    }
    let counts: Vec<String> = Severity::ALL
        .iter()
        .filter(|severity| report.count(**severity) > 0)
        .map(|severity| format!("{} {}", report.count(*severity), severity.as_str()))
        .collect();
    format!(
        "Audit: {} ({} finding{}) on {}.",
        counts.join(", "),
        report.findings.len(),
        if report.findings.len() == 1 { "" } else { "s" },
        report.today
    )
}

/// The versioned JSON report.
pub fn json(report: &AuditReport) -> String {
    let summary: serde_json::Map<String, serde_json::Value> = Severity::ALL
        .iter()
        .map(|severity| (severity.as_str().to_owned(), json!(report.count(*severity))))
        .collect();
    let value = json!({
        "format_version": FORMAT_VERSION,
        "today": report.today.to_string(),
        "summary": summary,
        "findings": report.findings,
    });
    let mut text = serde_json::to_string_pretty(&value).unwrap_or_default();
    text.push('\n');
    text
}

/// One row per finding, RFC 4180 quoting.
pub fn csv(report: &AuditReport) -> String {
    let mut out = String::from("id,rule,severity,kind,address,managed,policy,message,remedy\r\n");
    for finding in &report.findings {
        let kind = match finding.kind {
            super::ObjectKind::ApiKey => "api_key",
            super::ObjectKind::Member => "member",
            super::ObjectKind::Organization => "organization",
            super::ObjectKind::Team => "team",
            super::ObjectKind::Workspace => "workspace",
        };
        let policy = finding
            .source
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default();
        let fields = [
            finding.id.as_str(),
            finding.rule.id(),
            finding.severity.as_str(),
            kind,
            finding.address.as_str(),
            if finding.managed { "true" } else { "false" },
            policy.as_str(),
            finding.message.as_str(),
            finding.remedy.as_str(),
        ];
        let row: Vec<String> = fields.iter().map(|field| csv_field(field)).collect();
        out.push_str(&row.join(","));
        out.push_str("\r\n");
    }
    out
}

pub(crate) fn csv_field(text: &str) -> String {
    // Live names reach the message: a control character (an ANSI escape, a carriage return
    // that repaints the line, a tab before a formula) is shown as a visible escape, as on a
    // terminal, and a row stays one line.
    let text = crate::render::untrusted::terminal(text);
    // A leading `=`, `+`, `-` or `@` makes a spreadsheet run the cell as a formula: a
    // live name is not trusted to be harmless.
    let guarded = if text.starts_with(['=', '+', '-', '@']) {
        format!("'{text}")
    } else {
        text.into_owned()
    };
    if guarded.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", guarded.replace('"', "\"\""))
    } else {
        guarded
    }
}

/// A summary table and one row per finding, for a pull request or an issue.
pub fn markdown(report: &AuditReport) -> String {
    let mut out = String::from("## tramontane audit\n\n");
    if report.findings.is_empty() {
        let _ = writeln!(out, "No findings on {}.", report.today);
        return out;
    }
    out.push_str("| severity | findings |\n|---|---:|\n");
    for severity in Severity::ALL {
        let _ = writeln!(
            out,
            "| {} | {} |",
            severity.as_str(),
            report.count(severity)
        );
    }
    let _ = writeln!(out, "\nAs of {}.\n", report.today);
    out.push_str(
        "| severity | rule | address | finding | policy | fix |\n|---|---|---|---|---|---|\n",
    );
    for finding in &report.findings {
        let policy = finding
            .source
            .as_ref()
            .map(|source| untrusted::markdown_code(&source.to_string()))
            .unwrap_or_else(|| "not in the policy".into());
        let _ = writeln!(
            out,
            "| {} | `{}` | {} | {} | {} | {} |",
            finding.severity.as_str(),
            finding.rule.id(),
            untrusted::markdown_code(&finding.address),
            untrusted::markdown_with_code(&finding.message),
            policy,
            untrusted::markdown_with_code(&finding.remedy),
        );
    }
    out
}
