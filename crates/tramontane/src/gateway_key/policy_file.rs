//! The `gateway_keys:` section of a policy file, edited as text.
//!
//! Issuing and revoking a key change one entry and nothing else: the file's comments, order
//! and layout stay as people wrote them, so the pull request shows the entry alone. A round
//! trip through the model would lose the comments. Every edit is checked by parsing the
//! result and comparing it with what the edit should have produced, so a file laid out in a
//! way the line-based edit does not handle is refused instead of damaged.

use serde_json::Value as Json;

use crate::model::{GatewayKey, GatewayKeyId};
use crate::policy::source::{FileId, SourceFile};
use crate::policy::write::scalar_text;
use crate::policy::yaml::{self, Node, Value};

/// The file `gateway issue` creates when no policy file holds a `gateway_keys` section.
pub const DEFAULT_FILE: &str = "gateway-keys.yaml";

const SECTION: &str = "gateway_keys";

/// Why a file's `gateway_keys` section could not be edited.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EditError {
    #[error("`{file}` does not parse as YAML")]
    Unparsable { file: String },
    #[error("`{file}` is not a mapping of sections")]
    NotAMapping { file: String },
    #[error("the `gateway_keys` section of `{file}` is not written in block style")]
    NotBlockStyle { file: String },
    #[error("`{file}` is laid out in a way this edit cannot follow without disturbing it")]
    Unverified { file: String },
}

impl EditError {
    pub fn help(&self) -> String {
        match self {
            EditError::Unparsable { file } => {
                format!("run `tramontane validate` and fix `{file}` first")
            }
            EditError::NotAMapping { file } => {
                format!("a policy file is a mapping of sections; fix `{file}` first")
            }
            EditError::NotBlockStyle { .. } | EditError::Unverified { .. } => {
                "write `gateway_keys:` with one entry per indented block, as `tramontane gateway issue` writes them, or edit the entry by hand".into()
            }
        }
    }
}

/// The text of a new policy file holding one entry.
pub fn new_file(id: &GatewayKeyId, entry: &GatewayKey) -> String {
    format!(
        "# Keys callers present to `tramontane gateway`: only their SHA-256 digests, never the\n\
         # keys. `tramontane gateway issue` adds entries; deleting one revokes its key once the\n\
         # gateway reloads the merged policy.\n\
         version: 1\n\n{SECTION}:\n{}",
        entry_text(id, entry, 2, 2)
    )
}

/// One entry as block YAML: the id at `indent`, its properties `step` further in.
pub fn entry_text(id: &GatewayKeyId, entry: &GatewayKey, indent: usize, step: usize) -> String {
    let pad = " ".repeat(indent);
    let inner = " ".repeat(indent + step);
    let mut text = format!(
        "{pad}{}:\n{inner}digest: {}\n{inner}holder: {}\n{inner}workspace: {}\n{inner}expires: {}\n",
        // An id such as `0000` or `1e10` would read as a number: quoted, it stays the id.
        scalar_text(id.as_str()),
        entry.digest,
        scalar_text(&entry.holder.to_string()),
        scalar_text(&entry.workspace),
        entry.expires,
    );
    if let Some(description) = &entry.description {
        text.push_str(&format!(
            "{inner}description: {}\n",
            // Always quoted: free text is where a stray `: ` or `#` would change the meaning.
            serde_json::to_string(description).expect("strings always serialize")
        ));
    }
    text
}

/// `text` with the entry added at the end of its `gateway_keys` section, or with a new
/// section at the end of the file.
pub fn insert(
    text: &str,
    file: &str,
    id: &GatewayKeyId,
    entry: &GatewayKey,
) -> Result<String, EditError> {
    let root = parse(text, file)?;
    let lines = Lines::new(text);
    let edited = match root.as_ref().and_then(|root| root.get(SECTION)) {
        None => {
            let mut edited = text.to_owned();
            if !edited.is_empty() && !edited.ends_with('\n') {
                edited.push('\n');
            }
            if !edited.trim().is_empty() {
                edited.push('\n');
            }
            edited.push_str(&format!("{SECTION}:\n{}", entry_text(id, entry, 2, 2)));
            edited
        }
        Some(section) => {
            let section_line = section.key_span.start.line;
            match &section.value.value {
                // `gateway_keys:` alone, or `gateway_keys: {}` after the last key was revoked.
                Value::Null | Value::Map(_) if section.value.entries().is_empty() => {
                    let header = lines.line(section_line);
                    let header = empty_section_header(header)
                        .ok_or_else(|| EditError::NotBlockStyle { file: file.into() })?;
                    let mut out = lines.before(section_line);
                    out.push_str(&header);
                    out.push_str(&entry_text(id, entry, 2, 2));
                    out.push_str(&lines.after(section_line));
                    out
                }
                Value::Map(entries) => {
                    let first = &entries[0];
                    if first.key_span.start.line <= section_line {
                        return Err(EditError::NotBlockStyle { file: file.into() });
                    }
                    let indent = first.key_span.start.column as usize - 1;
                    let step = first
                        .value
                        .entries()
                        .first()
                        .filter(|inner| inner.key_span.start.line > first.key_span.start.line)
                        .map_or(2, |inner| {
                            (inner.key_span.start.column as usize - 1).saturating_sub(indent)
                        })
                        .max(1);
                    let last = last_line(&section.value, &lines);
                    let mut out = lines.before(last + 1);
                    out.push_str(&entry_text(id, entry, indent, step));
                    out.push_str(&lines.after(last));
                    out
                }
                _ => return Err(EditError::NotBlockStyle { file: file.into() }),
            }
        }
    };
    let mut expected = root.as_ref().map_or(Json::Null, Node::to_json);
    if !expected.is_object() {
        if expected.is_null() {
            expected = Json::Object(serde_json::Map::new());
        } else {
            return Err(EditError::NotAMapping { file: file.into() });
        }
    }
    let keys = expected
        .as_object_mut()
        .expect("checked above")
        .entry(SECTION)
        .or_insert_with(|| Json::Object(serde_json::Map::new()));
    if !keys.is_object() {
        *keys = Json::Object(serde_json::Map::new());
    }
    keys.as_object_mut().expect("made an object above").insert(
        id.to_string(),
        serde_json::to_value(entry).expect("an entry always serializes"),
    );
    verify(&edited, file, &expected)?;
    Ok(edited)
}

/// `text` without the entry `id`, and the comment lines written just above it at its
/// indentation. `None` when the file has no such entry. A section left empty becomes
/// `gateway_keys: {}`, which stays valid.
pub fn remove(text: &str, file: &str, id: &GatewayKeyId) -> Result<Option<String>, EditError> {
    let Some(root) = parse(text, file)? else {
        return Ok(None);
    };
    let Some(section) = root.get(SECTION) else {
        return Ok(None);
    };
    let entries = section.value.entries();
    let Some(position) = entries.iter().position(|entry| entry.key == id.as_str()) else {
        return Ok(None);
    };
    let section_line = section.key_span.start.line;
    let entry = &entries[position];
    if entry.key_span.start.line <= section_line {
        return Err(EditError::NotBlockStyle { file: file.into() });
    }
    let lines = Lines::new(text);
    let indent = entry.key_span.start.column as usize - 1;
    let mut first = entry.key_span.start.line;
    while first - 1 > section_line {
        let above = lines.line(first - 1);
        let content = above.trim_start();
        let above_indent = above.len() - content.len();
        if content.starts_with('#') && above_indent == indent {
            first -= 1;
        } else {
            break;
        }
    }
    let last = last_line(&entry.value, &lines);
    let mut edited = lines.before(first);
    if entries.len() == 1 {
        // The section would be left empty, which YAML reads as null: say `{}` instead.
        let header = lines.line(section_line);
        edited = lines.before(section_line);
        edited.push_str(&with_empty_mapping(header));
        edited.push_str(&lines.between(section_line + 1, first));
    }
    edited.push_str(&lines.after(last));

    let mut expected = root.to_json();
    if let Some(keys) = expected.get_mut(SECTION).and_then(Json::as_object_mut) {
        keys.shift_remove(id.as_str());
    }
    verify(&edited, file, &expected)?;
    Ok(Some(edited))
}

fn parse(text: &str, file: &str) -> Result<Option<Node>, EditError> {
    let root =
        yaml::parse(FileId(0), text).map_err(|_| EditError::Unparsable { file: file.into() })?;
    match root {
        Some(root) if matches!(root.value, Value::Map(_)) => Ok(Some(root)),
        Some(root) if root.value == Value::Null => Ok(None),
        None => Ok(None),
        Some(_) => Err(EditError::NotAMapping { file: file.into() }),
    }
}

/// The edit is kept only if the file now says exactly what it said plus (or minus) the entry.
fn verify(edited: &str, file: &str, expected: &Json) -> Result<(), EditError> {
    let unverified = || EditError::Unverified { file: file.into() };
    let root = yaml::parse(FileId(0), edited).map_err(|_| unverified())?;
    let found = root.as_ref().map_or(Json::Null, Node::to_json);
    if &found == expected {
        Ok(())
    } else {
        Err(unverified())
    }
}

/// `gateway_keys:` with nothing after it but a comment, as the line to put entries under.
fn empty_section_header(line: &str) -> Option<String> {
    let rest = line.strip_prefix(SECTION)?.strip_prefix(':')?;
    let (value, comment) = split_comment(rest);
    match value.trim() {
        "" | "{}" => Some(format!("{SECTION}:{comment}\n")),
        _ => None,
    }
}

/// `gateway_keys: {}`, keeping a comment the header line had.
fn with_empty_mapping(line: &str) -> String {
    let rest = line
        .strip_prefix(SECTION)
        .and_then(|rest| rest.strip_prefix(':'))
        .unwrap_or("");
    let (_, comment) = split_comment(rest);
    format!("{SECTION}: {{}}{comment}\n")
}

/// A line's value and its trailing comment (with the spaces before it).
fn split_comment(rest: &str) -> (&str, &str) {
    match rest.find(" #") {
        Some(at) => (&rest[..at], &rest[at..]),
        None if rest.trim_start().starts_with('#') => ("", rest),
        None => (rest, ""),
    }
}

/// The last line holding any of a node's text.
fn last_line(node: &Node, lines: &Lines<'_>) -> u32 {
    let flow = lines
        .line(node.span.start.line)
        .chars()
        .nth(node.span.start.column as usize - 1)
        .is_some_and(|first| first == '{' || first == '[');
    let children_end = match &node.value {
        Value::Map(entries) if !flow => entries
            .last()
            .map(|entry| last_line(&entry.value, lines).max(entry.key_span.end.line)),
        Value::Seq(items) if !flow => items.last().map(|item| last_line(item, lines)),
        _ => None,
    };
    children_end.unwrap_or_else(|| {
        // A span that ends at the start of a line ends with the line before it.
        let end = node.span.end;
        if end.column <= 1 && end.line > node.span.start.line {
            end.line - 1
        } else {
            end.line
        }
    })
}

/// A text split into lines that keep their line breaks, addressed 1-based.
struct Lines<'a> {
    file: SourceFile,
    text: &'a str,
}

impl<'a> Lines<'a> {
    fn new(text: &'a str) -> Lines<'a> {
        Lines {
            file: SourceFile::new("".into(), String::new(), text.to_owned()),
            text,
        }
    }

    fn line(&self, line: u32) -> &str {
        self.file.line_text(line)
    }

    /// Byte offset where 1-based `line` starts; the text's length past the last line.
    fn start_of(&self, line: u32) -> usize {
        if line > self.file.line_count() {
            return self.text.len();
        }
        self.file
            .byte_offset(crate::policy::source::Position { line, column: 1 })
    }

    /// Everything before `line`.
    fn before(&self, line: u32) -> String {
        self.text[..self.start_of(line)].to_owned()
    }

    /// Everything after `line`, with a line break ending the text before it if it had none.
    fn after(&self, line: u32) -> String {
        let start = self.start_of(line + 1);
        let mut rest = String::new();
        if start == self.text.len() && !self.text.ends_with('\n') && line >= 1 {
            // The edited line was the last and had no line break: nothing follows.
            return rest;
        }
        rest.push_str(&self.text[start..]);
        rest
    }

    /// Lines `from` up to but not including `to`.
    fn between(&self, from: u32, to: u32) -> String {
        if from >= to {
            return String::new();
        }
        self.text[self.start_of(from)..self.start_of(to)].to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Holder, KeyDigest};
    use jiff::civil::Date;

    fn id(text: &str) -> GatewayKeyId {
        GatewayKeyId::parse(text).unwrap()
    }

    fn entry(holder: &str) -> GatewayKey {
        GatewayKey {
            digest: KeyDigest::of(holder),
            holder: Holder::parse(holder),
            workspace: "dev".into(),
            expires: Date::constant(2027, 1, 31),
            description: Some("Bo's laptop: # not a comment".into()),
        }
    }

    const FILE: &str = "\
# The keys.
version: 1

gateway_keys:
  # Ada's
  ada-key:
    digest: sha256:0000000000000000000000000000000000000000000000000000000000000000
    holder: ada@acme.example   # the admin
    workspace: dev
    expires: 2027-01-01

# What comes after stays put.
";

    #[test]
    fn an_entry_goes_at_the_end_of_the_section_and_nothing_else_moves() {
        let edited = insert(FILE, "f", &id("bo-key"), &entry("bo@acme.example")).unwrap();
        let expected_tail = format!(
            "    expires: 2027-01-01\n{}\n# What comes after stays put.\n",
            entry_text(&id("bo-key"), &entry("bo@acme.example"), 2, 2)
        );
        assert!(edited.ends_with(&expected_tail), "{edited}");
        assert!(edited.starts_with(&FILE[..FILE.find("\n# What").unwrap()]));
    }

    #[test]
    fn a_file_without_the_section_gets_one_at_its_end() {
        let text = "version: 1\nmembers:\n  a@b.example: { name: A }";
        let edited = insert(text, "f", &id("bo-key"), &entry("workspace.dev.key.ci")).unwrap();
        assert!(edited.starts_with(
            "version: 1\nmembers:\n  a@b.example: { name: A }\n\ngateway_keys:\n  bo-key:\n"
        ));
        assert!(edited.contains("    holder: workspace.dev.key.ci\n"));
    }

    #[test]
    fn the_files_own_indentation_is_followed() {
        let text = "gateway_keys:\n    ada-key:\n        digest: sha256:0000000000000000000000000000000000000000000000000000000000000000\n        holder: ada@acme.example\n        workspace: dev\n        expires: 2027-01-01\n";
        let edited = insert(text, "f", &id("bo-key"), &entry("bo@acme.example")).unwrap();
        assert!(
            edited.contains("\n    bo-key:\n        digest: sha256:"),
            "{edited}"
        );
    }

    #[test]
    fn removing_takes_the_entry_and_its_comment_only() {
        let added = insert(FILE, "f", &id("bo-key"), &entry("bo@acme.example")).unwrap();
        let removed = remove(&added, "f", &id("bo-key")).unwrap().unwrap();
        assert_eq!(removed, FILE);
        let emptied = remove(FILE, "f", &id("ada-key")).unwrap().unwrap();
        assert_eq!(
            emptied,
            "# The keys.\nversion: 1\n\ngateway_keys: {}\n\n# What comes after stays put.\n"
        );
        // And an emptied section takes entries again.
        let refilled = insert(&emptied, "f", &id("bo-key"), &entry("bo@acme.example")).unwrap();
        assert!(
            refilled.contains("gateway_keys:\n  bo-key:\n"),
            "{refilled}"
        );
        assert_eq!(remove(FILE, "f", &id("nobody")).unwrap(), None);
    }

    #[test]
    fn flow_style_sections_are_refused_not_damaged() {
        let text = "gateway_keys: { ada-key: { digest: x } }\n";
        assert_eq!(
            insert(text, "f", &id("bo-key"), &entry("bo@acme.example")),
            Err(EditError::NotBlockStyle { file: "f".into() })
        );
        assert_eq!(
            remove(text, "f", &id("ada-key")),
            Err(EditError::NotBlockStyle { file: "f".into() })
        );
    }

    proptest::proptest! {
        /// Any entries, issued one after another into a file and revoked in any order, leave
        /// the file as it was, byte for byte; each intermediate file loads as the entries.
        #[test]
        fn issuing_then_revoking_restores_the_file(
            entries in proptest::collection::btree_map(
                "[a-z0-9][a-z0-9-]{2,10}[a-z0-9]",
                (
                    "[a-z]{1,8}@acme\\.example|workspace\\.[a-z-]{1,8}\\.key\\.[a-z-]{1,8}",
                    proptest::option::of("[a-zA-Z0-9 ,.:#'\"!&*|>%@`{}\\[\\]?-]{0,24}"),
                ),
                1..5,
            ),
            revoke_order in proptest::collection::vec(proptest::prelude::any::<usize>(), 5),
        ) {
            let mut text = FILE.to_owned();
            let mut ids = Vec::new();
            for (name, (holder, description)) in &entries {
                let mut new = entry(holder);
                new.description = description.clone();
                text = insert(&text, "f", &id(name), &new).unwrap();
                let root = yaml::parse(FileId(0), &text).unwrap().unwrap();
                let decoded: GatewayKey =
                    serde_json::from_value(root.to_json()["gateway_keys"][name.as_str()].clone()).unwrap();
                proptest::prop_assert_eq!(decoded, new);
                ids.push(name.clone());
            }
            for pick in revoke_order {
                if ids.is_empty() {
                    break;
                }
                let name = ids.remove(pick % ids.len());
                text = remove(&text, "f", &id(&name)).unwrap().unwrap();
            }
            for name in ids {
                text = remove(&text, "f", &id(&name)).unwrap().unwrap();
            }
            proptest::prop_assert_eq!(text, FILE);
        }
    }

    #[test]
    fn ids_yaml_would_read_as_numbers_are_quoted() {
        let mut text = FILE.to_owned();
        for name in ["0000", "1e10", "0x1f"] {
            text = insert(&text, "f", &id(name), &entry("bo@acme.example")).unwrap();
            assert!(text.contains(&format!("  \"{name}\":\n")), "{text}");
        }
        for name in ["0000", "1e10", "0x1f"] {
            text = remove(&text, "f", &id(name)).unwrap().unwrap();
        }
        assert_eq!(text, FILE);
    }

    #[test]
    fn a_new_file_loads_as_the_entry() {
        let text = new_file(&id("bo-key"), &entry("bo@acme.example"));
        let root = yaml::parse(FileId(0), &text).unwrap().unwrap();
        let decoded: GatewayKey =
            serde_json::from_value(root.to_json()["gateway_keys"]["bo-key"].clone()).unwrap();
        assert_eq!(decoded, entry("bo@acme.example"));
    }
}
