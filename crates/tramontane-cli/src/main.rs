use std::process::ExitCode;

use clap::Parser;
mod cli;

use cli::{Cli, command_error};

fn main() -> ExitCode {
    // Before any client is made: every HTTPS client, and a `rediss://` store, uses it.
    tramontane::tls::install_default_provider();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(usage) => {
            // Help and version go to stdout, usage errors to stderr; a closed pipe is no
            // reason to fail.
            let _ = usage.print();
            return command_error::usage_exit_code(&usage);
        }
    };
    match cli::run(cli) {
        Ok(status) => ExitCode::from(status.code()),
        Err(error) => {
            eprint!("{}", error.report());
            error.exit_code()
        }
    }
}
