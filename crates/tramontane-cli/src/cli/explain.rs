use std::io::Write;

use super::{CommandError, ExitStatus};
use tramontane::policy::diagnostic::Code;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The code to explain, such as E010. Without one, every code is listed.
    pub code: Option<String>,
}

pub fn run(args: &Args) -> Result<ExitStatus, CommandError> {
    let text = match &args.code {
        None => Code::ALL
            .iter()
            .map(|code| format!("{code}  {}\n", code.title()))
            .collect::<String>(),
        Some(wanted) => {
            let code: Code = wanted.parse().map_err(|()| CommandError::Usage {
                message: format!("`{wanted}` is not a tramontane error code"),
                help: Some("run `tramontane explain` to list every code".into()),
            })?;
            format!(
                "{code}: {} ({})\n\n{}\n",
                code.title(),
                code.severity().as_str(),
                wrap(code.explanation(), 80)
            )
        }
    };
    std::io::stdout().lock().write_all(text.as_bytes())?;
    Ok(ExitStatus::Success)
}

fn wrap(text: &str, width: usize) -> String {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && line.len() + 1 + word.len() > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    lines.push(line);
    lines.join("\n")
}
