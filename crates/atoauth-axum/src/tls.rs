//! TLS for [`serve_tls`](crate::serve_tls), so that a small deployment needs no reverse proxy:
//! a certificate chain and its private key from PEM files, TLS 1.2 and 1.3 (rustls, ring),
//! HTTP/1.1 only.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls;

/// Why the TLS files cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// The certificate file cannot be read, or holds no PEM certificate.
    #[error("cannot read a PEM certificate chain from {path}: {reason}")]
    Certificate {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// The key file cannot be read, or holds no PEM private key.
    #[error("cannot read a PEM private key from {path}: {reason}")]
    Key {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// The key does not fit the certificate, or is of a kind rustls cannot use.
    #[error("the certificate and key cannot be used together: {0}")]
    Mismatch(String),
}

/// A server TLS configuration. Cheap to clone.
#[derive(Clone, Debug)]
pub struct TlsConfig {
    pub(crate) server: Arc<rustls::ServerConfig>,
}

impl TlsConfig {
    /// Reads a certificate chain (leaf first) and its private key (PKCS#8, PKCS#1 or SEC1),
    /// both PEM.
    ///
    /// # Errors
    /// A file that cannot be read or parsed, or a key that does not match the certificate.
    pub fn from_pem_files(certificate: &Path, key: &Path) -> Result<Self, TlsError> {
        let chain = CertificateDer::pem_file_iter(certificate)
            .and_then(Iterator::collect::<Result<Vec<_>, _>>)
            .map_err(|error| TlsError::Certificate {
                path: certificate.to_owned(),
                reason: error.to_string(),
            })?;
        if chain.is_empty() {
            return Err(TlsError::Certificate {
                path: certificate.to_owned(),
                reason: "no CERTIFICATE block".to_owned(),
            });
        }
        let key = PrivateKeyDer::from_pem_file(key).map_err(|error| TlsError::Key {
            path: key.to_owned(),
            reason: error.to_string(),
        })?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut server = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|error| TlsError::Mismatch(error.to_string()))?
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .map_err(|error| TlsError::Mismatch(error.to_string()))?;
        // Only what the server speaks: a client that offers h2 settles on HTTP/1.1.
        server.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Self {
            server: Arc::new(server),
        })
    }
}
