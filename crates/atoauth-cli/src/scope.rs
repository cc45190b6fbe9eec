//! `atoauth scope explain "<scope>"`: each token, whether it is valid, its canonical form and
//! what it allows.

use std::process::ExitCode;

use atoauth::scope::{Permission, Scope};
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

        /// Do not resolve `include:` permission sets over the network
        #[arg(long)]
        offline: bool,
    },
}

const EXPLAIN_HELP: &str = "\
Examples:
  atoauth scope explain \"atproto repo:app.bsky.feed.post?action=create\"
  atoauth scope explain \"atproto transition:generic\" --json
  atoauth scope explain \"atproto include:app.bsky.authCreatePosts?aud=did:web:api.bsky.app%23bsky_appview\"

An `include:` token names a permission set: it is resolved over the network (DNS TXT
`_lexicon.<authority>`, the authority's repository, its signed proof) and each permission it
grants is shown, with the title and detail the user sees on the consent page. --offline skips it.

Exit code: 0 when every token is valid, 1 when any is invalid (each is named with the reason).
A missing `atproto` is a warning, not an error.

--json prints one object:
  {
    \"scope\":       the canonical scope string (valid tokens, normalised, sorted),
    \"valid\":       true when every token is valid,
    \"has_atproto\": whether `atproto` is present,
    \"tokens\":      [ {\"token\": as written, \"valid\": true,  \"canonical\": …, \"allows\": in words}
                   | {\"token\": as written, \"valid\": false, \"error\": why} ],
                   an include: token also has \"set\": {\"title\", \"detail\", \"grants\": [
                   {\"canonical\", \"allows\"}]} or \"set_error\": why,
    \"warnings\":    [ strings ]
  }";

/// A resolved permission set, as the consent page shows it.
struct SetView {
    title: Option<String>,
    detail: Option<String>,
    grants: Vec<Permission>,
}

/// Resolves each `include:` token's set (in order of the tokens), unless offline.
async fn resolve_sets(
    config: &Config,
    scope: &Scope,
    offline: bool,
) -> anyhow::Result<Vec<Option<Result<SetView, String>>>> {
    let mut resolver = None;
    let mut views = Vec::new();
    for token in scope.tokens() {
        let Ok(Permission::Include(include)) = &token.parsed else {
            views.push(None);
            continue;
        };
        if offline {
            views.push(None);
            continue;
        }
        if resolver.is_none() {
            let identity = crate::resolve::identity_resolver(config)?;
            resolver = Some(crate::resolve::lexicon_resolver(config, identity)?);
        }
        let Some(resolver) = &resolver else {
            continue;
        };
        views.push(Some(
            resolver
                .permission_set(&include.nsid)
                .await
                .map(|set| SetView {
                    title: set.title.clone(),
                    detail: set.detail.clone(),
                    grants: set.expand(include),
                })
                .map_err(|e| e.to_string()),
        ));
    }
    Ok(views)
}

pub(crate) async fn run(config: &Config, args: ScopeArgs) -> anyhow::Result<ExitCode> {
    let ScopeCommand::Explain { scope, offline } = args.command;
    let scope = Scope::parse(&scope);
    let sets = resolve_sets(config, &scope, offline).await?;
    let sets_ok = sets.iter().flatten().all(Result::is_ok);
    let mut warnings = Vec::new();
    if !scope.has_atproto() {
        warnings
            .push("`atproto` is missing: every authorization request must include it".to_owned());
    }
    if scope.tokens().is_empty() {
        warnings.push("the scope is empty".to_owned());
    }
    let all_valid = scope.invalid().next().is_none() && sets_ok;
    if config.json {
        let tokens: Vec<serde_json::Value> = scope
            .tokens()
            .iter()
            .zip(&sets)
            .map(|(token, set)| match &token.parsed {
                Ok(permission) => {
                    let mut value = json!({
                        "token": token.raw,
                        "valid": true,
                        "canonical": permission.to_string(),
                        "allows": permission.describe(),
                    });
                    match set {
                        Some(Ok(view)) => {
                            let grants: Vec<_> = view
                                .grants
                                .iter()
                                .map(
                                    |p| json!({"canonical": p.to_string(), "allows": p.describe()}),
                                )
                                .collect();
                            value["set"] = json!({
                                "title": view.title,
                                "detail": view.detail,
                                "grants": grants,
                            });
                        }
                        Some(Err(error)) => value["set_error"] = error.as_str().into(),
                        None => {}
                    }
                    value
                }
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
        for (token, set) in scope.tokens().iter().zip(&sets) {
            match (&token.parsed, set) {
                (Ok(_), Some(Err(error))) => println!("✗ {}  {error}", token.raw),
                (Ok(permission), set) => {
                    let canonical = permission.to_string();
                    if canonical == token.raw {
                        println!("✓ {}", token.raw);
                    } else {
                        println!("✓ {}  (canonical: {canonical})", token.raw);
                    }
                    println!("    {}", permission.describe());
                    if let Some(Ok(view)) = set {
                        print_set(view);
                    }
                }
                (Err(error), _) => println!("✗ {}  invalid: {}", token.raw, error.reason),
            }
        }
        for warning in &warnings {
            eprintln!("warning: {warning}");
        }
        if !sets_ok {
            eprintln!("error: a permission set could not be resolved");
        }
        if scope.invalid().next().is_some() {
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

/// The set as the consent page shows it, then what each member grants.
fn print_set(view: &SetView) {
    if let Some(title) = &view.title {
        println!("    the user is asked: \"{title}\"");
    }
    if let Some(detail) = &view.detail {
        println!("    {detail}");
    }
    if view.grants.is_empty() {
        println!("    (grants nothing)");
    }
    for grant in &view.grants {
        println!("    → {grant}");
        println!("        {}", grant.describe());
    }
}
