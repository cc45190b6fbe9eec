//! `atoauth serve --tls-cert/--tls-key` (issue #15, operate): HTTPS without a reverse proxy.
//! Pages come over TLS with a `Secure` cookie and HSTS, plain HTTP on the port gets no page, a
//! client that never finishes its handshake is cut off, and bad files are refused at start.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use atoauth_testkit::reqwest;
use common::serve::Serve;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const HOST: &str = "atoauth.example.com";

/// A self-signed certificate for [`HOST`] and its key, as PEM files in `dir`.
fn certificate(dir: &Path) -> (String, String) {
    let cert = dir.join("cert.pem");
    let key = dir.join("key.pem");
    let made = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt"])
        .args(["ec_paramgen_curve:prime256v1", "-nodes", "-days", "2"])
        .args(["-subj", &format!("/CN={HOST}")])
        .args(["-addext", &format!("subjectAltName=DNS:{HOST}")])
        .args(["-addext", "basicConstraints=critical,CA:FALSE"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl");
    assert!(made.status.success(), "{made:?}");
    (
        cert.to_str().unwrap().to_owned(),
        key.to_str().unwrap().to_owned(),
    )
}

/// A TLS client configuration that trusts only the certificate in `cert`.
fn trusting(cert: &str) -> tokio_rustls::rustls::ClientConfig {
    use tokio_rustls::rustls;
    use tokio_rustls::rustls::pki_types::CertificateDer;
    use tokio_rustls::rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for certificate in CertificateDer::pem_file_iter(cert).unwrap() {
        roots.add(certificate.unwrap()).unwrap();
    }
    rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test]
async fn serve_speaks_https_with_its_own_certificate() {
    let data = tempfile::tempdir().unwrap();
    let (cert, key) = certificate(data.path());
    let port = free_port();
    let public_url = format!("https://{HOST}:{port}");
    let serve = Serve::start_on(
        &data.path().join("data"),
        &format!("127.0.0.1:{port}"),
        &[
            "--public-url",
            &public_url,
            "--tls-cert",
            &cert,
            "--tls-key",
            &key,
            "--read-timeout",
            "1",
        ],
    );
    let http = reqwest::Client::builder()
        .tls_backend_preconfigured(trusting(&cert))
        .resolve(HOST, ([127, 0, 0, 1], port).into())
        .no_proxy()
        .build()
        .unwrap();

    let home = http.get(format!("{public_url}/")).send().await.unwrap();
    assert_eq!(home.status(), 200);
    let cookie = home.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(cookie.contains("Secure"), "{cookie}");
    assert_eq!(
        home.headers()["strict-transport-security"],
        "max-age=31536000"
    );
    assert!(home.text().await.unwrap().contains("name=identifier"));
    let metadata: serde_json::Value = http
        .get(format!("{public_url}/oauth-client-metadata.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        metadata["client_id"],
        format!("{public_url}/oauth-client-metadata.json")
    );

    // Plain HTTP on the TLS port gets no page.
    let mut plain = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    plain
        .write_all(format!("GET / HTTP/1.1\r\nHost: {HOST}:{port}\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), plain.read_to_end(&mut answer)).await;
    assert!(
        !String::from_utf8_lossy(&answer).contains("HTTP/1.1 200"),
        "{answer:?}"
    );

    // A client that connects and never starts its handshake is cut off after the read timeout.
    let mut silent = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let started = Instant::now();
    let mut byte = [0_u8; 1];
    let read = tokio::time::timeout(Duration::from_secs(10), silent.read(&mut byte)).await;
    assert!(
        matches!(read, Ok(Ok(0) | Err(_))),
        "closed, not left open: {read:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(serve.logs().contains(&format!("open {public_url}")));
}

#[test]
fn unusable_tls_files_are_refused_at_start() {
    let data = tempfile::tempdir().unwrap();
    let (cert, key) = certificate(data.path());
    let not_pem = data.path().join("not.pem");
    std::fs::write(&not_pem, "hello").unwrap();
    let not_pem = not_pem.to_str().unwrap();
    let public_url = format!("https://{HOST}");
    for (cert, key, expected) in [
        (not_pem, key.as_str(), "certificate"),
        (cert.as_str(), not_pem, "private key"),
        (cert.as_str(), cert.as_str(), "private key"),
    ] {
        let output = common::atoauth()
            .arg("--data-dir")
            .arg(data.path().join("data"))
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--public-url",
                &public_url,
            ])
            .args(["--tls-cert", cert, "--tls-key", key])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{stderr}");
        assert!(stderr.contains(expected), "{stderr}");
    }
    // TLS without the public URL it is for, or for an http one, is a usage error or refused.
    let output = common::atoauth()
        .arg("--data-dir")
        .arg(data.path().join("data"))
        .args(["serve", "--tls-cert", &cert, "--tls-key", &key])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let output = common::atoauth()
        .arg("--data-dir")
        .arg(data.path().join("data"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .args(["--public-url", "http://127.0.0.1:9"])
        .args(["--tls-cert", &cert, "--tls-key", &key])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("must be https"), "{stderr}");
}
