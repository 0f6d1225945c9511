//! `auspex`: parse the command line and run the command (`cli` holds each one).

use std::process::ExitCode;

use clap::Parser;

use auspex::cli;
use auspex::config::{Cli, Command};

fn main() -> ExitCode {
    match Cli::parse().into_command() {
        Command::Serve(args) => cli::serve(args),
        Command::Run(args) => cli::run(args),
        Command::Replay(args) => cli::replay(args),
        Command::Inspect(args) => cli::inspect(args),
        Command::Verify(args) => cli::verify(args),
        Command::Jobs(args) => cli::jobs(args),
        Command::Users(args) => cli::users(args),
        Command::Roles(args) => cli::roles(args),
    }
}
