//! `panns`: build, query, inspect and evaluate approximate nearest-neighbour indexes.
//!
//! Every failure prints one line `panns: error: <what> (<file>)` on stderr and exits
//! with code 2 for a usage mistake, 1 otherwise.
#![warn(missing_docs)]

mod cli;
mod cmd_build;
mod cmd_info;
mod cmd_live;
mod cmd_query;
mod cmd_shard;
mod demo;
mod error;
mod eval;
mod files;
mod measure;
mod peers;
mod plot;
mod progress;
mod truth;

use clap::Parser;
use error::{CliError, EXIT_USAGE};
use std::process::ExitCode;

fn run(cli: cli::Cli) -> error::Result<()> {
    match cli.command {
        cli::Command::Build(a) => cmd_build::run(&a),
        cli::Command::Query(a) => cmd_query::run(&a),
        cli::Command::Info(a) => cmd_info::run(&a),
        cli::Command::Eval(a) => eval::run(&a),
        cli::Command::Add(a) => cmd_live::add(&a),
        cli::Command::Remove(a) => cmd_live::remove(&a),
        cli::Command::Compact(a) => cmd_live::compact(&a),
        cli::Command::Shard(a) => cmd_shard::run(&a),
        cli::Command::Demo(a) => demo::run(&demo::DemoOptions {
            quick: a.quick,
            seed: a.seed,
            threads: a.threads,
        }),
    }
}

/// Turns a clap error into one line (clap's own text has usage and tips below it).
fn usage_error(e: &clap::Error) -> CliError {
    let text = e.render().to_string();
    // The first paragraph, on one line (it may list the missing arguments below it).
    let first: Vec<&str> = text
        .lines()
        .map(str::trim)
        .skip_while(|l| l.is_empty())
        .take_while(|l| !l.is_empty())
        .collect();
    let first = first.join(" ");
    let what = first.strip_prefix("error:").unwrap_or(&first).trim();
    let what = if what.is_empty() {
        "invalid arguments"
    } else {
        what
    };
    CliError::usage(format!("{what}; see 'panns --help'"))
}

fn main() -> ExitCode {
    let cli = match cli::Cli::try_parse() {
        Ok(c) => c,
        Err(e) if !e.use_stderr() => {
            // --help and --version: print as clap does and succeed.
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) if e.kind() == clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = e.print();
            return ExitCode::from(EXIT_USAGE);
        }
        Err(e) => {
            eprintln!("{}", usage_error(&e));
            return ExitCode::from(EXIT_USAGE);
        }
    };
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{e}");
            ExitCode::from(e.code)
        }
    }
}
