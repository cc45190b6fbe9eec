//! `atoauth keygen`: a confidential client's ES256 signing key as a private JWKS file (mode
//! 0600), and the public JWKS to publish in the client metadata (J1, J7).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use atoauth::protocol::client_auth::Keyset;
use atoauth::protocol::crypto::{Es256Key, OsRandomness, random_token};
use clap::Args;

/// Create a client signing key (ES256) as a JWKS file, or print the public half of one
#[derive(Args, Debug)]
#[command(
    after_help = "Examples:\n  atoauth keygen --out keys.json\n  atoauth keygen --out keys.json --kid 2026-11\n  atoauth keygen --public keys.json\n\n\
The key file is {\"keys\":[{private JWK with \"kid\",\"alg\":\"ES256\",\"use\":\"sig\"}]} with mode 0600;\n\
`atoauth serve --keys` and the library's Keyset::from_jwks_json read it. The public JWKS\n\
(printed on stdout) goes into the client metadata's \"jwks\" or is served at its \"jwks_uri\".\n\
To rotate, generate a key with a new kid, add it to the file first, publish both, and remove\n\
the old key once no session uses it (removing it ends the sessions bound to it)."
)]
pub(crate) struct KeygenArgs {
    /// Where to write the private JWKS (refuses to overwrite unless --force)
    #[arg(
        long,
        value_name = "FILE",
        default_value = "atoauth-keys.json",
        conflicts_with = "public"
    )]
    out: PathBuf,

    /// The key id [default: a random one]
    #[arg(long, conflicts_with = "public")]
    kid: Option<String>,

    /// Replace an existing file
    #[arg(long, conflicts_with = "public")]
    force: bool,

    /// Print the public JWKS of an existing key file instead
    #[arg(long, value_name = "FILE")]
    public: Option<PathBuf>,
}

pub(crate) fn run(args: KeygenArgs) -> anyhow::Result<ExitCode> {
    if let Some(file) = &args.public {
        let keys = read_keyset(file)?;
        println!("{}", serde_json::to_string_pretty(&keys.public_jwks())?);
        return Ok(ExitCode::SUCCESS);
    }
    let keys = create_key_file(&args.out, args.kid, args.force)?;
    eprintln!(
        "wrote the private key to {} (mode 0600); publish this public JWKS:",
        args.out.display()
    );
    println!("{}", serde_json::to_string_pretty(&keys.public_jwks())?);
    Ok(ExitCode::SUCCESS)
}

/// Creates a key (with `kid`, or a random one) and writes its private JWKS to `out`.
pub(crate) fn create_key_file(
    out: &Path,
    kid: Option<String>,
    force: bool,
) -> anyhow::Result<Keyset> {
    let kid = match kid {
        Some(kid) if kid.trim().is_empty() => bail!("--kid must not be empty"),
        Some(kid) => kid,
        None => format!("k-{}", random_token(&OsRandomness, 6)?),
    };
    let keys = Keyset::new([Es256Key::generate(&OsRandomness)?.with_kid(kid)])?;
    let json = serde_json::to_string_pretty(&keys.to_private_jwks())?;
    write_private(out, json.as_bytes(), force)?;
    Ok(keys)
}

/// Reads a private JWKS file (as `atoauth keygen` writes it).
pub(crate) fn read_keyset(file: &Path) -> anyhow::Result<Keyset> {
    let json = std::fs::read_to_string(file)
        .with_context(|| format!("cannot read the key file {}", file.display()))?;
    Keyset::from_jwks_json(&json)
        .with_context(|| format!("{} is not a private JWKS of ES256 keys", file.display()))
}

fn write_private(path: &Path, bytes: &[u8], force: bool) -> anyhow::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true);
    if force {
        options.create(true).truncate(true);
    } else {
        options.create_new(true);
    }
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            anyhow::anyhow!("{} exists; pass --force to replace it", path.display())
        } else {
            anyhow::Error::new(e).context(format!("cannot create {}", path.display()))
        }
    })?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    file.write_all(bytes)?;
    file.write_all(b"\n")?;
    Ok(())
}
