//! An access diff for people (terminal, pull-request comment) and for machines (JSON).

use std::collections::BTreeSet;
use std::fmt::Write;

use super::{AccessDiff, AttributeDiff, ChangeKind, Exposure, SubjectDiff, SubjectKind, Value};

pub fn json(diff: &AccessDiff) -> String {
    // Plain data: serializing it cannot fail.
    serde_json::to_string_pretty(diff).unwrap_or_default() + "\n"
}

pub fn human(diff: &AccessDiff, color: bool) -> String {
    let paint = |code: &str, text: &str| {
        if color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    };
    let mark_color = |mark: char| match mark {
        '+' => "32",
        '-' => "31",
        _ => "33",
    };
    let mut out = String::new();
    let (base, head) = labels(diff);
    if diff.changes.is_empty() {
        let _ = writeln!(
            out,
            "No access changes in `{}` from {base} to {head}.",
            diff.policies
        );
    } else {
        let _ = writeln!(
            out,
            "Access changes in `{}` from {base} to {head}:",
            diff.policies
        );
    }
    for subject in &diff.changes {
        let mark = change_mark(subject.change);
        let head = format!("{mark} {}", subject_title(subject));
        let _ = writeln!(out, "\n{}", paint(mark_color(mark), &paint("1", &head)));
        for attribute in &subject.attributes {
            for line in attribute_lines(subject.change, attribute) {
                let styled = match line.trim_start().chars().next() {
                    Some(mark @ ('+' | '-' | '~')) => paint(mark_color(mark), &line),
                    _ => line,
                };
                let _ = writeln!(out, "    {styled}");
            }
        }
    }
    out.push('\n');
    let exposure = &diff.exposure;
    if exposure.before == exposure.after {
        let _ = writeln!(
            out,
            "Maximum monthly spend exposure: {}, unchanged ({}).",
            amount(&exposure.after),
            exposure.after.basis
        );
    } else {
        let _ = writeln!(
            out,
            "Maximum monthly spend exposure: {}",
            paint("1", &exposure_change(&exposure.before, &exposure.after))
        );
        let _ = writeln!(out, "    before: {}", exposure.before.basis);
        let _ = writeln!(out, "    after: {}", exposure.after.basis);
    }
    if !diff.changes.is_empty() {
        let _ = writeln!(out, "{}", paint("1", &summary(diff)));
    }
    out
}

pub fn markdown(diff: &AccessDiff) -> String {
    let mut out = String::new();
    let (base, head) = labels(diff);
    let _ = writeln!(
        out,
        "### Access changes in {}: {base} → {head}\n",
        code(&diff.policies)
    );
    let exposure = &diff.exposure;
    if exposure.before == exposure.after {
        let _ = writeln!(
            out,
            "Maximum monthly spend exposure: **{}**, unchanged ({}).\n",
            amount(&exposure.after),
            exposure.after.basis
        );
    } else {
        let _ = writeln!(
            out,
            "> [!IMPORTANT]\n> Maximum monthly spend exposure: **{}**.  \n> Before: {}. After: {}.\n",
            exposure_change(&exposure.before, &exposure.after),
            exposure.before.basis,
            exposure.after.basis
        );
    }
    if diff.changes.is_empty() {
        let _ = writeln!(
            out,
            "No access changes: every key, team, member and workspace keeps the access it has."
        );
        return out;
    }
    let _ = writeln!(out, "{}\n", summary(diff));
    let _ = writeln!(out, "| | subject | attribute | change |");
    let _ = writeln!(out, "|:-:|---|---|---|");
    for subject in &diff.changes {
        let mark = match subject.change {
            ChangeKind::Added => "+",
            ChangeKind::Changed => "~",
            ChangeKind::Removed => "−",
        };
        let title = match subject.kind {
            SubjectKind::Organization => "organization".to_owned(),
            kind => format!("{} {}", kind.as_str(), code(&subject.name)),
        };
        for (index, attribute) in subject.attributes.iter().enumerate() {
            let (mark, title) = if index == 0 {
                (mark, title.as_str())
            } else {
                ("", "")
            };
            let _ = writeln!(
                out,
                "| {mark} | {title} | {} | {} |",
                attribute.name,
                cell(subject.change, attribute)
            );
        }
    }
    out
}

fn labels(diff: &AccessDiff) -> (String, String) {
    (
        diff.base.label(&diff.policies),
        diff.head.label(&diff.policies),
    )
}

fn change_mark(change: ChangeKind) -> char {
    match change {
        ChangeKind::Added => '+',
        ChangeKind::Changed => '~',
        ChangeKind::Removed => '-',
    }
}

fn subject_title(subject: &SubjectDiff) -> String {
    match subject.kind {
        SubjectKind::Organization => "organization".into(),
        kind => format!("{} {}", kind.as_str(), subject.name),
    }
}

fn summary(diff: &AccessDiff) -> String {
    let count = |kind| diff.count(kind);
    format!(
        "Access: {} added, {} changed, {} removed.",
        count(ChangeKind::Added),
        count(ChangeKind::Changed),
        count(ChangeKind::Removed)
    )
}

fn plain(value: &Value) -> String {
    match value {
        Value::Text(text) => text.clone(),
        Value::Set(items) if items.is_empty() => "(none)".into(),
        Value::Set(items) => items.iter().cloned().collect::<Vec<_>>().join(", "),
    }
}

/// The lines of one attribute: whole values for a subject added or removed; for a change,
/// `old → new`, or the items added and removed for a set.
fn attribute_lines(change: ChangeKind, attribute: &AttributeDiff) -> Vec<String> {
    let name = attribute.name;
    match (change, &attribute.before, &attribute.after) {
        (ChangeKind::Added, _, Some(value)) | (ChangeKind::Removed, Some(value), _) => {
            vec![format!("{name}: {}", plain(value))]
        }
        (_, Some(Value::Set(old)), Some(Value::Set(new))) => {
            let mut lines = vec![format!("~ {name}:")];
            lines.extend(new.difference(old).map(|item| format!("    + {item}")));
            lines.extend(old.difference(new).map(|item| format!("    - {item}")));
            lines
        }
        (_, Some(old), Some(new)) => vec![format!("~ {name}: {} → {}", plain(old), plain(new))],
        (_, None, Some(new)) => vec![format!("+ {name}: {}", plain(new))],
        (_, Some(old), None) => vec![format!("- {name}: {}", plain(old))],
        (_, None, None) => Vec::new(),
    }
}

/// A table cell: the value, or what changed in it.
fn cell(change: ChangeKind, attribute: &AttributeDiff) -> String {
    let codes = |items: &mut dyn Iterator<Item = &String>| {
        items.map(|item| code(item)).collect::<Vec<_>>().join(", ")
    };
    let value = |value: &Value| match value {
        Value::Text(text) => code(text),
        Value::Set(items) if items.is_empty() => "(none)".into(),
        Value::Set(items) => codes(&mut items.iter()),
    };
    match (change, &attribute.before, &attribute.after) {
        (ChangeKind::Added, _, Some(new)) | (ChangeKind::Removed, Some(new), _) => value(new),
        (_, Some(Value::Set(old)), Some(Value::Set(new))) => {
            let added: BTreeSet<&String> = new.difference(old).collect();
            let removed: BTreeSet<&String> = old.difference(new).collect();
            let mut parts = Vec::new();
            if !added.is_empty() {
                parts.push(format!("added {}", codes(&mut added.into_iter())));
            }
            if !removed.is_empty() {
                parts.push(format!("removed {}", codes(&mut removed.into_iter())));
            }
            parts.join("; ")
        }
        (_, Some(old), Some(new)) => format!("{} → {}", value(old), value(new)),
        (_, None, Some(new)) => format!("(none) → {}", value(new)),
        (_, Some(old), None) => format!("{} → (none)", value(old)),
        (_, None, None) => String::new(),
    }
}

/// Inline code that survives any text inside a table: backticks fenced by longer runs,
/// pipes escaped (GitHub splits cells on them even inside code).
fn code(text: &str) -> String {
    let longest = text.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    let fence = "`".repeat(longest + 1);
    let pad = if text.starts_with('`') || text.ends_with('`') {
        " "
    } else {
        ""
    };
    format!("{fence}{pad}{}{pad}{fence}", text.replace('|', "\\|"))
}

fn money(value: f64) -> String {
    let text = format!("{value:.2}");
    text.trim_end_matches('0').trim_end_matches('.').to_owned()
}

fn amount(exposure: &Exposure) -> String {
    exposure
        .amount
        .map_or_else(|| "unbounded".to_owned(), money)
}

fn exposure_change(before: &Exposure, after: &Exposure) -> String {
    let mut text = format!("{} → {}", amount(before), amount(after));
    if let (Some(old), Some(new)) = (before.amount, after.amount) {
        let delta = new - old;
        if delta.abs() >= 0.005 {
            let sign = if delta > 0.0 { "+" } else { "−" };
            let _ = write!(text, " ({sign}{})", money(delta.abs()));
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_spans_survive_backticks_and_pipes() {
        assert_eq!(code("plain"), "`plain`");
        assert_eq!(code("a`b"), "``a`b``");
        assert_eq!(code("`x"), "`` `x ``");
        assert_eq!(code("a|b"), "`a\\|b`");
    }

    #[test]
    fn money_has_at_most_two_decimals() {
        assert_eq!(money(2000.0), "2000");
        assert_eq!(money(0.1 + 0.2), "0.3");
        assert_eq!(money(25.5), "25.5");
    }
}
