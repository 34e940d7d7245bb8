use std::io::Write;
use std::path::{Path, PathBuf};

use super::{CommandError, ExitStatus};
use crate::scaffold::{self, DEFAULT_ADMIN, EDIT_MARKER, POLICIES_DIR, ScaffoldOptions};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The directory of the new policy repository (created if missing).
    #[arg(default_value = ".")]
    pub dir: PathBuf,

    /// The email of the starter's organization admin.
    #[arg(long, value_name = "EMAIL", default_value = DEFAULT_ADMIN)]
    pub admin: String,
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
    let files = scaffold::scaffold(&ScaffoldOptions {
        admin: args.admin.clone(),
    });
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
    let mut stdout = std::io::stdout().lock();
    writeln!(
        stdout,
        "Created a policy repository in {}:",
        args.dir.display()
    )?;
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
    write!(
        stdout,
        "\nNext, try it against a sandbox organization (created on first use):\n{cd}  tramontane validate\n  tramontane plan --org sandbox:org.json\n  tramontane apply --org sandbox:org.json\n"
    )?;
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
