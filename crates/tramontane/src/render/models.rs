//! `tramontane models diff`: how a live model list differs from the bundled records, for
//! people and as JSON.

use std::fmt::Write;

use jiff::civil::Date;
use serde_json::json;

use crate::policy::catalog::drift::Drift;
use crate::policy::catalog::records::Source;

/// The version of the JSON below: a stable contract, as a plan's is.
pub const FORMAT_VERSION: &str = "1";

/// What the comparison was made between.
pub struct Compared<'a> {
    /// Where the bundled records come from.
    pub records: &'a Source,
    /// Where the live list was read: `mistral`, a sandbox, or a file.
    pub live: &'a str,
    /// The day lifecycles were judged on.
    pub today: Date,
}

pub fn human(drift: &Drift, compared: &Compared<'_>) -> String {
    let mut out = String::new();
    let source = compared.records;
    let short = source.commit.get(..12).unwrap_or(&source.commit);
    let _ = writeln!(
        out,
        "Bundled: Mistral's model records, {}@{short} ({})",
        source.repository, source.date
    );
    let _ = writeln!(
        out,
        "Live:    {} (judged on {})",
        compared.live, compared.today
    );
    if drift.is_empty() {
        out.push_str("\nThe live models match the bundled records.\n");
        return out;
    }
    if !drift.new.is_empty() {
        let _ = writeln!(out, "\nNew: served, not in the records");
        for model in &drift.new {
            let _ = writeln!(out, "  + {}", model.ids.join(", "));
        }
    }
    if !drift.retired_but_served.is_empty() {
        let _ = writeln!(out, "\nRetired in the records, still served");
        for model in &drift.retired_but_served {
            let mut line = format!("  ! {}", model.id);
            if model.served_as != [model.id.clone()] {
                let _ = write!(line, " (served as {})", model.served_as.join(", "));
            }
            if let Some(day) = &model.retired {
                let _ = write!(line, ": retired {day}");
            }
            if let Some(replacement) = &model.replacement {
                let _ = write!(line, ", replaced by {replacement}");
            }
            let _ = writeln!(out, "{line}");
        }
    }
    if !drift.not_served.is_empty() {
        let _ = writeln!(out, "\nIn the records, not served");
        for model in &drift.not_served {
            let _ = writeln!(out, "  - {} ({})", model.id, model.stage);
        }
    }
    if !drift.realiased.is_empty() {
        let _ = writeln!(out, "\nRe-aliased: the alias points elsewhere live");
        for alias in &drift.realiased {
            let _ = writeln!(
                out,
                "  ~ {}: {} in the records, {} live",
                alias.alias, alias.records, alias.live
            );
        }
    }
    let _ = writeln!(
        out,
        "\n{} new, {} retired but served, {} not served, {} re-aliased.",
        drift.new.len(),
        drift.retired_but_served.len(),
        drift.not_served.len(),
        drift.realiased.len()
    );
    if !drift.new.is_empty() || !drift.realiased.is_empty() {
        out.push_str(
            "Regenerate catalog/mistral-models.json (catalog/README.md), or declare new models under `models:` in the policy.\n",
        );
    }
    out
}

pub fn json(drift: &Drift, compared: &Compared<'_>) -> String {
    let source = compared.records;
    let value = json!({
        "format_version": FORMAT_VERSION,
        "records": {
            "repository": source.repository,
            "commit": source.commit,
            "path": source.path,
            "date": source.date.to_string(),
        },
        "live": compared.live,
        "today": compared.today.to_string(),
        "new": drift.new,
        "retired_but_served": drift.retired_but_served,
        "not_served": drift.not_served,
        "realiased": drift.realiased,
    });
    let mut text = serde_json::to_string_pretty(&value).expect("a JSON value always serializes");
    text.push('\n');
    text
}
