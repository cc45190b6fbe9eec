//! BCP 47 language tags (RFC 5646), as atproto's lexicon `language` format checks them: the
//! tag's syntax (§2.1), no repeated variant or extension singleton (§4.1), and a primary
//! language subtag of two or three lower-case letters. Lexicon documents use them as the keys
//! of `title:lang` and `detail:lang`.

/// The grandfathered tags of RFC 5646, exactly as registered (case matters here).
const GRANDFATHERED: &[&str] = &[
    "en-GB-oed",
    "i-ami",
    "i-bnn",
    "i-default",
    "i-enochian",
    "i-hak",
    "i-klingon",
    "i-lux",
    "i-mingo",
    "i-navajo",
    "i-pwn",
    "i-tao",
    "i-tay",
    "i-tsu",
    "sgn-BE-FR",
    "sgn-BE-NL",
    "sgn-CH-DE",
    "art-lojban",
    "cel-gaulish",
    "no-bok",
    "no-nyn",
    "zh-guoyu",
    "zh-hakka",
    "zh-min",
    "zh-min-nan",
    "zh-xiang",
];

/// Whether `tag` is a language tag the lexicon `language` format accepts.
#[must_use]
pub(crate) fn is_language_tag(tag: &str) -> bool {
    if GRANDFATHERED.contains(&tag) {
        return true;
    }
    let subtags: Vec<&str> = tag.split('-').collect();
    if subtags
        .iter()
        .any(|s| s.is_empty() || !s.bytes().all(|b| b.is_ascii_alphanumeric()))
    {
        return false;
    }
    if subtags[0].eq_ignore_ascii_case("x") {
        return is_private_use(&subtags[1..]);
    }
    langtag(&subtags)
}

fn alpha(s: &str, range: std::ops::RangeInclusive<usize>) -> bool {
    range.contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphabetic())
}

fn sized(s: &str, range: std::ops::RangeInclusive<usize>) -> bool {
    range.contains(&s.len())
}

/// `x-…`: one or more subtags of 1–8 letters or digits (the leading `x` already taken; every
/// subtag was checked to be letters and digits).
fn is_private_use(rest: &[&str]) -> bool {
    !rest.is_empty() && rest.iter().all(|s| sized(s, 1..=8))
}

/// language [-script] [-region] *(-variant) *(-extension) [-privateuse]. Each kind of subtag has
/// a shape no earlier kind can take, so reading greedily from the left is exact.
fn langtag(subtags: &[&str]) -> bool {
    let primary = subtags[0];
    // The format is stricter than RFC 5646: a two- or three-letter lower-case primary subtag.
    if !(2..=3).contains(&primary.len()) || !primary.bytes().all(|b| b.is_ascii_lowercase()) {
        return false;
    }
    let mut i = 1;
    // extlang: up to three subtags of three letters, only after a two- or three-letter language.
    let mut extlangs = 0;
    while extlangs < 3 && subtags.get(i).is_some_and(|s| alpha(s, 3..=3)) {
        i += 1;
        extlangs += 1;
    }
    if subtags.get(i).is_some_and(|s| alpha(s, 4..=4)) {
        i += 1; // script
    }
    if subtags
        .get(i)
        .is_some_and(|s| alpha(s, 2..=2) || (s.len() == 3 && s.bytes().all(|b| b.is_ascii_digit())))
    {
        i += 1; // region
    }
    let is_variant =
        |s: &str| sized(s, 5..=8) || (s.len() == 4 && s.as_bytes()[0].is_ascii_digit());
    let mut variants = std::collections::HashSet::new();
    while let Some(variant) = subtags.get(i).filter(|s| is_variant(s)) {
        if !variants.insert(variant.to_ascii_lowercase()) {
            return false; // §4.1: a variant only once
        }
        i += 1;
    }
    let mut singletons = std::collections::HashSet::new();
    while let Some(singleton) = subtags
        .get(i)
        .filter(|s| s.len() == 1 && !s.eq_ignore_ascii_case("x"))
    {
        if !singletons.insert(singleton.to_ascii_lowercase()) {
            return false; // §4.1: an extension singleton only once
        }
        i += 1;
        let start = i;
        while subtags.get(i).is_some_and(|s| sized(s, 2..=8)) {
            i += 1;
        }
        if i == start {
            return false; // an extension needs at least one subtag
        }
    }
    match subtags.get(i) {
        None => true,
        Some(x) if x.eq_ignore_ascii_case("x") => is_private_use(&subtags[i + 1..]),
        Some(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::is_language_tag;

    /// Each verdict checked against `parseLanguageString` of `@atproto/syntax` 0.7.7.
    #[test]
    fn tags_as_the_lexicon_language_format_reads_them() {
        for ok in [
            "en",
            "en-US",
            "pt-BR",
            "zh-Hant-TW",
            "i-klingon",
            "sgn-BE-FR",
            "x-private",
            "en-US-x-twain",
            "de-1996",
            "sl-rozaj-biske",
            "en-a-bbb-b-ccc",
            "zh-yue-HK",
            "es-419",
            "en-GB-oed",
            "X-private",
            "en-Latn-US-1abc-x-a",
            "de-DE-u-co-phonebk",
        ] {
            assert!(is_language_tag(ok), "{ok}");
        }
        for bad in [
            "EN",
            "e",
            "english",
            "en_US",
            "123",
            "",
            "en-",
            "de-1996-1996",
            "en-a-bbb-a-ccc",
            "en-a",
            "en-x",
            "en-US-toolongvariant",
            "en-GB-OED",
            "abcd",
            "en-abc-def-ghi-jkl",
            "en-é",
            "en-u-a-b",
        ] {
            assert!(!is_language_tag(bad), "{bad}");
        }
    }
}
