//! The sticky plan comment: one per policy directory on a pull request, found again by a
//! hidden marker and updated in place on every push, as tfcmt and Atlantis do.
//!
//! A plan longer than one comment is split where the markdown allows (between blocks, or
//! inside a code block or a `<details>` by closing and reopening it), into at most
//! [`MAX_PARTS`] comments; each part carries its own marker, so a later, shorter plan
//! updates the parts it still needs and deletes the rest.

use std::fmt::Write;

use super::client::{Comment, GitHub, GitHubError, RepoName};
use crate::plan::Plan;
use crate::render::untrusted;

/// GitHub refuses a comment body over 65,536 characters; counting bytes stays under that
/// whatever the text.
pub const MAX_COMMENT_BYTES: usize = 65_536;
/// Comments one plan may take; past that the last one says where the rest is.
pub const MAX_PARTS: usize = 10;
/// Room kept in each part for its marker and the notes around the text.
const PART_OVERHEAD: usize = 1_024;

const MARKER_PREFIX: &str = "<!-- tramontane:plan dir=";

/// The hidden first line of part `part` (1-based) of the plan comment for `dir`.
pub fn marker(dir: &str, part: usize) -> String {
    if part <= 1 {
        format!("{MARKER_PREFIX}{} -->", encode_dir(dir))
    } else {
        format!("{MARKER_PREFIX}{} part={part} -->", encode_dir(dir))
    }
}

/// The policy directory and part a comment body's marker names, if its first line is
/// exactly a marker this tool writes. Anything looser (leading space, a quoted marker, extra
/// fields, another spelling of the same directory) could be text someone else put there.
pub fn parse_marker(body: &str) -> Option<(String, usize)> {
    let first = body.split('\n').next()?;
    let first = first.strip_suffix('\r').unwrap_or(first);
    let inner = first.strip_prefix(MARKER_PREFIX)?.strip_suffix(" -->")?;
    let (dir, part) = match inner.rsplit_once(" part=") {
        Some((dir, part)) => (dir, part.parse().ok().filter(|&n: &usize| n >= 2)?),
        None => (inner, 1),
    };
    let dir = decode_dir(dir)?;
    (marker(&dir, part) == first).then_some((dir, part))
}

/// Percent-encodes what would end the HTML comment or the marker's fields.
fn encode_dir(dir: &str) -> String {
    let mut out = String::new();
    for c in dir.chars() {
        match c {
            '%' | '>' | '<' | '"' | '\'' => {
                let _ = write!(out, "%{:02X}", c as u32);
            }
            c if c.is_whitespace() || c.is_control() => {
                let mut buffer = [0; 4];
                for byte in c.encode_utf8(&mut buffer).bytes() {
                    let _ = write!(out, "%{byte:02X}");
                }
            }
            c => out.push(c),
        }
    }
    out
}

fn decode_dir(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = text.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The policy directory as a comment names it: `/`-separated, without `./` or a trailing `/`.
pub fn comment_dir(dir: &str) -> String {
    let normalized = dir.replace('\\', "/");
    let parts: Vec<&str> = normalized
        .split('/')
        .filter(|part| !part.is_empty() && *part != ".")
        .collect();
    if parts.is_empty() {
        ".".into()
    } else {
        parts.join("/")
    }
}

/// What goes into the comment besides the plan.
pub struct Extras<'a> {
    /// Markdown sections shown below the plan, such as `tramontane diff --format markdown`.
    pub appendices: &'a [String],
    /// A page with the whole run (its plan artifact and job summary), linked from the comment.
    pub details_url: Option<&'a str>,
}

/// The text of the comment before it is split: the plan's markdown, or a short line when the
/// plan has no changes, then the appendices.
pub fn content(plan: &Plan, dir: &str, extras: &Extras<'_>) -> String {
    let mut out = String::new();
    if plan.has_changes() {
        out.push_str(&crate::render::plan::markdown_body(plan));
    } else {
        let _ = write!(
            out,
            "**tramontane plan** for {} against {}: no changes",
            untrusted::markdown_code(dir),
            untrusted::markdown_code(&plan.live.org)
        );
        let mut notes = Vec::new();
        if !plan.unmanaged.is_empty() {
            notes.push(format!(
                "{} unmanaged resource(s) left alone",
                plan.unmanaged.len()
            ));
        }
        if !plan.warnings.is_empty() {
            notes.push(format!("{} warning(s)", plan.warnings.len()));
        }
        // It matches only if nothing is left over: objects the policy does not name, or a
        // warning, are not a match.
        if notes.is_empty() {
            out.push_str("; the organization matches the policy.");
        } else {
            let _ = write!(out, ". {}.", capitalize(&notes.join(", ")));
        }
        if let Some(url) = extras.details_url {
            let _ = write!(out, " [Details]({url}).");
        }
        out.push('\n');
    }
    for appendix in extras.appendices {
        let appendix = appendix.trim();
        if !appendix.is_empty() {
            let _ = write!(out, "\n{appendix}\n");
        }
    }
    if plan.has_changes()
        && let Some(url) = extras.details_url
    {
        let _ = write!(
            out,
            "\n<sub>Policy directory {}. [The run]({url}) holds the plan as an artifact.</sub>\n",
            untrusted::markdown_code(dir)
        );
    }
    out
}

fn capitalize(text: &str) -> String {
    let mut chars = text.chars();
    chars.next().map_or_else(String::new, |first| {
        first.to_uppercase().collect::<String>() + chars.as_str()
    })
}

/// The comment for `dir` when planning failed: the plan shown before is out of date and must
/// not stay on the pull request looking current.
pub fn failure_body(dir: &str, details_url: Option<&str>) -> String {
    let why = match details_url {
        Some(url) => format!("[The run]({url}) says why."),
        None => "The workflow run says why.".to_owned(),
    };
    format!(
        "{}\n**tramontane plan** for {} failed on the latest push, so no plan is shown. {why}\n",
        marker(dir, 1),
        untrusted::markdown_code(dir)
    )
}

/// The comment bodies for `dir`, each under GitHub's limit, each starting with its marker.
pub fn bodies(plan: &Plan, dir: &str, extras: &Extras<'_>) -> Vec<String> {
    bodies_within(
        &content(plan, dir, extras),
        dir,
        extras.details_url,
        MAX_COMMENT_BYTES,
    )
}

fn bodies_within(content: &str, dir: &str, details_url: Option<&str>, limit: usize) -> Vec<String> {
    let budget = limit
        .saturating_sub(PART_OVERHEAD + 2 * marker(dir, MAX_PARTS).len())
        .max(1);
    let mut chunks = split_markdown(content, budget);
    let mut left_out = 0;
    if chunks.len() > MAX_PARTS {
        left_out = chunks.len() - MAX_PARTS;
        chunks.truncate(MAX_PARTS);
    }
    let count = chunks.len();
    chunks
        .into_iter()
        .enumerate()
        .map(|(index, chunk)| {
            let part = index + 1;
            let mut body = marker(dir, part);
            body.push('\n');
            if part > 1 {
                let _ = write!(
                    body,
                    "<sub>tramontane plan for {}, continued (part {part} of {count}).</sub>\n\n",
                    untrusted::markdown_code(dir)
                );
            }
            body.push_str(&chunk);
            if part < count {
                let _ = write!(
                    body,
                    "\n<sub>Continued in the next comment (part {part} of {count}).</sub>\n"
                );
            } else if left_out > 0 {
                let _ = write!(
                    body,
                    "\n> [!WARNING]\n> This plan is too long for {MAX_PARTS} comments: {left_out} more part(s) are not shown. "
                );
                match details_url {
                    Some(url) => {
                        let _ = writeln!(body, "[The run]({url}) holds the whole plan as an artifact and in its summary.");
                    }
                    None => body.push_str(
                        "Run `tramontane show plan.json` on the saved plan to see all of it.\n",
                    ),
                }
            }
            body
        })
        .collect()
}

/// A construct that must be closed at the end of a part and reopened in the next.
#[derive(Clone, Debug)]
enum Open {
    /// A fenced code block, by its opening line.
    Fence(String),
    /// A `<details>` element, by its opening line.
    Details(String),
}

/// The fence a line opens or closes. As in CommonMark, a fence is indented by at most three
/// spaces: a deeper line (text in a code block, such as a description line reading ```)
/// is content, and taking it for a fence would split the comment in the wrong place.
fn fence_of(line: &str) -> Option<&str> {
    let indent = line.len() - line.trim_start_matches(' ').len();
    if indent > 3 {
        return None;
    }
    let trimmed = &line[indent..];
    ["```", "~~~"]
        .into_iter()
        .find(|fence| trimmed.starts_with(fence))
}

/// The constructs open after `line`, given those open before it.
fn advance(stack: &[Open], line: &str) -> Vec<Open> {
    let mut stack = stack.to_vec();
    if let Some(Open::Fence(opening)) = stack.last() {
        let closes = fence_of(opening).is_some_and(|fence| {
            fence_of(line) == Some(fence) && line.trim().chars().all(|c| c == '`' || c == '~')
        });
        if closes {
            stack.pop();
        }
        return stack;
    }
    if fence_of(line).is_some() {
        stack.push(Open::Fence(line.trim_end().to_owned()));
        return stack;
    }
    for _ in 0..line.matches("<details").count() {
        stack.push(Open::Details(line.trim_end().to_owned()));
    }
    for _ in 0..line.matches("</details>").count() {
        if matches!(stack.last(), Some(Open::Details(_))) {
            stack.pop();
        }
    }
    stack
}

fn closers(stack: &[Open]) -> String {
    stack
        .iter()
        .rev()
        .map(|open| match open {
            Open::Fence(opening) => format!("{}\n", fence_of(opening).unwrap_or("```")),
            Open::Details(_) => "</details>\n".to_owned(),
        })
        .collect()
}

fn reopeners(stack: &[Open]) -> String {
    stack
        .iter()
        .map(|open| match open {
            Open::Fence(opening) => format!("{opening}\n"),
            // The blank line lets GitHub render markdown inside the element.
            Open::Details(opening) => format!("{opening}\n\n"),
        })
        .collect()
}

/// Splits markdown into chunks of at most `budget` bytes, never inside a construct that the
/// split would break: between top-level blocks when it can, otherwise between lines with
/// open code blocks and `<details>` closed and reopened, and a table's header repeated.
pub fn split_markdown(text: &str, budget: usize) -> Vec<String> {
    // Top-level blocks: runs of lines ending at a blank line outside any construct.
    let mut blocks: Vec<String> = Vec::new();
    let mut block = String::new();
    let mut stack: Vec<Open> = Vec::new();
    for line in text.split_inclusive('\n') {
        block.push_str(line);
        stack = advance(&stack, line);
        if stack.is_empty() && line.trim().is_empty() {
            blocks.push(std::mem::take(&mut block));
        }
    }
    if !block.is_empty() {
        blocks.push(block);
    }

    let mut chunks = Vec::new();
    let mut current = String::new();
    for block in blocks {
        if current.len() + block.len() <= budget {
            current.push_str(&block);
            continue;
        }
        if !current.is_empty() {
            chunks.push(std::mem::take(&mut current));
        }
        if block.len() <= budget {
            current = block;
        } else {
            let mut pieces = split_block(&block, budget);
            current = pieces.pop().unwrap_or_default();
            chunks.extend(pieces);
        }
    }
    if !current.is_empty() || chunks.is_empty() {
        chunks.push(current);
    }
    chunks
}

/// Splits one block larger than `budget` between its lines.
fn split_block(block: &str, budget: usize) -> Vec<String> {
    let mut chunks = Vec::new();
    let mut current = String::new();
    // Whether `current` holds more than what was reopened from the previous chunk.
    let mut fresh = true;
    let mut stack: Vec<Open> = Vec::new();
    let mut table_header: Option<String> = None;
    let mut previous_line = String::new();
    // A line too long for any chunk is cut at a character boundary: rare, and only in text.
    let piece = (budget / 4).max(1);
    for line in block.split_inclusive('\n') {
        let next_stack = advance(&stack, line);
        let is_table_row = line.trim_start().starts_with('|');
        if is_table_row
            && table_header.is_none()
            && is_table_separator(line)
            && previous_line.trim_start().starts_with('|')
        {
            table_header = Some(format!("{previous_line}{line}"));
        } else if !is_table_row {
            table_header = None;
        }
        for part in cut(line, piece) {
            if !fresh && current.len() + part.len() + closers(&next_stack).len() > budget {
                current.push_str(&closers(&stack));
                chunks.push(std::mem::take(&mut current));
                current.push_str(&reopeners(&stack));
                if is_table_row && let Some(header) = &table_header {
                    current.push_str(header);
                }
            }
            current.push_str(part);
            fresh = false;
        }
        stack = next_stack;
        previous_line = line.to_owned();
    }
    if !current.is_empty() {
        chunks.push(current);
    }
    // Constructs nested deeper than any real plan could still overflow: cut as a last resort.
    chunks
        .into_iter()
        .flat_map(|chunk| {
            if chunk.len() <= budget {
                vec![chunk]
            } else {
                cut(&chunk, budget).into_iter().map(str::to_owned).collect()
            }
        })
        .collect()
}

fn is_table_separator(line: &str) -> bool {
    let trimmed = line.trim();
    trimmed.starts_with('|')
        && trimmed.contains('-')
        && trimmed.chars().all(|c| matches!(c, '|' | '-' | ':' | ' '))
}

/// `text` in pieces of at most `size` bytes, cut at character boundaries.
fn cut(text: &str, size: usize) -> Vec<&str> {
    let mut pieces = Vec::new();
    let mut rest = text;
    while rest.len() > size {
        let mut end = size;
        while !rest.is_char_boundary(end) {
            end -= 1;
        }
        if end == 0 {
            end = rest.chars().next().map_or(rest.len(), char::len_utf8);
        }
        pieces.push(&rest[..end]);
        rest = &rest[end..];
    }
    if !rest.is_empty() || pieces.is_empty() {
        pieces.push(rest);
    }
    pieces
}

/// What happened to one part of the comment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Created,
    Updated,
    /// Already the text it should be: not written again.
    Unchanged,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Created => "created",
            Outcome::Updated => "updated",
            Outcome::Unchanged => "unchanged",
        }
    }
}

#[derive(Clone, Debug)]
pub struct PostedPart {
    pub part: usize,
    pub outcome: Outcome,
    pub url: String,
}

#[derive(Clone, Debug, Default)]
pub struct SyncReport {
    pub parts: Vec<PostedPart>,
    /// Parts of an earlier, longer plan (or duplicates) deleted.
    pub deleted: usize,
}

/// Where the comment goes and whose earlier comments count as ours.
pub struct Target<'a> {
    pub repo: &'a RepoName,
    pub number: u64,
    pub dir: &'a str,
    /// Only comments by this login are updated or deleted; `None` trusts the marker alone.
    pub author: Option<&'a str>,
}

/// Makes the pull request hold exactly `bodies` as the plan comment for `target.dir`:
/// earlier parts are updated in place, missing ones created, extra ones deleted.
pub async fn sync(
    github: &GitHub,
    target: &Target<'_>,
    bodies: &[String],
) -> Result<SyncReport, GitHubError> {
    let comments = github.list_comments(target.repo, target.number).await?;
    let mut ours: Vec<(usize, Comment)> = comments
        .into_iter()
        .filter(|comment| match (target.author, &comment.user) {
            (Some(author), Some(user)) => user.login.eq_ignore_ascii_case(author),
            (Some(_), None) => false,
            (None, _) => true,
        })
        .filter_map(|comment| {
            let (dir, part) = parse_marker(comment.body.as_deref()?)?;
            (dir == target.dir).then_some((part, comment))
        })
        .collect();
    // The oldest comment of each part is the one kept: it sits where the thread first showed it.
    ours.sort_by_key(|(part, comment)| (*part, comment.id));

    let mut report = SyncReport::default();
    for (index, body) in bodies.iter().enumerate() {
        let part = index + 1;
        let existing = ours
            .iter()
            .position(|(p, _)| *p == part)
            .map(|at| ours.remove(at).1);
        let posted = match existing {
            Some(comment) if comment.body.as_deref() == Some(body.as_str()) => PostedPart {
                part,
                outcome: Outcome::Unchanged,
                url: comment.html_url,
            },
            Some(comment) => {
                let updated = github.update_comment(target.repo, comment.id, body).await?;
                PostedPart {
                    part,
                    outcome: Outcome::Updated,
                    url: updated.html_url,
                }
            }
            None => {
                let created = github
                    .create_comment(target.repo, target.number, body)
                    .await?;
                PostedPart {
                    part,
                    outcome: Outcome::Created,
                    url: created.html_url,
                }
            }
        };
        report.parts.push(posted);
    }
    for (_, stale) in ours {
        github.delete_comment(target.repo, stale.id).await?;
        report.deleted += 1;
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_round_trip_any_directory() {
        for dir in ["policies", "org/prod policies", "a-->b", "100%", "été"] {
            for part in [1, 2, 10] {
                let line = marker(dir, part);
                assert!(!line[4..line.len() - 3].contains("-->"), "{line}");
                assert_eq!(parse_marker(&line), Some((dir.to_owned(), part)), "{line}");
            }
        }
        assert_eq!(
            marker("policies", 1),
            "<!-- tramontane:plan dir=policies -->"
        );
        assert_eq!(
            marker("policies", 3),
            "<!-- tramontane:plan dir=policies part=3 -->"
        );
        assert_eq!(parse_marker("<!-- tramontane:plan -->\n### plan"), None);
        assert_eq!(
            parse_marker("> <!-- tramontane:plan dir=policies -->"),
            None
        );
        assert_eq!(parse_marker("<!-- tramontane:plan dir=x part=0 -->"), None);
        // Only the exact form this tool writes.
        for loose in [
            " <!-- tramontane:plan dir=policies -->",
            "<!-- tramontane:plan dir=policies -->  ",
            "<!-- tramontane:plan dir=policies  -->",
            "<!-- tramontane:plan dir=policies part=1 -->",
            "<!-- tramontane:plan dir=policies part=02 -->",
            "<!-- tramontane:plan dir=%70olicies -->",
            "<!-- tramontane:plan dir=policies extra -->",
            "text\n<!-- tramontane:plan dir=policies -->",
        ] {
            assert_eq!(parse_marker(loose), None, "{loose:?}");
        }
        assert_eq!(
            parse_marker("<!-- tramontane:plan dir=policies -->\r\nbody"),
            Some(("policies".into(), 1))
        );
    }

    #[test]
    fn directories_are_named_the_same_however_written() {
        assert_eq!(comment_dir("./policies/"), "policies");
        assert_eq!(comment_dir("org\\prod"), "org/prod");
        assert_eq!(comment_dir("."), ".");
    }

    #[test]
    fn a_fence_indented_past_three_spaces_is_content() {
        let text = "```diff\n+ description:\n      ```\n      </details>\n```\n\nafter\n";
        let stack = text
            .split_inclusive('\n')
            .take(4)
            .fold(Vec::new(), |stack, line| advance(&stack, line));
        assert!(matches!(stack.as_slice(), [Open::Fence(_)]), "{stack:?}");
        assert_eq!(split_markdown(text, 1000), vec![text]);
    }

    #[test]
    fn small_text_is_one_chunk() {
        assert_eq!(split_markdown("a\n\nb\n", 100), vec!["a\n\nb\n"]);
    }

    #[test]
    fn chunks_break_between_blocks() {
        let text =
            "para one\n\n<details><summary>x</summary>\n\ninside\n\n</details>\n\npara three\n";
        let chunks = split_markdown(text, 60);
        assert_eq!(
            chunks,
            vec![
                "para one\n\n",
                "<details><summary>x</summary>\n\ninside\n\n</details>\n\n",
                "para three\n"
            ]
        );
        assert_eq!(chunks.concat(), text);
    }

    #[test]
    fn a_code_block_too_long_is_closed_and_reopened() {
        let mut text = String::from("<details><summary>big</summary>\n\n```diff\n");
        for i in 0..40 {
            text.push_str(&format!("+ line {i:02}\n"));
        }
        text.push_str("```\n</details>\n");
        let chunks = split_markdown(&text, 200);
        assert!(chunks.len() > 1);
        for chunk in &chunks {
            assert!(chunk.len() <= 200, "{chunk}");
            assert_eq!(chunk.matches("```").count() % 2, 0, "{chunk}");
            assert_eq!(
                chunk.matches("<details>").count(),
                chunk.matches("</details>").count(),
                "{chunk}"
            );
        }
        assert!(chunks[1].starts_with("<details><summary>big</summary>\n\n```diff\n+ line"));
        // Every line of the original survives, in order.
        let joined = chunks.concat();
        let lines: Vec<&str> = joined.lines().filter(|l| l.starts_with("+ line")).collect();
        assert_eq!(lines.len(), 40);
        assert!(lines.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn a_table_too_long_repeats_its_header() {
        let mut text = String::from("| a | b |\n|---|---|\n");
        for i in 0..30 {
            text.push_str(&format!("| {i} | x |\n"));
        }
        let chunks = split_markdown(&text, 120);
        assert!(chunks.len() > 1);
        for chunk in &chunks {
            assert!(chunk.starts_with("| a | b |\n|---|---|\n"), "{chunk}");
            assert!(chunk.len() <= 120);
        }
    }

    #[test]
    fn a_huge_line_is_cut_at_character_boundaries() {
        let text = "é".repeat(500);
        let chunks = split_markdown(&text, 101);
        assert!(chunks.iter().all(|c| c.len() <= 101));
        assert_eq!(chunks.concat(), text);
    }

    #[test]
    fn more_parts_than_allowed_end_with_a_pointer() {
        let content: String = (0..400).map(|i| format!("paragraph {i}\n\n")).collect();
        let bodies = bodies_within(
            &content,
            "policies",
            Some("https://ci.example/run/1"),
            1_400,
        );
        assert_eq!(bodies.len(), MAX_PARTS);
        let last = bodies.last().unwrap();
        assert!(last.contains("too long for 10 comments"), "{last}");
        assert!(
            last.contains("[The run](https://ci.example/run/1)"),
            "{last}"
        );
        assert!(bodies.iter().all(|b| b.len() <= 1_400));
    }

    #[test]
    fn no_changes_claims_a_match_only_with_nothing_left_over() {
        let extras = Extras {
            appendices: &[],
            details_url: None,
        };
        let mut plan = Plan::of_changes("mistral", Vec::new());
        assert_eq!(
            content(&plan, "policies", &extras),
            "**tramontane plan** for `policies` against `mistral`: no changes; the organization matches the policy.\n"
        );
        plan.warnings.push("a warning".into());
        assert_eq!(
            content(&plan, "policies", &extras),
            "**tramontane plan** for `policies` against `mistral`: no changes. 1 warning(s).\n"
        );
    }
}
