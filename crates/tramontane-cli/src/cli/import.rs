use std::io::Write;
use std::path::{Path, PathBuf};

use super::org::{Org, OrgArgs, runtime};
use super::{CommandError, ExitStatus};
use tramontane::model::DesiredOrg;
use tramontane::model::import::desired_from_live;
use tramontane::policy::write::to_yaml;
use tramontane::provider::Provider;
use tramontane::repository::RepositoryRoot;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub org: OrgArgs,

    /// Directory to write the policy files into; must not hold policy files already.
    #[arg(long)]
    pub out: PathBuf,

    #[command(flatten)]
    pub clock: super::plan::Clock,
}

pub fn run(args: &Args) -> Result<ExitStatus, CommandError> {
    let now = args.clock.now();
    let today = super::plan::day_of(now);
    if has_policy_files(&args.out) {
        return Err(CommandError::Usage {
            message: format!("`{}` already holds policy files", args.out.display()),
            help: Some("import into an empty directory, so nothing is overwritten".into()),
        });
    }
    let (desired, notes) = read_live_as_policy(&args.org, now, &RepositoryRoot::current())?;
    let files = write_policy_files(&args.out, &desired, &notes, today)?;
    writeln!(
        std::io::stderr().lock(),
        "imported {} members, {} workspaces, {} teams and {} keys into `{}` ({} files)",
        desired.members.len(),
        desired.workspaces.len(),
        desired.teams.len(),
        desired
            .workspaces
            .values()
            .map(|w| w.keys.len())
            .sum::<usize>(),
        args.out.display(),
        files
    )?;
    Ok(ExitStatus::Success)
}

/// Reads the organization `args` name, whole, and turns it into the policy that describes
/// it, with notes on what a policy cannot say. `root` is where `sandbox:demo` lives.
pub fn read_live_as_policy(
    args: &OrgArgs,
    now: jiff::Timestamp,
    root: &RepositoryRoot,
) -> Result<(DesiredOrg, Vec<String>), CommandError> {
    let (org, _) = Org::open(args, now, None, root)?;
    let live = runtime()?.block_on(org.read())?;
    let (desired, notes) = desired_from_live(&live, super::plan::day_of(now));
    Ok((desired, notes))
}

/// Writes `desired` into `out` as policy files (the organization and its members, the
/// teams, one file per workspace), prints the notes on stderr and returns how many files
/// were written.
pub fn write_policy_files(
    out: &Path,
    desired: &DesiredOrg,
    notes: &[String],
    today: jiff::civil::Date,
) -> Result<usize, CommandError> {
    let mut files: Vec<(PathBuf, DesiredOrg)> = Vec::new();
    let mut head = DesiredOrg {
        organization: desired.organization.clone(),
        ..DesiredOrg::default()
    };
    head.members = desired.members.clone();
    files.push((PathBuf::from("organization.yaml"), head));
    if !desired.teams.is_empty() {
        files.push((
            PathBuf::from("teams.yaml"),
            DesiredOrg {
                teams: desired.teams.clone(),
                ..DesiredOrg::default()
            },
        ));
    }
    for (name, workspace) in &desired.workspaces {
        let mut part = DesiredOrg::default();
        part.workspaces.insert(name.clone(), workspace.clone());
        files.push((
            Path::new("workspaces").join(format!("{}.yaml", file_stem(name))),
            part,
        ));
    }
    let mut seen = std::collections::HashSet::new();
    for (relative, part) in &mut files {
        // Two workspace names can make the same file name: number the later ones.
        let mut candidate = relative.clone();
        let mut n = 2;
        while !seen.insert(candidate.clone()) {
            candidate = relative.with_file_name(format!(
                "{}-{n}.yaml",
                relative
                    .file_stem()
                    .and_then(|s| s.to_str())
                    .unwrap_or("workspace")
            ));
            n += 1;
        }
        let path = out.join(&candidate);
        let write = |source| CommandError::File {
            path: path.clone(),
            action: "write",
            source,
        };
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(write)?;
        }
        let modeline = schema_relative_to(&path)
            .map(|schema| format!("# yaml-language-server: $schema={schema}\n"))
            .unwrap_or_default();
        let text = format!(
            "{modeline}# Imported by `tramontane import` on {today}.\n{}",
            to_yaml(part)
        );
        std::fs::write(&path, text).map_err(write)?;
    }
    let mut stderr = std::io::stderr().lock();
    for note in notes {
        writeln!(stderr, "note: {note}")?;
    }
    Ok(files.len())
}

/// Where the schema sits, as an editor resolves it from `file`: the nearest
/// `policy.schema.json` or `schema/policy.schema.json` in the file's directory or above, up
/// to the repository root. None when there is none, since a modeline naming a missing file
/// only makes the editor complain (`tramontane schema > policy.schema.json` adds one).
fn schema_relative_to(file: &Path) -> Option<String> {
    let dir = std::path::absolute(file.parent()?).ok()?;
    for (levels_up, ancestor) in dir.ancestors().enumerate() {
        if let Some(schema) = SCHEMA_PATHS
            .iter()
            .find(|schema| ancestor.join(schema).is_file())
        {
            return Some(format!("{}{schema}", "../".repeat(levels_up)));
        }
        if ancestor.join(".git").exists() {
            break;
        }
    }
    None
}

/// Where a policy repository keeps the schema, as the README suggests, and as this project
/// keeps it.
const SCHEMA_PATHS: [&str; 2] = ["policy.schema.json", "schema/policy.schema.json"];

fn has_policy_files(dir: &Path) -> bool {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return false;
    };
    entries.filter_map(Result::ok).any(|entry| {
        let path = entry.path();
        path.is_dir()
            || path
                .extension()
                .is_some_and(|ext| ext == "yaml" || ext == "yml")
    })
}

/// A file name for a workspace: lower case, letters, digits and dashes.
fn file_stem(name: &str) -> String {
    let stem: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    let stem = stem.trim_matches('-').to_owned();
    if stem.is_empty() {
        "workspace".into()
    } else {
        stem
    }
}
