//! The job summary: markdown a GitHub Actions step appends to the file `GITHUB_STEP_SUMMARY`
//! names, shown on the run's page.

use std::io::Write;
use std::path::Path;

/// GitHub's limit on one step's summary.
pub const MAX_SUMMARY_BYTES: usize = 1024 * 1024;

/// Appends `markdown` to the step summary at `path`, cut where the markdown allows if it is
/// over GitHub's limit.
pub fn append(path: &Path, markdown: &str) -> std::io::Result<()> {
    let note = "\n> [!WARNING]\n> The plan is too long for the job summary: the rest is in the plan artifact.\n";
    let text = if markdown.len() + 1 > MAX_SUMMARY_BYTES {
        let budget = MAX_SUMMARY_BYTES - note.len() - 1;
        let first = super::comment::split_markdown(markdown, budget)
            .into_iter()
            .next()
            .unwrap_or_default();
        format!("{first}{note}")
    } else {
        markdown.to_owned()
    };
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    file.write_all(text.as_bytes())?;
    file.write_all(b"\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summaries_append_and_stay_under_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("summary.md");
        append(&path, "first\n").unwrap();
        append(&path, "second\n").unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "first\n\nsecond\n\n"
        );

        let huge: String = (0..200_000).map(|i| format!("line {i}\n\n")).collect();
        std::fs::remove_file(&path).unwrap();
        append(&path, &huge).unwrap();
        let written = std::fs::read_to_string(&path).unwrap();
        assert!(written.len() <= MAX_SUMMARY_BYTES);
        assert!(written.contains("too long for the job summary"));
    }
}
