use super::{SyntaxError, is_domain_label, string_identifier};

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
    /// Parses an NSID.
    ///
    /// # Errors
    /// When `s` is not a syntactically valid NSID.
    pub fn new(s: &str) -> Result<Self, SyntaxError> {
        let fail = |reason| Err(SyntaxError::new("NSID", s, reason));
        if !s.is_ascii() {
            return fail("must be ASCII");
        }
        if s.len() > 317 {
            return fail("longer than 317 characters");
        }
        let Some((authority, name)) = s.rsplit_once('.') else {
            return fail("needs at least three segments");
        };
        let segments: Vec<&str> = authority.split('.').collect();
        if segments.len() < 2 {
            return fail("needs at least three segments");
        }
        if !segments.iter().all(|segment| is_domain_label(segment)) {
            return fail(
                "domain segments are 1-63 letters, digits or '-', not starting or ending with '-'",
            );
        }
        if segments[0].starts_with(|c: char| c.is_ascii_digit()) {
            return fail("the first segment must not start with a digit");
        }
        let name_ok = !name.is_empty()
            && name.len() <= 63
            && name.starts_with(|c: char| c.is_ascii_alphabetic())
            && name.bytes().all(|b| b.is_ascii_alphanumeric());
        if !name_ok {
            return fail("the name is 1-63 letters and digits, starting with a letter");
        }
        Ok(Self(s.to_owned()))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interop_vectors() {
        crate::syntax::vectors::check("nsid", |s| Nsid::new(s).is_ok());
    }
}
