//! `atoauth scope explain "<scope>"`: each token, whether it is valid, its canonical form and
//! what it allows.

use std::process::ExitCode;

use atoauth::scope::Scope;
use clap::{Args, Subcommand};
use serde_json::json;

use crate::config::Config;

/// Work with OAuth permission scopes
#[derive(Args, Debug)]
pub(crate) struct ScopeArgs {
    #[command(subcommand)]
    command: ScopeCommand,
}

#[derive(Subcommand, Debug)]
enum ScopeCommand {
    /// Explain a scope string token by token
    #[command(after_help = EXPLAIN_HELP)]
    Explain {
        /// The scope: space-separated tokens, quoted as one argument
        scope: String,
    },
}

const EXPLAIN_HELP: &str = "\
Examples:
  atoauth scope explain \"atproto repo:app.bsky.feed.post?action=create\"
  atoauth scope explain \"atproto transition:generic\" --json

Exit code: 0 when every token is valid, 1 when any is invalid (each is named with the reason).
A missing `atproto` is a warning, not an error.

--json prints one object:
  {
    \"scope\":       the canonical scope string (valid tokens, normalised, sorted),
    \"valid\":       true when every token is valid,
    \"has_atproto\": whether `atproto` is present,
    \"tokens\":      [ {\"token\": as written, \"valid\": true,  \"canonical\": …, \"allows\": in words}
                   | {\"token\": as written, \"valid\": false, \"error\": why} ],
    \"warnings\":    [ strings ]
  }";

pub(crate) fn run(config: &Config, args: ScopeArgs) -> anyhow::Result<ExitCode> {
    let ScopeCommand::Explain { scope } = args.command;
    let scope = Scope::parse(&scope);
    let mut warnings = Vec::new();
    if !scope.has_atproto() {
        warnings
            .push("`atproto` is missing: every authorization request must include it".to_owned());
    }
    if scope.tokens().is_empty() {
        warnings.push("the scope is empty".to_owned());
    }
    let all_valid = scope.invalid().next().is_none();
    if config.json {
        let tokens: Vec<serde_json::Value> = scope
            .tokens()
            .iter()
            .map(|token| match &token.parsed {
                Ok(permission) => json!({
                    "token": token.raw,
                    "valid": true,
                    "canonical": permission.to_string(),
                    "allows": permission.describe(),
                }),
                Err(error) => json!({"token": token.raw, "valid": false, "error": error.reason}),
            })
            .collect();
        let value = json!({
            "scope": scope.to_string(),
            "valid": all_valid,
            "has_atproto": scope.has_atproto(),
            "tokens": tokens,
            "warnings": warnings,
        });
        println!("{}", serde_json::to_string_pretty(&value)?);
    } else {
        for token in scope.tokens() {
            match &token.parsed {
                Ok(permission) => {
                    let canonical = permission.to_string();
                    if canonical == token.raw {
                        println!("✓ {}", token.raw);
                    } else {
                        println!("✓ {}  (canonical: {canonical})", token.raw);
                    }
                    println!("    {}", permission.describe());
                }
                Err(error) => println!("✗ {}  invalid: {}", token.raw, error.reason),
            }
        }
        for warning in &warnings {
            eprintln!("warning: {warning}");
        }
        if !all_valid {
            let count = scope.invalid().count();
            eprintln!(
                "error: {count} invalid token{}",
                if count == 1 { "" } else { "s" }
            );
        }
    }
    Ok(if all_valid {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
