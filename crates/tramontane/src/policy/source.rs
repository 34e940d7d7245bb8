//! Policy files as read from disk, and positions inside them.

use std::path::{Path, PathBuf};

/// Index of a file in a [`SourceSet`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FileId(pub u32);

/// A position as people count it: 1-based line, 1-based column in characters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Position {
    pub line: u32,
    pub column: u32,
}

/// A stretch of one file. `end` is exclusive; an empty span marks a point.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Span {
    pub file: FileId,
    pub start: Position,
    pub end: Position,
}

impl Span {
    pub fn point(file: FileId, at: Position) -> Span {
        Span {
            file,
            start: at,
            end: at,
        }
    }
}

/// One policy file. `text` is only present once the bytes decoded as UTF-8.
#[derive(Debug)]
pub struct SourceFile {
    pub path: PathBuf,
    /// The path as shown to people: the policy directory joined with the relative path.
    pub display: String,
    pub text: String,
    line_starts: Vec<usize>,
}

impl SourceFile {
    pub fn new(path: PathBuf, display: String, text: String) -> SourceFile {
        let mut line_starts = vec![0];
        line_starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        SourceFile {
            path,
            display,
            text,
            line_starts,
        }
    }

    /// The text of a 1-based line, without its line break.
    pub fn line_text(&self, line: u32) -> &str {
        let (start, end) = self.line_bounds(line);
        self.text[start..end].trim_end_matches('\r')
    }

    fn line_bounds(&self, line: u32) -> (usize, usize) {
        let index = (line.max(1) as usize - 1).min(self.line_starts.len() - 1);
        let start = self.line_starts[index];
        let end = self
            .line_starts
            .get(index + 1)
            .map_or(self.text.len(), |next| next - 1);
        (start, end.max(start))
    }

    pub fn line_count(&self) -> u32 {
        self.line_starts.len() as u32
    }

    /// Byte offset of a position, clamped to its line.
    pub fn byte_offset(&self, at: Position) -> usize {
        let (start, end) = self.line_bounds(at.line);
        let line = &self.text[start..end];
        let skip = at.column.max(1) as usize - 1;
        start
            + line
                .char_indices()
                .nth(skip)
                .map_or(line.len(), |(offset, _)| offset)
    }
}

/// Every file of one policy directory, in a stable order.
#[derive(Debug, Default)]
pub struct SourceSet {
    files: Vec<SourceFile>,
}

impl SourceSet {
    pub fn add(&mut self, file: SourceFile) -> FileId {
        self.files.push(file);
        FileId(self.files.len() as u32 - 1)
    }

    pub fn get(&self, id: FileId) -> &SourceFile {
        &self.files[id.0 as usize]
    }

    pub fn iter(&self) -> impl Iterator<Item = (FileId, &SourceFile)> {
        self.files
            .iter()
            .enumerate()
            .map(|(i, file)| (FileId(i as u32), file))
    }

    pub fn len(&self) -> usize {
        self.files.len()
    }

    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }
}

/// The name a file is shown by: the directory as the user typed it, then the path inside it.
pub fn display_path(root: &Path, relative: &Path) -> String {
    let joined = root.join(relative);
    let shown = joined.strip_prefix("./").unwrap_or(&joined);
    shown.to_string_lossy().replace('\\', "/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_offsets_count_characters_not_bytes() {
        let file = SourceFile::new("a".into(), "a".into(), "é: x\nab: ü\n".into());
        assert_eq!(file.byte_offset(Position { line: 1, column: 2 }), 2);
        assert_eq!(file.byte_offset(Position { line: 2, column: 5 }), 10);
        assert_eq!(file.line_text(2), "ab: ü");
        // Past the end of a line clamps to its end instead of spilling into the next.
        assert_eq!(
            file.byte_offset(Position {
                line: 1,
                column: 99
            }),
            5
        );
    }
}
