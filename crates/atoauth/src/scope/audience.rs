//! `rpc` and `include` audiences as the official PDS judges them (permission spec §3.15, §9.46):
//! a DID service reference `did#service` whose DID is a `did:plc` of the exact shape or a
//! `did:web` host, and whose service id is an RFC 3986 fragment.

/// Why `value` is not a service reference the PDS accepts, or `None` when it is one.
pub(crate) fn service_ref_problem(value: &str) -> Option<&'static str> {
    let Some((did, fragment)) = value.split_once('#') else {
        return Some("aud must be a DID service reference (did:…#service)");
    };
    if fragment.is_empty() || fragment.contains('#') || !is_fragment(fragment) {
        return Some("aud must end in one non-empty #service id made of URI fragment characters");
    }
    if did.starts_with("did:plc:") {
        return (!is_did_plc(did))
            .then_some("aud: a did:plc is \"did:plc:\" and 24 characters of a-z and 2-7");
    }
    if let Some(msid) = did.strip_prefix("did:web:") {
        return did_web_problem(msid);
    }
    Some("aud: only did:plc and did:web services can be called")
}

fn is_did_plc(did: &str) -> bool {
    did.len() == 32
        && did["did:plc:".len()..]
            .bytes()
            .all(|b| b.is_ascii_lowercase() || (b'2'..=b'7').contains(&b))
}

/// §9.46: a host, with a port only for `localhost` and then written `%3A` inside the DID; no
/// path. Percent-escapes in a DID take upper-case hex digits.
fn did_web_problem(msid: &str) -> Option<&'static str> {
    if msid.is_empty() || msid.contains(':') {
        return Some("aud: a did:web names a host, without a path");
    }
    let bytes = msid.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let upper_hex = |b: Option<&u8>| {
                    b.is_some_and(|b| b.is_ascii_digit() || (b'A'..=b'F').contains(b))
                };
                if !(upper_hex(bytes.get(i + 1)) && upper_hex(bytes.get(i + 2))) {
                    return Some("aud: a did:web percent-escape needs two upper-case hex digits");
                }
                i += 3;
            }
            b if b.is_ascii_alphanumeric() || b"._-".contains(&b) => i += 1,
            _ => {
                return Some(
                    "aud: a did:web host has only letters, digits, '.', '-', '_' and escapes",
                );
            }
        }
    }
    let localhost = msid == "localhost" || msid.starts_with("localhost%3A");
    if !localhost && msid.contains("%3A") {
        return Some("aud: a did:web may carry a port only for localhost");
    }
    let host = msid.replace("%3A", ":");
    let scheme = if localhost { "http" } else { "https" };
    if url::Url::parse(&format!("{scheme}://{host}")).is_err() {
        return Some("aud: the did:web host is not a valid URL host");
    }
    None
}

/// RFC 3986 `fragment`: unreserved, sub-delims, `:` `@` `/` `?`, and `%` escapes.
fn is_fragment(value: &str) -> bool {
    let bytes = value.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                if !(bytes.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
                    && bytes.get(i + 2).is_some_and(u8::is_ascii_hexdigit))
                {
                    return false;
                }
                i += 3;
            }
            b if b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@/?".contains(&b) => i += 1,
            _ => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::service_ref_problem;

    #[test]
    fn the_pds_rules_for_audiences() {
        for ok in [
            "did:web:api.bsky.app#bsky_appview",
            "did:plc:ewvi7nxzyoun6zhxrhs64oiz#atproto_labeler",
            "did:web:localhost%3A8443#svc",
            "did:web:localhost#svc",
            "did:web:x.com#a:b@c/d?e!$&'()*+,;=~",
            "did:web:x.com#%41",
        ] {
            assert_eq!(service_ref_problem(ok), None, "{ok}");
        }
        for bad in [
            "did:web:x.com",
            "did:web:x.com#",
            "did:web:x.com#a#b",
            "did:web:x.com#a b",
            "did:plc:111#x",
            "did:plc:ewvi7nxzyoun6zhxrhs64oi#x",
            "did:key:zabc#svc",
            "did:foo:bar#x",
            "did:web:x.com%3A8443#svc",
            "did:web:localhost%3a8443#svc",
            "did:web:x.com:path#svc",
            "did:web:#svc",
            "did:web:x.com#%4",
            "did:web:1.2.3.999#svc",
        ] {
            assert!(service_ref_problem(bad).is_some(), "{bad}");
        }
    }
}
