//! YAML 1.2 into a tree that keeps a position for every node.
//!
//! Built from saphyr's event stream rather than its document loader so that the limits that
//! keep hostile input bounded (nesting depth, alias expansion, node count) are enforced while
//! parsing, before memory is spent, and so that a duplicate key can point at both occurrences.
//! The builder is iterative: no input can exhaust the stack, here or when the tree is dropped.

use std::collections::HashMap;

use saphyr_parser::{Event, Marker, Parser, ScalarStyle, ScanError, Span as YamlSpan, Tag};

use super::diagnostic::{Code, Diagnostic};
use super::source::{FileId, Position, Span};

/// Deepest nesting of mappings and sequences accepted. Real policies need about 6.
pub const MAX_DEPTH: usize = 64;
/// Most nodes one file may hold, aliases expanded.
pub const MAX_NODES: usize = 1_000_000;

#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    pub value: Value,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    Map(Vec<Entry>),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    pub key: String,
    pub key_span: Span,
    pub value: Node,
}

impl Node {
    /// The entry for `key`, if this node is a mapping that has it.
    pub fn get(&self, key: &str) -> Option<&Entry> {
        match &self.value {
            Value::Map(entries) => entries.iter().find(|entry| entry.key == key),
            _ => None,
        }
    }

    pub fn entries(&self) -> &[Entry] {
        match &self.value {
            Value::Map(entries) => entries,
            _ => &[],
        }
    }

    pub fn items(&self) -> &[Node] {
        match &self.value {
            Value::Seq(items) => items,
            _ => &[],
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            Value::Str(text) => Some(text),
            _ => None,
        }
    }

    /// The value as JSON, for schema validation and typed decoding.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as Json;
        match &self.value {
            Value::Null => Json::Null,
            Value::Bool(b) => Json::Bool(*b),
            Value::Int(i) => Json::from(*i),
            // JSON has no NaN or infinity; keep the YAML spelling so the schema reports a type.
            Value::Float(f) => serde_json::Number::from_f64(*f)
                .map_or_else(|| Json::String(format_float(*f)), Json::Number),
            Value::Str(s) => Json::String(s.clone()),
            Value::Seq(items) => Json::Array(items.iter().map(Node::to_json).collect()),
            Value::Map(entries) => Json::Object(
                entries
                    .iter()
                    .map(|entry| (entry.key.clone(), entry.value.to_json()))
                    .collect(),
            ),
        }
    }

    /// Number of nodes and nesting depth of this subtree, walked without recursion.
    fn measure(&self) -> (usize, usize) {
        let mut count = 0;
        let mut deepest = 0;
        let mut pending = vec![(self, 0usize)];
        while let Some((node, depth)) = pending.pop() {
            count += 1;
            match &node.value {
                Value::Seq(items) => {
                    deepest = deepest.max(depth + 1);
                    pending.extend(items.iter().map(|item| (item, depth + 1)));
                }
                Value::Map(entries) => {
                    deepest = deepest.max(depth + 1);
                    pending.extend(entries.iter().map(|entry| (&entry.value, depth + 1)));
                }
                _ => {}
            }
        }
        (count, deepest)
    }
}

fn format_float(f: f64) -> String {
    if f.is_nan() {
        ".nan".into()
    } else if f > 0.0 {
        ".inf".into()
    } else {
        "-.inf".into()
    }
}

/// A mapping or sequence whose end has not been seen yet.
enum Frame {
    Seq {
        start: Position,
        anchor: usize,
        items: Vec<Node>,
    },
    Map {
        start: Position,
        anchor: usize,
        entries: Vec<Entry>,
        pending_key: Option<(String, Span)>,
        /// Built once a mapping grows past a few keys; small mappings scan instead.
        index: HashMap<String, usize>,
    },
}

struct Builder {
    file: FileId,
    stack: Vec<Frame>,
    anchors: HashMap<usize, (Node, usize, usize)>,
    nodes: usize,
    root: Option<Node>,
    documents: usize,
}

fn position(marker: &Marker) -> Position {
    Position {
        line: marker.line() as u32,
        column: marker.col() as u32 + 1,
    }
}

/// Parses one file. `Ok(None)` is a file without a document (empty, or comments only).
pub fn parse(file: FileId, text: &str) -> Result<Option<Node>, Box<Diagnostic>> {
    let mut builder = Builder {
        file,
        stack: Vec::new(),
        anchors: HashMap::new(),
        nodes: 0,
        root: None,
        documents: 0,
    };
    let mut parser = Parser::new_from_str(text);
    while let Some(event) = parser.next_event() {
        let (event, span) = event.map_err(|error| Box::new(scan_error(file, text, &error)))?;
        if builder.on_event(event, span)? {
            break;
        }
    }
    Ok(builder.root)
}

fn scan_error(file: FileId, text: &str, error: &ScanError) -> Diagnostic {
    let at = Span::point(file, position(error.marker()));
    let info = error.info();
    let mut diagnostic = Diagnostic::new(Code::Syntax, format!("invalid YAML: {info}")).at(at);
    if info.contains("tab") {
        let tab = offending_tab(text, position(error.marker())).unwrap_or(at.start);
        diagnostic = diagnostic
            .at(Span::point(file, tab))
            .label("tab character here")
            .help("YAML indents with spaces only: replace the tab with spaces");
    } else if info.contains("recursion limit") {
        diagnostic = Diagnostic::new(
            Code::Limit,
            format!("nesting is deeper than the limit of {MAX_DEPTH} levels"),
        )
        .at(at)
        .help("policies need only a few levels; flatten the structure");
    } else if info.contains("mapping values are not allowed")
        && let Some((missing, key)) = missing_colon_above(text, position(error.marker()))
    {
        // The scanner read the line without a colon and this one as one plain scalar, and
        // only balks at this line's `:`; the mistake is on the line above.
        diagnostic = Diagnostic::new(
            Code::Syntax,
            format!("invalid YAML: `{key}` is not followed by `:`"),
        )
        .at(Span::point(file, missing))
        .label("`:` missing here")
        .help(format!(
            "write `{key}: value`; a key and its value are separated by `: `"
        ));
    } else if info.contains("mapping values are not allowed") {
        diagnostic = diagnostic
            .label("unexpected `:`")
            .help("a value containing `: ` must be quoted, and a nested mapping goes on its own indented line");
    } else if info.contains("did not find expected key") || info.contains("invalid indentation") {
        diagnostic =
            diagnostic.help("check the indentation of this line against the lines above it");
    } else if info.contains("unclosed") || info.contains("found unexpected end of stream") {
        diagnostic = diagnostic.help("a quote or bracket opened earlier is never closed");
    } else {
        diagnostic = diagnostic.label("here").help(
            "the YAML breaks at this point; a `[`, `{` or quote left open above it is a common cause",
        );
    }
    diagnostic
}

/// For a `:` the scanner refused on the marker's line: the line above it with content, when
/// it is a key of the same mapping written without its colon (same indentation, no `:` at
/// all, not a list item). Returns where the colon belongs and the key.
fn missing_colon_above(text: &str, marker: Position) -> Option<(Position, String)> {
    let lines: Vec<&str> = text.split('\n').collect();
    let index = (marker.line as usize).checked_sub(1)?;
    let indent = |line: &str| line.len() - line.trim_start_matches(' ').len();
    let current = lines.get(index)?;
    let above_index = (0..index).rev().find(|&i| {
        let content = lines[i].trim();
        !content.is_empty() && !content.starts_with('#')
    })?;
    let above = lines[above_index].trim_end_matches('\r');
    let content = above.trim();
    if indent(above) != indent(current)
        || content.starts_with('-')
        || content.contains(':')
        || content.starts_with(['"', '\'', '[', '{'])
    {
        return None;
    }
    let key: String = content.chars().take_while(|c| !c.is_whitespace()).collect();
    Some((
        Position {
            line: above_index as u32 + 1,
            column: (indent(above) + key.len()) as u32 + 1,
        },
        key,
    ))
}

/// Where the tab a tab error is about actually is. The scanner reports some tab errors at
/// the start of the token it was reading (a plain scalar spanning lines is reported where
/// the scalar began, a line above the tab) and others just past the whitespace, so the
/// marker alone does not point at the tab. The tab is the one at the marker, else the first
/// one in the indentation of the marker's line before it, else the first one indenting a
/// later line that has content (lines of blanks only may hold tabs).
fn offending_tab(text: &str, marker: Position) -> Option<Position> {
    let first_line = marker.line.max(1) as usize;
    for (index, line) in text.split('\n').enumerate().skip(first_line - 1) {
        let line_number = index as u32 + 1;
        let indentation: Vec<char> = line
            .chars()
            .take_while(|c| *c == ' ' || *c == '\t')
            .collect();
        let has_content = line[indentation.len()..]
            .trim_end_matches('\r')
            .chars()
            .next()
            .is_some_and(|c| c != '#');
        let tab_column = |limit: usize| {
            indentation
                .iter()
                .take(limit)
                .position(|c| *c == '\t')
                .map(|i| Position {
                    line: line_number,
                    column: i as u32 + 1,
                })
        };
        if line_number == marker.line {
            let at_marker = line.chars().nth(marker.column.max(1) as usize - 1);
            if at_marker == Some('\t') {
                return Some(marker);
            }
            if let Some(tab) = tab_column(marker.column.max(1) as usize - 1) {
                return Some(tab);
            }
        } else if has_content && let Some(tab) = tab_column(indentation.len()) {
            return Some(tab);
        }
    }
    None
}

impl Builder {
    fn span(&self, span: &YamlSpan) -> Span {
        Span {
            file: self.file,
            start: position(&span.start),
            end: position(&span.end),
        }
    }

    fn limit(&self, at: Span, message: String, help: &str) -> Box<Diagnostic> {
        Box::new(Diagnostic::new(Code::Limit, message).at(at).help(help))
    }

    /// Handles one event; `Ok(true)` once the document is complete.
    fn on_event(&mut self, event: Event<'_>, span: YamlSpan) -> Result<bool, Box<Diagnostic>> {
        let here = self.span(&span);
        match event {
            Event::StreamStart | Event::Nothing => {}
            Event::StreamEnd => return Ok(true),
            Event::DocumentStart(_) => {
                self.documents += 1;
                if self.documents > 1 {
                    return Err(Box::new(
                        Diagnostic::new(
                            Code::Limit,
                            "a policy file holds one YAML document, this is a second one",
                        )
                        .at(here)
                        .label("second document starts here")
                        .help("move this document into a file of its own"),
                    ));
                }
            }
            Event::DocumentEnd => {}
            Event::Alias(id) => {
                let Some((node, count, depth)) = self.anchors.get(&id) else {
                    return Err(Box::new(
                        Diagnostic::new(Code::Syntax, "alias to an unknown anchor")
                            .at(here)
                            .help("define the anchor (`&name`) before the alias (`*name`)"),
                    ));
                };
                if self.nodes + count > MAX_NODES {
                    return Err(self.limit(
                        here,
                        format!("aliases expand this file past {MAX_NODES} nodes (an alias bomb?)"),
                        "expand fewer aliases, or write the repeated values out",
                    ));
                }
                if self.stack.len() + depth > MAX_DEPTH {
                    return Err(self.limit(
                        here,
                        format!(
                            "this alias nests values deeper than the limit of {MAX_DEPTH} levels"
                        ),
                        "policies need only a few levels; flatten the structure",
                    ));
                }
                let mut node = node.clone();
                self.nodes += count;
                node.span = here;
                self.attach(node)?;
            }
            Event::Scalar(text, style, anchor, tag) => {
                let value = scalar(&text, style, tag.as_deref()).map_err(|message| {
                    Diagnostic::new(Code::Syntax, message)
                        .at(here)
                        .help("policies use plain YAML values: remove the tag")
                })?;
                self.count(here)?;
                let node = Node { value, span: here };
                if anchor > 0 {
                    self.anchors.insert(anchor, (node.clone(), 1, 0));
                }
                self.attach(node)?;
            }
            Event::SequenceStart(anchor, tag) | Event::MappingStart(anchor, tag)
                if self.pending_key_expected() =>
            {
                let _ = (anchor, tag);
                return Err(Box::new(
                    Diagnostic::new(
                        Code::Syntax,
                        "a mapping key must be plain text, not a list or mapping",
                    )
                    .at(here)
                    .help("use a plain name or email as the key"),
                ));
            }
            Event::SequenceStart(anchor, tag) => {
                self.open(here, tag.as_deref(), "seq")?;
                self.stack.push(Frame::Seq {
                    start: here.start,
                    anchor,
                    items: Vec::new(),
                });
            }
            Event::MappingStart(anchor, tag) => {
                self.open(here, tag.as_deref(), "map")?;
                self.stack.push(Frame::Map {
                    start: here.start,
                    anchor,
                    entries: Vec::new(),
                    pending_key: None,
                    index: HashMap::new(),
                });
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let frame = self.stack.pop().expect("the parser balances collections");
                let (value, start, anchor) = match frame {
                    Frame::Seq {
                        start,
                        anchor,
                        items,
                    } => (Value::Seq(items), start, anchor),
                    Frame::Map {
                        start,
                        anchor,
                        entries,
                        ..
                    } => (Value::Map(entries), start, anchor),
                };
                let node = Node {
                    value,
                    span: Span {
                        file: self.file,
                        start,
                        end: here.end,
                    },
                };
                if anchor > 0 {
                    let (count, depth) = node.measure();
                    self.anchors.insert(anchor, (node.clone(), count, depth));
                }
                self.attach(node)?;
            }
        }
        Ok(false)
    }

    /// True when the innermost collection is a mapping waiting for its next key.
    fn pending_key_expected(&self) -> bool {
        matches!(
            self.stack.last(),
            Some(Frame::Map {
                pending_key: None,
                ..
            })
        )
    }

    /// Checks what opening a collection would break: its tag, the depth and node limits.
    fn open(&mut self, here: Span, tag: Option<&Tag>, kind: &str) -> Result<(), Box<Diagnostic>> {
        if let Some(tag) = tag
            && !(tag.is_yaml_core_schema() && tag.suffix == kind)
        {
            return Err(Box::new(
                Diagnostic::new(Code::Syntax, format!("unsupported YAML tag `{tag}`"))
                    .at(here)
                    .help("policies use plain YAML values: remove the tag"),
            ));
        }
        if self.stack.len() >= MAX_DEPTH {
            return Err(self.limit(
                here,
                format!("nesting is deeper than the limit of {MAX_DEPTH} levels"),
                "policies need only a few levels; flatten the structure",
            ));
        }
        self.count(here)
    }

    fn count(&mut self, at: Span) -> Result<(), Box<Diagnostic>> {
        self.nodes += 1;
        if self.nodes > MAX_NODES {
            return Err(self.limit(
                at,
                format!("this file holds more than {MAX_NODES} values"),
                "split the policy across several files",
            ));
        }
        Ok(())
    }

    /// Places a finished node in its parent: as an item, a key, or the value of a key.
    fn attach(&mut self, node: Node) -> Result<(), Box<Diagnostic>> {
        let Some(parent) = self.stack.last_mut() else {
            self.root = Some(node);
            return Ok(());
        };
        match parent {
            Frame::Seq { items, .. } => items.push(node),
            Frame::Map {
                entries,
                pending_key,
                index,
                ..
            } => match pending_key.take() {
                None => {
                    let key = match node.value {
                        Value::Str(text) => text,
                        Value::Null => String::new(),
                        Value::Bool(b) => b.to_string(),
                        Value::Int(i) => i.to_string(),
                        Value::Float(f) => f.to_string(),
                        Value::Seq(_) | Value::Map(_) => {
                            return Err(Box::new(
                                Diagnostic::new(
                                    Code::Syntax,
                                    "a mapping key must be plain text, not a list or mapping",
                                )
                                .at(node.span)
                                .help("use a plain name or email as the key"),
                            ));
                        }
                    };
                    let earlier = if entries.len() < 8 {
                        entries.iter().position(|entry| entry.key == key)
                    } else {
                        if index.is_empty() {
                            index.extend(
                                entries
                                    .iter()
                                    .enumerate()
                                    .map(|(i, entry)| (entry.key.clone(), i)),
                            );
                        }
                        index.get(&key).copied()
                    };
                    if let Some(earlier) = earlier {
                        let first = entries[earlier].key_span;
                        return Err(Box::new(
                            Diagnostic::new(
                                Code::DuplicateKey,
                                format!("duplicate key `{key}` in this mapping"),
                            )
                            .at(node.span)
                            .label("defined again here")
                            .note(first, "first defined here")
                            .help("remove one of the two, or merge them into one entry"),
                        ));
                    }
                    *pending_key = Some((key, node.span));
                }
                Some((key, key_span)) => {
                    if !index.is_empty() {
                        index.insert(key.clone(), entries.len());
                    }
                    entries.push(Entry {
                        key,
                        key_span,
                        value: node,
                    });
                }
            },
        }
        Ok(())
    }
}

/// Resolves a scalar by the YAML 1.2 core schema: only plain scalars can be other than text.
fn scalar(text: &str, style: ScalarStyle, tag: Option<&Tag>) -> Result<Value, String> {
    if let Some(tag) = tag {
        if !tag.is_yaml_core_schema() {
            return Err(format!("unsupported YAML tag `{tag}`"));
        }
        let resolved = resolve_plain(text);
        return match (tag.suffix.as_str(), resolved) {
            ("str", _) => Ok(Value::Str(text.to_owned())),
            ("null", Value::Null) => Ok(Value::Null),
            ("bool", value @ Value::Bool(_)) => Ok(value),
            ("int", value @ Value::Int(_)) => Ok(value),
            ("float", Value::Int(i)) => Ok(Value::Float(i as f64)),
            ("float", value @ Value::Float(_)) => Ok(value),
            (suffix, _) => Err(format!("`{text}` is not a valid `!!{suffix}`")),
        };
    }
    Ok(match style {
        ScalarStyle::Plain => resolve_plain(text),
        _ => Value::Str(text.to_owned()),
    })
}

fn resolve_plain(text: &str) -> Value {
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return Value::Null,
        "true" | "True" | "TRUE" => return Value::Bool(true),
        "false" | "False" | "FALSE" => return Value::Bool(false),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => {
            return Value::Float(f64::INFINITY);
        }
        "-.inf" | "-.Inf" | "-.INF" => return Value::Float(f64::NEG_INFINITY),
        ".nan" | ".NaN" | ".NAN" => return Value::Float(f64::NAN),
        _ => {}
    }
    let bytes = text.as_bytes();
    let unsigned = text.strip_prefix(['-', '+']).unwrap_or(text);
    if !unsigned.is_empty() && unsigned.bytes().all(|b| b.is_ascii_digit()) {
        return text
            .parse::<i64>()
            .map(Value::Int)
            .unwrap_or_else(|_| Value::Float(text.parse().unwrap_or(f64::INFINITY)));
    }
    if let Some(octal) = text.strip_prefix("0o")
        && let Ok(i) = i64::from_str_radix(octal, 8)
    {
        return Value::Int(i);
    }
    if let Some(hex) = text.strip_prefix("0x")
        && let Ok(i) = i64::from_str_radix(hex, 16)
    {
        return Value::Int(i);
    }
    if is_core_float(bytes)
        && let Ok(f) = text.parse::<f64>()
    {
        return Value::Float(f);
    }
    Value::Str(text.to_owned())
}

/// `[-+]? ( \. [0-9]+ | [0-9]+ ( \. [0-9]* )? ) ( [eE] [-+]? [0-9]+ )?`
fn is_core_float(bytes: &[u8]) -> bool {
    let mut i = 0;
    if matches!(bytes.first(), Some(b'-' | b'+')) {
        i += 1;
    }
    let digits = |i: &mut usize| {
        let start = *i;
        while bytes.get(*i).is_some_and(u8::is_ascii_digit) {
            *i += 1;
        }
        *i - start
    };
    let whole = digits(&mut i);
    let mut fraction = 0;
    if bytes.get(i) == Some(&b'.') {
        i += 1;
        fraction = digits(&mut i);
    }
    if whole == 0 && fraction == 0 {
        return false;
    }
    if matches!(bytes.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(bytes.get(i), Some(b'-' | b'+')) {
            i += 1;
        }
        if digits(&mut i) == 0 {
            return false;
        }
    }
    i == bytes.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<Option<Node>, Box<Diagnostic>> {
        parse(FileId(0), text)
    }

    #[test]
    fn scalars_resolve_by_the_core_schema() {
        let node = load("a: 1\nb: 1.5\nc: true\nd: ~\ne: '1'\nf: 2027-03-01\ng: 0x1f\nh: yes\n")
            .unwrap()
            .unwrap();
        let json = node.to_json();
        assert_eq!(
            json,
            serde_json::json!({"a": 1, "b": 1.5, "c": true, "d": null, "e": "1",
                "f": "2027-03-01", "g": 31, "h": "yes"})
        );
    }

    #[test]
    fn positions_are_one_based() {
        let node = load("top:\n  inner: [x, y]\n").unwrap().unwrap();
        let inner = node.get("top").unwrap().value.get("inner").unwrap();
        assert_eq!(inner.key_span.start, Position { line: 2, column: 3 });
        assert_eq!(
            inner.value.items()[1].span.start,
            Position {
                line: 2,
                column: 14
            }
        );
    }

    #[test]
    fn duplicate_keys_point_at_both() {
        let error = load("a: 1\nb: 2\na: 3\n").unwrap_err();
        assert_eq!(error.code, Code::DuplicateKey);
        assert_eq!(error.span.unwrap().start.line, 3);
        assert_eq!(error.notes[0].span.start.line, 1);
        let many: String = (0..20).map(|i| format!("k{i}: {i}\n")).collect();
        let error = load(&format!("{many}k7: again\n")).unwrap_err();
        assert_eq!(error.notes[0].span.start.line, 8);
    }

    #[test]
    fn aliases_expand_within_budget() {
        let node = load("base: &m [a, b]\nother: *m\n").unwrap().unwrap();
        assert_eq!(node.to_json()["other"], serde_json::json!(["a", "b"]));
    }

    #[test]
    fn alias_bombs_stop_at_the_budget() {
        let mut text = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
        let mut previous = 'a';
        for name in 'b'..='k' {
            let refs = vec![format!("*{previous}"); 10].join(", ");
            text.push_str(&format!("{name}: &{name} [{refs}]\n"));
            previous = name;
        }
        let started = std::time::Instant::now();
        let error = load(&text).unwrap_err();
        assert_eq!(error.code, Code::Limit);
        assert!(started.elapsed().as_secs() < 5);
    }

    #[test]
    fn deep_nesting_is_refused_without_overflowing() {
        for text in [
            "[".repeat(20_000) + &"]".repeat(20_000),
            "- ".repeat(20_000) + "x\n",
            "{a: ".repeat(20_000) + &"}".repeat(20_000),
        ] {
            let error = load(&text).unwrap_err();
            assert_eq!(error.code, Code::Limit, "{}", error.message);
        }
    }

    #[test]
    fn complex_keys_and_tags_are_refused() {
        assert_eq!(load("? [a]\n: b\n").unwrap_err().code, Code::Syntax);
        assert_eq!(load("a: !custom x\n").unwrap_err().code, Code::Syntax);
        assert_eq!(
            load("a: !!str 12\n").unwrap().unwrap().to_json(),
            serde_json::json!({"a": "12"})
        );
    }

    /// The line and column of the tab a tab error reports.
    fn tab_error_at(text: &str) -> (u32, u32) {
        let error = load(text).unwrap_err();
        assert_eq!(error.code, Code::Syntax, "{}", error.message);
        assert!(error.message.contains("tab"), "{}", error.message);
        assert_eq!(error.label.as_deref(), Some("tab character here"));
        let at = error.span.unwrap().start;
        let line = text.split('\n').nth(at.line as usize - 1).unwrap();
        assert_eq!(
            line.chars().nth(at.column as usize - 1),
            Some('\t'),
            "{}:{} is not a tab in {line:?}",
            at.line,
            at.column
        );
        (at.line, at.column)
    }

    #[test]
    fn tab_errors_point_at_the_tab() {
        // A tab indenting the line after a plain scalar: the scanner reports where the
        // scalar began, a line above.
        let mut policy = String::from("version: 1\nmembers:\n");
        for i in 0..8 {
            policy.push_str(&format!("  m{i}@acme.example: {{ name: M {i} }}\n"));
        }
        policy.push_str("workspaces:\n  dev:\n    description: Development\n");
        policy.push_str("    admin: m0@acme.example\n    rpm: 60\n    models:\n");
        policy.push_str("      - mistral-small-latest\n");
        policy.push_str("    icon: rocket\n\tkeys: {}\n");
        assert_eq!(policy.lines().count(), 19);
        assert_eq!(tab_error_at(&policy), (19, 1));
        // A tab in a block's indentation, before content.
        assert_eq!(tab_error_at("members:\n  a: 1\n\tb: 2\n"), (3, 1));
        assert_eq!(
            tab_error_at("members:\n  a:\n    x: 1\n  \t  y: 2\n"),
            (4, 3)
        );
        // A block scalar whose content starts with a tab.
        assert_eq!(tab_error_at("a: |\n\ttext\n"), (2, 1));
        // Blank lines holding tabs are allowed; the error is the later line's.
        assert_eq!(tab_error_at("top:\n  a: one\n\t\n\tb: two\n"), (4, 1));
    }

    #[test]
    fn empty_and_second_documents() {
        assert_eq!(load("# only a comment\n").unwrap(), None);
        assert_eq!(load("a: 1\n---\nb: 2\n").unwrap_err().code, Code::Limit);
    }
}
