//! Documents tests share.

use serde_json::{Value, json};

/// Authorization-server metadata for `issuer` that passes every F4 item (endpoints under
/// `/oauth/…`, revocation included).
pub fn authorization_server_metadata(issuer: &str) -> Value {
    json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}/oauth/authorize"),
        "token_endpoint": format!("{issuer}/oauth/token"),
        "pushed_authorization_request_endpoint": format!("{issuer}/oauth/par"),
        "revocation_endpoint": format!("{issuer}/oauth/revoke"),
        "response_types_supported": ["code"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": ["none", "private_key_jwt"],
        "token_endpoint_auth_signing_alg_values_supported": ["ES256"],
        "scopes_supported": ["atproto", "transition:generic"],
        "authorization_response_iss_parameter_supported": true,
        "require_pushed_authorization_requests": true,
        "dpop_signing_alg_values_supported": ["ES256"],
        "client_id_metadata_document_supported": true,
    })
}

/// A JPEG as far as content sniffing goes (the JFIF header and end marker), `size` bytes long,
/// for blob uploads.
///
/// # Panics
/// When `size` is below 22 bytes.
#[must_use]
pub fn jpeg(size: usize) -> Vec<u8> {
    let mut bytes = vec![
        0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10, b'J', b'F', b'I', b'F', 0x00, 0x01, 0x01, 0x00, 0x00,
        0x01, 0x00, 0x01, 0x00, 0x00,
    ];
    assert!(size >= bytes.len() + 2, "a JPEG of at least 22 bytes");
    bytes.extend((0..size - bytes.len() - 2).map(|i| (i * 31 % 251) as u8));
    bytes.extend([0xFF, 0xD9]);
    bytes
}
