//! `blob` MIME patterns and their matching, as the official PDS judges them (permission spec
//! §3.16, §9.46): values are compared as written, case-sensitively, against the Content-Type the
//! client sends.

/// One `/` with something on both sides, and no space.
fn is_string_slash_string(value: &str) -> bool {
    match value.split_once('/') {
        Some((kind, subtype)) => {
            !kind.is_empty()
                && !subtype.is_empty()
                && !subtype.contains('/')
                && !value.contains(' ')
        }
        None => false,
    }
}

/// A concrete type to check: `type/subtype`, no wildcard.
pub(crate) fn is_mime(value: &str) -> bool {
    is_string_slash_string(value) && !value.contains('*')
}

/// An `accept` pattern: `*/*`, `type/*` or `type/subtype` (a `*` only as a trailing `/*`).
pub(crate) fn is_accept(value: &str) -> bool {
    value == "*/*"
        || (is_string_slash_string(value) && (!value.contains('*') || value.ends_with("/*")))
}

/// Whether some concrete type matches `pattern`: not `**/*`, whose type part can never be a
/// type (a concrete type has no `*`), nor a pattern that is not `type/subtype` at all.
pub(crate) fn accepts_some_type(pattern: &str) -> bool {
    match pattern.strip_suffix("/*") {
        _ if pattern == "*/*" => true,
        Some(kind) => !kind.is_empty() && !kind.contains(['*', '/', ' ']),
        None => is_mime(pattern),
    }
}

/// Whether `pattern` (an `accept` value as granted) admits the concrete type `mime`.
pub(crate) fn accepts(pattern: &str, mime: &str) -> bool {
    match pattern.strip_suffix('*') {
        _ if pattern == "*/*" => true,
        Some(prefix) if prefix.ends_with('/') => mime.starts_with(prefix),
        _ => pattern == mime,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_and_matches() {
        for ok in [
            "*/*",
            "image/*",
            "image/png",
            "application/vnd.api+json",
            "**/*",
        ] {
            assert!(is_accept(ok), "{ok}");
        }
        for bad in [
            "*/png",
            "*/**",
            "image",
            "image/",
            "/png",
            "a/b/c",
            "image/p*g",
            "a /b",
        ] {
            assert!(!is_accept(bad), "{bad}");
        }
        assert!(accepts("image/*", "image/png"));
        assert!(
            !accepts("image/*", "IMAGE/PNG"),
            "case-sensitive, as the PDS"
        );
        assert!(!accepts("image/png", "image/PNG"));
        assert!(accepts("*/*", "x/y"));
        assert!(!is_mime("image/png/x"));
        assert!(!is_mime("image/*"));
        assert!(accepts_some_type("image/*") && accepts_some_type("*/*"));
        assert!(accepts_some_type("image/png"));
        assert!(!accepts_some_type("**/*"), "no concrete type is `**`");
        assert!(!accepts_some_type("a*/*"));
    }
}
