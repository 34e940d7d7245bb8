//! Where the policy declares an object: the file and line of its entry, found in the
//! policy's own source files, so a finding or a revoke can name the line to change.

use serde::Serialize;

use crate::policy::schema::{Segment, key_span_of, node_at};
use crate::policy::source::SourceSet;
use crate::policy::yaml::{self, Node};

/// A place in a policy file, as people count it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SourceRef {
    /// The file as the policy directory shows it (`policies/workspaces/ml.yaml`).
    pub file: String,
    pub line: u32,
    pub column: u32,
    /// The last line of the entry, for an edit that removes it whole.
    pub end_line: u32,
}

impl std::fmt::Display for SourceRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.file, self.line)
    }
}

/// The parsed policy files, ready to be asked where an entry is.
#[derive(Default)]
pub struct PolicyLocator {
    files: Vec<(String, Node)>,
}

impl PolicyLocator {
    /// Parses the files of a loaded policy again; a file that does not parse holds nothing
    /// (loading already reported it).
    pub fn new(sources: &SourceSet) -> PolicyLocator {
        let files = sources
            .iter()
            .filter_map(|(id, file)| {
                let root = yaml::parse(id, &file.text).ok().flatten()?;
                Some((file.display.clone(), root))
            })
            .collect();
        PolicyLocator { files }
    }

    /// The entry of key `name` of workspace `workspace`.
    pub fn key(&self, workspace: &str, name: &str) -> Option<SourceRef> {
        self.entry(&["workspaces", workspace, "keys", name])
    }

    /// The entry of workspace `name`.
    pub fn workspace(&self, name: &str) -> Option<SourceRef> {
        self.entry(&["workspaces", name])
    }

    /// The entry of team `name`.
    pub fn team(&self, name: &str) -> Option<SourceRef> {
        self.entry(&["teams", name])
    }

    /// `organization.spend_limit`, or else the `organization` section.
    pub fn organization_spend_limit(&self) -> Option<SourceRef> {
        self.entry(&["organization", "spend_limit"])
            .or_else(|| self.entry(&["organization"]))
    }

    /// The entry of member `email`, whatever its case in the file.
    pub fn member(&self, email: &str) -> Option<SourceRef> {
        self.files.iter().find_map(|(display, root)| {
            let members = root.get("members")?;
            let entry = members
                .value
                .entries()
                .iter()
                .find(|entry| entry.key.eq_ignore_ascii_case(email))?;
            Some(source_ref(display, entry.key_span, &entry.value))
        })
    }

    /// The first file, line 1: where a finding the policy does not govern is shown by
    /// formats that need a place for every finding (SARIF).
    pub fn first_file(&self) -> Option<&str> {
        self.files.first().map(|(display, _)| display.as_str())
    }

    fn entry(&self, keys: &[&str]) -> Option<SourceRef> {
        let path: Vec<Segment> = keys
            .iter()
            .map(|key| Segment::Key((*key).to_owned()))
            .collect();
        self.files.iter().find_map(|(display, root)| {
            let key_span = key_span_of(root, &path)?;
            let value = node_at(root, &path)?;
            Some(source_ref(display, key_span, value))
        })
    }
}

fn source_ref(display: &str, key: crate::policy::source::Span, value: &Node) -> SourceRef {
    // A block mapping's span ends where the next entry (at the key's indentation or less)
    // starts; a flow value's on its own last line.
    let end = value.span.end;
    let end_line = if end.column <= key.start.column && end.line > key.start.line {
        end.line - 1
    } else {
        end.line
    }
    .max(key.start.line);
    SourceRef {
        file: display.to_owned(),
        line: key.start.line,
        column: key.start.column,
        end_line,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::source::{FileId, SourceFile};

    fn locator(text: &str) -> PolicyLocator {
        let mut sources = SourceSet::default();
        let id: FileId = sources.add(SourceFile::new(
            "p/w.yaml".into(),
            "p/w.yaml".into(),
            text.into(),
        ));
        let _ = id;
        PolicyLocator::new(&sources)
    }

    #[test]
    fn keys_and_members_are_found_with_their_lines() {
        let found = locator(
            "version: 1\nmembers:\n  Bob@x.example: { name: Bob }\nworkspaces:\n  dev:\n    keys:\n      ci:\n        owner: bob@x.example\n        secret: { file: ci.key }\n      other:\n        owner: bob@x.example\n",
        );
        let key = found.key("dev", "ci").unwrap();
        assert_eq!((key.line, key.end_line), (7, 9));
        let last = found.key("dev", "other").unwrap();
        assert_eq!((last.line, last.end_line), (10, 11));
        assert_eq!(key.to_string(), "p/w.yaml:7");
        assert_eq!(found.member("bob@x.example").unwrap().line, 3);
        assert_eq!(found.key("dev", "missing"), None);
    }
}
