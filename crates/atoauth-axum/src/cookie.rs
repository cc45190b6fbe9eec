//! The session cookie: a random id, authenticated with HMAC-SHA-256 so forged or altered
//! cookies are dropped before any store lookup. The key is persisted in the data directory
//! (created atomically when several instances start at once) or given explicitly.

use std::fmt;
use std::path::Path;

use atoauth::protocol::crypto::{OsRandomness, Randomness, random_token};
use atoauth::secret::SessionId;
use base64ct::{Base64UrlUnpadded, Encoding};
use ring::hmac;

/// The cookie's name.
pub const COOKIE_NAME: &str = "atoauth_sid";

/// Why a cookie key could not be loaded or created.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CookieKeyError {
    /// The key text is not 64 hex characters (32 bytes).
    #[error("a cookie key is 64 hexadecimal characters (32 bytes)")]
    Invalid,
    /// The key file could not be read or written.
    #[error("cannot read or create the cookie key file")]
    Io(#[source] std::io::Error),
    /// No secure randomness.
    #[error("no secure randomness: {0}")]
    Random(String),
}

/// The HMAC key that authenticates session cookies.
#[derive(Clone)]
pub struct CookieKey(hmac::Key);

impl fmt::Debug for CookieKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CookieKey([redacted])")
    }
}

impl CookieKey {
    /// A key from 64 hex characters (as `--cookie-key` takes it).
    ///
    /// # Errors
    /// [`CookieKeyError::Invalid`] for anything else.
    pub fn from_hex(hex: &str) -> Result<Self, CookieKeyError> {
        let hex = hex.trim();
        if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(CookieKeyError::Invalid);
        }
        let bytes: Vec<u8> = (0..32)
            .filter_map(|i| u8::from_str_radix(&hex[i * 2..i * 2 + 2], 16).ok())
            .collect();
        Ok(Self(hmac::Key::new(hmac::HMAC_SHA256, &bytes)))
    }

    /// A secret for another purpose, derived from this key (HMAC-SHA256 of `purpose`): every
    /// instance that shares the cookie key derives the same one (the client-assertion
    /// backend's nonce secret).
    #[must_use]
    pub fn derive(&self, purpose: &str) -> Vec<u8> {
        hmac::sign(&self.0, purpose.as_bytes()).as_ref().to_vec()
    }

    /// A new random key, kept only in memory: cookies die with the process. For development
    /// and tests; production keeps its key ([`CookieKey::load_or_create`], `from_hex`).
    ///
    /// # Errors
    /// When randomness fails.
    pub fn generate() -> Result<Self, CookieKeyError> {
        let mut bytes = [0u8; 32];
        OsRandomness
            .fill(&mut bytes)
            .map_err(|e| CookieKeyError::Random(e.to_string()))?;
        Ok(Self(hmac::Key::new(hmac::HMAC_SHA256, &bytes)))
    }

    /// The key in `path`, created (mode 0600) if missing. Several processes starting together
    /// agree on one key: each writes a candidate to its own temporary file and hard-links it
    /// into place, which succeeds for exactly one of them; the others read the winner's.
    ///
    /// # Errors
    /// I/O failures, or an existing file that is not a key.
    pub fn load_or_create(path: &Path) -> Result<Self, CookieKeyError> {
        if let Ok(text) = std::fs::read_to_string(path) {
            return Self::from_hex(&text);
        }
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            // A directory created for a secret is private too (0700).
            let mut dir = std::fs::DirBuilder::new();
            dir.recursive(true);
            #[cfg(unix)]
            std::os::unix::fs::DirBuilderExt::mode(&mut dir, 0o700);
            dir.create(parent).map_err(CookieKeyError::Io)?;
        }
        let mut bytes = [0u8; 32];
        OsRandomness
            .fill(&mut bytes)
            .map_err(|e| CookieKeyError::Random(e.to_string()))?;
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let candidate = path.with_extension(format!("tmp-{}", std::process::id()));
        write_private(&candidate, hex.as_bytes()).map_err(CookieKeyError::Io)?;
        let linked = std::fs::hard_link(&candidate, path);
        let _ = std::fs::remove_file(&candidate);
        match linked {
            Ok(()) => Self::from_hex(&hex),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                Self::from_hex(&std::fs::read_to_string(path).map_err(CookieKeyError::Io)?)
            }
            Err(e) => Err(CookieKeyError::Io(e)),
        }
    }

    /// A new random cookie value: a fresh session id and its tag.
    ///
    /// # Errors
    /// When randomness fails.
    pub(crate) fn new_id(
        &self,
    ) -> Result<(SessionId, String), atoauth::protocol::crypto::RandomError> {
        let id = SessionId::new(random_token(&OsRandomness, 32)?);
        let value = self.sign(&id);
        Ok((id, value))
    }

    /// The CSRF token of a browser that has no stored session (a visitor who has not signed
    /// in): derived from its id with the key, apart from cookie tags, so a visitor costs no
    /// storage until a sign-in succeeds.
    pub(crate) fn anonymous_csrf(&self, id: &SessionId) -> String {
        let tag = hmac::sign(&self.0, format!("csrf:{}", id.secret()).as_bytes());
        Base64UrlUnpadded::encode_string(tag.as_ref())
    }

    fn sign(&self, id: &SessionId) -> String {
        let tag = hmac::sign(&self.0, id.secret().as_bytes());
        format!(
            "{}.{}",
            id.secret(),
            Base64UrlUnpadded::encode_string(tag.as_ref())
        )
    }

    /// The id in a cookie value, if its tag verifies (constant time).
    pub(crate) fn verify(&self, value: &str) -> Option<SessionId> {
        let (id, tag) = value.split_once('.')?;
        let tag = Base64UrlUnpadded::decode_vec(tag).ok()?;
        hmac::verify(&self.0, id.as_bytes(), &tag).ok()?;
        Some(SessionId::new(id))
    }
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    file.write_all(bytes)
}

/// `Set-Cookie` for `value`: `HttpOnly`, `SameSite=Lax`, `Path=/`, `Secure` on https.
pub(crate) fn set_cookie(value: &str, secure: bool, max_age_secs: u64) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!("{COOKIE_NAME}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age_secs}{secure}")
}

/// The value of our cookie in a `Cookie` header.
pub(crate) fn read_cookie(headers: &http::HeaderMap) -> Option<String> {
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE_NAME)
        .map(|(_, value)| value.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_verify_and_tampering_is_refused() {
        let key = CookieKey::from_hex(&"ab".repeat(32)).unwrap();
        let (id, value) = key.new_id().unwrap();
        assert_eq!(key.verify(&value), Some(id));
        let mut forged = value.clone();
        forged.replace_range(0..1, if value.starts_with('A') { "B" } else { "A" });
        assert_eq!(key.verify(&forged), None);
        let other = CookieKey::from_hex(&"cd".repeat(32)).unwrap();
        assert_eq!(other.verify(&value), None);
        assert_eq!(key.verify("no-dot"), None);
        assert!(CookieKey::from_hex("short").is_err());
        assert_eq!(format!("{key:?}"), "CookieKey([redacted])");
    }

    #[test]
    fn concurrent_creation_agrees_on_one_key() {
        let dir = std::env::temp_dir().join(format!("atoauth-cookie-{}", std::process::id()));
        let path = dir.join("cookie.key");
        let _ = std::fs::remove_dir_all(&dir);
        let keys: Vec<_> = (0..8)
            .map(|_| {
                let path = path.clone();
                std::thread::spawn(move || CookieKey::load_or_create(&path).unwrap())
            })
            .map(|t| t.join().unwrap())
            .collect();
        let (_, value) = keys[0].new_id().unwrap();
        assert!(keys.iter().all(|k| k.verify(&value).is_some()));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn the_cookie_header_is_parsed_and_flags_are_set() {
        let mut headers = http::HeaderMap::new();
        headers.insert(
            http::header::COOKIE,
            "a=1; atoauth_sid=xyz.tag; b=2".parse().unwrap(),
        );
        assert_eq!(read_cookie(&headers).as_deref(), Some("xyz.tag"));
        let cookie = set_cookie("v", true, 60);
        assert!(
            cookie.contains("HttpOnly")
                && cookie.contains("SameSite=Lax")
                && cookie.contains("Secure")
        );
        assert!(!set_cookie("v", false, 60).contains("Secure"));
    }
}
