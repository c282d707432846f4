//! `api-tokens`: the admin command line for a service built on the
//! api-tokens crate (feature `cli`). It works on the service's database
//! directly, with the service's own rules: every change goes through
//! `TokenService` with the operator as the actor, and is audited.
//!
//! Configuration comes from flags or the environment; the hash keys only
//! from `API_TOKENS_KEYS`, never a flag (flags land in shell history and
//! process listings). See `api-tokens --help` and the README's "Command
//! line" section.

#![forbid(unsafe_code)]

mod audit_log;
mod check;
mod database;
mod durations;
mod failure;
mod keygen;
mod leaked;
mod output;
mod revoking;
mod scanner_rules;
mod schema;
mod session;
mod tokens;

use std::io::Write as _;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use failure::{EXIT_CODES, Failure, mask_long_words};
use output::Report;
use session::Global;

/// Administer a service's API tokens: issue, list, check and revoke them,
/// migrate its database.
///
/// Environment: API_TOKENS_DATABASE_URL, API_TOKENS_TABLE, API_TOKENS_PREFIX,
/// API_TOKENS_OPERATOR, API_TOKENS_AUDIT_LOG stand in for the flags of the
/// same names; API_TOKENS_KEYS holds the hash keys ("2:<key>,1:<key>",
/// current first) and has no flag.
#[derive(Parser, Debug)]
#[command(name = "api-tokens", version, after_help = EXIT_CODES)]
struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Print a new hash key as an API_TOKENS_KEYS entry (<id>:<key>).
    Keygen(keygen::KeygenArgs),
    /// Print the migration SQL, for a migration tool of your own.
    Schema(schema::SchemaArgs),
    /// Bring the database's schema up to date.
    Migrate,
    /// Issue a token; the token alone goes to stdout, shown this once.
    Issue(tokens::IssueArgs),
    /// List tokens, newest first.
    List(tokens::ListArgs),
    /// Show one token's details.
    Show(tokens::ShowArgs),
    /// Revoke one token.
    Revoke(revoking::RevokeArgs),
    /// Revoke every live token of an organization or domain.
    RevokeScope(revoking::RevokeScopeArgs),
    /// Revoke every token a person created, in every scope.
    RevokeByCreator(revoking::RevokeByCreatorArgs),
    /// Replace a token with a new one; the old one works through a grace period.
    Rotate(tokens::RotateArgs),
    /// Delete tokens that ended (revoked or expired) long enough ago.
    Purge(revoking::PurgeArgs),
    /// Say whether a token is valid, and its scope, role and expiry.
    Check(check::CheckArgs),
    /// Revoke every live token of this service found in a file (or stdin).
    RevokeLeaked(leaked::RevokeLeakedArgs),
    /// Print secret-scanner rules for this service's tokens.
    ScannerRules(scanner_rules::ScannerRulesArgs),
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            // Help and version go to stdout with 0; usage errors to stderr
            // with 2, without quoting anything long enough to be a token.
            let rendered = error.render().to_string();
            if error.use_stderr() {
                eprint!("{}", mask_long_words(&rendered));
                return ExitCode::from(2);
            }
            print!("{rendered}");
            return ExitCode::SUCCESS;
        }
    };
    let json = cli.global.json;
    let outcome = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime.block_on(run(&cli)),
        Err(error) => Err(Failure::store(format!("cannot start: {error}"))),
    };
    match outcome {
        Ok(report) => print(report, json),
        Err(failure) => {
            eprintln!("api-tokens: {}", failure.message);
            ExitCode::from(failure.code)
        }
    }
}

async fn run(cli: &Cli) -> Result<Report, Failure> {
    let global = &cli.global;
    match &cli.command {
        Command::Keygen(args) => keygen::run(args),
        Command::Schema(args) => schema::schema(args, global),
        Command::Migrate => schema::migrate(global).await,
        Command::Issue(args) => tokens::issue(args, global).await,
        Command::List(args) => tokens::list(args, global).await,
        Command::Show(args) => tokens::show(args, global).await,
        Command::Revoke(args) => revoking::revoke(args, global).await,
        Command::RevokeScope(args) => revoking::revoke_scope(args, global).await,
        Command::RevokeByCreator(args) => revoking::revoke_by_creator(args, global).await,
        Command::Rotate(args) => tokens::rotate(args, global).await,
        Command::Purge(args) => revoking::purge(args, global).await,
        Command::Check(args) => check::check(args, global).await,
        Command::RevokeLeaked(args) => leaked::revoke_leaked(args, global).await,
        Command::ScannerRules(args) => scanner_rules::scanner_rules(args, global),
    }
}

fn print(report: Report, json: bool) -> ExitCode {
    let mut stdout = std::io::stdout().lock();
    let written = if json {
        serde_json::to_writer_pretty(&mut stdout, &report.json)
            .map_err(std::io::Error::from)
            .and_then(|()| writeln!(stdout))
    } else {
        stdout.write_all(report.text.as_bytes())
    }
    .and_then(|()| stdout.flush());
    if let Some(note) = &report.note {
        eprintln!("{note}");
    }
    match written {
        Ok(()) => ExitCode::from(report.code),
        Err(error) => {
            eprintln!("api-tokens: cannot write the output: {error}");
            ExitCode::from(3)
        }
    }
}
