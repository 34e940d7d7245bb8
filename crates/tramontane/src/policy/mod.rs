//! Policy files: discovery, parsing with positions, the schema pass, merging into one
//! [`DesiredOrg`], and the semantic pass.

mod alerts;
pub mod catalog;
pub mod diagnostic;
pub mod directory;
pub mod discover;
pub mod git;
mod merge;
pub mod schema;
pub mod secret_path;
mod semantic;
pub mod source;
pub mod write;
pub mod yaml;

use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use jiff::civil::Date;
use serde_json::Value as Json;

use crate::model::DesiredOrg;
use catalog::Catalog;
use diagnostic::{Code, Diagnostic, Severity};
use merge::merge;
use schema::{PolicySchema, Segment};
use source::{FileId, Position, SourceFile, SourceSet, Span};
use yaml::Node;

/// Largest policy file read. Real files are a few kilobytes.
pub const MAX_FILE_BYTES: u64 = 4 * 1024 * 1024;
/// The policy format version this release reads.
pub const SUPPORTED_VERSION: i64 = 1;

/// What validation needs besides the files.
pub struct LoadOptions<'a> {
    /// Expiry dates are checked against this day (UTC).
    pub today: Date,
    pub catalog: &'a Catalog,
    /// The repository root secret file paths are checked under, for symbolic links; `None`
    /// where the files are not on disk (a policy read from another git ref).
    pub repository: Option<PathBuf>,
}

impl LoadOptions<'static> {
    pub fn new(today: Date) -> LoadOptions<'static> {
        LoadOptions {
            today,
            catalog: Catalog::bundled(),
            repository: None,
        }
    }
}

/// A policy directory, loaded: the merged org and everything wrong with it.
#[derive(Debug)]
pub struct LoadedPolicy {
    pub sources: SourceSet,
    pub desired: DesiredOrg,
    /// Sorted by file, then position.
    pub diagnostics: Vec<Diagnostic>,
}

impl LoadedPolicy {
    pub fn error_count(&self) -> usize {
        self.diagnostics
            .iter()
            .filter(|d| d.severity() == Severity::Error)
            .count()
    }

    pub fn warning_count(&self) -> usize {
        self.diagnostics.len() - self.error_count()
    }

    pub fn is_valid(&self) -> bool {
        self.error_count() == 0
    }
}

/// The sections that hold named entities, merged across files.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Section {
    Members,
    Roles,
    Teams,
    Workspaces,
    GatewayKeys,
    Models,
    Issuers,
    Workloads,
}

impl Section {
    const ALL: [Section; 8] = [
        Section::Members,
        Section::Roles,
        Section::Teams,
        Section::Workspaces,
        Section::GatewayKeys,
        Section::Models,
        Section::Issuers,
        Section::Workloads,
    ];

    pub fn key(self) -> &'static str {
        match self {
            Section::Members => "members",
            Section::Roles => "roles",
            Section::Teams => "teams",
            Section::Workspaces => "workspaces",
            Section::GatewayKeys => "gateway_keys",
            Section::Models => "models",
            Section::Issuers => "issuers",
            Section::Workloads => "workloads",
        }
    }

    fn singular(self) -> &'static str {
        match self {
            Section::Members => "member",
            Section::Roles => "role",
            Section::Teams => "team",
            Section::Workspaces => "workspace",
            Section::GatewayKeys => "gateway key",
            Section::Models => "model",
            Section::Issuers => "issuer",
            Section::Workloads => "workload",
        }
    }
}

/// Where each merged entity was written, so later checks can point at its source.
#[derive(Default)]
pub(crate) struct Origins {
    roots: HashMap<FileId, Node>,
    entities: HashMap<(Section, String), FileId>,
    organization: Option<FileId>,
    /// Entities that exist in the files but failed the schema: references to them are not
    /// reported again as unknown.
    broken: HashSet<(Section, String)>,
    /// A file could not be read or parsed: it may define anything, so no reference is
    /// reported as unknown for want of it (its own error says what to fix first).
    incomplete: bool,
}

impl Origins {
    /// The span of a value inside a named entity, found by the mapping keys leading to it.
    pub(crate) fn span(&self, section: Section, name: &str, keys: &[&str]) -> Option<Span> {
        self.node(section, name, keys).map(|node| node.span)
    }

    /// The span of item `index` of the list at `keys` inside a named entity.
    pub(crate) fn item_span(
        &self,
        section: Section,
        name: &str,
        keys: &[&str],
        index: usize,
    ) -> Option<Span> {
        self.node(section, name, keys)?
            .items()
            .get(index)
            .map(|item| item.span)
    }

    fn node(&self, section: Section, name: &str, keys: &[&str]) -> Option<&Node> {
        let file = *self.entities.get(&(section, name.to_owned()))?;
        let mut full = vec![
            Segment::Key(section.key().to_owned()),
            Segment::Key(name.to_owned()),
        ];
        full.extend(keys.iter().map(|key| Segment::Key((*key).to_owned())));
        schema::node_at(self.roots.get(&file)?, &full)
    }

    /// The span of the key that introduces a value (for mapping entries named by their key).
    pub(crate) fn key_span(&self, section: Section, name: &str, path: &[&str]) -> Option<Span> {
        let file = *self.entities.get(&(section, name.to_owned()))?;
        let mut full = vec![
            Segment::Key(section.key().to_owned()),
            Segment::Key(name.to_owned()),
        ];
        full.extend(path.iter().map(|part| Segment::Key((*part).to_owned())));
        let root = self.roots.get(&file)?;
        schema::key_span_of(root, &full)
    }

    pub(crate) fn organization_span(&self, property: &str) -> Option<Span> {
        let root = self.roots.get(&self.organization?)?;
        let path = [
            Segment::Key("organization".into()),
            Segment::Key(property.into()),
        ];
        schema::node_at(root, &path).map(|node| node.span)
    }

    pub(crate) fn is_known(&self, section: Section, name: &str) -> bool {
        let key = (section, name.to_owned());
        self.incomplete || self.entities.contains_key(&key) || self.broken.contains(&key)
    }
}

/// Loads, checks and merges every policy file under `dir`. Never fails: problems are
/// diagnostics, and the returned org holds whatever parts were valid.
pub fn load(dir: &Path, options: &LoadOptions<'_>) -> LoadedPolicy {
    let shown_dir = dir.to_string_lossy().replace('\\', "/");
    let discovered = match discover::discover(dir) {
        Ok(discovered) => discovered,
        Err(diagnostic) => {
            return LoadedPolicy {
                sources: SourceSet::default(),
                desired: DesiredOrg::default(),
                diagnostics: vec![diagnostic.path(shown_dir)],
            };
        }
    };
    let paths = discovered.files;
    // Policies on disk: their secret files are checked where apply would write them.
    let options = &LoadOptions {
        today: options.today,
        catalog: options.catalog,
        repository: options.repository.clone().or_else(|| {
            Some(
                crate::repository::RepositoryRoot::of_policies(dir)
                    .path()
                    .to_owned(),
            )
        }),
    };
    // The walk summed the sizes; this holds the total to the limit even if files grow
    // between the walk and the reads.
    let bytes_read = AtomicU64::new(0);
    let prepared = prepare_all(paths.len(), |id, index| {
        prepare(id, dir, &paths[index], &shown_dir, &bytes_read)
    });
    merge(&shown_dir, prepared, discovered.refused, options)
}

/// A policy file that is not read from disk, such as one at a git commit.
pub struct PolicyText {
    /// The name diagnostics give the file, such as `main:policies/org.yaml`.
    pub display: String,
    pub bytes: Vec<u8>,
}

/// Loads policy files already in memory, with the same checks, limits and diagnostics as
/// [`load`]; `shown_dir` names the whole set in diagnostics about it.
pub fn load_texts(
    shown_dir: &str,
    files: Vec<PolicyText>,
    options: &LoadOptions<'_>,
) -> LoadedPolicy {
    let total: u64 = files.iter().map(|file| file.bytes.len() as u64).sum();
    if files.len() > discover::MAX_FILES || total > discover::MAX_TOTAL_BYTES {
        let diagnostic = if total > discover::MAX_TOTAL_BYTES {
            discover::too_many_bytes(shown_dir, files.len())
        } else {
            discover::too_many_files(shown_dir)
        };
        return LoadedPolicy {
            sources: SourceSet::default(),
            desired: DesiredOrg::default(),
            diagnostics: vec![*diagnostic],
        };
    }
    let prepared = prepare_all(files.len(), |id, index| {
        let file = &files[index];
        let path = PathBuf::from(&file.display);
        let (source, decoded) = if file.bytes.len() as u64 > MAX_FILE_BYTES {
            (
                SourceFile::new(path, file.display.clone(), String::new()),
                Err(too_large(&file.display)),
            )
        } else {
            // A copy: files at a commit are small, and decoding takes ownership.
            decode(id, path, &file.display, file.bytes.clone())
        };
        prepare_source(id, source, decoded)
    });
    merge(shown_dir, prepared, Vec::new(), options)
}

/// Removes the value at `path` (an unknown property) from a file's JSON.
fn drop_value(json: &mut Json, path: &[Segment]) {
    let Some((Segment::Key(last), parent)) = path.split_last() else {
        return;
    };
    let mut node = json;
    for segment in parent {
        let next = match segment {
            Segment::Key(key) => node.get_mut(key.as_str()),
            Segment::Index(i) => node.get_mut(*i),
        };
        let Some(next) = next else { return };
        node = next;
    }
    if let Json::Object(map) = node {
        map.shift_remove(last);
    }
}

fn io_reason(error: &std::io::Error) -> String {
    match error.kind() {
        std::io::ErrorKind::NotFound => "it does not exist".into(),
        std::io::ErrorKind::PermissionDenied => "permission denied".into(),
        _ => error.to_string(),
    }
}

/// One file, read, parsed and checked against the schema: the part of loading that needs
/// nothing from other files, and so runs on every core.
struct Prepared {
    source: SourceFile,
    root: Option<Node>,
    /// The file as JSON, minus unknown properties.
    json: Json,
    /// Paths whose values failed the schema; entities under them are not merged.
    broken_paths: Vec<Vec<Segment>>,
    diagnostics: Vec<Diagnostic>,
}

/// Prepares `count` files with `prepare_one`, in parallel, returning them in index order: a
/// file's [`FileId`] is its index.
fn prepare_all(
    count: usize,
    prepare_one: impl Fn(FileId, usize) -> Prepared + Sync,
) -> Vec<Prepared> {
    let workers = std::thread::available_parallelism()
        .map_or(1, usize::from)
        .clamp(1, 8)
        .min(count.max(1));
    let next = std::sync::atomic::AtomicUsize::new(0);
    let mut done: Vec<(usize, Prepared)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                scope.spawn(|| {
                    let mut mine = Vec::new();
                    loop {
                        let index = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        if index >= count {
                            break mine;
                        }
                        mine.push((index, prepare_one(FileId(index as u32), index)));
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|handle| {
                handle
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect()
    });
    done.sort_by_key(|(index, _)| *index);
    done.into_iter().map(|(_, prepared)| prepared).collect()
}

fn prepare(
    id: FileId,
    dir: &Path,
    relative: &Path,
    shown_dir: &str,
    bytes_read: &AtomicU64,
) -> Prepared {
    let display = source::display_path(dir, relative);
    let path = dir.join(relative);
    let (source, mut read) = read_source(id, &path, &display);
    let length = source.text.len() as u64;
    let total = bytes_read.fetch_add(length, Ordering::Relaxed) + length;
    if read.is_ok() && total > discover::MAX_TOTAL_BYTES {
        read = Err(discover::too_many_bytes(shown_dir, id.0 as usize + 1));
        let empty = SourceFile::new(path, display, String::new());
        return prepare_source(id, empty, read);
    }
    prepare_source(id, source, read)
}

/// Parses a decoded file and checks it against the schema.
fn prepare_source(id: FileId, source: SourceFile, read: Result<(), Box<Diagnostic>>) -> Prepared {
    let mut prepared = Prepared {
        source,
        root: None,
        json: Json::Null,
        broken_paths: Vec::new(),
        diagnostics: Vec::new(),
    };
    if let Err(diagnostic) = read {
        prepared.diagnostics.push(*diagnostic);
        return prepared;
    }
    let root = match yaml::parse(id, &prepared.source.text) {
        Ok(root) => root,
        Err(diagnostic) => {
            prepared.diagnostics.push(*diagnostic);
            return prepared;
        }
    };
    // An empty file, or one of comments only, contributes nothing and is fine.
    let Some(root) = root.filter(|root| root.value != yaml::Value::Null) else {
        return prepared;
    };
    let mut json = root.to_json();
    for problem in PolicySchema::bundled().check(&root, &json) {
        if problem.droppable {
            drop_value(&mut json, &problem.path);
        } else {
            prepared.broken_paths.push(problem.path);
        }
        prepared.diagnostics.push(problem.diagnostic);
    }
    prepared.root = Some(root);
    prepared.json = json;
    prepared
}

/// Reads one file within the size limit and decodes it. The [`SourceFile`] exists even when
/// reading fails, so that every path keeps its [`FileId`].
fn read_source(
    id: FileId,
    path: &Path,
    display: &str,
) -> (SourceFile, Result<(), Box<Diagnostic>>) {
    let empty = || SourceFile::new(path.to_owned(), display.to_owned(), String::new());
    let unreadable = |error: std::io::Error| {
        Box::new(
            Diagnostic::new(
                Code::Io,
                format!("cannot read `{display}`: {}", io_reason(&error)),
            )
            .path(display)
            .help("check that the file exists and is readable by this user"),
        )
    };
    let mut bytes = Vec::new();
    let read = open_regular_file(path)
        .and_then(|file| file.take(MAX_FILE_BYTES + 1).read_to_end(&mut bytes));
    if let Err(error) = read {
        return (empty(), Err(unreadable(error)));
    }
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return (empty(), Err(too_large(display)));
    }
    decode(id, path.to_owned(), display, bytes)
}

/// Opens a file the walk found, refusing what it may have become since: a symbolic link
/// (never followed, wherever it points) or anything but a regular file (a FIFO would block).
fn open_regular_file(path: &Path) -> std::io::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK);
    }
    let file = options.open(path).map_err(|error| {
        #[cfg(unix)]
        if error.raw_os_error() == Some(libc::ELOOP) {
            return std::io::Error::other("it is a symbolic link, which is not followed");
        }
        error
    })?;
    if !file.metadata()?.is_file() {
        return Err(std::io::Error::other("it is not a regular file"));
    }
    Ok(file)
}

fn too_large(display: &str) -> Box<Diagnostic> {
    Box::new(
        Diagnostic::new(
            Code::Limit,
            format!(
                "`{display}` is larger than the limit of {} MiB",
                MAX_FILE_BYTES / 1024 / 1024
            ),
        )
        .path(display)
        .help("split the policy across several smaller files"),
    )
}

/// Decodes a file's bytes as UTF-8, pointing at the first byte that is not.
fn decode(
    id: FileId,
    path: PathBuf,
    display: &str,
    bytes: Vec<u8>,
) -> (SourceFile, Result<(), Box<Diagnostic>>) {
    match String::from_utf8(bytes) {
        Ok(text) => (SourceFile::new(path, display.to_owned(), text), Ok(())),
        Err(error) => {
            let valid = error.utf8_error().valid_up_to();
            let bytes = error.into_bytes();
            let prefix = std::str::from_utf8(&bytes[..valid]).unwrap_or_default();
            let line = prefix.matches('\n').count() as u32 + 1;
            let column = prefix.rsplit('\n').next().unwrap_or("").chars().count() as u32 + 1;
            // Shown with replacement characters, so the frame can still point at the line.
            let lossy = String::from_utf8_lossy(&bytes).into_owned();
            let diagnostic = Diagnostic::new(
                Code::Encoding,
                format!(
                    "`{display}` is not valid UTF-8: byte 0x{:02x} at offset {valid}",
                    bytes[valid]
                ),
            )
            .at(Span::point(id, Position { line, column }))
            .label("not UTF-8")
            .help("policy files are UTF-8: re-save the file with that encoding");
            (
                SourceFile::new(path, display.to_owned(), lossy),
                Err(Box::new(diagnostic)),
            )
        }
    }
}
