//! Global options, shared by every subcommand, and the configuration they produce.

use std::io::IsTerminal;
use std::path::PathBuf;

use clap::Args;
use clap::builder::BoolishValueParser;
use url::Url;

/// Options accepted before or after any subcommand; each may also come from `ATOAUTH_<NAME>`.
#[derive(Args, Debug)]
pub(crate) struct GlobalOptions {
    /// Where sessions and keys are kept [default: $XDG_DATA_HOME/atoauth or ~/.local/share/atoauth]
    #[arg(long, env = "ATOAUTH_DATA_DIR", global = true, value_name = "DIR")]
    data_dir: Option<PathBuf>,

    /// The did:plc directory
    #[arg(
        long,
        env = "ATOAUTH_PLC_URL",
        global = true,
        value_name = "URL",
        default_value = "https://plc.directory"
    )]
    plc_url: Url,

    /// Resolve handles only through this service's com.atproto.identity.resolveHandle
    #[arg(
        long,
        env = "ATOAUTH_HANDLE_RESOLVER",
        global = true,
        value_name = "URL"
    )]
    handle_resolver: Option<Url>,

    /// Where sessions live: a SQLite file path (the default is <data-dir>/atoauth.db),
    /// postgres://… or redis://… (several instances sharing sign-ins)
    #[arg(
        long,
        env = "ATOAUTH_DB",
        global = true,
        value_name = "PATH|URL",
        hide_env_values = true
    )]
    db: Option<String>,

    /// Allow http and loopback servers (PDS, authorization server, PLC, resolver) for local development. Never in production.
    #[arg(long, env = "ATOAUTH_INSECURE_DEV", global = true, value_parser = BoolishValueParser::new())]
    insecure_dev: bool,

    /// With --insecure-dev: also trust the CA certificates in this PEM file (a test machine's
    /// own HTTPS hosts, such as a PDS harness's client-metadata host)
    #[arg(
        long,
        env = "ATOAUTH_INSECURE_DEV_CA",
        global = true,
        value_name = "PEM FILE"
    )]
    insecure_dev_ca: Option<PathBuf>,

    /// With --insecure-dev: resolve HOST to IP instead of asking DNS (repeatable), e.g.
    /// clients.example.internal=127.0.0.1
    #[arg(
        long,
        global = true,
        value_name = "HOST=IP",
        value_parser = parse_resolve
    )]
    insecure_dev_resolve: Vec<(String, std::net::IpAddr)>,

    /// With --insecure-dev: ask this DNS server (IP:PORT, UDP) for TXT records (handles'
    /// `_atproto`, permission sets' `_lexicon`) instead of the system's
    #[arg(long, global = true, value_name = "IP:PORT")]
    dns_server: Option<std::net::SocketAddr>,

    /// Print structured output as JSON, where a command has any
    #[arg(long, env = "ATOAUTH_JSON", global = true, value_parser = BoolishValueParser::new())]
    json: bool,

    /// Explain more: the full chain of causes on errors, and progress details
    #[arg(long, short, env = "ATOAUTH_VERBOSE", global = true, value_parser = BoolishValueParser::new())]
    verbose: bool,
}

/// The effective configuration every command runs with.
#[derive(Clone, Debug, serde::Serialize)]
pub(crate) struct Config {
    pub(crate) data_dir: PathBuf,
    pub(crate) plc_url: Url,
    pub(crate) handle_resolver: Option<Url>,
    /// The store URL or path; shown without credentials.
    #[serde(serialize_with = "redacted_db")]
    pub(crate) db: Option<String>,
    pub(crate) insecure_dev: bool,
    pub(crate) insecure_dev_ca: Option<PathBuf>,
    pub(crate) insecure_dev_resolve: Vec<(String, std::net::IpAddr)>,
    pub(crate) dns_server: Option<std::net::SocketAddr>,
    pub(crate) json: bool,
    pub(crate) verbose: bool,
    /// Colour and progress output: only on a terminal, and never with NO_COLOR set.
    pub(crate) decorate: bool,
}

impl Config {
    /// What the HTTP path may reach: loopback and http only with `--insecure-dev`.
    pub(crate) fn target_policy(&self) -> atoauth::http::TargetPolicy {
        if self.insecure_dev {
            atoauth::http::TargetPolicy::InsecureAllowLoopbackHttp
        } else {
            atoauth::http::TargetPolicy::PublicHttpsOnly
        }
    }

    /// The hardened HTTP client with the target policy and, under `--insecure-dev`, the extra
    /// CA and host overrides.
    pub(crate) fn http_client(&self) -> anyhow::Result<atoauth::http::HardenedClient> {
        let mut builder =
            atoauth::http::HardenedClient::builder().target_policy(self.target_policy());
        if let Some(file) = &self.insecure_dev_ca {
            let pem = std::fs::read(file).map_err(|e| {
                anyhow::anyhow!("cannot read --insecure-dev-ca {}: {e}", file.display())
            })?;
            builder = builder.insecure_trust_roots_pem(&pem);
        }
        for (host, ip) in &self.insecure_dev_resolve {
            // Port 0: the URL's port is used.
            builder = builder.resolve_override(host, vec![std::net::SocketAddr::new(*ip, 0)]);
        }
        Ok(builder.build()?)
    }
}

impl Config {
    /// The data directory, created or made private to this user first (Q2): a one-line
    /// warning when an existing one had to be tightened.
    ///
    /// # Errors
    /// When it cannot be made private (see [`crate::data_dir::secure`]).
    pub(crate) fn private_data_dir(&self) -> anyhow::Result<&std::path::Path> {
        if let Some(warning) = crate::data_dir::secure(&self.data_dir)? {
            eprintln!("{warning}");
        }
        Ok(&self.data_dir)
    }

    /// The DNS resolver for TXT lookups: `--dns-server` (development), else the system's.
    pub(crate) fn dns_resolver(&self) -> anyhow::Result<Option<hickory_resolver::TokioResolver>> {
        use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolverConfig};
        use hickory_resolver::net::runtime::TokioRuntimeProvider;

        let Some(server) = self.dns_server else {
            return Ok(None);
        };
        let mut connection = ConnectionConfig::udp();
        connection.port = server.port();
        let name_server = NameServerConfig::new(server.ip(), true, vec![connection]);
        let config = ResolverConfig::from_parts(None, vec![], vec![name_server]);
        let mut builder = hickory_resolver::TokioResolver::builder_with_config(
            config,
            TokioRuntimeProvider::default(),
        );
        builder.options_mut().attempts = 2;
        Ok(Some(builder.build().map_err(|e| {
            anyhow::anyhow!("cannot use --dns-server {server}: {e}")
        })?))
    }
}

/// `HOST=IP` for `--insecure-dev-resolve`.
fn parse_resolve(value: &str) -> Result<(String, std::net::IpAddr), String> {
    let (host, ip) = value
        .split_once('=')
        .ok_or_else(|| format!("{value:?} is not HOST=IP"))?;
    let ip = ip
        .parse()
        .map_err(|e| format!("{ip:?} is not an IP address: {e}"))?;
    if host.is_empty() {
        return Err(format!("{value:?} has no host"));
    }
    Ok((host.to_ascii_lowercase(), ip))
}

impl GlobalOptions {
    pub(crate) fn into_config(self) -> anyhow::Result<Config> {
        // Checked here rather than by clap, whose `requires` does not see a global flag given
        // before the subcommand.
        if !self.insecure_dev
            && (self.insecure_dev_ca.is_some()
                || !self.insecure_dev_resolve.is_empty()
                || self.dns_server.is_some())
        {
            anyhow::bail!(
                "--insecure-dev-ca, --insecure-dev-resolve and --dns-server need --insecure-dev"
            );
        }
        let data_dir = match self.data_dir {
            Some(dir) => dir,
            None => default_data_dir()?,
        };
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        Ok(Config {
            data_dir,
            plc_url: self.plc_url,
            handle_resolver: self.handle_resolver,
            db: self.db,
            insecure_dev: self.insecure_dev,
            insecure_dev_ca: self.insecure_dev_ca,
            insecure_dev_resolve: self.insecure_dev_resolve,
            dns_server: self.dns_server,
            json: self.json,
            verbose: self.verbose,
            decorate: std::io::stderr().is_terminal() && !no_color,
        })
    }
}

/// `$XDG_DATA_HOME/atoauth`, else `$HOME/.local/share/atoauth` (the XDG default).
fn default_data_dir() -> anyhow::Result<PathBuf> {
    let non_empty = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
    if let Some(base) = non_empty("XDG_DATA_HOME").map(PathBuf::from)
        && base.is_absolute()
    {
        return Ok(base.join("atoauth"));
    }
    let home = non_empty("HOME").ok_or_else(|| {
        anyhow::anyhow!(
            "no data directory: set --data-dir, ATOAUTH_DATA_DIR, XDG_DATA_HOME or HOME"
        )
    })?;
    Ok(PathBuf::from(home).join(".local/share/atoauth"))
}

/// `--db` for display: a URL without its user info (passwords never reach output).
fn redacted_db<S: serde::Serializer>(
    db: &Option<String>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match db.as_deref().map(|db| match Url::parse(db) {
        Ok(mut url) if url.password().is_some() || !url.username().is_empty() => {
            let _ = url.set_password(None);
            let _ = url.set_username("");
            url.to_string()
        }
        _ => db.to_owned(),
    }) {
        Some(db) => serializer.serialize_some(&db),
        None => serializer.serialize_none(),
    }
}
