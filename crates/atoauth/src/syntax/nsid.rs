use super::{SyntaxError, string_identifier};

/// A namespaced identifier (NSID), e.g. `app.bsky.feed.post`: a reversed domain authority and a
/// name. No wildcards: `app.bsky.*` is not an NSID.
///
/// ```
/// use atoauth::syntax::Nsid;
/// let nsid: Nsid = "app.bsky.feed.post".parse()?;
/// assert_eq!(nsid.authority(), "app.bsky.feed");
/// assert_eq!(nsid.name(), "post");
/// # Ok::<(), atoauth::syntax::SyntaxError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Nsid(String);

impl Nsid {
    /// Parses an NSID. For a literal, [`nsid!`](crate::nsid) checks it at compile time.
    ///
    /// # Errors
    /// When `s` is not a syntactically valid NSID.
    pub fn new(s: &str) -> Result<Self, SyntaxError> {
        match syntax(s.as_bytes()) {
            Ok(()) => Ok(Self(s.to_owned())),
            Err(reason) => Err(SyntaxError::new("NSID", s, reason)),
        }
    }

    /// Whether `s` is a syntactically valid NSID; usable in `const` contexts.
    #[must_use]
    pub const fn is_valid(s: &str) -> bool {
        syntax(s.as_bytes()).is_ok()
    }

    /// Everything before the last segment, e.g. `app.bsky.feed`.
    #[must_use]
    pub fn authority(&self) -> &str {
        self.0
            .rsplit_once('.')
            .map_or("", |(authority, _)| authority)
    }

    /// The last segment, e.g. `post`.
    #[must_use]
    pub fn name(&self) -> &str {
        self.0.rsplit_once('.').map_or("", |(_, name)| name)
    }
}

string_identifier!(Nsid);

/// An [`Nsid`] from a string literal, checked at compile time: an invalid literal does not
/// build.
///
/// ```
/// let post = atoauth::nsid!("app.bsky.feed.post");
/// assert_eq!(post.name(), "post");
/// ```
///
/// ```compile_fail
/// let wildcard = atoauth::nsid!("app.bsky.*");
/// ```
#[macro_export]
macro_rules! nsid {
    ($nsid:literal) => {{
        const _: () = assert!(
            $crate::syntax::Nsid::is_valid($nsid),
            concat!("not an NSID: ", $nsid)
        );
        $crate::__private::nsid_checked_at_compile_time($nsid)
    }};
}

/// The NSID syntax, as a `const fn` so that [`nsid!`](crate::nsid) can run it at compile time:
/// ASCII, at most 317 characters, at least two domain segments (1–63 letters, digits or `-`,
/// not starting or ending with `-`, the first not starting with a digit) and a name of 1–63
/// letters and digits starting with a letter.
const fn syntax(s: &[u8]) -> Result<(), &'static str> {
    if !s.is_ascii() {
        return Err("must be ASCII");
    }
    if s.len() > 317 {
        return Err("longer than 317 characters");
    }
    // Walk the segments: [start, i) is the current one.
    let (mut start, mut i, mut segments) = (0, 0, 0);
    while i <= s.len() {
        if i == s.len() || s[i] == b'.' {
            let is_name = i == s.len();
            if is_name {
                if segments < 2 {
                    return Err("needs at least three segments");
                }
                if !is_name_segment(s, start, i) {
                    return Err("the name is 1-63 letters and digits, starting with a letter");
                }
            } else {
                if !is_domain_segment(s, start, i) {
                    return Err(
                        "domain segments are 1-63 letters, digits or '-', not starting or ending with '-'",
                    );
                }
                if segments == 0 && s[start].is_ascii_digit() {
                    return Err("the first segment must not start with a digit");
                }
                segments += 1;
            }
            start = i + 1;
        }
        i += 1;
    }
    Ok(())
}

/// `s[start..end]` is a domain label (the same rule as in handles).
const fn is_domain_segment(s: &[u8], start: usize, end: usize) -> bool {
    if end <= start || end - start > 63 || s[start] == b'-' || s[end - 1] == b'-' {
        return false;
    }
    let mut i = start;
    while i < end {
        if !(s[i].is_ascii_alphanumeric() || s[i] == b'-') {
            return false;
        }
        i += 1;
    }
    true
}

/// `s[start..end]` is an NSID name: letters and digits, starting with a letter.
const fn is_name_segment(s: &[u8], start: usize, end: usize) -> bool {
    if end <= start || end - start > 63 || !s[start].is_ascii_alphabetic() {
        return false;
    }
    let mut i = start;
    while i < end {
        if !s[i].is_ascii_alphanumeric() {
            return false;
        }
        i += 1;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interop_vectors() {
        crate::syntax::vectors::check("nsid", |s| Nsid::new(s).is_ok());
        crate::syntax::vectors::check("nsid", Nsid::is_valid);
    }

    #[test]
    fn reasons_name_the_broken_part() {
        let reason = |s: &str| Nsid::new(s).unwrap_err().to_string();
        assert!(reason("app.bsky").contains("three segments"));
        assert!(reason("1app.bsky.post").contains("first segment"));
        assert!(reason("app.-bsky.post").contains("domain segments"));
        assert!(reason("app.bsky.2post").contains("the name"));
        assert!(reason("app.bsky.feed.post-x").contains("the name"));
        assert!(reason("app..feed.post").contains("domain segments"));
        assert!(reason("app.bsky.").contains("the name"));
        assert!(reason("äpp.bsky.post").contains("ASCII"));
        assert_eq!(
            crate::nsid!("app.bsky.feed.post").as_str(),
            "app.bsky.feed.post"
        );
    }
}
