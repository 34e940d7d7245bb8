//! Text that tramontane did not write — names, descriptions and key names read from the
//! organization, and anything built from them — made safe for where it is shown.
//!
//! A member can name themselves `</code></summary><!-- tramontane:plan … -->`, a key can
//! carry an ANSI escape or a carriage return. Shown verbatim, such text rewrites a pull
//! request comment, forges its hidden marker, or repaints a terminal. Every renderer passes
//! such text through one of these functions; none of them drops a character silently: what
//! cannot be shown as itself is shown as a visible escape (`\u{1b}`).

use std::borrow::Cow;
use std::fmt::Write;

/// Characters never shown as themselves: C0 and C1 controls and DEL (ANSI escapes, carriage
/// returns, line and paragraph separators), and the bidirectional overrides that make text
/// read differently from what it is.
fn is_hidden(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{2028}' | '\u{2029}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}' | '\u{061C}'
        )
}

fn escape_hidden(c: char, out: &mut String) {
    match c {
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        c => {
            let _ = write!(out, "\\u{{{:x}}}", c as u32);
        }
    }
}

/// One line of text for a terminal: every control character (newlines included, so text
/// cannot forge a line of its own) becomes a visible escape.
pub fn terminal(text: &str) -> Cow<'_, str> {
    if !text.chars().any(is_hidden) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if is_hidden(c) {
            escape_hidden(c, &mut out);
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// Several lines for a terminal, such as an error that ends with a command's own stderr:
/// each line as [`terminal`] shows it, the line breaks kept.
pub fn terminal_lines(text: &str) -> String {
    text.split('\n')
        .map(terminal)
        .collect::<Vec<_>>()
        .join("\n")
}

/// What GitHub puts after an `@` that would start a mention: a zero-width joiner, which
/// shows as nothing and keeps `@team` from notifying anyone.
const MENTION_BREAK: char = '\u{200D}';

/// Whether an `@` after `previous` starts a mention on GitHub, which links (and notifies)
/// `@name` wherever it follows the start of the text or a character that is not an ASCII
/// letter, digit or underscore; `bob@acme.example` is an address, not a mention.
fn starts_mention(previous: Option<char>) -> bool {
    !previous.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Where GitHub would make a link of text it was given as text, the character before which
/// a [`MENTION_BREAK`] keeps it text: the `:` of `https://evil.example` (and of any
/// `scheme://`), the `.` of `www.evil.example`, the digit of `#12` and `owner/repo#12` (a
/// cross-reference into another repository). One flag per character of `text`.
fn link_breaks(text: &str) -> Vec<bool> {
    let chars: Vec<char> = text.chars().collect();
    let mut breaks = vec![false; chars.len()];
    for index in 0..chars.len() {
        let next = |offset: usize| chars.get(index + offset).copied();
        match chars[index] {
            ':' if next(1) == Some('/') && next(2) == Some('/') => breaks[index] = true,
            '.' if index >= 3
                && chars[index - 3..index]
                    .iter()
                    .all(|c| c.eq_ignore_ascii_case(&'w')) =>
            {
                breaks[index] = true;
            }
            '#' if next(1).is_some_and(|c| c.is_ascii_digit()) => breaks[index + 1] = true,
            _ => {}
        }
    }
    breaks
}

/// Escapes what HTML and markdown text both must: a mention, and the characters that start a
/// tag or an entity. Whether `c` was one of them (and so is written).
fn escape_mention_or_markup(c: char, previous: Option<char>, out: &mut String) -> bool {
    match c {
        '@' if starts_mention(previous) => {
            out.push('@');
            out.push(MENTION_BREAK);
        }
        '&' => out.push_str("&amp;"),
        '<' => out.push_str("&lt;"),
        '>' => out.push_str("&gt;"),
        _ => return false,
    }
    true
}

/// Text inside raw HTML (a `<summary>` line, an HTML block GitHub does not parse as
/// markdown): tags, comments, entities and mentions are neutralised, and the text stays on
/// its line.
pub fn html(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    let mut previous = None;
    let breaks = link_breaks(text);
    for (index, c) in text.chars().enumerate() {
        let before = previous.replace(c);
        if breaks[index] {
            out.push(MENTION_BREAK);
        }
        if escape_mention_or_markup(c, before, &mut out) {
            continue;
        }
        match c {
            '"' => out.push_str("&quot;"),
            // `$…$` is math on GitHub, in HTML blocks too.
            '$' => out.push_str("&#36;"),
            '\'' => out.push_str("&#39;"),
            c if is_hidden(c) => escape_hidden(c, &mut out),
            c => out.push(c),
        }
    }
    out
}

/// Text in markdown (a paragraph, a list item, a table cell, a quote): shown as itself, with
/// no HTML, link (bare URLs and cross-references included), image, emphasis, math, code
/// span, table cell break, mention or block of its own.
pub fn markdown(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    let mut previous = None;
    let breaks = link_breaks(text);
    for (index, c) in text.chars().enumerate() {
        let before = previous.replace(c);
        if breaks[index] {
            out.push(MENTION_BREAK);
        }
        if escape_mention_or_markup(c, before, &mut out) {
            continue;
        }
        match c {
            '\\' | '`' | '*' | '_' | '[' | ']' | '|' | '~' | '!' | '$' => {
                out.push('\\');
                out.push(c);
            }
            // What would start a block (a heading, a list, a setext underline) where the
            // text starts a line.
            '#' | '+' | '-' | '=' if index == 0 => {
                out.push('\\');
                out.push(c);
            }
            c if is_hidden(c) => {
                let mut escaped = String::new();
                escape_hidden(c, &mut escaped);
                out.push_str(&escaped.replace('\\', "\\\\"));
            }
            c => out.push(c),
        }
    }
    // `1. ` or `1) ` at the start would make an ordered list.
    let digits = out.chars().take_while(char::is_ascii_digit).count();
    if digits > 0 && matches!(out[digits..].chars().next(), Some('.' | ')')) {
        out.insert(digits, '\\');
    }
    out
}

/// Text shown as code in markdown. A code span shows everything but a backtick as typed
/// (`<!--` included), but a backtick ends it, a pipe ends a table cell and a blank line ends
/// the paragraph; text holding one of those becomes an HTML `<code>` element whose content
/// is escaped as [`markdown`] text.
pub fn markdown_code(text: &str) -> String {
    let spannable = !text.is_empty()
        && !text.starts_with(' ')
        && !text.ends_with(' ')
        && !text.chars().any(|c| c == '`' || c == '|' || is_hidden(c));
    if spannable {
        format!("`{text}`")
    } else {
        format!("<code>{}</code>", markdown(text))
    }
}

/// Text in markdown whose backtick pairs are meant as code, as in the plan's reasons and
/// warnings (`` `roles` differs ``): each pair becomes a safe code element and the rest is
/// [`markdown`] text. A backtick inside a name can only regroup what shows as code, never
/// end an element: every piece is escaped for where it lands. An odd count of backticks is
/// escaped as plain text.
pub fn markdown_with_code(text: &str) -> String {
    let pieces: Vec<&str> = text.split('`').collect();
    if pieces.len().is_multiple_of(2) {
        return markdown(text);
    }
    pieces
        .iter()
        .enumerate()
        .map(|(index, piece)| {
            if index % 2 == 1 {
                markdown_code(piece)
            } else if index == 0 {
                markdown(piece)
            } else {
                // Mid-line: no block can start here, so only inline markup is escaped.
                markdown(&format!(" {piece}"))[1..].to_owned()
            }
        })
        .collect()
}

/// A line inside a fenced code block: the fence is only closed by a line of its own, so only
/// the line breaks (GitHub also breaks lines at a carriage return) and other controls are
/// escaped. Callers start every line with a marker column, so no line is a fence.
pub fn code_line(text: &str) -> Cow<'_, str> {
    terminal(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOSTILE: &str = "</code></summary></details>\n\n<!-- tramontane:plan dir=policies -->\r# Approved `x` [click](https://evil.example) *a*|b \u{1b}[31mred\u{1b}[0m \u{202E}txt.exe";

    #[test]
    fn terminal_text_has_no_control_character() {
        let shown = terminal(HOSTILE);
        assert!(!shown.chars().any(is_hidden), "{shown:?}");
        assert!(shown.contains("\\u{1b}[31mred"), "{shown}");
        assert!(shown.contains("\\n\\n"), "{shown}");
        assert!(shown.contains("\\u{202e}txt.exe"), "{shown}");
        assert_eq!(terminal("plain text, é"), "plain text, é");
    }

    #[test]
    fn html_text_opens_no_tag_or_comment() {
        let shown = html(HOSTILE);
        for forbidden in ["<", ">", "\n", "\r", "\u{1b}"] {
            assert!(!shown.contains(forbidden), "{forbidden:?} in {shown}");
        }
        assert!(
            shown.starts_with("&lt;/code&gt;&lt;/summary&gt;"),
            "{shown}"
        );
    }

    #[test]
    fn markdown_text_makes_no_markup() {
        let shown = markdown(HOSTILE);
        for forbidden in ["<", ">", "\n", "\r", "\u{1b}", "<!--", " *a*"] {
            assert!(!shown.contains(forbidden), "{forbidden:?} in {shown}");
        }
        assert!(shown.contains("\\[click\\](https"), "{shown}");
        // Every backtick, bracket, star and pipe is escaped.
        for special in ['`', '[', ']', '*', '|'] {
            let mut previous = ' ';
            for c in shown.chars() {
                if c == special {
                    assert_eq!(previous, '\\', "unescaped {special} in {shown}");
                }
                previous = c;
            }
        }
        assert_eq!(markdown("# title"), "\\# title");
        assert_eq!(markdown("- item"), "\\- item");
        assert_eq!(markdown("12. item"), "12\\. item");
        assert_eq!(markdown("a-b #1"), "a-b #\u{200D}1");
        assert_eq!(markdown("back\\slash"), "back\\\\slash");
        assert_eq!(markdown("line\nbreak"), "line\\\\nbreak");
        assert_eq!(markdown_code("a`b<c"), "<code>a\\`b&lt;c</code>");
        assert_eq!(markdown_code("a|b"), "<code>a\\|b</code>");
        assert_eq!(markdown_code("x\n\ny"), "<code>x\\\\n\\\\ny</code>");
        assert_eq!(markdown_code("<!-- x -->"), "`<!-- x -->`");
    }

    #[test]
    fn backtick_pairs_stay_code_and_nothing_else_does() {
        assert_eq!(
            markdown_with_code("`roles` differs from the policy"),
            "`roles` differs from the policy"
        );
        assert_eq!(
            markdown_with_code("known as `a`b` here"),
            "known as \\`a\\`b\\` here"
        );
        let shown = markdown_with_code("as `</code><!-- x -->\n\n# y`, the policy as `Bob`");
        assert_eq!(
            shown,
            "as <code>&lt;/code&gt;&lt;\\!-- x --&gt;\\\\n\\\\n# y</code>, the policy as `Bob`"
        );
        assert_eq!(markdown_with_code("1. `x` - y"), "1\\. `x` - y");
    }

    #[test]
    fn mentions_do_not_notify_and_addresses_stay_as_typed() {
        assert_eq!(markdown("ask @acme/platform"), "ask @\u{200D}acme/platform");
        assert_eq!(markdown("@team"), "@\u{200D}team");
        assert_eq!(markdown("(@bob)"), "(@\u{200D}bob)");
        assert_eq!(markdown("bob@acme.example"), "bob@acme.example");
        assert_eq!(html("cc @ops"), "cc @\u{200D}ops");
        assert_eq!(html("a_b@x.example"), "a_b@x.example");
        // In a code span a mention is text already.
        assert_eq!(markdown_code("@team"), "`@team`");
    }

    #[test]
    fn urls_cross_references_and_math_stay_text() {
        let z = MENTION_BREAK;
        assert_eq!(
            markdown("see https://evil.example/x"),
            format!("see https{z}://evil.example/x")
        );
        assert_eq!(markdown("WWW.evil.example"), format!("WWW{z}.evil.example"));
        assert_eq!(
            markdown("fixes acme/infra#12 and #3"),
            format!("fixes acme/infra#{z}12 and #{z}3")
        );
        assert_eq!(markdown("$x^2$ costs $5"), "\\$x^2\\$ costs \\$5");
        assert_eq!(
            html("a https://e.example $x$"),
            format!("a https{z}://e.example &#36;x&#36;")
        );
        assert_eq!(html("x/y#7"), format!("x/y#{z}7"));
        // A heading mark stays escaped; a `#` before no digit is plain text.
        assert_eq!(markdown("# title"), "\\# title");
        assert_eq!(markdown("a #b"), "a #b");
    }

    #[test]
    fn code_lines_stay_one_line() {
        assert_eq!(code_line("+ name: \"a\rb\""), "+ name: \"a\\rb\"");
        assert_eq!(code_line("\u{85}"), "\\u{85}");
    }
}
