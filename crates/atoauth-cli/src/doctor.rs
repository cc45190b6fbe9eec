//! `atoauth doctor <handle|did|url>`: walks the chain a sign-in depends on — handle, DID
//! document, PDS, protected-resource and authorization-server metadata — and says, step by
//! step, what passed, what failed (with the rule id and a one-line fix) and what was skipped.
//! Every check is the core crate's; nothing here re-implements a rule.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use atoauth::http::{HardenedClient, HttpClient};
use atoauth::identity::IdentityResolver;
use atoauth::protocol::metadata::{
    AuthorizationServerMetadata, DEFAULT_METADATA_TTL, Discovery, ProtectedResourceMetadata,
};
use atoauth::protocol::rules::Violation;
use atoauth::syntax::{AtIdentifier, Did};
use clap::Args;
use serde::Serialize;
use url::Url;

use crate::config::Config;
use crate::resolve::identity_resolver;

/// Check everything a sign-in depends on, step by step
#[derive(Args, Debug)]
#[command(
    after_help = "Examples:\n  atoauth doctor alice.bsky.social\n  atoauth doctor did:plc:ewvi7nxzyoun6zhxrhs64oiz --json\n  atoauth doctor https://bsky.social\n\n\
Exit code 0 when every step that ran passed, 1 otherwise.\n\
--json prints {\"input\", \"ok\", \"steps\": [{\"name\", \"status\" (pass|fail|skip), \"ms\", \"rule\", \"detail\", \"fix\"}]}."
)]
pub(crate) struct DoctorArgs {
    /// A handle, a DID, or a PDS / entryway URL
    input: String,

    /// Also check this published client: its metadata document (B), and each `include:`
    /// permission set its scope asks for (resolved and verified over the network)
    #[arg(long, value_name = "HTTPS URL")]
    client_id: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
enum Status {
    Pass,
    Fail,
    Skip,
}

#[derive(Debug, Serialize)]
struct Step {
    name: String,
    status: Status,
    ms: u64,
    rule: Option<&'static str>,
    detail: String,
    fix: Option<&'static str>,
}

#[derive(Debug, Serialize)]
struct Report {
    input: String,
    ok: bool,
    steps: Vec<Step>,
}

/// The one-line fix for a broken rule.
fn fix_for(rule: &str) -> &'static str {
    match rule {
        "D.16" => "publish one TXT record _atproto.<handle> with the value did=<your DID>",
        "D.17" => "serve the DID as text/plain at https://<handle>/.well-known/atproto-did",
        "D.20" => "check that the resolver service given with --handle-resolver knows the handle",
        "E2" => {
            "make the DID document's alsoKnownAs list at://<handle>, and the handle resolve to the DID"
        }
        "E4" => "add an #atproto_pds service with an https endpoint to the DID document",
        "E" => {
            "check the DID: did:plc must exist in the PLC directory, did:web must serve /.well-known/did.json"
        }
        "F1" => {
            "serve /.well-known/oauth-protected-resource with HTTP 200, application/json and one authorization server"
        }
        "F2" => "set \"resource\" to the PDS origin",
        "F3" => "name the authorization server as a bare https origin (no path, no :443)",
        "F4" => {
            "serve /.well-known/oauth-authorization-server with HTTP 200 and application/json, without redirects"
        }
        "F4.1" => "set \"issuer\" to exactly the origin the document is served from",
        "F4.2" => "publish absolute https authorization_endpoint and token_endpoint URLs",
        "F4.3" => "list \"code\" in response_types_supported",
        "F4.4" => "list authorization_code and refresh_token in grant_types_supported",
        "F4.5" => "list S256 in code_challenge_methods_supported",
        "F4.6" => "list none and private_key_jwt in token_endpoint_auth_methods_supported",
        "F4.7" => "list ES256 (and never none) in token_endpoint_auth_signing_alg_values_supported",
        "F4.8" => "list atproto in scopes_supported",
        "F4.9" => "set authorization_response_iss_parameter_supported to true",
        "F4.10" => "require PAR and publish pushed_authorization_request_endpoint",
        "F4.11" => "list ES256 in dpop_signing_alg_values_supported",
        "F4.12" => "drop require_request_uri_registration or set it to true",
        "F4.13" => "set client_id_metadata_document_supported to true",
        "F5" => "list the PDS in the authorization server's protected_resources",
        "F6" => {
            "give a PDS URL (with protected-resource metadata) or an authorization server's issuer"
        }
        "B" => {
            "fix the client metadata document (atoauth client-metadata validate shows every rule)"
        }
        "§5" => {
            "publish the set's lexicon in its authority's repository and a _lexicon.<authority> TXT record did=<that DID>, or drop the include: token"
        }
        _ => "see the atproto OAuth specification for this rule",
    }
}

/// The F4 items, each shown as its own step.
const F4_ITEMS: [(&str, &str); 13] = [
    ("F4.1", "issuer equals its origin"),
    ("F4.2", "authorization and token endpoints"),
    ("F4.3", "response type code"),
    ("F4.4", "grant types authorization_code and refresh_token"),
    ("F4.5", "PKCE S256"),
    ("F4.6", "client authentication none and private_key_jwt"),
    ("F4.7", "assertion signing ES256"),
    ("F4.8", "scope atproto"),
    ("F4.9", "iss in authorization responses"),
    ("F4.10", "pushed authorization requests"),
    ("F4.11", "DPoP ES256"),
    ("F4.12", "request URI registration"),
    ("F4.13", "client ID metadata documents"),
];

struct Doctor {
    steps: Vec<Step>,
    resolver: IdentityResolver,
    discovery: Discovery,
    config: Config,
}

impl Doctor {
    fn record(
        &mut self,
        name: &str,
        started: Instant,
        outcome: Result<String, (&'static str, String)>,
    ) -> bool {
        let ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let (status, rule, detail) = match outcome {
            Ok(detail) => (Status::Pass, None, detail),
            Err((rule, detail)) => (Status::Fail, Some(rule), detail),
        };
        self.steps.push(Step {
            name: name.to_owned(),
            status,
            ms,
            rule,
            detail,
            fix: rule.map(fix_for),
        });
        status == Status::Pass
    }

    fn skip(&mut self, name: &str, reason: &str) {
        self.steps.push(Step {
            name: name.to_owned(),
            status: Status::Skip,
            ms: 0,
            rule: None,
            detail: reason.to_owned(),
            fix: None,
        });
    }

    async fn identity(&mut self, identifier: &AtIdentifier) -> Option<Url> {
        let did = match identifier {
            AtIdentifier::Did(did) => did.clone(),
            AtIdentifier::Handle(handle) => {
                let mut found: Option<Did> = None;
                if let Some(service) = self.config.handle_resolver.clone() {
                    let reason =
                        "skipped: --handle-resolver is given, so only that service is used";
                    self.skip("handle via DNS TXT", reason);
                    self.skip("handle via HTTPS well-known", reason);
                    let started = Instant::now();
                    let result = self.resolver.resolve_handle(handle).await;
                    let ok = result
                        .as_ref()
                        .map(|did| format!("{did} (from {service})"))
                        .map_err(|e| ("D.20", e.to_string()));
                    if self.record("handle via the resolver service", started, ok) {
                        found = result.ok();
                    }
                } else {
                    let started = Instant::now();
                    let dns = self.resolver.resolve_handle_by_dns(handle).await;
                    let outcome = dns
                        .as_ref()
                        .map(ToString::to_string)
                        .map_err(|e| ("D.16", e.to_string()));
                    self.record("handle via DNS TXT", started, outcome);
                    let started = Instant::now();
                    let https = self.resolver.resolve_handle_by_well_known(handle).await;
                    let outcome = https
                        .as_ref()
                        .map(ToString::to_string)
                        .map_err(|e| ("D.17", e.to_string()));
                    self.record("handle via HTTPS well-known", started, outcome);
                    found = dns.ok().or(https.ok());
                }
                found?
            }
        };
        let started = Instant::now();
        let document = self.resolver.resolve_did(&did).await;
        let outcome = document
            .as_ref()
            .map(|_| format!("{did}"))
            .map_err(|e| ("E", e.to_string()));
        if !self.record("DID document", started, outcome) {
            return None;
        }
        let document = document.ok()?;
        let started = Instant::now();
        let claimed = document.claimed_handle();
        let outcome = match (identifier, claimed) {
            (_, None) => Err(("E2", "the DID document claims no handle".to_owned())),
            (AtIdentifier::Handle(handle), Some(claimed)) if &claimed == handle => {
                Ok(format!("the document claims {claimed}"))
            }
            (AtIdentifier::Handle(handle), Some(claimed)) => {
                Err(("E2", format!("the document claims {claimed}, not {handle}")))
            }
            (_, Some(claimed)) => match self.resolver.resolve_handle(&claimed).await {
                Ok(back) if back == did => Ok(format!("{claimed} resolves back to {did}")),
                Ok(back) => Err(("E2", format!("{claimed} resolves to {back}, not {did}"))),
                Err(e) => Err(("E2", format!("{claimed} does not resolve: {e}"))),
            },
        };
        self.record("handle verified both ways", started, outcome);
        let started = Instant::now();
        let pds = document.pds_endpoint(self.config.target_policy());
        let outcome = pds
            .as_ref()
            .map(ToString::to_string)
            .map_err(|e| ("E4", e.to_string()));
        self.record("PDS in the DID document", started, outcome);
        pds.ok()
    }

    /// F1–F3 and F5 on a PDS, then F4 on its server; `None` when the PDS step itself failed.
    async fn pds(&mut self, pds: &Url, from_url: bool) -> Option<()> {
        let origin = pds.origin().ascii_serialization();
        let url = format!("{origin}/.well-known/oauth-protected-resource");
        let started = Instant::now();
        let fetched = self.discovery.fetch_document(&url, "F1").await;
        let resource = match fetched {
            Ok(document) => {
                match ProtectedResourceMetadata::parse(&document, &origin, self.discovery.policy())
                {
                    Ok(resource) => Ok(resource),
                    Err(violations) => Err(first(&violations)),
                }
            }
            Err(error) => Err(("F1", error.to_string())),
        };
        let outcome = resource
            .as_ref()
            .map(|r| format!("authorization server {}", r.authorization_server))
            .map_err(Clone::clone);
        if from_url && resource.is_err() {
            // F6: not a PDS; maybe the URL is an authorization server itself.
            self.skip(
                "protected-resource metadata (F1–F3)",
                "not a PDS; trying the URL as an authorization server (F6)",
            );
            self.authorization_server(&origin, None).await;
            return Some(());
        }
        if !self.record("protected-resource metadata (F1–F3)", started, outcome) {
            return None;
        }
        let resource = resource.ok()?;
        self.authorization_server(&resource.authorization_server, Some(&resource.resource))
            .await;
        Some(())
    }

    async fn authorization_server(&mut self, issuer: &str, resource: Option<&str>) {
        let url = format!("{issuer}/.well-known/oauth-authorization-server");
        let started = Instant::now();
        let document = match self.discovery.fetch_document(&url, "F4").await {
            Ok(document) => document,
            Err(error) => {
                self.record(
                    "authorization-server metadata",
                    started,
                    Err(("F4", error.to_string())),
                );
                return;
            }
        };
        let violations =
            AuthorizationServerMetadata::check(&document, issuer, self.discovery.policy());
        self.record("authorization-server metadata", started, Ok(url.clone()));
        for (rule, name) in F4_ITEMS {
            let broken: Vec<&Violation> = violations.iter().filter(|v| v.rule == rule).collect();
            let outcome = if broken.is_empty() {
                Ok(String::new())
            } else {
                Err((
                    rule,
                    broken
                        .iter()
                        .map(|v| v.message.as_str())
                        .collect::<Vec<_>>()
                        .join("; "),
                ))
            };
            self.record(&format!("{rule} {name}"), Instant::now(), outcome);
        }
        if let Some(resource) = resource {
            let started = Instant::now();
            match AuthorizationServerMetadata::parse(&document, issuer, self.discovery.policy()) {
                Ok(server) => {
                    let outcome = if server.lists_resource(resource) {
                        Ok(String::new())
                    } else {
                        Err((
                            "F5",
                            format!("{issuer} does not list {resource} in protected_resources"),
                        ))
                    };
                    self.record("F5 the PDS is a listed resource", started, outcome);
                }
                Err(_) => self.skip(
                    "F5 the PDS is a listed resource",
                    "skipped: the metadata above is invalid",
                ),
            }
        }
    }
}

impl Doctor {
    /// The client's metadata document, then each `include:` set of its scope (§5).
    async fn client(&mut self, client_id: &str) {
        let started = Instant::now();
        let metadata = crate::account::fetch_client_metadata(&self.config, client_id).await;
        let outcome = metadata
            .as_ref()
            .map(|m| format!("{} (scope {})", m.client_id, m.scope))
            .map_err(|e| ("B", format!("{e:#}")));
        if !self.record("client metadata document", started, outcome) {
            return;
        }
        let Ok(metadata) = metadata else { return };
        let scope = atoauth::scope::Scope::parse(&metadata.scope);
        let resolver = crate::resolve::lexicon_resolver(&self.config, self.resolver.clone());
        for token in scope.tokens() {
            let Ok(atoauth::Permission::Include(include)) = &token.parsed else {
                continue;
            };
            let started = Instant::now();
            let outcome = match &resolver {
                Ok(resolver) => match resolver.permission_set(&include.nsid).await {
                    Ok(set) => Ok(format!(
                        "\"{}\": {}",
                        set.title.as_deref().unwrap_or("untitled"),
                        set.expand(include)
                            .iter()
                            .map(ToString::to_string)
                            .collect::<Vec<_>>()
                            .join(" ")
                    )),
                    Err(error) => Err(("§5", error.to_string())),
                },
                Err(error) => Err(("§5", format!("{error:#}"))),
            };
            self.record(&format!("permission set {}", token.raw), started, outcome);
        }
    }
}

fn first(violations: &[Violation]) -> (&'static str, String) {
    let rule = violations.first().map_or("F1", |v| v.rule);
    let detail = violations
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ");
    (rule, detail)
}

pub(crate) async fn run(config: &Config, args: DoctorArgs) -> anyhow::Result<ExitCode> {
    let http: Arc<dyn HttpClient> = Arc::new(
        HardenedClient::builder()
            .target_policy(config.target_policy())
            .build()?,
    );
    let mut doctor = Doctor {
        steps: Vec::new(),
        resolver: identity_resolver(config)?,
        discovery: Discovery::new(http, config.target_policy(), DEFAULT_METADATA_TTL),
        config: config.clone(),
    };
    let input = args.input.trim();
    let lowered = input.to_ascii_lowercase();
    if lowered.starts_with("https://") || lowered.starts_with("http://") {
        match Url::parse(input) {
            Ok(url) => {
                doctor.skip(
                    "identity",
                    "a server URL names no account; identity steps do not apply",
                );
                doctor.pds(&url, true).await;
            }
            Err(e) => {
                doctor.record(
                    "input",
                    Instant::now(),
                    Err(("E1", format!("not a URL: {e}"))),
                );
            }
        }
    } else {
        match AtIdentifier::from_login_input(input) {
            Ok(identifier) => {
                if let Some(pds) = doctor.identity(&identifier).await {
                    doctor.pds(&pds, false).await;
                }
            }
            Err(e) => {
                doctor.record(
                    "input",
                    Instant::now(),
                    Err(("E1", format!("not a handle or DID: {e}"))),
                );
            }
        }
    }
    if let Some(client_id) = &args.client_id {
        doctor.client(client_id).await;
    }
    let report = Report {
        input: input.to_owned(),
        ok: doctor.steps.iter().all(|s| s.status != Status::Fail),
        steps: doctor.steps,
    };
    print_report(config, &report)?;
    Ok(if report.ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn print_report(config: &Config, report: &Report) -> anyhow::Result<()> {
    if config.json {
        println!("{}", serde_json::to_string_pretty(report)?);
        return Ok(());
    }
    for step in &report.steps {
        match step.status {
            Status::Pass if step.detail.is_empty() => println!("✓ {} ({} ms)", step.name, step.ms),
            Status::Pass => println!("✓ {} ({} ms): {}", step.name, step.ms, step.detail),
            Status::Skip => println!("– {} ({})", step.name, step.detail),
            Status::Fail => {
                println!(
                    "✗ {} ({} ms) [{}] {}",
                    step.name,
                    step.ms,
                    step.rule.unwrap_or("?"),
                    step.detail
                );
                if let Some(fix) = step.fix {
                    println!("    fix: {fix}");
                }
            }
        }
    }
    if report.ok {
        println!("All checks that ran passed.");
    } else {
        let failed = report
            .steps
            .iter()
            .filter(|s| s.status == Status::Fail)
            .count();
        println!("{failed} check(s) failed.");
    }
    Ok(())
}
