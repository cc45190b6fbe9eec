//! `atoauth`: sign in with an AT Protocol account from the command line, and the tools around it.

mod account;
mod client_metadata;
mod config;
mod data_dir;
mod doctor;
mod keygen;
mod login;
mod resolve;
mod scope;
mod serve;
mod session_commands;
mod stores;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::{Config, GlobalOptions};

/// atoauth: AT Protocol (Bluesky) OAuth, from the command line.
#[derive(Parser, Debug)]
#[command(name = "atoauth", version, about, long_about = None)]
#[command(after_help = "Exit codes: 0 success, 1 failure, 2 usage error.")]
struct Cli {
    #[command(flatten)]
    global: GlobalOptions,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    ClientMetadata(client_metadata::ClientMetadataArgs),
    /// Show the effective configuration (options, environment and defaults combined)
    Config,
    Doctor(doctor::DoctorArgs),
    Keygen(keygen::KeygenArgs),
    Login(login::LoginArgs),
    Logout(session_commands::LogoutArgs),
    Post(session_commands::PostArgs),
    Refresh(session_commands::RefreshArgs),
    Resolve(resolve::ResolveArgs),
    Scope(scope::ScopeArgs),
    Serve(Box<serve::ServeArgs>),
    Sessions(session_commands::SessionsArgs),
    Whoami(session_commands::WhoamiArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match cli.global.into_config() {
        Ok(config) => config,
        Err(error) => return report(&error, false),
    };
    if config.insecure_dev {
        eprintln!(
            "warning: --insecure-dev: http and loopback servers are allowed; never use this in production"
        );
    }
    let outcome = match cli.command {
        Command::ClientMetadata(args) => block_on(client_metadata::run(&config, args)),
        Command::Config => show_config(&config),
        Command::Doctor(args) => block_on(doctor::run(&config, args)),
        Command::Keygen(args) => keygen::run(args),
        Command::Login(args) => block_on(login::run(&config, args)),
        Command::Logout(args) => block_on(session_commands::logout(&config, args)),
        Command::Post(args) => block_on(session_commands::post(&config, args)),
        Command::Refresh(args) => block_on(session_commands::refresh(&config, args)),
        Command::Resolve(args) => block_on(resolve::run(&config, args)),
        Command::Serve(args) => block_on(serve::run(&config, *args)),
        Command::Sessions(args) => block_on(session_commands::sessions(&config, args)),
        Command::Whoami(args) => block_on(session_commands::whoami(&config, args)),
        Command::Scope(args) => block_on(scope::run(&config, args)),
    };
    match outcome {
        Ok(code) => code,
        Err(error) => report(&error, config.verbose),
    }
}

/// Runs an async command on a runtime made for it.
fn block_on(command: impl Future<Output = anyhow::Result<ExitCode>>) -> anyhow::Result<ExitCode> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(command)
}

fn show_config(config: &Config) -> anyhow::Result<ExitCode> {
    if config.json {
        println!("{}", serde_json::to_string_pretty(config)?);
    } else {
        println!("data dir:         {}", config.data_dir.display());
        println!("PLC directory:    {}", config.plc_url);
        match &config.handle_resolver {
            Some(url) => println!("handle resolver:  {url} (the only method)"),
            None => println!("handle resolver:  DNS TXT and HTTPS well-known"),
        }
        println!("insecure dev:     {}", config.insecure_dev);
    }
    Ok(ExitCode::SUCCESS)
}

/// One clear line on stderr; with `--verbose`, the chain of causes too.
fn report(error: &anyhow::Error, verbose: bool) -> ExitCode {
    // An ended or missing session: the one thing to do is to sign in again, so say so.
    let sign_in_again = error
        .chain()
        .filter_map(|cause| cause.downcast_ref::<atoauth::OAuthError>())
        .any(atoauth::OAuthError::requires_sign_in);
    if sign_in_again {
        eprintln!("error: {error}; sign in again with `atoauth login <handle>`");
    } else {
        eprintln!("error: {error}");
    }
    if verbose {
        for cause in error.chain().skip(1) {
            eprintln!("  caused by: {cause}");
        }
    }
    ExitCode::FAILURE
}
