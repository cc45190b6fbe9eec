//! Certificates for test hosts with ordinary names (`spa.atoauth-interop.internal`), issued by
//! the harness's throw-away CA with the `openssl` command the harness itself uses, so a browser
//! told to trust that CA accepts them.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A leaf certificate and what trusts it.
#[derive(Clone, Debug)]
pub struct IssuedCertificate {
    /// The chain, leaf first then the CA (PEM): for `atoauth serve --tls-cert`.
    pub chain: PathBuf,
    /// The leaf's private key (PEM).
    pub key: PathBuf,
    /// Base64 SHA-256 of the CA's public key (SPKI): for Chromium's
    /// `--ignore-certificate-errors-spki-list`.
    pub ca_spki_sha256: String,
}

fn openssl(args: &[&str], input: Option<&[u8]>) -> Vec<u8> {
    let mut command = Command::new("openssl");
    command.args(args);
    let output = match input {
        None => command.output(),
        Some(bytes) => {
            use std::io::Write;
            let mut child = command
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("openssl starts");
            child
                .stdin
                .take()
                .expect("stdin")
                .write_all(bytes)
                .expect("writing to openssl");
            child.wait_with_output()
        }
    }
    .expect("openssl runs");
    assert!(
        output.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

/// Issues a certificate for `host` from the CA in `ca_cert`/`ca_key`, written into `dir`.
///
/// # Panics
/// When `openssl` fails.
#[must_use]
pub fn issue(host: &str, ca_cert: &Path, ca_key: &Path, dir: &Path) -> IssuedCertificate {
    let path = |name: &str| dir.join(name);
    let text = |p: &Path| p.to_str().expect("a UTF-8 path").to_owned();
    let (key, csr, leaf, ext, chain) = (
        path("leaf.key"),
        path("leaf.csr"),
        path("leaf.crt"),
        path("leaf.ext"),
        path("chain.pem"),
    );
    std::fs::write(
        &ext,
        format!(
            "subjectAltName=DNS:{host}\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\n\
             extendedKeyUsage=serverAuth\n"
        ),
    )
    .expect("writing the extensions");
    openssl(
        &[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-subj",
            &format!("/CN={host}"),
            "-keyout",
            &text(&key),
            "-out",
            &text(&csr),
        ],
        None,
    );
    // A serial of its own (no serial file beside the CA, which parallel tests would share).
    let serial = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos())
        .to_string();
    openssl(
        &[
            "x509",
            "-req",
            "-in",
            &text(&csr),
            "-CA",
            &text(ca_cert),
            "-CAkey",
            &text(ca_key),
            "-set_serial",
            &serial,
            "-days",
            "2",
            "-extfile",
            &text(&ext),
            "-out",
            &text(&leaf),
        ],
        None,
    );
    let mut pem = std::fs::read(&leaf).expect("the leaf");
    pem.extend(std::fs::read(ca_cert).expect("the CA"));
    std::fs::write(&chain, pem).expect("writing the chain");
    let public = openssl(&["x509", "-in", &text(ca_cert), "-pubkey", "-noout"], None);
    let der = openssl(&["pkey", "-pubin", "-outform", "der"], Some(&public));
    let digest = openssl(&["dgst", "-sha256", "-binary"], Some(&der));
    let spki = openssl(&["base64", "-A"], Some(&digest));
    IssuedCertificate {
        chain,
        key,
        ca_spki_sha256: String::from_utf8_lossy(&spki).trim().to_owned(),
    }
}
