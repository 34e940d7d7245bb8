//! Every blob of every ref, read once.
//!
//! The commits of all refs are walked parents first, and each commit's tree is read whole,
//! skipping subtrees and blobs already read: a blob is checked once, at the first commit
//! (and path) where it appears. Reading trees rather than diffs is what finds a key that
//! exists only in a merge commit — a conflict resolved by pasting a key in — which tools
//! that read `git log -p` do not see, since a merge has no diff of its own there.

use std::collections::{HashMap, HashSet};

use git2::{ObjectType, Odb, Oid, Repository, Sort};

use super::detect::{self, FileContext, Rule};
use super::error::ScanError;
use super::finding::{CommitRef, Finding};
use super::ignore::is_env_file;
use super::{Coverage, SecretSinks};

const MODE_SYMLINK: i32 = 0o120000;

/// A ref's target, peeled through annotated tags.
struct Tip {
    reference: String,
    id: Oid,
    kind: ObjectType,
}

pub(super) fn scan(
    repo: &Repository,
    sinks: &SecretSinks,
    max_file_bytes: u64,
    coverage: &mut Coverage,
) -> Result<Vec<Finding>, ScanError> {
    // Every tree and blob is read once, so libgit2's object cache only grows: with it on, a
    // history of 50,000 blobs held its 256 MB ceiling. Off, memory is the seen-sets and the
    // pack windows.
    git2::opts::enable_caching(false);
    let tips = tips(repo)?;
    coverage.refs = tips.len() as u64;
    let odb = repo
        .odb()
        .map_err(|error| ScanError::git("open the object database", &error))?;
    let mut walker = Walker {
        repo,
        odb,
        sinks,
        max_file_bytes,
        coverage,
        seen_trees: HashSet::new(),
        seen_blobs: HashSet::new(),
        reported: HashSet::new(),
        findings: Vec::new(),
    };

    let (order, labels) = commits_parents_first(repo, &tips)?;
    for id in order {
        let commit = repo
            .find_commit(id)
            .map_err(|error| ScanError::git(format!("read commit {id}"), &error))?;
        walker.coverage.commits += 1;
        let label = labels.get(&id).copied().unwrap_or(0);
        let origin = CommitRef {
            id: id.to_string(),
            reference: tips[label].reference.clone(),
        };
        walker.tree(commit.tree_id(), &origin)?;
    }
    // A ref may name a tree or a blob directly (`git tag NAME <blob>`): read those too.
    for tip in &tips {
        let origin = CommitRef {
            id: tip.id.to_string(),
            reference: tip.reference.clone(),
        };
        match tip.kind {
            ObjectType::Tree => walker.tree(tip.id, &origin)?,
            ObjectType::Blob => walker.blob(tip.id, &tip.reference, &origin)?,
            _ => {}
        }
    }
    Ok(walker.findings)
}

/// Every ref and `HEAD`, in the order a commit is attributed to them: `HEAD`'s branch (or
/// `HEAD` itself when detached), then branches, tags, remote branches and any other ref
/// (stash, notes), each by name.
fn tips(repo: &Repository) -> Result<Vec<Tip>, ScanError> {
    let references = repo
        .references()
        .map_err(|error| ScanError::git("list the refs", &error))?;
    let mut named = Vec::new();
    for reference in references {
        let reference = reference.map_err(|error| ScanError::git("list the refs", &error))?;
        let name = String::from_utf8_lossy(reference.name_bytes()).into_owned();
        named.push((name, reference));
    }
    let head = repo.head().ok();
    let head_name = head.as_ref().map(|head| {
        if repo.head_detached().unwrap_or(false) {
            "HEAD".to_owned()
        } else {
            String::from_utf8_lossy(head.name_bytes()).into_owned()
        }
    });
    let group = |name: &str| {
        if Some(name) == head_name.as_deref() {
            0
        } else if name.starts_with("refs/heads/") {
            1
        } else if name.starts_with("refs/tags/") {
            2
        } else if name.starts_with("refs/remotes/") {
            3
        } else {
            4
        }
    };
    let mut tips = Vec::new();
    if let (Some(head), Some(name)) = (&head, &head_name)
        && name == "HEAD"
    {
        tips.push(peel(head, name)?);
    }
    named.sort_by(|(a, _), (b, _)| (group(a), a).cmp(&(group(b), b)));
    for (name, reference) in &named {
        tips.push(peel(reference, name)?);
    }
    Ok(tips)
}

fn peel(reference: &git2::Reference<'_>, name: &str) -> Result<Tip, ScanError> {
    let object = reference
        .peel(ObjectType::Any)
        .map_err(|error| ScanError::git(format!("read the ref `{name}`"), &error))?;
    Ok(Tip {
        reference: name.to_owned(),
        id: object.id(),
        kind: object.kind().unwrap_or(ObjectType::Any),
    })
}

/// The commits reachable from the tips, parents before children, and for each the index of
/// the first tip (in [`tips`]'s order) that reaches it.
fn commits_parents_first(
    repo: &Repository,
    tips: &[Tip],
) -> Result<(Vec<Oid>, HashMap<Oid, usize>), ScanError> {
    let walk_error = |error: git2::Error| ScanError::git("walk the history", &error);
    let mut walk = repo.revwalk().map_err(walk_error)?;
    walk.set_sorting(Sort::TOPOLOGICAL).map_err(walk_error)?;
    let mut labels: HashMap<Oid, usize> = HashMap::new();
    if !tips.iter().any(|tip| tip.kind == ObjectType::Commit) {
        // An empty repository: nothing to walk (and a walk with no start is an error).
        return Ok((Vec::new(), labels));
    }
    for (index, tip) in tips.iter().enumerate() {
        if tip.kind == ObjectType::Commit {
            walk.push(tip.id).map_err(walk_error)?;
            labels.entry(tip.id).or_insert(index);
        }
    }
    // Children come before parents here, so a commit's label is final when it is reached
    // and passes down to its parents: each gets the first tip reaching any child.
    let mut order = Vec::new();
    for id in walk {
        let id = id.map_err(walk_error)?;
        let label = labels.get(&id).copied().unwrap_or(0);
        let commit = repo
            .find_commit(id)
            .map_err(|error| ScanError::git(format!("read commit {id}"), &error))?;
        for parent in commit.parent_ids() {
            labels
                .entry(parent)
                .and_modify(|known| *known = (*known).min(label))
                .or_insert(label);
        }
        order.push(id);
    }
    order.reverse();
    Ok((order, labels))
}

struct Walker<'a> {
    repo: &'a Repository,
    odb: Odb<'a>,
    sinks: &'a SecretSinks,
    max_file_bytes: u64,
    coverage: &'a mut Coverage,
    seen_trees: HashSet<Oid>,
    seen_blobs: HashSet<Oid>,
    /// Fingerprints already reported from an earlier blob: a key kept through many edits
    /// of its file is one finding, at its first commit.
    reported: HashSet<String>,
    findings: Vec<Finding>,
}

impl Walker<'_> {
    /// Every blob under the tree `root` not read before; an explicit stack, so no depth of
    /// nesting can exhaust the call stack.
    fn tree(&mut self, root: Oid, origin: &CommitRef) -> Result<(), ScanError> {
        if !self.seen_trees.insert(root) {
            return Ok(());
        }
        let mut stack = vec![(root, String::new())];
        while let Some((id, prefix)) = stack.pop() {
            let tree = self
                .repo
                .find_tree(id)
                .map_err(|error| ScanError::git(format!("read tree {id}"), &error))?;
            for entry in tree.iter() {
                let name = String::from_utf8_lossy(entry.name_bytes());
                let path = if prefix.is_empty() {
                    name.into_owned()
                } else {
                    format!("{prefix}/{name}")
                };
                match entry.kind() {
                    Some(ObjectType::Tree) if self.seen_trees.insert(entry.id()) => {
                        stack.push((entry.id(), path));
                    }
                    Some(ObjectType::Blob) if entry.filemode() != MODE_SYMLINK => {
                        self.blob(entry.id(), &path, origin)?;
                    }
                    // Symbolic links hold a path; submodules are another repository.
                    _ => {}
                }
            }
        }
        Ok(())
    }

    fn blob(&mut self, id: Oid, path: &str, origin: &CommitRef) -> Result<(), ScanError> {
        if is_env_file(path) {
            let mut finding = Finding::file(Rule::EnvFileTracked, path, 1, 1, "");
            finding.commit = Some(origin.clone());
            if self.reported.insert(finding.fingerprint.clone()) {
                self.findings.push(finding);
            }
        }
        if !self.seen_blobs.insert(id) {
            return Ok(());
        }
        self.coverage.blobs += 1;
        let (size, _) = self
            .odb
            .read_header(id)
            .map_err(|error| ScanError::git(format!("read blob {id} ({path})"), &error))?;
        if size as u64 > self.max_file_bytes {
            self.coverage.too_large(path);
            return Ok(());
        }
        let blob = self
            .repo
            .find_blob(id)
            .map_err(|error| ScanError::git(format!("read blob {id} ({path})"), &error))?;
        if detect::is_binary(blob.content()) {
            self.coverage.binary += 1;
            return Ok(());
        }
        let text = String::from_utf8_lossy(blob.content());
        let context = FileContext {
            is_secret_sink: self.sinks.paths.contains(path),
        };
        let mut fresh = Vec::new();
        for found in detect::find_secrets(path, &text, context) {
            let mut finding =
                Finding::secret(found.rule, path, found.line, found.column, found.secret);
            if self.reported.contains(&finding.fingerprint) {
                continue;
            }
            finding.commit = Some(origin.clone());
            fresh.push(finding);
        }
        for finding in fresh {
            self.reported.insert(finding.fingerprint.clone());
            self.findings.push(finding);
        }
        Ok(())
    }
}
