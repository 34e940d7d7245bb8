use std::io::Write;
use std::path::{Path, PathBuf};

use super::import;
use super::org::OrgArgs;
use super::{CommandError, ExitStatus};
use tramontane::clock::day_of;
use tramontane::repository::RepositoryRoot;
use tramontane::scaffold::{self, DEFAULT_ADMIN, EDIT_MARKER, POLICIES_DIR, ScaffoldOptions};

#[derive(Debug, clap::Args)]
// The organization flags are `import`'s, but the one naming the org is `--from-org` here
// (and not read from TRAMONTANE_ORG): init writes the starter unless asked otherwise.
#[command(mut_arg("journal", |arg| arg.hide(true)))]
#[command(mut_arg("org", |arg| arg
    .long("from-org")
    .env(None::<&str>)
    .value_name("ORG")
    .help("Import this organization (`mistral`, `sandbox:demo` or `sandbox:PATH`) as the policies instead of writing the starter")))]
pub struct Args {
    /// The directory of the new policy repository (created if missing).
    #[arg(default_value = ".")]
    pub dir: PathBuf,

    /// The email of the starter's organization admin.
    #[arg(long, value_name = "EMAIL", default_value = DEFAULT_ADMIN, conflicts_with = "org")]
    pub admin: String,

    #[command(flatten)]
    pub from_org: OrgArgs,

    #[command(flatten)]
    pub clock: super::ClockArgs,
}

pub fn run(args: &Args) -> Result<ExitStatus, CommandError> {
    let policies = args.dir.join(POLICIES_DIR);
    if policies.symlink_metadata().is_ok() {
        return Err(CommandError::Usage {
            message: format!(
                "`{}` already exists; init writes a new policy repository and overwrites nothing",
                policies.display()
            ),
            help: Some(
                "run `tramontane init` in an empty directory, or pass one: `tramontane init NEW-DIR`"
                    .into(),
            ),
        });
    }
    // A file the starter would write or extend through a symbolic link (a committed
    // `.gitignore -> ../elsewhere`, `.github -> /somewhere`) would land outside the
    // repository: refused before anything is written.
    for file in scaffold::scaffold(&ScaffoldOptions {
        admin: args.admin.clone(),
    }) {
        if let Some(link) = tramontane::policy::secret_path::first_link(&args.dir, &file.path) {
            return Err(CommandError::Usage {
                message: format!(
                    "`{}` is a symbolic link; init would write `{}` through it, and writes through no link",
                    args.dir.join(&link).display(),
                    file.path.display()
                ),
                help: Some(
                    "replace the link with the file or directory itself, or run `tramontane init` in a new directory"
                        .into(),
                ),
            });
        }
    }
    // The live org is read whole before anything is written, so a missing key or an
    // unreachable API leaves the directory as it was.
    let now = args.clock.now();
    let imported = match args.from_org.org {
        Some(_) => Some(import::read_live_as_policy(
            &args.from_org,
            now,
            &RepositoryRoot::of_policies(&policies),
        )?),
        None => None,
    };
    let mut files = scaffold::scaffold(&ScaffoldOptions {
        admin: args.admin.clone(),
    });
    if imported.is_some() {
        files.retain(|file| !file.path.starts_with(POLICIES_DIR));
    }
    // Files beside `policies/` that the user already has (a README, a .gitignore) are kept:
    // init adds to a repository, it never replaces what is there. A .gitignore gains the
    // entries that keep secrets out of git, which a repository must not start without.
    let mut created = Vec::new();
    let mut kept = Vec::new();
    let mut extended = Vec::new();
    for file in &files {
        let path = args.dir.join(&file.path);
        if path.symlink_metadata().is_ok() {
            if file.path == Path::new(".gitignore") {
                let existing = std::fs::read_to_string(&path)?;
                if let Some(additions) = scaffold::gitignore_additions(&existing) {
                    std::fs::OpenOptions::new()
                        .append(true)
                        .open(&path)?
                        .write_all(additions.as_bytes())?;
                    extended.push(&file.path);
                    continue;
                }
            }
            kept.push(&file.path);
            continue;
        }
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)?
            .write_all(file.content.as_bytes())?;
        created.push(&file.path);
    }
    // Written after the schema, so the policy files' modelines find it.
    if let Some((desired, notes)) = &imported {
        import::write_policy_files(&policies, desired, notes, day_of(now))?;
    }
    let mut stdout = std::io::stdout().lock();
    writeln!(
        stdout,
        "Created a policy repository in {}:",
        args.dir.display()
    )?;
    if let Some((desired, _)) = &imported {
        writeln!(
            stdout,
            "  {POLICIES_DIR}/ (imported from {}: {} members, {} workspaces, {} teams)",
            args.from_org.org.as_deref().unwrap_or_default(),
            desired.members.len(),
            desired.workspaces.len(),
            desired.teams.len()
        )?;
    }
    for path in created {
        writeln!(stdout, "  {}", path.display())?;
    }
    for path in extended {
        writeln!(
            stdout,
            "  {} (exists, added what it lacked of: {})",
            path.display(),
            scaffold::GITIGNORE_ENTRIES.join(" ")
        )?;
    }
    for path in kept {
        writeln!(stdout, "  {} (exists, kept as it was)", path.display())?;
    }
    let cd = if args.dir == Path::new(".") {
        String::new()
    } else {
        format!("  cd {}\n", args.dir.display())
    };
    match args.from_org.org.as_deref() {
        // Planned against the org it came from, the imported policy should show no change.
        Some(org) => write!(
            stdout,
            "\nNext, check the import against the organization it came from:\n{cd}  tramontane validate\n  tramontane plan --org {org}\n"
        )?,
        None => write!(
            stdout,
            "\nNext, try it against a sandbox organization (created on first use):\n{cd}  tramontane validate\n  tramontane plan --org sandbox:.tramontane/org.json\n  tramontane apply --org sandbox:.tramontane/org.json\n"
        )?,
    }
    match scaffold::action_reference() {
        Some(reference) => writeln!(
            stdout,
            "\nThe workflows in .github/workflows/ install tramontane with `uses: {reference}`; they run once the secret MISTRAL_ADMIN_API_KEY exists."
        )?,
        None => writeln!(
            stdout,
            "\nBefore pushing: the workflows in .github/workflows/ name the action as OWNER/tramontane; edit each `uses:` line marked `{EDIT_MARKER}` to pin it, then add the secret MISTRAL_ADMIN_API_KEY."
        )?,
    }
    Ok(ExitStatus::Success)
}
