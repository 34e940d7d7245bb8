//! Validation results as rustc-style frames, as JSON, and as GitHub workflow commands.

use annotate_snippets::{AnnotationKind, Group, Level, Origin, Renderer, Snippet};
use serde::Serialize;

use crate::policy::LoadedPolicy;
use crate::policy::diagnostic::{Diagnostic, Severity};
use crate::policy::source::{Position, SourceFile, SourceSet, Span};

/// The human rendering: one frame per problem, then a summary line.
pub fn human(loaded: &LoadedPolicy, policy_dir: &str, color: bool) -> String {
    let renderer = frame_renderer(color);
    let mut out = String::new();
    for diagnostic in &loaded.diagnostics {
        out.push_str(&renderer.render(&frame(diagnostic, &loaded.sources)));
        out.push_str("\n\n");
    }
    let errors = loaded.error_count();
    let warnings = loaded.warning_count();
    let files = loaded.sources.len();
    let files = format!("{files} file{}", plural(files));
    if errors > 0 {
        let mut summary = format!(
            "could not validate `{policy_dir}`: {errors} error{}",
            plural(errors)
        );
        if warnings > 0 {
            summary.push_str(&format!(", {warnings} warning{}", plural(warnings)));
        }
        summary.push_str(&format!(" in {files}"));
        out.push_str(&renderer.render(&[Group::with_title(Level::ERROR.primary_title(summary))]));
    } else {
        let mut summary = format!("`{policy_dir}` is valid: {files}");
        if warnings > 0 {
            summary.push_str(&format!(", {warnings} warning{}", plural(warnings)));
        }
        out.push_str(&summary);
    }
    out.push('\n');
    out
}

/// What draws rustc-style frames: with ANSI styles where `color`, plain otherwise.
pub(crate) fn frame_renderer(color: bool) -> Renderer {
    if color {
        Renderer::styled()
    } else {
        Renderer::plain()
    }
}

fn plural(count: usize) -> &'static str {
    if count == 1 { "" } else { "s" }
}

fn level(severity: Severity) -> Level<'static> {
    match severity {
        Severity::Error => Level::ERROR,
        Severity::Warning => Level::WARNING,
    }
}

/// The lines a span underlines, clamped to its first line: a whole mapping underlined over
/// twenty lines helps nobody.
fn byte_range(file: &SourceFile, span: Span, first_line_start: usize) -> std::ops::Range<usize> {
    let start = file.byte_offset(span.start);
    let line_start = file.byte_offset(Position {
        line: span.start.line,
        column: 1,
    });
    let line_end = line_start + file.line_text(span.start.line).len();
    let mut end = if span.end.line == span.start.line {
        file.byte_offset(span.end)
    } else {
        line_end
    };
    if end <= start {
        // A point: underline the character there, if there is one.
        end = (start + file.text[start..].chars().next().map_or(0, char::len_utf8)).min(line_end);
    }
    (start - first_line_start)..(end.max(start) - first_line_start)
}

fn frame<'a>(diagnostic: &'a Diagnostic, sources: &'a SourceSet) -> Vec<Group<'a>> {
    let title = || {
        level(diagnostic.severity())
            .primary_title(diagnostic.message.as_str())
            .id(diagnostic.code.as_str())
    };
    let mut group = match (diagnostic.span, &diagnostic.path) {
        (Some(span), _) => {
            let mut snippets = Vec::new();
            let mut spans: Vec<(Span, Option<&str>, bool)> =
                vec![(span, diagnostic.label.as_deref(), true)];
            spans.extend(
                diagnostic
                    .notes
                    .iter()
                    .map(|note| (note.span, Some(note.label.as_str()), false)),
            );
            // One snippet per file, covering the lines its annotations touch.
            let mut ordered = vec![span.file];
            for (other, ..) in &spans {
                if !ordered.contains(&other.file) {
                    ordered.push(other.file);
                }
            }
            for file_id in ordered {
                let source = sources.get(file_id);
                let here: Vec<_> = spans.iter().filter(|(s, ..)| s.file == file_id).collect();
                let first = here.iter().map(|(s, ..)| s.start.line).min().unwrap_or(1);
                let last = here.iter().map(|(s, ..)| s.start.line).max().unwrap_or(1);
                let start_byte = source.byte_offset(Position {
                    line: first,
                    column: 1,
                });
                let end_byte = source.byte_offset(Position {
                    line: last,
                    column: u32::MAX,
                });
                let mut snippet = Snippet::source(&source.text[start_byte..end_byte])
                    .line_start(first as usize)
                    .path(source.display.as_str());
                for (s, label, primary) in here {
                    let kind = if *primary {
                        AnnotationKind::Primary
                    } else {
                        AnnotationKind::Context
                    };
                    let mut annotation = kind.span(byte_range(source, *s, start_byte));
                    if let Some(label) = label {
                        annotation = annotation.label(*label);
                    }
                    snippet = snippet.annotation(annotation);
                }
                snippets.push(snippet);
            }
            title().elements(snippets)
        }
        // A problem of a whole file or directory: name it, there is no line to show.
        (None, Some(path)) => title().element(Origin::path(path.as_str())),
        (None, None) => Group::with_title(title()),
    };
    if let Some(help) = &diagnostic.help {
        group = group.element(Level::HELP.message(help.as_str()));
    }
    vec![group]
}

/// One element of the `--format json` array. The field set is a stable contract.
#[derive(Serialize)]
pub struct JsonDiagnostic<'a> {
    pub file: Option<&'a str>,
    pub line: Option<u32>,
    pub column: Option<u32>,
    pub code: &'static str,
    pub severity: &'static str,
    pub message: &'a str,
    pub help: Option<&'a str>,
}

pub fn json(loaded: &LoadedPolicy) -> String {
    let items: Vec<JsonDiagnostic<'_>> = loaded
        .diagnostics
        .iter()
        .map(|diagnostic| {
            let file = diagnostic
                .span
                .map(|span| loaded.sources.get(span.file).display.as_str())
                .or(diagnostic.path.as_deref());
            JsonDiagnostic {
                file,
                line: diagnostic.span.map(|span| span.start.line),
                column: diagnostic.span.map(|span| span.start.column),
                code: diagnostic.code.as_str(),
                severity: diagnostic.severity().as_str(),
                message: &diagnostic.message,
                help: diagnostic.help.as_deref(),
            }
        })
        .collect();
    let mut out = serde_json::to_string_pretty(&items).expect("diagnostics always serialize");
    out.push('\n');
    out
}

/// GitHub Actions workflow commands: each problem becomes an annotation on its line.
pub fn github(loaded: &LoadedPolicy) -> String {
    let mut out = String::new();
    for diagnostic in &loaded.diagnostics {
        let command = match diagnostic.severity() {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        let mut properties = Vec::new();
        let file = diagnostic
            .span
            .map(|span| loaded.sources.get(span.file).display.as_str())
            .or(diagnostic.path.as_deref());
        if let Some(file) = file {
            properties.push(format!("file={}", escape_property(file)));
        }
        if let Some(span) = diagnostic.span {
            properties.push(format!("line={}", span.start.line));
            properties.push(format!("col={}", span.start.column));
        }
        properties.push(format!(
            "title={}",
            escape_property(diagnostic.code.as_str())
        ));
        let mut message = diagnostic.message.clone();
        if let Some(help) = &diagnostic.help {
            message.push_str("\nhelp: ");
            message.push_str(help);
        }
        out.push_str(&format!(
            "::{command} {}::{}\n",
            properties.join(","),
            escape_data(&message)
        ));
    }
    out
}

fn escape_data(text: &str) -> String {
    text.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

fn escape_property(text: &str) -> String {
    escape_data(text).replace(':', "%3A").replace(',', "%2C")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workflow_commands_escape_their_separators() {
        assert_eq!(escape_property("a,b:c%"), "a%2Cb%3Ac%25");
        assert_eq!(escape_data("one\ntwo: 100%"), "one%0Atwo: 100%25");
    }
}
