//! `tramontane gateway issue` and `tramontane gateway revoke`: gateway keys as policy changes.
//!
//! Issuing mints a key, delivers it once and writes only its digest into the policy, so that
//! granting access is a pull request like any other change; revoking deletes the entry. The
//! key itself goes to the sink (or the terminal) and nowhere else: never to stderr, an error
//! or a file under the policy directory.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use jiff::ToSpan;
use jiff::civil::Date;
use secrecy::{ExposeSecret, SecretString};

use super::{ColorChoice, CommandError, ExitStatus, PoliciesArg};
use tramontane::gateway_key::{self, policy_file};
use tramontane::model::{GatewayKey, GatewayKeyId, Holder, SecretSink};
use tramontane::policy::{self, LoadOptions, LoadedPolicy, PolicyText};
use tramontane::render::diagnostics;

/// Days a gateway key lives when neither `--expires` nor `--days` is given.
pub const DEFAULT_DAYS: i64 = 90;
/// Longest life `--days` accepts.
pub const MAX_DAYS: i64 = 3650;

#[derive(Debug, clap::Subcommand)]
pub enum GatewayCommand {
    /// Serve Mistral's inference API to holders of gateway keys, enforcing the policy's
    /// runtime limits; reloads the policy on change and on SIGHUP.
    // Boxed: its many flags make it far larger than the other variants.
    Serve(Box<super::gateway::ServeArgs>),
    /// Mint a gateway key, deliver it once, and add its digest to the policy for review.
    Issue(IssueArgs),
    /// Remove a gateway key's entry from the policy; the key stops working once the gateway
    /// reloads the merged policy.
    Revoke(RevokeArgs),
}

#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("holder").required(true).args(["member", "key"])))]
#[command(mut_arg("policies", |arg| arg.help(
    "Directory of policy files; the entry goes into the file that holds `gateway_keys`, \
     or a new `gateway-keys.yaml` there"
)))]
pub struct IssueArgs {
    /// The member the key is for, by email; the gateway forwards with the workspace's
    /// `gateway.upstream_key`.
    #[arg(long, value_name = "EMAIL")]
    pub member: Option<String>,

    /// The service key the key is for, as `workspace.W.key.K`; the gateway forwards with that
    /// key's own secret.
    #[arg(long, value_name = "workspace.W.key.K")]
    pub key: Option<String>,

    /// The workspace the key calls in. Required with --member; with --key it is the key's.
    #[arg(long, value_name = "W", required_unless_present = "key")]
    pub workspace: Option<String>,

    /// The day (UTC) the key stops working.
    #[arg(long, value_name = "YYYY-MM-DD", conflicts_with = "days")]
    pub expires: Option<Date>,

    /// Days from today until the key stops working [default: 90].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(i64).range(1..=MAX_DAYS))]
    pub days: Option<i64>,

    /// What the key is for, written into the entry.
    #[arg(long, value_name = "TEXT")]
    pub description: Option<String>,

    /// Where the key goes: `file:PATH` (written with mode 0600) or `command:PROGRAM ARGS...`
    /// (the key on its stdin; arguments split at spaces). Without one, the key is printed
    /// once, and only when stdout is a terminal.
    #[arg(long, value_name = "file:PATH|command:...")]
    pub sink: Option<String>,

    #[command(flatten)]
    pub policies: PoliciesArg,

    #[command(flatten)]
    pub clock: super::ClockArgs,
}

#[derive(Debug, clap::Args)]
pub struct RevokeArgs {
    /// The key's public id: its name under `gateway_keys`, the part after `tmt_`.
    #[arg(value_name = "PUBLIC_ID")]
    pub id: String,

    #[command(flatten)]
    pub policies: PoliciesArg,
}

pub fn run(command: &GatewayCommand, color: ColorChoice) -> Result<ExitStatus, CommandError> {
    match command {
        GatewayCommand::Serve(args) => super::gateway::serve(args),
        GatewayCommand::Issue(args) => issue(args, color),
        GatewayCommand::Revoke(args) => revoke(args),
    }
}

/// Where the minted key goes.
enum Delivery {
    Sink(SecretSink),
    /// Printed on stdout, which is a terminal.
    Terminal,
}

fn usage(message: impl Into<String>, help: impl Into<String>) -> CommandError {
    CommandError::Usage {
        message: message.into(),
        help: Some(help.into()),
    }
}

fn issue(args: &IssueArgs, color: ColorChoice) -> Result<ExitStatus, CommandError> {
    // Everything that can be refused is refused before a key exists.
    let delivery = delivery(args.sink.as_deref())?;
    let today = tramontane::clock::day_of(args.clock.now());
    let expires = expiry(args, today)?;
    let (holder, workspace) = holder_and_workspace(args)?;
    let shown_dir = args.policies.dir.to_string_lossy().into_owned();
    let options = LoadOptions::new(today);
    let loaded = policy::load(&args.policies.dir, &options);
    if !loaded.is_valid() {
        report_diagnostics(&loaded, &shown_dir, color)?;
        return Err(usage(
            format!("the policies under `{shown_dir}` are not valid"),
            "fix the errors above first, so that the new key's entry is reviewed on a valid policy",
        ));
    }

    let (id, key) = mint_unused(&loaded)?;
    let entry = GatewayKey {
        digest: gateway_key::digest_of(&key),
        holder,
        workspace,
        expires,
        description: args.description.clone(),
    };
    let target = entry_file(&args.policies.dir, &loaded)?;
    let edited = match &target.text {
        Some(text) => policy_file::insert(text, &target.display, &id, &entry),
        None => Ok(policy_file::new_file(&id, &entry)),
    }
    .map_err(|error| usage(error.to_string(), error.help()))?;

    // The policy with the entry, checked as `validate` will check it in the pull request.
    let candidate = with_file(&loaded, &target, &edited);
    let checked = policy::load_texts(&shown_dir, candidate, &options);
    if !checked.is_valid() {
        report_diagnostics(&checked, &shown_dir, color)?;
        return Err(usage(
            format!(
                "a gateway key for `{}` in workspace `{}` would not be valid",
                entry.holder, entry.workspace
            ),
            "no key was issued; fix what the errors above say and run the command again",
        ));
    }

    // Delivered before the entry is written: an entry whose key never arrived would grant
    // nothing, but would still have to be reviewed and later removed.
    let delivered_to = match &delivery {
        Delivery::Sink(sink) => {
            tramontane::apply::deliver(
                sink,
                &key,
                Path::new("."),
                tramontane::apply::DEFAULT_COMMAND_TIMEOUT,
            )
            .map_err(|problem| {
                usage(
                    format!("the key could not be delivered: {problem}"),
                    "no entry was written and the key is void; fix the sink and run the command again",
                )
            })?;
            describe_sink(sink)
        }
        Delivery::Terminal => {
            print_once(&key)?;
            "the terminal above".to_owned()
        }
    };
    drop(key);

    write_file(&target.path, &edited)?;
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "Issued gateway key `{id}` for {} in workspace `{}`, delivered to {delivered_to}; it stops working on {expires} (UTC).",
        entry.holder, entry.workspace,
    )?;
    writeln!(
        out,
        "Its digest is now in {}. The key works once that change is merged and the gateway has reloaded the policy:",
        target.display
    )?;
    writeln!(out, "  git add {}", target.display)?;
    writeln!(
        out,
        "  git commit -m \"Gateway key {id} for {} in {}\"",
        entry.holder, entry.workspace
    )?;
    Ok(ExitStatus::Success)
}

fn delivery(sink: Option<&str>) -> Result<Delivery, CommandError> {
    let Some(spec) = sink else {
        if std::io::stdout().is_terminal() {
            return Ok(Delivery::Terminal);
        }
        return Err(usage(
            "stdout is not a terminal, and the key is printed only to a terminal",
            "give --sink file:PATH (written with mode 0600) or --sink 'command:PROGRAM ARGS...' (the key on its stdin), so the key is not left in a log or a pipe",
        ));
    };
    if let Some(path) = spec.strip_prefix("file:") {
        if path.is_empty() {
            return Err(usage(
                "`--sink file:` names no file",
                "write --sink file:PATH",
            ));
        }
        return Ok(Delivery::Sink(SecretSink::File(path.to_owned())));
    }
    if let Some(command) = spec.strip_prefix("command:") {
        let argv: Vec<String> = command.split_whitespace().map(str::to_owned).collect();
        if argv.is_empty() {
            return Err(usage(
                "`--sink command:` names no program",
                "write --sink 'command:PROGRAM ARGS...', such as 'command:vault kv put secret/gateway/bo key=-'",
            ));
        }
        return Ok(Delivery::Sink(SecretSink::Command(argv)));
    }
    Err(usage(
        format!("`{spec}` is not a sink"),
        "write --sink file:PATH or --sink 'command:PROGRAM ARGS...'",
    ))
}

fn describe_sink(sink: &SecretSink) -> String {
    match sink {
        SecretSink::File(path) => format!("`{path}`"),
        // Only the program: its arguments may carry tokens of their own.
        SecretSink::Command(argv) => format!(
            "the stdin of `{}`",
            argv.first().map(String::as_str).unwrap_or("")
        ),
    }
}

fn expiry(args: &IssueArgs, today: Date) -> Result<Date, CommandError> {
    if let Some(date) = args.expires {
        if date <= today {
            return Err(usage(
                format!("--expires {date} is not after today ({today}, UTC)"),
                "give a future day, or --days N",
            ));
        }
        return Ok(date);
    }
    let days = args.days.unwrap_or(DEFAULT_DAYS);
    today.checked_add(days.days()).map_err(|_| {
        usage(
            format!("{days} days from {today} is past the last date there is"),
            "give fewer --days",
        )
    })
}

fn holder_and_workspace(args: &IssueArgs) -> Result<(Holder, String), CommandError> {
    match (&args.member, &args.key) {
        (Some(email), None) => {
            let workspace = args.workspace.clone().ok_or_else(|| {
                usage(
                    "--member needs --workspace",
                    "add --workspace W: the workspace the member's key calls in",
                )
            })?;
            match Holder::parse(email) {
                Holder::Member(email) => Ok((Holder::Member(email), workspace)),
                Holder::ServiceKey { .. } => Err(usage(
                    format!("`{email}` is a key address, not an email"),
                    format!("issue a key for a service with --key {email}"),
                )),
            }
        }
        (None, Some(address)) => match Holder::parse(address) {
            Holder::ServiceKey { workspace, key } => {
                if let Some(given) = args.workspace.as_ref().filter(|given| **given != workspace) {
                    return Err(usage(
                        format!(
                            "`{address}` is a key of workspace `{workspace}`, not of `{given}`"
                        ),
                        format!(
                            "a service calls in its own key's workspace: drop --workspace, or give --workspace {workspace}"
                        ),
                    ));
                }
                Ok((Holder::service_key(&workspace, &key), workspace))
            }
            Holder::Member(_) => Err(usage(
                format!("`{address}` is not a key address"),
                "write the service key as workspace.W.key.K, such as workspace.prod.key.support-bot; for a person, use --member EMAIL",
            )),
        },
        // clap's group makes exactly one of them present.
        _ => Err(usage(
            "give exactly one of --member and --key",
            "--member EMAIL for a person, --key workspace.W.key.K for a service",
        )),
    }
}

/// A new key whose public id no entry uses yet. Two mints colliding is a 1 in 2^62 chance;
/// a few tries make it impossible in practice, and the error covers a broken random source.
fn mint_unused(loaded: &LoadedPolicy) -> Result<(GatewayKeyId, SecretString), CommandError> {
    for _ in 0..8 {
        let (id, key) =
            gateway_key::mint().map_err(|error| usage(error.to_string(), error.help()))?;
        if !loaded.desired.gateway_keys.contains_key(&id) {
            return Ok((id, key));
        }
    }
    Err(usage(
        "every public id minted is already in use",
        "the system's random source is not random: check it before issuing keys",
    ))
}

/// The policy file an entry is written to.
struct TargetFile {
    path: PathBuf,
    display: String,
    /// The file's text; `None` for a file to be created.
    text: Option<String>,
}

/// The `gateway-keys.yaml` of the policy directory if it exists, else the first file that
/// holds a `gateway_keys` section, else a new `gateway-keys.yaml`.
fn entry_file(dir: &Path, loaded: &LoadedPolicy) -> Result<TargetFile, CommandError> {
    let default_path = dir.join(policy_file::DEFAULT_FILE);
    let mut holding = None;
    for (_, source) in loaded.sources.iter() {
        if source.path == default_path {
            return Ok(target_of(source));
        }
        let has_section = policy::yaml::parse(policy::source::FileId(0), &source.text)
            .ok()
            .flatten()
            .is_some_and(|root| root.get("gateway_keys").is_some());
        if has_section && holding.is_none() {
            holding = Some(target_of(source));
        }
    }
    if let Some(target) = holding {
        return Ok(target);
    }
    if default_path.exists() {
        return Err(usage(
            format!(
                "`{}` exists but is not a policy file that was read",
                default_path.display()
            ),
            "make it a regular policy file, or remove it",
        ));
    }
    Ok(TargetFile {
        display: policy::source::display_path(dir, Path::new(policy_file::DEFAULT_FILE)),
        path: default_path,
        text: None,
    })
}

fn target_of(source: &policy::source::SourceFile) -> TargetFile {
    TargetFile {
        path: source.path.clone(),
        display: source.display.clone(),
        text: Some(source.text.clone()),
    }
}

/// Every policy file as loaded, with the target's text replaced by (or added as) `edited`.
fn with_file(loaded: &LoadedPolicy, target: &TargetFile, edited: &str) -> Vec<PolicyText> {
    let mut files: Vec<PolicyText> = loaded
        .sources
        .iter()
        .filter(|(_, source)| source.path != target.path)
        .map(|(_, source)| PolicyText {
            display: source.display.clone(),
            bytes: source.text.clone().into_bytes(),
        })
        .collect();
    files.push(PolicyText {
        display: target.display.clone(),
        bytes: edited.as_bytes().to_vec(),
    });
    files
}

fn report_diagnostics(
    loaded: &LoadedPolicy,
    shown_dir: &str,
    color: ColorChoice,
) -> Result<(), CommandError> {
    let stderr = std::io::stderr();
    let text = diagnostics::human(loaded, shown_dir, color.enabled(stderr.is_terminal()));
    stderr.lock().write_all(text.as_bytes())?;
    Ok(())
}

/// The key on stdout, once, with the warning that it is the only time.
fn print_once(key: &SecretString) -> Result<(), CommandError> {
    writeln!(
        std::io::stderr().lock(),
        "The gateway key, shown this once and kept nowhere; store it now:"
    )?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{}", key.expose_secret())?;
    out.flush()?;
    Ok(())
}

/// Replaces a policy file with `text`: written beside it and renamed over it, so a reader
/// (or a crash) never sees half an edit; a file that existed keeps its permissions.
fn write_file(path: &Path, text: &str) -> Result<(), CommandError> {
    let file_error = |action: &'static str, source: std::io::Error| CommandError::File {
        path: path.to_owned(),
        action,
        source,
    };
    let parent = path
        .parent()
        .filter(|parent| !parent.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let temporary = parent.join(format!(".{name}.{}.tmp", std::process::id()));
    let written = (|| {
        std::fs::write(&temporary, text)?;
        if let Ok(metadata) = std::fs::metadata(path) {
            std::fs::set_permissions(&temporary, metadata.permissions())?;
        }
        std::fs::rename(&temporary, path)
    })();
    written.map_err(|error| {
        let _ = std::fs::remove_file(&temporary);
        file_error("write", error)
    })
}

fn revoke(args: &RevokeArgs) -> Result<ExitStatus, CommandError> {
    let shown_dir = args.policies.dir.to_string_lossy().into_owned();
    let id = GatewayKeyId::parse(&args.id).map_err(|error| {
        usage(
            format!("`{}` is not a gateway key id: {error}", args.id),
            "give the key's public id, its name under `gateway_keys` (the part between `tmt_` and the next `_`)",
        )
    })?;
    // Revoking must work on a policy with unrelated errors too: access is taken away first.
    let today = tramontane::clock::day_of(jiff::Timestamp::now());
    let loaded = policy::load(&args.policies.dir, &LoadOptions::new(today));
    let mut edits = Vec::new();
    for (_, source) in loaded.sources.iter() {
        match policy_file::remove(&source.text, &source.display, &id) {
            Ok(Some(edited)) => edits.push((source, edited)),
            Ok(None) => {}
            Err(error) => return Err(usage(error.to_string(), error.help())),
        }
    }
    if edits.is_empty() {
        let known: Vec<&str> = loaded
            .desired
            .gateway_keys
            .keys()
            .map(GatewayKeyId::as_str)
            .collect();
        let help = match tramontane::policy::diagnostic::closest(id.as_str(), known.iter().copied())
        {
            Some(suggestion) => format!("did you mean `{suggestion}`?"),
            None if known.is_empty() => format!("`{shown_dir}` defines no gateway keys"),
            None => format!("the gateway keys are: {}", known.join(", ")),
        };
        return Err(usage(
            format!("no gateway key `{id}` under `{shown_dir}`"),
            help,
        ));
    }
    let entry = loaded.desired.gateway_keys.get(&id);
    for (source, edited) in &edits {
        write_file(&source.path, edited)?;
    }
    let files: Vec<&str> = edits
        .iter()
        .map(|(source, _)| source.display.as_str())
        .collect();
    let mut out = std::io::stdout().lock();
    match entry {
        Some(entry) => writeln!(
            out,
            "Removed gateway key `{id}` ({} in workspace `{}`) from {}.",
            entry.holder,
            entry.workspace,
            files.join(", ")
        )?,
        None => writeln!(out, "Removed gateway key `{id}` from {}.", files.join(", "))?,
    }
    writeln!(
        out,
        "The key stops working once this change is merged and the gateway has reloaded the policy:"
    )?;
    writeln!(out, "  git add {}", files.join(" "))?;
    writeln!(out, "  git commit -m \"Revoke gateway key {id}\"")?;
    Ok(ExitStatus::Success)
}
